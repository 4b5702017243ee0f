"""The ``shortfall`` command line.

Each sub-command lives in its own module under ``keeper.cli`` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable taking the
parsed arguments and returning an exit code. This module only wires them together, sets up
logging and turns errors into exit codes: 0 success, 1 user error (one line on stderr),
2 usage error (argparse), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from keeper.redact import redact_text
from simulator import __version__
from simulator.errors import ShortfallError

__all__ = ["main"]

#: Sub-command modules, in the order ``shortfall --help`` lists them.
COMMANDS: tuple[str, ...] = (
    "devnet",
    "pull",
    "simulate",
    "sweep",
    "backtest",
    "report",
    "scenarios",
    "keeper",
    "demo",
)

EPILOG = """\
examples:
  shortfall demo                                   run everything end to end on a local devnet
  shortfall devnet --accounts 2000 --out deployment.json
  shortfall pull --deployment deployment.json --out snap/
  shortfall simulate --snapshot snap/ --scenario black-thursday-2020 --out results/
  shortfall sweep --snapshot snap/ --scenario default \\
      --param WETH.liquidation_threshold=0.78:0.86:0.01 --target-es 1e6 --out sweep/
  shortfall backtest --prices ETH-USD.csv --scenario default --position ETH \\
      --from 2020-01-01 --to 2024-06-30 --out bt/
  shortfall report results/ --out report.html
  shortfall keeper --deployment deployment.json --db keeper.sqlite
"""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps hand-written example blocks and shows defaults that say something.

    A default of ``None`` or ``False`` is not shown, nor one the help text already states.
    """

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shortfall",
        description="Expected Shortfall of lending-protocol bad debt from replayed liquidation "
        "cascades, and a keeper that flags accounts whose stressed ES exceeds their margin.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"shortfall {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"keeper.cli.{name}").register(sub)
    return parser


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``shortfall`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except ShortfallError as exc:
        print(f"shortfall: error: {redact_text(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("shortfall: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `shortfall ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
