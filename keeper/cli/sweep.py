"""``shortfall sweep``: VaR / ES of bad debt over a grid of protocol parameters, on common paths."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from keeper.cli.simulate import add_engine_options

__all__ = ["register", "run"]

EXAMPLES = """\
examples:
  shortfall sweep --snapshot snap/ --scenario default --paths 10000 \\
      --param WETH.liquidation_threshold=0.78:0.86:0.01 --target-es 1000000 --out sweep/
  shortfall sweep --snapshot snap/ --scenario default \\
      --param WETH.liquidation_bonus=0.04,0.05,0.06,0.075 --target-es-pct 0.1 --out bonus/
  shortfall sweep --snapshot snap/ --scenario black-thursday-2020 \\
      --param WETH.supply_cap=1e6:3e6:5e5 --param oracle.deviation=0.005,0.01 --out caps/
  shortfall report sweep/ --out sweep.html

parameters (NAME=VALUES, VALUES = START:STOP:STEP inclusive, or V1,V2,...):
  SYMBOL.ltv | .liquidation_threshold | .liquidation_bonus | .protocol_fee    fractions
  SYMBOL.supply_cap | .borrow_cap    token units; the book's holders of SYMBOL rescaled to it
  SYMBOL.liquidity_scale             multiplier on SYMBOL's DEX pool depth
  emode.CATEGORY.ltv | .liquidation_threshold | .liquidation_bonus
  oracle.deviation | oracle.heartbeat_s | gas_units | liquidity_scale (every pool)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "sweep",
        help="what-if: VaR / ES of bad debt over a grid of protocol parameters",
        description="Run `shortfall simulate` at every point of a grid of risk parameters "
        "(a reserve's LTV / LT / bonus / protocol fee, an e-mode category's, a supply or "
        "borrow cap, an asset's DEX depth, the oracle's deviation and heartbeat, gas) on the "
        "same paths (common random numbers), and report per point VaR, ES, LaR (the alpha-"
        "quantile of liquidated volume) and P(shortfall > 0) with bootstrap intervals, and "
        "the paired difference of ES to the base (the snapshot's own parameters). With "
        "--target-es it names the largest LT / smallest bonus / largest cap that keeps ES "
        "under the target, with an interval. A lower LT leaves positions as they are; "
        "accounts it makes liquidatable at once are counted. Writes sweep.json, "
        "sweep.parquet and points/<id>/ (ordinary results directories) to --out.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--snapshot", required=True, metavar="DIR", help="snapshot directory")
    p.add_argument(
        "--scenario",
        required=True,
        metavar="NAME_OR_PATH",
        help="built-in scenario name (shortfall scenarios list) or a TOML file",
    )
    p.add_argument(
        "--param",
        required=True,
        action="append",
        metavar="SPEC",
        help="NAME=VALUES, e.g. WETH.liquidation_threshold=0.78:0.86:0.01; repeat for a grid",
    )
    p.add_argument(
        "--paths",
        type=int,
        default=None,
        metavar="N",
        help="paths per point (default: the scenario's, 1 for a deterministic stress)",
    )
    p.add_argument("--seed", type=int, default=1, help="scenario seed, shared by every point")
    p.add_argument("--alpha", type=float, default=0.975, help="confidence level of VaR / ES / LaR")
    target = p.add_mutually_exclusive_group()
    target.add_argument(
        "--target-es",
        type=float,
        default=None,
        metavar="USD",
        help="ES budget at alpha, USD: recommend the boundary value along the first --param",
    )
    target.add_argument(
        "--target-es-pct",
        type=float,
        default=None,
        metavar="PCT",
        help="ES budget in percent of the snapshot's total debt (0.1 = 0.1%%)",
    )
    p.add_argument(
        "--prices",
        nargs="+",
        metavar="[NAME=]CSV",
        default=None,
        help="daily price histories that condition a market-conditional scenario (as for "
        "shortfall simulate)",
    )
    p.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="where chunks run: this process, or a Dask cluster",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        default=None,
        help="Dask scheduler address (tcp://HOST:PORT); without it --executor dask starts a "
        "LocalCluster",
    )
    p.add_argument(
        "--chunk-paths", type=int, default=1000, metavar="N", help="paths per chunk / task"
    )
    add_engine_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="sweep directory to write")
    p.add_argument("--json", action="store_true", help="print sweep.json instead of a table")
    p.set_defaults(func=run)


def _usd(x: float) -> str:
    return f"${x:,.0f}" if x >= 0 else f"-${-x:,.0f}"


