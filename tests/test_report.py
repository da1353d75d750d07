"""Compliance reports from real source payloads: approvals, production deploys, access changes, failed logins."""

from __future__ import annotations

import copy
import html.parser
from pathlib import Path
from typing import Any

import orjson
import pytest

from _github_fixtures import WebhookExample, webhook_examples
from _support import attacker_connection
from conftest import run_cli
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.log import Log
from sealtrail.report import Integrity, build_report, parse_instant
from sealtrail.sources import github, syslog

SINCE, UNTIL = parse_instant("2019-05-01"), parse_instant("2019-06-01")


def _example(event: str, number: int) -> dict[str, Any]:
    examples: list[WebhookExample] = webhook_examples()
    for example in examples:
        if example.origin == "api.github.com" and example.event == event and example.number == number:
            return copy.deepcopy(example.payload)
    raise LookupError(f"{event}[{number}] not in the octokit examples")


def _merged(number: int, merged_by: str) -> dict[str, Any]:
    """The octokit `pull_request closed` example, as GitHub sends it when the PR was merged."""
    payload = _example("pull_request", 3)
    payload["number"] = payload["pull_request"]["number"] = number
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["merged_at"] = payload["pull_request"]["closed_at"]
    payload["pull_request"]["merge_commit_sha"] = "c4295bd74fb0f4fbd4a8e5b5bd4dbb0bd8e7c6a1"
    payload["pull_request"]["merged_by"] = copy.deepcopy(payload["sender"]) | {"login": merged_by}
    return payload


def _review(number: int, reviewer: str, state: str) -> dict[str, Any]:
    payload = _example("pull_request_review", 0)
    payload["pull_request"]["number"] = number
    payload["review"]["state"] = state
    payload["review"]["user"]["login"] = reviewer
    payload["sender"]["login"] = reviewer
    return payload


def _sshd(line: str) -> list[dict[str, Any]]:
    message = syslog.parse_message(line.encode(), 2019)
    return [dict(e) for e in syslog.to_envelopes(message, "bastion")]


def _events() -> list[dict[str, Any]]:
    deliveries = [
        ("pull_request_review", _review(2, "hubot", "approved")),  # independent approval of #2
        ("pull_request", _merged(2, "Codertocat")),
        ("pull_request_review", _review(3, "Codertocat", "approved")),  # the author approving #3 themselves
        ("pull_request_review", _review(3, "hubot", "commented")),  # a comment is not an approval
        ("pull_request", _merged(3, "Codertocat")),
        ("deployment_status", _example("deployment_status", 0)),  # production
        ("deployment_status", _example("deployment_status", 1)),  # github-pages: not production
        ("member", _example("member", 0)),
    ]
    events = [
        dict(envelope)
        for n, (name, payload) in enumerate(deliveries)
        for envelope in github.to_envelopes(name, f"delivery-{n}", payload, "acme-github")
    ]
    member = events[-1]
    assert member["kind"] == "access.change" and "time" not in member
    member["time"] = "2019-05-15T15:30:00.000000Z"  # a member payload has no timestamp: received at this time
    failed = "bastion sshd[4012]: Failed password for"
    for port in (52311, 52312, 52313):
        events += _sshd(f"<38>May 15 15:21:0{port % 10} {failed} root from 203.0.113.7 port {port} ssh2")
    events += _sshd(f"<38>May 15 15:22:00 {failed} alice from 198.51.100.4 port 4000 ssh2")
    events += _sshd(f"<38>Jun 15 15:22:00 {failed} alice from 198.51.100.4 port 4001 ssh2")
    return events


@pytest.fixture
def filled(data_dir: DataDir, log: Log) -> tuple[list[dict[str, Any]], tuple[int, bytes]]:
    events = _events()
    log.append([prepare(event) for event in events])
    return events, log.sign_now()


def _decoded(data_dir: DataDir, size: int) -> list[tuple[int, dict[str, Any]]]:
    store = data_dir.store()
    try:
        return [(i, orjson.loads(e)) for i, e in store.entries(0, size)]
    finally:
        store.close()


