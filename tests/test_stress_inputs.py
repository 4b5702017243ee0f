"""keeper.stress_inputs: the stress set from scenario files and simulate results."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keeper.stress_inputs import build_stress_set, default_named_scenarios, results_stress_set
from simulator.errors import ResultsError, ScenarioError
from simulator.scenarios.library import load_scenario

SYMBOLS = ("WETH", "WBTC", "USDC")


def test_default_set_is_named_stresses_plus_monte_carlo() -> None:
    names = default_named_scenarios()
    assert "black-thursday-2020" in names and "default" not in names
    s = build_stress_set(SYMBOLS, mc_paths=300, mc_seed=5)
    assert s.n_scenarios == len(names) + 300
    assert s.labels[: len(names)] == tuple(names)
    # the deterministic scenario contributes its whole path as one scenario
    bt = load_scenario("black-thursday-2020")
    assert s.starts[1] - s.starts[0] == bt.n_steps + 1
    again = build_stress_set(SYMBOLS, mc_paths=300, mc_seed=5)
    np.testing.assert_array_equal(s.points, again.points)  # fixed, visible seed


def test_unknown_symbol_keeps_its_price() -> None:
    s = build_stress_set((*SYMBOLS, "NOTATOKEN"), ["black-thursday-2020"], mc_paths=10)
    np.testing.assert_array_equal(s.points[:, 3], 1.0)
    with pytest.raises(ScenarioError, match="moves none"):
        build_stress_set(("NOTATOKEN",), ["black-thursday-2020"], mc_paths=0)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.results import save_results
    from simulator.simulation import simulate
    from simulator.synthetic import synthetic_snapshot

    snap = synthetic_snapshot(300, seed=3)
    out = tmp_path_factory.mktemp("results") / "res"
    save_results(simulate(snap, "default", n_paths=64, seed=2), out)
    return out


def test_stress_from_results_uses_worst_moves(results_dir: Path) -> None:
    frame = pd.read_parquet(results_dir / "paths.parquet")
    symbols = json.loads((results_dir / "summary.json").read_text())["symbols"]
    s = results_stress_set(results_dir, [*symbols, "NOTATOKEN"])
    assert s.n_scenarios == len(frame) == 64
    for j, sym in enumerate(symbols):
        np.testing.assert_allclose(s.points[:, j], 1.0 + frame[f"worst_move_{sym}"].to_numpy())
    np.testing.assert_array_equal(s.points[:, -1], 1.0)
    assert s.labels[0] == "default@cascade#0"
    both = build_stress_set(symbols, ["black-thursday-2020"], stress_from=results_dir)
    assert both.n_scenarios == 1 + 64  # the results replace the Monte Carlo set


def test_stress_from_bad_results(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such results directory"):
        results_stress_set(tmp_path / "nope", SYMBOLS)
    tmp_path.joinpath("summary.json").write_text("{}")
    with pytest.raises(ResultsError, match="missing key"):
        results_stress_set(tmp_path, SYMBOLS)


def test_stress_from_weighted_results_keeps_the_weights(results_dir: Path, tmp_path: Path) -> None:
    import shutil

    weighted = tmp_path / "weighted"
    shutil.copytree(results_dir, weighted)
    frame = pd.read_parquet(weighted / "paths.parquet")
    w = np.linspace(1.0, 3.0, len(frame))
    frame["weight"] = w / w.sum()
    frame.to_parquet(weighted / "paths.parquet")
    symbols = json.loads((weighted / "summary.json").read_text())["symbols"]
    alone = build_stress_set(symbols, [], stress_from=weighted)
    assert alone.weights is not None
    np.testing.assert_allclose(alone.weights, w / w.sum())
    both = build_stress_set(symbols, ["black-thursday-2020"], stress_from=weighted)
    assert both.weights is not None  # not silently dropped when named scenarios join
    np.testing.assert_allclose(both.weights[0], 1 / 65)
    np.testing.assert_allclose(both.weights[1:], (w / w.sum()) * 64 / 65)
