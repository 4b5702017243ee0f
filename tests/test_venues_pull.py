"""The chain side of venues (issue 16, item 4): the DEX map's kinds and V3 segments."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest

from keeper.adapters.base import DexLiquidity, DexSource, Reserve
from keeper.errors import ConfigError
from keeper.pull import load_dex_map
from keeper.venues_pull import (
    Q96,
    V3_SPAN,
    quote_prices,
    read_v3_liquidity,
    v3_segments,
    venue_columns,
    venues_frame,
)
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


# -- read_v3_liquidity against a fake pool: negative ticks, spacing 60, token0 the asset ----

ASSET = "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599"  # sorts below QUOTE: the asset is token0
QUOTE = "0xdAC17F958D2ee523a2206206994597C13D831ec7"


def _word(value: int) -> bytes:
    return (value % 2**256).to_bytes(32, "big")  # ABI: signed values sign-extended


class _FakePool:
    """Answers a V3 pool's views (ABI-encoded) from a tick -> liquidityNet table."""

    def __init__(self, sqrt_x96: int, tick: int, liquidity: int, net: dict[int, int]) -> None:
        self.state = (sqrt_x96, tick, liquidity)
        self.net = net
        self.spacing = 60

    def answer(self, data: bytes) -> bytes:
        from keeper.venues_pull import (
            _BITMAP,
            _FEE,
            _LIQUIDITY,
            _SLOT0,
            _SPACING,
            _TICKS,
            _TOKEN0,
            _TOKEN1,
        )

        sel, arg = data[:4], data[4:]
        sqrt_x96, tick, liquidity = self.state
        if sel == _SLOT0.selector:
            return _word(sqrt_x96) + _word(tick) + b"".join(_word(v) for v in (0, 1, 1, 0, 1))
        if sel == _LIQUIDITY.selector:
            return _word(liquidity)
        if sel == _SPACING.selector:
            return _word(self.spacing)
        if sel == _FEE.selector:
            return _word(3000)
        if sel == _TOKEN0.selector:
            return _word(int(ASSET, 16))
        if sel == _TOKEN1.selector:
            return _word(int(QUOTE, 16))
        value = int.from_bytes(arg[:32], "big")
        value = value - 2**256 if value >> 255 else value
        if sel == _BITMAP.selector:
            bits = 0
            for t in self.net:
                compressed = t // self.spacing
                if compressed >> 8 == value:
                    bits |= 1 << (compressed % 256)
            return _word(bits)
        if sel == _TICKS.selector:
            return (
                _word(0)
                + _word(self.net.get(value, 0))
                + b"".join(_word(v) for v in (0, 0, 0, 0, 0, int(value in self.net)))
            )
        raise AssertionError(f"unexpected call {data.hex()}")


class _FakeMulticall:
    def __init__(self, pool: _FakePool, decimals: dict[str, int]) -> None:
        self.pool = pool
        self.decimals = decimals
        self.calls = 0

    async def run(self, calls: Any, block: int) -> list[tuple[bool, bytes]]:
        from keeper.venues_pull import _DECIMALS

        self.calls += len(calls)
        out = []
        for c in calls:
            if c.data[:4] == _DECIMALS.selector:
                out.append((True, _word(self.decimals[c.target])))
            else:
                out.append((True, self.pool.answer(c.data)))
        return out


