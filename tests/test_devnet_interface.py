"""The devnet contracts answer Aave V3's public interface exactly.

Three checks: the selectors and event topics that reference/PROTOCOLS.md lists; every function
and event of the interface ABIs in ``contracts_abi/`` (real Aave V3 / Multicall3 / Chainlink /
Uniswap V2 subsets) present in the compiled devnet ABI with the same outputs, mutability and
indexed flags; and every view function of those interfaces answering on the running devnet,
decoded with the interface ABI's own output types.
"""

from __future__ import annotations

import json
from importlib import resources

import pytest

from keeper.devnet.chain import Contract, _type_str, function_signature, selector

# From reference/PROTOCOLS.md (Aave V3 read API, events, Multicall3).
PROTOCOL_SELECTORS = {
    "Pool": {
        "getUserAccountData(address)": "bf92857c",
        "getReservesList()": "d1946dbc",
        "getReserveData(address)": "35ea6a75",
        "getConfiguration(address)": "c44b11f7",
        "getUserConfiguration(address)": "4417a583",
        "liquidationCall(address,address,address,uint256,bool)": "00a718a9",
        # liquid e-mode (aave-v3-origin v3.2+, the LTV-zero bitmap v3.4+, isolated v3.7)
        "getUserEMode(address)": "eddf1b79",
        "setUserEMode(uint8)": "28530a47",
        "getEModeCategoryCollateralConfig(uint8)": "b286f467",
        "getEModeCategoryLabel(uint8)": "2083e183",
        "getEModeCategoryCollateralBitmap(uint8)": "b0771dba",
        "getEModeCategoryBorrowableBitmap(uint8)": "903a2c71",
        "getEModeCategoryLtvzeroBitmap(uint8)": "fd89dee5",
        "getEModeCategoryData(uint8)": "6c6f6ae1",
        # interest
        "getReserveNormalizedIncome(address)": "d15e0053",
        "getReserveNormalizedVariableDebt(address)": "386497fd",
    },
    "DevnetScaledToken": {
        "scaledBalanceOf(address)": "1da24f3e",
        "scaledTotalSupply()": "b1bf962d",
        "getScaledUserBalanceAndSupply(address)": "0afbcdc9",
    },
    "Multicall3": {"aggregate3((address,bool,bytes)[])": "82ad56cb"},
}
PROTOCOL_TOPICS = {
    "Supply(address,address,address,uint256,uint16)": "2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
    "Withdraw(address,address,address,uint256)": "3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
    "Borrow(address,address,address,uint256,uint8,uint256,uint16)": "b3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
    "Repay(address,address,address,uint256,bool)": "a534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
    "LiquidationCall(address,address,address,uint256,uint256,address,bool)": "e413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
}
# interface ABI (contracts_abi/NAME.json) -> devnet contract implementing it
IMPLEMENTS = {
    "Pool": "Pool",
    "PoolAddressesProvider": "PoolAddressesProvider",
    "AaveOracle": "AaveOracle",
    "AaveProtocolDataProvider": "AaveProtocolDataProvider",
    "ERC20": "DevnetERC20",
    "Multicall3": "Multicall3",
    "AggregatorV3": "DevnetPriceFeed",
    "UniswapV2Pair": "UniswapV2Pair",
}


def devnet_abi(name: str) -> list[dict]:
    return json.loads(
        resources.files("contracts_abi").joinpath("devnet", f"{name}.json").read_text()
    )


def interface_abi(name: str) -> list[dict] | None:
    path = resources.files("contracts_abi").joinpath(f"{name}.json")
    return json.loads(path.read_text()) if path.is_file() else None


def by_signature(abi: list[dict], kind: str) -> dict[str, dict]:
    return {function_signature(e): e for e in abi if e["type"] == kind}


@pytest.mark.parametrize("contract", sorted(PROTOCOL_SELECTORS))
def test_protocol_selectors(contract: str) -> None:
    functions = by_signature(devnet_abi(contract), "function")
    for signature, expected in PROTOCOL_SELECTORS[contract].items():
        assert signature in functions, signature
        assert selector(functions[signature]).hex() == expected


