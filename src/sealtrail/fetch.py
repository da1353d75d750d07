"""Read a c2sp.org/tlog-tiles log from a directory, an http(s) URL prefix, or an s3://bucket/prefix."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from .tiles import REDACTED_PREFIX, parse_tile_path

__all__ = ["DirectorySource", "HttpSource", "S3Source", "TilesSource", "open_source"]

_CHECKPOINT_FILE = re.compile(r"checkpoint\.(0|[1-9][0-9]*)")


def _check_path(path: str) -> None:
    """Refuse anything but `checkpoint`, a tile or bundle path, or a bundle's redacted form (ValueError)."""
    if path == "checkpoint":
        return
    redacted = path.startswith(REDACTED_PREFIX)
    ref = parse_tile_path(path.removeprefix(REDACTED_PREFIX))
    if redacted and ref.level is not None:
        raise ValueError(f"not a tile path: {path!r}")


class TilesSource:
    """Fetch resources of a tiles log by path; None when absent."""

    def fetch(self, path: str) -> bytes | None:
        raise NotImplementedError

    def archived_checkpoints(self) -> list[bytes]:
        """Older checkpoints kept beside the log (checkpoint.<size> files), if any."""
        return []

    def close(self) -> None:
        pass


class DirectorySource(TilesSource):
    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is not a directory")
        self.root = root

    def fetch(self, path: str) -> bytes | None:
        _check_path(path)
        target = self.root / path
        return target.read_bytes() if target.is_file() else None

    def archived_checkpoints(self) -> list[bytes]:
        found = [(int(m.group(1)), p) for p in self.root.iterdir() if (m := _CHECKPOINT_FILE.fullmatch(p.name))]
        return [path.read_bytes() for _, path in sorted(found)]


class HttpSource(TilesSource):
    def __init__(self, prefix: str, timeout: float = 30.0, token: str | None = None) -> None:
        self.prefix = prefix.rstrip("/") + "/"
        headers = {"User-Agent": "sealtrail"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(timeout=timeout, follow_redirects=True, headers=headers)

    def fetch(self, path: str) -> bytes | None:
        response = self.client.get(self.prefix + path)
        if response.status_code in (404, 410):  # 410: an entry bundle spanning a redacted entry (docs/retention.md)
            return None
        if response.status_code in (401, 403):
            raise OSError(f"GET {self.prefix + path}: HTTP {response.status_code}; pass a read token with --token")
        if response.status_code != 200:
            raise OSError(f"GET {self.prefix + path}: HTTP {response.status_code}")
        return response.content

    def close(self) -> None:
        self.client.close()


class S3Source(TilesSource):
    """The current version of each object under an S3 prefix (what any plain reader of the bucket gets).

    Credentials, region and endpoint as for `sealtrail archive` (sealtrail.s3); a
    public bucket is read anonymously when no credentials are configured.
    """

    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        from .s3 import S3Objects  # boto3 is imported only for s3:// sources

        self.objects = S3Objects(url, endpoint_url=endpoint_url)

    def fetch(self, path: str) -> bytes | None:
        _check_path(path)
        return self.objects.get(path)

    def archived_checkpoints(self) -> list[bytes]:
        found = [
            (int(m.group(1)), name)
            for name in self.objects.names("checkpoint.")
            if (m := _CHECKPOINT_FILE.fullmatch(name))
        ]
        notes = [self.objects.get(name) for _, name in sorted(found)]
        return [note for note in notes if note is not None]

    def close(self) -> None:
        self.objects.close()


def open_source(spec: str, token: str | None = None, endpoint_url: str | None = None) -> TilesSource:
    """A directory path, an http(s):// URL prefix (with a bearer token if the log is private),
    or an s3://bucket/prefix (at `endpoint_url`, else AWS_ENDPOINT_URL or AWS itself)."""
    if spec.startswith(("http://", "https://")):
        return HttpSource(spec, token=token)
    if spec.startswith("s3://"):
        return S3Source(spec, endpoint_url)
    return DirectorySource(Path(spec))
