"""A forwarder follows the log from its persisted cursor and delivers each entry to one sink, at least once.

Loop: read entries [cursor, cursor + batch) with their leaf hashes from the
tree's level-0 tiles, send them, and move the cursor past the batch only
when the sink has acknowledged it (or refused records for good: those are
kept as dead letters). A failure keeps the unacknowledged records and retries
them after an exponential backoff with full jitter (at least any Retry-After).
A process killed at any point restarts from the cursor: the last batch may be
sent again (idempotent for Elasticsearch), none is skipped.

An entry whose body was redacted (missing, or no longer hashing to its leaf)
is forwarded as a redaction record carrying its index and leaf hash, so the
forwarder never stalls on it and the SIEM still sees every index.

Status (for metrics): cursor, tree size, lag = tree size − cursor, counts and
the last error, via Forwarder.status().
"""

from __future__ import annotations

import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ..merkle import HASH_SIZE, leaf_hash
from ..store.base import StoreError
from ..store.sqlite import SqliteStore
from ..tiles import TILE_WIDTH
from .config import ForwardConfig
from .cursor import CursorStore, ForwarderLock
from .record import ForwardRecord, decode_entry, epoch_millis
from .sinks import DeliveryError, Sink, build_sink

__all__ = ["Forwarder", "ForwarderGroup", "ForwarderStatus", "cursor_path", "read_records"]

logger = logging.getLogger("sealtrail.forward")


def cursor_path(directory: Path) -> Path:
    """Where the forwarder cursors of a data directory live."""
    return directory / "forwarders.db"


@dataclass(frozen=True)
class ForwarderStatus:
    """A snapshot of one forwarder, for `sealtrail forward --status` and the metrics."""

    name: str
    type: str
    cursor: int
    tree_size: int
    state: str
    """starting, sending, idle, backoff, stopped, failed."""
    forwarded: int = 0
    redacted: int = 0
    dead_letters: int = 0
    consecutive_failures: int = 0
    errors: int = 0
    """Failed deliveries since the forwarder started."""
    last_error: str | None = None
    last_success: float | None = None
    """Unix time of the last acknowledged batch."""
    oldest_pending: float | None = None
    """Unix time sealtrail received the oldest entry read but not yet acknowledged."""

    @property
    def lag(self) -> int:
        """Entries in the log not yet acknowledged by the sink."""
        return max(0, self.tree_size - self.cursor)

    def lag_seconds(self, now: float | None = None) -> float:
        """Age of the oldest entry not yet acknowledged (0 when caught up or not read yet)."""
        if self.lag == 0 or self.oldest_pending is None:
            return 0.0
        return max(0.0, (time.time() if now is None else now) - self.oldest_pending)


