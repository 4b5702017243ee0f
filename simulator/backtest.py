"""Out-of-sample backtest of a scenario's VaR / ES forecasts, as a model validation does it.

``run_backtest`` rolls the forecast date ``as_of`` through a window of a daily price history.
On each date it conditions (recalibrates) the scenario on the prices dated strictly before
``as_of``, draws its paths for the position's assets, turns them into the position's loss
over the next day, and records VaR, ES and the probability of a loss above VaR of that
forecast next to the loss the market then delivered. The same is done for two baselines in
the same run: a GARCH(1,1) with Student-t innovations of the position's own daily loss
(``arch``) and 250-day historical simulation. ``score`` then runs the tests:

* exceptions against the expected number ``sum_t P(L_t > VaR_t)`` (each day's own
  probability: with an atom at VaR, as for bad debt, it is below ``1 - alpha``);
* Kupiec's proportion of failures with those probabilities
  (:func:`simulator.risk.kupiec_pof_varying`), Christoffersen's independence and
  conditional coverage;
* Acerbi-Szekely Z2 with a p-value and a 5% critical value simulated for this sample: loss
  histories drawn from each day's own forecast distribution (ES = 0 allowed);
* the Basel / FRTB traffic light over every 250-day window (green while the exceptions'
  cumulative probability is below 95%, red from 99.99%);
* the FZ0 score (Patton, Ziegel & Chen 2019), a strictly consistent scoring function of
  (VaR, ES) jointly, against the baselines, with a Diebold-Mariano t statistic.

**No look-ahead.** Everything the forecast of day ``t`` uses is computed from the arrays
sliced to the rows before ``t``; parameters refitted every ``refit_days`` (GARCH, Student-t
dof, correlation) are fitted at a date on the data before it and used from that date on,
while the conditional variance is filtered daily. ``tests/test_backtest.py`` perturbs the
prices after a date and checks that no forecast up to it changes.

**Positions.** ``ETH`` (one unit of USD notional in an asset), ``ETH=0.5,BTC=0.5`` (weights
over assets, USD notional) and a lending position ``lending:ETH/USDC,hf=1.1,lt=0.825,
bonus=0.05,debt=1000000``: each day it opens with ``debt`` USD of the debt asset and enough
collateral for health factor ``hf`` at the open; its loss is the bad debt left when it is
liquidated at the day's worst collateral/debt price (Aave V3.3 rules for one account at one
price: liquidations repeat while HF < 1, each seizing ``repay x (1 + bonus)`` of collateral,
so the debt not covered once the collateral is gone is ``max(D - C / (1 + bonus), 0)``,
whatever the close factor). Forecast paths see the worst of their hourly steps (wicks
included); the realised loss uses the day's low of the collateral when the price file has a
``low`` column. The GARCH-t baseline of a lending position models the close-to-close
collateral/debt log ratio, so it sees no wicks; HS250 replays the realised losses (wicks
included) of the last 250 days.

Pure numerics: no chain I/O, no asyncio.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from simulator import risk
from simulator.errors import InputError, NumericalWarning, ScenarioError
from simulator.scenarios import generate as gen
from simulator.scenarios.assets import SPREAD_FACTORS
from simulator.scenarios.model import (
    ConditionalSpec,
    HistoricalSpec,
    MonteCarloSpec,
    Scenario,
    garch_filter,
)

__all__ = [
    "BASELINES",
    "BacktestResult",
    "ModelScore",
    "Position",
    "PriceHistory",
    "condition_on_prices",
    "fz0",
    "parse_position",
    "read_prices",
    "run_backtest",
    "score",
    "series_for",
    "traffic_light",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: Names of the two baselines every backtest computes beside the scenario.
BASELINES: tuple[str, ...] = ("garch-t", "hs250")

#: Observations of the historical-simulation baseline.
HS_WINDOW = 250

#: Fewest daily returns before the first forecast date.
MIN_HISTORY = 250

#: Days in a Basel / FRTB traffic-light window.
TRAFFIC_WINDOW = 250


# --------------------------------------------------------------------------- prices


@dataclass(frozen=True, slots=True, eq=False)
class PriceHistory:
    """Daily prices of a few series on one calendar.

    Attributes:
        dates: consecutive calendar days, ``datetime64[D]``, shape ``(T,)``.
        names: series names (symbols such as ``ETH``, ``USDC``), in column order.
        close: closing prices, shape ``(T, n)``, NaN where missing.
        low: daily lows, shape ``(T, n)``, NaN where the file has none.
        sources: the file each series came from.
    """

    dates: npt.NDArray[np.datetime64]
    names: tuple[str, ...]
    close: FloatArray
    low: FloatArray
    sources: tuple[str, ...]

    def column(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise InputError(
                f"no price series {name!r}; --prices gave {', '.join(self.names)} "
                "(name a file NAME=FILE, or give a wide CSV with a column per symbol)"
            ) from None

    def perturbed_after(
        self, day: dt.date, factor: float, names: Sequence[str] | None = None
    ) -> PriceHistory:
        """Prices of ``names`` (default all) after ``day`` multiplied by ``factor`` (a test
        of no look-ahead)."""
        after = self.dates > np.datetime64(day.isoformat(), "D")
        cols = list(range(len(self.names))) if names is None else [self.column(n) for n in names]
        close, low = self.close.copy(), self.low.copy()
        for j in cols:
            close[after, j] *= factor
            low[after, j] *= factor
        return replace(self, close=close, low=low)


def _stem_name(path: Path) -> str:
    return path.stem.split("-")[0].split("_")[0]


def read_prices(specs: Sequence[str | Path]) -> PriceHistory:
    """Read daily price files into one :class:`PriceHistory`.

    Each item is ``PATH`` or ``NAME=PATH``. A file with a ``close`` column is one series
    (``date,open,high,low,close,volume``; named ``NAME``, else the file name up to the
    first ``-``: ``ETH-USD.csv`` is ``ETH``), and its ``low`` column, if any, is kept. Any
    other file is a wide table: a ``date`` column and one close column per series.

    Raises:
        InputError: missing file, no ``date`` column, unparsable or duplicate or
            intraday dates, non-positive or non-numeric prices, or a series given twice;
            the message names the file, the column and the row.
    """
    import pandas as pd

    if not specs:
        raise InputError("--prices: give at least one price file")
    frames: list[pd.DataFrame] = []
    lows: dict[str, pd.Series] = {}
    sources: dict[str, str] = {}
    for item in specs:
        text = str(item)
        name: str | None = None
        if "=" in text and not Path(text).exists():
            name, _, text = text.partition("=")
            name = name.strip()
            if not name:
                raise InputError(f"--prices {item}: empty series name before '='")
        path = Path(text)
        try:
            df = pd.read_csv(path)
        except FileNotFoundError:
            raise InputError(f"--prices {path}: no such file") from None
        except (OSError, ValueError) as exc:
            raise InputError(f"--prices {path}: cannot read as CSV ({exc})") from None
        if "date" not in df.columns:
            raise InputError(f"{path}: no 'date' column; columns are {list(df.columns)}")
        raw = df["date"].astype(str)
        try:
            stamps = pd.to_datetime(raw, utc=True, format="mixed").dt.tz_localize(None)
        except (ValueError, TypeError):
            bad = 0
            for i, v in enumerate(raw):
                try:
                    pd.Timestamp(v)
                except (ValueError, TypeError):
                    bad = i
                    break
            raise InputError(
                f"{path}: column 'date', row {bad + 2}: {raw.iloc[bad]!r} is not a date"
            ) from None
        if (stamps != stamps.dt.normalize()).any():
            i = int(np.flatnonzero((stamps != stamps.dt.normalize()).to_numpy())[0])
            raise InputError(
                f"{path}: row {i + 2}: {raw.iloc[i]!r} has a time of day; the backtest needs "
                "daily prices (one row per UTC day)"
            )
        days = stamps.dt.normalize()
        dup = days.duplicated()
        if dup.any():
            i = int(np.flatnonzero(dup.to_numpy())[0])
            raise InputError(f"{path}: row {i + 2}: duplicate date {raw.iloc[i]}")
        if "close" in df.columns:
            cols = {name or _stem_name(path): "close"}
        else:
            if name is not None:
                raise InputError(
                    f"--prices {item}: NAME=FILE is for single-series files with a 'close' "
                    "column; a wide file names its series by its columns"
                )
            cols = {c: c for c in df.columns if c != "date"}
            if not cols:
                raise InputError(f"{path}: no price columns besides 'date'")
        for series, col in cols.items():
            values = pd.to_numeric(df[col], errors="coerce")
            unreadable = values.isna() & df[col].notna()
            if unreadable.any():
                i = int(np.flatnonzero(unreadable.to_numpy())[0])
                raise InputError(
                    f"{path}: column {col!r}, row {i + 2}: {df[col].iloc[i]!r} is not a number"
                )
            arr = values.to_numpy(dtype=np.float64)
            bad = ~np.isnan(arr) & ~((arr > 0.0) & np.isfinite(arr))
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise InputError(
                    f"{path}: column {col!r}, row {i + 2}: price {arr[i]:g}; prices must be > 0"
                )
            if series in sources:
                raise InputError(
                    f"series {series!r} is given twice ({sources[series]} and {path}); "
                    "name one of them NAME=FILE"
                )
            sources[series] = str(path)
            frames.append(pd.DataFrame({series: arr}, index=days.to_numpy()))
            if col == "close" and "low" in df.columns:
                low = pd.to_numeric(df["low"], errors="coerce").to_numpy(dtype=np.float64)
                low = np.where((low > 0.0) & np.isfinite(low), np.minimum(low, arr), np.nan)
                lows[series] = pd.Series(low, index=days.to_numpy())
    joined = pd.concat(frames, axis=1, sort=True)
    full = pd.date_range(joined.index.min(), joined.index.max(), freq="D")
    joined = joined.reindex(full)
    names = tuple(str(c) for c in joined.columns)
    low_arr = np.full((len(full), len(names)), np.nan)
    for j, n in enumerate(names):
        if n in lows:
            low_arr[:, j] = lows[n].reindex(full).to_numpy(dtype=np.float64)
    return PriceHistory(
        dates=full.to_numpy().astype("datetime64[D]"),
        names=names,
        close=joined.to_numpy(dtype=np.float64),
        low=low_arr,
        sources=tuple(sources[n] for n in names),
    )


# --------------------------------------------------------------------------- positions


@dataclass(frozen=True, slots=True)
class Position:
    """What is backtested: a linear book or one lending account.

    Attributes:
        kind: ``linear`` (USD notional in assets) or ``lending``.
        symbols: the price series the loss needs, in the order of the path columns.
        weights: USD notional per symbol (``linear``).
        collateral, debt: the lending position's assets; ``debt`` ``USD`` is cash.
        debt_usd: debt at each open, USD. hf: health factor at each open.
        lt: liquidation threshold of the collateral. bonus: liquidation bonus.
        text: the specification it was parsed from.
    """

    kind: Literal["linear", "lending"]
    symbols: tuple[str, ...]
    weights: tuple[float, ...] = ()
    collateral: str = ""
    debt: str = "USD"
    debt_usd: float = 1_000_000.0
    hf: float = 1.1
    lt: float = 0.825
    bonus: float = 0.05
    text: str = ""

    @property
    def collateral_usd(self) -> float:
        """Collateral at each open: ``hf x debt / lt``, USD."""
        return self.hf * self.debt_usd / self.lt

    def path_losses(self, mult: npt.NDArray[np.floating[Any]]) -> FloatArray:
        """Loss of each path, USD; ``mult`` has shape ``(n, n_steps + 1, len(symbols))``."""
        if self.kind == "linear":
            end = mult[:, -1, :].astype(np.float64)
            return np.asarray(-((end - 1.0) @ np.asarray(self.weights)), dtype=np.float64)
        coll = mult[:, :, 0].astype(np.float64)
        debt = mult[:, :, 1].astype(np.float64) if len(self.symbols) > 1 else 1.0
        bad = self.debt_usd * debt - self.collateral_usd * coll / (1.0 + self.bonus)
        return np.asarray(np.maximum(bad.max(axis=1), 0.0), dtype=np.float64)

    def day_losses(self, close_ratio: FloatArray, low_ratio: FloatArray) -> FloatArray:
        """Loss of days from close/previous-close and low/previous-close ratios of the
        position's symbols (shape ``(T, len(symbols))``), USD; NaN where a ratio is."""
        if self.kind == "linear":
            return np.asarray(-((close_ratio - 1.0) @ np.asarray(self.weights)), dtype=np.float64)
        c_close, c_low = close_ratio[:, 0], low_ratio[:, 0]
        d = close_ratio[:, 1] if len(self.symbols) > 1 else np.ones_like(c_close)
        worst = np.fmin(c_low, c_close)
        bad = self.debt_usd * d - self.collateral_usd * worst / (1.0 + self.bonus)
        out = np.maximum(bad, 0.0)
        out[~np.isfinite(c_close) | ~np.isfinite(d)] = np.nan
        return np.asarray(out, dtype=np.float64)


