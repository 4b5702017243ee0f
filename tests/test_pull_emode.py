"""The Aave V3 adapter and the pull's verification against in-process models of the two
e-mode families, with no chain: a v3.0-line Pool (aave-v3-core: ``POOL_REVISION`` 1,
``getEModeCategoryData``, one category per reserve in configuration bits 168-175, a
category price source, stable debt) and a v3.7-line Pool (aave-dao/aave-v3-origin:
``POOL_REVISION`` 11, collateral / borrowable / LTV-zero bitmaps). Each model answers
``getUserAccountData`` with its release's own integer arithmetic (``GenericLogic``), written
here independently of the adapter, with indexes far from 1 ray and dust positions, so a
wrong rounding shows.

Checked: family and revision detection, decoding of every getter, balances from scaled
balances and the normalised indexes, reserve flags / isolation / caps / rates columns,
emode.parquet and accounts.parquet, the rounding the verification settles on, the exact HF
and totals of every account, and the error when the snapshot cannot reproduce the Pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import eth_abi
import pytest
from eth_utils import to_checksum_address

from keeper.adapters.aave_v3 import (
    ROUNDING_MODELS,
    AaveV3Adapter,
    candidate_models,
    ray_mul_ceil,
    ray_mul_floor,
    ray_mul_half_up,
)
from keeper.adapters.abi import Function, function
from keeper.adapters.base import AdapterConfig, MarketAddresses
from keeper.chain import RpcStats
from keeper.errors import CallReverted
from keeper.pull import SnapshotMismatch, _exact_snapshot, summarize, verify_snapshot
from simulator.snapshot import MarketSnapshot

RAY = 10**27
WAD = 10**18
MAX = 2**256 - 1


def _addr(n: int) -> str:
    return to_checksum_address(n.to_bytes(20, "big"))


PROVIDER, POOL, ORACLE, DATA_PROVIDER, MULTICALL = (_addr(0xA0 + i) for i in range(5))
PRICE_SOURCE = _addr(0xEE)  # a v3.0 category's price source (an oracle "asset")


def _config(
    ltv: int,
    lt: int,
    bonus: int,
    decimals: int,
    *,
    frozen: bool = False,
    paused: bool = False,
    isolation_borrowable: bool = False,
    siloed: bool = False,
    borrow_cap: int = 0,
    supply_cap: int = 0,
    emode: int = 0,
    debt_ceiling: int = 0,
) -> int:
    word = ltv | lt << 16 | bonus << 32 | decimals << 48 | 1 << 56 | 1 << 58
    word |= frozen << 57 | paused << 60 | isolation_borrowable << 61 | siloed << 62
    word |= 1000 << 64 | borrow_cap << 80 | supply_cap << 116 | 1000 << 152
    word |= emode << 168 | debt_ceiling << 212
    return word


@dataclass
class FakeReserve:
    symbol: str
    asset: str
    rid: int
    decimals: int
    ltv: int
    lt: int
    bonus: int
    price: int
    income: int
    debt_index: int
    emode: int = 0  # v3.0 category bits
    extra: dict[str, Any] = field(default_factory=dict)
    isolation_total_debt: int = 0

    @property
    def a_token(self) -> str:
        return _addr(0x1000 + self.rid)

    @property
    def v_token(self) -> str:
        return _addr(0x2000 + self.rid)

    @property
    def s_token(self) -> str:
        return _addr(0x3000 + self.rid)

    def word(self) -> int:
        return _config(self.ltv, self.lt, self.bonus, self.decimals, emode=self.emode, **self.extra)


@dataclass
class FakeUser:
    address: str
    category: int
    supplied: dict[int, int]  # reserve id -> scaled aToken balance
    borrowed: dict[int, int]  # reserve id -> scaled variable debt
    stable: dict[int, int] = field(default_factory=dict)  # reserve id -> stable balance
    disabled: set[int] = field(default_factory=set)  # supplies not used as collateral

    def config_word(self) -> int:
        word = 0
        for i in self.supplied:
            if i not in self.disabled:
                word |= 1 << (2 * i + 1)
        for i in set(self.borrowed) | set(self.stable):
            word |= 1 << (2 * i)
        return word


@dataclass
class Category:
    ltv: int
    lt: int
    bonus: int
    label: str
    price_source: str = "0x" + "00" * 20
    collateral: int = 0  # bitmaps (v3.2+)
    borrowable: int = 0
    ltvzero: int = 0


class FakeAavePool:
    """One Aave market at one block: views of the Pool, tokens, oracle and Multicall3."""

    def __init__(
        self,
        release: str,
        reserves: list[FakeReserve],
        users: list[FakeUser],
        categories: dict[int, Category],
    ) -> None:
        self.release = release  # "v3.0" or "v3.7"
        self.reserves = reserves
        self.users = {u.address.lower(): u for u in users}
        self.categories = categories
        self.stats = RpcStats()
        self.hf_tamper: dict[str, int] = {}
        self.oracle_prices = {r.asset.lower(): r.price for r in reserves}
        self.oracle_prices[PRICE_SOURCE.lower()] = 100_010_000  # 1.0001 USD
        self.handlers: dict[bytes, tuple[Function, Callable[..., Any]]] = {}
        pool = [
            ("Pool", "getReservesList", lambda: [r.asset for r in reserves]),
            ("Pool", "getReserveData", self._reserve_data),
            ("Pool", "getReserveNormalizedIncome", lambda a: self._reserve(a).income),
            ("Pool", "getReserveNormalizedVariableDebt", lambda a: self._reserve(a).debt_index),
            ("Pool", "getUserConfiguration", lambda u: ((self._user(u).config_word(),),)),
            ("Pool", "getUserEMode", lambda u: self._user(u).category),
            ("Pool", "getUserAccountData", self._account_data),
            ("PoolVersioned", "POOL_REVISION", lambda: 1 if release == "v3.0" else 11),
            ("PoolVersioned", "getEModeCategoryData", self._emode_data),
        ]
        if release == "v3.7":
            pool += [
                ("PoolVersioned", "getEModeCategoryCollateralConfig", self._emode_config),
                ("PoolVersioned", "getEModeCategoryCollateralBitmap", self._bitmap("collateral")),
                ("PoolVersioned", "getEModeCategoryBorrowableBitmap", self._bitmap("borrowable")),
                ("PoolVersioned", "getEModeCategoryLtvzeroBitmap", self._bitmap("ltvzero")),
                ("PoolVersioned", "getEModeCategoryLabel", lambda i: self._category(i).label),
                ("PoolVersioned", "getIsEModeCategoryIsolated", lambda i: False),
            ]
        self.targets: dict[str, list[tuple[str, str, Callable[..., Any]]]] = {POOL: pool}
        self.targets[ORACLE] = [
            ("AaveOracle", "BASE_CURRENCY_UNIT", lambda: 10**8),
            ("AaveOracle", "getAssetPrice", lambda a: self.oracle_prices[a.lower()]),
            (
                "AaveOracle",
                "getAssetsPrices",
                lambda assets: [self.oracle_prices[a.lower()] for a in assets],
            ),
        ]
        for r in reserves:
            self.targets[r.asset] = [
                ("ERC20", "symbol", lambda r=r: r.symbol),
                ("ERC20", "decimals", lambda r=r: r.decimals),
            ]
            self.targets[r.a_token] = [
                ("ScaledBalanceToken", "scaledBalanceOf", self._scaled("supplied", r.rid))
            ]
            self.targets[r.v_token] = [
                ("ScaledBalanceToken", "scaledBalanceOf", self._scaled("borrowed", r.rid))
            ]
            self.targets[r.s_token] = [
                ("ScaledBalanceToken", "balanceOf", self._scaled("stable", r.rid))
            ]
        self.calls: list[str] = []

    # -- views ------------------------------------------------------------------------

    def _reserve(self, asset: str) -> FakeReserve:
        return next(r for r in self.reserves if r.asset.lower() == asset.lower())

    def _user(self, address: str) -> FakeUser:
        return self.users.get(address.lower()) or FakeUser(address, 0, {}, {})

    def _category(self, i: int) -> Category:
        return self.categories.get(i) or Category(0, 0, 0, "")

    def _scaled(self, kind: str, rid: int) -> Callable[[str], int]:
        return lambda user: int(getattr(self._user(user), kind).get(rid, 0))

    def _bitmap(self, kind: str) -> Callable[[int], int]:
        return lambda i: int(getattr(self._category(i), kind))

    def _reserve_data(self, asset: str) -> tuple[Any, ...]:
        r = self._reserve(asset)
        stable = r.s_token if self.release == "v3.0" else "0x" + "00" * 20
        return (
            (
                (r.word(),),
                r.income - 7,  # the stored index lags the normalised one
                35 * 10**24,
                r.debt_index - 9,
                52 * 10**24,
                71 * 10**24 if self.release == "v3.0" else 0,
                1_700_000_000,
                r.rid,
                r.a_token,
                stable,
                r.v_token,
                _addr(0x4000),
                0,
                0,
                r.isolation_total_debt,
            ),
        )

    def _emode_data(self, i: int) -> tuple[Any, ...]:
        c = self._category(i)
        return ((c.ltv, c.lt, c.bonus, c.price_source, c.label),)

    def _emode_config(self, i: int) -> tuple[Any, ...]:
        c = self._category(i)
        return ((c.ltv, c.lt, c.bonus),)

    def _account_data(self, user: str) -> tuple[int, ...]:
        u = self._user(user)
        tc = td = weighted = 0
        cat = self._category(u.category) if u.category else None
        emode_price = 0
        if self.release == "v3.0" and cat is not None and int(cat.price_source, 16):
            emode_price = self.oracle_prices[cat.price_source.lower()]
        for r in self.reserves:
            unit = 10**r.decimals
            in_category = cat is not None and (
                r.emode == u.category if self.release == "v3.0" else (cat.collateral >> r.rid) & 1
            )
            price = emode_price if emode_price and in_category else r.price
            scaled = u.supplied.get(r.rid, 0)
            if r.lt != 0 and scaled and r.rid not in u.disabled:
                if self.release == "v3.0":
                    value = (scaled * r.income + RAY // 2) // RAY * price // unit
                else:
                    value = scaled * r.income // RAY * price // unit
                tc += value
                weighted += value * (cat.lt if cat is not None and in_category else r.lt)
            owed = u.borrowed.get(r.rid, 0)
            if owed or u.stable.get(r.rid):
                if self.release == "v3.0":
                    amount = (owed * r.debt_index + RAY // 2) // RAY + u.stable.get(r.rid, 0)
                    td += price * amount // unit
                else:
                    amount = -(-owed * r.debt_index // RAY)
                    td += -(-amount * price // unit)
        if td == 0:
            hf = MAX
        elif self.release == "v3.0":
            avg = weighted // tc if tc else 0
            hf = (((tc * avg + 5000) // 10_000) * WAD + td // 2) // td
        else:
            hf = ((weighted * WAD + td // 2) // td) // 10_000
        hf += self.hf_tamper.get(user.lower(), 0)
        return (tc, td, 0, weighted // tc if tc else 0, 0, hf)

    # -- the chain --------------------------------------------------------------------

    def _answer(self, target: str, data: bytes) -> tuple[bool, bytes]:
        for contract, name, handler in self.targets.get(to_checksum_address(target), []):
            fn = function(contract, name)
            if data[:4] == fn.selector:
                args = eth_abi.decode(list(fn.input_types), data[4:]) if fn.input_types else ()
                out = handler(*args)
                self.calls.append(name)
                values = out if isinstance(out, tuple) else (out,)
                return True, eth_abi.encode(list(fn.output_types), list(values))
        return False, b""  # no such function: the contract reverts

    async def call(self, to: str, data: bytes, block: int, *, what: str = "") -> bytes:
        if to_checksum_address(to) == MULTICALL:
            calls = eth_abi.decode(["(address,bool,bytes)[]"], data[4:])[0]
            answers = [self._answer(t, d) for t, _, d in calls]
            for (_, allow, _), (ok, _) in zip(calls, answers, strict=True):
                if not ok and not allow:
                    raise CallReverted(f"{what} reverted")
            return eth_abi.encode(["(bool,bytes)[]"], [answers])
        ok, out = self._answer(to, data)
        if not ok:
            raise CallReverted(f"{what} reverted")
        return out


# -- two markets ---------------------------------------------------------------------------

WETH, WSTETH, USDC, DAI = (_addr(0xC0 + i) for i in range(4))
ALICE, BOB, CAROL, DUST, STABLE, LENDER = (_addr(0xD0 + i) for i in range(6))


def _reserves(release: str) -> list[FakeReserve]:
    v30 = release == "v3.0"
    return [
        FakeReserve(
            "WETH",
            WETH,
            0,
            18,
            8000,
            8250,
            10500,
            3_012_345_678_91,
            1_043_210_987 * 10**18 + 3,
            1_087_654_321 * 10**18 + 11,
            emode=1 if v30 else 0,
            extra={"supply_cap": 1_800_000, "borrow_cap": 1_400_000},
        ),
        FakeReserve(
            "wstETH",
            WSTETH,
            1,
            18,
            7850,
            8100,
            10600,
            3_512_345_678_91,
            1_002_345_678 * 10**18 + 5,
            1_010_000_017 * 10**18,
            emode=1 if v30 else 0,
            extra={"isolation_borrowable": True, "siloed": True, "debt_ceiling": 5_000_000_00},
            isolation_total_debt=1_234_56,
        ),
        FakeReserve(
            "USDC",
            USDC,
            2,
            6,
            7700,
            8000,
            10450,
            99_990_123,
            1_123_456_789 * 10**18 + 1,
            1_234_567_891 * 10**18 + 7,
            emode=2 if v30 else 0,
            extra={"frozen": True},
        ),
        FakeReserve(
            "DAI",
            DAI,
            3,
            18,
            6300,
            7700,
            10500,
            100_020_003,
            1_098_765_432 * 10**18 + 9,
            1_176_543_219 * 10**18 + 3,
            emode=2 if v30 else 0,
            extra={"paused": True},
        ),
    ]


def _users(release: str) -> list[FakeUser]:
    users = [
        # e-mode 1 (ETH): wstETH and WETH collateral, WETH debt
        FakeUser(ALICE, 1, {1: 10 * 10**18 + 12345, 0: 2 * 10**18 + 7}, {0: 9 * 10**18 + 3}),
        # no e-mode, two collaterals of different LTs, two debts
        FakeUser(BOB, 0, {0: 3 * 10**18 + 1, 2: 4_321_987_654}, {3: 2_100 * 10**18 + 17, 2: 5}),
        # e-mode 2 (stablecoins), a supply not used as collateral
        FakeUser(CAROL, 2, {2: 10_000 * 10**6 + 3, 0: 10**18}, {3: 9_000 * 10**18}, disabled={0}),
        # dust: the base-currency rounding of each value moves the HF far beyond 1e-9
        FakeUser(DUST, 0, {2: 1_234_567}, {3: 777_777_777_777_777_777}),
        FakeUser(LENDER, 0, {3: 5 * 10**18}, {}),
    ]
    if release == "v3.0":
        users.append(FakeUser(STABLE, 0, {0: 10**18}, {2: 100 * 10**6}, stable={2: 300_123_457}))
    return users


def _categories(release: str) -> dict[int, Category]:
    if release == "v3.0":
        return {
            1: Category(9000, 9300, 10100, "ETH correlated"),
            2: Category(9300, 9500, 10100, "Stablecoins", price_source=PRICE_SOURCE),
        }
    return {
        # WETH is borrowable but not collateral in category 1; wstETH's LTV is 0 there
        1: Category(
            9300, 9500, 10100, "ETH correlated", collateral=0b10, borrowable=0b11, ltvzero=0b10
        ),
        2: Category(9300, 9500, 10100, "Stablecoins", collateral=0b1100, borrowable=0b1100),
        # configured, used by nobody
        7: Category(5000, 6000, 10800, "Spare", collateral=0b1, borrowable=0b1),
    }


def _market(release: str) -> FakeAavePool:
    return FakeAavePool(release, _reserves(release), _users(release), _categories(release))


def _meta() -> dict[str, Any]:
    return {
        "protocol": "aave-v3",
        "chain_id": 1,
        "block_number": 123,
        "block_hash": "0x" + "cd" * 32,
        "timestamp": 1_700_000_000,
        "addresses": {"pool": POOL},
        "software_version": "test",
        "base_currency_unit": 10**8,
    }


async def _pull(market: FakeAavePool) -> tuple[MarketSnapshot, Any, AaveV3Adapter]:
    adapter = AaveV3Adapter(market, AdapterConfig(provider=PROVIDER, multicall3=MULTICALL))  # type: ignore[arg-type]
    adapter._addresses = MarketAddresses(PROVIDER, POOL, ORACLE, DATA_PROVIDER, MULTICALL)
    version = await adapter.read_version(123)
    reserves = await adapter.read_reserves(123)
    prices = await adapter.read_prices([r.asset for r in reserves], 123)
    accounts = sorted(u.lower() for u in market.users)
    found = await adapter.read_positions(accounts, reserves, 123)
    emode = await adapter.read_emode(sorted(set(found.emode.values())), reserves, 123)
    with_debt = sorted({p.account for p in found.positions if p.scaled_debt or p.stable_debt})
    data = await adapter.read_account_data(with_debt, 123)
    meta = dict(_meta(), pool_revision=version.pool_revision, emode_family=version.emode_family)
    snapshot, model = _exact_snapshot(
        adapter, meta, reserves, prices, found, {}, emode, version, data
    )
    return snapshot, model, adapter


@pytest.mark.parametrize(
    ("release", "family", "revision", "model"),
    [("v3.0", "per-reserve", 1, "v3.0"), ("v3.7", "liquid", 11, "v3.5+")],
)
def test_every_account_matches_the_pools_own_arithmetic(
    release: str, family: str, revision: int, model: str
) -> None:
    market = _market(release)
    snapshot, chosen, adapter = asyncio.run(_pull(market))
    assert adapter.version is not None
    assert adapter.version.emode_family == family and adapter.version.pool_revision == revision
    assert chosen.name == model
    assert snapshot.meta["hf_rounding"] == ROUNDING_MODELS[model].hf_rounding
    assert snapshot.meta["emode_family"] == family
    book = snapshot.book()
    hf, coll, debt = book.health_factor(), book.collateral_usd(), book.debt_usd()
    for i, account in enumerate(book.accounts):
        tc, td, _, _, _, chain_hf = market._account_data(account)
        assert coll[i] * 1e8 == pytest.approx(tc, rel=1e-11, abs=1e-6), account
        assert debt[i] * 1e8 == pytest.approx(td, rel=1e-11, abs=1e-6), account
        if td:
            assert hf[i] == pytest.approx(chain_hf / 1e18, rel=1e-12), account
        else:
            assert hf[i] == float("inf")
    # the other roundings do not reproduce this Pool: the dust account tells them apart
    for other in ROUNDING_MODELS.values():
        if other.name != model:
            attempt = dict(
                snapshot.meta,
                hf_rounding=other.hf_rounding,
                debt_value_rounding=other.debt_value_rounding,
            )
            found_other = MarketSnapshot.from_frames(
                attempt, snapshot.reserves, snapshot.positions, snapshot.accounts, snapshot.emode
            )
            data = {a: market._account_data(a) for a in (DUST, BOB)}
            assert verify_snapshot(found_other, data), other.name


def test_v3_0_categories_price_sources_and_stable_debt() -> None:
    snapshot, _, _ = asyncio.run(_pull(_market("v3.0")))
    em = snapshot.emode.set_index(["category", "asset"])
    assert set(em.index) == {(1, WETH), (1, WSTETH), (2, USDC), (2, DAI)}
    assert em.loc[(2, DAI), "price_source"] == PRICE_SOURCE
    assert em.loc[(2, DAI), "price_usd"] == 1.0001 and em.loc[(2, USDC), "price_usd"] == 1.0001
    assert em.loc[(1, WETH), "price_usd"] == pytest.approx(3012.34567891)  # no source
    assert em.loc[(1, WSTETH), "liquidation_threshold"] == 0.93
    assert em.loc[(1, WSTETH), "liquidation_bonus"] == pytest.approx(0.01)
    assert em.loc[(1, WSTETH), "label"] == "ETH correlated"
    assert bool(em["is_collateral"].all()) and bool(em["is_borrowable"].all())
    r = snapshot.reserves.set_index("symbol")
    assert list(r["emode_category"]) == [1, 1, 2, 2]
    assert r.loc["WETH", "stable_borrow_rate"] == pytest.approx(0.071)
    # stable debt is debt: 100 USDC variable (scaled) plus 300.123457 stable
    p = snapshot.positions.set_index(["account", "asset"])
    variable = ray_mul_half_up(100 * 10**6, _reserves("v3.0")[2].debt_index)
    assert p.loc[(STABLE, USDC), "debt"] == (variable + 300_123_457) / 10**6
    accounts = snapshot.accounts.set_index("account")["emode_category"]
    assert accounts[ALICE] == 1 and accounts[CAROL] == 2 and accounts[BOB] == 0
    # Carol's debt is priced by the category's source, not by the DAI feed
    book = snapshot.book()
    c = list(book.accounts).index(CAROL)
    assert book.account_prices()[c, book.assets.index(DAI)] == pytest.approx(1.0001)


def test_v3_7_bitmaps_and_unused_bits() -> None:
    snapshot, _, _ = asyncio.run(_pull(_market("v3.7")))
    em = snapshot.emode.set_index(["category", "asset"])
    assert set(em.index) == {(1, WETH), (1, WSTETH), (2, USDC), (2, DAI), (7, WETH)}
    assert not em.loc[(1, WETH), "is_collateral"] and em.loc[(1, WETH), "is_borrowable"]
    assert em.loc[(1, WSTETH), "is_collateral"] and em.loc[(1, WSTETH), "ltv_zero"]
    assert em.loc[(7, WETH), "label"] == "Spare" and em.loc[(7, WETH), "ltv"] == 0.5
    book = snapshot.book()
    k = list(book.class_category).index(1)
    assert book.class_ltv[k, book.assets.index(WSTETH)] == 0.0  # LTV-zero bitmap
    assert book.class_lt[k, book.assets.index(WSTETH)] == 0.95
    assert book.class_lt[k, book.assets.index(WETH)] == 0.825  # not in the bitmap
    r = snapshot.reserves.set_index("symbol")
    # v3.7 leaves isolation, siloed borrowing and e-mode bits unused: read as unset
    assert (
        not r.loc["wstETH", "borrowable_in_isolation"] and not r.loc["wstETH", "siloed_borrowing"]
    )
    assert r.loc["wstETH", "debt_ceiling_usd"] == 0.0
    assert r.loc["wstETH", "isolation_mode_total_debt_usd"] == 0.0
    assert r.loc["WETH", "stable_borrow_rate"] == 0.0


def test_reserve_columns_flags_caps_isolation_rates_indexes() -> None:
    snapshot, _, _ = asyncio.run(_pull(_market("v3.0")))
    r = snapshot.reserves.set_index("symbol")
    assert r.loc["WETH", "supply_cap"] == 1_800_000 and r.loc["WETH", "borrow_cap"] == 1_400_000
    assert r.loc["wstETH", "debt_ceiling_usd"] == 5_000_000.0  # 2 decimals
    assert r.loc["wstETH", "isolation_mode_total_debt_usd"] == 1234.56
    assert r.loc["wstETH", "borrowable_in_isolation"] and r.loc["wstETH", "siloed_borrowing"]
    assert r.loc["USDC", "is_frozen"] and not r.loc["USDC", "is_paused"]
    assert r.loc["DAI", "is_paused"] and r.loc["DAI", "is_active"]
    assert r.loc["WETH", "liquidity_rate"] == pytest.approx(0.035)
    assert r.loc["WETH", "variable_borrow_rate"] == pytest.approx(0.052)
    # the normalised indexes at the block (not the stored ones, which lag)
    assert r.loc["USDC", "liquidity_index"] == pytest.approx(1.123456789)
    assert r.loc["USDC", "variable_borrow_index"] == pytest.approx(1.234567891)
    s = summarize(snapshot)
    assert s["emode_family"] == "per-reserve"
    alice = list(snapshot.book().accounts).index(ALICE)
    assert s["emode"]["1"] == {
        "label": "ETH correlated",
        "accounts": 1,
        "accounts_with_debt": 1,
        "debt_usd": pytest.approx(snapshot.book().debt_usd()[alice]),
    }
    assert s["emode"]["2"]["label"] == "Stablecoins" and s["emode"]["2"]["accounts"] == 1
    assert s["emode"]["0"]["accounts"] == 4 and s["emode"]["0"]["accounts_with_debt"] == 3
    total = sum(v["debt_usd"] for v in s["emode"].values())
    assert total == pytest.approx(s["debt_usd"], rel=1e-12)


def test_a_pool_the_snapshot_cannot_reproduce_is_an_error_naming_the_account() -> None:
    market = _market("v3.7")
    market.hf_tamper[BOB.lower()] = 10**12  # 1e-6 off: not a rounding any release uses
    with pytest.raises(
        SnapshotMismatch, match=rf"account {BOB} at block 123: .*getUserAccountData"
    ):
        asyncio.run(_pull(market))


def test_the_family_comes_from_the_pool_not_from_settings() -> None:
    market = _market("v3.0")
    asyncio.run(_pull(market))
    # probed once each: the liquid getter fails on v3.0, so the bitmaps are never asked for
    assert "getEModeCategoryCollateralBitmap" not in market.calls
    assert "getEModeCategoryData" in market.calls


def test_index_math_and_candidate_order() -> None:
    a, b = 10**18 + 1, RAY + RAY // 3
    assert ray_mul_floor(a, b) == (a * b) // RAY
    assert ray_mul_ceil(a, b) == ray_mul_floor(a, b) + 1
    assert ray_mul_half_up(3, RAY // 2) == 2  # 1.5 rounds up
    assert ray_mul_half_up(1, RAY // 2 - 1) == 0
    assert ray_mul_ceil(7, RAY) == ray_mul_floor(7, RAY) == ray_mul_half_up(7, RAY) == 7
    assert candidate_models(1)[0].name == "v3.0"
    assert candidate_models(11)[0].name == "v3.5+"
    assert candidate_models(None)[0].name == "v3.5+"
    assert {m.name for m in candidate_models(6)} == set(ROUNDING_MODELS)
    half_up = ROUNDING_MODELS["v3.0"]
    assert half_up.collateral(3, RAY // 2) == 2 and half_up.debt(3, RAY // 2) == 2
    floor_ceil = ROUNDING_MODELS["v3.5+"]
    assert floor_ceil.collateral(3, RAY // 2) == 1 and floor_ceil.debt(3, RAY // 2) == 2
