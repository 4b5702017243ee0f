"""The plain reference cascade engine: one path at a time, every account every round.

Written for reading, not speed (a few hundred accounts). The fast engine
(``simulator.cascade.fast``) must give the same numbers; the tests compare them.

Balances are scaled (``Market``): an account's tokens are its scaled balance times the
asset's liquidity-index growth (collateral) or variable-borrow-index growth (debt) since the
snapshot (``EngineConfig.accrual``; 1 without it), so the engine values a scaled unit at the
oracle price times that growth and converts what a liquidation repays and seizes back to
scaled amounts. Each account values its positions with its e-mode class's LT, liquidation
bonus and price ratio (``Book.class_lt`` / ``class_bonus`` / ``class_price_usd``).

Two prices per asset (``simulator.cascade.rules``, market model): the *reference* price of
the wider market (the scenario path times ``rules.reference_impact`` of the USD liquidators
have sold so far) and the *venue* price of the pool they sell into (the reference price
times ``rules.impact_factor`` of the excess inventory arbitrage has not taken out yet).
Time is in seconds on the engine's clock: a scenario step is split into ticks of at most
``EngineConfig.clock_seconds`` (``Market.ticks``), the path interpolated between the
scenario's points (``rules.path_between``), and every tick is a step below; round ``r`` of a
tick is ``r x block_seconds`` later (one round per block), and between any two moments the
venues' excess inventory decays by ``rules.arbitrage_decay`` of the time elapsed.

One path, tick ``k = 0 .. n_steps x ticks`` (tick 0 is the snapshot itself):

1. The reference prices follow the path; arbitrage works on the venues since the last
   round (``t > 0``).
2. The oracle (``t > 0``) reads the reference price ``oracle_lag`` steps ago (now when the
   lag is 0) and updates an asset when it moved more than the asset's deviation threshold
   from the last answer or the asset's heartbeat elapsed (``Market.deviation`` /
   ``heartbeat_s``). An exchange-rate asset (a liquid-staking token priced as Aave's CAPO
   adapters do) is its capped exchange rate times its base's oracle price, so a market
   discount of the token moves its reference and venue prices, not its oracle price.
3. Rounds: every account with HF < 1 at oracle prices (listed at the start of the round) is
   liquidated at most once, most profitable first: each listed account's best profit is
   computed at the round's start, the accounts are sorted by it (those nothing pays for count
   0; ties in account order), and each is then evaluated again at the current state when its
   turn comes. An account's best liquidation is over its (collateral, debt) pairs, each sized
   by ``rules.best_liquidation``: the ``debtToCover`` that maximises proceeds of selling the
   seized collateral (less the treasury fee) into the venue, minus the debt bought at its
   reference price, minus gas, within the close factor and the dust rule
   (``EngineConfig.liquidator_sizing``). Only a positive profit is acted on. Each sale moves
   the venue and, through the volume sold, the reference price. An account whose collateral
   is exhausted has its remaining debt burned as deficit (Aave V3.3). After a round that
   executed something and with no oracle lag, the oracle applies its deviation rule to the
   moved reference prices, arbitrage works for one block, and the next round starts. Rounds
   stop when no account is liquidatable, when a round executes nothing, when the step's
   blocks are over (``Market.blocks_per_step``: the cascade goes on at the next step) or at
   ``round_limit`` (counted as a hit when a listed account would still be liquidated
   profitably). The rules end a cascade by themselves (gas and the dust rule forbid endless
   small bites); the limit is a guard that legitimate cascades stay below
   (``EngineConfig.round_limit``).

At the horizon each account's shortfall is max(0, debt value - collateral value) at
reference prices (balances accrued to the horizon) plus the deficit burned from it.
"""

from __future__ import annotations

import numpy as np

