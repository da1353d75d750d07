"""Redaction at the store and sequencer level: bodies leave every byte of the database files,
leaf hashes stay, proofs and audits still pass, and forged redactions are caught."""

from __future__ import annotations

import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from _support import attacker_connection, devsecops_event
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedEvent, prepare
from sealtrail.log import Log
from sealtrail.redaction import commit_redactions, record_lists
from sealtrail.store.base import RedactedError, StoreError
from sealtrail.store.sqlite import SqliteStore
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.verify import AuditError, AuditReport, audit_store
from sealtrail.view import LogView


def subject_event(n: int, marker: str, *, big: bool = False) -> dict[str, Any]:
    """An event naming a data subject `marker` as actor, in attrs and in raw (out of line when `big`)."""
    raw: Any = {"message": f"session opened for {marker}-raw-{n}"}
    if big:
        raw = {"dump": f"{marker}-blob-{n} " * 8000}  # > 64 KiB: stored as a blob
    return {
        "source": {"type": "api", "id": "idp"},
        "kind": "auth.success",
        "action": "login",
        "actor": {"id": f"{marker}-id-{n}", "name": f"{marker}-name-{n}"},
        "attrs": {"note": f"{marker}-attr-{n}"},
        "raw": raw,
    }


def database_bytes(db: Path) -> bytes:
    """Every byte of the database and its -wal and -shm files (free pages and stale WAL frames included)."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def wal_checkpoint(db: Path) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0


def search_index_mentions(db: Path, marker: str) -> int:
    """Values in the search table and the FTS5 shadow tables (search_fts_*) that hold `marker`."""
    needle = marker.encode()
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        count = 0
        for table in (t for t in tables if t == "search" or t.startswith("search_fts_")):
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                values = [v.encode() if isinstance(v, str) else v for v in row]
                count += sum(needle in v for v in values if isinstance(v, bytes))
        return count


def secrets_of(event: PreparedEvent, marker: str, n: int) -> list[bytes]:
    """Distinctive strings of one stored event: actor, attrs, raw markers and its salt."""
    salt = orjson.loads(event.entry)["salt"]
    return [f"{marker}-{part}-{n}".encode() for part in ("id", "name", "attr")] + [salt.encode()]


def redact(log: Log, indices: list[int]) -> int:
    """Redact through the sequencer; the index of the record."""
    done = commit_redactions(
        log, indices, source_id="retention", kind="log.redaction", action="test", reason="test", attrs={}
    )
    return done[0].record.index


def _audit(directory: DataDir) -> AuditReport:
    """`verify` of the log in `directory` (raises AuditError)."""
    with closing(directory.store()) as store:
        return audit_store(store, directory.verifier())


def test_bodies_leave_the_database_file_the_wal_and_free_pages(data_dir: DataDir, log: Log) -> None:
    marker = "zqsubject"
    # batch 1 is checkpointed into log.db; batch 2 stays in the WAL
    first = [prepare(subject_event(n, marker, big=n == 1)) for n in range(4)]
    log.append(first + [prepare(devsecops_event(n)) for n in range(20)])
    log.sign_now()
    wal_checkpoint(data_dir.db)
    second = [prepare(subject_event(n, marker)) for n in range(4, 8)]
    log.append(second + [prepare(devsecops_event(n)) for n in range(20, 40)])
    log.sign_now()
    secrets = [s for n, event in enumerate(first + second) for s in secrets_of(event, marker, n)]
    blob_marker = f"{marker}-blob-1".encode()
    raw_markers = [f"{marker}-raw-{n}".encode() for n in (0, 2, 3, 4, 5, 6, 7)]
    before = database_bytes(data_dir.db)
    assert Path(f"{data_dir.db}-wal").stat().st_size > 0
    missing_before = [s for s in [*secrets, blob_marker, *raw_markers] if s not in before]
    assert not missing_before, "the scan must find every marker before the redaction"
    assert search_index_mentions(data_dir.db, marker) > 0, "the search index (FTS5 shadow tables) holds it too"

    subject = list(range(4)) + list(range(24, 28))  # indices of first + second
    redact(log, subject)

    after = database_bytes(data_dir.db)
    left = [s for s in [*secrets, blob_marker, *raw_markers, marker.encode()] if s in after]
    assert left == []
    assert search_index_mentions(data_dir.db, marker) == 0
    with closing(sqlite3.connect(f"file:{data_dir.db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0, "free pages were scanned too"
        assert conn.execute("SELECT COUNT(*) FROM blobs").fetchone()[0] == 0
    # unredacted neighbours are untouched
    assert b"acme/payments-api" in after


def test_leaf_hashes_stay_and_proofs_of_redacted_and_kept_entries_verify(data_dir: DataDir, log: Log) -> None:
    events = [prepare(subject_event(n, "zqproof")) for n in range(10)]
    log.append(events)
    record = redact(log, [2, 3, 4])
    log.sign_now()
    with closing(data_dir.store()) as store:
        view = LogView(store)
        verifier = data_dir.verifier()
        for index in (2, 4, 5):  # redacted, redacted, kept
            proof = view.tlog_proof(index).encode()
            _, signed, leaf = verify_tlog_proof(proof, verifier.name, [verifier])
            assert leaf == events[index].leaf_hash
            assert signed.checkpoint.size == 11
        record_entry = store.entry(record)
        assert record_entry is not None
        verify_tlog_proof(view.tlog_proof(record).encode(), verifier.name, [verifier], record_entry)
        kept = view.tlog_proof(5).encode()
        verify_tlog_proof(kept, verifier.name, [verifier], events[5].entry)
        with pytest.raises(RedactedError) as gone:
            view.entry(3)
        assert gone.value.redaction.record_index == record
        assert gone.value.redaction.leaf_hash == events[3].leaf_hash
        assert gone.value.redaction.event_id == events[3].id
        assert view.leaf_hash(3) == events[3].leaf_hash
        with pytest.raises(RedactedError):
            view.entry_bundle(0, 11, 11)


def test_verify_passes_and_reports_redacted_ranges(data_dir: DataDir, log: Log) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(30)])
    first = redact(log, [1, 2, 3, 10])
    second = redact(log, [20, 21])
    log.sign_now()
    with closing(data_dir.store()) as store:
        report = audit_store(store, data_dir.verifier())
        assert (report.size, report.redacted) == (32, 6)
        assert report.redacted_ranges == [[1, 3], [10, 10], [20, 21]]
        assert report.redaction_records == [first, second]
        assert record_lists(store.entry(first) or b"", 10)
        assert not record_lists(store.entry(first) or b"", 20)


def test_a_plain_delete_of_an_event_is_refused_by_sqlite(data_dir: DataDir, log: Log) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(3)])
    with closing(sqlite3.connect(data_dir.db, isolation_level=None)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="only a logged redaction"):
            conn.execute("DELETE FROM events WHERE idx = 1")
        with pytest.raises(sqlite3.IntegrityError, match="redact"):  # no body, no record: no redaction row
            conn.execute("INSERT INTO redactions VALUES (7, zeroblob(32), 'x', 'x', 9, 'now')")


def test_a_forged_redaction_hides_a_body_but_verify_reports_it_unaccounted(data_dir: DataDir, log: Log) -> None:
    events = [prepare(devsecops_event(n)) for n in range(5)]
    log.append(events)
    log.sign_now()
    # the triggers allow it (a redactions row exists), but no logged record lists index 1
    with closing(sqlite3.connect(data_dir.db, isolation_level=None)) as conn:
        conn.execute(
            "INSERT INTO redactions VALUES (1, ?, ?, 'forged', 4, 'now')",
            (events[1].leaf_hash, events[1].id),
        )
        conn.execute("DELETE FROM events WHERE idx = 1")
    with pytest.raises(AuditError, match=r"index 1: unaccounted redaction \(it names index 4"):
        _audit(data_dir)


def test_a_forged_redaction_cannot_change_a_leaf_hash(data_dir: DataDir, log: Log) -> None:
    events = [prepare(devsecops_event(n)) for n in range(5)]
    log.append(events)
    redact(log, [2])
    log.sign_now()
    with closing(attacker_connection(data_dir.db)) as conn:
        conn.execute("UPDATE redactions SET leaf_hash = ? WHERE idx = 2", (hashlib.sha256(b"other").digest(),))
    with pytest.raises(AuditError, match="index 2: the leaf hash its redaction kept does not match"):
        _audit(data_dir)


def test_a_redaction_row_beside_a_kept_body_is_reported(data_dir: DataDir, log: Log) -> None:
    events = [prepare(devsecops_event(n)) for n in range(4)]
    log.append(events)
    log.sign_now()
    with closing(sqlite3.connect(data_dir.db, isolation_level=None)) as conn:
        conn.execute("INSERT INTO redactions VALUES (0, ?, ?, 'x', 3, 'now')", (events[0].leaf_hash, events[0].id))
    with pytest.raises(AuditError, match="index 0: marked redacted, but its body is still stored"):
        _audit(data_dir)


def test_redacting_a_missing_body_writes_nothing(data_dir: DataDir, log: Log) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(4)])
    redact(log, [1])
    size = log.size
    with pytest.raises(StoreError, match="index 1 has no stored body"):
        redact(log, [0, 1])
    with pytest.raises(StoreError, match="below the record"):
        redact(log, [size + 3])
    assert log.size == size
    with closing(data_dir.store()) as store:
        assert store.entry(0) is not None
        assert store.size() == size


def test_a_redelivered_redacted_event_is_still_a_duplicate(data_dir: DataDir, log: Log) -> None:
    original = devsecops_event(0)
    first = log.append([prepare(original)])[0]
    log.append([prepare(devsecops_event(n)) for n in range(1, 3)])
    redact(log, [first.index])
    again = log.append([prepare(original)])[0]
    assert again.duplicate
    assert (again.index, again.leaf_hash, again.id) == (first.index, first.leaf_hash, first.id)


def test_a_blob_goes_only_with_the_last_body_that_references_it(data_dir: DataDir, log: Log) -> None:
    payload = {"dump": "shared-payload " * 6000}
    a, b = ({"source": {"type": "api", "id": "x"}, "kind": "ci.run", "raw": payload} for _ in range(2))
    receipts = log.append([prepare(a), prepare(b), prepare(devsecops_event(1))])
    digest = hashlib.sha256(orjson.dumps(payload)).hexdigest()
    with closing(data_dir.store()) as store:
        assert store.blob(digest) is not None
        redact(log, [receipts[0].index])
        assert store.blob(digest) is not None, "the other event still references it"
        conn = sqlite3.connect(data_dir.db, isolation_level=None)
        try:
            with pytest.raises(sqlite3.IntegrityError, match="blob goes only"):
                conn.execute("DELETE FROM blobs WHERE digest = ?", (digest,))
        finally:
            conn.close()
        redact(log, [receipts[1].index])
        assert store.blob(digest) is None


def test_a_serving_sequencer_keeps_appending_after_another_process_redacts(data_dir: DataDir) -> None:
    serving = data_dir.open_log(checkpoint_interval=0)
    try:
        serving.append([prepare(devsecops_event(n)) for n in range(5)])
        with data_dir.open_log(checkpoint_interval=0) as cli:  # e.g. `sealtrail erase` while `serve` runs
            record = redact(cli, [1, 2])
        later = serving.append([prepare(devsecops_event(n)) for n in range(5, 8)])
        assert [r.index for r in later] == [record + 1, record + 2, record + 3]
        serving.sign_now()
    finally:
        serving.close()
    report = _audit(data_dir)
    assert (report.size, report.redacted) == (9, 2)


def test_a_log_made_before_redactions_gains_the_table(tmp_path: Path) -> None:
    directory = DataDir(tmp_path / "old")
    directory.init("old.sealtrail.local/log")
    conn = sqlite3.connect(directory.db, isolation_level=None)
    conn.execute("DROP TABLE redactions")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        if name.startswith(("redactions_", "blobs_unreferenced")):
            conn.execute(f'DROP TRIGGER "{name}"')
    conn.execute("DROP TRIGGER events_append_only_delete")
    conn.execute(
        "CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events "
        "BEGIN SELECT RAISE(ABORT, 'sealtrail: events are append-only'); END"
    )
    conn.close()
    with closing(SqliteStore.open(directory.db)) as store:
        assert list(store.redactions(0, 10)) == []
    with directory.open_log(checkpoint_interval=0) as log:
        log.append([prepare(devsecops_event(n)) for n in range(3)])
        redact(log, [0])
        log.sign_now()
    assert _audit(directory).redacted == 1
