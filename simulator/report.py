"""The risk-team report: one self-contained HTML file (or JSON) from one or more results dirs.

``build_report`` reads nothing but its inputs and returns plain structured data (the JSON
output, for dashboards). ``render_html`` turns that data into one HTML page with every
figure drawn by matplotlib (Agg canvas, no pyplot state) and embedded as a base64 PNG, and
no reference to any network resource, so the file can be mailed around and opened offline.

The first results directory is the *primary* one (usually the Monte Carlo run): its
scenario opens each section; the others (usually the named historical stresses) follow,
folded, and sit side by side with it in the scenario comparison.

Units: money in USD, probabilities and price moves as fractions (-0.43 is a 43% drop),
times in seconds from the snapshot block.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import math
import shlex
import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from simulator import __version__
from simulator.errors import ResultsError
from simulator.results import Results, load_results

__all__ = [
    "LEVELS",
    "REPORT_FORMAT_VERSION",
    "SECTIONS",
    "ResultsInput",
    "build_report",
    "make_report",
    "read_results",
    "render_html",
    "render_json",
    "shorten_address",
]

FloatArray = npt.NDArray[np.float64]

#: Version of the JSON layout below; bumped when a key changes meaning or disappears.
REPORT_FORMAT_VERSION = 1

#: Confidence levels of the VaR / ES table.
LEVELS: tuple[float, ...] = (0.95, 0.975, 0.99)

#: Section ids of the HTML page, in order (tests and dashboards link to them).
SECTIONS: tuple[str, ...] = (
    "snapshot",
    "risk",
    "distribution",
    "scenarios",
    "cascade",
    "contributions",
    "reproduce",
)

WORST_MOVE_PREFIX = "worst_move_"
PRICE_PREFIX = "price_"
TIMELINE_LABELS: tuple[str, ...] = ("median", "var", "worst")

CHAIN_NAMES: dict[int, str] = {
    1: "Ethereum mainnet",
    10: "OP Mainnet",
    56: "BNB Smart Chain",
    100: "Gnosis",
    137: "Polygon PoS",
    8453: "Base",
    42161: "Arbitrum One",
    43114: "Avalanche C-Chain",
    11155111: "Sepolia",
    31337: "local devnet (anvil)",
}


# --------------------------------------------------------------------------------------
# Reading a results directory
# --------------------------------------------------------------------------------------


#: A loaded results directory (``simulator.results.Results``): summary, paths,
#: contributions, asset contributions and timeline.
ResultsInput = Results


def read_results(path: str | Path) -> Results:
    """Read one results directory with ``simulator.results.load_results``; a missing or
    malformed file raises ``ResultsError`` naming the directory and the file."""
    return load_results(path)


# --------------------------------------------------------------------------------------
# Numerics: the structured report
# --------------------------------------------------------------------------------------


def _finite(x: Any) -> float | None:
    """``x`` as a float, or ``None`` when it is missing, NaN or infinite (JSON has neither)."""
    if x is None or isinstance(x, bool):
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _jsonable(obj: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, non-finite floats to ``None``."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return _finite(obj)
    if obj is None or isinstance(obj, str):
        return obj
    return str(obj)


def _weights(paths: pd.DataFrame) -> FloatArray:
    """Path probabilities, shape ``(n_paths,)``, summing to 1 (equal unless a column says)."""
    n = len(paths)
    if "weight" in paths.columns:
        w = paths["weight"].to_numpy(dtype=np.float64)
        total = float(w.sum())
        if np.all(np.isfinite(w)) and np.all(w >= 0) and total > 0:
            return np.asarray(w / total, dtype=np.float64)
    return np.full(n, 1.0 / n)


def _lower_quantile(values: FloatArray, q: float, weights: FloatArray) -> float:
    """inf{ x : P(X <= x) >= q } of the weighted empirical distribution."""
    order = np.argsort(values, kind="stable")
    cdf = np.cumsum(weights[order])
    idx = int(np.searchsorted(cdf, q * cdf[-1] * (1 - 1e-12), side="left"))
    return float(values[order][min(idx, len(values) - 1)])


def _level_key(alpha: float) -> str:
    return f"{alpha:g}"


def _pair(x: Any) -> list[float | None] | None:
    if isinstance(x, list | tuple) and len(x) == 2:
        return [_finite(x[0]), _finite(x[1])]
    return None


def _summary_levels(summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """VaR / ES (with intervals) per confidence level from ``summary.json``.

    Accepts the level table as a list of objects with an ``alpha`` key or as an object
    keyed by the level, under ``levels`` or ``risk``; the headline ``alpha`` row falls back
    to the top-level ``var_usd`` / ``es_usd`` / ``es_ci_usd``.
    """
    out: dict[str, dict[str, Any]] = {}
    raw: Any = None
    for key in ("levels", "risk", "measures"):
        if key in summary:
            raw = summary[key]
            break
    items: list[tuple[Any, Any]] = []
    if isinstance(raw, list):
        items = [(row.get("alpha"), row) for row in raw if isinstance(row, Mapping)]
    elif isinstance(raw, Mapping):
        items = list(raw.items())
    for alpha_raw, row in items:
        alpha = _finite(alpha_raw)
        if alpha is None or not isinstance(row, Mapping):
            continue
        out[_level_key(alpha)] = {
            "alpha": alpha,
            "var_usd": _finite(row.get("var_usd")),
            "var_ci_usd": _pair(row.get("var_ci_usd")),
            "es_usd": _finite(row.get("es_usd")),
            "es_ci_usd": _pair(row.get("es_ci_usd")),
        }
    alpha = _finite(summary.get("alpha"))
    if alpha is not None and _level_key(alpha) not in out:
        out[_level_key(alpha)] = {
            "alpha": alpha,
            "var_usd": _finite(summary.get("var_usd")),
            "var_ci_usd": _pair(summary.get("var_ci_usd")),
            "es_usd": _finite(summary.get("es_usd")),
            "es_ci_usd": _pair(summary.get("es_ci_usd")),
        }
    return dict(sorted(out.items(), key=lambda kv: float(kv[1]["alpha"])))


#: Positive losses spanning more than this ratio (max / min) get a log-scale histogram.
LOG_SCALE_RATIO = 30.0


def _histogram(losses: FloatArray, weights: FloatArray, bins: int = 40) -> dict[str, Any]:
    """Histogram of the positive losses, mass as a share of *all* paths; log-spaced bins
    when they span more than ``LOG_SCALE_RATIO``, linear ones otherwise."""
    pos = losses > 0
    if not pos.any():
        return {"edges_usd": [], "mass": [], "scale": "linear"}
    lo, hi = float(losses[pos].min()), float(losses[pos].max())
    if hi <= lo * 1.0001:
        lo, hi = lo / 1.1, hi * 1.1
    scale = "log" if hi / lo > LOG_SCALE_RATIO else "linear"
    if scale == "log":
        edges = np.geomspace(lo, hi, bins + 1)
    else:
        edges = np.linspace(0.0, hi * 1.0001, bins + 1)
    mass, _ = np.histogram(losses[pos], bins=edges, weights=weights[pos])
    return {"edges_usd": edges.tolist(), "mass": mass.tolist(), "scale": scale}


def _exceedance(losses: FloatArray, weights: FloatArray, points: int = 300) -> dict[str, Any]:
    """P(L >= x) at the positive sample losses x (at most ``points`` of them)."""
    pos = losses > 0
    if not pos.any():
        return {"loss_usd": [], "prob": []}
    order = np.argsort(losses, kind="stable")
    x = losses[order]
    w = weights[order]
    tail = np.cumsum(w[::-1])[::-1]  # tail[i] = P(L >= x[i]) (ties: the first of a run)
    keep = np.flatnonzero(x > 0)
    _, first = np.unique(x[keep], return_index=True)
    keep = keep[first]
    if len(keep) > points:
        # Log-spaced in the distance from the largest loss, so log-spaced in probability:
        # every decade of the tail keeps its points (the smallest losses are thinned).
        from_top = np.unique(np.geomspace(1, len(keep), points).astype(np.int64))
        keep = keep[np.sort(len(keep) - from_top)]
    return {"loss_usd": x[keep].tolist(), "prob": tail[keep].tolist()}


def _distribution(
    paths: pd.DataFrame, weights: FloatArray, alpha: float, summary: Mapping[str, Any]
) -> dict[str, Any]:
    losses = paths["shortfall_usd"].to_numpy(dtype=np.float64)
    positive = losses > 0
    return {
        "n_paths": len(losses),
        "n_positive": int(positive.sum()),
        "p_shortfall_positive": float(weights[positive].sum()),
        "mean_usd": float(np.dot(weights, losses)),
        "max_usd": float(losses.max()),
        "quantiles_usd": {
            _level_key(q): _lower_quantile(losses, q, weights) for q in (0.5, 0.9, *LEVELS)
        },
        "alpha": alpha,
        "var_usd": _finite(summary.get("var_usd")),
        "es_usd": _finite(summary.get("es_usd")),
        "histogram": _histogram(losses, weights),
        "exceedance": _exceedance(losses, weights),
    }


def _liquidated(
    paths: pd.DataFrame, weights: FloatArray, summary: Mapping[str, Any]
) -> dict[str, Any]:
    """Liquidated volume per path, USD: quantiles as ``summary.json`` records them (``q0.5``
    ...), falling back to the lower quantile of ``paths.parquet`` for a level it lacks."""
    vol = paths["liquidated_usd"].to_numpy(dtype=np.float64)
    recorded = summary.get("liquidated_usd")
    recorded = recorded if isinstance(recorded, Mapping) else {}
    quantiles: dict[str, float] = {}
    for q in (0.5, 0.95, 0.99):
        value = _finite(recorded.get(f"q{q:g}"))
        quantiles[_level_key(q)] = value if value is not None else _lower_quantile(vol, q, weights)
    out: dict[str, Any] = {
        "mean_usd": float(np.dot(weights, vol)),
        "quantiles_usd": quantiles,
        "max_usd": float(vol.max()),
    }
    if "n_liquidations" in paths.columns:
        out["mean_liquidations"] = float(
            np.dot(weights, paths["n_liquidations"].to_numpy(dtype=np.float64))
        )
    if recorded:
        out["summary_quantiles_usd"] = _jsonable(recorded)
    return out


def _worst_moves(paths: pd.DataFrame, weights: FloatArray, alpha: float) -> dict[str, Any]:
    """Per asset: the worst price move of a path (fraction), at the (1 - alpha) tail
    across paths, at the median path, and the most extreme; plus the asset that fell most."""
    assets: dict[str, dict[str, float]] = {}
    for col in paths.columns:
        if not str(col).startswith(WORST_MOVE_PREFIX):
            continue
        moves = paths[col].to_numpy(dtype=np.float64)
        if not np.all(np.isfinite(moves)):
            continue
        assets[str(col)[len(WORST_MOVE_PREFIX) :]] = {
            "tail": _lower_quantile(moves, 1.0 - alpha, weights),
            "median": _lower_quantile(moves, 0.5, weights),
            "min": float(moves.min()),
        }
    falls = any(a["min"] < 0 for a in assets.values())
    worst = None
    if falls:  # by the tail move, or by the most extreme one where no tail move is negative
        key = "tail" if min(a["tail"] for a in assets.values()) < 0 else "min"
        worst = min(assets, key=lambda s: assets[s][key])
    return {"assets": assets, "worst_symbol": worst, "any_falls": falls, "tail_level": 1.0 - alpha}


def _contributions(
    frame: pd.DataFrame | None, key: str, es_usd: float | None, top_n: int | None
) -> dict[str, Any] | None:
    if frame is None:
        return None
    values = frame["es_contribution_usd"].to_numpy(dtype=np.float64)
    order = np.argsort(-values, kind="stable")
    if top_n is not None:
        order = order[:top_n]
    rows = []
    for i in order:
        row = frame.iloc[int(i)]
        entry: dict[str, Any] = {key: str(row[key]) if key in frame.columns else str(i)}
        if key == "asset" and "symbol" in frame.columns:
            entry["symbol"] = str(row["symbol"])
        entry["es_contribution_usd"] = _finite(row["es_contribution_usd"])
        entry["share"] = _finite(row["es_contribution_usd"] / es_usd) if es_usd else None
        rows.append(entry)
    return {
        "n": len(frame),
        "n_nonzero": int(np.count_nonzero(values)),
        "total_usd": float(values.sum()),
        "rows": rows,
    }


def _relative(prices: FloatArray) -> list[float]:
    start = float(prices[0]) if len(prices) else 1.0
    return (prices / start if start > 0 else prices).tolist()  # type: ignore[no-any-return]


def _timeline(frame: pd.DataFrame | None) -> dict[str, Any] | None:
    if frame is None or frame.empty:
        return None
    out: dict[str, Any] = {}
    for label in TIMELINE_LABELS:
        part = frame[frame["label"].astype(str) == label].sort_values("step", kind="stable")
        if part.empty:
            continue
        time_s = (
            part["time_s"].to_numpy(dtype=np.float64)
            if "time_s" in part.columns
            else part["step"].to_numpy(dtype=np.float64)
        )
        series: dict[str, Any] = {
            "path": int(part["path"].iloc[0]) if "path" in part.columns else None,
            "time_s": time_s.tolist(),
            "price_relative": {  # market price over its value at step 0
                str(c)[len(PRICE_PREFIX) :]: _relative(part[c].to_numpy(dtype=np.float64))
                for c in part.columns
                if str(c).startswith(PRICE_PREFIX)
            },
        }
        for col in ("liquidated_usd_cum", "shortfall_usd"):
            if col in part.columns:
                series[col] = part[col].to_numpy(dtype=np.float64).tolist()
        out[label] = series
    return out or None


def _default_command(summary: Mapping[str, Any], results_dir: Path) -> str:
    """The ``shortfall simulate`` line that reproduces a results dir, when it has none."""
    argv = ["shortfall", "simulate"]
    snap = summary.get("snapshot_dir") or summary.get("snapshot_path")
    argv += ["--snapshot", str(snap) if snap else "SNAPSHOT_DIR"]
    argv += ["--scenario", str(summary.get("scenario"))]
    for flag, key in (("--paths", "paths"), ("--seed", "seed"), ("--alpha", "alpha")):
        if summary.get(key) is not None:
            argv += [flag, str(summary[key])]
    argv += ["--out", str(results_dir)]
    return shlex.join(argv)


#: summary.json keys the report shows in its own places; any other key is listed as recorded.
_SHOWN_ELSEWHERE = frozenset(
    {
        "scenario",
        "scenario_source",
        "scenario_path",
        "paths",
        "n_paths",
        "seed",
        "alpha",
        "var_usd",
        "es_usd",
        "es_ci_usd",
        "var_ci_usd",
        "risk",
        "levels",
        "liquidated_usd",
        "comet",
        "snapshot",
        "snapshot_meta",
        "snapshot_sha256",
        "snapshot_dir",
        "engine",
        "engine_config",
        "software_version",
        "version",
        "runtime_s",
        "command",
        "command_line",
        "ci_level",
        "n_boot",
        "scenario_file",
        "scenario_sha256",
        "scenario_data_sha256",
        "versions",
        "executor",
        "chunk_paths",
    }
)


def _reproduce(summary: Mapping[str, Any], results_dir: Path) -> dict[str, Any]:
    engine = summary.get("engine") or summary.get("engine_config") or {}
    command = summary.get("command") or summary.get("command_line")
    if isinstance(command, list):
        command = shlex.join(str(a) for a in command)
    return {
        "scenario": summary.get("scenario"),
        "scenario_source": (
            summary.get("scenario_file")
            or summary.get("scenario_source")
            or summary.get("scenario_path")
        ),
        "scenario_sha256": summary.get("scenario_sha256"),
        "scenario_data_sha256": summary.get("scenario_data_sha256"),
        "snapshot_sha256": summary.get("snapshot_sha256"),
        "versions": _jsonable(summary["versions"])
        if isinstance(summary.get("versions"), Mapping)
        else {},
        "executor": summary.get("executor"),
        "chunk_paths": summary.get("chunk_paths"),
        "ci_level": _finite(summary.get("ci_level")),
        "n_boot": summary.get("n_boot"),
        "paths": summary.get("paths", summary.get("n_paths")),
        "seed": summary.get("seed"),
        "alpha": summary.get("alpha"),
        "engine": _jsonable(engine) if isinstance(engine, Mapping) else {"value": str(engine)},
        "software_version": summary.get("software_version") or summary.get("version"),
        "runtime_s": _finite(summary.get("runtime_s")),
        "results_dir": str(results_dir),
        "command": str(command) if command else _default_command(summary, results_dir),
        "command_recorded": bool(command),
        "other": {k: _jsonable(v) for k, v in summary.items() if k not in _SHOWN_ELSEWHERE},
    }


def _snapshot_meta(summary: Mapping[str, Any]) -> dict[str, Any]:
    raw = summary.get("snapshot") or summary.get("snapshot_meta") or {}
    meta = dict(raw) if isinstance(raw, Mapping) else {}
    chain_id = meta.get("chain_id")
    ts = meta.get("timestamp")
    time_utc = None
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        time_utc = dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out = {
        "protocol": meta.get("protocol"),
        "chain_id": chain_id,
        "chain_name": CHAIN_NAMES.get(chain_id) if isinstance(chain_id, int) else None,
        "block_number": meta.get("block_number"),
        "block_hash": meta.get("block_hash"),
        "timestamp": ts,
        "time_utc": time_utc,
        "snapshot_hash": (
            summary.get("snapshot_sha256")
            or meta.get("snapshot_sha256")
            or meta.get("snapshot_hash")
            or meta.get("sha256")
        ),
        "snapshot_dir": summary.get("snapshot_dir"),
        "addresses": meta.get("addresses") or {},
        "software_version": meta.get("software_version"),
        "emode": meta.get("emode") or [],
        "venues": meta.get("venues") or [],
    }
    return _jsonable(out)  # type: ignore[no-any-return]


def _scenario(item: ResultsInput, top_n: int | None) -> dict[str, Any]:
    s = item.summary
    weights = _weights(item.paths)
    alpha = _finite(s.get("alpha")) or 0.975
    es_usd = _finite(s.get("es_usd"))
    return {
        "scenario": str(s.get("scenario")),
        "results_dir": str(item.path),
        "kind": s.get("scenario_kind") or s.get("kind"),
        "paths": int(s.get("paths", len(item.paths))),
        "seed": s.get("seed"),
        "alpha": alpha,
        "var_usd": _finite(s.get("var_usd")),
        "es_usd": es_usd,
        "es_ci_usd": _pair(s.get("es_ci_usd")),
        "ci_level": _finite(s.get("ci_level")),
        "n_boot": s.get("n_boot"),
        "levels": list(_summary_levels(s).values()),
        "distribution": _distribution(item.paths, weights, alpha, s),
        "liquidated": _liquidated(item.paths, weights, s),
        "worst_move": _worst_moves(item.paths, weights, alpha),
        "rounds_limit_paths": (
            int((item.paths["rounds_limit_hits"].to_numpy() > 0).sum())
            if "rounds_limit_hits" in item.paths.columns
            else None
        ),
        "cascade": _timeline(item.timeline),
        "top_accounts": _contributions(item.contributions, "account", es_usd, top_n),
        "top_assets": _contributions(item.asset_contributions, "asset", es_usd, None),
        "snapshot": _snapshot_meta(s),
        "reproduce": _reproduce(s, item.path),
        "comet": _jsonable(s["comet"]) if isinstance(s.get("comet"), Mapping) else None,
    }


def build_report(
    results: Iterable[ResultsInput | str | Path],
    *,
    command: str | Sequence[str] | None = None,
    top_n: int = 20,
    generated_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The report as plain, JSON-ready data (``--format json`` writes exactly this).

    Args:
        results: results directories (or their ``read_results``), the primary one first.
        command: the command line that made the report, recorded for reproduction.
        top_n: how many accounts the contribution table lists.
        generated_at: report time (defaults to now, UTC).
    """
    results = list(results)
    backtests = [_backtest(r) for r in results if isinstance(r, str | Path) and _is_backtest(r)]
    sweeps = [_sweep(r) for r in results if isinstance(r, str | Path) and _is_sweep(r)]
    items = [
        r if isinstance(r, ResultsInput) else read_results(r)
        for r in results
        if not _is_backtest(r) and not _is_sweep(r)
    ]
    if not items and sweeps:  # a sweep alone: its base point leads the report
        items = list(_sweep_base_results(sweeps))
    if not items and backtests:
        return _backtest_report(backtests, command, generated_at)
    if not items:
        raise ResultsError("no results directory given; pass at least one")
    if top_n < 1:
        raise ResultsError(f"top_n = {top_n}; expected at least 1")
    scenarios = [_scenario(item, top_n) for item in items]
    snapshot = scenarios[0]["snapshot"]
    ident = ("protocol", "chain_id", "block_number", "block_hash")
    mismatches = [
        {
            "results_dir": sc["results_dir"],
            "differs_in": [k for k in ident if sc["snapshot"].get(k) != snapshot.get(k)],
        }
        for sc in scenarios[1:]
        if any(sc["snapshot"].get(k) != snapshot.get(k) for k in ident)
    ]
    if isinstance(command, str) or command is None:
        cmd = command
    else:
        cmd = shlex.join(str(a) for a in command)
    when = generated_at or dt.datetime.now(tz=dt.UTC)
    report = {
        "report_format": REPORT_FORMAT_VERSION,
        "generated_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software_version": __version__,
        "command": cmd,
        "snapshot": snapshot,
        "snapshot_mismatches": mismatches,
        "scenarios": scenarios,
    }
    if backtests:
        report["backtests"] = backtests
    if sweeps:
        report["sweeps"] = sweeps
    return _jsonable(report)  # type: ignore[no-any-return]


