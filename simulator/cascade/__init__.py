"""The liquidation-cascade engine: Aave V3.3 liquidations replayed along price paths.

``run_cascade`` dispatches to the fast numba engine (default) or the plain reference engine
(``EngineConfig(engine="reference")``); both implement the rules of
``simulator.cascade.reference`` and give the same numbers.
"""

from __future__ import annotations

from simulator.cascade.config import EngineConfig
from simulator.cascade.model import CascadeOutput, LiquidationEvent
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book

__all__ = ["CascadeOutput", "EngineConfig", "LiquidationEvent", "run_cascade"]


def run_cascade(
    book: Book, paths: PricePaths, config: EngineConfig | None = None, *, trace: bool = False
) -> CascadeOutput:
    """Replay the cascade of ``book`` along every path of ``paths``."""
    config = config or EngineConfig()
    if config.engine == "reference":
        from simulator.cascade.reference import run_reference

        return run_reference(book, paths, config, trace=trace)
    from simulator.cascade.fast import run_fast

    return run_fast(book, paths, config, trace=trace)
