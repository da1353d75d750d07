"""Continuous publishing of a served log to its write-once archive (S3 Object Lock).

Configured by the `[archive]` table of sealtrail.toml (see ArchiveSettings and
docs/archive.md). Ownership: inside one server process the Archiver's thread is
the only writer to the archive; `status()` may be read from any thread. A failed
round (S3 unreachable, a bucket without Object Lock, an archived object that
holds other bytes) is logged and kept in the status, and the next round starts
again from the last checkpoint that was fully published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .publish import Published, Publisher
from .s3 import DEFAULT_RETENTION_DAYS, S3Location, S3Sink
from .store.base import LogStore

__all__ = ["ArchiveSettings", "ArchiveStatus", "Archiver", "archive_settings", "open_archiver"]

logger = logging.getLogger("sealtrail.archive")


@dataclass(frozen=True)
class ArchiveSettings:
    """`[archive]` in sealtrail.toml: while serving, publish the log to a write-once S3 archive.

    Example::

        [archive]
        url = "s3://acme-audit-archive/sealtrail"   # required: bucket (with Object Lock) and key prefix
        retention_days = 365           # COMPLIANCE retention of every archived object (cannot be shortened)
        # endpoint_url = "https://minio.internal:9000"   # default: $AWS_ENDPOINT_URL, else AWS S3
        # interval = 10                # seconds between checks for new checkpoints
        # workers = 8                  # concurrent uploads
        # allow_no_lock = false        # true: also archive to a bucket without Object Lock (not WORM)

    Credentials and region come from the usual AWS variables and files (AWS_ACCESS_KEY_ID, ...).
    """

    url: str
    retention_days: int = DEFAULT_RETENTION_DAYS
    endpoint_url: str | None = None
    interval: float = 10.0
    workers: int = 8
    allow_no_lock: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.url, str):
            raise ValueError("archive.url must be an s3://bucket/prefix string")
        S3Location.parse(self.url)
        if isinstance(self.retention_days, bool) or not isinstance(self.retention_days, int):
            raise ValueError("archive.retention_days must be a whole number of days")
        if not 1 <= self.retention_days <= 36500:
            raise ValueError("archive.retention_days must be in 1..36500")
        if self.endpoint_url is not None:
            parts = urlsplit(self.endpoint_url) if isinstance(self.endpoint_url, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"archive.endpoint_url must be an http(s):// URL, not {self.endpoint_url!r}")
        if isinstance(self.interval, bool) or not isinstance(self.interval, int | float) or self.interval <= 0:
            raise ValueError("archive.interval must be a number of seconds > 0")
        object.__setattr__(self, "interval", float(self.interval))
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or not 1 <= self.workers <= 64:
            raise ValueError("archive.workers must be a whole number in 1..64")
        if not isinstance(self.allow_no_lock, bool):
            raise ValueError("archive.allow_no_lock must be true or false")


def archive_settings(path: Path, table: Any) -> ArchiveSettings:
    """The [archive] table of `path`, with unknown keys and invalid values reported against the file."""
    if not isinstance(table, dict):
        raise ValueError(f"{path}: archive must be a table")
    known = {f.name for f in fields(ArchiveSettings)}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"{path}: unknown setting archive.{sorted(unknown)[0]}")
    if "url" not in table:
        raise ValueError(f"{path}: archive.url is required (s3://bucket/prefix)")
    try:
        return ArchiveSettings(**table)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None


@dataclass(frozen=True)
class ArchiveStatus:
    """What the archiver did last; for /metrics and health checks."""

    url: str
    published_size: int | None = None
    """Size of the checkpoint the archive holds everything for (None: not known yet)."""
    ok: bool | None = None
    """Whether the latest round succeeded (None: no round yet)."""
    last_success_at: float | None = None
    """Unix time of the latest successful round."""
    last_error: str | None = None
    last_error_at: float | None = None
    rounds: int = 0
    failures: int = 0
    objects_written: int = 0


class Archiver:
    """Publishes the log to its archive from a background thread, soon after each new checkpoint."""

    def __init__(
        self, publisher: Publisher, *, interval: float = 10.0, close_sink: Callable[[], None] | None = None
    ) -> None:
        self.publisher = publisher
        self.interval = interval
        self._close_sink = close_sink
        self._status = ArchiveStatus(publisher.sink.describe())
        self._lock = threading.Lock()
        self._round = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def status(self) -> ArchiveStatus:
        with self._lock:
            return self._status

    def provide_metrics(self, provide: Callable[[str, Callable[[], float]], None]) -> None:
        """Register archive_size, archive_ok, archive_last_success_timestamp_seconds (see sealtrail.metrics)."""
        nan = float("nan")
        provide("archive_size", lambda: nan if (s := self.status().published_size) is None else float(s))
        provide("archive_ok", lambda: 1.0 if self.status().ok else 0.0)
        provide(
            "archive_last_success_timestamp_seconds",
            lambda: nan if (t := self.status().last_success_at) is None else t,
        )

    def run_once(self) -> Published | None:
        """Publish whatever new checkpoints the log has; None if the round failed (see status())."""
        with self._round:
            try:
                result = self.publisher.publish()
            except Exception as exc:  # a round must never take the server down; the next one retries
                message = " ".join(str(exc).split()) or type(exc).__name__
                logger.warning("archive to %s failed: %s", self._status.url, message)
                with self._lock:
                    self._status = replace(
                        self._status,
                        ok=False,
                        last_error=message,
                        last_error_at=time.time(),
                        rounds=self._status.rounds + 1,
                        failures=self._status.failures + 1,
                    )
                return None
            with self._lock:
                self._status = replace(
                    self._status,
                    published_size=result.size,
                    ok=True,
                    last_success_at=time.time(),
                    rounds=self._status.rounds + 1,
                    objects_written=self._status.objects_written + result.written,
                )
            if result.written:
                logger.info("archived size %d to %s (%d new objects)", result.size, self._status.url, result.written)
            if result.redacted:
                logger.info(
                    "archive: %d entry bundles span redacted entries and were archived in redacted form (e.g. %s)",
                    len(result.redacted),
                    result.redacted[0],
                )
            return result

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="sealtrail-archive", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.interval):
                return

    def close(self, final: bool = True) -> None:
        """Stop the thread; with `final`, publish once more (e.g. the log's last checkpoint at shutdown),
        unless the latest round failed (the archive is likely unreachable: do not hold up the shutdown)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if final and self.status().ok:
            self.run_once()
        if self._close_sink is not None:
            self._close_sink()


def open_archiver(settings: ArchiveSettings, store: LogStore) -> Archiver:
    """An Archiver (not started) publishing `store` to the S3 archive `settings` describe."""
    sink = S3Sink(
        settings.url,
        endpoint_url=settings.endpoint_url,
        retention_days=settings.retention_days,
        allow_no_lock=settings.allow_no_lock,
    )
    publisher = Publisher(store, sink, checkpoint_history=True, workers=settings.workers)
    return Archiver(publisher, interval=settings.interval, close_sink=sink.close)
