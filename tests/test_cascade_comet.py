"""Cascade engine on a Compound V3 (Comet) market: absorb, the store front and the reserves;
the fast engine equal to the reference engine."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cascade import RTOL, _book, _paths
from test_cascade import _assert_same as _assert_same_cascade

from simulator.cascade import EngineConfig, run_cascade
from simulator.cascade.comet_rules import store_front_discount
from simulator.cascade.fast_comet import run_fast_comet
from simulator.cascade.model import CascadeOutput
from simulator.cascade.reference import run_reference
from simulator.errors import SnapshotError
from simulator.snapshot import Book, CometTerms
from simulator.synthetic import comet_book, synthetic_snapshot, uniform_shock_paths


def _comet(
    book: Book,
    *,
    reserves: float = 1e5,
    target: float = 1e6,
    sfpf: float = 0.6,
    lf: float = 0.93,
    stock: float = 0.0,
) -> Book:
    """``book`` (asset 0 the stablecoin base) as a Comet market: every debt moved to the
    base at its USD value."""
    price = book.price_usd
    coll = book.collateral.copy()
    coll[:, 0] = 0.0
    debt = np.zeros_like(coll)
    debt[:, 0] = (book.debt * price).sum(axis=1) / price[0]
    n = book.n_assets
    lfs = np.full(n, lf)
    lfs[0] = 0.0
    held = np.zeros(n)
    held[1:] = stock / price[1:]
    return dataclasses.replace(
        book,
        collateral=coll,
        debt=debt,
        collateral_enabled=coll > 0.0,
        liquidation_bonus=np.zeros(n),
        protocol_fee=np.zeros(n),
        class_lt=np.zeros((0, 0)),
        class_ltv=np.zeros((0, 0)),
        class_bonus=np.zeros((0, 0)),
        class_price_usd=np.zeros((0, 0)),
        comet=CometTerms(
            base=0,
            liquidation_factor=lfs,
            store_front_price_factor=sfpf,
            target_reserves=target,
            reserves=reserves,
            collateral_reserves=held,
        ),
    )


def _assert_same(ref: CascadeOutput, fast: CascadeOutput) -> None:
    """``test_cascade``'s comparison, plus the outputs only a Comet market has."""
    _assert_same_cascade(ref, fast)
    for name in ("reserve_drawdown_usd", "unsold_collateral_usd"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=RTOL, err_msg=name)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_accounts=st.integers(1, 25),
    n_assets=st.integers(2, 6),
    n_paths=st.integers(1, 3),
    n_steps=st.integers(1, 5),
    vol=st.sampled_from([0.02, 0.08, 0.2]),
    scale=st.sampled_from([0.0, 0.02, 0.3, 1.0, math.inf]),
    gas_units=st.sampled_from([0.0, 600_000.0, 5_000_000.0]),
    half_life=st.sampled_from([0.0, 30.0, 3600.0, math.inf]),
    ref_share=st.sampled_from([0.0, 1.0]),
    round_limit=st.integers(1, 6),
    reserves=st.sampled_from([-1e5, 0.0, 1e5, 1e7]),
    stock=st.sampled_from([0.0, 5e4]),
    clock=st.sampled_from([math.inf, 900.0]),
)
def test_fast_comet_engine_equals_reference(
    seed: int,
    n_accounts: int,
    n_assets: int,
    n_paths: int,
    n_steps: int,
    vol: float,
    scale: float,
    gas_units: float,
    half_life: float,
    ref_share: float,
    round_limit: int,
    reserves: float,
    stock: float,
    clock: float,
) -> None:
    rng = np.random.default_rng(seed)
    base = _book(
        rng, n_accounts, n_assets, pool_scale=float(rng.choice([0.05, 1.0])), stable_debt=True
    )
    book = _comet(
        base,
        reserves=reserves,
        target=float(rng.choice([0.0, 1e6])),
        sfpf=float(rng.choice([0.0, 0.6, 1.0])),
        lf=float(rng.choice([0.8, 0.95])),
        stock=stock,
    )
    paths = _paths(rng, book.symbols, n_paths, n_steps, vol)
    config = EngineConfig(
        gas_units=gas_units,
        liquidity_scale=scale,
        arbitrage_half_life_s=half_life,
        reference_impact_share=ref_share,
        round_limit=round_limit,
        clock_seconds=clock,
    )
    ref = run_reference(book, paths, config, trace=True)
    fast = run_fast_comet(book, paths, config, trace=True)
    _assert_same(ref, fast)
    for name in ("trace_market", "trace_liquidated_usd", "trace_shortfall_usd"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=RTOL)


