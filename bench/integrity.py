"""Cost of the periodic integrity audit inside `serve` ([server] verify_interval).

1. One audit (IntegrityMonitor.run_once) of an N-event log, against raw SHA-256 over the same
   entries already in memory, measured in the same run.
2. Its effect on ingest: appending M events through the sequencer with no audit running, then
   with audits running back to back on the N-event log in the monitor's low-priority thread.

    python bench/integrity.py [--n 100000] [--m 50000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _store import bench_log
from corpus import events
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedEvent
from sealtrail.ingest import Preparer
from sealtrail.integrity import IntegrityMonitor


def _ingest_seconds(prepared: list[PreparedEvent], batch: int) -> float:
    """Seconds to append `prepared` to a fresh log, `batch` events per call (a busy HTTP server's batches)."""
    with tempfile.TemporaryDirectory() as scratch:
        directory = DataDir(Path(scratch) / "log")
        directory.init("ingest.bench.sealtrail.local/log")
        log = directory.open_log(checkpoint_interval=1.0)
        start = time.perf_counter()
        for first in range(0, len(prepared), batch):
            log.append(prepared[first : first + batch])
        elapsed = time.perf_counter() - start
        log.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000, help="entries in the audited log")
    parser.add_argument("--m", type=int, default=50_000, help="events appended in the ingest comparison")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args()

    source = bench_log(args.n)
    with Preparer(0) as preparer:
        prepared = [event for chunk in preparer.prepare(events(args.m, seed=11)) for event in chunk]
    with tempfile.TemporaryDirectory() as scratch:
        audited = DataDir(Path(scratch) / "audited")
        shutil.copytree(source.path, audited.path)
        store = audited.store()
        entries = [entry for _, entry in store.entries(0, store.size())]
        store.close()
        log = audited.open_log(checkpoint_interval=3600)
        monitor = IntegrityMonitor(audited.db, audited.verifier(), 3600, log, [])

        start = time.perf_counter()
        for entry in entries:
            hashlib.sha256(b"\x00" + entry).digest()
        raw = time.perf_counter() - start
        status = monitor.run_once()
        assert status.ok and status.duration is not None, status.error
        n = len(entries)
        print(f"one audit of {n:,} entries ({status.checkpoints} checkpoints): {status.duration:.2f} s")
        print(f"  raw sha256 {n / raw:>12,.0f} entries/s   audit {n / status.duration:>12,.0f} entries/s")
        print(f"  audit / raw sha256 = {raw / status.duration:.2f}x")

        alone = _ingest_seconds(prepared, args.batch)
        busy = IntegrityMonitor(audited.db, audited.verifier(), 1e-6, log, [])  # audits back to back
        busy.start()
        try:
            during = _ingest_seconds(prepared, args.batch)
        finally:
            busy.close()
            log.close()
        m = len(prepared)
        print(f"ingest of {m:,} events, {args.batch} per batch:")
        print(f"  no audit        {m / alone:>10,.0f} events/s")
        print(f"  audits running  {m / during:>10,.0f} events/s  (audits completed meanwhile: {busy.status().runs})")
        print(f"  with / without = {alone / during:.2f}x")


if __name__ == "__main__":
    main()
