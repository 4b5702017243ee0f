"""The one place that builds the web3 client, paces it and classifies its failures.

``Chain`` wraps web3.py's ``AsyncWeb3`` + ``AsyncHTTPProvider`` and sends raw JSON-RPC
requests through the provider (``provider.make_request``): the pull decodes ABI data itself,
so web3's result formatters would only cost time. Around every request it adds

- a rate limit (asyncio-throttle, ``ChainSettings.rps`` requests per second),
- bounded concurrency (a semaphore, ``ChainSettings.max_concurrency`` in flight),
- a per-request timeout,
- retries with exponential backoff and full jitter for transient failures (timeouts,
  HTTP 429 and 5xx, connection resets, truncated answers, a block a load-balanced node's
  backend has not seen yet), honouring ``Retry-After``,
- immediate failure, with a message saying what to fix, for everything else (reverts,
  "range too large", missing state, HTTP 4xx, unknown JSON-RPC errors),
- counters of requests by method and of errors by kind (``RpcStats``), which the keeper
  exports as metrics.

web3.py's own ``ExceptionRetryConfiguration`` is switched off: it retries only exceptions
(not JSON-RPC rate-limit answers), sleeps without jitter, and cannot count what it does.

URLs carry API keys: nothing here logs, stores or raises a raw URL (``keeper.redact``), and
web3's provider loggers, which log the endpoint at DEBUG level, get a redacting filter.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp
from asyncio_throttle import Throttler
from web3 import AsyncHTTPProvider, AsyncWeb3

from keeper.errors import (
    CallReverted,
    ChainError,
    ContractMissing,
    RequestTooLarge,
    RpcError,
    RpcRateLimited,
    RpcUnavailable,
    StateUnavailable,
    WrongChain,
)
from keeper.redact import redact_text, redact_url

__all__ = [
    "TRANSIENT",
    "BlockRef",
    "Chain",
    "ChainSettings",
    "ErrorKind",
    "RpcStats",
    "backoff_delay",
    "classify_exception",
    "classify_rpc_error",
    "first_error",
    "gather",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Signature of the low-level sender: (method, params) -> JSON-RPC response object.
Sender = Callable[[str, Sequence[Any]], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class ChainSettings:
    """How to reach and pace one RPC endpoint."""

    rpc_url: str
    """HTTP(S) JSON-RPC endpoint. Secret-bearing: never logged, only ``redact_url`` of it."""
    rps: float = 25.0
    """Most requests started per second (asyncio-throttle); 0 or less means no limit."""
    max_concurrency: int = 8
    """Most requests in flight at once."""
    timeout: float = 30.0
    """Seconds one request may take before it counts as a (retried) timeout."""
    retries: int = 5
    """Retries after the first attempt for transient failures (so ``retries + 1`` attempts)."""
    backoff_base: float = 0.25
    """First backoff ceiling, seconds; doubles per retry (full jitter below the ceiling)."""
    backoff_max: float = 8.0
    """Largest backoff ceiling, seconds."""

    @property
    def endpoint(self) -> str:
        """The URL reduced to scheme and host: safe to show."""
        return redact_url(self.rpc_url)


class ErrorKind(StrEnum):
    """What went wrong with one request; the transient kinds are retried."""

    TIMEOUT = "timeout"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    BAD_RESPONSE = "bad_response"
    REVERT = "revert"
    TOO_LARGE = "too_large"
    STATE_UNAVAILABLE = "state_unavailable"
    BLOCK_UNKNOWN = "block_unknown"
    """The node does not know the block (yet): behind a load balancer, the backend that got
    the request may lag the one that reported the head. Retried; then ``StateUnavailable``."""
    CLIENT_ERROR = "client_error"
    RPC_ERROR = "rpc_error"


#: Kinds worth another attempt after a pause.
TRANSIENT: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.TIMEOUT,
        ErrorKind.RATE_LIMITED,
        ErrorKind.SERVER_ERROR,
        ErrorKind.CONNECTION,
        ErrorKind.BAD_RESPONSE,
        ErrorKind.BLOCK_UNKNOWN,
    }
)

_RATE_RE = re.compile(
    r"rate.?limit|too many requests|request rate|exceeded .*(capacity|quota|credits)|throughput"
    r"|compute units|daily request count",
    re.IGNORECASE,
)
_SIZE_RE = re.compile(
    r"range|too many (results|blocks|logs)|more than \d+ results|response size|result size"
    r"|limit exceeded|too large|too wide|too big|max results|exceeds max|query timeout"
    r"|returned more than",
    re.IGNORECASE,
)
_STATE_RE = re.compile(
    r"missing trie node|state (is )?not available|historical state"
    r"|pruned|state at block|no state",
    re.IGNORECASE,
)
_UNKNOWN_BLOCK_RE = re.compile(
    r"header not found|unknown block|block not found|block ?out ?of ?range"
    r"|block height is \d+ but requested",
    re.IGNORECASE,
)
_REVERT_RE = re.compile(r"revert|out of gas|outofgas|invalid opcode|execution error", re.I)
_TRANSIENT_RPC_RE = re.compile(
    r"timeout|timed out|try again|temporarily|unavailable|internal error|overloaded|busy",
    re.IGNORECASE,
)


def classify_rpc_error(error: Any, method: str) -> ErrorKind:
    """Kind of a JSON-RPC ``error`` object the node answered to ``method``.

    Rate limits are recognised first (Infura answers them with -32005, like its
    "more than 10000 results" limit), then the size limits of ``eth_getLogs``/``eth_call``,
    missing historical state, a block the node does not know (yet), reverts, and transient
    node trouble.
    """
    if not isinstance(error, dict):
        return ErrorKind.BAD_RESPONSE
    code = error.get("code")
    message = str(error.get("message", ""))
    data = error.get("data")
    text = f"{message} {data if isinstance(data, str) else ''}"
    if code == 429 or _RATE_RE.search(text):
        return ErrorKind.RATE_LIMITED
    if code == 3 or _REVERT_RE.search(message):
        return ErrorKind.REVERT
    if _UNKNOWN_BLOCK_RE.search(message):  # before the size check: "BlockOutOfRange"
        return ErrorKind.BLOCK_UNKNOWN
    if method in ("eth_getLogs", "eth_call") and (code == -32005 or _SIZE_RE.search(message)):
        return ErrorKind.TOO_LARGE
    if _STATE_RE.search(message):
        return ErrorKind.STATE_UNAVAILABLE
    if code in (-32603, -32000) and _TRANSIENT_RPC_RE.search(message):
        return ErrorKind.SERVER_ERROR
    return ErrorKind.RPC_ERROR


def classify_exception(exc: BaseException) -> ErrorKind | None:
    """Kind of an exception raised while sending a request; ``None`` if it is not ours."""
    if isinstance(exc, aiohttp.ClientResponseError):
        if exc.status == 429:
            return ErrorKind.RATE_LIMITED
        if exc.status == 413:
            return ErrorKind.TOO_LARGE
        if exc.status >= 500 or exc.status == 408:
            return ErrorKind.SERVER_ERROR
        return ErrorKind.CLIENT_ERROR
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, aiohttp.ClientPayloadError | json.JSONDecodeError | UnicodeDecodeError):
        return ErrorKind.BAD_RESPONSE
    if isinstance(exc, aiohttp.ClientError | ConnectionError | OSError):
        return ErrorKind.CONNECTION
    if isinstance(exc, ValueError) and "json" in str(exc).lower():
        return ErrorKind.BAD_RESPONSE  # web3's FriendlyJsonSerde wraps JSON errors this way
    return None


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): full jitter.

    Uniform in ``[0, min(cap, base * 2**attempt)]`` (the AWS "full jitter" scheme), so
    clients that failed together do not come back together.
    """
    ceiling = min(cap, base * (2.0 ** min(attempt, 30)))
    return rng.uniform(0.0, ceiling)


