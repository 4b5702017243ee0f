"""``shortfall pull --protocol compound-v3`` against our Comet devnet (a real anvil node).

- an independent reader that knows only Comet's public interface (event signatures and view
  functions, through web3) finds exactly the accounts the pull finds and agrees on every
  balance: base supply and borrow (``balanceOf`` / ``borrowBalanceOf``), every collateral
  (``collateralBalanceOf``);
- after a price fall, the snapshot's liquidatability (``comet_rules.is_liquidatable`` on its
  balances and prices) is the contract's ``isLiquidatable`` for every account;
- a month of interest later the balances still match (indexes accrued to the block);
- an absorption shows in the next pull (the account's collateral gone, the reserves lower);
- the CLI: ``--deployment`` and ``--rpc --protocol compound-v3 --comet``, bad addresses.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from eth_utils import keccak, to_checksum_address

from keeper.cli import main
from keeper.devnet.deploy import set_price
from keeper.pull import PullSettings, pull, settings_from_deployment
from simulator.cascade import EngineConfig
from simulator.cascade.comet_rules import is_liquidatable
from simulator.cascade.reference import run_reference
from simulator.results import load_results
from simulator.snapshot import MarketSnapshot
from simulator.synthetic import uniform_shock_paths

pytestmark = pytest.mark.integration

#: The events an independent reader scans, by their public signatures, and the topics that
#: name an account.
EVENTS = {
    "Supply(address,address,uint256)": (2,),
    "Withdraw(address,address,uint256)": (1,),
    "Transfer(address,address,uint256)": (1, 2),
    "SupplyCollateral(address,address,address,uint256)": (2,),
    "WithdrawCollateral(address,address,address,uint256)": (1,),
    "TransferCollateral(address,address,address,uint256)": (1, 2),
    "AbsorbDebt(address,address,uint256,uint256)": (2,),
    "AbsorbCollateral(address,address,address,uint256,uint256)": (2,),
}
ZERO = "0x" + "0" * 40


def _call(w3: Any, to: str, signature: str, *args: Any, block: int) -> int:
    """A view returning one word, encoded from its public signature alone."""
    from eth_abi import encode

    types = signature[signature.index("(") + 1 : -1].split(",") if "()" not in signature else []
    data = keccak(text=signature)[:4] + encode(types, list(args))
    raw = w3.eth.call({"to": to, "data": "0x" + data.hex()}, block)
    return int.from_bytes(raw[:32], "big")


def independent_read(handle: Any, block: int) -> dict[str, dict[str, int]]:
    """Every account Comet's events name up to ``block`` -> {asset: balance} (base: signed)."""
    w3 = handle.w3
    comet = handle.deployment["comet"]
    topics = {"0x" + keccak(text=sig).hex(): idx for sig, idx in EVENTS.items()}
    logs = w3.eth.get_logs(
        {"address": comet, "fromBlock": 0, "toBlock": block, "topics": [list(topics)]}
    )
    accounts: set[str] = set()
    for log in logs:
        t = ["0x" + bytes(x).hex() for x in log["topics"]]
        for i in topics[t[0]]:
            account = "0x" + t[i][-40:]
            if account != ZERO:
                accounts.add(to_checksum_address(account))
    base = to_checksum_address(f"0x{_call(w3, comet, 'baseToken()', block=block):040x}")
    n = _call(w3, comet, "numAssets()", block=block)
    assets = []
    for i in range(n):
        from eth_abi import decode, encode

        raw = w3.eth.call(
            {
                "to": comet,
                "data": "0x"
                + (keccak(text="getAssetInfo(uint8)")[:4] + encode(["uint8"], [i])).hex(),
            },
            block,
        )
        assets.append(to_checksum_address(decode(["address"], raw[32:64])[0]))
    out: dict[str, dict[str, int]] = {}
    for a in sorted(accounts):
        supply = _call(w3, comet, "balanceOf(address)", a, block=block)
        borrow = _call(w3, comet, "borrowBalanceOf(address)", a, block=block)
        row = {base: supply - borrow} if supply or borrow else {}
        for asset in assets:
            amount = _call(w3, comet, "collateralBalanceOf(address,address)", a, asset, block=block)
            if amount:
                row[asset] = amount
        if row:
            out[a] = row
    return out


def _settings(handle: Any, tmp_path: Path, **changes: Any) -> PullSettings:
    base = settings_from_deployment(handle.deployment_path, cache_path=tmp_path / "cache.sqlite")
    return replace(base, rps=0, **changes)


def _pull(settings: PullSettings, out: Path | None = None) -> MarketSnapshot:
    return asyncio.run(pull(settings, out=out))


