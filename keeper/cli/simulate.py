"""``shortfall simulate``: VaR / ES of collateral shortfall from replayed liquidation cascades."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]

EXAMPLES = """\
examples:
  shortfall simulate --snapshot snap/ --scenario default --paths 10000 --out results/
  shortfall simulate --snapshot snap/ --scenario black-thursday-2020 --out bt/
  shortfall simulate --snapshot snap/ --scenario my-stress.toml --seed 7 --out mine/ --json
  shortfall simulate --snapshot snap/ --scenario default --executor dask \\
      --scheduler tcp://10.0.0.5:8786 --out results/
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "simulate",
        help="replay liquidation cascades and estimate VaR / ES of bad debt",
        description="Drive a snapshot through a scenario's price paths, replay the Aave V3.3 "
        "liquidation cascade on every path (price impact, oracle lag, gas, close factor, "
        "bad-debt deficits) and estimate VaR and Expected Shortfall of the collateral "
        "shortfall with bootstrap intervals and per-account / per-asset contributions. "
        "Writes summary.json, paths.parquet, contributions.parquet, "
        "asset_contributions.parquet and timeline.parquet to --out. The same seed gives the "
        "same numbers whatever the executor.",
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
        "--paths",
        type=int,
        default=None,
        metavar="N",
        help="number of paths (default: the scenario's, 1 for a deterministic stress)",
    )
    p.add_argument("--seed", type=int, default=1, help="scenario seed")
    p.add_argument(
        "--prices",
        nargs="+",
        metavar="[NAME=]CSV",
        default=None,
        help="daily price histories that condition a market-conditional scenario (the "
        "default) on the market before the snapshot's block date: each factor's GARCH "
        "volatility is filtered from its series' daily returns up to that date (files as for "
        "shortfall backtest: date,close or a wide CSV; NAME=FILE names a series, e.g. "
        "ETH=ETH-USD.csv LST=STETH-ETH.csv USDC=USDC-USD.csv). Without it the long-run "
        "volatility is used and a warning logged",
    )
    p.add_argument("--alpha", type=float, default=0.975, help="confidence level of VaR / ES")
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
    p.add_argument(
        "--no-accrual",
        action="store_true",
        help="hold balances at their snapshot amounts: no interest over the horizon (by "
        "default debt grows at each reserve's variable borrow rate and collateral at its "
        "supply rate, read at the snapshot block); recorded as engine.accrual in summary.json",
    )
    add_engine_options(p)
    p.add_argument("--out", required=True, metavar="DIR", help="results directory to write")
    p.add_argument("--json", action="store_true", help="print summary.json instead of a table")
    p.set_defaults(func=run)


#: Engine knobs on the command line: option -> (EngineConfig field, type, help).
ENGINE_OPTIONS: dict[str, tuple[str, type, str]] = {
    "--liquidity-scale": (
        "liquidity_scale",
        float,
        "multiplier on every pool's depth (inf: no impact)",
    ),
    "--arbitrage-half-life": (
        "arbitrage_half_life_s",
        float,
        "seconds for arbitrage to take half of what liquidators sold out of a pool (inf: never)",
    ),
    "--reference-impact-share": (
        "reference_impact_share",
        float,
        "share of the volume sold that moves the wider market's reference price, in [0, 1]",
    ),
    "--reference-impact-coefficient": (
        "reference_impact_coefficient",
        float,
        "Y of the square-root law dP/P = Y sigma_d sqrt(Q / V_d)",
    ),
    "--clock-seconds": (
        "clock_seconds",
        float,
        "the engine's clock: split longer scenario steps into ticks of at most this (3600 "
        "for daily scenarios; inf: the scenario's steps)",
    ),
    "--gas-units": ("gas_units", float, "gas one liquidation (call and swap) costs"),
    "--round-limit": ("round_limit", int, "most liquidation rounds (blocks) per step, a guard"),
    "--liquidator-sizing": (
        "liquidator_sizing",
        str,
        "optimal (profit-maximising debtToCover) or max (the largest allowed, all or nothing)",
    ),
}


def add_engine_options(p: argparse.ArgumentParser) -> None:
    """The cascade engine's knobs and the oracle override (recorded in summary.json's
    ``engine`` and ``oracle_override``); defaults are ``EngineConfig``'s."""
    from simulator.cascade import EngineConfig

    defaults = EngineConfig()
    group = p.add_argument_group("engine (defaults: simulator.cascade.EngineConfig)")
    for flag, (field, kind, text) in ENGINE_OPTIONS.items():
        group.add_argument(
            flag,
            type=kind,
            default=None,
            metavar=field.split("_")[-1].upper() if kind is not str else "HOW",
            help=f"{text} (default {getattr(defaults, field)})",
        )
    group.add_argument(
        "--oracle-deviation",
        type=float,
        default=None,
        metavar="FRACTION",
        help="one deviation threshold for every asset's feed (default: each asset's own)",
    )
    group.add_argument(
        "--oracle-heartbeat",
        type=float,
        default=None,
        metavar="SECONDS",
        help="one heartbeat for every asset's feed (default: each asset's own)",
    )


