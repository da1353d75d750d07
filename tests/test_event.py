"""The event envelope (DESIGN.md §3): validation, defaults, canonical entry bytes, source signatures."""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from sealtrail.event import (
    EventError,
    PreparedBatch,
    PreparedEvent,
    delivery_id,
    format_time,
    is_out_of_line,
    normalise,
    prepare,
    prepare_batch,
    prepare_into,
    sign_event,
    signing_bytes,
    uuid7,
    verify_event_signature,
)
from sealtrail.note import Ed25519Signer, Ed25519Verifier, generate_ed25519

RECEIVED = "2026-11-26T13:24:51.123456Z"
EVENT_ID = "0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5f"
SALT = base64.b64encode(bytes(range(16))).decode()
CANONICAL_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
ENTRY_MAX = 65535


def minimal(**fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {"source": {"type": "github", "id": "acme/api"}, "kind": "code.push"}
    event.update(fields)
    return event


def full_event() -> dict[str, Any]:
    return {
        "v": 1,
        "id": EVENT_ID,
        "time": "2026-11-26T13:00:00.000001Z",
        "source": {"type": "github", "id": "acme/api", "delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958"},
        "kind": "code.push",
        "action": "push",
        "outcome": "success",
        "actor": {"id": "1234", "name": "octocat", "type": "user", "ip": "192.0.2.7"},
        "target": {"type": "repository", "id": "acme/api", "name": "api"},
        "env": "prod",
        "attrs": {
            "ref": "refs/heads/main",
            "commits": 3,
            "ratio": 0.25,
            "tags": ["a", "ü", "😀"],
            "nested": {"x": None},
        },
        "raw": {"after": "9f2c", "forced": False, "size": 1.5e3},
        "salt": SALT,
    }


def entry_json(entry: bytes) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(entry)
    return value


def message(exc: pytest.ExceptionInfo[EventError]) -> str:
    return str(exc.value)


# --- validation errors name the field ----------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (minimal(kind="Code.Push"), "kind"),
        (minimal(kind="code push"), "kind"),
        (minimal(kind=""), "kind"),
        (minimal(kind=".code"), "kind"),
        (minimal(kind="code..push"), "kind"),
        (minimal(kind=7), "kind"),
        (minimal(source={"type": "bitbucket", "id": "x"}), "source.type"),
        (minimal(source={"type": "GitHub", "id": "x"}), "source.type"),
        (minimal(source={"type": "", "id": "x"}), "source.type"),
        (minimal(source={"type": "github", "id": ""}), "source.id"),
        (minimal(source={"type": "github", "id": 5}), "source.id"),
        (minimal(id="not-a-uuid"), "id"),
        (minimal(id="0192f1e47a3b7c1d9e2f0a1b2c3d4e5f"), "id"),
        (minimal(id="0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5"), "id"),
        (minimal(id="0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5g"), "id"),
        (minimal(id=12), "id"),
        (minimal(time="yesterday"), "time"),
        (minimal(time="2026-13-01T00:00:00Z"), "time"),
        (minimal(time="2026-11-26T13:24:51"), "time"),
        (minimal(time="2026-11-26"), "time"),
        (minimal(time=1764163491), "time"),
        (minimal(received=RECEIVED), "received"),
        (minimal(actor={"ip": "999.1.1.1"}), "actor.ip"),
        (minimal(actor={"ip": "1.2.3"}), "actor.ip"),
        (minimal(actor={"ip": "localhost"}), "actor.ip"),
        (minimal(actor={"ip": "192.0.2.0/24"}), "actor.ip"),
        (minimal(actor={"ip": " 192.0.2.1"}), "actor.ip"),
        (minimal(actor={"ip": "01.2.3.4"}), "actor.ip"),
        (minimal(salt="abc"), "salt"),
        (minimal(salt=base64.b64encode(bytes(15)).decode()), "salt"),
        (minimal(salt=base64.b64encode(bytes(17)).decode()), "salt"),
        (minimal(salt=base64.b64encode(bytes(16)).decode().rstrip("=")), "salt"),
        (minimal(salt="AAAAAAAAAAAAAAAAAAAAAB=="), "salt"),  # 16 bytes, non-canonical padding bits
        (minimal(outcome="maybe"), "outcome"),
        (minimal(v=2), "v"),
        (minimal(actor={"nickname": "x"}), "actor"),
        (minimal(target={"id": ""}), "target.id"),
        (minimal(sig={"key": "k+00000000", "alg": "ed25519", "value": "A" * 86 + "=="}), "sig"),
        (minimal(id=EVENT_ID, sig={"key": "k+00000000", "alg": "ed25519", "value": "A" * 86 + "=="}), "sig"),
        (minimal(salt=SALT, sig={"key": "k+00000000", "alg": "ed25519", "value": "A" * 86 + "=="}), "sig"),
        (minimal(id=EVENT_ID, salt=SALT, sig={"key": "k+00000000", "alg": "rsa", "value": "A" * 86 + "=="}), "sig.alg"),
        (minimal(id=EVENT_ID, salt=SALT, sig={"key": "k+00000000", "alg": "ed25519", "value": "short"}), "sig.value"),
    ],
)
def test_validation_error_names_the_field(event: dict[str, Any], field: str) -> None:
    with pytest.raises(EventError) as exc:
        prepare(event, received=RECEIVED)
    assert message(exc).startswith(f"{field}:"), message(exc)
    # The same from JSON text (the ingest path).
    with pytest.raises(EventError) as exc:
        prepare(json.dumps(event).encode(), received=RECEIVED)
    assert message(exc).startswith(f"{field}:"), message(exc)


