"""One call from nothing to a seeded devnet: start anvil, deploy, seed, describe.

Used by ``shortfall devnet``, the test fixtures, the benchmark and the demo.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from keeper.devnet import DevnetError
from keeper.devnet.anvil import Anvil
from keeper.devnet.chain import Rpc
from keeper.devnet.comet import CometBook
from keeper.devnet.deploy import deploy_market
from keeper.devnet.seed import Book, plan_book, seed_book

__all__ = ["Devnet", "launch", "setup_market"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Devnet:
    """A running, seeded devnet. ``stop()`` stops the node (if this object started it)."""

    anvil: Anvil | None
    rpc: Rpc
    #: The deployment.json content (SPEC.md's fields plus seeding facts).
    deployment: dict[str, Any]
    #: The seeded book of accounts (addresses and positions, token units): a ``Book``, or a
    #: ``CometBook`` for a Compound V3 devnet.
    book: Book | CometBook

    @property
    def rpc_url(self) -> str:
        return self.rpc.url

    def stop(self) -> None:
        self.rpc.close()
        if self.anvil is not None:
            self.anvil.stop()


def setup_market(
    rpc: Rpc, accounts: int = 2000, seed: int = 7, protocol: str = "aave-v3"
) -> tuple[dict[str, Any], Any]:
    """Deploy and seed on a node that is already running; returns (deployment, book).

    ``protocol`` is ``"aave-v3"`` (the Pool and its book, ``keeper.devnet.seed.Book``) or
    ``"compound-v3"`` (a Comet market and its ``keeper.devnet.comet.CometBook``).
    """
    if protocol == "compound-v3":
        from keeper.devnet.comet import setup_comet_market

        return setup_comet_market(rpc, accounts, seed)
    if protocol != "aave-v3":
        raise DevnetError(f"unknown devnet protocol {protocol!r}; expected aave-v3 or compound-v3")
    started = time.perf_counter()
    deployment = deploy_market(rpc)
    deployed = time.perf_counter()
    book = plan_book(accounts, seed)
    facts = seed_book(rpc, deployment, book)
    # the figure users see covers planning the book and writing it on chain
    facts["seed_seconds"] = round(time.perf_counter() - deployed, 3)
    deployment.update(seed=seed, **facts)
    log.info(
        "devnet ready: deployed in %.1f s, %d accounts seeded in %.1f s",
        deployed - started,
        accounts,
        time.perf_counter() - deployed,
    )
    return deployment, book


def launch(
    accounts: int = 2000,
    seed: int = 7,
    port: int | None = None,
    anvil: Anvil | None = None,
    protocol: str = "aave-v3",
) -> Devnet:
    """Start anvil (unless ``anvil`` is given and running), deploy and seed ``protocol``'s
    market (``"aave-v3"`` or ``"compound-v3"``)."""
    node = anvil or Anvil(port=port)
    node.start()
    rpc = Rpc(node.rpc_url)
    try:
        deployment, book = setup_market(rpc, accounts, seed, protocol)
    except BaseException:
        rpc.close()
        if anvil is None:
            node.stop()
        raise
    return Devnet(anvil=node, rpc=rpc, deployment=deployment, book=book)
