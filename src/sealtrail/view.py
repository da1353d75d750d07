"""Read-only access to a stored log: checkpoints, entries, tiles and proofs.

Proofs are computed from the stored tiles in O(log n) tile reads; nothing
here writes. Safe to use from any thread while the sequencer appends.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from .merkle import Node, NodeReader, ProofError, consistency_proof, inclusion_proof, leaf_hash
from .store.base import LogStore, RedactedError, StoreError
from .tiles import TILE_WIDTH, TileRef, encode_bundle, node_reader, tile_width
from .tlogproof import TlogProof

__all__ = ["LogView", "NotYetSigned"]


class NotYetSigned(StoreError):
    """What was asked for depends on entries that no signed checkpoint covers yet."""


class LogView:
    """Queries over one LogStore; every size argument must be a checkpointed size or smaller.

    Node hashes of complete subtrees never change, so the view keeps the most
    recently used ones: proofs against the same checkpoint share the nodes on
    the tree's right edge, and popular subtrees stay warm.
    """

    def __init__(self, store: LogStore, cache_nodes: int = 1 << 16) -> None:
        self.store = store
        self._cache: OrderedDict[Node, bytes] = OrderedDict()
        self._cache_limit = cache_nodes
        self._lock = threading.Lock()

    def _reader(self, size: int) -> NodeReader:
        stored = node_reader(self.store.read_tiles, size, self.store.read_inner)

        def read(nodes: Sequence[Node]) -> list[bytes]:
            with self._lock:
                known = {node: self._cache[node] for node in nodes if node in self._cache}
            missing = [node for node in nodes if node not in known]
            found = dict(zip(missing, stored(missing), strict=True)) if missing else {}
            with self._lock:
                for node, value in (known | found).items():
                    self._cache[node] = value
                    self._cache.move_to_end(node)
                while len(self._cache) > self._cache_limit:
                    self._cache.popitem(last=False)
            return [known[node] if node in known else found[node] for node in nodes]

        return read

    def latest_checkpoint(self) -> tuple[int, bytes]:
        """The latest checkpoint, with its witnesses' cosignatures."""
        latest = self.store.latest_checkpoint()
        if latest is None:
            raise StoreError("the log has no signed checkpoint yet")
        return latest[0], self.cosigned(*latest)

    def checkpoint(self, size: int | None = None) -> tuple[int, bytes]:
        """The checkpoint of `size` (default: the latest), with its witnesses' cosignatures."""
        if size is None:
            return self.latest_checkpoint()
        note = self.store.checkpoint_at(size)
        if note is None:
            raise StoreError(f"no checkpoint was signed at size {size}")
        return size, self.cosigned(size, note)

    def cosigned(self, size: int, note: bytes) -> bytes:
        """The log-signed note of `size` followed by the kept cosignature lines: still one valid signed note."""
        return note + "".join(self.store.cosignatures(size)).encode("utf-8")

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return inclusion_proof(index, size, self._reader(size))

    def leaf_hashes(self, indices: Sequence[int], size: int) -> list[bytes]:
        """The leaf hashes stored in the tree at `indices` (each < size): they outlive a redacted body."""
        return list(self._reader(size)([(0, index) for index in indices]))

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """Proof that tree `old` is a prefix of tree `new`; `new` may not pass the latest checkpoint."""
        latest, _ = self.latest_checkpoint()
        if new > latest:
            raise ProofError(f"size {new} is beyond the latest checkpoint (size {latest})")
        return consistency_proof(old, new, self._reader(new))

    def entry(self, index: int) -> bytes:
        """The entry's bytes; RedactedError if a logged redaction removed them."""
        entry = self.store.entry(index)
        if entry is None:
            redaction = self.store.redaction(index)
            if redaction is not None:
                raise RedactedError(redaction)
            raise StoreError(f"no entry at index {index}")
        return entry

    def leaf_hash(self, index: int) -> bytes:
        """The entry's leaf hash, which a redaction keeps."""
        entry = self.store.entry(index)
        if entry is not None:
            return leaf_hash(entry)
        redaction = self.store.redaction(index)
        if redaction is None:
            raise StoreError(f"no entry at index {index}")
        return redaction.leaf_hash

    def tlog_proof(self, index: int, size: int | None = None) -> TlogProof:
        """A c2sp.org/tlog-proof for entry `index` against the checkpoint of `size`."""
        size, note = self.checkpoint(size)
        if not 0 <= index < size:
            raise ProofError(f"index {index} is not covered by the checkpoint of size {size}")
        leaf = self.leaf_hash(index)
        return TlogProof(index, self.inclusion_proof(index, size), note, extra=leaf)

    def tile(self, level: int, index: int, width: int, size: int) -> bytes:
        """A hash tile as served at tree `size`; width must match that size."""
        if tile_width(level, index, size) != width:
            raise StoreError(f"tile {TileRef(level, index, width).path} does not exist at size {size}")
        return self.store.read_tiles([TileRef(level, index, width)])[0]

    def entry_bundle(self, index: int, width: int, size: int) -> bytes:
        """An entry bundle as served at tree `size`; RedactedError if it spans a redacted entry (the
        bundle can no longer be served as signed, while its hash tile still is)."""
        if tile_width(0, index, size) != width:
            raise StoreError(f"entry bundle {TileRef(None, index, width).path} does not exist at size {size}")
        start = index * TILE_WIDTH
        entries = [entry for _, entry in self.store.entries(start, start + width)]
        if len(entries) != width:
            redacted = next(self.store.redactions(start, start + width), None)
            if redacted is not None:
                raise RedactedError(redacted)
            raise StoreError(f"entries {start}..{start + width} are incomplete")
        return encode_bundle(entries)

    def redacted_bundle(self, index: int, width: int, size: int, signed: int) -> bytes | None:
        """The bundle of tiles.redacted_bundle_path at tree `size`: redacted entries zero-length; None if the
        bundle spans no redacted entry (then entry_bundle serves it).

        A reader checks each emptied entry against a record in the tree of a signed checkpoint, so this
        raises NotYetSigned while the record of one is beyond the checkpoint of size `signed`."""
        if tile_width(0, index, size) != width:
            raise StoreError(f"entry bundle {TileRef(None, index, width).path} does not exist at size {size}")
        start = index * TILE_WIDTH
        redactions = list(self.store.redactions(start, start + width))
        if not redactions:
            return None
        unsigned = next((r for r in redactions if r.record_index >= signed), None)
        if unsigned is not None:
            raise NotYetSigned(
                f"entry {unsigned.index} was redacted by the record at index {unsigned.record_index}, which no "
                f"signed checkpoint covers yet (latest size {signed}); try again after the next checkpoint"
            )
        redacted = {r.index for r in redactions}
        bodies = dict(self.store.entries(start, start + width))
        if any(i not in bodies and i not in redacted for i in range(start, start + width)):
            raise StoreError(f"entries {start}..{start + width} are incomplete")
        return encode_bundle(b"" if i in redacted else bodies[i] for i in range(start, start + width))
