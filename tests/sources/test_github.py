"""GitHub webhooks: signatures and mapping, checked on every real example payload.

The payloads are those of the npm package @octokit/webhooks-examples 7.6.1 (downloaded once,
integrity-checked and cached by _github_fixtures), for api.github.com and each GHES version.
Where a case the package lacks is needed (a merged pull request, a forced push, an approving
review), it is made from a real example by changing only the fields that case changes.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from typing import Any

import msgspec
import pytest

from _github_fixtures import WebhookExample, webhook_examples
from sealtrail.event import prepare
from sealtrail.sources.base import SourceAuthError, SourcePayloadError
from sealtrail.sources.github import KINDS, to_envelopes, verify_signature

SECRET = b"It's a Secret to Everybody"
SOURCE_ID = "github-test"
RECEIVED = "2026-01-02T03:04:05.000000Z"

EXPECTED_KINDS = {
    "push": "code.push",
    "pull_request": "code.review",
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
"""What the issue asks for, written out independently of the module's table."""


def sign(secret: bytes, body: bytes) -> str:
    """X-Hub-Signature-256 as GitHub computes it."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def floats_in(value: Any) -> list[Any]:
    """Every float inside a JSON-like value."""
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for item in value.values() for f in floats_in(item)]
    if isinstance(value, list):
        return [f for item in value for f in floats_in(item)]
    return []


@pytest.fixture(scope="session")
def examples() -> list[WebhookExample]:
    return webhook_examples()


def find(examples: list[WebhookExample], origin: str, event: str, action: str | None = None) -> dict[str, Any]:
    """A deep copy of the first example of `event` (with `action`) from `origin`."""
    for example in examples:
        if example.origin == origin and example.event == event and example.payload.get("action") == action:
            return copy.deepcopy(example.payload)
    raise AssertionError(f"no {event} {action} example from {origin}")


def envelope_for(event: str, payload: dict[str, Any], delivery: str = "d-1") -> dict[str, Any]:
    envelopes = to_envelopes(event, delivery, payload, SOURCE_ID)
    assert len(envelopes) == 1
    return envelopes[0]


def stored(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as sealtrail stores it: prepare must accept it; its entry bytes, decoded."""
    prepared = prepare(envelope, received=RECEIVED)
    decoded: dict[str, Any] = msgspec.json.decode(prepared.entry)
    return decoded


# --- every example ------------------------------------------------------------------


def test_the_package_holds_every_example_and_the_mapped_events(examples: list[WebhookExample]) -> None:
    """All 726 examples load, and the events the issue names are among them (so they are exercised)."""
    assert len(examples) == 726
    events = {example.event for example in examples}
    assert len(events) >= 60
    named = {
        "push", "pull_request", "pull_request_review", "workflow_run", "workflow_job", "deployment",
        "deployment_status", "member", "repository", "branch_protection_rule", "secret_scanning_alert",
        "code_scanning_alert", "organization", "team", "deploy_key", "ping",
    }  # fmt: skip
    assert named <= events


def test_every_example_is_verified_mapped_and_accepted(examples: list[WebhookExample]) -> None:
    """Each signed example verifies, maps to one envelope of the expected kind, and passes prepare.

    The event name and action survive as `action`, the delivery as `source.delivery`, the payload as `raw`.
    """
    failures: list[str] = []
    for number, example in enumerate(examples):
        body = body_of(example.payload)
        delivery = f"72d3162e-cc78-11e3-81ab-{number:012d}"
        try:
            verify_signature(SECRET, body, sign(SECRET, body))
            payload = json.loads(body)
            envelopes = to_envelopes(example.event, delivery, payload, SOURCE_ID)
            assert len(envelopes) == 1, f"{len(envelopes)} envelopes"
            envelope = envelopes[0]
            action = payload.get("action")
            merged = example.event == "pull_request" and action == "closed" and payload["pull_request"]["merged"]
            kind = "code.merge" if merged else EXPECTED_KINDS.get(example.event, "github.other")
            assert envelope["kind"] == kind, f"kind {envelope['kind']} != {kind}"
            assert envelope["action"] == (f"{example.event}.{action}" if action else example.event)
            assert envelope["source"] == {"type": "github", "id": SOURCE_ID, "delivery": delivery}
            assert envelope["raw"] == example.payload
            assert envelope["attrs"]["event"] == example.event
            assert not floats_in(envelope["attrs"]), "floats in attrs"
            if "sender" in payload:
                assert envelope["actor"]["name"] == payload["sender"]["login"]
                assert envelope["actor"]["id"] == str(payload["sender"]["id"])
            if isinstance(payload.get("repository"), dict) and example.event not in ("team", "organization"):
                assert envelope["target"]["name"] == payload["repository"]["full_name"]
            entry = stored(envelope)
            assert (entry["kind"], entry["action"], entry["source"]) == (
                envelope["kind"],
                envelope["action"],
                envelope["source"],
            )
        except Exception as exc:
            failures.append(f"{example.label}: {type(exc).__name__}: {exc}")
    assert not failures, f"{len(failures)} of {len(examples)} examples failed:\n" + "\n".join(failures[:20])


