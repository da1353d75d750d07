"""Splunk HTTP Event Collector (HEC) compatibility, for GitHub Enterprise audit-log streaming.

Pure: no I/O. `parse_token` reads `Authorization: Splunk <token>`,
`split_events` splits an HEC body (one or more JSON objects, concatenated,
with or without whitespace between them) and checks each one, and
`to_envelopes` makes one envelope per HEC event. A GitHub audit-log event
(an `action` such as repo.create with `_document_id` or `@timestamp`) is
mapped field by field; any other HEC event becomes kind `hec.event`.

Streaming GitHub Enterprise's audit log to sealtrail
----------------------------------------------------
GitHub streams to a Splunk HEC endpoint; sealtrail serves one. In the
enterprise's settings: Audit log → Log streaming → Configure stream → Splunk:

* Domain: the host name sealtrail is reached at over HTTPS, without scheme
  or path (for example `audit.example.com`). GitHub posts to, and "Check
  endpoint" validates, `https://<Domain>:<Port>/services/collector`.
* Port: the HTTPS port serving sealtrail (for example 443).
* Token: the HEC token of the sealtrail source for this stream. GitHub sends
  it as `Authorization: Splunk <token>`.
* Enable SSL verification: leave it selected (GitHub then checks sealtrail's
  certificate, so it needs one GitHub trusts).

On GitHub Enterprise Cloud, allow the `hooks` IP ranges of GitHub's meta API
to reach that port. GitHub delivers at least once: a repeated event carries
the same `_document_id`, which becomes the envelope's `source.delivery`, so
sealtrail stores it once.

Mapping of a GitHub audit event: kind by the action's prefix (see
`audit_kind`), action = the audit action, actor {name, id, ip} from
actor/actor_id/actor_ip, target the repository, team, organization or
enterprise acted on, time from `@timestamp` (milliseconds; else `created_at`,
else the HEC `time`), raw = the audit event as sent.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from ..event import MAX_LABEL, format_time
from ..jcs import JsonNumber
from .base import Envelope, SourceAuthError, SourcePayloadError
from .base import ip_or_none as _ip
from .base import label as _text

__all__ = [
    "COLLECTOR_PATHS",
    "audit_kind",
    "is_github_audit_event",
    "parse_token",
    "split_events",
    "to_envelopes",
]

COLLECTOR_PATHS = ("/services/collector", "/services/collector/event", "/services/collector/event/1.0")
"""The paths HEC clients post JSON events to (GitHub uses the first)."""

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_AUDIT_ACTION = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_KIND_PART = re.compile(r"[^a-z0-9_-]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_SECONDS = 253402300799  # 9999-12-31T23:59:59Z
_MS_THRESHOLD = 100_000_000_000  # epoch values above this are milliseconds (1e11 s is the year 5138)
_METADATA = ("host", "source", "sourcetype", "index")

_ACCESS_PREFIXES = frozenset(
    {
        "team", "oauth_access", "oauth_application", "oauth_authorization", "personal_access_token",
        "public_key", "deploy_key", "integration_installation", "org_credential_authorization",
        "ssh_certificate_authority", "role",
    }
)  # fmt: skip
_ACCESS_WORDS = (
    "member", "owner", "admin", "collaborator", "invite", "invitation", "permission", "role",
    "billing_manager", "block_user", "credential",
)  # fmt: skip
_CONFIG_PREFIXES = frozenset({"protected_branch", "repository_ruleset", "hook", "environment"})
_FAILURE_WORDS = ("fail", "denied", "reject")


def parse_token(header: str | None) -> str:
    """The token of an `Authorization: Splunk <token>` header; SourceAuthError if missing or malformed."""
    if header is None or not header.strip():
        raise SourceAuthError("missing Authorization header: send `Authorization: Splunk <token>`")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "splunk" or not token or any(c.isspace() for c in token):
        raise SourceAuthError("malformed Authorization header: expected `Splunk <token>`")
    return token


def _skip_whitespace(text: str, position: int) -> int:
    match = _WHITESPACE.match(text, position)
    return match.end() if match else position


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> JsonNumber:
    number = JsonNumber(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text} is out of range")
    return number


_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_reject_constant)


def split_events(body: bytes) -> list[dict[str, Any]]:
    """The HEC events of a body: JSON objects one after another, whitespace between them optional.

    Each must have a non-blank `event`; `time` (epoch seconds, number or decimal string),
    `fields` (object) and `host`/`source`/`sourcetype`/`index` (strings) are optional.
    SourcePayloadError names the event and its byte offset.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourcePayloadError(f"body is not UTF-8 (byte {exc.start})") from None
    items: list[dict[str, Any]] = []
    position = _skip_whitespace(text, 1 if text.startswith("\ufeff") else 0)
    while position < len(text):
        where = f"event {len(items)} at byte {_byte_offset(text, position)}"
        try:
            item, end = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            raise SourcePayloadError(
                f"{where}: malformed JSON: {exc.msg} (byte {_byte_offset(text, exc.pos)})"
            ) from None
        except (ValueError, RecursionError) as exc:
            raise SourcePayloadError(f"{where}: malformed JSON: {exc}") from None
        _check_item(item, where)
        items.append(item)
        position = _skip_whitespace(text, end)
    if not items:
        raise SourcePayloadError("no data: the body holds no HEC event")
    return items


