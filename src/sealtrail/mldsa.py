"""ML-DSA-44 note signatures: c2sp.org/tlog-cosignature's `subtree/v1` type (signature type 0x06).

Pure: no I/O. What the standard fixes (c2sp.org/tlog-cosignature, "Format" and
"ML-DSA-44 signed message"; c2sp.org/signed-note for vkeys):

    key ID     SHA-256(name || 0x0A || 0x06 || 1312-byte ML-DSA-44 public key)[:4]
    vkey       <name>+<key ID, 8 hex digits>+<base64(0x06 || public key)>
    signature  u64 timestamp || 2420-byte ML-DSA-44 signature (FIPS 204, empty context) over
    message    "subtree/v1\\n\\0" || u8 len || cosigner name || u64 timestamp
               || u8 len || log origin || u64 start || u64 end || 32-byte subtree hash

A checkpoint is the subtree [0, size) with its root hash; checkpoint extension
lines are not covered, so a checkpoint that has some is refused (as torchwood
does). If start is not zero the timestamp must be zero.

The private key is written as transparency-dev/formats `note.GenerateMLDSAKey`
writes it: `PRIVATE+KEY+<name>+<key ID>+<base64(0x06 || 32-byte FIPS 204 seed)>`.

sealtrail's own choice (not a C2SP rule): a log made with `sealtrail init --pq`
signs every checkpoint with this type as well as Ed25519, using its origin as
the cosigner name and the signing time as the timestamp, as an ML-DSA log of
filippo.io/torchwood does. Verifiers that do not know the key ignore the line.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA44PrivateKey, MLDSA44PublicKey

from .checkpoint import CheckpointError, parse_checkpoint
from .merkle import EMPTY_ROOT, HASH_SIZE
from .note import NoteError, b64decode_strict, b64encode, decode_vkey, is_valid_name, key_id

__all__ = [
    "ALG_MLDSA44",
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "MLDSASigner",
    "MLDSAVerifier",
    "generate_mldsa44",
    "parse_mldsa_signer",
    "parse_mldsa_verifier",
    "subtree_message",
    "valid_subtree",
]

ALG_MLDSA44 = 0x06
PUBLIC_KEY_SIZE = 1312
SEED_SIZE = 32
SIGNATURE_SIZE = 2420
MAX_TIMESTAMP = 2**63 - 1
LABEL = b"subtree/v1\n\x00"


def valid_subtree(start: int, end: int) -> bool:
    """[start, end) is a subtree (draft-ietf-plants-merkle-tree-certs "Subtrees"), or the empty tree [0, 0)."""
    if start == end == 0:
        return True
    if not 0 <= start < end:
        return False
    width = 1 << (end - start - 1).bit_length()  # the smallest power of two >= end - start
    return start % width == 0


def _opaque8(value: str, what: str) -> bytes:
    raw = value.encode("utf-8")
    if not 1 <= len(raw) <= 255:
        raise NoteError(f"{what} must be 1 to 255 bytes, got {len(raw)}")
    return bytes([len(raw)]) + raw


def subtree_message(cosigner: str, timestamp: int, origin: str, start: int, end: int, hash: bytes) -> bytes:
    """The `cosigned_message` structure an ML-DSA-44 cosigner signs (c2sp.org/tlog-cosignature)."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"timestamp {timestamp} out of range")
    if start != 0 and timestamp != 0:
        raise NoteError("the timestamp must be zero when start is not zero")
    if not valid_subtree(start, end):
        raise NoteError(f"[{start}, {end}) is not a subtree")
    if len(hash) != HASH_SIZE:
        raise NoteError(f"subtree hash is {len(hash)} bytes, want {HASH_SIZE}")
    if start == end and hash != EMPTY_ROOT:
        raise NoteError("the hash of the empty tree must be SHA-256 of the empty string")
    return b"".join(
        (
            LABEL,
            _opaque8(cosigner, "cosigner name"),
            struct.pack(">Q", timestamp),
            _opaque8(origin, "log origin"),
            struct.pack(">QQ", start, end),
            hash,
        )
    )


