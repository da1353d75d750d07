"""Sinks over real HTTP on loopback: the webhook's signatures verify, Slack's and Alertmanager's shapes
are what those receivers accept, and a receiver that is down gets every queued alert, in order, once.

Alertmanager is also run for real when its binary (Debian: prometheus-alertmanager) is installed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from slack_sdk.models.blocks import Block
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from alerts._events import github_event, github_payload
from alerts._receivers import Receiver, free_port, wait_until
from sealtrail.alerts import Alert, Engine, builtin_rules
from sealtrail.alerts.rules import SinkConfig, webhook_key
from sealtrail.alerts.sinks import SinkSender, backoff_delay, build_request
from sealtrail.alerts.state import AlertStore

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
ORIGIN = "sinks.sealtrail.test/log"
FIRED_AT = "2026-03-02T08:00:00.000000Z"

# Alertmanager API v2 (api/v2/openapi.yaml of prometheus/alertmanager): the body of POST /api/v2/alerts,
# its Swagger 2.0 definitions written out as JSON Schema.
POSTABLE_ALERTS = {
    "definitions": {
        "labelSet": {"type": "object", "additionalProperties": {"type": "string"}},
        "alert": {
            "type": "object",
            "properties": {
                "labels": {"$ref": "#/definitions/labelSet"},
                "generatorURL": {"type": "string", "format": "uri"},
            },
            "required": ["labels"],
        },
        "postableAlert": {
            "allOf": [
                {
                    "type": "object",
                    "properties": {
                        "startsAt": {"type": "string", "format": "date-time"},
                        "endsAt": {"type": "string", "format": "date-time"},
                        "annotations": {"$ref": "#/definitions/labelSet"},
                    },
                },
                {"$ref": "#/definitions/alert"},
            ]
        },
    },
    "type": "array",
    "items": {"$ref": "#/definitions/postableAlert"},
}


def realistic_alerts() -> list[Alert]:
    """Alerts the built-in rules fire on real GitHub payloads: a force push, then an owner added."""
    push = github_payload("push", None, 4)
    push.update(forced=True, created=False)
    org = github_payload("organization", "member_added")
    org["membership"]["role"] = "admin"
    engine = Engine(builtin_rules())
    alerts = engine.observe(41, github_event("push", push)) + engine.observe(42, github_event("organization", org))
    assert [a.rule for a in alerts] == ["force-push-protected", "admin-granted"]
    return alerts


def checked(block: dict[str, Any]) -> dict[str, Any]:
    """The block as slack_sdk's Block Kit model serialises it (raising if a limit is exceeded)."""
    parsed = Block.parse(block)
    assert parsed is not None, block
    serialised: dict[str, Any] = parsed.to_dict()
    return serialised


def queued(alert: Alert, index: int) -> dict[str, Any]:
    return {"alert": alert.to_json(), "fired_at": FIRED_AT, "log": {"origin": ORIGIN, "index": index}}


def sink(kind: str, url: str, **extra: Any) -> SinkConfig:
    secret = webhook_key(SECRET) if kind == "webhook" else None
    fast = {"backoff_initial": 0.05, "backoff_max": 0.2, "timeout": 5.0}
    return SinkConfig(name=f"test-{kind}", type=kind, url=url, secret=secret, **(fast | extra))  # type: ignore[arg-type]


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[AlertStore]:
    store = AlertStore(tmp_path / "alerts.db")
    yield store
    store.close()


def enqueue(store: AlertStore, config: SinkConfig, alerts: list[Alert], now: float = 0.0) -> None:
    rows = [(config.name, alert.id, queued(alert, 100 + n)) for n, alert in enumerate(alerts)]
    store.commit(changes={}, cursor=None, queued=rows, fired=[], now=now or datetime.now().timestamp())


def deliver(store: AlertStore, config: SinkConfig, alerts: list[Alert], receiver: Receiver) -> None:
    enqueue(store, config, alerts)
    sender = SinkSender(config, store, base_url="https://sealtrail.example.com")
    sender.start()
    try:
        wait_until(lambda: receiver.count() == len(alerts), what="deliveries")
        wait_until(lambda: store.depth(config.name) == 0, what="an empty outbox")
    finally:
        sender.close()


