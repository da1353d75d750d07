"""Ingest throughput of the Log against two baselines measured in the same run.

    sealtrail  NDJSON lines -> validate, RFC 8785 bytes, ids, salt, leaf hash, search row
               (sealtrail.ingest.Preparer worker processes, as `sealtrail append` does) ->
               Log: dedup keys, tree tiles, search index, one durable commit per batch
               (WAL, synchronous=FULL), a signed checkpoint per second and at close
    pymerkle   the same canonical bytes through pymerkle's SqliteTree.append_entries
               (leaf hashes stored; no tree tiles, no signing, no encoding)
    plain      the same canonical bytes inserted into SQLite (WAL, synchronous=FULL)

All three commit once per batch of the same size; each is timed until its last
commit is durable (for sealtrail: acknowledged, and its final checkpoint signed
and stored), not while it closes its database. Each is run --repeat times,
interleaved; the best and the median run of each are reported, and the ratios
of both. The input is what `sealtrail append` splits a file into: one bytes
object per line of one NDJSON text (bench/corpus.py events).

    python bench/ingest.py [--n 100000] [--batch 4096] [--repeat 5] [--workers N]

docs/ingest-performance.md explains the figures and where the time goes.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from pymerkle import SqliteTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedBatch
from sealtrail.ingest import Preparer
from sealtrail.log import Log

TARGETS = {"pymerkle": 0.7, "plain": 0.5}
"""sealtrail's events/s over each baseline's, as the acceptance criteria ask."""


def ndjson_lines(n: int) -> list[bytes]:
    """n events as `sealtrail append` holds them: the lines of one NDJSON text."""
    return b"\n".join(events(n)).split(b"\n")


def append_all(log: Log, chunks: Iterable[PreparedBatch], then: Callable[[], None] | None = None) -> int:
    """Submit every chunk, call `then` (e.g. close the Preparer), wait until all are acknowledged and sign a
    checkpoint of them, as close() would: the number of events acknowledged."""
    futures = [log.submit(chunk) for chunk in chunks]
    if then is not None:
        then()
    receipts = [receipt for future in futures for receipt in future.result()]
    size, _ = log.sign_now()
    assert size >= len(receipts) and (not receipts or receipts[-1].index == size - 1)
    return len(receipts)


def ingest_into(directory: DataDir, lines: list[bytes], batch: int, workers: int | None = None) -> float:
    """Seconds to prepare and durably append `lines` to the log in `directory` (workers: preparing processes,
    None: the Preparer's default), until acknowledged and signed; not while the log closes."""
    start = time.perf_counter()
    preparer = Preparer(workers)
    log = directory.open_log(checkpoint_interval=1.0, max_batch=batch)
    done = append_all(log, preparer.prepare(lines, chunk=batch), preparer.close)
    elapsed = time.perf_counter() - start
    log.close()  # then folds the write-ahead log into the database file, as plain's close() does, untimed
    assert done == len(lines)
    return elapsed


def run_sealtrail(lines: list[bytes], batch: int, work: Path, workers: int | None) -> tuple[float, list[bytes]]:
    """Seconds to prepare and durably append `lines` to a new log, and the entries stored."""
    directory = DataDir(work / "sealtrail")
    directory.init("bench.sealtrail.local/log")
    elapsed = ingest_into(directory, lines, batch, workers)
    store = directory.store()
    entries = [entry for _, entry in store.entries(0, len(lines))]
    store.close()
    assert len(entries) == len(lines)
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
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="preparing processes (default: cores - 1)")
    args = parser.parse_args()

    lines = ndjson_lines(args.n)
    print(f"{args.n} events, average {sum(map(len, lines)) / len(lines):.0f} bytes of JSON in; batch {args.batch}")
    runs: dict[str, list[float]] = {"sealtrail": [], "pymerkle": [], "plain": []}
    entries: list[bytes] = []
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            work = Path(tmp)
            elapsed, entries = run_sealtrail(lines, args.batch, work, args.workers)
            runs["sealtrail"].append(elapsed)
            runs["pymerkle"].append(run_pymerkle(entries, args.batch, work))
            runs["plain"].append(run_plain(entries, args.batch, work))
    print(f"canonical entries average {sum(map(len, entries)) / len(entries):.0f} bytes; {args.repeat} runs each")
    best, median = print_rates(runs, args.n)
    print_ratios("sealtrail", best, median)


def print_rates(runs: dict[str, list[float]], n: int) -> tuple[dict[str, float], dict[str, float]]:
    """Print events/s (best and median of each run's seconds for `n` events) and µs per event; return both."""
    best = {name: n / min(seconds) for name, seconds in runs.items()}
    median = {name: n / statistics.median(seconds) for name, seconds in runs.items()}
    print(f"  {'':10s} {'best':>10s} {'median':>10s}  events/s   µs/event (best)")
    for name in runs:
        print(f"  {name:10s} {best[name]:>10,.0f} {median[name]:>10,.0f}  {1e6 / best[name]:16.2f}")
    return best, median


def print_ratios(subject: str, best: dict[str, float], median: dict[str, float], note: str = "") -> None:
    """Print `subject`'s rate over each baseline of TARGETS, best and median, with the target."""
    for name, target in TARGETS.items():
        print(
            f"{subject} / {name:8s} = {best[subject] / best[name]:.2f}x best, "
            f"{median[subject] / median[name]:.2f}x median (target >= {target}{note})"
        )


if __name__ == "__main__":
    main()
