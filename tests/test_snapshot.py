"""simulator.snapshot: validation names the file, column and row; saves are atomic; the
dense Book and its health factor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import simulator.snapshot as snapshot_module
from simulator.errors import SnapshotError
from simulator.snapshot import (
    META_REQUIRED,
    POSITION_COLUMNS,
    RESERVE_COLUMNS,
    SNAPSHOT_FILES,
    MarketSnapshot,
    check_save_target,
)

WETH = "0xa513E6E4b8f2a923D98304ec87F64353C4D5C853"
USDC = "0xc3e53F4d16Ae77Db1c982e75a937B9f60FE63690"
ALICE = "0x000240995eBf77a98c42B469e5dF5c9595f343Db"
BOB = "0x0303AEB0e62b13574BFA904F16d1eE3145A45c53"


def _meta(**changes: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "protocol": "aave-v3",
        "chain_id": 31337,
        "block_number": 76,
        "block_hash": "0x" + "ab" * 32,
        "timestamp": 1_700_000_000,
        "addresses": {"pool": "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"},
        "software_version": "0.1.0",
    }
    meta.update(changes)
    return meta


def _reserves(**changes: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "asset": [WETH, USDC],
            "symbol": ["WETH", "USDC"],
            "decimals": [18, 6],
            "price_usd": [3000.0, 1.0],
            "ltv": [0.805, 0.75],
            "liquidation_threshold": [0.83, 0.78],
            "liquidation_bonus": [0.05, 0.045],
            "protocol_fee": [0.1, 0.1],
            "usage_as_collateral_enabled": [True, True],
            "borrowing_enabled": [True, True],
            "dex_pair": ["0x5f3f1dBD7B74C6B46e8c44f98792A1dAf8d69154", ""],
            "dex_quote_asset": [USDC, ""],
            "dex_reserve_asset": [6666.0, 0.0],
            "dex_reserve_quote": [2e7, 0.0],
            "dex_fee": [0.003, 0.0],
        }
    )
    for key, value in changes.items():
        frame[key] = value
    return frame


def _positions(**changes: Any) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "account": [ALICE, ALICE, BOB],
            "asset": [WETH, USDC, USDC],
            "collateral": [2.0, 0.0, 5000.0],
            "debt": [0.0, 3000.0, 0.0],
            "collateral_enabled": [True, False, True],
        }
    )
    for key, value in changes.items():
        frame[key] = value
    return frame


def _snapshot() -> MarketSnapshot:
    return MarketSnapshot.from_frames(_meta(), _reserves(), _positions())


def test_schema_constants() -> None:
    assert "block_hash" in META_REQUIRED
    assert list(POSITION_COLUMNS) == [
        "account",
        "asset",
        "collateral",
        "debt",
        "collateral_enabled",
    ]
    assert {"price_usd", "liquidation_threshold", "dex_reserve_quote"} <= set(RESERVE_COLUMNS)


def test_round_trip_keeps_every_value(tmp_path: Path) -> None:
    snap = _snapshot()
    path = snap.save(tmp_path / "snap")
    assert sorted(p.name for p in path.iterdir()) == sorted(SNAPSHOT_FILES)
    loaded = MarketSnapshot.load(path)
    pd.testing.assert_frame_equal(loaded.reserves, snap.reserves, check_exact=True)
    pd.testing.assert_frame_equal(loaded.positions, snap.positions, check_exact=True)
    pd.testing.assert_frame_equal(loaded.accounts, snap.accounts, check_exact=True)
    assert loaded.meta == snap.meta
    assert json.loads((path / "meta.json").read_text())["block_number"] == 76


def test_book_and_health_factor() -> None:
    book = _snapshot().book()
    assert list(book.accounts) == [ALICE, BOB]
    assert book.assets == (WETH, USDC)
    hf = book.health_factor()
    assert hf[0] == pytest.approx(2 * 3000 * 0.83 / 3000.0, rel=1e-15)
    assert np.isinf(hf[1])
    assert book.collateral_usd()[0] == 6000.0 and book.debt_usd()[0] == 3000.0
    # a 50% WETH crash puts Alice under water
    assert book.health_factor(np.array([1500.0, 1.0]))[0] == pytest.approx(0.83)
    assert book.symbol_index() == {"WETH": 0, "USDC": 1}


def test_disabled_collateral_and_zero_lt_do_not_count() -> None:
    positions = _positions(collateral_enabled=[False, False, True])
    book = MarketSnapshot.from_frames(_meta(), _reserves(), positions).book()
    assert book.health_factor()[0] == 0.0
    reserves = _reserves(liquidation_threshold=[0.0, 0.78], ltv=[0.0, 0.75])
    book = MarketSnapshot.from_frames(_meta(), reserves, _positions()).book()
    assert book.health_factor()[0] == 0.0


def test_from_book_round_trip() -> None:
    snap = _snapshot()
    again = MarketSnapshot.from_book(snap.meta, snap.book())
    pd.testing.assert_frame_equal(again.positions, snap.positions)
    assert np.array_equal(again.book().health_factor(), snap.book().health_factor())


@pytest.mark.parametrize(
    ("meta", "reserves", "positions", "message"),
    [
        (_meta(block_hash=None) | {"x": 1}, None, None, None),
        (
            {k: v for k, v in _meta().items() if k != "block_hash"},
            None,
            None,
            r"meta.json: missing key\(s\) \['block_hash'\]",
        ),
        (
            _meta(block_number=-1),
            None,
            None,
            r"'block_number' = -1; expected a non-negative integer",
        ),
        (_meta(chain_id=True), None, None, r"'chain_id' = True"),
        (_meta(addresses=[]), None, None, r"'addresses' must be an object"),
        (
            None,
            _reserves().drop(columns=["dex_fee"]),
            None,
            r"reserves.parquet: missing column\(s\) \['dex_fee'\]",
        ),
        (None, _reserves(price_usd=["a", "b"]), None, r"column 'price_usd' has dtype"),
        (None, _reserves(price_usd=[3000.0, 0.0]), None, r"price_usd of USDC is 0.0; expected > 0"),
        (None, _reserves(price_usd=[np.nan, 1.0]), None, r"'price_usd' is not finite at row 0"),
        (
            None,
            _reserves(liquidation_threshold=[1.5, 0.78]),
            None,
            r"'liquidation_threshold' = 1.5 for WETH",
        ),
        (None, _reserves(asset=[WETH, WETH]), None, r"asset 0x.* appears twice"),
        (None, _reserves().iloc[:0], None, r"no reserves"),
        (None, None, _positions(debt=[0.0, -1.0, 0.0]), r"positions.parquet: column 'debt' = -1.0"),
        (
            None,
            None,
            _positions(asset=[WETH, USDC, "0x" + "99" * 20]),
            r"asset 0x9999.* of account 0x0303.* is not in reserves.parquet",
        ),
        (
            None,
            None,
            _positions(asset=[WETH, WETH, USDC]),
            r"appears twice; expected one row per pair",
        ),
        (
            None,
            None,
            _positions(account=[ALICE, 5, BOB]),
            r"column 'account' holds non-string values",
        ),
        (
            None,
            None,
            _positions().drop(columns=["collateral_enabled"]),
            r"missing column\(s\) \['collateral_enabled'\]",
        ),
    ],
)
def test_validation_names_what_is_wrong(
    meta: dict[str, Any] | None,
    reserves: pd.DataFrame | None,
    positions: pd.DataFrame | None,
    message: str | None,
) -> None:
    build = lambda: MarketSnapshot.from_frames(  # noqa: E731
        _meta() if meta is None else meta,
        _reserves() if reserves is None else reserves,
        _positions() if positions is None else positions,
    )
    if message is None:
        build()  # extra meta keys are allowed
        return
    with pytest.raises(SnapshotError, match=message) as info:
        build()
    assert isinstance(info.value, ValueError)


def test_load_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(
        SnapshotError, match=r"no such snapshot directory \(make one with shortfall pull\)"
    ):
        MarketSnapshot.load(tmp_path / "nope")
    path = _snapshot().save(tmp_path / "snap")
    (path / "positions.parquet").unlink()
    with pytest.raises(
        SnapshotError, match=r"positions.parquet: missing; the snapshot is incomplete"
    ):
        MarketSnapshot.load(path)
    path = _snapshot().save(tmp_path / "snap2")
    (path / "meta.json").write_text("{not json")
    with pytest.raises(SnapshotError, match=r"meta.json: not valid JSON"):
        MarketSnapshot.load(path)
    path = _snapshot().save(tmp_path / "snap3")
    (path / "reserves.parquet").write_bytes(b"garbage")
    with pytest.raises(SnapshotError, match=r"unreadable Parquet file"):
        MarketSnapshot.load(path)
    path = _snapshot().save(tmp_path / "snap4")
    _reserves(price_usd=[3000.0, -1.0]).to_parquet(path / "reserves.parquet", index=False)
    with pytest.raises(SnapshotError, match=rf"{path}/reserves.parquet: price_usd of USDC"):
        MarketSnapshot.load(path)


def _failing_second_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    real = snapshot_module.write_parquet
    calls = {"n": 0}

    def flaky(frame: pd.DataFrame, path: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full")
        real(frame, path)

    monkeypatch.setattr(snapshot_module, "write_parquet", flaky)


def test_a_failed_save_leaves_no_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _failing_second_parquet(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        _snapshot().save(tmp_path / "snap")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_old_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _snapshot()
    old.save(tmp_path / "snap")
    newer = MarketSnapshot.from_frames(
        _meta(block_number=77), _reserves(), _positions(debt=[0.0, 10.0, 0.0])
    )
    _failing_second_parquet(monkeypatch)
    with pytest.raises(OSError):
        newer.save(tmp_path / "snap")
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]
    assert MarketSnapshot.load(tmp_path / "snap").meta["block_number"] == 76
    monkeypatch.undo()
    newer.save(tmp_path / "snap")
    assert MarketSnapshot.load(tmp_path / "snap").meta["block_number"] == 77
    assert [p.name for p in tmp_path.iterdir()] == ["snap"]


def test_an_empty_book_is_valid(tmp_path: Path) -> None:
    empty = pd.DataFrame(
        {
            "account": pd.Series([], dtype=object),
            "asset": pd.Series([], dtype=object),
            "collateral": pd.Series([], dtype=np.float64),
            "debt": pd.Series([], dtype=np.float64),
            "collateral_enabled": pd.Series([], dtype=bool),
        }
    )
    snap = MarketSnapshot.from_frames(_meta(), _reserves(), empty)
    loaded = MarketSnapshot.load(snap.save(tmp_path / "empty"))
    assert loaded.n_accounts == 0 and loaded.book().health_factor().shape == (0,)


def test_save_refuses_to_replace_what_is_not_a_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Saving replaces the directory whole: a directory holding other files, a file, or the
    current directory must be refused, untouched (it used to be moved aside and deleted)."""
    snap = _snapshot()
    data = tmp_path / "data"
    data.mkdir()
    (data / "precious.csv").write_text("keep me")
    with pytest.raises(
        SnapshotError,
        match=r"data: exists and is not a snapshot directory \(it holds precious\.csv\)",
    ):
        snap.save(data)
    assert (data / "precious.csv").read_text() == "keep me"

    note = tmp_path / "note.txt"
    note.write_text("a file")
    with pytest.raises(SnapshotError, match="exists and is not a directory"):
        snap.save(note)
    assert note.read_text() == "a file"

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for target in (Path("."), here, tmp_path):
        with pytest.raises(SnapshotError, match="current directory or one of its parents"):
            snap.save(target)
    assert here.is_dir()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "here", "note.txt"]

    empty = tmp_path / "empty"
    empty.mkdir()
    snap.save(empty)  # an empty directory, and a snapshot directory, may be replaced
    snap.save(empty)
    assert sorted(p.name for p in empty.iterdir()) == sorted(SNAPSHOT_FILES)
    assert check_save_target(empty) == empty


