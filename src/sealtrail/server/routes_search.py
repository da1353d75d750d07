"""GET /v1/search: events by filters and free text, in index order, a page at a time, optionally with proofs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..merkle import ProofError
from ..search import DEFAULT_LIMIT, FIELDS, MAX_LIMIT, QueryError, decode_cursor, parse_query, query_from_params
from ..search_page import search_page
from ..store.base import StoreError
from .common import authorize, services
from .errors import ApiError, json_response

__all__ = ["router"]

router = APIRouter()

Filter = Annotated[str | None, Query(max_length=1024)]


@router.get(
    "/v1/search",
    tags=["read"],
    summary="Search events: filters, free text, cursor pagination, optional tlog-proofs",
    description=(
        "Every condition must hold. `q` takes the query text of docs/search.md (`kind:deploy env:prod rollback`); "
        "the named parameters add filters. Results come in index order; pass `next_cursor` back as `cursor` for "
        "the next page. With `proofs=true` each result carries a c2sp.org/tlog-proof against the latest "
        "checkpoint, and only events that checkpoint covers are returned."
    ),
)
async def search_events(
    request: Request,
    q: Annotated[str, Query(max_length=4096, description="query text: field:value filters and free words")] = "",
    since: Annotated[str | None, Query(max_length=64, description="RFC 3339, a date, or an age (24h)")] = None,
    until: Annotated[str | None, Query(max_length=64, description="exclusive; as since")] = None,
    source: Filter = None,
    kind: Annotated[str | None, Query(max_length=128, description="a kind or dotted prefix: auth")] = None,
    action: Filter = None,
    actor: Annotated[str | None, Query(max_length=1024, description="actor id, name or ip")] = None,
    target: Annotated[str | None, Query(max_length=1024, description="target id or name")] = None,
    outcome: Annotated[str | None, Query(max_length=16, description="success, failure or unknown")] = None,
    env: Filter = None,
    text: Annotated[str | None, Query(max_length=1024, description="free words")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    proofs: bool = False,
) -> Response:
    authorize(request, "read", public=True)
    values = (since, until, source, kind, action, actor, target, outcome, env, text)
    given = dict(zip((*FIELDS, "text"), values, strict=True))
    try:
        query = parse_query(q).merged(query_from_params({k: v for k, v in given.items() if v is not None}))
        after = -1 if cursor is None else decode_cursor(cursor)
    except QueryError as exc:
        raise ApiError(400, str(exc)) from None
    view = services(request).view
    try:
        page = await run_in_threadpool(search_page, view, query, after=after, limit=limit, proofs=proofs)
    except (StoreError, ProofError) as exc:
        raise ApiError(503, f"cannot search the log now: {exc}") from None
    return json_response(page.to_json())
