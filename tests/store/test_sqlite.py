"""The SQLite engine enforces append-only inside the database itself.

A plain sqlite3 session on log.db (triggers left in place, as shipped) must not
be able to change history: no UPDATE or DELETE of an event or a dedup key, no
shrinking or rewriting a tile, no replacing or deleting a checkpoint, no
skipping an index. After every refused attempt the log still audits clean and
the sequencer can keep appending.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from _support import ORIGIN, count_rows, devsecops_events, stored_entries
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.store.base import StoreError
from sealtrail.store.sqlite import SqliteStore
from sealtrail.verify import audit_store

SIZE = 300  # a full level-0 tile (0, 0), a partial one (0, 1) of 44, and tile (1, 0) of width 1


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = DataDir(tmp_path_factory.mktemp("sqlite") / "log")
    directory.init(ORIGIN)
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 150, "sqlite"))
        log.append(devsecops_events(150, SIZE - 150, "sqlite"))
        # one event whose raw payload is too big for an entry: stored as a blob
        log.append([prepare({"source": {"type": "api", "id": "scanner"}, "kind": "ci.job", "raw": "x" * 70_000})])
    return directory.path


@pytest.fixture
def log_dir(template: Path, tmp_path: Path) -> DataDir:
    shutil.copytree(template, tmp_path / "log")
    return DataDir(tmp_path / "log")


@pytest.fixture
def db(log_dir: DataDir) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 session, triggers untouched, autocommit."""
    conn = sqlite3.connect(log_dir.db, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def _snapshot(path: Path) -> dict[str, list[tuple[object, ...]]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("events", "event_keys", "tiles", "tile_inner", "checkpoints", "blobs")
        }
    finally:
        conn.close()


def _assert_intact(log_dir: DataDir, before: dict[str, list[tuple[object, ...]]]) -> None:
    assert _snapshot(log_dir.db) == before
    store = log_dir.store()
    try:
        report = audit_store(store, log_dir.verifier())
    finally:
        store.close()
    assert report.size == SIZE + 1
    assert report.unsigned == 0


REFUSED = {
    # events
    "update event entry": ("UPDATE events SET entry = x'7b7d' WHERE idx = 57", "append-only"),
    "update event index": ("UPDATE events SET idx = 1000 WHERE idx = 57", "append-only"),
    "delete one event": ("DELETE FROM events WHERE idx = 57", "append-only"),
    "delete the last event": (f"DELETE FROM events WHERE idx = {SIZE}", "append-only"),
    "delete all events": ("DELETE FROM events", "append-only"),
    # dedup keys
    "update event key": ("UPDATE event_keys SET idx = 3 WHERE idx = 5", "append-only"),
    "delete event key": ("DELETE FROM event_keys WHERE idx = 5", "append-only"),
    # tiles
    "shrink partial tile": ("UPDATE tiles SET hashes = substr(hashes, 1, 64) WHERE level = 0 AND idx = 1", "grow"),
    "rewrite partial tile": (
        "UPDATE tiles SET hashes = zeroblob(length(hashes)) WHERE level = 0 AND idx = 1",
        "grow",
    ),
    "rewrite full tile": ("UPDATE tiles SET hashes = zeroblob(8192) WHERE level = 0 AND idx = 0", "grow"),
    "rewrite level-1 tile": ("UPDATE tiles SET hashes = zeroblob(32) WHERE level = 1", "grow"),
    "grow tile with another prefix": (
        "UPDATE tiles SET hashes = zeroblob(length(hashes) + 32) WHERE level = 0 AND idx = 1",
        "grow",
    ),
    "move a tile": ("UPDATE tiles SET idx = 7 WHERE level = 0 AND idx = 1", "grow"),
    "delete a tile": ("DELETE FROM tiles WHERE level = 0 AND idx = 1", "grow"),
    "rewrite inner levels": ("UPDATE tile_inner SET hashes = zeroblob(8128)", "grow"),
    "delete inner levels": ("DELETE FROM tile_inner", "grow"),
    # checkpoints
    "update checkpoint note": (f"UPDATE checkpoints SET note = x'00' WHERE size = {SIZE}", "append-only"),
    "update checkpoint size": ("UPDATE checkpoints SET size = 99 WHERE size = 150", "append-only"),
    "delete one checkpoint": ("DELETE FROM checkpoints WHERE size = 150", "append-only"),
    "delete all checkpoints": ("DELETE FROM checkpoints", "append-only"),
    # blobs
    "update blob": ("UPDATE blobs SET data = x'00'", "immutable"),
}


@pytest.mark.parametrize("statement, message", REFUSED.values(), ids=REFUSED.keys())
def test_trigger_refuses(statement: str, message: str, db: sqlite3.Connection, log_dir: DataDir) -> None:
    before = _snapshot(log_dir.db)
    assert before["blobs"], "the template should hold one out-of-line blob"
    with pytest.raises(sqlite3.IntegrityError, match=f"sealtrail: .*{message}"):
        db.execute(statement)
    _assert_intact(log_dir, before)


def test_refused_inside_an_explicit_transaction_too(db: sqlite3.Connection, log_dir: DataDir) -> None:
    before = _snapshot(log_dir.db)
    db.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE events SET entry = x'00' WHERE idx = 0")
    db.execute("COMMIT")
    _assert_intact(log_dir, before)


# INSERT OR REPLACE / REPLACE INTO deletes the conflicting row without firing
# DELETE triggers (unless recursive_triggers is on): an UPDATE in disguise.
REPLACED = {
    "replace an event": "INSERT OR REPLACE INTO events(idx, entry) VALUES (57, x'7b7d')",
    "replace a checkpoint": "REPLACE INTO checkpoints(size, note, signed_at) VALUES (150, x'00', 'now')",
    "replace a tile": "INSERT OR REPLACE INTO tiles(level, idx, hashes) VALUES (1, 0, zeroblob(32))",
    "replace inner levels": "INSERT OR REPLACE INTO tile_inner(level, idx, hashes) VALUES (0, 0, zeroblob(8128))",
    "replace an event key": "INSERT OR REPLACE INTO event_keys(key, idx) SELECT key, 7 FROM event_keys WHERE idx = 5",
}


@pytest.mark.parametrize("statement", REPLACED.values(), ids=REPLACED.keys())
def test_insert_or_replace_cannot_rewrite_history(statement: str, db: sqlite3.Connection, log_dir: DataDir) -> None:
    before = _snapshot(log_dir.db)
    with pytest.raises(sqlite3.DatabaseError):
        db.execute(statement)
    _assert_intact(log_dir, before)


def test_upsert_cannot_rewrite_an_event(db: sqlite3.Connection, log_dir: DataDir) -> None:
    before = _snapshot(log_dir.db)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute(
            "INSERT INTO events(idx, entry) VALUES (57, x'7b7d') ON CONFLICT(idx) DO UPDATE SET entry = excluded.entry"
        )
    _assert_intact(log_dir, before)


def test_plain_insert_over_an_existing_row_is_refused(db: sqlite3.Connection, log_dir: DataDir) -> None:
    before = _snapshot(log_dir.db)
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO events(idx, entry) VALUES (57, x'7b7d')")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO checkpoints(size, note, signed_at) VALUES (150, x'00', 'now')")
    _assert_intact(log_dir, before)


