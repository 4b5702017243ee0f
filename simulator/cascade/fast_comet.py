"""The fast engine for a Compound V3 (Comet) market: the reference engine's Comet rounds
(``reference._CometPathRun``), compiled with numba, same numbers.

The market part (reference prices, venues, arbitrage, the oracle, gas) is the reference
engine's step for step; Comet's rules are ``comet_rules.absorb`` and
``comet_rules.store_front_purchase``, the very functions the reference engine calls. What is
specialised is which accounts are looked at:

- Only borrowers can be absorbed or be under water, so only they are kept, as sparse rows
  (collateral assets and scaled amounts, the base debt).
- Rows are grouped by the set of assets they hold as collateral and sorted within a group by
  their health factor at the snapshot (``hf0``, collateral x liquidateCollateralFactor over
  debt at snapshot prices). An account's collateral x factor is at least ``hf0`` x debt x
  (the lowest ratio of oracle value to snapshot price among its group's assets) / (the
  base's), so only the rows of a group below that bound can be liquidatable: a prefix of
  the group, checked exactly. Absorbed rows leave for good.
- Which accounts are liquidatable depends only on the oracle (and the interest indexes,
  which move at ticks), so a round looks for them again only when the oracle moved; the
  store front's purchases, which move the venues and the reference prices, are per asset.
- At the horizon the same bound with a factor of 1 finds the accounts under water at
  reference prices.

Sums over accounts are made in account order, as the reference engine makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np
import numpy.typing as npt

from simulator.cascade import comet_rules, rules
from simulator.cascade.config import EngineConfig
from simulator.cascade.model import CascadeOutput, Market, prepare
from simulator.cascade.parts import market_arrays, market_settings, path_arrays
from simulator.errors import InputError
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book

__all__ = ["run_fast_comet"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_inline = numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
_deviates = _inline(rules.oracle_deviates)
_decay = _inline(rules.arbitrage_decay)
_ref_impact = _inline(rules.reference_impact)
_between = _inline(rules.path_between)
_absorb = numba.njit(cache=True, nogil=True, error_model="numpy")(comet_rules.absorb)
_purchase = numba.njit(cache=True, nogil=True, error_model="numpy")(
    comet_rules.store_front_purchase
)

#: A bound is widened by this relative margin before the exact check, so that rounding in
#: the bound's own arithmetic never hides an account.
_SAFETY = 1e-9


class _CometArrays(NamedTuple):
    """Comet's per-asset arrays, ``(n_assets,)``."""

    lt: Any  # liquidateCollateralFactor
    liquidation_factor: Any
    stock0: Any  # absorbed collateral for sale at the snapshot, tokens


class _CometSettings(NamedTuple):
    base: int  # column of the base asset
    store_front_price_factor: float
    target_reserves: float
    reserves0: float


