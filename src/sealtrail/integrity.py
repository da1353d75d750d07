"""Periodic integrity verification of a running log: full audits on a background thread.

Every `interval` seconds (and once at start) the monitor runs `verify.audit_store`
over its own connection to the database, which recomputes every leaf and tile from
the entry bytes and checks every stored checkpoint's signature, root and
consistency. It then checks the store against what the running sequencer knows
and the store cannot fake: the store must still hold at least the entries the
sequencer committed, and the exact checkpoint note it holds as the latest. So editing,
deleting or truncating stored history is reported within one interval.

A failed audit sets the status, logs an error and calls every integrity alarm
(`IntegrityAlarm`, registered by appending to the list given to the monitor).
The audit runs in a thread at the lowest CPU priority (Linux: per-thread nice 19);
its cost is linear in the log size (see docs/metrics.md for measurements).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .log import Log
from .note import Verifier
from .store.sqlite import SqliteStore
from .verify import AuditError, AuditReport, audit_store

__all__ = ["IntegrityAlarm", "IntegrityMonitor", "IntegrityStatus", "RaiseAlarm"]

logger = logging.getLogger("sealtrail.integrity")

IntegrityAlarm = Callable[[str, str], None]
"""Called with (origin, message) after every failed audit, from the monitor's thread; must not block for long."""
RaiseAlarm = Callable[[str, str, Mapping[str, Any]], None]
"""Called with (kind, message, evidence) by witnessing and monitors (alerts.AlertService.raise_integrity_alarm)."""


@dataclass(frozen=True)
class IntegrityStatus:
    """The outcome of the latest audit (ok is None until the first one finishes)."""

    interval: float
    ok: bool | None = None
    runs: int = 0
    failures: int = 0
    last_run: float | None = None
    """Wall-clock time the latest audit finished."""
    last_success: float | None = None
    duration: float | None = None
    """Seconds the latest audit took."""
    checked_size: int = 0
    """Entries covered by the latest successful audit."""
    checkpoints: int = 0
    """Checkpoints verified by the latest successful audit."""
    error: str | None = None
    """The latest failed audit's message (kept after a later success, until the next failure replaces it)."""


class _Stopped(Exception):
    """The monitor is closing: abandon the audit in progress."""


class IntegrityMonitor:
    """Audits the log in `db` every `interval` seconds on a background thread (see module docstring)."""

    def __init__(
        self,
        db: Path,
        verifier: Verifier,
        interval: float,
        log: Log,
        alarms: list[IntegrityAlarm],
        *,
        required: Sequence[Verifier] = (),
    ) -> None:
        """`required`: further keys every checkpoint must be signed by (the log's ML-DSA-44 key, if it has one)."""
        if interval <= 0:
            raise ValueError("verify interval must be > 0 seconds")
        self._db = db
        self._verifier = verifier
        self._required = tuple(required)
        self._log = log
        self._alarms = alarms
        self._status = IntegrityStatus(interval)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._run_lock = threading.Lock()

    @property
    def origin(self) -> str:
        return self._log.origin

    def status(self) -> IntegrityStatus:
        return self._status

    def start(self) -> None:
        """Audit now, then every interval, until close()."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sealtrail-verify", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread, abandoning an audit in progress at its next tile."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> IntegrityStatus:
        """One audit now, in the caller's thread: record it, log it, raise the alarms if it failed."""
        with self._run_lock:
            started = time.monotonic()
            try:
                report = self._audit()
            except _Stopped:
                return self._status
            except AuditError as exc:
                return self._failed(str(exc), started)
            except Exception as exc:  # an unreadable store is an integrity failure too
                return self._failed(f"the store could not be audited: {type(exc).__name__}: {exc}", started)
            return self._passed(report, started)

    # -- internals -----------------------------------------------------------

    def _loop(self) -> None:
        _lower_priority()
        while not self._stop.is_set():
            self.run_once()
            self._stop.wait(self._status.interval)

    def _audit(self) -> AuditReport:
        """audit_store, plus the store against the sequencer's own record of what it committed and signed."""
        # Log.size runs ahead of the durable commit; a checkpoint is signed only after its entries committed.
        signed_size, signed_note = self._log.latest_checkpoint()
        store = SqliteStore.open(self._db)
        try:
            report = audit_store(store, self._verifier, self._check_stop, required=self._required)
            if report.size < signed_size:
                raise AuditError(
                    f"the store holds {report.size} entries, but this server signed a checkpoint of "
                    f"{signed_size}: history was truncated"
                )
            stored = store.checkpoint_at(signed_size)
            if stored is None:
                raise AuditError(
                    f"checkpoint {signed_size}, the latest this server holds, is missing from the store: "
                    "history was rolled back"
                )
            if stored != signed_note:
                raise AuditError(f"checkpoint {signed_size} in the store is not the one this server holds")
            return report
        finally:
            store.close()

    def _check_stop(self, _done: int) -> None:
        if self._stop.is_set():
            raise _Stopped

    def _passed(self, report: AuditReport, started: float) -> IntegrityStatus:
        now = time.time()
        duration = time.monotonic() - started
        self._status = replace(
            self._status,
            ok=True,
            runs=self._status.runs + 1,
            last_run=now,
            last_success=now,
            duration=duration,
            checked_size=report.size,
            checkpoints=report.checkpoints,
        )
        logger.info(
            "integrity check passed: %s, %d entries, %d checkpoints in %.2fs",
            self.origin,
            report.size,
            report.checkpoints,
            duration,
        )
        return self._status

    def _failed(self, message: str, started: float) -> IntegrityStatus:
        self._status = replace(
            self._status,
            ok=False,
            runs=self._status.runs + 1,
            failures=self._status.failures + 1,
            last_run=time.time(),
            duration=time.monotonic() - started,
            error=message,
        )
        logger.error("INTEGRITY CHECK FAILED for %s: %s", self.origin, message)
        for alarm in list(self._alarms):
            try:
                alarm(self.origin, message)
            except Exception:
                logger.exception("integrity alarm %r failed", alarm)
        return self._status


def _lower_priority() -> None:
    """Nice the calling thread to 19 (Linux threads have their own nice value); best effort elsewhere."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