def test_unknown_field_is_named() -> None:
    for event in (minimal(severity="high"), minimal(actor={"id": "1", "email": "a@b"})):
        with pytest.raises(EventError) as exc:
            prepare(event, received=RECEIVED)
        unknown = "severity" if "severity" in event else "email"
        assert unknown in message(exc)


def test_missing_source_id_is_named() -> None:
    with pytest.raises(EventError) as exc:
        prepare(minimal(source={"type": "github"}), received=RECEIVED)
    assert message(exc).startswith("source")
    assert "id" in message(exc)


@pytest.mark.parametrize("missing", ["source", "kind"])
def test_required_fields(missing: str) -> None:
    event = minimal()
    del event[missing]
    with pytest.raises(EventError) as exc:
        prepare(event, received=RECEIVED)
    assert missing in message(exc)


@pytest.mark.parametrize("text", [b"", b"{", b"[]", b"null", b'"event"', b"\xff"])
def test_not_an_object(text: bytes) -> None:
    with pytest.raises(EventError):
        prepare(text, received=RECEIVED)


# --- defaults ----------------------------------------------------------------------------------


def test_defaults() -> None:
    prepared = prepare(minimal(), received=RECEIVED)
    entry = entry_json(prepared.entry)
    assert entry["v"] == 1
    assert entry["outcome"] == "unknown"
    assert entry["received"] == RECEIVED
    assert entry["time"] == RECEIVED
    assert set(entry) == {"v", "id", "time", "received", "source", "kind", "outcome", "salt"}
    # id: a UUIDv7 (RFC 9562 §5.7): version 7, variant 0b10.
    assert prepared.id == entry["id"]
    raw_id = bytes.fromhex(prepared.id.replace("-", ""))
    assert raw_id[6] >> 4 == 7
    assert raw_id[8] >> 6 == 0b10
    assert prepared.keys == (raw_id,)
    # salt: 16 random bytes, base64.
    salt = base64.b64decode(entry["salt"], validate=True)
    assert len(salt) == 16
    assert base64.b64encode(salt).decode() == entry["salt"]
    assert prepared.leaf_hash == hashlib.sha256(b"\x00" + prepared.entry).digest()
    assert prepared.blob is None


def test_default_received_is_now_in_canonical_form() -> None:
    entry = entry_json(prepare(minimal()).entry)
    assert CANONICAL_TIME.fullmatch(entry["received"])
    assert entry["time"] == entry["received"]


def test_fresh_ids_and_salts_differ() -> None:
    a, b = prepare(minimal(), received=RECEIVED), prepare(minimal(), received=RECEIVED)
    assert a.id != b.id
    assert entry_json(a.entry)["salt"] != entry_json(b.entry)["salt"]
    assert a.entry != b.entry


def test_given_id_salt_and_time_are_kept() -> None:
    entry = entry_json(prepare(full_event(), received=RECEIVED).entry)
    assert entry["id"] == EVENT_ID
    assert entry["salt"] == SALT
    assert entry["time"] == "2026-11-26T13:00:00.000001Z"
    assert entry["received"] == RECEIVED
    assert entry["outcome"] == "success"


