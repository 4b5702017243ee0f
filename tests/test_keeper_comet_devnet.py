"""The keeper on our Compound V3 (Comet) devnet: calm, a crash, an absorb, the sinks.

The expected flags are computed here, independently of the keeper's reads: balances, prices
and the market's factors come from plain ``eth_call``s on the Comet (``borrowBalanceOf``,
``balanceOf``, ``collateralBalanceOf``, ``getAssetInfo``, ``getPrice``,
``storeFrontPriceFactor``) at the block the keeper processed; the loss at each stress point is
written out below from Comet's documented rules (absorbed when collateral x
liquidateCollateralFactor < debt; the reserves pay max(credit, debt) and sell the collateral
at the store front's discount) and must equal the simulator's
``simulator.stress_comet.evaluate_comet`` on the same balances; then the documented rule
(over: debt >= $100 and max(ES, worst named loss) > margin).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from eth_abi import decode
from prometheus_client.parser import text_string_to_metric_families

from keeper.daemon import Keeper, KeeperSettings
from keeper.devnet.chain import Contract, Rpc
from keeper.devnet.deploy import set_price as devnet_set_price
from keeper.sinks import JsonLinesSink
from keeper.stress_inputs import build_stress_set
from simulator.risk import es as risk_es
from simulator.stress import StressSet
from simulator.stress_comet import CometLossTerms, evaluate_comet
from tests.rpc_batch import batch

pytestmark = pytest.mark.integration

MC_PATHS = 400
ALPHA = 0.975
CLEAR_BLOCKS = 3
#: Every JSON-RPC method the keeper may send: reads only.
READ_METHODS = {
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getCode",
    "eth_call",
    "eth_getLogs",
}


def _chain_book(rpc: Rpc, comet_address: str, accounts: list[str], block: int) -> dict[str, Any]:
    """Balances (token units), prices (USD), factors, read with plain eth_calls at ``block``;
    assets in the market's order: the base, then ``getAssetInfo(0..)``."""
    comet = Contract(rpc, comet_address, "Comet")
    base = comet.call("baseToken", block=block)
    infos = [comet.call("getAssetInfo", i, block=block) for i in range(comet.call("numAssets"))]
    assets = [base] + [info[1] for info in infos]
    feeds = [comet.call("baseTokenPriceFeed", block=block)] + [info[2] for info in infos]
    tokens = [Contract(rpc, a, "DevnetERC20") for a in assets]
    symbols = [t.call("symbol") for t in tokens]
    decimals = np.array([t.call("decimals") for t in tokens])
    prices = np.array([comet.call("getPrice", f, block=block) / 1e8 for f in feeds])
    lcf = np.array([0.0] + [info[5] / 1e18 for info in infos])
    lf = np.array([0.0] + [info[6] / 1e18 for info in infos])
    sfpf = comet.call("storeFrontPriceFactor", block=block) / 1e18
    tag = hex(block)

    def call(data: str) -> tuple[str, list[Any]]:
        return "eth_call", [{"to": comet.address, "data": data}, tag]

    calls = []
    for u in accounts:
        calls.append(call(comet.encode("borrowBalanceOf", u)))
        calls.append(call(comet.encode("balanceOf", u)))
        calls += [call(comet.encode("collateralBalanceOf", u, a)) for a in assets[1:]]
    answers: list[Any] = []
    for i in range(0, len(calls), 500):
        answers.extend(batch(rpc.url, calls[i : i + 500]))
    n, m = len(accounts), len(assets)
    coll, debt = np.zeros((n, m)), np.zeros((n, m))
    per = m + 1
    for i in range(n):
        words = [decode(["uint256"], bytes.fromhex(a[2:]))[0] for a in answers[i * per :][:per]]
        debt[i, 0] = words[0] / 10 ** decimals[0]
        coll[i, 0] = words[1] / 10 ** decimals[0]
        for j in range(1, m):
            coll[i, j] = words[j + 1] / 10 ** decimals[j]
    return {
        "symbols": symbols,
        "coll": coll,
        "debt": debt,
        "prices": prices,
        "lcf": lcf,
        "lf": lf,
        "sfpf": sfpf,
    }


