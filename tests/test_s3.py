"""The write-once S3 archive (sealtrail.s3) against a real S3 server that enforces Object Lock (SeaweedFS).

The attacker here holds the archive's own credentials. What S3 Object Lock
(COMPLIANCE) refuses him: deleting any archived version, shortening its
retention or weakening its mode, with or without BypassGovernanceRetention.
What it cannot refuse, by design of S3 versioning: adding a newer version or a
delete marker on top. Those leave the locked original in place and make
`tiles verify` (which reads what every plain reader gets: the current version)
fail; `archive --full` puts back what a delete marker hid.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from botocore.exceptions import ClientError

from _s3 import S3Server
from _support import devsecops_events, rfc6962_leaf, rfc6962_root, stored_entries
from sealtrail.checkpoint import Checkpoint
from sealtrail.datadir import DataDir
from sealtrail.fetch import S3Source, open_source
from sealtrail.note import parse_verifier
from sealtrail.objectstore import WriteOnceError
from sealtrail.publish import Publisher
from sealtrail.s3 import S3Error, S3Location, S3Sink
from sealtrail.verify import AuditError, verify_tiles_log

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RETENTION_DAYS = 2


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's endpoint and credentials in the usual AWS variables (as a user would configure them)."""
    for name, value in s3_server.env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    return s3_server


def _url(server: S3Server, tag: str, bucket: str | None = None) -> str:
    return f"s3://{bucket or server.bucket}/{tag}-{uuid.uuid4().hex[:10]}"


def _verify(url: str, directory: DataDir) -> Checkpoint:
    verifier = parse_verifier(directory.vkey.read_text().strip())
    source = open_source(url)
    try:
        return verify_tiles_log(source.fetch, verifier.name, verifier, extra_checkpoints=source.archived_checkpoints())
    finally:
        source.close()


def _log_root(directory: DataDir, size: int) -> bytes:
    return rfc6962_root([rfc6962_leaf(entry) for _, entry in stored_entries(directory.db)][:size])


def _append(directory: DataDir, start: int, count: int) -> int:
    with directory.open_log(checkpoint_interval=0) as log:
        log.append(devsecops_events(start, count, "s3"))
    return start + count


def _versions(client: S3Client, bucket: str, key: str) -> list[dict[str, Any]]:
    listed = client.list_object_versions(Bucket=bucket, Prefix=key)
    return [dict(v) for v in listed.get("Versions", []) if v["Key"] == key]


def _refused(call: Any, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call(**kwargs)
    return str(caught.value.response["Error"]["Code"])


@dataclass
class Archive:
    server: S3Server
    url: str
    location: S3Location
    directory: DataDir
    client: S3Client
    size: int

    def key(self, path: str) -> str:
        return self.location.key(path)


@pytest.fixture
def archive(s3_env: S3Server, data_dir: DataDir) -> Iterator[Archive]:
    """A log of 300 entries archived in two runs (partial tiles, then full ones), in a fresh prefix."""
    url = _url(s3_env, "attack")
    size = _append(data_dir, 0, 100)
    store = data_dir.store()
    sink = S3Sink(url, retention_days=RETENTION_DAYS)
    try:
        publisher = Publisher(store, sink, checkpoint_history=True)
        publisher.publish()
        size = _append(data_dir, size, 200)
        publisher.publish()
    finally:
        sink.close()
        store.close()
    client = s3_env.client()
    yield Archive(s3_env, url, S3Location.parse(url), data_dir, client, size)
    client.close()


# --- publishing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, bucket, prefix",
    [
        ("s3://audit-archive", "audit-archive", ""),
        ("s3://audit-archive/", "audit-archive", ""),
        ("s3://audit-archive/prod/log1", "audit-archive", "prod/log1/"),
        ("s3://audit.archive-2/prod/", "audit.archive-2", "prod/"),
    ],
)
def test_location_parses(url: str, bucket: str, prefix: str) -> None:
    location = S3Location.parse(url)
    assert (location.bucket, location.prefix) == (bucket, prefix)
    assert location.key("tile/0/000") == prefix + "tile/0/000"


@pytest.mark.parametrize(
    "url",
    ["audit-archive/x", "s3://", "s3://AB/x", "s3://a/x", "s3://a..b/x", "s3://bucket/../x", "s3://bucket/a//b",
     "s3://bucket/a?b", "s3://bucket/a b"],
)  # fmt: skip
def test_bad_locations_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        S3Location.parse(url)


