"""Risk measures of a loss distribution: VaR, Expected Shortfall, their closed forms,
an EVT tail estimator, a bootstrap interval, Euler contributions and backtests.

Conventions
-----------
* Losses are positive numbers: USD of shortfall (bad debt) per scenario, shape
  ``(n_scenarios,)``. Negative values are gains and are allowed.
* ``alpha`` is the confidence level, strictly between 0 and 1 (default 0.975, the Basel
  FRTB level); ``1 - alpha`` is the tail probability.
* ``weights`` are scenario probabilities (importance sampling), shape ``(n_scenarios,)``,
  non-negative and normalised by their sum; ``None`` means equally likely scenarios.
* VaR is the lower alpha-quantile ``inf{l : P(L <= l) >= alpha}`` of the (weighted)
  empirical distribution; ES is the Acerbi-Tasche expected shortfall, the mean of the
  worst ``1 - alpha`` of probability mass, taking the right fraction of the atom at VaR::

      ES = ( E[L 1{L > VaR}] + VaR * (P(L <= VaR) - alpha) ) / (1 - alpha)

  This is *not* "the mean of the losses >= VaR", which is wrong whenever losses tie at
  VaR (bad-debt samples are mostly ties at zero).

Probability comparisons (is the mass above a loss at most ``1 - alpha``?) use an absolute
tolerance of ``PROB_TOL = 1e-12`` so that a decimal alpha is read as the decimal it
denotes: ``alpha=0.9`` on 10 equally likely scenarios puts exactly one scenario in the
tail, although the binary ``0.9`` is a hair above 9/10. This changes ES by at most
``PROB_TOL / (1 - alpha)`` relative to the loss spread, and only at such exact
boundaries; ES is continuous in alpha, so it is the VaR index that the tolerance fixes.

Bad input (empty, NaN or inf, negative or all-zero weights, mismatched lengths, alpha
outside (0, 1), wrong number of dimensions) raises :class:`simulator.errors.InputError`
whose message names the argument and the problem.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from simulator.errors import InputError, NumericalWarning

__all__ = [
    "DEFAULT_ALPHA",
    "DEFAULT_SEED",
    "PROB_TOL",
    "ChristoffersenResult",
    "ESInterval",
    "EVTResult",
    "GPDTail",
    "KupiecResult",
    "Z2Test",
    "acerbi_szekely_z2",
    "acerbi_szekely_z2_pvalue",
    "christoffersen",
    "es",
    "es_ci",
    "es_contributions",
    "es_normal",
    "es_student_t",
    "evt_es",
    "evt_fit",
    "evt_var",
    "exception_probability",
    "kupiec_pof",
    "kupiec_pof_varying",
    "tail_weights",
    "var",
    "var_normal",
    "var_student_t",
]

FloatArray = npt.NDArray[np.float64]
"""A float64 array; the shape is named where it is used."""

DEFAULT_ALPHA = 0.975
"""Default confidence level (Basel FRTB expected shortfall)."""

PROB_TOL = 1e-12
"""Absolute tolerance on probability masses when locating VaR (see the module docstring)."""

DEFAULT_SEED = 20_240_607
"""Seed used by :func:`es_ci` and :func:`acerbi_szekely_z2_pvalue` when ``rng`` is None."""

_FSUM_MAX = 1 << 18
"""Tails up to this many terms are summed exactly rounded (``math.fsum``); longer ones
use numpy's pairwise summation (error O(log n) ulps), to keep ``es`` O(n) and fast."""

_SELECT_DIRECT = 1 << 16
"""Samples up to this size are selected/sorted directly, larger ones via a pivot."""

_BOOT_BLOCK = 1 << 22
"""Bootstrap resamples are drawn in blocks of about this many losses (32 MiB of float64)."""


# --------------------------------------------------------------------------- validation


def _check_alpha(alpha: object, name: str = "alpha") -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise InputError(f"{name}: must be a real number strictly between 0 and 1, got {alpha!r}")
    a = float(alpha)
    if not (0.0 < a < 1.0):  # also rejects NaN
        raise InputError(f"{name}: must be strictly between 0 and 1, got {a!r}")
    return a


def _check_finite_scalar(value: object, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name}: must be a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{name}: must be finite, got {v!r}")
    if positive and v <= 0.0:
        raise InputError(f"{name}: must be > 0, got {v!r}")
    return v


def _as_float_array(values: npt.ArrayLike, name: str, ndim: int) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: cannot be read as an array of numbers ({exc})") from exc
    if arr.ndim != ndim:
        shape = "(n_scenarios,)" if ndim == 1 else "(n_scenarios, n_parts)"
        raise InputError(
            f"{name}: expected a {ndim}-D array of shape {shape}, got {arr.ndim}-D shape {arr.shape}"
        )
    if arr.size == 0:
        raise InputError(f"{name}: is empty (shape {arr.shape}); need at least one scenario")
    _check_finite_array(arr, name)
    return arr


def _check_finite_array(arr: npt.NDArray[Any], name: str) -> None:
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        where = first[0] if len(first) == 1 else first
        raise InputError(
            f"{name}: contains {len(bad)} NaN or infinite value(s) (first at index {where}, "
            f"value {float(arr[first])!r}); every value must be finite"
        )


def _as_losses(losses: npt.ArrayLike, name: str = "losses") -> FloatArray:
    return _as_float_array(losses, name, 1)


def _as_weights(weights: npt.ArrayLike, n: int, name: str = "weights") -> FloatArray:
    w = _as_float_array(weights, name, 1)
    if w.size != n:
        raise InputError(
            f"{name}: length {w.size} does not match the number of scenarios {n}; "
            "give one probability per scenario"
        )
    negative = w < 0.0
    if negative.any():
        i = int(np.argmax(negative))
        raise InputError(
            f"{name}: {int(negative.sum())} negative value(s) (first at index {i}: {float(w[i])!r}); "
            "scenario probabilities must be >= 0"
        )
    top = float(w.max())
    if top == 0.0:
        raise InputError(f"{name}: all zero; at least one scenario needs a positive probability")
    # Rescale by a power of two (exact) so the largest weight is in [0.5, 1): sums and
    # products of tiny or huge weights then neither underflow nor overflow.
    return np.ldexp(w, -math.frexp(top)[1])


def _sum(values: FloatArray) -> float:
    """Sum of a 1-D array: exactly rounded up to ``_FSUM_MAX`` terms, pairwise beyond."""
    if values.size <= _FSUM_MAX:
        try:
            return math.fsum(values.tolist())
        except OverflowError:  # the sum is beyond float64; numpy returns the signed inf
            pass
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sum(values))


# --------------------------------------------------------------------------- core


