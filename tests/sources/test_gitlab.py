"""GitLab adapter: tokens, Standard Webhooks signatures, webhook/system-hook/audit mapping.

Signatures are checked against the `standardwebhooks` package (the spec's reference
Python implementation) in both directions. Payloads are GitLab's documented examples
(see _gl_fixtures).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from _gl_fixtures import (
    ACCESS_TOKEN_GROUP,
    ACCESS_TOKEN_PROJECT,
    AUDIT_GIT_FETCH,
    DEPLOYMENT,
    FEATURE_FLAG,
    ISSUE,
    JOB,
    MEMBER_ADD,
    MERGE_REQUEST,
    PIPELINE,
    PUSH,
    RELEASE,
    SYSTEM_FAILED_LOGIN,
    SYSTEM_PROJECT_CREATE,
    SYSTEM_USER_ADD_TO_TEAM,
    TAG_PUSH,
    one,
    payload,
    stored,
)
from sealtrail.event import prepare
from sealtrail.sources.base import SourceAuthError, SourcePayloadError
from sealtrail.sources.gitlab import audit_to_envelopes, to_envelopes, verify_standard_webhook, verify_token

SECRET = "whsec_" + base64.b64encode(b"sealtrail-test-signing-key-32byt").decode()
NOW = 1_767_225_600  # 2026-01-01T00:00:00Z
BODY = b'{"object_kind":"push","ref":"refs/heads/main"}'


def _headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers signed by the standardwebhooks package (the independent implementation)."""
    signature = Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, UTC), body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signature}


