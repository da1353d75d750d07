"""The embedded default engine: one SQLite file in WAL mode with synchronous=FULL.

Append-only is enforced by triggers inside the database, so a plain `sqlite3`
session cannot UPDATE or DELETE an event, skip an index, shrink or rewrite a
tile, or replace a checkpoint. Each connection belongs to one thread; the
sequencer's writes go through the connection of the thread that makes them.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path
from typing import Any

import orjson

from ..event import is_out_of_line
from ..search import IndexRow, IndexRows, Query, SearchHit, index_row
from ..tiles import TileRef
from . import sqlite_search
from .base import DuplicateKeyError, ExistingEvent, Redaction, StoreError
from .sqlite_values import bind_directly, insert_values

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 1
CHECKPOINT_EVERY = 0.5
"""Seconds between background WAL checkpoints while the log is being written."""

_SCHEMA = """
-- Every table is append-only. BEFORE UPDATE and BEFORE DELETE triggers refuse
-- changes; BEFORE INSERT triggers refuse a row whose key exists, because
-- INSERT OR REPLACE deletes the old row without firing DELETE triggers.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
BEGIN SELECT RAISE(ABORT, 'sealtrail: the log identity is fixed'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
BEGIN SELECT RAISE(ABORT, 'sealtrail: the log identity is fixed'); END;
CREATE TRIGGER meta_no_replace BEFORE INSERT ON meta
WHEN EXISTS (SELECT 1 FROM meta WHERE key = NEW.key)
BEGIN SELECT RAISE(ABORT, 'sealtrail: the log identity is fixed'); END;

-- One row per leaf. entry holds the exact bytes hashed into the tree.
CREATE TABLE events (
    idx   INTEGER PRIMARY KEY,
    entry BLOB NOT NULL
);
CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'sealtrail: events are append-only'); END;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'sealtrail: events are append-only'); END;
CREATE TRIGGER events_next_index BEFORE INSERT ON events
WHEN NEW.idx IS NOT (SELECT COALESCE(MAX(idx) + 1, 0) FROM events)
BEGIN SELECT RAISE(ABORT, 'sealtrail: events are append-only, each at the next index'); END;

