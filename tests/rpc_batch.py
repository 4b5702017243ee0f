"""One JSON-RPC batch request, for the tests' independent readers (plain HTTP, no web3)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any


def batch(url: str, calls: list[tuple[str, list[Any]]]) -> list[Any]:
    """One JSON-RPC batch request; the results in order."""
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        answers = sorted(json.loads(resp.read()), key=lambda a: a["id"])
    assert all("error" not in a for a in answers), answers[:1]
    return [a["result"] for a in answers]
