"""GitLab: webhooks, system hooks and audit event streaming, as envelopes (DESIGN.md §3).

Pure: no I/O. Authenticity comes first and is the caller's to check:

* `verify_token` — the shared secret GitLab sends in X-Gitlab-Token (webhooks)
  or X-Gitlab-Event-Streaming-Token (audit event streaming), compared in
  constant time.
* `verify_standard_webhook` — webhooks with a signing token carry Standard
  Webhooks signatures (standardwebhooks.com): `webhook-signature` holds
  space-separated `v1,<base64 HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>`
  entries, the key being the base64 after `whsec_` in the secret.

`to_envelopes` maps one webhook delivery (X-Gitlab-Event names the hook) and
`audit_to_envelopes` one streamed audit event; neither drops an event: a hook
or audit type it does not know becomes kind `gitlab.other` / `gitlab.audit`
with the payload kept whole in `raw`. Payload shapes follow GitLab's
documentation: user/project/integrations/webhook_events.md,
administration/system_hooks.md and user/compliance/audit_event_schema.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..event import format_time
from .base import Envelope, SourceAuthError, SourcePayloadError, constant_time_equal
from .base import delivery_key as _delivery
from .base import ip_or_none as _ip
from .base import label as _label

__all__ = ["audit_to_envelopes", "to_envelopes", "verify_standard_webhook", "verify_token"]

SOURCE_TYPE = "gitlab"
_MAX_LABEL = 1024
_MAX_SIGNATURES = 32
_ATTR_VALUE_MAX = 4096
_ZERO_SHA = "0" * 40

# CI statuses (pipelines, jobs, deployments) → outcome. Anything else (created,
# pending, running, manual, skipped, ...) has not finished: unknown.
_STATUS_OUTCOME = {
    "success": "success",
    "failed": "failure",
    "canceled": "failure",
    "cancelled": "failure",
}

# System hook event names (administration/system_hooks.md) by kind.
_SYSTEM_ACCESS = re.compile(r"^(user_(create|destroy|rename|add_to_team|remove_from_team|update_for_team|"
                            r"add_to_group|remove_from_group|update_for_group)|key_(create|destroy))$")  # fmt: skip
_SYSTEM_CONFIG = re.compile(r"^(project|group)_(create|destroy|rename|transfer|update)$")

# Audit event types (GitLab's audit event type definitions) by kind, checked in order.
_AUDIT_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"login_failed|failed_login|authentication_failed|failed_to_authenticate"), "auth.failure"),
    (re.compile(r"authenticated|signed_in|logged_in|login_succeeded"), "auth.success"),
    (
        re.compile(
            r"member|access_token|deploy_token|deploy_key|_key_|ssh_key|gpg_key|^user_|_user_|"
            r"group_link|role|permission|access_level|two_factor|_2fa|password|impersonat|"
            r"blocked|banned|approver"
        ),
        "access.change",
    ),
    (
        re.compile(
            r"protected_branch|protected_tag|push_rule|approval_rule|setting|compliance|variable|"
            r"_(created|updated|deleted|destroyed|changed|enabled|disabled|added|removed|toggled)$"
        ),
        "config.change",
    ),
)


# --- authenticity ------------------------------------------------------------------


def verify_token(expected: str, header: str | None) -> None:
    """Raise SourceAuthError unless the X-Gitlab-Token (or streaming token) header equals `expected`.

    Compared in constant time; an empty header never matches, not even an empty secret.
    """
    if not header or not expected or not constant_time_equal(expected, header):
        raise SourceAuthError("the GitLab token header is missing or does not match this source's token")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """A header by case-insensitive name (works for plain dicts as well as HTTP header maps)."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def _webhook_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: the base64 after the optional `whsec_` prefix."""
    encoded = secret.removeprefix("whsec_")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the signing secret is not whsec_ followed by base64") from None
    if not key:
        raise ValueError("the signing secret is empty")
    return key


