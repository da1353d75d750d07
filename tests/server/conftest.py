"""A real sealtrail app over a fresh data directory, driven in-process through its ASGI interface."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.server import Settings, create_app

ORIGIN = "api.sealtrail.test/log"
LIMIT = 64 * 1024


@dataclass
class Api:
    client: TestClient
    directory: DataDir
    admin: str
    ingest: str
    read: str
    ci_only: str
    """An ingest token limited to the source `ci` (type api)."""

    def headers(self, token: str | None, content_type: str | None = "application/json") -> dict[str, str]:
        out = {}
        if token is not None:
            out["Authorization"] = f"Bearer {token}"
        if content_type is not None:
            out["Content-Type"] = content_type
        return out

    def entry(self, index: object) -> dict[str, Any]:
        """The stored entry at `index`, parsed."""
        response = self.client.get(f"/v1/entries/{index}", headers=self.headers(self.read, None))
        assert response.status_code == 200, response.text
        parsed: dict[str, Any] = json.loads(response.content)
        return parsed

    def size(self) -> int:
        store = self.directory.store()
        try:
            return store.size()
        finally:
            store.close()


def make_api(tmp_path: Path, **settings: object) -> Iterator[Api]:
    directory = DataDir(tmp_path / "log")
    directory.init(ORIGIN)
    credentials = Credentials(directory.credentials)
    credentials.add_source("ci", "api")
    admin, _ = credentials.create_token("admin", {"admin"})
    ingest, _ = credentials.create_token("ingest", {"ingest"})
    read, _ = credentials.create_token("reader", {"read"})
    ci_only, _ = credentials.create_token("ci", {"ingest"}, {"ci"})
    defaults: dict[str, object] = {"checkpoint_interval": 0.05, "max_body_bytes": LIMIT, "wait_timeout": 10}
    config = Settings(**(defaults | settings))  # type: ignore[arg-type]
    with TestClient(create_app(directory, config)) as client:
        yield Api(client, directory, admin, ingest, read, ci_only)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)
