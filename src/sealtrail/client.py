"""The Python SDK: build, sign and send events to a sealtrail server, spooling while it is away.

    from sealtrail.client import Client
    from sealtrail.note import parse_signer

    signer = parse_signer(Path("runner.skey").read_text())
    with Client("https://audit.example.com", token, signer=signer,
                source={"type": "api", "id": "runner"}, spool=Path("~/.cache/sealtrail/spool").expanduser()) as client:
        client.emit("deploy", action="deploy.production", outcome="success", env="prod")

Invariants:

- **Signed at the source.** With a signer, every event is completed and signed with
  `sealtrail.event.sign_event` (Ed25519 over the canonical envelope without `sig` and
  `received`) before it leaves the process; the bytes sent are its RFC 8785 form, so the
  server sees exactly what was signed.
- **Ids are fixed before the first attempt.** Signing fixes `id` and `salt`; unsigned
  events get their `id` (UUIDv7, or derived from `source.delivery`) and `time` here. A
  retry, or a redelivery from the spool, carries the same id, and the server answers a
  repeated id with the original receipt (`"duplicate": true`) and writes nothing: every
  event is stored exactly once, even when a response was lost after the server had
  committed it, or the process died between the server's 200 and deleting the spool file.
- **Retries.** Connection errors, timeouts, 5xx and 429 are retried with exponential
  backoff and jitter (`backoff * 2**n`, honouring Retry-After up to MAX_DELAY); any other
  answer that is not 200 raises ClientError with the server's message, without retrying.
- **Spool.** When the server stays unreachable after the retries and a spool directory
  is set, the already-signed events are written there as one NDJSON file per batch
  (written to a temporary file, fsynced, renamed; mode 0600) and `send` returns
  `{"id", "spooled": true, "spool"}` stand-ins instead of receipts. A spooled file is
  deleted only after the server answered 200 for it. Every send first flushes older
  spooled batches, oldest first, so the server receives events in the order they were
  emitted. Without a spool, ServerUnreachable is raised.
- **Concurrency.** A lock serialises sends within a process; an exclusive flock on
  `<spool>/.lock` serialises processes sharing a spool, so two flushers never send the
  same file twice.
"""

from __future__ import annotations

import fcntl
import os
import random
import secrets
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson

from . import __version__
from .event import EventError, Source, format_time, normalise, sign_event
from .jcs import CanonicalJsonError, canonical_json
from .note import Ed25519Signer

__all__ = ["MAX_DELAY", "Client", "ClientError", "ServerUnreachable", "read_spool_file"]

MAX_DELAY = 10.0
"""Longest single wait between two attempts, in seconds (Retry-After included)."""

EVENTS_PATH = "/v1/events"
SPOOL_SUFFIX = ".ndjson"
_VALIDATION_SOURCE = Source(type="api", id="-")
"""Stands in for a source the server will fill in (the token's), so unsigned events are still validated here."""


class ClientError(Exception):
    """The server refused a request (a 4xx other than 429, or an unusable answer); nothing was retried."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}" if status is not None else message)
        self.status = status
        self.message = message


class ServerUnreachable(ConnectionError):
    """The server could not be reached, or kept failing (5xx/429), after every retry."""


def _server_message(response: httpx.Response) -> str:
    """The server's one-line {"error": ...} message, or the start of whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])
    text = " ".join(response.text.split())[:200]
    return text or response.reason_phrase or "no message"


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    return float(value) if value.isdigit() else None


def _ndjson(events: Sequence[Mapping[str, Any]]) -> bytes:
    """One RFC 8785 line per event: the server re-canonicalises to the same bytes, so signatures hold."""
    try:
        return b"".join(canonical_json(event) + b"\n" for event in events)
    except CanonicalJsonError as exc:
        raise EventError(str(exc)) from None