# -- e-mode, rates, older snapshots ---------------------------------------------------------

WSTETH = "0x7f39C581F595B53c5cb19bD0b3f8dA6c935E2Ca0"


def _emode_snapshot(family: str = "liquid", **emode_changes: Any) -> MarketSnapshot:
    """Alice: 10 wstETH + 2 WETH collateral, 9 WETH debt, in category 1 (wstETH in the
    collateral bitmap, WETH not); Bob: USDC collateral only, category 0."""
    reserves = pd.concat(
        [
            _reserves(),
            pd.DataFrame(
                {
                    "asset": [WSTETH],
                    "symbol": ["wstETH"],
                    "decimals": [18],
                    "price_usd": [3600.0],
                    "ltv": [0.785],
                    "liquidation_threshold": [0.81],
                    "liquidation_bonus": [0.06],
                    "protocol_fee": [0.1],
                    "usage_as_collateral_enabled": [True],
                    "borrowing_enabled": [True],
                    "dex_pair": [""],
                    "dex_quote_asset": [""],
                    "dex_reserve_asset": [0.0],
                    "dex_reserve_quote": [0.0],
                    "dex_fee": [0.0],
                    "variable_borrow_rate": [0.02],
                    "liquidity_rate": [0.001],
                }
            ),
        ],
        ignore_index=True,
    ).fillna({"variable_borrow_rate": 0.0, "liquidity_rate": 0.0})
    positions = pd.DataFrame(
        {
            "account": [ALICE, ALICE, ALICE, BOB],
            "asset": [WSTETH, WETH, USDC, USDC],
            "collateral": [10.0, 2.0, 0.0, 5000.0],
            "debt": [0.0, 9.0, 0.0, 0.0],
            "collateral_enabled": [True, True, False, True],
        }
    )
    emode = pd.DataFrame(
        {
            "category": [1, 1],
            "label": ["ETH correlated", "ETH correlated"],
            "asset": [WSTETH, WETH],
            "ltv": [0.93, 0.93],
            "liquidation_threshold": [0.95, 0.95],
            "liquidation_bonus": [0.01, 0.01],
            "is_collateral": [True, False],
            "is_borrowable": [False, True],
            "ltv_zero": [False, False],
            "price_source": ["", ""],
            "price_usd": [3600.0, 3000.0],
        }
    )
    for key, value in emode_changes.items():
        emode[key] = value
    accounts = pd.DataFrame({"account": [ALICE], "emode_category": [1]})
    return MarketSnapshot.from_frames(
        _meta(emode_family=family), reserves, positions, accounts, emode
    )


