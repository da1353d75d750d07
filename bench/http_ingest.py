"""HTTP ingest on loopback against a real `sealtrail serve` (targets on a 2-core machine).

    batched   POST /v1/events with 100 events per request        target >= 20,000 events/s
    single    one event per request, each answered after its durable commit
                                                                  target >= 2,000 events/s
    latency   single-event requests sent at a fixed 1,000 events/s (open loop)
                                                                  target p99 <= 50 ms
Baseline in the same run: GET /healthz at the same concurrency, the cost of an
HTTP round trip through the same server with no log work. The client is a
minimal keep-alive HTTP/1.1 client on asyncio, in its own process.

    python bench/http_ingest.py [--seconds 5] [--concurrency 128] [--alerts]

--alerts runs the server with an empty [alerts] table: every built-in rule evaluated over
every event (in a thread of the server process, as `serve` does).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from corpus import events


class Connection:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer, f"127.0.0.1:{port}")

    async def request(self, method: str, path: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.writer.write(head.encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)


ORIGIN = ("--origin", "bench.sealtrail.local/http")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(work: Path, port: int, alerts: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    log = work / "serve.log"
    config: list[str] = []
    if alerts:
        (work / "sealtrail.toml").write_text("[alerts]\n")
        config = ["--config", str(work / "sealtrail.toml")]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealtrail",
            "serve",
            "--dir",
            str(work / "data"),
            "--port",
            str(port),
            *ORIGIN,
            *config,
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"admin token \(shown once, stored hashed\): (st_\S+)", log.read_text())
        if found and "Uvicorn running" in log.read_text():
            return proc, found.group(1)
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"server did not start: {log.read_text()}")


async def closed_loop(
    port: int, token: str, concurrency: int, seconds: float, make_body: object, method: str = "POST", path: str = ""
) -> tuple[int, int]:
    """Requests back to back on `concurrency` connections for `seconds`: (requests, events)."""
    stop = time.monotonic() + seconds
    counts = [0, 0]

    async def worker(number: int) -> None:
        conn = await Connection.open(port)
        sent = 0
        while time.monotonic() < stop:
            body, n = make_body(number, sent) if callable(make_body) else (b"", 0)
            status, answer = await conn.request(method, path, token, body)
            if status != 200:
                raise SystemExit(f"{method} {path}: HTTP {status} {answer[:200]!r}")
            counts[0] += 1
            counts[1] += n
            sent += 1
        conn.writer.close()

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return counts[0], counts[1]


async def open_loop(port: int, token: str, rate: float, seconds: float, lines: list[bytes]) -> list[float]:
    """Single-event requests started every 1/rate s regardless of answers: the latency of each."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(64):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []

    async def one(body: bytes) -> None:
        conn = await pool.get()
        start = time.perf_counter()
        status, answer = await conn.request("POST", "/v1/events", token, body)
        latencies.append(time.perf_counter() - start)
        pool.put_nowait(conn)
        if status != 200:
            raise SystemExit(f"HTTP {status} {answer[:200]!r}")

    tasks = []
    begin = time.perf_counter()
    for i in range(int(rate * seconds)):
        delay = begin + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(lines[i % len(lines)])))
    await asyncio.gather(*tasks)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=128, help="connections for the single-event phase")
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--alerts", action="store_true", help="evaluate every built-in alert rule in the server")
    args = parser.parse_args()

    lines = events(200_000, seed=11)
    batches = [b"[" + b",".join(lines[i : i + 100]) + b"]" for i in range(0, len(lines), 100)]
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as tmp:
        port = free_port()
        proc, token = start_server(Path(tmp), port, args.alerts)
        try:
            baseline, _ = asyncio.run(closed_loop(port, token, args.concurrency, args.seconds, None, "GET", "/healthz"))
            counter = iter(range(10**9))

            def batched(worker: int, sent: int) -> tuple[bytes, int]:
                return batches[next(counter) % len(batches)], 100

            requests_b, events_b = asyncio.run(closed_loop(port, token, 8, args.seconds, batched, path="/v1/events"))

            def single(worker: int, sent: int) -> tuple[bytes, int]:
                return lines[next(counter) % len(lines)], 1

            _, events_s = asyncio.run(
                closed_loop(port, token, args.concurrency, args.seconds, single, path="/v1/events")
            )
            latencies = asyncio.run(open_loop(port, token, args.rate, args.seconds, lines[::-1]))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
    health_rps = baseline / args.seconds
    batched_eps = events_b / args.seconds
    single_eps = events_s / args.seconds
    ordered = sorted(latencies)
    p50 = statistics.median(ordered)
    p99 = ordered[int(len(ordered) * 0.99) - 1]
    print(f"GET /healthz (baseline)  {health_rps:>10,.0f} requests/s  (concurrency {args.concurrency})")
    print(f"batched (100/request)    {batched_eps:>10,.0f} events/s    {requests_b / args.seconds:,.0f} requests/s")
    print(f"single (1/request)       {single_eps:>10,.0f} events/s    = {single_eps / health_rps:.2f}x the baseline")
    rate = f"{args.rate:,.0f}/s"
    print(f"latency at {rate:12s} p50 {p50 * 1e3:.1f} ms   p99 {p99 * 1e3:.1f} ms   ({len(latencies)} requests)")
    print("targets: batched >= 20,000/s, single >= 2,000/s, p99 <= 50 ms")
    print(
        orjson.dumps({"batched": batched_eps, "single": single_eps, "p50_ms": p50 * 1e3, "p99_ms": p99 * 1e3}).decode()
    )


if __name__ == "__main__":
    main()
