"""Each asset's oracle feed and wider market: defaults by asset class, scenario overrides.

The engines keep two prices per asset (``simulator.cascade.reference``): the *reference*
price of the wider market (the scenario path, moved by liquidation flow through a
square-root impact law) and the *venue* price of the pool liquidators sell into. The oracle
reads the reference price through a feed with its own deviation threshold and heartbeat, or
prices a liquid-staking token the way Aave's CAPO adapters do: the token's exchange rate
times the feed of its underlying (WETH), the rate's growth capped. This module resolves,
for the assets of a book, what those feeds and markets are:

1. a scenario's ``[oracle]`` ``deviation`` / ``heartbeat_s`` when given (they apply to
   every asset: a scenario that tests one oracle rule);
2. else the scenario file's ``[markets.SYMBOL]`` table (``AssetSpec``);
3. else the defaults of the asset's class below (its class from the built-in symbol map,
   ``simulator.scenarios.assets``: ether, bitcoin, USD stablecoin, liquid-staking token,
   anything else).

Sources of the defaults:

- Feeds: Chainlink's Ethereum mainnet feeds as listed on data.chain.link (ETH/USD and
  BTC/USD: 0.5% and 1 h; USDC/USD, USDT/USD: 0.25% and 24 h; most other crypto/USD feeds
  1% and 1 h). Check the feed a market actually uses and override it in the scenario.
- Exchange-rate pricing: Aave's correlated-asset price oracle (CAPO, BGD Labs, proposal of
  27 February 2024): wstETH, rETH and cbETH are priced as ratio x ETH/USD with the ratio's
  yearly growth capped at 9.68%, 9.3% and 8.12%; the rate itself grows at the staking
  yield (about 3% a year).
- Reference liquidity: the square-root law of metaorder impact, ``dP/P = Y sigma_d
  sqrt(Q / V_d)`` (Toth et al. 2011, "Anomalous price impact and the critical nature of
  liquidity in financial markets", Phys. Rev. X 1; measured on bitcoin by Donier and Bonart
  2015, "A million metaorder analysis of market impact on the Bitcoin", Market
  Microstructure and Liquidity 1, with Y of order 1), with ``Q`` the USD volume sold,
  ``sigma_d`` the daily volatility and ``V_d`` the daily volume of the asset. The volumes
  below are round figures of 2024-2025 spot volume across centralised and decentralised
  venues (an order of magnitude, not a measurement: override them per asset).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from simulator.errors import ScenarioError
from simulator.scenarios.assets import BUILTIN_ASSETS, lookup_symbol
from simulator.scenarios.paths import AssetSpec, OracleSpec

__all__ = [
    "CLASS_DEFAULTS",
    "SECONDS_PER_YEAR",
    "AssetFeeds",
    "asset_class",
    "resolve_feeds",
]

SECONDS_PER_YEAR = 365.0 * 86400.0

#: Per asset class: every ``AssetSpec`` field (``rate_base`` is the symbol of the asset an
#: exchange-rate price multiplies; it must be in the book, else the asset is market-priced).
CLASS_DEFAULTS: dict[str, AssetSpec] = {
    "eth": AssetSpec(0.005, 3600.0, "market", None, 0.0, 0.0, 15e9, 0.035),
    "btc": AssetSpec(0.005, 3600.0, "market", None, 0.0, 0.0, 25e9, 0.030),
    "stable": AssetSpec(0.0025, 86400.0, "market", None, 0.0, 0.0, 20e9, 0.002),
    "lst": AssetSpec(0.005, 3600.0, "exchange-rate", "WETH", 0.03, 0.0968, 2e8, 0.035),
    "other": AssetSpec(0.01, 3600.0, "market", None, 0.0, 0.0, 3e8, 0.05),
}

#: CAPO's yearly ratio-growth caps where they are known (BGD Labs, February 2024).
_RATE_CAPS: dict[str, float] = {"wstETH": 0.0968, "rETH": 0.093, "cbETH": 0.0812}


def asset_class(symbol: str) -> str:
    """``eth``, ``btc``, ``stable``, ``lst`` or ``other``, from the built-in symbol map."""
    seen: set[str] = set()
    name = symbol
    while True:
        key = lookup_symbol(name, BUILTIN_ASSETS)
        if key is None or key in seen:
            return {"ETH": "eth", "BTC": "btc", "STABLE": "stable"}.get(name.upper(), "other")
        seen.add(key)
        target = BUILTIN_ASSETS[key]
        if isinstance(target, tuple):
            return "lst" if "LST" in target else "other"
        if target == "ETH":
            return "eth"
        if target == "BTC":
            return "btc"
        if target == "STABLE":
            return "stable"
        name = target


@dataclass(frozen=True, slots=True)
class AssetFeeds:
    """Per asset of a book (``(n_assets,)`` arrays): the oracle feed and wider market.

    Attributes:
        deviation: the feed's deviation threshold, fraction.
        heartbeat_s: the feed's heartbeat, seconds.
        rate_base: column of the asset whose oracle price an exchange-rate price multiplies,
            ``-1`` for a market-priced asset.
        rate_apr: the exchange rate's yearly growth, fraction.
        rate_cap_apr: the cap on its yearly growth (CAPO), fraction.
        daily_volume_usd, daily_volatility: the wider market of the asset.
        classes: each asset's class (``asset_class``), for reports.
    """

    deviation: npt.NDArray[np.float64]
    heartbeat_s: npt.NDArray[np.float64]
    rate_base: npt.NDArray[np.int64]
    rate_apr: npt.NDArray[np.float64]
    rate_cap_apr: npt.NDArray[np.float64]
    daily_volume_usd: npt.NDArray[np.float64]
    daily_volatility: npt.NDArray[np.float64]
    classes: tuple[str, ...]

    def rate_growth(self, seconds: float) -> npt.NDArray[np.float64]:
        """What each exchange rate has grown by after ``seconds``, capped (1 for
        market-priced assets): ``min(exp(apr t), 1 + cap t)``, ``t`` in years."""
        years = seconds / SECONDS_PER_YEAR
        grown = np.exp(self.rate_apr * years)
        capped = np.minimum(grown, 1.0 + self.rate_cap_apr * years)
        return np.where(self.rate_base >= 0, capped, 1.0)

    def reference_coefficient(self, coefficient: float, share: float) -> npt.NDArray[np.float64]:
        """``c`` of the reference price's impact ``exp(-c sqrt(Q))`` after ``Q`` USD sold:
        ``c = Y sigma_d sqrt(share / V_d)`` (module docstring)."""
        return coefficient * self.daily_volatility * np.sqrt(share / self.daily_volume_usd)


def resolve_feeds(
    symbols: Sequence[str],
    oracle: OracleSpec,
    markets: Sequence[tuple[str, AssetSpec]] = (),
    *,
    scenario: str = "?",
) -> AssetFeeds:
    """Each asset's feed and market (module docstring for the order of precedence).

    Raises:
        ScenarioError: a ``[markets]`` entry names an asset the book does not hold is not an
            error (scenarios are shared between markets); an exchange-rate asset whose
            ``rate_base`` is given but not in the book, or is itself exchange-rate priced, is.
    """
    given: Mapping[str, AssetSpec] = dict(markets)
    n = len(symbols)
    out = {
        name: np.zeros(n)
        for name in (
            "deviation",
            "heartbeat_s",
            "rate_apr",
            "rate_cap_apr",
            "daily_volume_usd",
            "daily_volatility",
        )
    }
    base_sym: list[str | None] = [None] * n
    classes: list[str] = []
    for j, symbol in enumerate(symbols):
        cls = asset_class(symbol)
        classes.append(cls)
        default = CLASS_DEFAULTS[cls]
        key = lookup_symbol(symbol, given)
        spec = given[key] if key is not None else AssetSpec()

        def pick(field: str, spec: AssetSpec = spec, default: AssetSpec = default) -> Any:
            value = getattr(spec, field)
            return getattr(default, field) if value is None else value

        out["deviation"][j] = (
            oracle.deviation if oracle.deviation is not None else pick("oracle_deviation")
        )
        out["heartbeat_s"][j] = (
            oracle.heartbeat_s if oracle.heartbeat_s is not None else pick("oracle_heartbeat_s")
        )
        cap = _RATE_CAPS.get(symbol, default.rate_cap_apr)
        out["rate_apr"][j] = float(pick("rate_apr"))
        out["rate_cap_apr"][j] = cap if spec.rate_cap_apr is None else spec.rate_cap_apr
        out["daily_volume_usd"][j] = float(pick("daily_volume_usd"))
        out["daily_volatility"][j] = float(pick("daily_volatility"))
        if pick("pricing") == "exchange-rate":
            base = pick("rate_base") or "WETH"
            found = next((s for s in symbols if s.casefold() == str(base).casefold()), None)
            if found is None and spec.rate_base is not None:
                raise ScenarioError(
                    f"scenario {scenario!r}: markets.{symbol}.rate_base = {base!r} is not an "
                    f"asset of the market ({', '.join(symbols)})"
                )
            base_sym[j] = found  # None: no ETH in the book, the LST is market-priced
    index = {s: j for j, s in enumerate(symbols)}
    rate_base = np.full(n, -1, dtype=np.int64)
    for j, b in enumerate(base_sym):
        if b is None:
            continue
        if base_sym[index[b]] is not None or index[b] == j:
            raise ScenarioError(
                f"scenario {scenario!r}: {symbols[j]} is priced by exchange rate against "
                f'{b}, which is itself exchange-rate priced; give {b} pricing = "market"'
            )
        rate_base[j] = index[b]
    for name in ("daily_volume_usd", "daily_volatility"):
        bad = [
            symbols[j] for j in range(n) if not (math.isfinite(out[name][j]) and out[name][j] > 0)
        ]
        if bad:
            raise ScenarioError(f"scenario {scenario!r}: {name} must be > 0 for {bad}")
    return AssetFeeds(
        deviation=out["deviation"],
        heartbeat_s=out["heartbeat_s"],
        rate_base=rate_base,
        rate_apr=np.where(rate_base >= 0, out["rate_apr"], 0.0),
        rate_cap_apr=np.where(rate_base >= 0, out["rate_cap_apr"], 0.0),
        daily_volume_usd=out["daily_volume_usd"],
        daily_volatility=out["daily_volatility"],
        classes=tuple(classes),
    )
