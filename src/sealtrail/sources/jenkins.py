"""Jenkins: Audit Trail plugin lines and Notification plugin build events, as envelopes (DESIGN.md §3).

Pure: no I/O. Two plugins, two shapes:

* Audit Trail plugin, Elasticsearch logger: `{"message": "<audit line>", "@timestamp":
  "yyyy-MM-dd'T'HH:mm:ssZ"}`, one per audited action. The plugin writes free text;
  `audit_to_envelopes` reads the forms its listeners emit (AuditTrailFilter,
  AuditTrailRunListener, AuthenticationAuditListener, CredentialUsageListener,
  ScriptUsageListener): HTTP requests `<uri>[ (<item>)] by <user>[ from <ip>]`,
  builds started and finalized, logins, logouts and failed logins, credential use
  and script console runs. A line in no known form is kept as kind `jenkins.audit`.
* Notification plugin, JSON format: `{"name", "url", "build": {"full_url", "number",
  "phase", "status", "scm", ...}}` per build phase (QUEUED, STARTED, COMPLETED,
  FINALIZED); `notification_to_envelopes` makes one ci.run event per phase, with
  delivery `<job path>#<number>[@<start ms>]/<phase>` so a resent notification dedups.

Neither plugin signs its requests: authenticate the endpoint (API token, TLS client
certificate) in the server.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from ..event import format_time
from .base import Envelope, SourcePayloadError
from .base import delivery_key as _delivery
from .base import ip_or_none as _ip
from .base import label as _label

__all__ = ["audit_to_envelopes", "notification_to_envelopes"]

SOURCE_TYPE = "jenkins"
_MAX_LABEL = 1024
_ATTR_TEXT_MAX = 4096
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Build results (hudson.model.Result) → outcome. UNSTABLE built but failed tests: not a success.
_RESULT_OUTCOME = {"SUCCESS": "success", "FAILURE": "failure", "ABORTED": "failure", "UNSTABLE": "failure"}

# --- Audit Trail line forms ---------------------------------------------------------

_LOGIN = re.compile(r"^(?:Successful login for user '(?P<q>.*)'|user (?P<u>\S+) logged in)(?: from (?P<ip>\S+))?$")
_LOGIN_FAILED = re.compile(
    r"^(?:Failed login attempt for user '(?P<q>.*)'|login failed for (?:user )?(?P<u>\S+))(?: from (?P<ip>\S+))?$"
)
_LOGOUT = re.compile(r"^(?:Logout for user '(?P<q>.*)'|user (?P<u>\S+) logged out)(?: from (?P<ip>\S+))?$")
_SCRIPT = re.compile(r"^A groovy script was executed(?: by user '(?P<user>[^']*)')?\. Origin: (?P<origin>.*?)\.\s*$")
_CREDENTIALS = re.compile(
    r"^'(?P<by>.*)' \((?:class )?(?P<by_type>[^)]*)\) used credentials '(?P<id>[^']*)'"
    r" \((?:class )?(?P<type>[^)]*)\)\.$"
)
_CREDENTIALS_UNSUPPORTED = re.compile(r"^'(?P<by>.*)' \((?:class )?(?P<by_type>[^)]*)\) used credentials of type ")
_FINALIZED = re.compile(
    r"^(?P<name>.+?) #(?P<number>\d+) (?P<causes>.*) on node (?P<node>.*) started at (?P<started>\S+)"
    r" completed in (?P<duration>\d+)ms completed: (?P<result>\w+)$"
)
_STARTED = re.compile(r"^(?P<url>job/\S*/) #(?P<number>\d+) (?P<causes>.*)$")  # Job.getUrl(): relative, ends in /
_REQUEST = re.compile(r"^(?P<uri>/\S*)(?P<extra>.*) by (?P<user>\S+)(?: from (?P<ip>\S+))?$")
_PARAMETERS = ", Parameters:["
_USER_CAUSE = re.compile(r"Started by user (?P<user>.+?)(?=, [A-Z]|$)")

# Request URIs (the last path segment) by kind.
_BUILD_VERBS = frozenset(
    {"build", "buildWithParameters", "rebuild", "replay", "stop", "term", "kill", "cancelQueue", "cancelItem",
     "postBuildResult", "polling"}
)  # fmt: skip
_CONFIG_VERBS = frozenset(
    {"configSubmit", "config.xml", "createItem", "createView", "doDelete", "delete", "enable", "disable",
     "toggleOffline", "doWipeOutWorkspace", "toggleLogKeep", "updateSubmit", "createCredentials", "doRename",
     "confirmRename", "configure", "install", "uninstall", "makeDisabled", "makeEnabled", "addView"}
)  # fmt: skip


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None and value != ""}


def _envelope(
    *,
    kind: str,
    action: str,
    source: dict[str, str],
    raw: Any,
    outcome: str = "unknown",
    actor: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    time: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Envelope:
    envelope: Envelope = {"kind": kind, "action": action[:_MAX_LABEL], "source": source, "outcome": outcome}
    if actor and (actor_fields := _compact(actor)):
        envelope["actor"] = actor_fields
    if target and (target_fields := _compact(target)):
        envelope["target"] = target_fields
    if time:
        envelope["time"] = time
    if attrs and (extras := _compact(attrs)):
        # attrs stay inside the entry (only raw moves out of line): long texts are cut, raw keeps them whole
        envelope["attrs"] = {k: v[:_ATTR_TEXT_MAX] if isinstance(v, str) else v for k, v in extras.items()}
    envelope["raw"] = raw
    return envelope


def _timestamp(value: Any) -> str | None:
    """The Elasticsearch logger's @timestamp (`2024-01-15T10:00:00+0000`) as RFC 3339 UTC, if readable."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return format_time(moment) if moment.tzinfo is not None else None


