"""OTLP/HTTP JSON logs adapter.

Requests are built with the official `opentelemetry-proto` classes and turned into
JSON with google.protobuf.json_format, then adjusted as the OTLP specification's
"JSON Protobuf Encoding" requires (enums as integers, traceId/spanId as hex). The plain
proto3 mapping (enum names, base64 ids) and proto field names are checked too.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict, MessageToJson
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs, SeverityNumber
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from _gl_fixtures import RECEIVED, stored
from sealtrail.event import prepare
from sealtrail.jcs import parse_json
from sealtrail.sources.base import SourcePayloadError
from sealtrail.sources.otlp import to_envelopes

NANOS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z
TRACE = bytes(range(1, 17))
SPAN = bytes(range(1, 9))


def any_value(value: Any) -> AnyValue:
    """A Python value as an OTLP AnyValue."""
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=key_values(value)))
    raise TypeError(value)


def key_values(values: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in values.items()]


def record(body: Any = "user alice logged in", attributes: dict[str, Any] | None = None, **fields: Any) -> LogRecord:
    defaults: dict[str, Any] = {
        "time_unix_nano": NANOS,
        "observed_time_unix_nano": NANOS + 5_000_000,
        "severity_number": SeverityNumber.SEVERITY_NUMBER_INFO,
        "severity_text": "INFO",
        "trace_id": TRACE,
        "span_id": SPAN,
    }
    fields = defaults | fields
    return LogRecord(
        body=any_value(body) if body is not None else None,
        attributes=key_values(attributes or {}),
        **{key: value for key, value in fields.items() if value is not None},
    )


def request(*records: LogRecord, resource: dict[str, Any] | None = None) -> ExportLogsServiceRequest:
    resource = {"service.name": "payments", "deployment.environment": "prod"} if resource is None else resource
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=key_values(resource)),
                scope_logs=[
                    ScopeLogs(scope=InstrumentationScope(name="auth", version="1.2.0"), log_records=list(records))
                ],
            )
        ]
    )


def otlp_json(message: ExportLogsServiceRequest) -> dict[str, Any]:
    """The OTLP/JSON body: protobuf JSON with integer enums and hex trace context (OTLP spec)."""
    body: dict[str, Any] = json.loads(MessageToJson(message, use_integers_for_enums=True))
    for resource_logs in body.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for log in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in log:
                        log[key] = base64.b64decode(log[key]).hex()
    decoded: dict[str, Any] = parse_json(_dumps(body))
    return decoded


def _dumps(body: dict[str, Any]) -> bytes:
    """JSON text (to be parsed back the way the server parses request bodies)."""
    return json.dumps(body).encode()


def events(message: ExportLogsServiceRequest) -> list[dict[str, Any]]:
    return stored(to_envelopes(otlp_json(message), "otel-collector"))


# --- one record ------------------------------------------------------------------------


def test_log_record() -> None:
    """A plain log record: otlp.log, body as action, time to the microsecond, resource in attrs."""
    (got,) = events(request(record()))
    assert got["kind"] == "otlp.log"
    assert got["action"] == "user alice logged in"
    assert got["outcome"] == "unknown"
    assert got["time"] == "2023-11-14T22:13:20.123456Z"
    assert got["source"] == {"type": "otlp", "id": "otel-collector"}
    assert got["attrs"] == {
        "service": "payments",
        "severity": "INFO",
        "severity_number": 9,
        "trace_id": TRACE.hex(),
        "span_id": SPAN.hex(),
        "resource": {"service.name": "payments", "deployment.environment": "prod"},
        "scope": {"name": "auth", "version": "1.2.0"},
    }
    assert got["raw"]["timeUnixNano"] == str(NANOS)
    assert got["raw"]["body"] == {"stringValue": "user alice logged in"}


def test_semantic_attributes() -> None:
    """event.name gives kind and action; enduser.id, user.name and client.address the actor."""
    attributes = {
        "event.name": "auth.failure",
        "enduser.id": "u-123",
        "user.name": "alice",
        "client.address": "2001:db8::1",
        "http.route": "/login",
    }
    (got,) = events(request(record("bad password", attributes)))
    assert (got["kind"], got["action"]) == ("auth.failure", "auth.failure")
    assert got["actor"] == {"id": "u-123", "name": "alice", "ip": "2001:db8::1"}
    assert got["attrs"]["attributes"] == attributes


def test_sealtrail_kind_wins() -> None:
    """A sealtrail.kind attribute sets the kind; event.name stays the action."""
    (got,) = events(request(record(attributes={"sealtrail.kind": "deploy", "event.name": "argocd.sync"})))
    assert (got["kind"], got["action"]) == ("deploy", "argocd.sync")


@pytest.mark.parametrize(
    ("attributes", "fields", "kind", "action"),
    [
        ({"event.name": "UserLoggedIn"}, {}, "otlp.log", "UserLoggedIn"),
        ({"sealtrail.kind": "Not A Kind", "event.name": "session.start"}, {}, "session.start", "session.start"),
        ({}, {"event_name": "browser.page_view"}, "browser.page_view", "browser.page_view"),
        ({"event.name": "x" * 129}, {}, "otlp.log", "x" * 129),
    ],
)
def test_kind_only_from_a_dotted_category(
    attributes: dict[str, Any], fields: dict[str, Any], kind: str, action: str
) -> None:
    """Names that are no dotted category leave the kind at otlp.log; the LogRecord eventName field counts."""
    (got,) = events(request(record(attributes=attributes, **fields)))
    assert (got["kind"], got["action"]) == (kind, action)


def test_client_address_must_be_an_ip() -> None:
    """client.address may be a host name; actor.ip only takes an address."""
    (got,) = events(request(record(attributes={"client.address": "gateway.internal", "user.id": "42"})))
    assert got["actor"] == {"id": "42"}


@pytest.mark.parametrize(
    ("severity", "text", "attributes", "outcome"),
    [
        (SeverityNumber.SEVERITY_NUMBER_ERROR, "ERROR", {}, "failure"),
        (SeverityNumber.SEVERITY_NUMBER_FATAL4, "FATAL", {}, "failure"),
        (SeverityNumber.SEVERITY_NUMBER_WARN4, "WARN", {}, "unknown"),
        (SeverityNumber.SEVERITY_NUMBER_UNSPECIFIED, "ERROR", {}, "failure"),
        (SeverityNumber.SEVERITY_NUMBER_UNSPECIFIED, "", {}, "unknown"),
        (SeverityNumber.SEVERITY_NUMBER_ERROR, "ERROR", {"outcome": "success"}, "success"),
        (SeverityNumber.SEVERITY_NUMBER_INFO, "INFO", {"event.outcome": "FAILURE"}, "failure"),
        (SeverityNumber.SEVERITY_NUMBER_INFO, "INFO", {"outcome": "maybe"}, "unknown"),
    ],
)
def test_outcome(severity: int, text: str, attributes: dict[str, Any], outcome: str) -> None:
    """An outcome attribute wins; else ERROR and FATAL severities are failures; else unknown."""
    (got,) = events(request(record(attributes=attributes, severity_number=severity, severity_text=text)))
    assert got["outcome"] == outcome


def test_action_from_first_line_of_body() -> None:
    """A multi-line body: the first line, at most 256 characters, is the action; the body stays in raw."""
    body = "Exception in handler\n  at Foo.bar()\n  at Baz.qux()"
    (got,) = events(request(record(body)))
    assert got["action"] == "Exception in handler"
    (long,) = events(request(record("y" * 1000)))
    assert long["action"] == "y" * 256


def test_structured_body_has_no_action() -> None:
    """A kvlist body is data, not a verb: no action, body kept in raw."""
    (got,) = events(request(record({"msg": "hi", "n": 1})))
    assert "action" not in got
    assert got["raw"]["body"]["kvlistValue"]["values"][0]["key"] == "msg"


# --- values --------------------------------------------------------------------------


def test_any_value_types() -> None:
    """Every AnyValue type decodes to plain JSON; int64 exactly, beyond 2**53 as a decimal string."""
    attributes = {
        "small": 42,
        "negative": -7,
        "huge": 2**62 + 1,
        "most_negative": -(2**63),
        "ratio": 0.25,
        "flag": False,
        "blob": b"\x00\x01\xfe",
        "list": ["a", 1, True],
        "map": {"inner": {"deep": 2**60}},
    }
    (got,) = events(request(record(attributes=attributes)))
    assert got["attrs"]["attributes"] == {
        "small": 42,
        "negative": -7,
        "huge": str(2**62 + 1),
        "most_negative": str(-(2**63)),
        "ratio": 0.25,
        "flag": False,
        "blob": base64.b64encode(b"\x00\x01\xfe").decode(),
        "list": ["a", 1, True],
        "map": {"inner": {"deep": str(2**60)}},
    }
    kept = {kv["key"]: kv["value"] for kv in got["raw"]["attributes"]}
    assert kept["huge"] == {"intValue": str(2**62 + 1)}


def test_non_finite_doubles() -> None:
    """NaN and infinities have no JSON number: protobuf JSON writes them as strings, and so do we."""
    (got,) = events(request(record(attributes={"nan": math.nan, "inf": math.inf, "ninf": -math.inf})))
    assert got["attrs"]["attributes"] == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity"}


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=20),
            st.booleans(),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        max_size=6,
    )
)
@settings(max_examples=60, deadline=None)
def test_attribute_values_round_trip(attributes: dict[str, Any]) -> None:
    """Property: any attribute set survives protobuf → OTLP/JSON → envelope exactly (big ints as strings)."""
    envelope = to_envelopes(otlp_json(request(record(attributes=attributes))), "o")[0]
    expected = {
        key: str(value) if type(value) is int and abs(value) > 2**53 - 1 else value for key, value in attributes.items()
    }
    assert envelope.get("attrs", {}).get("attributes", {}) == expected
    prepare(envelope)


# --- times and ids -------------------------------------------------------------------------


def test_observed_time_when_no_event_time() -> None:
    """timeUnixNano 0 (unknown) → observedTimeUnixNano; neither → received."""
    (observed,) = events(request(record(time_unix_nano=0)))
    assert observed["time"] == "2023-11-14T22:13:20.128456Z"
    (neither,) = events(request(record(time_unix_nano=0, observed_time_unix_nano=0)))
    assert neither["time"] == RECEIVED


def test_times_sent_as_json_numbers() -> None:
    """Protobuf JSON readers accept int64 as numbers; the time is exact and raw stays representable."""
    body = otlp_json(request(record()))
    log = body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0]
    log["timeUnixNano"] = NANOS
    (got,) = stored(to_envelopes(body, "o"))
    assert got["time"] == "2023-11-14T22:13:20.123456Z"
    assert got["raw"]["timeUnixNano"] == str(NANOS)


def test_zero_trace_context_is_absent() -> None:
    """All-zero (or missing) trace and span ids mean no trace context."""
    (got,) = events(request(record(trace_id=bytes(16), span_id=None)))
    assert "trace_id" not in got["attrs"] and "span_id" not in got["attrs"]


def test_log_record_uid_dedups() -> None:
    """log.record.uid is the delivery: a resent record is the same event."""
    message = request(record(attributes={"log.record.uid": "01HF7YQ5Z8W4J6N2C3B1X0V9T8"}))
    first = prepare(to_envelopes(otlp_json(message), "o")[0])
    again = prepare(to_envelopes(otlp_json(message), "o")[0])
    assert first.id == again.id
    assert to_envelopes(otlp_json(message), "o")[0]["source"]["delivery"] == "01HF7YQ5Z8W4J6N2C3B1X0V9T8"
    plain = request(record())
    assert prepare(to_envelopes(otlp_json(plain), "o")[0]).id != prepare(to_envelopes(otlp_json(plain), "o")[0]).id


# --- batches and encodings ---------------------------------------------------------------


def test_many_resources_scopes_and_records() -> None:
    """One envelope per record, in order, each with its own resource."""
    message = request(record("one"), record("two"), resource={"service.name": "api"})
    message.resource_logs.append(request(record("three"), resource={"service.name": "worker"}).resource_logs[0])
    got = events(message)
    assert [(e["action"], e["attrs"]["service"]) for e in got] == [("one", "api"), ("two", "api"), ("three", "worker")]


def test_empty_request() -> None:
    """An export with no records has no events."""
    assert to_envelopes({}, "o") == []
    assert to_envelopes(otlp_json(ExportLogsServiceRequest()), "o") == []
    assert to_envelopes({"resourceLogs": [{"scopeLogs": [{"logRecords": []}]}]}, "o") == []


@pytest.mark.parametrize(
    ("proto_names", "integer_enums"),
    [
        (False, False),  # plain proto3 JSON: enum names, base64 ids
        (True, False),  # proto field names (snake_case)
        (True, True),
    ],
)
def test_other_protobuf_json_encodings(proto_names: bool, integer_enums: bool) -> None:
    """Other valid protobuf JSON encodings of the same request give the same envelope (raw aside)."""
    message = request(record(attributes={"event.name": "auth.success", "user.name": "bob"}))
    expected = to_envelopes(otlp_json(message), "o")[0]
    encoded = MessageToDict(message, preserving_proto_field_name=proto_names, use_integers_for_enums=integer_enums)
    other = to_envelopes(parse_json(_dumps(encoded)), "o")[0]
    assert {k: v for k, v in other.items() if k != "raw"} == {k: v for k, v in expected.items() if k != "raw"}


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"resourceLogs": {}}, "resourceLogs"),
        ({"resourceLogs": [7]}, r"resourceLogs\[0\]"),
        ({"resourceLogs": [{"scopeLogs": [{"logRecords": ["x"]}]}]}, r"logRecords\[0\]"),
        (
            {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"value": {"stringValue": "a"}}]}]}]}]},
            r"attributes\[0\]\.key",
        ),
        (
            {
                "resourceLogs": [
                    {"scopeLogs": [{"logRecords": [{"attributes": [{"key": "n", "value": {"intValue": "1e3"}}]}]}]}
                ]
            },
            "intValue",
        ),
        ({"resourceLogs": [{"resource": {"attributes": [{"key": "k", "value": "v"}]}}]}, "AnyValue"),
    ],
)
def test_malformed_requests(body: dict[str, Any], path: str) -> None:
    """A body that is no ExportLogsServiceRequest is SourcePayloadError naming where."""
    with pytest.raises(SourcePayloadError, match=path):
        to_envelopes(body, "o")


def test_not_an_object() -> None:
    """The request body must be a JSON object."""
    with pytest.raises(SourcePayloadError):
        to_envelopes([], "o")  # type: ignore[arg-type]


def test_large_attributes_stay_in_raw_only() -> None:
    """A stack trace bigger than an entry still makes an event: attrs leave it out (listed), raw keeps it."""
    trace = "at com.example.Handler.run(Handler.java:42)\n" * 3000  # ~130 KB
    attributes = {"exception.stacktrace": trace, "exception.type": "java.lang.IllegalStateException"}
    (got,) = events(request(record("boom", attributes, severity_number=SeverityNumber.SEVERITY_NUMBER_ERROR)))
    assert got["attrs"]["attributes"] == {"exception.type": "java.lang.IllegalStateException"}
    assert got["attrs"]["omitted"] == ["attributes.exception.stacktrace"]
    assert got["raw"]["size"] > 100_000  # stored out of line, integrity kept by its digest
    assert got["outcome"] == "failure"


def test_many_attributes_share_a_budget() -> None:
    """Many mid-sized attributes: those past the attrs budget are left to raw, the event still prepares."""
    attributes = {f"k{n:03}": "v" * 3000 for n in range(40)}
    (got,) = events(request(record(attributes=attributes)))
    kept = got["attrs"]["attributes"]
    assert 5 < len(kept) < 40
    assert set(kept) | set(name.removeprefix("attributes.") for name in got["attrs"]["omitted"]) <= set(attributes)
