"""Where a c2sp.org/tlog-tiles copy of a log is written: a directory, or (sealtrail.s3) a bucket.

Invariant of every sink: tiles and entry bundles are write-once. A path that
exists must already hold exactly the bytes being written; anything else is an
error, never an overwrite. Only `checkpoint` changes, and it is replaced whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .atomicfile import write_atomically

__all__ = ["DirectorySink", "TileSink", "WriteOnceError"]


class WriteOnceError(OSError):
    """A write-once path already holds other bytes."""


class TileSink(Protocol):
    """A tiles log being written; paths are relative to the log's prefix (e.g. `tile/0/x001/234.p/7`)."""

    def put_once(self, path: str, data: bytes) -> bool:
        """Store an immutable object. False if it was already there with these bytes;
        WriteOnceError if it is there with other bytes."""
        ...

    def put_checkpoint(self, data: bytes, name: str = "checkpoint") -> None:
        """Replace the mutable checkpoint object (`checkpoint`, or another name beside it)."""
        ...

    def get(self, path: str) -> bytes | None:
        """The stored object, or None."""
        ...

    def describe(self) -> str:
        """Where this sink writes, for messages."""
        ...


class DirectorySink:
    """A tiles log in a local directory; files are written atomically (temp file, fsync, rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _target(self, path: str) -> Path:
        if path.startswith("/") or ".." in path.split("/"):
            raise ValueError(f"{path!r} is not a relative tiles path")
        return self.root / path

    def put_once(self, path: str, data: bytes) -> bool:
        target = self._target(path)
        if target.exists():
            if target.read_bytes() != data:
                raise WriteOnceError(f"{target} exists with other content; tiles are immutable")
            return False
        write_atomically(target, data)
        return True

    def put_checkpoint(self, data: bytes, name: str = "checkpoint") -> None:
        write_atomically(self._target(name), data)

    def get(self, path: str) -> bytes | None:
        target = self._target(path)
        return target.read_bytes() if target.is_file() else None

    def describe(self) -> str:
        return str(self.root)
