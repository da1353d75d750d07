"""Helpers for the witness tests: in-memory Merkle trees, signed test logs, and ASGI apps served on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from sealtrail.checkpoint import Checkpoint, sign_checkpoint
from sealtrail.merkle import Node, consistency_proof, leaf_hash, root_hash
from sealtrail.note import Ed25519Signer, generate_ed25519
from sealtrail.witness.protocol import AddCheckpointRequest

DATA = Path(__file__).resolve().parent / "data" / "witness"


def interop_data(name: str) -> dict[str, Any]:
    """A JSON file of tests/data/witness (real requests and vectors from other implementations)."""
    loaded: dict[str, Any] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return loaded


@dataclass
class MemoryLog:
    """A log kept in memory: entries, its key, signed checkpoints, consistency proofs, add-checkpoint bodies."""

    origin: str
    key: Ed25519Signer = field(init=False)
    leaves: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.key = generate_ed25519(self.origin)

    @property
    def vkey(self) -> str:
        return self.key.verifier.vkey

    def grow(self, count: int, tag: str = "e") -> MemoryLog:
        start = len(self.leaves)
        self.leaves.extend(leaf_hash(f"{tag}{i}".encode()) for i in range(start, start + count))
        return self

    def fork(self, keep: int, tag: str = "forged") -> MemoryLog:
        """A log with the same origin and key whose entries agree with this one's only up to `keep`."""
        forged = MemoryLog(self.origin)
        forged.key = self.key
        forged.leaves = self.leaves[:keep]
        return forged.grow(len(self.leaves) - keep, tag)

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self.leaves[: len(self.leaves) if size is None else size])

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new is None else new

        def read(nodes: Sequence[Node]) -> list[bytes]:
            return [root_hash(self.leaves[index << level : (index + 1) << level]) for level, index in nodes]

        return consistency_proof(old, new, read)

    def checkpoint(self, size: int | None = None) -> bytes:
        size = len(self.leaves) if size is None else size
        return sign_checkpoint(Checkpoint(self.origin, size, self.root(size)), self.key)

    def request(self, old: int, size: int | None = None, proof: list[bytes] | None = None) -> bytes:
        """An add-checkpoint body for the checkpoint of `size` (default: all), from `old` with a correct proof."""
        size = len(self.leaves) if size is None else size
        if proof is None:
            proof = self.proof(old, size) if 0 < old < size else []
        return AddCheckpointRequest(old, tuple(proof), self.checkpoint(size)).encode()


def bound_socket() -> socket.socket:
    """A loopback TCP socket bound to a free port and not yet listening: connections are refused until served."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def socket_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


class Served:
    """An ASGI app served by uvicorn in a thread on a given socket."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        self.url = socket_url(sock)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@contextmanager
def served(app: Any, sock: socket.socket | None = None) -> Iterator[Served]:
    running = Served(app, sock or bound_socket())
    try:
        yield running
    finally:
        running.stop()
