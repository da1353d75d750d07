"""Webhooks and collectors of the tools teams already run (one route per source type).

Each route authenticates the way its tool does (HMAC secret, shared token,
bearer token), turns the payload into envelopes with the pure adapter in
`sealtrail.sources`, and appends them like POST /v1/events: all or nothing,
answered after the durable commit, redeliveries deduplicated.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..credentials import Source
from ..event import EventError, PreparedEvent, prepare
from ..jcs import CanonicalJsonError, parse_json
from ..sources import cloudevents, github, gitlab, hec, jenkins, kubernetes, otlp
from ..sources.base import Envelope, SourceAuthError, SourcePayloadError, constant_time_equal
from .common import accept, authorize, prepare_async, read_body, received_now, services
from .errors import ApiError, json_response

__all__ = ["router"]

router = APIRouter(tags=["sources"])

_ANY_TYPE = (
    "application/json",
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "text/plain",
    "application/octet-stream",
    "application/xml",
    "",
)
"""CloudEvents binary mode carries the event data with its own Content-Type."""

_WEBHOOK_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object"}}}}}


def _configured(request: Request, name: str, source_type: str) -> Source:
    source = services(request).credentials.source(name)
    if source is None or source.type != source_type:
        raise ApiError(404, f"no {source_type} source named {name!r}; add it with `sealtrail source add`")
    return source


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = parse_json(body)
    except CanonicalJsonError as exc:
        raise ApiError(400, str(exc)) from None
    if not isinstance(payload, dict):
        raise ApiError(400, "the payload must be a JSON object")
    return payload


async def _append(request: Request, make: Callable[[], Sequence[Envelope]], body_bytes: int) -> dict[str, Any]:
    """Map, validate and append; adapter and envelope errors become 4xx and write nothing."""
    received = received_now()

    def prepared() -> list[PreparedEvent]:
        try:
            return [prepare(envelope, received=received) for envelope in make()]
        except SourceAuthError as exc:
            raise ApiError(401, str(exc)) from None
        except SourcePayloadError as exc:
            raise ApiError(400, str(exc)) from None
        except EventError as exc:
            raise ApiError(400, f"the payload maps to an invalid event: {exc}") from None

    return await accept(request, await prepare_async(prepared, body_bytes))


def _header(request: Request, name: str) -> str:
    value = request.headers.get(name, "").strip()
    if not value:
        raise ApiError(400, f"missing {name} header")
    return value


# --- GitHub -----------------------------------------------------------------------------------


@router.post("/hooks/github/{source}", summary="GitHub webhooks (X-Hub-Signature-256)", openapi_extra=_WEBHOOK_BODY)
async def github_hook(request: Request, source: str) -> Response:
    """Configure in GitHub: Payload URL …/hooks/github/<source>, content type application/json, the source's secret."""
    configured = _configured(request, source, "github")
    body = await read_body(request, allowed=("application/json",))
    if not configured.secret:
        raise ApiError(401, f"source {source!r} has no webhook secret; set one with `sealtrail source add --secret`")
    try:
        github.verify_signature(configured.secret.encode(), body, request.headers.get(github.SIGNATURE_HEADER))
    except SourceAuthError as exc:
        raise ApiError(401, str(exc)) from None
    event = _header(request, "X-GitHub-Event")
    delivery = _header(request, "X-GitHub-Delivery")
    payload = _json_object(body)
    receipts = await _append(request, lambda: github.to_envelopes(event, delivery, payload, source), len(body))
    return json_response(receipts)


# --- Splunk HTTP Event Collector (GitHub Enterprise audit-log streaming) ---------------------------


_HEC_TYPES = ("application/json", "text/plain", "application/x-www-form-urlencoded", "")
"""HEC senders are lax about Content-Type; the body is always concatenated JSON."""


def _hec_error(status: int, text: str, code: int) -> Response:
    return json_response({"text": text, "code": code}, status)


async def _collector(request: Request) -> Response:
    try:
        presented = hec.parse_token(request.headers.get("authorization"))
    except SourceAuthError as exc:
        return _hec_error(401, str(exc), 2)
    token = services(request).credentials.authenticate(presented)
    if token is None:
        return _hec_error(401, "Invalid token", 4)
    if not token.allows("ingest"):
        return _hec_error(403, "this token lacks the 'ingest' scope", 4)
    name = next(iter(token.sources)) if len(token.sources) == 1 else "hec"
    try:
        body = await read_body(request, allowed=_HEC_TYPES)
        items = hec.split_events(body)
        receipts = await _append(request, lambda: hec.to_envelopes(items, name), len(body))
    except SourcePayloadError as exc:
        return _hec_error(400, str(exc), 6)
    except ApiError as exc:
        return _hec_error(exc.status, exc.message, 6)
    return json_response({"text": "Success", "code": 0, "receipts": receipts["receipts"]})


for _path in hec.COLLECTOR_PATHS:
    router.add_api_route(
        _path,
        _collector,
        methods=["POST"],
        summary="Splunk HEC compatible collector (Authorization: Splunk <token>)",
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": {}}}}},
    )


