"""``shortfall report``: one self-contained HTML (or JSON) report from results directories."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from keeper.redact import redact_text
from simulator.atomic import atomic_write_text

__all__ = ["register", "run", "write_report"]

EXAMPLES = """\
examples:
  shortfall report results/ --out report.html
  shortfall report mc/ black-thursday/ ftx/ --out report.html     first dir leads; all side by side
  shortfall report results/ --format json --out report.json       the same content for dashboards
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML (or JSON) risk report from results directories",
        description="Build one self-contained HTML file a risk team can mail around (figures "
        "inline, no network needed to view it) from one or more results directories written "
        "by `shortfall simulate`: snapshot chain and block, VaR and ES at 95/97.5/99% with "
        "intervals, the shortfall distribution, the scenarios side by side, cascade paths, "
        "top accounts and assets by ES contribution, and the parameters to reproduce it. The "
        "first directory leads each section.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="results directories")
    p.add_argument(
        "--out",
        type=Path,
        default=argparse.SUPPRESS,
        help="report file to write (default: report.html, or report.json with --format json)",
    )
    p.add_argument("--format", choices=("html", "json"), default="html", help="output format")
    p.add_argument(
        "--top", type=int, default=20, metavar="N", help="accounts listed by ES contribution"
    )
    p.set_defaults(func=run)


def write_report(path: Path, text: str) -> Path:
    """Write a report atomically, readable as a normal new file would be (the temporary file
    behind the atomic rename is private, 0600; a report is meant to be shared)."""
    atomic_write_text(path, text)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
    return path


def run(args: argparse.Namespace) -> int:
    from simulator.report import build_report, render_html, render_json

    if args.top < 1:
        from simulator.errors import InputError

        raise InputError(f"--top {args.top}; expected at least 1")
    out: Path = getattr(args, "out", None) or Path(f"report.{args.format}")
    # Rebuilt from the parsed arguments (sys.argv is not ours when main() gets an argv).
    argv = ["shortfall", "report", *args.results, "--out", str(out), "--format", args.format]
    if args.top != 20:
        argv += ["--top", str(args.top)]
    command = redact_text(shlex.join(argv))
    report = build_report(args.results, command=command, top_n=args.top)
    text = render_html(report) if args.format == "html" else render_json(report)
    write_report(out, text)
    print(f"report: {out.resolve()}")
    return 0
