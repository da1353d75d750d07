"""Submitting a checkpoint to one c2sp.org/tlog-witness witness.

`WitnessClient.add_checkpoint` returns the signature lines of a 200 (not yet
verified: the caller keeps only those its witness key verifies), or raises:
WitnessConflict with the witness's size (409 text/x.tlog.size: resend from it),
WitnessRefused with the status (any other 4xx, including a 409 without a size,
which the spec uses for the same size with another root), or WitnessUnavailable
(connection errors, timeouts, 5xx, a malformed answer).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from ..note import Signature
from .protocol import (
    ADD_CHECKPOINT,
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    AddCheckpointRequest,
    ProtocolError,
    parse_signature_lines,
    parse_size,
)

__all__ = [
    "WitnessClient",
    "WitnessConflict",
    "WitnessError",
    "WitnessRefused",
    "WitnessUnavailable",
    "submission_url",
]


class WitnessError(Exception):
    """A witness did not cosign; the message says why."""


class WitnessConflict(WitnessError):
    """409 with text/x.tlog.size: the witness's latest cosigned size is `size`."""

    def __init__(self, size: int) -> None:
        super().__init__(f"the witness's latest cosigned size is {size}")
        self.size = size


class WitnessRefused(WitnessError):
    """The witness refused the checkpoint with a 4xx `status` (404, 403, 400, 409 without a size, 422, ...)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"refused with {status}: {reason}" if reason else f"refused with {status}")
        self.status = status
        self.reason = reason


class WitnessUnavailable(WitnessError):
    """The witness could not be reached, timed out, failed (5xx) or answered something unreadable."""


def submission_url(prefix: str) -> str:
    """The add-checkpoint URL under a witness's submission prefix (a full add-checkpoint URL is kept)."""
    prefix = prefix.rstrip("/")
    return prefix if prefix.endswith(ADD_CHECKPOINT) else prefix + ADD_CHECKPOINT


class WitnessClient:
    """One witness, over one keep-alive HTTP connection pool."""

    def __init__(self, url: str, *, timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = submission_url(url)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> WitnessClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_checkpoint(self, old_size: int, proof: Sequence[bytes], checkpoint: bytes) -> Sequence[Signature]:
        """POST add-checkpoint; the signature lines of the witness's 200 answer."""
        body = AddCheckpointRequest(old_size, tuple(proof), checkpoint).encode()
        try:
            with self._http.stream("POST", self.url, content=body, headers={"Content-Type": "text/plain"}) as reply:
                answer = _read_capped(reply)
                status = reply.status_code
                content_type = reply.headers.get("content-type", "")
        except httpx.TimeoutException as exc:
            raise WitnessUnavailable(f"{self.url}: timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise WitnessUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if status == 200:
            try:
                return parse_signature_lines(answer)
            except ProtocolError as exc:
                raise WitnessUnavailable(f"{self.url}: 200 with a malformed body: {exc}") from None
        reason = answer.decode("utf-8", errors="replace").strip()[:300]
        if status == 409 and content_type.split(";")[0].strip().lower() == SIZE_CONTENT_TYPE:
            try:
                raise WitnessConflict(parse_size(answer))
            except ProtocolError as exc:
                raise WitnessUnavailable(f"{self.url}: 409 with a malformed size: {exc}") from None
        if 400 <= status < 500:
            raise WitnessRefused(status, reason)
        raise WitnessUnavailable(f"{self.url}: HTTP {status}: {reason}" if reason else f"{self.url}: HTTP {status}")


def _read_capped(reply: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    total = 0
    for chunk in reply.iter_bytes():
        total += len(chunk)
        if total > MAX_BODY_BYTES:
            raise httpx.DecodingError(f"answer larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