def engine_config(args: argparse.Namespace) -> Any:
    """``EngineConfig`` from the engine options; ``InputError`` naming a bad option."""
    from simulator.cascade import EngineConfig
    from simulator.errors import InputError

    changes = {"accrual": not getattr(args, "no_accrual", False)}
    for flag, (field, _, _) in ENGINE_OPTIONS.items():
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            changes[field] = value
    try:
        return EngineConfig(**changes)
    except InputError as exc:
        flag = next(
            (f for f, (fd, _, _) in ENGINE_OPTIONS.items() if f"EngineConfig.{fd} " in str(exc)),
            None,
        )
        raise InputError(f"{flag}: {exc}" if flag else str(exc)) from None


def engine_argv(args: argparse.Namespace) -> list[str]:
    """The engine options given, as command-line words (for summary.json's command)."""
    out: list[str] = []
    for flag in [*ENGINE_OPTIONS, "--oracle-deviation", "--oracle-heartbeat"]:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            out += [flag, str(value)]
    return out


def with_oracle_override(scenario: Any, args: argparse.Namespace) -> Any:
    """The scenario with ``--oracle-deviation`` / ``--oracle-heartbeat`` for every feed."""
    from simulator.errors import InputError

    change: dict[str, float] = {}
    if args.oracle_deviation is not None:
        if not 0.0 <= args.oracle_deviation < 1.0:
            raise InputError(
                f"--oracle-deviation {args.oracle_deviation}: expected a fraction in [0, 1)"
            )
        change["deviation"] = args.oracle_deviation
    if args.oracle_heartbeat is not None:
        if not args.oracle_heartbeat > 0.0:
            raise InputError(f"--oracle-heartbeat {args.oracle_heartbeat}: expected seconds > 0")
        change["heartbeat_s"] = args.oracle_heartbeat
    if not change:
        return scenario
    return dataclasses.replace(scenario, oracle=dataclasses.replace(scenario.oracle, **change))


#: Seconds to wait for a Dask scheduler given by --scheduler before giving up.
SCHEDULER_TIMEOUT_S = 10


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _print_table(result: Any, out_dir: Path) -> None:
    from simulator.simulation import CI_LEVEL

    lines = [
        f"scenario {result.scenario}: {result.n_paths:,} paths, seed {result.seed}, "
        f"{result.runtime_s:.1f} s",
        "",
        f"{'level':>7}  {'VaR':>14}  {'VaR ' + format(CI_LEVEL, '.0%') + ' CI':>31}  "
        f"{'ES':>14}  {'ES ' + format(CI_LEVEL, '.0%') + ' CI':>31}",
    ]
    for r in result.risk_table:
        lines.append(
            f"{r.alpha:>7.1%}  {_usd(r.var_usd):>14}  "
            f"{'[' + _usd(r.var_low_usd) + ', ' + _usd(r.var_high_usd) + ']':>31}  "
            f"{_usd(r.es_usd):>14}  "
            f"{'[' + _usd(r.es_low_usd) + ', ' + _usd(r.es_high_usd) + ']':>31}"
        )
    q = result.liquidated_quantiles
    comet = result.comet_summary()
    lines += [
        "",
        f"{'absorbed debt' if comet else 'liquidated volume'} per path: mean "
        f"{_usd(q['mean'])}, median {_usd(q['q0.5'])}, "
        f"99% {_usd(q['q0.99'])}, max {_usd(q['max'])}; "
        f"{result.n_liquidations.mean():,.1f} {'absorptions' if comet else 'liquidations'} "
        "per path",
    ]
    if comet:
        dd = comet["drawdown"]
        lines += [
            f"Compound V3: shortfall is the reserves below zero; reserves "
            f"{float(comet['reserves'] or 0.0):,.0f} {comet['base_symbol'] or 'base'} "
            f"(target {float(comet['target_reserves'] or 0.0):,.0f}); "
            f"P(reserves < 0) {comet['p_reserves_below_zero']:.2%}",
            f"reserve drawdown at {dd['alpha']:.1%}: VaR {_usd(dd['var_usd'])}, ES "
            f"{_usd(dd['es_usd'])} [{_usd(dd['es_ci_usd'][0])}, {_usd(dd['es_ci_usd'][1])}]; "
            "absorbed collateral unsold at the horizon (not in the reserves): mean "
            f"{_usd(comet.get('unsold_collateral_usd_mean', 0.0))}",
        ]
    if result.rounds_limit_hits_total:
        lines.append(
            f"round limit ({result.config.round_limit}) reached in "
            f"{result.rounds_limit_hits_total:,} path-steps; consider a higher limit"
        )
    top = result.top_accounts(5)
    if len(top):
        lines += ["", f"top accounts by ES contribution (alpha {result.alpha:g}):"]
        for row in top.itertuples():
            lines.append(f"  {row.account}  {_usd(row.es_contribution_usd):>14}")
    assets = result.asset_table()
    assets = assets[assets["es_contribution_usd"] > 0].head(5)
    if len(assets):
        lines += ["", "top assets (debt reserves) by ES contribution:"]
        for row in assets.itertuples():
            lines.append(f"  {row.symbol:<10}  {_usd(row.es_contribution_usd):>14}")
    lines += ["", f"results written to {out_dir}"]
    print("\n".join(lines))


