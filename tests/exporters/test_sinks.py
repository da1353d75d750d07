"""The OCSF sinks (HTTP JSON arrays, NDJSON file) and how the HTTP sinks isolate a refused record."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

from _support import devsecops_events, rfc6962_leaf, stored_entries
from sealtrail.datadir import DataDir
from sealtrail.exporters.config import ForwardConfig
from sealtrail.exporters.cursor import CursorStore
from sealtrail.exporters.forwarder import ForwarderGroup, cursor_path
from sealtrail.log import Log

from ._receivers import serve

FAST: dict[str, Any] = {"backoff_initial": 0.001, "max_backoff": 0.02, "poll_interval": 0.05}


class OcsfArrayReceiver:
    """Takes JSON arrays of OCSF events; 503 for 30% of requests, 400 for any array holding a poisoned uid."""

    def __init__(self, poisoned: set[str]) -> None:
        self.poisoned = poisoned
        self.rng = random.Random(8)
        self.received: Counter[str] = Counter()
        self.requests = 0

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
        self.requests += 1
        events = json.loads(body)
        assert isinstance(events, list)
        if self.rng.random() < 0.3:
            return 503, {"error": "busy"}, {}
        if any(event["metadata"]["uid"] in self.poisoned for event in events):
            return 400, {"error": "schema violation"}, {}
        for event in events:
            self.received[event["metadata"]["uid"]] += 1
        return 200, {"accepted": len(events)}, {}


def _leaves(directory: DataDir) -> dict[int, str]:
    return {index: rfc6962_leaf(entry).hex() for index, entry in stored_entries(directory.db)}


def test_ocsf_http_batches_isolate_the_one_refused_event(data_dir: DataDir, log: Log) -> None:
    log.append(devsecops_events(0, 64, "ocsf-http"))
    leaves = _leaves(data_dir)
    receiver = OcsfArrayReceiver({leaves[37]})
    with serve(receiver) as url:
        config = ForwardConfig(name="lake", type="ocsf", url=url + "/ingest", batch_size=32, **FAST)
        group = ForwarderGroup(data_dir.path, [config])
        group.start(until_end=True)
        assert group.wait(60)
    assert group.results == {"lake": True}
    assert set(receiver.received) == set(leaves.values()) - {leaves[37]}
    (dead,) = CursorStore(cursor_path(data_dir.path)).dead_letters("lake")
    assert (dead.index, dead.leaf_hash) == (37, leaves[37]) and "HTTP 400" in dead.reason
    assert receiver.requests < 64, "halving found the bad event without one request per event"


def test_ocsf_file_appends_one_event_per_line(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    log.append(devsecops_events(0, 25, "ocsf-file"))
    target = tmp_path / "lake" / "ocsf.ndjson"
    config = ForwardConfig(name="file", type="ocsf", path=str(target), batch_size=10, **FAST)
    group = ForwarderGroup(data_dir.path, [config])
    group.start(until_end=True)
    assert group.wait(30) and group.results == {"file": True}
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [event["metadata"]["sequence"] for event in lines] == list(range(25))
    assert [event["metadata"]["uid"] for event in lines] == [_leaves(data_dir)[i] for i in range(25)]
    log.append(devsecops_events(25, 5, "ocsf-file"))
    again = ForwarderGroup(data_dir.path, [config])
    again.start(until_end=True)
    assert again.wait(30)
    assert len(target.read_text().splitlines()) == 30, "a second run appends only what is new"