def _own_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """A v1 signature computed straight from the Standard Webhooks spec text."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# --- tokens --------------------------------------------------------------------------


def test_token_matches() -> None:
    """X-Gitlab-Token equal to the configured secret passes."""
    verify_token("s3cret-token", "s3cret-token")


@pytest.mark.parametrize("header", [None, "", "s3cret-toke", "s3cret-token ", "S3CRET-TOKEN"])
def test_token_mismatch_is_refused(header: str | None) -> None:
    """Missing, empty or different tokens are SourceAuthError (HTTP 401)."""
    with pytest.raises(SourceAuthError):
        verify_token("s3cret-token", header)


def test_empty_configured_token_never_matches() -> None:
    """An empty configured secret must not turn into 'accept an empty header'."""
    with pytest.raises(SourceAuthError):
        verify_token("", "")


# --- Standard Webhooks ------------------------------------------------------------------


def test_signature_from_reference_implementation_verifies() -> None:
    """A request signed by the standardwebhooks package verifies."""
    verify_standard_webhook(SECRET, _headers(SECRET, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", NOW, BODY), BODY, NOW)


def test_spec_signature_verifies_with_both() -> None:
    """A signature computed from the spec verifies with ours and with the reference implementation."""
    timestamp = int(datetime.now(UTC).timestamp())  # the reference implementation checks against its clock
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(timestamp),
        "webhook-signature": _own_signature(SECRET, "msg_1", timestamp, BODY),
    }
    verify_standard_webhook(SECRET, headers, BODY, timestamp)
    assert Webhook(SECRET).verify(BODY, headers) == {"object_kind": "push", "ref": "refs/heads/main"}


def test_tampered_request_fails_with_both() -> None:
    """A body changed after signing is refused by ours and by the reference implementation."""
    timestamp = int(datetime.now(UTC).timestamp())
    headers = _headers(SECRET, "msg_1", timestamp, BODY)
    tampered = BODY.replace(b"main", b"prod")
    with pytest.raises(SourceAuthError):
        verify_standard_webhook(SECRET, headers, tampered, timestamp)
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(tampered, headers)


@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    body=st.text(max_size=300),
    flip=st.integers(min_value=0, max_value=10_000),
)
@settings(max_examples=60, deadline=None)
def test_reference_signatures_verify_and_changes_fail(key: bytes, msg_id: str, body: str, flip: int) -> None:
    """Property: for any key, id and body, reference signatures verify; any changed body byte fails."""
    secret = "whsec_" + base64.b64encode(key).decode()
    data = body.encode()
    headers = _headers(secret, msg_id, NOW, data)
    verify_standard_webhook(secret, headers, data, NOW)
    if data:
        changed = bytearray(data)
        changed[flip % len(data)] ^= 0x01
        with pytest.raises(SourceAuthError):
            verify_standard_webhook(secret, headers, bytes(changed), NOW)


def test_any_of_several_signatures_may_match() -> None:
    """webhook-signature is a space-separated list (key rotation); one valid v1 entry suffices."""
    good = _headers(SECRET, "msg_1", NOW, BODY)["webhook-signature"]
    other = _own_signature("whsec_" + base64.b64encode(b"old-key").decode(), "msg_1", NOW, BODY)
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": f"{other} v1a,AAAA {good}"}
    verify_standard_webhook(SECRET, headers, BODY, NOW)


def test_only_v1_entries_count() -> None:
    """A correct MAC labelled with another version is not accepted."""
    good = _headers(SECRET, "msg_1", NOW, BODY)["webhook-signature"]
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(NOW), "webhook-signature": "v2," + good[3:]}
    with pytest.raises(SourceAuthError):
        verify_standard_webhook(SECRET, headers, BODY, NOW)


def test_header_names_are_case_insensitive() -> None:
    """HTTP header names carry no case; a plain dict with any capitalisation works."""
    headers = {name.title(): value for name, value in _headers(SECRET, "msg_1", NOW, BODY).items()}
    verify_standard_webhook(SECRET, headers, BODY, NOW)


def test_secret_without_prefix_is_the_same_key() -> None:
    """The whsec_ prefix is optional: the key is the base64 after it."""
    verify_standard_webhook(SECRET.removeprefix("whsec_"), _headers(SECRET, "msg_1", NOW, BODY), BODY, NOW)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_timestamp_within_tolerance(offset: int) -> None:
    """A timestamp up to `tolerance` seconds either side of now is accepted."""
    verify_standard_webhook(SECRET, _headers(SECRET, "msg_1", NOW + offset, BODY), BODY, NOW)


@pytest.mark.parametrize("offset", [-301, 301, -86_400])
def test_timestamp_outside_tolerance(offset: int) -> None:
    """Old (replayed) and future timestamps are refused even with a valid signature."""
    with pytest.raises(SourceAuthError, match="webhook-timestamp"):
        verify_standard_webhook(SECRET, _headers(SECRET, "msg_1", NOW + offset, BODY), BODY, NOW)


def test_custom_tolerance() -> None:
    """The tolerance parameter is honoured."""
    headers = _headers(SECRET, "msg_1", NOW - 60, BODY)
    verify_standard_webhook(SECRET, headers, BODY, NOW, tolerance=60)
    with pytest.raises(SourceAuthError):
        verify_standard_webhook(SECRET, headers, BODY, NOW, tolerance=59)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_header(missing: str) -> None:
    """Each of the three headers is required."""
    headers = _headers(SECRET, "msg_1", NOW, BODY)
    del headers[missing]
    with pytest.raises(SourceAuthError, match="missing"):
        verify_standard_webhook(SECRET, headers, BODY, NOW)


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-id": "msg_2"},
        {"webhook-timestamp": f"{NOW}.0"},
        {"webhook-timestamp": "-1"},
        {"webhook-signature": "v1,not base64!"},
        {"webhook-signature": "garbage"},
    ],
)
def test_altered_headers_fail(change: dict[str, str]) -> None:
    """The id and timestamp are signed too; malformed values fail cleanly as SourceAuthError."""
    headers = _headers(SECRET, "msg_1", NOW, BODY) | change
    with pytest.raises(SourceAuthError):
        verify_standard_webhook(SECRET, headers, BODY, NOW)


def test_wrong_secret_fails() -> None:
    """A signature made with another key does not verify."""
    other = "whsec_" + base64.b64encode(b"another-key").decode()
    with pytest.raises(SourceAuthError):
        verify_standard_webhook(SECRET, _headers(other, "msg_1", NOW, BODY), BODY, NOW)


@pytest.mark.parametrize("secret", ["whsec_", "whsec_***", ""])
def test_malformed_secret_is_a_configuration_error(secret: str) -> None:
    """A secret that is not base64 is the operator's mistake (ValueError), not the sender's."""
    with pytest.raises(ValueError, match="secret") as info:
        verify_standard_webhook(secret, _headers(SECRET, "msg_1", NOW, BODY), BODY, NOW)
    assert not isinstance(info.value, SourceAuthError)


# --- webhooks -----------------------------------------------------------------------


def test_push_hook() -> None:
    """Push Hook → code.push by the pusher on the repository."""
    event = one(to_envelopes("Push Hook", payload(PUSH), "gitlab-main", "e3b0c442-98fc-4c14-9afb-f4c8996fb924"))
    assert event["kind"] == "code.push"
    assert event["action"] == "push"
    assert event["outcome"] == "success"
    assert event["source"] == {
        "type": "gitlab",
        "id": "gitlab-main",
        "delivery": "e3b0c442-98fc-4c14-9afb-f4c8996fb924",
    }
    assert event["actor"] == {"id": "4", "name": "jsmith", "type": "user"}
    assert event["target"] == {"type": "repository", "id": "15", "name": "mike/diaspora"}
    assert event["attrs"]["ref"] == "refs/heads/master"
    assert event["attrs"]["after"] == "da1560886d4f094c3e6c9ef40349f7d38b5d27d7"
    assert event["attrs"]["total_commits_count"] == 4
    assert event["attrs"]["project"] == "mike/diaspora"
    assert "created" not in event["attrs"] and "deleted" not in event["attrs"]
    assert event["raw"] == PUSH


def test_push_deleting_a_branch() -> None:
    """An all-zero `after` is a branch deletion, flagged in attrs."""
    body = payload(PUSH) | {"after": "0" * 40, "checkout_sha": None, "commits": [], "total_commits_count": 0}
    event = one(to_envelopes("Push Hook", body, "gl", None))
    assert event["attrs"]["deleted"] is True
    assert "checkout_sha" not in event["attrs"]


def test_tag_push_hook() -> None:
    """Tag Push Hook → code.push with action tag_push; a zero `before` is a new tag."""
    event = one(to_envelopes("Tag Push Hook", payload(TAG_PUSH), "gl", None))
    assert (event["kind"], event["action"]) == ("code.push", "tag_push")
    assert event["attrs"]["ref"] == "refs/tags/v1.0.0"
    assert event["attrs"]["created"] is True
    assert event["actor"] == {"id": "1", "name": "John Smith", "type": "user"}


def test_merge_request_hook() -> None:
    """Merge Request Hook → code.review, action merge_request.<action>, target project!iid."""
    event = one(to_envelopes("Merge Request Hook", payload(MERGE_REQUEST), "gl", "d1"))
    assert (event["kind"], event["action"]) == ("code.review", "merge_request.open")
    assert event["actor"] == {"id": "1", "name": "root", "type": "user"}
    assert event["target"] == {"type": "merge_request", "id": "99", "name": "gitlabhq/gitlab-test!1"}
    assert event["time"] == "2013-12-03T17:23:34.000000Z"
    assert event["attrs"]["source_branch"] == "ms-viewport"
    assert event["attrs"]["target_branch"] == "master"


@pytest.mark.parametrize("verb", ["merge", "close", "approved", "unapproved", "reopen"])
def test_merge_request_actions(verb: str) -> None:
    """Every object_attributes.action is kept as GitLab's own verb."""
    body = payload(MERGE_REQUEST)
    body["object_attributes"]["action"] = verb
    assert one(to_envelopes("Merge Request Hook", body, "gl", None))["action"] == f"merge_request.{verb}"


