"""An outside reader's view of the devnet: web3.py and Aave V3's public interface only.

Resolves the market through the PoolAddressesProvider, finds accounts by scanning Supply and
Borrow logs, and recomputes every health factor from raw balances (data provider), oracle
prices, reserve configurations and the user's e-mode category (the Pool's v3.2+ e-mode
getters), the way the acceptance check does, all read at one block.
"""

from __future__ import annotations

import pytest

from contracts_abi import load_abi

pytestmark = pytest.mark.integration

SUPPLY = "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61"
BORROW = "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0"


def _topic_address(topic) -> str:
    return "0x" + bytes(topic)[-20:].hex()


def test_reader_with_public_interface_finds_accounts_and_matches_hf(devnet):
    w3 = devnet.w3
    provider = w3.eth.contract(
        address=devnet.deployment["pool_addresses_provider"], abi=load_abi("PoolAddressesProvider")
    )
    pool = w3.eth.contract(address=provider.functions.getPool().call(), abi=load_abi("Pool"))
    oracle = w3.eth.contract(
        address=provider.functions.getPriceOracle().call(), abi=load_abi("AaveOracle")
    )
    data = w3.eth.contract(
        address=provider.functions.getPoolDataProvider().call(),
        abi=load_abi("AaveProtocolDataProvider"),
    )
    reserves = pool.functions.getReservesList().call()
    prices = oracle.functions.getAssetsPrices(reserves).call()
    configs = [data.functions.getReserveConfigurationData(a).call() for a in reserves]

    logs = w3.eth.get_logs(
        {"address": pool.address, "fromBlock": 0, "toBlock": "latest", "topics": [[SUPPLY, BORROW]]}
    )
    found = {w3.to_checksum_address(_topic_address(lg["topics"][2])) for lg in logs}
    assert found == set(devnet.accounts)

    emode_abi = [
        e
        for e in load_abi("devnet/Pool")
        if e.get("name") in ("getEModeCategoryCollateralConfig", "getEModeCategoryCollateralBitmap")
    ]
    emode_reader = w3.eth.contract(address=pool.address, abi=emode_abi)
    block = w3.eth.block_number
    in_emode = 0
    emode_users = sorted(a.address for a in devnet.book.accounts if a.emode)[:20]
    for user in sorted(found)[:40] + emode_users:
        category = pool.functions.getUserEMode(user).call(block_identifier=block)
        e_lt, bitmap = 0, 0
        if category:
            in_emode += 1
            e_lt = emode_reader.functions.getEModeCategoryCollateralConfig(category).call(
                block_identifier=block
            )[1]
            bitmap = emode_reader.functions.getEModeCategoryCollateralBitmap(category).call(
                block_identifier=block
            )
        weighted = debt = 0
        for rid, (asset, price, cfg) in enumerate(zip(reserves, prices, configs, strict=True)):
            decimals, lt = cfg[0], cfg[2]
            row = data.functions.getUserReserveData(asset, user).call(block_identifier=block)
            a_balance, variable_debt, as_collateral = row[0], row[2], row[8]
            if as_collateral and lt:
                lt_used = e_lt if category and (bitmap >> rid) & 1 else lt
                weighted += (a_balance * price // 10**decimals) * lt_used
            debt += -(-variable_debt * price // 10**decimals)
        expected = 2**256 - 1 if debt == 0 else ((weighted * 10**18 + debt // 2) // debt) // 10_000
        got = pool.functions.getUserAccountData(user).call(block_identifier=block)[5]
        assert got == expected, user
    assert in_emode >= 20
