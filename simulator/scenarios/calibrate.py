"""Calibration from price histories: Monte Carlo parameters, GARCH fits, bootstrap returns.

Everything here takes an ``as_of`` date and uses only observations strictly before it, so
a calibration can be backtested honestly. The shipped scenario files carry the numbers
this module produced (see ``scenarios/default.toml``); nothing here is needed at run time
unless a ``historical`` scenario points at a user's CSV. ``python -m
simulator.scenarios.calibrate --help`` recalibrates a Monte Carlo scenario from a CSV.

Price CSV format: one ``date`` column (ISO dates) and one column per factor or symbol with
prices (any positive unit; spread factors such as ``LST`` are ratios, e.g. stETH/ETH).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from simulator.errors import NumericalWarning, ScenarioError
from simulator.scenarios.assets import SPREAD_FACTORS

__all__ = [
    "DOF_BOUNDS",
    "ConditionalFit",
    "GarchFit",
    "History",
    "PriceTable",
    "RegimeFit",
    "calibrate_conditional",
    "calibrate_regime",
    "conditional_toml",
    "fit_garch",
    "fit_garch11",
    "fit_standardized_t_dof",
    "fit_t_dof",
    "history_returns",
    "nearest_correlation",
    "read_close_files",
    "read_price_csv",
    "regime_toml",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True, eq=False)
class PriceTable:
    """Prices on a date grid. ``values`` has shape ``(n_dates, n_series)``, NaN where missing."""

    dates: npt.NDArray[np.datetime64]
    names: tuple[str, ...]
    values: FloatArray

    def select(self, names: Sequence[str]) -> PriceTable:
        idx = [self.names.index(n) for n in names]
        return PriceTable(self.dates, tuple(names), self.values[:, idx])


@dataclass(frozen=True, slots=True, eq=False)
class History:
    """Joint log-returns strictly before the as-of date.

    Attributes:
        factors: series names, in column order.
        returns: log-returns, shape ``(T, n_factors)``; only rows where every series has
            both prices and the spacing is regular.
        obs_seconds: spacing of the observations, seconds.
        first, last: dates of the first and last price used.
    """

    factors: tuple[str, ...]
    returns: FloatArray
    obs_seconds: float
    first: dt.date
    last: dt.date


def _to_date(d: np.datetime64) -> dt.date:
    return dt.date.fromisoformat(str(np.datetime_as_string(d, unit="D")))


def read_price_csv(
    path: str | Path, *, date_column: str = "date", columns: Sequence[str] | None = None
) -> PriceTable:
    """Read a price CSV: a date column plus one numeric column per series.

    Raises:
        ScenarioError: missing file or column, unparsable dates, duplicate dates or
            non-positive or infinite prices, naming the file and the column.
    """
    import pandas as pd

    path = Path(path)
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such price file") from None
    except (OSError, ValueError) as exc:
        raise ScenarioError(f"{path}: cannot read as CSV: {exc}") from None
    if date_column not in df.columns:
        raise ScenarioError(
            f"{path}: no date column {date_column!r}; columns are {list(df.columns)}"
        )
    try:
        dates = pd.to_datetime(df[date_column], utc=True).dt.tz_localize(None)
    except (ValueError, TypeError) as exc:
        raise ScenarioError(f"{path}: column {date_column!r}: unparsable dates ({exc})") from None
    names = [c for c in df.columns if c != date_column] if columns is None else list(columns)
    if not names:
        raise ScenarioError(f"{path}: no price columns besides {date_column!r}")
    for name in names:
        if name not in df.columns:
            raise ScenarioError(f"{path}: no column {name!r}; columns are {list(df.columns)}")
    values = np.empty((len(df), len(names)))
    for j, name in enumerate(names):
        col = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=np.float64)
        unreadable = np.isnan(col) & df[name].notna().to_numpy()
        if unreadable.any():
            i = int(np.flatnonzero(unreadable)[0])
            raise ScenarioError(
                f"{path}: column {name!r}, row {i + 2}: {df[name].iloc[i]!r} is not a number; "
                "prices must be numbers > 0 (leave the cell empty where there is no price)"
            )
        bad = ~np.isnan(col) & ~((col > 0.0) & np.isfinite(col))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ScenarioError(
                f"{path}: column {name!r}, row {i + 2}: price {col[i]:g}; prices must be "
                "finite numbers > 0"
            )
        values[:, j] = col
    order = np.argsort(dates.to_numpy(), kind="stable")
    d = dates.to_numpy()[order].astype("datetime64[s]")
    if len(d) > 1 and (np.diff(d) <= np.timedelta64(0, "s")).any():
        i = int(np.flatnonzero(np.diff(d) <= np.timedelta64(0, "s"))[0])
        raise ScenarioError(f"{path}: duplicate date {d[i]}")
    return PriceTable(d, tuple(names), values[order])


def read_close_files(files: Mapping[str, str | Path]) -> PriceTable:
    """Join single-asset OHLC files (``date,open,high,low,close,volume``) on date.

    ``files`` maps a series name to a path; the ``close`` column is used.
    """
    import pandas as pd

    frames = []
    for name, path in files.items():
        df = pd.read_csv(path, usecols=["date", "close"], parse_dates=["date"])
        frames.append(df.set_index("date")["close"].rename(name))
    joined = pd.concat(frames, axis=1, sort=True)
    return PriceTable(
        joined.index.to_numpy().astype("datetime64[s]"),
        tuple(files),
        joined.to_numpy(dtype=np.float64),
    )


def history_returns(
    prices: PriceTable, *, as_of: dt.date, window_days: int | None = None
) -> History:
    """Joint log-returns from prices dated strictly before ``as_of`` (and, with
    ``window_days``, on or after ``as_of - window_days``).

    Only rows where every series has a price are used, and only returns between rows one
    regular spacing apart (the median spacing), so a gap never becomes one giant return.
    """
    cut = np.datetime64(as_of.isoformat(), "s")
    keep = prices.dates < cut
    if window_days is not None:
        keep &= prices.dates >= cut - np.timedelta64(window_days, "D")
    keep &= ~np.isnan(prices.values).any(axis=1)
    d = prices.dates[keep]
    v = prices.values[keep]
    if len(d) < 3:
        window = f" within the {window_days} days" if window_days is not None else ""
        raise ScenarioError(
            f"fewer than 3 dates{window} before {as_of} with a price for every one of "
            f"{', '.join(prices.names)} (got {len(d)})"
        )
    spacing = np.diff(d).astype(np.float64)
    obs = float(np.median(spacing))
    regular = np.isclose(spacing, obs)
    r = np.diff(np.log(v), axis=0)[regular]
    return History(prices.names, np.ascontiguousarray(r), obs, _to_date(d[0]), _to_date(d[-1]))


# ----------------------------------------------------------------------------------------
# GARCH


@dataclass(frozen=True, slots=True, eq=False)
class GarchFit:
    """Per-factor GJR-GARCH(1,1) fits.

    Attributes:
        params: rows ``mu, omega, alpha, gamma, beta, sigma2_next, scale``, shape
            ``(7, n_factors)``; the model is fitted to ``returns * scale`` (each series
            rescaled to a standard deviation of 10 so the optimiser is well conditioned)
            and ``sigma2_next`` is the variance forecast for the first day after the data,
            in those units.
        std_resid: standardised residuals, shape ``(T, n_factors)``.
    """

    params: FloatArray
    std_resid: FloatArray


def fit_garch(
    returns: FloatArray,
    *,
    dist: Literal["normal", "t"] = "normal",
    names: Sequence[str] | None = None,
) -> GarchFit:
    """Fit a constant-mean GJR-GARCH(1,1) to each column of ``returns`` with ``arch``.

    Optimiser trouble is reported as :class:`~simulator.errors.NumericalWarning` naming
    the column, never silenced.

    Args:
        returns: log-returns, shape ``(T, n_factors)``.
        dist: innovation distribution of the quasi-likelihood.
        names: column names for messages (default ``column 0``, ``column 1``, ...).

    Raises:
        ScenarioError: a column is constant (no volatility to model) or the fit gives
            non-finite parameters or residuals.
    """
    from arch import arch_model

    t, f = returns.shape
    label = [f"column {j}" for j in range(f)] if names is None else [repr(n) for n in names]
    params = np.empty((7, f))
    resid = np.empty((t, f))
    for j in range(f):
        col = returns[:, j]
        sd = float(col.std())
        if not sd > 0.0:
            raise ScenarioError(
                f"{label[j]}: all {t} returns are equal (a constant price?); a GARCH "
                'volatility cannot be fitted (use method = "bootstrap" or drop the column)'
            )
        scale = 10.0 / sd
        y = col * scale
        model = arch_model(y, mean="Constant", vol="GARCH", p=1, o=1, q=1, dist=dist, rescale=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = model.fit(disp="off", show_warning=False)
        for w in caught:
            warnings.warn(f"GARCH fit of {label[j]}: {w.message}", NumericalWarning, stacklevel=2)
        if res.convergence_flag != 0:
            warnings.warn(
                f"GARCH fit of {label[j]} did not converge (flag {res.convergence_flag})",
                NumericalWarning,
                stacklevel=2,
            )
        p = res.params
        mu, omega = float(p["mu"]), float(p["omega"])
        alpha, gamma, beta = float(p["alpha[1]"]), float(p["gamma[1]"]), float(p["beta[1]"])
        cv = np.asarray(res.conditional_volatility, dtype=np.float64)
        e = y - mu
        resid[:, j] = e / cv
        s2 = omega + (alpha + gamma * (e[-1] < 0)) * e[-1] ** 2 + beta * cv[-1] ** 2
        params[:, j] = (mu, omega, alpha, gamma, beta, s2, scale)
        if not (np.isfinite(params[:, j]).all() and np.isfinite(resid[:, j]).all() and s2 > 0):
            raise ScenarioError(
                f"{label[j]}: the GARCH fit failed (mu={mu!r}, omega={omega!r}, "
                f"alpha={alpha!r}, gamma={gamma!r}, beta={beta!r}); check the prices, or use "
                'method = "bootstrap"'
            )
    return GarchFit(params, resid)


#: Largest ``alpha + beta`` of :func:`fit_garch11` (a half-life of volatility shocks of
#: about 140 days); more persistent fits are shrunk to it.
MAX_PERSISTENCE = 0.995


def fit_garch11(returns: FloatArray, name: str = "returns") -> tuple[float, float, float]:
    """Zero-mean GARCH(1,1) of daily log-returns (Gaussian quasi-likelihood, ``arch``).

    ``alpha`` and ``beta`` are the quasi-maximum-likelihood estimates (their sum capped at
    :data:`MAX_PERSISTENCE`); ``omega`` is set by variance targeting, so the long-run
    variance ``omega / (1 - alpha - beta)`` is the sample mean square of the returns: a
    near-integrated fit (stablecoins, the LST ratio) cannot imply an absurd long-run level.

    Returns ``(omega, alpha, beta)`` in daily-variance units of the log-returns, the model
    ``sigma2_{t+1} = omega + alpha r_t^2 + beta sigma2_t`` (see
    :class:`~simulator.scenarios.model.ConditionalSpec`). Optimiser warnings are re-issued
    as :class:`~simulator.errors.NumericalWarning` naming ``name``.

    Raises:
        ScenarioError: fewer than 100 returns, constant returns, or a failed fit.
    """
    from arch import arch_model

    r = np.asarray(returns, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size < 100:
        raise ScenarioError(f"{name}: only {r.size} returns; a GARCH(1,1) fit needs 100")
    sd = float(r.std())
    if not sd > 0.0:
        raise ScenarioError(f"{name}: all {r.size} returns are equal; no GARCH can be fitted")
    scale = 10.0 / sd
    model = arch_model(r * scale, mean="Zero", vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(disp="off", show_warning=False)
    for w in caught:
        warnings.warn(f"GARCH(1,1) fit of {name}: {w.message}", NumericalWarning, stacklevel=2)
    p = res.params
    alpha, beta = float(p["alpha[1]"]), float(p["beta[1]"])
    if not (np.isfinite([alpha, beta]).all() and alpha >= 0.0 and beta >= 0.0):
        raise ScenarioError(f"{name}: the GARCH(1,1) fit failed (alpha={alpha!r}, beta={beta!r})")
    if alpha + beta > MAX_PERSISTENCE:  # (near-)integrated: keep a finite long-run variance
        shrink = MAX_PERSISTENCE / (alpha + beta)
        alpha, beta = alpha * shrink, beta * shrink
    omega = (1.0 - alpha - beta) * float(np.mean(r * r))  # variance targeting
    return omega, alpha, beta


# ----------------------------------------------------------------------------------------
# Monte Carlo regimes


def nearest_correlation(corr: FloatArray, floor: float = 0.0) -> FloatArray:
    """The correlation matrix closest to ``corr`` with eigenvalues >= ``floor``
    (eigenvalue clipping, then rescaling to a unit diagonal)."""
    sym = (corr + corr.T) / 2.0
    w, v = np.linalg.eigh(sym)
    fixed = (v * np.maximum(w, floor)) @ v.T
    d = np.sqrt(np.diag(fixed))
    out: FloatArray = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


#: Bounds of the fitted Student-t degrees of freedom (finite variance needs > 2).
DOF_BOUNDS: tuple[float, float] = (2.5, 100.0)


def fit_t_dof(z: FloatArray) -> float:
    """Maximum-likelihood Student-t degrees of freedom of standardised data (location 0).

    The estimate is clipped to :data:`DOF_BOUNDS` ``(2.5, 100)``: below 2.5 the variance
    (the scale the regimes are written in) is barely finite, above 100 the law is normal
    for every practical purpose. A clipped estimate is reported with a
    :class:`~simulator.errors.NumericalWarning` naming the raw MLE, because it means the
    sample's tails are heavier (or lighter) than the model can say.
    """
    from scipy import stats

    df, _, _ = stats.t.fit(z, floc=0.0)
    lo, hi = DOF_BOUNDS
    raw = float(df)
    if not lo <= raw <= hi:
        warnings.warn(
            f"Student-t fit: the MLE degrees of freedom {raw:.3g} of {len(z)} returns is "
            f"outside [{lo:g}, {hi:g}]; using {min(max(raw, lo), hi):g}",
            NumericalWarning,
            stacklevel=2,
        )
    return float(np.clip(raw, lo, hi))


def fit_standardized_t_dof(z: FloatArray) -> float:
    """Maximum-likelihood dof of a *unit-variance* Student-t for standardised data.

    The Monte Carlo kernel draws ``sqrt((dof - 2) / W) x normal``, a t law scaled to unit
    variance, so the dof that belongs with a volatility forecast is the one of that law
    (``arch``'s standardised t), not of a t with a free scale (:func:`fit_t_dof`), which
    can put heavy tails on a body far narrower than the variance says. Bounded by
    :data:`DOF_BOUNDS`, with a :class:`~simulator.errors.NumericalWarning` at a bound.
    """
    from scipy import optimize, stats

    x = np.asarray(z, dtype=np.float64)
    x = x[np.isfinite(x)]
    lo, hi = DOF_BOUNDS

    def nll(log_nu: float) -> float:
        nu = 2.0 + math.exp(log_nu)
        c = math.sqrt((nu - 2.0) / nu)
        return -float(np.sum(stats.t.logpdf(x / c, nu))) + x.size * math.log(c)

    res = optimize.minimize_scalar(
        nll,
        bounds=(math.log(lo - 2.0) - 1.0, math.log(hi - 2.0) + 1.0),
        method="bounded",
        options={"xatol": 1e-6},
    )
    raw = 2.0 + math.exp(float(res.x))
    if not lo <= raw <= hi:
        warnings.warn(
            f"standardised Student-t fit: the MLE degrees of freedom {raw:.3g} of {x.size} "
            f"returns is outside [{lo:g}, {hi:g}]; using {min(max(raw, lo), hi):g}",
            NumericalWarning,
            stacklevel=2,
        )
    return float(min(max(raw, lo), hi))


@dataclass(frozen=True, slots=True)
class RegimeFit:
    """A calibrated Monte Carlo regime, ready to be written as TOML."""

    name: str
    factors: tuple[str, ...]
    vol_daily: tuple[float, ...]
    corr: tuple[tuple[float, ...], ...]
    dof: float
    as_of: dt.date
    window: tuple[str, str]
    notes: str


def calibrate_regime(
    prices: PriceTable,
    *,
    name: str,
    as_of: dt.date,
    start: dt.date,
    min_obs: int = 250,
) -> RegimeFit:
    """Daily volatilities, correlations and a Student-t dof from log-returns of ``prices``
    dated in ``[start, as_of)``.

    Each factor's volatility uses its returns in the window. A factor with fewer than
    ``min_obs`` returns there (a series that ends early) uses its last ``(as_of - start)``
    days of data instead, and its correlations are measured over that span. Correlations
    are pairwise-complete, repaired to the nearest PSD matrix if needed. The dof is the
    MLE over the pooled, volatility-standardised returns of the non-spread factors.
    """
    span = (as_of - start).days
    cut = np.datetime64(as_of.isoformat(), "s")
    lo = np.datetime64(start.isoformat(), "s")
    dates = prices.dates
    logp = np.log(prices.values)
    ret = np.full_like(logp, np.nan)
    ret[1:] = logp[1:] - logp[:-1]
    ret[1:][np.diff(dates) != np.timedelta64(86400, "s")] = np.nan
    own = np.zeros_like(ret, dtype=bool)
    fell_back: list[bool] = []
    notes: list[str] = []
    for j, f in enumerate(prices.names):
        ok = ~np.isnan(ret[:, j]) & (dates < cut)
        in_window = ok & (dates - np.timedelta64(1, "D") >= lo)
        fell_back.append(bool(in_window.sum() < min_obs))
        if not fell_back[-1]:
            own[:, j] = in_window
        else:
            last = dates[ok][-1] if ok.any() else cut
            fallback = ok & (dates > last - np.timedelta64(span, "D"))
            if fallback.sum() < min_obs:
                raise ScenarioError(
                    f"{f}: only {int(fallback.sum())} daily returns before {as_of}; need {min_obs}"
                )
            own[:, j] = fallback
            notes.append(
                f"{f}: data ends {_to_date(last)}; vol and correlations over "
                f"{_to_date(dates[fallback][0])}..{_to_date(last)}"
            )
    f_n = len(prices.names)
    vol = np.array([np.std(ret[own[:, j], j], ddof=1) for j in range(f_n)])
    corr = np.eye(f_n)
    for i in range(f_n):
        for j in range(i + 1, f_n):
            if fell_back[i] or fell_back[j]:
                sel = ~np.isnan(ret[:, i]) & ~np.isnan(ret[:, j]) & (dates < cut)
                if fell_back[i]:
                    sel &= own[:, i]
                if fell_back[j]:
                    sel &= own[:, j]
            else:
                sel = own[:, i] & own[:, j]
            if sel.sum() < 30:
                raise ScenarioError(
                    f"{prices.names[i]} and {prices.names[j]} overlap on {int(sel.sum())} days; need 30"
                )
            corr[i, j] = corr[j, i] = float(np.corrcoef(ret[sel, i], ret[sel, j])[0, 1])
    if np.linalg.eigvalsh(corr).min() < 1e-6:
        corr = nearest_correlation(corr, floor=1e-6)
        notes.append("correlation repaired to the nearest positive-definite matrix")
    z = np.concatenate(
        [ret[own[:, j], j] / vol[j] for j, f in enumerate(prices.names) if f not in SPREAD_FACTORS]
    )
    dof = fit_t_dof(z) if len(z) else 5.0
    return RegimeFit(
        name=name,
        factors=prices.names,
        vol_daily=tuple(round(float(v), 6) for v in vol),
        corr=tuple(tuple(round(float(c), 4) for c in row) for row in corr),
        dof=round(dof, 2),
        as_of=as_of,
        window=(start.isoformat(), (as_of - dt.timedelta(days=1)).isoformat()),
        notes="; ".join(notes),
    )


@dataclass(frozen=True, slots=True)
class ConditionalFit:
    """A market-conditional Monte Carlo calibration (``[conditional]`` plus its regime)."""

    factors: tuple[str, ...]
    omega: tuple[float, ...]
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    regime: RegimeFit
    intraday_scale: float
    windows: tuple[str, ...]


#: Paths and seed of the intraday-scale calibration (deterministic).
_WICK_PATHS, _WICK_SEED = 20_000, 20_240_630


def calibrate_conditional(
    prices: PriceTable,
    *,
    as_of: dt.date,
    start: dt.date,
    lows: Mapping[str, tuple[npt.NDArray[np.datetime64], FloatArray, FloatArray]] | None = None,
    n_steps: int = 24,
) -> ConditionalFit:
    """GARCH(1,1) per factor, correlation and Student-t dof of the standardised returns, and
    the intraday scale of the wicks, from daily data in ``[start, as_of)``.

    Each factor's GARCH(1,1) (:func:`fit_garch11`) uses all its daily returns in the
    window (series start and end at different dates). The regime's ``vol_daily`` is the
    long-run volatility ``sqrt(omega / (1 - alpha - beta))`` (what the scenario uses with no
    history), its correlation the pairwise-complete correlation of the standardised
    returns, its dof the MLE over the pooled standardised returns of the non-spread
    factors (a unit-variance t, :func:`fit_standardized_t_dof`). ``lows`` maps factors to ``(dates, close, low)`` daily arrays: the intraday
    scale ``k`` makes the model's mean downside excursion of a day below
    ``min(open, close)``, in units of the day's conditional volatility, equal to the data's
    (pooled over those factors); with an hourly random walk (``k = 1``) it is ~30% short.
    """
    from simulator.scenarios import generate as gen
    from simulator.scenarios.model import garch_filter

    cut = np.datetime64(as_of.isoformat(), "s")
    lo = np.datetime64(start.isoformat(), "s")
    dates = prices.dates
    logp = np.log(prices.values)
    ret = np.full_like(logp, np.nan)
    ret[1:] = logp[1:] - logp[:-1]
    ret[1:][np.diff(dates) != np.timedelta64(86400, "s")] = np.nan
    inside = (dates < cut) & (dates - np.timedelta64(1, "D") >= lo)
    f_n = len(prices.names)
    z = np.full_like(ret, np.nan)
    params: list[tuple[float, float, float]] = []
    windows: list[str] = []
    for j, name in enumerate(prices.names):
        ok = inside & np.isfinite(ret[:, j])
        r = ret[ok, j]
        om, a, b = fit_garch11(r, name=name)
        params.append((om, a, b))
        s2 = garch_filter(r, om, a, b, om / (1.0 - a - b))
        z[ok, j] = r / np.sqrt(s2[:-1])
        windows.append(f"{name}: {_to_date(dates[ok][0])}..{_to_date(dates[ok][-1])}")
    corr = np.eye(f_n)
    for i in range(f_n):
        for j in range(i + 1, f_n):
            sel = np.isfinite(z[:, i]) & np.isfinite(z[:, j])
            corr[i, j] = corr[j, i] = float(np.corrcoef(z[sel, i], z[sel, j])[0, 1])
    if np.linalg.eigvalsh(corr).min() < 1e-6:
        corr = nearest_correlation(corr, floor=1e-6)
    pooled = np.concatenate(
        [z[np.isfinite(z[:, j]), j] for j, f in enumerate(prices.names) if f not in SPREAD_FACTORS]
    )
    dof = fit_standardized_t_dof(pooled)
    scale = 1.0
    if lows:
        excursions = []
        for name, (d, close, low) in lows.items():
            j = prices.names.index(name)
            om, a, b = params[j]
            keep = (d < cut) & (d - np.timedelta64(1, "D") >= lo)
            c, lw = close[keep], low[keep]
            r = np.diff(np.log(c))
            sig = np.sqrt(garch_filter(r, om, a, b, om / (1.0 - a - b))[:-1])
            base = np.minimum(c[:-1], c[1:])
            excursions.append((np.log(base) - np.log(np.minimum(lw[1:], base))) / sig)
        data = float(np.mean(np.concatenate(excursions)))
        rng = np.random.default_rng(_WICK_SEED)
        lv = gen.montecarlo_block(rng, _WICK_PATHS, n_steps, 1.0 / n_steps, (1.0,), (0.0,),
                                  ((1.0,),), dof)  # fmt: skip
        model = float(np.mean(np.minimum(lv[:, 0, 0], lv[:, -1, 0]) - lv[:, :, 0].min(axis=1)))
        scale = data / model
    lr_vol = tuple(math.sqrt(o / (1.0 - a - b)) for o, a, b in params)
    regime = RegimeFit(
        name="normal",
        factors=prices.names,
        vol_daily=tuple(round(v, 6) for v in lr_vol),
        corr=tuple(tuple(round(float(c), 4) for c in row) for row in corr),
        dof=round(dof, 2),
        as_of=as_of,
        window=(start.isoformat(), (as_of - dt.timedelta(days=1)).isoformat()),
        notes="long-run GARCH volatility; correlation and dof of GARCH-standardised returns",
    )
    return ConditionalFit(
        factors=prices.names,
        omega=tuple(float(f"{o:.4e}") for o, _, _ in params),
        alpha=tuple(round(a, 4) for _, a, _ in params),
        beta=tuple(round(b, 4) for _, _, b in params),
        regime=regime,
        intraday_scale=round(scale, 2),
        windows=tuple(windows),
    )


def conditional_toml(fit: ConditionalFit) -> str:
    """The ``[conditional]`` table of a conditional calibration."""
    lines = ["[conditional]", 'model = "garch"']
    lines.append(f"# {', '.join(fit.factors)}")
    lines.append("omega = [" + ", ".join(f"{o:.4e}" for o in fit.omega) + "]")
    lines.append("alpha = [" + ", ".join(f"{a:.4f}" for a in fit.alpha) + "]")
    lines.append("beta = [" + ", ".join(f"{b:.4f}" for b in fit.beta) + "]")
    lines.append(f"intraday_scale = {fit.intraday_scale}")
    lines.append("max_gap_days = 3")
    lines.append(f'fitted = "{"; ".join(fit.windows)}"')
    return "\n".join(lines) + "\n"


def regime_toml(fit: RegimeFit) -> str:
    """The ``[regimes.NAME]`` table of a calibrated regime."""
    lines = [f"[regimes.{fit.name}]"]
    lines.append(f"as_of = {fit.as_of.isoformat()}")
    lines.append(f'window = ["{fit.window[0]}", "{fit.window[1]}"]')
    if fit.notes:
        lines.append(f'notes = "{fit.notes}"')
    lines.append(f"dof = {fit.dof}")
    lines.append(f"# {', '.join(fit.factors)}")
    lines.append("vol_daily = [" + ", ".join(f"{v:.6f}" for v in fit.vol_daily) + "]")
    lines.append("corr = [")
    for row in fit.corr:
        lines.append("  [" + ", ".join(f"{c: .4f}" for c in row) + "],")
    lines.append("]")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m simulator.scenarios.calibrate``: print [regimes] tables for a CSV."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator.scenarios.calibrate",
        description="Calibrate Monte Carlo regimes (daily vol, correlation, Student-t dof) "
        "from a price CSV (date column + one column per factor); prints TOML to paste into "
        "a montecarlo scenario file.",
        epilog="example: python -m simulator.scenarios.calibrate prices.csv --as-of 2024-06-17 "
        "--start 2022-06-17 --stressed 2022-05-01:2022-12-01",
    )
    parser.add_argument("csv", type=Path)
    parser.add_argument("--date-column", default="date")
    parser.add_argument("--as-of", required=True, type=dt.date.fromisoformat)
    parser.add_argument("--start", required=True, type=dt.date.fromisoformat)
    parser.add_argument(
        "--stressed", default=None, help="START:END of a stressed period (END exclusive)"
    )
    args: Any = parser.parse_args(argv)
    try:
        prices = read_price_csv(args.csv, date_column=args.date_column)
        print(f"factors = {json.dumps(list(prices.names))}\n")
        print(
            regime_toml(calibrate_regime(prices, name="normal", as_of=args.as_of, start=args.start))
        )
        if args.stressed:
            a, b = (dt.date.fromisoformat(x) for x in args.stressed.split(":"))
            print(
                regime_toml(calibrate_regime(prices, name="stressed", as_of=b, start=a, min_obs=60))
            )
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
