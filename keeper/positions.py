"""The accounts x assets book the keeper keeps in memory (the daemon's position cache).

Rows grow as accounts are discovered; balances are token units; each row also holds the
account's e-mode category (``getUserEMode``, read with its positions). Which accounts are due
for the rolling re-read at a block is decided here, by address, so it does not depend on the
order accounts were found in.

``EModeClasses`` turns the e-mode categories the adapter reads (``read_emode``, both the
v3.0-3.1 per-reserve and the v3.2+ liquid families) into what the stress kernels need per
account, the way ``simulator.snapshot.Book`` does for ``simulate``: class 0 is "no e-mode",
class ``k`` the category ``categories[k]``; each class has its LT and liquidation bonus per
asset (the category's for its collateral, the reserve's own elsewhere) and, for a v3.0
category with a price source, the source prices its assets for its accounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keeper.adapters.base import EModeCategory, Reserve

__all__ = ["EModeClasses", "Positions"]


@dataclass(frozen=True, slots=True)
class EModeClasses:
    """The e-mode classes of a market, over its reserves (see the module docstring).

    Attributes:
        categories: the category id of each class, ``(n_classes,)``; class 0 is category 0.
        lt: LT of each asset's collateral for an account of each class, ``(n_classes,
            n_assets)``; row 0 the reserves' own.
        bonus: liquidation bonus (0.05 for 5%), same shape.
        sources: per class, the price source of each asset ('' for the oracle's own price).
    """

    categories: tuple[int, ...]
    lt: np.ndarray
    bonus: np.ndarray
    sources: tuple[tuple[str, ...], ...]

    @classmethod
    def from_categories(
        cls, categories: Sequence[EModeCategory], reserves: Sequence[Reserve]
    ) -> EModeClasses:
        """Classes from ``read_emode``'s categories (ascending ids), over ``reserves``."""
        lt0 = np.array([r.liquidation_threshold for r in reserves], dtype=np.float64)
        bonus0 = np.array([r.liquidation_bonus for r in reserves], dtype=np.float64)
        chosen = sorted(categories, key=lambda c: c.category)
        lt = np.repeat(lt0[None, :], len(chosen) + 1, axis=0)
        bonus = np.repeat(bonus0[None, :], len(chosen) + 1, axis=0)
        sources: list[tuple[str, ...]] = [("",) * len(reserves)]
        for k, c in enumerate(chosen, start=1):
            row: list[str] = []
            for j, r in enumerate(reserves):
                if r.asset in c.collateral:
                    lt[k, j] = c.liquidation_threshold_bps / 1e4
                    bonus[k, j] = max(0.0, (c.liquidation_bonus_bps - 10_000) / 1e4)
                member = r.asset in c.collateral or r.asset in c.borrowable
                row.append(c.price_source if member and c.price_source else "")
            sources.append(tuple(row))
        return cls((0, *(c.category for c in chosen)), lt, bonus, tuple(sources))

    @classmethod
    def none(cls, reserves: Sequence[Reserve]) -> EModeClasses:
        """No e-mode: one class, the reserves' own parameters."""
        return cls.from_categories((), reserves)

    @property
    def price_sources(self) -> list[str]:
        """Every price source some class uses (to read with the oracle prices)."""
        return sorted({s for row in self.sources for s in row if s})

    def knows(self, categories: Sequence[int] | set[int]) -> bool:
        return set(categories) <= set(self.categories)

    def classes(self, category: np.ndarray) -> np.ndarray:
        """The class of each account from its category id (``KeyError`` if unknown)."""
        index = {c: k for k, c in enumerate(self.categories)}
        if category.size == 0:
            return np.zeros(0, dtype=np.int64)
        ids, inverse = np.unique(category, return_inverse=True)
        missing = [int(i) for i in ids if int(i) not in index]
        if missing:
            raise KeyError(f"e-mode categories {missing} were not read")
        return np.array([index[int(i)] for i in ids], dtype=np.int64)[inverse]

    def price_ratio(self, prices: np.ndarray, source_usd: Mapping[str, float]) -> np.ndarray:
        """Each class's price over the oracle's, per asset, ``(n_classes, n_assets)``: 1 but
        where a category's price source prices the asset (its USD price in ``source_usd``)."""
        ratio = np.ones(self.lt.shape, dtype=np.float64)
        for k, row in enumerate(self.sources):
            for j, src in enumerate(row):
                if src:
                    ratio[k, j] = source_usd[src] / prices[j]
        return ratio


class Positions:
    """The accounts x assets book the keeper keeps in memory, rows growing as accounts
    are discovered. Balances are token units (float64, divided by ``10**decimals``).

    ``refresh_blocks`` (K) gives every account its turn in the rolling re-read: the blocks
    ``b`` with ``b mod K == int(account) mod K`` (an address is uniform, so each block gets
    about 1/K of the book, and the turn does not depend on discovery order).
    """

    def __init__(self, reserves: Sequence[Reserve], refresh_blocks: int) -> None:
        self.refresh_blocks = refresh_blocks
        self.reserves = list(reserves)
        self.assets = [r.asset for r in reserves]
        self.col = {a: j for j, a in enumerate(self.assets)}
        self.scale = np.array([10.0**-r.decimals for r in reserves])
        self.accounts: list[str] = []
        self.row: dict[str, int] = {}
        m = len(reserves)
        self._coll = np.zeros((0, m))
        self._debt = np.zeros((0, m))
        self._enabled = np.zeros((0, m), dtype=bool)
        self._slot = np.zeros(0, dtype=np.int64)
        self._category = np.zeros(0, dtype=np.int64)

    @property
    def n(self) -> int:
        return len(self.accounts)

    def add(self, accounts: Sequence[str]) -> list[str]:
        """Add unknown accounts; returns those that were new."""
        new = [a for a in dict.fromkeys(accounts) if a not in self.row]
        if not new:
            return []
        need = self.n + len(new)
        if need > self._coll.shape[0]:
            cap = max(need, 2 * self._coll.shape[0], 1024)
            m = len(self.assets)
            for name, dtype in (("_coll", float), ("_debt", float), ("_enabled", bool)):
                old = getattr(self, name)
                grown = np.zeros((cap, m), dtype=dtype)
                grown[: old.shape[0]] = old
                setattr(self, name, grown)
            for name in ("_slot", "_category"):
                old1 = getattr(self, name)
                grown1 = np.zeros(cap, dtype=np.int64)
                grown1[: old1.shape[0]] = old1
                setattr(self, name, grown1)
        k = self.refresh_blocks
        for a in new:
            self._slot[len(self.accounts)] = int(a, 16) % k
            self.row[a] = len(self.accounts)
            self.accounts.append(a)
        return new

    def due(self, first_block: int, last_block: int) -> list[str]:
        """Accounts whose turn in the rolling re-read falls in ``[first_block, last_block]``."""
        k = self.refresh_blocks
        if last_block - first_block + 1 >= k:
            return list(self.accounts)
        turns = np.arange(first_block, last_block + 1, dtype=np.int64) % k
        rows = np.flatnonzero(np.isin(self._slot[: self.n], turns))
        return [self.accounts[i] for i in rows]

    def to_read(
        self,
        since: int | None,
        block: int,
        *,
        full: bool,
        added: Sequence[str] = (),
        touched: Sequence[str] | set[str] = (),
    ) -> list[str]:
        """Accounts whose positions to read at ``block``, the last processed being ``since``.

        Every account on a full refresh (or with nothing processed yet); else the new and
        touched accounts and the rolling re-read's share of every block in
        ``(since, block]`` (skipped blocks' shares included), sorted.
        """
        if full or since is None:
            return list(self.accounts)
        due = self.due(since + 1, block)
        return sorted(set(added) | set(touched) | set(due))

    def update(
        self,
        accounts_read: Sequence[str],
        positions: Sequence[Any],
        emode: Mapping[str, int] | None = None,
    ) -> None:
        """Replace the balances of ``accounts_read`` with ``positions`` (the non-zero ones)
        and their e-mode categories with ``emode`` (account -> category; absent: none)."""
        rows = np.fromiter((self.row[a] for a in accounts_read), dtype=np.int64)
        self._coll[rows] = 0.0
        self._debt[rows] = 0.0
        self._enabled[rows] = False
        self._category[rows] = 0
        for account, category in (emode or {}).items():
            i = self.row.get(account)
            if i is not None:
                self._category[i] = int(category)
        for p in positions:
            i, j = self.row[p.account], self.col.get(p.asset)
            if j is None:
                continue  # a reserve listed after our last reserves read; next full refresh
            self._coll[i, j] = p.collateral * self.scale[j]
            self._debt[i, j] = p.debt * self.scale[j]
            self._enabled[i, j] = bool(p.collateral_enabled)

    def categories(self, rows: np.ndarray | None = None) -> np.ndarray:
        """Each account's e-mode category (0: none), in book order or for ``rows``."""
        return self._category[: self.n] if rows is None else self._category[rows]

    def categories_used(self) -> set[int]:
        """The non-zero e-mode categories some account is in."""
        return {int(c) for c in np.unique(self._category[: self.n]) if c}

    def arrays(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n
        if rows is None:
            return self._coll[:n], self._debt[:n], self._enabled[:n]
        return self._coll[rows], self._debt[rows], self._enabled[rows]
