"""Exceptions of the chain-facing half.

Every class derives from ``simulator.errors.ShortfallError`` (so the CLI turns it into one
line and exit code 1) and from a builtin, so callers may catch either. Messages name the
address, block or setting that is wrong and what would fix it; URLs in them are redacted to
scheme and host (``keeper.redact``) before they are built.
"""

from __future__ import annotations

from simulator.errors import ShortfallError

__all__ = [
    "AdapterNotFound",
    "CallReverted",
    "ChainError",
    "ConfigError",
    "ContractMissing",
    "DecodeError",
    "RequestTooLarge",
    "RpcError",
    "RpcRateLimited",
    "RpcUnavailable",
    "StateUnavailable",
    "WrongChain",
]


class ChainError(ShortfallError, RuntimeError):
    """Reading the chain failed."""


class RpcUnavailable(ChainError, ConnectionError):
    """The RPC endpoint could not be reached or kept failing after every retry."""


class RpcRateLimited(RpcUnavailable):
    """The RPC endpoint kept answering "rate limited" (HTTP 429) after every retry."""


class RpcError(ChainError):
    """The node answered a JSON-RPC error that retrying will not fix."""

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class RequestTooLarge(RpcError):
    """The node refused the size of a request or of its result (an ``eth_getLogs`` block
    range, a too-big ``eth_call`` batch): ask for less."""


class StateUnavailable(RpcError):
    """The node has no state for the requested block (a pruned, non-archive node)."""


class CallReverted(ChainError):
    """An ``eth_call`` reverted: wrong address, wrong contract or wrong arguments."""


class DecodeError(ChainError, ValueError):
    """A contract answered bytes that do not decode as its ABI says."""


class ContractMissing(ChainError, LookupError):
    """No contract code at an address where one is expected."""


class WrongChain(ChainError, ValueError):
    """The RPC serves another chain than the one expected."""


class ConfigError(ShortfallError, ValueError):
    """A deployment file, DEX map or option is missing, malformed or inconsistent."""


class AdapterNotFound(ShortfallError, LookupError):
    """No protocol adapter is registered under the requested name."""
