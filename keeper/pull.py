"""``shortfall pull``: read a lending market at one block into a snapshot directory.

``pull`` pins a block (the latest, or ``--block``), resolves the market, discovers its
accounts (logs, through the discovery cache), reads reserves, prices, every account's
balances and the DEX liquidity of the collateral assets, all at that block, checks the
block was not reorganised meanwhile, and builds a validated ``MarketSnapshot``, saved
atomically (a failed pull leaves no directory). Exact integers from the chain become
float64 token units and USD prices in ``build_snapshot``, the one conversion boundary.
"""

from __future__ import annotations

import json
import logging
import math
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from eth_utils import is_address, to_checksum_address

from keeper.adapters.base import (
    DEX_KINDS,
    AccountPositions,
    AdapterConfig,
    DexLiquidity,
    DexSource,
    EModeCategory,
    MarketAddresses,
    MarketVersion,
    Prices,
    ProtocolAdapter,
    Reserve,
    RoundingModel,
    get_adapter,
)
from keeper.adapters.multicall import MULTICALL3_ADDRESS
from keeper.chain import BlockRef, Chain, ChainSettings
from keeper.discovery import DiscoveryCache
from keeper.errors import ChainError, ConfigError
from keeper.progress import progress
from keeper.redact import redact_url
from keeper.venues_pull import quote_prices, venue_columns, venues_frame
from simulator import __version__
from simulator.snapshot import MarketSnapshot, check_save_target
from simulator.venues import VenueError, curve_rows

MAX_UINT256 = 2**256 - 1
RAY = 10**27
#: Aave's debt ceiling and isolationModeTotalDebt count hundredths of a dollar.
DEBT_CEILING_DECIMALS = 2

