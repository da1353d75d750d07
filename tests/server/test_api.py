"""The HTTP API: ingest, auth, refusals that write nothing, reads with proofs, tiles."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from httpx import Response

from sealtrail.checkpoint import open_checkpoint
from sealtrail.credentials import Credentials
from sealtrail.merkle import verify_consistency, verify_inclusion
from sealtrail.note import b64decode_strict, generate_ed25519
from sealtrail.tlogproof import verify_tlog_proof
from sealtrail.verify import verify_tiles_log

from .conftest import LIMIT, ORIGIN, Api, make_api


def event(kind: str = "deploy", **extra: object) -> dict[str, object]:
    return {"kind": kind, "source": {"type": "api", "id": "ci"}, "action": f"{kind}.test", **extra}


def post(
    api: Api, body: object, token: str | None, content_type: str = "application/json", query: str = ""
) -> Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    response: Response = api.client.post(f"/v1/events{query}", content=data, headers=api.headers(token, content_type))
    return response


def receipts(response: Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["receipts"]
    return found


def leaf_of(entry: bytes) -> str:
    return base64.b64encode(hashlib.sha256(b"\x00" + entry).digest()).decode()


# --- ingest -------------------------------------------------------------------------------------


def test_one_object_an_array_and_ndjson_are_appended_in_order(api: Api) -> None:
    one = receipts(post(api, event("deploy"), api.ingest))
    many = receipts(post(api, [event("ci.run"), event("ci.job")], api.ingest))
    lines = b"\n".join(json.dumps(event(kind)).encode() for kind in ("code.push", "code.review")) + b"\n"
    nd = receipts(post(api, lines, api.ingest, "application/x-ndjson"))
    indices = [r["index"] for r in one + many + nd]
    assert indices == [0, 1, 2, 3, 4]
    for receipt, kind in zip(one + many + nd, ["deploy", "ci.run", "ci.job", "code.push", "code.review"], strict=True):
        entry = api.client.get(f"/v1/entries/{receipt['index']}", headers=api.headers(api.read, None))
        assert entry.status_code == 200
        assert leaf_of(entry.content) == receipt["leaf_hash"]
        assert json.loads(entry.content)["kind"] == kind
        assert json.loads(entry.content)["id"] == receipt["id"]


def test_redelivery_returns_the_original_receipt_and_writes_nothing(api: Api) -> None:
    first = receipts(post(api, event(source={"type": "api", "id": "ci", "delivery": "run-42"}), api.ingest))[0]
    size = api.size()
    again = receipts(post(api, event(source={"type": "api", "id": "ci", "delivery": "run-42"}), api.ingest))[0]
    assert again == {**first, "duplicate": True}
    assert api.size() == size


def test_wait_checkpoint_returns_proofs_that_verify_offline(api: Api) -> None:
    got = receipts(post(api, [event("deploy"), event("ci.run")], api.ingest, query="?wait=checkpoint"))
    vkey = api.directory.verifier()
    for receipt in got:
        proof, signed, leaf = verify_tlog_proof(str(receipt["proof"]).encode(), ORIGIN, [vkey])
        assert proof.index == receipt["index"]
        assert signed.checkpoint.size == receipt["checkpoint_size"] >= 2
        assert base64.b64encode(leaf).decode() == receipt["leaf_hash"]


def test_a_token_limited_to_one_source_fills_it_in_and_may_not_write_another(api: Api) -> None:
    got = receipts(post(api, {"kind": "ci.run"}, api.ci_only))[0]
    stored = json.loads(api.client.get(f"/v1/entries/{got['index']}", headers=api.headers(api.read, None)).content)
    assert stored["source"] == {"type": "api", "id": "ci"}
    size = api.size()
    refused = post(api, event(source={"type": "api", "id": "other"}), api.ci_only)
    assert refused.status_code == 403
    assert "source" in refused.json()["error"]
    assert api.size() == size


# --- refusals: 4xx with a message, nothing written, the server stays up --------------------------------


def _refusals(api: Api) -> Iterator[tuple[str, Response, int, str]]:
    good = event()
    yield "no token", post(api, good, None), 401, "bearer"
    yield "bad token", post(api, good, "st_deadbeef_nope"), 401, "invalid"
    yield "not a token", post(api, good, "hello"), 401, "invalid"
    yield "read scope cannot ingest", post(api, good, api.read), 403, "ingest"
    yield "malformed json", post(api, b'{"kind": ', api.ingest), 400, "malformed"
    yield "unknown field", post(api, {**good, "colour": "red"}, api.ingest), 400, "colour"
    yield "bad kind", post(api, {**good, "kind": "Not A Kind"}, api.ingest), 400, "kind"
    yield "one bad event in a batch", post(api, [good, {**good, "outcome": "maybe"}], api.ingest), 400, "event 1"
    ndjson = json.dumps(good).encode() + b"\n{oops\n"
    yield "bad ndjson line", post(api, ndjson, api.ingest, "application/x-ndjson"), 400, "line 2"
    yield "wrong content type", post(api, good, api.ingest, "text/plain"), 415, "content-type"
    yield "empty body", post(api, b"  ", api.ingest), 400, "empty"
    yield "over the body limit", post(api, {**good, "raw": "x" * LIMIT}, api.ingest), 413, "limit"
    oversized = {**good, "attrs": {"blob": "y" * 70_000}}
    yield "entry over 65,535 bytes", post(api, oversized, api.ingest), 413, "limit"
    stamped = {**good, "received": "2026-01-01T00:00:00Z"}
    yield "received is sealtrail's", post(api, stamped, api.ingest), 400, "received"
    typed = {**good, "source": {"type": "github", "id": "ci"}}
    yield "source registered as another type", post(api, typed, api.ingest), 403, "registered as 'api'"


def test_every_refusal_is_a_4xx_with_a_message_and_writes_nothing(api: Api) -> None:
    post(api, event(), api.ingest)
    size = api.size()
    for label, response, status, words in _refusals(api):
        assert response.status_code == status, (label, response.text)
        message = response.json()["error"]
        assert words.lower() in message.lower(), (label, message)
        assert "\n" not in message
        assert api.size() == size, label
    assert receipts(post(api, event(), api.ingest))[0]["index"] == size  # still up, still appending


def test_an_entry_over_the_limit_is_refused_when_the_body_fits(tmp_path: Path) -> None:
    for api in make_api(tmp_path, max_body_bytes=1024 * 1024):
        response = post(api, event(attrs={"blob": "y" * 70_000}), api.ingest)
        assert response.status_code == 400
        assert "65535" in response.json()["error"]
        assert api.size() == 0
        big_raw = receipts(post(api, event(raw={"log": "z" * 200_000}), api.ingest))[0]
        got = api.client.get(f"/v1/events/{big_raw['id']}", headers=api.headers(api.read, None)).json()
        assert got["event"]["raw"]["size"] > 200_000
        assert got["raw"] == {"log": "z" * 200_000}


def test_a_revoked_token_stops_working(api: Api) -> None:
    credentials: Credentials = api.client.app.state.services.credentials  # type: ignore[attr-defined]
    token_id = next(t.id for t in credentials.tokens() if t.name == "ingest")
    assert post(api, event(), api.ingest).status_code == 200
    credentials.revoke(token_id)
    assert post(api, event(), api.ingest).status_code == 401


# --- signatures at the source ---------------------------------------------------------------------------


def test_source_signed_events_verify_and_altered_ones_are_refused(tmp_path: Path) -> None:
    from sealtrail.event import sign_event

    for api in make_api(tmp_path):
        key = generate_ed25519("runner.ci.acme.test")
        credentials = Credentials(api.directory.credentials)
        credentials.add_source("runner", "api", keys=(key.verifier.vkey,), require_signature=True)
        signed = sign_event({"kind": "ci.job", "source": {"type": "api", "id": "runner"}}, key)
        good = receipts(post(api, signed, api.admin))[0]
        stored = json.loads(api.client.get(f"/v1/entries/{good['index']}", headers=api.headers(api.read, None)).content)
        assert stored["sig"] == signed["sig"]
        size = api.size()
        altered = {**signed, "outcome": "success" if signed["outcome"] != "success" else "failure"}
        unsigned = {k: v for k, v in signed.items() if k != "sig"}
        stranger = sign_event({"kind": "ci.job", "source": {"type": "api", "id": "runner"}}, generate_ed25519("x"))
        for label, body in (("altered", altered), ("unsigned", unsigned), ("unknown key", stranger)):
            response = post(api, body, api.admin)
            assert response.status_code == 401, label
            assert "sig" in response.json()["error"], label
        assert api.size() == size


# --- reads ---------------------------------------------------------------------------------------------


def test_event_by_id_and_not_found(api: Api) -> None:
    got = receipts(post(api, event("deploy"), api.ingest))[0]
    found = api.client.get(f"/v1/events/{got['id']}", headers=api.headers(api.read, None)).json()
    assert found["index"] == got["index"] and found["leaf_hash"] == got["leaf_hash"]
    assert found["event"]["kind"] == "deploy"
    missing = api.client.get("/v1/events/0193a6b2-1c00-7a00-8000-00000000ffff", headers=api.headers(api.read, None))
    assert missing.status_code == 404
    assert api.client.get("/v1/events/not-a-uuid", headers=api.headers(api.read, None)).status_code == 400
    assert api.client.get(f"/v1/events/{got['id']}").status_code == 401
    assert api.client.get(f"/v1/events/{got['id']}", headers=api.headers(api.ci_only, None)).status_code == 403


def test_inclusion_and_consistency_proofs_verify(api: Api) -> None:
    for n in range(5):
        post(api, [event("ci.run") for _ in range(n + 1)], api.ingest, query="?wait=checkpoint")
    vkey = api.directory.verifier()
    note = api.client.get("/v1/checkpoint", headers=api.headers(api.read, None)).content
    latest = open_checkpoint(note, ORIGIN, [vkey]).checkpoint
    for index in range(latest.size):
        body = api.client.get(f"/v1/proof/inclusion?index={index}", headers=api.headers(api.read, None)).json()
        entry = api.client.get(f"/v1/entries/{index}", headers=api.headers(api.read, None)).content
        assert body["leaf_hash"] == leaf_of(entry)
        proof = [b64decode_strict(h) for h in body["proof"]]
        verify_inclusion(index, latest.size, b64decode_strict(body["leaf_hash"]), proof, latest.root)
    store = api.directory.store()
    sizes = [(size, open_checkpoint(n, ORIGIN, [vkey]).checkpoint.root) for size, n in store.checkpoints() if size]
    store.close()
    for old, old_root in sizes:
        body = api.client.get(f"/v1/proof/consistency?from={old}", headers=api.headers(api.read, None)).json()
        verify_consistency(old, latest.size, [b64decode_strict(h) for h in body["proof"]], old_root, latest.root)
    bad = api.client.get(f"/v1/proof/inclusion?index={latest.size}", headers=api.headers(api.read, None))
    assert bad.status_code == 400 and "index" in bad.json()["error"]
    text = api.client.get("/v1/proof/inclusion?index=0&format=tlog-proof", headers=api.headers(api.read, None))
    verify_tlog_proof(text.content, ORIGIN, [vkey])


def test_tiles_read_paths_verify_as_a_tiles_log(api: Api) -> None:
    for n in (1, 255, 300):
        post(api, [event("api.request") for _ in range(n)], api.ingest, query="?wait=checkpoint")

    def fetch(path: str) -> bytes | None:
        response = api.client.get(f"/{path}", headers=api.headers(api.read, None))
        return response.content if response.status_code == 200 else None

    latest = verify_tiles_log(fetch, ORIGIN, api.directory.verifier())
    assert latest.size == 556
    assert api.client.get("/tile/0/x999/000", headers=api.headers(api.read, None)).status_code == 404
    assert api.client.get("/tile/0/005", headers=api.headers(api.read, None)).status_code == 404
    assert api.client.get("/tile/nonsense", headers=api.headers(api.read, None)).status_code == 404
    assert api.client.get("/tile/0/000").status_code == 401


def test_public_read_serves_reads_without_a_token(tmp_path: Path) -> None:
    for api in make_api(tmp_path, public_read=True):
        post(api, event(), api.ingest, query="?wait=checkpoint")
        assert api.client.get("/checkpoint").status_code == 200
        assert api.client.get("/v1/entries/0").status_code == 200
        assert post(api, event(), None).status_code == 401


def test_health_openapi_and_docs(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    schema = api.client.get("/openapi.json").json()
    assert "/v1/events" in schema["paths"] and "/tile/{path}" in schema["paths"]
    assert api.client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    "path", ["/v1/entries/-1", "/v1/entries/99999", "/v1/proof/inclusion", "/v1/proof/consistency?from=x"]
)
def test_bad_read_parameters_are_4xx(api: Api, path: str) -> None:
    response = api.client.get(path, headers=api.headers(api.read, None))
    assert 400 <= response.status_code < 500
    assert response.json()["error"]
