"""The witness over HTTP: real requests from other implementations, every status of c2sp.org/tlog-witness,
a split view refused, and a real `sealtrail witness serve` under concurrent requests and a restart."""

from __future__ import annotations

import base64
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from _support import free_port, wait_for
from _witness_fixtures import MemoryLog, interop_data
from conftest import run_cli
from sealtrail.checkpoint import Checkpoint, sign_checkpoint
from sealtrail.merkle import EMPTY_ROOT
from sealtrail.note import (
    Ed25519Signer,
    Ed25519Verifier,
    Signature,
    generate_ed25519,
    open_note,
    parse_note,
    parse_signer,
    sign_note,
)
from sealtrail.witness.protocol import MAX_BODY_BYTES, SIZE_CONTENT_TYPE, AddCheckpointRequest
from sealtrail.witness.server import create_witness_app
from sealtrail.witness.service import Witness
from sealtrail.witness.state import WitnessState

ORIGIN = "example.com/log"
WITNESS = "witness.example.com/w1"


class Api:
    def __init__(self, client: TestClient, witness: Witness) -> None:
        self.client = client
        self.witness = witness

    def add(self, body: bytes) -> httpx.Response:
        response: httpx.Response = self.client.post("/add-checkpoint", content=body)
        if response.status_code != 200:
            assert "\u2014".encode() not in response.content, "a refusal carries no signature line"
        return response

    def size(self, origin: str = ORIGIN) -> int:
        stored = self.witness.state.log(origin)
        assert stored is not None
        return stored.size


def open_api(tmp_path: Path, key: Ed25519Signer, clock: int | None = None) -> Iterator[Api]:
    state = WitnessState(tmp_path / "witness.db")
    witness = Witness(state, key) if clock is None else Witness(state, key, clock=lambda: clock)
    with TestClient(create_witness_app(witness)) as client:
        yield Api(client, witness)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from open_api(tmp_path, generate_ed25519(WITNESS))


@pytest.fixture
def log(api: Api) -> MemoryLog:
    log = MemoryLog(ORIGIN).grow(20)
    api.witness.state.add_log(ORIGIN, log.vkey)
    return log


def cosigned_by_witness(api: Api, checkpoint: bytes, response: httpx.Response) -> bool:
    """Check a 200 the way the spec tells a client to: append it to the checkpoint and open the note."""
    assert response.status_code == 200, response.text
    assert response.content.startswith("\u2014 ".encode()) and response.content.endswith(b"\n")
    note = open_note(checkpoint + response.content, [api.witness.verifier])
    return [s.name for s in note.verified] == [WITNESS]


# --- interoperability: requests and vectors from other implementations --------------------------


def test_real_sigsum_log_requests_from_litewitness_are_cosigned(tmp_path: Path) -> None:
    """torchwood's TestRace requests (a Sigsum log, proofs by sigsum-go): accepted, then the stale one gets 409."""
    case = interop_data("litewitness-sigsum-requests.json")["logs"][0]
    key = Ed25519Signer("example.com", bytes.fromhex(case["witness_seed_hex"]))
    assert key.public_key.hex() == case["witness_public_key_hex"]
    for order, final in (((0, 1, 2), 3), ((0, 2, 1), 5)):
        directory = tmp_path / f"order{order}"
        directory.mkdir()
        for api in open_api(directory, key):
            log_key = Ed25519Verifier(case["origin"], bytes.fromhex(case["ed25519_public_key_hex"]))
            api.witness.state.add_log(case["origin"], log_key.vkey)
            first, second, third = (case["requests"][i]["body"].encode() for i in order)
            for body in (first, second):
                response = api.add(body)
                checkpoint = body.split(b"\n\n", 1)[1]
                assert open_note(checkpoint + response.content, [api.witness.verifier, log_key])
            conflict = api.add(third)
            assert conflict.status_code == 409
            assert conflict.headers["content-type"] == SIZE_CONTENT_TYPE
            assert conflict.content == f"{final}\n".encode()
            assert api.size(case["origin"]) == final
            if final == 5:
                stored = api.witness.state.log(case["origin"])
                assert stored is not None and stored.root.hex() == case["final_root_hex_after_size_5"]