def test_archive_grows_and_verifies_at_every_step(s3_env: S3Server, data_dir: DataDir) -> None:
    url = _url(s3_env, "growth")
    location = S3Location.parse(url)
    client = s3_env.client()
    store = data_dir.store()
    sink = S3Sink(url, retention_days=RETENTION_DAYS)
    size = 0
    try:
        publisher = Publisher(store, sink, checkpoint_history=True, workers=4)
        for count in (5, 100, 151, 300, 1):  # partial tiles, the first full tile, a level-1 tile, one more
            size = _append(data_dir, size, count)
            result = publisher.publish()
            assert (result.size, result.present) == (size, 0)
            checkpoint = _verify(url, data_dir)
            assert (checkpoint.size, checkpoint.root) == (size, _log_root(data_dir, size))
        sizes = [s for s, _ in store.checkpoints()]
        notes = dict(store.checkpoints())
    finally:
        sink.close()
        store.close()

    listed = client.list_objects_v2(Bucket=location.bucket, Prefix=location.prefix)
    keys = {item["Key"][len(location.prefix) :] for item in listed.get("Contents", [])}
    assert {f"checkpoint.{s}" for s in sizes} | {"checkpoint", "tile/0/001", "tile/1/000.p/2"} <= keys
    assert {"tile/0/000.p/5", "tile/entries/000.p/105"} <= keys  # partial tiles of older checkpoints stay
    soon = datetime.now(UTC) + timedelta(days=RETENTION_DAYS)
    for name in sorted(keys):
        head = client.head_object(Bucket=location.bucket, Key=location.key(name))
        assert head["ObjectLockMode"] == "COMPLIANCE", name
        assert abs(head["ObjectLockRetainUntilDate"] - soon) < timedelta(minutes=10), name
    # every published checkpoint is a locked version of `checkpoint`, and a write-once checkpoint.<size>
    versions = _versions(client, location.bucket, location.key("checkpoint"))
    assert len(versions) == 5
    for version in versions:
        got = client.get_object(Bucket=location.bucket, Key=location.key("checkpoint"), VersionId=version["VersionId"])
        assert got["ObjectLockMode"] == "COMPLIANCE"
        assert got["Body"].read() in notes.values()
    for s in sizes:
        body = client.get_object(Bucket=location.bucket, Key=location.key(f"checkpoint.{s}"))["Body"].read()
        assert body == notes[s]
    client.close()


def test_a_new_publisher_uploads_only_what_is_new(archive: Archive) -> None:
    size = _append(archive.directory, archive.size, 10)
    store = archive.directory.store()
    sink = S3Sink(archive.url, retention_days=RETENTION_DAYS)
    try:
        plan = Publisher(store, sink, checkpoint_history=True).plan()
        assert (plan.after, plan.size) == (archive.size, size)
        assert {ref.path for ref in plan.objects} == {"tile/0/001.p/54", "tile/entries/001.p/54"}
        result = Publisher(store, sink, checkpoint_history=True).execute(plan)
    finally:
        sink.close()
        store.close()
    assert (result.written, result.present) == (4, 0)  # two tiles, checkpoint.310, checkpoint
    assert _verify(archive.url, archive.directory).size == size


def test_a_bucket_without_object_lock_is_refused_unless_allowed(s3_env: S3Server, data_dir: DataDir) -> None:
    _append(data_dir, 0, 20)
    url = _url(s3_env, "plain", s3_env.plain_bucket)
    location = S3Location.parse(url)
    client = s3_env.client()
    store = data_dir.store()
    try:
        sink = S3Sink(url)
        with pytest.raises(S3Error, match="no Object Lock") as caught:
            Publisher(store, sink).publish()
        assert "\n" not in str(caught.value)
        assert client.list_objects_v2(Bucket=location.bucket, Prefix=location.prefix).get("KeyCount") == 0
        sink.close()
        sink = S3Sink(url, allow_no_lock=True)
        assert sink.check_bucket() is False
        Publisher(store, sink).publish()
        sink.close()
    finally:
        store.close()
    assert "ObjectLockMode" not in client.head_object(Bucket=location.bucket, Key=location.key("tile/0/000.p/20"))
    assert _verify(url, data_dir).size == 20
    client.close()