def test_read_v3_liquidity_decodes_a_pool_below_tick_zero() -> None:
    # an 18-decimal asset at 0.5 USDT (6 decimals): raw price 5e-13, tick ~ -283,000, so the
    # bitmap words and ticks are negative (sign-extended ABI words)
    raw = 0.5 * 1e6 / 1e18
    tick = math.floor(math.log(raw) / math.log(1.0001))
    base = tick - tick % 60
    positions = [(base - 3000, base + 1800, 4 * 10**15), (base - 600, base + 600, 10**16)]
    net: dict[int, int] = {}
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
    current = sum(liq for lo, hi, liq in positions if lo <= tick < hi)
    pool = _FakePool(int(math.sqrt(raw) * Q96), tick, current, net)
    multicall = _FakeMulticall(pool, {QUOTE: 6})
    reserve = Reserve(ASSET, "TKN", 18, 0, 0, 0, 0, 0, 0, True, False, False, True, 0)
    source = DexSource(POOL, kind="uniswap-v3")
    got = asyncio.run(read_v3_liquidity(multicall, [(reserve, source)], {ASSET: 18}, 5))[ASSET]
    assert got.kind == "uniswap-v3" and got.fee == 0.003 and got.quote_asset == QUOTE
    xs = [p[0] for p in got.points]
    ys = [p[1] for p in got.points]
    want_xs, want_ys = v3_segments(pool.state[0], tick, current, net, True, 18, 6, "the pool")
    assert (xs, ys) == (want_xs, want_ys)
    assert xs[0] ** 2 == pytest.approx(0.25, rel=1e-9) and xs[-1] ** 2 == pytest.approx(0.75)
    # the four initialised ticks were all found (their breakpoints inside the range)
    inside = [t for t in net if 0.25 < 1.0001**t * 1e12 < 0.75]
    assert len(xs) == len(inside) + 2
    # virtual reserves of the in-range liquidity at the price
    assert got.reserve_asset == current * Q96 // pool.state[0]


def test_read_v3_liquidity_names_pool_and_block_when_it_is_not_a_pool() -> None:
    class Empty:
        async def run(self, calls: Any, block: int) -> list[tuple[bool, bytes]]:
            return [(True, b"") for _ in calls]

    reserve = Reserve(ASSET, "TKN", 18, 0, 0, 0, 0, 0, 0, True, False, False, True, 0)
    with pytest.raises(ConfigError, match=f"Uniswap V3 pool {POOL} .*at block 9: does not"):
        asyncio.run(
            read_v3_liquidity(Empty(), [(reserve, DexSource(POOL, kind="uniswap-v3"))], {}, 9)
        )


def test_a_pool_quoted_in_weth_is_priced_in_usd(caplog: pytest.LogCaptureFixture) -> None:
    # an 8-decimal asset at 20 WETH (18 decimals) in a V3 pool, WETH at 3,000 USD
    raw = 20.0 * 1e18 / 1e8
    tick = math.floor(math.log(raw) / math.log(1.0001))
    net = {tick - tick % 10 - 2000: 10**14, tick - tick % 10 + 2000: -(10**14)}
    xs, ys = v3_segments(int(math.sqrt(raw) * Q96), tick, 10**14, net, True, 8, 18, "pool")
    v3 = DexLiquidity(
        ASSET, POOL, QUOTE, 0, 0, 8, 18, 0.0005, "uniswap-v3", tuple(zip(xs, ys, strict=True))
    )
    v2 = DexLiquidity(ASSET, POOL, QUOTE, 5 * 10**8, 100 * 10**18, 8, 18, 0.003)
    quotes = quote_prices({ASSET: v3}, {QUOTE: 3000.0})
    assert quotes == {ASSET: 3000.0}
    assert venue_columns(v2, 60_000.0, 3000.0)["dex_reserve_quote"] == pytest.approx(300_000.0)
    frame = venues_frame({ASSET: v3}, quotes)
    assert frame is not None
    in_quote = Venues.from_rows([KIND_V3], [0.0], [0.0], {0: (xs, ys)})
    in_usd = Venues.from_rows(
        [KIND_V3], [0.0], [0.0], {0: (frame["x"].to_numpy(), frame["y"].to_numpy())}
    )
    ref = (math.sqrt(raw) * 10 ** ((8 - 18) / 2)) ** 2  # WETH per asset at the pool
    for tokens in (0.1, 3.0, 40.0):
        usd = in_usd.proceeds(0, ref * 3000.0, 0.0, tokens)
        assert usd == pytest.approx(3000.0 * in_quote.proceeds(0, ref, 0.0, tokens), rel=1e-12)
    assert in_usd.depth_at(0, ref * 3000.0, 0.05) == pytest.approx(
        3000.0 * in_quote.depth_at(0, ref, 0.05), rel=1e-12
    )
    # a quote the market does not price is taken at $1, with a warning naming the pool
    assert quote_prices({ASSET: v3}, {}) == {ASSET: 1.0}
    assert f"DEX pool {POOL} quotes {QUOTE}" in caplog.text