def _check_item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise SourcePayloadError(f'{where}: expected a JSON object such as {{"event": ...}}')
    if item.get("event") is None:
        raise SourcePayloadError(f"{where}: the event field is required")
    if item["event"] == "":
        raise SourcePayloadError(f"{where}: the event field is blank")
    if "time" in item and item["time"] is not None:
        _epoch_time(item["time"], f"{where}: time", scale=1)
    if "fields" in item and item["fields"] is not None and not isinstance(item["fields"], dict):
        raise SourcePayloadError(f"{where}: fields must be a JSON object")
    for key in _METADATA:
        if key in item and item[key] is not None and not isinstance(item[key], str):
            raise SourcePayloadError(f"{where}: {key} must be a string")


def _epoch_time(value: Any, what: str, *, scale: int) -> str:
    """Epoch seconds (scale 1) or milliseconds (scale 1000), number or decimal text, as RFC 3339 UTC."""
    number: Decimal | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(float(value))) if math.isfinite(value) else None
    elif isinstance(value, str) and _DECIMAL_TEXT.fullmatch(value.strip()):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
    if number is None:
        raise SourcePayloadError(f"{what}: expected epoch seconds as a number or decimal string")
    micros = int((number * 1_000_000 / scale).to_integral_value())
    if micros < 0 or micros > _MAX_SECONDS * 1_000_000:
        raise SourcePayloadError(f"{what}: {value!r} is out of range")
    return format_time(_EPOCH + timedelta(microseconds=micros))


def is_github_audit_event(event: Any) -> bool:
    """True for a GitHub audit-log event: an action like repo.create and `_document_id` or `@timestamp`."""
    return (
        isinstance(event, dict)
        and isinstance(event.get("action"), str)
        and _AUDIT_ACTION.fullmatch(event["action"]) is not None
        and ("_document_id" in event or "@timestamp" in event)
    )


def audit_kind(action: str) -> str:
    """The envelope kind of a GitHub audit action.

    git.* → code.*; pull_request.merge → code.merge, other pull_request(_review).* → code.review;
    protected_branch.*, repository_ruleset.*, hook.*, environment.* and repo/org/business
    settings → config.change; membership, roles, teams, OAuth, tokens and keys → access.change;
    workflows.* → ci.run / ci.job / ci.*; secret_scanning* → secret.alert (but enabling or
    disabling it is config.change); user.login and
    user.failed_login → auth.success / auth.failure; anything else → github.audit.
    """
    prefix, _, verb = action.partition(".")
    if prefix == "git":
        part = _KIND_PART.sub("_", verb.lower()).strip("_")
        return f"code.{part}" if part else "code.git"
    if prefix == "pull_request":
        return "code.merge" if verb == "merge" else "code.review"
    if prefix.startswith("pull_request_review"):
        return "code.review"
    if prefix.startswith("secret_scanning"):
        # Turning scanning or push protection on or off is a setting; the rest are alerts and bypasses.
        return "config.change" if verb.startswith(("enable", "disable")) else "secret.alert"
    if prefix == "workflows":
        if "workflow_run" in verb:
            return "ci.run"
        if "job" in verb:
            return "ci.job"
        part = _KIND_PART.sub("_", verb.lower()).strip("_")
        return f"ci.{part}" if part else "ci.run"
    if prefix in _ACCESS_PREFIXES or prefix.startswith("oauth_"):
        return "access.change"
    if prefix in _CONFIG_PREFIXES:
        return "config.change"
    if prefix in ("repo", "org", "business", "enterprise"):
        return "access.change" if any(word in verb for word in _ACCESS_WORDS) else "config.change"
    if prefix == "user" and verb in ("login", "failed_login"):
        return "auth.success" if verb == "login" else "auth.failure"
    return "github.audit"


