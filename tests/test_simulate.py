"""simulate(): chunking invariance, contributions, timeline, results directory, CLI."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import simulator
from keeper.cli import main
from simulator import risk
from simulator.cascade import EngineConfig
from simulator.errors import ExecutorError, InputError, NumericalWarning, ResultsError
from simulator.results import load_results, save_results, summary_dict
from simulator.simulation import FixedPaths, SimulationResult, simulate, simulate_chunk
from simulator.snapshot import MarketSnapshot
from simulator.synthetic import synthetic_paths, synthetic_snapshot

ROOT = Path(__file__).resolve().parents[1]


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


def test_selected_paths_show_the_busiest_cascade_among_tied_losses() -> None:
    from simulator.simulation import _select_paths

    # 95% VaR is 0 (38 of 40 paths without bad debt): the VaR path is the zero-loss path
    # with the most liquidations, the median the one with the median liquidated volume
    losses = np.zeros(40)
    losses[[5, 17]] = [10.0, 30.0]
    liquidated = np.arange(40, dtype=np.float64)
    liquidated[[3, 9]] = [1e6, 5e5]
    sel = _select_paths(losses, None, 0.95, liquidated)
    assert sel == {"median": 22, "var": 3, "worst": 17}  # 22: 19th of 38 by volume
    assert losses[sel["var"]] == risk.var(losses, 0.95) == 0.0


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


def test_saving_never_replaces_a_directory_that_is_not_results(
    result: SimulationResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving replaces the target whole: a directory holding anything else, a file or the
    current directory is refused and left untouched (it used to be moved aside and deleted)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("keep me")
    with pytest.raises(ResultsError, match=r"data: exists and is not a results directory"):
        save_results(result, data)
    assert (data / "precious.csv").read_text() == "keep me"
    note = tmp_path / "note.txt"
    note.write_text("x")
    with pytest.raises(ResultsError, match="exists and is not a directory"):
        save_results(result, note)
    monkeypatch.chdir(data)
    with pytest.raises(ResultsError, match="current directory"):
        save_results(result, ".")
    assert (data / "precious.csv").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert save_results(result, empty) == empty  # an empty or earlier results dir is fine
    assert save_results(result, empty) == empty


def test_cli_refuses_a_bad_out_before_running(
    snap: MarketSnapshot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap.save(tmp_path / "snap")
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("keep me")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    assert main([*argv, "--paths", "40", "--out", str(data)]) == 1
    err = capsys.readouterr().err
    assert "not a results directory" in err and "precious.csv" in err
    assert len(err.strip().splitlines()) == 1
    assert (data / "precious.csv").read_text() == "keep me"


class _BrokenOnWorkers(FixedPaths):
    """Paths whose rows from 100 on fail the way a worker without shortfall would."""

    def paths(self, symbols, n_paths, seed, *, start=0, stop=None):  # type: ignore[no-untyped-def]
        if start >= 100:
            raise ModuleNotFoundError("No module named 'simulator'")
        return super().paths(symbols, n_paths, seed, start=start, stop=stop)


def test_a_chunk_failing_on_the_executor_is_one_clear_error(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    with (
        ThreadPoolExecutor(2) as pool,
        pytest.raises(ExecutorError, match=r"paths \[100, 150\) failed on the executor: "),
    ):
        simulate(snap, _BrokenOnWorkers(paths), n_paths=200, chunk_paths=50, executor=pool)
    # a bad input found inside a chunk keeps its own error type and message
    with ThreadPoolExecutor(2) as pool, pytest.raises(InputError, match="hold 240"):
        simulate(snap, paths, n_paths=500, chunk_paths=100, executor=pool)


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


# ---------------------------------------------------------------- Dask scale-out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: summary.json keys that say how a run was executed, not what it computed.
_HOW_IT_RAN = ("runtime_s", "command", "executor", "chunk_paths")


def _summary_numbers(results_dir: Path) -> dict[str, object]:
    summary = json.loads((results_dir / "summary.json").read_text())
    for key in _HOW_IT_RAN:
        summary.pop(key, None)
    return summary


def test_monte_carlo_streams_do_not_depend_on_workers_or_chunks() -> None:
    """Monte Carlo paths drawn chunk by chunk on Dask workers (chunks straddling the random
    blocks) give bit-identical numbers to one local run, for 1 and 3 workers."""
    from distributed import Client, LocalCluster

    from simulator.scenarios import load_scenario

    book = synthetic_snapshot(400, seed=5, near_one_share=0.5)
    scenario = load_scenario("default", regime="stressed")
    local = simulate(book, scenario, 2100, seed=3, chunk_paths=2100)
    assert local.es_usd > 0 and (local.account_contributions > 0).sum() > 10  # not all zeros
    for workers, chunk in ((1, 1000), (3, 257)):
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=False, dashboard_address=":0"
            ) as cluster,
            Client(cluster) as client,
        ):
            run = simulate(book, scenario, 2100, seed=3, chunk_paths=chunk, executor=client)
        assert _numbers(run) == _numbers(local), (workers, chunk)
        np.testing.assert_array_equal(run.shortfall_usd, local.shortfall_usd)
        np.testing.assert_array_equal(run.account_contributions, local.account_contributions)
        np.testing.assert_array_equal(run.worst_move, local.worst_move)
    other_seed = simulate(book, scenario, 2100, seed=4, chunk_paths=2100)
    assert not np.array_equal(other_seed.shortfall_usd, local.shortfall_usd)


@pytest.mark.slow
def test_cli_executor_dask_matches_local_bit_for_bit(tmp_path: Path) -> None:
    """`shortfall simulate --executor dask` (its own two-process LocalCluster) writes the same
    summary.json numbers and the same parquet tables as `--executor local`."""
    import pandas as pd

    synthetic_snapshot(400, seed=5, near_one_share=0.5).save(tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    argv += ["--paths", "2100", "--seed", "3"]
    assert main([*argv, "--out", str(tmp_path / "local")]) == 0
    dask_argv = [*argv, "--executor", "dask", "--chunk-paths", "300", "--out"]
    assert main([*dask_argv, str(tmp_path / "dask")]) == 0
    local = json.loads((tmp_path / "local" / "summary.json").read_text())
    dask = json.loads((tmp_path / "dask" / "summary.json").read_text())
    assert (local["executor"], dask["executor"]) == ("local", "dask")
    assert dask["chunk_paths"] == 300
    assert _summary_numbers(tmp_path / "dask") == _summary_numbers(tmp_path / "local")
    assert local["es_usd"] > 0
    for table in ("paths", "contributions", "asset_contributions", "timeline"):
        a = pd.read_parquet(tmp_path / "local" / f"{table}.parquet")
        b = pd.read_parquet(tmp_path / "dask" / f"{table}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_cli_unreachable_scheduler_is_a_one_line_error(
    snap: MarketSnapshot,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import keeper.cli.simulate as cli_simulate

    monkeypatch.setattr(cli_simulate, "SCHEDULER_TIMEOUT_S", 1)
    snap.save(tmp_path / "snap")
    address = f"tcp://127.0.0.1:{_free_port()}"
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    argv += ["--executor", "dask", "--scheduler", address, "--out", str(tmp_path / "r")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"--scheduler {address}: cannot connect" in err
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------- provenance


def test_cli_records_hashes_and_versions(snap: MarketSnapshot, tmp_path: Path) -> None:
    """summary.json pins what the command line does not: the snapshot's and the scenario
    file's SHA-256 and the versions of the numerical stack."""
    import hashlib
    import importlib.metadata
    import platform

    snap.save(tmp_path / "snap")
    mine = tmp_path / "mine.toml"
    shutil.copy(ROOT / "scenarios" / "black-thursday-2020.toml", mine)
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", str(mine)]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())

    snap_digest = hashlib.sha256()
    for f in sorted((tmp_path / "snap").iterdir()):
        snap_digest.update(f.name.encode() + b"\0" + f.read_bytes())
    assert summary["snapshot_sha256"] == snap_digest.hexdigest()
    assert summary["scenario_file"] == str(mine.resolve())
    expected = hashlib.sha256(b"mine.toml\0" + mine.read_bytes()).hexdigest()
    assert summary["scenario_sha256"] == expected
    versions = summary["versions"]
    assert versions["python"] == platform.python_version()
    for name in ("numpy", "numba", "scipy", "pandas", "pyarrow"):
        assert versions[name] == importlib.metadata.version(name)

    mine.write_text(mine.read_text() + "\n# edited\n")  # the same name, other content
    assert main([*argv, "--out", str(tmp_path / "r2")]) == 0
    edited = json.loads((tmp_path / "r2" / "summary.json").read_text())
    assert edited["scenario_sha256"] != summary["scenario_sha256"]
    assert edited["es_usd"] == summary["es_usd"]  # a comment changes the file, not the numbers


