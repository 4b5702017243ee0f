"""``shortfall demo``: the whole product end to end on a local devnet, in a few minutes.

1. start anvil, deploy our Aave-V3-compatible market (or, with ``protocol="compound-v3"``,
   our Comet-compatible one) and seed a book of accounts;
2. pull a snapshot of it at one block;
3. simulate the default Monte Carlo scenario and every named historical stress;
4. write the risk report (HTML, plus the same content as JSON);
5. run the keeper over a scripted crash: the oracle price of the volatile assets steps down
   block by block, and after each step the keeper processes the new block once; the accounts
   it flags are printed;
6. stop everything, anvil included, also on an error or Ctrl-C.

Everything lands in one output directory (``./demo-out`` by default); ``demo.json`` there
records what ran, how long each stage took and where each output is.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from keeper.redact import redact_text
from simulator.atomic import atomic_write_json

__all__ = ["COMET_CRASH", "DEFAULT_CRASH", "CrashStep", "DemoResult", "DemoSettings", "run_demo"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CrashStep:
    """One block of the scripted crash: every listed asset's oracle price times its factor."""

    factors: dict[str, float]
    """Symbol -> price relative to the snapshot price (0.85 = down 15%)."""


#: The scripted crash: ETH-family and BTC fall together, LINK harder, over four blocks.
DEFAULT_CRASH: tuple[CrashStep, ...] = (
    CrashStep({"WETH": 0.92, "wstETH": 0.92, "WBTC": 0.95, "LINK": 0.90}),
    CrashStep({"WETH": 0.84, "wstETH": 0.83, "WBTC": 0.89, "LINK": 0.78}),
    CrashStep({"WETH": 0.75, "wstETH": 0.74, "WBTC": 0.82, "LINK": 0.66}),
    CrashStep({"WETH": 0.66, "wstETH": 0.64, "WBTC": 0.76, "LINK": 0.55}),
)

#: The same crash for the Comet devnet, whose collateral also holds COMP (falling like LINK).
COMET_CRASH: tuple[CrashStep, ...] = tuple(
    CrashStep({**step.factors, "COMP": step.factors["LINK"]}) for step in DEFAULT_CRASH
)


@dataclass(frozen=True, slots=True)
class DemoSettings:
    """What the demo runs; the defaults are the full-size demo ``make demo`` shows."""

    out: Path = Path("demo-out")
    """Output directory (created; the demo's own files in it are replaced)."""
    accounts: int = 2000
    """Accounts seeded on the devnet."""
    paths: int = 10_000
    """Monte Carlo paths of the default scenario (the stresses use their own path counts)."""
    devnet_seed: int = 7
    """Seed of the devnet book."""
    sim_seed: int = 1
    """Seed of the simulations."""
    alpha: float = 0.975
    """ES confidence level."""
    stresses: tuple[str, ...] | None = None
    """Named stresses to run; ``None`` for every named historical stress in the library
    (the built-in ``stress`` scenarios but the ``hypothetical-*`` ones)."""
    crash: tuple[CrashStep, ...] | None = None
    """The scripted crash the keeper watches; ``None``: ``DEFAULT_CRASH`` (Aave) or
    ``COMET_CRASH`` (Compound V3)."""
    protocol: str = "aave-v3"
    """The devnet market: ``aave-v3`` or ``compound-v3`` (our Comet-compatible market)."""
    port: int | None = None
    """anvil's port; ``None`` for a free one."""


