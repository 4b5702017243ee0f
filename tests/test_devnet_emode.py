"""The devnet Pool's e-mode, interest accrual and caps against independent Python models.

- Every seeded account's ``getUserAccountData`` equals an exact-integer computation from raw
  reads at one block: scaled balances from the aToken / variable-debt views times the
  normalized indexes computed here from ``getReserveData`` (index, rate, lastUpdateTimestamp)
  and the block timestamp (MathUtils' linear and compounded interest, TokenMath's rounding),
  oracle prices, reserve configurations and the user's e-mode category (LT, LTV, collateral and
  LTV-zero bitmaps, isolated flag), with aave-v3-origin v3.7's rounding.
- Interest accrues over time (``evm_increaseTime``) exactly as the index formulas say.
- ``setUserEMode`` validates as v3.7's ValidationLogic.validateSetUserEMode; supply and borrow
  caps revert as ValidationLogic does; the removed isolation-mode bits are ignored.
- ``liquidationCall`` on drawn e-mode positions (hypothesis) repays, seizes, pays the
  protocol fee and books deficits as the cascade engine's rule
  ``simulator.cascade.rules.plan_liquidation`` says when given the category's bonus.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from keeper.devnet import DevnetError
from keeper.devnet.chain import Contract, RpcError
from keeper.devnet.deploy import MULTICALL3_ADDRESS
from keeper.devnet.market import EMODES, MARKET, encode_configuration
from keeper.devnet.seed import KIND_BORROW, KIND_COLLATERAL, Account, _encode_seed_call
from simulator.cascade.rules import FLAG_ALL_COLLATERAL, FLAG_INVALID, plan_liquidation

pytestmark = pytest.mark.integration

WAD = 10**18
RAY = 10**27
YEAR = 365 * 24 * 3600
MAX_UINT = 2**256 - 1
N = len(MARKET)
SYM = [s.symbol for s in MARKET]
RID = {s: i for i, s in enumerate(SYM)}
EMODE = {e.id: e for e in EMODES}
LIQUIDATION_CALL_TOPIC = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
USER_EMODE_SET_TOPIC = "0x" + keccak(text="UserEModeSet(address,uint8)").hex()


# --------------------------------------------------------------------------- Python models
def ray_mul(a: int, b: int) -> int:
    return (a * b + RAY // 2) // RAY


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def normalized_income(index: int, rate: int, last: int, now: int) -> int:
    """ReserveLogic.getNormalizedIncome: linear interest, half-up rayMul onto the index."""
    if last == now:
        return index
    return ray_mul(RAY + rate * (now - last) // YEAR, index)


def normalized_debt(index: int, rate: int, last: int, now: int) -> int:
    """ReserveLogic.getNormalizedDebt: MathUtils.calculateCompoundedInterest onto the index."""
    if last == now:
        return index
    x = rate * (now - last) // YEAR
    return ray_mul(RAY + x + ray_mul(x, x // 2 + ray_mul(x, x // 6)), index)


@dataclass(frozen=True)
class Category:
    ltv: int = 0
    lt: int = 0
    bonus: int = 0
    collateral_bitmap: int = 0
    ltvzero_bitmap: int = 0
    isolated: bool = False


def user_reserve_ltv(rid: int, reserve_ltv: int, category_id: int, c: Category) -> int:
    """ValidationLogic.getUserReserveLtv (v3.7)."""
    if category_id and (c.collateral_bitmap >> rid) & 1:
        return 0 if (c.ltvzero_bitmap >> rid) & 1 else c.ltv
    if category_id and c.isolated:
        return 0
    return reserve_ltv


def account_data(
    user_config: int,
    category_id: int,
    category: Category,
    prices: list[int],
    a_balances: list[int],
    debts: list[int],
) -> tuple[int, int, int, int, int, int]:
    """GenericLogic.calculateUserAccountData (v3.7, e-mode) + calculateAvailableBorrows."""
    if user_config == 0:
        return (0, 0, 0, 0, 0, MAX_UINT)
    total_coll = total_debt = weighted_ltv = weighted_lt = 0
    for rid, spec in enumerate(MARKET):
        borrowing = (user_config >> (2 * rid)) & 1
        collateral = (user_config >> (2 * rid + 1)) & 1
        unit = 10**spec.decimals
        if collateral and spec.liquidation_threshold:
            value = a_balances[rid] * prices[rid] // unit
            total_coll += value
            weighted_ltv += value * user_reserve_ltv(rid, spec.ltv, category_id, category)
            in_category = category_id and (category.collateral_bitmap >> rid) & 1
            weighted_lt += value * (category.lt if in_category else spec.liquidation_threshold)
        if borrowing:
            total_debt += ceil_div(debts[rid] * prices[rid], unit)
    hf = (
        MAX_UINT
        if total_debt == 0
        else ((weighted_lt * WAD + total_debt // 2) // total_debt) // 10_000
    )
    avg_ltv = weighted_ltv // total_coll if total_coll else 0
    avg_lt = weighted_lt // total_coll if total_coll else 0
    available = max(0, total_coll * avg_ltv // 10_000 - total_debt)
    return (total_coll, total_debt, available, avg_lt, avg_ltv, hf)


# --------------------------------------------------------------------------- chain helpers
class Reader:
    """Batched reads through Multicall3 at one block."""

    def __init__(self, devnet, block: int) -> None:
        self.rpc = devnet.rpc
        self.block = block
        self.mc = Contract(devnet.rpc, MULTICALL3_ADDRESS, "Multicall3")

    def many(self, calls: list[tuple[Contract, str, tuple[Any, ...]]]) -> list[Any]:
        out: list[Any] = []
        for start in range(0, len(calls), 400):
            chunk = calls[start : start + 400]
            packed = [(c.address, False, bytes.fromhex(c.encode(n, *a)[2:])) for c, n, a in chunk]
            results = self.mc.call("aggregate3", packed, block=self.block)
            for (contract, name, _), (ok, data) in zip(chunk, results, strict=True):
                assert ok, name
                fn = contract._fn(name)
                from keeper.devnet.chain import _type_str

                values = decode([_type_str(p) for p in fn["outputs"]], data)
                out.append(values[0] if len(values) == 1 else values)
        return out


def block_timestamp(rpc, block: int) -> int:
    return int(rpc.call("eth_getBlockByNumber", hex(block), False)["timestamp"], 16)


def read_category(pool: Contract, category_id: int, block: int) -> Category:
    if category_id == 0:
        return Category()
    ltv, lt, bonus = pool.call("getEModeCategoryCollateralConfig", category_id, block=block)
    return Category(
        ltv,
        lt,
        bonus,
        pool.call("getEModeCategoryCollateralBitmap", category_id, block=block),
        pool.call("getEModeCategoryLtvzeroBitmap", category_id, block=block),
        pool.call("getIsEModeCategoryIsolated", category_id, block=block),
    )


@dataclass
class ReserveState:
    token: str
    a_token: Contract
    v_token: Contract
    income: int
    debt_index: int
    price: int


def reserve_states(devnet, block: int) -> list[ReserveState]:
    """Per reserve, the normalized indexes computed here from getReserveData at ``block``."""
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    oracle = devnet.contract("AaveOracle", dep["oracle"])
    now = block_timestamp(devnet.rpc, block)
    out = []
    for symbol in SYM:
        token = dep["reserves"][symbol]["token"]
        rd = pool.call("getReserveData", token, block=block)
        liquidity_index, liquidity_rate, borrow_index, borrow_rate, last = (
            rd[1],
            rd[2],
            rd[3],
            rd[4],
            rd[6],
        )
        out.append(
            ReserveState(
                token,
                devnet.contract("DevnetScaledToken", rd[8]),
                devnet.contract("DevnetScaledToken", rd[10]),
                normalized_income(liquidity_index, liquidity_rate, last, now),
                normalized_debt(borrow_index, borrow_rate, last, now),
                oracle.call("getAssetPrice", token, block=block),
            )
        )
    return out


# --------------------------------------------------------------------------- account data
def test_every_seeded_account_matches_the_model(devnet) -> None:
    """All seeded accounts, e-mode ones included, at one block: getUserAccountData (all six
    fields) equals the model from raw reads, and the views agree with the model's indexes."""
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    block = devnet.rpc.block_number()
    reserves = reserve_states(devnet, block)
    for r in reserves:
        assert r.income == pool.call("getReserveNormalizedIncome", r.token, block=block)
        assert r.debt_index == pool.call("getReserveNormalizedVariableDebt", r.token, block=block)
        assert r.income > RAY and r.debt_index > RAY * 102 // 100
    categories = {e.id: read_category(pool, e.id, block) for e in EMODES}
    categories[0] = Category()
    reader = Reader(devnet, block)
    users = devnet.accounts
    calls: list[tuple[Contract, str, tuple[Any, ...]]] = []
    for user in users:
        calls += [
            (pool, "getUserConfiguration", (user,)),
            (pool, "getUserEMode", (user,)),
            (pool, "getUserAccountData", (user,)),
        ]
        for r in reserves:
            calls += [
                (r.a_token, "scaledBalanceOf", (user,)),
                (r.v_token, "scaledBalanceOf", (user,)),
            ]
    results = iter(reader.many(calls))
    in_emode = {1: 0, 2: 0}
    prices = [r.price for r in reserves]
    for user in users:
        (config,), category_id, got = next(results), next(results), next(results)
        a_balances, debts = [], []
        for r in reserves:
            scaled_a, scaled_v = next(results), next(results)
            a_balances.append(scaled_a * r.income // RAY)  # TokenMath: rayMulFloor
            debts.append(ceil_div(scaled_v * r.debt_index, RAY))  # rayMulCeil
        want = account_data(config, category_id, categories[category_id], prices, a_balances, debts)
        assert tuple(got) == want, user
        if category_id:
            in_emode[category_id] += 1
    book_emode = {a.address: a.emode for a in devnet.book.accounts}
    assert in_emode == {k: sum(1 for e in book_emode.values() if e == k) for k in in_emode}
    assert in_emode[1] >= 20 and in_emode[2] >= 5


def test_seeded_book_has_emode_share_and_hf_band(devnet) -> None:
    """The ETH-correlated category holds a third of the debt, its accounts sit at HF
    1.01-1.10 (with whales among them), the stablecoin category is used, events were emitted."""
    from keeper.devnet.seed import emode_debt_share

    share = emode_debt_share(devnet.book)
    assert share[1] == pytest.approx(1 / 3, rel=1e-6) and share[2] > 0.005
    pool = devnet.contract("Pool", devnet.deployment["pool"])
    eth = [a for a in devnet.book.accounts if a.emode == 1]
    for acct in eth:
        hf = pool.call("getUserAccountData", acct.address)[5] / WAD
        assert 1.005 < hf < 1.105, (acct.address, hf)
    sizes = sorted(
        sum(amt for rid, kind, amt in a.positions if kind == KIND_COLLATERAL) for a in eth
    )
    assert sizes[-1] > 20 * sizes[len(sizes) // 2]  # whales among them
    logs = devnet.rpc.call(
        "eth_getLogs",
        {
            "address": devnet.deployment["pool"],
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [USER_EMODE_SET_TOPIC],
        },
    )
    entered = {
        to_checksum_address("0x" + lg["topics"][1][-40:]): int(lg["data"], 16) for lg in logs
    }
    assert entered == {a.address: a.emode for a in devnet.book.accounts if a.emode}


# --------------------------------------------------------------------------- accrual
def test_interest_accrues_as_the_index_formulas_say(devnet_isolated) -> None:
    devnet = devnet_isolated
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    borrower = next(
        a
        for a in devnet.book.accounts
        if a.emode == 1 and any(k == KIND_BORROW for _, k, _ in a.positions)
    )
    weth, wsteth = RID["WETH"], RID["wstETH"]
    b0 = devnet.rpc.block_number()
    before = reserve_states(devnet, b0)
    debt0 = before[weth].v_token.call("balanceOf", borrower.address, block=b0)
    coll0 = before[wsteth].a_token.call("balanceOf", borrower.address, block=b0)
    hf0 = pool.call("getUserAccountData", borrower.address, block=b0)[5]
    days = 30
    devnet.rpc.call("evm_increaseTime", days * 86_400)
    devnet.rpc.mine()
    b1 = devnet.rpc.block_number()
    t0, t1 = block_timestamp(devnet.rpc, b0), block_timestamp(devnet.rpc, b1)
    assert t1 - t0 >= days * 86_400
    after = reserve_states(devnet, b1)
    for spec, r0, r1 in zip(MARKET, before, after, strict=True):
        assert r1.income == pool.call("getReserveNormalizedIncome", r1.token, block=b1)
        assert r1.debt_index == pool.call("getReserveNormalizedVariableDebt", r1.token, block=b1)
        dt = (t1 - t0) / YEAR
        # linear supply interest, compounded debt interest, at the listed rates
        assert r1.income / r0.income == pytest.approx(1 + float(spec.liquidity_rate) * dt, rel=1e-9)
        assert r1.debt_index / r0.debt_index == pytest.approx(
            math.exp(float(spec.variable_borrow_rate) * dt), rel=1e-7
        )
    scaled_coll, scaled_debt = pool.call(
        "getUserScaledBalances", dep["reserves"]["wstETH"]["token"], borrower.address, block=b1
    )
    debt1 = after[weth].v_token.call("balanceOf", borrower.address, block=b1)
    coll1 = after[wsteth].a_token.call("balanceOf", borrower.address, block=b1)
    assert (
        coll1
        == after[wsteth].a_token.call("scaledBalanceOf", borrower.address, block=b1)
        * (after[wsteth].income)
        // RAY
    )
    assert debt1 == ceil_div(
        after[weth].v_token.call("scaledBalanceOf", borrower.address, block=b1)
        * after[weth].debt_index,
        RAY,
    )
    assert scaled_debt == 0 and scaled_coll > 0
    assert debt1 > debt0 and coll1 > coll0
    assert debt1 / debt0 == pytest.approx(
        after[weth].debt_index / before[weth].debt_index, rel=1e-12
    )
    # debt grows faster than the wstETH collateral: the health factor falls
    assert pool.call("getUserAccountData", borrower.address, block=b1)[5] < hf0

    # an action stores the accrued index (ReserveLogic.updateState) and the timestamp
    user = devnet.rpc.accounts()[3]
    token = devnet.contract("DevnetERC20", dep["reserves"]["WETH"]["token"])
    token.transact("mint", user, 10**18, sender=user)
    token.transact("approve", pool.address, MAX_UINT, sender=user)
    receipt = pool.transact("supply", token.address, 10**18, user, 0, sender=user)
    b2 = int(receipt["blockNumber"], 16)
    rd = pool.call("getReserveData", token.address, block=b2)
    assert rd[6] == block_timestamp(devnet.rpc, b2)
    assert rd[1] == pool.call("getReserveNormalizedIncome", token.address, block=b2)
    assert rd[3] == pool.call("getReserveNormalizedVariableDebt", token.address, block=b2)
    scaled, _ = pool.call("getUserScaledBalances", token.address, user, block=b2)
    assert scaled == 10**18 * RAY // rd[1]  # TokenMath.getATokenMintScaledAmount: floor


# --------------------------------------------------------------------------- setUserEMode
def _funded_user(devnet, index: int) -> str:
    user = devnet.rpc.accounts()[index]
    pool = devnet.deployment["pool"]
    for symbol in SYM:
        token = devnet.contract("DevnetERC20", devnet.deployment["reserves"][symbol]["token"])
        token.transact("mint", user, 10**30, sender=user)
        token.transact("approve", pool, MAX_UINT, sender=user)
    return user


def test_set_user_emode_validation(devnet_isolated) -> None:
    devnet = devnet_isolated
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    tok = {s: dep["reserves"][s]["token"] for s in SYM}
    user = _funded_user(devnet, 4)
    pool.transact("supply", tok["wstETH"], 10 * 10**18, user, 0, sender=user)  # $35,000
    pool.transact("borrow", tok["USDC"], 1_000 * 10**6, 2, 0, user, sender=user)
    # USDC is not borrowable in the ETH category
    with pytest.raises(DevnetError, match=r"InvalidDebtInEmode\(.*, 1\)"):
        pool.transact("setUserEMode", 1, sender=user)
    with pytest.raises(DevnetError, match="InconsistentEModeCategory"):
        pool.transact("setUserEMode", 9, sender=user)
    pool.transact("repay", tok["USDC"], MAX_UINT, 2, user, sender=user)
    r = pool.transact("setUserEMode", 1, sender=user)
    topics = [lg["topics"] for lg in r["logs"] if lg["address"].lower() == pool.address.lower()]
    assert topics == [[USER_EMODE_SET_TOPIC, "0x" + user[2:].lower().rjust(64, "0")]]
    assert pool.call("getUserEMode", user) == 1
    r = pool.transact("setUserEMode", 1, sender=user)  # the current category: a no-op
    assert not [lg for lg in r["logs"] if lg["address"].lower() == pool.address.lower()]
    # the category's LTV (93%) and LT (95%) replace wstETH's (78.5% / 81%)
    tc, _, avail, lt, ltv, hf = pool.call("getUserAccountData", user)
    assert (lt, ltv) == (9500, 9300) and avail == tc * 9300 // 10_000
    with pytest.raises(DevnetError, match="NotBorrowableInEMode"):
        pool.transact("borrow", tok["USDC"], 10 * 10**6, 2, 0, user, sender=user)
    # borrow 90% of the collateral's value in WETH: allowed at the e-mode LTV only
    weth = 10 * 3500 * 9 // 10 * 10**18 // 3000
    pool.transact("borrow", tok["WETH"], weth, 2, 0, user, sender=user)
    hf = pool.call("getUserAccountData", user)[5]
    assert 1.05 < hf / WAD < 1.06
    # leaving the category would put HF at 0.81 / 0.9 < 1
    with pytest.raises(DevnetError, match="HealthFactorLowerThanLiquidationThreshold"):
        pool.transact("setUserEMode", 0, sender=user)
    # the isolated stablecoin category refuses collateral outside its bitmap
    with pytest.raises(DevnetError, match=r"InvalidDebtInEmode|InvalidCollateralInEmode"):
        pool.transact("setUserEMode", 2, sender=user)
    other = _funded_user(devnet, 5)
    pool.transact("supply", tok["WETH"], 10**18, other, 0, sender=other)
    pool.transact("supply", tok["USDC"], 1_000 * 10**6, other, 0, sender=other)
    with pytest.raises(DevnetError, match=r"InvalidCollateralInEmode\(.*, 2\)"):
        pool.transact("setUserEMode", 2, sender=other)
    pool.transact("setUserUseReserveAsCollateral", tok["WETH"], False, sender=other)
    pool.transact("setUserEMode", 2, sender=other)
    # ... and, inside it, enabling such collateral is refused (getUserReserveLtv == 0)
    with pytest.raises(DevnetError, match="UserHasAssetWithZeroLtv"):
        pool.transact("setUserUseReserveAsCollateral", tok["WETH"], True, sender=other)
    # the LTV-zero bitmap zeroes the category LTV of wstETH, not its LT
    admin = devnet.admin
    pool.transact("configureEModeCategoryLtvzeroBitmap", 1, 1 << RID["wstETH"], sender=admin)
    tc, _, avail, lt, ltv, hf2 = pool.call("getUserAccountData", user)
    assert (lt, ltv, avail) == (9500, 0, 0) and abs(hf2 - hf) < hf // 10**6
    with pytest.raises(DevnetError, match="LtvValidationFailed"):
        pool.transact("borrow", tok["WETH"], 10**15, 2, 0, user, sender=user)
    with pytest.raises(DevnetError, match="CallerNotPoolAdmin"):
        pool.transact("configureEModeCategoryIsolated", 1, True, sender=user)


# --------------------------------------------------------------------------- caps
def test_supply_and_borrow_caps(devnet_isolated) -> None:
    devnet = devnet_isolated
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    data = devnet.contract("AaveProtocolDataProvider", dep["data_provider"])
    link = MARKET[RID["LINK"]]
    token = dep["reserves"]["LINK"]["token"]
    user = _funded_user(devnet, 6)
    supplied = data.call("getATokenTotalSupply", token)
    cap = supplied // 10**18 + 100  # whole tokens: room for about 100 LINK more
    word = encode_configuration(link) | (cap << 116) | (50 << 80)
    pool.transact("setConfiguration", token, (word,), sender=devnet.admin)
    assert data.call("getReserveCaps", token) == (50, cap)
    with pytest.raises(DevnetError, match="SupplyCapExceeded"):
        pool.transact("supply", token, 101 * 10**18, user, 0, sender=user)
    pool.transact("supply", token, 99 * 10**18, user, 0, sender=user)
    pool.transact("supply", dep["reserves"]["USDC"]["token"], 10**12, user, 0, sender=user)
    borrowed = data.call("getTotalDebt", token)
    assert borrowed < 50 * 10**18
    with pytest.raises(DevnetError, match="BorrowCapExceeded"):
        pool.transact("borrow", token, 50 * 10**18 - borrowed + 10**18, 2, 0, user, sender=user)
    pool.transact("borrow", token, 10 * 10**18, 2, 0, user, sender=user)
    # v3.7 removed isolation mode: the debt-ceiling, isolation and siloed bits are ignored
    word |= (1_000 << 212) | (1 << 62)
    pool.transact("setConfiguration", token, (word,), sender=devnet.admin)
    pool.transact("borrow", token, 10**18, 2, 0, user, sender=user)
    pool.transact("borrow", dep["reserves"]["DAI"]["token"], 10**18, 2, 0, user, sender=user)
    assert pool.call("getReserveData", token)[14] == 0
    assert data.call("getDebtCeiling", token) == 0
    assert data.call("getSiloedBorrowing", token) is False


# --------------------------------------------------------------------------- liquidations
class Liquidations:
    def __init__(self, devnet) -> None:
        self.devnet = devnet
        self.rpc = devnet.rpc
        dep = devnet.deployment
        self.pool = Contract(self.rpc, dep["pool"], "Pool")
        self.tokens = [dep["reserves"][s]["token"] for s in SYM]
        self.feeds = [
            Contract(self.rpc, dep["reserves"][s]["feed"], "DevnetPriceFeed") for s in SYM
        ]
        self.admin = dep["deployer"]
        self.treasury = dep["treasury"]
        self.liquidator = self.rpc.accounts()[1]
        self._n = 0

    def new_user(self, positions: list[tuple[int, int, int]], emode: int) -> str:
        self._n += 1
        user = to_checksum_address(keccak(text=f"emode-liquidation-user-{self._n}")[12:])
        self.rpc.transact(
            {
                "from": self.admin,
                "to": self.pool.address,
                "data": _encode_seed_call([Account(user, positions, emode=emode)]),
                "gas": hex(5_000_000),
            }
        )
        return user

    def set_price(self, rid: int, price: int) -> None:
        self.feeds[rid].transact("setAnswer", price, sender=self.admin, gas=200_000)

    def balances(self, user: str) -> tuple[list[int], list[int]]:
        coll, debt = [], []
        for token in self.tokens:
            c, d = self.pool.call("getUserBalances", token, user)
            coll.append(c)
            debt.append(d)
        return coll, debt


@pytest.fixture(scope="module")
def liquidations(devnet) -> Iterator[Liquidations]:
    """Funded liquidator; rates set to 0 so the (non-unit) indexes hold still between the
    reads the engine is given and the liquidation's block (accrual is tested above)."""
    snap = devnet.rpc.snapshot()
    m = Liquidations(devnet)
    for token in m.tokens:
        m.pool.transact("setReserveRates", token, 0, 0, sender=m.admin, gas=300_000)
        rd = m.pool.call("getReserveData", token)
        assert rd[1] > RAY and rd[3] > RAY
    for token in m.tokens:
        erc20 = Contract(m.rpc, token, "DevnetERC20")
        erc20.transact("mint", m.liquidator, 10**40, sender=m.liquidator)
        erc20.transact("approve", m.pool.address, MAX_UINT, sender=m.liquidator)
    yield m
    assert devnet.rpc.revert(snap)


BASE_PRICES = [round(s.price_usd * 1e8) for s in MARKET]
AAVE = (2000.0, 0.95, 0.5, 1000.0)  # plan_liquidation's V3.3 constants


@st.composite
def emode_positions(draw: st.DrawFn) -> tuple[int, list[tuple[int, int, int]], list[int]]:
    """An e-mode account (category, positions in token units, prices) with HF mostly < 1."""
    category = draw(st.sampled_from([1, 2]))
    prices = list(BASE_PRICES)
    if category == 1:
        colls = [RID["wstETH"]] + ([RID["LINK"]] if draw(st.integers(0, 2)) == 0 else [])
        debts = [RID["WETH"]]
        prices[RID["wstETH"]] = int(BASE_PRICES[RID["wstETH"]] * draw(st.floats(0.85, 1.05)))
    else:
        stables = [RID["USDC"], RID["DAI"], RID["USDT"]]
        colls = draw(st.lists(st.sampled_from(stables), min_size=1, max_size=2, unique=True))
        rest = [r for r in stables if r not in colls]
        debts = draw(st.lists(st.sampled_from(rest), min_size=1, max_size=len(rest), unique=True))
    e = EMODE[category]
    positions: list[tuple[int, int, int]] = []
    weighted = 0.0
    for rid in colls:
        usd = math.exp(draw(st.floats(math.log(50.0), math.log(3e6))))
        amount = max(10, int(usd * 1e8 * 10 ** MARKET[rid].decimals / BASE_PRICES[rid]))
        positions.append((rid, KIND_COLLATERAL, amount))
        lt = (
            e.liquidation_threshold
            if SYM[rid] in e.collaterals
            else MARKET[rid].liquidation_threshold
        )
        weighted += amount * prices[rid] / 1e8 / 10 ** MARKET[rid].decimals * lt / 1e4
    hf = draw(st.one_of(st.floats(0.3, 1.0), st.floats(0.93, 0.999)))
    shares = [draw(st.floats(0.1, 1.0)) for _ in debts]
    for rid, share in zip(debts, shares, strict=True):
        usd = weighted / hf * share / sum(shares)
        amount = max(1, int(usd * 1e8 * 10 ** MARKET[rid].decimals / prices[rid]))
        positions.append((rid, KIND_BORROW, amount))
    return category, positions, prices


def _close(a: float, b: float, units: float = 3.0) -> bool:
    return abs(a - b) <= units + 1e-9 * max(abs(a), abs(b))


def _away(x: float, edge: float) -> bool:
    return abs(x - edge) > 1e-6 * max(1.0, abs(edge))


@settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(case=emode_positions(), data=st.data())
def test_emode_liquidation_matches_engine_rule(liquidations: Liquidations, case, data) -> None:
    m = liquidations
    category, positions, prices = case
    snap = m.rpc.snapshot()
    try:
        for rid, price in enumerate(prices):
            if price != BASE_PRICES[rid]:
                m.set_price(rid, price)
        user = m.new_user(positions, category)
        colls = [r for r, k, _ in positions if k == KIND_COLLATERAL]
        debts = [r for r, k, _ in positions if k == KIND_BORROW]
        c = data.draw(st.sampled_from(colls))
        d = data.draw(st.sampled_from(debts))
        coll, debt = m.balances(user)
        _, td, _, _, _, hf = m.pool.call("getUserAccountData", user)
        e = EMODE[category]
        in_category = SYM[c] in e.collaterals
        bonus_bps = e.liquidation_bonus if in_category else MARKET[c].liquidation_bonus
        fee_share = MARKET[c].liquidation_protocol_fee / 1e4
        unit_c, unit_d = 10 ** MARKET[c].decimals, 10 ** MARKET[d].decimals
        pc, pd = prices[c] / 1e8, prices[d] / 1e8
        # the engine's rule, in tokens and USD, with the category's bonus
        repay, seize, fee, flags = plan_liquidation(
            coll[c] / unit_c,
            debt[d] / unit_d,
            td / 1e8,
            hf / WAD,
            pc,
            pd,
            bonus_bps / 1e4 - 1.0,
            fee_share,
            *AAVE,
        )
        fraction = data.draw(st.one_of(st.just(None), st.floats(0.02, 1.3)))
        to_cover = MAX_UINT if fraction is None else max(1, int(debt[d] * fraction))
        if hf < WAD and flags != FLAG_INVALID and to_cover / unit_d < repay:
            # a smaller repayment than the largest allowed: same rule, scaled down, with the
            # dust rule on what it leaves
            repay = to_cover / unit_d
            seize = repay * pd * (bonus_bps / 1e4) / pc
            fee = (seize - seize / (bonus_bps / 1e4)) * fee_share
            flags = 0
            if (debt[d] / unit_d - repay) * pd < AAVE[3] or (coll[c] / unit_c - seize) * pc < AAVE[
                3
            ]:
                flags = FLAG_INVALID
        # stay clear of the rule's knife edges, where float and integer rounding may disagree
        coll_usd, debt_usd = coll[c] / unit_c * pc, debt[d] / unit_d * pd
        max_repay = debt[d] / unit_d
        if coll_usd >= AAVE[0] and debt_usd >= AAVE[0] and hf / WAD > AAVE[1]:
            max_repay = min(max_repay, td / 1e8 * AAVE[2] / pd)
        asked = min(to_cover / unit_d, max_repay)
        for x, edge in (
            (coll_usd, AAVE[0]),
            (debt_usd, AAVE[0]),
            (hf / WAD, AAVE[1]),
            (hf / WAD, 1.0),
            (debt_usd, td / 1e8 * AAVE[2]),
            (asked, max_repay) if asked != max_repay else (1.0, 0.0),
            (asked * pd * bonus_bps / 1e4 / pc, coll[c] / unit_c),
            ((debt[d] / unit_d - repay) * pd, AAVE[3]),
            ((coll[c] / unit_c - seize) * pc, AAVE[3]),
        ):
            assume(_away(x, edge))
        treasury_before = m.pool.call("getUserBalances", m.tokens[c], m.treasury)[0]
        deficits_before = [m.pool.call("getReserveDeficit", t) for t in m.tokens]
        tx = {
            "from": m.liquidator,
            "to": m.pool.address,
            "data": m.pool.encode(
                "liquidationCall", m.tokens[c], m.tokens[d], user, to_cover, False
            ),
            "gas": hex(3_000_000),
        }
        try:
            m.rpc.call("eth_call", tx, "latest")
        except RpcError as exc:
            error = m.pool.decode_error(exc.data) or str(exc)
            if hf >= WAD:
                assert error == "HealthFactorNotBelowThreshold()"
            else:
                assert error == "MustNotLeaveDust()" and flags == FLAG_INVALID, error
            event(f"cat={category} reverts {error}")
            return
        assert hf < WAD and flags != FLAG_INVALID
        receipt = m.rpc.transact(tx)
        (liq,) = [lg for lg in receipt["logs"] if lg["topics"][0] == LIQUIDATION_CALL_TOPIC]
        repaid, to_liquidator, _, _ = decode(
            ["uint256", "uint256", "address", "bool"], bytes.fromhex(liq["data"][2:])
        )
        coll_after, debt_after = m.balances(user)
        fee_paid = m.pool.call("getUserBalances", m.tokens[c], m.treasury)[0] - treasury_before
        lost = coll[c] - coll_after[c]
        assert _close(repaid, repay * unit_d), (repaid, repay * unit_d)
        assert _close(lost, seize * unit_c), (lost, seize * unit_c)
        assert _close(to_liquidator + fee_paid, seize * unit_c)
        assert _close(fee_paid, fee * unit_c), (fee_paid, fee * unit_c)
        # deficit: when the account's only collateral is gone, every remaining debt
        deficits = [
            m.pool.call("getReserveDeficit", t) - b
            for t, b in zip(m.tokens, deficits_before, strict=True)
        ]
        if flags & FLAG_ALL_COLLATERAL and len(colls) == 1:
            for rid in debts:
                left = debt[rid] - (repaid if rid == d else 0)
                assert _close(deficits[rid], left), (rid, deficits[rid], left)
                assert debt_after[rid] == 0
        else:
            assert not any(deficits)
        event(f"cat={category} bonus={bonus_bps} flags={flags} deficit={any(deficits)}")
    finally:
        assert m.rpc.revert(snap)
