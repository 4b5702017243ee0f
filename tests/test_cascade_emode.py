"""Cascade engines with e-mode classes and interest accrual (issue 15, items 4 and 5)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cascade import _assert_same, _book, _paths

from simulator.cascade import EngineConfig
from simulator.cascade.assets import resolve_feeds
from simulator.cascade.fast import run_fast
from simulator.cascade.reference import run_reference
from simulator.errors import InputError
from simulator.scenarios.paths import AssetSpec, PricePaths
from simulator.snapshot import SECONDS_PER_YEAR, Book
from simulator.synthetic import synthetic_paths, synthetic_snapshot, uniform_shock_paths


def _with_emode(
    rng: np.random.Generator,
    book: Book,
    n_classes: int,
    *,
    price_source: bool,
    rates: bool,
    hf_range: tuple[float, float] = (0.9, 1.3),
) -> Book:
    """``book`` with ``n_classes - 1`` e-mode classes drawn in: each class lifts the LT
    (0.88-0.97) and sets its own bonus for a random subset of the assets (its bitmap), may
    price them by a category price source (ratio 0.9-1.1), and about half of the accounts
    join one; those accounts' debt is rescaled to an HF in ``hf_range`` at their class's
    parameters. Rates: supply 0-10% and borrow 0-60% a year when ``rates``."""
    n_assets = book.n_assets
    lt = np.repeat(book.liquidation_threshold[None, :], n_classes, axis=0)
    bonus = np.repeat(book.liquidation_bonus[None, :], n_classes, axis=0)
    ltv = np.repeat(book.ltv[None, :], n_classes, axis=0)
    price = np.repeat(book.price_usd[None, :], n_classes, axis=0)
    for c in range(1, n_classes):
        member = rng.random(n_assets) < 0.6
        member[int(rng.integers(0, n_assets))] = True
        lt[c, member] = rng.uniform(0.88, 0.97, int(member.sum()))
        # Aave requires LT x (1 + bonus) < 1
        room = 0.999 / lt[c, member] - 1.0
        bonus[c, member] = rng.uniform(0.2, 1.0, int(member.sum())) * room
        ltv[c, member] = lt[c, member] - 0.02
        if price_source and rng.random() < 0.5:
            price[c, member] *= rng.uniform(0.9, 1.1, int(member.sum()))
    account_class = np.where(
        rng.random(book.n_accounts) < 0.5, rng.integers(1, max(n_classes, 2), book.n_accounts), 0
    )
    account_class = np.minimum(account_class, n_classes - 1).astype(np.int64)
    out = dataclasses.replace(
        book,
        account_class=account_class,
        class_category=np.arange(n_classes, dtype=np.int64) * 7,
        class_ltv=ltv,
        class_lt=lt,
        class_bonus=bonus,
        class_price_usd=price,
        supply_rate=rng.uniform(0.0, 0.1, n_assets) if rates else np.zeros(n_assets),
        borrow_rate=rng.uniform(0.0, 0.6, n_assets) if rates else np.zeros(n_assets),
    )
    hf = out.health_factor()
    target = rng.uniform(*hf_range, book.n_accounts)
    scale = np.where(
        (account_class > 0) & np.isfinite(hf) & (hf > 0), hf / np.where(hf > 0, target, 1.0), 1.0
    )
    return dataclasses.replace(out, debt=out.debt * scale[:, None])


def _with_step(paths: PricePaths, step_seconds: float) -> PricePaths:
    return dataclasses.replace(paths, step_seconds=step_seconds)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_accounts=st.integers(1, 25),
    n_assets=st.integers(2, 6),
    n_classes=st.integers(1, 4),
    n_paths=st.integers(1, 3),
    n_steps=st.integers(1, 5),
    step_seconds=st.sampled_from([3600.0, 86400.0, 10 * 86400.0]),
    vol=st.sampled_from([0.02, 0.08, 0.2]),
    scale=st.sampled_from([0.0, 0.02, 0.3, 1.0, math.inf]),
    gas_units=st.sampled_from([0.0, 600_000.0, 5_000_000.0]),
    half_life=st.sampled_from([0.0, 30.0, 3600.0, math.inf]),
    ref_coef=st.sampled_from([1.0, 30.0]),
    round_limit=st.integers(1, 6),
    floor_hint=st.sampled_from([0.999, 0.97, 0.5]),
    price_source=st.booleans(),
    accrual=st.booleans(),
)
def test_fast_engine_equals_reference_with_emode_and_accrual(
    seed: int,
    n_accounts: int,
    n_assets: int,
    n_classes: int,
    n_paths: int,
    n_steps: int,
    step_seconds: float,
    vol: float,
    scale: float,
    gas_units: float,
    half_life: float,
    ref_coef: float,
    round_limit: int,
    floor_hint: float,
    price_source: bool,
    accrual: bool,
) -> None:
    rng = np.random.default_rng(seed)
    base = _book(
        rng,
        n_accounts,
        n_assets,
        pool_scale=float(rng.choice([0.05, 1.0])),
        bare_share=float(rng.choice([0.0, 0.0, 0.2])),
    )
    book = _with_emode(rng, base, n_classes, price_source=price_source, rates=True)
    paths = _with_step(_paths(rng, book.symbols, n_paths, n_steps, vol), step_seconds)
    config = EngineConfig(
        gas_units=gas_units,
        liquidity_scale=scale,
        arbitrage_half_life_s=half_life,
        reference_impact_coefficient=ref_coef,
        round_limit=round_limit,
        impact_floor_hint=floor_hint,
        accrual=accrual,
    )
    _assert_same(run_reference(book, paths, config), run_fast(book, paths, config))


def test_fast_equals_reference_on_wide_emode_book() -> None:
    # 20 assets: the kernels' int64 mask variant, with classes and accrual
    rng = np.random.default_rng(20)
    book = _with_emode(rng, _book(rng, 40, 20, pool_scale=0.05), 3, price_source=True, rates=True)
    paths = _with_step(_paths(rng, book.symbols, 3, 4, 0.15), 86400.0)
    config = EngineConfig(impact_floor_hint=0.999)
    ref = run_reference(book, paths, config)
    _assert_same(ref, run_fast(book, paths, config))
    assert ref.n_liquidations.sum() > 0


def _looper_book(hf: float, *, borrow_rate: float = 0.0, supply_rate: float = 0.0) -> Book:
    """One e-mode looper: 100 LST (price 1.2) against WETH debt (price 1) at category LT
    0.95 and bonus 1%, health factor ``hf`` at the category's parameters (the reserve LT
    0.81 would read it far below 1); deep pools."""
    lt, cat_lt, cat_bonus = np.array([0.83, 0.81]), 0.95, 0.01
    price = np.array([1.0, 1.2])
    coll = np.array([[0.0, 100.0]])
    debt = np.array([[100.0 * 1.2 * cat_lt / hf, 0.0]])
    return Book(
        accounts=np.array(["0x" + "11" * 20]),
        assets=("0x" + "aa" * 20, "0x" + "bb" * 20),
        symbols=("WETH", "wstETH"),
        collateral=coll,
        debt=debt,
        collateral_enabled=coll > 0,
        price_usd=price,
        ltv=lt - 0.03,
        liquidation_threshold=lt,
        liquidation_bonus=np.array([0.05, 0.06]),
        protocol_fee=np.array([0.1, 0.1]),
        decimals=np.array([18, 18]),
        dex_reserve_asset=np.array([1e9, 1e9]),
        dex_reserve_quote=np.array([1e9, 1.2e9]),
        dex_fee=np.array([0.0, 0.0]),
        account_class=np.array([1]),
        class_category=np.array([0, 1]),
        class_ltv=np.array([lt - 0.03, [0.93, 0.93]]),
        class_lt=np.array([lt, [cat_lt, cat_lt]]),
        class_bonus=np.array([[0.05, 0.06], [cat_bonus, cat_bonus]]),
        class_price_usd=np.array([price, price]),
        supply_rate=np.array([0.0, supply_rate]),
        borrow_rate=np.array([borrow_rate, 0.0]),
    )


def _flat(book: Book, n_steps: int, step_seconds: float) -> PricePaths:
    paths = uniform_shock_paths(book.symbols, [[1.0] * book.n_assets], n_steps=n_steps)
    return _with_step(paths, step_seconds)


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_emode_looper_is_safe_at_its_category_lt(engine: str) -> None:
    book = _looper_book(1.05)
    assert book.health_factor()[0] == pytest.approx(1.05)
    config = EngineConfig(engine=engine, gas_units=0.0)
    from simulator.cascade import run_cascade

    calm = run_cascade(book, _flat(book, 3, 3600.0), config)
    assert calm.n_liquidations.sum() == 0 and calm.shortfall_usd[0] == 0.0
    # read at the reserve's LT it would be liquidated at once
    plain = dataclasses.replace(book, account_class=np.array([0]))
    assert plain.health_factor()[0] < 1.0
    assert run_cascade(plain, _flat(plain, 3, 3600.0), config).n_liquidations.sum() > 0
    # a 7% market discount of the LST: Aave prices wstETH by its exchange rate times the
    # ETH feed (CAPO), so the discount does not touch the HF and nobody is liquidated
    discount = uniform_shock_paths(book.symbols, [[1.0, 0.93]])
    assert run_cascade(book, discount, config).n_liquidations.sum() == 0
    # priced by a market feed instead, the discount takes it below 1 at the category LT:
    # liquidated at the category's bonus (1%), not the reserve's (6%)
    market = dataclasses.replace(discount, assets=(("wstETH", AssetSpec(pricing="market")),))
    ref = run_reference(book, market, config, record=True)
    assert ref.events and ref.events[0].seized == pytest.approx(
        ref.events[0].repaid * ref.events[0].price_debt * 1.01 / ref.events[0].price_collateral
    )
    _assert_same(ref, run_fast(book, market, config))


def test_category_price_source_scales_both_sides() -> None:
    # a v3.0 category price source pricing the LST 3% below its own feed lowers the HF by 3%
    book = _looper_book(1.02)
    source = dataclasses.replace(book, class_price_usd=np.array([[1.0, 1.2], [1.0, 1.2 * 0.97]]))
    assert source.health_factor()[0] == pytest.approx(1.02 * 0.97)
    config = EngineConfig(gas_units=0.0)
    paths = _flat(book, 1, 3600.0)
    out = run_reference(source, paths, config, record=True)
    assert out.n_liquidations[0] >= 1
    assert out.events[0].price_collateral == pytest.approx(1.2 * 0.97)
    _assert_same(out, run_fast(source, paths, config))
    assert run_reference(book, paths, config).n_liquidations[0] == 0


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_interest_alone_makes_a_looper_liquidatable(engine: str) -> None:
    # HF 1.004 and WETH borrowed at 20% a year: after 10 days the debt grew by ~0.55%, more
    # than the margin, at flat prices
    book = _looper_book(1.004, borrow_rate=0.2)
    paths = _flat(book, 10, 86400.0)
    from simulator.cascade import run_cascade

    on = run_cascade(book, paths, EngineConfig(engine=engine, gas_units=0.0))
    off = run_cascade(book, paths, EngineConfig(engine=engine, gas_units=0.0, accrual=False))
    assert off.n_liquidations[0] == 0
    assert on.n_liquidations[0] >= 1
    ref = run_reference(book, paths, EngineConfig(gas_units=0.0), record=True)
    first = ref.events[0]
    # the day its HF crosses 1: debt x growth(t) > collateral x LT x the LST's exchange
    # rate growth (staking yield, priced as Aave's CAPO adapter does), with Aave's compounding
    feeds = resolve_feeds(book.symbols, paths.oracle)
    assert feeds.rate_base[1] == 0 and feeds.rate_apr[1] > 0

    def hf(t: float) -> float:
        return 1.004 * feeds.rate_growth(t)[1] / book.accrual_factors(t)[1][0]

    # on the scenario's daily grid (the default clock): the first day after the crossing
    assert hf(first.time_s) < 1.0 <= hf(first.time_s - 86400.0)
    assert first.step == math.ceil(first.time_s / 86400.0)
    # the repayment in tokens is the scaled repayment grown by the index
    growth = book.accrual_factors(first.time_s)[1]
    assert first.debt_after + first.repaid == pytest.approx(book.debt[0, 0] * growth[0])


def test_accrued_balances_price_the_horizon_shortfall() -> None:
    # no liquidity: nothing is liquidated, the horizon shortfall is the static one on
    # balances grown by their indexes over the whole horizon
    rng = np.random.default_rng(4)
    book = _with_emode(rng, _book(rng, 30, 3), 2, price_source=False, rates=True)
    mult = np.array([1.0, 0.6, 0.7])
    n_steps, step = 5, 86400.0 * 6
    paths = _with_step(uniform_shock_paths(book.symbols, [mult], n_steps=n_steps), step)
    out = run_fast(book, paths, EngineConfig(liquidity_scale=0.0))
    s_g, d_g = book.accrual_factors(n_steps * step)
    price = book.price_usd * mult
    coll = book.effective_collateral() * s_g
    debt = book.debt * d_g
    static = np.maximum(0.0, debt @ price - coll @ price).sum()
    assert out.n_liquidations[0] == 0
    assert out.shortfall_usd[0] == pytest.approx(static, rel=1e-12)
    no_accrual = run_fast(book, paths, EngineConfig(liquidity_scale=0.0, accrual=False))
    assert no_accrual.shortfall_usd[0] < out.shortfall_usd[0]
    _assert_same(run_reference(book, paths, EngineConfig(liquidity_scale=0.0)), out)


def test_accrual_factors_follow_aave_formulas() -> None:
    book = _looper_book(1.1, borrow_rate=0.1, supply_rate=0.03)
    s, d = book.accrual_factors(30 * 86400.0)
    x = 30 * 86400.0 / SECONDS_PER_YEAR
    assert s[1] == pytest.approx(1 + 0.03 * x, rel=1e-15)
    assert d[0] == pytest.approx(math.exp(0.1 * x), rel=1e-7)  # 3-term expansion of e^x


def test_synthetic_emode_book_runs_the_same_in_both_engines() -> None:
    snap = synthetic_snapshot(400, seed=3, emode_debt_share=1 / 3)
    book = snap.book()
    loopers = book.account_class > 0
    debt_usd = book.debt_usd()
    assert debt_usd[loopers].sum() / debt_usd.sum() == pytest.approx(1 / 3, rel=0.02)
    hf = book.health_factor()[loopers]
    assert hf.min() >= 1.01 - 1e-9 and hf.max() <= 1.10 + 1e-9
    paths = synthetic_paths(book.symbols, 6, 24, seed=4, tracks={"wstETH": ("WETH", 0.003)})
    ref = run_reference(book, paths)
    _assert_same(ref, run_fast(book, paths))


def test_fast_engine_refuses_too_many_classes(monkeypatch) -> None:
    import simulator.cascade.fast as fast_module

    book = _looper_book(1.05)
    monkeypatch.setattr(fast_module, "_MAX_CLASSES", 1)
    with pytest.raises(InputError, match="e-mode classes"):
        run_fast(book, _flat(book, 1, 3600.0))


def test_cli_no_accrual_is_recorded(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from keeper.cli import main
    from simulator.results import load_results

    synthetic_snapshot(300, seed=2, emode_debt_share=1 / 3).save(tmp_path / "snap")
    argv = ["simulate", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    argv += ["--paths", "20"]
    assert main([*argv, "--out", str(tmp_path / "on")]) == 0
    assert main([*argv, "--no-accrual", "--out", str(tmp_path / "off")]) == 0
    capsys.readouterr()
    on, off = load_results(tmp_path / "on").summary, load_results(tmp_path / "off").summary
    assert on["engine"]["accrual"] is True and off["engine"]["accrual"] is False
    assert "--no-accrual" in off["command"] and "--no-accrual" not in on["command"]
