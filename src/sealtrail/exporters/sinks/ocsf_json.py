"""OCSF events as JSON: an HTTP POST of a JSON array per batch, or lines appended to an NDJSON file.

Either way every event carries metadata.uid = leaf hash and metadata.sequence
= log index, so a consumer deduplicates a redelivered batch by metadata.uid.
The file sink fsyncs each batch before it is acknowledged.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import httpx
import orjson

from ..ocsf import to_ocsf
from ..record import ForwardRecord
from .base import DeadLetter, DeliveryError, bisect_refusals
from .http import check_response, post

__all__ = ["OcsfFileSink", "OcsfHttpSink"]


class OcsfHttpSink:
    """POST a JSON array of OCSF events (Content-Type: application/json) per batch."""

    def __init__(self, client: httpx.Client, url: str) -> None:
        self.client, self.url = client, url

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        return bisect_refusals(records, self._post)

    def _post(self, records: Sequence[ForwardRecord]) -> None:
        body = orjson.dumps([to_ocsf(record) for record in records])
        response = post(self.client, self.url, body, "ocsf http", records, headers={"Content-Type": "application/json"})
        check_response(response, "ocsf http", records)

    def close(self) -> None:
        self.client.close()


class OcsfFileSink:
    """Append one OCSF event per line to a file (created 0640), fsynced per batch."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, records: Sequence[ForwardRecord]) -> list[DeadLetter]:
        data = b"".join(orjson.dumps(to_ocsf(record)) + b"\n" for record in records)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                start = os.lseek(fd, 0, os.SEEK_END)
                try:
                    view = memoryview(data)
                    while view:
                        view = view[os.write(fd, view) :]
                    os.fsync(fd)
                except OSError:
                    os.ftruncate(fd, start)  # no half-written line for the retry to follow
                    raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise DeliveryError(f"ocsf file {self.path}: {exc.strerror or exc}", records) from None
        return []

    def close(self) -> None:
        pass
