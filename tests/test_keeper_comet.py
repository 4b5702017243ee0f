"""The Compound V3 (Comet) stressed loss (``simulator.stress_comet``) and its keeper wiring.

The loss of an account at a stressed state is the reserves' loss when it is absorbed there;
it is pinned against the cascade engines' reserve drawdown on one-account books, against a
plain loop over Comet's rules, and the keeper's evaluation and CLI must use it on a Comet
market.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from keeper.adapters.compound_v3 import CometReserve
from keeper.cli.keeper import register, settings_from_args
from keeper.evaluate import EvaluationCache, comet_terms, evaluate_book, same_terms
from keeper.settings import KeeperSettings
from keeper.stress_inputs import StressInputs
from simulator.cascade import EngineConfig, run_cascade
from simulator.cascade.comet_rules import liquidation_margin_usd
from simulator.errors import InputError
from simulator.risk import es as risk_es
from simulator.snapshot import Book, CometTerms
from simulator.stress import StressSet
from simulator.stress_comet import (
    CometLossTerms,
    comet_margin_usd,
    comet_point_losses,
    evaluate_comet,
)
from simulator.synthetic import uniform_shock_paths

SYMBOLS = ("USDC", "WETH", "WBTC")
PRICES = np.array([1.0, 2000.0, 60_000.0])
LCF = np.array([0.0, 0.83, 0.78])
LF = np.array([0.0, 0.93, 0.90])
SFPF = 0.6


def _one_account(coll_usd: tuple[float, float], debt_usd: float, base_price: float) -> Book:
    """One borrower of a Comet market holding WETH and WBTC worth ``coll_usd``."""
    price = PRICES.copy()
    price[0] = base_price
    return Book(
        accounts=np.array(["0x" + "11" * 20]),
        assets=("0x" + "a0" * 20, "0x" + "a1" * 20, "0x" + "a2" * 20),
        symbols=SYMBOLS,
        collateral=np.array([[0.0, coll_usd[0] / price[1], coll_usd[1] / price[2]]]),
        debt=np.array([[debt_usd / base_price, 0.0, 0.0]]),
        collateral_enabled=np.array([[False, True, True]]),
        price_usd=price,
        ltv=np.array([0.0, 0.8, 0.7]),
        liquidation_threshold=LCF,
        liquidation_bonus=np.zeros(3),
        protocol_fee=np.zeros(3),
        decimals=np.array([6, 18, 8]),
        dex_reserve_asset=np.array([1e12 / base_price, 1e12 / price[1], 1e12 / price[2]]),
        dex_reserve_quote=np.full(3, 1e12),
        dex_fee=np.zeros(3),
        comet=CometTerms(
            base=0,
            liquidation_factor=LF,
            store_front_price_factor=SFPF,
            target_reserves=1e12,
            reserves=0.0,
            collateral_reserves=np.zeros(3),
        ),
    )


@pytest.mark.parametrize("engine", ["reference", "fast"])
def test_loss_is_the_cascade_reserve_drawdown_of_a_one_account_book(engine: str) -> None:
    """The loss at a state = the engine's reserve drawdown for the book alone, shocked to the
    state in one step, infinitely deep venues, free gas: liquidatable or not, covered by
    the credit or not, with the base price moved too."""
    rng = np.random.default_rng(20)
    cases = 0
    hurt = 0
    for _ in range(12):
        weth, wbtc = rng.uniform(0.0, 50_000.0, 2)
        if weth + wbtc < 1_000.0:
            continue
        # healthy at the snapshot: debt below the liquidation limit
        limit = weth * LCF[1] + wbtc * LCF[2]
        debt = float(rng.uniform(0.3, 0.999) * limit)
        base_price = float(rng.uniform(0.97, 1.03))
        book = _one_account((weth, wbtc), debt, base_price)
        shocks = np.column_stack(
            [rng.uniform(0.95, 1.05, 16), rng.uniform(0.3, 1.1, 16), rng.uniform(0.3, 1.1, 16)]
        )
        terms = CometLossTerms.from_book(book)
        ours = comet_point_losses(book.collateral, book.debt, book.price_usd, terms, shocks)[0]
        config = EngineConfig(engine=engine, gas_units=0.0, liquidity_scale=math.inf)  # type: ignore[arg-type]
        out = run_cascade(book, uniform_shock_paths(SYMBOLS, shocks, n_steps=1), config)
        assert out.reserve_drawdown_usd is not None
        np.testing.assert_allclose(ours, out.reserve_drawdown_usd, rtol=1e-9, atol=1e-6)
        # the engine absorbed exactly where the loss rule said liquidatable
        cases += int(out.n_liquidations.sum())
        hurt += int((ours > 0).sum())
    assert cases >= 20 and hurt >= 10  # both kinds of state were met


def _book(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coll = np.zeros((n, 3))
    coll[:, 1] = rng.uniform(0, 30, n) * (rng.random(n) < 0.8)
    coll[:, 2] = rng.uniform(0, 1, n) * (rng.random(n) < 0.6)
    value = coll @ PRICES
    debt = np.zeros((n, 3))
    debt[:, 0] = value * rng.uniform(0.0, 0.85, n)
    lenders = rng.random(n) < 0.1
    coll[lenders] = 0.0
    debt[lenders] = 0.0
    coll[lenders, 0] = 5_000.0  # base suppliers: nothing to absorb
    debt[0, 0] = 50.0  # dust: below min_usd
    coll[0, 1:] = 0.1 / PRICES[1:]
    return coll, debt


def _plain_loss(c: np.ndarray, d: float, q: np.ndarray) -> float:
    c = c.copy()
    c[0] = 0.0
    if not (d > 0 and (c * q * LCF).sum() < d * q[0]):
        return 0.0
    value = c * q
    paid = max((value * LF).sum(), d * q[0])
    return max(paid - (value * (1 - SFPF * (1 - LF))).sum(), 0.0)


@pytest.mark.parametrize("margin", ["equity", "liquidation-buffer"])
def test_evaluate_comet_equals_a_plain_loop(margin: str) -> None:
    coll, debt = _book(60, 3)
    terms = CometLossTerms(0, LCF, LF, SFPF)
    rng = np.random.default_rng(4)
    prob = StressSet.from_scenarios(
        SYMBOLS, [(f"s{k}", rng.uniform(0.4, 1.2, 3)) for k in range(200)]
    )
    path = np.column_stack([np.ones(8), np.linspace(1.0, 0.4, 8), np.linspace(1.0, 0.5, 8)])
    named = StressSet.from_scenarios(SYMBOLS, [("crash", path), ("up", 1.0 / path)])
    got = evaluate_comet(
        coll, debt, PRICES, terms, prob, named=named, alpha=0.95, margin=margin, min_usd=100.0
    )  # type: ignore[arg-type]
    flagged = 0
    for i in range(coll.shape[0]):
        d = debt[i, 0]
        base_balance = coll[i, 0] - d
        w = LCF if margin == "liquidation-buffer" else np.ones(3)
        c = coll[i].copy()
        c[0] = 0.0
        m = base_balance * PRICES[0] + (c * PRICES * w).sum()
        assert got.margin_usd[i] == pytest.approx(m, rel=1e-12, abs=1e-9)
        if margin == "liquidation-buffer":
            assert m == pytest.approx(
                liquidation_margin_usd(c, PRICES, LCF, base_balance, PRICES[0]), abs=1e-9
            )
        assert got.debt_usd[i] == pytest.approx(d * PRICES[0])
        if d * PRICES[0] < 100.0:
            assert got.es_usd[i] == 0.0 and got.severity[i] == 0
            continue
        losses = np.array([_plain_loss(coll[i], d, PRICES * pt) for pt in prob.points])
        assert got.es_usd[i] == pytest.approx(risk_es(losses, alpha=0.95), rel=1e-9, abs=1e-9)
        for k, lo in enumerate((0, 8)):
            worst = max(_plain_loss(coll[i], d, PRICES * pt) for pt in named.points[lo : lo + 8])
            assert got.stress_loss_usd[i, k] == pytest.approx(worst, rel=1e-9, abs=1e-9)
        binding = max(got.es_usd[i], got.stress_loss_usd[i].max())
        assert (got.severity[i] > 0) == (binding > m)
        flagged += int(got.severity[i] > 0)
    assert flagged >= 3
    # the collateral's crash hurts, its rally never does (Comet debt is the base asset only)
    assert got.stress_loss_usd[:, 0].max() > 0 and got.stress_loss_usd[:, 1].max() == 0.0


def test_comet_inputs_are_checked() -> None:
    coll, debt = _book(5, 1)
    terms = CometLossTerms(0, LCF, LF, SFPF)
    bad = debt.copy()
    bad[2, 1] = 1.0
    with pytest.raises(InputError, match="debt in column 1"):
        comet_point_losses(coll, bad, PRICES, terms, np.ones((1, 3)))
    with pytest.raises(InputError, match=r"liquidation_factor\[2\]"):
        CometLossTerms(0, LCF, np.array([0.0, 0.9, 1.5]), SFPF)
    with pytest.raises(InputError, match="store_front_price_factor"):
        CometLossTerms(0, LCF, LF, 2.0)
    with pytest.raises(InputError, match="base column 3"):
        CometLossTerms(3, LCF, LF, SFPF)
    with pytest.raises(InputError, match="margin 'cash'"):
        comet_margin_usd("cash", coll, debt, PRICES, terms)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="prices"):
        comet_point_losses(coll, debt, PRICES[:2], terms, np.ones((1, 3)))


# -- the keeper ----------------------------------------------------------------------------


def _reserve(j: int, lcf: float, lf: float) -> CometReserve:
    return CometReserve(
        asset="0x" + f"{j:02x}" * 20,
        symbol=SYMBOLS[j],
        decimals=6 if j == 0 else 18,
        reserve_id=255 if j == 0 else j - 1,
        ltv_bps=0,
        liquidation_threshold_bps=round(lcf * 1e4),
        liquidation_bonus_bps=10_000,
        reserve_factor_bps=0,
        protocol_fee_bps=0,
        active=True,
        frozen=False,
        paused=False,
        borrowing_enabled=j == 0,
        emode_category=0,
        is_base=j == 0,
        liquidate_collateral_factor=round(lcf * 1e18),
        liquidation_factor=round(lf * 1e18),
        offset=j - 1,
    )


def _settings(tmp_path: Path) -> KeeperSettings:
    return KeeperSettings(
        rpc_url="http://127.0.0.1:1", provider="0x" + "22" * 20, db_path=tmp_path / "k.sqlite"
    )


def test_keeper_evaluates_a_comet_book_with_the_comet_loss(tmp_path: Path) -> None:
    reserves = [_reserve(j, LCF[j], LF[j]) for j in range(3)]
    adapter = SimpleNamespace(state=SimpleNamespace(store_front_price_factor=int(SFPF * 1e18)))
    terms = comet_terms(reserves, adapter)
    assert terms is not None and terms.base == 0
    np.testing.assert_array_equal(terms.liquidate_cf, LCF)
    np.testing.assert_array_equal(terms.liquidation_factor, LF)
    assert terms.store_front_price_factor == SFPF
    assert same_terms(terms, CometLossTerms(0, LCF, LF, SFPF))
    assert not same_terms(terms, CometLossTerms(0, LCF, LF, 0.5)) and not same_terms(terms, None)
    assert comet_terms([], adapter) is None

    coll, debt = _book(40, 8)
    enabled = coll > 0
    rng = np.random.default_rng(9)
    prob = StressSet.from_scenarios(
        SYMBOLS, [(f"s{k}", rng.uniform(0.5, 1.1, 3)) for k in range(80)]
    )
    stress = StressInputs(prob, None)
    settings = _settings(tmp_path)
    got = evaluate_book(coll, debt, enabled, PRICES, reserves, stress, settings, comet=terms)
    want = evaluate_comet(coll, debt, PRICES, terms, prob, alpha=settings.alpha)
    np.testing.assert_array_equal(got.es_usd, want.es_usd)
    np.testing.assert_array_equal(got.severity, want.severity)
    assert (got.es_usd > 0).any()

    # the cache: after a WETH move only its holders are recomputed, and the rows equal a
    # fresh evaluation
    cache = EvaluationCache()
    none = np.zeros(0, dtype=np.int64)
    args = (coll, debt, enabled)
    cache.evaluate(*args, PRICES, reserves, stress, settings, changed=none, comet=terms)
    moved = PRICES * np.array([1.0, 0.8, 1.0])
    again = cache.evaluate(*args, moved, reserves, stress, settings, changed=none, comet=terms)
    holders = ((coll[:, 1] > 0) | (debt[:, 1] > 0)).sum()
    assert cache.last_evaluated == holders < coll.shape[0]
    fresh = evaluate_comet(coll, debt, moved, terms, prob, alpha=settings.alpha)
    np.testing.assert_array_equal(again.es_usd, fresh.es_usd)
    # new terms: everyone again
    other = CometLossTerms(0, LCF, LF, 0.5)
    cache.evaluate(*args, moved, reserves, stress, settings, changed=none, comet=other)
    assert cache.last_evaluated == coll.shape[0]


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["keeper", *argv])


def test_cli_runs_the_keeper_on_a_comet_market(tmp_path: Path) -> None:
    comet = "0xc3d688B66703497DAA19211EEdff47f25384cdc3"
    db = str(tmp_path / "k.sqlite")
    s = settings_from_args(_args("--rpc", "http://127.0.0.1:1", "--comet", comet, "--db", db))
    assert s.protocol == "compound-v3" and s.provider == comet
    dep = tmp_path / "comet.json"
    dep.write_text(
        json.dumps(
            {
                "protocol": "compound-v3",
                "rpc_url": "http://127.0.0.1:8545",
                "chain_id": 31337,
                "comet": comet,
                "multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
                "reserves": {},
            }
        )
    )
    s = settings_from_args(
        _args("--deployment", str(dep), "--db", db, "--margin", "liquidation-buffer")
    )
    assert (s.protocol, s.provider, s.expected_chain_id) == ("compound-v3", comet, 31337)
    assert s.margin == "liquidation-buffer"
