"""The output of every scenario kind, and the input of the cascade engine."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["AssetSpec", "OracleSpec", "PricePaths"]


@dataclass(frozen=True, slots=True)
class OracleSpec:
    """How the on-chain oracle follows the market (Chainlink-style push feed).

    Attributes:
        deviation: relative move of the reference price from the last oracle answer that
            triggers an update, fraction (0.005 = 0.5%), for every asset; ``None`` keeps
            each asset's own (its ``AssetSpec`` or its asset class's default,
            ``simulator.cascade.assets``).
        heartbeat_s: the feed updates at least this often even without a move, seconds;
            ``None`` as for ``deviation``.
        delay_s: extra latency between the market move and the oracle answer, seconds
            (0 for a push feed; MakerDAO's OSM had a one-hour delay).
    """

    deviation: float | None = None
    heartbeat_s: float | None = None
    delay_s: float = 0.0


@dataclass(frozen=True, slots=True)
class AssetSpec:
    """What a scenario says about one asset's oracle feed and wider market; a field left
    ``None`` takes the asset class's default (``simulator.cascade.assets``).

    Attributes:
        oracle_deviation: the feed's deviation threshold, fraction.
        oracle_heartbeat_s: the feed's heartbeat, seconds.
        pricing: ``"market"`` (the oracle follows the asset's own reference price) or
            ``"exchange-rate"`` (Aave's CAPO adapters for liquid-staking tokens: the token's
            exchange rate times the feed of ``rate_base``, with a cap on the rate's growth).
        rate_base: symbol of the asset whose feed an exchange-rate price multiplies.
        rate_apr: yearly growth of the exchange rate (the staking yield), fraction.
        rate_cap_apr: the adapter's cap on the rate's yearly growth, fraction.
        daily_volume_usd: the asset's daily spot volume across the wider market, USD (the
            square-root law of the reference price's impact reads it).
        daily_volatility: the asset's daily volatility, fraction (same law).
    """

    oracle_deviation: float | None = None
    oracle_heartbeat_s: float | None = None
    pricing: str | None = None
    rate_base: str | None = None
    rate_apr: float | None = None
    rate_cap_apr: float | None = None
    daily_volume_usd: float | None = None
    daily_volatility: float | None = None


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
        assets: the scenario's per-asset oracle and market settings, ``(symbol, AssetSpec)``
            pairs (a scenario file's ``[markets.SYMBOL]`` tables).
    """

    scenario: str
    symbols: tuple[str, ...]
    step_seconds: float
    multipliers: npt.NDArray[np.floating]
    gas_gwei: npt.NDArray[np.float64]
    oracle: OracleSpec
    seed: int | None = None
    weights: npt.NDArray[np.float64] | None = None
    assets: tuple[tuple[str, AssetSpec], ...] = ()

    @property
    def n_paths(self) -> int:
        return int(self.multipliers.shape[0])

    @property
    def n_steps(self) -> int:
        return int(self.multipliers.shape[1]) - 1

    @property
    def n_assets(self) -> int:
        return int(self.multipliers.shape[2])
