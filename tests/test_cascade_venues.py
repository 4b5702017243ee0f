"""The engines on each venue kind (issue 16 item 4): liquidators sell into Uniswap V3
segments and depth curves as they do into constant-product pools, and both engines agree."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cascade import _assert_same, _book, _paths

from simulator.cascade import EngineConfig
from simulator.cascade.fast import run_fast
from simulator.cascade.reference import run_reference
from simulator.snapshot import Book
from simulator.venues import KIND_CONSTANT_PRODUCT, KIND_CURVE, KIND_V3, Venues, curve_rows, v3_rows


def _with_venues(rng: np.random.Generator, book: Book) -> Book:
    """Each volatile asset's venue drawn: a V3 pool (liquidity in ranges around the price),
    a depth curve (aggregator-style points) or the book's constant-product pool."""
    n = book.n_assets
    kinds = np.full(n, KIND_CONSTANT_PRODUCT, dtype=np.int64)
    rows = {}
    for j in range(1, n):
        price = float(book.price_usd[j])
        usd = float(book.dex_reserve_quote[j])
        choice = int(rng.integers(0, 3))
        if choice == 1:
            # sqrt-price breakpoints from 0.3x to 3x the price, liquidity sized to the pool
            s = math.sqrt(price)
            xs = [s * f for f in (0.55, 0.8, 0.95, 1.05, 1.3, 1.75)]
            liquidity = usd / s
            ys = [liquidity * w for w in (0.5, 1.0, 3.0, 1.0, 0.5)] + [0.0]
            rows[j] = v3_rows(xs, ys)
            kinds[j] = KIND_V3
        elif choice == 2:
            rows[j] = curve_rows([[usd * 0.01, 0.002], [usd * 0.1, 0.02], [usd, 0.15]])
            kinds[j] = KIND_CURVE
    depth = np.sqrt(book.dex_reserve_asset * book.dex_reserve_quote)
    return dataclasses.replace(book, venues=Venues.from_rows(kinds, depth, book.dex_fee, rows))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_accounts=st.integers(1, 25),
    n_assets=st.integers(2, 5),
    n_steps=st.integers(1, 4),
    vol=st.sampled_from([0.05, 0.2]),
    scale=st.sampled_from([0.05, 1.0]),
    half_life=st.sampled_from([0.0, 60.0, math.inf]),
)
def test_fast_engine_equals_reference_on_every_venue_kind(
    seed: int,
    n_accounts: int,
    n_assets: int,
    n_steps: int,
    vol: float,
    scale: float,
    half_life: float,
) -> None:
    rng = np.random.default_rng(seed)
    book = _with_venues(rng, _book(rng, n_accounts, n_assets, pool_scale=0.3))
    paths = _paths(rng, book.symbols, 2, n_steps, vol)
    config = EngineConfig(liquidity_scale=scale, arbitrage_half_life_s=half_life)
    _assert_same(run_reference(book, paths, config), run_fast(book, paths, config))


def test_liquidators_sell_into_the_venue_the_snapshot_names() -> None:
    # one book, its WETH-like asset on three venues of about the same depth at the price:
    # the liquidations differ, and each sale is paid by that venue's own curve
    rng = np.random.default_rng(5)
    base = _book(rng, 40, 3, hf_range=(0.9, 1.1), pool_scale=0.05)
    shock = np.ones((1, 2, 3))
    shock[0, 1, 1:] = 0.8
    from simulator.scenarios.paths import OracleSpec, PricePaths

    paths = PricePaths("t", base.symbols, 3600.0, shock, np.full((1, 2), 5.0), OracleSpec())
    outs = {}
    for kind in (KIND_CONSTANT_PRODUCT, KIND_V3, KIND_CURVE):
        kinds = np.full(3, KIND_CONSTANT_PRODUCT, dtype=np.int64)
        rows = {}
        if kind != KIND_CONSTANT_PRODUCT:
            price, usd = float(base.price_usd[1]), float(base.dex_reserve_quote[1])
            kinds[1] = kind
            if kind == KIND_V3:
                s = math.sqrt(price)
                rows[1] = v3_rows(
                    [s * 0.5, s * 0.9, s * 1.1, s * 2.0], [usd / s, 4 * usd / s, usd / s, 0.0]
                )
            else:
                rows[1] = curve_rows([[usd * 0.02, 0.01], [usd * 0.2, 0.08], [usd, 0.3]])
        depth = np.sqrt(base.dex_reserve_asset * base.dex_reserve_quote)
        book = dataclasses.replace(base, venues=Venues.from_rows(kinds, depth, base.dex_fee, rows))
        ref = run_reference(book, paths, EngineConfig(), record=True)
        _assert_same(ref, run_fast(book, paths, EngineConfig()))
        outs[kind] = ref
        for e in ref.events:
            if e.collateral_asset == 1:
                assert e.proceeds_usd > 0.0
    liquidated = {k: float(v.liquidated_usd[0]) for k, v in outs.items()}
    assert all(v > 0 for v in liquidated.values())
    assert len({round(v, 6) for v in liquidated.values()}) == 3  # each venue its own answer