def _plain_losses(book: dict[str, Any], i: int, points: np.ndarray) -> np.ndarray:
    """Account ``i``'s reserves' loss at each point, from Comet's rules written out."""
    c, d = book["coll"][i].copy(), float(book["debt"][i, 0])
    c[0] = 0.0  # a base supply is not collateral (and a borrower has none)
    out = []
    for pt in points:
        q = book["prices"] * pt
        loss = 0.0
        if d > 0 and float((c * q * book["lcf"]).sum()) < d * q[0]:
            value = c * q
            credit = float((value * book["lf"]).sum())
            paid = max(credit, d * q[0])
            sold = float((value * (1.0 - book["sfpf"] * (1.0 - book["lf"]))).sum())
            loss = max(paid - sold, 0.0)
        out.append(loss)
    return np.array(out)


def _expected(book: dict[str, Any], accounts: list[str], stress: Any) -> dict[str, Any]:
    """(over, safe) account sets by the documented rule computed plainly, and the simulator's
    function's own answer on the same balances."""
    p = book["prices"]
    over, safe, es_plain = set(), set(), np.zeros(len(accounts))
    for i, account in enumerate(accounts):
        debt_usd = float(book["debt"][i, 0] * p[0])
        margin = float((book["coll"][i] * p).sum()) - debt_usd  # equity
        if debt_usd < 100.0:
            safe.add(account)
            continue
        prob: StressSet = stress.probabilistic
        per = _plain_losses(book, i, prob.points)
        es_plain[i] = float(risk_es(per, alpha=ALPHA, weights=prob.weights))
        loss = es_plain[i]
        named: StressSet | None = stress.named
        if named is not None:
            per = _plain_losses(book, i, named.points)
            bounds = [*named.starts.tolist(), named.n_points]
            for k in range(named.n_scenarios):
                loss = max(loss, float(per[bounds[k] : bounds[k + 1]].max()))
        if loss > margin:
            over.add(account)
        if loss < margin - 0.1 * abs(margin):
            safe.add(account)
    terms = CometLossTerms(0, book["lcf"], book["lf"], book["sfpf"])
    sim = evaluate_comet(
        book["coll"], book["debt"], p, terms, stress.probabilistic, named=stress.named, alpha=ALPHA
    )
    by_sim = {a for i, a in enumerate(accounts) if sim.severity[i] > 0}
    np.testing.assert_allclose(sim.es_usd, es_plain, rtol=1e-9, atol=1e-6)
    return {"over": over, "safe": safe, "simulator_over": by_sim, "es": es_plain}