def _agree(handle: Any, snap: MarketSnapshot) -> None:
    block = snap.meta["block_number"]
    chain = independent_read(handle, block)
    decimals = dict(zip(snap.reserves["asset"], snap.reserves["decimals"], strict=True))
    base = snap.meta["comet"]["base_asset"]
    ours: dict[str, dict[str, float]] = {}
    for row in snap.positions.itertuples(index=False):
        value = row.collateral - row.debt if row.asset == base else row.collateral
        ours.setdefault(row.account, {})[row.asset] = value
    assert set(ours) == set(chain), "the pull and the independent reader see other accounts"
    for account, balances in chain.items():
        assert set(ours[account]) == set(balances), account
        for asset, amount in balances.items():
            # float64 token units hold the integer to 1 part in 2**53
            assert ours[account][asset] * 10 ** int(decimals[asset]) == pytest.approx(
                amount, rel=1e-15, abs=1e-6
            ), (account, asset)


def _liquidatable_from_snapshot(snap: MarketSnapshot) -> dict[str, bool]:
    book = snap.book()
    base_j = int(np.flatnonzero(snap.reserves["is_base_asset"].to_numpy())[0])
    lcf = snap.reserves["liquidation_threshold"].to_numpy()
    out = {}
    for i, account in enumerate(book.accounts):
        balance = book.collateral[i, base_j] - book.debt[i, base_j]
        amounts = book.collateral[i].copy()
        amounts[base_j] = 0.0
        out[str(account)] = is_liquidatable(
            amounts, book.price_usd, lcf, balance, float(book.price_usd[base_j])
        )
    return out


def test_every_seeded_account_found_with_its_balances(comet_devnet: Any, tmp_path: Path) -> None:
    snap = _pull(_settings(comet_devnet, tmp_path), out=tmp_path / "snap")
    loaded = MarketSnapshot.load(tmp_path / "snap")
    seeded = {a.address for a in comet_devnet.book.accounts if a.records}
    assert set(loaded.positions["account"]) == seeded
    _agree(comet_devnet, loaded)
    meta = loaded.meta
    dep = comet_devnet.deployment
    assert meta["protocol"] == "compound-v3" and meta["addresses"]["comet"] == dep["comet"]
    assert meta["verified_accounts"] == dep["borrowers"] + dep["lenders"]
    assert meta["comet"]["store_front_price_factor"] == 0.6
    assert meta["comet"]["target_reserves"] == dep["target_reserves"] / 1e6
    # reserves accrue with time, so they are compared at the pulled block
    comet = comet_devnet.contract("Comet", dep["comet"])
    on_chain = comet.call("getReserves", block=meta["block_number"])
    assert meta["comet"]["reserves"] == pytest.approx(on_chain / 1e6, abs=1e-6)
    assert meta["comet"]["reserves"] == pytest.approx(dep["initial_reserves"] / 1e6, rel=1e-6)
    r = loaded.reserves.set_index("symbol")
    assert bool(r.loc["USDC", "is_base_asset"]) and r.loc["USDC", "liquidation_threshold"] == 0
    assert r.loc["WETH", "ltv"] == 0.83 and r.loc["WETH", "liquidation_threshold"] == 0.90
    assert r.loc["WETH", "liquidation_factor"] == 0.95 and r.loc["WETH", "dex_pair"]
    assert snap.meta["liquidatable_accounts"] == 0
    assert not any(_liquidatable_from_snapshot(loaded).values())


