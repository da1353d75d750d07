"""Erasure requests (GDPR Art. 17): redact every event that names a data subject, or that a query matches.

Matching runs over the decoded entries (out-of-line raw payloads included), not
over a search index, so it cannot miss an event the index lacks. Legal holds
win: held events are kept and counted (Art. 17(3)(e), legal claims). Each
commit appends an erasure record (kind log.erasure, source sealtrail/erasure)
with the request reference, the kind of match, the count and index ranges and
what holds withheld. It never holds the subject's identifier or the query text:
those are personal data themselves; the request reference links to where the
controller keeps the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .event import uuid7
from .log import Log
from .query import EventQuery
from .redaction import (
    Committed,
    commit_redactions,
    index_ranges,
    is_record,
    record_event,
    redact_planned,
    stored_events,
)
from .retention import Hold, Selection
from .store.base import LogStore

__all__ = ["ErasurePlan", "ErasureRun", "erase", "new_request_reference", "plan_erasure"]

MATCH_KINDS = frozenset({"actor", "query"})


def new_request_reference() -> str:
    """A reference for a request that came with none (print it: it is the link to the record)."""
    return f"erasure-{uuid7()}"


@dataclass
class ErasurePlan(Selection):
    match: str
    size: int
    scanned: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "match": self.match,
            "size": self.size,
            "scanned": self.scanned,
            "count": len(self.indices),
            "ranges": index_ranges(self.indices),
            "held": self.held(ranges=True),
        }


def plan_erasure(
    store: LogStore,
    query: EventQuery,
    *,
    match: str,
    holds: tuple[Hold, ...] = (),
    progress: Callable[[int], None] | None = None,
) -> ErasurePlan:
    """The events an erasure would redact, and those legal holds keep (nothing is written)."""
    if match not in MATCH_KINDS:
        raise ValueError(f"match must be one of {', '.join(sorted(MATCH_KINDS))}")
    plan = ErasurePlan(match, store.size())
    load_raw = query.needs_raw or any(hold.query.needs_raw for hold in holds)
    for event in stored_events(store, plan.size, load_raw=load_raw, progress=progress):
        plan.scanned += 1
        if is_record(event.envelope) or not query.matches(event.envelope):
            continue
        plan.add(event.index, holds, event.envelope)
    return plan


@dataclass
class ErasureRun:
    plan: ErasurePlan
    request: str
    committed: list[Committed] = field(default_factory=list)

    @property
    def redacted(self) -> int:
        return sum(len(c.redactions) for c in self.committed)


def erase(
    log: Log,
    store: LogStore,
    query: EventQuery,
    *,
    match: str,
    request: str,
    reason: str | None = None,
    holds: tuple[Hold, ...] = (),
    progress: Callable[[int], None] | None = None,
    on_plan: Callable[[ErasurePlan], None] | None = None,
) -> ErasureRun:
    """Redact every matching event not under a legal hold, appending erasure records in the same commits.

    If another writer redacted some of them meanwhile, plans again once.
    """
    if not request.strip():
        raise ValueError("the request reference is empty")

    def commit(plan: ErasurePlan) -> ErasureRun:
        run = ErasureRun(plan, request)
        attrs: dict[str, Any] = {"request": request, "match": match, "held": plan.held(ranges=False)}
        if reason:
            attrs["reason"] = reason
        if not plan.indices:  # nothing to redact: the request is still on the record
            record = record_event("erasure", "log.erasure", "erasure.request", {**attrs, "count": 0, "ranges": []})
            run.committed = [Committed(log.append([record])[0], [])]
            return run
        run.committed = commit_redactions(
            log,
            plan.indices,
            source_id="erasure",
            kind="log.erasure",
            action="erasure.request",
            reason=f"erasure:{request}",
            attrs=attrs,
            progress=progress,
        )
        return run

    return redact_planned(lambda: plan_erasure(store, query, match=match, holds=holds), commit, on_plan)
