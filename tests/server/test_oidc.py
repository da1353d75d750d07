"""GitHub Actions OIDC: tokens shaped like GitHub's, signed by test keys whose JWKS a local HTTP server serves."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from httpx import Response
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from sealtrail.credentials import Credentials
from sealtrail.event import sign_event
from sealtrail.note import generate_ed25519
from sealtrail.server import Settings, load_settings
from sealtrail.server.oidc import OidcError, OidcVerifier
from sealtrail.server.settings import OidcSettings

from .conftest import Api, make_api

ISSUER = "https://token.actions.githubusercontent.com"
AUDIENCE = "sealtrail"
REPO = "acme/payments-api"
WORKFLOW_REF = "acme/payments-api/.github/workflows/deploy.yml@refs/heads/main"
SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4"
PROVENANCE = {
    "repository": REPO,
    "ref": "refs/heads/main",
    "sha": SHA,
    "run_id": "5820312043",
    "run_attempt": "1",
    "workflow": "deploy",
    "job_workflow_ref": WORKFLOW_REF,
    "event_name": "push",
}
ACTOR = {"id": "583231", "name": "octocat", "type": "user"}
SOURCE = {"type": "github", "id": "github-actions"}


# --- keys, the JWKS server, tokens ------------------------------------------------------------------


@dataclass(frozen=True)
class Key:
    kid: str
    alg: str
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            body = RSAAlgorithm.to_jwk(public, as_dict=True)
        else:
            body = ECAlgorithm.to_jwk(public, as_dict=True)
        return {**body, "kid": self.kid, "alg": self.alg, "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass(frozen=True)
class Keys:
    rsa: Key
    ec: Key
    rotated: Key
    """Not served at first: published later, as in a key rotation."""
    rogue: Key
    """Never served."""


@pytest.fixture(scope="module")
def keys() -> Keys:
    def rsa_key() -> rsa.RSAPrivateKey:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)

    return Keys(
        rsa=Key("rsa-1", "RS256", rsa_key()),
        ec=Key("ec-1", "ES256", ec.generate_private_key(ec.SECP256R1())),
        rotated=Key("rsa-2", "RS256", rsa_key()),
        rogue=Key("rogue", "RS256", rsa_key()),
    )


class Jwks:
    """What the local JWKS server serves, and how often it was asked."""

    def __init__(self, keys: list[Key]) -> None:
        self.keys = keys
        self.hits = 0
        self.status = 200
        self.body: bytes | None = None
        self.lock = threading.Lock()
        self.url = ""

    def document(self) -> bytes:
        return self.body if self.body is not None else json.dumps({"keys": [k.jwk() for k in self.keys]}).encode()


class _Server(ThreadingHTTPServer):
    jwks: Jwks


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        jwks = self.server.jwks
        with jwks.lock:
            jwks.hits += 1
            status, body = jwks.status, jwks.document()
        if self.path != "/.well-known/jwks":
            status, body = 404, b"{}"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_server() -> Iterator[_Server]:
    server = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def jwks(jwks_server: _Server, keys: Keys) -> Jwks:
    """A fresh JWKS (the RSA and the EC key, no hits yet) on the module's server."""
    served = Jwks([keys.rsa, keys.ec])
    served.url = f"http://127.0.0.1:{jwks_server.server_address[1]}/.well-known/jwks"
    jwks_server.jwks = served
    return served


def claims(**overrides: Any) -> dict[str, Any]:
    """Claims as GitHub Actions puts them in an OIDC token (None removes one)."""
    now = int(time.time())
    base: dict[str, Any] = {
        "jti": str(uuid.uuid4()),
        "sub": f"repo:{REPO}:ref:refs/heads/main",
        "aud": AUDIENCE,
        "ref": "refs/heads/main",
        "sha": SHA,
        "repository": REPO,
        "repository_owner": "acme",
        "repository_owner_id": "65",
        "repository_visibility": "private",
        "repository_id": "1296269",
        "run_id": "5820312043",
        "run_number": "42",
        "run_attempt": "1",
        "runner_environment": "github-hosted",
        "actor": "octocat",
        "actor_id": "583231",
        "workflow": "deploy",
        "workflow_ref": WORKFLOW_REF,
        "head_ref": "",
        "base_ref": "",
        "event_name": "push",
        "ref_type": "branch",
        "job_workflow_ref": WORKFLOW_REF,
        "iss": ISSUER,
        "nbf": now - 600,
        "exp": now + 300,
        "iat": now,
    }
    merged = base | overrides
    return {name: value for name, value in merged.items() if value is not None}


