"""Audits that trust nothing but the log's public key.

`audit_store` checks a local store; `verify_tiles_log` checks any
c2sp.org/tlog-tiles log (a directory or an http(s) URL), ours or not. Both
rebuild the tree from the entry bytes one tile at a time, compare every stored
or served tile with the rebuilt one, compare every checkpoint's root with the
rebuilt root at its size, and stop at the first discrepancy, naming the index,
tile or checkpoint at fault.

The level-0 work (hash every entry, compare its tile, compute the tile's
root) is independent per tile, so `audit_store` spreads it over worker
processes; one process assembles the levels above in order. Memory stays
bounded: a window of tile ranges in flight and the tree's right edge.

A redacted entry (docs/retention.md) has no body; its redactions row keeps the
leaf hash, which must still match the level-0 tile (so a redaction can hide a
body, never change history), and must name a logged redaction, retention or
erasure record that lists the index: anything else is an unaccounted redaction.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Protocol

from .checkpoint import Checkpoint, open_checkpoint
from .merkle import HASH_SIZE, ProofError, consistency_proof, verify_consistency
from .note import NoteError, Verifier, b64encode
from .redaction import index_ranges, record_ranges
from .store.base import LogStore
from .store.sqlite import SqliteStore
from .tiles import (
    TILE_WIDTH,
    TileRef,
    TreeEdge,
    decode_bundle,
    node_reader,
    redacted_bundle_path,
    tile_inner,
    tile_width,
    tiles_for_size,
)

__all__ = [
    "AuditError",
    "AuditReport",
    "LeafTile",
    "TrustedState",
    "audit_store",
    "check_leaf_tiles",
    "default_workers",
    "verify_tiles_log",
]

Progress = Callable[[int], None]
"""Called with the number of entries checked so far."""

_TILES_PER_TASK = 64
_RECORD_MARK = b'"kind":"log.'
"""In the canonical bytes of every redaction, retention or erasure record (redaction.RECORD_KINDS): a cheap
filter before record_ranges parses an entry."""


class AuditError(Exception):
    """The log is not intact; the message names the first thing at fault."""


@dataclass
class AuditReport:
    size: int = 0
    checkpoints: int = 0
    latest: Checkpoint | None = None
    unsigned: int = 0
    """Entries committed after the latest checkpoint (not yet covered by a signature)."""
    notes: list[str] = field(default_factory=list)
    redacted: int = 0
    """Entries whose body a logged redaction removed (their leaf hashes were checked)."""
    redacted_ranges: list[list[int]] = field(default_factory=list)
    """Those entries as inclusive [first, last] index ranges."""
    redaction_records: list[int] = field(default_factory=list)
    """Indices of the records that account for them."""

    def redaction_summary(self) -> str:
        """`18 entries (0-8, 10-18), accounted for by the records at 20, 21`."""
        ranges = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.redacted_ranges)
        records = ", ".join(map(str, self.redaction_records))
        return f"{self.redacted} entries ({ranges}), accounted for by the records at {records}"


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing 32-byte hash of two tiles."""
    for i in range(0, max(len(a), len(b)), HASH_SIZE):
        if a[i : i + HASH_SIZE] != b[i : i + HASH_SIZE]:
            return i // HASH_SIZE
    raise ValueError("tiles are equal")


# --- where the claimed data comes from -------------------------------------------


class LeafSource(Protocol):
    """Entries and the tiles they must hash into, as a store or a tiles log claims them."""

    def leaves(self, tile: int, width: int) -> tuple[list[bytes], tuple[int, ...]]:
        """The leaf hashes of the `width` entries of level-0 tile `tile`, and the indices among them whose
        body was redacted (their kept leaf hash stands in); AuditError naming the first missing index."""
        ...

    def tile(self, level: int, index: int, width: int) -> bytes | None: ...

    def inner(self, level: int, index: int) -> bytes | None:
        """Stored inner levels of a full tile (tiles.tile_inner), or None if the source keeps none."""
        ...

    def describe(self, ref: TileRef) -> str: ...


