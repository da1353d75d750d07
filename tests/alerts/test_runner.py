"""The alert service through a real Log: events in, alert events appended and delivered; restarts resume
from the cursor without duplicates; integrity alarms (a tampered store caught by the periodic audit)."""

from __future__ import annotations

import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from _support import attacker_connection
from alerts._events import BRUTE_FORCE_LINE, T0, restamped, sshd_envelopes, sshd_line
from alerts._receivers import Receiver, wait_until
from sealtrail.alerts import AlertsConfig, AlertService, Rule, builtin_rules
from sealtrail.alerts.rules import SinkConfig, webhook_key
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.integrity import IntegrityMonitor
from sealtrail.log import Log
from sealtrail.server import load_settings
from sealtrail.server.services import Services
from server.conftest import Api, make_api

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def burst(address: str, count: int = 5, start: datetime = T0) -> list[dict[str, Any]]:
    """`count` real 'Failed password' lines from `address`, 30 s apart, as the syslog adapter maps them."""
    line = sshd_line(BRUTE_FORCE_LINE)
    return sshd_envelopes(
        restamped(line, start + timedelta(seconds=30 * n), port=40000 + n, address=address) for n in range(count)
    )


def webhook(url: str) -> SinkConfig:
    return SinkConfig(
        name="soc", type="webhook", url=url, secret=webhook_key(SECRET), backoff_initial=0.05, backoff_max=0.2
    )


def config(*sinks: SinkConfig, **extra: Any) -> AlertsConfig:
    return AlertsConfig(sinks=sinks, poll=0.05, **extra)


def append(log: Log, events: list[dict[str, Any]]) -> list[int]:
    return [receipt.index for receipt in log.append([prepare(event) for event in events])]


def entries(directory: DataDir) -> list[dict[str, Any]]:
    store = directory.store()
    try:
        return [orjson.loads(entry) for _, entry in store.entries(0, store.size())]
    finally:
        store.close()


def alert_events(directory: DataDir) -> list[dict[str, Any]]:
    return [e for e in entries(directory) if e["kind"].startswith("alert.")]


@pytest.fixture
def service_factory(data_dir: DataDir, log: Log) -> Iterator[Any]:
    opened: list[AlertService] = []
    store = data_dir.store()

    def make(alerts_config: AlertsConfig) -> AlertService:
        service = AlertService(alerts_config, log, store, data_dir.path / "alerts.db")
        opened.append(service)
        return service

    yield make
    for service in opened:
        service.close()
    store.close()


def test_events_in_become_alert_events_in_the_log_and_reach_a_webhook(
    data_dir: DataDir, log: Log, service_factory: Any
) -> None:
    with Receiver() as receiver:
        service = service_factory(config(webhook(receiver.url)))
        fired: list[str] = []
        service.add_listener(lambda alert: fired.append(alert.rule))
        service.start()
        indices = append(log, burst("198.51.100.23"))
        wait_until(lambda: receiver.count() == 2, what="two alerts at the receiver")

        def settled() -> bool:  # the follower passed its own alert events; the sender marked both delivered
            status = service.status()
            return bool(status.cursor == log.size and status.sinks[0].delivered == 2)

        wait_until(settled, what="the cursor past the alert events and both marked delivered")
    recorded = alert_events(data_dir)
    assert [e["kind"] for e in recorded] == ["alert.failed-auth-burst-ip", "alert.failed-auth-burst-user"]
    by_ip = recorded[0]
    assert by_ip["source"]["type"] == "sealtrail" and by_ip["source"]["id"] == "alerts"
    assert by_ip["attrs"]["rule"] == "failed-auth-burst-ip" and by_ip["attrs"]["severity"] == "high"
    assert by_ip["attrs"]["group"] == {"actor.ip": "198.51.100.23"} and by_ip["attrs"]["count"] == 5
    assert (by_ip["attrs"]["first_index"], by_ip["attrs"]["last_index"]) == (indices[0], indices[-1])
    delivered = [r.json() for r in receiver.received]
    assert [d["id"] for d in delivered] == [e["id"] for e in recorded]
    assert [d["log"]["index"] for d in delivered] == [indices[-1] + 1, indices[-1] + 2]
    assert fired == ["failed-auth-burst-ip", "failed-auth-burst-user"]
    status = service.status()
    assert status.fired == {"failed-auth-burst-ip": 1, "failed-auth-burst-user": 1}
    assert status.cursor == log.size and status.sinks[0].delivered == 2 and status.sinks[0].queued == 0
    assert status.sinks[0].url == receiver.url


