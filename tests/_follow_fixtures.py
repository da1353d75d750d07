"""Logs to follow: real sealtrail logs published as tiles directories, forks of them, Tessera's log in stages.

Not a test module; imported as `_follow_fixtures` by the monitor and mirror tests.
A fork is made the way a dishonest operator would: a copy of the log's
directory (same key, same history up to the copy) that goes on with other
events, so both branches carry valid signatures by the one log key.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from _support import ORIGIN, devsecops_events
from sealtrail.checkpoint import Checkpoint, open_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.fetch import TilesSource
from sealtrail.objectstore import DirectorySink
from sealtrail.publish import Publisher
from sealtrail.tiles import decode_bundle, encode_bundle

__all__ = ["Branch", "RecordingSource", "TesseraStages"]


class Branch:
    """One log directory (a log, or a fork of one) that can grow and be published as a tiles log."""

    def __init__(self, directory: DataDir, tag: str) -> None:
        self.directory = directory
        self.tag = tag

    @classmethod
    def create(cls, root: Path, tag: str = "main") -> Branch:
        directory = DataDir(root)
        directory.init(ORIGIN)
        return cls(directory, tag)

    def fork(self, root: Path, tag: str) -> Branch:
        """A copy of this log, same key and history so far, that will record other events."""
        shutil.copytree(self.directory.path, root)
        return Branch(DataDir(root), tag)

    @property
    def vkey(self) -> str:
        return self.directory.vkey.read_text().strip()

    def size(self) -> int:
        store = self.directory.store()
        try:
            return store.size()
        finally:
            store.close()

    def grow(self, count: int, batch: int = 0) -> Checkpoint:
        """Append `count` events of this branch (in batches of `batch`, each signed); return the last checkpoint."""
        log = self.directory.open_log(checkpoint_interval=0)
        try:
            start = log.size
            step = batch or count
            for first in range(start, start + count, step):
                log.append(devsecops_events(first, min(step, start + count - first), self.tag))
        finally:
            log.close()
        return self.checkpoint()

    def checkpoint(self, size: int | None = None) -> Checkpoint:
        return open_checkpoint(self.note(size), ORIGIN, [self.directory.verifier()]).checkpoint

    def note(self, size: int | None = None) -> bytes:
        """The signed checkpoint at `size` (default: the latest)."""
        store = self.directory.store()
        try:
            if size is None:
                latest = store.latest_checkpoint()
                assert latest is not None
                return latest[1]
            note = store.checkpoint_at(size)
            assert note is not None, f"no checkpoint at {size}"
            return note
        finally:
            store.close()

    def entries(self) -> list[bytes]:
        store = self.directory.store()
        try:
            return [entry for _, entry in store.entries(0, store.size())]
        finally:
            store.close()

    def publish(self, out: Path, *, fresh: bool = False) -> None:
        """Write this log as a tiles log to `out` (replacing what is there with `fresh`)."""
        if fresh and out.exists():
            shutil.rmtree(out)
        store = self.directory.store()
        try:
            Publisher(store, DirectorySink(out)).publish()
        finally:
            store.close()


class RecordingSource(TilesSource):
    """A real source, with the paths fetched through it recorded."""

    def __init__(self, inner: TilesSource) -> None:
        self.inner = inner
        self.fetched: list[str] = []
        self._lock = threading.Lock()

    def fetch(self, path: str) -> bytes | None:
        with self._lock:
            self.fetched.append(path)
        return self.inner.fetch(path)

    def close(self) -> None:
        self.inner.close()


class TesseraStages:
    """Tessera's 15-entry log served from `root` as it was at size 7, then at size 15.

    At size 7 the partial tile and bundle of width 7 are the first 7 hashes and
    entries of Tessera's width-15 ones (a tile of a smaller tree is a prefix).
    """

    def __init__(self, vectors: Path, root: Path) -> None:
        self.log = vectors / "tessera-log"
        self.root = root
        self.vkey = (self.log / "log.vkey").read_text().strip()
        self.origin = self.vkey.split("+", 1)[0]

    def at(self, size: int) -> None:
        if self.root.exists():
            shutil.rmtree(self.root)
        (self.root / "tile/0/000.p").mkdir(parents=True)
        (self.root / "tile/entries/000.p").mkdir(parents=True)
        tile = (self.log / "tile/0/000.p/15").read_bytes()
        entries = decode_bundle((self.log / "tile/entries/000.p/15").read_bytes(), 15)
        if size:  # an empty tree has no tiles
            (self.root / f"tile/0/000.p/{size}").write_bytes(tile[: size * 32])
            (self.root / f"tile/entries/000.p/{size}").write_bytes(encode_bundle(entries[:size]))
        shutil.copyfile(self.log / f"checkpoint.{size}", self.root / "checkpoint")