def test_uppercase_id_is_lowercased() -> None:
    prepared = prepare(minimal(id=EVENT_ID.upper()), received=RECEIVED)
    assert prepared.id == EVENT_ID
    assert entry_json(prepared.entry)["id"] == EVENT_ID


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("2026-11-26T13:24:51Z", "2026-11-26T13:24:51.000000Z"),
        ("2026-11-26T14:24:51.5+01:00", "2026-11-26T13:24:51.500000Z"),
        ("2026-11-26T08:24:51.123456-05:00", "2026-11-26T13:24:51.123456Z"),
        ("2026-11-26T13:24:51.123456Z", "2026-11-26T13:24:51.123456Z"),
        ("2026-11-26T13:24:51.123456+00:00", "2026-11-26T13:24:51.123456Z"),
    ],
)
def test_time_is_normalised_to_utc_microseconds(given: str, stored: str) -> None:
    assert entry_json(prepare(minimal(time=given), received=RECEIVED).entry)["time"] == stored


def test_format_time() -> None:
    moment = datetime(2026, 11, 26, 13, 24, 51, 123456, tzinfo=UTC)
    assert format_time(moment) == "2026-11-26T13:24:51.123456Z"
    assert format_time(moment.astimezone(timezone(timedelta(hours=-5)))) == "2026-11-26T13:24:51.123456Z"
    assert format_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000000Z"
    with pytest.raises(EventError):
        format_time(datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "given", ["192.0.2.7", "2001:DB8::1", "2001:0db8:0000:0000:0000:0000:0000:0001", "::ffff:1.2.3.4"]
)
def test_ip_is_validated_and_kept_as_sent(given: str) -> None:
    # Not rewritten: a source signature covers the address as sent, and Python's
    # canonical text for some IPv6 forms changed between versions.
    entry = entry_json(prepare(minimal(actor={"ip": given}), received=RECEIVED).entry)
    assert entry["actor"] == {"ip": given}


def test_empty_actor_and_target_are_dropped() -> None:
    entry = entry_json(prepare(minimal(actor={}, target={}), received=RECEIVED).entry)
    assert "actor" not in entry
    assert "target" not in entry


# --- ids: UUIDv7 and delivery-derived UUIDv8 ------------------------------------------------------


def test_uuid7_layout() -> None:
    ms = 0x0192F1E47A3B
    value = uuid7(ms)
    raw = bytes.fromhex(value.replace("-", ""))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)
    assert int.from_bytes(raw[:6], "big") == ms
    assert uuid7(ms) != value  # 74 random bits
    ids = {uuid7() for _ in range(1000)}
    assert len(ids) == 1000
    for fresh in ids:
        assert fresh[14] == "7"
        assert fresh[19] in "89ab"


def test_delivery_id_is_uuidv8() -> None:
    value = delivery_id("github", "acme/api", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value)
    assert delivery_id("github", "acme/api", "72d3162e-cc78-11e3-81ab-4c9367dc0958") == value


def test_delivery_ids_differ_for_different_inputs() -> None:
    ids = {
        delivery_id("github", "acme/api", "d1"),
        delivery_id("github", "acme/api", "d2"),
        delivery_id("github", "acme/web", "d1"),
        delivery_id("gitlab", "acme/api", "d1"),
        delivery_id("github", "acme/apid", "1"),
        delivery_id("github", "acme", "api\nd1"),
    }
    assert len(ids) == 6


def test_delivery_id_fields_cannot_be_shifted() -> None:
    """(source id "a\\nb", delivery "c") and (source id "a", delivery "b\\nc") are different deliveries.

    If they derived the same id, the second would be dropped as a duplicate of the first.
    """
    assert delivery_id("github", "a\nb", "c") != delivery_id("github", "a", "b\nc")
    first = prepare(minimal(source={"type": "github", "id": "a\nb", "delivery": "c"}), received=RECEIVED)
    second = prepare(minimal(source={"type": "github", "id": "a", "delivery": "b\nc"}), received=RECEIVED)
    assert not set(first.keys) & set(second.keys)


