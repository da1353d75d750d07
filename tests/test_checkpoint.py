"""c2sp.org/tlog-checkpoint: format, parsing and the Tessera-written golden log."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sealtrail.checkpoint import Checkpoint, CheckpointError, open_checkpoint, parse_checkpoint, sign_checkpoint
from sealtrail.note import NoteError, generate_ed25519, open_note, parse_signer, parse_verifier, sign_note

ORIGIN = "example.com/log/testdata"
ROOT = hashlib.sha256(b"some root").digest()
ROOT64 = base64.b64encode(ROOT).decode()
URLSAFE = base64.urlsafe_b64encode(b"\xff" * 32).decode()


def tessera(vectors: Path, name: str) -> bytes:
    return (vectors / "tessera-log" / name).read_bytes()


# --- format ---------------------------------------------------------------------------------


def test_text_format() -> None:
    cp = Checkpoint("example.com/log", 20852163, ROOT)
    assert cp.text() == f"example.com/log\n20852163\n{ROOT64}\n"
    assert Checkpoint("o", 0, ROOT, ("ext one", "ext two")).text() == f"o\n0\n{ROOT64}\next one\next two\n"


def test_spec_example_parses() -> None:
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    cp = parse_checkpoint(text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.text() == text


origins = st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"], exclude_characters="\n"), min_size=1)
extension_lines = st.lists(
    st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1), max_size=3
)


@settings(max_examples=200, deadline=None)
@given(origins, st.integers(0, 2**64), st.binary(min_size=32, max_size=32), extension_lines)
def test_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    cp = Checkpoint(origin, size, root, tuple(extensions))
    text = cp.text()
    assert text.endswith("\n")
    assert text.split("\n")[1] == str(size)
    assert parse_checkpoint(text) == cp


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        f"{ORIGIN}\n",
        f"{ORIGIN}\n7\n",  # no root line
        f"{ORIGIN}\n{ROOT64}\n",  # no size line
        f"7\n{ROOT64}\n",  # no origin line
        f"\n7\n{ROOT64}\n",  # empty origin
        f"{ORIGIN}\n7\n{ROOT64}",  # no final newline
        f"{ORIGIN}\n07\n{ROOT64}\n",  # leading zero
        f"{ORIGIN}\n00\n{ROOT64}\n",
        f"{ORIGIN}\n+7\n{ROOT64}\n",
        f"{ORIGIN}\n-7\n{ROOT64}\n",
        f"{ORIGIN}\n 7\n{ROOT64}\n",
        f"{ORIGIN}\n7 \n{ROOT64}\n",
        f"{ORIGIN}\n\n{ROOT64}\n",
        f"{ORIGIN}\n0x7\n{ROOT64}\n",
        f"{ORIGIN}\n7.0\n{ROOT64}\n",
        f"{ORIGIN}\n1_000\n{ROOT64}\n",
        f"{ORIGIN}\n\u0663\n{ROOT64}\n",  # ARABIC-INDIC DIGIT THREE
        f"{ORIGIN}\n\uff17\n{ROOT64}\n",  # FULLWIDTH DIGIT SEVEN
        f"{ORIGIN}\n7\n{ROOT64.rstrip('=')}\n",  # base64 padding missing
        f"{ORIGIN}\n7\n{ROOT64[:-2]}B=\n",  # non-canonical padding bits
        f"{ORIGIN}\n7\n{URLSAFE}\n",  # URL-safe alphabet
        f"{ORIGIN}\n7\n not base64 \n",
        f"{ORIGIN}\n7\n\n",  # empty root
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte hash
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT + b'x').decode()}\n",  # 33-byte hash
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT * 2).decode()}\n",  # SHA-512-sized
        f"{ORIGIN}\n7\n{ROOT64}\n\n",  # empty extension line
        f"{ORIGIN}\n7\n{ROOT64}\next\n\n",
        f"{ORIGIN}\n7\n{ROOT64}\n\next\n",
    ],
)
def test_malformed_checkpoints_rejected(text: str) -> None:
    with pytest.raises(CheckpointError):
        parse_checkpoint(text)


def test_checkpoint_error_is_a_note_error() -> None:
    assert issubclass(CheckpointError, NoteError)


# --- the Tessera golden log ------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 7, 15])
def test_tessera_checkpoints_verify(vectors: Path, size: int) -> None:
    raw = tessera(vectors, f"checkpoint.{size}")
    verifier = parse_verifier(tessera(vectors, "log.vkey").decode())
    signed = open_checkpoint(raw, ORIGIN, [verifier])
    cp = signed.checkpoint
    assert cp.origin == ORIGIN
    assert cp.size == size
    lines = raw.decode().split("\n")
    assert lines[1] == str(size)
    assert cp.root == base64.b64decode(lines[2])
    assert cp.extensions == ()
    assert signed.raw == raw
    assert [s.name for s in signed.note.verified] == [ORIGIN]
    if size == 0:
        assert cp.root == hashlib.sha256(b"").digest()


@pytest.mark.parametrize("size", [0, 7, 15])
def test_tessera_checkpoints_reproduced_from_skey(vectors: Path, size: int) -> None:
    """Ed25519 is deterministic: our signer must write Tessera's checkpoints byte for byte."""
    raw = tessera(vectors, f"checkpoint.{size}")
    signer = parse_signer(tessera(vectors, "log.skey").decode())
    assert signer.verifier.vkey == tessera(vectors, "log.vkey").decode().strip()
    cp = parse_checkpoint(raw[: raw.rindex(b"\n\n") + 1].decode())
    assert sign_checkpoint(cp, signer) == raw


