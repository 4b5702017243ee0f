"""``sweep``: the same scenario run over a grid of protocol parameters, with common paths.

A sweep changes one or more risk parameters of a snapshot (a reserve's LTV, LT, bonus or
protocol fee, an e-mode category's LTV / LT / bonus, a supply or borrow cap, an asset's DEX
depth, the oracle's deviation threshold and heartbeat, the gas a liquidation costs), runs
``simulate`` once per grid point and measures, per point, VaR and ES of bad debt, LaR (the
alpha-quantile of liquidated volume) and P(shortfall > 0), each with a bootstrap interval.

**Common random numbers.** Every point draws the same scenario paths (same seed, same rows),
so two points differ only by the parameter. The bootstrap resamples *path indices* once and
evaluates every point on the same resampled paths, so the difference of ES between a point
and the base (the snapshot's own parameters) gets a paired interval, much narrower than the
unpaired one (each ES resampled on its own), which is reported beside it for comparison.
The resampling stream is child 2 of ``SeedSequence(seed)`` (``simulate`` uses child 1 for
its own intervals), so the same seed gives the same intervals.

**What a changed parameter does to the book** (the rules, exactly):

- LTV, LT, bonus, protocol fee (reserve or e-mode category): positions stay as they are.
  A lower LT can therefore make accounts liquidatable at once (HF < 1 at the snapshot's
  prices); each point counts them (``liquidatable_now``, and ``newly_liquidatable`` of
  those that were not at the base) and their debt. A swept LT below the LTV lowers the LTV
  to the LT (Aave's configurator requires LTV <= LT), and a point whose LT x (1 + bonus)
  exceeds 1 is refused, as the configurator refuses it. The engine does not use the LTV
  (it governs new borrowing), so an LTV sweep changes no shortfall; it counts the accounts
  whose debt exceeds their new borrowing power (``accounts_over_ltv``).
- Supply cap of asset X = C: the book is rescaled so that its total supply of X equals C
  (above or below the snapshot's total): every account that supplies X has *all* its
  positions (every collateral and every debt) multiplied by C / S, S the book's total
  supply of X. Each account's health factor, its mix of assets and the count of accounts
  are unchanged; only the size of the accounts holding X changes. Borrow cap likewise with
  the accounts that borrow X and the book's total debt in X. The base value of a cap is the
  book's own total (no rescaling); the snapshot's actual cap is recorded beside it. Caps in
  one grid are applied in ``--param`` order.
- Liquidity scale of X: both reserves of X's DEX pool are multiplied by the scale (the
  constant-product depth sqrt(x y) scales by it); ``liquidity_scale`` without an asset is
  ``EngineConfig.liquidity_scale`` (every pool).
- ``oracle.deviation`` / ``oracle.heartbeat_s`` replace the scenario's oracle rule;
  ``gas_units`` is ``EngineConfig.gas_units``.
- Compound V3 snapshots: ``SYMBOL.liquidation_threshold`` is the asset's
  liquidateCollateralFactor, ``SYMBOL.ltv`` its borrowCollateralFactor (kept below the
  former, as Comet requires), ``SYMBOL.liquidation_factor`` and ``store_front_price_factor``
  the absorb credit and the store front's discount, ``SYMBOL.supply_cap`` as above; Comet has
  no bonus, protocol fee, borrow cap or e-mode, and a sweep of one is refused.

**Recommendation.** Given a target ES at alpha, the boundary along the first parameter is
the last value, walking from the conservative end of the range (smallest LT, largest bonus,
...) towards the aggressive end, up to which every value meets the target; the crossing is
interpolated linearly between it and the first value that fails, and its interval is the
percentile interval of the same boundary computed on each bootstrap resample. When the
conservative end fails, no value in the range meets the target.

**Executors.** Locally the points run one after another (the engine is parallel over paths).
On an executor with ``submit`` (Dask) every (point, block of paths) chunk is submitted at
once and each point is then assembled by ``simulate`` from its finished chunks, so results
are identical across executors.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import itertools
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulator import __version__, risk
from simulator.atomic import (
    atomic_directory,
    atomic_write_json,
    replaceable_directory_problem,
    write_parquet,
)
from simulator.cascade import EngineConfig
from simulator.cascade.assets import resolve_feeds
from simulator.errors import InputError, ResultsError
from simulator.results import save_results
from simulator.scenarios.paths import PricePaths
from simulator.simulation import (
    DEFAULT_CHUNK_PATHS,
    FixedPaths,
    ScenarioSource,
    SimulationResult,
    simulate,
    simulate_chunk,
)
from simulator.snapshot import Book, MarketSnapshot

__all__ = [
    "MAX_POINTS",
    "N_BOOT",
    "SWEEP_FILES",
    "OracleOverride",
    "SweepParam",
    "SweepResult",
    "apply_point",
    "base_value",
    "check_sweep_target",
    "is_sweep_dir",
    "load_sweep",
    "parse_param",
    "recommend",
    "run_sweep",
    "save_sweep",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

SWEEP_JSON = "sweep.json"
SWEEP_PARQUET = "sweep.parquet"
POINTS_DIR = "points"
#: The entries of a sweep directory, and the only ones it holds.
SWEEP_FILES: tuple[str, ...] = (SWEEP_JSON, SWEEP_PARQUET, POINTS_DIR)
#: Version of the sweep.json layout.
SWEEP_FORMAT = 1

#: Bootstrap resamples of the sweep's joint (paired) bootstrap, and the interval coverage.
N_BOOT = 1000
CI_LEVEL = 0.95
#: Most grid points one sweep may hold (each is a full ``simulate``).
MAX_POINTS = 1000
#: Resampled losses held at once in the bootstrap (bounds memory).
_BOOT_BLOCK = 4_000_000
#: Points whose chunks are on a remote executor at once (bounds the books held there).
PREFETCH_POINTS = 4
#: Relative tolerance when matching a grid value to the base value.
_SAME = 1e-12

#: Reserve fields: name -> (kind, direction of "more aggressive", unit, what it is).
RESERVE_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "ltv": ("reserve", "largest", "fraction", "loan-to-value"),
    "liquidation_threshold": ("reserve", "largest", "fraction", "liquidation threshold"),
    "liquidation_bonus": ("reserve", "smallest", "fraction", "liquidation bonus"),
    "protocol_fee": ("reserve", "largest", "fraction", "protocol fee on the bonus"),
    "supply_cap": ("cap", "largest", "token units", "supply cap"),
    "borrow_cap": ("cap", "largest", "token units", "borrow cap"),
    "liquidity_scale": ("liquidity", "smallest", "x", "DEX depth multiplier"),
    # Compound V3: the share of an absorbed collateral's value credited to the account (a
    # larger one pays the account more out of the reserves)
    "liquidation_factor": ("reserve", "largest", "fraction", "Compound V3 liquidation factor"),
}
#: Reserve fields a Compound V3 market does not have (no liquidator bonus, no fee on it, no
#: borrow cap: only the base is borrowed) and the ones only it has.
_NOT_COMET = {
    "liquidation_bonus": "an absorber earns no bonus (sweep liquidation_factor or "
    "store_front_price_factor)",
    "protocol_fee": "there is no fee on a liquidation bonus",
    "borrow_cap": "only the base asset is borrowed and it has no borrow cap",
}
_COMET_ONLY = ("liquidation_factor", "store_front_price_factor")
EMODE_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "ltv": ("emode", "largest", "fraction", "e-mode loan-to-value"),
    "liquidation_threshold": ("emode", "largest", "fraction", "e-mode liquidation threshold"),
    "liquidation_bonus": ("emode", "smallest", "fraction", "e-mode liquidation bonus"),
}
GLOBAL_FIELDS: dict[str, tuple[str, str, str, str]] = {
    "oracle.deviation": ("oracle", "largest", "fraction", "oracle deviation threshold"),
    "oracle.heartbeat_s": ("oracle", "largest", "s", "oracle heartbeat"),
    "gas_units": ("gas", "largest", "gas", "gas per liquidation"),
    "liquidity_scale": ("engine", "smallest", "x", "every pool's depth multiplier"),
    # Compound V3: the store front's discount is this x (1 - liquidationFactor); a larger
    # one sells absorbed collateral cheaper
    "store_front_price_factor": (
        "comet",
        "largest",
        "fraction",
        "Compound V3 store-front price factor",
    ),
}
_ALIASES = {"oracle.heartbeat": "oracle.heartbeat_s", "gas.units": "gas_units"}


@dataclass(frozen=True, slots=True)
class SweepParam:
    """One swept parameter and its values.

    Attributes:
        name: canonical name, e.g. ``WETH.liquidation_threshold``, ``emode.1.liquidation_bonus``,
            ``oracle.deviation``, ``gas_units``.
        kind: ``reserve``, ``emode``, ``cap``, ``liquidity``, ``oracle``, ``gas``, ``engine``,
            ``comet`` (a Compound V3 market's own term in ``meta.json``).
        target: the reserve's symbol, the e-mode category id as text, or ``""``.
        field: the parameter (``liquidation_threshold``, ``supply_cap``, ``deviation``...).
        values: the grid values, in the order given.
        direction: ``largest`` or ``smallest``: which end of the range is the aggressive one
            (a recommendation is the most aggressive value that meets the target).
        unit: unit of the values.
    """

    name: str
    kind: str
    target: str
    field: str
    values: tuple[float, ...]
    direction: str
    unit: str
    spec: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "target": self.target,
            "field": self.field,
            "values": list(self.values),
            "direction": self.direction,
            "unit": self.unit,
            "spec": self.spec,
        }


def _values(text: str, spec: str) -> tuple[float, ...]:
    def num(s: str) -> float:
        try:
            x = float(s)
        except ValueError:
            raise InputError(
                f"--param {spec}: {s!r} is not a number; values are A:B:STEP or V1,V2,..."
            ) from None
        if not math.isfinite(x):
            raise InputError(f"--param {spec}: {s!r} is not finite")
        return x

    text = text.strip()
    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise InputError(f"--param {spec}: a range is START:STOP:STEP (three numbers)")
        a, b, step = (num(p) for p in parts)
        if step <= 0:
            raise InputError(f"--param {spec}: step {step:g} must be > 0")
        if b < a:
            raise InputError(f"--param {spec}: stop {b:g} is below start {a:g}")
        n = math.floor((b - a) / step + 1e-9) + 1
        if n > MAX_POINTS:
            raise InputError(f"--param {spec}: {n} values; at most {MAX_POINTS}")
        # 12 significant digits: 0.78 + 3 x 0.01 is 0.81, not 0.8100000000000001
        values = tuple(float(f"{a + i * step:.12g}") for i in range(n))
    else:
        values = tuple(num(p) for p in text.split(",") if p.strip())
    if not values:
        raise InputError(f"--param {spec}: no values")
    if len(set(values)) != len(values):
        raise InputError(f"--param {spec}: a value appears twice")
    return values


def _symbol(name: str, symbols: Sequence[str], spec: str) -> str:
    if name in symbols:
        return name
    folded = [s for s in symbols if s.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    close = difflib.get_close_matches(name, list(symbols), n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; reserves: {', '.join(symbols)}"
    raise InputError(f"--param {spec}: no reserve with symbol {name!r}{hint}")


def parse_param(spec: str, snapshot: MarketSnapshot) -> SweepParam:
    """Parse ``NAME=VALUES`` (``WETH.liquidation_threshold=0.78:0.86:0.01``,
    ``emode.1.liquidation_bonus=0.01,0.02``, ``oracle.deviation=0.005,0.01``, ``gas_units=...``)
    against the snapshot's reserves and e-mode categories."""
    if "=" not in spec:
        raise InputError(
            f"--param {spec}: expected NAME=VALUES, e.g. WETH.liquidation_threshold=0.78:0.86:0.01"
        )
    name, text = (s.strip() for s in spec.split("=", 1))
    name = _ALIASES.get(name, name)
    values = _values(text, spec)
    symbols = list(snapshot.reserves["symbol"])
    if name in GLOBAL_FIELDS:
        kind, direction, unit, _ = GLOBAL_FIELDS[name]
        param = SweepParam(name, kind, "", name.split(".")[-1], values, direction, unit, spec)
    elif name.startswith(("oracle.", "gas.")):
        expected = [n for n in GLOBAL_FIELDS if n.startswith(name.split(".")[0])] or ["gas_units"]
        raise InputError(
            f"--param {spec}: unknown parameter {name!r}; expected {', '.join(expected)}"
        )
    elif name.startswith("emode."):
        parts = name.split(".")
        if len(parts) != 3 or parts[2] not in EMODE_FIELDS:
            raise InputError(
                f"--param {spec}: an e-mode parameter is emode.CATEGORY.FIELD with FIELD one of "
                f"{', '.join(EMODE_FIELDS)}"
            )
        try:
            category = int(parts[1])
        except ValueError:
            msg = f"--param {spec}: e-mode category {parts[1]!r} is not an integer"
            raise InputError(msg) from None
        known = sorted({int(c) for c in snapshot.emode["category"]})
        if category not in known:
            raise InputError(
                f"--param {spec}: the snapshot has no e-mode category {category} "
                f"(categories: {', '.join(map(str, known)) or 'none'})"
            )
        kind, direction, unit, _ = EMODE_FIELDS[parts[2]]
        param = SweepParam(
            f"emode.{category}.{parts[2]}",
            kind,
            str(category),
            parts[2],
            values,
            direction,
            unit,
            spec,
        )
    elif "." in name:
        sym, field = name.rsplit(".", 1)
        if field not in RESERVE_FIELDS:
            raise InputError(
                f"--param {spec}: unknown reserve parameter {field!r}; expected one of "
                f"{', '.join(RESERVE_FIELDS)}"
            )
        sym = _symbol(sym, symbols, spec)
        kind, direction, unit, _ = RESERVE_FIELDS[field]
        param = SweepParam(f"{sym}.{field}", kind, sym, field, values, direction, unit, spec)
    else:
        raise InputError(
            f"--param {spec}: unknown parameter {name!r}; expected SYMBOL.FIELD (FIELD one of "
            f"{', '.join(RESERVE_FIELDS)}), emode.CATEGORY.FIELD, or one of "
            f"{', '.join(GLOBAL_FIELDS)}"
        )
    comet = snapshot.meta.get("protocol") == "compound-v3"
    if comet and (param.kind == "emode" or param.field in _NOT_COMET):
        why = _NOT_COMET.get(param.field, "it has no e-mode")
        raise InputError(f"--param {spec}: not a Compound V3 parameter: {why}")
    if not comet and param.field in _COMET_ONLY:
        raise InputError(
            f"--param {spec}: {param.field} is a Compound V3 parameter; the snapshot is "
            f"{snapshot.meta.get('protocol')!r}"
        )
    for v in param.values:
        _check_value(param, v)
    return param


def _check_value(p: SweepParam, v: float) -> None:
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise InputError(f"--param {p.spec or p.name}: value {v:g}; expected {what}")

    if p.field in ("ltv", "protocol_fee"):
        need(0.0 <= v <= 1.0, "a fraction in [0, 1]")
    elif p.field == "liquidation_threshold":
        need(0.0 < v <= 1.0, "a fraction in (0, 1] (an LT of 0 disables the collateral)")
    elif p.field == "liquidation_bonus":
        need(0.0 < v < 1.0, "a fraction in (0, 1) (0.05 = a 5% premium)")
    elif p.field in _COMET_ONLY:
        need(0.0 <= v <= 1.0, "a fraction in [0, 1]")
    elif p.field in ("supply_cap", "borrow_cap"):
        need(v > 0.0, "a cap > 0, token units")
    elif p.kind == "liquidity":
        need(v > 0.0, "a depth multiplier > 0")
    elif p.kind == "engine":
        need(v >= 0.0, "a depth multiplier >= 0")
    elif p.field == "deviation":
        need(0.0 <= v < 1.0, "a fraction in [0, 1)")
    elif p.field == "heartbeat_s":
        need(v > 0.0, "seconds > 0")
    elif p.field == "gas_units":
        need(v >= 0.0, "gas units >= 0")


@dataclass(frozen=True, slots=True)
class OracleOverride:
    """A scenario whose paths carry another oracle rule (deviation and/or heartbeat)."""

    source: ScenarioSource
    deviation: float | None = None
    heartbeat_s: float | None = None

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def default_paths(self) -> int | None:
        return getattr(self.source, "default_paths", None)

    @property
    def kind(self) -> str | None:
        return getattr(self.source, "kind", None)

    def paths(
        self,
        symbols: Sequence[str],
        n_paths: int,
        seed: int,
        *,
        start: int = 0,
        stop: int | None = None,
    ) -> PricePaths:
        pp = self.source.paths(symbols, n_paths, seed, start=start, stop=stop)
        change: dict[str, float] = {}
        if self.deviation is not None:
            change["deviation"] = self.deviation
        if self.heartbeat_s is not None:
            change["heartbeat_s"] = self.heartbeat_s
        return dataclasses.replace(pp, oracle=dataclasses.replace(pp.oracle, **change))


def _source_oracle(source: ScenarioSource, symbols: Sequence[str], seed: int) -> Any:
    oracle = getattr(source, "oracle", None)
    if oracle is None and isinstance(source, FixedPaths):
        oracle = source.price_paths.oracle
    if oracle is None:
        oracle = source.paths(symbols, 1, seed, start=0, stop=1).oracle
    return oracle


def _reserve_row(snapshot: MarketSnapshot, symbol: str) -> int:
    return int(np.flatnonzero(snapshot.reserves["symbol"].to_numpy() == symbol)[0])


def _emode_rows(frame: pd.DataFrame, category: int) -> npt.NDArray[np.bool_]:
    rows = frame["category"].to_numpy() == category
    coll = rows & frame["is_collateral"].to_numpy(dtype=bool)
    return np.asarray(coll if coll.any() else rows, dtype=bool)


def _position_totals(snapshot: MarketSnapshot, symbol: str, column: str) -> float:
    asset = snapshot.reserves["asset"].iloc[_reserve_row(snapshot, symbol)]
    pos = snapshot.positions
    return float(pos.loc[pos["asset"] == asset, column].sum())


def base_value(
    param: SweepParam,
    snapshot: MarketSnapshot,
    source: ScenarioSource,
    config: EngineConfig,
    seed: int = 1,
) -> float:
    """The parameter's value in the snapshot / scenario / engine settings as they are.

    For a cap: the book's total supply (borrow) of the asset, the value at which the book
    is not rescaled."""
    if param.kind == "reserve":
        return float(snapshot.reserves[param.field].iloc[_reserve_row(snapshot, param.target)])
    if param.kind == "liquidity":
        return 1.0
    if param.kind == "cap":
        column = "collateral" if param.field == "supply_cap" else "debt"
        return _position_totals(snapshot, param.target, column)
    if param.kind == "emode":
        rows = _emode_rows(snapshot.emode, int(param.target))
        return float(snapshot.emode.loc[rows, param.field].iloc[0])
    if param.kind == "oracle":
        symbols = snapshot.book().symbols
        oracle = _source_oracle(source, symbols, seed)
        value = getattr(oracle, param.field)
        if value is not None:
            return float(value)
        # each asset keeps its own feed: the base is the loosest of them
        pp = source.paths(symbols, 1, seed, start=0, stop=1)
        feeds = resolve_feeds(symbols, pp.oracle, pp.assets, scenario=pp.scenario)
        field = "deviation" if param.field == "deviation" else "heartbeat_s"
        return float(getattr(feeds, field).max())
    if param.kind == "gas":
        return float(config.gas_units)
    if param.kind == "comet":
        return float(snapshot.meta["comet"][param.field])
    return float(config.liquidity_scale)


def _scale_accounts(positions: pd.DataFrame, asset: str, column: str, total: float) -> None:
    """Rescale (in place) every account holding ``column`` of ``asset`` by one factor so the
    book's total becomes ``total``: all of such an account's positions, so its HF stays."""
    rows = positions["asset"].to_numpy() == asset
    held = rows & (positions[column].to_numpy() > 0.0)
    current = float(positions.loc[held, column].sum())
    if not current > 0.0:
        side = "supplies" if column == "collateral" else "borrows"
        raise InputError(f"no account in the book {side} {asset}; a cap on it cannot be scaled")
    factor = total / current
    accounts = positions.loc[held, "account"].unique()
    mine = positions["account"].isin(accounts).to_numpy()
    positions.loc[mine, "collateral"] *= factor
    positions.loc[mine, "debt"] *= factor


def apply_point(
    snapshot: MarketSnapshot,
    source: ScenarioSource,
    config: EngineConfig,
    assignment: Mapping[SweepParam, float],
    *,
    check_only: bool = False,
) -> tuple[MarketSnapshot, ScenarioSource, EngineConfig, list[str]]:
    """The snapshot, scenario and engine settings of one grid point (rules in the module
    docstring), and notes on what was adjusted (an LTV lowered to a new LT).

    The book is built by ``MarketSnapshot.book()`` from the changed tables, so the engine
    sees exactly what a pulled snapshot with these parameters would give (a rescaled book
    is re-validated by ``MarketSnapshot.from_frames``).
    ``check_only``: apply the configurator rules only (raises on a refused point) and return
    the snapshot unchanged."""
    reserves = snapshot.reserves.copy()
    positions = snapshot.positions if check_only else snapshot.positions.copy()
    emode = snapshot.emode.copy()
    notes: list[str] = []
    touched_reserves: set[int] = set()
    touched_categories: set[int] = set()
    oracle: dict[str, float] = {}
    engine: dict[str, Any] = {}
    meta = snapshot.meta
    for p, v in assignment.items():
        if p.kind == "reserve":
            i = _reserve_row(snapshot, p.target)
            reserves.loc[i, p.field] = v
            touched_reserves.add(i)
        elif p.kind == "liquidity":
            i = _reserve_row(snapshot, p.target)
            base = snapshot.reserves.iloc[i]
            reserves.loc[i, "dex_reserve_asset"] = float(base["dex_reserve_asset"]) * v
            reserves.loc[i, "dex_reserve_quote"] = float(base["dex_reserve_quote"]) * v
        elif p.kind == "cap" and not check_only:
            asset = str(snapshot.reserves["asset"].iloc[_reserve_row(snapshot, p.target)])
            _scale_accounts(
                positions, asset, "collateral" if p.field == "supply_cap" else "debt", v
            )
        elif p.kind == "emode":
            rows = snapshot.emode["category"].to_numpy() == int(p.target)
            emode.loc[rows, p.field] = v
            touched_categories.add(int(p.target))
        elif p.kind == "oracle":
            oracle["deviation" if p.field == "deviation" else "heartbeat_s"] = v
        elif p.kind == "gas":
            engine["gas_units"] = v
        elif p.kind == "comet":
            meta = {**meta, "comet": {**meta["comet"], p.field: v}}
        else:
            engine["liquidity_scale"] = v
    comet = snapshot.meta.get("protocol") == "compound-v3"
    for i in sorted(touched_reserves):
        rules = _comet_configurator_rules if comet else _configurator_rules
        rules(reserves, reserves.index == i, f"{reserves['symbol'][i]}", notes)
    for c in sorted(touched_categories):
        _configurator_rules(emode, emode["category"].to_numpy() == c, f"e-mode {c}", notes)
    if check_only:
        return snapshot, source, config, notes
    if not any(p.kind == "cap" for p in assignment):
        # positions unchanged (validated with the snapshot); the new values were checked
        # above, so only the reserve and e-mode tables change (a 100k-account book's
        # positions take longer to re-validate than its book takes to build)
        point = dataclasses.replace(snapshot, meta=meta, reserves=reserves, emode=emode, _book=[])
    else:
        point = MarketSnapshot.from_frames(meta, reserves, positions, snapshot.accounts, emode)
    if oracle:
        source = OracleOverride(source, oracle.get("deviation"), oracle.get("heartbeat_s"))
    if engine:
        config = dataclasses.replace(config, **engine)
    return point, source, config, notes


def _configurator_rules(
    frame: pd.DataFrame, rows: npt.NDArray[np.bool_], what: str, notes: list[str]
) -> None:
    """Aave's PoolConfigurator rules on the rows: LTV <= LT (a higher LTV is lowered to the
    LT, noted) and LT x (1 + bonus) <= 1 (refused)."""
    lt = frame.loc[rows, "liquidation_threshold"].to_numpy(dtype=np.float64)
    bonus = frame.loc[rows, "liquidation_bonus"].to_numpy(dtype=np.float64)
    ltv = frame.loc[rows, "ltv"].to_numpy(dtype=np.float64)
    over = (lt > 0) & (lt * (1.0 + bonus) > 1.0 + 1e-12)
    if over.any():
        k = int(np.flatnonzero(over)[0])
        raise InputError(
            f"{what}: liquidation_threshold {lt[k]:g} x (1 + liquidation_bonus {bonus[k]:g}) = "
            f"{lt[k] * (1 + bonus[k]):.4f} > 1, which Aave's PoolConfigurator refuses; narrow "
            "the range"
        )
    if (ltv > lt).any():
        frame.loc[rows, "ltv"] = np.minimum(ltv, lt)
        notes.append(f"{what}: ltv lowered to the liquidation threshold {float(lt.max()):g}")


def _comet_configurator_rules(
    frame: pd.DataFrame, rows: npt.NDArray[np.bool_], what: str, notes: list[str]
) -> None:
    """Comet's rules on an asset (its constructor's checks): borrowCollateralFactor below
    liquidateCollateralFactor (a borrow factor at or above a swept liquidate factor is
    lowered to 1e-4 below it, Comet's 4-decimal storage step, noted), both and the
    liquidation factor at most 1."""
    lcf = frame.loc[rows, "liquidation_threshold"].to_numpy(dtype=np.float64)
    bcf = frame.loc[rows, "ltv"].to_numpy(dtype=np.float64)
    if (bcf >= lcf).any():
        frame.loc[rows, "ltv"] = np.where(bcf >= lcf, np.maximum(lcf - 1e-4, 0.0), bcf)
        notes.append(
            f"{what}: borrow collateral factor lowered below the liquidate collateral factor "
            f"{float(lcf.max()):g}"
        )


# ------------------------------------------------------------------------ book effects


def _book_effects(book: Book, base_hf: FloatArray | None) -> dict[str, Any]:
    """Accounts liquidatable at once at the snapshot's prices (HF < 1), those newly so
    against the base, their debt, and accounts whose debt exceeds their borrowing power."""
    hf = book.health_factor()
    debt = book.debt_usd()
    now = hf < 1.0
    prices = book.account_prices()
    power = np.einsum(
        "ij,ij->i", book.effective_collateral() * prices, book.class_ltv[book.account_class]
    )
    out: dict[str, Any] = {
        "liquidatable_now": int(now.sum()),
        "liquidatable_now_debt_usd": float(debt[now].sum()),
        "newly_liquidatable": int((now & (base_hf >= 1.0)).sum()) if base_hf is not None else 0,
        "accounts_over_ltv": int(((debt > power) & (debt > 0)).sum()),
        "total_debt_usd": float(debt.sum()),
    }
    return out


# --------------------------------------------------------------------- joint bootstrap


def _tail_rows(samples: FloatArray, alpha: float) -> tuple[FloatArray, FloatArray]:
    """VaR and ES of each row of ``samples`` ``(n_rows, n)``, equally likely losses: the
    estimators of ``risk.var`` / ``risk.es`` from one partition (tests compare them)."""
    n = samples.shape[1]
    nq = n * (1.0 - alpha)
    m = min(math.floor(nq + n * risk.PROB_TOL), n - 1)
    k = n - 1 - m
    part = np.partition(samples, k, axis=1)
    v = part[:, k]
    top = part[:, k + 1 :]
    gt = top > v[:, None]
    a = gt.sum(axis=1).astype(np.float64)
    s = np.where(gt, top, 0.0).sum(axis=1)
    snap = np.abs(nq - a) <= n * risk.PROB_TOL
    frac = np.where(snap, 0.0, nq - a)
    denom = np.where(snap, a, nq)
    safe = np.where(denom > 0.0, denom, 1.0)
    es = np.where(denom > 0.0, (s + v * frac) / safe, v)
    return np.asarray(v, dtype=np.float64), np.asarray(es, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Boot:
    """Bootstrap samples per point, ``(n_points, n_boot)``; ``es_base_indep`` is the base's
    ES on an independent set of resamples (for the unpaired interval)."""

    var: FloatArray
    es: FloatArray
    lar: FloatArray
    p_loss: FloatArray
    es_base_indep: FloatArray


def _measures(
    x: FloatArray, liq: FloatArray, w: FloatArray | None, alpha: float
) -> tuple[float, float, float, float]:
    p = float(np.average(x > 0.0, weights=w))
    return risk.var(x, alpha, w), risk.es(x, alpha, w), risk.var(liq, alpha, w), p


def _joint_bootstrap(
    shortfall: FloatArray,
    liquidated: FloatArray,
    weights: FloatArray | None,
    alpha: float,
    base: int,
    rng: np.random.Generator,
    n_boot: int = N_BOOT,
) -> _Boot:
    """Resample path indices once per replicate and evaluate every point on them."""
    n_pts, n = shortfall.shape
    out = {k: np.empty((n_pts, n_boot)) for k in ("var", "es", "lar", "p_loss")}
    indep = np.empty(n_boot)
    rows = max(1, _BOOT_BLOCK // n)
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        sl = slice(start, start + b)
        idx = rng.integers(0, n, size=(b, n))
        idx2 = rng.integers(0, n, size=(b, n))
        if weights is None:
            for i in range(n_pts):
                xs = shortfall[i][idx]
                out["var"][i, sl], out["es"][i, sl] = _tail_rows(xs, alpha)
                out["lar"][i, sl] = _tail_rows(liquidated[i][idx], alpha)[0]
                out["p_loss"][i, sl] = (xs > 0.0).mean(axis=1)
            indep[sl] = _tail_rows(shortfall[base][idx2], alpha)[1]
            continue
        for r in range(b):
            w = weights[idx[r]]
            w = w if w.sum() > 0 else None
            for i in range(n_pts):
                m = _measures(shortfall[i][idx[r]], liquidated[i][idx[r]], w, alpha)
                for key, value in zip(("var", "es", "lar", "p_loss"), m, strict=True):
                    out[key][i, start + r] = value
            w2 = weights[idx2[r]]
            indep[start + r] = risk.es(
                shortfall[base][idx2[r]], alpha, w2 if w2.sum() > 0 else None
            )
    return _Boot(out["var"], out["es"], out["lar"], out["p_loss"], indep)


def _ci(samples: FloatArray) -> tuple[float, float]:
    lo, hi = np.quantile(samples, [(1.0 - CI_LEVEL) / 2.0, (1.0 + CI_LEVEL) / 2.0])
    return float(lo), float(hi)


# ----------------------------------------------------------------------- recommendation


def _boundary(values: FloatArray, es: FloatArray, target: float) -> tuple[str, int, float]:
    """``(status, k, crossing)`` along ``values`` ordered conservative -> aggressive:
    ``none`` (the first fails), ``all`` (every value meets the target) or ``inside`` (values
    ``[0, k]`` meet it, ``k + 1`` fails; ``crossing`` interpolates ES = target between)."""
    ok = es <= target
    if not ok[0]:
        return "none", -1, float(values[0])
    k = int(np.argmin(ok)) - 1 if not ok.all() else len(values) - 1
    if k == len(values) - 1:
        return "all", k, float(values[k])
    e0, e1 = float(es[k]), float(es[k + 1])
    t = (target - e0) / (e1 - e0) if e1 > e0 else 0.0
    return "inside", k, float(values[k] + min(max(t, 0.0), 1.0) * (values[k + 1] - values[k]))


def recommend(
    values: Sequence[float],
    es: Sequence[float],
    es_boot: FloatArray,
    target_usd: float,
    direction: str,
) -> dict[str, Any]:
    """The boundary value for ``target_usd`` along one parameter (rule in the module
    docstring).

    Args:
        values: the parameter's grid values (any order).
        es: ES at alpha per value, USD.
        es_boot: bootstrap ES per value and resample, ``(len(values), n_boot)``.
        target_usd: ES budget, USD.
        direction: ``largest`` or ``smallest``: the aggressive end.
    """
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(v if direction == "largest" else -v, kind="stable")
    vs, e = v[order], np.asarray(es, dtype=np.float64)[order]
    status, k, crossing = _boundary(vs, e, target_usd)
    boot = np.asarray(es_boot, dtype=np.float64)[order]
    per = [_boundary(vs, boot[:, b], target_usd) for b in range(boot.shape[1])]
    crossings = np.array([c for _, _, c in per])
    lo, hi = _ci(crossings)
    share_none = float(np.mean([s == "none" for s, _, _ in per]))
    share_all = float(np.mean([s == "all" for s, _, _ in per]))
    out: dict[str, Any] = {
        "status": status,
        "target_es_usd": target_usd,
        "direction": direction,
        "recommended": None if status == "none" else float(vs[k]),
        "recommended_es_usd": None if status == "none" else float(e[k]),
        "first_failing": float(vs[k + 1]) if status != "all" else None,
        "first_failing_es_usd": float(e[k + 1]) if status != "all" else None,
        "boundary": None if status == "none" else crossing,
        "boundary_ci": [lo, hi],
        "boot_share_none": share_none,
        "boot_share_all": share_all,
    }
    word = "largest" if direction == "largest" else "smallest"
    if status == "none":
        out["text"] = (
            f"no value in the range meets the target: ES {e[0]:,.0f} USD at the most "
            f"conservative value {vs[0]:g} already exceeds {target_usd:,.0f} USD"
        )
    elif status == "all":
        out["text"] = (
            f"every value in the range meets the target ({word} {vs[k]:g}: ES {e[k]:,.0f} USD "
            f"<= {target_usd:,.0f} USD); the boundary lies beyond the range"
        )
    else:
        out["text"] = (
            f"{word} value meeting the target: {vs[k]:g} (ES {e[k]:,.0f} USD); {vs[k + 1]:g} "
            f"gives {e[k + 1]:,.0f} USD > {target_usd:,.0f} USD; interpolated boundary "
            f"{crossing:.4g}, {CI_LEVEL:.0%} interval [{lo:.4g}, {hi:.4g}]"
        )
    return out


# ------------------------------------------------------------------------------ running


class _Prefetched:
    """An executor for one point's ``simulate``: hands back the chunks already submitted to
    the real executor (every point's chunks run at once), computes anything else here."""

    def __init__(self, futures: Mapping[tuple[int, int], Any], key: tuple[Any, ...]) -> None:
        self._futures = dict(futures)
        self._key = key
        self.misses = 0
        self.held: tuple[Any, ...] = ()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # simulate() submits (book, source, n_paths, seed, a, z, config, trace); the
        # prefetched chunks are the untraced ones
        if fn is simulate_chunk and not kwargs and len(args) in (7, 8):
            book, source, n_paths, seed, a, z, config = args[:7]
            key = (id(book), id(source), n_paths, seed, config)
            traced = len(args) == 8 and bool(args[7])
            if key == self._key and not traced and (a, z) in self._futures:
                return self._futures.pop((a, z))
        self.misses += 1
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        done.set_result(fn(*args, **kwargs))
        return done


@dataclass(frozen=True, slots=True)
class SweepResult:
    """What ``run_sweep`` produced.

    Attributes:
        params: the swept parameters.
        base_values: each parameter's value in the snapshot as it is.
        table: one row per point (``sweep.parquet``); ``point`` ids, the parameter values
            under their names, ``is_base``, the measures with intervals, the paired and
            unpaired differences to the base, the book effects, ``results_dir``.
        summary: ``sweep.json`` content (run settings, params, recommendations).
        results: each point's ``SimulationResult``, by point id (``None`` when the run was
            written straight to a directory and not kept).
    """

    params: tuple[SweepParam, ...]
    base_values: dict[str, float]
    table: pd.DataFrame
    summary: dict[str, Any]
    results: dict[str, SimulationResult] | None = None


def check_sweep_target(path: str | Path) -> Path:
    """``path`` if a sweep may be written there (absent, empty or an earlier sweep)."""
    problem = replaceable_directory_problem(path, SWEEP_FILES, "sweep")
    if problem is not None:
        raise ResultsError(problem)
    return Path(path)


def _resolve(scenario: ScenarioSource | PricePaths | str | Path) -> ScenarioSource:
    if isinstance(scenario, PricePaths):
        return FixedPaths(scenario)
    if isinstance(scenario, str | Path):
        from simulator.scenarios import load_scenario

        loaded: ScenarioSource = load_scenario(scenario)
        return loaded
    return scenario


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= _SAME * max(1.0, abs(a), abs(b))


def run_sweep(
    snapshot: MarketSnapshot,
    scenario: ScenarioSource | PricePaths | str | Path,
    params: Sequence[SweepParam | str],
    n_paths: int | None = None,
    seed: int = 1,
    alpha: float = risk.DEFAULT_ALPHA,
    *,
    config: EngineConfig | None = None,
    executor: Any = None,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    target_es_usd: float | None = None,
    target_es_pct: float | None = None,
    out: str | Path | None = None,
    keep_results: bool | None = None,
    extra: Mapping[str, Any] | None = None,
    progress: Callable[[int], None] | None = None,
) -> SweepResult:
    """Run ``simulate`` at every point of the parameter grid on common paths.

    Args:
        snapshot: the market as pulled (the base).
        scenario: as for ``simulate``.
        params: swept parameters (``SweepParam`` or ``NAME=VALUES`` text); several make a
            grid (their Cartesian product, the first varying slowest).
        n_paths, seed, alpha, config, chunk_paths: as for ``simulate``, shared by all points.
        executor: ``None``/``"local"`` or an object with ``submit`` (Dask client).
        target_es_usd, target_es_pct: ES budget at alpha in USD, or in percent of the base
            book's total debt, for the recommendation (at most one).
        out: sweep directory to write atomically (``sweep.json``, ``sweep.parquet`` and
            ``points/<id>/``, each an ordinary results directory), or ``None``.
        keep_results: keep every point's ``SimulationResult`` in memory (default: when
            ``out`` is ``None``).
        extra: fields recorded in ``sweep.json`` (the CLI's command line, provenance).
        progress: called with the number of paths finished.
    """
    started = time.perf_counter()
    config = config or EngineConfig()
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha!r}; expected a confidence level strictly in (0, 1)")
    if target_es_usd is not None and target_es_pct is not None:
        raise InputError("give a target ES in USD or in percent of total debt, not both")
    for t, what in ((target_es_usd, "target ES"), (target_es_pct, "target ES percent")):
        if t is not None and not (math.isfinite(t) and t >= 0):
            raise InputError(f"{what} = {t!r}; expected a finite number >= 0")
    if out is not None:
        check_sweep_target(out)
    source = _resolve(scenario)
    parsed = tuple(p if isinstance(p, SweepParam) else parse_param(p, snapshot) for p in params)
    if not parsed:
        raise InputError("a sweep needs at least one parameter (--param NAME=VALUES)")
    names = [p.name for p in parsed]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InputError(f"parameter {dup[0]} is swept twice; give it once with all its values")
    n_grid = math.prod(len(p.values) for p in parsed)
    if n_grid > MAX_POINTS:
        raise InputError(f"the grid holds {n_grid} points; at most {MAX_POINTS}")
    if n_paths is None:
        n_paths = int(getattr(source, "default_paths", 0) or 10_000)
    if n_paths < 2:
        raise InputError(f"n_paths = {n_paths}; a sweep's intervals need at least 2 paths")
    keep = (out is None) if keep_results is None else keep_results

    base = {p: base_value(p, snapshot, source, config, seed) for p in parsed}
    grid = [
        dict(zip(parsed, vs, strict=True)) for vs in itertools.product(*(p.values for p in parsed))
    ]
    ids = [f"{i:03d}" for i in range(len(grid))]
    base_id = next(
        (i for i, g in zip(ids, grid, strict=True) if all(_same(g[p], base[p]) for p in parsed)),
        None,
    )
    points = list(zip(ids, grid, strict=True))
    if base_id is None:
        base_id = "base"
        points.insert(0, ("base", dict(base)))
    # a refused value fails before any path is run (the reserve and e-mode tables only)
    for _, assignment in points:
        apply_point(snapshot, source, config, assignment, check_only=True)
    for p in parsed:
        if p.kind == "cap":
            apply_point(snapshot, source, config, {p: p.values[0]})  # has holders?
    base_hf = snapshot.book().health_factor()
    assignments = dict(points)
    built: dict[str, tuple[MarketSnapshot, ScenarioSource, EngineConfig, list[str]]] = {}

    def build(pid: str) -> tuple[MarketSnapshot, ScenarioSource, EngineConfig, list[str]]:
        if pid not in built:
            built[pid] = apply_point(snapshot, source, config, assignments[pid])
        return built[pid]

    remote = executor is not None and executor != "local"
    if remote and not hasattr(executor, "submit"):
        raise InputError(
            f"executor {executor!r} has no submit(); pass a concurrent.futures or Dask client"
        )
    bounds = [(a, min(a + chunk_paths, n_paths)) for a in range(0, n_paths, chunk_paths)]
    prefetched: dict[str, _Prefetched] = {}

    def submit(pid: str) -> None:
        """Every chunk of point ``pid`` to the executor (a window of points runs at once)."""
        if pid in prefetched:
            return
        snap, src, cfg, _ = build(pid)
        book = snap.book()
        book_ref: Any = book
        src_ref: Any = src
        if hasattr(executor, "scatter"):  # Dask: ship the book once per worker
            # hash=False: two points may hold equal books (an oracle sweep), and one point's
            # finished data must not be released under the other's tasks
            book_ref = executor.scatter(book, broadcast=True, hash=False)
            src_ref = executor.scatter(src, broadcast=True, hash=False)
        futures = {
            (a, z): executor.submit(simulate_chunk, book_ref, src_ref, n_paths, seed, a, z, cfg)
            for a, z in bounds
        }
        prefetched[pid] = _Prefetched(futures, (id(book), id(src), n_paths, seed, cfg))
        prefetched[pid].held = (book_ref, src_ref)  # alive until the point is assembled

    def run(i: int, pid: str) -> SimulationResult:
        snap, src, cfg, _ = build(pid)
        point_executor: Any = "local"
        if remote:
            for later, _ in points[i : i + PREFETCH_POINTS]:
                submit(later)
            point_executor = prefetched[pid]
        result = simulate(
            snap, src, n_paths, seed, alpha, config=cfg, executor=point_executor,
            chunk_paths=chunk_paths, progress=progress,
        )  # fmt: skip
        if remote and prefetched[pid].misses:
            log.warning(
                "sweep point %s: %d chunk(s) ran in this process, not on the executor",
                pid, prefetched[pid].misses,
            )  # fmt: skip
        return result

    state: dict[str, Any] = {}
    results: dict[str, SimulationResult] = {}
    shortfall = np.empty((len(points), n_paths))
    liquidated = np.empty((len(points), n_paths))
    weights: FloatArray | None = None
    rows: list[dict[str, Any]] = []
    point_extra = dict(extra or {})

    def body(tmp: Path | None) -> None:
        nonlocal weights
        for i, (pid, assignment) in enumerate(points):
            result = run(i, pid)
            shortfall[i] = result.shortfall_usd
            liquidated[i] = result.liquidated_usd
            weights = result.weights
            snap, _, _, notes = built.pop(pid)
            prefetched.pop(pid, None)
            values = {p.name: float(assignment[p]) for p in parsed}
            row: dict[str, Any] = {"point": pid, **values, "is_base": pid == base_id}
            row.update(_book_effects(snap.book(), base_hf))
            row["notes"] = "; ".join(notes)
            row["results_dir"] = f"{POINTS_DIR}/{pid}" if tmp is not None else ""
            rows.append(row)
            if tmp is not None:
                tagged = dataclasses.replace(
                    result,
                    extra={**point_extra, "sweep_point": pid, "sweep_values": values},
                )
                save_results(tagged, tmp / POINTS_DIR / pid)
            if keep:
                results[pid] = result

        table, summary = _assemble(
            parsed, base, base_id, rows, shortfall, liquidated, weights, alpha, seed, n_paths,
            snapshot, source, config, target_es_usd, target_es_pct,
        )  # fmt: skip
        summary["runtime_s"] = time.perf_counter() - started
        summary.update({k: v for k, v in point_extra.items() if k not in summary})
        state["table"], state["summary"] = table, summary
        if tmp is not None:
            write_parquet(table, tmp / SWEEP_PARQUET)
            atomic_write_json(tmp / SWEEP_JSON, _jsonable(summary))

    if out is not None:
        with atomic_directory(out) as tmp:
            (tmp / POINTS_DIR).mkdir()
            body(tmp)
    else:
        body(None)
    return SweepResult(
        params=parsed,
        base_values={p.name: float(v) for p, v in base.items()},
        table=state["table"],
        summary=state["summary"],
        results=results if keep else None,
    )


def _assemble(
    params: tuple[SweepParam, ...],
    base: Mapping[SweepParam, float],
    base_id: str,
    rows: list[dict[str, Any]],
    shortfall: FloatArray,
    liquidated: FloatArray,
    weights: FloatArray | None,
    alpha: float,
    seed: int,
    n_paths: int,
    snapshot: MarketSnapshot,
    source: ScenarioSource,
    config: EngineConfig,
    target_es_usd: float | None,
    target_es_pct: float | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    ids = [r["point"] for r in rows]
    b = ids.index(base_id)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(3)[2])
    boot = _joint_bootstrap(shortfall, liquidated, weights, alpha, b, rng)
    for i, row in enumerate(rows):
        var, es, lar, p_loss = _measures(shortfall[i], liquidated[i], weights, alpha)
        row["var_usd"], (row["var_low_usd"], row["var_high_usd"]) = var, _ci(boot.var[i])
        row["es_usd"], (row["es_low_usd"], row["es_high_usd"]) = es, _ci(boot.es[i])
        row["lar_usd"], (row["lar_low_usd"], row["lar_high_usd"]) = lar, _ci(boot.lar[i])
        row["p_shortfall"], (row["p_shortfall_low"], row["p_shortfall_high"]) = (
            p_loss,
            _ci(boot.p_loss[i]),
        )
    es_base = rows[b]["es_usd"]
    for i, row in enumerate(rows):
        row["es_diff_usd"] = row["es_usd"] - es_base
        row["es_diff_low_usd"], row["es_diff_high_usd"] = _ci(boot.es[i] - boot.es[b])
        row["es_diff_unpaired_low_usd"], row["es_diff_unpaired_high_usd"] = _ci(
            boot.es[i] - boot.es_base_indep
        )
        row["var_diff_usd"] = row["var_usd"] - rows[b]["var_usd"]
        row["var_diff_low_usd"], row["var_diff_high_usd"] = _ci(boot.var[i] - boot.var[b])
        row["lar_diff_usd"] = row["lar_usd"] - rows[b]["lar_usd"]
        row["lar_diff_low_usd"], row["lar_diff_high_usd"] = _ci(boot.lar[i] - boot.lar[b])
    table = pd.DataFrame(rows)
    total_debt = float(snapshot.book().debt_usd().sum())
    target = target_es_usd
    if target_es_pct is not None:
        target = target_es_pct / 100.0 * total_debt
    recs: list[dict[str, Any]] = []
    if target is not None:
        grid = [i for i, r in enumerate(rows) if r["point"] != "base" or base_id != "base"]
        first, others = params[0], params[1:]
        combos = itertools.product(*(p.values for p in others)) if others else [()]
        for combo in combos:
            sel = [
                i
                for i in grid
                if all(_same(rows[i][p.name], v) for p, v in zip(others, combo, strict=True))
            ]
            rec = recommend(
                [rows[i][first.name] for i in sel],
                [rows[i]["es_usd"] for i in sel],
                boot.es[sel],
                target,
                first.direction,
            )
            rec["parameter"] = first.name
            rec["fixed"] = {p.name: float(v) for p, v in zip(others, combo, strict=True)}
            recs.append(rec)
    caps = {}
    for p in params:
        if p.kind == "cap":
            row = snapshot.reserves.iloc[_reserve_row(snapshot, p.target)]
            caps[p.name] = float(row[p.field])
    summary: dict[str, Any] = {
        "kind": "sweep",
        "sweep_format": SWEEP_FORMAT,
        "scenario": source.name,
        "scenario_kind": getattr(source, "kind", None),
        "paths": n_paths,
        "seed": seed,
        "alpha": alpha,
        "params": [p.to_dict() | {"base": float(base[p])} for p in params],
        "snapshot_caps": caps,
        "base_point": base_id,
        "points": len(rows),
        "total_debt_usd": total_debt,
        "target_es_usd": target,
        "target_es_pct": target_es_pct,
        "recommendations": recs,
        "bootstrap": {
            "n_boot": N_BOOT,
            "ci_level": CI_LEVEL,
            "stream": "SeedSequence(seed).spawn(3)[2]",
            "paired": "path indices resampled once per replicate, shared by all points",
        },
        "snapshot": {
            **snapshot.meta,
            "emode": snapshot.emode_summary(),
            "venues": snapshot.venue_summary(),
        },
        "engine": config.to_dict(),
        "software_version": __version__,
        "table": table.to_dict(orient="records"),
    }
    return table, summary


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def save_sweep(result: SweepResult, path: str | Path) -> Path:
    """Write a kept ``SweepResult`` (``keep_results``) as a sweep directory, atomically."""
    if result.results is None:
        raise ResultsError("this sweep kept no per-point results; run it with out= instead")
    check_sweep_target(path)
    with atomic_directory(path) as tmp:
        for pid, res in result.results.items():
            save_results(res, tmp / POINTS_DIR / pid)
        table = result.table.copy()
        table["results_dir"] = [f"{POINTS_DIR}/{pid}" for pid in table["point"]]
        summary = dict(result.summary)
        summary["table"] = table.to_dict(orient="records")
        write_parquet(table, tmp / SWEEP_PARQUET)
        atomic_write_json(tmp / SWEEP_JSON, _jsonable(summary))
    return Path(path)


def is_sweep_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by ``shortfall sweep``."""
    root = Path(path)
    return (root / SWEEP_JSON).is_file()


#: Columns every sweep.parquet has (plus one per swept parameter, named by it).
TABLE_COLUMNS: tuple[str, ...] = (
    "point",
    "is_base",
    "var_usd",
    "es_usd",
    "es_low_usd",
    "es_high_usd",
    "lar_usd",
    "p_shortfall",
    "es_diff_usd",
    "es_diff_low_usd",
    "es_diff_high_usd",
    "liquidatable_now",
    "results_dir",
)


def load_sweep(path: str | Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Load and validate a sweep directory: ``(sweep.json, sweep.parquet)``."""
    root = Path(path)
    file = root / SWEEP_JSON
    if not file.is_file():
        raise ResultsError(
            f"{file}: missing; not a sweep directory (make one with shortfall sweep)"
        )
    try:
        summary = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict) or summary.get("kind") != "sweep":
        raise ResultsError(f'{file}: not a sweep summary (expected "kind": "sweep")')
    for key in ("params", "base_point", "alpha", "paths", "recommendations"):
        if key not in summary:
            raise ResultsError(f"{file}: missing key {key!r}")
    table_file = root / SWEEP_PARQUET
    if not table_file.is_file():
        raise ResultsError(f"{table_file}: missing; the sweep directory is incomplete")
    try:
        table = pd.read_parquet(table_file, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ResultsError(f"{table_file}: unreadable Parquet file ({exc})") from None
    need = list(TABLE_COLUMNS) + [p["name"] for p in summary["params"]]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ResultsError(f"{table_file}: missing column(s) {missing}")
    return summary, table
