"""Synthetic markets and price paths for tests and benchmarks, deterministic by seed.

``synthetic_snapshot`` builds an Aave-like book (the issue's workload A book by default:
100,000 accounts x 8 assets, health factors lognormal between 1.02 and 4 with a few percent
just above 1, 1-3 collateral and 1-2 debt assets per account, DEX pools of realistic depth).
``synthetic_paths`` draws correlated Student-t log-returns for the volatile assets (stablecoins
stay at 1) with a gas price that spikes as ETH falls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr, ndtri

from simulator import __version__
from simulator.errors import InputError
from simulator.scenarios.paths import OracleSpec, PricePaths
from simulator.snapshot import Book, CometTerms, MarketSnapshot

__all__ = [
    "SYNTHETIC_ASSETS",
    "SyntheticAsset",
    "comet_book",
    "synthetic_paths",
    "synthetic_snapshot",
]


@dataclass(frozen=True, slots=True)
class SyntheticAsset:
    """One reserve of the synthetic market.

    ``pool_usd`` is the smallest DEX pool quote reserve, USD; the pool is at least
    ``pool_share`` x the book's collateral in the asset deep.
    """

    symbol: str
    price_usd: float
    ltv: float
    liquidation_threshold: float
    liquidation_bonus: float
    protocol_fee: float
    decimals: int
    pool_usd: float
    stable: bool
    pool_share: float
    supply_rate: float = 0.0
    borrow_rate: float = 0.0
    """Annual supply / variable borrow rates (used by ``synthetic_snapshot(rates=True)``),
    close to Aave V3 Ethereum's in 2024."""


#: The eight reserves of the synthetic market (parameters close to Aave V3 Ethereum's).
SYNTHETIC_ASSETS: tuple[SyntheticAsset, ...] = (
    SyntheticAsset("WETH", 3000.0, 0.80, 0.83, 0.05, 0.10, 18, 150e6, False, 4.0, 0.02, 0.028),
    SyntheticAsset("WBTC", 60000.0, 0.73, 0.78, 0.05, 0.10, 8, 80e6, False, 4.0, 0.001, 0.01),
    SyntheticAsset("wstETH", 3500.0, 0.785, 0.81, 0.06, 0.10, 18, 60e6, False, 2.0, 0.0005, 0.005),
    SyntheticAsset("LINK", 15.0, 0.66, 0.71, 0.07, 0.10, 18, 8e6, False, 1.5, 0.001, 0.02),
    SyntheticAsset("AAVE", 100.0, 0.66, 0.73, 0.075, 0.10, 18, 5e6, False, 1.5, 0.0, 0.0),
    SyntheticAsset("USDC", 1.0, 0.75, 0.78, 0.045, 0.10, 6, 200e6, True, 5.0, 0.045, 0.06),
    SyntheticAsset("USDT", 1.0, 0.74, 0.76, 0.045, 0.10, 6, 150e6, True, 5.0, 0.04, 0.055),
    SyntheticAsset("DAI", 1.0, 0.63, 0.77, 0.05, 0.10, 18, 60e6, True, 3.0, 0.05, 0.07),
)

#: The synthetic ETH-correlated e-mode category (``synthetic_snapshot(emode_debt_share=...)``):
#: wstETH and WETH at LTV 93%, LT 94.5%, bonus 1% (Aave V3 Ethereum's ETH-correlated
#: category is 93% / 95% / 1%).
SYNTHETIC_EMODE_ASSETS: tuple[str, ...] = ("WETH", "wstETH")
SYNTHETIC_EMODE_LTV, SYNTHETIC_EMODE_LT, SYNTHETIC_EMODE_BONUS = 0.93, 0.945, 0.01


def _address(prefix: int, i: int) -> str:
    return f"0x{prefix:02x}{i:038x}"


