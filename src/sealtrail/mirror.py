"""A verified copy of a c2sp.org/tlog-tiles log, kept up to date through a TileSink.

Invariant: every object in the copy was checked against a signed checkpoint
that extends every checkpoint the copy held before, and the copy's
`checkpoint` names a tree whose every tile and entry bundle is stored.

Each poll (or a checkpoint handed in by a witness request) is mirrored
incrementally: only the new entry bundles and the tiles they change are
fetched; the new entries are hashed and appended to the copy's own TreeEdge;
every computed tile must equal the source's, and the resulting root the
signed one, which alone proves the new checkpoint extends the copy. Nothing
is written before that; then bundles and tiles, the checkpoint last.

A fork (two signed checkpoints that cannot both be true) is written to
`fork-evidence/` in the copy and stops the mirror; it refuses to start again
until an operator moves that evidence away.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from .cosignature import CosignatureSigner
from .fetch import TilesSource
from .follow import (
    EVIDENCE_FILE,
    BadTiles,
    CheckpointConflict,
    Follower,
    Kind,
    Observation,
    SourceUnavailable,
    check_extension,
    same_size_fork,
)
from .merkle import EMPTY_ROOT, HASH_SIZE, ProofError, consistency_proof, tree_hash
from .note import Ed25519Signer, NoteError, Signature, Verifier, b64encode, parse_note, sign_note
from .objectstore import TileSink, WriteOnceError
from .tiles import TILE_WIDTH, TileRef, TreeEdge, decode_bundle, node_reader, redacted_bundle_path, tile_width

__all__ = ["FORK_DIR", "PENDING_CHECKPOINT", "Mirror", "MirrorError", "follow"]

log = logging.getLogger(__name__)

FORK_DIR = "fork-evidence"
"""Where the copy keeps the evidence of a fork (both signed checkpoints and evidence.json)."""
PENDING_CHECKPOINT = "checkpoint.pending"
"""The checkpoint whose objects are being written; names who vouched for them if a later write conflicts."""
_TILE_BYTES = TILE_WIDTH * HASH_SIZE
_sha256 = hashlib.sha256


def _leaves(entries: list[bytes], tile: bytes, redacted_form: bool) -> list[bytes]:
    """Leaf hashes of a bundle's entries; in a bundle served in redacted form an empty entry's comes from its
    level-0 tile (the checkpoint's root vouches for it, not the body, which is gone)."""
    return [
        tile[pos * HASH_SIZE : (pos + 1) * HASH_SIZE]
        if redacted_form and not entry
        else _sha256(b"\x00" + entry).digest()
        for pos, entry in enumerate(entries)
    ]


class MirrorError(RuntimeError):
    """The copy cannot be used: fork evidence present, corrupt, or of another log."""


class _Mismatch(Exception):
    """Verified data from the source disagrees with the copy or with the signed root."""


class _Staged:
    """Objects verified as one step, in write order; held in memory up to `limit` bytes, then in a temp file."""

    def __init__(self, limit: int = 64 << 20) -> None:
        self._limit = limit
        self._held = 0
        self._memory: list[tuple[str, bytes]] = []
        self._spilled: list[tuple[str, int, int]] = []
        self._file: io.BufferedRandom | None = None

    def add(self, path: str, data: bytes) -> None:
        if self._file is None and self._held + len(data) <= self._limit:
            self._memory.append((path, data))
            self._held += len(data)
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by close())
        offset = self._file.seek(0, io.SEEK_END)
        self._file.write(data)
        self._spilled.append((path, offset, len(data)))

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        yield from self._memory
        if self._file is not None:
            for path, offset, length in self._spilled:
                self._file.seek(offset)
                yield path, self._file.read(length)

    def __len__(self) -> int:
        return len(self._memory) + len(self._spilled)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


@dataclass(frozen=True)
class _Growth:
    """A verified step from the copy's tree to a new signed checkpoint, not yet written."""

    new: SignedCheckpoint
    edge: TreeEdge
    staged: _Staged


def _first_difference(a: bytes, b: bytes) -> int:
    for i in range(0, max(len(a), len(b)), HASH_SIZE):
        if a[i : i + HASH_SIZE] != b[i : i + HASH_SIZE]:
            return i // HASH_SIZE
    return -1


