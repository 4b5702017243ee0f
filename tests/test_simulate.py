"""simulate(): chunking invariance, contributions, timeline, results directory, CLI."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import simulator
from keeper.cli import main
from simulator import risk
from simulator.cascade import EngineConfig
from simulator.errors import InputError, NumericalWarning, ResultsError
from simulator.results import load_results, save_results, summary_dict
from simulator.simulation import FixedPaths, SimulationResult, simulate, simulate_chunk
from simulator.snapshot import MarketSnapshot
from simulator.synthetic import synthetic_paths, synthetic_snapshot


@pytest.fixture(scope="module")
def snap() -> MarketSnapshot:
    return synthetic_snapshot(400, seed=2)


@pytest.fixture(scope="module")
def paths(snap: MarketSnapshot):  # type: ignore[no-untyped-def]
    return synthetic_paths(snap.book().symbols, 240, 12, step_seconds=86400.0, seed=4)


@pytest.fixture(scope="module")
def result(snap: MarketSnapshot, paths) -> SimulationResult:  # type: ignore[no-untyped-def]
    return simulate(snap, paths, seed=1, alpha=0.975, chunk_paths=1000)


def _numbers(r: SimulationResult) -> dict[str, object]:
    d = summary_dict(r)
    d.pop("runtime_s")
    return d


def test_results_do_not_depend_on_chunking_or_executor(
    snap: MarketSnapshot, paths, result: SimulationResult
) -> None:  # type: ignore[no-untyped-def]
    small = simulate(snap, paths, seed=1, chunk_paths=7)
    with ThreadPoolExecutor(2) as pool:
        pooled = simulate(snap, paths, seed=1, chunk_paths=50, executor=pool)
    for other in (small, pooled):
        assert _numbers(other) == _numbers(result)
        np.testing.assert_array_equal(other.shortfall_usd, result.shortfall_usd)
        np.testing.assert_array_equal(other.account_contributions, result.account_contributions)
        np.testing.assert_array_equal(other.asset_contributions, result.asset_contributions)
        np.testing.assert_array_equal(other.worst_move, result.worst_move)


def test_reference_engine_gives_the_same_result(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    few = FixedPaths(paths).paths(snap.book().symbols, 20, 1, start=0, stop=20)
    fast = simulate(snap, few, seed=1)
    ref = simulate(snap, few, seed=1, config=EngineConfig(engine="reference"))
    np.testing.assert_allclose(ref.shortfall_usd, fast.shortfall_usd, rtol=1e-9)
    np.testing.assert_allclose(ref.account_contributions, fast.account_contributions, rtol=1e-9)


def test_headline_numbers_and_contributions(result: SimulationResult) -> None:
    losses = result.shortfall_usd
    assert result.es_usd == risk.es(losses, 0.975)
    assert result.var_usd == risk.var(losses, 0.975)
    assert result.es_usd > 0
    assert result.account_contributions.sum() == pytest.approx(result.es_usd, rel=1e-9)
    assert result.asset_contributions.sum() == pytest.approx(result.es_usd, rel=1e-9)
    assert (result.account_contributions >= 0).all()
    lo, hi = result.es_ci_usd
    assert lo <= result.es_usd <= hi
    alphas = [r.alpha for r in result.risk_table]
    assert alphas == [0.95, 0.975, 0.99]
    es = [r.es_usd for r in result.risk_table]
    assert es == sorted(es)
    for r in result.risk_table:
        assert r.es_usd >= r.var_usd
        assert r.var_low_usd <= r.var_high_usd and r.es_low_usd <= r.es_high_usd
    q = result.liquidated_quantiles
    assert q["q0.5"] <= q["q0.99"] <= q["max"]
    assert result.worst_move.shape == (result.n_paths, len(result.symbols))
    assert (result.worst_move <= 0).all()


def test_timeline_follows_the_selected_paths(result: SimulationResult) -> None:
    tl = result.timeline
    assert set(tl["label"]) == {"median", "var", "worst"}
    last = tl.groupby("label").tail(1).set_index("label")
    sel = result.selected_paths
    assert sel["worst"] == int(np.argmax(result.shortfall_usd))
    for label, p in sel.items():
        assert last.loc[label, "shortfall_usd"] == pytest.approx(result.shortfall_usd[p], rel=1e-12)
        assert last.loc[label, "liquidated_usd_cum"] == pytest.approx(result.liquidated_usd[p])
    assert last.loc["var", "shortfall_usd"] == pytest.approx(result.var_usd, rel=1e-12)
    assert (tl.groupby("label")["liquidated_usd_cum"].diff().fillna(0) >= 0).all()


def test_per_chunk_function_is_pure(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    book = snap.book()
    source = FixedPaths(paths)
    whole = simulate_chunk(book, source, 240, 1, 0, 240, EngineConfig())
    part = simulate_chunk(book, source, 240, 1, 100, 130, EngineConfig())
    np.testing.assert_array_equal(part.output.shortfall_usd, whole.output.shortfall_usd[100:130])


def test_results_directory_round_trip(result: SimulationResult, tmp_path: Path) -> None:
    out = save_results(result, tmp_path / "res")
    loaded = load_results(out)
    assert loaded.summary["es_usd"] == result.es_usd
    assert loaded.summary["es_ci_usd"] == list(result.es_ci_usd)
    assert len(loaded.paths) == result.n_paths
    assert loaded.contributions["es_contribution_usd"].sum() == pytest.approx(result.es_usd)
    assert loaded.asset_contributions["es_contribution_usd"].sum() == pytest.approx(result.es_usd)
    assert {f"worst_move_{s}" for s in result.symbols} <= set(loaded.paths.columns)
    assert {f"price_{s}" for s in result.symbols} <= set(loaded.timeline.columns)

    (out / "timeline.parquet").unlink()
    with pytest.raises(ResultsError, match=r"timeline\.parquet: missing"):
        load_results(out)
    save_results(result, out)
    summary = json.loads((out / "summary.json").read_text())
    del summary["es_ci_usd"]
    (out / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ResultsError, match="es_ci_usd"):
        load_results(out)


def test_simulate_rejects_bad_input(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match="alpha"):
        simulate(snap, paths, alpha=1.0)
    with pytest.raises(InputError, match="hold 240"):
        simulate(snap, paths, n_paths=500)


def test_package_exports_simulate(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    few = FixedPaths(paths).paths(snap.book().symbols, 5, 1, start=0, stop=5)
    r = simulator.simulate(snap, few)
    assert isinstance(r, simulator.SimulationResult)


def test_cli_simulate_writes_results(
    snap: MarketSnapshot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap.save(tmp_path / "snap")
    out = tmp_path / "res"
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    assert main([*argv, "--paths", "40", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "97.5%" in text and "results written to" in text
    loaded = load_results(out)
    assert loaded.summary["paths"] == 40 and loaded.summary["scenario"] == "default"
    assert "shortfall simulate" in loaded.summary["command"]
    assert main([*argv, "--paths", "40", "--out", str(tmp_path / "r2"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["es_usd"] == loaded.summary["es_usd"]  # same seed, same numbers
    assert main([*argv, "--paths", "0", "--out", str(tmp_path / "r3")]) == 1
    assert "--paths" in capsys.readouterr().err


def test_dask_executor_gives_identical_numbers(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    from distributed import Client, LocalCluster

    few = FixedPaths(paths).paths(snap.book().symbols, 60, 1, start=0, stop=60)
    local = simulate(snap, few, seed=1)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        distributed = simulate(snap, few, seed=1, chunk_paths=16, executor=client)
    assert _numbers(distributed) == _numbers(local)
    np.testing.assert_array_equal(distributed.account_contributions, local.account_contributions)


def test_cli_rejects_scheduler_without_dask(
    snap: MarketSnapshot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap.save(tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "r")]) == 1
    assert "--executor dask" in capsys.readouterr().err


def test_round_limit_hits_warn(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    few = FixedPaths(paths).paths(snap.book().symbols, 30, 1, start=0, stop=30)
    with pytest.warns(NumericalWarning, match="round limit"):
        r = simulate(snap, few, config=EngineConfig(round_limit=1))
    assert r.rounds_limit_hits_total > 0
