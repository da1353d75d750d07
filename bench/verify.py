"""Full-audit throughput against raw SHA-256 over the same bytes (target: >= 0.3x).

`sealtrail verify` work: read every entry from SQLite, hash it as an RFC 6962
leaf, compare with the stored tiles, rebuild every tile and the tree, check
every checkpoint's signature, root and consistency. Baseline in the same run:
hashlib.sha256 over each entry's bytes, already in memory.

    python bench/verify.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _store import bench_log
from sealtrail.verify import audit_store, default_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=default_workers(), help="audit processes (default: cores)")
    args = parser.parse_args()

    directory = bench_log(args.n)
    store = directory.store()
    entries = [entry for _, entry in store.entries(0, store.size())]
    total_bytes = sum(map(len, entries))
    best_raw = best_audit = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        sha256 = hashlib.sha256
        for entry in entries:
            sha256(entry).digest()
        best_raw = min(best_raw, time.perf_counter() - start)

        start = time.perf_counter()
        report = audit_store(store, directory.verifier(), workers=args.workers)
        best_audit = min(best_audit, time.perf_counter() - start)
    store.close()
    n = len(entries)
    print(f"{n:,} entries, {total_bytes / n:.0f} bytes average, {report.checkpoints} checkpoints")
    print(f"  raw sha256   {n / best_raw:>12,.0f} entries/s  {total_bytes / best_raw / 1e6:8.1f} MB/s")
    print(f"  full verify  {n / best_audit:>12,.0f} entries/s  {total_bytes / best_audit / 1e6:8.1f} MB/s")
    print(f"verify / raw sha256 = {best_raw / best_audit:.2f}x (target >= 0.3); {args.workers} audit processes")


if __name__ == "__main__":
    main()
