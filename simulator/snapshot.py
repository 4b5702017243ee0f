"""A lending market's state at one block: the contract between ``pull`` and ``simulate``.

A snapshot is a directory holding ``meta.json``, ``reserves.parquet``, ``positions.parquet``,
``accounts.parquet`` (each account's e-mode category), ``emode.parquet`` (the e-mode
categories' parameters per asset) and ``venues.parquet`` (the points of the venues that are not
constant-product pools: Uniswap V3 segments and user depth curves, ``simulator.venues``);
formats in the README. Snapshots without ``venues.parquet`` or the ``venue_kind`` column load
with a constant-product venue for every asset. Snapshots written before e-mode was
read have only the first three files and the original reserve columns: they load as markets
without e-mode, isolation, caps or interest (the defaults in ``RESERVE_OPTIONAL``). ``MarketSnapshot`` loads, validates and saves
it atomically, and ``MarketSnapshot.book()`` exposes the dense accounts x assets arrays the
cascade engine works on.

Units: balances are token units (float64, already divided by ``10**decimals``), prices are
USD per token, and risk parameters are fractions (LT 0.825, bonus 0.05 for a 5% premium,
protocol fee 0.10 of the premium). Interest rates are annual rates as fractions (Aave's ray
rates / 1e27, a 365-day year of seconds), indexes are Aave's ray indexes / 1e27.

**E-mode.** An account in an e-mode category gets the category's LTV, LT and liquidation
bonus for some of its collateral, the reserve's own for the rest:

- ``meta["emode_family"] == "liquid"`` (Aave v3.2 and later): the category's parameters apply
  to the assets in its collateral bitmap (``emode.parquet`` rows with ``is_collateral``); an
  asset in its LTV-zero bitmap has LTV 0 there.
- ``"per-reserve"`` (v3.0, v3.1): a reserve belongs to at most one category (its
  configuration bits); the category's parameters apply to every asset of the category, and
  when the category has a price source, those assets are priced by it for its accounts.

The engines see this as *classes*: class 0 is "no e-mode", class ``k > 0`` the category
``Book.class_category[k]``; ``Book.class_lt[k, j]`` is the LT of asset ``j`` for an account of
class ``k``, and so on. ``Book.account_class`` maps each account to its class.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulator import __version__
from simulator.atomic import (
    atomic_directory,
    atomic_write_json,
    replaceable_directory_problem,
    write_parquet,
)
from simulator.errors import SnapshotError
from simulator.venues import (
    KIND_CONSTANT_PRODUCT,
    KIND_CURVE,
    KIND_NAMES,
    KIND_V3,
    REPORT_IMPACTS,
    VenueError,
    Venues,
    curve_rows,
    v3_rows,
)

__all__ = [
    "ACCOUNT_COLUMNS",
    "DEBT_VALUE_ROUNDINGS",
    "EMODE_COLUMNS",
    "EMODE_FAMILIES",
    "HF_ROUNDINGS",
    "META_REQUIRED",
    "POSITION_COLUMNS",
    "RESERVE_COLUMNS",
    "RESERVE_OPTIONAL",
    "SECONDS_PER_YEAR",
    "SNAPSHOT_FILES",
    "VENUE_COLUMNS",
    "Book",
    "CometTerms",
    "MarketSnapshot",
    "check_save_target",
    "empty_accounts",
    "empty_emode",
    "empty_venues",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

IntArray = npt.NDArray[np.int64]

META_FILE = "meta.json"
RESERVES_FILE = "reserves.parquet"
POSITIONS_FILE = "positions.parquet"
ACCOUNTS_FILE = "accounts.parquet"
EMODE_FILE = "emode.parquet"
VENUES_FILE = "venues.parquet"
#: The files of a snapshot directory, and the only ones it holds.
SNAPSHOT_FILES: tuple[str, ...] = (
    META_FILE,
    RESERVES_FILE,
    POSITIONS_FILE,
    ACCOUNTS_FILE,
    EMODE_FILE,
    VENUES_FILE,
)
#: Files a snapshot must have; the others are absent in snapshots of older versions.
SNAPSHOT_REQUIRED: tuple[str, ...] = (META_FILE, RESERVES_FILE, POSITIONS_FILE)

#: Seconds in Aave's interest year (``MathUtils.SECONDS_PER_YEAR``).
SECONDS_PER_YEAR = 365 * 24 * 3600

#: ``meta["emode_family"]`` values: no e-mode read, v3.0/v3.1 per-reserve categories, v3.2+
#: liquid e-modes (bitmaps).
EMODE_FAMILIES: tuple[str, ...] = ("none", "per-reserve", "liquid")

#: ``meta["hf_rounding"]`` values: how the Pool rounds the health factor.
#: ``"weighted-sum"``: sum(value x LT) divided by debt (aave-v3-origin, v3.2 and later);
#: ``"average-lt-bps"``: the collateral-weighted average LT rounded down to whole basis
#: points, times collateral, divided by debt (aave-v3-core v3.0.x, v3.1).
HF_ROUNDINGS: tuple[str, ...] = ("weighted-sum", "average-lt-bps")
#: Other names for the same roundings (the Pool version whose rounding it is), accepted in
#: ``meta.json``.
_HF_ROUNDING_ALIASES = {"v3.7": "weighted-sum", "v3.0": "average-lt-bps"}

#: ``meta["debt_value_rounding"]`` values: how the Pool rounds each debt's base-currency value
#: (``GenericLogic._getUserDebtInBaseCurrency``): down before aave-v3-origin v3.5, up since.
DEBT_VALUE_ROUNDINGS: tuple[str, ...] = ("floor", "ceil")

#: Relative slack when a float stands for an exact integer that is floored or ceiled: a
#: position's value in base units is a product of floats a few ulps off, so an exact integer
#: may read as n - 1e-16 n. A true fraction as close to an integer is rare, and then costs
#: one base unit (relative 1e-15 at that size).
_INT_SLACK = 2e-15
#: The same for the average LT in basis points (a ratio of two sums of values, <= 1e4).
_BPS_SLACK = 1e-11

#: Keys every ``meta.json`` must have.
META_REQUIRED: tuple[str, ...] = (
    "protocol",
    "chain_id",
    "block_number",
    "block_hash",
    "timestamp",
    "addresses",
    "software_version",
)

#: reserves.parquet: column -> (kind, meaning). Kinds: "str", "int", "float", "bool".
RESERVE_COLUMNS: dict[str, tuple[str, str]] = {
    "asset": ("str", "checksummed token address"),
    "symbol": ("str", "token symbol"),
    "decimals": ("int", "token decimals"),
    "price_usd": ("float", "oracle price, USD per token"),
    "ltv": ("float", "loan-to-value, fraction"),
    "liquidation_threshold": ("float", "liquidation threshold, fraction"),
    "liquidation_bonus": ("float", "liquidator premium, fraction (0.05 = 5%)"),
    "protocol_fee": ("float", "share of the premium paid to the treasury, fraction"),
    "usage_as_collateral_enabled": ("bool", "reserve may be used as collateral"),
    "borrowing_enabled": ("bool", "reserve may be borrowed"),
    "dex_pair": ("str", "address of the DEX pool used for price impact, '' if none"),
    "dex_quote_asset": ("str", "address of the pool's other token (a stablecoin), '' if none"),
    "dex_reserve_asset": ("float", "pool reserve of this asset, token units (0 if none)"),
    "dex_reserve_quote": (
        "float",
        "pool reserve of the quote token, USD (at the quote's oracle price when the market "
        "prices it, else $1 a token; 0 if none)",
    ),
    "dex_fee": ("float", "pool swap fee, fraction (0.003)"),
}

#: reserves.parquet columns added with e-mode, isolation, caps and interest: column ->
#: (kind, meaning, value for a snapshot that lacks the column). Written by every pull.
RESERVE_OPTIONAL: dict[str, tuple[str, str, Any]] = {
    "is_active": ("bool", "reserve active (configuration bit 56)", True),
    "is_frozen": ("bool", "reserve frozen: no new supply or borrow (bit 57)", False),
    "is_paused": (
        "bool",
        "reserve paused: no action at all, liquidations included (bit 60)",
        False,
    ),
    "borrowable_in_isolation": ("bool", "may be borrowed by isolated accounts (bit 61)", False),
    "siloed_borrowing": ("bool", "an account borrowing it may borrow nothing else (bit 62)", False),
    "debt_ceiling_usd": ("float", "isolation debt ceiling, USD; 0: not an isolated asset", 0.0),
    "isolation_mode_total_debt_usd": ("float", "debt against it in isolation, USD", 0.0),
    "supply_cap": ("float", "supply cap, token units; 0: none", 0.0),
    "borrow_cap": ("float", "borrow cap, token units; 0: none", 0.0),
    "emode_category": ("int", "v3.0/v3.1 reserve e-mode category (bits 168-175); 0: none", 0),
    "liquidity_rate": ("float", "supply rate, annual fraction (ray / 1e27)", 0.0),
    "variable_borrow_rate": ("float", "variable borrow rate, annual fraction", 0.0),
    "stable_borrow_rate": ("float", "stable borrow rate (v3.0), annual fraction", 0.0),
    "liquidity_index": ("float", "normalised income at the block (ray / 1e27)", 1.0),
    "variable_borrow_index": ("float", "normalised variable debt at the block", 1.0),
    # Compound V3 (Comet) snapshots; an Aave snapshot reads the defaults
    "liquidation_factor": (
        "float",
        "Compound V3: share of an absorbed collateral's value credited to the account",
        0.0,
    ),
    "is_base_asset": (
        "bool",
        "Compound V3: the market's base asset (borrowed and supplied; never collateral)",
        False,
    ),
    "venue_kind": (
        "str",
        "where liquidators sell it: constant-product (the dex_* pool), uniswap-v3 or "
        "depth-curve (points in venues.parquet; dex_reserve_* then hold the constant-product "
        "pool with the same depth at the price, for engines that read only those)",
        "constant-product",
    ),
}

#: venues.parquet: the points of each asset whose ``venue_kind`` is not constant-product, in
#: order. uniswap-v3: ``x`` is a sqrt-price breakpoint (sqrt of USD per asset token, the
#: quote token at its oracle price; ascending, +-50% of the pull price), ``y`` the pool's
#: liquidity between it and the next row's ``x`` (sqrt(asset tokens x USD); 0 on the last
#: row). depth-curve: the user's
#: points, ``x`` a sale's size in USD, ``y`` its average price impact (fraction).
VENUE_COLUMNS: dict[str, tuple[str, str]] = {
    "asset": ("str", "checksummed token address"),
    "point": ("int", "index of the point within the asset's venue, from 0"),
    "x": ("float", "uniswap-v3: sqrt-price breakpoint; depth-curve: sale size, USD"),
    "y": ("float", "uniswap-v3: liquidity above x; depth-curve: average impact, fraction"),
}

#: accounts.parquet: one row per account of positions.parquet.
ACCOUNT_COLUMNS: dict[str, tuple[str, str]] = {
    "account": ("str", "checksummed account address"),
    "emode_category": ("int", "the account's e-mode category (getUserEMode); 0: none"),
}

#: emode.parquet: one row per (category, asset) the category names.
EMODE_COLUMNS: dict[str, tuple[str, str]] = {
    "category": ("int", "e-mode category id (1..255)"),
    "label": ("str", "the category's label"),
    "asset": ("str", "checksummed token address"),
    "ltv": ("float", "the category's LTV for this collateral, fraction"),
    "liquidation_threshold": ("float", "the category's LT for this collateral, fraction"),
    "liquidation_bonus": ("float", "the category's liquidator premium, fraction"),
    "is_collateral": ("bool", "the category's parameters apply to this collateral"),
    "is_borrowable": ("bool", "accounts of the category may borrow it"),
    "ltv_zero": ("bool", "the category gives this collateral LTV 0 (v3.3+ LTV-zero bitmap)"),
    "price_source": ("str", "v3.0 category price source address, '' if none"),
    "price_usd": ("float", "price of the asset for the category's accounts, USD per token"),
}

#: positions.parquet: one row per (account, asset) with a non-zero balance.
POSITION_COLUMNS: dict[str, tuple[str, str]] = {
    "account": ("str", "checksummed account address"),
    "asset": ("str", "checksummed token address"),
    "collateral": ("float", "supplied balance, token units"),
    "debt": ("float", "borrowed balance, token units"),
    "collateral_enabled": ("bool", "the account uses this supply as collateral"),
}


@dataclass(frozen=True, slots=True)
class CometTerms:
    """What a Compound V3 (Comet) market adds to a ``Book`` (``meta.json["comet"]``).

    Attributes:
        base: column of the base asset (borrowed and supplied; never collateral).
        liquidation_factor: share of an absorbed collateral's value credited to the account,
            fraction, ``(n_assets,)`` (0 for the base).
        store_front_price_factor: the store front sells absorbed collateral at a discount of
            this x (1 - liquidationFactor), fraction.
        target_reserves: ``buyCollateral`` sells only while reserves are below this, base
            tokens.
        reserves: ``getReserves()`` at the block, base tokens (signed).
        collateral_reserves: absorbed collateral the protocol already holds for sale, tokens,
            ``(n_assets,)``.
    """

    base: int
    liquidation_factor: FloatArray
    store_front_price_factor: float
    target_reserves: float
    reserves: float
    collateral_reserves: FloatArray

    @classmethod
    def from_meta(
        cls, comet: Mapping[str, Any], assets: tuple[str, ...], liquidation_factor: FloatArray
    ) -> CometTerms:
        """Read ``meta.json["comet"]`` for a market whose reserves are ``assets``."""
        try:
            base = assets.index(str(comet["base_asset"]))
            held = comet.get("collateral_reserves", {})
            unknown = sorted(set(held) - set(assets))
            if unknown:
                raise SnapshotError(
                    f"meta.json comet.collateral_reserves names {unknown}, which are not in "
                    "reserves.parquet"
                )
            terms = cls(
                base=base,
                liquidation_factor=np.asarray(liquidation_factor, dtype=np.float64),
                store_front_price_factor=float(comet["store_front_price_factor"]),
                target_reserves=float(comet["target_reserves"]),
                reserves=float(comet["reserves"]),
                collateral_reserves=np.array(
                    [float(held.get(a, 0.0)) for a in assets], dtype=np.float64
                ),
            )
        except KeyError as exc:
            raise SnapshotError(
                f"meta.json comet has no {exc.args[0]!r} (a Compound V3 snapshot records "
                "base_asset, store_front_price_factor, target_reserves, reserves and "
                "collateral_reserves)"
            ) from None
        except ValueError:
            raise SnapshotError(
                f"meta.json comet.base_asset {comet.get('base_asset')!r} is not in reserves.parquet"
            ) from None
        terms.check(len(assets))
        return terms

    def check(self, n_assets: int) -> None:
        """Raise ``SnapshotError`` for terms an engine cannot run."""
        lf = self.liquidation_factor
        if lf.shape != (n_assets,) or not np.all((lf >= 0.0) & (lf <= 1.0)):
            raise SnapshotError(
                f"Book.comet.liquidation_factor must hold {n_assets} fractions in [0, 1]"
            )
        if self.collateral_reserves.shape != (n_assets,) or not np.all(
            np.isfinite(self.collateral_reserves) & (self.collateral_reserves >= 0.0)
        ):
            raise SnapshotError(
                f"Book.comet.collateral_reserves must hold {n_assets} finite amounts >= 0"
            )
        if not 0 <= self.base < n_assets:
            raise SnapshotError(f"Book.comet.base = {self.base}; expected a column < {n_assets}")
        if not 0.0 <= self.store_front_price_factor <= 1.0:
            raise SnapshotError(
                f"comet store_front_price_factor = {self.store_front_price_factor}; expected "
                "a fraction in [0, 1]"
            )
        if not (math.isfinite(self.target_reserves) and math.isfinite(self.reserves)):
            raise SnapshotError("comet target_reserves and reserves must be finite")


@dataclass(frozen=True, slots=True)
class Book:
    """Dense accounts x assets view of a snapshot, as the cascade engine consumes it.

    Attributes:
        accounts: account addresses, shape ``(n_accounts,)``.
        assets: token addresses, shape ``(n_assets,)``, in reserves order.
        symbols: token symbols, shape ``(n_assets,)``.
        collateral: supplied balances, token units, shape ``(n_accounts, n_assets)``.
        debt: borrowed balances, token units, shape ``(n_accounts, n_assets)``.
        collateral_enabled: the supply counts as collateral, shape ``(n_accounts, n_assets)``.
        price_usd: oracle prices at the snapshot block, USD per token, ``(n_assets,)``.
        ltv, liquidation_threshold, liquidation_bonus, protocol_fee: fractions, ``(n_assets,)``.
        decimals: token decimals, ``(n_assets,)``.
        dex_reserve_asset: DEX pool reserve of the asset, token units, ``(n_assets,)``.
        dex_reserve_quote: DEX pool reserve of the quote token, USD, ``(n_assets,)``.
        dex_fee: DEX swap fee, fraction, ``(n_assets,)``.
        account_class: each account's e-mode class (0: none), ``(n_accounts,)``.
        class_category: the e-mode category of each class (class 0: category 0),
            ``(n_classes,)``.
        class_ltv, class_lt, class_bonus: LTV, LT and liquidation bonus of each asset's
            collateral for an account of each class, fractions, ``(n_classes, n_assets)``;
            row 0 holds the reserves' own parameters.
        class_price_usd: price of each asset for an account of each class (a v3.0 category
            price source), USD per token, ``(n_classes, n_assets)``; row 0 is ``price_usd``.
        supply_rate, borrow_rate: annual supply and variable borrow rates at the snapshot
            block, fractions, ``(n_assets,)``.
        hf_rounding: the Pool's health-factor rounding (``HF_ROUNDINGS``).
        base_unit: oracle base-currency units per USD (1e8 on Aave V3); when set (> 0), each
            position's value is rounded to whole base units the way the Pool rounds it
            (collateral down, debt per ``debt_value_rounding``), so values and health
            factors match ``getUserAccountData`` also for dust positions; 0: plain floats.
        debt_value_rounding: ``"floor"`` or ``"ceil"`` (``DEBT_VALUE_ROUNDINGS``).
        venues: every asset's liquidity venue (``simulator.venues.Venues``, unscaled); books
            built without one get the constant-product pools of ``dex_reserve_*``
            (``dataclasses.replace`` of the ``dex_*`` arrays keeps the old venues: pass
            ``venues=None`` with them to rebuild).
        comet: a Compound V3 market's terms (``CometTerms``), ``None`` for Aave. A Comet
            book's ``liquidation_threshold`` is each collateral's liquidateCollateralFactor,
            its ``debt`` only in the base column, and its base supplies are collateral that
            is not enabled.

    Books built without the e-mode fields (synthetic ones) get one class, the reserves'
    parameters, and zero rates.
    """

    accounts: npt.NDArray[np.str_]
    assets: tuple[str, ...]
    symbols: tuple[str, ...]
    collateral: FloatArray
    debt: FloatArray
    collateral_enabled: BoolArray
    price_usd: FloatArray
    ltv: FloatArray
    liquidation_threshold: FloatArray
    liquidation_bonus: FloatArray
    protocol_fee: FloatArray
    decimals: npt.NDArray[np.int64]
    dex_reserve_asset: FloatArray
    dex_reserve_quote: FloatArray
    dex_fee: FloatArray
    account_class: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_category: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    class_ltv: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    class_lt: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    class_bonus: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    class_price_usd: FloatArray = field(default_factory=lambda: np.zeros((0, 0)))
    supply_rate: FloatArray = field(default_factory=lambda: np.zeros(0))
    borrow_rate: FloatArray = field(default_factory=lambda: np.zeros(0))
    hf_rounding: str = "weighted-sum"
    base_unit: float = 0.0
    debt_value_rounding: str = "floor"
    venues: Venues | None = None
    comet: CometTerms | None = None

    def __post_init__(self) -> None:
        n_acc, n_ast = self.collateral.shape
        if self.comet is not None:
            self.comet.check(n_ast)
            debt = np.asarray(self.debt)
            if n_acc and np.any(np.delete(debt, self.comet.base, axis=1) != 0.0):
                raise SnapshotError(
                    "a Compound V3 book has debt only in its base asset "
                    f"{self.symbols[self.comet.base]!r}"
                )

        def fill(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        if self.venues is None:
            fill(
                "venues",
                constant_product_venues(
                    self.dex_reserve_asset, self.dex_reserve_quote, self.dex_fee
                ),
            )
        elif self.venues.n_assets != n_ast:
            raise SnapshotError(
                f"Book.venues describes {self.venues.n_assets} assets; the book has {n_ast}"
            )

        if self.account_class.size == 0 and n_acc:
            fill("account_class", np.zeros(n_acc, dtype=np.int64))
        if self.class_category.size == 0:
            fill("class_category", np.zeros(1, dtype=np.int64))
        for name, row in (
            ("class_ltv", self.ltv),
            ("class_lt", self.liquidation_threshold),
            ("class_bonus", self.liquidation_bonus),
            ("class_price_usd", self.price_usd),
        ):
            if getattr(self, name).size == 0:
                fill(name, np.asarray(row, dtype=np.float64)[None, :].copy())
        for name in ("supply_rate", "borrow_rate"):
            if getattr(self, name).size == 0:
                fill(name, np.zeros(n_ast))
        n_cls = len(self.class_category)
        for name in ("class_ltv", "class_lt", "class_bonus", "class_price_usd"):
            if getattr(self, name).shape != (n_cls, n_ast):
                raise SnapshotError(
                    f"Book.{name} has shape {getattr(self, name).shape}; expected "
                    f"({n_cls}, {n_ast}) (classes x assets)"
                )
        if self.account_class.shape != (n_acc,) or (
            n_acc
            and not 0 <= int(self.account_class.min()) <= int(self.account_class.max()) < n_cls
        ):
            raise SnapshotError(
                f"Book.account_class must hold one class in [0, {n_cls}) per account"
            )
        if self.hf_rounding not in HF_ROUNDINGS:
            raise SnapshotError(
                f"Book.hf_rounding = {self.hf_rounding!r}; expected one of {list(HF_ROUNDINGS)}"
            )
        if self.debt_value_rounding not in DEBT_VALUE_ROUNDINGS:
            raise SnapshotError(
                f"Book.debt_value_rounding = {self.debt_value_rounding!r}; expected one of "
                f"{list(DEBT_VALUE_ROUNDINGS)}"
            )
        if not (math.isfinite(self.base_unit) and self.base_unit >= 0):
            raise SnapshotError(f"Book.base_unit = {self.base_unit!r}; expected >= 0")

    @property
    def n_accounts(self) -> int:
        return int(self.collateral.shape[0])

    @property
    def n_classes(self) -> int:
        return int(self.class_category.shape[0])

    def account_lt(self) -> FloatArray:
        """Each account's LT for each asset (its class's), ``(n_accounts, n_assets)``."""
        return np.asarray(self.class_lt[self.account_class], dtype=np.float64)

    def account_bonus(self) -> FloatArray:
        """Each account's liquidation bonus for each collateral, ``(n_accounts, n_assets)``."""
        return np.asarray(self.class_bonus[self.account_class], dtype=np.float64)

    def account_prices(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Prices each account is valued at, ``(n_accounts, n_assets)``: ``price_usd`` (the
        snapshot's when omitted) scaled by the account's class price ratio (1 unless a v3.0
        category price source prices the asset)."""
        prices = self.price_usd if price_usd is None else np.asarray(price_usd, dtype=np.float64)
        ratio = self.class_price_usd / self.price_usd[None, :]
        return np.asarray(prices[None, :] * ratio[self.account_class], dtype=np.float64)

    def accrual_factors(self, seconds: float) -> tuple[FloatArray, FloatArray]:
        """Growth of supplied and borrowed balances over ``seconds`` from the snapshot block.

        Aave's own formulas from the snapshot's rates: supply balances grow with linear
        interest (``MathUtils.calculateLinearInterest``), debt with the compounded
        interest's three-term expansion (``calculateCompoundedInterest``).

        Returns:
            ``(supply_growth, debt_growth)``, each ``(n_assets,)`` and >= 1.
        """
        if seconds < 0:
            raise SnapshotError(f"accrual over {seconds} s; expected >= 0")
        x_s = self.supply_rate * seconds / SECONDS_PER_YEAR
        x_b = self.borrow_rate * seconds / SECONDS_PER_YEAR
        supply = 1.0 + x_s
        n = seconds
        per_s = self.borrow_rate / SECONDS_PER_YEAR
        debt = 1.0 + x_b + per_s**2 * n * (n - 1) / 2.0 + per_s**3 * n * (n - 1) * (n - 2) / 6.0
        return np.asarray(supply, dtype=np.float64), np.asarray(debt, dtype=np.float64)

    @property
    def n_assets(self) -> int:
        return int(self.collateral.shape[1])

    def effective_collateral(self) -> FloatArray:
        """Collateral that counts towards the health factor, token units.

        A supply counts only when the account enabled it and the *reserve's* LT is non-zero
        (Aave V3 ``GenericLogic.calculateUserAccountData`` tests the reserve's LT before it
        looks at e-mode, in v3.0 as in v3.7), and then at its class's LT.
        """
        counts = self.collateral_enabled & (self.liquidation_threshold > 0.0)[None, :]
        return np.where(counts, self.collateral, 0.0)

    def _values_usd(self, price_usd: FloatArray | None) -> tuple[FloatArray, FloatArray]:
        """Per-position collateral (that counts) and debt values, USD, rounded to whole base
        units as the Pool rounds them when ``base_unit`` is set."""
        prices = self.account_prices(price_usd)
        coll = self.effective_collateral() * prices
        debt = self.debt * prices
        if self.base_unit > 0:
            unit = self.base_unit
            coll = np.floor(coll * unit * (1.0 + _INT_SLACK)) / unit
            if self.debt_value_rounding == "ceil":
                debt = np.ceil(debt * unit * (1.0 - _INT_SLACK)) / unit
            else:
                debt = np.floor(debt * unit * (1.0 + _INT_SLACK)) / unit
        return np.asarray(coll, dtype=np.float64), np.asarray(debt, dtype=np.float64)

    def health_factor(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Health factor per account, shape ``(n_accounts,)``; ``inf`` where there is no debt.

        HF = sum(collateral value x LT) / debt value, with each account's e-mode LTs and
        prices, at ``price_usd`` (the snapshot's oracle prices when omitted), rounded the
        way the snapshot's Pool rounds it (``hf_rounding``, and each value to whole base
        units when ``base_unit`` is set):

        - ``"weighted-sum"``: sum(value x LT) / debt (the wad division's rounding is below
          1e-18 and ignored);
        - ``"average-lt-bps"``: the average LT floor(sum(value x LT_bps) / collateral) in
          whole basis points, ``percentMul`` of the collateral by it (half up, in base units
          when ``base_unit`` is set), divided by debt.
        """
        coll, debt = self._values_usd(price_usd)
        lt = self.account_lt()
        debt_usd = debt.sum(axis=1)
        if self.hf_rounding == "average-lt-bps":
            lt_bps = np.round(lt * 1e4)
            coll_usd = coll.sum(axis=1)
            weighted_bps = np.einsum("ij,ij->i", coll, lt_bps)
            with np.errstate(divide="ignore", invalid="ignore"):
                avg_bps = np.where(
                    coll_usd > 0.0, np.floor(weighted_bps / coll_usd * (1.0 + _BPS_SLACK)), 0.0
                )
            if self.base_unit > 0:
                unit = self.base_unit
                weighted = np.floor(coll_usd * unit * avg_bps / 1e4 + 0.5) / unit
            else:
                weighted = coll_usd * avg_bps / 1e4
        else:
            weighted = np.einsum("ij,ij->i", coll, lt)
        with np.errstate(divide="ignore", invalid="ignore"):
            hf = np.where(debt_usd > 0.0, weighted / debt_usd, np.inf)
        return np.asarray(hf, dtype=np.float64)

    def collateral_usd(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Value of collateral that counts, USD, shape ``(n_accounts,)`` (the Pool's
        ``totalCollateralBase`` / ``base_unit`` when ``base_unit`` is set)."""
        return np.asarray(self._values_usd(price_usd)[0].sum(axis=1), dtype=np.float64)

    def debt_usd(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Value of debt, USD, shape ``(n_accounts,)`` (``totalDebtBase`` / ``base_unit``
        when ``base_unit`` is set)."""
        return np.asarray(self._values_usd(price_usd)[1].sum(axis=1), dtype=np.float64)

    def symbol_index(self) -> dict[str, int]:
        """Map of symbol to column index."""
        return {s: i for i, s in enumerate(self.symbols)}


def constant_product_venues(
    reserve_asset: FloatArray, reserve_quote: FloatArray, fee: FloatArray
) -> Venues:
    """Constant-product venues of depth ``sqrt(reserve_asset * reserve_quote)`` (0 where a
    reserve is missing), ``(n_assets,)`` inputs."""
    x = np.asarray(reserve_asset, dtype=np.float64)
    y = np.asarray(reserve_quote, dtype=np.float64)
    depth = np.where((x > 0) & (y > 0), np.sqrt(np.maximum(x * y, 0.0)), 0.0)
    return Venues.from_rows(np.zeros(len(x), dtype=np.int64), depth, fee, {})


def empty_venues() -> pd.DataFrame:
    """A ``venues.parquet`` frame with no rows (every venue a constant-product pool)."""
    dtypes = {"str": object, "int": np.int64, "float": np.float64}
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtypes[kind]) for name, (kind, _) in VENUE_COLUMNS.items()}
    )