def mint(key: Key, *, kid: str | None = None, **overrides: Any) -> str:
    return jwt.encode(claims(**overrides), key.private, algorithm=key.alg, headers={"kid": kid or key.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], secret: bytes | None) -> str:
    """A token built by hand: unsigned (alg none) or HMAC-signed with `secret`."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims()).encode())}"
    if secret is None:
        return signing_input + "."
    return signing_input + "." + _b64(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())


def oidc_settings(jwks: Jwks, **overrides: Any) -> OidcSettings:
    base = OidcSettings(
        audience=AUDIENCE,
        jwks_url=jwks.url,
        allowed_repositories=(REPO, "acme-platform/*"),
        allowed_job_workflow_refs=("acme/payments-api/.github/workflows/*@refs/heads/main", "acme-platform/*"),
        jwks_min_refresh=3600,
    )
    return replace(base, **overrides)


@pytest.fixture
def oidc_api(tmp_path: Path, jwks: Jwks) -> Iterator[Api]:
    yield from make_api(tmp_path, oidc=oidc_settings(jwks))


def api_with(tmp_path: Path, jwks: Jwks, **overrides: Any) -> contextlib.AbstractContextManager[Api]:
    return contextlib.contextmanager(make_api)(tmp_path, oidc=oidc_settings(jwks, **overrides))


def post(api: Api, body: object, token: str, path: str = "/v1/events") -> Response:
    response: Response = api.client.post(path, content=json.dumps(body).encode(), headers=api.headers(token))
    return response


# --- accepted ---------------------------------------------------------------------------------------


def test_a_valid_token_writes_events_whose_source_actor_and_attrs_come_from_the_claims(
    oidc_api: Api, keys: Keys
) -> None:
    events = [
        {"kind": "deploy", "action": "deploy.prod", "attrs": {"service": "payments"}},
        {"kind": "ci.run", "source": {**SOURCE, "delivery": "run-5820312043"}, "actor": {"name": "octocat"}},
        {"kind": "ci.job", "actor": {**ACTOR, "ip": "192.0.2.7"}, "attrs": {"oidc": PROVENANCE}},
    ]
    response = post(oidc_api, events, mint(keys.rsa))
    assert response.status_code == 200, response.text
    first, second, third = (oidc_api.entry(i) for i in range(3))
    assert first["source"] == SOURCE
    assert first["actor"] == ACTOR
    assert first["attrs"] == {"service": "payments", "oidc": PROVENANCE}
    assert second["source"] == {**SOURCE, "delivery": "run-5820312043"}
    assert second["actor"] == ACTOR
    assert second["attrs"] == {"oidc": PROVENANCE}
    assert third["actor"] == {**ACTOR, "ip": "192.0.2.7"}


def test_an_es256_token_is_accepted_and_a_token_without_actor_id_names_the_actor_only(
    oidc_api: Api, keys: Keys
) -> None:
    assert post(oidc_api, {"kind": "deploy"}, mint(keys.ec)).status_code == 200
    assert post(oidc_api, {"kind": "deploy"}, mint(keys.rsa, actor_id=None)).status_code == 200
    assert oidc_api.entry(0)["actor"] == ACTOR
    assert oidc_api.entry(1)["actor"] == {"name": "octocat", "type": "user"}


def test_an_owner_wildcard_admits_every_repository_of_that_owner(oidc_api: Api, keys: Keys) -> None:
    token = mint(
        keys.rsa,
        repository="acme-platform/infra",
        job_workflow_ref="acme-platform/infra/.github/workflows/release.yml@refs/tags/v1.2.0",
    )
    assert post(oidc_api, {"kind": "deploy"}, token).status_code == 200
    assert oidc_api.entry(0)["attrs"]["oidc"]["repository"] == "acme-platform/infra"


def test_expiry_is_checked_with_the_configured_leeway(oidc_api: Api, keys: Keys) -> None:
    now = int(time.time())
    assert post(oidc_api, {"kind": "deploy"}, mint(keys.rsa, exp=now - 20)).status_code == 200
    assert post(oidc_api, {"kind": "deploy"}, mint(keys.rsa, exp=now - 120)).status_code == 401


# --- refused: 401, nothing written --------------------------------------------------------------------

INVALID: list[tuple[str, Callable[[Keys], str], str]] = [
    ("wrong audience", lambda k: mint(k.rsa, aud="someone-else"), "audience"),
    ("expired", lambda k: mint(k.rsa, iat=int(time.time()) - 900, exp=int(time.time()) - 120), "expired"),
    ("not yet valid", lambda k: mint(k.rsa, nbf=int(time.time()) + 600), "not yet valid"),
    ("issued in the future", lambda k: mint(k.rsa, iat=int(time.time()) + 600), "not yet valid"),
    ("wrong issuer", lambda k: mint(k.rsa, iss="https://gitlab.example.com"), "issuer"),
    ("no exp", lambda k: mint(k.rsa, exp=None), "exp"),
    ("no job_workflow_ref", lambda k: mint(k.rsa, job_workflow_ref=None), "job_workflow_ref"),
    ("no repository", lambda k: mint(k.rsa, repository=None), "repository"),
    ("empty actor", lambda k: mint(k.rsa, actor=""), "actor"),
    ("key not in the JWKS", lambda k: mint(k.rogue), "unknown key"),
    ("other key under a served kid", lambda k: mint(k.rogue, kid="rsa-1"), "signature"),
    ("ES256 under an RS256 kid", lambda k: mint(k.ec, kid="rsa-1"), "RS256"),
    ("alg none", lambda k: forged({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, None), "algorithm"),
    ("HS256, public key as secret", lambda k: forged({"alg": "HS256", "kid": "rsa-1"}, k.rsa.public_pem()), "HS256"),
    ("no kid", lambda k: jwt.encode(claims(), k.rsa.private, algorithm="RS256"), "kid"),
    ("not a JWT inside", lambda k: "eyJub3Q.eyJqc29u.c2ln", "malformed"),
]


@pytest.mark.parametrize(("make", "reason"), [(m, r) for _, m, r in INVALID], ids=[label for label, _, _ in INVALID])
def test_invalid_tokens_are_refused_with_401_and_write_nothing(
    oidc_api: Api, keys: Keys, make: Callable[[Keys], str], reason: str
) -> None:
    token = make(keys)
    response = post(oidc_api, {"kind": "deploy"}, token)
    assert response.status_code == 401, response.text
    assert reason in response.json()["error"]
    assert token not in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert oidc_api.size() == 0


# --- refused: 403 by policy or by the event, nothing written -------------------------------------------

POLICY: list[tuple[str, dict[str, Any], str]] = [
    ("other owner", {"repository": "evil/payments-api", "sub": "repo:evil/payments-api:ref:refs/heads/main"}, "repo"),
    ("other repository of the owner", {"repository": "acme/website"}, "repository"),
    (
        "workflow on another branch",
        {"job_workflow_ref": "acme/payments-api/.github/workflows/deploy.yml@refs/heads/feature-x"},
        "job_workflow_ref",
    ),
    (
        "reusable workflow of another repository",
        {"job_workflow_ref": "evil/tools/.github/workflows/deploy.yml@refs/heads/main"},
        "job_workflow_ref",
    ),
]


@pytest.mark.parametrize(("overrides", "reason"), [(o, r) for _, o, r in POLICY], ids=[p[0] for p in POLICY])
def test_disallowed_repositories_and_workflows_are_refused_with_403(
    oidc_api: Api, keys: Keys, overrides: dict[str, Any], reason: str
) -> None:
    response = post(oidc_api, {"kind": "deploy"}, mint(keys.rsa, **overrides))
    assert response.status_code == 403, response.text
    assert reason in response.json()["error"]
    assert oidc_api.size() == 0


CONFLICTS: list[tuple[str, dict[str, Any], str]] = [
    ("another actor name", {"actor": {"name": "mallory"}}, "actor.name"),
    ("another actor id", {"actor": {"name": "octocat", "id": "1"}}, "actor.id"),
    ("another actor type", {"actor": {"type": "bot"}}, "actor.type"),
    ("another source id", {"source": {"type": "api", "id": "ci"}}, "source"),
    ("another source type", {"source": {"type": "api", "id": "github-actions"}}, "source.type"),
    ("forged attrs.oidc", {"attrs": {"oidc": {**PROVENANCE, "repository": "acme/other"}}}, "attrs.oidc"),
]


@pytest.mark.parametrize(("extra", "reason"), [(e, r) for _, e, r in CONFLICTS], ids=[c[0] for c in CONFLICTS])
def test_an_event_that_contradicts_the_token_is_refused_with_403(
    oidc_api: Api, keys: Keys, extra: dict[str, Any], reason: str
) -> None:
    batch = [{"kind": "deploy"}, {"kind": "deploy", **extra}]
    response = post(oidc_api, batch, mint(keys.rsa))
    assert response.status_code == 403, response.text
    assert reason in response.json()["error"]
    assert oidc_api.size() == 0


def test_a_signed_event_must_already_carry_what_the_token_says(tmp_path: Path, jwks: Jwks, keys: Keys) -> None:
    with api_with(tmp_path, jwks) as api:
        signer = generate_ed25519("runner.acme.test")
        Credentials(api.directory.credentials).add_source("github-actions", "github", keys=(signer.verifier.vkey,))
        bare = sign_event({"kind": "deploy", "source": SOURCE}, signer)
        response = post(api, bare, mint(keys.rsa))
        assert response.status_code == 403, response.text
        assert "sig" in response.json()["error"]
        assert api.size() == 0
        complete = sign_event(
            {"kind": "deploy", "source": SOURCE, "actor": ACTOR, "attrs": {"oidc": PROVENANCE}}, signer
        )
        assert post(api, complete, mint(keys.rsa)).status_code == 200
        assert api.entry(0)["sig"] == complete["sig"]


def test_an_oidc_token_writes_only_through_post_v1_events_and_reads_only_with_read_scope(
    oidc_api: Api, keys: Keys
) -> None:
    token = mint(keys.rsa)
    response = post(oidc_api, {"specversion": "1.0", "id": "1", "source": "/ci", "type": "t"}, token, "/v1/cloudevents")
    assert response.status_code == 403
    assert "/v1/events" in response.json()["error"]
    assert oidc_api.size() == 0
    assert post(oidc_api, {"kind": "deploy"}, token).status_code == 200
    read = oidc_api.client.get("/v1/entries/0", headers=oidc_api.headers(token, None))
    assert read.status_code == 403
    assert "read" in read.json()["error"]


def test_configured_scopes_and_source_are_what_the_token_grants(tmp_path: Path, jwks: Jwks, keys: Keys) -> None:
    with api_with(tmp_path, jwks, scopes=("ingest", "read"), source="gha-prod", source_type="api") as api:
        token = mint(keys.rsa)
        assert post(api, {"kind": "deploy"}, token).status_code == 200
        read = api.client.get("/v1/entries/0", headers=api.headers(token, None))
        assert read.status_code == 200
        assert json.loads(read.content)["source"] == {"type": "api", "id": "gha-prod"}


# --- static tokens, OIDC off ---------------------------------------------------------------------------


def test_static_tokens_keep_working_beside_oidc(oidc_api: Api) -> None:
    body = {"kind": "deploy", "source": {"type": "api", "id": "ci"}}
    assert post(oidc_api, body, oidc_api.ingest).status_code == 200
    assert post(oidc_api, {"kind": "deploy"}, oidc_api.ci_only).status_code == 200
    assert oidc_api.entry(1)["source"] == {"type": "api", "id": "ci"}
    assert "actor" not in oidc_api.entry(0)
    refused = post(oidc_api, body, "st_deadbeef_not-a-secret")
    assert refused.status_code == 401
    assert "invalid or revoked" in refused.json()["error"]
    assert oidc_api.size() == 2


def test_a_jwt_without_oidc_configured_is_refused(api: Api, keys: Keys) -> None:
    response = post(api, {"kind": "deploy"}, mint(keys.rsa))
    assert response.status_code == 401
    assert "OIDC is not configured" in response.json()["error"]
    assert api.size() == 0


# --- the key set --------------------------------------------------------------------------------------


def test_the_key_set_is_fetched_once_for_many_requests(oidc_api: Api, jwks: Jwks, keys: Keys) -> None:
    for number in range(8):
        key = keys.rsa if number % 2 else keys.ec
        assert post(oidc_api, {"kind": "deploy"}, mint(key)).status_code == 200
    assert oidc_api.size() == 8
    assert jwks.hits == 1


def test_unknown_kids_do_not_refetch_within_jwks_min_refresh(oidc_api: Api, jwks: Jwks, keys: Keys) -> None:
    assert post(oidc_api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
    for _ in range(3):
        assert post(oidc_api, {"kind": "deploy"}, mint(keys.rogue)).status_code == 401
    assert jwks.hits == 1


def test_a_new_kid_triggers_one_refresh(tmp_path: Path, jwks: Jwks, keys: Keys) -> None:
    with api_with(tmp_path, jwks, jwks_min_refresh=0) as api:
        assert post(api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
        assert jwks.hits == 1
        jwks.keys = [keys.rsa, keys.rotated]
        for _ in range(3):
            assert post(api, {"kind": "deploy"}, mint(keys.rotated)).status_code == 200
        assert post(api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
        assert jwks.hits == 2
        assert api.size() == 5


def test_a_key_withdrawn_from_the_set_is_refused_after_the_next_fetch(tmp_path: Path, jwks: Jwks, keys: Keys) -> None:
    with api_with(tmp_path, jwks, jwks_ttl=0, jwks_min_refresh=0) as api:
        assert post(api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
        jwks.keys = [keys.ec]
        response = post(api, {"kind": "deploy"}, mint(keys.rsa))
        assert response.status_code == 401
        assert "unknown key" in response.json()["error"]
        assert jwks.hits == 2
        assert api.size() == 1


def test_the_last_good_key_set_stays_in_use_while_the_jwks_url_fails(tmp_path: Path, jwks: Jwks, keys: Keys) -> None:
    with api_with(tmp_path, jwks, jwks_ttl=0, jwks_min_refresh=0) as api:
        assert post(api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
        jwks.status = 500
        assert post(api, {"kind": "deploy"}, mint(keys.rsa)).status_code == 200
        assert jwks.hits == 2
        assert api.size() == 2


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/.well-known/jwks"


@pytest.mark.parametrize("failure", ["unreachable", "HTTP 500", "not JSON", "no usable key"])
def test_a_key_set_that_cannot_be_had_gives_503_and_writes_nothing(
    tmp_path: Path, jwks: Jwks, keys: Keys, failure: str
) -> None:
    overrides: dict[str, Any] = {"jwks_url": _closed_port_url()} if failure == "unreachable" else {}
    jwks.status = 500 if failure == "HTTP 500" else 200
    jwks.body = {
        "not JSON": b"<html>",
        "no usable key": b'{"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}',
    }.get(failure)
    with api_with(tmp_path, jwks, **overrides) as api:
        response = post(api, {"kind": "deploy"}, mint(keys.rsa))
        assert response.status_code == 503, response.text
        assert "key set is unavailable" in response.json()["error"]
        assert api.size() == 0


def test_the_verifier_refetches_after_jwks_ttl_and_rate_limits_unknown_kids(jwks: Jwks, keys: Keys) -> None:
    now = [1000.0]
    settings = oidc_settings(jwks, jwks_ttl=300, jwks_min_refresh=30)
    with OidcVerifier(settings, clock=lambda: now[0]) as verifier:
        token = verifier.verify(mint(keys.rsa))
        assert token.id.startswith("oidc:")
        assert token.sources == frozenset({"github-actions"})
        assert token.claims["repository"] == REPO
        now[0] += 10
        with pytest.raises(OidcError) as refused:
            verifier.verify(mint(keys.rotated))
        assert refused.value.status == 401
        assert jwks.hits == 1  # within jwks_min_refresh of the first fetch
        jwks.keys = [keys.rsa, keys.rotated]
        now[0] += 30
        verifier.verify(mint(keys.rotated))
        assert jwks.hits == 2
        now[0] += 299
        verifier.verify(mint(keys.rsa))
        assert jwks.hits == 2
        now[0] += 1
        verifier.verify(mint(keys.rsa))
        assert jwks.hits == 3
        assert verifier.fetches == 3


def test_tokens_never_reach_the_logs(tmp_path: Path, jwks: Jwks, keys: Keys, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = [mint(keys.rsa), mint(keys.rogue), mint(keys.rsa, aud="x"), mint(keys.rsa, repository="evil/x")]
    with api_with(tmp_path, jwks, jwks_ttl=0, jwks_min_refresh=0) as api:
        for token in tokens:
            post(api, {"kind": "deploy"}, token)
        jwks.status = 500
        post(api, {"kind": "deploy"}, tokens[0])
    assert "OIDC key set" in caplog.text  # the fetches are logged...
    for token in tokens:
        assert token not in caplog.text  # ...the tokens are not
        assert token.split(".")[2] not in caplog.text


# --- settings -------------------------------------------------------------------------------------------


def test_server_oidc_in_sealtrail_toml(tmp_path: Path) -> None:
    config = tmp_path / "sealtrail.toml"
    config.write_text(
        "[server]\nport = 9000\n\n[server.oidc]\n"
        'audience = "sealtrail"\nallowed_repositories = ["acme/payments-api", "acme-platform/*"]\n'
        'allowed_job_workflow_refs = ["acme/*@refs/heads/main"]\nleeway = 30\n'
    )
    settings = load_settings(config)
    assert settings.port == 9000
    assert settings.oidc.enabled
    assert settings.oidc.allowed_repositories == ("acme/payments-api", "acme-platform/*")
    assert settings.oidc.allowed_job_workflow_refs == ("acme/*@refs/heads/main",)
    assert settings.oidc.leeway == 30
    assert settings.oidc.jwks() == "https://token.actions.githubusercontent.com/.well-known/jwks"
    assert settings.oidc.scopes == ("ingest",)
    assert (settings.oidc.source, settings.oidc.source_type) == ("github-actions", "github")
    assert not Settings().oidc.enabled


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        ('audience = "sealtrail"\nallowed_repos = ["acme/x"]', "unknown setting server.oidc.allowed_repos"),
        ('audience = "sealtrail"', "allowed_repositories is required"),
        ('audience = "sealtrail"\nallowed_repositories = ["acme"]', "'owner/repo' or 'owner/*'"),
        ('audience = "sealtrail"\nallowed_repositories = ["*/*"]', "'owner/repo' or 'owner/*'"),
        ('audience = "sealtrail"\nallowed_repositories = ["acme/x"]\nscopes = ["admin"]', "scopes"),
        ('audience = "sealtrail"\nallowed_repositories = ["acme/x"]\njwks_url = "http://jwks.example"', "https"),
        ('audience = "sealtrail"\nallowed_repositories = "acme/x"', "list of strings"),
        ('audience = "sealtrail"\nallowed_repositories = ["acme/x"]\nsource_type = "nope"', "source_type"),
    ],
)
def test_invalid_oidc_settings_are_refused_at_load(tmp_path: Path, table: str, reason: str) -> None:
    config = tmp_path / "sealtrail.toml"
    config.write_text(f"[server.oidc]\n{table}\n")
    with pytest.raises(ValueError) as refused:
        load_settings(config)
    assert reason in str(refused.value)
    assert str(config) in str(refused.value)
