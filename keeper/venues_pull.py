"""Reading non-constant-product venues at the pull block: Uniswap V3 pools and depth curves.

A Uniswap V3 pool is read with its own views (Uniswap/v3-core ``IUniswapV3PoolState`` /
``IUniswapV3PoolImmutables``): ``slot0`` (sqrtPriceX96, tick), ``liquidity``,
``tickSpacing``, ``fee``, ``token0``, ``token1``, then the ``tickBitmap`` words covering
``V3_READ_TICKS`` ticks either side of the current tick (a price factor of 2 either way,
enough for +-50% in either token order) and ``ticks(t).liquidityNet`` of every initialised
tick in them, all at the pull block. ``v3_segments`` turns these exact integers into the
``simulator.venues`` row: the asset priced in the quote token (token order and decimals
handled), ascending sqrt-price breakpoints within ``V3_SPAN`` (+-50%) of the pool's price and
the active liquidity between them. The snapshot prices the quote token at its oracle price
when it is a reserve of the market (``quote_prices``), else at 1 USD; V2 pairs the same.

A depth curve needs no chain read: its points come from the DEX map.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
from eth_utils import to_checksum_address

from keeper.adapters.abi import function, words
from keeper.adapters.base import DexLiquidity, DexSource, Reserve
from keeper.adapters.multicall import Call, Multicall
from keeper.errors import CallReverted, ConfigError, DecodeError
from simulator.venues import KIND_NAMES, KIND_V3, VenueError, v3_rows

__all__ = [
    "V3_READ_TICKS",
    "V3_SPAN",
    "quote_prices",
    "read_v3_liquidity",
    "v3_segments",
    "venue_columns",
    "venues_frame",
]

#: Price range read around the pool's price: +-50%.
V3_SPAN = 0.5
#: Ticks read either side of the current one: 1.0001**6932 >= 2, so +-50% of the asset's
#: price is inside whichever token the asset is.
V3_READ_TICKS = math.ceil(math.log(2.0) / math.log(1.0001))
Q96 = 2**96

_SLOT0 = function("UniswapV3Pool", "slot0")
_LIQUIDITY = function("UniswapV3Pool", "liquidity")
_SPACING = function("UniswapV3Pool", "tickSpacing")
_FEE = function("UniswapV3Pool", "fee")
_TOKEN0 = function("UniswapV3Pool", "token0")
_TOKEN1 = function("UniswapV3Pool", "token1")
_BITMAP = function("UniswapV3Pool", "tickBitmap")
_TICKS = function("UniswapV3Pool", "ticks")
_DECIMALS = function("ERC20", "decimals")

log = logging.getLogger(__name__)


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _address(word: int, what: str) -> str:
    if word >> 160:
        raise DecodeError(f"{what}: answer is not an address")
    return to_checksum_address(word.to_bytes(20, "big"))


def v3_segments(
    sqrt_price_x96: int,
    tick: int,
    liquidity: int,
    net_by_tick: Mapping[int, int],
    asset_is_token0: bool,
    asset_decimals: int,
    quote_decimals: int,
    where: str,
) -> tuple[list[float], list[float]]:
    """The ``simulator.venues`` V3 row of a pool from its exact state.

    Args:
        sqrt_price_x96, tick, liquidity: ``slot0`` and ``liquidity()`` at the block.
        net_by_tick: ``ticks(t).liquidityNet`` of the initialised ticks read (any range
            covering the span; ticks outside it are ignored).
        asset_is_token0: the asset is the pool's token0 (else token1).
        asset_decimals, quote_decimals: the tokens' decimals.
        where: pool address and block, for errors.

    Returns:
        ``(xs, ys)``: ascending sqrt prices (sqrt of quote tokens per asset token) from
        ``sqrt((1 - V3_SPAN) p)`` to ``sqrt((1 + V3_SPAN) p)``, ``p`` the pool's price, and the
        liquidity (token units) above each, the last 0.
    """
    if sqrt_price_x96 <= 0:
        raise ConfigError(f"{where}: sqrtPriceX96 is 0 (the pool is not initialised)")
    # Liquidity on each tick interval [t_i, t_(i+1)) of the initialised ticks, in tick order:
    # the current one is `liquidity`; crossing t upward adds liquidityNet(t), downward
    # (leaving [t, ...)) subtracts it.
    ticks = sorted(net_by_tick)
    below = [t for t in ticks if t <= tick]
    above = [t for t in ticks if t > tick]
    bounds: list[int] = []
    liq: list[int] = []
    level = liquidity
    for t in reversed(below):  # walking down from the current interval
        bounds.append(t)
        liq.append(level)
        level -= net_by_tick[t]
        if level < 0:
            raise ConfigError(
                f"{where}: the liquidity below tick {t} would be negative ({level}); the "
                "ticks read are inconsistent with liquidity()"
            )
    bounds.reverse()
    liq.reverse()
    lowest = level  # below every initialised tick read
    level = liquidity
    for t in above:
        level += net_by_tick[t]
        if level < 0:
            raise ConfigError(
                f"{where}: the liquidity above tick {t} would be negative ({level}); the "
                "ticks read are inconsistent with liquidity()"
            )
        bounds.append(t)
        liq.append(level)
    # bounds[i] starts interval i with liquidity liq[i]; before bounds[0]: `lowest`.
    # (An interval starting below the current tick that has no initialised tick below it
    # extends to the end of the read range with `lowest`.)
    shift = 10.0 ** ((asset_decimals - quote_decimals) / 2.0)
    unit = 10.0 ** ((asset_decimals + quote_decimals) / 2.0)
    p_raw = sqrt_price_x96 / Q96
    center = p_raw * shift if asset_is_token0 else shift / p_raw
    lo = center * math.sqrt(1.0 - V3_SPAN)
    hi = center * math.sqrt(1.0 + V3_SPAN)
    # Pieces (lower sqrt price, upper sqrt price, liquidity) in the asset's price.
    pieces: list[tuple[float, float, float]] = []
    edges = [-math.inf, *[1.0001 ** (t / 2.0) for t in bounds], math.inf]
    levels = [lowest, *liq]
    for k, level_k in enumerate(levels):
        a, b = edges[k], edges[k + 1]  # raw sqrt price of the pool (token1 per token0)
        if asset_is_token0:
            low, high = a * shift if a > -math.inf else 0.0, b * shift
        else:
            low = shift / b if b < math.inf else 0.0
            high = shift / a if a > -math.inf else math.inf
        low, high = max(low, lo), min(high, hi)
        if high > low:
            pieces.append((low, high, level_k / unit))
    pieces.sort()
    xs = [p[0] for p in pieces] + [pieces[-1][1]]
    ys = [p[2] for p in pieces] + [0.0]
    try:
        v3_rows(xs, ys, where)
    except VenueError as exc:
        raise ConfigError(str(exc)) from None
    return xs, ys


def _bitmap_words(tick: int, spacing: int) -> list[int]:
    lo = (tick - V3_READ_TICKS) // spacing
    hi = (tick + V3_READ_TICKS) // spacing
    return list(range(lo >> 8, (hi >> 8) + 1))


async def read_v3_liquidity(
    multicall: Multicall,
    chosen: Sequence[tuple[Reserve, DexSource]],
    decimals: Mapping[str, int],
    block: int,
) -> dict[str, DexLiquidity]:
    """Read the Uniswap V3 pools of ``chosen`` (reserve, source) at ``block``: three rounds
    of Multicall3 (pool state, bitmap words, initialised ticks). Errors name the pool and
    the block."""
    if not chosen:
        return {}
    calls: list[Call] = []
    for _, source in chosen:
        pool = to_checksum_address(source.pair)
        calls += [
            Call(pool, f.encode(), True)
            for f in (_SLOT0, _LIQUIDITY, _SPACING, _FEE, _TOKEN0, _TOKEN1)
        ]
    results = await multicall.run(calls, block)
    states: list[dict[str, Any]] = []
    known = dict(decimals)
    for k, (reserve, source) in enumerate(chosen):
        where = f"Uniswap V3 pool {source.pair} (for {reserve.symbol}) at block {block}"
        answers = results[6 * k : 6 * k + 6]
        if not all(ok and data for ok, data in answers):
            raise ConfigError(
                f"{where}: does not answer slot0/liquidity/tickSpacing/fee/token0/token1 "
                "(no contract there, or not a Uniswap V3 pool): fix the DEX map"
            )
        try:
            slot0 = words(answers[0][1], 2, what=f"slot0() of {where}")
            (liquidity,) = words(answers[1][1], 1, what=f"liquidity() of {where}")
            (spacing,) = words(answers[2][1], 1, what=f"tickSpacing() of {where}")
            (fee,) = words(answers[3][1], 1, what=f"fee() of {where}")
            (t0,) = words(answers[4][1], 1, what=f"token0() of {where}")
            (t1,) = words(answers[5][1], 1, what=f"token1() of {where}")
        except DecodeError as exc:
            raise ConfigError(str(exc)) from None
        token0 = _address(t0, f"token0() of {where}")
        token1 = _address(t1, f"token1() of {where}")
        if reserve.asset == token0:
            quote, asset_is_token0 = token1, True
        elif reserve.asset == token1:
            quote, asset_is_token0 = token0, False
        else:
            raise ConfigError(
                f"{where}: trades {token0}/{token1}, not {reserve.symbol} ({reserve.asset}): "
                "fix the DEX map"
            )
        spacing = _signed(spacing, 24)
        if spacing <= 0 or fee >= 10**6:
            raise ConfigError(f"{where}: tickSpacing {spacing} / fee {fee} are not a V3 pool's")
        states.append(
            {
                "reserve": reserve,
                "source": source,
                "where": where,
                "sqrt_price": slot0[0],
                "tick": _signed(slot0[1], 24),
                "liquidity": liquidity,
                "spacing": spacing,
                "fee": fee,
                "quote": quote,
                "asset_is_token0": asset_is_token0,
            }
        )
    unknown = sorted({s["quote"] for s in states} - set(known))
    if unknown:
        answers = await multicall.run([Call(q, _DECIMALS.encode(), False) for q in unknown], block)
        for q, (_, data) in zip(unknown, answers, strict=True):
            known[q] = words(data, 1, what=f"decimals() of {q}")[0]
    # round 2: the bitmap words around each pool's tick
    word_calls: list[Call] = []
    word_index: list[tuple[int, int]] = []
    for i, s in enumerate(states):
        for w in _bitmap_words(s["tick"], s["spacing"]):
            word_calls.append(Call(s["source"].pair, _BITMAP.encode(w), False))
            word_index.append((i, w))
    try:
        word_answers = await multicall.run(word_calls, block)
    except CallReverted as exc:
        raise ConfigError(
            f"tickBitmap of a Uniswap V3 pool reverted at block {block} ({exc})"
        ) from None
    tick_calls: list[Call] = []
    tick_index: list[tuple[int, int]] = []
    for (i, w), (_, data) in zip(word_index, word_answers, strict=True):
        s = states[i]
        (bits,) = words(data, 1, what=f"tickBitmap({w}) of {s['where']}")
        for b in range(256):
            if bits >> b & 1:
                t = (w * 256 + b) * s["spacing"]
                if abs(t - s["tick"]) <= V3_READ_TICKS + s["spacing"]:
                    tick_calls.append(Call(s["source"].pair, _TICKS.encode(t), False))
                    tick_index.append((i, t))
    try:
        tick_answers = await multicall.run(tick_calls, block) if tick_calls else []
    except CallReverted as exc:
        raise ConfigError(
            f"ticks() of a Uniswap V3 pool reverted at block {block} ({exc})"
        ) from None
    nets: list[dict[int, int]] = [{} for _ in states]
    for (i, t), (_, data) in zip(tick_index, tick_answers, strict=True):
        w8 = words(data, 8, what=f"ticks({t}) of {states[i]['where']}")
        if not w8[7]:
            raise ConfigError(
                f"{states[i]['where']}: tick {t} is set in tickBitmap but ticks({t}) is not "
                "initialised"
            )
        nets[i][t] = _signed(w8[1], 128)
    out: dict[str, DexLiquidity] = {}
    for s, net in zip(states, nets, strict=True):
        reserve = s["reserve"]
        xs, ys = v3_segments(
            s["sqrt_price"],
            s["tick"],
            s["liquidity"],
            net,
            s["asset_is_token0"],
            reserve.decimals,
            known[s["quote"]],
            s["where"],
        )
        # the constant-product pool with the same depth at the price (virtual reserves)
        x0 = s["liquidity"] * Q96 // s["sqrt_price"]
        x1 = s["liquidity"] * s["sqrt_price"] // Q96
        out[reserve.asset] = DexLiquidity(
            asset=reserve.asset,
            pair=to_checksum_address(s["source"].pair),
            quote_asset=s["quote"],
            reserve_asset=x0 if s["asset_is_token0"] else x1,
            reserve_quote=x1 if s["asset_is_token0"] else x0,
            asset_decimals=reserve.decimals,
            quote_decimals=known[s["quote"]],
            fee=s["fee"] / 1e6,
            kind="uniswap-v3",
            points=tuple(zip(xs, ys, strict=True)),
        )
    return out


def quote_prices(dex: Mapping[str, DexLiquidity], prices: Mapping[str, float]) -> dict[str, float]:
    """USD per quote token of each pool in ``dex`` (by asset): the quote's oracle price when
    it is a reserve of the market (``prices``: asset -> USD), else 1 with a warning (a pool
    against a token the market does not price is taken as quoted in dollars)."""
    out: dict[str, float] = {}
    for asset, d in dex.items():
        if d.kind == "depth-curve":
            continue
        price = prices.get(d.quote_asset)
        if price is None:
            log.warning(
                "DEX pool %s quotes %s, which the market does not price: its quote is taken at $1",
                d.pair,
                d.quote_asset,
            )
        out[asset] = 1.0 if price is None else price
    return out


def venue_columns(
    d: DexLiquidity | None, price_usd: float, quote_usd: float = 1.0
) -> dict[str, Any]:
    """The reserves.parquet venue columns of one asset (``dex_*`` and ``venue_kind``).

    ``dex_reserve_quote`` is in USD: the pool's quote reserve times ``quote_usd`` (USD per
    quote token). A depth curve's ``dex_reserve_*`` hold the constant-product pool with the
    same average impact at its first point, at ``price_usd``: depth ``s (1 - I) / I`` USD."""
    if d is None:
        return {
            "dex_pair": "",
            "dex_quote_asset": "",
            "dex_reserve_asset": 0.0,
            "dex_reserve_quote": 0.0,
            "dex_fee": 0.0,
            "venue_kind": KIND_NAMES[0],
        }
    if d.kind == "depth-curve":
        size, impact = d.points[0]
        quote = size * (1.0 - impact) / impact
        return {
            "dex_pair": "",
            "dex_quote_asset": "",
            "dex_reserve_asset": quote / price_usd,
            "dex_reserve_quote": quote,
            "dex_fee": d.fee,
            "venue_kind": "depth-curve",
        }
    return {
        "dex_pair": d.pair,
        "dex_quote_asset": d.quote_asset,
        "dex_reserve_asset": d.reserve_asset / 10**d.asset_decimals,
        "dex_reserve_quote": d.reserve_quote / 10**d.quote_decimals * quote_usd,
        "dex_fee": d.fee,
        "venue_kind": KIND_NAMES[KIND_V3] if d.kind == "uniswap-v3" else KIND_NAMES[0],
    }


def venues_frame(
    dex: Mapping[str, DexLiquidity], quote_usd: Mapping[str, float] | None = None
) -> pd.DataFrame | None:
    """venues.parquet rows of the V3 pools and depth curves in ``dex``; ``None`` if none.

    A V3 pool's segments are priced in USD with ``quote_usd`` (asset -> USD per quote
    token ``u``): sqrt prices and liquidity both times ``sqrt(u)`` (then every sale pays
    ``u`` times its quote-token proceeds)."""
    rows = []
    for asset, d in dex.items():
        if d.kind == "uniswap-v2":
            continue
        root = math.sqrt((quote_usd or {}).get(asset, 1.0)) if d.kind == "uniswap-v3" else 1.0
        rows += [
            {"asset": asset, "point": k, "x": float(x) * root, "y": float(y) * root}
            for k, (x, y) in enumerate(d.points)
        ]
    return pd.DataFrame(rows) if rows else None
