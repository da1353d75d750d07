"""c2sp.org/tlog-proof@v1: the offline receipt a client keeps for one entry.

Pure: no I/O. sealtrail puts the entry's leaf hash in the `extra` line, so a
proof can be checked without the entry (for example after the entry's body was
redacted); with the entry, its bytes must hash to that leaf.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .checkpoint import SignedCheckpoint, open_checkpoint
from .merkle import HASH_SIZE, ProofError, leaf_hash, verify_inclusion
from .note import NoteError, Verifier, b64decode_strict, b64encode

__all__ = ["HEADER", "TlogProof", "TlogProofError", "parse_tlog_proof", "verify_tlog_proof"]

HEADER = "c2sp.org/tlog-proof@v1"


class TlogProofError(ValueError):
    """A tlog-proof file is malformed or does not verify."""


@dataclass(frozen=True)
class TlogProof:
    """Entry index, audit path, signed checkpoint note, and optional extra data."""

    index: int
    proof: Sequence[bytes]
    checkpoint: bytes
    extra: bytes | None = None

    def encode(self) -> bytes:
        lines = [HEADER]
        if self.extra is not None:
            lines.append(f"extra {b64encode(self.extra)}")
        lines.append(f"index {self.index}")
        lines.extend(b64encode(h) for h in self.proof)
        return ("\n".join(lines) + "\n\n").encode() + self.checkpoint


def parse_tlog_proof(data: bytes) -> TlogProof:
    """Parse a tlog-proof file; the checkpoint is returned verbatim, unverified."""
    head, sep, checkpoint = data.partition(b"\n\n")
    if not sep:
        raise TlogProofError("no blank line between the proof and the checkpoint")
    try:
        lines = head.decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise TlogProofError("proof lines must be ASCII") from None
    if lines[0] != HEADER:
        raise TlogProofError(f"first line must be {HEADER}")
    pos = 1
    extra = None
    try:
        if pos < len(lines) and lines[pos].startswith("extra "):
            extra = b64decode_strict(lines[pos][len("extra ") :])
            pos += 1
        if pos >= len(lines) or not lines[pos].startswith("index "):
            raise TlogProofError("missing `index N` line")
        index_text = lines[pos][len("index ") :]
        if not index_text.isdigit() or (index_text != "0" and index_text[0] == "0"):
            raise TlogProofError(f"index {index_text!r} is not a decimal without leading zeroes")
        hashes = [b64decode_strict(line) for line in lines[pos + 1 :]]
    except NoteError as exc:
        raise TlogProofError(str(exc)) from None
    if any(len(h) != HASH_SIZE for h in hashes):
        raise TlogProofError("every proof line must be a base64 SHA-256 hash")
    return TlogProof(int(index_text), hashes, checkpoint, extra)


def verify_tlog_proof(
    data: bytes,
    origin: str,
    verifiers: Iterable[Verifier],
    entry: bytes | None = None,
    *,
    required: Iterable[Verifier] = (),
) -> tuple[TlogProof, SignedCheckpoint, bytes]:
    """Check a tlog-proof offline; return it, its checkpoint and the proven leaf hash.

    The leaf hash comes from `entry` when given (and must then equal the one in
    `extra`, if any), else from `extra`. The checkpoint must also carry a valid
    signature by every `required` key (e.g. the log's ML-DSA-44 key).
    """
    proof = parse_tlog_proof(data)
    try:
        signed = open_checkpoint(proof.checkpoint, origin, verifiers, required=required)
    except NoteError as exc:
        raise TlogProofError(f"checkpoint: {exc}") from None
    if entry is not None:
        leaf = leaf_hash(entry)
        if proof.extra is not None and proof.extra != leaf:
            raise TlogProofError("the entry does not hash to the leaf hash this proof is for")
    elif proof.extra is not None and len(proof.extra) == HASH_SIZE:
        leaf = proof.extra
    else:
        raise TlogProofError("no entry given and the proof carries no leaf hash; pass the entry")
    try:
        verify_inclusion(proof.index, signed.checkpoint.size, leaf, proof.proof, signed.checkpoint.root)
    except ProofError as exc:
        raise TlogProofError(str(exc)) from None
    return proof, signed, leaf
