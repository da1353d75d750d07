"""OpenTelemetry logs over OTLP/HTTP JSON (POST /v1/logs), as envelopes (DESIGN.md §3).

Pure: no I/O. The body is an ExportLogsServiceRequest in the protobuf JSON mapping as
OTLP specifies it (otlp.md, "JSON Protobuf Encoding"): lowerCamelCase field names,
64-bit integers as decimal strings, enums as integers, traceId/spanId as hex. Readers
must also accept the plain proto3 mapping, so snake_case names, enum names, integers
as numbers and base64 ids are read too.

One envelope per log record:

* kind — the `sealtrail.kind` attribute, else the record's event name (`eventName`
  field or `event.name` attribute), when it is a dotted category; else `otlp.log`;
* action — the event name, else the first line of a string body;
* actor — `enduser.id` / `user.id` (id), `user.name` (name), `client.address` (ip);
* outcome — an `outcome` (or `event.outcome`) attribute of success/failure/unknown,
  else failure for severity ERROR or FATAL (severityNumber ≥ 17), else unknown;
* time — `timeUnixNano`, else `observedTimeUnixNano`, to the microsecond (truncated);
* delivery — the `log.record.uid` attribute when present, so a resent record dedups;
* attrs — the record's attributes, the resource's (`resource`, with `service.name`
  also as `service`), the scope, severity and trace context;
* raw — the log record as sent.

AnyValue is decoded to plain JSON: intValue exactly (a string when beyond ±(2**53 − 1),
which RFC 8785 cannot hold), bytesValue as its base64 text, kvlistValue as an object.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..event import format_time
from .base import Envelope, SourcePayloadError
from .base import ip_or_none as _ip
from .base import json_safe as _safe
from .base import label as _label

__all__ = ["DEFAULT_KIND", "to_envelopes"]

SOURCE_TYPE = "otlp"
DEFAULT_KIND = "otlp.log"
_MAX_LABEL = 1024
_MAX_ACTION = 256
_MAX_SAFE_INT = 2**53 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KIND = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
_HEX = re.compile(r"[0-9a-fA-F]*")
_DECIMAL = re.compile(r"-?[0-9]{1,40}")
_ATTR_VALUE_MAX = 4096  # bytes of JSON: a larger attribute stays in raw only
_ATTRS_BUDGET = 32_768  # bytes of JSON for all attributes copied into attrs (entries are at most 65,535)
_OMITTED_MAX = 32
_OUTCOMES = frozenset({"success", "failure", "unknown"})
_SEVERITY_ERROR = 17  # SEVERITY_NUMBER_ERROR; 21 and up are FATAL
_SEVERITY_NAMES = {"SEVERITY_NUMBER_UNSPECIFIED": 0} | {
    f"SEVERITY_NUMBER_{name}{suffix}": base + offset
    for base, name in ((1, "TRACE"), (5, "DEBUG"), (9, "INFO"), (13, "WARN"), (17, "ERROR"), (21, "FATAL"))
    for offset, suffix in enumerate(("", "2", "3", "4"))
}


def _field(message: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its JSON name or its proto name (both are valid protobuf JSON)."""
    value = message.get(camel)
    return message.get(snake) if value is None else value


