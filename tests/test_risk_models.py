"""simulator.risk: closed forms, EVT tail, bootstrap interval, backtests."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import integrate, stats

from simulator import risk
from simulator.errors import InputError, NumericalWarning

# --------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.975, 0.99, 0.999, 0.99999])
def test_normal_es_equals_integral_of_the_quantile_function(alpha: float) -> None:
    q = 1.0 - alpha
    # ES = (1/(1-alpha)) int_alpha^1 VaR_u du; substitute u = 1 - q s to stay accurate near 1.
    integral, _ = integrate.quad(
        lambda s: stats.norm.isf(q * s, 1.0, 4.0), 0.0, 1.0, epsabs=0.0, epsrel=1e-10, limit=200
    )
    assert risk.es_normal(1.0, 4.0, alpha) == pytest.approx(integral, rel=1e-9)
    assert stats.norm.cdf(risk.var_normal(1.0, 4.0, alpha), 1.0, 4.0) == pytest.approx(alpha)


@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.975, 0.99, 0.999, 0.99999])
@pytest.mark.parametrize("df", [1.5, 3.0, 10.0, 50.0])
def test_student_t_es_equals_integral_of_the_tail(alpha: float, df: float) -> None:
    mu, scale = 2.0, 3.0
    v = risk.var_student_t(mu, scale, df, alpha)
    assert stats.t.sf(v, df, mu, scale) == pytest.approx(1.0 - alpha, rel=1e-12)
    tail, _ = integrate.quad(
        lambda x: x * stats.t.pdf(x, df, mu, scale), v, math.inf, epsabs=0.0, epsrel=1e-11
    )
    assert risk.es_student_t(mu, scale, df, alpha) == pytest.approx(tail / (1.0 - alpha), rel=1e-9)


def test_student_t_scale_is_not_the_standard_deviation() -> None:
    df = 4.0
    sd = 2.0 * math.sqrt(df / (df - 2.0))
    assert risk.var_student_t(0.0, 2.0, df, 0.99) == pytest.approx(2.0 * stats.t.ppf(0.99, df))
    assert risk.var_student_t(0.0, 2.0, df, 0.99) != pytest.approx(sd * stats.t.ppf(0.99, df))


def test_student_t_tends_to_normal() -> None:
    assert risk.es_student_t(1.0, 4.0, 1e7, 0.975) == pytest.approx(
        risk.es_normal(1.0, 4.0, 0.975), rel=1e-6
    )


# --------------------------------------------------------------------------- EVT


def test_evt_recovers_gpd_parameters_and_tail() -> None:
    rng = np.random.default_rng(99)
    xi, beta, u = 0.3, 2.0, 5.0
    n = 180_000
    body = rng.uniform(0.0, u, n)  # 90% of the mass below the threshold
    tail = u + stats.genpareto.rvs(xi, scale=beta, size=n // 9, random_state=rng)
    losses = np.concatenate([body, tail])
    res = risk.evt_es(losses, 0.999, threshold=u)
    assert res.measure == "es"
    assert res.xi == pytest.approx(xi, abs=0.03)
    assert res.beta == pytest.approx(beta, rel=0.05)
    assert res.threshold == u
    assert res.n_exceedances == n // 9
    assert res.n == losses.size
    p_u = res.n_exceedances / res.n
    true_var = u + beta / xi * (((1 - 0.999) / p_u) ** -xi - 1)
    true_es = (true_var + beta - xi * u) / (1 - xi)
    assert res.value == pytest.approx(true_es, rel=0.1)
    assert risk.evt_var(losses, 0.999, threshold=u).value == pytest.approx(true_var, rel=0.05)


def test_evt_formulas_are_consistent_with_the_fitted_tail() -> None:
    rng = np.random.default_rng(5)
    losses = rng.standard_t(4, 50_000)
    res = risk.evt_var(losses, 0.9995)
    tail = res.tail
    assert res.threshold == risk.var(losses, 0.9)  # default threshold: the 90% quantile
    assert res.n_exceedances == int(np.sum(losses > res.threshold))
    # At the threshold's own level the tail VaR is the threshold.
    assert tail.var(1.0 - tail.tail_prob) == pytest.approx(res.threshold, rel=1e-12)
    # ES is the average of the tail VaR beyond alpha.
    alpha = 0.9995
    integral, _ = integrate.quad(tail.var, alpha, 1.0, epsabs=0.0, epsrel=1e-10, limit=200)
    assert tail.es(alpha) == pytest.approx(integral / (1.0 - alpha), rel=1e-8)
    assert risk.evt_es(losses, alpha).value == pytest.approx(tail.es(alpha), rel=1e-12)
    # Student-t(4) has xi = 1/4; the EVT ES is in the right place.
    assert res.xi == pytest.approx(0.25, abs=0.1)
    assert tail.es(alpha) == pytest.approx(risk.es_student_t(0.0, 1.0, 4, alpha), rel=0.15)


def test_evt_near_zero_shape_is_continuous() -> None:
    tail0 = risk.GPDTail(0.0, 2.0, 1.0, 100, 1000)
    tail_eps = risk.GPDTail(1e-12, 2.0, 1.0, 100, 1000)
    assert tail_eps.var(0.999) == pytest.approx(tail0.var(0.999), rel=1e-10)
    assert tail0.var(0.999) == pytest.approx(1.0 + 2.0 * math.log(100), rel=1e-14)
    assert tail0.es(0.999) == pytest.approx(tail0.var(0.999) + 2.0, rel=1e-14)


def test_evt_bounded_tail() -> None:
    rng = np.random.default_rng(1)
    losses = rng.uniform(0.0, 10.0, 20_000)  # GPD xi = -1 above any threshold
    res = risk.evt_es(losses, 0.9999)
    assert res.xi == pytest.approx(-1.0, abs=0.15)
    assert 9.9 < res.value < 10.1


def test_evt_infinite_mean_tail_warns_and_returns_inf() -> None:
    rng = np.random.default_rng(3)
    losses = stats.genpareto.rvs(1.5, scale=1.0, size=5000, random_state=rng)
    assert math.isfinite(risk.evt_var(losses, 0.999).value)
    with pytest.warns(NumericalWarning, match="infinite mean"):
        res = risk.evt_es(losses, 0.999)
    assert res.value == math.inf
    assert res.xi > 1.0


def test_evt_too_few_exceedances_is_a_clear_error() -> None:
    losses = np.zeros(1000)
    losses[:5] = [1e6, 2e6, 3e6, 4e6, 5e6]  # sparse bad debt: 90% quantile is 0
    with pytest.raises(InputError, match=r"only 5 of 1000 losses exceed"):
        risk.evt_es(losses, 0.999)
    with pytest.raises(InputError, match=r"only 3 of 1000 losses exceed the given threshold"):
        risk.evt_var(losses, 0.999, threshold=2.5e6)
    res = risk.evt_var(losses, 0.999, min_exceedances=5)
    assert res.threshold == 0.0 and res.n_exceedances == 5


def test_evt_alpha_must_be_beyond_the_threshold() -> None:
    rng = np.random.default_rng(0)
    losses = rng.exponential(1.0, 1000)
    with pytest.raises(InputError, match="not beyond the threshold"):
        risk.evt_var(losses, 0.8)
    with pytest.raises(InputError, match="all equal"):
        risk.evt_es(np.r_[np.zeros(100), np.ones(30)], 0.99, threshold=0.5)


# --------------------------------------------------------------------------- bootstrap


def test_es_ci_is_reproducible_by_seed() -> None:
    rng = np.random.default_rng(0)
    losses = rng.lognormal(0.0, 1.0, 3000)
    a = risk.es_ci(losses, 0.975, n_boot=500, rng=42)
    assert a == risk.es_ci(losses, 0.975, n_boot=500, rng=42)
    assert a == risk.es_ci(losses, 0.975, n_boot=500, rng=np.random.default_rng(42))
    assert risk.es_ci(losses, 0.975, n_boot=500) == risk.es_ci(losses, 0.975, n_boot=500)
    assert a != risk.es_ci(losses, 0.975, n_boot=500, rng=43)
    assert a.es == risk.es(losses, 0.975)
    assert a.low < a.es < a.high
    assert (a.level, a.n_boot, a.alpha, a.method) == (0.95, 500, 0.975, "percentile")
    wide = risk.es_ci(losses, 0.975, level=0.99, n_boot=500, rng=42)
    assert wide.low <= a.low and wide.high >= a.high


def test_es_ci_does_not_depend_on_the_block_size(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = np.random.default_rng(1).normal(size=1000)
    whole = risk.es_ci(losses, 0.9, n_boot=301, rng=7)
    monkeypatch.setattr(risk, "_BOOT_BLOCK", 3 * 1000)  # 3 resamples per block
    assert risk.es_ci(losses, 0.9, n_boot=301, rng=7) == whole


def test_bootstrap_row_kernel_matches_scalar_es() -> None:
    rng = np.random.default_rng(2)
    for n, alpha in [(10, 0.85), (40, 0.975), (100, 0.95), (333, 0.99), (1, 0.5)]:
        rows = rng.integers(0, 4, (25, n)).astype(np.float64)  # many ties
        rows[:5] = rng.normal(size=(5, n))
        expected = [risk.es(r, alpha) for r in rows]
        np.testing.assert_allclose(risk._es_rows(rows, alpha), expected, rtol=1e-13, atol=1e-15)


def test_es_ci_covers_the_true_es() -> None:
    truth = risk.es_normal(0.0, 1.0, 0.95)
    covered = 0
    ses = []
    estimates = []
    for seed in range(60):
        x = np.random.default_rng(1000 + seed).normal(size=2000)
        ci = risk.es_ci(x, 0.95, n_boot=400, rng=seed)
        covered += ci.low <= truth <= ci.high
        ses.append(ci.se)
        estimates.append(ci.es)
    assert covered >= 50  # nominal 95% of 60 = 57
    # The asymptotic standard error matches the spread of the estimator across samples.
    assert float(np.mean(ses)) == pytest.approx(float(np.std(estimates)), rel=0.25)


def test_es_ci_standard_error_formula() -> None:
    x = np.array([0.0] * 90 + list(range(1, 11)), dtype=np.float64)
    ci = risk.es_ci(x, 0.9, n_boot=10)
    v = risk.var(x, 0.9)
    excess = np.maximum(x - v, 0.0)
    assert ci.se == pytest.approx(math.sqrt(np.var(excess) / (100 * 0.1**2)), rel=1e-12)


# --------------------------------------------------------------------------- backtests


def _kupiec_oracle(x: int, n: int, p: float) -> float:
    return 2.0 * (stats.binom.logpmf(x, n, x / n) - stats.binom.logpmf(x, n, p))


@pytest.mark.parametrize("n", [1, 10, 250, 1000])
@pytest.mark.parametrize("alpha", [0.95, 0.99])
def test_kupiec_matches_binomial_likelihood_ratio(n: int, alpha: float) -> None:
    for x in sorted({0, 1, n // 100, n // 20, n // 2, n - 1, n}):
        res = risk.kupiec_pof(x, n, alpha)
        assert res.statistic == pytest.approx(_kupiec_oracle(x, n, 1 - alpha), rel=1e-9, abs=1e-12)
        assert res.p_value == pytest.approx(stats.chi2.sf(res.statistic, 1), rel=1e-12)
        assert (res.exceptions, res.n) == (x, n)
        assert res.observed_rate == x / n


def test_kupiec_known_values() -> None:
    zero = risk.kupiec_pof(0, 250, 0.99)
    assert zero.statistic == pytest.approx(-2 * 250 * math.log(0.99), rel=1e-12)
    assert zero.p_value == pytest.approx(0.0249815, abs=1e-6)
    statistic, p_value = zero
    assert (statistic, p_value) == (zero.statistic, zero.p_value)
    assert risk.kupiec_pof(250, 250, 0.99).statistic == pytest.approx(500 * math.log(100))
    assert risk.kupiec_pof(5, 500, 0.99).statistic == 0.0
    assert risk.kupiec_pof(5, 500, 0.99).p_value == 1.0
    # Kupiec (1995) 95% non-rejection regions at p = 1%: T=510: 1 < N < 11; T=1000: 4 < N < 17.
    for n, lo, hi in [(510, 2, 10), (1000, 5, 16)]:
        accepted = [x for x in range(n // 10) if risk.kupiec_pof(x, n, 0.99).p_value > 0.05]
        assert (accepted[0], accepted[-1]) == (lo, hi)


def _normal_forecasts(alpha: float) -> tuple[float, float]:
    return risk.var_normal(0.0, 1.0, alpha), risk.es_normal(0.0, 1.0, alpha)


def test_z2_hand_example() -> None:
    # T (1 - alpha) = 1; exceptions 5 and 10 against ES 8.
    assert risk.acerbi_szekely_z2([1.0, 5.0, 2.0, 10.0], 4.0, 8.0, 0.75) == pytest.approx(
        1 - 15 / 8, rel=1e-15
    )
    assert risk.acerbi_szekely_z2([1.0, 2.0], [4.0, 4.0], [8.0, 8.0], 0.75) == 1.0


def test_z2_is_zero_under_correct_forecasts_and_negative_when_es_is_underestimated() -> None:
    alpha = 0.975
    v, e = _normal_forecasts(alpha)
    rng = np.random.default_rng(12)
    correct = [risk.acerbi_szekely_z2(rng.normal(size=250), v, e, alpha) for _ in range(400)]
    assert abs(float(np.mean(correct))) < 0.05
    fat = [risk.acerbi_szekely_z2(rng.normal(0, 1.5, 250), v, e, alpha) for _ in range(400)]
    assert float(np.mean(fat)) < -1.0
    # Exceptions right but ES too low: still negative.
    low_es = [risk.acerbi_szekely_z2(rng.normal(size=250), v, 0.8 * e, alpha) for _ in range(400)]
    assert float(np.mean(low_es)) == pytest.approx(1 - 1 / 0.8, abs=0.06)


def test_z2_simulated_pvalue() -> None:
    alpha, t = 0.975, 500
    v, e = _normal_forecasts(alpha)

    def sampler(gen: np.random.Generator, n_sim: int) -> np.ndarray:
        return gen.normal(size=(n_sim, t))

    rng = np.random.default_rng(77)
    good = risk.acerbi_szekely_z2_pvalue(rng.normal(size=t), v, e, alpha, sampler, 2000, rng=1)
    bad = risk.acerbi_szekely_z2_pvalue(rng.normal(0, 1.6, t), v, e, alpha, sampler, 2000, rng=1)
    assert good.p_value > 0.05
    assert bad.p_value < 0.005
    assert bad.statistic < 0 and bad.n_sim == 2000
    history = rng.normal(size=t)
    first = risk.acerbi_szekely_z2_pvalue(history, v, e, alpha, sampler, 200)
    assert first == risk.acerbi_szekely_z2_pvalue(history, v, e, alpha, sampler, 200)
    assert first.statistic == risk.acerbi_szekely_z2(history, v, e, alpha)


def test_no_warnings_leak_from_the_gpd_fit() -> None:
    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for seed in range(5):
            x = stats.genpareto.rvs(-0.4 + 0.3 * seed, size=300, random_state=rng) * 1e9
            risk.evt_fit(x, 0.0)