def _dask_client(scheduler: str | None) -> Any:
    import logging

    import dask

    if not logging.getLogger().isEnabledFor(logging.INFO):  # Dask's INFO chatter only with -v
        dask.config.set({"logging.distributed": "warning"})
    try:
        from distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        from simulator.errors import InputError

        raise InputError(
            "--executor dask needs dask[distributed]; pip install 'dask[distributed]'"
        ) from None
    if scheduler:
        try:
            return Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError, ValueError) as exc:
            from simulator.errors import InputError

            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(
                f"--scheduler {scheduler}: cannot connect to a Dask scheduler there ({reason}); "
                "check the address (tcp://HOST:PORT) and that the scheduler runs"
            ) from None
    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    return Client(cluster)


def _conditioned(scenario: Any, snapshot: Any, prices: list[str]) -> Any:
    """The scenario conditioned on ``prices`` before the snapshot's block date (UTC)."""
    import datetime as dt

    from simulator.backtest import condition_on_prices, read_prices

    as_of = dt.datetime.fromtimestamp(int(snapshot.meta["timestamp"]), tz=dt.UTC).date()
    return condition_on_prices(scenario, read_prices(prices), as_of)


def _conditioning(scenario: Any) -> dict[str, Any]:
    """``{"conditioned_on": ...}`` for a market-conditional scenario, else ``{}``."""
    cond = getattr(getattr(scenario, "spec", None), "conditional", None)
    if cond is None:
        return {}
    return {"conditioned_on": cond.conditioned_on or "long-run volatility (no --prices)"}


def check_run_options(args: argparse.Namespace) -> None:
    """The options ``simulate`` and ``sweep`` share: ``InputError`` naming a bad one."""
    from simulator.errors import InputError

    if not 0.0 < args.alpha < 1.0:
        raise InputError(f"--alpha {args.alpha}: expected a confidence level in (0, 1)")
    if args.chunk_paths < 1:
        raise InputError(f"--chunk-paths {args.chunk_paths}: expected >= 1")
    if args.scheduler and args.executor != "dask":
        raise InputError("--scheduler only applies with --executor dask")


def load_run_inputs(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(snapshot, scenario)`` for ``simulate`` and ``sweep``: the snapshot (Aave V3 or
    Compound V3) and the scenario, conditioned on ``--prices``."""
    from simulator.scenarios import load_scenario
    from simulator.snapshot import MarketSnapshot

    snapshot = MarketSnapshot.load(args.snapshot)
    scenario = load_scenario(args.scenario)
    if args.prices:
        scenario = _conditioned(scenario, snapshot, args.prices)
    return snapshot, scenario


def run(args: argparse.Namespace) -> int:
    from keeper.progress import progress
    from simulator.errors import InputError
    from simulator.results import check_results_target, provenance, save_results, summary_dict
    from simulator.simulation import simulate

    if args.paths is not None and args.paths < 1:
        raise InputError(f"--paths {args.paths}: expected a positive number of paths")
    check_run_options(args)
    check_results_target(args.out)  # before the run: a bad --out fails at once
    snapshot, scenario = load_run_inputs(args)
    config = engine_config(args)
    scenario = with_oracle_override(scenario, args)
    n_paths = args.paths if args.paths is not None else scenario.default_paths
    client = _dask_client(args.scheduler) if args.executor == "dask" else None
    try:
        with progress(f"simulate {scenario.name}", total=n_paths) as bar:
            result = simulate(
                snapshot,
                scenario,
                n_paths,
                seed=args.seed,
                alpha=args.alpha,
                config=config,
                executor=client,
                chunk_paths=args.chunk_paths,
                progress=bar.advance,
                record_states=True,  # states.parquet, for shortfall keeper --stress-from
            )
    finally:
        if client is not None:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None and args.scheduler is None:
                cluster.close()
    argv = ["shortfall", "simulate", "--snapshot", str(args.snapshot), "--scenario"]
    argv += [str(args.scenario), "--paths", str(n_paths), "--seed", str(args.seed)]
    argv += ["--alpha", str(args.alpha), "--out", str(args.out)]
    if args.prices:
        argv += ["--prices", *args.prices]
    if args.no_accrual:
        argv += ["--no-accrual"]
    argv += engine_argv(args)
    result = dataclasses.replace(
        result,
        extra={
            "snapshot_dir": str(Path(args.snapshot).resolve()),
            "command": shlex.join(argv),
            "executor": args.executor,
            "chunk_paths": args.chunk_paths,
            **provenance(args.snapshot, scenario),
            **_conditioning(scenario),
            "oracle_override": {
                k: v
                for k, v in (
                    ("deviation", args.oracle_deviation),
                    ("heartbeat_s", args.oracle_heartbeat),
                )
                if v is not None
            },
        },
    )
    out_dir = save_results(result, args.out)
    if args.json:
        json.dump(summary_dict(result), sys.stdout, indent=2)
        print()
    else:
        _print_table(result, out_dir)
    return 0
