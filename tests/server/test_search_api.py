"""GET /v1/search: filters and free text, cursor pages, proofs that verify offline, auth, bad parameters."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from _support import devsecops_event, rfc6962_leaf
from sealtrail.tlogproof import verify_tlog_proof

from .conftest import ORIGIN, Api, make_api


def _ingest(api: Api, events: list[dict[str, Any]]) -> None:
    response = api.client.post(
        "/v1/events?wait=checkpoint", content=orjson.dumps(events), headers=api.headers(api.ingest)
    )
    assert response.status_code == 200, response.text


def _search(api: Api, **params: object) -> Any:
    response = api.client.get(f"/v1/search?{urlencode(params)}", headers=api.headers(api.read, None))
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def stocked(api: Api) -> Api:
    _ingest(api, [devsecops_event(n, "api") for n in range(40)])
    return api


def test_results_carry_index_leaf_hash_and_the_stored_event(stocked: Api) -> None:
    body = _search(stocked, kind="auth")
    assert body["next_cursor"] is None
    indices = [result["index"] for result in body["results"]]
    assert indices == [n for n in range(40) if n % 10 in (4, 9)]  # sshd failures and OIDC logins
    for result in body["results"]:
        entry = stocked.client.get(f"/v1/entries/{result['index']}", headers=stocked.headers(stocked.read, None))
        assert orjson.loads(entry.content) == result["event"]
        assert base64.b64decode(result["leaf_hash"]) == rfc6962_leaf(entry.content)
        assert "proof" not in result


def test_query_text_and_named_filters_combine(stocked: Api) -> None:
    both = _search(stocked, q="kind:deploy", env="prod")
    assert [r["index"] for r in both["results"]] == [n for n in range(40) if n % 10 == 3 and n % 2]
    words = _search(stocked, q="rolebindings payments", actor="octocat@acme.example")
    assert [r["index"] for r in words["results"]] == [5, 15, 25, 35]
    assert _search(stocked, q="rolebindings", actor="alice@acme.example")["results"] == []
    assert _search(stocked, text="no-such-word")["results"] == []


def test_cursor_pages_add_up_to_the_whole_result_in_index_order(stocked: Api) -> None:
    whole = [r["index"] for r in _search(stocked, q="outcome:success", limit=1000)["results"]]
    seen: list[int] = []
    params: dict[str, object] = {"q": "outcome:success", "limit": 4}
    while True:
        page = _search(stocked, **params)
        seen += [r["index"] for r in page["results"]]
        if page["next_cursor"] is None:
            break
        assert len(page["results"]) == 4
        params["cursor"] = page["next_cursor"]
    assert seen == whole and len(whole) > 8
    _ingest(stocked, [devsecops_event(n, "api-more") for n in range(40, 50)])  # a page stays stable under appends
    first = _search(stocked, q="outcome:success", limit=4)
    again = _search(stocked, q="outcome:success", limit=4, cursor=first["next_cursor"])
    assert [r["index"] for r in again["results"]] == whole[4:8]


def test_proofs_verify_offline_against_the_latest_checkpoint(stocked: Api) -> None:
    body = _search(stocked, source="vault-audit", proofs="true")
    assert body["results"] and body["checkpoint_size"] == 40
    vkey = stocked.directory.verifier()
    for result in body["results"]:
        entry = orjson.dumps(result["event"])  # canonical entries keep their bytes through orjson
        proof, signed, leaf = verify_tlog_proof(result["proof"].encode(), ORIGIN, [vkey], entry)
        assert proof.index == result["index"]
        assert signed.checkpoint.size == body["checkpoint_size"]
        assert base64.b64encode(leaf).decode() == result["leaf_hash"]


def test_search_needs_a_token_with_the_read_scope(stocked: Api) -> None:
    missing = stocked.client.get("/v1/search?kind=auth")
    assert missing.status_code == 401 and missing.json()["error"]
    wrong = stocked.client.get("/v1/search?kind=auth", headers=stocked.headers(stocked.ingest, None))
    assert wrong.status_code == 403 and "read" in wrong.json()["error"]


def test_public_read_serves_search_without_a_token(tmp_path: Path) -> None:
    for api in make_api(tmp_path, public_read=True):
        _ingest(api, [devsecops_event(4, "public")])
        response = api.client.get("/v1/search?q=kind:auth")
        assert response.status_code == 200
        assert [r["index"] for r in response.json()["results"]] == [0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"outcome": "maybe"}, "outcome"),
        ({"since": "last tuesday"}, "is not a time"),
        ({"q": "kind:deploy", "kind": "auth"}, "kind is given twice"),
        ({"q": "kind:Deploy"}, "kind"),
        ({"q": 'actor:"open'}, "query"),
        ({"proofs": "perhaps"}, "proofs"),
        ({"env": "x" * 1025}, "env"),
    ],
)
def test_bad_parameters_are_400_with_a_message(stocked: Api, params: dict[str, object], message: str) -> None:
    response = stocked.client.get(f"/v1/search?{urlencode(params)}", headers=stocked.headers(stocked.read, None))
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_search_is_in_the_openapi_schema(stocked: Api) -> None:
    schema = stocked.client.get("/openapi.json").json()
    parameters = {p["name"] for p in schema["paths"]["/v1/search"]["get"]["parameters"]}
    assert {"q", "kind", "since", "actor", "limit", "cursor", "proofs"} <= parameters