def render_json(report: Mapping[str, Any]) -> str:
    """The report as indented JSON (``allow_nan=False``: missing numbers are ``null``)."""
    return json.dumps(_jsonable(report), indent=2, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x), quote=True)


#: Below this many USD a non-zero amount prints as "<$0.01", not "$0.00" (a dust shortfall
#: still counts in P(shortfall > 0), and "$0.00" next to "100%" reads as a contradiction).
DUST_USD = 0.005


def _usd(x: Any) -> str:
    v = _finite(x)
    if v is None:
        return "n/a"
    if 0 < abs(v) < DUST_USD:
        return "<$0.01" if v > 0 else "-<$0.01"
    if abs(v) >= 100 or v == 0:
        return f"${v:,.0f}" if v >= 0 else f"-${-v:,.0f}"
    return f"${v:,.2f}" if v >= 0 else f"-${-v:,.2f}"


def _usd_short(x: float, *, exact: bool = False) -> str:
    """``$2.87k``, ``$6.05M``; a dust amount is ``<$0.01`` unless ``exact`` (axis ticks,
    which sit at exact values such as $0.001)."""
    a = abs(x)
    sign = "-" if x < 0 else ""
    if 0 < a < DUST_USD and not exact:
        return f"{sign}<$0.01"
    for div, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{sign}${a / div:.3g}{suffix}"
    return f"{sign}${a:.3g}"


