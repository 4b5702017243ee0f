"""simulator.risk against exact and high-precision references at relative tolerance 1e-9.

Independent of the implementation: every expected value is either an exact rational
computed here from the definitions with ``fractions.Fraction`` (weighted empirical
distributions, ties at VaR, tail sizes ``n (1 - alpha)`` that are not integers, Euler
contributions), or a numerical integral of the closed form's density or quantile function
(``scipy.integrate.quad`` at ``epsrel=1e-13``). The tolerance is the one an outside check
uses; the estimator itself is accurate to a few ulps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction as Q

import numpy as np
import pytest
from scipy import integrate, stats

from simulator import risk

RTOL = 1e-9


def exact(
    losses: Sequence[Q | int], alpha: Q, weights: Sequence[Q | int] | None = None
) -> tuple[Q, Q, list[Q]]:
    """VaR, ES and the tail weights t (ES = sum t_i L_i), exactly.

    VaR = min{l : P(L <= l) >= alpha}; scenarios above VaR get p_i / (1 - alpha), the
    scenarios tied at VaR share (P(L <= VaR) - alpha) / (1 - alpha) in proportion to p_i.
    """
    xs = [Q(x) for x in losses]
    ws = [Q(1)] * len(xs) if weights is None else [Q(w) for w in weights]
    total = sum(ws)
    p = [w / total for w in ws]
    var = next(
        v
        for v in sorted(set(xs))
        if sum(pi for x, pi in zip(xs, p, strict=True) if x <= v) >= alpha
    )
    at_or_below = sum(pi for x, pi in zip(xs, p, strict=True) if x <= var)
    p_tie = sum(pi for x, pi in zip(xs, p, strict=True) if x == var)
    t = []
    for x, pi in zip(xs, p, strict=True):
        if x > var:
            t.append(pi / (1 - alpha))
        elif x == var:
            t.append((at_or_below - alpha) / (1 - alpha) * pi / p_tie)
        else:
            t.append(Q(0))
    es = sum(ti * x for ti, x in zip(t, xs, strict=True))
    return var, es, t


def check(losses: Sequence[Q | int], alpha: str, weights: Sequence[Q | int] | None = None) -> Q:
    var, es, _ = exact(losses, Q(alpha), weights)
    x = [float(v) for v in losses]
    w = None if weights is None else [float(v) for v in weights]
    assert risk.var(x, float(alpha), w) == pytest.approx(float(var), rel=RTOL, abs=0)
    assert risk.es(x, float(alpha), w) == pytest.approx(float(es), rel=RTOL, abs=0)
    return es


# --------------------------------------------------------------------------- empirical


def test_textbook_case_exactly() -> None:
    # 100 scenarios: 0.5, 0.6, ..., 9.9, then VaR 10 and the tail losses 11, 14, 20, 35
    losses = [Q(k, 10) for k in range(5, 100)] + [10, 11, 14, 20, 35]
    assert len(losses) == 100
    assert check(losses, "0.96") == 20
    assert exact(losses, Q("0.96"))[0] == 10


def test_ties_at_var_take_a_fraction_of_the_atom() -> None:
    # 40 scenarios, alpha 0.95: tail of 2 scenarios = one 9 and one of the three 7s
    losses = [1] * 36 + [7, 7, 7, 9]
    assert check(losses, "0.95") == Q(9 + 7, 2)
    # alpha 0.9: 4 scenarios = 9 and all three 7s
    assert check(losses, "0.9") == Q(9 + 21, 4)
    # alpha 0.93: 2.8 scenarios = 9 and 1.8 of the 7s
    assert check(losses, "0.93") == (9 + Q(18, 10) * 7) / Q(28, 10)


@pytest.mark.parametrize("alpha", ["0.975", "0.99", "0.995", "0.9", "0.85", "0.7"])
def test_non_integer_tail_sizes(alpha: str) -> None:
    losses = [Q(k * k, 7) for k in range(1, 37)]  # n = 36: n (1 - alpha) is not an integer
    check(losses, alpha)


def test_weighted_with_ties_at_var() -> None:
    # P: 0 -> 0.4, 5 -> 0.4 (three scenarios), 10 -> 0.1, 20 -> 0.1; alpha 0.75: VaR 5,
    # tail 0.25 = 20 (0.1) + 10 (0.1) + 0.05 of the atom at 5
    losses = [0, 0, 5, 5, 5, 10, 20]
    weights = [3, 1, 2, 1, 1, 1, 1]
    assert check(losses, "0.75", weights) == Q(20 + 10 + Q(1, 2) * 5, Q(5, 2))


@pytest.mark.parametrize("alpha", ["0.5", "0.9", "0.95", "0.975", "0.99"])
def test_weighted_inexact_binary_weights(alpha: str) -> None:
    n = 50
    losses = [Q((k * 37) % 23, 3) - 2 for k in range(n)]  # ties and negative values
    weights = [Q(1, 1 + (k * 13) % 11) for k in range(n)]  # 1/k: not binary fractions
    check(losses, alpha, weights)


def test_importance_weights_of_very_different_sizes() -> None:
    losses = [1, 2, 3, 4, 1000]
    weights = [Q(1), Q(1), Q(1), Q(1), Q(1, 10**6)]  # a rare scenario, down-weighted
    check(losses, "0.99", weights)
    check(losses, "0.9999999", weights)


def test_sparse_bad_debt_sample() -> None:
    losses: list[Q | int] = [0] * 990 + [10**6 * k for k in range(1, 11)]
    # alpha 0.975: 25 scenarios in the tail, 10 losses and 15 zeros; VaR 0
    assert check(losses, "0.975") == Q(55 * 10**6, 25)
    assert check(losses, "0.999") == 10**7  # the single worst scenario
    assert check(losses, "0.9995") == 10**7  # half a scenario, still the worst
    assert check(losses, "0.995") == Q(10 + 9 + 8 + 7 + 6, 5) * 10**6


def test_all_equal_losses() -> None:
    assert check([0] * 17, "0.975") == 0
    assert check([Q(3, 2)] * 9, "0.5", [1, 2, 3, 4, 5, 6, 7, 8, 9]) == Q(3, 2)


def test_contributions_exactly() -> None:
    # three parts; totals tie at VaR; weighted and unweighted
    parts = [
        [1, 0, 0],
        [0, 2, 3],
        [4, 1, 0],
        [2, 2, 1],
        [0, 0, 5],
        [10, -3, 1],
        [0, 9, 0],
        [1, 1, 1],
    ]
    totals = [sum(row) for row in parts]  # 1, 5, 5, 5, 5, 8, 9, 3
    for alpha, weights in (("0.7", None), ("0.8", [1, 2, 1, 3, 1, 1, 2, 1])):
        _, es, t = exact(totals, Q(alpha), weights)
        want = [sum(t[i] * parts[i][j] for i in range(len(parts))) for j in range(3)]
        got = risk.es_contributions(
            np.array(parts, dtype=float), float(alpha), None if weights is None else weights
        )
        np.testing.assert_allclose(got, [float(v) for v in want], rtol=RTOL, atol=0)
        assert math.fsum(got) == pytest.approx(float(es), rel=1e-12)
        assert sum(want) == es


# --------------------------------------------------------------------------- closed forms


def tail_average(isf: Callable[[float], float], alpha: float) -> float:
    """``(1 / (1 - alpha)) * integral over (alpha, 1) of the quantile function``: the ES of
    a continuous law, from its inverse survival function. Integrated over ``v = ln(1 - u)``
    (``du = e^v dv``), which removes the singularity at ``u = 1``; ``isf(e^v)`` keeps full
    precision where ``1 - e^v`` would round to 1. The integrand falls like
    ``e^(v (1 - 1/tail index))``, so cutting at ``top - 120`` drops less than 1e-17 of the
    total for every law here (tail index >= 1.5); scipy's ``t.isf`` fails far beyond."""
    top = math.log1p(-alpha)
    value, _ = integrate.quad(
        lambda v: isf(math.exp(v)) * math.exp(v),
        top - 120.0,
        top,
        epsabs=0.0,
        epsrel=1e-12,
        limit=1000,
        points=[top - 1, top - 5, top - 20, top - 60],
    )
    return float(value) / (1.0 - alpha)


