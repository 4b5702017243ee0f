"""``shortfall pull --protocol compound-v3``: a Comet market at one block into a snapshot.

The same directory format as an Aave pull (``meta.json``, ``reserves.parquet``,
``positions.parquet``; formats in the README), with Comet's meaning:

- ``reserves.parquet``: the base asset first (``is_base_asset``; LTV and LT 0: it is never
  collateral; ``liquidity_rate`` / ``variable_borrow_rate`` its annualised per-second supply
  and borrow rates, ``liquidity_index`` / ``variable_borrow_index`` the indexes accrued to the
  block / 1e15), then each collateral: ``ltv`` = borrowCollateralFactor,
  ``liquidation_threshold`` = liquidateCollateralFactor, ``liquidation_factor`` =
  liquidationFactor (fractions), ``supply_cap`` in tokens; ``liquidation_bonus`` and
  ``protocol_fee`` are 0 (an absorber earns no bonus).
- ``positions.parquet``: the base row of an account holds its supply (``collateral``, not
  enabled as collateral: Comet never counts it) or its borrow (``debt``), present values at
  the accrued indexes; each collateral row its ``userCollateral`` balance.
- ``meta.json["comet"]``: base asset, store-front price factor, target reserves, reserves
  (signed), baseBorrowMin, indexes (stored and accrued), utilisation and rates, and the
  collateral the protocol holds for sale (``getCollateralReserves``); README lists the keys.

Before saving, every account with a base balance is checked against the market's own views:
``borrowBalanceOf`` / ``balanceOf`` must equal the snapshot's balance to the base unit, and
``isLiquidatable`` must equal Comet's rule evaluated in integers on the read balances (at
the stored indexes, as the view is); any difference refuses the snapshot.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from keeper.adapters.base import AccountPositions, DexLiquidity, Prices
from keeper.adapters.compound_v3 import (
    BASE_INDEX_SCALE,
    FACTOR_SCALE,
    CometReserve,
    CometState,
    CompoundV3Adapter,
    is_liquidatable_exact,
)
from keeper.chain import BlockRef, Chain
from keeper.progress import progress
from keeper.pull import SnapshotMismatch, check_not_reorganised
from keeper.venues_pull import quote_prices, venue_columns, venues_frame
from simulator.snapshot import MarketSnapshot

__all__ = ["build_comet_snapshot", "comet_problems", "pull_comet"]

log = logging.getLogger(__name__)

_SECONDS_PER_YEAR = 365 * 24 * 3600


def build_comet_snapshot(
    meta: Mapping[str, Any],
    reserves: Sequence[CometReserve],
    prices: Prices,
    found: AccountPositions,
    dex: Mapping[str, DexLiquidity],
    state: CometState,
    collateral_reserves: Mapping[str, int],
) -> MarketSnapshot:
    """Assemble and validate a Comet snapshot from exact chain values (the float boundary)."""
    quotes = quote_prices(dex, {a: prices.usd(a) for a in prices.raw})
    rows: list[dict[str, Any]] = []
    for r in reserves:
        d = dex.get(r.asset)
        rows.append(
            {
                "asset": r.asset,
                "symbol": r.symbol,
                "decimals": r.decimals,
                "price_usd": prices.usd(r.asset),
                "ltv": r.borrow_collateral_factor / FACTOR_SCALE,
                "liquidation_threshold": r.liquidate_collateral_factor / FACTOR_SCALE,
                "liquidation_bonus": 0.0,
                "protocol_fee": 0.0,
                "usage_as_collateral_enabled": not r.is_base,
                "borrowing_enabled": r.is_base,
                **venue_columns(d, prices.usd(r.asset), quotes.get(r.asset, 1.0)),
                "supply_cap": float(r.supply_cap),
                "liquidity_rate": state.supply_rate * _SECONDS_PER_YEAR / FACTOR_SCALE
                if r.is_base
                else 0.0,
                "variable_borrow_rate": state.borrow_rate * _SECONDS_PER_YEAR / FACTOR_SCALE
                if r.is_base
                else 0.0,
                "liquidity_index": state.accrued_supply_index / BASE_INDEX_SCALE
                if r.is_base
                else 1.0,
                "variable_borrow_index": state.accrued_borrow_index / BASE_INDEX_SCALE
                if r.is_base
                else 1.0,
                "liquidation_factor": r.liquidation_factor / FACTOR_SCALE,
                "is_base_asset": r.is_base,
            }
        )
    frame = pd.DataFrame(rows)
    scale = {r.asset: 10**r.decimals for r in reserves}
    ps = found.positions
    positions = pd.DataFrame(
        {
            "account": pd.Series([p.account for p in ps], dtype=object),
            "asset": pd.Series([p.asset for p in ps], dtype=object),
            "collateral": np.array([p.collateral / scale[p.asset] for p in ps], dtype=np.float64),
            "debt": np.array([p.debt / scale[p.asset] for p in ps], dtype=np.float64),
            "collateral_enabled": np.array([p.collateral_enabled for p in ps], dtype=bool),
        }
    )
    base_scale = state.base_scale
    by_asset = {r.asset: r for r in reserves}
    meta = dict(meta)
    meta["comet"] = {
        "base_asset": state.base_asset,
        "base_symbol": by_asset[state.base_asset].symbol,
        "base_scale": base_scale,
        "store_front_price_factor": state.store_front_price_factor / FACTOR_SCALE,
        "target_reserves": state.target_reserves / base_scale,
        "reserves": state.reserves / base_scale,
        "base_borrow_min": state.base_borrow_min / base_scale,
        "supply_index": state.accrued_supply_index / BASE_INDEX_SCALE,
        "borrow_index": state.accrued_borrow_index / BASE_INDEX_SCALE,
        "utilization": state.utilization / FACTOR_SCALE,
        "last_accrual_time": state.last_accrual_time,
        "collateral_reserves": {
            a: amount / scale[a] for a, amount in sorted(collateral_reserves.items())
        },
        "raw": {
            "store_front_price_factor": str(state.store_front_price_factor),
            "target_reserves": str(state.target_reserves),
            "reserves": str(state.reserves),
            "base_borrow_min": str(state.base_borrow_min),
            "stored_supply_index": str(state.supply_index),
            "stored_borrow_index": str(state.borrow_index),
            "accrued_supply_index": str(state.accrued_supply_index),
            "accrued_borrow_index": str(state.accrued_borrow_index),
            "total_supply_base": str(state.total_supply_base),
            "total_borrow_base": str(state.total_borrow_base),
            "supply_rate_per_second": str(state.supply_rate),
            "borrow_rate_per_second": str(state.borrow_rate),
            "utilization": str(state.utilization),
        },
    }
    return MarketSnapshot.from_frames(meta, frame, positions, venues=venues_frame(dex, quotes))


def comet_problems(
    found: AccountPositions,
    reserves: Sequence[CometReserve],
    prices: Prices,
    state: CometState,
    chain_data: Mapping[str, tuple[int, ...]],
    block: int,
) -> tuple[list[str], int]:
    """Accounts whose balances or liquidatability the read values do not reproduce (one line
    each), and how many accounts are liquidatable."""
    base = state.base_asset
    by_asset = {r.asset: r for r in reserves}
    held: dict[str, list[tuple[int, int, int, int, int]]] = {}
    principal: dict[str, int] = {}
    balances: dict[str, tuple[int, int]] = {}
    for p in found.positions:
        if p.asset == base:
            principal[p.account] = (p.scaled_collateral or 0) - (p.scaled_debt or 0)
            balances[p.account] = (p.collateral, p.debt)
        else:
            r = by_asset[p.asset]
            held.setdefault(p.account, []).append(
                (
                    r.offset,
                    p.collateral,
                    prices.raw[p.asset],
                    r.scale,
                    r.liquidate_collateral_factor,
                )
            )
    base_price = prices.raw[base]
    problems: list[str] = []
    liquidatable = 0
    lower = {a.lower(): v for a, v in chain_data.items()}
    for account, (supply, debt) in balances.items():
        data = lower.get(account.lower())
        if data is None:
            problems.append(f"account {account} at block {block}: not verified")
            continue
        chain_liq, chain_borrow, chain_supply = bool(data[0]), data[1], data[2]
        coll = [c[1:] for c in sorted(held.get(account, []))]
        ours = is_liquidatable_exact(principal[account], coll, base_price, state)
        liquidatable += chain_liq
        if (debt, supply) != (chain_borrow, chain_supply) or ours != chain_liq:
            problems.append(
                f"account {account} at block {block}: snapshot borrow {debt}, supply {supply}, "
                f"liquidatable {ours}; Comet borrowBalanceOf {chain_borrow}, balanceOf "
                f"{chain_supply}, isLiquidatable {chain_liq}"
            )
    return problems, liquidatable


async def pull_comet(
    adapter: CompoundV3Adapter,
    chain: Chain,
    block: BlockRef,
    meta: dict[str, Any],
    started: float,
    out: str | Path | None,
) -> MarketSnapshot:
    """The Comet half of ``keeper.pull.pull`` (``meta`` holds the common keys)."""
    addresses = await adapter.resolve(block)
    with progress("scanning logs") as bar:
        accounts = await adapter.discover_accounts(block, on_progress=bar.advance)
    reserves = [r for r in await adapter.read_reserves(block.number) if isinstance(r, CometReserve)]
    state = adapter.state
    assert state is not None
    prices = await adapter.read_prices([r.asset for r in reserves], block.number)
    with progress("reading accounts", total=len(accounts)) as bar:
        found = await adapter.read_positions(
            accounts, reserves, block.number, on_progress=bar.advance
        )
    dex = await adapter.read_dex_liquidity(reserves, block.number)
    collateral_reserves = await adapter.read_collateral_reserves(reserves, block.number)
    with_base = sorted({p.account for p in found.positions if p.asset == state.base_asset})
    with progress("verifying accounts", total=len(with_base)) as bar:
        chain_data = await adapter.read_account_data(with_base, block.number)
        bar.advance(len(with_base))
    await check_not_reorganised(chain, block)
    problems, liquidatable = comet_problems(
        found, reserves, prices, state, chain_data, block.number
    )
    if problems:
        more = f" (and {len(problems) - 1} more account(s))" if len(problems) > 1 else ""
        raise SnapshotMismatch(
            f"the snapshot cannot represent {problems[0]}{more}: the Comet market at "
            f"{addresses.pool} does not follow Compound V3's rules as read"
        )
    meta.update(
        {
            "addresses": addresses.as_dict(),
            "base_currency_unit": prices.base_unit,
            "debt_value_rounding": "floor",
            "emode_family": "none",
            "accounts_discovered": len(accounts),
            "verified_accounts": len(chain_data),
            "liquidatable_accounts": liquidatable,
            "discovery": {
                "scanned_blocks": list(adapter.last_scan) if adapter.last_scan else None,
                "cache": str(adapter.config.cache.path) if adapter.config.cache else None,
            },
        }
    )
    snapshot = build_comet_snapshot(meta, reserves, prices, found, dex, state, collateral_reserves)
    log.info(
        "pulled %d Comet accounts at block %d; %d with a base balance match the market's views",
        snapshot.n_accounts,
        block.number,
        len(chain_data),
    )
    snapshot.meta["pull"] = {
        **chain.stats.as_dict(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if out is not None:
        snapshot.save(out)
    return snapshot
