"""Audits that trust nothing but the log's public key.

`audit_store` checks a local store; `verify_tiles_log` checks any
c2sp.org/tlog-tiles log (a directory or an http(s) URL), ours or not. Both
stream: they rebuild the tree from the entry bytes one tile at a time, compare
every stored or served tile with the rebuilt one, compare every checkpoint's
root with the rebuilt root at its size, and stop at the first discrepancy,
naming the index, tile or checkpoint at fault. Memory stays O(tree height).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from .checkpoint import Checkpoint, open_checkpoint
from .merkle import HASH_SIZE, ProofError, consistency_proof, verify_consistency
from .note import NoteError, Verifier, b64encode
from .store.base import LogStore, StoreError
from .tiles import TILE_WIDTH, TileRef, TreeEdge, decode_bundle, node_reader, tile_width

__all__ = ["AuditError", "AuditReport", "TreeChecker", "audit_store", "verify_tiles_log"]

Progress = Callable[[int], None]
"""Called with the number of entries checked so far."""


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


def _first_difference(a: bytes, b: bytes) -> int:
    """Index of the first differing 32-byte hash of two tiles."""
    for i in range(0, max(len(a), len(b)), HASH_SIZE):
        if a[i : i + HASH_SIZE] != b[i : i + HASH_SIZE]:
            return i // HASH_SIZE
    raise ValueError("tiles are equal")


TileSource = Callable[[int, int, int], bytes | None]
"""(level, index, width) -> the claimed tile bytes (at least width hashes), or None if absent."""


class TreeChecker:
    """Rebuilds a tree leaf by leaf and holds claimed tiles and roots to account.

    Feed it consecutive entries; it raises AuditError at the first leaf whose
    hash differs from the claimed level-0 tile, the first upper tile that
    differs from the rebuilt one, or the first expected root that does not
    match. `final_size` fixes the width each claimed tile is asked for.
    """

    def __init__(self, final_size: int, claimed_tile: TileSource, describe: Callable[[TileRef], str]) -> None:
        self.final_size = final_size
        self.edge = TreeEdge()
        self._claimed = claimed_tile
        self._describe = describe

    def _claim(self, level: int, index: int) -> tuple[bytes, TileRef]:
        width = tile_width(level, index, self.final_size)
        ref = TileRef(level, index, width or 1)
        data = self._claimed(level, index, width) if width else None
        if data is None:
            raise AuditError(f"{self._describe(ref)} is missing")
        if len(data) != width * HASH_SIZE:
            raise AuditError(f"{self._describe(ref)} is {len(data)} bytes, want {width * HASH_SIZE}")
        return data, ref

    def feed_tile(self, tile_index: int, entries: list[bytes]) -> None:
        """Add the entries of level-0 tile `tile_index` (all of them, or the final partial run)."""
        first = tile_index * TILE_WIDTH
        if self.edge.size != first:
            raise AuditError(f"index {self.edge.size}: entry missing")
        leaves = [hashlib.sha256(b"\x00" + entry).digest() for entry in entries]
        rebuilt = b"".join(leaves)
        claimed, ref = self._claim(0, tile_index)
        if claimed != rebuilt:
            pos = _first_difference(claimed, rebuilt)
            if pos >= len(claimed) // HASH_SIZE:
                raise AuditError(
                    f"index {first + pos}: entry is not in the tree ({self._describe(ref)} ends before it)"
                )
            if pos >= len(leaves):
                raise AuditError(f"index {first + pos}: entry missing ({self._describe(ref)} has a leaf hash for it)")
            raise AuditError(f"index {first + pos}: entry bytes do not match the leaf hash in {self._describe(ref)}")
        changed = self.edge.append(leaves)
        for (level, index), data in sorted(changed.items()):
            if level == 0 or len(data) != TILE_WIDTH * HASH_SIZE:
                continue
            claimed, ref = self._claim(level, index)
            if claimed != data:
                pos = _first_difference(claimed, data)
                span = TILE_WIDTH**level
                start = (index * TILE_WIDTH + pos) * span
                raise AuditError(
                    f"{self._describe(ref)}: hash {pos} (entries {start}..{start + span - 1}) "
                    "does not match the entries"
                )

    def check_edge(self) -> None:
        """At the end: the claimed partial tiles of every level equal the rebuilt ones."""
        for level in range(self.edge.levels):
            rebuilt = self.edge.tile(level)
            if not rebuilt:
                continue
            index = (self.edge.size >> (8 * level)) // TILE_WIDTH
            claimed, ref = self._claim(level, index)
            if claimed != rebuilt:
                pos = _first_difference(claimed, rebuilt)
                raise AuditError(f"{self._describe(ref)}: hash {pos} does not match the entries")


def _iter_tile_chunks(entries: Iterable[tuple[int, bytes]], size: int) -> Iterator[tuple[int, list[bytes]]]:
    """Group (index, entry) rows into level-0 tiles, checking that no index is skipped."""
    expected = 0
    chunk: list[bytes] = []
    for index, entry in entries:
        if index != expected:
            raise AuditError(f"index {expected}: entry missing")
        chunk.append(bytes(entry))
        expected += 1
        if len(chunk) == TILE_WIDTH:
            yield (expected - 1) // TILE_WIDTH, chunk
            chunk = []
    if expected != size:
        raise AuditError(f"index {expected}: entry missing")
    if chunk:
        yield expected // TILE_WIDTH, chunk


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


def _rebuild(
    checker: TreeChecker,
    chunks: Iterable[tuple[int, list[bytes]]],
    expected: _Checkpoints,
    progress: Progress | None,
    on_root: Callable[[int, bytes, str], None] | None = None,
) -> None:
    """Feed every tile of entries, checking each expected root as its size is reached."""
    for size, root, label in expected.due_within(0):
        _check_root(checker.edge, size, root, label)
        if on_root:
            on_root(size, root, label)
    for tile_index, entries in chunks:
        first = tile_index * TILE_WIDTH
        due = expected.due_within(first + len(entries))
        if not due:
            checker.feed_tile(tile_index, entries)
        else:
            # Split the tile at each checkpoint size inside it; the claimed
            # level-0 tile is compared once, over the whole chunk.
            probe = checker.edge.copy()
            for size, root, label in due:
                probe.append([hashlib.sha256(b"\x00" + e).digest() for e in entries[probe.size - first : size - first]])
                _check_root(probe, size, root, label)
                if on_root:
                    on_root(size, root, label)
            checker.feed_tile(tile_index, entries)
        if progress:
            progress(first + len(entries))


def _check_root(edge: TreeEdge, size: int, root: bytes, label: str) -> None:
    if edge.size != size:
        raise AuditError(f"{label}: the log has only {edge.size} entries, the checkpoint covers {size}")
    if edge.root() != root:
        raise AuditError(f"{label}: root hash does not match the entries; history before index {size} was rewritten")


# --- local store ------------------------------------------------------------------


def audit_store(store: LogStore, verifier: Verifier, progress: Progress | None = None) -> AuditReport:
    """Full audit of a local store; raises AuditError naming the first problem."""
    report = AuditReport()
    size = store.size()
    report.size = size
    origin = store.origin
    reader = node_reader(store.read_tiles, size)
    previous: list[tuple[int, bytes]] = []

    def checkpoints() -> Iterator[tuple[int, bytes, str]]:
        for row_size, note in store.checkpoints():
            label = f"checkpoint {row_size}"
            try:
                signed = open_checkpoint(note, origin, [verifier])
            except NoteError as exc:
                raise AuditError(f"{label}: {exc}") from None
            if signed.checkpoint.size != row_size:
                raise AuditError(f"{label}: its note says size {signed.checkpoint.size}")
            report.checkpoints += 1
            report.latest = signed.checkpoint
            yield row_size, signed.checkpoint.root, label

    def consistent(cp_size: int, root: bytes, label: str) -> None:
        if previous and previous[0][0] > 0:
            old_size, old_root = previous[0]
            try:
                proof = consistency_proof(old_size, cp_size, reader)
                verify_consistency(old_size, cp_size, proof, old_root, root)
            except (ProofError, ValueError) as exc:
                raise AuditError(f"{label}: not consistent with checkpoint {old_size}: {exc}") from None
        previous[:] = [(cp_size, root)]

    expected = _Checkpoints(checkpoints())
    checker = TreeChecker(size, _store_tiles(store), lambda ref: f"stored tile {ref.path}")
    _rebuild(checker, _iter_tile_chunks(store.entries(0, size), size), expected, progress, consistent)
    if expected.pending is not None:
        pending_size = expected.pending[0]
        raise AuditError(
            f"index {size}: entry missing (checkpoint {pending_size} covers {pending_size} entries, "
            f"the log holds {size})"
        )
    checker.check_edge()
    beyond = TileRef(0, size // TILE_WIDTH, size % TILE_WIDTH + 1)
    if _store_tiles(store)(0, beyond.index, beyond.width) is not None:
        raise AuditError(f"index {size}: entry missing (stored tile {beyond.path} has a leaf hash for it)")
    latest = report.latest.size if report.latest else 0
    report.unsigned = size - latest
    if report.latest is None:
        report.notes.append("the log has no signed checkpoint")
    return report


def _store_tiles(store: LogStore) -> TileSource:
    def read(level: int, index: int, width: int) -> bytes | None:
        try:
            return store.read_tiles([TileRef(level, index, width)])[0]
        except StoreError:
            return None

    return read


# --- any tlog-tiles log ---------------------------------------------------------


class FetchError(Exception):
    """A resource of a tiles log could not be fetched."""


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
) -> Checkpoint:
    """Verify a whole c2sp.org/tlog-tiles log and return its verified latest checkpoint.

    Checks the checkpoint signature, that every entry hashes into every served
    tile and into the checkpoint's root, that every extra checkpoint (e.g. an
    archive of older ones) and the trusted `state` are consistent with it.
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
            verified.append((open_checkpoint(note, origin, [verifier]).checkpoint, label))
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

    def claimed(level: int, index: int, width: int) -> bytes | None:
        return fetch(TileRef(level, index, width).path)

    def chunks() -> Iterator[tuple[int, list[bytes]]]:
        for index in range((size + TILE_WIDTH - 1) // TILE_WIDTH):
            width = tile_width(0, index, size)
            ref = TileRef(None, index, width)
            data = fetch(ref.path)
            if data is None:
                raise AuditError(f"{ref.path} is missing")
            try:
                yield index, decode_bundle(data, width)
            except ValueError as exc:
                raise AuditError(f"{ref.path}: {exc}") from None

    checker = TreeChecker(size, claimed, lambda ref: ref.path)
    _rebuild(checker, chunks(), _Checkpoints(expected), progress)
    checker.check_edge()
    return latest
