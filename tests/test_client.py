"""The Python SDK (sealtrail.client) against a real server: uvicorn serving the app in this process, on a real port."""

from __future__ import annotations

import json
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import rfc8785
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from _support import free_port
from sealtrail.client import Client, ClientError, ServerUnreachable, read_spool_file
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.event import EventError
from sealtrail.note import Ed25519Signer, b64decode_strict, generate_ed25519
from sealtrail.server import Settings, create_app

SOURCE = {"type": "api", "id": "runner"}


class LiveServer:
    """A real sealtrail HTTP server (uvicorn in a thread) that can be stopped and started on the same port.

    The source `runner` (type api) has the signer's key and requires signatures;
    `open` is a source without keys.
    """

    def __init__(self, root: Path) -> None:
        self.directory = DataDir(root / "log")
        self.directory.init("client.sealtrail.test/log")
        self.signer = generate_ed25519("runner")
        credentials = Credentials(self.directory.credentials)
        credentials.add_source("runner", "api", keys=(self.signer.verifier.vkey,), require_signature=True)
        credentials.add_source("open", "api")
        self.token, _ = credentials.create_token("ingest", {"ingest"})
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        app = create_app(self.directory, Settings(checkpoint_interval=0.05))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        self._server, self._thread = server, thread

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=30)
            assert not self._thread.is_alive()
        self._server = self._thread = None

    def entries(self) -> list[dict[str, Any]]:
        """Every stored entry, parsed, in log order."""
        store = self.directory.store()
        try:
            out = []
            for index in range(store.size()):
                entry = store.entry(index)
                assert entry is not None
                out.append(json.loads(entry))
            return out
        finally:
            store.close()

    def size(self) -> int:
        return len(self.entries())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    live = LiveServer(tmp_path)
    live.start()
    yield live
    live.stop()


def _counting_http(counter: list[httpx.Request]) -> httpx.Client:
    return httpx.Client(timeout=10, event_hooks={"request": [counter.append]})


def _independently_verified(entry: dict[str, Any], signer: Ed25519Signer) -> None:
    """Ed25519 over RFC 8785 of the stored entry less sig and received, checked with `cryptography` and `rfc8785`."""
    signed_part = {k: v for k, v in entry.items() if k not in ("sig", "received")}
    assert entry["sig"]["key"] == f"{signer.name}+{signer.key_id:08x}"
    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(
        b64decode_strict(entry["sig"]["value"]), rfc8785.dumps(signed_part)
    )


# --- signing at the source ------------------------------------------------------------------------------


def test_source_signed_event_verifies_end_to_end_and_is_stored_with_its_sig(server: LiveServer) -> None:
    with Client(server.url, server.token, signer=server.signer, source=SOURCE) as client:
        receipt = client.emit("deploy", action="deploy.production", outcome="success", env="prod", attrs={"v": 2.5})
    assert "spooled" not in receipt and "duplicate" not in receipt
    stored = server.entries()[receipt["index"]]
    assert stored["id"] == receipt["id"] and stored["source"] == SOURCE and stored["attrs"] == {"v": 2.5}
    assert stored["sig"]["alg"] == "ed25519"
    _independently_verified(stored, server.signer)


def test_an_altered_signed_event_is_refused_with_401_and_nothing_is_stored(server: LiveServer) -> None:
    signing = Client(server.url, server.token, signer=server.signer, source=SOURCE)
    signed = signing.complete({"kind": "deploy", "outcome": "failure"})
    requests: list[httpx.Request] = []
    with Client(server.url, server.token, http=_counting_http(requests), backoff=0) as plain:
        for altered in ({**signed, "outcome": "success"}, {**signed, "env": "prod"}):
            with pytest.raises(ClientError) as refused:
                plain.send([altered])
            assert refused.value.status == 401 and "sig" in refused.value.message
        stranger = Client(server.url, server.token, signer=generate_ed25519("runner"), source=SOURCE)
        with pytest.raises(ClientError) as unknown_key:
            plain.send([stranger.complete({"kind": "deploy"})])
        assert unknown_key.value.status == 401
    assert len(requests) == 3  # a 4xx is not retried
    assert server.size() == 0
    assert signing.send([signed])[0]["id"] == signed["id"]  # the unaltered one is fine
    assert server.size() == 1


def test_a_4xx_is_raised_at_once_and_never_spooled(server: LiveServer, tmp_path: Path) -> None:
    requests: list[httpx.Request] = []
    spool = tmp_path / "spool"
    with Client(server.url, server.token, spool=spool, http=_counting_http(requests)) as client:
        with pytest.raises(ClientError) as unsigned:
            client.emit("deploy", source=SOURCE)  # the source requires signatures
        assert unsigned.value.status == 401 and "requires events signed" in unsigned.value.message
        assert len(requests) == 1
        assert client.spooled() == []
    with Client(server.url, "st_bogus_token", spool=spool) as bad_token, pytest.raises(ClientError) as denied:
        bad_token.emit("deploy", source={"type": "api", "id": "open"})
    assert denied.value.status == 401 and server.size() == 0


def test_invalid_events_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    requests: list[httpx.Request] = []
    client = Client("http://127.0.0.1:9", "t", spool=tmp_path / "spool", http=_counting_http(requests))
    for bad in ({"kind": "Not A Kind"}, {"kind": "deploy", "outcome": "maybe"}, {"kind": "deploy", "nope": 1}):
        with pytest.raises(EventError):
            client.send([bad])
    assert requests == [] and client.spooled() == []
    completed = client.complete({"kind": "deploy"})
    assert completed["id"] and completed["time"]  # fixed before the first attempt
    signer = generate_ed25519("runner")
    with pytest.raises(EventError, match="source"):
        Client("http://127.0.0.1:9", "t", signer=signer).complete({"kind": "deploy"})  # signing needs a source


