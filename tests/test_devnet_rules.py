"""The devnet Pool against independent Python models of Aave's rules.

- ``getUserAccountData`` equals an exact-integer computation of aave-v3-origin v3.7's
  GenericLogic (collateral value rounded down, debt value rounded up, HF =
  ((sum(value x LT) x 1e18 + debt / 2) / debt) / 1e4), for hypothesis-generated positions
  and prices.
- ``liquidationCall`` follows Aave V3.3's rules as written in aave-v3-origin v3.7's
  LiquidationLogic: close factor (50% of the total debt only when the reserve's collateral and
  debt are both >= $2,000, HF > 0.95 and the reserve's debt is over half the total; otherwise
  all of it), dust rule (MustNotLeaveDust), bonus, protocol fee to the treasury, deficit and
  ``DeficitCreated`` when collateral runs out, with v3.7's rounding (debt values rounded up,
  seized collateral percentMulFloor, debt needed percentDivCeil, bonus base percentDivFloor,
  fee percentMulCeil; the fee counted in the collateral leftover of the dust rule).

Every example runs inside its own evm_snapshot / evm_revert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keeper.devnet import DevnetError
from keeper.devnet.chain import Contract, RpcError
from keeper.devnet.market import MARKET, encode_configuration
from keeper.devnet.seed import (
    KIND_BORROW,
    KIND_COLLATERAL,
    KIND_SUPPLY_ONLY,
    Account,
    _encode_seed_call,
)

pytestmark = pytest.mark.integration

WAD = 10**18
RAY = 10**27
MAX_UINT = 2**256 - 1
N = len(MARKET)
SYM = [s.symbol for s in MARKET]
LIQUIDATION_CALL_TOPIC = "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286"
DEFICIT_TOPIC = "0x" + keccak(text="DeficitCreated(address,address,uint256)").hex()
USED_AS_COLLATERAL_ENABLED_TOPIC = (
    "0x" + keccak(text="ReserveUsedAsCollateralEnabled(address,address)").hex()
)
SUPPLY_TOPIC = "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61"


# --------------------------------------------------------------------------- Python models
@dataclass
class Position:
    """One account in token units: collateral balance, debt, collateral flag per reserve id."""

    coll: dict[int, int] = field(default_factory=dict)
    debt: dict[int, int] = field(default_factory=dict)
    enabled: set[int] = field(default_factory=set)


def account_data(p: Position, prices: list[int]) -> tuple[int, int, int, int, int, int]:
    """aave-v3-origin v3.7 GenericLogic.calculateUserAccountData + calculateAvailableBorrows."""
    if not any(p.debt.values()) and not (p.enabled & {r for r, c in p.coll.items() if c}):
        return (0, 0, 0, 0, 0, MAX_UINT)
    total_coll = total_debt = weighted_ltv = weighted_lt = 0
    for rid in range(N):
        spec = MARKET[rid]
        unit = 10**spec.decimals
        if rid in p.enabled and p.coll.get(rid, 0) and spec.liquidation_threshold:
            value = p.coll[rid] * prices[rid] // unit  # round down
            total_coll += value
            weighted_ltv += value * spec.ltv
            weighted_lt += value * spec.liquidation_threshold
        if p.debt.get(rid, 0):
            total_debt += -(-p.debt[rid] * prices[rid] // unit)  # round up
    hf = (
        MAX_UINT
        if total_debt == 0
        else ((weighted_lt * WAD + total_debt // 2) // total_debt) // 10_000
    )
    avg_ltv = weighted_ltv // total_coll if total_coll else 0
    avg_lt = weighted_lt // total_coll if total_coll else 0
    available = max(0, total_coll * avg_ltv // 10_000 - total_debt)
    return (total_coll, total_debt, available, avg_lt, avg_ltv, hf)


def percent_mul(v: int, p: int) -> int:
    """PercentageMath.percentMul (half up): still used for the close factor in v3.7."""
    return (v * p + 5_000) // 10_000


def percent_div(v: int, p: int) -> int:
    """PercentageMath.percentDiv (half up): v3.3 to v3.6 only, kept to show the difference."""
    return (v * 10_000 + p // 2) // p


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def percent_mul_floor(v: int, p: int) -> int:
    return v * p // 10_000


def percent_mul_ceil(v: int, p: int) -> int:
    return ceil_div(v * p, 10_000)


def percent_div_floor(v: int, p: int) -> int:
    return v * 10_000 // p


def percent_div_ceil(v: int, p: int) -> int:
    return ceil_div(v * 10_000, p)


@dataclass
class Outcome:
    error: str | None = None
    debt_repaid: int = 0
    collateral_to_liquidator: int = 0
    fee: int = 0
    deficits: dict[int, int] = field(default_factory=dict)
    after: Position | None = None
    close_factor_capped: bool = False


def liquidate(p: Position, prices: list[int], c: int, d: int, debt_to_cover: int) -> Outcome:
    """aave-v3-origin v3.7 LiquidationLogic.executeLiquidationCall on the model.

    Read against the v3.7 source (docs/3.7/Aave-v3.7-changelog.md, liquidation-rounding.md):
    validateLiquidationCall only requires the collateral flag (not LT != 0); debt values round
    up (MathUtils.mulDivCeil); the collateral math uses explicit floor/ceil; the dust rule's
    collateral leftover excludes the protocol fee; ``hasNoCollateralLeft`` compares the value
    of the collateral consumed (to the liquidator plus the fee) with the total collateral and
    then also clears the collateral flag.
    """
    total_coll, total_debt, _, _, _, hf = account_data(p, prices)
    if hf >= WAD:
        return Outcome("HealthFactorNotBelowThreshold")
    cs, ds = MARKET[c], MARKET[d]
    if c not in p.enabled or not p.coll.get(c, 0):
        return Outcome("CollateralCannotBeLiquidated")
    debt = p.debt.get(d, 0)
    if debt == 0:
        return Outcome("SpecifiedCurrencyNotBorrowedByUser")
    coll = p.coll[c]
    pc, pd, uc, ud = prices[c], prices[d], 10**cs.decimals, 10**ds.decimals
    debt_base, coll_base = ceil_div(debt * pd, ud), coll * pc // uc
    max_debt, capped = debt, False
    if coll_base >= 2000 * 10**8 and debt_base >= 2000 * 10**8 and hf > 95 * WAD // 100:
        half_total = percent_mul(total_debt, 5_000)
        if debt_base > half_total:
            max_debt, capped = half_total * ud // pd, True
    actual = min(debt_to_cover, max_debt)
    max_coll = percent_mul_floor(pd * actual * uc // (pc * ud), cs.liquidation_bonus)
    if max_coll > coll:
        amount = coll
        actual = percent_div_ceil(pc * amount * ud // (pd * uc), cs.liquidation_bonus)
    else:
        amount = max_coll
    fee = 0
    if cs.liquidation_protocol_fee:
        fee = percent_mul_ceil(
            amount - percent_div_floor(amount, cs.liquidation_bonus), cs.liquidation_protocol_fee
        )
        amount -= fee
    if actual < debt and amount + fee < coll:
        debt_left = ceil_div((debt - actual) * pd, ud) >= 1000 * 10**8
        coll_left = (coll - amount - fee) * pc // uc >= 1000 * 10**8
        if not (debt_left and coll_left):
            return Outcome("MustNotLeaveDust")
    after = Position(dict(p.coll), dict(p.debt), set(p.enabled))
    after.coll[c] = coll - amount - fee
    consumed = min(amount + fee, coll)
    no_collateral_left = consumed * pc // uc == total_coll
    if consumed == coll or no_collateral_left:
        after.enabled.discard(c)
    deficits: dict[int, int] = {}
    after.debt[d] = 0 if no_collateral_left else debt - actual
    if no_collateral_left and debt - actual:
        deficits[d] = debt - actual
    if no_collateral_left:
        for rid, amt in p.debt.items():
            if rid != d and amt:
                deficits[rid] = amt
                after.debt[rid] = 0
    return Outcome(None, actual, amount, fee, deficits, after, capped)


# --------------------------------------------------------------------------- chain helpers
class Market:
    """The devnet handle plus the few calls these tests need."""

    def __init__(self, devnet) -> None:
        self.devnet = devnet
        self.rpc = devnet.rpc
        dep = devnet.deployment
        self.pool = Contract(self.rpc, dep["pool"], "Pool")
        self.tokens = [dep["reserves"][s]["token"] for s in SYM]
        self.feeds = [
            Contract(self.rpc, dep["reserves"][s]["feed"], "DevnetPriceFeed") for s in SYM
        ]
        self.erc20 = [Contract(self.rpc, t, "DevnetERC20") for t in self.tokens]
        self.admin = dep["deployer"]
        self.treasury = dep["treasury"]
        self.liquidator = self.rpc.accounts()[1]
        self._n = 0

    def new_user(self, p: Position) -> str:
        self._n += 1
        user = to_checksum_address(keccak(text=f"rules-test-user-{self._n}")[12:])
        positions = []
        for rid, amount in sorted(p.coll.items()):
            if amount:
                kind = KIND_COLLATERAL if rid in p.enabled else KIND_SUPPLY_ONLY
                positions.append((rid, kind, amount))
        positions += [(rid, KIND_BORROW, a) for rid, a in sorted(p.debt.items()) if a]
        if positions:
            self.rpc.transact(
                {
                    "from": self.admin,
                    "to": self.pool.address,
                    "data": _encode_seed_call([Account(user, positions)]),
                    "gas": hex(5_000_000),
                }
            )
        return user

    def set_prices(self, prices: list[int]) -> None:
        for rid, price in enumerate(prices):
            if self.feeds[rid].call("latestAnswer") != price:
                self.feeds[rid].transact("setAnswer", price, sender=self.admin, gas=200_000)

    def balances(self, user: str) -> Position:
        p = Position()
        (cfg,) = self.pool.call("getUserConfiguration", user)
        for rid, token in enumerate(self.tokens):
            coll, debt = self.pool.call("getUserBalances", token, user)
            if coll:
                p.coll[rid] = coll
            if debt:
                p.debt[rid] = debt
            if (cfg >> (2 * rid + 1)) & 1:
                p.enabled.add(rid)
            assert bool((cfg >> (2 * rid)) & 1) == bool(debt), (rid, cfg, debt)
        return p

    def liquidation_call(self, c: int, d: int, user: str, amount: int, receive_a_token: bool):
        tx = {
            "from": self.liquidator,
            "to": self.pool.address,
            "data": self.pool.encode(
                "liquidationCall", self.tokens[c], self.tokens[d], user, amount, receive_a_token
            ),
            "gas": hex(3_000_000),
        }
        try:
            self.rpc.call("eth_call", tx, "latest")
        except RpcError as exc:
            return error_name(exc), None
        return None, self.rpc.transact(tx)


ERRORS = {
    "0x" + keccak(text=f"{name}()")[:4].hex(): name
    for name in (
        "HealthFactorNotBelowThreshold",
        "CollateralCannotBeLiquidated",
        "SpecifiedCurrencyNotBorrowedByUser",
        "MustNotLeaveDust",
        "SelfLiquidation",
    )
}


def error_name(exc: RpcError) -> str:
    data = exc.data if isinstance(exc.data, str) else (exc.data or {}).get("data", "")
    return ERRORS.get(str(data)[:10], f"unknown revert {data!r}: {exc}")


def _reset_snapshot(rpc, snap: str) -> str:
    assert rpc.revert(snap)
    return rpc.snapshot()


@pytest.fixture(scope="module")
def market(devnet) -> Iterator[Market]:
    """The devnet with a funded liquidator (anvil account 1), reverted after the module.

    Every reserve is put at indexes of 1 ray and rates of 0, so balances are the token amounts
    the models here work in (the same rules at accruing indexes, with the scaled rounding, are
    tested in test_devnet_emode.py)."""
    snap = devnet.rpc.snapshot()
    m = Market(devnet)
    for token in m.tokens:
        m.pool.transact("setReserveRates", token, 0, 0, sender=m.admin, gas=300_000)
        m.pool.transact("setReserveIndexes", token, RAY, RAY, sender=m.admin, gas=300_000)
    for token in m.erc20:
        token.transact("mint", m.liquidator, 10**40, sender=m.liquidator)
        token.transact("approve", m.pool.address, MAX_UINT, sender=m.liquidator)
    yield m
    assert devnet.rpc.revert(snap)


@pytest.fixture
def isolated(market: Market) -> Iterator[Market]:
    snap = market.rpc.snapshot()
    yield market
    assert market.rpc.revert(snap)


BASE_PRICES = [round(s.price_usd * 1e8) for s in MARKET]


def units(rid: int, usd: float, prices: list[int] = BASE_PRICES) -> int:
    return int(usd * 10**8 * 10 ** MARKET[rid].decimals) // prices[rid]


# --------------------------------------------------------------------------- strategies
@st.composite
def positions(draw: st.DrawFn, max_debts: int = 2) -> tuple[Position, list[int]]:
    p = Position()
    coll_ids = draw(st.lists(st.integers(0, N - 1), min_size=1, max_size=3, unique=True))
    debt_ids = draw(
        st.lists(
            st.integers(0, N - 1).filter(lambda r: r not in coll_ids),
            min_size=0,
            max_size=max_debts,
            unique=True,
        )
    )
    prices = [
        max(1, int(BASE_PRICES[r] * draw(st.floats(0.05, 3.0))))
        if draw(st.booleans())
        else BASE_PRICES[r]
        for r in range(N)
    ]
    for rid in coll_ids:
        usd = draw(st.floats(0.01, 5e6))
        p.coll[rid] = max(1, units(rid, usd, prices))
        if draw(st.integers(0, 5)):  # mostly enabled as collateral
            p.enabled.add(rid)
    for rid in debt_ids:
        usd = draw(st.floats(0.01, 4e6))
        p.debt[rid] = max(1, units(rid, usd, prices))
    return p, prices


@st.composite
def near_liquidation(draw: st.DrawFn) -> tuple[Position, list[int]]:
    """Positions whose health factor is drawn between 0.3 and 1.1 (mostly liquidatable)."""
    p, prices = draw(positions(max_debts=0))
    p.enabled |= {draw(st.sampled_from(sorted(p.coll)))}
    weighted_usd = sum(
        p.coll[r]
        * prices[r]
        / 10 ** MARKET[r].decimals
        / 1e8
        * MARKET[r].liquidation_threshold
        / 1e4
        for r in p.enabled
    )
    hf = draw(st.one_of(st.floats(0.3, 1.1), st.floats(0.93, 0.97)))
    debt_ids = draw(
        st.lists(
            st.integers(0, N - 1).filter(lambda r: r not in p.coll),
            min_size=1,
            max_size=2,
            unique=True,
        )
    )
    shares = [draw(st.floats(0.05, 1.0)) for _ in debt_ids]
    for rid, share in zip(debt_ids, shares, strict=True):
        p.debt[rid] = max(1, units(rid, weighted_usd / hf * share / sum(shares), prices))
    return p, prices


HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# --------------------------------------------------------------------------- account data
@HYPOTHESIS
@given(case=positions())
def test_user_account_data_matches_v37_formula(market: Market, case) -> None:
    p, prices = case
    snap = market.rpc.snapshot()
    try:
        market.set_prices(prices)
        user = market.new_user(p)
        assert market.pool.call("getUserAccountData", user) == account_data(p, prices)
        assert market.balances(user) == p
    finally:
        assert market.rpc.revert(snap)


def test_account_data_rounds_like_v37_not_v30(isolated: Market) -> None:
    """A multi-collateral account where v3.0's rounding (average LT in whole bps) differs."""
    p = Position({0: 10**18 + 12345, 3: 7 * 10**18 + 1}, {4: 2_000_000_001}, {0, 3})
    user = isolated.new_user(p)
    got = isolated.pool.call("getUserAccountData", user)
    assert got == account_data(p, BASE_PRICES)
    tc, td, _, _, _, _ = got
    v30_avg_lt = (3000 * 10**8 * 8300 + 105 * 10**8 * 6800) // tc  # whole bps, v3.0 style
    v30_hf = (tc * v30_avg_lt // 10_000) * WAD // td
    assert got[5] != v30_hf


# --------------------------------------------------------------------------- liquidations
def check_liquidation(
    m: Market, p: Position, prices: list[int], c: int, d: int, amount: int, receive: bool
) -> Outcome:
    m.set_prices(prices)
    user = m.new_user(p)
    expected = liquidate(p, prices, c, d, amount)
    treasury_before = m.pool.call("getUserBalances", m.tokens[c], m.treasury)[0]
    liquidator_coll_before = m.erc20[c].call("balanceOf", m.liquidator)
    liquidator_a_before = m.pool.call("getUserBalances", m.tokens[c], m.liquidator)[0]
    liquidator_debt_before = m.erc20[d].call("balanceOf", m.liquidator)
    deficits_before = [m.pool.call("getReserveDeficit", t) for t in m.tokens]
    liquidator_config_before = m.pool.call("getUserConfiguration", m.liquidator)
    error, receipt = m.liquidation_call(c, d, user, amount, receive)
    assert error == expected.error
    if error is not None:
        assert m.balances(user) == p
        return expected
    assert receipt is not None
    logs = [lg for lg in receipt["logs"] if lg["address"].lower() == m.pool.address.lower()]
    liq = [lg for lg in logs if lg["topics"][0] == LIQUIDATION_CALL_TOPIC]
    assert len(liq) == 1
    topics = liq[0]["topics"]
    assert [to_checksum_address("0x" + t[-40:]) for t in topics[1:]] == [
        m.tokens[c],
        m.tokens[d],
        user,
    ]
    debt_to_cover, liquidated, liquidator, received = decode(
        ["uint256", "uint256", "address", "bool"], bytes.fromhex(liq[0]["data"][2:])
    )
    assert (debt_to_cover, liquidated) == (expected.debt_repaid, expected.collateral_to_liquidator)
    assert to_checksum_address(liquidator) == m.liquidator and received is receive
    created = {}
    for lg in logs:
        if lg["topics"][0] == DEFICIT_TOPIC:
            assert to_checksum_address("0x" + lg["topics"][1][-40:]) == user
            rid = m.tokens.index(to_checksum_address("0x" + lg["topics"][2][-40:]))
            created[rid] = decode(["uint256"], bytes.fromhex(lg["data"][2:]))[0]
    assert created == expected.deficits
    for rid, token in enumerate(m.tokens):
        assert m.pool.call("getReserveDeficit", token) - deficits_before[
            rid
        ] == expected.deficits.get(rid, 0)
    after = m.balances(user)
    want = expected.after
    assert want is not None
    assert after.coll == {r: a for r, a in want.coll.items() if a}
    assert after.debt == {r: a for r, a in want.debt.items() if a}
    assert after.enabled == want.enabled
    assert (
        m.pool.call("getUserBalances", m.tokens[c], m.treasury)[0] - treasury_before == expected.fee
    )
    assert (
        liquidator_debt_before - m.erc20[d].call("balanceOf", m.liquidator) == expected.debt_repaid
    )
    if receive:
        got = m.pool.call("getUserBalances", m.tokens[c], m.liquidator)[0] - liquidator_a_before
    else:
        got = m.erc20[c].call("balanceOf", m.liquidator) - liquidator_coll_before
    assert got == expected.collateral_to_liquidator
    # v3.6+: aTokens a liquidator receives are not enabled as its collateral
    assert m.pool.call("getUserConfiguration", m.liquidator) == liquidator_config_before
    assert USED_AS_COLLATERAL_ENABLED_TOPIC not in [lg["topics"][0] for lg in logs]
    return expected


@settings(HYPOTHESIS, max_examples=60)
@given(case=st.one_of(near_liquidation(), positions()), data=st.data())
def test_liquidation_call_matches_v37_model(market: Market, case, data) -> None:
    p, prices = case
    enabled = sorted(p.enabled)
    c = data.draw(
        st.sampled_from(enabled)
        if enabled and data.draw(st.integers(0, 7))
        else st.sampled_from(sorted(p.coll))
    )
    debts = sorted(p.debt) or [data.draw(st.integers(0, N - 1))]
    d = data.draw(st.sampled_from(debts))
    debt = p.debt.get(d, 1)
    amount = data.draw(
        st.one_of(st.just(MAX_UINT), st.integers(1, max(1, debt)), st.integers(1, 2 * debt))
    )
    receive = data.draw(st.booleans())
    snap = market.rpc.snapshot()
    try:
        out = check_liquidation(market, p, prices, c, d, amount, receive)
        event(
            f"{out.error} capped={out.close_factor_capped} deficit={bool(out.deficits)} fee={out.fee > 0}"
        )
    finally:
        assert market.rpc.revert(snap)


def test_close_factor_half_of_total_debt_above_095(isolated: Market) -> None:
    # $10,000 WETH, $8,500 USDC debt: HF = 0.83 x 10000 / 8500 = 0.976 (> 0.95)
    p = Position({0: units(0, 10_000)}, {4: units(4, 8_500)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, False)
    assert out.error is None and out.close_factor_capped
    assert out.debt_repaid == units(4, 4_250)  # 50% of the total debt
    assert out.fee > 0 and out.after is not None and out.after.debt[4] == units(4, 4_250)


def test_close_factor_full_debt_at_or_below_095(isolated: Market) -> None:
    # HF = 0.83 x 10000 / 9000 = 0.922 (<= 0.95): the whole reserve debt can go
    p = Position({0: units(0, 10_000)}, {4: units(4, 9_000)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, False)
    assert out.error is None and not out.close_factor_capped
    assert out.debt_repaid == units(4, 9_000)
    assert out.after is not None and out.after.debt[4] == 0 and out.after.coll[0] > 0


def test_close_factor_full_debt_for_small_positions(isolated: Market) -> None:
    # HF 0.976 but only $1,500 of debt: below the $2,000 threshold, all of it can go
    p = Position({0: units(0, 1_764)}, {4: units(4, 1_500)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, True)
    assert out.error is None and not out.close_factor_capped and out.debt_repaid == units(4, 1_500)


def test_close_factor_not_capped_when_reserve_debt_is_minor(isolated: Market) -> None:
    # two debts, the USDC one is under half the total: it can be repaid in full at HF > 0.95
    p = Position({0: units(0, 20_000)}, {4: units(4, 7_000), 5: units(5, 10_000)}, {0})
    _, _, _, _, _, hf = account_data(p, BASE_PRICES)
    assert 0.95 * WAD < hf < WAD
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, False)
    assert out.error is None and out.debt_repaid == units(4, 7_000)


def test_dust_rule_reverts_must_not_leave_dust(isolated: Market) -> None:
    # HF 0.922; repaying all but $500 of the debt would leave dust
    p = Position({0: units(0, 10_000)}, {4: units(4, 9_000)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, units(4, 8_500), False)
    assert out.error == "MustNotLeaveDust"
    # leaving >= $1,000 of debt and of collateral is allowed
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, units(4, 5_000), False)
    assert out.error is None


def test_protocol_fee_goes_to_treasury(isolated: Market) -> None:
    p = Position({0: units(0, 10_000)}, {4: units(4, 9_000)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, units(4, 5_000), False)
    # 5,000 USDC at $3,000/ETH with a 5% bonus: 1.75 ETH seized; premium 0.0833 ETH; 10% fee
    seized = percent_mul_floor(units(0, 5_000), 10_500)
    fee = percent_mul_ceil(seized - percent_div_floor(seized, 10_500), 1_000)
    assert out.fee == fee > 0 and out.collateral_to_liquidator == seized - fee


def test_deficit_created_when_collateral_runs_out(isolated: Market) -> None:
    # ETH crashes: $2,000 of WETH against $5,000 USDC and $1,000 DAI of debt
    prices = list(BASE_PRICES)
    prices[0] = 600 * 10**8
    p = Position({0: units(0, 10_000)}, {4: units(4, 5_000), 5: units(5, 1_000)}, {0})
    out = check_liquidation(isolated, p, prices, 0, 4, MAX_UINT, False)
    assert out.error is None
    assert set(out.deficits) == {4, 5} and out.deficits[5] == units(5, 1_000)
    assert (
        out.after is not None
        and not any(out.after.debt.values())
        and not any(out.after.coll.values())
    )


def test_healthy_account_cannot_be_liquidated(isolated: Market) -> None:
    p = Position({0: units(0, 10_000)}, {4: units(4, 5_000)}, {0})
    assert check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, False).error == (
        "HealthFactorNotBelowThreshold"
    )


# --------------------------------------------------------------------------- v3.7 regressions
# Each test below pins one place where the Pool (and this file's model) used to follow v3.3's
# LiquidationLogic / older ValidationLogic instead of aave-v3-origin v3.7, and shows that the
# case discriminates (the old rule gives a different answer).


def v33_split(p: Position, prices: list[int], c: int, actual: int) -> tuple[int, int]:
    """(collateral to the liquidator, fee) with v3.3's half-up percentMul / percentDiv."""
    cs, ds = MARKET[c], MARKET[4]
    pc, pd, uc, ud = prices[c], prices[4], 10**cs.decimals, 10**ds.decimals
    amount = percent_mul(pd * actual * uc // (pc * ud), cs.liquidation_bonus)
    fee = percent_mul(
        amount - percent_div(amount, cs.liquidation_bonus), cs.liquidation_protocol_fee
    )
    return amount - fee, fee


def test_collateral_math_rounds_floor_and_ceil_like_v37(isolated: Market) -> None:
    """v3.7: percentMulFloor (seized), percentDivFloor (bonus base), percentMulCeil (fee)."""
    p = Position({0: units(0, 10_000)}, {4: units(4, 9_000)}, {0})
    for amount in range(units(4, 5_000), units(4, 5_000) + 400):
        out = liquidate(p, BASE_PRICES, 0, 4, amount)
        if out.error is None and (out.collateral_to_liquidator, out.fee) != v33_split(
            p, BASE_PRICES, 0, amount
        ):
            break
    else:
        pytest.fail("no debtToCover in range where v3.3 and v3.7 rounding differ")
    got = check_liquidation(isolated, p, BASE_PRICES, 0, 4, amount, False)
    assert (got.collateral_to_liquidator, got.fee) == (out.collateral_to_liquidator, out.fee)


def test_collateral_short_debt_needed_rounds_up(isolated: Market) -> None:
    """When the collateral runs short, the debt covered is percentDivCeil (v3.7), not half-up."""
    prices = list(BASE_PRICES)
    for wei in range(1, 400):
        p = Position({0: units(0, 1_000) + wei}, {4: units(4, 1_500)}, {0})
        out = liquidate(p, prices, 0, 4, MAX_UINT)
        base = prices[0] * p.coll[0] * 10**6 // (prices[4] * 10**18)
        if out.debt_repaid != percent_div(base, 10_500):
            break
    else:
        pytest.fail("no collateral amount where percentDivCeil and percentDiv differ")
    got = check_liquidation(isolated, p, prices, 0, 4, MAX_UINT, False)
    assert got.debt_repaid == percent_div_ceil(base, 10_500) and got.deficits


def test_close_factor_values_reserve_debt_rounding_up(isolated: Market) -> None:
    """$2,000 of DAI debt less 1 wei: v3.7 rounds its value up to $2,000, so the 50% cap holds
    (v3.3's floor made it $1,999.99999999 and let the whole debt go); the $1,000 - 1 wei left
    is also valued rounding up, so it is not dust."""
    debt = 2_000 * 10**18 - 1
    assert debt * BASE_PRICES[5] // 10**18 < 2_000 * 10**8  # v3.3: under the threshold
    p = Position({0: units(0, 2_350)}, {5: debt}, {0})
    assert 0.95 * WAD < account_data(p, BASE_PRICES)[5] < WAD
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 5, MAX_UINT, False)
    assert out.error is None and out.close_factor_capped
    assert out.debt_repaid == 1_000 * 10**18
    assert out.after is not None and out.after.debt[5] == 1_000 * 10**18 - 1


def test_dust_rule_counts_the_fee_in_the_collateral_left(isolated: Market) -> None:
    """$2,048 of WETH, $1,000 of $2,500 USDC debt repaid: $1,045 to the liquidator and $5 of
    fee leave $998 (< $1,000): MustNotLeaveDust in v3.7, allowed by v3.3 (it ignored the fee)."""
    p = Position({0: units(0, 2_048)}, {4: units(4, 2_500)}, {0})
    to_liquidator, _ = v33_split(p, BASE_PRICES, 0, units(4, 1_000))
    assert (p.coll[0] - to_liquidator) * BASE_PRICES[0] // 10**18 >= 1_000 * 10**8
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, units(4, 1_000), False)
    assert out.error == "MustNotLeaveDust"


def test_no_collateral_left_clears_flag_even_with_worthless_dust(isolated: Market) -> None:
    """v3.7: when the collateral consumed is worth the whole collateral (a wei of WETH left is
    worth $0), the other debts become deficit *and* the collateral flag is cleared."""
    for extra in range(50):
        debt = units(4, 5_000) + extra
        base = BASE_PRICES[4] * debt * 10**18 // (BASE_PRICES[0] * 10**6)
        total = percent_mul_floor(base, MARKET[0].liquidation_bonus)  # to liquidator + fee
        if total * BASE_PRICES[0] // 10**18 == (total + 1) * BASE_PRICES[0] // 10**18:
            break
    else:
        pytest.fail("no debt amount where one wei of WETH left is worth $0")
    p = Position({0: total + 1}, {4: debt, 5: units(5, 100)}, {0})
    out = check_liquidation(isolated, p, BASE_PRICES, 0, 4, MAX_UINT, False)
    assert out.error is None and out.debt_repaid == debt
    assert out.after is not None and out.after.coll[0] == 1 and 0 not in out.after.enabled
    assert out.deficits == {5: units(5, 100)}


def test_self_liquidation_reverts(isolated: Market) -> None:
    """ValidationLogic.validateLiquidationCall: require(borrower != liquidator)."""
    m = isolated
    positions = [(0, KIND_COLLATERAL, units(0, 10_000)), (4, KIND_BORROW, units(4, 9_000))]
    m.rpc.transact(
        {
            "from": m.admin,
            "to": m.pool.address,
            "data": _encode_seed_call([Account(m.liquidator, positions)]),
            "gas": hex(5_000_000),
        }
    )
    assert m.pool.call("getUserAccountData", m.liquidator)[5] < WAD
    error, _ = m.liquidation_call(0, 4, m.liquidator, MAX_UINT, False)
    assert error == "SelfLiquidation"


def test_collateral_with_zero_lt_is_liquidatable_in_v37(isolated: Market) -> None:
    """v3.7's validateLiquidationCall only requires the collateral flag (LT != 0 no longer)."""
    m = isolated
    p = Position({0: units(0, 10_000), 3: units(3, 1_000)}, {4: units(4, 9_000)}, {0, 3})
    user = m.new_user(p)
    link = MARKET[3]
    word = encode_configuration(link) & ~((1 << 32) - 1)  # LTV = LT = 0
    m.pool.transact("setConfiguration", m.tokens[3], (word,), sender=m.admin, gas=200_000)
    assert m.pool.call("getUserAccountData", user)[0] == units(0, 10_000) * BASE_PRICES[0] // 10**18
    error, receipt = m.liquidation_call(3, 4, user, MAX_UINT, False)
    assert error is None and receipt is not None
    assert m.pool.call("getUserBalances", m.tokens[3], user)[0] == 0  # all the LINK seized


def _user_with_tokens(m: Market, index: int) -> str:
    user = m.rpc.accounts()[index]
    for token in m.erc20:
        token.transact("mint", user, 10**30, sender=user)
        token.transact("approve", m.pool.address, MAX_UINT, sender=user)
    return user


def test_supply_sets_collateral_flag_before_supply_event(isolated: Market) -> None:
    """SupplyLogic.executeSupply sets the flag (ReserveUsedAsCollateralEnabled) before Supply."""
    m = isolated
    user = _user_with_tokens(m, 3)
    r = m.pool.transact("supply", m.tokens[0], 10**18, user, 0, sender=user)
    topics = [
        lg["topics"][0] for lg in r["logs"] if lg["address"].lower() == m.pool.address.lower()
    ]
    assert topics == [USED_AS_COLLATERAL_ENABLED_TOPIC, SUPPLY_TOPIC]


def test_borrow_validation_follows_v37(isolated: Market) -> None:
    """BorrowLogic v3.7 checks the position after the borrow: no collateral -> LtvValidationFailed
    (v3.7 has no CollateralBalanceIsZero); the new debt must be covered (percentDivCeil)."""
    m = isolated
    user = _user_with_tokens(m, 4)
    with pytest.raises(DevnetError, match="LtvValidationFailed"):
        m.pool.transact("borrow", m.tokens[4], 10**6, 2, 0, user, sender=user)
    m.pool.transact("supply", m.tokens[0], 10**18, user, 0, sender=user)  # $3,000, LTV 80.5%
    with pytest.raises(DevnetError, match="CollateralCannotCoverNewBorrow"):
        m.pool.transact("borrow", m.tokens[4], 2_415 * 10**6 + 1, 2, 0, user, sender=user)
    m.pool.transact("borrow", m.tokens[4], 2_415 * 10**6, 2, 0, user, sender=user)
    assert m.pool.call("getUserAccountData", user)[2] == 0  # availableBorrowsBase


def test_repay_max_on_behalf_reverts(isolated: Market) -> None:
    """ValidationLogic.validateRepay: amount == max only for one's own debt."""
    m = isolated
    user = m.new_user(Position({0: units(0, 10_000)}, {4: units(4, 1_000)}, {0}))
    payer = _user_with_tokens(m, 5)
    with pytest.raises(DevnetError, match="NoExplicitAmountToRepayOnBehalf"):
        m.pool.transact("repay", m.tokens[4], MAX_UINT, 2, user, sender=payer)
    m.pool.transact("repay", m.tokens[4], units(4, 1_000), 2, user, sender=payer)
    assert m.pool.call("getUserConfiguration", user)[0] >> 8 & 1 == 0  # borrowing bit cleared


def test_set_collateral_no_op_and_zero_ltv(isolated: Market) -> None:
    """executeUseReserveAsCollateral: the no-op guard comes first (no UnderlyingBalanceZero for
    disabling a flag that is already off); enabling an LTV-0 asset: UserHasAssetWithZeroLtv."""
    m = isolated
    user = _user_with_tokens(m, 6)
    m.pool.transact("setUserUseReserveAsCollateral", m.tokens[0], False, sender=user)
    with pytest.raises(DevnetError, match="UnderlyingBalanceZero"):
        m.pool.transact("setUserUseReserveAsCollateral", m.tokens[0], True, sender=user)
    m.pool.transact("supply", m.tokens[3], 10**18, user, 0, sender=user)
    m.pool.transact("setUserUseReserveAsCollateral", m.tokens[3], False, sender=user)
    word = encode_configuration(MARKET[3]) & ~0xFFFF  # LTV = 0
    m.pool.transact("setConfiguration", m.tokens[3], (word,), sender=m.admin, gas=200_000)
    with pytest.raises(DevnetError, match="UserHasAssetWithZeroLtv"):
        m.pool.transact("setUserUseReserveAsCollateral", m.tokens[3], True, sender=user)
