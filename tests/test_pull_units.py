"""Pull pieces that need no chain: ABIs, call encoding, Multicall3, bitmaps, discovery,
the discovery cache, DEX maps, deployment files, the adapter registry, snapshot assembly."""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import eth_abi
import numpy as np
import pytest
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts_abi import abi_names, load_abi
from keeper.adapters.aave_v3 import (
    CHANGE_EVENTS,
    OPEN_EVENTS,
    decode_reserve_configuration,
    decode_user_configuration,
)
from keeper.adapters.abi import Function, event_topic, function, words
from keeper.adapters.base import (
    AccountPositions,
    DexLiquidity,
    Position,
    Prices,
    Reserve,
    adapter_names,
    get_adapter,
)
from keeper.adapters.multicall import Call, Multicall, decode_aggregate3, encode_aggregate3
from keeper.chain import RpcStats
from keeper.discovery import AdaptiveRange, DiscoveryCache, scan_accounts
from keeper.errors import (
    AdapterNotFound,
    CallReverted,
    ConfigError,
    DecodeError,
    RequestTooLarge,
    RpcError,
)
from keeper.pull import build_snapshot, load_dex_map, settings_from_deployment, summarize

# -- ABIs ----------------------------------------------------------------------------------

#: Selectors and topics as listed in Aave's public sources (IPool, IPoolDataProvider, the events).
SELECTORS = {
    ("Pool", "getUserAccountData"): "bf92857c",
    ("Pool", "getReservesList"): "d1946dbc",
    ("Pool", "getReserveData"): "35ea6a75",
    ("Pool", "getConfiguration"): "c44b11f7",
    ("Pool", "getUserConfiguration"): "4417a583",
    ("Pool", "liquidationCall"): "00a718a9",
    ("Multicall3", "aggregate3"): "82ad56cb",
}
TOPICS = {
    "Supply": "0x2b627736bca15cd5381dcf80b0bf11fd197d01a037c52b927a881a10fb73ba61",
    "Withdraw": "0x3115d1449a7b732c986cba18244e897a450f61e1bb8d589cd2e69e6c8924f9f7",
    "Borrow": "0xb3d084820fb1a9decffb176436bd02558d15fac9b0ddfed8c465bc7359d7dce0",
    "Repay": "0xa534c8dbe71f871f9f3530e97a74601fea17b426cae02e1c5aee42c96c784051",
    "LiquidationCall": "0xe413a321e8681d831f4dbccbca790d2952b56f977908e45be37335533e005286",
}


def test_every_abi_loads() -> None:
    assert abi_names() == [
        "AaveOracle",
        "AaveProtocolDataProvider",
        "AggregatorV3",
        "Comet",
        "ERC20",
        "Multicall3",
        "Pool",
        "PoolAddressesProvider",
        "PoolVersioned",
        "ScaledBalanceToken",
        "UniswapV2Pair",
        "UniswapV3Pool",
    ]
    for name in abi_names():
        abi = load_abi(name)
        assert abi and all("type" in e for e in abi)


def test_unknown_abi_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match=r"did you mean Pool"):
        load_abi("Pol")
    with pytest.raises(KeyError):
        load_abi("../pyproject")


@pytest.mark.parametrize(("key", "selector"), sorted(SELECTORS.items()))
def test_selectors_match_aave(key: tuple[str, str], selector: str) -> None:
    assert function(*key).selector.hex() == selector


@pytest.mark.parametrize(("name", "topic"), sorted(TOPICS.items()))
def test_event_topics_match_aave(name: str, topic: str) -> None:
    assert event_topic("Pool", name) == topic


def test_reserve_data_is_the_15_field_legacy_tuple() -> None:
    (out,) = function("Pool", "getReserveData").output_types
    assert out.startswith(
        "((uint256),uint128,uint128,uint128,uint128,uint128,uint40,uint16,address"
    )
    assert out.count(",") == 14


def test_discovery_reads_the_account_topic_of_each_event() -> None:
    assert {TOPICS["Supply"]: 2, TOPICS["Borrow"]: 2} == OPEN_EVENTS
    assert CHANGE_EVENTS[TOPICS["LiquidationCall"]] == 3
    assert CHANGE_EVENTS[TOPICS["Repay"]] == 2


addresses = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))


