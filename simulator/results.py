"""The results directory of ``shortfall simulate``: written atomically, loaded with validation.

Files (formats in the README):

* ``summary.json``: the run (scenario, paths, seed, alpha), headline ``var_usd``, ``es_usd``,
  ``es_ci_usd``, the VaR / ES table at 0.95 / 0.975 / 0.99 with bootstrap intervals,
  liquidated-volume quantiles, the snapshot's meta, runtime, engine settings and version.
* ``paths.parquet``: one row per path.
* ``contributions.parquet``: Euler contribution of every account to ES (sums to ES).
* ``asset_contributions.parquet``: the same per debt reserve.
* ``timeline.parquet``: per step of the median, VaR and worst paths: market prices,
  cumulative liquidated volume, mark-to-market shortfall.
* ``states.parquet`` (when recorded): per path and step the market price multiplier of every
  asset, the path's weight and shortfall (``simulator.states``; the keeper's
  ``--stress-from``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from simulator.atomic import (
    atomic_directory,
    atomic_write_json,
    replaceable_directory_problem,
    write_parquet,
)
from simulator.errors import ResultsError
from simulator.simulation import CI_LEVEL, N_BOOT, SimulationResult

__all__ = [
    "ASSET_CONTRIBUTION_COLUMNS",
    "CONTRIBUTION_COLUMNS",
    "PATH_COLUMNS",
    "RESULTS_FILES",
    "SUMMARY_KEYS",
    "TIMELINE_COLUMNS",
    "Results",
    "check_results_target",
    "load_results",
    "provenance",
    "save_results",
    "summary_dict",
]

SUMMARY_FILE = "summary.json"
PATHS_FILE = "paths.parquet"
CONTRIBUTIONS_FILE = "contributions.parquet"
ASSET_CONTRIBUTIONS_FILE = "asset_contributions.parquet"
TIMELINE_FILE = "timeline.parquet"
#: Optional: per path and step the market multipliers (``simulator.states``).
STATES_FILE = "states.parquet"
#: The files of a results directory, and the only ones it holds.
RESULTS_FILES: tuple[str, ...] = (
    SUMMARY_FILE,
    PATHS_FILE,
    CONTRIBUTIONS_FILE,
    ASSET_CONTRIBUTIONS_FILE,
    TIMELINE_FILE,
    STATES_FILE,
)

#: Keys every summary.json has.
SUMMARY_KEYS: tuple[str, ...] = (
    "scenario",
    "paths",
    "seed",
    "alpha",
    "var_usd",
    "es_usd",
    "es_ci_usd",
    "risk",
    "liquidated_usd",
    "symbols",
    "snapshot",
    "runtime_s",
    "engine",
    "software_version",
)
#: Fixed columns of paths.parquet (plus ``worst_move_<SYMBOL>`` per asset, ``weight`` if any,
#: ``reserve_drawdown_usd`` and ``unsold_collateral_usd`` for a Compound V3 market).
PATH_COLUMNS: tuple[str, ...] = (
    "path",
    "shortfall_usd",
    "liquidated_usd",
    "n_liquidations",
    "protocol_fee_usd",
    "deficit_usd",
    "rounds_limit_hits",
)
CONTRIBUTION_COLUMNS: tuple[str, ...] = ("account", "es_contribution_usd")
ASSET_CONTRIBUTION_COLUMNS: tuple[str, ...] = ("asset", "symbol", "es_contribution_usd")
#: Fixed columns of timeline.parquet (plus ``price_<SYMBOL>`` per asset).
TIMELINE_COLUMNS: tuple[str, ...] = (
    "label",
    "path",
    "step",
    "time_s",
    "liquidated_usd_cum",
    "shortfall_usd",
)
#: Packages whose version can change the numbers (random streams, float kernels, file I/O).
NUMERIC_PACKAGES: tuple[str, ...] = ("numpy", "numba", "scipy", "pandas", "pyarrow")


def summary_dict(result: SimulationResult) -> dict[str, Any]:
    """The content of ``summary.json`` (JSON-ready)."""
    out: dict[str, Any] = {
        "scenario": result.scenario,
        "scenario_kind": result.scenario_kind,
        "paths": result.n_paths,
        "seed": result.seed,
        "alpha": result.alpha,
        "var_usd": result.var_usd,
        "es_usd": result.es_usd,
        "es_ci_usd": list(result.es_ci_usd),
        "ci_level": CI_LEVEL,
        "n_boot": N_BOOT,
        "risk": [
            {
                "alpha": r.alpha,
                "var_usd": r.var_usd,
                "var_ci_usd": [r.var_low_usd, r.var_high_usd],
                "es_usd": r.es_usd,
                "es_ci_usd": [r.es_low_usd, r.es_high_usd],
            }
            for r in result.risk_table
        ],
        "liquidated_usd": dict(result.liquidated_quantiles),
        "n_liquidations_mean": float(result.n_liquidations.mean()),
        "protocol_fee_usd_mean": float(result.protocol_fee_usd.mean()),
        "deficit_usd_mean": float(result.deficit_usd.mean()),
        "rounds_limit_hits": result.rounds_limit_hits_total,
        "selected_paths": dict(result.selected_paths),
        "symbols": list(result.symbols),
        "step_seconds": result.step_seconds,
        "n_steps": result.n_steps,
        "snapshot": result.snapshot_meta,
        "runtime_s": result.runtime_s,
        "engine": result.config.to_dict(),
        "engine_widened_paths": result.reruns,
        "software_version": result.software_version,
    }
    comet = result.comet_summary()
    if comet is not None:
        out["comet"] = comet
    for key, value in result.extra.items():  # e.g. the CLI's command line and snapshot_dir
        out.setdefault(key, value)
    return out


def _sha256_files(files: list[Path], root: Path) -> str:
    """SHA-256 over the files' paths (relative to ``root``) and bytes, in sorted order."""
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(f.relative_to(root).as_posix().encode() + b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()


def _scenario_file(scenario: Any) -> Path | None:
    """The TOML file a loaded scenario came from (built-ins are recorded as
    ``scenarios/NAME.toml``, relative to the installed ``scenarios`` package)."""
    recorded = str(getattr(scenario, "file", "") or "")
    if not recorded:
        return None
    path = Path(recorded)
    if recorded.startswith("scenarios/") and not path.is_absolute():
        builtin = Path(str(importlib.resources.files("scenarios").joinpath(path.name)))
        if builtin.is_file():
            return builtin
    return path.resolve() if path.is_file() else None


def provenance(snapshot_dir: str | Path, scenario: Any) -> dict[str, Any]:
    """What pins a run's numbers besides its command line, for ``summary.json``.

    ``snapshot_sha256`` hashes the snapshot directory's files; ``scenario_file`` and
    ``scenario_sha256`` the scenario's TOML (and ``scenario_data_sha256`` a historical
    scenario's price CSV); ``versions`` are Python's and the numerical packages' versions.
    """
    root = Path(snapshot_dir)
    out: dict[str, Any] = {
        "snapshot_sha256": _sha256_files([f for f in root.iterdir() if f.is_file()], root)
    }
    toml = _scenario_file(scenario)
    if toml is not None:
        out["scenario_file"] = str(toml)
        out["scenario_sha256"] = _sha256_files([toml], toml.parent)
    csv = getattr(getattr(scenario, "spec", None), "csv", None)
    if isinstance(csv, str) and Path(csv).is_file():
        out["scenario_data_sha256"] = _sha256_files([Path(csv)], Path(csv).parent)
    versions = {"python": platform.python_version()}
    for name in NUMERIC_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    out["versions"] = versions
    return out


def check_results_target(path: str | Path) -> Path:
    """``path`` if results may be saved there, else ``ResultsError`` saying why not.

    Saving replaces the directory whole, so the target must be absent, an empty directory or
    an earlier results directory (only ``RESULTS_FILES`` in it), never a directory holding
    anything else (it would be deleted) or the current directory.
    """
    problem = replaceable_directory_problem(path, RESULTS_FILES, "results")
    if problem is not None:
        raise ResultsError(problem)
    return Path(path)


def save_results(result: SimulationResult, path: str | Path) -> Path:
    """Write the results directory atomically, replacing an earlier results directory there
    (``check_results_target``); returns its path."""
    check_results_target(path)
    paths = pd.DataFrame(
        {
            "path": range(result.n_paths),
            "shortfall_usd": result.shortfall_usd,
            "liquidated_usd": result.liquidated_usd,
            "n_liquidations": result.n_liquidations,
            "protocol_fee_usd": result.protocol_fee_usd,
            "deficit_usd": result.deficit_usd,
            "rounds_limit_hits": result.rounds_limit_hits,
        }
    )
    if result.weights is not None:
        paths["weight"] = result.weights
    if result.reserve_drawdown_usd is not None:
        paths["reserve_drawdown_usd"] = result.reserve_drawdown_usd
    if result.unsold_collateral_usd is not None:
        paths["unsold_collateral_usd"] = result.unsold_collateral_usd
    for j, sym in enumerate(result.symbols):
        paths[f"worst_move_{sym}"] = result.worst_move[:, j]
    order = (-result.account_contributions).argsort(kind="stable")
    contributions = pd.DataFrame(
        {
            "account": result.accounts[order].astype(object),
            "es_contribution_usd": result.account_contributions[order],
        }
    )
    with atomic_directory(path) as tmp:
        atomic_write_json(tmp / SUMMARY_FILE, summary_dict(result))
        write_parquet(paths, tmp / PATHS_FILE)
        write_parquet(contributions, tmp / CONTRIBUTIONS_FILE)
        write_parquet(result.asset_table(), tmp / ASSET_CONTRIBUTIONS_FILE)
        write_parquet(result.timeline, tmp / TIMELINE_FILE)
        if result.market_states is not None:
            from simulator.states import states_frame

            frame = states_frame(
                result.symbols, result.market_states, result.weights, result.shortfall_usd
            )
            write_parquet(frame, tmp / STATES_FILE)
    return Path(path)


@dataclass(frozen=True)
class Results:
    """A loaded results directory."""

    path: Path
    summary: dict[str, Any]
    paths: pd.DataFrame
    contributions: pd.DataFrame
    asset_contributions: pd.DataFrame
    timeline: pd.DataFrame

    @property
    def symbols(self) -> list[str]:
        return list(self.summary["symbols"])


def _read_parquet(root: Path, name: str, columns: tuple[str, ...]) -> pd.DataFrame:
    file = root / name
    if not file.is_file():
        raise ResultsError(f"{file}: missing; the results directory is incomplete")
    try:
        frame = pd.read_parquet(file, engine="pyarrow")
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise ResultsError(f"{file}: unreadable Parquet file ({exc})") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ResultsError(f"{file}: missing column(s) {missing}")
    return frame


def load_results(path: str | Path) -> Results:
    """Load and validate a results directory; errors name the missing file or field."""
    root = Path(path)
    if not root.is_dir():
        raise ResultsError(f"{root}: no such results directory (make one with shortfall simulate)")
    summary_file = root / SUMMARY_FILE
    if not summary_file.is_file():
        raise ResultsError(f"{summary_file}: missing; the results directory is incomplete")
    try:
        summary = json.loads(summary_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{summary_file}: not valid JSON ({exc})") from None
    if not isinstance(summary, dict):
        raise ResultsError(f"{summary_file}: expected a JSON object")
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise ResultsError(f"{summary_file}: missing key(s) {missing}")
    ci = summary["es_ci_usd"]
    if not (isinstance(ci, list) and len(ci) == 2):
        raise ResultsError(f"{summary_file}: 'es_ci_usd' = {ci!r}; expected [low, high]")
    symbols = [str(s) for s in summary["symbols"]]
    paths = _read_parquet(
        root, PATHS_FILE, PATH_COLUMNS + tuple(f"worst_move_{s}" for s in symbols)
    )
    if len(paths) != summary["paths"]:
        raise ResultsError(
            f"{root / PATHS_FILE}: {len(paths)} rows; summary.json says {summary['paths']} paths"
        )
    contributions = _read_parquet(root, CONTRIBUTIONS_FILE, CONTRIBUTION_COLUMNS)
    assets = _read_parquet(root, ASSET_CONTRIBUTIONS_FILE, ASSET_CONTRIBUTION_COLUMNS)
    timeline = _read_parquet(
        root, TIMELINE_FILE, TIMELINE_COLUMNS + tuple(f"price_{s}" for s in symbols)
    )
    return Results(root, summary, paths, contributions, assets, timeline)