_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


def parse_position(text: str) -> Position:
    """Parse ``--position``: ``ETH``, ``ETH=0.5,BTC=0.5`` or
    ``lending:ETH/USDC,hf=1.1,lt=0.825,bonus=0.05[,debt=1000000]`` (debt ``USD`` for cash).

    Raises:
        InputError: naming the part that is wrong and what is expected.
    """
    spec = text.strip()
    if not spec:
        raise InputError("--position: empty; e.g. ETH, ETH=0.5,BTC=0.5 or lending:ETH/USDC,hf=1.1")
    if spec.startswith("lending:"):
        head, *opts = spec[len("lending:") :].split(",")
        coll, sep, debt = head.partition("/")
        if not coll or (sep and not debt):
            raise InputError(
                f"--position {text}: expected lending:COLLATERAL/DEBT,hf=...,lt=...,bonus=..."
            )
        values: dict[str, float] = {}
        for opt in opts:
            key, eq, val = opt.partition("=")
            key = key.strip()
            if key not in ("hf", "lt", "bonus", "debt") or not eq:
                raise InputError(
                    f"--position {text}: {opt!r}: expected hf=, lt=, bonus= or debt= (USD)"
                )
            if not re.fullmatch(_NUMBER, val.strip()):
                raise InputError(f"--position {text}: {key}={val!r} is not a number")
            values[key] = float(val)
        hf, lt = values.get("hf", 1.1), values.get("lt", 0.825)
        bonus, debt_usd = values.get("bonus", 0.05), values.get("debt", 1_000_000.0)
        if not hf > 0.0:
            raise InputError(f"--position {text}: hf={hf:g}; expected > 0")
        if not 0.0 < lt < 1.0:
            raise InputError(f"--position {text}: lt={lt:g}; expected in (0, 1)")
        if not 0.0 <= bonus < 1.0 or lt * (1.0 + bonus) >= 1.0:
            raise InputError(
                f"--position {text}: bonus={bonus:g}; expected >= 0 with lt x (1 + bonus) < 1 "
                "(Aave refuses a reserve configured otherwise)"
            )
        if not debt_usd > 0.0:
            raise InputError(f"--position {text}: debt={debt_usd:g}; expected > 0 USD")
        debt = debt or "USD"
        symbols = (coll,) if debt.upper() == "USD" else (coll, debt)
        return Position("lending", symbols, (), coll, debt, debt_usd, hf, lt, bonus, text=spec)
    weights: dict[str, float] = {}
    for part in spec.split(","):
        sym, eq, val = part.partition("=")
        sym = sym.strip()
        if not sym or not re.fullmatch(r"[A-Za-z0-9_.]+", sym):
            raise InputError(f"--position {text}: {part!r} is not SYMBOL or SYMBOL=WEIGHT")
        if eq and not re.fullmatch(_NUMBER, val.strip()):
            raise InputError(f"--position {text}: weight {val!r} of {sym} is not a number")
        if sym in weights:
            raise InputError(f"--position {text}: {sym} appears twice")
        weights[sym] = float(val) if eq else 1.0
    if not any(w != 0.0 for w in weights.values()):
        raise InputError(f"--position {text}: all weights are zero")
    return Position("linear", tuple(weights), tuple(weights.values()), text=spec)