def test_every_changed_body_or_wrong_secret_is_refused(examples: list[WebhookExample]) -> None:
    """A body changed by one byte, or signed with another secret, raises SourceAuthError."""
    for example in examples:
        body = body_of(example.payload)
        header = sign(SECRET, body)
        changed = body[:-1] + (b"]" if body[-1:] == b"}" else b"}")
        with pytest.raises(SourceAuthError):
            verify_signature(SECRET, changed, header)
        with pytest.raises(SourceAuthError):
            verify_signature(b"another secret", body, header)
        with pytest.raises(SourceAuthError):
            verify_signature(SECRET, body, sign(b"another secret", body))


# --- the signature header -------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "   ",
        "sha1=0123456789abcdef0123456789abcdef01234567",
        "sha256",
        "sha256=",
        "sha256=abc",
        "sha256=" + "g" * 64,
        "sha256=" + "0" * 65,
        "SHA256=" + "0" * 64,
        "0" * 64,
    ],
)
def test_missing_or_malformed_signatures_are_refused(header: str | None) -> None:
    """No header, another algorithm, or anything but sha256= and 64 hex digits: SourceAuthError."""
    with pytest.raises(SourceAuthError, match="X-Hub-Signature-256"):
        verify_signature(SECRET, b"{}", header)


def test_refusals_never_reveal_the_secret_or_the_expected_digest() -> None:
    """The error message names the problem, not the secret nor the digest it expected."""
    body = b'{"zen": "Keep it logically awesome."}'
    expected = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    for header in (None, "sha256=" + "0" * 64, "sha256=zz"):
        with pytest.raises(SourceAuthError) as caught:
            verify_signature(SECRET, body, header)
        message = str(caught.value)
        assert SECRET.decode() not in message
        assert expected not in message


def test_github_s_documented_test_vector_verifies() -> None:
    """GitHub's docs: secret "It's a Secret to Everybody", body "Hello, World!" gives this signature."""
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    verify_signature(SECRET, b"Hello, World!", header)
    verify_signature(SECRET, b"Hello, World!", header.upper().replace("SHA256=", "sha256="))
    with pytest.raises(SourceAuthError):
        verify_signature(SECRET, b"Hello, World?", header)


def test_an_empty_secret_is_a_configuration_error() -> None:
    """With no secret anyone could sign: refuse to check against it."""
    with pytest.raises(ValueError, match="secret"):
        verify_signature(b"", b"{}", sign(b"", b"{}"))


# --- well-known examples --------------------------------------------------------------


def test_push_actor_target_ref_and_push_time(examples: list[WebhookExample]) -> None:
    """A branch push: actor = sender, target = repository, ref/before/after in attrs, time = pushed_at."""
    payload = next(
        copy.deepcopy(e.payload)
        for e in examples
        if e.origin == "api.github.com" and e.event == "push" and e.payload["ref"] == "refs/heads/master"
    )
    envelope = envelope_for("push", payload)
    assert envelope["kind"] == "code.push"
    assert envelope["action"] == "push"
    assert envelope["outcome"] == "success"
    assert envelope["actor"] == {"id": "21031067", "name": "Codertocat", "type": "user"}
    assert envelope["target"] == {"type": "repository", "id": "186853002", "name": "Codertocat/Hello-World"}
    attrs = envelope["attrs"]
    assert (attrs["ref"], attrs["before"], attrs["after"]) == (payload["ref"], payload["before"], payload["after"])
    assert attrs["forced"] is False
    assert attrs["commits"] == len(payload["commits"])
    assert envelope["time"] == "2019-05-15T15:20:57.000000Z"  # repository.pushed_at = 1557933657
    assert stored(envelope)["time"] == envelope["time"]


def test_a_forced_push_is_visible(examples: list[WebhookExample]) -> None:
    """The same push with forced=true says so in attrs (history was rewritten)."""
    payload = find(examples, "api.github.com", "push")
    payload["forced"] = True
    assert envelope_for("push", payload)["attrs"]["forced"] is True


