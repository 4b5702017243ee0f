"""``shortfall pull`` against a real anvil devnet (fixtures in conftest.py; no fakes here).

- the health factor computed from the snapshot equals ``Pool.getUserAccountData`` for every
  account at the snapshot's block;
- accounts created after a pull appear in the next one, and the discovery cache makes the
  next pull scan only the new blocks (and rescan after an ``evm_revert``);
- a pull pinned to an old block reproduces that block's state;
- an RPC that drops, delays, rate-limits and fails some requests still yields an identical
  snapshot;
- a wrong provider, a wrong chain and an unreachable RPC each end in one clear error line
  and no snapshot directory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pandas as pd
import pytest
from aiohttp import web

from keeper.cli import main
from keeper.devnet.seed import plan_book, seed_book
from keeper.pull import PullSettings, pull, settings_from_deployment, summarize
from simulator.snapshot import MarketSnapshot

pytestmark = pytest.mark.integration

MAX_UINT = 2**256 - 1


def _settings(devnet: Any, tmp_path: Path, **changes: Any) -> PullSettings:
    base = settings_from_deployment(devnet.deployment_path, cache_path=tmp_path / "cache.sqlite")
    return replace(base, rps=0, **changes)


def _pull(settings: PullSettings, out: Path | None = None) -> MarketSnapshot:
    return asyncio.run(pull(settings, out=out))


def _account_data(devnet: Any, accounts: list[str], block: int) -> dict[str, tuple[int, ...]]:
    """``getUserAccountData`` of each account at ``block``, through the devnet's own client."""
    pool = devnet.contract("Pool", devnet.deployment["pool"])
    return {a: tuple(pool.call("getUserAccountData", a, block=block)) for a in accounts}


def _frames_equal(a: MarketSnapshot, b: MarketSnapshot) -> None:
    pd.testing.assert_frame_equal(a.reserves, b.reserves, check_exact=True)
    pd.testing.assert_frame_equal(a.positions, b.positions, check_exact=True)
    for key in ("protocol", "chain_id", "block_number", "block_hash", "timestamp", "addresses"):
        assert a.meta[key] == b.meta[key], key


def test_health_factor_matches_the_pool_for_every_account(devnet: Any, tmp_path: Path) -> None:
    """Every account with debt, e-mode and accruing balances included: the snapshot's HF is
    the Pool's to 1e-9 and its collateral and debt are the Pool's base-currency totals."""
    snap = _pull(_settings(devnet, tmp_path), out=tmp_path / "snap")
    block = snap.meta["block_number"]
    book = MarketSnapshot.load(tmp_path / "snap").book()
    hf = book.health_factor()
    coll = book.collateral_usd()
    debt = book.debt_usd()
    index = {a: i for i, a in enumerate(book.accounts)}

    seeded = devnet.accounts
    assert set(index) == set(seeded)  # every seeded account holds a position
    chain = _account_data(devnet, seeded, block)
    with_debt = 0
    for account in seeded:
        total_coll, total_debt, _, _, _, chain_hf = chain[account]
        i = index[account]
        # to the base unit (1e-8 USD); float64 values a few ulps off may miss one unit of a
        # value above ~1e11 units ($1,000), which is relatively below 1e-11
        assert coll[i] * 1e8 == pytest.approx(total_coll, rel=1e-11, abs=1e-6), account
        assert debt[i] * 1e8 == pytest.approx(total_debt, rel=1e-11, abs=1e-6), account
        if total_debt == 0:
            assert chain_hf == MAX_UINT and math.isinf(hf[i]), account
            continue
        with_debt += 1
        assert hf[i] == pytest.approx(chain_hf / 1e18, rel=1e-9), (account, hf[i], chain_hf)
    assert snap.meta["verified_accounts"] == with_debt > 0
    emode_accounts = int((book.account_class > 0).sum())
    assert (
        emode_accounts
        == snap.meta["emode_accounts"]
        == len(
            [
                a
                for a in seeded
                if devnet.contract("Pool", devnet.deployment["pool"]).call(
                    "getUserEMode", a, block=block
                )
            ]
        )
    )