def test_cannot_skip_an_index(db: sqlite3.Connection, log_dir: DataDir) -> None:
    """The schema documents that a plain session cannot skip an index."""
    before = _snapshot(log_dir.db)
    with pytest.raises(sqlite3.DatabaseError):
        db.execute("INSERT INTO events(idx, entry) VALUES (?, x'7b7d')", (SIZE + 10,))
    _assert_intact(log_dir, before)


def test_tiles_may_only_grow_by_extension(db: sqlite3.Connection, log_dir: DataDir) -> None:
    """The one UPDATE the sequencer needs: a partial tile extended with its old bytes as prefix."""
    old = db.execute("SELECT hashes FROM tiles WHERE level = 0 AND idx = 1").fetchone()[0]
    db.execute("BEGIN")
    db.execute("UPDATE tiles SET hashes = ? WHERE level = 0 AND idx = 1", (old + bytes(32),))
    length = db.execute("SELECT length(hashes) FROM tiles WHERE level = 0 AND idx = 1").fetchone()[0]
    db.execute("ROLLBACK")
    assert length == len(old) + 32


def test_sequencer_still_appends_after_refused_attempts(db: sqlite3.Connection, log_dir: DataDir) -> None:
    for statement, _ in REFUSED.values():
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(statement)
    with log_dir.open_log(checkpoint_interval=0) as log:
        receipts = log.append(devsecops_events(1000, 300, "more"))
    assert [r.index for r in receipts] == list(range(SIZE + 1, SIZE + 301))
    store = log_dir.store()
    try:
        report = audit_store(store, log_dir.verifier())
    finally:
        store.close()
    assert report.size == 2 * SIZE + 1
    assert report.unsigned == 0


def test_out_of_line_raw_is_stored_as_blob_covered_by_the_entry(log_dir: DataDir) -> None:
    index, entry = stored_entries(log_dir.db)[-1]
    assert index == SIZE
    assert len(entry) <= 0xFFFF
    raw = orjson.loads(entry)["raw"]
    assert raw["size"] > 0xFFFF
    digest = raw["digest"].removeprefix("sha256:")
    store = log_dir.store()
    try:
        blob = store.blob(digest)
    finally:
        store.close()
    assert blob is not None
    assert len(blob) == raw["size"]
    assert hashlib.sha256(blob).hexdigest() == digest
    assert count_rows(log_dir.db, "blobs") == 1


# --- opening and creating ------------------------------------------------------------


def test_create_refuses_to_overwrite(log_dir: DataDir) -> None:
    before = log_dir.db.read_bytes()
    with pytest.raises(StoreError):
        SqliteStore.create(log_dir.db, ORIGIN)
    assert log_dir.db.read_bytes() == before


def test_open_refuses_a_file_that_is_not_a_log(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError):
        SqliteStore.open(junk)
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    with pytest.raises(StoreError):
        SqliteStore.open(other)
    with pytest.raises(StoreError):
        SqliteStore.open(tmp_path / "missing.db")


def test_reopened_store_reads_what_was_written(log_dir: DataDir) -> None:
    rows = stored_entries(log_dir.db)
    store = SqliteStore.open(log_dir.db)
    try:
        assert store.origin == ORIGIN
        assert store.size() == SIZE + 1
        assert list(store.entries(0, store.size())) == rows
        assert [store.entry(i) for i in (0, 57, SIZE)] == [rows[0][1], rows[57][1], rows[SIZE][1]]
        assert store.entry(SIZE + 1) is None
        latest = store.latest_checkpoint()
        assert latest is not None and latest[0] == SIZE + 1
        assert [size for size, _ in store.checkpoints()] == [0, 150, SIZE, SIZE + 1]
    finally:
        store.close()
