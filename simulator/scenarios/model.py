"""Scenario objects: parsed and validated from TOML, and the paths they generate.

A scenario is one of three kinds:

``stress``
    deterministic paths: per-factor (and optionally per-asset) knots ``[hours, multiplier]``
    or the shorthand ``move`` / ``at_hours`` / ``recovery``; every row is the same path.
``montecarlo``
    correlated multi-factor log-returns with normal or Student-t innovations (the t mixing
    variable shared by the steps of a day, ``mixing = "day"``, so daily returns have the
    calibrated t law), per-factor daily volatility, optional Poisson jumps, and named
    calibration regimes (``normal``, ``stressed``) chosen by ``regime`` or by a
    ``NAME:REGIME`` scenario name. An optional ``[conditional]`` table makes it conditional
    on the market: per-factor GARCH(1,1) parameters whose one-day-ahead volatility,
    filtered from a price history the caller supplies (:meth:`Scenario.conditioned`),
    replaces the regime's ``vol_daily``; without a history the long-run volatility is used
    and a warning is logged. ``intraday_scale`` widens the intraday excursions (wicks).
``historical``
    block bootstrap or GARCH-filtered historical simulation from a price CSV (date column
    plus one column per factor), using only rows strictly before ``as_of``.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from simulator.errors import ScenarioError
from simulator.scenarios import generate as gen
from simulator.scenarios._fields import Table
from simulator.scenarios.assets import (
    BUILTIN_ASSETS,
    FACTORS,
    SPREAD_FACTORS,
    Term,
    lookup_symbol,
    resolve_symbols,
)
from simulator.scenarios.paths import AssetSpec, OracleSpec, PricePaths

__all__ = [
    "ConditionalSpec",
    "GasSpec",
    "HistoricalSpec",
    "JumpSpec",
    "Kind",
    "MonteCarloSpec",
    "Regime",
    "Scenario",
    "Shock",
    "StressSpec",
    "parse_scenario",
]

_LOG = logging.getLogger(__name__)
_WARNED: set[str] = set()


def _warn_unconditioned(name: str) -> None:
    """Log once per scenario name that a conditional scenario runs on long-run volatility."""
    if name in _WARNED:
        return
    _WARNED.add(name)
    _LOG.warning(
        "scenario %s is conditional on the market but no price history was given "
        "(Scenario.conditioned); its paths use the long-run volatility of its GARCH fit",
        name,
    )


Kind = Literal["stress", "montecarlo", "historical"]
KINDS: tuple[str, ...] = ("stress", "montecarlo", "historical")
FloatArray = npt.NDArray[np.float64]

_COMMON_KEYS = (
    "kind",
    "title",
    "description",
    "source",
    "notes",
    "n_steps",
    "step_seconds",
    "horizon_hours",
    "default_paths",
    "seed",
    "oracle",
    "markets",
    "gas",
    "proxies",
)
_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "stress": ("factors", "assets", "unlisted"),
    "montecarlo": (
        "factors",
        "innovations",
        "mixing",
        "regime",
        "regimes",
        "jumps",
        "calibration",
        "conditional",
    ),
    "historical": (
        "method",
        "csv",
        "date_column",
        "columns",
        "as_of",
        "window_days",
        "block_days",
        "garch_dist",
    ),
}


# ----------------------------------------------------------------------------------------
# value objects


@dataclass(frozen=True, slots=True)
class GasSpec:
    """Gas price during the scenario, gwei.

    Attributes:
        base_gwei: gas price before the shock, gwei.
        spike_gwei: extra gwei at full congestion.
        full_drawdown: drawdown of ``reference`` (fraction) at which the spike is full;
            ``gas = base + spike * min(1, drawdown / full_drawdown)``.
        reference: the factor whose drawdown drives congestion.
        knots: explicit ``(hours, gwei)`` path, linear between knots (overrides the
            drawdown rule; deterministic scenarios only).
    """

    base_gwei: float = 20.0
    spike_gwei: float = 0.0
    full_drawdown: float = 0.5
    reference: str = "ETH"
    knots: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Shock:
    """Deterministic path of one factor or asset.

    Attributes:
        knots: ``(hours, multiplier)`` pairs, linear in log price between them, flat after
            the last; multiplier 1 at hour 0 is implied.
        follow: instead of knots, follow this factor's log path times ``beta``.
        beta: loading on ``follow``.
    """

    knots: tuple[tuple[float, float], ...] = ()
    follow: str | None = None
    beta: float = 1.0


@dataclass(frozen=True, slots=True)
class StressSpec:
    """Deterministic stress: paths per factor and per directly stressed asset.

    Attributes:
        factors: ``(factor, shock)`` pairs.
        assets: ``(symbol, shock)`` pairs; the whole multiplier of that symbol (and of
            symbols that proxy it).
        unlisted: volatile factors not listed follow this factor (beta 1), or stay flat
            when ``None``. Spread factors (LST, STABLE) not listed always stay flat.
    """

    factors: tuple[tuple[str, Shock], ...]
    assets: tuple[tuple[str, Shock], ...] = ()
    unlisted: str | None = None


@dataclass(frozen=True, slots=True)
class Regime:
    """One calibration of the Monte Carlo parameters.

    Attributes:
        name: ``normal``, ``stressed`` or any label.
        vol_daily: standard deviation of daily log-returns per factor.
        drift_daily: mean daily log-return per factor (0 by default).
        corr: correlation matrix of the innovations, factors x factors.
        dof: Student-t degrees of freedom (> 2); ignored for normal innovations.
        as_of: calibration date (data strictly before it), informative.
        window: first and last day of the calibration data, informative.
        notes: how it was derived.
    """

    name: str
    vol_daily: tuple[float, ...]
    drift_daily: tuple[float, ...]
    corr: tuple[tuple[float, ...], ...]
    dof: float = 5.0
    as_of: dt.date | None = None
    window: tuple[str, ...] = ()
    notes: str = ""
    chol: tuple[tuple[float, ...], ...] = field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class JumpSpec:
    """Poisson jumps common to all factors.

    Attributes:
        intensity_per_day: expected number of jumps per day.
        mean: mean log size of one jump (negative for crashes).
        std: standard deviation of the log size of one jump.
        beta: loading of each factor on the jump, shape ``(n_factors,)``.
    """

    intensity_per_day: float
    mean: float
    std: float
    beta: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ConditionalSpec:
    """Market-conditional volatility of a Monte Carlo scenario (``[conditional]``).

    Per factor, a GARCH(1,1) on daily log-returns (zero mean),
    ``sigma2_{t+1} = omega + alpha r_t^2 + beta sigma2_t``, started at the long-run
    variance ``omega / (1 - alpha - beta)`` on the first return of the history and run
    through the last one before ``as_of``; the result replaces the regime's
    ``vol_daily`` (the regime's correlation and dof are those of the GARCH-standardised
    returns).

    Attributes:
        omega, alpha, beta: per factor, shape ``(n_factors,)``; daily-variance units.
        max_gap_days: the history must have a price no more than this many days before
            ``as_of`` (else the long-run volatility is used, with a warning).
        intraday_scale: factor on each day's excursion from the straight line between its
            open and close (1 = the plain random walk of the steps); > 1 gives wicks the
            hourly random walk misses.
        fitted: description of the fit (data, window), informative.
        conditioned_on: set by :meth:`Scenario.conditioned`: what history, through when;
            empty when not conditioned (the long-run volatility is used).
        regime: the regime it conditions (the file's ``regime``); other regimes, such as
            ``stressed``, stay fixed calibrations.
    """

    omega: tuple[float, ...]
    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    max_gap_days: int = 3
    intraday_scale: float = 1.0
    fitted: str = ""
    conditioned_on: str = ""
    regime: str = ""

    def long_run_vol(self) -> tuple[float, ...]:
        """``sqrt(omega / (1 - alpha - beta))`` per factor."""
        return tuple(
            math.sqrt(o / (1.0 - a - b))
            for o, a, b in zip(self.omega, self.alpha, self.beta, strict=True)
        )

    def filter(self, returns: FloatArray) -> FloatArray:
        """One-day-ahead volatility after ``returns`` (shape ``(T, n_factors)``; NaN rows of
        a factor are skipped for it), shape ``(n_factors,)``."""
        out = np.empty(len(self.omega))
        lr = self.long_run_vol()
        for j, (o, a, b) in enumerate(zip(self.omega, self.alpha, self.beta, strict=True)):
            r = returns[:, j]
            r = r[np.isfinite(r)]
            out[j] = math.sqrt(garch_filter(r, o, a, b, lr[j] ** 2)[-1])
        return out


def garch_filter(r: FloatArray, omega: float, alpha: float, beta: float, s0: float) -> FloatArray:
    """GARCH(1,1) variances ``sigma2_t`` for t = 0..T (``sigma2_0 = s0``; ``sigma2_T`` is the
    one-step-ahead forecast after the last return), shape ``(T + 1,)``. Linear recursion,
    evaluated with ``scipy.signal.lfilter``."""
    from scipy import signal

    x = np.empty(r.size + 1)
    x[0] = s0
    x[1:] = omega + alpha * r * r
    out: FloatArray = signal.lfilter([1.0], [1.0, -beta], x)
    return out


@dataclass(frozen=True, slots=True)
class MonteCarloSpec:
    """Parametric Monte Carlo over ``factors``.

    Attributes:
        factors: the factors generated, in the order of the regimes' vectors.
        innovations: ``student-t`` (multivariate, the regime's ``dof``) or ``normal``.
        regime: the active calibration (a name in ``regimes``).
        regimes: the calibrations (``normal``, ``stressed``, ...).
        jumps: optional Poisson jumps.
        calibration: how the regimes were derived, free text.
        mixing: which steps share the Student-t mixing variable: ``day`` (default: each
            day's log-return is Student-t with the regime's dof, as calibrated on daily
            returns) or ``step`` (each step is Student-t; a day of many steps is close to
            normal). See :func:`simulator.scenarios.generate.montecarlo_block`.
        conditional: GARCH volatility conditional on a price history, or ``None``.
    """

    factors: tuple[str, ...]
    innovations: Literal["student-t", "normal"]
    regime: str
    regimes: tuple[Regime, ...]
    jumps: JumpSpec | None = None
    calibration: str = ""
    mixing: Literal["day", "step"] = "day"
    conditional: ConditionalSpec | None = None

    @property
    def active(self) -> Regime:
        for r in self.regimes:
            if r.name == self.regime:
                return r
        raise ScenarioError(f"no regime {self.regime!r}")  # prevented by validation


@dataclass(frozen=True, slots=True, eq=False)
class HistoricalSpec:
    """Historical simulation from a price CSV, fitted at load time.

    Attributes:
        method: ``bootstrap`` (moving blocks of joint daily returns) or ``filtered``
            (GJR-GARCH(1,1)-filtered historical simulation).
        csv: the price file.
        as_of: only rows strictly before this date are used.
        factors: the CSV columns used, in order.
        obs_seconds: spacing of the data, seconds (86400 for daily).
        block_days: block length of the bootstrap, observations.
        returns: log-returns, shape ``(T, n_factors)`` (bootstrap) or standardised
            residuals (filtered).
        garch: per-factor ``mu, omega, alpha, gamma, beta, sigma2_next, scale``, shape
            ``(7, n_factors)`` (see :class:`~simulator.scenarios.calibrate.GarchFit`: fitted
            to log-returns x scale), for ``filtered``; ``None`` for ``bootstrap``.
        first, last: first and last date of the data used.
    """

    method: Literal["bootstrap", "filtered"]
    csv: str
    as_of: dt.date
    factors: tuple[str, ...]
    obs_seconds: float
    block_days: int
    returns: FloatArray
    garch: FloatArray | None
    first: dt.date
    last: dt.date
    window_days: int | None = None


Spec = StressSpec | MonteCarloSpec | HistoricalSpec


@dataclass(frozen=True, slots=True)
class Scenario:
    """A validated scenario. ``paths()`` turns it into price paths for a set of assets.

    Attributes:
        name: file stem, e.g. ``black-thursday-2020``.
        kind: ``stress``, ``montecarlo`` or ``historical``.
        title: one-line title.
        description: what the scenario represents.
        n_steps: number of time steps.
        step_seconds: length of a step, seconds.
        default_paths: paths to run when the user does not say (1 for stresses).
        seed: the scenario's default seed.
        oracle: oracle update rule.
        gas: gas price rule.
        markets: per-asset oracle feed and wider-market settings, ``(symbol, AssetSpec)``
            pairs (the file's ``[markets.SYMBOL]`` tables).
        proxies: the file's ``[proxies]`` table as ``(symbol, target)`` pairs.
        spec: kind-specific parameters.
        source: citations for the magnitudes.
        notes: free text: how the numbers were derived, caveats.
        file: where it was loaded from.
    """

    name: str
    kind: Kind
    title: str
    description: str
    n_steps: int
    step_seconds: float
    default_paths: int
    seed: int
    oracle: OracleSpec
    gas: GasSpec
    proxies: tuple[tuple[str, str | tuple[str, ...]], ...]
    spec: Spec
    source: tuple[str, ...] = ()
    notes: str = ""
    file: str = ""
    markets: tuple[tuple[str, AssetSpec], ...] = ()

    @property
    def horizon_hours(self) -> float:
        """Length of the scenario, hours."""
        return self.n_steps * self.step_seconds / 3600.0

    @property
    def deterministic(self) -> bool:
        return self.kind == "stress"

    @property
    def factors(self) -> tuple[str, ...]:
        """The factors (series) this scenario generates."""
        if isinstance(self.spec, StressSpec):
            return tuple(FACTORS)
        return self.spec.factors

    def with_regime(self, regime: str) -> Scenario:
        """The same Monte Carlo scenario with another calibration regime (e.g. ``stressed``).

        The result is named ``"NAME:REGIME"`` (``"default:stressed"``), which
        :func:`~simulator.scenarios.load_scenario` accepts, so results that record the
        name say which calibration produced them. The active regime returns ``self``.
        """
        if not isinstance(self.spec, MonteCarloSpec):
            raise ScenarioError(
                f"scenario {self.name!r} is {self.kind}; only montecarlo has regimes"
            )
        names = [r.name for r in self.spec.regimes]
        if regime not in names:
            raise ScenarioError(
                f"scenario {self.name!r} has no regime {regime!r}; it has {', '.join(names)}"
            )
        if regime == self.spec.regime:
            return self
        base = self.name.rpartition(":")[0] if ":" in self.name else self.name
        return replace(self, name=f"{base}:{regime}", spec=replace(self.spec, regime=regime))

    def conditioned(
        self,
        returns: FloatArray,
        factors: Sequence[str],
        as_of: dt.date,
        last: dt.date | None,
        source: str = "price history",
    ) -> Scenario:
        """This conditional Monte Carlo scenario with its volatility filtered from history.

        Args:
            returns: daily log-returns strictly before ``as_of``, shape ``(T, len(factors))``
                (NaN where a factor has no return that day).
            factors: the scenario factor of each column (a subset of ``self.factors``).
            as_of: the date the paths start (a snapshot's block date).
            last: the date of the last price in the history (``None``: no history).
            source: what the history is, for the record.

        Returns:
            The scenario with the active regime's ``vol_daily`` replaced, for the factors in
            ``factors``, by the GARCH one-day-ahead volatility, and ``conditioned_on`` set.
            A history that ends more than ``max_gap_days`` before ``as_of`` is not used: the
            long-run volatility stays and a warning is logged. Scenarios without a
            ``[conditional]`` table are returned unchanged.
        """
        spec = self.spec
        if not isinstance(spec, MonteCarloSpec) or spec.conditional is None:
            return self
        cond = spec.conditional
        if cond.regime != spec.active.name:
            return self  # a fixed calibration such as default:stressed
        unknown = [f for f in factors if f not in spec.factors]
        if unknown:
            raise ScenarioError(
                f"scenario {self.name!r}: no factor {unknown[0]!r}; it has {', '.join(spec.factors)}"
            )
        if last is None or (as_of - last).days > cond.max_gap_days or returns.shape[0] == 0:
            _LOG.warning(
                "scenario %s: no price history within %d days before %s (%s ends %s); using "
                "the long-run volatility, not one conditional on the market",
                self.name,
                cond.max_gap_days,
                as_of,
                source,
                last,
            )
            note = f"long-run volatility (no history within {cond.max_gap_days} days of {as_of})"
            return replace(self, spec=replace(spec, conditional=replace(cond, conditioned_on=note)))
        idx = [spec.factors.index(f) for f in factors]
        sub = ConditionalSpec(
            tuple(cond.omega[i] for i in idx),
            tuple(cond.alpha[i] for i in idx),
            tuple(cond.beta[i] for i in idx),
        )
        if cond.regime != spec.regime:  # pragma: no cover - prevented above
            return self
        vols = sub.filter(np.asarray(returns, dtype=np.float64))
        reg = spec.active
        vol = list(reg.vol_daily)
        for i, v in zip(idx, vols, strict=True):
            vol[i] = float(v)
        new_reg = replace(reg, vol_daily=tuple(vol), as_of=as_of)
        regimes = tuple(new_reg if r.name == reg.name else r for r in spec.regimes)
        note = f"{source} through {last} (as of {as_of}): {', '.join(factors)}"
        return replace(
            self,
            spec=replace(spec, regimes=regimes, conditional=replace(cond, conditioned_on=note)),
        )

    # ------------------------------------------------------------------------------------
    def resolve(self, symbols: Sequence[str]) -> list[tuple[Term, ...]]:
        """For each symbol, the factors (or stressed symbols) it follows; see ``assets``."""
        overrides = [s for s, _ in self.spec.assets] if isinstance(self.spec, StressSpec) else []
        return resolve_symbols(
            symbols,
            factors=self.factors,
            proxies=dict(self.proxies),
            overrides=overrides,
            scenario=self.name,
        )

    def factor_levels(
        self, n_paths: int, seed: int, *, start: int = 0, stop: int | None = None
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Log price levels of the factors, shape ``(rows, n_steps + 1, n_factors)``, and
        of directly stressed symbols (``{symbol: (n_steps + 1,)}``, stresses only).

        Deterministic scenarios return one row (broadcast it); random ones rows
        ``[start, stop)`` of the full ``n_paths`` generation.
        """
        start, stop = _check_rows(n_paths, seed, start, stop)
        spec = self.spec
        if isinstance(spec, StressSpec):
            return _stress_levels(self, spec)
        out = np.zeros((stop - start, self.n_steps + 1, len(spec.factors)))
        for a, z, part in self._blocks(seed, start, stop):
            out[a:z] = part
        return out, {}

    def _blocks(self, seed: int, start: int, stop: int) -> Iterator[tuple[int, int, FloatArray]]:
        """Factor log levels of rows ``[start, stop)``, one random block at a time, as
        ``(first, last)`` output rows (relative to ``start``) and the block's slice.

        Whole blocks of :data:`~simulator.scenarios.generate.BLOCK_PATHS` paths are always
        drawn, so a row's numbers never depend on ``start``, ``stop`` or ``n_paths``.
        """
        if stop <= start:
            return
        for b in range(start // gen.BLOCK_PATHS, (stop - 1) // gen.BLOCK_PATHS + 1):
            lo = b * gen.BLOCK_PATHS
            block = self._random_block(gen.block_generator(seed, b))
            a, z = max(start, lo), min(stop, lo + gen.BLOCK_PATHS)
            yield a - start, z - start, block[a - lo : z - lo]

    def _random_block(self, rng: np.random.Generator) -> FloatArray:
        spec = self.spec
        n = gen.BLOCK_PATHS
        if isinstance(spec, MonteCarloSpec):
            reg = spec.active
            jumps = spec.jumps
            cond = spec.conditional
            if cond is not None and cond.regime != reg.name:
                cond = None  # a fixed calibration (default:stressed)
            if cond is not None and not cond.conditioned_on:
                _warn_unconditioned(self.name)
            levels = gen.montecarlo_block(
                rng,
                n,
                self.n_steps,
                self.step_seconds / 86400.0,
                reg.vol_daily,
                reg.drift_daily,
                reg.chol,
                reg.dof if spec.innovations == "student-t" else None,
                jump_intensity_per_day=jumps.intensity_per_day if jumps else 0.0,
                jump_mean=jumps.mean if jumps else 0.0,
                jump_std=jumps.std if jumps else 0.0,
                jump_beta=jumps.beta if jumps else (),
                mixing=spec.mixing,
            )
            if cond is not None and cond.intraday_scale != 1.0:
                gen.scale_intraday(levels, self.step_seconds / 86400.0, cond.intraday_scale)
            return levels
        assert isinstance(spec, HistoricalSpec)
        per_obs = round(spec.obs_seconds / self.step_seconds)
        n_obs = -(-self.n_steps // per_obs)
        if spec.method == "bootstrap":
            r = gen.bootstrap_block(rng, spec.returns, n, n_obs, spec.block_days)
        else:
            g = spec.garch
            assert g is not None
            r = gen.fhs_block(
                rng, spec.returns, g[0], g[1], g[2], g[3], g[4], g[5], n, n_obs, spec.block_days
            )
            r /= g[6]  # fitted to returns x scale (unit-free, well conditioned)
        return gen.spread_substeps(r, per_obs, self.n_steps)

    def paths(
        self,
        symbols: Sequence[str],
        n_paths: int,
        seed: int,
        *,
        start: int = 0,
        stop: int | None = None,
        dtype: type[np.floating[Any]] = np.float64,
    ) -> PricePaths:
        """Price paths of ``symbols``: rows ``[start, stop)`` of an ``n_paths`` run.

        Args:
            symbols: asset symbols of the snapshot, in the order of the output's last axis.
            n_paths: number of paths of the whole run (deterministic kinds repeat one path).
            seed: non-negative integer; the same seed gives the same numbers whatever
                ``start``/``stop`` split the run (per-block streams, see ``generate``).
                Deterministic kinds ignore it.
            start, stop: rows to return; ``stop`` defaults to ``n_paths``.
            dtype: float type of ``multipliers`` (float32 halves memory).

        Returns:
            :class:`PricePaths` with ``multipliers`` of shape ``(stop - start,
            n_steps + 1, len(symbols))`` and ``gas_gwei`` of shape ``(stop - start,
            n_steps + 1)``.

        Raises:
            ScenarioError: a symbol cannot be mapped, or bad ``n_paths``/``seed``/rows.
        """
        start, stop = _check_rows(n_paths, seed, start, stop)
        symbols = tuple(symbols)
        terms = self.resolve(symbols)
        factor_index = {f: i for i, f in enumerate(self.factors)}
        rows, s1, n_assets = stop - start, self.n_steps + 1, len(symbols)
        if self.deterministic:
            levels, overrides = self.factor_levels(n_paths, seed)
            one = np.empty((1, s1, n_assets), dtype=dtype)
            self._assemble(levels, overrides, terms, factor_index, one)
            mult = np.ascontiguousarray(np.broadcast_to(one, (rows, s1, n_assets)))
            gas = np.ascontiguousarray(np.broadcast_to(self._gas(levels, factor_index), (rows, s1)))
        else:
            # block by block straight into the output: peak memory = output + one block
            mult = np.empty((rows, s1, n_assets), dtype=dtype)
            gas = np.empty((rows, s1))
            for a, z, part in self._blocks(seed, start, stop):
                self._assemble(part, {}, terms, factor_index, mult[a:z])
                gas[a:z] = self._gas(part, factor_index)
        return PricePaths(
            scenario=self.name,
            symbols=symbols,
            step_seconds=float(self.step_seconds),
            multipliers=mult,
            gas_gwei=gas,
            oracle=self.oracle,
            seed=None if self.deterministic else int(seed),
            assets=self.markets,
        )

    @staticmethod
    def _assemble(
        levels: FloatArray,
        overrides: Mapping[str, FloatArray],
        terms: Sequence[tuple[Term, ...]],
        factor_index: Mapping[str, int],
        out: npt.NDArray[np.floating[Any]],
    ) -> None:
        """Asset multipliers from factor log levels, written into ``out``."""
        # keep absurd parameter choices finite in the output dtype instead of inf
        log_max = math.log(float(np.finfo(out.dtype).max)) - 1.0
        acc = np.empty(levels.shape[:2])
        for j, ts in enumerate(terms):
            acc[...] = 0.0
            for term in ts:
                if term.is_override:
                    acc += overrides[term.name]
                else:
                    acc += levels[:, :, factor_index[term.name]]
            np.clip(acc, -log_max, log_max, out=acc)
            np.exp(acc, out=acc)
            acc[:, 0] = 1.0
            out[:, :, j] = acc

    def _gas(self, levels: FloatArray, factor_index: Mapping[str, int]) -> FloatArray:
        g = self.gas
        n, s1 = levels.shape[0], levels.shape[1]
        if g.knots:
            hours = np.arange(s1) * self.step_seconds / 3600.0
            times = [0.0] + [t for t, _ in g.knots if t > 0]
            vals = [g.knots[0][1] if g.knots[0][0] == 0 else g.base_gwei] + [
                v for t, v in g.knots if t > 0
            ]
            path = np.interp(hours, times, vals)
            return np.broadcast_to(path, (n, s1)).copy()
        ref = factor_index.get(g.reference)
        if ref is None or g.spike_gwei == 0.0:
            return np.full((n, s1), g.base_gwei)
        return gen.gas_from_drawdown(levels[:, :, ref], g.base_gwei, g.spike_gwei, g.full_drawdown)

    # ------------------------------------------------------------------------------------
    def worst_moves(self) -> dict[str, tuple[float, float]]:
        """Deterministic scenarios: lowest and highest multiplier per factor and stressed
        asset over the horizon (flat factors left out)."""
        if not isinstance(self.spec, StressSpec):
            raise ScenarioError(
                f"scenario {self.name!r} is {self.kind}, not a deterministic stress"
            )
        levels, overrides = _stress_levels(self, self.spec)
        out: dict[str, tuple[float, float]] = {}
        for i, f in enumerate(self.factors):
            path = levels[0, :, i]
            if np.any(path != 0.0):
                out[f] = (float(np.exp(path.min())), float(np.exp(path.max())))
        for sym, path in overrides.items():
            out[sym] = (float(np.exp(path.min())), float(np.exp(path.max())))
        return out


def _check_rows(n_paths: int, seed: int, start: int, stop: int | None) -> tuple[int, int]:
    for name, v in (("n_paths", n_paths), ("seed", seed), ("start", start)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise ScenarioError(f"{name} must be an integer, got {v!r}")
    if n_paths < 1:
        raise ScenarioError(f"n_paths must be >= 1, got {n_paths}")
    if seed < 0:
        raise ScenarioError(f"seed must be a non-negative integer, got {seed}")
    stop = n_paths if stop is None else stop
    if isinstance(stop, bool) or not isinstance(stop, int | np.integer):
        raise ScenarioError(f"stop must be an integer, got {stop!r}")
    if not 0 <= start <= stop <= n_paths:
        raise ScenarioError(f"rows [{start}, {stop}) are not within [0, {n_paths}]")
    return int(start), int(stop)


def _stress_levels(sc: Scenario, spec: StressSpec) -> tuple[FloatArray, dict[str, FloatArray]]:
    step_h = sc.step_seconds / 3600.0
    paths: dict[str, FloatArray] = {}
    listed = dict(spec.factors)

    def level(name: str, shock: Shock) -> FloatArray:
        if shock.follow is not None:
            base = paths.get(shock.follow)
            if base is None:
                base = level(shock.follow, listed[shock.follow])
                paths[shock.follow] = base
            return shock.beta * base
        return gen.knot_path(shock.knots, sc.n_steps, step_h)

    for name, shock in spec.factors:
        if name not in paths:
            paths[name] = level(name, shock)
    factors = sc.factors
    out = np.zeros((1, sc.n_steps + 1, len(factors)))
    for i, f in enumerate(factors):
        if f in paths:
            out[0, :, i] = paths[f]
        elif spec.unlisted is not None and f not in SPREAD_FACTORS:
            out[0, :, i] = paths[spec.unlisted]
    overrides = {sym: level(sym, shock) for sym, shock in spec.assets}
    return out, overrides


# ----------------------------------------------------------------------------------------
# parsing


def parse_scenario(
    data: Mapping[str, Any], name: str, file: str, *, base_dir: Path | None = None
) -> Scenario:
    """Validate a parsed TOML document into a :class:`Scenario`.

    Raises:
        ScenarioError: naming ``file``, the dotted field and what is allowed.
    """
    top = Table(data, file)
    kind = top.get_str("kind", choices=KINDS)
    top.check_keys((*_COMMON_KEYS, *_KIND_KEYS[kind]), required=("kind",))
    title = top.get_str("title", default=name)
    description = top.get_str("description", default="")
    source = top.str_list("source", default=(), nonempty=False)
    notes = top.get_str("notes", default="")

    step_seconds = top.get_float("step_seconds", default=3600.0, gt=0.0, le=366 * 86400.0)
    if top.has("n_steps"):
        n_steps = top.get_int("n_steps", ge=1, le=100_000)
        if top.has("horizon_hours"):
            h = top.get_float("horizon_hours", gt=0.0)
            if not math.isclose(h * 3600.0, n_steps * step_seconds, rel_tol=1e-9):
                raise top.error(
                    "horizon_hours",
                    f"{h} h is inconsistent with n_steps x step_seconds = {n_steps} x "
                    f"{step_seconds} s = {n_steps * step_seconds / 3600.0} h",
                )
    elif top.has("horizon_hours"):
        h = top.get_float("horizon_hours", gt=0.0, le=24.0 * 3660)
        steps = h * 3600.0 / step_seconds
        if not (abs(steps - round(steps)) < 1e-9 and 1 <= round(steps) <= 100_000):
            raise top.error(
                "horizon_hours",
                f"{h} h is not a whole number (1..100000) of steps of {step_seconds} s",
            )
        n_steps = round(steps)
    else:
        raise top.error("n_steps", "required field is missing (give n_steps or horizon_hours)")
    horizon_h = n_steps * step_seconds / 3600.0

    seed = top.get_int("seed", default=1, ge=0, le=2**63 - 1)
    oracle = _parse_oracle(top.table("oracle", default=None))
    markets = _parse_markets(top.table("markets", default=None))
    proxies = _parse_proxies(top.table("proxies", default=None))

    spec: Spec
    if kind == "stress":
        default_paths = top.get_int("default_paths", default=1, ge=1, le=1)
        spec = _parse_stress(top, horizon_h, proxies)
    elif kind == "montecarlo":
        default_paths = top.get_int("default_paths", default=10_000, ge=1, le=10**9)
        spec = _parse_montecarlo(top)
    else:
        default_paths = top.get_int("default_paths", default=10_000, ge=1, le=10**9)
        spec = _parse_historical(top, step_seconds, base_dir)
    factors = tuple(FACTORS) if isinstance(spec, StressSpec) else spec.factors
    gas = _parse_gas(top.table("gas", default=None), horizon_h, factors, kind)
    _check_proxy_targets(top, proxies, factors)

    return Scenario(
        name=name,
        kind=kind,
        title=title,
        description=description,
        n_steps=n_steps,
        step_seconds=step_seconds,
        default_paths=default_paths,
        seed=seed,
        oracle=oracle,
        gas=gas,
        proxies=tuple(proxies.items()),
        spec=spec,
        source=source,
        notes=notes,
        file=file,
        markets=markets,
    )


def _parse_oracle(t: Table | None) -> OracleSpec:
    if t is None:
        return OracleSpec()
    t.check_keys(("deviation", "heartbeat_s", "delay_s"))
    return OracleSpec(
        deviation=t.get_float("deviation", default=None, ge=0.0, lt=1.0),
        heartbeat_s=t.get_float("heartbeat_s", default=None, gt=0.0),
        delay_s=t.get_float("delay_s", default=0.0, ge=0.0),
    )


def _parse_markets(t: Table | None) -> tuple[tuple[str, AssetSpec], ...]:
    """``[markets.SYMBOL]`` tables: each asset's oracle feed and wider market."""
    if t is None:
        return ()
    out: list[tuple[str, AssetSpec]] = []
    for symbol in t.names():
        a = t.table(symbol)
        if a is None:
            raise t.error(symbol, "expected a table of the asset's feed and market settings")
        a.check_keys(
            (
                "oracle_deviation",
                "oracle_heartbeat_s",
                "pricing",
                "rate_base",
                "rate_apr",
                "rate_cap_apr",
                "daily_volume_usd",
                "daily_volatility",
            )
        )
        out.append(
            (
                symbol,
                AssetSpec(
                    oracle_deviation=a.get_float("oracle_deviation", default=None, ge=0.0, lt=1.0),
                    oracle_heartbeat_s=a.get_float("oracle_heartbeat_s", default=None, gt=0.0),
                    pricing=a.get_str("pricing", default=None, choices=("market", "exchange-rate")),
                    rate_base=a.get_str("rate_base", default=None),
                    rate_apr=a.get_float("rate_apr", default=None, ge=-1.0, le=10.0),
                    rate_cap_apr=a.get_float("rate_cap_apr", default=None, ge=0.0, le=10.0),
                    daily_volume_usd=a.get_float("daily_volume_usd", default=None, gt=0.0),
                    daily_volatility=a.get_float("daily_volatility", default=None, gt=0.0, lt=10.0),
                ),
            )
        )
    return tuple(out)


def _parse_gas(t: Table | None, horizon_h: float, factors: Sequence[str], kind: str) -> GasSpec:
    if t is None:
        return GasSpec()
    t.check_keys(("base_gwei", "spike_gwei", "full_drawdown", "reference", "knots"))
    ref = t.get_str("reference", default="ETH")
    if ref not in factors:
        raise t.error("reference", f"unknown factor {ref!r}; expected one of {tuple(factors)}")
    knots: tuple[tuple[float, float], ...] = ()
    if t.has("knots"):
        if kind != "stress":
            raise t.error("knots", "explicit gas knots are for deterministic stresses only")
        knots = t.knots("knots")
        if knots[-1][0] > horizon_h + 1e-9:
            raise t.error(
                "knots", f"a knot at {knots[-1][0]} h is after the horizon ({horizon_h} h)"
            )
    return GasSpec(
        base_gwei=t.get_float("base_gwei", default=20.0, gt=0.0, le=1e6),
        spike_gwei=t.get_float("spike_gwei", default=0.0, ge=0.0, le=1e6),
        full_drawdown=t.get_float("full_drawdown", default=0.5, gt=0.0, le=1.0),
        reference=ref,
        knots=knots,
    )


def _parse_proxies(t: Table | None) -> dict[str, str | tuple[str, ...]]:
    if t is None:
        return {}
    out: dict[str, str | tuple[str, ...]] = {}
    for key in t.names():
        value = t.data[key]
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            out[key] = tuple(value)
        else:
            raise t.error(
                key,
                'expected a factor or symbol name ("ETH") or a non-empty array of them '
                '(["ETH", "LST"])',
            )
    return out


def _check_proxy_targets(
    top: Table, proxies: Mapping[str, str | tuple[str, ...]], factors: Sequence[str]
) -> None:
    known = {*factors, *FACTORS, *BUILTIN_ASSETS, *proxies}
    for key, value in proxies.items():
        for part in (value,) if isinstance(value, str) else value:
            if lookup_symbol(part, dict.fromkeys(known)) is None:
                raise top.error(
                    f"proxies.{key}",
                    f"unknown factor or symbol {part!r}; factors: {', '.join(factors)}",
                )


def _parse_shock(t: Table, horizon_h: float, factor_names: Sequence[str]) -> Shock:
    t.check_keys(
        ("knots", "move", "at_hours", "start_hours", "recovery", "recovery_hours", "follow", "beta")
    )
    modes = [k for k in ("knots", "move", "follow") if t.has(k)]
    if len(modes) != 1:
        raise t.error(
            None,
            "give exactly one of knots = [[hours, multiplier], ...], move = -0.3 (with "
            f'at_hours, optional recovery) or follow = "ETH" (with beta); got {modes or "none"}',
        )
    if t.has("follow"):
        for k in ("at_hours", "start_hours", "recovery", "recovery_hours"):
            if t.has(k):
                raise t.error(k, "not allowed with follow")
        target = t.get_str("follow")
        if target not in factor_names:
            raise t.error(
                "follow",
                f"{target!r} is not a factor with its own path here; expected one of "
                f"{tuple(factor_names)}",
            )
        return Shock(follow=target, beta=t.get_float("beta", default=1.0, ge=-10.0, le=10.0))
    if t.has("beta"):
        raise t.error("beta", "only allowed with follow")
    if t.has("knots"):
        for k in ("at_hours", "start_hours", "recovery", "recovery_hours"):
            if t.has(k):
                raise t.error(k, "not allowed with knots")
        knots = t.knots("knots")
        if knots[0][0] == 0.0 and not math.isclose(knots[0][1], 1.0, rel_tol=1e-12):
            raise t.error(
                "knots[0]", "the multiplier at hour 0 must be 1 (paths start at the snapshot)"
            )
    else:
        move = t.get_float("move", gt=-1.0, le=100.0)
        at = t.get_float("at_hours", gt=0.0)
        start = t.get_float("start_hours", default=0.0, ge=0.0, lt=at)
        recovery = t.get_float("recovery", default=0.0, ge=0.0, le=1.0)
        rec_h = t.get_float("recovery_hours", default=horizon_h, gt=at)
        if t.has("recovery_hours") and not t.has("recovery"):
            raise t.error("recovery_hours", "needs recovery (fraction of the move given back)")
        level = math.log1p(move)
        pts: list[tuple[float, float]] = []
        if start > 0.0:
            pts.append((start, 1.0))
        pts.append((at, 1.0 + move))
        if recovery > 0.0 and rec_h > at:
            pts.append((rec_h, math.exp(level * (1.0 - recovery))))
        knots = tuple(pts)
    if knots[-1][0] > horizon_h + 1e-9:
        raise t.error(
            "knots"
            if t.has("knots")
            else ("recovery_hours" if t.has("recovery_hours") else "at_hours"),
            f"{knots[-1][0]} h is after the horizon ({horizon_h} h)",
        )
    return Shock(knots=knots)


def _parse_stress(
    top: Table, horizon_h: float, proxies: Mapping[str, str | tuple[str, ...]]
) -> StressSpec:
    ft = top.table("factors", default=None)
    at = top.table("assets", default=None)
    if (ft is None or not ft.names()) and (at is None or not at.names()):
        raise top.error(
            "factors", "a stress needs at least one [factors.NAME] or [assets.SYMBOL] table"
        )
    factors: list[tuple[str, Shock]] = []
    with_path: list[str] = []
    if ft is not None:
        for key in ft.names():
            if key not in FACTORS:
                raise ft.error(key, f"unknown factor; expected one of {', '.join(FACTORS)}")
            sub = ft.table(key)
            assert sub is not None
            if not sub.has("follow"):
                with_path.append(key)
        for key in ft.names():
            sub = ft.table(key)
            assert sub is not None
            factors.append((key, _parse_shock(sub, horizon_h, with_path)))
    assets: list[tuple[str, Shock]] = []
    if at is not None:
        known = {*BUILTIN_ASSETS, *proxies}
        for key in at.names():
            if key in FACTORS:
                raise at.error(key, f"{key} is a factor; put it under [factors.{key}]")
            if lookup_symbol(key, dict.fromkeys(known)) is None:
                raise at.error(
                    key,
                    f"unknown asset symbol; known: {', '.join(sorted(known, key=str.lower))}; "
                    f'declare new ones in [proxies], e.g. {key} = "STABLE"',
                )
            sub = at.table(key)
            assert sub is not None
            assets.append((key, _parse_shock(sub, horizon_h, with_path)))
    unlisted = top.get_str("unlisted", default="flat")
    if unlisted != "flat" and unlisted not in with_path:
        raise top.error(
            "unlisted", f'{unlisted!r} is not allowed; expected "flat" or one of {tuple(with_path)}'
        )
    return StressSpec(
        factors=tuple(factors),
        assets=tuple(assets),
        unlisted=None if unlisted == "flat" else unlisted,
    )


def check_correlation(t: Table, key: str, corr: Sequence[Sequence[float]]) -> None:
    """Symmetric, unit diagonal, entries in [-1, 1], positive semi-definite."""
    n = len(corr)
    for i in range(n):
        if abs(corr[i][i] - 1.0) > 1e-9:
            raise t.error(f"{key}[{i}][{i}]", f"diagonal must be 1, got {corr[i][i]}")
        for j in range(n):
            if not -1.0 <= corr[i][j] <= 1.0:
                raise t.error(f"{key}[{i}][{j}]", f"{corr[i][j]} is outside [-1, 1]")
            if abs(corr[i][j] - corr[j][i]) > 1e-9:
                raise t.error(
                    f"{key}[{i}][{j}]",
                    f"matrix is not symmetric: {corr[i][j]} here, {corr[j][i]} at [{j}][{i}]",
                )
    low = float(np.linalg.eigvalsh(np.array(corr, dtype=np.float64)).min()) if n else 0.0
    if low < -1e-8:
        raise t.error(
            key,
            f"matrix is not positive semi-definite (smallest eigenvalue {low:.3g}); use "
            "simulator.scenarios.calibrate.nearest_correlation to repair it",
        )


def _parse_montecarlo(top: Table) -> MonteCarloSpec:
    factors = top.str_list("factors")
    if len(set(factors)) != len(factors):
        raise top.error("factors", f"duplicate factor names in {factors}")
    for i, f in enumerate(factors):
        if not f or not f.replace("_", "").replace("-", "").isalnum():
            raise top.error(f"factors[{i}]", f"{f!r}: names are letters, digits, '-' and '_'")
    n = len(factors)
    innovations = top.get_str("innovations", default="student-t", choices=("student-t", "normal"))
    mixing = top.get_str("mixing", default="day", choices=("day", "step"))
    rt = top.table("regimes")
    assert rt is not None
    if not rt.names():
        raise rt.error(None, "needs at least one [regimes.NAME] table")
    regimes: list[Regime] = []
    for key in rt.names():
        t = rt.table(key)
        assert t is not None
        t.check_keys(
            ("vol_daily", "drift_daily", "corr", "dof", "as_of", "window", "notes"),
            required=("vol_daily", "corr"),
        )
        vol = t.float_list("vol_daily", length=n, ge=0.0, le=10.0)
        drift = t.float_list("drift_daily", default=(0.0,) * n, length=n, ge=-1.0, le=1.0)
        corr = t.matrix("corr", n)
        check_correlation(t, "corr", corr)
        dof = t.get_float("dof", default=5.0, gt=2.0, le=1e6)
        regimes.append(
            Regime(
                name=key,
                vol_daily=vol,
                drift_daily=drift,
                corr=corr,
                dof=dof,
                as_of=t.date("as_of", default=None),
                window=t.str_list("window", default=(), nonempty=False),
                notes=t.get_str("notes", default=""),
                chol=gen.cholesky_psd(corr),
            )
        )
    regime = top.get_str("regime", default=regimes[0].name)
    if regime not in [r.name for r in regimes]:
        raise top.error(
            "regime", f"{regime!r} is not allowed; expected one of {[r.name for r in regimes]}"
        )
    jumps = None
    jt = top.table("jumps", default=None)
    if jt is not None:
        jt.check_keys(("intensity_per_day", "mean", "std", "beta"), required=("intensity_per_day",))
        jumps = JumpSpec(
            intensity_per_day=jt.get_float("intensity_per_day", ge=0.0, le=1000.0),
            mean=jt.get_float("mean", default=0.0, ge=-5.0, le=5.0),
            std=jt.get_float("std", default=0.0, ge=0.0, le=5.0),
            beta=jt.float_list("beta", default=(1.0,) * n, length=n, ge=-10.0, le=10.0),
        )
    calibration = top.get_str("calibration", default="")
    conditional = None
    ct = top.table("conditional", default=None)
    if ct is not None:
        ct.check_keys(
            ("model", "omega", "alpha", "beta", "max_gap_days", "intraday_scale", "fitted"),
            required=("omega", "alpha", "beta"),
        )
        ct.get_str("model", default="garch", choices=("garch",))
        omega = ct.float_list("omega", length=n, gt=0.0, le=1.0)
        a = ct.float_list("alpha", length=n, ge=0.0, le=0.9999)
        b = ct.float_list("beta", length=n, ge=0.0, le=0.9999)
        for i in range(n):
            if a[i] + b[i] >= 1.0:
                raise ct.error(
                    f"alpha[{i}]",
                    f"alpha + beta = {a[i] + b[i]:g} for {factors[i]}; must be < 1 (a finite "
                    "long-run variance)",
                )
        conditional = ConditionalSpec(
            omega=omega,
            alpha=a,
            beta=b,
            max_gap_days=ct.get_int("max_gap_days", default=3, ge=0, le=3650),
            intraday_scale=ct.get_float("intraday_scale", default=1.0, gt=0.0, le=10.0),
            fitted=ct.get_str("fitted", default=""),
            regime=regime,
        )
    return MonteCarloSpec(
        factors=factors,
        innovations=innovations,
        regime=regime,
        regimes=tuple(regimes),
        jumps=jumps,
        calibration=calibration,
        mixing=mixing,
        conditional=conditional,
    )


def _parse_historical(top: Table, step_seconds: float, base_dir: Path | None) -> HistoricalSpec:
    from simulator.scenarios import calibrate

    method = top.get_str("method", choices=("bootstrap", "filtered"))
    csv_name = top.get_str("csv")
    csv = Path(csv_name)
    if not csv.is_absolute() and base_dir is not None:
        csv = base_dir / csv
    date_column = top.get_str("date_column", default="date")
    columns = top.str_list("columns", default=None)
    as_of = top.date("as_of")
    window_days = top.get_int("window_days", default=None, ge=30)
    block_days = top.get_int("block_days", default=5 if method == "bootstrap" else 1, ge=1, le=365)
    dist = top.get_str("garch_dist", default="normal", choices=("normal", "t"))
    try:
        prices = calibrate.read_price_csv(csv, date_column=date_column, columns=columns)
    except ScenarioError as exc:
        raise top.error("csv", str(exc)) from None
    try:
        hist = calibrate.history_returns(prices, as_of=as_of, window_days=window_days)
    except ScenarioError as exc:
        raise top.error("as_of", f"{csv}: {exc}") from None
    if hist.obs_seconds % step_seconds > 1e-9 * hist.obs_seconds:
        raise top.error(
            "step_seconds",
            f"{step_seconds} s does not divide the data spacing ({hist.obs_seconds} s)",
        )
    if hist.returns.shape[0] < max(30, block_days + 1):
        raise top.error(
            "as_of",
            f"{csv}: only {hist.returns.shape[0]} returns before {as_of}; need at least "
            f"{max(30, block_days + 1)}",
        )
    garch = None
    returns = hist.returns
    if method == "filtered":
        try:
            fit = calibrate.fit_garch(hist.returns, dist=dist, names=hist.factors)
        except ScenarioError as exc:
            raise top.error("method", f"{csv}: {exc}") from None
        returns = fit.std_resid
        garch = fit.params
    return HistoricalSpec(
        method=method,
        csv=str(csv),
        as_of=as_of,
        factors=hist.factors,
        obs_seconds=hist.obs_seconds,
        block_days=block_days,
        returns=returns,
        garch=garch,
        first=hist.first,
        last=hist.last,
        window_days=window_days,
    )


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning I/O and syntax errors into :class:`ScenarioError`."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ScenarioError(f"{path}: no such scenario file") from None
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{path}: not valid TOML (UTF-8): {exc}") from None
