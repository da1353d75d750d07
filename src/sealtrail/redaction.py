"""Redaction records: what a logged redaction says, and committing one through the sequencer.

A redaction removes event bodies and, in the same commit, appends a record event
(source {type: sealtrail, id: retention|erasure}, kind log.redaction or
log.erasure) whose attrs list the redacted index ranges (inclusive pairs) and
their count. `verify` accepts a redacted index only if the record its
redactions row names is such an event and lists the index. Records are never
redacted themselves: they are the account of every removal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from .event import PreparedEvent, is_out_of_line, prepare
from .log import Log, Receipt
from .store.base import LogStore, Redaction, StoreError

__all__ = [
    "MAX_PER_RECORD",
    "RECORD_KINDS",
    "Committed",
    "StoredEvent",
    "chunks",
    "commit_redactions",
    "index_ranges",
    "is_record",
    "record_event",
    "record_lists",
    "record_ranges",
    "redact_planned",
    "stored_events",
]

RECORD_SOURCE_TYPE = "sealtrail"
RECORD_KINDS = frozenset({"log.redaction", "log.erasure"})
MAX_PER_RECORD = 10_000
"""Indices one record (and one transaction, which holds the write lock) covers."""
MAX_RANGES_PER_RECORD = 1_000
"""Ranges one record lists, which keeps it far below the 65,535-byte entry limit."""

Progress = Callable[[int], None]
Plan = TypeVar("Plan")
Run = TypeVar("Run")


def index_ranges(indices: Iterable[int]) -> list[list[int]]:
    """Sorted indices as inclusive [first, last] ranges."""
    out: list[list[int]] = []
    for index in sorted(set(indices)):
        if out and out[-1][1] + 1 == index:
            out[-1][1] = index
        else:
            out.append([index, index])
    return out


def chunks(indices: Iterable[int]) -> list[list[int]]:
    """Sorted indices split into parts of at most MAX_PER_RECORD indices and MAX_RANGES_PER_RECORD ranges."""
    parts: list[list[int]] = []
    current: list[int] = []
    ranges = 0
    for index in sorted(set(indices)):
        starts_range = not current or current[-1] + 1 != index
        if current and (len(current) >= MAX_PER_RECORD or (starts_range and ranges >= MAX_RANGES_PER_RECORD)):
            parts.append(current)
            current, ranges = [], 0
            starts_range = True
        current.append(index)
        ranges += starts_range
    if current:
        parts.append(current)
    return parts


def is_record(envelope: Mapping[str, Any]) -> bool:
    """True for sealtrail's own events (redaction, retention and erasure records): never redacted."""
    source = envelope.get("source")
    return isinstance(source, Mapping) and source.get("type") == RECORD_SOURCE_TYPE


def record_ranges(entry: bytes) -> list[tuple[int, int]] | None:
    """The index ranges a redaction, retention or erasure record lists; None if `entry` is no such record."""
    try:
        envelope = orjson.loads(entry)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(envelope, dict) or not is_record(envelope) or envelope.get("kind") not in RECORD_KINDS:
        return None
    attrs = envelope.get("attrs")
    ranges = attrs.get("ranges") if isinstance(attrs, dict) else None
    if not isinstance(ranges, list):
        return None
    return [
        (pair[0], pair[1])
        for pair in ranges
        if isinstance(pair, list) and len(pair) == 2 and all(type(n) is int for n in pair)
    ]


def record_lists(entry: bytes, index: int) -> bool:
    """True if `entry` is a redaction, retention or erasure record whose ranges include `index`."""
    return any(first <= index <= last for first, last in record_ranges(entry) or ())


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored, unredacted event, decoded; `envelope["raw"]` holds the payload even when stored out of line
    (if it was asked for)."""

    index: int
    envelope: dict[str, Any]


def stored_events(
    store: LogStore, end: int | None = None, *, load_raw: bool = False, progress: Progress | None = None
) -> Iterator[StoredEvent]:
    """Every event with a body below `end` (default: the store's size), in index order."""
    stop = store.size() if end is None else end
    for index, entry in store.entries(0, stop):
        envelope = orjson.loads(entry)
        raw = envelope.get("raw")
        if load_raw and is_out_of_line(raw):
            blob = store.blob(raw["digest"].removeprefix("sha256:"))
            if blob is not None:
                envelope["raw"] = orjson.loads(blob)
        yield StoredEvent(index, envelope)
        if progress is not None and index % 4096 == 0:
            progress(index)
    if progress is not None:
        progress(stop)


def record_event(source_id: str, kind: str, action: str, attrs: Mapping[str, Any]) -> PreparedEvent:
    """One of sealtrail's own records (source {type: sealtrail, id: source_id})."""
    return prepare(
        {
            "source": {"type": RECORD_SOURCE_TYPE, "id": source_id},
            "kind": kind,
            "action": action,
            "outcome": "success",
            "attrs": dict(attrs),
        }
    )


@dataclass(frozen=True)
class Committed:
    """One committed record and the redactions it accounts for."""

    record: Receipt
    redactions: list[Redaction]


def commit_redactions(
    log: Log,
    indices: Sequence[int],
    *,
    source_id: str,
    kind: str,
    action: str,
    reason: str,
    attrs: Mapping[str, Any],
    progress: Progress | None = None,
) -> list[Committed]:
    """Redact `indices` through the sequencer, one record per part (see `chunks`), each part one commit.

    The record's attrs are `attrs` plus count, ranges and part [n, of]. Raises StoreError at the first
    part that cannot be committed (e.g. an index already redacted); earlier parts stay committed.
    """
    parts = chunks(indices)
    done: list[Committed] = []
    redacted = 0
    for number, part in enumerate(parts, start=1):
        listed = {**attrs, "count": len(part), "ranges": index_ranges(part), "part": [number, len(parts)]}
        record = record_event(source_id, kind, action, listed)
        receipt, redactions = log.redact(part, record, reason).result()
        done.append(Committed(receipt, redactions))
        redacted += len(redactions)
        if progress is not None:
            progress(redacted)
    return done


def redact_planned(
    plan: Callable[[], Plan], commit: Callable[[Plan], Run], on_plan: Callable[[Plan], None] | None = None
) -> Run:
    """Plan, then commit the plan; if the commit fails (StoreError: e.g. another writer redacted one of the
    planned indices meanwhile), plan and commit again, once. `on_plan` sees each plan before its commit."""
    for attempt in (1, 2):
        planned = plan()
        if on_plan is not None:
            on_plan(planned)
        try:
            return commit(planned)
        except StoreError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
