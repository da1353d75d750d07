"""c2sp.org/signed-note: text signed by one or more keys, and its Ed25519 keys.

Pure: no I/O. Keys are written exactly as Go's golang.org/x/mod/sumdb/note
writes them:

    vkey  <name>+<key ID, 8 hex digits>+<base64(type || public key)>
    skey  PRIVATE+KEY+<name>+<key ID>+<base64(type || Ed25519 seed)>

with key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "MAX_SIGNATURES",
    "Ed25519Signer",
    "Ed25519Verifier",
    "NoteError",
    "Signature",
    "Signer",
    "VerifiedNote",
    "Verifier",
    "b64decode_strict",
    "b64encode",
    "decode_vkey",
    "generate_ed25519",
    "is_valid_name",
    "key_id",
    "open_note",
    "parse_note",
    "parse_signer",
    "parse_verifier",
    "sign_note",
]

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100
"""Signature lines accepted per note; the spec asks for at least 16 (Go allows 100)."""

SIG_PREFIX = "\u2014 "  # em dash, space


class NoteError(ValueError):
    """A note, key or signature is malformed or does not verify."""


def b64decode_strict(data: str) -> bytes:
    """RFC 4648 §4 base64 that rejects non-alphabet bytes and non-canonical padding bits.

    Canonical-only decoding makes every signed byte matter: two different
    strings can never decode to the same signature or hash.
    """
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(f"invalid base64: {exc}") from None
    if base64.b64encode(raw).decode("ascii") != data:
        raise NoteError("non-canonical base64")
    return raw


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def is_valid_name(name: str) -> bool:
    """Key names are non-empty and contain no Unicode space and no '+'."""
    return bool(name) and "+" not in name and not any(c.isspace() for c in name)


def key_id(name: str, alg: int, public_key: bytes) -> int:
    """SHA-256(name || 0x0A || alg || public key)[:4] as a big-endian uint32."""
    digest = hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()
    return int(struct.unpack(">I", digest[:4])[0])


class Verifier(Protocol):
    """A known key: its name and ID, and a check of a signature over a note text."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, text: bytes, signature: bytes) -> bool: ...


class Signer(Protocol):
    """A private key that signs note texts under a name and key ID."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, text: bytes) -> bytes: ...


@dataclass(frozen=True)
class Ed25519Verifier:
    """Signature type 0x01: plain Ed25519 over the note text."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if len(self.public_key) != 32:
            raise NoteError("an Ed25519 public key is 32 bytes")

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + self.public_key)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(self.public_key).verify(signature, text)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class Ed25519Signer:
    """The private half of an Ed25519Verifier; `seed` is the RFC 8032 32-byte secret."""

    name: str
    seed: bytes

    def __post_init__(self) -> None:
        if not is_valid_name(self.name):
            raise NoteError(f"invalid key name {self.name!r}")
        if len(self.seed) != 32:
            raise NoteError("an Ed25519 private key is 32 bytes")

    @property
    def _private(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    @property
    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_ED25519, self.public_key)

    @property
    def skey(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_ED25519]) + self.seed)}"

    def sign(self, text: bytes) -> bytes:
        return self._private.sign(text)


