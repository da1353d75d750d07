"""Splunk HEC compatibility: tokens, body splitting, and GitHub audit-log events.

The GitHub audit-log events are the `audit-log` examples of GitHub's own OpenAPI descriptions
(npm @octokit/openapi 23.0.2, GHEC and GHES: the objects the audit-log API returns and streaming
sends), downloaded once and cached by _github_fixtures. No public package holds a captured HEC
request from GitHub's streamer, so the HEC wrapper ({"event": ..., "time": ..., "sourcetype": ...})
is built here as Splunk's HEC format defines it. The git.push and workflows events below are made
from the fields GitHub documents for those audit events (no package ships examples of them).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest

from _github_fixtures import audit_log_examples
from sealtrail.event import prepare
from sealtrail.sources.base import SourceAuthError, SourcePayloadError
from sealtrail.sources.hec import audit_kind, is_github_audit_event, parse_token, split_events, to_envelopes

SOURCE_ID = "ghe-stream"
RECEIVED = "2026-01-02T03:04:05.000000Z"

GIT_PUSH = {
    "@timestamp": 1700000000123,
    "_document_id": "m2Qs9YBT0cRk2GyX2yCbsw",
    "action": "git.push",
    "actor": "octocat",
    "actor_id": 583231,
    "actor_ip": "2001:db8::1",
    "actor_location": {"country_code": "US"},
    "business": "octo-enterprise",
    "org": "octo-org",
    "org_id": 8,
    "repo": "octo-org/octo-repo",
    "repo_id": 17,
    "repository": "octo-org/octo-repo",
    "repository_public": False,
    "transport_protocol": 1,
    "transport_protocol_name": "http",
    "user": "octocat",
    "user_id": 583231,
}

WORKFLOW_RUN = {
    "@timestamp": 1700000100000,
    "_document_id": "Zc1w3bXxQ0aT9c2d5e7f9g",
    "action": "workflows.completed_workflow_run",
    "actor": "octocat",
    "actor_id": 583231,
    "business": "octo-enterprise",
    "conclusion": "failure",
    "created_at": 1700000100000,
    "event": "push",
    "head_branch": "main",
    "head_sha": "3484a3fb816e0859fd6e1cea078d76385ff50625",
    "name": "CI",
    "org": "octo-org",
    "repo": "octo-org/octo-repo",
    "run_attempt": 1,
    "workflow_id": 2823525,
    "workflow_run_id": 289782451,
}


@pytest.fixture(scope="session")
def audit_events() -> list[dict[str, Any]]:
    events = audit_log_examples()
    assert len(events) >= 6
    return events


def hec_body(events: list[Any], separators: list[str] | None = None, **wrapper: Any) -> bytes:
    """An HEC body: each event wrapped as {"event": ...}, joined by the separators (cycled)."""
    seps = separators or [""]
    parts: list[str] = []
    for number, event in enumerate(events):
        if number:
            parts.append(seps[number % len(seps)])
        parts.append(json.dumps({"event": event, **wrapper}))
    return "".join(parts).encode()


def stored(envelope: dict[str, Any]) -> dict[str, Any]:
    """prepare must accept the envelope; its entry bytes, decoded."""
    decoded: dict[str, Any] = msgspec.json.decode(prepare(envelope, received=RECEIVED).entry)
    return decoded


def utc_ms(ms: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --- GitHub audit-log events ----------------------------------------------------------


def test_every_audit_example_maps_and_is_accepted(audit_events: list[dict[str, Any]]) -> None:
    """Each real audit event, streamed through HEC, keeps its action, time and dedup key and passes prepare."""
    events = [*audit_events, GIT_PUSH, WORKFLOW_RUN]
    items = split_events(hec_body(events, ["\n", "", " \r\n\t "], sourcetype="github_audit", host="github.com"))
    envelopes = to_envelopes(items, SOURCE_ID)
    assert len(envelopes) == len(events)
    for event, envelope in zip(events, envelopes, strict=True):
        assert is_github_audit_event(event)
        assert envelope["kind"] == audit_kind(event["action"])
        assert envelope["kind"] != "hec.event"
        assert envelope["action"] == event["action"]
        assert envelope["time"] == utc_ms(event["@timestamp"])
        assert envelope["actor"]["name"] == event["actor"]
        assert envelope["raw"] == event
        assert envelope["attrs"]["sourcetype"] == "github_audit"
        assert envelope["attrs"]["host"] == "github.com"
        expected_source = {"type": "hec", "id": SOURCE_ID}
        if "_document_id" in event:
            expected_source["delivery"] = event["_document_id"]
        assert envelope["source"] == expected_source
        entry = stored(envelope)
        assert (entry["kind"], entry["action"], entry["time"]) == (envelope["kind"], event["action"], envelope["time"])


def _by_action(events: list[dict[str, Any]], action: str) -> dict[str, Any]:
    return copy.deepcopy(next(e for e in events if e["action"] == action))


def test_team_add_member(audit_events: list[dict[str, Any]]) -> None:
    """team.add_member → access.change on the team; the added user and org in attrs; _document_id dedups."""
    event = _by_action(audit_events, "team.add_member")
    [envelope] = to_envelopes([{"event": event}], SOURCE_ID)
    assert envelope["kind"] == "access.change"
    assert envelope["actor"] == {"name": "octocat"}
    assert envelope["target"] == {"type": "team", "name": "octo-corp/example-team"}
    assert (envelope["attrs"]["user"], envelope["attrs"]["org"]) == ("monalisa", "octo-corp")
    assert envelope["source"]["delivery"] == "xJJFlFOhQ6b-5vaAFy9Rjw"
    assert envelope["time"] == "2020-12-02T17:24:34.512000Z"


def test_repo_destroy_and_org_create(audit_events: list[dict[str, Any]]) -> None:
    """repo.destroy targets the repository, org.create the organization; both are config.change."""
    [destroy] = to_envelopes([{"event": _by_action(audit_events, "repo.destroy")}], SOURCE_ID)
    assert destroy["kind"] == "config.change"
    assert destroy["target"] == {"type": "repository", "name": "mona-org/mona-test-repo"}
    assert destroy["attrs"]["visibility"] == "private"
    [create] = to_envelopes([{"event": _by_action(audit_events, "org.create")}], SOURCE_ID)
    assert create["kind"] == "config.change"
    assert create["target"] == {"type": "organization", "name": "octocat-test-org"}


def test_pull_request_merge_has_actor_ip_and_ids(audit_events: list[dict[str, Any]]) -> None:
    """pull_request.merge → code.merge; actor {name, id, ip}; target repository with its id."""
    event = _by_action(audit_events, "pull_request.merge")
    [envelope] = to_envelopes([{"event": event}], SOURCE_ID)
    assert envelope["kind"] == "code.merge"
    assert envelope["actor"] == {"name": "mona-admin", "id": "7", "ip": "88.123.45.123"}
    assert envelope["target"] == {"type": "repository", "name": "octo-org/octo-repo", "id": "17"}
    assert envelope["attrs"]["country_code"] == "GB"
    assert envelope["time"] == "2021-11-03T11:56:39.755000Z"
    assert "source" in stored(envelope)


def test_git_push_and_workflow_run() -> None:
    """git.push → code.push (IPv6 actor ip kept); a failed workflow run → ci.run with outcome failure."""
    push, run = to_envelopes([{"event": GIT_PUSH}, {"event": WORKFLOW_RUN}], SOURCE_ID)
    assert push["kind"] == "code.push"
    assert push["actor"] == {"name": "octocat", "id": "583231", "ip": "2001:db8::1"}
    assert push["attrs"]["transport_protocol_name"] == "http"
    assert push["outcome"] == "success"
    assert (run["kind"], run["outcome"], run["attrs"]["conclusion"]) == ("ci.run", "failure", "failure")
    assert run["attrs"]["workflow_run_id"] == 289782451
    stored(push)
    stored(run)


def test_a_repeated_audit_event_dedups(audit_events: list[dict[str, Any]]) -> None:
    """GitHub streams at least once: the same _document_id gives the same event id; another id, another event."""
    event = _by_action(audit_events, "team.add_member")
    first, again = to_envelopes([{"event": event, "time": 1}, {"event": copy.deepcopy(event), "time": 2}], SOURCE_ID)
    assert prepare(first, received=RECEIVED).id == prepare(again, received=RECEIVED).id
    other = copy.deepcopy(event)
    other["_document_id"] = "another-document-id"
    [third] = to_envelopes([{"event": other}], SOURCE_ID)
    assert prepare(third, received=RECEIVED).id != prepare(first, received=RECEIVED).id


def test_audit_event_sent_as_a_json_string_is_mapped() -> None:
    """An event field holding the audit event as JSON text is mapped too; raw keeps the text as sent."""
    text = json.dumps(GIT_PUSH)
    [envelope] = to_envelopes(split_events(hec_body([text])), SOURCE_ID)
    assert envelope["kind"] == "code.push"
    assert envelope["source"]["delivery"] == GIT_PUSH["_document_id"]
    assert envelope["raw"] == text
    stored(envelope)


def test_audit_times_fall_back_to_created_at_then_hec_time() -> None:
    """Without @timestamp: created_at (ms or RFC 3339), then the HEC time."""
    base = {"action": "repo.create", "_document_id": "d1", "actor": "mona"}
    cases = [
        ({**base, "created_at": 1606929874512}, None, "2020-12-02T17:24:34.512000Z"),
        ({**base, "created_at": "2020-12-02T17:24:34.5+01:00"}, None, "2020-12-02T16:24:34.500000Z"),
        (base, "1606929874.25", "2020-12-02T17:24:34.250000Z"),
    ]
    for event, hec_time, expected in cases:
        item: dict[str, Any] = {"event": event}
        if hec_time is not None:
            item["time"] = hec_time
        [envelope] = to_envelopes([item], SOURCE_ID)
        assert envelope["time"] == expected
    [untimed] = to_envelopes([{"event": base}], SOURCE_ID)
    assert "time" not in untimed


def test_an_invalid_actor_ip_is_left_out_not_fatal() -> None:
    """prepare rejects a bad actor.ip, so the adapter leaves an unparseable one out (raw still has it)."""
    event = {**GIT_PUSH, "actor_ip": "not-an-ip"}
    [envelope] = to_envelopes([{"event": event}], SOURCE_ID)
    assert "ip" not in envelope["actor"]
    assert stored(envelope)["raw"]["actor_ip"] == "not-an-ip"


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("git.push", "code.push"),
        ("git.clone", "code.clone"),
        ("git.fetch", "code.fetch"),
        ("pull_request.merge", "code.merge"),
        ("pull_request.create", "code.review"),
        ("pull_request_review.submit", "code.review"),
        ("protected_branch.update", "config.change"),
        ("protected_branch.policy_override", "config.change"),
        ("repository_ruleset.update", "config.change"),
        ("repo.create", "config.change"),
        ("repo.access", "config.change"),
        ("repo.add_member", "access.change"),
        ("repo.update_member", "access.change"),
        ("org.add_member", "access.change"),
        ("org.update_member", "access.change"),
        ("org.invite_member", "access.change"),
        ("org.create", "config.change"),
        ("business.add_admin", "access.change"),
        ("team.add_member", "access.change"),
        ("team.add_repository", "access.change"),
        ("oauth_access.create", "access.change"),
        ("oauth_application.destroy", "access.change"),
        ("personal_access_token.request_created", "access.change"),
        ("public_key.create", "access.change"),
        ("workflows.completed_workflow_run", "ci.run"),
        ("workflows.prepared_workflow_job", "ci.job"),
        ("workflows.approve_workflow_job", "ci.job"),
        ("workflows.disable_workflow", "ci.disable_workflow"),
        ("secret_scanning.enable", "config.change"),
        ("secret_scanning_push_protection.disable", "config.change"),
        ("secret_scanning_alert.create", "secret.alert"),
        ("secret_scanning_push_protection.bypass", "secret.alert"),
        ("hook.create", "config.change"),
        ("user.login", "auth.success"),
        ("user.failed_login", "auth.failure"),
        ("issue.destroy", "github.audit"),
        ("codespaces.create", "github.audit"),
    ],
)
def test_audit_kinds(action: str, kind: str) -> None:
    """Kinds by action prefix, as the issue lists them; every kind is valid for prepare."""
    assert audit_kind(action) == kind
    [envelope] = to_envelopes([{"event": {"action": action, "@timestamp": 1}}], SOURCE_ID)
    assert stored(envelope)["kind"] == kind


def test_failures_are_failures() -> None:
    """A failed login is outcome failure; a completed change is success."""
    failed, done = to_envelopes(
        [
            {"event": {"action": "user.failed_login", "@timestamp": 1}},
            {"event": {"action": "repo.create", "@timestamp": 1}},
        ],
        SOURCE_ID,
    )
    assert (failed["outcome"], done["outcome"]) == ("failure", "success")


# --- other HEC events -----------------------------------------------------------------


def test_plain_hec_events() -> None:
    """Not an audit event → hec.event: time from `time`, attrs from host/source/sourcetype/index/fields."""
    body = (
        b'{"time": 1426279439.5, "host": "web-1", "source": "nginx", "sourcetype": "access_combined",'
        b' "index": "main", "fields": {"region": "eu", "tags": ["a", "b"]}, "event": "GET / 200"}'
        b'{"event": {"message": "hi", "action": "not-an-audit-action"}}'
    )
    first, second = to_envelopes(split_events(body), SOURCE_ID)
    assert first["kind"] == "hec.event"
    assert first["time"] == "2015-03-13T20:43:59.500000Z"
    assert first["attrs"] == {
        "host": "web-1",
        "source": "nginx",
        "sourcetype": "access_combined",
        "index": "main",
        "fields": {"region": "eu", "tags": ["a", "b"]},
    }
    assert first["raw"] == "GET / 200"
    assert first["source"] == {"type": "hec", "id": SOURCE_ID}
    assert (second["kind"], second["raw"]) == ("hec.event", {"message": "hi", "action": "not-an-audit-action"})
    assert "time" not in second
    assert "attrs" not in second
    assert stored(first)["raw"] == "GET / 200"
    assert stored(second)["outcome"] == "unknown"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1426279439, "2015-03-13T20:43:59.000000Z"),
        (1426279439.123, "2015-03-13T20:43:59.123000Z"),
        ("1426279439", "2015-03-13T20:43:59.000000Z"),
        ("1426279439.123456", "2015-03-13T20:43:59.123456Z"),
        (" 1426279439.1 ", "2015-03-13T20:43:59.100000Z"),
        ("1426279439.9999999", "2015-03-13T20:44:00.000000Z"),
        (0, "1970-01-01T00:00:00.000000Z"),
    ],
)
def test_hec_times_are_epoch_seconds(value: Any, expected: str) -> None:
    """time is epoch seconds, integer or fractional, number or string; microseconds kept exactly."""
    [item] = split_events(json.dumps({"event": "x", "time": value}).encode())
    [envelope] = to_envelopes([item], SOURCE_ID)
    assert envelope["time"] == expected


# --- splitting bodies -----------------------------------------------------------------


@pytest.mark.parametrize("separators", [[""], ["\n"], ["\r\n"], [" \t\n "], ["", "\n\n", "  "]])
def test_concatenated_objects_split_in_order(separators: list[str]) -> None:
    """One object after another, with or without whitespace between: each comes back as sent."""
    events: list[Any] = ["plain text", {"a": 1}, "é ünïcode ☃", {"nested": {"b": [1, 2.5]}}, "{not json"]
    body = hec_body(events, separators, time="1426279439.25")
    items = split_events(b"\n " + body + b" \n")
    assert [item["event"] for item in items] == events
    assert all(item["time"] == "1426279439.25" for item in items)


def test_a_single_object_and_a_byte_order_mark() -> None:
    """One object is a body too; a leading UTF-8 byte order mark is ignored."""
    assert split_events(b'{"event": "x"}') == [{"event": "x"}]
    assert split_events('\ufeff{"event": "x"}'.encode()) == [{"event": "x"}]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "no data"),
        (b" \n\t ", "no data"),
        (b'{"event": "a"}{"event": ', r"event 1 at byte 14: malformed JSON"),
        (b'{"event": "a"} [1, 2]', r"event 1 at byte 15: expected a JSON object"),
        (b'{"event": "a"}\n42', r"event 1 at byte 15: expected a JSON object"),
        (b'{"time": 1}', r"event 0 at byte 0: the event field is required"),
        (b'{"event": null}', r"event 0 at byte 0: the event field is required"),
        (b'{"event": ""}', r"event 0 at byte 0: the event field is blank"),
        (b'{"event": "a", "time": "noon"}', r"event 0 at byte 0: time"),
        (b'{"event": "a", "time": true}', r"event 0 at byte 0: time"),
        (b'{"event": "a", "time": -5}', r"event 0 at byte 0: time"),
        (b'{"event": "a", "time": 1e300}', r"event 0 at byte 0: time"),
        (b'{"event": "a", "fields": [1]}', r"fields must be a JSON object"),
        (b'{"event": "a", "host": 7}', r"host must be a string"),
        (b'{"event": NaN}', r"malformed JSON"),
        (b'{"event": 1e999}', r"malformed JSON"),
        (b'{"event": "a"} garbage', r"event 1 at byte 15: malformed JSON"),
        ('{"event": "é"}\n{"event": x}'.encode(), r"event 1 at byte 16: malformed JSON: Expecting value \(byte 26\)"),
        (b'{"event": "\xff"}', r"not UTF-8 \(byte 11\)"),
    ],
)
def test_malformed_bodies_name_the_event_and_byte(body: bytes, message: str) -> None:
    """Anything but well-formed HEC events raises SourcePayloadError saying which event, at which byte."""
    with pytest.raises(SourcePayloadError, match=message):
        split_events(body)


# --- tokens ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Splunk 12345678-1234-1234-1234-1234567890AB", "12345678-1234-1234-1234-1234567890AB"),
        ("splunk abc", "abc"),
        ("  Splunk   abc  ", "abc"),
    ],
)
def test_splunk_tokens(header: str, token: str) -> None:
    """`Authorization: Splunk <token>` gives the token (the scheme is case-insensitive, as in HTTP)."""
    assert parse_token(header) == token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "  ",
        "Splunk",
        "Splunk   ",
        "Bearer s3cr3t-T0KEN",
        "Basic s3cr3t-T0KEN",
        "s3cr3t-T0KEN",
        "Splunk s3cr3t-T0KEN extra",
        "Splunks3cr3t-T0KEN",
    ],
)
def test_missing_or_malformed_tokens_are_refused(header: str | None) -> None:
    """No header, another scheme, no token or a token with spaces: SourceAuthError, never echoing the token."""
    with pytest.raises(SourceAuthError, match="Authorization") as caught:
        parse_token(header)
    assert "s3cr3t" not in str(caught.value)