def test_redelivery_gets_the_same_id() -> None:
    source = {"type": "github", "id": "acme/api", "delivery": "72d3162e"}
    first = prepare(minimal(source=source, attrs={"n": 1}), received=RECEIVED)
    again = prepare(minimal(source=dict(source), attrs={"n": 1}), received="2026-11-27T00:00:00.000000Z")
    assert first.id == again.id == delivery_id("github", "acme/api", "72d3162e")
    assert first.keys == again.keys == (bytes.fromhex(first.id.replace("-", "")),)
    other = prepare(minimal(source={**source, "delivery": "72d3162f"}), received=RECEIVED)
    assert other.id != first.id
    other_source = prepare(minimal(source={**source, "id": "acme/web"}), received=RECEIVED)
    assert other_source.id != first.id
    other_type = prepare(minimal(source={**source, "type": "gitlab"}), received=RECEIVED)
    assert other_type.id != first.id


def test_explicit_id_with_delivery_has_two_keys() -> None:
    source = {"type": "github", "id": "acme/api", "delivery": "72d3162e"}
    prepared = prepare(minimal(source=source, id=EVENT_ID), received=RECEIVED)
    assert prepared.id == EVENT_ID
    derived = bytes.fromhex(delivery_id("github", "acme/api", "72d3162e").replace("-", ""))
    assert prepared.keys == (bytes.fromhex(EVENT_ID.replace("-", "")), derived)


# --- canonical entry bytes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        minimal(),
        full_event(),
        minimal(attrs={"z": 1, "a": [3, 2, 1], "é": "\u2028", "\U0001f600": "grin", "\ue000": "private use"}),
        minimal(attrs={"f": 0.1, "g": -0.0, "h": 1e-7, "i": 5e-324, "j": 2**53 - 1}),
        minimal(raw={"control": "\x00\x1f\t", "quote": '"\\', "list": [None, True, False]}),
    ],
)
def test_entry_is_rfc8785_canonical(event: dict[str, Any]) -> None:
    prepared = prepare(event, received=RECEIVED)
    assert rfc8785.dumps(json.loads(prepared.entry)) == prepared.entry
    assert prepared.leaf_hash == hashlib.sha256(b"\x00" + prepared.entry).digest()
    text = prepare(json.dumps(event).encode(), received=RECEIVED)
    assert rfc8785.dumps(json.loads(text.entry)) == text.entry


@pytest.mark.parametrize(
    "event",
    [
        full_event(),
        {**minimal(), "id": EVENT_ID, "salt": SALT, "attrs": {"pi": 3.14159, "e": 2.5e-8, "big": 1e300, "n": -7}},
        {**minimal(), "id": EVENT_ID, "salt": SALT, "raw": [1.0, 2.50, {"k": "ü😀\u2028"}]},
    ],
)
def test_dict_and_json_text_give_identical_entries(event: dict[str, Any]) -> None:
    from_dict = prepare(event, received=RECEIVED)
    for text in (json.dumps(event), json.dumps(event, ensure_ascii=False, indent=2)):
        from_bytes = prepare(text.encode(), received=RECEIVED)
        from_str = prepare(text, received=RECEIVED)
        assert from_bytes.entry == from_dict.entry
        assert from_str.entry == from_dict.entry
        assert from_bytes.leaf_hash == from_dict.leaf_hash
        assert from_bytes.keys == from_dict.keys


def test_normalise_matches_prepare() -> None:
    env = normalise(full_event(), received=RECEIVED)
    assert env.id == EVENT_ID
    assert env.received == RECEIVED
    assert env.v == 1


# --- size limit and out-of-line raw ---------------------------------------------------------------------


def _sized(raw_len: int) -> dict[str, Any]:
    return minimal(id=EVENT_ID, salt=SALT, raw={"payload": "x" * raw_len})


def test_entry_at_the_limit_stays_inline() -> None:
    base = len(prepare(_sized(0), received=RECEIVED).entry)
    at_limit = prepare(_sized(ENTRY_MAX - base), received=RECEIVED)
    assert len(at_limit.entry) == ENTRY_MAX
    assert at_limit.blob is None
    assert entry_json(at_limit.entry)["raw"] == {"payload": "x" * (ENTRY_MAX - base)}
    over = prepare(_sized(ENTRY_MAX - base + 1), received=RECEIVED)
    assert over.blob is not None
    assert len(over.entry) < ENTRY_MAX