def _open_flags(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT account FROM flags WHERE status = 'open'")}


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def test_keeper_flags_comet_accounts_by_the_reserves_loss(
    comet_isolated: Any, tmp_path: Path
) -> None:
    dev = comet_isolated
    dep = dev.deployment
    db = tmp_path / "keeper.sqlite"
    comet = Contract(dev.rpc, dep["comet"], "Comet")
    settings = KeeperSettings(
        rpc_url=dep["rpc_url"],
        provider=dep["comet"],
        protocol="compound-v3",
        expected_chain_id=dep["chain_id"],
        multicall3=dep["multicall3"],
        db_path=db,
        scenarios=(),
        mc_paths=MC_PATHS,
        alpha=ALPHA,
        clear_blocks=CLEAR_BLOCKS,
        metrics_port=0,
        poll_interval_s=0.1,
        rps=0,
    )
    weth = comet.call("getPrice", dep["reserves"]["WETH"]["feed"]) / 1e8

    async def main() -> None:
        keeper = Keeper(settings, sinks=[JsonLinesSink(tmp_path / "events.jsonl")])
        task = asyncio.create_task(keeper.run())
        try:
            head0 = dev.rpc.block_number()
            await _until(lambda: keeper.health.processed == head0, 90, "the first block")
            book = keeper.book
            assert book is not None
            accounts = sorted(book.accounts)
            assert {a.lower() for a in dev.accounts} <= {a.lower() for a in accounts}
            chain0 = await asyncio.to_thread(_chain_book, dev.rpc, dep["comet"], accounts, head0)
            stress = build_stress_set(chain0["symbols"], (), mc_paths=MC_PATHS)
            assert chain0["symbols"] == [r.symbol for r in book.reserves]
            calm = _expected(chain0, accounts, stress)
            # a calm market: some accounts have a positive ES, none above its equity
            assert (calm["es"] > 0).sum() >= 5
            assert calm["over"] == calm["simulator_over"] == set() == _open_flags(db)

            # WETH -40%: the flags at that very block are exactly the expected ones
            b1 = await asyncio.to_thread(devnet_set_price, dep, "WETH", weth * 0.6, dev.rpc)
            await _until(lambda: (keeper.health.processed or 0) >= b1, 60, f"block {b1}")
            assert keeper.health.processed == b1
            chain1 = await asyncio.to_thread(_chain_book, dev.rpc, dep["comet"], accounts, b1)
            crash = _expected(chain1, accounts, stress)
            assert len(crash["over"]) >= 10
            assert crash["over"] == crash["simulator_over"] == _open_flags(db)
            with sqlite3.connect(db) as con:
                opened_at = dict(con.execute("SELECT account, first_block FROM flags"))
            assert {opened_at[a] for a in crash["over"]} == {b1}

            # an absorb: the keeper re-reads the absorbed account from the AbsorbDebt log, its
            # debt is gone and its flag clears after CLEAR_BLOCKS safe blocks
            victims = [a for a in sorted(crash["over"]) if comet.call("isLiquidatable", a)]
            assert victims, "a 40% crash leaves some flagged account liquidatable"
            victim = victims[0]
            absorber = dev.rpc.accounts()[3]
            receipt = await asyncio.to_thread(
                comet.transact, "absorb", absorber, [victim], sender=absorber
            )
            b2 = int(receipt["blockNumber"], 16)
            await _until(lambda: (keeper.health.processed or 0) >= b2, 60, f"block {b2}")
            assert keeper.book is not None
            row = keeper.book.row[victim]
            assert keeper.book.arrays()[1][row].sum() == 0.0  # re-read at the absorb's block
            assert victim in _open_flags(db)  # hysteresis: not on the first safe block
            for _ in range(CLEAR_BLOCKS):
                dev.rpc.mine()
                b = dev.rpc.block_number()
                await _until(lambda b=b: (keeper.health.processed or 0) >= b, 60, f"block {b}")
            assert victim not in _open_flags(db)
            assert _open_flags(db) == crash["over"] - {victim}

            # /metrics and /healthz as for Aave
            port = keeper.server.port  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200, await r.text()
            fam = {f.name: f for f in text_string_to_metric_families(text)}
            open_now = sum(x.value for x in fam["shortfall_keeper_open_flags"].samples)
            assert open_now == len(crash["over"]) - 1
            assert fam["shortfall_keeper_accounts_watched"].samples[0].value == len(accounts)
            info = fam["shortfall_keeper_info"].samples[0].labels
            assert info["protocol"] == "compound-v3"
            assert set(keeper.chain.stats.requests) <= READ_METHODS, keeper.chain.stats.requests
        finally:
            keeper.request_stop()
            await asyncio.wait_for(task, timeout=10)
        lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
        kinds = [e["kind"] for e in lines]
        assert kinds.count("open") == len(crash["over"]) and kinds.count("clear") == 1

    asyncio.run(main())
