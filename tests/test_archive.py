"""Archiving inside `serve`: the [archive] table, the background Archiver, its status and metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from _s3 import S3Server
from _support import devsecops_events, rfc6962_leaf, rfc6962_root, stored_entries
from sealtrail.archive import Archiver, ArchiveSettings
from sealtrail.datadir import DataDir
from sealtrail.fetch import open_source
from sealtrail.note import parse_verifier
from sealtrail.objectstore import DirectorySink
from sealtrail.publish import Publisher
from sealtrail.server import Settings, create_app, load_settings
from sealtrail.server.services import Services
from sealtrail.verify import verify_tiles_log

# --- [archive] in sealtrail.toml -------------------------------------------------------------------


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sealtrail.toml"
    path.write_text(text)
    return path


def test_archive_table_is_parsed(tmp_path: Path) -> None:
    path = _toml(
        tmp_path,
        '[server]\nport = 9000\n\n[archive]\nurl = "s3://audit-archive/prod"\nretention_days = 2555\n'
        'endpoint_url = "https://minio.example:9000"\ninterval = 5\n',
    )
    settings = load_settings(path)
    assert settings.port == 9000
    assert settings.archive == ArchiveSettings(
        "s3://audit-archive/prod", retention_days=2555, endpoint_url="https://minio.example:9000", interval=5.0
    )
    assert load_settings(_toml(tmp_path, "[server]\nport = 9000\n")).archive is None


@pytest.mark.parametrize(
    "text, message",
    [
        ('[archive]\nurl = "s3://audit-archive/x"\nretention = 3\n', "unknown setting archive.retention"),
        ("[archive]\nretention_days = 3\n", "archive.url is required"),
        ('[archive]\nurl = "https://audit-archive/x"\n', "s3://"),
        ('[archive]\nurl = "s3://audit-archive/x"\nretention_days = 0\n', "retention_days"),
        ('[archive]\nurl = "s3://audit-archive/x"\nretention_days = 1.5\n', "retention_days"),
        ('[archive]\nurl = "s3://audit-archive/x"\ninterval = 0\n', "interval"),
        ('[archive]\nurl = "s3://audit-archive/x"\nendpoint_url = "ftp://x"\n', "endpoint_url"),
        ('[archive]\nurl = "s3://audit-archive/x"\nallow_no_lock = "yes"\n', "allow_no_lock"),
        ('archive = "s3://audit-archive/x"\n', "archive must be a table"),
        ('[server]\narchive = "s3://audit-archive/x"\n', "unknown setting server.archive"),
    ],
)
def test_bad_archive_settings_name_the_file(text: str, message: str, tmp_path: Path) -> None:
    path = _toml(tmp_path, text)
    with pytest.raises(ValueError, match=message) as caught:
        load_settings(path)
    assert str(caught.value).startswith(f"{path}: ")


# --- the Archiver's rounds and status --------------------------------------------------------------


class _UnreachableSink(DirectorySink):
    """A sink whose network is down until `up` is set."""

    up = False

    def put_once(self, path: str, data: bytes) -> bool:
        if not self.up:
            raise OSError("Could not connect to the endpoint URL")
        return super().put_once(path, data)


def test_a_failed_round_is_kept_in_the_status_and_the_next_one_retries(data_dir: DataDir, tmp_path: Path) -> None:
    with data_dir.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(0, 50, "archiver"))
    store = data_dir.store()
    sink = _UnreachableSink(tmp_path / "archive")
    archiver = Archiver(Publisher(store, sink, checkpoint_history=True), interval=60)
    try:
        assert archiver.status().ok is None
        assert archiver.run_once() is None
        failed = archiver.status()
        assert (failed.ok, failed.published_size, failed.failures) == (False, None, 1)
        assert failed.last_error == "Could not connect to the endpoint URL"
        sink.up = True
        result = archiver.run_once()
        assert result is not None and result.size == 50
        status = archiver.status()
        assert (status.ok, status.published_size, status.rounds, status.failures) == (True, 50, 2, 1)
        assert status.objects_written == result.written
        assert status.last_error == failed.last_error  # the last error stays visible, with its time
        metrics: dict[str, Callable[[], float]] = {}
        archiver.provide_metrics(lambda name, provider: metrics.__setitem__(name, provider))
        assert metrics["archive_size"]() == 50.0
        assert metrics["archive_ok"]() == 1.0
        assert status.last_success_at is not None
        assert metrics["archive_last_success_timestamp_seconds"]() == status.last_success_at
    finally:
        archiver.close(final=False)
        store.close()


# --- inside serve, against SeaweedFS ----------------------------------------------------------------


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    for name, value in s3_server.env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return s3_server


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling another thread's progress: no event exposed for it


def _wait_published(archiver: Archiver, size: int) -> None:
    _wait(lambda: archiver.status().published_size == size, f"the archive to reach size {size}")


def _verified_size(url: str, directory: DataDir) -> int:
    verifier = parse_verifier(directory.vkey.read_text().strip())
    source = open_source(url)
    try:
        checkpoint = verify_tiles_log(
            source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints()
        )
    finally:
        source.close()
    leaves = [rfc6962_leaf(entry) for _, entry in stored_entries(directory.db)]
    assert checkpoint.root == rfc6962_root(leaves[: checkpoint.size])
    return checkpoint.size


def test_serve_archives_each_new_checkpoint_and_the_last_one_at_shutdown(s3_env: S3Server, data_dir: DataDir) -> None:
    url = f"s3://{s3_env.bucket}/serve-{uuid.uuid4().hex[:10]}"
    settings = Settings(
        checkpoint_interval=0.05,
        verify_interval=0,
        public_metrics=True,
        archive=ArchiveSettings(url, retention_days=1, interval=0.1, workers=2),
    )
    with TestClient(create_app(data_dir, settings)) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        archiver = services.archiver
        assert archiver is not None
        for start, count in ((0, 40), (40, 300)):
            services.log.append(devsecops_events(start, count, "serve"))
            size = services.log.sign_now()[0]
            _wait_published(archiver, size)
            assert _verified_size(url, data_dir) == size
        metrics = client.get("/metrics").text
        assert "sealtrail_archive_size 340.0" in metrics
        assert "sealtrail_archive_ok 1.0" in metrics
        services.log.append(devsecops_events(340, 5, "serve"))  # signed by log.close() at shutdown
    assert _verified_size(url, data_dir) == 345
    assert archiver.status().ok is True


def test_serve_keeps_running_when_the_archive_is_not_worm(s3_env: S3Server, data_dir: DataDir) -> None:
    url = f"s3://{s3_env.plain_bucket}/serve-{uuid.uuid4().hex[:10]}"
    settings = Settings(verify_interval=0, archive=ArchiveSettings(url, interval=0.1))
    with TestClient(create_app(data_dir, settings)) as client:
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        archiver = services.archiver
        assert archiver is not None
        _wait(lambda: archiver.status().failures >= 2, "two failed rounds")
        status = archiver.status()
        assert status.ok is False and status.published_size is None
        assert status.last_error is not None and "no Object Lock" in status.last_error
        assert client.get("/healthz").status_code == 200
        services.log.append(devsecops_events(0, 3, "not-worm"))
    s3 = s3_env.client()
    bucket, _, prefix = url[len("s3://") :].partition("/")
    assert s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("KeyCount") == 0
    s3.close()
