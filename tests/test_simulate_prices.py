"""``shortfall simulate --prices``: the default scenario conditioned on the market before the
snapshot's block date, with no look-ahead, recorded in the results."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from keeper.cli import main
from simulator.backtest import condition_on_prices, read_prices
from simulator.errors import InputError
from simulator.scenarios import load_scenario
from simulator.synthetic import synthetic_snapshot
from tests.price_data import price_file

#: 2022-06-14 00:00 UTC: two days after Celsius paused withdrawals, ETH at its 2022 lows.
CRISIS = int(dt.datetime(2022, 6, 14, tzinfo=dt.UTC).timestamp())
#: 2023-07-15 00:00 UTC: a calm summer.
CALM = int(dt.datetime(2023, 7, 15, tzinfo=dt.UTC).timestamp())

PRICE_ARGS = [
    f"ETH={price_file('ETH-USD.csv')}",
    f"BTC={price_file('BTC-USD.csv')}",
    f"LST={price_file('STETH-ETH.csv')}",
    f"USDC={price_file('USDC-USD.csv')}",
]


def _vols(scenario) -> dict[str, float]:  # type: ignore[no-untyped-def]
    spec = scenario.spec
    return dict(zip(spec.factors, spec.active.vol_daily, strict=True))


def _snapshot_at(tmp_path: Path, stamp: int) -> Path:
    snap = synthetic_snapshot(300, seed=3)
    meta = dict(snap.meta)
    meta["timestamp"] = stamp
    return dataclasses.replace(snap, meta=meta).save(tmp_path / f"snap-{stamp}")


def test_volatility_follows_the_market_before_the_block_date() -> None:
    base = load_scenario("default")
    prices = read_prices(PRICE_ARGS)
    crisis = condition_on_prices(base, prices, dt.date(2022, 6, 14))
    calm = condition_on_prices(base, prices, dt.date(2023, 7, 15))
    long_run = _vols(base)
    assert _vols(crisis)["ETH"] > 1.4 * long_run["ETH"] > 1.4 * _vols(calm)["ETH"]
    assert _vols(calm)["ETH"] < long_run["ETH"]
    # factors without a series keep the long-run level
    for f in ("LINK", "CRV", "AAVE"):
        assert _vols(crisis)[f] == long_run[f]
    cond = crisis.spec.conditional
    assert "ETH" in cond.conditioned_on and "2022-06-13" in cond.conditioned_on


def test_no_look_ahead() -> None:
    base = load_scenario("default")
    prices = read_prices(PRICE_ARGS)
    day = dt.date(2022, 6, 14)
    moved = prices.perturbed_after(day - dt.timedelta(days=1), 3.0)
    a = condition_on_prices(base, prices, day)
    b = condition_on_prices(base, moved, day)
    assert _vols(a) == _vols(b)
    c = condition_on_prices(base, prices.perturbed_after(day - dt.timedelta(days=2), 3.0), day)
    assert _vols(c)["ETH"] != _vols(a)["ETH"]


def test_stale_history_keeps_the_long_run_volatility(caplog: pytest.LogCaptureFixture) -> None:
    base = load_scenario("default")
    with caplog.at_level(logging.WARNING):
        out = condition_on_prices(base, read_prices(PRICE_ARGS), dt.date(2026, 12, 7))
    assert _vols(out) == _vols(base)
    assert "long-run" in out.spec.conditional.conditioned_on
    assert any("no price history within" in r.getMessage() for r in caplog.records)


def test_fixed_calibrations_and_stresses_are_unchanged() -> None:
    prices = read_prices(PRICE_ARGS)
    for name in ("default:stressed", "black-thursday-2020"):
        sc = load_scenario(name)
        assert condition_on_prices(sc, prices, dt.date(2022, 6, 14)) is sc


def test_a_history_that_measures_no_factor_is_an_error(tmp_path: Path) -> None:
    wide = tmp_path / "other.csv"
    wide.write_text("date,FOO\n2022-01-01,1\n2022-01-02,2\n")
    with pytest.raises(InputError, match="none of which measures a factor"):
        condition_on_prices(load_scenario("default"), read_prices([wide]), dt.date(2022, 2, 1))


def test_cli_conditions_and_records_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    snap = _snapshot_at(tmp_path, CRISIS)
    common = ["simulate", "--snapshot", str(snap), "--scenario", "default", "--paths", "400"]
    with caplog.at_level(logging.WARNING):
        assert main([*common, "--out", str(tmp_path / "plain"), "--json"]) == 0
    assert main([*common, "--prices", *PRICE_ARGS, "--out", str(tmp_path / "cond")]) == 0
    plain = json.loads((tmp_path / "plain" / "summary.json").read_text())
    cond = json.loads((tmp_path / "cond" / "summary.json").read_text())
    assert plain["conditioned_on"].startswith("long-run")
    assert "through 2022-06-13" in cond["conditioned_on"]
    assert "--prices" in cond["command"]
    # June 2022 was a volatile market: the conditioned paths move further
    assert cond["es_usd"] >= plain["es_usd"]
    assert cond["liquidated_usd"]["q0.99"] > plain["liquidated_usd"]["q0.99"]


def test_cli_before_any_history_uses_the_long_run_level(tmp_path: Path) -> None:
    snap = _snapshot_at(tmp_path, 0)  # 1970: the histories start later
    argv = ["simulate", "--snapshot", str(snap), "--scenario", "default", "--paths", "10"]
    assert main([*argv, "--prices", *PRICE_ARGS, "--out", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["conditioned_on"].startswith("long-run")