def test_webhook_bodies_carry_the_alert_and_both_signatures_verify(outbox: AlertStore) -> None:
    alerts = realistic_alerts()
    with Receiver() as receiver:
        config = sink("webhook", f"{receiver.url}/hooks/sealtrail")
        deliver(outbox, config, alerts, receiver)
    first = receiver.received[0]
    assert first.path == "/hooks/sealtrail" and first.headers["Content-Type"] == "application/json"
    # Standard Webhooks, checked by its reference library (it also refuses a stale timestamp)
    body = Webhook(SECRET).verify(first.body, first.headers)
    assert body == first.json()
    assert first.headers["webhook-id"] == alerts[0].id
    # the plain header: HMAC-SHA256 over "<timestamp>.<body>", computed here from the secret
    key = webhook_key(SECRET)
    stamp = first.headers["X-Sealtrail-Timestamp"]
    expected = hmac.new(key, stamp.encode() + b"." + first.body, hashlib.sha256).hexdigest()
    assert first.headers["X-Sealtrail-Signature"] == f"sha256={expected}"
    assert first.headers["webhook-timestamp"] == stamp
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(first.body.replace(b"Codertocat", b"Mallory"), first.headers)
    assert body["type"] == "sealtrail.alert" and body["rule"] == "force-push-protected"
    assert body["id"] == alerts[0].id and body["severity"] == "critical" and body["count"] == 1
    assert body["group"] == {"target.name|attrs.project": "Codertocat/Hello-World", "attrs.ref": "refs/heads/master"}
    assert body["first_index"] == body["last_index"] == 41 and body["fired_at"] == FIRED_AT
    assert body["log"] == {"origin": ORIGIN, "index": 100, "url": "https://sealtrail.example.com/v1/entries/100"}
    assert body["details"]["event"]["actor"]["name"] == "Codertocat"
    assert [r.json()["rule"] for r in receiver.received] == ["force-push-protected", "admin-granted"]


def test_slack_gets_text_and_valid_block_kit(outbox: AlertStore) -> None:
    alerts = realistic_alerts()
    with Receiver() as receiver:
        deliver(outbox, sink("slack", f"{receiver.url}/services/T000/B000/XXXX"), alerts, receiver)
    message = receiver.received[1].json()
    assert set(message) == {"text", "blocks"}
    assert (
        message["text"] == "[HIGH] Admin or owner access granted on Octocoders: organization.member_added by "
        "Codertocat on Octocoders"
    )
    for block in message["blocks"]:
        assert checked(block) == block  # slack_sdk validates lengths and counts
    header, summary, fields, context = message["blocks"]
    assert header["type"] == "header" and header["text"]["text"].endswith("admin-granted")
    assert summary["text"]["text"].startswith("*Admin or owner access granted on Octocoders")
    assert {"type": "mrkdwn", "text": "*attrs.member|target.name*\nhacktocat"} in fields["fields"]
    assert "<https://sealtrail.example.com/v1/entries/101|open in sealtrail>" in context["elements"][0]["text"]


def test_slack_text_is_escaped_and_cut_to_block_kit_limits(outbox: AlertStore) -> None:
    alert = realistic_alerts()[0]
    long_group = {f"path{n}": "<script>&" + "x" * 3000 for n in range(12)}
    noisy = Alert(key="k", rule=alert.rule, severity="low", summary="a <b> & c" * 400, group=long_group)
    with Receiver() as receiver:
        deliver(outbox, sink("slack", receiver.url), [noisy], receiver)
    message = receiver.received[0].json()
    for block in message["blocks"]:
        checked(block)
    assert "&lt;b&gt; &amp; c" in message["blocks"][1]["text"]["text"]
    assert len(message["blocks"][2]["fields"]) == 10


def test_alertmanager_gets_postable_alerts_per_its_openapi(outbox: AlertStore) -> None:
    alerts = realistic_alerts()
    with Receiver() as receiver:
        deliver(outbox, sink("alertmanager", receiver.url, resolve_after=1800.0), alerts, receiver)
    validator = jsonschema_rs.validator_for(POSTABLE_ALERTS, validate_formats=True)
    for request in receiver.received:
        assert request.path == "/api/v2/alerts"
        validator.validate(request.json())
    [posted] = receiver.received[0].json()
    assert posted["labels"] == {
        "alertname": "force-push-protected",
        "severity": "critical",
        "source": "sealtrail",
        "target_name": "Codertocat/Hello-World",
        "attrs_ref": "refs/heads/master",
        "category": "source-control",
    }
    assert posted["annotations"]["sealtrail_alert_id"] == alerts[0].id
    assert posted["annotations"]["summary"] == "Force push to refs/heads/master of Codertocat/Hello-World"
    assert posted["startsAt"] == FIRED_AT and posted["generatorURL"] == "https://sealtrail.example.com/v1/entries/100"
    ends = datetime.fromisoformat(posted["endsAt"]).timestamp()
    assert ends >= datetime.now().timestamp() + 1700  # resolves by itself, half an hour after it is sent


def test_a_receiver_that_is_down_gets_every_queued_alert_in_order_once_it_is_up(outbox: AlertStore) -> None:
    port = free_port()
    config = sink("webhook", f"http://127.0.0.1:{port}/hook")
    base = realistic_alerts()
    alerts = [
        Alert(key=f"{a.key}:{n}", rule=a.rule, severity=a.severity, summary=f"{a.summary} #{n}")
        for n in range(3)
        for a in base
    ]
    enqueue(outbox, config, alerts)
    sender = SinkSender(config, outbox)
    sender.start()
    try:
        wait_until(lambda: outbox.counters().get(("sink:test-webhook", "failed_attempts"), 0) >= 2, what="failures")
        assert outbox.depth(config.name) == 6
        with Receiver(port) as receiver:
            wait_until(lambda: outbox.depth(config.name) == 0, what="the outbox to drain")
    finally:
        sender.close()
    assert [r.headers["webhook-id"] for r in receiver.received] == [a.id for a in alerts]
    assert outbox.counters()[("sink:test-webhook", "delivered")] == 6
    assert outbox.head(config.name) is None