__all__ = [
    "PullSettings",
    "SnapshotMismatch",
    "build_snapshot",
    "check_not_reorganised",
    "load_dex_map",
    "make_adapter",
    "pull",
    "settings_from_deployment",
    "summarize",
    "verify_snapshot",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PullSettings:
    """Everything one pull needs."""

    rpc_url: str
    """JSON-RPC endpoint (secret-bearing; stored only redacted)."""
    provider: str
    """The market's root address (Aave V3: PoolAddressesProvider; Compound V3: the Comet)."""
    protocol: str = "aave-v3"
    """Adapter name (``keeper.adapters.base.adapter_names()``)."""
    block: int | None = None
    """Block to read; ``None`` for the latest."""
    rps: float = 25.0
    """Requests per second at most (0: no limit)."""
    max_concurrency: int = 8
    """Requests in flight at most."""
    timeout: float = 30.0
    """Seconds per request."""
    retries: int = 5
    """Retries of a transient failure."""
    expected_chain_id: int | None = None
    """Refuse another chain."""
    multicall3: str = MULTICALL3_ADDRESS
    """Multicall3 address."""
    dex_sources: Mapping[str, DexSource] = field(default_factory=dict)
    """Asset address or symbol -> DEX pool for its liquidity."""
    cache_path: Path | None = None
    """Discovery cache file; ``None`` for the default location."""
    use_cache: bool = True
    """``False`` rescans every log and writes no cache."""
    start_block: int | None = None
    """First block to scan for accounts (default: the pool's deployment block)."""
    all_reserves: bool = False
    """Read every (account, reserve) pair, not only the bitmap's."""
    batch_size: int = 1000
    """Calls per Multicall3 batch."""

    def chain_settings(self) -> ChainSettings:
        return ChainSettings(
            rpc_url=self.rpc_url,
            rps=self.rps,
            max_concurrency=self.max_concurrency,
            timeout=self.timeout,
            retries=self.retries,
        )


def _checked_address(value: Any, what: str) -> str:
    if not isinstance(value, str) or not is_address(value):
        raise ConfigError(f"{what}: {value!r} is not an address (0x followed by 40 hex digits)")
    return to_checksum_address(value)


def load_dex_map(path: str | Path) -> dict[str, DexSource]:
    """Read a DEX source map (JSON or TOML): asset address or symbol -> venue.

    Values are a Uniswap V2 pair address, or a table with a ``kind``::

        WETH = "0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc"
        "0x2260FAC5E5542a773Aa44fBCfeDf7C193bc2C599" = { pair = "0x...", fee = 0.003 }
        USDT = { kind = "uniswap-v3", pool = "0x..." }
        WBTC = { kind = "depth-curve", points = [[1e6, 0.002], [1e7, 0.01], [5e7, 0.05]] }

    ``uniswap-v2`` (the default kind): ``pair``, ``fee`` (default 0.003). ``uniswap-v3``:
    ``pool`` (or ``pair``), read at the pull block; its fee is the pool's. ``depth-curve``:
    ``points`` of ``[size_usd, average impact]`` (impact fraction of the sale's value, fee
    included, as an aggregator quotes it), sizes and impacts increasing; ``fee`` (default 0)
    is taken on top.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the DEX map ({exc.strerror})") from None
    try:
        data = tomllib.loads(text) if file.suffix == ".toml" else json.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(
            f"{file}: not valid {file.suffix.lstrip('.') or 'JSON'} ({exc})"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a table mapping asset to DEX pool")
    out: dict[str, DexSource] = {}
    for key, value in data.items():
        where = f"{file}: entry {key!r}"
        if isinstance(value, str):
            out[key] = DexSource(pair=_checked_address(value, where))
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a pool address or a table with a 'kind'")
        kind = value.get("kind", "uniswap-v2")
        if kind not in DEX_KINDS:
            raise ConfigError(f"{where}: kind {kind!r} is not one of {list(DEX_KINDS)}")
        fee = value.get("fee", 0.0 if kind == "depth-curve" else 0.003)
        if not isinstance(fee, int | float) or isinstance(fee, bool) or not 0 <= fee < 1:
            raise ConfigError(f"{where}: fee {fee!r} must be a fraction in [0, 1)")
        if kind == "uniswap-v2":
            out[key] = DexSource(_checked_address(value.get("pair"), f"{where} pair"), float(fee))
        elif kind == "uniswap-v3":
            if "fee" in value:
                raise ConfigError(f"{where}: a uniswap-v3 pool's fee is read from the pool")
            pool = value.get("pool", value.get("pair"))
            out[key] = DexSource(_checked_address(pool, f"{where} pool"), kind=kind)
        else:
            points = value.get("points")
            if not isinstance(points, list):
                raise ConfigError(
                    f"{where}: a depth-curve needs points = [[size_usd, impact], ...]"
                )
            try:
                curve_rows(points, where)
            except VenueError as exc:
                raise ConfigError(str(exc)) from None
            out[key] = DexSource(
                "",
                float(fee),
                kind=kind,
                points=tuple((float(a), float(b)) for a, b in points),
            )
    return out


def settings_from_deployment(path: str | Path, **overrides: Any) -> PullSettings:
    """Pull settings for a devnet described by ``deployment.json`` (its protocol, RPC, root
    address (Aave: ``pool_addresses_provider``; Compound V3: ``comet``), chain id, Multicall3,
    and each reserve's ``dex_pair``); ``overrides`` replace fields."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the deployment file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object")
    protocol = data.get("protocol", "aave-v3")
    root_key = "comet" if protocol == "compound-v3" else "pool_addresses_provider"
    for key in ("rpc_url", "chain_id", root_key):
        if key not in data:
            raise ConfigError(f"{file}: missing {key!r} (write it with shortfall devnet)")
    if not isinstance(data["chain_id"], int):
        raise ConfigError(f"{file}: 'chain_id' must be an integer")
    sources: dict[str, DexSource] = {}
    reserves = data.get("reserves") or {}
    if not isinstance(reserves, dict):
        raise ConfigError(f"{file}: 'reserves' must map symbol to addresses")
    for symbol, entry in reserves.items():
        if isinstance(entry, dict) and entry.get("dex_pair") and entry.get("token"):
            token = _checked_address(entry["token"], f"{file}: reserves.{symbol}.token")
            pair = _checked_address(entry["dex_pair"], f"{file}: reserves.{symbol}.dex_pair")
            sources[token] = DexSource(pair=pair)
    settings = PullSettings(
        rpc_url=str(data["rpc_url"]),
        provider=_checked_address(data[root_key], f"{file}: {root_key}"),
        protocol=str(protocol),
        expected_chain_id=data["chain_id"],
        multicall3=_checked_address(
            data.get("multicall3", MULTICALL3_ADDRESS), f"{file}: multicall3"
        ),
        dex_sources=sources,
    )
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _positions_frame(found: AccountPositions, decimals: Mapping[str, int]) -> pd.DataFrame:
    rows = found.positions
    scale = {a: 10**d for a, d in decimals.items()}
    return pd.DataFrame(
        {
            "account": pd.Series([p.account for p in rows], dtype=object),
            "asset": pd.Series([p.asset for p in rows], dtype=object),
            "collateral": np.array([p.collateral / scale[p.asset] for p in rows], dtype=np.float64),
            "debt": np.array([p.debt / scale[p.asset] for p in rows], dtype=np.float64),
            "collateral_enabled": np.array([p.collateral_enabled for p in rows], dtype=bool),
        }
    )


def build_snapshot(
    meta: Mapping[str, Any],
    reserves: Sequence[Reserve],
    prices: Prices,
    positions: AccountPositions,
    dex: Mapping[str, DexLiquidity],
    emode: Sequence[EModeCategory] = (),
    version: MarketVersion | None = None,
) -> MarketSnapshot:
    """Assemble and validate a snapshot from exact chain values (the float boundary).

    ``emode`` becomes ``emode.parquet`` (one row per category and asset it names) and
    ``positions.emode`` ``accounts.parquet``; ``version`` says how to read LTV 0 (v3.6+
    LTV-zero bitmap, else a reserve LTV of 0 stays 0 in e-mode too).
    """
    quotes = quote_prices(dex, {a: prices.usd(a) for a in prices.raw})
    rows: list[dict[str, Any]] = []
    for r in reserves:
        d = dex.get(r.asset)
        rows.append(
            {
                "asset": r.asset,
                "symbol": r.symbol,
                "decimals": r.decimals,
                "price_usd": prices.usd(r.asset),
                "ltv": r.ltv,
                "liquidation_threshold": r.liquidation_threshold,
                "liquidation_bonus": r.liquidation_bonus,
                "protocol_fee": r.protocol_fee,
                "usage_as_collateral_enabled": r.usage_as_collateral_enabled,
                "borrowing_enabled": r.borrowing_enabled,
                **venue_columns(d, prices.usd(r.asset), quotes.get(r.asset, 1.0)),
                "is_active": r.active,
                "is_frozen": r.frozen,
                "is_paused": r.paused,
                "borrowable_in_isolation": r.borrowable_in_isolation,
                "siloed_borrowing": r.siloed_borrowing,
                "debt_ceiling_usd": r.debt_ceiling / 10**DEBT_CEILING_DECIMALS,
                "isolation_mode_total_debt_usd": r.isolation_mode_total_debt
                / 10**DEBT_CEILING_DECIMALS,
                "supply_cap": float(r.supply_cap),
                "borrow_cap": float(r.borrow_cap),
                "emode_category": r.emode_category,
                "liquidity_rate": r.liquidity_rate_ray / RAY,
                "variable_borrow_rate": r.variable_borrow_rate_ray / RAY,
                "stable_borrow_rate": r.stable_borrow_rate_ray / RAY,
                "liquidity_index": positions.indexes.get(
                    r.asset, (r.liquidity_index_ray, r.variable_borrow_index_ray)
                )[0]
                / RAY,
                "variable_borrow_index": positions.indexes.get(
                    r.asset, (r.liquidity_index_ray, r.variable_borrow_index_ray)
                )[1]
                / RAY,
            }
        )
    frame = pd.DataFrame(rows)
    frame["decimals"] = frame["decimals"].astype(np.int64)
    frame["emode_category"] = frame["emode_category"].astype(np.int64)
    decimals = {r.asset: r.decimals for r in reserves}
    emode_frame = _emode_frame(emode, reserves, prices, version) if emode else None
    accounts = pd.DataFrame(
        {
            "account": pd.Series(list(positions.emode), dtype=object),
            "emode_category": np.array(list(positions.emode.values()), dtype=np.int64),
        }
    )
    held = accounts["account"].isin({p.account for p in positions.positions})
    return MarketSnapshot.from_frames(
        meta,
        frame,
        _positions_frame(positions, decimals),
        accounts[held].reset_index(drop=True),
        emode_frame,
        venues_frame(dex, quotes),
    )


def _emode_frame(
    categories: Sequence[EModeCategory],
    reserves: Sequence[Reserve],
    prices: Prices,
    version: MarketVersion | None,
) -> pd.DataFrame:
    ltvzero_bitmap = version is not None and version.has_ltvzero_bitmap
    rows: list[dict[str, Any]] = []
    for c in categories:
        named = [r for r in reserves if r.asset in c.collateral or r.asset in c.borrowable]
        placeholder = not named
        for r in named or list(reserves[:1]):
            # Before the LTV-zero bitmap (v3.6) a reserve LTV of 0 is 0 in every e-mode too.
            zero = r.asset in c.ltv_zero or (not ltvzero_bitmap and r.ltv_bps == 0)
            rows.append(
                {
                    "category": c.category,
                    "label": c.label,
                    "asset": r.asset,
                    "ltv": c.ltv_bps / 1e4,
                    "liquidation_threshold": c.liquidation_threshold_bps / 1e4,
                    "liquidation_bonus": max(0.0, (c.liquidation_bonus_bps - 10_000) / 1e4),
                    "is_collateral": not placeholder and r.asset in c.collateral,
                    "is_borrowable": not placeholder and r.asset in c.borrowable,
                    "ltv_zero": zero,
                    "price_source": c.price_source,
                    "price_usd": c.price_raw / prices.base_unit
                    if c.price_raw
                    else prices.usd(r.asset),
                }
            )
    frame = pd.DataFrame(rows)
    frame["category"] = frame["category"].astype(np.int64)
    return frame


class SnapshotMismatch(ChainError):
    """The snapshot does not reproduce the protocol's own account data."""


def verify_snapshot(
    snapshot: MarketSnapshot, chain_data: Mapping[str, tuple[int, ...]], *, rel: float = 1e-9
) -> list[str]:
    """Accounts whose health factor, totalCollateralBase or totalDebtBase in ``snapshot``
    differ from ``chain_data`` (``getUserAccountData`` tuples) by more than ``rel``
    (relative; totals also within half a base unit), each as one line naming the account,
    the block and both values. Empty when the snapshot reproduces every account."""
    book = snapshot.book()
    unit = float(snapshot.meta.get("base_currency_unit") or 10**8)
    block = snapshot.meta["block_number"]
    hf = book.health_factor()
    coll = book.collateral_usd() * unit
    debt = book.debt_usd() * unit
    row = {a: i for i, a in enumerate(book.accounts)}
    problems: list[str] = []
    for account, data in chain_data.items():
        total_coll, total_debt, chain_hf = data[0], data[1], data[5]
        i = row.get(to_checksum_address(account))
        ours = (float(hf[i]), float(coll[i]), float(debt[i])) if i is not None else (math.inf, 0, 0)
        want_hf = math.inf if chain_hf == MAX_UINT256 else chain_hf / 1e18
        hf_ok = (math.isinf(want_hf) and math.isinf(ours[0])) or (
            math.isfinite(ours[0]) and abs(ours[0] - want_hf) <= rel * want_hf
        )
        totals_ok = all(
            abs(mine - theirs) <= max(rel * theirs, 0.5)
            for mine, theirs in ((ours[1], total_coll), (ours[2], total_debt))
        )
        if not (hf_ok and totals_ok):
            problems.append(
                f"account {to_checksum_address(account)} at block {block}: snapshot health "
                f"factor {ours[0]!r}, getUserAccountData {want_hf!r}; totalCollateralBase "
                f"{ours[1]:.0f} vs {total_coll}, totalDebtBase {ours[2]:.0f} vs {total_debt}"
            )
    return problems


def summarize(snapshot: MarketSnapshot) -> dict[str, Any]:
    """Headline figures of a snapshot: accounts, supplied and borrowed USD, HF < 1 count,
    accounts and debt per e-mode category (``"0"``: no e-mode), and each asset's venue with
    its depth at 2%, 5% and 10% impact (``MarketSnapshot.venue_summary``)."""
    book = snapshot.book()
    hf = book.health_factor()
    debt = book.debt_usd()
    category = book.class_category[book.account_class]
    labels = dict(zip(snapshot.emode["category"], snapshot.emode["label"], strict=True))
    per_category: dict[str, dict[str, Any]] = {}
    for c in sorted({0, *(int(x) for x in category)}):
        members = category == c
        per_category[str(c)] = {
            "label": "none" if c == 0 else str(labels.get(c, "")),
            "accounts": int(members.sum()),
            "accounts_with_debt": int((members & (debt > 0)).sum()),
            "debt_usd": float(debt[members].sum()),
        }
    return {
        "accounts": book.n_accounts,
        "positions": len(snapshot.positions),
        "reserves": book.n_assets,
        "collateral_usd": float((book.collateral @ book.price_usd).sum()),
        "debt_usd": float(debt.sum()),
        "accounts_hf_below_1": int((hf < 1.0).sum()),
        "emode_family": snapshot.meta.get("emode_family", "none"),
        "emode": per_category,
        "venues": snapshot.venue_summary(),
        "block_number": snapshot.meta["block_number"],
        "chain_id": snapshot.meta["chain_id"],
    }


def make_adapter(settings: PullSettings, chain: Chain) -> ProtocolAdapter:
    """The protocol adapter ``settings`` describe, reading through ``chain`` (with the
    discovery cache unless ``settings.use_cache`` is off). Call ``resolve`` on it first."""
    adapter_cls = get_adapter(settings.protocol)
    cache = DiscoveryCache(settings.cache_path) if settings.use_cache else None
    return adapter_cls(
        chain,
        AdapterConfig(
            provider=settings.provider,
            multicall3=settings.multicall3,
            expected_chain_id=settings.expected_chain_id,
            dex_sources=settings.dex_sources,
            cache=cache,
            start_block=settings.start_block,
            all_reserves=settings.all_reserves,
            batch_size=settings.batch_size,
        ),
    )


async def pull(
    settings: PullSettings,
    *,
    out: str | Path | None = None,
    chain: Chain | None = None,
) -> MarketSnapshot:
    """Read the market at one block and return the snapshot (saved to ``out`` if given).

    ``meta.json`` records protocol, chain id, block number/hash/timestamp, the contract
    addresses, the software version, the redacted RPC, the health-factor rounding the
    numbers match, and what the pull cost (``pull``: requests, retries, seconds).
    """
    started = time.perf_counter()
    if out is not None:
        check_save_target(out)  # before any network work: a bad --out fails at once
    own_chain = chain is None
    chain = chain or Chain(settings.chain_settings())
    try:
        adapter = make_adapter(settings, chain)
        adapter_cls = type(adapter)
        cache = adapter.config.cache
        chain_id = await chain.check_chain_id(settings.expected_chain_id)
        block = await chain.block(settings.block)
        log.info("pulling %s at block %d (%s)", settings.protocol, block.number, block.hash)
        if settings.protocol == "compound-v3":
            from keeper.adapters.compound_v3 import CompoundV3Adapter
            from keeper.pull_comet import pull_comet

            assert isinstance(adapter, CompoundV3Adapter)
            meta = _meta(settings, adapter_cls.name, adapter_cls.hf_rounding, chain_id, block, None)
            return await pull_comet(adapter, chain, block, meta, started, out)
        addresses = await adapter.resolve(block)

        with progress("scanning logs") as bar:
            accounts = await adapter.discover_accounts(block, on_progress=bar.advance)
        reserves = await adapter.read_reserves(block.number)
        prices = await adapter.read_prices([r.asset for r in reserves], block.number)
        for r in reserves:
            if prices.raw.get(r.asset, 0) <= 0:
                raise ChainError(
                    f"the oracle {addresses.oracle} prices {r.symbol} ({r.asset}) at 0 at "
                    f"block {block.number}: its price source is missing or broken"
                )
        with progress("reading accounts", total=len(accounts)) as bar:
            found = await adapter.read_positions(
                accounts, reserves, block.number, on_progress=bar.advance
            )
        dex = await adapter.read_dex_liquidity(reserves, block.number)
        version = await adapter.read_version(block.number)
        emode = await adapter.read_emode(sorted(set(found.emode.values())), reserves, block.number)
        with_debt = sorted(
            {p.account for p in found.positions if p.debt > 0 or p.scaled_debt or p.stable_debt}
        )
        with progress("verifying accounts", total=len(with_debt)) as bar:
            chain_data = await adapter.read_account_data(with_debt, block.number)
            bar.advance(len(with_debt))
        await check_not_reorganised(chain, block)
        meta = _meta(
            settings, adapter_cls.name, adapter_cls.hf_rounding, chain_id, block, addresses
        )
        meta.update(
            {
                "base_currency_unit": prices.base_unit,
                "pool_revision": version.pool_revision,
                "emode_family": version.emode_family,
                "accounts_discovered": len(accounts),
                "emode_accounts": len(found.emode),
                "verified_accounts": len(chain_data),
                "discovery": {
                    "scanned_blocks": list(adapter.last_scan) if adapter.last_scan else None,
                    "cache": str(cache.path) if cache is not None else None,
                },
            }
        )
        snapshot, model = _exact_snapshot(
            adapter, meta, reserves, prices, found, dex, emode, version, chain_data
        )
        log.info(
            "pulled %d accounts at block %d; %d with debt match getUserAccountData (rounding %s)",
            snapshot.n_accounts,
            block.number,
            len(chain_data),
            model.name,
        )
        # accounts in an e-mode category that hold a position (accounts.parquet)
        snapshot.meta["emode_accounts"] = int((snapshot.accounts["emode_category"] > 0).sum())
        snapshot.meta["pull"] = {
            **chain.stats.as_dict(),
            "seconds": round(time.perf_counter() - started, 3),
        }
        if out is not None:
            snapshot.save(out)
        return snapshot
    finally:
        if own_chain:
            await chain.close()


def _exact_snapshot(
    adapter: ProtocolAdapter,
    meta: dict[str, Any],
    reserves: Sequence[Reserve],
    prices: Prices,
    found: AccountPositions,
    dex: Mapping[str, DexLiquidity],
    emode: Sequence[EModeCategory],
    version: MarketVersion,
    chain_data: Mapping[str, tuple[int, ...]],
) -> tuple[MarketSnapshot, RoundingModel]:
    """The snapshot under the first rounding model that reproduces every account's
    ``getUserAccountData``; ``SnapshotMismatch`` naming an account when none does."""
    first: tuple[RoundingModel, list[str]] | None = None
    for model in adapter.rounding_candidates():
        attempt = dict(
            meta,
            hf_rounding=model.hf_rounding,
            debt_value_rounding=model.debt_value_rounding,
            rounding_model=model.name,
        )
        snapshot = build_snapshot(
            attempt, reserves, prices, adapter.with_rounding(found, model), dex, emode, version
        )
        problems = verify_snapshot(snapshot, chain_data)
        if not problems:
            return snapshot, model
        if first is None:
            first = (model, problems)
        log.info("rounding %s leaves %d account(s) off; trying the next", model.name, len(problems))
    assert first is not None
    model, problems = first
    more = f" (and {len(problems) - 1} more account(s))" if len(problems) > 1 else ""
    raise SnapshotMismatch(
        f"the snapshot cannot represent {problems[0]}{more}; no known Aave rounding "
        f"(tried {', '.join(m.name for m in adapter.rounding_candidates())}, POOL_REVISION "
        f"{version.pool_revision}) reproduces the Pool's getUserAccountData"
    )


async def check_not_reorganised(chain: Chain, block: BlockRef) -> None:
    again = await chain.block(block.number)
    if again.hash != block.hash:
        raise ChainError(
            f"block {block.number} was reorganised during the pull ({block.hash} -> "
            f"{again.hash}); pull again, or pin an older --block"
        )


def _meta(
    settings: PullSettings,
    protocol: str,
    hf_rounding: str,
    chain_id: int,
    block: BlockRef,
    addresses: MarketAddresses | None,
) -> dict[str, Any]:
    return {
        "protocol": protocol,
        "chain_id": chain_id,
        "block_number": block.number,
        "block_hash": block.hash,
        "timestamp": block.timestamp,
        "addresses": addresses.as_dict() if addresses is not None else {},
        "software_version": __version__,
        "rpc": redact_url(settings.rpc_url),
        "hf_rounding": hf_rounding,
    }
