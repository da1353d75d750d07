"""Syslog: framing (RFC 6587), parsing (RFC 5424, RFC 3164) and mapping to event envelopes.

Pure: no sockets, no I/O. The TCP/TLS receiver feeds the bytes it reads to a
`FrameDecoder`, parses each frame with `parse_message` and turns the message
into envelopes with `to_envelopes`.

Framing (RFC 6587 §3.4), chosen per frame: a frame that starts with a digit
run and a space is octet-counted ("<len> <msg>", the only framing of RFC 5425
TLS); anything else is a line ended by LF, CRLF or NUL. A frame longer than
`max_size` raises `FramingError` (a `SourcePayloadError`) carrying the frames
decoded around it; the decoder skips the oversized frame and stays usable.

Parsing: `<PRI>1 ...` is RFC 5424 (header, structured data with its escapes,
NILVALUE "-", BOM); anything else is RFC 3164 ("<PRI>Mmm dd hh:mm:ss host
tag[pid]: msg"), with or without PRI (RFC 3164 §4.3.3: PRI 13), with or
without hostname (local senders omit it) and with the RFC 3339 timestamp
rsyslog forwards in place of the BSD one. A BSD timestamp has no year and no
zone: it is read as UTC, in the latest year that does not put it more than a
day after its receipt (so Dec 31 received on Jan 1 is last year's).

Mapping: authentication lines become `auth.failure` / `auth.success` with
actor {name: user, ip: peer address}, target the host and a stable action:

* sshd (also `sshd-session` / `sshd-auth` of OpenSSH ≥ 9.8): "Failed <method>
  for [invalid user] X from IP port N ssh2" (sshd.failed_password, ...),
  "Accepted <method> for X from IP" (auth.success), "Invalid user X from IP",
  "User X from IP not allowed because ...", "ROOT LOGIN REFUSED FROM IP",
  "PAM: Authentication failure for X from IP", "maximum authentication
  attempts exceeded", "Disconnecting: Too many authentication failures",
  tcp_wrappers' "refused connect", and connections dropped before
  authentication completed ("Connection closed by [authenticating user X] IP
  port N [preauth]", "Did not receive identification string", "Unable to
  negotiate", ...);
* pam_unix from any program: "authentication failure; ... rhost=IP user=X";
* auditd (audisp-syslog, audit.log relayed, or the kernel's numeric form):
  USER_LOGIN / USER_AUTH with res=failed|success, and USER_ERR; their time is
  the audit record's own (msg=audit(<epoch>...)).

Each line is judged alone: what fail2ban infers across lines (an IP known
only from an earlier line of the same connection) is out of reach, and every
failed attempt is recorded, even one later followed by a success. Where a
user name can itself contain " from <ip> port <n>" (sshd logs it verbatim),
the address is the first that the rest of the line fits after, as fail2ban
reads it (_first_from says what that does and does not rule out). Lines
that merely look like sshd's or auditd's (a program named sshd, a message
holding "type=USER_LOGIN") are taken at their word, as syslog cannot tell:
attrs.program and raw show where each came from. Every other message
becomes kind `syslog.message` with the program as action. attrs hold
facility, severity, program, pid, port and the like; raw is the original
line text.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ..event import MAX_LABEL, format_time
from .base import Envelope, SourcePayloadError

__all__ = [
    "DEFAULT_MAX_FRAME",
    "FACILITIES",
    "SEVERITIES",
    "FrameDecoder",
    "FramingError",
    "StructuredData",
    "SyslogMessage",
    "parse_message",
    "to_envelopes",
]

DEFAULT_MAX_FRAME = 64 * 1024
"""Largest frame accepted by default (RFC 5425 §4.3.1 asks receivers for at least 2,048 octets)."""

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp",
    "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
    "local7",
)  # fmt: skip
"""Facility names by code (RFC 5424 §6.2.1)."""

SEVERITIES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
"""Severity names by code (RFC 5424 §6.2.1)."""

StructuredData = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
"""RFC 5424 STRUCTURED-DATA in order: (SD-ID, ((PARAM-NAME, value), ...)) per element."""


# --- framing (RFC 6587) ------------------------------------------------------------

_MAX_COUNT_DIGITS = 10
_STRAY = frozenset(b"\n\r\x00")


class FramingError(SourcePayloadError):
    """A frame was over the size limit (or cut short at the end of the stream).

    `frames` holds the good frames decoded in the same call, before and after
    the bad one: handle them as usual. The decoder has skipped the bad frame.
    """

    def __init__(self, message: str, frames: list[bytes]) -> None:
        super().__init__(message)
        self.frames = frames


class FrameDecoder:
    """Splits a syslog byte stream into frames (RFC 6587 §3.4), framing detected per frame.

    Octet counting (§3.4.1) when a frame starts with a non-zero digit run
    followed by a space; otherwise non-transparent framing (§3.4.2) with LF,
    CRLF or NUL as the trailer. Empty lines are ignored.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_FRAME) -> None:
        if max_size < 1:
            raise ValueError("max_size must be positive")
        self.max_size = max_size
        self._buffer = bytearray()
        self._skip = 0  # octets still to drop of an oversized octet-counted frame
        self._discarding = False  # dropping an oversized line up to its trailer

    def feed(self, data: bytes) -> list[bytes]:
        """The frames completed by `data`; FramingError (with `.frames`) if one was oversized."""
        self._buffer += data
        frames: list[bytes] = []
        errors: list[str] = []
        self._decode(frames, errors)
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise FramingError(errors[0] + more, frames)
        return frames

    def finish(self) -> list[bytes]:
        """At the end of the stream: the last line if it had no trailer; FramingError if a frame was cut short."""
        buffer = bytes(self._buffer)
        discarding, self._buffer, self._skip, self._discarding = self._discarding, bytearray(), 0, False
        data = buffer.lstrip(b"\n\r\x00")
        if not data or discarding:
            return []
        header = re.match(rb"([1-9]\d{0,9}) ", data)
        if header is not None:
            raise FramingError(
                f"stream ended {len(data) - header.end()} octets into a frame of {header[1].decode()} octets", []
            )
        if len(data) > self.max_size:
            raise FramingError(self._too_long(len(data)), [])
        return [data]

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of their frame."""
        return len(self._buffer)

    def _too_long(self, size: int) -> str:
        return f"syslog frame of {size} octets is over the {self.max_size}-octet limit; skipped"

    def _decode(self, frames: list[bytes], errors: list[str]) -> None:
        buf = self._buffer
        n = len(buf)
        pos = 0
        while True:
            if self._skip:
                take = min(self._skip, n - pos)
                pos += take
                self._skip -= take
                if self._skip:
                    break
            if self._discarding:
                end = _trailer(buf, pos)
                if end < 0:
                    pos = n
                    break
                pos = end + 1
                self._discarding = False
            while pos < n and buf[pos] in _STRAY:
                pos += 1
            if pos >= n:
                break
            if 0x31 <= buf[pos] <= 0x39:  # octet counting?
                digits = pos
                while digits < n and digits - pos <= _MAX_COUNT_DIGITS and 0x30 <= buf[digits] <= 0x39:
                    digits += 1
                if digits == n:
                    break  # the count (or the line) goes on in the next chunk
                if buf[digits] == 0x20 and digits - pos <= _MAX_COUNT_DIGITS:
                    count = int(buf[pos:digits])
                    start = digits + 1
                    if count > self.max_size:
                        errors.append(self._too_long(count))
                        self._skip = count
                        pos = start
                        continue
                    if n - start < count:
                        break
                    frames.append(bytes(buf[start : start + count]))
                    pos = start + count
                    continue
            end = _trailer(buf, pos)
            if end < 0:
                if n - pos > self.max_size + 1:  # +1: a CR may precede the LF still to come
                    errors.append(self._too_long(n - pos))
                    self._discarding = True
                    pos = n
                break
            line_end = end - 1 if end > pos and buf[end - 1] == 0x0D else end
            if line_end - pos > self.max_size:
                errors.append(self._too_long(line_end - pos))
            elif line_end > pos:
                frames.append(bytes(buf[pos:line_end]))
            pos = end + 1
        del buf[:pos]


def _trailer(buf: bytearray, start: int) -> int:
    """Index of the first LF or NUL at or after start, or -1."""
    lf = buf.find(b"\n", start)
    nul = buf.find(b"\x00", start, lf if lf >= 0 else len(buf))
    return nul if nul >= 0 else lf


# --- parsing (RFC 5424, RFC 3164) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One parsed syslog message; NILVALUE ("-") fields are None."""

    facility: int
    severity: int
    timestamp: str | None
    """RFC 3339: as sent (RFC 5424), or built from a BSD timestamp read as UTC."""
    hostname: str | None
    app_name: str | None
    procid: str | None
    msgid: str | None
    structured_data: StructuredData
    message: str
    syntax: Literal["rfc5424", "rfc3164"] = "rfc3164"
    raw: str = field(default="", compare=False)
    """The whole frame as text (UTF-8; undecodable octets as backslash escapes)."""


