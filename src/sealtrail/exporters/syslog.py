"""RFC 5424 syslog messages carrying a CEF payload, framed by octet counting (RFC 6587 §3.4.1, RFC 5425 §4.3).

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ID index="N" leafHash="…" origin="…"] CEF:0|…

PRI = facility × 8 + severity (facility 13, "log audit", by default); TIMESTAMP
= when the event happened (RFC 3339, UTC, microseconds); MSGID = the envelope
kind (at most 32 printable characters); the structured-data element names
the record's place in the log. SD-ID must carry your IANA Private Enterprise
Number after the `@` (RFC 5424 §7.2.2); the default uses 32473, the number
RFC 5612 reserves for documentation. MSG is sent without a BOM (RFC 5424
MSG-ANY) because CEF consumers expect `CEF:` first.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .cef import to_cef
from .record import ForwardRecord, severity_of

__all__ = ["DEFAULT_SD_ID", "SyslogFormat", "frame", "sd_param_value"]

DEFAULT_SD_ID = "sealtrail@32473"
_PRINTUSASCII = re.compile(r"[\x21-\x7e]+")
_SD_NAME = re.compile(r"[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}")
_NOT_PRINTABLE = re.compile(r"[^\x21-\x7e]")


def sd_param_value(value: str) -> str:
    """RFC 5424 §6.3.3 PARAM-VALUE: `"`, `\\` and `]` escaped with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str | None, limit: int) -> str:
    """A HEADER field: 1*limit PRINTUSASCII, or the NILVALUE `-`."""
    if not value:
        return "-"
    text = _NOT_PRINTABLE.sub("_", value)[:limit]
    return text or "-"


def frame(message: bytes) -> bytes:
    """Octet-counting framing: MSG-LEN SP SYSLOG-MSG (RFC 6587 §3.4.1, RFC 5425 §4.3)."""
    return str(len(message)).encode("ascii") + b" " + message


@dataclass(frozen=True)
class SyslogFormat:
    """How records become RFC 5424 messages."""

    hostname: str = field(default_factory=socket.getfqdn)
    app_name: str = "sealtrail"
    facility: int = 13
    sd_id: str = DEFAULT_SD_ID
    procid: str = field(default_factory=lambda: str(os.getpid()))

    def __post_init__(self) -> None:
        if not 0 <= self.facility <= 23:
            raise ValueError(f"syslog facility must be 0..23, not {self.facility}")
        if not _SD_NAME.fullmatch(self.sd_id):
            raise ValueError(f"syslog sd_id {self.sd_id!r}: 1 to 32 printable characters other than '= ]\"'")
        if not _PRINTUSASCII.fullmatch(self.app_name) or len(self.app_name) > 48:
            raise ValueError(f"syslog app_name {self.app_name!r}: 1 to 48 printable ASCII characters")

    def message(self, record: ForwardRecord) -> bytes:
        """One SYSLOG-MSG (unframed) for one record."""
        pri = self.facility * 8 + severity_of(record).syslog
        timestamp = record.text("time") if not record.redacted else None
        if timestamp is None:
            timestamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        params = [("index", str(record.index)), ("leafHash", record.leaf_hex), ("origin", record.origin)]
        event_id = record.text("id")
        if event_id:
            params.append(("eventId", event_id))
        structured = f"[{self.sd_id}" + "".join(f' {name}="{sd_param_value(value)}"' for name, value in params) + "]"
        header = " ".join(
            (
                f"<{pri}>1",
                timestamp,
                _header_field(self.hostname, 255),
                _header_field(self.app_name, 48),
                _header_field(self.procid, 128),
                _header_field(record.kind, 32),
            )
        )
        return f"{header} {structured} {to_cef(record)}".encode()
