"""c2sp.org/tlog-witness wire formats: the spec's examples, real requests from litewitness, and malformed bodies."""

from __future__ import annotations

import base64
import re

import pytest

from _witness_fixtures import MemoryLog, interop_data
from sealtrail.note import Signature, parse_note
from sealtrail.witness.protocol import (
    MAX_BODY_BYTES,
    MAX_PROOF_LINES,
    AddCheckpointRequest,
    ProtocolError,
    format_signature_lines,
    format_size,
    parse_add_checkpoint,
    parse_signature_lines,
    parse_size,
)

SPEC_REQUEST = (
    "old 20852014\n"
    "PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=\n"
    "jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=\n"
    "5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=\n"
    "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=\n"
    "\n"
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 example.com/behind-the-sofa "
    "opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=\n"
).encode()
"""The example request body of c2sp.org/tlog-witness."""

SPEC_RESPONSE = (
    "\u2014 witness.example/w1 "
    "CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==\n"
    "\u2014 witness.example/w1 "
    "I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==\n"
    "\u2014 witness.example/w2 "
    "AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==\n"
).encode()
"""The example 200 response body of c2sp.org/tlog-witness."""

HASH = base64.b64encode(bytes(range(32))).decode()


def test_spec_example_request_parses_and_encodes_back_byte_for_byte() -> None:
    request = parse_add_checkpoint(SPEC_REQUEST)
    assert request.old_size == 20852014
    assert [base64.b64encode(h).decode() for h in request.proof] == SPEC_REQUEST.decode().split("\n")[1:5]
    text, signatures = parse_note(request.checkpoint)
    assert text.startswith("example.com/behind-the-sofa\n20852163\n")
    assert len(signatures) == 2
    assert request.encode() == SPEC_REQUEST


def test_litewitness_requests_parse_and_encode_back_byte_for_byte() -> None:
    for log in interop_data("litewitness-sigsum-requests.json")["logs"]:
        for case in log["requests"]:
            body = case["body"].encode()
            request = parse_add_checkpoint(body)
            assert request.encode() == body, case["name"]
            assert request.old_size == int(body.split(b"\n", 1)[0][len(b"old ") :])


def test_a_request_from_a_memory_log_round_trips() -> None:
    log = MemoryLog("example.com/log").grow(13)
    body = log.request(5)
    request = parse_add_checkpoint(body)
    assert request == AddCheckpointRequest(5, tuple(log.proof(5)), log.checkpoint())
    assert body.startswith(b"old 5\n") and b"\n\nexample.com/log\n13\n" in body


def _body(head: str, checkpoint: bytes | None = None) -> bytes:
    note = checkpoint if checkpoint is not None else MemoryLog("example.com/log").grow(1).checkpoint()
    return head.encode() + note


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"old 0\n" + b"example.com/log\n1\n" + HASH.encode() + b"\n", "no empty line"),
        (_body("0\n\n"), "`old <size>`"),
        (_body("old\n\n"), "`old <size>`"),
        (_body("Old 0\n\n"), "`old <size>`"),
        (_body("old  0\n\n"), "no leading zeroes"),
        (_body("old 007\n\n"), "no leading zeroes"),
        (_body("old +1\n\n"), "no leading zeroes"),
        (_body("old -1\n\n"), "no leading zeroes"),
        (_body("old 1 \n\n"), "no leading zeroes"),
        (_body("old 0x10\n\n"), "no leading zeroes"),
        (_body("old \u0661\n\n"), "ASCII"),
        (_body(f"old {2**63}\n\n"), "larger than"),
        (_body("old 99999999999999999999999999999\n\n"), "larger than"),
        (_body("old 3\nnot base64!\n\n"), "proof line 1"),
        (_body(f"old 3\n{HASH}\n{HASH[:-2]}\n\n"), "proof line 2"),
        (_body(f"old 3\n{base64.b64encode(bytes(16)).decode()}\n\n"), "16 bytes"),
        (_body(f"old 3\n{HASH}\r\n\n"), "proof line 1"),
        (_body("old 3\n" + f"{HASH}\n" * (MAX_PROOF_LINES + 1) + "\n"), "more than 63"),
        (_body("old 0\n\n", b"example.com/log\n1\n" + HASH.encode() + b"\n"), "checkpoint:"),
        (_body("old 0\n\n", b"example.com/log\n1\n" + HASH.encode() + b"\n\n\xe2\x80\x94 k AAAA\n"), "checkpoint:"),
        (b"old 0\n\n" + bytes(MAX_BODY_BYTES), "larger than 65536"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(body: bytes, why: str) -> None:
    with pytest.raises(ProtocolError, match=re.escape(why)):
        parse_add_checkpoint(body)


def test_litewitness_too_many_proof_lines_vector_is_refused() -> None:
    """torchwood's TestTooManyProofs: 64 proof lines before a valid Sigsum checkpoint."""
    request = interop_data("litewitness-sigsum-requests.json")["logs"][0]["requests"][0]["body"]
    checkpoint = request.split("\n\n", 1)[1]
    body = "old 0\n" + "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 64 + "\n" + checkpoint
    with pytest.raises(ProtocolError, match="more than 63"):
        parse_add_checkpoint(body.encode())
    exactly = "old 0\n" + "KgEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n" * 63 + "\n" + checkpoint
    assert len(parse_add_checkpoint(exactly.encode()).proof) == 63


def test_encode_refuses_what_a_witness_would_refuse() -> None:
    note = MemoryLog("example.com/log").grow(1).checkpoint()
    with pytest.raises(ProtocolError, match="at most 63"):
        AddCheckpointRequest(1, (bytes(32),) * 64, note).encode()
    with pytest.raises(ProtocolError, match="32 bytes"):
        AddCheckpointRequest(1, (bytes(31),), note).encode()
    with pytest.raises(ProtocolError, match="out of range"):
        AddCheckpointRequest(-1, (), note).encode()


def test_size_body() -> None:
    assert format_size(0) == b"0\n"
    assert format_size(20852163) == b"20852163\n"
    assert parse_size(b"20852163\n") == 20852163
    assert parse_size(b"7") == 7
    for bad in (b"", b"\n", b"07\n", b"-1\n", b"1 \n", b"1\n\n", b"\xff\n"):
        with pytest.raises(ProtocolError):
            parse_size(bad)


def test_spec_example_response_parses_into_its_three_lines() -> None:
    signatures = parse_signature_lines(SPEC_RESPONSE)
    assert [s.name for s in signatures] == ["witness.example/w1", "witness.example/w1", "witness.example/w2"]
    assert all(len(s.signature) == 72 for s in signatures)  # key ID, then u64 timestamp || Ed25519 signature
    assert format_signature_lines(signatures) == SPEC_RESPONSE


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\n",
        SPEC_RESPONSE[:-1],
        b"-- witness.example/w1 AAAAAAAA\n",
        SPEC_RESPONSE + b"\n",
        SPEC_RESPONSE.replace(b"\n", b"\n\n", 1),
        "\u2014 witness.example/w1 not-base64\n".encode(),
        "\u2014 witness example/w1 AAAAAAAA\n".encode(),
    ],
)
def test_malformed_responses_are_refused(body: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_signature_lines(body)


def test_format_signature_lines_needs_one() -> None:
    with pytest.raises(ProtocolError):
        format_signature_lines([])
    line = format_signature_lines([Signature("w.example/1", 0x01020304, b"x" * 72)])
    assert line.startswith("\u2014 w.example/1 AQIDB".encode()) and line.endswith(b"\n")