def _integrity(size: int, note: bytes) -> Integrity:
    return Integrity("test.sealtrail.local/log", size, "root", note.decode(), [], None, "")


def test_report_from_real_payloads(data_dir: DataDir, filled: tuple[list[dict[str, Any]], tuple[int, bytes]]) -> None:
    _, (size, note) = filled
    entries = _decoded(data_dir, size)
    report = build_report(entries, since=SINCE, until=UNTIL, integrity=_integrity(size, note), generated="now")

    by_number = {c.number: c for c in report.changes}
    assert set(by_number) == {2, 3}
    assert by_number[2].approvers == ["hubot"] and by_number[2].independently_approved
    assert by_number[3].approvers == ["Codertocat"] and not by_number[3].independently_approved
    assert report.unapproved_changes == [by_number[3]]
    for change in report.changes:  # each row names the entry it comes from
        assert entries[change.index][1]["kind"] == "code.merge"
        assert all(entries[i][1]["kind"] == "code.review" for i in change.approval_indices)

    assert [(d.env, d.outcome) for d in report.deploys] == [("production", "success")]
    assert [a.action for a in report.access_changes] == ["member.added"]
    failures = {(f.actor, f.ip): f.count for f in report.auth_failures}
    assert failures == {("root", "203.0.113.7"): 3, ("alice", "198.51.100.4"): 1}  # the June one is outside


def test_a_period_before_the_merges_sees_none_of_them(
    data_dir: DataDir, filled: tuple[list[dict[str, Any]], tuple[int, bytes]]
) -> None:
    _, (size, note) = filled
    entries = _decoded(data_dir, size)
    early = build_report(
        entries,
        since=parse_instant("2019-01-01"),
        until=parse_instant("2019-02-01"),
        integrity=_integrity(size, note),
        generated="now",
    )
    assert (early.changes, early.deploys, early.access_changes, early.auth_failures) == ([], [], [], [])


class _Text(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_cli_report_in_every_format(
    data_dir: DataDir, filled: tuple[list[dict[str, Any]], tuple[int, bytes]], tmp_path: Path
) -> None:
    _, (size, note) = filled
    base: list[str | Path] = ["report", "--dir", data_dir.path, "--from", "2019-05-01", "--to", "2019-06-01"]
    as_json = run_cli(*base, "--format", "json")
    assert as_json.code == 0, as_json.stderr
    data = orjson.loads(as_json.stdout)
    assert data["integrity"]["size"] == size and data["integrity"]["checkpoint"] == note.decode()
    assert data["integrity"]["verified"] is True
    assert data["summary"]["changes_without_independent_approval"] == 1
    assert data["summary"]["failed_authentications"] == 4

    as_md = run_cli(*base, "--format", "md")
    assert as_md.code == 0 and f"checkpoint of size {size}" in as_md.text and "| **NO** |" in as_md.text

    out = tmp_path / "report.html"
    as_html = run_cli(*base, "--format", "html", "--output", out)
    assert as_html.code == 0, as_html.stderr
    parser = _Text()
    parser.feed(out.read_text())
    text = " ".join(parser.text)
    assert "203.0.113.7" in text and "Codertocat/Hello-World" in text

    bad = run_cli(*base[:3], "--from", "yesterday-ish")
    assert bad.code == 1 and "is not a date" in bad.stderr


def test_report_says_when_the_log_fails_verification(
    data_dir: DataDir, filled: tuple[list[dict[str, Any]], tuple[int, bytes]]
) -> None:
    conn = attacker_connection(data_dir.db)
    try:
        conn.execute("UPDATE events SET entry = CAST(replace(CAST(entry AS TEXT), 'hubot', 'h0bot') AS BLOB)")
    finally:
        conn.close()
    result = run_cli("report", "--dir", data_dir.path, "--from", "2019-05-01", "--to", "2019-06-01", "-f", "json")
    assert result.code == 1
    assert "failed verification" in result.stderr
    assert orjson.loads(result.stdout)["integrity"]["verified"] is False