def _venue_rows(reserves: pd.DataFrame, venues: pd.DataFrame) -> dict[int, tuple[Any, Any]]:
    """Validated ``(xs, ys)`` rows (``simulator.venues`` layout) per reserve index."""
    kinds = reserves["venue_kind"]
    bad = ~kinds.isin(KIND_NAMES)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise _fail(
            RESERVES_FILE,
            f"venue_kind of {reserves['symbol'][row]} is {kinds[row]!r}; expected one of "
            f"{list(KIND_NAMES)}",
        )
    index = {a: i for i, a in enumerate(reserves["asset"])}
    unknown = ~venues["asset"].isin(index)
    if unknown.any():
        raise _fail(VENUES_FILE, f"asset {venues['asset'][unknown].iloc[0]} is not a reserve")
    rows: dict[int, tuple[Any, Any]] = {}
    groups = dict(tuple(venues.groupby("asset", sort=False)))
    for j, (asset, kind) in enumerate(zip(reserves["asset"], kinds, strict=True)):
        points = groups.get(asset)
        where = f"{VENUES_FILE}: {reserves['symbol'][j]} ({asset}, {kind})"
        if kind == KIND_NAMES[KIND_CONSTANT_PRODUCT]:
            if points is not None:
                raise _fail(VENUES_FILE, f"{asset} has points but venue_kind constant-product")
            continue
        if points is None:
            raise SnapshotError(f"{where}: no points")
        points = points.sort_values("point")
        if list(points["point"]) != list(range(len(points))):
            raise SnapshotError(f"{where}: points must be numbered 0, 1, ... without gaps")
        x = points["x"].to_numpy(dtype=np.float64)
        y = points["y"].to_numpy(dtype=np.float64)
        try:
            if kind == KIND_NAMES[KIND_V3]:
                rows[j] = v3_rows(x, y, where)
            else:
                rows[j] = curve_rows(
                    [[float(a), float(b)] for a, b in zip(x, y, strict=True)], where
                )
        except VenueError as exc:
            raise SnapshotError(str(exc)) from None
    return rows


