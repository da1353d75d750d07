"""Syslog source: RFC 6587 framing, RFC 5424 / RFC 3164 parsing, and mapping to envelopes.

The authentication mapping is checked against real log lines: the labelled
sample logs that Debian's fail2ban package ships (see _syslog_fixtures).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from _syslog_fixtures import LOG_FILES, Sample, ar_member, fail2ban_logs, samples
from sealtrail.event import MAX_LABEL, prepare
from sealtrail.sources.base import SourcePayloadError
from sealtrail.sources.syslog import (
    FrameDecoder,
    FramingError,
    SyslogMessage,
    parse_message,
    to_envelopes,
)

SOURCE = "edge-01"
FAIL2BAN_NOW = datetime(2005, 8, 14, 10, 0, tzinfo=UTC)  # fail2ban's tests run at this moment (TEST_NOW)


def octets(message: bytes) -> bytes:
    """One RFC 6587 octet-counted frame."""
    return str(len(message)).encode() + b" " + message


def envelope_of(line: str | bytes, **options: Any) -> dict[str, Any]:
    """The single envelope of one line, checked to be a valid sealtrail event."""
    frame = line.encode() if isinstance(line, str) else line
    envelopes = to_envelopes(parse_message(frame, **options), SOURCE)
    assert len(envelopes) == 1
    prepare(envelopes[0])
    return envelopes[0]


# --- framing (RFC 6587) ----------------------------------------------------------------


def test_octet_counting_keeps_newlines_inside_a_frame() -> None:
    first = b"<13>1 - host app - - - line one\nline two"
    second = b"<14>1 - host app - - - second"
    assert FrameDecoder().feed(octets(first) + octets(second)) == [first, second]


def test_newline_framing_accepts_lf_crlf_and_nul_trailers_and_skips_empty_lines() -> None:
    stream = b"<13>one\n<13>two\r\n\n\r\n<13>three\x00<13>four\n"
    assert FrameDecoder().feed(stream) == [b"<13>one", b"<13>two", b"<13>three", b"<13>four"]


def test_framing_is_detected_per_frame() -> None:
    counted = b"<13>1 - h a - - - counted\nwith newline"
    stream = octets(counted) + b"<13>Jan  1 00:00:00 h a: by line\n" + octets(counted) + b"<13>last\n"
    assert FrameDecoder().feed(stream) == [counted, b"<13>Jan  1 00:00:00 h a: by line", counted, b"<13>last"]


def test_a_line_that_starts_with_digits_is_not_taken_for_an_octet_count() -> None:
    stream = b"2015-04-16T18:02:50+00:00 host sshd[1]: x\n12345\n"
    assert FrameDecoder().feed(stream) == [b"2015-04-16T18:02:50+00:00 host sshd[1]: x", b"12345"]


def test_frames_split_across_feeds_come_out_whole_and_only_when_complete() -> None:
    counted = b"<13>1 - h a - - - " + b"x" * 150
    stream = octets(counted) + b"<13>line\r\n" + octets(b"<13>short") + b"<13>tail\x00"
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(len(stream)):
        got = decoder.feed(stream[i : i + 1])
        for frame in got:
            assert frame in (counted, b"<13>line", b"<13>short", b"<13>tail")
        out += got
    assert out == [counted, b"<13>line", b"<13>short", b"<13>tail"]
    assert decoder.buffered == 0


def test_an_oversized_octet_counted_frame_is_skipped_and_the_frames_around_it_kept() -> None:
    decoder = FrameDecoder(max_size=32)
    stream = octets(b"<13>before") + octets(b"<13>" + b"y" * 60) + octets(b"<13>after")
    with pytest.raises(FramingError, match="over the 32-octet limit") as caught:
        decoder.feed(stream)
    assert caught.value.frames == [b"<13>before", b"<13>after"]
    assert isinstance(caught.value, SourcePayloadError)
    assert decoder.feed(b"<13>next\n") == [b"<13>next"]


def test_an_oversized_octet_counted_frame_arriving_in_pieces_is_skipped_to_its_end() -> None:
    decoder = FrameDecoder(max_size=32)
    body = b"<13>" + b"z" * 96
    with pytest.raises(FramingError):
        decoder.feed(octets(body)[:20])
    assert decoder.feed(octets(body)[20:60]) == []
    assert decoder.feed(octets(body)[60:] + b"<13>resync\n") == [b"<13>resync"]


def test_an_oversized_line_is_discarded_up_to_its_trailer() -> None:
    decoder = FrameDecoder(max_size=16)
    with pytest.raises(FramingError) as caught:
        decoder.feed(b"<13>" + b"a" * 20)
    assert caught.value.frames == []
    assert decoder.feed(b"still the long line\n<13>ok\n") == [b"<13>ok"]


def test_a_line_of_exactly_the_limit_passes_even_with_crlf_split_across_feeds() -> None:
    decoder = FrameDecoder(max_size=16)
    line = b"<13>" + b"b" * 12
    assert decoder.feed(line + b"\r") == []
    assert decoder.feed(b"\n") == [line]
    with pytest.raises(FramingError):
        decoder.feed(line + b"c\n")


def test_finish_returns_an_unterminated_last_line_and_reports_a_truncated_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"<13>a\n<13>no trailer") == [b"<13>a"]
    assert decoder.finish() == [b"<13>no trailer"]
    assert decoder.finish() == []
    decoder.feed(b"50 <13>1 - h a - - - cut")
    with pytest.raises(FramingError, match="stream ended"):
        decoder.finish()


def test_max_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FrameDecoder(max_size=0)


# --- RFC 5424 ---------------------------------------------------------------------------

BOM = "\ufeff"


def test_rfc5424_example_1_bom_and_nilvalues() -> None:
    line = (
        f"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - {BOM}'su root' failed for lonvick on "
        "/dev/pts/8"
    )
    assert parse_message(line.encode()) == SyslogMessage(
        facility=4,
        severity=2,
        timestamp="2003-10-11T22:14:15.003Z",
        hostname="mymachine.example.com",
        app_name="su",
        procid=None,
        msgid="ID47",
        structured_data=(),
        message="'su root' failed for lonvick on /dev/pts/8",
        syntax="rfc5424",
    )


def test_rfc5424_example_2_offset_time_and_procid() -> None:
    line = b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts."
    message = parse_message(line)
    assert (message.facility, message.severity) == (20, 5)
    assert (message.timestamp, message.hostname, message.app_name) == (
        "2003-08-24T05:14:15.000003-07:00",
        "192.0.2.1",
        "myproc",
    )
    assert (message.procid, message.msgid, message.structured_data) == ("8710", None, ())
    assert message.message == "%% It's time to make the do-nuts."
    env = envelope_of(line)
    assert env["kind"] == "syslog.message" and env["action"] == "myproc"
    assert env["attrs"] == {"facility": "local4", "severity": "notice", "program": "myproc", "pid": 8710}
    assert prepare(env).entry.find(b'"time":"2003-08-24T12:14:15.000003Z"') >= 0


def test_rfc5424_example_3_structured_data_and_message() -> None:
    line = (
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        f'eventSource="Application" eventID="1011"] {BOM}An application event log entry...'
    )
    message = parse_message(line.encode())
    assert message.structured_data == (
        ("exampleSDID@32473", (("iut", "3"), ("eventSource", "Application"), ("eventID", "1011"))),
    )
    assert message.message == "An application event log entry..."
    env = envelope_of(line)
    assert env["attrs"]["msgid"] == "ID47"
    assert env["attrs"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}
    }


def test_rfc5424_example_4_two_elements_and_no_message() -> None:
    line = (
        b'<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" '
        b'eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]'
    )
    message = parse_message(line)
    assert [sd_id for sd_id, _ in message.structured_data] == ["exampleSDID@32473", "examplePriority@32473"]
    assert message.structured_data[1][1] == (("class", "high"),)
    assert message.message == ""


def test_rfc5424_param_value_escapes() -> None:
    line = rb'<13>1 - h a - - [x@1 q="say \"hi\"" b="C:\\dir" r="a\]b" n="keep\n" u="[brackets]"] msg'
    (params,) = [p for _, p in parse_message(line).structured_data]
    assert dict(params) == {"q": 'say "hi"', "b": "C:\\dir", "r": "a]b", "n": "keep\\n", "u": "[brackets]"}


def test_rfc5424_repeated_params_become_a_list_in_attrs() -> None:
    env = envelope_of(b'<13>1 - h a - - [origin ip="192.0.2.1" ip="192.0.2.2" software="x"]')
    assert env["attrs"]["structured_data"] == {"origin": {"ip": ["192.0.2.1", "192.0.2.2"], "software": "x"}}


def test_rfc5424_all_nilvalues() -> None:
    message = parse_message(b"<13>1 - - - - - -")
    assert (message.timestamp, message.hostname, message.app_name, message.procid, message.msgid) == (None,) * 5
    assert message.structured_data == () and message.message == ""
    env = envelope_of(b"<13>1 - - - - - -")
    assert "time" not in env and "target" not in env and "action" not in env


def test_rfc5424_message_may_be_octet_counted_with_its_line_ending() -> None:
    assert parse_message(b"<13>1 - h a - - - text\r\n").message == "text"


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b" \r\n",
        b"<192>1 - - - - - -",
        b"<13",
        b"<x>Jan  1 00:00:00 h a: b",
        b"<13>2 - - - - - -",
        b"<13>1 2003-10-11T22:14:15.003Z host app",
        b"<13>1 2003-13-11T22:14:15Z h a - - -",
        b"<13>1 2003-10-11T22:14:15 h a - - -",
        b"<13>1 - h " + b"a" * 49 + b" - - -",
        b"<13>1 - h\xc3\xa9 a - - -",
        b'<13>1 - h a - - [id a="1"',
        b"<13>1 - h a - - [id a=1]",
        b'<13>1 - h a - - [id a="unclosed]',
        b"<13>1 - h a - - x",
        b"<13>1 - h a - - -x",
        b"just some text without PRI or timestamp",
        b"<13>Feb 30 10:00:00 h a: no such day",
    ],
)
def test_malformed_messages_are_rejected(frame: bytes) -> None:
    with pytest.raises(SourcePayloadError):
        parse_message(frame, received_year=2023)


# --- RFC 3164 ---------------------------------------------------------------------------


def test_rfc3164_example_with_tag() -> None:
    message = parse_message(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8", 2003)
    assert message == SyslogMessage(
        facility=4,
        severity=2,
        timestamp="2003-10-11T22:14:15Z",
        hostname="mymachine",
        app_name="su",
        procid=None,
        msgid=None,
        structured_data=(),
        message="'su root' failed for lonvick on /dev/pts/8",
    )


def test_rfc3164_example_without_tag() -> None:
    message = parse_message(b"<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", 2001)
    assert (message.timestamp, message.hostname, message.app_name, message.message) == (
        "2001-02-05T17:32:18Z",
        "10.0.0.99",
        None,
        "Use the BFG!",
    )


def test_rfc3164_without_pri_is_user_notice() -> None:
    message = parse_message(b"Feb 25 14:34:10 belka sshd[31602]: hello", 2005)
    assert (message.facility, message.severity, message.hostname, message.app_name, message.procid) == (
        1,
        5,
        "belka",
        "sshd",
        "31602",
    )


def test_rfc3164_local_message_without_hostname() -> None:
    message = parse_message(b"<38>Feb 17 17:40:17 sshd[19725]: Connection from 192.0.2.10", 2005)
    assert (message.hostname, message.app_name, message.procid, message.message) == (
        None,
        "sshd",
        "19725",
        "Connection from 192.0.2.10",
    )


def test_rfc3164_header_with_rfc3339_timestamp_as_rsyslog_forwards_it() -> None:
    message = parse_message(b"<38>2015-04-16T18:02:50.321974+00:00 host sshd[2716]: text")
    assert (message.timestamp, message.hostname, message.app_name) == (
        "2015-04-16T18:02:50.321974+00:00",
        "host",
        "sshd",
    )


def test_rfc3164_pri_without_timestamp_keeps_everything_as_content() -> None:
    message = parse_message(b"<13>sshd[7]: no header here")
    assert (message.timestamp, message.hostname, message.app_name, message.message) == (
        None,
        None,
        "sshd",
        "no header here",
    )


@pytest.mark.parametrize(
    ("stamp", "received", "expected"),
    [
        ("Dec 31 23:59:59", datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC), "2024-12-31T23:59:59Z"),
        ("Jan  1 00:00:01", datetime(2024, 12, 31, 23, 59, 58, tzinfo=UTC), "2025-01-01T00:00:01Z"),
        ("Nov 28 09:16:03", datetime(2005, 8, 14, 10, 0, tzinfo=UTC), "2004-11-28T09:16:03Z"),
        ("Feb 29 12:00:00", datetime(2025, 3, 1, tzinfo=UTC), "2024-02-29T12:00:00Z"),
        ("Jun  3 04:05:06", datetime(2025, 6, 3, 4, 5, 0, tzinfo=UTC), "2025-06-03T04:05:06Z"),
    ],
)
def test_rfc3164_year_comes_from_the_receipt_with_new_year_rollover(
    stamp: str, received: datetime, expected: str
) -> None:
    assert parse_message(f"<13>{stamp} h app: x".encode(), received=received).timestamp == expected


def test_rfc3164_received_year_is_used_as_given() -> None:
    assert parse_message(b"<13>Dec 31 23:59:59 h app: x", 1999).timestamp == "1999-12-31T23:59:59Z"


def test_undecodable_octets_are_kept_as_escapes() -> None:
    message = parse_message(b"<13>Jan  1 00:00:00 h app: caf\xe9", 2020)
    assert message.message == "caf\\xe9"
    assert envelope_of(b"<13>Jan  1 00:00:00 h app: caf\xe9", received_year=2020)["raw"].endswith("caf\\xe9")


# --- mapping ------------------------------------------------------------------------------


def test_sshd_failed_password_envelope() -> None:
    line = (
        "<38>Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port "
        "50273 ssh2"
    )
    assert envelope_of(line, received_year=2005) == {
        "source": {"type": "syslog", "id": SOURCE},
        "kind": "auth.failure",
        "action": "sshd.failed_password",
        "outcome": "failure",
        "actor": {"name": "ROOT", "ip": "194.117.26.69"},
        "target": {"type": "host", "name": "belka"},
        "time": "2005-02-25T14:34:10Z",
        "attrs": {
            "facility": "auth",
            "severity": "info",
            "program": "sshd",
            "pid": 31602,
            "port": 50273,
            "method": "password",
            "invalid_user": True,
            "protocol": "ssh2",
        },
        "raw": line,
    }


def test_sshd_accepted_publickey_is_auth_success() -> None:
    env = envelope_of(
        "<86>Nov 28 09:16:03 srv sshd-session[32307]: Accepted publickey for git from 2001:db8::5 port 57904 ssh2: "
        "ED25519 SHA256:abc",
        received_year=2024,
    )
    assert (env["kind"], env["action"], env["outcome"]) == ("auth.success", "sshd.accepted_publickey", "success")
    assert env["actor"] == {"name": "git", "ip": "2001:db8::5"}


@pytest.mark.parametrize(
    ("line", "action", "user", "ip"),
    [
        ("Invalid user admin from 192.0.2.117 port 44004", "sshd.invalid_user", "admin", "192.0.2.117"),
        (
            "Failed publickey for root from 192.0.2.3 port 22 ssh2: RSA SHA256:x",
            "sshd.failed_publickey",
            "root",
            "192.0.2.3",
        ),
        (
            "Connection closed by authenticating user root 192.0.2.10 port 46038 [preauth]",
            "sshd.preauth_closed",
            "root",
            "192.0.2.10",
        ),
        (
            "Failed password for invalid user x from 6.6.6.6 port 1 ssh2 from 192.0.2.9 port 22 ssh2",
            "sshd.failed_password",
            "x from 6.6.6.6 port 1 ssh2",
            "192.0.2.9",
        ),
        ("ROOT LOGIN REFUSED FROM ::ffff:192.0.2.4 port 2222", "sshd.root_login_refused", "root", "192.0.2.4"),
    ],
)
def test_sshd_failures(line: str, action: str, user: str, ip: str) -> None:
    env = envelope_of(f"<38>Mar  1 00:00:00 gw sshd[9]: {line}", received_year=2024)
    assert (env["kind"], env["action"], env["outcome"]) == ("auth.failure", action, "failure")
    assert env["actor"] == {"name": user, "ip": ip}


def test_pam_unix_failure_takes_the_real_rhost_over_one_injected_in_the_user_name() -> None:
    env = envelope_of(
        "<85>Jul 19 18:11:52 srv2 sshd[4]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=192.0.2.2  user=test rhost=192.0.2.152",
        received_year=2024,
    )
    assert (env["kind"], env["action"]) == ("auth.failure", "pam.auth_failure")
    assert env["actor"] == {"name": "test rhost=192.0.2.152", "ip": "192.0.2.2"}
    assert env["attrs"]["tty"] == "ssh"


def test_peer_named_by_hostname_goes_to_attrs_not_actor_ip() -> None:
    env = envelope_of(
        "<38>May 29 20:56:52 imago sshd[28732]: error: PAM: Authentication failure for stefanor from example.com",
        received_year=2005,
    )
    assert env["actor"] == {"name": "stefanor"}
    assert env["attrs"]["rhost"] == "example.com"


def test_auditd_user_auth_success_takes_its_time_from_the_audit_record() -> None:
    line = (
        "<85>Oct 30 07:57:43 web1 audisp-syslog: node=web1 type=USER_AUTH msg=audit(1383116263.250:603): pid=12887 "
        'uid=0 auid=4294967295 ses=4294967295 msg=\'op=PAM:authentication grantors=pam_unix acct="dan" '
        'exe="/usr/sbin/sshd" hostname=192.168.3.100 addr=192.168.3.100 terminal=ssh res=success\''
    )
    env = envelope_of(line, received_year=2013)
    assert (env["kind"], env["action"], env["outcome"]) == ("auth.success", "auditd.user_auth", "success")
    assert env["actor"] == {"name": "dan", "ip": "192.168.3.100"}
    assert env["time"] == "2013-10-30T06:57:43.250000Z"
    assert env["attrs"]["audit_serial"] == 603 and env["attrs"]["node"] == "web1"
    assert env["target"] == {"type": "host", "name": "web1"}


def test_auditd_kernel_numeric_form_and_hex_encoded_account() -> None:
    acct = b"bad user".hex().upper()
    line = (
        f"<4>Jan  2 03:04:05 db2 kernel: audit: type=1112 audit(1704164645.000:77): pid=5 uid=0 "
        f"msg='op=login acct={acct} exe=\"/usr/sbin/sshd\" hostname=? addr=2001:db8::7 terminal=ssh res=failed'"
    )
    env = envelope_of(line, received_year=2024)
    assert (env["kind"], env["action"]) == ("auth.failure", "auditd.user_login")
    assert env["actor"] == {"name": "bad user", "ip": "2001:db8::7"}


def test_other_messages_are_syslog_messages_with_the_program_as_action() -> None:
    env = envelope_of("<78>Mar  1 06:25:01 host CRON[123]: (root) CMD (run-parts /etc/cron.hourly)", received_year=2024)
    assert (env["kind"], env["action"], env["outcome"]) == ("syslog.message", "CRON", "unknown")
    assert "actor" not in env
    assert env["attrs"] == {"facility": "cron", "severity": "info", "program": "CRON", "pid": 123}


def test_sshd_wording_from_another_program_is_not_an_sshd_event() -> None:
    env = envelope_of(
        "<38>Mar  1 00:00:00 h myapp[1]: Failed password for root from 192.0.2.1 port 22 ssh2", received_year=2024
    )
    assert env["kind"] == "syslog.message"


def test_an_ordinary_disconnect_after_a_session_is_not_a_failure() -> None:
    env = envelope_of(
        "<38>Mar  1 00:00:00 h sshd[1]: Received disconnect from 192.0.2.8 port 5:11: disconnected by user",
        received_year=2024,
    )
    assert env["kind"] == "syslog.message"


def test_an_overlong_user_name_is_cut_to_a_label_and_the_event_stays_valid() -> None:
    env = envelope_of(
        f"<38>Mar  1 00:00:00 h sshd[1]: Invalid user {'u' * 3000} from 192.0.2.1 port 2", received_year=2024
    )
    assert env["actor"]["name"] == "u" * MAX_LABEL


# --- real lines: fail2ban's labelled sample logs -------------------------------------------

ZURICH = ZoneInfo("Europe/Zurich")  # fail2ban's tests run with TZ=CET-01CEST-02: its labels are local times


def wrapped(sample: Sample) -> str:
    """The sample as a syslog line: journal entries and audit records get the header a relay gives them."""
    if sample.file == "sshd-journal":
        return f"<38>Aug 14 10:00:00 {sample.line}"
    if sample.file == "selinux-ssh":
        return f"<85>Aug 14 10:00:00 srv audisp-syslog: {sample.line}"
    return sample.line


# Where judging each line alone, and recording every failed attempt, deliberately differs from fail2ban,
# which counts failures per connection in order to ban: (line pattern, our kind, why).
DELIBERATE: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"Failed publickey for git from "),
        "auth.failure",
        "gh-1263: fail2ban ignores each key refused to a user who offers several; each is a failed attempt",
    ),
    (
        re.compile(r"Disconnecting: Too many authentication failures for root \[preauth\]$"),
        "auth.failure",
        "fail2ban counts it on a later line of the connection that names the IP; recorded here without one",
    ),
    (
        re.compile(r"pam_unix\(sshd:auth\): authentication failure; "),
        "auth.failure",
        "gh-2070: fail2ban forgets it when the connection later succeeds; it is still a failed attempt",
    ),
    (
        re.compile(r"Disconnected from authenticating user admin 192\.0\.2\.6 port 33553 \[preauth\]$"),
        "auth.failure",
        "labelled for fail2ban's normal mode only; its extra/aggressive modes count the same line",
    ),
    (
        re.compile(r"Connection closed by 192\.0\.2\.15 port 35352$"),
        "syslog.message",
        "gh-3086: a failure only because an earlier line of the connection was; alone it is an ordinary close",
    ),
    (
        re.compile(r"pop\(pam_unix\)\[4920\]: authentication failure; "),
        "auth.failure",
        "Linux-PAM's format before 0.99.2.0, which fail2ban no longer reads",
    ),
    (
        re.compile(r"^type=USER_LOGIN .* res=failed'$"),
        "auth.failure",
        "fail2ban counts the USER_AUTH/USER_ERR record of the same attempt instead; the failed login is audited too",
    ),
]


def difference(sample: Sample, env: dict[str, Any]) -> str | None:
    """How our envelope departs from the fail2ban label, or None; asserts what must hold regardless."""
    kind = env["kind"]
    actor = env.get("actor", {})
    host = sample.host
    if not sample.match:
        return "auth.failure where fail2ban sees no failure" if kind == "auth.failure" else None
    if host is None or host not in sample.line:
        # fail2ban learnt the address from another line of the connection: a single line must not invent one.
        assert "ip" not in actor, sample
        return None
    accepted = parse_message(wrapped(sample).encode(), received=FAIL2BAN_NOW).message.startswith("Accepted ")
    expected = "auth.success" if accepted else "auth.failure"
    if kind != expected:
        return f"{kind} where fail2ban sees a failure"
    assert actor.get("ip", env["attrs"].get("rhost")) == host, sample
    if "ip" in actor:
        assert not env["attrs"].get("rhost"), sample
    user = sample.label.get("user")
    if user:
        assert actor.get("name") == user, sample
    elif user == "":
        assert "name" not in actor, sample
    return None


@pytest.fixture(scope="module")
def fail2ban() -> Path:
    return fail2ban_logs()


@pytest.fixture(scope="module")
def judged(fail2ban: Path) -> dict[str, list[tuple[Sample, dict[str, Any]]]]:
    """Every labelled sample with its envelope (each checked by sealtrail.event.prepare)."""
    result: dict[str, list[tuple[Sample, dict[str, Any]]]] = {}
    for name in LOG_FILES:
        pairs = []
        for sample in samples(fail2ban, name):
            (env,) = to_envelopes(parse_message(wrapped(sample).encode(), received=FAIL2BAN_NOW), "fail2ban-samples")
            prepare(env)
            assert env["raw"] == wrapped(sample)
            pairs.append((sample, env))
        result[name] = pairs
    return result


def test_ar_member_reads_a_deb_container() -> None:
    archive = b"!<arch>\n" + b"debian-binary/  0           0     0     100644  4         `\n" + b"2.0\n"
    archive += b"data.tar.xz/    0           0     0     100644  3         `\n" + b"abc\n"
    assert ar_member(archive, "data.tar.xz") == b"abc"
    with pytest.raises(KeyError):
        ar_member(archive, "control.tar.xz")


@pytest.mark.parametrize(
    ("name", "at_least"), [("sshd", 140), ("sshd-journal", 120), ("pam-generic", 9), ("selinux-ssh", 10)]
)
def test_fail2ban_samples_all_parse_into_valid_events(
    judged: dict[str, list[tuple[Sample, dict[str, Any]]]], name: str, at_least: int
) -> None:
    pairs = judged[name]
    assert len(pairs) >= at_least
    assert sum(sample.match for sample, _ in pairs) >= at_least // 3


@pytest.mark.parametrize("name", LOG_FILES)
def test_fail2ban_matches_and_non_matches_agree_except_where_documented(
    judged: dict[str, list[tuple[Sample, dict[str, Any]]]], name: str
) -> None:
    unexplained = []
    for sample, env in judged[name]:
        differs = difference(sample, env)
        if differs is None:
            continue
        reasons = [(kind, why) for pattern, kind, why in DELIBERATE if pattern.search(sample.line)]
        if len(reasons) != 1 or reasons[0][0] != env["kind"]:
            unexplained.append(f"{sample}\n    -> {env['kind']} {env.get('action')} {env.get('actor')}: {differs}")
    assert not unexplained, "\n".join(unexplained)


def test_every_documented_difference_still_occurs(judged: dict[str, list[tuple[Sample, dict[str, Any]]]]) -> None:
    differing = [sample.line for pairs in judged.values() for sample, env in pairs if difference(sample, env)]
    for pattern, _, why in DELIBERATE:
        assert any(pattern.search(line) for line in differing), why


def test_fail2ban_auth_events_are_the_ones_expected(judged: dict[str, list[tuple[Sample, dict[str, Any]]]]) -> None:
    by_line = {sample.line: env for pairs in judged.values() for sample, env in pairs}
    cases = {
        "Feb 25 14:34:10 belka sshd[31602]: Failed password for invalid user ROOT from 194.117.26.69 port 50273 ssh2": (
            "sshd.failed_password",
            "ROOT",
        ),
        "Nov 11 08:04:52 redbamboo sshd[2737]: Failed password for invalid user test from 127.0.0.1 port 58946 ssh2: "
        "from 10.10.1.2 port 55555 ssh2": ("sshd.failed_password", "test"),
        "Jul 17 23:04:01 srv sshd[1300]: Connection closed by authenticating user test 127.0.0.1 port 12345 "
        "192.0.2.11 port 46039 [preauth]": ("sshd.preauth_closed", "test 127.0.0.1 port 12345"),
        "Mar  7 18:53:24 bar sshd[1558]: Accepted password for known from 192.0.2.114 port 52100 ssh2": (
            "sshd.accepted_password",
            "known",
        ),
    }
    for line, (action, user) in cases.items():
        assert (by_line[line]["action"], by_line[line]["actor"]["name"]) == (action, user)
    audit = [env for sample, env in judged["selinux-ssh"] if "type=USER_ERR" in sample.line]
    assert [env["action"] for env in audit] == ["auditd.user_err", "auditd.user_err"]
    assert all("name" not in env["actor"] for env in audit)  # acct="?"


@pytest.mark.parametrize(("name", "at_least"), [("sshd", 100), ("pam-generic", 8), ("selinux-ssh", 4)])
def test_fail2ban_sample_times(
    judged: dict[str, list[tuple[Sample, dict[str, Any]]]], name: str, at_least: int
) -> None:
    checked = 0
    for sample, env in judged[name]:
        if not sample.match or "time" not in sample.label:
            continue
        moment = datetime.fromisoformat(env["time"])
        if re.match(r"[A-Z][a-z]{2} ", sample.line):  # a BSD timestamp: no zone, read as written
            local = moment.replace(tzinfo=None)
        else:
            local = moment.astimezone(ZURICH).replace(tzinfo=None)
        assert local.isoformat(timespec="seconds") == sample.label["time"], sample
        checked += 1
    assert checked >= at_least
