"""Metrics of one app: event counters after the ack, the sequencer's gauges, the audit, other components' status.

Every check reads the exposition text back with prometheus_client's own parser, as Prometheus would.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from _support import attacker_connection, devsecops_event, devsecops_events, wait_for
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.integrity import IntegrityMonitor
from sealtrail.log import Log
from sealtrail.metrics import OTHER, STATUS_METRICS, Metrics, reject_reason

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> Samples:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    out: Samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def by_labels(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def test_appended_events_are_counted_by_source_kind_and_outcome_and_repeats_by_source(log: Log) -> None:
    metrics = Metrics()
    raw = [devsecops_event(n, "counted") for n in range(40)]
    prepared = [prepare(orjson.dumps(event)) for event in raw]
    metrics.record_appended(prepared, log.append(prepared), ack_seconds=0.002)
    expected = Counter((e["source"]["id"], e["kind"], e.get("outcome", "unknown")) for e in raw)
    samples = scrape(metrics)
    counted = {
        (dict(labels)["source"], dict(labels)["kind"], dict(labels)["outcome"]): v
        for labels, v in by_labels(samples, "sealtrail_events_ingested_total").items()
    }
    assert counted == expected
    assert by_labels(samples, "sealtrail_events_duplicate_total") == {}
    assert value(samples, "sealtrail_ack_duration_seconds_count") == 1
    assert value(samples, "sealtrail_ack_duration_seconds_bucket", le="0.0025") == 1

    repeats = prepared[:10]  # the same events again: acknowledged with the original index, nothing written
    metrics.record_appended(repeats, log.append(repeats))
    samples = scrape(metrics)
    assert log.size == 40
    assert sum(by_labels(samples, "sealtrail_events_ingested_total").values()) == 40
    duplicates = {dict(k)["source"]: v for k, v in by_labels(samples, "sealtrail_events_duplicate_total").items()}
    assert duplicates == Counter(e["source"]["id"] for e in raw[:10])


def test_label_combinations_are_capped_and_the_rest_counted_as_other(log: Log) -> None:
    metrics = Metrics(max_event_series=3)
    events = [prepare({"source": {"type": "api", "id": f"s{n}"}, "kind": "deploy"}) for n in range(5)]
    metrics.record_appended(events, log.append(events))
    counted = {dict(k)["source"]: v for k, v in by_labels(scrape(metrics), "sealtrail_events_ingested_total").items()}
    assert counted == {"s0": 1, "s1": 1, "s2": 1, OTHER: 2}


def test_the_sequencer_gauges_follow_the_log(data_dir: DataDir) -> None:
    log = data_dir.open_log(checkpoint_interval=3600)
    try:
        metrics = Metrics()
        metrics.watch_log(log.stats, log.origin, "9.9.9")
        before = scrape(metrics)
        assert value(before, "sealtrail_log_info", origin=log.origin, version="9.9.9") == 1
        assert value(before, "sealtrail_tree_size") == 0
        assert value(before, "sealtrail_checkpoint_pending_seconds") == 0

        log.append(devsecops_events(0, 25, "gauges"))
        log.append(devsecops_events(25, 5, "gauges"))
        after = scrape(metrics)
        assert value(after, "sealtrail_tree_size") == 30
        assert value(after, "sealtrail_checkpoint_size") == 0  # the interval is an hour: nothing signed yet
        assert value(after, "sealtrail_sequencer_batches_total") == 2
        assert value(after, "sealtrail_sequencer_batch_events_total") == 30
        assert (value(after, "sealtrail_sequencer_batch_seconds_total") or 0) > 0
        assert value(after, "sealtrail_sequencer_queue_events") == 0
        assert log.stats().unsigned_since is not None
        wait_for(lambda: (value(scrape(metrics), "sealtrail_checkpoint_pending_seconds") or 0) > 0)

        log.sign_now()
        signed = scrape(metrics)
        assert value(signed, "sealtrail_checkpoint_size") == 30
        assert value(signed, "sealtrail_checkpoint_pending_seconds") == 0
        age = value(signed, "sealtrail_checkpoint_age_seconds")
        assert age is not None and age >= 0
        assert value(signed, "sealtrail_checkpoint_sign_failures_total") == 0
    finally:
        log.close()


def test_a_checkpoint_that_cannot_be_stored_is_counted_and_the_entries_wait(data_dir: DataDir) -> None:
    log = data_dir.open_log(checkpoint_interval=0)
    metrics = Metrics()
    metrics.watch_log(log.stats, log.origin, "test")
    attacker = attacker_connection(data_dir.db)
    attacker.execute("DROP TABLE checkpoints")  # every later checkpoint write fails
    attacker.close()
    try:
        assert len(log.append(devsecops_events(0, 4, "unsigned"))) == 4  # events are still accepted
        wait_for(lambda: (value(scrape(metrics), "sealtrail_checkpoint_sign_failures_total") or 0) >= 1)
        wait_for(lambda: (value(scrape(metrics), "sealtrail_checkpoint_pending_seconds") or 0) > 0)
        assert value(scrape(metrics), "sealtrail_checkpoint_size") == 0
    finally:
        with pytest.raises(sqlite3.OperationalError, match="checkpoints"):
            log.close()  # the final checkpoint cannot be stored either


def test_queue_depth_grows_while_the_store_is_stalled_and_drains_after(data_dir: DataDir) -> None:
    log = data_dir.open_log(checkpoint_interval=3600)
    metrics = Metrics()
    metrics.watch_log(log.stats, log.origin, "test")
    blocker = sqlite3.connect(data_dir.db, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the database: commits wait (busy_timeout)
        first = log.submit(devsecops_events(0, 10, "stall"))
        second = log.submit(devsecops_events(10, 7, "stall"))
        wait_for(lambda: value(scrape(metrics), "sealtrail_sequencer_queue_events") == 17)
        blocker.execute("ROLLBACK")
        assert len(first.result(timeout=30)) == 10 and len(second.result(timeout=30)) == 7
        assert value(scrape(metrics), "sealtrail_sequencer_queue_events") == 0
    finally:
        blocker.close()
        log.close()


def test_the_audit_result_is_exported_and_flips_when_the_store_is_tampered(log: Log, data_dir: DataDir) -> None:
    log.append(devsecops_events(0, 20, "audit"))
    monitor = IntegrityMonitor(data_dir.db, data_dir.verifier(), 60, log, [])
    metrics = Metrics()
    metrics.watch_integrity(monitor.status)
    idle = scrape(metrics)
    assert value(idle, "sealtrail_verify_interval_seconds") == 60
    assert value(idle, "sealtrail_verify_ok") is None  # no audit yet: no result to report

    monitor.run_once()
    passed = scrape(metrics)
    assert value(passed, "sealtrail_verify_ok") == 1
    assert value(passed, "sealtrail_verify_checked_size") == 20
    assert value(passed, "sealtrail_verify_runs_total", result="ok") == 1
    success = value(passed, "sealtrail_verify_last_success_timestamp_seconds")
    assert success is not None and abs(success - time.time()) < 600

    attacker = attacker_connection(data_dir.db)
    attacker.execute("DELETE FROM events WHERE idx = 19")
    attacker.close()
    monitor.run_once()
    failed = scrape(metrics)
    assert value(failed, "sealtrail_verify_ok") == 0
    assert value(failed, "sealtrail_verify_runs_total", result="failed") == 1
    assert value(failed, "sealtrail_verify_last_success_timestamp_seconds") == success


def test_other_components_provide_their_status_under_catalogued_names() -> None:
    metrics = Metrics()
    lag = {"splunk": 12.0, "elastic": 0.0}
    metrics.provide("forwarder_lag_events", lambda: lag)
    metrics.provide("witness_policy_met", lambda: 1)
    metrics.provide("alerts_fired", lambda: {"force-push-to-main": 3})
    samples = scrape(metrics)
    assert value(samples, "sealtrail_forwarder_lag_events", sink="splunk") == 12
    assert value(samples, "sealtrail_forwarder_lag_events", sink="elastic") == 0
    assert value(samples, "sealtrail_witness_policy_met") == 1
    assert value(samples, "sealtrail_alerts_fired_total", rule="force-push-to-main") == 3
    lag["splunk"] = 40.0  # pulled at scrape time
    assert value(scrape(metrics), "sealtrail_forwarder_lag_events", sink="splunk") == 40
    with pytest.raises(KeyError, match="unknown status metric 'made_up'"):
        metrics.provide("made_up", lambda: 1)


def test_a_failing_or_mistyped_provider_leaves_only_its_own_metric_out(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()

    def broken() -> float:
        raise ConnectionError("witness unreachable")

    metrics.provide("witness_policy_met", broken)
    metrics.provide("archive_ok", lambda: {"not": 1.0})  # per-item answer for a single-number metric
    metrics.provide("mirror_ok", lambda: 1.0)  # single number for a per-log metric
    metrics.provide("archive_size", lambda: 77)
    samples = scrape(metrics)
    assert value(samples, "sealtrail_archive_size") == 77
    names = {name for name, _ in samples}
    assert not names & {"sealtrail_witness_policy_met", "sealtrail_archive_ok", "sealtrail_mirror_ok"}
    assert sum("status provider for sealtrail_" in r.getMessage() for r in caplog.records) == 3


def test_every_catalogued_status_metric_is_exported_under_its_documented_name() -> None:
    metrics = Metrics()
    for name, spec in STATUS_METRICS.items():
        metrics.provide(name, (lambda: {"x": 1.0}) if spec.label else (lambda: 1.0))
    names = {name for name, _ in scrape(metrics)}
    for name, spec in STATUS_METRICS.items():
        assert f"sealtrail_{name}{'_total' if spec.kind == 'counter' else ''}" in names


def test_openmetrics_is_served_when_asked_for() -> None:
    metrics = Metrics()
    body, content_type = metrics.exposition("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.endswith(b"# EOF\n")


@pytest.mark.parametrize(
    ("status", "reason"),
    [(400, "malformed"), (401, "unauthenticated"), (403, "forbidden"), (413, "too_large"), (418, "http_418")],
)
def test_reject_reasons_are_a_short_fixed_vocabulary(status: int, reason: str) -> None:
    assert reject_reason(status) == reason


def test_each_app_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.record_rejected("/v1/events", 401)
    assert value(scrape(first), "sealtrail_ingest_rejected_total", route="/v1/events", reason="unauthenticated") == 1
    assert (
        value(scrape(second), "sealtrail_ingest_rejected_total", route="/v1/events", reason="unauthenticated") is None
    )