def test_a_busy_receiver_is_retried_after_its_retry_after(outbox: AlertStore) -> None:
    alerts = realistic_alerts()
    with Receiver(script=[(503, {"Retry-After": "0"}), (429, {})]) as receiver:
        deliver(outbox, sink("alertmanager", receiver.url), alerts, receiver)
    assert len(receiver.refused) == 2
    assert [r.json()[0]["labels"]["alertname"] for r in receiver.received] == ["force-push-protected", "admin-granted"]
    assert outbox.counters()[("sink:test-alertmanager", "failed_attempts")] == 2


def test_a_body_the_receiver_refuses_for_good_is_dropped_and_the_next_goes_through(outbox: AlertStore) -> None:
    alerts = realistic_alerts()
    with Receiver(script=[(400, {})]) as receiver:
        config = sink("slack", receiver.url)
        enqueue(outbox, config, alerts)
        sender = SinkSender(config, outbox)
        sender.start()
        try:
            wait_until(lambda: outbox.depth(config.name) == 0, what="the outbox to drain")
        finally:
            sender.close()
    assert len(receiver.refused) == 1 and len(receiver.received) == 1
    assert receiver.received[0].json()["blocks"][0]["text"]["text"].endswith("admin-granted")
    counters = outbox.counters()
    assert counters[("sink:test-slack", "rejected")] == 1 and counters[("sink:test-slack", "delivered")] == 1


def test_with_max_age_an_undeliverable_alert_expires(outbox: AlertStore) -> None:
    config = sink("webhook", f"http://127.0.0.1:{free_port()}/", max_age=60.0)
    enqueue(outbox, config, realistic_alerts()[:1], now=1_000.0)
    now = [1_010.0]
    sender = SinkSender(config, outbox, clock=lambda: now[0])
    with httpx.Client() as client:
        delay = sender.step(client)  # connection refused: retry later
        assert delay is not None and 0 < delay <= 0.2 and outbox.depth(config.name) == 1
        now[0] = 1_061.0
        assert sender.step(client) == 0
    assert outbox.depth(config.name) == 0 and outbox.counters()[("sink:test-webhook", "expired")] == 1


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    for attempts, ceiling in [(0, 1.0), (1, 2.0), (3, 8.0), (10, 300.0), (200, 300.0)]:
        delays = [backoff_delay(attempts, 1.0, 300.0) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1
    assert backoff_delay(0, 1.0, 300.0, retry_after=120.0) >= 120.0
    assert backoff_delay(0, 1.0, 300.0, retry_after=10_000.0) == 300.0


def test_the_alertmanager_path_is_added_once() -> None:
    alert = realistic_alerts()[0]
    for url in ("http://am.example:9093", "http://am.example:9093/", "http://am.example:9093/api/v2/alerts"):
        assert build_request(sink("alertmanager", url), queued(alert, 1), now=0, base_url=None).url == (
            "http://am.example:9093/api/v2/alerts"
        )


# --- a real Alertmanager ------------------------------------------------------------------------------------

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    if ALERTMANAGER is None:
        reason = "Alertmanager is not installed (Debian: apt-get install prometheus-alertmanager)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: it must be)")
        pytest.skip(reason)
    config = tmp_path / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    log = (tmp_path / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(ready, timeout=30, what="Alertmanager")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


def test_a_real_alertmanager_accepts_and_lists_the_alerts(outbox: AlertStore, alertmanager: str) -> None:
    alerts = realistic_alerts()
    config = sink("alertmanager", alertmanager)
    enqueue(outbox, config, alerts)
    sender = SinkSender(config, outbox, base_url="https://sealtrail.example.com")
    sender.start()
    try:
        wait_until(lambda: outbox.depth(config.name) == 0, what="Alertmanager to take the alerts")
    finally:
        sender.close()
    assert outbox.counters()[("sink:test-alertmanager", "delivered")] == 2
    listed = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": 'source="sealtrail"'}, timeout=10).json()
    by_name = {a["labels"]["alertname"]: a for a in listed}
    assert set(by_name) == {"force-push-protected", "admin-granted"}
    force = by_name["force-push-protected"]
    assert force["labels"]["target_name"] == "Codertocat/Hello-World" and force["status"]["state"] == "active"
    assert force["annotations"]["sealtrail_alert_id"] == alerts[0].id
    assert force["generatorURL"] == "https://sealtrail.example.com/v1/entries/100"
