"""c2sp.org/tlog-checkpoint: the signed tree head.

Pure: no I/O. The note text is three lines — origin, decimal tree size, base64
root hash — and optional extension lines, which sealtrail never writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .merkle import HASH_SIZE
from .note import NoteError, Signer, VerifiedNote, Verifier, b64decode_strict, b64encode, open_note, sign_note

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "SignedCheckpoint",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]


class CheckpointError(NoteError):
    """A checkpoint is malformed, unsigned, or from another log."""


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: origin, size and RFC 6962 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        """The note text, each line ending in a newline."""
        lines = [self.origin, str(self.size), b64encode(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (without signatures)."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root hash lines")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise CheckpointError("checkpoint origin is empty")
    if not size_text.isascii() or not size_text.isdigit() or (size_text != "0" and size_text[0] == "0"):
        raise CheckpointError(f"checkpoint size {size_text!r} is not a decimal without leading zeroes")
    try:
        root = b64decode_strict(root_text)
    except NoteError as exc:
        raise CheckpointError(f"checkpoint root hash: {exc}") from None
    if len(root) != HASH_SIZE:
        raise CheckpointError(f"checkpoint root hash is {len(root)} bytes, want {HASH_SIZE}")
    if any(not line for line in extensions):
        raise CheckpointError("checkpoint extension lines must not be empty")
    return Checkpoint(origin, int(size_text), root, tuple(extensions))


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with the note it came from, verified by at least one known key."""

    checkpoint: Checkpoint
    note: VerifiedNote
    raw: bytes


def open_checkpoint(
    message: bytes, origin: str, verifiers: Iterable[Verifier], *, required: Iterable[Verifier] = ()
) -> SignedCheckpoint:
    """Verify a signed checkpoint from the log `origin`: one of `verifiers` and every `required` key must sign it."""
    verifiers, required = list(verifiers), list(required)
    note = open_note(message, [*verifiers, *required])
    signed_by = {(sig.name, sig.key_id) for sig in note.verified}
    if verifiers and not any((v.name, v.key_id) in signed_by for v in verifiers):
        raise CheckpointError("no signature by a known key")
    for key in required:
        if (key.name, key.key_id) not in signed_by:
            raise CheckpointError(f"no signature by the required key {key.name}+{key.key_id:08x}")
    checkpoint = parse_checkpoint(note.text)
    if checkpoint.origin != origin:
        raise CheckpointError(f"checkpoint is for origin {checkpoint.origin!r}, want {origin!r}")
    return SignedCheckpoint(checkpoint, note, message)


def sign_checkpoint(checkpoint: Checkpoint, signer: Signer, *also: Signer) -> bytes:
    """The signed note for `checkpoint`; each log key (`signer`, then `also`) must be named by the origin."""
    for key in (signer, *also):
        if key.name != checkpoint.origin:
            raise CheckpointError(f"key {key.name!r} cannot sign for origin {checkpoint.origin!r}")
    return sign_note(checkpoint.text(), [signer, *also])