def test_5xx_and_429_are_retried_then_delivered_once(server: LiveServer) -> None:
    """A flaky proxy in front of the real server: two failures, then the request goes through."""
    attempts: list[int] = []
    upstream = httpx.Client(timeout=10)

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            return httpx.Response(503, json={"error": "the log cannot accept events now"})
        if len(attempts) == 2:
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"error": "slow down"})
        real = upstream.post(str(request.url), content=request.content, headers=dict(request.headers))
        return httpx.Response(real.status_code, content=real.content, headers={"Content-Type": "application/json"})

    http = httpx.Client(transport=httpx.MockTransport(flaky))
    with Client(server.url, server.token, signer=server.signer, source=SOURCE, backoff=0, http=http) as client:
        receipt = client.emit("ci.run", outcome="success")
    assert len(attempts) == 3 and "duplicate" not in receipt
    assert [e["id"] for e in server.entries()] == [receipt["id"]]


def test_a_server_that_keeps_failing_is_unreachable_after_the_retries(tmp_path: Path) -> None:
    attempts: list[int] = []

    def failing(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        return httpx.Response(502, text="<html>bad gateway</html>")

    http = httpx.Client(transport=httpx.MockTransport(failing))
    client = Client("http://audit.test", "t", retries=3, backoff=0, http=http)
    with pytest.raises(ServerUnreachable, match="502"):
        client.emit("deploy", source=SOURCE)
    assert len(attempts) == 4
    closed = Client(f"http://127.0.0.1:{free_port()}", "t", retries=1, backoff=0)
    with pytest.raises(ServerUnreachable, match=r"ConnectError.*after 2 attempts"):
        closed.emit("deploy", source=SOURCE)


# --- spooling and exactly-once delivery -------------------------------------------------------------------


def test_spooled_while_down_then_flushed_exactly_once(server: LiveServer, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server.stop()
    with Client(server.url, server.token, signer=server.signer, source=SOURCE, spool=spool, backoff=0) as client:
        first = client.send([{"kind": "deploy", "env": "prod"}, {"kind": "deploy", "env": "staging"}])
        second = [client.emit("ci.run", outcome="failure")]
        assert all(r["spooled"] for r in first + second)
        files = client.spooled()
        assert len(files) == 2 and [r["spool"] for r in (first[0], second[0])] == [str(p) for p in files]
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            for event in read_spool_file(path):
                _independently_verified(event, server.signer)  # signed before spooling
        assert not [p for p in spool.iterdir() if p.name.endswith(".tmp")]
        kept = tmp_path / "kept"
        shutil.copytree(spool, kept)
        spooled_ids = [r["id"] for r in first + second]

        server.start()
        assert client.flush() == 3
        assert client.spooled() == []
        stored = server.entries()
        assert [e["id"] for e in stored] == spooled_ids  # each once, in the order emitted
        for entry in stored:
            _independently_verified(entry, server.signer)

        # A redelivery (e.g. the 200 was lost, or a crash came before the file was deleted) writes nothing.
        for path in kept.glob("*.ndjson"):
            shutil.copy(path, spool / path.name)
        again = client.flush_receipts()
        assert [r["id"] for r in again] == spooled_ids and all(r["duplicate"] for r in again)
        assert [r["index"] for r in again] == list(range(3))
        assert server.size() == 3
        assert client.flush() == 0


def test_a_send_flushes_older_spooled_events_first(server: LiveServer, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server.stop()
    client = Client(server.url, server.token, signer=server.signer, source=SOURCE, spool=spool, backoff=0, retries=1)
    early = [client.emit("deploy", action=f"early-{n}")["id"] for n in range(3)]
    server.start()
    late = client.emit("deploy", action="late")
    assert "spooled" not in late and late["index"] == 3
    assert [e["id"] for e in server.entries()] == [*early, late["id"]]
    assert client.spooled() == []


def test_two_flushers_never_send_the_same_batch_twice(server: LiveServer, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server.stop()
    writer = Client(server.url, server.token, signer=server.signer, source=SOURCE, spool=spool, retries=0)
    ids = [writer.emit("ci.job", action=f"job-{n}")["id"] for n in range(40)]
    server.start()
    results: list[list[dict[str, Any]]] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def flusher() -> None:
        own = Client(server.url, server.token, spool=spool)  # its own lock file descriptor, like another process
        barrier.wait()
        try:
            results.append(own.flush_receipts())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=flusher) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == [] and len(results) == 2
    delivered = [r for batch in results for r in batch]
    assert sorted(r["id"] for r in delivered) == sorted(ids)
    assert not any(r.get("duplicate") for r in delivered)
    assert [e["id"] for e in server.entries()] == ids


def test_unsigned_events_keep_their_id_through_the_spool(server: LiveServer, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    server.stop()
    client = Client(server.url, server.token, source={"type": "api", "id": "open"}, spool=spool, retries=0)
    spooled = client.emit("config.change", action="set", attrs={"key": "x"})
    [path] = client.spooled()
    kept = path.read_bytes()
    server.start()
    assert client.flush() == 1
    path.write_bytes(kept)
    [again] = client.flush_receipts()
    assert again["id"] == spooled["id"] and again["duplicate"] is True
    [entry] = server.entries()
    assert entry["id"] == spooled["id"] and "sig" not in entry
