"""CloudEvents adapter: the HTTP binding's structured, binary and batched modes.

Events are made by the official `cloudevents` SDK — its current API
(cloudevents.core: CloudEvent, bindings.http.to_structured / to_binary, JSONFormat) and
its v1 API (cloudevents.v1.http.CloudEvent with cloudevents.v1.conversion) — and parsed
back. The SDK has no batch writer, so batches are JSON arrays of its JSONFormat output,
which is what the JSON format's batch section specifies.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cloudevents.core.bindings import http as ce_http
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from cloudevents.v1 import conversion as v1_conversion
from cloudevents.v1.http import CloudEvent as V1CloudEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from _gl_fixtures import stored
from sealtrail.event import prepare
from sealtrail.sources.base import SourcePayloadError
from sealtrail.sources.cloudevents import from_http

ATTRIBUTES: dict[str, Any] = {
    "type": "com.github.pull_request.opened",
    "source": "https://github.com/cloudevents/spec/pull",
    "id": "A234-1234-1234",
    "time": datetime(2018, 4, 5, 17, 31, tzinfo=UTC),
    "subject": "123",
    "datacontenttype": "application/json",
    "comexampleextension1": "value",
    "comexampleothervalue": 5,
}
DATA = {"action": "opened", "number": 123, "merged": False, "ratio": 0.25}


def event(data: dict[str, Any] | str | bytes | None = None, **changes: Any) -> CloudEvent:
    """A CloudEvent from the SDK (fresh attributes each time: the SDK keeps the dict)."""
    attributes = {key: value for key, value in (ATTRIBUTES | changes).items() if value is not None}
    return CloudEvent(attributes=attributes, data=DATA if data is None else data)


def structured(ce: CloudEvent) -> tuple[dict[str, str], bytes]:
    message = ce_http.to_structured(ce, JSONFormat())
    return message.headers, message.body


def binary(ce: CloudEvent) -> tuple[dict[str, str], bytes]:
    message = ce_http.to_binary(ce, JSONFormat())
    return message.headers, message.body


def batch(*events: CloudEvent) -> tuple[dict[str, str], bytes]:
    body = b"[" + b",".join(JSONFormat().write(ce) for ce in events) + b"]"
    return {"content-type": "application/cloudevents-batch+json"}, body


def parse(headers: dict[str, str], body: bytes) -> list[dict[str, Any]]:
    return stored(from_http(headers, body, "ce-gateway"))


# --- the three modes -------------------------------------------------------------------


def test_structured_event() -> None:
    """Structured mode: kind from type, action = type, CE time, delivery source#id, extensions in attrs."""
    (got,) = parse(*structured(event()))
    assert got["kind"] == "com.github.pull_request.opened"
    assert got["action"] == "com.github.pull_request.opened"
    assert got["time"] == "2018-04-05T17:31:00.000000Z"
    assert got["source"] == {
        "type": "cloudevents",
        "id": "ce-gateway",
        "delivery": "https://github.com/cloudevents/spec/pull#A234-1234-1234",
    }
    assert got["target"] == {"name": "123"}
    assert got["attrs"] == {
        "source": "https://github.com/cloudevents/spec/pull",
        "subject": "123",
        "datacontenttype": "application/json",
        "comexampleextension1": "value",
        "comexampleothervalue": 5,
    }
    assert got["raw"]["data"] == DATA
    assert got["raw"]["specversion"] == "1.0"
    assert got["outcome"] == "unknown"


def test_binary_event() -> None:
    """Binary mode: ce- headers are the attributes, Content-Type the datacontenttype, the body the data."""
    (got,) = parse(*binary(event()))
    assert got["kind"] == "com.github.pull_request.opened"
    assert got["time"] == "2018-04-05T17:31:00.000000Z"
    assert got["source"]["delivery"] == "https://github.com/cloudevents/spec/pull#A234-1234-1234"
    assert got["attrs"]["comexampleextension1"] == "value"
    assert got["attrs"]["comexampleothervalue"] == "5"  # headers carry strings
    assert got["raw"]["data"] == DATA
    assert got["raw"]["datacontenttype"] == "application/json"


