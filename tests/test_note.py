"""c2sp.org/signed-note and Go sumdb/note keys: golden vectors and rejection rules."""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sealtrail.note import (
    MAX_SIGNATURES,
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    Signature,
    b64decode_strict,
    decode_vkey,
    generate_ed25519,
    key_id,
    open_note,
    parse_note,
    parse_signer,
    parse_verifier,
    sign_note,
)


def read(vectors: Path, name: str) -> str:
    return (vectors / "signed-note" / name).read_text()


def split_note(message: bytes) -> tuple[bytes, bytes]:
    """(text, signature block) split at the last blank line, independently of note.py."""
    cut = message.rindex(b"\n\n")
    return message[: cut + 1], message[cut + 2 :]


def sig_lines(message: bytes) -> list[tuple[str, bytes]]:
    """(key name, decoded base64) of each signature line."""
    out = []
    for line in split_note(message)[1].decode().splitlines():
        assert line.startswith("\u2014 ")
        name, sig64 = line[2:].split(" ")
        out.append((name, base64.b64decode(sig64, validate=True)))
    return out


def build_note(text: bytes, sigs: list[tuple[str, bytes]]) -> bytes:
    lines = b"".join(f"\u2014 {name} {base64.b64encode(raw).decode()}\n".encode() for name, raw in sigs)
    return text + b"\n" + lines


@pytest.fixture
def peter(vectors: Path) -> Ed25519Signer:
    return parse_signer(read(vectors, "sumdb-PeterNeumann.skey"))


@pytest.fixture
def peter_note(vectors: Path) -> bytes:
    return (vectors / "signed-note" / "sumdb-PeterNeumann.signed-note").read_bytes()


# --- golden vectors -----------------------------------------------------------------------


def test_c2sp_example_verifies(vectors: Path) -> None:
    verifier = parse_verifier(read(vectors, "c2sp-signed-note-example.vkey"))
    message = (vectors / "signed-note" / "c2sp-signed-note-example.note").read_bytes()
    opened = open_note(message, [verifier])
    assert opened.text == "This is an example message.\n"
    assert opened.text.encode() == split_note(message)[0]
    assert [(s.name, s.key_id) for s in opened.verified] == [("example.com/foo", 0x530D903A)]
    assert opened.unverified == ()


def test_c2sp_example_key_id_is_sha256_of_name_type_and_key(vectors: Path) -> None:
    vkey = read(vectors, "c2sp-signed-note-example.vkey").strip()
    name, hex8, key64 = vkey.split("+", 2)
    material = base64.b64decode(key64)
    assert material[0] == 0x01
    expected = hashlib.sha256(name.encode() + b"\n" + material).digest()[:4]
    assert hex8 == expected.hex()
    verifier = parse_verifier(vkey)
    assert verifier.key_id == int.from_bytes(expected, "big")
    assert key_id(name, 0x01, material[1:]) == int.from_bytes(expected, "big")
    assert verifier.public_key == material[1:]
    assert decode_vkey(vkey) == (name, int(hex8, 16), 0x01, material[1:])


def test_sumdb_signer_reproduces_signed_note_byte_for_byte(
    vectors: Path, peter: Ed25519Signer, peter_note: bytes
) -> None:
    text, _ = split_note(peter_note)
    assert sign_note(text.decode(), [peter]) == peter_note


def test_sumdb_vkey_and_skey_reproduced(vectors: Path, peter: Ed25519Signer) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.verifier.vkey == read(vectors, "sumdb-PeterNeumann.vkey").strip()
    assert peter.skey == read(vectors, "sumdb-PeterNeumann.skey").strip()
    # Independently: the public key derived from the seed with `cryptography`.
    seed = base64.b64decode(read(vectors, "sumdb-PeterNeumann.skey").strip().split("+", 4)[4])[1:]
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert parse_verifier(read(vectors, "sumdb-PeterNeumann.vkey")).public_key == public


def test_sumdb_note_verifies(vectors: Path, peter_note: bytes) -> None:
    verifier = parse_verifier(read(vectors, "sumdb-PeterNeumann.vkey"))
    opened = open_note(peter_note, [verifier])
    assert opened.text.encode() == split_note(peter_note)[0]
    assert opened.text.startswith("If you think cryptography")
    assert len(opened.verified) == 1


# --- rejections ------------------------------------------------------------------------------


def test_wrong_key_is_rejected(peter: Ed25519Signer, peter_note: bytes) -> None:
    other = generate_ed25519("PeterNeumann")
    with pytest.raises(NoteError):
        open_note(peter_note, [other.verifier])
    with pytest.raises(NoteError):
        open_note(peter_note, [])


