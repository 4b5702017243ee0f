"""The keeper against a real anvil devnet: flags, clears, anvil restart, SIGKILL, webhook.

The expected flags are computed here, independently of the keeper's reads and kernels:
balances, prices, LTs and bonuses come from plain ``eth_call``s on the devnet contracts,
losses from a loop over the stress sets' points (margin fall plus the bonus of the
liquidation ``simulator.cascade.rules.plan_liquidation`` allows there), ES from
``simulator.risk.es`` over the probabilistic set, each named stress's worst point apart; then
the documented rule (over: debt >= $100 and max(ES, worst named loss) > margin; safe: less
debt, or that loss < 0.9 x margin).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from aiohttp import web
from eth_abi import decode
from prometheus_client.parser import text_string_to_metric_families

from keeper.daemon import Keeper, KeeperSettings
from keeper.devnet.anvil import Anvil
from keeper.devnet.chain import Contract, Rpc
from keeper.devnet.deploy import set_price as devnet_set_price
from keeper.devnet.launch import setup_market
from keeper.evaluate import evaluate_book
from keeper.sinks import JsonLinesSink, WebhookSink
from keeper.stress_inputs import build_stress_set
from simulator.risk import es as risk_es
from tests.rpc_batch import batch

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("black-thursday-2020",)
MC_PATHS = 400
ALPHA = 0.975
CLEAR_BLOCKS = 3


# -- independent expectation ------------------------------------------------------------


def _chain_book(rpc: Rpc, deployment: dict[str, Any], accounts: list[str]) -> dict[str, Any]:
    """Balances (token units), prices (USD) and each account's LTs and bonuses (its e-mode
    category's for the category's collateral, v3.2+ bitmaps) read with plain eth_calls."""
    dp = Contract(rpc, deployment["data_provider"], "AaveProtocolDataProvider")
    oracle = Contract(rpc, deployment["oracle"], "AaveOracle")
    pool = Contract(rpc, deployment["pool"], "Pool")
    assets = list(pool.call("getReservesList"))
    symbols = [Contract(rpc, a, "DevnetERC20").call("symbol") for a in assets]
    conf = [dp.call("getReserveConfigurationData", a) for a in assets]
    decimals = np.array([c[0] for c in conf])
    lt = np.array([c[2] / 1e4 for c in conf])
    bonus = np.array([max(0.0, (c[3] - 10_000) / 1e4) for c in conf])
    prices = np.array([oracle.call("getAssetPrice", a) / 1e8 for a in assets])
    calls = [
        ("eth_call", [{"to": dp.address, "data": dp.encode("getUserReserveData", a, u)}, "latest"])
        for u in accounts
        for a in assets
    ]
    answers = []
    for i in range(0, len(calls), 500):
        answers.extend(batch(rpc.url, calls[i : i + 500]))
    types = [
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "uint256",
        "uint40",
        "bool",
    ]
    n, m = len(accounts), len(assets)
    coll, debt, enabled = np.zeros((n, m)), np.zeros((n, m)), np.zeros((n, m), dtype=bool)
    for k, raw in enumerate(answers):
        i, j = divmod(k, m)
        out = decode(types, bytes.fromhex(raw[2:]))
        coll[i, j] = out[0] / 10 ** decimals[j]
        debt[i, j] = (out[1] + out[2]) / 10 ** decimals[j]
        enabled[i, j] = out[8]
    account_lt, account_bonus = np.tile(lt, (n, 1)), np.tile(bonus, (n, 1))
    categories: dict[int, tuple[float, float, int]] = {}
    for i, u in enumerate(accounts):
        category = int(pool.call("getUserEMode", u))
        if not category:
            continue
        if category not in categories:
            _ltv, c_lt, c_bonus = pool.call("getEModeCategoryCollateralConfig", category)
            bitmap = int(pool.call("getEModeCategoryCollateralBitmap", category))
            categories[category] = (c_lt / 1e4, max(0.0, (c_bonus - 10_000) / 1e4), bitmap)
        c_lt, c_bonus, bitmap = categories[category]
        for j in range(m):  # reserve id j is getReservesList()[j]
            if bitmap >> j & 1:
                account_lt[i, j], account_bonus[i, j] = c_lt, c_bonus
    return {
        "symbols": symbols,
        "coll": coll,
        "debt": debt,
        "enabled": enabled,
        "prices": prices,
        "lt": account_lt,
        "bonus": account_bonus,
        "in_emode": {accounts[i] for i in range(n) if (account_lt[i] != lt).any()},
    }


def _losses(book: dict[str, Any], i: int, points: np.ndarray, margin: str) -> np.ndarray:
    """Account ``i``'s loss at each point, plainly."""
    from simulator.cascade import EngineConfig
    from simulator.cascade.rules import FLAG_INVALID, plan_liquidation

    cfg = EngineConfig()
    p, lt = book["prices"], book["lt"][i]
    eff = np.where(book["enabled"][i] & (lt > 0), book["coll"][i], 0.0)
    debt = book["debt"][i]
    w = np.ones_like(lt) if margin == "equity" else lt
    now = float((eff * w * p).sum() - (debt * p).sum())
    out = []
    for pt in points:
        q = p * pt
        loss = now - float((eff * w * q).sum() - (debt * q).sum())
        dv, wv = float((debt * q).sum()), float((eff * lt * q).sum())
        if dv > 0 and wv < dv and (eff * q).max() > 0:
            jc, jd = int(np.argmax(eff * q)), int(np.argmax(debt * q))
            repay, seize, _, flag = plan_liquidation(
                eff[jc],
                debt[jd],
                dv,
                wv / dv,
                q[jc],
                q[jd],
                book["bonus"][i, jc],
                0.0,
                cfg.close_factor_threshold_usd,
                cfg.close_factor_hf,
                cfg.default_close_factor,
                cfg.min_leftover_usd,
            )
            if flag != FLAG_INVALID:
                loss += (seize * q[jc] - repay * q[jd]) * (1.0 if margin == "equity" else lt[jc])
        out.append(loss)
    return np.array(out)