class Mirror(Follower):
    """Follows one log into one sink. Thread-safe: polls and witness requests take turns."""

    def __init__(
        self,
        source: TilesSource,
        sink: TileSink,
        origin: str,
        verifier: Verifier,
        *,
        witness: Ed25519Signer | None = None,
        archive_checkpoints: bool = False,
        source_name: str = "",
        workers: int = 8,
    ) -> None:
        super().__init__(source, origin, verifier, source_name, workers)
        self.sink = sink
        self.witness = witness
        self.archive_checkpoints = archive_checkpoints
        self.stopped = False
        """Set once a fork was found: the mirror follows no further."""
        self.lock = threading.RLock()
        """Held by each poll and witness request: one step at a time."""
        evidence = f"{FORK_DIR}/{EVIDENCE_FILE}"
        if sink.get(evidence) is not None:
            raise MirrorError(
                f"{sink.describe()} holds fork evidence ({evidence}); the mirror will not follow this log until an "
                f"operator has examined it and moved {FORK_DIR}/ away"
            )
        self.held, self.edge = self._load()
        self._show_trusted()

    @property
    def trusted_checkpoint(self) -> Checkpoint | None:
        return self.held.checkpoint if self.held else None

    @property
    def size(self) -> int:
        return self.edge.size

    def _load(self) -> tuple[SignedCheckpoint | None, TreeEdge]:
        """The copy's checkpoint and the right edge of its tree, checked against each other."""
        note = self.sink.get("checkpoint")
        if note is None:
            return None, TreeEdge()
        where = self.sink.describe()
        try:
            held = open_checkpoint(note, self.origin, [self.verifier])
        except NoteError as exc:
            raise MirrorError(f"the checkpoint in {where} does not verify: {exc}") from None
        size = held.checkpoint.size
        tiles = []
        for ref in TreeEdge.edge_refs(size):
            data = self.sink.get(ref.path) if ref.width else b""
            if data is None:
                raise MirrorError(f"{where} lacks {ref.path}, needed by its checkpoint {size}")
            tiles.append(data)
        try:
            edge = TreeEdge(size, tiles)
        except ValueError as exc:
            raise MirrorError(f"{where}: {exc}") from None
        if edge.root() != held.checkpoint.root:
            raise MirrorError(f"{where}: its edge tiles do not hash to its checkpoint's root; the copy is corrupt")
        return held, edge

    # --- polling --------------------------------------------------------------------------------

    def poll(self) -> Observation:
        """Fetch the source's checkpoint and mirror it if it verifies and extends the copy."""
        with self.lock:
            observation = self._poll()
        self.status.record(observation)
        return observation

    def advance(self, new: SignedCheckpoint) -> Observation:
        """Mirror a given signed checkpoint (e.g. from a witness request), fetching its tree from the source."""
        with self.lock:
            self.fetcher.reset()
            observation = self._stopped() or self._advance(new)
        self.status.record(observation)
        return observation

    def _stopped(self) -> Observation | None:
        if not self.stopped:
            return None
        return self._observation(Kind.FORK, f"stopped after a fork; evidence in {self.sink.describe()}/{FORK_DIR}")

    def _poll(self) -> Observation:
        stopped = self._stopped()
        if stopped:
            return stopped
        new = self._fetch_checkpoint()
        return new if isinstance(new, Observation) else self._advance(new)

    def _advance(self, new: SignedCheckpoint) -> Observation:
        size, held_size = new.checkpoint.size, self.edge.size
        if size < held_size:
            return self._rollback(new)
        if size == held_size and (self.held is not None or size > 0):  # an empty log's first checkpoint is stored
            if new.checkpoint.root == self._held_checkpoint().root:
                return self._observation(Kind.OK, f"size {size}: unchanged", new)
            return self._fork(same_size_fork(self._held_checkpoint(), self._held_note(), new), new)
        try:
            growth = self._verify_growth(new)
        except SourceUnavailable as exc:
            return self._observation(Kind.UNAVAILABLE, f"checkpoint {size}: {exc}", new)
        except (BadTiles, _Mismatch) as exc:
            return self._explain(new, str(exc))
        unfinished = self.sink.get(PENDING_CHECKPOINT)
        try:
            self._commit(growth)
        except WriteOnceError as exc:
            return self._write_conflict(new, unfinished, exc)
        except OSError as exc:  # the copy stays valid at its checkpoint, which is written last
            return self._observation(Kind.UNAVAILABLE, f"could not write to {self.sink.describe()}: {exc}", new)
        finally:
            growth.staged.close()
        return self._observation(
            Kind.OK, f"size {size}: mirrored and verified, extends size {held_size}", new, changed=True
        )

    def _held_checkpoint(self) -> Checkpoint:
        return self.held.checkpoint if self.held else Checkpoint(self.origin, 0, EMPTY_ROOT)

    def _held_note(self) -> bytes | None:
        return self.held.raw if self.held else None

    # --- verifying a step -----------------------------------------------------------------------

    def _verify_growth(self, new: SignedCheckpoint) -> _Growth:
        """Fetch what tree `new` adds to the copy and check it; raise _Mismatch, BadTiles or SourceUnavailable."""
        held, size = self.edge.size, new.checkpoint.size
        edge = self.edge.copy()
        staged = _Staged()
        try:
            first, end = held // TILE_WIDTH, (size + TILE_WIDTH - 1) // TILE_WIDTH
            pairs = []
            for index in range(first, end):
                width = tile_width(0, index, size)
                pairs += [TileRef(None, index, width), TileRef(0, index, width)]
            fetched = self.fetcher.iter_many(pairs)
            upper: dict[TileRef, bytes] = {}
            for index in range(first, end):
                bundle, tile = next(fetched), next(fetched)
                width = tile_width(0, index, size)
                start = index * TILE_WIDTH
                bundle_ref = TileRef(None, index, width)
                redacted = bundle_ref in self.fetcher.redacted_form
                leaves = _leaves(decode_bundle(bundle, width), tile, redacted)
                kept = held - start if index == first else 0
                if kept and b"".join(leaves[:kept]) != edge.tile(0):
                    raise _Mismatch(
                        f"{TileRef(None, index, width).path}: entries {start}..{held - 1} differ from the copy's"
                    )
                changed, _ = edge.append_tiles(leaves[kept:])
                computed = changed[(0, index)]
                if tile != computed:
                    pos = _first_difference(tile, computed)
                    path = TileRef(0, index, width).path
                    raise BadTiles(f"{path} from the source: hash {pos} does not match entry {start + pos}")
                staged.add(redacted_bundle_path(index, width) if redacted else bundle_ref.path, bundle)
                staged.add(TileRef(0, index, width).path, tile)
                for (level, tile_index), data in changed.items():
                    if level and len(data) == _TILE_BYTES:
                        upper[TileRef(level, tile_index)] = data
            for level in range(1, edge.levels):
                data = edge.tile(level)
                if data:
                    upper[TileRef(level, (size >> (8 * level)) // TILE_WIDTH, len(data) // HASH_SIZE)] = data
            refs = sorted(upper)
            for ref, served in zip(refs, self.fetcher.get_many(refs), strict=True):
                if served != upper[ref]:
                    pos = _first_difference(served, upper[ref])
                    raise BadTiles(f"{ref.path} from the source: hash {pos} does not match the entries")
                staged.add(ref.path, served)
            if edge.root() != new.checkpoint.root:
                raise _Mismatch(
                    f"the copy extended with entries {held}..{size - 1} has root {b64encode(edge.root())}, "
                    f"checkpoint {size} says {b64encode(new.checkpoint.root)}"
                )
        except BaseException:
            staged.close()
            raise
        return _Growth(new, edge, staged)

    def _explain(self, new: SignedCheckpoint, problem: str) -> Observation:
        """A step failed: a fork if the source's own tiles prove tree `new` does not extend the copy, else bad tiles."""
        size = new.checkpoint.size
        try:
            conflict = check_extension(self.fetcher.node_reader(size), self._held_checkpoint(), self._held_note(), new)
        except (BadTiles, SourceUnavailable):
            conflict = None
        if conflict is not None:
            return self._fork(conflict, new)
        return self._observation(Kind.BAD_TILES, f"checkpoint {size}: {problem}", new)

    def _rollback(self, new: SignedCheckpoint) -> Observation:
        """The source went back to a smaller tree: stale if the copy has that root at that size, else a fork."""
        assert self.held is not None
        size, held_size = new.checkpoint.size, self.edge.size

        def read(refs: Sequence[TileRef]) -> list[bytes]:
            out = []
            for ref in refs:
                data = self.sink.get(ref.path)
                if data is None:
                    raise MirrorError(f"{self.sink.describe()} lacks {ref.path}")
                out.append(data)
            return out

        reader = node_reader(read, held_size)
        try:
            ours = tree_hash(size, reader)
            proof = consistency_proof(size, held_size, reader) if size else []
        except (MirrorError, ProofError, ValueError, OSError) as exc:
            return self._observation(
                Kind.ROLLBACK, f"checkpoint {size} is older than the copy's {held_size} ({exc})", new
            )
        if ours == new.checkpoint.root:
            return self._observation(
                Kind.ROLLBACK,
                f"the source serves checkpoint {size}, older than the copy's {held_size} (consistent with it: stale?)",
                new,
            )
        conflict = CheckpointConflict(
            origin=self.origin,
            reason=(
                f"checkpoint {size} has root {b64encode(new.checkpoint.root)}, but the mirrored tree of checkpoint "
                f"{held_size} has root {b64encode(ours)} at size {size}"
            ),
            trusted=self.held.checkpoint,
            trusted_note=self.held.raw,
            conflicting=new.checkpoint,
            conflicting_note=new.raw,
            implied_root=ours,
            proof=tuple(proof),
        )
        return self._fork(conflict, new)

    # --- writing --------------------------------------------------------------------------------

    def _commit(self, growth: _Growth) -> None:
        """Tiles and bundles first, the checkpoint last: the copy is a valid tiles log at every moment."""
        new = growth.new
        self.sink.put_checkpoint(new.raw, PENDING_CHECKPOINT)
        for path, data in growth.staged:
            self.sink.put_once(path, data)
        if self.archive_checkpoints:
            self.sink.put_checkpoint(new.raw, f"checkpoint.{new.checkpoint.size}")
        self.sink.put_checkpoint(self.served_checkpoint(new))
        self.held, self.edge = new, growth.edge

    def _write_conflict(self, new: SignedCheckpoint, unfinished: bytes | None, exc: WriteOnceError) -> Observation:
        """The copy holds other bytes where tree `new` puts its own: written for `unfinished`, an interrupted step."""
        try:
            earlier = open_checkpoint(unfinished, self.origin, [self.verifier]) if unfinished else None
        except NoteError:
            earlier = None
        if earlier is None or earlier.checkpoint == new.checkpoint:
            return self._observation(Kind.BAD_TILES, f"cannot store checkpoint {new.checkpoint.size}: {exc}", new)
        conflict = CheckpointConflict(
            origin=self.origin,
            reason=(
                f"checkpoint {new.checkpoint.size} and checkpoint {earlier.checkpoint.size} (whose objects were being "
                f"written) both extend the copy but disagree: {exc}"
            ),
            trusted=earlier.checkpoint,
            trusted_note=earlier.raw,
            conflicting=new.checkpoint,
            conflicting_note=new.raw,
        )
        return self._fork(conflict, new)

    def _fork(self, conflict: CheckpointConflict, new: SignedCheckpoint) -> Observation:
        """Keep the evidence in the copy and stop following."""
        self.stopped = True
        for name, data in conflict.files().items():
            try:
                self.sink.put_once(f"{FORK_DIR}/{name}", data)
            except WriteOnceError as exc:
                log.error("%s: could not write fork evidence %s: %s", self.origin, name, exc)
        where = f"{self.sink.describe()}/{FORK_DIR}"
        return self._observation(Kind.FORK, f"{conflict.reason}; evidence in {where}", new, evidence=conflict)

    # --- cosigning ------------------------------------------------------------------------------

    def cosign(self, text: str) -> Signature | None:
        """A cosignature/v1 line for a checkpoint text, by the mirror's witness key (None without one)."""
        if self.witness is None:
            return None
        signer = CosignatureSigner(self.witness.name, self.witness.seed, int(time.time()))
        return Signature(signer.name, signer.key_id, signer.sign(text.encode()))

    def served_checkpoint(self, new: SignedCheckpoint) -> bytes:
        """The log's signed checkpoint, with the mirror's cosignature added when it has a witness key."""
        text, signatures = parse_note(new.raw)
        cosignature = self.cosign(text)
        if cosignature is None:
            return new.raw
        others = [s for s in signatures if (s.name, s.key_id) != (cosignature.name, cosignature.key_id)]
        return sign_note(text, [], [*others, cosignature])


def follow(mirror: Mirror, interval: float, stop: threading.Event) -> Observation | None:
    """Poll every `interval` seconds until `stop` is set or a fork stops the mirror; return the last observation."""
    last = None
    while not stop.is_set():
        try:
            last = mirror.poll()
        except Exception:  # a bug or an unexpected sink failure: keep following, loudly
            log.exception("%s: poll failed", mirror.origin)
        if mirror.stopped:
            break
        stop.wait(interval)
    return last
