"""What every source adapter shares: its result type and its two kinds of failure."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from typing import Any

__all__ = [
    "MAX_LABEL",
    "Envelope",
    "SourceAuthError",
    "SourcePayloadError",
    "constant_time_equal",
    "delivery_key",
    "ip_or_none",
    "json_safe",
    "label",
]

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


MAX_LABEL = 1024
"""Envelope labels (ids, names, actions, deliveries) are at most this many characters."""
MAX_SAFE_INTEGER = 2**53 - 1


def label(value: Any, limit: int = MAX_LABEL) -> str | None:
    """A label from a string with some non-space text (cut to `limit`) or an integer; None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value[:limit]
    return None


def ip_or_none(value: Any) -> str | None:
    """`value` if it is an IPv4 or IPv6 address (actor.ip must be one), else None."""
    if not isinstance(value, str):
        return None
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return None
    return value


def delivery_key(key: str) -> str:
    """A delivery id within the label limit: a longer key is hashed, never cut (cut keys collide)."""
    return key if len(key) <= MAX_LABEL else "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def json_safe(value: Any) -> Any:
    """`value` with integers beyond ±(2**53 - 1) as strings, which RFC 8785 (the entry encoding) cannot hold."""
    if type(value) is int:
        return str(value) if abs(value) > MAX_SAFE_INTEGER else value
    if type(value) is dict:
        return {key: json_safe(item) for key, item in value.items()}
    if type(value) is list:
        return [json_safe(item) for item in value]
    return value