def _expected(
    book: dict[str, Any], accounts: list[str], margin: str = "equity", stress: Any = None
) -> tuple[set[str], set[str]]:
    """(over, safe) account sets by the documented rule, computed plainly."""
    if stress is None:
        stress = build_stress_set(book["symbols"], SCENARIOS, mc_paths=MC_PATHS)
    p = book["prices"]
    over, safe = set(), set()
    for i, account in enumerate(accounts):
        lt = book["lt"][i]
        eff = np.where(book["enabled"][i] & (lt > 0), book["coll"][i], 0.0)
        debt_usd = float(book["debt"][i] @ p)
        w = np.ones_like(lt) if margin == "equity" else lt
        m = float((eff * w * p).sum()) - debt_usd
        if debt_usd < 100.0:
            safe.add(account)
            continue
        loss = -np.inf
        prob = stress.probabilistic
        if prob is not None:
            per = _losses(book, i, prob.points, margin)
            bounds = [*prob.starts.tolist(), prob.n_points]
            scen = [per[bounds[k] : bounds[k + 1]].max() for k in range(prob.n_scenarios)]
            loss = float(risk_es(np.array(scen), alpha=ALPHA, weights=prob.weights))
        named = stress.named
        if named is not None:
            per = _losses(book, i, named.points, margin)
            bounds = [*named.starts.tolist(), named.n_points]
            for k in range(named.n_scenarios):
                loss = max(loss, float(per[bounds[k] : bounds[k + 1]].max()))
        if loss > m:
            over.add(account)
        if loss < m - 0.1 * abs(m):
            safe.add(account)
    return over, safe


def _open_flags(db: Path) -> set[str]:
    with sqlite3.connect(db) as con:
        return {r[0] for r in con.execute("SELECT account FROM flags WHERE status = 'open'")}


