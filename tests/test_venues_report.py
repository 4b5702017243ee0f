"""The report's liquidity-venue table (issue 16, item 4): kind and depth at 2%, 5%, 10%."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from test_snapshot import _meta, _positions, _reserves
from test_venues_snapshot import V3_POINTS, _venues

from simulator.report import build_report, make_report
from simulator.results import save_results
from simulator.simulation import simulate
from simulator.snapshot import MarketSnapshot
from simulator.synthetic import uniform_shock_paths

CURVE = [(1e6, 0.01), (1e7, 0.03), (5e7, 0.12)]


def test_report_lists_each_venue_with_its_depths(tmp_path: Path) -> None:
    snapshot = MarketSnapshot.from_frames(
        _meta(),
        _reserves(venue_kind=["uniswap-v3", "depth-curve"]),
        _positions(),
        venues=_venues(weth=V3_POINTS, usdc=CURVE),
    )
    summary = snapshot.venue_summary()
    assert [v["kind"] for v in summary] == ["uniswap-v3", "depth-curve"]
    venues = snapshot.venue_set()
    for j, row in enumerate(summary):
        price = float(snapshot.reserves["price_usd"][j])
        for impact in (0.02, 0.05, 0.10):
            want = venues.depth_at(j, price, impact)
            got = row["depth_usd"][f"{impact:g}"]
            assert got == (None if np.isnan(want) else pytest.approx(want, rel=1e-15))
    # the depth curve's 2% is between its first two points, its 10% between the last two
    assert 1e6 < summary[1]["depth_usd"]["0.02"] < 1e7 < summary[1]["depth_usd"]["0.1"] < 5e7

    result = simulate(snapshot, uniform_shock_paths(snapshot.book().symbols, [0.9], n_steps=2))
    out = save_results(result, tmp_path / "run")
    report = build_report([out])
    rows = report["snapshot"]["venues"]
    assert json.loads(json.dumps(rows)) == json.loads(json.dumps(summary))
    html = make_report([out], command="shortfall report")
    assert "Liquidity venues" in html and "uniswap-v3" in html and "depth-curve" in html
    assert "depth at 5%" in html
