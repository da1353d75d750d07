"""The SQLite engine's search index: exact rows in `search`, candidate terms in the FTS5 table `search_fts`.

Invariants:
- A batch's search rows and terms are written by `insert_rows` inside the
  transaction that appends its events (SqliteStore.append_batch), so the
  index never holds an event the log does not, nor misses one it does.
- `search_state.indexed` is the number of leading events indexed. It only
  advances over a contiguous run; `catch_up` indexes what an older log (or an
  interrupted reindex) left behind, from the stored entry bytes.
- `search_fts` is contentless (content=''): it keeps terms, not text. The set
  of terms of an event is a function of its entry bytes and search.VERSION
  (search.index_row), so `forget` recomputes it to delete it; a store indexed
  with another VERSION is reindexed when it is opened.

Forgetting contract (redaction, erasure): inside your write transaction, call
`forget(conn, indices, entries)` with the events' entry bytes by index (or
`forget(conn, indices)` before their events rows are deleted: it reads them).
It deletes their search rows and FTS terms, then merges the FTS index into
one segment so no older segment keeps a forgotten term (about 2 s at 1M
events). Run with PRAGMA secure_delete=ON and truncate the WAL afterwards, so
freed pages hold no copy either. Without the entries it still forgets, by
rebuilding the FTS index from all the other entries (slow).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain

from ..search import (
    COLUMNS,
    VERSION,
    IndexRow,
    IndexRows,
    Query,
    SearchHit,
    fts5_match,
    index_row,
    match_terms,
    residual_sql,
)
from .sqlite_values import ROWS_PER_STATEMENT, insert_values

__all__ = [
    "catch_up",
    "ensure_schema",
    "forget",
    "insert_rows",
    "lag",
    "reindex",
    "search",
    "time_bounds",
]

_TABLE = f"""
CREATE TABLE IF NOT EXISTS search (
    idx INTEGER PRIMARY KEY,
    {", ".join(f"{name} {'INTEGER' if name == 'time' else 'TEXT'}" for name in COLUMNS)}
)
"""
_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS search_fts USING fts5("
    "terms, content='', detail=none, columnsize=0, tokenize=\"ascii tokenchars '_.-:/@+'\")"
)
_AUTOMERGE = 8
"""FTS5 merges this many segments of one level into the next (its default: 4). Each commit adds a segment;
merging later and less often costs the writer about 15% less of the FTS work, and a query reads a few more
segments (about 5% slower at 1M events; docs/ingest-performance.md)."""
_STATE = """
CREATE TABLE IF NOT EXISTS search_state (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    version  INTEGER NOT NULL,
    indexed  INTEGER NOT NULL,
    min_time INTEGER,
    max_time INTEGER
)
"""
_INSERT_SEARCH = f"INSERT INTO search(idx, {', '.join(COLUMNS)}) VALUES"
_WIDTH = 1 + len(COLUMNS)
_INSERT_FTS = "INSERT INTO search_fts(rowid, terms) VALUES"
_ADVANCE = (
    "UPDATE search_state SET indexed = CASE WHEN indexed = ?1 THEN ?2 ELSE indexed END, "
    "min_time = coalesce(min(min_time, ?3), ?3, min_time), max_time = coalesce(max(max_time, ?4), ?4, max_time) "
    "WHERE id = 1"
)
_FROM_TERMS = (
    "SELECT s.idx, e.entry FROM search_fts CROSS JOIN search AS s ON s.idx = search_fts.rowid "
    "CROSS JOIN events AS e ON e.idx = s.idx WHERE search_fts MATCH ? AND search_fts.rowid > ?"
)
"""Candidates from the terms in index order (the FTS table drives the join), then the exact rows."""
_FROM_ROWS = "SELECT s.idx, e.entry FROM search AS s CROSS JOIN events AS e ON e.idx = s.idx WHERE s.idx > ?"
_CHUNK = 4096


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the search tables if missing; drop and recreate them (empty) if indexed with another VERSION.

    Writes only when something is missing or stale. Must run outside a transaction.
    """
    if _state_version(conn) == VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _state_version(conn) != VERSION:
            _create(conn, drop=True)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _create_fts(conn: sqlite3.Connection) -> None:
    conn.execute(_FTS)
    conn.execute("INSERT INTO search_fts(search_fts, rank) VALUES ('automerge', ?)", (_AUTOMERGE,))