_PRI = re.compile(rb"<(\d{1,3})>")
_VERSION = re.compile(rb"([1-9]\d{0,2}) ")
_PRINTUSASCII = re.compile(rb"[\x21-\x7e]+")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")
_SD_NAME = re.compile(rb"[\x21\x23-\x3c\x3e-\x5c\x5e-\x7e]{1,32}")
_SD_VALUE = re.compile(rb'((?:[^"\\]|\\.)*)"', re.DOTALL)
_SD_ESCAPE = re.compile(rb'\\(["\\\]])')
_BOM = b"\xef\xbb\xbf"
_HEADER_FIELDS = (("TIMESTAMP", 64), ("HOSTNAME", 255), ("APP-NAME", 48), ("PROCID", 128), ("MSGID", 32))
_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}
_BSD_TIME = re.compile(rf"({'|'.join(_MONTH_NAMES)}) +(\d{{1,2}}) (\d\d):(\d\d):(\d\d)(?: |$)")
_ISO_TIME = re.compile(r"(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d{1,9})?(?:[Zz]|[+-]\d\d:\d\d))(?: |$)")
_HOSTNAME = re.compile(r"[A-Za-z0-9_.:%-]{1,255}")
_TAG = re.compile(
    r"(?:(?P<a>[^\s\[\]:]{1,64})(?:\[(?P<p>[^\s\]]{0,128})\])?:"
    r"|(?P<b>[^\s\[\]:]{1,64})\[(?P<q>[^\s\]]{0,128})\]"
    r"|\[(?P<c>[^\s\[\]:]{1,64})\]:?)(?: |$)"
)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "backslashreplace")


