"""Deploy the devnet market on a running anvil node and describe it as ``deployment.json``.

All transactions come from anvil's first unlocked dev account (``eth_sendTransaction``); no
private key is handled here. ``deployment.json`` holds SPEC.md's fields (``rpc_url``,
``chain_id``, ``pool_addresses_provider``, ``pool``, ``oracle``, ``data_provider``,
``multicall3``, ``reserves: {SYMBOL: {token, feed, dex_pair}}``) plus a few extras
(``deployer``, ``treasury``, per-reserve ``decimals``, ``a_token``, ``variable_debt_token``,
``dex_quote``; for ``V3_SYMBOL`` also ``dex_v3_pool``, a Uniswap V3-style pool against USDC
beside its V2 pair, seeded with ``V3_POSITIONS``; ``emode_categories: {ID: {label, ltv, liquidation_threshold, liquidation_bonus,
collaterals, borrowables, isolated, ltvzero}}``; after seeding ``seed``, ``accounts``,
``block_number_after_seed``, ``emode_accounts`` and ``emode_debt_share`` per category id).
"""

from __future__ import annotations

import json
import logging
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_utils import keccak, to_checksum_address

from keeper.devnet import DevnetError
from keeper.devnet.chain import Contract, Rpc, artifact, deploy
from keeper.devnet.market import (
    EMODES,
    MARKET,
    QUOTE_SYMBOL,
    EModeSpec,
    ReserveSpec,
    emode_bitmap,
    encode_configuration,
    ray,
)
from simulator.atomic import atomic_write_json

__all__ = [
    "MULTICALL3_ADDRESS",
    "deploy_market",
    "load_deployment",
    "set_price",
    "write_deployment",
]

log = logging.getLogger(__name__)

MULTICALL3_ADDRESS = "0xcA11bde05977b3631167028862bE2a173976CA11"
#: Where liquidation protocol fees go (an address with no key; nobody spends them).
TREASURY_ADDRESS = to_checksum_address(keccak(text="shortfall-devnet-treasury")[12:])
MARKET_ID = "Shortfall Devnet Market"
PRICE_DECIMALS = 8

REQUIRED_FIELDS = (
    "rpc_url",
    "chain_id",
    "pool_addresses_provider",
    "pool",
    "oracle",
    "data_provider",
    "multicall3",
    "reserves",
)


def price_to_answer(price_usd: float | str | Decimal) -> int:
    """A USD price as the feed's 8-decimal integer answer (exact for decimal input)."""
    try:
        value = Decimal(str(price_usd))
    except ArithmeticError:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise DevnetError(f"price must be a positive number of USD, got {price_usd!r}")
    answer = int((value * 10**PRICE_DECIMALS).to_integral_value())
    if answer <= 0:
        raise DevnetError(f"price {price_usd} USD is below the feed's resolution of 1e-8")
    return answer


def _token_amount(usd: float, spec: ReserveSpec) -> int:
    return int(Decimal(str(usd)) / Decimal(str(spec.price_usd)) * 10**spec.decimals)