# --------------------------------------------------------------------------- models


def _day_seed(seed: int, day: np.datetime64) -> int:
    ordinal = int(day.astype("datetime64[D]").astype(np.int64))
    state = np.random.SeedSequence([seed, ordinal + 1_000_000]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def _corr(z: FloatArray) -> FloatArray:
    f = z.shape[1]
    if f == 1:
        return np.ones((1, 1))
    c = np.corrcoef(z, rowvar=False)
    c = np.where(np.isfinite(c), c, 0.0)
    np.fill_diagonal(c, 1.0)
    w = np.linalg.eigvalsh(c)
    if w.min() < 1e-8:
        from simulator.scenarios.calibrate import nearest_correlation

        c = nearest_correlation(c, floor=1e-6)
    return np.asarray(c, dtype=np.float64)


@dataclass
class _Counters:
    dof_at_bound: int = 0
    refits: int = 0
    notes: list[str] = field(default_factory=list)


def _dof(z: FloatArray, counters: _Counters, standardized: bool = False) -> float:
    from simulator.scenarios.calibrate import fit_standardized_t_dof, fit_t_dof

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        dof = fit_standardized_t_dof(z) if standardized else fit_t_dof(z)
    if any(issubclass(w.category, NumericalWarning) for w in caught):
        counters.dof_at_bound += 1
    return dof


def series_for(scenario: Scenario, prices: PriceHistory, factor: str) -> int:
    """Column of ``prices`` that measures scenario factor ``factor``: the series named as the
    factor, else a symbol that the scenario maps to that factor alone (``USDC`` -> ``STABLE``).

    Raises:
        InputError: no series measures the factor (the message lists what was given).
    """
    if factor in prices.names:
        return prices.names.index(factor)
    for j, name in enumerate(prices.names):
        try:
            terms = scenario.resolve([name])[0]
        except ScenarioError:
            continue
        if len(terms) == 1 and terms[0].name == factor:
            return j
    raise InputError(
        f"scenario {scenario.name!r} factor {factor} has no price series: pass --prices "
        f"with a series named {factor} or a symbol that maps to it (have "
        f"{', '.join(prices.names)})"
    )


def condition_on_prices(scenario: Scenario, prices: PriceHistory, as_of: dt.date) -> Scenario:
    """``scenario`` conditioned on the daily prices strictly before ``as_of`` (what
    ``shortfall simulate --prices`` does with a snapshot's block date).

    Every factor some series measures (``series_for``) is filtered through the scenario's
    GARCH from its daily log-returns before ``as_of``; the other factors keep the long-run
    volatility. A scenario without a ``[conditional]`` table (a fixed calibration, a stress,
    a historical replay) is returned unchanged.

    Raises:
        InputError: no series measures any factor of the scenario.
    """
    spec = scenario.spec
    if not isinstance(spec, MonteCarloSpec) or spec.conditional is None:
        return scenario
    factors: list[str] = []
    columns: list[int] = []
    for f in spec.factors:
        try:
            columns.append(series_for(scenario, prices, f))
        except InputError:
            continue
        factors.append(f)
    if not factors:
        raise InputError(
            f"--prices gave {', '.join(prices.names)}, none of which measures a factor of "
            f"scenario {scenario.name!r} ({', '.join(spec.factors)}); name a file FACTOR=FILE "
            "or SYMBOL=FILE (e.g. ETH=ETH-USD.csv, LST=STETH-ETH.csv, USDC=USDC-USD.csv)"
        )
    before = prices.dates < np.datetime64(as_of.isoformat(), "D")
    dates = prices.dates[before]
    close = prices.close[before][:, columns]
    lasts: list[dt.date | None] = []
    for k in range(len(columns)):
        seen = np.flatnonzero(np.isfinite(close[:, k]))
        lasts.append(dt.date.fromisoformat(str(dates[seen[-1]])) if seen.size else None)
    gap = spec.conditional.max_gap_days
    fresh = [k for k, d in enumerate(lasts) if d is not None and (as_of - d).days <= gap]
    if fresh:  # a factor whose series stopped long ago keeps its long-run volatility
        factors = [factors[k] for k in fresh]
        columns = [columns[k] for k in fresh]
        close = close[:, fresh]
        known = [d for d in (lasts[k] for k in fresh) if d is not None]
        last: dt.date | None = min(known)
    else:
        known = [d for d in lasts if d is not None]
        last = max(known) if known else None
    returns = np.log(close[1:]) - np.log(close[:-1])
    source = "; ".join(f"{prices.names[c]} ({prices.sources[c]})" for c in columns)
    return scenario.conditioned(returns, factors, as_of, last, source=source)


class _ScenarioModel:
    """The scenario, conditioned on the data before each forecast date."""

    def __init__(
        self,
        scenario: Scenario,
        position: Position,
        prices: PriceHistory,
        *,
        n_paths: int,
        seed: int,
        refit_days: int,
        calibration: Literal["rolling", "fixed"],
    ) -> None:
        if scenario.deterministic:
            raise InputError(
                f"scenario {scenario.name!r} is a deterministic stress: it has no loss "
                "distribution to backtest; use a montecarlo or historical scenario"
            )
        if not math.isclose(scenario.horizon_hours, 24.0):
            raise InputError(
                f"scenario {scenario.name!r} covers {scenario.horizon_hours:g} h; the backtest "
                "scores one-day forecasts (--horizon 1d), so it needs a 24 h scenario"
            )
        self.position = position
        self.n_paths = n_paths
        self.seed = seed
        self.refit_days = refit_days
        self.calibration = calibration
        self.counters = _Counters()
        self.name = scenario.name
        spec = scenario.spec
        self.symbols = position.symbols
        if isinstance(spec, HistoricalSpec):
            self.factors: tuple[str, ...] = position.symbols
            series = [prices.column(s) for s in self.factors]
            self.scenario = scenario
        else:
            terms = scenario.resolve(position.symbols)
            needed: list[str] = []
            for ts in terms:
                for t in ts:
                    if t.name not in needed:
                        needed.append(t.name)
            self.factors = tuple(f for f in scenario.factors if f in needed)
            series = [series_for(scenario, prices, f) for f in self.factors]
            self.scenario = _restrict(scenario, self.factors)
        logc = np.log(prices.close[:, series])
        self.returns = np.full_like(logc, np.nan)
        self.returns[1:] = logc[1:] - logc[:-1]
        self.kind = scenario.kind
        self._fit_at = -1
        self._params: Any = None
        self._chol: Any = None

    # -- conditioning -------------------------------------------------------------------
    def _history(self, i: int) -> FloatArray:
        r = self.returns[:i]
        return r[np.isfinite(r).all(axis=1)]

    def condition(self, i: int) -> Scenario:
        """The scenario as of row ``i`` (data in rows < i only)."""
        r_all = self.returns[:i]
        r = self._history(i)
        if r.shape[0] < MIN_HISTORY:
            raise InputError(
                f"only {r.shape[0]} daily returns of {', '.join(self.symbols)} before the "
                f"forecast date; the backtest needs {MIN_HISTORY} (start later with --from)"
            )
        refit = self._fit_at < 0 or i - self._fit_at >= self.refit_days
        spec = self.scenario.spec
        if isinstance(spec, MonteCarloSpec):
            if spec.conditional is not None and spec.conditional.regime == spec.active.name:
                return self._garch_mc(spec, r_all, r, refit, i)
            if self.calibration == "fixed":
                return self.scenario
            return self._rolling_mc(spec, r, refit, i)
        assert isinstance(spec, HistoricalSpec)
        return self._historical(spec, r, refit, i)

    def _garch_mc(
        self, spec: MonteCarloSpec, r_all: FloatArray, r: FloatArray, refit: bool, i: int
    ) -> Scenario:
        from simulator.scenarios.calibrate import fit_garch11

        cond = spec.conditional
        assert cond is not None
        reg = spec.active
        if refit:
            self._fit_at = i
            self.counters.refits += 1
            if self.calibration == "fixed":
                params = [(cond.omega[j], cond.alpha[j], cond.beta[j]) for j in range(r.shape[1])]
                corr, dof = np.asarray(reg.corr), reg.dof
            else:
                params = [fit_garch11(r[:, j], name=self.factors[j]) for j in range(r.shape[1])]
                z = np.column_stack(
                    [
                        r[:, j] / np.sqrt(garch_filter(r[:, j], *params[j], r[:, j].var())[:-1])
                        for j in range(r.shape[1])
                    ]
                )
                corr = _corr(z)
                pooled = [z[:, j] for j, f in enumerate(self.factors) if f not in SPREAD_FACTORS]
                dof = (
                    _dof(np.concatenate(pooled), self.counters, standardized=True)
                    if pooled
                    else reg.dof
                )
            self._params = (params, corr, dof)
        params, corr, dof = self._params
        new_cond = ConditionalSpec(
            tuple(p[0] for p in params),
            tuple(p[1] for p in params),
            tuple(p[2] for p in params),
            max_gap_days=cond.max_gap_days,
            intraday_scale=cond.intraday_scale,
            fitted=cond.fitted,
            regime=cond.regime,
        )
        if refit:
            corr_t = tuple(tuple(float(c) for c in row) for row in corr)
            self._chol = (corr_t, gen.cholesky_psd(corr_t))
        corr_t, chol = self._chol
        vols = tuple(float(v) for v in new_cond.filter(r_all))
        new_reg = replace(reg, vol_daily=vols, corr=corr_t, dof=float(dof), chol=chol)
        new_cond = replace(new_cond, regime=new_reg.name, conditioned_on="backtest history")
        return replace(
            self.scenario,
            spec=replace(spec, regimes=(new_reg,), regime=new_reg.name, conditional=new_cond),
        )

    def _rolling_mc(self, spec: MonteCarloSpec, r: FloatArray, refit: bool, i: int) -> Scenario:
        reg = spec.active
        window = _window_days(reg.window)
        recent = r[-window:]
        vol = tuple(float(v) for v in recent.std(axis=0, ddof=1))
        if refit:
            self._fit_at = i
            self.counters.refits += 1
            corr = _corr(recent)
            z = [
                recent[:, j] / vol[j] for j, f in enumerate(self.factors) if f not in SPREAD_FACTORS
            ]
            dof = _dof(np.concatenate(z), self.counters) if z else reg.dof
            corr_t = tuple(tuple(float(c) for c in row) for row in corr)
            self._params = (corr_t, dof, gen.cholesky_psd(corr_t))
        corr_t, dof, chol = self._params
        new_reg = replace(reg, vol_daily=vol, corr=corr_t, dof=float(dof), chol=chol)
        return replace(self.scenario, spec=replace(spec, regimes=(new_reg,), regime=new_reg.name))

    def _historical(self, spec: HistoricalSpec, r: FloatArray, refit: bool, i: int) -> Scenario:
        if spec.window_days is not None:
            r = r[-spec.window_days :]
        if spec.method == "bootstrap":
            new = replace(spec, returns=np.ascontiguousarray(r), factors=self.factors, garch=None)
            return replace(self.scenario, spec=new)
        from simulator.scenarios.calibrate import fit_garch

        if refit:
            self._fit_at = i
            self.counters.refits += 1
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NumericalWarning)
                fit = fit_garch(r, dist="normal", names=self.factors)
            self._params = fit.params[:5].copy(), fit.params[6].copy()
        base, scale = self._params
        mu, omega, alpha, gamma, beta = base
        y = r * scale
        e = y - mu
        t, f = e.shape
        s2 = np.empty((t + 1, f))
        s2[0] = e.var(axis=0)
        for k in range(t):  # GJR recursion; cheap next to the paths
            s2[k + 1] = omega + (alpha + gamma * (e[k] < 0.0)) * e[k] ** 2 + beta * s2[k]
        resid = e / np.sqrt(s2[:-1])
        garch = np.vstack([mu, omega, alpha, gamma, beta, s2[-1], scale])
        new = replace(spec, returns=resid, garch=garch, factors=self.factors)
        return replace(self.scenario, spec=new)

    def forecast(self, i: int, day: np.datetime64) -> FloatArray:
        sc = self.condition(i)
        pp = sc.paths(self.symbols, self.n_paths, _day_seed(self.seed, day), dtype=np.float32)
        return self.position.path_losses(pp.multipliers)


