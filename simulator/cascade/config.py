"""Every knob of the cascade engine, in one frozen settings object."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from simulator.errors import InputError

__all__ = ["EngineConfig"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Settings of the liquidation-cascade engine.

    The Aave V3.3 constants default to the protocol's values; they are fields so that a
    study can vary them, not because they differ between markets.
    """

    gas_units: float = 600_000.0
    """Gas one liquidation costs the liquidator: ``liquidationCall`` plus the DEX swap that
    sells the seized collateral, gas units. Gas cost USD = gas_units x gas_gwei x 1e-9 x ETH
    price."""

    eth_price_usd: float = 3000.0
    """ETH price used for gas costs when the market has no asset whose symbol is ``WETH`` or
    ``ETH``, USD. When it has one, that asset's reference price is used."""

    arbitrage_half_life_s: float = 60.0
    """Half-life of a venue's deviation from the reference price, seconds: the collateral
    liquidators sold into a pool and arbitrage has not yet taken out decays by half every
    this many seconds (per second, so the answer does not depend on the time grid). The
    default: CEX-DEX arbitrageurs trade against a pool's deviation from the centralised
    exchanges' price in most blocks (Heimbach, Pahari and Schertenleib 2024, "Non-atomic
    arbitrage in decentralized finance", IEEE S&P); raise it for venues arbitrageurs neglect. ``inf`` keeps the impact for good,
    ``0`` removes it before the next block."""

    clock_seconds: float = math.inf
    """The engine's clock, seconds: a scenario step longer than this is split into equal
    ticks of at most this length, the path interpolated between the scenario's points
    (log-linear; gas linear; interest and exchange rates as of the last point), and the
    oracle, arbitrage and liquidators act at every tick. The scenario's grid then sets how
    finely the path is drawn, not when accounts can be liquidated: an account that crosses
    HF 1 within an hourly step is liquidated within the tick it crossed in, at that tick's
    price and gas. Default ``inf``: the scenario's own steps (fastest). Measured on 20,000
    synthetic accounts x 400 paths of 24 daily steps: ES $12.15M on the daily grid, $6.15M
    with a 1-hour clock (3.6x the run time), $6.10M with 5 minutes; on hourly steps $7.6k
    and $6.2k with 5 minutes (2x the time). Use 3600 for daily scenarios."""

    block_seconds: float = 12.0
    """Time between two liquidation rounds within a step (one round per block), seconds:
    arbitrage works on the venues between rounds."""

    reference_impact_share: float = 1.0
    """Share of the volume liquidators sell that reaches the wider market and moves the
    reference price, in [0, 1]. Arbitrage buys back what liquidators sold into a pool and
    sells it elsewhere, so by default all of it does; ``0`` keeps the reference price on the
    scenario path."""

    reference_impact_coefficient: float = 1.0
    """``Y`` of the square-root law of the reference price's impact, ``dP/P = Y sigma_d
    sqrt(Q / V_d)`` over the cumulative USD sold ``Q`` (``simulator.cascade.assets``: Y of
    order 1 is what metaorder studies measure), >= 0."""

    liquidity_scale: float = 1.0
    """Multiplier on every pool's depth (constant-product ``L = sqrt(x * y)``), >= 0.
    ``0`` means no DEX liquidity at all (seized collateral cannot be sold, so no
    liquidation is profitable); ``math.inf`` means infinite liquidity (no price impact, no
    slippage beyond the pool fee)."""

    liquidator_sizing: Literal["optimal", "max"] = "optimal"
    """How a liquidator sizes ``debtToCover``: ``"optimal"`` repays what maximises its profit
    (venue price impact, fees and gas) within the close factor and the dust rule
    (``rules.best_liquidation``); ``"max"`` always tries the largest repayment allowed and
    acts only if that pays (earlier versions). Either way, within a round the accounts are
    served most profitable first."""

    accrual: bool = True
    """Interest over the horizon: debt grows at each reserve's variable borrow rate and
    collateral at its supply rate, read at the snapshot block (Aave's index formulas,
    ``Book.accrual_factors``). ``False`` holds balances at their snapshot amounts
    (``shortfall simulate --no-accrual``)."""

    round_limit: int = 1000
    """Most liquidation rounds per time step, a guard. A round is one block
    (``block_seconds``), so a step holds at most ``step_seconds / block_seconds`` rounds
    anyway: a cascade that needs more blocks goes on at the next step, which is the market's
    own pace, not a cut. When this guard is the tighter limit (steps of more than
    ``round_limit`` blocks, e.g. daily ones) and a step still holds an account a liquidator
    would profitably liquidate after this many rounds, that counts one rounds-limit hit
    (reported as a ``NumericalWarning``).

    The rules end every cascade by themselves (each executed liquidation must pay for its
    gas, and a partial one must leave at least ``min_leftover_usd`` of debt and collateral,
    so no account can be liquidated forever in ever smaller bites). The longest cascades
    come from thin pools that arbitrage refills between blocks: liquidators then take a
    profitable bite every block (a test book with pools at 2% of the usual depth and instant
    arbitrage needed 274 blocks in one hour). Both engines stop at the same round, so
    results stay identical."""

    close_factor_threshold_usd: float = 2000.0
    """Aave V3.3 ``MIN_BASE_MAX_CLOSE_FACTOR_THRESHOLD``: the 50% close factor can only apply
    when both the collateral and the debt reserve of the account are worth at least this, USD."""

    close_factor_hf: float = 0.95
    """Aave ``CLOSE_FACTOR_HF_THRESHOLD``: at or below this health factor the whole debt of
    the reserve can always be repaid."""

    default_close_factor: float = 0.5
    """Aave ``DEFAULT_LIQUIDATION_CLOSE_FACTOR``: share of the account's *total* debt a
    liquidation may repay when the cap applies, fraction."""

    min_leftover_usd: float = 1000.0
    """Aave V3.3 ``MIN_LEFTOVER_BASE``: a partial liquidation must leave at least this much of
    both the debt and the collateral reserve, USD, or it reverts (``MustNotLeaveDust``)."""

    impact_floor_hint: float = 0.99
    """Fast engine only, does not change results: the guess for the lowest ratio of reference
    price to scenario price that liquidations' price impact reaches on a path, used to skip
    accounts that cannot become liquidatable. A path that goes below it is re-run without
    skipping."""

    engine: Literal["fast", "reference"] = "fast"
    """Which implementation runs: the numba ``fast`` engine or the plain ``reference`` one."""

    def __post_init__(self) -> None:
        def need(ok: bool, field: str, what: str) -> None:
            if not ok:
                raise InputError(
                    f"EngineConfig.{field} = {getattr(self, field)!r}; expected {what}"
                )

        need(math.isfinite(self.gas_units) and self.gas_units >= 0, "gas_units", "finite >= 0")
        need(
            math.isfinite(self.eth_price_usd) and self.eth_price_usd > 0,
            "eth_price_usd",
            "finite > 0",
        )
        need(
            not math.isnan(self.arbitrage_half_life_s) and self.arbitrage_half_life_s >= 0,
            "arbitrage_half_life_s",
            ">= 0 seconds (inf: no arbitrage)",
        )
        need(
            not math.isnan(self.clock_seconds) and self.clock_seconds > 0,
            "clock_seconds",
            "> 0 seconds (inf: the scenario's own steps)",
        )
        need(
            math.isfinite(self.block_seconds) and self.block_seconds > 0,
            "block_seconds",
            "finite > 0 seconds",
        )
        need(
            0.0 <= self.reference_impact_share <= 1.0,
            "reference_impact_share",
            "a fraction in [0, 1]",
        )
        need(
            math.isfinite(self.reference_impact_coefficient)
            and self.reference_impact_coefficient >= 0,
            "reference_impact_coefficient",
            "finite >= 0",
        )
        need(
            not math.isnan(self.liquidity_scale) and self.liquidity_scale >= 0,
            "liquidity_scale",
            ">= 0 (inf for infinite liquidity)",
        )
        need(
            isinstance(self.round_limit, int) and self.round_limit >= 1,
            "round_limit",
            "an integer >= 1",
        )
        need(self.close_factor_threshold_usd >= 0, "close_factor_threshold_usd", ">= 0")
        need(0.0 <= self.close_factor_hf <= 1.0, "close_factor_hf", "in [0, 1]")
        need(0.0 < self.default_close_factor <= 1.0, "default_close_factor", "in (0, 1]")
        need(self.min_leftover_usd >= 0, "min_leftover_usd", ">= 0")
        need(0.0 <= self.impact_floor_hint <= 1.0, "impact_floor_hint", "in [0, 1]")
        need(isinstance(self.accrual, bool), "accrual", "True or False")
        need(
            self.liquidator_sizing in ("optimal", "max"),
            "liquidator_sizing",
            "'optimal' or 'max'",
        )
        need(self.engine in ("fast", "reference"), "engine", "'fast' or 'reference'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (``inf`` written as the string ``"inf"``)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and math.isinf(value):
                out[key] = "inf"
        return out