def _pct(x: Any, digits: int = 1) -> str:
    v = _finite(x)
    if v is None:
        return "n/a"
    return f"{100 * v:.{digits}f}%"


def _share(x: Any) -> str:
    """A share of ES: one decimal, and ``<0.1%`` rather than ``0.0%`` for a small non-zero one."""
    v = _finite(x)
    if v is not None and 0 < v < 0.0005:
        return "<0.1%"
    return _pct(v)


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _level(alpha: Any) -> str:
    v = _finite(alpha)
    return "n/a" if v is None else f"{100 * v:g}%"


def _ci(pair: Any) -> str:
    if not isinstance(pair, list) or len(pair) != 2 or None in pair:
        return "n/a"
    return f"[{_usd(pair[0])}, {_usd(pair[1])}]"


def shorten_address(address: str) -> str:
    """``0x1234…abcd`` for a 20-byte hex address; anything else unchanged."""
    if address.startswith("0x") and len(address) > 14:
        return f"{address[:6]}…{address[-4:]}"
    return address


def _addr(address: Any) -> str:
    a = "" if address is None else str(address)
    return f'<span class="addr" title="{_e(a)}">{_e(shorten_address(a))}</span>'


# --------------------------------------------------------------------------------------
# Figures (matplotlib, Agg canvas, embedded as base64 PNG)
# --------------------------------------------------------------------------------------

_COLORS = {"es": "#b2182b", "var": "#2166ac", "bar": "#7f8c9a", "line": "#333333"}
_LABEL_COLORS = {"median": "#4d9221", "var": "#2166ac", "worst": "#b2182b"}


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _png(fig: Any, alt: str) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img class="fig" alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _usd_formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: _usd_short(v, exact=True))


def _distribution_figure(sc: Mapping[str, Any]) -> str | None:
    d = sc["distribution"]
    hist, exc = d["histogram"], d["exceedance"]
    if not hist["mass"]:
        return None
    alpha = sc["alpha"]
    var_usd, es_usd = d["var_usd"], d["es_usd"]
    fig = _figure(11.0, 3.8)
    ax1, ax2 = fig.subplots(1, 2)
    edges = np.asarray(hist["edges_usd"], dtype=np.float64)
    mass = 100 * np.asarray(hist["mass"], dtype=np.float64)
    ax1.bar(edges[:-1], mass, width=np.diff(edges), align="edge", color=_COLORS["bar"])
    log1 = hist["scale"] == "log"
    if log1:
        ax1.set_xscale("log")
    ax1.set_xlabel("shortfall (bad debt), USD" + (", log scale" if log1 else ""))
    ax1.set_ylabel("share of all paths, %")
    ax1.set_title(
        f"Paths with a shortfall: P(shortfall > 0) = {_pct(d['p_shortfall_positive'], 2)}"
        f" ({d['n_positive']:,} of {d['n_paths']:,})",
        fontsize=10,
    )
    x = np.asarray(exc["loss_usd"], dtype=np.float64)
    p = np.asarray(exc["prob"], dtype=np.float64)
    ax2.step(x, p, where="post", color=_COLORS["line"], lw=1.5, label="P(shortfall ≥ x)")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.axhline(1 - alpha, color="#999999", lw=0.8, ls=":", label=f"1 − α = {_pct(1 - alpha)}")
    ax2.set_xlabel("shortfall x, USD, log scale")
    ax2.set_ylabel("probability, log scale")
    ax2.set_title("Tail: probability of a shortfall at least x", fontsize=10)
    for ax, log in ((ax1, log1), (ax2, True)):
        ax.xaxis.set_major_formatter(_usd_formatter())
        for value, name, style in ((var_usd, "VaR", "--"), (es_usd, "ES", "-")):
            color = _COLORS["var" if name == "VaR" else "es"]
            label = f"{name}({_level(alpha)}) = {_usd_short(value or 0.0)}"
            if value is not None and (value > 0 or not log):
                ax.axvline(value, color=color, ls=style, lw=1.6, label=label)
            else:  # zero is off a log axis: say so in the legend instead of drawing
                ax.plot([], [], color=color, ls=style, label=f"{label} (not on log axis)")
        ax.legend(fontsize=8, loc="upper right")
        ax.grid(True, which="major", alpha=0.3)
    return _png(fig, f"shortfall distribution of {sc['scenario']}")


def _scenarios_figure(scenarios: Sequence[Mapping[str, Any]]) -> str:
    names = [str(s["scenario"]) for s in scenarios]
    es = [s["es_usd"] or 0.0 for s in scenarios]
    var = [s["var_usd"] or 0.0 for s in scenarios]
    liq = [s["liquidated"]["quantiles_usd"].get("0.5") or 0.0 for s in scenarios]
    liq_max = [s["liquidated"]["max_usd"] or 0.0 for s in scenarios]
    y = np.arange(len(names), dtype=np.float64)
    fig = _figure(11.0, 1.2 + 0.45 * len(names))
    ax1, ax2 = fig.subplots(1, 2, sharey=True)
    h = 0.38
    panels = (
        (ax1, var, es, "VaR", "ES", "shortfall at each scenario's α, USD"),
        (ax2, liq, liq_max, "median path", "worst path", "liquidated volume, USD"),
    )
    for ax, a, b, la, lb, xlabel in panels:
        ax.barh(y - h / 2, a, height=h, color=_COLORS["var"], label=la)
        ax.barh(y + h / 2, b, height=h, color=_COLORS["es"], label=lb)
        top = max([*a, *b, 1.0])
        ax.set_xlim(0, top * 1.25)
        for yi, va, vb in zip(y, a, b, strict=True):
            ax.text(va, yi - h / 2, " " + _usd_short(va), va="center", fontsize=8)
            ax.text(vb, yi + h / 2, " " + _usd_short(vb), va="center", fontsize=8)
        ax.xaxis.set_major_formatter(_usd_formatter())
        ax.set_xlabel(xlabel)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(True, axis="x", alpha=0.3)
    ax1.set_yticks(y, names)
    ax1.invert_yaxis()
    return _png(fig, "scenarios side by side")


def _time_axis(time_s: Sequence[float]) -> tuple[FloatArray, str]:
    t = np.asarray(time_s, dtype=np.float64)
    span = float(t.max() - t.min()) if len(t) else 0.0
    if span > 3 * 86400:
        return t / 86400, "time, days"
    if span > 3 * 3600:
        return t / 3600, "time, hours"
    return t / 60, "time, minutes"


_PATH_NAMES = {"median": "median path", "var": "path at VaR", "worst": "worst path"}


