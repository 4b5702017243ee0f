"""The protocol-adapter interface, its value types, and the name -> adapter registry.

An adapter reads one lending market through the protocol's public interface, every value
at a block the caller pins. The pull uses all of it once; the keeper reuses it block by
block (resolve once, ``discover_accounts`` / ``touched_accounts`` for the new blocks,
``read_prices`` every block, ``read_positions`` for the accounts that changed).

Balances and prices stay exact integers here; ``keeper.pull`` converts them to float64 at
one visible boundary when it builds the snapshot.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from keeper.adapters.multicall import MULTICALL3_ADDRESS
from keeper.chain import BlockRef, Chain
from keeper.discovery import DiscoveryCache
from keeper.errors import AdapterNotFound

__all__ = [
    "AdapterConfig",
    "DexLiquidity",
    "DexSource",
    "MarketAddresses",
    "Position",
    "Prices",
    "ProtocolAdapter",
    "Reserve",
    "adapter_names",
    "get_adapter",
    "register_adapter",
]

#: Progress callback: called with how much work just finished.
OnProgress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class DexSource:
    """Where an asset's DEX liquidity is read: a constant-product pool and its fee."""

    pair: str
    """Pool address (Uniswap V2 pair interface: getReserves, token0, token1)."""
    fee: float = 0.003
    """Swap fee, fraction."""
    kind: str = "uniswap-v2"


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """Where a market is and how to read it."""

    provider: str
    """The market's root address (Aave V3: the PoolAddressesProvider)."""
    multicall3: str = MULTICALL3_ADDRESS
    """Multicall3 contract used for batching."""
    expected_chain_id: int | None = None
    """Fail with ``WrongChain`` when the RPC serves another chain."""
    dex_sources: Mapping[str, DexSource] = field(default_factory=dict)
    """Asset address (any case) -> DEX pool to read its liquidity from."""
    cache: DiscoveryCache | None = None
    """Discovery cache; ``None`` rescans the logs on every pull."""
    start_block: int | None = None
    """First block to scan for accounts; ``None`` finds the pool's deployment block."""
    all_reserves: bool = False
    """Read every (account, reserve) pair, not only those the account's bitmap flags
    (catches supplies that are not used as collateral; costs more calls)."""
    batch_size: int = 1000
    """Calls per Multicall3 ``aggregate3``."""
    log_concurrency: int = 4
    """``eth_getLogs`` ranges in flight at once."""
    initial_log_range: int = 5_000
    """First ``eth_getLogs`` block range; adapts to the node afterwards."""


@dataclass(frozen=True, slots=True)
class MarketAddresses:
    """The contracts of one market, resolved from its root address."""

    provider: str
    pool: str
    oracle: str
    data_provider: str
    multicall3: str

    def as_dict(self) -> dict[str, str]:
        return {
            "pool_addresses_provider": self.provider,
            "pool": self.pool,
            "oracle": self.oracle,
            "data_provider": self.data_provider,
            "multicall3": self.multicall3,
        }


@dataclass(frozen=True, slots=True)
class Reserve:
    """One reserve (listed asset) of a market and its risk parameters.

    Percentages are basis points as the protocol stores them (1e4 = 100%); the ``*_fraction``
    properties convert them for the snapshot.
    """

    asset: str
    """Checksummed token address."""
    symbol: str
    decimals: int
    reserve_id: int
    """Index of the reserve in the user-configuration bitmap."""
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    """Liquidator receives this share of the repaid debt's value: 10500 = 5% premium."""
    reserve_factor_bps: int
    protocol_fee_bps: int
    """Share of the liquidation premium paid to the treasury."""
    active: bool
    frozen: bool
    paused: bool
    borrowing_enabled: bool
    emode_category: int
    a_token: str = ""
    variable_debt_token: str = ""
    stable_debt_token: str = ""

    @property
    def ltv(self) -> float:
        return self.ltv_bps / 1e4

    @property
    def liquidation_threshold(self) -> float:
        return self.liquidation_threshold_bps / 1e4

    @property
    def liquidation_bonus(self) -> float:
        """Premium as a fraction (10500 bps -> 0.05); 0 for a reserve with no bonus set."""
        return max(0.0, (self.liquidation_bonus_bps - 10_000) / 1e4)

    @property
    def protocol_fee(self) -> float:
        return self.protocol_fee_bps / 1e4

    @property
    def usage_as_collateral_enabled(self) -> bool:
        return self.liquidation_threshold_bps > 0


