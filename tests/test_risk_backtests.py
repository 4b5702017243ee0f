"""Backtests valid with atoms at VaR and ES = 0 (bad debt), and sample-size critical values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from simulator import risk
from simulator.errors import InputError


def _bad_debt_world(rng: np.random.Generator, t: int) -> tuple[np.ndarray, np.ndarray]:
    """A correct model of a bad-debt loss: most days P(L > 0) is far below 2.5%.

    Day t's loss is 0 with probability 1 - q_t and lognormal otherwise, with q_t varying
    between 0 (a safe day: ES = 0) and 4%. Returns (q, scale) per day.
    """
    q = rng.choice([0.0, 0.003, 0.01, 0.04], size=t, p=[0.3, 0.3, 0.3, 0.1])
    scale = rng.uniform(1e5, 1e6, size=t)
    return q, scale


def _draw(rng: np.random.Generator, q: np.ndarray, scale: np.ndarray, shape: tuple[int, ...]):
    hit = rng.random(shape) < q
    return np.where(hit, scale * rng.lognormal(0.0, 1.0, shape), 0.0)


def _forecasts(q: np.ndarray, scale: np.ndarray, alpha: float, n: int, seed: int):
    """VaR, ES and P(L > VaR) of each day's forecast, from n simulated losses a day."""
    rng = np.random.default_rng(seed)
    v, e, p = (np.empty(q.size) for _ in range(3))
    for i in range(q.size):
        sample = _draw(rng, q[i : i + 1], scale[i : i + 1], (n,))
        v[i] = risk.var(sample, alpha)
        e[i] = risk.es(sample, alpha)
        p[i] = risk.exception_probability(sample, v[i])
    return v, e, p


def test_a_correct_bad_debt_model_is_not_rejected_by_kupiec_with_own_probabilities() -> None:
    alpha, t = 0.975, 1643
    rng = np.random.default_rng(5)
    q, scale = _bad_debt_world(rng, t)
    v, _, p = _forecasts(q, scale, alpha, 20_000, seed=6)
    pvals_plain, pvals_own = [], []
    for k in range(40):
        losses = _draw(np.random.default_rng(100 + k), q, scale, (t,))
        hits = losses > v
        pvals_plain.append(risk.kupiec_pof(int(hits.sum()), t, alpha).p_value)
        pvals_own.append(risk.kupiec_pof_varying(hits, p).p_value)
    # VaR is an atom at 0 on the days with q < 2.5%: the plain test expects 41 exceptions and
    # sees far fewer, so it rejects a correct model every time; the varying test is ~uniform.
    assert max(pvals_plain) < 1e-3
    assert np.mean(np.asarray(pvals_own) < 0.05) <= 0.15
    assert np.median(pvals_own) > 0.2


def test_kupiec_varying_equals_kupiec_for_constant_probability() -> None:
    rng = np.random.default_rng(1)
    for n, x in [(250, 0), (250, 3), (1000, 25), (1643, 93), (50, 50)]:
        hits = np.zeros(n, bool)
        hits[rng.choice(n, x, replace=False)] = True
        a = risk.kupiec_pof(x, n, 0.975)
        b = risk.kupiec_pof_varying(hits, 0.025)
        assert b.statistic == pytest.approx(a.statistic, rel=1e-8, abs=1e-10)
        assert b.exceptions == x and b.expected_rate == pytest.approx(0.025)


def test_kupiec_varying_rejects_too_many_exceptions_and_impossible_ones() -> None:
    p = np.full(1000, 0.01)
    hits = np.zeros(1000, bool)
    hits[:40] = True  # 40 where 10 are expected
    assert risk.kupiec_pof_varying(hits, p).p_value < 1e-8
    p[0] = 0.0  # an exception on a day the model called impossible
    res = risk.kupiec_pof_varying(hits, p)
    assert res.statistic == math.inf and res.p_value == 0.0
    with pytest.raises(InputError, match=r"exception_probs: 1\.5 at index 2"):
        risk.kupiec_pof_varying([0, 1, 0], [0.1, 0.1, 1.5])
    with pytest.raises(InputError, match="hits: must be booleans"):
        risk.kupiec_pof_varying([0, 2, 0], 0.1)


