"""The daemon's parts alone: the position cache and the block evaluation."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from keeper.evaluate import assess, evaluate_book
from keeper.positions import Positions
from keeper.stress_inputs import StressInputs
from simulator.stress import FlagThresholds, StressSet

A = "0x" + "0" * 39 + "1"
B = "0x" + "0" * 39 + "2"


@dataclass(frozen=True)
class _Reserve:
    asset: str
    decimals: int
    liquidation_threshold: float
    liquidation_bonus: float = 0.05
    protocol_fee: float = 0.1


@dataclass(frozen=True)
class _Pos:
    account: str
    asset: str
    collateral: int
    debt: int
    collateral_enabled: bool


RESERVES = [_Reserve("WETH", 18, 0.83), _Reserve("USDC", 6, 0.9)]


def test_positions_grow_update_and_share_the_rolling_reread() -> None:
    book = Positions(RESERVES, refresh_blocks=2)  # type: ignore[arg-type]
    assert book.add([A, B, A]) == [A, B] and book.add([A]) == []
    book.update(
        [A], [_Pos(A, "WETH", 50 * 10**18, 0, True), _Pos(A, "USDC", 0, 63_800 * 10**6, False)]
    )
    coll, debt, enabled = book.arrays()
    np.testing.assert_allclose(coll[0], [50.0, 0.0])
    np.testing.assert_allclose(debt[0], [0.0, 63_800.0])
    assert enabled[0].tolist() == [True, False] and not coll[1].any()
    # address 1 is due in odd blocks, 2 in even ones; two blocks cover both
    assert book.due(7, 7) == [A] and book.due(8, 8) == [B] and book.due(7, 8) == [A, B]
    book.update([A], [])  # nothing left: the row is cleared
    assert not book.arrays()[0].any()


def test_evaluation_opens_a_flag_naming_its_rule_and_usd_at_risk() -> None:
    eth30 = StressSet.from_scenarios(("WETH", "USDC"), [("eth-30", [0.7, 1.0])])
    stress = StressInputs(None, eth30, {A: 1234.0}, 5000.0)
    settings = SimpleNamespace(
        alpha=0.975,
        margin="liquidation-buffer",
        thresholds=FlagThresholds(),
        min_usd=100.0,
        chunk_rows=1024,
    )
    coll = np.array([[50.0, 0.0], [0.0, 0.0]])
    debt = np.array([[0.0, 63_800.0], [0.0, 0.0]])
    enabled = np.ones((2, 2), dtype=bool)
    result = evaluate_book(coll, debt, enabled, np.array([2000.0, 1.0]), RESERVES, stress, settings)
    changed, events = assess(
        {}, [A, B], result, 9, clear_blocks=3, contributions=stress.contributions
    )
    assert [f.account for f in changed] == [A]  # B has nothing at stake
    (ev,) = events
    assert ev.kind == "open" and ev.rule == "stress:eth-30" and ev.stress_name == "eth-30"
    assert ev.es_contribution_usd == 1234.0
    # 30% off $100k at LT 0.83 is $24,900 of buffer against $19,200, and the state is
    # liquidatable (HF after = 58,100 / 63,800 < 1): the liquidation bonus is added
    assert ev.stress_loss_usd > 24_900.0 and ev.at_risk_usd == ev.stress_loss_usd - 19_200.0
