"""ML-DSA-44 note signatures (c2sp.org/tlog-cosignature, type 0x06) against the torchwood golden vector."""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sealtrail.checkpoint import Checkpoint, CheckpointError, open_checkpoint, sign_checkpoint
from sealtrail.mldsa import (
    ALG_MLDSA44,
    SIGNATURE_SIZE,
    MLDSASigner,
    MLDSAVerifier,
    generate_mldsa44,
    parse_mldsa_signer,
    parse_mldsa_verifier,
    subtree_message,
    valid_subtree,
)
from sealtrail.note import NoteError, Signature, generate_ed25519, open_note, parse_note, parse_verifier

ORIGIN = "example.com/pq-log"


@dataclass(frozen=True)
class Golden:
    vkey: str
    line: str
    meta: dict[str, Any]

    @property
    def signature(self) -> Signature:
        """The vector's signature line, parsed as a note signature line."""
        _, signatures = parse_note(b"x\n\n" + self.line.encode())
        assert len(signatures) == 1
        return signatures[0]

    @property
    def hash(self) -> bytes:
        return base64.b64decode(self.meta["subtree_hash_b64"])


@pytest.fixture(scope="module")
def golden(vectors: Path) -> Golden:
    base = vectors / "signed-note"
    meta = json.loads((base / "mldsa44-subtree-cosig.json").read_text())
    return Golden(
        (base / meta["vkey_file"]).read_text().strip(), (base / meta["signature_line_file"]).read_text(), meta
    )


def _flip(data: bytes, at: int) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


# -- the golden vector, byte for byte ----------------------------------------------------------


def test_golden_vkey_parses_with_its_key_id(golden: Golden) -> None:
    verifier = parse_mldsa_verifier(golden.vkey)
    assert verifier.name == "witness.example/w1"
    assert f"{verifier.key_id:08x}" == golden.vkey.split("+")[1]
    assert verifier.vkey == golden.vkey
    assert (golden.signature.name, golden.signature.key_id) == (verifier.name, verifier.key_id)


def test_golden_signed_message_is_rebuilt_exactly(golden: Golden) -> None:
    meta = golden.meta
    message = subtree_message(
        "witness.example/w1", meta["timestamp"], meta["log_origin"], meta["start"], meta["end"], golden.hash
    )
    assert message == bytes.fromhex(meta["cosigned_message_hex"])


def test_golden_signature_verifies(golden: Golden) -> None:
    verifier = parse_mldsa_verifier(golden.vkey)
    meta, signature = golden.meta, golden.signature.signature
    assert len(signature) == 8 + SIGNATURE_SIZE
    assert verifier.timestamp(signature) == meta["timestamp"] == 0
    assert verifier.verify_subtree(meta["log_origin"], meta["start"], meta["end"], golden.hash, signature)


@pytest.mark.parametrize(
    "change",
    [
        {"log_origin": "example.com/log2"},
        {"start": 0},
        {"end": 14},
        {"end": 12},
        {"hash": hashlib.sha256(b"other").digest()},
    ],
)
def test_golden_signature_rejects_another_subtree(golden: Golden, change: dict[str, Any]) -> None:
    verifier = parse_mldsa_verifier(golden.vkey)
    args = {"log_origin": golden.meta["log_origin"], "start": 8, "end": 13, "hash": golden.hash} | change
    assert not verifier.verify_subtree(
        args["log_origin"], args["start"], args["end"], args["hash"], golden.signature.signature
    )


@pytest.mark.parametrize("at", [0, 7, 8, 100, 8 + SIGNATURE_SIZE - 1])
def test_golden_signature_rejects_a_flipped_byte(golden: Golden, at: int) -> None:
    """Bytes 0-7 are the timestamp (signed too), the rest the ML-DSA-44 signature."""
    verifier = parse_mldsa_verifier(golden.vkey)
    bad = _flip(golden.signature.signature, at)
    assert not verifier.verify_subtree(golden.meta["log_origin"], 8, 13, golden.hash, bad)