def synthetic_snapshot(
    n_accounts: int = 100_000,
    seed: int = 0,
    *,
    near_one_share: float = 0.03,
    median_collateral_usd: float = 20_000.0,
    emode_debt_share: float = 0.0,
    rates: bool | None = None,
) -> MarketSnapshot:
    """An Aave-like market of ``n_accounts`` accounts over ``SYNTHETIC_ASSETS``.

    Each account supplies 1-3 assets (mostly volatile ones) worth a lognormal amount of USD
    (median ``median_collateral_usd``) and borrows 1-2 other assets (mostly stablecoins) so that
    its health factor is lognormal clipped to [1.02, 4]; a share ``near_one_share`` of accounts
    sits in [1.001, 1.03].

    With ``emode_debt_share > 0``, a tenth of the accounts (drawn after the rest, so the
    others are the same book) become e-mode loopers of the ``SYNTHETIC_EMODE_*`` category:
    wstETH collateral against WETH debt at an HF uniform in [1.01, 1.10] at the category's LT, their sizes
    scaled together so that they hold ``emode_debt_share`` of all debt (USD). ``rates``
    (default: on with e-mode) sets each reserve's ``SyntheticAsset`` supply and borrow rates,
    so balances accrue interest over the horizon.
    """
    if not 0.0 <= emode_debt_share < 1.0:
        raise InputError(f"emode_debt_share = {emode_debt_share}; expected in [0, 1)")
    if n_accounts < 1:
        raise InputError(f"n_accounts = {n_accounts}; expected >= 1")
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    assets = SYNTHETIC_ASSETS
    n_assets = len(assets)
    price = np.array([a.price_usd for a in assets])
    lt = np.array([a.liquidation_threshold for a in assets])
    stable = np.array([a.stable for a in assets])

    coll_usd = median_collateral_usd * np.exp(rng.normal(0.0, 1.4, n_accounts))
    n_coll = rng.integers(1, 4, n_accounts)
    n_debt = rng.integers(1, 3, n_accounts)
    # Lognormal (median 1.7, sigma 0.45) truncated to [1.02, 4] by inverse-CDF sampling.
    mu, sd = np.log(1.7), 0.45
    u_lo, u_hi = ndtr((np.log(1.02) - mu) / sd), ndtr((np.log(4.0) - mu) / sd)
    hf = np.exp(mu + sd * ndtri(rng.uniform(u_lo, u_hi, n_accounts)))
    near = rng.random(n_accounts) < near_one_share
    hf[near] = rng.uniform(1.001, 1.03, int(near.sum()))
    # Sampling without replacement, vectorised with the Gumbel-top-k trick.
    coll_p = np.array([0.35, 0.2, 0.2, 0.1, 0.05, 0.05, 0.03, 0.02])[:n_assets]
    keys = np.log(coll_p)[None, :] + rng.gumbel(size=(n_accounts, n_assets))
    rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
    held = rank < n_coll[:, None]
    split = rng.gamma(1.0, size=(n_accounts, n_assets)) * held
    split /= split.sum(axis=1, keepdims=True)
    collateral = coll_usd[:, None] * split / price[None, :]
    weighted = (collateral * price * lt).sum(axis=1)
    # Debt: stablecoins mostly, sometimes a volatile asset the account does not supply.
    debt_p = np.where(stable, 1.0, 0.04)
    dkeys = np.log(debt_p)[None, :] + rng.gumbel(size=(n_accounts, n_assets))
    dkeys[held] = -np.inf
    drank = np.argsort(np.argsort(-dkeys, axis=1), axis=1)
    owed = (drank < n_debt[:, None]) & ~held
    dsplit = rng.gamma(1.0, size=(n_accounts, n_assets)) * owed
    dsplit /= dsplit.sum(axis=1, keepdims=True)
    debt = (weighted / hf)[:, None] * dsplit / price[None, :]
    account_class = np.zeros(n_accounts, dtype=np.int64)
    if emode_debt_share > 0.0:
        account_class = _add_loopers(rng, collateral, debt, coll_usd, emode_debt_share)
    # Pools as deep as a share of the book's own collateral in the asset (liquidators reach
    # aggregated on- and off-chain depth), never shallower than the asset's reference pool.
    book_usd = (collateral * price).sum(axis=0)
    share = np.array([a.pool_share for a in assets])
    pool_usd = np.maximum(np.array([a.pool_usd for a in assets]), share * book_usd)
    book = Book(
        accounts=np.array([_address(0xAC, a) for a in range(n_accounts)]),
        assets=tuple(_address(0xA5, i) for i in range(n_assets)),
        symbols=tuple(a.symbol for a in assets),
        collateral=collateral,
        debt=debt,
        collateral_enabled=collateral > 0,
        price_usd=price,
        ltv=np.array([a.ltv for a in assets]),
        liquidation_threshold=lt,
        liquidation_bonus=np.array([a.liquidation_bonus for a in assets]),
        protocol_fee=np.array([a.protocol_fee for a in assets]),
        decimals=np.array([a.decimals for a in assets], dtype=np.int64),
        dex_reserve_asset=pool_usd / price,
        dex_reserve_quote=pool_usd,
        dex_fee=np.full(n_assets, 0.003),
    )
    if emode_debt_share > 0.0:
        book = _with_emode(book, account_class)
    if emode_debt_share > 0.0 if rates is None else rates:
        book = dataclasses.replace(
            book,
            supply_rate=np.array([a.supply_rate for a in assets]),
            borrow_rate=np.array([a.borrow_rate for a in assets]),
        )
    meta = {
        "protocol": "synthetic",
        "chain_id": 0,
        "block_number": 0,
        "block_hash": "0x" + "00" * 32,
        "timestamp": 0,
        "addresses": {},
        "software_version": __version__,
        "synthetic": {
            "n_accounts": n_accounts,
            "seed": seed,
            "emode_debt_share": emode_debt_share,
        },
    }
    return MarketSnapshot.from_book(meta, book)