def run_fast_comet(
    book: Book, paths: PricePaths, config: EngineConfig | None = None, *, trace: bool = False
) -> CascadeOutput:
    """Replay a Comet market's cascade on every path; same results as ``run_reference``."""
    config = config or EngineConfig()
    terms = book.comet
    if terms is None:
        raise ValueError("run_fast_comet needs a Compound V3 book (Book.comet)")
    paths, market = prepare(book, paths, config)
    mult, gas = path_arrays(paths)
    n_paths, n_steps1, n_assets = mult.shape
    b = terms.base
    if np.any(market.lt > 1.0):
        raise InputError(
            "a Compound V3 liquidateCollateralFactor above 1 "
            f"({dict(zip(book.symbols, market.lt.tolist(), strict=True))}); expected fractions"
        )
    rows = _Rows.build(market, b)

    arrays = market_arrays(market)
    settings = market_settings(market, config, trace=trace)
    comet = _CometArrays(
        lt=np.ascontiguousarray(market.lt, dtype=np.float64),
        liquidation_factor=np.ascontiguousarray(terms.liquidation_factor, dtype=np.float64),
        stock0=np.ascontiguousarray(terms.collateral_reserves, dtype=np.float64),
    )
    comet_settings = _CometSettings(
        base=int(b),
        store_front_price_factor=float(terms.store_front_price_factor),
        target_reserves=float(terms.target_reserves),
        reserves0=float(terms.reserves),
    )
    scalars = np.zeros((n_paths, 5))  # shortfall, liquidated, deficit, drawdown, unsold
    ints = np.zeros((n_paths, 2), dtype=np.int64)  # absorptions, round-limit hits
    worst = np.zeros((n_paths, n_assets))
    shape_t = (n_paths, n_steps1) if trace else (1, 1)
    tr_m = np.zeros((*shape_t, n_assets))
    tr_l = np.zeros(shape_t)
    tr_s = np.zeros(shape_t)
    n_blocks = int(min(max(n_paths, 1), max(1, numba.get_num_threads()) * 16))
    block_start = (np.arange(n_blocks + 1, dtype=np.int64) * n_paths) // n_blocks
    room = 64 * (block_start[1:] - block_start[:-1]) + 64
    while True:
        out_start = np.zeros(n_blocks + 1, dtype=np.int64)
        np.cumsum(room, out=out_start[1:])
        out_path = np.zeros(int(out_start[-1]), dtype=np.int64)
        out_acc = np.zeros(int(out_start[-1]), dtype=np.int64)
        out_val = np.zeros(int(out_start[-1]))
        out_n = np.zeros(n_blocks, dtype=np.int64)
        _simulate(
            mult, gas, arrays, settings, comet, comet_settings,
            rows.acc, rows.cptr, rows.casset, rows.camt, rows.debt, rows.hf0,
            rows.gptr, rows.gmask, rows.qoff,
            block_start, out_start, out_path, out_acc, out_val, out_n,
            scalars, ints, worst, tr_m, tr_l, tr_s,
        )  # fmt: skip
        if (out_n >= 0).all():
            break
        room = room * 4 + rows.acc.shape[0]  # rare: more accounts at a loss than room
    keep = np.concatenate(
        [np.arange(out_start[k], out_start[k] + out_n[k]) for k in range(n_blocks)]
        or [np.zeros(0, dtype=np.int64)]
    )
    by_asset = np.zeros((n_paths, n_assets))
    by_asset[:, b] = scalars[:, 0]
    return CascadeOutput(
        shortfall_usd=scalars[:, 0].copy(),
        liquidated_usd=scalars[:, 1].copy(),
        n_liquidations=ints[:, 0].copy(),
        protocol_fee_usd=np.zeros(n_paths),
        deficit_usd=scalars[:, 2].copy(),
        rounds_limit_hits=ints[:, 1].copy(),
        shortfall_by_asset=by_asset,
        account_path=out_path[keep],
        account_index=out_acc[keep],
        account_shortfall_usd=out_val[keep],
        worst_market=worst,
        trace_market=tr_m if trace else None,
        trace_liquidated_usd=tr_l if trace else None,
        trace_shortfall_usd=tr_s if trace else None,
        reserve_drawdown_usd=scalars[:, 3].copy(),
        unsold_collateral_usd=scalars[:, 4].copy(),
    )


