"""Ingest throughput of the Log against two baselines measured in the same run.

    sealtrail  NDJSON lines -> validate, RFC 8785 bytes, ids, salt, leaf hash
               (sealtrail.ingest.prepare_lines, as `sealtrail append` does) ->
               Log: dedup keys, tree tiles, one durable commit per batch
               (WAL, synchronous=FULL), a signed checkpoint per second and at close
    pymerkle   the same canonical bytes through pymerkle's SqliteTree.append_entries
               (leaf hashes stored; no tree tiles, no signing, no encoding)
    plain      the same canonical bytes inserted into SQLite (WAL, synchronous=FULL)

All three commit once per batch of the same size. Each is run --repeat times,
interleaved; the best run of each is reported.

    python bench/ingest.py [--n 100000] [--batch 4096] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from pymerkle import SqliteTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events
from sealtrail.datadir import DataDir
from sealtrail.ingest import Preparer


def run_sealtrail(lines: list[bytes], batch: int, work: Path, workers: int) -> tuple[float, list[bytes]]:
    directory = DataDir(work / "sealtrail")
    directory.init("bench.sealtrail.local/log")
    start = time.perf_counter()
    preparer = Preparer(workers)
    log = directory.open_log(checkpoint_interval=1.0, max_batch=batch)
    futures = []
    for chunk in preparer.prepare(lines, chunk=batch):
        futures.append(log.submit(chunk))
    preparer.close()
    receipts = [receipt for future in futures for receipt in future.result()]
    log.close()
    elapsed = time.perf_counter() - start
    assert len(receipts) == len(lines) and receipts[-1].index == len(lines) - 1
    store = directory.store()
    entries = [entry for _, entry in store.entries(0, len(lines))]
    store.close()
    return elapsed, entries


def run_pymerkle(entries: list[bytes], batch: int, work: Path) -> float:
    tree = SqliteTree(str(work / "pymerkle.db"))
    start = time.perf_counter()
    for i in range(0, len(entries), batch):
        tree.append_entries(entries[i : i + batch])
    elapsed = time.perf_counter() - start
    assert tree.get_size() == len(entries)
    tree.close()
    return elapsed


def run_plain(entries: list[bytes], batch: int, work: Path) -> float:
    conn = sqlite3.connect(work / "plain.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE entries (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL)")
    start = time.perf_counter()
    for i in range(0, len(entries), batch):
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO entries VALUES (?, ?)", [(i + j, e) for j, e in enumerate(entries[i : i + batch])]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="preparing processes (default: cores - 1)")
    args = parser.parse_args()

    lines = events(args.n)
    print(f"{args.n} events, average {sum(map(len, lines)) / len(lines):.0f} bytes of JSON in; batch {args.batch}")
    best: dict[str, float] = {}
    entries: list[bytes] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            work = Path(tmp)
            elapsed, entries = run_sealtrail(lines, args.batch, work, args.workers)
            timings = {
                "sealtrail": elapsed,
                "pymerkle": run_pymerkle(entries, args.batch, work),
                "plain": run_plain(entries, args.batch, work),
            }
        for name, seconds in timings.items():
            best[name] = min(best.get(name, float("inf")), seconds)
    print(f"canonical entries average {sum(map(len, entries)) / len(entries):.0f} bytes")
    rate = {name: args.n / seconds for name, seconds in best.items()}
    for name in ("sealtrail", "pymerkle", "plain"):
        print(f"  {name:10s} {rate[name]:>10,.0f} events/s")
    print(f"sealtrail / pymerkle = {rate['sealtrail'] / rate['pymerkle']:.2f}x (target >= 0.7)")
    print(f"sealtrail / plain    = {rate['sealtrail'] / rate['plain']:.2f}x (target >= 0.5)")


if __name__ == "__main__":
    main()
