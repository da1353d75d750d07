"""A c2sp.org/tlog-tiles log in S3: a write-once sink on Object Lock (COMPLIANCE), and reads.

Invariant of S3Sink: every object it writes is a new version locked in
COMPLIANCE mode until now + retention, which no credential (the root account
included) can delete or shorten before then. Tiles, entry bundles and
`checkpoint.<size>` copies are written once (If-None-Match: *; an existing
object must already hold the same bytes); only `checkpoint` gets new versions,
each locked as well, so its whole history stays in the bucket.

Readers GET an object's current version. Anyone allowed to PUT can still add a
newer version (or a delete marker) on top of a locked one: that cannot destroy
the locked original, and `tiles verify` then fails on the changed object
instead of accepting it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from .objectstore import WriteOnceError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["DEFAULT_RETENTION_DAYS", "S3Error", "S3Location", "S3Objects", "S3Sink", "s3_client"]

DEFAULT_RETENTION_DAYS = 365
"""Days every archived object stays locked (COMPLIANCE retention cannot be shortened, only extended)."""

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9!_.*'()@=+,-]+")
"""A prefix segment: S3's safe key characters."""
_IMMUTABLE = "public, max-age=31536000, immutable"
_FRESH = "no-cache, max-age=0"
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


class S3Error(OSError):
    """An S3 request failed; the message is one line naming the operation and the object."""


class _NoConditionalWrites(Exception):
    """The server answered If-None-Match with NotImplemented."""


