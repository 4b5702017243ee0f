"""Stressed Expected Shortfall on a Compound V3 (Comet) market: the reserves' loss per account.

``simulator.stress`` scores an Aave account by the fall of its own margin plus the
liquidation bonus a liquidation would cost it. On Comet the loss that matters is the
protocol's: a liquidatable account is ``absorb``-ed, the reserves pay for it, and what they get
back is what its collateral fetches at the store front. This module computes that loss with
``simulator.cascade.comet_rules`` (the functions both cascade engines call), arrays in,
arrays out, and hands it to the same ES, severity and flag rule as the Aave one
(``simulator.stress.evaluation``).

**The loss at a state.** Under the stressed prices ``q = price x multipliers`` an account
owing ``debt`` base tokens is liquidatable when ``sum(amount x q x liquidateCollateralFactor)
< debt x q_base`` (``comet_rules.is_liquidatable``). Then it is absorbed
(``comet_rules.absorb``): the reserves pay out ``max(credit, debt)`` base tokens (credit = the
collateral's value x liquidationFactor / q_base) and take all its collateral, which the store
front sells at ``q x (1 - storeFrontPriceFactor x (1 - liquidationFactor))``
(``comet_rules.store_front_discount``). The reserves' loss on the account is, USD::

    max(credit, debt) x q_base - sum(amount x q x (1 - store_front_discount)),  floored at 0

and 0 where the account is not liquidatable. This is the reserve drawdown the cascade engine
gives for the account alone when the state is reached in one step, the oracle follows it,
venues are infinitely deep, gas is free and the store front is open (reserves below target)
(``tests/test_keeper_comet.py`` pins it). A surplus (credit above the debt) stays with the
account as a base supply and costs the reserves nothing beyond the collateral's worth, so
an account whose credit covers its debt costs nothing.

**Scenarios** are as for Aave (``simulator.stress``): a scenario's loss is its worst point,
the probabilistic set's ES (Acerbi-Tasche, ``es_weighted``) is compared with the margin, and
each named stress is scored alone.

**Margin.** ``liquidation-buffer``: Comet's liquidation margin,
``comet_rules.liquidation_margin_usd`` (the base balance's value, negative for a borrower,
plus each collateral's value x liquidateCollateralFactor): the cushion before ``absorb``.
``equity``: the collateral's value plus the base balance's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import InputError
from simulator.stress import (
    DEFAULT_ALPHA,
    DEFAULT_CHUNK_ROWS,
    DEFAULT_MIN_USD,
    MARGIN_KINDS,
    FlagThresholds,
    MarginKind,
    Severity,
    StressEvaluation,
    StressSet,
    es_weighted,
    evaluation,
)

__all__ = ["CometLossTerms", "comet_margin_usd", "comet_point_losses", "evaluate_comet"]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CometLossTerms:
    """What the reserves' loss needs of a Comet market besides balances and prices.

    Attributes:
        base: column of the base asset (the only one borrowed; never collateral).
        liquidate_cf: liquidateCollateralFactor per asset, fraction, ``(n_assets,)`` (0 for
            the base).
        liquidation_factor: liquidationFactor per asset, fraction, ``(n_assets,)`` (0 for
            the base).
        store_front_price_factor: storeFrontPriceFactor, fraction.
    """

    base: int
    liquidate_cf: FloatArray
    liquidation_factor: FloatArray
    store_front_price_factor: float

    def __post_init__(self) -> None:
        lcf = np.asarray(self.liquidate_cf, dtype=np.float64)
        lf = np.asarray(self.liquidation_factor, dtype=np.float64)
        object.__setattr__(self, "liquidate_cf", lcf)
        object.__setattr__(self, "liquidation_factor", lf)
        if lcf.ndim != 1 or lf.shape != lcf.shape:
            raise InputError(
                f"Comet liquidate_cf {lcf.shape} and liquidation_factor {lf.shape} must be "
                "one fraction per asset each"
            )
        for name, arr in (("liquidate_cf", lcf), ("liquidation_factor", lf)):
            bad = np.flatnonzero(~(np.isfinite(arr) & (arr >= 0.0) & (arr <= 1.0)))
            if bad.size:
                raise InputError(
                    f"Comet {name}[{int(bad[0])}] = {arr[bad[0]]!r}; expected a fraction in [0, 1]"
                )
        if not 0 <= self.base < lcf.size:
            raise InputError(f"Comet base column {self.base}; expected one of 0..{lcf.size - 1}")
        if not 0.0 <= float(self.store_front_price_factor) <= 1.0:
            raise InputError(
                f"Comet store_front_price_factor = {self.store_front_price_factor!r}; expected "
                "a fraction in [0, 1]"
            )

    @property
    def n_assets(self) -> int:
        return int(self.liquidate_cf.size)

    @classmethod
    def from_book(cls, book: Any) -> CometLossTerms:
        """The terms of a ``simulator.snapshot.Book`` with ``comet`` terms: its
        ``liquidation_threshold`` is the liquidateCollateralFactor."""
        terms = book.comet
        if terms is None:
            raise InputError("the book is not a Compound V3 market (Book.comet is None)")
        return cls(
            base=int(terms.base),
            liquidate_cf=np.asarray(book.liquidation_threshold, dtype=np.float64),
            liquidation_factor=np.asarray(terms.liquidation_factor, dtype=np.float64),
            store_front_price_factor=float(terms.store_front_price_factor),
        )


_KERNELS: Any = None


def _kernels() -> tuple[Any, Any]:
    """Compile (once) the loss and margin kernels over ``comet_rules``."""
    global _KERNELS
    if _KERNELS is not None:
        return _KERNELS  # type: ignore[no-any-return]
    import numba

    from simulator.cascade import comet_rules

    jit = numba.njit(cache=False, nogil=True, error_model="numpy")
    liquidatable = jit(comet_rules.is_liquidatable)
    absorb = jit(comet_rules.absorb)
    discount = jit(comet_rules.store_front_discount)
    margin_rule = jit(comet_rules.liquidation_margin_usd)

    @numba.njit(parallel=True, nogil=True, error_model="numpy", cache=False)
    def losses(  # type: ignore[no-untyped-def]  # pragma: no cover - compiled
        amounts, debt, price, lcf, lf, sfpf, base, points, points_t, lo_mult, hi_mult
    ):
        """Reserves' loss of each account (rows of ``amounts``: collateral tokens, the base
        column 0; ``debt`` base tokens) at each state (rows of ``points``), USD."""
        n, m = amounts.shape
        s = points.shape[0]
        out = np.zeros((n, s))
        keep = np.empty(m)
        for j in range(m):
            keep[j] = 1.0 - discount(sfpf, lf[j])
        for i in numba.prange(n):
            d = debt[i]
            if not d > 0.0:
                continue
            # the lowest liquidation margin any state could give (each asset at its own
            # worst multiplier): clearly positive, and no state is liquidatable
            bound = 0.0
            size = 0.0
            for j in range(m):
                x = amounts[i, j] * price[j] * lcf[j]
                if j == base:
                    x -= d * price[j]
                if x > 0.0:
                    bound += x * lo_mult[j]
                else:
                    bound += x * hi_mult[j]
                size += abs(x) * hi_mult[j]
            if bound > 1e-9 * size:
                continue
            # the liquidation margin at every state, one pass per asset held; a state it
            # leaves clearly positive is not liquidatable (the rule decides the others)
            margin_at = np.zeros(s)
            scale = np.zeros(s)
            for j in range(m):
                x = amounts[i, j] * price[j] * lcf[j]
                if j == base:
                    x -= d * price[j]
                if x != 0.0:
                    for k in range(s):
                        v = x * points_t[j, k]
                        margin_at[k] += v
                        scale[k] += abs(v)
            q = np.empty(m)
            held = amounts[i]
            for k in range(s):
                if margin_at[k] > 1e-9 * scale[k]:
                    continue
                for j in range(m):
                    q[j] = price[j] * points[k, j]
                if not liquidatable(held, q, lcf, -d, q[base]):
                    continue
                _value, _credit, _left, paid, _uncovered = absorb(held, q, lf, d, q[base])
                proceeds = 0.0
                for j in range(m):
                    proceeds += held[j] * q[j] * keep[j]
                out[i, k] = max(paid * q[base] - proceeds, 0.0)
        return out

    @numba.njit(nogil=True, error_model="numpy", cache=False)
    def margins(amounts, balance, price, lcf, base, buffer):  # type: ignore[no-untyped-def]
        """Each account's liquidation margin (``buffer``) or equity, USD."""
        n, m = amounts.shape
        ones = np.ones(m)
        out = np.empty(n)
        for i in range(n):
            out[i] = margin_rule(
                amounts[i], price, lcf if buffer else ones, balance[i], price[base]
            )
        return out

    _KERNELS = (losses, margins)
    return _KERNELS  # type: ignore[no-any-return]


