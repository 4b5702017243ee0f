"""Assemble the keeper's stress set from scenario files and ``simulate`` results.

Glue, not numerics: it loads scenarios (``simulator.scenarios``) and results directories,
and hands price multipliers to ``simulator.stress.StressSet``. The stress set is:

- **named scenarios** (``--scenario NAME ...``; by default every built-in deterministic
  ``stress`` scenario): a deterministic scenario is one stress scenario whose points are all
  the steps of its path (the account's loss is its worst point along the path); a random
  scenario named explicitly contributes its terminal multipliers, one scenario per draw;
- plus **a one-day Monte Carlo set**: ``DEFAULT_MC_PATHS`` draws of the ``default``
  scenario's terminal multipliers with the fixed seed ``DEFAULT_MC_SEED``;
- or, with ``--stress-from RESULTS_DIR``, instead of the Monte Carlo set, each simulated
  path's **worst move per asset** from ``paths.parquet`` (``worst_move_<SYMBOL>`` columns,
  fractions: -0.35 is a 35% fall), which include the cascade's own price impact.

An asset a scenario cannot map to a risk factor keeps its price (multiplier 1) in that
scenario; the log says which.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.errors import ResultsError, ScenarioError
from simulator.scenarios.library import DEFAULT_SCENARIO, list_scenarios, load_scenario
from simulator.stress import DEFAULT_MC_PATHS, DEFAULT_MC_SEED, StressSet

__all__ = [
    "STATES_FILE",
    "WORST_MOVE_PREFIX",
    "StressInputs",
    "build_stress_set",
    "default_named_scenarios",
    "results_stress_set",
]

STATES_FILE = "states.parquet"

log = logging.getLogger(__name__)

WORST_MOVE_PREFIX = "worst_move_"


def default_named_scenarios() -> list[str]:
    """Every built-in deterministic stress scenario, by name."""
    return [s.name for s in list_scenarios() if s.kind == "stress"]


def _mappable(scenario_name: str, symbols: Sequence[str]) -> list[str]:
    scenario = load_scenario(scenario_name)
    out = []
    for s in symbols:
        try:
            scenario.resolve([s])
        except ScenarioError:
            continue
        out.append(s)
    return out


def _scenario_set(name: str, symbols: Sequence[str], n_paths: int, seed: int) -> StressSet:
    scenario = load_scenario(name)
    known = list(symbols)
    try:
        scenario.resolve(known)
    except ScenarioError:
        known = _mappable(name, symbols)
        still = sorted(set(symbols) - set(known))
        log.warning("scenario %s does not move %s; they keep their price in it", name, still)
        if not known:
            raise ScenarioError(
                f"scenario {name!r} moves none of the market's assets {list(symbols)}"
            ) from None
    if scenario.deterministic:
        paths = scenario.paths(known, 1, 0)
        out = StressSet.from_paths(name, known, paths.multipliers, terminal_only=False)
    else:
        paths = scenario.paths(known, n_paths, seed)
        out = StressSet.from_paths(name, known, paths.multipliers, terminal_only=True)
    return out.aligned(symbols)


def results_stress_set(
    results_dir: str | Path,
    symbols: Sequence[str],
    *,
    alpha: float = 0.975,
    budget: int = 4096,
    seed: int = 0,
) -> StressSet:
    """The joint market states of a results directory (``states.parquet``), reduced to
    ``budget`` states by ``simulator.states.reduce_states``; for results written before
    ``states.parquet`` existed, one scenario per path: its worst move per asset.

    The directory is loaded and validated by ``simulator.results.load_results``.
    """
    from simulator.results import load_results

    results = load_results(results_dir)
    states_file = Path(results_dir) / STATES_FILE
    if states_file.is_file():
        from simulator.states import load_states, reduce_states

        states = load_states(states_file, symbols)
        return reduce_states(states, alpha=alpha, budget=budget, seed=seed)
    log.warning(
        "%s: no %s (results from an older simulate); using each path's worst move per asset, "
        "not a joint state of the market",
        results_dir,
        STATES_FILE,
    )
    frame = results.paths
    columns = {
        str(c)[len(WORST_MOVE_PREFIX) :]: str(c)
        for c in frame.columns
        if str(c).startswith(WORST_MOVE_PREFIX)
    }
    where = Path(results_dir) / "paths.parquet"
    if not columns or frame.empty:
        raise ResultsError(f"{where}: no rows or no {WORST_MOVE_PREFIX}<SYMBOL> columns")
    known = {s.casefold(): s for s in columns}
    moves = np.zeros((len(frame), len(symbols)), dtype=np.float64)
    missing = []
    for j, symbol in enumerate(symbols):
        col = known.get(symbol.casefold())
        if col is None:
            missing.append(symbol)
            continue
        moves[:, j] = frame[columns[col]].to_numpy(dtype=np.float64)
    if missing:
        log.warning("%s has no worst move for %s; they keep their price", where, missing)
    if not np.isfinite(moves).all() or (moves < -1.0).any():
        raise ResultsError(f"{where}: worst moves must be finite fractions >= -1")
    scenario = str(results.summary.get("scenario", Path(results_dir).name))
    weights = None
    if "weight" in frame.columns:
        w = frame["weight"].to_numpy(dtype=np.float64)
        weights = w / w.sum()
    labels = [(f"{scenario}@cascade#{i}", 1.0 + moves[i]) for i in range(len(frame))]
    return StressSet.from_scenarios(tuple(symbols), labels, weights)


@dataclass(frozen=True, slots=True)
class StressInputs:
    """The keeper's two stress sets: the probabilistic one (its ES is compared with the
    margin) and the named stresses (each scored alone as the worst loss along its path)."""

    probabilistic: StressSet | None
    named: StressSet | None
    contributions: dict[str, float] = field(default_factory=dict)
    """Account -> Euler contribution to the protocol's ES (``--stress-from`` only), USD."""
    protocol_es_usd: float = 0.0
    """The protocol's ES in the ``--stress-from`` results, USD (0 without)."""


