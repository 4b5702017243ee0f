"""Stressed Expected Shortfall of each account's equity, and the margin it is compared with.

The keeper asks one question of every account at every block: *how much equity could this
account lose under stress, and is that more than the margin it has posted?* This module
answers it with arrays in, arrays out; it knows nothing of blocks or chains.

**The stress set.** A stress set is a list of *stress scenarios*; each scenario is one or more
*points*, a point being a vector of price multipliers (one per asset, relative to the current
oracle price). An account's loss under a scenario is its loss at the scenario's worst point
*for that account*::

    loss_s(account) = max over points p of s of  equity_now - equity(prices * p)

so a deterministic stress path (a named historical crash, many time steps) contributes one
scenario whose loss is the account's worst drawdown along the path, whichever asset and time
step hurts that account most (a debt-heavy account is hurt by the up-move, a collateral-heavy
one by the down-move). A one-day Monte Carlo draw contributes one scenario with one point
(its terminal multipliers). ``--stress-from`` replaces the Monte Carlo set by the per-path
worst moves of a ``simulate`` results directory (which include the cascade's price impact),
one scenario per path. All scenarios weigh the same unless weights are given.

**Losses.** Equity is the value of collateral that counts (enabled by the account, reserve LT
non-zero) minus the value of debt, USD. With net exposure ``x = (collateral - debt) * price``
(USD per asset), the loss at multipliers ``m`` is ``x @ (1 - m)``: one matrix product gives
the accounts x points loss matrix.

**Stressed ES** at ``alpha`` is the Acerbi-Tasche expected shortfall of each account's losses
over the stress set (the mean of the worst ``1 - alpha`` probability mass, taking the right
fraction of the atom at VaR), the same estimator as ``simulator.risk.es``, computed row by
row with ``np.partition`` (equal weights) or a row-wise sort (general weights).
``stressed_es_reference`` is the plain twin that calls ``simulator.risk.es`` once per account.
``evaluate`` (losses with liquidation costs) runs compiled kernels that never store an
accounts x states matrix: per account, its margin at every state is one vector (a pass per
asset it holds over the transposed states), the tail is selected among the states above a
threshold taken from a subsample (exact: it falls back to all states when those above miss
the tail's mass), and a liquidation cost is computed only where the loss could still reach
the tail (a cost is at most the account's top bonus on all its collateral at the state).

**Margin.** ``equity``: collateral value minus debt value. ``liquidation-buffer``:
sum(collateral value x LT) minus debt value, the cushion before the account can be liquidated.
``evaluate`` takes LT and bonus per account and asset, and a price ratio per account and
asset, so an e-mode account is valued with its category's LT, bonus and (v3.0 price source)
prices, as the Pool and the cascade engine value it.

**Flag rule.** An account with debt is *over* when stressed ES > margin. Its severity is by the
ratio ES / margin: ``low`` up to 1.25, ``medium`` up to 2, ``high`` up to 4, ``critical`` above
4 or whenever margin <= 0 (the account is already underwater or liquidatable). An account
counts as *safe* again when ES < margin - 0.1 x |margin| (0.9 x margin for a positive margin);
between the two it keeps whatever state it had (hysteresis). Accounts without debt are never
flagged: nothing they hold can become the protocol's bad debt.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from simulator.errors import InputError, NumericalWarning

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MC_PATHS",
    "DEFAULT_MC_SEED",
    "DEFAULT_MIN_USD",
    "MARGIN_KINDS",
    "RULE_ES",
    "RULE_NAMES",
    "RULE_NONE",
    "RULE_STRESS",
    "SEVERITIES",
    "FlagThresholds",
    "LiquidationRules",
    "MarginKind",
    "Severity",
    "StressEvaluation",
    "StressSet",
    "classify",
    "es_rows",
    "es_weighted",
    "evaluate",
    "evaluation",
    "exposure_usd",
    "margin_usd",
    "point_losses",
    "scenario_losses",
    "stressed_es",
    "stressed_es_reference",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]

MarginKind = Literal["equity", "liquidation-buffer"]
#: Margin definitions the keeper accepts (``--margin``).
MARGIN_KINDS: tuple[MarginKind, ...] = ("equity", "liquidation-buffer")

#: Severity names by code; code 0 means "not over the margin".
SEVERITIES: tuple[str, ...] = ("none", "low", "medium", "high", "critical")

DEFAULT_ALPHA = 0.975
#: One-day Monte Carlo draws in the default stress set, and the seed they are drawn with.
DEFAULT_MC_PATHS = 2000
DEFAULT_MC_SEED = 20240312

#: Rows of the loss matrix computed at a time (bounds memory: rows x points x 8 bytes).
DEFAULT_CHUNK_ROWS = 1024


@dataclass(frozen=True, slots=True)
class StressSet:
    """Stress scenarios as price multipliers relative to the current oracle prices.

    Attributes:
        symbols: asset symbols, in the order of the last axis of ``points``.
        points: price multipliers, shape ``(n_points, n_assets)``; the points of one scenario
            are contiguous.
        starts: index in ``points`` of each scenario's first point, shape ``(n_scenarios,)``,
            increasing, ``starts[0] == 0``.
        labels: a name per scenario (``"ftx-2022"``, ``"mc-1-day#17"``), ``(n_scenarios,)``.
        weights: scenario probabilities summing to 1, shape ``(n_scenarios,)``, or ``None``
            for equal weights.
    """

    symbols: tuple[str, ...]
    points: FloatArray
    starts: IntArray
    labels: tuple[str, ...]
    weights: FloatArray | None = None

    def __post_init__(self) -> None:
        points = self.points
        if points.ndim != 2 or points.shape[1] != len(self.symbols):
            raise InputError(
                f"stress points have shape {points.shape}; expected (n_points, {len(self.symbols)})"
            )
        if points.shape[0] == 0:
            raise InputError("the stress set is empty; it needs at least one scenario")
        if not np.isfinite(points).all() or (points < 0).any():
            raise InputError("stress multipliers must be finite and >= 0")
        starts = self.starts
        if (
            starts.ndim != 1
            or starts.size == 0
            or starts[0] != 0
            or (np.diff(starts) <= 0).any()
            or starts[-1] >= points.shape[0]
        ):
            raise InputError("stress scenario starts must increase from 0 within the points")
        if len(self.labels) != starts.size:
            raise InputError(f"{len(self.labels)} labels for {starts.size} stress scenarios")
        if self.weights is not None:
            w = self.weights
            if w.shape != starts.shape or not np.isfinite(w).all() or (w < 0).any():
                raise InputError("stress weights must be finite, >= 0, one per scenario")
            if not math.isclose(float(w.sum()), 1.0, rel_tol=1e-9):
                raise InputError(f"stress weights sum to {float(w.sum())!r}; expected 1")

    @property
    def n_scenarios(self) -> int:
        return int(self.starts.size)

    @property
    def n_points(self) -> int:
        return int(self.points.shape[0])

    @classmethod
    def from_scenarios(
        cls,
        symbols: Sequence[str],
        scenarios: Sequence[tuple[str, npt.ArrayLike]],
        weights: npt.ArrayLike | None = None,
    ) -> StressSet:
        """A stress set from ``(label, points)`` pairs; ``points`` is ``(n_points, n_assets)``
        or one vector ``(n_assets,)``."""
        blocks = [np.atleast_2d(np.asarray(p, dtype=np.float64)) for _, p in scenarios]
        if not blocks:
            raise InputError("the stress set is empty; it needs at least one scenario")
        sizes = np.array([b.shape[0] for b in blocks], dtype=np.int64)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        w = None if weights is None else np.asarray(weights, dtype=np.float64)
        return cls(
            symbols=tuple(symbols),
            points=np.concatenate(blocks, axis=0),
            starts=starts,
            labels=tuple(label for label, _ in scenarios),
            weights=w,
        )

    @classmethod
    def from_paths(
        cls,
        label: str,
        symbols: Sequence[str],
        multipliers: npt.ArrayLike,
        *,
        terminal_only: bool,
    ) -> StressSet:
        """A stress set from scenario price paths, shape ``(n_paths, n_steps + 1, n_assets)``.

        With ``terminal_only`` each path is one scenario with one point, its last step (a
        one-day Monte Carlo set). Otherwise each path is one scenario whose points are all
        its steps, so the account's loss is its worst point along the path (a deterministic
        stress path).
        """
        m = np.asarray(multipliers, dtype=np.float64)
        if m.ndim != 3 or m.shape[2] != len(symbols):
            raise InputError(
                f"{label}: multipliers have shape {m.shape}; expected "
                f"(n_paths, n_steps + 1, {len(symbols)})"
            )
        n_paths, n_times, _ = m.shape
        if terminal_only:
            points = np.ascontiguousarray(m[:, -1, :])
            starts = np.arange(n_paths, dtype=np.int64)
        else:
            points = m.reshape(n_paths * n_times, -1)
            starts = np.arange(n_paths, dtype=np.int64) * n_times
        labels = (label,) if n_paths == 1 else tuple(f"{label}#{i}" for i in range(n_paths))
        return cls(tuple(symbols), points, starts, labels)

    def aligned(self, symbols: Sequence[str]) -> StressSet:
        """The same scenarios over ``symbols``: assets the set does not know keep their price
        (multiplier 1); assets not in ``symbols`` are dropped."""
        index = {s: i for i, s in enumerate(self.symbols)}
        out = np.ones((self.n_points, len(symbols)), dtype=np.float64)
        for j, s in enumerate(symbols):
            if s in index:
                out[:, j] = self.points[:, index[s]]
        return StressSet(tuple(symbols), out, self.starts, self.labels, self.weights)

    def concat(self, other: StressSet) -> StressSet:
        """Both sets' scenarios together, over ``self.symbols``.

        Every scenario counts as one scenario of the union: two unweighted sets give an
        unweighted union; a weighted set (importance-sampled ``simulate`` paths) keeps the
        share of the union its scenario count gives it, ``n_set / n_union``, and spreads that
        share by its own weights, so its tail is neither dropped nor inflated.
        """
        if other.symbols != self.symbols:
            other = other.aligned(self.symbols)
        weights = None
        if self.weights is not None or other.weights is not None:
            n1, n2 = self.n_scenarios, other.n_scenarios
            w1 = np.full(n1, 1.0 / n1) if self.weights is None else self.weights
            w2 = np.full(n2, 1.0 / n2) if other.weights is None else other.weights
            weights = np.concatenate([w1 * n1, w2 * n2]) / (n1 + n2)
            weights = weights / weights.sum()  # exact to rounding: within the 1e-9 check
        return StressSet(
            self.symbols,
            np.concatenate([self.points, other.points]),
            np.concatenate([self.starts, other.starts + self.n_points]),
            self.labels + other.labels,
            weights,
        )


@dataclass(frozen=True, slots=True)
class FlagThresholds:
    """Where the severities of an over-margin account begin, as ratios ES / margin.

    Attributes:
        medium: ratio above which an over account is ``medium`` (below: ``low``).
        high: ratio above which it is ``high``.
        critical: ratio above which it is ``critical`` (margin <= 0 is always critical).
        clear_ratio: an account is safe again when ES < margin - (1 - clear_ratio) x |margin|.
    """

    medium: float = 1.25
    high: float = 2.0
    critical: float = 4.0
    clear_ratio: float = 0.9

    def __post_init__(self) -> None:
        if not 1.0 < self.medium < self.high < self.critical:
            raise InputError("severity thresholds must satisfy 1 < medium < high < critical")
        if not 0.0 < self.clear_ratio <= 1.0:
            raise InputError(f"clear_ratio = {self.clear_ratio!r}; expected in (0, 1]")


def _effective_collateral(
    collateral: FloatArray, enabled: BoolArray, liquidation_threshold: FloatArray
) -> FloatArray:
    counts = enabled & (liquidation_threshold > 0.0)[None, :]
    return np.where(counts, collateral, 0.0)


def exposure_usd(
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    collateral_enabled: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    liquidation_threshold: npt.ArrayLike,
) -> FloatArray:
    """Net USD exposure per account and asset, shape ``(n_accounts, n_assets)``.

    ``(collateral that counts - debt) x price``; balances in token units, prices USD per token.
    Its row sum is the account's equity.
    """
    c = np.asarray(collateral, dtype=np.float64)
    d = np.asarray(debt, dtype=np.float64)
    e = np.asarray(collateral_enabled, dtype=bool)
    p = np.asarray(price_usd, dtype=np.float64)
    lt = np.asarray(liquidation_threshold, dtype=np.float64)
    return np.asarray((_effective_collateral(c, e, lt) - d) * p[None, :], dtype=np.float64)


def margin_usd(
    kind: MarginKind,
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    collateral_enabled: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    liquidation_threshold: npt.ArrayLike,
) -> FloatArray:
    """Posted margin per account, USD, shape ``(n_accounts,)``.

    ``equity``: collateral value that counts minus debt value. ``liquidation-buffer``:
    sum(collateral value x LT) minus debt value.
    """
    c = np.asarray(collateral, dtype=np.float64)
    d = np.asarray(debt, dtype=np.float64)
    e = np.asarray(collateral_enabled, dtype=bool)
    p = np.asarray(price_usd, dtype=np.float64)
    lt = np.asarray(liquidation_threshold, dtype=np.float64)
    eff = _effective_collateral(c, e, lt)
    if kind == "equity":
        return np.asarray(eff @ p - d @ p, dtype=np.float64)
    if kind == "liquidation-buffer":
        return np.asarray(eff @ (p * lt) - d @ p, dtype=np.float64)
    raise InputError(f"margin {kind!r} is unknown; expected one of {list(MARGIN_KINDS)}")


def scenario_losses(exposure: FloatArray, stress: StressSet) -> FloatArray:
    """Equity loss of each account under each scenario, USD, ``(n_accounts, n_scenarios)``.

    The loss under a scenario is the largest loss over its points.
    """
    x = np.asarray(exposure, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != len(stress.symbols):
        raise InputError(
            f"exposure has shape {x.shape}; expected (n_accounts, {len(stress.symbols)})"
        )
    point_losses = x @ (1.0 - stress.points).T
    if stress.n_scenarios == stress.n_points:
        return np.asarray(point_losses, dtype=np.float64)
    return np.asarray(np.maximum.reduceat(point_losses, stress.starts, axis=1), dtype=np.float64)


def _check_alpha(alpha: float) -> None:
    if not (isinstance(alpha, float | int) and 0.0 < float(alpha) < 1.0):
        raise InputError(f"alpha = {alpha!r}; expected a number in (0, 1)")


def es_rows(losses: FloatArray, alpha: float, weights: FloatArray | None = None) -> FloatArray:
    """Acerbi-Tasche expected shortfall of each row of ``losses``, shape ``(n_rows,)``.

    Every row is one account's losses over the same scenarios, weighted by ``weights``
    (probabilities summing to 1, shape ``(n_scenarios,)``) or equally. The tail is taken per
    row: the mean of its worst ``1 - alpha`` probability mass, the atom at VaR split.
    """
    _check_alpha(alpha)
    loss = np.asarray(losses, dtype=np.float64)
    if loss.ndim != 2 or loss.shape[1] == 0:
        raise InputError(f"losses have shape {loss.shape}; expected (n_rows, n_scenarios >= 1)")
    if loss.shape[0] == 0:
        return np.zeros(0, dtype=np.float64)
    if not np.isfinite(loss).all():
        raise InputError("losses contain NaN or inf")
    n = loss.shape[1]
    tail = 1.0 - float(alpha)
    if weights is None or np.allclose(weights, 1.0 / n, rtol=0.0, atol=1e-15):
        mass = tail * n  # tail mass counted in scenarios
        if mass <= 1.0:  # the tail lies inside the worst scenario's atom
            return np.asarray(loss.max(axis=1), dtype=np.float64)
        k = math.floor(mass + 1e-9)
        frac = 0.0 if abs(mass - round(mass)) < 1e-9 else mass - k
        if frac == 0.0:
            part = np.partition(loss, n - k, axis=1)
            return np.asarray(part[:, n - k :].sum(axis=1) / k, dtype=np.float64)
        part = np.partition(loss, n - k - 1, axis=1)
        top = part[:, n - k :].sum(axis=1)
        return np.asarray((top + frac * part[:, n - k - 1]) / mass, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or (w < 0).any() or not np.isfinite(w).all():
        raise InputError("weights must be finite, >= 0, one per scenario")
    w = w / w.sum()
    order = np.argsort(-loss, axis=1, kind="stable")
    sorted_loss = np.take_along_axis(loss, order, axis=1)
    sorted_w = w[order]
    cum_before = np.cumsum(sorted_w, axis=1) - sorted_w
    taken = np.clip(tail - cum_before, 0.0, sorted_w)
    return np.asarray((sorted_loss * taken).sum(axis=1) / tail, dtype=np.float64)


def stressed_es(
    exposure: FloatArray,
    stress: StressSet,
    alpha: float = DEFAULT_ALPHA,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> FloatArray:
    """Stressed ES of each account's equity loss over ``stress``, USD, ``(n_accounts,)``.

    Works ``chunk_rows`` accounts at a time so that memory stays at
    ``chunk_rows x n_points x 8`` bytes whatever the number of accounts.
    """
    _check_alpha(alpha)
    if stress.n_scenarios * (1.0 - alpha) < 1.0:
        warnings.warn(
            f"the stress set has {stress.n_scenarios} scenarios: at alpha={alpha} its tail "
            "holds less than one scenario, so ES is the worst scenario's loss",
            NumericalWarning,
            stacklevel=2,
        )
    x = np.asarray(exposure, dtype=np.float64)
    out = np.empty(x.shape[0], dtype=np.float64)
    for lo in range(0, x.shape[0], max(1, chunk_rows)):
        hi = min(lo + max(1, chunk_rows), x.shape[0])
        out[lo:hi] = es_rows(scenario_losses(x[lo:hi], stress), alpha, stress.weights)
    return out


def stressed_es_reference(
    exposure: FloatArray, stress: StressSet, alpha: float = DEFAULT_ALPHA
) -> FloatArray:
    """Plain twin of ``stressed_es``: a loop over accounts, points and ``simulator.risk.es``."""
    from simulator.risk import es as risk_es

    x = np.asarray(exposure, dtype=np.float64)
    bounds = [*stress.starts.tolist(), stress.n_points]
    out = np.empty(x.shape[0], dtype=np.float64)
    for i in range(x.shape[0]):
        losses = np.empty(stress.n_scenarios, dtype=np.float64)
        for s in range(stress.n_scenarios):
            worst = -math.inf
            for p in range(bounds[s], bounds[s + 1]):
                value_now = float(x[i].sum())
                value_then = float((x[i] * stress.points[p]).sum())
                worst = max(worst, value_now - value_then)
            losses[s] = worst
        out[i] = float(risk_es(losses, alpha=alpha, weights=stress.weights))
    return out


#: Severity by USD at risk (loss above margin): a flag's severity is the lower of its ratio
#: grade and its USD grade, so an account with little at stake is never ``critical``.
#: ``low`` below ``usd_medium``, ``medium`` below ``usd_high``, ``high`` below
#: ``usd_critical``, ``critical`` above.
DEFAULT_MIN_USD = 100.0

#: Rule codes of ``StressEvaluation.rule``: why an account is over its margin.
RULE_NONE, RULE_ES, RULE_STRESS = 0, 1, 2
RULE_NAMES: tuple[str, ...] = ("none", "es", "stress")


@dataclass(frozen=True, slots=True)
class Severity:
    """USD grades of the severity table (see ``classify``)."""

    usd_medium: float = 10_000.0
    usd_high: float = 100_000.0
    usd_critical: float = 1_000_000.0

    def __post_init__(self) -> None:
        if not 0.0 < self.usd_medium < self.usd_high < self.usd_critical:
            raise InputError("USD severity grades must satisfy 0 < medium < high < critical")


@dataclass(frozen=True, slots=True)
class LiquidationRules:
    """The close-factor and dust constants ``plan_liquidation`` needs (Aave V3.3, the
    engine's defaults in ``simulator.cascade.EngineConfig``)."""

    close_factor_threshold_usd: float = 2000.0
    close_factor_hf: float = 0.95
    default_close_factor: float = 0.5
    min_leftover_usd: float = 1000.0

    @classmethod
    def from_engine(cls) -> LiquidationRules:
        from simulator.cascade import EngineConfig

        c = EngineConfig()
        return cls(
            c.close_factor_threshold_usd,
            c.close_factor_hf,
            c.default_close_factor,
            c.min_leftover_usd,
        )


def classify(
    es_usd: FloatArray,
    margin: FloatArray,
    debt_usd: FloatArray,
    thresholds: FlagThresholds | None = None,
    *,
    stress_loss_usd: FloatArray | None = None,
    min_usd: float = 0.0,
    usd_grades: Severity | None = None,
) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """Severity code (0 none .. 4 critical) and the *safe* mask per account.

    Over: debt >= ``min_usd`` (and > 0) and the binding loss (the larger of ES and the worst
    named stress loss, ``stress_loss_usd`` ``(n_accounts,)``) exceeds the margin. Severity is
    the lower of two grades: the ratio loss / margin (``low`` <= 1.25 < ``medium`` <= 2 <
    ``high`` <= 4 < ``critical``; margin <= 0 grades critical) and the USD at risk, loss -
    margin (``low`` < $10k <= ``medium`` < $100k <= ``high`` < $1M <= ``critical``).
    Safe: debt below ``min_usd`` (or none), or loss < margin - (1 - clear_ratio) x |margin|.
    """
    t = thresholds or FlagThresholds()
    g = usd_grades or Severity()
    es = np.asarray(es_usd, dtype=np.float64)
    loss = es if stress_loss_usd is None else np.maximum(es, stress_loss_usd)
    m = np.asarray(margin, dtype=np.float64)
    d = np.asarray(debt_usd, dtype=np.float64)
    sized = (d > 0.0) & (d >= min_usd)
    over = sized & (loss > m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m > 0.0, loss / np.where(m > 0.0, m, 1.0), np.inf)
    by_ratio = np.where(
        ratio > t.critical, 4, np.where(ratio > t.high, 3, np.where(ratio > t.medium, 2, 1))
    )
    at_risk = loss - m
    by_usd = np.where(
        at_risk >= g.usd_critical,
        4,
        np.where(at_risk >= g.usd_high, 3, np.where(at_risk >= g.usd_medium, 2, 1)),
    )
    severity = np.where(over, np.minimum(by_ratio, by_usd), 0).astype(np.int8)
    safe = ~sized | (loss < m - (1.0 - t.clear_ratio) * np.abs(m))
    return severity, np.asarray(safe, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class StressEvaluation:
    """Per-account result of one evaluation; arrays ``(n_accounts,)`` unless said.

    Attributes:
        es_usd: ES at alpha of the account's loss over the probabilistic set, USD (0 for an
            account below ``min_usd`` of debt, which is never flagged).
        margin_usd: posted margin (equity or liquidation buffer), USD.
        debt_usd: debt value, USD.
        stress_loss_usd: worst loss along each named stress path, ``(n_accounts, n_named)``.
        stress_names: the named stresses, in column order.
        worst_stress: column of the worst named loss, -1 without named stresses.
        at_risk_usd: binding loss minus margin, clipped at 0, USD.
        rule: ``RULE_ES`` when ES exceeds the margin, else ``RULE_STRESS`` when a named
            stress loss does, else ``RULE_NONE``.
        severity: 0 not over the margin, 1 low, 2 medium, 3 high, 4 critical.
        safe: the binding loss is below the clearing threshold (the account may clear).
    """

    es_usd: FloatArray
    margin_usd: FloatArray
    debt_usd: FloatArray
    stress_loss_usd: FloatArray
    stress_names: tuple[str, ...]
    worst_stress: IntArray
    at_risk_usd: FloatArray
    rule: npt.NDArray[np.int8]
    severity: npt.NDArray[np.int8]
    safe: BoolArray

    def stress_name(self, i: int) -> str:
        k = int(self.worst_stress[i])
        return "" if k < 0 else self.stress_names[k]


# -- the kernels ------------------------------------------------------------------------------

_PLAN: Any = None


def _kernels() -> tuple[Any, Any]:  # also builds the fused ``state_es`` (``_PLAN[2]``)
    """Compile (once) the state-loss and tail kernels; ``plan_liquidation`` is the engine's
    own rule, compiled here as the fast engine compiles it."""
    global _PLAN
    if _PLAN is not None:
        return _PLAN[0], _PLAN[1]
    import numba

    from simulator.cascade import rules

    plan = numba.njit(cache=False, nogil=True, error_model="numpy")(rules.plan_liquidation)
    invalid = rules.FLAG_INVALID

    @numba.njit(inline="always", error_model="numpy")
    def liquidation_cost(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        i, k, coll, debt, price, points, dv, wv, lt, bonus, fee, buffer_units, cft, cfh, dcf, mlo
    ):
        """What the liquidation of account ``i`` in state ``k`` costs it (the bonus on what
        is seized, LT-weighted in buffer units): ``plan_liquidation`` on its largest
        collateral and debt reserves at the state's prices; 0 when none applies."""
        jc, jd = -1, -1
        bc, bd = 0.0, 0.0
        for j in range(coll.shape[1]):
            q = price[j] * points[k, j]
            if coll[i, j] * q > bc:
                bc, jc = coll[i, j] * q, j
            if debt[i, j] * q > bd:
                bd, jd = debt[i, j] * q, j
        if jc < 0 or jd < 0:
            return 0.0
        pc = price[jc] * points[k, jc]
        pd = price[jd] * points[k, jd]
        repay, seize, _f, flags = plan(
            coll[i, jc], debt[i, jd], dv, wv / dv, pc, pd, bonus[i, jc], fee[jc], cft, cfh, dcf, mlo
        )
        if flags == invalid:
            return 0.0
        cost = max(0.0, seize * pc - repay * pd)
        return cost * lt[i, jc] if buffer_units else cost

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def state_losses(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        coll,
        debt,
        price,
        lt,
        bonus,
        fee,
        points,
        margin_now,
        margin_at,
        weighted_at,
        debt_at,
        buffer_units,
        cft,
        cfh,
        dcf,
        mlo,
    ):
        n, s = margin_at.shape
        out = np.empty((n, s))
        for i in numba.prange(n):
            for k in range(s):
                loss = margin_now[i] - margin_at[i, k]
                dv = debt_at[i, k]
                wv = weighted_at[i, k]
                if dv > 0.0 and wv < dv:
                    loss += liquidation_cost(
                        i, k, coll, debt, price, points, dv, wv, lt, bonus, fee,
                        buffer_units, cft, cfh, dcf, mlo,
                    )  # fmt: skip
                out[i, k] = loss
        return out

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def tail_means(losses, weights, tail):  # type: ignore[no-untyped-def]  # compiled
        n, s = losses.shape
        out = np.empty(n)
        for i in numba.prange(n):
            v = losses[i].copy()
            w = weights.copy()
            lo, hi = 0, s
            mass, total = 0.0, 0.0
            while lo < hi:
                a, b, c = v[lo], v[(lo + hi) // 2], v[hi - 1]
                pivot = max(min(a, b), min(max(a, b), c))
                # three-way partition of [lo, hi): > pivot, == pivot, < pivot
                gt, j, lt_ = lo, lo, hi
                while j < lt_:
                    if v[j] > pivot:
                        v[gt], v[j] = v[j], v[gt]
                        w[gt], w[j] = w[j], w[gt]
                        gt += 1
                        j += 1
                    elif v[j] < pivot:
                        lt_ -= 1
                        v[lt_], v[j] = v[j], v[lt_]
                        w[lt_], w[j] = w[j], w[lt_]
                    else:
                        j += 1
                m_gt, s_gt = 0.0, 0.0
                for q in range(lo, gt):
                    m_gt += w[q]
                    s_gt += w[q] * v[q]
                if mass + m_gt >= tail and gt > lo:
                    hi = gt
                    continue
                mass += m_gt
                total += s_gt
                m_eq = 0.0
                for q in range(gt, lt_):
                    m_eq += w[q]
                take = min(m_eq, tail - mass)
                total += take * pivot
                mass += take
                if mass >= tail - 1e-15:
                    break
                lo = lt_
            out[i] = total / tail
        return out

    @numba.njit(inline="always")
    def _sift_down(hv, hw, h):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        i = 0
        while True:
            left = 2 * i + 1
            if left >= h:
                return
            c = left
            if left + 1 < h and hv[left + 1] < hv[left]:
                c = left + 1
            if hv[c] >= hv[i]:
                return
            hv[i], hv[c] = hv[c], hv[i]
            hw[i], hw[c] = hw[c], hw[i]
            i = c

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def state_es(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        coll,
        debt,
        price,
        lt,
        bonus,
        fee,
        points,
        margin_now,
        margin_at,
        buffer_at,
        buffer_units,
        weights,
        tail,
        cft,
        cfh,
        dcf,
        mlo,
    ):
        """ES per account over single-point scenarios, the losses never stored: a min-heap
        keeps the fewest largest losses whose mass reaches the tail."""
        n, s = margin_at.shape
        m = coll.shape[1]
        out = np.empty(n)
        for i in numba.prange(n):
            hv = np.empty(s)
            hw = np.empty(s)
            h = 0
            mass = 0.0
            for k in range(s):
                loss = margin_now[i] - margin_at[i, k]
                if buffer_at[i, k] < 0.0:
                    dv = 0.0
                    for j in range(m):
                        dv += debt[i, j] * (price[j] * points[k, j])
                    if dv > 0.0:
                        loss += liquidation_cost(
                            i, k, coll, debt, price, points, dv, buffer_at[i, k] + dv, lt,
                            bonus, fee, buffer_units, cft, cfh, dcf, mlo,
                        )  # fmt: skip
                wk = weights[k]
                if h > 0 and mass >= tail and loss <= hv[0]:
                    continue
                # push
                j = h
                hv[j] = loss
                hw[j] = wk
                h += 1
                mass += wk
                while j > 0:
                    parent = (j - 1) // 2
                    if hv[parent] <= hv[j]:
                        break
                    hv[parent], hv[j] = hv[j], hv[parent]
                    hw[parent], hw[j] = hw[j], hw[parent]
                    j = parent
                # pop the minimum while the rest still covers the tail
                while h > 1 and mass - hw[0] >= tail:
                    mass -= hw[0]
                    h -= 1
                    hv[0] = hv[h]
                    hw[0] = hw[h]
                    _sift_down(hv, hw, h)
            total = 0.0
            for q in range(1, h):
                total += hv[q] * hw[q]
            above = mass - hw[0]
            total += hv[0] * min(hw[0], tail - above)
            out[i] = total / tail
        return out

    @numba.njit(nogil=True, error_model="numpy")
    def linear_losses(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        i, points_t, margin_x, buffer_x, equity, loss, buffer_at
    ):
        """Account ``i``'s margin fall and buffer at every state, into ``loss`` and
        ``buffer_at`` (length n_states): one pass per asset it holds over the transposed
        multipliers (contiguous, so the loop vectorises); the margin now is returned."""
        m, s = points_t.shape
        margin_now = 0.0
        for k in range(s):
            buffer_at[k] = 0.0
        for j in range(m):
            x = buffer_x[i, j]
            if x != 0.0:
                for k in range(s):
                    buffer_at[k] += x * points_t[j, k]
        if equity:
            for k in range(s):
                loss[k] = 0.0
            for j in range(m):
                x = margin_x[i, j]
                margin_now += x
                if x != 0.0:
                    for k in range(s):
                        loss[k] -= x * points_t[j, k]
            for k in range(s):
                loss[k] += margin_now
        else:
            for j in range(m):
                margin_now += buffer_x[i, j]
            for k in range(s):
                loss[k] = margin_now - buffer_at[k]
        return margin_now

    @numba.njit(nogil=True, error_model="numpy")
    def add_liquidation_costs(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        i, lo, hi, coll, debt, price, lt, bonus, fee, points, debt_x, loss, buffer_at,
        below, buffer_units, cft, cfh, dcf, mlo,
    ):  # fmt: skip
        """Add to ``loss[k]``, for the states ``k`` in ``[lo, hi)`` that leave account ``i``
        liquidatable, what the liquidation costs it; skipped where even the largest cost
        possible (its highest bonus on all its collateral at the state) leaves the loss below
        ``below`` (a loss that cannot reach the tail). True if a cost was added."""
        m = coll.shape[1]
        top_bonus = 0.0
        for j in range(m):
            if coll[i, j] > 0.0 and bonus[i, j] > top_bonus:
                top_bonus = bonus[i, j]
        added = False
        for k in range(lo, hi):
            if buffer_at[k] >= 0.0:
                continue
            dv = 0.0
            cv = 0.0
            for j in range(m):
                q = points[k, j]
                dv += debt_x[i, j] * q
                cv += coll[i, j] * price[j] * q
            if dv <= 0.0 or loss[k] + top_bonus * cv < below:
                continue
            cost = liquidation_cost(
                i, k, coll, debt, price, points, dv, buffer_at[k] + dv, lt, bonus, fee,
                buffer_units, cft, cfh, dcf, mlo,
            )  # fmt: skip
            if cost > 0.0:
                loss[k] += cost
                added = True
        return added

    @numba.njit(nogil=True, error_model="numpy")
    def tail_of(src_v, src_w, s, tail, v, w):  # type: ignore[no-untyped-def]  # pragma: no cover
        """``(ES, VaR)`` of the first ``s`` losses ``src_v`` with probabilities ``src_w``:
        the weighted three-way quickselect of ``tail_means``, on copies in the scratch
        arrays ``v`` and ``w``."""
        for q in range(s):
            v[q] = src_v[q]
            w[q] = src_w[q]
        lo, hi = 0, s
        mass, total = 0.0, 0.0
        var = -np.inf
        while lo < hi:
            a, b, c = v[lo], v[(lo + hi) // 2], v[hi - 1]
            pivot = max(min(a, b), min(max(a, b), c))
            gt, j, lt_ = lo, lo, hi
            while j < lt_:
                if v[j] > pivot:
                    v[gt], v[j] = v[j], v[gt]
                    w[gt], w[j] = w[j], w[gt]
                    gt += 1
                    j += 1
                elif v[j] < pivot:
                    lt_ -= 1
                    v[lt_], v[j] = v[j], v[lt_]
                    w[lt_], w[j] = w[j], w[lt_]
                else:
                    j += 1
            m_gt, s_gt = 0.0, 0.0
            for q in range(lo, gt):
                m_gt += w[q]
                s_gt += w[q] * v[q]
            if mass + m_gt >= tail and gt > lo:
                hi = gt
                continue
            mass += m_gt
            total += s_gt
            m_eq = 0.0
            for q in range(gt, lt_):
                m_eq += w[q]
            take = min(m_eq, tail - mass)
            total += take * pivot
            mass += take
            var = pivot
            if mass >= tail - 1e-15:
                break
            lo = lt_
        return total / tail, var

    @numba.njit(inline="always")
    def _rows6(scratch):  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        return scratch[2], scratch[3], scratch[4], scratch[5], scratch[6], scratch[7]

    @numba.njit(nogil=True, error_model="numpy")
    def tail_filtered(v, w, tail, sv, sw, cv, cw, bv, bw):  # type: ignore[no-untyped-def]
        """``tail_of``, faster on many states: a threshold from every 16th state (the VaR
        of that subsample at 3 x the tail, in its own mass), then the exact selection over
        the states at or above it, which hold every state of the tail whenever their mass
        reaches it (else, rarely, over all states). Exact either way. ``sv`` .. ``bw`` are
        scratch arrays of the states' length."""
        s = v.size
        step = 16
        if s < 32 * step:
            return tail_of(v, w, s, tail, bv, bw)
        ns = (s + step - 1) // step
        sub_mass = 0.0
        for q in range(ns):
            sv[q] = v[q * step]
            sw[q] = w[q * step]
            sub_mass += sw[q]
        if not sub_mass > 0.0:
            return tail_of(v, w, s, tail, bv, bw)
        level = min(1.0, 3.0 * tail)
        for q in range(ns):
            sw[q] /= sub_mass
        _, threshold = tail_of(sv, sw, ns, level, bv, bw)
        count = 0
        mass = 0.0
        for k in range(s):
            if v[k] >= threshold:
                count += 1
                mass += w[k]
        if mass < tail:
            return tail_of(v, w, s, tail, bv, bw)
        q = 0
        for k in range(s):
            if v[k] >= threshold:
                cv[q] = v[k]
                cw[q] = w[k]
                q += 1
        return tail_of(cv, cw, count, tail, bv, bw)

    @numba.njit(nogil=True, error_model="numpy")
    def tail_above(v, w, tail, threshold, sv, sw, cv, cw, bv, bw):  # type: ignore[no-untyped-def]
        """ES of ``v`` when the states at or above ``threshold`` hold at least the tail's
        mass (else over all states)."""
        s = v.size
        count = 0
        mass = 0.0
        for k in range(s):
            if v[k] >= threshold:
                cv[count] = v[k]
                cw[count] = w[k]
                count += 1
                mass += w[k]
        if mass < tail:
            return tail_of(v, w, s, tail, bv, bw)[0]
        return tail_of(cv, cw, count, tail, bv, bw)[0]

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def fused_es(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        coll, debt, price, lt, bonus, fee, points, points_t, margin_x, buffer_x, debt_x,
        equity, buffer_units, weights, tail, cft, cfh, dcf, mlo,
    ):  # fmt: skip
        """ES per account over single-point scenarios; per account one vector of losses,
        never a matrix. The tail is first found over the margin falls alone; liquidation
        costs are computed only for the states whose loss could still reach it (a cost is
        >= 0, so the VaR of the full losses is at least that of the falls), then the ES is
        taken again over the full losses."""
        n = coll.shape[0]
        s = points.shape[0]
        out = np.empty(n)
        block = 64  # accounts per task: the scratch arrays are allocated once per block
        for b in numba.prange((n + block - 1) // block):
            scratch = np.empty((8, s))
            loss, buffer_at = scratch[0], scratch[1]
            for i in range(b * block, min(n, (b + 1) * block)):
                linear_losses(i, points_t, margin_x, buffer_x, equity, loss, buffer_at)
                es, var = tail_filtered(loss, weights, tail, *_rows6(scratch))
                if add_liquidation_costs(
                    i, 0, s, coll, debt, price, lt, bonus, fee, points, debt_x, loss,
                    buffer_at, var, buffer_units, cft, cfh, dcf, mlo,
                ):  # fmt: skip
                    # The full losses are >= the falls, so the states at or above the falls'
                    # VaR still hold the tail's mass: select among them only.
                    es = tail_above(loss, weights, tail, var, *_rows6(scratch))
                out[i] = es
        return out

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def fused_worst(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        coll, debt, price, lt, bonus, fee, points, points_t, starts, margin_x, buffer_x,
        debt_x, equity, buffer_units, cft, cfh, dcf, mlo,
    ):  # fmt: skip
        """Each account's worst loss over the points of each scenario (``starts``): the
        margin falls as one vector, liquidation costs only where the loss could still beat
        the scenario's worst fall."""
        n = coll.shape[0]
        n_scen = starts.size
        s = points.shape[0]
        out = np.empty((n, n_scen))
        for i in numba.prange(n):
            loss = np.empty(s)
            buffer_at = np.empty(s)
            linear_losses(i, points_t, margin_x, buffer_x, equity, loss, buffer_at)
            for sc in range(n_scen):
                lo = starts[sc]
                hi = starts[sc + 1] if sc + 1 < n_scen else s
                worst = -np.inf
                for k in range(lo, hi):
                    worst = max(worst, loss[k])
                if add_liquidation_costs(
                    i, lo, hi, coll, debt, price, lt, bonus, fee, points, debt_x, loss,
                    buffer_at, worst, buffer_units, cft, cfh, dcf, mlo,
                ):  # fmt: skip
                    for k in range(lo, hi):
                        worst = max(worst, loss[k])
                out[i, sc] = worst
        return out

    _PLAN = (state_losses, tail_means, state_es, fused_es, fused_worst)
    return state_losses, tail_means


def _as_rows(a: npt.ArrayLike, n: int, m: int) -> FloatArray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = np.broadcast_to(arr[None, :], (n, m))
    return np.ascontiguousarray(arr)


def point_losses(
    coll: FloatArray,
    debt: FloatArray,
    price: FloatArray,
    lt: FloatArray,
    bonus: FloatArray,
    fee: FloatArray,
    points: FloatArray,
    kind: MarginKind,
    rules: LiquidationRules,
) -> FloatArray:
    """Loss of each account at each point, USD, ``(n_accounts, n_points)``.

    ``coll`` is the collateral that counts (token units), ``lt`` and ``bonus`` per account
    and asset (e-mode where it applies). Loss = margin now - margin at the point, plus, where
    the point leaves the account liquidatable (HF < 1), the bonus on what a liquidation there
    would seize (``simulator.cascade.rules.plan_liquidation`` on the largest collateral and
    debt reserves at the point's prices), LT-weighted for ``liquidation-buffer``.
    """
    state_losses, _ = _kernels()
    w_now = (coll * lt) @ price
    d_now = debt @ price
    c_now = coll @ price
    margin_now = c_now - d_now if kind == "equity" else w_now - d_now
    pts = np.ascontiguousarray(points, dtype=np.float64)
    weighted_at = (coll * lt * price) @ pts.T
    debt_at = (debt * price) @ pts.T
    margin_at = (coll * price) @ pts.T - debt_at if kind == "equity" else weighted_at - debt_at
    out: FloatArray = state_losses(
        np.ascontiguousarray(coll),
        np.ascontiguousarray(debt),
        price,
        lt,
        bonus,
        fee,
        pts,
        margin_now,
        margin_at,
        weighted_at,
        debt_at,
        kind == "liquidation-buffer",
        rules.close_factor_threshold_usd,
        rules.close_factor_hf,
        rules.default_close_factor,
        rules.min_leftover_usd,
    )
    return out


def _states_es(
    coll: FloatArray,
    debt: FloatArray,
    price: FloatArray,
    lt: FloatArray,
    bonus: FloatArray,
    fee: FloatArray,
    stress: StressSet,
    kind: MarginKind,
    rules: LiquidationRules,
    alpha: float,
) -> FloatArray:
    """ES over a set of single-point scenarios (the loss of ``point_losses``), fused: the
    linear parts by two matrix products, liquidation costs and the tail in one kernel."""
    _check_alpha(alpha)
    _kernels()
    state_es = _PLAN[2]
    pts = np.ascontiguousarray(stress.points, dtype=np.float64)
    n = pts.shape[0]
    w = np.full(n, 1.0 / n) if stress.weights is None else stress.weights / stress.weights.sum()
    buffer_x = (coll * lt - debt) * price
    buffer_at = buffer_x @ pts.T
    if kind == "equity":
        margin_x = (coll - debt) * price
        margin_at = margin_x @ pts.T
    else:
        margin_x = buffer_x
        margin_at = buffer_at
    out: FloatArray = state_es(
        np.ascontiguousarray(coll),
        np.ascontiguousarray(debt),
        price,
        lt,
        bonus,
        fee,
        pts,
        margin_x.sum(axis=1),
        margin_at,
        buffer_at,
        kind == "liquidation-buffer",
        np.ascontiguousarray(w),
        1.0 - float(alpha),
        rules.close_factor_threshold_usd,
        rules.close_factor_hf,
        rules.default_close_factor,
        rules.min_leftover_usd,
    )
    return out


def _exposures(
    coll: FloatArray, debt: FloatArray, price: FloatArray, lt: FloatArray, kind: MarginKind
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per account and asset, USD: the margin's exposure (its row sum is the margin), the
    buffer's (collateral x LT - debt) and the debt's; each dotted with a state's multipliers
    gives that quantity in the state."""
    buffer_x = np.ascontiguousarray((coll * lt - debt) * price)
    debt_x = np.ascontiguousarray(debt * price)
    margin_x = np.ascontiguousarray((coll - debt) * price) if kind == "equity" else buffer_x
    return margin_x, buffer_x, debt_x


def scenario_worst_losses(
    coll: FloatArray,
    debt: FloatArray,
    price: FloatArray,
    lt: FloatArray,
    bonus: FloatArray,
    fee: FloatArray,
    stress: StressSet,
    kind: MarginKind,
    rules: LiquidationRules,
) -> FloatArray:
    """Each account's worst loss (as ``point_losses``) over each scenario's points, USD,
    ``(n_accounts, n_scenarios)``, in one compiled pass that stores no loss matrix."""
    _kernels()
    fused_worst = _PLAN[4]
    pts = np.ascontiguousarray(stress.points, dtype=np.float64)
    margin_x, buffer_x, debt_x = _exposures(coll, debt, price, lt, kind)
    out: FloatArray = fused_worst(
        np.ascontiguousarray(coll),
        np.ascontiguousarray(debt),
        price,
        np.ascontiguousarray(lt),
        np.ascontiguousarray(bonus),
        fee,
        pts,
        np.ascontiguousarray(pts.T),
        np.ascontiguousarray(stress.starts, dtype=np.int64),
        margin_x,
        buffer_x,
        debt_x,
        kind == "equity",
        kind == "liquidation-buffer",
        rules.close_factor_threshold_usd,
        rules.close_factor_hf,
        rules.default_close_factor,
        rules.min_leftover_usd,
    )
    return out


def _states_es_fused(
    coll: FloatArray,
    debt: FloatArray,
    price: FloatArray,
    lt: FloatArray,
    bonus: FloatArray,
    fee: FloatArray,
    stress: StressSet,
    kind: MarginKind,
    rules: LiquidationRules,
    alpha: float,
) -> FloatArray:
    """``_states_es`` in one compiled pass: the margins at the states are dotted in the
    kernel, so nothing of size accounts x states is ever written (the matrix products
    ``_states_es`` makes are memory-bound: 20,000 x 4,096 doubles are 655 MB)."""
    _check_alpha(alpha)
    _kernels()
    fused_es = _PLAN[3]
    pts = np.ascontiguousarray(stress.points, dtype=np.float64)
    n = pts.shape[0]
    w = np.full(n, 1.0 / n) if stress.weights is None else stress.weights / stress.weights.sum()
    margin_x, buffer_x, debt_x = _exposures(coll, debt, price, lt, kind)
    out: FloatArray = fused_es(
        np.ascontiguousarray(coll),
        np.ascontiguousarray(debt),
        price,
        np.ascontiguousarray(lt),
        np.ascontiguousarray(bonus),
        fee,
        pts,
        np.ascontiguousarray(pts.T),
        margin_x,
        buffer_x,
        debt_x,
        kind == "equity",
        kind == "liquidation-buffer",
        np.ascontiguousarray(w),
        1.0 - float(alpha),
        rules.close_factor_threshold_usd,
        rules.close_factor_hf,
        rules.default_close_factor,
        rules.min_leftover_usd,
    )
    return out


def es_weighted(losses: FloatArray, alpha: float, weights: FloatArray | None = None) -> FloatArray:
    """Acerbi-Tasche ES per row, as ``es_rows``, by a weighted three-way quickselect per row
    (expected linear time, compiled, rows in parallel)."""
    _check_alpha(alpha)
    _, tail_means = _kernels()
    loss = np.ascontiguousarray(losses, dtype=np.float64)
    n = loss.shape[1]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    out: FloatArray = tail_means(loss, w, 1.0 - float(alpha))
    return out


def evaluate(
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    collateral_enabled: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    liquidation_threshold: npt.ArrayLike,
    stress: StressSet | None,
    *,
    named: StressSet | None = None,
    liquidation_bonus: npt.ArrayLike | None = None,
    protocol_fee: npt.ArrayLike | None = None,
    price_ratio: npt.ArrayLike | None = None,
    alpha: float = DEFAULT_ALPHA,
    margin: MarginKind = "equity",
    thresholds: FlagThresholds | None = None,
    usd_grades: Severity | None = None,
    min_usd: float = DEFAULT_MIN_USD,
    rules: LiquidationRules | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StressEvaluation:
    """Stressed ES, named stress losses, margin, rule, severity and safe mask of a book.

    Balances ``(n_accounts, n_assets)`` in token units, prices USD per token ``(n_assets,)``;
    ``liquidation_threshold`` and ``liquidation_bonus`` either per asset ``(n_assets,)`` or
    per account and asset (e-mode: the account's class's, ``Book.account_lt`` /
    ``account_bonus``); ``protocol_fee`` per asset. ``price_ratio`` ``(n_accounts, n_assets)``
    is the price each account is valued at over the oracle price (a v3.0 e-mode category's
    price source, ``Book.class_price_usd / Book.price_usd`` of the account's class; 1 when
    omitted): it is held fixed while the stress moves the oracle prices, as the cascade
    engine holds it, so it is applied by scaling the account's balances (every value, the
    margin and ``plan_liquidation``'s USD amounts are then the class-priced ones). ``stress`` is the
    probabilistic set (one scenario per state, or per path with its states as points: the
    loss is the worst point), ``named`` the named stresses, each scored alone as the
    account's worst loss along its path. Accounts below ``min_usd`` of debt are never flagged
    and their losses are not computed (reported 0).
    """
    if margin not in MARGIN_KINDS:
        raise InputError(f"margin {margin!r} is unknown; expected one of {list(MARGIN_KINDS)}")
    if stress is None and named is None:
        raise InputError("nothing to evaluate: no probabilistic set and no named stress")
    c = np.asarray(collateral, dtype=np.float64)
    d = np.asarray(debt, dtype=np.float64)
    e = np.asarray(collateral_enabled, dtype=bool)
    p = np.asarray(price_usd, dtype=np.float64)
    n, m_assets = c.shape
    lt = _as_rows(liquidation_threshold, n, m_assets)
    bonus = _as_rows(
        np.zeros(m_assets) if liquidation_bonus is None else liquidation_bonus, n, m_assets
    )
    fee = np.asarray(np.zeros(m_assets) if protocol_fee is None else protocol_fee, np.float64)
    if price_ratio is not None:
        ratio = _as_rows(price_ratio, n, m_assets)
        if not (np.isfinite(ratio).all() and (ratio > 0.0).all()):
            raise InputError("price_ratio must be finite and > 0 for every account and asset")
        c = c * ratio
        d = d * ratio
    eff = np.where(e & (lt > 0.0), c, 0.0)
    debt_usd = np.asarray(d @ p, dtype=np.float64)
    if margin == "equity":
        margin_now = np.asarray(eff @ p - debt_usd, dtype=np.float64)
    else:
        margin_now = np.asarray((eff * lt) @ p - debt_usd, dtype=np.float64)
    rules = rules or LiquidationRules.from_engine()
    es = np.zeros(n)
    n_named = 0 if named is None else named.n_scenarios
    stress_loss = np.zeros((n, n_named))
    rows = np.flatnonzero((debt_usd > 0.0) & (debt_usd >= min_usd))
    step = max(1, chunk_rows)
    for lo in range(0, rows.size, step):
        r = rows[lo : lo + step]
        args = (eff[r], d[r], p, lt[r], bonus[r], fee)
        if stress is not None and stress.n_scenarios == stress.n_points:
            es[r] = _states_es_fused(*args, stress, margin, rules, alpha)
        elif stress is not None:
            pl = scenario_worst_losses(*args, stress, margin, rules)
            es[r] = es_weighted(pl, alpha, stress.weights)
        if named is not None:
            stress_loss[r] = scenario_worst_losses(*args, named, margin, rules)
    return evaluation(
        es,
        margin_now,
        debt_usd,
        stress_loss,
        named,
        thresholds=thresholds,
        usd_grades=usd_grades,
        min_usd=min_usd,
    )


def evaluation(
    es: FloatArray,
    margin_now: FloatArray,
    debt_usd: FloatArray,
    stress_loss: FloatArray,
    named: StressSet | None,
    *,
    thresholds: FlagThresholds | None = None,
    usd_grades: Severity | None = None,
    min_usd: float = DEFAULT_MIN_USD,
) -> StressEvaluation:
    """The ``StressEvaluation`` of accounts' ES, margin, debt and named stress losses
    (``(n_accounts, n_named)``): the worst named stress, the flag rule (``classify``), the
    rule code and the USD at risk. Shared by every protocol's loss."""
    n = es.shape[0]
    n_named = 0 if named is None else named.n_scenarios
    if n_named:
        worst = np.argmax(stress_loss, axis=1).astype(np.int64)
        worst_loss = stress_loss[np.arange(n), worst]
    else:
        worst = np.full(n, -1, dtype=np.int64)
        worst_loss = np.zeros(n)
    severity, safe = classify(
        es,
        margin_now,
        debt_usd,
        thresholds,
        stress_loss_usd=worst_loss,
        min_usd=min_usd,
        usd_grades=usd_grades,
    )
    over = severity > 0
    rule = np.where(over & (es > margin_now), RULE_ES, np.where(over, RULE_STRESS, RULE_NONE))
    at_risk = np.maximum(0.0, np.maximum(es, worst_loss) - margin_now)
    return StressEvaluation(
        es_usd=es,
        margin_usd=margin_now,
        debt_usd=debt_usd,
        stress_loss_usd=stress_loss,
        stress_names=() if named is None else named.labels,
        worst_stress=worst,
        at_risk_usd=at_risk,
        rule=rule.astype(np.int8),
        severity=severity,
        safe=safe,
    )