def test_a_merged_pull_request_is_code_merge(examples: list[WebhookExample]) -> None:
    """closed + merged → code.merge with merge details; closed unmerged stays code.review."""
    closed = find(examples, "api.github.com", "pull_request", "closed")
    plain = envelope_for("pull_request", copy.deepcopy(closed))
    assert plain["kind"] == "code.review"
    assert plain["attrs"]["merged"] is False
    assert plain["time"] == "2019-05-15T15:21:18.000000Z"  # closed_at

    merged = closed
    merged["pull_request"].update(merged=True, merged_at="2019-05-15T15:21:17Z", merged_by=merged["sender"])
    envelope = envelope_for("pull_request", merged)
    assert envelope["kind"] == "code.merge"
    assert envelope["action"] == "pull_request.closed"
    assert envelope["actor"]["name"] == "Codertocat"
    assert envelope["target"] == {"type": "repository", "id": "186853002", "name": "Codertocat/Hello-World"}
    assert envelope["attrs"]["merged"] is True
    assert envelope["attrs"]["number"] == 2
    assert envelope["attrs"]["merged_by"] == "Codertocat"
    assert envelope["attrs"]["merge_commit_sha"] == merged["pull_request"]["merge_commit_sha"]
    assert envelope["time"] == "2019-05-15T15:21:17.000000Z"  # merged_at
    stored(envelope)


def test_member_added_names_who_gave_access_to_whom(examples: list[WebhookExample]) -> None:
    """member.added: actor = the admin (sender), target = the repository, attrs.member = the new member."""
    envelope = envelope_for("member", find(examples, "ghes-35", "member", "added"))
    assert envelope["kind"] == "access.change"
    assert envelope["action"] == "member.added"
    assert envelope["actor"] == {"id": "4", "name": "Codertocat", "type": "user"}
    assert envelope["target"]["type"] == "repository"
    assert envelope["target"]["name"] == "Codertocat/Hello-World"
    assert envelope["attrs"]["member"] == "Hacktocat"
    stored(envelope)


def test_member_permission_change_is_in_attrs(examples: list[WebhookExample]) -> None:
    """member.edited carries the old permission."""
    envelope = envelope_for("member", find(examples, "api.github.com", "member", "edited"))
    assert envelope["attrs"]["old_permission"] == "write"
    assert envelope["attrs"]["member"] == "octocat"


def test_secret_scanning_alert(examples: list[WebhookExample]) -> None:
    """secret_scanning_alert → secret.alert on the repository, with the alert number and secret type."""
    envelope = envelope_for("secret_scanning_alert", find(examples, "ghes-35", "secret_scanning_alert", "reopened"))
    assert envelope["kind"] == "secret.alert"
    assert envelope["action"] == "secret_scanning_alert.reopened"
    assert envelope["actor"] == {"id": "10136561", "name": "Codertocat", "type": "user"}
    assert envelope["target"]["type"] == "repository"
    assert envelope["target"]["name"] == "Codertocat/Hello-World"
    assert envelope["attrs"]["alert"] == 191
    assert envelope["attrs"]["secret_type"] == "adafruit_io_key"
    stored(envelope)


def test_an_approving_review_is_visible(examples: list[WebhookExample]) -> None:
    """pull_request_review: the review state (approved) in attrs, time = submitted_at."""
    payload = find(examples, "api.github.com", "pull_request_review", "submitted")
    assert envelope_for("pull_request_review", copy.deepcopy(payload))["attrs"]["approved"] is False
    payload["review"]["state"] = "approved"
    envelope = envelope_for("pull_request_review", payload)
    assert envelope["kind"] == "code.review"
    assert envelope["attrs"]["review_state"] == "approved"
    assert envelope["attrs"]["approved"] is True
    assert envelope["attrs"]["number"] == 2
    assert envelope["time"] == "2019-05-15T15:20:38.000000Z"


def test_ci_outcomes_follow_conclusions(examples: list[WebhookExample]) -> None:
    """workflow_job/workflow_run: conclusion failure → failure, success → success, none yet → unknown."""
    jobs = [e.payload for e in examples if e.origin == "api.github.com" and e.event == "workflow_job"]
    by_conclusion = {job["workflow_job"]["conclusion"]: job for job in jobs}
    failed = envelope_for("workflow_job", copy.deepcopy(by_conclusion["failure"]))
    assert (failed["kind"], failed["outcome"], failed["attrs"]["conclusion"]) == ("ci.job", "failure", "failure")
    assert failed["time"] == "2021-08-05T10:38:16.000000Z"  # completed_at
    assert envelope_for("workflow_job", copy.deepcopy(by_conclusion["success"]))["outcome"] == "success"
    assert envelope_for("workflow_job", copy.deepcopy(by_conclusion[None]))["outcome"] == "unknown"

    runs = [e.payload for e in examples if e.origin == "api.github.com" and e.event == "workflow_run"]
    succeeded = next(r for r in runs if r["workflow_run"]["conclusion"] == "success")
    envelope = envelope_for("workflow_run", copy.deepcopy(succeeded))
    assert (envelope["kind"], envelope["outcome"]) == ("ci.run", "success")
    assert envelope["attrs"]["workflow"] == "test"
    assert envelope["attrs"]["run_id"] == succeeded["workflow_run"]["id"]