def test_large_raw_is_stored_out_of_line() -> None:
    raw: dict[str, Any] = {"payload": "é" * 40000, "n": [1, 2.5, None], "a": True}
    event = minimal(id=EVENT_ID, salt=SALT, raw=raw)
    prepared = prepare(event, received=RECEIVED)
    assert len(prepared.entry) <= ENTRY_MAX
    canonical_raw = rfc8785.dumps(raw)
    digest = hashlib.sha256(canonical_raw).hexdigest()
    assert entry_json(prepared.entry)["raw"] == {"digest": f"sha256:{digest}", "size": len(canonical_raw)}
    assert prepared.blob == (digest, canonical_raw)
    assert is_out_of_line(entry_json(prepared.entry)["raw"])
    assert rfc8785.dumps(json.loads(prepared.entry)) == prepared.entry
    # The same from JSON text.
    from_text = prepare(json.dumps(event).encode(), received=RECEIVED)
    assert from_text.entry == prepared.entry
    assert from_text.blob == prepared.blob


def test_large_string_raw_is_stored_out_of_line() -> None:
    raw = "line\n" * 20000
    prepared = prepare(minimal(raw=raw), received=RECEIVED)
    canonical_raw = rfc8785.dumps(raw)
    assert prepared.blob == (hashlib.sha256(canonical_raw).hexdigest(), canonical_raw)


def test_small_raw_is_inline() -> None:
    prepared = prepare(minimal(raw={"digest": "not really", "size": 3}), received=RECEIVED)
    assert prepared.blob is None
    assert not is_out_of_line(entry_json(prepared.entry)["raw"])


def test_too_big_even_without_raw() -> None:
    with pytest.raises(EventError) as exc:
        prepare(minimal(attrs={"big": "x" * 70000}), received=RECEIVED)
    assert "65" in message(exc)
    with pytest.raises(EventError):
        prepare(minimal(attrs={"big": "x" * 70000}, raw={"also": "y" * 70000}), received=RECEIVED)
    with pytest.raises(EventError):
        prepare(json.dumps(minimal(attrs={"big": "x" * 70000})).encode(), received=RECEIVED)


def test_raw_over_the_blob_limit_rejected() -> None:
    with pytest.raises(EventError) as exc:
        prepare(minimal(raw="x" * (8 * 1024 * 1024 + 1)), received=RECEIVED)
    assert message(exc).startswith("raw:")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53, -(2**60)])
def test_unrepresentable_values_rejected(value: Any) -> None:
    with pytest.raises(EventError):
        prepare(minimal(attrs={"x": value}), received=RECEIVED)


@pytest.mark.parametrize(
    "value",
    [b"bytes", bytearray(b"x"), {1, 2}, Decimal("1.5"), datetime(2026, 1, 1, tzinfo=UTC), UUID(int=1)],
    ids=["bytes", "bytearray", "set", "decimal", "datetime", "uuid"],
)
def test_non_json_python_values_rejected(value: Any) -> None:
    """A Python value with no JSON form is refused, not silently converted (rfc8785 refuses it too)."""
    with pytest.raises(EventError):
        prepare(minimal(attrs={"x": value}), received=RECEIVED)
    with pytest.raises(EventError):
        prepare(minimal(raw={"x": [value]}), received=RECEIVED)


# --- source signatures -----------------------------------------------------------------------------


def signed_full_event() -> tuple[dict[str, Any], Ed25519Signer]:
    signer = generate_ed25519("ci.example.com/signer")
    event = full_event()
    event["source"] = {"type": "api", "id": "ci.example.com"}
    return sign_event(event, signer), signer


def test_sign_and_verify_round_trip() -> None:
    signed, signer = signed_full_event()
    assert signed["sig"]["alg"] == "ed25519"
    assert signed["sig"]["key"] == f"{signer.name}+{signer.key_id:08x}"
    assert verify_event_signature(signed, [signer.verifier]) == signer.verifier
    # Independently: Ed25519 over RFC 8785 of the envelope without sig.
    unsigned = {k: v for k, v in signed.items() if k != "sig"}
    assert signing_bytes(signed) == rfc8785.dumps(unsigned)
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(
        base64.b64decode(signed["sig"]["value"]), rfc8785.dumps(unsigned)
    )


def test_sign_event_fixes_id_and_salt() -> None:
    signer = generate_ed25519("ci.example.com/signer")
    signed = sign_event(minimal(source={"type": "api", "id": "ci"}), signer)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", signed["id"])
    assert len(base64.b64decode(signed["salt"])) == 16
    verify_event_signature(signed, [signer.verifier])