def test_binary_headers_are_percent_decoded() -> None:
    """Header values are percent-encoded by the binding (§3.1.3.2); the attribute is the decoded text."""
    ce = event("café ✓", datacontenttype="text/plain; charset=utf-8", comexampleextension1='a b"%✓', subject="ä/ö")
    headers, body = binary(ce)
    assert "%" in headers["ce-comexampleextension1"]  # the SDK did encode it
    (got,) = parse(headers, body)
    assert got["attrs"]["comexampleextension1"] == 'a b"%✓'
    assert got["target"] == {"name": "ä/ö"}
    assert got["raw"]["data"] == "café ✓"


def test_batch() -> None:
    """Batched mode: every event of the array, in order, each with its own delivery."""
    events = [event(id=f"evt-{n}", data={"n": n}) for n in range(3)]
    got = parse(*batch(*events))
    assert [e["source"]["delivery"] for e in got] == [
        f"https://github.com/cloudevents/spec/pull#evt-{n}" for n in range(3)
    ]
    assert [e["raw"]["data"] for e in got] == [{"n": 0}, {"n": 1}, {"n": 2}]


def test_empty_batch() -> None:
    """An empty batch is valid and holds no events."""
    assert from_http({"Content-Type": "application/cloudevents-batch+json"}, b"[]", "ce") == []


@given(
    data=st.dictionaries(
        st.text(max_size=8),
        st.one_of(st.none(), st.booleans(), st.integers(-(2**53) + 1, 2**53 - 1), st.text(max_size=20)),
        max_size=5,
    ),
    extension=st.text(min_size=1, max_size=20).filter(lambda text: text.strip() == text),
)
@settings(max_examples=50, deadline=None)
def test_structured_and_binary_agree(data: dict[str, Any], extension: str) -> None:
    """Property: one SDK event sent structured or binary gives the same envelope (same id: it dedups)."""
    ce = event(data, comexampleextension1=extension, comexampleothervalue=None)
    from_structured = from_http(*structured(ce), "ce")
    from_binary = from_http(*binary(ce), "ce")
    assert from_structured == from_binary
    assert prepare(from_structured[0]).id == prepare(from_binary[0]).id


# --- the v1 SDK API -------------------------------------------------------------------


def test_v1_sdk_structured_and_binary() -> None:
    """Events from the SDK's v1 API (cloudevents.v1.http.CloudEvent) parse the same way in both modes."""
    ce = V1CloudEvent(
        {"type": "dev.knative.apiserver.resource.add", "source": "/apis/v1/namespaces/default", "id": "k-1"},
        {"kind": "Pod", "name": "web-1"},
    )
    for headers, body in (v1_conversion.to_structured(ce), v1_conversion.to_binary(ce)):
        (got,) = parse(headers, body)
        assert got["kind"] == "dev.knative.apiserver.resource.add"
        assert got["source"]["delivery"] == "/apis/v1/namespaces/default#k-1"
        assert got["raw"]["data"] == {"kind": "Pod", "name": "web-1"}


# --- data -----------------------------------------------------------------------------


def test_binary_data_is_base64_in_both_modes() -> None:
    """Bytes data: data_base64 in structured mode, an octet body in binary mode; raw holds data_base64 either way."""
    ce = event(b"\x00\xffsealtrail", datacontenttype="application/octet-stream")
    for headers, body in (structured(ce), binary(ce)):
        (got,) = parse(headers, body)
        assert got["raw"]["data_base64"] == "AP9zZWFsdHJhaWw="
        assert "data" not in got["raw"]


def test_huge_integers_in_data_become_strings() -> None:
    """RFC 8785 cannot hold integers beyond 2**53 - 1: they are kept exactly, as strings."""
    ce = event({"id": 2**64 + 1, "small": 7})
    (got,) = parse(*structured(ce))
    assert got["raw"]["data"] == {"id": str(2**64 + 1), "small": 7}


def test_no_data() -> None:
    """An event without data is valid."""
    headers, body = structured(event())
    without = json.loads(body)
    del without["data"]
    (got,) = parse(headers, json.dumps(without).encode())
    assert "data" not in got["raw"] and "data_base64" not in got["raw"]


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        (None, b'{"a": 1}', {"data": {"a": 1}}),
        (None, b"plain words", {"data": "plain words"}),
        (None, b"\xff\xfe", {"data_base64": "//4="}),
        ("application/xml", b"<a/>", {"data": "<a/>"}),
        ("application/cloudevents-like+json", b"[1, 2]", {"data": [1, 2]}),
        ("image/png", b"\x89PNG", {"data_base64": "iVBORw=="}),
        ("text/plain", b"", {}),
    ],
)
def test_binary_body_by_content_type(content_type: str | None, body: bytes, expected: dict[str, Any]) -> None:
    """JSON bodies become data, text becomes a string, anything else data_base64."""
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t.x"}
    if content_type:
        headers["Content-Type"] = content_type
    (got,) = parse(headers, body)
    assert {k: v for k, v in got["raw"].items() if k in ("data", "data_base64")} == expected


