"""sealtrail.sqlitedb: per-thread connections with durable settings, and BEGIN IMMEDIATE transactions that
leave the connection usable whether the block or the COMMIT fails."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from sealtrail.sqlitedb import ThreadConnections, immediate

_SCHEMA = """
CREATE TABLE parent (id INTEGER PRIMARY KEY);
CREATE TABLE child (id INTEGER PRIMARY KEY,
                    parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED);
"""


@pytest.fixture
def db(tmp_path: Path) -> ThreadConnections:
    connections = ThreadConnections(tmp_path / "side.db", ["PRAGMA foreign_keys=ON"])
    connections.get().executescript(_SCHEMA)
    return connections


def _children(db: ThreadConnections) -> int:
    return int(db.get().execute("SELECT COUNT(*) FROM child").fetchone()[0])


def test_connections_are_durable_and_one_per_thread(db: ThreadConnections) -> None:
    conn = db.get()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.get() is conn
    others: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: others.append(db.get()))
    thread.start()
    thread.join()
    assert others[0] is not conn
    db.close()
    for closed in (conn, others[0]):
        with pytest.raises(sqlite3.ProgrammingError, match="closed"):
            closed.execute("SELECT 1")
    assert db.get().execute("SELECT COUNT(*) FROM parent").fetchone()[0] == 0  # reopens on demand


def test_a_block_that_raises_is_rolled_back(db: ThreadConnections) -> None:
    with pytest.raises(RuntimeError), immediate(db.get()) as conn:
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 1)")
        raise RuntimeError("half way")
    assert _children(db) == 0
    with immediate(db.get()) as conn:
        conn.execute("INSERT INTO parent VALUES (1)")
        conn.execute("INSERT INTO child VALUES (1, 1)")
    assert _children(db) == 1


def test_a_failing_commit_is_rolled_back_and_the_connection_stays_usable(db: ThreadConnections) -> None:
    with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"), immediate(db.get()) as conn:
        conn.execute("INSERT INTO child VALUES (1, 42)")  # checked only at COMMIT (deferred)
    assert not db.get().in_transaction
    with immediate(db.get()) as conn:
        conn.execute("INSERT INTO parent VALUES (42)")
        conn.execute("INSERT INTO child VALUES (1, 42)")
    assert _children(db) == 1
