"""Serving a mirror's copy as a c2sp.org/tlog-tiles log, with its status, metrics and a witness endpoint.

GET /checkpoint and /tile/... serve the copy (tiles immutable, the checkpoint
fresh); /status and /metrics report the follower; with a witness key, GET /vkey
gives its cosignature/v1 verifier key and POST /add-checkpoint
(c2sp.org/tlog-witness) cosigns a checkpoint only once
the mirror holds exactly that checkpoint, mirroring it first if it extends
the copy (so a cosignature always means: verified and copied).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from .checkpoint import CheckpointError, open_checkpoint, parse_checkpoint
from .cosignature import CosignatureVerifier
from .follow import Kind, Status
from .merkle import EMPTY_ROOT, ProofError, verify_append_only
from .metrics import STATUS_METRICS
from .mirror import Mirror
from .note import NoteError, parse_note
from .objectstore import TileSink
from .tiles import parse_tile_path, redacted_bundle_path
from .witness.protocol import (
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    ProtocolError,
    Refusal,
    format_signature_lines,
    format_size,
    parse_add_checkpoint,
)

__all__ = ["StatusCollector", "add_checkpoint", "create_mirror_app"]

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_FRESH = {"Cache-Control": "no-cache, max-age=0"}


class StatusCollector(Collector):
    """The follower's Status at scrape time, under the names sealtrail.metrics reserves for mirrors and monitors."""

    def __init__(self, status: Status) -> None:
        self.status = status

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.status.snapshot()
        ok = None if snap["last_kind"] is None else float(snap["last_kind"] == Kind.OK.value)
        values = {
            "mirror_size": snap["verified_size"],
            "mirror_ok": ok,
            "mirror_last_success_timestamp_seconds": snap["last_success"],
        }
        for name, value in values.items():
            spec = STATUS_METRICS[name]
            family = GaugeMetricFamily(f"sealtrail_{name}", spec.help, labels=[spec.label or "log"])
            if value is not None:
                family.add_metric([snap["origin"]], float(value))
            yield family


def add_checkpoint(mirror: Mirror, body: bytes) -> bytes:
    """Handle a c2sp.org/tlog-witness add-checkpoint request; the 200 body, or Refusal."""
    if mirror.witness is None:
        raise Refusal(404, "this mirror has no witness key")
    try:
        request = parse_add_checkpoint(body)
        text, _ = parse_note(request.checkpoint)
        checkpoint = parse_checkpoint(text)
    except (ProtocolError, NoteError) as exc:
        raise Refusal(400, str(exc)) from None
    if checkpoint.origin != mirror.origin:
        raise Refusal(404, f"unknown log origin {checkpoint.origin!r}")
    try:
        signed = open_checkpoint(request.checkpoint, mirror.origin, [mirror.verifier])
    except (NoteError, CheckpointError) as exc:
        raise Refusal(403, f"checkpoint is not signed by the log's key: {exc}") from None
    if request.old_size > checkpoint.size:
        raise Refusal(400, f"old size {request.old_size} is larger than the checkpoint's size {checkpoint.size}")
    with mirror.lock:
        if mirror.stopped:
            raise Refusal(409, f"this mirror found a fork of {mirror.origin} and cosigns nothing more")
        held = mirror.held.checkpoint if mirror.held else None
        held_size, held_root = (held.size, held.root) if held else (0, EMPTY_ROOT)
        if request.old_size != held_size:
            raise Refusal(409, f"this mirror holds size {held_size}", held_size)
        if checkpoint.size > held_size:
            try:
                verify_append_only(held_size, checkpoint.size, request.proof, held_root, checkpoint.root)
            except ProofError as exc:
                raise Refusal(422, f"consistency proof does not verify: {exc}") from None
        if checkpoint.size != held_size or checkpoint.root != held_root:
            observation = mirror.advance(signed)
            if observation.kind is Kind.FORK:
                raise Refusal(409, observation.message)
            if mirror.held is None or mirror.held.checkpoint != checkpoint:
                raise Refusal(503, f"checkpoint {checkpoint.size} could not be mirrored: {observation.message}")
        cosignature = mirror.cosign(text)
    assert cosignature is not None
    return format_signature_lines([cosignature])


def create_mirror_app(
    sink: TileSink,
    status: Status,
    *,
    mirror: Mirror | None = None,
    follower: Callable[[threading.Event], object] | None = None,
) -> Starlette:
    """The copy in `sink` as a tiles log; `follower(stop)` runs in a thread for the app's lifetime."""

    async def checkpoint(request: Request) -> Response:
        note = await run_in_threadpool(sink.get, "checkpoint")
        if note is None:
            return JSONResponse({"error": "the mirror holds no checkpoint yet"}, 404)
        return Response(note, media_type="text/plain; charset=utf-8", headers=_FRESH)

    async def tile(request: Request) -> Response:
        path = "tile/" + request.path_params["path"]
        try:
            parse_tile_path(path)
        except ValueError:
            return JSONResponse({"error": f"no such tile: {path}"}, 404)
        data = await run_in_threadpool(sink.get, path)
        if data is None:
            return JSONResponse({"error": f"no such tile: {path}"}, 404)
        return Response(data, media_type="application/octet-stream", headers=_IMMUTABLE)

    async def redacted(request: Request) -> Response:
        path = "tile/entries/" + request.path_params["path"]
        try:
            ref = parse_tile_path(path)
        except ValueError:
            return JSONResponse({"error": f"no such entry bundle: {path}"}, 404)
        data = await run_in_threadpool(sink.get, redacted_bundle_path(ref.index, ref.width))
        if data is None:
            return JSONResponse({"error": f"no redacted form of {path}"}, 404)
        return Response(data, media_type="application/octet-stream", headers=_IMMUTABLE)

    async def status_route(request: Request) -> Response:
        return JSONResponse(status.snapshot(), headers=_FRESH)

    registry = CollectorRegistry(auto_describe=True)
    registry.register(StatusCollector(status))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def witness(request: Request) -> Response:
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return Response(b"request body too large\n", 413, media_type="text/plain; charset=utf-8")
        assert mirror is not None
        try:
            signatures = await run_in_threadpool(add_checkpoint, mirror, body)
        except Refusal as refusal:
            if refusal.size is not None:
                return Response(format_size(refusal.size), refusal.status, headers={"Content-Type": SIZE_CONTENT_TYPE})
            return Response(f"{refusal.message}\n".encode(), refusal.status, media_type="text/plain; charset=utf-8")
        return Response(signatures, media_type="text/plain; charset=utf-8")

    routes = [
        Route("/checkpoint", checkpoint, methods=["GET"]),
        Route("/tile/{path:path}", tile, methods=["GET"]),
        Route("/redacted/tile/entries/{path:path}", redacted, methods=["GET"]),
        Route("/status", status_route, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if mirror is not None and mirror.witness is not None:
        cosigner = CosignatureVerifier(mirror.witness.name, mirror.witness.public_key)

        async def vkey(request: Request) -> Response:
            return PlainTextResponse(cosigner.vkey + "\n")

        routes.append(Route("/add-checkpoint", witness, methods=["POST"]))
        routes.append(Route("/vkey", vkey, methods=["GET"]))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if follower is not None:
            thread = threading.Thread(target=follower, args=(stop,), name="sealtrail-mirror", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join()

    return Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(GZipMiddleware, minimum_size=1024)])