def verify_standard_webhook(
    secret: str, headers: Mapping[str, str], body: bytes, now: int, tolerance: int = 300
) -> None:
    """Raise SourceAuthError unless a `v1` entry of webhook-signature signs this exact request.

    Standard Webhooks: the signed content is `<webhook-id>.<webhook-timestamp>.<body>`; a
    timestamp more than `tolerance` seconds from `now` (either way) is refused, so a captured
    request cannot be replayed later. ValueError if `secret` itself is malformed (configuration).
    """
    key = _webhook_key(secret)
    msg_id = _header(headers, "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    if not msg_id or not timestamp or not signatures:
        raise SourceAuthError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        raise SourceAuthError("webhook-timestamp is not a Unix timestamp in seconds")
    if abs(now - int(timestamp)) > tolerance:
        raise SourceAuthError(f"webhook-timestamp is more than {tolerance} s from the current time")
    expected = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    for entry in signatures.split()[:_MAX_SIGNATURES]:
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if constant_time_equal(candidate, expected):
            return
    raise SourceAuthError("webhook-signature has no valid v1 signature for this request")


# --- small value helpers -------------------------------------------------------------


def _time(value: Any) -> str | None:
    """GitLab's timestamps as RFC 3339 UTC; None if absent or unreadable (sealtrail then uses `received`).

    GitLab writes ISO 8601 (`2013-12-03T17:23:34Z`) and Ruby's default form
    (`2016-08-12 15:23:28 UTC`, `2021-04-28 21:50:00 +0200`).
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(" UTC"):
        text = text[:-4] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return format_time(moment) if moment.tzinfo is not None else None


def _small(value: Any) -> bool:
    """True if `value` is at most 4 KiB of JSON: attrs stay inside the entry, bulk belongs in raw."""
    return len(json.dumps(value, ensure_ascii=False).encode()) <= _ATTR_VALUE_MAX


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _compact(values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` without None and empty strings."""
    return {key: value for key, value in values.items() if value is not None and value != ""}


def _envelope(
    *,
    kind: str,
    action: str | None,
    source: dict[str, str],
    raw: Any,
    outcome: str = "unknown",
    actor: Mapping[str, Any] | None = None,
    target: Mapping[str, Any] | None = None,
    time: str | None = None,
    env: Any = None,
    attrs: Mapping[str, Any] | None = None,
) -> Envelope:
    envelope: Envelope = {"kind": kind, "source": source, "outcome": outcome, "raw": raw}
    if action:
        envelope["action"] = action[:_MAX_LABEL]
    if actor and (actor_fields := _compact(actor)):
        envelope["actor"] = actor_fields
    if target and (target_fields := _compact(target)):
        envelope["target"] = target_fields
    if time:
        envelope["time"] = time
    if (env_label := _label(env)) is not None:
        envelope["env"] = env_label
    if attrs and (extras := _compact(attrs)):
        envelope["attrs"] = extras
    return envelope


def _source(source_id: str, delivery: str | None) -> dict[str, str]:
    source = {"type": SOURCE_TYPE, "id": source_id}
    if delivery:
        source["delivery"] = _delivery(delivery)
    return source


def _user_actor(user: Any) -> dict[str, Any]:
    """The `user` object GitLab puts in most hooks: {id, name, username, email}."""
    user = _dict(user)
    return {
        "id": _label(user.get("id")),
        "name": _label(user.get("username")) or _label(user.get("name")),
        "type": "user" if user else None,
    }


def _project_attrs(payload: Mapping[str, Any]) -> dict[str, Any]:
    project = _dict(payload.get("project"))
    return {
        "project": _label(project.get("path_with_namespace")),
        "project_id": project.get("id") if type(project.get("id")) is int else payload.get("project_id"),
    }


def _repository_target(payload: Mapping[str, Any]) -> dict[str, Any]:
    project = _dict(payload.get("project"))
    return {
        "type": "repository",
        "id": _label(project.get("id")) or _label(payload.get("project_id")),
        "name": _label(project.get("path_with_namespace")),
    }


def _hook_slug(event_header: str) -> str:
    """'Merge Request Hook' → 'merge_request'."""
    words = event_header.strip().lower().removesuffix(" hook").split()
    return "_".join(words) or "unknown"


# --- webhooks ----------------------------------------------------------------------


def _push(payload: dict[str, Any], source: dict[str, str], *, tag: bool) -> Envelope:
    before, after = payload.get("before"), payload.get("after")
    attrs = {
        **_project_attrs(payload),
        "ref": _label(payload.get("ref")),
        "before": before,
        "after": after,
        "checkout_sha": payload.get("checkout_sha"),
        "total_commits_count": payload.get("total_commits_count"),
        "created": True if before == _ZERO_SHA else None,
        "deleted": True if after == _ZERO_SHA else None,
        "ref_protected": payload.get("ref_protected"),
    }
    actor = {
        "id": _label(payload.get("user_id")),
        "name": _label(payload.get("user_username")) or _label(payload.get("user_name")),
        "type": "user",
    }
    return _envelope(
        kind="code.push",
        action="tag_push" if tag else "push",
        source=source,
        raw=payload,
        outcome="success",
        actor=actor,
        target=_repository_target(payload),
        attrs=attrs,
    )


def _merge_request(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    mr = _dict(payload.get("object_attributes"))
    project = _label(_dict(payload.get("project")).get("path_with_namespace"))
    iid = mr.get("iid")
    verb = _label(mr.get("action")) or _label(mr.get("state")) or "update"
    attrs = {
        **_project_attrs(payload),
        "iid": iid,
        "state": _label(mr.get("state")),
        "source_branch": _label(mr.get("source_branch")),
        "target_branch": _label(mr.get("target_branch")),
        "merge_commit_sha": mr.get("merge_commit_sha"),
        "url": _label(mr.get("url")),
    }
    return _envelope(
        kind="code.review",
        action=f"merge_request.{verb}",
        source=source,
        raw=payload,
        outcome="success",
        actor=_user_actor(payload.get("user")),
        target={
            "type": "merge_request",
            "id": _label(mr.get("id")),
            "name": f"{project}!{iid}" if project and type(iid) is int else _label(mr.get("title")),
        },
        time=_time(mr.get("updated_at")),
        attrs=attrs,
    )


def _pipeline(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    pipeline = _dict(payload.get("object_attributes"))
    status = _label(pipeline.get("status")) or "unknown"
    project = _label(_dict(payload.get("project")).get("path_with_namespace"))
    iid = pipeline.get("iid")
    attrs = {
        **_project_attrs(payload),
        "pipeline_id": pipeline.get("id"),
        "ref": _label(pipeline.get("ref")),
        "sha": pipeline.get("sha"),
        "tag": pipeline.get("tag"),
        "status": status,
        "pipeline_source": _label(pipeline.get("source")),
        "duration": pipeline.get("duration"),
        "url": _label(pipeline.get("url")),
    }
    return _envelope(
        kind="ci.run",
        action=f"pipeline.{status}",
        source=source,
        raw=payload,
        outcome=_STATUS_OUTCOME.get(status, "unknown"),
        actor=_user_actor(payload.get("user")),
        target={
            "type": "pipeline",
            "id": _label(pipeline.get("id")),
            "name": f"{project}#{iid}" if project and type(iid) is int else project,
        },
        time=_time(pipeline.get("finished_at")) or _time(pipeline.get("created_at")),
        attrs=attrs,
    )


def _job(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    status = _label(payload.get("build_status")) or "unknown"
    environment = _dict(payload.get("environment"))
    runner = _dict(payload.get("runner"))
    attrs = {
        **_project_attrs(payload),
        "project": _label(_dict(payload.get("project")).get("path_with_namespace"))
        or _label(payload.get("project_name")),
        "pipeline_id": payload.get("pipeline_id"),
        "stage": _label(payload.get("build_stage")),
        "ref": _label(payload.get("ref")),
        "sha": payload.get("sha"),
        "status": status,
        "failure_reason": _label(payload.get("build_failure_reason")) if status == "failed" else None,
        "allow_failure": payload.get("build_allow_failure"),
        "retries_count": payload.get("retries_count"),
        "runner": _label(runner.get("description")),
    }
    time = next(
        (
            stamp
            for stamp in map(
                _time,
                (
                    payload.get("build_finished_at_iso") or payload.get("build_finished_at"),
                    payload.get("build_started_at_iso") or payload.get("build_started_at"),
                    payload.get("build_created_at_iso") or payload.get("build_created_at"),
                ),
            )
            if stamp
        ),
        None,
    )
    return _envelope(
        kind="ci.job",
        action=f"job.{status}",
        source=source,
        raw=payload,
        outcome=_STATUS_OUTCOME.get(status, "unknown"),
        actor=_user_actor(payload.get("user")),
        target={"type": "job", "id": _label(payload.get("build_id")), "name": _label(payload.get("build_name"))},
        time=time,
        env=environment.get("name"),
        attrs=attrs,
    )


def _deployment(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    status = _label(payload.get("status")) or "unknown"
    environment = _label(payload.get("environment"))
    attrs = {
        **_project_attrs(payload),
        "deployment_id": payload.get("deployment_id"),
        "deployable_id": payload.get("deployable_id"),
        "short_sha": _label(payload.get("short_sha")),
        "environment_tier": _label(payload.get("environment_tier")),
        "environment_url": _label(payload.get("environment_external_url")),
        "status": status,
    }
    return _envelope(
        kind="deploy",
        action=f"deployment.{status}",
        source=source,
        raw=payload,
        outcome=_STATUS_OUTCOME.get(status, "unknown"),
        actor=_user_actor(payload.get("user")),
        target={"type": "environment", "name": environment},
        time=_time(payload.get("status_changed_at")),
        env=environment,
        attrs=attrs,
    )


def _member(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    """Group member hooks and the member/user/key system hooks: the user is the target, not the actor."""
    event = _label(payload.get("event_name")) or "member"
    attrs = {
        "group": _label(payload.get("group_path")),
        "group_id": payload.get("group_id"),
        "project": _label(payload.get("project_path_with_namespace")),
        "project_id": payload.get("project_id"),
        "access_level": _label(payload.get("group_access"))
        or _label(payload.get("project_access"))
        or _label(payload.get("access_level")),
        "expires_at": _label(payload.get("expires_at")),
    }
    target = {
        "type": "key" if event.startswith("key_") else "user",
        "id": _label(payload.get("user_id")) or _label(payload.get("id")),
        "name": _label(payload.get("user_username")) or _label(payload.get("username")),
    }
    return _envelope(
        kind="access.change",
        action=event,
        source=source,
        raw=payload,
        outcome="success",
        target=target,
        time=_time(payload.get("updated_at")) or _time(payload.get("created_at")),
        attrs=attrs,
    )


def _system_config(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    """project_* and group_* system hooks: a project or group created, renamed, moved or removed."""
    event = _label(payload.get("event_name")) or "update"
    is_group = event.startswith("group_")
    target = {
        "type": "group" if is_group else "project",
        "id": _label(payload.get("group_id" if is_group else "project_id")),
        "name": _label(payload.get("full_path" if is_group else "path_with_namespace"))
        or _label(payload.get("path"))
        or _label(payload.get("name")),
    }
    return _envelope(
        kind="config.change",
        action=event,
        source=source,
        raw=payload,
        outcome="success",
        target=target,
        time=_time(payload.get("updated_at")) or _time(payload.get("created_at")),
        attrs={"old_path": _label(payload.get("old_path_with_namespace")) or _label(payload.get("old_full_path"))},
    )


def _release(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    verb = _label(payload.get("action")) or "update"
    attrs = {
        **_project_attrs(payload),
        "tag": _label(payload.get("tag")),
        "sha": _dict(payload.get("commit")).get("id"),
        "url": _label(payload.get("url")),
    }
    return _envelope(
        kind="code.release",
        action=f"release.{verb}",
        source=source,
        raw=payload,
        outcome="success",
        target={"type": "release", "id": _label(payload.get("id")), "name": _label(payload.get("tag"))},
        time=_time(payload.get("created_at")) if verb == "create" else None,
        attrs=attrs,
    )


def _access_token(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    token = _dict(payload.get("object_attributes"))
    group = _dict(payload.get("group"))
    attrs = {
        **_project_attrs(payload),
        "group": _label(group.get("full_path")) or _label(group.get("group_path")),
        "expires_at": _label(token.get("expires_at")),
        "token_user_id": token.get("user_id"),
    }
    return _envelope(
        kind="access.expiring",
        action=_label(payload.get("event_name")) or "access_token",
        source=source,
        raw=payload,
        target={"type": "access_token", "id": _label(token.get("id")), "name": _label(token.get("name"))},
        attrs=attrs,
    )


def _feature_flag(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    flag = _dict(payload.get("object_attributes"))
    active = flag.get("active")
    return _envelope(
        kind="config.change",
        action="feature_flag." + ("on" if active is True else "off" if active is False else "update"),
        source=source,
        raw=payload,
        outcome="success",
        actor=_user_actor(payload.get("user")),
        target={"type": "feature_flag", "id": _label(flag.get("id")), "name": _label(flag.get("name"))},
        attrs={**_project_attrs(payload), "active": active if isinstance(active, bool) else None},
    )


def _failed_login(payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    actor = {
        "id": _label(payload.get("user_id")),
        "name": _label(payload.get("username")) or _label(payload.get("name")),
        "type": "user",
    }
    return _envelope(
        kind="auth.failure",
        action="user_failed_login",
        source=source,
        raw=payload,
        outcome="failure",
        actor=actor,
        time=_time(payload.get("updated_at")),
        attrs={"state": _label(payload.get("state"))},
    )


def _other(event_header: str, payload: dict[str, Any], source: dict[str, str]) -> Envelope:
    """Any other hook: kind gitlab.other, its own name (and object_attributes.action) as the action."""
    name = (
        _label(payload.get("object_kind"))
        or _label(payload.get("event_name"))
        or _label(payload.get("event_type"))
        or _hook_slug(event_header)
    )
    verb = _label(_dict(payload.get("object_attributes")).get("action"))
    return _envelope(
        kind="gitlab.other",
        action=f"{name}.{verb}" if verb else name,
        source=source,
        raw=payload,
        actor=_user_actor(payload.get("user")) if "user" in payload else None,
        target=_repository_target(payload) if "project" in payload else None,
        attrs={**_project_attrs(payload), "hook": _label(event_header)},
    )


_BY_HEADER = {
    "push hook": lambda p, s: _push(p, s, tag=False),
    "tag push hook": lambda p, s: _push(p, s, tag=True),
    "merge request hook": _merge_request,
    "pipeline hook": _pipeline,
    "job hook": _job,
    "deployment hook": _deployment,
    "member hook": _member,
    "release hook": _release,
    "resource access token hook": _access_token,
    "feature flag hook": _feature_flag,
}
_BY_OBJECT_KIND = {"push": "push hook", "tag_push": "tag push hook", "merge_request": "merge request hook"}


def _system_hook(payload: dict[str, Any], source: dict[str, str]) -> Envelope | None:
    """System hooks (X-Gitlab-Event: System Hook) share one header; the payload says what happened."""
    object_kind = payload.get("object_kind")
    if isinstance(object_kind, str) and object_kind in _BY_OBJECT_KIND:
        return _BY_HEADER[_BY_OBJECT_KIND[object_kind]](payload, source)
    event = payload.get("event_name")
    if not isinstance(event, str):
        return None
    if event == "user_failed_login":
        return _failed_login(payload, source)
    if _SYSTEM_ACCESS.match(event):
        return _member(payload, source)
    if _SYSTEM_CONFIG.match(event):
        return _system_config(payload, source)
    return None


def to_envelopes(event_header: str, payload: dict[str, Any], source_id: str, delivery: str | None) -> list[Envelope]:
    """One envelope for one webhook delivery; `event_header` is X-Gitlab-Event.

    `delivery` is the Idempotency-Key or X-Gitlab-Event-UUID header: a redelivery of
    the same hook then dedups to the first. Unknown hooks become kind gitlab.other.
    """
    if not isinstance(payload, dict):
        raise SourcePayloadError("a GitLab webhook payload must be a JSON object")
    source = _source(source_id, delivery)
    header = (event_header or "").strip().lower()
    handler = _BY_HEADER.get(header)
    if handler is not None:
        return [handler(payload, source)]
    if header == "system hook" and (envelope := _system_hook(payload, source)) is not None:
        return [envelope]
    return [_other(event_header or "", payload, source)]


# --- audit event streaming ------------------------------------------------------------


def _audit_kind(event_type: str, details: Mapping[str, Any]) -> str:
    if event_type == "repository_git_operation":
        message = details.get("custom_message")
        action = message.get("action") if isinstance(message, dict) else None
        return "code.push" if action == "git-receive-pack" else "code.read"
    for pattern, kind in _AUDIT_KINDS:
        if pattern.search(event_type):
            return kind
    return "gitlab.audit"


def audit_to_envelopes(payload: dict[str, Any], source_id: str) -> list[Envelope]:
    """One envelope for one streamed audit event (check X-Gitlab-Event-Streaming-Token with verify_token).

    The audit event's `id` is the delivery, so GitLab's retries dedup (GitLab documents
    the id as the deduplication key). `event_type` is the action and picks the kind;
    types that match no known family become gitlab.audit.
    """
    if not isinstance(payload, dict):
        raise SourcePayloadError("a GitLab audit event must be a JSON object")
    details = _dict(payload.get("details"))
    audit_id = payload.get("id")
    event_type = _label(payload.get("event_type")) or ""
    kind = _audit_kind(event_type.lower(), details)
    custom = details.get("custom_message")
    actor = {
        "id": _label(payload.get("author_id")),
        "name": _label(payload.get("author_name")) or _label(details.get("author_name")),
        "type": _label(details.get("author_class")) or ("user" if payload.get("author_id") is not None else None),
        "ip": _ip(payload.get("ip_address")) or _ip(details.get("ip_address")),
    }
    target = {
        "type": _label(payload.get("target_type")) or _label(details.get("target_type")),
        "id": _label(payload.get("target_id")) or _label(details.get("target_id")),
        "name": _label(payload.get("target_details")) or _label(details.get("target_details")),
    }
    attrs = {
        "event_type": event_type,
        "entity_type": _label(payload.get("entity_type")),
        "entity_id": payload.get("entity_id"),
        "entity_path": _label(payload.get("entity_path")) or _label(details.get("entity_path")),
        "custom_message": custom if isinstance(custom, str | dict) and _small(custom) else None,
    }
    action = event_type or (_label(custom) if isinstance(custom, str) else None) or "audit"
    return [
        _envelope(
            kind=kind,
            action=action,
            source=_source(source_id, audit_id if isinstance(audit_id, str) and audit_id.strip() else _label(audit_id)),
            raw=payload,
            outcome="failure" if kind == "auth.failure" else "success",
            actor=actor,
            target=target,
            time=_time(payload.get("created_at")),
            attrs=attrs,
        )
    ]
