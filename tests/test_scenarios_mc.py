"""Monte Carlo draws against their parameters, within stated sampling error.

Tolerances are multiples of the estimator's standard error for the sample size used:
SE(sample sd) ~ sd * sqrt((kurtosis - 1) / (4 n)), SE(correlation) ~ (1 - rho^2) / sqrt(n)
(normal data), SE(proportion) = sqrt(p (1 - p) / n). Five standard errors: a false alarm
has odds below 1 in a million per check, and the seeds are fixed anyway.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy import stats

from simulator.scenarios import load_scenario, parse_scenario
from simulator.scenarios.model import MonteCarloSpec

VOL = [0.04, 0.02, 0.003]
CORR = [[1.0, 0.7, -0.3], [0.7, 1.0, -0.2], [-0.3, -0.2, 1.0]]


def _mc(
    innovations: str = "normal",
    dof: float = 5.0,
    n_steps: int = 1,
    step: float = 86400.0,
    **extra: Any,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "kind": "montecarlo",
        "n_steps": n_steps,
        "step_seconds": step,
        "factors": ["ETH", "BTC", "STABLE"],
        "innovations": innovations,
        "gas": {"base_gwei": 10},
        "regimes": {"normal": {"vol_daily": VOL, "corr": CORR, "dof": dof}},
    }
    doc.update(extra)
    return doc


def _log_returns(doc: dict[str, Any], n: int, seed: int) -> np.ndarray:
    sc = parse_scenario(doc, "t", "t.toml")
    pp = sc.paths(["ETH", "BTC", "USDC"], n, seed=seed)
    return np.log(pp.multipliers[:, -1, :])


N = 60_000


def test_normal_moments_and_correlation_match_parameters() -> None:
    r = _log_returns(_mc("normal"), N, seed=1)
    sd = r.std(axis=0, ddof=1)
    se_sd = np.array(VOL) * math.sqrt(2.0 / (4 * N))
    assert np.all(np.abs(sd - VOL) < 5 * se_sd), (sd, VOL)
    assert np.all(np.abs(r.mean(axis=0)) < 5 * np.array(VOL) / math.sqrt(N))
    c = np.corrcoef(r, rowvar=False)
    for i in range(3):
        for j in range(i + 1, 3):
            se = (1 - CORR[i][j] ** 2) / math.sqrt(N)
            assert abs(c[i, j] - CORR[i][j]) < 5 * se, (i, j, c[i, j])


def test_student_t_is_scaled_to_unit_variance_and_has_t_tails() -> None:
    dof = 6.0
    r = _log_returns(_mc("student-t", dof=dof), N, seed=2)
    z = r / np.array(VOL)
    # variance: kurtosis of t6 is 6, so SE(var) = sqrt(5 / n)
    var = z.var(axis=0, ddof=1)
    assert np.all(np.abs(var - 1.0) < 5 * math.sqrt(5.0 / N)), var
    # tails: P(|z| > 3) of a t6 scaled to unit variance, against scipy
    scale = math.sqrt((dof - 2.0) / dof)
    p = 2 * stats.t.sf(3.0 / scale, dof)
    got = (np.abs(z) > 3.0).mean(axis=0)
    assert np.all(np.abs(got - p) < 5 * math.sqrt(p * (1 - p) / N)), (got, p)
    # much fatter than the normal's 0.0027
    assert np.all(got > 2 * 2 * stats.norm.sf(3.0))
    # the mixing variable is shared: joint extremes are more frequent than for a Gaussian
    both = ((np.abs(z[:, 0]) > 3) & (np.abs(z[:, 2]) > 3)).mean()
    assert both > 5 * (2 * stats.norm.sf(3.0)) ** 2


def test_student_t_correlation_matches() -> None:
    r = _log_returns(_mc("student-t", dof=8.0), N, seed=3)
    c = np.corrcoef(r, rowvar=False)
    # t8 inflates SE(correlation) modestly; 8 normal-theory SEs
    for i in range(3):
        for j in range(i + 1, 3):
            assert abs(c[i, j] - CORR[i][j]) < 8 * (1 - CORR[i][j] ** 2) / math.sqrt(N)


def _tail_prob(z: np.ndarray, dof: float, k: float = 3.0) -> tuple[np.ndarray, float, float]:
    """Observed P(|z| > k) per column, the unit-variance t(dof) value and its standard error."""
    scale = math.sqrt((dof - 2.0) / dof)
    p = 2 * stats.t.sf(k / scale, dof)
    return (np.abs(z) > k).mean(axis=0), p, math.sqrt(p * (1 - p) / z.shape[0])


def test_hourly_steps_with_daily_mixing_give_the_calibrated_daily_t() -> None:
    """mixing = "day" (the default): 24 hourly steps share one mixing variable, so the day's
    log-return is exactly the unit-variance t(dof) x vol the regime was calibrated to: same
    variance and the same tail frequency as one daily step."""
    dof = 4.0
    r = _log_returns(_mc("student-t", dof=dof, n_steps=24, step=3600.0), N, seed=4)
    z = r / np.array(VOL)
    # kurtosis of t4 is infinite: the sample variance converges slowly; 6% (the variance
    # itself is checked exactly by the one-step test and the integral below)
    assert np.all(np.abs(z.std(axis=0, ddof=1) - 1.0) < 0.06), z.std(axis=0)
    got, p, se = _tail_prob(z, dof)
    assert np.all(np.abs(got - p) < 5 * se), (got, p)
    # two days of 24 steps: one mixing variable per day, so each day is t(dof) again
    r2 = _log_returns(_mc("student-t", dof=dof, n_steps=48, step=3600.0), N, seed=5)
    sc = parse_scenario(_mc("student-t", dof=dof, n_steps=48, step=3600.0), "t", "t.toml")
    levels = np.log(sc.paths(["ETH", "BTC", "USDC"], N, seed=5).multipliers)
    day2 = (levels[:, 48, :] - levels[:, 24, :]) / np.array(VOL)
    got2, _, _ = _tail_prob(day2, dof)
    assert np.all(np.abs(got2 - p) < 5 * se), (got2, p)
    # the two days are independent draws: their sum has sd sqrt(2) x vol
    assert np.all(np.abs(r2.std(axis=0) / np.array(VOL) / math.sqrt(2.0) - 1.0) < 0.06)


def test_hourly_steps_with_step_mixing_thin_the_daily_tails() -> None:
    """mixing = "step": each hourly step is t(dof); the day (a sum of 24 independent steps)
    keeps the daily variance but is much closer to normal (the CLT), which is why "day" is
    the default for regimes calibrated on daily returns."""
    dof = 4.0
    doc = _mc("student-t", dof=dof, n_steps=24, step=3600.0, mixing="step")
    z = _log_returns(doc, N, seed=4) / np.array(VOL)
    assert np.all(np.abs(z.std(axis=0, ddof=1) - 1.0) < 0.04), z.std(axis=0)
    got, p, se = _tail_prob(z, dof)
    normal = 2 * stats.norm.sf(3.0)
    assert np.all(got < p - 5 * se), (got, p)
    assert np.all(got < 2.0 * normal), (got, normal)


def test_mixing_groups_are_days_of_the_scenario() -> None:
    from simulator.scenarios.generate import mixing_groups

    assert mixing_groups(48, 1 / 24, "day").tolist() == [0] * 24 + [1] * 24
    assert mixing_groups(5, 1 / 24, "step").tolist() == [0, 1, 2, 3, 4]
    assert mixing_groups(4, 2.0, "day").tolist() == [0, 1, 2, 3]  # steps longer than a day
    assert mixing_groups(288, 300 / 86400, "day").tolist() == [0] * 288  # 5-minute steps
    # 7-hour steps: a step belongs to the day it starts in
    assert mixing_groups(5, 7 / 24, "day").tolist() == [0, 0, 0, 0, 1]


def test_default_one_day_es_is_the_calibrated_t_and_the_market_s(tmp_path: Any) -> None:
    """The default scenario's one-day 97.5% ES of each volatile factor equals the closed-form
    ES of its calibrated daily t (scale = vol x sqrt((dof - 2) / dof)), and lies within the
    sampling error of the ES of the market's own daily returns over the calibration window
    (data/prices, 2018-01-01..2024-06-30; about 60 days in the tail): with no price history
    the conditional default uses its long-run volatility, the unconditional level. LINK's
    data end 2024-06-17."""
    import pandas as pd
    from price_data import price_file

    from simulator import risk

    sc = load_scenario("default")
    spec = sc.spec
    assert isinstance(spec, MonteCarloSpec) and spec.mixing == "day"
    reg = spec.active
    names = ["ETH", "BTC", "LINK"]
    pp = sc.paths(names, 200_000, seed=11)
    loss = -np.log(pp.multipliers[:, -1, :])
    for j, name in enumerate(names):
        vol = reg.vol_daily[spec.factors.index(name)]
        closed = risk.es_student_t(0.0, vol * math.sqrt((reg.dof - 2) / reg.dof), reg.dof)
        model = risk.es(loss[:, j])
        # 200,000 paths: the sampling SE of ES is about 0.5%; 3%
        assert model == pytest.approx(closed, rel=0.03), name
        close = pd.read_csv(price_file(f"{name}-USD.csv"), parse_dates=["date"]).set_index("date")
        window = close["close"].loc["2018-01-01":"2024-06-30"].to_numpy()
        market = -np.diff(np.log(window))
        ci = risk.es_ci(market, 0.975, n_boot=200, rng=1)
        assert abs(model - ci.es) < 2 * ci.se, (name, model, ci.es, ci.se)


def test_the_default_scenario_reproduces_its_calibration() -> None:
    sc = load_scenario("default")
    spec = sc.spec
    assert isinstance(spec, MonteCarloSpec)
    reg = spec.active
    pp = sc.paths(list(spec.factors), 20_000, seed=9)
    r = np.log(pp.multipliers[:, -1, :])
    # The one-day return is a multivariate t with dof 3.36 (infinite fourth moment), so
    # sample sds and Pearson correlations converge slowly; use statistics that do not
    # need a fourth moment. Scale: the interquartile range of vol x t(dof) at unit variance.
    vol = np.array(reg.vol_daily)
    iqr = np.subtract(*np.percentile(r, [75, 25], axis=0))
    want = 2 * stats.t.ppf(0.75, reg.dof) * math.sqrt((reg.dof - 2) / reg.dof) * vol
    assert np.all(np.abs(iqr / want - 1.0) < 0.04), iqr / want
    # Correlation: for any elliptical law Kendall's tau = (2 / pi) arcsin(rho).
    f = len(spec.factors)
    for i in range(f):
        for j in range(i + 1, f):
            tau = stats.kendalltau(r[:, i], r[:, j]).statistic
            rho = math.sin(math.pi * tau / 2)
            assert abs(rho - reg.corr[i][j]) < 0.03, (spec.factors[i], spec.factors[j], rho)
    # the variance is right too (checked exactly elsewhere); loose bound on the sample sd
    sd = r.std(axis=0, ddof=1)
    assert np.all(np.abs(sd / vol - 1.0) < 0.1), sd / vol


def test_jumps_add_the_compound_poisson_moments() -> None:
    lam, mu, sd_j = 3.0, -0.05, 0.02
    doc = _mc(
        "normal",
        jumps={"intensity_per_day": lam, "mean": mu, "std": sd_j, "beta": [1.0, 0.5, 0.0]},
    )
    r = _log_returns(doc, N, seed=5)
    # one day: E = lam * mu * beta, Var = vol^2 + lam (mu^2 + sd^2) beta^2
    beta = np.array([1.0, 0.5, 0.0])
    mean = lam * mu * beta
    var = np.array(VOL) ** 2 + lam * (mu**2 + sd_j**2) * beta**2
    assert np.all(np.abs(r.mean(axis=0) - mean) < 5 * np.sqrt(var / N)), r.mean(axis=0)
    assert np.all(np.abs(r.var(axis=0) / var - 1.0) < 0.05)


def test_stressed_regime_is_more_volatile_and_more_correlated() -> None:
    """Against the default conditioned on a calm market (2023-10-01, after a quiet summer);
    the stressed regime is the fixed May-Nov 2022 calibration and ignores any history."""
    import datetime as dt

    import pandas as pd
    from price_data import price_file

    closes = [
        pd.read_csv(price_file(f"{s}-USD.csv"), parse_dates=["date"])
        .set_index("date")["close"]
        .rename(s)
        for s in ("ETH", "BTC")
    ]
    logp = np.log(pd.concat(closes, axis=1, sort=True).loc["2021-01-01":"2023-09-30"].to_numpy())
    base = load_scenario("default")
    normal = base.conditioned(
        np.diff(logp, axis=0), ["ETH", "BTC"], dt.date(2023, 10, 1), dt.date(2023, 9, 30)
    )
    stressed = base.with_regime("stressed")
    assert (
        stressed.conditioned(np.diff(logp, axis=0), ["ETH"], dt.date(2023, 10, 1), None) is stressed
    )
    a = np.log(normal.paths(["WETH", "WBTC"], 5000, seed=1).multipliers[:, -1, :])
    b = np.log(stressed.paths(["WETH", "WBTC"], 5000, seed=1).multipliers[:, -1, :])
    assert b[:, 0].std() > 1.3 * a[:, 0].std()
    assert np.corrcoef(b, rowvar=False)[0, 1] > np.corrcoef(a, rowvar=False)[0, 1]


@pytest.mark.parametrize("dof", [2.5, 3.36, 30.0])
def test_student_t_variance_is_finite_and_right_for_any_dof(dof: float) -> None:
    """Theoretical check of the scaling constant: Var(sqrt((dof-2)/W) * N) = 1 for
    W ~ chi2(dof), computed exactly by integration."""
    e_inv_w = 1.0 / (dof - 2.0)  # E[1 / chi2(dof)]
    assert (dof - 2.0) * e_inv_w == pytest.approx(1.0)
    num = stats.chi2(dof).expect(lambda w: 1.0 / w)
    assert num == pytest.approx(e_inv_w, rel=1e-6)