def deploy_market(
    rpc: Rpc,
    market: tuple[ReserveSpec, ...] = MARKET,
    emodes: tuple[EModeSpec, ...] = EMODES,
) -> dict[str, Any]:
    """Deploy every contract, list the reserves (configuration, indexes, rates), configure the
    e-mode categories, place Multicall3, fund the DEX pairs.

    Returns the deployment dict (without seeding fields).
    """
    admin = rpc.accounts()[0]
    provider = deploy(rpc, "PoolAddressesProvider", MARKET_ID, admin, sender=admin)
    pool = deploy(rpc, "Pool", provider.address, TREASURY_ADDRESS, sender=admin)
    provider.transact("setPoolImpl", pool.address, sender=admin)
    oracle = deploy(rpc, "AaveOracle", provider.address, sender=admin)
    provider.transact("setPriceOracle", oracle.address, sender=admin)
    data_provider = deploy(rpc, "AaveProtocolDataProvider", provider.address, sender=admin)
    provider.transact("setPoolDataProvider", data_provider.address, sender=admin)

    reserves: dict[str, dict[str, Any]] = {}
    tokens: dict[str, Contract] = {}
    for spec in market:
        token = deploy(rpc, "DevnetERC20", spec.name, spec.symbol, spec.decimals, sender=admin)
        feed = deploy(
            rpc,
            "DevnetPriceFeed",
            PRICE_DECIMALS,
            f"{spec.symbol} / USD",
            price_to_answer(spec.price_usd),
            sender=admin,
        )
        a_token = deploy(
            rpc,
            "DevnetScaledToken",
            pool.address,
            token.address,
            False,
            spec.decimals,
            f"Aave Devnet {spec.symbol}",
            f"aDev{spec.symbol}",
            sender=admin,
        )
        debt_token = deploy(
            rpc,
            "DevnetScaledToken",
            pool.address,
            token.address,
            True,
            spec.decimals,
            f"Aave Devnet Variable Debt {spec.symbol}",
            f"variableDebtDev{spec.symbol}",
            sender=admin,
        )
        pool.transact(
            "initReserve", token.address, a_token.address, debt_token.address, sender=admin
        )
        pool.transact(
            "setConfiguration", token.address, (encode_configuration(spec),), sender=admin
        )
        pool.transact(
            "setReserveIndexes",
            token.address,
            ray(spec.liquidity_index),
            ray(spec.variable_borrow_index),
            sender=admin,
        )
        pool.transact(
            "setReserveRates",
            token.address,
            ray(spec.liquidity_rate),
            ray(spec.variable_borrow_rate),
            sender=admin,
        )
        tokens[spec.symbol] = token
        reserves[spec.symbol] = {
            "token": token.address,
            "feed": feed.address,
            "dex_pair": None,
            "decimals": spec.decimals,
            "a_token": a_token.address,
            "variable_debt_token": debt_token.address,
        }
    oracle.transact(
        "setAssetSources",
        [r["token"] for r in reserves.values()],
        [r["feed"] for r in reserves.values()],
        sender=admin,
    )

    categories = _configure_emodes(pool, admin, market, emodes)

    _place_multicall3(rpc, admin)
    _fund_pairs(rpc, admin, market, tokens, reserves)
    if V3_SYMBOL in tokens and QUOTE_SYMBOL in tokens:
        _deploy_v3_pool(rpc, admin, {s.symbol: s for s in market}, tokens, reserves)

    return {
        "rpc_url": rpc.url,
        "chain_id": rpc.chain_id(),
        "pool_addresses_provider": provider.address,
        "pool": pool.address,
        "oracle": oracle.address,
        "data_provider": data_provider.address,
        "multicall3": MULTICALL3_ADDRESS,
        "reserves": reserves,
        "emode_categories": categories,
        "deployer": admin,
        "treasury": TREASURY_ADDRESS,
        "block_number_after_deploy": rpc.block_number(),
    }


def _configure_emodes(
    pool: Contract, admin: str, market: tuple[ReserveSpec, ...], emodes: tuple[EModeSpec, ...]
) -> dict[str, dict[str, Any]]:
    """Configure each e-mode category on the Pool; returns its deployment.json description."""
    out: dict[str, dict[str, Any]] = {}
    for e in emodes:
        config = (e.ltv, e.liquidation_threshold, e.liquidation_bonus, e.label)
        pool.transact("configureEModeCategory", e.id, config, sender=admin)
        pool.transact(
            "configureEModeCategoryCollateralBitmap",
            e.id,
            emode_bitmap(e.collaterals, market),
            sender=admin,
        )
        pool.transact(
            "configureEModeCategoryBorrowableBitmap",
            e.id,
            emode_bitmap(e.borrowables, market),
            sender=admin,
        )
        if e.ltvzero:
            pool.transact(
                "configureEModeCategoryLtvzeroBitmap",
                e.id,
                emode_bitmap(e.ltvzero, market),
                sender=admin,
            )
        if e.isolated:
            pool.transact("configureEModeCategoryIsolated", e.id, True, sender=admin)
        out[str(e.id)] = {
            "label": e.label,
            "ltv": e.ltv,
            "liquidation_threshold": e.liquidation_threshold,
            "liquidation_bonus": e.liquidation_bonus,
            "collaterals": list(e.collaterals),
            "borrowables": list(e.borrowables),
            "isolated": e.isolated,
            "ltvzero": list(e.ltvzero),
        }
    return out


