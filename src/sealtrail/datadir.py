"""A log's data directory: the database, the log key (0600) and its vkey.

<dir>/log.db      SQLite store (plus -wal and -shm while open)
<dir>/log.skey    the Ed25519 signer key, readable by its owner only
<dir>/log.vkey    the verifier key to publish
<dir>/log-mldsa.skey, log-mldsa.vkey   the log's ML-DSA-44 key (0600), with `init --pq`: every
                  checkpoint is then signed with it too (sealtrail.mldsa, docs/post-quantum-and-timestamps.md)
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from .log import Log
from .mldsa import MLDSASigner, MLDSAVerifier, generate_mldsa44, parse_mldsa_signer, parse_mldsa_verifier
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
    def mldsa_skey(self) -> Path:
        return self.path / "log-mldsa.skey"

    @property
    def mldsa_vkey(self) -> Path:
        return self.path / "log-mldsa.vkey"

    @property
    def credentials(self) -> Path:
        """API tokens (hashed) and source secrets, mode 0600."""
        return self.path / "credentials.db"

    def init(self, origin: str, *, pq: bool = False) -> Ed25519Signer:
        """Create the directory, the log key (with `pq` an ML-DSA-44 key too) and an empty log; never overwrite."""
        if not is_valid_name(origin):
            raise StoreError(f"origin {origin!r} must be non-empty with no spaces or '+', e.g. example.com/audit")
        if any(path.exists() for path in (self.db, self.skey, self.mldsa_skey, self.mldsa_vkey)):
            raise StoreError(f"a log already exists in {self.path}")
        try:
            signer = generate_ed25519(origin)
            mldsa = generate_mldsa44(origin) if pq else None
        except NoteError as exc:
            raise StoreError(f"origin {origin!r}: {exc}") from None
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        _write_secret(self.skey, signer.skey)
        self.vkey.write_text(signer.verifier.vkey + "\n")
        if mldsa is not None:
            _write_secret(self.mldsa_skey, mldsa.skey)
            self.mldsa_vkey.write_text(mldsa.verifier.vkey + "\n")
        SqliteStore.create(self.db, origin)
        return signer

    def store(self) -> SqliteStore:
        if not self.db.exists():
            raise StoreError(
                f"no log in {self.path}; create one with `sealtrail init --dir {self.path} --origin ORIGIN`"
            )
        return SqliteStore.open(self.db)

    def signer(self) -> Ed25519Signer:
        try:
            return parse_signer(_read_secret(self.skey))
        except NoteError as exc:
            raise StoreError(f"{self.skey}: {exc}") from None

    def mldsa_signer(self) -> MLDSASigner | None:
        """The log's ML-DSA-44 key, if it has one (`init --pq`); a published vkey without it is an error."""
        if not self.mldsa_skey.exists():
            if self.mldsa_vkey.exists():
                raise StoreError(f"{self.mldsa_vkey} is published but its key {self.mldsa_skey} is missing")
            return None
        try:
            return parse_mldsa_signer(_read_secret(self.mldsa_skey))
        except NoteError as exc:
            raise StoreError(f"{self.mldsa_skey}: {exc}") from None

    def mldsa_verifier(self) -> MLDSAVerifier | None:
        """The log's ML-DSA-44 verifier key, if it has one."""
        if not self.mldsa_vkey.exists():
            return None
        try:
            return parse_mldsa_verifier(self.mldsa_vkey.read_text())
        except NoteError as exc:
            raise StoreError(f"{self.mldsa_vkey}: {exc}") from None

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
            mldsa = self.mldsa_signer()
            return Log(
                store,
                self.signer(),
                checkpoint_interval=checkpoint_interval,
                max_batch=max_batch,
                close_store=True,
                also_sign=() if mldsa is None else (mldsa,),
            )
        except BaseException:
            store.close()
            raise


def _read_secret(path: Path) -> str:
    """A private key file, which must be readable by its owner only."""
    if not path.exists():
        raise StoreError(f"no log key at {path}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise StoreError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
    return path.read_text()


def _write_secret(path: Path, key: str) -> None:
    """Create a private key file readable by its owner only; never overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