def test_deployment_status_outcome_and_environment(examples: list[WebhookExample]) -> None:
    """deployment_status: state success → success, failure/error → failure, in progress → unknown; env set."""
    payload = next(
        copy.deepcopy(e.payload)
        for e in examples
        if e.event == "deployment_status" and e.payload["deployment_status"]["state"] == "success"
    )
    envelope = envelope_for("deployment_status", payload)
    assert (envelope["kind"], envelope["outcome"], envelope["env"]) == ("deploy", "success", "production")
    for state, outcome in (("failure", "failure"), ("error", "failure"), ("in_progress", "unknown")):
        payload["deployment_status"]["state"] = state
        assert envelope_for("deployment_status", payload)["outcome"] == outcome


def test_organization_and_team_targets(examples: list[WebhookExample]) -> None:
    """organization events target the organization, team events the team; the member is in attrs."""
    org = envelope_for("organization", find(examples, "api.github.com", "organization", "member_added"))
    assert org["target"]["type"] == "organization"
    assert org["target"]["name"] == "Octocoders"
    assert (org["attrs"]["member"], org["attrs"]["role"]) == ("hacktocat", "member")
    team = envelope_for("team", find(examples, "api.github.com", "team", "added_to_repository"))
    assert team["target"] == {"type": "team", "id": "3253328", "name": "Octocoders/github"}
    assert team["attrs"]["repository"] == "Octocoders/Hello-World"


# --- never drop an event --------------------------------------------------------------


def test_unknown_events_are_kept_as_github_other() -> None:
    """An event sealtrail does not know is stored as github.other with "<event>.<action>"."""
    payload = {"action": "frobnicated", "sender": {"login": "mona", "id": 1, "type": "User"}, "weird": 1.5}
    envelope = envelope_for("brand_new_event", payload)
    assert envelope["kind"] == "github.other"
    assert envelope["action"] == "brand_new_event.frobnicated"
    assert envelope["raw"] == payload
    assert stored(envelope)["raw"] == payload
    assert envelope_for("another_event", {})["action"] == "another_event"


def test_mapped_kinds_are_the_issue_s() -> None:
    """The module's table agrees with the issue's list (code.merge is decided per payload)."""
    assert {event: kind for event, kind in KINDS.items()} == EXPECTED_KINDS


@pytest.mark.parametrize(
    "payload",
    [
        {"sender": "not an object", "repository": ["nope"], "action": 7},
        {"sender": {"login": "", "id": True, "type": 3}, "repository": {"full_name": None}},
        {"pull_request": "x", "action": "closed", "number": "2"},
        {"repository": {"pushed_at": "yesterday", "id": 1, "full_name": "a/b"}, "forced": "yes", "commits": {}},
        {"workflow_job": {"completed_at": "2021-08-05T10:38:16", "conclusion": 1}, "action": "completed"},
        {"action": "x" * 5000, "sender": {"login": "y" * 5000, "id": 1}},
    ],
)
@pytest.mark.parametrize("event", ["push", "pull_request", "workflow_job", "member", "ping", "zzz"])
def test_odd_payloads_still_make_valid_envelopes(event: str, payload: dict[str, Any]) -> None:
    """Payload fields of unexpected types or sizes are left out of the mapping, never fatal."""
    envelope = envelope_for(event, copy.deepcopy(payload))
    entry = stored(envelope)
    assert entry["raw"] == payload
    assert entry["action"].startswith(event)


def test_a_redelivery_dedups_and_another_delivery_does_not(examples: list[WebhookExample]) -> None:
    """The same X-GitHub-Delivery yields the same event id (dedup); another delivery, another id."""
    payload = find(examples, "api.github.com", "ping")
    first = prepare(envelope_for("ping", copy.deepcopy(payload), "a1"), received=RECEIVED)
    again = prepare(envelope_for("ping", copy.deepcopy(payload), "a1"), received=RECEIVED)
    other = prepare(envelope_for("ping", copy.deepcopy(payload), "a2"), received=RECEIVED)
    assert first.id == again.id
    assert first.id != other.id


@pytest.mark.parametrize(
    ("event", "delivery", "payload"),
    [("", "d", {}), ("Push Event", "d", {}), ("push", "", {}), ("push", "  ", {}), ("push", "d", [])],
)
def test_missing_headers_or_a_non_object_body_are_payload_errors(event: str, delivery: str, payload: Any) -> None:
    """No event name, no delivery id (the dedup key) or a body that is not an object: SourcePayloadError."""
    with pytest.raises(SourcePayloadError):
        to_envelopes(event, delivery, payload, SOURCE_ID)
