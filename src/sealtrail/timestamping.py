"""RFC 3161 time-stamps on the log's checkpoints, requested from a Time-Stamp Authority in the background.

One thread follows the sequencer's latest checkpoint. For a checkpoint that has
no time-stamp yet it sends a TimeStampReq over SHA-256 of the checkpoint text
(sealtrail.timestamp) to the TSA by HTTP POST (RFC 3161 §3.4,
application/timestamp-query), checks the reply (granted, the imprint, the
request's nonce, the signature chaining to the configured roots, the TSA's
critical timeStamping usage) and keeps it in the store's append-only
`timestamps` table. A time-stamp on checkpoint N dates every entry below N, so
when checkpoints come faster than the TSA answers, or than `interval` allows,
the ones in between are skipped. Failures back off exponentially up to
`retry_max` seconds.

Configuration, in sealtrail.toml (paths relative to that file):

    [timestamping]
    url = "https://tsa.example/tsr"      # the TSA's RFC 3161 HTTP endpoint
    ca_file = "tsa-ca.pem"               # roots the TSA's certificate must chain to (default: the system CA bundle)
    # tsa_cert = "tsa.pem"               # accept only this TSA certificate
    # interval = 0                       # fewest seconds between two requests (0: every checkpoint)
    # timeout = 10                       # seconds per request
    # retry_max = 300                    # longest wait between attempts after a failure
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from .log import Log
from .note import NoteError, parse_note
from .store.base import LogStore, StoreError
from .timestamp import (
    MAX_REPLY_BYTES,
    REPLY_MEDIA_TYPE,
    REQUEST_MEDIA_TYPE,
    TimestampError,
    TrustAnchors,
    load_trust,
    timestamp_request,
    verify_timestamp,
)

__all__ = ["Timestamping", "TimestampingSettings", "TsaUnavailable", "parse_timestamping", "request_timestamp"]

logger = logging.getLogger("sealtrail.timestamping")

RETRY_MIN = 0.5
"""First wait after a failed request (seconds); it doubles up to retry_max."""


@dataclass(frozen=True)
class TimestampingSettings:
    """`[timestamping]`: the TSA and who may sign for it (see the module docstring)."""

    url: str
    ca_file: Path | None = None
    tsa_cert: Path | None = None
    interval: float = 0.0
    timeout: float = 10.0
    retry_max: float = 300.0

    def trust(self) -> TrustAnchors:
        return load_trust(self.ca_file, self.tsa_cert)


_KNOWN = {"url", "ca_file", "tsa_cert", "interval", "timeout", "retry_max"}


def parse_timestamping(table: object, base: Path) -> TimestampingSettings:
    """The [timestamping] table of sealtrail.toml (relative paths from `base`); ValueError says what is wrong."""
    if not isinstance(table, Mapping):
        raise ValueError("timestamping must be a table")
    unknown = set(table) - _KNOWN
    if unknown:
        raise ValueError(f"unknown setting timestamping.{sorted(unknown)[0]}")
    url = table.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise ValueError("timestamping.url must be the TSA's http:// or https:// URL")
    paths: dict[str, Path | None] = {}
    for name in ("ca_file", "tsa_cert"):
        value = table.get(name)
        if value is not None and (not isinstance(value, str) or not value):
            raise ValueError(f"timestamping.{name} must be a file path")
        paths[name] = None if value is None else base / Path(value).expanduser()
    numbers: dict[str, float] = {}
    for name, default, minimum in (("interval", 0.0, 0.0), ("timeout", 10.0, 0.0), ("retry_max", 300.0, 0.0)):
        value = table.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            raise ValueError(f"timestamping.{name} must be a number of seconds >= {minimum:g}")
        if name != "interval" and value == 0:
            raise ValueError(f"timestamping.{name} must be a positive number of seconds")
        numbers[name] = float(value)
    settings = TimestampingSettings(url, paths["ca_file"], paths["tsa_cert"], **numbers)
    try:
        settings.trust()  # a missing or unreadable certificate file is a configuration error, found at start
    except TimestampError as exc:
        raise ValueError(f"timestamping: {exc}") from None
    return settings


class TsaUnavailable(Exception):
    """The TSA could not be reached, timed out, or answered with an HTTP error or a non-reply."""


def request_timestamp(client: httpx.Client, url: str, text: str, trust: TrustAnchors) -> tuple[bytes, datetime]:
    """Ask the TSA at `url` to time-stamp a checkpoint text; the verified reply (DER) and its genTime."""
    request = timestamp_request(text)
    try:
        with client.stream(
            "POST", url, content=request.as_bytes(), headers={"Content-Type": REQUEST_MEDIA_TYPE}
        ) as response:
            if response.status_code != 200:
                raise TsaUnavailable(f"the TSA answered HTTP {response.status_code}")
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind != REPLY_MEDIA_TYPE:
                raise TsaUnavailable(f"the TSA answered {kind or 'no content type'}, not {REPLY_MEDIA_TYPE}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise TsaUnavailable(f"the TSA's reply is larger than {MAX_REPLY_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise TsaUnavailable(f"{type(exc).__name__}: {exc}") from None
    info = verify_timestamp(body, text, trust, nonce=request.nonce)
    return info.reply, info.gen_time


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class _Status:
    url: str
    ok: bool = False
    """The latest request got a time-stamp that verified."""
    size: int | None = None
    """The largest time-stamped checkpoint."""
    gen_time: str | None = None
    last_success: str | None = None
    last_success_unix: float | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    requests: int = 0
    failures: int = 0


class Timestamping:
    """Gets the log's checkpoints time-stamped by the configured TSA (see the module docstring)."""

    def __init__(self, settings: TimestampingSettings, log: Log, store: LogStore) -> None:
        self.settings = settings
        self.log = log
        self.store = store
        self.trust = settings.trust()
        self.stopping = threading.Event()
        self._client = httpx.Client(timeout=settings.timeout, follow_redirects=False)
        self._lock = threading.Lock()
        self._status = _Status(settings.url)
        self._thread: threading.Thread | None = None
        self._last_request = float("-inf")

    def start(self) -> Timestamping:
        latest = self.store.latest_timestamp()
        if latest is not None:
            with self._lock:
                self._status.size, self._status.gen_time = latest
        self._thread = threading.Thread(target=self._run, name="sealtrail-timestamping", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop requesting; waits for a request in flight (at most the timeout)."""
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(self.settings.timeout + 2)
        self._client.close()

    def __enter__(self) -> Timestamping:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> dict[str, Any]:
        """The TSA, the latest time-stamped checkpoint and the latest outcome (for GET /v1/timestamping)."""
        with self._lock:
            status = self._status
            return {
                "url": status.url,
                "ok": status.ok,
                "latest": None if status.size is None else {"size": status.size, "gen_time": status.gen_time},
                "last_success": status.last_success,
                "last_error": status.last_error,
                "last_error_at": status.last_error_at,
                "requests": status.requests,
                "failures": status.failures,
            }

    def provide_metrics(self, provide: Callable[[str, Callable[[], float | Mapping[str, float]]], None]) -> None:
        """Export the state through a metrics registry's `provide(name, provider)`."""

        def read(value: Callable[[_Status], float]) -> Callable[[], float]:
            def provider() -> float:
                with self._lock:
                    return value(self._status)

            return provider

        provide("timestamp_ok", read(lambda s: 1.0 if s.ok else 0.0))
        provide("timestamp_size", read(lambda s: float(s.size or 0)))
        provide("timestamp_last_success_timestamp_seconds", read(lambda s: float(s.last_success_unix or 0)))

    # -- the worker thread ---------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        while not self.stopping.is_set():
            if backoff and self.stopping.wait(backoff * random.uniform(0.8, 1.2)):
                return
            try:
                done = self._round()
            except Exception as exc:  # a store closed under us at shutdown, or a bug: keep the server up
                if self.stopping.is_set():
                    return
                self._failed(f"{type(exc).__name__}: {exc}")
                done = False
            backoff = 0.0 if done else min(max(backoff * 2, RETRY_MIN), self.settings.retry_max)

    def _round(self) -> bool:
        """Time-stamp the latest checkpoint if it has none, else wait for a newer one."""
        size, note = self.log.latest_checkpoint()
        if self.store.timestamp(size) is not None:
            with contextlib.suppress(TimeoutError):
                self.log.wait_for_checkpoint(size + 1, timeout=0.5)
            return True
        wait = self._last_request + self.settings.interval - time.monotonic()
        if wait > 0:
            self.stopping.wait(wait)
            return True  # the next round takes the checkpoint that is latest by then
        return self._request(size, note)

    def _request(self, size: int, note: bytes) -> bool:
        self._last_request = time.monotonic()
        with self._lock:
            self._status.requests += 1
        try:
            text, _ = parse_note(note)
            reply, gen_time = request_timestamp(self._client, self.settings.url, text, self.trust)
        except (TsaUnavailable, TimestampError, NoteError) as exc:
            self._failed(str(exc))
            return False
        stamped = gen_time.isoformat()
        try:
            self.store.add_timestamp(size, reply, stamped)
        except StoreError as exc:
            self._failed(f"cannot keep the time-stamp: {exc}")
            return False
        logger.info("checkpoint %d time-stamped at %s", size, stamped)
        with self._lock:
            status = self._status
            status.ok = True
            status.size, status.gen_time = size, stamped
            status.last_success = _now()
            status.last_success_unix = time.time()
        return True

    def _failed(self, message: str) -> None:
        logger.warning("time-stamping at %s: %s", self.settings.url, message)
        with self._lock:
            status = self._status
            status.ok = False
            status.failures += 1
            status.last_error = message
            status.last_error_at = _now()