class _Tail(NamedTuple):
    """Where the (1 - alpha) tail of a discrete distribution sits.

    The tail mass ``denom`` (in the units of the weights: scenario counts when unweighted)
    is ``mass_above`` (losses strictly above VaR) plus ``frac`` taken from the atom at VaR.
    ``sum_above`` is sum(weight * loss) over the losses strictly above VaR.
    """

    var: float
    sum_above: float
    mass_above: float
    frac: float
    denom: float

    @property
    def es(self) -> float:
        if self.denom <= 0.0 or self.mass_above == 0.0:  # the tail lies in the atom at VaR
            return self.var
        return (self.sum_above + self.var * self.frac) / self.denom


def _tail_unweighted(x: FloatArray, alpha: float) -> _Tail:
    n = x.size
    nq = n * (1.0 - alpha)  # tail size in scenarios; 1 - alpha is exact for alpha >= 0.5
    # m = the largest number of scenarios whose mass m/n is <= 1 - alpha (+ PROB_TOL);
    # VaR is then the (m + 1)-th largest loss.
    m = min(math.floor(nq + n * PROB_TOL), n - 1)
    v, above = _nth_largest(x, m)
    return _tail_from_above(v, above, float(above.size), nq, n)


def _nth_largest(x: FloatArray, r: int) -> tuple[float, FloatArray]:
    """The loss ``v`` of descending rank ``r`` (0 = the maximum), and the losses > ``v``.

    O(n). ``np.partition`` slows down badly on heavily tied data (bad-debt samples are
    mostly zeros), so for large samples a pivot ``c`` a little below the answer is read
    off a subsample; then either the answer is in the (small) set of losses above ``c``,
    or it is ``c`` itself (an atom), or, if the pivot missed, a plain partition decides.
    """
    n = x.size
    if r == 0:
        v = float(x.max())
        return v, x[x > v]
    sub = _pivot_sample(x)
    if sub is not None:
        s = sub.size
        expected = r * s / n  # rank of the answer in the subsample
        j = int(1.25 * expected + 4.0 * math.sqrt(expected) + 8.0)
        if j < s:
            c = float(np.partition(sub, s - 1 - j)[s - 1 - j])
            above_c = x[x > c]
            k = above_c.size
            if k > r:
                part = np.partition(above_c, k - 1 - r)
                v = float(part[k - 1 - r])
                top = part[k - r :]
                return v, top[top > v]
            if k + np.count_nonzero(x == c) > r:
                return c, above_c
    part = np.partition(x, n - 1 - r)
    v = float(part[n - 1 - r])
    top = part[n - r :]
    return v, top[top > v]