def _msg_text(data: bytes) -> str:
    """MSG (RFC 5424 §6.4): UTF-8 after an optional BOM; a trailing line ending is not part of it."""
    data = data.rstrip(b"\r\n\x00")
    return _text(data[len(_BOM) :] if data.startswith(_BOM) else data)


def parse_message(frame: bytes, received_year: int | None = None, *, received: datetime | None = None) -> SyslogMessage:
    """Parse one frame as RFC 5424 or RFC 3164; SourcePayloadError if it is malformed.

    A BSD timestamp takes its year from `received` (the moment of receipt:
    the latest year that does not put the message more than a day later),
    else `received_year` as is, else the current time as `received`.
    """
    if not frame.strip(b" \t\r\n\x00"):
        raise SourcePayloadError("empty syslog message")
    if frame[:1] != b"<":
        return _parse_3164(13, frame, frame, has_pri=False, year=received_year, received=received)
    pri = _PRI.match(frame)
    if pri is None or int(pri[1]) > 191:
        raise SourcePayloadError("syslog PRI must be <0> to <191> (RFC 5424 §6.2.1)")
    prival = int(pri[1])
    rest = frame[pri.end() :]
    version = _VERSION.match(rest)
    if version is None:
        return _parse_3164(prival, rest, frame, has_pri=True, year=received_year, received=received)
    if version[1] != b"1":
        raise SourcePayloadError(f"syslog VERSION {version[1].decode()} is not supported (RFC 5424 is VERSION 1)")
    return _parse_5424(prival, rest[version.end() :], frame)


