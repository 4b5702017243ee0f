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
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from keeper.adapters.multicall import MULTICALL3_ADDRESS
from keeper.chain import BlockRef, Chain
from keeper.discovery import CacheState, DiscoveryCache
from keeper.errors import AdapterNotFound, ChainError, ConfigError, StateUnavailable

__all__ = [
    "DEX_KINDS",
    "AdapterConfig",
    "Checkpoint",
    "DexLiquidity",
    "DexSource",
    "EModeCategory",
    "MarketAddresses",
    "MarketVersion",
    "Position",
    "Prices",
    "ProtocolAdapter",
    "Reserve",
    "RoundingModel",
    "adapter_names",
    "get_adapter",
    "register_adapter",
]

#: Progress callback: called with how much work just finished.
OnProgress = Callable[[int], None]

#: Discovery checkpoint: awaited with the accounts found so far and the block scanned to.
Checkpoint = Callable[[dict[str, int], int], Awaitable[None]]

log = logging.getLogger(__name__)

RAY = 10**27

#: DEX map kinds: a Uniswap V2 pair, a Uniswap V3 pool, a user depth curve.
DEX_KINDS: tuple[str, ...] = ("uniswap-v2", "uniswap-v3", "depth-curve")


@dataclass(frozen=True, slots=True)
class DexSource:
    """Where an asset's liquidity is: a pool read at the pull block, or a given depth curve."""

    pair: str
    """Pool address (uniswap-v2: getReserves, token0, token1; uniswap-v3: the V3 pool's
    views); ``""`` for a depth curve."""
    fee: float = 0.003
    """Swap fee, fraction (uniswap-v3: read from the pool instead)."""
    kind: str = "uniswap-v2"
    """``"uniswap-v2"``, ``"uniswap-v3"`` or ``"depth-curve"`` (``DEX_KINDS``)."""
    points: tuple[tuple[float, float], ...] = ()
    """depth-curve: ``(size_usd, average impact)`` points (``simulator.venues.curve_rows``)."""


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
    borrowable_in_isolation: bool = False
    siloed_borrowing: bool = False
    debt_ceiling: int = 0
    """Isolation-mode debt ceiling in hundredths of USD (``DEBT_CEILING_DECIMALS`` = 2); 0: the
    asset is not isolated."""
    isolation_mode_total_debt: int = 0
    """Debt borrowed against this isolated collateral, hundredths of USD."""
    supply_cap: int = 0
    """Whole tokens; 0: no cap."""
    borrow_cap: int = 0
    """Whole tokens; 0: no cap."""
    liquidity_rate_ray: int = 0
    variable_borrow_rate_ray: int = 0
    stable_borrow_rate_ray: int = 0
    liquidity_index_ray: int = RAY
    """``getReserveNormalizedIncome`` at the block read."""
    variable_borrow_index_ray: int = RAY
    """``getReserveNormalizedVariableDebt`` at the block read."""

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
    scaled_collateral: int | None = None
    """aToken ``scaledBalanceOf`` (``None``: the balance was read unscaled)."""
    scaled_debt: int | None = None
    """Variable debt token ``scaledBalanceOf`` (``None``: read unscaled)."""
    stable_debt: int = 0
    """Stable debt (v3.0/v3.1; part of ``debt``), token base units."""
    borrowing: bool = False
    """The account's configuration flags this reserve as borrowed."""


@dataclass(frozen=True, slots=True)
class AccountPositions:
    """What ``read_positions`` found."""

    positions: list[Position]
    """Every non-zero (account, reserve) balance."""
    emode: Mapping[str, int]
    """Checksummed account -> e-mode category, for accounts with a non-zero one."""
    accounts_read: int
    """Accounts asked about (including those with nothing left)."""
    indexes: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    """Asset -> (normalised income, normalised variable debt), rays, at the block read."""


@dataclass(frozen=True, slots=True)
class MarketVersion:
    """Which Aave release a Pool runs, as far as its own interface tells."""

    pool_revision: int | None
    """``POOL_REVISION()``; ``None`` when the Pool does not answer it."""
    emode_family: str
    """``"none"``, ``"per-reserve"`` (v3.0/v3.1 ``getEModeCategoryData`` and a category per
    reserve) or ``"liquid"`` (v3.2+ bitmaps and ``getEModeCategoryCollateralConfig``)."""
    has_ltvzero_bitmap: bool = False
    """The Pool answers ``getEModeCategoryLtvzeroBitmap`` (v3.6+)."""


