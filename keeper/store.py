"""The keeper's SQLite database: flags, their history, progress and the sinks' outbox.

Durability rule: everything one block changes (new accounts, changed flags, events, outbox
rows and the progress row) is written in **one transaction**. A crash (SIGKILL, power loss)
before the commit leaves the previous block's state, which the restart re-processes; after
the commit, the block is done. Either way no flag is lost and none is written twice.

Sinks deliver *after* the commit, from the ``outbox`` table, and mark each row delivered;
a restart delivers what is still pending. A crash between a delivery and its mark re-sends
that one message with the same ``event_id`` (receivers de-duplicate on it).

Journal mode WAL, ``synchronous=FULL``: in WAL mode NORMAL survives a process crash but can
lose the last commits on power loss, and a lost "delivered" mark means a duplicate webhook.
FULL costs one fsync per block (one commit every ~12 s on mainnet), which is nothing.

``Store`` is synchronous and not thread-safe; ``AsyncStore`` gives the daemon an awaitable
front to it that runs every call in one dedicated thread, and ``lock_database`` makes sure one
keeper at a time owns a database.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from keeper.errors import ConfigError
from keeper.flags import Flag, FlagEvent
from simulator.errors import ShortfallError

__all__ = [
    "SCHEMA_VERSION",
    "AsyncStore",
    "OutboxItem",
    "Progress",
    "Store",
    "StoreError",
    "lock_database",
]

T = TypeVar("T")

SCHEMA_VERSION = 2
#: How many recent block hashes are kept for reorg detection.
HASH_WINDOW = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- One row: the last block whose results are fully committed.
CREATE TABLE IF NOT EXISTS progress (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    block_number INTEGER NOT NULL,
    block_hash   TEXT NOT NULL,
    updated_at   REAL NOT NULL
);
-- Hashes of recently processed blocks, to find the fork point after a reorg.
CREATE TABLE IF NOT EXISTS block_hashes (
    block_number INTEGER PRIMARY KEY,
    block_hash   TEXT NOT NULL
);
-- Every account the keeper has discovered, and the last block its position was read at.
CREATE TABLE IF NOT EXISTS accounts (
    account          TEXT PRIMARY KEY,
    first_seen_block INTEGER NOT NULL,
    last_read_block  INTEGER
);
-- Current (or last) flag episode per account.
CREATE TABLE IF NOT EXISTS flags (
    account          TEXT PRIMARY KEY,
    status           TEXT NOT NULL CHECK (status IN ('open', 'cleared')),
    first_block      INTEGER NOT NULL,
    last_block       INTEGER NOT NULL,
    es_usd           REAL NOT NULL,
    margin_usd       REAL NOT NULL,
    severity         TEXT NOT NULL,
    safe_since_block INTEGER,
    rule             TEXT NOT NULL DEFAULT 'es',
    at_risk_usd      REAL NOT NULL DEFAULT 0,
    below_since_block INTEGER,
    below_peak       INTEGER NOT NULL DEFAULT 0,
    es_contribution_usd REAL
);
-- Every open / escalate / clear, in order.
CREATE TABLE IF NOT EXISTS flag_events (
    seq               INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id          TEXT NOT NULL UNIQUE,
    kind              TEXT NOT NULL
                      CHECK (kind IN ('open', 'escalate', 'deescalate', 'clear')),
    account           TEXT NOT NULL,
    block_number      INTEGER NOT NULL,
    block_hash        TEXT NOT NULL,
    severity          TEXT NOT NULL,
    previous_severity TEXT NOT NULL,
    es_usd            REAL NOT NULL,
    margin_usd        REAL NOT NULL,
    created_at        REAL NOT NULL,
    rule              TEXT NOT NULL DEFAULT 'es',
    at_risk_usd       REAL NOT NULL DEFAULT 0,
    debt_usd          REAL NOT NULL DEFAULT 0,
    stress_name       TEXT NOT NULL DEFAULT '',
    stress_loss_usd   REAL NOT NULL DEFAULT 0,
    es_contribution_usd REAL
);
CREATE INDEX IF NOT EXISTS flag_events_account ON flag_events (account, seq);
-- Messages owed to each sink; written with the event, marked after delivery.
CREATE TABLE IF NOT EXISTS outbox (
    event_id        TEXT NOT NULL REFERENCES flag_events (event_id),
    sink            TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    delivered_at    REAL,
    failed_at       REAL,
    last_error      TEXT,
    PRIMARY KEY (event_id, sink)
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sink, delivered_at, failed_at);
"""