def _place_multicall3(rpc: Rpc, admin: str) -> None:
    existing = rpc.call("eth_getCode", MULTICALL3_ADDRESS, "latest")
    expected = artifact("Multicall3")["deployedBytecode"].lower()
    if existing.lower() == expected:
        return
    deployed = deploy(rpc, "Multicall3", sender=admin)
    code = rpc.call("eth_getCode", deployed.address, "latest")
    rpc.call("anvil_setCode", MULTICALL3_ADDRESS, code)
    if rpc.call("eth_getCode", MULTICALL3_ADDRESS, "latest").lower() != code.lower():
        raise DevnetError(f"anvil_setCode did not place Multicall3 at {MULTICALL3_ADDRESS}")


def _fund_pairs(
    rpc: Rpc,
    admin: str,
    market: tuple[ReserveSpec, ...],
    tokens: dict[str, Contract],
    reserves: dict[str, dict[str, Any]],
) -> None:
    """One constant-product pair per asset against USDC, both sides worth ``dex_side_usd``."""
    specs = {s.symbol: s for s in market}
    quote = specs[QUOTE_SYMBOL]
    quote_token = tokens[QUOTE_SYMBOL]
    deepest: str | None = None
    for spec in market:
        if spec.symbol == QUOTE_SYMBOL or spec.dex_side_usd <= 0:
            continue
        pair = deploy(
            rpc, "UniswapV2Pair", tokens[spec.symbol].address, quote_token.address, sender=admin
        )
        tokens[spec.symbol].transact(
            "mint", pair.address, _token_amount(spec.dex_side_usd, spec), sender=admin
        )
        quote_token.transact(
            "mint", pair.address, _token_amount(spec.dex_side_usd, quote), sender=admin
        )
        pair.transact("sync", sender=admin)
        reserves[spec.symbol]["dex_pair"] = pair.address
        reserves[spec.symbol]["dex_quote"] = QUOTE_SYMBOL
        if spec.price_usd == 1.0 and (
            deepest is None or spec.dex_side_usd > specs[deepest].dex_side_usd
        ):
            deepest = spec.symbol
    # The quote stablecoin itself trades through the deepest stable pair (into that stable).
    if deepest is not None:
        reserves[QUOTE_SYMBOL]["dex_pair"] = reserves[deepest]["dex_pair"]
        reserves[QUOTE_SYMBOL]["dex_quote"] = deepest


#: The asset that also gets a Uniswap V3-style pool (keeper/devnet/contracts/UniswapV3Pool.sol).
V3_SYMBOL = "WETH"
#: Its fee (pips: 500 = 0.05%) and tick spacing, as Uniswap's 0.05% tier.
V3_FEE_PIPS = 500
V3_TICK_SPACING = 10
#: Positions (lower, upper price as multiples of the oracle price, liquidity as a multiple of
#: the V2 pair's sqrt(x y)): overlapping ranges, a thin floor under them all, ranges beyond
#: +-50%.
V3_POSITIONS: tuple[tuple[float, float, float], ...] = (
    (0.30, 3.00, 0.2),
    (0.75, 1.30, 1.0),
    (0.95, 1.04, 4.0),
    (0.60, 0.70, 0.8),
    (1.10, 1.45, 0.6),
)