def test_a_year_of_interest_later_every_account_still_matches(
    devnet_isolated: Any, tmp_path: Path
) -> None:
    """A year on (indexes far from 1 ray where the devnet accrues interest; unchanged where
    it does not), the pull's own check passes and each HF is the Pool's at that block."""
    devnet = devnet_isolated
    devnet.rpc.call("evm_increaseTime", 365 * 24 * 3600)
    devnet.rpc.mine()
    snap = _pull(_settings(devnet, tmp_path))
    block = snap.meta["block_number"]
    book = snap.book()
    chain = _account_data(devnet, list(book.accounts), block)
    hf = book.health_factor()
    for i, account in enumerate(book.accounts):
        chain_hf = chain[account][5]
        if chain_hf == MAX_UINT:
            assert math.isinf(hf[i]), account
        else:
            assert hf[i] == pytest.approx(chain_hf / 1e18, rel=1e-9), account
    pool = devnet.contract("Pool", devnet.deployment["pool"])
    reserves = snap.reserves.set_index("asset")
    for asset, row in reserves.iterrows():
        income = pool.call("getReserveNormalizedIncome", asset, block=block)
        assert row["liquidity_index"] == pytest.approx(income / 1e27, rel=1e-15)
    assert snap.meta["verified_accounts"] == int((book.debt_usd() > 0).sum())


def test_snapshot_meta_and_reserves(devnet: Any, tmp_path: Path) -> None:
    snap = _pull(_settings(devnet, tmp_path), out=tmp_path / "snap")
    meta = json.loads((tmp_path / "snap" / "meta.json").read_text())
    dep = devnet.deployment
    assert meta["protocol"] == "aave-v3" and meta["chain_id"] == dep["chain_id"]
    assert meta["addresses"]["pool"] == dep["pool"]
    assert meta["addresses"]["oracle"] == dep["oracle"]
    assert meta["addresses"]["data_provider"] == dep["data_provider"]
    assert meta["rpc"] == dep["rpc_url"]
    # the devnet follows aave-v3-origin v3.7's rounding (with or without POOL_REVISION)
    assert meta["hf_rounding"] == "weighted-sum" and meta["debt_value_rounding"] == "ceil"
    assert meta["rounding_model"] == "v3.5+" and meta["pool_revision"] in (None, 7, 11)
    assert meta["emode_family"] in ("none", "liquid")
    assert meta["block_hash"].startswith("0x") and len(meta["block_hash"]) == 66
    reserves = snap.reserves.set_index("symbol")
    assert set(reserves.index) == set(dep["reserves"])
    for symbol, entry in dep["reserves"].items():
        assert reserves.loc[symbol, "asset"] == entry["token"]
        if entry.get("dex_pair"):
            assert reserves.loc[symbol, "dex_pair"] == entry["dex_pair"]
            assert reserves.loc[symbol, "dex_reserve_asset"] > 0
            assert reserves.loc[symbol, "dex_reserve_quote"] > 0
    assert (reserves["liquidation_threshold"] >= reserves["ltv"]).all()
    stats = meta["pull"]
    assert stats["requests"] < 60 and stats["errors_by_kind"] == {}
    assert meta["accounts_discovered"] / stats["requests"] >= 5


def test_new_accounts_appear_and_the_cache_scans_only_new_blocks(
    devnet_isolated: Any, tmp_path: Path
) -> None:
    devnet = devnet_isolated
    settings = _settings(devnet, tmp_path)
    first = _pull(settings)
    b1 = first.meta["block_number"]
    scanned = first.meta["discovery"]["scanned_blocks"]
    assert scanned is not None and scanned[1] == b1

    newcomers = plan_book(6, seed=4242)
    seed_book(devnet.rpc, devnet.deployment, newcomers)
    added = {a.address for a in newcomers.accounts if a.positions}
    assert added

    second = _pull(settings)
    b2 = second.meta["block_number"]
    assert b2 > b1
    assert second.meta["discovery"]["scanned_blocks"] == [b1 + 1, b2]
    before = set(first.positions["account"])
    after = set(second.positions["account"])
    assert added <= after and not (added & before)
    assert second.meta["accounts_discovered"] == first.meta["accounts_discovered"] + len(
        {a.address for a in newcomers.accounts}
    )

    third = _pull(settings)
    assert third.meta["discovery"]["scanned_blocks"] is None  # the cache covers it all
    _frames_equal(second, third)