#: Liquidation factors of the synthetic Comet market's collateral (cUSDCv3 on Ethereum
#: credits WETH, WBTC and wstETH at 0.95-0.975 and smaller assets at 0.90-0.93).
COMET_LIQUIDATION_FACTORS: dict[str, float] = {
    "WETH": 0.95,
    "WBTC": 0.95,
    "wstETH": 0.95,
    "LINK": 0.93,
    "AAVE": 0.90,
}


def comet_book(
    book: Book,
    base: str = "USDC",
    *,
    store_front_price_factor: float = 0.6,
    reserves_share: float = 0.02,
    target_share: float = 0.05,
) -> Book:
    """``book`` as a Compound V3 market whose base asset is ``base``.

    Each account keeps its collateral other than the base (stablecoins other than the base
    stay collateral) and borrows only the base, as much as keeps its health factor at the
    book's (the sum of collateral x LT over the debt, the LT read as liquidateCollateralFactor);
    an account left without collateral is dropped. The reserves start at ``reserves_share``
    of the borrowed base and the target at ``target_share`` of it; liquidation factors are
    ``COMET_LIQUIDATION_FACTORS`` (0.93 for an asset not listed). What the synthetic
    workloads run Comet's rules on; not a model of any one market.
    """
    symbols = list(book.symbols)
    if base not in symbols:
        raise InputError(f"comet_book: base {base!r} is not one of the book's assets {symbols}")
    b = symbols.index(base)
    lt = np.asarray(book.liquidation_threshold, dtype=np.float64).copy()
    lt[b] = 0.0
    price = np.asarray(book.price_usd, dtype=np.float64)
    collateral = np.asarray(book.effective_collateral(), dtype=np.float64).copy()
    collateral[:, b] = 0.0
    old_weighted = (book.effective_collateral() * price * book.account_lt()).sum(axis=1)
    debt_usd = (np.asarray(book.debt) * price).sum(axis=1)
    weighted = (collateral * price * lt).sum(axis=1)
    keep = (weighted > 0.0) & (debt_usd > 0.0) & (old_weighted > 0.0)
    hf = np.where(keep, old_weighted / np.where(debt_usd > 0.0, debt_usd, 1.0), 1.0)
    debt = np.zeros_like(collateral)
    debt[:, b] = np.where(keep, weighted / hf, 0.0) / price[b]
    # accounts that only supply keep their collateral (they cannot be liquidated)
    keep |= (weighted > 0.0) & (debt_usd == 0.0)
    lf = np.array(
        [0.0 if j == b else COMET_LIQUIDATION_FACTORS.get(s, 0.93) for j, s in enumerate(symbols)]
    )
    borrowed = float(debt[keep, b].sum())
    return dataclasses.replace(
        book,
        accounts=book.accounts[keep],
        collateral=collateral[keep],
        debt=debt[keep],
        collateral_enabled=collateral[keep] > 0.0,
        liquidation_threshold=lt,
        ltv=np.minimum(np.asarray(book.ltv, dtype=np.float64), lt),
        liquidation_bonus=np.zeros_like(lt),
        protocol_fee=np.zeros_like(lt),
        account_class=np.zeros(int(keep.sum()), dtype=np.int64),
        class_category=np.zeros(1, dtype=np.int64),
        class_ltv=np.zeros((0, 0)),
        class_lt=np.zeros((0, 0)),
        class_bonus=np.zeros((0, 0)),
        class_price_usd=np.zeros((0, 0)),
        comet=CometTerms(
            base=b,
            liquidation_factor=lf,
            store_front_price_factor=store_front_price_factor,
            target_reserves=target_share * borrowed,
            reserves=reserves_share * borrowed,
            collateral_reserves=np.zeros(len(symbols)),
        ),
    )


