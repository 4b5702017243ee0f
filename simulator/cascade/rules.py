"""Scalar rules of the cascade: DEX price impact and one Aave V3.3 liquidation.

Plain Python on floats so the reference engine reads them directly; the fast engine compiles
the very same functions with ``numba.njit``. The engines differ in how they schedule work
(which accounts are checked when), never in these formulas, so the differential tests
exercise the scheduling and bookkeeping.

**Market model.** Each asset has a *reference* price ``p``, the wider market's: the scenario
path times ``reference_impact`` of the USD volume liquidators have sold so far (a share of
every sale reaches the wider market, ``simulator.cascade.assets``). It trades in one
constant-product pool against a stablecoin (the *venue*), with depth ``L = sqrt(x * y)``
(token units x USD). Arbitrage pulls the pool back to ``p`` (``arbitrage_decay``, per
second) except for the *excess inventory* ``S`` (tokens sold by liquidators and not yet taken
out), so the pool holds ``x = L / sqrt(p) + S`` tokens and ``L**2 / x`` USD; the venue price
is ``p * (x_eq / (x_eq + S))**2``. Selling ``a`` tokens pays ``a' * y / (x + a')`` with
``a' = a * (1 - fee)``, and adds ``a`` to ``S``. ``L = 0`` is a market without liquidity (a
sale pays nothing); ``L = inf`` has no impact. The formulas live in ``simulator.venues``
(with the other venue kinds); ``sale_proceeds`` / ``venue_marginal`` / ``impact_factor`` are
their constant-product forms in this module's argument order. The functions' ``path_price`` argument is
the reference price the pool is arbitraged to.

**Liquidation (Aave V3.3 LiquidationLogic).** ``liquidation_at`` is one ``liquidationCall``
with a given ``debtToCover``; ``plan_liquidation`` the largest one (``debtToCover`` =
``type(uint256).max``). The liquidator repays ``repay`` tokens of the debt reserve and seizes ``repay * P_debt * (1 + bonus) / P_coll`` tokens of the collateral
(oracle prices), capped at the account's collateral (then the repayment shrinks to match).
The repayment is the whole debt of the reserve, except that it is capped at
``default_close_factor`` of the account's total debt when the collateral and debt reserves are
both worth at least ``close_factor_threshold_usd``, HF > ``close_factor_hf`` and the reserve's
debt exceeds that cap. A partial liquidation (neither all the reserve's debt nor all the
collateral) that would leave less than ``min_leftover_usd`` of either reverts. The treasury
takes ``protocol_fee`` of the premium ``seize - seize / (1 + bonus)``.

**Liquidator sizing.** ``best_liquidation`` picks the ``debtToCover`` that maximises the
liquidator's profit: the proceeds of selling the seized collateral less the treasury's fee
through the venue, minus the repaid debt bought at its market price, minus gas. Seized
tokens are linear in the repayment, so the profit is concave in it wherever the venue's
marginal price falls with the amount sold; the unconstrained optimum is where the venue's
marginal proceeds equal the debt's marginal cost (``venue_amount_at_marginal``: closed form for
the constant product, bisection on ``venue_marginal`` for any other venue kind). The optimum is
clamped to the partial liquidations the dust rule allows (each leftover at least
``min_leftover_usd``) and compared with the full one (all the reserve's debt, or all the
collateral) when the close factor allows it; a repayment that would leave dust is never
chosen, so when the rule allows no partial one the full one is the only candidate.
"""

from __future__ import annotations

import math
from typing import Any

from numba.extending import register_jitable

from simulator.venues import _cp_factor, _cp_marginal, _cp_proceeds
from simulator.venues import amount_at_marginal as venue_amount_at
from simulator.venues import marginal as venue_price_marginal
from simulator.venues import proceeds as venue_proceeds

#: Rule functions that other rule functions call are registered with numba, so the fast
#: engine's compiled ``best_liquidation`` calls their compiled forms; from Python they are
#: plain functions.
#: One shared decorator, as it always was: numba pops ``inline`` from the options it holds,
#: so only the first rule it decorates is inlined. Inlining them all (a fresh decorator per
#: rule) trips numba's IR checks on the liquidation rules (NumbaIRAssumptionWarning, a
#: variable out of scope, on a cold cache), so it stays like this until that is understood.
_rule = register_jitable(inline="always", error_model="numpy")