def _integer(value: Any) -> int | None:
    """An int64/uint64 field: a decimal string (OTLP/JSON) or a JSON number."""
    if type(value) is int:
        return value
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _any_value(value: Any, path: str) -> Any:
    """An AnyValue as plain JSON; SourcePayloadError naming `path` if it is not an object."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise SourcePayloadError(f"{path}: expected an AnyValue object")
    for camel, snake in (("stringValue", "string_value"), ("boolValue", "bool_value")):
        if (item := _field(value, camel, snake)) is not None:
            return item
    if (item := _field(value, "intValue", "int_value")) is not None:
        number = _integer(item)
        if number is None:
            raise SourcePayloadError(f"{path}.intValue: {item!r} is not an integer")
        return number if abs(number) <= _MAX_SAFE_INT else str(number)
    if (item := _field(value, "doubleValue", "double_value")) is not None:
        if isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item):
            return item
        return str(item)  # "NaN", "Infinity", "-Infinity": no JSON number for them
    if (item := _field(value, "bytesValue", "bytes_value")) is not None:
        return item
    if (item := _field(value, "arrayValue", "array_value")) is not None:
        values = _list(_dict(item, f"{path}.arrayValue").get("values"), f"{path}.arrayValue.values")
        return [_any_value(entry, f"{path}.arrayValue.values[{i}]") for i, entry in enumerate(values)]
    if (item := _field(value, "kvlistValue", "kvlist_value")) is not None:
        pairs = _dict(item, f"{path}.kvlistValue").get("values")
        return _key_values(pairs, f"{path}.kvlistValue.values")
    return None


def _dict(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SourcePayloadError(f"{path}: expected an object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise SourcePayloadError(f"{path}: expected an array")
    return value


def _key_values(pairs: Any, path: str) -> dict[str, Any]:
    """A repeated KeyValue as an object (a later duplicate key wins, as in the SDKs)."""
    out: dict[str, Any] = {}
    for i, pair in enumerate(_list(pairs, path)):
        pair = _dict(pair, f"{path}[{i}]")
        key = pair.get("key")
        if not isinstance(key, str):
            raise SourcePayloadError(f"{path}[{i}].key: expected a string")
        out[key] = _any_value(pair.get("value"), f"{path}[{i}].value")
    return out


def _trace_id(value: Any, size: int) -> str | None:
    """traceId/spanId as lowercase hex: hex per OTLP/JSON, or base64 per plain proto3 JSON."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == 2 * size and _HEX.fullmatch(value):
        raw = bytes.fromhex(value)
    else:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return None
        if len(raw) != size:
            return None
    return None if raw == bytes(size) else raw.hex()