def test_pipeline_hook() -> None:
    """Pipeline Hook → ci.run; GitLab's '... UTC' timestamps become RFC 3339."""
    event = one(to_envelopes("Pipeline Hook", payload(PIPELINE), "gl", None))
    assert (event["kind"], event["action"], event["outcome"]) == ("ci.run", "pipeline.success", "success")
    assert event["time"] == "2016-08-12T15:26:29.000000Z"
    assert event["target"] == {"type": "pipeline", "id": "31", "name": "gitlab-org/gitlab-test#3"}
    assert event["actor"]["name"] == "root"
    assert event["attrs"]["ref"] == "master"
    assert event["attrs"]["pipeline_source"] == "merge_request_event"
    assert event["attrs"]["duration"] == 63


@pytest.mark.parametrize(
    ("status", "outcome"),
    [("failed", "failure"), ("canceled", "failure"), ("running", "unknown"), ("pending", "unknown")],
)
def test_pipeline_outcome(status: str, outcome: str) -> None:
    """Finished pipelines have an outcome; running ones are unknown."""
    body = payload(PIPELINE)
    body["object_attributes"]["status"] = status
    body["object_attributes"]["finished_at"] = None
    event = one(to_envelopes("Pipeline Hook", body, "gl", None))
    assert (event["action"], event["outcome"]) == (f"pipeline.{status}", outcome)
    assert event["time"] == "2016-08-12T15:23:28.000000Z"  # created_at when not finished