__all__ = [
    "FLAG_ALL_COLLATERAL",
    "FLAG_FULL_DEBT",
    "FLAG_INVALID",
    "arbitrage_decay",
    "best_liquidation",
    "impact_factor",
    "liquidatable",
    "liquidation_at",
    "oracle_deviates",
    "plan_liquidation",
    "pool_depth",
    "reference_impact",
    "sale_proceeds",
    "venue_amount_at_marginal",
    "venue_amount_at_marginal_bisect",
    "venue_marginal",
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


def arbitrage_decay(seconds: float, half_life_s: float) -> float:
    """Share of a venue's excess inventory left after ``seconds`` of arbitrage with the given
    half-life (``0.5 ** (seconds / half_life_s)``): 1 for no time or no arbitrage
    (``inf``), 0 after any time with instant arbitrage (half-life 0)."""
    if seconds <= 0.0 or math.isinf(half_life_s):
        return 1.0
    if half_life_s <= 0.0:
        return 0.0
    return math.exp(-math.log(2.0) * seconds / half_life_s)


def path_between(before: float, after: float, f: float) -> float:
    """The scenario path a fraction ``f`` of the way from one of its points to the next:
    log-linear (a constant rate of return within the step), linear where a point is 0."""
    if before > 0.0 and after > 0.0:
        return math.exp((1.0 - f) * math.log(before) + f * math.log(after))
    return (1.0 - f) * before + f * after


def reference_impact(coefficient: float, sold_usd: float) -> float:
    """Reference price / scenario price after ``sold_usd`` USD of the asset were sold by
    liquidators: ``exp(-c sqrt(Q))``, with ``c = Y sigma_d sqrt(share / V_d)`` (the
    square-root law; ``AssetFeeds.reference_coefficient``)."""
    if sold_usd <= 0.0 or coefficient <= 0.0:
        return 1.0
    return math.exp(-coefficient * math.sqrt(sold_usd))


def impact_factor(depth: float, inventory: float, path_price: float) -> float:
    """Market price / scenario price after ``inventory`` excess tokens sit in the pool."""
    return _cp_factor(depth, path_price, inventory)


@_rule
def sale_proceeds(
    depth: float, inventory: float, path_price: float, fee: float, amount: float
) -> float:
    """USD received for selling ``amount`` tokens into the pool (before ``inventory`` grows)."""
    return _cp_proceeds(depth, path_price, inventory, fee, amount)


@_rule
def venue_marginal(
    depth: float, inventory: float, path_price: float, fee: float, amount: float
) -> float:
    """USD per token the venue pays for the next token after ``amount`` tokens were sold
    (the derivative of ``sale_proceeds`` in ``amount``); falls with ``amount``."""
    return _cp_marginal(depth, path_price, inventory, fee, amount)


@_rule
def venue_amount_at_marginal(
    depth: float, inventory: float, path_price: float, fee: float, marginal: float
) -> float:
    """Tokens to sell until the venue's marginal price falls to ``marginal`` USD per token:
    0 if it is there already, ``inf`` if it never gets there (infinite depth at a price
    above it, or ``marginal <= 0``). Closed form for the constant product:
    ``x + a (1 - fee) = sqrt((1 - fee) x y / marginal)``."""
    top = venue_marginal(depth, inventory, path_price, fee, 0.0)
    if top <= marginal:
        return 0.0
    if marginal <= 0.0 or math.isinf(depth):
        return math.inf
    x = depth / math.sqrt(path_price) + inventory
    y = depth * depth / x
    a = (math.sqrt((1.0 - fee) * x * y / marginal) - x) / (1.0 - fee)
    return a if a > 0.0 else 0.0


def venue_amount_at_marginal_bisect(
    depth: float,
    inventory: float,
    path_price: float,
    fee: float,
    marginal: float,
    upper: float,
) -> float:
    """``venue_amount_at_marginal`` by bisection on ``venue_marginal`` over ``[0, upper]``
    (the form any venue kind with a falling marginal price can use; 60 halvings: relative
    precision ~1e-18 of ``upper``). Returns ``upper`` when the marginal price is still above
    ``marginal`` there."""
    if venue_marginal(depth, inventory, path_price, fee, 0.0) <= marginal:
        return 0.0
    if venue_marginal(depth, inventory, path_price, fee, upper) > marginal:
        return upper
    lo = 0.0
    hi = upper
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if venue_marginal(depth, inventory, path_price, fee, mid) > marginal:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


@_rule
def liquidation_at(
    debt_to_cover: float,
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
    """One Aave V3.3 ``liquidationCall`` for one (collateral, debt) reserve pair with
    ``debtToCover = debt_to_cover`` tokens (``inf``: ``type(uint256).max``).

    Args:
        debt_to_cover: the most debt tokens the liquidator offers to repay.
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
    if (
        coll <= 0.0
        or debt <= 0.0
        or price_coll <= 0.0
        or price_debt <= 0.0
        or not debt_to_cover > 0.0
    ):
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
    if debt_to_cover < repay:
        repay = debt_to_cover
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
    """Largest liquidation Aave V3.3 allows for one (collateral, debt) reserve pair:
    ``liquidation_at`` with ``debtToCover = type(uint256).max`` (arguments and result as
    there)."""
    return liquidation_at(
        math.inf,
        coll,
        debt,
        total_debt_usd,
        hf,
        price_coll,
        price_debt,
        bonus,
        protocol_fee,
        close_factor_threshold_usd,
        close_factor_hf,
        default_close_factor,
        min_leftover_usd,
    )


#: Relative margin by which ``best_liquidation`` keeps a partial repayment inside the dust
#: rule's bounds, so rounding never pushes it onto a leftover just below ``min_leftover_usd``.
_DUST_MARGIN = 1e-9


def best_liquidation(
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
    depth: float,
    inventory: float,
    path_price: float,
    dex_fee: float,
    venue_kind: int,
    venue_xs: Any,
    venue_ys: Any,
    venue_count: int,
    sold_per_seized: float,
    cost_per_repaid: float,
    gas_usd: float,
    optimal: bool = True,
) -> tuple[float, float, float, int, float, float]:
    """The liquidator's most profitable ``liquidationCall`` for one reserve pair.

    Args:
        coll .. min_leftover_usd: as ``liquidation_at`` (balances in any unit, prices per
            that unit).
        depth, inventory, path_price, dex_fee: the collateral's venue (``sale_proceeds``).
        venue_kind, venue_xs, venue_ys, venue_count: its kind and points
            (``simulator.venues``: constant product, Uniswap V3 segments or a depth curve).
        sold_per_seized: tokens sold per unit of ``coll`` seized net of the treasury's fee
            (an index growth when balances are scaled, else 1).
        cost_per_repaid: USD a unit of ``debt`` costs the liquidator at the market.
        gas_usd: the call's gas cost, USD.
        optimal: size the repayment for the most profit; ``False``: only the largest call
            (``plan_liquidation``), the liquidator of earlier versions.

    Returns:
        ``(repay, seize, fee, flags, proceeds, profit)`` of the best call (``liquidation_at``'s
        first four, the venue's USD for the sale, and proceeds - repay x cost - gas), or
        ``FLAG_INVALID`` flags when no call is allowed. The profit may be <= 0: the caller
        decides whether it pays (when no call pays, the one returned is some unprofitable
        one).
    """
    full = liquidation_at(
        math.inf,
        coll,
        debt,
        total_debt_usd,
        hf,
        price_coll,
        price_debt,
        bonus,
        protocol_fee,
        close_factor_threshold_usd,
        close_factor_hf,
        default_close_factor,
        min_leftover_usd,
    )
    if coll <= 0.0 or debt <= 0.0 or price_coll <= 0.0 or price_debt <= 0.0:
        return 0.0, 0.0, 0.0, FLAG_INVALID, 0.0, 0.0
    # the largest repayment the close factor allows, and the one that seizes everything
    cap = full[0] if full[3] != FLAG_INVALID else -1.0
    if full[3] == FLAG_INVALID:
        # the close factor's cap is partial and leaves dust: recompute the cap alone
        cap = debt
        if (
            coll * price_coll >= close_factor_threshold_usd
            and debt * price_debt >= close_factor_threshold_usd
            and hf > close_factor_hf
        ):
            cap = min(debt, total_debt_usd * default_close_factor / price_debt)
    r_coll = coll * price_coll / (price_debt * (1.0 + bonus))
    # partial repayments the dust rule allows: (0, r_hi]
    r_hi = min(
        cap,
        debt - min_leftover_usd / price_debt,
        r_coll - min_leftover_usd / (price_debt * (1.0 + bonus)),
    )
    r_hi = r_hi * (1.0 - _DUST_MARGIN)
    best_repay = 0.0
    best_seize = 0.0
    best_fee = 0.0
    best_flags = FLAG_INVALID
    best_proceeds = 0.0
    best_profit = -math.inf
    if full[3] != FLAG_INVALID:
        proceeds = venue_proceeds(
            venue_kind,
            depth,
            venue_xs,
            venue_ys,
            venue_count,
            path_price,
            inventory,
            dex_fee,
            (full[1] - full[2]) * sold_per_seized,
        )
        best_repay, best_seize, best_fee, best_flags = full
        best_proceeds = proceeds
        best_profit = proceeds - full[0] * cost_per_repaid - gas_usd
    # tokens sold per unit repaid: the seizure less the treasury's fee, linear in it
    k = price_debt * ((1.0 + bonus) - bonus * protocol_fee) / price_coll * sold_per_seized
    if optimal and r_hi > 0.0 and best_flags != FLAG_INVALID:
        # the profit still rises at the full call's size: concave, so no smaller one beats it
        sold = (best_seize - best_fee) * sold_per_seized
        if (
            venue_price_marginal(
                venue_kind,
                depth,
                venue_xs,
                venue_ys,
                venue_count,
                path_price,
                inventory,
                dex_fee,
                sold,
            )
            * k
            >= cost_per_repaid
        ):
            r_hi = 0.0
    if optimal and r_hi > 0.0:
        if cost_per_repaid > 0.0 and k > 0.0:
            amount = venue_amount_at(
                venue_kind,
                depth,
                venue_xs,
                venue_ys,
                venue_count,
                path_price,
                inventory,
                dex_fee,
                cost_per_repaid / k,
            )
            r = amount / k
        else:
            r = math.inf  # free debt: the more the better
        r = min(r, r_hi)
        if r <= 0.0 and best_flags == FLAG_INVALID:
            r = r_hi  # no cover pays, and only partial ones are allowed: return one of them
        if r > 0.0:
            repay, seize, fee, flags = liquidation_at(
                r,
                coll,
                debt,
                total_debt_usd,
                hf,
                price_coll,
                price_debt,
                bonus,
                protocol_fee,
                close_factor_threshold_usd,
                close_factor_hf,
                default_close_factor,
                min_leftover_usd,
            )
            if flags != FLAG_INVALID:
                proceeds = venue_proceeds(
                    venue_kind,
                    depth,
                    venue_xs,
                    venue_ys,
                    venue_count,
                    path_price,
                    inventory,
                    dex_fee,
                    (seize - fee) * sold_per_seized,
                )
                profit = proceeds - repay * cost_per_repaid - gas_usd
                if profit > best_profit:
                    best_repay, best_seize, best_fee, best_flags = repay, seize, fee, flags
                    best_proceeds = proceeds
                    best_profit = profit
    if best_flags == FLAG_INVALID:
        return 0.0, 0.0, 0.0, FLAG_INVALID, 0.0, 0.0
    return best_repay, best_seize, best_fee, best_flags, best_proceeds, best_profit


def liquidatable(weighted: float, debt: float) -> bool:
    """HF < 1: the account owes something (``debt``, USD at oracle prices) and its collateral
    x LT (``weighted``, USD) is below it."""
    return debt > 0.0 and weighted < debt


def oracle_deviates(observed: float, current: float, deviation: float) -> bool:
    """The feed's deviation trigger: ``|observed - current| > deviation x current``."""
    return abs(observed - current) > deviation * current