def _parse_5424(prival: int, data: bytes, frame: bytes) -> SyslogMessage:
    values: list[str | None] = []
    pos = 0
    for name, limit in _HEADER_FIELDS:
        end = data.find(b" ", pos)
        if end < 0:
            raise SourcePayloadError(f"RFC 5424: the header ends before {name}")
        token = data[pos:end]
        if not _PRINTUSASCII.fullmatch(token) or len(token) > limit:
            raise SourcePayloadError(f"RFC 5424: {name} must be 1 to {limit} printable US-ASCII characters")
        text = token.decode("ascii")
        values.append(None if text == "-" else text)
        pos = end + 1
    timestamp = values[0]
    if timestamp is not None and not _valid_rfc3339(timestamp):
        raise SourcePayloadError(f"RFC 5424: TIMESTAMP {timestamp!r} is not an RFC 3339 date-time")
    structured, pos = _structured_data(data, pos)
    if pos < len(data) and data[pos] != 0x20:
        raise SourcePayloadError("RFC 5424: STRUCTURED-DATA must be followed by a space and MSG")
    return SyslogMessage(
        facility=prival >> 3,
        severity=prival & 7,
        timestamp=timestamp,
        hostname=values[1],
        app_name=values[2],
        procid=values[3],
        msgid=values[4],
        structured_data=structured,
        message=_msg_text(data[pos + 1 :]),
        syntax="rfc5424",
        raw=_msg_text(frame),
    )


def _valid_rfc3339(value: str) -> bool:
    if not _RFC3339.fullmatch(value):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _structured_data(data: bytes, pos: int) -> tuple[StructuredData, int]:
    """STRUCTURED-DATA (RFC 5424 §6.3) from pos: the elements and the position after them."""
    if data[pos : pos + 1] == b"-":
        return (), pos + 1
    if data[pos : pos + 1] != b"[":
        raise SourcePayloadError("RFC 5424: STRUCTURED-DATA must be '-' or start with '['")
    elements: list[tuple[str, tuple[tuple[str, str], ...]]] = []
    n = len(data)
    while pos < n and data[pos] == 0x5B:
        sd_id = _SD_NAME.match(data, pos + 1)
        if sd_id is None:
            raise SourcePayloadError("RFC 5424: SD-ID must be 1 to 32 printable characters other than '= ]\"'")
        pos = sd_id.end()
        params: list[tuple[str, str]] = []
        while True:
            if pos >= n:
                raise SourcePayloadError(f"RFC 5424: SD-ELEMENT [{sd_id[0].decode()} is not closed by ']'")
            if data[pos] == 0x5D:
                pos += 1
                break
            name = _SD_NAME.match(data, pos + 1) if data[pos] == 0x20 else None
            if name is None or data[name.end() : name.end() + 2] != b'="':
                raise SourcePayloadError(f'RFC 5424: expected PARAM-NAME="value" in [{sd_id[0].decode()}')
            value = _SD_VALUE.match(data, name.end() + 2)
            if value is None:
                raise SourcePayloadError(f"RFC 5424: PARAM-VALUE of {name[0].decode()} is not closed by '\"'")
            params.append((name[0].decode("ascii"), _text(_SD_ESCAPE.sub(rb"\1", value[1]))))
            pos = value.end()
        elements.append((sd_id[0].decode("ascii"), tuple(params)))
    return tuple(elements), pos


def _parse_3164(
    prival: int, data: bytes, frame: bytes, *, has_pri: bool, year: int | None, received: datetime | None
) -> SyslogMessage:
    text = _msg_text(data)
    timestamp: str | None = None
    hostname: str | None = None
    bsd = _BSD_TIME.match(text)
    iso = None if bsd else _ISO_TIME.match(text)
    if bsd is not None:
        timestamp = _bsd_timestamp(bsd, year, received)
        text = text[bsd.end() :]
    elif iso is not None:
        timestamp = iso[1].upper()
        try:
            datetime.fromisoformat(timestamp)
        except ValueError:
            raise SourcePayloadError(f"invalid timestamp {iso[1]!r}") from None
        text = text[iso.end() :]
    elif not has_pri:
        raise SourcePayloadError("not a syslog message: neither <PRI> nor a timestamp at the start (RFC 3164 §4.1)")
    if timestamp is not None:
        token, _, rest = text.partition(" ")
        if _HOSTNAME.fullmatch(token) and not _TAG.match(text):
            hostname, text = token, rest
    app_name = procid = None
    tag = _TAG.match(text)
    if tag is not None:
        app_name = tag["a"] or tag["b"] or tag["c"]
        procid = tag["p"] if tag["a"] else tag["q"]
        text = text[tag.end() :]
    return SyslogMessage(
        facility=prival >> 3,
        severity=prival & 7,
        timestamp=timestamp,
        hostname=hostname,
        app_name=app_name,
        procid=procid or None,
        msgid=None,
        structured_data=(),
        message=text,
        syntax="rfc3164",
        raw=_msg_text(frame),
    )