@given(addresses, addresses)
@settings(max_examples=50, deadline=None)
def test_fast_encoding_matches_eth_abi(asset: str, user: str) -> None:
    fn = function("AaveProtocolDataProvider", "getUserReserveData")
    assert fn.encode(asset, user) == fn.selector + eth_abi.encode(
        ["address", "address"], [asset, user]
    )
    prices = function("AaveOracle", "getAssetsPrices")
    assert prices.encode([asset, user]) == prices.selector + eth_abi.encode(
        ["address[]"], [[asset, user]]
    )


def test_decode_errors_name_the_call() -> None:
    fn = function("Pool", "getReservesList")
    with pytest.raises(DecodeError, match=r"Pool.getReservesList\(\) on 0xabc"):
        fn.decode(b"\x01\x02", what="on 0xabc")
    with pytest.raises(DecodeError, match=r"expected at least 288 bytes"):
        words(b"", 9)
    with pytest.raises(TypeError):
        function("Pool", "getUserConfiguration").encode()


def test_function_lookup_errors() -> None:
    with pytest.raises(KeyError, match="no function 'nope'"):
        function("Pool", "nope")
    assert isinstance(function("ERC20", "symbol"), Function)


# -- Multicall3 ----------------------------------------------------------------------------

calls_strategy = st.lists(
    st.tuples(addresses, st.booleans(), st.binary(max_size=100)), min_size=0, max_size=20
)


@given(calls_strategy)
@settings(max_examples=100, deadline=None)
def test_aggregate3_encoding_matches_eth_abi(calls: list[tuple[str, bool, bytes]]) -> None:
    ours = encode_aggregate3([Call(t, d, a) for t, a, d in calls])
    fn = function("Multicall3", "aggregate3")
    assert ours == fn.selector + eth_abi.encode(["(address,bool,bytes)[]"], [calls])


@given(st.lists(st.tuples(st.booleans(), st.binary(max_size=300)), max_size=30))
@settings(max_examples=100, deadline=None)
def test_aggregate3_decoding_matches_eth_abi(results: list[tuple[bool, bytes]]) -> None:
    data = eth_abi.encode(["(bool,bytes)[]"], [results])
    assert decode_aggregate3(data, expected=len(results)) == results


def test_aggregate3_decoding_rejects_bad_answers() -> None:
    data = eth_abi.encode(["(bool,bytes)[]"], [[(True, b"abc")]])
    with pytest.raises(DecodeError, match="1 results for 2 calls"):
        decode_aggregate3(data, expected=2)
    with pytest.raises(DecodeError, match="truncated"):
        decode_aggregate3(data[:-40])


