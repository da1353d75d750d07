"""The `timestamps` table of the SQLite store: one verified reply per signed checkpoint, append-only in the database."""

from __future__ import annotations

import sqlite3

import pytest

from _support import devsecops_events
from sealtrail.datadir import DataDir
from sealtrail.log import Log
from sealtrail.store.sqlite import SqliteStore


def test_one_reply_per_checkpoint(log: Log, data_dir: DataDir) -> None:
    log.append(devsecops_events(0, 2, "ts"))
    log.wait_for_checkpoint(2, timeout=10)
    store = data_dir.store()
    try:
        assert store.latest_timestamp() is None
        assert store.add_timestamp(0, b"reply-0", "2026-01-01T00:00:00+00:00")
        assert store.add_timestamp(2, b"reply-2", "2026-01-01T00:00:01+00:00")
        assert not store.add_timestamp(2, b"another", "2026-01-01T00:00:02+00:00")  # kept once
        assert store.timestamp(2) == b"reply-2"
        assert store.timestamp(1) is None
        assert store.latest_timestamp() == (2, "2026-01-01T00:00:01+00:00")
    finally:
        store.close()


def test_a_reply_needs_a_signed_checkpoint(data_dir: DataDir) -> None:
    store = data_dir.store()
    try:
        with pytest.raises(sqlite3.IntegrityError, match="each on a signed checkpoint"):
            store.add_timestamp(5, b"reply", "2026-01-01T00:00:00+00:00")
    finally:
        store.close()


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE timestamps SET reply = x'00'",
        "DELETE FROM timestamps",
        "INSERT OR REPLACE INTO timestamps(size, reply, gen_time, added) VALUES (0, x'00', 'then', 'now')",
    ],
)
def test_kept_replies_cannot_be_changed(data_dir: DataDir, statement: str) -> None:
    with data_dir.open_log():
        pass
    store = data_dir.store()
    try:
        store.add_timestamp(0, b"reply-0", "2026-01-01T00:00:00+00:00")
    finally:
        store.close()
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="timestamps are append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    reopened = SqliteStore.open(data_dir.db)
    try:
        assert reopened.timestamp(0) == b"reply-0"
    finally:
        reopened.close()


def test_an_older_log_gets_the_table_when_opened(data_dir: DataDir) -> None:
    with data_dir.open_log():
        pass
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    try:
        conn.execute("DROP TABLE timestamps")  # as a log made before the table existed
    finally:
        conn.close()
    store = SqliteStore.open(data_dir.db)
    try:
        assert store.add_timestamp(0, b"reply-0", "2026-01-01T00:00:00+00:00")
    finally:
        store.close()
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM timestamps")
    finally:
        conn.close()