def _print_table(summary: dict[str, Any], table: Any, out_dir: Path) -> None:
    names = [p["name"] for p in summary["params"]]
    level = f"{summary['alpha']:g}"
    lines = [
        f"sweep of {', '.join(names)} under {summary['scenario']}: {summary['points']} points x "
        f"{summary['paths']:,} common paths, seed {summary['seed']}, {summary['runtime_s']:.1f} s",
        "",
    ]
    head = (
        "  ".join(f"{n:>24}" for n in names)
        + f"  {'ES ' + level:>12}  {'95% CI':>25}  {'ES - base':>12}  {'paired 95% CI':>25}"
        + f"  {'VaR':>12}  {'LaR':>14}  {'P(loss)':>8}  {'liq. now':>8}"
    )
    lines.append(head)
    for row in table.to_dict(orient="records"):
        vals = "  ".join(f"{row[n]:>24g}" for n in names)
        mark = " *" if row["is_base"] else ""
        lines.append(
            vals
            + f"  {_usd(row['es_usd']):>12}"
            + f"  {'[' + _usd(row['es_low_usd']) + ', ' + _usd(row['es_high_usd']) + ']':>25}"
            + f"  {_usd(row['es_diff_usd']):>12}"
            + f"  {'[' + _usd(row['es_diff_low_usd']) + ', ' + _usd(row['es_diff_high_usd']) + ']':>25}"
            + f"  {_usd(row['var_usd']):>12}  {_usd(row['lar_usd']):>14}"
            + f"  {row['p_shortfall']:>8.2%}  {row['liquidatable_now']:>8,}{mark}"
        )
    lines.append("  (* the base: the snapshot's own parameters)")
    for rec in summary["recommendations"]:
        fixed = ", ".join(f"{k}={v:g}" for k, v in rec["fixed"].items())
        where = f" at {fixed}" if fixed else ""
        lines += ["", f"target ES {_usd(rec['target_es_usd'])} for {rec['parameter']}{where}:"]
        lines.append(f"  {rec['text']}")
    notes = sorted({n for n in table["notes"] if n})
    if notes:
        lines += ["", *(f"note: {n}" for n in notes)]
    lines += ["", f"sweep written to {out_dir}"]
    print("\n".join(lines))


def run(args: argparse.Namespace) -> int:
    from keeper.cli.simulate import (
        _dask_client,
        check_run_options,
        engine_argv,
        engine_config,
        load_run_inputs,
        with_oracle_override,
    )
    from keeper.progress import progress
    from simulator.errors import InputError
    from simulator.results import provenance
    from simulator.sweep import check_sweep_target, load_sweep, parse_param, run_sweep

    if args.paths is not None and args.paths < 2:
        raise InputError(f"--paths {args.paths}: a sweep needs at least 2 paths")
    check_run_options(args)
    check_sweep_target(args.out)
    snapshot, scenario = load_run_inputs(args)
    config = engine_config(args)
    scenario = with_oracle_override(scenario, args)
    params = [parse_param(spec, snapshot) for spec in args.param]
    n_paths = args.paths if args.paths is not None else scenario.default_paths
    if n_paths < 2:
        raise InputError(
            f"scenario {scenario.name} runs {n_paths} path by default; a sweep's intervals "
            "need more: give --paths N"
        )
    argv = ["shortfall", "sweep", "--snapshot", str(args.snapshot), "--scenario"]
    argv += [str(args.scenario), "--paths", str(n_paths), "--seed", str(args.seed)]
    argv += ["--alpha", str(args.alpha)]
    for spec in args.param:
        argv += ["--param", spec]
    if args.target_es is not None:
        argv += ["--target-es", str(args.target_es)]
    if args.target_es_pct is not None:
        argv += ["--target-es-pct", str(args.target_es_pct)]
    if args.prices:
        argv += ["--prices", *args.prices]
    argv += [*engine_argv(args), "--out", str(args.out)]
    extra = {
        "snapshot_dir": str(Path(args.snapshot).resolve()),
        "command": shlex.join(argv),
        "executor": args.executor,
        "chunk_paths": args.chunk_paths,
        **provenance(args.snapshot, scenario),
    }
    import math

    from simulator.sweep import base_value

    n_points = math.prod(len(p.values) for p in params)
    base = [base_value(p, snapshot, scenario, config, args.seed) for p in params]
    base_in_grid = all(
        any(math.isclose(v, b, rel_tol=1e-12) for v in p.values)
        for p, b in zip(params, base, strict=True)
    )
    n_points += 0 if base_in_grid else 1  # the base runs as a point of its own
    client = _dask_client(args.scheduler) if args.executor == "dask" else None
    try:
        with progress(f"sweep {scenario.name}", total=n_points * n_paths) as bar:
            run_sweep(
                snapshot,
                scenario,
                params,
                n_paths,
                seed=args.seed,
                alpha=args.alpha,
                executor=client,
                chunk_paths=args.chunk_paths,
                target_es_usd=args.target_es,
                target_es_pct=args.target_es_pct,
                config=config,
                out=args.out,
                extra=extra,
                progress=bar.advance,
            )
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None and args.scheduler is None:
                cluster.close()
    summary, table = load_sweep(args.out)
    if args.json:
        json.dump(summary, sys.stdout, indent=2)
        print()
    else:
        _print_table(summary, table, Path(args.out))
    return 0