class FakeCallChain:
    """Executes aggregate3 in Python: each call answers its calldata reversed; refuses
    batches larger than ``limit`` like a node running out of gas."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.batches: list[int] = []
        self.stats = RpcStats()

    async def call(self, to: str, data: bytes, block: int, *, what: str = "") -> bytes:
        decoded = eth_abi.decode(["(address,bool,bytes)[]"], data[4:])[0]
        self.batches.append(len(decoded))
        if len(decoded) > self.limit:
            raise CallReverted("out of gas")
        return eth_abi.encode(["(bool,bytes)[]"], [[(True, d[::-1]) for _, _, d in decoded]])


def test_multicall_splits_refused_batches_and_keeps_order() -> None:
    chain = FakeCallChain(limit=7)
    multicall = Multicall(chain, batch_size=20)  # type: ignore[arg-type]
    calls = [Call("0x" + "11" * 20, i.to_bytes(4, "big")) for i in range(50)]
    seen: list[int] = []
    out = asyncio.run(multicall.run(calls, 5, on_batch=seen.append))
    assert [d for _, d in out] == [i.to_bytes(4, "big")[::-1] for i in range(50)]
    assert sum(seen) == 50
    assert max(b for b in chain.batches if b <= 7) <= 7
    assert multicall.batch_size <= 10  # remembered for later batches
    assert chain.stats.multicall_calls == 50


def test_multicall_single_refused_call_raises() -> None:
    chain = FakeCallChain(limit=0)
    multicall = Multicall(chain, batch_size=4)  # type: ignore[arg-type]
    with pytest.raises(CallReverted):
        asyncio.run(multicall.run([Call("0x" + "11" * 20, b"\x01")], 1))


# -- bitmaps -------------------------------------------------------------------------------

FIELDS = [  # (name, low bit, width)
    ("ltv", 0, 16),
    ("liquidation_threshold", 16, 16),
    ("liquidation_bonus", 32, 16),
    ("decimals", 48, 8),
    ("active", 56, 1),
    ("frozen", 57, 1),
    ("borrowing_enabled", 58, 1),
    ("stable_borrowing_enabled", 59, 1),
    ("paused", 60, 1),
    ("borrowable_in_isolation", 61, 1),
    ("siloed_borrowing", 62, 1),
    ("flash_loan_enabled", 63, 1),
    ("reserve_factor", 64, 16),
    ("borrow_cap", 80, 36),
    ("supply_cap", 116, 36),
    ("liquidation_protocol_fee", 152, 16),
    ("emode_category", 168, 8),
    ("unbacked_mint_cap", 176, 36),
    ("debt_ceiling", 212, 40),
    ("virtual_accounting", 252, 1),
]


@given(st.tuples(*(st.integers(0, 2**w - 1) for _, _, w in FIELDS)))
@settings(max_examples=200, deadline=None)
def test_reserve_configuration_round_trip(values: tuple[int, ...]) -> None:
    word = 0
    for (_, lo, _), v in zip(FIELDS, values, strict=True):
        word |= v << lo
    decoded = decode_reserve_configuration(word)
    for (name, _, width), v in zip(FIELDS, values, strict=True):
        got = getattr(decoded, name)
        assert (int(got) if width == 1 else got) == v, name


def test_reserve_configuration_example() -> None:
    # WETH-like: LTV 80.5%, LT 83%, bonus 105%, 18 decimals, active, borrowable, RF 15%,
    # protocol fee 10%.
    word = 8050 | 8300 << 16 | 10500 << 32 | 18 << 48 | 1 << 56 | 1 << 58 | 1500 << 64 | 1000 << 152
    c = decode_reserve_configuration(word)
    assert (c.ltv, c.liquidation_threshold, c.liquidation_bonus, c.decimals) == (
        8050,
        8300,
        10500,
        18,
    )
    assert c.active and c.borrowing_enabled and not c.frozen and not c.paused
    assert (c.reserve_factor, c.liquidation_protocol_fee) == (1500, 1000)
    with pytest.raises(ValueError):
        decode_reserve_configuration(1 << 256)


def test_user_configuration_bit_order() -> None:
    # reserve 0: borrowing (bit 0); reserve 1: collateral (bit 3); reserve 3: both (bits 6, 7)
    word = 1 << 0 | 1 << 3 | 1 << 6 | 1 << 7
    assert decode_user_configuration(word) == ([0, 3], [1, 3])
    assert decode_user_configuration(0) == ([], [])
    assert decode_user_configuration(1 << 255) == ([], [127])


# -- discovery -----------------------------------------------------------------------------


def test_adaptive_range_halves_and_grows() -> None:
    r = AdaptiveRange(initial=1000, minimum=10, maximum=4000, probe_after=3)
    assert r.refused(1000) == 500
    assert r.refused(500) == 250 and r.ceiling == 500
    r.succeeded(100)  # a partial range says nothing about the limit
    assert r.size == 250
    # towards the smallest span refused, closing half the gap each time, never back to it
    sizes = []
    for _ in range(4):
        r.succeeded(r.size)
        sizes.append(r.size)
    assert sizes == [375, 437, 468, 468]  # holds within 1/8 of the 500 refused
    # a probe after ``probe_after`` successes at the hold: one range 1/4 larger, no ceiling
    r.succeeded(r.size)
    r.succeeded(r.size)
    assert r.size == 468 + 117 and r.ceiling is None
    for _ in range(10):
        r.succeeded(r.size)
    assert r.size == 4000
    with pytest.raises(RequestTooLarge, match="even for 10 block"):
        r.refused(10)
    with pytest.raises(ValueError):
        AdaptiveRange(initial=5, minimum=10)
    with pytest.raises(ValueError):
        AdaptiveRange(grow=1.0)


def test_adaptive_range_falls_back_to_the_largest_span_served() -> None:
    r = AdaptiveRange(initial=800)
    r.succeeded(800)
    assert r.size == 1600
    assert r.refused(1600) == 800  # the last span that passed, not a blind halving
    r.succeeded(800)
    assert r.size == 1200
    assert r.refused(1200) == 800
    # a denser stretch refuses what passed before: then halve
    assert r.refused(800) == 400 and r.accepted == 0


SUPPLY = TOPICS["Supply"]
BORROW = TOPICS["Borrow"]
OTHER = TOPICS["Repay"]


def _topic(account: int) -> str:
    return "0x" + account.to_bytes(32, "big").hex()


class FakeLogChain:
    """Serves synthetic logs and refuses ranges longer than ``max_span`` blocks."""

    def __init__(self, logs: list[dict[str, Any]], max_span: int) -> None:
        self.logs = logs
        self.max_span = max_span
        self.ranges: list[tuple[int, int]] = []
        self.refused = 0

    async def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        self.ranges.append((from_block, to_block))
        await asyncio.sleep(0)
        if to_block - from_block + 1 > self.max_span:
            self.refused += 1
            raise RequestTooLarge("query returned more than 10000 results")
        wanted = {t.lower() for t in topics[0]}
        return [
            entry
            for entry in self.logs
            if from_block <= int(entry["blockNumber"], 16) <= to_block
            and entry["topics"][0] in wanted
        ]


def _synthetic_logs(n_blocks: int, seed: int = 3) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    logs = []
    for block in range(n_blocks):
        for _ in range(int(rng.integers(0, 3))):
            account = int(rng.integers(1, 400))
            topic0 = [SUPPLY, BORROW, OTHER][int(rng.integers(0, 3))]
            logs.append(
                {
                    "blockNumber": hex(block),
                    "topics": [topic0, _topic(0xAAAA), _topic(account), _topic(0)],
                }
            )
    return logs


def _expected(logs: list[dict[str, Any]], lo: int, hi: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for entry in logs:
        block = int(entry["blockNumber"], 16)
        if lo <= block <= hi and entry["topics"][0] in (SUPPLY, BORROW):
            account = "0x" + entry["topics"][2][-40:]
            out[account] = min(out.get(account, block), block)
    return out


def test_scan_adapts_to_the_node_and_finds_every_account() -> None:
    logs = _synthetic_logs(3000)
    chain = FakeLogChain(logs, max_span=300)
    ranges = AdaptiveRange(initial=2000, maximum=100_000)
    found = asyncio.run(
        scan_accounts(chain, "0xpool", OPEN_EVENTS, 10, 2999, ranges=ranges, concurrency=3)  # type: ignore[arg-type]
    )
    assert found == _expected(logs, 10, 2999)
    assert chain.refused >= 1
    served = [(a, b) for a, b in chain.ranges if b - a + 1 <= 300]
    covered = sorted(served)
    # the served ranges tile [10, 2999] exactly once
    assert covered[0][0] == 10 and covered[-1][1] == 2999
    assert all(b + 1 == c for (_, b), (c, _) in itertools.pairwise(covered))
    # after adapting, most requests succeed
    assert chain.refused < len(served)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_scan_settles_under_the_node_limit_instead_of_thrashing(concurrency: int) -> None:
    """A node that refuses more than 1,000 blocks: after the first refusals most requests
    succeed (the range does not climb back to a refused size), and only one range at a time
    tries a larger size, so a refusal does not cost a whole window of requests."""
    chain = FakeLogChain([], max_span=1000)
    ranges = AdaptiveRange(initial=5000)
    asyncio.run(
        scan_accounts(
            chain, "0xpool", OPEN_EVENTS, 0, 99_999, ranges=ranges, concurrency=concurrency
        )  # type: ignore[arg-type]
    )
    served = sorted((a, b) for a, b in chain.ranges if b - a + 1 <= 1000)
    assert served[0][0] == 0 and served[-1][1] == 99_999
    assert all(b + 1 == c for (_, b), (c, _) in itertools.pairwise(served))
    ideal = 100
    # before: 243-252 requests, 83-92 of them refused (every grown range refused again)
    assert len(chain.ranges) <= 1.5 * ideal, len(chain.ranges)
    assert chain.refused <= 3 * concurrency + 12, chain.refused


class CountingLogChain:
    """Refuses a range holding more than ``limit`` logs (Infura's "query returned more than
    10000 results"); ``counts[b]`` logs in block b."""

    def __init__(self, counts: np.ndarray, limit: int) -> None:
        self.cum = np.concatenate([[0], np.cumsum(counts)])
        self.limit = limit
        self.ranges: list[tuple[int, int]] = []
        self.refused = 0

    async def get_logs(
        self, address: str, topics: Sequence[Any], from_block: int, to_block: int
    ) -> list[dict[str, Any]]:
        self.ranges.append((from_block, to_block))
        await asyncio.sleep(0)
        if self.cum[to_block + 1] - self.cum[from_block] > self.limit:
            self.refused += 1
            raise RequestTooLarge(f"query returned more than {self.limit} results")
        return []


def test_scan_follows_a_changing_log_density() -> None:
    rng = np.random.default_rng(1)
    counts = np.concatenate(
        [rng.poisson(lam, 50_000) for lam in (0.05, 2.0, 0.3, 5.0)]  # sparse, dense, ...
    )
    chain = CountingLogChain(counts, limit=10_000)
    asyncio.run(
        scan_accounts(chain, "0xpool", OPEN_EVENTS, 0, len(counts) - 1, concurrency=4)  # type: ignore[arg-type]
    )
    served = sorted(
        (a, b) for a, b in chain.ranges if chain.cum[b + 1] - chain.cum[a] <= chain.limit
    )
    assert served[0][0] == 0 and served[-1][1] == len(counts) - 1
    assert all(b + 1 == c for (_, b), (c, _) in itertools.pairwise(served))
    # the fewest requests that could do it (greedy, knowing the counts) is 37;
    # before: 111 requests, 42 refused
    assert len(chain.ranges) <= 100 and chain.refused <= 20, (len(chain.ranges), chain.refused)


def test_scan_of_an_empty_range() -> None:
    chain = FakeLogChain([], max_span=10)
    assert asyncio.run(scan_accounts(chain, "0xpool", OPEN_EVENTS, 5, 4)) == {}  # type: ignore[arg-type]
    assert chain.ranges == []


def test_scan_gives_up_when_even_one_block_is_refused() -> None:
    chain = FakeLogChain(_synthetic_logs(20), max_span=0)
    with pytest.raises(RequestTooLarge, match="even for 1 block"):
        asyncio.run(scan_accounts(chain, "0xpool", OPEN_EVENTS, 0, 19))  # type: ignore[arg-type]


def test_discovery_cache(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "discovery.sqlite"
    cache = DiscoveryCache(path)
    pool = "0xE7f1725E7734CE288F8367e1Bb143E90bb3F0512"
    assert cache.state(1, pool) is None
    cache.record(
        1,
        pool,
        {"0xaa": 5, "0xbb": 9},
        start_block=3,
        start_hash="0x03",
        scanned_to=10,
        scanned_hash="0x10",
    )
    cache.record(
        1,
        pool,
        {"0xbb": 7, "0xcc": 12},
        start_block=3,
        start_hash="0x03",
        scanned_to=20,
        scanned_hash="0x20",
    )
    state = cache.state(1, pool.lower())
    assert state is not None
    assert (state.start_block, state.start_hash, state.scanned_to, state.scanned_hash) == (
        3,
        "0x03",
        20,
        "0x20",
    )
    assert state.accounts == 3
    assert cache.accounts(1, pool) == ["0xaa", "0xbb", "0xcc"]
    assert cache.accounts(1, pool, up_to_block=7) == ["0xaa", "0xbb"]  # first block kept at min
    assert cache.accounts(1, pool, up_to_block=6) == ["0xaa"]
    assert cache.state(5, pool) is None  # keyed by chain id too
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    cache.forget(1, pool)
    assert cache.state(1, pool) is None and cache.accounts(1, pool) == []


def test_discovery_cache_bad_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot open"):
        DiscoveryCache(blocker / "discovery.sqlite")


def test_default_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from keeper.discovery import default_cache_path

    monkeypatch.delenv("SHORTFALL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / "shortfall" / "discovery.sqlite"
    monkeypatch.setenv("SHORTFALL_CACHE_DIR", str(tmp_path / "x"))
    assert default_cache_path() == tmp_path / "x" / "discovery.sqlite"


# -- registry, DEX maps, deployment files ---------------------------------------------------


def test_adapter_registry_suggests() -> None:
    assert "aave-v3" in adapter_names()
    assert get_adapter("aave-v3").name == "aave-v3"
    with pytest.raises(
        AdapterNotFound, match=r"unknown protocol 'aave-v2'; did you mean 'aave-v3'\?"
    ):
        get_adapter("aave-v2")
    with pytest.raises(AdapterNotFound, match="known: aave-v3"):
        get_adapter("zzzz")


PAIR = "0x5f3f1dBD7B74C6B46e8c44f98792A1dAf8d69154"
WETH = "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853"
USDC = "0xc3e53F4d16Ae77Db1c982e75a937B9f60FE63690"


def test_dex_map_json_and_toml(tmp_path: Path) -> None:
    j = tmp_path / "dex.json"
    j.write_text(json.dumps({"WETH": PAIR.lower(), WETH: {"pair": PAIR, "fee": 0.0005}}))
    got = load_dex_map(j)
    assert got["WETH"].pair == PAIR and got["WETH"].fee == 0.003
    assert got[WETH].fee == 0.0005
    t = tmp_path / "dex.toml"
    t.write_text(f'WETH = "{PAIR}"\n[WBTC]\npair = "{PAIR}"\nfee = 0.01\n')
    got = load_dex_map(t)
    assert got["WBTC"].fee == 0.01 and got["WETH"].kind == "uniswap-v2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"WETH": "0x123"}', "is not an address"),
        ('{"WETH": {"pair": "' + PAIR + '", "fee": 2}}', "must be a fraction"),
        ('{"WETH": {"pair": "' + PAIR + '", "kind": "curve"}}', "is not one of"),
        ('{"WETH": 5}', "expected a pool address"),
        ("[1, 2]", "expected a table"),
        ("{", "not valid"),
    ],
)
def test_dex_map_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "dex.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_dex_map(path)
    with pytest.raises(ConfigError, match="cannot read"):
        load_dex_map(tmp_path / "missing.json")


def _deployment(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "rpc_url": "http://127.0.0.1:8545",
        "chain_id": 31337,
        "pool_addresses_provider": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "pool": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512",
        "multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
        "reserves": {"WETH": {"token": WETH, "feed": PAIR, "dex_pair": PAIR}},
    }
    base.update(changes)
    return base


def test_settings_from_deployment(tmp_path: Path) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(_deployment()))
    s = settings_from_deployment(path, rps=3.0, block=None)
    assert s.expected_chain_id == 31337 and s.rps == 3.0 and s.block is None
    assert s.provider == "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    assert s.dex_sources[WETH].pair == PAIR


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"chain_id": 31337}, "missing 'rpc_url'"),
        (_deployment(chain_id="x"), "'chain_id' must be an integer"),
        (_deployment(pool_addresses_provider="nope"), "is not an address"),
        (_deployment(reserves=[1]), "'reserves' must map"),
    ],
)
def test_bad_deployment_files(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message):
        settings_from_deployment(path)