class _StoreSource:
    def __init__(self, store: LogStore) -> None:
        self.store = store

    def leaves(self, tile: int, width: int) -> tuple[list[bytes], tuple[int, ...]]:
        start = tile * TILE_WIDTH
        sha256 = hashlib.sha256
        rows = list(self.store.entries(start, start + width))
        redactions = {r.index: r.leaf_hash for r in self.store.redactions(start, start + width)}
        if not redactions and len(rows) == width and (not rows or rows[-1][0] == start + width - 1):
            return [sha256(b"\x00" + entry).digest() for _, entry in rows], ()
        bodies = dict(rows)
        leaves: list[bytes] = []
        redacted: list[int] = []
        for index in range(start, start + width):
            entry = bodies.get(index)
            kept = redactions.get(index)
            if entry is not None and kept is not None:
                raise AuditError(f"index {index}: marked redacted, but its body is still stored")
            if entry is not None:
                leaves.append(sha256(b"\x00" + entry).digest())
            elif kept is not None:
                leaves.append(kept)
                redacted.append(index)
            else:
                raise AuditError(f"index {index}: entry missing")
        return leaves, tuple(redacted)

    def tile(self, level: int, index: int, width: int) -> bytes | None:
        return self.store.tile_bytes(level, index)

    def inner(self, level: int, index: int) -> bytes | None:
        return self.store.read_inner([TileRef(level, index)])[0]

    def describe(self, ref: TileRef) -> str:
        return f"stored tile {ref.path}"


def _fetch_bundle(fetch: Callable[[str], bytes | None], ref: TileRef) -> tuple[list[bytes], bool] | None:
    """The entries of bundle `ref`, and whether they came in redacted form (tiles.redacted_bundle_path) because
    the bundle itself is absent; None if neither is there; AuditError if malformed."""
    for path, redacted in ((ref.path, False), (redacted_bundle_path(ref.index, ref.width), True)):
        data = fetch(path)
        if data is not None:
            try:
                return decode_bundle(data, ref.width), redacted
            except ValueError as exc:
                raise AuditError(f"{path}: {exc}") from None
    return None


class _FetchSource:
    """A tiles log. An absent entry bundle may be served in redacted form: its empty entries take their leaf
    hashes from the level-0 tile (the tree vouches for them), and `records` collects the redaction records
    seen, which must list every such index (_check_accounted)."""

    def __init__(self, fetch: Callable[[str], bytes | None]) -> None:
        self.fetch = fetch
        self.records: dict[int, list[tuple[int, int]]] = {}
        """Index of each redaction, retention or erasure record -> the index ranges it lists."""

    def leaves(self, tile: int, width: int) -> tuple[list[bytes], tuple[int, ...]]:
        ref = TileRef(None, tile, width)
        found = _fetch_bundle(self.fetch, ref)
        if found is None:
            raise AuditError(f"{ref.path} is missing")
        entries, redacted_form = found
        start = tile * TILE_WIDTH
        sha256 = hashlib.sha256
        leaves: list[bytes] = []
        redacted: list[int] = []
        claimed = b""
        for pos, entry in enumerate(entries):
            if not entry and redacted_form:
                claimed = claimed or _claim(self, 0, tile, width)[0]
                leaves.append(claimed[pos * HASH_SIZE : (pos + 1) * HASH_SIZE])
                redacted.append(start + pos)
                continue
            leaves.append(sha256(b"\x00" + entry).digest())
            if _RECORD_MARK in entry and (ranges := record_ranges(entry)) is not None:
                self.records[start + pos] = ranges
        return leaves, tuple(redacted)

    def tile(self, level: int, index: int, width: int) -> bytes | None:
        return self.fetch(TileRef(level, index, width).path)

    def inner(self, level: int, index: int) -> bytes | None:
        return None

    def describe(self, ref: TileRef) -> str:
        return ref.path


def _claim(source: LeafSource, level: int, index: int, width: int) -> tuple[bytes, TileRef]:
    ref = TileRef(level, index, width)
    data = source.tile(level, index, width)
    if data is None:
        raise AuditError(f"{source.describe(ref)} is missing")
    if len(data) != width * HASH_SIZE:
        raise AuditError(f"{source.describe(ref)} is {len(data)} bytes, want {width * HASH_SIZE}")
    return data, ref


def _check_inner(source: LeafSource, level: int, index: int, inner: bytes) -> None:
    stored = source.inner(level, index)
    if stored is not None and stored != inner:
        ref = TileRef(level, index)
        raise AuditError(f"{source.describe(ref)}: its stored inner levels do not match its hashes")


# --- level 0: entries against leaf tiles, in parallel ---------------------------------


