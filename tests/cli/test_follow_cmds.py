"""`sealtrail monitor` and `sealtrail mirror` as a user runs them: output lines, exit codes, evidence, --serve."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from _follow_fixtures import Branch
from _s3 import S3Server
from _support import ORIGIN, free_port, one_error_line
from conftest import CliResult, run_cli
from sealtrail.cosignature import CosignatureVerifier
from sealtrail.follow import CONFLICTING_FILE, EVIDENCE_FILE, TRUSTED_FILE
from sealtrail.note import generate_ed25519, open_note
from sealtrail.witness.protocol import AddCheckpointRequest

Cli = Callable[..., CliResult]


@pytest.fixture
def logs(tmp_path: Path) -> tuple[Branch, Branch]:
    """Log A (320 entries) and B, a fork of A at 300 signed by the same key (also 320 entries)."""
    a = Branch.create(tmp_path / "log-a", "a")
    a.grow(300)
    b = a.fork(tmp_path / "log-b", "b")
    a.grow(20)
    b.grow(20)
    return a, b


def test_monitor_once_reports_ok_then_a_fork_with_evidence(
    logs: tuple[Branch, Branch], tmp_path: Path, cli: Cli
) -> None:
    a, b = logs
    site, state, evidence = tmp_path / "site", tmp_path / "state.json", tmp_path / "evidence"
    a.publish(site)
    args = ("monitor", site, "--vkey", a.vkey, "--state", state, "--once", "--evidence-dir", evidence)
    first = cli(*args)
    assert first.code == 0, first.stderr
    assert first.text == "ok: size 320: verified, trusted on first use\n"
    assert json.loads(state.read_text())["size"] == 320
    b.publish(site, fresh=True)
    forked = cli(*args)
    assert forked.code == 3, forked.stderr
    assert forked.text.startswith("fork: two signed checkpoints of size 320") and "evidence in" in forked.text
    (written,) = evidence.iterdir()
    assert (written / TRUSTED_FILE).read_bytes() == a.note() and (written / CONFLICTING_FILE).read_bytes() == b.note()
    assert json.loads((written / EVIDENCE_FILE).read_text())["kind"] == "fork"


def test_monitor_continues_from_a_tiles_verify_state_file(
    logs: tuple[Branch, Branch], tmp_path: Path, cli: Cli
) -> None:
    a, _ = logs
    site, state = tmp_path / "site", tmp_path / "state.json"
    a.publish(site)
    assert cli("tiles", "verify", site, "--vkey", a.vkey, "--state", state).code == 0
    a.grow(5)
    a.publish(site)
    watched = cli("monitor", site, "--vkey", a.vkey, "--state", state, "--once")
    assert watched.text == "ok: size 325: verified, consistent with size 320\n", watched.stderr


def test_monitor_exit_codes_for_rollback_bad_signature_and_unreachable(
    logs: tuple[Branch, Branch], tmp_path: Path, cli: Cli
) -> None:
    a, _ = logs
    site, state = tmp_path / "site", tmp_path / "state.json"
    a.publish(site)
    assert cli("monitor", site, "--vkey", a.vkey, "--state", state, "--once").code == 0
    (site / "checkpoint").write_bytes(a.note(300))
    rollback = cli("monitor", site, "--vkey", a.vkey, "--state", state, "--once")
    assert rollback.code == 2 and rollback.text.startswith("rollback: ")
    assert json.loads(rollback.text.split("\n", 1)[1])["kind"] == "rollback"  # the evidence, without --evidence-dir
    (site / "checkpoint").write_bytes(a.note().replace(b"\n320\n", b"\n321\n"))
    bad = cli("monitor", site, "--vkey", a.vkey, "--state", state, "--once")
    assert bad.code == 2 and bad.text.startswith("bad-signature: ")
    gone = cli("monitor", "http://127.0.0.1:9/log", "--vkey", a.vkey, "--once")
    assert gone.code == 1 and gone.text.startswith("unavailable: ")
    refused = cli("monitor", site, "--vkey", "not-a-key", "--once")
    assert refused.code == 1 and "neither a vkey nor a file" in one_error_line(refused.stderr)


def test_monitor_keeps_polling_until_the_log_forks(logs: tuple[Branch, Branch], tmp_path: Path) -> None:
    a, b = logs
    site = tmp_path / "site"
    a.publish(site)
    proc = subprocess.Popen(
        [sys.executable, "-m", "sealtrail", "monitor", str(site), "--vkey", a.vkey, "--interval", "0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().decode().startswith("ok: size 320")
        a.grow(30)
        a.publish(site)
        assert proc.stdout.readline().decode().startswith("ok: size 350: verified, consistent with size 320")
        b.grow(100)
        b.publish(site, fresh=True)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    rest = proc.stdout.read().decode()
    assert code == 3 and rest.startswith("fork: checkpoint 420 does not extend checkpoint 350"), rest
    assert "ERROR" in proc.stderr.read().decode()  # the alarm is logged too


def test_mirror_once_copies_then_refuses_after_a_fork(logs: tuple[Branch, Branch], tmp_path: Path, cli: Cli) -> None:
    a, b = logs
    site, copy = tmp_path / "site", tmp_path / "copy"
    a.publish(site)
    first = cli("mirror", site, "--vkey", a.vkey, "--to", copy, "--once")
    assert first.code == 0, first.stderr
    assert first.text == "ok: size 320: mirrored and verified, extends size 0\n"
    verified = cli("tiles", "verify", copy, "--vkey", a.vkey)
    assert verified.code == 0, verified.stderr
    b.publish(site, fresh=True)
    forked = cli("mirror", site, "--vkey", a.vkey, "--to", copy, "--once")
    assert forked.code == 3 and forked.text.startswith("fork: "), forked.stderr
    assert (copy / "fork-evidence" / CONFLICTING_FILE).read_bytes() == b.note()
    again = cli("mirror", site, "--vkey", a.vkey, "--to", copy, "--once")
    assert again.code == 1 and "fork evidence" in one_error_line(again.stderr)
    bad = cli("mirror", site, "--vkey", a.vkey, "--to", "ftp://example.com/x", "--once")
    assert bad.code == 1 and "s3://" in one_error_line(bad.stderr)


def test_mirror_serve_follows_serves_cosigns_and_stops_following_on_a_fork(
    logs: tuple[Branch, Branch], tmp_path: Path, cli: Cli
) -> None:
    a, b = logs
    site, copy, key = tmp_path / "site", tmp_path / "copy", tmp_path / "witness.skey"
    a.publish(site)
    witness = generate_ed25519("mirror.sealtrail.test")
    key.write_text(witness.skey + "\n")
    key.chmod(0o644)
    refused = cli("mirror", site, "--vkey", a.vkey, "--to", copy, "--witness-key", key, "--once")
    assert refused.code == 1 and "chmod 600" in one_error_line(refused.stderr)
    key.chmod(0o600)
    url = f"http://127.0.0.1:{free_port()}"
    log = tmp_path / "mirror.log"
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "sealtrail", "mirror", str(site), "--vkey", a.vkey, "--to", str(copy)),
            *("--serve", url.removeprefix("http://"), "--interval", "0.1", "--witness-key", str(key)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/checkpoint", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        served = httpx.get(f"{url}/checkpoint").content
        cosigner = CosignatureVerifier(witness.name, witness.public_key)
        assert httpx.get(f"{url}/vkey").text == cosigner.vkey + "\n"
        assert [s.name for s in open_note(served, [cosigner]).verified] == [witness.name]
        verified = cli("tiles", "verify", url, "--vkey", a.vkey)
        assert verified.code == 0, verified.stderr
        a.grow(40)
        a.publish(site)
        while httpx.get(f"{url}/status").json()["verified_size"] != 360:
            assert time.monotonic() < deadline + 30, log.read_text()
            time.sleep(0.05)
        assert 'sealtrail_mirror_size{log="' + ORIGIN + '"} 360.0' in httpx.get(f"{url}/metrics").text
        served_after_growth = httpx.get(f"{url}/checkpoint").content
        request = AddCheckpointRequest(360, (), a.note()).encode()
        cosigned = httpx.post(f"{url}/add-checkpoint", content=request)
        assert cosigned.status_code == 200 and cosigned.text.startswith(f"— {witness.name} ")
        b.publish(site, fresh=True)  # the fork, at a size the mirror has passed: its own tiles prove it
        while not httpx.get(f"{url}/status").json()["fork_detected"]:
            assert time.monotonic() < deadline + 60, log.read_text()
            time.sleep(0.05)
        assert httpx.get(f"{url}/checkpoint").content == served_after_growth  # still serving the verified copy
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 3, log.read_text()
    finally:
        proc.kill()
    assert "mirrored and verified" in log.read_text() and "FORK" in log.read_text()


def test_mirror_to_s3_with_object_lock(logs: tuple[Branch, Branch], tmp_path: Path, s3_server: S3Server) -> None:
    a, b = logs
    site = tmp_path / "site"
    a.publish(site)
    url = f"s3://{s3_server.bucket}/mirror-{uuid.uuid4().hex[:10]}"
    env = s3_server.env()
    first = run_cli("mirror", site, "--vkey", a.vkey, "--to", url, "--once", env=env)
    assert first.code == 0, first.stderr
    a.grow(300)
    a.publish(site)
    grown = run_cli("mirror", site, "--vkey", a.vkey, "--to", url, "--once", env=env)
    assert grown.code == 0 and "extends size 320" in grown.text, grown.stderr
    verified = run_cli("tiles", "verify", url, "--vkey", a.vkey, env=env)
    assert verified.code == 0 and "size 620" in verified.text, verified.stderr
    b.grow(400)
    b.publish(site, fresh=True)
    forked = run_cli("mirror", site, "--vkey", a.vkey, "--to", url, "--once", env=env)
    assert forked.code == 3, forked.stderr
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = s3_server.client()
    try:
        kept = client.get_object(Bucket=bucket, Key=f"{prefix}/fork-evidence/{CONFLICTING_FILE}")["Body"].read()
    finally:
        client.close()
    assert kept == b.note()
    again = run_cli("mirror", site, "--vkey", a.vkey, "--to", url, "--once", env=env)
    assert again.code == 1 and "fork evidence" in one_error_line(again.stderr)
