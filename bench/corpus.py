"""Realistic DevSecOps events (about 500 bytes each) for the benchmarks.

A fixed rotation of what teams actually send: GitHub pushes, reviews and
workflow jobs (webhooks with delivery ids), Kubernetes audit events (auditID),
sshd failures from syslog, deploys and secret reads through the API, Jenkins
builds. Deterministic for a given seed, returned as NDJSON lines (bytes), the
form `sealtrail append` and the HTTP API receive.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import orjson

__all__ = ["events"]

USERS = ["octocat", "hubot", "alice", "bob", "carol", "dave", "erin", "frank"]
REPOS = ["acme/payments-api", "acme/web", "acme/infra", "acme/auth-service", "acme/ledger"]


def _sha(rng: random.Random) -> str:
    return f"{rng.getrandbits(160):040x}"


def _time(rng: random.Random, i: int) -> str:
    seconds = 1_795_000_000 + i
    minute, second = divmod(seconds % 3600, 60)
    return f"2026-11-26T{(seconds // 3600) % 24:02d}:{minute:02d}:{second:02d}.{rng.randrange(10**6):06d}Z"


def _push(rng: random.Random, i: int) -> dict[str, Any]:
    repo = rng.choice(REPOS)
    return {
        "time": _time(rng, i),
        "source": {"type": "github", "id": "acme-github", "delivery": str(uuid.UUID(int=rng.getrandbits(128)))},
        "kind": "code.push",
        "action": "push",
        "outcome": "success",
        "actor": {"id": str(rng.randrange(10**7)), "name": rng.choice(USERS), "type": "user"},
        "target": {"type": "repository", "id": repo, "name": repo.split("/")[1]},
        "attrs": {"ref": "refs/heads/main", "before": _sha(rng), "after": _sha(rng), "forced": False, "commits": 2},
    }


def _review(rng: random.Random, i: int) -> dict[str, Any]:
    repo = rng.choice(REPOS)
    number = rng.randrange(1, 5000)
    return {
        "time": _time(rng, i),
        "source": {"type": "github", "id": "acme-github", "delivery": str(uuid.UUID(int=rng.getrandbits(128)))},
        "kind": "code.review",
        "action": "pull_request_review.submitted",
        "outcome": "success",
        "actor": {"id": str(rng.randrange(10**7)), "name": rng.choice(USERS), "type": "user"},
        "target": {"type": "pull_request", "id": f"{repo}#{number}"},
        "attrs": {"state": rng.choice(["approved", "changes_requested"]), "head_sha": _sha(rng)},
    }


def _kubernetes(rng: random.Random, i: int) -> dict[str, Any]:
    audit_id = str(uuid.UUID(int=rng.getrandbits(128)))
    verb = rng.choice(["create", "patch", "delete", "get"])
    return {
        "time": _time(rng, i),
        "source": {"type": "kubernetes", "id": "prod-eu-1", "delivery": f"{audit_id}/ResponseComplete"},
        "kind": "api.request",
        "action": f"{verb} deployments",
        "outcome": "success",
        "actor": {"name": f"{rng.choice(USERS)}@acme.example", "type": "user", "ip": f"10.20.{rng.randrange(256)}.7"},
        "target": {"type": "deployment", "id": f"apps/v1/namespaces/payments/deployments/api-{rng.randrange(40)}"},
        "env": "prod",
        "attrs": {"verb": verb, "response_code": 200, "user_agent": "kubectl/v1.31.2 (linux/amd64)"},
    }


def _sshd(rng: random.Random, i: int) -> dict[str, Any]:
    ip = f"203.0.113.{rng.randrange(1, 255)}"
    port = rng.randrange(1024, 65535)
    user = rng.choice(["root", "admin", "ubuntu", "deploy"])
    return {
        "time": _time(rng, i),
        "source": {"type": "syslog", "id": "bastion-01"},
        "kind": "auth.failure",
        "action": "sshd.failed_password",
        "outcome": "failure",
        "actor": {"name": user, "type": "user", "ip": ip},
        "target": {"type": "host", "id": "bastion-01.acme.internal"},
        "env": "prod",
        "attrs": {"port": port, "message": f"Failed password for {user} from {ip} port {port} ssh2"},
    }


def _deploy(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "time": _time(rng, i),
        "source": {"type": "api", "id": "deploy-bot"},
        "kind": "deploy",
        "action": "deploy.production",
        "outcome": rng.choice(["success", "success", "failure"]),
        "actor": {"name": "release-bot", "type": "service"},
        "target": {"type": "service", "id": rng.choice(REPOS).split("/")[1]},
        "env": "prod",
        "attrs": {"version": f"v2.{rng.randrange(40)}.{rng.randrange(10)}", "image_digest": f"sha256:{_sha(rng)}"},
    }


def _jenkins(rng: random.Random, i: int) -> dict[str, Any]:
    build = 1000 + i
    return {
        "time": _time(rng, i),
        "source": {"type": "jenkins", "id": "acme-jenkins", "delivery": f"release-pipeline#{build}/COMPLETED"},
        "kind": "ci.run",
        "action": "build.completed",
        "outcome": rng.choice(["success", "failure"]),
        "actor": {"name": rng.choice(USERS), "type": "user"},
        "target": {"type": "job", "id": "release-pipeline", "name": f"#{build}"},
        "attrs": {"duration_ms": rng.randrange(10**6), "node": f"agent-{rng.randrange(12)}"},
    }


def _secret_read(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "time": _time(rng, i),
        "source": {"type": "api", "id": "vault-audit"},
        "kind": "api.request",
        "action": "secret.read",
        "outcome": rng.choice(["success", "failure"]),
        "actor": {"name": "payments-api", "type": "service", "ip": f"10.20.7.{rng.randrange(256)}"},
        "target": {"type": "secret", "id": f"kv/prod/payments/key-{rng.randrange(100)}"},
        "env": "prod",
        "attrs": {"http_status": rng.choice([200, 403]), "policy": "payments-read"},
    }


_KINDS: list[Callable[[random.Random, int], dict[str, Any]]] = [
    _push, _review, _kubernetes, _sshd, _deploy, _jenkins, _secret_read, _kubernetes,
]  # fmt: skip


def events(n: int, seed: int = 2026) -> list[bytes]:
    """n NDJSON lines of realistic events (no trailing newline)."""
    rng = random.Random(seed)
    return [orjson.dumps(_KINDS[i % len(_KINDS)](rng, i)) for i in range(n)]