class Client:
    """A sealtrail ingest client (see the module docstring for its guarantees).

    `source` ({"type", "id"}) is given to events that name none; `http` may be an
    httpx.Client to send with (it is then not closed here), e.g. one bound to an
    in-process app.
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        signer: Ed25519Signer | None = None,
        source: Mapping[str, Any] | None = None,
        spool: Path | None = None,
        timeout: float = 10,
        retries: int = 5,
        backoff: float = 0.2,
        http: httpx.Client | None = None,
    ) -> None:
        if retries < 0 or backoff < 0 or timeout <= 0:
            raise ValueError("retries and backoff must be >= 0 and timeout > 0")
        self.url = url.rstrip("/")
        self.signer = signer
        self.source = dict(source) if source is not None else None
        self.spool = spool
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/x-ndjson",
            "User-Agent": f"sealtrail-client/{__version__}",
        }
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._lock = threading.Lock()
        self._last_ns = 0

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # -- building events ---------------------------------------------------------

    def complete(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The event as it will be sent: validated, with its id and time fixed (and signed with a signer).

        Raises EventError (a ValueError) for an invalid event; nothing is sent or spooled then.
        """
        if not isinstance(event, Mapping):
            raise EventError("an event must be a JSON object")
        draft = dict(event)
        if "source" not in draft and self.source is not None:
            draft["source"] = dict(self.source)
        now = datetime.now(UTC)
        if self.signer is not None:
            return sign_event(draft, self.signer, now=now)
        draft.setdefault("time", format_time(now))
        completed = normalise(draft, received=format_time(now), default_source=_VALIDATION_SOURCE)
        draft["id"] = completed.id  # the source's, else derived from source.delivery, else a fresh UUIDv7
        return draft

    # -- sending -----------------------------------------------------------------

    def emit(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send one event {"kind": kind, **fields}; its receipt (or spooled stand-in)."""
        return self.send([{"kind": kind, **fields}])[0]

    def send(self, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Send events as one batch; receipts in input order, after the server's durable commit.

        Older spooled batches are flushed first. If the server stays unreachable,
        the batch is spooled (when a spool is set) and each item is
        {"id", "spooled": true, "spool": file}. If a spooled batch is refused,
        the new batch is spooled behind it and ClientError is raised.
        """
        if not events:
            return []
        prepared = [self.complete(event) for event in events]
        body = _ndjson(prepared)
        with self._exclusive():
            try:
                self._flush_locked([])
            except ServerUnreachable:
                return self._spool_batch(body, prepared)
            except ClientError as exc:
                self._spool_batch(body, prepared)
                raise ClientError(exc.status, f"{exc.message}; the new events were spooled behind it") from None
            try:
                return self._post(body, len(prepared))
            except ServerUnreachable:
                if self.spool is None:
                    raise
                return self._spool_batch(body, prepared)

    def flush(self) -> int:
        """Send every spooled batch, oldest first; the number of events delivered.

        Raises ServerUnreachable (the rest stays spooled) or ClientError (the refused
        file stays spooled, named in the message).
        """
        return len(self.flush_receipts())

    def flush_receipts(self) -> list[dict[str, Any]]:
        """flush(), returning the server's receipts (duplicate=true for events it already had)."""
        receipts: list[dict[str, Any]] = []
        with self._exclusive():
            self._flush_locked(receipts)
        return receipts

    def spooled(self) -> list[Path]:
        """The spooled batch files, oldest first."""
        if self.spool is None or not self.spool.is_dir():
            return []
        return sorted(p for p in self.spool.iterdir() if p.name.endswith(SPOOL_SUFFIX) and not p.name.startswith("."))

    # -- internals ---------------------------------------------------------------

    @contextmanager
    def _exclusive(self) -> Iterator[None]:
        """This process's lock, then (with a spool) the spool's flock: one sender at a time per spool."""
        with self._lock:
            if self.spool is None:
                yield
                return
            self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.spool / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the flock

    def _flush_locked(self, receipts: list[dict[str, Any]]) -> None:
        for path in self.spooled():
            body = path.read_bytes()
            count = sum(1 for line in body.split(b"\n") if line.strip())
            try:
                got = self._post(body, count) if count else []
            except ClientError as exc:
                raise ClientError(
                    exc.status, f"spooled batch {path} was refused: {exc.message} (fix the cause or move the file away)"
                ) from None
            receipts.extend(got)
            path.unlink()
            _fsync_dir(path.parent)

    def _post(self, body: bytes, count: int) -> list[dict[str, Any]]:
        """POST one batch; retried on transport errors, 5xx and 429."""
        attempt = 0
        while True:
            wait_at_least = 0.0
            try:
                response = self._http.post(
                    self.url + EVENTS_PATH, content=body, headers=self._headers, timeout=self.timeout
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                status = response.status_code
                if status == 200:
                    return self._receipts(response, count)
                if status != 429 and status < 500:
                    raise ClientError(status, _server_message(response))
                problem = f"HTTP {status}: {_server_message(response)}"
                wait_at_least = _retry_after(response) or 0.0
            if attempt >= self.retries:
                raise ServerUnreachable(f"{self.url}: {problem} (after {attempt + 1} attempts)")
            delay = min(MAX_DELAY, self.backoff * 2**attempt)
            time.sleep(min(MAX_DELAY, max(wait_at_least, delay / 2 + random.uniform(0, delay / 2))))
            attempt += 1

    @staticmethod
    def _receipts(response: httpx.Response, count: int) -> list[dict[str, Any]]:
        try:
            receipts = response.json()["receipts"]
        except (ValueError, KeyError, TypeError):
            raise ClientError(200, 'the answer is not sealtrail\'s {"receipts": [...]}') from None
        if not isinstance(receipts, list) or len(receipts) != count:
            raise ClientError(200, f"expected {count} receipts in the answer")
        return [dict(receipt) for receipt in receipts]

    def _spool_batch(self, body: bytes, events: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Write one batch atomically (temporary file, fsync, rename, fsync of the directory)."""
        if self.spool is None:
            raise ServerUnreachable(f"{self.url}: unreachable and no spool directory is set")
        now = max(time.time_ns(), self._last_ns + 1)
        self._last_ns = now
        name = f"{now:020d}-{os.getpid()}-{secrets.token_hex(4)}{SPOOL_SUFFIX}"
        final = self.spool / name
        temporary = self.spool / f".{name}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            try:
                view = memoryview(body)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        _fsync_dir(self.spool)
        return [{"id": event["id"], "spooled": True, "spool": str(final)} for event in events]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_spool_file(path: Path) -> list[dict[str, Any]]:
    """The events of one spooled batch (for inspection)."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
