"""c2sp.org/tlog-proof@v1: the offline receipt for one entry."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from rfc9162_reference import ref_leaf, ref_path
from sealtrail.checkpoint import Checkpoint, sign_checkpoint
from sealtrail.cosignature import CosignatureSigner
from sealtrail.note import Ed25519Verifier, generate_ed25519, parse_note, parse_verifier, sign_note
from sealtrail.tiles import decode_bundle
from sealtrail.tlogproof import HEADER, TlogProof, TlogProofError, parse_tlog_proof, verify_tlog_proof

ORIGIN = "example.com/log/testdata"

SPEC_EXAMPLE = (
    b"c2sp.org/tlog-proof@v1\n"
    b"extra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\n"
    b"index 73894\n"
    b"gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\n"
    b"B95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n"
    b"EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\n"
    b"RoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n"
    b"AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n"
    b"\n"
    b"example.com/fancylog\n"
    b"109482\n"
    b"sFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n"
    b"\n"
    b"\xe2\x80\x94 example.com/fancylog hI2DJw[...]1roloI=\n"
)


class TesseraLog:
    """The golden Tessera log: 15 entries, checkpoints at 7 and 15, the log's public key."""

    def __init__(self, vectors: Path) -> None:
        base = vectors / "tessera-log"
        self.entries = decode_bundle((base / "tile" / "entries" / "000.p" / "15").read_bytes(), 15)
        self.hashes = [ref_leaf(e) for e in self.entries]
        self.checkpoints = {n: (base / f"checkpoint.{n}").read_bytes() for n in (0, 7, 15)}
        self.verifier = parse_verifier((base / "log.vkey").read_text())

    def proof(self, index: int, size: int = 15, extra: bool = True) -> TlogProof:
        path = ref_path(index, self.hashes[:size])
        return TlogProof(index, path, self.checkpoints[size], self.hashes[index] if extra else None)


@pytest.fixture
def log(vectors: Path) -> TesseraLog:
    return TesseraLog(vectors)


# --- format ---------------------------------------------------------------------------------------


def test_encoding_follows_the_spec(log: TesseraLog) -> None:
    proof = log.proof(9)
    encoded = proof.encode()
    lines = [
        "c2sp.org/tlog-proof@v1",
        "extra " + base64.b64encode(log.hashes[9]).decode(),
        "index 9",
        *(base64.b64encode(h).decode() for h in proof.proof),
    ]
    assert encoded == ("\n".join(lines) + "\n\n").encode() + log.checkpoints[15]
    assert HEADER == "c2sp.org/tlog-proof@v1"


def test_encoding_without_extra(log: TesseraLog) -> None:
    proof = log.proof(0, extra=False)
    encoded = proof.encode()
    assert encoded.startswith(b"c2sp.org/tlog-proof@v1\nindex 0\n")
    assert b"extra" not in encoded.split(b"\n\n")[0]


@pytest.mark.parametrize(("index", "size"), [(0, 15), (6, 7), (14, 15), (0, 7), (7, 15)])
def test_round_trip(log: TesseraLog, index: int, size: int) -> None:
    for extra in (True, False):
        proof = log.proof(index, size, extra)
        parsed = parse_tlog_proof(proof.encode())
        assert parsed.index == index
        assert list(parsed.proof) == list(proof.proof)
        assert parsed.checkpoint == log.checkpoints[size]
        assert parsed.extra == proof.extra


def test_single_entry_tree_has_no_proof_lines() -> None:
    signer = generate_ed25519("example.com/one")
    entry = b"the only entry"
    leaf = hashlib.sha256(b"\x00" + entry).digest()
    checkpoint = sign_checkpoint(Checkpoint("example.com/one", 1, leaf), signer)
    data = TlogProof(0, [], checkpoint, leaf).encode()
    assert data.split(b"\n\n")[0].split(b"\n")[-1] == b"index 0"
    verify_tlog_proof(data, "example.com/one", [signer.verifier], entry)
    verify_tlog_proof(data, "example.com/one", [signer.verifier])


def test_spec_example_parses() -> None:
    parsed = parse_tlog_proof(SPEC_EXAMPLE)
    assert parsed.index == 73894
    assert parsed.extra == b"age-v1.2.1-darwin-arm64.tar.gz\x91\x85\xc9\xdd\xa5\xb8\xb5\x85\xc9"
    assert len(parsed.proof) == 5
    assert parsed.proof[0] == base64.b64decode("gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=")
    assert parsed.checkpoint.startswith(b"example.com/fancylog\n109482\n")
    assert parsed.checkpoint == SPEC_EXAMPLE.split(b"\n\n", 1)[1]


