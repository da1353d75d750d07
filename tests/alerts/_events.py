"""Realistic event sequences for the alert tests, made from real payloads through the real adapters.

Not a test module. GitHub payloads are octokit's webhook examples (_github_fixtures), GitLab
ones GitLab's documented examples (_gl_fixtures), sshd lines fail2ban's sample logs
(_syslog_fixtures). Where a case needs a field the example lacks (an approving review, an
admin role, a later time), the copy is changed in that field only, as tests/sources do.
Each event goes through the adapter and `prepare`, and comes back as the stored envelope.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import orjson

from _github_fixtures import webhook_examples
from _syslog_fixtures import fail2ban_logs
from sealtrail.alerts import Alert, Engine
from sealtrail.event import format_time, prepare
from sealtrail.sources import github, gitlab, syslog

__all__ = [
    "BRUTE_FORCE_LINE",
    "FAIL2BAN_NOW",
    "T0",
    "at",
    "feed",
    "github_event",
    "github_payload",
    "gitlab_event",
    "later",
    "restamped",
    "sshd_block",
    "sshd_envelopes",
    "sshd_events",
    "sshd_line",
    "stored",
]

FAIL2BAN_NOW = datetime(2005, 8, 14, 10, 0, tzinfo=UTC)
"""fail2ban's tests run at this moment: the year of its BSD timestamps follows from it."""
T0 = datetime(2005, 8, 1, 12, 0, tzinfo=UTC)
"""When the test sequences start (in fail2ban's year, so BSD timestamps read back as written)."""
BRUTE_FORCE_LINE = "Failed password for invalid user ROOT from 194.117.26.69"
"""A real sshd line of fail2ban's sample log, replayed as a brute force."""

_deliveries = itertools.count(1)


def at(moment: datetime) -> str:
    return format_time(moment)


def stored(envelope: Mapping[str, Any], received: str | None = None) -> dict[str, Any]:
    """The envelope as sealtrail stores it (validated by `prepare`, read back from the entry bytes)."""
    time = envelope.get("time")
    entry = prepare(dict(envelope), received=received or (time if isinstance(time, str) else None)).entry
    decoded: dict[str, Any] = orjson.loads(entry)
    return decoded


@cache
def _examples() -> dict[tuple[str, str | None], list[dict[str, Any]]]:
    by_kind: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
    for example in sorted(webhook_examples(), key=lambda e: e.origin != "api.github.com"):
        by_kind.setdefault((example.event, example.payload.get("action")), []).append(example.payload)
    return by_kind


def github_payload(event: str, action: str | None = None, number: int = 0) -> dict[str, Any]:
    """A private copy of a real octokit example (api.github.com first, then the GHES versions)."""
    return copy.deepcopy(_examples()[(event, action)][number])


def github_event(event: str, payload: dict[str, Any], received: str | None = None) -> dict[str, Any]:
    """One GitHub delivery through the adapter, as stored."""
    [envelope] = github.to_envelopes(event, f"delivery-{next(_deliveries)}", payload, "acme-github")
    return stored(envelope, received)


def gitlab_event(header: str, payload: dict[str, Any], received: str | None = None) -> dict[str, Any]:
    """One GitLab webhook through the adapter, as stored."""
    [envelope] = gitlab.to_envelopes(header, copy.deepcopy(payload), "acme-gitlab", f"gl-{next(_deliveries)}")
    return stored(envelope, received)


def sshd_line(pattern: str, number: int = 0) -> str:
    """The `number`-th line of fail2ban's sshd sample log that contains `pattern`."""
    lines = [line for line in _sshd_lines() if pattern in line and not line.startswith("#")]
    return lines[number]


@cache
def _sshd_lines() -> tuple[str, ...]:
    return tuple((Path(fail2ban_logs()) / "sshd").read_text(encoding="utf-8").splitlines())


def sshd_block(first: str, last: str) -> list[str]:
    """The sample log's lines from the one containing `first` to the one containing `last`, comments left out."""
    lines = _sshd_lines()
    start = next(n for n, line in enumerate(lines) if first in line)
    end = next(n for n in range(start, len(lines)) if last in lines[n])
    return [line for line in lines[start : end + 1] if line.strip() and not line.startswith("#")]


_BSD_STAMP = re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d")
_PORT = re.compile(r" port \d+")
_FROM = re.compile(r" from (\S+)")


def restamped(line: str, moment: datetime, *, port: int | None = None, address: str | None = None) -> str:
    """A real sshd line with its BSD timestamp (and, if given, its port or peer address) replaced."""
    text = _BSD_STAMP.sub(f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S}", line, count=1)
    if port is not None:
        text = _PORT.sub(f" port {port}", text, count=1)
    if address is not None:
        text = _FROM.sub(f" from {address}", text, count=1)
    return text


def sshd_envelopes(lines: Iterable[str], host_id: str = "bastion-01") -> list[dict[str, Any]]:
    """Syslog lines through the parser and the adapter: the envelopes a syslog listener would submit."""
    out: list[dict[str, Any]] = []
    for line in lines:
        message = syslog.parse_message(line.encode(), received=FAIL2BAN_NOW)
        out.extend(dict(envelope) for envelope in syslog.to_envelopes(message, host_id))
    return out


def sshd_events(
    lines: Iterable[str], host_id: str = "bastion-01", received: datetime = FAIL2BAN_NOW
) -> list[dict[str, Any]]:
    """Syslog lines through the parser and the adapter, as stored (received at `received`)."""
    out = []
    for line in lines:
        message = syslog.parse_message(line.encode(), received=FAIL2BAN_NOW)
        for envelope in syslog.to_envelopes(message, host_id):
            out.append(stored(envelope, at(received)))
    return out


def feed(engine: Engine, events: Iterable[Mapping[str, Any]], start: int = 0) -> list[Alert]:
    """Every alert the engine fires over `events`, indexed from `start` as if appended in order."""
    alerts: list[Alert] = []
    for index, envelope in enumerate(events, start):
        alerts.extend(engine.observe(index, envelope))
    return alerts


def later(moment: str, **delta: float) -> str:
    return at(datetime.fromisoformat(moment) + timedelta(**delta))