def test_builtin_scenario_file_is_the_installed_one(snap: MarketSnapshot, tmp_path: Path) -> None:
    import hashlib
    import importlib.resources

    from simulator.results import provenance
    from simulator.scenarios import load_scenario

    snap.save(tmp_path / "snap")
    info = provenance(tmp_path / "snap", load_scenario("default"))
    toml = Path(str(importlib.resources.files("scenarios").joinpath("default.toml")))
    assert info["scenario_file"] == str(toml)
    assert (
        info["scenario_sha256"] == hashlib.sha256(b"default.toml\0" + toml.read_bytes()).hexdigest()
    )


def test_cli_engine_knobs_are_used_and_recorded(
    snap: MarketSnapshot, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    snap.save(tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "hypothetical-eth-50"]
    assert main([*argv, "--out", str(tmp_path / "base")]) == 0
    knobs = ["--liquidity-scale", "0.05", "--arbitrage-half-life", "inf"]
    knobs += ["--reference-impact-share", "0.5", "--gas-units", "900000", "--round-limit", "50"]
    knobs += ["--oracle-deviation", "0.02", "--oracle-heartbeat", "7200"]
    assert main([*argv, *knobs, "--out", str(tmp_path / "thin")]) == 0
    base = load_results(tmp_path / "base").summary
    thin = load_results(tmp_path / "thin").summary
    engine = thin["engine"]
    assert engine["liquidity_scale"] == 0.05 and engine["arbitrage_half_life_s"] == "inf"
    assert engine["reference_impact_share"] == 0.5 and engine["gas_units"] == 900_000
    assert engine["round_limit"] == 50
    assert thin["oracle_override"] == {"deviation": 0.02, "heartbeat_s": 7200.0}
    assert "--liquidity-scale 0.05" in thin["command"]
    assert base["engine"]["liquidity_scale"] == 1.0 and base["oracle_override"] == {}
    # thin pools that never recover and a lazier oracle: the answer moves
    assert thin["liquidated_usd"]["mean"] != base["liquidated_usd"]["mean"]
    capsys.readouterr()
    assert main([*argv, "--reference-impact-share", "2", "--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert "--reference-impact-share" in err and "[0, 1]" in err
    assert main([*argv, "--oracle-deviation", "1.5", "--out", str(tmp_path / "bad2")]) == 1
    assert "--oracle-deviation" in capsys.readouterr().err
