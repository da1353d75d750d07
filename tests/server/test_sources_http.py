"""GitLab, Jenkins, CloudEvents, OTLP, Kubernetes and syslog through the running app."""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
from cloudevents.v1.conversion import to_structured
from cloudevents.v1.http import CloudEvent

from _gl_fixtures import AUDIT_GIT_FETCH, MEMBER_ADD, PUSH
from _support import free_port
from _syslog_fixtures import fail2ban_logs, samples
from sealtrail.credentials import Credentials

from .conftest import LIMIT, Api, make_api

GITLAB_TOKEN = "gitlab-shared-token"
WHSEC = "whsec_" + base64.b64encode(b"standard-webhooks-key-for-tests!").decode()
JENKINS_SECRET = "jenkins-basic-password"


SYSLOG_PORT = free_port()


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Api]:
    for api in make_api(tmp_path, syslog=(f"tcp://127.0.0.1:{SYSLOG_PORT}?source=bastion",)):
        credentials = Credentials(api.directory.credentials)
        credentials.add_source("acme-gl", "gitlab", secret=GITLAB_TOKEN)
        credentials.add_source("acme-gl-signed", "gitlab", secret=WHSEC)
        credentials.add_source("ci-jenkins", "jenkins", secret=JENKINS_SECRET)
        credentials.add_source("prod-eu-1", "kubernetes")
        yield api


def _token(api: Api, *sources: str) -> str:
    secret, _ = Credentials(api.directory.credentials).create_token("t", {"ingest"}, set(sources))
    return secret


def test_gitlab_token_standard_webhooks_and_audit_streaming(hooks: Api) -> None:
    body = json.dumps(PUSH).encode()
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook", "Idempotency-Key": "k-1"}
    ok = hooks.client.post("/hooks/gitlab/acme-gl", content=body, headers={**headers, "X-Gitlab-Token": GITLAB_TOKEN})
    assert ok.status_code == 200, ok.text
    assert hooks.entry(0)["kind"] == "code.push"
    with_token = {**headers, "X-Gitlab-Token": GITLAB_TOKEN}
    again = hooks.client.post("/hooks/gitlab/acme-gl", content=body, headers=with_token)
    assert again.json()["receipts"][0]["duplicate"] is True
    size = hooks.size()
    wrong = hooks.client.post("/hooks/gitlab/acme-gl", content=body, headers={**headers, "X-Gitlab-Token": "nope"})
    assert wrong.status_code == 401
    assert hooks.client.post("/hooks/gitlab/acme-gl", content=body, headers=headers).status_code == 401
    assert hooks.size() == size

    member = json.dumps(MEMBER_ADD).encode()
    signer = standardwebhooks.Webhook(WHSEC)
    now = int(time.time())

    signature = signer.sign("msg_1", datetime.fromtimestamp(now, UTC), member.decode())  # the reference signer
    signed = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": signature}
    member_headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Member Hook", **signed}
    accepted = hooks.client.post("/hooks/gitlab/acme-gl-signed", content=member, headers=member_headers)
    assert accepted.status_code == 200, accepted.text
    assert hooks.entry(accepted.json()["receipts"][0]["index"])["kind"] == "access.change"
    stale = {**member_headers, "webhook-timestamp": str(now - 3600)}
    assert hooks.client.post("/hooks/gitlab/acme-gl-signed", content=member, headers=stale).status_code == 401

    audit = json.dumps(AUDIT_GIT_FETCH).encode()
    streaming = {"Content-Type": "application/json", "X-Gitlab-Event-Streaming-Token": GITLAB_TOKEN}
    first = hooks.client.post("/hooks/gitlab/acme-gl", content=audit, headers=streaming)
    repeat = hooks.client.post("/hooks/gitlab/acme-gl", content=audit, headers=streaming)
    assert first.status_code == 200 and repeat.json()["receipts"][0]["duplicate"] is True
    assert hooks.client.post("/hooks/gitlab/unknown", content=audit, headers=streaming).status_code == 404