@dataclass(slots=True)
class DemoResult:
    """Where the outputs are, what the keeper flagged and how long each stage took."""

    out: Path
    deployment: Path | None = None
    snapshot: Path | None = None
    results: dict[str, Path] = field(default_factory=dict)
    report_html: Path | None = None
    report_json: Path | None = None
    keeper_db: Path | None = None
    anvil_pid: int | None = None
    flagged: list[dict[str, Any]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return json.loads(json.dumps(data, default=str))  # type: ignore[no-any-return]


Say = Callable[[str], None]


def _printer(stream: TextIO) -> Say:
    def say(line: str) -> None:
        print(line, file=stream, flush=True)

    return say


@contextlib.contextmanager
def _stage(result: DemoResult, name: str, say: Say) -> Iterator[None]:
    started = time.perf_counter()
    say(f"==> {name}")
    ok = False
    try:
        yield
        ok = True
    finally:
        elapsed = time.perf_counter() - started
        result.timings_s[name] = round(elapsed, 3)
        say(f"    {name}: {elapsed:.1f} s" + ("" if ok else " (failed)"))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so the ``finally`` that stops anvil runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_demo(settings: DemoSettings = DemoSettings(), stream: TextIO | None = None) -> DemoResult:
    """Run the demo; returns where everything is. anvil is stopped whatever happens."""
    say = _printer(stream or sys.stdout)
    out = settings.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult(out=out)
    started = time.perf_counter()
    with _sigterm_as_interrupt():
        running: list[Any] = []  # the devnet, as soon as it exists (an interrupt may come next)
        try:
            _start_devnet(settings, result, say, running)
            _pull(settings, result, say)
            _simulate_all(settings, result, say)
            _report(settings, result, say)
            _crash_and_keeper(settings, running[0], result, say)
        finally:
            if running:
                with _stage(result, "stop devnet", say):
                    running[0].stop()
            result.timings_s["total"] = round(time.perf_counter() - started, 3)
            atomic_write_json(out / "demo.json", result.to_json())
    say(f"demo finished in {result.timings_s['total']:.1f} s; outputs in {out}")
    if result.report_html is not None:
        say(f"report: {result.report_html}")
    return result


# ---------------------------------------------------------------- stages


def _start_devnet(settings: DemoSettings, result: DemoResult, say: Say, running: list[Any]) -> None:
    from keeper.devnet.deploy import write_deployment
    from keeper.devnet.launch import launch

    with _stage(result, "devnet", say):
        say(
            f"    starting anvil, deploying the {settings.protocol} market, seeding "
            f"{settings.accounts:,} accounts"
        )
        devnet = launch(
            accounts=settings.accounts,
            seed=settings.devnet_seed,
            port=settings.port,
            protocol=settings.protocol,
        )
        running.append(devnet)  # launch stops its own node if it fails part-way
        path = result.out / "deployment.json"
        write_deployment(path, devnet.deployment)
        result.deployment = path
        result.anvil_pid = devnet.anvil.pid if devnet.anvil is not None else None
        say(f"    devnet at {redact_text(devnet.rpc_url)}, chain {devnet.deployment['chain_id']}")


def _pull(settings: DemoSettings, result: DemoResult, say: Say) -> None:
    from keeper.pull import pull, settings_from_deployment, summarize

    assert result.deployment is not None
    with _stage(result, "pull", say):
        target = result.out / "snapshot"
        cache = result.out / "discovery-cache.json"
        cache.unlink(missing_ok=True)  # from an earlier demo's chain, which is gone
        pull_settings = settings_from_deployment(result.deployment, cache_path=cache)
        snapshot = asyncio.run(pull(pull_settings, out=target))
        facts = summarize(snapshot)
        result.snapshot = target
        say(
            f"    block {facts['block_number']}: {facts['accounts']:,} accounts, "
            f"${facts['collateral_usd']:,.0f} collateral, ${facts['debt_usd']:,.0f} debt"
        )


def _stress_names(settings: DemoSettings) -> list[str]:
    if settings.stresses is not None:
        return list(settings.stresses)
    from simulator.scenarios import DEFAULT_SCENARIO, list_scenarios

    # Named historical events; the built-in hypothetical shocks are left to --stress NAME.
    return [
        i.name
        for i in list_scenarios()
        if i.kind == "stress"
        and i.name != DEFAULT_SCENARIO
        and not i.name.startswith("hypothetical-")
    ]


def _simulate_all(settings: DemoSettings, result: DemoResult, say: Say) -> None:
    import dataclasses
    import shlex

    from keeper.progress import progress
    from simulator.results import provenance, save_results
    from simulator.scenarios import DEFAULT_SCENARIO, load_scenario
    from simulator.simulation import simulate
    from simulator.snapshot import MarketSnapshot

    assert result.snapshot is not None
    snapshot = MarketSnapshot.load(result.snapshot)
    names = [DEFAULT_SCENARIO, *(n for n in _stress_names(settings) if n != DEFAULT_SCENARIO)]
    with _stage(result, "simulate", say):
        for name in names:
            started = time.perf_counter()
            scenario = load_scenario(name)
            n_paths = settings.paths if name == DEFAULT_SCENARIO else scenario.default_paths
            with progress(f"simulate {name}", total=n_paths) as bar:
                sim = simulate(
                    snapshot,
                    scenario,
                    n_paths,
                    seed=settings.sim_seed,
                    alpha=settings.alpha,
                    progress=bar.advance,
                )
            target = result.out / "results" / name
            argv = ["shortfall", "simulate", "--snapshot", str(result.snapshot)]
            argv += ["--scenario", name, "--paths", str(n_paths), "--seed", str(settings.sim_seed)]
            argv += ["--alpha", str(settings.alpha), "--out", str(target)]
            sim = dataclasses.replace(
                sim,
                extra={
                    "snapshot_dir": str(result.snapshot),
                    "command": shlex.join(argv),
                    "executor": "local",
                    "run_by": "shortfall demo",
                    **provenance(result.snapshot, scenario),
                },
            )
            result.results[name] = save_results(sim, target)
            share = float((sim.shortfall_usd > 0).mean())
            say(
                f"    {name:<24} {n_paths:>6,} paths  VaR {_usd(sim.var_usd):>14}  "
                f"ES {_usd(sim.es_usd):>14}  P(shortfall>0) {100 * share:5.1f}%  "
                f"({time.perf_counter() - started:.1f} s)"
            )


def _usd(x: float) -> str:
    """Whole dollars, sign first (``-$1,234``); a positive amount under half a dollar is
    ``<$1``, not ``$0`` (a dust shortfall still counts in P(shortfall > 0))."""
    if 0.0 < x < 0.5:
        return "<$1"
    return f"-${-x:,.0f}" if x <= -0.5 else f"${max(x, 0.0):,.0f}"


def _report(settings: DemoSettings, result: DemoResult, say: Say) -> None:
    from keeper.cli.report import write_report
    from simulator.report import build_report, render_html, render_json

    with _stage(result, "report", say):
        dirs = list(result.results.values())
        report = build_report(dirs, command="shortfall demo")
        html_path = result.out / "report.html"
        json_path = result.out / "report.json"
        write_report(html_path, render_html(report))
        write_report(json_path, render_json(report))
        result.report_html, result.report_json = html_path, json_path
        say(f"    wrote {html_path.name} and {json_path.name} ({len(dirs)} scenarios)")


def _base_prices(deployment: dict[str, Any]) -> dict[str, float]:
    """Each reserve's oracle price at deployment, USD."""
    from keeper.devnet.comet import COMET_MARKET
    from keeper.devnet.market import MARKET

    if deployment.get("protocol") == "compound-v3":
        prices = {c.symbol: float(c.price_usd) for c in COMET_MARKET.collateral}
    else:
        prices = {spec.symbol: float(spec.price_usd) for spec in MARKET}
    for symbol, entry in (deployment.get("reserves") or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("price_usd"), int | float):
            prices[symbol] = float(entry["price_usd"])
    return prices


def _crash_and_keeper(settings: DemoSettings, devnet: Any, result: DemoResult, say: Say) -> None:
    with _stage(result, "keeper over a scripted crash", say):
        db = result.out / "keeper.sqlite"
        events = result.out / "keeper-events.jsonl"
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), events):
            stale.unlink(missing_ok=True)  # the demo's own files from an earlier run
        result.keeper_db = db
        asyncio.run(_watch_crash(settings, devnet, result, db, events, say))
        from keeper.store import Store

        store = Store(db)
        try:
            flags = store.dump_flags()
        finally:
            store.close()
        result.flagged = [f for f in flags if f["status"] == "open"]
        _print_flags(result.flagged, say)


