"""The fast engines' inputs, by part: the market every protocol shares, and each protocol's
rules.

The reference engine reads ``Market`` and ``EngineConfig`` attribute by attribute; the numba
kernels (``fast`` for Aave, ``fast_comet`` for Compound V3) take the same values as named
tuples of arrays and scalars (numba compiles attribute access on a named tuple to a plain
field load), so a kernel reads ``market.deviation[j]`` and ``settings.half_life_s``, never
``asset[6][j]`` or ``params[3]``. A protocol adds its own two tuples (its per-asset arrays and
its scalars); the market part stays the same for every protocol.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from simulator.cascade.config import EngineConfig
from simulator.cascade.model import Market
from simulator.scenarios.paths import PricePaths

__all__ = [
    "MarketArrays",
    "MarketSettings",
    "market_arrays",
    "market_settings",
    "path_arrays",
]


class MarketArrays(NamedTuple):
    """The market part's arrays (``Market``'s, contiguous float64 / int64)."""

    price0: Any
    """Snapshot oracle prices, ``(n_assets,)``."""
    dex_fee: Any
    """Venue swap fee, ``(n_assets,)``."""
    depth: Any
    """Constant-product depth after ``liquidity_scale``, ``(n_assets,)``."""
    deviation: Any
    """Oracle deviation threshold per asset, ``(n_assets,)``."""
    heartbeat_s: Any
    """Oracle heartbeat per asset, ``(n_assets,)``."""
    ref_coef: Any
    """Reference impact coefficient per asset (``rules.reference_impact``), ``(n_assets,)``."""
    rate_base: Any
    """Column whose oracle price an exchange-rate asset's multiplies, -1 for none (as
    float64), ``(n_assets,)``."""
    supply_growth: Any
    """Liquidity index growth at each tick, ``(n_ticks + 1, n_assets)``."""
    debt_growth: Any
    """Borrow index growth at each tick, ``(n_ticks + 1, n_assets)``."""
    rate_ratio: Any
    """An exchange-rate asset's oracle price over its base's at each tick."""
    venue_kind: Any
    """Each asset's venue (``simulator.venues``): kind, points and their count."""
    venue_xs: Any
    venue_ys: Any
    venue_count: Any


class MarketSettings(NamedTuple):
    """The market part's scalars (``Market`` and ``EngineConfig``)."""

    tick_seconds: float
    gas_units: float
    eth_price_usd: float
    half_life_s: float
    block_seconds: float
    eth_index: int
    oracle_lag: int
    round_limit: int
    """Rounds a tick holds: its blocks, or ``EngineConfig.round_limit`` when smaller."""
    count_hits: bool
    """The guard, not the tick's blocks, is the limit (a stop there is a hit)."""
    ticks: int
    """Engine ticks per scenario step."""
    trace: bool


def _f(a: Any) -> Any:
    return np.ascontiguousarray(a, dtype=np.float64)


def market_arrays(market: Market) -> MarketArrays:
    return MarketArrays(
        price0=_f(market.price0),
        dex_fee=_f(market.dex_fee),
        depth=_f(market.depth),
        deviation=_f(market.deviation),
        heartbeat_s=_f(market.heartbeat_s),
        ref_coef=_f(market.ref_coef),
        rate_base=_f(market.rate_base),
        supply_growth=_f(market.supply_growth),
        debt_growth=_f(market.debt_growth),
        rate_ratio=_f(market.rate_ratio),
        venue_kind=np.ascontiguousarray(market.venue_kind, dtype=np.int64),
        venue_xs=_f(market.venue_xs),
        venue_ys=_f(market.venue_ys),
        venue_count=np.ascontiguousarray(market.venue_count, dtype=np.int64),
    )


def market_settings(market: Market, config: EngineConfig, *, trace: bool) -> MarketSettings:
    return MarketSettings(
        tick_seconds=float(market.tick_seconds),
        gas_units=float(config.gas_units),
        eth_price_usd=float(config.eth_price_usd),
        half_life_s=float(config.arbitrage_half_life_s),
        block_seconds=float(config.block_seconds),
        eth_index=int(market.eth_index),
        oracle_lag=int(market.oracle_lag),
        round_limit=int(min(config.round_limit, market.blocks_per_step)),
        count_hits=bool(config.round_limit <= market.blocks_per_step),
        ticks=int(market.ticks),
        trace=bool(trace),
    )


def path_arrays(paths: PricePaths) -> tuple[Any, Any]:
    """The scenario's multipliers ``(n_paths, n_steps + 1, n_assets)`` and gas prices
    ``(n_paths, n_steps + 1)``, contiguous float64, as the kernels read them."""
    return (
        np.ascontiguousarray(paths.multipliers, dtype=np.float64),
        np.ascontiguousarray(paths.gas_gwei, dtype=np.float64),
    )
