"""A monitor of a c2sp.org/tlog-tiles log: one trusted checkpoint, checked against every new one.

Each poll fetches the checkpoint, verifies its signature, and proves it
consistent with the trusted one from O(log n) hash tiles of the source (see
sealtrail.follow); only then does it become the trusted checkpoint, saved to
the state file. Rollback, fork and bad signatures are reported with the
evidence and never change what is trusted. The state file has the format of
`sealtrail tiles verify --state` (origin, size, root, checkpoint).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .atomicfile import write_atomically
from .checkpoint import Checkpoint, open_checkpoint
from .fetch import TilesSource
from .follow import (
    BadTiles,
    CheckpointConflict,
    Follower,
    Kind,
    Observation,
    SourceUnavailable,
    check_extension,
    check_root,
)
from .note import NoteError, Verifier, b64decode_strict, b64encode

__all__ = ["Monitor", "StateError", "TrustedCheckpoint", "load_state", "save_state"]


class StateError(ValueError):
    """The state file is unreadable or does not belong to this log."""


@dataclass(frozen=True)
class TrustedCheckpoint:
    """The last verified checkpoint; `note` is its signed form when known (older state files lack it)."""

    checkpoint: Checkpoint
    note: bytes | None = None


def load_state(path: Path, origin: str, verifier: Verifier) -> TrustedCheckpoint | None:
    """The trusted checkpoint kept in `path`, or None if the file does not exist."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        size, root = int(data["size"]), b64decode_strict(data["root"])
        if data["origin"] != origin:
            raise StateError(f"state file {path} is for origin {data['origin']!r}, not {origin!r}")
        note = data["checkpoint"].encode() if data.get("checkpoint") else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        if isinstance(exc, StateError):
            raise
        raise StateError(f"state file {path} is unreadable ({exc}); move it away to start trusting afresh") from None
    checkpoint = Checkpoint(origin, size, root)
    if note is not None:
        try:
            signed = open_checkpoint(note, origin, [verifier]).checkpoint
        except NoteError as exc:
            raise StateError(f"state file {path}: its checkpoint does not verify ({exc})") from None
        if (signed.size, signed.root) != (size, root):
            raise StateError(f"state file {path}: its checkpoint says size {signed.size}, not {size}")
        checkpoint = signed
    return TrustedCheckpoint(checkpoint, note)


def save_state(path: Path, trusted: TrustedCheckpoint) -> None:
    """Replace the state file atomically."""
    body: dict[str, object] = {
        "origin": trusted.checkpoint.origin,
        "size": trusted.checkpoint.size,
        "root": b64encode(trusted.checkpoint.root),
    }
    if trusted.note is not None:
        body["checkpoint"] = trusted.note.decode()
    write_atomically(path, (json.dumps(body, indent=2) + "\n").encode())


class Monitor(Follower):
    """Polls one log; see the module docstring. One poll at a time."""

    def __init__(
        self,
        source: TilesSource,
        origin: str,
        verifier: Verifier,
        state_path: Path | None = None,
        *,
        trusted: TrustedCheckpoint | None = None,
        source_name: str = "",
    ) -> None:
        super().__init__(source, origin, verifier, source_name)
        self.state_path = state_path
        if trusted is None and state_path is not None:
            trusted = load_state(state_path, origin, verifier)
        self.trusted = trusted
        self._show_trusted()

    @property
    def trusted_checkpoint(self) -> Checkpoint | None:
        return self.trusted.checkpoint if self.trusted else None

    def poll(self) -> Observation:
        """Fetch and check the log's checkpoint; trust it only if it verifies and extends the trusted one."""
        observation = self._poll()
        self.status.record(observation)
        return observation

    def _poll(self) -> Observation:
        new = self._fetch_checkpoint()
        if isinstance(new, Observation):
            return new
        size = new.checkpoint.size
        trusted = self.trusted
        if trusted is not None and size < trusted.checkpoint.size:
            message = f"the log's checkpoint has size {size}, smaller than the trusted size {trusted.checkpoint.size}"
            rollback = CheckpointConflict(
                self.origin, message, trusted.checkpoint, trusted.note, new.checkpoint, new.raw, kind=Kind.ROLLBACK
            )
            return self._observation(Kind.ROLLBACK, message, new, evidence=rollback)
        try:
            reader = self.fetcher.node_reader(size)
            evidence: CheckpointConflict | None = None
            if trusted is None:
                check_root(reader, new.checkpoint)
            else:
                evidence = check_extension(reader, trusted.checkpoint, trusted.note, new)
        except SourceUnavailable as exc:
            return self._observation(Kind.UNAVAILABLE, f"checkpoint {size}: {exc}", new)
        except BadTiles as exc:
            return self._observation(Kind.BAD_TILES, f"checkpoint {size}: {exc}", new)
        if evidence is not None:
            return self._observation(Kind.FORK, evidence.reason, new, evidence=evidence)
        if trusted is not None and size == trusted.checkpoint.size:
            return self._observation(Kind.OK, f"size {size}: unchanged", new)
        how = "trusted on first use" if trusted is None else f"consistent with size {trusted.checkpoint.size}"
        self.trusted = TrustedCheckpoint(new.checkpoint, new.raw)
        if self.state_path is not None:
            save_state(self.state_path, self.trusted)
        return self._observation(Kind.OK, f"size {size}: verified, {how}", new, changed=True)