def _bsd_timestamp(match: re.Match[str], year: int | None, received: datetime | None) -> str:
    """RFC 3164 §4.1.2 "Mmm dd hh:mm:ss", read as UTC in the year of receipt."""
    month, day = _MONTHS[match[1]], int(match[2])
    clock = int(match[3]), int(match[4]), int(match[5])

    def at(year: int) -> datetime | None:
        try:
            return datetime(year, month, day, *clock, tzinfo=UTC)
        except ValueError:
            return None

    if received is None and year is not None:
        moment = at(year)
    else:
        now = (received or datetime.now(UTC)).astimezone(UTC)
        latest = now + timedelta(days=1)  # the latest year that does not put it more than a day after receipt
        candidates = (at(now.year + 1), at(now.year), at(now.year - 1))
        moment = next((m for m in candidates if m is not None and m <= latest), None)
    if moment is None:
        raise SourcePayloadError(f"invalid date in timestamp {match[0].strip()!r}")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- mapping to envelopes ------------------------------------------------------------


@dataclass(slots=True)
class _Auth:
    """What an authentication line says."""

    action: str
    success: bool
    user: str | None = None
    host: str | None = None
    port: int | None = None
    time: str | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


_SSHD_PROGRAMS = frozenset({"sshd", "sshd-session", "sshd-auth"})
_LINE_PREFIX = re.compile(r"(?:\[ID \d+ [\w.]+\] )?(?:kernel: ?\[ *\d+\.\d+\]:? )?(?:error: |fatal: )?")
_AUTH_VERB = re.compile(r"(?P<verb>Failed|Accepted) (?P<method>\S+) for (?P<rest>.*)")
_FROM = re.compile(r" from (?P<host>\S+)")
_AFTER_FROM = re.compile(r"(?: port (?P<port>\d+))?(?: (?P<protocol>ssh\d?))?(?P<info>: .*| \[preauth\])?")
_PLACEHOLDER_USERS = frozenset({"<invalid username>", "?", "(unknown user)", "(invalid user)", "(unknown)"})