def read_records(store: SqliteStore, start: int, end: int) -> list[ForwardRecord]:
    """Records for indices [start, end): entry bodies, and leaf hashes from the tree itself.

    An index with no entry, or whose entry no longer hashes to its leaf, is a redacted record.
    """
    with store.snapshot():
        entries = dict(store.entries(start, end))
        redactions = {r.index: r for r in store.redactions(start, end)}
        tiles: dict[int, bytes | None] = {}
        for number in range(start // TILE_WIDTH, (end - 1) // TILE_WIDTH + 1):
            tiles[number] = store.tile_bytes(0, number)
    records = []
    for index in range(start, end):
        tile = tiles.get(index // TILE_WIDTH)
        offset = (index % TILE_WIDTH) * HASH_SIZE
        leaf = tile[offset : offset + HASH_SIZE] if tile is not None else b""
        entry = entries.get(index)
        if len(leaf) != HASH_SIZE:
            if entry is None:
                raise StoreError(f"log index {index} has neither an entry nor a leaf hash")
            leaf = leaf_hash(entry)
        event = decode_entry(entry) if entry is not None and leaf_hash(entry) == leaf else None
        noted = redactions.get(index)
        redaction = None
        if event is None and noted is not None:
            redaction = {"id": noted.event_id, "reason": noted.reason, "record_index": noted.record_index}
        records.append(ForwardRecord(index, leaf, store.origin, event, redaction))
    return records


class Forwarder:
    """One [[forward]] table at work: its cursor, its sink, its status."""

    def __init__(
        self,
        config: ForwardConfig,
        store: SqliteStore,
        cursors: CursorStore,
        sink: Sink,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.cursors = cursors
        self.sink = sink
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        cursor = cursors.get(config.name)
        if cursor is None:
            cursor = store.size() if config.start == "end" else 0
            cursors.advance(config.name, cursor)
        self._status = ForwarderStatus(
            config.name,
            config.type,
            cursor,
            store.size(),
            "starting",
            dead_letters=cursors.dead_letter_count(config.name),
        )

    def status(self) -> ForwarderStatus:
        with self._lock:
            return self._status

    def _update(self, **changes: object) -> ForwarderStatus:
        with self._lock:
            self._status = replace(self._status, **changes)  # type: ignore[arg-type]
            return self._status

    def _backoff(self, failures: int, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(max, initial · 2^(failures−1))), but at least Retry-After."""
        ceiling = min(self.config.max_backoff, self.config.backoff_initial * 2 ** min(failures - 1, 30))
        delay = self._rng.uniform(0, ceiling)
        return max(delay, min(retry_after, self.config.max_backoff)) if retry_after else delay

    def _acknowledge(self, batch: Sequence[ForwardRecord], end: int, dead: list[tuple[int, str, str]]) -> None:
        self.cursors.advance(self.config.name, end, dead)
        status = self.status()
        redacted = sum(record.redacted for record in batch)
        for index, _, reason in dead:
            logger.warning("forwarder %s: log index %d refused for good (%s); kept as a dead letter",
                           self.config.name, index, reason)  # fmt: skip
        self._update(
            cursor=end,
            forwarded=status.forwarded + len(batch) - len(dead),
            redacted=status.redacted + redacted,
            dead_letters=status.dead_letters + len(dead),
            consecutive_failures=0,
            last_success=time.time(),
            state="sending",
            oldest_pending=None,
        )

    def run(self, stop: threading.Event, *, until: int | None = None, max_failures: int | None = None) -> bool:
        """Forward until `stop` is set (or, with `until`, until the cursor reaches it).

        Returns True when it caught up with `until` (or was stopped), False after `max_failures`
        consecutive failures.
        """
        batch: list[ForwardRecord] = []
        pending: list[ForwardRecord] = []
        dead: list[tuple[int, str, str]] = []
        end = self.status().cursor
        while not stop.is_set():
            try:
                size = self.store.size()
                status = self._update(tree_size=size)
                if not batch:
                    start = status.cursor
                    goal = size if until is None else min(until, size)
                    if start >= goal:
                        self._update(state="idle")
                        if until is not None and start >= until:
                            return True
                        stop.wait(self.config.poll_interval)
                        continue
                    end = min(goal, start + self.config.batch_size)
                    batch = read_records(self.store, start, end)
                    pending, dead = list(batch), []
                    received = epoch_millis(batch[0].text("received"))
                    self._update(oldest_pending=None if received is None else received / 1000)
                    for record in batch:
                        if record.redacted:
                            logger.warning("forwarder %s: log index %d is redacted; forwarding a redaction record",
                                           self.config.name, record.index)  # fmt: skip
                if pending:
                    refused = self.sink.send(pending)
                    dead.extend((record.index, record.leaf_hex, reason) for record, reason in refused)
                self._acknowledge(batch, end, dead)
                batch, pending = [], []
            except DeliveryError as exc:
                dead.extend((record.index, record.leaf_hex, reason) for record, reason in exc.dead)
                pending = exc.remaining
                if not self._failed(str(exc), exc.retry_after, stop, max_failures):
                    return False
            except (StoreError, sqlite3.Error, OSError) as exc:
                if not self._failed(f"{type(exc).__name__}: {exc}", None, stop, max_failures):
                    return False
            except Exception as exc:  # a bug must not end the thread silently: report it, retry, never skip
                logger.exception("forwarder %s: unexpected error", self.config.name)
                if not self._failed(f"unexpected {type(exc).__name__}: {exc}", None, stop, max_failures):
                    return False
        self._update(state="stopped")
        return True

    def _failed(self, message: str, retry_after: float | None, stop: threading.Event, limit: int | None) -> bool:
        failures = self.status().consecutive_failures + 1
        delay = self._backoff(failures, retry_after)
        errors = self.status().errors + 1
        self._update(consecutive_failures=failures, errors=errors, last_error=message, state="backoff")
        logger.warning("forwarder %s: %s; retrying in %.2fs (failure %d)", self.config.name, message, delay, failures)
        if limit is not None and failures >= limit:
            self._update(state="failed")
            return False
        stop.wait(delay)
        return True


class ForwarderGroup:
    """The forwarders of one process, each in its own thread with its own store connection and lock."""

    def __init__(self, directory: Path, configs: Sequence[ForwardConfig]) -> None:
        self.directory = directory
        self.configs = list(configs)
        self.stop_event = threading.Event()
        self.forwarders: dict[str, Forwarder] = {}
        self.results: dict[str, bool] = {}
        self._threads: list[threading.Thread] = []
        self._started = threading.Semaphore(0)
        self._errors: list[BaseException] = []

    def statuses(self) -> list[ForwarderStatus]:
        return [forwarder.status() for forwarder in list(self.forwarders.values())]

    def provide_metrics(self, provide: Callable[[str, Callable[[], Mapping[str, float]]], None]) -> None:
        """Export lag (entries, seconds) and failed deliveries per forwarder, labelled by its name."""
        provide("forwarder_lag_events", lambda: {s.name: float(s.lag) for s in self.statuses()})
        provide("forwarder_lag_seconds", lambda: {s.name: s.lag_seconds() for s in self.statuses()})
        provide("forwarder_errors", lambda: {s.name: float(s.errors) for s in self.statuses()})

    def start(
        self,
        *,
        until_end: bool = False,
        max_failures: int | None = None,
        sink_factory: Callable[[ForwardConfig], Sink] = build_sink,
    ) -> None:
        """Start one thread per forwarder; raises (stopping those started) if one cannot start."""
        cursors = CursorStore(cursor_path(self.directory))
        for config in self.configs:
            thread = threading.Thread(
                target=self._run,
                args=(config, cursors, until_end, max_failures, sink_factory),
                name=f"sealtrail-forward-{config.name}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
            self._started.acquire()
            if self._errors:
                self.stop()
                raise self._errors[0]

    def _run(
        self,
        config: ForwardConfig,
        cursors: CursorStore,
        until_end: bool,
        max_failures: int | None,
        sink_factory: Callable[[ForwardConfig], Sink],
    ) -> None:
        lock = ForwarderLock(self.directory, config.name)
        store: SqliteStore | None = None
        sink: Sink | None = None
        try:
            try:
                lock.acquire()
                store = SqliteStore.open(self.directory / "log.db")
                sink = sink_factory(config)
                forwarder = Forwarder(config, store, cursors, sink)
            except BaseException as exc:
                self._errors.append(exc)
                self._started.release()
                return
            self.forwarders[config.name] = forwarder
            self._started.release()
            until = store.size() if until_end else None
            logger.info(
                "forwarder %s (%s) starting at log index %d", config.name, config.type, forwarder.status().cursor
            )
            self.results[config.name] = forwarder.run(self.stop_event, until=until, max_failures=max_failures)
        finally:
            if sink is not None:
                sink.close()
            if store is not None:
                store.close()
            lock.release()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the threads; True if all have finished."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        self.wait(timeout)
