"""What every exporter formats: one log entry with its position in the tree, and its severity.

A record carries the log index and the RFC 6962 leaf hash taken from the tree
(level-0 tile), so the SIEM copy of an event can be checked against the log:
fetch an inclusion proof for `index` and compare `leaf_hash`. A redacted
entry (its body removed, or no longer hashing to its leaf) is forwarded as a
record with `event` None, so the SIEM still sees every index.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import orjson

from ..envelope import value_at

__all__ = [
    "REDACTED_KIND",
    "ForwardRecord",
    "Severity",
    "decode_entry",
    "epoch_millis",
    "operation_of",
    "severity_of",
]

REDACTED_KIND = "sealtrail.redacted"
"""The kind exporters give a record whose entry body has been redacted."""

_LEVEL_WORDS = {
    "critical": 5,
    "very-high": 5,
    "high": 4,
    "medium": 3,
    "moderate": 3,
    "low": 2,
    "info": 1,
    "informational": 1,
}


class Severity(IntEnum):
    """OCSF severity_id values (Informational 1 … Critical 5), the scale every exporter maps from."""

    INFORMATIONAL = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def cef(self) -> int:
        """CEF severity 0–10 (0–3 Low, 4–6 Medium, 7–8 High, 9–10 Very-High)."""
        return {1: 1, 2: 3, 3: 5, 4: 8, 5: 10}[self.value]

    @property
    def syslog(self) -> int:
        """RFC 5424 §6.2.1 severity: 6 informational, 5 notice, 4 warning, 3 error, 2 critical."""
        return {1: 6, 2: 5, 3: 4, 4: 3, 5: 2}[self.value]

    @property
    def label(self) -> str:
        return self.name.capitalize()


@dataclass(frozen=True, slots=True)
class ForwardRecord:
    """One log entry as the forwarder reads it: index, leaf hash from the tree, and the envelope."""

    index: int
    leaf_hash: bytes
    origin: str
    event: Mapping[str, Any] | None
    """The decoded envelope (DESIGN.md §3), or None when the entry is redacted."""
    redaction: Mapping[str, Any] | None = None
    """For a redacted entry, what the log says of it: {id, reason, record_index} (docs/retention.md)."""

    @property
    def leaf_hex(self) -> str:
        return self.leaf_hash.hex()

    @property
    def redacted(self) -> bool:
        return self.event is None

    def get(self, *path: str) -> Any:
        """A nested envelope field (record.get("actor", "ip")), or None."""
        return value_at(self.event, *path)

    def text(self, *path: str) -> str | None:
        """A nested envelope field if it is a non-empty string."""
        value = self.get(*path)
        return value if isinstance(value, str) and value else None

    @property
    def kind(self) -> str:
        return self.text("kind") or REDACTED_KIND


def decode_entry(entry: bytes) -> Mapping[str, Any] | None:
    """The envelope in an entry's bytes, or None if they are not a JSON object (a redaction marker)."""
    try:
        value = orjson.loads(entry)
    except orjson.JSONDecodeError:
        try:
            value = json.loads(entry)  # integers beyond 64 bits
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def epoch_millis(text: str | None) -> int | None:
    """RFC 3339 text as milliseconds since the Unix epoch, or None."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def severity_of(record: ForwardRecord) -> Severity:
    """How much a SIEM analyst should care: findings high, failures and access changes low, the rest info.

    A finding whose attrs name a severity (low/medium/high/critical) keeps it.
    """
    if record.redacted:
        return Severity.LOW
    kind = record.kind
    stated = record.get("attrs", "severity")
    if isinstance(stated, str) and stated.lower() in _LEVEL_WORDS and kind.endswith(".alert"):
        return Severity(_LEVEL_WORDS[stated.lower()])
    if kind == "secret.alert":
        return Severity.HIGH
    if kind.endswith(".alert"):
        return Severity.MEDIUM
    if kind == "auth.failure":
        return Severity.MEDIUM if record.text("actor", "name") in ("root", "admin", "administrator") else Severity.LOW
    if kind == "access.change" or record.text("outcome") == "failure":
        return Severity.LOW
    return Severity.INFORMATIONAL


_VERBS = {
    "create": ("create", "created", "add", "added", "post", "invite", "invited", "grant", "granted", "new", "install",
               "installed", "register", "registered", "attach", "assign", "assigned", "submit", "submitted", "opened",
               "open", "start", "started"),
    "delete": ("delete", "deleted", "remove", "removed", "destroy", "destroyed", "revoke", "revoked", "uninstall",
               "detach", "unassign", "deletecollection"),
    "read": ("get", "list", "watch", "read", "view", "fetch", "download", "clone", "access", "accessed", "export"),
    "update": ("update", "updated", "patch", "edit", "edited", "change", "changed", "modify", "modified", "rename",
               "renamed", "set", "push", "sync", "merge", "merged", "replace", "put", "rotate", "rotated", "transfer",
               "transferred", "reopen", "reopened", "enable", "enabled", "disable", "disabled"),
}  # fmt: skip
_VERB_OF = {word: operation for operation, words in _VERBS.items() for word in words}


def operation_of(action: str | None) -> str:
    """The CRUD operation an action names ("create", "read", "update", "delete"), else "other".

    The first word of the action (split on . _ - / : and spaces) that is a known verb decides:
    `create rolebindings` → create, `org.remove_member` → delete, `secret.read` → read.
    """
    if not action:
        return "other"
    for word in action.lower().replace(".", " ").replace("_", " ").replace("-", " ").replace("/", " ").split():
        operation = _VERB_OF.get(word.strip(":"))
        if operation is not None:
            return operation
    return "other"