def test_emode_category_parameters_apply_to_its_collateral_only() -> None:
    book = _emode_snapshot().book()
    assert book.n_classes == 2 and list(book.class_category) == [0, 1]
    a = list(book.accounts).index(ALICE)
    j_st, j_eth = book.assets.index(WSTETH), book.assets.index(WETH)
    assert book.account_class[a] == 1
    assert book.account_lt()[a, j_st] == 0.95 and book.account_bonus()[a, j_st] == 0.01
    # WETH is borrowable in the category but not in its collateral bitmap: reserve parameters
    assert book.account_lt()[a, j_eth] == 0.83 and book.account_bonus()[a, j_eth] == 0.05
    expected = (10 * 3600 * 0.95 + 2 * 3000 * 0.83) / (9 * 3000)
    assert book.health_factor()[a] == pytest.approx(expected, rel=1e-15)
    b = list(book.accounts).index(BOB)
    assert book.account_class[b] == 0 and book.account_lt()[b, j_st] == 0.81


def test_ltv_zero_bitmap_and_price_source() -> None:
    book = _emode_snapshot(ltv_zero=[True, False]).book()
    assert book.class_ltv[1, book.assets.index(WSTETH)] == 0.0
    assert book.class_lt[1, book.assets.index(WSTETH)] == 0.95  # LT is kept
    # a v3.0 category priced by its own source: its accounts see that price
    src = _emode_snapshot(
        "per-reserve", price_source=[USDC, USDC], price_usd=[3500.0, 3500.0], is_collateral=True
    ).book()
    a = list(src.accounts).index(ALICE)
    expected = (10 * 3500 * 0.95 + 2 * 3500 * 0.95) / (9 * 3500)
    assert src.health_factor()[a] == pytest.approx(expected, rel=1e-15)
    assert src.debt_usd()[a] == pytest.approx(9 * 3500)


