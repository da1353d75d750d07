"""Helpers shared by the integration tests: realistic DevSecOps events and raw database access.

Not a test module (pytest only collects test_*.py); imported as `_support`
(tests/ is on sys.path because tests/conftest.py lives there).
"""

from __future__ import annotations

import functools
import hashlib
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from sealtrail.event import PreparedEvent, prepare
from sealtrail.objectstore import DirectorySink

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "devsecops-events.ndjson"
ORIGIN = "test.sealtrail.local/log"


def example_events() -> list[dict[str, Any]]:
    """The sample events shipped in examples/devsecops-events.ndjson."""
    return [orjson.loads(line) for line in EXAMPLES.read_bytes().splitlines() if line.strip()]


def event_id(tag: int, n: int) -> str:
    """A deterministic UUID-shaped id, unique per (tag, n)."""
    return f"{tag & 0xFFFFFFFF:08x}-{(n >> 48) & 0xFFFF:04x}-7000-8000-{n & 0xFFFFFFFFFFFF:012x}"


def _minute(n: int) -> str:
    return f"2026-11-26T{9 + (n // 3600) % 12:02d}:{(n // 60) % 60:02d}:{n % 60:02d}.{(n * 7919) % 1_000_000:06d}Z"


def devsecops_event(n: int, tag: str = "evt", *, explicit_id: int | None = None) -> dict[str, Any]:
    """The n-th of a deterministic stream of realistic events from the usual DevSecOps sources.

    Every event names a unique delivery (so a redelivery deduplicates) except
    the syslog ones, which carry no delivery id; pass `explicit_id` to give the
    event its own id (then built with event_id(explicit_id, n)).
    """
    repo = ("acme/payments-api", "acme/web-frontend", "acme/infra-live")[n % 3]
    user = ("octocat", "hubot", "alice", "bob", "mallory")[n % 5]
    sha = hashlib.sha1(f"{tag}/{n}".encode()).hexdigest()
    delivery = f"{tag}-{n:06d}"
    variant = n % 10
    event: dict[str, Any]
    if variant == 0:
        event = {
            "source": {"type": "github", "id": "acme-github", "delivery": delivery},
            "kind": "code.push",
            "action": "push",
            "outcome": "success",
            "actor": {"id": str(500000 + n % 97), "name": user, "type": "user"},
            "target": {"type": "repository", "id": repo, "name": repo.split("/")[1]},
            "attrs": {"ref": "refs/heads/main", "after": sha, "forced": n % 17 == 0, "commits": 1 + n % 4},
        }
    elif variant == 1:
        event = {
            "source": {"type": "github", "id": "acme-github", "delivery": delivery},
            "kind": "code.review",
            "action": "pull_request_review.submitted",
            "outcome": "success",
            "actor": {"name": user, "type": "user"},
            "target": {"type": "pull_request", "id": f"{repo}#{400 + n}"},
            "attrs": {"state": ("approved", "changes_requested", "commented")[n % 3], "head_sha": sha},
        }
    elif variant == 2:
        event = {
            "source": {"type": "gitlab", "id": "acme-gitlab", "delivery": delivery},
            "kind": "ci.run",
            "action": "pipeline.failed" if n % 7 == 0 else "pipeline.success",
            "outcome": "failure" if n % 7 == 0 else "success",
            "actor": {"name": "ci-bot", "type": "service"},
            "target": {"type": "pipeline", "id": f"{repo.split('/')[1]}/{88000 + n}"},
            "attrs": {"ref": "main", "sha": sha, "duration_s": 60 + n % 900, "stages": ["build", "test", "scan"]},
        }
    elif variant == 3:
        event = {
            "source": {"type": "jenkins", "id": "acme-jenkins", "delivery": f"release-pipeline#{delivery}"},
            "kind": "deploy",
            "action": "deploy.production",
            "outcome": "success",
            "actor": {"name": "release-bot", "type": "service"},
            "target": {"type": "service", "id": repo.split("/")[1]},
            "env": "prod" if n % 2 else "staging",
            "attrs": {
                "version": f"v2.{n // 100}.{n % 100}",
                "image": f"registry.acme.example/app@sha256:{sha}{sha[:24]}",
            },
        }
    elif variant == 4:
        event = {
            "source": {"type": "syslog", "id": "bastion-01"},
            "kind": "auth.failure",
            "action": "sshd.failed_password",
            "outcome": "failure",
            "actor": {"name": "root", "type": "user", "ip": f"203.0.113.{n % 250 + 1}"},
            "target": {"type": "host", "id": "bastion-01.acme.internal"},
            "env": "prod",
            "attrs": {"port": 40000 + n % 20000, "message": f"Failed password for root from 203.0.113.{n % 250 + 1}"},
        }
    elif variant == 5:
        event = {
            "source": {"type": "kubernetes", "id": "prod-eu-1", "delivery": f"{delivery}/ResponseComplete"},
            "kind": "access.change",
            "action": "create rolebindings",
            "outcome": "success",
            "actor": {"name": f"{user}@acme.example", "type": "user", "ip": "10.20.4.17"},
            "target": {"type": "rolebinding", "id": f"payments/{user}-edit"},
            "env": "prod",
            "attrs": {"verb": "create", "namespace": "payments", "role": "edit"},
        }
    elif variant == 6:
        event = {
            "source": {"type": "api", "id": "vault-audit", "delivery": delivery},
            "kind": "api.request",
            "action": "secret.read",
            "outcome": "failure" if n % 4 == 0 else "success",
            "actor": {"id": f"token-{n % 13}", "name": "payments-api", "type": "service", "ip": "10.20.7.3"},
            "target": {"type": "secret", "id": "kv/prod/payments/stripe-key"},
            "env": "prod",
            "attrs": {"http_status": 403 if n % 4 == 0 else 200},
        }
    elif variant == 7:
        event = {
            "source": {"type": "github", "id": "acme-github", "delivery": delivery},
            "kind": "secret.alert",
            "action": "secret_scanning_alert.created",
            "outcome": "unknown",
            "target": {"type": "repository", "id": repo},
            "attrs": {"secret_type": "aws_access_key_id", "alert": n, "path": "deploy/config.yaml"},
        }
    elif variant == 8:
        event = {
            "source": {"type": "cloudevents", "id": "argo-cd", "delivery": delivery},
            "kind": "config.change",
            "action": "application.sync",
            "outcome": "success",
            "actor": {"name": "argocd", "type": "service"},
            "target": {"type": "application", "id": repo.split("/")[1]},
            "env": "staging",
            "attrs": {"revision": sha, "sync_status": "Synced", "health": "Healthy"},
        }
    else:
        event = {
            "source": {"type": "otlp", "id": "gateway", "delivery": delivery},
            "kind": "auth.success",
            "action": "oidc.login",
            "outcome": "success",
            "actor": {"id": f"u-{n % 31}", "name": user, "type": "user", "ip": "2001:db8::17"},
            "target": {"type": "application", "id": "grafana"},
            "attrs": {"mfa": True, "idp": "okta"},
        }
    event["time"] = _minute(n)
    if explicit_id is not None:
        event["id"] = event_id(explicit_id, n)
    return event