def test_missing_bucket_and_create_bucket(s3_env: S3Server) -> None:
    bucket = f"created-{uuid.uuid4().hex[:12]}"
    sink = S3Sink(f"s3://{bucket}/log")
    try:
        with pytest.raises(S3Error, match="does not exist"):
            sink.check_bucket()
        assert sink.create_bucket() is True
        assert sink.create_bucket() is False
        assert sink.check_bucket() is True
        assert sink.put_once("tile/0/000.p/1", b"\x00" * 32) is True
    finally:
        sink.close()
    client = s3_env.client()
    config = client.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    assert config["ObjectLockEnabled"] == "Enabled"
    client.close()


def test_wrong_credentials_are_one_line(s3_env: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    sink = S3Sink(_url(s3_env, "creds"))
    try:
        with pytest.raises(S3Error) as caught:
            sink.put_once("tile/0/000.p/1", b"\x01" * 32)
    finally:
        sink.close()
    message = str(caught.value)
    assert "\n" not in message and "SignatureDoesNotMatch" in message
    assert "not-the-secret" not in message


def test_s3_source_reads_only_tile_paths(archive: Archive) -> None:
    source = S3Source(archive.url)
    try:
        with pytest.raises(ValueError):
            source.fetch("../other/checkpoint")
        assert source.fetch("tile/0/999") is None
        assert source.fetch("checkpoint") is not None
        assert len(source.archived_checkpoints()) == 3  # sizes 0, 100, 300
    finally:
        source.close()


# --- the attacker, with the archive's own credentials --------------------------------------------

TARGETS = ["tile/0/000", "tile/entries/000", "tile/0/000.p/100", "checkpoint.300", "checkpoint"]


@pytest.mark.parametrize("path", TARGETS)
def test_deleting_an_archived_version_is_refused(archive: Archive, path: str) -> None:
    bucket, key, client = archive.location.bucket, archive.key(path), archive.client
    versions = _versions(client, bucket, key)
    assert versions
    for version in versions:
        vid = version["VersionId"]
        original = client.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read()
        assert _refused(client.delete_object, Bucket=bucket, Key=key, VersionId=vid) == "AccessDenied"
        assert (
            _refused(client.delete_object, Bucket=bucket, Key=key, VersionId=vid, BypassGovernanceRetention=True)
            == "AccessDenied"
        )
        batch = client.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": key, "VersionId": vid}]}, BypassGovernanceRetention=True
        )
        assert [error["Code"] for error in batch.get("Errors", [])] == ["AccessDenied"]
        assert not batch.get("Deleted")
        assert client.get_object(Bucket=bucket, Key=key, VersionId=vid)["Body"].read() == original
    assert _versions(client, bucket, key) == versions
    assert _verify(archive.url, archive.directory).size == archive.size


@pytest.mark.parametrize("path", ["tile/entries/001.p/44", "checkpoint"])
def test_shortening_or_weakening_retention_is_refused(archive: Archive, path: str) -> None:
    bucket, key, client = archive.location.bucket, archive.key(path), archive.client
    vid = _versions(client, bucket, key)[0]["VersionId"]
    before = client.get_object_retention(Bucket=bucket, Key=key, VersionId=vid)["Retention"]
    assert before["Mode"] == "COMPLIANCE"
    sooner = datetime.now(UTC) + timedelta(minutes=5)
    for retention, bypass in (
        ({"Mode": "COMPLIANCE", "RetainUntilDate": sooner}, False),
        ({"Mode": "COMPLIANCE", "RetainUntilDate": sooner}, True),
        ({"Mode": "GOVERNANCE", "RetainUntilDate": before["RetainUntilDate"]}, True),
    ):
        code = _refused(
            client.put_object_retention,
            Bucket=bucket,
            Key=key,
            VersionId=vid,
            Retention=retention,
            BypassGovernanceRetention=bypass,
        )
        assert code == "AccessDenied"
    assert client.get_object_retention(Bucket=bucket, Key=key, VersionId=vid)["Retention"] == before
    # the same call is accepted when it extends the retention: the refusals above are the lock, not the API
    later = before["RetainUntilDate"] + timedelta(days=1)
    client.put_object_retention(
        Bucket=bucket, Key=key, VersionId=vid, Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later}
    )
    after = client.get_object_retention(Bucket=bucket, Key=key, VersionId=vid)["Retention"]
    assert abs(after["RetainUntilDate"] - later) < timedelta(seconds=1)


