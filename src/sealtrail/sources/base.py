"""What every source adapter shares: its result type and its two kinds of failure."""

from __future__ import annotations

import hmac
from typing import Any

__all__ = ["Envelope", "SourceAuthError", "SourcePayloadError", "constant_time_equal"]

Envelope = dict[str, Any]
"""An event envelope as DESIGN.md §3 describes it, before sealtrail.event.prepare completes it."""


class SourceAuthError(Exception):
    """The request is not authentic (bad or missing signature, token or secret): HTTP 401."""


class SourcePayloadError(ValueError):
    """The payload is malformed or not what the source sends: HTTP 400 with this message."""


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking where they differ."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)
