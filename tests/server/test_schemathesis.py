"""Property-based API testing: schemathesis drives every operation of /openapi.json; no 5xx, ever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from sealtrail.credentials import Credentials
from sealtrail.datadir import DataDir
from sealtrail.server import Settings, create_app


def _app(root: Path) -> tuple[FastAPI, str, TestClient]:
    directory = DataDir(root / "log")
    directory.init("schemathesis.sealtrail.test/log")
    credentials = Credentials(directory.credentials)
    credentials.add_source("ci", "api")
    token, _ = credentials.create_token("admin", {"admin"})
    app = create_app(directory, Settings(checkpoint_interval=0.05, max_body_bytes=256 * 1024, wait_timeout=5))
    client = TestClient(app)
    client.__enter__()  # run the lifespan: the Log is open for the whole session
    client.post(
        "/v1/events?wait=checkpoint",
        json=[{"kind": "deploy", "source": {"type": "api", "id": "ci"}} for _ in range(300)],
        headers={"Authorization": f"Bearer {token}"},
    )
    return app, token, client


_ROOT = Path(__import__("tempfile").mkdtemp(prefix="sealtrail-schemathesis-"))
APP, TOKEN, CLIENT = _app(_ROOT)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def _close_app() -> Iterator[None]:
    yield
    CLIENT.__exit__(None, None, None)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_5xx(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    for headers in ({"Authorization": f"Bearer {TOKEN}"}, {}):
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
