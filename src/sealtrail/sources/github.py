"""GitHub webhooks: signature check and mapping to event envelopes.

Pure: no I/O. `verify_signature` checks `X-Hub-Signature-256` (HMAC-SHA256 of
the raw body with the webhook secret, compared in constant time);
`to_envelopes` turns one delivery into one envelope:

* `source` = {type: github, id, delivery: X-GitHub-Delivery}, so a redelivery
  of the same webhook dedups to the same event;
* `kind` from the event (code.push, code.review, code.merge, ci.run, ci.job,
  deploy, access.change, config.change, secret.alert, security.alert,
  github.ping), and `github.other` for every event not mapped: no event is
  ever dropped;
* `action` = "<event>.<action>" (or "<event>" when the payload has no action);
* `actor` from `sender` (else the pusher), `target` from the object acted on
  (repository, organization, team), `time` from the payload's timestamp of
  the change when it has one (else sealtrail uses the receipt time);
* `attrs` holds the few fields worth querying, `raw` the whole payload.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..event import MAX_LABEL, format_time
from .base import Envelope, SourceAuthError, SourcePayloadError, constant_time_equal
from .base import ip_or_none as _ip

__all__ = ["KINDS", "SIGNATURE_HEADER", "event_kind", "to_envelopes", "verify_signature"]

SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_EVENT_NAME = re.compile(r"[a-z0-9_]+")

KINDS: dict[str, str] = {
    "push": "code.push",
    "pull_request": "code.review",  # code.merge when closed and merged
    "pull_request_review": "code.review",
    "workflow_run": "ci.run",
    "workflow_job": "ci.job",
    "deployment": "deploy",
    "deployment_status": "deploy",
    "member": "access.change",
    "membership": "access.change",
    "organization": "access.change",
    "team": "access.change",
    "team_add": "access.change",
    "deploy_key": "access.change",
    "repository": "config.change",
    "public": "config.change",
    "branch_protection_rule": "config.change",
    "repository_ruleset": "config.change",
    "secret_scanning_alert": "secret.alert",
    "secret_scanning_alert_location": "secret.alert",
    "code_scanning_alert": "security.alert",
    "dependabot_alert": "security.alert",
    "repository_vulnerability_alert": "security.alert",
    "ping": "github.ping",
}
"""The kind of each mapped X-GitHub-Event; every other event is `github.other`."""

OTHER_KIND = "github.other"

_SUCCESS_CONCLUSIONS = frozenset({"success"})
_FAILURE_CONCLUSIONS = frozenset({"failure", "timed_out", "startup_failure"})
_FAILURE_DEPLOY_STATES = frozenset({"failure", "error"})
# Events that report a change GitHub has already made: their outcome is success.
_DONE = frozenset(
    {
        "push", "pull_request", "pull_request_review", "member", "membership", "organization", "team",
        "team_add", "deploy_key", "repository", "public", "branch_protection_rule", "repository_ruleset",
        "deployment", "ping",
    }
)  # fmt: skip


def verify_signature(secret: bytes, body: bytes, header: str | None) -> None:
    """Raise SourceAuthError unless `header` is "sha256=" + hex HMAC-SHA256(secret, body).

    The comparison is constant time; messages never contain the secret or the expected digest.
    An empty secret is a configuration error (ValueError): it would let anyone sign.
    """
    if not secret:
        raise ValueError("the GitHub webhook secret is empty; configure the secret set on the webhook")
    if header is None or not header.strip():
        raise SourceAuthError(f"missing {SIGNATURE_HEADER} header: set a secret on the GitHub webhook")
    match = _SIGNATURE.fullmatch(header.strip())
    if match is None:
        raise SourceAuthError(f"malformed {SIGNATURE_HEADER} header: expected sha256= and 64 hex digits")
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if not constant_time_equal(match.group(1).lower(), expected):
        raise SourceAuthError(
            f"{SIGNATURE_HEADER} does not match the body: wrong secret, or the body was changed in transit"
        )


def event_kind(event: str, payload: dict[str, Any]) -> str:
    """The envelope kind of one webhook (see KINDS)."""
    if (
        event == "pull_request"
        and payload.get("action") == "closed"
        and _dig(payload, "pull_request", "merged") is True
    ):
        return "code.merge"
    return KINDS.get(event, OTHER_KIND)


def to_envelopes(event: str, delivery: str, payload: dict[str, Any], source_id: str) -> list[Envelope]:
    """One envelope for one webhook delivery (X-GitHub-Event, X-GitHub-Delivery, parsed JSON body)."""
    if not isinstance(event, str) or not _EVENT_NAME.fullmatch(event):
        raise SourcePayloadError("X-GitHub-Event header missing or not an event name (such as push)")
    if not isinstance(delivery, str) or not delivery.strip() or len(delivery) > MAX_LABEL:
        raise SourcePayloadError("X-GitHub-Delivery header missing or invalid: it is the redelivery dedup key")
    if not isinstance(payload, dict):
        raise SourcePayloadError("a GitHub webhook body must be a JSON object")
    action = payload.get("action")
    verb = f"{event}.{action}" if isinstance(action, str) and action else event
    envelope: Envelope = {
        "source": {"type": "github", "id": source_id, "delivery": delivery.strip()},
        "kind": event_kind(event, payload),
        "action": _label(verb),
        "outcome": "success" if event in _DONE else "unknown",
    }
    actor = _actor(payload)
    if actor:
        envelope["actor"] = actor
    target = _target(event, payload)
    if target:
        envelope["target"] = target
    attrs: dict[str, Any] = {"event": event}
    org = _str(_dig(payload, "organization", "login"))
    if org:
        attrs["org"] = org
    detail = _DETAILS.get(event)
    if detail is not None:
        detail(payload, envelope, attrs)
    envelope["attrs"] = {key: value for key, value in attrs.items() if value is not None}
    moment = _event_time(event, payload)
    if moment is not None:
        envelope["time"] = moment
    envelope["raw"] = payload
    return [envelope]


# --- small readers: the payload is untrusted JSON, so every access checks its type ---


def _dig(value: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _str(value: Any) -> str | None:
    """A non-empty string (ints become their decimal text); anything else is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value:
        return value
    return None


