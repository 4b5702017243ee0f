"""The devnet market: deployment, fixtures, Aave V3 interface (selectors, topics), discovery."""

from __future__ import annotations

import json

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from keeper.devnet import DevnetError
from keeper.devnet.chain import Contract
from keeper.devnet.deploy import MULTICALL3_ADDRESS, REQUIRED_FIELDS
from keeper.devnet.market import EMODES, MARKET, emode_bitmap, encode_configuration, ray
from keeper.devnet.seed import KIND_BORROW, KIND_COLLATERAL, SCALING_SLACK

pytestmark = pytest.mark.integration

SUPPLY_TOPIC = "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61"
BORROW_TOPIC = "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0"


def test_deployment_has_spec_fields(devnet):
    dep = devnet.deployment
    for name in REQUIRED_FIELDS:
        assert name in dep, name
    assert dep["chain_id"] == 31337
    assert dep["multicall3"] == MULTICALL3_ADDRESS
    assert set(dep["reserves"]) == {s.symbol for s in MARKET}
    for sym, r in dep["reserves"].items():
        assert set(r) >= {"token", "feed", "dex_pair"}, sym
        assert r["dex_pair"] is not None, sym
    assert json.loads(devnet.deployment_path.read_text()) == dep


def test_provider_resolves_market(devnet):
    dep = devnet.deployment
    provider = devnet.contract("PoolAddressesProvider", dep["pool_addresses_provider"])
    assert to_checksum_address(provider.call("getPool")) == dep["pool"]
    assert to_checksum_address(provider.call("getPriceOracle")) == dep["oracle"]
    assert to_checksum_address(provider.call("getPoolDataProvider")) == dep["data_provider"]


def test_reserves_configuration_and_prices(devnet):
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    oracle = devnet.contract("AaveOracle", dep["oracle"])
    data = devnet.contract("AaveProtocolDataProvider", dep["data_provider"])
    listed = [to_checksum_address(a) for a in pool.call("getReservesList")]
    assert listed == [dep["reserves"][s.symbol]["token"] for s in MARKET]
    for rid, spec in enumerate(MARKET):
        asset = listed[rid]
        (cfg,) = pool.call("getConfiguration", asset)
        assert cfg == encode_configuration(spec)
        rd = pool.call("getReserveData", asset)
        assert len(rd) == 15 and rd[0][0] == cfg and rd[7] == rid
        # indexes well away from 1 ray (accruing since deployment), the listed rates
        assert ray(spec.liquidity_index) <= rd[1] < ray(spec.liquidity_index) * 1001 // 1000
        assert ray(spec.variable_borrow_index) <= rd[3]
        assert rd[3] < ray(spec.variable_borrow_index) * 1001 // 1000
        assert rd[1] > 10**27 and rd[3] > 10**27 * 102 // 100
        assert (rd[2], rd[4]) == (ray(spec.liquidity_rate), ray(spec.variable_borrow_rate))
        assert rd[14] == 0  # isolationModeTotalDebt: isolation mode is gone in v3.7
        assert oracle.call("getAssetPrice", asset) == round(spec.price_usd * 1e8)
        conf = data.call("getReserveConfigurationData", asset)
        assert conf[:4] == (
            spec.decimals,
            spec.ltv,
            spec.liquidation_threshold,
            spec.liquidation_bonus,
        )
        assert conf[5] is True and conf[8] is True
    prices = oracle.call("getAssetsPrices", listed)
    assert list(prices) == [round(s.price_usd * 1e8) for s in MARKET]
    for e in EMODES:
        assert pool.call("getEModeCategoryCollateralConfig", e.id) == (
            e.ltv,
            e.liquidation_threshold,
            e.liquidation_bonus,
        )
        assert pool.call("getEModeCategoryLabel", e.id) == e.label
        assert pool.call("getEModeCategoryCollateralBitmap", e.id) == emode_bitmap(e.collaterals)
        assert pool.call("getEModeCategoryBorrowableBitmap", e.id) == emode_bitmap(e.borrowables)
        assert pool.call("getEModeCategoryLtvzeroBitmap", e.id) == emode_bitmap(e.ltvzero)
        assert pool.call("getIsEModeCategoryIsolated", e.id) is e.isolated
        assert dep["emode_categories"][str(e.id)]["label"] == e.label