def test_average_lt_rounding_of_v3_0() -> None:
    snap = _emode_snapshot()
    exact = snap.book().health_factor()
    meta = dict(snap.meta, hf_rounding="average-lt-bps")
    rounded = MarketSnapshot.from_frames(
        meta, snap.reserves, snap.positions, snap.accounts, snap.emode
    ).book()
    a = list(rounded.accounts).index(ALICE)
    weighted = 10 * 3600 * 0.95 + 2 * 3000 * 0.83
    avg_bps = np.floor(weighted * 1e4 / (10 * 3600 + 2 * 3000))
    assert rounded.health_factor()[a] == pytest.approx(
        (10 * 3600 + 2 * 3000) * avg_bps / 1e4 / (9 * 3000), rel=1e-15
    )
    assert rounded.health_factor()[a] < exact[a]


def test_emode_round_trip_and_from_book(tmp_path: Path) -> None:
    snap = _emode_snapshot()
    loaded = MarketSnapshot.load(snap.save(tmp_path / "snap"))
    pd.testing.assert_frame_equal(loaded.emode, snap.emode, check_exact=True)
    assert list(loaded.accounts["account"]) == [ALICE, BOB]
    assert list(loaded.accounts["emode_category"]) == [1, 0]
    np.testing.assert_array_equal(loaded.book().health_factor(), snap.book().health_factor())
    again = MarketSnapshot.from_book(_meta(), snap.book()).book()
    np.testing.assert_array_equal(again.health_factor(), snap.book().health_factor())
    np.testing.assert_array_equal(again.class_bonus, snap.book().class_bonus)
    np.testing.assert_array_equal(again.borrow_rate, snap.book().borrow_rate)


