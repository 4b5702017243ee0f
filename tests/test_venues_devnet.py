"""Uniswap V3 venue on the devnet (issue 16, item 4): the pull's segments reproduce the
pool's own exact-input swaps."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keeper.adapters.base import DexSource
from keeper.cli import main
from keeper.devnet.deploy import V3_FEE_PIPS, V3_SYMBOL
from keeper.pull import pull, settings_from_deployment
from simulator.snapshot import MarketSnapshot
from simulator.venues import KIND_V3

pytestmark = pytest.mark.integration

Q96 = 2**96


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Run ``shortfall`` in-process; logging set up by main() is undone afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    try:
        yield run
    finally:
        for h in root.handlers[:]:
            if h not in handlers:
                root.removeHandler(h)
        root.setLevel(level)


def _pull_with_v3(devnet: Any, tmp_path: Path, block: int | None = None) -> Any:
    dep = devnet.deployment
    entry = dep["reserves"][V3_SYMBOL]
    base = settings_from_deployment(devnet.deployment_path, cache_path=tmp_path / "cache.sqlite")
    sources = dict(base.dex_sources)
    sources[entry["token"]] = DexSource(entry["dex_v3_pool"], kind="uniswap-v3")
    settings = replace(base, rps=0, dex_sources=sources, block=block)
    return asyncio.run(pull(settings, out=tmp_path / "snap"))


def _state(pool: Any, asset: str, quote_decimals: int) -> tuple[bool, float]:
    """(asset is token0, the pool's price in quote tokens per asset token)."""
    sqrt_x96 = pool.call("slot0")[0]
    is0 = pool.call("token0").lower() == asset.lower()
    raw = (sqrt_x96 / Q96) ** 2
    return is0, (raw if is0 else 1 / raw) * 10 ** (18 - quote_decimals)


def test_v3_pull_equals_the_pool_swap_output(devnet: Any, tmp_path: Path) -> None:
    dep = devnet.deployment
    entry = dep["reserves"][V3_SYMBOL]
    pool = devnet.contract("UniswapV3Pool", entry["dex_v3_pool"])
    block = devnet.rpc.block_number()
    snap = _pull_with_v3(devnet, tmp_path, block)
    row = snap.reserves.set_index("symbol").loc[V3_SYMBOL]
    assert row["venue_kind"] == "uniswap-v3" and row["dex_pair"] == entry["dex_v3_pool"]
    assert row["dex_fee"] == V3_FEE_PIPS / 1e6
    j = snap.book().symbols.index(V3_SYMBOL)
    venues = snap.book().venues
    assert venues is not None and venues.kind[j] == KIND_V3
    # the segments are the seeded positions' ranges (liquidity stacking up near the price)
    n = int(venues.count[j])
    assert n >= 6 and len(set(venues.ys[j, : n - 1])) >= 4
    is0, ref = _state(pool, entry["token"], dep["reserves"]["USDC"]["decimals"])
    # sizes drawn up to the one that reaches -45% (inside the +-50% read range)
    limit = venues.depth_at(j, ref, 0.45) / ref
    rng = np.random.default_rng(16)
    sizes = np.concatenate([[1e-3, 1.0], rng.uniform(0, 1, 14) ** 2 * limit, [0.999 * limit]])
    for tokens in sizes:
        amount = int(tokens * 1e18)
        out, used = pool.call("quoteExactInput", is0, amount, block=block)
        assert used == amount  # all of it traded inside the liquidity
        want = venues.proceeds(j, ref, 0.0, amount / 1e18)
        # the pool pays whole USDC base units, rounded down per tick range crossed
        assert out / 1e6 == pytest.approx(want, rel=1e-9, abs=1e-5), tokens
    # after an inventory the venue continues where the first sale left it
    first, _ = pool.call("quoteExactInput", is0, int(0.3 * limit * 1e18), block=block)
    both, _ = pool.call("quoteExactInput", is0, int(0.5 * limit * 1e18), block=block)
    rest = venues.proceeds(j, ref, 0.3 * limit, 0.2 * limit)
    assert (both - first) / 1e6 == pytest.approx(rest, rel=1e-8)


def test_v3_pool_swap_moves_the_state_the_pull_reads(devnet_isolated: Any, tmp_path: Path) -> None:
    dep = devnet_isolated.deployment
    entry = dep["reserves"][V3_SYMBOL]
    admin = dep["deployer"]
    pool = devnet_isolated.contract("UniswapV3Pool", entry["dex_v3_pool"])
    quote_decimals = dep["reserves"]["USDC"]["decimals"]
    is0, ref = _state(pool, entry["token"], quote_decimals)
    before = _pull_with_v3(devnet_isolated, tmp_path / "a")
    j = before.book().symbols.index(V3_SYMBOL)
    v = before.book().venues
    assert v is not None
    amount = int(0.25 * v.depth_at(j, ref, 0.2) / ref * 1e18)  # crosses several ticks
    quoted, _ = pool.call("quoteExactInput", is0, amount)
    receipt = pool.transact("swap", admin, is0, amount, 0, b"", sender=admin)
    assert receipt["status"] in (1, "0x1")
    _, ref_after = _state(pool, entry["token"], quote_decimals)
    # the price the simulator expects after the sale is where the pool now is
    assert ref_after / ref == pytest.approx(v.price_factor(j, ref, amount / 1e18), rel=1e-9)
    # and the next sale, read fresh from the moved pool, pays what the old read predicts
    after = _pull_with_v3(devnet_isolated, tmp_path / "b")
    w = after.book().venues
    assert w is not None
    next_out, _ = pool.call("quoteExactInput", is0, 10**18)
    assert next_out / 1e6 == pytest.approx(w.proceeds(j, ref_after, 0.0, 1.0), rel=1e-9, abs=1e-5)
    assert next_out / 1e6 == pytest.approx(v.proceeds(j, ref, amount / 1e18, 1.0), rel=1e-7)
    assert quoted > 0 and math.isfinite(ref_after)


def test_cli_pull_with_a_v3_dex_map_reports_the_venue(
    devnet: Any, tmp_path: Path, cli: Any
) -> None:
    dep = devnet.deployment
    entry = dep["reserves"][V3_SYMBOL]
    dex = tmp_path / "dex.toml"
    dex.write_text(
        f'{V3_SYMBOL} = {{ kind = "uniswap-v3", pool = "{entry["dex_v3_pool"]}" }}\n'
        'WBTC = { kind = "depth-curve", points = [[1e6, 0.01], [1e7, 0.03], [5e7, 0.12]] }\n'
    )
    out = tmp_path / "snap"
    code, stdout, stderr = cli(
        "pull",
        "--deployment",
        str(devnet.deployment_path),
        "--dex-map",
        str(dex),
        "--no-cache",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert f"{V3_SYMBOL} venue: uniswap-v3, depth at 2% impact $" in stdout
    assert "WBTC venue: depth-curve" in stdout
    reserves = MarketSnapshot.load(out).reserves.set_index("symbol")
    assert reserves.loc["WBTC", "venue_kind"] == "depth-curve"
    assert reserves.loc["LINK", "venue_kind"] == "constant-product"  # the deployment's pair


def test_devnet_pool_tick_math_is_v3_cores(devnet: Any) -> None:
    """sqrt(1.0001)^tick in Q64.96 equals Uniswap v3-core's TickMath.getSqrtRatioAtTick at its
    bounds (MIN_SQRT_RATIO, MAX_SQRT_RATIO) and at the ticks its tests pin."""
    pool = devnet.contract("UniswapV3Pool", devnet.deployment["reserves"][V3_SYMBOL]["dex_v3_pool"])
    known = {
        -887272: 4295128739,
        887272: 1461446703485210103287273052203988822378723970342,
        0: 2**96,
        50: 79426470787362580746886972461,
        100: 79625275426524748796330556128,
        250: 80224679980005306637834519095,
        500: 81233731461783161732293370115,
        1000: 83290069058676223003182343270,
        2500: 89776708723587163891445672585,
        3000: 92049301871182272007977902845,
    }
    for tick, want in known.items():
        assert pool.call("sqrtRatioAtTick", tick) == want, tick
