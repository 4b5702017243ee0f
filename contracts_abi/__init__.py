"""ABI JSON of every contract the adapters read, shipped as package data.

Each ``NAME.json`` holds the subset of a contract's *public* interface that Shortfall uses,
with the signatures of the real deployed contracts (Aave V3 from aave/aave-v3-core and
aave-dao/aave-v3-origin; Compound V3's Comet from compound-finance/comet; Multicall3;
Chainlink AggregatorV3; Uniswap V2 pair; the Uniswap V3 pool views of Uniswap/v3-core
``IUniswapV3PoolState`` and ``IUniswapV3PoolImmutables``), so the same code reads our devnet and a live market. ``contracts_abi/devnet/`` holds the devnet's own
contracts and is loaded as ``load_abi("devnet/NAME")``.
"""

from __future__ import annotations

import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["abi_names", "load_abi"]


def abi_names() -> list[str]:
    """Names of the top-level ABIs (``"Pool"``, ``"ERC20"``, ...), sorted."""
    root = resources.files(__name__)
    return sorted(p.name[: -len(".json")] for p in root.iterdir() if p.name.endswith(".json"))


@cache
def _load(name: str) -> str:
    target = resources.files(__name__)
    parts = f"{name}.json".split("/")
    for part in parts:
        target = target.joinpath(part)
    if not target.is_file():
        close = difflib.get_close_matches(name, abi_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"no ABI named {name!r} in contracts_abi (known: {abi_names()}){hint}")
    return target.read_text(encoding="utf-8")


def load_abi(name: str) -> list[dict[str, Any]]:
    """The ABI named ``name`` (file ``contracts_abi/<name>.json``), as a fresh list of dicts.

    Raises ``KeyError`` naming the known ABIs (and the closest match) for an unknown name.
    """
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise KeyError(f"bad ABI name {name!r}; expected one of {abi_names()}")
    abi = json.loads(_load(name))
    if not isinstance(abi, list):
        raise ValueError(f"contracts_abi/{name}.json is not an ABI list")
    return abi
