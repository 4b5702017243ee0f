"""The chain side of venues (issue 16, item 4): the DEX map's kinds and V3 segments."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest

from keeper.adapters.base import DexLiquidity
from keeper.errors import ConfigError
from keeper.pull import load_dex_map
from keeper.venues_pull import Q96, V3_SPAN, v3_segments, venue_columns
from simulator.venues import KIND_V3, Venues, proceeds

POOL = "0x88e6A0c2dDD26FEEb64F039a2c41296FcB3f5640"


def test_dex_map_three_kinds(tmp_path: Path) -> None:
    path = tmp_path / "dex.toml"
    path.write_text(
        f'WETH = {{ kind = "uniswap-v3", pool = "{POOL.lower()}" }}\n'
        'WBTC = { kind = "depth-curve", points = [[1e6, 0.002], [1e7, 0.01], [5e7, 0.05]] }\n'
        f'LINK = {{ pair = "{POOL}", fee = 0.003 }}\n'
    )
    got = load_dex_map(path)
    assert got["WETH"].kind == "uniswap-v3" and got["WETH"].pair == POOL
    assert got["WBTC"].kind == "depth-curve" and got["WBTC"].fee == 0.0
    assert got["WBTC"].points == ((1e6, 0.002), (1e7, 0.01), (5e7, 0.05))
    assert got["LINK"].kind == "uniswap-v2"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"kind": "depth-curve", "points": [[1e7, 0.01], [1e6, 0.02]]}, "'X': point 1 size"),
        ({"kind": "depth-curve"}, "'X': a depth-curve needs points"),
        (
            {"kind": "uniswap-v3", "pool": POOL, "fee": 0.003},
            "'X': a uniswap-v3 pool's fee is read from the pool",
        ),
        ({"kind": "uniswap-v3"}, "'X' pool: None is not an address"),
        ({"kind": "balancer", "pool": POOL}, "'X': kind 'balancer' is not one of"),
    ],
)
def test_dex_map_errors_name_the_entry(tmp_path: Path, entry, message) -> None:
    path = tmp_path / "dex.json"
    path.write_text(json.dumps({"X": entry}))
    with pytest.raises(ConfigError, match=f"dex.json: entry {message}"):
        load_dex_map(path)


def _raw_out(intervals, sqrt_p, net, zero_for_one):
    """Output (raw units) of selling ``net`` raw input from raw sqrt price ``sqrt_p`` over
    ``intervals`` [(tick_lo, tick_hi, L)], by the whitepaper's per-range formulas."""
    out = 0.0
    for lo, hi, liq in sorted(intervals, reverse=zero_for_one):
        a, b = 1.0001 ** (lo / 2), 1.0001 ** (hi / 2)
        if zero_for_one:
            if a >= sqrt_p:
                continue
            top = min(sqrt_p, b)
            need = liq * (1 / a - 1 / top) if liq else 0.0
            if liq and net < need:
                after = liq * top / (liq + net * top)
                return out + liq * (top - after)
            out += liq * (top - a)
            net -= need
            sqrt_p = a
        else:
            if b <= sqrt_p:
                continue
            bottom = max(sqrt_p, a)
            need = liq * (b - bottom) if liq else 0.0
            if liq and net < need:
                after = bottom + net / liq
                return out + liq * (1 / bottom - 1 / after)
            out += liq * (1 / bottom - 1 / b)
            net -= need
            sqrt_p = b
    return out


@pytest.mark.parametrize("asset_is_token0", [True, False])
def test_v3_segments_normalise_order_and_decimals(asset_is_token0: bool) -> None:
    # the asset (18 decimals) at 2000 quote tokens (6 decimals) each
    raw_price = 2000.0 * 1e6 / 1e18 if asset_is_token0 else 1e18 / (2000.0 * 1e6)
    tick = math.floor(math.log(raw_price) / math.log(1.0001))
    sqrt_x96 = int(math.sqrt(raw_price) * Q96)
    base = tick - tick % 10
    positions = [(base - 3000, base + 2000, 7e15), (base - 400, base + 300, 2e16)]
    positions += [(base - 9000, base - 5000, 1e16), (base + 4000, base + 9000, 3e15)]
    net: dict[int, int] = {}
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + int(liq)
        net[hi] = net.get(hi, 0) - int(liq)
    current = int(sum(liq for lo, hi, liq in positions if lo <= tick < hi))
    xs, ys = v3_segments(sqrt_x96, tick, current, net, asset_is_token0, 18, 6, "pool")
    center = 2000.0
    assert xs[0] ** 2 == pytest.approx(center * (1 - V3_SPAN), rel=1e-9)
    assert xs[-1] ** 2 == pytest.approx(center * (1 + V3_SPAN), rel=1e-9)
    assert ys[-1] == 0.0 and all(b > a for a, b in itertools.pairwise(xs))
    venues = Venues.from_rows([KIND_V3], [0.0], [0.0], {0: (xs, ys)})
    # the simulator's sale equals the raw-unit walk of the same ticks, in either order
    intervals = []
    edges = sorted({t for p in positions for t in p[:2]})
    for lo, hi in itertools.pairwise(edges):
        liq = sum(p[2] for p in positions if p[0] <= lo and hi <= p[1])
        intervals.append((lo, hi, liq))
    ref = (sqrt_x96 / Q96) ** 2 * 1e12 if asset_is_token0 else 1e12 / (sqrt_x96 / Q96) ** 2
    checked = 0
    for tokens in (0.01, 1.0, 20.0, 50.0, 400.0):
        got = venues.proceeds(0, ref, 0.0, tokens)
        want = _raw_out(intervals, sqrt_x96 / Q96, tokens * 1e18, asset_is_token0) / 1e6
        if venues.marginal(0, ref, 0.0, tokens) == 0.0:  # walked past the read range (-50%)
            continue
        assert got == pytest.approx(want, rel=1e-9)
        checked += 1
    assert checked >= 3
    # beyond -50%: the read range ends
    big = proceeds(KIND_V3, 0.0, venues.xs[0], venues.ys[0], int(venues.count[0]), ref, 0, 0, 1e9)
    assert big == pytest.approx(venues.proceeds(0, ref, 0.0, 1e8), rel=1e-12)


def test_v3_segments_refuse_an_inconsistent_pool() -> None:
    sqrt_x96 = int(math.sqrt(2e-9) * Q96)
    tick = math.floor(math.log(2e-9) / math.log(1.0001))
    with pytest.raises(ConfigError, match="pool P at block 7: the liquidity below tick"):
        v3_segments(sqrt_x96, tick, 10, {tick - 10: 50}, True, 18, 6, "pool P at block 7")


def test_venue_columns_of_each_kind() -> None:
    curve = DexLiquidity("0xA", "", "", 0, 0, 18, 0, 0.0, "depth-curve", ((1e6, 0.01),))
    cols = venue_columns(curve, 2000.0)
    assert cols["venue_kind"] == "depth-curve"
    # the stand-in pool has the curve's average impact at its first point
    depth_usd = cols["dex_reserve_quote"]
    assert 1e6 / (depth_usd + 1e6) == pytest.approx(0.01, rel=1e-12)
    assert cols["dex_reserve_asset"] * 2000.0 == pytest.approx(depth_usd, rel=1e-12)
    v3 = DexLiquidity("0xA", POOL, "0xB", 10**18, 2 * 10**9, 18, 6, 0.0005, "uniswap-v3")
    assert venue_columns(v3, 2000.0)["venue_kind"] == "uniswap-v3"
    assert venue_columns(None, 1.0)["venue_kind"] == "constant-product"
