"""The liquidation-cascade engine: a lending market's liquidations replayed along price paths.

The engine's parts: the market (reference prices, venues, arbitrage, the oracle and gas:
``rules``, ``assets``, ``simulator.venues``) and a protocol's rules: Aave V3.3's
``liquidationCall`` sized by a liquidator (``rules``), or Compound V3's ``absorb`` and store
front (``comet_rules``, chosen by ``Book.comet``). ``run_cascade`` dispatches to the fast
numba engines (default: ``fast`` for Aave, ``fast_comet`` for Comet) or the plain reference
engine (``EngineConfig(engine="reference")``); both implement the rules of
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
    if book.comet is not None:
        from simulator.cascade.fast_comet import run_fast_comet

        return run_fast_comet(book, paths, config, trace=trace)
    from simulator.cascade.fast import run_fast

    return run_fast(book, paths, config, trace=trace)
