"""The SQLite search index: written in the events' own transaction, caught up on open, forgettable."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from _support import ORIGIN, attacker_connection, devsecops_event, devsecops_events, read_only
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.search import VERSION, Query, index_row, parse_query
from sealtrail.store import sqlite_search
from sealtrail.store.base import DuplicateKeyError
from sealtrail.store.sqlite import SqliteStore

TESTS_DIR = Path(__file__).resolve().parent.parent


def _marked(n: int, word: str) -> dict[str, object]:
    event = devsecops_event(n, "search")
    event["attrs"] = {**event.get("attrs", {}), "note": word}
    return event


def _state(db: Path) -> tuple[int, int, int | None, int | None]:
    conn = read_only(db)
    try:
        row = conn.execute("SELECT version, indexed, min_time, max_time FROM search_state").fetchone()
        return int(row[0]), int(row[1]), row[2], row[3]
    finally:
        conn.close()


def _fts_hits(db: Path, term: str) -> list[int]:
    conn = read_only(db)
    try:
        rows = conn.execute("SELECT rowid FROM search_fts WHERE search_fts MATCH ? ORDER BY rowid", (f'"{term}"',))
        return [int(rowid) for (rowid,) in rows]
    finally:
        conn.close()


def _search_rows(db: Path) -> dict[int, tuple[object, ...]]:
    conn = read_only(db)
    try:
        return {int(row[0]): tuple(row[1:]) for row in conn.execute("SELECT * FROM search ORDER BY idx")}
    finally:
        conn.close()


def _entries(db: Path) -> dict[int, bytes]:
    conn = read_only(db)
    try:
        return {int(idx): bytes(entry) for idx, entry in conn.execute("SELECT idx, entry FROM events")}
    finally:
        conn.close()


@pytest.fixture
def store(data_dir: DataDir) -> Iterator[SqliteStore]:
    opened = data_dir.store()
    try:
        yield opened
    finally:
        opened.close()


def test_a_batch_is_indexed_in_its_own_commit(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(_marked(n, "quokka")) for n in range(40)])
        log.append(devsecops_events(40, 25, "search"))
    entries = _entries(data_dir.db)
    rows = _search_rows(data_dir.db)
    assert sorted(rows) == list(range(65))
    assert all(rows[idx] == index_row(entry)[:13] for idx, entry in entries.items())
    assert _fts_hits(data_dir.db, "quokka") == list(range(40))
    version, indexed, low, high = _state(data_dir.db)
    assert (version, indexed) == (VERSION, 65)
    times = [int(str(row[0])) for row in rows.values()]
    assert (low, high) == (min(times), max(times))


def test_a_failed_batch_leaves_neither_events_nor_search_rows(data_dir: DataDir, store: SqliteStore) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 10, "search"))
    before = (_entries(data_dir.db), _search_rows(data_dir.db), _state(data_dir.db))
    batch = [prepare(_marked(n, "wombat")) for n in range(10, 15)]
    keys = [(key, 10 + i) for i, event in enumerate(batch) for key in event.keys]
    entries = [event.entry for event in batch]
    rows = [event.index_row for event in batch]
    bad_tile = {(0, 0): b"\x00" * 31}  # violates the tiles CHECK after the events and search rows went in
    with pytest.raises(sqlite3.IntegrityError):
        store.append_batch(10, entries, keys, bad_tile, [], None, rows)
    with pytest.raises(DuplicateKeyError):  # a stored key: refused before anything is written
        store.append_batch(10, entries, [(batch[0].keys[0], 10), *keys[:1]], {}, [], None, rows)
    assert (_entries(data_dir.db), _search_rows(data_dir.db), _state(data_dir.db)) == before
    assert _fts_hits(data_dir.db, "wombat") == []


def test_rows_not_prepared_with_the_events_are_made_by_the_store(data_dir: DataDir) -> None:
    events = [prepare(_marked(n, "numbat"))._replace(index_row=None) for n in range(5)]
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(events)
    assert _fts_hits(data_dir.db, "numbat") == [0, 1, 2, 3, 4]
    assert _search_rows(data_dir.db)[3] == index_row(events[3].entry)[:13]


WRITER = """
import sys
sys.path.insert(0, sys.argv[1])
from _support import devsecops_events
from pathlib import Path
from sealtrail.datadir import DataDir