@dataclass(slots=True)
class RpcStats:
    """What a ``Chain`` did: requests sent by method, errors by kind, retries."""

    requests: Counter[str] = field(default_factory=Counter)
    """JSON-RPC requests sent (every attempt), by method."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed attempts, by ``ErrorKind`` value."""
    retries: int = 0
    """Attempts repeated after a transient failure."""
    multicall_calls: int = 0
    """Contract calls carried inside ``aggregate3`` batches."""

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.total_requests,
            "requests_by_method": dict(sorted(self.requests.items())),
            "errors_by_kind": dict(sorted(self.errors.items())),
            "retries": self.retries,
            "multicall_calls": self.multicall_calls,
        }


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A block the reads are pinned to."""

    number: int
    hash: str
    """0x-prefixed block hash."""
    timestamp: int
    """Unix seconds."""


#: Endpoint URLs of the ``Chain`` objects built in this process, each with its redacted form
#: and the forms it may appear in (raw and percent-quoted): scrubbed from web3's log records
#: and from error messages even when they do not parse as URLs (a typo such as
#: ``https//host/KEY`` still carries the key).
_ENDPOINTS: dict[str, tuple[str, frozenset[str]]] = {}


def _register_endpoint(url: str) -> None:
    """Remember ``url`` for ``_scrub``, with its redacted and percent-quoted forms."""
    if url not in _ENDPOINTS:
        variants = {url, quote(url, safe=":/?&=@%#+,;"), quote(url, safe="")}
        _ENDPOINTS[url] = (redact_url(url), frozenset(v for v in variants if v))


def _scrub(text: str) -> str:
    """``text`` without any known endpoint URL (raw or percent-quoted) and with every URL in
    it reduced to scheme and host."""
    for shown, variants in _ENDPOINTS.values():
        for variant in variants:
            if variant in text:
                text = text.replace(variant, shown)
    return redact_text(text)


class _RedactUrls(logging.Filter):
    """Rewrites a log record so no URL in it shows more than scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = _scrub(message)
        if cleaned != message or record.args:
            record.msg = cleaned
            record.args = ()
        return True


