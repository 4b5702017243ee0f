"""Books and paths for the sweep tests."""

from __future__ import annotations

import numpy as np

from simulator.scenarios.paths import OracleSpec, PricePaths
from simulator.snapshot import Book, MarketSnapshot
from simulator.synthetic import synthetic_paths

META = {
    "protocol": "synthetic",
    "chain_id": 0,
    "block_number": 0,
    "block_hash": "0x" + "00" * 32,
    "timestamp": 0,
    "addresses": {},
    "software_version": "test",
}


def monotone_book(n: int = 200, seed: int = 0) -> MarketSnapshot:
    """WETH collateral against USDC debt, each account below the close-factor threshold (a
    liquidation repays all), pools deep enough for no price impact: an account's bad debt is
    set by the price at its first HF < 1, which a lower LT only brings earlier, at a price at
    least as high, so every path's shortfall is non-decreasing in the LT."""
    rng = np.random.default_rng(seed)
    coll_usd = rng.uniform(300.0, 1800.0, n)
    hf = rng.uniform(1.0, 1.6, n)
    lt = 0.83
    collateral = np.zeros((n, 2))
    debt = np.zeros((n, 2))
    collateral[:, 0] = coll_usd / 3000.0
    debt[:, 1] = coll_usd * lt / hf
    book = Book(
        accounts=np.array([f"0x{0xAC:02x}{i:038x}" for i in range(n)]),
        assets=(f"0x{0xA5:02x}{0:038x}", f"0x{0xA5:02x}{1:038x}"),
        symbols=("WETH", "USDC"),
        collateral=collateral,
        debt=debt,
        collateral_enabled=collateral > 0,
        price_usd=np.array([3000.0, 1.0]),
        ltv=np.array([0.80, 0.75]),
        liquidation_threshold=np.array([lt, 0.78]),
        liquidation_bonus=np.array([0.05, 0.045]),
        protocol_fee=np.array([0.10, 0.10]),
        decimals=np.array([18, 6], dtype=np.int64),
        dex_reserve_asset=np.array([1e12 / 3000.0, 1e12]),
        dex_reserve_quote=np.array([1e12, 1e12]),
        dex_fee=np.array([0.003, 0.0001]),
    )
    return MarketSnapshot.from_book(META, book)


def monotone_paths(n_paths: int = 400) -> PricePaths:
    return synthetic_paths(
        ("WETH", "USDC"),
        n_paths,
        24,
        step_seconds=3600.0,
        seed=11,
        daily_vol=0.25,
        oracle=OracleSpec(deviation=0.0, heartbeat_s=3600.0),
    )
