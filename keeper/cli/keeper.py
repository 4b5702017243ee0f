"""``shortfall keeper``: flag, block by block, accounts whose stressed ES exceeds their margin."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from keeper.cli.market import (
    add_market_arguments,
    effective_protocol,
    resolve_market,
    url_scheme_host,
)
from keeper.errors import ConfigError

EXAMPLES = """\
examples:
  shortfall keeper --deployment deployment.json --db keeper.sqlite
  shortfall keeper --deployment deployment.json --db keeper.sqlite --once --json
  export ETH_RPC_URL=https://eth-mainnet.example/v2/KEY
  shortfall keeper --protocol aave-v3 --provider 0x2f39d218133AFaB8F2B819B1066c7E434Ad94E9e \\
      --db keeper.sqlite --margin liquidation-buffer --scenario black-thursday-2020 \\
      --webhook https://hooks.slack.com/services/T0/B0/XXXX --metrics-port 9108 --rps 10
  shortfall keeper --deployment comet.json --db comet.sqlite     # our Compound V3 devnet
  shortfall keeper --protocol compound-v3 --comet 0xc3d688B66703497DAA19211EEdff47f25384cdc3 \
      --db cusdcv3.sqlite --margin liquidation-buffer

flag rule: an account with at least --min-usd of debt is flagged when its stressed ES (ES at
--alpha of its loss over the probabilistic set: the --stress-from joint states, else the
one-day Monte Carlo draws) or its loss under a named stress (--scenario, worst point along the
path) exceeds its margin. On Aave V3 the loss is the fall of the margin itself plus the
liquidation bonus a liquidation in that state would cost; on Compound V3 it is the reserves'
loss when the account is absorbed there, max(credit, debt) minus what its collateral fetches
at the store front (0 where it is not liquidatable), and --margin liquidation-buffer is
Comet's liquidation margin (collateral x liquidateCollateralFactor - debt). Severity is the lower of the ratio grade (loss/margin:
low <= 1.25 < medium <= 2 < high <= 4 < critical) and the USD-at-risk grade (loss - margin:
low < $10k <= medium < $100k <= high < $1M <= critical). A flag escalates when its severity
rises, de-escalates after --clear-blocks blocks below, and clears once the loss < 0.9 x margin
for --clear-blocks blocks in a row.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "keeper",
        help="watch a market block by block and flag accounts whose stressed ES exceeds margin",
        description="Long-running, read-only daemon: each new block it discovers accounts, "
        "re-reads changed positions and prices, recomputes every account's stressed Expected "
        "Shortfall against its posted margin, and publishes flag changes (open, escalate, "
        "clear) to stdout, the SQLite database, a webhook and Prometheus metrics.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    add_market_arguments(p)
    p.add_argument("--db", type=Path, required=True, help="SQLite database (created if missing)")
    risk = p.add_argument_group("risk")
    risk.add_argument("--alpha", type=float, default=0.975, help="ES confidence level")
    risk.add_argument(
        "--margin", choices=("equity", "liquidation-buffer"), default="equity", help="posted margin"
    )
    risk.add_argument(
        "--scenario",
        action="append",
        default=None,
        metavar="NAME",
        help="named stress scenario (repeatable; default: every built-in stress scenario)",
    )
    risk.add_argument(
        "--stress-from",
        type=Path,
        default=None,
        metavar="RESULTS_DIR",
        help="use a simulate results dir's joint market states (cascade-adjusted, both "
        "directions, path-weighted) as the probabilistic set instead of the one-day Monte "
        "Carlo draws; flags also carry each account's ES contribution from it",
    )
    risk.add_argument(
        "--states",
        type=int,
        default=4096,
        help="states kept from --stress-from (every tail path's, the rest sampled by weight)",
    )
    risk.add_argument(
        "--min-usd", type=float, default=100.0, help="no flag for accounts with less debt (USD)"
    )
    risk.add_argument("--mc-paths", type=int, default=2000, help="one-day Monte Carlo draws")
    risk.add_argument("--mc-seed", type=int, default=20240312, help="seed of the draws")
    risk.add_argument(
        "--clear-blocks", type=int, default=3, help="blocks an account stays safe before clearing"
    )
    loop = p.add_argument_group("loop")
    loop.add_argument("--once", action="store_true", help="process the current head and exit")
    loop.add_argument("--poll", type=float, default=2.0, help="seconds between head polls")
    loop.add_argument(
        "--ws",
        default=None,
        metavar="URL",
        help="WebSocket endpoint: a newHeads subscription wakes the keeper at once (polling "
        "stays the fallback)",
    )
    loop.add_argument(
        "--full-every",
        type=int,
        default=50,
        help="re-read every account at least every N blocks (a rolling 1/N of them per block)",
    )
    loop.add_argument("--rps", type=float, default=25.0, help="RPC requests per second (0: off)")
    loop.add_argument("--timeout", type=float, default=30.0, help="seconds per RPC request")
    loop.add_argument(
        "--retries", type=int, default=5, help="retries of a transient RPC failure per request"
    )
    out = p.add_argument_group("outputs")
    out.add_argument("--json", action="store_true", help="events as JSON lines on stdout")
    out.add_argument("--events-file", type=Path, default=None, help="append events (JSON lines)")
    out.add_argument("--webhook", default=None, help="Slack-compatible webhook URL for changes")
    out.add_argument(
        "--metrics-port",
        type=int,
        default=9108,
        help="/metrics and /healthz port (0: any, -1: off)",
    )
    out.add_argument("--metrics-host", default="127.0.0.1", help="address to serve metrics on")
    out.add_argument(
        "--stall-seconds",
        type=float,
        default=120.0,
        help="/healthz 503 after this long without a new block",
    )
    out.add_argument(
        "--max-lag-blocks", type=int, default=10, help="/healthz 503 when this many blocks behind"
    )
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace) -> Any:
    from keeper.adapters.base import get_adapter
    from keeper.daemon import KeeperSettings

    get_adapter(effective_protocol(args))  # an unknown name fails before any network traffic
    if args.stress_from is not None and not args.stress_from.is_dir():
        raise ConfigError(f"--stress-from {args.stress_from}: no such results directory")
    if not args.min_usd >= 0 or args.states < 1:
        raise ConfigError(f"--min-usd {args.min_usd} must be >= 0 and --states {args.states} >= 1")
    if args.mc_paths < 0 or args.clear_blocks < 1 or args.full_every < 1 or args.retries < 0:
        raise ConfigError(
            "--mc-paths and --retries must be >= 0, --clear-blocks and --full-every >= 1"
        )
    if args.timeout <= 0 or args.poll <= 0:
        raise ConfigError("--timeout and --poll must be > 0")
    if args.ws is not None:
        _check_ws_url(args.ws)
    return KeeperSettings(
        **resolve_market(args).chain_fields(),
        db_path=args.db,
        start_block=args.from_block,
        alpha=args.alpha,
        margin=args.margin,
        scenarios=tuple(args.scenario) if args.scenario else None,
        stress_from=args.stress_from,
        mc_paths=args.mc_paths,
        mc_seed=args.mc_seed,
        min_usd=args.min_usd,
        state_budget=args.states,
        clear_blocks=args.clear_blocks,
        full_refresh_blocks=args.full_every,
        poll_interval_s=args.poll,
        ws_url=args.ws,
        rps=args.rps,
        rpc_timeout_s=args.timeout,
        rpc_retries=args.retries,
        metrics_host=args.metrics_host,
        metrics_port=None if args.metrics_port < 0 else args.metrics_port,
        stall_s=args.stall_seconds,
        max_lag_blocks=args.max_lag_blocks,
        webhook_url=args.webhook,
        json_lines=args.json,
        events_file=args.events_file,
        once=args.once,
    )


def _check_ws_url(url: str) -> None:
    """``--ws`` must be a ws:// or wss:// URL with a host (shown redacted if it is not)."""
    from keeper.redact import redact_url

    scheme, host = url_scheme_host(url)
    if scheme not in ("ws", "wss") or not host:
        raise ConfigError(
            f"--ws {redact_url(url)} is not a ws:// or wss:// URL; pass the node's WebSocket "
            "endpoint (reads go over --rpc; --ws only wakes the keeper on new blocks)"
        )


def run(args: argparse.Namespace) -> int:
    from keeper.daemon import run_keeper

    settings = settings_from_args(args)
    code = run_keeper(settings)
    if args.once and args.json and code == 0:
        from keeper.store import Store

        store = Store(settings.db_path)
        try:
            progress = store.progress()
            summary = {
                "type": "summary",
                "block": None if progress is None else progress.block_number,
                "open_flags": sum(1 for f in store.dump_flags() if f["status"] == "open"),
                "settings": settings.describe(),
            }
        finally:
            store.close()
        sys.stdout.write(json.dumps(summary) + "\n")
    return code
