"""Compound V3 (Comet) through its public interface only: our devnet market or a live one.

A Comet market is one contract (cUSDCv3, cWETHv3, ...) with one *base* asset, borrowed and
supplied for interest, and up to 15 *collateral* assets, which earn nothing and cannot be
borrowed. Everything is read from it at one pinned block, through Multicall3:

- the market: ``baseToken``, ``baseTokenPriceFeed``, ``numAssets`` / ``getAssetInfo(i)``
  (asset, price feed, scale, ``borrowCollateralFactor``, ``liquidateCollateralFactor``,
  ``liquidationFactor``, ``supplyCap``; factors 1e18-scaled), ``totalsBasic`` (the stored
  supply and borrow indexes, 1e15 = 1, the principal totals, ``lastAccrualTime``),
  ``getUtilization``, ``getSupplyRate`` / ``getBorrowRate`` (per second, 1e18),
  ``storeFrontPriceFactor``, ``targetReserves``, ``baseBorrowMin``, ``getReserves`` (signed);
- prices: ``getPrice(feed)`` (8 decimals) for the base feed and every collateral feed;
- accounts: ``userBasic(account)`` (signed principal: negative is a borrow; the ``assetsIn``
  bitmap), then ``userCollateral(account, asset)`` for the assets whose bit is set.

Balances are present values at the indexes *accrued to the block* (:func:`accrued_indexes`, Comet's
``accruedInterestIndices``: index + index x rate x elapsed / 1e18 with the rates of the stored
utilisation), principal x index / 1e15 rounded down, exactly what ``balanceOf`` /
``borrowBalanceOf`` answer (and what ``absorb`` sees, since it accrues first).

Accounts are discovered from the events that name them: ``Supply`` (dst), ``Withdraw`` (src:
a borrow is a withdrawal of the base asset), ``Transfer`` (from and to), ``SupplyCollateral``
(dst), ``WithdrawCollateral`` (src), ``TransferCollateral`` (from and to), ``AbsorbDebt`` and
``AbsorbCollateral`` (borrower).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from eth_utils import to_checksum_address

from keeper.adapters.aave_v3 import read_pair_liquidity, token_symbol
from keeper.adapters.abi import event_topic, function, words
from keeper.adapters.base import (
    AccountPositions,
    AdapterConfig,
    Checkpoint,
    DexLiquidity,
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
from keeper.errors import CallReverted, ChainError, ConfigError, ContractMissing

__all__ = [
    "BASE_INDEX_SCALE",
    "CHANGE_EVENTS",
    "FACTOR_SCALE",
    "CometAddresses",
    "CometReserve",
    "CometState",
    "CompoundV3Adapter",
    "accrued_indexes",
    "is_liquidatable_exact",
]

log = logging.getLogger(__name__)

FACTOR_SCALE = 10**18
BASE_INDEX_SCALE = 10**15
PRICE_SCALE = 10**8
#: Comet keeps factors to 4 decimals: a factor / 1e14 is a whole number of basis points.
_FACTOR_PER_BPS = 10**14

_C = "Comet"
_BASE_TOKEN = function(_C, "baseToken")
_BASE_FEED = function(_C, "baseTokenPriceFeed")
_NUM_ASSETS = function(_C, "numAssets")
_ASSET_INFO = function(_C, "getAssetInfo")
_TOTALS = function(_C, "totalsBasic")
_UTILIZATION = function(_C, "getUtilization")
_SUPPLY_RATE = function(_C, "getSupplyRate")
_BORROW_RATE = function(_C, "getBorrowRate")
_STORE_FRONT = function(_C, "storeFrontPriceFactor")
_TARGET_RESERVES = function(_C, "targetReserves")
_BORROW_MIN = function(_C, "baseBorrowMin")
_RESERVES = function(_C, "getReserves")
_BASE_SCALE = function(_C, "baseScale")
_GET_PRICE = function(_C, "getPrice")
_USER_BASIC = function(_C, "userBasic")
_USER_COLLATERAL = function(_C, "userCollateral")
_BALANCE_OF = function(_C, "balanceOf")
_BORROW_BALANCE_OF = function(_C, "borrowBalanceOf")
_IS_LIQUIDATABLE = function(_C, "isLiquidatable")
_IS_COLLATERALIZED = function(_C, "isBorrowCollateralized")
_COLLATERAL_RESERVES = function(_C, "getCollateralReserves")
_SYMBOL = function("ERC20", "symbol")
_DECIMALS = function("ERC20", "decimals")

#: topic0 -> topic index (or indexes) naming an account, for every event that changes one.
CHANGE_EVENTS: dict[str, int | tuple[int, ...]] = {
    event_topic(_C, "Supply"): 2,  # dst
    event_topic(_C, "Withdraw"): 1,  # src (a borrow is a withdrawal of the base asset)
    event_topic(_C, "Transfer"): (1, 2),  # from, to (the zero address is skipped)
    event_topic(_C, "SupplyCollateral"): 2,  # dst
    event_topic(_C, "WithdrawCollateral"): 1,  # src
    event_topic(_C, "TransferCollateral"): (1, 2),  # from, to
    event_topic(_C, "AbsorbDebt"): 2,  # borrower
    event_topic(_C, "AbsorbCollateral"): 2,  # borrower
}

_HINT = "Compound V3 cUSDCv3 on Ethereum is 0xc3d688B66703497DAA19211EEdff47f25384cdc3"


@dataclass(frozen=True, slots=True)
class CometAddresses(MarketAddresses):
    """A Comet market's contracts: the market itself (``pool`` = ``provider`` = the Comet
    proxy), its base token and base price feed (``oracle``)."""

    base_token: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "comet": self.pool,
            "base_token": self.base_token,
            "base_token_price_feed": self.oracle,
            "multicall3": self.multicall3,
        }


@dataclass(frozen=True, slots=True)
class CometReserve(Reserve):
    """One asset of a Comet market. The base asset has LTV and LT 0 (it is never collateral);
    a collateral's ``ltv_bps`` / ``liquidation_threshold_bps`` are its borrow / liquidate
    collateral factors in basis points (Comet keeps 4 decimals, so exactly)."""

    is_base: bool = False
    price_feed: str = ""
    scale: int = 1
    """10**decimals."""
    borrow_collateral_factor: int = 0
    liquidate_collateral_factor: int = 0
    liquidation_factor: int = 0
    """1e18-scaled, as ``getAssetInfo`` answers."""
    offset: int = -1
    """Bit of ``assetsIn`` (-1 for the base asset)."""


@dataclass(frozen=True, slots=True)
class CometState:
    """The market's aggregates at one block (exact integers, Comet's own scales)."""

    base_asset: str
    base_scale: int
    timestamp: int
    """Timestamp of the block read (the views accrue to it)."""
    supply_index: int
    borrow_index: int
    """Stored indexes (1e15 = 1) as of ``last_accrual_time``: what ``isLiquidatable`` uses."""
    accrued_supply_index: int
    accrued_borrow_index: int
    """The indexes accrued to ``timestamp``: what balances, reserves and ``absorb`` use."""
    total_supply_base: int
    total_borrow_base: int
    last_accrual_time: int
    utilization: int
    supply_rate: int
    borrow_rate: int
    """Per second, 1e18-scaled, at the stored utilisation."""
    reserves: int
    """``getReserves()``, base units, signed."""
    target_reserves: int
    store_front_price_factor: int
    base_borrow_min: int


def accrued_indexes(state_or_totals: CometState, timestamp: int) -> tuple[int, int]:
    """Comet's ``accruedInterestIndices``: (supply, borrow) index accrued from the stored
    indexes to ``timestamp`` at the stored rates, each product rounded down."""
    s = state_or_totals
    elapsed = timestamp - s.last_accrual_time
    if elapsed <= 0:
        return s.supply_index, s.borrow_index
    return (
        s.supply_index + s.supply_index * (s.supply_rate * elapsed) // FACTOR_SCALE,
        s.borrow_index + s.borrow_index * (s.borrow_rate * elapsed) // FACTOR_SCALE,
    )


def present_value(principal: int, supply_index: int, borrow_index: int) -> int:
    """Signed present value of a signed principal (rounded down in magnitude)."""
    if principal >= 0:
        return principal * supply_index // BASE_INDEX_SCALE
    return -(-principal * borrow_index // BASE_INDEX_SCALE)


def is_liquidatable_exact(
    principal: int,
    collateral: Sequence[tuple[int, int, int, int]],
    base_price: int,
    state: CometState,
) -> bool:
    """Comet's ``isLiquidatable`` in integers: ``collateral`` holds (balance, price, scale,
    liquidateCollateralFactor) per asset held; the base balance at the *stored* indexes."""
    if principal >= 0:
        return False
    balance = present_value(principal, state.supply_index, state.borrow_index)
    liquidity = -(-balance * base_price // state.base_scale)  # Solidity truncates to zero
    for amount, price, scale, lcf in collateral:
        if liquidity >= 0:
            return False
        liquidity += amount * price // scale * lcf // FACTOR_SCALE
    return liquidity < 0


def _word(ok: bool, data: bytes, what: str) -> int:
    if not ok or len(data) < 32:
        raise CallReverted(f"{what} {'reverted' if not ok else 'answered nothing'}")
    return int.from_bytes(data[:32], "big")


def _signed(value: int, bits: int = 256) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


def _address(data: bytes, what: str) -> str:
    (value,) = words(data, 1, what=what)
    return to_checksum_address(value.to_bytes(32, "big")[12:])


@register_adapter
class CompoundV3Adapter(ProtocolAdapter):
    """Compound V3 (Comet): a market named by its Comet proxy address (``--comet``)."""

    name = "compound-v3"
    market_contract = "Comet"
    hf_rounding = "weighted-sum"

    def __init__(self, chain: Chain, config: AdapterConfig) -> None:
        super().__init__(chain, config)
        self.multicall = Multicall(chain, config.multicall3, batch_size=config.batch_size)
        self._addresses: CometAddresses | None = None
        self._ranges = AdaptiveRange(initial=config.initial_log_range)
        self.state: CometState | None = None
        """What ``read_reserves`` found last."""
        self._reserves: list[CometReserve] = []

    @property
    def addresses(self) -> CometAddresses:
        if self._addresses is None:
            raise RuntimeError("call resolve() first")
        return self._addresses

    # -- resolve -----------------------------------------------------------------------

    async def resolve(self, block: BlockRef) -> CometAddresses:
        n = block.number
        chain_id = await self.chain.check_chain_id(self.config.expected_chain_id)
        comet = to_checksum_address(self.config.provider)
        await self.chain.require_code(
            comet, n, "Comet", f"check --comet ({_HINT}; on the devnet it is in deployment.json)"
        )
        multicall = to_checksum_address(self.config.multicall3)
        await self.chain.require_code(
            multicall, n, "Multicall3", "this chain has no Multicall3 there (pass --multicall)"
        )
        fns = (_BASE_TOKEN, _BASE_FEED, _NUM_ASSETS)
        answers = await self.multicall.run([Call(comet, f.encode()) for f in fns], n)
        for fn, (ok, data) in zip(fns, answers, strict=True):
            if not ok or len(data) < 32:
                raise ContractMissing(
                    f"{comet} does not answer {fn.name}() on chain {chain_id} at block {n}: it "
                    f"is not a Compound V3 Comet market; check --comet ({_HINT})"
                )
        base = _address(answers[0][1], "baseToken()")
        feed = _address(answers[1][1], "baseTokenPriceFeed()")
        self._addresses = CometAddresses(
            provider=comet,
            pool=comet,
            oracle=feed,
            data_provider=comet,
            multicall3=multicall,
            base_token=base,
        )
        log.info("compound-v3 market %s on chain %d: base %s", comet, chain_id, base)
        return self._addresses

    # -- discovery ---------------------------------------------------------------------

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
            CHANGE_EVENTS,
            from_block,
            to_block,
            ranges=self._ranges,
            concurrency=self.config.log_concurrency,
            on_progress=on_progress,
            checkpoint=checkpoint,
        )

    async def scan_new_accounts(self, from_block: int, to_block: int) -> dict[str, int]:
        return await self.scan_discovery(from_block, to_block)

    async def touched_accounts(self, from_block: int, to_block: int) -> set[str]:
        return set(await self.scan_discovery(from_block, to_block))

    # -- market ------------------------------------------------------------------------

    async def read_version(self, block: int) -> MarketVersion:
        """Comet has no releases to tell apart here and no e-mode."""
        return MarketVersion(pool_revision=None, emode_family="none")

    async def read_emode(
        self, used: Sequence[int], reserves: Sequence[Reserve], block: int
    ) -> list[EModeCategory]:
        """Comet has no e-mode categories."""
        if used:
            raise ChainError(f"e-mode categories {sorted(set(used))[:5]} on a Comet market")
        return []

    async def read_reserves(self, block: int) -> list[Reserve]:
        """The base asset first, then every collateral in ``getAssetInfo`` order; also reads the
        market's aggregates into ``self.state``."""
        comet = self.addresses.pool
        base = self.addresses.base_token
        ((ok, data),) = await self.multicall.run([Call(comet, _NUM_ASSETS.encode())], block)
        n_assets = _word(ok, data, f"numAssets() on {comet} at block {block}")
        infos = await self.multicall.run(
            [Call(comet, _ASSET_INFO.encode(i)) for i in range(n_assets)], block
        )
        decoded = []
        for i, (ok, data) in enumerate(infos):
            if not ok:
                raise CallReverted(f"getAssetInfo({i}) on Comet {comet} reverted at block {block}")
            ((offset, asset, feed, scale, bcf, lcf, lf, cap),) = _ASSET_INFO.decode(
                data, what=f"getAssetInfo({i}) at block {block}"
            )
            decoded.append(
                (
                    int(offset),
                    to_checksum_address(asset),
                    to_checksum_address(feed),
                    int(scale),
                    int(bcf),
                    int(lcf),
                    int(lf),
                    int(cap),
                )
            )
        assets = [base] + [d[1] for d in decoded]
        meta_calls = [Call(a, f.encode()) for a in assets for f in (_SYMBOL, _DECIMALS)]
        market_fns = (
            _TOTALS,
            _UTILIZATION,
            _STORE_FRONT,
            _TARGET_RESERVES,
            _BORROW_MIN,
            _RESERVES,
            _BASE_SCALE,
        )
        answers = await self.multicall.run(
            meta_calls + [Call(comet, f.encode()) for f in market_fns], block
        )
        meta, market = answers[: len(meta_calls)], answers[len(meta_calls) :]
        symbols: list[str] = []
        decimals: list[int] = []
        for k, asset in enumerate(assets):
            (s_ok, sym), (d_ok, dec) = meta[2 * k], meta[2 * k + 1]
            symbols.append(token_symbol(s_ok, sym, asset))
            decimals.append(_word(d_ok, dec, f"decimals() of {asset}"))
        totals = words(market[0][1], 8, what=f"totalsBasic() on {comet} at block {block}")
        values = [
            _word(ok, data, f"{fn.name}() on {comet}")
            for fn, (ok, data) in zip(market_fns[1:], market[1:], strict=True)
        ]
        utilization, store_front, target, borrow_min, reserves_raw, base_scale = values
        rates = await self.multicall.run(
            [
                Call(comet, _SUPPLY_RATE.encode(utilization)),
                Call(comet, _BORROW_RATE.encode(utilization)),
            ],
            block,
        )
        supply_rate = _word(*rates[0], "getSupplyRate()")
        borrow_rate = _word(*rates[1], "getBorrowRate()")
        timestamp = (await self.chain.block(block)).timestamp
        stored = CometState(
            base_asset=base,
            base_scale=base_scale,
            timestamp=timestamp,
            supply_index=totals[0],
            borrow_index=totals[1],
            accrued_supply_index=totals[0],
            accrued_borrow_index=totals[1],
            total_supply_base=totals[4],
            total_borrow_base=totals[5],
            last_accrual_time=totals[6],
            utilization=utilization,
            supply_rate=supply_rate,
            borrow_rate=borrow_rate,
            reserves=_signed(reserves_raw),
            target_reserves=target,
            store_front_price_factor=store_front,
            base_borrow_min=borrow_min,
        )
        si, bi = accrued_indexes(stored, timestamp)
        self.state = replace(stored, accrued_supply_index=si, accrued_borrow_index=bi)
        out: list[CometReserve] = [
            CometReserve(
                asset=base,
                symbol=symbols[0],
                decimals=decimals[0],
                reserve_id=255,
                ltv_bps=0,
                liquidation_threshold_bps=0,
                liquidation_bonus_bps=10_000,
                reserve_factor_bps=0,
                protocol_fee_bps=0,
                active=True,
                frozen=False,
                paused=False,
                borrowing_enabled=True,
                emode_category=0,
                liquidity_rate_ray=supply_rate * _SECONDS_PER_YEAR * 10**9,
                variable_borrow_rate_ray=borrow_rate * _SECONDS_PER_YEAR * 10**9,
                liquidity_index_ray=si * 10**12,
                variable_borrow_index_ray=bi * 10**12,
                is_base=True,
                price_feed=self.addresses.oracle,
                scale=10 ** decimals[0],
            )
        ]
        for k, (offset, asset, feed, scale, bcf, lcf, lf, cap) in enumerate(decoded, start=1):
            if scale != 10 ** decimals[k]:
                log.warning(
                    "%s: Comet's scale %d disagrees with decimals() %d", asset, scale, decimals[k]
                )
            out.append(
                CometReserve(
                    asset=asset,
                    symbol=symbols[k],
                    decimals=decimals[k],
                    reserve_id=offset,
                    ltv_bps=bcf // _FACTOR_PER_BPS,
                    liquidation_threshold_bps=lcf // _FACTOR_PER_BPS,
                    liquidation_bonus_bps=10_000,
                    reserve_factor_bps=0,
                    protocol_fee_bps=0,
                    active=True,
                    frozen=False,
                    paused=False,
                    borrowing_enabled=False,
                    emode_category=0,
                    supply_cap=cap // scale,
                    is_base=False,
                    price_feed=feed,
                    scale=scale,
                    borrow_collateral_factor=bcf,
                    liquidate_collateral_factor=lcf,
                    liquidation_factor=lf,
                    offset=offset,
                )
            )
        self._reserves = out
        return list(out)

    async def read_prices(self, assets: Sequence[str], block: int) -> Prices:
        """``getPrice(feed)`` of each asset's feed (8 decimals, as Comet values them)."""
        comet = self.addresses.pool
        feeds = {r.asset: r.price_feed for r in self._reserves}
        missing = [a for a in assets if a not in feeds]
        if missing:
            raise ConfigError(f"no Comet price feed known for {missing[:3]}: read_reserves first")
        answers = await self.multicall.run(
            [Call(comet, _GET_PRICE.encode(feeds[a])) for a in assets], block
        )
        raw: dict[str, int] = {}
        for asset, (ok, data) in zip(assets, answers, strict=True):
            if not ok or len(data) < 32:
                raise ChainError(
                    f"Comet {comet} cannot price {asset} (feed {feeds[asset]}) at block {block}: "
                    "getPrice reverts (BadPrice: the feed answers 0 or less)"
                )
            raw[to_checksum_address(asset)] = int.from_bytes(data[:32], "big")
        return Prices(raw=raw, base_unit=PRICE_SCALE)

    # -- positions ---------------------------------------------------------------------

    async def read_positions(
        self,
        accounts: Sequence[str],
        reserves: Sequence[Reserve],
        block: int,
        on_progress: OnProgress | None = None,
    ) -> AccountPositions:
        """``userBasic`` of every account, then ``userCollateral`` of the assets its
        ``assetsIn`` names (every asset with ``AdapterConfig.all_reserves``); the base balance
        is the principal's present value at the accrued indexes."""
        comet = self.addresses.pool
        state = self.state
        if state is None:
            raise RuntimeError("call read_reserves() first")
        collateral = [r for r in reserves if isinstance(r, CometReserve) and not r.is_base]
        base = state.base_asset
        # userBasic is one storage slot: light, pack more per batch (as the Aave pull does)
        basics = await self.multicall.run(
            [Call(comet, _USER_BASIC.encode(a)) for a in accounts],
            block,
            batch_size=3 * self.multicall.batch_size,
        )
        wanted: list[tuple[int, CometReserve]] = []
        principals: list[int] = []
        per_account: list[int] = []
        for k, (account, (ok, data)) in enumerate(zip(accounts, basics, strict=True)):
            if not ok:
                raise CallReverted(
                    f"userBasic({account}) on Comet {comet} reverted at block {block}"
                )
            w = words(data, 5, what=f"userBasic({account}) at block {block}")
            principals.append(_signed(w[0]))
            assets_in = w[3]
            chosen = [
                r for r in collateral if self.config.all_reserves or (assets_in >> r.offset) & 1
            ]
            wanted += [(k, r) for r in chosen]
            per_account.append(len(chosen))
        done = cursor = 0

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

        answers = await self.multicall.run(
            [Call(comet, _USER_COLLATERAL.encode(accounts[k], r.asset)) for k, r in wanted],
            block,
            on_batch=progress,
            batch_size=2 * self.multicall.batch_size,
        )
        positions: list[Position] = []
        owners = [to_checksum_address(a) for a in accounts]
        si, bi = state.accrued_supply_index, state.accrued_borrow_index
        for k, principal in enumerate(principals):
            if principal:
                value = present_value(principal, si, bi)
                positions.append(
                    Position(
                        owners[k],
                        base,
                        max(value, 0),
                        max(-value, 0),
                        False,
                        scaled_collateral=max(principal, 0),
                        scaled_debt=max(-principal, 0),
                        borrowing=principal < 0,
                    )
                )
        for (k, r), (ok, data) in zip(wanted, answers, strict=True):
            if not ok:
                raise CallReverted(
                    f"userCollateral({accounts[k]}, {r.symbol}) on Comet {comet} reverted at "
                    f"block {block}"
                )
            balance = words(data, 2, what=f"userCollateral({accounts[k]}, {r.asset})")[0]
            if balance:
                positions.append(Position(owners[k], r.asset, balance, 0, True))
        if on_progress is not None and cursor < len(per_account):
            on_progress(len(per_account) - cursor)
        positions.sort(key=lambda p: (p.account, p.asset))
        return AccountPositions(positions, {}, len(accounts), {base: (si, bi)})

    async def read_account_data(
        self, accounts: Sequence[str], block: int
    ) -> dict[str, tuple[int, int, int, int, int, int]]:
        """Comet's own view of each account at ``block``: (``isLiquidatable`` 0/1,
        ``borrowBalanceOf``, ``balanceOf``, ``isBorrowCollateralized`` 0/1, 0, 0)."""
        comet = self.addresses.pool
        fns = (_IS_LIQUIDATABLE, _BORROW_BALANCE_OF, _BALANCE_OF, _IS_COLLATERALIZED)
        calls = [Call(comet, f.encode(a)) for a in accounts for f in fns]
        # isLiquidatable prices every asset the account holds: a heavy call
        answers = await self.multicall.run(
            calls, block, batch_size=max(1, self.multicall.batch_size // 2)
        )
        out: dict[str, tuple[int, int, int, int, int, int]] = {}
        for k, account in enumerate(accounts):
            got = answers[4 * k : 4 * k + 4]
            vals = [
                _word(ok, data, f"{fn.name}({account}) at block {block}")
                for fn, (ok, data) in zip(fns, got, strict=True)
            ]
            out[account] = (vals[0], vals[1], vals[2], vals[3], 0, 0)
        return out

    async def read_collateral_reserves(
        self, reserves: Sequence[Reserve], block: int
    ) -> dict[str, int]:
        """``getCollateralReserves(asset)``: absorbed collateral the protocol holds for sale,
        token base units, per collateral asset."""
        comet = self.addresses.pool
        collateral = [r for r in reserves if isinstance(r, CometReserve) and not r.is_base]
        answers = await self.multicall.run(
            [Call(comet, _COLLATERAL_RESERVES.encode(r.asset)) for r in collateral], block
        )
        return {
            r.asset: _word(ok, data, f"getCollateralReserves({r.symbol}) at block {block}")
            for r, (ok, data) in zip(collateral, answers, strict=True)
        }

    def rounding_candidates(self) -> list[RoundingModel]:
        """One model: Comet rounds present values down and values each position down."""
        return [RoundingModel("comet", "weighted-sum", "floor-ceil", "floor")]

    @staticmethod
    def with_rounding(found: AccountPositions, model: RoundingModel) -> AccountPositions:
        return found

    async def read_dex_liquidity(
        self, reserves: Sequence[Reserve], block: int
    ) -> dict[str, DexLiquidity]:
        collateral = [r for r in reserves if not (isinstance(r, CometReserve) and r.is_base)]
        return await read_pair_liquidity(self.multicall, self.config.dex_sources, collateral, block)


_SECONDS_PER_YEAR = 365 * 24 * 3600
