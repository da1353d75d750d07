"""Source webhooks end to end through the HTTP app, with real payloads."""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from _github_fixtures import webhook_examples
from sealtrail.credentials import Credentials

from .conftest import Api, make_api

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Api]:
    for api in make_api(tmp_path, max_body_bytes=32 * 1024 * 1024):
        credentials = Credentials(api.directory.credentials)
        credentials.add_source("acme-gh", "github", secret=SECRET)
        credentials.add_source("ghes-audit", "hec")
        yield api


def _github(api: Api, event: str, body: bytes, delivery: str, secret: str = SECRET) -> tuple[int, dict[str, object]]:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    response = api.client.post(
        "/hooks/github/acme-gh",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        },
    )
    return response.status_code, response.json()


def test_every_octokit_example_is_accepted_and_stored_under_a_sensible_kind(hooks: Api) -> None:
    examples = webhook_examples()
    assert len(examples) > 500
    kinds: dict[str, str] = {}
    for example in examples:
        body = json.dumps(example.payload).encode()
        status, answer = _github(hooks, example.event, body, str(uuid.uuid4()))
        assert status == 200, (example.label, answer)
        receipt = answer["receipts"][0]  # type: ignore[index]
        entry = hooks.entry(receipt["index"])
        kinds[example.event] = entry["kind"]
        assert entry["source"]["type"] == "github" and entry["source"]["id"] == "acme-gh"
        assert entry["action"].split(".")[0] == example.event
    assert kinds["push"] == "code.push"
    assert kinds["pull_request_review"] == "code.review"
    assert kinds["workflow_job"] == "ci.job"
    assert kinds["member"] == "access.change"
    assert kinds["secret_scanning_alert"] == "secret.alert"
    assert kinds["deployment_status"] == "deploy"
    unknown = [event for event, kind in kinds.items() if kind == "github.other"]
    assert "push" not in unknown and len(unknown) < len(kinds)


def test_a_changed_body_or_a_wrong_secret_is_refused_and_nothing_is_stored(hooks: Api) -> None:
    example = next(e for e in webhook_examples() if e.event == "push")
    body = json.dumps(example.payload).encode()
    signature_for_body = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    changed = body.replace(b'"ref"', b'"Ref"', 1)
    size = hooks.size()
    tampered = hooks.client.post(
        "/hooks/github/acme-gh",
        content=changed,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "d-1",
            "X-Hub-Signature-256": signature_for_body,
        },
    )
    assert tampered.status_code == 401
    assert _github(hooks, "push", body, "d-2", secret="not-the-secret")[0] == 401
    unsigned = hooks.client.post(
        "/hooks/github/acme-gh",
        content=body,
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-3"},
    )
    assert unsigned.status_code == 401
    assert _github(hooks, "push", body, "d-4", secret=SECRET)[0] == 200
    assert hooks.size() == size + 1
    assert hooks.client.post("/hooks/github/nobody", content=body).status_code in (404, 415)


def test_a_replayed_delivery_returns_the_original_receipt(hooks: Api) -> None:
    example = next(e for e in webhook_examples() if e.event == "member")
    body = json.dumps(example.payload).encode()
    first = _github(hooks, "member", body, "72d3162e-cc78-11e3-81ab-4c9367dc0958")[1]["receipts"][0]  # type: ignore[index]
    size = hooks.size()
    again = _github(hooks, "member", body, "72d3162e-cc78-11e3-81ab-4c9367dc0958")[1]["receipts"][0]  # type: ignore[index]
    assert again == {**first, "duplicate": True}
    assert hooks.size() == size


def _hec_event(document_id: str, action: str = "repo.create") -> bytes:
    event = {
        "action": action,
        "actor": "octocat",
        "actor_ip": "203.0.113.9",
        "_document_id": document_id,
        "@timestamp": 1_764_153_600_000,
        "org": "acme",
        "repo": "acme/payments-api",
    }
    return json.dumps({"event": event, "sourcetype": "github:audit", "time": 1_764_153_600}).encode()


def test_hec_collector_takes_concatenated_and_gzipped_events_and_dedups_on_document_id(hooks: Api) -> None:
    credentials = Credentials(hooks.directory.credentials)
    token, _ = credentials.create_token("ghes", {"ingest"}, {"ghes-audit"})
    body = _hec_event("doc-1") + _hec_event("doc-2", "org.add_member") + b"\n" + _hec_event("doc-3", "git.push")
    headers = {"Authorization": f"Splunk {token}", "Content-Type": "application/json"}
    answer = hooks.client.post("/services/collector/event", content=body, headers=headers)
    assert answer.status_code == 200 and answer.json()["code"] == 0
    assert [r["index"] for r in answer.json()["receipts"]] == [0, 1, 2]
    zipped_headers = {**headers, "Content-Encoding": "gzip"}
    zipped_body = gzip.compress(_hec_event("doc-1"))
    zipped = hooks.client.post("/services/collector", content=zipped_body, headers=zipped_headers)
    assert zipped.status_code == 200 and zipped.json()["receipts"][0]["duplicate"] is True
    entry = hooks.entry(1)
    assert entry["kind"] == "access.change" and entry["actor"]["ip"] == "203.0.113.9"
    assert entry["source"] == {"type": "hec", "id": "ghes-audit", "delivery": "doc-2"}
    size = hooks.size()
    for bad_headers in ({"Authorization": "Splunk nope"}, {}, {"Authorization": f"Bearer {token}"}):
        refused = hooks.client.post("/services/collector/event", content=_hec_event("doc-9"), headers=bad_headers)
        assert refused.status_code == 401 and refused.json()["code"] != 0
    broken = hooks.client.post("/services/collector/event", content=b'{"event": {"a": 1}} {"event":', headers=headers)
    assert broken.status_code == 400 and "text" in broken.json()
    assert hooks.size() == size
