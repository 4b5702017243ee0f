"""The flag state machine: which evaluations open, escalate or clear a flag.

Pure bookkeeping, no I/O: the previous flags and one block's evaluation in, the changed
flags and the events to publish out. The numbers (stressed ES, margin, severity, the safe
mask) come from ``simulator.stress``; this module only remembers.

Rules (one flag episode per account at a time):

- **open**: an account without an open flag is over its margin (severity >= 1).
- **escalate**: an open flag's severity rises above the highest severity already published
  for this episode. A flag that drops back and rises again to the same level is not
  re-announced, so an account flapping between two levels sends one message.
- **clear**: an open flag's account has been *safe* (ES below 90% of the margin, or no debt)
  at every evaluation for ``clear_blocks`` blocks: the first safe evaluation at block ``b``
  and the current block ``>= b + clear_blocks - 1``. Any evaluation that is not safe restarts
  the count. Between "over" and "safe" a flag keeps its state (hysteresis).

Event ids are ``"<block>:<account>:<kind>"``: re-processing a block after a crash produces
the same ids, which the store and the sinks de-duplicate on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulator.stress import SEVERITIES

__all__ = ["DEFAULT_CLEAR_BLOCKS", "Flag", "FlagEvent", "step"]

#: Blocks an open flag's account must stay safe before the flag clears.
DEFAULT_CLEAR_BLOCKS = 3

EventKind = Literal["open", "escalate", "clear"]


@dataclass(frozen=True, slots=True)
class Flag:
    """One account's current (or last) flag episode: a row of the ``flags`` table.

    Attributes:
        account: checksummed account address.
        status: ``"open"`` or ``"cleared"``.
        severity: highest severity published in this episode (``low`` .. ``critical``).
        first_block: block at which the episode opened.
        last_block: last block at which the flag was evaluated while open (the clearing
            block once cleared).
        es_usd: stressed ES at ``last_block``, USD.
        margin_usd: posted margin at ``last_block``, USD.
        safe_since: first block of the current run of safe evaluations, ``None`` if the last
            evaluation was not safe.
    """

    account: str
    status: Literal["open", "cleared"]
    severity: str
    first_block: int
    last_block: int
    es_usd: float
    margin_usd: float
    safe_since: int | None = None


@dataclass(frozen=True, slots=True)
class FlagEvent:
    """A change worth telling someone about.

    Attributes:
        event_id: ``"<block>:<account>:<kind>"``, stable across re-processing.
        kind: ``open``, ``escalate`` or ``clear``.
        account: checksummed account address.
        block: block number of the evaluation.
        severity: severity after the change (for ``clear``: the episode's peak).
        previous_severity: severity before (``none`` for ``open``).
        es_usd: stressed ES at ``block``, USD.
        margin_usd: posted margin at ``block``, USD.
    """

    event_id: str
    kind: EventKind
    account: str
    block: int
    severity: str
    previous_severity: str
    es_usd: float
    margin_usd: float


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def step(
    flags: Mapping[str, Flag],
    accounts: Sequence[str],
    es_usd: npt.ArrayLike,
    margin_usd: npt.ArrayLike,
    severity: npt.ArrayLike,
    safe: npt.ArrayLike,
    block: int,
    *,
    clear_blocks: int = DEFAULT_CLEAR_BLOCKS,
) -> tuple[list[Flag], list[FlagEvent]]:
    """Advance the flags by one evaluation at ``block``.

    ``accounts[i]`` was evaluated with ``es_usd[i]``, ``margin_usd[i]``, severity code
    ``severity[i]`` (0 none .. 4 critical) and ``safe[i]``. Accounts not in ``accounts`` keep
    their flags untouched. Returns the flags that changed (to upsert) and the events, in
    account order.
    """
    if clear_blocks < 1:
        raise ValueError(f"clear_blocks = {clear_blocks}; expected >= 1")
    es = np.asarray(es_usd, dtype=np.float64)
    margin = np.asarray(margin_usd, dtype=np.float64)
    sev = np.asarray(severity, dtype=np.int64)
    ok = np.asarray(safe, dtype=bool)
    index = {a: i for i, a in enumerate(accounts)}
    # Only accounts that are over now, or hold an open flag, can change anything.
    candidates = {accounts[int(i)] for i in np.flatnonzero(sev > 0)}
    candidates.update(a for a, f in flags.items() if f.status == "open" and a in index)
    changed: list[Flag] = []
    events: list[FlagEvent] = []
    for account in sorted(candidates):
        i = index[account]
        code = int(sev[i])
        cur = flags.get(account)
        e, m = float(es[i]), float(margin[i])
        if cur is None or cur.status != "open":
            if code == 0:
                continue
            name = SEVERITIES[code]
            changed.append(Flag(account, "open", name, block, block, e, m, None))
            events.append(
                FlagEvent(f"{block}:{account}:open", "open", account, block, name, "none", e, m)
            )
            continue
        new = replace(cur, last_block=block, es_usd=e, margin_usd=m)
        if code > _rank(cur.severity):
            name = SEVERITIES[code]
            events.append(
                FlagEvent(
                    f"{block}:{account}:escalate",
                    "escalate",
                    account,
                    block,
                    name,
                    cur.severity,
                    e,
                    m,
                )
            )
            new = replace(new, severity=name)
        if ok[i]:
            since = cur.safe_since if cur.safe_since is not None else block
            new = replace(new, safe_since=since)
            if block - since + 1 >= clear_blocks:
                new = replace(new, status="cleared", safe_since=None)
                events.append(
                    FlagEvent(
                        f"{block}:{account}:clear",
                        "clear",
                        account,
                        block,
                        new.severity,
                        new.severity,
                        e,
                        m,
                    )
                )
        else:
            new = replace(new, safe_since=None)
        if new != cur:
            changed.append(new)
    return changed, events