def test_jenkins_basic_and_bearer_audit_and_notifications(hooks: Api) -> None:
    basic = "Basic " + base64.b64encode(f"jenkins:{JENKINS_SECRET}".encode()).decode()
    audit = {"message": "/job/deploy-prod/build #42 by alice from 10.0.0.5", "@timestamp": "2026-11-26T10:00:00.000Z"}
    ok = hooks.client.post(
        "/hooks/jenkins/ci-jenkins", json=audit, headers={"Authorization": basic, "Content-Type": "application/json"}
    )
    assert ok.status_code == 200, ok.text
    stored = hooks.entry(ok.json()["receipts"][0]["index"])
    assert stored["actor"]["name"] == "alice" and stored["actor"]["ip"] == "10.0.0.5"
    wrong = "Basic " + base64.b64encode(b"jenkins:guess").decode()
    refused = hooks.client.post("/hooks/jenkins/ci-jenkins", json=audit, headers={"Authorization": wrong})
    assert refused.status_code == 401
    note = {
        "name": "deploy-prod",
        "url": "job/deploy-prod/",
        "build": {"full_url": "https://ci.acme.test/job/deploy-prod/43/", "number": 43, "phase": "COMPLETED"}
        | {"status": "FAILURE", "url": "job/deploy-prod/43/"},
    }
    bearer = {"Authorization": f"Bearer {_token(hooks, 'ci-jenkins')}"}
    done = hooks.client.post("/hooks/jenkins/ci-jenkins", json=note, headers=bearer)
    assert done.status_code == 200, done.text
    built = hooks.entry(done.json()["receipts"][0]["index"])
    assert built["kind"] == "ci.run" and built["outcome"] == "failure"
    other = {"Authorization": f"Bearer {_token(hooks, 'prod-eu-1')}"}
    assert hooks.client.post("/hooks/jenkins/ci-jenkins", json=note, headers=other).status_code == 403


def test_cloudevents_structured_binary_and_refusals(hooks: Api) -> None:
    token = {"Authorization": f"Bearer {hooks.ingest}"}
    event = CloudEvent(
        {"type": "dev.acme.deploy.finished", "source": "https://ci.acme.test/pipelines/7", "id": "e-1"},
        {"service": "payments-api", "version": "2.14.0"},
    )
    headers, body = to_structured(event)
    ok = hooks.client.post("/v1/cloudevents", content=body, headers={**headers, **token})
    assert ok.status_code == 200, ok.text
    stored = hooks.entry(ok.json()["receipts"][0]["index"])
    assert stored["action"] == "dev.acme.deploy.finished" and stored["raw"]["data"]["service"] == "payments-api"
    binary = {
        "ce-specversion": "1.0",
        "ce-type": "dev.acme.login.failed",
        "ce-source": "idp",
        "ce-id": "e-2",
        "Content-Type": "application/json",
    }
    sent = hooks.client.post("/v1/cloudevents", content=b'{"user": "bob"}', headers={**binary, **token})
    assert sent.status_code == 200, sent.text
    missing = {k: v for k, v in binary.items() if k != "ce-id"}
    refused = hooks.client.post("/v1/cloudevents", content=b"{}", headers={**missing, **token})
    assert refused.status_code == 400 and "id" in refused.json()["error"]
    assert hooks.client.post("/v1/cloudevents", content=body, headers=headers).status_code == 401