@dataclass(frozen=True)
class S3Location:
    """`s3://bucket/prefix`: a bucket and a key prefix that is empty or ends with `/`."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ValueError(f"{url!r} is not an s3://bucket/prefix URL")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise ValueError(f"{url!r}: {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        parts = prefix.split("/") if prefix else []
        if not all(_SEGMENT.fullmatch(part) and part not in (".", "..") for part in parts):
            raise ValueError(f"{url!r}: the prefix must be path segments of letters, digits and !_.*'()@=+,-")
        return cls(bucket, prefix + "/" if prefix else "")

    def key(self, path: str) -> str:
        """The object key of a path relative to the prefix (`tile/0/000`, `checkpoint`)."""
        if not path or path.startswith("/") or any(part in ("", ".", "..") for part in path.split("/")):
            raise ValueError(f"{path!r} is not a relative tiles path")
        return self.prefix + path

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def _endpoint(endpoint_url: str | None) -> str | None:
    return endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def s3_client(endpoint_url: str | None = None, *, anonymous: bool | None = False) -> S3Client:
    """A boto3 S3 client: credentials and region from the usual AWS variables and files; endpoint
    from `endpoint_url`, else AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (then path-style addressing).
    `anonymous=None` signs requests when credentials are found and reads anonymously otherwise."""
    endpoint = _endpoint(endpoint_url)
    try:
        session = boto3.session.Session()
        if anonymous is None:
            anonymous = session.get_credentials() is None
    except BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
        raise S3Error(f"AWS configuration: {exc}") from None
    options: dict[str, Any] = {
        "connect_timeout": 10,
        "read_timeout": 60,
        "retries": {"max_attempts": 5, "mode": "standard"},
        "max_pool_connections": 32,
    }
    if endpoint:
        options["s3"] = {"addressing_style": "path"}
    if anonymous:
        options["signature_version"] = UNSIGNED
    return session.client(
        "s3", endpoint_url=endpoint, region_name=session.region_name or "us-east-1", config=Config(**options)
    )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _failure(operation: str, target: str, exc: ClientError | BotoCoreError) -> S3Error:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
        detail = f"{error.get('Code', status)}: {error.get('Message', '')}".rstrip(": ")
    else:
        detail = str(exc)
    return S3Error(f"{operation} {target}: {' '.join(detail.split())}")


class S3Objects:
    """Read access to a tiles log under an S3 prefix (the current version of each object)."""

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        anonymous: bool | None = None,
    ) -> None:
        self.location = S3Location.parse(url)
        self.client = client if client is not None else s3_client(endpoint_url, anonymous=anonymous)

    def describe(self) -> str:
        return str(self.location)

    def _target(self, key: str) -> str:
        return f"s3://{self.location.bucket}/{key}"

    def get(self, path: str) -> bytes | None:
        """The current version of the object, or None if there is none (or it is a delete marker)."""
        key = self.location.key(path)
        try:
            response = self.client.get_object(Bucket=self.location.bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise _failure("GET", self._target(key), exc) from None
        except BotoCoreError as exc:
            raise _failure("GET", self._target(key), exc) from None

    def names(self, start: str) -> list[str]:
        """Paths (relative to the prefix) of the current objects whose path starts with `start`."""
        found: list[str] = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix + start
            )
            for page in pages:
                found.extend(item["Key"][len(self.location.prefix) :] for item in page.get("Contents", []))
        except (ClientError, BotoCoreError) as exc:
            raise _failure("LIST", self._target(self.location.prefix + start), exc) from None
        return found

    def close(self) -> None:
        self.client.close()


class S3Sink(S3Objects):
    """TileSink writing to S3 with Object Lock in COMPLIANCE mode (see the module docstring).

    Construction does no I/O::

        sink = S3Sink("s3://bucket/prefix", endpoint_url=None, retention_days=365)

    Credentials come from the usual AWS variables and files. The first write
    checks that the bucket has Object Lock enabled and refuses to write
    otherwise, unless `allow_no_lock` (then objects are written unlocked; the
    write-once check still holds). `check_bucket()` and `create_bucket()` let a
    caller report such problems before any write. Write-once uses If-None-Match: *;
    on a server that answers it with NotImplemented (or with `conditional_writes=False`)
    put_once reads the key first and PUTs only if it is absent.
    """

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        retention_days: int = DEFAULT_RETENTION_DAYS,
        allow_no_lock: bool = False,
        conditional_writes: bool = True,
        client: S3Client | None = None,
    ) -> None:
        if isinstance(retention_days, bool) or not isinstance(retention_days, int) or not 1 <= retention_days <= 36500:
            raise ValueError(f"retention_days must be a whole number of days in 1..36500, not {retention_days!r}")
        super().__init__(url, endpoint_url=endpoint_url, client=client, anonymous=False)
        self.retention_days = retention_days
        self.allow_no_lock = allow_no_lock
        self._checked = threading.Lock()
        self._locked: bool | None = None
        self._conditional = conditional_writes

    # -- the bucket ------------------------------------------------------------------

    def check_bucket(self) -> bool:
        """True if the bucket has Object Lock enabled; False if it has not and allow_no_lock; else S3Error."""
        bucket = self.location.bucket
        try:
            config = self.client.get_object_lock_configuration(Bucket=bucket)
            enabled = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        except ClientError as exc:
            code = _code(exc)
            if code == "NoSuchBucket":
                raise S3Error(
                    f"bucket {bucket} does not exist: create it with Object Lock enabled (see docs/archive.md) "
                    "or pass --create-bucket"
                ) from None
            if code != "ObjectLockConfigurationNotFoundError":
                raise _failure("GetObjectLockConfiguration", f"s3://{bucket}", exc) from None
            enabled = False
        except BotoCoreError as exc:
            raise _failure("GetObjectLockConfiguration", f"s3://{bucket}", exc) from None
        if not enabled and not self.allow_no_lock:
            raise S3Error(
                f"bucket {bucket} has no Object Lock, so archived objects could be deleted or overwritten: "
                "use a bucket created with --object-lock-enabled-for-bucket, or pass --allow-no-lock"
            )
        self._locked = enabled
        return enabled

    def create_bucket(self) -> bool:
        """Create the bucket with Object Lock enabled; False if this account already owns it."""
        bucket = self.location.bucket
        region = self.client.meta.region_name
        try:
            if region and region != "us-east-1":
                self.client.create_bucket(
                    Bucket=bucket,
                    ObjectLockEnabledForBucket=True,
                    CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
                )
            else:
                self.client.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
        except ClientError as exc:
            if _code(exc) == "BucketAlreadyOwnedByYou":
                return False
            raise _failure("CreateBucket", f"s3://{bucket}", exc) from None
        except BotoCoreError as exc:
            raise _failure("CreateBucket", f"s3://{bucket}", exc) from None
        return True

    def _ensure_checked(self) -> bool:
        with self._checked:
            if self._locked is None:
                self.check_bucket()
            assert self._locked is not None
            return self._locked

    # -- writes ------------------------------------------------------------------------

    def _put(self, key: str, data: bytes, *, once: bool, immutable: bool) -> bool:
        """PUT a new version; with `once`, only if the key has no current version (False on a conflict)."""
        args: dict[str, Any] = {
            "Bucket": self.location.bucket,
            "Key": key,
            "Body": data,
            "ContentMD5": base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode(),
            "ChecksumSHA256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
            "ContentType": "application/octet-stream" if immutable else "text/plain; charset=utf-8",
            "CacheControl": _IMMUTABLE if immutable else _FRESH,
        }
        if self._ensure_checked():
            args["ObjectLockMode"] = "COMPLIANCE"
            args["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(days=self.retention_days)
        if once:
            args["IfNoneMatch"] = "*"
        try:
            self.client.put_object(**args)
        except ClientError as exc:
            if once and _code(exc) in _CONFLICT:
                return False
            if once and _code(exc) == "NotImplemented":
                raise _NoConditionalWrites from None
            raise _failure("PUT", self._target(key), exc) from None
        except BotoCoreError as exc:
            raise _failure("PUT", self._target(key), exc) from None
        return True

    def put_once(self, path: str, data: bytes) -> bool:
        """Write a locked object unless it exists; an existing one must hold the same bytes."""
        key = self.location.key(path)
        for _ in range(3):
            if self._conditional:
                try:
                    if self._put(key, data, once=True, immutable=True):
                        return True
                except _NoConditionalWrites:
                    self._conditional = False  # from now on: look (GET) first, then PUT
                    continue
            existing = self.get(path)
            if existing is None:
                if not self._conditional:
                    self._put(key, data, once=False, immutable=True)
                    return True
                continue  # the conflicting version went away (a delete marker took its place): try again
            if existing != data:
                raise WriteOnceError(f"{self._target(key)} exists with other content; archived objects are immutable")
            return False
        raise S3Error(f"PUT {self._target(key)}: the object keeps changing while it is written")

    def put_checkpoint(self, data: bytes, name: str = "checkpoint") -> None:
        """Write a new, locked version of the checkpoint; older versions stay in the bucket, locked."""
        self._put(self.location.key(name), data, once=False, immutable=False)
