"""Event queries matched against decoded envelopes (legal holds, erasure)."""

from __future__ import annotations

from typing import Any

import pytest

from sealtrail.query import EventQuery, QueryError, names_subject


def envelope(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "id": "0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5f",
        "time": "2026-10-05T12:00:00.000000Z",
        "received": "2026-10-05T12:00:01.000000Z",
        "source": {"type": "syslog", "id": "bastion-01"},
        "kind": "auth.failure",
        "action": "sshd.failed_password",
        "outcome": "failure",
        "actor": {"name": "mallory", "ip": "203.0.113.9"},
        "target": {"type": "host", "id": "bastion-01.acme.internal"},
        "attrs": {"port": 40022, "message": "Failed password for root"},
        "salt": "AAAAAAAAAAAAAAAAAAAAAA==",
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor:mallory", True),
        ("actor:Mallory", False),  # exact, as in `sealtrail search`
        ("actor:203.0.113.9", True),
        ("actor:alice", False),
        ("actor:mallory since:2026-10-01", True),
        ("actor:mallory since:2026-10-06", False),
        ("until:2026-10-05T12:00:00Z", False),
        ("until:2026-10-05T12:00:00.000001Z", True),
        ("kind:auth", True),  # a dotted prefix
        ("kind:auth.failure", True),
        ("kind:aut", False),
        ("source:syslog", True),
        ("source:bastion-01", True),
        ("target:bastion-01.acme.internal env:prod", False),
        ('"Failed password"', True),
        ("PASSWORD", True),
        ("pass", False),
        ("pass*", True),
        ("outcome:failure root", True),
        ("40022", True),
    ],
)
def test_terms(query: str, expected: bool) -> None:
    assert EventQuery.parse(query).matches(envelope()) is expected


def test_free_words_reach_past_what_the_search_index_keeps() -> None:
    """The index caps an event's text at 4096 characters and skips out-of-line raw; holds and erasure may not."""
    long = envelope(raw={"log": "x " * 5000 + "needle-in-haystack"})
    assert EventQuery.parse("haystack").matches(long)


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "empty"), ("since:yesterday", "not a time"), ('"open', "query"), ("kind:auth.*", "kind")],
)
def test_malformed_queries_name_the_problem(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        EventQuery.parse(query)


def test_only_free_words_need_the_raw_payload() -> None:
    assert not EventQuery.parse("actor:alice kind:auth").needs_raw
    assert EventQuery.parse("actor:alice stripe").needs_raw


def test_names_subject_finds_the_subject_anywhere_as_a_whole_word() -> None:
    alice = names_subject("alice")
    assert alice.matches(envelope(actor={"id": "ALICE"}))
    assert alice.matches(envelope(actor=None, target={"id": "payments/alice-edit"}))
    assert alice.matches(envelope(actor=None, raw={"user": {"email": "alice@acme.example"}}))
    assert alice.matches(envelope(actor=None, attrs={"reviewers": ["bob", "alice"]}))
    assert not alice.matches(envelope(actor={"name": "malice"}))
    assert not alice.matches(envelope())
    with pytest.raises(QueryError):
        names_subject("  ")