@dataclass(frozen=True, slots=True)
class _Rows:
    """The borrowers as sparse rows, grouped by collateral set and sorted by ``hf0``.

    ``acc`` account index; ``cptr`` / ``casset`` / ``camt`` each row's collateral (assets
    ascending, scaled amounts); ``debt`` scaled base debt; ``hf0``; ``gptr`` / ``gmask``
    the groups' row ranges and asset bitmasks; ``qoff`` each asset's room in the stock
    queues (the snapshot's own stock plus one entry per row holding it).
    """

    acc: IntArray
    cptr: IntArray
    casset: IntArray
    camt: FloatArray
    debt: FloatArray
    hf0: FloatArray
    gptr: IntArray
    gmask: IntArray
    qoff: IntArray

    @classmethod
    def build(cls, market: Market, base: int) -> _Rows:
        coll = market.collateral
        debt = market.debt[:, base]
        borrowers = np.flatnonzero(debt > 0.0)
        held = coll[borrowers] > 0.0
        n_assets = coll.shape[1]
        bits = (1 << np.arange(n_assets, dtype=np.int64))[None, :]
        mask = (held * bits).sum(axis=1).astype(np.int64)
        weighted = (coll[borrowers] * market.lt[None, :] * market.price0[None, :]).sum(axis=1)
        owed = debt[borrowers] * market.price0[base]
        hf0 = np.where(owed > 0.0, weighted / np.where(owed > 0.0, owed, 1.0), np.inf)
        order = np.lexsort((borrowers, hf0, mask))
        rows = borrowers[order]
        mask = mask[order]
        hf0 = hf0[order]
        starts = np.flatnonzero(np.r_[True, mask[1:] != mask[:-1]]) if rows.size else np.zeros(0)
        gptr = np.append(starts.astype(np.int64), rows.size).astype(np.int64)
        sub = coll[rows]
        r_idx, a_idx = np.nonzero(sub > 0.0)  # row-major: assets ascending within a row
        cptr = np.zeros(rows.size + 1, dtype=np.int64)
        np.cumsum(np.bincount(r_idx, minlength=rows.size), out=cptr[1:])
        per_asset = np.bincount(a_idx, minlength=n_assets) + 1
        qoff = np.zeros(n_assets + 1, dtype=np.int64)
        np.cumsum(per_asset, out=qoff[1:])
        return cls(
            acc=rows.astype(np.int64),
            cptr=cptr,
            casset=a_idx.astype(np.int64),
            camt=np.ascontiguousarray(sub[r_idx, a_idx], dtype=np.float64),
            debt=np.ascontiguousarray(debt[rows], dtype=np.float64),
            hf0=np.ascontiguousarray(hf0, dtype=np.float64),
            gptr=gptr,
            gmask=np.ascontiguousarray(mask[gptr[:-1]], dtype=np.int64),
            qoff=qoff,
        )


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _simulate(
    mult: Any, gas: Any, market: Any, settings: Any, comet: Any, comet_settings: Any,
    acc: Any, cptr: Any, casset: Any, camt: Any, debt: Any, hf0: Any,
    gptr: Any, gmask: Any, qoff: Any,
    block_start: Any, out_start: Any, out_path: Any, out_acc: Any, out_val: Any, out_n: Any,
    scalars: Any, ints: Any, worst: Any, tr_m: Any, tr_l: Any, tr_s: Any,
) -> None:  # fmt: skip
    n_blocks = block_start.shape[0] - 1
    n_rows = acc.shape[0]
    n_assets = mult.shape[2]
    n_ticks1 = market.supply_growth.shape[0]
    for blk in numba.prange(n_blocks):
        st = _state(n_rows, n_assets, n_ticks1, qoff[-1], gptr.shape[0] - 1)
        at = out_start[blk]
        room = out_start[blk + 1]
        for p in range(block_start[blk], block_start[blk + 1]):
            at = _run_path(
                p, st, mult, gas, market, settings, comet, comet_settings,
                acc, cptr, casset, camt, debt, hf0, gptr, gmask, qoff,
                at, room, out_path, out_acc, out_val,
                scalars, ints, worst, tr_m, tr_l, tr_s,
            )  # fmt: skip
            if at < 0:
                break
        out_n[blk] = at - out_start[blk] if at >= 0 else -1


class _State(NamedTuple):
    """One thread's scratch space for the paths it runs (``_state`` allocates it)."""

    absorbed: Any  # int8 per row: absorbed on this path
    gstart: Any  # per group: the first row not known to be absorbed
    listed: Any  # rows found by a scan
    ab_row: Any  # absorptions in order: the row,
    ab_paid: Any  # what the reserves paid for it (base tokens)
    ab_rec: Any  # and what its collateral fetched at the store front (base tokens)
    q_who: Any  # the stock queues (room ``qoff`` per asset): absorption number, -1: own
    q_amt: Any  # tokens
    q_head: Any
    q_tail: Any
    available: Any  # tokens for sale per asset
    hist: Any  # reference prices after each tick (the oracle's lag)
    amounts: Any  # an absorbed account's tokens per asset (zero between uses)
    oracle: Any
    oc: Any  # oracle value of one scaled unit of collateral / debt
    od: Any
    sg: Any  # index growth of the tick
    bg: Any
    updated: Any  # when each feed last updated, s
    inventory: Any  # each venue's excess inventory, tokens
    sold: Any  # USD sold into each asset so far
    rimp: Any  # reference / scenario price
    path_price: Any
    ref: Any
    pick_acc: Any  # sorting room
    pick_val: Any


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _state(n_rows: int, n_assets: int, n_ticks1: int, n_queue: int, n_groups: int) -> _State:
    return _State(
        np.zeros(n_rows, dtype=np.int8),
        np.zeros(n_groups, dtype=np.int64),
        np.zeros(n_rows, dtype=np.int64),
        np.zeros(n_rows, dtype=np.int64),
        np.zeros(n_rows),
        np.zeros(n_rows),
        np.zeros(n_queue, dtype=np.int64),
        np.zeros(n_queue),
        np.zeros(n_assets, dtype=np.int64),
        np.zeros(n_assets, dtype=np.int64),
        np.zeros(n_assets),
        np.zeros((n_ticks1, n_assets)),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.ones(n_assets),
        np.ones(n_assets),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.ones(n_assets),
        np.zeros(n_assets),
        np.zeros(n_assets),
        np.zeros(2 * n_rows, dtype=np.int64),
        np.zeros(2 * n_rows),
    )


