"""The pure Compound V3 rules (simulator.cascade.comet_rules) against hand-worked cases and
exact-fraction identities."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cascade.comet_rules import (
    absorb,
    buy_collateral,
    is_liquidatable,
    liquidation_margin_usd,
    quote_collateral,
    reserves_shortfall,
    store_front_discount,
    store_front_open,
)


def arr(*x: float) -> np.ndarray:
    return np.array(x, dtype=np.float64)


def test_liquidatable_at_the_liquidate_collateral_factor() -> None:
    # 1 WETH at $3,000, lcf 0.90: the line is a debt of 2,700 USDC
    one = arr(1.0), arr(3000.0), arr(0.90)
    assert not is_liquidatable(*one, -2699.99, 1.0)
    assert is_liquidatable(*one, -2700.01, 1.0)
    assert not is_liquidatable(*one, 0.0, 1.0) and not is_liquidatable(*one, 50.0, 1.0)
    assert liquidation_margin_usd(*one, -2000.0, 1.0) == pytest.approx(700.0)
    # a base supply never makes an account liquidatable, whatever its collateral
    assert not is_liquidatable(arr(0.0), arr(1.0), arr(0.5), 10.0, 1.0)


def test_absorb_takes_everything_credits_the_liquidation_factor() -> None:
    # 1 WETH at $2,500 (lf 0.95) + 0.01 WBTC at $50,000 (lf 0.90); 3,000 USDC debt
    value, credit, new, paid, uncovered = absorb(
        arr(1.0, 0.01), arr(2500.0, 50000.0), arr(0.95, 0.90), 3000.0, 1.0
    )
    assert value == pytest.approx(3000.0)
    assert credit == pytest.approx(2375.0 + 450.0)
    assert new == 0.0 and paid == pytest.approx(3000.0)
    assert uncovered == pytest.approx(3000.0 - 2825.0)
    # credit above the debt: the surplus stays with the account as a base supply
    value, credit, new, paid, uncovered = absorb(arr(2.0), arr(2500.0), arr(0.95), 3000.0, 1.0)
    assert credit == pytest.approx(4750.0) and new == pytest.approx(1750.0)
    assert paid == pytest.approx(4750.0) and uncovered == 0.0
    with pytest.raises(ValueError):
        absorb(arr(1.0), arr(1.0), arr(0.9), -1.0, 1.0)


def test_store_front_discount_and_quote() -> None:
    assert store_front_discount(0.6, 0.95) == pytest.approx(0.03)
    # 1,000 USDC buys WETH at 3,000 x (1 - 0.03)
    assert quote_collateral(1000.0, 3000.0, 1.0, 0.6, 0.95) == pytest.approx(1000.0 / 2910.0)
    assert store_front_open(-5.0, 100.0) and store_front_open(99.0, 100.0)
    assert not store_front_open(100.0, 100.0)
    assert buy_collateral(1000.0, 10.0, 3000.0, 1.0, 0.6, 0.95, 100.0, 100.0) == (0.0, 0.0)
    got, paid = buy_collateral(1000.0, 0.1, 3000.0, 1.0, 0.6, 0.95, 0.0, 100.0)
    assert got == 0.1 and paid == pytest.approx(0.1 * 2910.0)
    assert reserves_shortfall(-250.0, 1.0) == 250.0 and reserves_shortfall(10.0, 1.0) == 0.0


prices = st.floats(0.01, 1e5)
factors = st.integers(0, 10_000).map(lambda b: b / 1e4)


@settings(max_examples=300, deadline=None)
@given(
    amounts=st.lists(st.floats(0.0, 1e6), min_size=1, max_size=4),
    px=st.lists(prices, min_size=4, max_size=4),
    lf=st.lists(factors, min_size=4, max_size=4),
    debt=st.floats(0.0, 1e9),
    base_price=st.floats(0.5, 2.0),
    sf=factors,
)
def test_absorb_then_sell_everything_against_exact_fractions(
    amounts: list[float],
    px: list[float],
    lf: list[float],
    debt: float,
    base_price: float,
    sf: float,
) -> None:
    n = len(amounts)
    a, p, f = arr(*amounts), arr(*px[:n]), arr(*lf[:n])
    _value, credit, new, paid, uncovered = absorb(a, p, f, debt, base_price)
    exact_credit = sum(
        Fraction(x) * Fraction(y) * Fraction(z)
        for x, y, z in zip(amounts, px[:n], lf[:n], strict=True)
    ) / Fraction(base_price)
    assert credit == pytest.approx(float(exact_credit), rel=1e-12, abs=1e-9)
    assert paid == pytest.approx(max(credit, debt), rel=1e-12, abs=1e-9)
    assert new >= 0.0 and uncovered >= 0.0 and new * uncovered == 0.0
    # selling all the seized collateral at the store front (unchanged prices) brings back
    # value x (1 - discount); when the credit covers the debt the protocol never loses
    proceeds = sum(
        quote_value
        for quote_value in (
            x * y * (1 - store_front_discount(sf, z)) / base_price
            for x, y, z in zip(amounts, px[:n], lf[:n], strict=True)
        )
    )
    if credit >= debt:
        assert proceeds - paid >= -1e-9 * max(1.0, paid)
    for x, y, z in zip(amounts, px[:n], lf[:n], strict=True):
        if x > 0 and store_front_discount(sf, z) < 1.0:
            base = x * y * (1 - store_front_discount(sf, z)) / base_price
            assert quote_collateral(base, y, base_price, sf, z) == pytest.approx(x, rel=1e-12)
