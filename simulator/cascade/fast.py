"""The fast cascade engine: numba, parallel over paths, and only the accounts that can move.

Same rules as ``simulator.cascade.reference``: the scalar formulas are literally the same
functions from ``simulator.cascade.rules``, compiled with numba. What differs is which accounts
are looked at when, and every skip below is exact: the reference engine, which looks at every
account in every round, gives the same liquidations in the same order (the tests compare them).

1. **Sparse accounts.** Each account with debt keeps its non-zero collateral and debt entries
   (asset index ascending, so sums add up in the reference's order) and bit masks of its
   collateral and debt assets, in account order.
2. **Candidates per path.** Liquidators only sell, so a market price is the scenario price
   times an impact factor in ``[floor, 1]``, and the oracle only ever holds past market prices:
   every oracle multiplier lies in ``[floor x min(1, path min), max(1, path max)]``; balances
   are scaled, a scaled unit of debt is worth at most its horizon's index growth more (the
   high end of the debt side includes it), one of collateral never less. Accounts
   are grouped by (collateral assets, debt assets) and sorted by a snapshot health factor HF0
   within a group (at its e-mode class's parameters, collateral at ``min(LT x r, 1)`` and debt
   at ``max(r, 1)`` of the price with ``r`` the class's price ratio, so it bounds both the HF
   and the market-value shortfall). Since HF >= HF0 x min(low end over the group's collateral)
   / max(high end over its debt), the accounts that can become liquidatable on the path are a prefix of each
   group (a galloping search), filtered by the same bound per account (on a copy of the
   bound's inputs stored in group order, so the prefixes are read sequentially). The rest are
   never liquidated and never under water there. ``floor`` starts at ``max(impact_floor_hint,
   rigorous floor)`` (the rigorous one: selling all the book's collateral at the top price).
   When a path's impact goes below it, the floor is lowered and the candidate set widened in
   place *before* the oracle can see the deeper price: the accounts added were never
   liquidatable so far and still hold their snapshot balances, so nothing is re-run. The
   floor only falls, so each group's prefix only grows: a widening looks only at the groups
   and refused slots whose collateral holds an asset whose floor was lowered, and at the
   prefixes' new slots.
3. **Layout.** Each account is one float64 record: a header of bytes (counts, asset indices)
   then amounts and deficit, 64-byte aligned, so an account of up to six entries is one cache
   line (memory traffic is most of the cost on a 2-core machine). Loops over an account's
   entries run over the book's widest account (unused entries hold 0, a trip count the CPU
   predicts) unless that is wider than six entries (``_FIXED_TRIPS``). A path's candidates live in per-block scratch arrays *in account order*
   (a widening merges the newcomers in), so every pass over them is sequential and the
   reference's account order comes for free. All helpers are inlined into the path kernel;
   records are prefetched a few accounts ahead wherever a list is walked.
4. **Scans.** An account's health factor changes only through its own liquidation, an
   oracle update or interest (the oracle value of a scaled unit, ``oc`` for collateral and
   ``od`` for debt: oracle x index growth), so a candidate is *watched* (HF >= 1 at its last exact check), *listed*
   (liquidatable), *parked* (liquidatable, point 5) or *new* (admitted, not checked yet).
   After an oracle update or a step's interest a scan skips a watched account when none of
   its collateral assets' ``oc`` fell and none of its debt assets' ``od`` rose since the last
   scan (bit masks), or when its HF at its last exact check (kept as a float32 rounded down)
   times the worst relative move since then (smallest ``oc`` ratio over largest ``od`` ratio;
   snapshots per scan, "epochs"; a class's price ratio is constant and cancels) stays
   above 1; a listed account stays listed without a check unless the oracle moved in its
   favour. A round writes the next round's list itself: an account it liquidates is checked
   again at once (the oracle only moves between rounds), the others stay listed.
5. **Parking.** A listed account for which no (collateral, debt) pair can pay for the gas is
   not evaluated pair by pair. The bound: repaying ``r`` USD of debt j against collateral i
   seizes ``r (1 + b_i) / P_i`` tokens, of which the treasury keeps ``b_i pf_i / P_i`` per
   USD, the pool charges its fee and never pays more than its marginal price ``mkt_i``, so the
   profit before gas is at most ``r (((1 + b_i) - b_i pf_i) (1 - fee_i) mkt_i / P_i - mkt_j /
   P_j)`` (with the account's class's bonus and prices per scaled unit, and ``mkt`` times the
   index growth: per-(class, asset) tables refreshed when a price moves, ``_reprice``), with
   ``r`` at most the pair's repayment cap. Such an account is parked: it leaves the scans and sits in a
   compact list of its own (``_park_row``) that each round merges with the listed accounts
   in account order, looking at one again only when its repayment cap grown by the oracle's
   moves times the best margin one of its pairs could earn now (bounded with its
   collateral's largest gain factor, over all assets and then over its own) could pay for
   the gas. A parked account that could not pay even with every venue back at its
   reference price and every reference price at its impact floor is *cold*: until the next
   scan or tick (the only times the oracle, the gas or the path move, and venues only
   recover towards the reference in between) it sits in a list the rounds do not walk. A
   sale that takes a reference price below its floor makes the rest of the round walk the
   cold ones too, and the lowered floor rebuilds the lists.
6. **Output.** Paths run in parallel blocks (``numba.prange``) with per-block scratch;
   per-path results go to fixed rows and non-zero per-account shortfalls to per-block buffers
   (grown and run again in the rare case they overflow), so results do not depend on the
   number of threads or on the chunking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import cgutils as _cgutils
from numba.core import types
from numba.extending import intrinsic

from simulator import venues
from simulator.cascade import rules
from simulator.cascade.config import EngineConfig
from simulator.cascade.model import CascadeOutput, Market, prepare
from simulator.cascade.parts import market_arrays, market_settings, path_arrays
from simulator.errors import InputError
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book

__all__ = ["SparseAccounts", "run_fast"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Asset indices and per-account trip counts are stored as bytes (``_pack_records``).
_MAX_ASSETS = 255

#: Each candidate's e-mode class is a byte.
_MAX_CLASSES = 256

#: Loops over an account's entries run over as many entries as its record's header says:
#: the book's widest (``kc`` collateral, ``kd`` debt entries; the unused ones hold amount 0:
#: a trip count the CPU predicts) when ``kc + kd`` is at most this, else the account's own
#: (a book with a few wide accounts would otherwise pay their width on every account: ten
#: accounts holding every asset made workload B 40% slower, 16% with their own counts).
_FIXED_TRIPS = 6

#: ``pend`` codes of a candidate: watched (HF >= 1 at its last check, ``lhf`` / ``lepoch``),
#: listed (liquidatable), parked (liquidatable, no liquidation pays: the parked list), new
#: (admitted by a widening, not checked yet).
_WATCHED = 0
_LISTED = 1
_PARKED = 2
_NEW = 3


class _AaveArrays(NamedTuple):
    """Aave's part of the kernel's inputs: per asset ``(n_assets,)`` and per (e-mode class,
    asset) ``(n_classes, n_assets)``."""

    protocol_fee: Any
    rigorous_floor: Any  # the lowest reference impact a path can reach (_rigorous_floors)
    floor_hint: Any  # the first guess of it (EngineConfig.impact_floor_hint)
    rate_growth_min: Any  # an exchange rate's growth extremes over the horizon
    rate_growth_max: Any
    class_lt: Any
    class_bonus: Any
    class_ratio: Any  # the class's price over the oracle's
    class_gain: Any  # USD a liquidator gets per USD seized, after the fees (_reprice)


class _AaveSettings(NamedTuple):
    """Aave V3.3's constants (``EngineConfig``) and the liquidator's sizing."""

    close_factor_threshold_usd: float
    close_factor_hf: float
    default_close_factor: float
    min_leftover_usd: float
    optimal: bool


#: Slack on the skip bounds (relative, and in USD where a bound is near 0), far above
#: float64 rounding of the sums they bound.
_BOUND_SLACK = 1e-9

#: Helpers are inlined into the kernels at numba IR level: a call passing a dozen arrays
#: costs more than the few flops most of them do. ``error_model="numpy"``: IEEE division
#: (every division here is guarded) instead of a zero check and exception path on each one.
_inline = numba.njit(cache=True, nogil=True, inline="always", error_model="numpy")
_best_liquidation = _inline(rules.best_liquidation)
_deviates = _inline(rules.oracle_deviates)
_decay = _inline(rules.arbitrage_decay)
_ref_impact = _inline(rules.reference_impact)
_between = _inline(rules.path_between)
_vfactor = _inline(venues.price_factor)
_liquidatable = _inline(rules.liquidatable)


@_inline
def _up32(x: float) -> Any:
    """The smallest float32 >= ``x``."""
    f = np.float32(x)
    if np.float64(f) < x:
        f = np.nextafter(f, np.float32(np.inf))
    return f


@_inline
def _hf32(w: float, v: float) -> Any:
    """Health factor ``w / v`` (``inf`` without debt) as the largest float32 <= it: the
    scans' bounds only need a lower bound, and four bytes read faster than eight."""
    x = w / v if v > 0.0 else np.inf
    f = np.float32(x)
    if np.float64(f) > x:
        f = np.nextafter(f, np.float32(-np.inf))
    return f


@_inline
def _watch(k: int, w: float, v: float, epoch: int, pend: Any, lhf: Any, lepoch: Any) -> None:
    """Candidate ``k`` is watched: not liquidatable at its exact check at epoch ``epoch``,
    with health factor ``w / v`` (kept rounded down, ``_hf32``)."""
    pend[k] = _WATCHED
    lhf[k] = _hf32(w, v)
    lepoch[k] = epoch


#: How many accounts ahead the copy of newcomers' records prefetches them: they are sparse
#: in the book's records, so the hardware prefetcher cannot guess them, and a record from
#: memory costs far more than copying it.
_AHEAD = 8


cgutils: Any = _cgutils  # untyped


