"""What the devnet market lists: reserves, their risk parameters, prices and DEX depth.

Parameters follow Aave V3 Ethereum's core market (rounded; checked against the Aave
governance parameter tables in 2024-2025): LTV, liquidation threshold and bonus in basis
points, a 10% liquidation protocol fee. Prices are round numbers near recent markets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MARKET", "QUOTE_SYMBOL", "ReserveSpec", "encode_configuration"]


@dataclass(frozen=True, slots=True)
class ReserveSpec:
    """One reserve of the devnet market."""

    symbol: str
    name: str
    decimals: int
    #: Initial oracle price, USD.
    price_usd: float
    #: Loan-to-value, basis points (8050 = 80.5%).
    ltv: int
    #: Liquidation threshold, basis points.
    liquidation_threshold: int
    #: Liquidation bonus, basis points over 100% (10500 = 5% premium).
    liquidation_bonus: int
    #: Share of the liquidation premium paid to the treasury, basis points.
    liquidation_protocol_fee: int
    #: Reserve factor, basis points (reported only: the devnet accrues no interest).
    reserve_factor: int
    borrowing_enabled: bool
    #: USD depth of each side of the constant-product pair against USDC (0: no pair).
    dex_side_usd: float
    #: Relative weight of this asset as collateral and as debt when seeding.
    collateral_weight: float
    debt_weight: float


#: Symbol of the stablecoin every DEX pair quotes against.
QUOTE_SYMBOL = "USDC"

MARKET: tuple[ReserveSpec, ...] = (
    ReserveSpec(
        "WETH", "Wrapped Ether", 18, 3000.0, 8050, 8300, 10500, 1000, 1500, True, 20e6, 0.34, 0.12
    ),
    ReserveSpec(
        "WBTC", "Wrapped BTC", 8, 60000.0, 7300, 7800, 10500, 1000, 2000, True, 15e6, 0.18, 0.04
    ),
    ReserveSpec(
        "wstETH",
        "Wrapped liquid staked Ether 2.0",
        18,
        3500.0,
        7850,
        8100,
        10600,
        1000,
        500,
        True,
        5e6,
        0.16,
        0.02,
    ),
    ReserveSpec(
        "LINK", "ChainLink Token", 18, 15.0, 5300, 6800, 10700, 1000, 2000, True, 2.5e6, 0.07, 0.0
    ),
    ReserveSpec("USDC", "USD Coin", 6, 1.0, 7500, 7800, 10450, 1000, 1000, True, 0.0, 0.12, 0.45),
    ReserveSpec(
        "DAI", "Dai Stablecoin", 18, 1.0, 6300, 7700, 10500, 1000, 2500, True, 10e6, 0.06, 0.17
    ),
    ReserveSpec(
        "USDT", "Tether USD", 6, 1.0, 7500, 7800, 10450, 1000, 1000, True, 10e6, 0.07, 0.20
    ),
)


def encode_configuration(spec: ReserveSpec, *, active: bool = True, frozen: bool = False) -> int:
    """The reserve's ReserveConfigurationMap word (Aave V3 bit layout, see PROTOCOLS.md)."""
    word = spec.ltv
    word |= spec.liquidation_threshold << 16
    word |= spec.liquidation_bonus << 32
    word |= spec.decimals << 48
    word |= int(active) << 56
    word |= int(frozen) << 57
    word |= int(spec.borrowing_enabled) << 58
    word |= 1 << 63  # flash loans enabled (reported only)
    word |= spec.reserve_factor << 64
    word |= spec.liquidation_protocol_fee << 152
    return word
