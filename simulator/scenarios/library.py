"""The scenario library: built-in TOML files in the ``scenarios`` package, and user files."""

from __future__ import annotations

import difflib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from simulator.errors import ScenarioError
from simulator.scenarios.model import Scenario, parse_scenario, read_toml

__all__ = ["DEFAULT_SCENARIO", "ScenarioInfo", "builtin_names", "list_scenarios", "load_scenario"]

#: The scenario ``simulate`` runs when none is named: one day, hourly, Monte Carlo.
DEFAULT_SCENARIO = "default"

_PACKAGE = "scenarios"


@dataclass(frozen=True, slots=True)
class ScenarioInfo:
    """One line of ``shortfall scenarios list``.

    Attributes:
        name: what to pass to ``--scenario``.
        kind: ``stress``, ``montecarlo`` or ``historical``.
        title: one-line title.
        description: what it represents.
        horizon_hours: length, hours.
        n_steps: number of steps.
        step_seconds: step length, seconds.
        default_paths: paths run by default.
    """

    name: str
    kind: str
    title: str
    description: str
    horizon_hours: float
    n_steps: int
    step_seconds: float
    default_paths: int


def _builtin_files() -> dict[str, Path]:
    root = importlib.resources.files(_PACKAGE)
    out: dict[str, Path] = {}
    for entry in root.iterdir():
        name = entry.name
        if name.endswith(".toml") and not name.startswith("_"):
            out[name[: -len(".toml")]] = Path(str(entry))
    return dict(sorted(out.items()))


def builtin_names() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return list(_builtin_files())


def load_scenario(name_or_path: str | Path, *, regime: str | None = None) -> Scenario:
    """Load a built-in scenario by name (``"black-thursday-2020"``) or a TOML file by path.

    Args:
        name_or_path: a built-in name, or a path to a ``.toml`` file (anything containing
            a path separator or ending in ``.toml`` is taken as a path). A suffix
            ``:REGIME`` selects a Monte Carlo calibration regime, so the switch also works
            from the command line: ``"default:stressed"``, ``"my.toml:stressed"``.
        regime: Monte Carlo only: the calibration regime to use instead of the file's
            ``regime`` (e.g. ``"stressed"``); overrides a ``:REGIME`` suffix.

    Returns:
        The scenario; with a regime other than the file's, its ``name`` is
        ``"NAME:REGIME"`` (what results record and what loads it again).

    Raises:
        ScenarioError: unknown name (with suggestions), missing file, a file that fails
            validation (naming the file and the field), or an unknown regime.
    """
    text = str(name_or_path)
    files = _builtin_files()
    if not isinstance(name_or_path, Path):
        head, sep, tail = text.rpartition(":")
        if (
            sep
            and head
            and tail
            and not any(c in tail for c in "/\\.")
            and (head in files or head.endswith(".toml"))
        ):
            text = head
            regime = tail if regime is None else regime
    is_path = isinstance(name_or_path, Path) or "/" in text or "\\" in text
    if text.endswith(".toml") and not is_path and not Path(text).exists() and text[:-5] in files:
        text = text[:-5]  # "default.toml" with no such local file: the built-in one
    elif text.endswith(".toml"):
        is_path = True
    if is_path:
        path = Path(text)
        if not path.is_file():
            raise ScenarioError(
                f"{path}: no such scenario file; `shortfall scenarios list` shows the built-in "
                "scenarios, which are loaded by name"
            )
        scenario = parse_scenario(read_toml(path), path.stem, str(path), base_dir=path.parent)
    elif text in files:
        path = files[text]
        scenario = parse_scenario(
            read_toml(path), text, f"scenarios/{path.name}", base_dir=path.parent
        )
    else:
        close = difflib.get_close_matches(text, list(files), n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ScenarioError(
            f"unknown scenario {text!r}; {hint}`shortfall scenarios list` shows the built-in "
            f"ones ({', '.join(files)}); a path to a .toml file also works"
        )
    return scenario if regime is None else scenario.with_regime(regime)


def list_scenarios() -> list[ScenarioInfo]:
    """The built-in scenarios, sorted by name."""
    out = []
    for name in _builtin_files():
        s = load_scenario(name)
        out.append(
            ScenarioInfo(
                name=s.name,
                kind=s.kind,
                title=s.title,
                description=s.description,
                horizon_hours=s.horizon_hours,
                n_steps=s.n_steps,
                step_seconds=s.step_seconds,
                default_paths=s.default_paths,
            )
        )
    return out
