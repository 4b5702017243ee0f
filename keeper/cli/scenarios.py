"""``shortfall scenarios list | show NAME``: the built-in scenario library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import textwrap
from typing import Any

__all__ = ["register", "run_list", "run_show", "scenario_dict"]

EXAMPLES = """\
examples:
  shortfall scenarios list                       name, kind, horizon and description of each
  shortfall scenarios list --json                the same for scripts
  shortfall scenarios show black-thursday-2020   parameters, sources and worst move per factor
  shortfall scenarios show my-stress.toml        validate and describe your own file
  shortfall scenarios show default:stressed      NAME:REGIME picks a Monte Carlo calibration
                                                 (works for simulate --scenario too)
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from keeper.cli import HelpFormatter

    p = subparsers.add_parser(
        "scenarios",
        help="list and describe the stress and Monte Carlo scenarios",
        description="The scenario library: TOML files shipped with Shortfall (historical "
        "stresses with cited magnitudes, hypothetical shocks, and the default one-day Monte "
        "Carlo). `show` also validates a scenario file of your own.",
        epilog=EXAMPLES,
        formatter_class=HelpFormatter,
    )
    sub = p.add_subparsers(dest="scenarios_command", metavar="ACTION", required=True)
    pl = sub.add_parser(
        "list",
        help="one line per built-in scenario",
        description="List the built-in scenarios: name, kind, horizon and description.",
        epilog="example:\n  shortfall scenarios list --json | jq '.[].name'",
        formatter_class=HelpFormatter,
    )
    pl.add_argument("--json", action="store_true", help="machine-readable output")
    pl.set_defaults(func=run_list)
    ps = sub.add_parser(
        "show",
        help="parameters, sources and worst moves of one scenario",
        description="Describe one scenario: parameters, oracle and gas rules, sources, and "
        "for deterministic stresses the lowest and highest multiplier of every factor or "
        "asset they move. NAME is a built-in name or a path to a .toml file, optionally "
        "with :REGIME (default:stressed) to pick a Monte Carlo calibration regime.",
        epilog="example:\n  shortfall scenarios show usdc-depeg-2023",
        formatter_class=HelpFormatter,
    )
    ps.add_argument("name", metavar="NAME", help="built-in scenario name or path to a TOML file")
    ps.add_argument("--json", action="store_true", help="machine-readable output")
    ps.set_defaults(func=run_show)


def _horizon(hours: float) -> str:
    if hours >= 48 and hours % 24 == 0:
        return f"{hours / 24:g} d"
    return f"{hours:g} h"


def run_list(args: argparse.Namespace) -> int:
    from simulator.scenarios import list_scenarios

    infos = list_scenarios()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "kind": i.kind,
                        "title": i.title,
                        "description": i.description,
                        "horizon_hours": i.horizon_hours,
                        "n_steps": i.n_steps,
                        "step_seconds": i.step_seconds,
                        "default_paths": i.default_paths,
                    }
                    for i in infos
                ],
                indent=2,
            )
        )
        return 0
    rows = [("NAME", "KIND", "HORIZON", "TITLE")] + [
        (i.name, i.kind, f"{_horizon(i.horizon_hours)} / {i.n_steps} steps", i.title) for i in infos
    ]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    for r in rows:
        print("  ".join(r[c].ljust(widths[c]) for c in range(3)) + "  " + r[3])
    return 0


