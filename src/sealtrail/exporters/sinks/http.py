"""HTTP plumbing the HTTP sinks share: one client per sink, and what a response status means.

2xx: acknowledged. 408, 429 and 5xx: retry later (Retry-After honoured).
400, 413, 415, 422: the receiver refuses what the body holds (PermanentError).
Any other status (401, 403, 404, …) is a configuration problem: retried with
backoff, so fixing the credentials or the index resumes delivery with no loss.
Error texts quote at most 300 characters of the response, never a request header.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import httpx

from ..record import ForwardRecord
from .base import DeliveryError, PermanentError

__all__ = ["check_response", "make_client", "post"]

_REFUSED = frozenset({400, 413, 415, 422})


def make_client(*, verify: bool | str, timeout: float, headers: Mapping[str, str]) -> httpx.Client:
    """A client with these default headers; `verify` is True, False or a CA bundle path."""
    return httpx.Client(verify=verify, timeout=timeout, headers=dict(headers), follow_redirects=False)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


def _excerpt(response: httpx.Response) -> str:
    text = " ".join(response.text[:300].split())
    return f": {text}" if text else ""


def check_response(response: httpx.Response, what: str, records: Sequence[ForwardRecord]) -> None:
    """Return if the response acknowledges the request; raise PermanentError or DeliveryError otherwise."""
    status = response.status_code
    if 200 <= status < 300:
        return
    message = f"{what}: HTTP {status}{_excerpt(response)}"
    if status in _REFUSED:
        raise PermanentError(message)
    raise DeliveryError(message, records, retry_after=_retry_after(response))


def post(
    client: httpx.Client,
    url: str,
    body: bytes,
    what: str,
    records: Sequence[ForwardRecord],
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST; a transport failure (refused, reset, timeout, TLS) is a DeliveryError for all `records`."""
    try:
        return client.post(url, content=body, headers=dict(headers or {}), params=dict(params or {}))
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{what}: {type(exc).__name__}: {exc}", records) from None
