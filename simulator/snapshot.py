"""A lending market's state at one block: the contract between ``pull`` and ``simulate``.

A snapshot is a directory holding ``meta.json``, ``reserves.parquet`` and
``positions.parquet`` (formats in the README). ``MarketSnapshot`` loads, validates and saves
it atomically, and ``MarketSnapshot.book()`` exposes the dense accounts x assets arrays the
cascade engine works on.

Units: balances are token units (float64, already divided by ``10**decimals``), prices are
USD per token, and risk parameters are fractions (LT 0.825, bonus 0.05 for a 5% premium,
protocol fee 0.10 of the premium).
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

__all__ = [
    "META_REQUIRED",
    "POSITION_COLUMNS",
    "RESERVE_COLUMNS",
    "SNAPSHOT_FILES",
    "Book",
    "MarketSnapshot",
    "check_save_target",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

META_FILE = "meta.json"
RESERVES_FILE = "reserves.parquet"
POSITIONS_FILE = "positions.parquet"
#: The files of a snapshot directory, and the only ones it holds.
SNAPSHOT_FILES: tuple[str, ...] = (META_FILE, RESERVES_FILE, POSITIONS_FILE)

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
    "dex_reserve_quote": ("float", "pool reserve of the quote token, token units (0 if none)"),
    "dex_fee": ("float", "pool swap fee, fraction (0.003)"),
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
        dex_reserve_quote: DEX pool reserve of the quote stablecoin, USD, ``(n_assets,)``.
        dex_fee: DEX swap fee, fraction, ``(n_assets,)``.
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

    @property
    def n_accounts(self) -> int:
        return int(self.collateral.shape[0])

    @property
    def n_assets(self) -> int:
        return int(self.collateral.shape[1])

    def effective_collateral(self) -> FloatArray:
        """Collateral that counts towards the health factor, token units.

        A supply counts only when the account enabled it and the reserve's LT is non-zero
        (Aave V3 ``GenericLogic.calculateUserAccountData``).
        """
        counts = self.collateral_enabled & (self.liquidation_threshold > 0.0)[None, :]
        return np.where(counts, self.collateral, 0.0)

    def health_factor(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Health factor per account, shape ``(n_accounts,)``; ``inf`` where there is no debt.

        HF = sum(collateral value x LT) / debt value, at ``price_usd`` (the snapshot's
        oracle prices when omitted).
        """
        prices = self.price_usd if price_usd is None else np.asarray(price_usd, dtype=np.float64)
        weighted = self.effective_collateral() @ (prices * self.liquidation_threshold)
        debt_usd = self.debt @ prices
        with np.errstate(divide="ignore", invalid="ignore"):
            hf = np.where(debt_usd > 0.0, weighted / debt_usd, np.inf)
        return np.asarray(hf, dtype=np.float64)

    def collateral_usd(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Value of collateral that counts, USD, shape ``(n_accounts,)``."""
        prices = self.price_usd if price_usd is None else price_usd
        return np.asarray(self.effective_collateral() @ prices, dtype=np.float64)

    def debt_usd(self, price_usd: FloatArray | None = None) -> FloatArray:
        """Value of debt, USD, shape ``(n_accounts,)``."""
        prices = self.price_usd if price_usd is None else price_usd
        return np.asarray(self.debt @ prices, dtype=np.float64)

    def symbol_index(self) -> dict[str, int]:
        """Map of symbol to column index."""
        return {s: i for i, s in enumerate(self.symbols)}


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


def _normalise_reserves(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[list(RESERVE_COLUMNS)].copy()
    for name, (kind, _) in RESERVE_COLUMNS.items():
        if kind == "float":
            out[name] = out[name].astype(np.float64)
        elif kind == "int":
            out[name] = out[name].astype(np.int64)
        elif kind == "bool":
            out[name] = out[name].astype(bool)
        else:
            out[name] = out[name].astype(object)
    return out.reset_index(drop=True)


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
    _book: list[Book] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def from_frames(
        cls, meta: Mapping[str, Any], reserves: pd.DataFrame, positions: pd.DataFrame
    ) -> MarketSnapshot:
        """Validate and normalise the three parts of a snapshot."""
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
        return cls(meta=meta, reserves=reserves, positions=positions)

    @classmethod
    def load(cls, path: str | Path) -> MarketSnapshot:
        """Load and validate a snapshot directory."""
        root = Path(path)
        if not root.is_dir():
            raise SnapshotError(
                f"{root}: no such snapshot directory (make one with shortfall pull)"
            )
        for name in (META_FILE, RESERVES_FILE, POSITIONS_FILE):
            if not (root / name).is_file():
                raise SnapshotError(f"{root / name}: missing; the snapshot is incomplete")
        try:
            meta = json.loads((root / META_FILE).read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise SnapshotError(f"{root / META_FILE}: not valid JSON ({exc})") from None
        try:
            reserves = pd.read_parquet(root / RESERVES_FILE, engine="pyarrow")
            positions = pd.read_parquet(root / POSITIONS_FILE, engine="pyarrow")
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise SnapshotError(f"{root}: unreadable Parquet file ({exc})") from None
        try:
            return cls.from_frames(meta, reserves, positions)
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
        accounts, acc_idx = np.unique(
            self.positions["account"].to_numpy(dtype=str), return_inverse=True
        )
        col_idx = self.positions["asset"].map(asset_index).to_numpy(dtype=np.int64)
        shape = (len(accounts), len(r))
        collateral = np.zeros(shape)
        debt = np.zeros(shape)
        enabled = np.zeros(shape, dtype=bool)
        collateral[acc_idx, col_idx] = self.positions["collateral"].to_numpy()
        debt[acc_idx, col_idx] = self.positions["debt"].to_numpy()
        enabled[acc_idx, col_idx] = self.positions["collateral_enabled"].to_numpy()

        def f(column: str) -> FloatArray:
            return np.asarray(r[column].to_numpy(dtype=np.float64))

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
        )
        self._book.append(book)
        return book

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
        return cls.from_frames(meta, reserves, positions)
