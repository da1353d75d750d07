"""What the alert engine costs per event, against decoding the event it evaluates.

    decode     orjson.loads of each stored entry (what the alert runner does first)
    evaluate   Engine.observe of each decoded event with every built-in rule on
               (the state kept in memory, as between the runner's saves)

Both over the same stored entries of bench/corpus.py (which holds production deploys,
failed logins, force pushes: several rules select and fire). The ratio says how many
decodes one evaluation costs; the runner does both for every event `serve` appends.

    python bench/alert_engine.py [--n 20000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events
from sealtrail.alerts import Engine, builtin_rules
from sealtrail.event import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    entries = [prepare(line).entry for line in events(args.n, seed=11)]
    decode = evaluate = float("inf")
    fired: Counter[str] = Counter()
    for _ in range(args.repeat):
        start = time.perf_counter()
        decoded = [orjson.loads(entry) for entry in entries]
        decode = min(decode, time.perf_counter() - start)
        engine = Engine(builtin_rules())
        fired.clear()
        start = time.perf_counter()
        for index, envelope in enumerate(decoded):
            for alert in engine.observe(index, envelope):
                fired[alert.rule] += 1
        evaluate = min(evaluate, time.perf_counter() - start)
    print(f"{args.n:,} events, {len(builtin_rules())} built-in rules; best of {args.repeat}")
    print(f"  decode     {decode / args.n * 1e6:8.2f} µs/event")
    print(f"  evaluate   {evaluate / args.n * 1e6:8.2f} µs/event   ({args.n / evaluate:,.0f} events/s on one core)")
    print(f"evaluate / decode = {evaluate / decode:.1f}x")
    print("alerts fired: " + ", ".join(f"{rule} {count}" for rule, count in fired.most_common()))


if __name__ == "__main__":
    main()
