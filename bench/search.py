"""Search at 1,000,000 events: query latency per shape, and what the search index costs.

    python bench/search.py [--events 1000000] [--queries 240] [--ingest-sample 50000] [--skip-rebuild]

1. A log of N realistic events (bench/corpus.py, with times advancing about one second per
   event over ~12 days, a few arriving up to two hours late), built once through the real
   Preparer and Log and cached under bench/.work/search-N.
2. Latency of one page (LIMIT 100) of >= 200 queries of several shapes, run in a shuffled
   order: median and p99 per shape and over all filtered queries, against the 100 ms p99
   target. Shapes: kind + time range, actor, target, outcome + env, free text, combined,
   filters whose lists are long but never meet (the worst case of an intersection), a
   later page (after a random index, as a cursor gives), and prefix words (`pay*`, reported
   on their own line: not a filter).
3. Index size: bytes per event of the events table, the search rows and the FTS index.
4. Index build: rebuilding the whole index of the N-event log from its entries.
5. Ingest cost: the bench/ingest.py path (Preparer processes, then the Log) on a sample,
   with the search index on, and off (its three hooks replaced by no-ops), interleaved,
   best of three each: events/s and the ratio, measured in this run.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ingest as ingest_bench
import sealtrail.event as event_module
import sealtrail.store.sqlite as sqlite_module
from corpus import USERS, events
from sealtrail.datadir import DataDir
from sealtrail.ingest import Preparer
from sealtrail.search import Query, parse_query
from sealtrail.store import sqlite_search
from sealtrail.store.sqlite import SqliteStore

WORK = Path(__file__).resolve().parent / ".work"
START = datetime(2026, 11, 1, tzinfo=UTC)
TARGET_MS = 100.0


def timed_events(n: int) -> list[bytes]:
    """bench/corpus.py events with realistic times: ~1 s apart, 2% of them up to two hours late."""
    rng = random.Random(99)
    out = []
    for i, line in enumerate(events(n, seed=7)):
        event = orjson.loads(line)
        late = rng.randrange(7200) if rng.random() < 0.02 else 0
        moment = START + timedelta(seconds=i - late, microseconds=rng.randrange(1_000_000))
        event["time"] = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(orjson.dumps(event))
    return out


def search_log(n: int) -> DataDir:
    """The cached N-event log (built once through the real Preparer and Log)."""
    directory = DataDir(WORK / f"search-{n}")
    marker = directory.path / "complete"
    if marker.exists():
        return directory
    if directory.path.exists():
        shutil.rmtree(directory.path)
    directory.init("bench.sealtrail.local/search")
    print(f"building a {n:,}-event log in {directory.path} (cached for later runs) ...", file=sys.stderr)
    lines = timed_events(n)
    started = time.perf_counter()
    with Preparer() as preparer:
        log = directory.open_log(checkpoint_interval=3600, max_batch=8192)
        for chunk in preparer.prepare(lines, chunk=8192):
            log.append(chunk)
        log.close()
    elapsed = time.perf_counter() - started
    print(f"built in {elapsed:.1f} s ({n / elapsed:,.0f} events/s, search index included)", file=sys.stderr)
    marker.write_text("ok\n")
    return directory


# --- query shapes ------------------------------------------------------------------------------


def _window(rng: random.Random, n: int) -> str:
    width = rng.choice([timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=3)])
    start = START + timedelta(seconds=rng.randrange(max(1, n - int(width.total_seconds()))))
    end = start + width
    return f"since:{start:%Y-%m-%dT%H:%M:%SZ} until:{end:%Y-%m-%dT%H:%M:%SZ}"


def shapes(rng: random.Random, n: int) -> dict[str, Callable[[], str]]:
    kinds = ["code", "code.push", "code.review", "ci", "ci.run", "deploy", "auth", "auth.failure", "api.request"]
    actors = [*USERS, *(f"{u}@acme.example" for u in USERS), "release-bot", "payments-api", "root", "deploy"]
    words = ["kubectl", "payments", "ssh2", "refs heads main", "approved", "agent 7", "ledger v2", "linux amd64"]
    return {
        "kind + time range": lambda: f"kind:{rng.choice(kinds)} {_window(rng, n)}",
        "actor": lambda: (
            "actor:"
            + rng.choice([*actors, f"203.0.113.{rng.randrange(1, 255)}", f"10.20.{rng.randrange(256)}.7", "nobody"])
        ),
        "target": lambda: (
            "target:"
            + rng.choice(
                [
                    "release-pipeline",
                    "ledger",
                    "web",
                    f"kv/prod/payments/key-{rng.randrange(100)}",
                    "bastion-01.acme.internal",
                ]
            )
        ),
        "outcome + env": lambda: (
            f"outcome:{rng.choice(['success', 'failure', 'unknown'])} env:" + rng.choice(["prod", "prod", "staging"])
        ),
        "free text": lambda: rng.choice(words),
        "combined": lambda: rng.choice(
            [
                f"kind:api.request outcome:failure actor:payments-api secret {_window(rng, n)}",
                f"kind:deploy outcome:failure target:{rng.choice(['ledger', 'web', 'infra'])} {_window(rng, n)}",
                f"kind:auth.failure env:prod actor:{rng.choice(['root', 'admin', 'ubuntu'])} ssh2",
                f"source:github kind:code.review actor:{rng.choice(USERS)} approved",
            ]
        ),
        "no match, big lists": lambda: rng.choice(
            [
                "kind:code.push env:prod",
                "outcome:failure kind:code.review",
                "source:syslog outcome:success",
                "kind:auth.failure actor:alice",
                "kind:api.request outcome:unknown",
            ]
        ),
        "text prefix": lambda: rng.choice(["pay*", "kube*", "appr*", "deploym*"]),
    }


def measure(store: SqliteStore, plan: list[tuple[str, Query, int]]) -> dict[str, list[float]]:
    """Milliseconds for one page of 100 after index `after`, by shape."""
    for _, query, after in plan[:10]:  # warm the page cache a little
        store.search(query, after=after, limit=100)
    timings: dict[str, list[float]] = {}
    for shape, query, after in plan:
        started = time.perf_counter()
        store.search(query, after=after, limit=100)
        timings.setdefault(shape, []).append((time.perf_counter() - started) * 1000)
    return timings


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


# --- costs -------------------------------------------------------------------------------------


def sizes(store: SqliteStore, n: int) -> None:
    conn = store._conn()
    rows = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
    fts = sum(size for name, size in rows.items() if name.startswith("search_fts"))
    total = sum(rows.values())
    print(f"database {total / n:.0f} B/event: events {rows.get('events', 0) / n:.0f}, ", end="")
    print(f"search rows {rows.get('search', 0) / n:.0f}, FTS index {fts / n:.0f} B/event")


def rebuild(store: SqliteStore, n: int) -> None:
    started = time.perf_counter()
    count = store.index_for_search(rebuild=True)
    elapsed = time.perf_counter() - started
    print(f"index rebuild from {count:,} stored entries: {elapsed:.1f} s ({count / elapsed:,.0f} events/s)")


HOOKS = ((event_module, "envelope_row"), (sqlite_search, "insert_rows"), (sqlite_module, "_search_rows"))
"""Where the search index hooks into the write path: the preparer's row, the store's insert and fallback."""


def ingest_cost(sample: int) -> None:
    real = tuple(getattr(module, name) for module, name in HOOKS)
    off: tuple[Any, ...] = (lambda envelope, entry: None, lambda conn, indices, rows: None, lambda entries, rows: [])
    workers = max(1, min(4, (os.cpu_count() or 2) - 1))  # as the Preparer chooses
    lines = events(sample)
    best: dict[str, float] = {}
    for _ in range(3):
        for name, hooks in (("index off", off), ("index on", real)):
            for (module, attribute), hook in zip(HOOKS, hooks, strict=True):
                setattr(module, attribute, hook)
            with tempfile.TemporaryDirectory(dir=WORK) as tmp:
                elapsed, _ = ingest_bench.run_sealtrail(lines, 4096, Path(tmp), workers)
            best[name] = min(best.get(name, float("inf")), elapsed)
    for (module, attribute), hook in zip(HOOKS, real, strict=True):
        setattr(module, attribute, hook)
    rate = {name: sample / seconds for name, seconds in best.items()}
    print(f"ingest, {sample:,} events (bench/ingest.py path, best of 3):")
    for name, value in rate.items():
        print(f"  {name:10s} {value:>9,.0f} events/s")
    print(f"  index on / off = {rate['index on'] / rate['index off']:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=240, help="queries in all (spread over the shapes)")
    parser.add_argument("--ingest-sample", type=int, default=50_000, help="events for the ingest A/B (0: skip)")
    parser.add_argument("--skip-rebuild", action="store_true", help="do not time a full index rebuild")
    args = parser.parse_args()

    WORK.mkdir(exist_ok=True)
    directory = search_log(args.events)
    rng = random.Random(2026)
    makers = shapes(rng, args.events)
    per_shape = max(1, args.queries // (len(makers) + 1))
    plan = [(shape, parse_query(make()), -1) for shape, make in makers.items() for _ in range(per_shape)]
    deep = [parse_query(makers[rng.choice(["actor", "outcome + env", "free text"])]()) for _ in range(per_shape)]
    plan += [("a later page", query, rng.randrange(args.events)) for query in deep]  # as a cursor would give
    rng.shuffle(plan)
    store = directory.store()
    try:
        timings = measure(store, plan)
        print(f"{args.events:,} events; one page (LIMIT 100) of each of {len(plan)} queries, milliseconds:")
        for shape in [*makers, "a later page"]:
            values = timings[shape]
            print(f"  {shape:20s} n={len(values):3d}  median {statistics.median(values):7.2f}  p99 {p99(values):7.2f}")
        filtered = [v for shape, values in timings.items() if shape != "text prefix" for v in values]
        verdict = "meets" if p99(filtered) <= TARGET_MS else "MISSES"
        print(
            f"  {'all filtered':20s} n={len(filtered):3d}  median {statistics.median(filtered):7.2f}  "
            f"p99 {p99(filtered):7.2f}  ({verdict} the {TARGET_MS:.0f} ms p99 target)"
        )
        sizes(store, args.events)
        if not args.skip_rebuild:
            rebuild(store, args.events)
    finally:
        store.close()
    if args.ingest_sample:
        ingest_cost(args.ingest_sample)


if __name__ == "__main__":
    main()
