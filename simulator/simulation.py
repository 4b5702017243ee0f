"""``simulate``: a snapshot and a scenario in, VaR / ES of collateral shortfall out.

The paths ``[0, n_paths)`` are cut into chunks of ``chunk_paths``; each chunk is one call of
``simulate_chunk``, a pure top-level function of (book, scenario, n_paths, seed, start,
stop, config), so a Dask worker can run it. The scenario draws rows ``[start, stop)``
bit-identically to the same rows of the whole run, and the engine treats each path on its
own, so results do not depend on the chunk size or on the number of workers.

**Per-account contributions.** ES tail weights need every path's loss first, so each chunk
returns its per-account shortfalls as sparse (path, account, USD) triplets: only accounts
with a non-zero shortfall on that path, a few per path in a one-day scenario, a few hundred
in a stress month (never a dense paths x accounts array). Once all chunks are in, the tail
weights ``t`` of ``simulator.risk.tail_weights`` give the Euler contributions
``contribution[a] = sum over triplets of t[path] x shortfall`` (they add up to ES), and
``t @ shortfall_by_asset`` the per-asset ones (an account's shortfall is split over its debt
reserves: a burned deficit to its reserve, a horizon shortfall pro rata of debt value).

**Timeline.** The median-shortfall path, the VaR path and the worst path are re-run alone
with tracing on to record per-step market prices, cumulative liquidated volume and the
mark-to-market shortfall, for the report's cascade plots.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulator import __version__, risk
from simulator.cascade import CascadeOutput, EngineConfig, run_cascade
from simulator.errors import ExecutorError, InputError, NumericalWarning, ShortfallError
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book, MarketSnapshot

__all__ = [
    "DEFAULT_CHUNK_PATHS",
    "DEFAULT_PATHS",
    "LIQUIDATED_QUANTILES",
    "RISK_ALPHAS",
    "ChunkResult",
    "FixedPaths",
    "RiskRow",
    "ScenarioSource",
    "SimulationResult",
    "simulate",
    "simulate_chunk",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Paths when neither the caller nor the scenario says.
DEFAULT_PATHS = 10_000
#: Paths per chunk (one engine call; a Dask task).
DEFAULT_CHUNK_PATHS = 1000
#: Confidence levels of the VaR / ES table.
RISK_ALPHAS: tuple[float, ...] = (0.95, 0.975, 0.99)
#: Quantiles of the liquidated volume reported.
LIQUIDATED_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.975, 0.99)
#: Bootstrap resamples for the VaR / ES intervals, and their coverage.
N_BOOT = 1000
CI_LEVEL = 0.95


class ScenarioSource(Protocol):
    """What ``simulate`` needs of a scenario (``simulator.scenarios.Scenario`` is one)."""

    @property
    def name(self) -> str: ...

    def paths(
        self,
        symbols: Sequence[str],
        n_paths: int,
        seed: int,
        *,
        start: int = 0,
        stop: int | None = None,
    ) -> PricePaths: ...


@dataclass(frozen=True, slots=True)
class FixedPaths:
    """Ready-made ``PricePaths`` as a scenario (tests, benchmarks, user-built paths).

    ``paths`` returns rows ``[start, stop)``; the seed is ignored.
    """

    price_paths: PricePaths

    @property
    def name(self) -> str:
        return self.price_paths.scenario

    @property
    def default_paths(self) -> int:
        return self.price_paths.n_paths

    def paths(
        self,
        symbols: Sequence[str],
        n_paths: int,
        seed: int,
        *,
        start: int = 0,
        stop: int | None = None,
    ) -> PricePaths:
        pp = self.price_paths
        stop = n_paths if stop is None else stop
        if n_paths > pp.n_paths or not 0 <= start <= stop <= n_paths:
            raise InputError(
                f"rows [{start}, {stop}) of {n_paths} paths requested; the given price paths "
                f"hold {pp.n_paths}"
            )
        return PricePaths(
            scenario=pp.scenario,
            symbols=pp.symbols,
            step_seconds=pp.step_seconds,
            multipliers=pp.multipliers[start:stop],
            gas_gwei=pp.gas_gwei[start:stop],
            oracle=pp.oracle,
            seed=pp.seed,
            weights=None if pp.weights is None else pp.weights[start:stop],
            assets=pp.assets,
        )


@dataclass(frozen=True, slots=True)
class ChunkResult:
    """Engine output for paths ``[start, stop)`` plus the scenario weights of those rows."""

    start: int
    stop: int
    output: CascadeOutput
    weights: FloatArray | None
    step_seconds: float


def simulate_chunk(
    book: Book,
    scenario: ScenarioSource,
    n_paths: int,
    seed: int,
    start: int,
    stop: int,
    config: EngineConfig,
    trace: bool = False,
) -> ChunkResult:
    """Draw rows ``[start, stop)`` of the scenario and replay the cascade on them.

    A pure function of its arguments (no globals, no I/O), picklable, so it can run on a
    Dask worker.
    """
    pp = scenario.paths(book.symbols, n_paths, seed, start=start, stop=stop)
    out = run_cascade(book, pp, config, trace=trace)
    weights = None if pp.weights is None else np.asarray(pp.weights, dtype=np.float64)
    return ChunkResult(start, stop, out, weights, float(pp.step_seconds))


@dataclass(frozen=True, slots=True)
class RiskRow:
    """VaR and ES at one confidence level with bootstrap intervals, USD."""

    alpha: float
    var_usd: float
    var_low_usd: float
    var_high_usd: float
    es_usd: float
    es_low_usd: float
    es_high_usd: float


@dataclass(frozen=True, slots=True)
class SimulationResult:
    """Everything one ``simulate`` run produced.

    Per-path arrays have shape ``(n_paths,)``; per-asset ones follow ``symbols``.

    Attributes:
        scenario, n_paths, seed, alpha: what was run.
        symbols, assets: the market's assets; ``accounts``: its accounts, ``(n_accounts,)``.
        step_seconds, n_steps: the scenario's time grid.
        shortfall_usd: bad debt per path (horizon shortfall + realised deficits), USD.
        liquidated_usd, n_liquidations, protocol_fee_usd, deficit_usd, rounds_limit_hits:
            per path (see ``CascadeOutput``).
        worst_move: per path and asset, the lowest end-of-step market price (scenario x
            impact) relative to the snapshot minus 1, ``(n_paths, n_assets)``.
        weights: scenario probabilities per path, or ``None`` (equally likely).
        var_usd, es_usd, es_ci_usd: VaR, ES and its bootstrap interval at ``alpha``.
        risk_table: VaR / ES with intervals at ``RISK_ALPHAS`` (and ``alpha``).
        account_contributions: Euler contribution of each account to ES at ``alpha``,
            USD, ``(n_accounts,)``; sums to ``es_usd``.
        asset_contributions: the same per debt reserve, USD, ``(n_assets,)``.
        liquidated_quantiles: quantile of liquidated volume per path, USD, by level, plus
            ``mean`` and ``max``.
        selected_paths: ``{"median": i, "var": j, "worst": k}`` path indices.
        timeline: one row per (selected path, step): ``label, path, step, time_s,
            price_<SYMBOL> ..., liquidated_usd_cum, shortfall_usd``.
        snapshot_meta: the snapshot's ``meta.json``.
        config: engine settings.
        runtime_s: wall time of ``simulate``, seconds.
        reruns: paths on which the fast engine widened its candidate set (diagnostic;
            results are unaffected).
        scenario_kind: ``stress``, ``montecarlo`` or ``historical`` (``None`` for given
            ``PricePaths``).
        market_states: market price multipliers (scenario x impact) relative to the
            snapshot at the end of every step of every path, ``(n_paths, n_steps + 1,
            n_assets)``, when recorded (the engine does not trace oracle prices).
        reserve_drawdown_usd: a Compound V3 market's fall of reserves per path, USD
            (``CascadeOutput.reserve_drawdown_usd``), ``None`` for Aave; on a Comet market
            ``shortfall_usd`` is how far the reserves end below zero.
        drawdown_risk: VaR / ES of the reserve drawdown at ``alpha`` with their intervals
            (Comet only).
        unsold_collateral_usd: a Comet market's absorbed collateral still for sale at the
            horizon per path, USD at reference prices (not part of its reserves).
    """

    scenario: str
    n_paths: int
    seed: int
    alpha: float
    symbols: tuple[str, ...]
    assets: tuple[str, ...]
    accounts: npt.NDArray[np.str_]
    step_seconds: float
    n_steps: int
    shortfall_usd: FloatArray
    liquidated_usd: FloatArray
    n_liquidations: IntArray
    protocol_fee_usd: FloatArray
    deficit_usd: FloatArray
    rounds_limit_hits: IntArray
    worst_move: FloatArray
    weights: FloatArray | None
    var_usd: float
    es_usd: float
    es_ci_usd: tuple[float, float]
    risk_table: tuple[RiskRow, ...]
    account_contributions: FloatArray
    asset_contributions: FloatArray
    liquidated_quantiles: dict[str, float]
    selected_paths: dict[str, int]
    timeline: pd.DataFrame
    snapshot_meta: dict[str, Any]
    config: EngineConfig
    runtime_s: float
    software_version: str = __version__
    reruns: int = 0
    scenario_kind: str | None = None
    market_states: FloatArray | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    reserve_drawdown_usd: FloatArray | None = None
    drawdown_risk: RiskRow | None = None
    unsold_collateral_usd: FloatArray | None = None

    @property
    def rounds_limit_hits_total(self) -> int:
        return int(self.rounds_limit_hits.sum())

    def top_accounts(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` accounts with the largest ES contribution (non-zero only)."""
        c = self.account_contributions
        order = np.argsort(-c, kind="stable")[:n]
        order = order[c[order] > 0.0]
        return pd.DataFrame(
            {"account": self.accounts[order].astype(object), "es_contribution_usd": c[order]}
        )

    def comet_summary(self) -> dict[str, Any] | None:
        """A Compound V3 run's own figures (``summary.json["comet"]``), ``None`` for Aave:
        the snapshot's reserves, target and base, P(reserves < 0), the drawdown's VaR / ES
        with intervals and mean, the mean absorbed collateral unsold at the horizon."""
        row = self.drawdown_risk
        if row is None or self.reserve_drawdown_usd is None:
            return None
        terms = self.snapshot_meta.get("comet", {})
        out: dict[str, Any] = {
            "reserves": terms.get("reserves"),
            "target_reserves": terms.get("target_reserves"),
            "base_symbol": terms.get("base_symbol"),
            "p_reserves_below_zero": float(
                np.average(self.shortfall_usd > 0.0, weights=self.weights)
            ),
            "drawdown": {
                "alpha": row.alpha,
                "var_usd": row.var_usd,
                "var_ci_usd": [row.var_low_usd, row.var_high_usd],
                "es_usd": row.es_usd,
                "es_ci_usd": [row.es_low_usd, row.es_high_usd],
                "mean_usd": float(np.average(self.reserve_drawdown_usd, weights=self.weights)),
            },
        }
        if self.unsold_collateral_usd is not None:
            out["unsold_collateral_usd_mean"] = float(
                np.average(self.unsold_collateral_usd, weights=self.weights)
            )
        return out

    def asset_table(self) -> pd.DataFrame:
        """Per-asset ES contributions, largest first."""
        frame = pd.DataFrame(
            {
                "asset": list(self.assets),
                "symbol": list(self.symbols),
                "es_contribution_usd": self.asset_contributions,
            }
        )
        return frame.sort_values("es_contribution_usd", ascending=False, kind="stable")


