"""alerts.db: the alert engine's cursor and state, and the sinks' durable outbox (SQLite).

<data dir>/alerts.db (mode 0600: it holds alert bodies) has
  meta      cursor (the next log index the engine evaluates) and the log's origin
  state     the engine's keys and JSON values (engine.Engine.state)
  outbox    alerts not yet delivered, one row per (sink, alert), in order of `seq`
  counters  per sink: delivered, failed attempts, rejected, expired; per rule: fired

`commit` writes engine changes, the cursor, new outbox rows and counters in one
transaction: after a crash, state and cursor agree, and every alert either is queued for
its sinks or will be produced again by re-evaluating from the saved cursor.
Connections are per thread (the follower and each sink's sender have their own).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..sqlitedb import ThreadConnections, immediate

__all__ = ["AlertStore", "Queued"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt REAL NOT NULL,
    last_error TEXT,
    UNIQUE (sink, alert_id)
);
CREATE INDEX IF NOT EXISTS outbox_by_sink ON outbox (sink, seq);
CREATE TABLE IF NOT EXISTS counters (
    scope TEXT NOT NULL, name TEXT NOT NULL, value INTEGER NOT NULL, PRIMARY KEY (scope, name)
);
"""


@dataclass(frozen=True)
class Queued:
    """An alert waiting in a sink's outbox."""

    seq: int
    sink: str
    alert_id: str
    body: dict[str, Any]
    created: float
    attempts: int
    next_attempt: float
    last_error: str | None


class AlertStore:
    """The alerts database of one data directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = ThreadConnections(path)
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
        self._db.get().executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- cursor and engine state --------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        row = self._db.get().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def cursor(self) -> int | None:
        value = self.meta("cursor")
        return None if value is None else int(value)

    def load_state(self) -> dict[str, Any]:
        rows = self._db.get().execute("SELECT key, value FROM state").fetchall()
        return {str(key): orjson.loads(value) for key, value in rows}

    def start(self, origin: str, cursor: int) -> None:
        """Begin following the log `origin` at `cursor`, forgetting the state of any other log."""
        with immediate(self._db.get()) as conn:
            if self._meta_in(conn, "origin") not in (None, origin):
                conn.execute("DELETE FROM state")
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('origin', ?)", (origin,))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (str(cursor),))

    @staticmethod
    def _meta_in(conn: sqlite3.Connection, key: str) -> str | None:
        row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def commit(
        self,
        *,
        changes: Mapping[str, Any],
        cursor: int | None,
        queued: Sequence[tuple[str, str, dict[str, Any]]],
        fired: Sequence[str],
        now: float,
    ) -> int:
        """One transaction: engine changes, the cursor, new (sink, alert id, body) rows, fired counts.

        Returns how many outbox rows were added (a row already queued is not queued twice).
        """
        added = 0
        with immediate(self._db.get()) as conn:
            for key, value in changes.items():
                if value is None:
                    conn.execute("DELETE FROM state WHERE key = ?", (key,))
                else:
                    conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, orjson.dumps(value)))
            if cursor is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('cursor', ?)", (str(cursor),))
            for sink, alert_id, body in queued:
                added += conn.execute(
                    "INSERT OR IGNORE INTO outbox (sink, alert_id, body, created, next_attempt) VALUES (?, ?, ?, ?, ?)",
                    (sink, alert_id, orjson.dumps(body), now, now),
                ).rowcount
            for rule in fired:
                self._bump(conn, "rule", rule, 1)
        return added

    @staticmethod
    def _bump(conn: sqlite3.Connection, scope: str, name: str, by: int) -> None:
        conn.execute(
            "INSERT INTO counters VALUES (?, ?, ?) ON CONFLICT (scope, name) DO UPDATE SET value = value + ?",
            (scope, name, by, by),
        )

    # -- outbox -------------------------------------------------------------------------------

    def head(self, sink: str) -> Queued | None:
        """The oldest alert queued for `sink` (delivered strictly in order)."""
        row = (
            self._db.get()
            .execute(
                "SELECT seq, sink, alert_id, body, created, attempts, next_attempt, last_error FROM outbox "
                "WHERE sink = ? ORDER BY seq LIMIT 1",
                (sink,),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Queued(row[0], row[1], row[2], orjson.loads(row[3]), row[4], row[5], row[6], row[7])

    def delivered(self, item: Queued) -> None:
        with immediate(self._db.get()) as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
            self._bump(conn, f"sink:{item.sink}", "delivered", 1)

    def retry(self, item: Queued, next_attempt: float, error: str) -> None:
        with immediate(self._db.get()) as conn:
            conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt = ?, last_error = ? WHERE seq = ?",
                (next_attempt, error[:500], item.seq),
            )
            self._bump(conn, f"sink:{item.sink}", "failed_attempts", 1)

    def give_up(self, item: Queued, reason: str) -> None:
        """Drop an alert the sink refused for good ("rejected") or that waited too long ("expired")."""
        with immediate(self._db.get()) as conn:
            conn.execute("DELETE FROM outbox WHERE seq = ?", (item.seq,))
            self._bump(conn, f"sink:{item.sink}", reason, 1)

    def queued_sinks(self) -> list[str]:
        """The sinks with alerts waiting, by name."""
        return [str(row[0]) for row in self._db.get().execute("SELECT DISTINCT sink FROM outbox ORDER BY sink")]

    def depth(self, sink: str) -> int:
        row = self._db.get().execute("SELECT COUNT(*) FROM outbox WHERE sink = ?", (sink,)).fetchone()
        return int(row[0])

    def counters(self) -> dict[tuple[str, str], int]:
        rows = self._db.get().execute("SELECT scope, name, value FROM counters").fetchall()
        return {(str(scope), str(name)): int(value) for scope, name, value in rows}
