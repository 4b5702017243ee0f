"""shortfall sweep on a Compound V3 (Comet) snapshot: its own parameters, the ones it lacks,
Comet's configurator rule, and a grid run on common paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from keeper.cli import main
from simulator.cascade import EngineConfig
from simulator.errors import InputError
from simulator.simulation import FixedPaths, simulate
from simulator.snapshot import MarketSnapshot
from simulator.sweep import apply_point, base_value, parse_param, run_sweep
from simulator.synthetic import comet_book, synthetic_paths, synthetic_snapshot
from tests.sweep_data import META  # from_book makes it a compound-v3 snapshot


@pytest.fixture(scope="module")
def snap() -> MarketSnapshot:
    return MarketSnapshot.from_book(META, comet_book(synthetic_snapshot(1500, seed=1).book()))


@pytest.fixture(scope="module")
def paths(snap: MarketSnapshot):  # type: ignore[no-untyped-def]
    return synthetic_paths(snap.book().symbols, 200, 24, seed=3, daily_vol=0.12)


def test_comet_parameters_parse_and_read_their_base(snap: MarketSnapshot) -> None:
    lf = parse_param("WETH.liquidation_factor=0.85,0.95", snap)
    assert lf.kind == "reserve" and lf.direction == "largest"
    assert base_value(lf, snap, None, EngineConfig()) == pytest.approx(0.95)  # type: ignore[arg-type]
    sf = parse_param("store_front_price_factor=0.4:0.8:0.2", snap)
    assert sf.kind == "comet" and sf.values == pytest.approx((0.4, 0.6, 0.8))
    assert base_value(sf, snap, None, EngineConfig()) == pytest.approx(0.6)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("WETH.liquidation_bonus=0.05", "absorber earns no bonus"),
        ("WETH.protocol_fee=0.1", "no fee"),
        ("USDC.borrow_cap=1e6", "no borrow cap"),
        ("emode.1.liquidation_threshold=0.9", "no e-mode"),
        ("store_front_price_factor=1.5", r"\[0, 1\]"),
    ],
)
def test_parameters_comet_lacks_are_refused(snap: MarketSnapshot, spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_param(spec, snap)


def test_comet_parameters_are_refused_on_aave() -> None:
    with pytest.raises(InputError, match="Compound V3 parameter"):
        parse_param("store_front_price_factor=0.5", synthetic_snapshot(50, seed=1))


def test_points_change_the_terms_the_engine_reads(snap: MarketSnapshot, paths) -> None:  # type: ignore[no-untyped-def]
    sf = parse_param("store_front_price_factor=0.9", snap)
    lcf = parse_param("WETH.liquidation_threshold=0.70", snap)
    point, _, _, notes = apply_point(snap, FixedPaths(paths), EngineConfig(), {sf: 0.9, lcf: 0.70})
    book = point.book()
    assert book.comet is not None and book.comet.store_front_price_factor == 0.9
    j = book.symbols.index("WETH")
    assert book.liquidation_threshold[j] == 0.70 and book.ltv[j] < 0.70
    assert any("borrow collateral factor lowered" in n for n in notes)
    # positions stay: the lower factor only makes more accounts liquidatable
    assert (book.health_factor() <= snap.book().health_factor() + 1e-12).all()
    base = simulate(snap, FixedPaths(paths), seed=1)
    moved = simulate(point, FixedPaths(paths), seed=1)
    assert moved.n_liquidations.sum() > base.n_liquidations.sum()


def test_grid_on_common_paths_and_cli(snap: MarketSnapshot, paths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = run_sweep(
        snap, paths, ["WETH.liquidation_threshold=0.75,0.83,0.88"], seed=1, keep_results=True
    )
    t = r.table.sort_values("WETH.liquidation_threshold")
    assert t["liquidatable_now"].iloc[0] >= t["liquidatable_now"].iloc[-1]
    assert r.results is not None
    base = t[t["is_base"]].iloc[0]
    alone = simulate(snap, FixedPaths(paths), seed=1)
    assert base["es_usd"] == pytest.approx(alone.es_usd)
    for res in r.results.values():
        assert res.reserve_drawdown_usd is not None
        assert np.all(res.reserve_drawdown_usd >= 0.0)
    snap.save(tmp_path / "snap")
    argv = ["sweep", "--snapshot", str(tmp_path / "snap"), "--scenario", "default"]
    argv += ["--paths", "50", "--param", "WETH.liquidation_factor=0.9,0.95"]
    assert main([*argv, "--out", str(tmp_path / "sweep")]) == 0
    assert (
        main([*argv[:-2], "--param", "WETH.liquidation_bonus=0.05", "--out", str(tmp_path / "x")])
        == 1
    )
    assert not (tmp_path / "x").exists()
