"""Serving a mirror's copy (sealtrail.mirror_app): tiles and checkpoint, status and metrics, the follower thread,
and POST /add-checkpoint, which cosigns only what the mirror has verified and copied (c2sp.org/tlog-witness)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from _follow_fixtures import Branch
from _support import ORIGIN
from sealtrail.checkpoint import Checkpoint, sign_checkpoint
from sealtrail.cosignature import CosignatureVerifier
from sealtrail.fetch import DirectorySource
from sealtrail.follow import Kind
from sealtrail.mirror import FORK_DIR, Mirror, follow
from sealtrail.mirror_app import create_mirror_app
from sealtrail.note import Ed25519Signer, generate_ed25519, open_note, parse_note, parse_verifier
from sealtrail.objectstore import DirectorySink
from sealtrail.view import LogView
from sealtrail.witness.protocol import SIZE_CONTENT_TYPE, AddCheckpointRequest, parse_signature_lines


@pytest.fixture
def main_log(tmp_path: Path) -> Branch:
    branch = Branch.create(tmp_path / "log-a", "a")
    branch.grow(300, batch=100)
    branch.publish(tmp_path / "site")
    return branch


@pytest.fixture
def witness() -> Ed25519Signer:
    return generate_ed25519("mirror.sealtrail.test")


@pytest.fixture
def mirror(main_log: Branch, tmp_path: Path, witness: Ed25519Signer) -> Iterator[Mirror]:
    verifier = parse_verifier(main_log.vkey)
    following = Mirror(
        DirectorySource(tmp_path / "site"), DirectorySink(tmp_path / "copy"), ORIGIN, verifier, witness=witness
    )
    assert following.poll().kind is Kind.OK
    yield following
    following.close()


@pytest.fixture
def client(mirror: Mirror) -> Iterator[TestClient]:
    with TestClient(create_mirror_app(mirror.sink, mirror.status, mirror=mirror)) as test_client:
        yield test_client


def _proof(branch: Branch, old: int, new: int) -> tuple[bytes, ...]:
    store = branch.directory.store()
    try:
        return tuple(LogView(store).consistency_proof(old, new))
    finally:
        store.close()


def _add(client: TestClient, old: int, note: bytes, proof: tuple[bytes, ...] = ()) -> tuple[int, bytes, str]:
    response = client.post("/add-checkpoint", content=AddCheckpointRequest(old, proof, note).encode())
    return response.status_code, response.content, response.headers.get("content-type", "")


def test_the_copy_is_served_as_a_tiles_log(client: TestClient, main_log: Branch, tmp_path: Path) -> None:
    checkpoint = client.get("/checkpoint")
    assert checkpoint.status_code == 200
    assert checkpoint.headers["content-type"] == "text/plain; charset=utf-8"
    assert "no-cache" in checkpoint.headers["cache-control"]
    assert parse_note(checkpoint.content)[0] == main_log.checkpoint().text()
    tile = client.get("/tile/0/000")
    assert tile.status_code == 200 and tile.content == (tmp_path / "site/tile/0/000").read_bytes()
    assert tile.headers["content-type"] == "application/octet-stream"
    assert "immutable" in tile.headers["cache-control"]
    bundle = client.get("/tile/entries/001.p/44", headers={"Accept-Encoding": "gzip"})
    assert bundle.content == (tmp_path / "site/tile/entries/001.p/44").read_bytes()
    for missing in ("/tile/0/002", "/tile/0/000.p/0", "/tile/../log.db", f"/{FORK_DIR}/evidence.json"):
        assert client.get(missing).status_code == 404, missing


def test_status_and_metrics_report_the_follower(client: TestClient) -> None:
    status = client.get("/status").json()
    assert status["verified_size"] == 300 and status["last_kind"] == "ok" and status["fork_detected"] is False
    metrics = client.get("/metrics").text
    assert f'sealtrail_mirror_size{{log="{ORIGIN}"}} 300.0' in metrics
    assert f'sealtrail_mirror_ok{{log="{ORIGIN}"}} 1.0' in metrics
    assert "sealtrail_mirror_last_success_timestamp_seconds{" in metrics


def test_the_follower_runs_for_the_apps_lifetime(mirror: Mirror, main_log: Branch, tmp_path: Path) -> None:
    app = create_mirror_app(mirror.sink, mirror.status, follower=lambda stop: follow(mirror, 0.05, stop))
    with TestClient(app) as client:
        main_log.grow(100)
        main_log.publish(tmp_path / "site")
        deadline = time.monotonic() + 30
        while client.get("/status").json()["verified_size"] != 400:
            assert time.monotonic() < deadline, "the follower did not mirror the new checkpoint"
            time.sleep(0.05)
        assert client.get("/tile/0/001.p/144").status_code == 200
    polls = mirror.status.snapshot()["polls"]["ok"]
    time.sleep(0.2)
    assert mirror.status.snapshot()["polls"]["ok"] == polls  # stopped with the app


def test_add_checkpoint_cosigns_what_the_mirror_holds(
    client: TestClient, main_log: Branch, witness: Ed25519Signer
) -> None:
    status, body, _ = _add(client, 300, main_log.note())
    assert status == 200, body
    (signature,) = parse_signature_lines(body)
    cosigner = CosignatureVerifier(witness.name, witness.public_key)
    assert [s.name for s in open_note(main_log.note() + body, [cosigner]).verified] == [witness.name]
    assert signature.key_id == cosigner.key_id


def test_add_checkpoint_mirrors_a_new_checkpoint_before_cosigning_it(
    client: TestClient, mirror: Mirror, main_log: Branch, tmp_path: Path
) -> None:
    main_log.grow(500)
    main_log.publish(tmp_path / "site")
    status, body, _ = _add(client, 300, main_log.note(), _proof(main_log, 300, 800))
    assert status == 200, body
    assert mirror.size == 800 and (tmp_path / "copy/tile/entries/003.p/32").exists()
    served = client.get("/checkpoint").content
    assert parse_note(served)[0] == main_log.checkpoint().text()


def test_add_checkpoint_refusals(client: TestClient, mirror: Mirror, main_log: Branch, tmp_path: Path) -> None:
    main_log.grow(50)
    main_log.publish(tmp_path / "site")
    note, proof = main_log.note(), _proof(main_log, 300, 350)
    status, body, kind = _add(client, 0, note)
    assert (status, body, kind) == (409, b"300\n", SIZE_CONTENT_TYPE)
    assert _add(client, 351, note)[0] == 400
    bent = (proof[0][:-1] + bytes([proof[0][-1] ^ 1]), *proof[1:])
    assert _add(client, 300, note, bent)[0] == 422
    impostor = sign_checkpoint(main_log.checkpoint(), generate_ed25519(ORIGIN))
    assert _add(client, 300, impostor, proof)[0] == 403
    other = generate_ed25519("other.example/log")
    assert _add(client, 300, sign_checkpoint(Checkpoint("other.example/log", 1, bytes(32)), other))[0] == 404
    assert client.post("/add-checkpoint", content=b"old 300\n").status_code == 400
    assert mirror.size == 300  # nothing refused was mirrored


def test_add_checkpoint_with_another_root_for_the_held_size_is_fork_evidence(
    client: TestClient, mirror: Mirror, main_log: Branch, tmp_path: Path
) -> None:
    signer = main_log.directory.signer()
    forged = sign_checkpoint(Checkpoint(ORIGIN, 300, bytes(32)), signer)  # the log's key, another tree
    status, body, _ = _add(client, 300, forged)
    assert status == 409 and b"two signed checkpoints of size 300" in body
    assert mirror.stopped and (tmp_path / "copy" / FORK_DIR / "conflicting.checkpoint").read_bytes() == forged
    assert client.get("/status").json()["fork_detected"] is True
    status, body, _ = _add(client, 300, main_log.note())  # not even the checkpoint it holds, any more
    assert status == 409 and b"fork" in body
    assert f'sealtrail_mirror_ok{{log="{ORIGIN}"}} 0.0' in client.get("/metrics").text


def test_without_a_witness_key_there_is_no_add_checkpoint(main_log: Branch, tmp_path: Path) -> None:
    verifier = parse_verifier(main_log.vkey)
    plain = Mirror(DirectorySource(tmp_path / "site"), DirectorySink(tmp_path / "plain"), ORIGIN, verifier)
    assert plain.poll().kind is Kind.OK
    with TestClient(create_mirror_app(plain.sink, plain.status, mirror=plain)) as client:
        assert client.post("/add-checkpoint", content=b"old 0\n\n").status_code in (404, 405)
        assert client.get("/checkpoint").content == main_log.note()