def _time(record: Mapping[str, Any]) -> str | None:
    """timeUnixNano (else observedTimeUnixNano) as RFC 3339 UTC, microseconds truncated; 0 means unset."""
    for camel, snake in (("timeUnixNano", "time_unix_nano"), ("observedTimeUnixNano", "observed_time_unix_nano")):
        nanos = _integer(_field(record, camel, snake))
        if nanos:
            try:
                return format_time(_EPOCH + timedelta(microseconds=nanos // 1000))
            except OverflowError:
                return None
    return None


def _severity(record: Mapping[str, Any]) -> int | None:
    number = _field(record, "severityNumber", "severity_number")
    if isinstance(number, str):
        number = _SEVERITY_NAMES.get(number, _integer(number))
    return number if type(number) is int else None


def _outcome(attributes: Mapping[str, Any], severity: int | None, severity_text: Any) -> str:
    for key in ("outcome", "event.outcome"):
        stated = attributes.get(key)
        if isinstance(stated, str) and stated.lower() in _OUTCOMES:
            return stated.lower()
    if severity is not None and severity >= _SEVERITY_ERROR:
        return "failure"
    if severity is None and isinstance(severity_text, str) and severity_text.upper().startswith(("ERROR", "FATAL")):
        return "failure"
    return "unknown"


def _bounded(values: dict[str, Any], prefix: str, budget: int, omitted: list[str]) -> tuple[dict[str, Any], int]:
    """`values` that fit in attrs: each at most 4 KiB of JSON, all within `budget`.

    attrs stay inside the entry (only raw moves out of line), so a large attribute such
    as exception.stacktrace is left to raw, its name listed in `omitted`. Returns the
    kept values and the budget left.
    """
    kept: dict[str, Any] = {}
    for key, value in values.items():
        size = len(key.encode()) + len(json.dumps(value, ensure_ascii=False).encode()) + 4
        if size > _ATTR_VALUE_MAX or size > budget:
            if len(omitted) < _OMITTED_MAX:
                omitted.append((prefix + key)[:128])
            continue
        budget -= size
        kept[key] = value
    return kept, budget


def _envelope(
    record: dict[str, Any], resource: dict[str, Any], scope: dict[str, Any], source_id: str, path: str
) -> Envelope:
    attributes = _key_values(record.get("attributes"), f"{path}.attributes")
    body = _any_value(record.get("body"), f"{path}.body")
    event_name = _label(_field(record, "eventName", "event_name")) or _label(attributes.get("event.name"))
    stated_kind = attributes.get("sealtrail.kind")
    kind = next(
        (
            candidate
            for candidate in (stated_kind, event_name)
            if isinstance(candidate, str) and len(candidate) <= 128 and _KIND.fullmatch(candidate)
        ),
        DEFAULT_KIND,
    )
    severity = _severity(record)
    severity_text = _field(record, "severityText", "severity_text")
    source = {"type": SOURCE_TYPE, "id": source_id}
    if (uid := _label(attributes.get("log.record.uid"))) is not None:
        source["delivery"] = uid
    envelope: Envelope = {
        "kind": kind,
        "source": source,
        "outcome": _outcome(attributes, severity, severity_text),
        "raw": _safe(record),
    }
    action = event_name or (_label(body.strip().splitlines()[0], _MAX_ACTION) if isinstance(body, str) else None)
    if action:
        envelope["action"] = action
    if (time := _time(record)) is not None:
        envelope["time"] = time
    actor = {
        "id": _label(attributes.get("enduser.id")) or _label(attributes.get("user.id")),
        "name": _label(attributes.get("user.name")),
        "ip": _ip(attributes.get("client.address")),
    }
    if any(actor.values()):
        envelope["actor"] = {key: value for key, value in actor.items() if value}
    omitted: list[str] = []
    kept_attributes, budget = _bounded(attributes, "attributes.", _ATTRS_BUDGET, omitted)
    kept_resource, budget = _bounded(resource, "resource.", budget, omitted)
    attrs: dict[str, Any] = {
        "service": _label(resource.get("service.name")),
        "severity": _label(severity_text),
        "severity_number": severity,
        "trace_id": _trace_id(_field(record, "traceId", "trace_id"), 16),
        "span_id": _trace_id(_field(record, "spanId", "span_id"), 8),
        "attributes": kept_attributes or None,
        "resource": kept_resource or None,
        "scope": scope or None,
        "omitted": omitted or None,
    }
    envelope["attrs"] = {key: value for key, value in attrs.items() if value is not None}
    return envelope


def to_envelopes(payload: dict[str, Any], source_id: str) -> list[Envelope]:
    """One envelope per log record of an OTLP/HTTP JSON export request (`/v1/logs` body).

    An empty request (no resourceLogs) has no events. SourcePayloadError, naming the path,
    when the body is not an ExportLogsServiceRequest.
    """
    if not isinstance(payload, dict):
        raise SourcePayloadError("an OTLP export request must be a JSON object")
    out: list[Envelope] = []
    resource_logs = _list(_field(payload, "resourceLogs", "resource_logs"), "resourceLogs")
    for r, resource_log in enumerate(resource_logs):
        resource_log = _dict(resource_log, f"resourceLogs[{r}]")
        resource_msg = _dict(resource_log.get("resource"), f"resourceLogs[{r}].resource")
        resource = _key_values(resource_msg.get("attributes"), f"resourceLogs[{r}].resource.attributes")
        scope_logs = _list(_field(resource_log, "scopeLogs", "scope_logs"), f"resourceLogs[{r}].scopeLogs")
        for s, scope_log in enumerate(scope_logs):
            scope_path = f"resourceLogs[{r}].scopeLogs[{s}]"
            scope_log = _dict(scope_log, scope_path)
            scope_msg = _dict(scope_log.get("scope"), f"{scope_path}.scope")
            scope = {
                "name": _label(scope_msg.get("name")),
                "version": _label(scope_msg.get("version")),
                "attributes": _key_values(scope_msg.get("attributes"), f"{scope_path}.scope.attributes") or None,
            }
            scope = {key: value for key, value in scope.items() if value is not None}
            records = _list(_field(scope_log, "logRecords", "log_records"), f"{scope_path}.logRecords")
            for n, record in enumerate(records):
                path = f"{scope_path}.logRecords[{n}]"
                out.append(_envelope(_dict(record, path), _safe(resource), _safe(scope), source_id, path))
    return out
