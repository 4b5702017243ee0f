"""Shortfall's numerical core: state model, scenarios, cascade engine, risk measures.

Pure numerics: given arrays and parameters it returns results. Nothing here talks to
a chain, uses asyncio or configures logging; ``keeper`` does that and imports us.

>>> from simulator import simulate  # doctest: +SKIP
>>> result = simulate(snapshot, "default", n_paths=10_000, seed=1)  # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("shortfall")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from simulator.simulate import SimulationResult, simulate

__all__ = ["SimulationResult", "__version__", "simulate"]


def __getattr__(name: str) -> Any:
    # Lazy, because simulator.simulate imports modules that import __version__ from here.
    # The submodule shares the function's name and Python binds the submodule as the
    # package attribute, so ``simulate`` here *is* the module ``simulator.simulate``, made
    # callable: ``simulator.simulate(snapshot, ...)`` runs the function and
    # ``import simulator.simulate as m`` still gives the module.
    if name in ("simulate", "SimulationResult"):
        import importlib

        module = importlib.import_module("simulator.simulate")
        return module if name == "simulate" else module.SimulationResult
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
