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
    ``ETH``, USD. When it has one, that asset's market price (path x impact) is used."""

    recovery_rate: float = 0.5
    """Fraction of the DEX's excess inventory (collateral sold by liquidators and not yet
    absorbed by arbitrage) that the market absorbs per time step, in [0, 1]: 0 means the
    price impact is permanent, 1 means the price returns to the scenario path at the next
    step."""

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

    round_limit: int = 100
    """Most liquidation rounds per time step; a step that still holds an account a
    liquidator would profitably liquidate after this many rounds counts one rounds-limit
    hit (the cascade is cut short there, reported as a ``NumericalWarning``).

    The limit is a guard, not part of the model: the rules end every cascade by themselves
    (each executed liquidation must pay for its gas, and a partial one must leave at least
    ``min_leftover_usd`` of debt and collateral, so no account can be liquidated forever in
    ever smaller bites), and a round is one liquidation per listed account, far fewer than
    the blocks an hourly or daily step holds. The longest cascades measured end well below
    100 rounds: the devnet demo book with its original thin pairs (2-5x less depth than its
    collateral) needed up to 35 rounds in a calm hour (the former default of 20 cut 74% of
    default Monte Carlo paths and understated mean shortfall by 14%); with pairs sized from
    the book, at most 5; the synthetic 100k-account workloads at most a handful. A hit at 100
    therefore flags a book whose cascade has not converged, worth a look, rather than a
    routine cut. Both engines stop at the same round, so results stay identical."""

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
    """Fast engine only, does not change results: the guess for the lowest ratio of market
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
        need(0.0 <= self.recovery_rate <= 1.0, "recovery_rate", "a fraction in [0, 1]")
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