@dataclass(frozen=True)
class LeafTile:
    """A checked level-0 tile: its root if full, its leaf hashes if partial or asked for."""

    index: int
    width: int
    root: bytes | None
    leaves: bytes | None
    redacted: tuple[int, ...] = ()
    """Indices in this tile whose body was redacted."""


def check_leaf_tiles(
    source: LeafSource, start: int, end: int, size: int, keep: frozenset[int] = frozenset()
) -> tuple[list[LeafTile], str | None]:
    """Hash the entries of level-0 tiles [start, end) of the tree of `size` and compare.

    Returns the checked tiles up to the first problem, and that problem's
    message (or None). Leaf hashes are kept for the partial tile and for the
    tiles in `keep` (those a checkpoint size falls inside).
    """
    done: list[LeafTile] = []
    try:
        for index in range(start, end):
            width = tile_width(0, index, size)
            first = index * TILE_WIDTH
            leaves, redacted = source.leaves(index, width)
            rebuilt = b"".join(leaves)
            ref = TileRef(0, index, width)
            claimed = source.tile(0, index, width)
            if claimed is None:
                raise AuditError(f"index {first}: entry is not in the tree ({source.describe(ref)} is missing)")
            if claimed != rebuilt:
                pos = _first_difference(claimed, rebuilt)
                if pos * HASH_SIZE >= len(claimed):
                    why = f"entry is not in the tree ({source.describe(ref)} ends before it)"
                elif pos >= width:
                    why = f"entry missing ({source.describe(ref)} has a leaf hash for it)"
                elif first + pos in redacted:
                    why = f"the leaf hash its redaction kept does not match {source.describe(ref)}"
                else:
                    why = f"entry bytes do not match the leaf hash in {source.describe(ref)}"
                raise AuditError(f"index {first + pos}: {why}")
            root = None
            if width == TILE_WIDTH:
                inner, root = tile_inner(leaves)
                _check_inner(source, 0, index, inner)
            keep_leaves = width < TILE_WIDTH or index in keep
            done.append(LeafTile(index, width, root, rebuilt if keep_leaves else None, redacted))
    except AuditError as exc:
        return done, str(exc)
    return done, None