def _replace_head(data: bytes, head: str) -> bytes:
    return head.encode() + b"\n\n" + data.split(b"\n\n", 1)[1]


@pytest.mark.parametrize(
    "head",
    [
        "c2sp.org/tlog-proof@v2\nindex 1",
        "c2sp.org/tlog-proof\nindex 1",
        " c2sp.org/tlog-proof@v1\nindex 1",
        "c2sp.org/tlog-proof@v1 \nindex 1",
        "index 1",
        "c2sp.org/tlog-proof@v1",
        "c2sp.org/tlog-proof@v1\nindex 01",
        "c2sp.org/tlog-proof@v1\nindex 00",
        "c2sp.org/tlog-proof@v1\nindex -1",
        "c2sp.org/tlog-proof@v1\nindex +1",
        "c2sp.org/tlog-proof@v1\nindex  1",
        "c2sp.org/tlog-proof@v1\nindex 1 ",
        "c2sp.org/tlog-proof@v1\nindex ",
        "c2sp.org/tlog-proof@v1\nindex",
        "c2sp.org/tlog-proof@v1\nindex 0x1",
        "c2sp.org/tlog-proof@v1\nindex \u0661",
        "c2sp.org/tlog-proof@v1\nIndex 1",
        "c2sp.org/tlog-proof@v1\nindex 1\nextra AAAA",  # extra after the index
        "c2sp.org/tlog-proof@v1\nextra AAAA\nextra AAAA\nindex 1",
        "c2sp.org/tlog-proof@v1\nextra AA\nindex 1",  # bad base64
        "c2sp.org/tlog-proof@v1\nextra AB==\nindex 1",  # non-canonical base64
        "c2sp.org/tlog-proof@v1\nindex 1\n" + base64.b64encode(bytes(31)).decode(),  # short hash
        "c2sp.org/tlog-proof@v1\nindex 1\n" + base64.b64encode(bytes(33)).decode(),
        "c2sp.org/tlog-proof@v1\nindex 1\n" + base64.b64encode(bytes(32)).decode().rstrip("="),
        "c2sp.org/tlog-proof@v1\nindex 1\n" + base64.b64encode(bytes(32)).decode()[:-2] + "B=",
        "c2sp.org/tlog-proof@v1\nindex 1\n" + base64.b64encode(bytes(32)).decode() + " ",
    ],
)
def test_malformed_heads_rejected(log: TesseraLog, head: str) -> None:
    data = _replace_head(log.proof(1).encode(), head)
    with pytest.raises(TlogProofError):
        parse_tlog_proof(data)
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[1])


def test_missing_blank_line_rejected(log: TesseraLog) -> None:
    data = log.proof(1).encode()
    head, checkpoint = data.split(b"\n\n", 1)
    with pytest.raises(TlogProofError):
        parse_tlog_proof(head + b"\n")
    with pytest.raises(TlogProofError):
        parse_tlog_proof(head + b"\n" + checkpoint)


# --- verification ------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [7, 15])
def test_every_tessera_entry_verifies(log: TesseraLog, size: int) -> None:
    for index in range(size):
        with_extra = log.proof(index, size).encode()
        proof, signed, leaf = verify_tlog_proof(with_extra, ORIGIN, [log.verifier], log.entries[index])
        assert leaf == log.hashes[index]
        assert signed.checkpoint.size == size
        assert proof.index == index
        # Without the entry, the leaf hash in `extra` is what is proven.
        assert verify_tlog_proof(with_extra, ORIGIN, [log.verifier])[2] == log.hashes[index]
        # Without extra, the entry is needed.
        without_extra = log.proof(index, size, extra=False).encode()
        assert verify_tlog_proof(without_extra, ORIGIN, [log.verifier], log.entries[index])[2] == log.hashes[index]
        with pytest.raises(TlogProofError):
            verify_tlog_proof(without_extra, ORIGIN, [log.verifier])