def test_golden_signature_rejects_another_cosigner_name(golden: Golden) -> None:
    """The message commits to the cosigner name: the same key under another name does not verify."""
    original = parse_mldsa_verifier(golden.vkey)
    renamed = MLDSAVerifier("witness.example/w2", original.public_key)
    assert not renamed.verify_subtree(golden.meta["log_origin"], 8, 13, golden.hash, golden.signature.signature)


def test_golden_signature_rejects_truncation(golden: Golden) -> None:
    verifier = parse_mldsa_verifier(golden.vkey)
    signature = golden.signature.signature
    for bad in (signature[:-1], signature + b"\x00", signature[8:]):
        assert not verifier.verify_subtree(golden.meta["log_origin"], 8, 13, golden.hash, bad)


def test_golden_vkey_mutations_are_refused(golden: Golden) -> None:
    name, hex8, key64 = golden.vkey.split("+", 2)
    key = base64.b64decode(key64)
    wrong_id = f"{name}+{int(hex8, 16) ^ 1:08x}+{key64}"
    with pytest.raises(NoteError, match="key ID"):
        parse_mldsa_verifier(wrong_id)
    ed25519_material = base64.b64encode(bytes([0x01]) + key[1:]).decode()
    as_ed25519_type = f"{name}+{hex8}+{ed25519_material}"
    with pytest.raises(NoteError, match="type 0x01"):
        parse_mldsa_verifier(as_ed25519_type)
    short = f"{name}+{hex8}+{base64.b64encode(key[:-1]).decode()}"
    with pytest.raises(NoteError, match="1312 bytes"):
        parse_mldsa_verifier(short)
    with pytest.raises(NoteError, match="type 0x06"):
        parse_verifier(golden.vkey)  # the Ed25519 parser refuses it: never mistaken for a type 0x01 key


# -- the message rules -------------------------------------------------------------------------


def test_subtrees() -> None:
    assert valid_subtree(0, 0)
    assert valid_subtree(0, 13)
    assert valid_subtree(8, 13)
    assert valid_subtree(8, 16)
    assert not valid_subtree(8, 17)  # 9 leaves need a start aligned to 16
    assert not valid_subtree(4, 13)
    assert not valid_subtree(5, 5)
    assert not valid_subtree(3, 2)


def test_message_rules() -> None:
    root = hashlib.sha256(b"r").digest()
    with pytest.raises(NoteError, match="timestamp must be zero"):
        subtree_message("w", 5, "o", 8, 13, root)
    with pytest.raises(NoteError, match="not a subtree"):
        subtree_message("w", 0, "o", 4, 13, root)
    with pytest.raises(NoteError, match="empty tree"):
        subtree_message("w", 0, "o", 0, 0, root)
    with pytest.raises(NoteError, match="out of range"):
        subtree_message("w", 2**63, "o", 0, 1, root)
    with pytest.raises(NoteError, match="1 to 255 bytes"):
        subtree_message("w", 0, "o" * 256, 0, 1, root)
    with pytest.raises(NoteError, match="32"):
        subtree_message("w", 0, "o", 0, 1, root[:31])
    empty = subtree_message("w", 7, "o", 0, 0, hashlib.sha256(b"").digest())
    assert empty == b"subtree/v1\n\x00" + b"\x01w" + struct.pack(">Q", 7) + b"\x01o" + bytes(16) + empty[-32:]


# -- keys and checkpoint signatures --------------------------------------------------------------


def test_keys_round_trip_in_the_go_formats() -> None:
    signer = generate_mldsa44(ORIGIN)
    name, hex8, private = signer.skey.split("+", 4)[2:]  # base64 may hold "+" too
    assert signer.skey.startswith("PRIVATE+KEY+")
    assert (name, int(hex8, 16)) == (ORIGIN, signer.key_id)
    assert base64.b64decode(private) == bytes([ALG_MLDSA44]) + signer.seed  # the 32-byte FIPS 204 seed
    parsed = parse_mldsa_signer(signer.skey)
    assert parsed.seed == signer.seed and parsed.public_key == signer.public_key
    assert parse_mldsa_verifier(signer.verifier.vkey) == signer.verifier
    bad_id = signer.skey.replace(f"+{hex8}+", f"+{signer.key_id ^ 1:08x}+")
    with pytest.raises(NoteError, match="key ID"):
        parse_mldsa_signer(bad_id)
    with pytest.raises(NoteError, match="type 0x06"):
        parse_mldsa_signer(generate_ed25519(ORIGIN).skey)


