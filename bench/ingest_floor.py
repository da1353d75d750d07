"""How fast could ingest be if preparing events cost nothing? The floor under bench/ingest.py.

Every event is prepared before the clock starts (parsed, validated, RFC 8785
bytes, ids, leaf hash, search row: what the Preparer workers do), then timed:

    prepare    that preparation itself, in this process (one core)
    log        the prepared batches through the Log: dedup, tree tiles, events, search
               index, one durable commit per batch, a signed checkpoint per second and
               at the end (bench/ingest.py's sealtrail run without its preparation)
    search     the search index alone: the same search rows and FTS terms written by
               store.sqlite_search.insert_rows, one durable commit per batch, nothing else
    pymerkle   SqliteTree.append_entries of the same canonical bytes (bench/ingest.py)
    plain      INSERT of the same canonical bytes (bench/ingest.py)

bench/ingest.py's targets are sealtrail >= 0.7x pymerkle and >= 0.5x plain.
Preparation needs a core of its own, so if `log` alone stays under a target,
nothing done to the preparation can reach it; if `search` alone takes more
than the time a target allows per event, the search index written in the same
commit as its events (issue 5) cannot fit in it at all. The last line sets the
CPU time of prepare + log against what the machine's cores offer at the target.

    python bench/ingest_floor.py [--n 100000] [--batch 4096] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest import TARGETS, append_all, ndjson_lines, print_rates, print_ratios, run_plain, run_pymerkle
from sealtrail.datadir import DataDir
from sealtrail.event import PreparedBatch
from sealtrail.ingest import prepare_lines
from sealtrail.store import sqlite_search
from sealtrail.store.sqlite import SqliteStore
from sealtrail.store.sqlite_values import bind_directly


def run_log(batches: list[PreparedBatch], work: Path) -> float:
    """Seconds for the Log to take prepared batches until all are acknowledged and a checkpoint is signed."""
    directory = DataDir(work / "sealtrail")
    directory.init("bench.sealtrail.local/log")
    log = directory.open_log(checkpoint_interval=1.0, max_batch=max(map(len, batches)))
    start = time.perf_counter()
    done = append_all(log, batches)
    elapsed = time.perf_counter() - start
    log.close()
    assert done == sum(map(len, batches))
    return elapsed


def run_search(batches: list[PreparedBatch], work: Path) -> float:
    """Seconds to write the batches' search rows and terms, one durable commit per batch, into a new log's index."""
    path = work / "search.db"
    SqliteStore.create(path, "bench.sealtrail.local/search").close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    bind_directly()
    first = 0
    start = time.perf_counter()
    for batch in batches:
        conn.execute("BEGIN IMMEDIATE")
        sqlite_search.insert_rows(conn, range(first, first + len(batch)), batch.rows)
        conn.execute("COMMIT")
        first += len(batch)
    elapsed = time.perf_counter() - start
    (indexed,) = conn.execute("SELECT indexed FROM search_state").fetchone()
    conn.close()
    assert indexed == first
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    lines = ndjson_lines(args.n)
    batches = list(prepare_lines(lines, chunk=args.batch))
    entries = [entry for batch in batches for entry in batch.entries]
    print(f"{args.n} events prepared before timing; batch {args.batch}; {args.repeat} runs each")
    runs: dict[str, list[float]] = {"prepare": [], "log": [], "search": [], "pymerkle": [], "plain": []}
    for _ in range(args.repeat):
        start = time.perf_counter()
        assert sum(map(len, prepare_lines(lines, chunk=args.batch))) == args.n
        runs["prepare"].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
            work = Path(tmp)
            runs["log"].append(run_log(batches, work))
            runs["search"].append(run_search(batches, work))
            runs["pymerkle"].append(run_pymerkle(entries, args.batch, work))
            runs["plain"].append(run_plain(entries, args.batch, work))
    best, median = print_rates(runs, args.n)
    print_ratios("log", best, median, ", bench/ingest.py's, with preparation")
    for name, target in TARGETS.items():
        budget = 1e6 / (target * best[name])
        print(
            f"at the {name} target every event has {budget:.2f} µs; the search index alone takes "
            f"{1e6 / best['search']:.2f} ({1e6 / best['search'] / budget:.0%} of it)"
        )
    cores = os.cpu_count() or 1
    need = 1e6 / best["prepare"] + 1e6 / best["log"]
    have = cores * 1e6 / (TARGETS["pymerkle"] * best["pymerkle"])
    print(
        f"prepare + log: {need:.2f} µs of CPU per event; at the pymerkle target {cores} cores offer {have:.2f} "
        "(if both kept every core busy, which a pipeline of two stages does not)"
    )


if __name__ == "__main__":
    main()
