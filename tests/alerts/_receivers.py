"""A real HTTP receiver on loopback for the sink tests (not a test module).

It records every POST (path, headers, body) and answers with the statuses it is given,
in turn (then 200), so a test can make a receiver fail, refuse, or come up late on a
port chosen in advance.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Received", "Receiver", "free_port", "wait_until"]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def free_port() -> int:
    """A loopback port nothing listens on (for a receiver that starts later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, extra = self.server.owner.answer(Received(self.path, dict(self.headers.items()), body))
        reply = b"ok" if status < 300 else b'{"error": "scripted failure"}'
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, owner: Receiver) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.owner = owner


class Receiver:
    """Records POSTs; answers the scripted (status, headers) in turn, then 200."""

    def __init__(self, port: int = 0, script: list[tuple[int, dict[str, str]]] | None = None) -> None:
        self._port = port
        self._script = list(script or [])
        self._lock = threading.Lock()
        self.received: list[Received] = []
        """Requests answered 2xx."""
        self.refused: list[Received] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def answer(self, request: Received) -> tuple[int, dict[str, str]]:
        with self._lock:
            status, headers = self._script.pop(0) if self._script else (200, {})
            (self.received if status < 300 else self.refused).append(request)
            return status, headers

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> Receiver:
        self._server = _Server(self._port, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def count(self) -> int:
        with self._lock:
            return len(self.received)