def _deploy_v3_pool(
    rpc: Rpc,
    admin: str,
    specs: dict[str, ReserveSpec],
    tokens: dict[str, Contract],
    reserves: dict[str, dict[str, Any]],
) -> None:
    """Deploy ``V3_SYMBOL``'s V3 pool against USDC at its oracle price and mint
    ``V3_POSITIONS`` from the deployer."""
    spec, quote = specs[V3_SYMBOL], specs[QUOTE_SYMBOL]
    asset, usdc = tokens[V3_SYMBOL], tokens[QUOTE_SYMBOL]
    pool = deploy(
        rpc,
        "UniswapV3Pool",
        asset.address,
        usdc.address,
        V3_FEE_PIPS,
        V3_TICK_SPACING,
        sender=admin,
    )
    asset_is_token0 = int(asset.address, 16) < int(usdc.address, 16)
    # raw price: token1 base units per token0 base unit
    per_asset = Decimal(str(spec.price_usd)) * 10**quote.decimals / 10**spec.decimals
    raw = per_asset if asset_is_token0 else 1 / per_asset
    pool.transact("initialize", int(raw.sqrt() * 2**96), sender=admin)
    # V2-equivalent liquidity in base units: sqrt(x y) of a pair of dex_side_usd a side
    base = Decimal(str(spec.dex_side_usd)) ** 2 / Decimal(str(spec.price_usd))
    base_liquidity = (base * 10**spec.decimals * 10**quote.decimals).sqrt()
    log_step = Decimal("1.0001").ln()
    for token in (asset, usdc):  # the deployer provides the liquidity
        token.transact("mint", admin, 10**30, sender=admin)
        token.transact("approve", pool.address, 2**256 - 1, sender=admin)
    for lower, upper, share in V3_POSITIONS:
        ticks = []
        for factor in (lower, upper):
            price = raw * Decimal(str(factor)) if asset_is_token0 else raw / Decimal(str(factor))
            t = int(price.ln() / log_step)
            ticks.append(t - t % V3_TICK_SPACING)
        lo, hi = sorted(ticks)
        pool.transact(
            "mint", admin, lo, hi, int(base_liquidity * Decimal(str(share))), sender=admin
        )
    reserves[V3_SYMBOL]["dex_v3_pool"] = pool.address


def write_deployment(path: str | os.PathLike[str], deployment: dict[str, Any]) -> None:
    """Write ``deployment.json`` atomically."""
    atomic_write_json(path, deployment)


def load_deployment(path_or_dict: str | os.PathLike[str] | dict[str, Any]) -> dict[str, Any]:
    """Read and check a ``deployment.json`` (or check a dict already loaded)."""
    if isinstance(path_or_dict, dict):
        deployment = path_or_dict
        where = "deployment"
    else:
        where = str(path_or_dict)
        try:
            deployment = json.loads(Path(path_or_dict).read_text())
        except FileNotFoundError:
            raise DevnetError(
                f"{where} not found; start a devnet with `shortfall devnet --out {where}`"
            ) from None
        except (OSError, ValueError) as exc:
            raise DevnetError(f"{where} is not readable JSON: {exc}") from None
    required = REQUIRED_FIELDS
    if deployment.get("protocol") == "compound-v3":
        from keeper.devnet.comet import COMET_REQUIRED

        required = COMET_REQUIRED
    missing = [f for f in required if f not in deployment]
    if missing:
        raise DevnetError(f"{where} lacks the field(s) {', '.join(missing)}")
    return deployment


def set_price(
    deployment: str | os.PathLike[str] | dict[str, Any],
    symbol: str,
    price_usd: float | str | Decimal,
    rpc: Rpc | None = None,
) -> int:
    """Set the USD price of ``symbol``'s feed on a running devnet and mine a block.

    Returns the block number that holds the update.
    """
    dep = load_deployment(deployment)
    reserves = dep["reserves"]
    if symbol not in reserves:
        matches = [s for s in reserves if s.lower() == symbol.lower()]
        if len(matches) != 1:
            raise DevnetError(f"unknown reserve {symbol!r}; the devnet lists {', '.join(reserves)}")
        symbol = matches[0]
    answer = price_to_answer(price_usd)
    rpc = rpc or Rpc(dep["rpc_url"], timeout=30)
    feed = Contract(rpc, reserves[symbol]["feed"], "DevnetPriceFeed")
    sender = dep.get("deployer") or rpc.accounts()[0]
    tx_hash = rpc.send(
        {
            "from": sender,
            "to": feed.address,
            "data": feed.encode("setAnswer", answer),
            "gas": hex(500_000),
        }
    )
    if not rpc.call("anvil_getAutomine"):  # interval or manual mining: mine the block now
        rpc.mine()
    receipt = rpc.receipt(tx_hash)
    if int(receipt["status"], 16) != 1:
        raise DevnetError(f"setting the {symbol} price reverted (is {sender} the feed's owner?)")
    log.info(
        "%s price set to %s USD in block %d", symbol, price_usd, int(receipt["blockNumber"], 16)
    )
    return int(receipt["blockNumber"], 16)
