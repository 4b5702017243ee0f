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
    "GarchFit",
    "History",
    "PriceTable",
    "RegimeFit",
    "calibrate_regime",
    "fit_garch",
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