class StoreError(ShortfallError, RuntimeError):
    """The database belongs to another chain or market, or has an unknown schema (the CLI
    shows the message as one line, exit code 1)."""


@dataclass(frozen=True, slots=True)
class Progress:
    """The last fully processed block."""

    block_number: int
    block_hash: str


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A message owed to a sink: the event and how often delivery was tried."""

    event_id: str
    sink: str
    attempts: int
    event: dict[str, Any]


class Store:
    """The keeper database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per block.
        self._db = sqlite3.connect(
            self.path, isolation_level=None, timeout=30.0, check_same_thread=False
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(_SCHEMA)
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) == 1:
            self._migrate_1_to_2()
        elif int(version) != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: schema version {version}; this keeper writes {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()

    def _migrate_1_to_2(self) -> None:
        """Version 1 -> 2 in one transaction: flags gain the opening rule, USD at risk, the
        de-escalation run and the ES contribution; flag_events gain the rule, USD at risk,
        debt, the worst named stress and the contribution, and accept ``deescalate``
        (SQLite cannot alter a CHECK: the table is copied into its new form). Old rows get
        rule ``es`` (the only rule version 1 had) and zeros."""
        db = self._db
        db.execute("PRAGMA foreign_keys=OFF")
        # The outbox's REFERENCES flag_events must keep naming the new table, not follow
        # the old one's rename.
        db.execute("PRAGMA legacy_alter_table=ON")
        db.execute("BEGIN IMMEDIATE")
        try:
            for col, decl in (
                ("rule", "TEXT NOT NULL DEFAULT 'es'"),
                ("at_risk_usd", "REAL NOT NULL DEFAULT 0"),
                ("below_since_block", "INTEGER"),
                ("below_peak", "INTEGER NOT NULL DEFAULT 0"),
                ("es_contribution_usd", "REAL"),
            ):
                db.execute(f"ALTER TABLE flags ADD COLUMN {col} {decl}")
            db.execute("ALTER TABLE flag_events RENAME TO flag_events_v1")
            db.execute("DROP INDEX IF EXISTS flag_events_account")
            start = _SCHEMA.index("CREATE TABLE IF NOT EXISTS flag_events")
            end = _SCHEMA.index("-- Messages owed")
            for stmt in _SCHEMA[start:end].split(";"):
                if stmt.strip():
                    db.execute(stmt)
            db.execute(
                "INSERT INTO flag_events (seq, event_id, kind, account, block_number, "
                "block_hash, severity, previous_severity, es_usd, margin_usd, created_at) "
                "SELECT seq, event_id, kind, account, block_number, block_hash, severity, "
                "previous_severity, es_usd, margin_usd, created_at FROM flag_events_v1"
            )
            db.execute("DROP TABLE flag_events_v1")
            self.set_meta("schema_version", str(SCHEMA_VERSION))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.execute("PRAGMA legacy_alter_table=OFF")
            db.execute("PRAGMA foreign_keys=ON")

    # -- meta -------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def bind(self, chain_id: int, market: str) -> None:
        """Record which chain and market this database tracks; refuse another one."""
        for key, value in (("chain_id", str(chain_id)), ("market", market.lower())):
            stored = self.get_meta(key)
            if stored is None:
                self.set_meta(key, value)
            elif stored != value:
                raise StoreError(
                    f"{self.path} tracks {key} {stored}, not {value}; use another --db"
                )

    # -- reads ------------------------------------------------------------------------------

    def progress(self) -> Progress | None:
        row = self._db.execute("SELECT block_number, block_hash FROM progress").fetchone()
        return None if row is None else Progress(int(row[0]), str(row[1]))

    def block_hash(self, number: int) -> str | None:
        row = self._db.execute(
            "SELECT block_hash FROM block_hashes WHERE block_number = ?", (number,)
        ).fetchone()
        return None if row is None else str(row[0])

    def recent_hashes(self) -> list[tuple[int, str]]:
        """Stored (number, hash) pairs, newest first."""
        rows = self._db.execute(
            "SELECT block_number, block_hash FROM block_hashes ORDER BY block_number DESC"
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def accounts(self) -> list[str]:
        rows = self._db.execute("SELECT account FROM accounts ORDER BY account").fetchall()
        return [str(r[0]) for r in rows]

    def flags(self) -> dict[str, Flag]:
        rows = self._db.execute(
            "SELECT account, status, severity, first_block, last_block, es_usd, margin_usd, "
            "safe_since_block, rule, at_risk_usd, below_since_block, below_peak, "
            "es_contribution_usd FROM flags"
        ).fetchall()
        return {
            str(r[0]): Flag(
                account=str(r[0]),
                status=r[1],
                severity=str(r[2]),
                first_block=int(r[3]),
                last_block=int(r[4]),
                es_usd=float(r[5]),
                margin_usd=float(r[6]),
                safe_since=None if r[7] is None else int(r[7]),
                rule=str(r[8]),
                at_risk_usd=float(r[9]),
                below_since=None if r[10] is None else int(r[10]),
                below_peak=int(r[11]),
                es_contribution_usd=None if r[12] is None else float(r[12]),
            )
            for r in rows
        }

    def events(self, account: str | None = None) -> list[dict[str, Any]]:
        """Flag events in the order they were recorded."""
        sql = "SELECT * FROM flag_events"
        args: tuple[Any, ...] = ()
        if account is not None:
            sql += " WHERE account = ?"
            args = (account,)
        rows = self._db.execute(sql + " ORDER BY seq", args).fetchall()
        return [dict(r) for r in rows]

    def pending(self, sink: str, now: float, limit: int = 100) -> list[OutboxItem]:
        """Undelivered messages for ``sink`` whose next attempt is due, oldest first."""
        rows = self._db.execute(
            "SELECT o.event_id, o.sink, o.attempts, e.* FROM outbox o "
            "JOIN flag_events e ON e.event_id = o.event_id "
            "WHERE o.sink = ? AND o.delivered_at IS NULL AND o.failed_at IS NULL "
            "AND o.next_attempt_at <= ? ORDER BY e.seq LIMIT ?",
            (sink, now, limit),
        ).fetchall()
        out = []
        for r in rows:
            event = {k: r[k] for k in r.keys() if k not in ("sink", "attempts", "seq")}  # noqa: SIM118
            out.append(OutboxItem(str(r["event_id"]), sink, int(r["attempts"]), event))
        return out

    def outbox_counts(self) -> dict[str, dict[str, int]]:
        """Per sink: delivered, pending and failed message counts."""
        rows = self._db.execute(
            "SELECT sink, SUM(delivered_at IS NOT NULL), "
            "SUM(delivered_at IS NULL AND failed_at IS NULL), SUM(failed_at IS NOT NULL) "
            "FROM outbox GROUP BY sink"
        ).fetchall()
        return {
            str(r[0]): {"delivered": int(r[1]), "pending": int(r[2]), "failed": int(r[3])}
            for r in rows
        }

    # -- writes -----------------------------------------------------------------------------

    def commit_block(
        self,
        block_number: int,
        block_hash: str,
        *,
        new_accounts: Iterable[str] = (),
        read_accounts: Sequence[str] = (),
        flags: Iterable[Flag] = (),
        events: Iterable[FlagEvent] = (),
        sinks: Sequence[str] = (),
    ) -> None:
        """Write everything block ``block_number`` changed, and the progress, atomically."""
        now = time.time()
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR IGNORE INTO accounts (account, first_seen_block) VALUES (?, ?)",
                ((a, block_number) for a in new_accounts),
            )
            if read_accounts:
                db.executemany(
                    "UPDATE accounts SET last_read_block = ? WHERE account = ?",
                    ((block_number, a) for a in read_accounts),
                )
            db.executemany(
                "INSERT INTO flags (account, status, first_block, last_block, es_usd, "
                "margin_usd, severity, safe_since_block, rule, at_risk_usd, below_since_block, "
                "below_peak, es_contribution_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (account) DO UPDATE SET status = excluded.status, "
                "first_block = excluded.first_block, last_block = excluded.last_block, "
                "es_usd = excluded.es_usd, margin_usd = excluded.margin_usd, "
                "severity = excluded.severity, safe_since_block = excluded.safe_since_block, "
                "rule = excluded.rule, at_risk_usd = excluded.at_risk_usd, "
                "below_since_block = excluded.below_since_block, "
                "below_peak = excluded.below_peak, "
                "es_contribution_usd = excluded.es_contribution_usd",
                (
                    (
                        f.account,
                        f.status,
                        f.first_block,
                        f.last_block,
                        f.es_usd,
                        f.margin_usd,
                        f.severity,
                        f.safe_since,
                        f.rule,
                        f.at_risk_usd,
                        f.below_since,
                        f.below_peak,
                        f.es_contribution_usd,
                    )
                    for f in flags
                ),
            )
            for ev in events:
                cur = db.execute(
                    "INSERT OR IGNORE INTO flag_events (event_id, kind, account, block_number, "
                    "block_hash, severity, previous_severity, es_usd, margin_usd, created_at, "
                    "rule, at_risk_usd, debt_usd, stress_name, stress_loss_usd, "
                    "es_contribution_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        ev.event_id,
                        ev.kind,
                        ev.account,
                        ev.block,
                        block_hash,
                        ev.severity,
                        ev.previous_severity,
                        ev.es_usd,
                        ev.margin_usd,
                        now,
                        ev.rule,
                        ev.at_risk_usd,
                        ev.debt_usd,
                        ev.stress_name,
                        ev.stress_loss_usd,
                        ev.es_contribution_usd,
                    ),
                )
                if cur.rowcount:
                    db.executemany(
                        "INSERT OR IGNORE INTO outbox (event_id, sink) VALUES (?, ?)",
                        ((ev.event_id, s) for s in sinks),
                    )
            db.execute(
                "INSERT INTO progress (id, block_number, block_hash, updated_at) "
                "VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "block_number = excluded.block_number, block_hash = excluded.block_hash, "
                "updated_at = excluded.updated_at",
                (block_number, block_hash, now),
            )
            db.execute(
                "INSERT OR REPLACE INTO block_hashes (block_number, block_hash) VALUES (?, ?)",
                (block_number, block_hash),
            )
            db.execute(
                "DELETE FROM block_hashes WHERE block_number <= ? OR block_number > ?",
                (block_number - HASH_WINDOW, block_number),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def rewind(self, fork_block: int, fork_hash: str) -> None:
        """Roll progress back to ``fork_block`` (the last block both chains share)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM block_hashes WHERE block_number > ?", (fork_block,))
            db.execute(
                "UPDATE progress SET block_number = ?, block_hash = ?, updated_at = ?",
                (fork_block, fork_hash, time.time()),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def forget_progress(self) -> None:
        """Drop progress and hashes (the fork point is older than the hash window)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute("DELETE FROM block_hashes")
            db.execute("DELETE FROM progress")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def mark_delivered(self, event_id: str, sink: str) -> None:
        self._db.execute(
            "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1 "
            "WHERE event_id = ? AND sink = ?",
            (time.time(), event_id, sink),
        )

    def mark_attempt(
        self, event_id: str, sink: str, error: str, next_attempt_at: float, *, give_up: bool
    ) -> None:
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, "
            "failed_at = ? WHERE event_id = ? AND sink = ?",
            (error[:500], next_attempt_at, time.time() if give_up else None, event_id, sink),
        )

    def dump_flags(self) -> list[dict[str, Any]]:
        """The flags table as plain rows sorted by account (for tests and ``--json``)."""
        rows = self._db.execute(
            "SELECT account, status, first_block, last_block, es_usd, margin_usd, severity, "
            "rule, at_risk_usd FROM flags ORDER BY account"
        ).fetchall()
        return [dict(r) for r in rows]