def test_after_a_price_fall_liquidatability_is_the_contracts(
    comet_isolated: Any, tmp_path: Path
) -> None:
    handle = comet_isolated
    handle.rpc.call("evm_increaseTime", 30 * 24 * 3600)
    for symbol, price in (("WETH", 2300), ("wstETH", 2700), ("WBTC", 48000)):
        set_price(handle.deployment, symbol, price, rpc=handle.rpc)
    # accrue in the pulled block, so the stored indexes isLiquidatable uses are the block's
    comet = handle.contract("Comet", handle.deployment["comet"])
    comet.transact("accrueAccount", handle.admin, sender=handle.admin)
    snap = _pull(_settings(handle, tmp_path))
    block = snap.meta["block_number"]
    _agree(handle, snap)
    ours = _liquidatable_from_snapshot(snap)
    theirs = {a: bool(comet.call("isLiquidatable", a, block=block)) for a in ours}
    assert ours == theirs
    assert 0 < sum(theirs.values()) == snap.meta["liquidatable_accounts"]
    # the engine, run on the snapshot with the prices held, absorbs exactly those accounts
    book = snap.book()
    flat = uniform_shock_paths(book.symbols, [1.0], n_steps=1)
    still = EngineConfig(gas_units=0.0, liquidity_scale=0.0, accrual=False)
    out = run_reference(book, flat, still, record=True)
    assert {str(book.accounts[e.account]) for e in out.events} == {
        a for a, liq in theirs.items() if liq
    }
    assert out.n_liquidations[0] == sum(theirs.values())
    # an absorption shows in the next pull: collateral gone, reserves lower by what the
    # engine's absorb pays for that account
    victim = next(a for a, liq in theirs.items() if liq)
    comet.transact("absorb", handle.admin, [victim], sender=handle.admin)
    after = _pull(_settings(handle, tmp_path))
    rows = after.positions[after.positions["account"] == victim]
    assert (rows["asset"] == after.meta["comet"]["base_asset"]).all()
    assert after.meta["comet"]["reserves"] < snap.meta["comet"]["reserves"]
    assert sum(after.meta["comet"]["collateral_reserves"].values()) > 0
    _agree(handle, after)
    row = int(np.flatnonzero(book.accounts == victim)[0])
    alone = replace(
        book,
        accounts=book.accounts[[row]],
        collateral=book.collateral[[row]],
        debt=book.debt[[row]],
        collateral_enabled=book.collateral_enabled[[row]],
        account_class=book.account_class[[row]],
    )
    one = run_reference(alone, flat, still)
    assert book.comet is not None
    paid = after.meta["comet"]["reserves"] - snap.meta["comet"]["reserves"]
    base_price = float(book.price_usd[book.comet.base])
    # the chain's reserves also earn the interest of the blocks between the two pulls
    # (3e-5 of this payout on the devnet's rates)
    assert one.reserve_drawdown_usd[0] == pytest.approx(-paid * base_price, rel=2e-4)


def test_cli_pull_by_deployment_and_by_comet_address(
    comet_devnet: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dep = comet_devnet.deployment
    out = tmp_path / "a"
    assert (
        main(
            ["pull", "--deployment", str(comet_devnet.deployment_path), "--json", "--out", str(out)]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["accounts"] == sum(1 for a in comet_devnet.book.accounts if a.records)
    pairs = {s: r["dex_pair"] for s, r in dep["reserves"].items() if r["dex_pair"]}
    dex_map = tmp_path / "dex.json"
    dex_map.write_text(json.dumps(pairs))
    out_b = tmp_path / "b"
    argv = ["pull", "--rpc", dep["rpc_url"], "--protocol", "compound-v3", "--comet", dep["comet"]]
    assert main([*argv, "--dex-map", str(dex_map), "--no-cache", "--out", str(out_b)]) == 0
    text = capsys.readouterr().out
    assert "Comet base USDC" in text and "match borrowBalanceOf" in text
    a, b = MarketSnapshot.load(out), MarketSnapshot.load(out_b)
    assert a.positions.equals(b.positions) and a.reserves.equals(b.reserves)
    # --comet implies compound-v3; a token is not a Comet; --provider with compound-v3 too
    token = dep["reserves"]["WETH"]["token"]
    assert (
        main(["pull", "--rpc", dep["rpc_url"], "--comet", token, "--out", str(tmp_path / "c")]) == 1
    )
    err = capsys.readouterr().err
    assert "is not a Compound V3 Comet market" in err and "\n" not in err.strip()
    assert not (tmp_path / "c").exists()
    assert (
        main(
            [
                "pull",
                "--rpc",
                dep["rpc_url"],
                "--protocol",
                "compound-v3",
                "--out",
                str(tmp_path / "d"),
            ]
        )
        == 1
    )
    assert "--comet is required" in capsys.readouterr().err


def test_simulate_and_report_on_a_comet_snapshot(
    comet_devnet: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _pull(_settings(comet_devnet, tmp_path), out=tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--paths", "40", "--seed", "3"]
    assert main([*argv, "--scenario", "default", "--out", str(tmp_path / "mc")]) == 0
    assert main([*argv, "--scenario", "ftx-2022", "--out", str(tmp_path / "ftx")]) == 0
    printed = capsys.readouterr().out
    assert "Compound V3: shortfall is the reserves below zero" in printed
    results = load_results(tmp_path / "mc")
    comet = results.summary["comet"]
    assert comet["base_symbol"] == "USDC" and comet["drawdown"]["es_usd"] >= 0.0
    assert "reserve_drawdown_usd" in results.paths.columns
    assert (results.paths["reserve_drawdown_usd"] >= 0.0).all()
    report = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "mc"), str(tmp_path / "ftx"), "--out", str(report)]) == 0
    html = report.read_text(encoding="utf-8")
    assert "Compound V3 market" in html and "reserve drawdown" in html
