"""What every route needs: the services, the caller's token, the body, and the ingest path."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from ..credentials import Source as RegisteredSource
from ..credentials import Token
from ..event import Envelope, EventError, PreparedEvent, Source, format_time, verify_envelope_signature
from ..log import Receipt
from ..store.base import StoreError
from .errors import ApiError
from .oidc import OidcError, OidcToken, apply_claims, looks_like_jwt
from .services import Services

__all__ = [
    "EventRefused",
    "IngestPolicy",
    "accept",
    "authorize",
    "default_source",
    "policy_for",
    "prepare_async",
    "prepare_in_pool",
    "prepared_or_refused",
    "read_body",
    "received_now",
    "services",
]

INLINE_BYTES = 128 * 1024
"""Bigger bodies are prepared in a worker thread, so the event loop keeps answering."""


class EventRefused(Exception):
    """An event that is valid JSON but may not be written: status 401 or 403."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(status, message)
        self.status = status
        self.message = message

    def __str__(self) -> str:
        return self.message


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def authorize(request: Request, scope: str, *, public: bool = False) -> Token | None:
    """The caller's token, which must grant `scope`: 401 without a valid token, 403 without the scope.

    A bearer token that is a JWT is a GitHub Actions OIDC token, checked by the OIDC verifier.
    """
    if public and services(request).settings.public_read:
        return None
    header = request.headers.get("authorization", "")
    kind, _, presented = header.partition(" ")
    if kind.lower() != "bearer" or not presented.strip():
        raise ApiError(401, "missing bearer token: send Authorization: Bearer <token>", {"WWW-Authenticate": "Bearer"})
    presented = presented.strip()
    if looks_like_jwt(presented):
        token: Token | None = _oidc_token(request, presented, scope)
    else:
        token = services(request).credentials.authenticate(presented)
    if token is None:
        raise ApiError(401, "invalid or revoked token", {"WWW-Authenticate": "Bearer"})
    if not token.allows(scope):
        raise ApiError(403, f"this token lacks the {scope!r} scope")
    return token


# --- GitHub Actions OIDC -------------------------------------------------------------------------

OIDC_INGEST_PATH = "/v1/events"
"""The one ingest route that fills events from the OIDC claims (check_for, default_source)."""


def _oidc_token(request: Request, presented: str, scope: str) -> OidcToken:
    """The OIDC principal for a JWT bearer token: 401 if OIDC is off or the token is invalid, 403 by policy.

    Only POST /v1/events fills events from the claims, so other ingest routes refuse OIDC tokens.
    """
    verifier = services(request).oidc
    if verifier is None:
        raise ApiError(
            401, "OIDC is not configured on this server ([server.oidc] audience)", {"WWW-Authenticate": "Bearer"}
        )
    try:
        token = verifier.verify(presented)
    except OidcError as exc:
        headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
        raise ApiError(exc.status, str(exc), headers) from None
    if scope == "ingest" and getattr(request.scope.get("route"), "path", None) != OIDC_INGEST_PATH:
        raise ApiError(403, f"an OIDC token may write only through POST {OIDC_INGEST_PATH}")
    return token


async def read_body(request: Request, *, allowed: Sequence[str]) -> bytes:
    """The request body if its type is allowed and it fits max_body_bytes (415 / 413 otherwise).

    A gzip Content-Encoding (the OpenTelemetry Collector's default) is undone,
    and the limit applies to the decompressed body too.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in allowed:
        named = ", ".join(kind for kind in allowed if kind) or "none"
        raise ApiError(415, f"Content-Type must be one of {named}, not {content_type or 'none'!r}")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip"):
        raise ApiError(415, f"Content-Encoding {encoding!r} is not supported (use gzip or none)")
    limit = services(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"body over the {limit}-byte limit (server.max_body_bytes)")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body over the {limit}-byte limit (server.max_body_bytes)")
        chunks.append(chunk)
    body = b"".join(chunks)
    if encoding == "gzip":
        body = _gunzip(body, limit)
    if not body.strip():
        raise ApiError(400, "empty body: send one or more events")
    return body


def _gunzip(body: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"Content-Encoding is gzip, but the body is not gzip: {exc}") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ApiError(413, f"body over the {limit}-byte limit once decompressed (server.max_body_bytes)")
    return out


def received_now() -> str:
    return format_time(datetime.now(UTC))


def default_source(token: Token | None, request: Request) -> Source | None:
    """For events that name no source: the token's one source, if it is limited to exactly one."""
    if isinstance(token, OidcToken):
        return Source(type=token.source_type, id=token.source)  # type: ignore[arg-type]
    if token is None or len(token.sources) != 1:
        return None
    name = next(iter(token.sources))
    source = services(request).credentials.source(name)
    return None if source is None else Source(type=source.type, id=name)  # type: ignore[arg-type]


