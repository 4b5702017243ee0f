"""The sweep section of ``shortfall report``: ES curve, heatmap, recommendation, table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keeper.cli import main
from simulator.cascade import EngineConfig
from simulator.report import build_report, make_report, render_html
from simulator.sweep import run_sweep
from tests.sweep_data import monotone_book, monotone_paths


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sweeps")
    snap, pp = monotone_book(120), monotone_paths(150)
    cfg = EngineConfig(gas_units=0.0)
    one = run_sweep(
        snap, pp, ["WETH.liquidation_threshold=0.75:0.87:0.04"], seed=1, config=cfg,
        keep_results=True,
    )  # fmt: skip
    es = sorted(one.table["es_usd"])
    target = 0.5 * (es[1] + es[2])
    run_sweep(
        snap, pp, ["WETH.liquidation_threshold=0.75:0.87:0.04"], seed=1, config=cfg,
        target_es_usd=target, out=root / "one",
    )  # fmt: skip
    run_sweep(
        snap, pp, ["WETH.liquidation_threshold=0.79,0.83", "WETH.liquidation_bonus=0.04,0.06"],
        seed=1, config=cfg, target_es_usd=target, out=root / "two",
    )  # fmt: skip
    return root / "one", root / "two"


def test_sweep_alone_makes_a_report_led_by_its_base_point(sweeps: tuple[Path, Path]) -> None:
    one, _ = sweeps
    report = build_report([one])
    assert report["scenarios"][0]["results_dir"].endswith("points/002")  # 0.83 is the base
    (sw,) = report["sweeps"]
    assert sw["summary"]["recommendations"][0]["status"] == "inside"
    html = render_html(report)
    assert '<section id="sweep">' in html
    assert 'alt="ES against WETH.liquidation_threshold with intervals"' in html
    assert "largest value meeting the target" in html
    assert html.count("<b>(base)</b>") == 1
    assert "http://" not in html and "https://" not in html  # self-contained
    data = json.loads(make_report([one], fmt="json"))
    assert len(data["sweeps"][0]["points"]) == 4


def test_two_parameter_grid_gets_a_heatmap(sweeps: tuple[Path, Path]) -> None:
    one, two = sweeps
    html = make_report([two])
    assert 'alt="ES heatmap over WETH.liquidation_threshold and WETH.liquidation_bonus"' in html
    assert "along <code>WETH.liquidation_threshold</code> at WETH.liquidation_bonus=0.04" in html
    both = make_report([one, two])  # two sweeps, each in its own fold
    assert both.count("<details open><summary>WETH.liquidation_threshold") == 1


def test_cli_report_of_a_sweep(sweeps: tuple[Path, Path], tmp_path: Path) -> None:
    one, _ = sweeps
    assert main(["report", str(one), "--out", str(tmp_path / "r.html")]) == 0
    assert 'id="sweep"' in (tmp_path / "r.html").read_text()