def _add_loopers(
    rng: np.random.Generator,
    collateral: npt.NDArray[np.float64],
    debt: npt.NDArray[np.float64],
    coll_usd: npt.NDArray[np.float64],
    share: float,
) -> npt.NDArray[np.int64]:
    """Turn a tenth of the accounts into e-mode loopers in place (``synthetic_snapshot``);
    returns each account's class (1: the e-mode category)."""
    symbols = [a.symbol for a in SYNTHETIC_ASSETS]
    price = np.array([a.price_usd for a in SYNTHETIC_ASSETS])
    weth, lst = symbols.index("WETH"), symbols.index("wstETH")
    n = collateral.shape[0]
    loop = np.asarray(rng.random(n) < 0.1, dtype=np.bool_)
    if not loop.any():
        loop[int(rng.integers(0, n))] = True
    hf = rng.uniform(1.01, 1.10, int(loop.sum()))
    others_debt = float((debt[~loop] * price).sum())
    size = coll_usd[loop]
    looper_debt_usd = size * SYNTHETIC_EMODE_LT / hf
    # sizes scaled together: their debt is `share` of the book's (HF unchanged)
    if others_debt > 0.0:
        k = share / (1.0 - share) * others_debt / float(looper_debt_usd.sum())
        size, looper_debt_usd = size * k, looper_debt_usd * k
    collateral[loop] = 0.0
    debt[loop] = 0.0
    collateral[loop, lst] = size / price[lst]
    debt[loop, weth] = looper_debt_usd / price[weth]
    return np.asarray(loop, dtype=np.int64)


def _with_emode(book: Book, account_class: npt.NDArray[np.int64]) -> Book:
    """``book`` with the synthetic e-mode category as class 1 (category 1)."""
    member = np.array([s in SYNTHETIC_EMODE_ASSETS for s in book.symbols])

    def row(own: npt.NDArray[np.float64], value: float) -> npt.NDArray[np.float64]:
        return np.stack([own, np.where(member, value, own)])

    return dataclasses.replace(
        book,
        account_class=account_class,
        class_category=np.array([0, 1], dtype=np.int64),
        class_ltv=row(book.ltv, SYNTHETIC_EMODE_LTV),
        class_lt=row(book.liquidation_threshold, SYNTHETIC_EMODE_LT),
        class_bonus=row(book.liquidation_bonus, SYNTHETIC_EMODE_BONUS),
        class_price_usd=np.stack([book.price_usd, book.price_usd]),
    )