def test_received_added_after_signing_keeps_the_signature() -> None:
    signed, signer = signed_full_event()
    prepared = prepare(signed, received=RECEIVED)
    stored = entry_json(prepared.entry)
    assert stored["received"] == RECEIVED
    assert stored["sig"] == signed["sig"]
    assert verify_event_signature(stored, [signer.verifier]) == signer.verifier
    # ... whatever the received time.
    later = entry_json(prepare(signed, received="2030-01-01T00:00:00.000000Z").entry)
    verify_event_signature(later, [signer.verifier])


def test_signed_json_text_ingest_keeps_the_signature() -> None:
    signed, signer = signed_full_event()
    prepared = prepare(json.dumps(signed).encode(), received=RECEIVED)
    verify_event_signature(entry_json(prepared.entry), [signer.verifier])


@pytest.mark.parametrize(
    "envelope",
    [
        minimal(source={"type": "api", "id": "ci"}),  # relies on the v, outcome and time defaults
        minimal(source={"type": "api", "id": "ci"}, v=1, outcome="success", time="2026-11-26T14:00:00+01:00"),
        minimal(
            source={"type": "api", "id": "ci"},
            v=1,
            outcome="success",
            time="2026-11-26T13:00:00.000000Z",
            actor={"ip": "2001:DB8::1"},
        ),
        minimal(source={"type": "api", "id": "ci"}, v=1, outcome="success", time=RECEIVED, id=EVENT_ID.upper()),
    ],
    ids=["defaults-filled-in", "time-offset", "ip-uppercase", "id-uppercase"],
)
def test_signed_event_is_never_stored_with_a_broken_signature(envelope: dict[str, Any]) -> None:
    """prepare may refuse a signed event it would have to change, but must not store one that no longer verifies."""
    signer = generate_ed25519("ci.example.com/signer")
    signed = sign_event(envelope, signer)
    verify_event_signature(signed, [signer.verifier])
    try:
        prepared = prepare(signed, received=RECEIVED)
    except EventError as exc:
        assert str(exc).startswith("sig")
        return
    verify_event_signature(entry_json(prepared.entry), [signer.verifier])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kind", "deploy"),
        ("outcome", "failure"),
        ("time", "2026-11-26T13:00:00.000002Z"),
        ("salt", base64.b64encode(bytes(16)).decode()),
        ("id", "0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e50"),
        ("env", "staging"),
        ("extra", "added"),
    ],
)
def test_tampered_event_fails(field: str, value: Any) -> None:
    signed, signer = signed_full_event()
    tampered = {**signed, field: value}
    with pytest.raises(EventError):
        verify_event_signature(tampered, [signer.verifier])


@pytest.mark.parametrize(
    ("path", "value"),
    [(("attrs", "commits"), 4), (("raw", "forced"), True), (("actor", "name"), "mallory"), (("source", "id"), "x")],
)
def test_tampered_nested_values_fail(path: tuple[str, str], value: Any) -> None:
    signed, signer = signed_full_event()
    tampered = json.loads(json.dumps(signed))
    tampered[path[0]][path[1]] = value
    with pytest.raises(EventError):
        verify_event_signature(tampered, [signer.verifier])
    dropped = {k: v for k, v in signed.items() if k != "target"}
    with pytest.raises(EventError):
        verify_event_signature(dropped, [signer.verifier])


def test_tampered_signature_value_fails() -> None:
    signed, signer = signed_full_event()
    raw = bytearray(base64.b64decode(signed["sig"]["value"]))
    raw[0] ^= 1
    tampered = {**signed, "sig": {**signed["sig"], "value": base64.b64encode(bytes(raw)).decode()}}
    with pytest.raises(EventError):
        verify_event_signature(tampered, [signer.verifier])
    missing = {k: v for k, v in signed.items() if k != "sig"}
    with pytest.raises(EventError):
        verify_event_signature(missing, [signer.verifier])


def test_wrong_key_fails() -> None:
    signed, signer = signed_full_event()
    other = generate_ed25519("ci.example.com/signer")
    with pytest.raises(EventError):
        verify_event_signature(signed, [other.verifier])
    with pytest.raises(EventError):
        verify_event_signature(signed, [])

    class Impostor:
        """Claims the signer's name and key ID, holds another public key."""

        name = signer.name
        key_id = signer.key_id
        inner = Ed25519Verifier(signer.name, other.public_key)

        def verify(self, text: bytes, signature: bytes) -> bool:
            return self.inner.verify(text, signature)

    with pytest.raises(EventError):
        verify_event_signature(signed, [Impostor()])