@pytest.mark.parametrize(
    "origin", ["example.com/log/other", "example.com/log/testdata/", "", "EXAMPLE.com/log/testdata"]
)
def test_wrong_origin_rejected(vectors: Path, origin: str) -> None:
    verifier = parse_verifier(tessera(vectors, "log.vkey").decode())
    with pytest.raises(CheckpointError):
        open_checkpoint(tessera(vectors, "checkpoint.15"), origin, [verifier])


def test_checkpoint_signed_by_unknown_key_rejected(vectors: Path) -> None:
    other = generate_ed25519(ORIGIN)
    with pytest.raises(NoteError):
        open_checkpoint(tessera(vectors, "checkpoint.15"), ORIGIN, [other.verifier])


def test_tampered_tessera_checkpoint_rejected(vectors: Path) -> None:
    verifier = parse_verifier(tessera(vectors, "log.vkey").decode())
    raw = tessera(vectors, "checkpoint.15")
    for old, new in ((b"\n15\n", b"\n16\n"), (b"\n15\n", b"\n015\n"), (b"rKbD", b"rKbE")):
        tampered = raw.replace(old, new, 1)
        assert tampered != raw
        with pytest.raises(NoteError):
            open_checkpoint(tampered, ORIGIN, [verifier])


def test_signed_but_malformed_checkpoint_rejected() -> None:
    """A valid signature does not make a malformed body acceptable."""
    signer = generate_ed25519("example.com/log")
    message = sign_note(f"example.com/log\n007\n{ROOT64}\n", [signer])
    assert open_note(message, [signer.verifier]).text.startswith("example.com/log")
    with pytest.raises(CheckpointError):
        open_checkpoint(message, "example.com/log", [signer.verifier])


def test_sign_checkpoint_requires_key_named_after_origin() -> None:
    signer = generate_ed25519("example.com/other")
    with pytest.raises(CheckpointError):
        sign_checkpoint(Checkpoint("example.com/log", 1, ROOT), signer)


def test_sign_and_open_round_trip() -> None:
    signer = generate_ed25519("example.com/log")
    cp = Checkpoint("example.com/log", 12345, ROOT)
    message = sign_checkpoint(cp, signer)
    assert message.startswith(cp.text().encode() + "\n\u2014 example.com/log ".encode())
    signed = open_checkpoint(message, "example.com/log", [signer.verifier])
    assert signed.checkpoint == cp