def _window_days(window: Sequence[str]) -> int:
    if len(window) == 2:
        try:
            a, b = (dt.date.fromisoformat(w) for w in window)
            return max((b - a).days + 1, MIN_HISTORY)
        except ValueError:
            pass
    return 730


def _restrict(scenario: Scenario, factors: tuple[str, ...]) -> Scenario:
    """A Monte Carlo scenario over a subset of its factors (the correlation's sub-matrix)."""
    spec = scenario.spec
    assert isinstance(spec, MonteCarloSpec)
    idx = [spec.factors.index(f) for f in factors]
    regimes = []
    for r in spec.regimes:
        corr = tuple(tuple(r.corr[i][j] for j in idx) for i in idx)
        regimes.append(
            replace(
                r,
                vol_daily=tuple(r.vol_daily[i] for i in idx),
                drift_daily=tuple(r.drift_daily[i] for i in idx),
                corr=corr,
                chol=gen.cholesky_psd(corr),
            )
        )
    jumps = spec.jumps
    if jumps is not None:
        jumps = replace(jumps, beta=tuple(jumps.beta[i] for i in idx))
    cond = spec.conditional
    if cond is not None:
        cond = replace(
            cond,
            omega=tuple(cond.omega[i] for i in idx),
            alpha=tuple(cond.alpha[i] for i in idx),
            beta=tuple(cond.beta[i] for i in idx),
        )
    new = replace(spec, factors=factors, regimes=tuple(regimes), jumps=jumps, conditional=cond)
    gas = scenario.gas
    if gas.reference not in factors:
        gas = replace(gas, reference=factors[0], spike_gwei=0.0)
    return replace(scenario, spec=new, gas=gas)