def _pivot_sample(x: FloatArray) -> FloatArray | None:
    """A strided subsample of about 32k losses to place a selection pivot, or None if small."""
    if x.size <= _SELECT_DIRECT:
        return None
    return x[:: x.size // (_SELECT_DIRECT // 2)]


def _tail_from_above(v: float, above: FloatArray, a: float, nq: float, n: int) -> _Tail:
    frac = nq - a
    if abs(frac) <= n * PROB_TOL:  # the tail ends exactly at an atom boundary
        return _Tail(v, _sum(above), a, 0.0, a)
    return _Tail(v, _sum(above), a, frac, nq)


def _tail_weighted(x: FloatArray, alpha: float, w: FloatArray) -> _Tail:
    total = _sum(w)
    target = (1.0 - alpha) * total  # tail mass, in weight units
    tol = PROB_TOL * total
    xs, ws = _weighted_candidates(x, w, target + tol)
    order = np.argsort(xs, kind="stable")[::-1]  # descending losses
    xs = xs[order]
    ws = ws[order]
    # Cumulative mass from the top: small numbers, so no cancellation against 1.
    from_top = np.cumsum(ws)
    m = min(int(np.searchsorted(from_top, target + tol, side="right")), xs.size - 1)
    v = float(xs[m])
    head = slice(0, m)
    gt = xs[head] > v
    w_above = ws[head][gt]
    a = _sum(w_above)
    s = _sum(w_above * xs[head][gt])
    frac = target - a
    if abs(frac) <= tol:
        return _Tail(v, s, a, 0.0, a)
    e = _sum(ws[xs == v])
    if abs(frac - e) <= tol:  # the whole atom at VaR is in the tail (cumsum rounding)
        return _Tail(v, s, a, e, a + e)
    return _Tail(v, s, a, frac, target)


def _weighted_candidates(
    x: FloatArray, w: FloatArray, threshold: float
) -> tuple[FloatArray, FloatArray]:
    """(loss, weight) pairs that surely contain VaR and every loss >= VaR.

    Avoids sorting all n losses. A pivot ``c`` is read off a subsample; the candidates are
    the losses strictly above ``c`` plus one pair ``(c, total weight of the losses equal to
    c)`` (merging a tie does not change VaR or ES). They suffice when their mass exceeds
    ``threshold`` (the tail mass); otherwise the pivot is lowered, and in the end the whole
    sample is used.
    """
    sub = _pivot_sample(x)
    if sub is None:
        return x, w
    s = sub.size
    total = float(np.sum(w))
    expected = s * threshold / total  # subsample rank of VaR if the weights were equal
    j = int(1.5 * expected + 4.0 * math.sqrt(expected) + 16.0)
    while j < s:
        c = float(np.partition(sub, s - 1 - j)[s - 1 - j])
        gt = x > c
        w_gt = w[gt]
        w_eq = float(np.sum(w[x == c]))
        # A relative margin covers the rounding of this check against the later cumsum.
        if float(np.sum(w_gt)) + w_eq > threshold * (1.0 + 1e-9):
            return np.append(x[gt], c), np.append(w_gt, w_eq)
        j *= 4
    return x, w


def _tail(losses: npt.ArrayLike, alpha: float, weights: npt.ArrayLike | None) -> _Tail:
    alpha = _check_alpha(alpha)
    x = _as_losses(losses)
    if weights is None:
        return _tail_unweighted(x, alpha)
    return _tail_weighted(x, alpha, _as_weights(weights, x.size))


def var(
    losses: npt.ArrayLike, alpha: float = DEFAULT_ALPHA, weights: npt.ArrayLike | None = None
) -> float:
    """Value at Risk: the lower ``alpha``-quantile of the (weighted) empirical loss distribution.

    Args:
        losses: loss per scenario, USD (positive = loss), shape ``(n_scenarios,)``.
        alpha: confidence level in (0, 1).
        weights: scenario probabilities, shape ``(n_scenarios,)``, normalised by their sum;
            ``None`` for equally likely scenarios.

    Returns:
        ``inf{l : P(L <= l) >= alpha}``, USD; always one of the sample losses.

    Unweighted: O(n) selection (``np.partition``). Weighted: O(n) selection of a candidate
    tail, then a sort of that tail only (the whole sample in the worst case).
    """
    return _tail(losses, alpha, weights).var


def es(
    losses: npt.ArrayLike, alpha: float = DEFAULT_ALPHA, weights: npt.ArrayLike | None = None
) -> float:
    """Expected Shortfall (Acerbi-Tasche) of the (weighted) empirical loss distribution.

    ``ES = (E[L 1{L > VaR}] + VaR * (P(L <= VaR) - alpha)) / (1 - alpha)``: the mean of
    the worst ``1 - alpha`` of probability mass, with the right fraction of the atom at VaR.
    Example: 100 equally likely scenarios, alpha 0.96, the four worst losses 11, 14, 20, 35
    and VaR 10 give ES = (11 + 14 + 20 + 35) / 4 = 20.

    Args:
        losses: loss per scenario, USD (positive = loss), shape ``(n_scenarios,)``.
        alpha: confidence level in (0, 1).
        weights: scenario probabilities, shape ``(n_scenarios,)``, normalised by their sum;
            ``None`` for equally likely scenarios.

    Returns:
        Expected Shortfall, USD. ``es >= var`` always.

    Unweighted: O(n) selection (``np.partition``), well under a second for 10 million
    losses; tail sums are exactly rounded (``math.fsum``) up to 2**18 tail terms.
    Weighted: selection of a candidate tail, then a sort of it; tail mass accumulated
    from the top (no cancellation against 1).
    """
    return _tail(losses, alpha, weights).es


def tail_weights(
    losses: npt.ArrayLike, alpha: float = DEFAULT_ALPHA, weights: npt.ArrayLike | None = None
) -> FloatArray:
    """Per-scenario weights ``t`` of the ES tail: ``es(losses) == t @ losses``.

    ``t[i] = p[i] / (1 - alpha)`` for scenarios strictly above VaR, the fractional
    remainder ``(P(L <= VaR) - alpha) / (1 - alpha)`` shared among the scenarios tied at
    VaR in proportion to their probabilities ``p`` (equally when unweighted), and 0 below.
    ``t >= 0`` and ``t.sum() == 1`` (to rounding).

    The Euler contributions of the parts of a loss, ``losses_by_part`` of shape
    ``(n_scenarios, n_parts)`` with ``losses == losses_by_part.sum(axis=1)``, are
    ``t @ losses_by_part``. ``t`` is zero outside the tail (about ``n (1 - alpha)``
    scenarios plus the ties at VaR), so a caller with very many parts (accounts) needs
    per-part losses only for the scenarios where ``t != 0`` (``np.flatnonzero(t)``).

    Args:
        losses: total loss per scenario, USD, shape ``(n_scenarios,)``.
        alpha: confidence level in (0, 1).
        weights: scenario probabilities, shape ``(n_scenarios,)``, or ``None``.

    Returns:
        Tail weights, dimensionless, shape ``(n_scenarios,)``.
    """
    alpha = _check_alpha(alpha)
    x = _as_losses(losses)
    w = None if weights is None else _as_weights(weights, x.size)
    tail = _tail_unweighted(x, alpha) if w is None else _tail_weighted(x, alpha, w)
    out = np.zeros(x.size)
    if tail.denom <= 0.0:
        eq = x == tail.var
        p_eq = np.ones(int(eq.sum())) if w is None else w[eq]
        out[eq] = p_eq / p_eq.sum()
        return out
    above = x > tail.var
    out[above] = (1.0 if w is None else w[above]) / tail.denom
    if tail.frac != 0.0:
        eq = x == tail.var
        if w is None:
            out[eq] = tail.frac / (int(eq.sum()) * tail.denom)
        else:
            w_eq = w[eq]
            out[eq] = (w_eq / _sum(w_eq)) * (tail.frac / tail.denom)
    return out


def es_contributions(
    losses_by_part: npt.ArrayLike | Any,
    alpha: float = DEFAULT_ALPHA,
    weights: npt.ArrayLike | None = None,
) -> FloatArray:
    """Euler allocation of ES to the parts (accounts, assets) of the loss.

    Contribution of part j: ``E[L_j | tail]`` with the tail weights of :func:`tail_weights`
    (scenarios tied at VaR share the fractional weight in proportion to their
    probabilities), so the contributions add up to ``es(losses_by_part.sum(axis=1),
    alpha, weights)`` to rounding.

    Args:
        losses_by_part: loss per scenario and part, USD, shape ``(n_scenarios, n_parts)``;
            a dense array or a ``scipy.sparse`` matrix/array (for many parts).
        alpha: confidence level in (0, 1).
        weights: scenario probabilities, shape ``(n_scenarios,)``, or ``None``.

    Returns:
        ES contribution per part, USD, shape ``(n_parts,)``.
    """
    from scipy import sparse

    if sparse.issparse(losses_by_part):
        mat_in: Any = losses_by_part
        if len(mat_in.shape) != 2:
            raise InputError(
                f"losses_by_part: expected shape (n_scenarios, n_parts), got {mat_in.shape}"
            )
        if min(mat_in.shape) == 0:
            raise InputError(
                f"losses_by_part: is empty (shape {mat_in.shape}); need at least one "
                "scenario and one part"
            )
        mat = sparse.csr_array(mat_in, dtype=np.float64)
        _check_finite_array(mat.data, "losses_by_part (stored values)")
        totals = np.asarray(mat.sum(axis=1), dtype=np.float64).ravel()
        t = tail_weights(totals, alpha, weights)
        return np.asarray(mat.T @ t, dtype=np.float64).ravel()
    arr = _as_float_array(losses_by_part, "losses_by_part", 2)
    t = tail_weights(arr.sum(axis=1), alpha, weights)
    return np.asarray(t @ arr, dtype=np.float64)


# --------------------------------------------------------------------------- closed forms


def var_normal(mu: float, sigma: float, alpha: float = DEFAULT_ALPHA) -> float:
    """VaR of a normal loss N(mu, sigma^2): ``mu + sigma * z_alpha``, USD.

    Args:
        mu: mean loss, USD. sigma: standard deviation of the loss, USD, > 0.
        alpha: confidence level in (0, 1).
    """
    mu = _check_finite_scalar(mu, "mu")
    sigma = _check_finite_scalar(sigma, "sigma", positive=True)
    alpha = _check_alpha(alpha)
    return mu + sigma * float(stats.norm.ppf(alpha))


def es_normal(mu: float, sigma: float, alpha: float = DEFAULT_ALPHA) -> float:
    """ES of a normal loss N(mu, sigma^2): ``mu + sigma * phi(z_alpha) / (1 - alpha)``, USD.

    Example: mu 0, sigma 4, alpha 0.975 gives VaR 7.840 and ES 9.351.

    Args:
        mu: mean loss, USD. sigma: standard deviation of the loss, USD, > 0.
        alpha: confidence level in (0, 1).
    """
    mu = _check_finite_scalar(mu, "mu")
    sigma = _check_finite_scalar(sigma, "sigma", positive=True)
    alpha = _check_alpha(alpha)
    z = float(stats.norm.ppf(alpha))
    return mu + sigma * float(stats.norm.pdf(z)) / (1.0 - alpha)


def var_student_t(mu: float, scale: float, df: float, alpha: float = DEFAULT_ALPHA) -> float:
    """VaR of a location-scale Student-t loss ``mu + scale * T_df``, USD.

    Args:
        mu: location (the mean when df > 1), USD.
        scale: the t *scale* parameter, USD, > 0. Not the standard deviation, which is
            ``scale * sqrt(df / (df - 2))`` for df > 2.
        df: degrees of freedom, > 0.
        alpha: confidence level in (0, 1).
    """
    mu = _check_finite_scalar(mu, "mu")
    scale = _check_finite_scalar(scale, "scale", positive=True)
    df = _check_finite_scalar(df, "df", positive=True)
    alpha = _check_alpha(alpha)
    return mu + scale * float(stats.t.ppf(alpha, df))


def es_student_t(mu: float, scale: float, df: float, alpha: float = DEFAULT_ALPHA) -> float:
    """ES of a location-scale Student-t loss ``mu + scale * T_df``, USD.

    ``ES = mu + scale * g(q) / (1 - alpha) * (df + q^2) / (df - 1)`` with ``q`` the
    standard t quantile at alpha and ``g`` the standard t density.

    Args:
        mu: location (the mean), USD.
        scale: the t *scale* parameter, USD, > 0. Not the standard deviation, which is
            ``scale * sqrt(df / (df - 2))`` for df > 2.
        df: degrees of freedom, > 1 (the mean, hence ES, is infinite for df <= 1).
        alpha: confidence level in (0, 1).
    """
    mu = _check_finite_scalar(mu, "mu")
    scale = _check_finite_scalar(scale, "scale", positive=True)
    df = _check_finite_scalar(df, "df", positive=True)
    if df <= 1.0:
        raise InputError(f"df: must be > 1 for a finite expected shortfall, got {df!r}")
    alpha = _check_alpha(alpha)
    q = float(stats.t.ppf(alpha, df))
    density = float(stats.t.pdf(q, df))
    return mu + scale * density / (1.0 - alpha) * (df + q * q) / (df - 1.0)


# --------------------------------------------------------------------------- EVT


@dataclass(frozen=True, slots=True)
class GPDTail:
    """A generalised Pareto fit to the losses above a threshold (peaks over threshold).

    ``P(L > u + y) = (n_exceedances / n) * (1 + xi * y / beta) ** (-1 / xi)`` for y > 0.

    Attributes:
        xi: GPD shape (tail index); > 0 heavy tail, 0 exponential, < 0 bounded tail.
        beta: GPD scale of the exceedances, USD, > 0.
        threshold: the threshold u, USD.
        n_exceedances: number of losses strictly above the threshold.
        n: number of losses in the sample.
    """

    xi: float
    beta: float
    threshold: float
    n_exceedances: int
    n: int

    @property
    def tail_prob(self) -> float:
        """Empirical probability of exceeding the threshold, ``n_exceedances / n``."""
        return self.n_exceedances / self.n

    def _ratio(self, alpha: float) -> float:
        alpha = _check_alpha(alpha)
        ratio = (1.0 - alpha) / self.tail_prob
        if ratio > 1.0 + PROB_TOL:
            raise InputError(
                f"alpha: {alpha!r} is not beyond the threshold's level "
                f"1 - n_exceedances/n = {1.0 - self.tail_prob!r}; use var/es for it or "
                "lower the threshold"
            )
        return min(ratio, 1.0)

    def var(self, alpha: float) -> float:
        """VaR at ``alpha`` from the fitted tail, USD."""
        log_r = math.log(self._ratio(alpha))
        if self.xi == 0.0:
            return self.threshold - self.beta * log_r
        # (r**-xi - 1) / xi, stable as xi -> 0
        return self.threshold + self.beta * math.expm1(-self.xi * log_r) / self.xi

    def es(self, alpha: float) -> float:
        """ES at ``alpha`` from the fitted tail, USD; ``inf`` (with a NumericalWarning) if xi >= 1."""
        v = self.var(alpha)
        if self.xi >= 1.0:
            warnings.warn(
                f"GPD shape xi={self.xi:.3g} >= 1: the fitted loss tail has an infinite mean, "
                "so ES is infinite",
                NumericalWarning,
                stacklevel=3,
            )
            return math.inf
        return (v + self.beta - self.xi * self.threshold) / (1.0 - self.xi)


@dataclass(frozen=True, slots=True)
class EVTResult:
    """A tail risk measure from a GPD fit, with the fit.

    Attributes:
        value: the VaR or ES, USD (``inf`` for ES when xi >= 1).
        measure: ``"var"`` or ``"es"``.
        alpha: the confidence level.
        xi, beta, threshold, n_exceedances, n: see :class:`GPDTail`.
    """

    value: float
    measure: Literal["var", "es"]
    alpha: float
    xi: float
    beta: float
    threshold: float
    n_exceedances: int
    n: int

    @property
    def tail(self) -> GPDTail:
        """The fitted tail, to evaluate other alphas without refitting."""
        return GPDTail(self.xi, self.beta, self.threshold, self.n_exceedances, self.n)


def evt_fit(
    losses: npt.ArrayLike,
    threshold: float | None = None,
    *,
    threshold_quantile: float = 0.9,
    min_exceedances: int = 20,
) -> GPDTail:
    """Fit a generalised Pareto distribution to the losses above a threshold.

    Maximum likelihood (``scipy.stats.genpareto.fit``) on the exceedances ``L - u`` for
    ``L > u``, location fixed at 0, after rescaling them to unit mean.

    Args:
        losses: loss per scenario, USD, shape ``(n_scenarios,)`` (equally likely).
        threshold: u, USD; default the lower ``threshold_quantile`` empirical quantile.
        threshold_quantile: quantile level of the default threshold (0.9).
        min_exceedances: fewest losses above the threshold accepted for a fit (20).

    Raises:
        InputError: bad input, or fewer than ``min_exceedances`` losses above u (typical
            of a sparse bad-debt sample that is mostly zeros: lower the threshold or
            simulate more scenarios).
    """
    x = _as_losses(losses)
    q = _check_alpha(threshold_quantile, "threshold_quantile")
    if isinstance(min_exceedances, bool) or not isinstance(min_exceedances, numbers.Integral):
        raise InputError(f"min_exceedances: must be an integer, got {min_exceedances!r}")
    if min_exceedances < 3:
        raise InputError(f"min_exceedances: must be >= 3, got {min_exceedances}")
    if threshold is None:
        u = _tail_unweighted(x, q).var
        origin = f"the {q:g} empirical quantile"
    else:
        u = _check_finite_scalar(threshold, "threshold")
        origin = "the given threshold"
    y = x[x > u] - u
    if y.size < min_exceedances:
        raise InputError(
            f"losses: only {y.size} of {x.size} losses exceed {origin} u={u!r}; a GPD fit "
            f"needs at least {min_exceedances} (lower the threshold or simulate more scenarios)"
        )
    unit = float(np.mean(y))
    if not unit > 0.0 or float(np.ptp(y)) == 0.0:
        raise InputError(
            f"losses: the {y.size} exceedances over u={u!r} are all equal; no GPD can be fitted"
        )
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # The optimiser probes infeasible shapes on the way; those are not the user's problem.
        warnings.simplefilter("ignore", RuntimeWarning)
        xi, _, beta = stats.genpareto.fit(y / unit, floc=0.0)
    xi, beta = float(xi), float(beta) * unit
    if not (math.isfinite(xi) and math.isfinite(beta) and beta > 0.0):
        raise InputError(f"losses: GPD fit over u={u!r} failed (xi={xi!r}, beta={beta!r})")
    return GPDTail(xi, beta, u, int(y.size), int(x.size))


def evt_var(
    losses: npt.ArrayLike,
    alpha: float = DEFAULT_ALPHA,
    threshold: float | None = None,
    *,
    threshold_quantile: float = 0.9,
    min_exceedances: int = 20,
) -> EVTResult:
    """Peaks-over-threshold VaR: ``u + beta/xi * (((1-alpha) n / N_u) ** -xi - 1)``, USD.

    For alphas deeper than the sample supports. ``alpha`` must satisfy
    ``1 - alpha <= N_u / n`` (beyond the threshold). See :func:`evt_fit` for the other
    arguments; the result carries the fitted parameters.
    """
    alpha = _check_alpha(alpha)
    tail = evt_fit(
        losses, threshold, threshold_quantile=threshold_quantile, min_exceedances=min_exceedances
    )
    return _evt_result(tail, tail.var(alpha), "var", alpha)


def evt_es(
    losses: npt.ArrayLike,
    alpha: float = DEFAULT_ALPHA,
    threshold: float | None = None,
    *,
    threshold_quantile: float = 0.9,
    min_exceedances: int = 20,
) -> EVTResult:
    """Peaks-over-threshold ES: ``(VaR + beta - xi * u) / (1 - xi)``, USD.

    If the fitted shape ``xi >= 1`` the tail has no mean: the value is ``inf`` and a
    :class:`~simulator.errors.NumericalWarning` is issued. See :func:`evt_var`.
    """
    alpha = _check_alpha(alpha)
    tail = evt_fit(
        losses, threshold, threshold_quantile=threshold_quantile, min_exceedances=min_exceedances
    )
    return _evt_result(tail, tail.es(alpha), "es", alpha)


def _evt_result(
    tail: GPDTail, value: float, measure: Literal["var", "es"], alpha: float
) -> EVTResult:
    return EVTResult(
        value, measure, float(alpha), tail.xi, tail.beta, tail.threshold, tail.n_exceedances, tail.n
    )


# --------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True, slots=True)
class ESInterval:
    """ES with a bootstrap confidence interval and its asymptotic standard error.

    Attributes:
        es: the ES point estimate, USD.
        low, high: percentile-bootstrap interval bounds, USD.
        level: coverage of the interval (0.95).
        n_boot: number of bootstrap resamples.
        se: asymptotic standard error of ES, USD:
            ``sqrt(Var[max(L - VaR, 0)] / (n (1 - alpha)^2))``.
        alpha: confidence level of the ES.
        method: ``"percentile"``.
    """

    es: float
    low: float
    high: float
    level: float
    n_boot: int
    se: float
    alpha: float
    method: str = "percentile"


def _as_generator(rng: np.random.Generator | int | None, name: str = "rng") -> np.random.Generator:
    if rng is None:
        return np.random.default_rng(DEFAULT_SEED)
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise InputError(f"{name}: expected a numpy Generator, an int seed or None, got {rng!r}")


def _es_rows(samples: FloatArray, alpha: float) -> FloatArray:
    """Unweighted ES of each row of ``samples`` (shape ``(n_rows, n)``), vectorised.

    The same estimator as :func:`es` (without exact rounding of the tail sums).
    """
    n = samples.shape[1]
    nq = n * (1.0 - alpha)
    m = min(math.floor(nq + n * PROB_TOL), n - 1)
    k = n - 1 - m
    part = np.partition(samples, k, axis=1)
    v = part[:, k]
    top = part[:, k + 1 :]
    gt = top > v[:, None]
    a = gt.sum(axis=1).astype(np.float64)
    s = np.where(gt, top, 0.0).sum(axis=1)
    snap = np.abs(nq - a) <= n * PROB_TOL
    frac = np.where(snap, 0.0, nq - a)
    denom = np.where(snap, a, nq)
    safe = np.where(denom > 0.0, denom, 1.0)
    return np.asarray(np.where(denom > 0.0, (s + v * frac) / safe, v), dtype=np.float64)


def es_ci(
    losses: npt.ArrayLike,
    alpha: float = DEFAULT_ALPHA,
    level: float = 0.95,
    n_boot: int = 2000,
    rng: np.random.Generator | int | None = None,
) -> ESInterval:
    """ES with a percentile-bootstrap confidence interval and the asymptotic standard error.

    Resamples the scenarios with replacement ``n_boot`` times (vectorised, in blocks of
    about 4 million losses to bound memory) and takes the ``(1 - level)/2`` and
    ``(1 + level)/2`` quantiles of the resampled ES (percentile method, not BCa).
    The standard error is the asymptotic one of the empirical ES estimator,
    ``se^2 = Var[max(L - VaR, 0)] / (n (1 - alpha)^2)`` (the variance of its influence
    function, e.g. Chen 2008), evaluated at the empirical VaR.

    Args:
        losses: loss per scenario, USD, shape ``(n_scenarios,)`` (equally likely).
        alpha: confidence level of the ES, in (0, 1).
        level: coverage of the interval, in (0, 1).
        n_boot: number of resamples, >= 1.
        rng: a ``numpy.random.Generator``, an int seed, or None for ``DEFAULT_SEED``
            (so results are reproducible by default).
    """
    alpha = _check_alpha(alpha)
    level = _check_alpha(level, "level")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise InputError(f"n_boot: must be an integer >= 1, got {n_boot!r}")
    n_boot = int(n_boot)
    gen = _as_generator(rng)
    x = _as_losses(losses)
    n = x.size
    tail = _tail_unweighted(x, alpha)
    excess = np.maximum(x - tail.var, 0.0)
    se = math.sqrt(float(np.var(excess)) / (n * (1.0 - alpha) ** 2))

    rows = max(1, _BOOT_BLOCK // n)
    boot = np.empty(n_boot)
    for start in range(0, n_boot, rows):
        b = min(rows, n_boot - start)
        idx = gen.integers(0, n, size=(b, n))
        boot[start : start + b] = _es_rows(x[idx], alpha)
    low, high = np.quantile(boot, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return ESInterval(tail.es, float(low), float(high), level, n_boot, se, alpha)


# --------------------------------------------------------------------------- backtests


@dataclass(frozen=True, slots=True)
class KupiecResult:
    """Kupiec proportion-of-failures test of a VaR model.

    Attributes:
        statistic: likelihood-ratio statistic, asymptotically chi-squared with 1 df.
        p_value: ``P(chi2_1 >= statistic)``; small means the exception rate is wrong.
        exceptions: number of days (periods) the loss exceeded VaR.
        n: number of days (periods).
        expected_rate: ``1 - alpha``.
    """

    statistic: float
    p_value: float
    exceptions: int
    n: int
    expected_rate: float

    @property
    def observed_rate(self) -> float:
        """``exceptions / n``."""
        return self.exceptions / self.n

    def __iter__(self) -> Iterator[float]:
        """``statistic, p_value = kupiec_pof(...)`` unpacks the two numbers."""
        return iter((self.statistic, self.p_value))


def kupiec_pof(exceptions: int, n: int, alpha: float = DEFAULT_ALPHA) -> KupiecResult:
    """Kupiec (1995) proportion-of-failures likelihood-ratio test.

    ``LR = 2 [x ln(x / (n p)) + (n - x) ln((n - x) / (n (1 - p)))]`` with ``p = 1 - alpha``,
    ``x`` the exceptions and ``0 ln 0 = 0`` (so 0 and n exceptions are fine).

    This assumes ``P(L > VaR) = 1 - alpha`` every period, true for a continuous loss. When
    the forecast distribution has an atom at VaR (bad debt: VaR is often an atom at 0 and
    ``P(L > 0)`` is far below ``1 - alpha``) a correct model is rejected; use
    :func:`kupiec_pof_varying` with each period's own exception probability
    (:func:`exception_probability`) instead.

    Args:
        exceptions: number of periods with loss > VaR, integer in [0, n].
        n: number of periods, integer >= 1.
        alpha: VaR confidence level in (0, 1).
    """
    for name, value in (("exceptions", exceptions), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise InputError(f"{name}: must be an integer, got {value!r}")
    x, t = int(exceptions), int(n)
    if t < 1:
        raise InputError(f"n: must be >= 1, got {t}")
    if not 0 <= x <= t:
        raise InputError(f"exceptions: must be between 0 and n={t}, got {x}")
    alpha = _check_alpha(alpha)
    p = 1.0 - alpha
    half = float(special.xlogy(x, x / (t * p))) + float(special.xlogy(t - x, (t - x) / (t * alpha)))
    statistic = max(2.0 * half, 0.0)
    return KupiecResult(statistic, float(stats.chi2.sf(statistic, 1)), x, t, p)


def _z2_inputs(
    realised_losses: npt.ArrayLike,
    var_forecasts: npt.ArrayLike,
    es_forecasts: npt.ArrayLike,
    alpha: float,
) -> tuple[FloatArray, FloatArray, FloatArray, float]:
    alpha = _check_alpha(alpha)
    loss = _as_losses(realised_losses, "realised_losses")
    out = []
    for name, f in (("var_forecasts", var_forecasts), ("es_forecasts", es_forecasts)):
        arr = np.asarray(f, dtype=np.float64)
        if arr.ndim == 0:
            arr = np.full(loss.size, float(arr))
        arr = _as_float_array(arr, name, 1)
        if arr.size != loss.size:
            raise InputError(
                f"{name}: length {arr.size} does not match realised_losses length {loss.size}"
            )
        out.append(arr)
    v, e = out
    if not (e >= 0.0).all():
        i = int(np.argmax(e < 0.0))
        raise InputError(
            f"es_forecasts: must be >= 0 (losses positive), got {float(e[i])!r} at index {i}"
        )
    return loss, v, e, alpha


def _check_probs(probs: npt.ArrayLike, n: int, name: str = "exception_probs") -> FloatArray:
    arr = np.asarray(probs, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    arr = _as_float_array(arr, name, 1)
    if arr.size != n:
        raise InputError(f"{name}: length {arr.size} does not match the {n} periods")
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        i = int(np.argmax(bad))
        raise InputError(f"{name}: {float(arr[i])!r} at index {i} is not a probability in [0, 1]")
    return arr


def _z2(
    loss: FloatArray, v: FloatArray, e: FloatArray, alpha: float, shift: FloatArray | None = None
) -> FloatArray:
    """Z2 along the last axis of ``loss`` (shape ``(..., T)``).

    ``shift`` (shape ``(T,)``) is ``VaR_t (1 - alpha - p_t)``, the part of ``(1 - alpha)
    ES_t`` that the atom at VaR contributes (0 for a continuous forecast). A period with
    ``ES_t = 0`` contributes 0 when its tail term is 0 and ``+inf`` (Z2 = -inf: the model
    said impossible) when a loss exceeded it.
    """
    t = loss.shape[-1]
    tail = np.where(loss > v, loss, 0.0)
    if shift is not None:
        tail = tail + shift
    pos = e > 0.0
    safe = np.where(pos, e, 1.0)
    with np.errstate(invalid="ignore"):
        ratio = np.where(pos, tail / safe, np.where(tail > 0.0, np.inf, 0.0))
    return np.asarray(1.0 - ratio.sum(axis=-1) / (t * (1.0 - alpha)), dtype=np.float64)


def _z2_shift(
    v: FloatArray, alpha: float, exception_probs: npt.ArrayLike | None
) -> FloatArray | None:
    if exception_probs is None:
        return None
    p = _check_probs(exception_probs, v.size)
    return np.asarray(v * ((1.0 - alpha) - p), dtype=np.float64)


def acerbi_szekely_z2(
    realised_losses: npt.ArrayLike,
    var_forecasts: npt.ArrayLike,
    es_forecasts: npt.ArrayLike,
    alpha: float = DEFAULT_ALPHA,
    *,
    exception_probs: npt.ArrayLike | None = None,
) -> float:
    """Acerbi-Szekely (2014) Z2 statistic of ES forecasts, losses positive.

    ``Z2 = 1 - sum_t L_t 1{L_t > VaR_t} / (T (1 - alpha) ES_t)``; this is the paper's
    ``sum_t X_t I_t / (T alpha' ES_t) + 1`` with P&L ``X = -L`` and tail probability
    ``alpha' = 1 - alpha``. Sign convention (the paper's): ``E[Z2] = 0`` when VaR and ES
    are correct; **Z2 < 0 means risk is underestimated** (ES too low, or too many
    exceptions), Z2 > 0 overestimated.

    Atoms and ES = 0. With ``exception_probs`` ``p_t = P(L_t > VaR_t)`` under the forecast
    (:func:`exception_probability`), each tail term gets the deterministic part the atom
    at VaR contributes to ES, ``VaR_t (1 - alpha - p_t)``, so ``E[Z2] = 0`` for a correct
    forecast with an atom at VaR too (for VaR = 0, the bad-debt case, the term is 0 and the
    plain formula is already unbiased). A forecast ``ES_t = 0`` (a sure zero loss) is
    allowed: that period adds 0, or ``-inf`` to Z2 if a loss nevertheless exceeded VaR.

    Critical values depend on the sample size and the forecast distribution: the paper's
    5% value of about -0.70 is for T = 250 Student-t days at 97.5% and shrinks roughly as
    ``1/sqrt(T)`` (about -0.3 for T = 1,643). Use :func:`acerbi_szekely_z2_pvalue`,
    which simulates the statistic for the sample at hand and reports its critical value.

    Args:
        realised_losses: realised loss per period, USD, shape ``(T,)``.
        var_forecasts: VaR forecast per period, USD, shape ``(T,)`` or a scalar.
        es_forecasts: ES forecast per period, USD, >= 0, shape ``(T,)`` or a scalar.
        alpha: confidence level of the forecasts.
        exception_probs: ``P(L_t > VaR_t)`` per period under the forecast, shape ``(T,)``
            or a scalar; ``None`` for ``1 - alpha`` (a continuous forecast).
    """
    loss, v, e, alpha = _z2_inputs(realised_losses, var_forecasts, es_forecasts, alpha)
    return float(_z2(loss, v, e, alpha, _z2_shift(v, alpha, exception_probs)))


@dataclass(frozen=True, slots=True)
class Z2Test:
    """Z2 with a p-value simulated under the forecast model.

    Attributes:
        statistic: Z2 of the realised losses (see :func:`acerbi_szekely_z2`).
        p_value: ``(1 + #{Z2_sim <= statistic}) / (1 + n_sim)``, one-sided (low Z2 rejects).
        n_sim: number of simulated histories.
        critical_value: the ``level`` quantile of the simulated Z2, the critical value for
            this sample's size and forecasts (Z2 below it rejects at ``level``).
        level: the test size of ``critical_value`` (0.05).
    """

    statistic: float
    p_value: float
    n_sim: int
    critical_value: float = math.nan
    level: float = 0.05


def acerbi_szekely_z2_pvalue(
    realised_losses: npt.ArrayLike,
    var_forecasts: npt.ArrayLike,
    es_forecasts: npt.ArrayLike,
    alpha: float,
    sampler: Callable[[np.random.Generator, int], npt.ArrayLike],
    n_sim: int = 10_000,
    rng: np.random.Generator | int | None = None,
    *,
    exception_probs: npt.ArrayLike | None = None,
    level: float = 0.05,
) -> Z2Test:
    """Z2 and its p-value, simulating loss histories from the forecast distributions.

    The simulated statistics also give the critical value at ``level`` for this sample's
    size and forecasts (the paper's -0.70 holds only for 250 periods).

    Args:
        realised_losses, var_forecasts, es_forecasts, alpha, exception_probs: as in
            :func:`acerbi_szekely_z2`.
        sampler: ``sampler(rng, n_sim)`` returns ``n_sim`` loss histories drawn from the
            forecast distributions (the null hypothesis), USD, shape ``(n_sim, T)``.
        n_sim: number of simulated histories, >= 1.
        rng: a ``numpy.random.Generator``, an int seed, or None for ``DEFAULT_SEED``.
        level: size of the test whose critical value is reported (0.05).
    """
    loss, v, e, alpha = _z2_inputs(realised_losses, var_forecasts, es_forecasts, alpha)
    level = _check_alpha(level, "level")
    shift = _z2_shift(v, alpha, exception_probs)
    if isinstance(n_sim, bool) or not isinstance(n_sim, numbers.Integral) or n_sim < 1:
        raise InputError(f"n_sim: must be an integer >= 1, got {n_sim!r}")
    gen = _as_generator(rng)
    sims = np.asarray(sampler(gen, int(n_sim)), dtype=np.float64)
    if sims.shape != (int(n_sim), loss.size):
        raise InputError(
            f"sampler: returned shape {sims.shape}, expected (n_sim, T) = ({n_sim}, {loss.size})"
        )
    _check_finite_array(sims, "sampler output")
    observed = float(_z2(loss, v, e, alpha, shift))
    z_sim = _z2(sims, v, e, alpha, shift)
    return _z2_test(observed, z_sim, level)


def _z2_test(observed: float, z_sim: FloatArray, level: float = 0.05) -> Z2Test:
    """Z2Test from the observed statistic and simulated ones (``-inf`` allowed in both)."""
    n_sim = int(z_sim.size)
    p = (1.0 + float(np.count_nonzero(z_sim <= observed))) / (1.0 + n_sim)
    finite = np.where(np.isfinite(z_sim), z_sim, -1e300)
    crit = float(np.quantile(finite, level, method="lower"))
    return Z2Test(observed, p, n_sim, crit if crit > -1e300 else -math.inf, level)


def exception_probability(
    losses: npt.ArrayLike, var_value: float, weights: npt.ArrayLike | None = None
) -> float:
    """``P(L > var_value)`` under the (weighted) empirical distribution of ``losses``.

    For a continuous forecast this is ``1 - alpha`` at ``var_value = var(losses, alpha)``;
    with an atom at VaR (bad debt: mostly zeros) it is smaller, and it is what
    :func:`kupiec_pof_varying` and :func:`acerbi_szekely_z2` need.
    """
    x = _as_losses(losses)
    v = _check_finite_scalar(var_value, "var_value")
    if weights is None:
        return float(np.count_nonzero(x > v)) / x.size
    w = _as_weights(weights, x.size)
    return _sum(w[x > v]) / _sum(w)


def _logit(p: FloatArray) -> FloatArray:
    return np.asarray(np.log(p) - np.log1p(-p), dtype=np.float64)


def _bernoulli_loglik(hits: npt.NDArray[np.bool_], p: FloatArray) -> float:
    return float(special.xlogy(hits, p).sum() + special.xlog1py(~hits, -p).sum())


def kupiec_pof_varying(hits: npt.ArrayLike, exception_probs: npt.ArrayLike) -> KupiecResult:
    """Kupiec's proportion-of-failures test with each period's own exception probability.

    Under the null the exception indicators ``I_t`` are independent Bernoulli(``p_t``),
    ``p_t = P(L_t > VaR_t)`` under that period's forecast (``1 - alpha`` for a continuous
    forecast; less when VaR is an atom, as for bad debt). The alternative scales every
    period's odds by one factor, ``logit q_t = logit p_t + theta``, and the statistic is the
    likelihood ratio of ``theta = theta_hat`` against ``theta = 0``, asymptotically
    chi-squared with 1 df. With all ``p_t = 1 - alpha`` it is exactly :func:`kupiec_pof`.
    Periods with ``p_t = 0`` (a loss above VaR is impossible) or ``p_t = 1`` carry no
    information unless they are contradicted, which rejects at once (statistic ``inf``).

    Args:
        hits: exception indicators ``L_t > VaR_t``, booleans (or 0/1), shape ``(T,)``.
        exception_probs: ``p_t`` per period, in [0, 1], shape ``(T,)`` or a scalar.

    Returns:
        :class:`KupiecResult` with ``expected_rate`` the mean of ``p_t``.
    """
    h_arr = np.asarray(hits)
    if h_arr.ndim != 1 or h_arr.size == 0:
        raise InputError(f"hits: expected a non-empty 1-D array, got shape {h_arr.shape}")
    if h_arr.dtype != np.bool_:
        if not np.isin(h_arr, (0, 1)).all():
            raise InputError("hits: must be booleans or 0/1 exception indicators")
        h_arr = h_arr.astype(bool)
    h: npt.NDArray[np.bool_] = h_arr
    p = _check_probs(exception_probs, h.size)
    x, t = int(h.sum()), int(h.size)
    rate = float(np.mean(p))
    impossible = ((p == 0.0) & h) | ((p == 1.0) & ~h)
    if impossible.any():
        return KupiecResult(math.inf, 0.0, x, t, rate)
    free = (p > 0.0) & (p < 1.0)
    hf, pf = h[free], p[free]
    if pf.size == 0:
        return KupiecResult(0.0, 1.0, x, t, rate)
    null = _bernoulli_loglik(hf, pf)
    xf = int(hf.sum())
    if xf == 0 or xf == pf.size:
        alt = 0.0  # theta -> -inf / +inf: every q_t -> 0 / 1
    else:
        from scipy import optimize

        lg = _logit(pf)

        def excess(theta: float) -> float:
            return float(special.expit(lg + theta).sum()) - xf

        lo, hi = -1.0, 1.0
        while excess(lo) > 0.0:
            lo *= 2.0
        while excess(hi) < 0.0:
            hi *= 2.0
        theta = float(optimize.brentq(excess, lo, hi, xtol=1e-12))
        alt = _bernoulli_loglik(hf, np.asarray(special.expit(lg + theta), dtype=np.float64))
    statistic = max(2.0 * (alt - null), 0.0)
    return KupiecResult(statistic, float(stats.chi2.sf(statistic, 1)), x, t, rate)


@dataclass(frozen=True, slots=True)
class ChristoffersenResult:
    """Christoffersen (1998) independence and conditional-coverage tests of VaR exceptions.

    Attributes:
        independence: LR statistic of first-order Markov dependence of the exceptions
            against independence, chi-squared with 1 df.
        independence_p: its p-value.
        conditional_coverage: ``LR_uc + LR_ind`` (the unconditional-coverage statistic of
            :func:`kupiec_pof_varying` plus the independence one), chi-squared with 2 df.
        conditional_coverage_p: its p-value.
        transitions: ``(n00, n01, n10, n11)``, counts of (yesterday, today) exception pairs.
    """

    independence: float
    independence_p: float
    conditional_coverage: float
    conditional_coverage_p: float
    transitions: tuple[int, int, int, int]


def christoffersen(
    hits: npt.ArrayLike, exception_probs: npt.ArrayLike | float
) -> ChristoffersenResult:
    """Christoffersen's independence test and the conditional-coverage test.

    Independence: the probability of an exception after an exception (``pi_1``) against
    after none (``pi_0``), ``LR_ind = 2 [l(pi_0, pi_1) - l(pi)]``. Conditional coverage adds
    the unconditional-coverage LR of :func:`kupiec_pof_varying` (periods' own exception
    probabilities), ``LR_cc = LR_uc + LR_ind``, chi-squared with 2 df.

    Args:
        hits: exception indicators, shape ``(T,)``, T >= 2.
        exception_probs: ``P(L_t > VaR_t)`` per period, shape ``(T,)`` or a scalar.
    """
    h = np.asarray(hits).astype(bool)
    if h.ndim != 1 or h.size < 2:
        raise InputError(f"hits: expected a 1-D array of at least 2 periods, got {h.shape}")
    prev, cur = h[:-1], h[1:]
    n00 = int(np.count_nonzero(~prev & ~cur))
    n01 = int(np.count_nonzero(~prev & cur))
    n10 = int(np.count_nonzero(prev & ~cur))
    n11 = int(np.count_nonzero(prev & cur))

    def ll(k0: int, k1: int) -> float:  # k1 exceptions among k0 + k1 periods, at the MLE
        n = k0 + k1
        if n == 0:
            return 0.0
        q = k1 / n
        return float(special.xlogy(k1, q) + special.xlog1py(k0, -q))

    restricted = ll(n00 + n10, n01 + n11)
    unrestricted = ll(n00, n01) + ll(n10, n11)
    lr_ind = max(2.0 * (unrestricted - restricted), 0.0)
    uc = kupiec_pof_varying(h, exception_probs)
    lr_cc = uc.statistic + lr_ind
    return ChristoffersenResult(
        lr_ind,
        float(stats.chi2.sf(lr_ind, 1)),
        lr_cc,
        float(stats.chi2.sf(lr_cc, 2)) if math.isfinite(lr_cc) else 0.0,
        (n00, n01, n10, n11),
    )