def _label(value: Any) -> str | None:
    """An envelope label: a non-empty string of at most MAX_LABEL characters."""
    text = _str(value)
    return None if text is None else text[:MAX_LABEL]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _strings(value: Any) -> list[str] | None:
    if not isinstance(value, list):
        return None
    return [item for item in value if isinstance(item, str)]


def _changed(payload: dict[str, Any]) -> list[str] | None:
    """The names of the fields a `changes` object says were changed."""
    changes = payload.get("changes")
    return sorted(changes) if isinstance(changes, dict) and changes else None


def _time(value: Any) -> str | None:
    """An RFC 3339 string or epoch seconds as sealtrail's canonical UTC time; None if unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        try:
            return format_time(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return None
        return format_time(moment) if moment.tzinfo is not None else None
    return None


def _first_time(*values: Any) -> str | None:
    for value in values:
        moment = _time(value)
        if moment is not None:
            return moment
    return None


def _user(value: Any, *, ip: Any = None) -> dict[str, str]:
    """Actor fields from a GitHub user object {login, id, type}."""
    if not isinstance(value, dict):
        return {}
    kind = _label(value.get("type"))
    user = {
        "id": _label(_int(value.get("id"))),
        "name": _label(value.get("login")),
        "type": kind.lower() if kind else None,
        "ip": _ip(ip),
    }
    return {key: text for key, text in user.items() if text is not None}


def _actor(payload: dict[str, Any]) -> dict[str, str]:
    actor = _user(payload.get("sender"))
    if not actor:
        name = _label(_dig(payload, "pusher", "name"))
        if name:
            actor = {"name": name}
    return actor


def _object(kind: str, value: Any, name: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    target = {"type": kind, "id": _label(_int(value.get("id"))), "name": _label(name)}
    found = {key: text for key, text in target.items() if text is not None}
    return found if len(found) > 1 else {}


def _repository(payload: dict[str, Any]) -> dict[str, str]:
    repo = payload.get("repository")
    return _object("repository", repo, _dig(repo, "full_name"))


def _organization(payload: dict[str, Any]) -> dict[str, str]:
    org = payload.get("organization")
    return _object("organization", org, _dig(org, "login"))


def _team(payload: dict[str, Any]) -> dict[str, str]:
    team = payload.get("team")
    slug = _str(_dig(team, "slug")) or _str(_dig(team, "name"))
    org = _str(_dig(payload, "organization", "login"))
    return _object("team", team, f"{org}/{slug}" if org and slug else slug)


def _target(event: str, payload: dict[str, Any]) -> dict[str, str]:
    """The object acted on: a team or an organization for their own events, else the repository."""
    if event in ("team", "membership"):
        return _team(payload) or _organization(payload)
    if event == "organization":
        return _organization(payload)
    for candidate in (_repository, _organization):
        found = candidate(payload)
        if found:
            return found
    enterprise = payload.get("enterprise")
    return _object("enterprise", enterprise, _dig(enterprise, "slug"))


# --- per-event details: attrs, and outcome or env where the payload says ---

_Detail = Callable[[dict[str, Any], Envelope, dict[str, Any]], None]


def _push(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    commits = payload.get("commits")
    attrs.update(
        ref=_str(payload.get("ref")),
        before=_str(payload.get("before")),
        after=_str(payload.get("after")),
        forced=_bool(payload.get("forced")),
        created=_bool(payload.get("created")),
        deleted=_bool(payload.get("deleted")),
        base_ref=_str(payload.get("base_ref")),
        commits=len(commits) if isinstance(commits, list) else None,
        pusher=_str(_dig(payload, "pusher", "name")),
    )


def _pull_request(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    pr = payload.get("pull_request")
    merged = _bool(_dig(pr, "merged"))
    attrs.update(
        number=_int(payload.get("number")) or _int(_dig(pr, "number")),
        state=_str(_dig(pr, "state")),
        merged=merged,
        draft=_bool(_dig(pr, "draft")),
        base_ref=_str(_dig(pr, "base", "ref")),
        head_ref=_str(_dig(pr, "head", "ref")),
        head_sha=_str(_dig(pr, "head", "sha")),
        author=_str(_dig(pr, "user", "login")),
    )
    if merged:
        attrs.update(
            merge_commit_sha=_str(_dig(pr, "merge_commit_sha")), merged_by=_str(_dig(pr, "merged_by", "login"))
        )
    if payload.get("action") == "synchronize":
        attrs.update(before=_str(payload.get("before")), after=_str(payload.get("after")))


def _review(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    state = _str(_dig(payload, "review", "state"))
    attrs.update(
        number=_int(_dig(payload, "pull_request", "number")),
        review_id=_int(_dig(payload, "review", "id")),
        review_state=state.lower() if state else None,
        approved=state.lower() == "approved" if state else None,
        commit_id=_str(_dig(payload, "review", "commit_id")),
        author=_str(_dig(payload, "pull_request", "user", "login")),
        reviewer=_str(_dig(payload, "review", "user", "login")),
    )


def _conclusion_outcome(conclusion: str | None) -> str:
    if conclusion in _SUCCESS_CONCLUSIONS:
        return "success"
    if conclusion in _FAILURE_CONCLUSIONS:
        return "failure"
    return "unknown"


def _workflow_run(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    run = payload.get("workflow_run")
    conclusion = _str(_dig(run, "conclusion"))
    envelope["outcome"] = _conclusion_outcome(conclusion)
    attrs.update(
        workflow=_str(_dig(payload, "workflow", "name")) or _str(_dig(run, "name")),
        path=_str(_dig(payload, "workflow", "path")) or _str(_dig(run, "path")),
        run_id=_int(_dig(run, "id")),
        run_number=_int(_dig(run, "run_number")),
        run_attempt=_int(_dig(run, "run_attempt")),
        status=_str(_dig(run, "status")),
        conclusion=conclusion,
        trigger=_str(_dig(run, "event")),
        head_branch=_str(_dig(run, "head_branch")),
        head_sha=_str(_dig(run, "head_sha")),
        triggering_actor=_str(_dig(run, "triggering_actor", "login")),
    )


def _workflow_job(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    job = payload.get("workflow_job")
    conclusion = _str(_dig(job, "conclusion"))
    envelope["outcome"] = _conclusion_outcome(conclusion)
    attrs.update(
        job_id=_int(_dig(job, "id")),
        job=_str(_dig(job, "name")),
        workflow=_str(_dig(job, "workflow_name")),
        run_id=_int(_dig(job, "run_id")),
        run_attempt=_int(_dig(job, "run_attempt")),
        status=_str(_dig(job, "status")),
        conclusion=conclusion,
        head_branch=_str(_dig(job, "head_branch")),
        head_sha=_str(_dig(job, "head_sha")),
        runner=_str(_dig(job, "runner_name")),
        labels=_strings(_dig(job, "labels")) or None,
    )
    environment = _label(_dig(payload, "deployment", "environment"))
    if environment:
        envelope["env"] = environment


def _deployment(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    deployment = payload.get("deployment")
    environment = _str(_dig(payload, "deployment_status", "environment")) or _str(_dig(deployment, "environment"))
    attrs.update(
        deployment_id=_int(_dig(deployment, "id")),
        environment=environment,
        ref=_str(_dig(deployment, "ref")),
        sha=_str(_dig(deployment, "sha")),
        task=_str(_dig(deployment, "task")),
        production=_bool(_dig(deployment, "production_environment")),
        creator=_str(_dig(deployment, "creator", "login")),
    )
    if environment:
        envelope["env"] = environment[:MAX_LABEL]
    status = payload.get("deployment_status")
    if isinstance(status, dict):
        state = _str(status.get("state"))
        attrs["state"] = state
        envelope["outcome"] = (
            "success" if state == "success" else "failure" if state in _FAILURE_DEPLOY_STATES else "unknown"
        )


def _member(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    changes = payload.get("changes")
    attrs.update(
        member=_str(_dig(payload, "member", "login")),
        member_id=_int(_dig(payload, "member", "id")),
        permission=_str(_dig(changes, "permission", "to")),
        old_permission=_str(_dig(changes, "old_permission", "from")) or _str(_dig(changes, "permission", "from")),
        role=_str(_dig(changes, "role_name", "to")),
        team=_str(_dig(payload, "team", "slug")),
        scope=_str(payload.get("scope")),
    )


def _organization_detail(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    membership = payload.get("membership")
    attrs.update(
        member=_str(_dig(membership, "user", "login"))
        or _str(_dig(payload, "user", "login"))
        or _str(_dig(payload, "invitation", "login")),
        role=_str(_dig(membership, "role")) or _str(_dig(payload, "invitation", "role")),
        state=_str(_dig(membership, "state")),
        old_login=_str(_dig(payload, "changes", "login", "from")),
    )


def _team_detail(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    granted = _dig(payload, "repository", "permissions")
    attrs.update(
        team=_str(_dig(payload, "team", "slug")),
        privacy=_str(_dig(payload, "team", "privacy")),
        permission=_str(_dig(payload, "team", "permission")),
        repository=_str(_dig(payload, "repository", "full_name")),
        repository_permissions=sorted(k for k, v in granted.items() if v is True)
        if isinstance(granted, dict)
        else None,
        changes=_changed(payload),
    )


def _deploy_key(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    key = payload.get("key")
    attrs.update(
        key_id=_int(_dig(key, "id")),
        title=_str(_dig(key, "title")),
        read_only=_bool(_dig(key, "read_only")),
        verified=_bool(_dig(key, "verified")),
    )


def _repository_detail(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    repo = payload.get("repository")
    attrs.update(
        visibility=_str(_dig(repo, "visibility")),
        private=_bool(_dig(repo, "private")),
        changes=_changed(payload),
        old_name=_str(_dig(payload, "changes", "repository", "name", "from")),
        old_owner=_str(_dig(payload, "changes", "owner", "from", "user", "login"))
        or _str(_dig(payload, "changes", "owner", "from", "organization", "login")),
    )


def _protection(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    rule = payload.get("rule")
    attrs.update(
        rule=_str(_dig(rule, "name")),
        rule_id=_int(_dig(rule, "id")),
        changes=_changed(payload),
        admin_enforced=_bool(_dig(rule, "admin_enforced")),
        required_approving_review_count=_int(_dig(rule, "required_approving_review_count")),
        allow_force_pushes=_str(_dig(rule, "allow_force_pushes_enforcement_level")),
        allow_deletions=_str(_dig(rule, "allow_deletions_enforcement_level")),
    )


def _ruleset(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    ruleset = payload.get("repository_ruleset")
    attrs.update(
        ruleset=_str(_dig(ruleset, "name")),
        ruleset_id=_int(_dig(ruleset, "id")),
        enforcement=_str(_dig(ruleset, "enforcement")),
        ruleset_target=_str(_dig(ruleset, "target")),
        changes=_changed(payload),
    )


def _secret_alert(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    alert = payload.get("alert")
    attrs.update(
        alert=_int(_dig(alert, "number")),
        secret_type=_str(_dig(alert, "secret_type")),
        state=_str(_dig(alert, "state")),
        resolution=_str(_dig(alert, "resolution")),
        resolved_by=_str(_dig(alert, "resolved_by", "login")),
        push_protection_bypassed=_bool(_dig(alert, "push_protection_bypassed")),
        validity=_str(_dig(alert, "validity")),
        location=_str(_dig(payload, "location", "type")),
    )


def _code_alert(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    alert = payload.get("alert")
    attrs.update(
        alert=_int(_dig(alert, "number")),
        state=_str(_dig(alert, "state")),
        rule_id=_str(_dig(alert, "rule", "id")),
        severity=_str(_dig(alert, "rule", "security_severity_level")) or _str(_dig(alert, "rule", "severity")),
        tool=_str(_dig(alert, "tool", "name")),
        ref=_str(payload.get("ref")),
        commit=_str(payload.get("commit_oid")),
        dismissed_reason=_str(_dig(alert, "dismissed_reason")),
        dismissed_by=_str(_dig(alert, "dismissed_by", "login")),
    )


def _dependency_alert(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    alert = payload.get("alert")
    attrs.update(
        alert=_int(_dig(alert, "number")) or _int(_dig(alert, "id")),
        state=_str(_dig(alert, "state")),
        severity=_str(_dig(alert, "security_advisory", "severity")) or _str(_dig(alert, "severity")),
        package=_str(_dig(alert, "dependency", "package", "name")) or _str(_dig(alert, "affected_package_name")),
        ghsa_id=_str(_dig(alert, "security_advisory", "ghsa_id")) or _str(_dig(alert, "ghsa_id")),
    )


def _ping(payload: dict[str, Any], envelope: Envelope, attrs: dict[str, Any]) -> None:
    attrs.update(
        hook_id=_int(payload.get("hook_id")),
        hook_type=_str(_dig(payload, "hook", "type")),
        events=_strings(_dig(payload, "hook", "events")),
    )


_DETAILS: dict[str, _Detail] = {
    "push": _push,
    "pull_request": _pull_request,
    "pull_request_review": _review,
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
    "deployment": _deployment,
    "deployment_status": _deployment,
    "member": _member,
    "membership": _member,
    "organization": _organization_detail,
    "team": _team_detail,
    "team_add": _team_detail,
    "deploy_key": _deploy_key,
    "repository": _repository_detail,
    "public": _repository_detail,
    "branch_protection_rule": _protection,
    "repository_ruleset": _ruleset,
    "secret_scanning_alert": _secret_alert,
    "secret_scanning_alert_location": _secret_alert,
    "code_scanning_alert": _code_alert,
    "dependabot_alert": _dependency_alert,
    "repository_vulnerability_alert": _dependency_alert,
    "ping": _ping,
}

_DELETIONS = frozenset({"deleted", "removed", "destroyed"})


def _event_time(event: str, payload: dict[str, Any]) -> str | None:
    """When the change happened, from the payload's own timestamp of it; None when it has none.

    Only timestamps that denote this change are used (a deletion keeps the receipt time:
    the deleted object's timestamps are older than the deletion).
    """
    action = payload.get("action")
    if action in _DELETIONS:
        return None
    if event == "push":
        return _time(_dig(payload, "repository", "pushed_at"))
    if event == "pull_request":
        pr = payload.get("pull_request")
        if action == "closed":
            return _first_time(_dig(pr, "merged_at"), _dig(pr, "closed_at"))
        if action == "opened":
            return _first_time(_dig(pr, "created_at"))
        return _first_time(_dig(pr, "updated_at"))
    if event == "pull_request_review":
        return _first_time(_dig(payload, "review", "submitted_at")) if action == "submitted" else None
    if event == "workflow_run":
        return _first_time(_dig(payload, "workflow_run", "updated_at"))
    if event == "workflow_job":
        job = payload.get("workflow_job")
        if action == "completed":
            return _first_time(_dig(job, "completed_at"))
        if action == "in_progress":
            return _first_time(_dig(job, "started_at"))
        return _first_time(_dig(job, "created_at"))
    if event == "deployment":
        return _first_time(_dig(payload, "deployment", "created_at"))
    if event == "deployment_status":
        return _first_time(
            _dig(payload, "deployment_status", "updated_at"), _dig(payload, "deployment_status", "created_at")
        )
    if event == "branch_protection_rule":
        rule = payload.get("rule")
        return _first_time(_dig(rule, "created_at") if action == "created" else _dig(rule, "updated_at"))
    if event == "repository_ruleset":
        ruleset = payload.get("repository_ruleset")
        return _first_time(_dig(ruleset, "created_at") if action == "created" else _dig(ruleset, "updated_at"))
    if event == "repository" and action == "created":
        return _first_time(_dig(payload, "repository", "created_at"))
    if event == "deploy_key" and action == "created":
        return _first_time(_dig(payload, "key", "created_at"))
    if event in ("secret_scanning_alert", "code_scanning_alert", "dependabot_alert"):
        alert = payload.get("alert")
        if action == "created":
            return _first_time(_dig(alert, "created_at"))
        if action in ("resolved", "fixed", "closed_by_user", "dismissed", "auto_dismissed"):
            return _first_time(
                _dig(alert, "resolved_at"),
                _dig(alert, "fixed_at"),
                _dig(alert, "dismissed_at"),
                _dig(alert, "updated_at"),
            )
        return _first_time(_dig(alert, "updated_at"))
    if event == "ping":
        return _first_time(_dig(payload, "hook", "created_at"))
    if event in KINDS:
        return None
    # Unmapped events: the object named after the event (issues -> issue) was last changed by it.
    subject = payload.get(event)
    if not isinstance(subject, dict):
        subject = payload.get(event.removesuffix("s"))
    return _first_time(_dig(subject, "updated_at"))
