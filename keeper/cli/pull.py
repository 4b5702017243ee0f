"""``shortfall pull``: read a lending market at one block into a snapshot directory."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from keeper.cli.market import add_market_arguments, resolve_market
from keeper.errors import ConfigError

EXAMPLES = """\
examples:
  shortfall pull --deployment deployment.json --out snap/
  export ETH_RPC_URL=https://eth-mainnet.example/v2/KEY
  shortfall pull --protocol aave-v3 --provider 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e \\
      --dex-map dex.toml --rps 10 --out snap/
  shortfall pull --deployment deployment.json --block 120 --json --out snap-120/
  shortfall pull --protocol compound-v3 --comet 0xc3d688B66703497DAA19211EEdff47f25384cdc3 \\
      --dex-map dex.toml --out comet-snap/
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
    add_market_arguments(p)
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
        "--cache",
        type=Path,
        metavar="FILE",
        help="discovery cache (default: ~/.cache/shortfall/discovery.sqlite)",
    )
    cache.add_argument("--no-cache", action="store_true", help="rescan all logs; write no cache")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Any:
    from keeper.pull import PullSettings, load_dex_map

    common: dict[str, Any] = {
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
    for name, value in (("--block", args.block), ("--from-block", args.from_block)):
        if value is not None and value < 0:
            raise ConfigError(f"{name} must be a block number >= 0, got {value}")
    if args.retries < 0 or args.timeout <= 0:
        raise ConfigError("--retries must be >= 0 and --timeout > 0")
    market = resolve_market(args)
    dex_sources = dict(market.dex_sources)
    if args.dex_map is not None:
        given = load_dex_map(args.dex_map)
        # the map wins over the deployment's pairs, also where it names an asset by symbol
        named = {k.lower() for k in given}
        if args.deployment is not None:
            tokens = _deployment_tokens(args.deployment)
            named |= {tokens[k] for k in named if k in tokens}
        dex_sources = {k: v for k, v in dex_sources.items() if k.lower() not in named}
        dex_sources.update(given)
    return PullSettings(**market.chain_fields(), dex_sources=dex_sources, **common)


def _deployment_tokens(path: Any) -> dict[str, str]:
    """Lower-case symbol -> lower-case token address of a deployment file's reserves."""

    try:
        reserves = json.loads(Path(path).read_text(encoding="utf-8")).get("reserves") or {}
    except (OSError, ValueError, AttributeError):
        return {}  # resolve_market has already reported an unreadable file
    return {
        str(sym).lower(): str(entry["token"]).lower()
        for sym, entry in reserves.items()
        if isinstance(entry, dict) and isinstance(entry.get("token"), str)
    }


def run(args: argparse.Namespace) -> int:
    from keeper.adapters.base import get_adapter
    from keeper.cli.market import effective_protocol
    from keeper.pull import pull, summarize

    get_adapter(effective_protocol(args))  # unknown names fail before any network traffic
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
        meta = snapshot.meta
        comet = meta.get("comet")
        if comet is not None:
            print(
                f"  Comet base {comet['base_symbol']}: reserves {comet['reserves']:,.2f} "
                f"(target {comet['target_reserves']:,.2f}), store-front factor "
                f"{comet['store_front_price_factor']:g}, utilisation {comet['utilization']:.2%}\n"
                f"  {meta.get('verified_accounts', 0):,} accounts with a base balance match "
                f"borrowBalanceOf / balanceOf / isLiquidatable; "
                f"{meta.get('liquidatable_accounts', 0):,} liquidatable"
            )
            return 0
        print(
            f"  Pool revision {meta.get('pool_revision') or '-'}, rounding "
            f"{meta.get('rounding_model', '-')}: {meta.get('verified_accounts', 0):,} accounts "
            "with debt match getUserAccountData"
        )
        for v in summary["venues"]:
            if v["kind"] != "constant-product":
                depth = v["depth_usd"].get("0.02")
                shown = f"${depth:,.0f}" if depth is not None else "beyond its liquidity"
                print(f"  {v['symbol']} venue: {v['kind']}, depth at 2% impact {shown}")
        if summary["emode_family"] != "none":
            print(f"  e-mode ({summary['emode_family']}):")
            for category, row in summary["emode"].items():
                print(
                    f"    {category:>3} {row['label'][:24]:<24} {row['accounts']:>8,} accounts  "
                    f"debt ${row['debt_usd']:,.2f}"
                )
    return 0
