"""sealtrail.ingest: NDJSON lines prepared in worker processes, in order, as PreparedBatch chunks."""

from __future__ import annotations

import orjson
import pytest

from _support import devsecops_event
from sealtrail.event import PreparedBatch, Source, prepare
from sealtrail.ingest import LineError, Preparer, prepare_lines

RECEIVED = "2026-11-26T13:24:51.123456Z"


def _lines(count: int) -> list[bytes]:
    """NDJSON lines with fixed ids and salts, so that preparing them twice gives the same entries."""
    lines = []
    for n in range(count):
        event = devsecops_event(n, "ingest", explicit_id=7)
        event["salt"] = "AAAAAAAAAAAAAAAAAAAAAA=="
        lines.append(orjson.dumps(event))
    return lines


@pytest.mark.parametrize("workers", [0, 1])
def test_chunks_come_back_in_order_as_batches_of_what_prepare_makes(workers: int) -> None:
    lines = _lines(23)
    lines.insert(5, b"   ")  # blank lines are skipped
    with Preparer(workers) as preparer:
        chunks = list(preparer.prepare(lines, chunk=4, received=RECEIVED))
    assert all(isinstance(chunk, PreparedBatch) for chunk in chunks)
    assert [len(chunk) for chunk in chunks] == [4, 3, 4, 4, 4, 4]
    expected = [prepare(line, received=RECEIVED) for line in lines if line.strip()]
    assert [event for chunk in chunks for event in chunk] == expected


def test_events_without_a_source_take_the_default() -> None:
    line = orjson.dumps({"kind": "deploy", "id": "0192f1e4-7a3b-7c1d-9e2f-0a1b2c3d4e5f"})
    with Preparer(1) as preparer:
        (chunk,) = preparer.prepare([line], received=RECEIVED, default_source=Source(type="api", id="cli"))
    assert orjson.loads(chunk[0].entry)["source"] == {"type": "api", "id": "cli"}
    with pytest.raises(LineError, match="line 1: source: required"):
        list(prepare_lines([line], received=RECEIVED))


@pytest.mark.parametrize("workers", [0, 1])
def test_the_first_bad_line_is_named(workers: int) -> None:
    lines = _lines(9)
    lines[6] = b'{"kind": "Not A Kind", "source": {"type": "api", "id": "x"}}'
    with Preparer(workers) as preparer, pytest.raises(LineError) as caught:
        list(preparer.prepare(lines, chunk=4, received=RECEIVED))
    assert caught.value.number == 7
    assert str(caught.value).startswith("line 7: kind:")
