"""simulator.stress: stressed ES per account, margins, severities.

The vectorised row-wise ES is checked against an exact-fraction Acerbi-Tasche oracle written
here, and against ``simulator.risk.es`` row by row (through ``stressed_es_reference``).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import InputError, NumericalWarning
from simulator.stress import (
    FlagThresholds,
    Severity,
    StressSet,
    classify,
    es_rows,
    evaluate,
    exposure_usd,
    margin_usd,
    scenario_losses,
    stressed_es,
    stressed_es_reference,
)


def _es_exact(losses: list[float], alpha: float, weights: list[float] | None = None) -> float:
    """Acerbi-Tasche ES with exact fractions: walk the sorted losses, take tail mass."""
    n = len(losses)
    w = [Fraction(1, n)] * n if weights is None else [Fraction(x) for x in weights]
    total = sum(w)
    w = [x / total for x in w]
    tail = 1 - Fraction(alpha)
    remaining = tail
    acc = Fraction(0)
    for loss, wi in sorted(zip(losses, w, strict=True), key=lambda t: -t[0]):
        take = min(wi, remaining)
        acc += Fraction(loss) * take
        remaining -= take
        if remaining <= 0:
            break
    return float(acc / tail)


@pytest.mark.parametrize("n", [1, 7, 40, 200, 2000])
@pytest.mark.parametrize("alpha", [0.5, 0.9, 0.95, 0.975, 0.99])
def test_es_rows_matches_exact_oracle(n: int, alpha: float) -> None:
    rng = np.random.default_rng(n)
    losses = rng.standard_t(3, size=(5, n)) * 1000
    losses[1] = np.round(losses[1] / 500) * 500  # ties
    losses[2] = 0.0  # all ties at zero
    got = es_rows(losses, alpha)
    for i in range(losses.shape[0]):
        assert got[i] == pytest.approx(_es_exact(losses[i].tolist(), alpha), rel=1e-10, abs=1e-9)


def test_es_rows_weighted_matches_exact_oracle() -> None:
    rng = np.random.default_rng(3)
    losses = rng.normal(size=(4, 50))
    losses[3] = np.round(losses[3])
    w = rng.uniform(0.1, 1.0, size=50)
    w /= w.sum()
    got = es_rows(losses, 0.9, w)
    for i in range(4):
        expected = _es_exact(losses[i].tolist(), 0.9, w.tolist())
        assert got[i] == pytest.approx(expected, rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-50, 50), min_size=2, max_size=60),
    st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.975]),
)
def test_es_rows_property_exact(values: list[int], alpha: float) -> None:
    losses = np.asarray([values], dtype=np.float64)
    assert es_rows(losses, alpha)[0] == pytest.approx(_es_exact(values, alpha), abs=1e-9)


def test_es_rows_rejects_bad_input() -> None:
    with pytest.raises(InputError, match="alpha"):
        es_rows(np.zeros((2, 3)), 1.0)
    with pytest.raises(InputError, match="NaN"):
        es_rows(np.array([[1.0, np.nan]]), 0.9)
    with pytest.raises(InputError, match="shape"):
        es_rows(np.zeros(3), 0.9)


def _book(n_accounts: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_assets = 4
    coll = rng.exponential(10.0, size=(n_accounts, n_assets)) * (rng.random((n_accounts, 4)) < 0.6)
    debt = rng.exponential(5.0, size=(n_accounts, n_assets)) * (rng.random((n_accounts, 4)) < 0.4)
    enabled = rng.random((n_accounts, n_assets)) < 0.9
    return {
        "collateral": coll,
        "debt": debt,
        "collateral_enabled": enabled,
        "price_usd": np.array([2000.0, 1.0, 30000.0, 15.0]),
        "liquidation_threshold": np.array([0.825, 0.9, 0.0, 0.7]),
    }


def _stress(seed: int, n_mc: int = 300) -> StressSet:
    rng = np.random.default_rng(seed)
    symbols = ("WETH", "USDC", "WBTC", "LINK")
    crash = np.cumprod(1 + rng.normal(-0.02, 0.03, size=(1, 25, 4)), axis=1)
    crash[:, 0, :] = 1.0
    named = StressSet.from_paths("crash", symbols, crash, terminal_only=False)
    mc = np.exp(rng.normal(0.0, 0.05, size=(n_mc, 2, 4)))
    mc[:, 0, :] = 1.0
    return named.concat(StressSet.from_paths("mc", symbols, mc, terminal_only=True))


def test_stressed_es_matches_risk_es_row_by_row() -> None:
    book = _book(60, seed=1)
    stress = _stress(2)
    x = exposure_usd(**book)
    fast = stressed_es(x, stress, 0.975, chunk_rows=7)
    slow = stressed_es_reference(x, stress, 0.975)
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-6)


def test_scenario_loss_is_worst_point_of_path() -> None:
    symbols = ("A", "B")
    path = np.array([[[1.0, 1.0], [0.5, 1.0], [1.0, 2.0], [0.8, 0.8]]])
    stress = StressSet.from_paths("p", symbols, path, terminal_only=False)
    # long A: worst at the A halving; short B (debt in B): worst at B doubling.
    x = np.array([[100.0, 0.0], [0.0, -100.0], [100.0, -50.0]])
    losses = scenario_losses(x, stress)
    assert losses.shape == (3, 1)
    np.testing.assert_allclose(losses[:, 0], [50.0, 100.0, max(50.0, 50.0, 10.0)])


def test_aligned_keeps_unknown_assets_still() -> None:
    s = StressSet.from_scenarios(("A", "B"), [("x", [0.5, 2.0])])
    t = s.aligned(("B", "C", "A"))
    np.testing.assert_array_equal(t.points, [[2.0, 1.0, 0.5]])


def test_margins_follow_their_definitions() -> None:
    book = _book(30, seed=4)
    p, lt = book["price_usd"], book["liquidation_threshold"]
    eff = np.where(book["collateral_enabled"] & (lt > 0), book["collateral"], 0.0)
    equity = (eff * p).sum(1) - (book["debt"] * p).sum(1)
    buffer = (eff * p * lt).sum(1) - (book["debt"] * p).sum(1)
    np.testing.assert_allclose(margin_usd("equity", **book), equity)
    np.testing.assert_allclose(margin_usd("liquidation-buffer", **book), buffer)
    np.testing.assert_allclose(exposure_usd(**book).sum(1), equity)
    with pytest.raises(InputError, match="unknown"):
        margin_usd("cash", **book)  # type: ignore[arg-type]


def test_classify_severities_and_hysteresis_band() -> None:
    es = np.array([50.0, 95.0, 110.0, 150.0, 300.0, 500.0, 10.0, 1.0, 5.0])
    margin = np.array([100.0, 100.0, 100.0, 100.0, 100.0, 100.0, -5.0, 100.0, 1.0])
    debt = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    sev, safe = classify(es, margin, debt, usd_grades=Severity(1e-9, 2e-9, 3e-9))
    assert sev.tolist() == [0, 0, 1, 2, 3, 4, 4, 0, 0]
    assert safe.tolist() == [True, False, False, False, False, False, False, True, True]
    with pytest.raises(InputError):
        FlagThresholds(medium=0.9)


def _plain_losses(book: dict, bonus: np.ndarray, points: np.ndarray, kind: str) -> np.ndarray:
    """Loss per account and point written plainly: margin fall plus the bonus of the
    largest liquidation ``plan_liquidation`` allows there (LT-weighted for the buffer)."""
    from simulator.cascade import EngineConfig
    from simulator.cascade.rules import FLAG_INVALID, plan_liquidation

    cfg = EngineConfig()
    lt, p = book["liquidation_threshold"], book["price_usd"]
    eff = np.where(book["collateral_enabled"] & (lt > 0), book["collateral"], 0.0)
    debt = book["debt"]
    n = eff.shape[0]
    out = np.zeros((n, points.shape[0]))
    for i in range(n):

        def margin(q: np.ndarray, i: int = i) -> float:
            w = 1.0 if kind == "equity" else lt
            return float((eff[i] * w * q).sum() - (debt[i] * q).sum())

        for k, pt in enumerate(points):
            q = p * pt
            loss = margin(p) - margin(q)
            dv = float((debt[i] * q).sum())
            wv = float((eff[i] * lt * q).sum())
            if dv > 0 and wv < dv:
                jc = int(np.argmax(eff[i] * q))
                jd = int(np.argmax(debt[i] * q))
                if eff[i, jc] > 0:
                    repay, seize, _, flag = plan_liquidation(
                        eff[i, jc],
                        debt[i, jd],
                        dv,
                        wv / dv,
                        q[jc],
                        q[jd],
                        bonus[jc],
                        0.0,
                        cfg.close_factor_threshold_usd,
                        cfg.close_factor_hf,
                        cfg.default_close_factor,
                        cfg.min_leftover_usd,
                    )
                    if flag != FLAG_INVALID:
                        cost = seize * q[jc] - repay * q[jd]
                        loss += cost * (1.0 if kind == "equity" else lt[jc])
            out[i, k] = loss
    return out


@pytest.mark.parametrize("kind", ["equity", "liquidation-buffer"])
def test_evaluate_matches_a_plain_loop_with_the_engines_liquidation(kind: str) -> None:
    from simulator.risk import es as risk_es

    book = _book(60, seed=5)
    bonus = np.array([0.05, 0.045, 0.1, 0.07])
    rng = np.random.default_rng(3)
    probabilistic = StressSet.from_scenarios(
        ("WETH", "USDC", "WBTC", "LINK"),
        [(f"s{i}", np.exp(rng.normal(0, 0.25, 4))) for i in range(120)],
        rng.dirichlet(np.ones(120)),
    )
    named = _stress(6, n_mc=1)
    ev = evaluate(
        **book,
        stress=probabilistic,
        named=named,
        liquidation_bonus=bonus,
        margin=kind,
        alpha=0.95,
        min_usd=0.0,
    )
    losses = _plain_losses(book, bonus, probabilistic.points, kind)
    debtors = ev.debt_usd > 0
    assert 0 < debtors.sum() < debtors.size
    assert (losses[debtors] > ev.margin_usd[debtors, None]).any(), "no state liquidates"
    for i in np.flatnonzero(debtors):
        assert ev.es_usd[i] == pytest.approx(
            risk_es(losses[i], 0.95, probabilistic.weights), rel=1e-9, abs=1e-6
        )
    named_plain = _plain_losses(book, bonus, named.points, kind)
    bounds = [*named.starts.tolist(), named.n_points]
    for s_ in range(named.n_scenarios):
        worst = named_plain[:, bounds[s_] : bounds[s_ + 1]].max(axis=1)
        np.testing.assert_allclose(ev.stress_loss_usd[debtors, s_], worst[debtors], rtol=1e-9)
    np.testing.assert_array_equal(ev.es_usd[~debtors], 0.0)
    over = debtors & (np.maximum(ev.es_usd, ev.stress_loss_usd.max(axis=1)) > ev.margin_usd)
    assert ((ev.severity > 0) == over).all()
    assert ((ev.rule == 1) == (over & (ev.es_usd > ev.margin_usd))).all()


@pytest.mark.parametrize("kind", ["equity", "liquidation-buffer"])
def test_many_states_take_the_filtered_tail_and_stay_exact(kind: str) -> None:
    """Above 512 states the compiled ES selects the tail among the states over a threshold
    drawn from a subsample, and computes liquidation costs only where a loss could reach
    the tail: the ES still equals ``simulator.risk.es`` over the plainly computed losses."""
    from simulator.risk import es as risk_es

    book = _book(24, seed=11)
    bonus = np.array([0.05, 0.045, 0.1, 0.07])
    rng = np.random.default_rng(8)
    n_states = 1500
    states = StressSet.from_scenarios(
        ("WETH", "USDC", "WBTC", "LINK"),
        [(f"s{i}", np.exp(rng.normal(0, 0.2, 4))) for i in range(n_states)],
        rng.dirichlet(np.ones(n_states) * 0.5),
    )
    ev = evaluate(**book, stress=states, liquidation_bonus=bonus, margin=kind, min_usd=0.0)
    losses = _plain_losses(book, bonus, states.points, kind)
    debtors = np.flatnonzero(ev.debt_usd > 0)
    assert debtors.size > 5
    assert (losses[debtors] > ev.margin_usd[debtors, None]).any(), "no state liquidates"
    for i in debtors:
        want = risk_es(losses[i], 0.975, states.weights)
        assert ev.es_usd[i] == pytest.approx(want, rel=1e-9, abs=1e-6)


def test_price_ratio_is_the_accounts_class_price() -> None:
    """An account valued at a class price (``price_ratio``, a v3.0 e-mode price source) scores
    exactly as if the oracle priced its assets there: margins, ES, named losses and the
    liquidation cost; rows with other ratios are each their own book."""
    book = _book(40, seed=9)
    bonus = np.array([0.05, 0.045, 0.1, 0.07])
    stress, named = _stress(2, n_mc=200), _stress(4, n_mc=1)
    ratio = np.array([1.0, 1.0, 1.0, 0.8])
    kw = {"stress": stress, "named": named, "liquidation_bonus": bonus, "min_usd": 0.0}
    kw["margin"] = "liquidation-buffer"
    scaled = dict(book, price_usd=book["price_usd"] * ratio)
    want = evaluate(**scaled, **kw)
    got = evaluate(**book, price_ratio=np.tile(ratio, (40, 1)), **kw)
    for name in ("es_usd", "margin_usd", "debt_usd", "stress_loss_usd", "severity"):
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=1e-12)
    assert (want.es_usd != evaluate(**book, **kw).es_usd).any(), "the ratio must matter"
    mixed = np.tile(ratio, (40, 1))
    mixed[::2] = 1.0  # even rows at the oracle price, odd rows at the class price
    got = evaluate(**book, price_ratio=mixed, **kw)
    plain = evaluate(**book, **kw)
    np.testing.assert_allclose(got.es_usd[::2], plain.es_usd[::2], rtol=1e-12)
    np.testing.assert_allclose(got.es_usd[1::2], want.es_usd[1::2], rtol=1e-12)
    with pytest.raises(InputError, match="price_ratio"):
        evaluate(**book, price_ratio=np.zeros(4), **kw)


def test_buffer_example_is_not_flagged() -> None:
    # $100k of WETH at LT 0.83 against $63,800 of USDC: buffer $19,200. ETH -20% takes
    # $20,000 of equity but only $16,600 of buffer; HF afterwards 1.04: no liquidation.
    eth20 = StressSet.from_scenarios(("WETH", "USDC"), [("eth-20", [0.8, 1.0])])
    ev = evaluate(
        [[50.0, 0.0]],
        [[0.0, 63_800.0]],
        [[True, True]],
        [2000.0, 1.0],
        [0.83, 0.9],
        None,
        named=eth20,
        liquidation_bonus=[0.05, 0.045],
        margin="liquidation-buffer",
    )
    assert ev.margin_usd[0] == pytest.approx(19_200.0)
    assert ev.stress_loss_usd[0, 0] == pytest.approx(16_600.0)
    assert ev.severity[0] == 0 and ev.safe[0]
    eq = evaluate(
        [[50.0, 0.0]],
        [[0.0, 63_800.0]],
        [[True, True]],
        [2000.0, 1.0],
        [0.83, 0.9],
        None,
        named=eth20,
        margin="equity",
    )
    assert eq.stress_loss_usd[0, 0] == pytest.approx(20_000.0)


def test_short_eth_account_has_non_zero_es() -> None:
    # USDC collateral, WETH debt: hurt by ETH going up, which joint states include.
    rng = np.random.default_rng(9)
    states = np.exp(rng.normal(0.0, 0.05, size=(2000, 2)))
    states[:, 1] = 1.0
    s = StressSet.from_scenarios(("WETH", "USDC"), [(str(i), p) for i, p in enumerate(states)])
    ev = evaluate([[0.0, 10_000.0]], [[2.0, 0.0]], [[True, True]], [2000.0, 1.0], [0.8, 0.9], s)
    assert ev.es_usd[0] > 100.0


def test_zero_account_is_never_flagged_by_evaluate() -> None:
    s = StressSet.from_scenarios(("WETH", "USDC"), [("crash", [0.01, 1.0])])
    ev = evaluate(
        [[0.0, 0.0], [0.001, 0.0]],
        [[0.0, 0.0], [0.0, 1.0]],
        [[True, True]] * 2,
        [2000.0, 1.0],
        [0.8, 0.9],
        s,
        named=s,
    )
    assert ev.severity.tolist() == [0, 0] and ev.safe.all()  # $0, and $1 < --min-usd


def test_es_does_not_depend_on_how_many_named_stresses_ship() -> None:
    rng = np.random.default_rng(4)
    symbols = ("WETH", "USDC", "WBTC", "LINK")
    prob = StressSet.from_scenarios(
        symbols, [(str(i), np.exp(rng.normal(0, 0.1, 4))) for i in range(500)]
    )
    paths = [np.cumprod(np.exp(rng.normal(-0.03, 0.05, (30, 4))), axis=0) for _ in range(20)]
    eight = StressSet.from_scenarios(symbols, [(f"f{i}", p) for i, p in enumerate(paths[:8])])
    twenty = StressSet.from_scenarios(symbols, [(f"f{i}", p) for i, p in enumerate(paths)])
    book = _book(200, seed=2)
    a = evaluate(**book, stress=prob, named=eight)
    b = evaluate(**book, stress=prob, named=twenty)
    np.testing.assert_array_equal(a.es_usd, b.es_usd)
    assert (a.es_usd > 0).any()
    np.testing.assert_array_equal(a.stress_loss_usd, b.stress_loss_usd[:, :8])


def test_tiny_stress_set_warns() -> None:
    s = StressSet.from_scenarios(("A",), [("x", [0.5])])
    with pytest.warns(NumericalWarning, match="less than one scenario"):
        out = stressed_es(np.array([[10.0]]), s, 0.975)
    assert out[0] == pytest.approx(5.0)


def test_stress_set_validation() -> None:
    with pytest.raises(InputError, match="empty"):
        StressSet.from_scenarios(("A",), [])
    with pytest.raises(InputError, match=">= 0"):
        StressSet.from_scenarios(("A",), [("x", [-0.5])])
    with pytest.raises(InputError, match="shape"):
        StressSet.from_paths("p", ("A", "B"), np.ones((2, 3, 3)), terminal_only=True)


def test_twenty_thousand_accounts_by_two_thousand_scenarios_is_fast() -> None:
    import time

    book = _book(20_000, seed=7)
    stress = _stress(8, n_mc=2000)
    x = exposure_usd(**book)
    start = time.perf_counter()
    es = stressed_es(x, stress, 0.975)
    elapsed = time.perf_counter() - start
    assert es.shape == (20_000,)
    assert elapsed < 10.0, f"stressed ES of 20k accounts took {elapsed:.1f} s"


def test_concat_keeps_a_weighted_sets_weights_within_its_share() -> None:
    from simulator.risk import es as risk_es

    symbols = ("A", "B")
    rng = np.random.default_rng(11)
    named = StressSet.from_scenarios(
        symbols, [(f"n{i}", rng.uniform(0.5, 1.2, 2)) for i in range(3)]
    )
    w = rng.uniform(0.1, 1.0, 40)
    w /= w.sum()
    cascade = StressSet.from_scenarios(
        symbols, [(f"c{i}", rng.uniform(0.3, 1.1, 2)) for i in range(40)], w
    )
    union = named.concat(cascade)
    assert union.weights is not None and union.n_scenarios == 43
    np.testing.assert_allclose(union.weights[:3], 1 / 43)
    np.testing.assert_allclose(union.weights[3:], w * 40 / 43)
    # ES of the union is simulator.risk.es of the losses under those weights
    x = np.array([[100.0, -40.0], [-10.0, 50.0], [30.0, 30.0]])
    got = stressed_es(x, union, 0.9)
    for i in range(3):
        losses = scenario_losses(x[i : i + 1], union)[0]
        assert got[i] == pytest.approx(risk_es(losses, 0.9, union.weights), rel=1e-12)
    # equal weights inside the weighted set give the unweighted union's numbers
    flat = StressSet(cascade.symbols, cascade.points, cascade.starts, cascade.labels)
    even = StressSet(
        cascade.symbols, cascade.points, cascade.starts, cascade.labels, np.full(40, 1 / 40)
    )
    np.testing.assert_allclose(
        stressed_es(x, named.concat(even), 0.9), stressed_es(x, named.concat(flat), 0.9)
    )
