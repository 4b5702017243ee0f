"""keeper.flags: the flag state machine opens, escalates, clears with hysteresis, never spams."""

from __future__ import annotations

import numpy as np
import pytest

from keeper.flags import Flag, FlagEvent, step
from simulator.stress import Severity, classify

#: USD grades so small that these tests grade by ratio alone.
RATIO_ONLY = Severity(1e-9, 2e-9, 3e-9)

A = "0x00000000000000000000000000000000000000aA"
B = "0x00000000000000000000000000000000000000bB"


def _run(
    series: list[tuple[float, float]], clear_blocks: int = 3, start: int = 100
) -> tuple[dict[str, Flag], list[FlagEvent]]:
    """Feed one account's (es, margin) per block through classify and step."""
    flags: dict[str, Flag] = {}
    events: list[FlagEvent] = []
    for k, (es, margin) in enumerate(series):
        sev, safe = classify(
            np.array([es]), np.array([margin]), np.array([1.0]), usd_grades=RATIO_ONLY
        )
        changed, evs = step(
            flags, [A], [es], [margin], sev, safe, start + k, clear_blocks=clear_blocks
        )
        flags.update({f.account: f for f in changed})
        events.extend(evs)
    return flags, events


def test_opens_when_es_exceeds_margin() -> None:
    flags, events = _run([(50, 100), (110, 100)])
    assert [(e.kind, e.block, e.severity) for e in events] == [("open", 101, "low")]
    assert flags[A].status == "open" and flags[A].first_block == 101
    assert events[0].event_id == f"101:{A}:open"


def test_escalates_once_per_level_even_when_flapping() -> None:
    series = [(110, 100), (300, 100), (110, 100), (300, 100), (110, 100), (500, 100)]
    _, events = _run(series)
    assert [(e.kind, e.severity, e.previous_severity) for e in events] == [
        ("open", "low", "none"),
        ("escalate", "high", "low"),
        ("escalate", "critical", "high"),
    ]


def test_clears_only_after_n_safe_blocks() -> None:
    series = [(110, 100), (50, 100), (50, 100), (50, 100), (50, 100)]
    flags, events = _run(series, clear_blocks=3)
    kinds = [(e.kind, e.block) for e in events]
    assert kinds == [("open", 100), ("clear", 103)]
    assert flags[A].status == "cleared" and flags[A].last_block == 103


def test_hysteresis_band_keeps_flag_open() -> None:
    # 95 is under the margin but not under 0.9 x margin: no clear, no re-open.
    series = [(110, 100)] + [(95, 100)] * 10
    flags, events = _run(series)
    assert [e.kind for e in events] == ["open"]
    assert flags[A].status == "open"


def test_flapping_account_does_not_spam() -> None:
    series = [(110, 100), (50, 100)] * 20
    _, events = _run(series, clear_blocks=3)
    assert [e.kind for e in events] == ["open"]


def test_reopens_after_clear_as_new_episode() -> None:
    series = [(110, 100), (50, 100), (50, 100), (50, 100), (200, 100)]
    flags, events = _run(series, clear_blocks=3)
    assert [(e.kind, e.block) for e in events] == [("open", 100), ("clear", 103), ("open", 104)]
    assert flags[A].first_block == 104 and flags[A].severity == "medium"


def test_safe_run_broken_by_unsafe_evaluation_restarts() -> None:
    series = [(110, 100), (50, 100), (50, 100), (95, 100), (50, 100), (50, 100), (50, 100)]
    _, events = _run(series, clear_blocks=3)
    assert [(e.kind, e.block) for e in events] == [("open", 100), ("clear", 106)]


def test_clear_blocks_counts_blocks_not_evaluations() -> None:
    flags: dict[str, Flag] = {}
    sev, safe = classify(np.array([110.0]), np.array([100.0]), np.array([1.0]))
    changed, _ = step(flags, [A], [110.0], [100.0], sev, safe, 10)
    flags.update({f.account: f for f in changed})
    sev, safe = classify(np.array([10.0]), np.array([100.0]), np.array([1.0]))
    changed, ev = step(flags, [A], [10.0], [100.0], sev, safe, 11, clear_blocks=3)
    flags.update({f.account: f for f in changed})
    assert ev == []
    changed, ev = step(flags, [A], [10.0], [100.0], sev, safe, 20, clear_blocks=3)
    assert [e.kind for e in ev] == ["clear"]


def test_accounts_not_evaluated_are_untouched_and_order_is_stable() -> None:
    flags = {B: Flag(B, "open", "low", 1, 1, 110.0, 100.0)}
    es = np.array([300.0])
    sev, safe = classify(es, np.array([100.0]), np.array([1.0]))
    changed, events = step(flags, [A], es, [100.0], sev, safe, 5)
    assert [f.account for f in changed] == [A]
    assert [e.account for e in events] == [A]


def test_bad_clear_blocks() -> None:
    with pytest.raises(ValueError, match="clear_blocks"):
        step({}, [], [], [], [], [], 1, clear_blocks=0)


def test_deescalates_after_clear_blocks_below_and_not_on_a_blip() -> None:
    # critical, one blip down (no event), then three blocks at medium: deescalate once.
    series = [(500, 100), (150, 100), (500, 100), (150, 100), (150, 100), (150, 100)]
    flags, events = _run(series, clear_blocks=3)
    assert [(e.kind, e.severity, e.previous_severity, e.block) for e in events] == [
        ("open", "critical", "none", 100),
        ("deescalate", "medium", "critical", 105),
    ]
    assert flags[A].severity == "medium" and flags[A].status == "open"
    # rising again is announced anew
    _, again = _run([*series, (500, 100)], clear_blocks=3)
    assert [e.kind for e in again][-1] == "escalate"


def test_severity_needs_usd_at_risk_as_well_as_ratio() -> None:
    es = np.array([5.0, 50_000.0, 5_000_000.0, 0.0])
    margin = np.array([-1.0, 1_000.0, 100_000.0, 0.0])
    debt = np.array([500.0, 500_000.0, 5_000_000.0, 0.0])
    sev, _ = classify(es, margin, debt, min_usd=100.0)
    # $6 at risk with margin < 0 is low, not critical; $49k at 50x is medium; $4.9M critical
    assert sev.tolist() == [1, 2, 4, 0]


def test_zero_account_is_never_flagged() -> None:
    sev, safe = classify(np.array([1e9]), np.array([0.0]), np.array([0.0]), min_usd=100.0)
    assert sev.tolist() == [0] and safe.tolist() == [True]
    small, _ = classify(np.array([1e3]), np.array([-5.0]), np.array([99.0]), min_usd=100.0)
    assert small.tolist() == [0]


def test_flag_names_the_rule_that_opened_it() -> None:
    from keeper.flags import Assessment

    def details(i: int) -> Assessment:
        return Assessment(50.0, 100.0, 2, False, "stress:ftx-2022", 80.0, 1000.0, "ftx-2022", 180.0)

    changed, events = step({}, [A], [50.0], [100.0], [2], [False], 7, details=details)
    assert changed[0].rule == "stress:ftx-2022" and events[0].rule == "stress:ftx-2022"
    assert events[0].at_risk_usd == 80.0 and events[0].stress_loss_usd == 180.0
