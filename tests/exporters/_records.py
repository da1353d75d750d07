"""Records as the forwarder reads them, built from prepared events (not a test module)."""

from __future__ import annotations

from collections.abc import Iterable

from sealtrail.event import PreparedEvent
from sealtrail.exporters.record import ForwardRecord, decode_entry

__all__ = ["ORIGIN", "records"]

ORIGIN = "test.sealtrail.local/log"


def records(prepared: Iterable[PreparedEvent], start: int = 0) -> list[ForwardRecord]:
    """ForwardRecords at indices start.. for these events, with their RFC 6962 leaf hashes."""
    return [
        ForwardRecord(start + number, event.leaf_hash, ORIGIN, decode_entry(event.entry))
        for number, event in enumerate(prepared)
    ]