_REDACTED_LOGGERS = (
    "web3.providers.AsyncHTTPProvider",
    "web3._utils.http_session_manager.HTTPSessionManager",
    "web3.providers.HTTPProvider",
    "web3.RequestManager",
    "web3.manager.RequestManager",
)


def _install_log_redaction() -> None:
    for name in _REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactUrls) for f in logger.filters):
            logger.addFilter(_RedactUrls())


def _hex(n: int) -> str:
    return hex(n)


def _short(text: str, limit: int = 200) -> str:
    text = _scrub(" ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Chain:
    """A paced, retrying, counting JSON-RPC client for one endpoint.

    Use as ``async with Chain(settings) as chain: ...``. ``send`` replaces the HTTP transport
    (unit tests pass a fake); by default requests go through web3's ``AsyncHTTPProvider``.
    """

    def __init__(
        self,
        settings: ChainSettings,
        *,
        send: Sender | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if settings.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.settings = settings
        if settings.rpc_url:
            _register_endpoint(settings.rpc_url)
        self.stats = RpcStats()
        self._rng = rng or random.Random()
        self._sem = asyncio.Semaphore(settings.max_concurrency)
        self._throttle: Throttler | None = None
        if settings.rps > 0:
            burst = max(1, int(settings.rps))
            self._throttle = Throttler(rate_limit=burst, period=burst / settings.rps)
        self._session: aiohttp.ClientSession | None = None
        self._w3: AsyncWeb3 | None = None
        self._send = send if send is not None else self._send_http
        self._chain_id: int | None = None

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def w3(self) -> AsyncWeb3:
        """The underlying ``AsyncWeb3`` (built on first use)."""
        if self._w3 is None:
            _install_log_redaction()
            provider = AsyncHTTPProvider(
                self.settings.rpc_url,
                request_kwargs={"timeout": aiohttp.ClientTimeout(total=self.settings.timeout)},
                exception_retry_configuration=None,
            )
            self._w3 = AsyncWeb3(provider)
        return self._w3

    async def _provider(self) -> AsyncHTTPProvider:
        w3 = self.w3
        provider = w3.provider
        assert isinstance(provider, AsyncHTTPProvider)
        if self._session is None:
            # Our own session: keep-alive connections sized to our concurrency (web3's
            # default session closes the connection after every request).
            self._session = aiohttp.ClientSession(
                raise_for_status=True,
                connector=aiohttp.TCPConnector(limit=self.settings.max_concurrency),
            )
            await provider.cache_async_session(self._session)
        return provider

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._w3 is not None:
            provider = self._w3.provider
            if isinstance(provider, AsyncHTTPProvider):
                await provider.disconnect()

    async def __aenter__(self) -> Chain:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- requests ----------------------------------------------------------------------

    async def _send_http(self, method: str, params: Sequence[Any]) -> dict[str, Any]:
        provider = await self._provider()
        response = await provider.make_request(method, list(params))  # type: ignore[arg-type]
        return dict(response)

    async def request(self, method: str, params: Sequence[Any], *, what: str = "") -> Any:
        """Send one JSON-RPC request (paced, retried) and return its ``result``.

        ``what`` describes the request for error messages ("getPool() on 0x.. at block N").
        """
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                async with self._sem:
                    if self._throttle is not None:
                        await self._throttle.acquire()
                    self.stats.requests[method] += 1
                    response = await asyncio.wait_for(
                        self._send(method, params), timeout=self.settings.timeout
                    )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                kind = classify_exception(exc)
                if kind is None:
                    raise
                detail: Any = exc
                if isinstance(exc, aiohttp.ClientResponseError) and exc.headers:
                    retry_after = _retry_after(exc.headers.get("Retry-After"))
            else:
                if not isinstance(response, dict):
                    kind, detail = ErrorKind.BAD_RESPONSE, response
                elif "error" in response and response["error"] is not None:
                    kind, detail = classify_rpc_error(response["error"], method), response["error"]
                elif "result" in response:
                    return response["result"]
                else:
                    kind, detail = ErrorKind.BAD_RESPONSE, response
            self.stats.errors[kind.value] += 1
            if kind not in TRANSIENT or attempt >= self.settings.retries:
                raise self._failure(kind, method, detail, what, attempt + 1)
            delay = backoff_delay(
                attempt, self.settings.backoff_base, self.settings.backoff_max, self._rng
            )
            if retry_after is not None:
                delay = max(delay, min(retry_after, 4 * self.settings.backoff_max))
            log.info(
                "%s on %s (%s), attempt %d; retrying in %.2fs",
                kind.value,
                method,
                self.endpoint,
                attempt + 1,
                delay,
            )
            self.stats.retries += 1
            attempt += 1
            await asyncio.sleep(delay)

    def _failure(
        self, kind: ErrorKind, method: str, detail: Any, what: str, attempts: int
    ) -> ChainError:
        where = f"{what} " if what else ""
        if isinstance(detail, dict):
            text = _short(str(detail.get("message", detail)))
            code = detail.get("code")
        elif self.endpoint == "<redacted url>":
            # The endpoint does not parse as a URL, so its secret part cannot be told from
            # the rest: an exception's text may quote it in any form. Name the type only.
            text, code = type(detail).__name__, None
        else:
            text = _short(f"{type(detail).__name__}: {detail}" if detail else repr(detail))
            code = None
        rpc = self.endpoint
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        if kind is ErrorKind.REVERT:
            return CallReverted(f"{method} {where}reverted ({text})")
        if kind is ErrorKind.TOO_LARGE:
            return RequestTooLarge(f"{method} {where}was refused as too large: {text}", code=code)
        if kind is ErrorKind.STATE_UNAVAILABLE:
            return StateUnavailable(
                f"{method} {where}failed: the node at {rpc} has no state for that block "
                f"({text}); use an archive node or a more recent --block",
                code=code,
            )
        if kind is ErrorKind.BLOCK_UNKNOWN:
            return StateUnavailable(
                f"{method} {where}failed: the node at {rpc} does not know that block ({text}; "
                f"{tries}); if it is recent the endpoint's backends lag the head: pin an older "
                "--block",
                code=code,
            )
        if kind is ErrorKind.RPC_ERROR:
            return RpcError(f"{method} {where}failed: {rpc} answered {text}", code=code)
        if kind is ErrorKind.CLIENT_ERROR:
            status = getattr(detail, "status", "4xx")
            return RpcUnavailable(
                f"RPC {rpc} refused {method} with HTTP {status}: check the URL and its API key "
                "(--rpc or ETH_RPC_URL)"
            )
        if kind is ErrorKind.RATE_LIMITED:
            return RpcRateLimited(
                f"RPC {rpc} kept rate-limiting {method} ({tries}): lower --rps "
                f"(now {self.settings.rps:g}) or use an endpoint with a higher quota"
            )
        if kind is ErrorKind.TIMEOUT:
            return RpcUnavailable(
                f"RPC {rpc} timed out on {method} {where}({tries}, {self.settings.timeout:g}s "
                "each): check the node, or lower --rps"
            )
        if kind is ErrorKind.CONNECTION and isinstance(detail, aiohttp.InvalidURL):
            return RpcUnavailable(
                f"the RPC URL {rpc} is not a valid URL: check --rpc / ETH_RPC_URL "
                "(an http:// or https:// endpoint)"
            )
        if kind is ErrorKind.CONNECTION:
            return RpcUnavailable(
                f"cannot reach RPC {rpc} ({text}; {tries}): is the node running? "
                "check --rpc / ETH_RPC_URL"
            )
        if kind is ErrorKind.SERVER_ERROR:
            return RpcUnavailable(f"RPC {rpc} kept failing on {method} ({text}; {tries})")
        return RpcUnavailable(f"RPC {rpc} gave unusable answers to {method} ({text}; {tries})")

    # -- typed helpers -----------------------------------------------------------------

    async def chain_id(self) -> int:
        """The endpoint's chain id (asked once, then remembered)."""
        if self._chain_id is None:
            self._chain_id = int(await self.request("eth_chainId", []), 16)
        return self._chain_id

    async def check_chain_id(self, expected: int | None) -> int:
        """The chain id; raises ``WrongChain`` when it differs from ``expected``."""
        actual = await self.chain_id()
        if expected is not None and actual != expected:
            raise WrongChain(
                f"RPC {self.endpoint} serves chain id {actual}, expected {expected}: point "
                "--rpc at the right network (or fix chain_id in the deployment file)"
            )
        return actual

    async def block_number(self) -> int:
        return int(await self.request("eth_blockNumber", []), 16)

    async def block(self, number: int | None = None) -> BlockRef:
        """The block ``number`` (the latest when ``None``): number, hash and timestamp."""
        tag = "latest" if number is None else _hex(number)
        result = await self.request("eth_getBlockByNumber", [tag, False], what=f"block {tag}")
        if result is None:
            head = await self.block_number()
            raise ChainError(
                f"block {number} does not exist on {self.endpoint} (head is {head}): "
                "choose --block at or below the head"
            )
        return BlockRef(int(result["number"], 16), result["hash"], int(result["timestamp"], 16))

    async def code(self, address: str, block: int) -> bytes:
        result = await self.request(
            "eth_getCode", [address, _hex(block)], what=f"of {address} at block {block}"
        )
        return bytes.fromhex(result[2:])

    async def require_code(self, address: str, block: int, role: str, fix: str = "") -> None:
        """Raise ``ContractMissing`` if ``address`` holds no code at ``block``."""
        if not await self.code(address, block):
            chain_id = await self.chain_id()
            hint = f": {fix}" if fix else ""
            raise ContractMissing(
                f"no contract at {address} ({role}) on chain {chain_id} at block {block}{hint}"
            )

    async def call(self, to: str, data: bytes, block: int, *, what: str = "") -> bytes:
        """``eth_call`` of ``data`` on ``to`` at ``block``; the returned bytes."""
        params = [{"to": to, "data": "0x" + data.hex()}, _hex(block)]
        result = await self.request(
            "eth_call", params, what=f"{what or 'call'} on {to} at block {block}"
        )
        if not isinstance(result, str) or not result.startswith("0x"):
            raise RpcError(f"eth_call on {to} at block {block}: unexpected answer {result!r}")
        return bytes.fromhex(result[2:])

    async def get_logs(
        self,
        address: str,
        topics: Sequence[Any],
        from_block: int,
        to_block: int,
    ) -> list[dict[str, Any]]:
        """Raw logs of ``address`` matching ``topics`` in ``[from_block, to_block]``."""
        params = [
            {
                "address": address,
                "topics": list(topics),
                "fromBlock": _hex(from_block),
                "toBlock": _hex(to_block),
            }
        ]
        result = await self.request(
            "eth_getLogs", params, what=f"for {address} in blocks [{from_block}, {to_block}]"
        )
        if not isinstance(result, list):
            raise RpcError(f"eth_getLogs answered {type(result).__name__}, expected a list")
        return result


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first leaf exception of a (nested) exception group."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


async def gather(coros: Iterable[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``coros`` concurrently in a task group; their results in order.

    If one fails the others are cancelled and *its* exception is raised (not an
    ``ExceptionGroup``), so a failed pull ends with one clear error.
    """

    async def run(index: int, coro: Coroutine[Any, Any, T]) -> None:
        results[index] = await coro

    items = list(coros)
    results: list[Any] = [None] * len(items)
    try:
        async with asyncio.TaskGroup() as group:
            for i, coro in enumerate(items):
                group.create_task(run(i, coro))
    except BaseExceptionGroup as eg:
        raise first_error(eg) from None
    return results
