"""``shortfall pull``: read a lending market at one block into a snapshot directory."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from eth_utils import is_address

from keeper.errors import ConfigError

EXAMPLES = """\
examples:
  shortfall pull --deployment deployment.json --out snap/
  export ETH_RPC_URL=https://eth-mainnet.example/v2/KEY
  shortfall pull --protocol aave-v3 --provider 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e \\
      --dex-map dex.toml --rps 10 --out snap/
  shortfall pull --deployment deployment.json --block 120 --json --out snap-120/
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "pull",
        help="read a lending market at one block into a snapshot directory",
        description="Read every account of a lending market (reserves, oracle prices, balances,\n"
        "DEX liquidity) at one block into a snapshot directory, through the protocol's public\n"
        "interface and Multicall3 batches. Accounts are discovered from the market's logs; a\n"
        "discovery cache makes the next pull scan only the new blocks.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_argument_group("market (--deployment, or --rpc with --provider)")
    source.add_argument(
        "--deployment", type=Path, metavar="FILE", help="devnet deployment.json (shortfall devnet)"
    )
    source.add_argument(
        "--rpc",
        metavar="URL",
        help="JSON-RPC URL (default: $ETH_RPC_URL; with --deployment: its rpc_url)",
    )
    source.add_argument(
        "--protocol", default="aave-v3", metavar="NAME", help="protocol adapter (default: aave-v3)"
    )
    source.add_argument(
        "--provider", metavar="ADDR", help="market root address (Aave V3: PoolAddressesProvider)"
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="snapshot directory")
    p.add_argument("--block", type=int, metavar="N", help="block to read (default: the latest)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    pacing = p.add_argument_group("RPC pacing")
    pacing.add_argument(
        "--rps", type=float, default=25.0, metavar="N", help="requests/s at most; 0: no limit (25)"
    )
    pacing.add_argument(
        "--concurrency", type=int, default=8, metavar="N", help="requests in flight at most (8)"
    )
    pacing.add_argument(
        "--timeout", type=float, default=30.0, metavar="S", help="seconds per request (30)"
    )
    pacing.add_argument(
        "--retries", type=int, default=5, metavar="N", help="retries of a transient failure (5)"
    )
    pacing.add_argument(
        "--batch-size",
        type=int,
        default=1000,
        metavar="N",
        help="calls per Multicall3 batch (1000)",
    )
    more = p.add_argument_group("market details")
    more.add_argument("--chain-id", type=int, metavar="ID", help="refuse any other chain")
    more.add_argument("--multicall", metavar="ADDR", help="Multicall3 address (default: canonical)")
    more.add_argument(
        "--dex-map", type=Path, metavar="FILE", help="JSON/TOML map: asset or symbol -> DEX pool"
    )
    more.add_argument(
        "--all-reserves",
        action="store_true",
        help="read every (account, reserve) pair, also supplies not used as collateral",
    )
    cache = p.add_argument_group("account discovery")
    cache.add_argument(
        "--from-block", type=int, metavar="N", help="first block to scan (default: deployment)"
    )
    cache.add_argument(
        "--cache",
        type=Path,
        metavar="FILE",
        help="discovery cache (default: ~/.cache/shortfall/discovery.sqlite)",
    )
    cache.add_argument("--no-cache", action="store_true", help="rescan all logs; write no cache")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Any:
    from keeper.pull import PullSettings, load_dex_map, settings_from_deployment

    common: dict[str, Any] = {
        "protocol": args.protocol,
        "block": args.block,
        "rps": args.rps,
        "max_concurrency": args.concurrency,
        "timeout": args.timeout,
        "retries": args.retries,
        "start_block": args.from_block,
        "cache_path": args.cache,
        "use_cache": not args.no_cache,
        "all_reserves": args.all_reserves,
        "batch_size": args.batch_size,
    }
    for name, value in (("--concurrency", args.concurrency), ("--batch-size", args.batch_size)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    if args.retries < 0 or args.timeout <= 0:
        raise ConfigError("--retries must be >= 0 and --timeout > 0")
    for name, value in (("--provider", args.provider), ("--multicall", args.multicall)):
        if value is not None and not is_address(value):
            raise ConfigError(f"{name} {value!r} is not an address (0x and 40 hex digits)")
    if args.deployment is not None:
        settings = settings_from_deployment(args.deployment, **common)
        overrides: dict[str, Any] = {}
        if args.rpc:
            overrides["rpc_url"] = args.rpc
        if args.provider:
            overrides["provider"] = args.provider
        if args.chain_id is not None:
            overrides["expected_chain_id"] = args.chain_id
        if args.multicall:
            overrides["multicall3"] = args.multicall
        if args.dex_map is not None:
            overrides["dex_sources"] = {**settings.dex_sources, **load_dex_map(args.dex_map)}
        return replace(settings, **overrides)
    rpc = args.rpc or os.environ.get("ETH_RPC_URL")
    if not rpc:
        raise ConfigError("no RPC: pass --rpc URL, set ETH_RPC_URL, or use --deployment FILE")
    if not args.provider:
        raise ConfigError(
            "--provider is required with --rpc (Aave V3 Ethereum: "
            "0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e), or use --deployment FILE"
        )
    extra: dict[str, Any] = {}
    if args.multicall:
        extra["multicall3"] = args.multicall
    return PullSettings(
        rpc_url=rpc,
        provider=args.provider,
        expected_chain_id=args.chain_id,
        dex_sources=load_dex_map(args.dex_map) if args.dex_map else {},
        **common,
        **extra,
    )


def run(args: argparse.Namespace) -> int:
    from keeper.adapters.base import get_adapter
    from keeper.pull import pull, summarize

    get_adapter(args.protocol)  # unknown names fail before any network traffic
    settings = _settings(args)
    started = time.perf_counter()
    snapshot = asyncio.run(pull(settings, out=args.out))
    seconds = time.perf_counter() - started
    summary = summarize(snapshot)
    stats = snapshot.meta.get("pull", {})
    summary.update(
        {
            "out": str(args.out),
            "seconds": round(seconds, 3),
            "rpc_requests": stats.get("requests", 0),
            "rpc_retries": stats.get("retries", 0),
            "accounts_discovered": snapshot.meta.get("accounts_discovered", 0),
        }
    )
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        per_request = summary["accounts_discovered"] / max(1, summary["rpc_requests"])
        print(
            f"pulled {summary['accounts']:,} accounts with positions "
            f"({summary['accounts_discovered']:,} discovered) on chain {summary['chain_id']} "
            f"at block {summary['block_number']} into {args.out}\n"
            f"  collateral ${summary['collateral_usd']:,.2f}  debt ${summary['debt_usd']:,.2f}  "
            f"HF < 1: {summary['accounts_hf_below_1']:,} accounts\n"
            f"  {seconds:.1f} s, {summary['rpc_requests']:,} RPC requests "
            f"({per_request:.0f} accounts/request, {summary['rpc_retries']} retries)"
        )
    return 0