def test_a_second_real_sigsum_request_is_cosigned(api: Api) -> None:
    case = interop_data("litewitness-sigsum-requests.json")["logs"][1]
    log_key = Ed25519Verifier(case["origin"], bytes.fromhex(case["ed25519_public_key_hex"]))
    api.witness.state.add_log(case["origin"], log_key.vkey)
    body = case["requests"][0]["body"].encode()
    assert cosigned_by_witness(api, body.split(b"\n\n", 1)[1], api.add(body))


def test_cosignature_bytes_match_transparency_dev_formats(tmp_path: Path) -> None:
    """The signature line our witness returns, at a fixed clock, is byte for byte the one transparency-dev's
    formats/note verifier proved correct for that key, checkpoint and second."""
    vector = interop_data("formats-cosignature-v1.json")
    key = parse_signer(vector["key"]["skey"])
    checkpoint_text = vector["checkpoint"]
    origin = checkpoint_text.split("\n", 1)[0]
    for row in vector["signatures"]:
        directory = tmp_path / str(row["time"])
        directory.mkdir()
        for api in open_api(directory, key, clock=row["time"]):
            assert api.client.get("/vkey").text == vector["key"]["cosignature_vkey"] + "\n"
            log_key = generate_ed25519(origin)
            api.witness.state.add_log(origin, log_key.verifier.vkey)
            response = api.add(b"old 0\n\n" + sign_note(checkpoint_text, [log_key]))
            assert response.status_code == 200
            name, _, encoded = response.content.decode().removeprefix("\u2014 ").rstrip("\n").partition(" ")
            raw = base64.b64decode(encoded)
            assert name == vector["key"]["name"]
            assert int.from_bytes(raw[:4], "big") == vector["key"]["cosignature_key_hash"]
            assert raw[4:].hex() == row["sig_hex"]


def test_a_tessera_logs_checkpoints_are_cosigned(api: Api, vectors: Path) -> None:
    """Checkpoints signed by Tessera (transparency-dev): 0, then 7, then 15 with a proof from the log's tiles."""
    tessera = vectors / "tessera-log"
    vkey = (tessera / "log.vkey").read_text().strip()
    origin = vkey.split("+", 1)[0]
    api.witness.state.add_log(origin, vkey)
    tile = (tessera / "tile" / "0" / "000.p" / "15").read_bytes()
    memory = MemoryLog(origin)
    memory.leaves = [tile[i : i + 32] for i in range(0, len(tile), 32)]
    previous = 0
    for size in (0, 7, 15):
        checkpoint = (tessera / f"checkpoint.{size}").read_bytes()
        proof = memory.proof(previous, size) if 0 < previous < size else []
        response = api.add(AddCheckpointRequest(previous, tuple(proof), checkpoint).encode())
        assert cosigned_by_witness(api, checkpoint, response)
        previous = size
    stored = api.witness.state.log(origin)
    assert stored is not None and (stored.size, stored.root) == (15, memory.root(15))


# --- every status of the spec ---------------------------------------------------------------------


def test_200_then_each_refusal_leaves_the_state_alone(api: Api, log: MemoryLog) -> None:
    assert cosigned_by_witness(api, log.checkpoint(5), api.add(log.request(0, 5)))
    assert api.size() == 5

    unknown = MemoryLog("other.example/log").grow(3)
    assert api.add(unknown.request(0)).status_code == 404

    stranger = log.fork(20)
    stranger.key = generate_ed25519(ORIGIN)  # same name, another key: its signature is ignored
    assert api.add(stranger.request(5, 8, log.proof(5, 8))).status_code == 403

    text, [signature] = parse_note(log.checkpoint(8))
    damaged = Signature(signature.name, signature.key_id, bytes([signature.signature[0] ^ 1]) + signature.signature[1:])
    tampered = (text + "\n" + damaged.line()).encode()  # the trusted key's signature, one bit flipped
    assert api.add(AddCheckpointRequest(5, tuple(log.proof(5, 8)), tampered).encode()).status_code == 403

    old_above = AddCheckpointRequest(6, (), log.checkpoint(5)).encode()
    refused = api.add(old_above)
    assert refused.status_code == 400 and "larger than the checkpoint's size 5" in refused.text

    assert api.add(b"old five\n\n" + log.checkpoint(8)).status_code == 400

    stale = api.add(log.request(3, 8))
    assert (stale.status_code, stale.content, stale.headers["content-type"]) == (409, b"5\n", SIZE_CONTENT_TYPE)

    bad_proof = api.add(log.request(5, 8, log.proof(5, 8)[:-1]))
    assert bad_proof.status_code == 422 and "does not verify" in bad_proof.text

    other_root = api.add(log.fork(3).request(5, 5, []))
    assert other_root.status_code == 409
    assert other_root.headers["content-type"].startswith("text/plain")
    assert "another root hash for size 5" in other_root.text

    assert api.size() == 5
    assert cosigned_by_witness(api, log.checkpoint(8), api.add(log.request(5, 8)))