def test_checkpoint_signature_is_a_subtree_signature_of_the_whole_tree() -> None:
    signer = MLDSASigner(ORIGIN, generate_mldsa44(ORIGIN).seed, lambda: 1700000000)
    checkpoint = Checkpoint(ORIGIN, 13, hashlib.sha256(b"root").digest())
    text = checkpoint.text().encode()
    signature = signer.sign(text)
    verifier = signer.verifier
    assert verifier.timestamp(signature) == 1700000000
    assert verifier.verify(text, signature)
    assert verifier.verify_subtree(ORIGIN, 0, 13, checkpoint.root, signature)
    assert not verifier.verify(Checkpoint(ORIGIN, 14, checkpoint.root).text().encode(), signature)
    assert not verifier.verify(_flip(text, len(text) - 5), signature)
    assert not verifier.verify(text, _flip(signature, 3))  # the timestamp is signed


def test_checkpoints_with_extension_lines_are_refused() -> None:
    signer = generate_mldsa44(ORIGIN)
    plain = Checkpoint(ORIGIN, 3, hashlib.sha256(b"root").digest())
    extended = Checkpoint(ORIGIN, 3, plain.root, ("note: hello",))
    with pytest.raises(CheckpointError, match="extension"):
        signer.sign(extended.text().encode())
    signature = signer.sign(plain.text().encode())
    assert not signer.verifier.verify(extended.text().encode(), signature)


def test_a_checkpoint_with_both_signatures() -> None:
    """Ed25519 verifiers ignore the ML-DSA-44 line; requiring the ML-DSA-44 key checks it."""
    ed = generate_ed25519(ORIGIN)
    pq = generate_mldsa44(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 2, hashlib.sha256(b"root").digest()), ed, pq)
    opened = open_note(note, [ed.verifier])
    assert [s.key_id for s in opened.verified] == [ed.key_id]
    assert [s.key_id for s in opened.unverified] == [pq.key_id]
    both = open_checkpoint(note, ORIGIN, [ed.verifier], required=[pq.verifier])
    assert {s.key_id for s in both.note.verified} == {ed.key_id, pq.key_id}

    only_ed = sign_checkpoint(Checkpoint(ORIGIN, 2, hashlib.sha256(b"root").digest()), ed)
    with pytest.raises(CheckpointError, match="required key"):
        open_checkpoint(only_ed, ORIGIN, [ed.verifier], required=[pq.verifier])
    only_pq = sign_checkpoint(Checkpoint(ORIGIN, 2, hashlib.sha256(b"root").digest()), pq)
    with pytest.raises(CheckpointError, match="no signature by a known key"):
        open_checkpoint(only_pq, ORIGIN, [ed.verifier], required=[pq.verifier])
    other = generate_mldsa44(ORIGIN)
    with pytest.raises(CheckpointError, match="required key"):
        open_checkpoint(note, ORIGIN, [ed.verifier], required=[other.verifier])


def test_a_bad_ml_dsa_line_rejects_the_note_when_the_key_is_known() -> None:
    ed = generate_ed25519(ORIGIN)
    pq = generate_mldsa44(ORIGIN)
    note = sign_checkpoint(Checkpoint(ORIGIN, 2, hashlib.sha256(b"root").digest()), ed, pq)
    text, signatures = parse_note(note)
    forged = Signature(signatures[1].name, signatures[1].key_id, _flip(signatures[1].signature, 500))
    tampered = (text + "\n" + signatures[0].line() + forged.line()).encode()
    open_note(tampered, [ed.verifier])  # unknown to an Ed25519-only verifier: ignored
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(tampered, ORIGIN, [ed.verifier], required=[pq.verifier])


def test_key_names_must_fit_the_message() -> None:
    with pytest.raises(NoteError, match="key name"):
        generate_mldsa44("x" * 256)
    with pytest.raises(NoteError, match="key name"):
        generate_mldsa44("has space")
