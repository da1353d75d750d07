"""CloudEvents 1.0 over HTTP (the HTTP protocol binding, JSON event format), as envelopes (DESIGN.md §3).

Pure: no I/O. All three content modes of the binding:

* structured — `Content-Type: application/cloudevents+json`, the event as one JSON object;
* batched — `Content-Type: application/cloudevents-batch+json`, a JSON array of them;
* binary — context attributes in `ce-<name>` headers (percent-encoded, §3.1.3.2),
  `Content-Type` as `datacontenttype`, the body as the data.

Each event must carry the required attributes (specversion "1.0", id, source, type);
a missing one is SourcePayloadError naming it. An event maps to: kind from `type`
(lowercased, other characters made `_`; `cloudevents.event` when that is still no
dotted category), action = `type`, time = `time`, delivery = `<source>#<id>` (the
spec makes source + id unique, so a redelivery dedups), target.name = `subject`,
actor from the authcontext extension (authid, authtype), attrs = source, subject,
dataschema, datacontenttype and every extension attribute, raw = the event in
structured form (data as JSON, text, or `data_base64`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote

from ..event import format_time
from ..jcs import CanonicalJsonError, parse_json
from .base import Envelope, SourcePayloadError
from .base import delivery_key as _delivery
from .base import json_safe as _safe
from .base import label as _label

__all__ = ["BATCH_CONTENT_TYPE", "STRUCTURED_CONTENT_TYPE", "from_http"]

SOURCE_TYPE = "cloudevents"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
FALLBACK_KIND = "cloudevents.event"

_REQUIRED = ("specversion", "id", "source", "type")
_CONTEXT = frozenset({"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "dataschema"})
_MAX_LABEL = 1024
_MAX_SAFE_INT = 2**53 - 1
_ATTR_VALUE_MAX = 4096  # bytes of JSON: a larger attribute stays in raw only
_ATTRS_BUDGET = 32_768  # bytes of JSON for all of attrs (entries are at most 65,535)
_KIND = re.compile(r"[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*")
_NOT_KIND_CHARS = re.compile(r"[^a-z0-9_.-]+")
_JSON_TYPE = re.compile(r"^(?:application|text)/(?:[a-z0-9.+-]+\+)?json$")
_TEXT_TYPE = re.compile(r"^(?:text/|application/(?:xml|[a-z0-9.+-]+\+xml|x-www-form-urlencoded|yaml)$)")


def _media_type(content_type: str | None) -> str:
    """`Application/JSON; charset=utf-8` → `application/json`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Header names lowercased (HTTP names carry no case)."""
    return {name.lower(): value for name, value in headers.items()}


def _json(data: bytes, what: str) -> Any:
    try:
        return parse_json(data)
    except CanonicalJsonError as exc:
        raise SourcePayloadError(f"{what}: {exc}") from None


def _kind(event_type: str) -> str:
    kind = _NOT_KIND_CHARS.sub("_", event_type.strip().lower())
    return kind if len(kind) <= 128 and _KIND.fullmatch(kind) else FALLBACK_KIND


def _time(value: Any, where: str) -> str:
    """The `time` attribute (RFC 3339) as sealtrail's UTC form; SourcePayloadError when it is not one."""
    if isinstance(value, str) and "T" in value.upper():
        try:
            moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return format_time(moment)
    raise SourcePayloadError(f"{where}attribute 'time': {value!r} is not an RFC 3339 timestamp")


def _bounded(values: dict[str, Any]) -> dict[str, Any]:
    """`values` that fit in attrs (each at most 4 KiB of JSON, all at most 32 KiB); the rest stays in raw only.

    attrs stay inside the entry (only raw moves out of line); names left out are listed in `_omitted`.
    """
    kept: dict[str, Any] = {}
    omitted: list[str] = []
    budget = _ATTRS_BUDGET
    for key, value in values.items():
        size = len(key.encode()) + len(json.dumps(value, ensure_ascii=False).encode()) + 4
        if size > _ATTR_VALUE_MAX or size > budget:
            omitted.append(key[:128])
            continue
        budget -= size
        kept[key] = value
    if omitted:
        kept["_omitted"] = omitted[:32]  # "_" cannot start a CloudEvents attribute name: no clash
    return kept


