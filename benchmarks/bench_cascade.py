"""Cascade engine and ``simulate``: the issue's workloads A and B, and fast vs reference.

* Workload A (one-day risk): synthetic book of 100,000 accounts x 8 assets, 10,000 paths x
  24 hourly steps, Student-t(4) returns at 5% daily vol, correlation 0.7, full cascade with
  price impact: target < 12 s and < 4 GiB.
* Workload B (stress month): the same book, 24 daily steps: target < 60 s.
* Workload C (e-mode loopers, issue 15): workload A's book with a tenth of its accounts turned
  into ETH-correlated e-mode loopers (wstETH collateral vs WETH debt at category LT 0.945,
  HF 1.01-1.10) holding a third of all debt, every reserve accruing interest at its rate,
  10,000 paths x 24 hourly steps, wstETH tracking WETH with 0.3% daily vol of its own:
  target < 20 s.
* Workload A's book under Compound V3 rules (``synthetic.comet_book``: USDC the base, every
  debt moved to it at the same health factor), the same paths: target within 1.5x of
  workload A's time, measured in the same run (issue 20).
* Fast engine vs reference engine on a 1,000-account book, in one run, identical results:
  target >= 300x.
* What a few wide accounts (holding every asset) cost workload B's kernel (no target).

Each workload runs in a fresh subprocess (its peak RSS is the memory figure); the time is
``simulate()`` alone (VaR / ES, bootstrap intervals, contributions and the traced timeline
included), after the compiled kernels are loaded by a tiny warm-up run.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import time
from typing import Any

import numpy as np

_WORKLOAD = textwrap.dedent(
    """
    import json, resource, sys, time
    from simulator.simulation import FixedPaths, simulate
    from simulator.snapshot import MarketSnapshot
    from simulator.synthetic import comet_book, synthetic_paths, synthetic_snapshot

    n_accounts, n_paths, step_s = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    emode = float(sys.argv[4])
    comet = sys.argv[5] == "compound-v3"
    tracks = {"wstETH": ("WETH", 0.003)} if emode > 0 else None
    snap = synthetic_snapshot(n_accounts, seed=1, emode_debt_share=emode)
    symbols = snap.book().symbols
    warm = synthetic_snapshot(200, seed=2, emode_debt_share=emode)
    if comet:  # the same book under Compound V3's rules (USDC base)
        snap = MarketSnapshot.from_book(dict(snap.meta), comet_book(snap.book()))
        warm = MarketSnapshot.from_book(dict(warm.meta), comet_book(warm.book()))
    simulate(warm, synthetic_paths(symbols, 4, 24, step_seconds=step_s, seed=9, tracks=tracks))
    paths = synthetic_paths(symbols, n_paths, 24, step_seconds=step_s, seed=3, tracks=tracks)
    start = time.perf_counter()
    result = simulate(snap, FixedPaths(paths), n_paths, seed=1)
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({
        "seconds": seconds,
        "rss": rss,
        "liq_per_account_path": float(result.n_liquidations.sum()) / n_accounts / n_paths,
        "es": result.es_usd,
        "rounds_limit_hits": result.rounds_limit_hits_total,
    }))
    """
)


def _workload(
    n_accounts: int,
    n_paths: int,
    step_seconds: float,
    emode_debt_share: float = 0.0,
    protocol: str = "aave-v3",
) -> dict[str, Any]:
    args = [str(n_accounts), str(n_paths), str(step_seconds), str(emode_debt_share), protocol]
    out = subprocess.run(
        [sys.executable, "-c", _WORKLOAD, *args],
        check=True,
        capture_output=True,
        text=True,
    )
    parsed: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return parsed


def _speed_ratio(n_paths: int) -> tuple[float, float, float, bool]:
    from simulator.cascade.fast import run_fast
    from simulator.cascade.reference import run_reference
    from simulator.synthetic import synthetic_paths, synthetic_snapshot

    book = synthetic_snapshot(1000, seed=4).book()
    paths = synthetic_paths(book.symbols, n_paths, 24, step_seconds=86400.0, seed=5)
    run_fast(book, synthetic_paths(book.symbols, 2, 24, step_seconds=86400.0, seed=6))  # load
    start = time.perf_counter()
    ref = run_reference(book, paths)
    t_ref = time.perf_counter() - start
    t_fast = np.inf
    for _ in range(3):
        start = time.perf_counter()
        fast = run_fast(book, paths)
        t_fast = min(t_fast, time.perf_counter() - start)
    same = (
        np.array_equal(ref.n_liquidations, fast.n_liquidations)
        and np.allclose(ref.shortfall_usd, fast.shortfall_usd, rtol=1e-9, atol=0.0)
        and np.allclose(ref.liquidated_usd, fast.liquidated_usd, rtol=1e-9, atol=0.0)
        and np.array_equal(ref.account_index, fast.account_index)
    )
    return t_ref / t_fast, t_ref, t_fast, bool(same)


def _wide_cost(n_accounts: int, n_paths: int, n_wide: int) -> tuple[float, float]:
    """Workload B's kernel on its book and on the same book with ``n_wide`` accounts made
    to hold every asset as collateral and two more debts (tiny amounts): real books have a
    few such accounts, and the records' width is the widest account's. Returns the two
    times (best of two, alternating in one process)."""
    from simulator.cascade.fast import run_fast
    from simulator.synthetic import synthetic_paths, synthetic_snapshot

    book = synthetic_snapshot(n_accounts, seed=1).book()
    coll, debt = book.collateral.copy(), book.debt.copy()
    value = book.price_usd
    for r in np.linspace(0, n_accounts - 1, n_wide).astype(np.int64):
        tiny = 1e-4 * float(coll[r] @ value) / value
        coll[r] = np.where(coll[r] > 0.0, coll[r], tiny)
        more = np.flatnonzero(debt[r] == 0.0)[:2]
        debt[r, more] = 1e-4 * float(debt[r] @ value) / value[more]
    wide = dataclasses.replace(
        book, collateral=coll, debt=debt, collateral_enabled=np.ones_like(coll, dtype=bool)
    )
    paths = synthetic_paths(book.symbols, n_paths, 24, step_seconds=86400.0, seed=3)
    warm = synthetic_paths(book.symbols, 2, 24, step_seconds=86400.0, seed=6)
    books = (book, wide)
    for b in books:
        run_fast(b, warm)
    best = [np.inf, np.inf]
    for _ in range(2):
        for i, b in enumerate(books):
            start = time.perf_counter()
            run_fast(b, paths)
            best[i] = min(best[i], time.perf_counter() - start)
    return best[0], best[1]


def run(quick: bool) -> list[dict[str, Any]]:
    n_accounts, n_paths = (20_000, 500) if quick else (100_000, 10_000)
    label = f"{n_accounts // 1000}k accounts x {n_paths:,} paths x 24 steps"
    rows: list[dict[str, Any]] = []
    a = _workload(n_accounts, n_paths, 3600.0)
    rows += [
        {
            "benchmark": f"cascade A (1 day, hourly), {label}",
            "measure": "wall time",
            "value": a["seconds"],
            "unit": "s",
            "target": "< 12 s" if not quick else "",
            "ok": a["seconds"] < 12.0 if not quick else None,
        },
        {
            "benchmark": f"cascade A (1 day, hourly), {label}",
            "measure": "peak memory",
            "value": a["rss"] / 2**30,
            "unit": "GiB",
            "target": "< 4 GiB",
            "ok": a["rss"] < 4 * 2**30,
        },
        {
            "benchmark": "cascade A",
            "measure": "liquidations per account-path",
            "value": a["liq_per_account_path"],
            "unit": "",
            "target": "",
        },
    ]
    comet = _workload(n_accounts, n_paths, 3600.0, protocol="compound-v3")
    rows += [
        {
            "benchmark": f"cascade A under Compound V3 rules (USDC base), {label}",
            "measure": "wall time",
            "value": comet["seconds"],
            "unit": "s",
            "target": "",
        },
        {
            "benchmark": "cascade A under Compound V3 rules",
            "measure": "time / workload A's (same run)",
            "value": comet["seconds"] / a["seconds"],
            "unit": "x",
            "target": "<= 1.5x",
            "ok": comet["seconds"] <= 1.5 * a["seconds"],
        },
        {
            "benchmark": "cascade A under Compound V3 rules",
            "measure": "absorptions per account-path",
            "value": comet["liq_per_account_path"],
            "unit": "",
            "target": "",
        },
    ]
    b = _workload(n_accounts, n_paths, 86400.0)
    rows += [
        {
            "benchmark": f"cascade B (1 month, daily), {label}",
            "measure": "wall time",
            "value": b["seconds"],
            "unit": "s",
            "target": "< 60 s" if not quick else "",
            "ok": b["seconds"] < 60.0 if not quick else None,
        },
        {
            "benchmark": "cascade B",
            "measure": "liquidations per account-path",
            "value": b["liq_per_account_path"],
            "unit": "",
            "target": "about 0.2",
        },
    ]
    c = _workload(n_accounts, n_paths, 3600.0, 1.0 / 3.0)
    rows += [
        {
            "benchmark": f"cascade C (1 day, hourly, 1/3 of debt in e-mode loopers), {label}",
            "measure": "wall time",
            "value": c["seconds"],
            "unit": "s",
            "target": "< 20 s" if not quick else "",
            "ok": c["seconds"] < 20.0 if not quick else None,
        },
        {
            "benchmark": "cascade C",
            "measure": "liquidations per account-path",
            "value": c["liq_per_account_path"],
            "unit": "",
            "target": "",
        },
    ]
    n_wide_paths = 100 if quick else 1000
    t_narrow, t_wide = _wide_cost(n_accounts, n_wide_paths, 10)
    rows += [
        {
            "benchmark": f"cascade B kernel, {n_wide_paths:,} paths: 10 accounts holding every asset",
            "measure": "time / without them",
            "value": t_wide / t_narrow,
            "unit": f"x ({t_wide:.1f} s / {t_narrow:.1f} s)",
            "target": "",
        },
    ]
    ratio, t_ref, t_fast, same = _speed_ratio(100)
    rows += [
        {
            "benchmark": "fast vs reference engine, 1k accounts x 24 daily steps",
            "measure": "speed ratio",
            "value": ratio,
            "unit": "x",
            "target": ">= 300x",
            "ok": ratio >= 300.0,
        },
        {
            "benchmark": "fast vs reference engine, 1k accounts x 24 daily steps",
            "measure": "identical results (1 = yes)",
            "value": 1.0 if same else 0.0,
            "unit": "",
            "target": "1",
            "ok": same,
        },
        {
            "benchmark": "fast vs reference engine",
            "measure": "reference / fast wall time",
            "value": t_ref,
            "unit": f"s / {t_fast:.3f} s",
            "target": "",
        },
    ]
    return rows
