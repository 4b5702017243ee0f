"""shortfall backtest: no look-ahead, positions, the lending loss, scoring, the CLI, the report."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from price_data import price_file

from keeper.cli import main as cli_main
from simulator import backtest as bt
from simulator.cascade import rules
from simulator.errors import InputError
from simulator.scenarios import load_scenario


@pytest.fixture(scope="module")
def prices() -> bt.PriceHistory:
    return bt.read_prices(
        [price_file("ETH-USD.csv"), price_file("BTC-USD.csv"), price_file("USDC-USD.csv")]
    )


def _historical_toml(tmp: Path, csv: Path, method: str) -> Path:
    path = tmp / f"hist-{method}.toml"
    path.write_text(
        "\n".join(
            [
                'kind = "historical"',
                f'method = "{method}"',
                f'csv = "{csv.as_posix()}"',
                'columns = ["ETH", "BTC"]',
                "as_of = 2022-01-01",
                "window_days = 730",
                "n_steps = 24",
                "step_seconds = 3600",
            ]
        )
        + "\n"
    )
    return path


@pytest.fixture(scope="module")
def wide_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frame = pd.concat(
        {
            s: pd.read_csv(price_file(f"{s}-USD.csv"), parse_dates=["date"]).set_index("date")[
                "close"
            ]
            for s in ("ETH", "BTC")
        },
        axis=1,
        sort=True,
    ).dropna()
    frame.index.name = "date"
    path = tmp_path_factory.mktemp("wide") / "prices.csv"
    frame.loc["2018-01-01":"2023-06-30"].to_csv(path)
    return path


# -- no look-ahead ------------------------------------------------------------------------


def _run(
    prices: bt.PriceHistory, scenario: object, position: str, **kw: object
) -> bt.BacktestResult:
    args = dict(alphas=(0.975, 0.99), n_paths=256, seed=3, refit_days=7, n_sim=50)
    args.update(kw)
    return bt.run_backtest(
        prices, scenario, bt.parse_position(position),  # type: ignore[arg-type]
        dt.date(2022, 5, 1), dt.date(2022, 6, 20), **args,  # type: ignore[arg-type]
    )  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "position", "calibration"),
    [
        ("default", "ETH=0.5,BTC=0.5", "rolling"),
        ("default", "lending:ETH/USDC,hf=1.05,lt=0.825,bonus=0.05", "rolling"),
        ("default:stressed", "ETH", "rolling"),
        ("bootstrap", "ETH=0.5,BTC=0.5", "rolling"),
        ("filtered", "ETH", "rolling"),
    ],
)
def test_forecasts_up_to_a_date_do_not_change_when_later_prices_do(
    prices: bt.PriceHistory, tmp_path: Path, wide_csv: Path, scenario: str, position: str,
    calibration: str,
) -> None:  # fmt: skip
    sc = (
        load_scenario(_historical_toml(tmp_path, wide_csv, scenario))
        if scenario in ("bootstrap", "filtered")
        else load_scenario(scenario)
    )
    cut = dt.date(2022, 6, 1)
    base = _run(prices, sc, position, calibration=calibration)
    moved = _run(prices.perturbed_after(cut, 0.6, ["ETH"]), sc, position, calibration=calibration)
    days = base.dates.astype("datetime64[D]")
    upto = days <= np.datetime64(cut + dt.timedelta(days=1))  # 06-02 uses closes to 06-01
    assert upto.sum() == 33 and (~upto).sum() == 18
    for model, levels in base.forecasts.items():
        for a, (v, e, p) in levels.items():
            v2, e2, p2 = moved.forecasts[model][a]
            np.testing.assert_array_equal(v[upto], v2[upto], err_msg=f"{model} {a}")
            np.testing.assert_array_equal(e[upto], e2[upto], err_msg=f"{model} {a}")
            np.testing.assert_array_equal(p[upto], p2[upto], err_msg=f"{model} {a}")
            # the perturbation is seen from the next day on: the check can fail
            assert not np.array_equal(e[~upto], e2[~upto]), f"{model} {a}"
    before = days <= np.datetime64(cut)
    np.testing.assert_array_equal(base.realised[before], moved.realised[before])
    assert base.realised[before.sum()] != moved.realised[before.sum()]  # 06-02 fell 40%


def test_same_seed_same_numbers_and_seed_matters(prices: bt.PriceHistory) -> None:
    sc = load_scenario("default")
    a = _run(prices, sc, "ETH", baselines=False)
    b = _run(prices, sc, "ETH", baselines=False)
    c = _run(prices, sc, "ETH", baselines=False, seed=4)
    np.testing.assert_array_equal(a.forecasts["model"][0.99][1], b.forecasts["model"][0.99][1])
    assert not np.array_equal(a.forecasts["model"][0.99][1], c.forecasts["model"][0.99][1])
    assert a.scores == b.scores


# -- positions and their losses -------------------------------------------------------------


def test_parse_positions() -> None:
    assert bt.parse_position("ETH").weights == (1.0,)
    book = bt.parse_position("ETH=0.5, BTC=0.5")
    assert book.symbols == ("ETH", "BTC") and book.weights == (0.5, 0.5)
    loan = bt.parse_position("lending:ETH/USDC,hf=1.2,lt=0.8,bonus=0.05,debt=2e6")
    assert (loan.collateral, loan.debt, loan.symbols) == ("ETH", "USDC", ("ETH", "USDC"))
    assert loan.collateral_usd == pytest.approx(1.2 * 2e6 / 0.8)
    assert bt.parse_position("lending:ETH/USD,hf=1.1").symbols == ("ETH",)
    for text, msg in [
        ("", "empty"),
        ("ETH=x", "weight 'x' of ETH is not a number"),
        ("ETH,ETH", "ETH appears twice"),
        ("ETH=0", "all weights are zero"),
        ("lending:ETH/USDC,hf=1.1,cf=0.5", "'cf=0.5': expected hf=, lt=, bonus= or debt="),
        ("lending:ETH/USDC,lt=0.95,bonus=0.1", r"lt x \(1 \+ bonus\) < 1"),
        ("lending:ETH/USDC,hf=-1", "hf=-1; expected > 0"),
    ]:
        with pytest.raises(InputError, match=msg):
            bt.parse_position(text)


def _aave_one_price(coll_usd: float, debt_usd: float, m: float, lt: float, bonus: float) -> float:
    """Bad debt by repeated Aave V3.3 liquidations at one price (close factor, dust rule)."""
    coll, debt = coll_usd, debt_usd  # tokens: collateral at price m, debt at price 1
    for _ in range(1000):
        hf = coll * m * lt / debt if debt > 0 else math.inf
        if hf >= 1.0 or coll <= 0.0 or debt <= 1e-9:
            break
        repay, seize, _fee, flags = rules.plan_liquidation(
            coll, debt, debt, hf, m, 1.0, bonus, 0.1, 2000.0, 0.95, 0.5, 1000.0
        )
        if flags == rules.FLAG_INVALID:
            break
        coll -= seize
        debt -= repay
        if flags & rules.FLAG_ALL_COLLATERAL:
            return debt  # the deficit: debt no collateral covers
    return 0.0 if coll > 1e-9 else debt


@pytest.mark.parametrize("m", [0.95, 0.9, 0.85, 0.8, 0.78, 0.7, 0.5, 0.2])
def test_lending_loss_is_the_bad_debt_of_aave_liquidations_at_the_worst_price(m: float) -> None:
    pos = bt.parse_position("lending:ETH/USD,hf=1.1,lt=0.825,bonus=0.05,debt=1e6")
    path = np.ones((1, 3, 1))
    path[0, 1, 0] = m  # the wick
    path[0, 2, 0] = 1.0  # and back: the liquidation at the low is what counts
    got = float(pos.path_losses(path)[0])
    want = _aave_one_price(pos.collateral_usd, 1e6, m, 0.825, 0.05)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-6)
    # realised days use the low in the same way
    day = pos.day_losses(np.array([[1.0]]), np.array([[m]]))
    assert float(day[0]) == pytest.approx(want, rel=1e-9, abs=1e-6)


def test_read_prices_errors_name_the_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,close\n2024-01-01,1\n2024-01-02,-3\n")
    with pytest.raises(InputError, match=r"bad.csv: column 'close', row 3: price -3"):
        bt.read_prices([bad])
    bad.write_text("date,close\n2024-01-01,1\n2024-01-01,2\n")
    with pytest.raises(InputError, match=r"bad.csv: row 3: duplicate date"):
        bt.read_prices([bad])
    bad.write_text("when,close\n2024-01-01,1\n")
    with pytest.raises(InputError, match=r"bad.csv: no 'date' column"):
        bt.read_prices([bad])
    bad.write_text("date,close\n2024-01-01,1\nnot-a-date,2\n")
    with pytest.raises(InputError, match=r"bad.csv: column 'date', row 3: 'not-a-date'"):
        bt.read_prices([bad])
    with pytest.raises(InputError, match="row 3: '2020-03-09T01:00:00Z' has a time of day"):
        bt.read_prices([price_file("ETH-USDT-1h_2020-03-09_2020-03-16.csv")])
    with pytest.raises(InputError, match="no such file"):
        bt.read_prices([tmp_path / "none.csv"])
    named = bt.read_prices([f"WETH={price_file('ETH-USD.csv')}"])
    assert named.names == ("WETH",) and np.isfinite(named.low).any()


# -- scoring ----------------------------------------------------------------------------------


def test_traffic_light_matches_the_basel_table() -> None:
    p = np.full(250, 0.01)
    for x, zone in [(0, "green"), (4, "green"), (5, "amber"), (9, "amber"), (10, "red")]:
        hits = np.zeros(250, bool)
        hits[:x] = True
        last, worst, counts, n = bt.traffic_light(hits, p)
        assert (last, worst, n) == (zone, zone, x)
        assert sum(counts.values()) == 1


def test_a_correct_model_passes_and_a_too_narrow_one_fails() -> None:
    t, n = 1500, 2000
    rejected = {1.0: 0, 0.7: 0}
    for k in range(5):
        rng = np.random.default_rng(20 + k)
        sigma = np.exp(rng.normal(0, 0.4, t))
        realised = sigma * rng.standard_t(4, t)
        samples = [s * rng.standard_t(4, n) for s in sigma]
        for scale in rejected:
            smp = [x * scale for x in samples]
            v = np.array([np.quantile(x, 0.975, method="inverted_cdf") for x in smp])
            e = np.array([x[x > q].mean() for x, q in zip(smp, v, strict=True)])
            p = np.array([(x > q).mean() for x, q in zip(smp, v, strict=True)])
            res = bt.score("m", 0.975, realised, v, e, p, smp, n_sim=400, seed=1)
            rejected[scale] += int(res.kupiec_p < 0.05 or res.z2_p < 0.05)
            assert -0.45 < res.z2_critical < -0.2
    assert rejected[1.0] <= 2 and rejected[0.7] == 5, rejected
    rng = np.random.default_rng(2)
    sigma = np.exp(rng.normal(0, 0.4, t))
    realised = sigma * rng.standard_t(4, t)
    # FZ0 prefers the right forecast
    from simulator import risk

    q, es = risk.var_student_t(0, 1, 4, 0.975), risk.es_student_t(0, 1, 4, 0.975)
    good = bt.fz0(realised, q * sigma, es * sigma, 0.975)
    low = bt.fz0(realised, 0.7 * q * sigma, 0.7 * es * sigma, 0.975)
    high = bt.fz0(realised, 1.4 * q * sigma, 1.4 * es * sigma, 0.975)
    assert np.mean(good) < np.mean(high)
    assert np.mean(good) < np.mean(low)


# -- the command and the report -----------------------------------------------------------------


def test_cli_writes_a_results_directory_and_the_report_renders_it(tmp_path: Path) -> None:
    out = tmp_path / "bt"
    argv = [
        "backtest", "--prices", str(price_file("ETH-USD.csv")), str(price_file("USDC-USD.csv")),
        "--scenario", "default", "--position", "lending:ETH/USDC,hf=1.05,lt=0.825,bonus=0.05",
        "--from", "2022-05-01", "--to", "2022-07-31", "--paths", "256", "--n-sim", "50",
        "--out", str(out), "--json",
    ]  # fmt: skip
    assert cli_main(argv) == 0
    summary = json.loads((out / "backtest.json").read_text())
    assert summary["n_forecasts"] == 92 and summary["lows_used"] is True
    tests = {(t["model"], t["alpha"]): t for t in summary["tests"]}
    own = tests[("default", 0.975)]
    # bad debt: most days VaR is an atom at 0 and ES = 0 is scored
    frame = pd.read_parquet(out / "forecasts.parquet")
    mine = frame[(frame["model"] == "default") & (frame["alpha"] == 0.975)]
    assert (mine["es"] == 0.0).any() and own["z2"] is not None
    assert own["expected"] < 0.025 * 92
    assert set(frame["model"]) == {"default", "garch-t", "hs250"}
    report = tmp_path / "r.html"
    assert cli_main(["report", str(out), "--out", str(report)]) == 0
    html = report.read_text()
    assert 'id="backtest"' in html and "data:image/png;base64" in html and "Kupiec p" in html
    # a directory holding something else is refused, never deleted
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    argv[argv.index("--out") + 1] = str(other)
    assert cli_main(argv) == 1
    assert (other / "keep.txt").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2022-13-01"], "--from '2022-13-01': expected a date"),
        (["--step", "1h"], "--step '1h': expected a number of days"),
        (["--horizon", "2d"], "only 1d is supported"),
        (["--alpha", "1.5"], "--alpha 1.5: expected a confidence level"),
        (["--scenario", "black-thursday-2020"], "deterministic stress"),
        (["--position", "SOL"], "no price series 'SOL'"),
    ],
)
def test_cli_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    base = {
        "--prices": str(price_file("ETH-USD.csv")), "--scenario": "default",
        "--position": "ETH", "--from": "2022-05-01", "--to": "2022-05-03",
        "--out": str(tmp_path / "o"),
    }  # fmt: skip
    for k, v in zip(args[::2], args[1::2], strict=True):
        base[k] = v
    argv = ["backtest"] + [x for kv in base.items() for x in kv] + ["--paths", "64"]
    assert cli_main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
