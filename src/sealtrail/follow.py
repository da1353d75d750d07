"""Following a remote c2sp.org/tlog-tiles log: what a poll observed, fork evidence, tile reads, status.

Shared by the monitor (keeps one trusted checkpoint) and the mirror (keeps a
whole verified copy). The rule both apply to a new signed checkpoint of size
n against the trusted one of size m:

- n < m: rollback; n == m with another root: fork (two signed roots for one size).
- n > m: the source's own tiles of tree n give the root X of size m inside
  tree n and an RFC 9162 consistency proof P from (m, X) to (n, root n). If P
  does not verify, the tiles do not match their signed checkpoint (bad tiles);
  if it does and X differs from the trusted root, the log forked, and (X, P)
  with both signed checkpoints prove it to anyone (see CheckpointConflict).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import httpx

from .checkpoint import Checkpoint, SignedCheckpoint, open_checkpoint
from .fetch import TilesSource
from .merkle import HASH_SIZE, NodeReader, ProofError, consistency_proof, tree_hash, verify_consistency
from .note import NoteError, Verifier, b64encode
from .tiles import TileRef, decode_bundle, node_reader, redacted_bundle_path

__all__ = [
    "ALARMS",
    "CONFLICTING_FILE",
    "EVIDENCE_FILE",
    "TRUSTED_FILE",
    "BadTiles",
    "CheckpointConflict",
    "Follower",
    "Kind",
    "Observation",
    "SourceUnavailable",
    "Status",
    "TileFetcher",
    "check_extension",
    "check_root",
    "same_size_fork",
]

log = logging.getLogger(__name__)


class Kind(StrEnum):
    """What one poll of a log found."""

    OK = "ok"
    ROLLBACK = "rollback"
    FORK = "fork"
    BAD_SIGNATURE = "bad-signature"
    BAD_TILES = "bad-tiles"
    UNAVAILABLE = "unavailable"


ALARMS = frozenset({Kind.ROLLBACK, Kind.FORK, Kind.BAD_SIGNATURE, Kind.BAD_TILES})
"""Kinds that mean the log misbehaved (as opposed to being unreachable)."""


class SourceUnavailable(Exception):
    """The source could not be read, or lacks a resource its checkpoint requires."""


class BadTiles(Exception):
    """The source served a tile or entry bundle that is malformed or does not match its signed checkpoint."""


@dataclass(frozen=True)
class CheckpointConflict:
    """Two signed checkpoints of one log that should not both exist; for a fork, they cannot both be true.

    Fork, same size: the two roots differ, nothing more is needed. Fork, different sizes:
    `proof` is an RFC 9162 consistency proof from (smaller size, `implied_root`)
    to the larger checkpoint, built from the larger tree's tiles; it verifies,
    and `implied_root` differs from the smaller checkpoint's signed root.
    """

    origin: str
    reason: str
    trusted: Checkpoint
    """The checkpoint verified earlier."""
    trusted_note: bytes | None
    """Its signed note (None only when an old state file kept no note)."""
    conflicting: Checkpoint
    conflicting_note: bytes
    """The signed checkpoint just seen."""
    implied_root: bytes | None = None
    proof: tuple[bytes, ...] = ()
    kind: Kind = Kind.FORK
    """FORK, or ROLLBACK: the log served a smaller checkpoint than one it signed before."""
    detected_at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        first, second = self.trusted, self.conflicting
        body: dict[str, Any] = {
            "kind": self.kind.value,
            "origin": self.origin,
            "detected_at": datetime.fromtimestamp(self.detected_at, UTC).isoformat().replace("+00:00", "Z"),
            "reason": self.reason,
            "trusted": {
                "size": first.size,
                "root": b64encode(first.root),
                "file": TRUSTED_FILE if self.trusted_note is not None else None,
            },
            "conflicting": {"size": second.size, "root": b64encode(second.root), "file": CONFLICTING_FILE},
        }
        if self.implied_root is not None:
            small, large = sorted((first, second), key=lambda cp: cp.size)
            body["consistency"] = {
                "from_size": small.size,
                "to_size": large.size,
                "implied_root": b64encode(self.implied_root),
                "proof": [b64encode(h) for h in self.proof],
                "check": (
                    f"the RFC 9162 consistency proof from size {small.size} with root implied_root to the signed "
                    f"checkpoint of size {large.size} verifies, but the signed checkpoint of size {small.size} "
                    "has another root"
                ),
            }
        return body

    def files(self) -> dict[str, bytes]:
        """The evidence as files: both signed checkpoints and the JSON explanation."""
        out = {EVIDENCE_FILE: (json.dumps(self.to_json(), indent=2) + "\n").encode()}
        if self.trusted_note is not None:
            out[TRUSTED_FILE] = self.trusted_note
        out[CONFLICTING_FILE] = self.conflicting_note
        return out


TRUSTED_FILE = "trusted.checkpoint"
CONFLICTING_FILE = "conflicting.checkpoint"
EVIDENCE_FILE = "evidence.json"


@dataclass(frozen=True)
class Observation:
    """The outcome of one poll. `trusted` is the last verified checkpoint after it."""

    kind: Kind
    message: str
    trusted: Checkpoint | None = None
    seen: Checkpoint | None = None
    """The checkpoint the source served, when it could be parsed."""
    note: bytes | None = None
    """The source's signed checkpoint as served (kept for a bad signature too)."""
    evidence: CheckpointConflict | None = None
    changed: bool = False
    """A new checkpoint was verified (and, for a mirror, stored)."""

    @property
    def alarm(self) -> bool:
        return self.kind in ALARMS