@dataclass(frozen=True)
class ImpostorVerifier:
    """A known name and key ID bound to the wrong public key: its signature must fail."""

    name: str
    key_id: int
    inner: Ed25519Verifier

    def verify(self, text: bytes, signature: bytes) -> bool:
        return self.inner.verify(text, signature)


def test_bad_signature_from_known_key_rejects_the_note(peter: Ed25519Signer, peter_note: bytes) -> None:
    impostor = ImpostorVerifier(peter.name, peter.key_id, generate_ed25519("PeterNeumann").verifier)
    with pytest.raises(NoteError):
        open_note(peter_note, [impostor])
    # Even when another known key signed correctly.
    witness = generate_ed25519("witness.example")
    message = sign_note(split_note(peter_note)[0].decode(), [peter, witness])
    assert len(open_note(message, [peter.verifier, witness.verifier]).verified) == 2
    with pytest.raises(NoteError):
        open_note(message, [impostor, witness.verifier])
    with pytest.raises(NoteError):
        open_note(message, [witness.verifier, impostor])


def test_every_text_byte_is_covered(peter: Ed25519Signer, peter_note: bytes) -> None:
    text, block = split_note(peter_note)
    for pos in range(len(text)):
        for mask in (0x01, 0x20, 0x80):
            changed = bytearray(text)
            changed[pos] ^= mask
            with pytest.raises(NoteError):
                open_note(bytes(changed) + b"\n" + block, [peter.verifier])


def test_changed_text_with_valid_layout_fails(peter: Ed25519Signer, peter_note: bytes) -> None:
    text, block = split_note(peter_note)
    for changed in (text + b"more\n", text[:-1] + b" \n", b"x" + text, text.replace(b"answer", b"Answer")):
        assert changed != text
        with pytest.raises(NoteError):
            open_note(changed + b"\n" + block, [peter.verifier])


def test_cut_and_truncated_signatures_fail(peter: Ed25519Signer, peter_note: bytes) -> None:
    text, block = split_note(peter_note)
    [(name, raw)] = sig_lines(peter_note)
    line = block.decode()
    bad = [
        text + b"\n" + line[:-2].encode() + b"\n",  # a base64 character cut off
        text + b"\n" + line.replace("=", "").encode(),  # padding cut off
        text + b"\n" + line[:-1].encode(),  # no final newline
        text + b"\n",  # no signature lines at all
        text,  # no blank line
        build_note(text, [(name, raw[:-1])]),  # signature one byte short
        build_note(text, [(name, raw[:-8])]),
        build_note(text, [(name, raw[:4])]),  # key ID only
        build_note(text, [(name, raw[:3])]),  # not even a key ID
        build_note(text, [(name, raw + b"\x00")]),  # one byte too many
    ]
    for message in bad:
        with pytest.raises(NoteError):
            open_note(message, [peter.verifier])


def test_signature_line_format_is_strict(peter: Ed25519Signer, peter_note: bytes) -> None:
    text, block = split_note(peter_note)
    line = block.decode()
    bad = [
        line.replace("\u2014 ", "- ", 1),  # hyphen instead of em dash
        line.replace("\u2014 ", "\u2014", 1),  # no space after the dash
        line.replace(" ", "  ", 2),  # two spaces after the name
        line.replace("PeterNeumann", "Peter+Neumann"),  # '+' in the name
    ]
    for sigs in bad:
        with pytest.raises(NoteError):
            open_note(text + b"\n" + sigs.encode(), [peter.verifier])


def test_unknown_key_signatures_are_ignored(peter: Ed25519Signer) -> None:
    text = "hello\nworld\n"
    strangers = [generate_ed25519(f"stranger{i}.example") for i in range(3)]
    message = sign_note(text, [strangers[0], peter, strangers[1], strangers[2]])
    opened = open_note(message, [peter.verifier])
    assert opened.text == text
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert sorted(s.name for s in opened.unverified) == sorted(s.name for s in strangers)


def test_signatures_sharing_only_name_or_only_id_are_ignored(peter: Ed25519Signer) -> None:
    """signed-note: ignore unknown keys even if they share a name or ID (but not both)."""
    text = b"shared name and id\n"
    good = peter.sign(text)
    garbage = bytes(64)
    same_name = ("PeterNeumann", struct.pack(">I", peter.key_id ^ 1) + garbage)
    same_id = ("PeterNeumann2", struct.pack(">I", peter.key_id) + garbage)
    real = ("PeterNeumann", struct.pack(">I", peter.key_id) + good)
    opened = open_note(build_note(text, [same_name, same_id, real]), [peter.verifier])
    assert len(opened.verified) == 1
    assert len(opened.unverified) == 2
    # Without the real signature nothing known verified: rejected.
    with pytest.raises(NoteError):
        open_note(build_note(text, [same_name, same_id]), [peter.verifier])