def _cascade_columns(sc: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, name) of each distinct traced path: the median, VaR and worst paths are
    often the same path (always, for a one-path stress), which is drawn once."""
    cascade = sc["cascade"] or {}
    columns: list[tuple[str, list[str]]] = []
    seen: dict[Any, int] = {}
    for label in TIMELINE_LABELS:
        if label not in cascade:
            continue
        path = cascade[label].get("path")
        if path is not None and path in seen:
            columns[seen[path]][1].append(_PATH_NAMES[label])
            continue
        seen[path] = len(columns)
        columns.append((label, [_PATH_NAMES[label]]))
    one = sc["paths"] == 1
    return [(label, "the stress path" if one else " = ".join(names)) for label, names in columns]


def _cascade_is_still(sc: Mapping[str, Any]) -> bool:
    """True when no traced path moves any price, liquidates or leaves a shortfall."""
    for series in (sc["cascade"] or {}).values():
        for prices in series["price_relative"].values():
            if np.any(np.abs(np.asarray(prices, dtype=np.float64) - 1.0) > 1e-9):
                return False
        for key in ("liquidated_usd_cum", "shortfall_usd"):
            if np.any(np.asarray(series.get(key) or [0.0], dtype=np.float64) != 0):
                return False
    return True


def _cascade_figure(sc: Mapping[str, Any]) -> str | None:
    cascade = sc["cascade"]
    if not cascade:
        return None
    columns = _cascade_columns(sc)
    fig = _figure(11.0 if len(columns) > 1 else 7.0, 8.0)
    axes = fig.subplots(3, len(columns), sharex="col", sharey="row", squeeze=False)
    symbols = sorted({sym for lb, _ in columns for sym in cascade[lb]["price_relative"]})
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    colors = {sym: cmap(i % 10) for i, sym in enumerate(symbols)}
    row_max = [0.0, 0.0]
    for j, (label, name) in enumerate(columns):
        series = cascade[label]
        path = series.get("path")
        title = name + (f" (#{path})" if path is not None else "")
        t, tlabel = _time_axis(series["time_s"])
        ax_p, ax_l, ax_s = axes[0, j], axes[1, j], axes[2, j]
        for sym, prices in series["price_relative"].items():
            ax_p.plot(t, 100 * np.asarray(prices), color=colors[sym], lw=1.3, label=sym)
        ax_p.set_title(title, fontsize=10)
        for i, (ax, key, color) in enumerate(
            (
                (ax_l, "liquidated_usd_cum", _LABEL_COLORS[label]),
                (ax_s, "shortfall_usd", _COLORS["es"]),
            )
        ):
            if key not in series:
                continue
            values = np.asarray(series[key], dtype=np.float64)
            row_max[i] = max(row_max[i], float(values.max(initial=0.0)))
            ax.plot(t, values, color=color, lw=1.5)
            ax.fill_between(t, values, color=color, alpha=0.15)
        ax_s.set_xlabel(tlabel)
        for ax in (ax_p, ax_l, ax_s):
            ax.grid(True, alpha=0.3)
        ax_l.yaxis.set_major_formatter(_usd_formatter())
        ax_s.yaxis.set_major_formatter(_usd_formatter())
    for row, what in ((1, "no liquidation"), (2, "no shortfall")):
        if row_max[row - 1] > 0:  # after every column is drawn: the row shares one y axis
            axes[row, 0].set_ylim(bottom=0)
            continue
        axes[row, 0].set_ylim(0, 1)  # an all-zero row: say so instead of a $0.00-$0.05 axis
        for ax in axes[row]:
            ax.text(
                0.5,
                0.5,
                what,
                transform=ax.transAxes,
                ha="center",
                va="center",
                color="#5b6670",
                fontsize=10,
            )
    axes[0, 0].set_ylabel("market price, % of snapshot")
    axes[1, 0].set_ylabel("liquidated, cumulative, USD")
    axes[2, 0].set_ylabel("shortfall, USD")
    if symbols:  # above the panels, where it hides no line
        handles, names = axes[0, 0].get_legend_handles_labels()
        fig.legend(
            handles,
            names,
            loc="outside upper center",
            ncol=min(len(symbols), 8),
            fontsize=8,
            frameon=False,
        )
    return _png(fig, f"cascade paths of {sc['scenario']}")


# --------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------

_TEMPLATE = string.Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="shortfall $version">
<title>$title</title>
<style>
:root { --ink: #1d232a; --muted: #5b6670; --line: #d8dee4; --bg: #f6f8fa; --es: #b2182b; --var: #2166ac; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: var(--ink); margin: 0; background: #fff; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
header.top { border-bottom: 3px solid var(--ink); margin-bottom: 12px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
p.lead { color: var(--muted); margin: 0 0 12px; }
.note { color: var(--muted); font-size: 13px; }
.warn { background: #fff4e5; border-left: 4px solid #e08a00; padding: 8px 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: var(--bg); font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 6px 0 12px; }
dl.kv dt { color: var(--muted); }
dl.kv dd { margin: 0; word-break: break-all; }
.addr, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; font-size: 12.5px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 8px 10px; white-space: pre-wrap; word-break: break-all; }
.headline { display: flex; gap: 14px; flex-wrap: wrap; margin: 10px 0; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; min-width: 190px; background: var(--bg); }
.card .v { font-size: 22px; font-weight: 650; }
.card .l { color: var(--muted); font-size: 12.5px; }
.card.es .v { color: var(--es); }
.card.var .v { color: var(--var); }
img.fig { max-width: 100%; height: auto; display: block; margin: 8px 0; }
details { margin: 8px 0; }
details > summary { cursor: pointer; font-weight: 600; }
nav.toc a { margin-right: 12px; }
table.scenarios { font-size: 13px; }
table.scenarios th { white-space: normal; }
table.scenarios td:first-child, table.scenarios td:last-child { white-space: nowrap; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 8px; }
@media print { details { display: block; } main { max-width: none; } h2 { break-after: avoid; } img.fig { break-inside: avoid; } }
</style>
</head>
<body>
<main>
$body
</main>
</body>
</html>
"""
)


def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    """A definition list; values are HTML already escaped by the caller."""
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="kv">{rows}</dl>'


def _table(head: Sequence[tuple[str, bool]], rows: Iterable[Sequence[str]], cls: str = "") -> str:
    """A table; ``head`` is (title, numeric); cells are HTML already escaped."""
    ths = "".join(
        f'<th class="num">{_e(t)}</th>' if num else f"<th>{_e(t)}</th>" for t, num in head
    )
    body = []
    for row in rows:
        tds = "".join(
            f'<td class="num">{c}</td>' if num else f"<td>{c}</td>"
            for c, (_, num) in zip(row, head, strict=True)
        )
        body.append(f"<tr>{tds}</tr>")
    klass = f' class="{cls}"' if cls else ""
    return f"<table{klass}><thead><tr>{ths}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _per_scenario(scenarios: Sequence[Mapping[str, Any]], block: Any, *, section: str) -> str:
    """The primary scenario's block open, the others folded in ``<details>``."""
    parts = []
    for i, sc in enumerate(scenarios):
        inner = block(sc)
        title = f'{_e(sc["scenario"])} <span class="note">({_e(sc["results_dir"])})</span>'
        if len(scenarios) == 1:
            parts.append(inner)
        else:
            opened = " open" if i == 0 else ""
            parts.append(
                f'<details id="{section}-{i}"{opened}><summary>{title}</summary>{inner}</details>'
            )
    return "".join(parts)


def _section_snapshot(report: Mapping[str, Any]) -> str:
    snap = report["snapshot"]
    chain = snap.get("chain_name")
    chain_text = (f"{_e(chain)}, chain id " if chain else "chain id ") + _e(
        snap.get("chain_id") if snap.get("chain_id") is not None else "n/a"
    )
    pairs = [
        ("Protocol", _e(snap.get("protocol") or "n/a")),
        ("Chain", chain_text),
        (
            "Block",
            _e(f"{snap['block_number']:,}" if isinstance(snap.get("block_number"), int) else "n/a"),
        ),
        ("Block time", _e(snap.get("time_utc") or "n/a")),
        ("Block hash", f"<code>{_e(snap.get('block_hash') or 'n/a')}</code>"),
    ]
    if snap.get("snapshot_hash"):
        pairs.append(("Snapshot SHA-256", f"<code>{_e(snap['snapshot_hash'])}</code>"))
    if snap.get("snapshot_dir"):
        pairs.append(("Snapshot directory", f"<code>{_e(snap['snapshot_dir'])}</code>"))
    addresses = snap.get("addresses") or {}
    for role, address in sorted(addresses.items()):
        pairs.append((f"{role}", _addr(address)))
    html_out = f'<section id="snapshot"><h2>Snapshot</h2>{_kv(pairs)}'
    emode = snap.get("emode") or []
    if any(row.get("category") for row in emode):
        html_out += "<h3>Accounts and debt by e-mode category</h3>" + _table(
            [
                ("category", False),
                ("label", False),
                ("accounts", True),
                ("debt", True),
                ("share of debt", True),
            ],
            (
                [
                    _e(row.get("category")),
                    _e(row.get("label") or ""),
                    _e(f"{int(row.get('accounts') or 0):,}"),
                    _usd(row.get("debt_usd")),
                    _share(row.get("debt_share")),
                ]
                for row in emode
            ),
        )
    html_out += _venues_table(snap.get("venues") or [])
    if report["snapshot_mismatches"]:
        items = "".join(
            f"<li>{_e(m['results_dir'])}: differs in {_e(', '.join(m['differs_in']))}</li>"
            for m in report["snapshot_mismatches"]
        )
        html_out += (
            '<p class="warn">These results come from a different snapshot than the first one; '
            f"compare them with care:</p><ul>{items}</ul>"
        )
    return html_out + "</section>"