# --- status, for logs and metrics -------------------------------------------------------


@dataclass
class Status:
    """What a follower did last; updated after every poll, safe to read from another thread."""

    origin: str
    source: str
    verified_size: int | None = None
    verified_root: bytes | None = None
    last_poll: float | None = None
    last_success: float | None = None
    """When a poll last reached the source and found nothing wrong."""
    last_kind: Kind | None = None
    last_message: str = ""
    fork_detected: bool = False
    polls: Counter[str] = field(default_factory=Counter)
    """Polls by outcome kind."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def record(self, observation: Observation) -> None:
        with self._lock:
            now = time.time()
            self.last_poll = now
            self.last_kind = observation.kind
            self.last_message = observation.message
            self.polls[observation.kind.value] += 1
            if observation.kind is Kind.OK:
                self.last_success = now
            if observation.kind is Kind.FORK:
                self.fork_detected = True
            if observation.trusted is not None:
                self.verified_size = observation.trusted.size
                self.verified_root = observation.trusted.root
        level = logging.ERROR if observation.alarm else logging.WARNING if observation.kind is Kind.UNAVAILABLE else 0
        if level:
            log.log(level, "%s %s: %s", self.origin, observation.kind.value.upper(), observation.message)
        elif observation.changed:
            log.info("%s: %s", self.origin, observation.message)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "origin": self.origin,
                "source": self.source,
                "verified_size": self.verified_size,
                "verified_root": b64encode(self.verified_root) if self.verified_root is not None else None,
                "last_poll": self.last_poll,
                "last_success": self.last_success,
                "last_kind": self.last_kind.value if self.last_kind else None,
                "last_message": self.last_message,
                "fork_detected": self.fork_detected,
                "polls": dict(self.polls),
            }


# --- reading the source ------------------------------------------------------------------


def _bundle_prefix(data: bytes, width: int) -> bytes:
    """The first `width` entries of a bundle, as bytes (a prefix of the bundle)."""
    pos = 0
    for _ in range(width):
        if pos + 2 > len(data):
            raise BadTiles("entry bundle ends inside a length prefix")
        pos += 2 + ((data[pos] << 8) | data[pos + 1])
    if pos > len(data):
        raise BadTiles("entry bundle ends inside an entry")
    return data[:pos]


class TileFetcher:
    """Tiles and entry bundles of one source, read in parallel and cached for the current poll.

    A partial tile that is gone is read from its full tile, truncated
    (c2sp.org/tlog-tiles, "Partial Tiles": logs may delete partial tiles once the full one exists).
    """

    def __init__(self, source: TilesSource, workers: int = 8) -> None:
        self.source = source
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sealtrail-fetch")
        self._workers = workers
        self._cache: dict[TileRef, bytes] = {}
        self.redacted_form: set[TileRef] = set()
        """Entry bundles read in redacted form (tiles.redacted_bundle_path): their empty entries were redacted."""

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    def reset(self) -> None:
        """Forget what was read (call at the start of each poll)."""
        self._cache.clear()
        self.redacted_form.clear()

    def _fetch(self, path: str) -> bytes | None:
        try:
            return self.source.fetch(path)
        except (OSError, httpx.HTTPError) as exc:
            raise SourceUnavailable(f"GET {path}: {exc}") from None

    def checkpoint(self) -> bytes:
        note = self._fetch("checkpoint")
        if note is None:
            raise SourceUnavailable("the source has no checkpoint")
        return note

    def get(self, ref: TileRef) -> bytes:
        """The tile or bundle `ref`, exactly `ref.width` wide; BadTiles if malformed."""
        cached = self._cache.get(ref)
        if cached is not None:
            return cached
        data = self._read(ref.path, ref)
        if data is None and ref.level is None:
            data = self._read(redacted_bundle_path(ref.index, ref.width), ref)
            if data is not None:
                self.redacted_form.add(ref)
        if data is None:
            raise SourceUnavailable(f"{ref.path} is missing")
        if ref.level is None:
            try:
                decode_bundle(data, ref.width)
            except ValueError as exc:
                raise BadTiles(f"{ref.path}: {exc}") from None
        elif len(data) != ref.width * HASH_SIZE:
            raise BadTiles(f"{ref.path} is {len(data)} bytes, want {ref.width * HASH_SIZE}")
        self._cache[ref] = data
        return data

    def _read(self, path: str, ref: TileRef) -> bytes | None:
        """The object at `path` (ref's tile, bundle or redacted bundle), else the prefix of the full one."""
        data = self._fetch(path)
        if data is None and ref.partial:
            full = self._fetch(path[: path.rindex(".p/")])
            if full is not None:
                data = full[: ref.width * HASH_SIZE] if ref.level is not None else _bundle_prefix(full, ref.width)
        return data

    def get_many(self, refs: Sequence[TileRef]) -> list[bytes]:
        return list(self.iter_many(refs))

    def iter_many(self, refs: Iterable[TileRef]) -> Iterator[bytes]:
        """get() of each ref, in order, with up to `workers` reads in flight."""
        pending: deque[Future[bytes]] = deque()
        todo = iter(refs)
        try:
            for ref in todo:
                pending.append(self._pool.submit(self.get, ref))
                if len(pending) >= self._workers:
                    break
            while pending:
                result = pending.popleft().result()
                following = next(todo, None)
                if following is not None:
                    pending.append(self._pool.submit(self.get, following))
                yield result
        finally:
            for future in pending:
                future.cancel()

    def node_reader(self, size: int) -> NodeReader:
        """merkle.NodeReader over the source's hash tiles of the tree of `size`."""
        return node_reader(self.get_many, size)


class Follower:
    """What a monitor and a mirror of one log share: the source (read through a TileFetcher), the log's
    origin and key, the Status, and the first step of every poll.

    A subclass names the checkpoint it trusts now (`trusted_checkpoint`): every Observation carries it.
    """

    def __init__(
        self, source: TilesSource, origin: str, verifier: Verifier, source_name: str, workers: int = 8
    ) -> None:
        self.origin = origin
        self.verifier = verifier
        self.fetcher = TileFetcher(source, workers)
        self.status = Status(origin, source_name)

    @property
    def trusted_checkpoint(self) -> Checkpoint | None:
        raise NotImplementedError

    def close(self) -> None:
        self.fetcher.close()

    def _show_trusted(self) -> None:
        """Put the checkpoint trusted at start in the status (before the first poll)."""
        trusted = self.trusted_checkpoint
        if trusted is not None:
            self.status.verified_size = trusted.size
            self.status.verified_root = trusted.root

    def _observation(
        self,
        kind: Kind,
        message: str,
        new: SignedCheckpoint | None = None,
        *,
        note: bytes | None = None,
        evidence: CheckpointConflict | None = None,
        changed: bool = False,
    ) -> Observation:
        """An observation of `new` (or of an unverified `note`), with the checkpoint trusted now."""
        seen = new.checkpoint if new else None
        return Observation(kind, message, self.trusted_checkpoint, seen, new.raw if new else note, evidence, changed)

    def _fetch_checkpoint(self) -> SignedCheckpoint | Observation:
        """Start a poll: forget the last poll's tiles, fetch the source's checkpoint and verify its signature.

        An Observation instead says why there is nothing to check (unavailable, bad signature).
        """
        self.fetcher.reset()
        try:
            note = self.fetcher.checkpoint()
        except SourceUnavailable as exc:
            return self._observation(Kind.UNAVAILABLE, str(exc))
        try:
            return open_checkpoint(note, self.origin, [self.verifier])
        except NoteError as exc:
            return self._observation(Kind.BAD_SIGNATURE, f"the log's checkpoint does not verify: {exc}", note=note)


def check_root(reader: NodeReader, new: Checkpoint) -> None:
    """BadTiles unless the tiles of tree `new` hash to its signed root."""
    try:
        root = tree_hash(new.size, reader)
    except ValueError as exc:  # a tile shorter than a node needs
        raise BadTiles(str(exc)) from None
    if root != new.root:
        raise BadTiles(f"the tiles of tree {new.size} do not hash to its signed root")


def check_extension(
    reader: NodeReader, old: Checkpoint, old_note: bytes | None, new: SignedCheckpoint
) -> CheckpointConflict | None:
    """Does tree `new` (read through `reader`, over its tiles) extend `old`, a trusted checkpoint?

    None if it does; CheckpointConflict if it provably does not; BadTiles if the
    tiles do not match `new`'s signed root (then nothing about `old` follows).
    """
    m, n = old.size, new.checkpoint.size
    if m > n:
        raise ValueError(f"check_extension needs the trusted size {m} <= the new size {n}")
    if m == n:
        return None if new.checkpoint.root == old.root else same_size_fork(old, old_note, new)
    if m == 0:
        check_root(reader, new.checkpoint)
        return None
    try:
        implied = tree_hash(m, reader)
        proof = consistency_proof(m, n, reader)
        verify_consistency(m, n, proof, implied, new.checkpoint.root)
    except ProofError as exc:
        raise BadTiles(f"the tiles of tree {n} do not match its signed checkpoint ({exc})") from None
    except ValueError as exc:  # a tile shorter than a node needs
        raise BadTiles(str(exc)) from None
    if implied == old.root:
        return None
    return CheckpointConflict(
        origin=old.origin,
        reason=(
            f"checkpoint {n} does not extend checkpoint {m}: its tree has root {b64encode(implied)} "
            f"at size {m}, the trusted checkpoint {b64encode(old.root)}"
        ),
        trusted=old,
        trusted_note=old_note,
        conflicting=new.checkpoint,
        conflicting_note=new.raw,
        implied_root=implied,
        proof=tuple(proof),
    )


def same_size_fork(old: Checkpoint, old_note: bytes | None, new: SignedCheckpoint) -> CheckpointConflict:
    """Two signed roots for one size."""
    return CheckpointConflict(
        origin=old.origin,
        reason=(
            f"two signed checkpoints of size {old.size} with different roots: "
            f"{b64encode(old.root)} and {b64encode(new.checkpoint.root)}"
        ),
        trusted=old,
        trusted_note=old_note,
        conflicting=new.checkpoint,
        conflicting_note=new.raw,
    )