def _inputs(
    collateral: npt.ArrayLike, debt: npt.ArrayLike, price_usd: npt.ArrayLike, terms: CometLossTerms
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(collateral amounts with the base column 0, debt in base tokens, signed base balance,
    prices), checked."""
    c = np.asarray(collateral, dtype=np.float64)
    d = np.asarray(debt, dtype=np.float64)
    p = np.asarray(price_usd, dtype=np.float64)
    m = terms.n_assets
    if c.ndim != 2 or c.shape[1] != m or d.shape != c.shape or p.shape != (m,):
        raise InputError(
            f"Comet balances {c.shape} / {d.shape} and prices {p.shape} must be "
            f"(n_accounts, {m}) and ({m},)"
        )
    if not (np.isfinite(p).all() and (p > 0.0).all()):
        raise InputError("Comet prices must be finite and > 0 (USD per token)")
    if not (np.isfinite(c).all() and np.isfinite(d).all() and (c >= 0).all() and (d >= 0).all()):
        raise InputError("Comet balances must be finite and >= 0 (token units)")
    b = terms.base
    others = np.flatnonzero(np.delete(d, b, axis=1).any(axis=0))
    if others.size:
        j = int(others[0]) + (int(others[0]) >= b)
        raise InputError(
            f"Comet debt in column {j}: a Comet account borrows only its base asset (column {b})"
        )
    amounts = c.copy()
    amounts[:, b] = 0.0
    balance = c[:, b] - d[:, b]
    return np.ascontiguousarray(amounts), np.ascontiguousarray(d[:, b]), balance, p


def _states(points: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """The kernel's view of the states: the multipliers, transposed, and each asset's lowest
    and highest multiplier."""
    x = np.ascontiguousarray(points, dtype=np.float64)
    return x, np.ascontiguousarray(x.T), x.min(axis=0), x.max(axis=0)


def comet_point_losses(
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    terms: CometLossTerms,
    points: npt.ArrayLike,
) -> FloatArray:
    """The reserves' loss on each account at each point (price multipliers ``(n_points,
    n_assets)``), USD, ``(n_accounts, n_points)`` (see the module docstring)."""
    amounts, owed, _, p = _inputs(collateral, debt, price_usd, terms)
    pts = np.ascontiguousarray(np.atleast_2d(np.asarray(points, dtype=np.float64)))
    if pts.ndim != 2 or pts.shape[1] != terms.n_assets:
        raise InputError(f"stress points have shape {pts.shape}; expected (n, {terms.n_assets})")
    losses, _ = _kernels()
    out: FloatArray = losses(
        amounts,
        owed,
        p,
        terms.liquidate_cf,
        terms.liquidation_factor,
        float(terms.store_front_price_factor),
        int(terms.base),
        *_states(pts),
    )
    return out


def comet_margin_usd(
    kind: MarginKind,
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    terms: CometLossTerms,
) -> FloatArray:
    """Posted margin per account, USD: ``liquidation-buffer`` is Comet's liquidation margin
    (``comet_rules.liquidation_margin_usd``), ``equity`` the collateral's value plus the
    signed base balance's."""
    if kind not in MARGIN_KINDS:
        raise InputError(f"margin {kind!r} is unknown; expected one of {list(MARGIN_KINDS)}")
    amounts, _, balance, p = _inputs(collateral, debt, price_usd, terms)
    _, margins = _kernels()
    out: FloatArray = margins(
        amounts, balance, p, terms.liquidate_cf, int(terms.base), kind == "liquidation-buffer"
    )
    return out


