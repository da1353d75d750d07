"""c2sp.org/tlog-witness wire formats: the add-checkpoint request and its responses.

Pure: no I/O. A request body is

    old <size>\\n
    <base64 consistency proof hash>\\n      (0 to 63 lines)
    \\n
    <signed checkpoint note>

a 200 response body is one or more note signature lines (`— <name> <base64>\\n`),
and a 409 response body is the witness's latest cosigned size in decimal and a
newline, with Content-Type text/x.tlog.size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..merkle import HASH_SIZE
from ..note import NoteError, Signature, b64decode_strict, b64encode, parse_note

__all__ = [
    "ADD_CHECKPOINT",
    "MAX_BODY_BYTES",
    "MAX_PROOF_LINES",
    "MAX_SIZE",
    "SIZE_CONTENT_TYPE",
    "AddCheckpointRequest",
    "ProtocolError",
    "Refusal",
    "format_signature_lines",
    "format_size",
    "parse_add_checkpoint",
    "parse_signature_lines",
    "parse_size",
]

ADD_CHECKPOINT = "/add-checkpoint"
"""Path of the call under the witness's submission prefix."""
SIZE_CONTENT_TYPE = "text/x.tlog.size"
"""Content-Type of a 409 response: the witness's latest cosigned size."""
MAX_PROOF_LINES = 63
"""A client MUST NOT send more consistency proof lines than this."""
MAX_BODY_BYTES = 64 * 1024
"""Largest request or response body read: a checkpoint, 63 proof lines and up to 100 signatures fit."""
MAX_SIZE = 2**63 - 1
"""Largest tree size accepted (a signed 64-bit integer, as Go's tlog and SQLite use)."""


class ProtocolError(ValueError):
    """A request or response body does not follow c2sp.org/tlog-witness."""


class Refusal(Exception):
    """The witness does not cosign: the spec's status, a message, and for a stale old size its own size.

    404 unknown origin; 403 no signature by a key trusted for the origin; 400 a
    malformed request or an old size above the checkpoint's; 409 with `size` the
    old size is not the witness's latest cosigned size; 409 without `size` the
    same size with another root hash; 422 the consistency proof does not verify.
    """

    def __init__(self, status: int, message: str, size: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.size = size


def _decimal(text: str, what: str) -> int:
    """ASCII decimal with no leading zeroes (unless it is 0), at most MAX_SIZE."""
    if not text or not text.isascii() or not text.isdigit() or (text != "0" and text[0] == "0"):
        raise ProtocolError(f"{what} {text[:40]!r} is not a decimal with no leading zeroes")
    if len(text) > len(str(MAX_SIZE)) or int(text) > MAX_SIZE:
        raise ProtocolError(f"{what} {text[:40]} is larger than {MAX_SIZE}")
    return int(text)


@dataclass(frozen=True)
class AddCheckpointRequest:
    """The old size the client thinks the witness holds, a consistency proof from it, and the signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: bytes

    def encode(self) -> bytes:
        if not 0 <= self.old_size <= MAX_SIZE:
            raise ProtocolError(f"old size {self.old_size} is out of range")
        if len(self.proof) > MAX_PROOF_LINES:
            raise ProtocolError(f"a consistency proof has at most {MAX_PROOF_LINES} hashes, not {len(self.proof)}")
        if any(len(h) != HASH_SIZE for h in self.proof):
            raise ProtocolError("every consistency proof hash is 32 bytes")
        lines = [f"old {self.old_size}", *(b64encode(h) for h in self.proof)]
        return ("".join(line + "\n" for line in lines) + "\n").encode("ascii") + self.checkpoint


def parse_add_checkpoint(body: bytes) -> AddCheckpointRequest:
    """Parse an add-checkpoint request body; the checkpoint is checked as a note's format only, not verified."""
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(f"request body is larger than {MAX_BODY_BYTES} bytes")
    head, blank, checkpoint = body.partition(b"\n\n")
    if not blank:
        raise ProtocolError("no empty line between the old size and proof lines and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise ProtocolError("the old size and proof lines must be ASCII") from None
    first, *proof_lines = lines
    if not first.startswith("old "):
        raise ProtocolError("the first line must be `old <size>`")
    old_size = _decimal(first[len("old ") :], "old size")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise ProtocolError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for number, line in enumerate(proof_lines, start=1):
        try:
            digest = b64decode_strict(line)
        except NoteError as exc:
            raise ProtocolError(f"consistency proof line {number}: {exc}") from None
        if len(digest) != HASH_SIZE:
            raise ProtocolError(f"consistency proof line {number} is {len(digest)} bytes, not {HASH_SIZE}")
        proof.append(digest)
    try:
        parse_note(checkpoint)
    except NoteError as exc:
        raise ProtocolError(f"checkpoint: {exc}") from None
    return AddCheckpointRequest(old_size, tuple(proof), checkpoint)


def format_size(size: int) -> bytes:
    """The body of a 409 response."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """The size in a 409 response body: a decimal and a newline (a missing final newline is tolerated)."""
    try:
        text = body.decode("ascii")
    except UnicodeDecodeError:
        raise ProtocolError("a text/x.tlog.size body must be ASCII") from None
    if text.endswith("\n"):
        text = text[:-1]
    return _decimal(text, "witness size")


def format_signature_lines(signatures: Iterable[Signature]) -> bytes:
    """The body of a 200 response: signature lines only."""
    body = "".join(signature.line() for signature in signatures)
    if not body:
        raise ProtocolError("a cosigning response carries at least one signature line")
    return body.encode("utf-8")


def parse_signature_lines(body: bytes) -> Sequence[Signature]:
    """The signature lines of a 200 response, checked as note signature lines (not verified)."""
    if len(body) > MAX_BODY_BYTES:
        raise ProtocolError(f"response body is larger than {MAX_BODY_BYTES} bytes")
    if not body.startswith("\u2014 ".encode()) or not body.endswith(b"\n") or b"\n\n" in body:
        raise ProtocolError("a cosigning response is note signature lines, each `— <name> <base64>` and a newline")
    try:
        _, signatures = parse_note(b"x\n\n" + body)
    except NoteError as exc:
        raise ProtocolError(f"cosigning response: {exc}") from None
    return signatures
