"""`serve` with an ML-DSA-44 log key and [timestamping]: checkpoints carry both signatures, and their
RFC 3161 time-stamps are served at GET /v1/checkpoint/{size}/timestamp."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _support import devsecops_event
from _tsa_fixtures import OpensslTsa, Pki, openssl_verify, pki, tsa  # noqa: F401  (fixtures)
from sealtrail.checkpoint import open_checkpoint
from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.note import parse_note
from sealtrail.server import Settings, create_app
from sealtrail.timestamp import REPLY_MEDIA_TYPE, load_trust, verify_timestamp
from sealtrail.timestamping import TimestampingSettings

ORIGIN = "api.sealtrail.test/pq"


@dataclass
class Served:
    client: TestClient
    directory: DataDir
    ingest: str
    read: str


@pytest.fixture
def served(tmp_path: Path, tsa: OpensslTsa, pki: Pki) -> Iterator[Served]:  # noqa: F811
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN, pq=True)
    credentials = Credentials(directory.credentials)
    ingest, _ = credentials.create_token("ingest", {"ingest"})
    read, _ = credentials.create_token("reader", {"read"})
    settings = Settings(
        checkpoint_interval=0.05,
        verify_interval=0,
        timestamping=TimestampingSettings(tsa.url, pki.ca_cert, retry_max=0.2),
    )
    with TestClient(create_app(directory, settings)) as client:
        yield Served(client, directory, ingest, read)


def _stamped(served: Served, size: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = served.client.get("/v1/timestamping", headers={"Authorization": f"Bearer {served.read}"}).json()
        if status["latest"] is not None and status["latest"]["size"] >= size:
            return
        time.sleep(0.05)
    raise AssertionError(f"no time-stamp on checkpoint {size} within {timeout}s")


def test_served_checkpoints_carry_both_signatures_and_get_time_stamps(
    served: Served,
    pki: Pki,  # noqa: F811
    tmp_path: Path,
) -> None:
    auth = {"Authorization": f"Bearer {served.ingest}"}
    events = [devsecops_event(0), devsecops_event(1)]
    posted = served.client.post("/v1/events?wait=checkpoint", json=events, headers=auth)
    assert posted.status_code == 200, posted.text
    read = {"Authorization": f"Bearer {served.read}"}
    note = served.client.get("/v1/checkpoint", headers=read).content
    pq = served.directory.mldsa_verifier()
    assert pq is not None
    signed = open_checkpoint(note, ORIGIN, [served.directory.verifier()], required=[pq])
    size = signed.checkpoint.size
    assert size == 2

    _stamped(served, size)
    response = served.client.get(f"/v1/checkpoint/{size}/timestamp", headers=read)
    assert response.status_code == 200
    assert response.headers["content-type"] == REPLY_MEDIA_TYPE
    text, _ = parse_note(note)
    info = verify_timestamp(response.content, text, load_trust(pki.ca_cert))
    assert info.tsa == "CN=Test TSA"
    checked = openssl_verify(response.content, text.encode(), pki.ca_cert, tmp_path)
    assert checked.returncode == 0, checked.stderr

    status = served.client.get("/v1/timestamping", headers=read).json()
    assert status["ok"] is True and status["url"].endswith("/tsr")
    metrics = served.client.get("/metrics", headers=read).text
    assert "sealtrail_timestamp_ok 1.0" in metrics
    assert f"sealtrail_timestamp_size {float(size)}" in metrics


def test_timestamp_refusals(served: Served) -> None:
    missing = served.client.get("/v1/checkpoint/123456/timestamp", headers={"Authorization": f"Bearer {served.read}"})
    assert missing.status_code == 404
    assert "no time-stamp" in missing.json()["error"]
    assert served.client.get("/v1/checkpoint/0/timestamp").status_code == 401
    bad = served.client.get("/v1/checkpoint/-1/timestamp", headers={"Authorization": f"Bearer {served.read}"})
    assert bad.status_code in (400, 422)
    not_read = served.client.get("/v1/checkpoint/0/timestamp", headers={"Authorization": f"Bearer {served.ingest}"})
    assert not_read.status_code == 403
