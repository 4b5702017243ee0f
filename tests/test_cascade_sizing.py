"""Profit-maximising liquidator sizing and most-profitable-first rounds (issue 16, item 1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cascade import _assert_same

from simulator.cascade import EngineConfig, run_cascade
from simulator.cascade.fast import run_fast
from simulator.cascade.reference import run_reference
from simulator.cascade.rules import (
    FLAG_INVALID,
    best_liquidation,
    liquidation_at,
    plan_liquidation,
    pool_depth,
    sale_proceeds,
    venue_amount_at_marginal,
    venue_amount_at_marginal_bisect,
    venue_marginal,
)
from simulator.errors import InputError
from simulator.snapshot import Book
from simulator.synthetic import uniform_shock_paths

#: A constant-product venue's kind and (no) points, for best_liquidation's venue arguments.
CONSTANT_PRODUCT = (0, np.zeros(1), np.zeros(1), 0)

AAVE = (2000.0, 0.95, 0.5, 1000.0)  # close-factor threshold, close-factor HF, factor, dust


def _profit(r: float, args: tuple[float, ...], venue: tuple[float, ...]) -> float | None:
    """Profit of ``liquidationCall(debtToCover=r)``, or None when it reverts."""
    coll, debt, total, hf, pc, pd, bonus, pfee = args
    repay, seize, fee, flags = liquidation_at(r, coll, debt, total, hf, pc, pd, bonus, pfee, *AAVE)
    if flags == FLAG_INVALID:
        return None
    depth, inv, pp, dex_fee, cost, gas = venue
    return sale_proceeds(depth, inv, pp, dex_fee, seize - fee) - repay * cost - gas


def test_liquidation_at_max_is_plan_liquidation_and_smaller_covers_are_partial() -> None:
    args = (10.0, 20_000.0, 20_000.0, 0.99, 3000.0, 1.0, 0.05, 0.1)
    assert liquidation_at(math.inf, *args, *AAVE) == plan_liquidation(*args, *AAVE)
    repay, seize, _fee, flags = liquidation_at(4000.0, *args, *AAVE)
    assert flags == 0 and repay == 4000.0 and seize == pytest.approx(4000.0 * 1.05 / 3000.0)
    # above the 50% close factor the cover is capped at it
    assert liquidation_at(15_000.0, *args, *AAVE)[0] == pytest.approx(10_000.0)
    # a cover leaving $500 of debt reverts (MustNotLeaveDust); a full one is fine
    small = (1.0, 2_600.0, 2_600.0, 0.9, 3000.0, 1.0, 0.05, 0.1)
    assert liquidation_at(2_100.0, *small, *AAVE)[3] == FLAG_INVALID
    assert liquidation_at(math.inf, *small, *AAVE)[0] == 2_600.0
    assert liquidation_at(0.0, *args, *AAVE)[3] == FLAG_INVALID


@settings(max_examples=200, deadline=None)
@given(
    amount=st.floats(0.0, 1e6),
    reserve=st.floats(1.0, 1e7),
    price=st.floats(0.01, 1e5),
    inventory=st.floats(0.0, 1e6),
    fee=st.sampled_from([0.0, 0.003, 0.01]),
)
def test_venue_marginal_is_the_derivative_and_its_inverse_matches_bisection(
    amount: float, reserve: float, price: float, inventory: float, fee: float
) -> None:
    depth = pool_depth(reserve, reserve * price, 1.0)
    h = max(amount, 1.0) * 1e-6
    numeric = (
        sale_proceeds(depth, inventory, price, fee, amount + h)
        - sale_proceeds(depth, inventory, price, fee, amount)
    ) / h
    m = venue_marginal(depth, inventory, price, fee, amount)
    # the difference of two proceeds near the pool's saturation cancels: allow its rounding
    rounding = 8 * 2.2e-16 * sale_proceeds(depth, inventory, price, fee, amount + h) / h
    assert numeric == pytest.approx(m, rel=1e-4, abs=rounding)
    # the amount at which the marginal price falls to m is `amount` (closed form and bisection)
    if venue_marginal(depth, inventory, price, fee, 0.0) > m * (1 + 1e-9) and amount > 0:
        closed = venue_amount_at_marginal(depth, inventory, price, fee, m)
        assert closed == pytest.approx(amount, rel=1e-6, abs=1e-9 * reserve)
        bisect = venue_amount_at_marginal_bisect(depth, inventory, price, fee, m, 4.0 * amount)
        assert bisect == pytest.approx(closed, rel=1e-9, abs=1e-9 * reserve)


@settings(max_examples=300, deadline=None)
@given(
    coll_usd=st.floats(500.0, 5e7),
    hf=st.floats(0.5, 0.9999),
    share=st.floats(0.2, 1.0),
    bonus=st.floats(0.005, 0.1),
    pfee=st.sampled_from([0.0, 0.1, 0.5]),
    pool_usd=st.floats(1e4, 1e9),
    inventory_share=st.floats(0.0, 0.5),
    dex_fee=st.sampled_from([0.0, 0.003, 0.01]),
    cost=st.floats(0.95, 1.05),
    gas=st.sampled_from([0.0, 5.0, 500.0]),
)
def test_best_liquidation_beats_every_allowed_cover(
    coll_usd: float,
    hf: float,
    share: float,
    bonus: float,
    pfee: float,
    pool_usd: float,
    inventory_share: float,
    dex_fee: float,
    cost: float,
    gas: float,
) -> None:
    """The chosen cover is allowed, and no other cover on a fine grid (nor the full one)
    earns more: the optimum of a concave profit, clamped to what the dust rule allows."""
    pc, pd, lt = 2000.0, 1.0, 0.8
    coll = coll_usd / pc
    total = coll_usd * lt / hf
    debt = total * share  # this reserve's part of the account's debt
    args = (coll, debt, total, hf, pc, pd, bonus, pfee)
    depth = pool_depth(pool_usd / pc, pool_usd, 1.0)
    inv = inventory_share * pool_usd / pc
    venue = (depth, inv, pc, dex_fee, cost, gas)
    repay, seize, fee, flags, proceeds, profit = best_liquidation(
        *args, *AAVE, depth, inv, pc, dex_fee, *CONSTANT_PRODUCT, 1.0, cost, gas
    )
    grid = [debt * x for x in np.linspace(0.0, 1.0, 2001)[1:]] + [math.inf]
    allowed = [p for p in (_profit(r, args, venue) for r in grid) if p is not None]
    if flags == FLAG_INVALID:
        assert not allowed
        return
    # a full call is made with debtToCover = max; a partial one with its repayment
    cover = math.inf if flags != 0 else repay
    assert liquidation_at(cover, *args, *AAVE) == (repay, seize, fee, flags)
    assert proceeds == pytest.approx(sale_proceeds(depth, inv, pc, dex_fee, seize - fee))
    assert profit == pytest.approx(proceeds - repay * cost - gas)
    # (when no cover pays, any unprofitable one may come back: nobody acts on it)
    if max(allowed) > 0.0:
        assert profit >= max(allowed) - 1e-9 * (abs(max(allowed)) + coll_usd)
    # the largest cover only: what `optimal=False` gives
    big = best_liquidation(
        *args, *AAVE, depth, inv, pc, dex_fee, *CONSTANT_PRODUCT, 1.0, cost, gas, False
    )
    full = _profit(math.inf, args, venue)
    assert (big[3] == FLAG_INVALID) == (full is None)
    if full is not None:
        assert big[5] == pytest.approx(full)
        assert profit >= big[5] or big[5] <= 0.0


def _whale_book(pool_usd: float = 200e6) -> Book:
    """The review's whale: $20M of USDC debt against WETH at HF 0.98 (LT 0.83, bonus 5%),
    WETH traded in one constant-product pool of ``pool_usd`` a side."""
    price = np.array([1.0, 3000.0])
    lt = np.array([0.78, 0.83])
    debt_usd = 20e6
    coll = np.array([[0.0, debt_usd * 0.98 / 0.83 / 3000.0]])
    debt = np.array([[debt_usd, 0.0]])
    return Book(
        accounts=np.array(["0x" + "77" * 20]),
        assets=("0x" + "01" * 20, "0x" + "02" * 20),
        symbols=("USDC", "WETH"),
        collateral=coll,
        debt=debt,
        collateral_enabled=coll > 0,
        price_usd=price,
        ltv=lt - 0.03,
        liquidation_threshold=lt,
        liquidation_bonus=np.array([0.045, 0.05]),
        protocol_fee=np.array([0.1, 0.1]),
        decimals=np.array([6, 18]),
        dex_reserve_asset=np.array([1e12, pool_usd / 3000.0]),
        dex_reserve_quote=np.array([1e12, pool_usd]),
        dex_fee=np.array([0.0001, 0.003]),
    )


def test_the_reviews_whale_is_liquidated() -> None:
    book = _whale_book()
    assert book.health_factor()[0] == pytest.approx(0.98)
    flat = uniform_shock_paths(book.symbols, [[1.0, 1.0]], gas_gwei=30.0)
    old = run_reference(book, flat, EngineConfig(liquidator_sizing="max"), record=True)
    assert old.n_liquidations[0] == 0  # the largest repayment loses money: nobody acts
    new = run_reference(book, flat, EngineConfig(), record=True)
    assert new.n_liquidations[0] >= 1
    first = new.events[0]
    # a partial repayment of 10-20% of the debt nets tens of thousands of dollars
    assert 0.05 * 20e6 < first.repaid < 0.25 * 20e6
    assert 30e3 < first.profit_usd < 100e3
    # the oracle reads the wider market's price, which the sales barely move: the bites
    # stop once the whale is healthy again (no spiral through one pool's price)
    last = new.events[-1]
    hf_after = (
        last.collateral_after * last.price_collateral * 0.83 / (last.debt_after * last.price_debt)
    )
    assert 1.0 <= hf_after < 1.05
    _assert_same(new, run_fast(book, flat, EngineConfig()))
    _assert_same(old, run_fast(book, flat, EngineConfig(liquidator_sizing="max")))


def test_the_whale_at_eth_minus_20_percent_leaves_less_bad_debt() -> None:
    book = _whale_book()
    steps = np.linspace(1.0, 0.8, 25)
    mult = np.ones((1, 25, 2))
    mult[0, :, 1] = steps
    from simulator.scenarios.paths import OracleSpec, PricePaths

    paths = PricePaths(
        "eth-20", book.symbols, 3600.0, mult, np.full((1, 25), 30.0), OracleSpec(0.005, 3600.0)
    )
    old = run_cascade(book, paths, EngineConfig(liquidator_sizing="max"))
    new = run_cascade(book, paths, EngineConfig())
    assert old.shortfall_usd[0] > 100e3
    assert new.shortfall_usd[0] < 0.1 * old.shortfall_usd[0]
    _assert_same(run_reference(book, paths, EngineConfig()), new)


def test_accounts_are_served_most_profitable_first() -> None:
    # three accounts under water on one thin WETH pool: the largest profit goes first,
    # whatever the account order, and the fast engine does the same
    price = np.array([1.0, 3000.0])
    lt = np.array([0.78, 0.83])
    debt_usd = np.array([30_000.0, 400_000.0, 120_000.0])
    coll = np.zeros((3, 2))
    coll[:, 1] = debt_usd * 0.97 / 0.83 / 3000.0
    debt = np.zeros((3, 2))
    debt[:, 0] = debt_usd
    book = Book(
        accounts=np.array([f"0x{a:040x}" for a in range(3)]),
        assets=("0x" + "01" * 20, "0x" + "02" * 20),
        symbols=("USDC", "WETH"),
        collateral=coll,
        debt=debt,
        collateral_enabled=coll > 0,
        price_usd=price,
        ltv=lt - 0.03,
        liquidation_threshold=lt,
        liquidation_bonus=np.array([0.045, 0.05]),
        protocol_fee=np.array([0.1, 0.1]),
        decimals=np.array([6, 18]),
        dex_reserve_asset=np.array([1e12, 30e6 / 3000.0]),
        dex_reserve_quote=np.array([1e12, 30e6]),
        dex_fee=np.array([0.0001, 0.003]),
    )
    paths = uniform_shock_paths(book.symbols, [[1.0, 1.0]], gas_gwei=1.0)
    ref = run_reference(book, paths, EngineConfig(), record=True)
    round0 = [e for e in ref.events if e.step == 0 and e.round == 0]
    assert [e.account for e in round0][:2] == [1, 2]
    # each is evaluated again when its turn comes: the later ones sell into a moved pool
    assert round0[0].profit_usd > round0[1].profit_usd
    _assert_same(ref, run_fast(book, paths, EngineConfig()))


def test_engine_config_rejects_unknown_sizing() -> None:
    with pytest.raises(InputError, match="liquidator_sizing"):
        EngineConfig(liquidator_sizing="half")  # type: ignore[arg-type]
