"""GitHub Actions OIDC: a CI job authenticates with its OIDC token instead of a static sealtrail token.

The token is a JWT signed by the issuer's key set (JWKS). OidcVerifier checks
the signature (RS256 or ES256 only), iss, aud, exp/nbf/iat with leeway, the
claims a GitHub token always has, and the policy on repository and
job_workflow_ref; the result is an OidcToken, a sealtrail Token whose events
are written under the configured source with actor and attrs.oidc taken from
the claims (apply_claims). The key set is fetched at most once per jwks_ttl,
again for an unknown kid at most once per jwks_min_refresh; while the URL is
unreachable the last good key set stays in use. Tokens are never logged.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from jwt import PyJWK

from ..credentials import Token
from ..event import Actor, Envelope
from .settings import OidcSettings

__all__ = ["ALGORITHMS", "OidcError", "OidcToken", "OidcVerifier", "apply_claims", "looks_like_jwt"]

logger = logging.getLogger("sealtrail.oidc")

ALGORITHMS = frozenset({"RS256", "ES256"})
REQUIRED_CLAIMS = ("sub", "repository", "job_workflow_ref", "run_id", "actor")
PROVENANCE_CLAIMS = (
    "repository", "ref", "sha", "run_id", "run_attempt", "workflow", "job_workflow_ref", "event_name",
)  # fmt: skip
MAX_JWKS_BYTES = 1024 * 1024
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class OidcError(Exception):
    """A refused OIDC token: 401 (invalid), 403 (not allowed by policy), 503 (key set unavailable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def looks_like_jwt(presented: str) -> bool:
    """Three dot-separated base64url parts (the last may be empty, as in alg "none"), not a st_ token."""
    parts = presented.split(".")
    return (
        not presented.startswith("st_")
        and len(parts) == 3
        and all(parts[:2])
        and all(set(part) <= _B64URL for part in parts)
    )


@dataclass(frozen=True)
class OidcToken(Token):
    """A token made from verified OIDC claims: the configured scopes, one source, and the claims."""

    source_type: str = "github"
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def source(self) -> str:
        return next(iter(self.sources))

    def actor(self) -> Actor:
        """The workflow run's initiator: {name: actor, id: actor_id (if present), type: user}."""
        actor_id = _text(self.claims.get("actor_id"))
        return Actor(id=actor_id, name=_text(self.claims["actor"]), type="user")

    def provenance(self) -> dict[str, str]:
        """What attrs.oidc records: repository, ref, sha, run ids, workflow, job_workflow_ref, event_name."""
        out = {}
        for name in PROVENANCE_CLAIMS:
            value = _text(self.claims.get(name))
            if value is not None:
                out[name] = value
        return out


def _text(value: Any) -> str | None:
    """A claim as a non-empty string (GitHub sends ids as strings; integers are tolerated)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def apply_claims(env: Envelope, token: OidcToken) -> None:
    """Fill the event's actor and attrs.oidc from the token's claims; OidcError(403) if the event says otherwise.

    The source id is already limited by the token's sources; its type must be the configured one.
    A signed event must already carry what would be filled in (its signature covers it as sent).
    """
    assert env.source is not None
    if env.source.type != token.source_type:
        raise OidcError(403, f"source.type: an OIDC token writes events of type {token.source_type!r}")
    want = token.actor()
    given = env.actor
    if given is not None:
        for name in ("id", "name", "type"):
            value = getattr(given, name)
            if value is not None and value != getattr(want, name):
                raise OidcError(403, f"actor.{name}: {value!r} is not what the OIDC token says; leave it out")
    actor = Actor(id=want.id, name=want.name, type=want.type, ip=None if given is None else given.ip)
    provenance = token.provenance()
    attrs = env.attrs or {}
    if "oidc" in attrs and attrs["oidc"] != provenance:
        raise OidcError(403, "attrs.oidc: set by sealtrail from the OIDC token; leave it out")
    if actor == given and attrs.get("oidc") == provenance:
        return
    if env.sig is not None:
        raise OidcError(403, "sig: a signed event sent with an OIDC token must already carry its actor and attrs.oidc")
    env.actor = actor
    env.attrs = {**attrs, "oidc": provenance}


def _repository_allowed(repository: str, patterns: tuple[str, ...]) -> bool:
    """ "owner/repo" matches exactly, "owner/*" any repository of owner (GitHub names are case-insensitive)."""
    owner, _, name = repository.lower().partition("/")
    for pattern in patterns:
        p_owner, _, p_name = pattern.lower().partition("/")
        if p_owner == owner and p_name in ("*", name) and name:
            return True
    return False


class OidcVerifier:
    """Verifies OIDC tokens against the configured issuer, audience, key set and policy."""

    def __init__(
        self,
        settings: OidcSettings,
        *,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not settings.enabled:
            raise ValueError("server.oidc.audience is not set: OIDC is off")
        self.settings = settings
        self.url = settings.jwks()
        self._client = client or httpx.Client(timeout=settings.jwks_timeout, follow_redirects=False)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_error = ""
        self.fetches = 0
        """Key-set fetches attempted so far."""

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OidcVerifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- verification --------------------------------------------------------

    def verify(self, presented: str) -> OidcToken:
        """The token's grants and claims, or OidcError (401 invalid, 403 policy, 503 key set unavailable)."""
        s = self.settings
        try:
            header = jwt.get_unverified_header(presented)
        except jwt.PyJWTError:
            raise OidcError(401, "malformed OIDC token") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALGORITHMS:
            raise OidcError(401, f"OIDC token algorithm {str(alg)[:16]!r} is not accepted (RS256 or ES256 only)")
        if not isinstance(kid, str) or not kid:
            raise OidcError(401, "OIDC token has no key id (kid)")
        key = self._signing_key(kid)
        if key.algorithm_name != alg:
            raise OidcError(401, f"OIDC token says {alg}, but its key {kid[:64]!r} is for {key.algorithm_name}")
        try:
            claims: dict[str, Any] = jwt.decode(
                presented,
                key.key,
                algorithms=[key.algorithm_name],
                audience=s.audience,
                issuer=s.issuer,
                leeway=s.leeway,
                options={"require": ["exp", "iat", "iss", "aud", *REQUIRED_CLAIMS]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError(401, "OIDC token expired") from None
        except jwt.ImmatureSignatureError:
            raise OidcError(401, "OIDC token not yet valid (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise OidcError(401, f"OIDC token audience is not {s.audience!r}") from None
        except jwt.InvalidIssuerError:
            raise OidcError(401, f"OIDC token issuer is not {s.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise OidcError(401, "OIDC token signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise OidcError(401, f"OIDC token lacks the {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise OidcError(401, f"invalid OIDC token: {exc}") from None
        iat = claims["iat"]
        if not isinstance(iat, int | float) or not 0 < iat <= time.time() + s.leeway:
            raise OidcError(401, "OIDC token not yet valid (iat in the future)")  # PyJWT < 2.10 skips this
        for name in REQUIRED_CLAIMS:
            if _text(claims[name]) is None:
                raise OidcError(401, f"OIDC token claim {name!r} is not a non-empty string")
        repository = str(claims["repository"])
        if not _repository_allowed(repository, s.allowed_repositories):
            raise OidcError(403, f"repository {repository!r} may not write here (server.oidc.allowed_repositories)")
        workflow_ref = str(claims["job_workflow_ref"])
        if s.allowed_job_workflow_refs and not any(
            fnmatch.fnmatchcase(workflow_ref, pattern) for pattern in s.allowed_job_workflow_refs
        ):
            raise OidcError(
                403, f"job_workflow_ref {workflow_ref!r} may not write here (server.oidc.allowed_job_workflow_refs)"
            )
        run = _text(claims.get("jti")) or _text(claims["run_id"])
        issued = datetime.fromtimestamp(iat, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return OidcToken(
            id=f"oidc:{run}",
            name=f"github-actions:{repository}",
            scopes=frozenset(s.scopes),
            sources=frozenset({s.source}),
            created=issued,
            source_type=s.source_type,
            claims=claims,
        )

    # -- the key set ---------------------------------------------------------

    def _signing_key(self, kid: str) -> PyJWK:
        """The key for `kid`: fetches when the set is older than jwks_ttl or lacks kid (rate-limited)."""
        with self._lock:
            now = self._clock()
            stale = self._fetched_at is None or now - self._fetched_at >= self.settings.jwks_ttl
            may_fetch = self._attempted_at is None or now - self._attempted_at >= self.settings.jwks_min_refresh
            if (stale or kid not in self._keys) and may_fetch:
                self._fetch(now)
            key = self._keys.get(kid)
            have_keys = bool(self._keys)
            error = self._last_error
        if key is not None:
            return key
        if not have_keys:
            raise OidcError(503, f"the OIDC key set is unavailable ({error}); try again shortly")
        raise OidcError(401, f"OIDC token signed by an unknown key (kid {kid[:64]!r})")

    def _fetch(self, now: float) -> None:
        """Replace the key set from the URL; on failure keep the old one and remember why."""
        self._attempted_at = now
        self.fetches += 1
        try:
            self._keys = self._download()
        except (httpx.HTTPError, ValueError) as exc:
            self._last_error = f"{self.url}: {exc}"
            logger.warning("cannot fetch the OIDC key set from %s: %s", self.url, exc)
            return
        self._fetched_at = now
        self._last_error = ""
        logger.info("fetched the OIDC key set from %s: %d keys", self.url, len(self._keys))

    def _download(self) -> dict[str, PyJWK]:
        with self._client.stream("GET", self.url, headers={"Accept": "application/json"}) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"key set over {MAX_JWKS_BYTES} bytes")
        return parse_jwks(bytes(body))


def parse_jwks(body: bytes) -> dict[str, PyJWK]:
    """The RS256/ES256 signing keys of a JWKS document, by kid (other keys are skipped)."""
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError("the key set is not JSON") from None
    items = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise ValueError("not a JWKS document (no keys list)")
    keys: dict[str, PyJWK] = {}
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("kid"), str) or item.get("use", "sig") != "sig":
            continue
        try:
            key = PyJWK(item)
        except jwt.PyJWTError:
            continue
        if key.algorithm_name in ALGORITHMS:
            keys[item["kid"]] = key
    if not keys:
        raise ValueError("the key set has no RS256 or ES256 signing key")
    return keys