def _fail(file: str, message: str) -> SnapshotError:
    return SnapshotError(f"{file}: {message}")


def _check_columns(frame: pd.DataFrame, schema: Mapping[str, tuple[str, str]], file: str) -> None:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise _fail(file, f"missing column(s) {missing}; expected columns {list(schema)}")
    for name, (kind, meaning) in schema.items():
        col = frame[name]
        ok = {
            "str": pd.api.types.is_string_dtype(col) or pd.api.types.is_object_dtype(col),
            "int": pd.api.types.is_integer_dtype(col),
            "float": pd.api.types.is_float_dtype(col) or pd.api.types.is_integer_dtype(col),
            "bool": pd.api.types.is_bool_dtype(col),
        }[kind]
        if not ok:
            raise _fail(file, f"column {name!r} has dtype {col.dtype}; expected {kind} ({meaning})")
        if kind == "str" and not all(isinstance(v, str) for v in col):
            raise _fail(file, f"column {name!r} holds non-string values; expected {meaning}")
        if kind == "float":
            values = col.to_numpy(dtype=np.float64)
            bad = ~np.isfinite(values)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise _fail(file, f"column {name!r} is not finite at row {row}; expected {meaning}")


def _check_range(
    frame: pd.DataFrame, column: str, low: float, high: float, file: str, key: str
) -> None:
    values = frame[column].to_numpy(dtype=np.float64)
    bad = (values < low) | (values > high)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise _fail(
            file,
            f"column {column!r} = {float(values[row])!r} for {frame[key].iloc[row]} is outside "
            f"[{low}, {high}]",
        )