# --- sources authenticated with a sealtrail token ---------------------------------------------------


def _token_source(request: Request, fallback: str, path_source: str | None = None) -> str:
    """The source a bearer-token request writes: the path's, else the token's only source, else `fallback`."""
    token = authorize(request, "ingest")
    assert token is not None
    name = path_source or (next(iter(token.sources)) if len(token.sources) == 1 else fallback)
    if not token.allows_source(name):
        raise ApiError(403, f"this token may not write events of source {name!r}")
    return name


@router.post("/v1/cloudevents", summary="CloudEvents 1.0: structured, binary and batch modes", tags=["sources"])
async def cloudevents_route(request: Request) -> Response:
    name = _token_source(request, "cloudevents")
    body = await read_body(request, allowed=_ANY_TYPE)
    headers = dict(request.headers)
    return json_response(await _append(request, lambda: cloudevents.from_http(headers, body, name), len(body)))


@router.post("/otlp/v1/logs", summary="OTLP/HTTP logs (JSON encoding)", tags=["sources"], openapi_extra=_WEBHOOK_BODY)
async def otlp_logs(request: Request) -> Response:
    """Point an OpenTelemetry exporter here with OTEL_EXPORTER_OTLP_LOGS_PROTOCOL=http/json."""
    name = _token_source(request, "otlp")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-protobuf":
        raise ApiError(415, "OTLP/HTTP protobuf is not supported; set the exporter's protocol to http/json")
    body = await read_body(request, allowed=("application/json",))
    payload = _json_object(body)
    await _append(request, lambda: otlp.to_envelopes(payload, name), len(body))
    return json_response({})  # ExportLogsServiceResponse: everything accepted


@router.post("/hooks/kubernetes/{source}", summary="kube-apiserver audit webhook (audit.k8s.io/v1 EventList)")
async def kubernetes_audit(request: Request, source: str) -> Response:
    """Authenticate with the kubeconfig's bearer token (see sealtrail.sources.kubernetes)."""
    _configured(request, source, "kubernetes")
    name = _token_source(request, source, source)
    body = await read_body(request, allowed=("application/json",))
    payload = _json_object(body)
    return json_response(await _append(request, lambda: kubernetes.to_envelopes(payload, name), len(body)))


@router.post("/hooks/jenkins/{source}", summary="Jenkins Audit Trail (Elasticsearch output) and Notification plugin")
async def jenkins_hook(request: Request, source: str) -> Response:
    """Bearer token, or HTTP Basic with the source's secret as password (the Audit Trail ES output)."""
    configured = _configured(request, source, "jenkins")
    if request.headers.get("authorization", "").lower().startswith("basic "):
        _basic(request, configured)
    else:
        _token_source(request, source, source)
    body = await read_body(request, allowed=("application/json",))
    payload = _json_object(body)
    mapper = jenkins.notification_to_envelopes if "build" in payload else jenkins.audit_to_envelopes
    return json_response(await _append(request, lambda: mapper(payload, source), len(body)))


def _basic(request: Request, source: Source) -> None:
    header = request.headers.get("authorization", "")
    try:
        _, _, password = base64.b64decode(header.split(" ", 1)[1], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError, IndexError):
        raise ApiError(401, "malformed Basic authorization", {"WWW-Authenticate": "Basic"}) from None
    if not source.secret or not constant_time_equal(password, source.secret):
        raise ApiError(401, "wrong password for this source", {"WWW-Authenticate": "Basic"})


# --- GitLab: webhooks (X-Gitlab-Token or Standard Webhooks) and audit event streaming ------------------


@router.post("/hooks/gitlab/{source}", summary="GitLab webhooks and audit event streaming", openapi_extra=_WEBHOOK_BODY)
async def gitlab_hook(request: Request, source: str) -> Response:
    """X-Gitlab-Token, or Standard Webhooks signatures; X-Gitlab-Event-Streaming-Token for audit streaming."""
    configured = _configured(request, source, "gitlab")
    body = await read_body(request, allowed=("application/json",))
    secret = configured.secret or ""
    headers = request.headers
    try:
        if "x-gitlab-event-streaming-token" in headers:
            gitlab.verify_token(secret, headers.get("x-gitlab-event-streaming-token"))
        elif "webhook-signature" in headers:
            gitlab.verify_standard_webhook(secret, dict(headers), body, int(time.time()))
        else:
            gitlab.verify_token(secret, headers.get("x-gitlab-token"))
    except SourceAuthError as exc:
        raise ApiError(401, str(exc)) from None
    except ValueError as exc:
        raise ApiError(401, f"source {source!r} has no usable signing secret: {exc}") from None
    payload = _json_object(body)
    if "x-gitlab-event-streaming-token" in headers:
        return json_response(await _append(request, lambda: gitlab.audit_to_envelopes(payload, source), len(body)))
    event = _header(request, "X-Gitlab-Event")
    delivery = headers.get("idempotency-key") or headers.get("x-gitlab-event-uuid") or headers.get("webhook-id")
    return json_response(
        await _append(request, lambda: gitlab.to_envelopes(event, payload, source, delivery), len(body))
    )
