"""Risk-measure kernels: VaR/ES on 10 million losses, the ES bootstrap, Euler contributions."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy import sparse

from simulator import risk


def _best_of(fn: Callable[[], object], repeat: int) -> float:
    """Fastest wall time of ``repeat`` calls, seconds (the least disturbed by other load)."""
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _row(benchmark: str, seconds: float, limit: float) -> dict[str, Any]:
    return {
        "benchmark": benchmark,
        "measure": "wall time",
        "value": seconds,
        "unit": "s",
        "target": f"< {limit:g} s",
        "ok": seconds < limit,
    }


def run(quick: bool) -> list[dict[str, Any]]:
    rng = np.random.default_rng(20_240_607)
    n = 1_000_000 if quick else 10_000_000
    repeat = 2 if quick else 3
    losses = rng.lognormal(0.0, 2.0, n) * (rng.random(n) < 0.2)  # mostly zeros, heavy tail
    normal = rng.normal(0.0, 1.0, n)
    label = f"{n / 1e6:g}M losses"
    rows = [
        _row(f"es, {label} (80% zeros)", _best_of(lambda: risk.es(losses, 0.975), repeat), 1.0),
        _row(f"var, {label} (80% zeros)", _best_of(lambda: risk.var(losses, 0.975), repeat), 1.0),
        _row(f"es, {label} (normal)", _best_of(lambda: risk.es(normal, 0.975), repeat), 1.0),
    ]
    weights = rng.exponential(1.0, n)
    rows.append(
        _row(
            f"es weighted, {label} (80% zeros)",
            _best_of(lambda: risk.es(losses, 0.975, weights), 1),
            2.0,
        )
    )

    n_paths, n_boot = (1_000, 200) if quick else (10_000, 2_000)
    sample = losses[:n_paths]
    rows.append(
        _row(
            f"es_ci, {n_paths:,} losses x {n_boot:,} resamples",
            _best_of(lambda: risk.es_ci(sample, 0.975, n_boot=n_boot, rng=1), 1),
            2.0,
        )
    )

    n_scen, n_parts = (1_000, 10_000) if quick else (10_000, 100_000)
    by_part = sparse.random_array(
        (n_scen, n_parts), density=1e-3, format="csr", rng=rng, data_sampler=rng.exponential
    )
    shape = f"{n_scen:,} scenarios x {n_parts:,} parts (sparse, 0.1%)"

    def via_tail_weights() -> np.ndarray:
        totals = np.asarray(by_part.sum(axis=1)).ravel()
        t = risk.tail_weights(totals, 0.975)
        tail_rows = np.flatnonzero(t)  # only these scenarios' per-part losses are needed
        return np.asarray(by_part[tail_rows].T @ t[tail_rows])

    contributions = via_tail_weights()
    total_es = risk.es(np.asarray(by_part.sum(axis=1)).ravel(), 0.975)
    assert math.isclose(math.fsum(contributions.tolist()), total_es, rel_tol=1e-9)
    rows.append(
        _row(
            f"es_contributions, {shape}",
            _best_of(lambda: risk.es_contributions(by_part, 0.975), repeat),
            1.0,
        )
    )
    rows.append(_row(f"tail_weights @ tail rows, {shape}", _best_of(via_tail_weights, repeat), 1.0))
    return rows
