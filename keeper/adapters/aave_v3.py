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

import contextlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import eth_abi
from eth_utils import to_checksum_address

from keeper.adapters.abi import event_topic, function, words
from keeper.adapters.base import (
    DEX_KINDS,
    AccountPositions,
    AdapterConfig,
    Checkpoint,
    DexLiquidity,
    DexSource,
    EModeCategory,
    MarketAddresses,
    MarketVersion,
    OnProgress,
    Position,
    Prices,
    ProtocolAdapter,
    Reserve,
    RoundingModel,
    register_adapter,
)
from keeper.adapters.multicall import Call, Multicall
from keeper.chain import BlockRef, Chain
from keeper.discovery import AdaptiveRange, scan_accounts
from keeper.errors import (
    CallReverted,
    ChainError,
    ConfigError,
    ContractMissing,
    DecodeError,
)
from keeper.venues_pull import read_v3_liquidity

__all__ = [
    "ROUNDING_MODELS",
    "AaveV3Adapter",
    "ReserveConfiguration",
    "candidate_models",
    "decode_reserve_configuration",
    "decode_user_configuration",
    "ray_mul_ceil",
    "ray_mul_floor",
    "ray_mul_half_up",
    "read_pair_liquidity",
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
_NORMALIZED_INCOME = function("Pool", "getReserveNormalizedIncome")
_NORMALIZED_DEBT = function("Pool", "getReserveNormalizedVariableDebt")
_ACCOUNT_DATA = function("Pool", "getUserAccountData")
_POOL_REVISION = function("PoolVersioned", "POOL_REVISION")
_EMODE_DATA = function("PoolVersioned", "getEModeCategoryData")
_EMODE_CONFIG = function("PoolVersioned", "getEModeCategoryCollateralConfig")
_EMODE_COLLATERAL = function("PoolVersioned", "getEModeCategoryCollateralBitmap")
_EMODE_BORROWABLE = function("PoolVersioned", "getEModeCategoryBorrowableBitmap")
_EMODE_LTVZERO = function("PoolVersioned", "getEModeCategoryLtvzeroBitmap")
_EMODE_LABEL = function("PoolVersioned", "getEModeCategoryLabel")
_EMODE_ISOLATED = function("PoolVersioned", "getIsEModeCategoryIsolated")
_SCALED_BALANCE = function("ScaledBalanceToken", "scaledBalanceOf")
_BALANCE_OF = function("ScaledBalanceToken", "balanceOf")
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
#: How many balance reads one getUserAccountData costs, roughly (it prices every reserve the
#: account touches).
_ACCOUNT_DATA_COST = 4

_MAINNET_HINT = (
    "Aave V3 Ethereum's PoolAddressesProvider is 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
)


def _bits(word: int, lo: int, width: int) -> int:
    return (word >> lo) & ((1 << width) - 1)


@dataclass(frozen=True, slots=True)
class ReserveConfiguration:
    """A decoded ``ReserveConfigurationMap`` (bit layout in docs/PROTOCOLS.md).

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


def _has_token(address: str) -> bool:
    return int(address, 16) != 0


def _index(ok: bool, data: bytes, what: str, block: int) -> int:
    """A normalised index (ray) from the Pool's view at ``block``."""
    value = int.from_bytes(data[:32], "big") if ok and len(data) >= 32 else 0
    if value <= 0:
        raise DecodeError(
            f"{what} at block {block}: {'reverted' if not ok else 'no index'}; the Pool "
            "must answer it for every listed reserve"
        )
    return value


def _address(data: bytes, what: str) -> str:
    (value,) = words(data, 1, what=what)
    if value >> 160:
        raise DecodeError(f"{what}: answer is not an address")
    return to_checksum_address(value.to_bytes(20, "big"))


def token_symbol(ok: bool, data: bytes, asset: str) -> str:
    """ERC20 symbol from a ``symbol()`` answer; tolerates ``bytes32`` symbols (MKR) and tokens
    without one (then the address's first characters)."""
    if ok and len(data) >= 64:
        with contextlib.suppress(DecodeError):
            return str(_SYMBOL.decode(data)[0])
    if ok and len(data) == 32:
        return data.rstrip(b"\x00").decode("utf-8", "replace")
    return asset[:10]


# -- the Pool's integer arithmetic ----------------------------------------------------------

RAY = 10**27
HALF_RAY = RAY // 2
#: ``ReserveConfiguration.DEBT_CEILING_DECIMALS``: the debt ceiling and
#: ``isolationModeTotalDebt`` count hundredths of the base currency's unit (USD cents).
DEBT_CEILING_DECIMALS = 2


def ray_mul_half_up(a: int, b: int) -> int:
    """``WadRayMath.rayMul`` (half up), as v3.0-v3.4 tokens scale balances."""
    return (a * b + HALF_RAY) // RAY


def ray_mul_floor(a: int, b: int) -> int:
    """``WadRayMath.rayMulFloor`` (v3.5+ ``TokenMath.getATokenBalance``)."""
    return (a * b) // RAY


def ray_mul_ceil(a: int, b: int) -> int:
    """``WadRayMath.rayMulCeil`` (v3.5+ ``TokenMath.getVTokenBalance``)."""
    return -((-a * b) // RAY)


ROUNDING_MODELS: dict[str, RoundingModel] = {
    m.name: m
    for m in (
        RoundingModel("v3.0", "average-lt-bps", "half-up", "floor"),
        RoundingModel("v3.1-v3.4", "weighted-sum", "half-up", "floor"),
        RoundingModel("v3.5+", "weighted-sum", "floor-ceil", "ceil"),
    )
}

#: ``POOL_REVISION`` of the releases whose rounding is known from their sources:
#: aave-v3-core v3.0.x answers 1-3; aave-v3-origin v3.3 answers 6, v3.4 7, v3.7 11.
_V30_LAST_REVISION = 3
_V35_FIRST_REVISION = 9
#: v3.6 (revision 10) decoupled e-mode from the reserve's LTV (the LTV-zero bitmap); v3.7
#: (11) leaves isolation, siloed borrowing and the per-reserve e-mode bits unused.
_V37_REVISION = 11


def candidate_models(revision: int | None) -> list[RoundingModel]:
    """The rounding models to try, most likely first for this ``POOL_REVISION``.

    The releases between v3.0 and v3.5 changed the health factor's rounding in steps the
    revision alone does not pin down, so ``pull`` keeps the first model under which every
    account's ``getUserAccountData`` is reproduced exactly.
    """
    m = ROUNDING_MODELS
    if revision is not None and revision <= _V30_LAST_REVISION:
        order = ["v3.0", "v3.1-v3.4", "v3.5+"]
    elif revision is not None and revision < _V35_FIRST_REVISION:
        order = ["v3.1-v3.4", "v3.0", "v3.5+"]
    else:
        order = ["v3.5+", "v3.1-v3.4", "v3.0"]
    return [m[name] for name in order]


def _decode_string(data: bytes) -> str:
    try:
        (text,) = eth_abi.decode(["string"], data)
        return str(text)
    except Exception:  # eth_abi raises several unrelated types
        return ""


def _bitmap_assets(bitmap: int, by_id: dict[int, Reserve]) -> frozenset[str]:
    return frozenset(r.asset for i, r in by_id.items() if (bitmap >> i) & 1)


@register_adapter
class AaveV3Adapter(ProtocolAdapter):
    """Aave V3 (v3.0 to v3.7): a market named by its PoolAddressesProvider."""

    name = "aave-v3"
    market_contract = "Pool"
    hf_rounding = "weighted-sum"

    def __init__(self, chain: Chain, config: AdapterConfig) -> None:
        super().__init__(chain, config)
        self.multicall = Multicall(chain, config.multicall3, batch_size=config.batch_size)
        self._addresses: MarketAddresses | None = None
        self._base_unit: int | None = None
        self._ranges = AdaptiveRange(initial=config.initial_log_range)
        self.version: MarketVersion | None = None
        """What ``read_version`` found last."""

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
        return await self.scan_discovery(from_block, to_block)

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

    async def scan_discovery(
        self,
        from_block: int,
        to_block: int,
        on_progress: OnProgress | None = None,
        checkpoint: Checkpoint | None = None,
    ) -> dict[str, int]:
        return await scan_accounts(
            self.chain,
            self.addresses.pool,
            OPEN_EVENTS,
            from_block,
            to_block,
            ranges=self._ranges,
            concurrency=self.config.log_concurrency,
            on_progress=on_progress,
            checkpoint=checkpoint,
        )

    # -- reserves and prices -----------------------------------------------------------

    async def read_version(self, block: int) -> MarketVersion:
        """Probe the Pool (one Multicall3 batch, failures allowed): ``POOL_REVISION()``, and
        which e-mode getters it answers. ``getEModeCategoryCollateralConfig`` (v3.2+) means
        liquid e-modes; else ``getEModeCategoryData`` (v3.0/v3.1) per-reserve categories;
        neither: no e-mode."""
        pool = self.addresses.pool
        probes = [
            _POOL_REVISION.encode(),
            _EMODE_CONFIG.encode(1),
            _EMODE_DATA.encode(1),
            _EMODE_LTVZERO.encode(1),
        ]
        answers = await self.multicall.run([Call(pool, c) for c in probes], block)
        (rev_ok, rev), (cfg_ok, cfg), (data_ok, data), (zero_ok, zero) = answers
        revision = int.from_bytes(rev[:32], "big") if rev_ok and len(rev) == 32 else None
        if cfg_ok and len(cfg) >= 96:
            family = "liquid"
        elif data_ok and len(data) >= 7 * 32:
            family = "per-reserve"
        else:
            family = "none"
        version = MarketVersion(
            pool_revision=revision,
            emode_family=family,
            has_ltvzero_bitmap=zero_ok and len(zero) >= 32,
        )
        if version != self.version:
            log.info("aave-v3 pool %s: POOL_REVISION %s, e-mode %s", pool, revision or "-", family)
        self.version = version
        return version

    async def read_reserves(self, block: int) -> list[Reserve]:
        pool = self.addresses.pool
        version = await self.read_version(block)
        raw = await self.chain.call(pool, _RESERVES_LIST.encode(), block, what="getReservesList()")
        (assets_raw,) = _RESERVES_LIST.decode(raw, what=f"on {pool} at block {block}")
        assets = [to_checksum_address(a) for a in assets_raw]
        per = 5
        calls: list[Call] = []
        for asset in assets:
            calls.append(Call(pool, _RESERVE_DATA.encode(asset), allow_failure=False))
            calls.append(Call(asset, _SYMBOL.encode()))
            calls.append(Call(asset, _DECIMALS.encode()))
            calls.append(Call(pool, _NORMALIZED_INCOME.encode(asset)))
            calls.append(Call(pool, _NORMALIZED_DEBT.encode(asset)))
        results = await self.multicall.run(calls, block)
        liquid = version.emode_family == "liquid"
        # v3.7 leaves isolation, siloed borrowing and the v3.0 e-mode bits unused (their old
        # values may linger in upgraded markets); liquid e-modes (v3.2+) dropped bits 168-175.
        v37 = version.pool_revision is not None and version.pool_revision >= _V37_REVISION
        reserves: list[Reserve] = []
        for i, asset in enumerate(assets):
            (_, data), (sym_ok, sym), (dec_ok, dec), (inc_ok, inc), (nd_ok, nd) = results[
                per * i : per * i + per
            ]
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
            symbol = token_symbol(sym_ok, sym, asset)
            income = _index(inc_ok, inc, f"getReserveNormalizedIncome({symbol})", block)
            debt_index = _index(nd_ok, nd, f"getReserveNormalizedVariableDebt({symbol})", block)
            reserves.append(
                Reserve(
                    asset=asset,
                    symbol=symbol,
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
                    emode_category=0 if liquid or v37 else config.emode_category,
                    a_token=to_checksum_address(w[8].to_bytes(20, "big")),
                    stable_debt_token=to_checksum_address(w[9].to_bytes(20, "big")),
                    variable_debt_token=to_checksum_address(w[10].to_bytes(20, "big")),
                    borrowable_in_isolation=config.borrowable_in_isolation and not v37,
                    siloed_borrowing=config.siloed_borrowing and not v37,
                    debt_ceiling=0 if v37 else config.debt_ceiling,
                    isolation_mode_total_debt=0 if v37 else w[14],
                    supply_cap=config.supply_cap,
                    borrow_cap=config.borrow_cap,
                    liquidity_rate_ray=w[2],
                    variable_borrow_rate_ray=w[4],
                    stable_borrow_rate_ray=0 if liquid else w[5],
                    liquidity_index_ray=income,
                    variable_borrow_index_ray=debt_index,
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
        """Balances as the Pool counts them at ``block``: each account's configuration and
        e-mode, the reserves' normalised income and variable debt at the block, then for the
        flagged (account, reserve) pairs the aToken and variable debt token
        ``scaledBalanceOf`` (and the stable debt token's ``balanceOf`` on v3.0/v3.1), scaled
        with the Pool's rounding (``RoundingModel``; the release's most likely one here,
        ``with_rounding`` redoes it for another)."""
        pool = self.addresses.pool
        by_id = {r.reserve_id: r for r in reserves}
        version = self.version or await self.read_version(block)
        with_stable = version.emode_family != "liquid"

        # Phase 1: which reserves each account touches, its e-mode category, and the
        # reserves' indexes at this block.
        phase1: list[Call] = []
        for account in accounts:
            phase1.append(Call(pool, _USER_CONFIG.encode(account)))
            phase1.append(Call(pool, _USER_EMODE.encode(account)))
        for r in reserves:
            phase1.append(Call(pool, _NORMALIZED_INCOME.encode(r.asset)))
            phase1.append(Call(pool, _NORMALIZED_DEBT.encode(r.asset)))
        # These reads cost about a quarter of a balance read: pack more per batch.
        results = await self.multicall.run(
            phase1, block, batch_size=_LIGHT_CALLS_PER_HEAVY * self.multicall.batch_size
        )
        n = len(accounts)
        indexes: dict[str, tuple[int, int]] = {}
        for k, r in enumerate(reserves):
            (inc_ok, inc), (nd_ok, nd) = results[2 * n + 2 * k], results[2 * n + 2 * k + 1]
            indexes[r.asset] = (
                _index(inc_ok, inc, f"getReserveNormalizedIncome({r.symbol})", block),
                _index(nd_ok, nd, f"getReserveNormalizedVariableDebt({r.symbol})", block),
            )

        wanted: list[tuple[str, Reserve, bool, bool]] = []
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
            borrowing, collateral = decode_user_configuration(word)
            if self.config.all_reserves:
                chosen = list(reserves) if word else []
            else:
                ids = sorted(set(borrowing) | set(collateral))
                chosen = [by_id[i] for i in ids if i in by_id]
            borrowed, enabled = set(borrowing), set(collateral)
            calls_here = 0
            for r in chosen:
                wanted.append((account, r, r.reserve_id in borrowed, r.reserve_id in enabled))
                calls_here += 3 if with_stable and _has_token(r.stable_debt_token) else 2
            per_account.append(calls_here)

        # Phase 2: scaled balances of the flagged (account, reserve) pairs.
        calls: list[Call] = []
        for account, r, _, _ in wanted:
            calls.append(Call(r.a_token, _SCALED_BALANCE.encode(account)))
            calls.append(Call(r.variable_debt_token, _SCALED_BALANCE.encode(account)))
            if with_stable and _has_token(r.stable_debt_token):
                calls.append(Call(r.stable_debt_token, _BALANCE_OF.encode(account)))
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

        # a scaledBalanceOf is a storage read: two of them cost less than one getUserReserveData
        answers = await self.multicall.run(
            calls, block, on_batch=progress, batch_size=2 * self.multicall.batch_size
        )
        model = candidate_models(version.pool_revision)[0]
        positions: list[Position] = []
        checksum: dict[str, str] = {}
        at = 0
        for account, reserve, is_borrowing, is_enabled in wanted:
            stable_read = with_stable and _has_token(reserve.stable_debt_token)
            got = answers[at : at + (3 if stable_read else 2)]
            at += len(got)
            values: list[int] = []
            for (ok, data), token, what in zip(
                got,
                (reserve.a_token, reserve.variable_debt_token, reserve.stable_debt_token),
                ("aToken scaledBalanceOf", "variable debt token scaledBalanceOf", "balanceOf"),
                strict=False,
            ):
                if not ok or len(data) < 32:
                    raise CallReverted(
                        f"{what}({account}) on {token} ({reserve.symbol}) "
                        f"{'reverted' if not ok else 'answered nothing'} at block {block}"
                    )
                values.append(int.from_bytes(data[:32], "big"))
            scaled_coll, scaled_debt = values[0], values[1]
            stable = values[2] if stable_read else 0
            if scaled_coll == 0 and scaled_debt == 0 and stable == 0:
                continue
            income, debt_index = indexes[reserve.asset]
            owner = checksum.get(account)
            if owner is None:
                owner = checksum[account] = to_checksum_address(account)
            positions.append(
                Position(
                    owner,
                    reserve.asset,
                    model.collateral(scaled_coll, income),
                    model.debt(scaled_debt, debt_index) + stable,
                    is_enabled,
                    scaled_collateral=scaled_coll,
                    scaled_debt=scaled_debt,
                    stable_debt=stable,
                    borrowing=is_borrowing,
                )
            )
        if on_progress is not None and cursor < len(per_account):
            on_progress(len(per_account) - cursor)
        emode_checksummed = {to_checksum_address(a): c for a, c in emode.items()}
        return AccountPositions(positions, emode_checksummed, len(accounts), indexes)

    def rounding_candidates(self) -> list[RoundingModel]:
        """The rounding models this Pool may use, most likely first (``candidate_models``)."""
        return candidate_models(self.version.pool_revision if self.version else None)

    @staticmethod
    def with_rounding(found: AccountPositions, model: RoundingModel) -> AccountPositions:
        """``found`` with every balance recomputed from its scaled balance under ``model``."""
        out: list[Position] = []
        for p in found.positions:
            if p.scaled_collateral is None or p.scaled_debt is None:
                out.append(p)
                continue
            income, debt_index = found.indexes[p.asset]
            out.append(
                replace(
                    p,
                    collateral=model.collateral(p.scaled_collateral, income),
                    debt=model.debt(p.scaled_debt, debt_index) + p.stable_debt,
                )
            )
        return replace(found, positions=out)

    # -- e-mode ------------------------------------------------------------------------

    async def read_emode(
        self, used: Sequence[int], reserves: Sequence[Reserve], block: int
    ) -> list[EModeCategory]:
        """Every configured e-mode category (ids 1..255 scanned in one batch: a non-zero LT
        marks one) and every category in ``used`` (the accounts' ``getUserEMode``).

        Liquid (v3.2+): ``getEModeCategoryCollateralConfig`` (ltv, LT, bonus), the collateral,
        borrowable and (v3.6+) LTV-zero bitmaps over reserve ids, the label, and
        ``getIsEModeCategoryIsolated`` where the Pool has it. Per-reserve (v3.0/v3.1):
        ``getEModeCategoryData`` (ltv, LT, bonus, price source, label); the category's
        assets are the reserves whose configuration bits 168-175 name it, and a non-zero
        price source prices them at ``AaveOracle.getAssetPrice(priceSource)``, which is what
        ``EModeLogic.getEModeConfiguration`` asks the oracle for.
        """
        version = self.version or await self.read_version(block)
        if version.emode_family == "none":
            if used:
                raise ChainError(
                    f"accounts are in e-mode categories {sorted(set(used))[:5]} at block "
                    f"{block}, but Pool {self.addresses.pool} answers neither "
                    "getEModeCategoryCollateralConfig nor getEModeCategoryData"
                )
            return []
        pool = self.addresses.pool
        ids = list(range(1, 256))
        liquid = version.emode_family == "liquid"
        scan_fn = _EMODE_CONFIG if liquid else _EMODE_DATA
        scan = await self.multicall.run([Call(pool, scan_fn.encode(i)) for i in ids], block)
        params: dict[int, tuple[int, int, int, str, str]] = {}
        for i, (ok, data) in zip(ids, scan, strict=True):
            if not ok or not data:
                continue
            if liquid:
                ltv, lt, bonus = words(data, 3, what=f"getEModeCategoryCollateralConfig({i})")
                source, label = _ZERO, ""
            else:
                ((ltv, lt, bonus, source, label),) = _EMODE_DATA.decode(
                    data, what=f"getEModeCategoryData({i}) at block {block}"
                )
            if lt or i in used:
                params[i] = (int(ltv), int(lt), int(bonus), to_checksum_address(source), label)
        missing = sorted(set(used) - set(params))
        if missing:
            raise ChainError(
                f"Pool {pool} does not describe e-mode categor{'y' if len(missing) == 1 else 'ies'}"
                f" {missing} at block {block}, yet accounts are in them"
            )
        chosen = sorted(params)
        by_id = {r.reserve_id: r for r in reserves}
        out: list[EModeCategory] = []
        if liquid:
            getters = [_EMODE_COLLATERAL, _EMODE_BORROWABLE, _EMODE_LABEL, _EMODE_ISOLATED]
            if version.has_ltvzero_bitmap:
                getters.append(_EMODE_LTVZERO)
            calls = [Call(pool, g.encode(i)) for i in chosen for g in getters]
            answers = await self.multicall.run(calls, block)
            per = len(getters)
            for k, i in enumerate(chosen):
                got = answers[per * k : per * k + per]
                (c_ok, coll), (b_ok, borr) = got[0], got[1]
                if not (c_ok and b_ok):
                    raise CallReverted(
                        f"getEModeCategoryCollateralBitmap / BorrowableBitmap({i}) on Pool "
                        f"{pool} reverted at block {block}"
                    )
                zero = 0
                if version.has_ltvzero_bitmap and got[4][0] and len(got[4][1]) >= 32:
                    zero = int.from_bytes(got[4][1][:32], "big")
                ltv, lt, bonus, _, _ = params[i]
                out.append(
                    EModeCategory(
                        category=i,
                        label=_decode_string(got[2][1]) if got[2][0] else "",
                        ltv_bps=ltv,
                        liquidation_threshold_bps=lt,
                        liquidation_bonus_bps=bonus,
                        collateral=_bitmap_assets(words(coll, 1)[0], by_id),
                        borrowable=_bitmap_assets(words(borr, 1)[0], by_id),
                        ltv_zero=_bitmap_assets(zero, by_id),
                        isolated=bool(got[3][0] and got[3][1][31:32] == b"\x01"),
                    )
                )
            return out
        sources = sorted({params[i][3] for i in chosen} - {_ZERO})
        source_price: dict[str, int] = {}
        if sources:
            oracle = self.addresses.oracle
            priced = await self.multicall.run(
                [Call(oracle, _ASSET_PRICE.encode(src)) for src in sources], block
            )
            for src, (ok, data) in zip(sources, priced, strict=True):
                price = int.from_bytes(data[:32], "big") if ok and len(data) >= 32 else 0
                if price <= 0:
                    raise ChainError(
                        f"the oracle {oracle} cannot price e-mode price source {src} at block "
                        f"{block} (getAssetPrice {'reverts' if not ok else 'is 0'})"
                    )
                source_price[src] = price
        for i in chosen:
            ltv, lt, bonus, source, label = params[i]
            members = frozenset(r.asset for r in reserves if r.emode_category == i)
            out.append(
                EModeCategory(
                    category=i,
                    label=label,
                    ltv_bps=ltv,
                    liquidation_threshold_bps=lt,
                    liquidation_bonus_bps=bonus,
                    collateral=members,
                    borrowable=members,
                    price_source="" if source == _ZERO else source,
                    price_raw=source_price.get(source, 0),
                )
            )
        return out

    # -- the Pool's own account data -----------------------------------------------------

    async def read_account_data(
        self, accounts: Sequence[str], block: int
    ) -> dict[str, tuple[int, int, int, int, int, int]]:
        """``getUserAccountData`` of each account at ``block`` (totalCollateralBase,
        totalDebtBase, availableBorrowsBase, currentLiquidationThreshold, ltv,
        healthFactor), batched through Multicall3; each costs about as much as a few
        balance reads, so batches are smaller."""
        pool = self.addresses.pool
        calls = [Call(pool, _ACCOUNT_DATA.encode(a)) for a in accounts]
        answers = await self.multicall.run(
            calls, block, batch_size=max(1, self.multicall.batch_size // _ACCOUNT_DATA_COST)
        )
        out: dict[str, tuple[int, int, int, int, int, int]] = {}
        for account, (ok, data) in zip(accounts, answers, strict=True):
            if not ok:
                raise CallReverted(
                    f"getUserAccountData({account}) on Pool {pool} reverted at block {block}"
                )
            w = words(data, 6, what=f"getUserAccountData({account}) at block {block}")
            out[account] = (w[0], w[1], w[2], w[3], w[4], w[5])
        return out

    # -- DEX liquidity -----------------------------------------------------------------

    async def read_dex_liquidity(
        self, reserves: Sequence[Reserve], block: int
    ) -> dict[str, DexLiquidity]:
        return await read_pair_liquidity(self.multicall, self.config.dex_sources, reserves, block)


async def read_pair_liquidity(
    multicall: Multicall,
    dex_sources: Mapping[str, DexSource],
    reserves: Sequence[Reserve],
    block: int,
) -> dict[str, DexLiquidity]:
    """Each venue at ``block`` for the ``reserves`` that ``dex_sources`` (asset address or
    symbol, any case -> source) names: constant-product pool reserves, Uniswap V3 pools
    (``keeper.venues_pull``), depth curves as given; a collateral without one is logged and
    gets no liquidity. Shared by the protocol adapters."""
    by_key = {k.lower(): v for k, v in dex_sources.items()}
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
        if source.kind not in DEX_KINDS:
            raise ConfigError(f"DEX pool {source.pair}: unsupported kind {source.kind!r}")
    decimals = {r.asset: r.decimals for r in reserves}
    out: dict[str, DexLiquidity] = {}
    for reserve, source in chosen:
        if source.kind == "depth-curve":
            out[reserve.asset] = DexLiquidity(
                asset=reserve.asset,
                pair="",
                quote_asset="",
                reserve_asset=0,
                reserve_quote=0,
                asset_decimals=reserve.decimals,
                quote_decimals=0,
                fee=source.fee,
                kind="depth-curve",
                points=source.points,
            )
    out.update(
        await read_v3_liquidity(
            multicall, [(r, s) for r, s in chosen if s.kind == "uniswap-v3"], decimals, block
        )
    )
    chosen = [(r, s) for r, s in chosen if s.kind == "uniswap-v2"]
    if not chosen:
        return out
    calls: list[Call] = []
    for _, source in chosen:
        pair = to_checksum_address(source.pair)
        calls += [
            Call(pair, _PAIR_RESERVES.encode(), False),
            Call(pair, _TOKEN0.encode(), False),
            Call(pair, _TOKEN1.encode(), False),
        ]
    try:
        results = await multicall.run(calls, block)
    except CallReverted as exc:
        raise ConfigError(
            f"a DEX pool in the map does not answer getReserves/token0/token1 ({exc})"
        ) from None
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
        dec_results = await multicall.run(
            [Call(q, _DECIMALS.encode(), False) for q in unknown], block
        )
        for q, (_, data) in zip(unknown, dec_results, strict=True):
            decimals[q] = words(data, 1, what=f"decimals() of {q}")[0]
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