def _state_version(conn: sqlite3.Connection) -> int | None:
    try:
        row = conn.execute("SELECT version FROM search_state WHERE id = 1").fetchone()
    except sqlite3.OperationalError:  # no such table: a log from before search
        return None
    return None if row is None else int(row[0])


def _create(conn: sqlite3.Connection, *, drop: bool) -> None:
    if drop:
        for table in ("search_fts", "search", "search_state"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(_TABLE)
    _create_fts(conn)
    conn.execute(_STATE)
    conn.execute("INSERT INTO search_state(id, version, indexed) VALUES (1, ?, 0)", (VERSION,))


def insert_rows(conn: sqlite3.Connection, indices: Sequence[int], rows: Sequence[IndexRow] | IndexRows) -> None:
    """Write the search rows and terms of events at `indices` (ascending, contiguous or not), in the caller's
    transaction, and advance search_state over them if they continue the indexed run. IndexRows must be
    complete (IndexRows.complete)."""
    if not rows:
        return
    if len(indices) != len(rows):
        raise ValueError(f"{len(rows)} search rows for {len(indices)} indices")
    if isinstance(rows, IndexRows) and None in rows.terms:
        raise ValueError("a search row is missing: complete the IndexRows from their entries first")
    if isinstance(rows, IndexRows) and isinstance(indices, range) and indices.step == 1:
        # Columns at consecutive indices (what the sequencer writes): bound as they are.
        insert_values(conn, _INSERT_SEARCH, _WIDTH, rows.cells, first=indices.start)
        insert_values(conn, _INSERT_FTS, 2, rows.terms, first=indices.start)
        times = [moment for moment in rows.cells[:: _WIDTH - 1] if moment is not None]
    else:
        pairs = [(i, row) for i, row in zip(indices, rows, strict=True) if row is not None]
        insert_values(conn, _INSERT_SEARCH, _WIDTH, list(chain.from_iterable((i, *row[:13]) for i, row in pairs)))
        insert_values(conn, _INSERT_FTS, 2, list(chain.from_iterable((i, row[13]) for i, row in pairs)))
        times = [row[0] for _, row in pairs if row[0] is not None]
    low, high = (min(times), max(times)) if times else (None, None)
    if indices[-1] - indices[0] == len(indices) - 1:
        conn.execute(_ADVANCE, (indices[0], indices[-1] + 1, low, high))
    else:
        conn.execute(_ADVANCE, (-1, -1, low, high))


def lag(conn: sqlite3.Connection) -> int:
    """How many events after the indexed run are not indexed yet."""
    (indexed,) = conn.execute("SELECT indexed FROM search_state WHERE id = 1").fetchone()
    (size,) = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM events").fetchone()
    return max(0, int(size) - int(indexed))


def catch_up(
    conn: sqlite3.Connection, *, chunk: int = _CHUNK, progress: Callable[[int, int], None] | None = None
) -> int:
    """Index the stored events after the indexed run, from their entry bytes, one transaction per chunk.

    Safe while another connection appends: each chunk re-reads the state under the write lock and
    skips events already indexed. Returns the number of events indexed; `progress(done, total)`.
    """
    done = 0
    total = lag(conn)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (indexed,) = conn.execute("SELECT indexed FROM search_state WHERE id = 1").fetchone()
            (size,) = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM events").fetchone()
            if indexed >= size:
                conn.execute("COMMIT")
                return done
            end = min(indexed + chunk, size)
            stored = conn.execute(
                "SELECT e.idx, e.entry FROM events AS e WHERE e.idx >= ? AND e.idx < ? "
                "AND NOT EXISTS (SELECT 1 FROM search AS s WHERE s.idx = e.idx) ORDER BY e.idx",
                (indexed, end),
            ).fetchall()
            if stored:
                insert_rows(conn, [idx for idx, _ in stored], [index_row(bytes(entry)) for _, entry in stored])
            conn.execute("UPDATE search_state SET indexed = max(indexed, ?) WHERE id = 1", (end,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        done += len(stored)
        if progress is not None:
            progress(done, max(total, done))


def reindex(conn: sqlite3.Connection, *, progress: Callable[[int, int], None] | None = None) -> int:
    """Drop the index and build it again from every stored entry; returns the number of events indexed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        _create(conn, drop=True)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return catch_up(conn, progress=progress)


def forget(conn: sqlite3.Connection, indices: Iterable[int], entries: Mapping[int, bytes] | None = None) -> list[int]:
    """Delete the search rows and FTS terms of `indices`, in the caller's transaction (see module docstring).

    The terms to delete are recomputed from `entries` (index -> entry bytes), else from the events
    table, so call it before deleting the events or pass their entries. Returns the indices that
    had a search row. If an entry is nowhere to be found, the FTS index is rebuilt from the others.
    """
    wanted = sorted(set(indices))
    known = entries or {}
    found: list[tuple[int, bytes | None]] = []
    for start in range(0, len(wanted), ROWS_PER_STATEMENT):
        chunk = wanted[start : start + ROWS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        found += conn.execute(
            f"SELECT s.idx, e.entry FROM search AS s LEFT JOIN events AS e ON e.idx = s.idx WHERE s.idx IN ({marks})",  # noqa: S608 (placeholders only)
            chunk,
        ).fetchall()
    if not found:
        return []
    terms = [(idx, known.get(idx, entry)) for idx, entry in found]
    lost = any(entry is None for _, entry in terms)
    if not lost:
        conn.executemany(
            "INSERT INTO search_fts(search_fts, rowid, terms) VALUES ('delete', ?, ?)",
            [(idx, index_row(bytes(entry))[13]) for idx, entry in terms if entry is not None],
        )
    forgotten = [int(idx) for idx, _ in found]
    for start in range(0, len(forgotten), ROWS_PER_STATEMENT):
        chunk = forgotten[start : start + ROWS_PER_STATEMENT]
        conn.execute(f"DELETE FROM search WHERE idx IN ({','.join('?' * len(chunk))})", chunk)  # noqa: S608
    if lost:
        _rebuild_terms(conn)
    conn.execute("INSERT INTO search_fts(search_fts) VALUES ('optimize')")
    return forgotten


def _rebuild_terms(conn: sqlite3.Connection) -> None:
    """Recreate search_fts from the entries of the events that still have a search row."""
    conn.execute("DROP TABLE search_fts")
    _create_fts(conn)
    last = -1
    while True:
        batch = conn.execute(
            "SELECT s.idx, e.entry FROM search AS s JOIN events AS e ON e.idx = s.idx WHERE s.idx > ? "
            "ORDER BY s.idx LIMIT ?",
            (last, _CHUNK),
        ).fetchall()
        if not batch:
            return
        params = list(chain.from_iterable((idx, index_row(bytes(entry))[13]) for idx, entry in batch))
        insert_values(conn, _INSERT_FTS, 2, params)
        last = batch[-1][0]


def time_bounds(conn: sqlite3.Connection) -> tuple[int, int] | None:
    """The least and greatest event time ever indexed (microseconds); None if no event had a time."""
    row = conn.execute("SELECT min_time, max_time FROM search_state WHERE id = 1").fetchone()
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


def search(
    conn: sqlite3.Connection, query: Query, *, after: int = -1, before: int | None = None, limit: int = 100
) -> list[SearchHit]:
    """Events matching `query` with index in (after, before), in index order, at most `limit`."""
    groups = match_terms(query, time_bounds(conn))
    if groups is None or limit <= 0:
        return []
    residual, params = residual_sql(query, "s")
    if groups:
        head: list[object] = [fts5_match(groups), after]
        bound = "" if before is None else "AND search_fts.rowid < ?"
        sql = " ".join((_FROM_TERMS, bound, "AND", residual, "ORDER BY search_fts.rowid LIMIT ?"))
    else:
        head = [after]
        bound = "" if before is None else "AND s.idx < ?"
        sql = " ".join((_FROM_ROWS, bound, "AND", residual, "ORDER BY s.idx LIMIT ?"))
    if before is not None:
        head.append(before)
    return [SearchHit(int(idx), bytes(entry)) for idx, entry in conn.execute(sql, [*head, *params, limit])]
