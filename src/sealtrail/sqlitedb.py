"""SQLite plumbing for sealtrail's side databases (alerts.db, the witness's state, forwarders.db): one
connection per thread, durable settings, and BEGIN IMMEDIATE transactions.

Every connection runs in autocommit mode (isolation_level=None), so transactions are explicit; WAL with
synchronous=FULL makes each COMMIT durable; a writer waits up to 10 s for another's lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["ThreadConnections", "immediate"]

_DURABLE = ("PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000")


class ThreadConnections:
    """The connections of all threads to the database at `path`; `close` closes every one of them."""

    def __init__(self, path: Path, pragmas: Sequence[str] = ()) -> None:
        self.path = path
        self._pragmas = (*_DURABLE, *pragmas)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []

    def get(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in self._pragmas:
                conn.execute(pragma)
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A BEGIN IMMEDIATE transaction (the write lock taken at once): committed if the block completes,
    rolled back if it or the COMMIT raises."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