# --- prepared batches: columns that stand for a list of PreparedEvents ----------------------------


def _varied_events() -> list[dict[str, Any]]:
    """Events with one key, two keys (an id and a different delivery), an out-of-line raw payload."""
    big_raw = {"log": "x" * (ENTRY_MAX + 10)}
    return [
        minimal(id=EVENT_ID, attrs={"n": 1}),
        minimal(source={"type": "github", "id": "acme/api", "delivery": "d-1"}),
        minimal(
            id="0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e60", source={"type": "github", "id": "acme/api", "delivery": "d-2"}
        ),
        minimal(id="0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e61", raw=big_raw),
        minimal(
            id="0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e62",
            actor={"name": "alice", "ip": "192.0.2.7"},
            target={"id": "acme/api"},
            env="prod",
        ),
    ]


def _batch_of(events: list[dict[str, Any]]) -> tuple[PreparedBatch, list[PreparedEvent]]:
    """The events prepared into a batch and, with the same salts (and ids or deliveries), one by one."""
    salted = [dict(event, salt=base64.b64encode(bytes([n]) * 16).decode()) for n, event in enumerate(events)]
    batch = PreparedBatch()
    for event in salted:
        prepare_into(batch, event, received=RECEIVED)
    return batch, [prepare(event, received=RECEIVED) for event in salted]


def test_a_batch_holds_what_prepare_makes() -> None:
    batch, one_by_one = _batch_of(_varied_events())
    assert len(batch) == len(one_by_one)
    assert list(batch) == one_by_one
    assert batch[-1] == one_by_one[-1] and batch[1] == one_by_one[1]
    assert len(batch[2].keys) == 2 and batch.more_keys == {2: batch[2].keys[1:]}
    assert batch[3].blob is not None and set(batch.blobs) == {3}
    assert all(event.index_row is not None for event in batch)
    with pytest.raises(IndexError):
        batch[len(one_by_one)]


def test_batch_slices_and_joins_keep_keys_and_blobs_with_their_events() -> None:
    batch, one_by_one = _batch_of(_varied_events())
    for start, stop in ((0, 2), (2, 5), (3, 4), (1, 1), (4, 99)):
        assert list(batch[start:stop]) == one_by_one[start:stop]
    joined = PreparedBatch()
    joined.extend(batch[3:])
    joined.extend(batch[:3])
    joined.extend(one_by_one[:1])  # a list of PreparedEvents joins too
    assert list(joined) == [*one_by_one[3:], *one_by_one[:3], one_by_one[0]]
    assert set(joined.blobs) == {0} and set(joined.more_keys) == {4}
    with pytest.raises(ValueError, match="contiguous"):
        batch[::2]


def test_batch_keys_are_every_dedup_key_at_its_event_index() -> None:
    batch, one_by_one = _batch_of(_varied_events())
    expected = sorted((key, 100 + n) for n, event in enumerate(one_by_one) for key in event.keys)
    assert sorted(batch.key_rows(100)) == expected
    assert sorted(batch.all_keys()) == sorted(key for key, _ in expected)


def test_a_batch_pickles_as_columns_and_comes_back_equal() -> None:
    batch, one_by_one = _batch_of(_varied_events())
    again = pickle.loads(pickle.dumps(batch))
    assert isinstance(again, PreparedBatch)
    assert list(again) == one_by_one
    assert again.rows == batch.rows


def test_batch_of_events_without_search_rows_leaves_them_to_the_store() -> None:
    event = prepare(minimal(), received=RECEIVED)._replace(index_row=None)
    batch = PreparedBatch.of([event])
    assert batch[0].index_row is None
    assert PreparedBatch.of(batch) is batch
    with pytest.raises(ValueError, match="no dedup key"):
        PreparedBatch.of([event._replace(keys=())])


def test_a_bad_kind_is_refused_whether_or_not_good_ones_came_first() -> None:
    prepare(minimal(kind="deploy.prod"), received=RECEIVED)
    for kind in ("deploy.prod.", "Deploy.prod", "deploy prod"):
        with pytest.raises(EventError, match=r"^kind: expected a lowercase dotted category"):
            prepare(minimal(kind=kind), received=RECEIVED)
    with pytest.raises(EventError, match=r"^event 1: kind: "):
        prepare_batch(json.dumps([minimal(), minimal(kind="no good")]))
