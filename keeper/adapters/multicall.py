"""Multicall3 ``aggregate3`` batching: many contract calls per ``eth_call``, pinned to a block.

``encode_aggregate3`` / ``decode_aggregate3`` are hand-written for speed (a pull packs tens
of thousands of calls); the unit tests check them against ``eth_abi``. ``Multicall.run``
splits a list of calls into batches, sends several batches at once (the ``Chain`` bounds how
many are in flight), and halves a batch the node refuses (out of gas, answer too large),
remembering the smaller size for the batches that follow.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from keeper.adapters.abi import address_word, function
from keeper.chain import Chain, gather
from keeper.errors import CallReverted, DecodeError, RequestTooLarge, RpcError

__all__ = [
    "MULTICALL3_ADDRESS",
    "Call",
    "Multicall",
    "decode_aggregate3",
    "encode_aggregate3",
]

log = logging.getLogger(__name__)

#: Multicall3's address on most EVM chains (and on our devnet, placed with anvil_setCode).
MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"

_AGGREGATE3 = function("Multicall3", "aggregate3")
_TRUE = (1).to_bytes(32, "big")
_FALSE = bytes(32)
_SIXTY = (0x60).to_bytes(32, "big")
_GAS_RE = re.compile(r"gas|too large|size|exceed", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Call:
    """One contract call inside an ``aggregate3`` batch."""

    target: str
    data: bytes
    allow_failure: bool = True


def encode_aggregate3(calls: Sequence[Call]) -> bytes:
    """Calldata of ``aggregate3((address,bool,bytes)[])`` for ``calls``."""
    n = len(calls)
    heads: list[bytes] = []
    tails: list[bytes] = []
    offset = 32 * n
    for call in calls:
        heads.append(offset.to_bytes(32, "big"))
        data = call.data
        pad = (-len(data)) % 32
        element = b"".join(
            (
                address_word(call.target),
                _TRUE if call.allow_failure else _FALSE,
                _SIXTY,
                len(data).to_bytes(32, "big"),
                data,
                b"\x00" * pad,
            )
        )
        tails.append(element)
        offset += len(element)
    return b"".join(
        (_AGGREGATE3.selector, (32).to_bytes(32, "big"), n.to_bytes(32, "big"), *heads, *tails)
    )


def _word(data: bytes, at: int) -> int:
    if at + 32 > len(data):
        raise DecodeError(f"aggregate3 answer truncated at byte {at} of {len(data)}")
    return int.from_bytes(data[at : at + 32], "big")


def decode_aggregate3(data: bytes, expected: int | None = None) -> list[tuple[bool, bytes]]:
    """The ``(success, returnData)`` pairs of an ``aggregate3`` answer."""
    base = _word(data, 0)
    n = _word(data, base)
    if expected is not None and n != expected:
        raise DecodeError(f"aggregate3 answered {n} results for {expected} calls")
    start = base + 32
    out: list[tuple[bool, bytes]] = []
    for i in range(n):
        element = start + _word(data, start + 32 * i)
        success = _word(data, element) != 0
        at = element + _word(data, element + 32)
        length = _word(data, at)
        end = at + 32 + length
        if end > len(data):
            raise DecodeError(f"aggregate3 answer truncated in result {i}")
        out.append((success, data[at + 32 : end]))
    return out


class Multicall:
    """Runs lists of calls through Multicall3 at a pinned block."""

    def __init__(self, chain: Chain, address: str = MULTICALL3_ADDRESS, batch_size: int = 1000):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.chain = chain
        self.address = address
        self.batch_size = batch_size
        """Calls per ``aggregate3``; shrinks when the node refuses a batch."""

    async def run(
        self,
        calls: Sequence[Call],
        block: int,
        *,
        on_batch: Callable[[int], None] | None = None,
        batch_size: int | None = None,
    ) -> list[tuple[bool, bytes]]:
        """``(success, returnData)`` for every call, in order, all read at ``block``.

        ``on_batch(n)`` is called after each batch of ``n`` calls completes (progress).
        """
        size = batch_size or self.batch_size
        chunks = [calls[i : i + size] for i in range(0, len(calls), size)]
        results = await gather(self._run_chunk(c, block, on_batch) for c in chunks)
        return [r for chunk in results for r in chunk]

    async def _run_chunk(
        self, calls: Sequence[Call], block: int, on_batch: Callable[[int], None] | None
    ) -> list[tuple[bool, bytes]]:
        if not calls:
            return []
        try:
            data = await self.chain.call(
                self.address,
                encode_aggregate3(calls),
                block,
                what=f"aggregate3 of {len(calls)} calls",
            )
        except (CallReverted, RpcError) as exc:
            # A batch of calls that may each fail only fails as a whole when the node cannot
            # afford it (gas cap, answer size): split it. Other errors are not ours to fix.
            refused = isinstance(exc, CallReverted | RequestTooLarge) or _GAS_RE.search(str(exc))
            if len(calls) == 1 or not refused:
                raise
            half = len(calls) // 2
            if half < self.batch_size:
                log.info("node refused %d calls in one batch (%s); using %d", len(calls), exc, half)
                self.batch_size = max(1, half)
            first, second = await gather(
                [
                    self._run_chunk(calls[:half], block, on_batch),
                    self._run_chunk(calls[half:], block, on_batch),
                ]
            )
            return first + second
        if not data:
            raise DecodeError(
                f"Multicall3 at {self.address} answered nothing at block {block}: is it deployed "
                "there? (pass its address with --multicall)"
            )
        out = decode_aggregate3(data, expected=len(calls))
        self.chain.stats.multicall_calls += len(calls)
        if on_batch is not None:
            on_batch(len(calls))
        return out
