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

**Margin.** ``equity``: collateral value minus debt value. ``liquidation-buffer``:
sum(collateral value x LT) minus debt value, the cushion before the account can be liquidated.

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
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulator.errors import InputError, NumericalWarning

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_MC_PATHS",
    "DEFAULT_MC_SEED",
    "MARGIN_KINDS",
    "SEVERITIES",
    "FlagThresholds",
    "MarginKind",
    "StressEvaluation",
    "StressSet",
    "classify",
    "es_rows",
    "evaluate",
    "exposure_usd",
    "margin_usd",
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


@dataclass(frozen=True, slots=True)
class StressEvaluation:
    """Per-account result of one evaluation; every array has shape ``(n_accounts,)``.

    Attributes:
        es_usd: stressed expected shortfall of the account's equity loss, USD.
        margin_usd: posted margin (equity or liquidation buffer), USD.
        debt_usd: debt value, USD.
        severity: 0 not over the margin, 1 low, 2 medium, 3 high, 4 critical.
        safe: ES is below the clearing threshold (the account may clear).
    """

    es_usd: FloatArray
    margin_usd: FloatArray
    debt_usd: FloatArray
    severity: npt.NDArray[np.int8]
    safe: BoolArray


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


def classify(
    es_usd: FloatArray,
    margin: FloatArray,
    debt_usd: FloatArray,
    thresholds: FlagThresholds | None = None,
) -> tuple[npt.NDArray[np.int8], BoolArray]:
    """Severity code (0 none .. 4 critical) and the *safe* mask per account.

    Over: debt > 0 and ES > margin. Severity by ES / margin; margin <= 0 is critical.
    Safe: no debt, or ES < margin - (1 - clear_ratio) x |margin|.
    """
    t = thresholds or FlagThresholds()
    es = np.asarray(es_usd, dtype=np.float64)
    m = np.asarray(margin, dtype=np.float64)
    has_debt = np.asarray(debt_usd, dtype=np.float64) > 0.0
    over = has_debt & (es > m)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m > 0.0, es / np.where(m > 0.0, m, 1.0), np.inf)
    sev = np.where(
        ratio > t.critical, 4, np.where(ratio > t.high, 3, np.where(ratio > t.medium, 2, 1))
    )
    severity = np.where(over, sev, 0).astype(np.int8)
    safe = ~has_debt | (es < m - (1.0 - t.clear_ratio) * np.abs(m))
    return severity, np.asarray(safe, dtype=np.bool_)


def evaluate(
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    collateral_enabled: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    liquidation_threshold: npt.ArrayLike,
    stress: StressSet,
    *,
    alpha: float = DEFAULT_ALPHA,
    margin: MarginKind = "equity",
    thresholds: FlagThresholds | None = None,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    debtors_only: bool = True,
) -> StressEvaluation:
    """Stressed ES, margin, severity and safe mask of every account of a book.

    Balances ``(n_accounts, n_assets)`` in token units, prices USD per token and LTs as
    fractions ``(n_assets,)``, assets in the order of ``stress.symbols``. With
    ``debtors_only`` ES is computed only for accounts with debt (the others can never be
    flagged) and reported as 0 for the rest, which saves the bulk of the work on books where
    most accounts only supply.
    """
    x = exposure_usd(collateral, debt, collateral_enabled, price_usd, liquidation_threshold)
    m = margin_usd(margin, collateral, debt, collateral_enabled, price_usd, liquidation_threshold)
    d = np.asarray(
        np.asarray(debt, dtype=np.float64) @ np.asarray(price_usd, dtype=np.float64),
        dtype=np.float64,
    )
    if debtors_only:
        es = np.zeros(x.shape[0], dtype=np.float64)
        rows = np.flatnonzero(d > 0.0)
        if rows.size:
            es[rows] = stressed_es(x[rows], stress, alpha, chunk_rows=chunk_rows)
    else:
        es = stressed_es(x, stress, alpha, chunk_rows=chunk_rows)
    severity, safe = classify(es, m, d, thresholds)
    return StressEvaluation(es_usd=es, margin_usd=m, debt_usd=d, severity=severity, safe=safe)
