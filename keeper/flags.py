"""The flag state machine: which evaluations open, escalate or clear a flag.

Pure bookkeeping, no I/O: the previous flags and one block's evaluation in, the changed
flags and the events to publish out. A flag records the rule that opened it (``es``: the
probabilistic ES above the margin; ``stress:<name>``: a named stress loss above it) and
carries the USD at risk (binding loss minus margin). The numbers (stressed ES, margin, severity, the safe
mask) come from ``simulator.stress``; this module only remembers.

Rules (one flag episode per account at a time):

- **open**: an account without an open flag is over its margin (severity >= 1).
- **escalate**: an open flag's severity rises above the severity last published for it. A
  flag that drops back briefly (fewer than ``clear_blocks`` blocks) and rises again to the
  same level is not re-announced, so an account flapping between two levels sends one
  message.
- **de-escalate**: an open flag's severity has stayed below the published one at every
  evaluation for ``clear_blocks`` blocks: the flag's severity steps down to the highest
  severity seen in that run, and a ``deescalate`` event says so. Rising again afterwards
  escalates (and is announced) anew.
- **clear**: an open flag's account has been *safe* (ES below 90% of the margin, or no debt)
  at every evaluation for ``clear_blocks`` blocks: the first safe evaluation at block ``b``
  and the current block ``>= b + clear_blocks - 1``. Any evaluation that is not safe restarts
  the count. Between "over" and "safe" a flag keeps its state (hysteresis).

Event ids are ``"<block>:<account>:<kind>"``: re-processing a block after a crash produces
the same ids, which the store and the sinks de-duplicate on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from simulator.stress import SEVERITIES

__all__ = ["DEFAULT_CLEAR_BLOCKS", "Assessment", "Flag", "FlagEvent", "step"]

#: Blocks an open flag's account must stay safe before the flag clears.
DEFAULT_CLEAR_BLOCKS = 3

EventKind = Literal["open", "escalate", "deescalate", "clear"]


@dataclass(frozen=True, slots=True)
class Assessment:
    """One account's evaluation at a block (what ``step`` reads of it).

    Attributes:
        es_usd: stressed ES (probabilistic set), USD.
        margin_usd: posted margin, USD.
        severity: code 0 none .. 4 critical.
        safe: below the clearing threshold.
        rule: ``es``, ``stress:<name>`` or ``""`` when not over.
        at_risk_usd: binding loss minus margin, >= 0, USD.
        debt_usd: debt value, USD.
        stress_name: the worst named stress ('' without).
        stress_loss_usd: the loss under it, USD.
        es_contribution_usd: Euler contribution to the protocol's ES (``--stress-from``), or
            ``None``.
    """

    es_usd: float
    margin_usd: float
    severity: int
    safe: bool
    rule: str = ""
    at_risk_usd: float = 0.0
    debt_usd: float = 0.0
    stress_name: str = ""
    stress_loss_usd: float = 0.0
    es_contribution_usd: float | None = None


@dataclass(frozen=True, slots=True)
class Flag:
    """One account's current (or last) flag episode: a row of the ``flags`` table.

    Attributes:
        account: checksummed account address.
        status: ``"open"`` or ``"cleared"``.
        severity: severity last published in this episode (``low`` .. ``critical``).
        first_block: block at which the episode opened.
        last_block: last block at which the flag was evaluated while open (the clearing
            block once cleared).
        es_usd: stressed ES at ``last_block``, USD.
        margin_usd: posted margin at ``last_block``, USD.
        safe_since: first block of the current run of safe evaluations, ``None`` if the last
            evaluation was not safe.
        rule: the rule that opened the flag (``es`` or ``stress:<name>``).
        at_risk_usd: USD at risk at ``last_block``.
        below_since: first block of the current run of evaluations below ``severity``.
        below_peak: highest severity code seen in that run.
        es_contribution_usd: Euler contribution to the protocol's ES, when known.
    """

    account: str
    status: Literal["open", "cleared"]
    severity: str
    first_block: int
    last_block: int
    es_usd: float
    margin_usd: float
    safe_since: int | None = None
    rule: str = "es"
    at_risk_usd: float = 0.0
    below_since: int | None = None
    below_peak: int = 0
    es_contribution_usd: float | None = None


@dataclass(frozen=True, slots=True)
class FlagEvent:
    """A change worth telling someone about.

    Attributes:
        event_id: ``"<block>:<account>:<kind>"``, stable across re-processing.
        kind: ``open``, ``escalate``, ``deescalate`` or ``clear``.
        account: checksummed account address.
        block: block number of the evaluation.
        severity: severity after the change (for ``clear``: the last published one).
        previous_severity: severity before (``none`` for ``open``).
        es_usd: stressed ES at ``block``, USD.
        margin_usd: posted margin at ``block``, USD.
        rule: the rule that opened the flag.
        at_risk_usd: USD at risk at ``block``.
        debt_usd: debt value at ``block``, USD.
        stress_name, stress_loss_usd: the worst named stress and its loss.
        es_contribution_usd: Euler contribution to the protocol's ES, or ``None``.
    """

    event_id: str
    kind: EventKind
    account: str
    block: int
    severity: str
    previous_severity: str
    es_usd: float
    margin_usd: float
    rule: str = "es"
    at_risk_usd: float = 0.0
    debt_usd: float = 0.0
    stress_name: str = ""
    stress_loss_usd: float = 0.0
    es_contribution_usd: float | None = None


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
    details: Callable[[int], Assessment] | None = None,
) -> tuple[list[Flag], list[FlagEvent]]:
    """Advance the flags by one evaluation at ``block``.

    ``accounts[i]`` was evaluated with ``es_usd[i]``, ``margin_usd[i]``, severity code
    ``severity[i]`` (0 none .. 4 critical) and ``safe[i]``; ``details(i)``, when given, adds
    the rule, USD at risk and the rest of ``Assessment`` (called only for the accounts that
    can change). Accounts not in ``accounts`` keep their flags untouched. Returns the flags
    that changed (to upsert) and the events, in account order.
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

    def event(
        kind: EventKind, account: str, a: Assessment, name: str, before: str, rule: str
    ) -> FlagEvent:
        return FlagEvent(
            f"{block}:{account}:{kind}",
            kind,
            account,
            block,
            name,
            before,
            a.es_usd,
            a.margin_usd,
            rule,
            a.at_risk_usd,
            a.debt_usd,
            a.stress_name,
            a.stress_loss_usd,
            a.es_contribution_usd,
        )

    for account in sorted(candidates):
        i = index[account]
        code = int(sev[i])
        cur = flags.get(account)
        if details is not None:
            a = details(i)
        else:
            a = Assessment(
                float(es[i]),
                float(margin[i]),
                code,
                bool(ok[i]),
                "es" if code else "",
                max(0.0, float(es[i]) - float(margin[i])),
            )
        e, m = a.es_usd, a.margin_usd

        if cur is None or cur.status != "open":
            if code == 0:
                continue
            name = SEVERITIES[code]
            rule = a.rule or "es"
            changed.append(
                Flag(
                    account,
                    "open",
                    name,
                    block,
                    block,
                    e,
                    m,
                    None,
                    rule,
                    a.at_risk_usd,
                    None,
                    0,
                    a.es_contribution_usd,
                )
            )
            events.append(event("open", account, a, name, "none", rule))
            continue
        # One open flag's next state, field by field (built once: this runs for every open
        # flag at every block).
        severity_name = cur.severity
        below_since, below_peak = cur.below_since, cur.below_peak
        safe_since: int | None = None
        status: Literal["open", "cleared"] = "open"
        published = _rank(cur.severity)
        if code > published:
            severity_name = SEVERITIES[code]
            events.append(event("escalate", account, a, severity_name, cur.severity, cur.rule))
            below_since, below_peak = None, 0
        elif 0 < code < published or (code == 0 and not ok[i]):
            # Below the published severity (still over, or in the hysteresis band).
            since = cur.below_since if cur.below_since is not None else block
            peak = max(cur.below_peak if cur.below_since is not None else 0, max(code, 1))
            below_since, below_peak = since, peak
            if code < published and block - since + 1 >= clear_blocks and peak < published:
                severity_name = SEVERITIES[peak]
                events.append(
                    event("deescalate", account, a, severity_name, cur.severity, cur.rule)
                )
                below_since, below_peak = None, 0
        elif code == published:
            below_since, below_peak = None, 0
        if ok[i]:
            safe_since = cur.safe_since if cur.safe_since is not None else block
            if block - safe_since + 1 >= clear_blocks:
                status, safe_since, below_since, below_peak = "cleared", None, None, 0
                events.append(event("clear", account, a, severity_name, severity_name, cur.rule))
        new = Flag(
            account,
            status,
            severity_name,
            cur.first_block,
            block,
            e,
            m,
            safe_since,
            cur.rule,
            a.at_risk_usd,
            below_since,
            below_peak,
            a.es_contribution_usd,
        )
        if new != cur:
            changed.append(new)
    return changed, events
