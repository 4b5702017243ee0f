"""Aave V3 through its public interface only: works on our devnet and on a live market.

Addresses come from the PoolAddressesProvider (``getPool``, ``getPriceOracle``,
``getPoolDataProvider``). Reserves come from ``Pool.getReservesList`` and
``Pool.getReserveData`` (legacy 15-field tuple: the configuration bitmap, decoded per
``decode_reserve_configuration``, and the reserve id). Prices come from
``AaveOracle.getAssetsPrices`` in ``BASE_CURRENCY_UNIT`` (1e8 per USD). Positions: first
``Pool.getUserConfiguration`` and ``getUserEMode`` per account, then
``AaveProtocolDataProvider.getUserReserveData(asset, account)`` only for the reserves whose
bits are set (two bits per reserve id: 2i borrowing, 2i+1 collateral). Every call goes
through Multicall3 ``aggregate3`` and is pinned to one block number.

Accounts are discovered from the Pool's ``Supply`` and ``Borrow`` logs (``onBehalfOf``,
topic 2), which every account that ever held a position emitted. (An account that only ever
*received* aTokens by transfer emits neither; such positions are missed, as are supplies
not used as collateral unless ``AdapterConfig.all_reserves`` is set.)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from eth_utils import to_checksum_address

from keeper.adapters.abi import event_topic, function, words
from keeper.adapters.base import (
    AccountPositions,
    AdapterConfig,
    DexLiquidity,
    DexSource,
    MarketAddresses,
    OnProgress,
    Position,
    Prices,
    ProtocolAdapter,
    Reserve,
    register_adapter,
)
from keeper.adapters.multicall import Call, Multicall
from keeper.chain import BlockRef, Chain
from keeper.discovery import AdaptiveRange, CacheState, scan_accounts
from keeper.errors import (
    CallReverted,
    ChainError,
    ConfigError,
    ContractMissing,
    DecodeError,
    StateUnavailable,
)

__all__ = [
    "AaveV3Adapter",
    "ReserveConfiguration",
    "decode_reserve_configuration",
    "decode_user_configuration",
]

log = logging.getLogger(__name__)

_ZERO = "0x0000000000000000000000000000000000000000"

_GET_POOL = function("PoolAddressesProvider", "getPool")
_GET_ORACLE = function("PoolAddressesProvider", "getPriceOracle")
_GET_DATA_PROVIDER = function("PoolAddressesProvider", "getPoolDataProvider")
_ADDRESSES_PROVIDER = function("Pool", "ADDRESSES_PROVIDER")
_RESERVES_LIST = function("Pool", "getReservesList")
_RESERVE_DATA = function("Pool", "getReserveData")
_USER_CONFIG = function("Pool", "getUserConfiguration")
_USER_EMODE = function("Pool", "getUserEMode")
_ASSETS_PRICES = function("AaveOracle", "getAssetsPrices")
_ASSET_PRICE = function("AaveOracle", "getAssetPrice")
_BASE_UNIT = function("AaveOracle", "BASE_CURRENCY_UNIT")
_USER_RESERVE = function("AaveProtocolDataProvider", "getUserReserveData")
_SYMBOL = function("ERC20", "symbol")
_DECIMALS = function("ERC20", "decimals")
_PAIR_RESERVES = function("UniswapV2Pair", "getReserves")
_TOKEN0 = function("UniswapV2Pair", "token0")
_TOKEN1 = function("UniswapV2Pair", "token1")

#: topic0 -> index of the topic naming the account, for discovery (positions opened).
OPEN_EVENTS: dict[str, int] = {
    event_topic("Pool", "Supply"): 2,  # onBehalfOf
    event_topic("Pool", "Borrow"): 2,  # onBehalfOf
}
#: topic0 -> index of the topic naming the account, for every event that changes a position.
CHANGE_EVENTS: dict[str, int] = {
    **OPEN_EVENTS,
    event_topic("Pool", "Withdraw"): 2,  # user
    event_topic("Pool", "Repay"): 2,  # user
    event_topic("Pool", "LiquidationCall"): 3,  # user
    event_topic("Pool", "DeficitCreated"): 1,  # user
    event_topic("Pool", "ReserveUsedAsCollateralEnabled"): 2,  # user
    event_topic("Pool", "ReserveUsedAsCollateralDisabled"): 2,  # user
    event_topic("Pool", "UserEModeSet"): 1,  # user
}

#: How many light calls (a storage read or two) cost as much gas as one getUserReserveData.
_LIGHT_CALLS_PER_HEAVY = 3

_MAINNET_HINT = (
    "Aave V3 Ethereum's PoolAddressesProvider is 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
)


def _bits(word: int, lo: int, width: int) -> int:
    return (word >> lo) & ((1 << width) - 1)


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """A decoded ``ReserveConfigurationMap`` (bit layout in shared/reference/PROTOCOLS.md).

    Percentages in basis points; caps in whole tokens. Fields unused in later versions
    (stable borrowing, isolation, siloed, e-mode category, unbacked cap, debt ceiling in
    v3.7) decode as whatever the bits hold, normally zero.
    """

    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    decimals: int
    active: bool
    frozen: bool
    borrowing_enabled: bool
    stable_borrowing_enabled: bool
    paused: bool
    borrowable_in_isolation: bool
    siloed_borrowing: bool
    flash_loan_enabled: bool
    reserve_factor: int
    borrow_cap: int
    supply_cap: int
    liquidation_protocol_fee: int
    emode_category: int
    unbacked_mint_cap: int
    debt_ceiling: int
    virtual_accounting: bool


def decode_reserve_configuration(word: int) -> ReserveConfiguration:
    """Decode the 256-bit reserve configuration word."""
    if not 0 <= word < 1 << 256:
        raise ValueError(f"configuration word out of range: {word}")
    return ReserveConfiguration(
        ltv=_bits(word, 0, 16),
        liquidation_threshold=_bits(word, 16, 16),
        liquidation_bonus=_bits(word, 32, 16),
        decimals=_bits(word, 48, 8),
        active=bool(_bits(word, 56, 1)),
        frozen=bool(_bits(word, 57, 1)),
        borrowing_enabled=bool(_bits(word, 58, 1)),
        stable_borrowing_enabled=bool(_bits(word, 59, 1)),
        paused=bool(_bits(word, 60, 1)),
        borrowable_in_isolation=bool(_bits(word, 61, 1)),
        siloed_borrowing=bool(_bits(word, 62, 1)),
        flash_loan_enabled=bool(_bits(word, 63, 1)),
        reserve_factor=_bits(word, 64, 16),
        borrow_cap=_bits(word, 80, 36),
        supply_cap=_bits(word, 116, 36),
        liquidation_protocol_fee=_bits(word, 152, 16),
        emode_category=_bits(word, 168, 8),
        unbacked_mint_cap=_bits(word, 176, 36),
        debt_ceiling=_bits(word, 212, 40),
        virtual_accounting=bool(_bits(word, 252, 1)),
    )


def decode_user_configuration(word: int) -> tuple[list[int], list[int]]:
    """(reserve ids borrowed, reserve ids used as collateral) of a ``UserConfigurationMap``.

    Two bits per reserve id i: bit 2i is *borrowing*, bit 2i+1 *using as collateral* (the
    code's order; the struct comment in Aave's source says the opposite).
    """
    borrowing: list[int] = []
    collateral: list[int] = []
    i = 0
    while word:
        pair = word & 3
        if pair & 1:
            borrowing.append(i)
        if pair & 2:
            collateral.append(i)
        word >>= 2
        i += 1
    return borrowing, collateral


def _address(data: bytes, what: str) -> str:
    (value,) = words(data, 1, what=what)
    if value >> 160:
        raise DecodeError(f"{what}: answer is not an address")
    return to_checksum_address(value.to_bytes(20, "big"))


def _symbol(ok: bool, data: bytes, asset: str) -> str:
    """ERC20 symbol; tolerates ``bytes32`` symbols (MKR) and tokens without one."""
    if ok and len(data) >= 64:
        try:
            (text,) = _SYMBOL.decode(data)
            return str(text)
        except DecodeError:
            pass
    if ok and len(data) == 32:
        return data.rstrip(b"\x00").decode("utf-8", "replace")
    return asset[:10]


@register_adapter
class AaveV3Adapter(ProtocolAdapter):
    """Aave V3 (v3.0 to v3.7): a market named by its PoolAddressesProvider."""

    name = "aave-v3"
    hf_rounding = "v3.7"

    def __init__(self, chain: Chain, config: AdapterConfig) -> None:
        super().__init__(chain, config)
        self.multicall = Multicall(chain, config.multicall3, batch_size=config.batch_size)
        self._addresses: MarketAddresses | None = None
        self._base_unit: int | None = None
        self._ranges = AdaptiveRange(initial=config.initial_log_range)

    @property
    def addresses(self) -> MarketAddresses:
        if self._addresses is None:
            raise RuntimeError("call resolve() first")
        return self._addresses

    # -- resolve -----------------------------------------------------------------------

    async def resolve(self, block: BlockRef) -> MarketAddresses:
        chain = self.chain
        n = block.number
        chain_id = await chain.check_chain_id(self.config.expected_chain_id)
        provider = to_checksum_address(self.config.provider)
        await chain.require_code(
            provider,
            n,
            "PoolAddressesProvider",
            f"check --provider ({_MAINNET_HINT}; on the devnet it is in deployment.json)",
        )
        multicall = to_checksum_address(self.config.multicall3)
        await chain.require_code(
            multicall,
            n,
            "Multicall3",
            "this chain has no Multicall3 at that address (pass --multicall ADDR)",
        )
        calls = [Call(provider, f.encode()) for f in (_GET_POOL, _GET_ORACLE, _GET_DATA_PROVIDER)]
        results = await self.multicall.run(calls, n)
        resolved: list[str] = []
        for fn, (ok, data) in zip(
            (_GET_POOL, _GET_ORACLE, _GET_DATA_PROVIDER), results, strict=True
        ):
            what = f"{fn.name}() on {provider} at block {n}"
            if not ok or len(data) < 32:
                hint = await self._provider_of(provider, n)
                raise ContractMissing(
                    f"{provider} does not answer {fn.name}() on chain {chain_id} at block {n}: "
                    f"it is not an Aave V3 PoolAddressesProvider; "
                    + (hint or f"check --provider ({_MAINNET_HINT})")
                )
            address = _address(data, what)
            if address == _ZERO:
                raise ContractMissing(
                    f"{fn.name}() of PoolAddressesProvider {provider} is the zero address at "
                    f"block {n}: the market is not set up there (check --provider and --block)"
                )
            resolved.append(address)
        pool, oracle, data_provider = resolved
        for address, role in (
            (pool, "Pool"),
            (oracle, "AaveOracle"),
            (data_provider, "PoolDataProvider"),
        ):
            await chain.require_code(
                address, n, role, f"resolved from PoolAddressesProvider {provider}"
            )
        self._addresses = MarketAddresses(provider, pool, oracle, data_provider, multicall)
        log.info("aave-v3 market on chain %d: pool %s, oracle %s", chain_id, pool, oracle)
        return self._addresses

    async def _provider_of(self, address: str, block: int) -> str:
        """A hint when ``address`` is a Pool, oracle or data provider of a market (they answer
        ``ADDRESSES_PROVIDER()``): the provider to pass instead; "" otherwise."""
        try:
            ((ok, data),) = await self.multicall.run(
                [Call(address, _ADDRESSES_PROVIDER.encode())], block
            )
            if not ok or len(data) != 32 or int.from_bytes(data, "big") >> 160:
                return ""
            root = _address(data, "ADDRESSES_PROVIDER()")
            if root == _ZERO or not await self.chain.code(root, block):
                return ""
        except ChainError:
            return ""
        return (
            f"it looks like a contract of the market whose PoolAddressesProvider is {root}: "
            "pass that as --provider"
        )

    # -- discovery ---------------------------------------------------------------------

    async def scan_new_accounts(self, from_block: int, to_block: int) -> dict[str, int]:
        return await scan_accounts(
            self.chain,
            self.addresses.pool,
            OPEN_EVENTS,
            from_block,
            to_block,
            ranges=self._ranges,
            concurrency=self.config.log_concurrency,
        )

    async def touched_accounts(self, from_block: int, to_block: int) -> set[str]:
        found = await scan_accounts(
            self.chain,
            self.addresses.pool,
            CHANGE_EVENTS,
            from_block,
            to_block,
            ranges=self._ranges,
            concurrency=self.config.log_concurrency,
        )
        return set(found)

    async def deployment_block(self, head: int) -> int:
        """First block at which the Pool holds code (binary search on ``eth_getCode``)."""
        pool = self.addresses.pool
        lo, hi = 0, head
        try:
            while lo < hi:
                mid = (lo + hi) // 2
                if await self.chain.code(pool, mid):
                    hi = mid
                else:
                    lo = mid + 1
        except StateUnavailable:
            raise ConfigError(
                f"cannot find the block the Pool {pool} was deployed in: the node has no "
                "historical state; pass --from-block (the block the market was deployed in)"
            ) from None
        return lo

    async def discover_accounts(
        self, block: BlockRef, on_progress: OnProgress | None = None
    ) -> list[str]:
        chain_id = await self.chain.chain_id()
        pool = self.addresses.pool
        cache = self.config.cache
        state = cache.state(chain_id, pool) if cache is not None else None
        if state is not None and not await self._cache_matches_chain(state, block):
            log.warning(
                "discovery cache for pool %s on chain %d no longer matches the chain "
                "(reset or reorganised); rescanning",
                pool,
                chain_id,
            )
            assert cache is not None
            cache.forget(chain_id, pool)
            state = None
        self.last_scan = None
        if state is not None and state.scanned_to >= block.number:
            assert cache is not None
            log.info("discovery: cache covers block %d; no scan", block.number)
            return cache.accounts(chain_id, pool, up_to_block=block.number)
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
                pool,
                found,
                start_block=start,
                start_hash=start_hash,
                scanned_to=upto,
                scanned_hash=upto_hash,
            )
            log.info("discovery: %d accounts up to block %d saved", len(found), upto)

        found = await scan_accounts(
            self.chain,
            pool,
            OPEN_EVENTS,
            first,
            block.number,
            ranges=self._ranges,
            concurrency=self.config.log_concurrency,
            on_progress=on_progress,
            checkpoint=checkpoint if cache is not None else None,
        )
        self.last_scan = (first, block.number)
        if cache is None:
            return sorted(found)
        cache.record(
            chain_id,
            pool,
            found,
            start_block=start,
            start_hash=start_hash,
            scanned_to=block.number,
            scanned_hash=block.hash,
        )
        return cache.accounts(chain_id, pool, up_to_block=block.number)

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

    # -- reserves and prices -----------------------------------------------------------

    async def read_reserves(self, block: int) -> list[Reserve]:
        pool = self.addresses.pool
        raw = await self.chain.call(pool, _RESERVES_LIST.encode(), block, what="getReservesList()")
        (assets_raw,) = _RESERVES_LIST.decode(raw, what=f"on {pool} at block {block}")
        assets = [to_checksum_address(a) for a in assets_raw]
        calls: list[Call] = []
        for asset in assets:
            calls.append(Call(pool, _RESERVE_DATA.encode(asset), allow_failure=False))
            calls.append(Call(asset, _SYMBOL.encode()))
            calls.append(Call(asset, _DECIMALS.encode()))
        results = await self.multicall.run(calls, block)
        reserves: list[Reserve] = []
        for i, asset in enumerate(assets):
            (_, data), (sym_ok, sym), (dec_ok, dec) = results[3 * i : 3 * i + 3]
            w = words(data, 15, what=f"getReserveData({asset}) on {pool} at block {block}")
            config = decode_reserve_configuration(w[0])
            decimals = config.decimals
            if dec_ok and len(dec) >= 32:
                token_decimals = int.from_bytes(dec[:32], "big")
                if token_decimals != decimals:
                    log.warning(
                        "%s: decimals() is %d but the reserve configuration says %d; using %d",
                        asset,
                        token_decimals,
                        decimals,
                        decimals,
                    )
            reserves.append(
                Reserve(
                    asset=asset,
                    symbol=_symbol(sym_ok, sym, asset),
                    decimals=decimals,
                    reserve_id=w[7],
                    ltv_bps=config.ltv,
                    liquidation_threshold_bps=config.liquidation_threshold,
                    liquidation_bonus_bps=config.liquidation_bonus,
                    reserve_factor_bps=config.reserve_factor,
                    protocol_fee_bps=config.liquidation_protocol_fee,
                    active=config.active,
                    frozen=config.frozen,
                    paused=config.paused,
                    borrowing_enabled=config.borrowing_enabled,
                    emode_category=config.emode_category,
                    a_token=to_checksum_address(w[8].to_bytes(20, "big")),
                    stable_debt_token=to_checksum_address(w[9].to_bytes(20, "big")),
                    variable_debt_token=to_checksum_address(w[10].to_bytes(20, "big")),
                )
            )
        return reserves

    async def read_prices(self, assets: Sequence[str], block: int) -> Prices:
        oracle = self.addresses.oracle
        if self._base_unit is None:
            try:
                data = await self.chain.call(
                    oracle, _BASE_UNIT.encode(), block, what="BASE_CURRENCY_UNIT()"
                )
                self._base_unit = words(data, 1, what="BASE_CURRENCY_UNIT()")[0] or 10**8
            except (CallReverted, DecodeError):
                self._base_unit = 10**8
        try:
            data = await self.chain.call(
                oracle, _ASSETS_PRICES.encode(list(assets)), block, what="getAssetsPrices()"
            )
        except CallReverted:
            # One broken price source reverts the whole list: find which, and say so.
            answers = await self.multicall.run(
                [Call(oracle, _ASSET_PRICE.encode(a)) for a in assets], block
            )
            broken = [a for a, (ok, _) in zip(assets, answers, strict=True) if not ok]
            raise ChainError(
                f"the oracle {oracle} cannot price {', '.join(broken) or 'some assets'} at "
                f"block {block} (getAssetPrice reverts): its price source is missing or broken"
            ) from None
        (prices,) = _ASSETS_PRICES.decode(data, what=f"on {oracle} at block {block}")
        if len(prices) != len(assets):
            raise DecodeError(
                f"getAssetsPrices on {oracle} answered {len(prices)} prices for {len(assets)} assets"
            )
        raw = {to_checksum_address(a): int(p) for a, p in zip(assets, prices, strict=True)}
        return Prices(raw=raw, base_unit=self._base_unit)

    # -- positions ---------------------------------------------------------------------

    async def read_positions(
        self,
        accounts: Sequence[str],
        reserves: Sequence[Reserve],
        block: int,
        on_progress: OnProgress | None = None,
    ) -> AccountPositions:
        pool = self.addresses.pool
        data_provider = self.addresses.data_provider
        by_id = {r.reserve_id: r for r in reserves}

        # Phase 1: which reserves each account touches, and its e-mode category.
        phase1: list[Call] = []
        for account in accounts:
            phase1.append(Call(pool, _USER_CONFIG.encode(account)))
            phase1.append(Call(pool, _USER_EMODE.encode(account)))
        # These reads cost about a quarter of a getUserReserveData: pack more per batch.
        results = await self.multicall.run(
            phase1, block, batch_size=_LIGHT_CALLS_PER_HEAVY * self.multicall.batch_size
        )

        wanted: list[tuple[str, Reserve]] = []
        emode: dict[str, int] = {}
        per_account: list[int] = []
        for k, account in enumerate(accounts):
            (ok, data), (em_ok, em) = results[2 * k], results[2 * k + 1]
            if not ok:
                raise CallReverted(
                    f"getUserConfiguration({account}) on Pool {pool} reverted at block {block}"
                )
            (word,) = words(data, 1, what=f"getUserConfiguration({account}) at block {block}")
            if em_ok and len(em) >= 32:
                category = int.from_bytes(em[:32], "big")
                if category:
                    emode[account] = category
            if self.config.all_reserves:
                chosen = list(reserves) if word else []
            else:
                borrowing, collateral = decode_user_configuration(word)
                ids = sorted(set(borrowing) | set(collateral))
                chosen = [by_id[i] for i in ids if i in by_id]
            wanted.extend((account, r) for r in chosen)
            per_account.append(len(chosen))

        # Phase 2: balances of the flagged (account, reserve) pairs.
        calls = [Call(data_provider, _USER_RESERVE.encode(r.asset, a)) for a, r in wanted]
        done = 0
        cursor = 0

        def progress(n_calls: int) -> None:
            nonlocal done, cursor
            if on_progress is None:
                return
            done += n_calls
            finished = 0
            while cursor < len(per_account) and done >= per_account[cursor]:
                done -= per_account[cursor]
                cursor += 1
                finished += 1
            if finished:
                on_progress(finished)

        answers = await self.multicall.run(calls, block, on_batch=progress)
        positions: list[Position] = []
        checksum: dict[str, str] = {}
        for (account, reserve), (ok, data) in zip(wanted, answers, strict=True):
            if not ok:
                raise CallReverted(
                    f"getUserReserveData({reserve.asset}, {account}) on PoolDataProvider "
                    f"{data_provider} reverted at block {block}"
                )
            w = words(data, 9, what=f"getUserReserveData({reserve.symbol}, {account})")
            collateral, stable, variable, enabled = w[0], w[1], w[2], w[8]
            debt = stable + variable
            if collateral == 0 and debt == 0:
                continue
            owner = checksum.get(account)
            if owner is None:
                owner = checksum[account] = to_checksum_address(account)
            positions.append(Position(owner, reserve.asset, collateral, debt, bool(enabled)))
        if on_progress is not None and cursor < len(per_account):
            on_progress(len(per_account) - cursor)
        emode_checksummed = {to_checksum_address(a): c for a, c in emode.items()}
        return AccountPositions(positions, emode_checksummed, len(accounts))

    # -- DEX liquidity -----------------------------------------------------------------

    async def read_dex_liquidity(
        self, reserves: Sequence[Reserve], block: int
    ) -> dict[str, DexLiquidity]:
        by_key = {k.lower(): v for k, v in self.config.dex_sources.items()}
        sources = {
            r.asset.lower(): by_key.get(r.asset.lower()) or by_key.get(r.symbol.lower())
            for r in reserves
        }
        chosen = [(r, s) for r in reserves if (s := sources[r.asset.lower()]) is not None]
        for r in reserves:
            if r.usage_as_collateral_enabled and sources[r.asset.lower()] is None:
                log.warning(
                    "no DEX pool known for collateral %s (%s): its liquidity is taken as zero "
                    "(give one with --dex-map)",
                    r.symbol,
                    r.asset,
                )
        if not chosen:
            return {}
        for _, source in chosen:
            if source.kind != "uniswap-v2":
                raise ConfigError(f"DEX pool {source.pair}: unsupported kind {source.kind!r}")
        calls: list[Call] = []
        for _, source in chosen:
            pair = to_checksum_address(source.pair)
            calls += [
                Call(pair, _PAIR_RESERVES.encode(), False),
                Call(pair, _TOKEN0.encode(), False),
                Call(pair, _TOKEN1.encode(), False),
            ]
        try:
            results = await self.multicall.run(calls, block)
        except CallReverted as exc:
            raise ConfigError(
                f"a DEX pool in the map does not answer getReserves/token0/token1 ({exc})"
            ) from None
        decimals = {r.asset: r.decimals for r in reserves}
        pending: list[tuple[Reserve, DexSource, str, int, int]] = []
        for k, (reserve, source) in enumerate(chosen):
            (_, res), (_, t0), (_, t1) = results[3 * k : 3 * k + 3]
            if not res:  # a call to an address without code "succeeds" with no answer
                raise ConfigError(
                    f"no contract at DEX pool {source.pair} (for {reserve.symbol}) at block "
                    f"{block}: fix the DEX map"
                )
            r0, r1, _ts = words(res, 3, what=f"getReserves() of {source.pair}")
            token0 = _address(t0, f"token0() of {source.pair}")
            token1 = _address(t1, f"token1() of {source.pair}")
            if reserve.asset == token0:
                quote, ra, rq = token1, r0, r1
            elif reserve.asset == token1:
                quote, ra, rq = token0, r1, r0
            else:
                raise ConfigError(
                    f"DEX pool {source.pair} trades {token0}/{token1}, not {reserve.symbol} "
                    f"({reserve.asset}): fix the DEX map"
                )
            pending.append((reserve, source, quote, ra, rq))
        unknown = sorted({p[2] for p in pending} - set(decimals))
        if unknown:
            dec_results = await self.multicall.run(
                [Call(q, _DECIMALS.encode(), False) for q in unknown], block
            )
            for q, (_, data) in zip(unknown, dec_results, strict=True):
                decimals[q] = words(data, 1, what=f"decimals() of {q}")[0]
        out: dict[str, DexLiquidity] = {}
        for reserve, source, quote, ra, rq in pending:
            out[reserve.asset] = DexLiquidity(
                asset=reserve.asset,
                pair=to_checksum_address(source.pair),
                quote_asset=quote,
                reserve_asset=ra,
                reserve_quote=rq,
                asset_decimals=reserve.decimals,
                quote_decimals=decimals[quote],
                fee=source.fee,
            )
        return out
