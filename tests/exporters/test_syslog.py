"""RFC 5424 + CEF over TCP (RFC 6587) and TLS (RFC 5425): framing, a real rsyslog, a real TLS server.

rsyslog (Debian package `rsyslog`) runs as its own unprivileged process on a free loopback port with
a test configuration: imtcp in, omfile out, nothing else (no system logging). The test skips when
rsyslogd is not installed, except under CI=true.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from _support import devsecops_event, devsecops_events, free_port
from sealtrail.datadir import DataDir
from sealtrail.event import prepare
from sealtrail.exporters.config import ForwardConfig
from sealtrail.exporters.forwarder import ForwarderGroup
from sealtrail.exporters.record import ForwardRecord
from sealtrail.exporters.syslog import SyslogFormat, frame, sd_param_value
from sealtrail.log import Log
from sealtrail.sources.syslog import FrameDecoder, parse_message

from ._cef_parser import parse_cef
from ._records import ORIGIN, records

FAST: dict[str, Any] = {"backoff_initial": 0.001, "max_backoff": 0.05, "poll_interval": 0.05}


def test_octet_counting_frames_the_exact_byte_length() -> None:
    message = "<110>1 2026-01-01T00:00:00.000000Z h a - - - naïve".encode()
    assert frame(message) == str(len(message)).encode() + b" " + message
    assert len(message) != len(message.decode())
    decoder = FrameDecoder()
    assert decoder.feed(frame(message) + frame(b"<13>1 - - - - - - x")[:7]) == [message]
    assert decoder.feed(frame(b"<13>1 - - - - - - x")[7:]) == [b"<13>1 - - - - - - x"]


def test_messages_follow_rfc_5424() -> None:
    fmt = SyslogFormat(hostname="fw01.acme.example", procid="4242")
    record = records([prepare(devsecops_event(4))], start=77)[0]  # sshd failure for root: medium
    raw = fmt.message(record)
    parsed = parse_message(raw)
    assert parsed.syntax == "rfc5424"
    assert (parsed.facility, parsed.severity) == (13, 4), "log audit, warning"
    assert raw.startswith(b"<108>1 ")
    assert parsed.timestamp == record.get("time")
    assert (parsed.hostname, parsed.app_name, parsed.procid, parsed.msgid) == (
        "fw01.acme.example", "sealtrail", "4242", "auth.failure",
    )  # fmt: skip
    ((sd_id, params),) = parsed.structured_data
    assert sd_id == "sealtrail@32473"
    assert dict(params) == {
        "index": "77", "leafHash": record.leaf_hex, "origin": ORIGIN, "eventId": record.get("id"),
    }  # fmt: skip
    cef = parse_cef(parsed.message)
    assert cef.extension["cn1"] == "77" and cef.extension["cs1"] == record.leaf_hex


def test_header_fields_stay_printable_and_bounded() -> None:
    fmt = SyslogFormat(hostname="host with spaces", app_name="app", procid="")
    record = records([prepare(dict(devsecops_event(0), kind="x" * 40))])[0]
    parsed = parse_message(fmt.message(record))
    assert parsed.hostname == "host_with_spaces" and parsed.procid is None
    assert parsed.msgid == "x" * 32
    with pytest.raises(ValueError, match="sd_id"):
        SyslogFormat(sd_id="bad id")
    with pytest.raises(ValueError, match="facility"):
        SyslogFormat(facility=24)


def test_structured_data_values_escape_quote_backslash_and_bracket() -> None:
    assert sd_param_value('a"b\\c]d') == 'a\\"b\\\\c\\]d'
    record = ForwardRecord(3, b"\x03" * 32, 'weird"origin]\\x', None)
    ((_, params),) = parse_message(SyslogFormat(hostname="h").message(record)).structured_data
    assert dict(params)["origin"] == 'weird"origin]\\x'


# --- a real rsyslog -------------------------------------------------------------------------------


def _rsyslogd() -> str:
    found = shutil.which("rsyslogd") or ("/usr/sbin/rsyslogd" if os.access("/usr/sbin/rsyslogd", os.X_OK) else None)
    if found is None:
        reason = "rsyslogd is not installed (Debian package rsyslog)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason + " (CI=true: this test must run)")
        pytest.skip(reason)
    return found


_CONFIG = """\
global(workDirectory="{work}" maxMessageSize="64k")
module(load="imtcp")
template(name="fields" type="string"
         string="%hostname%|%app-name%|%procid%|%msgid%|%pri%|%structured-data%|%msg%\\n")
