"""``shortfall devnet``: a local Aave-V3- (or, with ``--protocol compound-v3``, Compound-V3-)
compatible market on anvil, deployed and seeded.

``shortfall devnet [--accounts 2000] [--seed 7] [--port 8545] [--out deployment.json]`` starts
anvil, deploys the market, seeds it, writes deployment.json and stays up until Ctrl-C or
SIGTERM, then stops anvil. ``shortfall devnet set-price --deployment deployment.json SYMBOL
PRICE_USD`` moves one oracle feed on a running devnet and mines a block.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from keeper.devnet import DevnetError

EXAMPLES = """\
examples:
  shortfall devnet                                   2,000 accounts on 127.0.0.1:8545
  shortfall devnet --accounts 500 --seed 3 --port 8546 --out devnet.json
  shortfall devnet --protocol compound-v3 --out comet.json     a Comet (cUSDCv3-like) market
  shortfall devnet set-price --deployment deployment.json WETH 2150.5
"""

SET_PRICE_EXAMPLES = """\
examples:
  shortfall devnet set-price --deployment deployment.json WETH 2150.5
  shortfall devnet set-price --deployment deployment.json WBTC 41000
  shortfall devnet set-price --deployment comet.json WETH 1800   (Comet: any listed asset)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "devnet",
        usage="shortfall devnet [--protocol aave-v3|compound-v3] [--accounts N] [--seed N] "
        "[--port PORT] [--out FILE] "
        "[--anvil-log FILE] [--json]\n"
        "       shortfall devnet set-price [--deployment FILE] SYMBOL PRICE_USD",
        help="run a local Aave-V3-compatible market on anvil (or move its prices)",
        description="Start anvil on 127.0.0.1, deploy an Aave-V3-compatible market (Pool, "
        "AaveOracle, PoolAddressesProvider, data provider, Multicall3, Uniswap-V2-style pairs), "
        "seed it with a deterministic book of accounts, write deployment.json and stay up "
        "until Ctrl-C. With --protocol compound-v3: a Compound-V3-compatible Comet market "
        "(USDC base, five collateral assets) instead.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--protocol",
        choices=("aave-v3", "compound-v3"),
        default="aave-v3",
        help="which market to deploy (default: aave-v3)",
    )
    p.add_argument("--accounts", type=int, default=2000, metavar="N", help="accounts to seed")
    p.add_argument("--seed", type=int, default=7, metavar="N", help="seed of the account book")
    p.add_argument("--port", type=int, default=8545, metavar="PORT", help="port on 127.0.0.1")
    p.add_argument(
        "--out", type=Path, default=Path("deployment.json"), metavar="FILE", help="deployment file"
    )
    p.add_argument(
        "--anvil-log", type=Path, default=None, metavar="FILE", help="file for anvil's own output"
    )
    p.add_argument("--json", action="store_true", help="print the deployment as JSON")
    p.set_defaults(func=run)

    actions = p.add_subparsers(
        dest="devnet_action", metavar="ACTION", required=False, title="actions (optional)"
    )
    sp = actions.add_parser(
        "set-price",
        prog="shortfall devnet set-price",
        help="set one reserve's USD price on a running devnet and mine a block",
        description="Set the Chainlink-style feed of SYMBOL to PRICE_USD (8 decimals) on the "
        "running devnet described by --deployment, and mine a block.",
        epilog=SET_PRICE_EXAMPLES,
        formatter_class=HelpFormatter,
    )
    sp.add_argument(
        "--deployment",
        type=Path,
        default=Path("deployment.json"),
        metavar="FILE",
        help="devnet deployment.json",
    )
    sp.add_argument("symbol", metavar="SYMBOL", help="reserve symbol, e.g. WETH")
    sp.add_argument("price", metavar="PRICE_USD", help="new price in USD, e.g. 2150.5")
    sp.set_defaults(func=set_price_command)


def run(args: argparse.Namespace) -> int:
    from keeper.devnet.anvil import Anvil
    from keeper.devnet.deploy import write_deployment
    from keeper.devnet.launch import launch

    if args.accounts < 0:
        raise DevnetError(f"--accounts must be >= 0, got {args.accounts}")
    if not 0 < args.port < 65536:
        raise DevnetError(f"--port must be between 1 and 65535, got {args.port}")

    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    anvil = Anvil(port=args.port, log_path=args.anvil_log)
    try:
        started = time.perf_counter()
        devnet = launch(args.accounts, args.seed, anvil=anvil, protocol=args.protocol)
        write_deployment(args.out, devnet.deployment)
        elapsed = time.perf_counter() - started
        dep = devnet.deployment
        if args.json:
            print(json.dumps(dep, indent=2), flush=True)
        elif dep.get("protocol") == "compound-v3":
            unit = 10 ** int(dep["reserves"][dep["base_symbol"]]["decimals"])
            print(
                f"compound-v3 devnet up at {dep['rpc_url']} (chain {dep['chain_id']}) in "
                f"{elapsed:.1f} s\n"
                f"  comet                   {dep['comet']} (base {dep['base_symbol']})\n"
                f"  multicall3              {dep['multicall3']}\n"
                f"  assets                  {', '.join(dep['reserves'])}\n"
                f"  accounts                {dep['accounts']} (seed {dep['seed']}, "
                f"{dep['borrowers']} borrowers, {dep['near_liquidation']} near liquidation, "
                f"{dep['whales']} whales, seeded in {dep['seed_seconds']:.1f} s)\n"
                f"  reserves                {dep['initial_reserves'] / unit:,.2f} {dep['base_symbol']} "
                f"(target {dep['target_reserves'] / unit:,.0f})\n"
                f"  deployment              {args.out}\n"
                f"  anvil log               {anvil.log_path}\n"
                "Ctrl-C stops the node.",
                flush=True,
            )
        else:
            print(
                f"devnet up at {dep['rpc_url']} (chain {dep['chain_id']}) in {elapsed:.1f} s\n"
                f"  pool addresses provider {dep['pool_addresses_provider']}\n"
                f"  pool                    {dep['pool']}\n"
                f"  oracle                  {dep['oracle']}\n"
                f"  data provider           {dep['data_provider']}\n"
                f"  multicall3              {dep['multicall3']}\n"
                f"  reserves                {', '.join(dep['reserves'])}\n"
                f"  accounts                {dep['accounts']} (seed {dep['seed']}, "
                f"{dep['positions']} positions, seeded in {dep['seed_seconds']:.1f} s)\n"
                f"  deployment              {args.out}\n"
                f"  anvil log               {anvil.log_path}\n"
                "Ctrl-C stops the node.",
                flush=True,
            )
        while not stop.wait(0.5):
            if not anvil.running:
                raise DevnetError(f"anvil stopped unexpectedly; see {anvil.log_path}")
        print("stopping devnet", file=sys.stderr)
        return 0
    finally:
        anvil.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)


def set_price_command(args: argparse.Namespace) -> int:
    from keeper.devnet.deploy import set_price

    block = set_price(args.deployment, args.symbol, args.price)
    print(f"{args.symbol} price set to {args.price} USD in block {block}")
    return 0
