"""The conditional default: GARCH volatility filtered from a supplied history, a logged
fallback to the long-run level, fixed stressed regime, and intraday wicks."""

from __future__ import annotations

import datetime as dt
import logging
import math
import tomllib
from pathlib import Path

import numpy as np
import pytest

from simulator.errors import ScenarioError
from simulator.scenarios import generate as gen
from simulator.scenarios import load_scenario
from simulator.scenarios.model import MonteCarloSpec, garch_filter

REPO = Path(__file__).resolve().parents[1]


def _spec(sc: object) -> MonteCarloSpec:
    spec = sc.spec  # type: ignore[attr-defined]
    assert isinstance(spec, MonteCarloSpec)
    return spec


def test_conditioned_volatility_is_the_garch_filter_of_the_history() -> None:
    sc = load_scenario("default")
    spec = _spec(sc)
    cond = spec.conditional
    assert cond is not None and cond.regime == "normal"
    rng = np.random.default_rng(0)
    calm = rng.normal(0, 0.01, (400, 2))
    wild = calm.copy()
    wild[-5:] *= 12.0  # a crash in the last days before as_of
    as_of, last = dt.date(2025, 3, 1), dt.date(2025, 2, 28)
    a = sc.conditioned(calm, ["ETH", "BTC"], as_of, last)
    b = sc.conditioned(wild, ["ETH", "BTC"], as_of, last)
    i = spec.factors.index("ETH")
    lr = cond.long_run_vol()[i]
    want = math.sqrt(
        garch_filter(calm[:, 0], cond.omega[i], cond.alpha[i], cond.beta[i], lr**2)[-1]
    )
    assert _spec(a).active.vol_daily[i] == pytest.approx(want, rel=1e-12)
    assert _spec(b).active.vol_daily[i] > 2.5 * _spec(a).active.vol_daily[i]
    # factors without history keep the long-run level; the note says what was used
    link = spec.factors.index("LINK")
    assert _spec(a).active.vol_daily[link] == spec.active.vol_daily[link]
    assert "through 2025-02-28" in (_spec(a).conditional.conditioned_on or "")  # type: ignore[union-attr]
    # paths follow: the one-day sd scales with the conditional vol
    ra = np.log(a.paths(["WETH"], 20_000, seed=2).multipliers[:, -1, 0])
    rb = np.log(b.paths(["WETH"], 20_000, seed=2).multipliers[:, -1, 0])
    ratio = _spec(b).active.vol_daily[i] / _spec(a).active.vol_daily[i]
    assert np.subtract(*np.percentile(rb, [75, 25])) / np.subtract(
        *np.percentile(ra, [75, 25])
    ) == pytest.approx(ratio, rel=1e-9)


def test_a_stale_or_missing_history_falls_back_to_the_long_run_level_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sc = load_scenario("default")
    r = np.zeros((300, 1))
    with caplog.at_level(logging.WARNING, logger="simulator.scenarios.model"):
        out = sc.conditioned(r, ["ETH"], dt.date(2025, 3, 1), dt.date(2025, 2, 20))
    assert "no price history within 3 days before 2025-03-01" in caplog.text
    assert _spec(out).active.vol_daily == _spec(sc).active.vol_daily
    with pytest.raises(ScenarioError, match="no factor 'DOGE'"):
        sc.conditioned(r, ["DOGE"], dt.date(2025, 3, 1), dt.date(2025, 2, 28))


def test_unconditioned_paths_log_once_and_stressed_is_a_fixed_calibration(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from simulator.scenarios import model

    model._WARNED.discard("default")
    sc = load_scenario("default")
    with caplog.at_level(logging.WARNING, logger="simulator.scenarios.model"):
        sc.paths(["WETH"], 10, seed=1)
        sc.paths(["WETH"], 10, seed=2)
    assert caplog.text.count("no price history was given") == 1
    caplog.clear()
    stressed = sc.with_regime("stressed")
    with caplog.at_level(logging.WARNING, logger="simulator.scenarios.model"):
        stressed.paths(["WETH"], 10, seed=1)
    assert caplog.text == ""
    assert (
        stressed.conditioned(np.zeros((300, 1)), ["ETH"], dt.date(2025, 1, 2), dt.date(2025, 1, 1))
        is stressed
    )


def test_intraday_scale_keeps_daily_returns_and_widens_the_wicks() -> None:
    rng = np.random.default_rng(3)
    levels = np.cumsum(rng.normal(0, 0.01, (500, 49, 2)), axis=1)
    levels[:, 0, :] = 0.0
    scaled = levels.copy()
    gen.scale_intraday(scaled, 1 / 24, 1.5)
    for k in (0, 24, 48):  # each day's open and close stay
        np.testing.assert_array_equal(scaled[:, k], levels[:, k])
    line = (
        levels[:, 0:1] + (levels[:, 24:25] - levels[:, 0:1]) * (np.arange(25) / 24)[None, :, None]
    )
    np.testing.assert_allclose(scaled[:, :25] - line, 1.5 * (levels[:, :25] - line), atol=1e-14)
    # the default's wick scale is what its file says, and lows are deeper than without it
    sc = load_scenario("default")
    assert _spec(sc).conditional.intraday_scale > 1.1  # type: ignore[union-attr]


def test_conditional_table_is_validated(tmp_path: Path) -> None:
    with (REPO / "scenarios" / "default.toml").open("rb") as fh:
        text = (REPO / "scenarios" / "default.toml").read_text()
        doc = tomllib.load(fh)
    alpha = doc["conditional"]["alpha"]
    bad = text.replace(
        "alpha = [" + ", ".join(f"{a:.4f}" for a in alpha) + "]",
        "alpha = [0.5, " + ", ".join(f"{a:.4f}" for a in alpha[1:]) + "]",
    )
    assert bad != text
    path = tmp_path / "bad.toml"
    path.write_text(bad)
    with pytest.raises(ScenarioError, match=r"conditional.alpha\[0\].*alpha \+ beta = 1.41"):
        load_scenario(path)
