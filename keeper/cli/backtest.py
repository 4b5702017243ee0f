"""``shortfall backtest``: out-of-sample backtest of a scenario's VaR / ES forecasts."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shlex
import sys
from typing import Any

__all__ = ["register", "run"]

EXAMPLES = """\
examples:
  shortfall backtest --prices data/prices/ETH-USD.csv --scenario default --position ETH \\
      --from 2020-01-01 --to 2024-06-30 --out bt-eth/
  shortfall backtest --prices ETH-USD.csv BTC-USD.csv --position ETH=0.5,BTC=0.5 \\
      --scenario default --from 2020-01-01 --to 2024-06-30 --alpha 0.975,0.99 --out bt-book/
  shortfall backtest --prices ETH-USD.csv USDC-USD.csv --scenario default \\
      --position lending:ETH/USDC,hf=1.1,lt=0.825,bonus=0.05 --from 2020-01-01 \\
      --to 2024-06-30 --out bt-loan/
  shortfall report bt-eth/ --out backtest.html
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "backtest",
        help="out-of-sample backtest of a scenario's VaR / ES forecasts on a price history",
        description="Roll the forecast date through a window of daily prices: on each date "
        "condition the scenario on the prices strictly before it (recalibrating Monte Carlo "
        "and historical scenarios, no look-ahead), forecast VaR and ES of the position's "
        "next-day loss, and score them against the realised losses: exceptions, Kupiec with "
        "each day's own exception probability, Christoffersen, Acerbi-Szekely Z2 with "
        "simulated p-values, the FRTB 250-day traffic light and the FZ0 score against a "
        "GARCH(1,1)-t and a 250-day historical-simulation baseline computed in the same run. "
        "Writes backtest.json and forecasts.parquet to --out; `shortfall report DIR` renders "
        "it.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "--prices",
        required=True,
        nargs="+",
        action="extend",
        metavar="CSV",
        help="daily price files: date,open,high,low,close,volume (named by the file, "
        "ETH-USD.csv is ETH, or NAME=FILE) or one wide CSV (date + a column per symbol)",
    )
    p.add_argument("--scenario", required=True, metavar="NAME_OR_PATH", help="scenario")
    p.add_argument(
        "--position",
        required=True,
        metavar="SPEC",
        help="ETH | ETH=0.5,BTC=0.5 | lending:ETH/USDC,hf=1.1,lt=0.825,bonus=0.05[,debt=USD]",
    )
    p.add_argument("--from", dest="start", required=True, metavar="DATE", help="first date")
    p.add_argument("--to", dest="end", required=True, metavar="DATE", help="last date")
    p.add_argument("--step", default="1d", help="days between forecast dates (Nd)")
    p.add_argument("--horizon", default="1d", help="forecast horizon; only 1d is supported")
    p.add_argument("--alpha", default="0.975,0.99", help="comma-separated confidence levels")
    p.add_argument("--paths", type=int, default=4096, metavar="N", help="paths per forecast")
    p.add_argument("--seed", type=int, default=1, help="seed of the run (per-date seeds derive)")
    p.add_argument(
        "--refit-days",
        type=int,
        default=20,
        metavar="N",
        help="days between refits of GARCH / t / correlation (variances are filtered daily)",
    )
    p.add_argument(
        "--calibration",
        choices=("rolling", "fixed"),
        default="rolling",
        help="rolling: recalibrate on the data before each date; fixed: the file's numbers",
    )
    p.add_argument("--n-sim", type=int, default=2000, metavar="N", help="Z2 null histories")
    p.add_argument("--no-baselines", action="store_true", help="skip GARCH-t and HS250")
    p.add_argument("--out", required=True, metavar="DIR", help="results directory to write")
    p.add_argument("--json", action="store_true", help="print backtest.json instead of a table")
    p.set_defaults(func=run)


def _days(text: str, flag: str) -> int:
    from simulator.errors import InputError

    m = re.fullmatch(r"\s*(\d+)\s*d\s*", text)
    if not m or int(m.group(1)) < 1:
        raise InputError(f"{flag} {text!r}: expected a number of days such as 1d")
    return int(m.group(1))


def _date(text: str, flag: str) -> dt.date:
    from simulator.errors import InputError

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} {text!r}: expected a date YYYY-MM-DD") from None


def run(args: argparse.Namespace) -> int:
    from keeper.progress import progress
    from simulator import backtest as bt
    from simulator.errors import InputError
    from simulator.scenarios import load_scenario

    start, end = _date(args.start, "--from"), _date(args.end, "--to")
    step = _days(args.step, "--step")
    if _days(args.horizon, "--horizon") != 1:
        raise InputError(f"--horizon {args.horizon}: only 1d is supported (24 h scenarios)")
    try:
        alphas = [float(a) for a in args.alpha.split(",") if a.strip()]
    except ValueError:
        raise InputError(f"--alpha {args.alpha!r}: expected levels such as 0.975,0.99") from None
    for a in alphas:
        if not 0.0 < a < 1.0:
            raise InputError(f"--alpha {a:g}: expected a confidence level in (0, 1)")
    if args.paths < 2:
        raise InputError(f"--paths {args.paths}: expected at least 2")
    if args.refit_days < 1:
        raise InputError(f"--refit-days {args.refit_days}: expected at least 1")
    bt.check_backtest_target(args.out)
    position = bt.parse_position(args.position)
    prices = bt.read_prices(args.prices)
    scenario = load_scenario(args.scenario)
    total = max(0, (end - start).days // step + 1)
    with progress(f"backtest {scenario.name}", total=total) as bar:
        result = bt.run_backtest(
            prices,
            scenario,
            position,
            start,
            end,
            alphas=alphas,
            n_paths=args.paths,
            seed=args.seed,
            step_days=step,
            refit_days=args.refit_days,
            calibration=args.calibration,
            baselines=not args.no_baselines,
            n_sim=args.n_sim,
            progress=bar.advance,
        )
    argv = ["shortfall", "backtest", "--prices", *args.prices, "--scenario", args.scenario]
    argv += ["--position", args.position, "--from", args.start, "--to", args.end]
    argv += ["--step", args.step, "--alpha", args.alpha, "--paths", str(args.paths)]
    argv += ["--seed", str(args.seed), "--refit-days", str(args.refit_days)]
    argv += ["--calibration", args.calibration, "--out", str(args.out)]
    if args.no_baselines:
        argv.append("--no-baselines")
    extra: dict[str, Any] = {"command": shlex.join(argv)}
    out = bt.save_backtest(result, args.out, extra)
    if args.json:
        json.dump(bt.summary_dict(result) | extra, sys.stdout, indent=2)
        print()
        return 0
    m = result.meta
    print(
        f"backtest {m['scenario']} on {m['position']}: {m['n_forecasts']:,} forecasts "
        f"{m['from']}..{m['to']}, {m['paths']:,} paths each, calibration {m['calibration']}"
    )
    print()
    print(bt.format_table(result.scores))
    print()
    print(
        "exc = exceptions, exp = expected (sum of each day's P(L > VaR)); Z2 5% = the "
        "simulated critical value for this sample; FRTB = traffic light of the last and the "
        "worst 250-day window; FZ0: lower is better"
    )
    print(f"results written to {out}")
    return 0