def _hf_rounding(meta: Mapping[str, Any]) -> str:
    value = str(meta.get("hf_rounding", "weighted-sum"))
    return _HF_ROUNDING_ALIASES.get(value, value)


def _debt_value_rounding(meta: Mapping[str, Any]) -> str:
    """``meta["debt_value_rounding"]``; absent, the rounding of the release an older pull
    named in ``hf_rounding`` (v3.7 rounds debt values up), else down."""
    default = "ceil" if meta.get("hf_rounding") == "v3.7" else "floor"
    return str(meta.get("debt_value_rounding", default))


def _check_emode(frame: pd.DataFrame, reserves: pd.DataFrame) -> pd.DataFrame:
    _check_columns(frame, EMODE_COLUMNS, EMODE_FILE)
    frame = _normalise(frame, EMODE_COLUMNS)
    _check_range(frame, "category", 1, 255, EMODE_FILE, "label")
    for col in ("ltv", "liquidation_threshold", "liquidation_bonus"):
        _check_range(frame, col, 0.0, 1.0, EMODE_FILE, "asset")
    prices = frame["price_usd"].to_numpy()
    if (prices <= 0).any():
        row = int(np.flatnonzero(prices <= 0)[0])
        raise _fail(
            EMODE_FILE, f"price_usd of {frame['asset'][row]} is {prices[row]!r}; expected > 0"
        )
    unknown = ~frame["asset"].isin(reserves["asset"])
    if unknown.any():
        row = int(np.flatnonzero(unknown.to_numpy())[0])
        raise _fail(
            EMODE_FILE,
            f"asset {frame['asset'][row]} of category {frame['category'][row]} is not in "
            f"{RESERVES_FILE}",
        )
    dup = frame.duplicated(["category", "asset"])
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise _fail(
            EMODE_FILE,
            f"(category {frame['category'][row]}, asset {frame['asset'][row]}) appears twice",
        )
    return frame.sort_values(["category", "asset"], kind="stable").reset_index(drop=True)


