"""The periodic integrity audit: it passes on an intact log and names each kind of tampering, raising the alarms."""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from _support import attacker_connection, devsecops_events, wait_for
from sealtrail.datadir import DataDir
from sealtrail.integrity import IntegrityMonitor, IntegrityStatus
from sealtrail.log import Log


class Alarms:
    """An integrity-alarm hook that records its calls and lets a test wait for one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.called = threading.Event()

    def __call__(self, origin: str, message: str) -> None:
        self.calls.append((origin, message))
        self.called.set()


@pytest.fixture
def running(data_dir: DataDir) -> Iterator[tuple[DataDir, Log]]:
    """A log of 300 events (more than one full tile) with several checkpoints, still open."""
    log = data_dir.open_log(checkpoint_interval=3600)
    try:
        for start in range(0, 300, 100):
            log.append(devsecops_events(start, 100, "integrity"))
            log.sign_now()
        yield data_dir, log
    finally:
        log.close()


def _edited(entry: bytes) -> bytes:
    """The entry with its kind changed (every entry has one), as an attacker rewriting history would."""
    edited = entry.replace(b'"kind":"', b'"kind":"forged.', 1)
    assert edited != entry
    return edited


def _edit_entry(directory: DataDir, index: int) -> None:
    attacker = attacker_connection(directory.db)
    (entry,) = attacker.execute("SELECT entry FROM events WHERE idx = ?", (index,)).fetchone()
    attacker.execute("UPDATE events SET entry = ? WHERE idx = ?", (_edited(bytes(entry)), index))
    attacker.close()


def _monitor(
    directory: DataDir, log: Log, alarms: list[Callable[[str, str], None]], interval: float = 3600
) -> IntegrityMonitor:
    return IntegrityMonitor(directory.db, directory.verifier(), interval, log, alarms)


def test_an_intact_log_passes_and_the_status_says_what_was_covered(running: tuple[DataDir, Log]) -> None:
    directory, log = running
    hook = Alarms()
    monitor = _monitor(directory, log, [hook])
    assert monitor.status().ok is None
    status = monitor.run_once()
    assert status.ok is True
    assert (status.runs, status.failures, status.error) == (1, 0, None)
    assert status.checked_size == 300
    assert status.checkpoints >= 4  # the empty tree's, then one per sign_now
    assert status.last_success == status.last_run
    assert hook.calls == []


def test_an_edited_entry_fails_the_audit_names_the_index_and_raises_every_alarm(
    running: tuple[DataDir, Log], caplog: pytest.LogCaptureFixture
) -> None:
    directory, log = running
    first, second = Alarms(), Alarms()

    def broken(origin: str, message: str) -> None:
        raise RuntimeError("this hook is broken")

    monitor = _monitor(directory, log, [first, broken, second])
    assert monitor.run_once().ok is True
    _edit_entry(directory, 42)

    status = monitor.run_once()
    assert status.ok is False
    assert status.failures == 1
    assert status.error is not None and status.error.startswith("index 42:")
    assert status.last_success is not None and status.last_run is not None and status.last_success < status.last_run
    assert first.calls == second.calls == [(log.origin, status.error)]
    failure_lines = [r for r in caplog.records if r.name == "sealtrail.integrity" and r.levelname == "ERROR"]
    assert any("INTEGRITY CHECK FAILED" in r.getMessage() and "index 42" in r.getMessage() for r in failure_lines)


def test_a_store_rolled_back_to_an_older_valid_state_is_caught_by_what_the_server_committed(
    running: tuple[DataDir, Log], tmp_path: Path
) -> None:
    """A restored backup is a perfectly valid smaller log: only the running server knows it is short."""
    directory, log = running
    older = tmp_path / "older.db"
    with sqlite3.connect(directory.db) as live, sqlite3.connect(older) as copy:
        live.backup(copy)
    log.append(devsecops_events(300, 50, "integrity"))
    log.sign_now()
    with sqlite3.connect(older) as copy, sqlite3.connect(directory.db) as live:
        copy.backup(live)

    hook = Alarms()
    status = _monitor(directory, log, [hook]).run_once()
    assert status.ok is False
    assert status.error == (
        "the store holds 300 entries, but this server signed a checkpoint of 350: history was truncated"
    )
    assert hook.calls == [(log.origin, status.error)]


def test_a_deleted_latest_checkpoint_is_a_rollback(running: tuple[DataDir, Log]) -> None:
    """Entries past a checkpoint may be unsigned for a moment, so the audit alone would accept this."""
    directory, log = running
    size, _ = log.latest_checkpoint()
    attacker = attacker_connection(directory.db)
    attacker.execute("DELETE FROM checkpoints WHERE size = ?", (size,))
    attacker.close()
    status = _monitor(directory, log, []).run_once()
    assert status.ok is False
    assert status.error == (
        f"checkpoint {size}, the latest this server holds, is missing from the store: history was rolled back"
    )


def test_an_unreadable_store_is_an_integrity_failure(running: tuple[DataDir, Log]) -> None:
    directory, log = running
    attacker = attacker_connection(directory.db)
    attacker.execute("DROP TABLE tiles")
    attacker.close()
    status = _monitor(directory, log, []).run_once()
    assert status.ok is False
    assert status.error is not None and status.error.startswith("the store could not be audited:")
    assert "tiles" in status.error


def test_the_background_thread_audits_at_start_then_every_interval_and_recovers(
    running: tuple[DataDir, Log],
) -> None:
    directory, log = running
    hook = Alarms()
    monitor = _monitor(directory, log, [hook], interval=0.05)
    monitor.start()
    try:
        wait_for(lambda: monitor.status().runs >= 2)
        assert monitor.status().ok is True
        original = directory.store()
        entry = original.entry(7)
        original.close()
        assert entry is not None
        attacker = attacker_connection(directory.db)
        attacker.execute("UPDATE events SET entry = ? WHERE idx = 7", (_edited(entry),))
        assert hook.called.wait(30), "no alarm within the interval"
        failed: IntegrityStatus = monitor.status()
        assert failed.ok is False and failed.error is not None and failed.error.startswith("index 7:")
        attacker.execute("UPDATE events SET entry = ? WHERE idx = 7", (entry,))  # put it back
        attacker.close()
        wait_for(lambda: monitor.status().ok is True)
        assert monitor.status().error == failed.error  # the last failure stays on record
    finally:
        monitor.close()


def test_close_stops_the_thread(running: tuple[DataDir, Log]) -> None:
    directory, log = running
    monitor = _monitor(directory, log, [], interval=3600)
    monitor.start()
    wait_for(lambda: monitor.status().runs == 1)
    monitor.close()
    assert not any(thread.name == "sealtrail-verify" for thread in threading.enumerate())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are a Linux feature")
def test_the_audit_thread_alone_runs_at_the_lowest_priority(running: tuple[DataDir, Log]) -> None:
    directory, log = running
    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    monitor = _monitor(directory, log, [], interval=3600)
    monitor.start()
    try:
        wait_for(lambda: monitor.status().runs == 1)
        (thread,) = [t for t in threading.enumerate() if t.name == "sealtrail-verify"]
        assert thread.native_id is not None
        assert os.getpriority(os.PRIO_PROCESS, thread.native_id) == 19
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
    finally:
        monitor.close()


def test_the_interval_must_be_positive(running: tuple[DataDir, Log]) -> None:
    directory, log = running
    with pytest.raises(ValueError, match="> 0"):
        _monitor(directory, log, [], interval=0)
