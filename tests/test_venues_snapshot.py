"""Venues in the snapshot (issue 16, item 4): venue_kind, venues.parquet, old snapshots."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from test_snapshot import USDC, WETH, _meta, _positions, _reserves

from simulator.errors import SnapshotError
from simulator.snapshot import VENUES_FILE, MarketSnapshot
from simulator.venues import KIND_CONSTANT_PRODUCT, KIND_CURVE, KIND_V3

V3_POINTS = [(math.sqrt(1500.0), 2e5), (math.sqrt(3000.0), 1e5), (math.sqrt(4500.0), 0.0)]
CURVE_POINTS = [(1e6, 0.002), (1e7, 0.01)]


def _venues(weth=V3_POINTS, usdc=CURVE_POINTS) -> pd.DataFrame:
    rows = [{"asset": WETH, "point": k, "x": x, "y": y} for k, (x, y) in enumerate(weth)]
    rows += [{"asset": USDC, "point": k, "x": x, "y": y} for k, (x, y) in enumerate(usdc)]
    return pd.DataFrame(rows)


def _snapshot(**kw) -> MarketSnapshot:
    reserves = _reserves(venue_kind=["uniswap-v3", "depth-curve"])
    return MarketSnapshot.from_frames(_meta(), reserves, _positions(), venues=_venues(**kw))


def test_venues_round_trip_and_reach_the_book(tmp_path: Path) -> None:
    path = _snapshot().save(tmp_path / "snap")
    assert (path / VENUES_FILE).is_file()
    loaded = MarketSnapshot.load(path)
    v = loaded.book().venues
    assert v is not None
    assert list(v.kind) == [KIND_V3, KIND_CURVE]
    assert list(v.count) == [3, 3]  # the curve gains its origin (0, 0)
    assert v.xs[0, :3].tolist() == [p[0] for p in V3_POINTS]
    # the curve's points come back as the average impacts they were given
    assert v.proceeds(1, 1.0, 0.0, 1e7) == pytest.approx(1e7 * 0.99, rel=1e-12)
    # a snapshot rebuilt from the book keeps its venues
    again = MarketSnapshot.from_book(loaded.meta, loaded.book())
    assert list(again.reserves["venue_kind"]) == ["uniswap-v3", "depth-curve"]
    pd.testing.assert_frame_equal(again.venues, loaded.venues)


def test_an_old_snapshot_loads_with_constant_product_venues(tmp_path: Path) -> None:
    path = MarketSnapshot.from_frames(_meta(), _reserves(), _positions()).save(tmp_path / "old")
    (path / VENUES_FILE).unlink()
    frame = pd.read_parquet(path / "reserves.parquet").drop(columns=["venue_kind"])
    frame.to_parquet(path / "reserves.parquet")
    book = MarketSnapshot.load(path).book()
    assert book.venues is not None
    assert list(book.venues.kind) == [KIND_CONSTANT_PRODUCT] * 2
    assert book.venues.depth[0] == pytest.approx(math.sqrt(6666.0 * 2e7), rel=1e-15)
    assert book.venues.depth[1] == 0.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weth": [*V3_POINTS[:2], (V3_POINTS[2][0], 5.0)]}, "WETH .* must be 0"),
        ({"usdc": [(1e6, 0.01), (1e5, 0.02)]}, "USDC .* point 1 size .* sizes must increase"),
        ({"usdc": []}, "USDC .*depth-curve.*: no points"),
    ],
)
def test_bad_venue_points_are_refused(change, message) -> None:
    with pytest.raises(SnapshotError, match=message):
        _snapshot(**change)


def test_unknown_kind_and_stray_points_are_refused() -> None:
    with pytest.raises(SnapshotError, match="venue_kind of WETH is 'curvy'"):
        MarketSnapshot.from_frames(
            _meta(), _reserves(venue_kind=["curvy", "constant-product"]), _positions()
        )
    with pytest.raises(SnapshotError, match="has points but venue_kind constant-product"):
        MarketSnapshot.from_frames(_meta(), _reserves(), _positions(), venues=_venues())