# --- kind, actor, time ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("ce_type", "kind"),
    [
        ("com.github.pull_request.opened", "com.github.pull_request.opened"),
        ("Microsoft.Storage.BlobCreated", "microsoft.storage.blobcreated"),
        ("io.k8s.pod/created", "io.k8s.pod_created"),
        ("order created", "order_created"),
        ("google.cloud.storage.object.v1.finalized", "google.cloud.storage.object.v1.finalized"),
        ("1password.item.shared", "cloudevents.event"),
        ("a..b", "cloudevents.event"),
        (".leading", "cloudevents.event"),
        ("x" * 129, "cloudevents.event"),
        ("ünïcode", "cloudevents.event"),
    ],
)
def test_kind_from_type(ce_type: str, kind: str) -> None:
    """The type, lowercased and sanitised, when it makes a dotted category; else cloudevents.event."""
    (got,) = parse(*structured(event(type=ce_type)))
    assert (got["kind"], got["action"]) == (kind, ce_type)


def test_auth_context_is_the_actor() -> None:
    """The authcontext extension (authtype, authid) fills the actor."""
    (got,) = parse(*binary(event(authtype="service_account", authid="system:serviceaccount:ci:deployer")))
    assert got["actor"] == {"id": "system:serviceaccount:ci:deployer", "type": "service_account"}


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2018-04-05T17:31:00Z", "2018-04-05T17:31:00.000000Z"),
        ("2018-04-05T19:31:00.123456789+02:00", "2018-04-05T17:31:00.123456Z"),
        ("2018-04-05t17:31:00z", "2018-04-05T17:31:00.000000Z"),
    ],
)
def test_time_forms(time: str, expected: str) -> None:
    """RFC 3339 in any offset or precision (nanoseconds from Go) → UTC with microseconds."""
    headers, body = structured(event())
    doc = json.loads(body) | {"time": time}
    (got,) = parse(headers, json.dumps(doc).encode())
    assert got["time"] == expected
    assert got["raw"]["time"] == time


def test_missing_time_is_received() -> None:
    """Without `time` the event takes sealtrail's received time."""
    headers, body = structured(event())
    doc = json.loads(body)
    del doc["time"]
    (got,) = parse(headers, json.dumps(doc).encode())
    assert got["time"] == got["received"]


# --- headers, dedup, limits ---------------------------------------------------------------


def test_header_names_any_case_and_parameters() -> None:
    """Header names are case-insensitive; Content-Type parameters are ignored when picking the mode."""
    headers, body = binary(event())
    shouting = {name.upper(): value for name, value in headers.items()}
    assert parse(shouting, body)[0]["kind"] == "com.github.pull_request.opened"
    _, body = structured(event())
    assert parse({"Content-Type": "Application/CloudEvents+JSON; charset=utf-8"}, body)[0]["raw"]["data"] == DATA


def test_same_source_and_id_dedup() -> None:
    """source + id identify an event (spec): same pair, same sealtrail id; another id, another."""
    first = prepare(from_http(*structured(event()), "ce")[0])
    again = prepare(from_http(*binary(event(data={"changed": True})), "ce")[0])
    other = prepare(from_http(*structured(event(id="B")), "ce")[0])
    assert first.id == again.id != other.id


def test_long_source_is_hashed_not_cut() -> None:
    """A delivery over the 1,024-character label limit is hashed, so two long keys never collide."""
    long_source = "https://example.com/" + "a" * 1100
    got = parse(*structured(event(source=long_source)))[0]
    other = parse(*structured(event(source=long_source, id="other")))[0]
    assert got["source"]["delivery"].startswith("sha256:")
    assert got["source"]["delivery"] != other["source"]["delivery"]
    assert got["attrs"]["source"] == long_source