def _venues_table(venues: Sequence[Mapping[str, Any]]) -> str:
    """Each asset's liquidity venue and its depth at 2%, 5% and 10% impact (as pulled)."""
    if not venues:
        return ""
    impacts = sorted({k for v in venues for k in (v.get("depth_usd") or {})}, key=float)

    def depth(v: Mapping[str, Any], k: str) -> str:
        d = (v.get("depth_usd") or {}).get(k)
        return _usd(d) if d is not None else "beyond the known liquidity"

    return (
        "<h3>Liquidity venues</h3><p>Where liquidators sell each asset, and the sale (USD at "
        "the snapshot's price, liquidity as pulled, before any liquidity scale) that moves "
        "the venue's price by each impact: the spot price for constant-product and "
        "Uniswap V3 pools, the average execution price for a depth curve.</p>"
        + _table(
            [("asset", False), ("venue", False), ("fee", True)]
            + [(f"depth at {float(k):.0%}", True) for k in impacts],
            (
                [_e(v.get("symbol")), _e(v.get("kind")), _pct(v.get("fee"), 2)]
                + [depth(v, k) for k in impacts]
                for v in venues
            ),
        )
    )


def _ci_name(sc: Mapping[str, Any]) -> str:
    """``95% CI`` when the results record the interval's level, else ``CI``."""
    level = sc.get("ci_level")
    return f"{_level(level)} CI" if level is not None else "CI"


def _liquidated_text(sc: Mapping[str, Any]) -> str:
    liq = sc["liquidated"]
    lq = liq["quantiles_usd"]
    per_path = (
        f"; {liq['mean_liquidations']:,.1f} liquidations per path on average"
        if liq.get("mean_liquidations") is not None
        else ""
    )
    return (
        f"<p>Liquidated volume per path: median {_e(_usd(lq.get('0.5')))}, 95% "
        f"{_e(_usd(lq.get('0.95')))}, 99% {_e(_usd(lq.get('0.99')))}, worst "
        f"{_e(_usd(liq['max_usd']))}{per_path}.</p>"
    )


def _round_limit_warning(sc: Mapping[str, Any]) -> str:
    cut = sc.get("rounds_limit_paths")
    if not cut:
        return ""
    return (
        f'<p class="warn">The engine\u2019s round limit was hit on {cut:,} of {sc["paths"]:,} '
        "paths: their cascades were cut short within a step, so liquidations (and possibly "
        "the shortfall) on those paths may be understated. Raise the engine's round_limit "
        "to check.</p>"
    )


def _stress_risk_block(sc: Mapping[str, Any]) -> str:
    """A deterministic stress is one path: its shortfall is VaR and ES at every level."""
    d, liq = sc["distribution"], sc["liquidated"]
    n_liq = liq.get("mean_liquidations")
    cards = (
        f'<div class="headline">'
        f'<div class="card es"><div class="v">{_e(_usd(d["max_usd"]))}</div>'
        f'<div class="l">shortfall (bad debt) at the horizon</div></div>'
        f'<div class="card"><div class="v">{_e(_usd(liq["max_usd"]))}</div>'
        f'<div class="l">collateral liquidated'
        + (f", {_e(_plural(round(n_liq), 'liquidation'))}" if n_liq is not None else "")
        + "</div></div></div>"
    )
    return (
        cards
        + _round_limit_warning(sc)
        + '<p class="note">A deterministic stress: one path, so VaR and ES at every level '
        "equal its shortfall, with no sampling interval.</p>"
    )


def _comet_text(sc: Mapping[str, Any]) -> str:
    """A Compound V3 market's reserves and reserve drawdown (``summary.json["comet"]``)."""
    comet = sc.get("comet")
    if not isinstance(comet, Mapping):
        return ""
    dd = comet.get("drawdown") or {}
    base = comet.get("base_symbol") or "base"
    reserves = _finite(comet.get("reserves"))
    target = _finite(comet.get("target_reserves"))
    held = (
        f"reserves {reserves:,.0f} {base} at the snapshot (target {target:,.0f})"
        if reserves is not None and target is not None
        else "reserves not recorded"
    )
    return (
        '<p class="note">Compound V3 market: absorbed accounts\u2019 collateral is sold at the '
        "store front while reserves are below target, and the reserves absorb what it does not "
        f"cover. Shortfall is how far the reserves end below zero; {_e(held)}; P(reserves &lt; 0) "
        f"{_e(_pct(_finite(comet.get('p_reserves_below_zero')) or 0.0, 2))}. Absorbed "
        "collateral still for sale at the horizon (the store front closed, or no purchase "
        "paid for its gas and slippage) is not part of the reserves; its mean value: "
        f"{_e(_usd(comet.get('unsold_collateral_usd_mean')))}.</p>"
        + _table(
            [
                ("reserve drawdown", False),
                ("VaR", True),
                ("ES", True),
                ("ES interval", True),
                ("mean", True),
            ],
            [
                [
                    _e(_level(_finite(dd.get("alpha")) or sc["alpha"])),
                    _e(_usd(dd.get("var_usd"))),
                    _e(_usd(dd.get("es_usd"))),
                    _e(_ci(dd.get("es_ci_usd"))),
                    _e(_usd(dd.get("mean_usd"))),
                ]
            ],
        )
    )


def _risk_block(sc: Mapping[str, Any]) -> str:
    if sc["paths"] == 1:
        return _stress_risk_block(sc)
    d = sc["distribution"]
    alpha = sc["alpha"]
    ci = _ci_name(sc)
    cards = (
        f'<div class="headline">'
        f'<div class="card es"><div class="v">{_e(_usd(sc["es_usd"]))}</div>'
        f'<div class="l">ES at {_e(_level(alpha))}; {_e(ci)} {_e(_ci(sc["es_ci_usd"]))}</div></div>'
        f'<div class="card var"><div class="v">{_e(_usd(sc["var_usd"]))}</div>'
        f'<div class="l">VaR at {_e(_level(alpha))}</div></div>'
        f'<div class="card"><div class="v">{_e(_pct(d["p_shortfall_positive"], 2))}</div>'
        f'<div class="l">P(shortfall &gt; 0), {d["n_positive"]:,} of {d["n_paths"]:,} paths</div></div>'
        f'<div class="card"><div class="v">{_e(_usd(d["mean_usd"]))}</div>'
        f'<div class="l">mean shortfall; max {_e(_usd(d["max_usd"]))}</div></div>'
        "</div>"
    )
    rows = [
        [
            _e(_level(lv["alpha"])),
            _e(_usd(lv["var_usd"])),
            _e(_ci(lv["var_ci_usd"])),
            _e(_usd(lv["es_usd"])),
            _e(_ci(lv["es_ci_usd"])),
        ]
        for lv in sc["levels"]
    ]
    table = _table(
        [
            ("confidence", False),
            ("VaR", True),
            (f"VaR {ci}", True),
            ("ES", True),
            (f"ES {ci}", True),
        ],
        rows,
    )
    note = ""
    if d["p_shortfall_positive"] < 1 - alpha:
        note = (
            f'<p class="note">Fewer than {_e(_pct(1 - alpha))} of paths end with bad debt, so VaR at '
            f"{_e(_level(alpha))} is $0 while ES, the mean of the worst {_e(_pct(1 - alpha))} of "
            "outcomes, still counts the paths that do.</p>"
        )
    boot = sc.get("n_boot")
    how = (
        f"{_e(ci)}: percentile bootstrap over the paths"
        + (f" ({int(boot):,} resamples)" if isinstance(boot, int | float) else "")
        if sc.get("ci_level") is not None
        else "intervals are bootstrap confidence intervals from the simulation"
    )
    return (
        cards
        + table
        + note
        + _comet_text(sc)
        + _round_limit_warning(sc)
        + _liquidated_text(sc)
        + f'<p class="note">{_e(_plural(sc["paths"], "path"))}; {how} (n/a where the results '
        "do not carry one).</p>"
    )


def _distribution_block(sc: Mapping[str, Any]) -> str:
    d = sc["distribution"]
    if d["n_paths"] == 1:
        return (
            f'<p class="note">A single deterministic path: its shortfall is '
            f"{_e(_usd(d['max_usd']))}; there is no distribution to draw.</p>"
        )
    p = d["p_shortfall_positive"]
    lead = (
        f"<p>P(shortfall &gt; 0) = <b>{_e(_pct(p, 2))}</b>: {d['n_positive']:,} of "
        f"{d['n_paths']:,} paths end with bad debt"
    )
    if 0 < p < 1:
        lead += f"; the other {_e(_pct(1 - p, 2))} end with none and are left out of the plots"
    lead += ".</p>"
    fig = _distribution_figure(sc)
    if fig is None:
        return (
            lead
            + '<p class="note">No path produced a shortfall: there is no distribution to draw.</p>'
        )
    q = d["quantiles_usd"]
    quantiles = _table(
        [("quantile", False), *[(f"{_level(float(k))}", True) for k in q]],
        [["shortfall", *[_e(_usd(v)) for v in q.values()]]],
    )
    return lead + fig + quantiles


def _worst_move_html(sc: Mapping[str, Any]) -> str:
    wm = sc["worst_move"]
    sym = wm["worst_symbol"]
    if sym is None:
        return "no listed asset falls" if wm["assets"] else "n/a"
    a = wm["assets"][sym]
    out = f"{_e(sym)} {_e(_pct(a['tail']))}"
    if a["min"] < a["tail"]:
        out += f'<br><span class="note">min {_e(_pct(a["min"]))}</span>'
    return out