def generate_ed25519(name: str) -> Ed25519Signer:
    """A fresh Ed25519 key named `name` (for a log, the key name is its origin)."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    return Ed25519Signer(name, seed)


def _split_key(text: str, parts: int, what: str) -> list[str]:
    fields = text.strip().split("+", parts - 1)
    if len(fields) != parts:
        raise NoteError(f"malformed {what}: expected {parts} '+'-separated fields")
    return fields


def _parse_key_id(hex8: str, what: str) -> int:
    if len(hex8) != 8 or any(c not in "0123456789abcdefABCDEF" for c in hex8):
        raise NoteError(f"malformed {what}: key ID must be 8 hex digits")
    return int(hex8, 16)


def decode_vkey(vkey: str) -> tuple[str, int, int, bytes]:
    """Split `name+hex8+base64(type||key)` into (name, key ID, type, key), unchecked against the ID."""
    name, hex8, key64 = _split_key(vkey, 3, "verifier key")
    claimed = _parse_key_id(hex8, "verifier key")
    key = b64decode_strict(key64)
    if not is_valid_name(name):
        raise NoteError(f"malformed verifier key: invalid name {name!r}")
    if not key:
        raise NoteError("malformed verifier key: no key material")
    return name, claimed, key[0], key[1:]


def parse_verifier(vkey: str) -> Ed25519Verifier:
    """Parse an Ed25519 (type 0x01) vkey; the key ID must match the key."""
    name, claimed, alg, public = decode_vkey(vkey)
    if alg != ALG_ED25519:
        raise NoteError(f"unsupported verifier key type 0x{alg:02x}")
    verifier = Ed25519Verifier(name, public)
    if verifier.key_id != claimed:
        raise NoteError("verifier key ID does not match its key")
    return verifier


def parse_signer(skey: str) -> Ed25519Signer:
    """Parse `PRIVATE+KEY+name+hex8+base64(type||seed)`; the key ID must match."""
    private, keyword, name, hex8, key64 = _split_key(skey, 5, "signer key")
    if (private, keyword) != ("PRIVATE", "KEY"):
        raise NoteError("malformed signer key: must start with PRIVATE+KEY+")
    claimed = _parse_key_id(hex8, "signer key")
    key = b64decode_strict(key64)
    if not is_valid_name(name):
        raise NoteError(f"malformed signer key: invalid name {name!r}")
    if not key or key[0] != ALG_ED25519:
        raise NoteError("unsupported signer key type")
    signer = Ed25519Signer(name, key[1:])
    if signer.key_id != claimed:
        raise NoteError("signer key ID does not match its key")
    return signer


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, key ID and the signature bytes after the ID."""

    name: str
    key_id: int
    signature: bytes

    def line(self) -> str:
        return f"{SIG_PREFIX}{self.name} {b64encode(struct.pack('>I', self.key_id) + self.signature)}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    for ch in text:
        if ch < " " and ch != "\n":
            raise NoteError("note text contains a control character")


def parse_note(message: bytes) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and signature lines, checking the format only."""
    try:
        decoded = message.decode("utf-8")
    except UnicodeDecodeError:
        raise NoteError("note is not valid UTF-8") from None
    for ch in decoded:
        if ch < " " and ch != "\n":
            raise NoteError("note contains a control character")
    split = decoded.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line before its signatures")
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block or not block.endswith("\n"):
        raise NoteError("note has no signature lines, or they do not end with a newline")
    signatures: list[Signature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith(SIG_PREFIX):
            raise NoteError("signature line does not start with an em dash and a space")
        name, _, sig64 = line[len(SIG_PREFIX) :].partition(" ")
        if not is_valid_name(name) or not sig64:
            raise NoteError("malformed signature line")
        raw = b64decode_strict(sig64)
        if len(raw) < 5:
            raise NoteError("signature too short")
        signatures.append(Signature(name, struct.unpack(">I", raw[:4])[0], raw[4:]))
        if len(signatures) > MAX_SIGNATURES:
            raise NoteError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, signatures


@dataclass(frozen=True)
class VerifiedNote:
    """A note whose text is vouched for by `verified` (one or more known keys)."""

    text: str
    verified: tuple[Signature, ...]
    unverified: tuple[Signature, ...]


def open_note(message: bytes, verifiers: Iterable[Verifier]) -> VerifiedNote:
    """Parse and verify a signed note (c2sp.org/signed-note, "Signatures").

    Signatures from unknown keys are kept but not trusted; a bad signature from
    a known key rejects the whole note; at least one known key must verify.
    """
    text, signatures = parse_note(message)
    known = {(v.name, v.key_id): v for v in verifiers}
    verified: list[Signature] = []
    unverified: list[Signature] = []
    seen: set[tuple[str, int]] = set()
    body = text.encode("utf-8")
    for sig in signatures:
        verifier = known.get((sig.name, sig.key_id))
        if verifier is None:
            if sig not in unverified:
                unverified.append(sig)
            continue
        if (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        if not verifier.verify(body, sig.signature):
            raise NoteError(f"invalid signature by {sig.name}+{sig.key_id:08x}")
        verified.append(sig)
    if not verified:
        raise NoteError("no signature by a known key")
    return VerifiedNote(text, tuple(verified), tuple(unverified))


def sign_note(text: str, signers: Sequence[Signer], existing: Sequence[Signature] = ()) -> bytes:
    """Encode text with the existing signatures followed by one from each signer."""
    _check_text(text)
    body = text.encode("utf-8")
    lines = [sig.line() for sig in existing]
    for signer in signers:
        if not is_valid_name(signer.name):
            raise NoteError(f"invalid signer name {signer.name!r}")
        lines.append(Signature(signer.name, signer.key_id, signer.sign(body)).line())
    if not lines:
        raise NoteError("a signed note needs at least one signature")
    return (text + "\n" + "".join(lines)).encode("utf-8")