def _check_accounts(
    frame: pd.DataFrame, positions: pd.DataFrame, emode: pd.DataFrame
) -> pd.DataFrame:
    _check_columns(frame, ACCOUNT_COLUMNS, ACCOUNTS_FILE)
    frame = _normalise(frame, ACCOUNT_COLUMNS)
    _check_range(frame, "emode_category", 0, 255, ACCOUNTS_FILE, "account")
    dup = frame["account"].duplicated()
    if dup.any():
        raise _fail(ACCOUNTS_FILE, f"account {frame['account'][dup].iloc[0]} appears twice")
    held = pd.Index(positions["account"].unique())
    stray = ~frame["account"].isin(held)
    if stray.any():
        raise _fail(
            ACCOUNTS_FILE,
            f"account {frame['account'][stray].iloc[0]} has no row in {POSITIONS_FILE}",
        )
    known = set(emode["category"].tolist())
    missing = frame[(frame["emode_category"] != 0) & ~frame["emode_category"].isin(known)]
    if not missing.empty:
        raise _fail(
            ACCOUNTS_FILE,
            f"account {missing['account'].iloc[0]} is in e-mode category "
            f"{int(missing['emode_category'].iloc[0])}, which {EMODE_FILE} does not describe",
        )
    category = frame.set_index("account")["emode_category"]
    out = pd.DataFrame({"account": held.sort_values().astype(object)})
    out["emode_category"] = out["account"].map(category).fillna(0).to_numpy(dtype=np.int64)
    return out


def check_save_target(path: str | Path) -> Path:
    """``path`` if a snapshot may be saved there, else ``SnapshotError`` saying why not.

    Saving replaces the directory whole (atomically), so the target must be absent, an empty
    directory, or a snapshot directory (only ``SNAPSHOT_FILES`` in it); never a file, a
    directory holding anything else, or the current directory or one of its parents.
    """
    problem = replaceable_directory_problem(path, SNAPSHOT_FILES, "snapshot")
    if problem is not None:
        raise SnapshotError(problem)
    return Path(path)


