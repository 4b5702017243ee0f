"""keeper.flags: the flag state machine opens, escalates, clears with hysteresis, never spams."""

from __future__ import annotations

import numpy as np
import pytest

from keeper.flags import Flag, FlagEvent, step
from simulator.stress import classify

A = "0x00000000000000000000000000000000000000aA"
B = "0x00000000000000000000000000000000000000bB"


def _run(
    series: list[tuple[float, float]], clear_blocks: int = 3, start: int = 100
) -> tuple[dict[str, Flag], list[FlagEvent]]:
    """Feed one account's (es, margin) per block through classify and step."""
    flags: dict[str, Flag] = {}
    events: list[FlagEvent] = []
    for k, (es, margin) in enumerate(series):
        sev, safe = classify(np.array([es]), np.array([margin]), np.array([1.0]))
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
