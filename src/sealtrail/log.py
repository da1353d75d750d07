"""The sequencer: the one writer of a log.

Ownership: a Log owns the tree's right edge (TreeEdge) and is the only caller
of its store's writer methods. Callers hand it prepared events with `submit`;
a single writer thread groups everything queued into batches, assigns
indices, commits each batch in one durable transaction (group commit), and
only then resolves the callers' futures: acknowledged means committed and
fsynced. After a batch it signs a checkpoint, at most once per
`checkpoint_interval` seconds, and always before it closes.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import msgspec
import orjson

from .checkpoint import Checkpoint, sign_checkpoint
from .event import PreparedBatch, PreparedEvent
from .merkle import leaf_hash
from .note import Signer, b64encode
from .search import IndexRows
from .store.base import DuplicateKeyError, ExistingEvent, LogStore, Redaction, StoreError
from .tiles import TreeEdge

__all__ = ["Log", "LogStats", "Receipt"]


class Receipt(msgspec.Struct, frozen=True, gc=False):
    """Where an event sits in the log. `duplicate` marks a repeat of an earlier delivery.

    The sequencer makes one per event, and callers may keep many: a msgspec Struct built in C and,
    holding no container, left out of the garbage collector (a tracked object per event made the
    collector's passes cost the sequencer more than building the receipts did).
    """

    index: int
    leaf_hash: bytes
    id: str
    duplicate: bool = False

    def as_duplicate(self) -> Receipt:
        return Receipt(self.index, self.leaf_hash, self.id, True)

    def __repr__(self) -> str:
        return f"Receipt(index={self.index}, id={self.id!r}, duplicate={self.duplicate})"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "leaf_hash": b64encode(self.leaf_hash), "id": self.id}
        if self.duplicate:
            out["duplicate"] = True
        return out


@dataclass(frozen=True, slots=True)
class LogStats:
    """A snapshot of the sequencer's counters, cheap enough to take on every metrics scrape."""

    size: int
    """Entries committed."""
    checkpoint_size: int
    queued: int
    """Events submitted and not yet committed (or failed)."""
    batches: int
    """Group commits so far: one writer wake-up, one or more transactions."""
    batched_events: int
    batch_seconds: float
    """Time spent committing those batches (dedup, hashing, the durable transaction)."""
    sign_failures: int
    signed_at: float
    """Wall-clock time of the latest checkpoint signed by this process (its start time if it signed none)."""
    unsigned_since: float | None
    """Wall-clock time of the oldest commit no checkpoint covers yet; None when the checkpoint is current."""


@dataclass(slots=True)
class _Request:
    events: Sequence[PreparedEvent]
    future: Future[list[Receipt]]


@dataclass(slots=True)
class _Redact:
    """Remove the bodies at `indices`, appending `record` (the logged account of it) in the same commit."""

    indices: Sequence[int]
    record: PreparedEvent
    reason: str
    future: Future[tuple[Receipt, list[Redaction]]]


class _Overtaken(StoreError):
    """Another process appended to the log since this sequencer last read its edge."""


_STOP = object()


class Log:
    """Appends to one log through a single writer thread (see module docstring)."""

    def __init__(
        self,
        store: LogStore,
        signer: Signer,
        *,
        checkpoint_interval: float = 1.0,
        max_batch: int = 4096,
        close_store: bool = False,
        also_sign: Sequence[Signer] = (),
    ) -> None:
        for key in (signer, *also_sign):  # also_sign: further log keys, e.g. its ML-DSA-44 key (sealtrail.mldsa)
            if key.name != store.origin:
                raise StoreError(f"log key is named {key.name!r} but the log's origin is {store.origin!r}")
        if checkpoint_interval < 0 or max_batch < 1:
            raise ValueError("checkpoint_interval must be >= 0 and max_batch >= 1")
        self._store = store
        self._signer = signer
        self._also_sign = tuple(also_sign)
        self._interval = checkpoint_interval
        self._max_batch = max_batch
        self._close_store = close_store
        self._edge = self._load_edge()
        size = self._edge.size
        latest = store.latest_checkpoint()
        self._signed: tuple[int, bytes] | None = latest
        self._last_sign = 0.0
        self._cond = threading.Condition()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._closed = False
        self._submit_lock = threading.Lock()
        self._submitted = 0  # events; written under _submit_lock
        self._handled = 0  # the counters below are written by the writer thread only
        self._batches = 0
        self._batch_seconds = 0.0
        self._sign_failures = 0
        self._signed_at = time.time()
        self._unsigned_since: float | None = None
        if latest is None or latest[0] < size:
            self._sign()  # a fresh log, or entries committed before a crash
        self._thread = threading.Thread(target=self._run, name="sealtrail-sequencer", daemon=True)
        self._thread.start()

    # -- public API ----------------------------------------------------------

    @property
    def origin(self) -> str:
        return self._store.origin

    @property
    def size(self) -> int:
        """Entries committed so far (may be ahead of the latest checkpoint)."""
        return self._edge.size

    def submit(self, events: Sequence[PreparedEvent]) -> Future[list[Receipt]]:
        """Queue events; the future resolves with one receipt each, in order, once durable."""
        future: Future[list[Receipt]] = Future()
        with self._submit_lock:
            if self._closed:
                future.set_exception(StoreError("the log is closed"))
            elif not events:
                future.set_result([])
            else:
                self._submitted += len(events)
                self._queue.put(_Request(events, future))
        return future

    def append(self, events: Sequence[PreparedEvent]) -> list[Receipt]:
        """Submit and wait for durability."""
        return self.submit(events).result()

    def redact(
        self, indices: Sequence[int], record: PreparedEvent, reason: str
    ) -> Future[tuple[Receipt, list[Redaction]]]:
        """Queue a redaction: one commit appends `record` and removes the bodies at `indices` (all
        committed and unredacted, else StoreError and nothing changes), keeping their leaf hashes."""
        future: Future[tuple[Receipt, list[Redaction]]] = Future()
        with self._submit_lock:
            if self._closed:
                future.set_exception(StoreError("the log is closed"))
            else:
                self._queue.put(_Redact(list(indices), record, reason, future))
        return future

    def latest_checkpoint(self) -> tuple[int, bytes]:
        with self._cond:
            assert self._signed is not None
            return self._signed

    def stats(self) -> LogStats:
        """The sequencer's counters, read without locks (each is written by one thread)."""
        signed = self._signed
        return LogStats(
            size=self._edge.size,
            checkpoint_size=signed[0] if signed is not None else 0,
            queued=max(0, self._submitted - self._handled),
            batches=self._batches,
            batched_events=self._handled,
            batch_seconds=self._batch_seconds,
            sign_failures=self._sign_failures,
            signed_at=self._signed_at,
            unsigned_since=self._unsigned_since,
        )

    def sign_now(self) -> tuple[int, bytes]:
        """Sign a checkpoint covering everything submitted before this call, now, whatever the interval."""
        waiter: Future[tuple[int, bytes]] = Future()
        with self._submit_lock:
            if self._closed:
                raise StoreError("the log is closed")
            self._queue.put(waiter)
        return waiter.result()

    def wait_for_checkpoint(self, size: int, timeout: float | None = None) -> tuple[int, bytes]:
        """Block until a signed checkpoint covers `size` entries; return it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._signed is None or self._signed[0] < size:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no checkpoint covers {size} entries yet")
                self._cond.wait(remaining)
            return self._signed

    def close(self) -> None:
        """Drain what was submitted, sign a final checkpoint, stop the writer thread."""
        with self._submit_lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        try:
            self._sign()
        finally:
            if self._close_store:
                self._store.close()

    def __enter__(self) -> Log:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writer thread -------------------------------------------------------

    def _run(self) -> None:
        stopping = False
        while not stopping:
            due = self._checkpoint_due()
            try:
                first = self._queue.get(timeout=due)
            except queue.Empty:
                self._sign_safely()
                continue
            if first is _STOP:
                break
            if isinstance(first, Future):
                self._sign_for(first)
                continue
            if isinstance(first, _Redact):
                self._redact(first)
                continue
            requests = [first]
            count = len(first.events)
            sign_after: list[Future[tuple[int, bytes]]] = []
            redact_after: _Redact | None = None
            while count < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if isinstance(item, Future):
                    sign_after.append(item)
                    break
                if isinstance(item, _Redact):
                    redact_after = item
                    break
                requests.append(item)
                count += len(item.events)
            started = time.perf_counter()
            self._process(requests)
            self._count_batch(count, time.perf_counter() - started)
            for waiter in sign_after:
                self._sign_for(waiter)
            if redact_after is not None:
                self._redact(redact_after)
            if self._checkpoint_due() == 0:
                self._sign_safely()

    def _count_batch(self, events: int, seconds: float) -> None:
        self._batches += 1
        self._handled += events
        self._batch_seconds += seconds
        if self._unsigned_since is None and self._checkpoint_due() is not None:
            self._unsigned_since = time.time()

    def _sign_for(self, waiter: Future[tuple[int, bytes]]) -> None:
        try:
            self._sign()
            waiter.set_result(self.latest_checkpoint())
        except BaseException as exc:
            waiter.set_exception(exc)

    def _checkpoint_due(self) -> float | None:
        """Seconds until a checkpoint must be signed; None if it is up to date."""
        if self._signed is not None and self._signed[0] >= self._edge.size:
            return None
        return max(0.0, self._last_sign + self._interval - time.monotonic())

    def _process(self, requests: list[_Request]) -> None:
        """Commit the requests' events in order, max_batch at a time; resolve each request once all of
        its events are durable, or fail it with the error if some are not."""
        receipts: list[Receipt] = []
        failure: BaseException | None = None
        try:
            if len(requests) == 1:
                batch = PreparedBatch.of(requests[0].events)
            else:
                batch = PreparedBatch()
                for request in requests:
                    batch.extend(request.events)
            for start in range(0, len(batch), self._max_batch):
                chunk = batch if len(batch) <= self._max_batch else batch[start : start + self._max_batch]
                receipts += self._commit(chunk)
        except BaseException as exc:  # a malformed event or a storage failure: fail what is not durable
            failure = exc
        at = 0
        for request in requests:
            end = at + len(request.events)
            if end <= len(receipts):
                request.future.set_result(receipts[at:end])
            else:
                assert failure is not None
                request.future.set_exception(failure)
            at = end

    def _commit(self, events: PreparedBatch) -> list[Receipt]:
        """_commit_deduped, once more at the new edge if another process appended meanwhile
        (e.g. `sealtrail erase` while `serve` runs)."""
        try:
            return self._commit_deduped(events)
        except _Overtaken:
            return self._commit_deduped(events)

    def _redact(self, request: _Redact) -> None:
        """Commit a redaction at the edge (again at the new edge if another process appended meanwhile)."""
        for attempt in (1, 2):
            first = self._edge.size
            record = request.record
            before = self._edge.copy()
            changed, inner = self._edge.append_tiles([record.leaf_hash])
            keys = [(key, first) for key in record.keys]
            try:
                done = self._store.redact(first, [record.entry], keys, changed, inner, request.indices, request.reason)
            except BaseException as exc:
                try:
                    self._edge = self._load_edge()
                except Exception:
                    self._edge = before
                if attempt == 1 and self._edge.size != first and isinstance(exc, Exception):
                    continue
                request.future.set_exception(exc)
                return
            request.future.set_result((Receipt(first, record.leaf_hash, record.id), done))
            if self._unsigned_since is None:
                self._unsigned_since = time.time()
            return

    def _commit_deduped(self, events: PreparedBatch) -> list[Receipt]:
        """Dedup, index, hash into the tree and durably store one batch.

        Optimistic: the store's unique key index is the dedup check. Only when
        it reports a stored key does the batch look its keys up and go again.
        """
        try:
            return self._commit_known(events, {})
        except DuplicateKeyError:
            return self._commit_known(events, self._store.find_existing(events.all_keys()))

    def _commit_known(self, events: PreparedBatch, stored: dict[bytes, ExistingEvent]) -> list[Receipt]:
        first = self._edge.size
        all_keys = events.all_keys()
        if not stored and len(set(all_keys)) == len(all_keys):
            # No repeats (the common case): the batch's columns as they are.
            receipts = list(map(Receipt, range(first, first + len(events)), events.leaves, events.ids))
            entries, leaves, rows = events.entries, events.leaves, events.rows
            keys = events.key_rows(first)
            blobs = list(events.blobs.values())
        else:
            receipts, entries, leaves, keys, blobs, rows = self._sift(events, stored, first)
        if entries:
            before = self._edge.copy()
            changed, inner = self._edge.append_tiles(leaves)
            try:
                self._store.append_batch(first, entries, keys, changed, blobs, inner, rows)
            except DuplicateKeyError:
                self._edge = before
                raise
            except BaseException as exc:
                # The transaction rolled back, unless it failed after becoming
                # durable: trust only what the store now holds.
                try:
                    self._edge = self._load_edge()
                except Exception:
                    self._edge = before
                if self._edge.size != first and isinstance(exc, Exception) and not isinstance(exc, _Overtaken):
                    raise _Overtaken(f"another process appended to the log: {exc}") from exc
                raise
        return receipts

    def _sift(
        self, events: PreparedBatch, stored: dict[bytes, ExistingEvent], first: int
    ) -> tuple[list[Receipt], list[bytes], list[bytes], list[tuple[bytes, int]], list[tuple[str, bytes]], IndexRows]:
        """Receipts for a batch with repeats, and the rows of its new events only."""
        seen: dict[bytes, Receipt] = {}
        receipts: list[Receipt] = []
        entries: list[bytes] = []
        keys: list[tuple[bytes, int]] = []
        leaves: list[bytes] = []
        blobs: list[tuple[str, bytes]] = []
        rows = IndexRows()
        next_index = first
        for event, row in zip(events, events.rows, strict=True):
            receipt = self._duplicate(event, stored, seen)
            if receipt is None:
                receipt = Receipt(next_index, event.leaf_hash, event.id)
                for key in event.keys:
                    seen[key] = receipt
                    keys.append((key, next_index))
                next_index += 1
                entries.append(event.entry)
                leaves.append(event.leaf_hash)
                rows.append(row)
                if event.blob is not None:
                    blobs.append(event.blob)
            receipts.append(receipt)
        return receipts, entries, leaves, keys, blobs, rows

    @staticmethod
    def _duplicate(
        event: PreparedEvent, stored: dict[bytes, ExistingEvent], seen: dict[bytes, Receipt]
    ) -> Receipt | None:
        """The receipt of the earlier event sharing a dedup key with `event`, if any."""
        for key in event.keys:
            if key in stored:
                hit = stored[key]
                if hit.redaction is not None:
                    return Receipt(hit.index, hit.redaction.leaf_hash, hit.redaction.event_id, duplicate=True)
                original = orjson.loads(hit.entry).get("id", "")
                return Receipt(hit.index, leaf_hash(hit.entry), original, duplicate=True)
            if key in seen:
                return seen[key].as_duplicate()
        return None

    def _load_edge(self) -> TreeEdge:
        size = self._store.size()
        refs = TreeEdge.edge_refs(size)
        present = iter(self._store.read_tiles([ref for ref in refs if ref.width]))
        return TreeEdge(size, [next(present) if ref.width else b"" for ref in refs])

    def _sign_safely(self) -> None:
        try:
            self._sign()
        except Exception:  # keep accepting events; the next batch or close() retries
            self._sign_failures += 1
            self._last_sign = time.monotonic()

    def _sign(self) -> None:
        size = self._edge.size
        if self._signed is not None and self._signed[0] >= size:
            return
        note = sign_checkpoint(Checkpoint(self._store.origin, size, self._edge.root()), self._signer, *self._also_sign)
        self._store.add_checkpoint(size, note)
        self._last_sign = time.monotonic()
        self._signed_at = time.time()
        self._unsigned_since = None
        with self._cond:
            self._signed = (size, note)
            self._cond.notify_all()
