"""The output of every scenario kind, and the input of the cascade engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["OracleSpec", "PricePaths"]


@dataclass(frozen=True, slots=True)
class OracleSpec:
    """How the on-chain oracle follows the market (Chainlink-style push feed).

    Attributes:
        deviation: relative move of the market price from the last oracle answer that
            triggers an update, fraction (0.005 = 0.5%).
        heartbeat_s: the feed updates at least this often even without a move, seconds.
        delay_s: extra latency between the market move and the oracle answer, seconds
            (0 for a push feed; MakerDAO's OSM had a one-hour delay).
    """

    deviation: float = 0.005
    heartbeat_s: float = 3600.0
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class PricePaths:
    """Scenario price paths for the assets of one market.

    Attributes:
        scenario: the scenario's name.
        symbols: asset symbols, in the order of the last axis of ``multipliers``.
        step_seconds: length of one time step, seconds.
        multipliers: market price relative to the snapshot price,
            shape ``(n_paths, n_steps + 1, n_assets)``; ``multipliers[:, 0, :] == 1``.
        gas_gwei: gas price path, gwei, shape ``(n_paths, n_steps + 1)``.
        oracle: oracle update rule during the scenario.
        seed: the seed the paths were drawn from (``None`` for deterministic paths).
        weights: scenario probabilities, shape ``(n_paths,)``, or ``None`` for equal weights.
    """

    scenario: str
    symbols: tuple[str, ...]
    step_seconds: float
    multipliers: npt.NDArray[np.floating]
    gas_gwei: npt.NDArray[np.float64]
    oracle: OracleSpec
    seed: int | None = None
    weights: npt.NDArray[np.float64] | None = None

    @property
    def n_paths(self) -> int:
        return int(self.multipliers.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.multipliers.shape[1]) - 1

    @property
    def n_assets(self) -> int:
        return int(self.multipliers.shape[2])
