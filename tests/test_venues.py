"""Venue mathematics (issue 16, item 4): constant product, Uniswap V3 segments, depth curves."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal, getcontext

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.cascade import rules
from simulator.venues import (
    KIND_CONSTANT_PRODUCT,
    KIND_CURVE,
    KIND_V3,
    VenueError,
    Venues,
    amount_at_marginal,
    curve_rows,
    depth_at,
    marginal,
    price_factor,
    proceeds,
    v3_rows,
)

NO_ROW = np.zeros(1)

# A V3 pool around 2000 USD: three positions overlap, a gap between 1500 and 1600.
V3_PRICES = [1000.0, 1500.0, 1600.0, 1900.0, 2000.0, 2100.0, 2500.0, 3000.0]
V3_LIQ = [4e4, 0.0, 1e5, 3e5, 2.5e5, 8e4, 1e4, 0.0]
V3_XS, V3_YS = v3_rows([math.sqrt(p) for p in V3_PRICES], V3_LIQ)
V3_N = len(V3_XS)

CURVE_XS, CURVE_YS = curve_rows([[1e6, 0.002], [1e7, 0.01], [5e7, 0.05]])


def v3(ref: float, inv: float, fee: float, amount: float) -> float:
    return proceeds(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, ref, inv, fee, amount)


def v3_marg(ref: float, inv: float, fee: float, amount: float) -> float:
    return marginal(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, ref, inv, fee, amount)


def curve(ref: float, inv: float, fee: float, amount: float) -> float:
    return proceeds(KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, inv, fee, amount)


def curve_marg(ref: float, inv: float, fee: float, amount: float) -> float:
    return marginal(KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, inv, fee, amount)


# -- constant product equals the cascade's rules ----------------------------------------

depths = st.floats(1.0, 1e9)
refs = st.floats(0.01, 1e5)
amounts = st.floats(0.0, 1e7)
fees = st.sampled_from([0.0, 0.0005, 0.003, 0.01])


@settings(max_examples=300, deadline=None)
@given(depths, refs, amounts, fees, amounts)
def test_constant_product_equals_rules(depth, ref, inv, fee, amount):
    args = (KIND_CONSTANT_PRODUCT, depth, NO_ROW, NO_ROW, 0, ref, inv, fee)
    assert proceeds(*args, amount) == rules.sale_proceeds(depth, inv, ref, fee, amount)
    assert marginal(*args, amount) == rules.venue_marginal(depth, inv, ref, fee, amount)
    assert price_factor(*args) == rules.impact_factor(depth, inv, ref)
    target = 0.5 * rules.venue_marginal(depth, inv, ref, fee, 0.0)
    assert amount_at_marginal(*args, target) == rules.venue_amount_at_marginal(
        depth, inv, ref, fee, target
    )


def test_constant_product_edges():
    for depth in (0.0, math.inf):
        args = (KIND_CONSTANT_PRODUCT, depth, NO_ROW, NO_ROW, 0, 2000.0, 5.0, 0.003)
        assert proceeds(*args, 3.0) == rules.sale_proceeds(depth, 5.0, 2000.0, 0.003, 3.0)
        assert marginal(*args, 3.0) == rules.venue_marginal(depth, 5.0, 2000.0, 0.003, 3.0)
        assert price_factor(*args) == rules.impact_factor(depth, 5.0, 2000.0)


def test_constant_product_depth_at_moves_spot_by_the_impact():
    depth, ref = 1e6, 2500.0
    for impact in (0.02, 0.05, 0.10):
        usd = depth_at(KIND_CONSTANT_PRODUCT, depth, NO_ROW, NO_ROW, 0, ref, impact)
        factor = rules.impact_factor(depth, usd / ref, ref)
        assert factor == pytest.approx(1.0 - impact, rel=1e-12)


# -- Uniswap V3: an independent implementation of the whitepaper ------------------------


def _v3_direct(ref: float, net: float) -> Decimal:
    """Output of selling ``net`` tokens from ``ref`` by the virtual-reserves form of the
    whitepaper (section 6.2: within a range x_v = L / sqrt P, y_v = L sqrt P, x_v y_v = L^2),
    in 50-digit decimals, one tick range at a time."""
    getcontext().prec = 50
    bounds = [Decimal(p).sqrt() for p in V3_PRICES]
    sqrt_p = Decimal(ref).sqrt()
    left = Decimal(net)
    out = Decimal(0)
    for k in range(len(bounds) - 2, -1, -1):
        lower, upper = bounds[k], bounds[k + 1]
        if lower >= sqrt_p:
            continue
        sqrt_p = min(sqrt_p, upper)  # nothing to sell into above the read range
        liq = Decimal(V3_LIQ[k])
        if liq == 0:
            sqrt_p = lower
            continue
        x_v, y_v = liq / sqrt_p, liq * sqrt_p
        x_lower = liq / lower  # virtual token reserve when the range is used up
        if x_v + left <= x_lower:
            return out + y_v - liq * liq / (x_v + left)
        out += y_v - liq * lower
        left -= x_lower - x_v
        sqrt_p = lower
    return out


@settings(max_examples=300, deadline=None)
@given(st.floats(900.0, 3500.0), st.floats(0.0, 800.0), st.floats(0.0, 800.0), fees)
def test_v3_matches_the_whitepaper_across_ticks(ref, inv, amount, fee):
    got = v3(ref, inv, fee, amount)
    want = _v3_direct(ref, (inv + amount) * (1 - fee)) - _v3_direct(ref, inv * (1 - fee))
    assert got == pytest.approx(float(want), rel=1e-9, abs=1e-6)


def test_v3_crosses_every_segment_and_stops_below_the_range():
    # everything the range holds below 2000: the sum of L (sqrt Pu - sqrt Pl) per segment
    total_usd = sum(
        V3_LIQ[k] * (math.sqrt(V3_PRICES[k + 1]) - math.sqrt(V3_PRICES[k])) for k in range(4)
    )
    total_tokens = sum(
        V3_LIQ[k] * (1 / math.sqrt(V3_PRICES[k]) - 1 / math.sqrt(V3_PRICES[k + 1]))
        for k in range(4)
    )
    assert v3(2000.0, 0.0, 0.0, total_tokens * (1 + 1e-9)) == pytest.approx(total_usd, rel=1e-12)
    # beyond the read range: proceeds stop growing, marginal and price are 0
    assert v3(2000.0, 0.0, 0.0, 10 * total_tokens) == pytest.approx(total_usd, rel=1e-12)
    assert v3_marg(2000.0, 0.0, 0.0, 2 * total_tokens) == 0.0
    assert price_factor(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, 2000.0, 2 * total_tokens, 0.0) == 0.0
    assert v3(900.0, 0.0, 0.003, 5.0) == 0.0  # reference below the range


def test_v3_gap_and_above_range():
    # inside the 1500-1600 gap the next token already trades at 1500
    assert v3_marg(1550.0, 0.0, 0.0, 0.0) == pytest.approx(1500.0, rel=1e-12)
    assert price_factor(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, 1550.0, 0.0, 0.0) == 1.0
    # a reference above the range: the first token jumps to its top (3000)
    assert v3_marg(4000.0, 0.0, 0.0, 0.0) == pytest.approx(3000.0, rel=1e-12)
    assert v3(4000.0, 0.0, 0.0, 1.0) == pytest.approx(v3(3000.0, 0.0, 0.0, 1.0), rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.floats(900.0, 3500.0), st.floats(0.0, 500.0), st.floats(0.0, 500.0), fees)
def test_v3_additive_marginal_falls_and_factor_is_the_pool_price(ref, inv, amount, fee):
    whole = v3(ref, inv, fee, amount + 7.0)
    parts = v3(ref, inv, fee, amount) + v3(ref, inv + amount, fee, 7.0)
    assert whole == pytest.approx(parts, rel=1e-10, abs=1e-7)
    assert v3_marg(ref, inv, fee, amount) >= v3_marg(ref, inv, fee, amount + 7.0)
    # the derivative: a small extra sale pays marginal x size (same segment)
    h = 1e-4
    m = v3_marg(ref, inv, fee, amount)
    assert v3(ref, inv + amount, fee, h) == pytest.approx(m * h, rel=1e-3, abs=1e-9)
    f = price_factor(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, ref, inv, fee)
    assert 0.0 <= f <= 1.0
    if inv > 0 and f > 0:  # the pool's price after the inventory, if inside liquidity
        assert f * ref * (1 - fee) >= v3_marg(ref, inv, fee, 0.0) * (1 - 1e-12)


@settings(max_examples=200, deadline=None)
@given(st.floats(900.0, 3500.0), st.floats(0.0, 300.0), st.floats(100.0, 3500.0), fees)
def test_v3_amount_at_marginal_inverts_marginal(ref, inv, target, fee):
    a = amount_at_marginal(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, ref, inv, fee, target)
    assert math.isfinite(a) and a >= 0.0
    if a > 0:
        assert v3_marg(ref, inv, fee, a * (1 - 1e-9)) > target * (1 - 1e-9)
        assert v3_marg(ref, inv, fee, a * (1 + 1e-9) + 1e-12) <= target * (1 + 1e-9)


def test_v3_depth_at_moves_spot_price():
    for impact in (0.02, 0.05, 0.10):
        usd = depth_at(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, 2000.0, impact)
        f = price_factor(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, 2000.0, usd / 2000.0, 0.0)
        assert f == pytest.approx(1.0 - impact, rel=1e-12)
    # below the range: unknown
    assert math.isnan(depth_at(KIND_V3, 0.0, V3_XS, V3_YS, V3_N, 1050.0, 0.10))


def test_v3_rows_validation():
    with pytest.raises(VenueError, match="increasing"):
        v3_rows([2.0, 1.0], [1.0, 0.0])
    with pytest.raises(VenueError, match="must be 0"):
        v3_rows([1.0, 2.0], [1.0, 1.0])
    with pytest.raises(VenueError, match=">= 0"):
        v3_rows([1.0, 2.0, 3.0], [-1.0, 1.0, 0.0])


# -- depth curves ------------------------------------------------------------------------


def test_curve_reproduces_its_points_as_average_impact():
    ref = 3000.0
    for size, impact in [(1e6, 0.002), (1e7, 0.01), (5e7, 0.05)]:
        got = curve(ref, 0.0, 0.0, size / ref)
        assert got == pytest.approx(size * (1 - impact), rel=1e-12)
        assert depth_at(
            KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, impact
        ) == pytest.approx(size, rel=1e-12)
    # beyond the last point nothing more is paid; depth unknown there
    assert curve(ref, 0.0, 0.0, 1e8 / ref) == pytest.approx(5e7 * 0.95, rel=1e-12)
    assert curve_marg(ref, 0.0, 0.0, 6e7 / ref) == 0.0
    assert math.isnan(depth_at(KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, 0.2))


@settings(max_examples=200, deadline=None)
@given(st.floats(1.0, 1e5), st.floats(0.0, 2e7), st.floats(0.0, 3e7), fees)
def test_curve_additive_and_marginal_non_increasing(ref, inv_usd, amount_usd, fee):
    inv, amount = inv_usd / ref, amount_usd / ref
    whole = curve(ref, inv, fee, amount + 1e6 / ref)
    parts = curve(ref, inv, fee, amount) + curve(ref, inv + amount, fee, 1e6 / ref)
    assert whole == pytest.approx(parts, rel=1e-9, abs=1e-6)
    assert curve_marg(ref, inv, fee, amount) >= curve_marg(ref, inv, fee, amount + 1e6 / ref)
    f = price_factor(KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, inv, fee)
    assert 0.0 <= f <= 1.0
    a = amount_at_marginal(
        KIND_CURVE, 0.0, CURVE_XS, CURVE_YS, len(CURVE_XS), ref, inv, fee, 0.97 * ref
    )
    if a > 0:
        assert curve_marg(ref, inv, fee, a * (1 - 1e-9)) > 0.97 * ref
        assert curve_marg(ref, inv, fee, a * (1 + 1e-9)) <= 0.97 * ref


@pytest.mark.parametrize(
    ("points", "message"),
    [
        ([], "no points"),
        ([[1e6, 0.01], [1e6, 0.02]], "point 1 size .* sizes must increase"),
        ([[1e6, 0.02], [1e7, 0.01]], "point 1 impact .* impacts must increase"),
        ([[1e6, 0.0]], r"point 0 impact 0.0 must be in \(0, 1\)"),
        ([[-5.0, 0.01]], "point 0 size -5.0 must be a positive"),
        ([[1e6, 0.01], [2e6, 0.1], [3e6, 0.101]], "point 2 .* marginal price rise"),
        ([[1e6, 0.01], [1.01e6, 0.9]], "point 1 .* pays less"),
        ([[1e6, "x"]], r"point 0 is \[1000000.0, 'x'\]"),
    ],
)
def test_curve_validation_names_the_point(points, message):
    with pytest.raises(VenueError, match=f"dex.toml WBTC: {message}"):
        curve_rows(points, "dex.toml WBTC")


# -- numba and the container -------------------------------------------------------------


def test_compiled_forms_equal_python():
    @numba.njit(cache=False)
    def run(kind, depth, xs, ys, count, ref, inv, fee, amount):
        return (
            proceeds(kind, depth, xs, ys, count, ref, inv, fee, amount),
            marginal(kind, depth, xs, ys, count, ref, inv, fee, amount),
            price_factor(kind, depth, xs, ys, count, ref, inv, fee),
            depth_at(kind, depth, xs, ys, count, ref, 0.05),
        )

    venues = Venues.from_rows(
        [KIND_CONSTANT_PRODUCT, KIND_V3, KIND_CURVE],
        [5e5, 0.0, 0.0],
        [0.003, 0.0005, 0.0],
        {1: (V3_XS, V3_YS), 2: (CURVE_XS, CURVE_YS)},
    )
    assert venues.xs.shape == (3, V3_N) and list(venues.count) == [0, V3_N, len(CURVE_XS)]
    for j in range(3):
        args = (
            venues.kind[j],
            venues.depth[j],
            venues.xs[j],
            venues.ys[j],
            venues.count[j],
            2000.0,
            30.0,
            venues.fee[j],
            40.0,
        )
        py = (
            proceeds(*args),
            marginal(*args),
            price_factor(*args[:-1]),
            depth_at(*args[:6], 0.05),
        )
        assert run(*args) == pytest.approx(py, rel=1e-14)
        assert venues.proceeds(j, 2000.0, 30.0, 40.0) == py[0]


def test_scaled_venues_need_scale_times_the_size():
    venues = Venues.from_rows(
        [KIND_CONSTANT_PRODUCT, KIND_V3, KIND_CURVE],
        [5e5, 0.0, 0.0],
        [0.0, 0.0, 0.0],
        {1: (V3_XS, V3_YS), 2: (CURVE_XS, CURVE_YS)},
    )
    half = venues.scaled(0.5)
    for j in range(3):
        assert half.depth_at(j, 2000.0, 0.05) == pytest.approx(
            0.5 * venues.depth_at(j, 2000.0, 0.05), rel=1e-12
        )
        assert half.proceeds(j, 2000.0, 0.0, 10.0) == pytest.approx(
            0.5 * venues.proceeds(j, 2000.0, 0.0, 20.0), rel=1e-12
        )
    with pytest.raises(VenueError, match="needs its points"):
        Venues.from_rows([KIND_V3], [0.0], [0.0], {})
    # the limits as cascade.rules.pool_depth has them: no impact, no liquidity
    for scale, depth in ((math.inf, math.inf), (0.0, 0.0)):
        limit = venues.scaled(scale)
        assert list(limit.kind) == [KIND_CONSTANT_PRODUCT] * 3
        assert list(limit.depth) == [depth] * 3
        for j in range(3):
            want = rules.sale_proceeds(rules.pool_depth(1.0, 1.0, scale), 0.0, 2000.0, 0.0, 10.0)
            assert limit.proceeds(j, 2000.0, 0.0, 10.0) == want


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(1e3, 1e9), min_size=1, max_size=6, unique=True),
    st.lists(st.floats(1e-4, 0.9), min_size=6, max_size=6, unique=True),
)
def test_any_accepted_curve_has_a_falling_marginal_and_its_points(sizes, impacts):
    points = list(zip(sorted(sizes), sorted(impacts), strict=False))
    try:
        xs, ys = curve_rows([list(p) for p in points])
    except VenueError as exc:  # only for a marginal price that would rise
        assert "marginal price rise" in str(exc) or "pays less" in str(exc)
        return
    n = len(xs)
    sizes = np.concatenate([np.linspace(0.0, xs[-1] * 1.2, 97), xs])
    sizes.sort()
    m = [marginal(KIND_CURVE, 0.0, xs, ys, n, 1.0, 0.0, 0.0, s) for s in sizes]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(m))
    for size, impact in points:
        got = proceeds(KIND_CURVE, 0.0, xs, ys, n, 1.0, 0.0, 0.0, size)
        assert got == pytest.approx(size * (1 - impact), rel=1e-12)
