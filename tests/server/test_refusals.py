"""Every ingest endpoint refuses bad requests the same way: a 4xx with a message, nothing written, still up."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sealtrail.credentials import Credentials

from .conftest import LIMIT, Api, make_api

GH_SECRET = "gh-secret"
GL_TOKEN = "gl-token"
JENKINS = "jenkins-password"

Auth = Callable[[Api, bytes], dict[str, str]]


@dataclass(frozen=True)
class Endpoint:
    path: str
    auth: Auth
    """Headers that authenticate a request with this body."""
    wrong_scope: Auth | None
    """Headers with a valid credential that lacks the right to ingest (None: the route has no scopes)."""
    content_type: str | None = "application/json"
    """A type the route refuses is tested unless None."""


def _bearer(api: Api, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.admin}"}


def _read_bearer(api: Api, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Bearer {api.read}"}


def _github(api: Api, body: bytes) -> dict[str, str]:
    signature = "sha256=" + hmac.new(GH_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": signature, "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1"}


def _gitlab(api: Api, body: bytes) -> dict[str, str]:
    return {"X-Gitlab-Token": GL_TOKEN, "X-Gitlab-Event": "Push Hook"}


def _splunk(api: Api, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Splunk {api.admin}"}


def _splunk_read(api: Api, body: bytes) -> dict[str, str]:
    return {"Authorization": f"Splunk {api.read}"}


def _jenkins_basic(api: Api, body: bytes) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"ci:{JENKINS}".encode()).decode()}


ENDPOINTS = {
    "events": Endpoint("/v1/events", _bearer, _read_bearer),
    "cloudevents": Endpoint("/v1/cloudevents", _bearer, _read_bearer, None),
    "otlp": Endpoint("/otlp/v1/logs", _bearer, _read_bearer),
    "kubernetes": Endpoint("/hooks/kubernetes/k8s", _bearer, _read_bearer),
    "jenkins": Endpoint("/hooks/jenkins/jk", _jenkins_basic, _read_bearer),
    "github": Endpoint("/hooks/github/gh", _github, None),
    "gitlab": Endpoint("/hooks/gitlab/gl", _gitlab, None),
    "hec": Endpoint("/services/collector/event", _splunk, _splunk_read, None),
}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    for running in make_api(Path(tmp_path_factory.mktemp("refusals"))):
        credentials = Credentials(running.directory.credentials)
        credentials.add_source("gh", "github", secret=GH_SECRET)
        credentials.add_source("gl", "gitlab", secret=GL_TOKEN)
        credentials.add_source("jk", "jenkins", secret=JENKINS)
        credentials.add_source("k8s", "kubernetes")
        yield running


def _post(api: Api, endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    sent = {"Content-Type": endpoint.content_type or "application/json", **headers}
    response = api.client.post(endpoint.path, content=body, headers=sent)
    message = response.json().get("error") or response.json().get("text") or ""
    return response.status_code, str(message)


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_refusals_write_nothing_and_say_why(api: Api, name: str) -> None:
    endpoint = ENDPOINTS[name]
    size = api.size()
    malformed = b'{"not": json'
    cases: list[tuple[str, int, bytes, dict[str, str]]] = [
        ("no credentials", 401, b"{}", {}),
        ("bad credentials", 401, b"{}", {"Authorization": "Bearer st_00000000_nope", "X-Gitlab-Token": "nope"}),
        ("malformed JSON", 400, malformed, endpoint.auth(api, malformed)),
    ]
    if endpoint.wrong_scope is not None:
        cases.append(("wrong scope", 403, b"{}", endpoint.wrong_scope(api, b"{}")))
    big = b'{"x": "' + b"y" * (LIMIT + 10) + b'"}'
    cases.append(("body over the limit", 413, big, endpoint.auth(api, big)))
    for label, status, body, headers in cases:
        got, message = _post(api, endpoint, body, headers)
        assert got == status, (name, label, got, message)
        assert message and "\n" not in message, (name, label)
        assert api.size() == size, (name, label)
    if endpoint.content_type is not None:
        response = api.client.post(
            endpoint.path, content=b"{}", headers={**endpoint.auth(api, b"{}"), "Content-Type": "text/csv"}
        )
        assert response.status_code == 415, (name, response.text)
        assert api.size() == size
    assert api.client.get("/healthz").status_code == 200  # still up
