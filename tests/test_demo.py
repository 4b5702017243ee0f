"""``shortfall demo`` end to end in a reduced size, on a real anvil node.

Checks that every output exists and is valid (snapshot, results, report, keeper database),
that the keeper flagged accounts during the scripted crash, and that anvil is stopped after
a run and after an interrupted one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import keeper.demo as demo
from keeper.cli import main
from simulator.report import SECTIONS
from simulator.snapshot import MarketSnapshot

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = 250
PATHS = 300


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone: it has exited)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    return False


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, float]:
    out = tmp_path_factory.mktemp("demo") / "demo-out"
    buf = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(buf):
        code = main(["demo", "--out", str(out), "--accounts", str(ACCOUNTS), "--paths", str(PATHS)])
    elapsed = time.perf_counter() - started
    assert code == 0, buf.getvalue()
    return out, buf.getvalue(), elapsed


def test_demo_finishes_in_time_and_says_where_the_report_is(
    demo_run: tuple[Path, str, float],
) -> None:
    out, stdout, elapsed = demo_run
    assert elapsed < 300, f"the reduced demo took {elapsed:.0f} s"
    assert f"report: {out / 'report.html'}" in stdout
    meta = json.loads((out / "demo.json").read_text())
    assert meta["timings_s"]["total"] > 0


def test_demo_writes_a_valid_snapshot_and_results(demo_run: tuple[Path, str, float]) -> None:
    out, _, _ = demo_run
    deployment = json.loads((out / "deployment.json").read_text())
    assert deployment["chain_id"] == 31337
    snapshot = MarketSnapshot.load(out / "snapshot")
    assert snapshot.n_accounts > ACCOUNTS // 2
    meta = json.loads((out / "demo.json").read_text())
    results = {name: Path(p) for name, p in meta["results"].items()}
    assert "default" in results and len(results) >= 2, results  # Monte Carlo + stresses
    for name, path in results.items():
        summary = json.loads((path / "summary.json").read_text())
        assert summary["scenario"] == name
        assert summary["snapshot"]["block_number"] == snapshot.meta["block_number"]
        assert summary["es_usd"] >= summary["var_usd"] >= 0
        paths = pd.read_parquet(path / "paths.parquet")
        assert len(paths) == summary["paths"]
    assert json.loads((results["default"] / "summary.json").read_text())["paths"] == PATHS


def test_demo_report_is_complete(demo_run: tuple[Path, str, float]) -> None:
    out, _, _ = demo_run
    page = (out / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page
    assert "http://" not in page and "https://" not in page
    data: dict[str, Any] = json.loads((out / "report.json").read_text())
    meta = json.loads((out / "demo.json").read_text())
    assert [s["scenario"] for s in data["scenarios"]] == list(meta["results"])
    for sc in data["scenarios"]:
        summary = json.loads((Path(sc["results_dir"]) / "summary.json").read_text())
        assert sc["es_usd"] == summary["es_usd"] and sc["var_usd"] == summary["var_usd"]


def test_demo_results_record_what_reproduces_them(demo_run: tuple[Path, str, float]) -> None:
    from simulator.results import provenance
    from simulator.scenarios import load_scenario

    out, _, _ = demo_run
    meta = json.loads((out / "demo.json").read_text())
    page = (out / "report.html").read_text(encoding="utf-8")
    for name, path in meta["results"].items():
        summary = json.loads((Path(path) / "summary.json").read_text())
        expected = provenance(out / "snapshot", load_scenario(name))
        for key in ("snapshot_sha256", "scenario_file", "scenario_sha256", "versions"):
            assert summary[key] == expected[key], (name, key)
        assert f"<code>{summary['scenario_sha256']}</code>" in page
    assert f"<code>{expected['snapshot_sha256']}</code>" in page


def test_demo_money_never_reads_zero_when_it_is_not() -> None:
    assert demo._usd(0.000856) == "<$1"  # a dust shortfall, counted in P(shortfall > 0)
    assert demo._usd(0.0) == "$0" and demo._usd(1234.4) == "$1,234"
    assert demo._usd(-141_424.2) == "-$141,424"  # an under-water margin, sign first


def test_demo_keeper_flagged_accounts_in_the_crash(demo_run: tuple[Path, str, float]) -> None:
    out, stdout, _ = demo_run
    with sqlite3.connect(out / "keeper.sqlite") as db:
        flags = db.execute("SELECT account, status, severity FROM flags").fetchall()
        progress = db.execute("SELECT COUNT(*) FROM flag_events").fetchone()[0]
    open_flags = [f for f in flags if f[1] == "open"]
    assert open_flags, "the crash flagged no account"
    assert progress >= len(open_flags)
    assert "accounts flagged (stressed ES above posted margin)" in stdout
    assert open_flags[0][0] in stdout or "more (keeper.sqlite" in stdout
    meta = json.loads((out / "demo.json").read_text())
    assert len(meta["flagged"]) == len(open_flags)
    events = (out / "keeper-events.jsonl").read_text().splitlines()
    assert len(events) == progress


def test_demo_stops_anvil(demo_run: tuple[Path, str, float]) -> None:
    out, _, _ = demo_run
    pid = json.loads((out / "demo.json").read_text())["anvil_pid"]
    assert isinstance(pid, int)
    assert _wait_gone(pid), f"anvil (pid {pid}) still runs after the demo"


@pytest.mark.parametrize("failure", [KeyboardInterrupt, RuntimeError])
def test_demo_stops_anvil_on_interrupt_or_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: type[BaseException]
) -> None:
    def boom(*_: object) -> None:
        raise failure("stopped in the middle")

    monkeypatch.setattr(demo, "_pull", boom)
    out = tmp_path / "out"
    with pytest.raises(failure):
        demo.run_demo(demo.DemoSettings(out=out, accounts=20, paths=50), stream=io.StringIO())
    pid = json.loads((out / "demo.json").read_text())["anvil_pid"]
    assert isinstance(pid, int)
    assert _wait_gone(pid), f"anvil (pid {pid}) survived a {failure.__name__}"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_process_stops_anvil_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    """A real `shortfall demo` process, signalled mid-run, exits 130 and leaves no anvil."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "keeper.cli", "demo", "--out", str(out), "--accounts", "50"]
    proc = subprocess.Popen(
        [*cmd, "--paths", "2000"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:  # wait until the devnet is up and the pull has begun
            seen.append(line)
            if line.startswith("==> pull"):
                break
        else:
            pytest.fail(f"the demo never reached the pull: {''.join(seen)}")
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    pid = json.loads((out / "demo.json").read_text())["anvil_pid"]
    assert isinstance(pid, int)
    assert _wait_gone(pid), f"anvil (pid {pid}) survived {sig.name}"


def test_demo_on_the_comet_devnet(tmp_path: Path) -> None:
    out = tmp_path / "comet-demo"
    buf = io.StringIO()
    argv = ["demo", "--protocol", "compound-v3", "--out", str(out), "--accounts", "250"]
    with contextlib.redirect_stdout(buf):
        code = main([*argv, "--paths", "200", "--stress", "ftx-2022"])
    stdout = buf.getvalue()
    assert code == 0, stdout
    snap = MarketSnapshot.load(out / "snapshot")
    assert snap.meta["protocol"] == "compound-v3" and snap.book().comet is not None
    for name in ("default", "ftx-2022"):
        summary = json.loads((out / "results" / name / "summary.json").read_text())
        assert summary["comet"]["drawdown"]["es_usd"] >= 0.0
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Compound V3 market" in html
    assert "COMP -45%" in stdout  # the Comet crash moves its own collateral too
    with sqlite3.connect(out / "keeper.sqlite") as db:
        flags = db.execute("SELECT status FROM flags").fetchall()
    assert any(f[0] == "open" for f in flags), "the crash flagged no account"
    meta = json.loads((out / "demo.json").read_text())
    assert meta["anvil_pid"] and _wait_gone(meta["anvil_pid"])