def test_the_cache_notices_a_reverted_chain(devnet_isolated: Any, tmp_path: Path) -> None:
    devnet = devnet_isolated
    settings = _settings(devnet, tmp_path)
    checkpoint = devnet.rpc.snapshot()
    ghosts = plan_book(3, seed=777)
    seed_book(devnet.rpc, devnet.deployment, ghosts)
    haunted = _pull(settings)
    assert {a.address for a in ghosts.accounts if a.positions} <= set(haunted.positions["account"])
    assert devnet.rpc.revert(checkpoint)
    devnet.rpc.mine(3)  # same block numbers, other blocks
    clean = _pull(settings)
    assert clean.meta["discovery"]["scanned_blocks"][0] < haunted.meta["block_number"]
    assert not {a.address for a in ghosts.accounts} & set(clean.positions["account"])


def test_a_pull_pinned_to_an_old_block_reproduces_it(
    devnet_isolated: Any, set_price: Any, tmp_path: Path
) -> None:
    devnet = devnet_isolated
    settings = _settings(devnet, tmp_path)
    then = _pull(settings, out=tmp_path / "then")
    b0 = then.meta["block_number"]

    set_price("WETH", 1500.0)
    seed_book(devnet.rpc, devnet.deployment, plan_book(4, seed=99))
    now = _pull(settings)
    assert now.meta["block_number"] > b0
    weth = now.reserves.set_index("symbol").loc["WETH", "price_usd"]
    assert weth == 1500.0
    assert summarize(now)["debt_usd"] != summarize(then)["debt_usd"]

    again = _pull(replace(settings, block=b0), out=tmp_path / "again")
    _frames_equal(then, again)
    _frames_equal(MarketSnapshot.load(tmp_path / "then"), MarketSnapshot.load(tmp_path / "again"))
    # and without the cache, from the logs alone
    _frames_equal(then, _pull(replace(settings, block=b0, use_cache=False)))


# -- a faulty RPC ------------------------------------------------------------------------------


class FaultyProxy:
    """A loopback JSON-RPC proxy that, on a fixed schedule, answers 429, answers 502, drops
    the connection without an answer, or answers too late; everything else it forwards."""

    SCHEDULE = ("ok", "429", "ok", "drop", "ok", "slow", "502", "ok", "429", "ok", "ok")

    def __init__(self, upstream: str, max_faults: int = 30, slow_seconds: float = 0.6) -> None:
        self.upstream = upstream
        self.max_faults = max_faults
        self.slow_seconds = slow_seconds
        self.seen = 0
        self.faults: dict[str, int] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v2/SECRET-KEY-123"
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
        if action != "ok" and sum(self.faults.values()) < self.max_faults:
            self.faults[action] = self.faults.get(action, 0) + 1
            if action == "429":
                return web.Response(
                    status=429, text="Too Many Requests", headers={"Retry-After": "0"}
                )
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


