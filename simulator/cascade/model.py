"""What both cascade engines take in (``Market``) and give back (``CascadeOutput``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.cascade.assets import resolve_feeds
from simulator.cascade.config import EngineConfig
from simulator.errors import InputError, ScenarioError
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book, CometTerms

__all__ = [
    "ETH_SYMBOLS",
    "CascadeOutput",
    "LiquidationEvent",
    "Market",
    "align_paths",
    "prepare",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Symbols whose market price prices gas (first match in reserves order).
ETH_SYMBOLS: tuple[str, ...] = ("WETH", "ETH")


@dataclass(frozen=True, slots=True)
class Market:
    """Per-asset and per-account arrays one engine run needs, derived from a ``Book``.

    Balances are *scaled* (Aave's aToken / variable-debt-token scaled balances relative to
    the snapshot block): an account's tokens at step ``t`` are its scaled balance times the
    asset's index growth since the snapshot (``supply_growth[t]`` for collateral,
    ``debt_growth[t]`` for debt). Liquidations convert what they repay and seize back to
    scaled amounts, so interest accrues on what is left, as on the Pool.

    Each account has an e-mode class (``Book.account_class``); its LT, liquidation bonus and
    prices come from the class's row of the tables (row 0: the reserves' own).

    Attributes:
        price0: snapshot oracle prices, USD per token, ``(n_assets,)``.
        lt, bonus: the reserves' own LT and liquidation bonus (class 0), ``(n_assets,)``.
        protocol_fee, dex_fee: fractions, ``(n_assets,)``.
        depth: constant-product depth ``sqrt(x * y) * liquidity_scale``, ``(n_assets,)``.
        venue_kind, venue_xs, venue_ys, venue_count: each asset's venue (``simulator.venues``:
            kind, points and how many of them, scaled by ``liquidity_scale``); ``depth`` is the
            constant product's.
        collateral: collateral that counts (enabled, reserve LT > 0), scaled tokens (tokens
            at the snapshot), ``(n_accounts, n_assets)``.
        debt: debt, scaled tokens, ``(n_accounts, n_assets)``.
        account_class: each account's e-mode class, ``(n_accounts,)``.
        class_lt, class_bonus: LT and bonus of each collateral for each class,
            ``(n_classes, n_assets)``.
        class_ratio: each class's price over the oracle's (``class_price_usd / price_usd``:
            1 unless a v3.0 category price source prices the asset), ``(n_classes, n_assets)``.
        ticks: ticks of the engine's clock per scenario step (``EngineConfig.clock_seconds``);
            tick ``k`` is at ``k x tick_seconds``, scenario step ``t`` at tick ``t x ticks``.
        tick_seconds: ``step_seconds / ticks``.
        supply_growth, debt_growth: liquidity and variable-borrow index growth since the
            snapshot at each tick, as of the last scenario point at or before it
            (``Book.accrual_factors(t x step_seconds)``; all 1 without accrual),
            ``(n_steps x ticks + 1, n_assets)``.
        eth_index: column of WETH/ETH for gas prices, ``-1`` if none.
        oracle_lag: oracle delay in whole ticks (``round(delay_s / tick_seconds)``).
        deviation, heartbeat_s: each asset's oracle feed, ``(n_assets,)``
            (``simulator.cascade.assets.resolve_feeds``).
        rate_base: column of the asset whose oracle price an exchange-rate price multiplies,
            ``-1`` for a market-priced asset, ``(n_assets,)``.
        rate_ratio: an exchange-rate asset's oracle price over its base's at each tick, as of
            the last scenario point (the snapshot's ratio times the capped growth of the rate; 0 for market-priced
            assets), ``(n_steps x ticks + 1, n_assets)``.
        ref_coef: ``c`` of each asset's reference impact ``exp(-c sqrt(USD sold))``
            (``rules.reference_impact``), ``(n_assets,)``.
        blocks_per_step: the liquidation rounds a tick holds (one per block, at least one).
        comet: a Compound V3 market's terms (``Book.comet``), ``None`` for Aave.
    """

    price0: FloatArray
    lt: FloatArray
    bonus: FloatArray
    protocol_fee: FloatArray
    dex_fee: FloatArray
    depth: FloatArray
    venue_kind: IntArray
    venue_xs: FloatArray
    venue_ys: FloatArray
    venue_count: IntArray
    collateral: FloatArray
    debt: FloatArray
    account_class: IntArray
    class_lt: FloatArray
    class_bonus: FloatArray
    class_ratio: FloatArray
    supply_growth: FloatArray
    debt_growth: FloatArray
    eth_index: int
    ticks: int
    tick_seconds: float
    oracle_lag: int
    deviation: FloatArray
    heartbeat_s: FloatArray
    rate_base: IntArray
    rate_ratio: FloatArray
    ref_coef: FloatArray
    blocks_per_step: int
    comet: CometTerms | None = None

    @classmethod
    def build(cls, book: Book, paths: PricePaths, config: EngineConfig) -> Market:
        assert book.venues is not None  # Book fills it
        venues = book.venues.scaled(config.liquidity_scale)
        depth = np.ascontiguousarray(venues.depth, dtype=np.float64)
        upper = [s.upper() for s in book.symbols]
        eth_index = next((upper.index(s) for s in ETH_SYMBOLS if s in upper), -1)
        step = float(paths.step_seconds)
        ticks = (
            1
            if math.isinf(config.clock_seconds)
            else max(1, math.ceil(step / config.clock_seconds - 1e-9))
        )
        tick = step / ticks
        lag = round(paths.oracle.delay_s / tick)
        n_ticks1 = (paths.multipliers.shape[1] - 1) * ticks + 1
        # interest and exchange rates move at the scenario's points, held between them (they
        # move by parts per million a tick; holding them keeps a quiet tick free of rescans)
        n_steps1 = paths.multipliers.shape[1]
        at = np.repeat(np.arange(n_steps1), ticks)[:n_ticks1]  # the last point <= each tick
        s_step = np.ones((n_steps1, book.n_assets))
        d_step = np.ones((n_steps1, book.n_assets))
        if config.accrual:
            for t in range(1, n_steps1):
                s_step[t], d_step[t] = book.accrual_factors(t * step)
        s_grow = np.ascontiguousarray(s_step[at])
        d_grow = np.ascontiguousarray(d_step[at])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(
                book.price_usd[None, :] > 0.0,
                book.class_price_usd / book.price_usd[None, :],
                1.0,
            )
        feeds = resolve_feeds(book.symbols, paths.oracle, paths.assets, scenario=paths.scenario)
        rate_base = feeds.rate_base
        rate_ratio = np.zeros((n_ticks1, book.n_assets))
        rated = np.flatnonzero(rate_base >= 0)
        if rated.size:
            base_price = book.price_usd[rate_base[rated]]
            ratio0 = np.where(base_price > 0.0, book.price_usd[rated] / base_price, 0.0)
            for k in range(n_ticks1):
                grown = feeds.rate_growth(float(at[k]) * step)
                rate_ratio[k, rated] = ratio0 * grown[rated]
        if math.isinf(config.liquidity_scale):
            ref_coef = np.zeros(book.n_assets)  # infinite liquidity everywhere: no impact
        else:
            ref_coef = feeds.reference_coefficient(
                config.reference_impact_coefficient, config.reference_impact_share
            )
        return cls(
            price0=np.ascontiguousarray(book.price_usd, dtype=np.float64),
            lt=np.ascontiguousarray(book.liquidation_threshold, dtype=np.float64),
            bonus=np.ascontiguousarray(book.liquidation_bonus, dtype=np.float64),
            protocol_fee=np.ascontiguousarray(book.protocol_fee, dtype=np.float64),
            dex_fee=np.ascontiguousarray(book.dex_fee, dtype=np.float64),
            depth=depth,
            venue_kind=np.ascontiguousarray(venues.kind, dtype=np.int64),
            venue_xs=np.ascontiguousarray(venues.xs, dtype=np.float64),
            venue_ys=np.ascontiguousarray(venues.ys, dtype=np.float64),
            venue_count=np.ascontiguousarray(venues.count, dtype=np.int64),
            collateral=np.ascontiguousarray(book.effective_collateral(), dtype=np.float64),
            debt=np.ascontiguousarray(book.debt, dtype=np.float64),
            account_class=np.ascontiguousarray(book.account_class, dtype=np.int64),
            class_lt=np.ascontiguousarray(book.class_lt, dtype=np.float64),
            class_bonus=np.ascontiguousarray(book.class_bonus, dtype=np.float64),
            class_ratio=np.ascontiguousarray(ratio, dtype=np.float64),
            supply_growth=s_grow,
            debt_growth=d_grow,
            eth_index=eth_index,
            ticks=ticks,
            tick_seconds=tick,
            oracle_lag=int(lag),
            deviation=np.ascontiguousarray(feeds.deviation),
            heartbeat_s=np.ascontiguousarray(feeds.heartbeat_s),
            rate_base=np.ascontiguousarray(rate_base, dtype=np.int64),
            rate_ratio=rate_ratio,
            ref_coef=np.ascontiguousarray(ref_coef, dtype=np.float64),
            blocks_per_step=max(1, math.floor(tick / config.block_seconds + 1e-9)),
            comet=book.comet,
        )


def prepare(book: Book, paths: PricePaths, config: EngineConfig) -> tuple[PricePaths, Market]:
    """What every engine starts from: ``paths`` in the book's asset order and checked
    (``align_paths``, ``check_paths``), and the ``Market`` of the two."""
    paths = align_paths(paths, book.symbols)
    check_paths(paths, book.n_assets)
    return paths, Market.build(book, paths, config)


def align_paths(paths: PricePaths, symbols: tuple[str, ...]) -> PricePaths:
    """``paths`` with its asset axis in ``symbols`` order; raises if an asset is missing."""
    if paths.symbols == symbols:
        return paths
    missing = [s for s in symbols if s not in paths.symbols]
    if missing:
        raise ScenarioError(
            f"scenario {paths.scenario!r} has no price path for {missing}; "
            f"it has {list(paths.symbols)}"
        )
    order = [paths.symbols.index(s) for s in symbols]
    return PricePaths(
        scenario=paths.scenario,
        symbols=symbols,
        step_seconds=paths.step_seconds,
        multipliers=np.ascontiguousarray(paths.multipliers[:, :, order]),
        gas_gwei=paths.gas_gwei,
        oracle=paths.oracle,
        seed=paths.seed,
        weights=paths.weights,
        assets=paths.assets,
    )


def check_paths(paths: PricePaths, n_assets: int) -> None:
    """Raise ``InputError`` for paths the engines cannot run."""
    m = paths.multipliers
    if m.ndim != 3 or m.shape[2] != n_assets or m.shape[1] < 1:
        raise InputError(
            f"price multipliers have shape {m.shape}; expected (n_paths, n_steps + 1, {n_assets})"
        )
    if paths.gas_gwei.shape != m.shape[:2]:
        raise InputError(f"gas_gwei has shape {paths.gas_gwei.shape}; expected {m.shape[:2]}")
    if not np.isfinite(m).all() or (m < 0).any():
        raise InputError("price multipliers must be finite and >= 0")
    if not np.isfinite(paths.gas_gwei).all() or (paths.gas_gwei < 0).any():
        raise InputError("gas prices must be finite and >= 0")
    if paths.step_seconds <= 0:
        raise InputError(f"step_seconds = {paths.step_seconds}; expected > 0")


@dataclass(frozen=True, slots=True)
class LiquidationEvent:
    """One executed liquidation (recorded by the reference engine on request).

    Prices are the oracle prices it ran at, USD per token; amounts are tokens. ``step`` is
    the scenario step whose interval holds the engine tick it happened at, ``time_s`` that
    tick's time since the snapshot (seconds; the round's block is ``round x block_seconds``
    later).
    """

    path: int
    step: int
    round: int
    account: int
    collateral_asset: int
    debt_asset: int
    repaid: float
    seized: float
    protocol_fee: float
    price_collateral: float
    price_debt: float
    proceeds_usd: float
    profit_usd: float
    collateral_after: float
    debt_after: float
    time_s: float = 0.0


@dataclass(frozen=True, slots=True)
class CascadeOutput:
    """Per-path outcome of the cascade engine for a block of paths.

    Attributes:
        shortfall_usd: bad debt at the horizon plus realised deficits, USD, ``(n_paths,)``.
        liquidated_usd: debt repaid by liquidators at oracle prices, USD, ``(n_paths,)``.
        n_liquidations: executed liquidations, ``(n_paths,)``.
        protocol_fee_usd: treasury's share of the premium at oracle prices, USD, ``(n_paths,)``.
        deficit_usd: debt burned as deficit when collateral ran out (Aave V3.3), USD,
            ``(n_paths,)``; part of ``shortfall_usd``.
        rounds_limit_hits: steps that ended at the round limit, ``(n_paths,)``.
        shortfall_by_asset: ``shortfall_usd`` split over debt reserves, USD,
            ``(n_paths, n_assets)`` (a deficit by its reserve; a horizon shortfall pro rata
            of the account's debt value).
        account_path, account_index, account_shortfall_usd: the non-zero per-account
            shortfalls as sparse triplets, sorted by (path, account); paths are row numbers
            within this block.
        worst_market: lowest end-of-step market price (scenario price x impact) per asset,
            relative to the snapshot price, ``(n_paths, n_assets)``.
        reruns: paths on which the fast engine widened its candidate set because price
            impact went below its first guess (a diagnostic; results are unaffected).
        events: executed liquidations (reference engine with ``record=True``), else empty.
        trace_market: market price multipliers at the end of each step,
            ``(n_paths, n_steps + 1, n_assets)``, when traced, else ``None``.
        trace_liquidated_usd: cumulative liquidated USD at the end of each step.
        trace_shortfall_usd: mark-to-market shortfall (debt value above collateral value at
            market prices, plus realised deficits) at the end of each step.
        reserve_drawdown_usd: a Compound V3 market's fall of reserves from the snapshot's,
            USD, ``(n_paths,)`` (``None`` for Aave). On a Comet market ``shortfall_usd`` is
            how far the reserves end below zero, ``liquidated_usd`` the debt absorbed,
            ``deficit_usd`` the part of it the collateral's credit did not cover and
            ``n_liquidations`` the absorptions.
        unsold_collateral_usd: a Compound V3 market's absorbed collateral still for sale at
            the horizon (the store front closed or no purchase paid), at reference prices,
            USD, ``(n_paths,)``: not part of its reserves, so not of its shortfall.
    """

    shortfall_usd: FloatArray
    liquidated_usd: FloatArray
    n_liquidations: IntArray
    protocol_fee_usd: FloatArray
    deficit_usd: FloatArray
    rounds_limit_hits: IntArray
    shortfall_by_asset: FloatArray
    account_path: IntArray
    account_index: IntArray
    account_shortfall_usd: FloatArray
    worst_market: FloatArray
    reruns: int = 0
    events: tuple[LiquidationEvent, ...] = ()
    trace_market: FloatArray | None = None
    trace_liquidated_usd: FloatArray | None = None
    trace_shortfall_usd: FloatArray | None = None
    reserve_drawdown_usd: FloatArray | None = None
    unsold_collateral_usd: FloatArray | None = None

    @property
    def n_paths(self) -> int:
        return int(self.shortfall_usd.shape[0])