@pytest.mark.parametrize("conditional", [True, False])
def test_put_once_refuses_to_overwrite(archive: Archive, conditional: bool) -> None:
    bucket, client = archive.location.bucket, archive.client
    sink = S3Sink(archive.url, retention_days=RETENTION_DAYS, conditional_writes=conditional)
    try:
        for path in ("tile/0/000", "tile/entries/001.p/44", "checkpoint.300"):
            key = archive.key(path)
            versions = _versions(client, bucket, key)
            original = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            changed = bytearray(original)
            changed[len(changed) // 2] ^= 0x01
            with pytest.raises(WriteOnceError, match="other content"):
                sink.put_once(path, bytes(changed))
            assert sink.put_once(path, original) is False
            assert _versions(client, bucket, key) == versions
            assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == original
    finally:
        sink.close()


@pytest.mark.parametrize("path", ["tile/0/000", "tile/entries/001.p/44", "tile/entries/000.p/100"])
def test_a_changed_version_on_top_is_detected_and_the_original_survives(archive: Archive, path: str) -> None:
    bucket, key, client = archive.location.bucket, archive.key(path), archive.client
    [original] = _versions(client, bucket, key)
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 2] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))  # S3 versioning lets any writer add a version
    assert client.get_object(Bucket=bucket, Key=key)["Body"].read() == bytes(data)
    with pytest.raises(AuditError):
        _verify(archive.url, archive.directory)
    kept = client.head_object(Bucket=bucket, Key=key, VersionId=original["VersionId"])
    assert kept["ObjectLockMode"] == "COMPLIANCE"
    assert kept["ETag"] == original["ETag"]
    store = archive.directory.store()
    sink = S3Sink(archive.url, retention_days=RETENTION_DAYS)
    try:
        with pytest.raises(WriteOnceError, match="other content"):
            Publisher(store, sink, checkpoint_history=True).publish(full=True)
    finally:
        sink.close()
        store.close()


def test_a_delete_marker_is_detected_and_archive_full_puts_the_object_back(archive: Archive) -> None:
    bucket, key, client = archive.location.bucket, archive.key("tile/entries/000"), archive.client
    marker = client.delete_object(Bucket=bucket, Key=key)  # without a VersionId: allowed, adds a delete marker
    assert marker.get("DeleteMarker") is True
    with pytest.raises(AuditError, match="missing"):
        _verify(archive.url, archive.directory)
    store = archive.directory.store()
    sink = S3Sink(archive.url, retention_days=RETENTION_DAYS)
    try:
        result = Publisher(store, sink, checkpoint_history=True).publish(full=True)
    finally:
        sink.close()
        store.close()
    assert result.written == 2  # the bundle, and the checkpoint again
    assert _verify(archive.url, archive.directory).size == archive.size


def test_rolling_the_checkpoint_back_is_detected(archive: Archive) -> None:
    bucket, client = archive.location.bucket, archive.client
    older = client.get_object(Bucket=bucket, Key=archive.key("checkpoint.100"))["Body"].read()
    client.put_object(Bucket=bucket, Key=archive.key("checkpoint"), Body=older)
    with pytest.raises(AuditError, match="roll"):
        _verify(archive.url, archive.directory)


def test_seaweedfs_filer_api_is_not_bound_by_object_lock_but_verify_sees_it(archive: Archive) -> None:
    """SeaweedFS enforces Object Lock in its S3 gateway only: its own filer HTTP API (unauthenticated by
    default) can delete a locked version. Whatever the storage lets through, `tiles verify` catches it."""
    bucket, key, client = archive.location.bucket, archive.key("tile/0/001.p/44"), archive.client
    [version] = _versions(client, bucket, key)
    response = httpx.delete(f"{archive.server.filer}/buckets/{bucket}/{key}.versions/v_{version['VersionId']}")
    deleted = not _versions(client, bucket, key)
    if deleted:
        assert response.status_code < 300
        with pytest.raises(AuditError):
            _verify(archive.url, archive.directory)
    else:
        assert _verify(archive.url, archive.directory).size == archive.size