-- Dedup keys (16 bytes): each event's id, and its delivery-derived id if different.
CREATE TABLE event_keys (
    key BLOB PRIMARY KEY,
    idx INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TRIGGER event_keys_append_only_update BEFORE UPDATE ON event_keys
BEGIN SELECT RAISE(ABORT, 'sealtrail: event keys are append-only'); END;
CREATE TRIGGER event_keys_append_only_delete BEFORE DELETE ON event_keys
BEGIN SELECT RAISE(ABORT, 'sealtrail: event keys are append-only'); END;
CREATE TRIGGER event_keys_no_replace BEFORE INSERT ON event_keys
WHEN EXISTS (SELECT 1 FROM event_keys WHERE key = NEW.key)
BEGIN SELECT RAISE(ABORT, 'sealtrail: event keys are append-only'); END;

-- c2sp.org/tlog-tiles hash tiles; a partial tile grows in place until full (8192 bytes = 256 hashes).
CREATE TABLE tiles (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hashes BLOB NOT NULL CHECK (length(hashes) % 32 = 0 AND length(hashes) BETWEEN 32 AND 8192),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER tiles_grow_only BEFORE UPDATE ON tiles
WHEN NEW.level IS NOT OLD.level OR NEW.idx IS NOT OLD.idx
  OR length(OLD.hashes) = 8192
  OR length(NEW.hashes) <= length(OLD.hashes)
  OR substr(NEW.hashes, 1, length(OLD.hashes)) IS NOT OLD.hashes
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;
CREATE TRIGGER tiles_no_replace BEFORE INSERT ON tiles
WHEN EXISTS (SELECT 1 FROM tiles WHERE level = NEW.level AND idx = NEW.idx)
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;

-- Levels 8L+1 .. 8L+7 inside each full tile (tiles.tile_inner): derived from the
-- tile, stored so that a proof reads a node instead of rehashing up to 128 hashes.
CREATE TABLE tile_inner (
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hashes BLOB NOT NULL CHECK (length(hashes) = 8128),
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TRIGGER tile_inner_no_update BEFORE UPDATE ON tile_inner
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;
CREATE TRIGGER tile_inner_no_delete BEFORE DELETE ON tile_inner
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;
CREATE TRIGGER tile_inner_no_replace BEFORE INSERT ON tile_inner
WHEN EXISTS (SELECT 1 FROM tile_inner WHERE level = NEW.level AND idx = NEW.idx)
BEGIN SELECT RAISE(ABORT, 'sealtrail: tiles only grow'); END;

CREATE TABLE checkpoints (
    size      INTEGER PRIMARY KEY,
    note      BLOB NOT NULL,
    signed_at TEXT NOT NULL
);
CREATE TRIGGER checkpoints_append_only_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'sealtrail: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_append_only_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'sealtrail: checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_replace BEFORE INSERT ON checkpoints
WHEN EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
BEGIN SELECT RAISE(ABORT, 'sealtrail: checkpoints are append-only'); END;

-- Raw payloads too large for an entry, addressed by SHA-256 of their bytes.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    data   BLOB NOT NULL
);
CREATE TRIGGER blobs_no_update BEFORE UPDATE ON blobs
BEGIN SELECT RAISE(ABORT, 'sealtrail: blobs are immutable'); END;
CREATE TRIGGER blobs_no_replace BEFORE INSERT ON blobs
WHEN EXISTS (SELECT 1 FROM blobs WHERE digest = NEW.digest)
BEGIN SELECT RAISE(ABORT, 'sealtrail: blobs are immutable'); END;
"""


_REDACTIONS = """
-- The one permitted change to a stored event (DESIGN.md §4): a logged removal of its body.
-- A row keeps the leaf hash (verify checks it against the level-0 tile) and the index of the
-- logged record that accounts for it; only then may the events row be deleted. A blob goes
-- only when no stored body references it any more.
CREATE TABLE redactions (
    idx         INTEGER PRIMARY KEY,
    leaf_hash   BLOB NOT NULL CHECK (length(leaf_hash) = 32),
    event_id    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    record_idx  INTEGER NOT NULL CHECK (record_idx > idx),
    redacted_at TEXT NOT NULL
);
CREATE TRIGGER redactions_no_update BEFORE UPDATE ON redactions
BEGIN SELECT RAISE(ABORT, 'sealtrail: redactions are append-only'); END;
CREATE TRIGGER redactions_no_delete BEFORE DELETE ON redactions
BEGIN SELECT RAISE(ABORT, 'sealtrail: redactions are append-only'); END;
CREATE TRIGGER redactions_no_replace BEFORE INSERT ON redactions
WHEN EXISTS (SELECT 1 FROM redactions WHERE idx = NEW.idx)
BEGIN SELECT RAISE(ABORT, 'sealtrail: redactions are append-only'); END;
CREATE TRIGGER redactions_of_stored_bodies BEFORE INSERT ON redactions
WHEN NOT EXISTS (SELECT 1 FROM events WHERE idx = NEW.idx)
  OR NOT EXISTS (SELECT 1 FROM events WHERE idx = NEW.record_idx)
BEGIN SELECT RAISE(ABORT, 'sealtrail: only a stored body can be redacted, by a stored record'); END;
DROP TRIGGER events_append_only_delete;
CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
WHEN NOT EXISTS (SELECT 1 FROM redactions WHERE idx = OLD.idx)
BEGIN SELECT RAISE(ABORT, 'sealtrail: events are append-only; only a logged redaction removes a body'); END;
CREATE TRIGGER blobs_unreferenced_only BEFORE DELETE ON blobs
WHEN EXISTS (SELECT 1 FROM events WHERE instr(CAST(entry AS TEXT), OLD.digest) > 0
             AND json_extract(CAST(entry AS TEXT), '$.raw.digest') = 'sha256:' || OLD.digest)
BEGIN SELECT RAISE(ABORT, 'sealtrail: a blob goes only with the last body that references it'); END;
"""

_COSIGNATURES = """
-- Witness cosignatures (c2sp.org/tlog-cosignature lines) on this log's own checkpoints, one per
-- checkpoint and witness key, kept only after the witness's key verified them.
CREATE TABLE cosignatures (
    size     INTEGER NOT NULL,
    key_name TEXT NOT NULL,
    key_id   INTEGER NOT NULL,
    line     TEXT NOT NULL,
    added    TEXT NOT NULL,
    PRIMARY KEY (size, key_name, key_id)
) WITHOUT ROWID;
CREATE TRIGGER cosignatures_no_update BEFORE UPDATE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'sealtrail: cosignatures are append-only'); END;
CREATE TRIGGER cosignatures_no_delete BEFORE DELETE ON cosignatures
BEGIN SELECT RAISE(ABORT, 'sealtrail: cosignatures are append-only'); END;
CREATE TRIGGER cosignatures_no_replace BEFORE INSERT ON cosignatures
WHEN EXISTS (SELECT 1 FROM cosignatures WHERE size = NEW.size AND key_name = NEW.key_name AND key_id = NEW.key_id)
  OR NOT EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
BEGIN SELECT RAISE(ABORT, 'sealtrail: cosignatures are append-only, each on a signed checkpoint'); END;
"""

_WITNESSED = """
-- Checkpoints whose cosignatures met the witness policy (k of n), the policy, and when.
CREATE TABLE witnessed (
    size   INTEGER PRIMARY KEY,
    policy TEXT NOT NULL,
    met_at TEXT NOT NULL
);
CREATE TRIGGER witnessed_no_update BEFORE UPDATE ON witnessed
BEGIN SELECT RAISE(ABORT, 'sealtrail: witnessed checkpoints are append-only'); END;
CREATE TRIGGER witnessed_no_delete BEFORE DELETE ON witnessed
BEGIN SELECT RAISE(ABORT, 'sealtrail: witnessed checkpoints are append-only'); END;
CREATE TRIGGER witnessed_no_replace BEFORE INSERT ON witnessed
WHEN EXISTS (SELECT 1 FROM witnessed WHERE size = NEW.size)
  OR NOT EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
BEGIN SELECT RAISE(ABORT, 'sealtrail: witnessed checkpoints are append-only, each a signed checkpoint'); END;
"""

_TIMESTAMPS = """
-- RFC 3161 time-stamp replies (DER TimeStampResp) over this log's checkpoints, one per checkpoint,
-- kept only after the reply verified against the configured TSA trust (sealtrail.timestamping).
CREATE TABLE timestamps (
    size     INTEGER PRIMARY KEY,
    reply    BLOB NOT NULL,
    gen_time TEXT NOT NULL,
    added    TEXT NOT NULL
);
CREATE TRIGGER timestamps_no_update BEFORE UPDATE ON timestamps
BEGIN SELECT RAISE(ABORT, 'sealtrail: timestamps are append-only'); END;
CREATE TRIGGER timestamps_no_delete BEFORE DELETE ON timestamps
BEGIN SELECT RAISE(ABORT, 'sealtrail: timestamps are append-only'); END;
CREATE TRIGGER timestamps_no_replace BEFORE INSERT ON timestamps
WHEN EXISTS (SELECT 1 FROM timestamps WHERE size = NEW.size)
  OR NOT EXISTS (SELECT 1 FROM checkpoints WHERE size = NEW.size)
BEGIN SELECT RAISE(ABORT, 'sealtrail: timestamps are append-only, each on a signed checkpoint'); END;
"""

_ADDED_TABLES = (
    ("redactions", _REDACTIONS),
    ("cosignatures", _COSIGNATURES),
    ("witnessed", _WITNESSED),
    ("timestamps", _TIMESTAMPS),
)
"""Tables added after schema version 1 (name, DDL): created with a new log, and added to an older
log the first time it is opened."""

_FIND_KEYS = (
    "SELECT k.key, k.idx, e.entry, r.leaf_hash, r.event_id, r.reason, r.record_idx, r.redacted_at "
    "FROM event_keys AS k LEFT JOIN events AS e ON e.idx = k.idx LEFT JOIN redactions AS r ON r.idx = k.idx "
    "WHERE k.key IN"
)
_OUT_OF_LINE = '"digest":"sha256:'
"""How an out-of-line raw reference starts in canonical entry bytes (a cheap filter before parsing)."""


class SqliteStore:
    """A log in one SQLite database file (see LogStore for the contract)."""

    def __init__(self, path: Path, origin: str) -> None:
        self.path = path
        self._origin = origin
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._checkpointer: threading.Thread | None = None
        self._wrote = threading.Event()
        self._closing = threading.Event()

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def create(cls, path: Path, origin: str) -> SqliteStore:
        """Create a new, empty log database; refuses to overwrite an existing one."""
        if path.exists():
            raise StoreError(f"{path} already exists")
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_statements(_SCHEMA):
                conn.execute(statement)
            for _, ddl in _ADDED_TABLES:
                for statement in _split_statements(ddl):
                    conn.execute(statement)
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [
                    ("schema_version", str(SCHEMA_VERSION)),
                    ("origin", origin),
                    ("created", datetime.now(UTC).isoformat()),
                ],
            )
            conn.execute("COMMIT")
            sqlite_search.ensure_schema(conn)
        finally:
            conn.close()
        return cls(path, origin)

    @classmethod
    def open(cls, path: Path) -> SqliteStore:
        """Open an existing log database."""
        if not path.is_file():
            raise StoreError(f"no log database at {path}; run `sealtrail init` first")
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{path} is not a sealtrail log database: {exc}") from None
        finally:
            conn.close()
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise StoreError(f"{path} has schema version {meta.get('schema_version')}, want {SCHEMA_VERSION}")
        _add_missing_tables(path)
        _open_search_index(path)
        return cls(path, meta["origin"])

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=10000")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it, off the commit path
            bind_directly()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _start_checkpointer(self) -> None:
        """Copy the WAL into the database file in the background, so commits only append to the WAL."""
        if self._checkpointer is None:
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sealtrail-wal", daemon=True)
            self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=10000")
            while not self._closing.wait(CHECKPOINT_EVERY):
                if self._wrote.is_set():
                    self._wrote.clear()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            pass  # a later open or write checkpoints; the WAL is durable either way
        finally:
            conn.close()

    def close(self) -> None:
        self._closing.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
            self._checkpointer = None
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
        self._closing.clear()

    @property
    def origin(self) -> str:
        return self._origin

    # -- writer side ---------------------------------------------------------

    def size(self) -> int:
        row = self._conn().execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM events").fetchone()
        return int(row[0])

    def read_tiles(self, refs: Sequence[TileRef]) -> list[bytes]:
        conn = self._conn()
        out = []
        for ref in refs:
            if ref.level is None:
                raise StoreError("read_tiles reads hash tiles; use entries() for bundles")
            row = conn.execute(
                "SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (ref.level, ref.index)
            ).fetchone()
            need = ref.width * 32
            if row is None or len(row[0]) < need:
                raise StoreError(f"tile {ref.path} is missing or short")
            out.append(row[0][:need] if len(row[0]) > need else row[0])
        return out

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads in this thread see one consistent state of the log until the block ends."""
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("COMMIT")

    def stored_tiles(self) -> Iterator[tuple[int, int, int, bool]]:
        """(level, index, width, has inner levels) of every stored hash tile."""
        rows = self._conn().execute(
            "SELECT t.level, t.idx, length(t.hashes) / 32, i.level IS NOT NULL FROM tiles AS t "
            "LEFT JOIN tile_inner AS i ON i.level = t.level AND i.idx = t.idx "
            "UNION ALL SELECT i.level, i.idx, 0, 1 FROM tile_inner AS i "
            "WHERE NOT EXISTS (SELECT 1 FROM tiles AS t WHERE t.level = i.level AND t.idx = i.idx)"
        )
        for level, index, width, has_inner in rows:
            yield int(level), int(index), int(width), bool(has_inner)

    def tile_bytes(self, level: int, index: int) -> bytes | None:
        row = self._conn().execute("SELECT hashes FROM tiles WHERE level = ? AND idx = ?", (level, index)).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_sizes(self, above: int, below: int) -> list[int]:
        """Sizes of stored checkpoints strictly between `above` and `below`."""
        rows = self._conn().execute("SELECT size FROM checkpoints WHERE size > ? AND size < ?", (above, below))
        return [int(size) for (size,) in rows]

    def read_inner(self, refs: Sequence[TileRef]) -> list[bytes | None]:
        conn = self._conn()
        out: list[bytes | None] = []
        for ref in refs:
            row = conn.execute("SELECT hashes FROM tile_inner WHERE level = ? AND idx = ?", (ref.level, ref.index))
            found = row.fetchone()
            out.append(None if found is None else bytes(found[0]))
        return out

    def find_existing(self, keys: Sequence[bytes]) -> dict[bytes, ExistingEvent]:
        conn = self._conn()
        found: dict[bytes, ExistingEvent] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            query = f"{_FIND_KEYS} ({marks})"
            for key, idx, entry, *redacted in conn.execute(query, chunk):
                if entry is not None:
                    found[bytes(key)] = ExistingEvent(int(idx), bytes(entry))
                elif redacted[0] is not None:
                    found[bytes(key)] = ExistingEvent(int(idx), b"", _redaction((idx, *redacted)))
        return found

    def append_batch(
        self,
        first_index: int,
        entries: Sequence[bytes],
        keys: Sequence[tuple[bytes, int]],
        tiles: Mapping[tuple[int, int], bytes],
        blobs: Sequence[tuple[str, bytes]],
        inner: Mapping[tuple[int, int], bytes] | None = None,
        index_rows: Sequence[IndexRow | None] | None = None,
    ) -> None:
        conn = self._conn()
        joined = getattr(self._local, "joined", False)  # inside redact()'s transaction
        if not joined:
            conn.execute("BEGIN IMMEDIATE")
        try:
            if blobs:
                conn.executemany(
                    "INSERT INTO blobs(digest, data) SELECT ?1, ?2 "
                    "WHERE NOT EXISTS (SELECT 1 FROM blobs WHERE digest = ?1)",
                    blobs,
                )
            try:
                insert_values(conn, "INSERT INTO event_keys(key, idx) VALUES", 2, _flat(keys))
            except sqlite3.IntegrityError:
                raise DuplicateKeyError("an event key is already stored") from None
            insert_values(conn, "INSERT INTO events(idx, entry) VALUES", 2, entries, first=first_index)
            indices = range(first_index, first_index + len(entries))
            sqlite_search.insert_rows(conn, indices, _search_rows(entries, index_rows))
            for (level, index), data in tiles.items():
                grown = conn.execute("UPDATE tiles SET hashes = ? WHERE level = ? AND idx = ?", (data, level, index))
                if grown.rowcount == 0:
                    conn.execute("INSERT INTO tiles(level, idx, hashes) VALUES (?, ?, ?)", (level, index, data))
            if inner:
                conn.executemany(
                    "INSERT INTO tile_inner(level, idx, hashes) VALUES (?, ?, ?)",
                    [(level, index, data) for (level, index), data in inner.items()],
                )
            if not joined:
                conn.execute("COMMIT")
                self._wrote.set()
                self._start_checkpointer()
        except BaseException:
            if not joined:
                conn.execute("ROLLBACK")
            raise

    def redact(
        self,
        first_index: int,
        entries: Sequence[bytes],
        keys: Sequence[tuple[bytes, int]],
        tiles: Mapping[tuple[int, int], bytes],
        inner: Mapping[tuple[int, int], bytes] | None,
        indices: Sequence[int],
        reason: str,
    ) -> list[Redaction]:
        """See LogStore.redact. secure_delete zeroes every freed byte (cells, overflow and free pages)
        as the transaction writes; a TRUNCATE checkpoint then empties the WAL, which held the older pages."""
        wanted = sorted(set(indices))
        if not wanted or not entries:
            raise StoreError("a redaction needs indices to redact and a record to append")
        if wanted[0] < 0 or wanted[-1] >= first_index:
            raise StoreError(f"only entries below the record's index {first_index} can be redacted")
        conn = self._conn()
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute("BEGIN IMMEDIATE")
        self._local.joined = True
        try:
            self.append_batch(first_index, entries, keys, tiles, [], inner)
            done = _remove_bodies(conn, wanted, first_index, reason)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            self._local.joined = False
        self._wrote.set()
        self._start_checkpointer()
        _truncate_wal(conn)
        return done

    def add_checkpoint(self, size: int, note: bytes) -> None:
        conn = self._conn()
        conn.execute(
            "INSERT INTO checkpoints(size, note, signed_at) SELECT ?1, ?2, ?3 "
            "WHERE NOT EXISTS (SELECT 1 FROM checkpoints WHERE size = ?1)",
            (size, note, datetime.now(UTC).isoformat()),
        )

    # -- witness cosignatures (sealtrail.witnessing) ----------------------------

    def add_cosignature(self, size: int, key_name: str, key_id: int, line: str) -> bool:
        """Keep a verified cosignature line on the checkpoint of `size`; False if that key's is already kept."""
        added = self._conn().execute(
            "INSERT INTO cosignatures(size, key_name, key_id, line, added) SELECT ?1, ?2, ?3, ?4, ?5 "
            "WHERE NOT EXISTS (SELECT 1 FROM cosignatures WHERE size = ?1 AND key_name = ?2 AND key_id = ?3)",
            (size, key_name, key_id, line, datetime.now(UTC).isoformat()),
        )
        return added.rowcount == 1

    def cosignatures(self, size: int) -> list[str]:
        query = "SELECT line FROM cosignatures WHERE size = ? ORDER BY key_name, key_id"
        return [str(line) for (line,) in self._conn().execute(query, (size,))]

    def latest_cosigned(self, key_name: str, key_id: int) -> int | None:
        query = "SELECT MAX(size) FROM cosignatures WHERE key_name = ? AND key_id = ?"
        (size,) = self._conn().execute(query, (key_name, key_id)).fetchone()
        return None if size is None else int(size)

    def add_witnessed(self, size: int, policy: str) -> bool:
        added = self._conn().execute(
            "INSERT INTO witnessed(size, policy, met_at) SELECT ?1, ?2, ?3 "
            "WHERE NOT EXISTS (SELECT 1 FROM witnessed WHERE size = ?1)",
            (size, policy, datetime.now(UTC).isoformat()),
        )
        return added.rowcount == 1

    def witnessed(self, size: int) -> str | None:
        row = self._conn().execute("SELECT policy FROM witnessed WHERE size = ?", (size,)).fetchone()
        return None if row is None else str(row[0])

    def latest_witnessed(self) -> tuple[int, str] | None:
        row = self._conn().execute("SELECT size, policy FROM witnessed ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # -- RFC 3161 time-stamps (sealtrail.timestamping) ------------------------------

    def add_timestamp(self, size: int, reply: bytes, gen_time: str) -> bool:
        """Keep a verified time-stamp reply on the checkpoint of `size`; False if it already has one."""
        added = self._conn().execute(
            "INSERT INTO timestamps(size, reply, gen_time, added) SELECT ?1, ?2, ?3, ?4 "
            "WHERE NOT EXISTS (SELECT 1 FROM timestamps WHERE size = ?1)",
            (size, reply, gen_time, datetime.now(UTC).isoformat()),
        )
        return added.rowcount == 1

    def timestamp(self, size: int) -> bytes | None:
        row = self._conn().execute("SELECT reply FROM timestamps WHERE size = ?", (size,)).fetchone()
        return None if row is None else bytes(row[0])

    def latest_timestamp(self) -> tuple[int, str] | None:
        row = self._conn().execute("SELECT size, gen_time FROM timestamps ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    # -- search (sealtrail.search; schema and upkeep in sqlite_search) --------------

    def search(self, query: Query, *, after: int = -1, before: int | None = None, limit: int = 100) -> list[SearchHit]:
        """Events matching `query` with index in (after, before), in index order, at most `limit`."""
        return sqlite_search.search(self._conn(), query, after=after, before=before, limit=limit)

    def search_lag(self) -> int:
        """Stored events the search index does not cover yet (an older log, an interrupted reindex)."""
        return sqlite_search.lag(self._conn())

    def index_for_search(self, *, rebuild: bool = False, progress: Callable[[int, int], None] | None = None) -> int:
        """Index the events the search index lags behind (all of them again if `rebuild`); returns how many."""
        conn = self._conn()
        build = sqlite_search.reindex if rebuild else sqlite_search.catch_up
        indexed = build(conn, progress=progress)
        self._wrote.set()
        self._start_checkpointer()
        return indexed

    # -- reader side ---------------------------------------------------------

    def latest_checkpoint(self) -> tuple[int, bytes] | None:
        row = self._conn().execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def checkpoint_at(self, size: int) -> bytes | None:
        row = self._conn().execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoints(self, after: int = -1) -> Iterator[tuple[int, bytes]]:
        last = after
        conn = self._conn()
        while True:
            rows = conn.execute(
                "SELECT size, note FROM checkpoints WHERE size > ? ORDER BY size LIMIT 1000", (last,)
            ).fetchall()
            if not rows:
                return
            for size, note in rows:
                yield int(size), bytes(note)
            last = rows[-1][0]

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        conn = self._conn()
        step = 4096
        pos = start
        while pos < end:
            rows = conn.execute(
                "SELECT idx, entry FROM events WHERE idx >= ? AND idx < ? ORDER BY idx",
                (pos, min(pos + step, end)),
            ).fetchall()
            yield from rows
            pos += step

    def entry(self, index: int) -> bytes | None:
        row = self._conn().execute("SELECT entry FROM events WHERE idx = ?", (index,)).fetchone()
        return None if row is None else bytes(row[0])

    def index_of(self, key: bytes) -> int | None:
        row = self._conn().execute("SELECT idx FROM event_keys WHERE key = ?", (key,)).fetchone()
        return None if row is None else int(row[0])

    def blob(self, digest: str) -> bytes | None:
        row = self._conn().execute("SELECT data FROM blobs WHERE digest = ?", (digest,)).fetchone()
        return None if row is None else bytes(row[0])

    def redaction(self, index: int) -> Redaction | None:
        conn = self._conn()
        query = "SELECT idx, leaf_hash, event_id, reason, record_idx, redacted_at FROM redactions WHERE idx = ?"
        row = conn.execute(query, (index,)).fetchone()
        return None if row is None else _redaction(row)

    def redactions(self, start: int, end: int) -> Iterator[Redaction]:
        conn = self._conn()
        query = (
            "SELECT idx, leaf_hash, event_id, reason, record_idx, redacted_at FROM redactions "
            "WHERE idx >= ? AND idx < ? ORDER BY idx"
        )
        return iter([_redaction(row) for row in conn.execute(query, (start, end)).fetchall()])


def _redaction(row: Sequence[Any]) -> Redaction:
    idx, leaf, event_id, reason, record_idx, redacted_at = row
    return Redaction(int(idx), bytes(leaf), str(event_id), str(reason), int(record_idx), str(redacted_at))


def _add_missing_tables(path: Path) -> None:
    """Create the tables of _ADDED_TABLES that a log made before them lacks (one transaction)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if all(name in have for name, _ in _ADDED_TABLES):
            return
        conn.execute("BEGIN IMMEDIATE")
        have = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for name, ddl in _ADDED_TABLES:
            if name not in have:
                for statement in _split_statements(ddl):
                    conn.execute(statement)
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise StoreError(f"{path} needs new tables ({exc}); open it once with write access") from None
    finally:
        conn.close()


def _open_search_index(path: Path) -> None:
    """Create the search tables a log made before them lacks, and index what they do not cover yet."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=10000")
        sqlite_search.ensure_schema(conn)
        if sqlite_search.lag(conn):
            sqlite_search.catch_up(conn)
    except sqlite3.OperationalError as exc:
        raise StoreError(f"{path} needs its search index built ({exc}); open it once with write access") from None
    finally:
        conn.close()


def _search_rows(entries: Sequence[bytes], rows: Sequence[IndexRow | None] | None) -> Sequence[IndexRow] | IndexRows:
    """The search rows of a batch: those prepared with the events, the others made here."""
    if isinstance(rows, IndexRows):
        return rows.complete(entries)
    if rows is None:
        return [index_row(entry) for entry in entries]
    return [index_row(entry) if row is None else row for entry, row in zip(entries, rows, strict=True)]


def _remove_bodies(conn: sqlite3.Connection, indices: list[int], record: int, reason: str) -> list[Redaction]:
    """Inside the redaction transaction: leave a redactions row for each index, then delete its body,
    what the search index holds of it, and the blobs it alone referenced."""
    listed = orjson.dumps(indices).decode()
    rows = conn.execute("SELECT idx, entry FROM events WHERE idx IN (SELECT value FROM json_each(?))", (listed,))
    found = {int(i): bytes(e) for i, e in rows}
    missing = next((i for i in indices if i not in found), None)
    if missing is not None:
        raise StoreError(f"index {missing} has no stored body to redact (redacted already?)")
    now = datetime.now(UTC).isoformat()
    done: list[Redaction] = []
    digests: set[str] = set()
    for index in indices:
        entry = found[index]
        envelope = orjson.loads(entry)
        raw = envelope.get("raw")
        if is_out_of_line(raw):
            digests.add(raw["digest"].removeprefix("sha256:"))
        leaf = hashlib.sha256(b"\x00" + entry).digest()
        done.append(Redaction(index, leaf, str(envelope.get("id", "")), reason, record, now))
    conn.executemany(
        "INSERT INTO redactions(idx, leaf_hash, event_id, reason, record_idx, redacted_at) VALUES (?, ?, ?, ?, ?, ?)",
        [(r.index, r.leaf_hash, r.event_id, r.reason, r.record_index, r.redacted_at) for r in done],
    )
    conn.execute("DELETE FROM events WHERE idx IN (SELECT value FROM json_each(?))", (listed,))
    sqlite_search.forget(conn, indices, found)  # its rows and FTS terms, then an FTS 'optimize'
    if digests:
        _drop_unreferenced_blobs(conn, digests)
    return done


def _drop_unreferenced_blobs(conn: sqlite3.Connection, digests: set[str]) -> None:
    """Delete the blobs among `digests` (hex) that no stored body references any more."""
    referenced = {
        str(ref).removeprefix("sha256:")
        for (ref,) in conn.execute(
            "SELECT json_extract(CAST(entry AS TEXT), '$.raw.digest') FROM events "
            "WHERE instr(CAST(entry AS TEXT), ?) > 0",
            (_OUT_OF_LINE,),
        )
        if ref is not None
    }
    conn.executemany("DELETE FROM blobs WHERE digest = ?", [(d,) for d in sorted(digests - referenced)])


def _truncate_wal(conn: sqlite3.Connection, attempts: int = 3) -> None:
    """Copy the WAL into the database file and truncate it to zero bytes; each attempt waits for
    readers up to the busy timeout."""
    for _ in range(attempts):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
    raise StoreError(
        "the bodies are redacted, but readers kept the write-ahead log busy, so older copies may remain "
        "in log.db-wal; run `sealtrail retention apply` again (it finishes the checkpoint)"
    )


def _flat(rows: Iterable[tuple[object, ...]]) -> list[object]:
    return list(chain.from_iterable(rows))


def _split_statements(script: str) -> list[str]:
    """Split the schema into statements; triggers end with END;."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        if line.startswith("--") or not line.strip():
            continue
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            statements.append(text)
            current = []
    return statements
