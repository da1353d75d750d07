"""A log's data directory: the database, the log key (0600) and its vkey.

<dir>/log.db      SQLite store (plus -wal and -shm while open)
<dir>/log.skey    the Ed25519 signer key, readable by its owner only
<dir>/log.vkey    the verifier key to publish
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .log import Log
from .note import (
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    generate_ed25519,
    is_valid_name,
    parse_signer,
    parse_verifier,
)
from .store.base import StoreError
from .store.sqlite import SqliteStore

__all__ = ["DEFAULT_DIR", "DataDir"]

DEFAULT_DIR = "sealtrail-data"


@dataclass(frozen=True)
class DataDir:
    path: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None) -> DataDir:
        """--dir, else $SEALTRAIL_DIR, else ./sealtrail-data."""
        return cls(Path(path or os.environ.get("SEALTRAIL_DIR") or DEFAULT_DIR))

    @property
    def db(self) -> Path:
        return self.path / "log.db"

    @property
    def skey(self) -> Path:
        return self.path / "log.skey"

    @property
    def vkey(self) -> Path:
        return self.path / "log.vkey"

    @property
    def credentials(self) -> Path:
        """API tokens (hashed) and source secrets, mode 0600."""
        return self.path / "credentials.db"

    def init(self, origin: str) -> Ed25519Signer:
        """Create the directory, a new log key and an empty log; refuse to overwrite."""
        if not is_valid_name(origin):
            raise StoreError(f"origin {origin!r} must be non-empty with no spaces or '+', e.g. example.com/audit")
        if self.db.exists() or self.skey.exists():
            raise StoreError(f"a log already exists in {self.path}")
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        signer = generate_ed25519(origin)
        fd = os.open(self.skey, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer.skey + "\n")
        self.vkey.write_text(signer.verifier.vkey + "\n")
        SqliteStore.create(self.db, origin)
        return signer

    def store(self) -> SqliteStore:
        if not self.db.exists():
            raise StoreError(
                f"no log in {self.path}; create one with `sealtrail init --dir {self.path} --origin ORIGIN`"
            )
        return SqliteStore.open(self.db)

    def signer(self) -> Ed25519Signer:
        if not self.skey.exists():
            raise StoreError(f"no log key at {self.skey}")
        mode = stat.S_IMODE(self.skey.stat().st_mode)
        if mode & 0o077:
            raise StoreError(f"{self.skey} is readable by others (mode {mode:o}); run: chmod 600 {self.skey}")
        try:
            return parse_signer(self.skey.read_text())
        except NoteError as exc:
            raise StoreError(f"{self.skey}: {exc}") from None

    def verifier(self) -> Ed25519Verifier:
        if not self.vkey.exists():
            raise StoreError(f"no verifier key at {self.vkey}")
        try:
            return parse_verifier(self.vkey.read_text())
        except NoteError as exc:
            raise StoreError(f"{self.vkey}: {exc}") from None

    def open_log(self, *, checkpoint_interval: float = 1.0, max_batch: int = 4096) -> Log:
        """The sequencer for this directory's log (the caller must close it)."""
        store = self.store()
        try:
            return Log(
                store, self.signer(), checkpoint_interval=checkpoint_interval, max_batch=max_batch, close_store=True
            )
        except BaseException:
            store.close()
            raise
