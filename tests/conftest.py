"""Shared pytest fixtures: a real anvil node and the seeded devnet market.

Fixture names (stable; other test modules rely on them):

``anvil`` (session)
    A :class:`keeper.devnet.anvil.Anvil` running on a free 127.0.0.1 port (``.rpc_url``,
    ``.port``); polled until it answers, stopped with SIGTERM (then SIGKILL) at the end.
``devnet`` (session)
    The devnet market deployed on ``anvil`` and seeded with ``DEVNET_ACCOUNTS`` (300)
    accounts, seed ``DEVNET_SEED`` (7). A :class:`DevnetHandle` with ``.deployment`` (the
    deployment.json dict: rpc_url, chain_id, pool_addresses_provider, pool, oracle,
    data_provider, multicall3, reserves{SYMBOL: {token, feed, dex_pair, ...}}, ...),
    ``.deployment_path`` (that dict written as a deployment.json file), ``.rpc_url``,
    ``.rpc`` (keeper.devnet.chain.Rpc), ``.w3`` (a sync ``web3.Web3``), ``.book`` (the
    seeded accounts and their positions), ``.accounts`` (seeded addresses), ``.admin``
    (anvil's unlocked deployer) and ``.contract(name, address)``. Read-only use is safe;
    tests that change chain state must use ``devnet_isolated``.
``devnet_isolated`` (function)
    The same handle, wrapped in ``evm_snapshot`` / ``evm_revert``: whatever the test does to
    the chain (prices, liquidations, mined blocks) is undone afterwards.
``set_price`` (function, isolated)
    ``set_price(symbol, price_usd) -> block_number``: sets the reserve's feed and mines a block.
``mine`` (function, isolated)
    ``mine(n=1) -> block_number``: mines ``n`` empty blocks.
``comet_devnet`` (session)
    Our Compound-V3-compatible Comet market (``keeper.devnet.comet``) on its own anvil node,
    seeded with ``COMET_ACCOUNTS`` (300) accounts, seed ``DEVNET_SEED``: a ``DevnetHandle``
    whose ``.deployment`` is the compound-v3 deployment.json (``comet``, ``reserves``, ...) and
    whose ``.book`` is a ``keeper.devnet.comet.CometBook``. Tests that change chain state use
    ``comet_isolated`` (evm_snapshot / evm_revert).
``_discovery_cache_in_tmp`` (session, autouse)
    Points ``SHORTFALL_CACHE_DIR`` at a temporary directory, so a pull or keeper run without
    ``--cache`` never writes the user's ``~/.cache/shortfall/discovery.sqlite``.

Integration tests are marked ``@pytest.mark.integration``.

The repository tests on its own: an audit hook installed here refuses any ``open`` of a
path beside the checkout (``<checkout>/../anything``), so a test that reads a sibling
directory (a data folder next to the clone, say) fails at once instead of passing only on a developer's machine.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from price_data import REPO

from keeper.devnet.anvil import Anvil
from keeper.devnet.chain import Contract, Rpc
from keeper.devnet.deploy import set_price as _set_price
from keeper.devnet.launch import setup_market

DEVNET_ACCOUNTS = 300
DEVNET_SEED = 7
COMET_ACCOUNTS = 300


@dataclass
class DevnetHandle:
    """What the ``devnet`` fixtures hand to tests."""

    deployment: dict[str, Any] = field(repr=False)
    deployment_path: Path
    rpc: Rpc = field(repr=False)
    book: Any = field(repr=False)
    """The seeded book: a ``keeper.devnet.seed.Book`` (Aave) or ``CometBook`` (Compound V3)."""
    _w3: Any = field(default=None, repr=False)

    @property
    def rpc_url(self) -> str:
        return str(self.deployment["rpc_url"])

    @property
    def admin(self) -> str:
        return str(self.deployment["deployer"])

    @property
    def accounts(self) -> list[str]:
        return [a.address for a in self.book.accounts]

    @property
    def w3(self) -> Any:
        """A synchronous ``web3.Web3`` on the devnet (created on first use)."""
        if self._w3 is None:
            from web3 import Web3

            self._w3 = Web3(Web3.HTTPProvider(self.rpc_url))
        return self._w3

    def contract(self, name: str, address: str) -> Contract:
        """A handle on a devnet contract by artifact name, e.g. ``contract("Pool", addr)``."""
        return Contract(self.rpc, address, name)


_OUTSIDE = str(REPO.parent) + os.sep
_INSIDE = str(REPO) + os.sep
#: When the checkout itself lies in the temporary directory (a clone in /tmp), what the tests
#: and the code under test create there is beside it too: pytest's tmp_path, tempfile's own
#: names, anvil's logs, Dask's scratch space. Those names stay allowed; any other sibling
#: (``/tmp/data`` say) is still refused.
_TEMP = os.path.normpath(tempfile.gettempdir()) + os.sep
_TEMP_NAMES = ("pytest-of-", "tmp", "anvil-", "dask-")


def _refuse_reads_beside_the_checkout(event: str, args: tuple[Any, ...]) -> None:
    """Audit hook: an ``open`` of ``<checkout>/../X`` (X not the checkout) is an error."""
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.fsdecode(args[0])
    if not os.path.isabs(path):
        path = os.path.join(os.getcwd(), path)
    path = os.path.normpath(path)
    if path.startswith(_TEMP) and path[len(_TEMP) :].startswith(_TEMP_NAMES):
        return
    if path.startswith(_OUTSIDE) and not (path + os.sep).startswith(_INSIDE):
        raise PermissionError(
            f"{path}: a test opened a file beside the checkout; the repository must test on "
            f"its own (ship the data inside {REPO}, e.g. data/prices)"
        )


sys.addaudithook(_refuse_reads_beside_the_checkout)


@pytest.fixture(scope="session", autouse=True)
def _discovery_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    previous = os.environ.get("SHORTFALL_CACHE_DIR")
    os.environ["SHORTFALL_CACHE_DIR"] = str(tmp_path_factory.mktemp("shortfall-cache"))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("SHORTFALL_CACHE_DIR", None)
        else:
            os.environ["SHORTFALL_CACHE_DIR"] = previous


@pytest.fixture(scope="session")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Anvil]:
    node = Anvil(log_path=tmp_path_factory.mktemp("anvil") / "anvil.log")
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def devnet(anvil: Anvil, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetHandle]:
    rpc = Rpc(anvil.rpc_url)
    deployment, book = setup_market(rpc, DEVNET_ACCOUNTS, DEVNET_SEED)
    path = tmp_path_factory.mktemp("devnet") / "deployment.json"
    path.write_text(json.dumps(deployment, indent=2))
    handle = DevnetHandle(deployment=deployment, deployment_path=path, rpc=rpc, book=book)
    try:
        yield handle
    finally:
        rpc.close()


@pytest.fixture(scope="session")
def comet_devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevnetHandle]:
    node = Anvil(log_path=tmp_path_factory.mktemp("anvil-comet") / "anvil.log")
    node.start()
    rpc = Rpc(node.rpc_url)
    try:
        deployment, book = setup_market(rpc, COMET_ACCOUNTS, DEVNET_SEED, protocol="compound-v3")
        path = tmp_path_factory.mktemp("comet") / "deployment.json"
        path.write_text(json.dumps(deployment, indent=2))
        yield DevnetHandle(deployment=deployment, deployment_path=path, rpc=rpc, book=book)
    finally:
        rpc.close()
        node.stop()


@pytest.fixture
def comet_isolated(comet_devnet: DevnetHandle) -> Iterator[DevnetHandle]:
    snapshot = comet_devnet.rpc.snapshot()
    try:
        yield comet_devnet
    finally:
        if not comet_devnet.rpc.revert(snapshot):
            raise RuntimeError(f"evm_revert({snapshot}) failed on the Comet devnet")


@pytest.fixture
def devnet_isolated(devnet: DevnetHandle) -> Iterator[DevnetHandle]:
    snapshot = devnet.rpc.snapshot()
    try:
        yield devnet
    finally:
        if not devnet.rpc.revert(snapshot):
            raise RuntimeError(
                f"evm_revert({snapshot}) failed: later tests would see this test's state"
            )


@pytest.fixture
def set_price(devnet_isolated: DevnetHandle) -> Callable[[str, float], int]:
    def _set(symbol: str, price_usd: float) -> int:
        return _set_price(devnet_isolated.deployment, symbol, price_usd, rpc=devnet_isolated.rpc)

    return _set


@pytest.fixture
def mine(devnet_isolated: DevnetHandle) -> Callable[..., int]:
    def _mine(n: int = 1) -> int:
        devnet_isolated.rpc.mine(n)
        return devnet_isolated.rpc.block_number()

    return _mine
