"""GET /v1/witnesses: the witness policy and each witness's state (read scope)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from .common import authorize, services
from .errors import json_response

__all__ = ["router"]

router = APIRouter()


@router.get("/v1/witnesses", tags=["read"], summary="Witness policy, latest witnessed checkpoint, each witness's state")
async def witnesses(request: Request) -> Response:
    authorize(request, "read", public=True)
    witnessing = services(request).witnessing
    if witnessing is None:
        return json_response({"policy": 0, "of": 0, "latest_witnessed": None, "witnesses": []})
    return json_response(await run_in_threadpool(witnessing.status))
