"""Run every ``benchmarks/bench_*.py`` module and print one table.

A benchmark module defines ``run(quick: bool) -> list[dict]``; each dict is one row with keys
``benchmark``, ``measure``, ``value`` (float), ``unit`` and ``target`` (text, "" if none) and,
optionally, ``ok`` (bool, whether the target was met). ``--quick`` shrinks the workloads
(for a smoke run); ``-k NAME`` runs only modules whose name contains NAME.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from typing import Any

import benchmarks


def _fmt(value: float) -> str:
    if value == 0 or 0.01 <= abs(value) < 1e6:
        return f"{value:,.3f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("--quick", action="store_true", help="small workloads, for a smoke run")
    parser.add_argument("-k", dest="only", default="", help="run modules whose name contains this")
    args = parser.parse_args(argv)

    rows: list[dict[str, Any]] = []
    names = sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    for name in names:
        if args.only and args.only not in name:
            continue
        start = time.perf_counter()
        print(f"running {name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"benchmarks.{name}")
        rows.extend(module.run(quick=args.quick))
        print(f"  {name} took {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)

    headers = ("benchmark", "measure", "value", "unit", "target", "met")
    table = [
        (
            str(r["benchmark"]),
            str(r["measure"]),
            _fmt(float(r["value"])),
            str(r["unit"]),
            str(r.get("target", "")),
            {True: "yes", False: "NO", None: ""}[r.get("ok")],
        )
        for r in rows
    ]
    widths = [
        max(len(h), *(len(t[i]) for t in table)) if table else len(h) for i, h in enumerate(headers)
    ]
    line = " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-+-".join("-" * w for w in widths))
    for t in table:
        print(" | ".join(c.ljust(w) for c, w in zip(t, widths, strict=True)))
    return 0 if all(r.get("ok") is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