@_inline
def _arbitrage(st: Any, until: float, since: float, half_life: float, n_assets: int) -> float:
    """Arbitrage works on every venue from ``since`` until ``until`` (``reference._arbitrage``);
    returns the new ``since``."""
    factor = _decay(until - since, half_life)
    for j in range(n_assets):
        st.inventory[j] = st.inventory[j] * factor
    return max(since, until)


@_inline
def _rate_prices(st: Any, rate_ratio: Any, rate_base: Any, k: int, n_assets: int) -> None:
    """Exchange-rate assets: the capped rate times the base's oracle price."""
    for j in range(n_assets):
        base = int(rate_base[j])
        if base >= 0:
            st.oracle[j] = rate_ratio[k, j] * st.oracle[base]


@_inline
def _scaled_prices(st: Any, n_assets: int) -> None:
    """Oracle value of one scaled unit of collateral and of debt."""
    for j in range(n_assets):
        st.oc[j] = st.oracle[j] * st.sg[j]
        st.od[j] = st.oracle[j] * st.bg[j]


@_inline
def _lowest_rel(mask: int, value: Any, p0: Any, n_assets: int) -> float:
    """The lowest ``value[j] / p0[j]`` over the assets in ``mask`` (``inf`` for none)."""
    m = math.inf
    for j in range(n_assets):
        if (mask >> j) & 1:
            r = value[j] / p0[j] if p0[j] > 0.0 else 0.0
            if r < m:
                m = r
    return m


@_inline
def _underwater(r: int, st: Any, cptr: Any, casset: Any, camt: Any, debt: Any, b: int) -> float:
    """``reference._PathRun.underwater`` of row ``r`` (0 once absorbed)."""
    if st.absorbed[r]:
        return 0.0
    c = 0.0
    for e in range(cptr[r], cptr[r + 1]):
        j = casset[e]
        c += camt[e] * (st.ref[j] * st.sg[j])
    d = debt[r] * (st.ref[b] * st.bg[b])
    return d - c if d > c else 0.0


@_inline
def _pending_rows(
    st: Any, p0: Any, cptr: Any, casset: Any, camt: Any, debt: Any, hf0: Any,
    gptr: Any, gmask: Any, b: int, n_assets: int,
) -> int:  # fmt: skip
    """Rows under water at reference prices into ``st.listed``; returns how many."""
    n = 0
    for j in range(n_assets):
        st.amounts[j] = st.ref[j] * st.sg[j]
    rb = st.ref[b] * st.bg[b] / p0[b] if p0[b] > 0.0 else 0.0
    for g in range(gptr.shape[0] - 1):
        m = _lowest_rel(gmask[g], st.amounts, p0, n_assets)
        thr = math.inf if m <= 0.0 or math.isinf(m) else rb / m * (1.0 + _SAFETY)
        for r in range(st.gstart[g], gptr[g + 1]):
            if hf0[r] >= thr:
                break
            if _underwater(r, st, cptr, casset, camt, debt, b) > 0.0:
                st.listed[n] = r
                n += 1
    for j in range(n_assets):
        st.amounts[j] = 0.0
    return n