def _envelope(event: dict[str, Any], source_id: str, where: str) -> Envelope:
    """One envelope from one event in structured form (attributes and data in one object)."""
    for name in _REQUIRED:
        value = event.get(name)
        if not isinstance(value, str) or not value:
            problem = "missing" if value is None else "not a non-empty string"
            raise SourcePayloadError(f"{where}required attribute {name!r} is {problem}")
    if event["specversion"] != "1.0":
        raise SourcePayloadError(
            f"{where}attribute 'specversion': {event['specversion']!r} is not supported (only 1.0)"
        )
    if "data" in event and "data_base64" in event:
        raise SourcePayloadError(f"{where}an event has either 'data' or 'data_base64', not both")
    if "data_base64" in event:
        encoded = event["data_base64"]
        try:
            base64.b64decode(encoded if isinstance(encoded, str) else b"?", validate=True)
        except (binascii.Error, ValueError):
            raise SourcePayloadError(f"{where}'data_base64' is not base64") from None
    ce_type, ce_source, ce_id = event["type"], event["source"], event["id"]
    extensions = {
        name: value for name, value in event.items() if name not in _CONTEXT and name not in ("data", "data_base64")
    }
    attrs = {
        "source": ce_source,
        "subject": event.get("subject"),
        "dataschema": event.get("dataschema"),
        "datacontenttype": event.get("datacontenttype"),
        **extensions,
    }
    envelope: Envelope = {
        "kind": _kind(ce_type),
        "action": ce_type[:_MAX_LABEL],
        "source": {"type": SOURCE_TYPE, "id": source_id, "delivery": _delivery(f"{ce_source}#{ce_id}")},
        "attrs": _bounded(_safe({key: value for key, value in attrs.items() if value is not None})),
        "raw": _safe(event),
    }
    if "time" in event:
        envelope["time"] = _time(event["time"], where)
    actor = {"id": _label(event.get("authid")), "type": _label(event.get("authtype"))}
    if any(actor.values()):
        envelope["actor"] = {key: value for key, value in actor.items() if value}
    if (subject := _label(event.get("subject"))) is not None:
        envelope["target"] = {"name": subject}
    return envelope


def _structured(body: bytes, source_id: str) -> list[Envelope]:
    event = _json(body, "body")
    if not isinstance(event, dict):
        raise SourcePayloadError("body: a structured CloudEvent must be a JSON object")
    return [_envelope(event, source_id, "")]


def _batch(body: bytes, source_id: str) -> list[Envelope]:
    events = _json(body, "body")
    if not isinstance(events, list):
        raise SourcePayloadError("body: a CloudEvents batch must be a JSON array")
    out = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            raise SourcePayloadError(f"event {index}: a CloudEvent must be a JSON object")
        out.append(_envelope(event, source_id, f"event {index}: "))
    return out


def _binary_data(body: bytes, content_type: str | None) -> dict[str, Any]:
    """The body as `data` (JSON or text) or `data_base64` (anything else), as the JSON format would carry it."""
    if not body:
        return {}
    media = _media_type(content_type)
    if _JSON_TYPE.match(media):
        return {"data": _json(body, "data")}
    if not media:  # no datacontenttype: JSON if it parses, else text, else bytes
        try:
            return {"data": parse_json(body)}
        except CanonicalJsonError:
            pass
    if not media or _TEXT_TYPE.match(media):
        try:
            return {"data": body.decode()}
        except UnicodeDecodeError:
            pass
    return {"data_base64": base64.b64encode(body).decode()}


def _binary(headers: dict[str, str], body: bytes, source_id: str) -> list[Envelope]:
    event: dict[str, Any] = {}
    for name, value in headers.items():
        if name.startswith("ce-") and len(name) > 3:
            event[name[3:]] = unquote(value, errors="strict") if "%" in value else value
    if "content-type" in headers:
        event["datacontenttype"] = headers["content-type"]
    event.update(_binary_data(body, headers.get("content-type")))
    return [_envelope(event, source_id, "")]


def from_http(headers: Mapping[str, str], body: bytes, source_id: str) -> list[Envelope]:
    """The envelopes of one HTTP request carrying CloudEvents (structured, batched or binary mode).

    The mode follows the binding: a `application/cloudevents…` Content-Type is structured
    (or batched), otherwise `ce-specversion` marks binary mode. SourcePayloadError for
    anything else, for an event format other than JSON, or for an invalid event.
    """
    lowered = _headers(headers)
    media = _media_type(lowered.get("content-type"))
    try:
        if media == BATCH_CONTENT_TYPE:
            return _batch(body, source_id)
        if media == STRUCTURED_CONTENT_TYPE:
            return _structured(body, source_id)
        if media.startswith(("application/cloudevents+", "application/cloudevents-batch+")):
            raise SourcePayloadError(f"Content-Type: {media!r} is not a supported CloudEvents format (JSON only)")
        if "ce-specversion" in lowered:
            return _binary(lowered, body, source_id)
    except UnicodeDecodeError:
        raise SourcePayloadError("a ce- header is not valid percent-encoded UTF-8") from None
    raise SourcePayloadError(
        "not a CloudEvent: missing required attribute 'specversion' (no ce-specversion header, "
        f"and Content-Type is not {STRUCTURED_CONTENT_TYPE} or {BATCH_CONTENT_TYPE})"
    )
