"""Cascade engine: Aave V3.3 rules, fast vs reference engine, and the invariants of issue 6."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from simulator.cascade import EngineConfig, run_cascade
from simulator.cascade.fast import run_fast
from simulator.cascade.model import CascadeOutput
from simulator.cascade.reference import run_reference
from simulator.cascade.rules import (
    FLAG_ALL_COLLATERAL,
    FLAG_FULL_DEBT,
    FLAG_INVALID,
    impact_factor,
    plan_liquidation,
    sale_proceeds,
)
from simulator.errors import InputError
from simulator.scenarios.paths import AssetSpec, OracleSpec, PricePaths
from simulator.snapshot import Book
from simulator.synthetic import synthetic_paths, synthetic_snapshot, uniform_shock_paths

RTOL = 1e-9  # fast vs reference: relative tolerance on every USD figure

AAVE = {
    "close_factor_threshold_usd": 2000.0,
    "close_factor_hf": 0.95,
    "default_close_factor": 0.5,
    "min_leftover_usd": 1000.0,
}


def _plan(coll: float, debt: float, total: float, hf: float, pc: float, pd: float, bonus=0.05):
    return plan_liquidation(coll, debt, total, hf, pc, pd, bonus, 0.1, *AAVE.values())


# --------------------------------------------------------------------------- scalar rules


def test_constant_product_matches_uniswap_v2_formula() -> None:
    r_asset, r_quote = 1_000.0, 3_000_000.0  # pool at $3,000
    depth = math.sqrt(r_asset * r_quote)
    amount = 25.0
    uniswap = amount * 997 * r_quote / (r_asset * 1000 + amount * 997)
    ours = sale_proceeds(depth, 0.0, 3000.0, 0.003, amount)
    assert ours == pytest.approx(uniswap, rel=1e-12)
    # the price after the sale: (x / (x + amount))^2 of the path price (fee leaves the pool)
    assert impact_factor(depth, amount, 3000.0) == pytest.approx((1000 / 1025) ** 2, rel=1e-12)
    assert sale_proceeds(0.0, 0.0, 3000.0, 0.003, amount) == 0.0
    assert sale_proceeds(math.inf, 0.0, 3000.0, 0.0, amount) == amount * 3000.0


def test_full_reserve_debt_by_default() -> None:
    # small position: below the $2,000 thresholds, the whole reserve debt may be repaid
    repay, seize, fee, flags = _plan(1.0, 1500.0, 1500.0, 0.98, 1600.0, 1.0)
    assert flags == FLAG_FULL_DEBT and repay == 1500.0
    assert seize == pytest.approx(1500.0 * 1.05 / 1600.0)
    assert fee == pytest.approx((seize - seize / 1.05) * 0.1)


def test_half_of_total_debt_when_large_and_healthy_enough() -> None:
    # collateral $12k, one debt reserve of $10k = all the debt, HF 0.99 > 0.95: cap at 50%
    repay, _seize, _fee, flags = _plan(4.0, 10_000.0, 10_000.0, 0.99, 3000.0, 1.0)
    assert flags == 0 and repay == pytest.approx(5000.0)
    # at HF <= 0.95 the whole reserve debt may go
    repay, _, _, flags = _plan(4.0, 10_000.0, 10_000.0, 0.95, 3000.0, 1.0)
    assert flags == FLAG_FULL_DEBT and repay == 10_000.0
    # a reserve holding at most half the total debt is never capped
    repay, _, _, flags = _plan(4.0, 5_000.0, 10_000.0, 0.99, 3000.0, 1.0)
    assert flags == FLAG_FULL_DEBT and repay == 5_000.0


def test_dust_rule_reverts_partial_liquidation_leaving_dust() -> None:
    # 50% cap applies (debt 2,500 of 2,500 > half) but leaves $1,250 debt and ~$1,187 collateral
    *_, flags = _plan(1.3, 2_500.0, 2_500.0, 0.99, 3000.0, 1.0)
    assert flags == 0
    # leaving $900 of collateral reverts (MustNotLeaveDust)
    *_, flags = _plan(1.2, 4_000.0, 4_000.0, 0.96, 2_500.0, 1.0)
    assert flags == FLAG_INVALID


def test_collateral_cap_shrinks_repayment() -> None:
    repay, seize, _fee, flags = _plan(0.5, 1_800.0, 1_800.0, 0.9, 3000.0, 1.0)
    assert flags == FLAG_ALL_COLLATERAL and seize == 0.5
    assert repay * 1.0 * 1.05 == pytest.approx(0.5 * 3000.0)


def test_engine_config_rejects_bad_values() -> None:
    with pytest.raises(InputError, match="arbitrage_half_life_s"):
        EngineConfig(arbitrage_half_life_s=-1.0)
    with pytest.raises(InputError, match="reference_impact_share"):
        EngineConfig(reference_impact_share=1.5)
    with pytest.raises(InputError, match="round_limit"):
        EngineConfig(round_limit=0)
    assert EngineConfig(liquidity_scale=math.inf).to_dict()["liquidity_scale"] == "inf"


# --------------------------------------------------------------------------- random books


def _book(
    rng: np.random.Generator,
    n_accounts: int,
    n_assets: int,
    *,
    hf_range: tuple[float, float] = (0.85, 2.0),
    single_collateral: bool = False,
    stable_debt: bool = False,
    dex_fee: float | None = None,
    pool_scale: float = 1.0,
    bare_share: float = 0.0,
) -> Book:
    """A random book; asset 0 is a stablecoin (price 1), the others volatile. A share
    ``bare_share`` of the accounts has its collateral disabled: debt with nothing behind it."""
    price = np.concatenate([[1.0], rng.uniform(5.0, 5000.0, n_assets - 1)])
    lt = rng.uniform(0.6, 0.88, n_assets)
    bonus = rng.uniform(0.02, 0.1, n_assets)
    coll = np.zeros((n_accounts, n_assets))
    debt = np.zeros((n_accounts, n_assets))
    for a in range(n_accounts):
        usd = math.exp(rng.uniform(math.log(200.0), math.log(200_000.0)))
        if single_collateral:
            held = [int(rng.integers(1, n_assets))]
        else:
            k = int(rng.integers(1, n_assets))
            held = [int(x) for x in rng.choice(n_assets, size=k, replace=False)]
        split = rng.dirichlet(np.ones(len(held)))
        coll[a, held] = usd * split / price[held]
        weighted = float((coll[a] * lt * price).sum())
        owe = [0] if stable_debt else [j for j in range(n_assets) if j not in held] or [0]
        k = 1 if stable_debt else int(rng.integers(1, len(owe) + 1))
        chosen = [int(x) for x in rng.choice(owe, size=k, replace=False)]
        dsplit = rng.dirichlet(np.ones(len(chosen)))
        hf = rng.uniform(*hf_range)
        debt[a, chosen] = weighted / hf * dsplit / price[chosen]
    pool_usd = rng.uniform(2e5, 5e6, n_assets) * pool_scale
    bare = rng.random(n_accounts) < bare_share
    return Book(
        accounts=np.array([f"0x{a:040x}" for a in range(n_accounts)]),
        assets=tuple(f"0x{0xA5:02x}{i:038x}" for i in range(n_assets)),
        symbols=tuple(["USDC"] + [f"V{i}" for i in range(1, n_assets)]),
        collateral=coll,
        debt=debt,
        collateral_enabled=(coll > 0) & ~bare[:, None],
        price_usd=price,
        ltv=lt - 0.05,
        liquidation_threshold=lt,
        liquidation_bonus=bonus,
        protocol_fee=rng.uniform(0.0, 0.2, n_assets),
        decimals=np.full(n_assets, 18, dtype=np.int64),
        dex_reserve_asset=pool_usd / price,
        dex_reserve_quote=pool_usd,
        dex_fee=np.full(n_assets, 0.003 if dex_fee is None else dex_fee),
    )


def _paths(
    rng: np.random.Generator, symbols: tuple[str, ...], n_paths: int, n_steps: int, vol: float
) -> PricePaths:
    n_assets = len(symbols)
    shocks = rng.standard_t(3, (n_paths, n_steps, n_assets)) * vol
    shocks[:, :, 0] *= 0.02  # the stablecoin barely moves
    mult = np.ones((n_paths, n_steps + 1, n_assets))
    mult[:, 1:, :] = np.exp(np.cumsum(shocks, axis=1))
    gas = rng.uniform(5.0, 300.0, (n_paths, n_steps + 1))
    per_asset = bool(rng.random() < 0.5)  # each asset's own feed, or one rule for all
    oracle = OracleSpec(
        deviation=None if per_asset else float(rng.choice([0.0, 0.005, 0.02])),
        heartbeat_s=None if per_asset else float(rng.choice([3600.0, 7200.0])),
        delay_s=float(rng.choice([0.0, 0.0, 3600.0])),
    )
    markets: list[tuple[str, AssetSpec]] = []
    if per_asset:
        for s in symbols:
            markets.append(
                (
                    s,
                    AssetSpec(
                        oracle_deviation=float(rng.choice([0.0, 0.005, 0.02])),
                        oracle_heartbeat_s=float(rng.choice([1800.0, 3600.0, 86400.0])),
                        daily_volume_usd=float(rng.choice([1e6, 1e8, 1e10])),
                    ),
                )
            )
    if n_assets >= 3 and rng.random() < 0.5:
        # the last asset priced as Aave prices an LST: its exchange rate x the feed of V1
        markets.append(
            (
                symbols[-1],
                AssetSpec(
                    pricing="exchange-rate",
                    rate_base=symbols[1],
                    rate_apr=float(rng.choice([0.0, 0.5, -0.2])),
                    rate_cap_apr=float(rng.choice([0.0, 0.2, 5.0])),
                ),
            )
        )
    return PricePaths("random", symbols, 3600.0, mult, gas, oracle, assets=tuple(markets))


def _assert_same(ref: CascadeOutput, fast: CascadeOutput) -> None:
    np.testing.assert_array_equal(ref.n_liquidations, fast.n_liquidations)
    np.testing.assert_array_equal(ref.rounds_limit_hits, fast.rounds_limit_hits)
    for name in (
        "shortfall_usd",
        "liquidated_usd",
        "protocol_fee_usd",
        "deficit_usd",
        "shortfall_by_asset",
        "worst_market",
    ):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=RTOL, err_msg=name)
    np.testing.assert_array_equal(ref.account_path, fast.account_path)
    np.testing.assert_array_equal(ref.account_index, fast.account_index)
    np.testing.assert_allclose(fast.account_shortfall_usd, ref.account_shortfall_usd, rtol=RTOL)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_accounts=st.integers(1, 25),
    # books of up to 3 assets have kc + kd <= 6 (loops run over the widest account's
    # entries); from 5 assets most are wider (loops run over each account's own, _FIXED_TRIPS)
    n_assets=st.integers(2, 6),
    n_paths=st.integers(1, 3),
    n_steps=st.integers(1, 5),
    vol=st.sampled_from([0.02, 0.08, 0.2]),
    scale=st.sampled_from([0.0, 0.02, 0.3, 1.0, math.inf]),
    gas_units=st.sampled_from([0.0, 600_000.0, 5_000_000.0]),
    half_life=st.sampled_from([0.0, 30.0, 3600.0, math.inf]),
    ref_share=st.sampled_from([0.0, 1.0]),
    ref_coef=st.sampled_from([1.0, 30.0]),
    round_limit=st.integers(1, 6),
    floor_hint=st.sampled_from([0.999, 0.97, 0.5]),
)
def test_fast_engine_equals_reference(
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
    ref_coef: float,
    round_limit: int,
    floor_hint: float,
) -> None:
    rng = np.random.default_rng(seed)
    book = _book(
        rng,
        n_accounts,
        n_assets,
        pool_scale=float(rng.choice([0.05, 1.0])),
        bare_share=float(rng.choice([0.0, 0.0, 0.2])),
    )
    paths = _paths(rng, book.symbols, n_paths, n_steps, vol)
    config = EngineConfig(
        gas_units=gas_units,
        liquidity_scale=scale,
        arbitrage_half_life_s=half_life,
        reference_impact_share=ref_share,
        reference_impact_coefficient=ref_coef,
        round_limit=round_limit,
        impact_floor_hint=floor_hint,
    )
    _assert_same(run_reference(book, paths, config), run_fast(book, paths, config))


@pytest.mark.parametrize("n_assets", [20, 70])
def test_fast_engine_equals_reference_on_wide_books(n_assets: int) -> None:
    # more assets than a 16-bit mask holds (the kernels' int64 variant), and more than the
    # 63 mask bits (assets from 62 on share one bit)
    rng = np.random.default_rng(n_assets)
    book = _book(rng, 40, n_assets, pool_scale=0.05)
    paths = _paths(rng, book.symbols, 3, 4, 0.15)
    config = EngineConfig(impact_floor_hint=0.999)
    ref = run_reference(book, paths, config)
    _assert_same(ref, run_fast(book, paths, config))
    assert ref.n_liquidations.sum() > 0


def test_fast_equals_reference_on_synthetic_book_with_trace() -> None:
    snap = synthetic_snapshot(300, seed=5)
    book = snap.book()
    paths = synthetic_paths(book.symbols, 6, 10, step_seconds=86400.0, seed=11)
    ref = run_reference(book, paths, trace=True)
    fast = run_fast(book, paths, trace=True)
    _assert_same(ref, fast)
    assert ref.n_liquidations.sum() > 0
    for name in ("trace_market", "trace_liquidated_usd", "trace_shortfall_usd"):
        np.testing.assert_allclose(getattr(fast, name), getattr(ref, name), rtol=RTOL)
    # the horizon's mark-to-market shortfall is the path's shortfall
    assert fast.trace_shortfall_usd is not None
    np.testing.assert_allclose(fast.trace_shortfall_usd[:, -1], fast.shortfall_usd, rtol=1e-12)
    # run_cascade dispatches on the config
    again = run_cascade(book, paths, EngineConfig(engine="reference"))
    np.testing.assert_array_equal(again.shortfall_usd, ref.shortfall_usd)


def test_fast_engine_refuses_more_assets_than_its_byte_indices_hold(monkeypatch) -> None:
    import simulator.cascade.fast as fast_module

    book = synthetic_snapshot(50, seed=5).book()
    paths = synthetic_paths(book.symbols, 2, 4, step_seconds=86400.0, seed=11)
    monkeypatch.setattr(fast_module, "_MAX_ASSETS", book.n_assets - 1)
    with pytest.raises(InputError, match=rf"{book.n_assets} assets.*at most.*run_reference"):
        run_fast(book, paths)


def test_round_limit_hits_are_counted() -> None:
    rng = np.random.default_rng(3)
    book = _book(rng, 40, 3, hf_range=(0.9, 1.05), pool_scale=0.02)
    paths = uniform_shock_paths(book.symbols, [[1.0, 0.7, 0.7]], gas_gwei=1.0)
    # instant arbitrage: the thin pools are back by the next block, and the accounts the
    # first round only took a bite of would pay again
    config = EngineConfig(round_limit=1, arbitrage_half_life_s=0.0)
    out = run_reference(book, paths, config)
    assert out.rounds_limit_hits.sum() >= 1
    _assert_same(out, run_fast(book, paths, config))


def test_default_round_limit_is_a_guard_cascades_stay_below() -> None:
    """Thin pools (depth 2% of the usual) that arbitrage refills at once make long cascades
    (a bite per block); they end by themselves under the default guard, within the hour's
    blocks: no hit, and the same numbers as with no practical limit."""
    rng = np.random.default_rng(3)
    book = _book(rng, 60, 3, hf_range=(0.98, 1.2), pool_scale=0.02)
    paths = uniform_shock_paths(book.symbols, [[1.0, 0.8, 0.75], [0.97, 0.9, 0.85]], gas_gwei=1.0)
    # on the scenario's hourly grid (no finer clock): the hour's 300 blocks in one step
    config = EngineConfig(arbitrage_half_life_s=0.0, clock_seconds=math.inf)
    assert config.round_limit >= 1000
    ref = run_reference(book, paths, config, record=True)
    assert ref.rounds_limit_hits.sum() == 0
    assert max(e.round for e in ref.events) >= 100  # a real multi-block cascade
    unlimited = dataclasses.replace(config, round_limit=100_000)
    _assert_same(ref, run_reference(book, paths, unlimited))
    _assert_same(ref, run_fast(book, paths, config))
    # a step of 20 blocks: the cascade goes on at the next step, and that is no hit
    short = dataclasses.replace(paths, step_seconds=240.0)
    cut = run_reference(book, short, config, record=True)
    assert cut.rounds_limit_hits.sum() == 0 and max(e.round for e in cut.events) == 19
    _assert_same(cut, run_fast(book, short, config))


# --------------------------------------------------------------------------- invariants


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_steps=st.integers(1, 4))
def test_value_conserved_and_no_negative_balances(seed: int, n_steps: int) -> None:
    rng = np.random.default_rng(seed)
    book = _book(rng, 20, 3)
    paths = _paths(rng, book.symbols, 2, n_steps, 0.15)
    out = run_reference(book, paths, EngineConfig(gas_units=0.0), record=True)
    for e in out.events:
        bonus = book.liquidation_bonus[e.collateral_asset]
        fee = book.protocol_fee[e.collateral_asset]
        # debt repaid x (1 + bonus) = collateral seized, at the oracle prices it ran at
        assert e.repaid * e.price_debt * (1 + bonus) == pytest.approx(
            e.seized * e.price_collateral, rel=1e-12
        )
        # the treasury's fee is its share of the premium; the liquidator gets the rest
        assert e.protocol_fee == pytest.approx((e.seized - e.seized / (1 + bonus)) * fee, rel=1e-12)
        assert e.collateral_after >= 0.0 and e.debt_after >= 0.0
        assert e.repaid > 0.0 and e.seized > 0.0 and e.profit_usd > 0.0
    for arr in (out.shortfall_usd, out.liquidated_usd, out.deficit_usd, out.protocol_fee_usd):
        assert (arr >= 0).all()
    assert (out.deficit_usd <= out.shortfall_usd * (1 + 1e-12)).all()


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), a=st.floats(0.3, 1.0), b=st.floats(0.3, 1.0))
def test_deeper_shock_never_gives_less_shortfall(seed: int, a: float, b: float) -> None:
    rng = np.random.default_rng(seed)
    book = _book(rng, 25, 3, hf_range=(1.0, 2.0), stable_debt=True, dex_fee=0.0)
    shallow, deep = max(a, b), min(a, b)
    paths = uniform_shock_paths(book.symbols, [[1.0, shallow, shallow], [1.0, deep, deep]])
    config = EngineConfig(gas_units=0.0, liquidity_scale=math.inf, round_limit=1000)
    out = run_reference(book, paths, config)
    assert out.shortfall_usd[1] >= out.shortfall_usd[0] * (1 - 1e-12) - 1e-9
    _assert_same(out, run_fast(book, paths, config))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), margin=st.floats(0.0, 0.2))
def test_small_drop_with_infinite_liquidity_and_no_gas_leaves_no_bad_debt(
    seed: int, margin: float
) -> None:
    rng = np.random.default_rng(seed)
    book = _book(rng, 30, 3, hf_range=(1.0, 3.0), single_collateral=True, stable_debt=True)
    cover = book.liquidation_threshold * (1 + book.liquidation_bonus)
    assert (cover < 1).all()
    # a drop small enough: HF stays >= LT x (1 + bonus) for every account, so a full
    # liquidation is always covered by the collateral
    drop = float(cover.max()) + margin * (1 - float(cover.max()))
    paths = uniform_shock_paths(book.symbols, [[1.0, drop, drop]], n_steps=3)
    config = EngineConfig(gas_units=0.0, liquidity_scale=math.inf, round_limit=1000)
    out = run_reference(book, paths, config)
    assert out.shortfall_usd[0] == 0.0 and out.deficit_usd[0] == 0.0
    _assert_same(out, run_fast(book, paths, config))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), shock=st.floats(0.05, 1.5))
def test_zero_liquidity_gives_static_bad_debt(seed: int, shock: float) -> None:
    rng = np.random.default_rng(seed)
    book = _book(rng, 30, 3)
    mult = np.array([1.0, shock, min(1.0, shock * 1.3)])
    paths = uniform_shock_paths(book.symbols, [mult], n_steps=2)
    config = EngineConfig(liquidity_scale=0.0)
    out = run_fast(book, paths, config)
    price = book.price_usd * mult
    static = np.maximum(0.0, book.debt @ price - book.effective_collateral() @ price).sum()
    assert out.n_liquidations[0] == 0
    assert out.shortfall_usd[0] == pytest.approx(static, rel=1e-12, abs=1e-9)
    _assert_same(run_reference(book, paths, config), out)


def test_gas_spike_leaves_small_accounts_to_rot() -> None:
    rng = np.random.default_rng(9)
    book = _book(rng, 30, 3, hf_range=(0.97, 0.99), stable_debt=True)
    paths = uniform_shock_paths(book.symbols, [[1.0, 0.8, 0.8]] * 2)
    cheap = run_reference(book, paths, EngineConfig(gas_units=0.0))
    dear = run_reference(
        book,
        PricePaths(
            paths.scenario,
            paths.symbols,
            paths.step_seconds,
            paths.multipliers,
            np.full_like(paths.gas_gwei, 1e6),
            paths.oracle,
        ),
        EngineConfig(gas_units=1_000_000.0),
    )
    # gas at $3M a call: nobody is worth liquidating, the book stays as the shock left it
    assert cheap.n_liquidations.sum() > 0
    assert dear.n_liquidations.sum() == 0