class _GarchT:
    """Baseline: GARCH(1,1) with Student-t innovations of the position's daily loss driver
    (``arch``), refitted every ``refit_days``, variance filtered daily; the forecast sample
    is the t quantile grid mapped through the position's loss."""

    name = "garch-t"

    def __init__(self, position: Position, driver: FloatArray, n: int, refit_days: int) -> None:
        self.position = position
        self.driver = driver  # linear: portfolio simple return; lending: log collateral/debt
        self.refit_days = refit_days
        self.u = (np.arange(n) + 0.5) / n
        self._fit_at = -1
        self._p: tuple[float, float, float, float, float, float] | None = None
        self.counters = _Counters()

    def forecast(self, i: int, day: np.datetime64) -> FloatArray:
        from arch import arch_model

        x = self.driver[:i]
        x = x[np.isfinite(x)]
        if self._p is None or i - self._fit_at >= self.refit_days:
            sd = float(x.std())
            scale = 10.0 / sd
            model = arch_model(x * scale, mean="Constant", vol="GARCH", p=1, q=1, dist="t")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(disp="off", show_warning=False)
            p = res.params
            self._p = (
                float(p["mu"]), float(p["omega"]), float(p["alpha[1]"]),
                float(p["beta[1]"]), float(p["nu"]), scale,
            )  # fmt: skip
            self._fit_at = i
            self.counters.refits += 1
        mu, omega, a, b, nu, scale = self._p
        e = x * scale - mu
        s2 = garch_filter(e, omega, a, b, float(e.var()))[-1]
        nu = max(nu, 2.05)
        z = stats.t.ppf(self.u, nu) * math.sqrt((nu - 2.0) / nu)
        draw = (mu + math.sqrt(s2) * z) / scale
        if self.position.kind == "linear":
            return np.asarray(-draw, dtype=np.float64)
        m = np.exp(draw)
        bad = self.position.debt_usd - self.position.collateral_usd * m / (
            1.0 + self.position.bonus
        )
        return np.asarray(np.maximum(bad, 0.0), dtype=np.float64)