def test_a_faulty_rpc_still_yields_an_identical_snapshot(devnet: Any, tmp_path: Path) -> None:
    clean = _pull(_settings(devnet, tmp_path, use_cache=False))
    block = clean.meta["block_number"]

    async def through_proxy() -> tuple[MarketSnapshot, FaultyProxy]:
        proxy = FaultyProxy(devnet.rpc_url)
        await proxy.start()
        try:
            settings = replace(
                _settings(devnet, tmp_path, use_cache=False),
                rpc_url=proxy.url,
                block=block,
                timeout=0.3,
                retries=8,
                batch_size=400,  # more requests, so more of them meet a fault
            )
            return await pull(settings, out=tmp_path / "flaky"), proxy
        finally:
            await proxy.stop()

    flaky, proxy = asyncio.run(through_proxy())
    _frames_equal(clean, flaky)
    stats = flaky.meta["pull"]
    assert set(proxy.faults) == {"429", "502", "drop", "slow"}
    assert stats["retries"] >= sum(proxy.faults.values())
    assert stats["errors_by_kind"].get("rate_limited", 0) >= 1
    assert stats["errors_by_kind"].get("timeout", 0) >= 1
    meta_text = (tmp_path / "flaky" / "meta.json").read_text()
    assert "SECRET-KEY-123" not in meta_text and "/v2/" not in meta_text


# -- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run ``shortfall`` in-process; logging set up by main() is undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    try:
        yield run
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def test_cli_pull_prints_a_summary(devnet: Any, tmp_path: Path, cli: Any) -> None:
    out = tmp_path / "snap"
    code, stdout, stderr = cli(
        "pull",
        "--deployment",
        str(devnet.deployment_path),
        "--cache",
        str(tmp_path / "c.sqlite"),
        "--rps",
        "0",
        "--json",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    summary = json.loads(stdout)
    snap = MarketSnapshot.load(out)
    assert summary["accounts"] == snap.n_accounts > 0
    assert summary["accounts_hf_below_1"] == int((snap.book().health_factor() < 1).sum())
    assert summary["rpc_requests"] == snap.meta["pull"]["requests"]
    assert summary["collateral_usd"] > summary["debt_usd"] > 0
    by_category = summary["emode"]
    assert sum(row["accounts"] for row in by_category.values()) == summary["accounts"]
    assert sum(row["debt_usd"] for row in by_category.values()) == pytest.approx(
        summary["debt_usd"], rel=1e-12
    )
    assert by_category["0"]["label"] == "none"
    code, stdout, _ = cli(
        "pull", "--deployment", str(devnet.deployment_path), "--no-cache", "--out", str(out)
    )
    assert code == 0 and "accounts" in stdout and "RPC requests" in stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("shortfall: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no-code-provider", r"no contract at 0x[0-9a-fA-F]{40} \(PoolAddressesProvider\)"),
        (
            "token-as-provider",
            r"does not answer getPool\(\).*not an Aave V3 PoolAddressesProvider; check --provider",
        ),
        (
            "pool-as-provider",
            r"does not answer getPool\(\).*it looks like a contract of the market whose PoolAddressesProvider is 0x[0-9a-fA-F]{40}: pass that",
        ),
        ("chain-id-flag", r"serves chain id 31337, expected 1\b"),
        ("deployment-chain-id", r"serves chain id 31337, expected 5\b"),
        ("unreachable", r"cannot reach RPC http://127\.0\.0\.1:\d+ "),
        ("unknown-protocol", r"unknown protocol 'aave-v2'; did you mean 'aave-v3'\?"),
    ],
)
def test_cli_errors_are_one_line_and_leave_no_snapshot(
    devnet: Any, tmp_path: Path, cli: Any, case: str, expected: str
) -> None:
    dep = devnet.deployment
    out = tmp_path / "snap"
    common = ["--out", str(out), "--no-cache", "--rps", "0", "--retries", "1"]
    if case == "no-code-provider":
        argv = ["--deployment", str(devnet.deployment_path), "--provider", "0x" + "12" * 20]
    elif case == "token-as-provider":
        token = next(iter(dep["reserves"].values()))["token"]
        argv = ["--deployment", str(devnet.deployment_path), "--provider", token]
    elif case == "pool-as-provider":
        argv = ["--deployment", str(devnet.deployment_path), "--provider", dep["pool"]]
    elif case == "chain-id-flag":
        argv = ["--deployment", str(devnet.deployment_path), "--chain-id", "1"]
    elif case == "deployment-chain-id":
        wrong = tmp_path / "wrong.json"
        wrong.write_text(json.dumps({**dep, "chain_id": 5}))
        argv = ["--deployment", str(wrong)]
    elif case == "unreachable":
        url = f"http://127.0.0.1:{_free_port()}/v3/SECRET-KEY-456"
        argv = ["--rpc", url, "--provider", dep["pool_addresses_provider"]]
    else:
        argv = ["--rpc", dep["rpc_url"], "--protocol", "aave-v2", "--provider", dep["pool"]]
    code, stdout, stderr = cli("pull", *argv, *common)
    assert code == 1
    line = _error_line(stderr)
    assert re.search(expected, line), line
    if case == "pool-as-provider":
        assert dep["pool_addresses_provider"] in line
    assert "SECRET-KEY" not in stderr and stdout == ""
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".snap")] == []