def test_seeded_balances_match_book(devnet):
    """Each seeded position is on chain: its flags, its e-mode, and balances equal to the
    book's amounts up to the scaled storage's rounding and the interest accrued since."""
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    data = devnet.contract("AaveProtocolDataProvider", dep["data_provider"])
    tokens = [dep["reserves"][s.symbol]["token"] for s in MARKET]
    block = devnet.rpc.block_number()
    for acct in devnet.book.accounts[:60]:
        (ucfg,) = pool.call("getUserConfiguration", acct.address, block=block)
        assert pool.call("getUserEMode", acct.address, block=block) == acct.emode
        expected = {}
        for rid, kind, amount in acct.positions:
            expected.setdefault(rid, [0, 0])[1 if kind == KIND_BORROW else 0] += amount
            bit = 2 * rid + (1 if kind == KIND_COLLATERAL else 0)
            assert (ucfg >> bit) & 1 == 1
        for rid, (coll, debt) in expected.items():
            u = data.call("getUserReserveData", tokens[rid], acct.address, block=block)
            scaled_coll, scaled_debt = pool.call(
                "getUserScaledBalances", tokens[rid], acct.address, block=block
            )
            assert u[4] == scaled_debt
            for got, want in ((u[0], coll), (u[2], debt)):
                assert abs(got - want) <= SCALING_SLACK + want // 10**5, (rid, got, want)
            assert (scaled_coll == 0) == (coll == 0) and (scaled_debt == 0) == (debt == 0)
        hf = pool.call("getUserAccountData", acct.address, block=block)[5]
        assert hf >= 10**18


def test_every_account_found_by_log_scan(devnet):
    dep = devnet.deployment
    logs = devnet.rpc.call(
        "eth_getLogs",
        {
            "address": dep["pool"],
            "fromBlock": "0x0",
            "toBlock": "latest",
            "topics": [[SUPPLY_TOPIC, BORROW_TOPIC]],
        },
    )
    found = {to_checksum_address("0x" + log["topics"][2][-40:]) for log in logs}
    assert set(devnet.accounts) <= found
    borrowers = {
        a.address for a in devnet.book.accounts if any(k == KIND_BORROW for _, k, _ in a.positions)
    }
    borrow_users = {
        to_checksum_address("0x" + log["topics"][2][-40:])
        for log in logs
        if log["topics"][0] == BORROW_TOPIC
    }
    assert borrowers == borrow_users


def test_multicall3_aggregate3_at_canonical_address(devnet):
    dep = devnet.deployment
    mc = Contract(devnet.rpc, MULTICALL3_ADDRESS, "Multicall3")
    pool = devnet.contract("Pool", dep["pool"])
    calls = [
        (dep["pool"], False, bytes.fromhex(pool.encode("getUserAccountData", a)[2:]))
        for a in devnet.accounts[:5]
    ]
    calls.append((dep["pool"], True, b"\xde\xad\xbe\xef"))
    results = mc.call("aggregate3", calls)
    assert [ok for ok, _ in results] == [True] * 5 + [False]
    for (_ok, ret), acct in zip(results[:5], devnet.accounts[:5], strict=True):
        assert decode(["uint256"] * 6, ret) == pool.call("getUserAccountData", acct)
    assert mc.call("getBlockNumber") == devnet.rpc.block_number()


def test_dex_pairs_quote_oracle_price(devnet):
    dep = devnet.deployment
    for spec in MARKET:
        if spec.symbol == "USDC":
            continue
        pair = devnet.contract("UniswapV2Pair", dep["reserves"][spec.symbol]["dex_pair"])
        r0, r1, _ = pair.call("getReserves")
        token0 = to_checksum_address(pair.call("token0"))
        usdc = dep["reserves"]["USDC"]["token"]
        assert {token0, to_checksum_address(pair.call("token1"))} == {
            usdc,
            dep["reserves"][spec.symbol]["token"],
        }
        r_asset, r_usdc = (r1, r0) if token0 == usdc else (r0, r1)
        price = (r_usdc / 1e6) / (r_asset / 10**spec.decimals)
        assert price == pytest.approx(spec.price_usd, rel=1e-6)
        assert r_usdc / 1e6 >= 1e6  # at least $1M a side


