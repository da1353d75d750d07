"""Real HTTP receivers on loopback for the forwarder tests (not a test module).

BulkReceiver speaks Elasticsearch's `_bulk` API with `create` semantics
(a second create of an `_id` is 409 version_conflict_engine_exception) and
fails on purpose, drawn from a seeded RNG: a share of requests get 429 before
anything is stored, 503 *after* the documents are stored (a lost response),
or 200 with per-item 429/503 errors. HecReceiver is a Splunk HEC endpoint
with optional indexer acknowledgement that fails the same way.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["BulkReceiver", "HecReceiver", "serve"]


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        status, reply, headers = self.server.app.handle(self.path, dict(self.headers.items()), body)
        data = json.dumps(reply).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client was killed on purpose
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, app: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve `app.handle(path, headers, body)` on a free loopback port; yields the base URL."""
    server = _Server(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


Reply = tuple[int, Any, dict[str, str]]


class BulkReceiver:
    """`POST /_bulk` with create semantics, failing `failure_rate` of requests (seeded)."""

    def __init__(
        self,
        *,
        failure_rate: float = 0.0,
        seed: int = 0,
        api_key: str | None = None,
        refuse_ids: frozenset[str] = frozenset(),
        hold_after: int | None = None,
    ) -> None:
        self.failure_rate = failure_rate
        self.rng = random.Random(seed)
        self.api_key = api_key
        self.refuse_ids = refuse_ids
        self.hold_after = hold_after
        self.release = threading.Event()
        self.holding = 0
        """Requests held (not answered) because `hold_after` documents are stored."""
        self.docs: dict[str, dict[str, Any]] = {}
        self.stored: Counter[str] = Counter()
        """How many times each _id was stored: create semantics keep it at 1."""
        self.injected: Counter[str] = Counter()
        self.conflicts = 0
        self.first_index: list[int] = []
        """sealtrail.index of the first document of each request, in arrival order."""
        self.authorizations: list[str | None] = []
        self.lock = threading.Lock()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if urlsplit(path).path != "/_bulk":
            return 404, {"error": "no such route"}, {}
        headers = {k.lower(): v for k, v in headers.items()}
        self.authorizations.append(headers.get("authorization"))
        if self.api_key is not None and headers.get("authorization") != f"ApiKey {self.api_key}":
            return 401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}, "status": 401}, {}
        if headers.get("content-type") != "application/x-ndjson":
            return 400, {"error": "expected application/x-ndjson"}, {}
        if not body.endswith(b"\n"):
            return 400, {"error": {"type": "illegal_argument_exception", "reason": "must end with a newline"}}, {}
        lines = body.split(b"\n")[:-1]
        pairs = [(json.loads(lines[i]), json.loads(lines[i + 1])) for i in range(0, len(lines), 2)]
        if self.hold_after is not None and len(self.docs) >= self.hold_after:
            with self.lock:
                self.holding += 1
            self.release.wait(60)
            with self.lock:
                self.holding -= 1
            return 503, {"error": "held until its client was gone"}, {}
        with self.lock:
            if pairs:
                self.first_index.append(int(pairs[0][1]["sealtrail"]["index"]))
            draw = self.rng.random()
            if draw < self.failure_rate / 3:
                self.injected["429 before"] += 1
                return 429, {"error": {"type": "es_rejected_execution_exception"}, "status": 429}, {"Retry-After": "0"}
            items = []
            per_item_failures = self.failure_rate / 3 <= draw < 2 * self.failure_rate / 3
            for action, doc in pairs:
                create = action["create"]
                _id = create["_id"]
                if _id in self.refuse_ids:
                    error = {"type": "document_parsing_exception", "reason": "failed to parse field [x]"}
                    items.append({"create": {"_index": create["_index"], "_id": _id, "status": 400, "error": error}})
                elif per_item_failures and self.rng.random() < 0.5:
                    self.injected["item"] += 1
                    status, kind = self.rng.choice(((429, "es_rejected_execution_exception"), (503, "unavailable")))
                    error = {"type": kind, "reason": "injected"}
                    items.append({"create": {"_index": create["_index"], "_id": _id, "status": status, "error": error}})
                elif _id in self.docs:
                    self.conflicts += 1
                    error = {"type": "version_conflict_engine_exception", "reason": f"[{_id}]: document already exists"}
                    items.append({"create": {"_index": create["_index"], "_id": _id, "status": 409, "error": error}})
                else:
                    self.docs[_id] = doc
                    self.stored[_id] += 1
                    items.append({"create": {"_index": create["_index"], "_id": _id, "status": 201}})
            if 2 * self.failure_rate / 3 <= draw < self.failure_rate:
                self.injected["503 after"] += 1  # stored, but the client never hears it
                return 503, {"error": {"type": "unavailable_shards_exception"}, "status": 503}, {}
            errors = any(item["create"]["status"] >= 300 for item in items)
            return 200, {"took": 1, "errors": errors, "items": items}, {}


class HecReceiver:
    """`POST /services/collector/event` (and `/ack`) failing `failure_rate` of event requests (seeded)."""

    def __init__(self, token: str, *, failure_rate: float = 0.0, seed: int = 0) -> None:
        self.token = token
        self.failure_rate = failure_rate
        self.rng = random.Random(seed)
        self.events: list[dict[str, Any]] = []
        self.injected = 0
        self.ack_polls = 0
        self._acks: dict[str, dict[int, int]] = {}
        self._next_ack = 0
        self.lock = threading.Lock()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        headers = {k.lower(): v for k, v in headers.items()}
        if headers.get("authorization") != f"Splunk {self.token}":
            return 401, {"text": "Invalid token", "code": 4}, {}
        route = urlsplit(path)
        channel = headers.get("x-splunk-request-channel") or parse_qs(route.query).get("channel", [None])[0]
        with self.lock:
            if route.path == "/services/collector/ack":
                self.ack_polls += 1
                pending = self._acks.get(channel or "", {})
                answer = {}
                for ack in json.loads(body)["acks"]:
                    pending[ack] = pending.get(ack, 0) + 1
                    answer[str(ack)] = pending[ack] >= 2  # indexed by the second poll
                return 200, {"acks": answer}, {}
            if route.path != "/services/collector/event":
                return 404, {"text": "not found", "code": 404}, {}
            draw = self.rng.random()
            if draw < self.failure_rate / 2:
                self.injected += 1
                return 503, {"text": "Server is busy", "code": 9}, {}
            decoder = json.JSONDecoder()
            text, position = body.decode(), 0
            while position < len(text):
                event, position = decoder.raw_decode(text, position)
                self.events.append(event)
            if draw < self.failure_rate:
                self.injected += 1
                return 503, {"text": "Server is busy", "code": 9}, {}  # indexed, but the answer is lost
            reply: dict[str, Any] = {"text": "Success", "code": 0}
            if channel:
                self._next_ack += 1
                self._acks.setdefault(channel, {})[self._next_ack] = 0
                reply["ackId"] = self._next_ack
            return 200, reply, {}