def test_cli_never_replaces_a_directory_that_is_not_a_snapshot(
    devnet: Any, tmp_path: Path, cli: Any
) -> None:
    """``--out`` naming a directory with other files in it, or a file, is refused before any
    RPC request, and left as it was (saving replaces the directory whole)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("keep me")
    note = tmp_path / "note.txt"
    note.write_text("a file")
    for out, expected in (
        (data, r"data: exists and is not a snapshot directory \(it holds precious\.csv\)"),
        (note, r"note\.txt: exists and is not a directory"),
    ):
        # an RPC nobody listens on: the --out error must come first
        dead = f"http://127.0.0.1:{_free_port()}"
        code, stdout, stderr = cli(
            "pull", "--rpc", dead, "--provider", devnet.deployment["pool_addresses_provider"],
            "--no-cache", "--retries", "0", "--out", str(out),
        )  # fmt: skip
        assert code == 1 and stdout == ""
        assert re.search(expected, _error_line(stderr))
    assert (data / "precious.csv").read_text() == "keep me" and note.read_text() == "a file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "note.txt"]
    # a snapshot directory is replaced by the next pull
    snap = tmp_path / "snap"
    for _ in range(2):
        code, _, stderr = cli(
            "pull",
            "--deployment",
            str(devnet.deployment_path),
            "--no-cache",
            "--rps",
            "0",
            "--out",
            str(snap),
        )
        assert code == 0, stderr
    assert MarketSnapshot.load(snap).n_accounts > 0


def test_cli_requires_an_rpc(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: Any) -> None:
    monkeypatch.delenv("ETH_RPC_URL", raising=False)
    code, _, stderr = cli("pull", "--provider", "0x" + "12" * 20, "--out", str(tmp_path / "s"))
    assert code == 1
    assert "pass --rpc URL, set ETH_RPC_URL" in _error_line(stderr)


def test_cli_reads_eth_rpc_url(
    devnet: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cli: Any
) -> None:
    monkeypatch.setenv("ETH_RPC_URL", devnet.rpc_url)
    dep = devnet.deployment
    code, _, stderr = cli(
        "pull",
        "--provider",
        dep["pool_addresses_provider"],
        "--no-cache",
        "--rps",
        "0",
        "--out",
        str(tmp_path / "s"),
    )
    assert code == 0, stderr
    snap = MarketSnapshot.load(tmp_path / "s")
    assert (snap.reserves["dex_pair"] == "").all()  # no --dex-map: liquidity unknown
    assert np.all(snap.reserves["dex_reserve_asset"] == 0.0)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--provider", "0x1234"], r"--provider '0x1234' is not an address"),
        (["--multicall", "nope"], r"--multicall 'nope' is not an address"),
        (["--batch-size", "0"], r"--batch-size must be at least 1"),
        (["--block", "-1"], r"--block must be a block number >= 0, got -1"),
        (["--from-block", "-4"], r"--from-block must be a block number >= 0, got -4"),
        (
            ["--from-block", "999999"],
            r"--from-block 999999 is after block \d+, the block being read",
        ),
    ],
)
def test_cli_rejects_bad_options(
    devnet: Any, tmp_path: Path, cli: Any, argv: list[str], message: str
) -> None:
    out = tmp_path / "snap"
    code, _, stderr = cli(
        "pull", "--deployment", str(devnet.deployment_path), *argv, "--no-cache", "--out", str(out)
    )
    assert code == 1 and re.search(message, _error_line(stderr))
    assert not out.exists()


@pytest.mark.parametrize(
    ("source", "url", "message"),
    [
        ("--rpc", "ws://127.0.0.1:8545/v2/KEY-WS-1", r"--rpc is a WebSocket URL, ws://127\.0\.0\.1:8545 : reads go over HTTP"),
        ("--rpc", "https//eth.example/v2/KEY-TYPO-2", r"--rpc is not an http:// or https:// URL;"),
        ("--rpc", "ftp://eth.example/KEY-FTP-3", r"--rpc is not an http:// or https:// URL \(scheme 'ftp'\)"),
        ("ETH_RPC_URL", "eth.example/v2/KEY-ENV-4", r"ETH_RPC_URL is not an http:// or https:// URL"),
        ("deployment", "127.0.0.1:8545/KEY-DEP-5", r"rpc_url in .*wrong\.json is not an http"),
    ],
)  # fmt: skip
def test_cli_rejects_an_rpc_that_is_not_an_http_url(
    devnet: Any,
    tmp_path: Path,
    cli: Any,
    monkeypatch: pytest.MonkeyPatch,
    source: str,
    url: str,
    message: str,
) -> None:
    """One line naming where the value came from, before any request, and never the key."""
    provider = devnet.deployment["pool_addresses_provider"]
    if source == "--rpc":
        argv = ["--rpc", url, "--provider", provider]
    elif source == "ETH_RPC_URL":
        monkeypatch.setenv("ETH_RPC_URL", url)
        argv = ["--provider", provider]
    else:
        wrong = tmp_path / "wrong.json"
        wrong.write_text(json.dumps({**devnet.deployment, "rpc_url": url}))
        argv = ["--deployment", str(wrong)]
    out = tmp_path / "snap"
    code, stdout, stderr = cli("pull", *argv, "--no-cache", "--out", str(out))
    assert code == 1 and stdout == ""
    assert re.search(message, _error_line(stderr)), stderr
    assert "KEY-" not in stderr
    assert not out.exists()


def test_the_adapter_block_by_block_as_the_keeper_uses_it(
    devnet_isolated: Any, set_price: Any, tmp_path: Path
) -> None:
    """Resolve once; then per block: new and touched accounts of a block range, prices only,
    positions of a few accounts only, each pinned to the block asked for."""
    devnet = devnet_isolated
    settings = _settings(devnet, tmp_path)
    newcomers = plan_book(3, seed=31337)

    async def scenario() -> dict[str, Any]:
        from keeper.chain import Chain
        from keeper.pull import make_adapter

        async with Chain(settings.chain_settings()) as chain:
            adapter = make_adapter(settings, chain)
            head = await chain.block()
            await adapter.resolve(head)
            known = await adapter.discover_accounts(head)
            reserves = await adapter.read_reserves(head.number)
            assets = [r.asset for r in reserves]
            before = await adapter.read_prices(assets, head.number)

            await asyncio.to_thread(seed_book, devnet.rpc, devnet.deployment, newcomers)
            moved = await asyncio.to_thread(set_price, "WBTC", 45_000.0)
            new_head = await chain.block()
            fresh = await adapter.scan_new_accounts(head.number + 1, new_head.number)
            touched = await adapter.touched_accounts(head.number + 1, new_head.number)
            after = await adapter.read_prices(assets, new_head.number)
            pinned = await adapter.read_prices(assets, head.number)
            some = [a.address for a in newcomers.accounts] + known[:2]
            positions = await adapter.read_positions(some, reserves, new_head.number)
            old_positions = await adapter.read_positions(some, reserves, head.number)
            return {
                "known": known,
                "fresh": fresh,
                "touched": touched,
                "before": before,
                "after": after,
                "pinned": pinned,
                "moved": moved,
                "positions": positions,
                "old_positions": old_positions,
                "requests": chain.stats.total_requests,
            }

    r = asyncio.run(scenario())
    wbtc = devnet.deployment["reserves"]["WBTC"]["token"]
    assert r["after"].usd(wbtc) == 45_000.0 != r["before"].usd(wbtc)
    assert r["pinned"].raw == r["before"].raw
    new = {a.address.lower() for a in newcomers.accounts if a.positions}
    assert new <= set(r["fresh"]) and new <= r["touched"]
    assert not new & set(r["known"])
    holders = {p.account.lower() for p in r["positions"].positions}
    assert new <= holders
    assert not new & {p.account.lower() for p in r["old_positions"].positions}
    assert r["positions"].accounts_read == len(newcomers.accounts) + 2


def test_cli_dex_map_for_a_real_network_style_pull(
    devnet: Any, tmp_path: Path, cli: Any, caplog: pytest.LogCaptureFixture
) -> None:
    dep = devnet.deployment
    weth = dep["reserves"]["WETH"]
    wbtc = dep["reserves"]["WBTC"]
    dex = tmp_path / "dex.toml"
    dex.write_text(
        f'WETH = "{weth["dex_pair"]}"\n'
        f'"{wbtc["token"].lower()}" = {{ pair = "{wbtc["dex_pair"]}", fee = 0.0005 }}\n'
    )
    out = tmp_path / "snap"
    code, _, stderr = cli(
        "pull",
        "--rpc",
        dep["rpc_url"],
        "--provider",
        dep["pool_addresses_provider"],
        "--dex-map",
        str(dex),
        "--no-cache",
        "--rps",
        "0",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    reserves = MarketSnapshot.load(out).reserves.set_index("symbol")
    assert reserves.loc["WETH", "dex_pair"] == weth["dex_pair"]
    assert reserves.loc["WETH", "dex_fee"] == 0.003
    assert (
        reserves.loc["WBTC", "dex_fee"] == 0.0005 and reserves.loc["WBTC", "dex_reserve_asset"] > 0
    )
    assert reserves.loc["LINK", "dex_pair"] == "" and reserves.loc["LINK", "dex_reserve_quote"] == 0
    assert "no DEX pool known for collateral LINK" in caplog.text  # a warning, not an error

    dex.write_text(f'WETH = "{"0x" + "42" * 20}"\n')
    code, _, stderr = cli(
        "pull",
        "--rpc",
        dep["rpc_url"],
        "--provider",
        dep["pool_addresses_provider"],
        "--dex-map",
        str(dex),
        "--no-cache",
        "--rps",
        "0",
        "--out",
        str(tmp_path / "bad"),
    )
    assert code == 1
    assert "no contract at DEX pool 0x4242" in stderr.strip().splitlines()[-1]
    assert not (tmp_path / "bad").exists()


def test_a_block_above_the_head_is_not_mistaken_for_a_batch_too_large(devnet: Any) -> None:
    """anvil answers "BlockOutOfRangeError" for a block it does not have: that is retried a
    few times as a block not seen yet, then one clear error; never split as a batch the node
    refused for its size (which cost ~2,000 requests for a 1,000-call batch)."""
    from keeper.adapters.abi import function
    from keeper.adapters.multicall import Call, Multicall
    from keeper.chain import Chain, ChainSettings
    from keeper.errors import StateUnavailable

    fn = function("Pool", "getUserAccountData")
    calls = [Call(devnet.deployment["pool"], fn.encode(a)) for a in devnet.accounts]
    head = devnet.rpc.block_number()

    async def read() -> Chain:
        settings = ChainSettings(devnet.rpc_url, rps=0, retries=2, backoff_base=0.01)
        async with Chain(settings) as chain:
            with pytest.raises(StateUnavailable, match=r"does not know that block"):
                await Multicall(chain, batch_size=1000).run(calls, head + 1000)
            return chain

    chain = asyncio.run(read())
    assert chain.stats.requests["eth_call"] == 3  # one batch, 3 attempts, no splitting
    assert chain.stats.errors["block_unknown"] == 3