def scenario_dict(name: str) -> dict[str, Any]:
    """Everything ``show`` prints, as JSON-ready data."""
    from simulator.scenarios import load_scenario
    from simulator.scenarios.model import HistoricalSpec, MonteCarloSpec, StressSpec

    s = load_scenario(name)
    out: dict[str, Any] = {
        "name": s.name,
        "kind": s.kind,
        "title": s.title,
        "description": s.description,
        "file": s.file,
        "horizon_hours": s.horizon_hours,
        "n_steps": s.n_steps,
        "step_seconds": s.step_seconds,
        "default_paths": s.default_paths,
        "seed": s.seed,
        "oracle": {
            "deviation": s.oracle.deviation,
            "heartbeat_s": s.oracle.heartbeat_s,
            "delay_s": s.oracle.delay_s,
        },
        "markets": {
            symbol: {k: v for k, v in dataclasses.asdict(spec).items() if v is not None}
            for symbol, spec in s.markets
        },
        "gas": {
            "base_gwei": s.gas.base_gwei,
            "spike_gwei": s.gas.spike_gwei,
            "full_drawdown": s.gas.full_drawdown,
            "reference": s.gas.reference,
            "knots": [list(k) for k in s.gas.knots],
        },
        "proxies": {k: v if isinstance(v, str) else list(v) for k, v in s.proxies},
        "source": list(s.source),
        "notes": s.notes,
    }
    spec = s.spec
    if isinstance(spec, StressSpec):
        out["worst_moves"] = {k: {"min": lo, "max": hi} for k, (lo, hi) in s.worst_moves().items()}
        out["unlisted"] = spec.unlisted or "flat"
    elif isinstance(spec, MonteCarloSpec):
        out["factors"] = list(spec.factors)
        out["innovations"] = spec.innovations
        out["mixing"] = spec.mixing
        out["regime"] = spec.regime
        out["calibration"] = spec.calibration
        out["regimes"] = {
            r.name: {
                "as_of": r.as_of.isoformat() if r.as_of else None,
                "window": list(r.window),
                "dof": r.dof,
                "vol_daily": dict(zip(spec.factors, r.vol_daily, strict=True)),
                "corr": [list(row) for row in r.corr],
                "notes": r.notes,
            }
            for r in spec.regimes
        }
        if spec.jumps is not None:
            out["jumps"] = {
                "intensity_per_day": spec.jumps.intensity_per_day,
                "mean": spec.jumps.mean,
                "std": spec.jumps.std,
                "beta": list(spec.jumps.beta),
            }
    elif isinstance(spec, HistoricalSpec):
        out.update(
            method=spec.method,
            csv=spec.csv,
            as_of=spec.as_of.isoformat(),
            factors=list(spec.factors),
            data_first=spec.first.isoformat(),
            data_last=spec.last.isoformat(),
            observations=int(spec.returns.shape[0]),
            block_days=spec.block_days,
        )
    return out


def run_show(args: argparse.Namespace) -> int:
    d = scenario_dict(args.name)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    wrap = textwrap.TextWrapper(width=96, initial_indent="  ", subsequent_indent="  ")
    print(f"{d['name']}: {d['title']}")
    print(
        f"  kind {d['kind']}, horizon {_horizon(d['horizon_hours'])} in {d['n_steps']} steps "
        f"of {d['step_seconds']:g} s, default paths {d['default_paths']}, seed {d['seed']}"
    )
    print(f"  file {d['file']}")
    if d["description"]:
        print(wrap.fill(d["description"]))
    o, g = d["oracle"], d["gas"]
    deviation = "each asset's own" if o["deviation"] is None else f"{o['deviation']:.2%}"
    heartbeat = "each asset's own" if o["heartbeat_s"] is None else f"{o['heartbeat_s']:g} s"
    print(f"oracle: deviation {deviation}, heartbeat {heartbeat}, delay {o['delay_s']:g} s")
    for symbol, spec in d["markets"].items():
        print(f"  {symbol}: " + ", ".join(f"{k} {v}" for k, v in spec.items()))
    if g["knots"]:
        print("gas: " + ", ".join(f"{v:g} gwei at {t:g} h" for t, v in g["knots"]))
    else:
        print(
            f"gas: {g['base_gwei']:g} gwei + up to {g['spike_gwei']:g} gwei as "
            f"{g['reference']} falls {g['full_drawdown']:.0%} from its high"
        )
    if d["proxies"]:
        print("proxies: " + ", ".join(f"{k} = {v}" for k, v in d["proxies"].items()))
    if "worst_moves" in d:
        print(f"worst moves (unlisted volatile factors: {d['unlisted']}):")
        for k, m in d["worst_moves"].items():
            print(
                f"  {k:<8} low {m['min']:.4f} ({m['min'] - 1:+.1%})   "
                f"high {m['max']:.4f} ({m['max'] - 1:+.1%})"
            )
    if "regimes" in d:
        print(
            f"innovations {d['innovations']} (mixing per {d['mixing']}), "
            f"active regime {d['regime']!r}"
        )
        for name, r in d["regimes"].items():
            print(
                f"regime {name}: as of {r['as_of']}, window {' .. '.join(r['window'])}, "
                f"dof {r['dof']:g}"
            )
            print(
                "  "
                + "  ".join(
                    f"{f} {v:.2%}/d ({v * math.sqrt(365):.0%}/y)" for f, v in r["vol_daily"].items()
                )
            )
            if r["notes"]:
                print(wrap.fill(r["notes"]))
        if "jumps" in d:
            print(f"jumps: {d['jumps']}")
    if "method" in d:
        print(
            f"{d['method']} from {d['csv']}: {', '.join(d['factors'])}; data "
            f"{d['data_first']} .. {d['data_last']} ({d['observations']} returns, before "
            f"{d['as_of']}), blocks of {d['block_days']}"
        )
    if d["source"]:
        print("sources:")
        for src in d["source"]:
            print(textwrap.fill(src, width=96, initial_indent="  - ", subsequent_indent="    "))
    if d["notes"]:
        print("notes:")
        print(wrap.fill(d["notes"]))
    return 0