def test_set_price_moves_feed_and_mines(devnet, set_price):
    dep = devnet.deployment
    oracle = devnet.contract("AaveOracle", dep["oracle"])
    before = devnet.rpc.block_number()
    block = set_price("WETH", 1234.56789)
    assert block == before + 1 == devnet.rpc.block_number()
    assert oracle.call("getAssetPrice", dep["reserves"]["WETH"]["token"]) == 123456789000
    feed = devnet.contract("DevnetPriceFeed", dep["reserves"]["WETH"]["feed"])
    assert feed.call("latestRoundData")[1] == 123456789000
    assert feed.call("decimals") == 8


def test_isolation_reverted_previous_price(devnet):
    # runs after test_set_price_moves_feed_and_mines in file order: the price is back
    oracle = devnet.contract("AaveOracle", devnet.deployment["oracle"])
    assert (
        oracle.call("getAssetPrice", devnet.deployment["reserves"]["WETH"]["token"]) == 3000 * 10**8
    )


def test_web3_handle_reads_chain(devnet):
    assert devnet.w3.eth.chain_id == 31337
    assert keccak(text="Supply(address,address,address,uint256,uint16)").hex() == SUPPLY_TOPIC[2:]


WITHDRAW_TOPIC = "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7"
REPAY_TOPIC = "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051"


def _pool_topics(receipt, pool):
    return [lg["topics"][0] for lg in receipt["logs"] if lg["address"].lower() == pool.lower()]