def _resolve_scenario(scenario: ScenarioSource | PricePaths | str | Path) -> ScenarioSource:
    if isinstance(scenario, PricePaths):
        return FixedPaths(scenario)
    if isinstance(scenario, str | Path):
        import importlib

        load = importlib.import_module("simulator.scenarios").load_scenario
        loaded: ScenarioSource = load(scenario)
        return loaded
    return scenario


def _chunks(n_paths: int, chunk_paths: int) -> list[tuple[int, int]]:
    return [(a, min(a + chunk_paths, n_paths)) for a in range(0, n_paths, chunk_paths)]


def _run_chunks(
    book: Book,
    source: ScenarioSource,
    n_paths: int,
    seed: int,
    config: EngineConfig,
    bounds: list[tuple[int, int]],
    executor: Any,
    progress: Callable[[int], None] | None,
    trace: bool = False,
) -> list[ChunkResult]:
    if executor is None or executor == "local":
        out = []
        for a, z in bounds:
            out.append(simulate_chunk(book, source, n_paths, seed, a, z, config, trace))
            if progress is not None:
                progress(z - a)
        return out
    if isinstance(executor, str):
        raise InputError(f"executor {executor!r}: expected 'local' or an executor object")
    if not hasattr(executor, "submit"):
        raise InputError(
            f"executor {executor!r} has no submit(); pass a concurrent.futures or Dask client"
        )
    book_ref: Any = book
    source_ref: Any = source
    if hasattr(executor, "scatter"):  # Dask: ship the book once per worker, not per task
        book_ref = executor.scatter(book, broadcast=True)
        source_ref = executor.scatter(source, broadcast=True)
    futures = [
        executor.submit(simulate_chunk, book_ref, source_ref, n_paths, seed, a, z, config, trace)
        for a, z in bounds
    ]
    results = []
    for (a, z), fut in zip(bounds, futures, strict=True):
        try:
            results.append(fut.result())
        except ShortfallError:
            raise  # a bad input the chunk found: its own message says what is wrong
        except Exception as exc:
            for other in futures:
                with contextlib.suppress(Exception):
                    other.cancel()
            raise ExecutorError(
                f"paths [{a}, {z}) failed on the executor: {type(exc).__name__}: {exc}; every "
                f"worker needs shortfall {__version__} and its dependencies installed"
            ) from exc
        if progress is not None:
            progress(z - a)
    return results