def _section_scenarios(scenarios: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for sc in scenarios:
        d, liq = sc["distribution"], sc["liquidated"]
        rows.append(
            [
                _e(sc["scenario"]),
                _e(f"{sc['paths']:,}"),
                _e(_usd(sc["var_usd"])),
                _e(_usd(sc["es_usd"]))
                + (
                    f'<br><span class="note">{_e(_ci(sc["es_ci_usd"]))}</span>'
                    if sc["paths"] > 1
                    else '<br><span class="note">one path</span>'
                ),
                _e(_pct(d["p_shortfall_positive"], 2)),
                _e(_usd(d["max_usd"])),
                _e(_usd(liq["quantiles_usd"].get("0.5"))),
                _e(_usd(liq["max_usd"])),
                _worst_move_html(sc),
            ]
        )
    table = _table(
        [
            ("scenario", False),
            ("paths", True),
            ("VaR (α)", True),
            ("ES (α)", True),
            ("P(shortfall > 0)", True),
            ("worst shortfall", True),
            ("liquidated, median", True),
            ("liquidated, worst", True),
            ("worst asset move", False),
        ],
        rows,
        cls="scenarios",
    )
    alphas = sorted({_level(sc["alpha"]) for sc in scenarios})
    note = (
        f'<p class="note">α = {_e(", ".join(alphas))}. Worst asset move: the asset whose worst '
        "price move along a path is most negative at the (1 − α) tail across paths, with the "
        "most extreme path below it; a one-path stress shows its own move. Moves are of the "
        "market price, including the impact of liquidation sales.</p>"
    )
    per_asset = _per_scenario(scenarios, _moves_table, section="moves")
    if len(scenarios) == 1:
        lead = (
            '<p class="note">One scenario in this report; pass several results directories '
            "(e.g. the named historical stresses) to compare them side by side.</p>"
        )
    else:
        lead = f"<p>{len(scenarios)} scenarios on the same book.</p>"
    return (
        f'<section id="scenarios"><h2>Scenarios side by side</h2>{lead}{table}{note}'
        f"{_scenarios_figure(scenarios)}<h3>Worst price move per asset</h3>{per_asset}</section>"
    )


def _moves_table(sc: Mapping[str, Any]) -> str:
    assets = sc["worst_move"]["assets"]
    if not assets:
        return '<p class="note">The results carry no per-asset price moves.</p>'
    tail = _level(sc["worst_move"]["tail_level"])
    rows = [
        [_e(sym), _e(_pct(a["median"])), _e(_pct(a["tail"])), _e(_pct(a["min"]))]
        for sym, a in sorted(assets.items(), key=lambda kv: kv[1]["tail"])
    ]
    return _table(
        [("asset", False), ("median path", True), (f"{tail} tail", True), ("most extreme", True)],
        rows,
    )


def _cascade_block(sc: Mapping[str, Any]) -> str:
    if not sc["cascade"]:
        return '<p class="note">These results carry no cascade timeline (timeline.parquet).</p>'
    if _cascade_is_still(sc):
        return (
            '<p class="note">No price of this book\u2019s assets moves on the traced paths, '
            "nothing is liquidated and no shortfall arises: the scenario shocks none of the "
            "assets this market lists (see the worst price moves above), so there is no "
            "cascade to draw.</p>"
        )
    fig = _cascade_figure(sc)
    rows = []
    for label, name in _cascade_columns(sc):
        series = sc["cascade"][label]
        liq = series.get("liquidated_usd_cum") or [None]
        short = series.get("shortfall_usd") or [None]
        rows.append(
            [
                _e(name),
                _e(series.get("path")),
                _e(_usd(liq[-1])),
                _e(_usd(short[-1])),
            ]
        )
    table = _table(
        [
            ("path", False),
            ("index", True),
            ("liquidated at horizon", True),
            ("shortfall at horizon", True),
        ],
        rows,
    )
    which = (
        "the stress path"
        if sc["paths"] == 1
        else "the median path, the path at VaR and the worst path (by shortfall; a path that "
        "is two of them is drawn once)"
    )
    return (
        (fig or "")
        + table
        + '<p class="note">Market prices (top) relative to the snapshot, liquidated volume '
        "so far (middle) and the shortfall, the debt no collateral covers (bottom), step by "
        f"step, for {which}.</p>"
    )


def _contributions_block(sc: Mapping[str, Any]) -> str:
    out = []
    acc = sc["top_accounts"]
    if acc is None:
        out.append('<p class="note">No per-account contributions in these results.</p>')
    else:
        rows = [
            [
                str(i + 1),
                _addr(r["account"]),
                _e(_usd(r["es_contribution_usd"])),
                _e(_share(r["share"])),
            ]
            for i, r in enumerate(acc["rows"])
        ]
        out.append(
            f"<h3>Top {len(acc['rows'])} accounts</h3>"
            f'<p class="note">{acc["n_nonzero"]:,} of {acc["n"]:,} accounts contribute; '
            f"contributions sum to {_e(_usd(acc['total_usd']))} (ES {_e(_usd(sc['es_usd']))}).</p>"
            + _table(
                [("#", True), ("account", False), ("ES contribution", True), ("share of ES", True)],
                rows,
            )
        )
    ast = sc["top_assets"]
    if ast is None:
        out.append('<p class="note">No per-asset contributions in these results.</p>')
    else:
        rows = [
            [
                _e(r.get("symbol", "")),
                _addr(r["asset"]),
                _e(_usd(r["es_contribution_usd"])),
                _e(_share(r["share"])),
            ]
            for r in ast["rows"]
        ]
        out.append(
            "<h3>Assets (the debt reserve left unpaid)</h3>"
            + _table(
                [
                    ("symbol", False),
                    ("asset", False),
                    ("ES contribution", True),
                    ("share of ES", True),
                ],
                rows,
            )
        )
    return "".join(out)


def _reproduce_block(sc: Mapping[str, Any]) -> str:
    r = sc["reproduce"]

    def code(value: Any) -> str:
        return f"<code>{_e(value)}</code>"

    versions = r.get("versions") or {}
    pairs = [
        ("scenario", _e(r["scenario"])),
        *([("scenario file", code(r["scenario_source"]))] if r["scenario_source"] else []),
        *([("scenario SHA-256", code(r["scenario_sha256"]))] if r.get("scenario_sha256") else []),
        *(
            [("scenario data SHA-256", code(r["scenario_data_sha256"]))]
            if r.get("scenario_data_sha256")
            else []
        ),
        *([("snapshot SHA-256", code(r["snapshot_sha256"]))] if r.get("snapshot_sha256") else []),
        ("paths", _e(r["paths"])),
        ("seed", _e(r["seed"])),
        ("alpha", _e(r["alpha"])),
        *(
            [
                (
                    "intervals",
                    _e(f"{_level(r['ci_level'])} percentile bootstrap, {r['n_boot']} resamples"),
                )
            ]
            if r.get("ci_level") is not None and r.get("n_boot") is not None
            else []
        ),
        ("software version", _e(r["software_version"] or "n/a")),
        (
            "package versions",
            _e(", ".join(f"{k} {v}" for k, v in versions.items()) if versions else "not recorded"),
        ),
        *(
            [
                (
                    "executor",
                    _e(r["executor"])
                    + (f", {_e(r['chunk_paths'])} paths per chunk" if r.get("chunk_paths") else "")
                    + '<span class="note"> (the numbers do not depend on it)</span>',
                )
            ]
            if r.get("executor")
            else []
        ),
        ("runtime", _e(f"{r['runtime_s']:.2f} s" if r["runtime_s"] is not None else "n/a")),
        ("results directory", code(r["results_dir"])),
    ]
    engine = r["engine"] or {}
    engine_rows = [[_e(k), f"<code>{_e(json.dumps(v))}</code>"] for k, v in sorted(engine.items())]
    how = "recorded by simulate" if r["command_recorded"] else "reconstructed from summary.json"
    return (
        _kv(pairs)
        + f'<h3>Command</h3><p class="note">{_e(how)}</p><pre>{_e(r["command"])}</pre>'
        + "<h3>Engine configuration</h3>"
        + (
            _table([("parameter", False), ("value", False)], engine_rows)
            if engine_rows
            else '<p class="note">not recorded</p>'
        )
        + _other_fields(r.get("other") or {})
    )


def _other_fields(other: Mapping[str, Any]) -> str:
    """Everything else summary.json records, so nothing it carries is hidden."""
    if not other:
        return ""
    rows = [
        [_e(k), f"<code>{_e(json.dumps(v, separators=(', ', ': ')))}</code>"]
        for k, v in sorted(other.items())
    ]
    return "<h3>Also recorded</h3>" + _table([("field", False), ("value", False)], rows)


def render_html(report: Mapping[str, Any]) -> str:
    """One self-contained HTML page for a ``build_report`` result."""
    if not report.get("scenarios"):
        return _render_backtest_page(report)
    scenarios = report["scenarios"]
    primary = scenarios[0]
    snap = report["snapshot"]
    where = " · ".join(
        x
        for x in (
            snap.get("protocol"),
            snap.get("chain_name")
            or (f"chain {snap['chain_id']}" if snap.get("chain_id") else None),
            f"block {snap['block_number']:,}"
            if isinstance(snap.get("block_number"), int)
            else None,
            snap.get("time_utc"),
        )
        if x
    )
    title = f"Shortfall risk report: {primary['scenario']}" + (f" ({where})" if where else "")
    toc = "".join(
        f'<a href="#{s}">{_e(t)}</a>'
        for s, t in zip(
            SECTIONS,
            (
                "Snapshot",
                "VaR & ES",
                "Distribution",
                "Scenarios",
                "Cascades",
                "Contributions",
                "Reproduce",
            ),
            strict=True,
        )
    )
    head = (
        f'<header class="top"><h1>Collateral shortfall risk report</h1>'
        f'<p class="lead">{_e(where or "snapshot metadata not recorded")} · scenario '
        f"<b>{_e(primary['scenario'])}</b>"
        + (f" and {len(scenarios) - 1} more" if len(scenarios) > 1 else "")
        + f'</p><nav class="toc">{toc}</nav></header>'
    )
    sections = [
        head,
        _section_snapshot(report),
        '<section id="risk"><h2>Value at Risk and Expected Shortfall of bad debt</h2>'
        + _per_scenario(scenarios, _risk_block, section="risk")
        + "</section>",
        '<section id="distribution"><h2>Shortfall distribution</h2>'
        + _per_scenario(scenarios, _distribution_block, section="distribution")
        + "</section>",
        _section_scenarios(scenarios),
        '<section id="cascade"><h2>Liquidation cascades over time</h2>'
        + _per_scenario(scenarios, _cascade_block, section="cascade")
        + "</section>",
        '<section id="contributions"><h2>Contributions to ES</h2>'
        '<p class="note">Euler allocation: each account’s (asset’s) expected shortfall in the '
        "tail scenarios that make up ES; they add up to ES.</p>"
        + _per_scenario(scenarios, _contributions_block, section="contributions")
        + "</section>",
        '<section id="reproduce"><h2>Reproduce</h2>'
        + (
            f"<p>This report: <code>{_e(report['command'])}</code></p>"
            if report.get("command")
            else ""
        )
        + _per_scenario(scenarios, _reproduce_block, section="reproduce")
        + "</section>",
        _section_sweep(report.get("sweeps") or []),
        _section_backtest(report.get("backtests") or []),
        f"<footer>Generated {_e(report['generated_at'])} by shortfall {_e(report['software_version'])}; "
        f"report format {_e(report['report_format'])}. Self-contained: no network resources.</footer>",
    ]
    return _TEMPLATE.substitute(
        version=_e(report["software_version"]), title=_e(title), body="\n".join(sections)
    )


def make_report(
    results_dirs: Sequence[str | Path],
    *,
    fmt: str = "html",
    command: str | Sequence[str] | None = None,
    top_n: int = 20,
) -> str:
    """Read ``results_dirs`` and return the report text in ``fmt`` (``html`` or ``json``)."""
    if fmt not in ("html", "json"):
        raise ResultsError(f"format {fmt!r}; expected 'html' or 'json'")
    report = build_report(results_dirs, command=command, top_n=top_n)
    return render_html(report) if fmt == "html" else render_json(report)


# --------------------------------------------------------------------------------------
# Backtests (directories written by `shortfall backtest`)
# --------------------------------------------------------------------------------------


def _is_backtest(item: Any) -> bool:
    from simulator.backtest import is_backtest_dir

    return isinstance(item, str | Path) and is_backtest_dir(item)


def _backtest(path: str | Path) -> dict[str, Any]:
    """A backtest directory as report data: its summary, tests and forecast series."""
    from simulator.backtest import load_backtest
    from simulator.errors import InputError

    try:
        summary, frame = load_backtest(path)
    except InputError as exc:
        raise ResultsError(str(exc)) from None
    series = []
    for (model, alpha), g in frame.groupby(["model", "alpha"], sort=False):
        g = g.sort_values("date")
        series.append(
            {
                "model": str(model),
                "alpha": float(alpha),
                "dates": [str(d)[:10] for d in g["date"].to_numpy().astype("datetime64[D]")],
                "var": g["var"].to_numpy(np.float64),
                "es": g["es"].to_numpy(np.float64),
                "realised": g["realised"].to_numpy(np.float64),
                "exception": g["exception"].to_numpy(bool),
            }
        )
    return {"results_dir": str(path), "summary": summary, "series": series}


def _backtest_report(
    backtests: list[dict[str, Any]], command: Any, generated_at: dt.datetime | None
) -> dict[str, Any]:
    if isinstance(command, str) or command is None:
        cmd = command
    else:
        cmd = shlex.join(str(a) for a in command)
    when = generated_at or dt.datetime.now(tz=dt.UTC)
    report = {
        "report_format": REPORT_FORMAT_VERSION,
        "generated_at": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "software_version": __version__,
        "command": cmd,
        "scenarios": [],
        "backtests": backtests,
    }
    return _jsonable(report)  # type: ignore[no-any-return]


def _backtest_figure(bt: Mapping[str, Any]) -> str | None:
    summary = bt["summary"]
    scen = summary.get("scenario")
    series = [s for s in bt["series"] if s["model"] == scen] or bt["series"]
    if not series:
        return None
    n = len(series)
    fig = _figure(9.0, 2.6 * n)
    for k, s in enumerate(series):
        ax = fig.add_subplot(n, 1, k + 1)
        dates = np.array(s["dates"], dtype="datetime64[D]")
        realised = np.array(s["realised"], dtype=np.float64)
        var = np.array(s["var"], dtype=np.float64)
        exc = np.array(s["exception"], dtype=bool)
        ax.plot(dates, realised, lw=0.5, color="#888888", label="realised loss")
        ax.plot(dates, var, lw=0.9, color="#1f5fa8", label=f"VaR {s['alpha']:.1%}")
        ax.plot(dates, s["es"], lw=0.7, color="#c77c0e", label=f"ES {s['alpha']:.1%}")
        ax.scatter(dates[exc], realised[exc], s=10, color="#c0392b", zorder=3,
                   label=f"exceptions ({int(exc.sum())})")  # fmt: skip
        ax.set_title(f"{s['model']} at {s['alpha']:.1%}", fontsize=9)
        ax.set_ylabel("loss, USD", fontsize=7)
        ax.legend(fontsize=7, loc="upper left", ncols=4)
        ax.tick_params(labelsize=7)
    return _png(fig, f"forecast VaR and ES against realised loss, {scen}")


def _backtest_block(bt: Mapping[str, Any]) -> str:
    s = bt["summary"]
    facts = _kv(
        [
            ("scenario", _e(s.get("scenario"))),
            ("position", f"<code>{_e(s.get('position'))}</code>"),
            ("window", f"{_e(s.get('from'))} .. {_e(s.get('to'))}"),
            ("forecasts", f"{_e(s.get('n_forecasts'))} × {_e(s.get('paths'))} paths"),
            (
                "calibration",
                f"{_e(s.get('calibration'))}, refit every {_e(s.get('refit_days'))} days",
            ),
            ("command", f"<code>{_e(s.get('command', ''))}</code>"),
        ]
    )
    head = [
        ("model", False), ("level", True), ("exceptions", True), ("expected", True),
        ("Kupiec p", True), ("Christoffersen ind. p", True), ("cond. coverage p", True),
        ("Z2", True), ("Z2 p", True), ("Z2 5% crit.", True), ("FRTB last / worst", False),
        ("FZ0", True),
    ]  # fmt: skip

    def num(v: Any, fmt: str) -> str:
        return _e(format(v, fmt)) if isinstance(v, int | float) else "n/a"

    rows = [
        [
            _e(t["model"]), _e(_level(t["alpha"])), _e(t["exceptions"]), num(t["expected"], ".1f"),
            num(t["kupiec_p"], ".3g"), num(t["christoffersen_ind_p"], ".3g"),
            num(t["christoffersen_cc_p"], ".3g"), num(t["z2"], ".3f"), num(t["z2_p"], ".3g"),
            num(t["z2_critical"], ".3f"), _e(f"{t['traffic_light']} / {t['traffic_worst']}"),
            num(t["fz0"], ".4f"),
        ]
        for t in s.get("tests", [])
    ]  # fmt: skip
    cmp_rows = []
    for t in s.get("tests", []):
        for base, d in (t.get("fz0_vs") or {}).items():
            cmp_rows.append(
                [_e(t["model"]), _e(_level(t["alpha"])), _e(base), num(d.get("diff"), "+.4f"),
                 num(d.get("dm_t"), ".2f"), num(d.get("dm_p"), ".3g"), _e(d.get("days"))]
            )  # fmt: skip
    fig = _backtest_figure(bt)
    return (
        facts
        + (fig or "")
        + "<h3>Tests</h3>"
        + _table(head, rows)
        + '<p class="note">Expected exceptions are the sum of each day\u2019s forecast '
        "P(L &gt; VaR) (below n(1 - alpha) when VaR is an atom, as for bad debt). Z2 p-values "
        "and critical values are simulated from each day\u2019s forecast for this sample\u2019s "
        "size. FRTB: Basel traffic light of the last and of the worst 250-day window.</p>"
        + (
            "<h3>FZ0 against the baselines</h3>"
            + _table(
                [
                    ("model", False),
                    ("level", True),
                    ("baseline", False),
                    ("FZ0 difference", True),
                    ("DM t", True),
                    ("DM p", True),
                    ("days", True),
                ],
                cmp_rows,
            )
            + '<p class="note">Negative: the scenario scores better. Diebold-Mariano t with '
            "Newey-West (5 lags).</p>"
            if cmp_rows
            else ""
        )
    )


def _section_backtest(backtests: Sequence[Mapping[str, Any]]) -> str:
    if not backtests:
        return ""
    parts = []
    for i, bt in enumerate(backtests):
        inner = _backtest_block(bt)
        title = f"{_e(bt['summary'].get('scenario'))} on {_e(bt['summary'].get('position'))}"
        opened = " open" if i == 0 else ""
        parts.append(f"<details{opened}><summary>{title}</summary>{inner}</details>")
    return (
        '<section id="backtest"><h2>Backtest of the forecasts</h2>' + "".join(parts) + "</section>"
    )


def _render_backtest_page(report: Mapping[str, Any]) -> str:
    backtests = report.get("backtests") or []
    first = backtests[0]["summary"] if backtests else {}
    title = f"Shortfall backtest: {first.get('scenario', '')} on {first.get('position', '')}"
    body = [
        '<header class="top"><h1>Backtest of VaR / ES forecasts</h1>'
        f'<p class="lead">{_e(title)}</p></header>',
        _section_backtest(backtests),
        (
            f"<p>This report: <code>{_e(report['command'])}</code></p>"
            if report.get("command")
            else ""
        ),
        f"<footer>Generated {_e(report['generated_at'])} by shortfall "
        f"{_e(report['software_version'])}; report format {_e(report['report_format'])}. "
        "Self-contained: no network resources.</footer>",
    ]
    return _TEMPLATE.substitute(
        version=_e(report["software_version"]), title=_e(title), body="\n".join(body)
    )


# --------------------------------------------------------------------------------------
# Parameter sweeps (directories written by `shortfall sweep`)
# --------------------------------------------------------------------------------------


#: How the sweep section names its intervals' coverage (``simulator.sweep.CI_LEVEL``).
CI_TEXT = "95%"


def _is_sweep(item: Any) -> bool:
    from simulator.sweep import is_sweep_dir

    return isinstance(item, str | Path) and is_sweep_dir(item)


def _sweep(path: str | Path) -> dict[str, Any]:
    """A sweep directory as report data: its settings, recommendations and point table."""
    from simulator.sweep import load_sweep

    summary, table = load_sweep(path)
    summary = {k: v for k, v in summary.items() if k != "table"}
    return {"results_dir": str(path), "summary": summary, "points": table.to_dict("records")}


def _sweep_base_results(sweeps: Sequence[Mapping[str, Any]]) -> list[Results]:
    """The first sweep's base point, as the report's primary results (snapshot, risk...)."""
    sw = sweeps[0]
    base = next(p for p in sw["points"] if p["is_base"])
    return [read_results(Path(sw["results_dir"]) / str(base["results_dir"]))]


def _sweep_curve_figure(sw: Mapping[str, Any]) -> str | None:
    """ES against the one swept parameter, intervals shaded, target and recommendation
    marked; below it the paired difference to the base with its interval (and the
    unpaired one, lighter)."""
    s = sw["summary"]
    name = s["params"][0]["name"]
    pts = sorted(sw["points"], key=lambda p: p[name])
    if len(pts) < 2:
        return None
    x = np.array([p[name] for p in pts], dtype=np.float64)

    def col(key: str) -> FloatArray:
        return np.array([p[key] for p in pts], dtype=np.float64)

    fig = _figure(8.0, 5.6)
    ax, dx = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    ax.fill_between(x, col("es_low_usd"), col("es_high_usd"), color=_COLORS["es"], alpha=0.18,
                    lw=0, label=f"ES {CI_TEXT} interval")  # fmt: skip
    ax.plot(x, col("es_usd"), "o-", color=_COLORS["es"], ms=4, lw=1.4,
            label=f"ES {_level(s['alpha'])}")  # fmt: skip
    ax.plot(x, col("var_usd"), "s--", color=_COLORS["var"], ms=3, lw=0.9,
            label=f"VaR {_level(s['alpha'])}")  # fmt: skip
    base = [p for p in pts if p["is_base"]]
    if base:
        ax.plot([base[0][name]], [base[0]["es_usd"]], "D", color="#000000", ms=6, zorder=4,
                label="base (snapshot)")  # fmt: skip
    target = s.get("target_es_usd")
    if target is not None:
        ax.axhline(target, color="#555555", lw=1.0, ls=":", label="target ES")
        for rec in s.get("recommendations") or []:
            if rec.get("fixed") or rec.get("boundary") is None:
                continue
            lo, hi = rec["boundary_ci"]
            ax.axvspan(lo, hi, color="#4d9221", alpha=0.12, lw=0, label="boundary interval")
            ax.axvline(rec["recommended"], color="#4d9221", lw=1.6, label="recommended")
    ax.set_ylabel("USD", fontsize=8)
    ax.yaxis.set_major_formatter(_usd_formatter())
    ax.legend(fontsize=7, loc="best", ncols=2)
    ax.set_title(f"ES of bad debt against {name} ({s['scenario']}, {s['paths']:,} common paths)",
                 fontsize=9)  # fmt: skip
    dx.fill_between(x, col("es_diff_unpaired_low_usd"), col("es_diff_unpaired_high_usd"),
                    color="#999999", alpha=0.2, lw=0, label="unpaired interval")  # fmt: skip
    dx.fill_between(x, col("es_diff_low_usd"), col("es_diff_high_usd"), color=_COLORS["es"],
                    alpha=0.35, lw=0, label="paired interval (common paths)")  # fmt: skip
    dx.plot(x, col("es_diff_usd"), "o-", color=_COLORS["es"], ms=3, lw=1.0)
    dx.axhline(0.0, color="#333333", lw=0.6)
    dx.set_ylabel("ES - base, USD", fontsize=8)
    dx.set_xlabel(name, fontsize=8)
    dx.yaxis.set_major_formatter(_usd_formatter())
    dx.legend(fontsize=7, loc="best")
    for a in (ax, dx):
        a.tick_params(labelsize=7)
    return _png(fig, f"ES against {name} with intervals")


def _sweep_heatmap_figure(sw: Mapping[str, Any]) -> str | None:
    """ES over a two-parameter grid; cells meeting the target outlined, the base marked."""
    s = sw["summary"]
    n1, n2 = (p["name"] for p in s["params"][:2])
    pts = [p for p in sw["points"] if p["results_dir"] and p["point"] != "base"]
    v1 = sorted({p[n1] for p in pts})
    v2 = sorted({p[n2] for p in pts})
    grid = np.full((len(v2), len(v1)), np.nan)
    for p in pts:
        grid[v2.index(p[n2]), v1.index(p[n1])] = p["es_usd"]
    fig = _figure(7.5, 1.2 + 0.45 * len(v2))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="Reds")
    ax.set_xticks(range(len(v1)), [f"{v:g}" for v in v1], fontsize=7)
    ax.set_yticks(range(len(v2)), [f"{v:g}" for v in v2], fontsize=7)
    ax.set_xlabel(n1, fontsize=8)
    ax.set_ylabel(n2, fontsize=8)
    target = s.get("target_es_usd")
    top = np.nanmax(grid) if np.isfinite(grid).any() else 0.0
    for i in range(len(v2)):
        for j in range(len(v1)):
            if not np.isfinite(grid[i, j]):
                continue
            dark = grid[i, j] > 0.6 * top
            ax.text(j, i, _usd_short(grid[i, j]), ha="center", va="center", fontsize=6,
                    color="white" if dark else "black")  # fmt: skip
            if target is not None and grid[i, j] <= target:
                ax.add_patch(_rectangle(j, i, "#4d9221"))
    for p in sw["points"]:
        if p["is_base"] and p[n1] in v1 and p[n2] in v2:
            ax.add_patch(_rectangle(v1.index(p[n1]), v2.index(p[n2]), "#000000"))
    cb = fig.colorbar(im, ax=ax)
    cb.ax.tick_params(labelsize=7)
    cb.ax.yaxis.set_major_formatter(_usd_formatter())
    ax.set_title(f"ES {_level(s['alpha'])} over the grid (black: base"
                 + (", green: meets the target)" if target is not None else ")"), fontsize=9)  # fmt: skip
    return _png(fig, f"ES heatmap over {n1} and {n2}")