log = DataDir(Path(sys.argv[2])).open_log(checkpoint_interval=0.05)
n = 0
while True:
    log.append(devsecops_events(n, 50, "kill"))
    n += 50
    print(n, flush=True)
"""


@pytest.mark.slow
def test_a_killed_writer_leaves_the_index_exactly_covering_the_events(data_dir: DataDir) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(TESTS_DIR), str(data_dir.path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    try:
        for _ in range(6):  # let several batches commit, then kill it wherever it is
            assert proc.stdout.readline(), "the writer stopped"
        time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    conn = read_only(data_dir.db)  # as the file is, before anything reopens (and catches up) the store
    try:
        (size,) = conn.execute("SELECT COUNT(*) FROM events").fetchone()
        indexed = [idx for (idx,) in conn.execute("SELECT idx FROM search ORDER BY idx")]
        (state,) = conn.execute("SELECT indexed FROM search_state").fetchone()
        (terms,) = conn.execute(
            "SELECT COUNT(*) FROM search_fts WHERE search_fts MATCH '\"_s.acme-github\"'"
        ).fetchone()
    finally:
        conn.close()
    _integrity_check(data_dir.db)
    assert size >= 300
    assert indexed == list(range(size))
    assert state == size
    assert terms == sum(1 for n in range(size) if n % 10 in (0, 1, 7))  # the GitHub events of the stream


def _integrity_check(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")  # raises if corrupt
    finally:
        conn.close()


def _drop_search_tables(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for table in ("search_fts", "search", "search_state"):
            conn.execute(f"DROP TABLE {table}")
    finally:
        conn.close()


def test_a_log_from_before_search_is_indexed_when_opened(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(_marked(n, "quoll")) for n in range(30)])
    _drop_search_tables(data_dir.db)
    store = data_dir.store()
    try:
        hits = store.search(parse_query("quoll"))
        assert [hit.index for hit in hits] == list(range(30))
        assert store.search_lag() == 0
    finally:
        store.close()
    entries = _entries(data_dir.db)
    assert _search_rows(data_dir.db) == {idx: index_row(entry)[:13] for idx, entry in entries.items()}
    assert _state(data_dir.db)[:2] == (VERSION, 30)


def test_an_index_of_another_version_is_rebuilt(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(_marked(n, "dingo")) for n in range(12)])
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    conn.execute("UPDATE search_state SET version = ?", (VERSION - 1,))
    conn.execute("DELETE FROM search WHERE idx > 3")  # what an older projection would not have had
    conn.close()
    store = data_dir.store()
    store.close()
    assert _state(data_dir.db)[:2] == (VERSION, 12)
    assert sorted(_search_rows(data_dir.db)) == list(range(12))
    assert _fts_hits(data_dir.db, "dingo") == list(range(12))


def test_catching_up_skips_what_newer_batches_indexed(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(_marked(n, "bilby")) for n in range(20)])
    _drop_search_tables(data_dir.db)
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    sqlite_search.ensure_schema(conn)  # empty index, nothing caught up yet
    store = SqliteStore(data_dir.db, ORIGIN)  # not through open(): it would catch up
    try:
        from sealtrail.log import Log

        with Log(store, data_dir.signer(), checkpoint_interval=0) as log:
            log.append([prepare(_marked(n, "bilby")) for n in range(20, 26)])
        assert sqlite_search.lag(conn) == 26  # the new batch could not advance the indexed run
        assert sqlite_search.catch_up(conn, chunk=8) == 20
        assert sqlite_search.lag(conn) == 0
        assert [hit.index for hit in store.search(parse_query("bilby"), limit=100)] == list(range(26))
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
    finally:
        store.close()
        conn.close()
    assert _fts_hits(data_dir.db, "bilby") == list(range(26))


def test_reindex_rebuilds_the_same_index(data_dir: DataDir, store: SqliteStore) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 40, "search"))
    before = _search_rows(data_dir.db)
    seen: list[tuple[int, int]] = []
    assert store.index_for_search(rebuild=True, progress=lambda done, total: seen.append((done, total))) == 40
    assert seen[-1] == (40, 40)
    assert _search_rows(data_dir.db) == before
    assert [hit.index for hit in store.search(Query(source="acme-github"))] == [
        n for n in range(40) if n % 10 in (0, 1, 7)
    ]


def _fts_blocks(db: Path) -> bytes:
    conn = read_only(db)
    try:
        return b"".join(bytes(block) for (block,) in conn.execute("SELECT block FROM search_fts_data"))
    finally:
        conn.close()


def test_forget_removes_the_rows_and_every_term_of_an_event(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 10, "search"))
        log.append([prepare(_marked(10, "platypus")), prepare(_marked(11, "echidna"))])
        log.append(devsecops_events(12, 10, "search"))
    assert b"platypus" in _fts_blocks(data_dir.db)
    conn = sqlite3.connect(data_dir.db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        assert sqlite_search.forget(conn, [10, 99]) == [10]
        conn.execute("COMMIT")
        assert sqlite_search.forget(conn, [10]) == []
    finally:
        conn.close()
    assert 10 not in _search_rows(data_dir.db)
    assert _fts_hits(data_dir.db, "platypus") == []
    assert _fts_hits(data_dir.db, "echidna") == [11]
    assert b"platypus" not in _fts_blocks(data_dir.db)
    store = data_dir.store()
    try:
        assert 10 not in [hit.index for hit in store.search(Query(), limit=100)]
        assert [hit.index for hit in store.search(parse_query("echidna"))] == [11]
    finally:
        store.close()


@pytest.mark.parametrize("pass_entries", [True, False])
def test_forget_after_the_body_is_gone(data_dir: DataDir, pass_entries: bool) -> None:
    """With the entries given, the terms are deleted; without, the FTS index is rebuilt without them."""
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append([prepare(_marked(n, "kiwi" if n == 3 else "kea")) for n in range(8)])
    entries = _entries(data_dir.db)
    conn = attacker_connection(data_dir.db)  # deleting a body is redaction's job; here the triggers are gone
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("DELETE FROM events WHERE idx = 3")
        given = {3: entries[3]} if pass_entries else None
        assert sqlite_search.forget(conn, [3], given) == [3]
        conn.execute("COMMIT")
        conn.execute("INSERT INTO search_fts(search_fts) VALUES ('integrity-check')")
    finally:
        conn.close()
    assert _fts_hits(data_dir.db, "kiwi") == []
    assert _fts_hits(data_dir.db, "kea") == [0, 1, 2, 4, 5, 6, 7]
    assert b"kiwi" not in _fts_blocks(data_dir.db)


def test_search_pages_follow_the_index_and_respect_before(data_dir: DataDir, store: SqliteStore) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 60, "search"))
    query = Query(kind="code")
    expected = [n for n in range(60) if n % 10 in (0, 1)]
    pages, after = [], -1
    while hits := store.search(query, after=after, limit=5):
        pages.append([hit.index for hit in hits])
        after = hits[-1].index
    assert [index for page in pages for index in page] == expected
    assert [hit.index for hit in store.search(query, before=30)] == [n for n in expected if n < 30]
    entries = _entries(data_dir.db)
    assert all(hit.entry == entries[hit.index] for hit in store.search(query))
    assert orjson.loads(store.search(query, limit=1)[0].entry)["kind"] == "code.push"
