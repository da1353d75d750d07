"""Forwarder cursors: `<data dir>/forwarders.db`, one row per forwarder name.

A cursor is the next log index to send; it only moves forward, and only
after the sink acknowledged everything before it (so a restart resends at
most one batch, never skips one). Records a receiver refused for good are
kept as dead letters beside the cursor, written in the same transaction.
A lock file per name keeps two processes from running the same forwarder.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from ..sqlitedb import immediate

__all__ = ["CursorStore", "DeadLetterRow", "ForwarderLock", "ForwarderLockedError"]

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, next_index INTEGER NOT NULL, updated TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS dead_letters (name TEXT NOT NULL, idx INTEGER NOT NULL, leaf_hash TEXT NOT NULL, "
    "reason TEXT NOT NULL, at TEXT NOT NULL, PRIMARY KEY (name, idx))",
)


@dataclass(frozen=True)
class DeadLetterRow:
    name: str
    index: int
    leaf_hash: str
    reason: str
    at: str


class CursorStore:
    """forwarders.db: cursors and dead letters (a connection per call, so any thread may use it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        conn = self._connect()
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
        finally:
            conn.close()
        os.chmod(path, 0o600)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def get(self, name: str) -> int | None:
        """The next index forwarder `name` will send, or None if it never ran."""
        conn = self._connect()
        try:
            row = conn.execute("SELECT next_index FROM cursors WHERE name = ?", (name,)).fetchone()
        finally:
            conn.close()
        return None if row is None else int(row[0])

    def all(self) -> dict[str, int]:
        conn = self._connect()
        try:
            return {str(name): int(index) for name, index in conn.execute("SELECT name, next_index FROM cursors")}
        finally:
            conn.close()

    def advance(self, name: str, next_index: int, dead: Sequence[tuple[int, str, str]] = ()) -> None:
        """Durably move the cursor to `next_index` (never back) and keep the (index, leaf hex, reason) dead letters."""
        now = datetime.now(UTC).isoformat()
        conn = self._connect()
        try:
            with immediate(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO dead_letters(name, idx, leaf_hash, reason, at) VALUES (?, ?, ?, ?, ?)",
                    [(name, index, leaf, reason, now) for index, leaf, reason in dead],
                )
                conn.execute(
                    "INSERT INTO cursors(name, next_index, updated) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                    "SET next_index = max(next_index, excluded.next_index), updated = excluded.updated",
                    (name, next_index, now),
                )
        finally:
            conn.close()

    def dead_letters(self, name: str | None = None) -> list[DeadLetterRow]:
        conn = self._connect()
        try:
            query = "SELECT name, idx, leaf_hash, reason, at FROM dead_letters"
            rows = conn.execute(query + (" WHERE name = ? ORDER BY idx" if name else " ORDER BY name, idx"),
                                (name,) if name else ())  # fmt: skip
            return [DeadLetterRow(str(n), int(i), str(h), str(r), str(a)) for n, i, h, r, a in rows]
        finally:
            conn.close()

    def dead_letter_count(self, name: str) -> int:
        conn = self._connect()
        try:
            return int(conn.execute("SELECT COUNT(*) FROM dead_letters WHERE name = ?", (name,)).fetchone()[0])
        finally:
            conn.close()


class ForwarderLockedError(RuntimeError):
    """Another process is running the forwarder of this name."""


class ForwarderLock:
    """An exclusive flock on `<dir>/forwarders.<name>.lock`; the kernel releases it when the process dies."""

    def __init__(self, directory: Path, name: str) -> None:
        self.path = directory / f"forwarders.{name}.lock"
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        handle = open(self.path, "a+")  # noqa: SIM115 - held until release()
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise ForwarderLockedError(
                f"forwarder {self.path.name.removeprefix('forwarders.').removesuffix('.lock')!r} is already running "
                "(in `sealtrail serve` or another `sealtrail forward`)"
            ) from None
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
