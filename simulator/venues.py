"""Liquidity venues: where liquidators sell seized collateral, and what a sale pays.

Pure numerics (no chain I/O). Each asset ``j`` has one venue of one of three kinds, each with
the exact output of a sale of a given size. The venue is described at a *reference price*
``ref`` (USD per token, the wider market's price): arbitrage is assumed to have brought the
venue to ``ref``, after which ``inventory`` tokens (gross, fee included) were sold into it.

Kinds (``KIND_*`` codes, ``KIND_NAMES`` for the snapshot's ``venue_kind`` column):

``KIND_CONSTANT_PRODUCT`` (0, ``"constant-product"``): a Uniswap V2 pair of depth
    ``L = sqrt(x * y)`` (token units x USD). At ``ref`` it holds ``x_eq = L / sqrt(ref)``
    tokens; the inventory stays in it (V2 keeps the fee in the reserves), so it holds
    ``x = x_eq + inventory`` tokens and ``L**2 / x`` USD. Selling ``a`` tokens pays
    ``a' y / (x + a')`` with ``a' = a (1 - fee)``. The same formulas as
    ``simulator.cascade.rules`` (``sale_proceeds``, ``venue_marginal``, ``impact_factor``).

``KIND_V3`` (1, ``"uniswap-v3"``): Uniswap V3 concentrated liquidity, read at the pull block.
    Its liquidity is fixed in *absolute* price (LPs do not follow the reference price): the
    row holds sqrt-price breakpoints ``xs[0] < ... < xs[n-1]`` (sqrt of quote tokens per asset
    token, token units, i.e. the asset priced in the quote token) and ``ys[k]``, the active
    liquidity (token units: ``sqrt(asset x quote)``) between ``xs[k]`` and ``xs[k+1]``
    (``ys[n-1] = 0``). At reference ``ref`` the pool sits at ``sqrt(ref)``, and a sale walks
    down the segments below it with the whitepaper's formulas: within a segment of liquidity
    ``L`` a net input of ``dx`` tokens moves ``sqrt P`` to ``L sqrt P / (L + dx sqrt P)`` and
    pays ``L (sqrt P - sqrt P')``. V3 takes its fee out of the input (``dx = a (1 - fee)``) and
    keeps it outside the curve, so the inventory has walked ``inventory (1 - fee)`` tokens.
    **Outside the read range** (``xs[0]`` to ``xs[n-1]``, +-50% of the price at the pull)
    there is no liquidity: a sale below ``xs[0]`` pays nothing more (proceeds stop growing,
    marginal 0), and a reference above ``xs[n-1]`` jumps to ``xs[n-1]`` at the first token
    sold (the pool is at ``ref`` with nothing to sell into until the read liquidity starts).
    A zero-liquidity gap inside the range is crossed the same way.

``KIND_CURVE`` (2, ``"depth-curve"``): a depth curve the user gives per asset, points
    ``(size_usd, impact)``: selling ``size_usd`` worth of tokens (at the reference price) in
    one go returns ``size_usd * (1 - impact)`` USD, i.e. ``impact`` is the **average**
    execution impact of the whole sale (what an aggregator quote gives), fee included. The
    row holds ``xs = [0, s_1, ..., s_m]`` (USD size) and ``ys = [0, R_1, ..., R_m]`` with
    ``R_k = s_k (1 - impact_k)`` (USD proceeds), and proceeds are piecewise linear in size
    between the points (exact at them), so the marginal price is piecewise constant; the
    points must make it non-increasing (``curve_rows`` checks, ``VenueError`` names the
    point). Sizes are in USD at whatever the reference price is (the curve does not thin
    when the price falls). The first point's impact applies from the first dollar (a spread).
    Beyond the last point there is no more liquidity (proceeds stop growing). An extra
    ``fee`` (default 0: quotes include it) is taken from the input like the other kinds.

The hot functions (``proceeds``, ``marginal``, ``price_factor``, ``amount_at_marginal``,
``depth_at``) are plain float64 math, callable from Python and from ``numba.njit`` code
(registered jitable). Their venue arguments are one asset's row of the ``Venues`` arrays::

    kind:  int64     (n_assets,)              KIND_* code
    depth: float64   (n_assets,)              constant product L = sqrt(x*y) (others: unused)
    fee:   float64   (n_assets,)              swap fee, fraction
    xs:    float64   (n_assets, max_points)   V3: sqrt-price breakpoints; curve: USD sizes
    ys:    float64   (n_assets, max_points)   V3: liquidity above xs[k]; curve: USD proceeds
    count: int64     (n_assets,)              points used in row j (rest: padding, zeros)

so an engine calls ``proceeds(v.kind[j], v.depth[j], v.xs[j], v.ys[j], v.count[j], ref,
inventory, v.fee[j], amount)``. ``inventory`` counts tokens sold (gross) and is meant to be
``>= 0``: the constant product reads a negative one as tokens bought out of the pool (price
above ``ref``), V3 and curves as 0 (they model sales only).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from numba.extending import register_jitable

from simulator.errors import ShortfallError

__all__ = [
    "KIND_CONSTANT_PRODUCT",
    "KIND_CURVE",
    "KIND_NAMES",
    "KIND_V3",
    "REPORT_IMPACTS",
    "VenueError",
    "Venues",
    "amount_at_marginal",
    "curve_rows",
    "depth_at",
    "marginal",
    "price_factor",
    "proceeds",
    "v3_rows",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

KIND_CONSTANT_PRODUCT = 0
KIND_V3 = 1
KIND_CURVE = 2
#: Snapshot names of the kinds, by code.
KIND_NAMES: tuple[str, ...] = ("constant-product", "uniswap-v3", "depth-curve")
#: Impacts the report shows each venue's depth at.
REPORT_IMPACTS: tuple[float, ...] = (0.02, 0.05, 0.10)

_jit = register_jitable(error_model="numpy")


_F = TypeVar("_F", bound=Callable[..., Any])


def _inline(fn: _F) -> _F:
    """Register ``fn`` to be inlined into its compiled callers (the constant product then
    compiles to the same code as ``simulator.cascade.rules``; the segment walks are called).

    A fresh decorator per function: ``register_jitable(inline="always")`` pops ``inline``
    from its shared keyword arguments, so a reused one inlines only the first function it
    decorates (numba 0.6x) and the dispatch on the kind then costs ~20 ns a call."""
    return register_jitable(inline="always", error_model="numpy")(fn)


class VenueError(ShortfallError, ValueError):
    """A venue description is invalid (the message names the file, asset and point)."""


# -- constant product -------------------------------------------------------------------


@_inline
def _cp_proceeds(depth: float, ref: float, inventory: float, fee: float, amount: float) -> float:
    if amount <= 0.0 or depth <= 0.0 or ref <= 0.0:
        return 0.0
    net = amount * (1.0 - fee)
    if math.isinf(depth):
        return net * ref
    x = depth / math.sqrt(ref) + inventory
    y = depth * depth / x
    return net * y / (x + net)


@_inline
def _cp_marginal(depth: float, ref: float, inventory: float, fee: float, amount: float) -> float:
    if depth <= 0.0 or ref <= 0.0:
        return 0.0
    if math.isinf(depth):
        return (1.0 - fee) * ref
    x = depth / math.sqrt(ref) + inventory
    y = depth * depth / x
    z = x + amount * (1.0 - fee)
    return (1.0 - fee) * x * y / (z * z)


@_inline
def _cp_factor(depth: float, ref: float, inventory: float) -> float:
    if inventory <= 0.0 or depth <= 0.0 or math.isinf(depth) or ref <= 0.0:
        return 1.0
    x_eq = depth / math.sqrt(ref)
    ratio = x_eq / (x_eq + inventory)
    return ratio * ratio


# -- Uniswap V3 segments ------------------------------------------------------------------


@_jit
def _v3_segment(xs: FloatArray, count: int, sqrt_p: float) -> int:
    """Index ``k`` of the segment a sale from ``sqrt_p`` starts in: the largest ``k`` with
    ``xs[k] < sqrt_p`` (-1 when ``sqrt_p`` is at or below the range)."""
    lo = 0
    hi = count  # invariant: answer in [lo - 1, hi - 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if xs[mid] < sqrt_p:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1


@_jit
def _v3_walk(
    xs: FloatArray, ys: FloatArray, count: int, sqrt_p: float, net: float
) -> tuple[float, float]:
    """Sell ``net`` tokens (after fee) from ``sqrt_p`` down the segments: (USD out, sqrt P
    after). Zero-liquidity stretches are crossed without consuming tokens once a token is
    sold; below the range the price falls to 0 and nothing more is paid."""
    if net <= 0.0:
        return 0.0, sqrt_p
    k = _v3_segment(xs, count, sqrt_p)
    if count > 0 and k == count - 1:  # above the read range: nothing until its top
        sqrt_p = xs[count - 1]
        k = count - 2
    out = 0.0
    left = net
    while k >= 0:
        liq = ys[k]
        lower = xs[k]
        if liq > 0.0:
            need = liq * (1.0 / lower - 1.0 / sqrt_p)
            if left < need:
                after = liq * sqrt_p / (liq + left * sqrt_p)
                if after < lower:
                    after = lower
                return out + liq * (sqrt_p - after), after
            out += liq * (sqrt_p - lower)
            left -= need
        sqrt_p = lower
        k -= 1
    return out, 0.0


@_jit
def _v3_next_price(xs: FloatArray, ys: FloatArray, count: int, sqrt_p: float) -> float:
    """Price (quote per token) the next infinitesimal sale from ``sqrt_p`` gets: ``sqrt_p**2``
    inside liquidity, else the top of the next segment below that has some (0 if none)."""
    k = _v3_segment(xs, count, sqrt_p)
    if count > 0 and k == count - 1:
        sqrt_p = xs[count - 1]
        k = count - 2
    while k >= 0:
        if ys[k] > 0.0:
            return sqrt_p * sqrt_p
        sqrt_p = xs[k]
        k -= 1
    return 0.0


@_jit
def _v3_proceeds(
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    amount: float,
) -> float:
    if amount <= 0.0 or ref <= 0.0:
        return 0.0
    _, sqrt_p = _v3_walk(xs, ys, count, math.sqrt(ref), inventory * (1.0 - fee))
    out, _ = _v3_walk(xs, ys, count, sqrt_p, amount * (1.0 - fee))
    return out


@_jit
def _v3_marginal(
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    amount: float,
) -> float:
    if ref <= 0.0:
        return 0.0
    _, sqrt_p = _v3_walk(xs, ys, count, math.sqrt(ref), (inventory + amount) * (1.0 - fee))
    return (1.0 - fee) * _v3_next_price(xs, ys, count, sqrt_p)


@_jit
def _v3_factor(
    xs: FloatArray, ys: FloatArray, count: int, ref: float, inventory: float, fee: float
) -> float:
    if inventory <= 0.0 or ref <= 0.0:
        return 1.0
    _, sqrt_p = _v3_walk(xs, ys, count, math.sqrt(ref), inventory * (1.0 - fee))
    f = sqrt_p * sqrt_p / ref
    return f if f < 1.0 else 1.0


# -- depth curve ---------------------------------------------------------------------------


@_jit
def _curve_value(xs: FloatArray, ys: FloatArray, count: int, size: float) -> float:
    """USD proceeds of a sale of ``size`` USD (piecewise linear; flat beyond the last point)."""
    if size <= 0.0 or count < 2:
        return 0.0
    if size >= xs[count - 1]:
        return float(ys[count - 1])
    k = _v3_segment(xs, count, size)  # largest k with xs[k] < size
    slope = (ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k])
    return float(ys[k] + slope * (size - xs[k]))


@_jit
def _curve_slope(xs: FloatArray, ys: FloatArray, count: int, size: float) -> float:
    """Proceeds per USD of size for the next dollar after ``size`` (right derivative)."""
    if count < 2 or size >= xs[count - 1]:
        return 0.0
    if size < 0.0:
        size = 0.0
    k = _v3_segment(xs, count, size)
    if k < 0:
        k = 0
    # at a breakpoint the next dollar is in the segment above it
    while k + 1 < count - 1 and xs[k + 1] <= size:
        k += 1
    return float((ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]))


# -- the interface ------------------------------------------------------------------------


@_inline
def proceeds(
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    amount: float,
) -> float:
    """USD received for selling ``amount`` more tokens into the venue of one asset, which
    was at reference price ``ref`` (USD per token) before ``inventory`` tokens were sold."""
    # the constant product first: it then compiles to the same code as cascade.rules
    if kind == KIND_CONSTANT_PRODUCT:
        return _cp_proceeds(depth, ref, inventory, fee, amount)
    if kind == KIND_V3:
        return _v3_proceeds(xs, ys, count, ref, inventory, fee, amount)
    if amount <= 0.0 or ref <= 0.0:
        return 0.0
    start = inventory * (1.0 - fee) * ref
    end = (inventory + amount) * (1.0 - fee) * ref
    return _curve_value(xs, ys, count, end) - _curve_value(xs, ys, count, start)


@_inline
def marginal(
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    amount: float,
) -> float:
    """USD per token the venue pays for the next token after ``amount`` more tokens were
    sold (the derivative of ``proceeds`` in ``amount``, from the right); non-increasing in
    ``amount``."""
    if kind == KIND_CONSTANT_PRODUCT:
        return _cp_marginal(depth, ref, inventory, fee, amount)
    if kind == KIND_V3:
        return _v3_marginal(xs, ys, count, ref, inventory, fee, amount)
    if ref <= 0.0:
        return 0.0
    size = (inventory + amount) * (1.0 - fee) * ref
    return (1.0 - fee) * ref * _curve_slope(xs, ys, count, size)


@_inline
def price_factor(
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
) -> float:
    """Venue price / ``ref`` after ``inventory`` tokens were sold (1 at no inventory, <= 1).

    Constant product: the pool's spot price (``fee`` unused: V2 keeps it in the pool). V3:
    the pool's price after walking ``inventory (1 - fee)`` tokens. Depth curve: the marginal
    proceeds per USD of the last dollar sold (the left derivative; 1 at no inventory)."""
    if kind == KIND_CONSTANT_PRODUCT:
        return _cp_factor(depth, ref, inventory)
    if kind == KIND_V3:
        return _v3_factor(xs, ys, count, ref, inventory, fee)
    if inventory <= 0.0 or ref <= 0.0 or count < 2:
        return 1.0
    size = inventory * (1.0 - fee) * ref
    if size > xs[count - 1]:
        return 0.0
    k = _v3_segment(xs, count, size)  # xs[k] < size <= xs[k + 1]
    return float((ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]))


@_jit
def amount_at_marginal(
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    inventory: float,
    fee: float,
    target: float,
) -> float:
    """Tokens to sell (after ``inventory``) until the marginal price falls to ``target`` USD
    per token or below: 0 if it is there already, ``inf`` if it never gets there. Exact for
    each kind (closed forms per segment), the inverse of ``marginal``."""
    top = marginal(kind, depth, xs, ys, count, ref, inventory, fee, 0.0)
    if top <= target:
        return 0.0
    if target <= 0.0:
        return math.inf
    if kind == KIND_V3:
        # the sale walks until sqrt P = sqrt(target / (1 - fee)); tokens to get there
        goal = math.sqrt(target / (1.0 - fee))
        _, sqrt_p = _v3_walk(xs, ys, count, math.sqrt(ref), inventory * (1.0 - fee))
        k = _v3_segment(xs, count, sqrt_p)
        if count > 0 and k == count - 1:
            sqrt_p = xs[count - 1]
            k = count - 2
        net = 0.0
        while k >= 0:
            lower = xs[k]
            liq = ys[k]
            if liq > 0.0:
                if goal >= lower:
                    if goal < sqrt_p:
                        net += liq * (1.0 / goal - 1.0 / sqrt_p)
                    return net / (1.0 - fee)
                net += liq * (1.0 / lower - 1.0 / sqrt_p)
            sqrt_p = lower
            k -= 1
        return net / (1.0 - fee)
    if kind == KIND_CURVE:
        start = inventory * (1.0 - fee) * ref
        scale = (1.0 - fee) * ref
        end = xs[count - 1]
        for i in range(1, count):
            if xs[i] > start:
                slope = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
                if scale * slope <= target:
                    end = xs[i - 1] if xs[i - 1] > start else start
                    break
        return float((end - start) / scale)
    if math.isinf(depth):
        return math.inf
    x = depth / math.sqrt(ref) + inventory
    y = depth * depth / x
    a = (math.sqrt((1.0 - fee) * x * y / target) - x) / (1.0 - fee)
    return a if a > 0.0 else 0.0


@_jit
def depth_at(
    kind: int,
    depth: float,
    xs: FloatArray,
    ys: FloatArray,
    count: int,
    ref: float,
    impact: float,
) -> float:
    """USD size (tokens x ``ref``) of the sale, from the venue at ``ref`` with no inventory,
    that moves it by ``impact`` (a fraction, 0.02 for 2%), fees aside.

    Constant product and V3: the sale that lowers the venue's *spot price* by ``impact``.
    Depth curve: the sale whose *average* execution price is ``impact`` below ``ref`` (the
    quantity its points give). ``nan`` when the venue's known liquidity ends first (V3: below
    its read range; curve: beyond its last point); ``inf`` for an infinitely deep pool."""
    if ref <= 0.0 or impact <= 0.0:
        return 0.0
    if kind == KIND_V3:
        # spot price ref (1 - impact) is reached after walking to sqrt(ref (1 - impact))
        goal = math.sqrt(ref * (1.0 - impact))
        if count < 2 or goal <= xs[0]:
            return math.nan
        net = amount_at_marginal(kind, 0.0, xs, ys, count, ref, 0.0, 0.0, goal * goal)
        return net * ref
    if kind == KIND_CURVE:
        if count < 2:
            return math.nan
        first = 1.0 - ys[1] / xs[1]
        # the first segment's average impact is the first point's throughout
        if impact < first * (1.0 - 1e-12):
            return 0.0
        if impact <= first * (1.0 + 1e-12):
            return float(xs[1])
        for i in range(2, count):
            avg = ys[i] / xs[i]
            if 1.0 - avg >= impact:
                # on segment i: R(s) = ys[i-1] + m (s - xs[i-1]); solve R(s) = s (1 - impact)
                m = (ys[i] - ys[i - 1]) / (xs[i] - xs[i - 1])
                return float((ys[i - 1] - m * xs[i - 1]) / (1.0 - impact - m))
        return math.nan
    if depth <= 0.0:
        return 0.0
    if math.isinf(depth):
        return math.inf
    x_eq = depth / math.sqrt(ref)
    return x_eq * (1.0 / math.sqrt(1.0 - impact) - 1.0) * ref


# -- building the rows ----------------------------------------------------------------------


def curve_rows(
    points: Sequence[Sequence[float]], where: str = "depth curve"
) -> tuple[FloatArray, FloatArray]:
    """The ``(xs, ys)`` row of a depth curve from its ``(size_usd, impact)`` points.

    Sizes must be positive and strictly increasing, impacts in ``(0, 1)`` and strictly
    increasing, and the proceeds curve they imply must be concave (each segment's marginal
    price at most the previous one's) so the marginal price never rises with size.
    ``VenueError`` names ``where`` (file and asset) and the point at fault."""
    if len(points) < 1:
        raise VenueError(f"{where}: no points; give [[size_usd, impact], ...]")
    xs = [0.0]
    ys = [0.0]
    last_slope = math.inf
    for i, point in enumerate(points):
        if (
            not isinstance(point, Sequence)
            or isinstance(point, str)
            or len(point) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in point)
        ):
            raise VenueError(f"{where}: point {i} is {point!r}; expected [size_usd, impact]")
        size, impact = float(point[0]), float(point[1])
        if not (math.isfinite(size) and size > 0.0):
            raise VenueError(f"{where}: point {i} size {size!r} must be a positive USD amount")
        if not 0.0 < impact < 1.0:
            raise VenueError(f"{where}: point {i} impact {impact!r} must be in (0, 1)")
        if size <= xs[-1]:
            raise VenueError(
                f"{where}: point {i} size {size!r} is not above the previous point's "
                f"{xs[-1]!r}; sizes must increase"
            )
        if i and impact <= float(points[i - 1][1]):
            raise VenueError(
                f"{where}: point {i} impact {impact!r} is not above the previous point's "
                f"{float(points[i - 1][1])!r}; impacts must increase with size"
            )
        value = size * (1.0 - impact)
        slope = (value - ys[-1]) / (size - xs[-1])
        if slope > last_slope * (1.0 + 1e-12):
            raise VenueError(
                f"{where}: point {i} ({size!r}, {impact!r}) makes the marginal price rise "
                f"(the dollars between the previous point and it would get {slope:.6f} of "
                f"their value, the ones before only {last_slope:.6f}); the average impact "
                "must grow at least as fast as a concave proceeds curve allows"
            )
        if slope < 0.0:
            raise VenueError(
                f"{where}: point {i} ({size!r}, {impact!r}) pays less than the previous "
                "point for a larger sale; proceeds must grow with size"
            )
        xs.append(size)
        ys.append(value)
        last_slope = slope
    return np.array(xs), np.array(ys)


def v3_rows(
    sqrt_prices: Sequence[float], liquidity: Sequence[float], where: str = "V3 pool"
) -> tuple[FloatArray, FloatArray]:
    """The ``(xs, ys)`` row of a V3 venue: ascending sqrt-price breakpoints (positive) and
    the liquidity above each (``>= 0``; the last is the top of the range and must be 0)."""
    xs = np.asarray(sqrt_prices, dtype=np.float64)
    ys = np.asarray(liquidity, dtype=np.float64)
    if xs.ndim != 1 or xs.shape != ys.shape or len(xs) < 2:
        raise VenueError(f"{where}: need at least 2 breakpoints and one liquidity per breakpoint")
    if not (np.isfinite(xs).all() and (xs > 0).all() and (np.diff(xs) > 0).all()):
        raise VenueError(f"{where}: sqrt-price breakpoints must be positive and increasing")
    if not (np.isfinite(ys).all() and (ys >= 0).all()):
        raise VenueError(f"{where}: liquidity must be finite and >= 0")
    if ys[-1] != 0.0:
        raise VenueError(f"{where}: the last breakpoint closes the range; its liquidity must be 0")
    return xs, ys


@dataclass(frozen=True, slots=True)
class Venues:
    """Every asset's venue as the engines' arrays (layout in the module docstring).

    Build with ``Venues.from_rows``; ``scaled`` multiplies every venue's liquidity.
    """

    kind: IntArray
    """``KIND_*`` code per asset, ``(n_assets,)``."""
    depth: FloatArray
    """Constant-product depth ``L = sqrt(x * y)``, token units x USD, ``(n_assets,)``."""
    fee: FloatArray
    """Swap fee, fraction, ``(n_assets,)``."""
    xs: FloatArray
    """V3: sqrt-price breakpoints; curve: USD sizes; ``(n_assets, max_points)``."""
    ys: FloatArray
    """V3: liquidity above ``xs``; curve: USD proceeds; ``(n_assets, max_points)``."""
    count: IntArray
    """Points used per asset (0 for constant product), ``(n_assets,)``."""

    @property
    def n_assets(self) -> int:
        return len(self.kind)

    @classmethod
    def from_rows(
        cls,
        kind: npt.ArrayLike,
        depth: npt.ArrayLike,
        fee: npt.ArrayLike,
        rows: Mapping[int, tuple[FloatArray, FloatArray]],
    ) -> Venues:
        """Pad per-asset ``(xs, ys)`` rows (asset index -> row) to one common width."""
        codes = np.asarray(kind, dtype=np.int64)
        n = len(codes)
        width = max([1, *(len(r[0]) for r in rows.values())])
        xs = np.zeros((n, width))
        ys = np.zeros((n, width))
        count = np.zeros(n, dtype=np.int64)
        for j, (x, y) in rows.items():
            xs[j, : len(x)] = x
            ys[j, : len(y)] = y
            count[j] = len(x)
        for j, code in enumerate(codes):
            if code not in (KIND_CONSTANT_PRODUCT, KIND_V3, KIND_CURVE):
                raise VenueError(f"asset {j}: unknown venue kind code {int(code)}")
            if code != KIND_CONSTANT_PRODUCT and count[j] < 2:
                raise VenueError(f"asset {j}: a {KIND_NAMES[code]} venue needs its points")
        return cls(
            kind=codes,
            depth=np.asarray(depth, dtype=np.float64).copy(),
            fee=np.asarray(fee, dtype=np.float64).copy(),
            xs=xs,
            ys=ys,
            count=count,
        )

    def scaled(self, scale: float) -> Venues:
        """Every venue's liquidity times ``scale`` (constant product: depth; V3: liquidity;
        curve: sizes and proceeds, so the same impact needs ``scale`` times the size).

        As ``cascade.rules.pool_depth``: ``scale = inf`` makes every venue an infinitely deep
        constant-product pool (no impact), ``scale <= 0`` one without liquidity."""
        if math.isinf(scale) or scale <= 0.0:
            n = self.n_assets
            depth = np.full(n, math.inf if scale > 0 else 0.0)
            return Venues.from_rows(np.zeros(n, dtype=np.int64), depth, self.fee, {})
        xs = self.xs.copy()
        ys = self.ys.copy()
        curve = self.kind == KIND_CURVE
        xs[curve] *= scale
        ys[curve | (self.kind == KIND_V3)] *= scale
        return Venues(self.kind, self.depth * scale, self.fee, xs, ys, self.count)

    def proceeds(self, j: int, ref: float, inventory: float, amount: float) -> float:
        """``proceeds`` for asset ``j`` (convenience for humans and tests)."""
        return float(
            proceeds(
                int(self.kind[j]),
                float(self.depth[j]),
                self.xs[j],
                self.ys[j],
                int(self.count[j]),
                ref,
                inventory,
                float(self.fee[j]),
                amount,
            )
        )

    def marginal(self, j: int, ref: float, inventory: float, amount: float) -> float:
        """``marginal`` for asset ``j``."""
        return float(
            marginal(
                int(self.kind[j]),
                float(self.depth[j]),
                self.xs[j],
                self.ys[j],
                int(self.count[j]),
                ref,
                inventory,
                float(self.fee[j]),
                amount,
            )
        )

    def price_factor(self, j: int, ref: float, inventory: float) -> float:
        """``price_factor`` for asset ``j``."""
        return float(
            price_factor(
                int(self.kind[j]),
                float(self.depth[j]),
                self.xs[j],
                self.ys[j],
                int(self.count[j]),
                ref,
                inventory,
                float(self.fee[j]),
            )
        )

    def depth_at(self, j: int, ref: float, impact: float) -> float:
        """``depth_at`` for asset ``j``."""
        return float(
            depth_at(
                int(self.kind[j]),
                float(self.depth[j]),
                self.xs[j],
                self.ys[j],
                int(self.count[j]),
                ref,
                impact,
            )
        )