@_inline
def _pending(
    st: Any, p0: Any, acc: Any, cptr: Any, casset: Any, camt: Any, debt: Any, hf0: Any,
    gptr: Any, gmask: Any, b: int, n_assets: int,
) -> tuple[float, int]:  # fmt: skip
    """Base tokens the accounts under water and not absorbed will cost (summed in account
    order, as the reference engine sums them), and how many they are (their rows stay in
    ``st.listed``)."""
    n = _pending_rows(st, p0, cptr, casset, camt, debt, hf0, gptr, gmask, b, n_assets)
    for q in range(n):
        r = st.listed[q]
        st.pick_acc[q] = acc[r]
        st.pick_val[q] = _underwater(r, st, cptr, casset, camt, debt, b)
    order = np.argsort(st.pick_acc[:n], kind="mergesort")
    total = 0.0
    for q in range(n):
        total += st.pick_val[order[q]]
    return float(total / st.ref[b]), n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _run_path(
    p: int, st: Any, mult: Any, gas: Any, market: Any, settings: Any, comet: Any,
    comet_settings: Any, acc: Any, cptr: Any, casset: Any, camt: Any, debt: Any, hf0: Any,
    gptr: Any, gmask: Any, qoff: Any,
    at: int, room: int, out_path: Any, out_acc: Any, out_val: Any,
    scalars: Any, ints: Any, worst: Any, tr_m: Any, tr_l: Any, tr_s: Any,
) -> int:  # fmt: skip
    """One path (``reference.run_reference`` with ``_CometPathRun``); returns where the
    next path's account rows go, -1 when they do not fit."""
    n_assets = mult.shape[2]
    n_rows = acc.shape[0]
    p0 = market.price0
    lt = comet.lt
    lf = comet.liquidation_factor
    dex_fee = market.dex_fee
    depth = market.depth
    deviation = market.deviation
    heartbeat = market.heartbeat_s
    ref_coef = market.ref_coef
    rate_base = market.rate_base
    stock0 = comet.stock0
    sgrow = market.supply_growth
    dgrow = market.debt_growth
    rate_ratio = market.rate_ratio
    vkind = market.venue_kind
    vxs = market.venue_xs
    vys = market.venue_ys
    vcount = market.venue_count
    tick_s = settings.tick_seconds
    half_life = settings.half_life_s
    block_s = settings.block_seconds
    sfpf = comet_settings.store_front_price_factor
    target = comet_settings.target_reserves
    reserves0 = comet_settings.reserves0
    b = comet_settings.base
    eth = settings.eth_index
    lag = settings.oracle_lag
    limit = settings.round_limit
    hit_counts = settings.count_hits
    ticks = settings.ticks
    trace = settings.trace
    n_ticks1 = sgrow.shape[0]

    # -- a fresh path ------------------------------------------------------------------------
    for r in range(n_rows):
        st.absorbed[r] = 0
    for g in range(gptr.shape[0] - 1):
        st.gstart[g] = gptr[g]
    for j in range(n_assets):
        st.q_head[j] = qoff[j]
        st.q_tail[j] = qoff[j]
        st.available[j] = stock0[j]
        if stock0[j] > 0.0:
            st.q_who[qoff[j]] = -1
            st.q_amt[qoff[j]] = stock0[j]
            st.q_tail[j] = qoff[j] + 1
        st.oracle[j] = p0[j]
        st.oc[j] = p0[j]
        st.od[j] = p0[j]
        st.sg[j] = 1.0
        st.bg[j] = 1.0
        st.updated[j] = 0.0
        st.inventory[j] = 0.0
        st.sold[j] = 0.0
        st.rimp[j] = 1.0
        st.path_price[j] = p0[j]
        st.ref[j] = p0[j]
    inv_time = 0.0
    reserves = reserves0
    liquidated = 0.0
    deficit = 0.0
    n_abs = 0
    hits = 0

    for k in range(n_ticks1):
        t, u = divmod(k, ticks)
        now = k * tick_s
        if u == 0:
            gwei = gas[p, t]
        else:
            f = u / ticks
            gwei = (1.0 - f) * gas[p, t] + f * gas[p, t + 1]
        # 1. reference prices follow the path; arbitrage since the last round
        for j in range(n_assets):
            st.sg[j] = sgrow[k, j]
            st.bg[j] = dgrow[k, j]
            m = mult[p, t, j] if u == 0 else _between(mult[p, t, j], mult[p, t + 1, j], u / ticks)
            st.path_price[j] = p0[j] * m
            st.ref[j] = st.path_price[j] * st.rimp[j]
        inv_time = _arbitrage(st, now, inv_time, half_life, n_assets)
        # 2. the oracle
        if k > 0:
            for j in range(n_assets):
                if rate_base[j] >= 0.0:
                    continue
                if lag == 0:
                    observed = st.ref[j]
                elif k - lag >= 0:
                    observed = st.hist[k - lag, j]
                else:
                    observed = p0[j]
                if _deviates(observed, st.oracle[j], deviation[j]) or (
                    now - st.updated[j] >= heartbeat[j]
                ):
                    st.oracle[j] = observed
                    st.updated[j] = now
            _rate_prices(st, rate_ratio, rate_base, k, n_assets)
        _scaled_prices(st, n_assets)
        eth_usd = st.ref[eth] if eth >= 0 else settings.eth_price_usd
        gas_usd = settings.gas_units * gwei * 1e-9 * eth_usd

        # 3. the rounds
        rounds = 0
        scan = True
        while True:
            n_listed = 0
            if scan:
                n_listed = _scan(
                    st, p0, lt, acc, cptr, casset, camt, debt, hf0, gptr, gmask, b, n_assets
                )
                scan = False
            if rounds == limit:
                if hit_counts and (
                    n_listed > 0
                    or _would_buy(
                        st,
                        reserves,
                        target,
                        sfpf,
                        lf,
                        dex_fee,
                        depth,
                        vkind,
                        vxs,
                        vys,
                        vcount,
                        gas_usd,
                        b,
                        n_assets,
                    )
                ):
                    hits += 1
                break
            for q in range(n_listed):
                r = st.listed[q]
                for e in range(cptr[r], cptr[r + 1]):
                    j = casset[e]
                    st.amounts[j] = camt[e] * st.sg[j]
                owed = debt[r] * st.bg[b]
                _, _, _, paid, uncovered = _absorb(st.amounts, st.oracle, lf, owed, st.oracle[b])
                reserves -= paid
                st.ab_row[n_abs] = r
                st.ab_paid[n_abs] = paid
                st.ab_rec[n_abs] = 0.0
                liquidated += owed * st.oracle[b]
                deficit += uncovered * st.oracle[b]
                for e in range(cptr[r], cptr[r + 1]):
                    j = casset[e]
                    if st.amounts[j] > 0.0:
                        st.q_who[st.q_tail[j]] = n_abs
                        st.q_amt[st.q_tail[j]] = st.amounts[j]
                        st.q_tail[j] += 1
                        st.available[j] += st.amounts[j]
                    st.amounts[j] = 0.0
                st.absorbed[r] = 1
                n_abs += 1
            bought = 0
            for j in range(n_assets):
                if j == b or st.q_head[j] == st.q_tail[j]:
                    continue
                tokens, base_paid, _, _ = _purchase(
                    st.available[j], reserves, target, st.oracle[j], st.oracle[b], st.ref[b],
                    sfpf, lf[j], vkind[j], depth[j], vxs[j], vys[j], vcount[j],
                    st.ref[j], st.inventory[j], dex_fee[j], gas_usd,
                )  # fmt: skip
                if tokens <= 0.0:
                    continue
                bought += 1
                reserves += base_paid
                st.inventory[j] += tokens
                st.sold[j] += tokens * st.ref[j]
                st.rimp[j] = _ref_impact(ref_coef[j], st.sold[j])
                st.ref[j] = st.path_price[j] * st.rimp[j]
                per_token = base_paid / tokens
                left = tokens
                while left > 0.0 and st.q_head[j] < st.q_tail[j]:
                    h = st.q_head[j]
                    held = st.q_amt[h]
                    take = min(held, left)
                    who = st.q_who[h]
                    if who >= 0:
                        st.ab_rec[who] += take * per_token
                    left -= take
                    st.available[j] -= take
                    if take >= held:
                        st.q_head[j] = h + 1
                    else:
                        st.q_amt[h] = held - take
                if st.q_head[j] == st.q_tail[j]:
                    st.available[j] = 0.0
            if n_listed == 0 and bought == 0:
                break
            rounds += 1
            if lag == 0:
                for j in range(n_assets):
                    if rate_base[j] < 0.0 and _deviates(st.ref[j], st.oracle[j], deviation[j]):
                        st.oracle[j] = st.ref[j]
                        st.updated[j] = now
                        scan = True
                _rate_prices(st, rate_ratio, rate_base, k, n_assets)
                _scaled_prices(st, n_assets)
            # the next round is one block later
            inv_time = _arbitrage(st, now + rounds * block_s, inv_time, half_life, n_assets)
        for j in range(n_assets):
            st.hist[k, j] = st.ref[j]
            rel = st.ref[j] / p0[j]
            worst[p, j] = rel if k == 0 else min(worst[p, j], rel)
        if trace and u == 0:
            for j in range(n_assets):
                tr_m[p, t, j] = st.ref[j] / p0[j]
            tr_l[p, t] = liquidated
            pend, _ = _pending(st, p0, acc, cptr, casset, camt, debt, hf0, gptr, gmask, b, n_assets)
            tr_s[p, t] = max(pend - reserves, 0.0) * st.ref[b]

    # -- the horizon ---------------------------------------------------------------------------
    price = st.ref[b]
    pend, n_under = _pending(st, p0, acc, cptr, casset, camt, debt, hf0, gptr, gmask, b, n_assets)
    total = max(pend - reserves, 0.0) * price
    scalars[p, 0] = total
    scalars[p, 1] = liquidated
    scalars[p, 2] = deficit
    scalars[p, 3] = max(reserves0 - reserves + pend, 0.0) * price
    unsold = 0.0
    for j in range(n_assets):
        unsold += st.available[j] * st.ref[j]
    scalars[p, 4] = unsold
    ints[p, 0] = n_abs
    ints[p, 1] = hits
    if total <= 0.0:
        return at
    # losses: the absorbed accounts' and those still under water, in account order
    n = 0
    for q in range(n_abs):
        loss = max(st.ab_paid[q] - st.ab_rec[q], 0.0) * price + 0.0
        if loss > 0.0:
            st.pick_acc[n] = acc[st.ab_row[q]]
            st.pick_val[n] = loss
            n += 1
    for q in range(n_under):  # st.listed holds them since _pending
        r = st.listed[q]
        st.pick_acc[n] = acc[r]
        st.pick_val[n] = 0.0 + _underwater(r, st, cptr, casset, camt, debt, b)
        n += 1
    order = np.argsort(st.pick_acc[:n], kind="mergesort")
    weight = 0.0
    for q in range(n):
        weight += st.pick_val[order[q]]
    if at + n > room:
        return -1
    for q in range(n):
        i = order[q]
        out_path[at] = p
        out_acc[at] = st.pick_acc[i]
        out_val[at] = total * st.pick_val[i] / weight
        at += 1
    return at