def test_job_hook() -> None:
    """Job Hook → ci.job on the job; the actor has no username, so its display name."""
    event = one(to_envelopes("Job Hook", payload(JOB), "gl", None))
    assert (event["kind"], event["action"], event["outcome"]) == ("ci.job", "job.created", "unknown")
    assert event["target"] == {"type": "job", "id": "1977", "name": "test"}
    assert event["actor"] == {"id": "3", "name": "User", "type": "user"}
    assert event["time"] == "2021-02-23T02:41:37.000000Z"
    assert event["attrs"]["stage"] == "test"
    assert event["attrs"]["pipeline_id"] == 2366
    assert event["attrs"]["project"] == "gitlab-org/gitlab-test"
    assert "failure_reason" not in event["attrs"]  # only meaningful once failed
    assert "env" not in event


def test_failed_job_with_environment() -> None:
    """A failed deploy job: outcome failure, the failure reason, env from the job's environment."""
    body = payload(JOB) | {
        "build_status": "failed",
        "build_finished_at": "2021-02-23 02:45:00 UTC",
        "environment": {"name": "production", "action": "start", "deployment_tier": "production"},
    }
    event = one(to_envelopes("Job Hook", body, "gl", None))
    assert (event["action"], event["outcome"]) == ("job.failed", "failure")
    assert event["attrs"]["failure_reason"] == "script_failure"
    assert event["env"] == "production"
    assert event["time"] == "2021-02-23T02:45:00.000000Z"


def test_deployment_hook() -> None:
    """Deployment Hook → deploy to the environment; env is the environment name; offset time → UTC."""
    event = one(to_envelopes("Deployment Hook", payload(DEPLOYMENT), "gl", None))
    assert (event["kind"], event["action"], event["outcome"]) == ("deploy", "deployment.success", "success")
    assert event["env"] == "staging"
    assert event["target"] == {"type": "environment", "name": "staging"}
    assert event["time"] == "2021-04-28T19:50:00.000000Z"
    assert event["actor"] == {"id": "1", "name": "root", "type": "user"}
    assert event["attrs"]["deployment_id"] == 15
    assert event["attrs"]["short_sha"] == "279484c0"