def test_user_supply_borrow_repay_withdraw(devnet_isolated):
    """A real user (anvil account 2) goes through the four actions; events and checks as Aave's."""
    dep = devnet_isolated.deployment
    rpc = devnet_isolated.rpc
    user = rpc.accounts()[2]
    pool = devnet_isolated.contract("Pool", dep["pool"])
    weth = devnet_isolated.contract("DevnetERC20", dep["reserves"]["WETH"]["token"])
    usdc = devnet_isolated.contract("DevnetERC20", dep["reserves"]["USDC"]["token"])
    # token-exact figures below: these two reserves at 1 ray, no interest (accrual is tested
    # in test_devnet_emode.py)
    for token in (weth, usdc):
        pool.transact("setReserveRates", token.address, 0, 0, sender=devnet_isolated.admin)
        pool.transact(
            "setReserveIndexes", token.address, 10**27, 10**27, sender=devnet_isolated.admin
        )
    weth.transact("mint", user, 10 * 10**18, sender=user)
    weth.transact("approve", pool.address, 2**256 - 1, sender=user)
    usdc.transact("approve", pool.address, 2**256 - 1, sender=user)

    r = pool.transact("supply", weth.address, 10 * 10**18, user, 0, sender=user)
    assert SUPPLY_TOPIC in _pool_topics(r, pool.address)
    tc, td, avail, lt, ltv, hf = pool.call("getUserAccountData", user)
    assert (tc, td, lt, ltv) == (30_000 * 10**8, 0, 8300, 8050) and hf == 2**256 - 1
    assert avail == 30_000 * 8050 * 10**4

    # more than the LTV allows is refused, as on Aave
    with pytest.raises(DevnetError, match="CollateralCannotCoverNewBorrow"):
        pool.transact("borrow", usdc.address, 24_200 * 10**6, 2, 0, user, sender=user)
    r = pool.transact("borrow", usdc.address, 20_000 * 10**6, 2, 0, user, sender=user)
    assert BORROW_TOPIC in _pool_topics(r, pool.address)
    assert usdc.call("balanceOf", user) == 20_000 * 10**6
    hf = pool.call("getUserAccountData", user)[5]
    assert hf == ((30_000 * 10**8 * 8300 * 10**18 + 10_000 * 10**8) // (20_000 * 10**8)) // 10_000

    # withdrawing the collateral that backs the debt is refused
    with pytest.raises(DevnetError, match="HealthFactorLowerThanLiquidationThreshold"):
        pool.transact("withdraw", weth.address, 2**256 - 1, user, sender=user)

    r = pool.transact("repay", usdc.address, 2**256 - 1, 2, user, sender=user)
    assert REPAY_TOPIC in _pool_topics(r, pool.address)
    (ucfg,) = pool.call("getUserConfiguration", user)
    assert (ucfg >> (2 * 4)) & 1 == 0  # USDC borrowing bit cleared
    r = pool.transact("withdraw", weth.address, 2**256 - 1, user, sender=user)
    assert WITHDRAW_TOPIC in _pool_topics(r, pool.address)
    assert weth.call("balanceOf", user) == 10 * 10**18
    assert pool.call("getUserConfiguration", user) == (0,)


def test_seeded_book_is_realistic(devnet):
    """Heavy-tailed sizes, multi-asset accounts, HFs mostly 1.02-3 with a tail near 1, none < 1."""
    from keeper.devnet.seed import plan_book

    book = plan_book(2000, seed=11)
    assert plan_book(2000, seed=11) == book  # deterministic
    hfs = [a.target_hf for a in book.accounts if a.target_hf != float("inf")]
    assert min(hfs) >= 1.0
    in_band = sum(1.02 <= h <= 3.0 for h in hfs) / len(hfs)
    near_one = sum(h < 1.02 for h in hfs) / len(hfs)
    assert in_band > 0.7 and 0.03 < near_one < 0.25
    n_coll = [sum(k == KIND_COLLATERAL for _, k, _ in a.positions) for a in book.accounts]
    n_debt = [sum(k == KIND_BORROW for _, k, _ in a.positions) for a in book.accounts]
    assert sum(c >= 2 for c in n_coll) > 200 and sum(d >= 2 for d in n_debt) > 100
    assert sum(d == 0 for d in n_debt) > 100  # lenders
    # utilisation below 100% everywhere
    assert all(b <= s for s, b in zip(book.supplied, book.borrowed, strict=True))
    # the seeded devnet's accounts all have HF >= 1 on chain
    pool = devnet.contract("Pool", devnet.deployment["pool"])
    on_chain = [pool.call("getUserAccountData", a)[5] for a in devnet.accounts[:120]]
    assert min(on_chain) >= 10**18


def test_dex_pairs_sized_from_the_book(devnet):
    """Each pair holds, per side, at least 3x the borrowers' collateral it trades (USDC's
    included in the stable pair USDC trades through), and never less than the listed depth."""
    from keeper.devnet.seed import (
        POOL_DEPTH_MULTIPLE,
        collateral_at_risk_usd,
        plan_pool_depths,
    )

    dep = devnet.deployment
    at_risk = dict(
        zip([s.symbol for s in MARKET], collateral_at_risk_usd(devnet.book), strict=True)
    )
    via = dep["reserves"]["USDC"]["dex_quote"]
    usdc = dep["reserves"]["USDC"]["token"]
    assert dep["dex_side_usd"] == pytest.approx(plan_pool_depths(devnet.book, quote_via=via))
    for spec in MARKET:
        if spec.symbol == "USDC":
            continue
        pair = devnet.contract("UniswapV2Pair", dep["reserves"][spec.symbol]["dex_pair"])
        r0, r1, _ = pair.call("getReserves")
        side = (r0 if to_checksum_address(pair.call("token0")) == usdc else r1) / 1e6
        need = at_risk[spec.symbol] + (at_risk["USDC"] if spec.symbol == via else 0.0)
        assert side >= spec.dex_side_usd * (1 - 1e-9), spec.symbol
        assert side >= POOL_DEPTH_MULTIPLE * need * (1 - 1e-6), spec.symbol
        assert side == pytest.approx(dep["dex_side_usd"][spec.symbol], rel=1e-6)


def test_pool_depths_follow_a_large_book():
    """On the demo's 2,000-account book the multiple, not the floor, sets the deep pairs."""
    from keeper.devnet.seed import (
        POOL_DEPTH_MULTIPLE,
        collateral_at_risk_usd,
        plan_book,
        plan_pool_depths,
    )

    assert 2.0 <= POOL_DEPTH_MULTIPLE <= 4.0
    book = plan_book(2000, seed=7)
    symbols = [s.symbol for s in MARKET]
    at_risk = dict(zip(symbols, collateral_at_risk_usd(book), strict=True))
    depths = plan_pool_depths(book, quote_via="DAI")
    assert "USDC" not in depths  # USDC is the quote; it trades through the DAI pair
    for spec in MARKET:
        if spec.symbol == "USDC":
            continue
        need = at_risk[spec.symbol] + (at_risk["USDC"] if spec.symbol == "DAI" else 0.0)
        assert depths[spec.symbol] == pytest.approx(
            max(spec.dex_side_usd, POOL_DEPTH_MULTIPLE * need)
        )
    # the book outgrew the listed depths of WETH, wstETH and LINK (the thin pairs)
    for sym in ("WETH", "wstETH", "LINK"):
        assert depths[sym] > MARKET[symbols.index(sym)].dex_side_usd
    # lenders' supply is not at risk: the at-risk collateral is below everything supplied
    total = [a * s.price_usd / 10**s.decimals for a, s in zip(book.supplied, MARKET, strict=True)]
    assert all(r <= t * (1 + 1e-9) for r, t in zip(at_risk.values(), total, strict=True))
    assert sum(at_risk.values()) < 0.95 * sum(total)
    # no pair without a listed pair, and a multiple of 0 leaves the floors
    assert plan_pool_depths(book, multiple=0.0) == {
        s.symbol: s.dex_side_usd for s in MARKET if s.symbol != "USDC" and s.dex_side_usd > 0
    }


def test_dex_pair_swaps_constant_product_with_03pct_fee(devnet_isolated):
    dep = devnet_isolated.deployment
    rpc = devnet_isolated.rpc
    trader = rpc.accounts()[3]
    pair = devnet_isolated.contract("UniswapV2Pair", dep["reserves"]["WETH"]["dex_pair"])
    weth = devnet_isolated.contract("DevnetERC20", dep["reserves"]["WETH"]["token"])
    usdc = devnet_isolated.contract("DevnetERC20", dep["reserves"]["USDC"]["token"])
    r0, r1, _ = pair.call("getReserves")
    weth_is_0 = to_checksum_address(pair.call("token0")) == weth.address
    r_in, r_out = (r0, r1) if weth_is_0 else (r1, r0)
    amount_in = 100 * 10**18
    out = amount_in * 997 * r_out // (r_in * 1000 + amount_in * 997)
    weth.transact("mint", trader, amount_in, sender=trader)
    weth.transact("transfer", pair.address, amount_in, sender=trader)
    too_much = (0, out + 1) if weth_is_0 else (out + 1, 0)
    with pytest.raises(DevnetError, match=r"K\(\)"):
        pair.transact("swap", *too_much, trader, b"", sender=trader)
    exact = (0, out) if weth_is_0 else (out, 0)
    pair.transact("swap", *exact, trader, b"", sender=trader)
    assert usdc.call("balanceOf", trader) == out
    n0, n1, _ = pair.call("getReserves")
    assert (n0, n1) == ((r0 + amount_in, r1 - out) if weth_is_0 else (r0 - out, r1 + amount_in))
    # 100 WETH ($300k) into a pool of at least $20M a side (deeper when the book's WETH
    # collateral calls for it): at most about 1.5% price impact, plus the 0.3% fee
    side_usd = r_out / 10**6
    assert side_usd >= 20e6
    assert 0.978 < out / 10**6 / (100 * 3000) < 0.997
    assert out / 10**6 / (100 * 3000) == pytest.approx(0.997 / (1 + 0.997 * 300e3 / side_usd))