# -- snapshot assembly ---------------------------------------------------------------------


def _reserve(asset: str, symbol: str, decimals: int, rid: int, lt: int, bonus: int) -> Reserve:
    return Reserve(
        asset=asset,
        symbol=symbol,
        decimals=decimals,
        reserve_id=rid,
        ltv_bps=lt - 300,
        liquidation_threshold_bps=lt,
        liquidation_bonus_bps=bonus,
        reserve_factor_bps=1000,
        protocol_fee_bps=1000,
        active=True,
        frozen=False,
        paused=False,
        borrowing_enabled=True,
        emode_category=0,
    )


def _meta() -> dict[str, Any]:
    return {
        "protocol": "aave-v3",
        "chain_id": 31337,
        "block_number": 10,
        "block_hash": "0x" + "ab" * 32,
        "timestamp": 1_700_000_000,
        "addresses": {"pool": "0x1"},
        "software_version": "0.1.0",
    }


def test_build_snapshot_converts_exact_integers_once() -> None:
    reserves = [
        _reserve(WETH, "WETH", 18, 0, 8300, 10500),
        _reserve(USDC, "USDC", 6, 1, 7800, 10450),
    ]
    prices = Prices(raw={WETH: 3000 * 10**8, USDC: 99_990_000}, base_unit=10**8)
    alice = "0x000240995eBf77a98c42B469e5dF5c9595f343Db"
    found = AccountPositions(
        positions=[
            Position(alice, WETH, 2 * 10**18 + 1, 0, True),
            Position(alice, USDC, 0, 1_234_567_891, False),
        ],
        emode={},
        accounts_read=3,
    )
    dex = {WETH: DexLiquidity(WETH, PAIR, USDC, 10**21, 3 * 10**12, 18, 6, 0.003)}
    snap = build_snapshot(_meta(), reserves, prices, found, dex)
    r = snap.reserves.set_index("symbol")
    assert r.loc["WETH", "liquidation_bonus"] == pytest.approx(0.05)
    assert r.loc["USDC", "liquidation_bonus"] == pytest.approx(0.045)
    assert r.loc["USDC", "price_usd"] == 0.9999
    # the quote reserve in USD: 3,000,000 USDC at the oracle's 0.9999
    assert r.loc["WETH", "dex_reserve_asset"] == 1000.0
    assert r.loc["WETH", "dex_reserve_quote"] == pytest.approx(3e6 * 0.9999, rel=1e-15)
    assert r.loc["USDC", "dex_pair"] == "" and r.loc["USDC", "dex_reserve_asset"] == 0.0
    p = snap.positions.set_index("asset")
    assert p.loc[WETH, "collateral"] == (2 * 10**18 + 1) / 10**18
    assert p.loc[USDC, "debt"] == 1234.567891
    s = summarize(snap)
    assert s["accounts"] == 1 and s["positions"] == 2
    assert s["debt_usd"] == pytest.approx(1234.567891 * 0.9999)
    hf = snap.book().health_factor()[0]
    assert hf == pytest.approx(2 * 3000 * 0.83 / (1234.567891 * 0.9999), rel=1e-12)


