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


def test_default_sets_are_named_stresses_apart_from_monte_carlo() -> None:
    names = default_named_scenarios()
    assert "black-thursday-2020" in names and "default" not in names
    s = build_stress_set(SYMBOLS, mc_paths=300, mc_seed=5)
    assert s.named is not None and s.probabilistic is not None
    assert s.named.labels == tuple(names)
    assert s.probabilistic.n_scenarios == 300  # the named stresses are not mixed in
    # the deterministic scenario contributes its whole path as one scenario
    bt = load_scenario("black-thursday-2020")
    assert s.named.starts[1] - s.named.starts[0] == bt.n_steps + 1
    again = build_stress_set(SYMBOLS, mc_paths=300, mc_seed=5)
    np.testing.assert_array_equal(s.probabilistic.points, again.probabilistic.points)


def test_unknown_symbol_keeps_its_price() -> None:
    s = build_stress_set((*SYMBOLS, "NOTATOKEN"), ["black-thursday-2020"], mc_paths=10)
    assert s.named is not None and s.probabilistic is not None
    np.testing.assert_array_equal(s.named.points[:, 3], 1.0)
    np.testing.assert_array_equal(s.probabilistic.points[:, 3], 1.0)
    with pytest.raises(ScenarioError, match="moves none"):
        build_stress_set(("NOTATOKEN",), ["black-thursday-2020"], mc_paths=0)


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from simulator.results import save_results
    from simulator.simulation import simulate
    from simulator.synthetic import synthetic_snapshot

    snap = synthetic_snapshot(300, seed=3)
    out = tmp_path_factory.mktemp("results") / "res"
    save_results(simulate(snap, "default", n_paths=64, seed=2, record_states=True), out)
    return out


def test_stress_from_results_uses_joint_states(results_dir: Path) -> None:
    from simulator.states import load_states

    frame = pd.read_parquet(results_dir / "states.parquet")
    symbols = json.loads((results_dir / "summary.json").read_text())["symbols"]
    n_steps = int(frame["step"].max()) + 1
    assert len(frame) == 64 * n_steps
    s = results_stress_set(results_dir, [*symbols, "NOTATOKEN"], alpha=0.975, budget=10**6)
    assert s.n_scenarios == len(frame)  # under the budget: every state
    np.testing.assert_array_equal(s.points[:, -1], 1.0)
    assert s.weights is not None and s.weights.sum() == pytest.approx(1.0)
    # both directions: some state has an asset above its snapshot price
    assert (s.points[:, : len(symbols)] > 1.0).any() and (s.points < 1.0).any()
    states = load_states(results_dir / "states.parquet", symbols)
    row = frame.iloc[5]
    np.testing.assert_allclose(
        states.multipliers[5], [row[f"market_{x}"] for x in symbols], rtol=0, atol=0
    )
    both = build_stress_set(symbols, ["black-thursday-2020"], stress_from=results_dir, budget=100)
    assert both.probabilistic is not None and both.probabilistic.n_scenarios <= 100
    assert both.named is not None and both.named.n_scenarios == 1
    assert both.contributions and both.protocol_es_usd >= 0.0


def test_reduction_keeps_every_tail_state_and_sums_to_one() -> None:
    from simulator.states import JointStates, reduce_states

    rng = np.random.default_rng(0)
    n_paths, n_steps = 400, 10
    shortfall = np.where(rng.random(n_paths) < 0.05, rng.uniform(1, 100, n_paths), 0.0)
    path = np.repeat(np.arange(n_paths), n_steps)
    w = rng.uniform(0.5, 1.5, n_paths)
    states = JointStates(
        ("A",),
        rng.uniform(0.5, 1.5, (n_paths * n_steps, 1)),
        path,
        np.tile(np.arange(n_steps), n_paths),
        w / w.sum(),
        shortfall,
    )
    s = reduce_states(states, alpha=0.975, budget=500, seed=1)
    assert s.weights is not None and s.weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert s.n_scenarios <= 500
    from simulator.risk import var

    tail = np.flatnonzero(shortfall >= var(shortfall, 0.975, w / w.sum()))
    kept = {lab for lab in s.labels}
    for p in tail:
        for k in range(n_steps):
            assert f"path{p}@step{k}" in kept
    # tail states keep their own probability
    prob = states.state_probabilities()
    i = s.labels.index(f"path{tail[0]}@step0")
    assert s.weights[i] == pytest.approx(prob[tail[0] * n_steps])
    again = reduce_states(states, alpha=0.975, budget=500, seed=1)
    np.testing.assert_array_equal(s.points, again.points)


def test_old_results_without_states_fall_back_to_worst_moves(
    results_dir: Path, tmp_path: Path
) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(results_dir, old)
    (old / "states.parquet").unlink()
    frame = pd.read_parquet(old / "paths.parquet")
    symbols = json.loads((old / "summary.json").read_text())["symbols"]
    s = results_stress_set(old, symbols)
    assert s.n_scenarios == len(frame) == 64
    for j, sym in enumerate(symbols):
        np.testing.assert_allclose(s.points[:, j], 1.0 + frame[f"worst_move_{sym}"].to_numpy())


def test_stress_from_bad_results(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="no such results directory"):
        results_stress_set(tmp_path / "nope", SYMBOLS)
    tmp_path.joinpath("summary.json").write_text("{}")
    with pytest.raises(ResultsError, match="missing key"):
        results_stress_set(tmp_path, SYMBOLS)
