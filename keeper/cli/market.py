"""Choosing the market to read: shared by every command that talks to a chain.

A market is named either by a devnet ``deployment.json`` (its protocol, RPC, root address,
chain id, Multicall3 and DEX pairs) or by ``--rpc`` (default ``$ETH_RPC_URL``) plus the
market's root address: ``--provider`` (Aave V3's PoolAddressesProvider) or ``--comet``
(a Compound V3 market, with ``--protocol compound-v3``); the explicit flags override what the
deployment file says. ``--protocol`` defaults to the deployment's protocol, else aave-v3.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from eth_utils import is_address

from keeper.errors import ConfigError
from keeper.redact import redact_url

__all__ = [
    "Market",
    "add_market_arguments",
    "check_rpc_url",
    "effective_protocol",
    "resolve_market",
    "url_scheme_host",
]

AAVE_V3_MAINNET_PROVIDER = "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e"
COMPOUND_V3_USDC_MAINNET = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"


@dataclass(frozen=True, slots=True)
class Market:
    """Where a market lives and how to recognise it."""

    rpc_url: str
    """JSON-RPC endpoint (secret-bearing: show it only through ``keeper.redact``)."""
    provider: str
    """The market's root address (Aave V3: PoolAddressesProvider)."""
    expected_chain_id: int | None
    """Refuse any other chain; ``None`` accepts whatever the node reports."""
    multicall3: str | None
    """Multicall3 address; ``None`` for the canonical one."""
    dex_sources: dict[str, Any] = field(default_factory=dict)
    """Asset address -> DEX pool, from the deployment file (empty for ``--rpc``)."""
    protocol: str = "aave-v3"
    """Adapter name (``--protocol``, else the deployment's, else aave-v3)."""

    def chain_fields(self) -> dict[str, Any]:
        """The fields both ``PullSettings`` and ``KeeperSettings`` take by these names."""
        out: dict[str, Any] = {
            "rpc_url": self.rpc_url,
            "provider": self.provider,
            "expected_chain_id": self.expected_chain_id,
            "protocol": self.protocol,
        }
        if self.multicall3 is not None:
            out["multicall3"] = self.multicall3
        return out


def add_market_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--deployment``, ``--rpc``, ``--protocol``, ``--provider``, ``--chain-id``,
    ``--multicall`` and ``--from-block`` in one group."""
    group = parser.add_argument_group("market (--deployment, or --rpc with --provider)")
    group.add_argument(
        "--deployment", type=Path, metavar="FILE", help="devnet deployment.json (shortfall devnet)"
    )
    group.add_argument(
        "--rpc",
        metavar="URL",
        help="JSON-RPC URL (default: $ETH_RPC_URL; with --deployment: its rpc_url)",
    )
    group.add_argument(
        "--protocol",
        default=None,
        metavar="NAME",
        help="protocol adapter: aave-v3 or compound-v3 (default: the deployment's, else aave-v3)",
    )
    group.add_argument(
        "--provider", metavar="ADDR", help="market root address (Aave V3: PoolAddressesProvider)"
    )
    group.add_argument("--comet", metavar="ADDR", help="Compound V3 market (Comet proxy) address")
    group.add_argument("--chain-id", type=int, metavar="ID", help="refuse any other chain")
    group.add_argument(
        "--multicall", metavar="ADDR", help="Multicall3 address (default: canonical)"
    )
    group.add_argument(
        "--from-block",
        type=int,
        metavar="N",
        help="first block to scan for accounts (default: the pool's deployment)",
    )


def url_scheme_host(url: str) -> tuple[str, str | None]:
    """``url``'s lower-case scheme and its host (``None`` if it has none); ``("", None)`` if
    it does not parse as a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "", None
    return parts.scheme.lower(), host


def check_rpc_url(url: str, where: str) -> str:
    """``url`` if it is an http(s) URL with a host, else a ``ConfigError`` naming ``where``
    the value came from. The message shows scheme and host only (URLs carry API keys), and
    nothing of a value that does not parse as a URL."""
    scheme, host = url_scheme_host(url)
    if scheme in ("http", "https") and host:
        return url
    if scheme in ("ws", "wss") and host:
        raise ConfigError(
            f"{where} is a WebSocket URL, {redact_url(url)} : reads go over HTTP, pass the "
            "node's http:// or https:// endpoint"
        )
    shown = f" (scheme {scheme!r})" if scheme and host else ""
    raise ConfigError(
        f"{where} is not an http:// or https:// URL{shown}; pass the node's JSON-RPC endpoint, "
        "e.g. https://eth-mainnet.example/v2/KEY"
    )


def effective_protocol(args: argparse.Namespace) -> str:
    """``--protocol``, else the ``--deployment`` file's protocol (``--comet`` alone implies
    compound-v3), else aave-v3."""
    if args.protocol:
        return str(args.protocol)
    if getattr(args, "comet", None):
        return "compound-v3"
    if args.deployment is not None:
        from keeper.pull import settings_from_deployment

        return settings_from_deployment(args.deployment).protocol
    return "aave-v3"


def resolve_market(args: argparse.Namespace) -> Market:
    """The market the arguments name, or a ``ConfigError`` saying what is missing."""
    from keeper.pull import settings_from_deployment

    protocol = effective_protocol(args)
    comet = getattr(args, "comet", None)
    if comet is not None and protocol != "compound-v3":
        raise ConfigError(f"--comet names a Compound V3 market, but --protocol is {protocol}")
    if comet is not None and args.provider is not None:
        raise ConfigError("pass either --comet (Compound V3) or --provider (Aave V3), not both")
    root = comet or args.provider
    for name, value in (
        ("--comet" if comet else "--provider", root),
        ("--multicall", args.multicall),
    ):
        if value is not None and not is_address(value):
            raise ConfigError(f"{name} {value!r} is not an address (0x and 40 hex digits)")
    if args.rpc is not None:
        check_rpc_url(args.rpc, "--rpc")
    if args.deployment is not None:
        dep = settings_from_deployment(args.deployment)
        if args.rpc is None:
            check_rpc_url(dep.rpc_url, f"rpc_url in {args.deployment}")
        if dep.protocol != protocol:
            raise ConfigError(
                f"{args.deployment} describes a {dep.protocol} market, not {protocol}: drop "
                f"--protocol or pass --protocol {dep.protocol}"
            )
        return Market(
            rpc_url=args.rpc or dep.rpc_url,
            provider=root or dep.provider,
            expected_chain_id=dep.expected_chain_id if args.chain_id is None else args.chain_id,
            multicall3=args.multicall or dep.multicall3,
            dex_sources=dict(dep.dex_sources),
            protocol=protocol,
        )
    rpc = args.rpc or os.environ.get("ETH_RPC_URL")
    if not rpc:
        raise ConfigError("no RPC: pass --rpc URL, set ETH_RPC_URL, or use --deployment FILE")
    if args.rpc is None:
        check_rpc_url(rpc, "ETH_RPC_URL")
    if not root:
        if protocol == "compound-v3":
            raise ConfigError(
                "--comet is required with --rpc and --protocol compound-v3 (cUSDCv3 on "
                f"Ethereum: {COMPOUND_V3_USDC_MAINNET}), or use --deployment FILE"
            )
        raise ConfigError(
            f"--provider is required with --rpc (Aave V3 Ethereum: {AAVE_V3_MAINNET_PROVIDER}), "
            "or use --deployment FILE"
        )
    return Market(
        rpc_url=rpc,
        provider=root,
        expected_chain_id=args.chain_id,
        multicall3=args.multicall,
        protocol=protocol,
    )