def synthetic_paths(
    symbols: tuple[str, ...],
    n_paths: int,
    n_steps: int,
    *,
    step_seconds: float = 3600.0,
    daily_vol: float = 0.05,
    df: float = 4.0,
    correlation: float = 0.7,
    stable: tuple[str, ...] = ("USDC", "USDT", "DAI"),
    seed: int = 0,
    start: int = 0,
    stop: int | None = None,
    gas_base_gwei: float = 30.0,
    oracle: OracleSpec | None = None,
    tracks: dict[str, tuple[str, float]] | None = None,
) -> PricePaths:
    """Correlated Student-t price paths; rows ``[start, stop)`` of an ``n_paths`` run.

    Volatile assets get log-returns ``daily_vol * sqrt(step_seconds / 1 day)`` times a
    unit-variance Student-t(``df``) with equicorrelation ``correlation`` (a common Gaussian
    copula factor); stablecoins stay at 1. Gas is ``gas_base_gwei`` times
    ``1 + 20 x`` the fall of the first volatile asset below its start. Each path has its own
    random stream (``SeedSequence(seed).spawn``), so any row range equals the same rows of the
    full run.

    ``tracks`` maps an asset to ``(base, daily_vol)``: it follows ``base`` times its own
    Gaussian log-ratio walk of that daily vol (an LST against ETH: about 0.3% a day), drawn
    after the other returns so the other assets' paths are unchanged.
    """
    tracks = tracks or {}
    for asset, (base, _) in tracks.items():
        if asset not in symbols or base not in symbols:
            raise InputError(f"tracks: {asset!r} -> {base!r}: both must be in {list(symbols)}")
    stop = n_paths if stop is None else stop
    if not 0 <= start <= stop <= n_paths:
        raise InputError(f"rows [{start}, {stop}) are outside [0, {n_paths})")
    n_assets = len(symbols)
    vol_idx = [i for i, s in enumerate(symbols) if s not in stable]
    sigma = daily_vol * np.sqrt(step_seconds / 86400.0)
    t_scale = np.sqrt((df - 2.0) / df) if df > 2 else 1.0
    streams = np.random.SeedSequence(seed).spawn(n_paths)[start:stop]
    out = np.ones((stop - start, n_steps + 1, n_assets))
    gas = np.full((stop - start, n_steps + 1), gas_base_gwei)
    k = len(vol_idx)
    for row, ss in enumerate(streams):
        if k == 0:
            break
        rng = np.random.default_rng(ss)
        common = rng.standard_normal((n_steps, 1))
        own = rng.standard_normal((n_steps, k))
        z = np.sqrt(correlation) * common + np.sqrt(1.0 - correlation) * own
        chi = rng.chisquare(df, (n_steps, 1))
        shocks = z / np.sqrt(chi / df) * t_scale * sigma
        logs = np.cumsum(shocks - 0.5 * sigma * sigma, axis=0)
        out[row, 1:, vol_idx] = np.exp(logs).T
        for asset, (base, vol) in tracks.items():
            a, b = symbols.index(asset), symbols.index(base)
            s_t = vol * np.sqrt(step_seconds / 86400.0)
            walk = np.cumsum(rng.standard_normal(n_steps) * s_t - 0.5 * s_t * s_t)
            out[row, 1:, a] = out[row, 1:, b] * np.exp(walk)
        fall = np.maximum(0.0, 1.0 - out[row, :, vol_idx[0]])
        gas[row] = gas_base_gwei * (1.0 + 20.0 * fall)
    return PricePaths(
        scenario="synthetic-student-t",
        symbols=tuple(symbols),
        step_seconds=step_seconds,
        multipliers=out,
        gas_gwei=gas,
        oracle=oracle or OracleSpec(),
        seed=seed,
    )


def uniform_shock_paths(
    symbols: tuple[str, ...],
    shocks: npt.ArrayLike,
    *,
    n_steps: int = 1,
    gas_gwei: float = 0.0,
    oracle: OracleSpec | None = None,
) -> PricePaths:
    """Deterministic paths: path ``p`` moves every asset to ``shocks[p]`` (a multiplier, or one
    per asset) at step 1 and stays there for ``n_steps`` steps."""
    s = np.asarray(shocks, dtype=np.float64)
    if s.ndim == 1:
        s = np.repeat(s[:, None], len(symbols), axis=1)
    mult = np.ones((s.shape[0], n_steps + 1, len(symbols)))
    mult[:, 1:, :] = s[:, None, :]
    return PricePaths(
        scenario="uniform-shock",
        symbols=tuple(symbols),
        step_seconds=3600.0,
        multipliers=mult,
        gas_gwei=np.full((s.shape[0], n_steps + 1), gas_gwei),
        oracle=oracle or OracleSpec(deviation=0.0, heartbeat_s=3600.0),
    )
