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


def test_stress_from_results_uses_worst_moves(tmp_path: Path) -> None:
    res = tmp_path / "results"
    res.mkdir()
    pd.DataFrame(
        {
            "shortfall_usd": [0.0, 10.0, 50.0],
            "worst_move_WETH": [-0.1, -0.3, -0.6],
            "worst_move_wbtc": [-0.05, -0.2, -0.5],
        }
    ).to_parquet(res / "paths.parquet")
    (res / "summary.json").write_text(json.dumps({"scenario": "ftx"}))
    s = results_stress_set(res, SYMBOLS)
    np.testing.assert_allclose(s.points, [[0.9, 0.95, 1.0], [0.7, 0.8, 1.0], [0.4, 0.5, 1.0]])
    assert s.labels[0] == "ftx@cascade#0"
    both = build_stress_set(SYMBOLS, ["black-thursday-2020"], stress_from=res)
    assert both.n_scenarios == 1 + 3  # the results replace the Monte Carlo set


def test_stress_from_bad_results(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="missing"):
        results_stress_set(tmp_path, SYMBOLS)
    pd.DataFrame({"shortfall_usd": [1.0]}).to_parquet(tmp_path / "paths.parquet")
    with pytest.raises(ResultsError, match="worst_move_"):
        results_stress_set(tmp_path, SYMBOLS)