def test_emode_getters_return_the_real_types() -> None:
    functions = by_signature(devnet_abi("Pool"), "function")
    outputs = {
        "getEModeCategoryCollateralConfig(uint8)": ["(uint16,uint16,uint16)"],
        "getEModeCategoryData(uint8)": ["(uint16,uint16,uint16,address,string)"],
        "getEModeCategoryLabel(uint8)": ["string"],
        "getEModeCategoryCollateralBitmap(uint8)": ["uint128"],
        "getEModeCategoryBorrowableBitmap(uint8)": ["uint128"],
        "getEModeCategoryLtvzeroBitmap(uint8)": ["uint128"],
        "getIsEModeCategoryIsolated(uint8)": ["bool"],
        "getUserEMode(address)": ["uint256"],
    }
    for signature, types in outputs.items():
        assert [_type_str(o) for o in functions[signature]["outputs"]] == types, signature
    events = by_signature(devnet_abi("Pool"), "event")
    assert selector(events["UserEModeSet(address,uint8)"]).hex() == (
        "d728da875fc88944cbf17638bcbe4af0eedaef63becd1d1c57cc097eb4608d84"
    )
    assert [i["indexed"] for i in events["UserEModeSet(address,uint8)"]["inputs"]] == [True, False]


def test_protocol_event_topics() -> None:
    events = by_signature(devnet_abi("Pool"), "event")
    for signature, expected in PROTOCOL_TOPICS.items():
        assert selector(events[signature]).hex() == expected, signature
    assert "DeficitCreated(address,address,uint256)" in events
    assert [i["indexed"] for i in events["DeficitCreated(address,address,uint256)"]["inputs"]] == [
        True,
        True,
        False,
    ]


def test_reserve_data_is_the_15_field_legacy_tuple() -> None:
    fn = by_signature(devnet_abi("Pool"), "function")["getReserveData(address)"]
    (out,) = fn["outputs"]
    assert _type_str(out) == (
        "((uint256),uint128,uint128,uint128,uint128,uint128,uint40,uint16,"
        "address,address,address,address,uint128,uint128,uint128)"
    )


@pytest.mark.parametrize("iface", sorted(IMPLEMENTS))
def test_interface_abi_is_implemented(iface: str) -> None:
    wanted = interface_abi(iface)
    assert wanted is not None, f"contracts_abi/{iface}.json is missing"
    have = devnet_abi(IMPLEMENTS[iface])
    functions, events = by_signature(have, "function"), by_signature(have, "event")
    for entry in wanted:
        sig = function_signature(entry) if entry["type"] in ("function", "event") else None
        if entry["type"] == "function":
            assert sig in functions, f"{IMPLEMENTS[iface]} lacks {sig}"
            got = functions[sig]
            assert [_type_str(o) for o in got["outputs"]] == [
                _type_str(o) for o in entry["outputs"]
            ], sig
            assert got["stateMutability"] == entry["stateMutability"], sig
        elif entry["type"] == "event":
            assert sig in events, f"{IMPLEMENTS[iface]} lacks event {sig}"
            assert [i["indexed"] for i in events[sig]["inputs"]] == [
                i["indexed"] for i in entry["inputs"]
            ], sig


def _args(fn: dict, devnet) -> list:
    dep = devnet.deployment
    token = dep["reserves"]["WETH"]["token"]
    user = devnet.accounts[0]
    tokens = [r["token"] for r in dep["reserves"].values()]
    out = []
    for i, inp in enumerate(fn["inputs"]):
        t = _type_str(inp)
        if t == "address":
            out.append(
                user
                if "user" in inp["name"].lower() or (i > 0 and fn["name"] != "allowance")
                else token
            )
        elif t == "address[]":
            out.append(tokens)
        elif t.startswith("uint"):
            out.append(1)
        elif t == "bytes32":
            out.append(b"POOL".ljust(32, b"\0"))
        else:
            pytest.fail(f"no sample argument for {t} in {function_signature(fn)}")
    return out


@pytest.mark.integration
@pytest.mark.parametrize("iface", sorted(IMPLEMENTS))
def test_interface_views_answer_on_devnet(iface: str, devnet) -> None:
    dep = devnet.deployment
    address = {
        "Pool": dep["pool"],
        "PoolAddressesProvider": dep["pool_addresses_provider"],
        "AaveOracle": dep["oracle"],
        "AaveProtocolDataProvider": dep["data_provider"],
        "ERC20": dep["reserves"]["USDC"]["token"],
        "Multicall3": dep["multicall3"],
        "AggregatorV3": dep["reserves"]["WETH"]["feed"],
        "UniswapV2Pair": dep["reserves"]["WETH"]["dex_pair"],
    }[iface]
    abi = interface_abi(iface)
    assert abi is not None
    contract = Contract(devnet.rpc, address, abi)
    answered = 0
    for fn in abi:
        if fn["type"] != "function" or fn["stateMutability"] not in ("view", "pure"):
            continue
        if fn["name"] == "getRoundData":
            args = [devnet.contract("DevnetPriceFeed", address).call("latestRound")]
        else:
            args = _args(fn, devnet)
        contract.call(fn["name"], *args)  # decodes with the interface's output types
        answered += 1
    assert answered > 0
