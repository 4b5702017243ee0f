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
    from simulator.simulation import SimulationResult, simulate

__all__ = ["SimulationResult", "__version__", "simulate"]


def __getattr__(name: str) -> Any:
    # Lazy, because simulator.simulation imports modules that import __version__ from here.
    if name in ("simulate", "SimulationResult"):
        import importlib

        module = importlib.import_module("simulator.simulation")
        return getattr(module, name)
    raise AttributeError(f"module 'simulator' has no attribute {name!r}")