class _HistSim:
    """Baseline: the position's realised losses of the last 250 days."""

    name = "hs250"

    def __init__(self, realised: FloatArray) -> None:
        self.realised = realised

    def forecast(self, i: int, day: np.datetime64) -> FloatArray:
        x = self.realised[:i]
        x = x[np.isfinite(x)]
        return np.asarray(x[-HS_WINDOW:], dtype=np.float64)


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True, slots=True)
class ModelScore:
    """The tests of one model's forecasts at one level. See the module docstring."""

    model: str
    alpha: float
    n: int
    exceptions: int
    expected: float
    kupiec_stat: float
    kupiec_p: float
    christoffersen_ind_p: float
    christoffersen_cc_p: float
    z2: float
    z2_p: float
    z2_critical: float
    traffic_light: str
    traffic_worst: str
    traffic_counts: dict[str, int]
    last_window_exceptions: int
    fz0: float
    fz0_days: int
    fz0_vs: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def fz0(loss: FloatArray, v: FloatArray, e: FloatArray, alpha: float) -> FloatArray:
    """FZ0 score of (VaR, ES) forecasts of losses (lower is better), per period.

    ``S = 1{L > V} (L - V) / ((1 - alpha) E) + V / E + log(E) - 1`` (Patton, Ziegel & Chen
    2019, eq. (6), with P&L ``-L``), defined for ``E > 0``; NaN where ``E <= 0``.
    """
    p = 1.0 - alpha
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(loss > v, loss - v, 0.0) / (p * e) + v / e + np.log(e) - 1.0
    return np.asarray(np.where(e > 0.0, out, np.nan), dtype=np.float64)


def _poisson_binomial_cdf(p: FloatArray, x: int) -> float:
    """``P(X <= x)`` for a sum of independent Bernoulli(``p``)."""
    k = x + 2
    pmf = np.zeros(k)
    pmf[0] = 1.0
    for q in p:
        pmf[1:] = pmf[1:] * (1.0 - q) + pmf[:-1] * q
        pmf[0] *= 1.0 - q
    return float(min(pmf[: x + 1].sum(), 1.0))


def traffic_light(
    hits: BoolArray, probs: FloatArray, window: int = TRAFFIC_WINDOW
) -> tuple[str, str, dict[str, int], int]:
    """Basel / FRTB traffic light over every ``window``-day window.

    A window is green while the probability of at most its number of exceptions, under
    the forecasts' own exception probabilities, is below 95%, amber below 99.99%, red
    from there (for ``p = 1%`` and 250 days: green 0-4, amber 5-9, red 10+, the Basel
    table). Returns (zone of the last window, worst zone, windows per zone, exceptions in
    the last window); with fewer than ``window`` days, one window of all of them.
    """
    t = hits.size
    w = min(window, t)
    counts = {"green": 0, "amber": 0, "red": 0}
    zones: list[str] = []
    csum = np.concatenate([[0], np.cumsum(hits)])
    for end in range(w, t + 1):
        x = int(csum[end] - csum[end - w])
        cdf = _poisson_binomial_cdf(probs[end - w : end], x)
        zone = "green" if cdf < 0.95 else "amber" if cdf < 0.9999 else "red"
        counts[zone] += 1
        zones.append(zone)
    order = {"green": 0, "amber": 1, "red": 2}
    worst = max(zones, key=order.__getitem__)
    return zones[-1], worst, counts, int(csum[t] - csum[t - w])


