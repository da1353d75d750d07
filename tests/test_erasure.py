"""Erasure requests (GDPR Art. 17): every body naming the subject goes, the request stays on the record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from _support import devsecops_event
from sealtrail.datadir import DataDir
from sealtrail.erasure import erase, plan_erasure
from sealtrail.event import PreparedEvent, prepare
from sealtrail.log import Log
from sealtrail.query import EventQuery, names_subject
from sealtrail.redaction import record_lists
from sealtrail.retention import Hold
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.verify import audit_store
from sealtrail.view import LogView

SUBJECT = "erin.quasimodo"


def naming(subject: str) -> list[PreparedEvent]:
    """Events that name the subject in different places: actor, target, attrs, inline raw, out-of-line raw."""
    source = {"type": "api", "id": "idp"}
    events: list[dict[str, Any]] = [
        {"source": source, "kind": "auth.success", "actor": {"id": subject}},
        {"source": source, "kind": "access.change", "actor": {"name": "admin"}, "target": {"name": subject}},
        {"source": source, "kind": "code.review", "attrs": {"reviewers": ["bob", subject]}},
        {"source": source, "kind": "api.request", "raw": {"headers": {"x-user": f"{subject}@acme.example"}}},
        {"source": source, "kind": "ci.run", "raw": {"log": f"triggered by {subject} " * 6000}},  # a blob
    ]
    return [prepare(event) for event in events]


def file_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


def test_erasure_by_actor_removes_every_body_naming_them_and_leaves_a_verifiable_record(
    data_dir: DataDir, log: Log
) -> None:
    others = [prepare(devsecops_event(n)) for n in range(12)]
    subject_events = naming(SUBJECT)
    log.append(
        others[:6]
        + subject_events
        + others[6:]
        + [prepare({"kind": "deploy", "source": {"type": "api", "id": "x"}, "actor": {"name": "erin"}})]
    )
    log.sign_now()
    assert SUBJECT.encode() in file_bytes(data_dir.db)
    store = data_dir.store()
    try:
        run = erase(
            log, store, names_subject(SUBJECT), match="actor", request="DSAR-2026-0042", reason="Art. 17 request"
        )
        assert [r.index for c in run.committed for r in c.redactions] == list(range(6, 11))
        log.sign_now()
        assert SUBJECT.encode() not in file_bytes(data_dir.db)
        assert store.entry(17) is not None, "another erin is not the subject"

        record_index = run.committed[0].record.index
        record_entry = store.entry(record_index)
        assert record_entry is not None
        record = orjson.loads(record_entry)
        assert record["source"] == {"type": "sealtrail", "id": "erasure"}
        assert record["kind"] == "log.erasure"
        assert record["attrs"] | {"part": None} == {
            "request": "DSAR-2026-0042",
            "match": "actor",
            "reason": "Art. 17 request",
            "held": [],
            "count": 5,
            "ranges": [[6, 10]],
            "part": None,
        }
        assert b"erin" not in record_entry
        assert all(record_lists(record_entry, i) for i in range(6, 11))

        report = audit_store(store, data_dir.verifier())
        assert report.redacted_ranges == [[6, 10]] and report.redaction_records == [record_index]
        verifier = data_dir.verifier()
        proof = LogView(store).tlog_proof(record_index).encode()
        verify_tlog_proof(proof, verifier.name, [verifier], record_entry)
    finally:
        store.close()


def test_a_legal_hold_wins_over_erasure_and_is_on_the_record(data_dir: DataDir, log: Log) -> None:
    log.append(naming(SUBJECT))
    holds = (Hold("litigation-7", EventQuery.parse("kind:access.change")),)
    store = data_dir.store()
    try:
        run = erase(log, store, names_subject(SUBJECT), match="actor", request="R-1", holds=holds)
        assert run.plan.withheld == {"litigation-7": [1]}
        assert store.entry(1) is not None
        assert [r.index for c in run.committed for r in c.redactions] == [0, 2, 3, 4]
        record = orjson.loads(store.entry(run.committed[0].record.index) or b"")
        assert record["attrs"]["held"] == [{"hold": "litigation-7", "count": 1}]
    finally:
        store.close()


def test_a_request_that_matches_nothing_is_still_recorded(data_dir: DataDir, log: Log) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(3)])
    store = data_dir.store()
    try:
        run = erase(log, store, EventQuery.parse("actor:nobody"), match="query", request="R-2")
        assert run.redacted == 0
        record = orjson.loads(store.entry(3) or b"")
        assert (record["kind"], record["attrs"]["count"], record["attrs"]["ranges"]) == ("log.erasure", 0, [])
        assert list(store.redactions(0, 10)) == []
    finally:
        store.close()


def test_erasure_by_query_and_the_plan_writes_nothing(data_dir: DataDir, log: Log) -> None:
    log.append([prepare(devsecops_event(n)) for n in range(20)])
    store = data_dir.store()
    try:
        query = EventQuery.parse("source:bastion-01 kind:auth.failure")
        plan = plan_erasure(store, query, match="query")
        assert plan.indices == [4, 14]
        assert store.size() == 20
        run = erase(log, store, query, match="query", request="R-3")
        assert run.redacted == 2 and store.entry(4) is None and store.entry(5) is not None
        assert plan_erasure(store, query, match="query").indices == []
    finally:
        store.close()
