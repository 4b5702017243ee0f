"""Seed the devnet market with a realistic, deterministic book of accounts.

The book (``plan_book``) depends only on the seed and the account count: the same arguments
give the same accounts, positions and amounts on any machine. Shape:

- sizes heavy-tailed: a log-normal body with a Pareto tail of whales, many small accounts and
  about 4% dust accounts (under $50);
- about 12% lenders (supply only, no debt), the rest borrowers with 1-3 collateral assets
  and 1-2 debt assets (never the same asset on both sides);
- health factors mostly between 1.02 and 3 (log-uniform), a tail of about 12% between
  1.001 and 1.02, a few above 3; none below 1, checked with the contract's exact integer math;
- e-mode (``keeper.devnet.market.EMODES``): about 15% of the accounts borrow WETH against
  wstETH in the "ETH correlated" category (LT 95%), at health factors 1.01-1.10, with a few
  whales among them; their sizes are scaled together so that they hold a third of all the
  debt (``ETH_EMODE_DEBT_SHARE``); about 7% borrow stablecoins against stablecoins in the
  (v3.7-isolated) "Stablecoins" category, at health factors 1.02-1.6. Each enters its category
  after supplying and before borrowing, with a ``UserEModeSet`` event as on a real pool;
- lenders' supply keeps every borrowed asset's utilisation at or below about 80%;
- DEX pairs sized from the book (``plan_pool_depths``): each pair holds, per side, at least
  ``POOL_DEPTH_MULTIPLE`` (3x) the borrowers' collateral in the asset(s) it trades, and never
  less than the market's listed depth (``ReserveSpec.dex_side_usd``, the floor).

**Why the pairs follow the book.** The cascade engine sells every seized token into the
asset's pair, and a constant-product pair holding ``D`` USD a side loses about ``2 s / D`` of
its price to a sale of ``s`` USD (before the market's recovery). With the listed depths alone
($2.5M-$20M a side) a 2,000-account book holds about 2-5x the pool in collateral (e.g. $13M
of LINK against a $2.5M pair, $9.7M of wstETH against $5M); the first hour's ordinary 1%
move then liquidated a few accounts whose sales moved the pool more than the move itself,
and the cascade fed itself until the engine's round limit stopped it (wstETH -57% within an
hour on a ~3% daily-vol day, a round-limit hit on 3 paths in 4). Real markets sit the other
way round: the liquidity a liquidator can sell into (DEX pools plus the CEX books arbitrage
connects) is a multiple of what a lending market can seize at once. At 3x, liquidating *all*
the borrowers' collateral in an asset at once would cost about 1 - (3/4)^2 = 44% of its
price, and the few percent an ordinary day liquidates move it by well under 1%: the demo's
cascades stay material in a crash but are no longer self-made on a calm day. The floor keeps
small books (tests, a few hundred accounts) on the listed depths.

``seed_book`` writes the book with the Pool's admin ``seedPositions`` (hundreds of accounts per
transaction, many transactions per block, automine paused), which emits the ``Supply``,
``ReserveUsedAsCollateralEnabled``, ``UserEModeSet`` and ``Borrow`` events a real market emits.
Amounts are token units at the reserves' indexes when the book is written (the Pool stores
them scaled, rounded as Aave's supply and borrow round); interest accrues from then on. Accounts are
deterministic addresses with no keys: they never sign.
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
from keeper.devnet.chain import Contract, Rpc, selector
from keeper.devnet.chain import artifact as load_artifact
from keeper.devnet.market import EMODES, MARKET, QUOTE_SYMBOL, EModeSpec, ReserveSpec

__all__ = [
    "KIND_BORROW",
    "KIND_COLLATERAL",
    "KIND_EMODE",
    "KIND_SUPPLY_ONLY",
    "POOL_DEPTH_MULTIPLE",
    "Account",
    "Book",
    "deepen_pairs",
    "emode_debt_share",
    "plan_book",
    "plan_pool_depths",
    "seed_book",
]

log = logging.getLogger(__name__)

KIND_COLLATERAL = 0
KIND_BORROW = 1
KIND_SUPPLY_ONLY = 2
#: Seed record kind "enter e-mode category ``amount``" (never stored in ``Account.positions``).
KIND_EMODE = 3

WAD = 10**18
#: Accounts per seeding transaction.
ACCOUNTS_PER_TX = 400
#: Gas budget per position record and per account in a seeding transaction (upper bounds).
_GAS_PER_RECORD = 60_000
_GAS_PER_ACCOUNT = 30_000
_GAS_BASE = 200_000
#: Lowest health factor the seeder accepts, wad.
MIN_SEED_HF = WAD + WAD // 1000
#: Token units a balance can move by when the Pool stores it scaled at an index of about 1-2
#: ray (a rayDiv then a rayMul, each rounded): the seeder's health-factor check allows for it.
SCALING_SLACK = 2
#: Highest utilisation (debt / supply) of any reserve after seeding.
MAX_UTILISATION = 0.8
#: Each DEX pair's depth per side, as a multiple of the borrowers' collateral (USD) in the
#: asset(s) it trades; the market's listed ``dex_side_usd`` is the floor (module docstring).
POOL_DEPTH_MULTIPLE = 3.0
#: Share of all the debt (USD) held by the accounts in the ETH-correlated e-mode category.
ETH_EMODE_DEBT_SHARE = 1.0 / 3.0
#: Probabilities that an account is an ETH-correlated / stablecoin e-mode borrower.
P_ETH_EMODE = 0.15
P_STABLE_EMODE = 0.07
#: Share of the ETH-correlated e-mode accounts drawn as whales (at least ``MIN_EMODE_WHALES``).
EMODE_WHALE_SHARE = 0.05
MIN_EMODE_WHALES = 2


@dataclass(slots=True)
class Account:
    """One seeded account: deterministic address, positions as (reserve id, kind, amount)."""

    address: str
    positions: list[tuple[int, int, int]] = field(default_factory=list)
    target_hf: float = float("inf")
    #: E-mode category the account enters before borrowing (0: none).
    emode: int = 0


@dataclass(slots=True)
class Book:
    """The planned book: accounts in seeding order and the per-reserve totals (token units)."""

    accounts: list[Account]
    supplied: list[int]
    borrowed: list[int]

    @property
    def n_positions(self) -> int:
        return sum(len(a.positions) for a in self.accounts)


def account_address(seed: int, index: int) -> str:
    """Deterministic key-less address of account ``index`` for ``seed``."""
    digest = keccak(
        b"shortfall-devnet-account" + seed.to_bytes(8, "big") + index.to_bytes(8, "big")
    )
    return to_checksum_address(digest[12:])


def _price_int(spec: ReserveSpec, prices: dict[str, int] | None) -> int:
    if prices and spec.symbol in prices:
        return prices[spec.symbol]
    return int(Decimal(str(spec.price_usd)) * 10**8)


def emode_lts(emode: EModeSpec | None, market: tuple[ReserveSpec, ...]) -> list[int]:
    """Per reserve id, the liquidation threshold for a user in ``emode`` (None: reserves')."""
    lts = [s.liquidation_threshold for s in market]
    if emode is not None:
        for i, spec in enumerate(market):
            if spec.symbol in emode.collaterals and spec.liquidation_threshold != 0:
                lts[i] = emode.liquidation_threshold
    return lts


def health_factor_wad(
    positions: list[tuple[int, int, int]],
    market: tuple[ReserveSpec, ...],
    prices: list[int],
    emode: EModeSpec | None = None,
) -> int:
    """The Pool's health factor of these positions (aave-v3-origin v3.7 rounding, the e-mode
    category's liquidation threshold for its collateral), wad, at token amounts."""
    lts = emode_lts(emode, market)
    weighted_lt = 0
    debt = 0
    for rid, kind, amount in positions:
        spec = market[rid]
        unit = 10**spec.decimals
        if kind == KIND_COLLATERAL:
            weighted_lt += (amount * prices[rid] // unit) * lts[rid]
        elif kind == KIND_BORROW:
            debt += -((-amount * prices[rid]) // unit)
    if debt == 0:
        return 2**256 - 1
    return ((weighted_lt * WAD + debt // 2) // debt) // 10_000


def _choose(rng: np.random.Generator, weights: np.ndarray, k: int, exclude: set[int]) -> list[int]:
    w = weights.copy()
    for i in exclude:
        w[i] = 0.0
    k = min(k, int(np.count_nonzero(w)))
    if k == 0:
        return []
    return [int(i) for i in rng.choice(len(w), size=k, replace=False, p=w / w.sum())]


def plan_book(
    n_accounts: int,
    seed: int = 7,
    market: tuple[ReserveSpec, ...] = MARKET,
    prices: dict[str, int] | None = None,
) -> Book:
    """Plan a book of ``n_accounts`` accounts, deterministic in ``seed``."""
    if n_accounts < 0:
        raise DevnetError(f"--accounts must be >= 0, got {n_accounts}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    n_res = len(market)
    price = [_price_int(s, prices) for s in market]
    coll_w = np.array([s.collateral_weight for s in market], dtype=float)
    debt_w = np.array([s.debt_weight if s.borrowing_enabled else 0.0 for s in market], dtype=float)

    # Sizes: log-normal body (median ~$6k), Pareto tail of whales, dust accounts.
    size_usd = np.exp(rng.normal(np.log(6_000.0), 1.6, n_accounts))
    whales = rng.random(n_accounts) < 0.004
    size_usd[whales] = 2e6 * (1.0 + rng.pareto(1.2, int(whales.sum())))
    dust = rng.random(n_accounts) < 0.04
    size_usd[dust] = np.exp(rng.uniform(np.log(0.5), np.log(50.0), int(dust.sum())))
    size_usd = np.minimum(size_usd, 2e8)
    lender = rng.random(n_accounts) < 0.12
    u = rng.random(n_accounts)
    target_hf = np.where(
        u < 0.80,
        np.exp(rng.uniform(np.log(1.02), np.log(3.0), n_accounts)),
        np.where(
            u < 0.92,
            rng.uniform(1.001, 1.02, n_accounts),
            np.exp(rng.uniform(np.log(3.0), np.log(15.0), n_accounts)),
        ),
    )
    n_coll = rng.choice([1, 2, 3], size=n_accounts, p=[0.6, 0.3, 0.1])
    n_debt = rng.choice([1, 2], size=n_accounts, p=[0.75, 0.25])

    # E-mode groups, from their own stream (0 none, 1 ETH correlated, 2 stablecoins).
    erng = np.random.default_rng(np.random.SeedSequence([seed, 0xE30DE]))
    by_symbol = {spec.symbol: i for i, spec in enumerate(market)}
    emodes = {e.id: e for e in EMODES}
    eth_e, stable_e = emodes[1], emodes[2]
    eth_coll, eth_debt = by_symbol["wstETH"], by_symbol["WETH"]
    stable_ids = [by_symbol[s] for s in stable_e.collaterals]
    ue = erng.random(n_accounts)
    group = np.where(
        lender, 0, np.where(ue < P_ETH_EMODE, 1, np.where(ue < P_ETH_EMODE + P_STABLE_EMODE, 2, 0))
    )
    eth_idx = np.flatnonzero(group == 1)
    if len(eth_idx):
        n_whales = max(MIN_EMODE_WHALES, round(EMODE_WHALE_SHARE * len(eth_idx)))
        whale_idx = erng.choice(eth_idx, size=min(n_whales, len(eth_idx)), replace=False)
        size_usd[whale_idx] = 2e6 * (1.0 + erng.pareto(1.2, len(whale_idx)))
        size_usd[whale_idx] = np.minimum(size_usd[whale_idx], 2e8)
        target_hf[eth_idx] = erng.uniform(1.01, 1.10, len(eth_idx))
    stable_idx = np.flatnonzero(group == 2)
    target_hf[stable_idx] = np.exp(erng.uniform(np.log(1.02), np.log(1.6), len(stable_idx)))

    accounts: list[Account] = [Account(account_address(seed, i)) for i in range(n_accounts)]
    supplied = [0] * n_res
    borrowed = [0] * n_res

    def shave_to_min_hf(acct: Account, emode: EModeSpec | None) -> None:
        # Exact check with the Pool's integer math; shave debt until HF >= MIN_SEED_HF even
        # after the scaled storage's rounding (up to SCALING_SLACK units off either way).
        for _ in range(200):
            hf = health_factor_wad(acct.positions, market, price, emode)
            worst = [
                (r, k, a + SCALING_SLACK if k == KIND_BORROW else max(0, a - SCALING_SLACK))
                for r, k, a in acct.positions
            ]
            if health_factor_wad(worst, market, price, emode) >= MIN_SEED_HF:
                break
            acct.positions = [
                (r, k, a if k != KIND_BORROW else a * 995 // 1000) for r, k, a in acct.positions
            ]
            acct.positions = [p for p in acct.positions if p[2] > 0]
        acct.target_hf = hf / WAD

    def usd_to_units(usd: float, rid: int) -> int:
        return int(usd * 10 ** market[rid].decimals * 1e8 / price[rid])

    # Ordinary and stablecoin e-mode borrowers first: their debt fixes the ETH e-mode sizes.
    other_debt_usd = 0.0
    for i in range(n_accounts):
        acct = accounts[i]
        if lender[i] or group[i] == 1:
            continue  # lenders' supply is filled in below, once borrow totals are known
        emode = stable_e if group[i] == 2 else None
        if emode is not None:
            acct.emode = emode.id
            w = np.array([coll_w[r] if r in stable_ids else 0.0 for r in range(n_res)])
            colls = _choose(rng, w, int(min(n_coll[i], 2)), set())
            debts = _choose(rng, w, 1, set(colls))
        else:
            colls = _choose(rng, coll_w, int(n_coll[i]), set())
            debts = []
        lts = emode_lts(emode, market)
        split = rng.dirichlet(np.ones(len(colls)))
        weighted_usd = 0.0
        for rid, share in zip(colls, split, strict=True):
            amount = max(1, usd_to_units(size_usd[i] * share, rid))
            acct.positions.append((rid, KIND_COLLATERAL, amount))
            weighted_usd += amount * price[rid] / 1e8 / 10 ** market[rid].decimals * lts[rid] / 1e4
        if emode is None:
            debts = _choose(rng, debt_w, int(n_debt[i]), set(colls))
        if debts:
            debt_usd = weighted_usd / float(target_hf[i])
            split = rng.dirichlet(np.ones(len(debts)))
            for rid, share in zip(debts, split, strict=True):
                amount = usd_to_units(debt_usd * share, rid)
                if amount > 0:
                    acct.positions.append((rid, KIND_BORROW, amount))
            shave_to_min_hf(acct, emode)
        other_debt_usd += sum(
            a * price[r] / 1e8 / 10 ** market[r].decimals
            for r, k, a in acct.positions
            if k == KIND_BORROW
        )

    # ETH-correlated e-mode: wstETH collateral, WETH debt, sizes scaled together so that the
    # group holds ETH_EMODE_DEBT_SHARE of all the debt.
    if len(eth_idx):
        planned = float(
            np.sum(size_usd[eth_idx] * eth_e.liquidation_threshold / 1e4 / target_hf[eth_idx])
        )
        want = other_debt_usd * ETH_EMODE_DEBT_SHARE / (1.0 - ETH_EMODE_DEBT_SHARE)
        scale = want / planned if planned > 0 and want > 0 else 1.0
        for i in eth_idx:
            acct = accounts[int(i)]
            acct.emode = eth_e.id
            coll_usd = size_usd[i] * scale
            amount = max(1, usd_to_units(coll_usd, eth_coll))
            acct.positions.append((eth_coll, KIND_COLLATERAL, amount))
            debt_usd = coll_usd * eth_e.liquidation_threshold / 1e4 / float(target_hf[i])
            debt_amount = usd_to_units(debt_usd, eth_debt)
            if debt_amount > 0:
                acct.positions.append((eth_debt, KIND_BORROW, debt_amount))
                shave_to_min_hf(acct, eth_e)
            else:
                acct.emode = 0  # a collateral too small to borrow anything: a plain supplier

    for acct in accounts:
        for rid, kind, amount in acct.positions:
            (borrowed if kind == KIND_BORROW else supplied)[rid] += amount

    # Lenders: enough supply that no reserve is more than MAX_UTILISATION borrowed.
    lender_idx = np.flatnonzero(lender)
    if len(lender_idx):
        for rid in range(n_res):
            need = int(borrowed[rid] / MAX_UTILISATION) - supplied[rid]
            base = int(rng.uniform(0.05, 0.3) * borrowed[rid]) if borrowed[rid] else 0
            total = max(need, 0) + base
            if total <= 0:
                continue
            k = max(1, min(len(lender_idx), int(rng.integers(1, 40))))
            chosen = rng.choice(lender_idx, size=k, replace=False)
            shares = rng.dirichlet(np.full(k, 0.7))
            for j, share in zip(chosen, shares, strict=True):
                amount = int(total * share)
                if amount > 0:
                    accounts[int(j)].positions.append((rid, KIND_COLLATERAL, amount))
                    supplied[rid] += amount
        for j in lender_idx:  # a lender nobody picked still supplies something
            acct = accounts[int(j)]
            if not acct.positions:
                rid = _choose(rng, coll_w, 1, set())[0]
                spec = market[rid]
                amount = max(1, int(size_usd[j] * 10**spec.decimals * 1e8 / price[rid]))
                acct.positions.append((rid, KIND_COLLATERAL, amount))
                supplied[rid] += amount
            acct.positions.sort()
    return Book(accounts, supplied, borrowed)


def emode_debt_share(
    book: Book, market: tuple[ReserveSpec, ...] = MARKET, prices: dict[str, int] | None = None
) -> dict[int, float]:
    """Per e-mode category (0: none), its accounts' share of all the debt (USD at ``prices``)."""
    price = [_price_int(s, prices) for s in market]
    debt: dict[int, float] = {}
    for acct in book.accounts:
        usd = sum(
            a * price[r] / 1e8 / 10 ** market[r].decimals
            for r, k, a in acct.positions
            if k == KIND_BORROW
        )
        debt[acct.emode] = debt.get(acct.emode, 0.0) + usd
    total = sum(debt.values())
    return {k: (v / total if total else 0.0) for k, v in sorted(debt.items())}


def collateral_at_risk_usd(
    book: Book, market: tuple[ReserveSpec, ...] = MARKET, prices: dict[str, int] | None = None
) -> list[float]:
    """Per reserve, the collateral of accounts that borrow (what liquidations can seize), USD.

    Lenders' supply (accounts without debt) is left out: it is never liquidated.
    """
    price = [_price_int(s, prices) for s in market]
    out = [0.0] * len(market)
    for acct in book.accounts:
        if not any(kind == KIND_BORROW for _, kind, _ in acct.positions):
            continue
        for rid, kind, amount in acct.positions:
            if kind == KIND_COLLATERAL:
                out[rid] += amount * price[rid] / 1e8 / 10 ** market[rid].decimals
    return out


def plan_pool_depths(
    book: Book,
    market: tuple[ReserveSpec, ...] = MARKET,
    prices: dict[str, int] | None = None,
    quote_via: str | None = None,
    multiple: float = POOL_DEPTH_MULTIPLE,
) -> dict[str, float]:
    """USD depth per side of each DEX pair, keyed by the pair's (non-quote) asset symbol.

    ``max(listed dex_side_usd, multiple x collateral at risk)``, where the collateral at risk
    is the borrowers' collateral in the pair's asset, plus, for the pair the quote stablecoin
    trades through (``quote_via``, deployment's ``reserves[USDC].dex_quote``), the borrowers'
    collateral in the quote stablecoin. Assets without a listed pair get none.
    """
    if multiple < 0:
        raise DevnetError(f"pool depth multiple must be >= 0, got {multiple}")
    at_risk = collateral_at_risk_usd(book, market, prices)
    by_symbol = {s.symbol: i for i, s in enumerate(market)}
    depths: dict[str, float] = {}
    for rid, spec in enumerate(market):
        if spec.symbol == QUOTE_SYMBOL or spec.dex_side_usd <= 0:
            continue
        need = at_risk[rid]
        if quote_via == spec.symbol and QUOTE_SYMBOL in by_symbol:
            need += at_risk[by_symbol[QUOTE_SYMBOL]]
        depths[spec.symbol] = max(float(spec.dex_side_usd), multiple * need)
    return depths


def deepen_pairs(rpc: Rpc, deployment: dict[str, Any], depths: dict[str, float]) -> None:
    """Add liquidity to each pair, both sides in proportion (the price does not move), until
    its quote side holds ``depths[symbol]`` USD; a pair already that deep is left alone."""
    admin = deployment.get("deployer") or rpc.accounts()[0]
    reserves = deployment["reserves"]
    for symbol, target_usd in depths.items():
        entry = reserves.get(symbol) or {}
        if not entry.get("dex_pair"):
            continue
        pair = Contract(rpc, entry["dex_pair"], "UniswapV2Pair")
        quote = reserves[entry.get("dex_quote") or QUOTE_SYMBOL]
        token0 = to_checksum_address(pair.call("token0"))
        token1 = to_checksum_address(pair.call("token1"))
        r0, r1, _ = pair.call("getReserves")
        r_quote = r0 if token0 == to_checksum_address(quote["token"]) else r1
        have_usd = r_quote / 10 ** int(quote["decimals"])
        if have_usd <= 0 or target_usd <= have_usd * (1 + 1e-9):
            continue
        # integer ratio (1e12 resolution) so both sides grow by exactly the same factor
        scale = round(target_usd / have_usd * 10**12) - 10**12
        for token, reserve in ((token0, r0), (token1, r1)):
            add = reserve * scale // 10**12
            if add > 0:
                Contract(rpc, token, "DevnetERC20").transact(
                    "mint", pair.address, add, sender=admin
                )
        pair.transact("sync", sender=admin)


def _encode_seed_call(accounts: list[Account]) -> str:
    fn = next(e for e in load_artifact("Pool")["abi"] if e.get("name") == "seedPositions")
    words: list[int] = []
    for acct in accounts:
        user = int(acct.address, 16)
        # in the order a user acts: supply, enter e-mode, borrow
        supplies = [p for p in acct.positions if p[1] != KIND_BORROW]
        borrows = [p for p in acct.positions if p[1] == KIND_BORROW]
        for rid, kind, amount in supplies:
            words += [user | (rid << 160) | (kind << 168), amount]
        if acct.emode:
            words += [user | (KIND_EMODE << 168), acct.emode]
        for rid, kind, amount in borrows:
            words += [user | (rid << 160) | (kind << 168), amount]
    body = b"".join(w.to_bytes(32, "big") for w in (0x20, len(words), *words))
    return "0x" + selector(fn).hex() + body.hex()


def seed_book(
    rpc: Rpc,
    deployment: dict[str, Any],
    book: Book,
    accounts_per_tx: int = ACCOUNTS_PER_TX,
) -> dict[str, Any]:
    """Write ``book`` into the deployed Pool and size the DEX pairs from it
    (``plan_pool_depths``, ``deepen_pairs``); returns seeding facts for ``deployment.json``.

    Transactions are sent with automine paused and mined together, then automine is restored.
    """
    admin = deployment.get("deployer") or rpc.accounts()[0]
    pool = deployment["pool"]
    started = time.perf_counter()
    batches = [
        book.accounts[i : i + accounts_per_tx]
        for i in range(0, len(book.accounts), accounts_per_tx)
    ]
    hashes: list[str] = []
    rpc.call("evm_setAutomine", False)
    try:
        for batch in batches:
            n_records = sum(len(a.positions) for a in batch)
            if n_records == 0:
                continue
            gas = _GAS_BASE + _GAS_PER_RECORD * n_records + _GAS_PER_ACCOUNT * len(batch)
            hashes.append(
                rpc.send(
                    {"from": admin, "to": pool, "data": _encode_seed_call(batch), "gas": hex(gas)}
                )
            )
        if hashes:
            rpc.mine()
            # Mine until the pool is empty (a block holds at most the block gas limit).
            for _ in range(len(hashes)):
                status = rpc.call("txpool_status")
                if int(status.get("pending", "0x0"), 16) == 0:
                    break
                rpc.mine()
    finally:
        rpc.call("evm_setAutomine", True)
    gas_used = 0
    for h in hashes:
        receipt = rpc.receipt(h)
        if int(receipt["status"], 16) != 1:
            raise DevnetError(f"seeding transaction {h} reverted")
        gas_used += int(receipt["gasUsed"], 16)
    quote_via = (deployment["reserves"].get(QUOTE_SYMBOL) or {}).get("dex_quote")
    depths = plan_pool_depths(book, quote_via=quote_via)
    deepen_pairs(rpc, deployment, depths)
    elapsed = time.perf_counter() - started
    log.info(
        "seeded %d accounts (%d positions) in %d transactions, %.1f Mgas, %.1f s",
        len(book.accounts),
        book.n_positions,
        len(hashes),
        gas_used / 1e6,
        elapsed,
    )
    return {
        "accounts": len(book.accounts),
        "positions": book.n_positions,
        "block_number_after_seed": rpc.block_number(),
        "seed_seconds": round(elapsed, 3),
        "dex_side_usd": {k: round(v, 2) for k, v in depths.items()},
        "emode_accounts": {
            str(e.id): sum(1 for a in book.accounts if a.emode == e.id) for e in EMODES
        },
        "emode_debt_share": {str(k): round(v, 6) for k, v in emode_debt_share(book).items() if k},
    }