def test_signatures_by_unknown_keys_are_ignored(api: Api, log: MemoryLog) -> None:
    text, _ = parse_note(log.checkpoint(4))
    stranger = generate_ed25519("stranger.example/key")
    note = sign_note(text, [stranger, log.key])
    assert cosigned_by_witness(api, note, api.add(b"old 0\n\n" + note))


def test_each_trusted_key_of_a_log_is_accepted(api: Api, log: MemoryLog) -> None:
    rotated = log.fork(20)
    rotated.key = generate_ed25519(ORIGIN)
    api.witness.state.add_log(ORIGIN, rotated.vkey)
    assert api.add(log.request(0, 4)).status_code == 200
    assert api.add(rotated.request(4, 9)).status_code == 200


def test_the_empty_tree_is_cosigned_only_with_the_empty_root(api: Api, log: MemoryLog) -> None:
    wrong = sign_checkpoint(Checkpoint(ORIGIN, 0, log.root(1)), log.key)
    refused = api.add(AddCheckpointRequest(0, (), wrong).encode())
    assert refused.status_code == 409 and "another root hash for size 0" in refused.text
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, EMPTY_ROOT), log.key)
    for _ in range(2):  # the empty tree, and the same again (old 0 = its size)
        assert cosigned_by_witness(api, empty, api.add(AddCheckpointRequest(0, (), empty).encode()))
    assert api.add(log.request(0, 1)).status_code == 200


def test_oversized_and_junk_requests_get_a_clear_answer(api: Api, log: MemoryLog) -> None:
    big = api.add(b"old 0\n\n" + b"x" * MAX_BODY_BYTES)
    assert big.status_code == 413 and "larger than" in big.text
    for junk in (b"", b"\x00\xff" * 100, b"GET / HTTP/1.1\r\n\r\n", "old 0\n\n\u2014\n".encode()):
        refused = api.add(junk)
        assert refused.status_code == 400 and refused.text.endswith("\n") and len(refused.text.splitlines()) == 1
    assert api.client.get("/add-checkpoint").status_code == 405
    assert api.size() == 0


def test_logs_and_vkey_endpoints(api: Api, log: MemoryLog) -> None:
    api.add(log.request(0, 7))
    assert api.client.get("/vkey").text == api.witness.verifier.vkey + "\n"
    listed = api.client.get("/logs").json()
    assert listed == [{"origin": ORIGIN, "size": 7, "root": base64.b64encode(log.root(7)).decode()}]
    assert api.client.get("/healthz").json() == {"status": "ok"}


# --- split view: the witness's part -------------------------------------------------------------


def test_split_view_fork_at_the_same_size_is_refused_and_never_cosigned(api: Api, log: MemoryLog) -> None:
    """The log shows one tree to the witness and signs another of the same size for someone else."""
    assert api.add(log.request(0, 10)).status_code == 200
    forged = log.fork(7)
    assert forged.root(10) != log.root(10)
    from_stale = api.add(forged.request(0, 10))
    assert (from_stale.status_code, from_stale.content) == (409, b"10\n")
    at_size = api.add(forged.request(10, 10, []))
    assert at_size.status_code == 409 and SIZE_CONTENT_TYPE not in at_size.headers["content-type"]
    stored = api.witness.state.log(ORIGIN)
    assert stored is not None and stored.root == log.root(10)
    [evidence] = api.witness.state.evidence(ORIGIN)
    assert evidence.request == forged.request(10, 10, [])
    assert api.add(log.request(10, 15)).status_code == 200  # the honest log goes on