def _job_from_url(url: str) -> str:
    """`job/folder/job/app/` (or a full URL) → `folder/app`, the job's full name."""
    parts = [part for part in url.split("/") if part]
    names = [parts[i + 1] for i, part in enumerate(parts[:-1]) if part == "job"]
    return "/".join(names) or url


def _user(match: re.Match[str]) -> str | None:
    return match.group("q") if match.group("q") is not None else match.group("u")


def _causes(text: str) -> tuple[str, str | None]:
    """Split `<causes>, Parameters:[...]` (audit-trail ≥ 3.x appends the parameters)."""
    cut = text.find(_PARAMETERS)
    if cut < 0:
        return text.strip(), None
    return text[:cut].strip(), text[cut + len(_PARAMETERS) :].removesuffix("]")


def _cause_actor(causes: str) -> dict[str, Any] | None:
    match = _USER_CAUSE.search(causes)
    return {"name": match.group("user"), "type": "user"} if match else None


def _request_target(path: str, detail: str) -> dict[str, Any]:
    """What an audited request acted on, from its URI and the plugin's `(detail)` after it.

    The detail is the queued task's URL for queue requests and the new item's name for createItem.
    """
    parts = [part for part in path.split("?")[0].split("/") if part]
    item = detail.strip().removeprefix("(").removesuffix(")")
    if "job/" in item:
        return {"type": "job", "name": _job_from_url(item)}
    if parts[-1:] == ["createItem"] and item:
        folder = _job_from_url(path) if "job" in parts else ""
        return {"type": "job", "name": f"{folder}/{item}" if folder else item}
    if "credentials" in parts or "credential" in parts:
        ident = parts[parts.index("credential") + 1] if "credential" in parts[:-1] else None
        return {"type": "credentials", "id": ident}
    if "job" in parts:
        return {"type": "job", "name": _job_from_url(path.split("?")[0])}
    for kind, marker in (("node", "computer"), ("view", "view"), ("user", "user")):
        if marker in parts[:-1]:
            return {"type": kind, "name": parts[parts.index(marker) + 1]}
    return {"type": "system", "name": "jenkins"}


def _audit_line(message: str, source: dict[str, str], raw: Any, time: str | None) -> Envelope:
    line = message.strip().splitlines()[0] if message.strip() else ""

    def event(kind: str, action: str, **fields: Any) -> Envelope:
        return _envelope(kind=kind, action=action, source=source, raw=raw, time=time, **fields)

    for pattern, kind, action, outcome in (
        (_LOGIN, "auth.success", "login", "success"),
        (_LOGIN_FAILED, "auth.failure", "login", "failure"),
        (_LOGOUT, "auth.logout", "logout", "success"),
    ):
        if match := pattern.match(line):
            actor = {"name": _label(_user(match)), "type": "user", "ip": _ip(match.group("ip"))}
            return event(kind, action, outcome=outcome, actor=actor)
    if match := _SCRIPT.match(line):
        return event(
            "jenkins.audit",
            "script.execute",
            outcome="success",
            actor={"name": _label(match.group("user")), "type": "user"},
            target={"type": "system", "name": "jenkins"},
            attrs={"origin": match.group("origin")},
        )
    if (match := _CREDENTIALS.match(line)) or (match := _CREDENTIALS_UNSUPPORTED.match(line)):
        ident = match.groupdict().get("id")
        return event(
            "jenkins.audit",
            "credentials.use",
            outcome="success",
            actor={"name": _label(match.group("by")), "type": match.group("by_type").rsplit(".", 1)[-1]},
            target={"type": "credentials", "id": _label(ident)},
            attrs={"credentials_type": match.groupdict().get("type")},
        )
    if match := _FINALIZED.match(line):
        causes, parameters = _causes(match.group("causes"))
        result = match.group("result")
        return event(
            "ci.run",
            "build.finalized",
            outcome=_RESULT_OUTCOME.get(result, "unknown"),
            actor=_cause_actor(causes),
            target={"type": "job", "name": _label(match.group("name"))},
            attrs={
                "build_number": int(match.group("number")),
                "result": result,
                "node": match.group("node"),
                "started_at": match.group("started"),
                "duration_ms": int(match.group("duration")),
                "causes": causes,
                "parameters": parameters,
            },
        )
    if match := _STARTED.match(line):
        causes, parameters = _causes(match.group("causes"))
        return event(
            "ci.run",
            "build.started",
            actor=_cause_actor(causes),
            target={"type": "job", "name": _label(_job_from_url(match.group("url")))},
            attrs={"build_number": int(match.group("number")), "causes": causes, "parameters": parameters},
        )
    if match := _REQUEST.match(line):
        uri, user = match.group("uri"), match.group("user")
        verb = [part for part in uri.split("?")[0].split("/") if part][-1:] or ["/"]
        target = _request_target(uri, match.group("extra"))
        kind = (
            "config.change"
            if verb[0] in _CONFIG_VERBS or target["type"] == "credentials"
            else "ci.run"
            if verb[0] in _BUILD_VERBS
            else "jenkins.audit"
        )
        by_ip = _ip(user)  # with no logged-in user the plugin writes the client address
        actor = {"name": None if by_ip else _label(user), "type": "user", "ip": _ip(match.group("ip")) or by_ip}
        build = re.search(r"(?:#|/)(\d+)(?:/|$|\s)", match.group("extra") + " " + uri.split("?")[0] + "/")
        return event(
            kind,
            verb[0],
            actor=actor,
            target=target,
            attrs={
                "uri": uri,
                "detail": match.group("extra").strip() or None,
                "build_number": int(build.group(1)) if build and target["type"] == "job" else None,
            },
        )
    return event("jenkins.audit", "audit")