@pytest.mark.parametrize("count", [16, 17, 50, MAX_SIGNATURES])
def test_many_signatures_verify(count: int) -> None:
    assert MAX_SIGNATURES == 100
    signers = [generate_ed25519(f"witness{i}.example") for i in range(count)]
    message = sign_note("many signatures\n", signers)
    assert len(parse_note(message)[1]) == count
    opened = open_note(message, [s.verifier for s in signers])
    assert len(opened.verified) == count
    # Any single known key is enough; the rest are ignored.
    opened = open_note(message, [signers[-1].verifier])
    assert len(opened.verified) == 1
    assert len(opened.unverified) == count - 1


def test_more_than_100_signatures_rejected() -> None:
    signers = [generate_ed25519(f"witness{i}.example") for i in range(MAX_SIGNATURES + 1)]
    message = sign_note("too many signatures\n", signers)
    with pytest.raises(NoteError):
        parse_note(message)
    with pytest.raises(NoteError):
        open_note(message, [s.verifier for s in signers])


def _non_canonical(b64: str) -> str:
    """The same bytes with nonzero padding bits in the last base64 character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    stripped = b64.rstrip("=")
    pad = len(b64) - len(stripped)
    assert pad in (1, 2)
    last = alphabet.index(stripped[-1])
    spare = (1 << (2 * pad)) - 1  # 2 spare bits with one '=', 4 with two
    assert last & spare == 0
    return stripped[:-1] + alphabet[last | 1] + "=" * pad


def test_b64decode_strict() -> None:
    for raw in (b"", b"a", b"ab", b"abc", bytes(range(256))):
        assert b64decode_strict(base64.b64encode(raw).decode()) == raw
    for bad in (
        _non_canonical(base64.b64encode(b"a").decode()),  # "YR==" decodes to b"a" leniently
        _non_canonical(base64.b64encode(b"ab").decode()),
        "YQ",  # missing padding
        "YQ=",
        "YQ===",
        "Y Q==",
        "YQ==\n",
        "-_-_",  # URL-safe alphabet
        "YQ==YQ==",
        "@@@@",
    ):
        with pytest.raises(NoteError):
            b64decode_strict(bad)


def test_non_canonical_signature_base64_rejected(peter: Ed25519Signer, peter_note: bytes) -> None:
    text, block = split_note(peter_note)
    line = block.decode()[:-1]
    prefix, sig64 = line.rsplit(" ", 1)
    bent = _non_canonical(sig64)
    assert base64.b64decode(bent) == base64.b64decode(sig64)  # a lenient decoder would accept it
    with pytest.raises(NoteError):
        open_note(text + b"\n" + f"{prefix} {bent}\n".encode(), [peter.verifier])


@pytest.mark.parametrize("char", ["\t", "\r", "\x00", "\x1b", "\x1f", "\x0b", "\x0c"])
def test_control_characters_rejected(char: str, peter: Ed25519Signer) -> None:
    text = f"line with {char} inside\n"
    with pytest.raises(NoteError):
        sign_note(text, [peter])
    # A correctly signed note whose text holds the control character is refused too.
    body = text.encode()
    message = build_note(body, [(peter.name, struct.pack(">I", peter.key_id) + peter.sign(body))])
    with pytest.raises(NoteError):
        open_note(message, [peter.verifier])
    # ... and so is one in the signature block.
    good = sign_note("fine\n", [peter])
    with pytest.raises(NoteError):
        open_note(good[:-1] + char.encode() + b"\n", [peter.verifier])


def test_invalid_utf8_rejected(peter: Ed25519Signer) -> None:
    body = b"caf\xe9\n"
    message = build_note(body, [(peter.name, struct.pack(">I", peter.key_id) + peter.sign(body))])
    with pytest.raises(NoteError):
        open_note(message, [peter.verifier])


def test_text_must_end_with_newline(peter: Ed25519Signer) -> None:
    with pytest.raises(NoteError):
        sign_note("no newline", [peter])
    with pytest.raises(NoteError):
        sign_note("", [peter])


def test_text_may_contain_blank_lines(peter: Ed25519Signer) -> None:
    text = "first\n\nafter a blank line\n\n\nlast\n"
    opened = open_note(sign_note(text, [peter]), [peter.verifier])
    assert opened.text == text


def test_unicode_text_round_trips(peter: Ed25519Signer) -> None:
    text = "Ognuno sta solo sul cuor della terra\ned è subito sera — 🌅 \u2028\n"
    message = sign_note(text, [peter])
    assert open_note(message, [peter.verifier]).text == text
    [(name, raw)] = sig_lines(message)
    assert name == peter.name
    Ed25519PublicKey.from_public_bytes(peter.public_key).verify(raw[4:], text.encode())


# --- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["example.com/log", "PeterNeumann", "a", "witness.example/w1", "ünïcode.example"])
def test_generated_keys_round_trip(name: str) -> None:
    signer = generate_ed25519(name)
    again = parse_signer(signer.skey)
    assert again == signer
    assert signer.skey.startswith(f"PRIVATE+KEY+{name}+{signer.key_id:08x}+")
    verifier = parse_verifier(signer.verifier.vkey)
    assert verifier == signer.verifier
    assert signer.verifier.vkey.startswith(f"{name}+{signer.key_id:08x}+")
    expected_id = hashlib.sha256(name.encode() + b"\n\x01" + signer.public_key).digest()[:4]
    assert signer.key_id == int.from_bytes(expected_id, "big")
    message = sign_note("round trip\n", [again])
    opened = open_note(message, [verifier])
    assert opened.verified[0] == Signature(name, signer.key_id, signer.sign(b"round trip\n"))
    # Independently, with `cryptography`:
    [(_, raw)] = sig_lines(message)
    assert raw[:4] == expected_id
    Ed25519PublicKey.from_public_bytes(verifier.public_key).verify(raw[4:], b"round trip\n")


def test_generated_keys_differ() -> None:
    assert generate_ed25519("a.example").seed != generate_ed25519("a.example").seed


@pytest.mark.parametrize("name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name", "line\nbreak"])
def test_invalid_key_names_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        generate_ed25519(name)
    with pytest.raises(NoteError):
        Ed25519Verifier(name, bytes(32))


def test_vkey_with_wrong_key_id_rejected(vectors: Path) -> None:
    name, hex8, key64 = read(vectors, "sumdb-PeterNeumann.vkey").strip().split("+", 2)
    wrong = f"{int(hex8, 16) ^ 1:08x}"
    with pytest.raises(NoteError):
        parse_verifier(f"{name}+{wrong}+{key64}")
    with pytest.raises(NoteError):
        parse_verifier(f"Other+{hex8}+{key64}")


def test_skey_with_wrong_key_id_rejected(vectors: Path) -> None:
    parts = read(vectors, "sumdb-PeterNeumann.skey").strip().split("+", 4)
    parts[3] = f"{int(parts[3], 16) ^ 1:08x}"
    with pytest.raises(NoteError):
        parse_signer("+".join(parts))


def test_vkey_plus_in_base64_is_kept(vectors: Path) -> None:
    """Split on the first two '+' only: the base64 may contain '+'."""
    for _ in range(50):
        signer = generate_ed25519("plus.example")
        if "+" in signer.verifier.vkey.split("+", 2)[2]:
            break
    else:
        pytest.skip("no generated key had '+' in its base64")
    assert parse_verifier(signer.verifier.vkey) == signer.verifier
    # The skey of the vector has a '+' in its base64.
    skey = read(vectors, "sumdb-PeterNeumann.skey").strip()
    assert "+" in skey.split("+", 4)[4]
    assert parse_signer(skey).skey == skey


@pytest.mark.parametrize(
    "vkey",
    [
        "",
        "PeterNeumann",
        "PeterNeumann+c74f20a3",
        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3x+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==",
        "PeterNeumann+c74f20a3+",
        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        # type 0x04 (cosignature) is not an Ed25519 note key
        "PeterNeumann+c74f20a3+BBpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
    ],
)
def test_malformed_vkeys_rejected(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier(vkey)


@pytest.mark.parametrize(
    "skey",
    [
        "PRIVATE+KEY+PeterNeumann+c74f20a3",
        "PRIVATE+KEYS+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "private+key+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AoEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz",
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDF",
    ],
)
def test_malformed_skeys_rejected(skey: str) -> None:
    with pytest.raises(NoteError):
        parse_signer(skey)


def test_existing_signatures_are_kept(peter: Ed25519Signer) -> None:
    text = "cosigned later\n"
    first = sign_note(text, [peter])
    other = generate_ed25519("second.example")
    _, sigs = parse_note(first)
    both = sign_note(text, [other], existing=sigs)
    assert both.startswith(first)
    opened = open_note(both, [peter.verifier, other.verifier])
    assert [s.name for s in opened.verified] == ["PeterNeumann", "second.example"]


def test_sign_note_needs_a_signature() -> None:
    with pytest.raises(NoteError):
        sign_note("nobody signs\n", [])
