"""Scenario generation speed and memory.

Target (issue 5): 10,000 paths x 24 steps x 8 assets in under 2 s (the default Monte Carlo,
and the historical bootstrap and GARCH-filtered kinds on a synthetic CSV; their one-off
calibration at load time is not timed), with peak memory proportional to the output. Peak memory is measured with
``tracemalloc`` (numpy reports its buffers to it) and compared with the size of the
returned arrays; the ratio must stay flat as the run grows (block-wise generation).
"""

from __future__ import annotations

import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from simulator.scenarios import load_scenario

SYMBOLS = ("WETH", "WBTC", "wstETH", "LINK", "USDC", "DAI", "USDT", "CRV")


def _historical_files(directory: Path) -> dict[str, Path]:
    """A synthetic 1,500-day price CSV of the 8 factors behind ``SYMBOLS`` (Student-t(4)
    daily returns, seed 0: the benchmark needs no market data) and one historical scenario
    file per method."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    days = pd.date_range("2019-01-01", periods=1500, freq="D")
    factors = ["ETH", "BTC", "LST", "LINK", "STABLE", "CRV", "AAVE", "UNI"]
    returns = rng.standard_t(4, size=(len(days), len(factors))) * 0.03
    prices = pd.DataFrame(np.exp(np.cumsum(returns, axis=0)), index=days, columns=factors)
    prices.rename_axis("date").to_csv(directory / "prices.csv")
    out = {}
    for method in ("bootstrap", "filtered"):
        path = directory / f"{method}.toml"
        path.write_text(
            f'kind = "historical"\nmethod = "{method}"\ncsv = "prices.csv"\n'
            "as_of = 2023-01-01\nn_steps = 24\nstep_seconds = 3600\n"
        )
        out[method] = path
    return out


def _generate(name: str | Path, n_paths: int) -> tuple[float, float, float]:
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


def _timing_row(measure: str, seconds: float, quick: bool) -> dict[str, Any]:
    """A generation-time row, held to the 2 s target on a full (not ``quick``) run."""
    return {
        "benchmark": "scenarios",
        "measure": measure,
        "value": seconds,
        "unit": "s",
        "target": "< 2 s" if not quick else "",
        "ok": seconds < 2.0 if not quick else None,
    }


def run(quick: bool) -> list[dict[str, Any]]:
    n = 2_000 if quick else 10_000
    rows: list[dict[str, Any]] = []
    seconds, peak, out = _generate("default", n)
    rows.append(_timing_row(f"default MC, {n} paths x 24 steps x 8 assets", seconds, quick))
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
    with tempfile.TemporaryDirectory() as tmp:
        for method, path in _historical_files(Path(tmp)).items():
            seconds, _, _ = _generate(path, n)
            measure = f"historical {method}, {n} paths x 24 steps x 8 assets"
            rows.append(_timing_row(measure, seconds, quick))
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
