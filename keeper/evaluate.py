"""One block's evaluation: the book and prices in, the changed flags and events out.

The numbers come from ``simulator.stress.evaluate`` (in the caller's worker thread), with each
account's e-mode LT, bonus and price ratio where it is in an e-mode category; this
module turns them into ``keeper.flags.Assessment`` rows (rule, USD at risk, the worst named
stress, the ES contribution from ``--stress-from``) and runs the flag state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from keeper.flags import Assessment, Flag, FlagEvent, step
from keeper.positions import EModeClasses
from keeper.stress_inputs import StressInputs
from simulator.stress import RULE_ES, RULE_STRESS, StressEvaluation
from simulator.stress import evaluate as stress_evaluate

__all__ = ["accounts_to_evaluate", "assess", "evaluate_book"]


def accounts_to_evaluate(
    book: Any,
    read: Sequence[str],
    flags: Mapping[str, Flag],
    *,
    everyone: bool,
) -> tuple[list[str], np.ndarray | None]:
    """Which accounts of ``book`` (``keeper.positions.Positions``) to re-evaluate, and their
    rows (``None``: all rows, in book order).

    ``everyone`` (a full refresh, or prices or the stress set moved): every account. Else
    only the accounts just ``read`` and those with an open flag (so a flag can clear or
    escalate without a price move): nobody else's inputs changed.
    """
    if everyone:
        return list(book.accounts), None
    subset = set(read) | {a for a, f in flags.items() if f.status == "open"}
    chosen = sorted(a for a in subset if a in book.row)
    return chosen, np.fromiter((book.row[a] for a in chosen), dtype=np.int64, count=len(chosen))


def evaluate_book(
    coll: np.ndarray,
    debt: np.ndarray,
    enabled: np.ndarray,
    prices: np.ndarray,
    reserves: Sequence[Any],
    stress: StressInputs,
    settings: Any,
    *,
    emode: EModeClasses | None = None,
    categories: np.ndarray | None = None,
    source_usd: Mapping[str, float] | None = None,
) -> StressEvaluation:
    """``simulator.stress.evaluate`` with the keeper's settings (alpha, margin, thresholds,
    ``--min-usd``, chunk size) and each account's LT, bonus and price ratio: its e-mode
    class's (``emode`` over the accounts' ``categories``, the price sources' USD prices in
    ``source_usd``), else the reserves' own."""
    s = settings
    fee = np.array([r.protocol_fee for r in reserves])
    if emode is None or categories is None:
        lt: np.ndarray = np.array([r.liquidation_threshold for r in reserves])
        bonus: np.ndarray = np.array([r.liquidation_bonus for r in reserves])
        ratio = None
    else:
        cls = emode.classes(categories)
        lt, bonus = emode.lt[cls], emode.bonus[cls]
        ratio = emode.price_ratio(prices, source_usd or {})[cls] if emode.price_sources else None
    return stress_evaluate(
        coll,
        debt,
        enabled,
        prices,
        lt,
        stress.probabilistic,
        named=stress.named,
        liquidation_bonus=bonus,
        protocol_fee=fee,
        price_ratio=ratio,
        alpha=s.alpha,
        margin=s.margin,
        thresholds=s.thresholds,
        min_usd=s.min_usd,
        chunk_rows=s.chunk_rows,
    )


def assess(
    flags: Mapping[str, Flag],
    accounts: Sequence[str],
    result: StressEvaluation,
    block: int,
    *,
    clear_blocks: int,
    contributions: Mapping[str, float] | None = None,
) -> tuple[list[Flag], list[FlagEvent]]:
    """The flag state machine over ``result`` (``accounts[i]`` is row ``i``)."""

    def details(i: int) -> Assessment:
        r = result
        code = int(r.rule[i])
        name = r.stress_name(i)
        rule = "es" if code == RULE_ES else f"stress:{name}" if code == RULE_STRESS else ""
        k = int(r.worst_stress[i])
        return Assessment(
            es_usd=float(r.es_usd[i]),
            margin_usd=float(r.margin_usd[i]),
            severity=int(r.severity[i]),
            safe=bool(r.safe[i]),
            rule=rule,
            at_risk_usd=float(r.at_risk_usd[i]),
            debt_usd=float(r.debt_usd[i]),
            stress_name=name,
            stress_loss_usd=float(r.stress_loss_usd[i, k]) if k >= 0 else 0.0,
            es_contribution_usd=contributions.get(accounts[i]) if contributions else None,
        )

    return step(
        flags,
        accounts,
        result.es_usd,
        result.margin_usd,
        result.severity,
        result.safe,
        block,
        clear_blocks=clear_blocks,
        details=details,
    )
