"""Checkpoints, proofs, and the c2sp.org/tlog-tiles read paths, plus /healthz."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..merkle import ProofError
from ..note import b64encode
from ..store.base import RedactedError, StoreError
from ..tiles import TILE_WIDTH, parse_tile_path, redacted_bundle_path, tile_width
from ..view import NotYetSigned
from .common import authorize, services
from .errors import ApiError, gone, json_response
from .settings import MAX_INDEX

__all__ = ["router"]

router = APIRouter()

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_FRESH = {"Cache-Control": "no-cache, max-age=0"}


@router.get("/healthz", tags=["ops"], summary="Liveness: the log is open")
async def healthz(request: Request) -> Response:
    svc = services(request)
    size, _ = svc.log.latest_checkpoint()
    return json_response({"status": "ok", "size": svc.log.size, "checkpoint_size": size})


def _checkpoint(request: Request) -> Response:
    authorize(request, "read", public=True)
    svc = services(request)
    note = svc.view.cosigned(*svc.log.latest_checkpoint())  # with the witnesses' cosignatures kept so far
    return Response(note, media_type="text/plain; charset=utf-8", headers=_FRESH)


@router.get("/v1/checkpoint", tags=["read"], summary="The latest signed checkpoint (c2sp.org/tlog-checkpoint)")
async def v1_checkpoint(request: Request) -> Response:
    return _checkpoint(request)


@router.get("/checkpoint", tags=["tiles"], summary="c2sp.org/tlog-tiles: the latest checkpoint")
async def tiles_checkpoint(request: Request) -> Response:
    return _checkpoint(request)


@router.get("/v1/proof/inclusion", tags=["read"], summary="Inclusion proof of an entry in a checkpointed tree")
async def inclusion(
    request: Request,
    index: Annotated[int, Query(ge=0, le=MAX_INDEX)],
    size: Annotated[int | None, Query(ge=1, le=MAX_INDEX, description="checkpoint size; default: latest")] = None,
    format: Annotated[Literal["json", "tlog-proof"], Query()] = "json",
) -> Response:
    authorize(request, "read", public=True)
    view = services(request).view
    try:
        proof = view.tlog_proof(index, size)
    except (ProofError, StoreError) as exc:
        raise ApiError(404 if isinstance(exc, StoreError) else 400, str(exc)) from None
    if format == "tlog-proof":
        return Response(proof.encode(), media_type="text/plain; charset=utf-8")
    checkpoint_size = size if size is not None else view.latest_checkpoint()[0]
    return json_response(
        {
            "index": index,
            "size": checkpoint_size,
            "leaf_hash": b64encode(view.leaf_hash(index)),
            "proof": [b64encode(h) for h in proof.proof],
            "checkpoint": proof.checkpoint.decode(),
        }
    )


@router.get("/v1/proof/consistency", tags=["read"], summary="Consistency proof between two tree sizes")
async def consistency(
    request: Request,
    from_size: Annotated[int, Query(alias="from", ge=0, le=MAX_INDEX)],
    to_size: Annotated[
        int | None, Query(alias="to", ge=0, le=MAX_INDEX, description="default: latest checkpoint")
    ] = None,
) -> Response:
    authorize(request, "read", public=True)
    view = services(request).view
    new = to_size if to_size is not None else view.latest_checkpoint()[0]
    try:
        proof = view.consistency_proof(from_size, new)
    except (ProofError, StoreError) as exc:
        raise ApiError(400, str(exc)) from None
    return json_response({"from": from_size, "to": new, "proof": [b64encode(h) for h in proof]})


@router.get("/tile/{path:path}", tags=["tiles"], summary="c2sp.org/tlog-tiles: hash tiles and entry bundles")
async def tile(request: Request, path: str) -> Response:
    """Tiles of the latest checkpoint's tree; a partial tile of any smaller width too (it is a prefix)."""
    authorize(request, "read", public=True)
    try:
        ref = parse_tile_path(f"tile/{path}")
    except ValueError:
        raise ApiError(404, f"no such tile: tile/{path}") from None
    svc = services(request)
    size, _ = svc.log.latest_checkpoint()
    if ref.width > tile_width(0 if ref.level is None else ref.level, ref.index, size):
        raise ApiError(404, f"tile/{path} is not in the tree of the latest checkpoint (size {size})")
    if ref.level is None:
        try:
            data = svc.view.entry_bundle(ref.index, ref.width, ref.index * TILE_WIDTH + ref.width)
        except RedactedError as exc:  # the hash tile stays served; the signed bundle bytes are gone
            answer = gone(exc.redaction)
            answer.headers["Link"] = f'</{redacted_bundle_path(ref.index, ref.width)}>; rel="alternate"'
            return answer
    else:
        data = svc.store.read_tiles([ref])[0]
    return Response(data, media_type="application/octet-stream", headers=_IMMUTABLE)


@router.get(
    "/redacted/tile/entries/{path:path}",
    tags=["tiles"],
    summary="An entry bundle that spans redacted entries, with those entries empty (sealtrail extension)",
)
async def redacted_bundle(request: Request, path: str) -> Response:
    """tiles.redacted_bundle_path: where tile/entries/{path} answers 410. 404 if that bundle spans no redacted
    entry. Not immutable: a later redaction in the same bundle empties one more entry."""
    authorize(request, "read", public=True)
    try:
        ref = parse_tile_path(f"tile/entries/{path}")
    except ValueError:
        raise ApiError(404, f"no such entry bundle: tile/entries/{path}") from None
    svc = services(request)
    size, _ = svc.log.latest_checkpoint()
    if ref.width > tile_width(0, ref.index, size):
        raise ApiError(404, f"tile/entries/{path} is not in the tree of the latest checkpoint (size {size})")
    try:
        data = svc.view.redacted_bundle(ref.index, ref.width, ref.index * TILE_WIDTH + ref.width, size)
    except NotYetSigned as exc:
        raise ApiError(503, str(exc), {"Retry-After": "1"}) from None
    if data is None:
        raise ApiError(404, f"tile/entries/{path} spans no redacted entry; read it at /tile/entries/{path}")
    return Response(data, media_type="application/octet-stream", headers={"Cache-Control": "no-cache"})
