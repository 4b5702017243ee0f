"""Contract functions and events from ``contracts_abi``: selectors, encoding, decoding.

Adapters encode calls and decode answers themselves (no web3 ``Contract`` objects): the
hot paths of a pull run tens of thousands of calls, so static arguments (addresses,
integers) are packed by hand and static answers read word by word. ``eth_abi`` does the
rest; tests check both paths agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import eth_abi
from eth_utils import event_abi_to_log_topic, function_abi_to_4byte_selector
from eth_utils.abi import get_abi_input_types, get_abi_output_types

from contracts_abi import load_abi
from keeper.errors import DecodeError

__all__ = ["Function", "address_word", "event_topic", "function", "topic_address", "words"]

_STATIC_WORD_TYPES = ("address", "bool", *(f"uint{8 * i}" for i in range(1, 33)))


def address_word(address: str) -> bytes:
    """A 20-byte hex address left-padded to one 32-byte ABI word."""
    raw = bytes.fromhex(address[2:] if address[:2] in ("0x", "0X") else address)
    if len(raw) != 20:
        raise ValueError(f"{address!r} is not a 20-byte address")
    return b"\x00" * 12 + raw


def words(data: bytes, n: int, *, what: str = "answer") -> list[int]:
    """The first ``n`` 32-byte words of ``data`` as unsigned integers.

    Raises ``DecodeError`` when ``data`` is shorter (a contract that does not implement the
    function usually answers empty bytes).
    """
    if len(data) < 32 * n:
        raise DecodeError(
            f"{what}: expected at least {32 * n} bytes ({n} ABI words), got {len(data)}; "
            "the address probably holds another contract"
        )
    return [int.from_bytes(data[32 * i : 32 * i + 32], "big") for i in range(n)]


def topic_address(topic: str) -> str:
    """The address in the low 20 bytes of an indexed-address topic (lower-case hex)."""
    return "0x" + topic[-40:].lower()


@dataclass(frozen=True, slots=True)
class Function:
    """One function of a contract ABI."""

    contract: str
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.input_types)})"

    def encode(self, *args: Any) -> bytes:
        """Calldata: selector plus ABI-encoded ``args``."""
        if len(args) != len(self.input_types):
            raise TypeError(f"{self.signature} takes {len(self.input_types)} argument(s)")
        if all(t in _STATIC_WORD_TYPES for t in self.input_types):
            parts = [self.selector]
            for t, a in zip(self.input_types, args, strict=True):
                if t == "address":
                    parts.append(address_word(a))
                else:
                    parts.append(int(a).to_bytes(32, "big"))
            return b"".join(parts)
        return self.selector + eth_abi.encode(list(self.input_types), list(args))

    def decode(self, data: bytes, *, what: str = "") -> tuple[Any, ...]:
        """The decoded outputs; ``DecodeError`` naming the call when ``data`` is malformed."""
        try:
            return tuple(eth_abi.decode(list(self.output_types), data))
        except Exception as exc:  # eth_abi raises several unrelated types
            label = f"{self.contract}.{self.signature}" + (f" {what}" if what else "")
            raise DecodeError(
                f"{label}: answer of {len(data)} bytes does not decode as "
                f"({','.join(self.output_types)}) ({type(exc).__name__}); the address "
                "probably holds another contract"
            ) from None


@cache
def function(contract: str, name: str) -> Function:
    """The function ``name`` of ABI ``contract`` (``function("Pool", "getReservesList")``)."""
    for entry in load_abi(contract):
        if entry.get("type") == "function" and entry.get("name") == name:
            return Function(
                contract=contract,
                name=name,
                selector=function_abi_to_4byte_selector(entry),  # type: ignore[arg-type]
                input_types=tuple(get_abi_input_types(entry)),  # type: ignore[arg-type]
                output_types=tuple(get_abi_output_types(entry)),  # type: ignore[arg-type]
            )
    raise KeyError(f"contracts_abi/{contract}.json has no function {name!r}")


@cache
def event_topic(contract: str, name: str) -> str:
    """topic0 (0x-prefixed hex) of event ``name`` in ABI ``contract``."""
    for entry in load_abi(contract):
        if entry.get("type") == "event" and entry.get("name") == name:
            return "0x" + event_abi_to_log_topic(entry).hex()  # type: ignore[arg-type]
    raise KeyError(f"contracts_abi/{contract}.json has no event {name!r}")


def event_topics(contract: str, names: Sequence[str]) -> list[str]:
    return [event_topic(contract, n) for n in names]
