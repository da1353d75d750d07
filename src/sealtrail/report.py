"""Compliance reports over a period: changes and their approvals, production deploys, access changes,
failed authentication, and the integrity status they rest on.

Invariant: a report is a pure function of the entries [0, size) of one signed
checkpoint (named in the report) and the period; every row carries the log
index of the event it comes from, so anyone holding the log (or an evidence
bundle of those indices) can re-derive each figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .envelope import value_at

__all__ = [
    "AccessChange",
    "AuthFailures",
    "Change",
    "Deploy",
    "Integrity",
    "Report",
    "build_report",
    "parse_instant",
]

PRODUCTION = frozenset({"prod", "production", "live"})
"""env labels (and GitLab environment tiers) counted as production unless told otherwise."""


def parse_instant(text: str) -> str:
    """A date (YYYY-MM-DD, midnight UTC) or RFC 3339 time, as the canonical envelope time for comparisons."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not a date (2026-11-01) or an RFC 3339 time (2026-11-01T09:00:00Z)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Change:
    """A merged change (pull or merge request) and the approvals recorded before it merged."""

    index: int
    time: str
    repository: str
    number: int | None
    author: str | None
    merged_by: str | None
    approvers: list[str] = field(default_factory=list)
    approval_indices: list[int] = field(default_factory=list)

    @property
    def independently_approved(self) -> bool:
        return any(a != self.author for a in self.approvers)


@dataclass
class Deploy:
    index: int
    time: str
    env: str
    target: str | None
    actor: str | None
    action: str | None
    outcome: str


@dataclass
class AccessChange:
    index: int
    time: str
    action: str | None
    actor: str | None
    target: str | None
    outcome: str


@dataclass
class AuthFailures:
    """Failed authentications of one (actor, source IP) pair in the period."""

    actor: str | None
    ip: str | None
    count: int
    first: str
    last: str
    first_index: int
    last_index: int


@dataclass
class Integrity:
    """What the report rests on: the checkpoint, its witnesses, and the latest full verification."""

    origin: str
    size: int
    root: str
    checkpoint: str
    cosigners: list[str]
    verified: bool | None
    verify_detail: str
    witness_policy: str | None = None
    """The witness policy this checkpoint met (e.g. `2 of 3: ...`); None: no policy was met or configured."""


@dataclass
class Report:
    since: str
    until: str
    generated: str
    integrity: Integrity
    events_in_period: int
    changes: list[Change]
    deploys: list[Deploy]
    access_changes: list[AccessChange]
    auth_failures: list[AuthFailures]

    @property
    def unapproved_changes(self) -> list[Change]:
        return [c for c in self.changes if not c.independently_approved]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for change, row in zip(self.changes, out["changes"], strict=True):
            row["independently_approved"] = change.independently_approved
        out["summary"] = {
            "events": self.events_in_period,
            "changes": len(self.changes),
            "changes_without_independent_approval": len(self.unapproved_changes),
            "production_deploys": len(self.deploys),
            "failed_production_deploys": sum(1 for d in self.deploys if d.outcome == "failure"),
            "access_changes": len(self.access_changes),
            "failed_authentications": sum(f.count for f in self.auth_failures),
        }
        return out


def _who(party: Any) -> str | None:
    if not isinstance(party, Mapping):
        return None
    for key in ("name", "id"):
        if isinstance(party.get(key), str):
            return str(party[key])
    return None


def _change_key(event: Mapping[str, Any]) -> tuple[str, int] | None:
    """(repository, PR or MR number): GitHub names the repository in target, GitLab in attrs.project."""
    attrs = event.get("attrs") if isinstance(event.get("attrs"), Mapping) else {}
    assert isinstance(attrs, Mapping)
    repository = attrs.get("project") or value_at(event, "target", "name")
    number = attrs.get("number", attrs.get("iid"))
    if isinstance(repository, str) and "!" in repository:
        repository = repository.split("!", 1)[0]
    if isinstance(repository, str) and isinstance(number, int) and not isinstance(number, bool):
        return repository, number
    return None


def _is_approval(event: Mapping[str, Any]) -> bool:
    if event.get("kind") != "code.review":
        return False
    return value_at(event, "attrs", "approved") is True or event.get("action") in (
        "merge_request.approved",
        "merge_request.approval",
    )


def _is_merge(event: Mapping[str, Any]) -> bool:
    return event.get("kind") == "code.merge" or (
        event.get("kind") == "code.review" and event.get("action") == "merge_request.merge"
    )


def _is_production(event: Mapping[str, Any], production: frozenset[str]) -> bool:
    env = event.get("env")
    tier = value_at(event, "attrs", "environment_tier")
    return (isinstance(env, str) and env.lower() in production) or (
        isinstance(tier, str) and tier.lower() in production
    )


def build_report(
    entries: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    since: str,
    until: str,
    integrity: Integrity,
    generated: str,
    production: frozenset[str] = PRODUCTION,
) -> Report:
    """Fold decoded entries (in index order, all of [0, size)) into the report for [since, until).

    Approvals are collected from the whole log up to `until`: a change merged in
    the period may have been approved before it.
    """
    approvals: dict[tuple[str, int], list[tuple[int, str]]] = {}
    changes: list[Change] = []
    deploys: list[Deploy] = []
    access: list[AccessChange] = []
    failures: dict[tuple[str | None, str | None], AuthFailures] = {}
    in_period = 0
    for index, event in entries:
        time = event.get("time")
        if not isinstance(time, str) or time >= until:
            continue
        if _is_approval(event):
            key = _change_key(event)
            reviewer = value_at(event, "attrs", "reviewer") or _who(event.get("actor"))
            if key is not None and isinstance(reviewer, str):
                approvals.setdefault(key, []).append((index, reviewer))
        if time < since:
            continue
        in_period += 1
        kind = event.get("kind")
        outcome = str(event.get("outcome", "unknown"))
        if _is_merge(event):
            key = _change_key(event)
            author = value_at(event, "attrs", "author")
            change = Change(
                index,
                time,
                key[0] if key else str(value_at(event, "target", "name")),
                key[1] if key else None,
                author if isinstance(author, str) else None,
                value_at(event, "attrs", "merged_by") or _who(event.get("actor")),
            )
            for approval_index, reviewer in approvals.get(key, []) if key else []:
                if approval_index < index and reviewer not in change.approvers:
                    change.approvers.append(reviewer)
                    change.approval_indices.append(approval_index)
            changes.append(change)
        elif kind == "deploy" and _is_production(event, production):
            deploys.append(
                Deploy(
                    index,
                    time,
                    str(event.get("env") or value_at(event, "attrs", "environment_tier")),
                    _who(event.get("target")),
                    _who(event.get("actor")),
                    event.get("action"),
                    outcome,
                )
            )
        elif kind == "access.change":
            access.append(
                AccessChange(
                    index, time, event.get("action"), _who(event.get("actor")), _who(event.get("target")), outcome
                )
            )
        elif kind == "auth.failure":
            actor, ip = _who(event.get("actor")), value_at(event, "actor", "ip")
            ip = ip if isinstance(ip, str) else None
            seen = failures.get((actor, ip))
            if seen is None:
                failures[(actor, ip)] = AuthFailures(actor, ip, 1, time, time, index, index)
            else:
                seen.count += 1
                seen.last, seen.last_index = max((seen.last, seen.last_index), (time, index))
                seen.first, seen.first_index = min((seen.first, seen.first_index), (time, index))
    ranked = sorted(failures.values(), key=lambda f: (-f.count, f.actor or "", f.ip or ""))
    return Report(since, until, generated, integrity, in_period, changes, deploys, access, ranked)
