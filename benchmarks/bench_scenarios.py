"""Scenario generation speed and memory.

Target (issue 5): 10,000 paths x 24 steps x 8 assets of the default Monte Carlo in under
2 s, with peak memory proportional to the output. Peak memory is measured with
``tracemalloc`` (numpy reports its buffers to it) and compared with the size of the
returned arrays; the ratio must stay flat as the run grows (block-wise generation).
"""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

from simulator.scenarios import load_scenario

SYMBOLS = ("WETH", "WBTC", "wstETH", "LINK", "USDC", "DAI", "USDT", "CRV")


def _generate(name: str, n_paths: int) -> tuple[float, float, float]:
    """Best-of-3 wall time (s), peak traced memory (MB) and output size (MB)."""
    sc = load_scenario(name)
    sc.paths(SYMBOLS, 16, seed=1)  # warm-up: imports, caches
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        pp = sc.paths(SYMBOLS, n_paths, seed=1)
        best = min(best, time.perf_counter() - t0)
        del pp
    tracemalloc.start()
    pp = sc.paths(SYMBOLS, n_paths, seed=1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    out = pp.multipliers.nbytes + pp.gas_gwei.nbytes
    return best, peak / 1e6, out / 1e6


def run(quick: bool) -> list[dict[str, Any]]:
    n = 2_000 if quick else 10_000
    rows: list[dict[str, Any]] = []
    seconds, peak, out = _generate("default", n)
    rows.append(
        {
            "benchmark": "scenarios",
            "measure": f"default MC, {n} paths x 24 steps x 8 assets",
            "value": seconds,
            "unit": "s",
            "target": "< 2 s" if not quick else "",
            "ok": seconds < 2.0 if not quick else None,
        }
    )
    rows.append(
        {
            "benchmark": "scenarios",
            "measure": f"peak memory, {n} paths (output {out:.1f} MB)",
            "value": peak,
            "unit": "MB",
            "target": "",
        }
    )
    big = 4 * n
    _, peak_big, out_big = _generate("default", big)
    ratio, ratio_big = peak / out, peak_big / out_big
    rows.append(
        {
            "benchmark": "scenarios",
            "measure": f"peak / output, {n} -> {big} paths ({ratio:.2f} -> {ratio_big:.2f})",
            "value": ratio_big,
            "unit": "x",
            "target": "proportional: < 3x and flat",
            "ok": ratio_big < 3.0 and ratio_big <= ratio * 1.15,
        }
    )
    seconds, _, _ = _generate("black-thursday-2020", n)
    rows.append(
        {
            "benchmark": "scenarios",
            "measure": f"black-thursday-2020 stress, {n} paths x 48 steps",
            "value": seconds,
            "unit": "s",
            "target": "",
        }
    )
    return rows
