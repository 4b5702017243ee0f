"""The devnet's Compound V3 market: our own Comet (``contracts/Comet.sol``), deployed and seeded.

``shortfall devnet --protocol compound-v3`` runs :func:`setup_comet_market`: it deploys the
base token (USDC) and the collateral tokens (``DevnetERC20``), their Chainlink-style feeds, one
Comet market (``COMET_MARKET``: parameters near Compound's cUSDCv3 on Ethereum, rounded), the
Multicall3 and one constant-product pair per collateral against USDC, then seeds a book.

The book (:func:`plan_comet_book`) depends only on the seed and the account count:

- sizes heavy-tailed (log-normal body, median about $6,000; a Pareto tail of whales, at least
  ``MIN_WHALES`` of them; about 4% dust accounts under $50, which cannot borrow);
- about 15% lenders, who supply the base asset (enough that utilisation is ``UTILISATION``),
  about 5% collateral-only accounts, the rest borrowers of the base asset against 1-3
  collateral assets;
- each borrower's *liquidation health* sum(collateral value x liquidateCollateralFactor) /
  debt value mostly log-uniform in 1.02-3, about 12% in 1.001-1.02 (near liquidation), a few
  above 3; checked with Comet's integer arithmetic, and by the contract itself (the seeding
  transaction reverts on a liquidatable account or a borrow below ``baseBorrowMin``).

Seeding goes through the governor's ``seedAccounts`` (hundreds of accounts per transaction,
automine paused), which emits ``SupplyCollateral``, ``Supply`` / ``Transfer`` and ``Withdraw``
as a real market does, then ``seedReserves`` sets the base cash so that ``getReserves()``
reads ``initial_reserves`` (below ``targetReserves``: the store front is open). Accounts are
deterministic key-less addresses.

``deployment.json`` for this market holds ``protocol: "compound-v3"``, ``rpc_url``,
``chain_id``, ``comet``, ``multicall3``, ``base_symbol``, ``reserves: {SYMBOL: {token, feed,
dex_pair, dex_quote, decimals, is_base}}`` and the market's parameters (``COMET_REQUIRED``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
from eth_utils import keccak, to_checksum_address

from keeper.devnet import DevnetError
from keeper.devnet.chain import Contract, Rpc, artifact, deploy, selector
from keeper.devnet.deploy import (
    MULTICALL3_ADDRESS,
    PRICE_DECIMALS,
    _place_multicall3,
    price_to_answer,
)

__all__ = [
    "COMET_MARKET",
    "COMET_REQUIRED",
    "CometAccount",
    "CometBook",
    "CometCollateralSpec",
    "CometMarketSpec",
    "deploy_comet",
    "liquidation_health",
    "plan_comet_book",
    "seed_comet",
    "setup_comet_market",
    "supply_caps",
]

log = logging.getLogger(__name__)

PROTOCOL = "compound-v3"
#: Fields every Compound V3 deployment.json has.
COMET_REQUIRED = ("protocol", "rpc_url", "chain_id", "comet", "multicall3", "reserves")

FACTOR_SCALE = 10**18
BASE_INDEX_SCALE = 10**15
PRICE_SCALE = 10**8

KIND_COLLATERAL = 0
KIND_BORROW = 1
KIND_SUPPLY = 2

ACCOUNTS_PER_TX = 400
_GAS_PER_RECORD = 150_000
_GAS_BASE = 300_000

#: Share of the supplied base asset that is borrowed after seeding.
UTILISATION = 0.8
#: Fewest whales in a book of at least 50 accounts.
MIN_WHALES = 3
#: Lowest liquidation health the seeder accepts (Comet's integer arithmetic).
MIN_SEED_HEALTH = Decimal("1.001")
#: DEX depth per side as a multiple of the borrowers' collateral in the asset (floor: listed).
POOL_DEPTH_MULTIPLE = 3.0


def factor(value: str) -> int:
    """A decimal fraction ("0.83") as a 1e18-scaled Comet factor, exactly."""
    return int(Decimal(value) * FACTOR_SCALE)


@dataclass(frozen=True, slots=True)
class CometCollateralSpec:
    """One collateral asset of the devnet Comet market (factors as decimal strings)."""

    symbol: str
    name: str
    decimals: int
    price_usd: float
    borrow_collateral_factor: str
    liquidate_collateral_factor: str
    liquidation_factor: str
    #: Whole tokens.
    supply_cap: int
    #: Listed USD depth per side of its pair against the base asset.
    dex_side_usd: float
    #: Relative weight as collateral when seeding.
    weight: float


@dataclass(frozen=True, slots=True)
class CometMarketSpec:
    """The devnet Comet market: base asset, interest model, store front, collateral."""

    base_symbol: str = "USDC"
    base_name: str = "USD Coin"
    base_decimals: int = 6
    base_price_usd: float = 1.0
    #: Per-year rates and kinks (fractions as decimal strings; Comet divides by 31,536,000).
    supply_kink: str = "0.90"
    supply_slope_low: str = "0.059"
    supply_slope_high: str = "2.9"
    supply_base: str = "0"
    borrow_kink: str = "0.90"
    borrow_slope_low: str = "0.05"
    borrow_slope_high: str = "3.4"
    borrow_base: str = "0.015"
    store_front_price_factor: str = "0.6"
    #: Base token units (whole tokens here, scaled at deployment).
    base_borrow_min: int = 100
    target_reserves: int = 5_000_000
    #: Reserves after seeding, as a share of the borrowed base (capped below the target).
    initial_reserves_share: float = 0.03
    #: Indexes at deployment (1 = 1e15), a market that has been running for a while.
    initial_supply_index: str = "1.0523418872013376"
    initial_borrow_index: str = "1.0817345120946541"
    collateral: tuple[CometCollateralSpec, ...] = field(default_factory=tuple)


COMET_MARKET = CometMarketSpec(
    collateral=(
        CometCollateralSpec(
            "WETH", "Wrapped Ether", 18, 3000.0, "0.83", "0.90", "0.95", 500_000, 20e6, 0.40
        ),
        CometCollateralSpec(
            "WBTC", "Wrapped BTC", 8, 60000.0, "0.80", "0.85", "0.95", 20_000, 15e6, 0.25
        ),
        CometCollateralSpec(
            "wstETH",
            "Wrapped liquid staked Ether 2.0",
            18,
            3500.0,
            "0.80",
            "0.85",
            "0.90",
            100_000,
            5e6,
            0.18,
        ),
        CometCollateralSpec(
            "LINK", "ChainLink Token", 18, 15.0, "0.79", "0.85", "0.93", 2_000_000, 2.5e6, 0.10
        ),
        CometCollateralSpec(
            "COMP", "Compound", 18, 50.0, "0.65", "0.70", "0.88", 200_000, 2e6, 0.07
        ),
    )
)


@dataclass(slots=True)
class CometAccount:
    """One seeded account: address and records (kind, collateral offset, amount in base units)."""

    address: str
    records: list[tuple[int, int, int]] = field(default_factory=list)
    #: Planned liquidation health (inf for accounts without debt).
    health: float = float("inf")
    whale: bool = False

    @property
    def borrow(self) -> int:
        return sum(a for k, _, a in self.records if k == KIND_BORROW)

    @property
    def supply(self) -> int:
        return sum(a for k, _, a in self.records if k == KIND_SUPPLY)

    def collateral(self, offset: int) -> int:
        return sum(a for k, o, a in self.records if k == KIND_COLLATERAL and o == offset)


@dataclass(slots=True)
class CometBook:
    """The planned Comet book, in seeding order."""

    accounts: list[CometAccount]

    @property
    def n_positions(self) -> int:
        return sum(len(a.records) for a in self.accounts)

    @property
    def borrowed(self) -> int:
        return sum(a.borrow for a in self.accounts)

    @property
    def supplied(self) -> int:
        return sum(a.supply for a in self.accounts)


def account_address(seed: int, index: int) -> str:
    """Deterministic key-less address of Comet account ``index`` for ``seed``."""
    digest = keccak(
        b"shortfall-devnet-comet-account" + seed.to_bytes(8, "big") + index.to_bytes(8, "big")
    )
    return to_checksum_address(digest[12:])


def _price(usd: float) -> int:
    return price_to_answer(usd)


def liquidation_health(
    collateral: list[int],
    borrow: int,
    spec: CometMarketSpec = COMET_MARKET,
    prices: list[int] | None = None,
) -> Decimal:
    """sum(collateral value x liquidateCollateralFactor) / debt value with Comet's integer
    rounding (values in 1e8 USD); ``collateral[i]`` in base units of collateral ``i``, ``borrow``
    in base-asset units. Infinite without debt."""
    if borrow <= 0:
        return Decimal("Infinity")
    prices = prices or [_price(c.price_usd) for c in spec.collateral]
    weighted = 0
    for c, amount, price in zip(spec.collateral, collateral, prices, strict=True):
        value = amount * price // 10**c.decimals
        weighted += value * factor(c.liquidate_collateral_factor) // FACTOR_SCALE
    debt_value = borrow * _price(spec.base_price_usd) // 10**spec.base_decimals
    return Decimal(weighted) / Decimal(debt_value) if debt_value else Decimal("Infinity")


def plan_comet_book(
    n_accounts: int, seed: int = 7, spec: CometMarketSpec = COMET_MARKET
) -> CometBook:
    """Plan ``n_accounts`` accounts, deterministic in ``seed`` (module docstring)."""
    if n_accounts < 0:
        raise DevnetError(f"--accounts must be >= 0, got {n_accounts}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC0E7]))
    coll = spec.collateral
    n_coll = len(coll)
    weights = np.array([c.weight for c in coll])
    weights = weights / weights.sum()
    prices = [_price(c.price_usd) for c in coll]
    base_unit = 10**spec.base_decimals
    min_borrow = spec.base_borrow_min * base_unit

    size = np.exp(rng.normal(np.log(6_000.0), 1.6, n_accounts))
    whale = rng.random(n_accounts) < 0.004
    if n_accounts >= 50 and whale.sum() < MIN_WHALES:
        whale[rng.choice(n_accounts, size=MIN_WHALES, replace=False)] = True
    size[whale] = 2e6 * (1.0 + rng.pareto(1.2, int(whale.sum())))
    size = np.minimum(size, 1e8)
    dust = (rng.random(n_accounts) < 0.04) & ~whale
    size[dust] = np.exp(rng.uniform(np.log(0.5), np.log(50.0), int(dust.sum())))
    role = rng.random(n_accounts)  # < 0.15 lender, < 0.20 collateral only, else borrower
    u = rng.random(n_accounts)
    health = np.where(
        u < 0.80,
        np.exp(rng.uniform(np.log(1.02), np.log(3.0), n_accounts)),
        np.where(
            u < 0.92,
            rng.uniform(1.001, 1.02, n_accounts),
            np.exp(rng.uniform(np.log(3.0), np.log(15.0), n_accounts)),
        ),
    )
    k_coll = rng.choice([1, 2, 3], size=n_accounts, p=[0.6, 0.3, 0.1])

    accounts = [
        CometAccount(account_address(seed, i), whale=bool(whale[i])) for i in range(n_accounts)
    ]
    lenders: list[int] = []
    for i, acct in enumerate(accounts):
        if role[i] < 0.15 and not whale[i]:
            lenders.append(i)
            continue
        chosen = rng.choice(n_coll, size=min(int(k_coll[i]), n_coll), replace=False, p=weights)
        split = rng.dirichlet(np.ones(len(chosen)))
        amounts = [0] * n_coll
        for offset, share in zip(sorted(int(c) for c in chosen), split, strict=True):
            amount = int(
                size[i] * share * 10 ** coll[offset].decimals * PRICE_SCALE / prices[offset]
            )
            if amount > 0:
                amounts[offset] = amount
                acct.records.append((KIND_COLLATERAL, offset, amount))
        if not acct.records:
            offset = int(rng.choice(n_coll, p=weights))
            amounts[offset] = 1
            acct.records.append((KIND_COLLATERAL, offset, 1))
        if role[i] < 0.20 and not whale[i]:
            continue  # collateral only
        weighted_usd = sum(
            amounts[o]
            * prices[o]
            / PRICE_SCALE
            / 10 ** coll[o].decimals
            * float(coll[o].liquidate_collateral_factor)
            for o in range(n_coll)
        )
        borrow = int(weighted_usd / float(health[i]) / spec.base_price_usd * base_unit)
        # shave until Comet's own arithmetic agrees the account is healthy (with room for the
        # borrow principal's rounding up)
        for _ in range(200):
            if (
                borrow < min_borrow
                or liquidation_health(amounts, borrow + 2, spec, prices) >= MIN_SEED_HEALTH
            ):
                break
            borrow = borrow * 995 // 1000
        if borrow >= min_borrow:
            acct.records.append((KIND_BORROW, 0, borrow))
            acct.health = float(liquidation_health(amounts, borrow, spec, prices))

    borrowed = sum(a.borrow for a in accounts)
    if borrowed and not lenders:
        lenders = [len(accounts)]
        accounts.append(CometAccount(account_address(seed, len(accounts))))
    if lenders:
        total = int(borrowed / UTILISATION) if borrowed else int(size[lenders].sum() * base_unit)
        shares = rng.dirichlet(np.full(len(lenders), 0.7))
        given = 0
        for j, (i, share) in enumerate(zip(lenders, shares, strict=True)):
            amount = total - given if j == len(lenders) - 1 else int(total * share)
            amount = max(amount, 1)
            given += amount
            accounts[i].records.append((KIND_SUPPLY, 0, amount))
    return CometBook(accounts)


def _seed_call(comet: Contract, accounts: list[CometAccount]) -> str:
    fn = next(e for e in artifact("Comet")["abi"] if e.get("name") == "seedAccounts")
    words: list[int] = []
    for acct in accounts:
        user = int(acct.address, 16)
        for kind, offset, amount in sorted(acct.records):  # collateral before borrowing
            words += [user | (kind << 160) | (offset << 168), amount]
    body = b"".join(w.to_bytes(32, "big") for w in (0x20, len(words), *words))
    return "0x" + selector(fn).hex() + body.hex()


def supply_caps(book: CometBook, spec: CometMarketSpec = COMET_MARKET) -> dict[str, int]:
    """Whole-token supply cap per collateral: the listed cap, or twice what the book supplies
    when that is more (a large book must fit under its market's caps)."""
    caps: dict[str, int] = {}
    for offset, c in enumerate(spec.collateral):
        held = sum(a.collateral(offset) for a in book.accounts)
        caps[c.symbol] = max(c.supply_cap, -(-2 * held // 10**c.decimals))
    return caps


def deploy_comet(
    rpc: Rpc, spec: CometMarketSpec = COMET_MARKET, caps: dict[str, int] | None = None
) -> dict[str, Any]:
    """Deploy tokens, feeds, the Comet market, Multicall3; returns deployment.json (unseeded).
    ``caps``: whole-token supply caps by symbol (default: the listed ones)."""
    admin = rpc.accounts()[0]
    base = deploy(
        rpc, "DevnetERC20", spec.base_name, spec.base_symbol, spec.base_decimals, sender=admin
    )
    base_feed = deploy(
        rpc,
        "DevnetPriceFeed",
        PRICE_DECIMALS,
        f"{spec.base_symbol} / USD",
        _price(spec.base_price_usd),
        sender=admin,
    )
    base_unit = 10**spec.base_decimals
    config = (
        admin,
        base.address,
        base_feed.address,
        factor(spec.supply_kink),
        factor(spec.supply_slope_low),
        factor(spec.supply_slope_high),
        factor(spec.supply_base),
        factor(spec.borrow_kink),
        factor(spec.borrow_slope_low),
        factor(spec.borrow_slope_high),
        factor(spec.borrow_base),
        factor(spec.store_front_price_factor),
        spec.base_borrow_min * base_unit,
        spec.target_reserves * base_unit,
        int(Decimal(spec.initial_supply_index) * BASE_INDEX_SCALE),
        int(Decimal(spec.initial_borrow_index) * BASE_INDEX_SCALE),
    )
    comet = deploy(rpc, "Comet", config, sender=admin)
    reserves: dict[str, dict[str, Any]] = {
        spec.base_symbol: {
            "token": base.address,
            "feed": base_feed.address,
            "dex_pair": None,
            "decimals": spec.base_decimals,
            "is_base": True,
        }
    }
    for c in spec.collateral:
        token = deploy(rpc, "DevnetERC20", c.name, c.symbol, c.decimals, sender=admin)
        feed = deploy(
            rpc,
            "DevnetPriceFeed",
            PRICE_DECIMALS,
            f"{c.symbol} / USD",
            _price(c.price_usd),
            sender=admin,
        )
        comet.transact(
            "addAsset",
            (
                token.address,
                feed.address,
                c.decimals,
                factor(c.borrow_collateral_factor),
                factor(c.liquidate_collateral_factor),
                factor(c.liquidation_factor),
                (caps or {}).get(c.symbol, c.supply_cap) * 10**c.decimals,
            ),
            sender=admin,
        )
        reserves[c.symbol] = {
            "token": token.address,
            "feed": feed.address,
            "dex_pair": None,
            "decimals": c.decimals,
            "is_base": False,
            "supply_cap": (caps or {}).get(c.symbol, c.supply_cap),
        }
    _place_multicall3(rpc, admin)
    return {
        "protocol": PROTOCOL,
        "rpc_url": rpc.url,
        "chain_id": rpc.chain_id(),
        "comet": comet.address,
        "multicall3": MULTICALL3_ADDRESS,
        "base_symbol": spec.base_symbol,
        "reserves": reserves,
        "deployer": admin,
        "governor": admin,
        "store_front_price_factor": spec.store_front_price_factor,
        "target_reserves": spec.target_reserves * base_unit,
        "base_borrow_min": spec.base_borrow_min * base_unit,
        "block_number_after_deploy": rpc.block_number(),
    }


def _fund_pairs(
    rpc: Rpc, deployment: dict[str, Any], book: CometBook, spec: CometMarketSpec
) -> dict[str, float]:
    """One pair per collateral against the base asset, each side worth max(listed depth,
    ``POOL_DEPTH_MULTIPLE`` x the borrowers' collateral in it)."""
    admin = deployment["deployer"]
    reserves = deployment["reserves"]
    base = reserves[spec.base_symbol]
    at_risk = [0.0] * len(spec.collateral)
    for acct in book.accounts:
        if acct.borrow:
            for o, c in enumerate(spec.collateral):
                at_risk[o] += acct.collateral(o) * c.price_usd / 10**c.decimals
    depths: dict[str, float] = {}
    for o, c in enumerate(spec.collateral):
        depth = max(c.dex_side_usd, POOL_DEPTH_MULTIPLE * at_risk[o])
        token = Contract(rpc, reserves[c.symbol]["token"], "DevnetERC20")
        pair = deploy(rpc, "UniswapV2Pair", token.address, base["token"], sender=admin)
        token.transact(
            "mint",
            pair.address,
            int(Decimal(str(depth)) / Decimal(str(c.price_usd)) * 10**c.decimals),
            sender=admin,
        )
        Contract(rpc, base["token"], "DevnetERC20").transact(
            "mint",
            pair.address,
            int(Decimal(str(depth)) / Decimal(str(spec.base_price_usd)) * 10**spec.base_decimals),
            sender=admin,
        )
        pair.transact("sync", sender=admin)
        reserves[c.symbol]["dex_pair"] = pair.address
        reserves[c.symbol]["dex_quote"] = spec.base_symbol
        depths[c.symbol] = round(depth, 2)
    return depths


def seed_comet(
    rpc: Rpc,
    deployment: dict[str, Any],
    book: CometBook,
    spec: CometMarketSpec = COMET_MARKET,
    accounts_per_tx: int = ACCOUNTS_PER_TX,
) -> dict[str, Any]:
    """Write ``book`` into the deployed Comet, set its reserves, fund the pairs; returns the
    seeding facts for deployment.json."""
    admin = deployment["deployer"]
    comet = Contract(rpc, deployment["comet"], "Comet")
    started = time.perf_counter()
    hashes: list[str] = []
    rpc.call("evm_setAutomine", False)
    try:
        for i in range(0, len(book.accounts), accounts_per_tx):
            batch = [a for a in book.accounts[i : i + accounts_per_tx] if a.records]
            if not batch:
                continue
            gas = _GAS_BASE + _GAS_PER_RECORD * sum(len(a.records) for a in batch)
            hashes.append(
                rpc.send(
                    {
                        "from": admin,
                        "to": comet.address,
                        "data": _seed_call(comet, batch),
                        "gas": hex(gas),
                    }
                )
            )
        if hashes:
            rpc.mine()
            for _ in range(len(hashes)):
                if int(rpc.call("txpool_status").get("pending", "0x0"), 16) == 0:
                    break
                rpc.mine()
    finally:
        rpc.call("evm_setAutomine", True)
    for h in hashes:
        receipt = rpc.receipt(h)
        if int(receipt["status"], 16) != 1:
            try:  # replay to name the contract's error
                tx = rpc.call("eth_getTransactionByHash", h)
                rpc.call(
                    "eth_call",
                    {"from": tx["from"], "to": tx["to"], "data": tx["input"]},
                    hex(int(receipt["blockNumber"], 16) - 1),
                )
            except Exception as exc:  # the replay's revert carries the reason
                raise DevnetError(
                    f"seeding transaction {h} reverted: {comet.decode_error(getattr(exc, 'data', None)) or exc}"
                ) from None
            raise DevnetError(f"seeding transaction {h} reverted")
    borrowed = book.borrowed
    base_unit = 10**spec.base_decimals
    initial = min(
        int(borrowed * spec.initial_reserves_share), spec.target_reserves * base_unit * 8 // 10
    )
    initial = max(initial, 10_000 * base_unit)
    seeded_at = int(comet.transact("seedReserves", initial, sender=admin)["blockNumber"], 16)
    depths = _fund_pairs(rpc, deployment, book, spec)
    elapsed = time.perf_counter() - started
    log.info(
        "seeded %d Comet accounts (%d records) in %d transactions, %.1f s",
        len(book.accounts),
        book.n_positions,
        len(hashes),
        elapsed,
    )
    return {
        "accounts": len(book.accounts),
        "positions": book.n_positions,
        "borrowers": sum(1 for a in book.accounts if a.borrow),
        "lenders": sum(1 for a in book.accounts if a.supply),
        "whales": sum(1 for a in book.accounts if a.whale),
        "near_liquidation": sum(1 for a in book.accounts if a.borrow and a.health < 1.02),
        "initial_reserves": initial,
        # reserves accrue with time: initial_reserves holds at this block, not at "latest"
        "reserves_block": seeded_at,
        "block_number_after_seed": rpc.block_number(),
        "dex_side_usd": depths,
    }


def setup_comet_market(
    rpc: Rpc, accounts: int = 2000, seed: int = 7, spec: CometMarketSpec = COMET_MARKET
) -> tuple[dict[str, Any], CometBook]:
    """Deploy and seed the Comet market on a running node; returns (deployment, book)."""
    started = time.perf_counter()
    book = plan_comet_book(accounts, seed, spec)
    deployment = deploy_comet(rpc, spec, supply_caps(book, spec))
    deployed = time.perf_counter()
    facts = seed_comet(rpc, deployment, book, spec)
    facts["seed_seconds"] = round(time.perf_counter() - deployed, 3)
    deployment.update(seed=seed, **facts)
    log.info(
        "comet devnet ready: deployed in %.1f s, %d accounts seeded", deployed - started, accounts
    )
    return deployment, book