def test_member_hook() -> None:
    """Member Hook → access.change; the member is the target (GitLab does not say who acted)."""
    event = one(to_envelopes("Member Hook", payload(MEMBER_ADD), "gl", None))
    assert (event["kind"], event["action"]) == ("access.change", "user_add_to_group")
    assert event["target"] == {"type": "user", "id": "64", "name": "test_user"}
    assert "actor" not in event
    assert event["attrs"]["group"] == "webhook-test"
    assert event["attrs"]["access_level"] == "Guest"
    assert event["time"] == "2020-12-11T04:57:22.000000Z"


def test_release_hook() -> None:
    """Release Hook → code.release, action release.<action>, target the tag."""
    event = one(to_envelopes("Release Hook", payload(RELEASE), "gl", None))
    assert (event["kind"], event["action"]) == ("code.release", "release.create")
    assert event["target"] == {"type": "release", "id": "1", "name": "v1.1"}
    assert event["time"] == "2020-11-02T12:55:12.000000Z"
    assert event["attrs"]["sha"] == "ee0a3fb31ac16e11b9dbb596ad16d4af654d08f8"


@pytest.mark.parametrize(("example", "scope"), [(ACCESS_TOKEN_PROJECT, "project"), (ACCESS_TOKEN_GROUP, "group")])
def test_resource_access_token_hook(example: dict[str, Any], scope: str) -> None:
    """Resource Access Token Hook → access.expiring on the token, for a project or a group."""
    event = one(to_envelopes("Resource Access Token Hook", payload(example), "gl", None))
    assert (event["kind"], event["action"]) == ("access.expiring", "expiring_access_token")
    assert event["target"] == {"type": "access_token", "id": "25", "name": "acd"}
    assert event["attrs"]["expires_at"] == "2024-01-26"
    assert event["attrs"][scope] == {"project": "flightjs/Flight", "group": "twitter"}[scope]


def test_feature_flag_hook_is_a_config_change() -> None:
    """Feature Flag Hook → config.change (turning a flag on or off changes production behaviour)."""
    event = one(to_envelopes("Feature Flag Hook", payload(FEATURE_FLAG), "gl", None))
    assert (event["kind"], event["action"]) == ("config.change", "feature_flag.on")
    assert event["target"] == {"type": "feature_flag", "id": "6", "name": "test-feature-flag"}


def test_unknown_hook_is_kept_as_other() -> None:
    """A hook without a mapping is not dropped: gitlab.other, its own name and action, raw kept."""
    event = one(to_envelopes("Issue Hook", payload(ISSUE), "gl", "d9"))
    assert (event["kind"], event["action"]) == ("gitlab.other", "issue.open")
    assert event["actor"]["name"] == "root"
    assert event["target"]["name"] == "gitlabhq/gitlab-test"
    assert event["attrs"]["hook"] == "Issue Hook"
    assert event["raw"] == ISSUE


@pytest.mark.parametrize("header", ["Brand New Hook", "", "   "])
def test_hook_never_seen_with_empty_payload(header: str) -> None:
    """Even an empty payload under an unknown or blank header yields a valid envelope."""
    event = one(to_envelopes(header, {}, "gl", None))
    assert event["kind"] == "gitlab.other"
    assert event["action"] == ("brand_new" if header.strip() else "unknown")


def test_header_matching_ignores_case() -> None:
    """X-Gitlab-Event values are matched without regard to case or padding."""
    assert one(to_envelopes(" push hook ", payload(PUSH), "gl", None))["kind"] == "code.push"


def test_system_hook_failed_login() -> None:
    """System Hook user_failed_login → auth.failure by that user."""
    event = one(to_envelopes("System Hook", payload(SYSTEM_FAILED_LOGIN), "gl", None))
    assert (event["kind"], event["outcome"]) == ("auth.failure", "failure")
    assert event["actor"] == {"id": "26", "name": "user4", "type": "user"}
    assert event["attrs"]["state"] == "blocked"


