"""Reading a decoded event envelope (DESIGN.md §3) whatever its sources put in it.

Pure: no I/O, and imports nothing from sealtrail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["value_at"]


def value_at(envelope: object, *path: str) -> Any:
    """The value at `path` (value_at(event, "attrs", "approved")): None where a key is missing or a step
    is not a JSON object."""
    value: Any = envelope
    for key in path:
        if type(value) is not dict and not isinstance(value, Mapping):  # decoded JSON: a dict, checked at once
            return None
        value = value.get(key)
    return value
