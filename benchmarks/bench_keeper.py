"""Keeper throughput and memory on the devnet.

Targets (issues 7 and 18): with 20,000 accounts, the first full refresh (discovery, every
position, prices, stressed ES of every account, commit) under 30 s; a later block after a
price move (logs, prices, the changed accounts' positions, every account's ES over a
4,096-state set with liquidation costs, named stresses, commit) median under 0.5 s, worst
under 1 s; memory stable over 1,000 blocks. Quick mode: 2,000 accounts, 100 blocks. The first full refresh is measured unthrottled
and once more paced at 25 requests per second, the CLI's default ``--rps``.

The keeper runs in-process (``Keeper.start`` then ``Keeper.iterate`` per block) against a
freshly seeded anvil devnet, with the built-in named stresses and, as ``--stress-from``, the
joint states of a ``simulate`` run on the devnet's own snapshot (``pull``, then ``simulate``
with ``record_states``: 600 paths of the default scenario), reduced to 4,096 states by
``simulator.states.reduce_states``. Every 10th block moves the WETH price (so every account
is re-evaluated), the others are empty blocks (open flags and the accounts re-read are
re-evaluated); each block re-reads its rolling 1/50 share of the accounts, so every account
is re-read every 50 blocks and no later block is a full refresh.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from keeper.daemon import Keeper, KeeperSettings
from keeper.devnet.chain import Contract
from keeper.devnet.deploy import set_price
from keeper.devnet.launch import launch


def _rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _row(measure: str, value: float, unit: str, target: str, ok: bool | None) -> dict[str, Any]:
    return {
        "benchmark": "keeper",
        "measure": measure,
        "value": value,
        "unit": unit,
        "target": target,
        "ok": ok,
    }


async def _stress_from(dep: dict[str, Any], where: Path) -> tuple[Path, int]:
    """A ``simulate`` results directory of the devnet's market with its joint states, and
    how many states it holds before the keeper reduces them."""
    from keeper.pull import pull, settings_from_deployment
    from simulator.results import save_results
    from simulator.simulation import simulate

    dep_file = where / "deployment.json"
    dep_file.write_text(json.dumps(dep), encoding="utf-8")
    snap = await pull(settings_from_deployment(dep_file, use_cache=False))
    result = await asyncio.to_thread(
        simulate, snap, "default", n_paths=600, seed=4, record_states=True
    )
    out = where / "results"
    save_results(result, out)
    from simulator.states import load_states

    states = load_states(out / "states.parquet", list(snap.book().symbols))
    return out, int(states.multipliers.shape[0])


async def _bench(n_accounts: int, n_blocks: int, db: Path) -> list[dict[str, Any]]:
    t0 = time.perf_counter()
    dev = launch(accounts=n_accounts, seed=7)
    seeded = time.perf_counter() - t0
    rows = [_row(f"devnet seeding, {n_accounts:,} accounts", seeded, "s", "", None)]
    try:
        dep = dev.deployment
        t0 = time.perf_counter()
        results, n_states = await _stress_from(dep, db.parent)
        rows.append(
            _row(
                f"--stress-from results (pull + simulate, {n_states:,} joint states)",
                time.perf_counter() - t0,
                "s",
                "",
                None,
            )
        )
        oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
        weth_price = oracle.call("getAssetPrice", dep["reserves"]["WETH"]["token"]) / 1e8
        settings = KeeperSettings(
            rpc_url=dep["rpc_url"],
            provider=dep["pool_addresses_provider"],
            expected_chain_id=dep["chain_id"],
            multicall3=dep["multicall3"],
            db_path=db,
            metrics_port=None,
            rps=0,
            full_refresh_blocks=50,
            stress_from=results,
            state_budget=4096,
        )
        keeper = Keeper(settings, sinks=[])
        await keeper.start()
        try:
            t = time.perf_counter()
            await keeper.iterate()
            first = time.perf_counter() - t
            assert keeper.book is not None
            rows.append(
                _row(
                    f"first full refresh, {keeper.book.n:,} accounts",
                    first,
                    "s",
                    "< 30 s",
                    first < 30.0,
                )
            )
            price_blocks: list[float] = []
            empty_blocks: list[float] = []
            rss_start = rss_end = _rss_mb()
            for k in range(1, n_blocks + 1):
                if k % 10 == 0:
                    factor = 0.97 if (k // 10) % 2 else 1.0
                    await asyncio.to_thread(set_price, dep, "WETH", weth_price * factor, dev.rpc)
                else:
                    await asyncio.to_thread(dev.rpc.mine, 1)
                t = time.perf_counter()
                await keeper.iterate()
                dt = time.perf_counter() - t
                (price_blocks if k % 10 == 0 else empty_blocks).append(dt)
                if k == min(100, n_blocks // 2):
                    rss_start = _rss_mb()
            rss_end = _rss_mb()
            assert keeper.stress is not None and keeper.stress.probabilistic is not None
            # reduce_states draws the budget with replacement: repeated draws merge, so the
            # set holds at most 4,096 distinct states
            n_kept = keeper.stress.probabilistic.n_points
            worst_later = max(price_blocks + empty_blocks)
            rows.append(
                _row(
                    f"later block, price moved (ES of every account, {n_kept:,} states kept "
                    "of the 4,096 budget), median",
                    statistics.median(price_blocks),
                    "s",
                    "< 0.5 s",
                    statistics.median(price_blocks) < 0.5,
                )
            )
            rows.append(
                _row(
                    "later block, no price move (rolling re-read + open flags), median",
                    statistics.median(empty_blocks),
                    "s",
                    "< 2 s",
                    statistics.median(empty_blocks) < 2.0,
                )
            )
            rows.append(_row("later block, worst", worst_later, "s", "< 1 s", worst_later < 1.0))
            growth = rss_end - rss_start
            rows.append(
                _row(
                    f"RSS growth from block {min(100, n_blocks // 2)} to {n_blocks}",
                    growth,
                    "MB",
                    "< 25 MB",
                    growth < 25.0,
                )
            )
            rows.append(_row(f"RSS after {n_blocks} blocks", rss_end, "MB", "", None))
        finally:
            await keeper.close()
        # The same first refresh paced as the CLI paces it by default (--rps 25).
        paced = Keeper(replace(settings, db_path=db.with_name("paced.sqlite"), rps=25.0), sinks=[])
        await paced.start()
        try:
            t = time.perf_counter()
            await paced.iterate()
            first_paced = time.perf_counter() - t
            requests = paced.chain.stats.total_requests
        finally:
            await paced.close()
        rows.append(
            _row(
                f"first full refresh at --rps 25 (the CLI default), {requests} requests",
                first_paced,
                "s",
                "< 30 s",
                first_paced < 30.0,
            )
        )
    finally:
        dev.stop()
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    n_accounts, n_blocks = (2_000, 100) if quick else (20_000, 1_000)
    with tempfile.TemporaryDirectory(prefix="bench-keeper-") as tmp:
        return asyncio.run(_bench(n_accounts, n_blocks, Path(tmp) / "keeper.sqlite"))
