"""`sealtrail serve` as a user runs it: first run, tokens from the CLI, tiles over HTTP, graceful shutdown."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from _support import free_port, wait_until_serving
from conftest import CliResult
from sealtrail.datadir import DataDir

ORIGIN_ARGS = ("--origin", "serve.sealtrail.test/log")


class Server:
    def __init__(self, directory: Path, port: int, log: Path) -> None:
        self.directory = directory
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealtrail", "serve", "--dir", str(directory), "--port", str(port), *ORIGIN_ARGS],
            stdout=subprocess.DEVNULL,
            stderr=log.open("wb"),
        )
        wait_until_serving(self.url, self.proc, log)

    def stop(self) -> None:
        """SIGTERM, then wait: uvicorn drains requests, the lifespan closes the Log, and the signal is re-raised."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        assert code in (0, -signal.SIGTERM), code
        assert "Application shutdown complete" in self.log.read_text()


ADMIN_TOKEN = r"admin token \(shown once, stored hashed\): (st_\S+)"


def _admin_token(server: Server) -> str:
    found = re.search(ADMIN_TOKEN, server.log.read_text())
    assert found is not None
    return found.group(1)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "data", free_port(), tmp_path / "serve.log")
    yield running
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def test_first_run_creates_the_log_and_an_admin_token_printed_once(
    server: Server, cli: Callable[..., CliResult]
) -> None:
    printed = server.log.read_text()
    assert len(re.findall(ADMIN_TOKEN, printed)) == 1
    admin = _admin_token(server)
    assert admin not in (server.directory / "credentials.db").read_bytes().decode(errors="replace")
    assert oct((server.directory / "credentials.db").stat().st_mode & 0o777) == "0o600"
    created = cli("token", "create", "--scope", "ingest", "--name", "ci", "--dir", server.directory)
    assert created.code == 0 and created.text.strip().startswith("st_") and len(created.text.strip().split()) == 1
    ingest = created.text.strip()
    response = httpx.post(
        f"{server.url}/v1/events?wait=checkpoint",
        json={"kind": "deploy", "source": {"type": "api", "id": "cli"}},
        headers={"Authorization": f"Bearer {ingest}"},
    )
    assert response.status_code == 200, response.text
    verified = cli("tiles", "verify", server.url, "--vkey", server.directory / "log.vkey", "--token", admin)
    assert verified.code == 0, verified.stderr
    refused = cli("tiles", "verify", server.url, "--vkey", server.directory / "log.vkey")
    assert refused.code == 1 and "--token" in refused.stderr
    server.stop()
    restarted = server.log.read_text()
    assert ingest not in restarted and admin not in restarted.replace(printed, "")


def test_sigterm_under_load_keeps_every_acknowledged_event(server: Server, cli: Callable[..., CliResult]) -> None:
    admin = _admin_token(server)
    acknowledged: list[dict[str, object]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {admin}"}, timeout=30) as http:
            sent = 0
            while not stop.is_set():
                body = {"kind": "ci.job", "source": {"type": "api", "id": f"worker-{worker}", "delivery": str(sent)}}
                try:
                    response = http.post(f"{server.url}/v1/events", json=body)
                except httpx.TransportError:
                    return
                if response.status_code == 200:
                    with lock:
                        acknowledged.extend(response.json()["receipts"])
                sent += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    server.stop()
    stop.set()
    for thread in threads:
        thread.join()
    assert len(acknowledged) > 50
    store = DataDir(server.directory).store()
    try:
        for receipt in acknowledged:
            entry = store.entry(int(str(receipt["index"])))
            assert entry is not None, receipt
            assert json.loads(entry)["id"] == receipt["id"]
        latest = store.latest_checkpoint()
        assert latest is not None and latest[0] == store.size()  # drained and signed on shutdown
    finally:
        store.close()
    audit = cli("verify", "--dir", server.directory)
    assert audit.code == 0, audit.stderr


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_source_and_token_commands(tmp_path: Path, cli: Callable[..., CliResult]) -> None:
    directory = tmp_path / "d"
    assert cli("init", "--dir", directory, "--origin", "cmd.sealtrail.test/log").code == 0
    added = cli("source", "add", "gh", "--type", "github", "--dir", directory)
    assert added.code == 0 and len(added.text.strip()) >= 32  # the generated webhook secret, printed once
    duplicate = cli("source", "add", "gh", "--type", "github", "--dir", directory)
    assert duplicate.code == 1 and duplicate.stderr.startswith("error:") and "exists" in duplicate.stderr
    bad = cli("token", "create", "--scope", "root", "--dir", directory)
    assert bad.code == 1 and "scopes" in bad.stderr
    unknown = cli("token", "create", "--scope", "ingest", "--source", "nope", "--dir", directory)
    assert unknown.code == 1 and "nope" in unknown.stderr
    token = cli("token", "create", "--scope", "ingest", "--source", "gh", "--name", "hooks", "--dir", directory)
    assert token.code == 0
    listed = cli("token", "list", "--dir", directory).text
    token_id = listed.split()[0]
    assert "hooks" in listed and "sources=gh" in listed and token.text.strip() not in listed
    assert cli("token", "revoke", token_id, "--dir", directory).code == 0
    assert "revoked" in cli("token", "list", "--dir", directory).text
    assert cli("token", "revoke", token_id, "--dir", directory).code == 1
    assert "gh  github  secret=set" in cli("source", "list", "--dir", directory).text
