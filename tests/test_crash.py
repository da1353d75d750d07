"""Crash safety: SIGKILL a writer at a random moment; every acknowledged event must survive.

A child process appends realistic events in a loop through DataDir.open_log(),
printing `index id` for each receipt (and flushing) as soon as append() has
acknowledged it. The parent kills it with SIGKILL after a random number of
acknowledgements plus a random delay, reopens the log, checks every
acknowledged event is at its index with its id, runs `sealtrail verify`, and
carries on appending to the same log: several kills per log.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from _support import ORIGIN, devsecops_event, stored_entries
from conftest import CliResult
from sealtrail.checkpoint import open_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.verify import audit_store

Cli = Callable[..., CliResult]
TESTS_DIR = Path(__file__).resolve().parent
ROUNDS = 3  # kills per log

WRITER = """
import random, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from _support import devsecops_event
from sealtrail.datadir import DataDir
from sealtrail.event import prepare

directory, seed, interval = Path(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
rng = random.Random(seed)
out = sys.stdout
log = DataDir(directory).open_log(checkpoint_interval=interval)
n = 0
while True:
    futures = []
    for _ in range(rng.randint(1, 4)):  # sometimes several requests in flight: one group commit
        events = []
        for _ in range(rng.randint(1, 30)):
            event = devsecops_event(n, f"crash-{seed}", explicit_id=seed if n % 3 == 0 else None)
            events.append(prepare(event))
            n += 1
        futures.append(log.submit(events))
    for future in futures:
        for receipt in future.result():
            out.write(f"{receipt.index} {receipt.id}\\n")
            out.flush()
"""


def _parse(lines: list[bytes]) -> list[tuple[int, str]]:
    acked = []
    for line in lines:
        index, event_id = line.decode().split()
        acked.append((int(index), event_id))
    return acked


def _run_and_kill(directory: DataDir, seed: int, rng: random.Random, stderr_path: Path) -> list[tuple[int, str]]:
    """Start the writer, SIGKILL it at a random moment, return what it acknowledged."""
    interval = rng.choice([0.0, 0.0, 0.02, 3600.0])
    with stderr_path.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(TESTS_DIR), str(directory.path), str(seed), str(interval)],
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    assert proc.stdout is not None
    lines: list[bytes] = []
    try:
        wanted = rng.choice([0, rng.randint(1, 40), rng.randint(40, 600)])
        if wanted == 0:
            time.sleep(rng.uniform(0.0, 0.6))  # possibly while it is still opening the log
        while len(lines) < wanted:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
        time.sleep(rng.uniform(0.0, 0.03))
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        rest = proc.stdout.read()
        proc.stdout.close()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, stderr_path.read_text()
    # every complete line was printed after its ack; a torn last line never was fully acknowledged
    lines += [line + b"\n" for line in rest.split(b"\n")[:-1]]
    return _parse([line for line in lines if line.endswith(b"\n")])


@pytest.mark.parametrize("seed", [11, 22, 33, 44, 55])
def test_acknowledged_events_survive_sigkill(seed: int, tmp_path: Path, cli: Cli) -> None:
    rng = random.Random(seed)
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN)
    acked: dict[str, int] = {}
    for round_number in range(ROUNDS):
        new = _run_and_kill(directory, seed * 100 + round_number, rng, tmp_path / f"stderr-{round_number}")
        for index, event_id in new:
            assert acked.setdefault(event_id, index) == index, f"{event_id} acknowledged at two indices"
        assert len(set(acked.values())) == len(acked), "two events acknowledged at one index"

        # every acknowledged event is there, at its index, with its id
        stored = dict(stored_entries(directory.db))
        assert sorted(stored) == list(range(len(stored))), "the log has a gap"
        for event_id, index in acked.items():
            assert index in stored, f"acknowledged index {index} ({event_id}) is gone"
            assert orjson.loads(stored[index])["id"] == event_id

        # the log on disk is intact, checkpoints and all (possibly with unsigned newest entries)
        result = cli("verify", "--dir", directory.path)
        assert result.code == 0, result.stderr
        assert result.text.startswith(f"ok: {len(stored)} entries")

        # reopen: a checkpoint covering everything is signed on open; carry on appending
        with directory.open_log(checkpoint_interval=0) as log:
            size, note = log.latest_checkpoint()
            assert size == len(stored)
            assert open_checkpoint(note, ORIGIN, [directory.verifier()]).checkpoint.size == size
            # redeliveries of acknowledged events are deduplicated to their original index
            sample = rng.sample(sorted(acked.items(), key=lambda item: item[1]), min(5, len(acked)))
            for event_id, index in sample:
                entry = orjson.loads(stored[index])
                again = {k: v for k, v in entry.items() if k not in ("received", "salt", "v")}
                receipt = log.append([prepare(again)])[0]
                assert (receipt.index, receipt.id, receipt.duplicate) == (index, event_id, True)
            more = [prepare(devsecops_event(n, f"parent-{seed}-{round_number}")) for n in range(7)]
            receipts = log.append(more)
            assert [r.index for r in receipts] == list(range(size, size + 7))
            for receipt in receipts:
                acked[receipt.id] = receipt.index

    final = cli("verify", "--dir", directory.path)
    assert final.code == 0, final.stderr
    store = directory.store()
    try:
        report = audit_store(store, directory.verifier())
    finally:
        store.close()
    assert report.unsigned == 0  # closed cleanly: a checkpoint covers everything
    assert report.size == len(stored_entries(directory.db)) >= len(acked)
