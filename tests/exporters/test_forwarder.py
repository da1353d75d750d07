"""Forwarders end to end: at-least-once delivery into real loopback receivers, cursors that survive kill -9.

The Elasticsearch receiver (see _receivers.py) fails 30% of requests on
purpose — 429 before storing, 503 after storing (a lost answer), 200 with
per-item errors — and keeps `create` semantics, so "every leaf hash exactly
once" is what a real cluster would hold.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from _support import devsecops_events, rfc6962_leaf, stored_entries
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.exporters.config import ForwardConfig
from sealtrail.exporters.cursor import CursorStore
from sealtrail.exporters.forwarder import ForwarderGroup, cursor_path
from sealtrail.exporters.sinks import SplunkHecSink
from sealtrail.exporters.sinks.http import make_client
from sealtrail.log import Log
from sealtrail.redaction import commit_redactions
from sealtrail.server import Settings, create_app

from ._receivers import BulkReceiver, HecReceiver, serve

FAST: dict[str, Any] = {"backoff_initial": 0.001, "max_backoff": 0.02, "poll_interval": 0.05}


def _leaves(directory: DataDir) -> dict[int, str]:
    """Leaf hash (hex) of every stored entry, computed here from the entry bytes."""
    return {index: rfc6962_leaf(entry).hex() for index, entry in stored_entries(directory.db)}


def _wait(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.01)


def _forward_all(directory: DataDir, *configs: ForwardConfig, max_failures: int | None = None) -> ForwarderGroup:
    group = ForwarderGroup(directory.path, configs)
    group.start(until_end=True, max_failures=max_failures)
    assert group.wait(120), "the forwarders did not finish"
    return group


@pytest.fixture
def receiver_url() -> Iterator[tuple[BulkReceiver, str]]:
    receiver = BulkReceiver(failure_rate=0.3, seed=20261126, api_key="es-test-key")
    with serve(receiver) as url:
        yield receiver, url


def test_every_event_lands_exactly_once_in_an_index_that_fails_30_percent(
    data_dir: DataDir, log: Log, receiver_url: tuple[BulkReceiver, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver, url = receiver_url
    log.append(devsecops_events(0, 400, "bulk"))
    monkeypatch.setenv("TEST_ES_API_KEY", "es-test-key")
    config = ForwardConfig(
        name="es", type="elasticsearch", url=url, index="audit", api_key_env="TEST_ES_API_KEY", batch_size=10, **FAST
    )
    group = _forward_all(data_dir, config)

    assert group.results == {"es": True}
    leaves = _leaves(data_dir)
    assert set(receiver.docs) == set(leaves.values()), "every leaf hash is in the index, and nothing else"
    assert set(receiver.stored.values()) == {1}
    for index, leaf in leaves.items():
        doc = receiver.docs[leaf]
        assert doc["sealtrail"]["index"] == index and doc["sealtrail"]["leaf_hash"] == leaf
        assert doc["sealtrail"]["origin"] == log.origin
    # the failures really happened, and the lost answers were retried into 409s, not duplicates
    assert receiver.injected["429 before"] > 0 and receiver.injected["503 after"] > 0 and receiver.injected["item"] > 0
    assert receiver.conflicts > 0
    status = group.statuses()[0]
    assert (status.cursor, status.lag, status.tree_size) == (400, 0, 400)
    assert status.errors >= sum(receiver.injected.values()) - receiver.injected["item"]
    assert CursorStore(cursor_path(data_dir.path)).get("es") == 400


def _toml(url: str, **extra: Any) -> str:
    settings = {"batch_size": 20, "backoff_initial": 0.001, "max_backoff": 0.02, "poll_interval": 0.05, **extra}
    lines = ["[[forward]]", 'name = "es"', 'type = "elasticsearch"', f'url = "{url}"', 'index = "audit"']
    lines += ['api_key_env = "TEST_ES_API_KEY"']
    lines += [f"{key} = {value!r}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SEALTRAIL_DIR"}
    env["TEST_ES_API_KEY"] = "es-test-key"
    return env


def test_a_forwarder_killed_mid_stream_resumes_from_its_cursor(data_dir: DataDir, tmp_path: Path) -> None:
    with data_dir.open_log(checkpoint_interval=0) as opened:
        opened.append(devsecops_events(0, 600, "kill"))
    receiver = BulkReceiver(failure_rate=0.3, seed=99, api_key="es-test-key", hold_after=200)
    with serve(receiver) as url:
        config = tmp_path / "sealtrail.toml"
        config.write_text(_toml(url))
        command = [sys.executable, "-m", "sealtrail", "forward", "--dir", str(data_dir.path), "--config", str(config)]
        log_file = tmp_path / "forward.log"
        with log_file.open("wb") as stderr:
            proc = subprocess.Popen(command, env=_environment(), stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            _wait(lambda: receiver.holding > 0 or proc.poll() is not None, "the forwarder to reach 200 documents")
            assert proc.poll() is None, log_file.read_text()
            cursor = CursorStore(cursor_path(data_dir.path)).get("es")
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == -signal.SIGKILL
        assert cursor is not None and 0 < cursor <= len(receiver.docs) < 600, "killed mid-stream"
        receiver.hold_after = None
        receiver.release.set()
        _wait(lambda: receiver.holding == 0, "the held request to end")
        before_restart = len(receiver.first_index)

        again = subprocess.run([*command, "--once"], env=_environment(), capture_output=True, timeout=120)
        assert again.returncode == 0, again.stderr.decode()

    assert receiver.first_index[before_restart] == cursor, "the restart began exactly at the persisted cursor"
    leaves = _leaves(data_dir)
    assert set(receiver.docs) == set(leaves.values()), "no gaps"
    assert set(receiver.stored.values()) == {1}, "no duplicates"
    assert CursorStore(cursor_path(data_dir.path)).get("es") == 600


def test_redacted_entries_are_forwarded_as_redactions_without_stalling(data_dir: DataDir, log: Log) -> None:
    log.append(devsecops_events(0, 30, "redact"))
    leaves_before = _leaves(data_dir)
    commit_redactions(
        log, [3, 7], source_id="erasure", kind="log.erasure", action="erasure.request", reason="GDPR art. 17", attrs={}
    )
    receiver = BulkReceiver()
    with serve(receiver) as url:
        group = _forward_all(data_dir, ForwardConfig(name="es", type="elasticsearch", url=url, index="a", **FAST))
    assert group.results == {"es": True}
    size = log.size
    assert len(receiver.docs) == size == 31
    for index in (3, 7):
        doc = receiver.docs[leaves_before[index]]
        assert doc["sealtrail"]["redacted"] is True and doc["sealtrail"]["index"] == index
        assert doc["sealtrail"]["redaction"]["reason"] == "GDPR art. 17"
        assert doc["sealtrail"]["redaction"]["record_index"] == 30
        assert "user" not in doc and "source" not in doc
    record = next(doc for doc in receiver.docs.values() if doc["sealtrail"]["index"] == 30)
    assert record["sealtrail"]["kind"] == "log.erasure"
    assert group.statuses()[0].redacted == 2


def test_documents_the_index_refuses_become_dead_letters_and_the_cursor_moves_on(data_dir: DataDir, log: Log) -> None:
    log.append(devsecops_events(0, 50, "dead"))
    leaves = _leaves(data_dir)
    receiver = BulkReceiver(refuse_ids=frozenset({leaves[5], leaves[41]}))
    with serve(receiver) as url:
        group = _forward_all(data_dir, ForwardConfig(name="es", type="elasticsearch", url=url, index="a", **FAST))
    assert group.results == {"es": True}
    assert set(receiver.docs) == set(leaves.values()) - {leaves[5], leaves[41]}
    dead = CursorStore(cursor_path(data_dir.path)).dead_letters("es")
    assert [(row.index, row.leaf_hash) for row in dead] == [(5, leaves[5]), (41, leaves[41])]
    assert all("document_parsing_exception" in row.reason for row in dead)
    assert CursorStore(cursor_path(data_dir.path)).get("es") == 50
    assert group.statuses()[0].dead_letters == 2


def test_a_wrong_api_key_is_retried_and_never_logged(
    data_dir: DataDir, log: Log, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    log.append(devsecops_events(0, 5, "auth"))
    receiver = BulkReceiver(api_key="the-right-key")
    monkeypatch.setenv("TEST_ES_API_KEY", "wrong-secret-3f9a")
    with serve(receiver) as url, caplog.at_level(logging.DEBUG):
        config = ForwardConfig(
            name="es", type="elasticsearch", url=url, index="a", api_key_env="TEST_ES_API_KEY", **FAST
        )
        group = _forward_all(data_dir, config, max_failures=3)
        toml = tmp_path / "sealtrail.toml"
        toml.write_text(_toml(url))
        env = {**_environment(), "TEST_ES_API_KEY": "wrong-secret-3f9a"}
        command = [sys.executable, "-m", "sealtrail", "forward", "--once", "--max-failures", "2"]
        cli = subprocess.run(
            [*command, "--dir", str(data_dir.path), "--config", str(toml)], env=env, capture_output=True
        )
    assert group.results == {"es": False}
    status = group.statuses()[0]
    assert status.cursor == 0 and status.lag == 5 and "HTTP 401" in (status.last_error or "")
    assert receiver.authorizations[0] == "ApiKey wrong-secret-3f9a", "the key was sent, as an ApiKey header"
    assert "wrong-secret-3f9a" not in caplog.text
    assert cli.returncode == 1
    assert "HTTP 401" in cli.stderr.decode() and "wrong-secret-3f9a" not in cli.stderr.decode() + cli.stdout.decode()


def test_status_reports_cursor_and_lag(data_dir: DataDir, log: Log, tmp_path: Path, cli: Callable[..., Any]) -> None:
    log.append(devsecops_events(0, 12, "status"))
    receiver = BulkReceiver()
    with serve(receiver) as url:
        _forward_all(data_dir, ForwardConfig(name="es", type="elasticsearch", url=url, index="a", **FAST))
        log.append(devsecops_events(12, 3, "status"))
        config = tmp_path / "sealtrail.toml"
        config.write_text(_toml(url))
        result = cli("forward", "--status", "--dir", data_dir.path, "--config", config)
    assert result.code == 0, result.stderr
    assert result.text.split() == [
        "es",
        "elasticsearch",
        "tree",
        "size",
        "15",
        "cursor",
        "12",
        "lag",
        "3",
        "dead",
        "letters",
        "0",
    ]


# --- Splunk HEC ------------------------------------------------------------------------------------


def test_hec_sender_into_sealtrails_own_hec_receiver(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    """A second sealtrail (its real app, in process) collects what the first forwards over HEC."""
    log.append(devsecops_events(0, 40, "hec"))
    leaves = _leaves(data_dir)
    siem = DataDir(tmp_path / "siem")
    siem.init("siem.example/log")
    credentials = Credentials(siem.credentials)
    credentials.add_source("audit-hec", "hec")
    token, _ = credentials.create_token("hec", {"ingest"}, {"audit-hec"})
    app = create_app(siem, Settings(prepare_workers=0))
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Splunk {token}"
        sink = SplunkHecSink(client, "http://testserver")
        group = ForwarderGroup(
            data_dir.path, [ForwardConfig(name="hec", type="splunk_hec", url="http://x", token_env="X")]
        )
        group.start(until_end=True, sink_factory=lambda config: sink)
        assert group.wait(60)
    assert group.results == {"hec": True}
    store = siem.store()
    try:
        collected = [orjson.loads(entry) for _, entry in store.entries(0, store.size())]
    finally:
        store.close()
    assert len(collected) == 40
    for envelope in collected:
        assert envelope["kind"] == "hec.event" and envelope["source"] == {"type": "hec", "id": "audit-hec"}
        fields = envelope["attrs"]["fields"]
        index = int(fields["sealtrail_index"])
        assert fields["sealtrail_leaf_hash"] == leaves[index] == envelope["raw"]["sealtrail"]["leaf_hash"]
        assert envelope["attrs"]["sourcetype"] == "sealtrail:ecs"
    assert sorted(int(e["attrs"]["fields"]["sealtrail_index"]) for e in collected) == list(range(40))


@pytest.mark.parametrize("ack", [False, True])
def test_hec_sender_against_a_receiver_failing_30_percent(data_dir: DataDir, log: Log, ack: bool) -> None:
    log.append(devsecops_events(0, 120, "hec30"))
    leaves = _leaves(data_dir)
    receiver = HecReceiver("hec-token", failure_rate=0.3, seed=5)
    with serve(receiver) as url:
        sink = SplunkHecSink(
            make_client(verify=True, timeout=5, headers={"Authorization": "Splunk hec-token"}),
            url,
            ack=ack,
            ack_poll=0.001,
        )
        config = ForwardConfig(name="hec", type="splunk_hec", url=url, token_env="X", batch_size=10, **FAST)
        group = ForwarderGroup(data_dir.path, [config])
        group.start(until_end=True, sink_factory=lambda c: sink)
        assert group.wait(60)
    assert group.results == {"hec": True} and receiver.injected > 0
    seen = {event["fields"]["sealtrail_leaf_hash"] for event in receiver.events}
    assert seen == set(leaves.values()), "at least once: every event arrived"
    assert len(receiver.events) > len(leaves), "a lost answer means a resend: HEC has no idempotent write"
    assert (receiver.ack_polls > 0) == ack
    for event in receiver.events:
        index = int(event["fields"]["sealtrail_index"])
        assert event["event"]["sealtrail"]["index"] == index and event["sourcetype"] == "sealtrail:ecs"


# --- inside `serve` ---------------------------------------------------------------------------------


def test_serve_runs_the_configured_forwarders(tmp_path: Path) -> None:
    directory = DataDir(tmp_path / "log")
    directory.init("serve.example/log")
    credentials = Credentials(directory.credentials)
    credentials.add_source("ci", "api")
    token, _ = credentials.create_token("ingest", {"ingest", "read"})
    receiver = BulkReceiver(failure_rate=0.3, seed=3)
    with serve(receiver) as url:
        config = ForwardConfig(name="es", type="elasticsearch", url=url, index="a", **FAST)
        app = create_app(directory, Settings(prepare_workers=0, forward=(config,)))
        with TestClient(app) as client:
            events = [
                {"kind": "deploy", "action": f"deploy.{n}", "source": {"type": "api", "id": "ci"}} for n in range(9)
            ]
            response = client.post("/v1/events", json=events, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 200, response.text
            _wait(lambda: len(receiver.docs) == 9, "the serve forwarder to deliver")
            statuses = app.state.services.forwarders.statuses()
            _wait(lambda: app.state.services.forwarders.statuses()[0].lag == 0, "the cursor to catch up")
            metrics = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert statuses[0].name == "es"
    assert sorted(doc["sealtrail"]["index"] for doc in receiver.docs.values()) == list(range(9))
    assert metrics.status_code == 200, metrics.text
    assert 'sealtrail_forwarder_lag_events{sink="es"} 0.0' in metrics.text
    assert (
        'sealtrail_forwarder_errors_total{sink="es"}' in metrics.text or 'forwarder_errors{sink="es"}' in metrics.text
    )