def _sshd_patterns() -> list[tuple[re.Pattern[str], str]]:
    """(pattern, action) for sshd's failure lines other than "Failed <method> for ...", tried in order."""
    host = r"(?P<host>\S+)"
    port = r"(?: port (?P<port>\d+))?"
    preauth = r"(?: \[preauth\])?"
    who = r"(?:(?:authenticating|invalid) user (?P<user>.*) )"
    table = [
        (rf"(?:Invalid|Illegal) user (?P<user>.*) from {host}{port}", "sshd.invalid_user"),
        (rf"User (?P<user>.+?) from {host} not allowed because (?P<reason>.+)", "sshd.user_not_allowed"),
        (rf"ROOT LOGIN REFUSED FROM (?P<host>\S+?){port}{preauth}", "sshd.root_login_refused"),
        (
            r"PAM: (?:[Aa]uthentication (?:failure|error)|User not known to the underlying authentication module)"
            rf" for (?:(?:illegal|invalid) user )?(?P<user>.*) from {host}(?: via \S+)?\s*",
            "sshd.pam_failure",
        ),
        (
            rf"maximum authentication attempts exceeded for (?:invalid user )?(?P<user>.*) from {host}{port}"
            rf"(?: ssh\d?)?{preauth}",
            "sshd.max_auth_attempts",
        ),
        (rf"Disconnecting: Too many authentication failures(?: for (?P<user>.+?))?{preauth}", "sshd.too_many_failures"),
        (
            rf"Disconnecting {who}{host} port (?P<port>\d+): Too many authentication failures{preauth}",
            "sshd.too_many_failures",
        ),
        (rf"Disconnecting {who}{host} port (?P<port>\d+): (?P<reason>.*?){preauth}", "sshd.disconnect_preauth"),
        (r"refused connect from (?P<peer>\S+) \((?P<host>[^()\s]+)\)", "sshd.refused_connect"),
        (rf"Connection closed by {host}{port} \[preauth\]", "sshd.preauth_closed"),
        (rf"Connection closed by {who}{host} port (?P<port>\d+){preauth}", "sshd.preauth_closed"),
        (rf"Connection reset by {host}{port} \[preauth\]", "sshd.preauth_reset"),
        (rf"Connection reset by {who}{host} port (?P<port>\d+){preauth}", "sshd.preauth_reset"),
        (rf"Disconnected from {who}?{host} port (?P<port>\d+) \[preauth\]", "sshd.preauth_disconnected"),
        (
            rf"Received disconnect from {host} port (?P<port>\d+): ?(?P<code>\d+): (?P<reason>.*?)"
            r"(?P<pre> \[preauth\])?",
            "sshd.preauth_disconnected",
        ),
        (
            rf"Received disconnect from {host}: ?(?P<code>\d+): (?P<reason>.*?)(?P<pre> \[preauth\])?",
            "sshd.preauth_disconnected",
        ),
        (rf"Did not receive identification string from {host}{port}", "sshd.no_identification"),
        (rf"Bad protocol version identification '.*' from {host}{port}", "sshd.bad_protocol_version"),
        (rf"Unable to negotiate with {host} port (?P<port>\d+): (?P<reason>.*?){preauth}", "sshd.negotiation_failed"),
        (rf"banner exchange: Connection from {host} port (?P<port>\d+): (?P<reason>.*)", "sshd.bad_banner"),
    ]
    return [(re.compile(pattern), action) for pattern, action in table]


_SSHD = _sshd_patterns()
_AUTH_FAIL_REASON = re.compile(r"auth(?:entication)? fail", re.IGNORECASE)
_PAM_UNIX = re.compile(
    r"authentication failure; logname=(?P<logname>.*?) uid=(?P<uid>\d*) euid=(?P<euid>\d*) tty=(?P<tty>\S*)"
    r" ruser=(?P<tail>.*)"
)
_PAM_RHOST = re.compile(r" rhost=(?P<host>\S*)")
_PAM_AFTER_RHOST = re.compile(r"\s*|\s+user=(?P<user>.*)")
_AUDIT = re.compile(
    r"(?:^|\s)type=(?P<type>USER_AUTH|USER_ERR|USER_LOGIN|1100|1109|1112)\s+(?:msg=)?"
    r"audit\((?P<sec>\d+)\.(?P<ms>\d{1,6}):(?P<serial>\d+)\):\s*(?P<body>.*)"
)
_AUDIT_TYPES = {"1100": "USER_AUTH", "1109": "USER_ERR", "1112": "USER_LOGIN"}
_AUDIT_NODE = re.compile(r"(?:^|\s)node=(?P<node>\S+)\s+type=")
_AUDIT_FIELD = re.compile(r"(?P<key>[\w-]+)=(?P<value>\"[^\"]*\"|\S*)")
_HEX = re.compile(r"(?:[0-9A-F]{2})+")


def _first_from(rest: str) -> tuple[str, re.Match[str], re.Match[str]] | None:
    """Split "<user> from <host> port <n> ssh2[: info]" at the first " from " the rest of the line fits after.

    sshd logs the user name and the auth info after ": " verbatim, so either
    may contain " from <ip> port <n>". The peer is taken as the first
    candidate followed only by port, protocol and ": auth info" (OpenSSH's
    own format): an address injected into the auth info, or into a user name
    as a bare " from <ip>", is not taken. A user name crafted to end in a
    whole " from <ip> port <n> ssh2: " can still mislead (as it can fail2ban);
    raw keeps the line.
    """
    for candidate in _FROM.finditer(rest):
        after = _AFTER_FROM.fullmatch(rest, candidate.end())
        if after is not None:
            return rest[: candidate.start()], candidate, after
    return None