def score(
    name: str,
    alpha: float,
    realised: FloatArray,
    v: FloatArray,
    e: FloatArray,
    p: FloatArray,
    samples: Sequence[FloatArray],
    *,
    n_sim: int = 2000,
    seed: int = 1,
) -> ModelScore:
    """The tests of one model at one level (see the module docstring).

    ``samples[t]`` is day t's forecast loss sample, from which Z2's null histories are drawn.
    """
    hits = realised > v
    kup = risk.kupiec_pof_varying(hits, p)
    chr_ = risk.christoffersen(hits, p)
    rng = np.random.default_rng([seed, round(alpha * 1e6)])
    sorted_samples = [np.sort(s) for s in samples]
    sizes = np.array([s.size for s in sorted_samples])
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    flat = np.concatenate(sorted_samples)
    shift = np.asarray(v * ((1.0 - alpha) - p), dtype=np.float64)
    observed = float(risk._z2(realised, v, e, alpha, shift))
    z_sim = np.empty(n_sim)
    chunk = max(1, 2_000_000 // max(1, realised.size))
    for a in range(0, n_sim, chunk):
        b = min(n_sim, a + chunk)
        idx = (rng.random((b - a, realised.size)) * sizes).astype(np.int64)
        sims = flat[offsets[:-1] + idx]
        z_sim[a:b] = risk._z2(sims, v, e, alpha, shift)
    z2 = risk._z2_test(observed, z_sim)
    last, worst, counts, last_x = traffic_light(hits, p)
    f = fz0(realised, v, e, alpha)
    ok = np.isfinite(f)
    return ModelScore(
        model=name,
        alpha=alpha,
        n=int(realised.size),
        exceptions=int(hits.sum()),
        expected=float(p.sum()),
        kupiec_stat=kup.statistic,
        kupiec_p=kup.p_value,
        christoffersen_ind_p=chr_.independence_p,
        christoffersen_cc_p=chr_.conditional_coverage_p,
        z2=z2.statistic,
        z2_p=z2.p_value,
        z2_critical=z2.critical_value,
        traffic_light=last,
        traffic_worst=worst,
        traffic_counts=counts,
        last_window_exceptions=last_x,
        fz0=float(np.mean(f[ok])) if ok.any() else math.nan,
        fz0_days=int(ok.sum()),
        fz0_vs={},
    )


def _compare_fz0(scores: dict[str, FloatArray]) -> dict[str, dict[str, float]]:
    """Mean FZ0 difference (model - baseline) on the days both are defined, with a
    Diebold-Mariano t statistic (Newey-West, 5 lags) and its two-sided p-value."""
    base = scores["model"]
    out: dict[str, dict[str, float]] = {}
    for name in BASELINES:
        other = scores.get(name)
        if other is None:
            continue
        ok = np.isfinite(base) & np.isfinite(other)
        d = base[ok] - other[ok]
        if d.size < 10:
            out[name] = {"diff": math.nan, "dm_t": math.nan, "dm_p": math.nan, "days": d.size}
            continue
        mean = float(d.mean())
        dc = d - mean
        lrv = float(dc @ dc) / d.size
        for lag in range(1, 6):
            lrv += 2.0 * (1.0 - lag / 6.0) * float(dc[lag:] @ dc[:-lag]) / d.size
        t = mean / math.sqrt(lrv / d.size) if lrv > 0 else 0.0
        out[name] = {
            "diff": mean,
            "dm_t": t,
            "dm_p": float(2.0 * stats.norm.sf(abs(t))),
            "days": int(d.size),
        }
    return out


# --------------------------------------------------------------------------- the run


@dataclass(frozen=True, slots=True, eq=False)
class BacktestResult:
    """Forecasts, realised losses and scores of a backtest.

    Attributes:
        dates: forecast dates (the day whose loss is forecast), ``datetime64[D]``, (T,).
        realised: realised loss of each day, USD, (T,).
        forecasts: ``{model: {alpha: (var, es, p_exception)}}``, each (T,).
        scores: one :class:`ModelScore` per model and level, the scenario first.
        meta: inputs and diagnostics (scenario, position, window, seed, refits, ...).
    """

    dates: npt.NDArray[np.datetime64]
    realised: FloatArray
    forecasts: dict[str, dict[float, tuple[FloatArray, FloatArray, FloatArray]]]
    scores: tuple[ModelScore, ...]
    meta: dict[str, Any]


def run_backtest(
    prices: PriceHistory,
    scenario: Scenario,
    position: Position,
    start: dt.date,
    end: dt.date,
    *,
    alphas: Sequence[float] = (0.975, 0.99),
    n_paths: int = 4096,
    seed: int = 1,
    step_days: int = 1,
    refit_days: int = 20,
    calibration: Literal["rolling", "fixed"] = "rolling",
    baselines: bool = True,
    n_sim: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> BacktestResult:
    """Roll the forecast date from ``start`` to ``end`` (inclusive) and score the forecasts.

    Args:
        prices: daily prices (:func:`read_prices`) of the position's symbols and of the
            series the scenario's factors need.
        scenario: a montecarlo or historical scenario of 24 hours.
        position: see :func:`parse_position`.
        start, end: first and last forecast date; a date's forecast uses prices dated
            strictly before it and is scored against that date's close (and low).
        alphas: VaR / ES confidence levels.
        n_paths: scenario paths per forecast (and points of the GARCH-t baseline's grid).
        seed: the run's seed; each date's paths use a seed derived from it and the date.
        step_days: days between forecast dates.
        refit_days: days between refits of GARCH / t / correlation parameters (the
            conditional variance is filtered every day).
        calibration: ``rolling`` recalibrates a fixed Monte Carlo regime on the trailing
            window (the regime's own window length) as of each date, and refits a
            conditional scenario's GARCH parameters; ``fixed`` keeps the file's numbers
            (a conditional scenario still filters its variance daily).
        baselines: compute the GARCH-t and 250-day historical-simulation baselines.
        n_sim: simulated histories for the Z2 p-values.
        progress: called with the number of dates done since the last call.
    """
    alphas = tuple(float(risk._check_alpha(a, "alpha")) for a in alphas)
    if not alphas:
        raise InputError("--alpha: give at least one level")
    for name, value, lo in (("n_paths", n_paths, 2), ("step_days", step_days, 1),
                            ("refit_days", refit_days, 1), ("n_sim", n_sim, 10)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < lo:
            raise InputError(f"{name}: expected an integer >= {lo}, got {value!r}")
    if end < start:
        raise InputError(f"--to {end} is before --from {start}")
    cols = [prices.column(s) for s in position.symbols]
    close = prices.close[:, cols]
    low = np.where(np.isfinite(prices.low[:, cols]), prices.low[:, cols], close)
    ratio = np.full_like(close, np.nan)
    ratio[1:] = close[1:] / close[:-1]
    low_ratio = np.full_like(close, np.nan)
    low_ratio[1:] = low[1:] / close[:-1]
    realised_all = position.day_losses(ratio, low_ratio)
    d0 = prices.dates
    lo_i = int(np.searchsorted(d0, np.datetime64(start.isoformat(), "D")))
    hi_i = int(np.searchsorted(d0, np.datetime64(end.isoformat(), "D"), side="right"))
    rows = [i for i in range(max(lo_i, 1), hi_i, step_days) if np.isfinite(realised_all[i])]
    if not rows:
        raise InputError(
            f"no day in {start}..{end} has prices of {', '.join(position.symbols)} on it and "
            f"the day before (the prices cover {d0[0]}..{d0[-1]})"
        )
    model = _ScenarioModel(
        scenario, position, prices, n_paths=n_paths, seed=seed, refit_days=refit_days,
        calibration=calibration,
    )  # fmt: skip
    models: list[tuple[str, Any]] = [("model", model)]
    if baselines:
        if position.kind == "linear":
            driver = -realised_all
        else:
            r = np.log(ratio[:, 0]) - (np.log(ratio[:, 1]) if ratio.shape[1] > 1 else 0.0)
            driver = np.asarray(r, dtype=np.float64)
        models.append(("garch-t", _GarchT(position, driver, n_paths, refit_days)))
        models.append(("hs250", _HistSim(realised_all)))
    t = len(rows)
    fc = {name: {a: (np.empty(t), np.empty(t), np.empty(t)) for a in alphas} for name, _ in models}
    samples: dict[str, list[FloatArray]] = {name: [] for name, _ in models}
    for k, i in enumerate(rows):
        day = d0[i]
        for name, m in models:
            x = m.forecast(i, day)
            samples[name].append(x.astype(np.float32))
            for a in alphas:
                tail = risk._tail_unweighted(x, a)
                fc[name][a][0][k] = tail.var
                fc[name][a][1][k] = tail.es
                fc[name][a][2][k] = float(np.count_nonzero(x > tail.var)) / x.size
        if progress is not None:
            progress(1)
    realised = realised_all[rows]
    scores: list[ModelScore] = []
    for a in alphas:
        fzs: dict[str, FloatArray] = {}
        level: list[ModelScore] = []
        for name, _ in models:
            v, e, p = fc[name][a]
            level.append(
                score(name, a, realised, v, e, p,
                      [s.astype(np.float64) for s in samples[name]], n_sim=n_sim, seed=seed)
            )  # fmt: skip
            fzs[name] = fz0(realised, v, e, a)
        level[0] = replace(level[0], model=model.name, fz0_vs=_compare_fz0(fzs))
        scores.extend(level)
    meta: dict[str, Any] = {
        "scenario": scenario.name,
        "scenario_kind": scenario.kind,
        "scenario_file": scenario.file,
        "position": position.text,
        "position_kind": position.kind,
        "symbols": list(position.symbols),
        "factors": list(model.factors),
        "from": str(d0[rows[0]]),
        "to": str(d0[rows[-1]]),
        "n_forecasts": t,
        "alphas": list(alphas),
        "paths": n_paths,
        "seed": seed,
        "step_days": step_days,
        "horizon_days": 1,
        "refit_days": refit_days,
        "calibration": calibration,
        "n_sim": n_sim,
        "refits": model.counters.refits,
        "dof_fits_at_bound": model.counters.dof_at_bound,
        "prices": list(dict.fromkeys(prices.sources)),
        "lows_used": bool(np.isfinite(prices.low[:, cols[0]]).any()),
        "baselines": [n for n, _ in models[1:]],
    }
    return BacktestResult(d0[rows], realised, fc, tuple(scores), meta)


# --------------------------------------------------------------------------- results directory

#: Files of a backtest results directory.
BACKTEST_FILES: tuple[str, ...] = ("backtest.json", "forecasts.parquet")

#: Layout version of ``backtest.json``.
BACKTEST_FORMAT = 1


def _clean(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def summary_dict(result: BacktestResult) -> dict[str, Any]:
    """``backtest.json``: inputs, diagnostics and the test table (JSON-ready)."""
    out: dict[str, Any] = _clean(
        {
            "kind": "backtest",
            "backtest_format": BACKTEST_FORMAT,
            **result.meta,
            "tests": [s.to_dict() for s in result.scores],
        }
    )
    return out


def check_backtest_target(path: str | Path) -> Path:
    """``path`` if a backtest may be written there, else ``InputError`` saying why not."""
    from simulator.atomic import replaceable_directory_problem

    problem = replaceable_directory_problem(path, BACKTEST_FILES, "backtest")
    if problem is not None:
        raise InputError(problem)
    return Path(path)


def save_backtest(
    result: BacktestResult, path: str | Path, extra: dict[str, Any] | None = None
) -> Path:
    """Write ``backtest.json`` and ``forecasts.parquet`` (one row per date, model and level:
    VaR, ES, P(L > VaR), realised loss, exception) atomically into ``path``."""
    import pandas as pd

    from simulator.atomic import atomic_directory, atomic_write_json, write_parquet

    check_backtest_target(path)
    frames = []
    for model, levels in result.forecasts.items():
        label = result.meta["scenario"] if model == "model" else model
        for a, (v, e, p) in levels.items():
            frames.append(
                pd.DataFrame(
                    {
                        "date": result.dates.astype("datetime64[ns]"),
                        "model": label,
                        "alpha": a,
                        "var": v,
                        "es": e,
                        "p_exception": p,
                        "realised": result.realised,
                        "exception": result.realised > v,
                    }
                )
            )
    summary = summary_dict(result)
    if extra:
        summary.update(_clean(extra))
    with atomic_directory(path) as tmp:
        atomic_write_json(tmp / "backtest.json", summary)
        write_parquet(pd.concat(frames, ignore_index=True), tmp / "forecasts.parquet")
    return Path(path)


def is_backtest_dir(path: str | Path) -> bool:
    """Whether ``path`` is a directory written by :func:`save_backtest`."""
    return (Path(path) / "backtest.json").is_file()


def load_backtest(path: str | Path) -> tuple[dict[str, Any], Any]:
    """``(backtest.json as a dict, forecasts DataFrame)``; ``InputError`` naming the file."""
    import json

    import pandas as pd

    base = Path(path)
    try:
        summary = json.loads((base / "backtest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{base / 'backtest.json'}: cannot read ({exc})") from None
    if not isinstance(summary, dict) or summary.get("kind") != "backtest":
        raise InputError(f"{base / 'backtest.json'}: not a backtest summary (no kind = backtest)")
    try:
        frame = pd.read_parquet(base / "forecasts.parquet")
    except (OSError, ValueError) as exc:
        raise InputError(f"{base / 'forecasts.parquet'}: cannot read ({exc})") from None
    missing = {"date", "model", "alpha", "var", "es", "realised", "exception"} - set(frame.columns)
    if missing:
        raise InputError(f"{base / 'forecasts.parquet'}: missing columns {sorted(missing)}")
    return summary, frame


def format_table(scores: Sequence[ModelScore | dict[str, Any]]) -> str:
    """The test table as plain text (what the CLI prints and the README shows)."""
    head = (
        f"{'model':<16} {'alpha':>6} {'exc':>4} {'exp':>6} {'Kupiec p':>9} {'Chr.ind p':>9} "
        f"{'Chr.cc p':>9} {'Z2':>7} {'Z2 p':>7} {'Z2 5%':>7} {'FRTB last/worst':>16} {'FZ0':>8}"
    )
    lines = [head, "-" * len(head)]
    for s in scores:
        d = s.to_dict() if isinstance(s, ModelScore) else s

        def g(k: str, fmt: str, d: dict[str, Any] = d) -> str:
            v = d.get(k)
            return format(v, fmt) if isinstance(v, int | float) else "n/a"

        lines.append(
            f"{d['model']:<16} {d['alpha']:>6.3g} {d['exceptions']:>4} {g('expected', '6.1f')} "
            f"{g('kupiec_p', '9.3g')} {g('christoffersen_ind_p', '9.3g')} "
            f"{g('christoffersen_cc_p', '9.3g')} {g('z2', '7.3f')} {g('z2_p', '7.3g')} "
            f"{g('z2_critical', '7.3f')} {d['traffic_light'] + '/' + d['traffic_worst']:>16} "
            f"{g('fz0', '8.4f')}"
        )
    return "\n".join(lines)
