"""Which risk factor drives which token: the built-in asset map and the proxy resolver.

A scenario generates paths for a few *risk factors* (ETH, BTC, LINK, ..., the LST/ETH
exchange ratio ``LST`` and the stablecoin/USD price ``STABLE``), in log space. A token's
price multiplier is the product of its components' multipliers: ``WETH`` is ``ETH``,
``wstETH`` is ``ETH x LST`` (ETH plus a depeg component), ``USDC`` is ``STABLE``.

A token symbol is resolved, in this order, to:

1. a factor (or price series) of the scenario with the same name;
2. an entry of the scenario file's ``[proxies]`` table;
3. an entry of the built-in map below.

An entry is a factor name, another symbol (``sDAI = "DAI"``: follow DAI, including any
stress the scenario applies to DAI itself) or a list of those, multiplied together
(``wstETH = ["ETH", "LST"]``). A symbol that resolves to nothing raises
:class:`~simulator.errors.ScenarioError` naming it and showing how to declare a proxy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from simulator.errors import ScenarioError

__all__ = [
    "BUILTIN_ASSETS",
    "FACTORS",
    "SPREAD_FACTORS",
    "Term",
    "lookup_symbol",
    "resolve_symbols",
]

#: Built-in risk factors and what each one is. ``LST`` and ``STABLE`` are *spread*
#: factors (a ratio near 1), the rest are USD prices of volatile assets.
FACTORS: dict[str, str] = {
    "ETH": "ether, USD",
    "BTC": "bitcoin, USD",
    "LINK": "Chainlink token, USD",
    "CRV": "Curve DAO token, USD",
    "AAVE": "Aave token, USD",
    "UNI": "Uniswap token, USD",
    "MKR": "Maker token, USD",
    "SOL": "Solana, USD",
    "LST": "liquid-staking token / ETH exchange ratio (depeg component, 1 = at peg)",
    "STABLE": "USD stablecoin / USD (depeg component, 1 = at peg)",
}

#: Factors that are ratios near 1: they stay flat unless a scenario moves them.
SPREAD_FACTORS: frozenset[str] = frozenset({"LST", "STABLE"})

#: Built-in map from token symbols to factors (or other symbols). Scenario files extend or
#: override it with a ``[proxies]`` table.
BUILTIN_ASSETS: dict[str, str | tuple[str, ...]] = {
    # ether and wrappers
    "WETH": "ETH",
    # liquid-staking and restaking tokens: ETH times a depeg component
    "stETH": ("ETH", "LST"),
    "wstETH": "stETH",
    "rETH": ("ETH", "LST"),
    "cbETH": ("ETH", "LST"),
    "weETH": ("ETH", "LST"),
    "eETH": "weETH",
    "osETH": ("ETH", "LST"),
    "ETHx": ("ETH", "LST"),
    "ezETH": ("ETH", "LST"),
    "rsETH": ("ETH", "LST"),
    "sfrxETH": ("ETH", "LST"),
    # bitcoin wrappers
    "WBTC": "BTC",
    "cbBTC": "BTC",
    "tBTC": "BTC",
    "LBTC": "BTC",
    "FBTC": "BTC",
    # USD stablecoins: USD times a depeg component
    "USDC": "STABLE",
    "USDT": "STABLE",
    "DAI": "STABLE",
    "LUSD": "STABLE",
    "GHO": "STABLE",
    "FRAX": "STABLE",
    "PYUSD": "STABLE",
    "crvUSD": "STABLE",
    "USDS": "STABLE",
    "USDe": "STABLE",
    "RLUSD": "STABLE",
    "USDtb": "STABLE",
    "sDAI": "DAI",
    "sUSDS": "USDS",
    "sUSDe": "USDe",
    "USDC.e": "USDC",
    # governance tokens with their own factor
    "WSOL": "SOL",
    # DeFi governance tokens a scenario does not model follow its DeFi-token factor, AAVE
    # (Compound V3's USDC and WETH markets take COMP and UNI as collateral); a scenario
    # that models UNI uses its own, and a [proxies] entry overrides either
    "COMP": "AAVE",
    "UNI": "AAVE",
}


@dataclass(frozen=True, slots=True)
class Term:
    """One multiplicative component of a token's price path.

    Attributes:
        name: a factor (series) name, or a symbol the scenario stresses directly.
        is_override: ``True`` when ``name`` is a symbol with its own stress path.
    """

    name: str
    is_override: bool = False


def _casefold_index(names: Iterable[str]) -> dict[str, str]:
    return {n.casefold(): n for n in names}


def lookup_symbol(symbol: str, table: Mapping[str, object]) -> str | None:
    """The key of ``table`` equal to ``symbol``, exactly or else case-insensitively."""
    if symbol in table:
        return symbol
    return _casefold_index(table).get(symbol.casefold())


def resolve_symbols(
    symbols: Sequence[str],
    *,
    factors: Sequence[str],
    proxies: Mapping[str, str | tuple[str, ...]],
    overrides: Iterable[str] = (),
    scenario: str = "?",
) -> list[tuple[Term, ...]]:
    """Resolve each symbol to the factors (and directly stressed symbols) it follows.

    Args:
        symbols: token symbols of the snapshot, in order.
        factors: the factors (series) the scenario generates.
        proxies: the scenario file's ``[proxies]`` table.
        overrides: symbols the scenario stresses directly (deterministic scenarios).
        scenario: scenario name, for error messages.

    Returns:
        For each symbol, the terms whose multipliers multiply to its multiplier.

    Raises:
        ScenarioError: a symbol resolves to nothing the scenario generates, or proxies
            form a cycle.
    """
    factor_set = set(factors)
    override_set = set(overrides)
    out: list[tuple[Term, ...]] = []
    for symbol in symbols:
        out.append(
            _resolve(symbol, factor_set, override_set, proxies, scenario, chain=(), top=symbol)
        )
    return out


def _resolve(
    name: str,
    factors: set[str],
    overrides: set[str],
    proxies: Mapping[str, str | tuple[str, ...]],
    scenario: str,
    chain: tuple[str, ...],
    top: str,
) -> tuple[Term, ...]:
    if name in chain:
        raise ScenarioError(
            f"scenario {scenario!r}: proxies for {top!r} form a cycle: {' -> '.join((*chain, name))}"
        )
    chain = (*chain, name)
    over = lookup_symbol(name, dict.fromkeys(overrides))
    if over is not None:
        return (Term(over, is_override=True),)
    fac = lookup_symbol(name, dict.fromkeys(factors))
    if fac is not None:
        return (Term(fac),)
    for table in (proxies, BUILTIN_ASSETS):
        key = lookup_symbol(name, table)
        if key is None:
            continue
        entry = table[key]
        parts = (entry,) if isinstance(entry, str) else entry
        terms: list[Term] = []
        for part in parts:
            terms.extend(_resolve(part, factors, overrides, proxies, scenario, chain, top))
        return tuple(terms)
    if name in FACTORS:
        via = f" ({' -> '.join(chain)})" if len(chain) > 1 else ""
        raise ScenarioError(
            f"scenario {scenario!r} does not model factor {name!r}, which asset {top!r} follows"
            f"{via}; it models {', '.join(sorted(factors)) or 'no factor'}. "
            f'Declare a proxy in the scenario file, e.g. [proxies] {top} = "ETH"'
        )
    via = f" (via {' -> '.join(chain)})" if len(chain) > 1 else ""
    raise ScenarioError(
        f"scenario {scenario!r} has no price series for asset {top!r}{via} and no proxy for it; "
        f"it models {', '.join(sorted(factors)) or 'no factor'}. Declare a proxy in the scenario "
        f'file, e.g. [proxies] {top} = "ETH" (follow a factor) or {top} = ["ETH", "LST"] '
        f'(a product of factors), or map it to another symbol ({top} = "USDC")'
    )