ruleset(name="forwarded") {{ action(type="omfile" file="{out}" template="fields") }}
input(type="imtcp" address="127.0.0.1" port="{port}" ruleset="forwarded")
"""


@pytest.fixture
def rsyslog() -> Iterator[tuple[int, Path]]:
    """An rsyslogd of our own: (port, output file). Runs as `nobody` when the tests run as root."""
    binary = _rsyslogd()
    work = Path(tempfile.mkdtemp(prefix="sealtrail-rsyslog-"))
    command = [binary, "-n", "-f", str(work / "rsyslog.conf"), "-i", str(work / "rsyslogd.pid")]
    if os.geteuid() == 0 and shutil.which("setpriv"):
        nobody = pwd.getpwnam("nobody")
        os.chown(work, nobody.pw_uid, nobody.pw_gid)
        command = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *command]
    out = work / "out.log"
    port = free_port()
    (work / "rsyslog.conf").write_text(_CONFIG.format(work=work, out=out, port=port))
    with (work / "stderr").open("wb") as stderr:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"rsyslogd did not start: {(work / 'stderr').read_text()}")
                time.sleep(0.05)
        yield port, out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


def _lines(path: Path, count: int, timeout: float = 30) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.05)
    pytest.fail(f"rsyslog wrote {len(lines)} of {count} lines")


def test_forwarded_events_land_in_rsyslogs_output_file(data_dir: DataDir, log: Log, rsyslog: tuple[int, Path]) -> None:
    port, out = rsyslog
    nasty = dict(devsecops_event(6), action='secret.read|by=admin\\ops\n"quoted"]')
    log.append([*devsecops_events(0, 30, "rsyslog"), prepare(nasty)])
    config = ForwardConfig(
        name="siem", type="syslog", address=f"tcp://127.0.0.1:{port}", hostname="sealtrail-01", batch_size=7, **FAST
    )
    group = ForwarderGroup(data_dir.path, [config])
    group.start(until_end=True, max_failures=20)
    assert group.wait(60) and group.results == {"siem": True}

    lines = _lines(out, 31)
    assert len(lines) == 31
    store = data_dir.store()
    try:
        expected = {index: entry for index, entry in store.entries(0, 31)}
    finally:
        store.close()
    for line in lines:
        hostname, app, procid, msgid, pri, structured, message = line.split("|", 6)
        assert (hostname, app, procid) == ("sealtrail-01", "sealtrail", str(os.getpid()))
        assert structured.startswith('[sealtrail@32473 index="')
        index = int(structured.split('index="')[1].split('"')[0])
        cef = parse_cef(message)
        assert cef.extension["cn1"] == str(index) and cef.signature_id == msgid
        assert f'leafHash="{cef.extension["cs1"]}"' in structured
        assert 8 * 13 <= int(pri) < 8 * 14, "facility 13 (log audit)"
        assert index in expected
        expected.pop(index)
    assert not expected, "every index arrived once"
    (last,) = [parse_cef(line.split("|", 6)[6]) for line in lines if 'index="30"' in line]
    assert last.extension["act"] == 'secret.read|by=admin\\ops\n"quoted"]'


# --- TLS (RFC 5425) -------------------------------------------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _TlsReceiver:
    """Accepts TLS connections and decodes octet-counted frames; drops the first connection after `drop_after`."""

    def __init__(self, cert: Path, key: Path, drop_after: int) -> None:
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.frames: list[bytes] = []
        self.connections = 0
        self.dropped = threading.Event()
        self.drop_after = drop_after
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            try:
                with self.context.wrap_socket(raw, server_side=True) as conn:
                    decoder = FrameDecoder()
                    while True:
                        data = conn.recv(65536)
                        if not data:
                            break
                        self.frames.extend(decoder.feed(data))
                        if self.connections == 1 and len(self.frames) >= self.drop_after:
                            break  # the receiver restarts: the client must reconnect
            except (ssl.SSLError, OSError):
                raw.close()  # a client that refused our certificate
            if len(self.frames) >= self.drop_after:
                self.dropped.set()

    def close(self) -> None:
        self.listener.close()


def test_tls_delivery_verifies_the_server_and_survives_a_dropped_connection(
    data_dir: DataDir, log: Log, tmp_path: Path
) -> None:
    cert, key = _certificate(tmp_path)
    receiver = _TlsReceiver(cert, key, drop_after=5)
    try:
        log.append(devsecops_events(0, 5, "tls"))
        config = ForwardConfig(
            name="tls", type="syslog", address=f"tls://127.0.0.1:{receiver.port}", server_name="localhost",
            ca_file=str(cert), batch_size=5, **FAST,
        )  # fmt: skip
        group = ForwarderGroup(data_dir.path, [config])
        group.start(max_failures=50)
        assert receiver.dropped.wait(30), "the first five frames arrived and the receiver hung up"
        deadline = time.monotonic() + 30
        for start in (5, 10, 15):  # three more batches over the new connection
            log.append(devsecops_events(start, 5, "tls"))
            while len(receiver.frames) < start + 5 and time.monotonic() < deadline:
                time.sleep(0.02)
        group.stop()
    finally:
        receiver.close()
    indices = sorted(int(dict(parse_message(f).structured_data[0][1])["index"]) for f in receiver.frames)
    assert indices == list(range(20)), indices
    assert receiver.connections == 2, "one reconnect after the hang-up, none for TLS 1.3 session tickets"


def test_tls_refuses_a_server_it_cannot_verify(data_dir: DataDir, log: Log, tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    receiver = _TlsReceiver(cert, key, drop_after=10**6)
    try:
        log.append(devsecops_events(0, 2, "tls-bad"))
        config = ForwardConfig(name="tls", type="syslog", address=f"tls://127.0.0.1:{receiver.port}", **FAST)
        group = ForwarderGroup(data_dir.path, [config])
        group.start(until_end=True, max_failures=2)
        assert group.wait(30)
    finally:
        receiver.close()
    assert group.results == {"tls": False} and receiver.frames == []
    assert "CERTIFICATE_VERIFY_FAILED" in (group.statuses()[0].last_error or "")