def _rectangle(j: int, i: int, color: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((j - 0.46, i - 0.46), 0.92, 0.92, fill=False, ec=color, lw=1.6)


def _sweep_block(sw: Mapping[str, Any]) -> str:
    s = sw["summary"]
    names = [p["name"] for p in s["params"]]
    facts = _kv(
        [
            ("scenario", _e(s.get("scenario"))),
            (
                "paths",
                f"{_e(s.get('paths'))} per point, common to every point (seed {_e(s.get('seed'))})",
            ),
            ("points", _e(s.get("points"))),
            (
                "parameters",
                "; ".join(
                    f"<code>{_e(p['name'])}</code> {_e(', '.join(f'{v:g}' for v in p['values']))} "
                    f"(base {_e(format(p['base'], 'g'))} {_e(p['unit'])})"
                    for p in s["params"]
                ),
            ),
            ("command", f"<code>{_e(s.get('command', ''))}</code>"),
        ]
    )
    recs = []
    for rec in s.get("recommendations") or []:
        fixed = ", ".join(f"{k}={v:g}" for k, v in rec["fixed"].items())
        recs.append(
            f"<p><b>Target ES {_e(_usd(rec['target_es_usd']))}</b> along "
            f"<code>{_e(rec['parameter'])}</code>{' at ' + _e(fixed) if fixed else ''}: "
            f"{_e(rec['text'])}.</p>"
        )
    fig = _sweep_curve_figure(sw) if len(names) == 1 else None
    if len(names) == 2:
        fig = _sweep_heatmap_figure(sw)
    head = [(n, True) for n in names] + [
        ("ES", True), (f"ES {CI_TEXT} CI", True), ("ES − base", True),
        ("paired CI", True), ("unpaired CI", True), ("VaR", True), ("LaR", True),
        ("P(shortfall > 0)", True), ("liquidatable at once (new)", True), ("notes", False),
    ]  # fmt: skip
    rows = [
        [_e(format(p[n], "g")) + (" <b>(base)</b>" if p["is_base"] and i == 0 else "")
         for i, n in enumerate(names)]
        + [
            _e(_usd(p["es_usd"])), _e(_ci([p["es_low_usd"], p["es_high_usd"]])),
            _e(_usd(p["es_diff_usd"])), _e(_ci([p["es_diff_low_usd"], p["es_diff_high_usd"]])),
            _e(_ci([p["es_diff_unpaired_low_usd"], p["es_diff_unpaired_high_usd"]])),
            _e(_usd(p["var_usd"])), _e(_usd(p["lar_usd"])), _e(_pct(p["p_shortfall"], 2)),
            _e(f"{p['liquidatable_now']:,} ({p['newly_liquidatable']:,})"), _e(p.get("notes", "")),
        ]
        for p in sw["points"]
    ]  # fmt: skip
    return (
        facts
        + "".join(recs)
        + (fig or "")
        + _table(head, rows)
        + '<p class="note">Every point runs the same paths, so the difference of ES to the '
        "base (the snapshot's own parameters) has a paired bootstrap interval (path indices "
        "resampled once for all points), far narrower than the unpaired one beside it. LaR: "
        "the alpha-quantile of liquidated volume per path. A changed LT leaves positions as "
        "they are: <i>liquidatable at once</i> counts accounts with HF &lt; 1 at the "
        "snapshot's prices (new: not so at the base). A cap rescales the accounts holding the "
        "asset to it, each account's HF unchanged. Each point's own results directory is "
        "under <code>points/</code>.</p>"
    )


def _section_sweep(sweeps: Sequence[Mapping[str, Any]]) -> str:
    if not sweeps:
        return ""
    parts = []
    for i, sw in enumerate(sweeps):
        names = ", ".join(p["name"] for p in sw["summary"]["params"])
        opened = " open" if i == 0 else ""
        parts.append(
            f'<details{opened}><summary>{_e(names)} <span class="note">'
            f"({_e(sw['results_dir'])})</span></summary>{_sweep_block(sw)}</details>"
        )
    return (
        '<section id="sweep"><h2>Parameter sweep: what-if and recommendation</h2>'
        + "".join(parts)
        + "</section>"
    )
