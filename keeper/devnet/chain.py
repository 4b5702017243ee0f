"""A small synchronous JSON-RPC client and ABI-driven contract handle for the devnet.

Deployment and seeding send large batches of admin transactions through anvil's unlocked
accounts (``eth_sendTransaction``); this client does that with one keep-alive HTTP session
and eth-abi, without web3's per-call middleware, which matters when seeding 20,000 accounts.
Readers of the market should use the project's web3 client instead.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from functools import cache
from importlib import resources
from typing import Any

import requests
from eth_abi import decode, encode
from eth_utils import keccak, to_checksum_address

from keeper.devnet import DevnetError

__all__ = ["Contract", "Rpc", "RpcError", "artifact", "function_signature", "selector"]

log = logging.getLogger(__name__)

#: Gas limit of admin transactions (the devnet's gas price is zero).
DEFAULT_GAS = 10_000_000


class RpcError(DevnetError):
    """A JSON-RPC call answered with an error (a revert, a bad parameter...)."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.data = error.get("data")
        super().__init__(f"{method} failed: {error.get('message', error)}")


class Rpc:
    """JSON-RPC over HTTP with one keep-alive session. ``call(method, *params)``."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url
        self.timeout = timeout
        self._session = requests.Session()
        self._ids = itertools.count(1)

    def call(self, method: str, *params: Any) -> Any:
        body = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": list(params)}
        try:
            resp = self._session.post(self.url, json=body, timeout=self.timeout)
        except requests.RequestException as exc:
            raise DevnetError(f"cannot reach {self.url}: {exc.__class__.__name__}") from exc
        if resp.status_code != 200:
            raise DevnetError(
                f"{method}: HTTP {resp.status_code} from {self.url}: {resp.text[:200]}"
            )
        answer = resp.json()
        if "error" in answer:
            raise RpcError(method, answer["error"])
        return answer["result"]

    def close(self) -> None:
        self._session.close()

    # -- conveniences ------------------------------------------------------------------------
    def chain_id(self) -> int:
        return int(self.call("eth_chainId"), 16)

    def block_number(self) -> int:
        return int(self.call("eth_blockNumber"), 16)

    def accounts(self) -> list[str]:
        return [to_checksum_address(a) for a in self.call("eth_accounts")]

    def mine(self, blocks: int = 1) -> None:
        self.call("anvil_mine", hex(blocks))

    def snapshot(self) -> str:
        return str(self.call("evm_snapshot"))

    def revert(self, snapshot_id: str) -> bool:
        return bool(self.call("evm_revert", snapshot_id))

    def send(self, tx: dict[str, Any]) -> str:
        """``eth_sendTransaction`` from an unlocked account; returns the hash."""
        return str(self.call("eth_sendTransaction", tx))

    def receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        """The receipt, polling while anvil mines (automine answers before the block exists)."""
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            receipt = self.call("eth_getTransactionReceipt", tx_hash)
            if receipt is not None:
                return receipt  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise DevnetError(f"transaction {tx_hash} was not mined within {timeout:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def transact(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Send and return the receipt, raising if the transaction reverted."""
        receipt = self.receipt(self.send(tx))
        if int(receipt["status"], 16) != 1:
            raise DevnetError(f"transaction {receipt['transactionHash']} reverted: {tx.get('to')}")
        return receipt


def _type_str(param: dict[str, Any]) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        return "(" + ",".join(_type_str(c) for c in param["components"]) + ")" + t[5:]
    return str(t)


def function_signature(entry: dict[str, Any]) -> str:
    """``name(type,...)`` of an ABI function, event or error entry (tuples expanded)."""
    return f"{entry['name']}({','.join(_type_str(p) for p in entry.get('inputs', []))})"


def selector(entry: dict[str, Any]) -> bytes:
    """The 4-byte selector of a function/error, or the 32-byte topic0 of an event."""
    digest = keccak(text=function_signature(entry))
    return digest if entry["type"] == "event" else digest[:4]


