"""Does ingest slow down as the log grows? The same 100,000 events into an empty log and into a full one.

    empty   bench/ingest.py's sealtrail run: --n events through the Preparer and the Log
    full    the same, into a log that already holds --prefill events (written untimed first)

Both are timed until the last batch is acknowledged and a checkpoint signed. The
ratio full/empty is what growth costs. The dedup keys (event_keys) of webhook
deliveries are SHA-256-derived, so a batch's keys land all over that B-tree: once
it outgrows the page cache, each batch dirties about one page per key.

    python bench/ingest_scale.py [--n 100000] [--prefill 1000000] [--batch 4096]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events
from ingest import ingest_into
from sealtrail.datadir import DataDir


def _lines(n: int, seed: int) -> list[bytes]:
    return b"\n".join(events(n, seed=seed)).split(b"\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--prefill", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()

    measured = _lines(args.n, seed=7)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        empty = DataDir(Path(tmp) / "empty")
        empty.init("bench.sealtrail.local/empty")
        empty_seconds = ingest_into(empty, measured, args.batch)

        full = DataDir(Path(tmp) / "full")
        full.init("bench.sealtrail.local/full")
        step = 200_000
        for first in range(0, args.prefill, step):
            ingest_into(full, _lines(min(step, args.prefill - first), seed=1000 + first), args.batch)
            print(f"  prefilled {min(first + step, args.prefill):,} events", file=sys.stderr)
        full_seconds = ingest_into(full, measured, args.batch)
        size = full.path / "log.db"
        megabytes = size.stat().st_size / 1e6

    print(f"{args.n:,} events, batch {args.batch}")
    print(f"  into an empty log            {args.n / empty_seconds:>10,.0f} events/s")
    rate = args.n / full_seconds
    print(f"  into a log of {args.prefill:>11,} {rate:>10,.0f} events/s   (log.db {megabytes:,.0f} MB)")
    print(f"full / empty = {empty_seconds / full_seconds:.2f}x")


if __name__ == "__main__":
    main()
