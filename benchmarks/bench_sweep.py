"""``sweep``: 10 values of WETH's LT on workload A's book against workload A itself.

Workload A (bench_cascade): 100,000 accounts x 8 assets, 10,000 paths x 24 hourly steps,
Student-t(4) returns. The sweep runs 10 LT values (0.78 to 0.87, the snapshot's 0.83 among
them, so the base is one of the 10) on the same book and paths, writing the sweep directory
(every point's ordinary results included). Target: the sweep in under 10 x workload A's
``simulate`` time. Both are measured in one subprocess, one after the other, after a warm-up
(on a shared machine both are upper bounds; the ratio is the figure that matters).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

_SCRIPT = textwrap.dedent(
    """
    import json, resource, sys, tempfile, time
    from pathlib import Path
    from simulator.simulation import FixedPaths, simulate
    from simulator.sweep import run_sweep
    from simulator.synthetic import synthetic_paths, synthetic_snapshot

    n_accounts, n_paths = int(sys.argv[1]), int(sys.argv[2])
    snap = synthetic_snapshot(n_accounts, seed=1)
    symbols = snap.book().symbols
    warm = synthetic_snapshot(200, seed=2)
    wp = synthetic_paths(symbols, 4, 24, step_seconds=3600.0, seed=9)
    simulate(warm, wp)
    run_sweep(warm, wp, ["WETH.liquidation_threshold=0.8,0.83"])
    paths = FixedPaths(synthetic_paths(symbols, n_paths, 24, step_seconds=3600.0, seed=3))
    start = time.perf_counter()
    a = simulate(snap, paths, n_paths, seed=1)
    t_a = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        sw = run_sweep(
            snap, paths, ["WETH.liquidation_threshold=0.78:0.87:0.01"], n_paths, seed=1,
            target_es_pct=0.01, out=Path(tmp) / "sweep",
        )
        t_s = time.perf_counter() - start
    t = sw.table
    base = t[t["is_base"]].iloc[0]
    wide = t[~t["is_base"]]
    print(json.dumps({
        "a_seconds": t_a,
        "sweep_seconds": t_s,
        "points": len(t),
        "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "same_base_es": bool(base["es_usd"] == a.es_usd),
        "paired_over_unpaired": float(
            ((wide["es_diff_high_usd"] - wide["es_diff_low_usd"])
             / (wide["es_diff_unpaired_high_usd"] - wide["es_diff_unpaired_low_usd"])).median()
        ),
        "es_min": float(t["es_usd"].min()),
        "es_max": float(t["es_usd"].max()),
        "liquidatable_at_078": int(t["liquidatable_now"].iloc[0]),
        "recommendation": sw.summary["recommendations"][0]["text"],
    }))
    """
)


def run(quick: bool) -> list[dict[str, Any]]:
    n_accounts, n_paths = (20_000, 500) if quick else (100_000, 10_000)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(n_accounts), str(n_paths)],
        check=True,
        capture_output=True,
        text=True,
    )
    r: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = r["sweep_seconds"] / r["a_seconds"]
    label = f"sweep, 10 WETH LTs, {n_accounts // 1000}k accounts x {n_paths:,} paths x 24 h"
    print(f"  sweep recommendation: {r['recommendation']}", file=sys.stderr)
    return [
        {
            "benchmark": label,
            "measure": "sweep / workload A time",
            "value": ratio,
            "unit": f"x ({r['sweep_seconds']:.1f} s / {r['a_seconds']:.1f} s)",
            "target": "< 10x" if not quick else "",
            "ok": ratio < 10.0 if not quick else None,
        },
        {
            "benchmark": label,
            "measure": "peak memory",
            "value": r["rss"] / 2**30,
            "unit": "GiB",
            "target": "",
        },
        {
            "benchmark": label,
            "measure": "paired / unpaired ES-difference CI width (median)",
            "value": r["paired_over_unpaired"],
            "unit": "",
            "target": "< 1",
            "ok": r["paired_over_unpaired"] < 1.0,
        },
        {
            "benchmark": label,
            "measure": "base point ES equals simulate's (1 = yes)",
            "value": 1.0 if r["same_base_es"] else 0.0,
            "unit": "",
            "target": "1",
            "ok": r["same_base_es"],
        },
        {
            "benchmark": label,
            "measure": "ES range over the 10 LTs",
            "value": r["es_max"] - r["es_min"],
            "unit": f"USD ({r['es_min']:,.0f} .. {r['es_max']:,.0f})",
            "target": "",
        },
        {
            "benchmark": label,
            "measure": "accounts liquidatable at once at LT 0.78",
            "value": float(r["liquidatable_at_078"]),
            "unit": "accounts",
            "target": "",
        },
    ]