from simulator.cascade.comet_rules import absorb, store_front_purchase
from simulator.cascade.config import EngineConfig
from simulator.cascade.model import CascadeOutput, LiquidationEvent, Market, prepare
from simulator.cascade.rules import (
    FLAG_ALL_COLLATERAL,
    FLAG_FULL_DEBT,
    FLAG_INVALID,
    arbitrage_decay,
    best_liquidation,
    liquidatable,
    oracle_deviates,
    path_between,
    reference_impact,
)
from simulator.scenarios.paths import PricePaths
from simulator.snapshot import Book

__all__ = ["run_reference"]


def run_reference(
    book: Book,
    paths: PricePaths,
    config: EngineConfig | None = None,
    *,
    trace: bool = False,
    record: bool = False,
) -> CascadeOutput:
    """Replay the cascade on every path with plain loops.

    Args:
        book: the market (dense accounts x assets).
        paths: scenario price paths for the book's assets.
        config: engine settings (defaults when ``None``).
        trace: also return per-step market prices, liquidated volume and shortfall.
        record: also return every executed liquidation as a ``LiquidationEvent``.
    """
    config = config or EngineConfig()
    paths, market = prepare(book, paths, config)
    n_paths, n_steps1, n_assets = paths.multipliers.shape
    out_scalars = np.zeros((n_paths, 4))
    n_liq = np.zeros(n_paths, dtype=np.int64)
    hits = np.zeros(n_paths, dtype=np.int64)
    by_asset = np.zeros((n_paths, n_assets))
    worst = np.zeros((n_paths, n_assets))
    acc_path: list[int] = []
    acc_index: list[int] = []
    acc_value: list[float] = []
    events: list[LiquidationEvent] = []
    tr_m = np.zeros((n_paths, n_steps1, n_assets)) if trace else None
    tr_l = np.zeros((n_paths, n_steps1)) if trace else None
    tr_s = np.zeros((n_paths, n_steps1)) if trace else None
    mult = np.asarray(paths.multipliers, dtype=np.float64)
    gas = np.asarray(paths.gas_gwei, dtype=np.float64)
    ticks = market.ticks
    comet = book.comet is not None
    drawdown = np.zeros(n_paths) if comet else None
    unsold = np.zeros(n_paths) if comet else None
    for p in range(n_paths):
        run = (_CometPathRun if comet else _PathRun)(market, config, paths, p, record)
        for k in range((n_steps1 - 1) * ticks + 1):
            # the engine's clock: between two scenario points the path is interpolated
            t, u = divmod(k, ticks)
            if u == 0:
                row = [float(x) for x in mult[p, t]]
                gwei = float(gas[p, t])
            else:
                f = u / ticks
                row = [
                    path_between(float(a), float(b), f)
                    for a, b in zip(mult[p, t], mult[p, t + 1], strict=True)
                ]
                gwei = (1.0 - f) * float(gas[p, t]) + f * float(gas[p, t + 1])
            run.step(k, row, gwei)
            for j in range(n_assets):
                now = run.ref[j] / run.p0[j]
                worst[p, j] = now if k == 0 else min(worst[p, j], now)
            if u == 0 and tr_m is not None and tr_l is not None and tr_s is not None:
                tr_m[p, t] = [run.ref[j] / run.p0[j] for j in range(n_assets)]
                tr_l[p, t] = run.liquidated_usd
                tr_s[p, t] = run.mark_shortfall()
        total, accounts, asset_part = run.horizon()
        if isinstance(run, _CometPathRun) and drawdown is not None and unsold is not None:
            drawdown[p] = run.drawdown_usd()
            unsold[p] = run.unsold_usd()
        out_scalars[p] = (total, run.liquidated_usd, run.fee_usd, run.deficit_usd)
        n_liq[p] = run.n_liquidations
        hits[p] = run.hits
        by_asset[p] = asset_part
        for a, value in accounts:
            acc_path.append(p)
            acc_index.append(a)
            acc_value.append(value)
        events.extend(run.events)
    return CascadeOutput(
        shortfall_usd=out_scalars[:, 0].copy(),
        liquidated_usd=out_scalars[:, 1].copy(),
        n_liquidations=n_liq,
        protocol_fee_usd=out_scalars[:, 2].copy(),
        deficit_usd=out_scalars[:, 3].copy(),
        rounds_limit_hits=hits,
        shortfall_by_asset=by_asset,
        account_path=np.asarray(acc_path, dtype=np.int64),
        account_index=np.asarray(acc_index, dtype=np.int64),
        account_shortfall_usd=np.asarray(acc_value, dtype=np.float64),
        worst_market=worst,
        events=tuple(events),
        trace_market=tr_m,
        trace_liquidated_usd=tr_l,
        trace_shortfall_usd=tr_s,
        reserve_drawdown_usd=drawdown,
        unsold_collateral_usd=unsold,
    )