def test_otlp_json_logs_and_protobuf_refused(hooks: Api) -> None:
    token = {"Authorization": f"Bearer {hooks.ingest}", "Content-Type": "application/json"}
    request = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "checkout"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1764151200000000000",
                                "severityText": "ERROR",
                                "body": {"stringValue": "login failed for bob"},
                                "attributes": [{"key": "user.name", "value": {"stringValue": "bob"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    ok = hooks.client.post("/otlp/v1/logs", content=json.dumps(request).encode(), headers=token)
    assert ok.status_code == 200 and ok.json() == {}
    stored = hooks.entry(0)
    assert stored["outcome"] == "failure" and stored["actor"]["name"] == "bob"
    zipped = hooks.client.post(
        "/otlp/v1/logs",
        content=gzip.compress(json.dumps(request).encode()),
        headers={**token, "Content-Encoding": "gzip"},
    )
    assert zipped.status_code == 200 and hooks.size() == 2  # the OpenTelemetry Collector compresses by default
    bomb = gzip.compress(b" " * (LIMIT + 1))
    too_big = hooks.client.post("/otlp/v1/logs", content=bomb, headers={**token, "Content-Encoding": "gzip"})
    assert too_big.status_code == 413 and hooks.size() == 2
    proto = {**token, "Content-Type": "application/x-protobuf"}
    refused = hooks.client.post("/otlp/v1/logs", content=b"\x0a\x00", headers=proto)
    assert refused.status_code == 415 and "http/json" in refused.json()["error"]


def _audit_event(audit_id: str, stage: str, code: int = 201) -> dict[str, Any]:
    return {
        "level": "Metadata",
        "auditID": audit_id,
        "stage": stage,
        "requestURI": "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        "verb": "create",
        "user": {"username": "alice@acme.example", "groups": ["system:authenticated"]},
        "sourceIPs": ["10.20.4.17"],
        "userAgent": "kubectl/v1.31.2 (linux/amd64) kubernetes/5864a46",
        "objectRef": {
            "resource": "clusterrolebindings",
            "name": "alice-cluster-admin",
            "apiGroup": "rbac.authorization.k8s.io",
            "apiVersion": "v1",
        },
        "responseStatus": {"metadata": {}, "code": code},
        "requestReceivedTimestamp": "2026-11-26T09:40:03.120000Z",
        "stageTimestamp": "2026-11-26T09:40:03.135000Z",
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""},
    }


def test_kubernetes_event_list_round_trip_and_dedup_on_audit_id_and_stage(hooks: Api) -> None:
    token = {"Authorization": f"Bearer {_token(hooks, 'prod-eu-1')}"}
    items = [_audit_event("5d0e6b52-1a8e-4d53-9a7c-2f3e4d5c6b7a", "ResponseComplete")]
    items.append(_audit_event("9f1e2d3c-4b5a-4697-8877-665544332211", "ResponseComplete", code=403))
    body = {"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "metadata": {}, "items": items}
    ok = hooks.client.post("/hooks/kubernetes/prod-eu-1", json=body, headers=token)
    assert ok.status_code == 200, ok.text
    first, second = (hooks.entry(r["index"]) for r in ok.json()["receipts"])
    assert first["kind"] == "access.change" and first["actor"]["ip"] == "10.20.4.17"
    assert second["kind"] == "auth.failure" and second["outcome"] == "failure"
    size = hooks.size()
    replay = hooks.client.post("/hooks/kubernetes/prod-eu-1", json=body, headers=token)
    assert all(r["duplicate"] for r in replay.json()["receipts"]) and hooks.size() == size
    other_stage = {**body, "items": [_audit_event("5d0e6b52-1a8e-4d53-9a7c-2f3e4d5c6b7a", "ResponseStarted")]}
    assert (
        "duplicate"
        not in hooks.client.post("/hooks/kubernetes/prod-eu-1", json=other_stage, headers=token).json()["receipts"][0]
    )
    assert hooks.client.post("/hooks/kubernetes/prod-eu-1", json=body).status_code == 401
    wrong = {"Authorization": f"Bearer {_token(hooks, 'ci-jenkins')}"}
    assert hooks.client.post("/hooks/kubernetes/prod-eu-1", json=body, headers=wrong).status_code == 403
    bad = hooks.client.post("/hooks/kubernetes/prod-eu-1", json={"kind": "Pod"}, headers=token)
    assert bad.status_code == 400


def _is_ip(text: str | None) -> bool:
    try:
        ipaddress.ip_address(text or "")
    except ValueError:
        return False
    return True


def test_syslog_listener_turns_real_sshd_lines_into_auth_failures(hooks: Api) -> None:
    lines = [s for s in samples(fail2ban_logs(), "sshd") if s.label.get("match") and _is_ip(s.host)][:40]
    assert len(lines) >= 20
    with socket.create_connection(("127.0.0.1", SYSLOG_PORT)) as sock:
        framed = b"".join(f"{len(s.line.encode())} {s.line}".encode() for s in lines[: len(lines) // 2])
        framed += b"".join(s.line.encode() + b"\n" for s in lines[len(lines) // 2 :])
        sock.sendall(framed + b"<13>this line has no pri-shaped header but is still a message\n")
    deadline = time.monotonic() + 10
    while hooks.size() < len(lines) + 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hooks.size() == len(lines) + 1
    stored = [hooks.entry(i) for i in range(len(lines))]
    for sample, entry in zip(lines, stored, strict=True):
        assert entry["source"] == {"type": "syslog", "id": "bastion"}
        assert entry["kind"] == "auth.failure", sample
        assert entry["actor"]["ip"] == sample.host, sample
