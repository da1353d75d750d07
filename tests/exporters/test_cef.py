"""CEF output read back by a parser written from the CEF Implementation Standard (_cef_parser.py)."""

from __future__ import annotations

import pytest

from _support import devsecops_event, devsecops_events
from sealtrail.event import prepare
from sealtrail.exporters.cef import escape_extension, escape_header, to_cef
from sealtrail.exporters.record import ForwardRecord, epoch_millis

from ._cef_parser import parse_cef
from ._records import ORIGIN, records

NASTY = "a|b\\c=d\ne\rf g|=\\\\"
"""Pipes, backslashes (one and two), equals signs, LF, CR and a space."""


def _record(**changes: object) -> ForwardRecord:
    event = dict(devsecops_event(4), **changes)  # an sshd failure: actor with IPv4, host target
    return records([prepare(event)], start=12)[0]


def test_header_escapes_pipes_and_backslashes_and_drops_newlines_only() -> None:
    assert escape_header("a|b") == "a\\|b"
    assert escape_header("a\\b") == "a\\\\b"
    assert escape_header("a=b") == "a=b", "equals signs need no escape in the header"
    assert escape_header("line1\nline2\r\nline3\rend") == "line1 line2 line3 end"
    assert escape_header("\\|") == "\\\\\\|"


def test_extension_escapes_equals_backslashes_and_newlines_but_not_pipes() -> None:
    assert escape_extension("a=b") == "a\\=b"
    assert escape_extension("a\\b") == "a\\\\b"
    assert escape_extension("a|b") == "a|b", "pipes need no escape in the extension"
    assert escape_extension("x\ny\rz") == "x\\ny\\rz"
    assert escape_extension("\\=") == "\\\\\\="


def test_nasty_values_round_trip_in_header_and_extension() -> None:
    record = _record(action=NASTY, actor={"name": NASTY, "ip": "198.51.100.7"}, env="prod=eu|1")
    line = to_cef(record)
    assert "\n" not in line and "\r" not in line
    parsed = parse_cef(line)
    assert parsed.version == "0"
    assert (parsed.vendor, parsed.product) == ("sealtrail", "sealtrail")
    assert parsed.signature_id == "auth.failure"
    assert parsed.name == NASTY.replace("\r", " ").replace("\n", " "), "the header keeps all but newlines"
    assert parsed.extension["act"] == NASTY and parsed.extension["suser"] == NASTY, "the extension keeps everything"
    assert parsed.extension["cs5"] == "prod=eu|1" and parsed.extension["cs5Label"] == "env"
    assert "|a\\|b\\\\c=d e f g\\|=\\\\\\\\|" in line, "the name field, escaped for the header"
    assert " act=a|b\\\\c\\=d\\ne\\rf g|\\=\\\\\\\\ " in line, "the same text, escaped for the extension"


def test_every_record_carries_its_log_position() -> None:
    prepared = devsecops_events(0, 20, "cef")
    for record, event in zip(records(prepared, start=100), prepared, strict=True):
        parsed = parse_cef(to_cef(record))
        ext = parsed.extension
        assert (ext["cn1"], ext["cn1Label"]) == (str(record.index), "logIndex")
        assert (ext["cs1"], ext["cs1Label"]) == (event.leaf_hash.hex(), "leafHash")
        assert (ext["cs2"], ext["cs2Label"]) == (ORIGIN, "logOrigin")
        assert ext["externalId"] == record.get("id") and ext["cat"] == record.kind
        assert ext["rt"] == str(epoch_millis(record.get("time")))
        assert ext["outcome"] == record.get("outcome")
        assert 0 <= int(parsed.severity) <= 10


def test_source_address_is_src_for_ipv4_and_c6a2_for_ipv6() -> None:
    v4 = parse_cef(to_cef(_record())).extension
    assert v4["src"] == "203.0.113.5" and "c6a2" not in v4
    v6 = parse_cef(to_cef(records([prepare(devsecops_event(9))])[0])).extension  # oidc login from 2001:db8::17
    assert "src" not in v6 and (v6["c6a2"], v6["c6a2Label"]) == ("2001:db8::17", "Source IPv6 Address")


def test_targets_map_to_destination_fields() -> None:
    ext = parse_cef(to_cef(_record())).extension
    assert ext["dhost"] == "bastion-01.acme.internal" and "duser" not in ext
    member = _record(target={"type": "user", "id": "mallory"})
    assert parse_cef(to_cef(member)).extension["duser"] == "mallory"


def test_severity_follows_the_kind() -> None:
    assert parse_cef(to_cef(records([prepare(devsecops_event(7))])[0])).severity == "8"  # secret alert: high
    assert parse_cef(to_cef(_record())).severity == "5"  # failed root login: medium
    assert parse_cef(to_cef(records([prepare(devsecops_event(0))])[0])).severity == "1"  # push: informational


def test_a_redacted_entry_is_still_a_cef_event() -> None:
    record = ForwardRecord(5, b"\x01" * 32, ORIGIN, None, {"id": "e-1", "reason": "erasure = done", "record_index": 9})
    parsed = parse_cef(to_cef(record))
    assert parsed.signature_id == "sealtrail.redacted" and parsed.name == "log entry 5 redacted"
    assert parsed.extension["reason"] == "erasure = done" and parsed.extension["cn1"] == "5"
    assert parsed.extension["cs1"] == "01" * 32


def test_the_reader_refuses_what_the_spec_forbids() -> None:
    """The oracle itself: an unescaped = in a value or a raw newline is not CEF."""
    with pytest.raises(ValueError, match="unescaped"):
        parse_cef("CEF:0|v|p|1|s|n|1|msg=a=b")
    with pytest.raises(ValueError, match="newline"):
        parse_cef("CEF:0|v|p|1|s|n\nx|1|msg=a")
