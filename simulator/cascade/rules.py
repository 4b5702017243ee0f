"""Scalar rules of the cascade: DEX price impact and one Aave V3.3 liquidation.

Plain Python on floats so the reference engine reads them directly; the fast engine compiles
the very same functions with ``numba.njit``. The engines differ in how they schedule work
(which accounts are checked when), never in these formulas, so the differential tests
exercise the scheduling and bookkeeping.

**DEX model.** Each asset trades in one constant-product pool against a stablecoin, with depth
``L = sqrt(x * y)`` (token units x USD). Arbitrage keeps the pool at the scenario price ``p``
except for the *excess inventory* ``S`` (tokens sold by liquidators and not yet absorbed), so
the pool holds ``x = L / sqrt(p) + S`` tokens and ``L**2 / x`` USD; the market price is
``p * (x_eq / (x_eq + S))**2``. Selling ``a`` tokens pays ``a' * y / (x + a')`` with
``a' = a * (1 - fee)``, and adds ``a`` to ``S``. ``L = 0`` is a market without liquidity (a
sale pays nothing); ``L = inf`` has no impact.

**Liquidation (Aave V3.3 LiquidationLogic).** The liquidator repays ``repay`` tokens of the
debt reserve and seizes ``repay * P_debt * (1 + bonus) / P_coll`` tokens of the collateral
(oracle prices), capped at the account's collateral (then the repayment shrinks to match).
The repayment is the whole debt of the reserve, except that it is capped at
``default_close_factor`` of the account's total debt when the collateral and debt reserves are
both worth at least ``close_factor_threshold_usd``, HF > ``close_factor_hf`` and the reserve's
debt exceeds that cap. A partial liquidation (neither all the reserve's debt nor all the
collateral) that would leave less than ``min_leftover_usd`` of either reverts. The treasury
takes ``protocol_fee`` of the premium ``seize - seize / (1 + bonus)``.
"""

from __future__ import annotations

import math

__all__ = [
    "FLAG_ALL_COLLATERAL",
    "FLAG_FULL_DEBT",
    "FLAG_INVALID",
    "impact_factor",
    "liquidatable",
    "oracle_deviates",
    "plan_liquidation",
    "pool_depth",
    "sale_proceeds",
]

#: ``plan_liquidation`` flags: the liquidation reverts (dust rule or a zero price).
FLAG_INVALID = -1
#: The whole debt of the reserve is repaid.
FLAG_FULL_DEBT = 1
#: All of the collateral reserve is seized.
FLAG_ALL_COLLATERAL = 2


def pool_depth(reserve_asset: float, reserve_quote: float, scale: float) -> float:
    """Constant-product depth ``L = sqrt(x * y) * scale``; ``inf`` when ``scale`` is inf."""
    if math.isinf(scale):
        return math.inf
    if reserve_asset <= 0.0 or reserve_quote <= 0.0 or scale <= 0.0:
        return 0.0
    return math.sqrt(reserve_asset * reserve_quote) * scale


def impact_factor(depth: float, inventory: float, path_price: float) -> float:
    """Market price / scenario price after ``inventory`` excess tokens sit in the pool."""
    if inventory <= 0.0 or depth <= 0.0 or math.isinf(depth) or path_price <= 0.0:
        return 1.0
    x_eq = depth / math.sqrt(path_price)
    ratio = x_eq / (x_eq + inventory)
    return ratio * ratio


def sale_proceeds(
    depth: float, inventory: float, path_price: float, fee: float, amount: float
) -> float:
    """USD received for selling ``amount`` tokens into the pool (before ``inventory`` grows)."""
    if amount <= 0.0 or depth <= 0.0 or path_price <= 0.0:
        return 0.0
    net = amount * (1.0 - fee)
    if math.isinf(depth):
        return net * path_price
    x = depth / math.sqrt(path_price) + inventory
    y = depth * depth / x
    return net * y / (x + net)


def plan_liquidation(
    coll: float,
    debt: float,
    total_debt_usd: float,
    hf: float,
    price_coll: float,
    price_debt: float,
    bonus: float,
    protocol_fee: float,
    close_factor_threshold_usd: float,
    close_factor_hf: float,
    default_close_factor: float,
    min_leftover_usd: float,
) -> tuple[float, float, float, int]:
    """Largest liquidation Aave V3.3 allows for one (collateral, debt) reserve pair.

    Args:
        coll: the account's collateral in the collateral reserve, tokens.
        debt: the account's debt in the debt reserve, tokens.
        total_debt_usd: the account's total debt at oracle prices, USD.
        hf: the account's health factor at oracle prices.
        price_coll, price_debt: oracle prices, USD per token.
        bonus: the collateral reserve's liquidation bonus, fraction.
        protocol_fee: the collateral reserve's protocol fee, fraction of the premium.

    Returns:
        ``(repay, seize, fee, flags)``: debt tokens repaid, collateral tokens taken from the
        account (the fee included), collateral tokens paid to the treasury, and a combination
        of ``FLAG_FULL_DEBT`` / ``FLAG_ALL_COLLATERAL``, or ``FLAG_INVALID`` when the call
        would revert.
    """
    if coll <= 0.0 or debt <= 0.0 or price_coll <= 0.0 or price_debt <= 0.0:
        return 0.0, 0.0, 0.0, FLAG_INVALID
    debt_usd = debt * price_debt
    repay = debt
    flags = FLAG_FULL_DEBT
    if (
        coll * price_coll >= close_factor_threshold_usd
        and debt_usd >= close_factor_threshold_usd
        and hf > close_factor_hf
    ):
        cap_usd = total_debt_usd * default_close_factor
        if debt_usd > cap_usd:
            repay = cap_usd / price_debt
            flags = 0
    seize = repay * price_debt * (1.0 + bonus) / price_coll
    if seize >= coll:
        seize = coll
        repay = coll * price_coll / (price_debt * (1.0 + bonus))
        flags = FLAG_ALL_COLLATERAL
    if flags == 0 and (
        (debt - repay) * price_debt < min_leftover_usd
        or (coll - seize) * price_coll < min_leftover_usd
    ):
        return 0.0, 0.0, 0.0, FLAG_INVALID
    fee = (seize - seize / (1.0 + bonus)) * protocol_fee
    return repay, seize, fee, flags


def liquidatable(weighted: float, debt: float) -> bool:
    """HF < 1: the account owes something (``debt``, USD at oracle prices) and its collateral
    x LT (``weighted``, USD) is below it."""
    return debt > 0.0 and weighted < debt


def oracle_deviates(observed: float, current: float, deviation: float) -> bool:
    """The feed's deviation trigger: ``|observed - current| > deviation x current``."""
    return abs(observed - current) > deviation * current
