"""Syslog over TCP (RFC 6587) or TLS (RFC 5425): RFC 5424 messages with a CEF payload, octet-counted.

Plain syslog has no application-level acknowledgement: a batch counts as
delivered once the kernel has taken all of it (sendall returned). Before each
batch the sink checks whether the receiver closed the connection and
reconnects, so a restarted receiver loses nothing that was sent after it went
away; what was in flight when it died may be lost (use the Elasticsearch or
HEC sinks, or rsyslog's own disk queues, where that matters).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
from collections.abc import Sequence

from ..record import ForwardRecord
from ..syslog import SyslogFormat, frame
from .base import DeadLetter, DeliveryError

__all__ = ["SyslogSink"]


class SyslogSink:
    """One connection to one syslog receiver, reopened when it breaks."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        fmt: SyslogFormat,
        tls: ssl.SSLContext | None = None,
        server_name: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.host, self.port, self.fmt = host, port, fmt
        self.tls, self.server_name, self.timeout = tls, server_name or host, timeout
        self._sock: socket.socket | None = None

    @property
    def what(self) -> str:
        return f"syslog {'tls' if self.tls else 'tcp'}://{self.host}:{self.port}"

    def _connection(self) -> socket.socket:
        sock = self._sock
        if sock is not None and self._closed_by_peer(sock):
            self._drop()
            sock = None
        if sock is None:
            raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
            try:
                sock = self.tls.wrap_socket(raw, server_hostname=self.server_name) if self.tls else raw
            except BaseException:
                raw.close()
                raise
            self._sock = sock
        return sock

    def _closed_by_peer(self, sock: socket.socket) -> bool:
        """True if the receiver has closed (or reset) the connection; a syslog receiver sends nothing else.

        A readable TLS socket may only hold TLS 1.3 session tickets: a non-blocking read consumes
        them and tells them apart from the end of the stream.
        """
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            if not isinstance(sock, ssl.SSLSocket):
                return sock.recv(1, socket.MSG_PEEK) == b""
            sock.setblocking(False)
            try:
                return sock.recv(1) == b""
            except ssl.SSLWantReadError:
                return False
            finally:
                sock.settimeout(self.timeout)
        except (OSError, ValueError):
            return True

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        data = b"".join(frame(self.fmt.message(record)) for record in records)
        try:
            self._connection().sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self._drop()
            raise DeliveryError(f"{self.what}: {type(exc).__name__}: {exc}", records) from None
        return []

    def close(self) -> None:
        self._drop()