def _check_store_range(db: str, start: int, end: int, size: int) -> tuple[list[LeafTile], str | None]:
    """check_leaf_tiles in a worker process, on its own connection to the store."""
    store = SqliteStore.open(Path(db))
    try:
        first, last = start * TILE_WIDTH, min(end * TILE_WIDTH, size)
        keep = frozenset(s // TILE_WIDTH for s in store.checkpoint_sizes(first, last) if s % TILE_WIDTH)
        return check_leaf_tiles(_StoreSource(store), start, end, size, keep)
    finally:
        store.close()


def _in_order(source: LeafSource, size: int, keep: frozenset[int], db: Path | None, workers: int) -> Iterator[LeafTile]:
    """Checked level-0 tiles in index order; raises AuditError at the first problem.

    Worker processes (with `db`) take only full tiles, which never change; the
    final partial tile is checked here, in the caller's snapshot of the store.
    """
    tiles = (size + TILE_WIDTH - 1) // TILE_WIDTH
    full = size // TILE_WIDTH
    ranges = [(a, min(a + _TILES_PER_TASK, full)) for a in range(0, full, _TILES_PER_TASK)]
    if full < tiles:
        ranges.append((full, tiles))
    if db is None or workers <= 0 or len(ranges) < 3:
        for a, b in ranges:
            done, problem = check_leaf_tiles(source, a, b, size, keep)
            yield from done
            if problem:
                raise AuditError(problem)
        return
    if full < tiles:
        ranges.pop()
    pending: deque[Future[tuple[list[LeafTile], str | None]]] = deque()
    todo = iter(ranges)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver")) as pool:

        def submit_next() -> None:
            job = next(todo, None)
            if job is not None:
                pending.append(pool.submit(_check_store_range, str(db), job[0], job[1], size))

        for _ in range(2 * workers + 2):
            submit_next()
        while pending:
            done, problem = pending.popleft().result()
            submit_next()
            yield from done
            if problem:
                pool.shutdown(cancel_futures=True)
                raise AuditError(problem)
    if full < tiles:
        done, problem = check_leaf_tiles(source, full, tiles, size, keep)
        yield from done
        if problem:
            raise AuditError(problem)


def _collecting(checked: Iterable[LeafTile], redacted: list[int]) -> Iterator[LeafTile]:
    """The checked tiles, passed on, with their redacted indices added to `redacted` in order."""
    for tile in checked:
        redacted.extend(tile.redacted)
        yield tile


# --- the levels above, and the checkpoints --------------------------------------------


class _Checkpoints:
    """Expected roots by size, consumed in increasing order as the rebuild passes them."""

    def __init__(self, items: Iterable[tuple[int, bytes, str]]) -> None:
        self._items = iter(items)
        self._next = next(self._items, None)

    def due_within(self, end: int) -> list[tuple[int, bytes, str]]:
        out = []
        while self._next is not None and self._next[0] <= end:
            out.append(self._next)
            self._next = next(self._items, None)
        return out

    @property
    def pending(self) -> tuple[int, bytes, str] | None:
        return self._next


OnRoot = Callable[[int, bytes, str], None]


def _check_root(edge: TreeEdge, size: int, root: bytes, label: str) -> None:
    if edge.root() != root:
        raise AuditError(f"{label}: root hash does not match the entries; history before index {size} was rewritten")


def _split(leaves: bytes) -> list[bytes]:
    return [leaves[i : i + HASH_SIZE] for i in range(0, len(leaves), HASH_SIZE)]


def _rebuild(
    source: LeafSource,
    size: int,
    tiles: Iterable[LeafTile],
    expected: _Checkpoints,
    progress: Progress | None,
    on_root: OnRoot | None = None,
) -> TreeEdge:
    """Assemble checked level-0 tiles into the tree, checking upper tiles and every expected root."""
    edge = TreeEdge()

    def reached(due: list[tuple[int, bytes, str]], at: TreeEdge) -> None:
        for cp_size, root, label in due:
            _check_root(at, cp_size, root, label)
            if on_root:
                on_root(cp_size, root, label)

    reached(expected.due_within(0), edge)
    for tile in tiles:
        first, end = tile.index * TILE_WIDTH, tile.index * TILE_WIDTH + tile.width
        due = expected.due_within(end)
        inside = [item for item in due if item[0] < end]
        leaves = tile.leaves
        if leaves is None and inside:  # a checkpoint the worker did not know of: rehash this tile here
            leaves = b"".join(source.leaves(tile.index, tile.width)[0])
        if leaves is not None:
            hashes = _split(leaves)
            probe = edge.copy()
            for cp_size, root, label in inside:
                probe.append(hashes[probe.size - first : cp_size - first])
                reached([(cp_size, root, label)], probe)
            changed, inner = edge.append_tiles(hashes)
        else:
            assert tile.root is not None
            changed, inner = edge.append_tiles([tile.root], level=1)
        _check_upper(source, changed, inner)
        reached([item for item in due if item[0] == end], edge)
        if progress:
            progress(end)
    return edge


def _check_upper(
    source: LeafSource, changed: dict[tuple[int, int], bytes], inner: dict[tuple[int, int], bytes]
) -> None:
    """Every tile above level 0 that became full must equal the claimed one."""
    for (level, index), data in sorted(changed.items()):
        if level == 0 or len(data) != TILE_WIDTH * HASH_SIZE:
            continue
        claimed, ref = _claim(source, level, index, TILE_WIDTH)
        if claimed != data:
            pos = _first_difference(claimed, data)
            span = TILE_WIDTH**level
            start = (index * TILE_WIDTH + pos) * span
            raise AuditError(
                f"{source.describe(ref)}: hash {pos} (entries {start}..{start + span - 1}) does not match the entries"
            )
        _check_inner(source, level, index, inner[(level, index)])


def _check_edge(source: LeafSource, edge: TreeEdge) -> None:
    """At the end: the claimed partial tiles above level 0 equal the rebuilt ones."""
    for level in range(1, edge.levels):
        rebuilt = edge.tile(level)
        if not rebuilt:
            continue
        index = (edge.size >> (8 * level)) // TILE_WIDTH
        claimed, ref = _claim(source, level, index, len(rebuilt) // HASH_SIZE)
        if claimed != rebuilt:
            pos = _first_difference(claimed, rebuilt)
            raise AuditError(f"{source.describe(ref)}: hash {pos} does not match the entries")


def _check_older_partials(fetch: Fetch, sizes: Iterable[int], size: int) -> None:
    """After the tree of `size` is verified: the partial tiles and entry bundles kept for the older
    checkpoints `sizes` (what their clients fetch) must be prefixes of the verified ones. An absent one
    is no error: a client then reads the full tile (c2sp.org/tlog-tiles lets logs delete them)."""
    verified: dict[TileRef, bytes] = {}
    bundles: dict[int, list[bytes]] = {}

    def current_entries(index: int) -> list[bytes]:
        """The entries of the verified bundle `index` (either form), read once for every older size."""
        if index not in bundles:
            now = TileRef(None, index, tile_width(0, index, size))
            found = _fetch_bundle(fetch, now)
            if found is None:
                raise AuditError(f"{now.path} is missing")
            bundles[index] = found[0]
        return bundles[index]

    def current(ref: TileRef) -> bytes:
        now = TileRef(ref.level, ref.index, tile_width(0 if ref.level is None else ref.level, ref.index, size))
        if now not in verified:
            data = fetch(now.path)
            if data is None:
                raise AuditError(f"{now.path} is missing")
            verified[now] = data
        return verified[now]

    for old in sorted({s for s in sizes if 0 < s < size}):
        for edge_ref in TreeEdge.edge_refs(old):
            assert edge_ref.level is not None
            refs = [edge_ref, TileRef(None, edge_ref.index, edge_ref.width)] if edge_ref.level == 0 else [edge_ref]
            for ref in refs:
                if not ref.width or ref.width == tile_width(edge_ref.level, ref.index, size):
                    continue  # no tile, or the very object verified at `size`
                if ref.level is None:
                    kept = _fetch_bundle(fetch, ref)
                    if kept is None:
                        continue
                    if not _same_entries(kept[0], current_entries(ref.index), current(TileRef(0, ref.index))):
                        path = redacted_bundle_path(ref.index, ref.width) if kept[1] else ref.path
                        raise AuditError(f"{path} (kept for checkpoint {old}) does not match the verified log")
                    continue
                data = fetch(ref.path)
                if data is not None and data != current(ref)[: ref.width * HASH_SIZE]:
                    raise AuditError(f"{ref.path} (kept for checkpoint {old}) does not match the verified log")


def _same_entries(kept: list[bytes], now: list[bytes], leaves: bytes) -> bool:
    """True if the entries of an older bundle are those of the verified one (`now`, with the leaf hashes of
    its level-0 tile), up to its width. An entry redacted since (empty now) matches its leaf hash; one that
    is empty in the older bundle only, or differs, does not (a redaction is never undone)."""
    for pos, (before, after) in enumerate(zip(kept, now, strict=False)):
        if before == after:
            continue
        if after or not before:
            return False
        if hashlib.sha256(b"\x00" + before).digest() != leaves[pos * HASH_SIZE : (pos + 1) * HASH_SIZE]:
            return False
    return True


def _check_accounted(redacted: Sequence[int], records: dict[int, list[tuple[int, int]]], report: AuditReport) -> None:
    """Every entry served in redacted form is listed by a redaction, retention or erasure record at a later
    index of the verified tree (a record only accounts for indices before it)."""
    spans = sorted((first, min(last, at - 1)) for at, ranges in records.items() for first, last in ranges if first < at)
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    starts = [first for first, _ in merged]
    for index in redacted:
        at = bisect_right(starts, index) - 1
        if at < 0 or index > merged[at][1]:
            raise AuditError(
                f"index {index}: unaccounted redaction (served without its body, and no redaction, retention "
                "or erasure record in the log lists it)"
            )
    listing = [at for at, ranges in sorted(records.items()) if any(_lists(redacted, a, b) for a, b in ranges)]
    report.redacted = len(redacted)
    report.redacted_ranges = index_ranges(redacted)
    report.redaction_records = listing


def _lists(redacted: Sequence[int], first: int, last: int) -> bool:
    """True if sorted `redacted` holds an index in [first, last]."""
    at = bisect_left(redacted, first)
    return at < len(redacted) and redacted[at] <= last


# --- local store ------------------------------------------------------------------


def default_workers() -> int:
    """Worker processes for an audit: one per core, none on a single core."""
    cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 8)


def audit_store(
    store: LogStore,
    verifier: Verifier,
    progress: Progress | None = None,
    *,
    workers: int = 0,
    required: Sequence[Verifier] = (),
) -> AuditReport:
    """Full audit of a local store; raises AuditError naming the first problem.

    Reads one snapshot of the store, so a log that keeps growing can be audited.
    With workers > 0 (and a SQLite store) the level-0 work runs in that many processes.
    Every checkpoint must also carry a valid signature by each `required` key (e.g. the log's ML-DSA-44 key).
    """
    with store.snapshot():
        return _audit(store, verifier, progress, workers, required)


def _audit(
    store: LogStore, verifier: Verifier, progress: Progress | None, workers: int, required: Sequence[Verifier] = ()
) -> AuditReport:
    report = AuditReport()
    size = store.size()
    report.size = size
    origin = store.origin
    roots: list[tuple[int, bytes]] = []

    def checkpoints() -> Iterator[tuple[int, bytes, str]]:
        for row_size, note in store.checkpoints():
            label = f"checkpoint {row_size}"
            try:
                signed = open_checkpoint(note, origin, [verifier], required=required)
            except NoteError as exc:
                raise AuditError(f"{label}: {exc}") from None
            if signed.checkpoint.size != row_size:
                raise AuditError(f"{label}: its note says size {signed.checkpoint.size}")
            report.checkpoints += 1
            report.latest = signed.checkpoint
            yield row_size, signed.checkpoint.root, label

    source = _StoreSource(store)
    expected = _Checkpoints(checkpoints())
    db = store.path if isinstance(store, SqliteStore) else None
    redacted: list[int] = []

    tiles = _collecting(_in_order(source, size, frozenset(), db, workers), redacted)
    edge = _rebuild(source, size, tiles, expected, progress, lambda cp_size, root, _: roots.append((cp_size, root)))
    if expected.pending is not None:
        pending_size = expected.pending[0]
        raise AuditError(
            f"index {size}: entry missing (checkpoint {pending_size} covers {pending_size} entries, "
            f"the log holds {size})"
        )
    _check_edge(source, edge)
    _check_no_stray_tiles(store, size)
    _check_consistency_proofs(store, size, roots)
    _check_redactions(store, size, redacted, report)
    latest = report.latest.size if report.latest else 0
    report.unsigned = size - latest
    if report.latest is None:
        report.notes.append("the log has no signed checkpoint")
    return report


def _check_redactions(store: LogStore, size: int, redacted: list[int], report: AuditReport) -> None:
    """Every redaction is of an entry of the tree (its kept leaf hash was checked there) and is listed
    by the logged record it names, which must itself be an unredacted entry of the tree."""
    rows = list(store.redactions(0, 2**63 - 1))
    stray = next((row for row in rows if row.index >= size), None)
    if stray is not None:
        raise AuditError(f"index {stray.index}: a redaction of an entry beyond the log (size {size})")
    seen = set(redacted)
    unchecked = next((row for row in rows if row.index not in seen), None)
    if unchecked is not None:
        raise AuditError(f"index {unchecked.index}: a redaction whose leaf hash the audit did not use")
    records: dict[int, list[tuple[int, int]] | None] = {}
    for row in rows:
        if row.record_index not in records:
            entry = store.entry(row.record_index) if row.record_index < size else None
            ranges = None if entry is None else record_ranges(entry)
            records[row.record_index] = None if ranges is None else sorted(ranges)
        ranges = records[row.record_index]
        if ranges is None:
            raise AuditError(
                f"index {row.index}: unaccounted redaction (it names index {row.record_index}, "
                "which holds no redaction, retention or erasure record)"
            )
        at = bisect_right(ranges, (row.index, 2**63)) - 1
        if at < 0 or not ranges[at][0] <= row.index <= ranges[at][1]:
            raise AuditError(
                f"index {row.index}: unaccounted redaction (the record at index {row.record_index} does not list it)"
            )
    report.redacted = len(rows)
    report.redacted_ranges = index_ranges(row.index for row in rows)
    report.redaction_records = sorted(records)


def _check_no_stray_tiles(store: LogStore, size: int) -> None:
    """Every stored tile and inner row belongs to the tree of `size`, at its width."""
    expected = {(ref.level, ref.index): ref.width for ref in tiles_for_size(size)}
    for level, index, width, has_inner in store.stored_tiles():
        want = expected.get((level, index))
        if want != width or (has_inner and want != TILE_WIDTH):
            path = TileRef(level, index).path
            if level == 0 and want is None and index == size // TILE_WIDTH:
                raise AuditError(f"index {size}: entry missing (stored tile {path} has a leaf hash for it)")
            raise AuditError(f"stored tile {path} ({width} hashes) is not part of the tree of {size} entries")


def _check_consistency_proofs(store: LogStore, size: int, roots: list[tuple[int, bytes]]) -> None:
    """Consistency proofs built from the (now verified) stored tiles link each checkpoint to the next."""
    reader = node_reader(store.read_tiles, size, store.read_inner)
    for (old, old_root), (new, new_root) in pairwise(roots):
        if old == 0:
            continue
        try:
            verify_consistency(old, new, consistency_proof(old, new, reader), old_root, new_root)
        except (ProofError, ValueError) as exc:
            raise AuditError(f"checkpoint {new}: not consistent with checkpoint {old}: {exc}") from None


# --- any tlog-tiles log ---------------------------------------------------------


Fetch = Callable[[str], bytes | None]
"""Fetch a path relative to the log prefix; None if it does not exist."""


@dataclass(frozen=True)
class TrustedState:
    """The last checkpoint a client verified, kept between runs."""

    origin: str
    size: int
    root: bytes


def verify_tiles_log(
    fetch: Fetch,
    origin: str,
    verifier: Verifier,
    *,
    extra_checkpoints: Iterable[bytes] = (),
    state: TrustedState | None = None,
    progress: Progress | None = None,
    report: AuditReport | None = None,
    required: Sequence[Verifier] = (),
) -> Checkpoint:
    """Verify a whole c2sp.org/tlog-tiles log and return its verified latest checkpoint.

    Checks the checkpoint signature, that every entry hashes into every served
    tile and into the checkpoint's root, that every extra checkpoint (e.g. an
    archive of older ones) and the trusted `state` are consistent with it.
    A sealtrail log's bundles that span redacted entries may come in redacted
    form (tiles.redacted_bundle_path); each such entry must be listed by a
    record later in the log. `report` receives the size and those entries.
    Every checkpoint must also carry a valid signature by each `required` key (e.g. the log's ML-DSA-44 key).
    """
    notes: list[tuple[str, bytes]] = []
    latest_note = fetch("checkpoint")
    if latest_note is not None:
        notes.append(("checkpoint", latest_note))
    for i, note in enumerate(extra_checkpoints):
        notes.append((f"checkpoint #{i + 1}", note))
    if not notes:
        raise AuditError("checkpoint is missing")
    verified: list[tuple[Checkpoint, str]] = []
    for label, note in notes:
        try:
            verified.append((open_checkpoint(note, origin, [verifier], required=required).checkpoint, label))
        except NoteError as exc:
            raise AuditError(f"{label}: {exc}") from None
    latest, latest_label = max(verified, key=lambda item: item[0].size)
    if latest_note is not None and verified[0][0].size != latest.size:
        raise AuditError(
            f"checkpoint: size {verified[0][0].size} is older than {latest_label} "
            f"(size {latest.size}); the log rolled back"
        )
    expected: list[tuple[int, bytes, str]] = [(cp.size, cp.root, label) for cp, label in verified]
    if state is not None:
        if state.origin != origin:
            raise AuditError(f"state file is for origin {state.origin!r}, not {origin!r}")
        if state.size > latest.size:
            raise AuditError(
                f"rollback: the log's checkpoint has size {latest.size}, but this client already saw size {state.size}"
            )
        expected.append((state.size, state.root, f"previously seen checkpoint {state.size} ({b64encode(state.root)})"))
    expected.sort(key=lambda item: item[0])

    size = latest.size
    keep = frozenset(s // TILE_WIDTH for s, _, _ in expected if s % TILE_WIDTH and s < size)
    source = _FetchSource(fetch)
    redacted: list[int] = []
    tiles = _collecting(_in_order(source, size, keep, None, 0), redacted)
    edge = _rebuild(source, size, tiles, _Checkpoints(expected), progress)
    _check_edge(source, edge)
    _check_older_partials(fetch, [s for s, _, _ in expected], size)
    outcome = report if report is not None else AuditReport()
    outcome.size, outcome.latest = size, latest
    _check_accounted(redacted, source.records, outcome)
    return latest
