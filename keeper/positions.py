"""The accounts x assets book the keeper keeps in memory (the daemon's position cache).

Rows grow as accounts are discovered; balances are token units. Which accounts are due for
the rolling re-read at a block is decided here, by address, so it does not depend on the
order accounts were found in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from keeper.adapters.base import Reserve

__all__ = ["Positions"]


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
            slot = np.zeros(cap, dtype=np.int64)
            slot[: self._slot.shape[0]] = self._slot
            self._slot = slot
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

    def update(self, accounts_read: Sequence[str], positions: Sequence[Any]) -> None:
        """Replace the balances of ``accounts_read`` with ``positions`` (the non-zero ones)."""
        rows = np.fromiter((self.row[a] for a in accounts_read), dtype=np.int64)
        self._coll[rows] = 0.0
        self._debt[rows] = 0.0
        self._enabled[rows] = False
        for p in positions:
            i, j = self.row[p.account], self.col.get(p.asset)
            if j is None:
                continue  # a reserve listed after our last reserves read; next full refresh
            self._coll[i, j] = p.collateral * self.scale[j]
            self._debt[i, j] = p.debt * self.scale[j]
            self._enabled[i, j] = bool(p.collateral_enabled)

    def arrays(self, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.n
        if rows is None:
            return self._coll[:n], self._debt[:n], self._enabled[:n]
        return self._coll[rows], self._debt[rows], self._enabled[rows]
