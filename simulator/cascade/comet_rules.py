"""Scalar rules of Compound V3 (Comet): liquidatability, absorption, the store front.

Plain Python on floats and 1-d float arrays (token units, USD prices), written so that an
engine can call them directly or compile them with ``numba.njit`` like ``rules.py``. They
follow compound-finance/comet's ``Comet.sol`` (facts in docs/PROTOCOLS.md):

**Liquidatable** when the base balance's value plus the sum over collateral of value x
``liquidateCollateralFactor`` is below zero: for a borrower of ``debt`` base tokens,
``sum(amount x price x lcf) < debt x base_price``.

**Absorb.** The protocol takes *all* of the account's collateral; the account is credited
``credit = sum(amount x price x liquidationFactor) / base_price`` base tokens against its
debt. Its balance becomes ``max(credit - debt, 0)`` (a surplus stays with the account as a
base supply): the reserves pay out ``max(credit, debt)`` base tokens at once, and the part of
the debt the credit does not cover, ``max(debt - credit, 0)``, is the reserves' loss before
the collateral is sold. The absorber earns no bonus, only gas points.

**Store front.** The protocol sells absorbed collateral for base through ``buyCollateral``
at the asset's price discounted by ``storeFrontPriceFactor x (1 - liquidationFactor)``, and
only while its reserves are below ``targetReserves``. A buyer paying ``base`` tokens gets
``base x base_price / (price x (1 - discount))`` tokens of collateral; the reserves grow by
``base``.

**Shortfall.** A Comet market's bad debt is the fall of its reserves below zero.

**A buyer at the store front** (``store_front_purchase``, what both cascade engines call):
it pays base tokens it buys at the base's market price and sells the collateral into the
asset's venue (``simulator.venues``), so it buys the amount that maximises the venue's
proceeds minus what the base cost it minus gas: the amount at which the venue's marginal
price falls to the store-front price in USD, capped at what is for sale; it buys nothing
when that does not pay for the gas.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from numba.extending import register_jitable

from simulator.venues import amount_at_marginal as venue_amount_at
from simulator.venues import proceeds as venue_proceeds

__all__ = [
    "absorb",
    "buy_collateral",
    "is_liquidatable",
    "liquidation_margin_usd",
    "quote_collateral",
    "reserves_shortfall",
    "store_front_discount",
    "store_front_open",
    "store_front_purchase",
]

FloatArray = npt.NDArray[np.float64]

#: The rules are plain Python functions that numba can also compile (the fast engine calls
#: the compiled forms, so both engines compute with the same formulas in the same order).
_rule = register_jitable(error_model="numpy")


@_rule
def liquidation_margin_usd(
    amounts: FloatArray,
    prices_usd: FloatArray,
    liquidate_cf: FloatArray,
    base_balance: float,
    base_price_usd: float,
) -> float:
    """``base_balance x base_price + sum(amount x price x liquidateCollateralFactor)``, USD
    (``base_balance`` signed: negative is a borrow). Negative means liquidatable."""
    margin = base_balance * base_price_usd
    for j in range(amounts.shape[0]):
        margin += amounts[j] * prices_usd[j] * liquidate_cf[j]
    return margin


@_rule
def is_liquidatable(
    amounts: FloatArray,
    prices_usd: FloatArray,
    liquidate_cf: FloatArray,
    base_balance: float,
    base_price_usd: float,
) -> bool:
    """Comet's ``isLiquidatable``: a borrower whose liquidation margin is below zero."""
    if base_balance >= 0.0:
        return False
    return (
        liquidation_margin_usd(amounts, prices_usd, liquidate_cf, base_balance, base_price_usd)
        < 0.0
    )


@_rule
def absorb(
    amounts: FloatArray,
    prices_usd: FloatArray,
    liquidation_factor: FloatArray,
    debt: float,
    base_price_usd: float,
) -> tuple[float, float, float, float, float]:
    """One ``absorb`` of an account holding ``amounts`` of collateral and owing ``debt`` base
    tokens (>= 0).

    Returns:
        ``(seized_value_usd, credit, new_balance, paid_by_reserves, uncovered)``: the
        collateral's value at ``prices_usd`` (all of it is seized); the base tokens credited
        (value x liquidationFactor / base price); the account's base balance afterwards
        (>= 0, a supply); what the reserves pay out, ``new_balance + debt`` = max(credit,
        debt); and the debt the credit does not cover, max(debt - credit, 0), base tokens.
    """
    if debt < 0.0 or base_price_usd <= 0.0:
        raise ValueError("absorb needs debt >= 0 and a positive base price")
    value = 0.0
    credited_usd = 0.0
    for j in range(amounts.shape[0]):
        v = amounts[j] * prices_usd[j]
        value += v
        credited_usd += v * liquidation_factor[j]
    credit = credited_usd / base_price_usd
    new_balance = max(credit - debt, 0.0)
    return value, credit, new_balance, new_balance + debt, max(debt - credit, 0.0)


