"""A witness's directory: its key (0600), the vkey to publish, and its state database.

<dir>/witness.skey  the Ed25519 key, `PRIVATE+KEY+<name>+<id>+<base64>` as Go's note package writes it
<dir>/witness.vkey  the cosignature/v1 verifier key (type 0x04) logs and clients configure
<dir>/witness.db    the state: witnessed logs, their keys, the latest cosigned trees
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..cosignature import CosignatureVerifier
from ..note import Ed25519Signer, NoteError, generate_ed25519, is_valid_name, parse_signer
from .state import WitnessState

__all__ = ["DEFAULT_WITNESS_DIR", "WitnessDir"]

DEFAULT_WITNESS_DIR = "sealtrail-witness"


@dataclass(frozen=True)
class WitnessDir:
    path: Path

    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None) -> WitnessDir:
        """--dir, else $SEALTRAIL_WITNESS_DIR, else ./sealtrail-witness."""
        return cls(Path(path or os.environ.get("SEALTRAIL_WITNESS_DIR") or DEFAULT_WITNESS_DIR))

    @property
    def db(self) -> Path:
        return self.path / "witness.db"

    @property
    def skey(self) -> Path:
        return self.path / "witness.skey"

    @property
    def vkey(self) -> Path:
        return self.path / "witness.vkey"

    def init(self, name: str) -> CosignatureVerifier:
        """Create the directory, a new witness key and an empty state; refuse to overwrite."""
        if not is_valid_name(name):
            raise ValueError(f"witness name {name!r} needs no spaces or '+', e.g. witness.example.com/w1")
        if self.skey.exists() or self.db.exists():
            raise ValueError(f"a witness already exists in {self.path}")
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        signer = generate_ed25519(name)
        fd = os.open(self.skey, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(signer.skey + "\n")
        verifier = CosignatureVerifier(name, signer.public_key)
        self.vkey.write_text(verifier.vkey + "\n")
        WitnessState(self.db).close()
        return verifier

    def signer(self) -> Ed25519Signer:
        """The witness key; refused if others can read it."""
        if not self.skey.exists():
            raise ValueError(f"no witness key at {self.skey}; run `sealtrail witness init --dir {self.path}` first")
        mode = stat.S_IMODE(self.skey.stat().st_mode)
        if mode & 0o077:
            raise ValueError(f"{self.skey} is readable by others (mode {mode:o}); run: chmod 600 {self.skey}")
        try:
            return parse_signer(self.skey.read_text())
        except NoteError as exc:
            raise ValueError(f"{self.skey}: {exc}") from None

    def verifier(self) -> CosignatureVerifier:
        signer = self.signer()
        return CosignatureVerifier(signer.name, signer.public_key)

    def state(self) -> WitnessState:
        """The state database (the caller closes it); it must have been created by `init`."""
        if not self.db.exists():
            raise ValueError(f"no witness in {self.path}; run `sealtrail witness init --dir {self.path}` first")
        return WitnessState(self.db)
