"""Every refusal is a 4xx with a one-line JSON message, {"error": "..."}; nothing is written."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..store.base import RedactedError, Redaction

__all__ = ["ApiError", "gone", "install_handlers", "json_response"]


class ApiError(Exception):
    """A request refused with `status` and a message that says what to do."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def json_response(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


def gone(redaction: Redaction) -> Response:
    """410 Gone for a redacted entry: the body was removed on the record; its leaf hash and proofs remain."""
    return json_response({"error": str(RedactedError(redaction)), "redaction": redaction.to_json()}, 410)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return json_response({"error": exc.message}, exc.status, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return json_response({"error": str(exc.detail)}, exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
        return json_response({"error": f"{where or 'request'}: {first.get('msg', 'invalid')}"}, 400)
