"""The fast cascade engine: numba, parallel over paths, and only the accounts that can move.

Same rules as ``simulator.cascade.reference`` (the scalar formulas are literally the same
functions from ``simulator.cascade.rules``, compiled with numba); what differs is which
accounts are looked at when. Every skip below is exact: the reference engine, which looks at
every account in every round, gives the same liquidations in the same order.

1. **Sparse accounts.** Each account keeps its non-zero collateral and debt entries (asset
   index ascending, so sums add in the reference's order) plus a bit mask of the assets it
   holds as collateral and as debt.
2. **Drop accounts that can never be liquidated.** Market prices are the path's price times
   an impact factor in ``[floor, 1]`` (liquidators only sell), and the oracle only ever holds
   past market prices, so over the whole block of paths every oracle price lies in
   ``[floor x min(1, path min), max(1, path max)]``. An account whose collateral x LT at the
   low end still covers its debt at the high end is never liquidatable and never under water;
   it is dropped for the block. ``floor`` is the larger of ``impact_floor_hint`` and a bound
   from the asset's total collateral; a path whose impact goes below it is detected and
   re-run without skipping (counted in ``reruns``).
3. **Per-path candidates.** The same bound with each path's own worst prices leaves the
   candidates of that path (typically a few percent of the book in a one-day scenario).
4. **Scan only what the oracle moved against.** The health factor of an account changes only
   through its own liquidations or an oracle update. The engine keeps the assets whose oracle
   price fell (``down``) or rose (``up``) since the last scan; a scan checks an account exactly
   only when one of its collateral assets fell, one of its debt assets rose, or it was
   liquidatable at the last scan. A round with no oracle change since the last scan re-checks
   only the last scan's liquidatable accounts.

The path loop runs in parallel blocks (``numba.prange``) with per-block scratch arrays; each
path's candidate list and per-candidate shortfall go to a flat array at that path's offset, so
results do not depend on the number of threads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from simulator.cascade import rules
from simulator.cascade.config import EngineConfig
from simulator.cascade.model import CascadeOutput, Market, align_paths, check_paths
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book

__all__ = ["SparseAccounts", "run_fast"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Relative slack on the skip bound, far above float64 rounding of the sums it bounds.
_BOUND_SLACK = 1e-9

_jit = numba.njit(cache=True, nogil=True)
_impact = _jit(rules.impact_factor)
_proceeds = _jit(rules.sale_proceeds)
_plan = _jit(rules.plan_liquidation)
_deviates = _jit(rules.oracle_deviates)


@dataclass(frozen=True, slots=True)
class SparseAccounts:
    """Non-zero entries of a set of accounts, padded to the widest account.

    Attributes:
        index: the accounts' rows in the book, ascending, ``(n,)``.
        coll_asset, coll_amount: collateral entries (asset index ascending; padding has
            amount 0), ``(n, kc)``; ``n_coll`` counts the real ones, ``(n,)``.
        debt_asset, debt_amount, n_debt: the same for debt, ``(n, kd)``.
        coll_mask, debt_mask: bit ``min(j, 62)`` set when the account holds asset ``j``.
    """

    index: IntArray
    coll_asset: IntArray
    coll_amount: FloatArray
    n_coll: IntArray
    debt_asset: IntArray
    debt_amount: FloatArray
    n_debt: IntArray
    coll_mask: IntArray
    debt_mask: IntArray

    @classmethod
    def from_dense(cls, collateral: FloatArray, debt: FloatArray, rows: IntArray) -> SparseAccounts:
        ca, cv, nc, cm = _pack(collateral[rows])
        da, dv, nd, dm = _pack(debt[rows])
        return cls(rows.astype(np.int64), ca, cv, nc, da, dv, nd, cm, dm)

    def subset(self, keep: npt.NDArray[np.bool_]) -> SparseAccounts:
        return SparseAccounts(
            *(np.ascontiguousarray(getattr(self, f)[keep]) for f in self.__slots__)
        )


def _pack(dense: FloatArray) -> tuple[IntArray, FloatArray, IntArray, IntArray]:
    nonzero = dense > 0.0
    counts = nonzero.sum(axis=1).astype(np.int64)
    width = max(int(counts.max()) if counts.size else 0, 1)
    order = np.argsort(~nonzero, axis=1, kind="stable")[:, :width].astype(np.int64)
    amounts = np.take_along_axis(dense, order, axis=1)
    valid = np.arange(width)[None, :] < counts[:, None]
    amounts = np.where(valid, amounts, 0.0)
    bits = np.left_shift(np.int64(1), np.minimum(order, 62))
    masks = np.where(valid, bits, 0).sum(axis=1).astype(np.int64)
    return (
        np.ascontiguousarray(order),
        np.ascontiguousarray(amounts),
        counts,
        np.ascontiguousarray(masks),
    )


def _impact_floors(market: Market, mult: FloatArray, hint: float) -> FloatArray:
    """Per asset: max(hint, the impact of selling all the book's collateral at the top price).

    The second term is a rigorous floor (liquidators never sell more than the book holds, and
    the pool is shallowest in tokens at the highest price); ``hint`` is a guess checked
    during the run.
    """
    total = market.collateral.sum(axis=0)
    top = market.price0 * np.maximum(1.0, mult.max(axis=(0, 1)))
    out = np.empty(market.price0.shape[0])
    for j in range(out.shape[0]):
        d = float(market.depth[j])
        if math.isinf(d) or total[j] <= 0.0:
            out[j] = 1.0
        elif d <= 0.0:
            out[j] = hint  # no pool: nothing is ever sold, the impact stays 1
        else:
            x_eq = d / math.sqrt(float(top[j]))
            rigorous = (x_eq / (x_eq + float(total[j]))) ** 2 * (1.0 - _BOUND_SLACK)
            out[j] = max(hint, rigorous)
    return out


def _floor_ladder(hint: float) -> tuple[float, ...]:
    """Impact-floor guesses tried in turn on paths whose impact broke the previous one."""
    return tuple(sorted({hint, min(hint, 0.85), min(hint, 0.5), 0.0}, reverse=True))


@dataclass(frozen=True, slots=True)
class _Groups:
    """Accounts grouped by (collateral assets, debt assets), each group sorted by snapshot HF.

    For oracle multipliers in ``[lo, hi]``, HF >= HF0 x min(lo over the group's collateral) /
    max(hi over its debt), so the accounts that can become liquidatable on a path are a
    prefix of each group, found by binary search.
    """

    ptr: IntArray
    rows: IntArray
    hf0: FloatArray
    cmask: IntArray
    dmask: IntArray

    @classmethod
    def build(cls, rows: SparseAccounts, market: Market) -> _Groups:
        weight = market.lt * market.price0
        w0 = (rows.coll_amount * weight[rows.coll_asset]).sum(axis=1)
        v0 = (rows.debt_amount * market.price0[rows.debt_asset]).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            hf0 = np.where(v0 > 0.0, w0 / v0, np.inf)
        keys = np.stack([rows.coll_mask, rows.debt_mask], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.lexsort((hf0, inverse)).astype(np.int64)
        ptr = np.zeros(uniq.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(inverse, minlength=uniq.shape[0]), out=ptr[1:])
        return cls(
            ptr=ptr,
            rows=order,
            hf0=np.ascontiguousarray(hf0[order]),
            cmask=np.ascontiguousarray(uniq[:, 0]),
            dmask=np.ascontiguousarray(uniq[:, 1]),
        )


def run_fast(
    book: Book,
    paths: PricePaths,
    config: EngineConfig | None = None,
    *,
    trace: bool = False,
) -> CascadeOutput:
    """Replay the cascade on every path; same results as ``run_reference``."""
    config = config or EngineConfig()
    paths = align_paths(paths, book.symbols)
    check_paths(paths, book.n_assets)
    market = Market.build(book, paths, config)
    mult = np.ascontiguousarray(paths.multipliers, dtype=np.float64)
    gas = np.ascontiguousarray(paths.gas_gwei, dtype=np.float64)
    n_paths = mult.shape[0]
    debtors = np.flatnonzero((market.debt > 0.0).any(axis=1)).astype(np.int64)
    rows = SparseAccounts.from_dense(market.collateral, market.debt, debtors)
    groups = _Groups.build(rows, market)
    todo = np.arange(n_paths, dtype=np.int64)
    result: _Block | None = None
    reruns = 0
    for hint in _floor_ladder(config.impact_floor_hint):
        sub_mult = mult if result is None else np.ascontiguousarray(mult[todo])
        sub_gas = gas if result is None else np.ascontiguousarray(gas[todo])
        floors = _impact_floors(market, sub_mult, hint)
        block = _run_block(market, paths, config, rows, groups, sub_mult, sub_gas, floors, trace)
        if result is None:
            result = block
        else:
            reruns += int(todo.size)
            result = result.merge(block, todo)
        todo = todo[block.violated]
        if todo.size == 0:
            break
    assert result is not None
    return result.output(n_paths, reruns=reruns)


@dataclass(frozen=True, slots=True)
class _Block:
    scalars: FloatArray  # (n, 4): shortfall, liquidated, fee, deficit
    counts: IntArray  # (n, 2): liquidations, round-limit hits
    by_asset: FloatArray
    worst: FloatArray
    acc_path: IntArray
    acc_index: IntArray
    acc_value: FloatArray
    violated: npt.NDArray[np.bool_]
    trace_m: FloatArray | None
    trace_l: FloatArray | None
    trace_s: FloatArray | None

    def output(self, n_paths: int, reruns: int = 0) -> CascadeOutput:
        return CascadeOutput(
            shortfall_usd=self.scalars[:, 0].copy(),
            liquidated_usd=self.scalars[:, 1].copy(),
            n_liquidations=self.counts[:, 0].copy(),
            protocol_fee_usd=self.scalars[:, 2].copy(),
            deficit_usd=self.scalars[:, 3].copy(),
            rounds_limit_hits=self.counts[:, 1].copy(),
            shortfall_by_asset=self.by_asset,
            account_path=self.acc_path,
            account_index=self.acc_index,
            account_shortfall_usd=self.acc_value,
            worst_market=self.worst,
            reruns=reruns,
            trace_market=self.trace_m,
            trace_liquidated_usd=self.trace_l,
            trace_shortfall_usd=self.trace_s,
        )

    def merge(self, again: _Block, rows: IntArray) -> _Block:
        """This block with paths ``rows`` replaced by ``again``'s results."""
        scalars = self.scalars.copy()
        counts = self.counts.copy()
        by_asset = self.by_asset.copy()
        worst = self.worst.copy()
        worst[rows] = again.worst
        violated = self.violated.copy()
        scalars[rows] = again.scalars
        counts[rows] = again.counts
        by_asset[rows] = again.by_asset
        violated[rows] = again.violated
        keep = ~np.isin(self.acc_path, rows)
        acc_path = np.concatenate([self.acc_path[keep], rows[again.acc_path]])
        acc_index = np.concatenate([self.acc_index[keep], again.acc_index])
        acc_value = np.concatenate([self.acc_value[keep], again.acc_value])
        order = np.lexsort((acc_index, acc_path))
        tm, tl, ts = self.trace_m, self.trace_l, self.trace_s
        if tm is not None and tl is not None and ts is not None:
            tm, tl, ts = tm.copy(), tl.copy(), ts.copy()
            tm[rows] = again.trace_m
            tl[rows] = again.trace_l
            ts[rows] = again.trace_s
        return _Block(
            scalars,
            counts,
            by_asset,
            worst,
            acc_path[order],
            acc_index[order],
            acc_value[order],
            violated,
            tm,
            tl,
            ts,
        )


def _run_block(
    market: Market,
    paths: PricePaths,
    config: EngineConfig,
    rows: SparseAccounts,
    groups: _Groups,
    mult: FloatArray,
    gas: FloatArray,
    floors: FloatArray,
    trace: bool,
) -> _Block:
    n_paths, n_steps1, n_assets = mult.shape
    lo = floors[None, :] * np.minimum(1.0, mult.min(axis=1))
    hi = np.maximum(1.0, mult.max(axis=1))
    lo = np.ascontiguousarray(lo)
    hi = np.ascontiguousarray(hi)
    counts = _count_candidates(lo, hi, groups.ptr, groups.hf0, groups.cmask, groups.dmask)
    offsets = np.zeros(n_paths + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    total = int(offsets[-1])
    cand = np.zeros(total, dtype=np.int64)
    value = np.zeros(total)
    scalars = np.zeros((n_paths, 4))
    ints = np.zeros((n_paths, 2), dtype=np.int64)
    by_asset = np.zeros((n_paths, n_assets))
    worst = np.zeros((n_paths, n_assets))
    violated = np.zeros(n_paths, dtype=np.bool_)
    shape_t = (n_paths, n_steps1) if trace else (1, 1)
    tr_m = np.zeros((*shape_t, n_assets))
    tr_l = np.zeros(shape_t)
    tr_s = np.zeros(shape_t)
    n_rows = int(rows.index.shape[0])
    n_blocks = int(min(n_paths, max(1, numba.get_num_threads()) * 8))
    params = np.array(
        [
            paths.step_seconds,
            paths.oracle.deviation,
            paths.oracle.heartbeat_s,
            config.gas_units,
            config.eth_price_usd,
            config.recovery_rate,
            config.close_factor_threshold_usd,
            config.close_factor_hf,
            config.default_close_factor,
            config.min_leftover_usd,
        ],
        dtype=np.float64,
    )
    iparams = np.array(
        [market.eth_index, market.oracle_lag, config.round_limit, n_blocks, n_rows, int(trace)],
        dtype=np.int64,
    )
    _simulate(
        mult, gas, lo, hi, floors, market.price0, market.lt, market.bonus, market.protocol_fee,
        market.dex_fee, market.depth, rows.coll_asset, rows.coll_amount, rows.n_coll,
        rows.debt_asset, rows.debt_amount, rows.n_debt, rows.coll_mask, rows.debt_mask,
        groups.ptr, groups.rows, groups.hf0, groups.cmask, groups.dmask, params, iparams,
        offsets, cand, value, scalars, ints, by_asset, worst, violated, tr_m, tr_l, tr_s,
    )  # fmt: skip
    nonzero = value > 0.0
    path_of = np.repeat(np.arange(n_paths, dtype=np.int64), counts)
    return _Block(
        scalars=scalars,
        counts=ints,
        by_asset=by_asset,
        worst=worst,
        acc_path=path_of[nonzero],
        acc_index=rows.index[cand[nonzero]],
        acc_value=value[nonzero],
        violated=violated,
        trace_m=tr_m if trace else None,
        trace_l=tr_l if trace else None,
        trace_s=tr_s if trace else None,
    )


@numba.njit(cache=True, nogil=True)
def _is_candidate(
    r: int, lo: Any, hi: Any, p0: Any, lt: Any, ca: Any, cv: Any, nc: Any, da: Any, dv: Any,
    nd: Any,
) -> bool:  # fmt: skip
    w = 0.0
    for e in range(nc[r]):
        j = ca[r, e]
        w += cv[r, e] * lt[j] * (p0[j] * lo[j])
    v = 0.0
    for e in range(nd[r]):
        j = da[r, e]
        v += dv[r, e] * (p0[j] * hi[j])
    return v > 0.0 and w < v * (1.0 + 1e-9)


@numba.njit(cache=True, nogil=True)
def _group_prefix(
    g: int, lo: Any, hi: Any, ptr: Any, hf0: Any, cmask: Any, dmask: Any
) -> tuple[int, int]:
    """Members ``[start, stop)`` of group ``g`` that may become liquidatable within [lo, hi]."""
    min_lo = np.inf
    max_hi = 0.0
    for j in range(lo.shape[0]):
        bit = np.int64(1) << np.int64(min(j, 62))
        if cmask[g] & bit:
            min_lo = min(min_lo, lo[j])
        if dmask[g] & bit:
            max_hi = max(max_hi, hi[j])
    if min_lo == np.inf:
        min_lo = 0.0
    limit = max_hi * (1.0 + 1e-9)
    a = ptr[g]
    b = ptr[g + 1]
    # first member whose HF0 x min_lo reaches the limit (HF0 ascending)
    while a < b:
        m = (a + b) // 2
        if hf0[m] * min_lo < limit:
            a = m + 1
        else:
            b = m
    return ptr[g], a


@numba.njit(cache=True, parallel=True)
def _count_candidates(lo: Any, hi: Any, ptr: Any, hf0: Any, cmask: Any, dmask: Any) -> Any:
    n_paths = lo.shape[0]
    n_groups = cmask.shape[0]
    out = np.zeros(n_paths, dtype=np.int64)
    for p in numba.prange(n_paths):
        c = 0
        for g in range(n_groups):
            a, b = _group_prefix(g, lo[p], hi[p], ptr, hf0, cmask, dmask)
            c += b - a
        out[p] = c
    return out


@numba.njit(cache=True, parallel=True)
def _simulate(
    mult: Any, gas: Any, lo: Any, hi: Any, floors: Any, p0: Any, lt: Any, bonus: Any,
    pfee: Any, dexfee: Any, depth: Any, ca: Any, cv: Any, nc: Any, da: Any, dv: Any, nd: Any,
    cmask: Any, dmask: Any, g_ptr: Any, g_rows: Any, g_hf0: Any, g_cmask: Any, g_dmask: Any,
    params: Any, iparams: Any, offsets: Any, cand: Any, value: Any, scalars: Any, ints: Any,
    by_asset: Any, worst: Any, violated: Any, tr_m: Any, tr_l: Any, tr_s: Any,
) -> None:  # fmt: skip
    n_paths = mult.shape[0]
    n_groups = g_cmask.shape[0]
    n_blocks = iparams[3]
    n_rows = iparams[4]
    kc = cv.shape[1]
    kd = dv.shape[1]
    for b in numba.prange(n_blocks):
        cc = np.empty((n_rows, kc))
        dd = np.empty((n_rows, kd))
        pend = np.zeros(n_rows, dtype=np.uint8)
        defacc = np.zeros(n_rows)
        list_a = np.empty(n_rows, dtype=np.int64)
        list_b = np.empty(n_rows, dtype=np.int64)
        start = b * n_paths // n_blocks
        stop = (b + 1) * n_paths // n_blocks
        for p in range(start, stop):
            off = offsets[p]
            k = 0
            for g in range(n_groups):
                a, b_ = _group_prefix(g, lo[p], hi[p], g_ptr, g_hf0, g_cmask, g_dmask)
                for m in range(a, b_):
                    r = g_rows[m]
                    if _is_candidate(r, lo[p], hi[p], p0, lt, ca, cv, nc, da, dv, nd):
                        cand[off + k] = r
                        k += 1
            cand[off : off + k] = np.sort(cand[off : off + k])
            _run_path(
                p, mult[p], gas[p], floors, p0, lt, bonus, pfee, dexfee, depth, ca, cv, nc,
                da, dv, nd, cmask, dmask, params, iparams, cand[off : off + k],
                value[off : off + k], scalars, ints, by_asset, worst, violated, tr_m, tr_l, tr_s,
                cc, dd, pend, defacc, list_a, list_b,
            )  # fmt: skip


@numba.njit(cache=True, nogil=True)
def _sums(k: int, r: int, ca: Any, cc: Any, nc: Any, da: Any, dd: Any, nd: Any, lt: Any,
          price: Any) -> tuple[float, float]:  # fmt: skip
    w = 0.0
    for e in range(nc[r]):
        j = ca[r, e]
        w += cc[k, e] * lt[j] * price[j]
    v = 0.0
    for e in range(nd[r]):
        j = da[r, e]
        v += dd[k, e] * price[j]
    return w, v


@numba.njit(cache=True, nogil=True)
def _underwater(k: int, r: int, ca: Any, cc: Any, nc: Any, da: Any, dd: Any, nd: Any,
                mkt: Any) -> tuple[float, float]:  # fmt: skip
    """(max(0, debt - collateral), debt) at market prices."""
    c = 0.0
    for e in range(nc[r]):
        c += cc[k, e] * mkt[ca[r, e]]
    d = 0.0
    for e in range(nd[r]):
        d += dd[k, e] * mkt[da[r, e]]
    return (d - c if d > c else 0.0), d


@numba.njit(cache=True, nogil=True)
def _run_path(
    p: int, mult: Any, gas: Any, floors: Any, p0: Any, lt: Any, bonus: Any, pfee: Any,
    dexfee: Any, depth: Any, ca: Any, cv: Any, nc: Any, da: Any, dv: Any, nd: Any,
    cmask: Any, dmask: Any, params: Any, iparams: Any, cand: Any, value: Any, scalars: Any,
    ints: Any, by_asset: Any, worst: Any, violated: Any, tr_m: Any, tr_l: Any, tr_s: Any, cc: Any,
    dd: Any, pend: Any, defacc: Any, list_a: Any, list_b: Any,
) -> None:  # fmt: skip
    step_seconds = params[0]
    deviation = params[1]
    heartbeat = params[2]
    gas_units = params[3]
    eth_price = params[4]
    recovery = params[5]
    cf_thr = params[6]
    cf_hf = params[7]
    cf = params[8]
    min_left = params[9]
    eth = iparams[0]
    lag = iparams[1]
    round_limit = iparams[2]
    trace = iparams[5] != 0
    n_steps1 = mult.shape[0]
    n_assets = mult.shape[1]
    n_cand = cand.shape[0]

    for k in range(n_cand):
        r = cand[k]
        for e in range(nc[r]):
            cc[k, e] = cv[r, e]
        for e in range(nd[r]):
            dd[k, e] = dv[r, e]
        pend[k] = 0
        defacc[k] = 0.0

    oracle = p0.copy()
    updated = np.zeros(n_assets)
    inv = np.zeros(n_assets)
    pp = p0.copy()
    mkt = p0.copy()
    hist = np.empty((n_steps1, n_assets))
    def_asset = np.zeros(n_assets)
    deficit = 0.0
    liquidated = 0.0
    fee_usd = 0.0
    n_liq = 0
    hits = 0
    bad = False
    down = np.int64(-1)  # force a full scan at step 0
    up = np.int64(0)
    cur = list_a
    nxt = list_b
    n_cur = 0

    for t in range(n_steps1):
        now = t * step_seconds
        for j in range(n_assets):
            pp[j] = p0[j] * mult[t, j]
            if t > 0:
                inv[j] = inv[j] * (1.0 - recovery)
            imp = _impact(depth[j], inv[j], pp[j])
            if imp < floors[j]:
                bad = True
            mkt[j] = pp[j] * imp
        if t > 0:
            for j in range(n_assets):
                if lag == 0:
                    obs = mkt[j]
                elif t - lag >= 0:
                    obs = hist[t - lag, j]
                else:
                    obs = p0[j]
                if _deviates(obs, oracle[j], deviation) or now - updated[j] >= heartbeat:
                    bit = np.int64(1) << np.int64(min(j, 62))
                    if obs < oracle[j]:
                        down |= bit
                    elif obs > oracle[j]:
                        up |= bit
                    oracle[j] = obs
                    updated[j] = now
        eth_usd = mkt[eth] if eth >= 0 else eth_price
        gas_usd = gas_units * gas[t] * 1e-9 * eth_usd
        rounds = 0
        while True:
            # -- scan ----------------------------------------------------------------------
            n_nxt = 0
            if down != 0 or up != 0:
                for k in range(n_cand):
                    r = cand[k]
                    if pend[k] == 0 and (cmask[r] & down) == 0 and (dmask[r] & up) == 0:
                        continue
                    w, v = _sums(k, r, ca, cc, nc, da, dd, nd, lt, oracle)
                    if v > 0.0 and w < v:
                        pend[k] = 1
                        nxt[n_nxt] = k
                        n_nxt += 1
                    else:
                        pend[k] = 0
                down = np.int64(0)
                up = np.int64(0)
            else:
                for q in range(n_cur):
                    k = cur[q]
                    r = cand[k]
                    w, v = _sums(k, r, ca, cc, nc, da, dd, nd, lt, oracle)
                    if v > 0.0 and w < v:
                        pend[k] = 1
                        nxt[n_nxt] = k
                        n_nxt += 1
                    else:
                        pend[k] = 0
            tmp = cur
            cur = nxt
            nxt = tmp
            n_cur = n_nxt
            if n_cur == 0:
                break
            if rounds == round_limit:
                hits += 1
                break
            # -- round ---------------------------------------------------------------------
            executed = 0
            for q in range(n_cur):
                k = cur[q]
                r = cand[k]
                w, v = _sums(k, r, ca, cc, nc, da, dd, nd, lt, oracle)
                hf = w / v
                best = 0.0
                bi = -1
                bj = -1
                b_repay = 0.0
                b_seize = 0.0
                b_fee = 0.0
                b_flags = 0
                for ei in range(nc[r]):
                    ci = cc[k, ei]
                    if ci <= 0.0:
                        continue
                    i = ca[r, ei]
                    for ej in range(nd[r]):
                        dj = dd[k, ej]
                        if dj <= 0.0:
                            continue
                        j = da[r, ej]
                        repay, seize, fee, flags = _plan(
                            ci, dj, v, hf, oracle[i], oracle[j], bonus[i], pfee[i],
                            cf_thr, cf_hf, cf, min_left,
                        )  # fmt: skip
                        if flags == -1:
                            continue
                        proceeds = _proceeds(depth[i], inv[i], pp[i], dexfee[i], seize - fee)
                        profit = proceeds - repay * mkt[j] - gas_usd
                        if profit > best:
                            best = profit
                            bi = ei
                            bj = ej
                            b_repay = repay
                            b_seize = seize
                            b_fee = fee
                            b_flags = flags
                if bi < 0:
                    continue
                executed += 1
                i = ca[r, bi]
                j = da[r, bj]
                if b_flags & 2:
                    cc[k, bi] = 0.0
                else:
                    cc[k, bi] = max(cc[k, bi] - b_seize, 0.0)
                if b_flags & 1:
                    dd[k, bj] = 0.0
                else:
                    dd[k, bj] = max(dd[k, bj] - b_repay, 0.0)
                inv[i] += b_seize - b_fee
                imp = _impact(depth[i], inv[i], pp[i])
                if imp < floors[i]:
                    bad = True
                mkt[i] = pp[i] * imp
                liquidated += b_repay * oracle[j]
                fee_usd += b_fee * oracle[i]
                n_liq += 1
                empty = True
                for e in range(nc[r]):
                    if cc[k, e] != 0.0:
                        empty = False
                        break
                if empty:
                    for e in range(nd[r]):
                        if dd[k, e] > 0.0:
                            jj = da[r, e]
                            burned = dd[k, e] * oracle[jj]
                            defacc[k] += burned
                            def_asset[jj] += burned
                            deficit += burned
                            dd[k, e] = 0.0
            rounds += 1
            if executed == 0:
                break
            if lag == 0:
                for j in range(n_assets):
                    if _deviates(mkt[j], oracle[j], deviation):
                        bit = np.int64(1) << np.int64(min(j, 62))
                        if mkt[j] < oracle[j]:
                            down |= bit
                        elif mkt[j] > oracle[j]:
                            up |= bit
                        oracle[j] = mkt[j]
                        updated[j] = now
        for j in range(n_assets):
            hist[t, j] = mkt[j]
            now_m = mkt[j] / p0[j]
            if t == 0 or now_m < worst[p, j]:
                worst[p, j] = now_m
        if trace:
            for j in range(n_assets):
                tr_m[p, t, j] = mkt[j] / p0[j]
            tr_l[p, t] = liquidated
            mtm = 0.0
            for k in range(n_cand):
                s, _ = _underwater(k, cand[k], ca, cc, nc, da, dd, nd, mkt)
                mtm += s
            tr_s[p, t] = mtm + deficit

    for j in range(n_assets):
        by_asset[p, j] = def_asset[j]
    total = 0.0
    for k in range(n_cand):
        r = cand[k]
        s, d = _underwater(k, r, ca, cc, nc, da, dd, nd, mkt)
        if s > 0.0:
            for e in range(nd[r]):
                if dd[k, e] > 0.0:
                    j = da[r, e]
                    by_asset[p, j] += s * (dd[k, e] * mkt[j]) / d
        val = s + defacc[k]
        total += val
        value[k] = val
    scalars[p, 0] = total
    scalars[p, 1] = liquidated
    scalars[p, 2] = fee_usd
    scalars[p, 3] = deficit
    ints[p, 0] = n_liq
    ints[p, 1] = hits
    violated[p] = bad