# --- errors -------------------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type"])
def test_structured_missing_required_attribute(attribute: str) -> None:
    """A missing required attribute is SourcePayloadError naming it."""
    headers, body = structured(event())
    doc = json.loads(body)
    del doc[attribute]
    with pytest.raises(SourcePayloadError, match=f"'{attribute}'"):
        from_http(headers, json.dumps(doc).encode(), "ce")


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_binary_missing_required_attribute(attribute: str) -> None:
    """The same for a missing ce- header."""
    headers, body = binary(event())
    del headers[f"ce-{attribute}"]
    with pytest.raises(SourcePayloadError, match=f"'{attribute}'"):
        from_http(headers, body, "ce")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"specversion": "0.3"}, "specversion"),
        ({"id": ""}, "'id'"),
        ({"source": 7}, "'source'"),
        ({"time": "yesterday"}, "'time'"),
        ({"time": "2018-04-05"}, "'time'"),
        ({"data_base64": "AAAA"}, "not both"),
    ],
)
def test_invalid_attributes(change: dict[str, Any], message: str) -> None:
    """Wrong values are SourcePayloadError naming the attribute."""
    headers, body = structured(event())
    with pytest.raises(SourcePayloadError, match=message):
        from_http(headers, json.dumps(json.loads(body) | change).encode(), "ce")


def test_invalid_base64_data() -> None:
    """data_base64 must be base64."""
    headers, body = structured(event(b"\x00"))
    doc = json.loads(body) | {"data_base64": "not base64!"}
    with pytest.raises(SourcePayloadError, match="data_base64"):
        from_http(headers, json.dumps(doc).encode(), "ce")


def test_batch_error_names_the_event() -> None:
    """In a batch the error says which event is wrong."""
    good = JSONFormat().write(event())
    bad = json.loads(JSONFormat().write(event(id="2")))
    del bad["type"]
    with pytest.raises(SourcePayloadError, match=r"event 1: .*'type'"):
        from_http(batch()[0], b"[" + good + b"," + json.dumps(bad).encode() + b"]", "ce")
    with pytest.raises(SourcePayloadError, match="event 0"):
        from_http(batch()[0], b"[1]", "ce")


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ({"Content-Type": "application/json"}, b"{}", "specversion"),
        ({}, b"", "specversion"),
        ({"Content-Type": "application/cloudevents+avro"}, b"\x00", "format"),
        ({"Content-Type": "application/cloudevents+json"}, b"{not json", "body"),
        ({"Content-Type": "application/cloudevents+json"}, b"[]", "object"),
        ({"Content-Type": "application/cloudevents-batch+json"}, b"{}", "array"),
        (
            {
                "ce-specversion": "1.0",
                "ce-id": "1",
                "ce-source": "/s",
                "ce-type": "t",
                "content-type": "application/json",
            },
            b"{",
            "data",
        ),
        ({"ce-specversion": "1.0", "ce-id": "%ff", "ce-source": "/s", "ce-type": "t"}, b"", "percent"),
    ],
)
def test_not_a_cloudevent(headers: dict[str, str], body: bytes, message: str) -> None:
    """Requests that are no valid CloudEvent are SourcePayloadError (HTTP 400)."""
    with pytest.raises(SourcePayloadError, match=message):
        from_http(headers, body, "ce")


def test_every_event_prepares() -> None:
    """Sanity over a mixed batch from the SDK: each envelope passes sealtrail.event.prepare."""
    events = [
        event(),
        event(b"\x01\x02", id="b", datacontenttype="application/octet-stream"),
        event("text", id="c", datacontenttype="text/plain"),
        event(id="d", type="Weird Type!!", time=datetime(2030, 1, 1, 12, tzinfo=UTC)),
    ]
    got = parse(*batch(*events))
    assert [e["kind"] for e in got] == [
        "com.github.pull_request.opened",
        "com.github.pull_request.opened",
        "com.github.pull_request.opened",
        "weird_type_",
    ]
    assert got[3]["time"] == "2030-01-01T12:00:00.000000Z"


def test_oversized_extension_stays_in_raw_only() -> None:
    """An extension too large for attrs is listed in attrs._omitted and kept in raw, so the event is not lost."""
    big = "x" * 70_000
    (got,) = parse(*structured(event(comexamplebig=big)))
    assert "comexamplebig" not in got["attrs"]
    assert got["attrs"]["_omitted"] == ["comexamplebig"]
    assert got["raw"]["size"] > 70_000  # the whole event, out of line