def test_fast_equals_reference_on_a_synthetic_comet_book() -> None:
    book = comet_book(synthetic_snapshot(2_000, seed=4).book())
    from simulator.synthetic import synthetic_paths

    paths = synthetic_paths(book.symbols, 12, 24, daily_vol=0.25, seed=5)
    config = EngineConfig(liquidity_scale=0.05, clock_seconds=1800.0)
    ref = run_reference(book, paths, dataclasses.replace(config, engine="reference"))
    fast = run_cascade(book, paths, config)
    _assert_same(ref, fast)
    assert fast.n_liquidations.sum() > 100 and fast.shortfall_usd.max() > 0.0


def _one_account(
    collateral_usd: float,
    debt_usd: float,
    *,
    lcf: float = 0.8,
    lf: float = 0.9,
    reserves: float = 0.0,
    target: float = 1e9,
    pool_usd: float = 1e12,
) -> Book:
    """One WETH-backed borrower of a USDC-based Comet market."""
    price = np.array([1.0, 2000.0])
    return Book(
        accounts=np.array(["0x" + "11" * 20]),
        assets=("0x" + "a0" * 20, "0x" + "a1" * 20),
        symbols=("USDC", "WETH"),
        collateral=np.array([[0.0, collateral_usd / 2000.0]]),
        debt=np.array([[debt_usd, 0.0]]),
        collateral_enabled=np.array([[False, True]]),
        price_usd=price,
        ltv=np.array([0.0, lcf - 0.05]),
        liquidation_threshold=np.array([0.0, lcf]),
        liquidation_bonus=np.zeros(2),
        protocol_fee=np.zeros(2),
        decimals=np.array([6, 18]),
        dex_reserve_asset=np.array([pool_usd, pool_usd / 2000.0]),
        dex_reserve_quote=np.array([pool_usd, pool_usd]),
        dex_fee=np.zeros(2),
        comet=CometTerms(
            base=0,
            liquidation_factor=np.array([0.0, lf]),
            store_front_price_factor=0.5,
            target_reserves=target,
            reserves=reserves,
            collateral_reserves=np.zeros(2),
        ),
    )


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_absorb_credits_the_liquidation_factor_and_the_store_front_refills_reserves(
    engine: str,
) -> None:
    # $10,000 of WETH against $9,000 of debt at LCF 0.8: liquidatable (8,000 < 9,000)
    book = _one_account(10_000.0, 9_000.0)
    paths = uniform_shock_paths(book.symbols, [1.0], n_steps=1)
    config = EngineConfig(engine=engine, gas_units=0.0, liquidity_scale=math.inf)  # type: ignore[arg-type]
    out = run_cascade(book, paths, config)
    assert out.n_liquidations[0] == 1
    assert out.liquidated_usd[0] == pytest.approx(9_000.0)
    # credit 0.9 x 10,000 = 9,000 covers the debt: nothing uncovered
    assert out.deficit_usd[0] == pytest.approx(0.0, abs=1e-9)
    # the reserves paid 9,000 and sold the WETH at 2000 x (1 - 0.5 x 0.1): 9,500 back
    discount = store_front_discount(0.5, 0.9)
    assert out.shortfall_usd[0] == 0.0
    assert out.reserve_drawdown_usd[0] == pytest.approx(0.0, abs=1e-9)
    assert 10_000.0 * (1 - discount) - 9_000.0 == pytest.approx(500.0)


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_underwater_absorption_leaves_reserves_below_zero(engine: str) -> None:
    # healthy at the snapshot (8,000 > 7,500), then a 50% crash: $5,000 of WETH against
    # $7,500 of debt. The reserves pay 7,500 and get 5,000 x (1 - discount) back; they
    # started at 1,000
    book = _one_account(10_000.0, 7_500.0, reserves=1_000.0)
    paths = uniform_shock_paths(book.symbols, [[1.0, 0.5]], n_steps=1)
    config = EngineConfig(engine=engine, gas_units=0.0, liquidity_scale=math.inf)  # type: ignore[arg-type]
    out = run_cascade(book, paths, config)
    recovered = 5_000.0 * (1 - store_front_discount(0.5, 0.9))
    assert out.n_liquidations[0] == 1
    assert out.deficit_usd[0] == pytest.approx(7_500.0 - 0.9 * 5_000.0)
    assert out.shortfall_usd[0] == pytest.approx(7_500.0 - recovered - 1_000.0)
    assert out.reserve_drawdown_usd[0] == pytest.approx(7_500.0 - recovered)
    np.testing.assert_allclose(out.account_shortfall_usd, [out.shortfall_usd[0]])


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_store_front_closed_at_target_keeps_the_collateral(engine: str) -> None:
    # reserves above target: absorbed collateral is not for sale, so the reserves keep the
    # payout's loss (and an unsold stock counts for nothing)
    book = _one_account(10_000.0, 9_000.0, reserves=20_000.0, target=10_000.0)
    paths = uniform_shock_paths(book.symbols, [1.0], n_steps=2)
    config = EngineConfig(engine=engine, gas_units=0.0, liquidity_scale=math.inf)  # type: ignore[arg-type]
    out = run_cascade(book, paths, config)
    assert out.n_liquidations[0] == 1
    assert out.reserve_drawdown_usd[0] == pytest.approx(9_000.0)
    assert out.shortfall_usd[0] == 0.0
    assert out.unsold_collateral_usd[0] == pytest.approx(10_000.0)


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_healthy_account_is_not_absorbed_and_gas_stops_unprofitable_purchases(
    engine: str,
) -> None:
    healthy = _one_account(10_000.0, 7_000.0)
    paths = uniform_shock_paths(healthy.symbols, [1.0], n_steps=1, gas_gwei=50.0)
    out = run_cascade(healthy, paths, EngineConfig(engine=engine))  # type: ignore[arg-type]
    assert out.n_liquidations[0] == 0 and out.reserve_drawdown_usd[0] == 0.0
    # a small absorbed position whose store-front margin cannot pay 600k gas at 5,000 gwei
    small = _one_account(100.0, 90.0, reserves=0.0)
    paths = uniform_shock_paths(small.symbols, [1.0], n_steps=1, gas_gwei=5_000.0)
    out = run_cascade(small, paths, EngineConfig(engine=engine))  # type: ignore[arg-type]
    assert out.n_liquidations[0] == 1
    assert out.reserve_drawdown_usd[0] == pytest.approx(90.0)  # paid, nothing sold back


def test_comet_book_keeps_health_factors_and_borrows_only_the_base() -> None:
    aave = synthetic_snapshot(500, seed=2).book()
    comet = comet_book(aave)
    assert comet.comet is not None
    b = comet.comet.base
    assert np.all(np.delete(comet.debt, b, axis=1) == 0.0)
    assert np.all(comet.collateral[:, b] == 0.0)
    hf = comet.health_factor()
    assert np.all(hf[np.isfinite(hf)] > 1.0)


def test_comet_terms_are_checked() -> None:
    book = _one_account(10_000.0, 9_000.0)
    assert book.comet is not None
    with pytest.raises(SnapshotError, match="liquidation_factor"):
        dataclasses.replace(
            book, comet=dataclasses.replace(book.comet, liquidation_factor=np.array([0.0, 1.5]))
        )
    with pytest.raises(SnapshotError, match="debt only in its base"):
        dataclasses.replace(book, debt=np.array([[9_000.0, 1.0]]))
