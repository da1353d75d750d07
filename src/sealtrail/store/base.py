"""The storage interface every engine implements (SQLite now, PostgreSQL later).

Ownership: exactly one sequencer (sealtrail.log.Log) calls the writer methods
of a log at a time; any number of readers may call the others concurrently.
An engine must make `append_batch` atomic and durable before it returns, and
must refuse, inside the database itself, any change to a stored event.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..tiles import TileRef

__all__ = ["DuplicateKeyError", "ExistingEvent", "LogStore", "StoreError"]


class StoreError(RuntimeError):
    """The store is missing, damaged, or refused an operation."""


class DuplicateKeyError(StoreError):
    """append_batch met a dedup key that is already stored; nothing was written."""


@dataclass(frozen=True, slots=True)
class ExistingEvent:
    """An event already in the log, found by one of its dedup keys."""

    index: int
    entry: bytes


class LogStore(Protocol):
    """Entries, tree tiles, checkpoints and blobs of one log."""

    # -- identity --------------------------------------------------------
    @property
    def origin(self) -> str: ...

    # -- writer side: the one sequencer ----------------------------------
    def size(self) -> int:
        """Number of entries committed (the tree size the tiles describe)."""
        ...

    def read_tiles(self, refs: Sequence[TileRef]) -> list[bytes]:
        """The first `width` hashes of each tile; raises StoreError if one is short."""
        ...

    def snapshot(self) -> AbstractContextManager[None]:
        """Within the block, this thread's reads see one consistent state."""
        ...

    def stored_tiles(self) -> Iterator[tuple[int, int, int, bool]]:
        """(level, index, width, has inner levels) of every stored hash tile."""
        ...

    def tile_bytes(self, level: int, index: int) -> bytes | None:
        """A hash tile as stored now (any width), or None."""
        ...

    def read_inner(self, refs: Sequence[TileRef]) -> list[bytes | None]:
        """The stored inner levels (tiles.tile_inner) of full tiles; None where absent."""
        ...

    def find_existing(self, keys: Sequence[bytes]) -> dict[bytes, ExistingEvent]:
        """Stored events holding any of these 16-byte dedup keys, by key."""
        ...

    def append_batch(
        self,
        first_index: int,
        entries: Sequence[bytes],
        keys: Sequence[tuple[bytes, int]],
        tiles: Mapping[tuple[int, int], bytes],
        blobs: Sequence[tuple[str, bytes]],
        inner: Mapping[tuple[int, int], bytes] | None = None,
    ) -> None:
        """Atomically and durably add entries at first_index.., their (key, index) dedup
        keys, changed tiles, the inner levels of tiles that became full, and blobs.
        Raises DuplicateKeyError, writing nothing, if a key is already stored."""
        ...

    def add_checkpoint(self, size: int, note: bytes) -> None:
        """Record a signed checkpoint (one per tree size; a repeat is ignored)."""
        ...

    # -- reader side -----------------------------------------------------
    def latest_checkpoint(self) -> tuple[int, bytes] | None: ...

    def checkpoint_at(self, size: int) -> bytes | None: ...

    def checkpoints(self) -> Iterator[tuple[int, bytes]]:
        """Every stored checkpoint, by increasing size."""
        ...

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(index, entry) for stored indices in [start, end), in order; gaps are skipped."""
        ...

    def entry(self, index: int) -> bytes | None: ...

    def index_of(self, key: bytes) -> int | None:
        """Index of the event with this 16-byte id (or delivery-derived id)."""
        ...

    def blob(self, digest: str) -> bytes | None: ...

    def close(self) -> None: ...