def to_envelopes(items: list[dict[str, Any]], source_id: str, *, source_type: str = "hec") -> list[Envelope]:
    """One envelope per HEC event (as split_events returns them), in order."""
    envelopes: list[Envelope] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or item.get("event") is None:
            raise SourcePayloadError(f"event {index}: expected an HEC event object with an event field")
        event = item["event"]
        audit = event
        if isinstance(event, str) and event.lstrip().startswith("{"):
            try:
                audit = _DECODER.decode(event)
            except (ValueError, RecursionError):
                audit = None
        source: dict[str, str] = {"type": source_type, "id": source_id}
        if is_github_audit_event(audit):
            envelope = _audit_envelope(audit, item, source, index)
        else:
            envelope = {"source": source, "kind": "hec.event", "outcome": "unknown"}
            if item.get("time") is not None:
                envelope["time"] = _epoch_time(item["time"], f"event {index}: time", scale=1)
        attrs = envelope.setdefault("attrs", {})
        for key in _METADATA:
            if isinstance(item.get(key), str) and item[key]:
                attrs[key] = item[key]
        if isinstance(item.get("fields"), dict) and item["fields"]:
            attrs["fields"] = item["fields"]
        if not attrs:
            del envelope["attrs"]
        envelope["raw"] = event
        envelopes.append(envelope)
    return envelopes


# --- GitHub audit-log events ----------------------------------------------------------


def _audit_time(event: dict[str, Any], item: dict[str, Any], index: int) -> str | None:
    """@timestamp (ms), else created_at (ms, s or RFC 3339), else the HEC time."""
    for key in ("@timestamp", "created_at"):
        value = event.get(key)
        if value is None or isinstance(value, bool):
            continue
        if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value.strip()):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                continue
            if moment.tzinfo is not None:
                return format_time(moment)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        scale = 1000 if key == "@timestamp" or abs(number) >= _MS_THRESHOLD else 1
        try:
            return _epoch_time(value, key, scale=scale)
        except SourcePayloadError:
            continue
    if item.get("time") is not None:
        return _epoch_time(item["time"], f"event {index}: time", scale=1)
    return None


def _audit_outcome(action: str, event: dict[str, Any]) -> str:
    conclusion = event.get("conclusion")
    if isinstance(conclusion, str):
        if conclusion == "success":
            return "success"
        if conclusion in ("failure", "timed_out", "startup_failure"):
            return "failure"
        return "unknown"
    verb = action.partition(".")[2]
    return "failure" if any(word in verb for word in _FAILURE_WORDS) else "success"


def _audit_target(event: dict[str, Any]) -> dict[str, str]:
    repo = _text(event.get("repo")) or _text(event.get("repository"))
    candidates = (
        ("repository", repo, event.get("repo_id")),
        ("team", _text(event.get("team")), event.get("team_id")),
        ("organization", _text(event.get("org")), event.get("org_id")),
        ("enterprise", _text(event.get("business")), event.get("business_id")),
    )
    for kind, name, ident in candidates:
        if name:
            target = {"type": kind, "name": name}
            ident_text = _text(ident) if isinstance(ident, int) else None
            if ident_text:
                target["id"] = ident_text
            return target
    return {}


_AUDIT_ATTRS = (
    "org", "repo", "team", "user", "business", "operation_type", "visibility", "previous_visibility",
    "transport_protocol_name", "programmatic_access_type", "permission", "old_permission", "conclusion",
    "workflow_run_id", "head_branch", "environment_name", "hashed_token", "token_id", "external_identity_nameid",
)  # fmt: skip


def _audit_envelope(event: dict[str, Any], item: dict[str, Any], source: dict[str, str], index: int) -> Envelope:
    action: str = event["action"]
    document = _text(event.get("_document_id"))
    if document:
        source["delivery"] = document
    envelope: Envelope = {
        "source": source,
        "kind": audit_kind(action),
        "action": action[:MAX_LABEL],
        "outcome": _audit_outcome(action, event),
    }
    actor_name = _text(event.get("actor"))
    actor = {
        "name": actor_name,
        "id": _text(event["actor_id"]) if isinstance(event.get("actor_id"), int) else None,
        "ip": _ip(event.get("actor_ip")),
        "type": "bot" if event.get("actor_is_bot") is True or (actor_name or "").endswith("[bot]") else None,
    }
    found = {key: value for key, value in actor.items() if value is not None}
    if found:
        envelope["actor"] = found
    target = _audit_target(event)
    if target:
        envelope["target"] = target
    attrs: dict[str, Any] = {"origin": "github.audit"}
    for key in _AUDIT_ATTRS:
        value = event.get(key)
        if isinstance(value, bool) or (isinstance(value, int | str) and value != ""):
            attrs[key] = value
    country = event.get("actor_location")
    if isinstance(country, dict) and isinstance(country.get("country_code"), str):
        attrs["country_code"] = country["country_code"]
    envelope["attrs"] = attrs
    moment = _audit_time(event, item, index)
    if moment is not None:
        envelope["time"] = moment
    return envelope