def test_system_hook_membership_and_projects() -> None:
    """System hooks for team membership → access.change; for projects → config.change."""
    member = one(to_envelopes("System Hook", payload(SYSTEM_USER_ADD_TO_TEAM), "gl", None))
    assert (member["kind"], member["action"]) == ("access.change", "user_add_to_team")
    assert member["target"] == {"type": "user", "id": "41", "name": "johnsmith"}
    assert member["attrs"]["project"] == "jsmith/storecloud"
    assert member["attrs"]["access_level"] == "Maintainer"
    project = one(to_envelopes("System Hook", payload(SYSTEM_PROJECT_CREATE), "gl", None))
    assert (project["kind"], project["action"]) == ("config.change", "project_create")
    assert project["target"] == {"type": "project", "id": "74", "name": "jsmith/storecloud"}


def test_system_hook_push_and_unknown() -> None:
    """A push through system hooks maps like the Push Hook; unknown system events are gitlab.other."""
    assert one(to_envelopes("System Hook", payload(PUSH), "gl", None))["kind"] == "code.push"
    other = one(to_envelopes("System Hook", {"event_name": "group_rename_something"}, "gl", None))
    assert (other["kind"], other["action"]) == ("gitlab.other", "group_rename_something")


def test_redelivery_dedups() -> None:
    """The same delivery id gives the same event id; another delivery id does not (DESIGN.md §4 dedup)."""
    first = prepare(to_envelopes("Push Hook", payload(PUSH), "gl", "uuid-1")[0])
    again = prepare(to_envelopes("Push Hook", payload(PUSH), "gl", "uuid-1")[0])
    other = prepare(to_envelopes("Push Hook", payload(PUSH), "gl", "uuid-2")[0])
    assert first.id == again.id != other.id


@pytest.mark.parametrize("body", [[], "push", None, 3])
def test_non_object_payload(body: Any) -> None:
    """A payload that is not a JSON object is SourcePayloadError (HTTP 400)."""
    with pytest.raises(SourcePayloadError):
        to_envelopes("Push Hook", body, "gl", None)


def test_unreadable_fields_degrade_not_fail() -> None:
    """Wrong-typed fields are left out rather than failing the event (never drop an event)."""
    body = payload(PIPELINE)
    body["object_attributes"]["finished_at"] = "yesterday"
    body["object_attributes"]["created_at"] = 12
    body["user"] = "root"
    body["project"] = None
    event = one(to_envelopes("Pipeline Hook", body, "gl", None))
    assert event["time"] == "2026-01-02T03:04:05.000000Z"  # received
    assert "actor" not in event
    assert event["target"] == {"type": "pipeline", "id": "31"}


def test_every_documented_example_prepares() -> None:
    """All fixtures, under their headers, produce envelopes that sealtrail.event.prepare accepts."""
    examples = [
        ("Push Hook", PUSH),
        ("Tag Push Hook", TAG_PUSH),
        ("Merge Request Hook", MERGE_REQUEST),
        ("Pipeline Hook", PIPELINE),
        ("Job Hook", JOB),
        ("Deployment Hook", DEPLOYMENT),
        ("Member Hook", MEMBER_ADD),
        ("Release Hook", RELEASE),
        ("Resource Access Token Hook", ACCESS_TOKEN_PROJECT),
        ("Feature Flag Hook", FEATURE_FLAG),
        ("Issue Hook", ISSUE),
    ]
    events = stored([env for header, body in examples for env in to_envelopes(header, payload(body), "gl", None)])
    assert [event["kind"] for event in events] == [
        "code.push",
        "code.push",
        "code.review",
        "ci.run",
        "ci.job",
        "deploy",
        "access.change",
        "code.release",
        "access.expiring",
        "config.change",
        "gitlab.other",
    ]


# --- audit event streaming -----------------------------------------------------------


