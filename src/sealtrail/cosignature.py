"""c2sp.org/tlog-cosignature, the Ed25519 `cosignature/v1` type (signature type 0x04).

Pure: no I/O; the caller supplies the timestamp. A cosignature line is a note
signature whose bytes are `u64 timestamp || Ed25519 signature` over

    cosignature/v1
    time <timestamp>
    <checkpoint note text>
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .note import ALG_COSIGNATURE_V1, ALG_ED25519, NoteError, b64encode, decode_vkey, is_valid_name, key_id

__all__ = [
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosigned_message",
    "parse_cosignature_verifier",
    "parse_witness_key",
]

MAX_TIMESTAMP = 2**63 - 1


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes an Ed25519 cosigner signs for a checkpoint text at `timestamp`."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} out of range")
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


@dataclass(frozen=True)
class CosignatureVerifier:
    """A witness key: checks `cosignature/v1` signatures and exposes their timestamp."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_name(self.name) or len(self.public_key) != 32:
            raise NoteError("a cosigner key needs a valid name and a 32-byte Ed25519 key")

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_COSIGNATURE_V1, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_COSIGNATURE_V1]) + self.public_key)}"

    @staticmethod
    def timestamp(signature: bytes) -> int:
        if len(signature) != 72:
            raise NoteError(f"a cosignature is 72 bytes, got {len(signature)}")
        return int(struct.unpack(">Q", signature[:8])[0])

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != 72:
            return False
        timestamp = self.timestamp(signature)
        if timestamp > MAX_TIMESTAMP:
            return False
        try:
            message = cosigned_message(text.decode("utf-8"), timestamp)
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature[8:], message)
        except (InvalidSignature, UnicodeDecodeError):
            return False
        return True


@dataclass(frozen=True)
class CosignatureSigner:
    """A witness's private key, bound to the time it signs at."""

    name: str
    seed: bytes
    timestamp: int

    def __post_init__(self) -> None:
        if not is_valid_name(self.name) or len(self.seed) != 32:
            raise NoteError("a cosigner key needs a valid name and a 32-byte Ed25519 seed")

    @property
    def public_key(self) -> bytes:
        return Ed25519PrivateKey.from_private_bytes(self.seed).public_key().public_bytes_raw()

    @property
    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_COSIGNATURE_V1, self.public_key)

    def sign(self, text: bytes) -> bytes:
        message = cosigned_message(text.decode("utf-8"), self.timestamp)
        signature = Ed25519PrivateKey.from_private_bytes(self.seed).sign(message)
        return struct.pack(">Q", self.timestamp) + signature


def parse_cosignature_verifier(vkey: str) -> CosignatureVerifier:
    """Parse a witness vkey `name+hex8+base64(0x04 || public key)`."""
    name, claimed, alg, public = decode_vkey(vkey)
    if alg != ALG_COSIGNATURE_V1:
        raise NoteError(f"not a cosignature/v1 (type 0x04) key: type 0x{alg:02x}")
    verifier = CosignatureVerifier(name, public)
    if verifier.key_id != claimed:
        raise NoteError("cosigner key ID does not match its key")
    return verifier


def parse_witness_key(vkey: str) -> CosignatureVerifier:
    """A witness key given either way witnesses publish it: its cosignature/v1 vkey (type 0x04), or the
    Ed25519 vkey (type 0x01) of the same key pair, from which the cosignature key follows."""
    vkey = vkey.strip()
    name, claimed, alg, public = decode_vkey(vkey)
    if alg != ALG_ED25519:
        return parse_cosignature_verifier(vkey)
    if len(public) != 32 or key_id(name, ALG_ED25519, public) != claimed:
        raise NoteError("Ed25519 key ID does not match its key")
    return CosignatureVerifier(name, public)
