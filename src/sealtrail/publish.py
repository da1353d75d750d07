"""Publishing a log as c2sp.org/tlog-tiles to a TileSink, incrementally.

A copy of the log at checkpoint size N holds every full hash tile and entry
bundle of the tree of N, the partial ones at N, and the partial ones of every
older checkpoint, so that a client that holds any checkpoint the log ever
signed can fetch what its proofs need. Tiles and bundles are written before
the checkpoints that need them, `checkpoint` last: a reader never sees a
checkpoint whose tiles are missing, and a run that stops halfway leaves the
copy valid at its previous checkpoint. This module is the one place that
knows what a copy holds; `tiles export`, `archive` and `serve` use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from .checkpoint import parse_checkpoint
from .note import parse_note
from .objectstore import TileSink
from .store.base import LogStore, RedactedError
from .tiles import TILE_HEIGHT, TILE_WIDTH, TileRef, TreeEdge, redacted_bundle_path
from .view import LogView

__all__ = ["Plan", "Published", "Publisher", "objects_between"]

Progress = Callable[[int], None]
"""Called with the number of objects done so far."""


def _publish_order(ref: TileRef) -> tuple[bool, int, int, int]:
    """Hash tiles level by level, then entry bundles; each by index, then width."""
    return (ref.level is None, ref.level or 0, ref.index, ref.width)


def objects_between(after: int, sizes: Sequence[int]) -> list[TileRef]:
    """Tiles and bundles that readers of the checkpoints `sizes` (increasing, all > `after`) need
    beyond what readers of `after` and of every smaller checkpoint already had."""
    if not sizes:
        return []
    latest = sizes[-1]
    refs: set[TileRef] = set()
    level = 0
    while latest >> (TILE_HEIGHT * level):
        first = (after >> (TILE_HEIGHT * level)) >> TILE_HEIGHT
        full = (latest >> (TILE_HEIGHT * level)) >> TILE_HEIGHT
        refs.update(TileRef(level, index) for index in range(first, full))
        level += 1
    for size in sizes:
        refs.update(ref for ref in TreeEdge.edge_refs(size) if ref.width)
    refs.difference_update(TreeEdge.edge_refs(after))  # unchanged upper edge tiles were published with `after`
    bundles = {TileRef(None, ref.index, ref.width) for ref in refs if ref.level == 0}
    return sorted(refs | bundles, key=_publish_order)


@dataclass(frozen=True)
class Plan:
    """What one run writes: `objects`, then the `history` copies, then `note` as `checkpoint`."""

    after: int | None
    """Checkpoint size the sink already holds everything for (None: nothing yet)."""
    size: int
    note: bytes
    objects: list[TileRef] = field(default_factory=list)
    history: list[tuple[int, bytes]] = field(default_factory=list)
    """`checkpoint.<size>` copies to write (when the publisher keeps checkpoint history)."""
    write_checkpoint: bool = True
    """False when the sink's `checkpoint` is already `note` (cosignatures included)."""

    @property
    def up_to_date(self) -> bool:
        return not (self.objects or self.history or self.write_checkpoint)

    @property
    def total(self) -> int:
        """Objects this plan writes, the checkpoint included."""
        return len(self.objects) + len(self.history) + int(self.write_checkpoint)

    @property
    def tiles(self) -> int:
        return sum(1 for ref in self.objects if ref.level is not None)

    @property
    def bundles(self) -> int:
        return sum(1 for ref in self.objects if ref.level is None)


@dataclass(frozen=True)
class Published:
    """Outcome of one run: the published checkpoint size, objects newly written, objects already there."""

    size: int
    written: int
    present: int
    redacted: tuple[str, ...] = ()
    """Entry bundles that span a redacted entry: written in redacted form (tiles.redacted_bundle_path) instead."""


