"""Our Comet devnet market against an independent model of Compound V3's public rules.

The model below knows only Comet's documented arithmetic (compound-finance/comet CometCore and
Comet: principal x index / 1e15, index += index x rate x seconds / 1e18, the kinked rate model,
values in 1e8 USD with each product rounded down, the store-front discount) and reads only
public views (``totalsBasic``, ``userBasic``, ``userCollateral``, ``getAssetInfo``, the feeds).
Every seeded account's balances, ``isLiquidatable``, the reserves and the quotes must be the
contract's own, a month of interest later and after a price fall; ``absorb`` and
``buyCollateral`` must move balances and reserves as the model says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pytest
from eth_utils import to_checksum_address

from keeper.devnet.chain import Contract, _type_str, function_signature
from keeper.devnet.comet import COMET_MARKET, KIND_BORROW, KIND_COLLATERAL, factor
from keeper.devnet.deploy import set_price

pytestmark = pytest.mark.integration

FACTOR = 10**18
INDEX = 10**15
YEAR = 31_536_000


@dataclass
class Market:
    """What the model reads from public views at one block."""

    timestamp: int
    supply_index: int
    borrow_index: int
    total_supply_base: int
    total_borrow_base: int
    last_accrual: int
    base_scale: int
    base_price: int
    assets: list[tuple[str, int, int, int, int, int]]
    """(asset, price, scale, borrowCF, liquidateCF, liquidationFactor) per offset."""


def _comet(handle: Any) -> Contract:
    return handle.contract("Comet", handle.deployment["comet"])


def read_market(handle: Any, block: int) -> Market:
    comet = _comet(handle)
    totals = comet.call("totalsBasic", block=block)
    assets = []
    for i in range(comet.call("numAssets", block=block)):
        info = comet.call("getAssetInfo", i, block=block)
        feed = handle.contract("DevnetPriceFeed", info[2])
        price = feed.call("latestRoundData", block=block)[1]
        assets.append((to_checksum_address(info[1]), price, info[3], info[4], info[5], info[6]))
    base_feed = handle.contract("DevnetPriceFeed", comet.call("baseTokenPriceFeed", block=block))
    ts = int(handle.rpc.call("eth_getBlockByNumber", hex(block), False)["timestamp"], 16)
    return Market(
        timestamp=ts,
        supply_index=totals[0],
        borrow_index=totals[1],
        total_supply_base=totals[4],
        total_borrow_base=totals[5],
        last_accrual=totals[6],
        base_scale=comet.call("baseScale", block=block),
        base_price=base_feed.call("latestRoundData", block=block)[1],
        assets=assets,
    )


def per_second(rate_per_year: str) -> int:
    return factor(rate_per_year) // YEAR


def kinked(utilization: int, kink: str, base: str, low: str, high: str) -> int:
    k = factor(kink)
    rate = per_second(base) + per_second(low) * min(utilization, k) // FACTOR
    if utilization > k:
        rate = (
            per_second(base)
            + per_second(low) * k // FACTOR
            + per_second(high) * (utilization - k) // FACTOR
        )
    return rate


def utilization(m: Market) -> int:
    supplied = m.total_supply_base * m.supply_index // INDEX
    borrowed = m.total_borrow_base * m.borrow_index // INDEX
    return borrowed * FACTOR // supplied if supplied else 0


def accrued(m: Market) -> tuple[int, int]:
    """The indexes ``balanceOf`` / ``borrowBalanceOf`` / ``getReserves`` use at the block."""
    dt = m.timestamp - m.last_accrual
    if dt <= 0:
        return m.supply_index, m.borrow_index
    s = COMET_MARKET
    u = utilization(m)
    sr = kinked(u, s.supply_kink, s.supply_base, s.supply_slope_low, s.supply_slope_high)
    br = kinked(u, s.borrow_kink, s.borrow_base, s.borrow_slope_low, s.borrow_slope_high)
    return (
        m.supply_index + m.supply_index * (sr * dt) // FACTOR,
        m.borrow_index + m.borrow_index * (br * dt) // FACTOR,
    )


def present(principal: int, supply_index: int, borrow_index: int) -> int:
    if principal >= 0:
        return principal * supply_index // INDEX
    return -(-principal * borrow_index // INDEX)


def liquidatable(m: Market, principal: int, collateral: list[int]) -> bool:
    """Comet's isLiquidatable at the stored indexes (the view does not accrue)."""
    if principal >= 0:
        return False
    balance = present(principal, m.supply_index, m.borrow_index)
    liquidity = -(-balance * m.base_price // m.base_scale)  # Solidity truncates toward zero
    for (_, price, scale, _, lcf, _), amount in zip(m.assets, collateral, strict=True):
        if amount:
            liquidity += amount * price // scale * lcf // FACTOR
    return liquidity < 0


def quote(m: Market, offset: int, base_amount: int) -> int:
    _, price, scale, _, _, lf = m.assets[offset]
    discount = factor(COMET_MARKET.store_front_price_factor) * (FACTOR - lf) // FACTOR
    discounted = price * (FACTOR - discount) // FACTOR
    return m.base_price * base_amount * scale // discounted // m.base_scale


def _check_every_account(handle: Any, block: int) -> tuple[int, int]:
    comet = _comet(handle)
    m = read_market(handle, block)
    si, bi = accrued(m)
    n_liq = n_borrow = 0
    for acct in handle.book.accounts:
        basic = comet.call("userBasic", acct.address, block=block)
        principal, assets_in = basic[0], basic[3]
        coll = [
            comet.call("collateralBalanceOf", acct.address, a[0], block=block) for a in m.assets
        ]
        for offset, amount in enumerate(coll):
            assert amount == acct.collateral(offset), (acct.address, offset)
            assert bool(assets_in >> offset & 1) == (amount > 0)
        bal = present(principal, si, bi)
        assert comet.call("balanceOf", acct.address, block=block) == max(bal, 0), acct.address
        assert comet.call("borrowBalanceOf", acct.address, block=block) == max(-bal, 0)
        if acct.borrow:
            n_borrow += 1
            assert principal < 0 and -bal >= acct.borrow  # interest only adds
        want = liquidatable(m, principal, coll)
        assert comet.call("isLiquidatable", acct.address, block=block) is want, acct.address
        n_liq += want
    base = handle.deployment["reserves"][COMET_MARKET.base_symbol]["token"]
    cash = handle.contract("DevnetERC20", base).call("balanceOf", comet.address, block=block)
    supplied = m.total_supply_base * si // INDEX
    borrowed = m.total_borrow_base * bi // INDEX
    assert comet.call("totalSupply", block=block) == supplied
    assert comet.call("totalBorrow", block=block) == borrowed
    assert comet.call("getReserves", block=block) == cash - supplied + borrowed
    assert comet.call("getUtilization", block=block) == utilization(m)
    for offset in range(len(m.assets)):
        for amount in (10**6, 12_345 * 10**6):
            assert comet.call("quoteCollateral", m.assets[offset][0], amount, block=block) == (
                quote(m, offset, amount)
            )
    return n_borrow, n_liq


def test_seeded_book_matches_the_model(comet_devnet: Any) -> None:
    dep = comet_devnet.deployment
    block = comet_devnet.rpc.block_number()
    n_borrow, n_liq = _check_every_account(comet_devnet, block)
    assert n_borrow == dep["borrowers"] > 150 and n_liq == 0
    assert dep["whales"] >= 3 and dep["near_liquidation"] >= 5
    comet = _comet(comet_devnet)
    seeded = comet.call("getReserves", block=dep["reserves_block"])
    assert 0 < seeded == dep["initial_reserves"] < dep["target_reserves"]
    for i, c in enumerate(COMET_MARKET.collateral):
        info = comet.call("getAssetInfo", i)
        assert info[4:7] == (
            factor(c.borrow_collateral_factor),
            factor(c.liquidate_collateral_factor),
            factor(c.liquidation_factor),
        )
        cap = dep["reserves"][c.symbol]["supply_cap"]
        assert info[7] == cap * 10**c.decimals and cap >= c.supply_cap


def test_a_month_of_interest_and_a_price_fall(comet_isolated: Any) -> None:
    handle = comet_isolated
    handle.rpc.call("evm_increaseTime", 30 * 24 * 3600)
    handle.rpc.mine()
    before = handle.rpc.block_number()
    m = read_market(handle, before)
    assert m.timestamp - m.last_accrual >= 30 * 24 * 3600
    si, bi = accrued(m)
    assert bi > m.borrow_index and si > m.supply_index
    _check_every_account(handle, before)
    # a 25% fall of WETH and wstETH and a stale accrual: some borrowers become liquidatable
    for symbol, price in (("WETH", 2250), ("wstETH", 2625)):
        set_price(handle.deployment, symbol, price, rpc=handle.rpc)
    _, n_liq = _check_every_account(handle, handle.rpc.block_number())
    assert n_liq > 0


def test_absorb_and_buy_collateral_follow_the_model(comet_isolated: Any) -> None:
    handle = comet_isolated
    comet = _comet(handle)
    set_price(handle.deployment, "WETH", 1500, rpc=handle.rpc)
    set_price(handle.deployment, "wstETH", 1750, rpc=handle.rpc)
    victims = [a.address for a in handle.book.accounts if comet.call("isLiquidatable", a.address)]
    assert victims
    absorber = handle.rpc.accounts()[3]
    block = handle.rpc.block_number()
    m = read_market(handle, block)
    reserves_before = comet.call("getReserves")
    seized: list[list[int]] = []
    expected_paid = 0
    # absorb accrues first: the block's own timestamp decides the indexes
    receipt = comet.transact("absorb", absorber, victims[:3], sender=absorber)
    after = int(receipt["blockNumber"], 16)
    m_now = read_market(handle, after)
    for victim in victims[:3]:
        coll = [comet.call("collateralBalanceOf", victim, a[0], block=block) for a in m.assets]
        seized.append(coll)
        principal = comet.call("userBasic", victim, block=block)[0]
        old = present(principal, m_now.supply_index, m_now.borrow_index)
        credit_value = sum(
            amount * price // scale * lf // FACTOR
            for (_, price, scale, _, _, lf), amount in zip(m.assets, coll, strict=True)
        )
        credit = credit_value * m.base_scale // m.base_price
        new = max(old + credit, 0)
        expected_paid += new - old
        assert comet.call("userBasic", victim, block=after)[3] == 0
        assert comet.call("balanceOf", victim, block=after) == present(
            comet.call("userBasic", victim, block=after)[0], m_now.supply_index, m_now.borrow_index
        )
        assert abs(comet.call("balanceOf", victim, block=after) - new) <= 1
        assert comet.call("borrowBalanceOf", victim, block=after) == 0
    topic = comet.event_topic("AbsorbDebt")
    paid = sum(int(log["data"][2:66], 16) for log in receipt["logs"] if log["topics"][0] == topic)
    assert paid == expected_paid
    reserves_after = comet.call("getReserves", block=after)
    # the reserves pay out what absorbing cost (plus a block of interest either way)
    assert abs((reserves_before - reserves_after) - paid) <= paid // 10**6 + 10
    points = comet.call("liquidatorPoints", absorber)
    assert points[0] == 1 and points[1] == 3
    # the protocol now holds the collateral and sells it at the store-front discount
    total = [sum(c[o] for c in seized) for o in range(len(m.assets))]
    offset = max(range(len(total)), key=lambda o: total[o] * m.assets[o][1] // m.assets[o][2])
    asset = m.assets[offset][0]
    assert comet.call("getCollateralReserves", asset) == total[offset]
    base = handle.deployment["reserves"][COMET_MARKET.base_symbol]["token"]
    usdc = handle.contract("DevnetERC20", base)
    buyer = handle.rpc.accounts()[4]
    spend = 1_000 * 10**6
    usdc.transact("mint", buyer, spend, sender=buyer)
    usdc.transact("approve", comet.address, spend, sender=buyer)
    m2 = read_market(handle, handle.rpc.block_number())
    want = quote(m2, offset, spend)
    assert want <= total[offset]
    receipt = comet.transact("buyCollateral", asset, want, spend, buyer, sender=buyer)
    token = handle.contract("DevnetERC20", asset)
    assert token.call("balanceOf", buyer) == want
    assert comet.call("getCollateralReserves", asset) == total[offset] - want
    # reserves at or above target close the store front
    comet.transact("seedReserves", handle.deployment["target_reserves"], sender=handle.admin)
    usdc.transact("mint", buyer, spend, sender=buyer)
    usdc.transact("approve", comet.address, spend, sender=buyer)
    with pytest.raises(Exception, match="NotForSale"):
        comet.transact("buyCollateral", asset, 0, spend, buyer, sender=buyer)


def test_seeding_events_name_every_account(comet_devnet: Any) -> None:
    comet = _comet(comet_devnet)
    topics = {comet.event_topic(n): n for n in ("SupplyCollateral", "Supply", "Withdraw")}
    logs = comet_devnet.rpc.call(
        "eth_getLogs",
        {
            "address": comet.address,
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [list(topics)],
        },
    )
    named: set[str] = set()
    for log in logs:
        index = 1 if topics[log["topics"][0]] == "Withdraw" else 2
        named.add(to_checksum_address("0x" + log["topics"][index][-40:]))
    assert named == {a.address for a in comet_devnet.book.accounts if a.records}
    kinds = {k for a in comet_devnet.book.accounts for k, _, _ in a.records}
    assert {KIND_COLLATERAL, KIND_BORROW} <= kinds


# The real Compound V3 interface (compound-finance/comet CometMainInterface, CometExtInterface,
# CometStorage getters): signature -> output types.
REAL_FUNCTIONS = {
    "numAssets()": ["uint8"],
    "getAssetInfo(uint8)": ["(uint8,address,address,uint64,uint64,uint64,uint64,uint128)"],
    "getAssetInfoByAddress(address)": [
        "(uint8,address,address,uint64,uint64,uint64,uint64,uint128)"
    ],
    "userBasic(address)": ["int104", "uint64", "uint64", "uint16", "uint8"],
    "userCollateral(address,address)": ["uint128", "uint128"],
    "totalsCollateral(address)": ["uint128", "uint128"],
    "totalsBasic()": ["(uint64,uint64,uint64,uint64,uint104,uint104,uint40,uint8)"],
    "collateralBalanceOf(address,address)": ["uint128"],
    "balanceOf(address)": ["uint256"],
    "borrowBalanceOf(address)": ["uint256"],
    "getPrice(address)": ["uint256"],
    "getReserves()": ["int256"],
    "getCollateralReserves(address)": ["uint256"],
    "targetReserves()": ["uint256"],
    "storeFrontPriceFactor()": ["uint256"],
    "baseBorrowMin()": ["uint256"],
    "baseToken()": ["address"],
    "baseTokenPriceFeed()": ["address"],
    "isLiquidatable(address)": ["bool"],
    "isBorrowCollateralized(address)": ["bool"],
    "quoteCollateral(address,uint256)": ["uint256"],
    "absorb(address,address[])": [],
    "buyCollateral(address,uint256,uint256,address)": [],
    "getUtilization()": ["uint256"],
    "getSupplyRate(uint256)": ["uint64"],
    "getBorrowRate(uint256)": ["uint64"],
    "liquidatorPoints(address)": ["uint32", "uint64", "uint128", "uint32"],
    "supply(address,uint256)": [],
    "withdraw(address,uint256)": [],
    "transfer(address,uint256)": ["bool"],
}
REAL_EVENTS = {
    "Supply(address,address,uint256)": [True, True, False],
    "Transfer(address,address,uint256)": [True, True, False],
    "Withdraw(address,address,uint256)": [True, True, False],
    "SupplyCollateral(address,address,address,uint256)": [True, True, True, False],
    "TransferCollateral(address,address,address,uint256)": [True, True, True, False],
    "WithdrawCollateral(address,address,address,uint256)": [True, True, True, False],
    "AbsorbDebt(address,address,uint256,uint256)": [True, True, False, False],
    "AbsorbCollateral(address,address,address,uint256,uint256)": [True, True, True, False, False],
    "BuyCollateral(address,address,uint256,uint256)": [True, True, False, False],
}


@pytest.mark.parametrize("where", ["contracts_abi/Comet.json", "contracts_abi/devnet/Comet.json"])
def test_interface_is_comets(where: str) -> None:
    rel = where.removeprefix("contracts_abi/")
    target = resources.files("contracts_abi")
    for part in rel.split("/"):
        target = target.joinpath(part)
    abi = json.loads(target.read_text())
    functions = {function_signature(e): e for e in abi if e["type"] == "function"}
    events = {function_signature(e): e for e in abi if e["type"] == "event"}
    for sig, outputs in REAL_FUNCTIONS.items():
        assert sig in functions, sig
        assert [_type_str(o) for o in functions[sig]["outputs"]] == outputs, sig
    for sig, indexed in REAL_EVENTS.items():
        assert sig in events, sig
        assert [i["indexed"] for i in events[sig]["inputs"]] == indexed, sig
