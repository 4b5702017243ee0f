"""The devnet market: deployment, fixtures, Aave V3 interface (selectors, topics), discovery."""

from __future__ import annotations

import json

import pytest
from eth_abi import decode
from eth_utils import keccak, to_checksum_address

from keeper.devnet.chain import Contract
from keeper.devnet.deploy import MULTICALL3_ADDRESS, REQUIRED_FIELDS
from keeper.devnet.market import MARKET, encode_configuration
from keeper.devnet.seed import KIND_BORROW, KIND_COLLATERAL

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
        assert rd[1] == 10**27 and rd[3] == 10**27
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


def test_seeded_balances_match_book(devnet):
    dep = devnet.deployment
    pool = devnet.contract("Pool", dep["pool"])
    data = devnet.contract("AaveProtocolDataProvider", dep["data_provider"])
    tokens = [dep["reserves"][s.symbol]["token"] for s in MARKET]
    for acct in devnet.book.accounts[:40]:
        (ucfg,) = pool.call("getUserConfiguration", acct.address)
        expected = {}
        for rid, kind, amount in acct.positions:
            expected.setdefault(rid, [0, 0])[1 if kind == KIND_BORROW else 0] += amount
            bit = 2 * rid + (1 if kind == KIND_COLLATERAL else 0)
            assert (ucfg >> bit) & 1 == 1
        for rid, (coll, debt) in expected.items():
            u = data.call("getUserReserveData", tokens[rid], acct.address)
            assert u[0] == coll and u[2] == debt and u[4] == debt
        hf = pool.call("getUserAccountData", acct.address)[5]
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
