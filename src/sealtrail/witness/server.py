"""The witness over HTTP (ASGI): c2sp.org/tlog-witness `POST /add-checkpoint`, plus its key and its logs.

    POST /add-checkpoint   200 cosignature lines | 409 text/x.tlog.size | 4xx text/plain reason
    GET  /vkey             the cosignature/v1 verifier key (text/plain)
    GET  /logs             [{"origin", "size", "root"}] of the witnessed logs (JSON)
    GET  /healthz          {"status": "ok"}

Bodies are read up to MAX_BODY_BYTES (413 beyond). Refusals are plain text,
one line saying why; nothing is written for them (except the evidence of a
log contradicting itself, see WitnessState).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..note import b64encode
from .protocol import ADD_CHECKPOINT, MAX_BODY_BYTES, SIZE_CONTENT_TYPE, Refusal, format_size
from .service import Witness

__all__ = ["create_witness_app"]

logger = logging.getLogger("sealtrail.witness")


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _refused(refusal: Refusal) -> Response:
    if refusal.status == 409 and refusal.size is not None:
        return Response(format_size(refusal.size), 409, headers={"Content-Type": SIZE_CONTENT_TYPE})
    return PlainTextResponse(" ".join(refusal.message.split()) + "\n", refusal.status)


def create_witness_app(witness: Witness, *, close_state: bool = True) -> Starlette:
    """The witness's HTTP API; the state is closed on shutdown unless close_state is False."""

    async def add_checkpoint(request: Request) -> Response:
        try:
            body = await _read_body(request)
        except _TooLarge:
            return PlainTextResponse(f"the request body is larger than {MAX_BODY_BYTES} bytes\n", 413)
        try:
            cosignatures = await run_in_threadpool(witness.add_checkpoint, body)
        except Refusal as refusal:
            level = logging.WARNING if refusal.status in (409, 422) and refusal.size is None else logging.INFO
            logger.log(level, "add-checkpoint refused (%d): %s", refusal.status, refusal.message)
            return _refused(refusal)
        return Response(cosignatures, 200, media_type="text/plain; charset=utf-8")

    async def vkey(request: Request) -> Response:
        return PlainTextResponse(witness.verifier.vkey + "\n")

    async def logs(request: Request) -> Response:
        states = await run_in_threadpool(witness.state.logs)
        return JSONResponse([{"origin": s.origin, "size": s.size, "root": b64encode(s.root)} for s in states])

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_state:
                witness.state.close()

    return Starlette(
        routes=[
            Route(ADD_CHECKPOINT, add_checkpoint, methods=["POST"]),
            Route("/vkey", vkey, methods=["GET"]),
            Route("/logs", logs, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