def test_a_restart_resumes_from_the_cursor_and_fires_nothing_twice(
    data_dir: DataDir, log: Log, service_factory: Any
) -> None:
    first = service_factory(config())
    append(log, burst("198.51.100.23"))
    assert [a.rule for a in first.run_once()] == ["failed-auth-burst-ip", "failed-auth-burst-user"]
    first.close()
    append(log, burst("203.0.113.99", start=T0 + timedelta(hours=1)))  # arrives while alerts are not running
    second = service_factory(config())
    assert second.status().cursor == 5  # after the 5 events; its own 2 alerts are read next, and skipped
    assert [a.group for a in second.run_once()] == [{"actor.ip": "203.0.113.99"}]
    assert second.run_once() == []
    recorded = alert_events(data_dir)
    assert len(recorded) == 3 and len({e["id"] for e in recorded}) == 3
    assert second.status().cursor == log.size == 13


def test_a_crash_after_appending_an_alert_but_before_saving_replays_it_once(
    data_dir: DataDir, log: Log, service_factory: Any, tmp_path: Path
) -> None:
    """alerts.db as it was before the pass (as if the process died between the log append and the save)."""
    with Receiver() as receiver:
        before = tmp_path / "alerts-before.db"
        first = service_factory(config(webhook(receiver.url)))
        source = sqlite3.connect(data_dir.path / "alerts.db")
        target = sqlite3.connect(before)
        source.backup(target)
        source.close()
        target.close()
        append(log, burst("198.51.100.23"))
        assert len(first.run_once()) == 2
        size = log.size
        first.close()
        for suffix in ("", "-wal", "-shm"):
            (data_dir.path / f"alerts.db{suffix}").unlink(missing_ok=True)
        shutil.copy(before, data_dir.path / "alerts.db")
        second = service_factory(config(webhook(receiver.url)))
        second.start()
        wait_until(lambda: receiver.count() == 2, what="the replayed alerts to be delivered")
        assert log.size == size  # the log already had them: nothing appended twice
    assert len(alert_events(data_dir)) == 2
    assert [r.json()["log"]["index"] for r in receiver.received] == [size - 2, size - 1]


def test_alert_events_never_feed_back_into_the_rules(data_dir: DataDir, log: Log, service_factory: Any) -> None:
    everything = Rule(name="everything", severity="info")
    service = service_factory(config(rules=(everything,)))
    append(log, burst("198.51.100.23", count=3))
    assert len(service.run_once()) == 3
    assert service.run_once() == []
    kinds = [e["kind"] for e in entries(data_dir)]
    assert kinds == ["auth.failure"] * 3 + ["alert.everything"] * 3


def test_a_signer_stuck_past_the_limit_raises_the_checkpoint_alarm(data_dir: DataDir, tmp_path: Path) -> None:
    """A log that signs at most once an hour holds unsigned entries; 300 s later the integrity rule fires."""
    slow = data_dir.open_log(checkpoint_interval=3600)
    store = data_dir.store()
    service = AlertService(config(tick=1.0), slow, store, data_dir.path / "alerts.db")
    try:
        start = time.time()
        assert service.run_once(now=start) == []
        append(slow, burst("198.51.100.23", count=2))
        assert slow.latest_checkpoint()[0] < slow.size
        assert service.run_once(now=start + 10) == []  # the backlog starts here
        assert service.run_once(now=start + 309) == []  # 299 s: a near miss
        [alert] = service.run_once(now=start + 311)
        assert alert.rule == "integrity-checkpoint-stale"
        assert alert.details["checkpoint_lag"] == 301.0
        assert "2 entries from index 0 have waited 301s" in alert.summary
    finally:
        service.close()
        slow.close()
        store.close()


def test_witness_refusals_and_forks_become_alerts_with_their_evidence(data_dir: DataDir, service_factory: Any) -> None:
    service = service_factory(config())
    service.raise_integrity_alarm(
        "witness_refusal",
        "409: the witness holds size 12 with another root",
        {"witness": "witness.example.org", "status": 409, "size": 12},
    )
    service.raise_integrity_alarm("witness_refusal", "409 again", {"witness": "witness.example.org", "status": 409})
    service.raise_integrity_alarm("fork", "two roots at size 40", {"checkpoints": ["a", "b"]})
    alerts = service.run_once()
    assert [a.rule for a in alerts] == ["integrity-witness-refusal", "integrity-fork"]  # the repeat is cooling down
    refusal = alerts[0]
    assert refusal.summary == "Witness refused a checkpoint: 409: the witness holds size 12 with another root"
    assert refusal.details["evidence"] == {"witness": "witness.example.org", "status": 409, "size": 12}
    assert refusal.group == {"attrs.evidence.witness": "witness.example.org"}
    recorded = alert_events(data_dir)
    assert [e["attrs"]["severity"] for e in recorded] == ["critical", "critical"]
    assert recorded[1]["attrs"]["details"]["evidence"] == {"checkpoints": ["a", "b"]}


