"""What the devnet market lists: reserves, their risk parameters, prices, DEX depth,
interest indexes and rates, and the e-mode categories.

Parameters follow Aave V3 Ethereum's core market (rounded; checked against the Aave
governance parameter tables in 2024-2025): LTV, liquidation threshold and bonus in basis
points, a 10% liquidation protocol fee. Prices are round numbers near recent markets.

Interest: each reserve starts at a liquidity index and a variable borrow index well away from
1 ray (a market that has been running for a while) and accrues at fixed yearly rates, so time
passing on anvil changes balances. E-mode categories follow Aave V3 Ethereum's "ETH correlated"
and "Stablecoins" categories (v3.2+ liquid e-mode: collateral and borrowable bitmaps); the
stablecoin category is v3.7-isolated (collateral outside its bitmap has LTV 0 in it), the
v3.7 replacement of the removed reserve isolation mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = [
    "EMODES",
    "MARKET",
    "QUOTE_SYMBOL",
    "EModeSpec",
    "ReserveSpec",
    "emode_bitmap",
    "encode_configuration",
    "ray",
]

RAY = 10**27


def ray(value: str) -> int:
    """A decimal string (an index like "1.05", or a yearly rate like "0.035") in ray, exactly."""
    return int(Decimal(value) * RAY)


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
    #: Reserve factor, basis points (reported only: rates are fixed, nothing accrues to the
    #: treasury).
    reserve_factor: int
    borrowing_enabled: bool
    #: USD depth of each side of the constant-product pair against USDC (0: no pair).
    dex_side_usd: float
    #: Relative weight of this asset as collateral and as debt when seeding.
    collateral_weight: float
    debt_weight: float
    #: Liquidity index and variable borrow index at deployment, decimal strings (ray / 1e27).
    liquidity_index: str = "1"
    variable_borrow_index: str = "1"
    #: Yearly supply (liquidity) rate and variable borrow rate, decimal strings (0.03 = 3%).
    liquidity_rate: str = "0"
    variable_borrow_rate: str = "0"
    #: Supply and borrow caps in whole tokens (0: no cap), configuration bits 116-151 / 80-115.
    supply_cap: int = 0
    borrow_cap: int = 0


@dataclass(frozen=True, slots=True)
class EModeSpec:
    """One e-mode category (Aave V3.2+ liquid e-mode, v3.7 `isolated` flag)."""

    id: int
    label: str
    #: LTV, liquidation threshold and bonus of the category, basis points.
    ltv: int
    liquidation_threshold: int
    liquidation_bonus: int
    #: Symbols whose LTV / LT / bonus the category replaces (the collateral bitmap).
    collaterals: tuple[str, ...]
    #: Symbols a user in the category may borrow (the borrowable bitmap).
    borrowables: tuple[str, ...]
    #: v3.7: collateral outside the bitmap has LTV 0 for users in the category.
    isolated: bool = False
    #: Symbols in the collateral bitmap whose LTV is 0 in the category (the LTV-zero bitmap).
    ltvzero: tuple[str, ...] = ()


#: Symbol of the stablecoin every DEX pair quotes against.
QUOTE_SYMBOL = "USDC"

MARKET: tuple[ReserveSpec, ...] = (
    ReserveSpec(
        "WETH",
        "Wrapped Ether",
        18,
        3000.0,
        8050,
        8300,
        10500,
        1000,
        1500,
        True,
        20e6,
        0.34,
        0.12,
        liquidity_index="1.0523418872013376",
        variable_borrow_index="1.1207345120946541",
        liquidity_rate="0.021",
        variable_borrow_rate="0.0285",
    ),
    ReserveSpec(
        "WBTC",
        "Wrapped BTC",
        8,
        60000.0,
        7300,
        7800,
        10500,
        1000,
        2000,
        True,
        15e6,
        0.18,
        0.04,
        liquidity_index="1.0031877120493317",
        variable_borrow_index="1.0418022907711353",
        liquidity_rate="0.0012",
        variable_borrow_rate="0.0131",
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
        liquidity_index="1.0084503318802219",
        variable_borrow_index="1.0619930471157064",
        liquidity_rate="0.0008",
        variable_borrow_rate="0.0105",
    ),
    ReserveSpec(
        "LINK",
        "ChainLink Token",
        18,
        15.0,
        5300,
        6800,
        10700,
        1000,
        2000,
        True,
        2.5e6,
        0.07,
        0.0,
        liquidity_index="1.0012093810022813",
        variable_borrow_index="1.0210871233412009",
        liquidity_rate="0.0004",
        variable_borrow_rate="0.0078",
    ),
    ReserveSpec(
        "USDC",
        "USD Coin",
        6,
        1.0,
        7500,
        7800,
        10450,
        1000,
        1000,
        True,
        0.0,
        0.12,
        0.45,
        liquidity_index="1.0719412234080931",
        variable_borrow_index="1.1354109977263082",
        liquidity_rate="0.043",
        variable_borrow_rate="0.0561",
    ),
    ReserveSpec(
        "DAI",
        "Dai Stablecoin",
        18,
        1.0,
        6300,
        7700,
        10500,
        1000,
        2500,
        True,
        10e6,
        0.06,
        0.17,
        liquidity_index="1.0640773020117448",
        variable_borrow_index="1.1438211902771160",
        liquidity_rate="0.039",
        variable_borrow_rate="0.0633",
    ),
    ReserveSpec(
        "USDT",
        "Tether USD",
        6,
        1.0,
        7500,
        7800,
        10450,
        1000,
        1000,
        True,
        10e6,
        0.07,
        0.20,
        liquidity_index="1.0588120937462351",
        variable_borrow_index="1.1195502218833406",
        liquidity_rate="0.041",
        variable_borrow_rate="0.0549",
    ),
)


#: E-mode categories (Aave V3 Ethereum-like): ETH correlated and stablecoins.
EMODES: tuple[EModeSpec, ...] = (
    EModeSpec(1, "ETH correlated", 9300, 9500, 10100, ("WETH", "wstETH"), ("WETH",)),
    EModeSpec(
        2,
        "Stablecoins",
        9000,
        9300,
        10100,
        ("USDC", "DAI", "USDT"),
        ("USDC", "DAI", "USDT"),
        isolated=True,
    ),
)


def emode_bitmap(symbols: tuple[str, ...], market: tuple[ReserveSpec, ...] = MARKET) -> int:
    """The e-mode bitmap (bit = reserve id) of these symbols in ``market``."""
    ids = {s.symbol: i for i, s in enumerate(market)}
    return sum(1 << ids[symbol] for symbol in symbols)


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
    word |= spec.borrow_cap << 80
    word |= spec.supply_cap << 116
    word |= spec.liquidation_protocol_fee << 152
    return word