def test_build_snapshot_of_an_empty_market() -> None:
    reserves = [_reserve(WETH, "WETH", 18, 0, 8300, 10500)]
    prices = Prices(raw={WETH: 3000 * 10**8}, base_unit=10**8)
    snap = build_snapshot(_meta(), reserves, prices, AccountPositions([], {}, 0), {})
    assert snap.positions.empty and summarize(snap)["accounts"] == 0


def test_reserve_without_a_bonus_reads_zero_premium() -> None:
    assert _reserve(WETH, "X", 18, 0, 0, 0).liquidation_bonus == 0.0
    assert not _reserve(WETH, "X", 18, 0, 0, 0).usage_as_collateral_enabled


class GasCappedChain(FakeCallChain):
    """Answers like a node whose eth_call gas cap a large batch exceeds."""

    def __init__(self, limit: int, message: str) -> None:
        super().__init__(limit)
        self.message = message

    async def call(self, to: str, data: bytes, block: int, *, what: str = "") -> bytes:
        decoded = eth_abi.decode(["(address,bool,bytes)[]"], data[4:])[0]
        if len(decoded) > self.limit:
            self.batches.append(len(decoded))
            raise RpcError(self.message, code=-32000)
        return await super().call(to, data, block, what=what)


def test_multicall_splits_on_a_gas_cap_error_only() -> None:
    calls = [Call("0x" + "11" * 20, i.to_bytes(2, "big")) for i in range(16)]
    capped = GasCappedChain(4, "eth_call: gas required exceeds allowance (50000000)")
    out = asyncio.run(Multicall(capped, batch_size=16).run(calls, 1))  # type: ignore[arg-type]
    assert len(out) == 16 and all(ok for ok, _ in out)
    broken = GasCappedChain(4, "the method eth_call does not exist")
    with pytest.raises(RpcError, match="does not exist"):
        asyncio.run(Multicall(broken, batch_size=16).run(calls, 1))  # type: ignore[arg-type]
    assert broken.batches == [16]  # not split: splitting would not help


def test_scan_checkpoints_only_fully_scanned_prefixes() -> None:
    logs = _synthetic_logs(2000, seed=5)
    chain = FakeLogChain(logs, max_span=100)
    saved: list[tuple[dict[str, int], int]] = []

    async def checkpoint(found: dict[str, int], upto: int) -> None:
        saved.append((found, upto))

    found = asyncio.run(
        scan_accounts(
            chain,  # type: ignore[arg-type]
            "0xpool",
            OPEN_EVENTS,
            0,
            1999,
            ranges=AdaptiveRange(initial=50, maximum=100),
            concurrency=4,
            checkpoint=checkpoint,
            checkpoint_seconds=0.0,
        )
    )
    assert found == _expected(logs, 0, 1999)
    assert len(saved) >= 5
    marks = [upto for _, upto in saved]
    assert marks == sorted(marks) and marks[-1] < 1999
    for partial, upto in saved:
        expected = _expected(logs, 0, upto)
        assert all(partial.get(a) == b for a, b in expected.items())  # nothing below is missing