def test_audit_git_fetch() -> None:
    """The documented git-over-SSH fetch by a deploy key → code.read; id is the delivery."""
    event = one(audit_to_envelopes(payload(AUDIT_GIT_FETCH), "gitlab-audit"))
    assert (event["kind"], event["action"], event["outcome"]) == ("code.read", "repository_git_operation", "success")
    assert event["source"] == {"type": "gitlab", "id": "gitlab-audit", "delivery": "1"}
    assert event["actor"] == {"id": "-3", "name": "deploy-key-name", "type": "DeployKey", "ip": "127.0.0.1"}
    assert event["target"] == {"type": "Project", "id": "29", "name": "example-project"}
    assert event["time"] == "2022-07-26T05:43:53.662000Z"
    assert event["attrs"]["entity_path"] == "example-group/example-project"
    assert event["attrs"]["custom_message"] == {"protocol": "ssh", "action": "git-upload-pack"}


def test_audit_git_push() -> None:
    """git-receive-pack is a push."""
    body = payload(AUDIT_GIT_FETCH)
    body["details"]["custom_message"]["action"] = "git-receive-pack"
    assert one(audit_to_envelopes(body, "ga"))["kind"] == "code.push"


@pytest.mark.parametrize(
    ("event_type", "kind", "outcome"),
    [
        ("login_failed_with_standard_authentication", "auth.failure", "failure"),
        ("login_failed_with_otp_authentication", "auth.failure", "failure"),
        ("authenticated_with_group_saml", "auth.success", "success"),
        ("member_created", "access.change", "success"),
        ("personal_access_token_created", "access.change", "success"),
        ("user_blocked", "access.change", "success"),
        ("protected_branch_created", "config.change", "success"),
        ("merge_request_approval_operation", "gitlab.audit", "success"),
        ("project_visibility_level_updated", "config.change", "success"),
        ("", "gitlab.audit", "success"),
    ],
)
def test_audit_kinds(event_type: str, kind: str, outcome: str) -> None:
    """event_type picks the kind; failed logins are failures; unknown types are gitlab.audit."""
    body = {
        "id": "42",
        "author_id": 7,
        "author_name": "Jane Admin",
        "entity_id": 3,
        "entity_type": "Group",
        "details": {"custom_message": "Changed something"},
        "ip_address": "2001:db8::5",
        "created_at": "2024-05-01T10:00:00.000Z",
        "event_type": event_type,
    }
    event = one(audit_to_envelopes(body, "ga"))
    assert (event["kind"], event["outcome"]) == (kind, outcome)
    assert event["action"] == (event_type or "Changed something")
    assert event["actor"] == {"id": "7", "name": "Jane Admin", "type": "user", "ip": "2001:db8::5"}


def test_audit_id_number_and_string_dedup_alike() -> None:
    """GitLab has sent the id as a number and as a string; both are the same delivery."""
    as_string = prepare(audit_to_envelopes(payload(AUDIT_GIT_FETCH), "ga")[0])
    as_number = prepare(audit_to_envelopes(payload(AUDIT_GIT_FETCH) | {"id": 1}, "ga")[0])
    assert as_string.id == as_number.id


def test_audit_bad_ip_is_left_out() -> None:
    """actor.ip must be an IP address; anything else stays only in raw."""
    body = payload(AUDIT_GIT_FETCH) | {"ip_address": "unknown"}
    body["details"]["ip_address"] = "10.0.0.1, 10.0.0.2"
    event = one(audit_to_envelopes(body, "ga"))
    assert "ip" not in event["actor"]
    assert event["raw"]["ip_address"] == "unknown"


def test_audit_not_an_object() -> None:
    """A streamed audit event must be a JSON object."""
    with pytest.raises(SourcePayloadError):
        audit_to_envelopes([AUDIT_GIT_FETCH], "ga")  # type: ignore[arg-type]


def test_audit_large_custom_message_stays_in_raw() -> None:
    """A custom_message too large for attrs is left out of attrs; raw keeps it."""
    body = payload(AUDIT_GIT_FETCH)
    body["details"]["custom_message"] = "z" * 5000
    event = one(audit_to_envelopes(body, "ga"))
    assert "custom_message" not in event["attrs"]
    assert event["raw"]["details"]["custom_message"] == "z" * 5000