def test_snapshot_of_an_older_version_loads_without_emode(tmp_path: Path) -> None:
    path = _snapshot().save(tmp_path / "old")
    (path / "accounts.parquet").unlink()
    (path / "emode.parquet").unlink()
    pd.read_parquet(path / "reserves.parquet")[list(RESERVE_COLUMNS)].to_parquet(
        path / "reserves.parquet"
    )
    book = MarketSnapshot.load(path).book()
    assert book.n_classes == 1 and not book.borrow_rate.any()
    np.testing.assert_array_equal(book.health_factor(), _snapshot().book().health_factor())


def test_account_in_an_undescribed_category_is_an_error() -> None:
    snap = _emode_snapshot()
    accounts = pd.DataFrame({"account": [ALICE], "emode_category": [3]})
    with pytest.raises(SnapshotError, match=r"accounts.parquet: account .* category 3"):
        MarketSnapshot.from_frames(snap.meta, snap.reserves, snap.positions, accounts, snap.emode)
    stray = pd.DataFrame({"account": [WETH], "emode_category": [1]})
    with pytest.raises(SnapshotError, match=r"has no row in positions\.parquet"):
        MarketSnapshot.from_frames(snap.meta, snap.reserves, snap.positions, stray, snap.emode)


def test_accrual_factors_follow_aave_math() -> None:
    book = _emode_snapshot().book()
    j = book.assets.index(WSTETH)
    day = 86_400.0
    supply, debt = book.accrual_factors(10 * day)
    assert supply[j] == pytest.approx(1 + 0.001 * 10 / 365, rel=1e-15)
    # compounded per second: close to exp(rate x t), below it by the fourth-order term
    assert debt[j] == pytest.approx(np.exp(0.02 * 10 / 365), rel=1e-9)
    assert debt[j] < np.exp(0.02 * 10 / 365)
    assert supply[0] == debt[0] == 1.0  # WETH has no rates here
    with pytest.raises(SnapshotError, match="expected >= 0"):
        book.accrual_factors(-1.0)


