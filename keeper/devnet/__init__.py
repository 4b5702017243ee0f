"""The Shortfall devnet: our own Aave-V3-compatible market on a local anvil node.

- ``contracts/*.sol``: the Solidity sources (Pool, AaveOracle, PoolAddressesProvider,
  AaveProtocolDataProvider, ERC20s, a settable Chainlink-style feed, Multicall3, a
  Uniswap-V2-style pair); ``artifacts/*.json``: their compiled ABI and bytecode, committed,
  rebuilt by ``python -m keeper.devnet.build``.
- :mod:`keeper.devnet.anvil` starts and stops the node, :mod:`keeper.devnet.deploy` deploys
  the market, :mod:`keeper.devnet.seed` fills it with a deterministic book of accounts.
"""

from __future__ import annotations

from simulator.errors import ShortfallError

__all__ = ["DevnetError"]


class DevnetError(ShortfallError, RuntimeError):
    """The devnet cannot start, deploy, seed or be reached (names what to fix)."""
