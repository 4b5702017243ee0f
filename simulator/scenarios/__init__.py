"""Stress scenarios: TOML files in, price paths out.

>>> from simulator.scenarios import load_scenario
>>> sc = load_scenario("black-thursday-2020")
>>> pp = sc.paths(["WETH", "WBTC", "USDC"], n_paths=1, seed=0)
>>> pp.multipliers.shape  # (n_paths, n_steps + 1, n_assets)
(1, 49, 3)

Kinds, schema and the asset map: see :mod:`simulator.scenarios.model` and
:mod:`simulator.scenarios.assets`; calibration from price CSVs:
:mod:`simulator.scenarios.calibrate`.
"""

from simulator.scenarios.assets import BUILTIN_ASSETS, FACTORS
from simulator.scenarios.library import (
    DEFAULT_SCENARIO,
    ScenarioInfo,
    builtin_names,
    list_scenarios,
    load_scenario,
)
from simulator.scenarios.model import Scenario, parse_scenario
from simulator.scenarios.paths import OracleSpec, PricePaths

__all__ = [
    "BUILTIN_ASSETS",
    "DEFAULT_SCENARIO",
    "FACTORS",
    "OracleSpec",
    "PricePaths",
    "Scenario",
    "ScenarioInfo",
    "builtin_names",
    "list_scenarios",
    "load_scenario",
    "parse_scenario",
]
