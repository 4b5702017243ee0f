"""Devnet benchmark: seeding the market with 20,000 accounts (quick: 2,000) on anvil.

Measures the time to plan the book and write it through ``seedPositions`` (the figure the
README quotes; target under 2 minutes on a 2-core machine), and the whole bring-up (start
anvil, deploy, seed), as ``shortfall devnet`` does it.
"""

from __future__ import annotations

import time
from typing import Any

from keeper.devnet.anvil import Anvil
from keeper.devnet.chain import Rpc
from keeper.devnet.deploy import deploy_market
from keeper.devnet.seed import plan_book, seed_book

TARGET_SECONDS = 120.0


def run(quick: bool) -> list[dict[str, Any]]:
    accounts = 2_000 if quick else 20_000
    started = time.perf_counter()
    with Anvil() as node:
        rpc = Rpc(node.rpc_url)
        deployment = deploy_market(rpc)
        seeding_started = time.perf_counter()
        book = plan_book(accounts, seed=7)
        planned = time.perf_counter()
        facts = seed_book(rpc, deployment, book)
        seeded = time.perf_counter()
        rpc.close()
    total = seeded - started
    seeding = seeded - seeding_started
    name = f"devnet seed {accounts:,} accounts"
    return [
        {
            "benchmark": name,
            "measure": "plan + seed",
            "value": seeding,
            "unit": "s",
            "target": f"< {TARGET_SECONDS:.0f} s",
            "ok": seeding < TARGET_SECONDS,
        },
        {
            "benchmark": name,
            "measure": "plan (Python)",
            "value": planned - seeding_started,
            "unit": "s",
            "target": "",
            "ok": None,
        },
        {
            "benchmark": name,
            "measure": "start + deploy + seed",
            "value": total,
            "unit": "s",
            "target": f"< {TARGET_SECONDS:.0f} s",
            "ok": total < TARGET_SECONDS,
        },
        {
            "benchmark": name,
            "measure": "positions written",
            "value": float(facts["positions"]),
            "unit": "positions",
            "target": "",
            "ok": None,
        },
    ]