def _sshd(message: str) -> _Auth | None:
    """What an sshd line says about authentication, or None.

    One leading space is ignored: rsyslog keeps the space after the tag in the
    message text of locally logged lines it forwards as RFC 5424.
    """
    text = message.rstrip().removeprefix(" ")
    prefix = _LINE_PREFIX.match(text)
    if prefix is not None:
        text = text[prefix.end() :]
    verb = _AUTH_VERB.fullmatch(text)
    if verb is not None:
        split = _first_from(verb["rest"])
        if split is None:
            return None
        user, origin, after = split
        invalid = user.startswith("invalid user ")
        user = user[len("invalid user ") :] if invalid else user
        method = re.sub(r"[^a-z0-9]+", "_", verb["method"].lower()).strip("_") or "unknown"
        success = verb["verb"] == "Accepted"
        attrs: dict[str, Any] = {"method": verb["method"]}
        if invalid:
            attrs["invalid_user"] = True
        if after["protocol"]:
            attrs["protocol"] = after["protocol"]
        return _Auth(
            f"sshd.{'accepted' if success else 'failed'}_{method}",
            success,
            user=user,
            host=origin["host"],
            port=int(after["port"]) if after["port"] else None,
            attrs=attrs,
        )
    for pattern, action in _SSHD:
        match = pattern.fullmatch(text)
        if match is None:
            continue
        groups = match.groupdict()
        if "code" in groups and not groups["pre"] and not _AUTH_FAIL_REASON.search(groups["reason"] or ""):
            return None  # an ordinary disconnect after the session
        extra: dict[str, Any] = {key: groups[key] for key in ("reason", "peer") if groups.get(key)}
        if groups.get("code"):
            extra["disconnect_code"] = int(groups["code"])
        return _Auth(
            action,
            False,
            user="root" if action == "sshd.root_login_refused" else groups.get("user"),
            host=groups.get("host"),
            port=int(groups["port"]) if groups.get("port") else None,
            attrs=extra,
        )
    return None


def _pam_unix(message: str) -> _Auth | None:
    """pam_unix's "authentication failure; logname= uid= euid= tty= ruser= rhost= [user=]" (Linux-PAM)."""
    match = _PAM_UNIX.search(message)
    if match is None:
        return None
    tail = match["tail"].rstrip()
    # ruser and user may hold anything (both come from the client); rhost never has spaces.
    # The real rhost is the first one after which only "  user=..." (or nothing) follows.
    for candidate in _PAM_RHOST.finditer(" " + tail):
        after = _PAM_AFTER_RHOST.fullmatch(" " + tail, candidate.end())
        if after is None:
            continue
        ruser = tail[: candidate.start()].strip()
        user = (after["user"] or "").strip() or ruser
        attrs: dict[str, Any] = {"tty": match["tty"]} if match["tty"] else {}
        if ruser:
            attrs["ruser"] = ruser
        return _Auth("pam.auth_failure", False, user=user, host=candidate["host"] or None, attrs=attrs)
    return None


def _audit_value(raw: str) -> str | None:
    """An auditd field value: quoted, hex-encoded (untrusted strings), or "?" for none."""
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        value = raw[1:-1]
    elif _HEX.fullmatch(raw):
        value = bytes.fromhex(raw).decode("utf-8", "backslashreplace")
    else:
        value = raw
    return None if value in ("", "?") else value