@dataclass(frozen=True)
class IngestPolicy:
    """Who may write what: the caller's grants and the registered sources, as plain data.

    Picklable, so that events can be checked in a preparation process as well as here.
    """

    token: Token | None
    sources: Mapping[str, RegisteredSource]

    def check(self, env: Envelope) -> None:
        """The token may write this source; the source's type and signature policy hold."""
        assert env.source is not None
        name = env.source.id
        token = self.token
        if token is not None and not token.allows_source(name):
            raise EventRefused(403, f"source.id: this token may not write events of source {name!r}")
        source = self.sources.get(name)
        if source is not None and env.source.type != source.type:
            raise EventRefused(
                403, f"source.type: source {name!r} is registered as {source.type!r}, not {env.source.type!r}"
            )
        if env.sig is not None:
            if source is None or not source.keys:
                raise EventRefused(401, f"sig: source {name!r} has no registered key to check the signature with")
            try:
                verify_envelope_signature(env, source.verifiers())
            except EventError as exc:
                raise EventRefused(401, str(exc)) from None
        elif source is not None and source.require_signature:
            raise EventRefused(401, f"sig: source {name!r} requires events signed with its key")
        if isinstance(token, OidcToken):
            try:
                apply_claims(env, token)
            except OidcError as exc:
                raise EventRefused(exc.status, str(exc)) from None


def policy_for(token: Token | None, request: Request) -> IngestPolicy:
    return IngestPolicy(token, services(request).credentials.registered())


def prepared_or_refused(make: Callable[[], list[PreparedEvent]]) -> list[PreparedEvent]:
    """Run a preparation, turning refusals into the right 4xx."""
    try:
        return make()
    except EventRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    except EventError as exc:
        raise ApiError(400, str(exc)) from None


async def prepare_async(make: Callable[[], list[PreparedEvent]], body_bytes: int) -> list[PreparedEvent]:
    """Prepare inline for small bodies; in a worker thread for big ones."""
    if body_bytes > INLINE_BYTES:
        return await run_in_threadpool(prepared_or_refused, make)
    return prepared_or_refused(make)


async def prepare_in_pool(
    request: Request, job: Callable[..., list[PreparedEvent]], *args: object
) -> list[PreparedEvent]:
    """Run a picklable preparation job in the preparation processes (inline if there are none)."""
    pool = services(request).preparers
    if pool is None:
        return prepared_or_refused(partial(job, *args))
    try:
        return await asyncio.wrap_future(pool.submit(job, *args))
    except EventRefused as exc:
        raise ApiError(exc.status, str(exc)) from None
    except EventError as exc:
        raise ApiError(400, str(exc)) from None


async def accept(request: Request, prepared: list[PreparedEvent], *, wait_checkpoint: bool = False) -> dict[str, Any]:
    """Hand prepared events to the sequencer; answer once durable: {"receipts": [...]}."""
    svc = services(request)
    started = time.perf_counter()
    try:
        receipts: list[Receipt] = await asyncio.wrap_future(svc.log.submit(prepared))
    except StoreError as exc:
        raise ApiError(503, f"the log cannot accept events now: {exc}") from None
    svc.metrics.record_appended(prepared, receipts, time.perf_counter() - started)
    out = [receipt.to_json() for receipt in receipts]
    if wait_checkpoint and receipts:
        needed = max(receipt.index for receipt in receipts) + 1
        try:
            size, _ = await run_in_threadpool(svc.log.wait_for_checkpoint, needed, svc.settings.wait_timeout)
        except TimeoutError:
            raise ApiError(504, "events are stored, but no checkpoint covered them in time; ask again") from None
        for receipt, body in zip(receipts, out, strict=True):
            body["checkpoint_size"] = size
            body["proof"] = svc.view.tlog_proof(receipt.index, size).encode().decode()
    return {"receipts": out}
