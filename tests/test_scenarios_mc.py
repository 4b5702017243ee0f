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


def test_hourly_steps_aggregate_to_the_daily_volatility() -> None:
    """24 hourly Student-t steps: the day's log-return has the daily variance (independent
    steps), and is closer to normal than one step (the CLT)."""
    r = _log_returns(_mc("student-t", dof=4.0, n_steps=24, step=3600.0), 20_000, seed=4)
    sd = r.std(axis=0, ddof=1)
    # kurtosis of a sum of 24 t4 steps is finite in practice; allow 4%
    assert np.all(np.abs(sd / np.array(VOL) - 1.0) < 0.04), sd


def test_the_default_scenario_reproduces_its_calibration() -> None:
    sc = load_scenario("default")
    spec = sc.spec
    assert isinstance(spec, MonteCarloSpec)
    reg = spec.active
    pp = sc.paths(list(spec.factors), 20_000, seed=9)
    r = np.log(pp.multipliers[:, -1, :])
    sd = r.std(axis=0, ddof=1)
    assert np.all(np.abs(sd / np.array(reg.vol_daily) - 1.0) < 0.05), sd
    c = np.corrcoef(r, rowvar=False)
    assert np.abs(c - np.array(reg.corr)).max() < 0.04


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
    normal = load_scenario("default")
    stressed = normal.with_regime("stressed")
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
