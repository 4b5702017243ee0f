"""Venue kernels (``simulator.venues``) compiled with numba: nanoseconds per call of
``proceeds`` and of ``marginal`` on a dependency chain (each sale's size depends on the previous
answer, as in an engine, so nothing is vectorised), against ``cascade.rules`` for the
constant product. No target: the engines call these once per sale or bisection step."""

from __future__ import annotations

import time
from typing import Any

import numba
import numpy as np

from simulator.cascade import rules
from simulator.venues import (
    KIND_CONSTANT_PRODUCT,
    KIND_CURVE,
    KIND_V3,
    curve_rows,
    marginal,
    proceeds,
    v3_rows,
)


@numba.njit(cache=False)
def _chain(which, kind, depth, xs, ys, n, ref, fee, amounts):  # type: ignore[no-untyped-def]
    s = 0.0
    for a in amounts:
        x = a + s * 1e-30
        if which == 0:
            s += proceeds(kind, depth, xs, ys, n, ref, 0.5 * x, fee, x)
        else:
            s += marginal(kind, depth, xs, ys, n, ref, 0.5 * x, fee, x)
    return s


@numba.njit(cache=False)
def _chain_rules(which, depth, ref, fee, amounts):  # type: ignore[no-untyped-def]
    s = 0.0
    for a in amounts:
        x = a + s * 1e-30
        if which == 0:
            s += rules.sale_proceeds(depth, 0.5 * x, ref, fee, x)
        else:
            s += rules.venue_marginal(depth, 0.5 * x, ref, fee, x)
    return s


def _best(fn: Any, args: tuple[Any, ...], calls: int) -> float:
    fn(*args)  # compile
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t0)
    return min(times) / calls * 1e9


def run(quick: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(16)
    amounts = rng.uniform(0.0, 2000.0, 100_000 if quick else 1_000_000)
    calls = len(amounts)
    prices = np.geomspace(1500.0, 4500.0, 65)
    xs3, ys3 = v3_rows(np.sqrt(prices), np.concatenate([rng.uniform(1e4, 5e5, 64), [0.0]]))
    xsc, ysc = curve_rows([[1e6, 0.002], [1e7, 0.01], [5e7, 0.05], [1e8, 0.12]])
    none = np.zeros(1)
    rows = []
    for which, fn in ((0, "proceeds"), (1, "marginal")):
        args = (which, 5e5, 3000.0, 0.003, amounts)
        rows.append((f"{fn}: cascade.rules constant product", _best(_chain_rules, args, calls)))
        for name, kind, xs, ys in (
            ("constant-product", KIND_CONSTANT_PRODUCT, none, none),
            ("uniswap-v3, 64 segments", KIND_V3, xs3, ys3),
            ("depth-curve, 4 points", KIND_CURVE, xsc, ysc),
        ):
            n = 0 if kind == KIND_CONSTANT_PRODUCT else len(xs)
            args2 = (which, kind, 5e5, xs, ys, n, 3000.0, 0.003, amounts)
            rows.append((f"{fn}: {name}", _best(_chain, args2, calls)))
    return [
        {"benchmark": "venues", "measure": m, "value": v, "unit": "ns/call", "target": ""}
        for m, v in rows
    ]
