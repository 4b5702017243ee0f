"""simulator.risk: empirical VaR, ES, tail weights and Euler contributions.

Oracles: exact rational arithmetic straight from the definitions (``exact_var_es``) and a
plain sort-based float twin of the fast kernels (``sorted_var_es``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from simulator import risk

ALPHAS = ["0.5", "0.6", "0.75", "0.8", "0.9", "0.95", "0.96", "0.975", "0.99", "0.995", "0.999"]


# --------------------------------------------------------------------------- oracles


def exact_var_es(
    losses: Sequence[Fraction | int | float],
    alpha: Fraction,
    weights: Sequence[Fraction | int | float] | None = None,
) -> tuple[Fraction, Fraction]:
    """VaR = inf{l : P(L <= l) >= alpha}; ES = (E[L 1{L>VaR}] + VaR (P(L<=VaR) - alpha)) / (1-alpha)."""
    xs = [Fraction(x) for x in losses]
    ws = [Fraction(1)] * len(xs) if weights is None else [Fraction(w) for w in weights]
    total = sum(ws)
    mass: dict[Fraction, Fraction] = {}
    for x, w in zip(xs, ws, strict=True):
        mass[x] = mass.get(x, Fraction(0)) + w / total
    cdf = Fraction(0)
    var: Fraction | None = None
    for value in sorted(mass):
        cdf += mass[value]
        if cdf >= alpha:
            var = value
            break
    assert var is not None
    cdf_at_var = sum((p for x, p in mass.items() if x <= var), Fraction(0))
    above = sum((x * p for x, p in mass.items() if x > var), Fraction(0))
    return var, (above + var * (cdf_at_var - alpha)) / (1 - alpha)


def sorted_var_es(
    losses: npt.NDArray[np.float64], alpha: float, weights: npt.NDArray[np.float64] | None = None
) -> tuple[float, float]:
    """Float twin: full sort, masses from the top, tail sums with math.fsum, decimal alpha."""
    x = np.asarray(losses, dtype=np.float64)
    w = np.ones(x.size) if weights is None else np.asarray(weights, dtype=np.float64)
    total = math.fsum(w.tolist())
    order = np.argsort(-x, kind="stable")
    xs, ps = x[order], w[order] / total
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])
    group_mass = np.add.reduceat(ps, starts)
    mass_before = np.r_[0.0, np.cumsum(group_mass)[:-1]]  # mass strictly above each value
    tail = 1.0 - alpha
    i = int(np.argmax(mass_before + group_mass > tail + 1e-12))
    var = float(xs[starts[i]])
    gt = x > var
    a = math.fsum(w[gt].tolist()) / total
    s = math.fsum((x[gt] * w[gt]).tolist()) / total
    if abs(tail - a) <= 1e-12:
        return var, (s / a if a > 0 else var)
    return var, (s + var * (tail - a)) / tail


def close(a: float, b: float | Fraction, rel: float = 1e-12, scale: float = 0.0) -> bool:
    b = float(b)
    return abs(a - b) <= rel * max(abs(b), scale) or a == b


# --------------------------------------------------------------------------- textbook cases


@pytest.mark.parametrize(("n", "alpha"), [(100, 0.96), (160, 0.975), (200, 0.98), (400, 0.99)])
def test_textbook_tail_beyond_var_10_gives_es_20(n: int, alpha: float) -> None:
    rng = np.random.default_rng(n)
    losses = np.concatenate([rng.uniform(0.0, 10.0, n - 5), [10.0, 11.0, 14.0, 20.0, 35.0]])
    rng.shuffle(losses)
    assert risk.var(losses, alpha) == 10.0
    assert risk.es(losses, alpha) == pytest.approx(20.0, rel=1e-12)
    w = np.full(n, 3.0)  # equal weights, not summing to 1
    assert risk.es(losses, alpha, weights=w) == pytest.approx(20.0, rel=1e-12)


def test_textbook_normal_mu0_sigma4() -> None:
    assert risk.var_normal(0.0, 4.0, 0.975) == pytest.approx(7.84, abs=5e-3)
    assert risk.es_normal(0.0, 4.0, 0.975) == pytest.approx(9.35, abs=5e-3)
    z = 1.959963984540054  # standard normal 97.5% quantile
    phi = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert risk.var_normal(0.0, 4.0, 0.975) == pytest.approx(4 * z, rel=1e-12)
    assert risk.es_normal(0.0, 4.0, 0.975) == pytest.approx(4 * phi / 0.025, rel=1e-12)


def test_ties_at_var_take_the_right_fraction_of_the_atom() -> None:
    losses = np.array([0.0] * 97 + [5.0, 10.0, 20.0])
    # alpha 0.95: VaR is a zero; the tail (5 scenarios) holds all three losses and two zeros.
    assert risk.var(losses, 0.95) == 0.0
    assert risk.es(losses, 0.95) == pytest.approx(35.0 / 5.0, rel=1e-14)
    # "mean of losses >= VaR" would give 35/100: wrong.
    assert risk.es(losses, 0.95) != pytest.approx(float(np.mean(losses[losses >= 0.0])))
    # alpha 0.975: 2.5 scenarios, VaR = 5; half of the atom at 5 is in the tail.
    assert risk.var(losses, 0.975) == 5.0
    assert risk.es(losses, 0.975) == pytest.approx((10 + 20 + 0.5 * 5) / 2.5, rel=1e-14)


def test_ties_spanning_the_var_boundary() -> None:
    losses = [1.0] * 6 + [7.0] * 3 + [9.0]  # 10 scenarios; tail of 0.25 = 2.5 scenarios
    assert risk.var(losses, 0.75) == 7.0
    assert risk.es(losses, 0.75) == pytest.approx((9.0 + 1.5 * 7.0) / 2.5, rel=1e-14)


def test_non_integer_tail_size() -> None:
    losses = np.arange(1.0, 11.0)  # n (1 - alpha) = 1.5 scenarios
    assert risk.var(losses, 0.85) == 9.0
    assert risk.es(losses, 0.85) == pytest.approx((10 + 0.5 * 9) / 1.5, rel=1e-14)
    var, es = exact_var_es(losses.tolist(), Fraction("0.85"))
    assert risk.es(losses, 0.85) == pytest.approx(float(es), rel=1e-14)
    assert risk.var(losses, 0.85) == float(var)


def test_decimal_alpha_is_read_as_the_decimal() -> None:
    # 0.9 in binary is a hair above 9/10; the tail is still exactly the worst scenario.
    losses = np.arange(1.0, 11.0)
    assert risk.var(losses, 0.9) == 9.0
    assert risk.es(losses, 0.9) == 10.0
    assert risk.var(losses, 0.9, weights=[0.1] * 10) == 9.0
    assert risk.es(losses, 0.9, weights=[0.1] * 10) == 10.0
    assert risk.var(losses, 0.7) == 7.0  # 0.7 is below 7/10 in binary
    assert risk.es(losses, 0.7) == pytest.approx(9.0, rel=1e-15)


def test_weighted_equals_unweighted_with_duplicated_scenarios() -> None:
    rng = np.random.default_rng(7)
    losses = rng.lognormal(0.0, 1.5, 300)
    counts = rng.integers(0, 6, 300)
    counts[0] = 1
    dup = np.repeat(losses, counts)
    for alpha in (0.5, 0.9, 0.95, 0.975, 0.99):
        assert risk.var(losses, alpha, weights=counts) == risk.var(dup, alpha)
        assert risk.es(losses, alpha, weights=counts) == pytest.approx(
            risk.es(dup, alpha), rel=1e-12
        )
        assert risk.es(losses, alpha, weights=counts / 1e6) == pytest.approx(
            risk.es(dup, alpha), rel=1e-12
        )


@pytest.mark.parametrize("scale", [1e-300, 1e-180, 1.0, 1e300])
def test_weights_of_any_magnitude(scale: float) -> None:
    losses = np.array([0.0] * 9 + [7.0, 3.0, 5.0])
    w = np.r_[np.ones(11), 3.0] * scale
    for alpha in ("0.8", "0.2"):
        exact = exact_var_es(losses, Fraction(alpha), [1] * 11 + [3])
        assert risk.var(losses, float(alpha), w) == float(exact[0])
        assert risk.es(losses, float(alpha), w) == pytest.approx(float(exact[1]), rel=1e-14)
        t = risk.tail_weights(losses, float(alpha), w)
        assert t.sum() == pytest.approx(1.0, rel=1e-14)
        assert t @ losses == pytest.approx(float(exact[1]), rel=1e-14)
    # alpha 0.2: VaR is 0 and the 9 zero-loss scenarios share the rest of the tail equally.
    np.testing.assert_allclose(t[:9], (11.2 - 5.0) / 9 / 11.2, rtol=1e-14)


def test_zero_weight_scenarios_are_ignored() -> None:
    losses = [1.0, 2.0, 3.0, 1e9, 4.0]
    weights = [1.0, 1.0, 1.0, 0.0, 1.0]
    for alpha in ("0.5", "0.75", "0.9"):
        a = float(alpha)
        assert risk.var(losses, a, weights) == risk.var([1, 2, 3, 4], a)
        assert risk.es(losses, a, weights) == pytest.approx(risk.es([1, 2, 3, 4], a), rel=1e-14)


def test_all_zero_sample() -> None:
    losses = np.zeros(1000)
    assert risk.var(losses) == 0.0
    assert risk.es(losses) == 0.0
    assert risk.es(losses, 0.5, weights=np.arange(1000.0)) == 0.0
    t = risk.tail_weights(losses)
    assert t.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(risk.es_contributions(np.zeros((1000, 3))), np.zeros(3))


def test_single_scenario() -> None:
    assert risk.var([42.0], 0.99) == 42.0
    assert risk.es([42.0], 0.99) == 42.0
    assert risk.es([-3.0], 0.01, weights=[2.0]) == -3.0


def test_sparse_bad_debt_sample() -> None:
    rng = np.random.default_rng(11)
    losses = np.zeros(10_000)
    hits = rng.choice(10_000, 10, replace=False)
    losses[hits] = rng.uniform(1e8, 5e9, 10)
    big = np.sort(losses[hits])[::-1]
    assert risk.var(losses, 0.99) == 0.0
    assert risk.es(losses, 0.99) == pytest.approx(math.fsum(big) / 100, rel=1e-14)
    assert risk.es(losses, 0.999) == pytest.approx(math.fsum(big) / 10, rel=1e-14)
    assert risk.var(losses, 0.9995) == big[5]
    assert risk.es(losses, 0.9995) == pytest.approx(math.fsum(big[:5]) / 5, rel=1e-14)
    assert risk.es(losses, 0.99995) == big[0]  # half a scenario: inside the worst atom


def test_negative_losses_are_gains_not_errors() -> None:
    losses = [-5.0, -1.0, 2.0, 3.0]
    assert risk.var(losses, 0.5) == -1.0
    assert risk.es(losses, 0.5) == pytest.approx(2.5, rel=1e-15)
    assert risk.es([-5.0, -4.0], 0.5) == -4.0


# --------------------------------------------------------------------------- exact oracle


@settings(max_examples=150, deadline=None)
@given(
    losses=st.lists(st.integers(-50, 200), min_size=1, max_size=25),
    alpha=st.sampled_from(ALPHAS),
    data=st.data(),
)
def test_matches_exact_rationals(losses: list[int], alpha: str, data: st.DataObject) -> None:
    weighted = data.draw(st.booleans())
    weights = None
    if weighted:
        weights = data.draw(
            st.lists(st.integers(0, 5), min_size=len(losses), max_size=len(losses)).filter(any)
        )
    var, es = exact_var_es(losses, Fraction(alpha), weights)
    assert risk.var(losses, float(alpha), weights) == float(var)
    assert close(risk.es(losses, float(alpha), weights), es, rel=1e-12, scale=200.0)


@settings(max_examples=60, deadline=None)
@given(
    losses=st.lists(
        st.fractions(min_value=-10, max_value=1000, max_denominator=64), min_size=1, max_size=30
    ),
    alpha=st.sampled_from(ALPHAS),
    weights=st.lists(st.integers(1, 9), min_size=30, max_size=30),
)
def test_matches_exact_rationals_fractional_losses_and_weights(
    losses: list[Fraction], alpha: str, weights: list[int]
) -> None:
    w = [Fraction(1, k) for k in weights[: len(losses)]]  # 1/k: inexact in binary
    var, es = exact_var_es(losses, Fraction(alpha), w)
    got = risk.es([float(x) for x in losses], float(alpha), [float(v) for v in w])
    assert risk.var([float(x) for x in losses], float(alpha), [float(v) for v in w]) == float(var)
    assert close(got, es, rel=1e-12, scale=1000.0)


@pytest.mark.parametrize("n", [1, 7, 39, 40, 41, 1000, 200_001])
@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.975, 0.999])
def test_fast_kernel_matches_sorted_twin(n: int, alpha: float) -> None:
    rng = np.random.default_rng(n)
    x = rng.standard_t(3, n) * 1e6
    w = rng.exponential(1.0, n)
    assert (risk.var(x, alpha), risk.es(x, alpha)) == pytest.approx(
        sorted_var_es(x, alpha), rel=1e-12
    )
    if n <= 1000:
        assert (risk.var(x, alpha, w), risk.es(x, alpha, w)) == pytest.approx(
            sorted_var_es(x, alpha, w), rel=1e-12
        )


@pytest.mark.parametrize("zeros", [0.5, 0.8, 0.97, 0.99, 0.999])
@pytest.mark.parametrize("alpha", [0.95, 0.975, 0.99])
def test_selection_on_mostly_zero_samples_matches_sorted_twin(zeros: float, alpha: float) -> None:
    # Large tie-heavy samples take the pivot paths (VaR above the pivot, or VaR = the atom).
    rng = np.random.default_rng(int(zeros * 1000))
    n = 300_000
    x = rng.lognormal(10.0, 2.0, n) * (rng.random(n) > zeros)
    w = rng.uniform(0.5, 2.0, n)
    assert (risk.var(x, alpha), risk.es(x, alpha)) == pytest.approx(
        sorted_var_es(x, alpha), rel=1e-12
    )
    assert (risk.var(x, alpha, w), risk.es(x, alpha, w)) == pytest.approx(
        sorted_var_es(x, alpha, w), rel=1e-11
    )


def test_selection_when_the_pivot_sample_misleads() -> None:
    # The pivot subsample is every 4th loss; make it unrepresentative on purpose.
    n = 1 << 17
    rng = np.random.default_rng(9)
    x = rng.uniform(0.0, 1.0, n)
    x[::4] = rng.uniform(10.0, 20.0, n // 4)  # the subsample sees only the large losses
    assert (risk.var(x, 0.975), risk.es(x, 0.975)) == pytest.approx(
        sorted_var_es(x, 0.975), rel=1e-12
    )
    w = np.ones(n)
    w[::4] = 1e-9  # ... which carry almost no probability: the candidate set must grow
    assert (risk.var(x, 0.975, w), risk.es(x, 0.975, w)) == pytest.approx(
        sorted_var_es(x, 0.975, w), rel=1e-11
    )
    x[::4] = 5.0  # one big atom in the subsample
    assert (risk.var(x, 0.9), risk.es(x, 0.9)) == pytest.approx(sorted_var_es(x, 0.9), rel=1e-12)
    assert (risk.var(x, 0.9, w), risk.es(x, 0.9, w)) == pytest.approx(
        sorted_var_es(x, 0.9, w), rel=1e-11
    )


def test_weighted_large_sample_selection_path_matches_full_sort() -> None:
    rng = np.random.default_rng(3)
    n = 100_000
    x = rng.normal(0.0, 1.0, n)
    w = rng.exponential(1.0, n)
    order = np.argsort(x)
    w[order[-n // 2 :]] *= 1e-9  # mass concentrated in the low losses: the candidate set grows
    for alpha in (0.9, 0.975, 0.999):
        xs, ws = x[order], w[order]
        tail = (1.0 - alpha) * math.fsum(w.tolist())
        from_top = np.cumsum(ws[::-1])
        m = int(np.searchsorted(from_top, tail * (1 + 1e-12), side="right"))
        v = xs[::-1][m]
        assert risk.var(x, alpha, w) == v
        gt = x > v
        expected = math.fsum((x[gt] * w[gt]).tolist()) + v * (tail - math.fsum(w[gt].tolist()))
        assert risk.es(x, alpha, w) == pytest.approx(expected / tail, rel=1e-11)


def test_large_sample_tail_sum_beyond_fsum_limit() -> None:
    rng = np.random.default_rng(5)
    x = rng.exponential(1.0, 3_000_000)
    got = risk.es(x, 0.5)  # 1.5 M tail terms: pairwise summation path
    part = np.sort(x)[1_500_000:]
    assert got == pytest.approx(math.fsum(part.tolist()) / 1_500_000, rel=1e-13)


# --------------------------------------------------------------------------- convergence


def test_empirical_es_converges_to_normal_closed_form() -> None:
    rng = np.random.default_rng(2024)
    x = rng.normal(1.0, 4.0, 2_000_000)
    assert risk.var(x, 0.975) == pytest.approx(risk.var_normal(1.0, 4.0, 0.975), rel=5e-3)
    assert risk.es(x, 0.975) == pytest.approx(risk.es_normal(1.0, 4.0, 0.975), rel=5e-3)


def test_empirical_es_converges_to_student_t_closed_form() -> None:
    rng = np.random.default_rng(2025)
    x = 2.0 + 3.0 * rng.standard_t(5, 2_000_000)
    assert risk.var(x, 0.99) == pytest.approx(risk.var_student_t(2.0, 3.0, 5, 0.99), rel=1e-2)
    assert risk.es(x, 0.99) == pytest.approx(risk.es_student_t(2.0, 3.0, 5, 0.99), rel=1e-2)


# --------------------------------------------------------------------------- tail weights, Euler


def test_tail_weights_reproduce_es_and_share_ties() -> None:
    losses = np.array([0.0] * 97 + [5.0, 10.0, 20.0])
    t = risk.tail_weights(losses, 0.95)
    assert t @ losses == pytest.approx(risk.es(losses, 0.95), rel=1e-14)
    assert t.sum() == pytest.approx(1.0, rel=1e-14)
    np.testing.assert_allclose(t[97:], 1 / 5)
    np.testing.assert_allclose(t[:97], (2 / 5) / 97)  # two scenarios' worth shared by 97 zeros


def test_alpha_within_tolerance_of_one_is_the_worst_atom() -> None:
    alpha = 1.0 - 1e-13
    assert risk.var([1.0, 3.0, 3.0], alpha) == 3.0
    assert risk.es([1.0, 3.0, 3.0], alpha) == 3.0
    assert risk.es([1.0, 3.0, 3.0], alpha, [1.0, 1.0, 3.0]) == 3.0
    np.testing.assert_allclose(risk.tail_weights([1.0, 3.0, 3.0], alpha), [0.0, 0.5, 0.5])
    np.testing.assert_allclose(
        risk.tail_weights([1.0, 3.0, 3.0], alpha, [1.0, 1.0, 3.0]), [0.0, 0.25, 0.75]
    )


def test_tail_weights_share_ties_in_proportion_to_probability() -> None:
    losses = np.array([1.0, 5.0, 5.0, 9.0])
    weights = np.array([4.0, 1.0, 3.0, 1.0])  # probabilities 4/9, 1/9, 3/9, 1/9
    t = risk.tail_weights(losses, 0.75, weights)  # tail 1/4: 1/9 at 9, 5/36 from the atom at 5
    assert t[0] == 0.0
    assert t[3] == pytest.approx((1 / 9) / 0.25)
    assert t[1] / t[2] == pytest.approx(1 / 3)
    assert t[1] + t[2] == pytest.approx((0.25 - 1 / 9) / 0.25)
    assert t @ losses == pytest.approx(risk.es(losses, 0.75, weights), rel=1e-14)


def test_es_contributions_dense_sparse_and_weighted() -> None:
    rng = np.random.default_rng(17)
    by_part = rng.gamma(0.3, 100.0, (2000, 40)) * (rng.random((2000, 40)) < 0.1)
    weights = rng.uniform(0.5, 2.0, 2000)
    for w in (None, weights):
        total = risk.es(by_part.sum(axis=1), 0.99, w)
        c = risk.es_contributions(by_part, 0.99, w)
        assert c.shape == (40,)
        assert math.fsum(c.tolist()) == pytest.approx(total, rel=1e-12)
        for fmt in (sparse.csr_array, sparse.csc_matrix, sparse.coo_array):
            np.testing.assert_allclose(
                risk.es_contributions(fmt(by_part), 0.99, w), c, rtol=1e-12, atol=1e-9
            )


def test_es_contributions_of_comonotone_parts_are_their_own_es() -> None:
    rng = np.random.default_rng(4)
    base = rng.normal(0.0, 1.0, 5000)
    by_part = np.column_stack([base, 2.0 * base, 3.0 * base + 1.0])
    c = risk.es_contributions(by_part, 0.975)
    for j in range(3):
        assert c[j] == pytest.approx(risk.es(by_part[:, j], 0.975), rel=1e-12)


def test_contributions_with_tail_rows_only() -> None:
    rng = np.random.default_rng(8)
    by_part = rng.exponential(1.0, (5000, 30))
    t = risk.tail_weights(by_part.sum(axis=1), 0.99)
    rows = np.flatnonzero(t)
    assert rows.size <= 51
    np.testing.assert_allclose(
        t[rows] @ by_part[rows], risk.es_contributions(by_part, 0.99), rtol=1e-13
    )


# --------------------------------------------------------------------------- properties

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
alphas = st.floats(0.01, 0.999)


@st.composite
def samples(draw: st.DrawFn, min_size: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
    n = draw(st.integers(min_size, 60))
    x = np.array(draw(st.lists(finite, min_size=n, max_size=n)))
    if draw(st.booleans()):
        w = np.array(draw(st.lists(st.floats(0.0, 10.0), min_size=n, max_size=n)))
        if w.sum() > 0:
            return x, w
    return x, None


PROPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def tol(x: np.ndarray) -> float:
    return 1e-9 * (1.0 + float(np.max(np.abs(x))))


@PROPS
@given(sample=samples(), alpha=alphas)
def test_es_at_least_var_and_within_range(sample: tuple, alpha: float) -> None:
    x, w = sample
    v, e = risk.var(x, alpha, w), risk.es(x, alpha, w)
    assert e >= v - tol(x)
    assert e <= float(np.max(x)) + tol(x)
    assert v in x


@PROPS
@given(sample=samples(), a1=alphas, a2=alphas)
def test_es_and_var_non_decreasing_in_alpha(sample: tuple, a1: float, a2: float) -> None:
    x, w = sample
    lo, hi = sorted((a1, a2))
    assert risk.es(x, lo, w) <= risk.es(x, hi, w) + tol(x)
    assert risk.var(x, lo, w) <= risk.var(x, hi, w)


@PROPS
@given(data=st.data(), alpha=alphas)
def test_es_subadditive_on_the_same_scenarios(data: st.DataObject, alpha: float) -> None:
    x, w = data.draw(samples())
    y = np.array(data.draw(st.lists(finite, min_size=x.size, max_size=x.size)))
    assert risk.es(x + y, alpha, w) <= risk.es(x, alpha, w) + risk.es(y, alpha, w) + tol(
        np.abs(x) + np.abs(y)
    )


@PROPS
@given(sample=samples(), alpha=alphas, c=finite, lam=st.floats(1e-3, 1e3))
def test_translation_and_positive_homogeneity(
    sample: tuple, alpha: float, c: float, lam: float
) -> None:
    x, w = sample
    e = risk.es(x, alpha, w)
    assert risk.es(x + c, alpha, w) == pytest.approx(e + c, rel=1e-9, abs=tol(x) + 1e-9 * abs(c))
    assert risk.es(lam * x, alpha, w) == pytest.approx(lam * e, rel=1e-9, abs=lam * tol(x))


@PROPS
@given(data=st.data(), alpha=alphas)
def test_contributions_sum_to_es(data: st.DataObject, alpha: float) -> None:
    x, w = data.draw(samples())
    k = data.draw(st.integers(1, 5))
    parts = np.array(
        data.draw(
            st.lists(st.lists(finite, min_size=k, max_size=k), min_size=x.size, max_size=x.size)
        )
    )
    total = risk.es(parts.sum(axis=1), alpha, w)
    c = risk.es_contributions(parts, alpha, w)
    assert math.fsum(c.tolist()) == pytest.approx(
        total, rel=1e-9, abs=tol(np.abs(parts).sum(axis=1))
    )
    t = risk.tail_weights(parts.sum(axis=1), alpha, w)
    assert (t >= 0).all()
    assert t.sum() == pytest.approx(1.0, rel=1e-12)