def devsecops_events(
    start: int, count: int, tag: str = "evt", *, explicit_id: int | None = None
) -> list[PreparedEvent]:
    """Prepared events start..start+count-1 of the stream."""
    return [prepare(devsecops_event(n, tag, explicit_id=explicit_id)) for n in range(start, start + count)]


def rfc6962_leaf(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry), computed here rather than by sealtrail."""
    return hashlib.sha256(b"\x00" + entry).digest()


def rfc6962_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 MTH over leaf hashes, written out independently of sealtrail.merkle."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + rfc6962_root(leaves[:split]) + rfc6962_root(leaves[split:])).digest()


def read_only(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True)


def count_rows(db: Path, table: str) -> int:
    conn = read_only(db)
    try:
        return int(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def stored_entries(db: Path) -> list[tuple[int, bytes]]:
    conn = read_only(db)
    try:
        return [(int(i), bytes(e)) for i, e in conn.execute("SELECT idx, entry FROM events ORDER BY idx")]
    finally:
        conn.close()


def checkpoint_sizes(db: Path) -> list[int]:
    conn = read_only(db)
    try:
        return [int(row[0]) for row in conn.execute("SELECT size FROM checkpoints ORDER BY size")]
    finally:
        conn.close()


def attacker_connection(db: Path) -> sqlite3.Connection:
    """A plain sqlite3 session on the file, with the append-only triggers dropped first."""
    conn = sqlite3.connect(db, isolation_level=None)
    triggers = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]
    assert triggers, "the schema should carry append-only triggers"
    for name in triggers:
        conn.execute(f'DROP TRIGGER "{name}"')
    return conn


def copy_log(src: Path, dst: Path) -> Path:
    """Copy a closed log directory (database, keys) to dst."""
    shutil.copytree(src, dst)
    return dst


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line a failing command must print; fails the test otherwise."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected exactly one line on stderr, got {lines!r}"
    assert lines[0].startswith("error:"), lines[0]
    return lines[0]


def receipts_json(stdout: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in stdout.splitlines()]


def ndjson(events: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Return once a `sealtrail serve` process answers /healthz; kill it and fail the test if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    pytest.fail(f"sealtrail serve did not start: {log.read_text()}")


def free_port() -> int:
    """A loopback TCP port nothing listens on now (for a server the test starts next)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "the condition") -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below `root`, by its path relative to `root` (with /), with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


class FillingSink(DirectorySink):
    """A directory sink whose disk fills up after `budget` more immutable objects (the write then fails)."""

    def __init__(self, root: Path, budget: int) -> None:
        super().__init__(root)
        self.budget = budget

    def put_once(self, path: str, data: bytes) -> bool:
        if self.budget <= 0:
            raise OSError("No space left on device")
        self.budget -= 1
        return super().put_once(path, data)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def static_http(root: Path) -> Iterator[str]:
    """A plain static HTTP server for `root` on a loopback port: the URL prefix."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
