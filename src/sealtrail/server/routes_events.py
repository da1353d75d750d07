"""POST /v1/events and reading events back: /v1/events/{id}, /v1/entries/{index}."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated
from urllib.parse import parse_qs

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from ..event import EventError, PreparedEvent, Source, is_out_of_line, prepare, prepare_batch
from ..jcs import parse_json
from ..merkle import leaf_hash
from ..note import b64encode
from .common import (
    EventRefused,
    IngestPolicy,
    accept,
    authorize,
    default_source,
    policy_for,
    prepare_async,
    prepare_in_pool,
    read_body,
    received_now,
    services,
)
from .errors import ApiError, gone, json_response
from .settings import MAX_INDEX

__all__ = ["router"]

router = APIRouter()

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
JSON_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "application/jsonlines")

_EVENT_SCHEMA = {
    "type": "object",
    "required": ["kind"],
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "time": {"type": "string", "format": "date-time"},
        "source": {
            "type": "object",
            "properties": {"type": {"type": "string"}, "id": {"type": "string"}, "delivery": {"type": "string"}},
        },
        "kind": {"type": "string", "example": "deploy"},
        "action": {"type": "string"},
        "outcome": {"type": "string", "enum": ["success", "failure", "unknown"]},
        "actor": {"type": "object"},
        "target": {"type": "object"},
        "env": {"type": "string"},
        "attrs": {"type": "object"},
        "raw": {},
        "sig": {"type": "object"},
        "salt": {"type": "string"},
    },
}
_RECEIPTS = {
    "200": {
        "description": "Durably stored (or already stored: duplicate=true); receipts in input order.",
        "content": {"application/json": {"schema": {"type": "object", "properties": {"receipts": {"type": "array"}}}}},
    }
}


@router.post(
    "/v1/events",
    tags=["ingest"],
    summary="Append events: one JSON object, a JSON array, or NDJSON",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"oneOf": [_EVENT_SCHEMA, {"type": "array", "items": _EVENT_SCHEMA}]}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        },
        "responses": _RECEIPTS,
        "parameters": [
            {
                "name": "wait",
                "in": "query",
                "required": False,
                "description": "checkpoint: answer once a checkpoint covers the events, with each tlog-proof",
                "schema": {"type": "string", "enum": ["checkpoint"]},
            }
        ],
    },
)
async def post_events(request: Request) -> Response:
    """Validate every event first (any error: 4xx, nothing written), then append; answer after the durable commit."""
    token = authorize(request, "ingest")
    body = await read_body(request, allowed=JSON_TYPES)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    job = (body, content_type, received_now(), default_source(token, request), policy_for(token, request))
    if len(body) >= POOL_BYTES:
        prepared = await prepare_in_pool(request, prepare_request, *job)
    else:
        prepared = await prepare_async(partial(prepare_request, *job), len(body))
    return json_response(await accept(request, prepared, wait_checkpoint=_wait(request)))


POOL_BYTES = 16 * 1024
"""Bodies at least this big are prepared in the preparation processes (server.prepare_workers)."""


def prepare_request(
    body: bytes, content_type: str, received: str, source: Source | None, policy: IngestPolicy
) -> list[PreparedEvent]:
    """The prepared events of one request body (a JSON object or array, or NDJSON); picklable."""
    if content_type == "application/json":
        return prepare_batch(body, received=received, default_source=source, check=policy.check)
    out = []
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            try:
                out.append(prepare(line, received=received, default_source=source, check=policy.check))
            except EventRefused as exc:
                raise EventRefused(exc.status, f"line {number}: {exc}") from None
            except EventError as exc:
                raise EventError(f"line {number}: {exc}") from None
    return out


def _wait(request: Request) -> bool:
    """?wait=checkpoint, read without building a QueryParams for every request (the hot path)."""
    raw: bytes = request.scope.get("query_string", b"")
    if not raw:
        return False
    wait = parse_qs(raw.decode(errors="replace")).get("wait", [""])[-1]
    if wait not in ("", "checkpoint"):
        raise ApiError(400, "wait: the only value is checkpoint")
    return wait == "checkpoint"


@router.get("/v1/events/{event_id}", tags=["read"], summary="An event by id, with its index and leaf hash")
async def get_event(request: Request, event_id: str) -> Response:
    authorize(request, "read", public=True)
    if not _UUID.fullmatch(event_id):
        raise ApiError(400, "event id must be a UUID")
    store = services(request).store
    index = store.index_of(bytes.fromhex(event_id.replace("-", "")))
    entry = None if index is None else store.entry(index)
    redaction = None if index is None or entry is not None else store.redaction(index)
    if redaction is not None:
        return gone(redaction)
    if index is None or entry is None:
        raise ApiError(404, f"no event with id {event_id}")
    body = {"index": index, "leaf_hash": b64encode(leaf_hash(entry)), "event": orjson.Fragment(entry)}
    raw = parse_json(entry).get("raw")
    if is_out_of_line(raw):
        blob = store.blob(raw["digest"].removeprefix("sha256:"))
        if blob is not None:
            body["raw"] = orjson.Fragment(blob)
    return json_response(body)


@router.get("/v1/entries/{index}", tags=["read"], summary="The exact leaf bytes of an entry")
async def get_entry(request: Request, index: Annotated[int, Path(ge=0, le=MAX_INDEX)]) -> Response:
    authorize(request, "read", public=True)
    svc = services(request)
    size, _ = svc.view.latest_checkpoint()
    entry = svc.store.entry(index) if index >= 0 else None
    redaction = svc.store.redaction(index) if entry is None else None
    if redaction is not None:
        return gone(redaction)
    if entry is None:
        raise ApiError(404, f"no entry at index {index} (the log has {svc.log.size} entries, {size} checkpointed)")
    return Response(entry, media_type="application/json")
