"""Reading redacted entries over HTTP: 410 Gone with the redaction record; proofs and hash tiles still served."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from fastapi.testclient import TestClient

from _support import devsecops_event
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.redaction import commit_redactions
from sealtrail.retention import RetentionConfig
from sealtrail.server import Settings, create_app
from sealtrail.tiles import decode_bundle
from sealtrail.tlogproof import verify_tlog_proof

from .conftest import ORIGIN, Api


def _ingest(api: Api, count: int) -> list[dict[str, object]]:
    body = json.dumps([devsecops_event(n, "gone") for n in range(count)])
    response = api.client.post("/v1/events", content=body, headers=api.headers(api.ingest))
    assert response.status_code == 200, response.text
    receipts: list[dict[str, object]] = response.json()["receipts"]
    return receipts


def _redact(api: Api, indices: list[int]) -> int:
    log = api.client.app.state.services.log  # type: ignore[attr-defined]
    done = commit_redactions(
        log, indices, source_id="erasure", kind="log.erasure", action="erasure.request", reason="erasure:T-1", attrs={}
    )
    log.sign_now()
    return done[0].record.index


def test_redacted_entries_answer_410_with_the_redaction(api: Api) -> None:
    receipts = _ingest(api, 6)
    record = _redact(api, [1, 2])
    read = api.headers(api.read, None)

    entry = api.client.get("/v1/entries/2", headers=read)
    assert entry.status_code == 410
    body = entry.json()
    assert "redacted" in body["error"]
    assert body["redaction"]["index"] == 2
    assert body["redaction"]["record_index"] == record
    assert body["redaction"]["reason"] == "erasure:T-1"
    assert body["redaction"]["leaf_hash"] == receipts[2]["leaf_hash"]

    by_id = api.client.get(f"/v1/events/{receipts[1]['id']}", headers=read)
    assert by_id.status_code == 410
    assert by_id.json()["redaction"]["id"] == receipts[1]["id"]

    assert api.client.get("/v1/entries/3", headers=read).status_code == 200
    assert api.client.get(f"/v1/events/{receipts[3]['id']}", headers=read).status_code == 200
    record_entry = api.client.get(f"/v1/entries/{record}", headers=read)
    assert record_entry.status_code == 200
    assert json.loads(record_entry.content)["attrs"]["ranges"] == [[1, 2]]


def test_proofs_of_redacted_entries_and_hash_tiles_are_still_served(api: Api, tmp_path: Path) -> None:
    receipts = _ingest(api, 6)
    record = _redact(api, [4])
    read = api.headers(api.read, None)
    size = record + 1

    proof = api.client.get("/v1/proof/inclusion", params={"index": 4, "format": "tlog-proof"}, headers=read)
    assert proof.status_code == 200
    vkey = api.directory.verifier()
    _, signed, leaf = verify_tlog_proof(proof.content, vkey.name, [vkey])
    assert base64.b64encode(leaf).decode() == receipts[4]["leaf_hash"]
    assert signed.checkpoint.size == size
    as_json = api.client.get("/v1/proof/inclusion", params={"index": 4}, headers=read).json()
    assert as_json["leaf_hash"] == receipts[4]["leaf_hash"]

    assert api.client.get(f"/tile/0/000.p/{size}", headers=read).status_code == 200
    bundle = api.client.get(f"/tile/entries/000.p/{size}", headers=read)
    assert bundle.status_code == 410
    assert bundle.json()["redaction"]["index"] == 4
    assert api.client.get("/tile/entries/000.p/4", headers=read).status_code == 200  # before the redacted entry
    assert bundle.headers["Link"] == f'</redacted/tile/entries/000.p/{size}>; rel="alternate"'


def test_bundles_spanning_redacted_entries_are_served_in_redacted_form(api: Api) -> None:
    _ingest(api, 6)
    record = _redact(api, [1, 4])
    read = api.headers(api.read, None)
    size = record + 1
    served = api.client.get(f"/redacted/tile/entries/000.p/{size}", headers=read)
    assert served.status_code == 200
    assert served.headers["Cache-Control"] == "no-cache"  # a later redaction in the bundle empties another entry
    entries = decode_bundle(served.content, size)
    assert [n for n, entry in enumerate(entries) if not entry] == [1, 4]
    for n in (0, 2, 3, 5, record):
        assert entries[n] == api.client.get(f"/v1/entries/{n}", headers=read).content
    leaves = api.client.get(f"/tile/0/000.p/{size}", headers=read).content
    for n in (1, 4):  # the tree still holds what the emptied entries hashed to
        proof = api.client.get("/v1/proof/inclusion", params={"index": n}, headers=read).json()
        assert base64.b64decode(proof["leaf_hash"]) == leaves[32 * n : 32 * (n + 1)]

    unredacted = api.client.get("/redacted/tile/entries/000.p/1", headers=read)
    assert unredacted.status_code == 404
    assert "spans no redacted entry; read it at /tile/entries/000.p/1" in unredacted.json()["error"]
    assert api.client.get(f"/redacted/tile/entries/000.p/{size + 1}", headers=read).status_code == 404
    assert api.client.get("/redacted/tile/0/000", headers=read).status_code == 404


def test_serve_enforces_retention_on_its_schedule(tmp_path: Path) -> None:
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN)
    with directory.open_log(checkpoint_interval=0) as log:
        log.append([prepare(devsecops_event(n), received="2020-01-01T00:00:00.000000Z") for n in range(3)])
    settings = Settings(checkpoint_interval=0.05, retention=RetentionConfig(default_days=30, interval=3600))
    with TestClient(create_app(directory, settings)):
        store = directory.store()
        try:
            deadline = time.monotonic() + 30
            while not list(store.redactions(0, 10)) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [r.index for r in store.redactions(0, 10)] == [0, 1, 2]
            record = store.entry(3)
            assert record is not None and json.loads(record)["attrs"]["policy"] == "default"
        finally:
            store.close()
