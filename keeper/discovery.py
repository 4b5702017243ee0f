"""Account discovery from event logs: adaptive ``eth_getLogs`` ranges and a SQLite cache.

A lending market has no "list all accounts" call; its accounts are the addresses named in
its events. ``scan_accounts`` walks ``[from_block, to_block]`` in block ranges that adapt
to the node: a range the node refuses ("too many results", "range too large", -32005) is
halved and retried, and ranges grow again after successes, towards (not back to) the
smallest range refused; one range at a time tries a size larger than any served yet
(``AdaptiveRange``). Several ranges are in flight at
once. ``DiscoveryCache`` remembers, per (chain id, pool), every account found with the
first block it appeared in and how far the scan got, so the next pull scans only new blocks.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from keeper.adapters.abi import topic_address
from keeper.chain import Chain, first_error
from keeper.errors import ConfigError, RequestTooLarge

__all__ = [
    "AdaptiveRange",
    "CacheState",
    "DiscoveryCache",
    "default_cache_path",
    "scan_accounts",
]

log = logging.getLogger(__name__)

_ZERO_ADDRESS = "0x" + "0" * 40


def default_cache_path() -> Path:
    """``$SHORTFALL_CACHE_DIR/discovery.sqlite``, else ``$XDG_CACHE_HOME/shortfall/...``,
    else ``~/.cache/shortfall/discovery.sqlite``."""
    explicit = os.environ.get("SHORTFALL_CACHE_DIR")
    if explicit:
        return Path(explicit) / "discovery.sqlite"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shortfall" / "discovery.sqlite"


class AdaptiveRange:
    """Block-range size for ``eth_getLogs`` that learns what the node accepts.

    A refused range halves the size (or falls back to the largest range served since, if that
    is bigger), and the refused span becomes the *ceiling*. Full-size successes then grow the
    size: doubling while there is no ceiling, closing half the gap to it while far below it,
    and holding once within 1/8 of it, so the size settles just under the node's limit
    instead of climbing back to the refused size and being refused again. Log density varies
    along a chain, so after ``probe_after`` full-size successes in a row at the hold, the
    ceiling is dropped and one range 1/4 larger is tried: if it passes, growth resumes.
    """

    def __init__(
        self,
        initial: int = 5_000,
        minimum: int = 1,
        maximum: int = 1_000_000,
        grow: float = 2.0,
        probe_after: int = 16,
    ) -> None:
        if not 1 <= minimum <= initial <= maximum:
            raise ValueError("need 1 <= minimum <= initial <= maximum")
        if grow <= 1.0 or probe_after < 1:
            raise ValueError("need grow > 1 and probe_after >= 1")
        self.size = initial
        """Blocks per request now."""
        self.minimum = minimum
        self.maximum = maximum
        self.grow_factor = grow
        self.probe_after = probe_after
        self.ceiling: int | None = None
        """Smallest span refused since the last probe (``None``: nothing refused, or probing)."""
        self.accepted = 0
        """Largest span served since a span at most that large was last refused (0: none)."""
        self.failures = 0
        """Refusals seen."""
        self._streak = 0

    @property
    def proven(self) -> int:
        """Blocks per request known to pass: ``accepted`` while ``size`` is larger than any
        span served (so still untried), else ``size`` (also when nothing was served yet)."""
        return self.accepted if 0 < self.accepted < self.size else self.size

    def refused(self, span: int) -> int:
        """The node refused ``span`` blocks: the new size, below ``span``. Raises at the minimum."""
        self.failures += 1
        self._streak = 0
        if span <= self.minimum:
            raise RequestTooLarge(
                f"the node refuses eth_getLogs even for {span} block(s); use another RPC"
            )
        self.ceiling = span if self.ceiling is None else min(self.ceiling, span)
        if self.accepted >= span:  # a denser stretch: what passed elsewhere fails here
            self.accepted = 0
        self.size = max(self.minimum, min(self.size, max(span // 2, self.accepted), span - 1))
        return self.size

    def succeeded(self, span: int) -> None:
        """``span`` blocks came back fine: grow if that was a full-size range."""
        self.accepted = max(self.accepted, span)
        if span < self.size:
            return  # a partial range says nothing about the limit
        if self.ceiling is None:
            target = max(self.size + 1, int(self.size * self.grow_factor))
        elif 8 * (self.ceiling - self.size) > self.size:
            target = (self.size + self.ceiling) // 2
        else:
            self._streak += 1
            if self._streak < self.probe_after:
                return  # within 1/8 of the refused span: close enough
            self._streak = 0
            self.ceiling = None
            target = self.size + max(1, self.size // 4)
        self.size = min(self.maximum, max(self.size, target))


async def scan_accounts(
    chain: Chain,
    address: str,
    account_topic: Mapping[str, int | tuple[int, ...]],
    from_block: int,
    to_block: int,
    *,
    ranges: AdaptiveRange | None = None,
    concurrency: int = 4,
    on_progress: Callable[[int], None] | None = None,
    checkpoint: Callable[[dict[str, int], int], Awaitable[None]] | None = None,
    checkpoint_seconds: float = 15.0,
) -> dict[str, int]:
    """Accounts named in ``address``'s logs in ``[from_block, to_block]``.

    ``account_topic`` maps each event's topic0 to the index of the topic holding the account
    (Aave's ``Supply``: 2, for ``onBehalfOf``), or to a tuple of indexes when the event names
    several accounts (Comet's ``Transfer``: 1 and 2); the zero address (a mint's or burn's
    other side) is never an account. Returns lower-case account -> first block it
    appears in. ``on_progress(n_blocks)`` reports scanned blocks. ``checkpoint(found, upto)``
    is awaited at most every ``checkpoint_seconds`` once every block in ``[from_block, upto]``
    has been scanned, so a long first scan that is interrupted need not start over.
    """
    found: dict[str, int] = {}
    if to_block < from_block:
        return found
    ranges = ranges or AdaptiveRange()
    topics = [sorted(account_topic)]
    window = asyncio.Semaphore(max(1, concurrency))

    async def fetch(lo: int, hi: int) -> None:
        try:
            logs = await chain.get_logs(address, topics, lo, hi)
        except RequestTooLarge:
            span = hi - lo + 1
            size = ranges.refused(span)
            log.debug("eth_getLogs refused %d blocks from %d; %d at a time", span, lo, size)
            cursor = lo
            while cursor <= hi:  # pieces of a size already served, else of the new size
                piece = min(hi, cursor + max(1, min(ranges.proven, span - 1)) - 1)
                await fetch(cursor, piece)
                cursor = piece + 1
            return
        ranges.succeeded(hi - lo + 1)
        for entry in logs:
            entry_topics = entry.get("topics") or []
            index = account_topic.get(entry_topics[0].lower()) if entry_topics else None
            if index is None:
                continue
            block = int(entry["blockNumber"], 16)
            for i in (index,) if isinstance(index, int) else index:
                if i >= len(entry_topics):
                    continue
                account = topic_address(entry_topics[i])
                if account == _ZERO_ADDRESS:
                    continue
                if block < found.get(account, block + 1):
                    found[account] = block
        if on_progress is not None:
            on_progress(hi - lo + 1)

    finished: dict[int, int] = {}  # first block -> last block of the ranges done
    watermark = from_block - 1  # every block up to here is scanned
    saved_at = time.monotonic()

    trial_running = False  # a range larger than any served yet is in flight

    async def run(lo: int, hi: int, trial: bool) -> None:
        nonlocal trial_running
        try:
            await fetch(lo, hi)
            finished[lo] = hi
        finally:
            if trial:
                trial_running = False
            window.release()

    try:
        async with asyncio.TaskGroup() as group:
            cursor = from_block
            while cursor <= to_block:
                await window.acquire()
                while watermark + 1 in finished:
                    watermark = finished.pop(watermark + 1)
                if (
                    checkpoint is not None
                    and watermark >= from_block
                    and time.monotonic() - saved_at >= checkpoint_seconds
                ):
                    await checkpoint(dict(found), watermark)
                    saved_at = time.monotonic()
                # One range at a time tries a size larger than any served yet; the others
                # keep to the proven size, so a refusal costs one request, not a window full.
                span, trial = ranges.size, False
                if ranges.proven < span:
                    if trial_running:
                        span = ranges.proven
                    else:
                        trial = trial_running = True
                hi = min(to_block, cursor + span - 1)
                group.create_task(run(cursor, hi, trial))
                cursor = hi + 1
    except BaseExceptionGroup as eg:
        raise first_error(eg) from None
    return found


@dataclass(frozen=True, slots=True)
class CacheState:
    """What the cache knows of one market."""

    start_block: int
    """First block scanned (the pool's deployment block, or the user's --from-block)."""
    start_hash: str
    """Hash of ``start_block`` when it was scanned: a reset chain (a restarted devnet) has
    another, and then the cache is dropped."""
    scanned_to: int
    """Every block in ``[start_block, scanned_to]`` has been scanned."""
    scanned_hash: str
    """Hash of ``scanned_to`` when it was scanned: if the chain now has another block there
    (a reorg, an ``evm_revert``), the scan starts over."""
    accounts: int
    """Accounts recorded."""


class DiscoveryCache:
    """SQLite (WAL) store of discovered accounts, keyed by chain id and pool address."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS markets (
        chain_id INTEGER NOT NULL,
        pool TEXT NOT NULL,
        start_block INTEGER NOT NULL,
        start_hash TEXT NOT NULL,
        scanned_to INTEGER NOT NULL,
        scanned_hash TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (chain_id, pool)
    );
    CREATE TABLE IF NOT EXISTS accounts (
        chain_id INTEGER NOT NULL,
        pool TEXT NOT NULL,
        account TEXT NOT NULL,
        first_block INTEGER NOT NULL,
        PRIMARY KEY (chain_id, pool, account)
    ) WITHOUT ROWID;
    """

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as db, db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(self.SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                f"discovery cache {self.path}: cannot open ({exc}); pass another --cache path"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30.0)
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def state(self, chain_id: int, pool: str) -> CacheState | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT start_block, start_hash, scanned_to, scanned_hash FROM markets "
                "WHERE chain_id=? AND pool=?",
                (chain_id, pool.lower()),
            ).fetchone()
            if row is None:
                return None
            (count,) = db.execute(
                "SELECT COUNT(*) FROM accounts WHERE chain_id=? AND pool=?",
                (chain_id, pool.lower()),
            ).fetchone()
        return CacheState(int(row[0]), str(row[1]), int(row[2]), str(row[3]), int(count))

    def accounts(self, chain_id: int, pool: str, up_to_block: int | None = None) -> list[str]:
        """Accounts (lower-case) first seen at or before ``up_to_block``, sorted."""
        query = "SELECT account FROM accounts WHERE chain_id=? AND pool=?"
        args: tuple[object, ...] = (chain_id, pool.lower())
        if up_to_block is not None:
            query += " AND first_block<=?"
            args += (up_to_block,)
        with closing(self._connect()) as db:
            return [r[0] for r in db.execute(query + " ORDER BY account", args)]

    def record(
        self,
        chain_id: int,
        pool: str,
        found: Mapping[str, int],
        *,
        start_block: int,
        start_hash: str,
        scanned_to: int,
        scanned_hash: str,
    ) -> None:
        """Add ``found`` (account -> first block) and move the scanned mark to ``scanned_to``.

        One transaction: a crash leaves the previous state, never half of this one.
        """
        key = pool.lower()
        rows: Iterable[tuple[object, ...]] = (
            (chain_id, key, a.lower(), b) for a, b in found.items()
        )
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT INTO accounts (chain_id, pool, account, first_block) VALUES (?,?,?,?) "
                "ON CONFLICT (chain_id, pool, account) DO UPDATE SET "
                "first_block = MIN(first_block, excluded.first_block)",
                rows,
            )
            db.execute(
                "INSERT INTO markets (chain_id, pool, start_block, start_hash, scanned_to, "
                "scanned_hash, updated_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (chain_id, pool) DO UPDATE SET "
                "start_block = excluded.start_block, start_hash = excluded.start_hash, "
                "scanned_to = excluded.scanned_to, scanned_hash = excluded.scanned_hash, "
                "updated_at = excluded.updated_at",
                (chain_id, key, start_block, start_hash, scanned_to, scanned_hash, time.time()),
            )

    def forget(self, chain_id: int, pool: str) -> None:
        """Drop everything known about one market (a devnet that was redeployed)."""
        with closing(self._connect()) as db, db:
            db.execute("DELETE FROM accounts WHERE chain_id=? AND pool=?", (chain_id, pool.lower()))
            db.execute("DELETE FROM markets WHERE chain_id=? AND pool=?", (chain_id, pool.lower()))
