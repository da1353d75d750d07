"""The sequencer (sealtrail.log.Log): group commit, checkpoints, and strong, idempotent dedup."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import Future
from pathlib import Path

import orjson
import pytest

from _support import (
    ORIGIN,
    checkpoint_sizes,
    count_rows,
    devsecops_event,
    devsecops_events,
    event_id,
    rfc6962_leaf,
    rfc6962_root,
    stored_entries,
)
from sealtrail.checkpoint import open_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedBatch, delivery_id, prepare
from sealtrail.log import Log, Receipt
from sealtrail.note import generate_ed25519
from sealtrail.store.base import StoreError
from sealtrail.verify import audit_store


def _state(directory: DataDir) -> tuple[int, int, list[int]]:
    """(events, dedup keys, checkpoint sizes) as stored in the file."""
    return count_rows(directory.db, "events"), count_rows(directory.db, "event_keys"), checkpoint_sizes(directory.db)


def _settle(log: Log) -> None:
    """Wait until the checkpoint for everything appended so far is signed (it follows the ack)."""
    log.wait_for_checkpoint(log.size, timeout=60)


def _audit(directory: DataDir) -> int:
    store = directory.store()
    try:
        report = audit_store(store, directory.verifier())
    finally:
        store.close()
    assert report.unsigned == 0
    return report.size


def _root_of_log(directory: DataDir) -> bytes:
    return rfc6962_root([rfc6962_leaf(entry) for _, entry in stored_entries(directory.db)])


# --- dedup ----------------------------------------------------------------------------


def test_same_explicit_id_across_batches_is_deduplicated(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(1, explicit_id=42)
    event["source"].pop("delivery")
    first = log.append([prepare(event)])[0]
    log.append(devsecops_events(100, 5, "filler"))
    _settle(log)
    before = _state(data_dir)
    checkpoint = log.latest_checkpoint()
    again = log.append([prepare(dict(event, outcome="failure"))])[0]  # same id, different body
    assert again == Receipt(first.index, first.leaf_hash, first.id, duplicate=True)
    assert not first.duplicate
    assert _state(data_dir) == before
    assert log.size == 6
    assert log.latest_checkpoint() == checkpoint


def test_same_explicit_id_within_one_batch(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(4, explicit_id=43)  # a syslog event: no delivery
    other = devsecops_event(5, explicit_id=43)
    receipts = log.append([prepare(event), prepare(other), prepare(dict(event, env="staging"))])
    assert [r.index for r in receipts] == [0, 1, 0]
    assert [r.duplicate for r in receipts] == [False, False, True]
    assert receipts[2].leaf_hash == receipts[0].leaf_hash
    assert receipts[2].id == event["id"]
    assert _state(data_dir)[:2] == (2, 3)  # event 5 has a delivery: two keys


def test_same_delivery_without_id_across_batches(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(10, "gh")
    assert "id" not in event
    first = log.append([prepare(event)])[0]
    assert first.id == delivery_id("github", "acme-github", "gh-000010")
    _settle(log)
    before = _state(data_dir)
    # the redelivery is accepted later (new salt and received time) but is the same delivery
    again = log.append([prepare(event)])[0]
    assert again == Receipt(first.index, first.leaf_hash, first.id, duplicate=True)
    assert _state(data_dir) == before


def test_same_delivery_within_one_batch(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(11, "gh")
    receipts = log.append([prepare(event), *devsecops_events(20, 3, "gh"), prepare(event)])
    assert [r.index for r in receipts] == [0, 1, 2, 3, 0]
    assert receipts[4].duplicate and receipts[4].id == receipts[0].id
    assert log.size == 4
    assert count_rows(data_dir.db, "events") == 4


def test_delivery_is_scoped_to_its_source(log: Log) -> None:
    event = devsecops_event(12, "gh")
    copy = dict(event, source=dict(event["source"], id="another-github-org"))
    receipts = log.append([prepare(event), prepare(copy)])
    assert [r.index for r in receipts] == [0, 1]
    assert not any(r.duplicate for r in receipts)


def test_explicit_id_with_delivery_then_redelivery_without_id(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(13, "gh", explicit_id=44)
    first = log.append([prepare(event)])[0]
    assert first.id == event["id"]
    _settle(log)
    before = _state(data_dir)
    redelivery = {k: v for k, v in event.items() if k != "id"}
    again = log.append([prepare(redelivery)])[0]
    assert again.duplicate
    assert (again.index, again.id, again.leaf_hash) == (first.index, event["id"], first.leaf_hash)
    assert _state(data_dir) == before


def test_delivery_without_id_then_redelivery_with_an_id(data_dir: DataDir, log: Log) -> None:
    event = devsecops_event(16, "gh")
    assert "delivery" in event["source"]
    first = log.append([prepare(event)])[0]
    _settle(log)
    before = _state(data_dir)
    again = log.append([prepare(dict(event, id=event_id(45, 16)))])[0]
    assert again == Receipt(first.index, first.leaf_hash, first.id, duplicate=True)
    assert _state(data_dir) == before


def test_explicit_id_and_redelivery_without_id_in_one_batch(log: Log) -> None:
    event = devsecops_event(15, "gh", explicit_id=46)
    redelivery = {k: v for k, v in event.items() if k != "id"}
    receipts = log.append([prepare(event), prepare(redelivery)])
    assert [r.index for r in receipts] == [0, 0]
    assert receipts[1].duplicate and receipts[1].id == event["id"]


def test_dedup_across_restarts(data_dir: DataDir) -> None:
    # odd ones by explicit id, even ones by delivery (syslog events have none: give them an id)
    events = [devsecops_event(n, "restart", explicit_id=47 if n % 2 or n % 10 == 4 else None) for n in range(30)]
    with data_dir.open_log(checkpoint_interval=0) as log:
        originals = log.append([prepare(e) for e in events])
    _settle(log)
    before = _state(data_dir)
    with data_dir.open_log(checkpoint_interval=0) as log:
        again = log.append([prepare(e) for e in events])
        fresh = log.append(devsecops_events(1000, 2, "restart"))
    assert [r.index for r in again] == [r.index for r in originals]
    assert all(r.duplicate for r in again)
    assert [r.id for r in again] == [r.id for r in originals]
    assert [r.leaf_hash for r in again] == [r.leaf_hash for r in originals]
    assert [r.index for r in fresh] == [30, 31]
    assert _state(data_dir)[0] == before[0] + 2


def test_dedup_across_process_restarts(data_dir: DataDir, tmp_path: Path) -> None:
    """Two separate processes append the same NDJSON deliveries; the second writes nothing."""
    events = tmp_path / "events.ndjson"
    deliveries = [devsecops_event(n, "proc") for n in range(13) if n % 10 != 4]  # syslog has no delivery
    events.write_bytes(b"".join(orjson.dumps(event) + b"\n" for event in deliveries))
    script = textwrap.dedent(
        """
        import sys, orjson
        from pathlib import Path
        from sealtrail.datadir import DataDir
        from sealtrail.event import prepare
        lines = Path(sys.argv[2]).read_bytes().splitlines()
        with DataDir(Path(sys.argv[1])).open_log(checkpoint_interval=0) as log:
            for receipt in log.append([prepare(line) for line in lines]):
                print(orjson.dumps(receipt.to_json()).decode())
        """
    )
    runs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-c", script, str(data_dir.path), str(events)], capture_output=True, check=True
        )
        runs.append([orjson.loads(line) for line in proc.stdout.splitlines()])
        if len(runs) == 1:
            before = _state(data_dir)
    assert [r["index"] for r in runs[0]] == list(range(12))
    assert not any(r.get("duplicate") for r in runs[0])
    assert all(r["duplicate"] is True for r in runs[1])
    assert [(r["index"], r["id"], r["leaf_hash"]) for r in runs[1]] == [
        (r["index"], r["id"], r["leaf_hash"]) for r in runs[0]
    ]
    assert _state(data_dir) == before


def test_a_batch_of_only_duplicates_signs_nothing_new(data_dir: DataDir, log: Log) -> None:
    batch = devsecops_events(0, 10, "dup")
    log.append(batch)
    _settle(log)
    sizes = checkpoint_sizes(data_dir.db)
    receipts = log.append(batch)
    assert all(r.duplicate for r in receipts)
    log.close()
    assert checkpoint_sizes(data_dir.db) == sizes == [0, 10]


# --- sequencer ------------------------------------------------------------------------


def test_group_commit_from_many_threads(data_dir: DataDir) -> None:
    threads_count, per_thread = 12, 25
    results: dict[int, list[tuple[int, list[Receipt]]]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    with data_dir.open_log(checkpoint_interval=0.01) as log:

        def worker(number: int) -> None:
            try:
                start.wait()
                mine: list[tuple[int, list[Receipt]]] = []
                futures: list[tuple[int, Future[list[Receipt]]]] = []
                for k in range(per_thread):
                    n = (number * per_thread + k) * 4
                    events = devsecops_events(n, 1 + k % 4, f"thread{number}")
                    futures.append((len(events), log.submit(events)))
                    if k % 5 == 4:  # sometimes wait, sometimes keep several in flight
                        mine.extend((count, future.result()) for count, future in futures)
                        futures.clear()
                mine.extend((count, future.result()) for count, future in futures)
                results[number] = mine
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        total = log.size

    receipts = [r for mine in results.values() for _, batch in mine for r in batch]
    assert len(receipts) == total == sum(1 + k % 4 for k in range(per_thread)) * threads_count
    assert sorted(r.index for r in receipts) == list(range(total))
    assert not any(r.duplicate for r in receipts)
    # one submit's events are contiguous and in order
    for mine in results.values():
        for count, batch in mine:
            assert len(batch) == count
            assert [r.index for r in batch] == list(range(batch[0].index, batch[0].index + count))
    stored = dict(stored_entries(data_dir.db))
    for receipt in receipts:
        assert rfc6962_leaf(stored[receipt.index]) == receipt.leaf_hash
        assert orjson.loads(stored[receipt.index])["id"] == receipt.id
    assert _audit(data_dir) == total


def test_batches_lists_and_repeats_in_one_group_commit_split_by_max_batch(data_dir: DataDir) -> None:
    """However the sequencer groups submits into commits of at most max_batch, each submit gets its
    receipts in order, and the store holds every new event once, with its search row."""
    first = PreparedBatch.of(devsecops_events(0, 20, "grp"))
    listed = devsecops_events(20, 3, "grp")
    repeats = PreparedBatch.of([*devsecops_events(23, 4, "grp"), listed[1], first[5]])
    with data_dir.open_log(checkpoint_interval=3600, max_batch=7) as log:
        futures = [log.submit(first), log.submit(listed), log.submit(repeats)]
        receipts = [future.result(timeout=60) for future in futures]
    assert [[r.index for r in mine] for mine in receipts] == [list(range(20)), [20, 21, 22], [23, 24, 25, 26, 21, 5]]
    assert [r.duplicate for r in receipts[2]] == [False] * 4 + [True, True]
    stored = dict(stored_entries(data_dir.db))
    assert len(stored) == 27
    new = [*first, *listed, *repeats[:4]]
    for receipt, event in zip([*receipts[0], *receipts[1], *receipts[2][:4]], new, strict=True):
        assert (stored[receipt.index], receipt.id, receipt.leaf_hash) == (event.entry, event.id, event.leaf_hash)
    assert (receipts[2][4].id, receipts[2][5].id) == (listed[1].id, first[5].id)
    assert count_rows(data_dir.db, "search") == 27
    assert _audit(data_dir) == 27


def test_a_failed_commit_fails_its_submit_and_the_log_goes_on(data_dir: DataDir) -> None:
    conn = sqlite3.connect(data_dir.db)
    conn.execute(
        "CREATE TRIGGER refuse_ten BEFORE INSERT ON events WHEN NEW.idx = 10 "
        "BEGIN SELECT RAISE(ABORT, 'the disk says no'); END"
    )
    conn.commit()
    conn.close()
    doomed = devsecops_events(2, 12, "fail")
    with data_dir.open_log(checkpoint_interval=3600, max_batch=4) as log:
        assert [r.index for r in log.append(devsecops_events(0, 2, "fail"))] == [0, 1]
        with pytest.raises(sqlite3.IntegrityError, match="the disk says no"):
            log.append(doomed)  # commits 2..5 and 6..9, then fails: not acknowledged as a whole
        assert log.size == 10
        conn = sqlite3.connect(data_dir.db)
        conn.execute("DROP TRIGGER refuse_ten")
        conn.commit()
        conn.close()
        retried = log.append(doomed)
    assert [r.index for r in retried] == list(range(2, 14))
    assert [r.duplicate for r in retried] == [True] * 8 + [False] * 4
    assert count_rows(data_dir.db, "events") == count_rows(data_dir.db, "search") == 14
    assert _audit(data_dir) == 14


def test_an_event_without_a_dedup_key_is_refused_and_the_sequencer_goes_on(log: Log) -> None:
    keyless = devsecops_events(0, 1, "nokey")[0]._replace(keys=())
    with pytest.raises(ValueError, match="no dedup key"):
        log.append([keyless])
    assert [r.index for r in log.append(devsecops_events(1, 2, "nokey"))] == [0, 1]


def test_checkpoints_signed_after_each_batch(data_dir: DataDir, log: Log) -> None:
    verifier = data_dir.verifier()
    assert log.latest_checkpoint()[0] == 0
    for batch in range(4):
        log.append(devsecops_events(batch * 10, 10, "cp"))
        size, note = log.wait_for_checkpoint(log.size, timeout=60)
        signed = open_checkpoint(note, ORIGIN, [verifier])
        assert signed.checkpoint.size == size == (batch + 1) * 10
        assert signed.checkpoint.root == _root_of_log(data_dir)
    assert checkpoint_sizes(data_dir.db) == [0, 10, 20, 30, 40]


def test_checkpoint_on_close_covers_everything(data_dir: DataDir) -> None:
    log = data_dir.open_log(checkpoint_interval=3600)
    try:
        log.append(devsecops_events(0, 25, "close"))
        assert log.size == 25
        # the interval has not passed: nothing covers the new entries yet
        assert log.latest_checkpoint()[0] == 0
        with pytest.raises(TimeoutError):
            log.wait_for_checkpoint(25, timeout=0.05)
    finally:
        log.close()
    assert checkpoint_sizes(data_dir.db) == [0, 25]
    store = data_dir.store()
    try:
        latest = store.latest_checkpoint()
    finally:
        store.close()
    assert latest is not None
    assert open_checkpoint(latest[1], ORIGIN, [data_dir.verifier()]).checkpoint.root == _root_of_log(data_dir)


def test_sign_now_covers_everything_submitted_before(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=3600) as log:
        futures = [log.submit(devsecops_events(n * 5, 5, "now")) for n in range(4)]
        size, note = log.sign_now()
        assert all(future.done() for future in futures)
        assert size == 20
        assert open_checkpoint(note, ORIGIN, [data_dir.verifier()]).checkpoint.root == _root_of_log(data_dir)
        assert checkpoint_sizes(data_dir.db) == [0, 20]
        assert log.sign_now() == (size, note)  # nothing new: the same checkpoint
    assert checkpoint_sizes(data_dir.db) == [0, 20]


def test_wait_for_checkpoint_returns_once_signed(data_dir: DataDir) -> None:
    with data_dir.open_log(checkpoint_interval=0.05) as log:
        future = log.submit(devsecops_events(0, 7, "wait"))
        size, note = log.wait_for_checkpoint(7, timeout=60)
        assert future.done()
        assert size >= 7
        assert open_checkpoint(note, ORIGIN, [data_dir.verifier()]).checkpoint.size == size
        assert log.wait_for_checkpoint(0) == log.latest_checkpoint()


def test_submit_after_close_fails(log: Log) -> None:
    log.close()
    future = log.submit(devsecops_events(0, 1, "closed"))
    with pytest.raises(StoreError):
        future.result(timeout=10)
    log.close()  # idempotent


def test_empty_submit_resolves_immediately(data_dir: DataDir, log: Log) -> None:
    assert log.submit([]).result(timeout=10) == []
    assert log.size == 0


def test_log_key_must_match_origin(data_dir: DataDir) -> None:
    store = data_dir.store()
    try:
        with pytest.raises(StoreError):
            Log(store, generate_ed25519("other.example/log"))
    finally:
        store.close()


LAGGING_WRITER = """
import os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from _support import devsecops_events
from sealtrail.datadir import DataDir
log = DataDir(Path(sys.argv[1])).open_log(checkpoint_interval=3600)
receipts = log.append(devsecops_events(0, 40, "lag"))
receipts += log.append(devsecops_events(40, 13, "lag"))
print(receipts[-1].index, flush=True)
os._exit(0)  # no close(): the entries are durable, the checkpoint was never signed
"""


def test_reopening_a_log_with_a_lagging_checkpoint_signs_one(data_dir: DataDir) -> None:
    tests_dir = Path(__file__).resolve().parent
    proc = subprocess.run(
        [sys.executable, "-c", LAGGING_WRITER, str(data_dir.path), str(tests_dir)],
        capture_output=True,
        check=True,
        timeout=120,
    )
    assert proc.stdout.strip() == b"52"
    assert count_rows(data_dir.db, "events") == 53
    assert checkpoint_sizes(data_dir.db) == [0]  # precondition: the checkpoint lags behind

    store = data_dir.store()
    try:
        lagging = audit_store(store, data_dir.verifier())
    finally:
        store.close()
    assert (lagging.size, lagging.unsigned) == (53, 53)

    log = data_dir.open_log(checkpoint_interval=3600)
    try:
        size, note = log.latest_checkpoint()  # signed on open, before any append
        assert size == 53
        assert checkpoint_sizes(data_dir.db) == [0, 53]
        assert open_checkpoint(note, ORIGIN, [data_dir.verifier()]).checkpoint.root == _root_of_log(data_dir)
        assert [r.index for r in log.append(devsecops_events(53, 2, "lag"))] == [53, 54]
    finally:
        log.close()
    assert _audit(data_dir) == 55