def test_split_view_rewrite_that_keeps_growing_is_refused_and_never_cosigned(api: Api, log: MemoryLog) -> None:
    """The log rewrites history after the witness saw size 8 and presents a longer tree."""
    assert api.add(log.request(0, 8)).status_code == 200
    rewritten = log.fork(5).grow(10, "more")
    size = len(rewritten.leaves)
    attempts = {
        "its own proof": rewritten.request(8, size),
        "the honest log's proof": rewritten.request(8, size, log.proof(8, 20)),
        "no proof": rewritten.request(8, size, []),
        "a proof from the fork point": rewritten.request(8, size, rewritten.proof(5, size)),
    }
    for what, body in attempts.items():
        refused = api.add(body)
        assert refused.status_code == 422, what
    assert (api.add(rewritten.request(0, size)).content) == b"8\n"  # and from 0: 409, the witness is at 8
    stored = api.witness.state.log(ORIGIN)
    assert stored is not None and (stored.size, stored.root) == (8, log.root(8))
    assert len(api.witness.state.evidence(ORIGIN)) == len(attempts)
    assert api.add(log.request(8, 20)).status_code == 200


# --- a real `sealtrail witness serve` -----------------------------------------------------------


class Served:
    def __init__(self, directory: Path, port: int, log_path: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sealtrail", "witness", "serve", "--dir", str(directory), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=log_path.open("ab"),
        )

        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"witness serve exited: {log_path.read_text()}")
            try:
                return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, 30, "witness serve to answer")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) in (0, -signal.SIGTERM)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Served, MemoryLog, Path]]:
    directory = tmp_path / "witness"
    created = run_cli("witness", "init", "--dir", directory, "--name", WITNESS)
    assert created.code == 0, created.stderr
    log = MemoryLog(ORIGIN).grow(100)
    added = run_cli("witness", "add-log", ORIGIN, log.vkey, "--dir", directory)
    assert added.code == 0, added.stderr
    running = Served(directory, free_port(), tmp_path / "witness.log")
    yield running, log, directory
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()


def _post_at_once(http: httpx.Client, url: str, bodies: list[bytes]) -> list[httpx.Response]:
    """POST each body from its own thread, released together."""
    barrier = threading.Barrier(len(bodies))
    answers: list[httpx.Response | None] = [None] * len(bodies)

    def post(position: int) -> None:
        barrier.wait()
        answers[position] = http.post(f"{url}/add-checkpoint", content=bodies[position])

    threads = [threading.Thread(target=post, args=(position,)) for position in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def test_two_concurrent_requests_from_the_same_old_size_cannot_both_succeed(
    served: tuple[Served, MemoryLog, Path],
) -> None:
    server, log, _ = served
    size = 0
    with httpx.Client(timeout=10) as http:
        for _ in range(10):
            targets = [size + 1, size + 2]
            answers = _post_at_once(http, server.url, [log.request(size, target) for target in targets])
            assert sorted(a.status_code for a in answers) == [200, 409], [(a.status_code, a.text) for a in answers]
            winner = targets[0] if answers[0].status_code == 200 else targets[1]
            loser = answers[1] if answers[0].status_code == 200 else answers[0]
            assert loser.content == f"{winner}\n".encode()
            assert http.get(f"{server.url}/logs").json()[0]["size"] == winner
            size = winner
    server.stop()


def test_state_survives_a_restart_of_the_server(served: tuple[Served, MemoryLog, Path], tmp_path: Path) -> None:
    server, log, directory = served
    first = httpx.post(f"{server.url}/add-checkpoint", content=log.request(0, 40), timeout=10)
    assert first.status_code == 200
    vkey = httpx.get(f"{server.url}/vkey", timeout=10).text.strip()
    server.stop()
    listed = run_cli("witness", "logs", "--dir", directory)
    assert f"{ORIGIN}  size=40  root={base64.b64encode(log.root(40)).decode()}" in listed.text
    again = Served(directory, free_port(), tmp_path / "witness-again.log")
    try:
        stale = httpx.post(f"{again.url}/add-checkpoint", content=log.request(0, 60), timeout=10)
        assert (stale.status_code, stale.content) == (409, b"40\n")
        rollback = httpx.post(f"{again.url}/add-checkpoint", content=log.request(40, 30, []), timeout=10)
        assert rollback.status_code == 400
        later = httpx.post(f"{again.url}/add-checkpoint", content=log.request(40, 60), timeout=10)
        assert later.status_code == 200
        assert httpx.get(f"{again.url}/vkey", timeout=10).text.strip() == vkey
    finally:
        again.stop()