def _checkpoint_subtree(text: bytes) -> tuple[str, int, bytes]:
    """(origin, size, root) of a checkpoint note text without extension lines."""
    try:
        checkpoint = parse_checkpoint(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError("checkpoint is not valid UTF-8") from None
    if checkpoint.extensions:
        raise CheckpointError("ML-DSA-44 signatures do not cover checkpoint extension lines")
    return checkpoint.origin, checkpoint.size, checkpoint.root


def _check_name(name: str) -> None:
    if not is_valid_name(name) or not 1 <= len(name.encode("utf-8")) <= 255:
        raise NoteError(f"invalid ML-DSA-44 key name {name!r}")


@dataclass(frozen=True)
class MLDSAVerifier:
    """An ML-DSA-44 key (type 0x06): checks checkpoint and subtree signatures by `name`."""

    name: str
    public_key: bytes

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise NoteError(f"an ML-DSA-44 public key is {PUBLIC_KEY_SIZE} bytes, got {len(self.public_key)}")
        try:
            MLDSA44PublicKey.from_public_bytes(self.public_key)
        except ValueError as exc:
            raise NoteError(f"invalid ML-DSA-44 public key: {exc}") from None

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_MLDSA44, self.public_key)

    @property
    def vkey(self) -> str:
        return f"{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_MLDSA44]) + self.public_key)}"

    @staticmethod
    def timestamp(signature: bytes) -> int:
        """The signer's timestamp (POSIX seconds; 0: no claim to be the latest tree)."""
        if len(signature) != 8 + SIGNATURE_SIZE:
            raise NoteError(f"an ML-DSA-44 cosignature is {8 + SIGNATURE_SIZE} bytes, got {len(signature)}")
        return int(struct.unpack(">Q", signature[:8])[0])

    def verify_subtree(self, origin: str, start: int, end: int, hash: bytes, signature: bytes) -> bool:
        """Whether `signature` (timestamp || ML-DSA-44 signature) is this key's over the subtree [start, end)."""
        if len(signature) != 8 + SIGNATURE_SIZE:
            return False
        try:
            message = subtree_message(self.name, self.timestamp(signature), origin, start, end, hash)
            MLDSA44PublicKey.from_public_bytes(self.public_key).verify(signature[8:], message)
        except (NoteError, InvalidSignature):
            return False
        return True

    def verify(self, text: bytes, signature: bytes) -> bool:
        """note.Verifier: a signature over a checkpoint note text, as the subtree [0, size)."""
        try:
            origin, size, root = _checkpoint_subtree(text)
        except NoteError:
            return False
        return self.verify_subtree(origin, 0, size, root, signature)


def _wall_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class MLDSASigner:
    """The private half of an MLDSAVerifier; `seed` is the 32-byte FIPS 204 seed.

    `clock` gives the timestamp of each checkpoint signature (POSIX seconds).
    """

    name: str
    seed: bytes
    clock: Callable[[], int] = field(default=_wall_clock, compare=False, repr=False)

    def __post_init__(self) -> None:
        _check_name(self.name)
        if len(self.seed) != SEED_SIZE:
            raise NoteError(f"an ML-DSA-44 private key is a {SEED_SIZE}-byte seed")

    @property
    def _private(self) -> MLDSA44PrivateKey:
        return MLDSA44PrivateKey.from_seed_bytes(self.seed)

    @property
    def public_key(self) -> bytes:
        return self._private.public_key().public_bytes_raw()

    @property
    def verifier(self) -> MLDSAVerifier:
        return MLDSAVerifier(self.name, self.public_key)

    @property
    def key_id(self) -> int:
        return key_id(self.name, ALG_MLDSA44, self.public_key)

    @property
    def skey(self) -> str:
        return f"PRIVATE+KEY+{self.name}+{self.key_id:08x}+{b64encode(bytes([ALG_MLDSA44]) + self.seed)}"

    def sign_subtree(self, origin: str, start: int, end: int, hash: bytes, timestamp: int = 0) -> bytes:
        """timestamp || ML-DSA-44 signature over the subtree [start, end) of the log `origin`."""
        message = subtree_message(self.name, timestamp, origin, start, end, hash)
        return struct.pack(">Q", timestamp) + self._private.sign(message)

    def sign(self, text: bytes) -> bytes:
        """note.Signer: sign a checkpoint note text as the subtree [0, size), at `clock()`."""
        origin, size, root = _checkpoint_subtree(text)
        return self.sign_subtree(origin, 0, size, root, self.clock())


def generate_mldsa44(name: str) -> MLDSASigner:
    """A fresh ML-DSA-44 key named `name`."""
    return MLDSASigner(name, MLDSA44PrivateKey.generate().private_bytes_raw())


def parse_mldsa_verifier(vkey: str) -> MLDSAVerifier:
    """Parse a type 0x06 vkey; the key ID must match the key."""
    name, claimed, alg, public = decode_vkey(vkey)
    if alg != ALG_MLDSA44:
        raise NoteError(f"not an ML-DSA-44 (type 0x06) key: type 0x{alg:02x}")
    verifier = MLDSAVerifier(name, public)
    if verifier.key_id != claimed:
        raise NoteError("ML-DSA-44 key ID does not match its key")
    return verifier


def parse_mldsa_signer(skey: str, clock: Callable[[], int] = _wall_clock) -> MLDSASigner:
    """Parse `PRIVATE+KEY+name+hex8+base64(0x06 || seed)`; the key ID must match."""
    fields = skey.strip().split("+", 4)
    if len(fields) != 5 or fields[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("malformed ML-DSA-44 signer key: expected PRIVATE+KEY+name+id+key")
    _, _, name, hex8, key64 = fields
    if len(hex8) != 8 or any(c not in "0123456789abcdefABCDEF" for c in hex8):
        raise NoteError("malformed ML-DSA-44 signer key: key ID must be 8 hex digits")
    key = b64decode_strict(key64)
    if not key or key[0] != ALG_MLDSA44:
        raise NoteError("not an ML-DSA-44 (type 0x06) signer key")
    signer = MLDSASigner(name, key[1:], clock)
    if signer.key_id != int(hex8, 16):
        raise NoteError("ML-DSA-44 signer key ID does not match its key")
    return signer
