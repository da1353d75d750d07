"""RFC 3161 time-stamps on checkpoints (read scope): the reply for one checkpoint, and the TSA's status."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ..timestamp import REPLY_MEDIA_TYPE
from .common import authorize, services
from .errors import ApiError, json_response
from .settings import MAX_INDEX

__all__ = ["router"]

router = APIRouter()


@router.get(
    "/v1/checkpoint/{size}/timestamp",
    tags=["read"],
    summary="The RFC 3161 time-stamp reply (DER TimeStampResp) over the checkpoint of this size",
    response_class=Response,
    responses={200: {"content": {REPLY_MEDIA_TYPE: {}}}, 404: {"description": "no time-stamp on that checkpoint"}},
)
async def checkpoint_timestamp(request: Request, size: Annotated[int, Path(ge=0, le=MAX_INDEX)]) -> Response:
    authorize(request, "read", public=True)
    store = services(request).store
    reply = await run_in_threadpool(store.timestamp, size)
    if reply is None:
        raise ApiError(404, f"the checkpoint of size {size} has no time-stamp (see GET /v1/timestamping)")
    headers = {"Cache-Control": "public, max-age=31536000, immutable"}
    return Response(reply, media_type=REPLY_MEDIA_TYPE, headers=headers)


@router.get(
    "/v1/timestamping", tags=["read"], summary="The TSA, the latest time-stamped checkpoint, the latest outcome"
)
async def timestamping_status(request: Request) -> Response:
    authorize(request, "read", public=True)
    timestamping = services(request).timestamping
    if timestamping is None:
        latest = await run_in_threadpool(services(request).store.latest_timestamp)
        return json_response(
            {"url": None, "latest": None if latest is None else {"size": latest[0], "gen_time": latest[1]}}
        )
    return json_response(timestamping.status())
