"""keeper.store: one transaction per block; a SIGKILL anywhere loses or duplicates nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from keeper.flags import Flag, FlagEvent
from keeper.store import Store, StoreError
from simulator.errors import ShortfallError

A = "0x00000000000000000000000000000000000000aA"


def _event(block: int, kind: str = "open") -> FlagEvent:
    return FlagEvent(f"{block}:{A}:{kind}", kind, A, block, "low", "none", 110.0, 100.0)  # type: ignore[arg-type]


def test_schema_and_pragmas(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite")
    db = sqlite3.connect(tmp_path / "k.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"flags", "flag_events", "progress", "block_hashes", "accounts", "outbox"} <= tables
    cols = [r[1] for r in db.execute("PRAGMA table_info(flags)")]
    assert cols[:7] == [
        "account",
        "status",
        "first_block",
        "last_block",
        "es_usd",
        "margin_usd",
        "severity",
    ]
    store.close()


def test_commit_block_is_idempotent_and_dedups_events(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite")
    flag = Flag(A, "open", "low", 5, 5, 110.0, 100.0)
    for _ in range(2):  # re-processing the same block after a crash
        store.commit_block(
            5, "0x05", new_accounts=[A], flags=[flag], events=[_event(5)], sinks=["webhook"]
        )
    assert len(store.events()) == 1
    assert store.progress() is not None and store.progress().block_number == 5  # type: ignore[union-attr]
    assert [i.event_id for i in store.pending("webhook", time.time())] == [f"5:{A}:open"]
    store.mark_delivered(f"5:{A}:open", "webhook")
    store.commit_block(5, "0x05", events=[_event(5)], sinks=["webhook"])
    assert store.pending("webhook", time.time()) == []
    assert store.outbox_counts() == {"webhook": {"delivered": 1, "pending": 0, "failed": 0}}
    assert store.flags()[A] == flag


def test_rewind_and_hash_window(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite")
    for b in range(1, 300):
        store.commit_block(b, f"0x{b:x}")
    hashes = store.recent_hashes()
    assert hashes[0] == (299, "0x12b") and len(hashes) == 128
    store.rewind(290, "0x122")
    assert store.progress().block_number == 290  # type: ignore[union-attr]
    assert store.recent_hashes()[0][0] == 290


def test_bind_refuses_other_chain(tmp_path: Path) -> None:
    store = Store(tmp_path / "k.sqlite")
    store.bind(31337, "0xPool")
    store.bind(31337, "0xpool")
    with pytest.raises(StoreError, match="chain_id 31337") as exc:
        store.bind(1, "0xpool")
    # A ShortfallError: the CLI shows one line and exits 1, not a traceback.
    assert isinstance(exc.value, ShortfallError)


_WRITER = textwrap.dedent(
    """
    import sys
    from keeper.flags import Flag, FlagEvent
    from keeper.store import Store
    store = Store(sys.argv[1])
    acct = [f"0x{i:040x}" for i in range(200)]
    p = store.progress()
    start = 1 if p is None else p.block_number + 1
    for b in range(start, 100000):
        flags = [Flag(a, "open", "low", b, b, 1.0 * b, 1.0) for a in acct]
        events = [FlagEvent(f"{b}:{a}:open", "open", a, b, "low", "none", 1.0, 1.0) for a in acct[:20]]
        store.commit_block(b, f"0x{b:x}", new_accounts=acct, flags=flags, events=events, sinks=["jsonl"])
        print(b, flush=True)
    """
)


def test_sigkill_mid_commit_leaves_a_whole_block(tmp_path: Path) -> None:
    db = tmp_path / "k.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(db)], stdout=subprocess.PIPE, text=True, env=env
        )
        assert proc.stdout is not None
        for _ in range(5 + 3 * round_):
            proc.stdout.readline()
        time.sleep(0.05 * round_)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        store = Store(db)
        p = store.progress()
        assert p is not None
        flags = store.flags()
        # every flag row belongs to the committed block, and every committed block's
        # events are there exactly once.
        assert {f.last_block for f in flags.values()} == {p.block_number}
        events = store.events()
        assert len(events) == 20 * p.block_number
        assert len({e["event_id"] for e in events}) == len(events)
        assert sum(store.outbox_counts()["jsonl"].values()) == len(events)
        store.close()


def test_version_1_database_is_migrated_in_place(tmp_path: Path) -> None:
    import sqlite3

    from keeper.flags import Flag, FlagEvent
    from keeper.store import SCHEMA_VERSION, Store

    db = tmp_path / "old.sqlite"
    con = sqlite3.connect(db)
    con.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE flags (account TEXT PRIMARY KEY, status TEXT NOT NULL CHECK (status IN
            ('open', 'cleared')), first_block INTEGER NOT NULL, last_block INTEGER NOT NULL,
            es_usd REAL NOT NULL, margin_usd REAL NOT NULL, severity TEXT NOT NULL,
            safe_since_block INTEGER);
        INSERT INTO flags VALUES ('0xA', 'open', 5, 6, 120.0, 100.0, 'low', NULL);
        CREATE TABLE flag_events (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL
            UNIQUE, kind TEXT NOT NULL CHECK (kind IN ('open', 'escalate', 'clear')),
            account TEXT NOT NULL, block_number INTEGER NOT NULL, block_hash TEXT NOT NULL,
            severity TEXT NOT NULL, previous_severity TEXT NOT NULL, es_usd REAL NOT NULL,
            margin_usd REAL NOT NULL, created_at REAL NOT NULL);
        INSERT INTO flag_events (event_id, kind, account, block_number, block_hash, severity,
            previous_severity, es_usd, margin_usd, created_at)
            VALUES ('5:0xA:open', 'open', '0xA', 5, '0x05', 'low', 'none', 120.0, 100.0, 1.0);
        """
    )
    con.commit()
    con.close()
    store = Store(db)
    try:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION)
        flag = store.flags()["0xA"]
        assert flag.rule == "es" and flag.severity == "low" and flag.first_block == 5
        assert [e["event_id"] for e in store.events()] == ["5:0xA:open"]
        # the new event kind and columns are accepted after the migration
        ev = FlagEvent(
            "7:0xA:deescalate",
            "deescalate",
            "0xA",
            7,
            "low",
            "medium",
            1.0,
            2.0,
            "stress:ftx-2022",
            3.0,
            400.0,
            "ftx-2022",
            5.0,
            6.0,
        )
        store.commit_block(
            7,
            "0x07",
            flags=[Flag("0xA", "open", "low", 5, 7, 1.0, 2.0)],
            events=[ev],
            sinks=["jsonl"],
        )
        row = store.events()[-1]
        assert row["kind"] == "deescalate" and row["rule"] == "stress:ftx-2022"
        assert row["at_risk_usd"] == 3.0 and row["es_contribution_usd"] == 6.0
        assert store.pending("jsonl", now=1e12)[0].event_id == "7:0xA:deescalate"
    finally:
        store.close()
