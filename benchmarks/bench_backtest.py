"""``shortfall backtest`` workload: 1,643 daily forecasts (2020-01-01..2024-06-30) of one
position at 4,096 paths each, with both baselines and the tests; target under 2 minutes.

Reads the shipped price history in ``data/prices`` (a checkout, not an installed package).
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from simulator import backtest as bt
from simulator.scenarios import load_scenario

PRICES = Path(__file__).resolve().parents[1] / "data" / "prices"


def run(quick: bool) -> list[dict[str, Any]]:
    prices = bt.read_prices([PRICES / "ETH-USD.csv", PRICES / "BTC-USD.csv"])
    start = dt.date(2024, 1, 1) if quick else dt.date(2020, 1, 1)
    t0 = time.perf_counter()
    res = bt.run_backtest(
        prices,
        load_scenario("default"),
        bt.parse_position("ETH=0.5,BTC=0.5"),
        start,
        dt.date(2024, 6, 30),
        n_paths=4096,
        seed=1,
    )
    seconds = time.perf_counter() - t0
    n = res.meta["n_forecasts"]
    limit = 120.0 * n / 1643
    return [
        {
            "benchmark": f"backtest default, 50/50 book, {n:,} days x 4,096 paths (+ baselines)",
            "measure": "wall time",
            "value": seconds,
            "unit": "s",
            "target": f"< {limit:.0f} s",
            "ok": seconds < limit,
        }
    ]
