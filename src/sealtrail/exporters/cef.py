"""Envelope → ArcSight Common Event Format (CEF:0), per the CEF Implementation Standard.

    CEF:0|sealtrail|sealtrail|<version>|<signature id>|<name>|<severity>|<extension>

Escaping differs between the two parts (spec, "Character encoding"):
- header fields: backslash → `\\\\`, pipe → `\\|`; newlines are not allowed in the
  header, so CR and LF become a space; `=` needs no escape;
- extension values: backslash → `\\\\`, equals → `\\=`, LF → `\\n`, CR → `\\r`;
  pipes need no escape there. Keys are from the CEF key dictionary (alphanumeric).

Signature id = the envelope kind, name = the action (else the kind), severity
0–10. Extension: rt (ms since epoch), externalId (event id), cat (kind), act,
outcome, suser/suid, src (IPv4) or c6a2 (IPv6, "Source IPv6 Address"), duser,
dhost, and the log position: cn1 = log index ("logIndex"), cs1 = leaf hash
hex ("leafHash"), cs2 = origin ("logOrigin"), cs3 = source type/id, cs4 =
target, cs5 = env.
"""

from __future__ import annotations

import ipaddress
import re

from .. import __version__
from .record import REDACTED_KIND, ForwardRecord, epoch_millis, severity_of

__all__ = ["escape_extension", "escape_header", "to_cef"]

_KEY = re.compile(r"[A-Za-z0-9]+")
_USER_TARGETS = frozenset({"user", "member", "account", "collaborator"})
_HOST_TARGETS = frozenset({"host", "node", "machine", "server", "vm"})
_MAX_VALUE = 1023
"""Most CEF string fields are bounded (e.g. suser 1023); longer values are cut."""


def escape_header(value: str) -> str:
    """A CEF header field: `\\` and `|` escaped with a backslash; CR/LF (not allowed there) as spaces."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ").replace("\r", " ").replace("\n", " ")


def escape_extension(value: str) -> str:
    """A CEF extension value: `\\`, `=` escaped with a backslash; LF as `\\n`, CR as `\\r`."""
    return value.replace("\\", "\\\\").replace("=", "\\=").replace("\r", "\\r").replace("\n", "\\n")


def _extension(pairs: list[tuple[str, str | int | None]]) -> str:
    parts = []
    for key, value in pairs:
        if value is None or value == "":
            continue
        if not _KEY.fullmatch(key):
            raise ValueError(f"CEF extension key {key!r} is not alphanumeric")
        text = str(value)[:_MAX_VALUE]
        parts.append(f"{key}={escape_extension(text)}")
    return " ".join(parts)


def _source_address(ip: str | None) -> list[tuple[str, str | int | None]]:
    if not ip:
        return []
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return []
    if address.version == 4:
        return [("src", ip)]
    return [("c6a2", ip), ("c6a2Label", "Source IPv6 Address")]


def to_cef(record: ForwardRecord, *, product_version: str = __version__) -> str:
    """One CEF line (no trailing newline) for one record."""
    kind = record.kind
    action = record.text("action")
    severity = severity_of(record)
    header = [
        "sealtrail",
        "sealtrail",
        product_version,
        kind,
        (action or kind) if not record.redacted else f"log entry {record.index} redacted",
        str(severity.cef),
    ]
    position: list[tuple[str, str | int | None]] = [
        ("cn1", record.index),
        ("cn1Label", "logIndex"),
        ("cs1", record.leaf_hex),
        ("cs1Label", "leafHash"),
        ("cs2", record.origin),
        ("cs2Label", "logOrigin"),
    ]
    pairs: list[tuple[str, str | int | None]]
    if record.redacted:
        noted = record.redaction or {}
        pairs = [("externalId", noted.get("id")), ("cat", REDACTED_KIND), ("reason", noted.get("reason")), *position]
    else:
        target_type = (record.text("target", "type") or "").lower()
        target = record.text("target", "id") or record.text("target", "name")
        source = "/".join(part for part in (record.text("source", "type"), record.text("source", "id")) if part)
        pairs = [
            ("rt", epoch_millis(record.text("time"))),
            ("externalId", record.text("id")),
            ("cat", kind),
            ("act", action),
            ("outcome", record.text("outcome")),
            ("suser", record.text("actor", "name")),
            ("suid", record.text("actor", "id")),
            *_source_address(record.text("actor", "ip")),
            ("duser", target if target_type in _USER_TARGETS else None),
            ("dhost", target if target_type in _HOST_TARGETS else None),
            *position,
            ("cs3", source),
            ("cs3Label", "source" if source else None),
            ("cs4", f"{target_type}:{target}" if target_type and target else target),
            ("cs4Label", "target" if target else None),
            ("cs5", record.text("env")),
            ("cs5Label", "env" if record.text("env") else None),
        ]
    return "CEF:0|" + "|".join(escape_header(field) for field in header) + "|" + _extension(pairs)
