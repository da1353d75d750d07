"""GET /metrics (Prometheus), GET /v1/integrity (the latest audit), and the ingest-timing middleware."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..metrics import Metrics
from .common import authorize, services
from .errors import json_response

__all__ = ["INGEST_TAGS", "IngestMetricsMiddleware", "router"]

router = APIRouter(tags=["ops"])

INGEST_TAGS = frozenset({"ingest", "sources"})
"""Routes tagged with one of these write events: their requests are timed and their refusals counted."""

_TEXT: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format 0.0.4 (or OpenMetrics if asked)", "content": {"text/plain": {}}}
}


@router.get("/metrics", summary="Prometheus metrics (read scope, unless server.public_metrics)", responses=_TEXT)
async def metrics(request: Request) -> Response:
    svc = services(request)
    if not svc.settings.public_metrics:
        authorize(request, "read")
    body, content_type = svc.metrics.exposition(request.headers.get("accept"))
    return Response(body, headers={"Content-Type": content_type, "Cache-Control": "no-store"})


@router.get("/v1/integrity", summary="The latest periodic integrity audit: result, coverage, and the error if any")
async def integrity(request: Request) -> Response:
    authorize(request, "read", public=True)
    monitor = services(request).integrity
    if monitor is None:
        return json_response({"enabled": False})
    status = monitor.status()
    body: dict[str, Any] = {
        "enabled": True,
        "interval": status.interval,
        "ok": status.ok,
        "runs": status.runs,
        "failures": status.failures,
        "last_run": status.last_run,
        "last_success": status.last_success,
        "duration": status.duration,
        "checked_size": status.checked_size,
        "checkpoints": status.checkpoints,
        "error": status.error,
    }
    return json_response(body)


class IngestMetricsMiddleware:
    """Times accepted ingest requests and counts refused ones, by route template (a pure ASGI middleware).

    The route is known only after routing, so it is read from the scope once the app has answered.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped the handlers
        answered = started

        async def timed(message: Message) -> None:
            nonlocal status, answered
            if message["type"] == "http.response.start":
                status = message["status"]
                answered = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, timed)
        finally:
            route = scope.get("route")
            if isinstance(route, APIRoute) and INGEST_TAGS.intersection(route.tags):
                if status < 400:
                    self.metrics.record_request(route.path, answered - started)
                else:
                    self.metrics.record_rejected(route.path, status)