# --- inside the app: the lifespan runs the service, the periodic audit raises its alarm ---------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture
def api(tmp_path: Path, receiver: Receiver) -> Iterator[Api]:
    alerts = replace(config(webhook(receiver.url)), rules=tuple(builtin_rules()))
    yield from make_api(tmp_path, alerts=alerts, verify_interval=0)


@pytest.fixture
def audited_api(tmp_path: Path, receiver: Receiver) -> Iterator[Api]:
    alerts = replace(config(webhook(receiver.url)), rules=tuple(builtin_rules()))
    yield from make_api(tmp_path, alerts=alerts, verify_interval=0.3)


def services(api: Api) -> Services:
    found: Services = api.client.app.state.services  # type: ignore[attr-defined]
    return found


def test_the_server_runs_the_rules_on_what_it_ingests(api: Api, receiver: Receiver) -> None:
    response = api.client.post("/v1/events", json=burst("198.51.100.23"), headers=api.headers(api.ingest))
    assert response.status_code == 200, response.text
    wait_until(lambda: receiver.count() == 2, what="the alerts of ingested events")
    assert {r.json()["rule"] for r in receiver.received} == {"failed-auth-burst-ip", "failed-auth-burst-user"}
    service = services(api).alerts
    assert service is not None and service.integrity_alarm in services(api).on_integrity_failure
    metrics = api.client.get("/metrics", headers=api.headers(api.read, None)).text
    assert 'sealtrail_alerts_fired_total{rule="failed-auth-burst-ip"} 1.0' in metrics


def test_a_tampered_store_raises_the_integrity_alarm_within_one_verify_interval(
    audited_api: Api, receiver: Receiver
) -> None:
    api = audited_api
    good = [prepare_free(e) for e in burst("198.51.100.23", count=3)]
    assert api.client.post("/v1/events", json=good, headers=api.headers(api.ingest)).status_code == 200
    monitor = services(api).integrity
    assert isinstance(monitor, IntegrityMonitor)
    wait_until(lambda: monitor.status().checked_size >= 3, what="a clean audit")
    assert receiver.count() == 0  # a clean audit raises nothing
    attacker = attacker_connection(api.directory.db)
    (entry,) = attacker.execute("SELECT entry FROM events WHERE idx = 1").fetchone()
    attacker.execute("UPDATE events SET entry = ? WHERE idx = 1", (bytes(entry).replace(b"198.51", b"192.0"),))
    attacker.close()
    wait_until(lambda: receiver.count() >= 1, what="the integrity alert")
    alert = receiver.received[0].json()
    assert alert["rule"] == "integrity-verify-failure" and alert["severity"] == "critical"
    assert alert["summary"].startswith("Log verification failed: index 1:")
    assert alert["details"]["evidence"] == {"origin": services(api).log.origin}


def prepare_free(envelope: dict[str, Any]) -> dict[str, Any]:
    """The envelope as a client sends it (no raw line: smaller requests)."""
    return {k: v for k, v in envelope.items() if k != "raw"}


def test_without_an_alerts_table_the_server_runs_no_alerts(tmp_path: Path) -> None:
    for api in make_api(tmp_path):
        assert services(api).alerts is None
        assert not (api.directory.path / "alerts.db").exists()


def test_the_alerts_table_of_sealtrail_toml_reaches_the_server(tmp_path: Path) -> None:
    config = tmp_path / "sealtrail.toml"
    config.write_text("[server]\nport = 9000\n\n[alerts.builtin.source-silent]\nabsent_for = 900\n")
    settings = load_settings(config)
    assert settings.port == 9000 and settings.alerts is not None
    assert {r.name: r.absent_for for r in settings.alerts.rules}["source-silent"] == 900
    config.write_text("[server]\nport = 9000\n")  # no [alerts] table: no alert engine
    assert load_settings(config).alerts is None and load_settings(None).alerts is None
    config.write_text("[alerts]\n")  # an empty table: every built-in rule, no sinks
    default = load_settings(config).alerts
    assert default is not None and default.enabled and not default.sinks
    assert {r.name for r in default.active_rules} >= {"failed-auth-burst-ip", "secret-alert", "integrity-fork"}
    config.write_text("[alerts]\nenabled = false\n")
    off = load_settings(config).alerts
    assert off is not None and not off.enabled
    config.write_text('[alerts.builtin.source-silent]\nabsent_for = "soon"\n')
    with pytest.raises(ValueError, match=r"sealtrail.toml: rule source-silent.absent_for: expected a number"):
        load_settings(config)