def _select_paths(
    losses: FloatArray, weights: FloatArray | None, alpha: float, liquidated: FloatArray
) -> dict[str, int]:
    """Indices of the median-loss, VaR and worst paths.

    Each is a path whose loss is that quantile (the maximum for the worst). Bad-debt losses
    tie a lot (mostly at zero), so among the paths tied at that loss the one shown is the
    most telling cascade: the one with the median liquidated volume for the median path, the
    largest for the VaR and worst paths (then the lowest index).
    """
    order = np.argsort(losses, kind="stable")
    p = np.full(losses.size, 1.0 / losses.size) if weights is None else weights / weights.sum()
    cum = np.cumsum(p[order])

    def tied(loss: float) -> IntArray:
        return np.flatnonzero(losses == loss)

    def at(level: float) -> float:
        k = int(np.searchsorted(cum, level - risk.PROB_TOL, side="left"))
        return float(losses[order[min(k, order.size - 1)]])

    def most_liquidated(loss: float) -> int:
        rows = tied(loss)
        return int(rows[np.argmax(liquidated[rows])])

    med_rows = tied(at(0.5))
    by_liq = med_rows[np.argsort(liquidated[med_rows], kind="stable")]
    return {
        "median": int(by_liq[(by_liq.size - 1) // 2]),
        "var": most_liquidated(at(alpha)),
        "worst": most_liquidated(float(losses[order[-1]])),
    }


def _bootstrap_var(
    losses: FloatArray,
    weights: FloatArray | None,
    alphas: Sequence[float],
    rng: np.random.Generator,
) -> dict[float, tuple[float, float]]:
    """Percentile-bootstrap intervals of VaR (risk.var on each resample)."""
    n = losses.size
    samples = {a: np.empty(N_BOOT) for a in alphas}
    for b in range(N_BOOT):
        idx = rng.integers(0, n, n)
        x = losses[idx]
        w = None if weights is None else weights[idx]
        if w is not None and not w.sum() > 0:
            w = None
        for a in alphas:
            samples[a][b] = risk.var(x, a, w)
    lo_q, hi_q = (1.0 - CI_LEVEL) / 2.0, (1.0 + CI_LEVEL) / 2.0
    return {
        a: (float(np.quantile(s, lo_q)), float(np.quantile(s, hi_q))) for a, s in samples.items()
    }


def _bootstrap_es(
    losses: FloatArray, weights: FloatArray | None, alpha: float, rng: np.random.Generator
) -> tuple[float, float]:
    if weights is None:
        ci = risk.es_ci(losses, alpha, level=CI_LEVEL, n_boot=N_BOOT, rng=rng)
        return float(ci.low), float(ci.high)
    n = losses.size
    boot = np.empty(N_BOOT)
    for b in range(N_BOOT):
        idx = rng.integers(0, n, n)
        w = weights[idx]
        boot[b] = risk.es(losses[idx], alpha, w if w.sum() > 0 else None)
    return float(np.quantile(boot, (1 - CI_LEVEL) / 2)), float(
        np.quantile(boot, (1 + CI_LEVEL) / 2)
    )


def simulate(
    snapshot: MarketSnapshot,
    scenario: ScenarioSource | PricePaths | str | Path,
    n_paths: int | None = None,
    seed: int = 1,
    alpha: float = risk.DEFAULT_ALPHA,
    *,
    config: EngineConfig | None = None,
    executor: Any = None,
    chunk_paths: int = DEFAULT_CHUNK_PATHS,
    progress: Callable[[int], None] | None = None,
    record_states: bool = False,
) -> SimulationResult:
    """Replay liquidation cascades of ``snapshot`` under ``scenario`` and measure shortfall.

    Args:
        snapshot: the market.
        scenario: a scenario name or TOML path (``simulator.scenarios.load_scenario``), a
            loaded ``Scenario``, or ready-made ``PricePaths``.
        n_paths: paths to run; default the scenario's ``default_paths`` (1 for a stress,
            all rows of given ``PricePaths``), else ``DEFAULT_PATHS``.
        seed: scenario seed; the same seed gives the same numbers.
        alpha: confidence level of the headline VaR / ES and the contributions.
        config: engine settings (defaults when ``None``).
        executor: ``None``/``"local"`` runs chunks in this process (the engine is already
            parallel over paths); any object with ``submit`` (a ``concurrent.futures``
            executor, a ``dask.distributed.Client``) runs them there.
        chunk_paths: paths per chunk; results do not depend on it.
        progress: called with the number of paths finished after each chunk.
        record_states: trace every path and keep its per-step market prices
            (``SimulationResult.market_states``, written as ``states.parquet``).

    Returns:
        A frozen ``SimulationResult``.
    """
    started = time.perf_counter()
    config = config or EngineConfig()
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise InputError(f"alpha = {alpha!r}; expected a confidence level strictly in (0, 1)")
    if chunk_paths < 1:
        raise InputError(f"chunk_paths = {chunk_paths}; expected >= 1")
    book = snapshot.book()
    source = _resolve_scenario(scenario)
    if n_paths is None:
        n_paths = int(getattr(source, "default_paths", DEFAULT_PATHS) or DEFAULT_PATHS)
    if n_paths < 1:
        raise InputError(f"n_paths = {n_paths}; expected >= 1")
    bounds = _chunks(n_paths, chunk_paths)
    chunks = _run_chunks(
        book, source, n_paths, seed, config, bounds, executor, progress, record_states
    )

    outs = [c.output for c in chunks]
    cat = np.concatenate
    shortfall = cat([o.shortfall_usd for o in outs])
    weights: FloatArray | None = None
    if any(c.weights is not None for c in chunks):
        weights = cat(
            [c.weights if c.weights is not None else np.ones(c.stop - c.start) for c in chunks]
        )
    tw = risk.tail_weights(shortfall, alpha, weights)
    acc_path = cat([o.account_path + c.start for o, c in zip(outs, chunks, strict=True)])
    acc_index = cat([o.account_index for o in outs])
    acc_value = cat([o.account_shortfall_usd for o in outs])
    account_contrib = np.bincount(
        acc_index, weights=tw[acc_path] * acc_value, minlength=book.n_accounts
    ).astype(np.float64)
    by_asset = cat([o.shortfall_by_asset for o in outs])
    asset_contrib = np.asarray(tw @ by_asset, dtype=np.float64)

    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    alphas = tuple(sorted(set(RISK_ALPHAS) | {alpha}))
    var_ci = _bootstrap_var(shortfall, weights, alphas, rng)
    table = []
    for a in alphas:
        es_lo, es_hi = _bootstrap_es(shortfall, weights, a, rng)
        table.append(
            RiskRow(
                alpha=a,
                var_usd=risk.var(shortfall, a, weights),
                var_low_usd=var_ci[a][0],
                var_high_usd=var_ci[a][1],
                es_usd=risk.es(shortfall, a, weights),
                es_low_usd=es_lo,
                es_high_usd=es_hi,
            )
        )
    head = next(r for r in table if r.alpha == alpha)
    drawdown: FloatArray | None = None
    drawdown_row: RiskRow | None = None
    unsold: FloatArray | None = None
    if book.comet is not None:
        drawdown = cat([np.asarray(o.reserve_drawdown_usd, dtype=np.float64) for o in outs])
        unsold = cat([np.asarray(o.unsold_collateral_usd, dtype=np.float64) for o in outs])
        # drawn after the shortfall's intervals, so those are the same as without it
        dd_var = _bootstrap_var(drawdown, weights, (alpha,), rng)[alpha]
        dd_es = _bootstrap_es(drawdown, weights, alpha, rng)
        drawdown_row = RiskRow(
            alpha=alpha,
            var_usd=risk.var(drawdown, alpha, weights),
            var_low_usd=dd_var[0],
            var_high_usd=dd_var[1],
            es_usd=risk.es(drawdown, alpha, weights),
            es_low_usd=dd_es[0],
            es_high_usd=dd_es[1],
        )

    liquidated = cat([o.liquidated_usd for o in outs])
    liq_q = {f"q{q:g}": risk.var(liquidated, q, weights) for q in LIQUIDATED_QUANTILES}
    liq_q["mean"] = float(np.average(liquidated, weights=weights))
    liq_q["max"] = float(liquidated.max())

    hits = cat([o.rounds_limit_hits for o in outs])
    if hits.any():
        warnings.warn(
            f"the liquidation round limit ({config.round_limit} per step) was reached in "
            f"{int(hits.sum())} path-steps of {int((hits > 0).sum())} paths; the cascade was cut "
            "short there, so shortfall may be understated (raise EngineConfig.round_limit)",
            NumericalWarning,
            stacklevel=2,
        )
    selected = _select_paths(shortfall, weights, alpha, liquidated)
    timeline = _timeline(book, source, n_paths, seed, config, selected)
    return SimulationResult(
        scenario=source.name,
        n_paths=n_paths,
        seed=seed,
        alpha=alpha,
        symbols=book.symbols,
        assets=book.assets,
        accounts=book.accounts,
        step_seconds=chunks[0].step_seconds,
        n_steps=int(timeline["step"].max()) if len(timeline) else 0,
        shortfall_usd=shortfall,
        liquidated_usd=liquidated,
        n_liquidations=cat([o.n_liquidations for o in outs]),
        protocol_fee_usd=cat([o.protocol_fee_usd for o in outs]),
        deficit_usd=cat([o.deficit_usd for o in outs]),
        rounds_limit_hits=hits,
        worst_move=cat([o.worst_market for o in outs]) - 1.0,
        weights=weights,
        var_usd=head.var_usd,
        es_usd=head.es_usd,
        es_ci_usd=(head.es_low_usd, head.es_high_usd),
        risk_table=tuple(table),
        account_contributions=account_contrib,
        asset_contributions=asset_contrib,
        liquidated_quantiles=liq_q,
        selected_paths=selected,
        timeline=timeline,
        snapshot_meta={
            **snapshot.meta,
            "emode": snapshot.emode_summary(),
            "venues": snapshot.venue_summary(),
        },
        config=config,
        runtime_s=time.perf_counter() - started,
        reruns=sum(o.reruns for o in outs),
        scenario_kind=getattr(source, "kind", None),
        market_states=_market_states(outs) if record_states else None,
        reserve_drawdown_usd=drawdown,
        drawdown_risk=drawdown_row,
        unsold_collateral_usd=unsold,
    )


def _market_states(outs: Sequence[CascadeOutput]) -> FloatArray | None:
    """Traced market multipliers of every path, ``(n_paths, n_steps + 1, n_assets)``."""
    traces = [o.trace_market for o in outs]
    if any(t is None for t in traces):
        return None
    return np.concatenate([np.asarray(t, dtype=np.float64) for t in traces], axis=0)


def _timeline(
    book: Book,
    source: ScenarioSource,
    n_paths: int,
    seed: int,
    config: EngineConfig,
    selected: dict[str, int],
) -> pd.DataFrame:
    frames = []
    traced: dict[int, ChunkResult] = {}
    for label, p in selected.items():
        if p not in traced:
            traced[p] = simulate_chunk(book, source, n_paths, seed, p, p + 1, config, trace=True)
        out = traced[p].output
        assert out.trace_market is not None
        assert out.trace_liquidated_usd is not None and out.trace_shortfall_usd is not None
        steps = out.trace_market.shape[1]
        cols: dict[str, Any] = {
            "label": [label] * steps,
            "path": np.full(steps, p, dtype=np.int64),
            "step": np.arange(steps, dtype=np.int64),
            "time_s": np.arange(steps, dtype=np.float64) * traced[p].step_seconds,
        }
        for j, sym in enumerate(book.symbols):
            cols[f"price_{sym}"] = out.trace_market[0, :, j]
        cols["liquidated_usd_cum"] = out.trace_liquidated_usd[0]
        cols["shortfall_usd"] = out.trace_shortfall_usd[0]
        frames.append(pd.DataFrame(cols))
    return pd.concat(frames, ignore_index=True)