@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.95, 0.975, 0.99, 0.999])
@pytest.mark.parametrize(("mu", "sigma"), [(0.0, 4.0), (1.5, 0.25), (-3.0, 10.0)])
def test_normal_against_the_integral_of_its_quantile(mu: float, sigma: float, alpha: float) -> None:
    dist = stats.norm(mu, sigma)
    var = risk.var_normal(mu, sigma, alpha)
    assert dist.cdf(var) == pytest.approx(alpha, rel=1e-12)
    es = risk.es_normal(mu, sigma, alpha)
    assert es == pytest.approx(tail_average(dist.isf, alpha), rel=RTOL)


def test_normal_textbook_numbers() -> None:
    assert risk.var_normal(0.0, 4.0, 0.975) == pytest.approx(7.84, abs=5e-3)
    assert risk.es_normal(0.0, 4.0, 0.975) == pytest.approx(9.35, abs=5e-3)


@pytest.mark.parametrize("alpha", [0.9, 0.975, 0.99, 0.999])
@pytest.mark.parametrize(("df", "scale"), [(1.5, 1.0), (3.0, 2.5), (4.0, 0.4), (30.0, 7.0)])
def test_student_t_with_a_scale_that_is_not_the_sd(df: float, scale: float, alpha: float) -> None:
    mu = 2.0
    dist = stats.t(df, loc=mu, scale=scale)
    var = risk.var_student_t(mu, scale, df, alpha)
    assert dist.cdf(var) == pytest.approx(alpha, rel=1e-12)
    want = tail_average(dist.isf, alpha)
    assert risk.es_student_t(mu, scale, df, alpha) == pytest.approx(want, rel=RTOL)
    if df > 2:  # passing the sd as the scale would be wrong
        sd = scale * math.sqrt(df / (df - 2))
        assert risk.es_student_t(mu, sd, df, alpha) != pytest.approx(want, rel=1e-3)


@pytest.mark.parametrize("xi", [-0.3, 0.0, 0.25, 0.6])
def test_gpd_tail_against_scipy_genpareto(xi: float) -> None:
    """VaR and ES of a peaks-over-threshold tail (threshold u, exceedance probability
    n_u / n, GPD(xi, beta) exceedances) against scipy's GPD quantile and its integral."""
    u, beta, p_u = 10.0, 3.0, 0.1
    tail = risk.GPDTail(xi=xi, beta=beta, threshold=u, n_exceedances=200, n=2000)
    exceed = stats.genpareto(xi, scale=beta)
    for alpha in (0.9, 0.95, 0.99, 0.999, 0.99999):
        assert tail.var(alpha) == pytest.approx(u + exceed.isf((1 - alpha) / p_u), rel=RTOL)
        want = tail_average(lambda s: u + exceed.isf(s / p_u), alpha)
        assert tail.es(alpha) == pytest.approx(want, rel=RTOL)