def _prefetch_row_typer(typingctx: Any, arr: Any, row: Any) -> Any:
    """Hint the CPU to fetch the start of row ``row`` of the array ``arr`` into cache
    (LLVM ``llvm.prefetch``: read, high locality). No effect on results."""
    sig = types.void(arr, row)

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(types.intp, 0)
        row_index = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = cgutils.get_item_pointer2(
            context,
            builder,
            data=ary.data,
            shape=cgutils.unpack_tuple(builder, ary.shape),
            strides=cgutils.unpack_tuple(builder, ary.strides),
            layout=aryty.layout,
            inds=[row_index] + [zero] * (aryty.ndim - 1),
            wraparound=False,
            boundscheck=False,
        )
        i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [i8p, i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return sig, codegen


_prefetch_row: Any = intrinsic(_prefetch_row_typer)


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


def _rigorous_floors(market: Market, mult: FloatArray) -> FloatArray:
    """Per asset: the reference impact of selling all the book's collateral at the top price.

    A floor no path can break: liquidators never sell more than the book holds, and never
    at more than the highest scenario price (the reference price is at most the path's). An
    exchange-rate asset's oracle price follows its base's, so it takes the lower of the two.
    """
    total = market.collateral.sum(axis=0) * market.supply_growth.max(axis=0)
    top = market.price0 * np.maximum(1.0, mult.max(axis=(0, 1)))
    out = np.empty(market.price0.shape[0])
    for j in range(out.shape[0]):
        c = float(market.ref_coef[j])
        if c <= 0.0 or total[j] <= 0.0:
            out[j] = 1.0  # no impact, or nothing can ever be sold
        else:
            out[j] = math.exp(-c * math.sqrt(float(total[j] * top[j]))) * (1.0 - _BOUND_SLACK)
    for r in np.flatnonzero(market.rate_base >= 0):
        out[r] = min(out[r], out[market.rate_base[r]])
    return out


@dataclass(frozen=True, slots=True)
class _Groups:
    """Accounts grouped by (collateral assets, debt assets), each group sorted by snapshot HF.

    For oracle multipliers in ``[lo, hi]``, HF >= HF0 x min(lo over the group's collateral) /
    max(hi over its debt), so the accounts that can become liquidatable on a path are a
    prefix of each group (slots ``ptr[g] ..``). ``hf0`` is each slot's HF0, for the prefix
    searches; ``rec`` holds one row per slot with what the per-account bound needs
    (``_pack_records``): ``[account row, header (trips, assets), coll x LT x price, debt x
    price]`` at the snapshot (USD), ``lay`` its offsets; ``scm`` is each slot's collateral
    mask (``_narrow_mask``), for the widenings.
    """

    ptr: IntArray
    cmask: IntArray
    dmask: IntArray
    rec: FloatArray
    lay: IntArray
    hf0: FloatArray
    scm: npt.NDArray[Any]

    @classmethod
    def build(cls, rows: SparseAccounts, market: Market) -> _Groups:
        # per (class, asset) values at the snapshot that bound both the HF (collateral x LT
        # x the class's price ratio r) and the market value the horizon's shortfall reads
        # (ratio 1): collateral at min(LT x r, 1), debt at max(r, 1) (the same as the HF's
        # where r = 1, LT <= 1)
        klass = market.account_class[rows.index][:, None]
        r = market.class_ratio
        weight = market.price0[None, :] * np.minimum(market.class_lt * r, 1.0)
        owed = market.price0[None, :] * np.maximum(r, 1.0)
        w_entry = rows.coll_amount * weight[klass, rows.coll_asset]
        v_entry = rows.debt_amount * owed[klass, rows.debt_asset]
        w0 = w_entry.sum(axis=1)
        v0 = v_entry.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            hf0 = np.where(v0 > 0.0, w0 / v0, np.inf)
        keys = np.stack([rows.coll_mask, rows.debt_mask], axis=1)
        uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        order = np.lexsort((hf0, inverse)).astype(np.int64)
        ptr = np.zeros(uniq.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(inverse, minlength=uniq.shape[0]), out=ptr[1:])
        rec, lay = _pack_records(
            [order], rows, w_entry[order], v_entry[order], order=order, extra=0
        )
        return cls(
            ptr=ptr,
            cmask=np.ascontiguousarray(uniq[:, 0]),
            dmask=np.ascontiguousarray(uniq[:, 1]),
            rec=rec,
            lay=lay,
            hf0=hf0[order],
            scm=_narrow_mask(rows.coll_mask[order], market.price0.shape[0]),
        )


def _pack_records(
    lead: list[npt.NDArray[Any]],
    rows: SparseAccounts,
    coll_values: FloatArray,
    debt_values: FloatArray,
    *,
    order: IntArray | None = None,
    extra: int,
) -> tuple[FloatArray, IntArray]:
    """One float64 row per account, so an account is one cache line in most books: ``lead``
    columns, a header of bytes ``[coll trips, debt trips, coll assets (kc), debt assets
    (kd)]`` (trips: how many entries loops run over, ``_FIXED_TRIPS``) in as few float64
    columns as hold them (read through a ``uint8`` view of the records), then ``[coll values
    (kc), debt values (kd)]`` and ``extra`` zero columns, padded to a multiple of 8; rows in
    ``order`` of ``rows`` (all, in order, when ``None``).

    Returns the records and the offsets ``[coll assets (byte), coll values (column), debt
    assets (byte), debt values (column), first extra column, the two trip counts (byte)]``.
    """
    take = slice(None) if order is None else order
    n, kc = rows.coll_amount.shape
    kd = rows.debt_amount.shape[1]
    a = len(lead)
    h = 8 * a  # the header's first byte
    c = a - (-(2 + kc + kd) // 8)  # the first value column
    lay = np.array([h + 2, c, h + 2 + kc, c + kc, c + kc + kd, h], dtype=np.int64)
    rec = _aligned_rows(n, -(-(c + kc + kd + extra) // 8) * 8)
    for i, column in enumerate(lead):
        rec[:, i] = column
    head = rec.view(np.uint8)
    fixed = kc + kd <= _FIXED_TRIPS
    head[:, h] = kc if fixed else rows.n_coll[take]
    head[:, h + 1] = kd if fixed else rows.n_debt[take]
    head[:, h + 2 : h + 2 + kc] = rows.coll_asset[take]
    head[:, h + 2 + kc : h + 2 + kc + kd] = rows.debt_asset[take]
    rec[:, lay[1] : lay[1] + kc] = coll_values
    rec[:, lay[3] : lay[3] + kd] = debt_values
    return rec, lay


def _aligned_rows(n: int, width: int) -> FloatArray:
    """A zeroed ``(n, width)`` float64 array whose data starts on a 64-byte boundary, so a
    row of 8 columns is exactly one cache line."""
    flat = np.zeros(n * width + 8)
    skip = (-flat.ctypes.data % 64) // 8
    return flat[skip : skip + n * width].reshape(n, width)


def _records(rows: SparseAccounts) -> tuple[FloatArray, IntArray]:
    """The candidates' records: ``[header (counts, assets), coll amounts (tokens), debt
    amounts (tokens), deficit burned (USD)]`` (``_pack_records``)."""
    return _pack_records([], rows, rows.coll_amount, rows.debt_amount, extra=1)


def _narrow_mask(mask: IntArray, n_assets: int) -> npt.NDArray[Any]:
    """``mask`` as uint16 when a bit per asset fits (the scan reads two masks per candidate:
    fewer bytes, fewer cache misses), else as it is (int64). Two types, so two compiled
    variants of the kernels at most."""
    return mask.astype(np.uint16) if n_assets <= 16 else mask


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What the kernels read of a book, whatever the paths: its debtors' entries, their
    groups, records (``_records``, ``lay`` their offsets) and masks (``_narrow_mask``)."""

    rows: SparseAccounts
    groups: _Groups
    records: FloatArray
    lay: IntArray
    cmask: npt.NDArray[Any]
    dmask: npt.NDArray[Any]
    cls: npt.NDArray[np.uint8]


_PREPARED: dict[int, tuple[Book, _Prepared]] = {}


def _prepared(book: Book, market: Market) -> _Prepared:
    """The book's ``_Prepared`` (depends on the book only; the last two books' are kept, so
    chunks of one run share the work)."""
    hit = _PREPARED.get(id(book))
    if hit is not None and hit[0] is book:
        return hit[1]
    debtors = np.flatnonzero((market.debt > 0.0).any(axis=1)).astype(np.int64)
    rows = SparseAccounts.from_dense(market.collateral, market.debt, debtors)
    prepared = _Prepared(
        rows,
        _Groups.build(rows, market),
        *_records(rows),
        _narrow_mask(rows.coll_mask, book.n_assets),
        _narrow_mask(rows.debt_mask, book.n_assets),
        np.ascontiguousarray(market.account_class[debtors], dtype=np.uint8),
    )
    while len(_PREPARED) >= 2:
        _PREPARED.pop(next(iter(_PREPARED)))
    _PREPARED[id(book)] = (book, prepared)
    return prepared


def run_fast(
    book: Book,
    paths: PricePaths,
    config: EngineConfig | None = None,
    *,
    trace: bool = False,
) -> CascadeOutput:
    """Replay the cascade on every path; same results as ``run_reference``."""
    config = config or EngineConfig()
    if book.n_assets > _MAX_ASSETS:
        raise InputError(
            f"the book has {book.n_assets} assets; the fast engine handles at most "
            f"{_MAX_ASSETS} (its records keep asset indices in bytes): use run_reference"
        )
    if book.n_classes > _MAX_CLASSES:
        raise InputError(
            f"the book has {book.n_classes} e-mode classes; the fast engine handles at most "
            f"{_MAX_CLASSES} (it keeps an account's class in a byte): use run_reference"
        )
    paths, market = prepare(book, paths, config)
    mult, gas = path_arrays(paths)
    n_paths, n_steps1, n_assets = mult.shape
    prep = _prepared(book, market)
    groups = prep.groups
    rigorous = _rigorous_floors(market, mult)
    floors = np.maximum(rigorous, config.impact_floor_hint)
    # an exchange-rate asset's oracle multiplier is its rate's growth times its base's
    rated = np.flatnonzero(market.rate_base >= 0)
    g_min = np.ones(n_assets)
    g_max = np.ones(n_assets)
    for j in rated:
        g = market.rate_ratio[:, j] / market.rate_ratio[0, j]
        g_min[j], g_max[j] = float(g.min()), float(g.max())
    path_min = np.minimum(1.0, mult.min(axis=1))
    path_max = np.maximum(1.0, mult.max(axis=1))
    for j in rated:
        b = market.rate_base[j]
        path_min[:, j] = np.minimum(path_min[:, j], path_min[:, b] * g_min[j])
        path_max[:, j] = np.maximum(path_max[:, j], path_max[:, b] * g_max[j])
    # the debt side of the bounds: the highest price times the debt's growth at the horizon
    # (index growth never falls)
    hi = np.ascontiguousarray(path_max * market.debt_growth[-1][None, :])
    path_min = np.ascontiguousarray(path_min)
    counts = _count_candidates(
        np.ascontiguousarray(floors[None, :] * path_min),
        hi,
        groups.ptr,
        groups.hf0,
        groups.cmask,
        groups.dmask,
    )
    # many small blocks, handed out one at a time (path costs are heavy-tailed)
    n_blocks = int(min(n_paths, max(1, numba.get_num_threads()) * 32))
    block_start = (np.arange(n_blocks + 1, dtype=np.int64) * n_paths) // n_blocks
    per_block = np.add.reduceat(counts, block_start[:-1]) if n_paths else counts
    arrays = market_arrays(market)
    settings = market_settings(market, config, trace=trace)
    cb = market.class_bonus
    aave = _AaveArrays(
        protocol_fee=np.ascontiguousarray(market.protocol_fee, dtype=np.float64),
        rigorous_floor=np.ascontiguousarray(rigorous, dtype=np.float64),
        floor_hint=np.ascontiguousarray(floors, dtype=np.float64),
        rate_growth_min=g_min,
        rate_growth_max=g_max,
        class_lt=np.ascontiguousarray(market.class_lt, dtype=np.float64),
        class_bonus=np.ascontiguousarray(cb, dtype=np.float64),
        class_ratio=np.ascontiguousarray(market.class_ratio, dtype=np.float64),
        # what a liquidator gets per USD of collateral seized at the class's oracle price,
        # after the treasury's fee and the pool's (_reprice)
        class_gain=np.ascontiguousarray(
            ((1.0 + cb) - cb * market.protocol_fee[None, :]) * (1.0 - market.dex_fee[None, :])
        ),
    )
    aave_settings = _AaveSettings(
        close_factor_threshold_usd=float(config.close_factor_threshold_usd),
        close_factor_hf=float(config.close_factor_hf),
        default_close_factor=float(config.default_close_factor),
        min_leftover_usd=float(config.min_leftover_usd),
        optimal=config.liquidator_sizing == "optimal",
    )
    scalars = np.zeros((n_paths, 4))
    ints = np.zeros((n_paths, 3), dtype=np.int64)
    by_asset = np.zeros((n_paths, n_assets))
    worst = np.zeros((n_paths, n_assets))
    shape_t = (n_paths, n_steps1) if trace else (1, 1)
    tr_m = np.zeros((*shape_t, n_assets))
    tr_l = np.zeros(shape_t)
    tr_s = np.zeros(shape_t)
    slack = 64
    while True:
        capacity = (per_block + slack).astype(np.int64)
        out_start = np.zeros(n_blocks + 1, dtype=np.int64)
        np.cumsum(capacity, out=out_start[1:])
        out_path = np.zeros(int(out_start[-1]), dtype=np.int64)
        out_row = np.zeros(int(out_start[-1]), dtype=np.int64)
        out_val = np.zeros(int(out_start[-1]))
        out_n = np.zeros(n_blocks, dtype=np.int64)
        old_chunk = numba.set_parallel_chunksize(1)
        try:
            _simulate(
                mult, gas, arrays, settings, aave, aave_settings,
                prep.records, prep.lay,
                prep.cmask, prep.dmask, prep.cls, groups.ptr, groups.cmask, groups.dmask, groups.hf0, groups.scm,
                groups.rec, groups.lay,
                block_start, out_start, out_path, out_row, out_val, out_n,
                scalars, ints, by_asset, worst, tr_m, tr_l, tr_s,
            )  # fmt: skip
        finally:
            numba.set_parallel_chunksize(old_chunk)
        if (out_n >= 0).all():
            break
        per_block = per_block * 4 + int(prep.rows.index.shape[0])  # rare: more bad debt than room
    keep = np.concatenate(
        [np.arange(out_start[b], out_start[b] + out_n[b]) for b in range(n_blocks)]
        or [np.zeros(0, dtype=np.int64)]
    )
    return CascadeOutput(
        shortfall_usd=scalars[:, 0].copy(),
        liquidated_usd=scalars[:, 1].copy(),
        n_liquidations=ints[:, 0].copy(),
        protocol_fee_usd=scalars[:, 2].copy(),
        deficit_usd=scalars[:, 3].copy(),
        rounds_limit_hits=ints[:, 1].copy(),
        shortfall_by_asset=by_asset,
        account_path=out_path[keep],
        account_index=prep.rows.index[out_row[keep]],
        account_shortfall_usd=out_val[keep],
        worst_market=worst,
        reruns=int((ints[:, 2] > 0).sum()),
        trace_market=tr_m if trace else None,
        trace_liquidated_usd=tr_l if trace else None,
        trace_shortfall_usd=tr_s if trace else None,
    )


# -- candidate selection ----------------------------------------------------------------------


@_inline
def _group_prefix(
    g: int, start: int, lo: Any, hi: Any, ptr: Any, ghf: Any, cmask: Any, dmask: Any
) -> int:
    """End ``z`` of the slots ``[ptr[g], z)`` of group ``g`` that may become liquidatable
    within [lo, hi]. ``start`` is a slot known to be in that prefix (or ``ptr[g]``); the
    search gallops from there."""
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
    limit = max_hi * (1.0 + _BOUND_SLACK)
    a = start
    b = ptr[g + 1]
    # the first member whose HF0 x min_lo reaches the limit (HF0 ascending): gallop from
    # ``start`` (prefixes are mostly short, or grown a little since the last search), then
    # bisect the last step
    span = 1
    while a + span - 1 < b and ghf[a + span - 1] * min_lo < limit:
        span *= 2
    lo_i = a + span // 2
    hi_i = min(a + span - 1, b)
    while lo_i < hi_i:
        m = (lo_i + hi_i) // 2
        if ghf[m] * min_lo < limit:
            lo_i = m + 1
        else:
            hi_i = m
    return lo_i


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _count_candidates(lo: Any, hi: Any, ptr: Any, ghf: Any, cmask: Any, dmask: Any) -> Any:
    n_paths = lo.shape[0]
    n_groups = cmask.shape[0]
    out = np.zeros(n_paths, dtype=np.int64)
    for p in numba.prange(n_paths):
        c = 0
        for g in range(n_groups):
            c += _group_prefix(g, ptr[g], lo[p], hi[p], ptr, ghf, cmask, dmask) - ptr[g]
        out[p] = c
    return out


@_inline
def _n_coll(k: int, rb: Any, lay: Any) -> Any:
    """How many collateral entries of record ``k`` loops run over (``_FIXED_TRIPS``);
    ``rb`` is the records' byte view."""
    return np.int64(rb[k, lay[5]])


@_inline
def _n_debt(k: int, rb: Any, lay: Any) -> Any:
    """How many debt entries of record ``k`` loops run over (``_n_coll``)."""
    return np.int64(rb[k, lay[5] + 1])


@_inline
def _may_trigger(s: int, lo: Any, hi: Any, brec: Any, bb: Any, blay: Any) -> bool:
    """Can the account in slot ``s`` be liquidatable with oracle multipliers in
    ``[lo, hi]``? (collateral x LT at the low end below debt at the high end)"""
    w = 0.0
    for e in range(_n_coll(s, bb, blay)):
        j = np.int64(bb[s, blay[0] + e])
        w += brec[s, blay[1] + e] * lo[j]
    v = 0.0
    for e in range(_n_debt(s, bb, blay)):
        v += brec[s, blay[3] + e] * hi[np.int64(bb[s, blay[2] + e])]
    return v > 0.0 and w < v * (1.0 + _BOUND_SLACK)


@_inline
def _copy_in(
    k: int, q: int, src: Any, cmask: Any, dmask: Any, scls: Any, cand: Any, rec: Any,
    lcm: Any, ldm: Any, lcls: Any, pend: Any, lhf: Any, lepoch: Any,
) -> None:  # fmt: skip
    """Make account row ``q`` candidate ``k`` with its snapshot balances, unchecked."""
    cand[k] = q
    for f in range(src.shape[1]):
        rec[k, f] = src[q, f]
    lcm[k] = cmask[q]
    ldm[k] = dmask[q]
    lcls[k] = scls[q]
    pend[k] = _NEW
    lhf[k] = 0.0
    lepoch[k] = 0


@_inline
def _move(
    a: int, b: int, cand: Any, rec: Any, lcm: Any, ldm: Any, lcls: Any, pend: Any, lhf: Any,
    lepoch: Any,
) -> None:  # fmt: skip
    """Move candidate ``a`` to index ``b``."""
    cand[b] = cand[a]
    for f in range(rec.shape[1]):
        rec[b, f] = rec[a, f]
    lcm[b] = lcm[a]
    ldm[b] = ldm[a]
    lcls[b] = lcls[a]
    pend[b] = pend[a]
    lhf[b] = lhf[a]
    lepoch[b] = lepoch[a]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _widen(
    floor: Any, pmin: Any, hi: Any, src: Any, cmask: Any, dmask: Any, scls: Any,
    g_ptr: Any, g_cmask: Any, g_dmask: Any, ghf: Any, scm: Any, brec: Any, bb: Any, blay: Any,
    stamp: Any, newpos: Any, zg: Any, rej: Any, cand: Any, rec: Any, lcm: Any, ldm: Any,
    lcls: Any, pend: Any, lhf: Any, lepoch: Any, n_cand: int, lowered: Any,
) -> int:  # fmt: skip
    """Merge the accounts the bound ``[floor x pmin, hi]`` (``hi``: the debt side's, index
    growth included) admits, and that are not
    candidates yet, into the candidates (kept in account order); returns their new count.

    Incremental over a path: the floor only falls, so each group's prefix only grows.
    ``zg[g]`` is where group ``g``'s prefix ended at the last call and ``rej[:zg[-1]]`` the
    prefix slots the per-account bound refused then; only those and the prefixes' new slots
    are looked at, and only where the collateral holds an asset whose floor was lowered
    (bits ``lowered``; ``scm`` is each slot's collateral mask). The first call of a path
    (``lowered == -1``) starts them afresh. A newcomer holds its snapshot balances: it was
    never liquidatable so far; the next scan checks it (``_NEW``). (Not inlined: numba
    cannot inline a function that sorts.)
    """
    n_groups = g_cmask.shape[0]
    first = lowered == -1
    if first:
        for g in range(n_groups):
            zg[g] = g_ptr[g]
        zg[n_groups] = 0
    lo = floor * pmin
    # the slots to look at: the ones refused before (the bound is looser now), then the
    # prefixes' new slots
    n_old = zg[n_groups]
    n_todo = n_old
    for g in range(n_groups):
        if not first and (g_cmask[g] & lowered) == 0:
            continue  # its bound has not moved since the last call
        if g + 2 < n_groups:
            _prefetch_row(ghf, zg[g + 2])  # the groups' prefix ends are far apart
        z = _group_prefix(g, zg[g], lo, hi, g_ptr, ghf, g_cmask, g_dmask)
        for s in range(zg[g], z):
            rej[n_todo] = s
            n_todo += 1
        zg[g] = z
    # the per-account bound admits a slot's account (stamped 2) or refuses the slot again
    # (``rej`` is compacted in place: ``n_rej`` never passes the index being read)
    n_new = 0
    n_rej = 0
    for r in range(n_todo):
        s = rej[r]
        if r < n_old and (scm[s] & lowered) == 0:
            rej[n_rej] = s  # refused before, and its bound has not moved
            n_rej += 1
            continue
        if _may_trigger(s, lo, hi, brec, bb, blay):
            q = int(brec[s, 0])
            stamp[q] = 2
            newpos[n_new] = q
            n_new += 1
        else:
            rej[n_rej] = s
            n_rej += 1
    zg[n_groups] = n_rej
    if n_new == 0:
        return n_cand
    if n_new * 32 > stamp.shape[0]:  # many: collect them in order from the stamps
        c = 0
        for q in range(stamp.shape[0]):
            if stamp[q] == 2:
                newpos[c] = q
                c += 1
    else:
        newpos[:n_new].sort()
    for c in range(n_new):
        stamp[newpos[c]] = 1
    # merge from the back: old candidates after a newcomer move up to make room
    i = n_cand - 1
    w = n_cand + n_new - 1
    for c in range(n_new - 1, -1, -1):
        if c >= _AHEAD:
            _prefetch_row(src, newpos[c - _AHEAD])
            _prefetch_row(cmask, newpos[c - _AHEAD])
            _prefetch_row(dmask, newpos[c - _AHEAD])
        q = newpos[c]
        while i >= 0 and cand[i] > q:
            _move(i, w, cand, rec, lcm, ldm, lcls, pend, lhf, lepoch)
            i -= 1
            w -= 1
        _copy_in(w, q, src, cmask, dmask, scls, cand, rec, lcm, ldm, lcls, pend, lhf, lepoch)
        w -= 1
    return n_cand + n_new


@_inline
def _rate_floors(min_imp: Any, rate_base: Any) -> None:
    """An exchange-rate asset's oracle price moves with its base's reference impact too."""
    for j in range(min_imp.shape[0]):
        b = np.int64(rate_base[j])
        if b >= 0 and min_imp[b] < min_imp[j]:
            min_imp[j] = min_imp[b]


@_inline
def _lower_floors(min_imp: Any, floor: Any, rigorous: Any) -> Any:
    """Lower the impact floor of every asset whose impact went below it (to the impact
    seen, or further: twice as far from 1, not below the rigorous floor); returns their bit
    mask."""
    lowered = np.int64(0)
    for j in range(floor.shape[0]):
        if min_imp[j] < floor[j]:
            floor[j] = min(min_imp[j], max(rigorous[j], 2.0 * min_imp[j] - 1.0))
            lowered |= np.int64(1) << np.int64(min(j, 62))
    return lowered


# -- per-candidate quantities ---------------------------------------------------------------


@_inline
def _sums(
    k: int, rec: Any, rb: Any, lay: Any, lcls: Any, clt: Any, pc: Any, pd: Any
) -> tuple[float, float]:
    """(sum of collateral x LT, sum of debt) of candidate ``k`` at its class's oracle prices
    per scaled unit (``pc`` collateral, ``pd`` debt, ``(classes, assets)``), USD."""
    c = np.int64(lcls[k])
    w = 0.0
    for e in range(_n_coll(k, rb, lay)):
        j = np.int64(rb[k, lay[0] + e])
        w += rec[k, lay[1] + e] * clt[c, j] * pc[c, j]
    v = 0.0
    for e in range(_n_debt(k, rb, lay)):
        v += rec[k, lay[3] + e] * pd[c, np.int64(rb[k, lay[2] + e])]
    return w, v


@_inline
def _underwater(
    k: int, rec: Any, rb: Any, lay: Any, mkt: Any, sg: Any, bg: Any
) -> tuple[float, float]:
    """(max(0, debt - collateral), debt) of candidate ``k`` at reference prices ``mkt``, USD (scaled
    balances times the index growth ``sg`` / ``bg``)."""
    c = 0.0
    for e in range(_n_coll(k, rb, lay)):
        j = np.int64(rb[k, lay[0] + e])
        c += rec[k, lay[1] + e] * (mkt[j] * sg[j])
    d = 0.0
    for e in range(_n_debt(k, rb, lay)):
        j = np.int64(rb[k, lay[2] + e])
        d += rec[k, lay[3] + e] * (mkt[j] * bg[j])
    return (d - c if d > c else 0.0), d


@_inline
def _rel(now: float, then: float) -> float:
    """``now / then`` (``inf`` for a price that left zero, 1 for one still at zero)."""
    if then > 0.0:
        return now / then
    if now > 0.0:
        return np.inf
    return 1.0


@_inline
def _epoch_ratios(
    e: int, oc: Any, od: Any, ep_oc: Any, ep_od: Any, stable_mask: Any, ratios: Any,
    r_top: Any,
) -> None:  # fmt: skip
    """Relative moves since epoch ``e`` of the oracle value of a scaled unit of collateral
    (``oc``) and of debt (``od``; oracle x index growth): the worst move, the smallest
    collateral move divided by the largest debt move over the near-constant assets
    (``ratios[e, 0]``) or over all assets (``ratios[e, 1]``), and the largest of all,
    ``r_top``. (A class's price ratio is constant, so it cancels.)"""
    n = oc.shape[0]
    low = np.inf
    top_all = 0.0
    top_sub = 0.0
    top_c = 0.0
    for j in range(n):
        xc = _rel(oc[j], ep_oc[e, j])
        x = _rel(od[j], ep_od[e, j])
        low = min(low, xc)
        top_c = max(top_c, xc)
        top_all = max(top_all, x)
        if stable_mask & (np.int64(1) << np.int64(min(j, 62))):
            top_sub = max(top_sub, x)
    r_all = low / top_all if top_all > 0.0 and top_all < np.inf else 0.0
    r_sub = low / top_sub if top_sub > 0.0 and top_sub < np.inf else 0.0
    ratios[e, 0] = r_all if top_sub == 0.0 else r_sub
    ratios[e, 1] = r_all
    r_top[e] = max(top_all, top_c)


@_inline
def _reprice(
    j: int, oc: Any, od: Any, mkt: Any, ref: Any, sg: Any, bg: Any, ratio: Any, bonus: Any,
    gfac: Any, pc: Any, pd: Any, gain: Any, crel: Any, mrel: Any, capf: Any,
) -> None:  # fmt: skip
    """Refresh asset ``j``'s entries of the per-(class, asset) tables (after its venue,
    reference or oracle price or its index moved): ``pc`` / ``pd`` the class's oracle value of a scaled
    unit of collateral / debt (``oc`` / ``od`` times the class's price ratio), and what the
    profit bound reads: ``gain`` is the most a liquidator can get per USD of debt repaid
    against collateral ``j`` (the seized collateral less the treasury's fee, sold at the
    pool's marginal price less its fee; module docstring, point 5): the gain factor ``gfac``
    times ``crel``, the venue's value of a scaled unit (``mkt``) over the class's oracle
    value; ``mrel`` what a USD of debt ``j`` costs at its reference price ``ref``, ``capf``
    USD of repayment per
    scaled unit of collateral ``j``."""
    for c in range(ratio.shape[0]):
        pcj = oc[j] * ratio[c, j]
        pdj = od[j] * ratio[c, j]
        pc[c, j] = pcj
        pd[c, j] = pdj
        if pcj > 0.0:
            crel[c, j] = (mkt[j] * sg[j]) / pcj
            gain[c, j] = gfac[c, j] * crel[c, j]
            capf[c, j] = pcj / (1.0 + bonus[c, j])
        else:
            crel[c, j] = 0.0
            gain[c, j] = 0.0
            capf[c, j] = 0.0
        mrel[c, j] = (ref[j] * bg[j]) / pdj if pdj > 0.0 else 0.0


@_inline
def _best_pair(
    k: int, w: float, v: float, rec: Any, rb: Any, lay: Any, lcls: Any,
    pc: Any, pd: Any, ref: Any, sg: Any, bg: Any, inv: Any, bonus: Any, pfee: Any,
    depth: Any, dexfee: Any, vkind: Any, vxs: Any, vys: Any, vcount: Any, gain: Any,
    mrel: Any, capf: Any, gas_usd: float, cf_thr: float, cf_hf: float, cf: float,
    min_left: float, optimal: bool,
) -> tuple[int, int, float, float, float, int, float]:  # fmt: skip
    """The liquidator's most profitable pair of candidate ``k`` (entry indices), ``-1`` if
    none pays: ``(ei, ej, repay, seize, fee, flags, profit)`` (scaled amounts, each pair's
    repayment sized by ``rules.best_liquidation``)."""
    c = np.int64(lcls[k])
    hf = w / v
    best = 0.0
    bi = -1
    bj = -1
    b_repay = 0.0
    b_seize = 0.0
    b_fee = 0.0
    b_flags = 0
    for ei in range(_n_coll(k, rb, lay)):
        ci = rec[k, lay[1] + ei]
        if ci <= 0.0:
            continue
        i = np.int64(rb[k, lay[0] + ei])
        cap = ci * capf[c, i]
        gi = gain[c, i]
        for ej in range(_n_debt(k, rb, lay)):
            dj = rec[k, lay[3] + ej]
            if dj <= 0.0:
                continue
            j = np.int64(rb[k, lay[2] + ej])
            if pd[c, j] > 0.0:
                # an upper bound of this pair's profit: skip it when it cannot beat the best
                # so far (ties keep the earlier pair, as in the reference)
                bound = min(dj * pd[c, j], cap) * (gi - mrel[c, j]) - gas_usd
                if bound + abs(bound) * _BOUND_SLACK + _BOUND_SLACK * (1.0 + gas_usd) <= best:
                    continue
            repay, seize, fee, flags, _, profit = _best_liquidation(
                ci, dj, v, hf, pc[c, i], pd[c, j], bonus[c, i], pfee[i],
                cf_thr, cf_hf, cf, min_left, depth[i], inv[i], ref[i], dexfee[i], vkind[i],
                vxs[i], vys[i], vcount[i], sg[i], ref[j] * bg[j], gas_usd, optimal,
            )  # fmt: skip
            if flags == -1:
                continue
            if profit > best:
                best = profit
                bi = ei
                bj = ej
                b_repay = repay
                b_seize = seize
                b_fee = fee
                b_flags = flags
    return bi, bj, b_repay, b_seize, b_fee, b_flags, best


@_inline
def _may_pay(
    k: int, rec: Any, rb: Any, lay: Any, lcls: Any, pd: Any,
    gain: Any, mrel: Any, capf: Any, gas_usd: float,
) -> tuple[bool, float]:  # fmt: skip
    """Can some (collateral, debt) pair of candidate ``k`` pay for the gas? Also returns the
    largest repayment any pair allows, USD at oracle prices.

    Repaying ``r`` tokens of debt j against collateral i: ``r P_j <= min(debt_j P_j,
    coll_i P_i / (1 + b_i))`` (oracle prices), and the profit before gas is at most
    ``r P_j (gain_i - mkt_j / P_j)`` (``_reprice``).
    """
    c = np.int64(lcls[k])
    size = 0.0
    ok = False
    # branch-free: an entry not held, or priced 0, has cap 0
    for ei in range(_n_coll(k, rb, lay)):
        i = np.int64(rb[k, lay[0] + ei])
        cap = rec[k, lay[1] + ei] * capf[c, i]
        gi = gain[c, i]
        for ej in range(_n_debt(k, rb, lay)):
            j = np.int64(rb[k, lay[2] + ej])
            owed = rec[k, lay[3] + ej] * pd[c, j]
            pair = owed if owed < cap else cap
            size = size if size > pair else pair
            paid = pair * (gi - mrel[c, j]) * (1.0 + _BOUND_SLACK) + _BOUND_SLACK
            ok |= (pair > 0.0) & (paid >= gas_usd)
    return ok, size


@_inline
def _edge(pc: Any, gain: Any, crel: Any, mrel: Any) -> tuple[float, float, float]:
    """``(max gain - min mrel, max crel, min mrel)`` over all classes and assets priced
    above 0: the first is the best margin any pair could earn per USD repaid; a pair whose
    collateral's gain factor is at most ``G`` earns at most ``G x`` the second less the
    third (``gain = G x crel``, ``_reprice``)."""
    top = -np.inf
    low = np.inf
    rho = -np.inf
    for c in range(pc.shape[0]):
        for i in range(pc.shape[1]):
            if pc[c, i] > 0.0:
                top = max(top, gain[c, i])
                low = min(low, mrel[c, i])
                rho = max(rho, crel[c, i])
    return top - low, rho, low


@_inline
def _gain_factor(k: int, rec: Any, rb: Any, lay: Any, lcls: Any, gfac: Any) -> float:
    """The largest gain factor ``G_i`` (its class's) over candidate ``k``'s collateral held."""
    c = np.int64(lcls[k])
    g = 0.0
    for e in range(_n_coll(k, rb, lay)):
        if rec[k, lay[1] + e] > 0.0:
            g = max(g, gfac[c, np.int64(rb[k, lay[0] + e])])
    return g


@_inline
def _park_row(park: Any, n: int, k: int, size: float, epoch: int, gk: float) -> None:
    """Write row ``n`` of a parked list: candidate ``k``, its largest repayment ``size``
    (USD) at epoch ``epoch``, and the largest gain factor ``gk`` of its collateral (what
    the wake-up bound reads)."""
    park[n, 0] = k
    park[n, 1] = size
    park[n, 2] = epoch
    park[n, 3] = gk


@_inline
def _own_margin(c: Any, cm: Any, dm: Any, crel: Any, mrel: Any, gk: float) -> float:
    """The best margin per USD repaid any pair of an account of class ``c`` could earn, over
    its own collateral (mask ``cm``) and debt (``dm``) assets: ``gk`` x the largest
    ``crel`` less the smallest ``mrel`` (``_edge``'s bound, restricted to the account)."""
    top = 0.0
    low = np.inf
    for a in range(crel.shape[1]):
        bit = np.int64(1) << np.int64(min(a, 62))
        if cm & bit:
            top = max(top, crel[c, a])
        if dm & bit:
            low = min(low, mrel[c, a])
    return gk * top - low


@_inline
def _stays_below(size: float, margin: float, gas_usd: float) -> bool:
    """Does a repayment of at most ``size`` USD at ``margin`` per USD stay below the gas?"""
    return size * margin * (1.0 + _BOUND_SLACK) + _BOUND_SLACK < gas_usd


@_inline
def _cold_tables(
    vc: Any, vd: Any, ref: Any, pp: Any, floor: Any, sg: Any, bg: Any, crel_hi: Any,
    mrel_lo: Any,
) -> None:  # fmt: skip
    """The margin tables' bounds until the next scan (module docstring, point 5): ``crel``
    with every venue back at its reference price (``ref`` only falls between scans), and
    ``mrel`` with every reference price at its impact floor."""
    for c in range(vc.shape[0]):
        for j in range(vc.shape[1]):
            crel_hi[c, j] = (ref[j] * sg[j]) / vc[c, j] if vc[c, j] > 0.0 else 0.0
            mrel_lo[c, j] = (pp[j] * floor[j] * bg[j]) / vd[c, j] if vd[c, j] > 0.0 else 0.0


@_inline
def _merge_rows(a: Any, na: int, b: Any, nb: int, out: Any) -> int:
    """Merge two parked lists, each in account order, into ``out``; returns its length."""
    i = 0
    j = 0
    n = 0
    while i < na or j < nb:
        if j == nb or (i < na and a[i, 0] < b[j, 0]):
            for f in range(a.shape[1]):
                out[n, f] = a[i, f]
            i += 1
        else:
            for f in range(b.shape[1]):
                out[n, f] = b[j, f]
            j += 1
        n += 1
    return n


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _pick(
    n_cand: int, epoch: int, lepoch: Any, lcm: Any, ldm: Any, pend: Any, lhf: Any,
    ratios: Any, nonstable: Any, c_down: Any, d_up: Any, look: Any, todo: Any,
) -> int:  # fmt: skip
    """A scan's pass 1, branch-free: the candidates that need a look into ``todo``, in order;
    returns their count. Listed and new ones always; watched ones when the oracle moved
    against them (masks ``c_down``: collateral values fell, ``d_up``: debt values rose) by
    enough to bring HF at their last check x the
    worst relative move since (over all assets, or over the near-constant ones for debt only
    in those) to 1. Parked ones stay in their own list. (Two plain loops with few live
    values: the first one carries no dependency.)"""
    for k in range(n_cand):
        ratio = ratios[lepoch[k], 1 if (ldm[k] & nonstable) != 0 else 0]
        moved = ((lcm[k] & c_down) | (ldm[k] & d_up)) != 0
        pk = pend[k]
        watch = (pk == _WATCHED) & moved & (lhf[k] * ratio <= 1.0 + _BOUND_SLACK)
        look[k] = ((pk & 1) != 0) | watch  # _LISTED or _NEW
    n_todo = 0
    for k in range(n_cand):
        todo[n_todo] = k
        n_todo += look[k]
    return n_todo


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _check(
    n_todo: int, todo: Any, epoch: int, rec: Any, rb: Any, lay: Any, lcls: Any, clt: Any,
    pc: Any, pd: Any, lcm: Any, ldm: Any, pend: Any, lhf: Any, lepoch: Any, c_up: Any,
    d_down: Any, cur: Any,
) -> tuple[int, float]:  # fmt: skip
    """A scan's pass 2: exact checks of the new candidates among ``todo``, of the listed ones
    the oracle moved in favour of (the others stay liquidatable) and of the watched ones pass
    1 picked, with records fetched a few candidates ahead. Writes the liquidatable ones to
    ``cur``, in order, and returns their count and the lowest health factor it left watched
    (``inf`` if none)."""
    n_cur = 0
    low = np.inf
    for q in range(n_todo):
        if q + _AHEAD < n_todo:
            _prefetch_row(rec, todo[q + _AHEAD])
        k = todo[q]
        pk = pend[k]
        if pk == _LISTED and ((lcm[k] & c_up) | (ldm[k] & d_down)) == 0:
            cur[n_cur] = k
            n_cur += 1
            continue
        w, v = _sums(k, rec, rb, lay, lcls, clt, pc, pd)
        if _liquidatable(w, v):
            pend[k] = _LISTED
            cur[n_cur] = k
            n_cur += 1
        else:
            _watch(k, w, v, epoch, pend, lhf, lepoch)
            low = min(low, np.float64(lhf[k]))
    return n_cur, low


# -- the kernels ------------------------------------------------------------------------------


@numba.njit(cache=True, parallel=True, error_model="numpy")
def _simulate(
    mult: Any, gas: Any, market: Any, settings: Any, aave: Any, aave_settings: Any, src: Any, lay: Any, cmask: Any, dmask: Any, scls: Any,
    g_ptr: Any, g_cmask: Any, g_dmask: Any, ghf: Any, scm: Any, brec: Any, blay: Any,
    block_start: Any, out_start: Any, out_path: Any, out_row: Any, out_val: Any, out_n: Any,
    scalars: Any, ints: Any, by_asset: Any, worst: Any, tr_m: Any, tr_l: Any, tr_s: Any,
) -> None:  # fmt: skip
    n_blocks = block_start.shape[0] - 1
    n_rows = src.shape[0]
    bb = brec.view(np.uint8)  # the records' headers are bytes (_pack_records)
    for b in numba.prange(n_blocks):
        # per-block scratch, indexed by candidate k (capacity: every account)
        stamp = np.zeros(n_rows, dtype=np.uint8)  # by account row: 1 = a candidate
        newpos = np.empty(n_rows, dtype=np.int64)
        zg = np.empty(g_cmask.shape[0] + 1, dtype=np.int64)  # widening state (_widen)
        rej = np.empty(n_rows, dtype=np.int64)
        cand = np.empty(n_rows, dtype=np.int64)
        rec = np.empty_like(src)  # the candidates' records (layout: _records)
        rb = rec.view(np.uint8)
        lcm = np.empty_like(cmask)
        ldm = np.empty_like(dmask)
        lcls = np.empty_like(scls)
        pend = np.empty(n_rows, dtype=np.uint8)  # these three are set by the copy-in
        lhf = np.empty(n_rows, dtype=np.float32)
        lepoch = np.empty(n_rows, dtype=np.uint32)
        park_a = np.empty((n_rows, 4))  # the parked candidates (_park_row)
        park_b = np.empty_like(park_a)
        cold_a = np.empty_like(park_a)  # the parked ones that cannot pay until a scan
        cold_b = np.empty_like(park_a)
        cold_new = np.empty_like(park_a)
        list_a = np.empty(n_rows, dtype=np.int32)
        list_b = np.empty(n_rows, dtype=np.int32)
        todo = np.empty(n_rows, dtype=np.int32)
        look = np.empty(n_rows, dtype=np.uint8)
        first_k = np.empty(n_rows, dtype=np.int32)  # a round's phase 1 (most profitable)
        first_v = np.empty(n_rows)
        first = np.zeros(n_rows, dtype=np.uint8)
        pos = out_start[b]
        end = out_start[b + 1]
        overflow = False
        for p in range(block_start[b], block_start[b + 1]):
            pos, over = _run_path(
                p, mult[p], gas[p], market, settings, aave, aave_settings, src, lay, cmask,
                dmask, scls, g_ptr, g_cmask, g_dmask, ghf, scm, brec, bb, blay,
                stamp, newpos, zg, rej, cand, rec, rb, lcm, ldm, lcls, pend, lhf, lepoch,
                list_a, list_b, park_a, park_b, cold_a, cold_b, cold_new, look, todo,
                first_k, first_v, first, out_path, out_row, out_val, pos, end,
                scalars, ints, by_asset, worst, tr_m, tr_l, tr_s,
            )  # fmt: skip
            overflow = overflow or over
        out_n[b] = -1 if overflow else pos - out_start[b]


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _run_path(
    p: int, mult: Any, gas: Any, market: Any, settings: Any, aave: Any, aave_settings: Any,
    src: Any, lay: Any, cmask: Any, dmask: Any, scls: Any,
    g_ptr: Any, g_cmask: Any, g_dmask: Any, ghf: Any, scm: Any, brec: Any, bb: Any, blay: Any,
    stamp: Any, newpos: Any, zg: Any, rej: Any, cand: Any, rec: Any, rb: Any,
    lcm: Any, ldm: Any, lcls: Any, pend: Any, lhf: Any, lepoch: Any,
    list_a: Any, list_b: Any, park_a: Any, park_b: Any, cold_a: Any, cold_b: Any,
    cold_new: Any, look: Any, todo: Any,
    first_k: Any, first_v: Any, first: Any, out_path: Any,
    out_row: Any, out_val: Any,
    pos: int, end: int,
    scalars: Any, ints: Any, by_asset: Any, worst: Any, tr_m: Any, tr_l: Any, tr_s: Any,
) -> tuple[int, bool]:  # fmt: skip
    p0 = market.price0
    pfee = aave.protocol_fee
    dexfee = market.dex_fee
    depth = market.depth
    rigorous = aave.rigorous_floor
    clt = aave.class_lt  # per (class, asset): LT, bonus, price ratio, gain factor
    bonus = aave.class_bonus
    ratio = aave.class_ratio
    gfac = aave.class_gain
    s_grow = market.supply_growth  # per (tick, asset): liquidity and borrow index growth
    d_grow = market.debt_growth
    deviation = market.deviation  # per asset: the oracle feed
    heartbeat = market.heartbeat_s
    ref_coef = market.ref_coef  # the reference impact's coefficient (rules.reference_impact)
    rate_base = market.rate_base  # the base of an exchange-rate asset (-1: market-priced)
    g_min = aave.rate_growth_min  # the extremes of an exchange rate's growth over the path
    g_max = aave.rate_growth_max
    rate_ratio = market.rate_ratio  # per (tick, asset): an exchange-rate asset's oracle / base's
    vkind = market.venue_kind
    vxs = market.venue_xs
    vys = market.venue_ys
    vcount = market.venue_count
    step_seconds = settings.tick_seconds
    gas_units = settings.gas_units
    eth_price = settings.eth_price_usd
    half_life = settings.half_life_s
    block_seconds = settings.block_seconds
    cf_thr = aave_settings.close_factor_threshold_usd
    cf_hf = aave_settings.close_factor_hf
    cf = aave_settings.default_close_factor
    min_left = aave_settings.min_leftover_usd
    eth = settings.eth_index
    lag = settings.oracle_lag
    round_limit = settings.round_limit  # the rounds a step holds: its blocks, or the guard
    count_hits = settings.count_hits  # the guard, not the step's blocks, is the limit
    trace = settings.trace
    optimal = aave_settings.optimal
    n_steps1 = mult.shape[0]
    ticks = settings.ticks  # engine clock ticks per scenario step (Market.ticks)
    n_ticks1 = (n_steps1 - 1) * ticks + 1
    n_assets = mult.shape[1]

    # the path's min / max (with the snapshot's 1): the oracle always holds one of these
    # scenario prices times a reference impact in [floor, 1] (an exchange-rate asset: its
    # base's times the rate's growth)
    pmin = np.ones(n_assets)
    pmax = np.ones(n_assets)
    for t in range(n_steps1):
        for j in range(n_assets):
            pmin[j] = min(pmin[j], mult[t, j])
            pmax[j] = max(pmax[j], mult[t, j])
    for j in range(n_assets):
        b = np.int64(rate_base[j])
        if b >= 0:
            pmin[j] = min(pmin[j], pmin[b] * g_min[j])
            pmax[j] = max(pmax[j], pmax[b] * g_max[j])
    floor = aave.floor_hint.copy()
    # the debt side of the candidates' bound: the highest price times the debt's growth
    dhi = np.empty(n_assets)
    for j in range(n_assets):
        dhi[j] = pmax[j] * d_grow[d_grow.shape[0] - 1, j]
    min_imp = np.ones(n_assets)
    n_cand = _widen(
        floor, pmin, dhi, src, cmask, dmask, scls, g_ptr, g_cmask, g_dmask, ghf,
        scm, brec, bb, blay, stamp, newpos, zg, rej, cand, rec, lcm, ldm, lcls, pend, lhf,
        lepoch, 0, np.int64(-1),
    )  # fmt: skip
    widened = 0
    # snapshots of the oracle value of a scaled unit of collateral (oc = oracle x liquidity
    # index growth) and debt (od = oracle x borrow index growth) at each full scan
    # ("epochs"); a candidate found safe at epoch e with health factor h stays safe while
    # h x min_i(oc_i / oc_e,i) / max_j(od_j / od_e,j) > 1
    max_epochs = n_ticks1 * (round_limit + 2) + 2
    ep_oc = np.empty((max_epochs, n_assets))
    ep_od = np.empty((max_epochs, n_assets))
    ratios = np.zeros((max_epochs, 2))
    r_top = np.zeros(max_epochs)
    epoch = 0
    e_lo = 0  # no candidate's last check is older than this epoch
    for j in range(n_assets):
        ep_oc[0, j] = p0[j]
        ep_od[0, j] = p0[j]
    stable_mask = np.int64(0)  # assets whose path stays within 1% of the snapshot
    for j in range(n_assets):
        if pmax[j] <= 1.01 and pmin[j] >= 0.99:
            stable_mask |= np.int64(1) << np.int64(min(j, 62))
    if n_assets > 62:
        stable_mask = np.int64(0)
    nonstable = ~stable_mask

    oracle = p0.copy()
    oc = p0.copy()
    od = p0.copy()
    n_cls = ratio.shape[0]
    vc = np.empty((n_cls, n_assets))  # per (class, asset) tables (_reprice)
    vd = np.empty((n_cls, n_assets))
    crel = np.zeros((n_cls, n_assets))
    updated = np.zeros(n_assets)
    inv = np.zeros(n_assets)  # the venues' excess inventory, tokens
    inv_time = 0.0  # when arbitrage last worked on the venues, s
    sold = np.zeros(n_assets)  # volume sold by liquidators, USD
    rimp = np.ones(n_assets)  # reference / scenario price
    pp = p0.copy()  # scenario prices
    ref = p0.copy()  # reference prices
    mkt = p0.copy()  # venue prices
    gain = np.zeros((n_cls, n_assets))  # the profit bound's tables (_reprice)
    mrel = np.zeros((n_cls, n_assets))
    capf = np.zeros((n_cls, n_assets))
    hist = np.empty((n_ticks1, n_assets))  # reference prices per tick, for the oracle's lag
    mrow = np.empty(n_assets)  # the scenario's multipliers at the current tick
    def_asset = np.zeros(n_assets)
    deficit = 0.0
    liquidated = 0.0
    fee_usd = 0.0
    n_liq = 0
    hits = 0
    # assets whose collateral value (oc) / debt value (od) fell / rose since the last scan
    c_down = np.int64(0)
    c_up = np.int64(0)
    d_down = np.int64(0)
    d_up = np.int64(0)
    cur = list_a  # the listed (liquidatable) candidates, in order
    nxt = list_b
    n_cur = 0
    pc = park_a  # the parked ones (_park_row), in order
    pn = park_b
    n_park = 0
    # the cold ones: parked, and no pair can pay for the gas until the next scan or tick
    # even with every venue back at its reference and every reference at its floor; the
    # rounds do not walk them (module docstring, point 5)
    cold = cold_a
    cold_out = cold_b
    n_cold = 0
    crel_hi = np.zeros((n_cls, n_assets))
    mrel_lo = np.zeros((n_cls, n_assets))
    cold_tab = False  # crel_hi / mrel_lo hold for the current scan window
    rebuild = True  # the first scan checks every candidate (all new)
    hf_low = np.inf  # at most the lowest HF of the watched candidates (none yet)

    for tk in range(n_ticks1):
        # the engine's clock: between two scenario points the path is interpolated
        t, u = divmod(tk, ticks)
        if u == 0:
            for j in range(n_assets):
                mrow[j] = mult[t, j]
            gas_t = gas[t]
        else:
            f = u / ticks
            for j in range(n_assets):
                mrow[j] = _between(mult[t, j], mult[t + 1, j], f)
            gas_t = (1.0 - f) * gas[t] + f * gas[t + 1]
        now = tk * step_seconds
        sg = s_grow[tk]
        bg = d_grow[tk]
        # the reference prices follow the path; arbitrage worked on the venues since the
        # last round (rules.arbitrage_decay)
        decay = _decay(now - inv_time, half_life)
        inv_time = max(inv_time, now)
        for j in range(n_assets):
            pp[j] = p0[j] * mrow[j]
            ref[j] = pp[j] * rimp[j]
            inv[j] = inv[j] * decay
            mkt[j] = ref[j] * _vfactor(
                vkind[j], depth[j], vxs[j], vys[j], vcount[j], ref[j], inv[j], dexfee[j]
            )
        if tk > 0:
            for j in range(n_assets):
                if rate_base[j] >= 0.0:
                    continue
                if lag == 0:
                    obs = ref[j]
                elif tk - lag >= 0:
                    obs = hist[tk - lag, j]
                else:
                    obs = p0[j]
                if _deviates(obs, oracle[j], deviation[j]) or now - updated[j] >= heartbeat[j]:
                    oracle[j] = obs
                    updated[j] = now
            for j in range(n_assets):
                if rate_base[j] >= 0.0:
                    oracle[j] = rate_ratio[tk, j] * oracle[np.int64(rate_base[j])]
        for j in range(n_assets):
            # the oracle and the indexes moved: the values of a scaled unit
            bit = np.int64(1) << np.int64(min(j, 62))
            x = oracle[j] * sg[j]
            if x < oc[j]:
                c_down |= bit
            elif x > oc[j]:
                c_up |= bit
            oc[j] = x
            x = oracle[j] * bg[j]
            if x < od[j]:
                d_down |= bit
            elif x > od[j]:
                d_up |= bit
            od[j] = x
        # the venues and reference prices moved: the per-(class, asset) tables are stale
        # (refreshed when a scan or a round reads them, so a quiet tick costs no refresh)
        stale = True
        eth_usd = ref[eth] if eth >= 0 else eth_price
        gas_usd = gas_units * gas_t * 1e-9 * eth_usd
        rounds = 0
        if n_cold > 0:  # a new tick: the cold ones are parked ones again
            n_park = _merge_rows(pc, n_park, cold, n_cold, pn)
            ptmp = pc
            pc = pn
            pn = ptmp
            n_cold = 0
        cold_tab = False
        while True:
            if stale and ((c_down | c_up | d_down | d_up) != 0 or rebuild or n_cur + n_park > 0):
                for j in range(n_assets):
                    _reprice(
                        j, oc, od, mkt, ref, sg, bg, ratio, bonus, gfac, vc, vd, gain, crel,
                        mrel, capf,
                    )  # fmt: skip
                stale = False
            # -- scan: exact HF check of the candidates the oracle moved against, and the
            # lists rebuilt (after a widening the oracle has not moved: watched candidates
            # stay safe, the scan checks the newcomers and lists the others again)
            if (c_down | c_up | d_down | d_up) != 0 or rebuild:
                if n_cold > 0:  # the oracle moved: the cold ones are parked ones again
                    n_park = _merge_rows(pc, n_park, cold, n_cold, pn)
                    ptmp = pc
                    pc = pn
                    pn = ptmp
                    n_cold = 0
                cold_tab = False
                epoch += 1
                for j in range(n_assets):
                    ep_oc[epoch, j] = oc[j]
                    ep_od[epoch, j] = od[j]
                # every candidate's last check is at an epoch >= e_lo: refresh those, and
                # the rounds up to the next scan read them as they are (parked ones too)
                if epoch - e_lo > 64:  # now and then: the oldest last check still held
                    e_lo = epoch
                    hf_low = np.inf  # and the lowest watched health factor, exactly
                    for k in range(n_cand):
                        e_lo = min(e_lo, int(lepoch[k]))
                        if pend[k] == _WATCHED:
                            hf_low = min(hf_low, np.float64(lhf[k]))
                r_worst = np.inf
                for e in range(e_lo, epoch + 1):
                    _epoch_ratios(e, oc, od, ep_oc, ep_od, stable_mask, ratios, r_top)
                    r_worst = min(r_worst, ratios[e, 1])
                # nothing listed or new, and no watched candidate's HF at its last check
                # times the worst move since can reach 1 (hf_low bounds them all): the
                # passes would find nothing (the quiet ticks' heartbeats cost no pass)
                if rebuild or n_cur > 0 or not hf_low * r_worst > 1.0 + _BOUND_SLACK:
                    # pass 1 picks the candidates that need a look, pass 2 checks them
                    n_todo = _pick(
                        n_cand, epoch, lepoch, lcm, ldm, pend, lhf, ratios, nonstable,
                        c_down, d_up, look, todo,
                    )  # fmt: skip
                    n_cur, low = _check(
                        n_todo, todo, epoch, rec, rb, lay, lcls, clt, vc, vd, lcm, ldm, pend,
                        lhf, lepoch, c_up, d_down, cur,
                    )  # fmt: skip
                    hf_low = min(hf_low, low)
                if rebuild:  # candidates moved: list the parked ones again, in order
                    n_park = 0
                    for k in range(n_cand):
                        if pend[k] == _PARKED:
                            gk = _gain_factor(k, rec, rb, lay, lcls, gfac)
                            _park_row(pc, n_park, k, lhf[k], lepoch[k], gk)
                            n_park += 1
                c_down = np.int64(0)
                c_up = np.int64(0)
                d_down = np.int64(0)
                d_up = np.int64(0)
                rebuild = False
            if n_cur == 0 and n_park == 0:
                break
            if rounds == round_limit:
                # the step's blocks are over (the cascade goes on at the next step), or the
                # guard stops it: a hit when a liquidation would still happen
                for q in range(n_cur + n_park if count_hits else 0):
                    k = cur[q] if q < n_cur else int(pc[q - n_cur, 0])
                    w, v = _sums(k, rec, rb, lay, lcls, clt, vc, vd)
                    if not _liquidatable(w, v):
                        continue
                    bi, _, _, _, _, _, _ = _best_pair(
                        k, w, v, rec, rb, lay, lcls, vc, vd, ref, sg, bg, inv, bonus,
                        pfee, depth, dexfee, vkind, vxs, vys, vcount, gain, mrel, capf, gas_usd, cf_thr, cf_hf, cf,
                        min_left, optimal,
                    )  # fmt: skip
                    if bi >= 0:
                        hits += 1
                        break
                break
            # -- round: one liquidation per listed account, most profitable first. Pass 0
            # walks the listed and the parked lists merged in account order at the round's
            # start and only evaluates: the accounts some liquidation pays for go to the
            # round's first part (``first_*``), the others through the bookkeeping of pass 1
            # (parked, listed again, watched). When none pays, that is the round (pass 1
            # would find the same: nothing executes, nothing moves). Else pass 1 serves the
            # first part in order of that profit (stable: ties in account order), each
            # evaluated again at the current state, then the others in account order, and
            # writes the next round's lists afresh: the accounts still liquidatable (an
            # oracle update rebuilds them in a scan)
            edge = 0.0
            rho_top = 0.0
            rho_low = 0.0
            n_first = 0
            order = np.zeros(0, dtype=np.int64)
            executed = 0
            # a sale took a reference price below its floor: the cold ones' bound no longer
            # holds, the rest of the round walks them too (and a rebuild follows)
            cold_live = False
            n_t = 0
            for mode in range(2):
                evaluate = mode == 0
                if not evaluate:
                    if n_first == 0:
                        break  # pass 0 was the round
                    order = np.argsort(first_v[:n_first], kind="mergesort")
                n_nxt = 0
                n_pn = 0
                qa = 0
                r = 0
                q1 = 0
                n_t = 0
                rc = 0  # the cold ones, walked only once cold_live
                rc_end = 0
                last_k = -1  # the walk's last account in account order
                edge_stale = True  # recomputed lazily: only parked accounts need it
                while True:
                    phase1 = False
                    parked = False
                    if not evaluate and q1 < n_first:
                        k = first_k[order[q1]]
                        q1 += 1
                        phase1 = True
                        pend[k] = _LISTED  # (it may come from the parked list)
                    elif (
                        qa < n_cur
                        and (r == n_park or cur[qa] < pc[r, 0])
                        and (rc == rc_end or cur[qa] < cold[rc, 0])
                    ):
                        k = cur[qa]
                        if qa + _AHEAD < n_cur:
                            _prefetch_row(rec, cur[qa + _AHEAD])
                        qa += 1
                        last_k = k
                        if first[k]:
                            continue  # served in phase 1
                    elif r < n_park or rc < rc_end:
                        if r < n_park and (rc == rc_end or pc[r, 0] < cold[rc, 0]):
                            rows = pc
                            ri = r
                            r += 1
                        else:
                            rows = cold
                            ri = rc
                            rc += 1
                        k = int(rows[ri, 0])
                        last_k = k
                        if first[k]:
                            continue
                        # parked: its largest repayment then, grown by the oracle since its
                        # epoch, times the best margin one of its pairs could earn now (its
                        # collateral's gain factor bounds that; first over all assets, then
                        # over its own), stays below gas: it stays parked
                        if edge_stale:
                            edge, rho_top, rho_low = _edge(vc, gain, crel, mrel)
                            edge_stale = False
                        gk = rows[ri, 3]
                        grown = rows[ri, 1] * r_top[np.int64(rows[ri, 2])]
                        stay = _stays_below(grown, min(edge, gk * rho_top - rho_low), gas_usd)
                        if not stay:
                            c = np.int64(lcls[k])
                            own = _own_margin(c, lcm[k], ldm[k], crel, mrel, gk)
                            stay = _stays_below(grown, own, gas_usd)
                        if stay:
                            # (as it was parked: pass 0 may have looked at it)
                            pend[k] = _PARKED
                            lhf[k] = np.float32(rows[ri, 1])
                            lepoch[k] = np.uint32(rows[ri, 2])
                            if not cold_live and not cold_tab:
                                _cold_tables(vc, vd, ref, pp, floor, sg, bg, crel_hi, mrel_lo)
                                cold_tab = True
                            c = np.int64(lcls[k])
                            hi_m = _own_margin(c, lcm[k], ldm[k], crel_hi, mrel_lo, gk)
                            if not cold_live and _stays_below(grown, hi_m, gas_usd):
                                for f in range(rows.shape[1]):
                                    cold_new[n_t, f] = rows[ri, f]
                                n_t += 1
                            else:
                                for f in range(rows.shape[1]):
                                    pn[n_pn, f] = rows[ri, f]
                                n_pn += 1
                            continue
                        parked = True
                    else:
                        break
                    if not phase1:
                        ok, size = _may_pay(k, rec, rb, lay, lcls, vd, gain, mrel, capf, gas_usd)
                        if not ok:
                            # no pair can pay for the gas (the reference finds no profit): park
                            # it; the parked list is only looked at when it might pay
                            pend[k] = _PARKED
                            lhf[k] = _up32(size)  # what a rebuilt parked list reads
                            lepoch[k] = epoch
                            gk = _gain_factor(k, rec, rb, lay, lcls, gfac)
                            if not cold_live and not cold_tab:
                                _cold_tables(vc, vd, ref, pp, floor, sg, bg, crel_hi, mrel_lo)
                                cold_tab = True
                            c = np.int64(lcls[k])
                            grown = np.float64(lhf[k]) * r_top[epoch]
                            hi_m = _own_margin(c, lcm[k], ldm[k], crel_hi, mrel_lo, gk)
                            if not cold_live and _stays_below(grown, hi_m, gas_usd):
                                _park_row(cold_new, n_t, k, lhf[k], epoch, gk)
                                n_t += 1
                            else:
                                _park_row(pn, n_pn, k, lhf[k], epoch, gk)
                                n_pn += 1
                            continue
                    w, v = _sums(k, rec, rb, lay, lcls, clt, vc, vd)
                    if parked:  # parked, and now it might pay: is it still under water?
                        if not _liquidatable(w, v):
                            _watch(k, w, v, epoch, pend, lhf, lepoch)
                            hf_low = min(hf_low, np.float64(lhf[k]))
                            continue
                        pend[k] = _LISTED
                    bi, bj, b_repay, b_seize, b_fee, b_flags, b_profit = _best_pair(
                        k, w, v, rec, rb, lay, lcls, vc, vd, ref, sg, bg, inv, bonus, pfee,
                        depth, dexfee, vkind, vxs, vys, vcount, gain, mrel, capf, gas_usd, cf_thr, cf_hf, cf, min_left,
                        optimal,
                    )  # fmt: skip
                    if bi < 0:
                        nxt[n_nxt] = k  # still liquidatable, nothing pays now
                        n_nxt += 1
                        pend[k] = _LISTED
                        continue
                    if evaluate:  # pays at the round's start: the round's first part
                        first_k[n_first] = k
                        first_v[n_first] = -b_profit
                        first[k] = 1
                        n_first += 1
                        continue
                    executed += 1
                    i = int(np.int64(rb[k, lay[0] + bi]))
                    j = int(np.int64(rb[k, lay[2] + bj]))
                    if b_flags & 2:
                        rec[k, lay[1] + bi] = 0.0
                    else:
                        rec[k, lay[1] + bi] = max(rec[k, lay[1] + bi] - b_seize, 0.0)
                    if b_flags & 1:
                        rec[k, lay[3] + bj] = 0.0
                    else:
                        rec[k, lay[3] + bj] = max(rec[k, lay[3] + bj] - b_repay, 0.0)
                    kc = np.int64(lcls[k])
                    # the sale moves the venue and, through the volume, the reference price
                    tokens = (b_seize - b_fee) * sg[i]
                    inv[i] += tokens
                    sold[i] += tokens * ref[i]
                    rimp[i] = _ref_impact(ref_coef[i], sold[i])
                    if rimp[i] < min_imp[i]:
                        min_imp[i] = rimp[i]
                    if rimp[i] < floor[i] and not cold_live:
                        # the cold ones' bound read this floor: walk the rest of them
                        cold_live = True
                        while rc < n_cold and cold[rc, 0] <= last_k:
                            rc += 1
                        rc_end = n_cold
                    ref[i] = pp[i] * rimp[i]
                    mkt[i] = ref[i] * _vfactor(
                        vkind[i], depth[i], vxs[i], vys[i], vcount[i], ref[i], inv[i], dexfee[i]
                    )
                    _reprice(
                        i, oc, od, mkt, ref, sg, bg, ratio, bonus, gfac, vc, vd, gain, crel,
                        mrel, capf,
                    )  # fmt: skip
                    edge_stale = True
                    liquidated += b_repay * vd[kc, j]
                    fee_usd += b_fee * vc[kc, i]
                    n_liq += 1
                    empty = True
                    for e in range(_n_coll(k, rb, lay)):
                        if rec[k, lay[1] + e] != 0.0:
                            empty = False
                            break
                    if empty:
                        for e in range(_n_debt(k, rb, lay)):
                            if rec[k, lay[3] + e] > 0.0:
                                jj = np.int64(rb[k, lay[2] + e])
                                burned = rec[k, lay[3] + e] * vd[kc, jj]
                                rec[k, lay[4]] += burned
                                def_asset[jj] += burned
                                deficit += burned
                                rec[k, lay[3] + e] = 0.0
                    # still under water at these oracle prices? (they hold until the next scan)
                    w, v = _sums(k, rec, rb, lay, lcls, clt, vc, vd)
                    if _liquidatable(w, v):
                        nxt[n_nxt] = k
                        n_nxt += 1
                        pend[k] = _LISTED
                    else:
                        _watch(k, w, v, epoch, pend, lhf, lepoch)
                        hf_low = min(hf_low, np.float64(lhf[k]))
            if n_first > 0:
                # phase 1 wrote its accounts in profit order: the lists are in account order
                nxt[:n_nxt].sort()
                for q in range(n_first):
                    first[first_k[q]] = 0
            tmp = cur
            cur = nxt
            nxt = tmp
            n_cur = n_nxt
            ptmp = pc
            pc = pn
            pn = ptmp
            n_park = n_pn
            if cold_live:
                n_cold = 0  # (the floors are lowered below: a rebuild lists them again)
            elif n_t > 0:
                n_cold = _merge_rows(cold, n_cold, cold_new, n_t, cold_out)
                ctmp = cold
                cold = cold_out
                cold_out = ctmp
            rounds += 1
            if executed == 0:
                break
            # -- checkpoint, then the oracle follows the moved reference prices, and
            # arbitrage works on the venues for a block --------------------------------------
            _rate_floors(min_imp, rate_base)
            lowered = _lower_floors(min_imp, floor, rigorous)
            if lowered != 0:
                n_cand = _widen(
                    floor, pmin, dhi, src, cmask, dmask, scls, g_ptr, g_cmask, g_dmask,
                    ghf, scm, brec, bb, blay, stamp, newpos, zg, rej, cand, rec, lcm,
                    ldm, lcls, pend, lhf, lepoch, n_cand, lowered,
                )  # fmt: skip
                widened = 1
                rebuild = True
                e_lo = 0
            if lag == 0:
                for j in range(n_assets):
                    if rate_base[j] < 0.0 and _deviates(ref[j], oracle[j], deviation[j]):
                        oracle[j] = ref[j]
                        updated[j] = now
                for j in range(n_assets):
                    if rate_base[j] >= 0.0:
                        oracle[j] = rate_ratio[tk, j] * oracle[np.int64(rate_base[j])]
                for j in range(n_assets):
                    if oracle[j] * sg[j] != oc[j]:
                        bit = np.int64(1) << np.int64(min(j, 62))
                        if oracle[j] * sg[j] < oc[j]:
                            c_down |= bit
                            d_down |= bit
                        else:
                            c_up |= bit
                            d_up |= bit
                        oc[j] = oracle[j] * sg[j]
                        od[j] = oracle[j] * bg[j]
            decay = _decay(now + rounds * block_seconds - inv_time, half_life)
            inv_time = max(inv_time, now + rounds * block_seconds)
            for j in range(n_assets):
                inv[j] = inv[j] * decay
                mkt[j] = ref[j] * _vfactor(
                    vkind[j], depth[j], vxs[j], vys[j], vcount[j], ref[j], inv[j], dexfee[j]
                )
            stale = True
        for j in range(n_assets):
            hist[tk, j] = ref[j]
            now_m = ref[j] / p0[j]
            if tk == 0 or now_m < worst[p, j]:
                worst[p, j] = now_m
        if trace and u == 0:
            for j in range(n_assets):
                tr_m[p, t, j] = ref[j] / p0[j]
            tr_l[p, t] = liquidated
            mtm = 0.0
            for k in range(n_cand):
                s, _ = _underwater(k, rec, rb, lay, ref, sg, bg)
                mtm += s
            tr_s[p, t] = mtm + deficit

    # -- horizon: shortfall per account, summed in account order --------------------------
    sg = s_grow[n_ticks1 - 1]
    bg = d_grow[n_ticks1 - 1]
    for j in range(n_assets):
        by_asset[p, j] = def_asset[j]
    total = 0.0
    overflow = False
    for k in range(n_cand):
        s, d = _underwater(k, rec, rb, lay, ref, sg, bg)
        val = s + rec[k, lay[4]]
        if not val > 0.0:
            continue
        if s > 0.0:
            for e in range(_n_debt(k, rb, lay)):
                if rec[k, lay[3] + e] > 0.0:
                    j = int(np.int64(rb[k, lay[2] + e]))
                    by_asset[p, j] += s * (rec[k, lay[3] + e] * (ref[j] * bg[j])) / d
        total += val
        if pos < end:
            out_path[pos] = p
            out_row[pos] = cand[k]
            out_val[pos] = val
            pos += 1
        else:
            overflow = True
    for k in range(n_cand):
        stamp[cand[k]] = 0  # the block's next path starts with no candidates
    scalars[p, 0] = total
    scalars[p, 1] = liquidated
    scalars[p, 2] = fee_usd
    scalars[p, 3] = deficit
    ints[p, 0] = n_liq
    ints[p, 1] = hits
    ints[p, 2] = widened
    return pos, overflow