def audit_to_envelopes(payload: dict[str, Any], source_id: str) -> list[Envelope]:
    """One envelope for one Audit Trail plugin record (Elasticsearch logger JSON).

    `message` is required; `@timestamp` becomes the event time when readable. Logins are
    auth.success / auth.failure, builds ci.run, configuration and credential changes
    config.change, anything else jenkins.audit (never dropped: the record is kept in raw).
    """
    if not isinstance(payload, dict):
        raise SourcePayloadError("a Jenkins audit record must be a JSON object")
    message = payload.get("message")
    if not isinstance(message, str):
        raise SourcePayloadError("message: required (the audit line, a string)")
    source = {"type": SOURCE_TYPE, "id": source_id}
    return [_audit_line(message, source, payload, _timestamp(payload.get("@timestamp")))]


def _millis(value: Any) -> datetime | None:
    if type(value) is not int or value <= 0:
        return None
    return _EPOCH + timedelta(milliseconds=value)


def notification_to_envelopes(payload: dict[str, Any], source_id: str) -> list[Envelope]:
    """One ci.run envelope for one Notification plugin message (JSON format).

    action `build.<phase>`, outcome from `build.status`, delivery `<job path>#<number>[@<start ms>]/<phase>`.
    The time is the build's start (`build.timestamp`, ms) for STARTED, start plus duration
    once COMPLETED or FINALIZED; QUEUED and messages without them take the received time.
    """
    if not isinstance(payload, dict):
        raise SourcePayloadError("a Jenkins notification must be a JSON object")
    name = payload.get("name")
    build = payload.get("build")
    if not isinstance(name, str) or not name:
        raise SourcePayloadError("name: required (the job name)")
    if not isinstance(build, dict):
        raise SourcePayloadError("build: required (an object)")
    number, phase = build.get("number"), build.get("phase")
    if type(number) is not int:
        raise SourcePayloadError("build.number: required (an integer)")
    if not isinstance(phase, str) or not phase:
        raise SourcePayloadError("build.phase: required (QUEUED, STARTED, COMPLETED or FINALIZED)")
    status = build.get("status") if isinstance(build.get("status"), str) else None
    scm: dict[str, Any] = build["scm"] if isinstance(build.get("scm"), dict) else {}
    started = _millis(build.get("timestamp"))
    duration = build.get("duration")
    moment = None
    if started is not None and phase.upper() == "STARTED":
        moment = started
    elif started is not None and phase.upper() in ("COMPLETED", "FINALIZED") and type(duration) is int:
        moment = started + timedelta(milliseconds=duration)
    url = payload.get("url")
    # The job's path (url) tells apart same-named jobs in different folders; the
    # build's start time tells apart a re-created job's builds that reuse numbers.
    job = url if isinstance(url, str) and url else name
    started_at = build.get("timestamp") if type(build.get("timestamp")) is int else None
    key = f"{job}#{number}/{phase}" if started_at is None else f"{job}#{number}@{started_at}/{phase}"
    source = {"type": SOURCE_TYPE, "id": source_id, "delivery": _delivery(key)}
    return [
        _envelope(
            kind="ci.run",
            action=f"build.{phase.lower()}",
            source=source,
            raw=payload,
            outcome=_RESULT_OUTCOME.get(status, "unknown") if status else "unknown",
            target={
                "type": "job",
                "id": _label(url),
                "name": _label(_job_from_url(url)) if isinstance(url, str) and "job/" in url else _label(name),
            },
            time=format_time(moment) if moment else None,
            attrs={
                "build_number": number,
                "phase": phase,
                "status": status,
                "build_url": _label(build.get("full_url")),
                "display_name": _label(payload.get("display_name")),
                "queue_id": build.get("queue_id") if type(build.get("queue_id")) is int else None,
                "scm_url": _label(scm.get("url")),
                "branch": _label(scm.get("branch")),
                "commit": _label(scm.get("commit")),
            },
        )
    ]
