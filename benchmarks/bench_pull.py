"""``shortfall pull`` speed: 20,000 accounts from a fresh devnet in under 30 s, with at least
100 accounts per RPC request on average (quick: 2,000 accounts), for the Aave V3 devnet and
for the Compound V3 (Comet) devnet.

Starts anvil, deploys and seeds the devnet (not timed), then times a cold pull (empty
discovery cache: scans every log) and a warm one (the cache covers the block), both with the
CLI's default pacing (25 requests/s, 8 in flight).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from keeper.devnet.launch import launch
from keeper.pull import pull, settings_from_deployment


def run(quick: bool) -> list[dict[str, Any]]:
    n = 2_000 if quick else 20_000
    return _measure("aave-v3", n, quick) + _measure("compound-v3", n, quick)


def _measure(protocol: str, n: int, quick: bool) -> list[dict[str, Any]]:
    devnet = launch(accounts=n, seed=7, protocol=protocol)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pull-") as tmp:
            root = Path(tmp)
            (root / "deployment.json").write_text(json.dumps(devnet.deployment))
            settings = settings_from_deployment(
                root / "deployment.json", cache_path=root / "discovery.sqlite"
            )
            start = time.perf_counter()
            cold = asyncio.run(pull(settings, out=root / "snap"))
            cold_s = time.perf_counter() - start
            start = time.perf_counter()
            warm = asyncio.run(pull(settings))
            warm_s = time.perf_counter() - start
    finally:
        devnet.stop()

    accounts = int(cold.meta["accounts_discovered"])
    requests = int(cold.meta["pull"]["requests"])
    per_request = accounts / max(1, requests)
    name = f"pull {n:,} accounts" + (" (compound-v3)" if protocol == "compound-v3" else "")
    return [
        {
            "benchmark": name,
            "measure": "cold pull (logs scanned)",
            "value": cold_s,
            "unit": "s",
            "target": "< 30" if not quick else "",
            "ok": cold_s < 30.0 if not quick else None,
        },
        {
            "benchmark": name,
            "measure": "accounts pulled per second",
            "value": accounts / cold_s,
            "unit": "accounts/s",
            "target": "",
        },
        {
            "benchmark": name,
            "measure": "RPC requests",
            "value": float(requests),
            "unit": "requests",
            "target": "",
        },
        {
            "benchmark": name,
            "measure": "accounts per RPC request",
            "value": per_request,
            "unit": "accounts",
            "target": ">= 100" if not quick else "",
            "ok": per_request >= 100 if not quick else None,
        },
        {
            "benchmark": name,
            "measure": "contract calls in Multicall3 batches",
            "value": float(cold.meta["pull"]["multicall_calls"]),
            "unit": "calls",
            "target": "",
        },
        {
            "benchmark": name,
            "measure": "warm pull (cache covers the block)",
            "value": warm_s,
            "unit": "s",
            "target": "",
        },
        {
            "benchmark": name,
            "measure": "accounts with positions",
            "value": float(warm.n_accounts),
            "unit": "accounts",
            "target": "",
        },
    ]
