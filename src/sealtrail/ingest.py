"""Bulk preparation of NDJSON events, spread over worker processes.

Preparing an event (parse, validate, RFC 8785 bytes, hashes) is CPU-bound
Python; the sequencer's commit mostly waits on SQLite. `Preparer` runs the
preparation in worker processes so both proceed at once, and keeps the order
of the input. The first bad line stops everything with a LineError naming it,
so a caller can refuse the whole input before anything is written.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime

from .event import EventError, PreparedBatch, Source, format_time, prepare_into

__all__ = ["LineError", "Preparer", "prepare_lines"]


class LineError(ValueError):
    """Line `number` (1-based) of the input is not a valid event."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(f"line {number}: {message}")
        self.number = number
        self.message = message

    def __reduce__(self) -> tuple[type[LineError], tuple[int, str]]:
        return type(self), (self.number, self.message)  # raised in worker processes


def _prepare_chunk(first_line: int, lines: Sequence[bytes], received: str, source: Source | None) -> PreparedBatch:
    batch = PreparedBatch()
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            prepare_into(batch, line, received=received, default_source=source)
        except EventError as exc:
            raise LineError(first_line + offset, str(exc)) from None
    return batch


class Preparer:
    """A pool of worker processes preparing chunks of lines, in order.

    Create it before starting threads (it forks). workers=0 prepares in the
    calling process.
    """

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(0, min(4, (os.cpu_count() or 1) - 1)) if workers is None else workers
        self._pool = (
            ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("fork")) if self.workers else None
        )

    def prepare(
        self,
        lines: Sequence[bytes],
        *,
        chunk: int = 4096,
        received: str | None = None,
        default_source: Source | None = None,
    ) -> Iterator[PreparedBatch]:
        """Prepared events, chunk by chunk, in input order; raises LineError at the first bad line.

        Each chunk is a PreparedBatch: columns, which pass between processes and into the Log cheaply."""
        stamp = received or format_time(datetime.now(UTC))
        starts = range(0, len(lines), chunk)
        if self._pool is None:
            for start in starts:
                yield _prepare_chunk(start + 1, lines[start : start + chunk], stamp, default_source)
            return
        pool = self._pool
        todo = iter(starts)
        pending: deque[Future[PreparedBatch]] = deque()

        def submit_next() -> None:
            start = next(todo, None)
            if start is not None:
                pending.append(
                    pool.submit(_prepare_chunk, start + 1, lines[start : start + chunk], stamp, default_source)
                )

        for _ in range(2 * self.workers + 1):
            submit_next()
        while pending:
            done = pending.popleft().result()
            submit_next()
            yield done

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)

    def __enter__(self) -> Preparer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def prepare_lines(
    lines: Sequence[bytes], *, chunk: int = 4096, received: str | None = None, workers: int | None = 0
) -> Iterator[PreparedBatch]:
    """Prepared events chunk by chunk (in this process unless workers > 0)."""
    with Preparer(workers) as preparer:
        yield from preparer.prepare(lines, chunk=chunk, received=received)