def build_stress_set(
    symbols: Sequence[str],
    scenarios: Sequence[str] | None = None,
    *,
    mc_paths: int = DEFAULT_MC_PATHS,
    mc_seed: int = DEFAULT_MC_SEED,
    stress_from: str | Path | None = None,
    alpha: float = 0.975,
    budget: int = 4096,
) -> StressInputs:
    """The keeper's stress sets for a market with assets ``symbols`` (see the module doc)."""
    names = default_named_scenarios() if scenarios is None else list(scenarios)
    parts: list[StressSet] = [_scenario_set(n, symbols, mc_paths, mc_seed) for n in names]
    named = None
    if parts:
        named = parts[0]
        for p in parts[1:]:
            named = named.concat(p)
    contributions: dict[str, float] = {}
    protocol_es = 0.0
    if stress_from is not None:
        probabilistic: StressSet | None = results_stress_set(
            stress_from, symbols, alpha=alpha, budget=budget
        )
        from simulator.results import load_results

        res = load_results(stress_from)
        contributions = {
            str(a): float(v)
            for a, v in zip(
                res.contributions["account"], res.contributions["es_contribution_usd"], strict=True
            )
        }
        protocol_es = float(res.summary["es_usd"])
    elif mc_paths > 0:
        probabilistic = _scenario_set(DEFAULT_SCENARIO, symbols, mc_paths, mc_seed)
    else:
        probabilistic = None
    if probabilistic is None and named is None:
        raise ScenarioError("the stress set is empty: name a scenario or keep the Monte Carlo set")
    log.info(
        "stress sets: %s probabilistic states, %d named stresses, over %s",
        "no" if probabilistic is None else probabilistic.n_points,
        0 if named is None else named.n_scenarios,
        ", ".join(symbols),
    )
    return StressInputs(probabilistic, named, contributions, protocol_es)