@_rule
def store_front_discount(store_front_price_factor: float, liquidation_factor: float) -> float:
    """The store front's discount on an asset: storeFrontPriceFactor x (1 - liquidationFactor)."""
    return store_front_price_factor * (1.0 - liquidation_factor)


@_rule
def store_front_open(reserves: float, target_reserves: float) -> bool:
    """``buyCollateral`` sells only while the reserves (base tokens, signed) are below target."""
    return reserves < target_reserves


@_rule
def quote_collateral(
    base_amount: float,
    price_usd: float,
    base_price_usd: float,
    store_front_price_factor: float,
    liquidation_factor: float,
) -> float:
    """``quoteCollateral``: collateral tokens ``base_amount`` base tokens buy at the store front."""
    discounted = price_usd * (
        1.0 - store_front_discount(store_front_price_factor, liquidation_factor)
    )
    if discounted <= 0.0:
        return math.inf
    return base_amount * base_price_usd / discounted


@_rule
def buy_collateral(
    base_amount: float,
    available: float,
    price_usd: float,
    base_price_usd: float,
    store_front_price_factor: float,
    liquidation_factor: float,
    reserves: float,
    target_reserves: float,
) -> tuple[float, float]:
    """A buyer offering ``base_amount`` base tokens for up to ``available`` tokens of absorbed
    collateral: ``(collateral_bought, base_paid)``; ``(0, 0)`` when the store front is closed
    (reserves at or above target). A purchase larger than what is for sale is cut to it (Comet
    reverts such a call; a buyer asks again for what is there)."""
    if not store_front_open(reserves, target_reserves) or base_amount <= 0.0 or available <= 0.0:
        return 0.0, 0.0
    quote = quote_collateral(
        base_amount, price_usd, base_price_usd, store_front_price_factor, liquidation_factor
    )
    if quote <= available:
        return quote, base_amount
    per_token = base_amount / quote
    return available, available * per_token


@_rule
def reserves_shortfall(reserves: float, base_price_usd: float) -> float:
    """A Comet market's bad debt, USD: how far its reserves are below zero."""
    return max(-reserves, 0.0) * base_price_usd


@_rule
def store_front_purchase(
    available: float,
    reserves: float,
    target_reserves: float,
    price_usd: float,
    base_price_usd: float,
    base_market_usd: float,
    store_front_price_factor: float,
    liquidation_factor: float,
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    gas_usd: float,
) -> tuple[float, float, float, float]:
    """The most profitable ``buyCollateral`` of ``available`` absorbed tokens of one asset
    by a buyer who sells them into the asset's venue (``kind`` ... ``fee``, the
    ``simulator.venues`` arguments at reference price ``ref`` with ``inventory`` excess
    tokens in it) and buys the base it pays with at ``base_market_usd``.

    ``price_usd`` and ``base_price_usd`` are the oracle's (the store front's quote);
    ``gas_usd`` the purchase's gas. Returns ``(tokens, base_paid, proceeds_usd, profit_usd)``,
    all 0 when the store front is closed or no purchase pays.
    """
    if not store_front_open(reserves, target_reserves) or available <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    discounted = price_usd * (
        1.0 - store_front_discount(store_front_price_factor, liquidation_factor)
    )
    if discounted <= 0.0 or base_price_usd <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    unit = discounted / base_price_usd * base_market_usd  # USD a token costs the buyer
    tokens = venue_amount_at(kind, depth, xs, ys, count, ref, inventory, fee, unit)
    tokens = min(tokens, available)
    if not tokens > 0.0:
        return 0.0, 0.0, 0.0, 0.0
    proceeds = venue_proceeds(kind, depth, xs, ys, count, ref, inventory, fee, tokens)
    profit = proceeds - tokens * unit - gas_usd
    if not profit > 0.0:
        return 0.0, 0.0, 0.0, 0.0
    return tokens, tokens * discounted / base_price_usd, proceeds, profit
