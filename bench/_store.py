"""A cached benchmark log of N realistic events, built once through the real Log."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events
from sealtrail.datadir import DataDir
from sealtrail.ingest import Preparer

WORK = Path(__file__).resolve().parent / ".work"


def bench_log(n: int) -> DataDir:
    """A log of n events under bench/.work with ten checkpoints (built once, then cached)."""
    checkpoint_every = max(1, n // 10)
    directory = DataDir(WORK / f"log-{n}")
    marker = directory.path / "complete"
    if marker.exists():
        return directory
    if directory.path.exists():
        shutil.rmtree(directory.path)
    directory.init("bench.sealtrail.local/log")
    print(f"building a {n:,}-event log in {directory.path} (cached for later runs) ...", file=sys.stderr)
    lines = events(n, seed=7)
    with Preparer() as preparer:
        log = directory.open_log(checkpoint_interval=3600, max_batch=8192)
        done = 0
        for chunk in preparer.prepare(lines, chunk=8192):
            log.append(chunk)
            done += len(chunk)
            if done % checkpoint_every < len(chunk):
                log.sign_now()
        log.close()
    marker.write_text("ok\n")
    return directory
