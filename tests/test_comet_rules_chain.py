"""The pure Compound V3 rules against our Comet devnet: hypothesis draws price falls, the
accounts they make liquidatable are absorbed on chain, and a buyer spends base at the store
front; ``comet_rules.absorb`` / ``buy_collateral`` / ``store_front_open`` must give the
chain's outcomes (balances, what the reserves paid, the collateral bought).

Tolerances: the rules work in float64 token units; the chain rounds each product down to
integers (1e-8 USD values, token base units), and ``absorb`` accrues one more block of
interest than the balances read before it (about 2e-9 of the debt a second).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from keeper.devnet.comet import COMET_MARKET
from keeper.devnet.deploy import set_price
from simulator.cascade.comet_rules import absorb, buy_collateral, store_front_open

pytestmark = pytest.mark.integration

FALLS = st.lists(st.floats(0.45, 1.0), min_size=len(COMET_MARKET.collateral), max_size=5)


def _read(handle: Any, block: int) -> dict[str, Any]:
    comet = handle.contract("Comet", handle.deployment["comet"])
    assets = []
    for i in range(comet.call("numAssets", block=block)):
        info = comet.call("getAssetInfo", i, block=block)
        assets.append(
            {
                "asset": info[1],
                "scale": info[3],
                "lf": info[6] / 1e18,
                "price": comet.call("getPrice", info[2], block=block) / 1e8,
            }
        )
    base_feed = comet.call("baseTokenPriceFeed", block=block)
    return {
        "comet": comet,
        "assets": assets,
        "base_price": comet.call("getPrice", base_feed, block=block) / 1e8,
        "base_scale": comet.call("baseScale", block=block),
        "reserves": comet.call("getReserves", block=block),
        "target": comet.call("targetReserves", block=block),
        "sf": comet.call("storeFrontPriceFactor", block=block) / 1e18,
    }


def test_absorb_and_buy_collateral_follow_the_rules(comet_devnet: Any) -> None:
    # the fixture stays outside @given, so hypothesis reports only the drawn values
    @settings(
        max_examples=15,
        deadline=None,
        # each example drives the chain; a failure is reported as drawn, without slow shrinking
        phases=[Phase.explicit, Phase.reuse, Phase.generate],
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(falls=FALLS, spend_share=st.floats(0.05, 0.9), n_absorb=st.integers(1, 4))
    def check(falls: list[float], spend_share: float, n_absorb: int) -> None:
        _absorb_and_buy(comet_devnet, falls, spend_share, n_absorb)

    check()


def _absorb_and_buy(
    comet_devnet: Any, falls: list[float], spend_share: float, n_absorb: int
) -> None:
    handle = comet_devnet
    snap = handle.rpc.snapshot()
    try:
        for c, fall in zip(COMET_MARKET.collateral, falls, strict=True):
            set_price(handle.deployment, c.symbol, round(c.price_usd * fall, 6), rpc=handle.rpc)
        before = handle.rpc.block_number()
        m = _read(handle, before)
        comet = m["comet"]
        victims = [
            a.address
            for a in handle.book.accounts
            if a.borrow and comet.call("isLiquidatable", a.address, block=before)
        ][:n_absorb]
        event(f"{len(victims)} account(s) absorbed")
        if not victims:
            assert max(falls) > 0.6  # only mild falls leave every account healthy
            return
        expected_paid = 0.0
        seized = np.zeros(len(m["assets"]))
        outcomes = []
        for v in victims:
            amounts = np.array(
                [
                    comet.call("collateralBalanceOf", v, a["asset"], block=before) / a["scale"]
                    for a in m["assets"]
                ]
            )
            debt = comet.call("borrowBalanceOf", v, block=before) / m["base_scale"]
            prices = np.array([a["price"] for a in m["assets"]])
            lfs = np.array([a["lf"] for a in m["assets"]])
            outcomes.append(absorb(amounts, prices, lfs, debt, m["base_price"]))
            expected_paid += outcomes[-1][3]
            seized += amounts
        receipt = comet.transact("absorb", handle.admin, victims, sender=handle.admin)
        after = int(receipt["blockNumber"], 16)
        for v, (_value, _credit, new_balance, _paid, _uncovered) in zip(
            victims, outcomes, strict=True
        ):
            for a in m["assets"]:
                assert comet.call("collateralBalanceOf", v, a["asset"], block=after) == 0
            assert comet.call("borrowBalanceOf", v, block=after) == 0
            got = comet.call("balanceOf", v, block=after) / m["base_scale"]
            # integer truncations in mulPrice / mulFactor and the principal round trip: a few
            # base units (1e-6 USDC each)
            assert got == pytest.approx(new_balance, rel=1e-7, abs=1e-5), v
        topic = comet.event_topic("AbsorbDebt")
        paid = sum(int(lg["data"][2:66], 16) for lg in receipt["logs"] if lg["topics"][0] == topic)
        assert paid / m["base_scale"] == pytest.approx(expected_paid, rel=1e-7, abs=1e-5)
        m_after = _read(handle, after)
        # the reserves paid it (within the book's interest over one block, < 1 base token)
        assert (m["reserves"] - m_after["reserves"]) / m["base_scale"] == pytest.approx(
            paid / m["base_scale"], abs=1.0
        )
        # the store front: spend a share of the most valuable seized asset's discounted value
        j = int(np.argmax(seized * np.array([a["price"] for a in m["assets"]])))
        a = m_after["assets"][j]
        for_sale = comet.call("getCollateralReserves", a["asset"]) / a["scale"]
        assert for_sale == pytest.approx(seized[j], rel=1e-15)
        spend = round(spend_share * for_sale * a["price"] * (1 - m["sf"] * (1 - a["lf"])), 6)
        if spend < 1e-6:
            return
        event("bought at the store front")
        reserves = m_after["reserves"] / m["base_scale"]
        target = m_after["target"] / m["base_scale"]
        assert store_front_open(reserves, target)
        bought, base_paid = buy_collateral(
            spend, for_sale, a["price"], m_after["base_price"], m["sf"], a["lf"], reserves, target
        )
        assert base_paid == pytest.approx(spend)
        base = handle.deployment["reserves"][COMET_MARKET.base_symbol]["token"]
        usdc = handle.contract("DevnetERC20", base)
        buyer = handle.rpc.accounts()[5]
        units = round(spend * m["base_scale"])
        usdc.transact("mint", buyer, units, sender=buyer)
        usdc.transact("approve", comet.address, units, sender=buyer)
        token = handle.contract("DevnetERC20", a["asset"])
        held = token.call("balanceOf", buyer)
        comet.transact("buyCollateral", a["asset"], 0, units, buyer, sender=buyer)
        got = (token.call("balanceOf", buyer) - held) / a["scale"]
        assert got == pytest.approx(bought, rel=1e-9, abs=2 / a["scale"])
        # at the target the store front closes, on chain and in the rules
        comet.transact("seedReserves", m["target"], sender=handle.admin)
        assert not store_front_open(m["target"] / m["base_scale"], target)
        usdc.transact("mint", buyer, units, sender=buyer)
        usdc.transact("approve", comet.address, units, sender=buyer)
        with pytest.raises(Exception, match="NotForSale"):
            comet.transact("buyCollateral", a["asset"], 0, units, buyer, sender=buyer)
    finally:
        assert handle.rpc.revert(snap)