def test_tampered_proof_hash_fails(log: TesseraLog) -> None:
    proof = log.proof(5)
    for i in range(len(proof.proof)):
        for bit in (0, 7, 255):
            hashes = [bytearray(h) for h in proof.proof]
            hashes[i][bit // 8] ^= 1 << (bit % 8)
            tampered = TlogProof(5, [bytes(h) for h in hashes], proof.checkpoint, proof.extra).encode()
            with pytest.raises(TlogProofError):
                verify_tlog_proof(tampered, ORIGIN, [log.verifier], log.entries[5])
            with pytest.raises(TlogProofError):
                verify_tlog_proof(tampered, ORIGIN, [log.verifier])


def test_proof_hashes_dropped_added_or_reordered_fail(log: TesseraLog) -> None:
    proof = log.proof(5)
    hashes = list(proof.proof)
    assert len(hashes) >= 3
    for variant in (hashes[:-1], hashes[1:], [*hashes, hashes[0]], [hashes[1], hashes[0], *hashes[2:]], []):
        data = TlogProof(5, variant, proof.checkpoint, proof.extra).encode()
        with pytest.raises(TlogProofError):
            verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[5])


def test_wrong_index_fails(log: TesseraLog) -> None:
    proof = log.proof(5)
    for index in (4, 6, 13, 15, 16, 1000):
        data = TlogProof(index, proof.proof, proof.checkpoint, proof.extra).encode()
        with pytest.raises(TlogProofError):
            verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[5])


def test_wrong_entry_fails(log: TesseraLog) -> None:
    data = log.proof(5).encode()
    for entry in (log.entries[4], log.entries[5] + b" ", b"", log.hashes[5]):
        with pytest.raises(TlogProofError):
            verify_tlog_proof(data, ORIGIN, [log.verifier], entry)
    # Without `extra` the inclusion proof itself must reject the wrong entry.
    data = log.proof(5, extra=False).encode()
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[4])


def test_extra_for_another_leaf_fails_without_entry(log: TesseraLog) -> None:
    proof = log.proof(5)
    data = TlogProof(5, proof.proof, proof.checkpoint, log.hashes[6]).encode()
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier])
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[5])


def test_tampered_checkpoint_fails(log: TesseraLog) -> None:
    proof = log.proof(5)
    cp = proof.checkpoint
    for tampered in (
        cp.replace(b"\n15\n", b"\n16\n", 1),
        cp.replace(b"\n15\n", b"\n14\n", 1),
        cp.replace(b"rKbD", b"rKbE", 1),
        cp.replace(b"example.com/log/testdata\n", b"example.com/log/testdatb\n", 1),
        cp[: cp.rindex(b"\n\n") + 2],  # signature stripped
        cp[:-3] + b"A=\n",
    ):
        assert tampered != cp
        data = TlogProof(5, proof.proof, tampered, proof.extra).encode()
        with pytest.raises(TlogProofError):
            verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[5])


def test_proof_against_another_checkpoint_fails(log: TesseraLog) -> None:
    """A proof computed for size 7 does not verify against the size-15 checkpoint."""
    proof = log.proof(3, 7)
    data = TlogProof(3, proof.proof, log.checkpoints[15], proof.extra).encode()
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier], log.entries[3])


def test_wrong_origin_or_key_fails(log: TesseraLog) -> None:
    data = log.proof(5).encode()
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, "example.com/log/other", [log.verifier], log.entries[5])
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [generate_ed25519(ORIGIN).verifier], log.entries[5])
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [], log.entries[5])


def test_index_beyond_the_checkpoint_fails(log: TesseraLog) -> None:
    data = TlogProof(0, [], log.checkpoints[0], hashlib.sha256(b"").digest()).encode()
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [log.verifier])


def test_cosigned_checkpoint_verifies_with_witness_key_only(log: TesseraLog) -> None:
    witness = CosignatureSigner("witness.example/w1", hashlib.sha256(b"w1").digest(), 1700000000)
    text, sigs = parse_note(log.checkpoints[15])
    cosigned = sign_note(text, [witness], existing=sigs)
    proof = log.proof(11)
    data = TlogProof(11, proof.proof, cosigned, proof.extra).encode()
    verify_tlog_proof(data, ORIGIN, [witness.verifier], log.entries[11])
    verify_tlog_proof(data, ORIGIN, [log.verifier, witness.verifier], log.entries[11])
    # An unrelated key with the log's name cannot stand in for it.
    impostor = Ed25519Verifier(ORIGIN, generate_ed25519("x.example").public_key)
    with pytest.raises(TlogProofError):
        verify_tlog_proof(data, ORIGIN, [impostor], log.entries[11])