class _PathRun:
    """Mutable state of one path: balances, venues, reference prices, oracle and the path's
    tallies."""

    def __init__(
        self, market: Market, config: EngineConfig, paths: PricePaths, path: int, record: bool
    ) -> None:
        self.cfg = config
        self.optimal = config.liquidator_sizing == "optimal"
        self.path = path
        self.record = record
        self.step_seconds = market.tick_seconds  # the engine's clock ticks
        self.ticks = market.ticks
        self.deviation = [float(x) for x in market.deviation]
        self.heartbeat = [float(x) for x in market.heartbeat_s]
        self.rate_base = [int(x) for x in market.rate_base]
        self.rate_ratio = market.rate_ratio
        self.ref_coef = [float(x) for x in market.ref_coef]
        self.half_life = float(config.arbitrage_half_life_s)
        self.block_seconds = float(config.block_seconds)
        self.lag = market.oracle_lag
        self.blocks_per_step = market.blocks_per_step
        self.eth = market.eth_index
        self.p0 = [float(x) for x in market.price0]
        self.pfee = [float(x) for x in market.protocol_fee]
        self.dex_fee = [float(x) for x in market.dex_fee]
        self.depth = [float(x) for x in market.depth]
        self.venue = [
            (
                int(market.venue_kind[j]),
                market.venue_xs[j],
                market.venue_ys[j],
                int(market.venue_count[j]),
            )
            for j in range(len(self.depth))
        ]
        # e-mode: each account's class, and each class's LT, bonus and price ratio per asset
        self.cls = [int(c) for c in market.account_class]
        self.clt = [[float(x) for x in row] for row in market.class_lt]
        self.cbonus = [[float(x) for x in row] for row in market.class_bonus]
        self.ratio = [[float(x) for x in row] for row in market.class_ratio]
        self.s_growth = market.supply_growth
        self.d_growth = market.debt_growth
        # balances are scaled: tokens = scaled x the index growth of the current step
        self.coll = [[float(x) for x in row] for row in market.collateral]
        self.debt = [[float(x) for x in row] for row in market.debt]
        self.n_accounts = len(self.coll)
        self.n_assets = len(self.p0)
        self.sg = [1.0] * self.n_assets
        self.bg = [1.0] * self.n_assets
        self.oracle = list(self.p0)
        # oracle value of one scaled unit of collateral / debt: oracle x index growth
        self.oc = list(self.p0)
        self.od = list(self.p0)
        self.updated_at = [0.0] * self.n_assets
        self.inventory = [0.0] * self.n_assets
        self.inventory_time = 0.0  # when arbitrage last worked on the venues, s
        self.sold_usd = [0.0] * self.n_assets  # volume sold by liquidators, USD
        self.ref_impact = [1.0] * self.n_assets  # reference / scenario price
        self.path_price = list(self.p0)
        self.ref = list(self.p0)  # reference prices
        self.history: list[list[float]] = []
        self.deficit_account = [0.0] * self.n_accounts
        self.deficit_asset = [0.0] * self.n_assets
        self.deficit_usd = 0.0
        self.liquidated_usd = 0.0
        self.fee_usd = 0.0
        self.n_liquidations = 0
        self.hits = 0
        self.events: list[LiquidationEvent] = []
        self.t = 0
        self.round = 0
        self.gas_usd = 0.0

    # -- prices -----------------------------------------------------------------------------

    def _arbitrage(self, until: float) -> None:
        """Arbitrage works on every venue from the last time it did until ``until``, s."""
        factor = arbitrage_decay(until - self.inventory_time, self.half_life)
        self.inventory_time = max(self.inventory_time, until)
        for j in range(self.n_assets):
            self.inventory[j] = self.inventory[j] * factor

    def _follow(self, j: int, observed: float, now: float, heartbeat: bool) -> bool:
        """The feed of market-priced asset ``j`` sees ``observed``: update on deviation (or
        heartbeat when ``heartbeat``); returns whether it updated."""
        if oracle_deviates(observed, self.oracle[j], self.deviation[j]) or (
            heartbeat and now - self.updated_at[j] >= self.heartbeat[j]
        ):
            self.oracle[j] = observed
            self.updated_at[j] = now
            return True
        return False

    def _rate_prices(self) -> None:
        """Exchange-rate assets: the capped rate times the base's oracle price."""
        for j in range(self.n_assets):
            b = self.rate_base[j]
            if b >= 0:
                self.oracle[j] = float(self.rate_ratio[self.t, j]) * self.oracle[b]

    def step(self, t: int, mult: list[float], gas_gwei: float) -> None:
        """Tick ``t``: the market moves to it (``_prices``), then the protocol's rounds."""
        self._prices(t, mult, gas_gwei)
        self._rounds(t * self.step_seconds)
        self.history.append(list(self.ref))

    def _prices(self, t: int, mult: list[float], gas_gwei: float) -> None:
        """Reference prices, arbitrage, the oracle and gas at tick ``t`` (steps 1-2)."""
        self.t = t
        cfg = self.cfg
        now = t * self.step_seconds
        for j in range(self.n_assets):
            self.sg[j] = float(self.s_growth[t, j])
            self.bg[j] = float(self.d_growth[t, j])
            self.path_price[j] = self.p0[j] * mult[j]
            self.ref[j] = self.path_price[j] * self.ref_impact[j]
        self._arbitrage(now)
        if t > 0:
            for j in range(self.n_assets):
                if self.rate_base[j] >= 0:
                    continue
                if self.lag == 0:
                    observed = self.ref[j]
                elif t - self.lag >= 0:
                    observed = self.history[t - self.lag][j]
                else:
                    observed = self.p0[j]
                self._follow(j, observed, now, heartbeat=True)
            self._rate_prices()
        for j in range(self.n_assets):
            self._scaled_prices(j)
        eth = self.ref[self.eth] if self.eth >= 0 else cfg.eth_price_usd
        self.gas_usd = cfg.gas_units * gas_gwei * 1e-9 * eth

    def _oracle_after_round(self, now: float) -> None:
        """With no oracle lag, the feeds see the reference prices a round's sales moved."""
        if self.lag == 0:
            for j in range(self.n_assets):
                if self.rate_base[j] < 0:
                    self._follow(j, self.ref[j], now, heartbeat=False)
            self._rate_prices()
            for j in range(self.n_assets):
                self._scaled_prices(j)

    def _sell(self, i: int, tokens: float) -> None:
        """``tokens`` of asset ``i`` sold into its venue: the venue's excess inventory grows
        and the volume moves the reference price (``rules.reference_impact``)."""
        self.inventory[i] += tokens
        self.sold_usd[i] += tokens * self.ref[i]
        self.ref_impact[i] = reference_impact(self.ref_coef[i], self.sold_usd[i])
        self.ref[i] = self.path_price[i] * self.ref_impact[i]

    def _rounds(self, now: float) -> None:
        """Aave V3.3's liquidation rounds of one tick (step 3)."""
        cfg = self.cfg
        rounds = 0
        while True:
            listed = [a for a in range(self.n_accounts) if self.liquidatable(a)]
            if not listed:
                break
            if rounds == min(cfg.round_limit, self.blocks_per_step):
                # the step's blocks are over (the cascade goes on at the next step), or the
                # guard stops it: a hit when a liquidation would still happen
                if cfg.round_limit <= self.blocks_per_step and any(
                    self.best_pair(a) is not None for a in listed
                ):
                    self.hits += 1
                break
            self.round = rounds
            executed = 0
            # most profitable first: profits at the round's start (0 when nothing pays),
            # ties in account order; each is evaluated again when its turn comes
            start = [self.best_pair(a) for a in listed]
            order = sorted(
                range(len(listed)),
                key=lambda q: (-(start[q][7] if start[q] is not None else 0.0), listed[q]),  # type: ignore[index]
            )
            for q in order:
                if self.liquidate(listed[q]):
                    executed += 1
            rounds += 1
            if executed == 0:
                break
            self._oracle_after_round(now)
            # the next round is one block later
            self._arbitrage(now + rounds * self.block_seconds)

    def _scaled_prices(self, j: int) -> None:
        """Oracle value of one scaled unit of asset ``j``'s collateral and debt."""
        self.oc[j] = self.oracle[j] * self.sg[j]
        self.od[j] = self.oracle[j] * self.bg[j]

    def price_coll(self, c: int, j: int) -> float:
        """What an account of class ``c`` values one scaled unit of collateral ``j`` at, USD."""
        return self.oc[j] * self.ratio[c][j]

    def price_debt(self, c: int, j: int) -> float:
        """What an account of class ``c`` values one scaled unit of debt ``j`` at, USD."""
        return self.od[j] * self.ratio[c][j]

    # -- accounts ---------------------------------------------------------------------------

    def _weighted_and_debt(self, a: int) -> tuple[float, float]:
        """(sum of collateral x LT, sum of debt) at the account's oracle prices, USD."""
        c = self.cls[a]
        w = 0.0
        v = 0.0
        for j in range(self.n_assets):
            if self.coll[a][j] > 0.0:
                w += self.coll[a][j] * self.clt[c][j] * self.price_coll(c, j)
            if self.debt[a][j] > 0.0:
                v += self.debt[a][j] * self.price_debt(c, j)
        return w, v

    def liquidatable(self, a: int) -> bool:
        return liquidatable(*self._weighted_and_debt(a))

    def best_pair(self, a: int) -> tuple[int, int, float, float, float, int, float, float] | None:
        """The liquidator's most profitable (collateral, debt) pair for account ``a``:
        ``(i, j, repay, seize, fee, flags, proceeds, profit)``, or ``None`` if none pays."""
        cfg = self.cfg
        c = self.cls[a]
        w, v = self._weighted_and_debt(a)
        hf = w / v
        best = 0.0
        choice: tuple[int, int, float, float, float, int, float, float] | None = None
        for i in range(self.n_assets):
            if self.coll[a][i] <= 0.0:
                continue
            for j in range(self.n_assets):
                if self.debt[a][j] <= 0.0:
                    continue
                repay, seize, fee, flags, proceeds, profit = best_liquidation(
                    self.coll[a][i],
                    self.debt[a][j],
                    v,
                    hf,
                    self.price_coll(c, i),
                    self.price_debt(c, j),
                    self.cbonus[c][i],
                    self.pfee[i],
                    cfg.close_factor_threshold_usd,
                    cfg.close_factor_hf,
                    cfg.default_close_factor,
                    cfg.min_leftover_usd,
                    self.depth[i],
                    self.inventory[i],
                    self.ref[i],
                    self.dex_fee[i],
                    *self.venue[i],
                    self.sg[i],
                    self.ref[j] * self.bg[j],
                    self.gas_usd,
                    self.optimal,
                )
                if flags == FLAG_INVALID:
                    continue
                if profit > best:
                    best = profit
                    choice = (i, j, repay, seize, fee, flags, proceeds, profit)
        return choice

    def liquidate(self, a: int) -> bool:
        """Let a liquidator act on account ``a`` if some pair is profitable."""
        choice = self.best_pair(a)
        if choice is None:
            return False
        i, j, repay, seize, fee, flags, proceeds, best = choice
        c = self.cls[a]
        row_c = self.coll[a]
        row_d = self.debt[a]
        row_c[i] = 0.0 if flags & FLAG_ALL_COLLATERAL else max(row_c[i] - seize, 0.0)
        row_d[j] = 0.0 if flags & FLAG_FULL_DEBT else max(row_d[j] - repay, 0.0)
        self._sell(i, (seize - fee) * self.sg[i])
        self.liquidated_usd += repay * self.price_debt(c, j)
        self.fee_usd += fee * self.price_coll(c, i)
        self.n_liquidations += 1
        if self.record:
            self.events.append(
                LiquidationEvent(
                    path=self.path,
                    step=-(-self.t // self.ticks),  # the scenario step the tick is in
                    round=self.round,
                    account=a,
                    collateral_asset=i,
                    debt_asset=j,
                    repaid=repay * self.bg[j],
                    seized=seize * self.sg[i],
                    protocol_fee=fee * self.sg[i],
                    price_collateral=self.oracle[i] * self.ratio[c][i],
                    price_debt=self.oracle[j] * self.ratio[c][j],
                    proceeds_usd=proceeds,
                    profit_usd=best,
                    collateral_after=row_c[i] * self.sg[i],
                    debt_after=row_d[j] * self.bg[j],
                    time_s=self.t * self.step_seconds,
                )
            )
        if all(x == 0.0 for x in row_c):
            for k in range(self.n_assets):
                if row_d[k] > 0.0:
                    burned = row_d[k] * self.price_debt(c, k)
                    self.deficit_account[a] += burned
                    self.deficit_asset[k] += burned
                    self.deficit_usd += burned
                    row_d[k] = 0.0
        return True

    def mark_shortfall(self) -> float:
        """Shortfall if the path ended now: accounts under water at reference prices plus
        the deficits burned so far, USD."""
        return sum(self.underwater(a) for a in range(self.n_accounts)) + self.deficit_usd

    def underwater(self, a: int) -> float:
        """max(0, debt value - collateral value) at reference prices, USD."""
        c = 0.0
        d = 0.0
        for j in range(self.n_assets):
            c += self.coll[a][j] * (self.ref[j] * self.sg[j])
            d += self.debt[a][j] * (self.ref[j] * self.bg[j])
        return d - c if d > c else 0.0

    def horizon(self) -> tuple[float, list[tuple[int, float]], list[float]]:
        """(path shortfall, non-zero (account, shortfall) pairs, shortfall by debt asset)."""
        by_asset = list(self.deficit_asset)
        accounts: list[tuple[int, float]] = []
        total = 0.0
        for a in range(self.n_accounts):
            s = self.underwater(a)
            if s > 0.0:
                d = 0.0
                for j in range(self.n_assets):
                    d += self.debt[a][j] * (self.ref[j] * self.bg[j])
                for j in range(self.n_assets):
                    if self.debt[a][j] > 0.0:
                        by_asset[j] += s * (self.debt[a][j] * (self.ref[j] * self.bg[j])) / d
            value = s + self.deficit_account[a]
            total += value
            if value > 0.0:
                accounts.append((a, value))
        return total, accounts, by_asset


class _CometPathRun(_PathRun):
    """One path of a Compound V3 (Comet) market: the same market (reference prices, venues,
    arbitrage, oracle and gas) under Comet's rules (``simulator.cascade.comet_rules``).

    The rounds of a tick, one per block: every account liquidatable at oracle prices (the
    sum of its collateral x liquidateCollateralFactor below its debt) is ``absorb``-ed, in
    account order (Comet records each absorber's gas for reimbursement, so an absorber
    needs no profit from the account): all its collateral goes to the protocol's stock for
    sale, the reserves pay out max(credit, debt) base tokens (credit = the collateral's value
    x liquidationFactor at oracle prices) and the account is settled. Then, asset by asset
    in reserves order, a buyer makes the most profitable ``buyCollateral`` of the stock
    while the reserves are below target (``comet_rules.store_front_purchase``: sold into the
    asset's venue, paying gas), which moves the venue and the reference price like a
    liquidator's sale. The rounds go on while a round absorbed or sold something, up to the
    tick's blocks or ``round_limit`` (a hit when something would still happen).

    Attribution: each asset's stock is sold first in, first out (what the protocol held at
    the snapshot first), so each absorbed account is credited with what its own collateral
    fetched. An account's loss is what the reserves paid for it minus that, in base tokens.

    Horizon: accounts still under water at reference prices and not absorbed will be, at a
    loss of at least their debt minus their collateral's value; that is taken from the
    reserves too. The shortfall is how far the reserves so reduced are below zero and the
    drawdown how far they fell from the snapshot's, both at the base's reference price;
    the shortfall is shared over the accounts in proportion to their positive losses.
    Collateral still held for sale at the horizon counts for nothing (Comet's
    ``getReserves`` does not count it); its value at reference prices is reported beside
    (``CascadeOutput.unsold_collateral_usd``).
    """

    def __init__(
        self, market: Market, config: EngineConfig, paths: PricePaths, path: int, record: bool
    ) -> None:
        super().__init__(market, config, paths, path, record)
        terms = market.comet
        assert terms is not None
        self.base = terms.base
        self.lf = [float(x) for x in terms.liquidation_factor]
        self.sfpf = float(terms.store_front_price_factor)
        self.target = float(terms.target_reserves)
        self.reserves0 = float(terms.reserves)
        self.reserves = float(terms.reserves)
        # each asset's stock for sale: [account, tokens] first in, first out (-1: the
        # protocol's own stock at the snapshot)
        self.stock: list[list[list[float]]] = [
            [[-1.0, float(x)]] if x > 0.0 else [] for x in terms.collateral_reserves
        ]
        self.available = [float(x) for x in terms.collateral_reserves]  # tokens for sale
        self.paid = [0.0] * self.n_accounts  # base tokens the reserves paid for an account
        self.recovered = [0.0] * self.n_accounts  # base tokens its collateral fetched

    def _rounds(self, now: float) -> None:
        cfg = self.cfg
        limit = min(cfg.round_limit, self.blocks_per_step)
        rounds = 0
        while True:
            listed = [a for a in range(self.n_accounts) if self.liquidatable(a)]
            if rounds == limit:
                if cfg.round_limit <= self.blocks_per_step and (listed or self._would_buy()):
                    self.hits += 1
                break
            self.round = rounds
            for a in listed:
                self.absorb(a)
            bought = self.store_front()
            if not listed and not bought:
                break
            rounds += 1
            self._oracle_after_round(now)
            self._arbitrage(now + rounds * self.block_seconds)

    def absorb(self, a: int) -> None:
        """``absorb(a)``: the reserves take the account's collateral and settle its debt."""
        b = self.base
        amounts = np.array([self.coll[a][j] * self.sg[j] for j in range(self.n_assets)])
        debt = self.debt[a][b] * self.bg[b]
        value, _, _, paid, uncovered = absorb(
            amounts, np.array(self.oracle), np.array(self.lf), debt, self.oracle[b]
        )
        self.reserves -= paid
        self.paid[a] += paid
        self.liquidated_usd += debt * self.oracle[b]
        self.deficit_usd += uncovered * self.oracle[b]
        self.n_liquidations += 1
        for j in range(self.n_assets):
            if amounts[j] > 0.0:
                self.stock[j].append([float(a), float(amounts[j])])
                self.available[j] += float(amounts[j])
                if self.record:
                    share = amounts[j] * self.oracle[j] / value if value > 0.0 else 0.0
                    self.events.append(
                        LiquidationEvent(
                            path=self.path,
                            step=-(-self.t // self.ticks),
                            round=self.round,
                            account=a,
                            collateral_asset=j,
                            debt_asset=b,
                            repaid=debt * share,
                            seized=float(amounts[j]),
                            protocol_fee=0.0,
                            price_collateral=self.oracle[j],
                            price_debt=self.oracle[b],
                            proceeds_usd=0.0,
                            profit_usd=0.0,
                            collateral_after=0.0,
                            debt_after=0.0,
                            time_s=self.t * self.step_seconds,
                        )
                    )
            self.coll[a][j] = 0.0
            self.debt[a][j] = 0.0

    def _purchase(self, j: int) -> tuple[float, float, float, float]:
        """The most profitable purchase of asset ``j``'s stock now (all 0 when none pays)."""
        b = self.base
        kind, xs, ys, count = self.venue[j]
        return store_front_purchase(
            self.available[j],
            self.reserves,
            self.target,
            self.oracle[j],
            self.oracle[b],
            self.ref[b],
            self.sfpf,
            self.lf[j],
            kind,
            self.depth[j],
            xs,
            ys,
            count,
            self.ref[j],
            self.inventory[j],
            self.dex_fee[j],
            self.gas_usd,
        )

    def _would_buy(self) -> bool:
        return any(self._purchase(j)[0] > 0.0 for j in range(self.n_assets) if j != self.base)

    def store_front(self) -> int:
        """One round's purchases, asset by asset; returns how many were made."""
        made = 0
        for j in range(self.n_assets):
            if j == self.base or not self.stock[j]:
                continue
            tokens, base_paid, _, _ = self._purchase(j)
            if tokens <= 0.0:
                continue
            made += 1
            self.reserves += base_paid
            self._sell(j, tokens)
            per_token = base_paid / tokens
            left = tokens
            queue = self.stock[j]
            while left > 0.0 and queue:
                who, held = queue[0]
                take = min(held, left)
                if who >= 0:
                    self.recovered[int(who)] += take * per_token
                left -= take
                self.available[j] -= take
                if take >= held:
                    queue.pop(0)
                else:
                    queue[0][1] = held - take
            if not queue:
                self.available[j] = 0.0
        return made

    def _pending(self) -> float:
        """Base tokens the accounts still under water at reference prices will cost."""
        return sum(self.underwater(a) for a in range(self.n_accounts)) / self.ref[self.base]

    def mark_shortfall(self) -> float:
        return max(self._pending() - self.reserves, 0.0) * self.ref[self.base]

    def drawdown_usd(self) -> float:
        """How far the reserves (less the pending losses) fell from the snapshot's, USD."""
        return max(self.reserves0 - self.reserves + self._pending(), 0.0) * self.ref[self.base]

    def unsold_usd(self) -> float:
        """Absorbed collateral still for sale, at reference prices, USD."""
        total = 0.0
        for j in range(self.n_assets):
            total += self.available[j] * self.ref[j]
        return total

    def horizon(self) -> tuple[float, list[tuple[int, float]], list[float]]:
        b = self.base
        price = self.ref[b]
        total = self.mark_shortfall()
        loss = [
            max(self.paid[a] - self.recovered[a], 0.0) * price + self.underwater(a)
            for a in range(self.n_accounts)
        ]
        weight = sum(loss)
        accounts = [
            (a, total * loss[a] / weight)
            for a in range(self.n_accounts)
            if total > 0.0 and loss[a] > 0.0
        ]
        by_asset = [0.0] * self.n_assets
        by_asset[b] = total
        return total, accounts, by_asset