def test_emode_summary_counts_accounts_and_debt() -> None:
    rows = _emode_snapshot().emode_summary()
    assert [r["category"] for r in rows] == [0, 1]
    assert rows[1]["label"] == "ETH correlated"
    assert rows[1]["accounts"] == 1 and rows[1]["debt_usd"] == pytest.approx(27_000.0)
    assert rows[1]["debt_share"] == 1.0
    assert rows[0]["accounts"] == 0 and rows[0]["debt_usd"] == 0.0


def _dust_snapshot(**meta: Any) -> MarketSnapshot:
    """Alice: 0.001234567 WETH and 0.5 USDC collateral, 1.2345671 USDC debt, at prices with
    cents of cents, so rounding each value to the 1e-8 USD base unit shows."""
    reserves = _reserves(price_usd=[3012.34567891, 0.99990123])
    positions = pd.DataFrame(
        {
            "account": [ALICE, ALICE],
            "asset": [WETH, USDC],
            "collateral": [0.001234567, 0.5],
            "debt": [0.0, 1.234567],
            "collateral_enabled": [True, True],
        }
    )
    return MarketSnapshot.from_frames(_meta(**meta), reserves, positions)


def test_base_unit_rounding_follows_the_pool() -> None:
    # integers the Pool computes: balance x price / 10^decimals, in base units (1e8 / USD)
    weth = 1_234_567 * 10**9 * 301_234_567_891 // 10**18  # floored collateral
    usdc = 500_000 * 99_990_123 // 10**6
    debt_floor = 1_234_567 * 99_990_123 // 10**6
    debt_ceil = -(-1_234_567 * 99_990_123 // 10**6)
    assert debt_ceil == debt_floor + 1
    plain = _dust_snapshot().book()
    assert plain.base_unit == 0.0  # no base unit: plain floats, as before
    ceil = _dust_snapshot(base_currency_unit=10**8, debt_value_rounding="ceil").book()
    assert ceil.collateral_usd()[0] * 1e8 == pytest.approx(weth + usdc, abs=1e-6)
    assert ceil.debt_usd()[0] * 1e8 == pytest.approx(debt_ceil, abs=1e-6)
    weighted = weth * 8300 + usdc * 7800
    assert ceil.health_factor()[0] == pytest.approx(weighted / 1e4 / debt_ceil, rel=1e-13)
    floor = _dust_snapshot(base_currency_unit=10**8).book()
    assert floor.debt_value_rounding == "floor"
    assert floor.debt_usd()[0] * 1e8 == pytest.approx(debt_floor, abs=1e-6)
    # v3.0: average LT floored to whole bps, percentMul (half up) in base units
    v30 = _dust_snapshot(base_currency_unit=10**8, hf_rounding="average-lt-bps").book()
    total = weth + usdc
    avg = weighted // total
    assert v30.health_factor()[0] == pytest.approx(
        ((total * avg + 5000) // 10_000) / debt_floor, rel=1e-13
    )
    # the rounding is far above 1e-9 here: the plain float HF misses it
    assert abs(plain.health_factor()[0] / ceil.health_factor()[0] - 1) > 1e-9
    with pytest.raises(SnapshotError, match="debt_value_rounding"):
        _dust_snapshot(debt_value_rounding="up")
    with pytest.raises(SnapshotError, match="base_currency_unit"):
        _dust_snapshot(base_currency_unit=-1)


def test_average_lt_of_one_collateral_is_its_own_lt() -> None:
    # one collateral: sum(value x LT) / value is exactly the LT; a float quotient a hair
    # below it must not floor to one basis point less
    for amount in (0.1, 0.3, 1.7, 123.456789):
        snap = MarketSnapshot.from_frames(
            _meta(hf_rounding="average-lt-bps"),
            _reserves(price_usd=[2999.99, 1.0]),
            _positions(collateral=[amount, 0.0, 5000.0]),
        )
        book = snap.book()
        a = list(book.accounts).index(ALICE)
        assert book.health_factor()[a] == pytest.approx(
            amount * 2999.99 * 0.83 / 3000.0, rel=1e-13
        ), amount
