"""One block's evaluation: the book and prices in, the changed flags and events out.

The numbers come from the simulator (in the caller's worker thread): on Aave V3
``simulator.stress.evaluate``, with each account's e-mode LT, bonus and price ratio where it
is in an e-mode category; on Compound V3 ``simulator.stress_comet.evaluate_comet``, the
reserves' loss when the account is absorbed and its collateral sold at the store front, with
the market's terms (``comet_terms``). This module turns them into ``keeper.flags.Assessment``
rows (rule, USD at risk, the worst named stress, the ES contribution from ``--stress-from``)
and runs the flag state machine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from keeper.adapters.compound_v3 import FACTOR_SCALE, CometReserve
from keeper.flags import Assessment, Flag, FlagEvent, step
from keeper.positions import EModeClasses
from keeper.stress_inputs import StressInputs
from simulator.stress import RULE_ES, RULE_STRESS, StressEvaluation
from simulator.stress import evaluate as stress_evaluate
from simulator.stress_comet import CometLossTerms, evaluate_comet

__all__ = [
    "EvaluationCache",
    "accounts_to_evaluate",
    "assess",
    "comet_terms",
    "evaluate_book",
    "same_terms",
    "take_rows",
]


def comet_terms(reserves: Sequence[Any], adapter: Any) -> CometLossTerms | None:
    """The Comet terms of a market whose ``reserves`` the Compound V3 adapter read (its
    ``state`` holds storeFrontPriceFactor), converted from Comet's 1e18 scale; ``None`` for
    any other market."""
    comet = [r for r in reserves if isinstance(r, CometReserve)]
    if not comet:
        return None
    state = getattr(adapter, "state", None)
    if state is None or len(comet) != len(reserves):
        raise RuntimeError("a Comet market's terms need every reserve and the adapter's state")
    bases = [j for j, r in enumerate(comet) if r.is_base]
    if len(bases) != 1:
        raise RuntimeError(f"a Comet market has one base asset; {len(bases)} read")
    return CometLossTerms(
        base=bases[0],
        liquidate_cf=np.array([r.liquidate_collateral_factor / FACTOR_SCALE for r in comet]),
        liquidation_factor=np.array([r.liquidation_factor / FACTOR_SCALE for r in comet]),
        store_front_price_factor=state.store_front_price_factor / FACTOR_SCALE,
    )


def same_terms(a: CometLossTerms | None, b: CometLossTerms | None) -> bool:
    """Both ``None``, or the same base, factors and store-front factor."""
    if a is None or b is None:
        return a is b
    return (
        a.base == b.base
        and a.store_front_price_factor == b.store_front_price_factor
        and np.array_equal(a.liquidate_cf, b.liquidate_cf)
        and np.array_equal(a.liquidation_factor, b.liquidation_factor)
    )


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
    comet: CometLossTerms | None = None,
) -> StressEvaluation:
    """``simulator.stress.evaluate`` with the keeper's settings (alpha, margin, thresholds,
    ``--min-usd``, chunk size) and each account's LT, bonus and price ratio: its e-mode
    class's (``emode`` over the accounts' ``categories``, the price sources' USD prices in
    ``source_usd``), else the reserves' own. With ``comet`` (a Compound V3 market's terms,
    ``comet_terms``): ``simulator.stress_comet.evaluate_comet`` with the same settings (Comet
    has no e-mode and no enable flag: every collateral held counts)."""
    s = settings
    if comet is not None:
        return evaluate_comet(
            coll,
            debt,
            prices,
            comet,
            stress.probabilistic,
            named=stress.named,
            alpha=s.alpha,
            margin=s.margin,
            thresholds=s.thresholds,
            min_usd=s.min_usd,
            chunk_rows=s.chunk_rows,
        )
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


_ROW_FIELDS = (
    "es_usd",
    "margin_usd",
    "debt_usd",
    "stress_loss_usd",
    "worst_stress",
    "at_risk_usd",
    "rule",
    "severity",
    "safe",
)


def take_rows(result: StressEvaluation, rows: np.ndarray | None) -> StressEvaluation:
    """The evaluation of ``rows`` only (``None``: all of it)."""
    if rows is None:
        return result
    return replace(result, **{f: getattr(result, f)[rows] for f in _ROW_FIELDS})


class EvaluationCache:
    """Every account's last evaluation, so that a block re-evaluates only the accounts whose
    inputs changed: those read at the block (their positions may have moved) and, after a
    price move, those holding (or owing) an asset whose price moved, or valued by an e-mode
    price source that moved. Another account's loss in every state, its ES, margin and
    severity are functions of its own balances and of the prices of what it holds, so its
    cached row is what a new evaluation would give. A new stress set, e-mode table or Comet
    terms, or a book that shrank (rebuilt), evaluates everyone.
    """

    def __init__(self) -> None:
        self._result: StressEvaluation | None = None
        self._prices: np.ndarray | None = None
        self._sources: dict[str, float] = {}
        self._inputs: tuple[Any, Any, Any] = (None, None, None)  # stress set, e-mode, Comet
        self.last_evaluated = 0
        """Rows evaluated by the last ``evaluate`` call."""

    def reset(self) -> None:
        self._result = None

    def _stale_rows(
        self,
        coll: np.ndarray,
        debt: np.ndarray,
        categories: np.ndarray | None,
        prices: np.ndarray,
        source_usd: Mapping[str, float],
        emode: EModeClasses | None,
        changed: np.ndarray,
    ) -> np.ndarray:
        assert self._result is not None and self._prices is not None
        n, cached = coll.shape[0], self._result.es_usd.shape[0]
        stale = np.zeros(n, dtype=bool)
        stale[changed] = True
        stale[cached:] = True  # accounts added since (they were read too)
        moved = prices != self._prices
        if moved.any():
            stale |= ((coll[:, moved] != 0.0) | (debt[:, moved] != 0.0)).any(axis=1)
        if emode is not None and categories is not None:
            moved_src = {s for s, v in source_usd.items() if self._sources.get(s) != v}
            for k, row in enumerate(emode.sources):
                if moved_src & set(row):
                    stale |= emode.classes(categories) == k
        return np.flatnonzero(stale)

    def evaluate(
        self,
        coll: np.ndarray,
        debt: np.ndarray,
        enabled: np.ndarray,
        prices: np.ndarray,
        reserves: Sequence[Any],
        stress: StressInputs,
        settings: Any,
        *,
        changed: np.ndarray,
        emode: EModeClasses | None = None,
        categories: np.ndarray | None = None,
        source_usd: Mapping[str, float] | None = None,
        comet: CometLossTerms | None = None,
    ) -> StressEvaluation:
        """The evaluation of every row of the book (``evaluate_book``), recomputing only the
        rows ``changed`` (read at this block) and those the price move reaches."""
        sources = dict(source_usd or {})
        inputs = (stress, emode, comet)
        res = self._result
        same = all(x is y for x, y in zip(inputs, self._inputs, strict=True))
        if res is None or not same or res.es_usd.shape[0] > coll.shape[0]:
            rows = None
        else:
            rows = self._stale_rows(coll, debt, categories, prices, sources, emode, changed)

        def run(r: np.ndarray | None) -> StressEvaluation:
            pick = (lambda a: a) if r is None else (lambda a: a[r])
            cats = None if categories is None else pick(categories)
            return evaluate_book(
                pick(coll), pick(debt), pick(enabled), prices, reserves, stress, settings,
                emode=emode, categories=cats, source_usd=sources, comet=comet,
            )  # fmt: skip

        if rows is None:
            full = run(None)
            self.last_evaluated = coll.shape[0]
        else:
            assert res is not None
            n, cached = coll.shape[0], res.es_usd.shape[0]
            arrays = {}
            for f in _ROW_FIELDS:
                old = getattr(res, f)
                grown = np.zeros((n, *old.shape[1:]), dtype=old.dtype)
                grown[:cached] = old
                arrays[f] = grown
            if rows.size:
                part = run(rows)
                for f in _ROW_FIELDS:
                    arrays[f][rows] = getattr(part, f)
            full = replace(res, **arrays)
            self.last_evaluated = int(rows.size)
        self._result, self._prices, self._sources, self._inputs = (
            full,
            prices.copy(),
            sources,
            inputs,
        )
        return full


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