class Publisher:
    """Publishes one log to one sink; later runs upload only what new checkpoints added.

    On the first run the publisher asks the sink for its `checkpoint`: if that is
    a checkpoint this log signed, everything it needs is there (it was written
    last) and the run starts from its size; otherwise it publishes everything,
    and objects already present with the same bytes are left alone.
    `checkpoint_history` also writes every checkpoint as a write-once
    `checkpoint.<size>`, so a plain reader of the copy sees the log's history.

    `checkpoint` carries the witnesses' cosignatures known when it is written,
    and is written again when more arrive; the write-once `checkpoint.<size>`
    copies hold the log's own signature only, which never changes.
    """

    def __init__(self, store: LogStore, sink: TileSink, *, checkpoint_history: bool = False, workers: int = 1) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.store = store
        self.sink = sink
        self.checkpoint_history = checkpoint_history
        self.workers = workers
        self._view = LogView(store)
        self._published: int | None = None
        self._published_note: bytes | None = None
        self._asked_sink = False

    @property
    def published_size(self) -> int | None:
        """Size of the last checkpoint this publisher wrote or found in the sink (None: none yet)."""
        return self._published

    def _ask_sink(self) -> None:
        """Start from the sink's `checkpoint` if this log signed it (its cosignatures may differ)."""
        note = self.sink.get("checkpoint")
        if note is None:
            return
        try:
            size = parse_checkpoint(parse_note(note)[0]).size
        except ValueError:
            return
        signed = self.store.checkpoint_at(size)
        if signed is not None and note.startswith(signed):
            self._published, self._published_note = size, note

    def plan(self, *, full: bool = False) -> Plan:
        """What the next run writes, for the log's latest checkpoint. With `full`, every object of the
        copy is written again: present ones are left alone (same bytes) or reported (other bytes),
        missing ones (deleted, or hidden behind an S3 delete marker) are put back."""
        size, note = self._view.latest_checkpoint()  # StoreError if there is none yet
        if not self._asked_sink:
            self._ask_sink()
            self._asked_sink = True
        after = None if full else self._published
        if after is not None and after >= size:
            return Plan(after, size, note, write_checkpoint=note != self._published_note)
        new = [(s, n) for s, n in self.store.checkpoints(-1 if after is None else after) if s <= size]
        objects = objects_between(after or 0, [s for s, _ in new])
        return Plan(after, size, note, objects, new if self.checkpoint_history else [])

    def _object(self, ref: TileRef, signed: int) -> tuple[str, bytes, bool]:
        """(path, bytes, redacted) of `ref` in the copy of checkpoint `signed`: a bundle spanning a redacted entry
        goes in redacted form (view.NotYetSigned while a redaction's record is beyond `signed`)."""
        if ref.level is None:
            size = ref.index * TILE_WIDTH + ref.width
            try:
                return ref.path, self._view.entry_bundle(ref.index, ref.width, size), False
            except RedactedError:  # docs/retention.md: the signed bundle bytes are gone for good
                redacted = self._view.redacted_bundle(ref.index, ref.width, size, signed)
                assert redacted is not None
                return redacted_bundle_path(ref.index, ref.width), redacted, True
        return ref.path, self.store.read_tiles([ref])[0], False

    def execute(self, plan: Plan, progress: Progress | None = None) -> Published:
        """Write the plan's objects (up to `workers` at a time), then the history copies, then `checkpoint`."""
        if plan.up_to_date:
            return Published(plan.size, 0, 0)
        outcomes: list[bool] = []
        redacted: list[str] = []

        def record(stored: bool) -> None:
            outcomes.append(stored)
            if progress is not None:
                progress(len(outcomes))

        def data(ref: TileRef) -> tuple[str, bytes]:
            path, payload, is_redacted = self._object(ref, plan.size)
            if is_redacted:
                redacted.append(ref.path)
            return path, payload

        if self.workers == 1:
            for ref in plan.objects:
                record(self.sink.put_once(*data(ref)))
        else:
            with ThreadPoolExecutor(self.workers, thread_name_prefix="sealtrail-publish") as pool:
                pending: deque[Future[bool]] = deque()
                for ref in plan.objects:
                    if len(pending) >= 2 * self.workers:
                        record(pending.popleft().result())
                    pending.append(pool.submit(self.sink.put_once, *data(ref)))
                while pending:
                    record(pending.popleft().result())
        for size, note in plan.history:
            record(self.sink.put_once(f"checkpoint.{size}", note))
        if plan.write_checkpoint:
            self.sink.put_checkpoint(plan.note)
            record(True)
        self._published, self._published_note = plan.size, plan.note
        written = sum(outcomes)
        return Published(plan.size, written, len(outcomes) - written, tuple(redacted))

    def publish(self, progress: Progress | None = None, *, full: bool = False) -> Published:
        """Plan and execute one run (see plan() for `full`)."""
        return self.execute(self.plan(full=full), progress)