def _scenario_worst(losses: FloatArray, stress: StressSet) -> FloatArray:
    if stress.n_scenarios == stress.n_points:
        return losses
    return np.asarray(np.maximum.reduceat(losses, stress.starts, axis=1), dtype=np.float64)


def evaluate_comet(
    collateral: npt.ArrayLike,
    debt: npt.ArrayLike,
    price_usd: npt.ArrayLike,
    terms: CometLossTerms,
    stress: StressSet | None,
    *,
    named: StressSet | None = None,
    alpha: float = DEFAULT_ALPHA,
    margin: MarginKind = "equity",
    thresholds: FlagThresholds | None = None,
    usd_grades: Severity | None = None,
    min_usd: float = DEFAULT_MIN_USD,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
) -> StressEvaluation:
    """``simulator.stress.evaluate`` for a Comet market: stressed ES of the reserves' loss on
    each account (the module docstring), named stress losses, margin, rule, severity, safe.

    Balances ``(n_accounts, n_assets)`` in token units (``collateral``: the collateral
    held, and a base supply in the base column; ``debt``: only in the base column), prices
    USD per token. Accounts below ``min_usd`` of debt are never flagged and their losses are
    not computed (reported 0).
    """
    if margin not in MARGIN_KINDS:
        raise InputError(f"margin {margin!r} is unknown; expected one of {list(MARGIN_KINDS)}")
    if stress is None and named is None:
        raise InputError("nothing to evaluate: no probabilistic set and no named stress")
    amounts, owed, _, p = _inputs(collateral, debt, price_usd, terms)
    n = amounts.shape[0]
    debt_usd = owed * p[terms.base]
    margin_now = comet_margin_usd(margin, collateral, debt, price_usd, terms)
    es = np.zeros(n)
    n_named = 0 if named is None else named.n_scenarios
    stress_loss = np.zeros((n, n_named))
    rows = np.flatnonzero((debt_usd > 0.0) & (debt_usd >= min_usd))
    losses, _ = _kernels()
    args = (
        p,
        terms.liquidate_cf,
        terms.liquidation_factor,
        float(terms.store_front_price_factor),
        int(terms.base),
    )

    prob = None if stress is None else _states(stress.points)
    path = None if named is None else _states(named.points)
    step = max(1, chunk_rows)
    for lo in range(0, rows.size, step):
        r = rows[lo : lo + step]
        a, o = amounts[r], owed[r]
        if stress is not None and prob is not None:
            per = _scenario_worst(losses(a, o, *args, *prob), stress)
            hit = per.any(axis=1)  # an account no state hurts has ES 0
            if hit.any():
                es[r[hit]] = es_weighted(per[hit], alpha, stress.weights)
        if named is not None and path is not None:
            stress_loss[r] = _scenario_worst(losses(a, o, *args, *path), named)
    return evaluation(
        es,
        margin_now,
        debt_usd,
        stress_loss,
        named,
        thresholds=thresholds,
        usd_grades=usd_grades,
        min_usd=min_usd,
    )