def _auditd(match: re.Match[str], message: str) -> _Auth | None:
    """auditd USER_LOGIN / USER_AUTH / USER_ERR records (linux-audit's user-space message format)."""
    record = _AUDIT_TYPES.get(match["type"], match["type"])
    body = match["body"]
    inner_start = body.find("msg='")
    inner_end = body.rfind("'")
    inner = body[inner_start + 5 : inner_end] if 0 <= inner_start < inner_end else body
    fields: dict[str, str | None] = {}
    for item in _AUDIT_FIELD.finditer(inner):
        fields.setdefault(item["key"], _audit_value(item["value"]))
    result = (fields.get("res") or "").lower()
    if record == "USER_ERR" or result in ("failed", "failure", "fail", "0"):
        success = False
    elif result in ("success", "1"):
        success = True
    else:
        return None
    user = fields.get("acct")
    attrs: dict[str, Any] = {"audit_type": record, "audit_serial": int(match["serial"])}
    if user in _PLACEHOLDER_USERS:
        attrs["acct"], user = user, None
    for key in ("op", "exe", "terminal"):
        if fields.get(key):
            attrs[key] = fields[key]
    node = _AUDIT_NODE.search(message)
    if node is not None:
        attrs["node"] = node["node"]
    host = fields.get("addr") or fields.get("hostname")
    seconds, fraction = int(match["sec"]), match["ms"].ljust(6, "0")
    moment = datetime.fromtimestamp(seconds, UTC) + timedelta(microseconds=int(fraction))
    return _Auth(f"auditd.{record.lower()}", success, user=user, host=host, time=format_time(moment), attrs=attrs)


def _authentication(message: SyslogMessage) -> _Auth | None:
    text = message.message
    audit = _AUDIT.search(text)
    if audit is not None:
        return _auditd(audit, text)
    if (message.app_name or "").lower() in _SSHD_PROGRAMS:
        found = _sshd(text)
        if found is not None:
            return found
    return _pam_unix(text)


def _ip(host: str) -> str | None:
    """The address if `host` is an IP address (an IPv4-mapped IPv6 one as IPv4), else None."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return host


def _label(value: str) -> str:
    return value[:MAX_LABEL]


def _sd_attrs(structured: StructuredData) -> dict[str, dict[str, str | list[str]]]:
    result: dict[str, dict[str, str | list[str]]] = {}
    for sd_id, params in structured:
        element = result.setdefault(sd_id, {})
        for name, value in params:
            previous = element.get(name)
            if previous is None:
                element[name] = value
            elif isinstance(previous, list):
                previous.append(value)
            else:
                element[name] = [previous, value]
    return result


_SD_ATTRS_MAX = 4096


def _iter_sd_chars(structured: StructuredData) -> Iterator[int]:
    for sd_id, params in structured:
        yield len(sd_id)
        for name, value in params:
            yield len(name) + len(value)


def to_envelopes(message: SyslogMessage, source_id: str) -> list[Envelope]:
    """The envelope of one syslog message: auth.failure / auth.success, or syslog.message."""
    attrs: dict[str, Any] = {"facility": FACILITIES[message.facility], "severity": SEVERITIES[message.severity]}
    if message.app_name:
        attrs["program"] = _label(message.app_name)
    if message.procid:
        attrs["pid"] = int(message.procid) if message.procid.isdigit() else _label(message.procid)
    if message.msgid:
        attrs["msgid"] = message.msgid
    if message.structured_data and sum(_iter_sd_chars(message.structured_data)) <= _SD_ATTRS_MAX:
        attrs["structured_data"] = _sd_attrs(message.structured_data)
    envelope: Envelope = {"source": {"type": "syslog", "id": source_id}}
    auth = _authentication(message)
    time = message.timestamp
    if auth is None:
        envelope["kind"] = "syslog.message"
        if message.app_name:
            envelope["action"] = _label(message.app_name)
        envelope["outcome"] = "unknown"
    else:
        envelope["kind"] = "auth.success" if auth.success else "auth.failure"
        envelope["action"] = auth.action
        envelope["outcome"] = "success" if auth.success else "failure"
        actor: dict[str, str] = {}
        if auth.user and auth.user not in _PLACEHOLDER_USERS:
            actor["name"] = _label(auth.user)
        if auth.host:
            ip = _ip(auth.host)
            if ip is not None:
                actor["ip"] = ip
            else:
                attrs["rhost"] = _label(auth.host)
        if actor:
            envelope["actor"] = actor
        if auth.port is not None:
            attrs["port"] = auth.port
        attrs.update({key: _label(value) if isinstance(value, str) else value for key, value in auth.attrs.items()})
        time = auth.time or time
    if time is not None:
        envelope["time"] = time
    if message.hostname:
        envelope["target"] = {"type": "host", "name": _label(message.hostname)}
    envelope["attrs"] = attrs
    envelope["raw"] = message.raw
    return [envelope]