def test_es_zero_is_scored_and_a_correct_bad_debt_model_passes_z2() -> None:
    alpha, t = 0.975, 1643
    rng = np.random.default_rng(8)
    q, scale = _bad_debt_world(rng, t)
    v, e, p = _forecasts(q, scale, alpha, 20_000, seed=9)
    assert (e == 0.0).sum() > 300  # the safe days forecast ES = 0

    # the null distribution: histories drawn from the same forecasts
    def sampler(gen: np.random.Generator, n_sim: int) -> np.ndarray:
        return _draw(gen, q, scale, (n_sim, t))

    pvals = []
    for k in range(10):
        losses = _draw(np.random.default_rng(300 + k), q, scale, (t,))
        z = risk.acerbi_szekely_z2(losses, v, e, alpha, exception_probs=p)
        assert math.isfinite(z)
        res = risk.acerbi_szekely_z2_pvalue(
            losses, v, e, alpha, sampler, 400, rng=k, exception_probs=p
        )
        assert res.statistic == z
        pvals.append(res.p_value)
    assert np.mean(np.asarray(pvals) < 0.05) <= 0.3
    # a loss on a day whose ES forecast is 0: the model called it impossible
    losses = np.zeros(t)
    day = int(np.flatnonzero(e == 0.0)[0])
    losses[day] = 1.0
    assert risk.acerbi_szekely_z2(losses, v, e, alpha, exception_probs=p) == -math.inf
    # an underestimated loss (ES half of the truth) is rejected
    big = _draw(np.random.default_rng(7), np.minimum(q * 3, 1.0), scale * 2, (t,))
    assert (
        risk.acerbi_szekely_z2_pvalue(
            big, v, e, alpha, sampler, 400, rng=1, exception_probs=p
        ).p_value
        < 0.01
    )


def test_z2_atom_correction_makes_it_unbiased() -> None:
    """Loss 5 with prob. 0.99, else uniform(5, 15): VaR_0.975 = 5 is an atom; P(L > 5) = 1%."""
    alpha = 0.975
    rng = np.random.default_rng(2)
    sample = np.where(rng.random(400_000) < 0.99, 5.0, rng.uniform(5, 15, 400_000))
    v, e = risk.var(sample, alpha), risk.es(sample, alpha)
    p = risk.exception_probability(sample, v)
    assert v == 5.0 and p == pytest.approx(0.01, abs=0.001)
    sims = np.where(rng.random((400, 250)) < 0.99, 5.0, rng.uniform(5, 15, (400, 250)))
    plain = [risk.acerbi_szekely_z2(s, v, e, alpha) for s in sims]
    fixed = [risk.acerbi_szekely_z2(s, v, e, alpha, exception_probs=p) for s in sims]
    # E[plain] = 1 - 0.01 * 10 / (0.01 * 10 + 5 * 0.015) = 0.43: a correct model looks too safe
    assert float(np.mean(plain)) == pytest.approx(0.43, abs=0.1)
    assert abs(float(np.mean(fixed))) < 0.1


def test_z2_critical_value_depends_on_the_sample_size() -> None:
    """The paper's -0.70 is for T = 250; for T = 1,643 the 5% critical value is ~ -0.3."""
    alpha = 0.975
    v, e = risk.var_student_t(0, 1, 5, alpha), risk.es_student_t(0, 1, 5, alpha)
    crits = {}
    for t in (250, 1643):
        res = risk.acerbi_szekely_z2_pvalue(
            np.zeros(t),
            v,
            e,
            alpha,
            lambda g, n, t=t: stats.t.rvs(5, size=(n, t), random_state=g),
            4000,
            rng=3,
        )
        crits[t] = res.critical_value
        assert res.level == 0.05
    assert -0.95 < crits[250] < -0.5
    assert -0.45 < crits[1643] < -0.2
    assert crits[1643] / crits[250] == pytest.approx(math.sqrt(250 / 1643), rel=0.3)


def test_christoffersen_detects_clustered_exceptions() -> None:
    rng = np.random.default_rng(4)
    iid = rng.random(2000) < 0.02
    assert risk.christoffersen(iid, 0.02).independence_p > 0.01
    clustered = np.zeros(2000, bool)
    for s in rng.choice(1990, 10, replace=False):
        clustered[s : s + 4] = True  # 40 exceptions in runs of four
    res = risk.christoffersen(clustered, 0.02)
    assert res.independence_p < 1e-6 and res.conditional_coverage_p < 1e-6
    assert sum(res.transitions) == 1999
