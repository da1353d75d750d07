"""GET /metrics as Prometheus scrapes it: through the ASGI app and from a real `sealtrail serve`.

Counters are read back with prometheus_client's parser and compared with what the test sent;
the periodic audit is seen to flip when the database file of the running server is tampered with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from _support import attacker_connection, devsecops_event, ndjson, wait_until_serving
from sealtrail.credentials import Credentials
from sealtrail.server.services import Services

from .conftest import LIMIT, Api, make_api

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
SECRET = "metrics-webhook-secret"


def parse(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 for a labelled counter series not created yet."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    for created in make_api(tmp_path, verify_interval=0):
        Credentials(created.directory.credentials).add_source("acme-gh", "github", secret=SECRET)
        yield created


def scrape(api: Api) -> Samples:
    response = api.client.get("/metrics", headers=api.headers(api.read, None))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def post_events(api: Api, events: list[dict[str, object]], token: str | None = None) -> httpx.Response:
    response: httpx.Response = api.client.post(
        "/v1/events", content=ndjson(events), headers=api.headers(token or api.ingest, "application/x-ndjson")
    )
    return response


def test_metrics_need_a_read_token(api: Api) -> None:
    assert api.client.get("/metrics").status_code == 401
    refused = api.client.get("/metrics", headers=api.headers(api.ingest, None))
    assert refused.status_code == 403 and "read" in refused.json()["error"]
    assert api.client.get("/metrics", headers=api.headers(api.read, None)).status_code == 200


def test_public_metrics_need_no_token(tmp_path: Path) -> None:
    for public in make_api(tmp_path, verify_interval=0, public_metrics=True):
        response = public.client.get("/metrics")
        assert response.status_code == 200
        assert value(parse(response.text), "sealtrail_tree_size") == 0


def test_counters_move_with_the_events_posted_and_the_requests_refused(api: Api) -> None:
    before = scrape(api)
    events = [devsecops_event(n, "scraped") for n in range(30)]
    assert post_events(api, events[:20]).status_code == 200
    assert post_events(api, events[20:]).status_code == 200
    assert post_events(api, events[:5]).status_code == 200  # redelivered: acknowledged, nothing written

    refusals = {
        "unauthenticated": api.client.post("/v1/events", content=b"{}", headers=api.headers(None)),
        "malformed": api.client.post("/v1/events", content=b"{not json", headers=api.headers(api.ingest)),
        "unsupported_media_type": api.client.post(
            "/v1/events", content=b"<event/>", headers=api.headers(api.ingest, "application/xml")
        ),
        "too_large": api.client.post(
            "/v1/events", content=b" " * (LIMIT + 1), headers=api.headers(api.ingest, "application/json")
        ),
        "forbidden": post_events(api, [{"kind": "deploy", "source": {"type": "api", "id": "other"}}], api.ci_only),
    }
    for reason, response in refusals.items():
        assert 400 <= response.status_code < 500, (reason, response.text)

    after = scrape(api)
    undeduplicated = [e for e in events[:5] if "delivery" not in e["source"]]  # syslog lines: new events again
    assert undeduplicated
    expected = Counter((e["source"]["id"], e["kind"], e["outcome"]) for e in events + undeduplicated)
    for (source, kind, outcome), count in expected.items():
        labels = {"source": source, "kind": kind, "outcome": outcome}
        grew = value(after, "sealtrail_events_ingested_total", **labels)
        assert grew - value(before, "sealtrail_events_ingested_total", **labels) == count, labels
    duplicates = Counter(e["source"]["id"] for e in events[:5] if e not in undeduplicated)
    for source, count in duplicates.items():
        assert value(after, "sealtrail_events_duplicate_total", source=source) == count
    for reason in refusals:
        assert value(after, "sealtrail_ingest_rejected_total", route="/v1/events", reason=reason) == 1, reason
    assert value(after, "sealtrail_ingest_request_duration_seconds_count", route="/v1/events") == 3
    assert value(after, "sealtrail_ack_duration_seconds_count") == 3
    assert value(after, "sealtrail_tree_size") == 30 + len(undeduplicated)
    wait_for(lambda: value(scrape(api), "sealtrail_checkpoint_size") == 30 + len(undeduplicated))


def test_webhook_routes_are_counted_under_their_route_template(api: Api) -> None:
    body = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()

    def github(source: str, secret: str, delivery: str) -> int:
        signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "ping",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature,
        }
        status: int = api.client.post(f"/hooks/github/{source}", content=body, headers=headers).status_code
        return status

    assert github("acme-gh", SECRET, "d-1") == 200
    assert github("acme-gh", "wrong-secret", "d-2") == 401
    assert github("nobody", SECRET, "d-3") == 404
    samples = scrape(api)
    route = "/hooks/github/{source}"
    assert value(samples, "sealtrail_ingest_request_duration_seconds_count", route=route) == 1
    assert value(samples, "sealtrail_ingest_rejected_total", route=route, reason="unauthenticated") == 1
    assert value(samples, "sealtrail_ingest_rejected_total", route=route, reason="unknown_source") == 1
    assert sum(v for (name, labels), v in samples.items() if name == "sealtrail_events_ingested_total") == 1


def test_reads_are_not_counted_as_ingest(api: Api) -> None:
    api.client.get("/v1/entries/99", headers=api.headers(api.read, None))
    api.client.get("/v1/checkpoint")
    samples = scrape(api)
    assert not [key for key in samples if key[0] == "sealtrail_ingest_rejected_total"]


def test_openmetrics_when_the_scraper_asks_for_it(api: Api) -> None:
    assert post_events(api, [devsecops_event(1, "om")]).status_code == 200
    response = api.client.get(
        "/metrics",
        headers={**api.headers(api.read, None), "Accept": "application/openmetrics-text; version=1.0.0"},
    )
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    parsed = openmetrics_families(response.text)  # type: ignore[no-untyped-call]
    families = {family.name: family for family in parsed}
    assert families["sealtrail_tree_size"].samples[0].value == 1
    assert families["sealtrail_events_ingested"].type == "counter"


def _syslog_counted(api: Api, count: int) -> bool:
    labels = {"source": "bastion", "kind": "auth.failure", "outcome": "failure"}
    return value(scrape(api), "sealtrail_events_ingested_total", **labels) == count


def test_syslog_messages_are_counted_and_unparsable_ones_refused(tmp_path: Path) -> None:
    port = _free_port()
    good = b"<34>1 2026-11-26T09:00:00Z bastion sshd 1 - - Failed password for root from 203.0.113.9 port 22 ssh2"
    for api in make_api(tmp_path, verify_interval=0, syslog=(f"tcp://127.0.0.1:{port}?source=bastion",)):
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(good + b"\n" + b"<999>not a priority\n" + good.replace(b".9 ", b".10 ") + b"\n")
        wait_for(partial(_syslog_counted, api, 2))
        samples = scrape(api)
        assert value(samples, "sealtrail_tree_size") == 2
        assert value(samples, "sealtrail_ingest_rejected_total", route="syslog", reason="malformed") == 1
        assert value(samples, "sealtrail_ack_duration_seconds_count") >= 1


# --- the periodic audit inside the server --------------------------------------------------------


def _services(api: Api) -> Services:
    found: Services = api.client.app.state.services  # type: ignore[attr-defined]
    return found


def _edited(entry: bytes) -> bytes:
    """The entry with its kind changed (every entry has one), as an attacker rewriting history would."""
    edited = entry.replace(b'"kind":"', b'"kind":"forged.', 1)
    assert edited != entry
    return edited


def _tamper_entry(db: Path, index: int) -> None:
    attacker = attacker_connection(db)
    (entry,) = attacker.execute("SELECT entry FROM events WHERE idx = ?", (index,)).fetchone()
    attacker.execute("UPDATE events SET entry = ? WHERE idx = ?", (_edited(bytes(entry)), index))
    attacker.close()


def _checked(api: Api, size: int) -> bool:
    return value(scrape(api), "sealtrail_verify_checked_size") == size


def test_a_tampered_store_raises_the_integrity_alarm_within_one_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alarms: list[tuple[str, str]] = []
    raised = threading.Event()

    def alarm(origin: str, message: str) -> None:
        alarms.append((origin, message))
        raised.set()

    for api in make_api(tmp_path, verify_interval=0.2):
        _services(api).on_integrity_failure.append(alarm)
        assert post_events(api, [devsecops_event(n, "tamper") for n in range(12)]).status_code == 200
        wait_for(partial(_checked, api, 12))
        assert value(scrape(api), "sealtrail_verify_ok") == 1
        healthy = api.client.get("/v1/integrity", headers=api.headers(api.read, None)).json()
        assert healthy["ok"] is True and healthy["error"] is None and healthy["interval"] == 0.2

        _tamper_entry(api.directory.db, 3)
        assert raised.wait(30), "no integrity alarm"
        samples = scrape(api)
        assert value(samples, "sealtrail_verify_ok") == 0
        assert value(samples, "sealtrail_verify_runs_total", result="failed") >= 1
        origin, message = alarms[0]
        assert origin == _services(api).log.origin
        assert message.startswith("index 3:")
        report = api.client.get("/v1/integrity", headers=api.headers(api.read, None)).json()
        assert report["ok"] is False and report["error"] == message
        assert any(
            r.name == "sealtrail.integrity" and r.levelname == "ERROR" and message in r.getMessage()
            for r in caplog.records
        )


def test_the_audit_can_be_turned_off(api: Api) -> None:
    assert _services(api).integrity is None
    samples = scrape(api)
    assert not [key for key in samples if key[0].startswith("sealtrail_verify_")]
    assert api.client.get("/v1/integrity", headers=api.headers(api.read, None)).json() == {"enabled": False}


def test_a_negative_interval_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="verify_interval"):
        next(make_api(tmp_path, verify_interval=-1))


# --- a real server, scraped over HTTP -----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_a_running_server_is_scraped_and_its_audit_catches_tampering(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    config = tmp_path / "sealtrail.toml"
    config.write_text("[server]\nverify_interval = 0.3\ncheckpoint_interval = 0.1\n")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    stderr = tmp_path / "serve.log"
    command = [sys.executable, "-m", "sealtrail", "serve", "--dir", str(directory), "--port", str(port)]
    proc = subprocess.Popen(
        [*command, "--config", str(config), "--origin", "metrics.sealtrail.test/log"],
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
    )
    try:
        wait_until_serving(url, proc, stderr)
        admin = next(line.rsplit(" ", 1)[1] for line in stderr.read_text().splitlines() if "admin token" in line)
        auth = {"Authorization": f"Bearer {admin}"}
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 401
        events = [devsecops_event(n, "served") for n in range(10)]
        posted = httpx.post(
            f"{url}/v1/events",
            content=ndjson(events),
            headers={**auth, "Content-Type": "application/x-ndjson"},
            timeout=30,
        )
        assert posted.status_code == 200, posted.text

        def scraped() -> Samples:
            response = httpx.get(f"{url}/metrics", headers=auth, timeout=10)
            assert response.status_code == 200
            return parse(response.text)

        samples = scraped()
        assert value(samples, "sealtrail_tree_size") == 10
        assert sum(v for (name, _), v in samples.items() if name == "sealtrail_events_ingested_total") == 10
        assert value(samples, "process_resident_memory_bytes") > 0
        wait_for(lambda: value(scraped(), "sealtrail_verify_checked_size") == 10)

        _tamper_entry(directory / "log.db", 6)
        wait_for(lambda: scraped().get(("sealtrail_verify_ok", frozenset())) == 0)
        wait_for(lambda: "INTEGRITY CHECK FAILED" in stderr.read_text())
        line = next(line for line in stderr.read_text().splitlines() if "INTEGRITY CHECK FAILED" in line)
        assert "metrics.sealtrail.test/log" in line and "index 6:" in line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