def _flags_table(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(
            "SELECT account, status, first_block, last_block, es_usd, margin_usd, severity "
            "FROM flags ORDER BY account"
        ).fetchall()


def _webhook_settled(db: Path) -> bool:
    """Every outbox row of the webhook is delivered (or given up): no POST is still owed."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=5) as con:
            (pending,) = con.execute(
                "SELECT COUNT(*) FROM outbox WHERE sink = 'webhook' "
                "AND delivered_at IS NULL AND failed_at IS NULL"
            ).fetchone()
    except sqlite3.OperationalError:
        return False
    return int(pending) == 0


def _integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


#: Every JSON-RPC method the keeper may send: reads only (it holds no key, signs nothing).
READ_METHODS = {
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getCode",
    "eth_call",
    "eth_getLogs",
}


def _progress(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=5) as con:
            row = con.execute("SELECT block_number FROM progress").fetchone()
    except sqlite3.OperationalError:
        return None
    return None if row is None else int(row[0])


def _settings(deployment: dict[str, Any], db: Path, **kw: Any) -> KeeperSettings:
    base: dict[str, Any] = {
        "rpc_url": deployment["rpc_url"],
        "provider": deployment["pool_addresses_provider"],
        "expected_chain_id": deployment["chain_id"],
        "multicall3": deployment["multicall3"],
        "db_path": db,
        "scenarios": SCENARIOS,
        "mc_paths": MC_PATHS,
        "alpha": ALPHA,
        "clear_blocks": CLEAR_BLOCKS,
        "metrics_port": 0,
        "poll_interval_s": 0.1,
        "rps": 0,
    }
    base.update(kw)
    return KeeperSettings(**base)


async def _until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


class Receiver:
    """Loopback webhook receiver (aiohttp) recording every body it accepts."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(text="ok")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook/{secret}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook/SECRET-TOKEN"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


# -- flags open on a price drop, clear after restore --------------------------------------


def test_price_drop_flags_and_restore_clears(
    devnet_isolated, set_price, mine, tmp_path: Path
) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    db = tmp_path / "keeper.sqlite"
    oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
    weth = dep["reserves"]["WETH"]["token"]
    weth_price = oracle.call("getAssetPrice", weth) / 1e8

    async def main() -> None:
        rx = Receiver()
        await rx.start()
        keeper = Keeper(
            _settings(dep, db),
            sinks=[JsonLinesSink(tmp_path / "events.jsonl"), WebhookSink(rx.url, backoff_s=0.01)],
        )
        task = asyncio.create_task(keeper.run())
        try:
            head0 = dev.rpc.block_number()
            await _until(lambda: keeper.health.processed == head0, 60, "the first block")
            accounts = sorted(keeper.book.accounts)  # type: ignore[union-attr]
            assert set(a.lower() for a in dev.accounts) <= {a.lower() for a in accounts}
            book0 = await asyncio.to_thread(_chain_book, dev.rpc, dep, accounts)
            over0, safe0 = _expected(book0, accounts)
            assert _open_flags(db) == over0

            # WETH -30%: the flags follow within two blocks.
            b1 = await asyncio.to_thread(set_price, "WETH", weth_price * 0.7)
            await _until(lambda: (keeper.health.processed or 0) >= b1, 30, f"block {b1}")
            book1 = await asyncio.to_thread(_chain_book, dev.rpc, dep, accounts)
            over1, _ = _expected(book1, accounts)
            newly = over1 - over0
            assert newly, "a 30% WETH drop should put some accounts over their margin"
            assert _open_flags(db) == over0 | over1
            with sqlite3.connect(db) as con:
                opened_at = dict(con.execute("SELECT account, first_block FROM flags"))
            # within 2 blocks of the drop: in fact at the very block that carried it
            assert {opened_at[a] for a in newly} == {b1}

            # Restore: the flags that are safe again clear after CLEAR_BLOCKS blocks, not before.
            b2 = await asyncio.to_thread(set_price, "WETH", weth_price)
            await _until(lambda: (keeper.health.processed or 0) >= b2, 30, f"block {b2}")
            assert _open_flags(db) >= newly, "hysteresis: nothing clears on the first safe block"
            for _ in range(CLEAR_BLOCKS):
                b = await asyncio.to_thread(mine, 1)
                await _until(lambda b=b: (keeper.health.processed or 0) >= b, 30, f"block {b}")
            expected_open = over0 | (newly - safe0)
            assert _open_flags(db) == expected_open
            assert (newly & safe0) and not (newly & safe0 & _open_flags(db))

            # /metrics parses and agrees with the database.
            port = keeper.server.port  # type: ignore[union-attr]
            async with aiohttp.ClientSession() as s:
                async with s.get(f"http://127.0.0.1:{port}/metrics") as r:
                    text = await r.text()
                async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                    assert r.status == 200, await r.text()
            fam = {f.name: f for f in text_string_to_metric_families(text)}
            assert sum(x.value for x in fam["shortfall_keeper_open_flags"].samples) == len(
                expected_open
            )
            assert fam["shortfall_keeper_accounts_watched"].samples[0].value == len(accounts)
            assert fam["shortfall_keeper_last_block"].samples[0].value == keeper.health.processed
            assert "SECRET-TOKEN" not in text

            # One webhook message per change, no more: once the outbox owes nothing, every
            # POST the keeper will ever send for these events has been sent.
            await _until(lambda: _webhook_settled(db), 10, "webhook deliveries")
            # Read-only: every request it sent was a read.
            assert set(keeper.chain.stats.requests) <= READ_METHODS, keeper.chain.stats.requests
        finally:
            keeper.request_stop()
            t0 = time.monotonic()
            await asyncio.wait_for(task, timeout=10)
            assert time.monotonic() - t0 < 5.0
            await rx.stop()
        with sqlite3.connect(db) as con:
            events = [r[0] for r in con.execute("SELECT event_id FROM flag_events ORDER BY seq")]
        got = [b["event_id"] for b in rx.bodies]
        assert sorted(got) == sorted(events) and len(set(got)) == len(got)
        assert all(
            b["chain_id"] == dep["chain_id"] and b["market"] == dep["pool"] for b in rx.bodies
        )
        kinds = {b["kind"] for b in rx.bodies}
        assert {"open", "clear"} <= kinds
        lines = (tmp_path / "events.jsonl").read_text().splitlines()
        assert len(lines) == len(events)

    asyncio.run(main())


# -- e-mode accounts are scored with their category's parameters ---------------------------


def test_keeper_health_factors_of_emode_accounts_equal_the_pools(
    devnet_isolated, tmp_path: Path
) -> None:
    """The keeper's liquidation buffer of every e-mode account gives the Pool's own health
    factor (getUserAccountData): the category's LT applies, not the reserves'."""
    dep = devnet_isolated.deployment

    async def main() -> tuple[Any, Any, Any, dict[str, Any]]:
        settings = _settings(
            dep, tmp_path / "k.sqlite", metrics_port=None, margin="liquidation-buffer"
        )
        keeper = Keeper(settings, sinks=[])
        await keeper.start()
        try:
            await keeper.iterate()
            book, emode = keeper.book, keeper.emode
            assert book is not None and emode is not None and keeper.last is not None
            coll, debt, enabled = book.arrays()
            prices = keeper.prices[: len(book.assets)]  # type: ignore[index]
            args = (coll, debt, enabled, prices, book.reserves, keeper.stress, settings)
            ours = evaluate_book(*args, emode=emode, categories=book.categories())
            plain = evaluate_book(*args)
            rows = np.flatnonzero(book.categories() > 0)
            accounts = [book.accounts[i] for i in rows]
            chain = await keeper.adapter.read_account_data(accounts, keeper.last.number)
        finally:
            await keeper.close()
        return rows, ours, plain, {a: chain[a] for a in accounts}

    rows, ours, plain, chain = asyncio.run(main())
    assert len(rows) >= 20, "the devnet seeds e-mode accounts"
    apart = 0
    for i, (account, data) in zip(rows, chain.items(), strict=True):
        d = float(ours.debt_usd[i])
        assert d > 0, account  # the seeded e-mode accounts all borrow
        want = data[5] / 1e18
        assert (ours.margin_usd[i] + d) / d == pytest.approx(want, rel=1e-6), account
        assert data[1] / 1e8 == pytest.approx(d, rel=1e-6, abs=1e-8), account
        apart += abs((plain.margin_usd[i] + d) / d - want) > 1e-3 * want
    assert apart >= len(rows) // 2, "the reserves' own LTs would give other health factors"


# -- the node goes away and comes back -----------------------------------------------------


def test_keeper_survives_anvil_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The old node's closed connections linger in TIME_WAIT on its port; anvil itself binds
    # with SO_REUSEADDR, the devnet's pre-flight check does not.
    monkeypatch.setattr("keeper.devnet.anvil._port_in_use", lambda port: False)
    node = Anvil(log_path=tmp_path / "anvil.log")
    node.start()
    rpc = Rpc(node.rpc_url)
    node2: Anvil | None = None
    try:
        dep, _book = setup_market(rpc, 30, 11)
        db = tmp_path / "keeper.sqlite"

        async def main() -> None:
            nonlocal node2
            keeper = Keeper(_settings(dep, db, stall_s=1.0, max_backoff_s=1.0), sinks=[])
            task = asyncio.create_task(keeper.run())
            port = None
            try:
                head = rpc.block_number()
                await _until(lambda: keeper.health.processed == head, 60, "the first block")
                accounts = sorted(keeper.book.accounts)  # type: ignore[union-attr]
                book0 = await asyncio.to_thread(_chain_book, rpc, dep, accounts)
                over0, _ = _expected(book0, accounts)
                assert _open_flags(db) == over0
                port = keeper.server.port  # type: ignore[union-attr]
                state = await asyncio.to_thread(rpc.call, "anvil_dumpState")
                await asyncio.to_thread(node.stop)

                async def healthz_text() -> tuple[int, str]:
                    try:
                        async with (
                            aiohttp.ClientSession() as s,
                            s.get(f"http://127.0.0.1:{port}/healthz") as r,
                        ):
                            return r.status, await r.text()
                    except aiohttp.ClientError:
                        return -1, ""

                async def healthz() -> int:
                    return (await healthz_text())[0]

                # Wait for the 503 that names the dead node. A bare 503 is not enough: the
                # expectation above takes longer than stall_s (1 s) and anvil mines nothing
                # meanwhile, so /healthz is already 503 ("no new block") when the node stops;
                # the restart then raced the keeper's next head poll, and when it won (run
                # alone: a quick machine) the keeper never met the dead node at all.
                deadline = time.monotonic() + 15
                while True:
                    status, text = await healthz_text()
                    if status == 503 and "node unreachable" in text:
                        break
                    assert time.monotonic() < deadline, "/healthz never reported the dead node"
                    await asyncio.sleep(0.1)
                assert not task.done(), "the keeper must stay alive while the node is down"

                node2 = Anvil(port=node.port, log_path=tmp_path / "anvil2.log")
                await asyncio.to_thread(node2.start)
                rpc2 = Rpc(node2.rpc_url)
                await asyncio.to_thread(rpc2.call, "anvil_loadState", state)
                await asyncio.to_thread(rpc2.mine, 1)
                b = await asyncio.to_thread(devnet_set_price, dep, "WETH", 1000.0, rpc2)
                await _until(lambda: (keeper.health.processed or 0) >= b, 60, "recovery")
                # Recovered with the right answer: the price move on the restarted node is
                # in the flags, as an independent computation on that node says.
                book1 = await asyncio.to_thread(_chain_book, rpc2, dep, accounts)
                over1, _ = _expected(book1, accounts)
                assert over1 - over0, "WETH at $1,000 should put more accounts over"
                assert _open_flags(db) == over0 | over1
                # healthy again: stall_s is 1 s here and anvil mines only on demand, so the
                # checks above may outlast the head's freshness; a new block makes it fresh
                deadline = time.monotonic() + 10
                while await healthz() != 200:
                    assert time.monotonic() < deadline, "/healthz did not recover"
                    await asyncio.to_thread(rpc2.mine, 1)
                    await asyncio.sleep(0.2)
                families = text_string_to_metric_families(keeper.metrics.render().decode())
                errors = {
                    x.labels["kind"]: x.value
                    for f in families
                    if f.name == "shortfall_keeper_rpc_errors"
                    for x in f.samples
                    if x.name.endswith("_total")
                }
                assert errors.get("connection", 0) >= 1, errors
                rpc2.close()
            finally:
                keeper.request_stop()
                await asyncio.wait_for(task, timeout=10)

        asyncio.run(main())
    finally:
        rpc.close()
        node.stop()
        if node2 is not None:
            node2.stop()


# -- SIGKILL mid-run: the flags table equals an uninterrupted run's ------------------------


def _actions(dep: dict[str, Any], rpc: Rpc, prices: dict[str, float]) -> list[Callable[[], int]]:
    def price(sym: str, factor: float) -> Callable[[], int]:
        return lambda: devnet_set_price(dep, sym, prices[sym] * factor, rpc=rpc)

    def mine() -> int:
        rpc.mine(1)
        return rpc.block_number()

    return [
        price("WETH", 0.7),
        mine,
        price("WBTC", 0.75),
        mine,
        price("WETH", 1.0),
        mine,
        mine,
        price("WBTC", 1.0),
        mine,
        mine,
        mine,
        price("WETH", 0.72),
        mine,
    ]


def _spawn(dep_path: Path, db: Path, hook: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [
        sys.executable, "-m", "keeper.cli", "keeper", "--deployment", str(dep_path), "--db", str(db),
        "--scenario", SCENARIOS[0], "--mc-paths", str(MC_PATHS), "--clear-blocks", str(CLEAR_BLOCKS),
        "--metrics-port", "-1", "--poll", "0.1", "--rps", "0", "--json", "--webhook", hook,
    ]  # fmt: skip
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait_progress(db: Path, block: int, timeout: float = 60, poll: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while (_progress(db) or -1) < block:
        assert time.monotonic() < deadline, f"keeper did not reach block {block}"
        time.sleep(poll)


def _wait_until(pred: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def test_sigkill_restart_equals_uninterrupted_run(devnet_isolated, tmp_path: Path) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
    prices = {s: oracle.call("getAssetPrice", r["token"]) / 1e8 for s, r in dep["reserves"].items()}
    # Interest accrues per second: the re-mined blocks of run 2 get other timestamps than
    # run 1's, so the two runs compare exactly only with the rates at 0 (indexes stay put).
    pool = Contract(dev.rpc, dep["pool"], "Pool")
    for r in dep["reserves"].values():
        pool.transact("setReserveRates", r["token"], 0, 0, sender=dev.admin, gas=300_000)

    # The receiver runs in its own thread and loop, like a remote service.
    rx = Receiver()
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(rx.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    try:
        snap = dev.rpc.snapshot()
        # Run 1: uninterrupted, stepping a keeper process through every block.
        db1 = tmp_path / "run1.sqlite"
        proc = _spawn(dev.deployment_path, db1, rx.url)
        try:
            _wait_progress(db1, dev.rpc.block_number())
            for act in _actions(dep, dev.rpc, prices):
                _wait_progress(db1, act())
            _wait_until(lambda: _webhook_settled(db1), "run 1's webhook deliveries")
        finally:
            t0 = time.monotonic()
            proc.terminate()
            assert proc.wait(10) == 0, "SIGTERM: clean exit with code 0"
            assert time.monotonic() - t0 < 5.0, "SIGTERM: shut down within 5 s"
        table1 = _flags_table(db1)
        assert any(r[1] == "open" for r in table1) and any(r[1] == "cleared" for r in table1)

        assert _integrity_ok(db1)
        run1_bodies = [b["event_id"] for b in rx.bodies]
        assert len(run1_bodies) == len(set(run1_bodies)), "uninterrupted: one POST per change"

        # Run 2: the same chain history, the keeper SIGKILLed five times mid-run: at random
        # points after a new block (inside or before its iteration), and right after a
        # block's commit (its events in the outbox, their webhook POSTs just starting).
        assert dev.rpc.revert(snap)
        db2 = tmp_path / "run2.sqlite"
        before = len(rx.bodies)
        proc = _spawn(dev.deployment_path, db2, rx.url)
        kill_inside = {0, 3, 7}
        kill_after_commit = {1, 11}
        try:
            _wait_progress(db2, dev.rpc.block_number())
            for k, act in enumerate(_actions(dep, dev.rpc, prices)):
                block = act()
                if k in kill_inside:
                    time.sleep(0.02 * k)
                if k in kill_after_commit:
                    _wait_progress(db2, block, poll=0.002)
                if k in kill_inside | kill_after_commit:
                    proc.send_signal(signal.SIGKILL)
                    proc.wait(10)
                    proc = _spawn(dev.deployment_path, db2, rx.url)
                _wait_progress(db2, block)
            _wait_until(lambda: _webhook_settled(db2), "run 2's webhook deliveries")
        finally:
            # SIGINT (Ctrl-C) stops it as cleanly as SIGTERM.
            t0 = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(10) == 0, "SIGINT: clean exit with code 0"
            assert time.monotonic() - t0 < 5.0, "SIGINT: shut down within 5 s"
        assert _integrity_ok(db2)
        table2 = _flags_table(db2)
        assert [r[:4] + r[6:] for r in table2] == [r[:4] + r[6:] for r in table1]
        np.testing.assert_allclose([r[4:6] for r in table2], [r[4:6] for r in table1], rtol=1e-9)
        with sqlite3.connect(db1) as c1, sqlite3.connect(db2) as c2:
            q = "SELECT event_id, kind, account, block_number, severity FROM flag_events ORDER BY seq"
            ev1, ev2 = c1.execute(q).fetchall(), c2.execute(q).fetchall()
        assert ev2 == ev1, "no flag event lost or duplicated"
        assert sorted(run1_bodies) == sorted(e[0] for e in ev1)
        # Every change reached the webhook. A redelivery is possible only for a POST in
        # flight when a kill struck (sent, not yet marked): at most one per kill, and it
        # carries the same event id, so a receiver de-duplicating on it sees each change once.
        got = [b["event_id"] for b in rx.bodies[before:]]
        assert set(got) == {e[0] for e in ev2}
        assert len(got) - len(set(got)) <= len(kill_inside | kill_after_commit)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(rx.stop())
        loop.close()


# -- a reorg: the processed block disappears ------------------------------------------------


def test_reorg_rolls_back_and_recomputes(devnet_isolated, set_price, mine, tmp_path: Path) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
    weth_price = oracle.call("getAssetPrice", dep["reserves"]["WETH"]["token"]) / 1e8
    db = tmp_path / "keeper.sqlite"

    async def main() -> None:
        keeper = Keeper(_settings(dep, db, metrics_port=None), sinks=[])
        await keeper.start()
        try:
            fork = dev.rpc.snapshot()
            h0 = dev.rpc.block_number()
            assert await keeper.iterate()
            before = _open_flags(db)
            b1 = await asyncio.to_thread(set_price, "WETH", weth_price * 0.7)
            assert await keeper.iterate()
            opened = _open_flags(db) - before
            assert opened and keeper.health.processed == b1
            # The block holding the price drop is reorganised away.
            assert dev.rpc.revert(fork)
            await asyncio.to_thread(mine, 2)
            assert await keeper.iterate()
            assert keeper.metrics.reorgs._value.get() == 1  # type: ignore[attr-defined]
            progress = keeper.store.progress()  # type: ignore[union-attr]
            chain_head = dev.w3.eth.get_block("latest")
            assert progress.block_number == h0 + 2 == chain_head["number"]
            assert progress.block_hash == chain_head["hash"].to_0x_hex()
            # Published flags are not retracted: on the new chain they clear by the rule.
            for _ in range(CLEAR_BLOCKS):
                await asyncio.to_thread(mine, 1)
                await keeper.iterate()
            # Those safe again on the new chain clear; one left in the hysteresis band (loss
            # under the margin but not under 0.9 x margin) keeps its flag, by the rule.
            accounts = sorted(opened)
            _, safe = _expected(_chain_book(dev.rpc, dep, accounts), accounts)
            assert safe, "the price came back: some opened account should be safe again"
            assert not (_open_flags(db) & safe)
            kinds = {(e["account"], e["kind"]) for e in keeper.store.events()}  # type: ignore[union-attr]
            assert all((a, "clear") in kinds for a in safe)
            assert all((a, "clear") not in kinds for a in opened - safe)
        finally:
            await keeper.close()

    asyncio.run(main())


# -- a faulty RPC: 429, 502, dropped connections and timeouts are survived ---------------------


class FaultyProxy:
    """Loopback JSON-RPC proxy that answers 429, 502, drops the connection or answers too late
    on a fixed schedule, and forwards everything else to anvil."""

    SCHEDULE = ("ok", "429", "ok", "drop", "ok", "ok", "slow", "502", "ok", "ok")

    def __init__(self, upstream: str, slow_seconds: float = 1.0) -> None:
        self.upstream = upstream
        self.slow_seconds = slow_seconds
        self.seen = 0
        self.faults: dict[str, int] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v2/SECRET-RPC-KEY"
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        action = self.SCHEDULE[self.seen % len(self.SCHEDULE)]
        self.seen += 1
        if action != "ok":
            self.faults[action] = self.faults.get(action, 0) + 1
            if action == "429":
                return web.Response(status=429, text="Too Many Requests")
            if action == "502":
                return web.Response(status=502, text="Bad Gateway")
            if action == "drop":
                assert request.transport is not None
                request.transport.close()
                return web.Response(status=200)
            await asyncio.sleep(self.slow_seconds)
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as upstream:
            return web.Response(body=await upstream.read(), content_type="application/json")


def test_faulty_rpc_gives_the_same_flags(
    devnet_isolated, set_price, mine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
    weth_price = oracle.call("getAssetPrice", dep["reserves"]["WETH"]["token"]) / 1e8

    async def main() -> None:
        proxy = FaultyProxy(dep["rpc_url"])
        await proxy.start()
        clean = Keeper(_settings(dep, tmp_path / "clean.sqlite", metrics_port=None), sinks=[])
        flaky = Keeper(
            _settings(
                {**dep, "rpc_url": proxy.url},
                tmp_path / "flaky.sqlite",
                metrics_port=None,
                rpc_timeout_s=0.4,
                rpc_retries=8,
            ),
            sinks=[],
        )
        try:
            with caplog.at_level("DEBUG"):
                for k in (clean, flaky):
                    await k.start()
                steps = [
                    lambda: None,
                    lambda: set_price("WETH", weth_price * 0.7),
                    lambda: mine(1),
                    lambda: set_price("WETH", weth_price),
                    *(lambda: mine(1) for _ in range(CLEAR_BLOCKS)),
                ]
                for act in steps:
                    await asyncio.to_thread(act)
                    for k in (clean, flaky):
                        await k.iterate()
            assert flaky.health.processed == clean.health.processed == dev.rpc.block_number()
            assert _flags_table(tmp_path / "flaky.sqlite") == _flags_table(
                tmp_path / "clean.sqlite"
            )
            assert len(_flags_table(tmp_path / "clean.sqlite")) > 0
            assert set(proxy.faults) == {"429", "502", "drop", "slow"}
            errors = dict(flaky.chain.stats.errors)
            assert {"rate_limited", "server_error", "connection", "timeout"} <= set(errors), errors
            text = flaky.metrics.render().decode()
            assert 'shortfall_keeper_rpc_errors_total{kind="rate_limited"}' in text
            assert "SECRET-RPC-KEY" not in text
        finally:
            await clean.close()
            await flaky.close()
            await proxy.stop()

    asyncio.run(main())
    assert "SECRET-RPC-KEY" not in caplog.text


# -- cascade-adjusted stress: pull, simulate, keeper --stress-from --------------------------


def test_stress_from_simulate_results(devnet_isolated, tmp_path: Path) -> None:
    from keeper.pull import pull, settings_from_deployment
    from simulator.results import save_results
    from simulator.simulation import simulate

    dev = devnet_isolated
    dep = dev.deployment
    snap = asyncio.run(pull(settings_from_deployment(dev.deployment_path, use_cache=False)))
    results = tmp_path / "results"
    save_results(simulate(snap, "default", n_paths=200, seed=4, record_states=True), results)
    db = tmp_path / "keeper.sqlite"
    settings = _settings(
        dep, db, scenarios=(), stress_from=results, margin="liquidation-buffer", once=True
    )
    assert asyncio.run(Keeper(settings, sinks=[]).run()) == 0

    accounts = sorted(snap.book().accounts.tolist())
    book = _chain_book(dev.rpc, dep, accounts)
    # the joint states, reduced as documented (simulator.states), named stresses apart
    stress = build_stress_set(book["symbols"], [], stress_from=results, alpha=ALPHA)
    assert stress.probabilistic is not None and stress.named is None
    over, _ = _expected(book, accounts, "liquidation-buffer", stress)
    assert over, "cascade-adjusted moves should put some accounts over their buffer"
    assert _open_flags(db) == over
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT rule, es_contribution_usd FROM flags").fetchall()
    assert {r[0] for r in rows} == {"es"}  # no named stress: ES opened every flag
    assert all(r[1] is not None for r in rows)  # each carries its ES contribution


# -- newHeads over WebSocket wakes the keeper before the next poll -----------------------------


def test_new_heads_subscription_wakes_the_loop(devnet_isolated, mine, tmp_path: Path) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    ws = dep["rpc_url"].replace("http://", "ws://")
    db = tmp_path / "keeper.sqlite"

    async def main() -> None:
        keeper = Keeper(_settings(dep, db, poll_interval_s=60.0, ws_url=ws), sinks=[])
        task = asyncio.create_task(keeper.run())
        try:
            head = dev.rpc.block_number()
            await _until(lambda: keeper.health.processed == head, 60, "the first block")
            await _until(lambda: keeper.subscribed, 30, "the newHeads subscription")
            for _ in range(2):
                b = await asyncio.to_thread(mine, 1)
                # far sooner than the 60 s poll
                await _until(lambda b=b: (keeper.health.processed or 0) >= b, 10, f"block {b}")
        finally:
            keeper.request_stop()
            await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())


# -- a slow iteration: never queued behind itself, and its lag shows ------------------------


def test_slow_iteration_skips_to_the_latest_block_and_reports_its_lag(
    devnet_isolated, set_price, mine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import keeper.evaluate as evaluation

    dev = devnet_isolated
    dep = dev.deployment
    oracle = Contract(dev.rpc, dep["oracle"], "AaveOracle")
    weth_price = oracle.call("getAssetPrice", dep["reserves"]["WETH"]["token"]) / 1e8
    db = tmp_path / "keeper.sqlite"
    gate, inside = threading.Event(), threading.Event()
    hold = {"on": False}
    real_evaluate = evaluation.evaluate_book

    def evaluate(*args: Any, **kwargs: Any) -> Any:
        if hold["on"]:
            hold["on"] = False
            inside.set()
            assert gate.wait(60), "the test never released the slow iteration"
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_book", evaluate)

    async def main() -> None:
        keeper = Keeper(_settings(dep, db, max_lag_blocks=3), sinks=[])
        task = asyncio.create_task(keeper.run())
        try:
            h0 = dev.rpc.block_number()
            await _until(lambda: keeper.health.processed == h0, 60, "the first block")
            port = keeper.server.port  # type: ignore[union-attr]

            async def healthz() -> tuple[int, str]:
                async with (
                    aiohttp.ClientSession() as s,
                    s.get(f"http://127.0.0.1:{port}/healthz") as r,
                ):
                    return r.status, await r.text()

            assert (await healthz())[0] == 200
            hold["on"] = True
            b1 = await asyncio.to_thread(set_price, "WETH", weth_price * 0.7)
            await _until(inside.is_set, 30, f"the iteration of block {b1} to get stuck")
            top = await asyncio.to_thread(mine, 6)
            # While the iteration is stuck, the lag is measured against the chain.
            await _until(
                lambda: keeper.metrics.blocks_behind._value.get() == top - h0,  # type: ignore[attr-defined]
                30,
                "blocks_behind_head to show the stuck iteration's lag",
            )
            stamps = {b: dev.w3.eth.get_block(b)["timestamp"] for b in (h0, top)}
            assert keeper.metrics.seconds_behind._value.get() == stamps[top] - stamps[h0]  # type: ignore[attr-defined]
            status, why = await healthz()
            assert status == 503 and "blocks behind" in why, why
            gate.set()
            await _until(lambda: keeper.health.processed == top, 30, f"block {top}")
            assert (await healthz())[0] == 200
            assert keeper.metrics.blocks_behind._value.get() == 0  # type: ignore[attr-defined]
            # The blocks mined during the slow iteration were never worked on one by one.
            with sqlite3.connect(db) as con:
                done = [r[0] for r in con.execute("SELECT block_number FROM block_hashes")]
            assert sorted(b for b in done if b >= h0) == [h0, b1, top]
            # ... and what happened in them is in the flags anyway.
            book = await asyncio.to_thread(_chain_book, dev.rpc, dep, sorted(keeper.book.accounts))  # type: ignore[union-attr]
            over, _ = _expected(book, sorted(keeper.book.accounts))  # type: ignore[union-attr]
            assert over and over <= _open_flags(db)
        finally:
            gate.set()
            keeper.request_stop()
            await asyncio.wait_for(task, timeout=10)

    asyncio.run(main())


# -- --once stops on SIGTERM even in the middle of its (long) first refresh ---------------------


class _StallingProxy:
    """Loopback JSON-RPC proxy, in its own thread, that holds every ``eth_getLogs`` for a
    minute (a slow archive node) and forwards everything else to anvil."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.url = ""
        self.stalled = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if b"eth_getLogs" in body:
            self.stalled.set()
            await asyncio.sleep(60)
        assert self._session is not None
        async with self._session.post(
            self.upstream, data=body, headers={"Content-Type": "application/json"}
        ) as upstream:
            return web.Response(body=await upstream.read(), content_type="application/json")

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"
        self._session = aiohttp.ClientSession()

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> _StallingProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_once_stops_within_five_seconds_mid_refresh(devnet, tmp_path: Path, sig: int) -> None:
    db = tmp_path / "keeper.sqlite"
    with _StallingProxy(devnet.rpc_url) as proxy:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [
            sys.executable, "-m", "keeper.cli", "keeper", "--deployment",
            str(devnet.deployment_path), "--rpc", proxy.url, "--db", str(db), "--once",
            "--json", "--metrics-port", "-1", "--timeout", "120",
        ]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proxy.stalled.wait(60), "the keeper never reached its log scan"
            t0 = time.monotonic()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=10)
            elapsed = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert elapsed < 5.0, f"{signal.Signals(sig).name}: took {elapsed:.1f} s"
    # Interrupted before the head was processed: not a success, no summary, no traceback.
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err and out == b""
    assert _progress(db) is None and _integrity_ok(db)


# -- accounts discovered from logs are watched, and kept through a failed iteration ------------


def test_new_accounts_from_logs_survive_a_failed_iteration_and_a_restart(
    devnet_isolated, tmp_path: Path
) -> None:
    from keeper.devnet.seed import plan_book, seed_book
    from keeper.errors import RpcUnavailable

    dev = devnet_isolated
    dep = dev.deployment
    db = tmp_path / "keeper.sqlite"
    newcomers = [a.address for a in plan_book(5, seed=4242).accounts]

    async def main() -> None:
        keeper = Keeper(_settings(dep, db, metrics_port=None), sinks=[])
        await keeper.start()
        try:
            assert await keeper.iterate()
            accounts0 = sorted(keeper.book.accounts)  # type: ignore[union-attr]
            over0, _ = _expected(
                await asyncio.to_thread(_chain_book, dev.rpc, dep, accounts0), accounts0
            )
            assert not {a.lower() for a in newcomers} & {a.lower() for a in accounts0}
            await asyncio.to_thread(seed_book, dev.rpc, dep, plan_book(5, seed=4242))

            # The block that brings the newcomers fails half-way (the node drops out after
            # the log scan): they must not be forgotten by the retry.
            real = keeper.adapter.read_prices
            calls = {"n": 0}

            async def flaky(*args: Any, **kwargs: Any) -> Any:
                calls["n"] += 1
                if calls["n"] == 1:
                    raise RpcUnavailable("node went away (test)")
                return await real(*args, **kwargs)

            keeper.adapter.read_prices = flaky  # type: ignore[method-assign]
            with pytest.raises(RpcUnavailable):
                await keeper.iterate()
            assert await keeper.iterate()
        finally:
            await keeper.close()

        # A restart knows them from the database alone (no rescan of old logs).
        again = Keeper(_settings(dep, db, metrics_port=None), sinks=[])
        await again.start()
        try:
            known = {a.lower() for a in again._known_accounts}
            assert {a.lower() for a in newcomers} <= known
            await asyncio.to_thread(dev.rpc.mine, 1)
            assert await again.iterate()
            accounts = sorted(again.book.accounts)  # type: ignore[union-attr]
            book = await asyncio.to_thread(_chain_book, dev.rpc, dep, accounts)
            over, _ = _expected(book, accounts)
            assert _open_flags(db) == over0 | over
        finally:
            await again.close()

    asyncio.run(main())


# -- the rolling re-read: every account once every K blocks, no block carries them all -------


def test_rolling_reread_covers_every_account_every_k_blocks(
    devnet_isolated, mine, tmp_path: Path
) -> None:
    dev = devnet_isolated
    dep = dev.deployment
    k = 5

    async def main() -> None:
        keeper = Keeper(
            _settings(dep, tmp_path / "k.sqlite", metrics_port=None, full_refresh_blocks=k),
            sinks=[],
        )
        await keeper.start()
        reads: list[set[str]] = []
        real = keeper.adapter.read_positions

        async def recording(accounts: Any, *args: Any, **kwargs: Any) -> Any:
            reads.append(set(accounts))
            return await real(accounts, *args, **kwargs)

        keeper.adapter.read_positions = recording  # type: ignore[method-assign]
        try:
            assert await keeper.iterate()
            everyone = set(keeper.book.accounts)  # type: ignore[union-attr]
            assert reads == [everyone] and len(everyone) >= 100
            reads.clear()
            blocks = []
            for _ in range(k):
                blocks.append(await asyncio.to_thread(mine, 1))
                assert await keeper.iterate()
            # Each block re-reads the accounts whose turn it is (address mod K), computed
            # here from the addresses alone; together the K blocks cover the whole book.
            for b, got in zip(blocks, reads, strict=True):
                assert got == {a for a in everyone if int(a, 16) % k == b % k}
                assert 0 < len(got) < len(everyone) / 2
            assert set().union(*reads) == everyone
            # Blocks the keeper skipped (latest block only) still get their turns read.
            reads.clear()
            top = await asyncio.to_thread(mine, 3)
            assert await keeper.iterate()
            turns = {b % k for b in range(top - 2, top + 1)}
            assert reads == [{a for a in everyone if int(a, 16) % k in turns}]
            # ... and none of those blocks was a full refresh.
            counts = {
                x.labels["kind"]: x.value
                for f in text_string_to_metric_families(keeper.metrics.render().decode())
                if f.name == "shortfall_keeper_refresh_duration_seconds"
                for x in f.samples
                if x.name.endswith("_count")
            }
            assert counts == {"full": 1, "incremental": k + 1}
        finally:
            await keeper.close()

    asyncio.run(main())