@cache
def artifact(name: str) -> dict[str, Any]:
    """The committed artifact (abi, bytecode) of one devnet contract."""
    try:
        text = resources.files("keeper.devnet").joinpath("artifacts", f"{name}.json").read_text()
    except FileNotFoundError as exc:
        raise DevnetError(
            f"artifact {name}.json missing from keeper/devnet/artifacts; run `make contracts`"
        ) from exc
    return json.loads(text)  # type: ignore[no-any-return]


class Contract:
    """ABI-driven handle on one deployed contract: ``call``, ``encode``, ``transact``."""

    def __init__(self, rpc: Rpc, address: str, abi: list[dict[str, Any]] | str) -> None:
        self.rpc = rpc
        self.address = to_checksum_address(address)
        self.abi = artifact(abi)["abi"] if isinstance(abi, str) else abi
        self._functions = {e["name"]: e for e in self.abi if e["type"] == "function"}

    def _fn(self, name: str) -> dict[str, Any]:
        try:
            return self._functions[name]
        except KeyError:
            raise DevnetError(f"{name} is not in the ABI of {self.address}") from None

    def encode(self, name: str, *args: Any) -> str:
        fn = self._fn(name)
        types = [_type_str(p) for p in fn["inputs"]]
        return "0x" + (selector(fn) + encode(types, list(args))).hex()

    def call(
        self, name: str, *args: Any, block: str | int = "latest", sender: str | None = None
    ) -> Any:
        """eth_call; one output is returned bare, several as a tuple."""
        fn = self._fn(name)
        tx: dict[str, Any] = {"to": self.address, "data": self.encode(name, *args)}
        if sender:
            tx["from"] = sender
        tag = hex(block) if isinstance(block, int) else block
        raw = bytes.fromhex(self.rpc.call("eth_call", tx, tag)[2:])
        out = decode([_type_str(p) for p in fn["outputs"]], raw)
        return out[0] if len(out) == 1 else out

    def transact(
        self, name: str, *args: Any, sender: str, gas: int = DEFAULT_GAS
    ) -> dict[str, Any]:
        """Send from an unlocked account and wait for the (automined) receipt.

        The call is simulated first so that a revert raises with the contract's error name.
        The gas limit is explicit: anvil's estimate can fall short when the block timestamp
        changes between estimate and inclusion (gas is free on the devnet anyway).
        """
        tx = {"from": sender, "to": self.address, "data": self.encode(name, *args), "gas": hex(gas)}
        try:
            self.rpc.call("eth_call", tx, "latest")
            return self.rpc.transact(tx)
        except RpcError as exc:
            raise DevnetError(
                f"{name} on {self.address} reverted: {self.decode_error(exc.data) or exc}"
            ) from exc

    def decode_error(self, data: Any) -> str | None:
        """``ErrorName(args)`` for revert data of this contract's ABI errors, or None."""
        if isinstance(data, dict):
            data = data.get("data")
        if not isinstance(data, str) or len(data) < 10:
            return None
        raw = bytes.fromhex(data[2:])
        if raw[:4] == bytes.fromhex("08c379a0"):
            return f"Error({decode(['string'], raw[4:])[0]!r})"
        for entry in self.abi:
            if entry["type"] == "error" and selector(entry) == raw[:4]:
                values = decode([_type_str(p) for p in entry["inputs"]], raw[4:])
                return f"{entry['name']}({', '.join(map(str, values))})"
        return None

    def event_topic(self, name: str) -> str:
        entry = next(e for e in self.abi if e["type"] == "event" and e["name"] == name)
        return "0x" + selector(entry).hex()


def deploy(rpc: Rpc, name: str, *args: Any, sender: str, gas: int = 30_000_000) -> Contract:
    """Deploy a devnet contract from its artifact; returns its handle."""
    art = artifact(name)
    ctor = next((e for e in art["abi"] if e["type"] == "constructor"), None)
    data = art["bytecode"]
    if ctor is not None:
        data += encode([_type_str(p) for p in ctor["inputs"]], list(args)).hex()
    receipt = rpc.transact({"from": sender, "data": data, "gas": hex(gas)})
    address = receipt.get("contractAddress")
    if not address:
        raise DevnetError(f"deploying {name} produced no contract address")
    log.debug("deployed %s at %s", name, address)
    return Contract(rpc, address, art["abi"])