@dataclass(frozen=True, slots=True)
class EModeCategory:
    """One e-mode category at the block read; percentages in basis points."""

    category: int
    label: str
    ltv_bps: int
    liquidation_threshold_bps: int
    liquidation_bonus_bps: int
    collateral: frozenset[str]
    """Assets whose collateral gets the category's parameters."""
    borrowable: frozenset[str]
    """Assets the category's accounts may borrow."""
    ltv_zero: frozenset[str] = frozenset()
    """Collateral with LTV 0 in the category."""
    price_source: str = ""
    """v3.0 category price source ('' if none)."""
    price_raw: int = 0
    """The oracle's price of ``price_source`` in base units (0 if none)."""
    isolated: bool = False


@dataclass(frozen=True, slots=True)
class RoundingModel:
    """How one family of Aave Pool releases turns scaled balances into a health factor.

    - ``hf_rounding``: ``"average-lt-bps"`` (aave-v3-core v3.0.x: ``percentMul`` of the
      collateral by the average LT floored to whole bps, then ``wadDiv`` by the debt) or
      ``"weighted-sum"`` (``wadDiv(sum(value x LT), debt) / 1e4``, aave-v3-origin);
    - ``balances``: ``"half-up"`` (``rayMul`` of the scaled balance by the normalised index,
      before v3.5) or ``"floor-ceil"`` (v3.5+ ``TokenMath``: aToken floor, debt ceil);
    - ``debt_value_rounding``: each debt's base-currency value ``"floor"`` (before v3.5) or
      ``"ceil"`` (v3.5+ ``MathUtils.mulDivCeil``); collateral values are always floored.
    """

    name: str
    hf_rounding: str
    balances: str
    debt_value_rounding: str

    def collateral(self, scaled: int, income_index: int) -> int:
        """The supplied balance the Pool counts for ``scaled`` at ``income_index`` (rays)."""
        product = scaled * income_index
        if self.balances == "floor-ceil":
            return product // RAY
        return (product + RAY // 2) // RAY

    def debt(self, scaled: int, debt_index: int) -> int:
        """The variable debt the Pool counts for ``scaled`` at ``debt_index`` (rays)."""
        product = scaled * debt_index
        if self.balances == "floor-ceil":
            return -(-product // RAY)
        return (product + RAY // 2) // RAY


@dataclass(frozen=True, slots=True)
class DexLiquidity:
    """An asset's venue at one block: a constant-product pool's reserves (token base
    units), or for a V3 pool its virtual reserves at the price plus its segments, or a
    depth curve's points (``kind``, ``points``: ``simulator.venues`` layout of the
    snapshot's venues.parquet)."""

    asset: str
    pair: str
    quote_asset: str
    reserve_asset: int
    reserve_quote: int
    asset_decimals: int
    quote_decimals: int
    fee: float
    kind: str = "uniswap-v2"
    points: tuple[tuple[float, float], ...] = ()


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

    market_contract: ClassVar[str] = "market"
    """What the contract at ``addresses.pool`` is called in messages (``Pool``, ``Comet``)."""

    @abstractmethod
    async def scan_discovery(
        self,
        from_block: int,
        to_block: int,
        on_progress: OnProgress | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> dict[str, int]:
        """The discovery scan: accounts the market's events name in ``[from_block,
        to_block]`` -> first block (``keeper.discovery.scan_accounts`` with the adapter's
        events)."""

    async def deployment_block(self, head: int) -> int:
        """First block at which ``addresses.pool`` holds code (binary search on
        ``eth_getCode``)."""
        contract = self.addresses.pool
        lo, hi = 0, head
        try:
            while lo < hi:
                mid = (lo + hi) // 2
                if await self.chain.code(contract, mid):
                    hi = mid
                else:
                    lo = mid + 1
        except StateUnavailable:
            raise ConfigError(
                f"cannot find the block the {self.market_contract} {contract} was deployed "
                "in: the node has no historical state; pass --from-block (the block the "
                "market was deployed in)"
            ) from None
        return lo

    async def discover_accounts(
        self, block: BlockRef, on_progress: OnProgress | None = None
    ) -> list[str]:
        """Every account that ever opened a position up to ``block`` (lower-case, sorted);
        scans only blocks the discovery cache has not seen, and rescans from the start when
        the cache no longer matches the chain (a reset or reorganised node)."""
        chain_id = await self.chain.chain_id()
        contract = self.addresses.pool
        cache = self.config.cache
        state = cache.state(chain_id, contract) if cache is not None else None
        if state is not None and not await self._cache_matches_chain(state, block):
            log.warning(
                "discovery cache for %s %s on chain %d no longer matches the chain "
                "(reset or reorganised); rescanning",
                self.market_contract,
                contract,
                chain_id,
            )
            assert cache is not None
            cache.forget(chain_id, contract)
            state = None
        self.last_scan = None
        if state is not None and state.scanned_to >= block.number:
            assert cache is not None
            log.info("discovery: cache covers block %d; no scan", block.number)
            return cache.accounts(chain_id, contract, up_to_block=block.number)
        if state is not None:
            start, first = state.start_block, state.scanned_to + 1
            start_hash = state.start_hash
        else:
            start = self.config.start_block
            if start is not None and start > block.number:
                raise ConfigError(
                    f"--from-block {start} is after block {block.number}, the block being "
                    "read: pass a --from-block at or below it (the block the market was "
                    "deployed in)"
                )
            if start is None:
                start = await self.deployment_block(block.number)
            first = start
            start_hash = (await self.chain.block(start)).hash
        log.info("discovery: scanning blocks [%d, %d]", first, block.number)

        async def checkpoint(found: dict[str, int], upto: int) -> None:
            assert cache is not None
            upto_hash = (await self.chain.block(upto)).hash
            cache.record(
                chain_id,
                contract,
                found,
                start_block=start,
                start_hash=start_hash,
                scanned_to=upto,
                scanned_hash=upto_hash,
            )
            log.info("discovery: %d accounts up to block %d saved", len(found), upto)

        found = await self.scan_discovery(
            first, block.number, on_progress, checkpoint if cache is not None else None
        )
        self.last_scan = (first, block.number)
        if cache is None:
            return sorted(found)
        cache.record(
            chain_id,
            contract,
            found,
            start_block=start,
            start_hash=start_hash,
            scanned_to=block.number,
            scanned_hash=block.hash,
        )
        return cache.accounts(chain_id, contract, up_to_block=block.number)

    async def _cache_matches_chain(self, state: CacheState, block: BlockRef) -> bool:
        """The cached scan still describes this chain: same block at its start and, when the
        pinned block is past its end, the same block at its end (no reset, no reorg)."""
        if self.config.start_block is not None and self.config.start_block < state.start_block:
            return False
        if state.start_block > block.number:
            return False
        try:
            if (await self.chain.block(state.start_block)).hash != state.start_hash:
                return False
            if state.scanned_to <= block.number:
                return (await self.chain.block(state.scanned_to)).hash == state.scanned_hash
        except ChainError:
            return False
        return True

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
    async def read_version(self, block: int) -> MarketVersion:
        """Which release the market runs (revision, e-mode family), from the contracts."""

    @abstractmethod
    async def read_emode(
        self, used: Sequence[int], reserves: Sequence[Reserve], block: int
    ) -> list[EModeCategory]:
        """The e-mode categories at ``block``: every configured one and every id in
        ``used`` (an account's category)."""

    @abstractmethod
    async def read_account_data(
        self, accounts: Sequence[str], block: int
    ) -> dict[str, tuple[int, int, int, int, int, int]]:
        """The protocol's own view of each account at ``block`` (Aave: getUserAccountData),
        to verify a snapshot against."""

    @abstractmethod
    def rounding_candidates(self) -> list[RoundingModel]:
        """The rounding models the market may use, most likely first (after
        ``read_version``)."""

    @staticmethod
    @abstractmethod
    def with_rounding(found: AccountPositions, model: RoundingModel) -> AccountPositions:
        """``found`` with balances recomputed under ``model``."""

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
    # each module registers its adapter when imported
    import keeper.adapters.aave_v3
    import keeper.adapters.compound_v3  # noqa: F401
