"""shortfall sweep: parameter grammar, point rules, common random numbers, recommendation,
executors, the sweep directory and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keeper.cli import main
from simulator import risk
from simulator.cascade import EngineConfig
from simulator.errors import InputError, ResultsError
from simulator.results import load_results
from simulator.simulation import FixedPaths
from simulator.snapshot import Book, MarketSnapshot
from simulator.sweep import (
    OracleOverride,
    SweepResult,
    _tail_rows,
    apply_point,
    base_value,
    load_sweep,
    parse_param,
    recommend,
    run_sweep,
    save_sweep,
)
from simulator.synthetic import synthetic_paths, synthetic_snapshot
from tests.sweep_data import META, monotone_book, monotone_paths

BOOK_FIELDS = [
    "accounts", "assets", "symbols", "collateral", "debt", "collateral_enabled", "price_usd",
    "ltv", "liquidation_threshold", "liquidation_bonus", "protocol_fee", "decimals",
    "dex_reserve_asset", "dex_reserve_quote", "dex_fee",
]  # fmt: skip


@pytest.fixture(scope="module")
def snap() -> MarketSnapshot:
    return synthetic_snapshot(1500, seed=1)


@pytest.fixture(scope="module")
def paths(snap: MarketSnapshot):  # type: ignore[no-untyped-def]
    return synthetic_paths(snap.book().symbols, 300, 24, step_seconds=3600.0, seed=3, daily_vol=0.1)


# ----------------------------------------------------------------------------- grammar


def test_param_grammar(snap: MarketSnapshot) -> None:
    p = parse_param("WETH.liquidation_threshold=0.78:0.86:0.01", snap)
    assert p.name == "WETH.liquidation_threshold" and p.kind == "reserve"
    assert p.values == (0.78, 0.79, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.86)
    assert p.direction == "largest"
    assert parse_param("weth.liquidation_bonus=0.04,0.05", snap).values == (0.04, 0.05)
    assert parse_param("weth.liquidation_bonus=0.04,0.05", snap).direction == "smallest"
    assert parse_param("USDC.supply_cap=1e6:3e6:1e6", snap).values == (1e6, 2e6, 3e6)
    assert parse_param("oracle.heartbeat=600,3600", snap).name == "oracle.heartbeat_s"
    assert parse_param("gas_units=0,1e6", snap).kind == "gas"
    assert parse_param("WBTC.liquidity_scale=0.5,1,2", snap).kind == "liquidity"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("WETH.liquidation_threshold", "NAME=VALUES"),
        ("WETHH.liquidation_threshold=0.8", "did you mean WETH"),
        ("WETH.liquidation_treshold=0.8", "unknown reserve parameter"),
        ("WETH.liquidation_threshold=0.9:0.8:0.01", "below start"),
        ("WETH.liquidation_threshold=0.8:0.9:0", "step"),
        ("WETH.liquidation_threshold=0.8,abc", "not a number"),
        ("WETH.liquidation_threshold=0.8,0.8", "twice"),
        ("WETH.liquidation_threshold=0,0.8", "(0, 1]"),
        ("WETH.supply_cap=-1", "cap > 0"),
        ("emode.3.liquidation_threshold=0.9", "no e-mode category 3"),
        ("emode.x.liquidation_threshold=0.9", "not an integer"),
        ("oracle.speed=1", "unknown parameter"),
    ],
)
def test_param_errors_name_the_problem(snap: MarketSnapshot, spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace("[", r"\[")):
        parse_param(spec, snap)


# ---------------------------------------------------------------------- point rules


def test_lt_change_keeps_positions_and_never_raises_hf(snap: MarketSnapshot) -> None:
    base = snap.book()
    p = parse_param("WETH.liquidation_threshold=0.70,0.80", snap)
    hf0 = base.health_factor()
    hfs = []
    for v in p.values:
        point, _, _, notes = apply_point(
            snap, FixedPaths.__new__(FixedPaths), EngineConfig(), {p: v}
        )
        b = point.book()
        np.testing.assert_array_equal(b.collateral, base.collateral)
        np.testing.assert_array_equal(b.debt, base.debt)
        assert b.liquidation_threshold[0] == v
        assert b.ltv[0] == min(0.80, v)  # LTV lowered to a new LT below it, and noted
        assert bool(notes) == (v < 0.80)
        hfs.append(b.health_factor())
        # the same book a validated snapshot with these tables builds
        ref = MarketSnapshot.from_frames(
            point.meta, point.reserves, point.positions, point.accounts, point.emode
        ).book()
        for f in [*BOOK_FIELDS, "class_lt", "class_ltv", "class_bonus", "account_class"]:
            np.testing.assert_array_equal(getattr(b, f), getattr(ref, f))
    assert np.all(hfs[0] <= hfs[1]) and np.all(hfs[1] <= hf0)  # lower LT, lower HF
    assert (hfs[0] < hf0).sum() > 100


def test_refused_configuration(snap: MarketSnapshot) -> None:
    p = parse_param("WETH.liquidation_threshold=0.97", snap)  # 0.97 x 1.05 > 1
    with pytest.raises(InputError, match="PoolConfigurator"):
        apply_point(snap, None, EngineConfig(), {p: 0.97})  # type: ignore[arg-type]


def test_cap_rescales_holders_and_keeps_each_hf(snap: MarketSnapshot) -> None:
    base = snap.book()
    j = base.symbols.index("WETH")
    total = base.collateral[:, j].sum()
    p = parse_param(f"WETH.supply_cap={total / 2}", snap)
    assert base_value(p, snap, None, EngineConfig()) == pytest.approx(total)  # type: ignore[arg-type]
    point, _, _, _ = apply_point(snap, None, EngineConfig(), {p: total / 2})  # type: ignore[arg-type]
    b = point.book()
    assert b.collateral[:, j].sum() == pytest.approx(total / 2, rel=1e-12)
    np.testing.assert_allclose(b.health_factor(), base.health_factor(), rtol=1e-12)
    holders = base.collateral[:, j] > 0
    np.testing.assert_allclose(b.debt[holders], base.debt[holders] / 2, rtol=1e-12)
    np.testing.assert_array_equal(b.debt[~holders], base.debt[~holders])
    q = parse_param("USDC.borrow_cap=1e6", snap)
    k = base.symbols.index("USDC")
    b2 = apply_point(snap, None, EngineConfig(), {q: 1e6})[0].book()  # type: ignore[arg-type]
    assert b2.debt[:, k].sum() == pytest.approx(1e6, rel=1e-12)
    np.testing.assert_allclose(b2.health_factor(), base.health_factor(), rtol=1e-12)


def test_liquidity_oracle_gas_and_emode_points(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    base = snap.book()
    src = FixedPaths(paths)
    liq = parse_param("WBTC.liquidity_scale=2", snap)
    dev = parse_param("oracle.deviation=0.02", snap)
    gas = parse_param("gas_units=1e6", snap)
    point, source, config, _ = apply_point(
        snap, src, EngineConfig(), {liq: 2.0, dev: 0.02, gas: 1e6}
    )
    j = base.symbols.index("WBTC")
    assert point.book().dex_reserve_asset[j] == 2 * base.dex_reserve_asset[j]
    assert point.book().dex_reserve_quote[j] == 2 * base.dex_reserve_quote[j]
    assert isinstance(source, OracleOverride)
    drawn = source.paths(base.symbols, 300, 1, start=5, stop=9)
    assert drawn.oracle.deviation == 0.02 and drawn.oracle.heartbeat_s == paths.oracle.heartbeat_s
    np.testing.assert_array_equal(drawn.multipliers, paths.multipliers[5:9])
    assert config.gas_units == 1e6
    # each asset keeps its own feed: the base is the loosest (LINK and AAVE: 1%)
    assert paths.oracle.deviation is None
    assert base_value(dev, snap, src, EngineConfig()) == 0.01
    # an e-mode category's LT for its accounts
    classes = np.zeros(base.n_accounts, dtype=np.int64)
    classes[::3] = 1
    lt = np.vstack([base.class_lt[0], np.minimum(base.class_lt[0] + 0.1, 0.93)])
    book = Book(
        **{f: getattr(base, f) for f in BOOK_FIELDS},
        account_class=classes,
        class_category=np.array([0, 1]),
        class_ltv=np.vstack([base.class_ltv[0]] * 2),
        class_lt=lt,
        class_bonus=np.vstack([base.class_bonus[0], np.full(base.n_assets, 0.01)]),
        class_price_usd=np.vstack([base.price_usd] * 2),
    )
    esnap = MarketSnapshot.from_book(META, book)
    em = parse_param("emode.1.liquidation_threshold=0.9", esnap)
    assert base_value(em, esnap, src, EngineConfig()) == pytest.approx(lt[1, 0])
    eb = apply_point(esnap, src, EngineConfig(), {em: 0.9})[0].book()
    assert np.all(eb.class_lt[1] == 0.9) and np.all(eb.class_lt[0] == base.class_lt[0])


# ------------------------------------------------------------------- the estimators


def test_tail_rows_equal_risk_var_and_es() -> None:
    rng = np.random.default_rng(5)
    x = np.where(rng.random((40, 997)) < 0.9, 0.0, rng.exponential(1e5, (40, 997)))
    x[:, :5] = 7.0  # ties
    for alpha in (0.9, 0.975, 0.99):
        v, e = _tail_rows(x, alpha)
        for r in range(0, 40, 7):
            assert v[r] == risk.var(x[r], alpha)
            assert e[r] == pytest.approx(risk.es(x[r], alpha), rel=1e-12, abs=1e-9)


# ---------------------------------------------------------------------- the sweep


@pytest.fixture(scope="module")
def lt_sweep(snap: MarketSnapshot, paths) -> SweepResult:  # type: ignore[no-untyped-def]
    return run_sweep(
        snap, paths, ["WETH.liquidation_threshold=0.77:0.85:0.02"], seed=1, keep_results=True
    )


def test_points_share_paths_and_match_simulate(lt_sweep: SweepResult) -> None:
    t = lt_sweep.table
    assert list(t["WETH.liquidation_threshold"]) == [0.77, 0.79, 0.81, 0.83, 0.85]
    assert list(t["is_base"]) == [False, False, False, True, False]  # 0.83 is the snapshot's
    assert lt_sweep.results is not None
    for row in t.itertuples():
        r = lt_sweep.results[row.point]
        assert row.es_usd == r.es_usd and row.var_usd == r.var_usd
        assert row.lar_usd == risk.var(r.liquidated_usd, 0.975)
        assert row.p_shortfall == np.mean(r.shortfall_usd > 0)
        assert row.es_low_usd <= row.es_usd <= row.es_high_usd
        assert row.lar_low_usd <= row.lar_usd <= row.lar_high_usd
    base = t[t["is_base"]].iloc[0]
    assert base.es_diff_usd == 0 and base.es_diff_low_usd == 0 == base.es_diff_high_usd
    assert t["liquidatable_now"].is_monotonic_decreasing  # a lower LT puts more under water
    assert t["liquidatable_now"].iloc[0] > 0 == base.liquidatable_now
    assert (t["newly_liquidatable"] == t["liquidatable_now"]).all()  # none at the base


def test_paired_interval_is_narrower_than_unpaired(lt_sweep: SweepResult) -> None:
    t = lt_sweep.table[~lt_sweep.table["is_base"]]
    paired = t["es_diff_high_usd"] - t["es_diff_low_usd"]
    unpaired = t["es_diff_unpaired_high_usd"] - t["es_diff_unpaired_low_usd"]
    assert (paired > 0).all()
    assert (paired < 0.5 * unpaired).all(), (paired, unpaired)


def test_es_monotone_in_lt_on_a_book_built_for_it() -> None:
    snap = monotone_book()
    r = run_sweep(
        snap,
        monotone_paths(),
        ["WETH.liquidation_threshold=0.70:0.90:0.04"],
        seed=1,
        config=EngineConfig(gas_units=0.0),
        keep_results=True,
    )
    t = r.table.sort_values("WETH.liquidation_threshold")
    assert r.results is not None
    shortfalls = np.array([r.results[p].shortfall_usd for p in t["point"]])
    assert (np.diff(shortfalls, axis=0) >= -1e-9).all()  # path by path
    es = t["es_usd"].to_numpy()
    assert (np.diff(es) >= 0).all() and es[-1] > es[0] > -1.0
    assert es[-1] > 0
    assert (np.diff(t["liquidatable_now"].to_numpy()) <= 0).all()


def test_recommendation_brackets_a_target_between_grid_points() -> None:
    snap, pp = monotone_book(), monotone_paths()
    spec = ["WETH.liquidation_threshold=0.70:0.90:0.04"]
    cfg = EngineConfig(gas_units=0.0)
    first = run_sweep(snap, pp, spec, seed=1, config=cfg).table
    es = first.sort_values("WETH.liquidation_threshold")["es_usd"].to_numpy()
    lts = np.sort(first["WETH.liquidation_threshold"].to_numpy())
    k = int(np.flatnonzero(np.diff(es) > 0)[-1])  # a step where ES rises
    target = 0.5 * (es[k] + es[k + 1])
    rec = run_sweep(snap, pp, spec, seed=1, config=cfg, target_es_usd=target).summary[
        "recommendations"
    ][0]
    assert rec["status"] == "inside"
    assert rec["recommended"] == lts[k] and rec["first_failing"] == lts[k + 1]
    assert lts[k] <= rec["boundary"] <= lts[k + 1]
    lo, hi = rec["boundary_ci"]
    assert lts[0] <= lo <= hi <= lts[-1]
    assert f"{lts[k]:g}" in rec["text"]
    # the same budget as a share of total debt
    total = float(snap.book().debt_usd().sum())
    pct = run_sweep(snap, pp, spec, seed=1, config=cfg, target_es_pct=100 * target / total)
    assert pct.summary["recommendations"][0]["recommended"] == lts[k]


def test_recommend_says_when_nothing_or_everything_meets_the_target() -> None:
    values = [0.05, 0.04, 0.06]  # bonuses: the smallest is the aggressive end
    es = [200.0, 300.0, 100.0]
    boot = np.array(es)[:, None] + np.linspace(-10, 10, 50)[None, :]
    none = recommend(values, es, boot, 50.0, "smallest")
    assert none["status"] == "none" and none["recommended"] is None
    assert "no value in the range meets" in none["text"]
    every = recommend(values, es, boot, 1000.0, "smallest")
    assert every["status"] == "all" and every["recommended"] == 0.04
    mid = recommend(values, es, boot, 250.0, "smallest")
    assert (mid["recommended"], mid["first_failing"]) == (0.05, 0.04)
    assert mid["boundary"] == pytest.approx(0.045)
    assert mid["boot_share_none"] == 0.0


def test_local_and_dask_give_identical_sweeps(
    snap: MarketSnapshot,
    paths,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    from distributed import Client, LocalCluster

    few = FixedPaths(paths).paths(snap.book().symbols, 80, 1, start=0, stop=80)
    spec = ["WETH.liquidation_threshold=0.79,0.83", "oracle.deviation=0.005,0.02"]
    local = run_sweep(snap, few, spec, seed=2, keep_results=True)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        remote = run_sweep(
            snap, few, spec, seed=2, chunk_paths=30, executor=client, keep_results=True
        )
    pd.testing.assert_frame_equal(local.table, remote.table, check_exact=True)
    assert "ran in this process" not in caplog.text  # every chunk ran on the cluster
    assert local.results is not None and remote.results is not None
    for pid, res in local.results.items():
        np.testing.assert_array_equal(res.shortfall_usd, remote.results[pid].shortfall_usd)
        np.testing.assert_array_equal(
            res.account_contributions, remote.results[pid].account_contributions
        )
    # the base keeps each asset's own feed, which no grid value is: it runs as its own point
    assert len(local.table) == 5 and local.table["point"].iloc[0] == "base"


def test_base_outside_the_grid_runs_as_its_own_point(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    few = FixedPaths(paths).paths(snap.book().symbols, 50, 1, start=0, stop=50)
    r = run_sweep(snap, few, ["WETH.liquidation_bonus=0.04,0.06"], seed=1)
    assert list(r.table["point"]) == ["base", "000", "001"]
    assert r.summary["base_point"] == "base"
    assert r.summary["params"][0]["base"] == 0.05


def test_sweep_directory(snap: MarketSnapshot, paths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    few = FixedPaths(paths).paths(snap.book().symbols, 60, 1, start=0, stop=60)
    out = tmp_path / "sw"
    r = run_sweep(snap, few, ["WETH.liquidation_threshold=0.81,0.83"], seed=1, out=out)
    assert r.results is None
    assert sorted(p.name for p in out.iterdir()) == ["points", "sweep.json", "sweep.parquet"]
    summary, table = load_sweep(out)
    pd.testing.assert_frame_equal(table, r.table)
    assert summary["kind"] == "sweep" and summary["base_point"] == "001"
    for row in table.to_dict(orient="records"):
        res = load_results(out / row["results_dir"])
        assert res.summary["es_usd"] == row["es_usd"]
        assert res.summary["sweep_point"] == row["point"]
        lt = row["WETH.liquidation_threshold"]
        assert res.summary["sweep_values"] == {"WETH.liquidation_threshold": lt}
    # a refused point fails before anything is written; a foreign directory is refused
    with pytest.raises(InputError):
        run_sweep(snap, few, ["WETH.liquidation_threshold=0.83,0.97"], out=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ResultsError, match=r"notes\.txt"):
        run_sweep(snap, few, ["WETH.liquidation_threshold=0.83"], out=tmp_path / "other")
    kept = run_sweep(snap, few, ["WETH.liquidation_threshold=0.81,0.83"], seed=1, keep_results=True)
    save_sweep(kept, tmp_path / "saved")
    assert load_sweep(tmp_path / "saved")[1]["es_usd"].tolist() == table["es_usd"].tolist()
    with pytest.raises(ResultsError, match="not a sweep"):
        (tmp_path / "x").mkdir()
        (tmp_path / "x" / "sweep.json").write_text(json.dumps({"kind": "other"}))
        load_sweep(tmp_path / "x")


def test_cli_sweep(
    snap: MarketSnapshot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap.save(tmp_path / "snap")
    argv = ["sweep", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    argv += ["--paths", "40", "--param", "WETH.liquidation_threshold=0.81,0.83"]
    assert main([*argv, "--target-es", "1e9", "--out", str(tmp_path / "s")]) == 0
    text = capsys.readouterr().out
    assert "ES - base" in text and "every value in the range meets the target" in text
    assert "$-" not in text
    from keeper.cli.sweep import _usd

    assert (_usd(-29.4), _usd(1234.5)) == ("-$29", "$1,234")
    summary, table = load_sweep(tmp_path / "s")
    assert "shortfall sweep" in summary["command"] and summary["snapshot_sha256"]
    assert len(table) == 2
    assert main([*argv, "--json", "--out", str(tmp_path / "s2")]) == 0
    assert json.loads(capsys.readouterr().out)["points"] == 2
    # the engine knobs simulate has: used, recorded, and in the command
    knobs = ["--arbitrage-half-life", "600", "--gas-units", "1e6"]
    assert main([*argv, *knobs, "--out", str(tmp_path / "s6")]) == 0
    tuned, _ = load_sweep(tmp_path / "s6")
    assert tuned["engine"]["arbitrage_half_life_s"] == 600 and tuned["engine"]["gas_units"] == 1e6
    assert "--arbitrage-half-life 600" in tuned["command"]
    assert summary["engine"]["arbitrage_half_life_s"] == 60
    bad = ["sweep", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    assert main([*bad, "--param", "WETHX.ltv=0.5", "--out", str(tmp_path / "s3")]) == 1
    assert "did you mean WETH" in capsys.readouterr().err
    assert (
        main([*bad, "--param", "WETH.ltv=0.5", "--paths", "1", "--out", str(tmp_path / "s4")]) == 1
    )
    with pytest.raises(SystemExit):
        main([*argv, "--target-es", "1", "--target-es-pct", "1", "--out", str(tmp_path / "s5")])


def test_weighted_paths_use_the_weighted_estimators(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    few = FixedPaths(paths).paths(snap.book().symbols, 60, 1, start=0, stop=60)
    w = np.random.default_rng(3).uniform(0.2, 2.0, 60)
    weighted = dataclasses.replace(few, weights=w)
    r = run_sweep(
        snap, weighted, ["WETH.liquidation_threshold=0.79,0.83"], seed=1, keep_results=True
    )
    assert r.results is not None
    for row in r.table.to_dict(orient="records"):
        res = r.results[row["point"]]
        assert row["es_usd"] == risk.es(res.shortfall_usd, 0.975, w)
        assert row["lar_usd"] == risk.var(res.liquidated_usd, 0.975, w)
        assert row["p_shortfall"] == pytest.approx(np.average(res.shortfall_usd > 0, weights=w))
        assert row["es_low_usd"] <= row["es_high_usd"]
    base = r.table[r.table["is_base"]].iloc[0]
    assert base["es_diff_low_usd"] == 0.0 == base["es_diff_high_usd"]


def test_ltv_sweep_changes_no_shortfall_but_counts_accounts_over_it(
    snap: MarketSnapshot,
    paths,  # type: ignore[no-untyped-def]
) -> None:
    few = FixedPaths(paths).paths(snap.book().symbols, 40, 1, start=0, stop=40)
    t = run_sweep(snap, few, ["WETH.ltv=0.5,0.8"], seed=1).table
    assert t["es_usd"].nunique() == 1 and (t["es_diff_usd"] == 0).all()
    assert t["accounts_over_ltv"].iloc[0] > t["accounts_over_ltv"].iloc[1]
    assert (t["liquidatable_now"] == 0).all()
    with pytest.raises(InputError, match="not both"):
        run_sweep(snap, few, ["WETH.ltv=0.5"], target_es_usd=1.0, target_es_pct=1.0)