async def _watch_crash(
    settings: DemoSettings, devnet: Any, result: DemoResult, db: Path, events: Path, say: Say
) -> None:
    from keeper.daemon import Keeper, KeeperSettings
    from keeper.devnet.deploy import set_price
    from keeper.pull import settings_from_deployment
    from keeper.sinks import JsonLinesSink
    from simulator.stress import SEVERITIES

    assert result.deployment is not None
    market = settings_from_deployment(result.deployment)
    mc = result.results.get("default")
    keeper_settings = KeeperSettings(
        rpc_url=market.rpc_url,
        provider=market.provider,
        protocol=market.protocol,
        db_path=db,
        expected_chain_id=market.expected_chain_id,
        multicall3=market.multicall3,
        alpha=settings.alpha,
        stress_from=mc,
        metrics_port=None,
        once=True,
    )
    sink = JsonLinesSink(events)
    sink.name = "events-file"
    keeper = Keeper(keeper_settings, sinks=[sink])
    deployment = devnet.deployment
    base = _base_prices(deployment)

    async def process(label: str) -> None:
        await keeper.iterate()
        await keeper.publisher.flush()
        open_flags = [f for f in keeper.flags.values() if f.status == "open"]
        by_sev: dict[str, int] = {}
        for f in open_flags:
            by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
        detail = ", ".join(f"{by_sev[sev]} {sev}" for sev in reversed(SEVERITIES) if sev in by_sev)
        block = keeper.last.number if keeper.last is not None else "?"
        say(f"    {label}: block {block}, {len(open_flags)} accounts flagged ({detail or 'none'})")

    try:
        await keeper.start()
        await process("before the crash")
        crash = settings.crash
        if crash is None:
            crash = COMET_CRASH if settings.protocol == "compound-v3" else DEFAULT_CRASH
        for i, step in enumerate(crash, start=1):
            moves = []
            for symbol, factor in step.factors.items():
                if symbol not in base:
                    continue
                price = base[symbol] * factor
                await asyncio.to_thread(set_price, deployment, symbol, price, devnet.rpc)
                moves.append(f"{symbol} {100 * (factor - 1):+.0f}%")
            await process(f"crash step {i} ({', '.join(moves)})")
    finally:
        await keeper.close()


def _print_flags(flags: list[dict[str, Any]], say: Say, limit: int = 15) -> None:
    if not flags:
        say("    the keeper flagged no account")
        return
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    rows = sorted(flags, key=lambda f: (order.get(f["severity"], 9), -f["es_usd"]))
    say(f"    {len(flags)} accounts flagged (stressed ES above posted margin):")
    say(
        "    (margin: equity, collateral value minus debt, USD; below $0 the account is under water)"
    )
    say(f"    {'account':<42}  {'severity':<8}  {'stressed ES':>14}  {'margin':>14}  since")
    for f in rows[:limit]:
        say(
            f"    {f['account']:<42}  {f['severity']:<8}  {_usd(f['es_usd']):>14}  "
            f"{_usd(f['margin_usd']):>14}  block {f['first_block']}"
        )
    if len(rows) > limit:
        say(f"    ... and {len(rows) - limit} more (keeper.sqlite, keeper-events.jsonl)")