@_inline
def _scan(
    st: Any, p0: Any, lt: Any, acc: Any, cptr: Any, casset: Any, camt: Any, debt: Any,
    hf0: Any, gptr: Any, gmask: Any, b: int, n_assets: int,
) -> int:  # fmt: skip
    """The rows liquidatable at the oracle now into ``st.listed``, in account order."""
    n = 0
    rb = st.od[b] / p0[b] if p0[b] > 0.0 else 0.0
    for g in range(gptr.shape[0] - 1):
        while st.gstart[g] < gptr[g + 1] and st.absorbed[st.gstart[g]]:
            st.gstart[g] += 1
        m = _lowest_rel(gmask[g], st.oc, p0, n_assets)
        thr = math.inf if m <= 0.0 or math.isinf(m) else rb / m * (1.0 + _SAFETY)
        for r in range(st.gstart[g], gptr[g + 1]):
            if hf0[r] >= thr:
                break
            if st.absorbed[r]:
                continue
            w = 0.0
            for e in range(cptr[r], cptr[r + 1]):
                j = casset[e]
                w += camt[e] * lt[j] * st.oc[j]
            v = debt[r] * st.od[b]
            if v > 0.0 and w < v:
                st.listed[n] = r
                n += 1
    if n > 1:
        for q in range(n):
            st.pick_acc[q] = acc[st.listed[q]]
        order = np.argsort(st.pick_acc[:n], kind="mergesort")
        st.listed[:n] = st.listed[:n][order]
    return n


@_inline
def _would_buy(
    st: Any, reserves: float, target: float, sfpf: float, lf: Any, dex_fee: Any, depth: Any,
    vkind: Any, vxs: Any, vys: Any, vcount: Any, gas_usd: float, b: int, n_assets: int,
) -> bool:  # fmt: skip
    for j in range(n_assets):
        if j == b:
            continue
        tokens, _, _, _ = _purchase(
            st.available[j], reserves, target, st.oracle[j], st.oracle[b], st.ref[b],
            sfpf, lf[j], vkind[j], depth[j], vxs[j], vys[j], vcount[j],
            st.ref[j], st.inventory[j], dex_fee[j], gas_usd,
        )  # fmt: skip
        if tokens > 0.0:
            return True
    return False
