"""The storage interface every engine implements (SQLite now, PostgreSQL later).

Ownership: exactly one sequencer (sealtrail.log.Log) calls the writer methods
of a log at a time; any number of readers may call the others concurrently.
An engine must make `append_batch` atomic and durable before it returns, and
must refuse, inside the database itself, any change to a stored event.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from ..search import IndexRow, Query, SearchHit
from ..tiles import TileRef

__all__ = ["DuplicateKeyError", "ExistingEvent", "LogStore", "RedactedError", "Redaction", "StoreError"]


class StoreError(RuntimeError):
    """The store is missing, damaged, or refused an operation."""


class DuplicateKeyError(StoreError):
    """append_batch met a dedup key that is already stored; nothing was written."""


@dataclass(frozen=True, slots=True)
class Redaction:
    """The record left where an event's body was removed (see docs/retention.md).

    The leaf hash stays in the tree; `record_index` is the logged redaction,
    retention or erasure event that accounts for the removal.
    """

    index: int
    leaf_hash: bytes
    event_id: str
    reason: str
    record_index: int
    redacted_at: str

    def to_json(self) -> dict[str, object]:
        return {
            "index": self.index,
            "leaf_hash": base64.b64encode(self.leaf_hash).decode(),
            "id": self.event_id,
            "reason": self.reason,
            "record_index": self.record_index,
            "redacted_at": self.redacted_at,
        }


class RedactedError(StoreError):
    """The entry's body was removed by a logged redaction; its leaf hash is still in the tree."""

    def __init__(self, redaction: Redaction) -> None:
        super().__init__(
            f"entry {redaction.index} was redacted at {redaction.redacted_at} ({redaction.reason}); "
            f"see the record at index {redaction.record_index}"
        )
        self.redaction = redaction


@dataclass(frozen=True, slots=True)
class ExistingEvent:
    """An event already in the log, found by one of its dedup keys."""

    index: int
    entry: bytes
    """Empty when the body was redacted (then `redaction` is set)."""
    redaction: Redaction | None = None


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
        index_rows: Sequence[IndexRow | None] | None = None,
    ) -> None:
        """Atomically and durably add entries at first_index.., their (key, index) dedup
        keys, changed tiles, the inner levels of tiles that became full, blobs, and the
        entries' search rows (search.index_row of each entry; the store makes those not given).
        Raises DuplicateKeyError, writing nothing, if a key is already stored."""
        ...

    def add_checkpoint(self, size: int, note: bytes) -> None:
        """Record a signed checkpoint (one per tree size; a repeat is ignored)."""
        ...

    # -- witness cosignatures: written by sealtrail.witnessing, append-only ------
    def add_cosignature(self, size: int, key_name: str, key_id: int, line: str) -> bool:
        """Keep a verified cosignature line on the checkpoint of `size` (one per key; False if already kept)."""
        ...

    def cosignatures(self, size: int) -> list[str]:
        """The kept cosignature lines on the checkpoint of `size`."""
        ...

    def latest_cosigned(self, key_name: str, key_id: int) -> int | None:
        """The largest checkpoint size holding a cosignature by this key."""
        ...

    def add_witnessed(self, size: int, policy: str) -> bool:
        """Record that the checkpoint of `size` met the witness `policy` (once; False if already recorded)."""
        ...

    def witnessed(self, size: int) -> str | None:
        """The policy the checkpoint of `size` met, if it did."""
        ...

    def latest_witnessed(self) -> tuple[int, str] | None:
        """The largest checkpoint that met a witness policy, and the policy."""
        ...

    # -- RFC 3161 time-stamps: written by sealtrail.timestamping, append-only ------
    def add_timestamp(self, size: int, reply: bytes, gen_time: str) -> bool:
        """Keep a verified time-stamp reply (DER TimeStampResp) on the checkpoint of `size` (once; False if kept)."""
        ...

    def timestamp(self, size: int) -> bytes | None:
        """The kept time-stamp reply on the checkpoint of `size`."""
        ...

    def latest_timestamp(self) -> tuple[int, str] | None:
        """The largest time-stamped checkpoint size and its genTime (ISO 8601)."""
        ...

    def redact(
        self,
        first_index: int,
        entries: Sequence[bytes],
        keys: Sequence[tuple[bytes, int]],
        tiles: Mapping[tuple[int, int], bytes],
        inner: Mapping[tuple[int, int], bytes] | None,
        indices: Sequence[int],
        reason: str,
    ) -> list[Redaction]:
        """In one transaction: append the entries (the logged record of this redaction) as append_batch
        does, and remove the bodies of `indices` (each below first_index) keeping their leaf hashes,
        with their out-of-line blobs that no stored event still references. Raises StoreError, writing
        nothing, if one of them has no stored body. On return no removed byte is left in the engine's
        files (free pages, write-ahead log)."""
        ...

    # -- reader side -----------------------------------------------------
    def latest_checkpoint(self) -> tuple[int, bytes] | None: ...

    def checkpoint_at(self, size: int) -> bytes | None: ...

    def checkpoints(self, after: int = -1) -> Iterator[tuple[int, bytes]]:
        """Every stored checkpoint of size > `after`, by increasing size."""
        ...

    def entries(self, start: int, end: int) -> Iterator[tuple[int, bytes]]:
        """(index, entry) for stored indices in [start, end), in order; gaps are skipped."""
        ...

    def entry(self, index: int) -> bytes | None: ...

    def index_of(self, key: bytes) -> int | None:
        """Index of the event with this 16-byte id (or delivery-derived id)."""
        ...

    def blob(self, digest: str) -> bytes | None: ...

    def search(self, query: Query, *, after: int = -1, before: int | None = None, limit: int = 100) -> list[SearchHit]:
        """Events matching `query` (sealtrail.search) with index in (after, before), in index order."""
        ...

    def redaction(self, index: int) -> Redaction | None:
        """The redaction of this index, if its body was removed."""
        ...

    def redactions(self, start: int, end: int) -> Iterator[Redaction]:
        """Redactions of indices in [start, end), in order."""
        ...

    def close(self) -> None: ...