def _normalise(frame: pd.DataFrame, schema: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    out = frame[list(schema)].copy()
    for name, (kind, _) in schema.items():
        if kind == "float":
            out[name] = out[name].astype(np.float64)
        elif kind == "int":
            out[name] = out[name].astype(np.int64)
        elif kind == "bool":
            out[name] = out[name].astype(bool)
        else:
            out[name] = out[name].astype(object)
    return out.reset_index(drop=True)


def _reserve_schema() -> dict[str, tuple[str, str]]:
    return {**RESERVE_COLUMNS, **{k: (v[0], v[1]) for k, v in RESERVE_OPTIONAL.items()}}


def _normalise_reserves(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for name, (_, _, default) in RESERVE_OPTIONAL.items():
        if name not in frame.columns:
            frame[name] = default
    return _normalise(frame, _reserve_schema())


def empty_accounts() -> pd.DataFrame:
    """An ``accounts.parquet`` frame with no rows (every account in category 0)."""
    return pd.DataFrame(
        {"account": pd.Series([], dtype=object), "emode_category": pd.Series([], dtype=np.int64)}
    )


def empty_emode() -> pd.DataFrame:
    """An ``emode.parquet`` frame with no rows (a market without e-mode categories)."""
    dtypes = {"str": object, "int": np.int64, "float": np.float64, "bool": bool}
    return pd.DataFrame(
        {name: pd.Series([], dtype=dtypes[kind]) for name, (kind, _) in EMODE_COLUMNS.items()}
    )


def _normalise_positions(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(POSITION_COLUMNS)].copy()
    out["account"] = out["account"].astype(object)
    out["asset"] = out["asset"].astype(object)
    out["collateral"] = out["collateral"].astype(np.float64)
    out["debt"] = out["debt"].astype(np.float64)
    out["collateral_enabled"] = out["collateral_enabled"].astype(bool)
    return out.sort_values(["account", "asset"], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class MarketSnapshot:
    """A validated market snapshot: metadata, one row per reserve, one per position.

    Build one with ``MarketSnapshot.from_frames`` (validates) or ``MarketSnapshot.load``.
    """

    meta: dict[str, Any]
    reserves: pd.DataFrame
    positions: pd.DataFrame
    accounts: pd.DataFrame = field(default_factory=empty_accounts)
    emode: pd.DataFrame = field(default_factory=empty_emode)
    venues: pd.DataFrame = field(default_factory=empty_venues)
    _book: list[Book] = field(default_factory=list, repr=False, compare=False)
    #: The dense positions ``book()`` derived, with the frames they came from. A copy made by
    #: ``dataclasses.replace`` with other reserves or e-mode tables shares this list, so a
    #: sweep point does not redo them; they are reused only for the very same frames.
    _dense: list[tuple[Any, ...]] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_frames(
        cls,
        meta: Mapping[str, Any],
        reserves: pd.DataFrame,
        positions: pd.DataFrame,
        accounts: pd.DataFrame | None = None,
        emode: pd.DataFrame | None = None,
        venues: pd.DataFrame | None = None,
    ) -> MarketSnapshot:
        """Validate and normalise the parts of a snapshot.

        ``accounts`` may list only the accounts in an e-mode category (the others are in
        category 0); the saved file holds every account of ``positions``. ``None`` for
        ``accounts`` / ``emode``: no e-mode; ``None`` for ``venues``: no points (every
        ``venue_kind`` must then be constant-product).
        """
        meta = dict(meta)
        missing = [k for k in META_REQUIRED if k not in meta]
        if missing:
            raise _fail(META_FILE, f"missing key(s) {missing}; required keys {list(META_REQUIRED)}")
        for key in ("chain_id", "block_number", "timestamp"):
            if not isinstance(meta[key], int) or isinstance(meta[key], bool) or meta[key] < 0:
                raise _fail(META_FILE, f"{key!r} = {meta[key]!r}; expected a non-negative integer")
        if not isinstance(meta["addresses"], dict):
            raise _fail(META_FILE, "'addresses' must be an object mapping role to address")

        _check_columns(reserves, RESERVE_COLUMNS, RESERVES_FILE)
        reserves = _normalise_reserves(reserves)
        _check_columns(reserves, _reserve_schema(), RESERVES_FILE)
        if reserves.empty:
            raise _fail(RESERVES_FILE, "no reserves; a market has at least one")
        dup = reserves["asset"].duplicated()
        if dup.any():
            raise _fail(RESERVES_FILE, f"asset {reserves['asset'][dup].iloc[0]} appears twice")
        _check_range(reserves, "decimals", 0, 77, RESERVES_FILE, "symbol")
        for col in ("ltv", "liquidation_threshold", "protocol_fee", "dex_fee"):
            _check_range(reserves, col, 0.0, 1.0, RESERVES_FILE, "symbol")
        _check_range(reserves, "liquidation_bonus", 0.0, 1.0, RESERVES_FILE, "symbol")
        for col in ("dex_reserve_asset", "dex_reserve_quote"):
            _check_range(reserves, col, 0.0, math.inf, RESERVES_FILE, "symbol")
        prices = reserves["price_usd"].to_numpy()
        if (prices <= 0).any():
            row = int(np.flatnonzero(prices <= 0)[0])
            raise _fail(
                RESERVES_FILE,
                f"price_usd of {reserves['symbol'][row]} is {float(prices[row])!r}; expected > 0",
            )

        _check_columns(positions, POSITION_COLUMNS, POSITIONS_FILE)
        positions = _normalise_positions(positions)
        for col in ("collateral", "debt"):
            _check_range(positions, col, 0.0, math.inf, POSITIONS_FILE, "account")
        unknown = ~positions["asset"].isin(reserves["asset"])
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise _fail(
                POSITIONS_FILE,
                f"asset {positions['asset'][row]} of account {positions['account'][row]} "
                f"is not in {RESERVES_FILE}",
            )
        dup = positions.duplicated(["account", "asset"])
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise _fail(
                POSITIONS_FILE,
                f"(account {positions['account'][row]}, asset {positions['asset'][row]}) "
                "appears twice; expected one row per pair",
            )
        family = meta.setdefault("emode_family", "none")
        if family not in EMODE_FAMILIES:
            raise _fail(META_FILE, f"'emode_family' = {family!r}; expected one of {EMODE_FAMILIES}")
        rounding = meta.setdefault("hf_rounding", "weighted-sum")
        if _HF_ROUNDING_ALIASES.get(rounding, rounding) not in HF_ROUNDINGS:
            raise _fail(META_FILE, f"'hf_rounding' = {rounding!r}; expected one of {HF_ROUNDINGS}")
        debt_rounding = meta.get("debt_value_rounding", "floor")
        if debt_rounding not in DEBT_VALUE_ROUNDINGS:
            raise _fail(
                META_FILE,
                f"'debt_value_rounding' = {debt_rounding!r}; expected one of "
                f"{DEBT_VALUE_ROUNDINGS}",
            )
        unit = meta.get("base_currency_unit", 0)
        if not isinstance(unit, int | float) or isinstance(unit, bool) or not unit >= 0:
            raise _fail(META_FILE, f"'base_currency_unit' = {unit!r}; expected a number >= 0")
        emode = _check_emode(empty_emode() if emode is None else emode, reserves)
        accounts = _check_accounts(
            empty_accounts() if accounts is None else accounts, positions, emode
        )
        if venues is None:
            venues = empty_venues()
        _check_columns(venues, VENUE_COLUMNS, VENUES_FILE)
        venues = _normalise(venues, VENUE_COLUMNS)
        _venue_rows(reserves, venues)
        return cls(
            meta=meta,
            reserves=reserves,
            positions=positions,
            accounts=accounts,
            emode=emode,
            venues=venues,
        )

    @classmethod
    def load(cls, path: str | Path) -> MarketSnapshot:
        """Load and validate a snapshot directory."""
        root = Path(path)
        if not root.is_dir():
            raise SnapshotError(
                f"{root}: no such snapshot directory (make one with shortfall pull)"
            )
        for name in SNAPSHOT_REQUIRED:
            if not (root / name).is_file():
                raise SnapshotError(f"{root / name}: missing; the snapshot is incomplete")
        try:
            meta = json.loads((root / META_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{root / META_FILE}: not valid JSON ({exc})") from None
        try:
            reserves = pd.read_parquet(root / RESERVES_FILE, engine="pyarrow")
            positions = pd.read_parquet(root / POSITIONS_FILE, engine="pyarrow")
            accounts = (
                pd.read_parquet(root / ACCOUNTS_FILE, engine="pyarrow")
                if (root / ACCOUNTS_FILE).is_file()
                else None
            )
            emode = (
                pd.read_parquet(root / EMODE_FILE, engine="pyarrow")
                if (root / EMODE_FILE).is_file()
                else None
            )
            venues = (
                pd.read_parquet(root / VENUES_FILE, engine="pyarrow")
                if (root / VENUES_FILE).is_file()
                else None
            )
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise SnapshotError(f"{root}: unreadable Parquet file ({exc})") from None
        try:
            return cls.from_frames(meta, reserves, positions, accounts, emode, venues)
        except SnapshotError as exc:
            raise SnapshotError(f"{root}/{exc}") from None

    def save(self, path: str | Path) -> Path:
        """Write the snapshot directory atomically; returns its path.

        An existing snapshot at ``path`` is replaced; anything else there is refused
        (``check_save_target``), never deleted.
        """
        check_save_target(path)
        with atomic_directory(path) as tmp:
            write_parquet(self.reserves, tmp / RESERVES_FILE)
            write_parquet(self.positions, tmp / POSITIONS_FILE)
            write_parquet(self.accounts, tmp / ACCOUNTS_FILE)
            write_parquet(self.emode, tmp / EMODE_FILE)
            write_parquet(self.venues, tmp / VENUES_FILE)
            meta = dict(self.meta)
            meta.setdefault("software_version", __version__)
            atomic_write_json(tmp / META_FILE, meta)
        return Path(path)

    @property
    def n_accounts(self) -> int:
        return int(self.positions["account"].nunique())

    def book(self) -> Book:
        """Dense accounts x assets arrays (computed once, then cached)."""
        if self._book:
            return self._book[0]
        r = self.reserves
        asset_index = {a: i for i, a in enumerate(r["asset"])}
        accounts, collateral, debt, enabled, account_category = self._dense_positions()

        def f(column: str) -> FloatArray:
            return np.asarray(r[column].to_numpy(dtype=np.float64))

        categories = np.unique(account_category[account_category > 0])
        class_category = np.concatenate([[0], categories]).astype(np.int64)
        account_class = np.searchsorted(class_category, account_category).astype(np.int64)
        n_cls = len(class_category)
        tables = {
            "ltv": np.repeat(f("ltv")[None, :], n_cls, axis=0),
            "liquidation_threshold": np.repeat(f("liquidation_threshold")[None, :], n_cls, 0),
            "liquidation_bonus": np.repeat(f("liquidation_bonus")[None, :], n_cls, axis=0),
            "price_usd": np.repeat(f("price_usd")[None, :], n_cls, axis=0),
        }
        rows = self.emode[self.emode["category"].isin(categories)]
        for row in rows.itertuples(index=False):
            k = int(np.searchsorted(class_category, row.category))
            j = asset_index[row.asset]
            tables["price_usd"][k, j] = row.price_usd
            if row.is_collateral:
                tables["ltv"][k, j] = 0.0 if row.ltv_zero else row.ltv
                tables["liquidation_threshold"][k, j] = row.liquidation_threshold
                tables["liquidation_bonus"][k, j] = row.liquidation_bonus

        book = Book(
            accounts=accounts,
            assets=tuple(r["asset"]),
            symbols=tuple(r["symbol"]),
            collateral=collateral,
            debt=debt,
            collateral_enabled=enabled,
            price_usd=f("price_usd"),
            ltv=f("ltv"),
            liquidation_threshold=f("liquidation_threshold"),
            liquidation_bonus=f("liquidation_bonus"),
            protocol_fee=f("protocol_fee"),
            decimals=r["decimals"].to_numpy(dtype=np.int64),
            dex_reserve_asset=f("dex_reserve_asset"),
            dex_reserve_quote=f("dex_reserve_quote"),
            dex_fee=f("dex_fee"),
            account_class=account_class,
            class_category=class_category,
            class_ltv=tables["ltv"],
            class_lt=tables["liquidation_threshold"],
            class_bonus=tables["liquidation_bonus"],
            class_price_usd=tables["price_usd"],
            supply_rate=f("liquidity_rate"),
            borrow_rate=f("variable_borrow_rate"),
            hf_rounding=_hf_rounding(self.meta),
            base_unit=float(self.meta.get("base_currency_unit", 0)),
            debt_value_rounding=_debt_value_rounding(self.meta),
            venues=self.venue_set(),
            comet=(
                CometTerms.from_meta(self.meta["comet"], tuple(r["asset"]), f("liquidation_factor"))
                if self.meta.get("protocol") == "compound-v3"
                else None
            ),
        )
        self._book.append(book)
        return book

    def _dense_positions(self) -> tuple[Any, FloatArray, FloatArray, BoolArray, IntArray]:
        """``(accounts, collateral, debt, enabled, e-mode category)`` of ``book()``, dense
        accounts x reserves (cached for these very frames; the arrays are not written to)."""
        key = (self.positions, self.accounts, tuple(self.reserves["asset"]))
        for entry in self._dense:
            if entry[0] is key[0] and entry[1] is key[1] and entry[2] == key[2]:
                return entry[3]  # type: ignore[no-any-return]
        asset_index = {a: i for i, a in enumerate(key[2])}
        accounts, acc_idx = np.unique(
            self.positions["account"].to_numpy(dtype=str), return_inverse=True
        )
        col_idx = self.positions["asset"].map(asset_index).to_numpy(dtype=np.int64)
        shape = (len(accounts), len(asset_index))
        collateral = np.zeros(shape)
        debt = np.zeros(shape)
        enabled = np.zeros(shape, dtype=bool)
        collateral[acc_idx, col_idx] = self.positions["collateral"].to_numpy()
        debt[acc_idx, col_idx] = self.positions["debt"].to_numpy()
        enabled[acc_idx, col_idx] = self.positions["collateral_enabled"].to_numpy()
        category_of = self.accounts.set_index("account")["emode_category"]
        account_category = pd.Series(accounts).map(category_of).fillna(0).to_numpy(np.int64)
        for a in (collateral, debt, enabled, account_category):
            a.setflags(write=False)
        dense = (accounts, collateral, debt, enabled, account_category)
        self._dense.clear()
        self._dense.append((*key, dense))
        return dense

    def venue_set(self) -> Venues:
        """Every asset's venue (``simulator.venues`` arrays, unscaled, reserves order)."""
        r = self.reserves
        kinds = [KIND_NAMES.index(k) for k in r["venue_kind"]]
        base = constant_product_venues(
            r["dex_reserve_asset"].to_numpy(np.float64),
            r["dex_reserve_quote"].to_numpy(np.float64),
            r["dex_fee"].to_numpy(np.float64),
        )
        depth = np.where(np.asarray(kinds) == KIND_CONSTANT_PRODUCT, base.depth, 0.0)
        return Venues.from_rows(kinds, depth, base.fee, _venue_rows(r, self.venues))

    def venue_summary(self) -> list[dict[str, Any]]:
        """Each asset's venue kind and depth at the report's impacts, for reports.

        Returns:
            One dict per reserve with a venue (constant-product pools of depth 0 left out):
            ``symbol``, ``kind`` (``KIND_NAMES``), ``fee`` and ``depth_usd``, a dict
            ``{"0.02": usd, ...}`` for ``simulator.venues.REPORT_IMPACTS`` at the snapshot's
            price, unscaled (``depth_at``: constant product and V3 move the spot price, a
            depth curve's average price; ``None`` where the known liquidity ends first).
        """
        venues = self.venue_set()
        prices = self.reserves["price_usd"].to_numpy(np.float64)
        out = []
        for j, symbol in enumerate(self.reserves["symbol"]):
            kind = int(venues.kind[j])
            if kind == KIND_CONSTANT_PRODUCT and venues.depth[j] <= 0:
                continue
            depths = {}
            for impact in REPORT_IMPACTS:
                d = venues.depth_at(j, float(prices[j]), impact)
                depths[f"{impact:g}"] = d if math.isfinite(d) else None
            out.append(
                {
                    "symbol": str(symbol),
                    "kind": KIND_NAMES[kind],
                    "fee": float(venues.fee[j]),
                    "depth_usd": depths,
                }
            )
        return out

    def emode_summary(self) -> list[dict[str, Any]]:
        """Accounts and debt per e-mode category (category 0 = none), for reports.

        Returns:
            One dict per category held by some account, ascending: ``category``, ``label``,
            ``accounts`` (with debt), ``debt_usd`` (at the snapshot's prices, each account's
            own) and ``debt_share`` (of the book's total debt).
        """
        book = self.book()
        debt = book.debt_usd()
        total = float(debt.sum())
        labels = dict(zip(self.emode["category"], self.emode["label"], strict=True))
        out = []
        for k, category in enumerate(book.class_category):
            members = book.account_class == k
            owed = float(debt[members].sum())
            out.append(
                {
                    "category": int(category),
                    "label": "none" if category == 0 else str(labels.get(category, "")),
                    "accounts": int((members & (debt > 0)).sum()),
                    "debt_usd": owed,
                    "debt_share": owed / total if total > 0 else 0.0,
                }
            )
        return out

    @classmethod
    def from_book(cls, meta: Mapping[str, Any], book: Book) -> MarketSnapshot:
        """Build a snapshot from dense arrays (synthetic books in tests and benchmarks)."""
        n_ast = book.n_assets
        reserves = pd.DataFrame(
            {
                "asset": list(book.assets),
                "symbol": list(book.symbols),
                "decimals": book.decimals,
                "price_usd": book.price_usd,
                "ltv": book.ltv,
                "liquidation_threshold": book.liquidation_threshold,
                "liquidation_bonus": book.liquidation_bonus,
                "protocol_fee": book.protocol_fee,
                "usage_as_collateral_enabled": book.liquidation_threshold > 0,
                "borrowing_enabled": np.ones(n_ast, dtype=bool),
                "dex_pair": [""] * n_ast,
                "dex_quote_asset": [""] * n_ast,
                "dex_reserve_asset": book.dex_reserve_asset,
                "dex_reserve_quote": book.dex_reserve_quote,
                "dex_fee": book.dex_fee,
                "liquidity_rate": book.supply_rate,
                "variable_borrow_rate": book.borrow_rate,
                "venue_kind": [KIND_NAMES[k] for k in _book_venues(book).kind],
            }
        )
        rows, cols = np.nonzero((book.collateral > 0) | (book.debt > 0))
        positions = pd.DataFrame(
            {
                "account": book.accounts[rows].astype(object),
                "asset": np.asarray(book.assets, dtype=object)[cols],
                "collateral": book.collateral[rows, cols],
                "debt": book.debt[rows, cols],
                "collateral_enabled": book.collateral_enabled[rows, cols],
            }
        )
        # e-mode classes as liquid categories naming every asset (an asset outside the
        # category carries the reserve's own parameters, which is the same thing)
        emode = pd.DataFrame(
            [
                {
                    "category": int(book.class_category[k]),
                    "label": f"category {int(book.class_category[k])}",
                    "asset": asset,
                    "ltv": float(book.class_ltv[k, j]),
                    "liquidation_threshold": float(book.class_lt[k, j]),
                    "liquidation_bonus": float(book.class_bonus[k, j]),
                    "is_collateral": True,
                    "is_borrowable": True,
                    "ltv_zero": False,
                    "price_source": "",
                    "price_usd": float(book.class_price_usd[k, j]),
                }
                for k in range(1, book.n_classes)
                for j, asset in enumerate(book.assets)
            ],
            columns=list(EMODE_COLUMNS),
        )
        accounts = pd.DataFrame(
            {
                "account": book.accounts.astype(object),
                "emode_category": book.class_category[book.account_class],
            }
        )
        held = (book.collateral > 0).any(axis=1) | (book.debt > 0).any(axis=1)
        meta = dict(meta)
        if book.comet is not None:
            # a Comet market: its terms in meta.json, the per-reserve ones as columns
            terms = book.comet
            reserves["liquidation_factor"] = terms.liquidation_factor
            reserves["is_base_asset"] = np.arange(n_ast) == terms.base
            reserves["usage_as_collateral_enabled"] = np.arange(n_ast) != terms.base
            reserves["borrowing_enabled"] = np.arange(n_ast) == terms.base
            meta["protocol"] = "compound-v3"
            meta["comet"] = {
                "base_asset": book.assets[terms.base],
                "base_symbol": book.symbols[terms.base],
                "store_front_price_factor": terms.store_front_price_factor,
                "target_reserves": terms.target_reserves,
                "reserves": terms.reserves,
                "collateral_reserves": {
                    a: float(x)
                    for a, x in zip(book.assets, terms.collateral_reserves, strict=True)
                    if x > 0.0
                },
            }
        meta.setdefault("emode_family", "liquid" if book.n_classes > 1 else "none")
        meta.setdefault("hf_rounding", book.hf_rounding)
        if book.base_unit > 0:
            meta.setdefault("base_currency_unit", book.base_unit)
            meta.setdefault("debt_value_rounding", book.debt_value_rounding)
        return cls.from_frames(
            meta,
            reserves,
            positions,
            accounts[held],
            emode if book.n_classes > 1 else None,
            _venues_frame(book),
        )


def _book_venues(book: Book) -> Venues:
    assert book.venues is not None  # filled in by Book.__post_init__
    return book.venues


def _venues_frame(book: Book) -> pd.DataFrame:
    """``venues.parquet`` rows for a book's V3 and depth-curve venues."""
    v = _book_venues(book)
    rows: list[dict[str, Any]] = []
    for j, kind in enumerate(v.kind):
        n = int(v.count[j])
        xs, ys = v.xs[j, :n], v.ys[j, :n]
        if kind == KIND_V3:
            points = list(zip(xs, ys, strict=True))
        elif kind == KIND_CURVE:  # back to (size, average impact), without the origin
            points = [
                (float(s), 1.0 - float(r) / float(s)) for s, r in zip(xs[1:], ys[1:], strict=True)
            ]
        else:
            continue
        rows += [
            {"asset": book.assets[j], "point": k, "x": float(a), "y": float(b)}
            for k, (a, b) in enumerate(points)
        ]
    return pd.DataFrame(rows, columns=list(VENUE_COLUMNS)) if rows else empty_venues()