@dataclass(frozen=True, slots=True)
class Prices:
    """Oracle prices at one block, in the oracle's base currency units."""

    raw: Mapping[str, int]
    """Checksummed asset -> price in base units (USD with 8 decimals on Aave V3)."""
    base_unit: int
    """Base units per USD (``BASE_CURRENCY_UNIT``, 1e8)."""

    def usd(self, asset: str) -> float:
        return self.raw[asset] / self.base_unit


@dataclass(frozen=True, slots=True)
class Position:
    """One account's balances in one reserve, exact token base units."""

    account: str
    """Checksummed account address."""
    asset: str
    """Checksummed token address."""
    collateral: int
    """Supplied balance (aToken balance), token base units."""
    debt: int
    """Borrowed balance (variable plus stable debt), token base units."""
    collateral_enabled: bool
    """The account uses this supply as collateral."""


@dataclass(frozen=True, slots=True)
class AccountPositions:
    """What ``read_positions`` found."""

    positions: list[Position]
    """Every non-zero (account, reserve) balance."""
    emode: Mapping[str, int]
    """Checksummed account -> e-mode category, for accounts with a non-zero one."""
    accounts_read: int
    """Accounts asked about (including those with nothing left)."""


@dataclass(frozen=True, slots=True)
class DexLiquidity:
    """A constant-product pool's reserves at one block, token base units."""

    asset: str
    pair: str
    quote_asset: str
    reserve_asset: int
    reserve_quote: int
    asset_decimals: int
    quote_decimals: int
    fee: float


class ProtocolAdapter(ABC):
    """Reads one lending market, every value pinned to a caller-chosen block.

    Construct with a ``Chain`` and an ``AdapterConfig``; call ``resolve`` first.
    """

    name: ClassVar[str]
    """Registry name (``"aave-v3"``)."""
    hf_rounding: ClassVar[str] = ""
    """Which health-factor rounding the snapshot matches (recorded in meta.json)."""

    def __init__(self, chain: Chain, config: AdapterConfig) -> None:
        self.chain = chain
        self.config = config
        self.last_scan: tuple[int, int] | None = None
        """Blocks the last ``discover_accounts`` scanned; ``None`` when the cache sufficed."""

    @property
    @abstractmethod
    def addresses(self) -> MarketAddresses:
        """The resolved contracts (after ``resolve``)."""

    @abstractmethod
    async def resolve(self, block: BlockRef) -> MarketAddresses:
        """Check the chain id and resolve and check the market's contracts at ``block``."""

    @abstractmethod
    async def discover_accounts(
        self, block: BlockRef, on_progress: OnProgress | None = None
    ) -> list[str]:
        """Every account that ever opened a position up to ``block`` (lower-case, sorted);
        scans only blocks the discovery cache has not seen."""

    @abstractmethod
    async def scan_new_accounts(self, from_block: int, to_block: int) -> dict[str, int]:
        """Accounts that opened a position in ``[from_block, to_block]`` -> first block."""

    @abstractmethod
    async def touched_accounts(self, from_block: int, to_block: int) -> set[str]:
        """Accounts whose position any event changed in ``[from_block, to_block]``."""

    @abstractmethod
    async def read_reserves(self, block: int) -> list[Reserve]:
        """Every reserve and its parameters at ``block``."""

    @abstractmethod
    async def read_prices(self, assets: Sequence[str], block: int) -> Prices:
        """Oracle prices of ``assets`` at ``block``."""

    @abstractmethod
    async def read_positions(
        self,
        accounts: Sequence[str],
        reserves: Sequence[Reserve],
        block: int,
        on_progress: OnProgress | None = None,
    ) -> AccountPositions:
        """Balances of ``accounts`` at ``block``; ``on_progress(n)`` per n accounts done."""

    @abstractmethod
    async def read_dex_liquidity(
        self, reserves: Sequence[Reserve], block: int
    ) -> dict[str, DexLiquidity]:
        """DEX pool reserves for the assets that have a configured source (by asset)."""


_REGISTRY: dict[str, type[ProtocolAdapter]] = {}


def register_adapter(cls: type[ProtocolAdapter]) -> type[ProtocolAdapter]:
    """Class decorator: make ``cls`` available under ``cls.name``."""
    _REGISTRY[cls.name] = cls
    return cls


def adapter_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def get_adapter(name: str) -> type[ProtocolAdapter]:
    """The adapter class registered as ``name``; ``AdapterNotFound`` with suggestions."""
    _load_builtin()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise AdapterNotFound(
            f"unknown protocol {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})"
        ) from None


def _load_builtin() -> None:
    import keeper.adapters.aave_v3  # noqa: F401  (registers itself)
