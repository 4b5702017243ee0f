"""Hypothesis fuzzing of the scenario loader: whatever the document, it either loads (and
then generates paths) or raises ScenarioError, never anything else."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import os
import tomllib
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simulator.errors import NumericalWarning, ScenarioError
from simulator.scenarios import load_scenario, parse_scenario
from simulator.scenarios.model import read_toml

REPO = Path(__file__).resolve().parents[1]
DOCS: dict[str, dict[str, Any]] = {}
for _name in ("default", "black-thursday-2020", "usdc-depeg-2023", "hypothetical-lst-depeg-10"):
    with (REPO / "scenarios" / f"{_name}.toml").open("rb") as _fh:
        DOCS[_name] = tomllib.load(_fh)

#: Examples per property: moderate by default (shared CI cores); raise it for a deeper run,
#: e.g. SHORTFALL_FUZZ_EXAMPLES=3000.
EXAMPLES = int(os.environ.get("SHORTFALL_FUZZ_EXAMPLES", "150"))
SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["ETH", "LST", "STABLE", "USDC", "flat", "normal", "stress", "montecarlo"]),
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=20,
)


def _paths(doc: Any) -> list[tuple[Any, ...]]:
    """Every (container, key) location in a nested document."""
    out: list[tuple[Any, ...]] = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append((doc, k))
            out.extend(_paths(v))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append((doc, i))
            out.extend(_paths(v))
    return out


def _check(doc: Any) -> None:
    try:
        sc = parse_scenario(doc, "fuzz", "fuzz.toml")
    except ScenarioError:
        return
    try:
        pp = sc.paths(["WETH", "WBTC", "wstETH", "USDC", "DAI"], 3, seed=0)
    except ScenarioError:
        return
    assert np.all(pp.multipliers[:, 0, :] == 1.0)


@SETTINGS
@given(
    base=st.sampled_from(sorted(DOCS)),
    edits=st.lists(st.tuples(st.integers(0, 10_000), values, st.booleans()), max_size=4),
    extra=st.dictionaries(st.text(max_size=8), values, max_size=2),
)
def test_mutated_library_files_raise_only_scenario_error(
    base: str, edits: list[tuple[int, Any, bool]], extra: dict[str, Any]
) -> None:
    doc = copy.deepcopy(DOCS[base])
    for where, value, delete in edits:
        locs = _paths(doc)
        if not locs:
            break
        container, key = locs[where % len(locs)]
        if delete and isinstance(container, dict):
            del container[key]
        else:
            container[key] = value
    doc.update(extra)
    _check(doc)


@SETTINGS
@given(doc=st.dictionaries(st.text(max_size=10), values, max_size=8))
def test_random_documents_raise_only_scenario_error(doc: dict[str, Any]) -> None:
    _check(doc)


@SETTINGS
@given(
    numbers=st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    vols=st.lists(st.floats(-1, 1), min_size=7, max_size=7),
    dof=st.floats(0, 50),
)
def test_numeric_perturbations_of_the_default(
    numbers: list[float], vols: list[float], dof: float
) -> None:
    doc = copy.deepcopy(DOCS["default"])
    reg = doc["regimes"]["normal"]
    reg["vol_daily"] = vols
    reg["dof"] = dof
    reg["corr"][0][1], reg["corr"][1][0], reg["corr"][2][3] = numbers
    _check(doc)


@settings(max_examples=60, deadline=None)
@given(text=st.text(st.characters(exclude_categories=("Cs",)), max_size=200))
def test_arbitrary_text_files_raise_only_scenario_error(text: str, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    try:
        doc = read_toml(path)
        parse_scenario(doc, "s", str(path))
    except ScenarioError:
        pass
    with contextlib.suppress(ScenarioError):
        load_scenario(path)


@settings(max_examples=min(EXAMPLES, 40), deadline=None)
@given(
    vol=st.floats(0.0, 10.0),
    dof=st.floats(2.0001, 1e6),
    n_steps=st.integers(1, 200),
    step=st.floats(1.0, 86400.0 * 30),
    jump=st.floats(0.0, 50.0),
    f32=st.booleans(),
    mixing=st.sampled_from(["day", "step"]),
)
def test_extreme_valid_parameters_give_finite_paths(
    vol: float, dof: float, n_steps: int, step: float, jump: float, f32: bool, mixing: str
) -> None:
    doc = copy.deepcopy(DOCS["default"])
    doc["n_steps"], doc["step_seconds"] = n_steps, step
    doc["mixing"] = mixing
    reg = doc["regimes"]["normal"]
    reg["vol_daily"] = [vol] * 7
    reg["dof"] = dof
    doc["jumps"] = {"intensity_per_day": jump, "mean": -5.0, "std": 5.0}
    sc = parse_scenario(doc, "x", "x.toml")
    pp = sc.paths(["WETH", "wstETH", "USDC"], 3, seed=1, dtype=np.float32 if f32 else np.float64)
    assert np.all(np.isfinite(pp.multipliers)) and np.all(pp.multipliers >= 0)
    assert np.all(np.isfinite(pp.gas_gwei))


# -- historical kinds: the user's price CSV is input too -------------------------------------

cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(1e-6, 1e6),
    st.sampled_from(["", "abc", "1e400", "-3", "0", "1,5", "NaN"]),
)


@settings(
    max_examples=min(EXAMPLES, 60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    method=st.sampled_from(["bootstrap", "filtered"]),
    n_rows=st.integers(0, 80),
    start=st.dates(dt.date(2022, 6, 1), dt.date(2022, 12, 15)),
    step_days=st.sampled_from([1, 1, 1, 2, 7]),
    walk=st.lists(st.floats(-0.3, 0.3), min_size=80, max_size=80),
    edits=st.lists(st.tuples(st.integers(0, 79), st.integers(0, 1), cells), max_size=4),
    constant=st.booleans(),
    date_junk=st.booleans(),
)
def test_price_csv_contents_raise_only_scenario_error(
    tmp_path: Path,
    method: str,
    n_rows: int,
    start: dt.date,
    step_days: int,
    walk: list[float],
    edits: list[tuple[int, int, Any]],
    constant: bool,
    date_junk: bool,
) -> None:
    """Random (often broken) price CSVs behind a historical scenario: it loads and gives
    finite paths, or raises ScenarioError; optimiser trouble may add a NumericalWarning."""
    eth = 1000.0 * np.exp(np.cumsum(walk[:n_rows]))
    btc = np.full(n_rows, 2.0) if constant else 30_000.0 * np.exp(np.cumsum(walk[::-1][:n_rows]))
    rows: list[list[Any]] = [
        [(start + dt.timedelta(days=step_days * i)).isoformat(), eth[i], btc[i]]
        for i in range(n_rows)
    ]
    for i, j, value in edits:
        if i < n_rows:
            rows[i][1 + j] = value
    if date_junk and rows:
        rows[len(rows) // 2][0] = "not a date"
    text = "date,ETH,BTC\n" + "".join(",".join(str(c) for c in r) + "\n" for r in rows)
    (tmp_path / "p.csv").write_text(text)
    toml = tmp_path / "h.toml"
    toml.write_text(
        f'kind = "historical"\nmethod = "{method}"\ncsv = "p.csv"\nas_of = 2023-03-01\n'
        "n_steps = 24\nstep_seconds = 3600\nblock_days = 2\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericalWarning)  # documented, not an error
        try:
            sc = load_scenario(toml)
        except ScenarioError as exc:
            assert str(exc).startswith(str(toml)), exc  # names the file
            event(f"rejected: field {str(exc).split('field ')[1][:8]}")
            return
        pp = sc.paths(["WETH", "WBTC"], 4, seed=0)
    event("loaded")
    assert np.isfinite(pp.multipliers).all() and (pp.multipliers > 0).all()
