"""Proof latency from the SQLite store at 1,000,000 entries (target: p99 <= 1 ms).

Inclusion proofs for random entries against the latest checkpoint, and
consistency proofs from random earlier sizes (roots from the tiles), each computed from the stored
tiles (O(log n) tile reads and hashes) and checked with the RFC 9162
verifiers. Baseline in the same run: one primary-key lookup of an entry row in
the same database, the cheapest query a proof could possibly cost.

    python bench/proofs.py [--n 1000000] [--samples 3000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _store import bench_log
from sealtrail.checkpoint import parse_checkpoint
from sealtrail.merkle import leaf_hash, tree_hash, verify_consistency, verify_inclusion
from sealtrail.note import parse_note
from sealtrail.tiles import node_reader
from sealtrail.view import LogView


def measure(samples: int, call: Callable[[int], object]) -> list[float]:
    """Latency in seconds of call(i) for i in range(samples)."""
    out = []
    for i in range(samples):
        start = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - start)
    return out


def describe(name: str, latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    median = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(f"  {name:24s} median {median * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms")
    return median, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=3000)
    args = parser.parse_args()

    directory = bench_log(args.n)
    store = directory.store()
    view = LogView(store)
    size, note = view.latest_checkpoint()
    root = parse_checkpoint(parse_note(note)[0]).root
    rng = random.Random(1)
    indices = [rng.randrange(size) for _ in range(args.samples)]
    olds = [rng.randrange(1, size + 1) for _ in range(args.samples)]
    print(f"log of {size:,} entries; {args.samples} samples each")

    for i in range(200):  # warm the page cache and the interpreter
        view.inclusion_proof(indices[i], size)
        store.entry(indices[i])

    baseline = measure(args.samples, lambda i: store.entry(indices[i]))
    inclusion = measure(args.samples, lambda i: view.inclusion_proof(indices[i], size))
    consistency = measure(args.samples, lambda i: view.consistency_proof(olds[i], size))

    for i in range(0, args.samples, max(1, args.samples // 100)):  # the proofs are right
        entry = store.entry(indices[i])
        assert entry is not None
        verify_inclusion(indices[i], size, leaf_hash(entry), view.inclusion_proof(indices[i], size), root)
        old_root = tree_hash(olds[i], node_reader(store.read_tiles, olds[i]))
        verify_consistency(olds[i], size, view.consistency_proof(olds[i], size), old_root, root)
    store.close()

    _, base_p99 = describe("entry lookup (baseline)", baseline)
    _, inc_p99 = describe("inclusion proof", inclusion)
    _, con_p99 = describe("consistency proof", consistency)
    print(f"inclusion p99 {inc_p99 * 1e3:.3f} ms, consistency p99 {con_p99 * 1e3:.3f} ms (target <= 1 ms)")
    print(f"p99 / entry lookup p99: inclusion {inc_p99 / base_p99:.1f}x, consistency {con_p99 / base_p99:.1f}x")


if __name__ == "__main__":
    main()