def event_payload(event: dict[str, Any]) -> str:
    """One JSON line for an event row (keys sorted, no NaN)."""
    return json.dumps(event, sort_keys=True, allow_nan=False)


class AsyncStore:
    """A ``Store`` used from asyncio: every call runs in one dedicated thread, in order.

    ``await open()`` opens the database (in that thread), ``await call("method", *args)``
    runs ``Store.method`` there, ``await close()`` closes the database after its last write
    and stops the thread. ``store`` is the ``Store`` itself (``None`` until opened), for
    tests that read it directly.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.store: Store | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="keeper-db")

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    async def open(self) -> Store:
        path = self.path
        self.store = await self._run(lambda: Store(path))
        return self.store

    async def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``Store.<method>(*args, **kwargs)`` in the database thread."""
        store = self.store
        if store is None:
            raise StoreError(f"{self.path}: the database is not open")
        return await self._run(functools.partial(getattr(store, method), *args, **kwargs))

    async def close(self) -> None:
        """Close the database (after every queued call) and stop the thread; idempotent."""
        if self.store is not None:
            store, self.store = self.store, None
            await self._run(store.close)
        self._thread.shutdown(wait=True)


def lock_database(db_path: Path) -> IO[bytes]:
    """Hold an exclusive lock on ``<db>.lock`` for as long as the returned file is open.

    Two keepers on one database would both publish every change. The lock is an ``flock``:
    the kernel drops it when the process dies, SIGKILL included, so a restart never finds a
    stale lock.
    """
    import fcntl

    lock_path = db_path.with_name(db_path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fh = open(lock_path, "a+b")  # noqa: SIM115 - held open for the keeper's lifetime
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise ConfigError(
            f"--db {db_path}: another keeper is running on this database; stop it or pass "
            "another --db"
        ) from None
    return fh
