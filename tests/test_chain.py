"""keeper.chain: error classification, backoff, retries, pacing, counters, redaction.

The transport is replaced by scripted fakes here (unit tests); the integration tests in
test_pull_integration.py run the same client against a real anvil through a faulty proxy.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from keeper.chain import (
    TRANSIENT,
    Chain,
    ChainSettings,
    ErrorKind,
    backoff_delay,
    classify_exception,
    classify_rpc_error,
)
from keeper.errors import (
    CallReverted,
    ChainError,
    RequestTooLarge,
    RpcError,
    RpcRateLimited,
    RpcUnavailable,
    StateUnavailable,
    WrongChain,
)
from simulator.errors import ShortfallError

SECRET_URL = "https://eth-mainnet.example.org/v2/SECRETKEY123?token=abc"


def _http_error(status: int, headers: dict[str, str] | None = None) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(
        url=URL(SECRET_URL),
        method="POST",
        headers=CIMultiDictProxy(CIMultiDict()),
        real_url=URL(SECRET_URL),
    )
    return aiohttp.ClientResponseError(
        info,
        (),
        status=status,
        message="boom",
        headers=CIMultiDictProxy(CIMultiDict(headers or {})),
    )


@pytest.mark.parametrize(
    ("error", "method", "kind"),
    [
        ({"code": 3, "message": "execution reverted: nope"}, "eth_call", ErrorKind.REVERT),
        ({"code": -32000, "message": "execution reverted"}, "eth_call", ErrorKind.REVERT),
        ({"code": -32000, "message": "out of gas"}, "eth_call", ErrorKind.REVERT),
        (
            {"code": -32005, "message": "query returned more than 10000 results"},
            "eth_getLogs",
            ErrorKind.TOO_LARGE,
        ),
        (
            {"code": -32602, "message": "Log response size exceeded. Try a 2K block range"},
            "eth_getLogs",
            ErrorKind.TOO_LARGE,
        ),
        (
            {"code": -32000, "message": "eth_getLogs is limited to a 10,000 range"},
            "eth_getLogs",
            ErrorKind.TOO_LARGE,
        ),
        ({"code": -32000, "message": "block range too large"}, "eth_getLogs", ErrorKind.TOO_LARGE),
        ({"code": -32005, "message": "limit exceeded"}, "eth_getLogs", ErrorKind.TOO_LARGE),
        (
            {"code": -32005, "message": "daily request count exceeded, request rate limited"},
            "eth_getLogs",
            ErrorKind.RATE_LIMITED,
        ),
        ({"code": 429, "message": "Too Many Requests"}, "eth_call", ErrorKind.RATE_LIMITED),
        (
            {"code": -32000, "message": "missing trie node abc (path )"},
            "eth_call",
            ErrorKind.STATE_UNAVAILABLE,
        ),
        ({"code": -32000, "message": "header not found"}, "eth_call", ErrorKind.BLOCK_UNKNOWN),
        ({"code": -39001, "message": "Unknown block"}, "eth_call", ErrorKind.BLOCK_UNKNOWN),
        (  # anvil, for a block above its head: not a request that is too large
            {
                "code": -32602,
                "message": "BlockOutOfRangeError: block height is 0 but requested was 500",
            },
            "eth_call",
            ErrorKind.BLOCK_UNKNOWN,
        ),
        (
            {"code": -32603, "message": "internal error: timeout"},
            "eth_call",
            ErrorKind.SERVER_ERROR,
        ),
        ({"code": -32601, "message": "method not found"}, "eth_foo", ErrorKind.RPC_ERROR),
        ({"code": -32602, "message": "invalid params"}, "eth_call", ErrorKind.RPC_ERROR),
        ("not an object", "eth_call", ErrorKind.BAD_RESPONSE),
    ],
)
def test_classify_rpc_error(error: Any, method: str, kind: ErrorKind) -> None:
    assert classify_rpc_error(error, method) is kind


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_http_error(429), ErrorKind.RATE_LIMITED),
        (_http_error(502), ErrorKind.SERVER_ERROR),
        (_http_error(503), ErrorKind.SERVER_ERROR),
        (_http_error(413), ErrorKind.TOO_LARGE),
        (_http_error(401), ErrorKind.CLIENT_ERROR),
        (TimeoutError(), ErrorKind.TIMEOUT),
        (aiohttp.ServerDisconnectedError(), ErrorKind.CONNECTION),
        (ConnectionResetError(104, "Connection reset by peer"), ErrorKind.CONNECTION),
        (aiohttp.ClientPayloadError("truncated"), ErrorKind.BAD_RESPONSE),
        (KeyError("bug"), None),
    ],
)
def test_classify_exception(exc: BaseException, kind: ErrorKind | None) -> None:
    assert classify_exception(exc) is kind


def test_transient_kinds_are_exactly_the_retryable_ones() -> None:
    assert {k.value for k in TRANSIENT} == {
        "timeout",
        "rate_limited",
        "server_error",
        "connection",
        "bad_response",
        "block_unknown",
    }


def test_backoff_is_full_jitter_below_a_doubling_capped_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(2.0, 0.1 * 2**attempt)
        delays = [backoff_delay(attempt, 0.1, 2.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.5 * ceiling  # really spread over the interval
    assert backoff_delay(10_000, 0.1, 2.0, rng) <= 2.0


class Script:
    """A fake transport answering from a script: exceptions are raised, dicts returned."""

    def __init__(self, *steps: Any, delay: float = 0.0) -> None:
        self.steps = list(steps)
        self.calls: list[tuple[str, Sequence[Any]]] = []
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        self.calls.append((method, params))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            step = self.steps.pop(0) if self.steps else {"jsonrpc": "2.0", "id": 1, "result": "0x1"}
            if isinstance(step, BaseException):
                raise step
            if isinstance(step, float):
                await asyncio.sleep(step)
                return {"result": "0xslow"}
            return step
        finally:
            self.in_flight -= 1


def _chain(script: Script, **kw: Any) -> Chain:
    settings = ChainSettings(
        rpc_url=SECRET_URL,
        rps=kw.pop("rps", 0),
        retries=kw.pop("retries", 4),
        backoff_base=0.001,
        backoff_max=kw.pop("backoff_max", 0.01),
        timeout=kw.pop("timeout", 5.0),
        **kw,
    )
    return Chain(settings, send=script, rng=random.Random(0))


def test_transient_failures_are_retried_and_counted() -> None:
    script = Script(
        _http_error(429),
        TimeoutError(),
        aiohttp.ServerDisconnectedError(),
        {"error": {"code": -32603, "message": "internal error: timeout"}},
        {"result": "0x2a"},
    )
    chain = _chain(script, retries=5)
    assert asyncio.run(chain.request("eth_blockNumber", [])) == "0x2a"
    assert len(script.calls) == 5
    assert chain.stats.requests["eth_blockNumber"] == 5
    assert chain.stats.retries == 4
    assert dict(chain.stats.errors) == {
        "rate_limited": 1,
        "timeout": 1,
        "connection": 1,
        "server_error": 1,
    }


def test_retry_after_header_is_honoured() -> None:
    script = Script(_http_error(429, {"Retry-After": "0.2"}), {"result": "0x1"})
    chain = _chain(script, backoff_max=1.0)
    start = time.perf_counter()
    asyncio.run(chain.request("eth_chainId", []))
    assert time.perf_counter() - start >= 0.19


def test_a_revert_fails_at_once_with_context() -> None:
    script = Script({"error": {"code": 3, "message": "execution reverted: NOT_ADMIN"}})
    chain = _chain(script)
    with pytest.raises(CallReverted, match=r"eth_call getPool\(\) on 0xabc reverted") as info:
        asyncio.run(chain.request("eth_call", [], what="getPool() on 0xabc"))
    assert len(script.calls) == 1
    assert isinstance(info.value, ShortfallError) and isinstance(info.value, RuntimeError)


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (
            {"error": {"code": -32005, "message": "query returned more than 10000 results"}},
            RequestTooLarge,
        ),
        ({"error": {"code": -32000, "message": "missing trie node"}}, StateUnavailable),
        ({"error": {"code": -32601, "message": "the method eth_foo does not exist"}}, RpcError),
        (_http_error(401), RpcUnavailable),
    ],
)
def test_fatal_errors_are_not_retried(step: Any, error: type[Exception]) -> None:
    script = Script(step)
    chain = _chain(script)
    with pytest.raises(error):
        asyncio.run(chain.request("eth_getLogs", []))
    assert len(script.calls) == 1


def test_exhausted_rate_limit_says_what_to_do_without_the_secret() -> None:
    script = Script(*[_http_error(429)] * 10)
    chain = _chain(script, retries=3)
    with pytest.raises(RpcRateLimited) as info:
        asyncio.run(chain.request("eth_call", []))
    message = str(info.value)
    assert len(script.calls) == 4
    assert "--rps" in message
    assert "SECRETKEY123" not in message and "token=abc" not in message
    assert "https://eth-mainnet.example.org" in message


def test_unreachable_endpoint_gives_one_clear_error() -> None:
    script = Script(*[ConnectionRefusedError(111, "Connect call failed")] * 3)
    chain = _chain(script, retries=2)
    with pytest.raises(
        RpcUnavailable, match=r"cannot reach RPC https://eth-mainnet.example.org"
    ) as info:
        asyncio.run(chain.request("eth_chainId", []))
    assert "SECRETKEY123" not in str(info.value)
    assert "\n" not in str(info.value)


def test_a_slow_answer_times_out_and_is_retried() -> None:
    script = Script(1.0, {"result": "0x7"})
    chain = _chain(script, timeout=0.05)
    assert asyncio.run(chain.request("eth_call", [])) == "0x7"
    assert chain.stats.errors["timeout"] == 1


def test_concurrency_is_bounded() -> None:
    script = Script(delay=0.01)
    chain = _chain(script, max_concurrency=3)

    async def many() -> None:
        await asyncio.gather(*(chain.request("eth_call", []) for _ in range(30)))

    asyncio.run(many())
    assert script.max_in_flight == 3
    assert chain.stats.total_requests == 30


def test_rate_limit_paces_requests() -> None:
    script = Script()
    chain = _chain(script, rps=20)

    async def many() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(chain.request("eth_call", []) for _ in range(30)))
        return time.perf_counter() - start

    elapsed = asyncio.run(many())
    assert elapsed >= 0.95  # 20 in the first second, the other 10 in the next


def test_fractional_rate_limit() -> None:
    script = Script()
    chain = _chain(script, rps=4.0)
    assert chain._throttle is not None
    assert chain._throttle.rate_limit == 4 and chain._throttle.period == pytest.approx(1.0)
    slow = _chain(Script(), rps=0.5)
    assert slow._throttle is not None
    assert slow._throttle.rate_limit == 1 and slow._throttle.period == pytest.approx(2.0)


def test_wrong_chain_names_both_ids() -> None:
    chain = _chain(Script({"result": "0x1"}))
    with pytest.raises(WrongChain, match=r"chain id 1, expected 31337"):
        asyncio.run(chain.check_chain_id(31337))


def test_missing_block_is_a_chain_error() -> None:
    chain = _chain(Script({"result": None}, {"result": "0x10"}))
    with pytest.raises(ChainError, match=r"block 99 does not exist .*head is 16"):
        asyncio.run(chain.block(99))


def test_stats_as_dict() -> None:
    chain = _chain(Script(_http_error(503)))
    asyncio.run(chain.request("eth_call", []))
    assert chain.stats.as_dict() == {
        "requests": 2,
        "requests_by_method": {"eth_call": 2},
        "errors_by_kind": {"server_error": 1},
        "retries": 1,
        "multicall_calls": 0,
    }


def test_web3_provider_logs_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    chain = Chain(ChainSettings(rpc_url=SECRET_URL))
    _ = chain.w3  # builds the provider and installs the filter
    logger = logging.getLogger("web3.providers.AsyncHTTPProvider")
    with caplog.at_level(logging.DEBUG, logger="web3.providers.AsyncHTTPProvider"):
        logger.debug("Making request HTTP. URI: %s, Method: %s", SECRET_URL, "eth_call")
    assert caplog.records
    text = caplog.text
    assert "SECRETKEY123" not in text
    assert "https://eth-mainnet.example.org" in text
    assert "SECRETKEY123" not in chain.endpoint


TYPO_URL = "https//eth-mainnet.example.org/v2/TYPOKEY789"  # no colon: not a URL to a regex


def test_an_endpoint_that_is_not_a_url_never_shows_its_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A mistyped endpoint still carries its key: error messages (raw or percent-quoted, as
    aiohttp and yarl print it) and web3's log records must not show it."""
    settings = ChainSettings(rpc_url=TYPO_URL, rps=0, retries=0)
    chain = Chain(
        settings,
        send=Script(aiohttp.InvalidURL(TYPO_URL.replace("/", "%2F"))),
        rng=random.Random(0),
    )
    with pytest.raises(RpcUnavailable, match=r"RPC URL <redacted url> is not a valid URL") as info:
        asyncio.run(chain.request("eth_chainId", []))
    assert "TYPOKEY789" not in str(info.value)

    quoted = "https//eth-mainnet.example.org/v2/TYPOKEY789".replace("//", "%2F%2F")
    for text in (f"Cannot connect to {TYPO_URL}", f"bad host in {quoted}"):
        chain = Chain(settings, send=Script(ConnectionResetError(text)), rng=random.Random(0))
        with pytest.raises(RpcUnavailable, match=r"cannot reach RPC <redacted url>") as info:
            asyncio.run(chain.request("eth_chainId", []))
        assert "TYPOKEY789" not in str(info.value), str(info.value)

    _ = Chain(settings).w3  # installs the log filter
    logger = logging.getLogger("web3.providers.AsyncHTTPProvider")
    with caplog.at_level(logging.DEBUG, logger="web3.providers.AsyncHTTPProvider"):
        logger.debug("Making request HTTP. URI: %s, Method: %s", TYPO_URL, "eth_chainId")
        logger.info("Successfully disconnected from: " + TYPO_URL)  # no args, no "://"
    assert len(caplog.records) == 2
    assert "TYPOKEY789" not in caplog.text and "<redacted url>" in caplog.text


def test_a_block_the_node_has_not_seen_yet_is_retried() -> None:
    """Behind a load balancer the backend answering may lag the one that gave the head:
    "header not found" for a fresh block is retried; if it persists, StateUnavailable."""
    lag = {"error": {"code": -32000, "message": "header not found"}}
    script = Script(lag, lag, {"result": "0x2a"})
    chain = _chain(script, retries=4)
    assert asyncio.run(chain.request("eth_call", [], what="getPool() at block 9")) == "0x2a"
    assert len(script.calls) == 3 and chain.stats.errors["block_unknown"] == 2

    script = Script(*[lag] * 5)
    chain = _chain(script, retries=2)
    with pytest.raises(StateUnavailable, match=r"does not know that block .*3 attempts.*--block"):
        asyncio.run(chain.request("eth_call", [], what="getPool() at block 9"))
    assert len(script.calls) == 3
