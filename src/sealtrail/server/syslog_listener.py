"""Syslog receivers inside `serve`: TCP or TLS, RFC 6587 framing, RFC 5424 and RFC 3164 messages.

    --syslog tcp://127.0.0.1:6514                 events with source.id "syslog"
    --syslog tls://0.0.0.0:6514?source=bastion    TLS (server.tls_cert / tls_key), source.id "bastion"

Syslog over TCP has no acknowledgement: each read's messages are appended as
one batch, and a message that cannot be parsed is reported in the server log
(its position, never its text) and skipped; the connection stays open.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from ..event import EventError, PreparedEvent, format_time, prepare
from ..log import Log
from ..metrics import Metrics
from ..sources import syslog
from ..sources.base import SourcePayloadError

__all__ = ["SYSLOG_ROUTE", "Listener", "parse_spec", "start_listeners"]

logger = logging.getLogger("sealtrail.syslog")

SYSLOG_ROUTE = "syslog"
"""The `route` label of syslog messages in the ingest metrics (one parse failure: reason malformed)."""


@dataclass(frozen=True)
class Listener:
    scheme: str
    host: str
    port: int
    source: str


def parse_spec(spec: str) -> Listener:
    """tcp://HOST:PORT or tls://HOST:PORT, optionally ?source=NAME."""
    parts = urlsplit(spec)
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or parts.port is None:
        raise ValueError(f"--syslog {spec!r}: expected tcp://HOST:PORT or tls://HOST:PORT[?source=NAME]")
    source = parse_qs(parts.query).get("source", ["syslog"])[0]
    return Listener(parts.scheme, parts.hostname, parts.port, source)


class _Connection:
    def __init__(self, log: Log, source: str, metrics: Metrics | None) -> None:
        self.log = log
        self.source = source
        self.metrics = metrics
        self.decoder = syslog.FrameDecoder()
        self.frames_seen = 0

    def prepared(self, frames: list[bytes]) -> list[PreparedEvent]:
        now = datetime.now(UTC)
        received = format_time(now)
        out: list[PreparedEvent] = []
        for frame in frames:
            self.frames_seen += 1
            try:
                message = syslog.parse_message(frame, received=now)
                envelopes = syslog.to_envelopes(message, self.source)
                out.extend(prepare(envelope, received=received) for envelope in envelopes)
            except (SourcePayloadError, EventError) as exc:
                logger.warning("syslog %s: message %d skipped: %s", self.source, self.frames_seen, exc)
                if self.metrics is not None:
                    self.metrics.record_rejected(SYSLOG_ROUTE, 400)
        return out

    def frames(self, data: bytes | None) -> list[bytes]:
        try:
            return self.decoder.feed(data) if data else self.decoder.finish()
        except syslog.FramingError as exc:
            logger.warning("syslog %s: %s", self.source, exc)
            return exc.frames

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(65536)
                batch = self.prepared(self.frames(data))
                if batch:
                    started = time.perf_counter()
                    receipts = await asyncio.wrap_future(self.log.submit(batch))
                    if self.metrics is not None:
                        self.metrics.record_appended(batch, receipts, time.perf_counter() - started)
                if not data:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _handler(log: Log, source: str, metrics: Metrics | None) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _Connection(log, source, metrics).serve(reader, writer)

    return handle


async def start_listeners(
    specs: tuple[str, ...], log: Log, tls_cert: str | None, tls_key: str | None, metrics: Metrics | None = None
) -> list[asyncio.base_events.Server]:
    """Start one asyncio server per spec; the caller closes them before closing the Log."""
    servers = []
    for spec in specs:
        listener = parse_spec(spec)
        context = None
        if listener.scheme == "tls":
            if not tls_cert or not tls_key:
                raise ValueError("a tls:// syslog listener needs server.tls_cert and server.tls_key")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(tls_cert, tls_key)

        handler = _handler(log, listener.source, metrics)
        servers.append(await asyncio.start_server(handler, listener.host, listener.port, ssl=context))
        logger.info("syslog listening on %s", spec)
    return servers
