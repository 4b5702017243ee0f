"""An outside reader's view of the devnet: web3.py and Aave V3's public interface only.

Resolves the market through the PoolAddressesProvider, finds accounts by scanning Supply and
Borrow logs, and recomputes every health factor from raw balances (data provider), oracle
prices and reserve configurations, the way the acceptance check does.
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

    for user in sorted(found)[:40]:
        weighted = debt = 0
        for asset, price, cfg in zip(reserves, prices, configs, strict=True):
            decimals, lt = cfg[0], cfg[2]
            row = data.functions.getUserReserveData(asset, user).call()
            a_balance, variable_debt, as_collateral = row[0], row[2], row[8]
            if as_collateral and lt:
                weighted += (a_balance * price // 10**decimals) * lt
            debt += -(-variable_debt * price // 10**decimals)
        expected = 2**256 - 1 if debt == 0 else ((weighted * 10**18 + debt // 2) // debt) // 10_000
        assert pool.functions.getUserAccountData(user).call()[5] == expected, user
