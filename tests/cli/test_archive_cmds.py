"""`sealtrail archive s3://...` and `sealtrail tiles verify s3://...`, run for real against SeaweedFS."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from _s3 import S3Server
from _support import ORIGIN, devsecops_events, one_error_line, rfc6962_leaf, rfc6962_root, stored_entries
from conftest import CliResult, run_cli
from sealtrail.checkpoint import parse_checkpoint
from sealtrail.datadir import DataDir
from sealtrail.note import parse_note

Cli = Callable[..., CliResult]


def _url(server: S3Server, tag: str, bucket: str | None = None) -> str:
    return f"s3://{bucket or server.bucket}/{tag}-{uuid.uuid4().hex[:10]}"


def _append(directory: DataDir, start: int, count: int) -> int:
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(start, count, "cli-archive"))
    return start + count


def _root_b64(directory: DataDir, size: int) -> str:
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(directory.db)][:size]
    return base64.b64encode(rfc6962_root(leaves)).decode()


def _archive(server: S3Server, *args: str | Path) -> CliResult:
    return run_cli("archive", *args, env=server.env())


def _verify(server: S3Server, url: str, directory: DataDir, *args: str | Path) -> CliResult:
    return run_cli("tiles", "verify", url, "--vkey", directory.vkey, *args, env=server.env())


def _archived_size(server: S3Server, url: str) -> int | None:
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = server.client()
    try:
        note = client.get_object(Bucket=bucket, Key=f"{prefix}/checkpoint")["Body"].read()
    except client.exceptions.NoSuchKey:
        return None
    finally:
        client.close()
    return parse_checkpoint(parse_note(note)[0]).size


@pytest.mark.slow
def test_archive_in_growth_steps_then_tiles_verify(s3_server: S3Server, data_dir: DataDir, tmp_path: Path) -> None:
    url = _url(s3_server, "cli")
    state = tmp_path / "state.json"
    size = 0
    for count in (3, 253, 300):  # a partial tile; the first full tile (256); a level-1 tile (556)
        size = _append(data_dir, size, count)
        result = _archive(s3_server, url, "--dir", data_dir.path, "--retention-days", "1")
        assert result.code == 0, result.stderr
        assert result.text.startswith(f"archived size {size} to {url}/: ")
        verified = _verify(s3_server, url, data_dir, "--state", state)
        assert verified.code == 0, verified.stderr
        assert verified.text.strip() == f"ok: {ORIGIN} size {size} root {_root_b64(data_dir, size)} verified"
    again = _archive(s3_server, url, "--dir", data_dir.path)
    assert again.code == 0, again.stderr
    assert again.text.strip() == f"{url}/ is up to date at size {size}"
    full = _archive(s3_server, url, "--dir", data_dir.path, "--full")
    assert full.code == 0, full.stderr
    # everything was there already: only the checkpoint is written again (a new locked version)
    assert re.fullmatch(
        rf"archived size {size} to {re.escape(url)}/: objects written 1, already there \d+", full.text.strip()
    )


def test_tiles_verify_s3_rejects_a_changed_object(s3_server: S3Server, data_dir: DataDir) -> None:
    url = _url(s3_server, "cli-tamper")
    _append(data_dir, 0, 40)
    assert _archive(s3_server, url, "--dir", data_dir.path).code == 0
    bucket, _, prefix = url[len("s3://") :].partition("/")
    client = s3_server.client()
    key = f"{prefix}/tile/entries/000.p/40"
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[7] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))  # a new version on top of the locked one
    client.close()
    result = _verify(s3_server, url, data_dir)
    assert result.code == 1
    assert "NOT intact" in one_error_line(result.stderr)


def test_a_bucket_without_object_lock_is_refused(s3_server: S3Server, data_dir: DataDir) -> None:
    _append(data_dir, 0, 5)
    url = _url(s3_server, "cli-plain", s3_server.plain_bucket)
    result = _archive(s3_server, url, "--dir", data_dir.path)
    assert result.code == 1
    assert "no Object Lock" in one_error_line(result.stderr)
    assert _archived_size(s3_server, url) is None
    allowed = _archive(s3_server, url, "--dir", data_dir.path, "--allow-no-lock")
    assert allowed.code == 0, allowed.stderr
    assert "NOT write-once" in allowed.stderr
    assert _verify(s3_server, url, data_dir).code == 0


def test_create_bucket(s3_server: S3Server, data_dir: DataDir) -> None:
    _append(data_dir, 0, 5)
    bucket = f"cli-new-{uuid.uuid4().hex[:10]}"
    missing = _archive(s3_server, f"s3://{bucket}/log", "--dir", data_dir.path)
    assert missing.code == 1
    assert "does not exist" in one_error_line(missing.stderr)
    created = _archive(s3_server, f"s3://{bucket}/log", "--dir", data_dir.path, "--create-bucket")
    assert created.code == 0, created.stderr
    assert f"created bucket {bucket} with Object Lock enabled" in created.stderr
    client = s3_server.client()
    assert client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]["ObjectLockEnabled"] == (
        "Enabled"
    )
    client.close()
    assert _verify(s3_server, f"s3://{bucket}/log", data_dir).code == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["not-a-url"], "s3://"),
        (["s3://Bad_Bucket/x"], "bucket name"),
        (["s3://fine-bucket/x", "--retention-days", "0"], "retention-days"),
    ],
)
def test_bad_arguments(args: list[str], message: str, s3_server: S3Server, data_dir: DataDir) -> None:
    result = _archive(s3_server, *args, "--dir", data_dir.path)
    assert result.code != 0
    assert message in result.stderr


def test_missing_log_is_one_line(s3_server: S3Server, tmp_path: Path) -> None:
    result = _archive(s3_server, _url(s3_server, "nolog"), "--dir", tmp_path / "nowhere")
    assert result.code == 1
    one_error_line(result.stderr)


def _wait_for_size(server: S3Server, url: str, size: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _archived_size(server, url) == size:
            return
        if proc.poll() is not None:
            pytest.fail(f"archive --follow exited with {proc.returncode}")
        time.sleep(0.1)  # polling the bucket: no event to wait on
    proc.kill()
    pytest.fail(f"the archive did not reach size {size} within {timeout}s")


def test_follow_publishes_new_checkpoints_until_interrupted(s3_server: S3Server, data_dir: DataDir) -> None:
    url = _url(s3_server, "cli-follow")
    size = _append(data_dir, 0, 30)
    environment = {k: v for k, v in os.environ.items() if k != "SEALTRAIL_DIR"}
    for name, value in s3_server.env().items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sealtrail",
            "archive",
            url,
            "--dir",
            str(data_dir.path),
            "--follow",
            "--interval",
            "0.2",
        ],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_size(s3_server, url, size, proc)
        size = _append(data_dir, size, 250)
        _wait_for_size(s3_server, url, size, proc)
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr.decode()
    lines = stdout.decode().splitlines()
    assert lines[0].startswith(f"archived size 30 to {url}/")
    assert lines[-1].startswith(f"archived size {size} to {url}/")
    result = _verify(s3_server, url, data_dir)
    assert result.code == 0, result.stderr
    assert f"size {size} root {_root_b64(data_dir, size)}" in result.text
