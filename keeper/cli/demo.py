"""``shortfall demo``: devnet, pull, simulate, report, keeper over a crash, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["register", "run"]

EXAMPLES = """\
examples:
  shortfall demo                                   the full demo into ./demo-out/
  shortfall demo --accounts 300 --paths 500        a small, fast run (CI)
  shortfall demo --out /tmp/demo --stress black-thursday-2020
  shortfall demo --protocol compound-v3            the same on our Comet (cUSDCv3-like) market
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "demo",
        help="run everything end to end on a local devnet and write the report",
        description="Start a local devnet (anvil) with our Aave-V3-compatible market (or, with "
        "--protocol compound-v3, our Comet-compatible one) and a "
        "seeded book of accounts, pull a snapshot, simulate the default Monte Carlo scenario "
        "and the named historical stresses, write the HTML report, then run the keeper over "
        "a scripted crash (oracle prices stepping down block by block) and print the accounts "
        "it flags. anvil is stopped at the end, also on an error or Ctrl-C. Needs anvil (the "
        "npm package @foundry-rs/anvil that `make setup` installs, or one on PATH).",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--out", type=Path, default=Path("demo-out"), help="output directory")
    p.add_argument("--accounts", type=int, default=2000, help="accounts seeded on the devnet")
    p.add_argument(
        "--paths", type=int, default=10_000, help="Monte Carlo paths of the default scenario"
    )
    p.add_argument("--seed", type=int, default=1, help="simulation seed")
    p.add_argument("--devnet-seed", type=int, default=7, help="seed of the devnet book")
    p.add_argument("--alpha", type=float, default=0.975, help="ES confidence level")
    p.add_argument(
        "--stress",
        action="append",
        metavar="NAME",
        help="named stress to run (repeatable; default: every named historical stress, "
        "not the hypothetical-* shocks)",
    )
    p.add_argument("--port", type=int, default=None, help="anvil port (default: a free one)")
    p.add_argument(
        "--protocol",
        choices=("aave-v3", "compound-v3"),
        default="aave-v3",
        help="the devnet market: our Aave V3 one (default) or our Compound V3 (Comet) one",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from keeper.demo import DemoSettings, run_demo
    from simulator.errors import InputError

    if args.accounts < 1:
        raise InputError(f"--accounts {args.accounts}; expected at least 1")
    if args.paths < 10:
        raise InputError(f"--paths {args.paths}; expected at least 10")
    if not 0.0 < args.alpha < 1.0:
        raise InputError(f"--alpha {args.alpha}; expected a number in (0, 1)")
    settings = DemoSettings(
        out=args.out,
        accounts=args.accounts,
        paths=args.paths,
        devnet_seed=args.devnet_seed,
        sim_seed=args.seed,
        alpha=args.alpha,
        stresses=tuple(args.stress) if args.stress else None,
        port=args.port,
        protocol=args.protocol,
    )
    run_demo(settings)
    return 0
