"""Retention policies: configuration, planning, enforcement through the sequencer, legal holds, the schedule."""

from __future__ import annotations

import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from _support import devsecops_event
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedEvent, prepare
from sealtrail.log import Log
from sealtrail.redaction import commit_redactions
from sealtrail.retention import (
    RetentionConfig,
    RetentionPlan,
    RetentionScheduler,
    apply_retention,
    load_retention,
    parse_interval,
    plan_retention,
    retention_config,
)
from sealtrail.server.settings import load_settings
from sealtrail.verify import audit_store

SAMPLE = """
[retention]
default_days = 365
interval = "1h"

[[retention.policy]]
name = "ssh-logs"
source = "syslog"
kind = "auth.*"
days = 90

[[retention.policy]]
name = "deploys"
kind = "deploy"
days = "forever"

[[retention.hold]]
name = "incident-4711"
query = "actor:mallory since:2026-10-01"
"""

NOW = datetime(2027, 3, 1, tzinfo=UTC)


def received(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event(kind: str, source: tuple[str, str], days_ago: float, **extra: Any) -> PreparedEvent:
    body = {"source": {"type": source[0], "id": source[1]}, "kind": kind, **extra}
    return prepare(body, received=received(days_ago))


def test_the_sample_config_parses(tmp_path: Path) -> None:
    path = tmp_path / "sealtrail.toml"
    path.write_text(SAMPLE)
    config = load_retention(path)
    assert config.default_days == 365
    assert config.interval == 3600
    assert [(p.name, p.days, p.source, p.kind) for p in config.policies] == [
        ("ssh-logs", 90, "syslog", "auth.*"),
        ("deploys", None, None, "deploy"),
    ]
    assert [h.name for h in config.holds] == ["incident-4711"]
    assert load_settings(path).retention == config


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"default_day": 3}, "unknown setting 'default_day'"),
        ({"default_days": 0}, "default_days: expected a whole number of days"),
        ({"interval": "soon"}, "interval"),
        ({"policy": [{"name": "x", "days": 3}]}, r"policy\[1\]: give source and/or kind"),
        ({"policy": [{"name": "x", "kind": "a"}]}, r"policy\[1\].days: required"),
        ({"policy": [{"name": "x", "kind": "a", "days": 1.5}]}, "whole number"),
        ({"policy": [{"name": "x", "kind": "a", "days": 1}, {"name": "x", "kind": "b", "days": 1}]}, "used twice"),
        ({"policy": [{"name": "default", "kind": "a", "days": 1}]}, "used twice"),
        ({"policy": {"name": "x"}}, r"\[\[retention.policy\]\]"),
        ({"hold": [{"name": "h", "query": "kind:auth.*"}]}, r"hold\[1\].query: kind"),
        ({"hold": [{"name": "bad name", "query": "actor:a"}]}, "must be letters"),
    ],
)
def test_bad_config_names_the_key(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retention_config(table)


def test_intervals() -> None:
    assert [parse_interval(v) for v in ("90s", "15m", "1h", "1d", 30, "2")] == [90, 900, 3600, 86400, 30, 2]
    for bad in ("0s", "1w", True, -5):
        with pytest.raises(ValueError):
            parse_interval(bad)


@pytest.fixture
def config() -> RetentionConfig:
    return retention_config(tomllib.loads(SAMPLE)["retention"])


def test_the_first_matching_policy_decides_and_records_are_never_redacted(
    data_dir: DataDir, log: Log, config: RetentionConfig
) -> None:
    log.append(
        [
            event("auth.failure", ("syslog", "bastion-01"), 100),  # 0: ssh-logs, expired
            event("auth.failure", ("syslog", "bastion-01"), 80),  # 1: ssh-logs, kept
            event("deploy", ("jenkins", "ci"), 4000),  # 2: deploys: forever
            event("code.push", ("github", "gh"), 400),  # 3: default, expired
            event("code.push", ("github", "gh"), 300),  # 4: default, kept
            event("log.redaction", ("sealtrail", "retention"), 4000),  # 5: a record: never
        ]
    )
    store = data_dir.store()
    try:
        plan = plan_retention(store, config, NOW)
    finally:
        store.close()
    assert {name: p.indices for name, p in plan.policies.items()} == {"ssh-logs": [0], "default": [3]}
    assert plan.policies["ssh-logs"].cutoff == received(90)
    assert plan.total == 2 and plan.scanned == 6
    assert plan.to_json()["policies"][0]["ranges"] == [[0, 0]]


def test_enforcement_redacts_logs_a_record_per_policy_and_verify_passes(
    data_dir: DataDir, log: Log, config: RetentionConfig
) -> None:
    old = [event("auth.failure", ("syslog", "bastion-01"), 120, actor={"name": "root"}) for _ in range(3)]
    old += [prepare(devsecops_event(n), received=received(500)) for n in range(1, 4)]  # review, ci.run, deploy
    log.append([*old, event("code.push", ("github", "gh"), 10)])
    store = data_dir.store()
    try:
        run = apply_retention(log, store, config, NOW)
        assert run.redacted == 5  # the deploy (index 5) is kept forever
        assert [c.record.index for c in run.committed] == [7, 8]
        records = [orjson.loads(store.entry(c.record.index) or b"") for c in run.committed]
        first, second = records
        assert first["source"] == {"type": "sealtrail", "id": "retention"}
        assert first["kind"] == "log.redaction"
        assert first["attrs"] | {"cutoff": None} == {
            "policy": "ssh-logs",
            "days": 90,
            "cutoff": None,
            "count": 3,
            "ranges": [[0, 2]],
            "held": [],
            "part": [1, 1],
        }
        assert (second["attrs"]["policy"], second["attrs"]["ranges"]) == ("default", [[3, 4]])
        assert [store.entry(i) for i in range(5)] == [None] * 5
        assert store.entry(5) is not None
        assert [r.reason for r in store.redactions(0, 10)] == ["retention:ssh-logs"] * 3 + ["retention:default"] * 2
        assert apply_retention(log, store, config, NOW).committed == []  # nothing left to do
        log.sign_now()
        report = audit_store(store, data_dir.verifier())
        assert report.redacted_ranges == [[0, 4]]
    finally:
        store.close()


def test_a_legal_hold_prevents_redaction(data_dir: DataDir, log: Log, config: RetentionConfig) -> None:
    def login(name: str, when: str) -> Any:
        body = {"source": {"type": "otlp", "id": "gw"}, "kind": "auth.success", "actor": {"name": name}, "time": when}
        return prepare(body, received=received(400))

    log.append(
        [
            login("mallory", "2026-10-02T00:00:00Z"),  # held
            login("mallory", "2026-09-01T00:00:00Z"),  # before the hold's window
            login("alice", "2026-10-02T00:00:00Z"),
        ]
    )
    store = data_dir.store()
    try:
        run = apply_retention(log, store, config, NOW)
        assert [r.index for c in run.committed for r in c.redactions] == [1, 2]
        assert run.plan.policies["default"].withheld == {"incident-4711": [0]}
        assert store.entry(0) is not None
        record = orjson.loads(store.entry(run.committed[0].record.index) or b"")
        assert record["attrs"]["held"] == [{"hold": "incident-4711", "count": 1}]
    finally:
        store.close()


def test_a_body_redacted_by_another_writer_after_planning_means_one_new_plan(
    data_dir: DataDir, log: Log, config: RetentionConfig
) -> None:
    log.append([event("code.push", ("github", "gh"), 400) for _ in range(3)])
    plans: list[list[int]] = []

    def meanwhile(plan: RetentionPlan) -> None:
        plans.append(plan.policies["default"].indices)
        if len(plans) == 1:  # e.g. an erasure commits between this plan and its commit
            commit_redactions(log, [1], source_id="erasure", kind="log.erasure", action="t", reason="t", attrs={})

    store = data_dir.store()
    try:
        run = apply_retention(log, store, config, NOW, on_plan=meanwhile)
    finally:
        store.close()
    assert plans == [[0, 1, 2], [0, 2]]
    assert [r.index for c in run.committed for r in c.redactions] == [0, 2]


def test_serve_enforces_on_its_schedule(data_dir: DataDir, log: Log, config: RetentionConfig) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(3)])  # received now
    store = data_dir.store()
    scheduler = RetentionScheduler(log, store, config, 3600, clock=lambda: datetime.now(UTC) + timedelta(days=400))
    try:
        scheduler.start()
        deadline = time.monotonic() + 30
        while scheduler.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scheduler.runs == 1
        assert [r.index for r in store.redactions(0, 10)] == [0, 1, 2]
    finally:
        scheduler.stop()
        store.close()
