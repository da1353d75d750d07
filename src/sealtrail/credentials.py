"""API tokens and configured sources, kept beside the log in `<dir>/credentials.db`.

Tokens are `st_<id>_<secret>`: the id finds the row, the 256-bit secret is
stored only as its SHA-256 and compared in constant time. A token carries
scopes — `ingest` (optionally limited to named sources), `read`, `admin` —
and is never logged. Sources hold what their tools need to prove a request
is theirs: an HMAC or shared secret (kept as given, since HMACs need it; the
file is mode 0600), and Ed25519 verifier keys for events signed at the source.
Unlike the log, this database is mutable: tokens are revoked, sources change.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
import stat
import time
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .event import SOURCE_TYPES
from .note import Ed25519Verifier, NoteError, is_valid_name, parse_verifier
from .sources.base import constant_time_equal

__all__ = ["SCOPES", "Credentials", "CredentialsError", "Source", "Token"]

SCOPES = frozenset({"ingest", "read", "admin"})
CACHE_SECONDS = 5.0
TOKEN_PREFIX = "st_"  # noqa: S105 (a format marker, not a secret)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    hash       BLOB NOT NULL,
    scopes     TEXT NOT NULL,
    sources    TEXT NOT NULL,
    created    TEXT NOT NULL,
    revoked    TEXT
);
CREATE TABLE IF NOT EXISTS sources (
    name              TEXT PRIMARY KEY,
    type              TEXT NOT NULL,
    secret            TEXT,
    keys              TEXT NOT NULL,
    require_signature INTEGER NOT NULL,
    created           TEXT NOT NULL
);
"""


class CredentialsError(ValueError):
    """A token or source request is invalid (unknown scope, bad name, duplicate...)."""


@dataclass(frozen=True)
class Token:
    """An API token's grants (never its secret)."""

    id: str
    name: str
    scopes: frozenset[str]
    sources: frozenset[str]
    created: str
    revoked: str | None = None

    def allows(self, scope: str) -> bool:
        return self.revoked is None and (scope in self.scopes or "admin" in self.scopes)

    def allows_source(self, source: str) -> bool:
        """An ingest token limited to sources may only write events of those sources."""
        return not self.sources or source in self.sources or "admin" in self.scopes


@dataclass(frozen=True)
class Source:
    """A configured source: its type, its shared secret, its signing keys."""

    name: str
    type: str
    secret: str | None
    keys: tuple[str, ...]
    require_signature: bool
    created: str

    def verifiers(self) -> list[Ed25519Verifier]:
        return [parse_verifier(key) for key in self.keys]


def _hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Credentials:
    """Tokens and sources of one data directory (server running or not)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise CredentialsError(f"{path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        with self._connect() as conn:
            conn.executescript(_SCHEMA)
        self._cache: dict[bytes, tuple[float, Token | None]] = {}
        self._source_cache: dict[str, tuple[float, Source | None]] = {}
        self._registered: tuple[float, dict[str, Source]] | None = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=10)) as conn, conn:
            yield conn

    # -- tokens --------------------------------------------------------------

    def create_token(
        self, name: str, scopes: AbstractSet[str], sources: AbstractSet[str] = frozenset()
    ) -> tuple[str, Token]:
        """A new token; returns the secret (shown once) and its grants."""
        unknown = set(scopes) - SCOPES
        if not scopes or unknown:
            raise CredentialsError(f"scopes must be among {', '.join(sorted(SCOPES))}")
        if sources and "ingest" not in scopes:
            raise CredentialsError("--source limits an ingest token; add --scope ingest")
        missing = [source for source in sources if self.source(source) is None]
        if missing:
            raise CredentialsError(f"unknown source {missing[0]!r}; add it with `sealtrail source add`")
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        token = Token(token_id, name or token_id, frozenset(scopes), frozenset(sources), _now())
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO tokens(id, name, hash, scopes, sources, created) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    token.id,
                    token.name,
                    _hash(secret),
                    " ".join(sorted(scopes)),
                    " ".join(sorted(sources)),
                    token.created,
                ),
            )
        return f"{TOKEN_PREFIX}{token_id}_{secret}", token

    def authenticate(self, presented: str) -> Token | None:
        """The token's grants if `presented` is a live token, else None (constant-time on the secret).

        Answers are cached for CACHE_SECONDS (keyed by the secret's hash), so a
        revocation made by another process takes effect within that time.
        """
        digest = _hash(presented)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        token = self._lookup(presented)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now, token)
        return token

    def _lookup(self, presented: str) -> Token | None:
        if not presented.startswith(TOKEN_PREFIX):
            return None
        token_id, _, secret = presented[len(TOKEN_PREFIX) :].partition("_")
        with self._connect() as conn:
            row = conn.execute(
                "SELECT id, name, hash, scopes, sources, created, revoked FROM tokens WHERE id = ?", (token_id,)
            ).fetchone()
        if row is None or not constant_time_equal(_hash(secret), row[2]) or row[6] is not None:
            return None
        return Token(row[0], row[1], frozenset(row[3].split()), frozenset(row[4].split()), row[5], row[6])

    def tokens(self) -> list[Token]:
        with self._connect() as conn:
            rows = conn.execute("SELECT id, name, scopes, sources, created, revoked FROM tokens ORDER BY created")
            return [Token(r[0], r[1], frozenset(r[2].split()), frozenset(r[3].split()), r[4], r[5]) for r in rows]

    def revoke(self, token_id: str) -> None:
        self._cache.clear()
        with self._connect() as conn:
            done = conn.execute("UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (_now(), token_id))
        if done.rowcount == 0:
            raise CredentialsError(f"no live token with id {token_id!r}")

    # -- sources -------------------------------------------------------------

    def add_source(
        self,
        name: str,
        source_type: str,
        *,
        secret: str | None = None,
        keys: tuple[str, ...] = (),
        require_signature: bool = False,
    ) -> Source:
        if not is_valid_name(name) or "/" in name:
            raise CredentialsError(f"source name {name!r} must be non-empty with no spaces, '+' or '/'")
        if source_type not in SOURCE_TYPES:
            raise CredentialsError(f"source type must be one of {', '.join(sorted(SOURCE_TYPES))}")
        for key in keys:
            try:
                parse_verifier(key)
            except NoteError as exc:
                raise CredentialsError(f"--key {key!r}: {exc}") from None
        if require_signature and not keys:
            raise CredentialsError("--require-signature needs at least one --key")
        source = Source(name, source_type, secret, tuple(keys), require_signature, _now())
        self._source_cache.pop(name, None)
        self._registered = None
        try:
            with self._connect() as conn:
                conn.execute(
                    "INSERT INTO sources(name, type, secret, keys, require_signature, created) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (name, source_type, secret, json.dumps(list(keys)), int(require_signature), source.created),
                )
        except sqlite3.IntegrityError:
            raise CredentialsError(f"source {name!r} already exists") from None
        return source

    def source(self, name: str) -> Source | None:
        """The source named `name` (cached for CACHE_SECONDS)."""
        now = time.monotonic()
        cached = self._source_cache.get(name)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        found = self._load_source(name)
        self._source_cache[name] = (now, found)
        return found

    def _load_source(self, name: str) -> Source | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT name, type, secret, keys, require_signature, created FROM sources WHERE name = ?", (name,)
            ).fetchone()
        if row is None:
            return None
        return Source(row[0], row[1], row[2], tuple(json.loads(row[3])), bool(row[4]), row[5])

    def registered(self) -> dict[str, Source]:
        """Every source by name (a snapshot, cached for CACHE_SECONDS)."""
        now = time.monotonic()
        if self._registered is None or now - self._registered[0] >= CACHE_SECONDS:
            self._registered = (now, {source.name: source for source in self.sources()})
        return self._registered[1]

    def sources(self) -> list[Source]:
        with self._connect() as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM sources ORDER BY name")]
        return [source for name in names if (source := self._load_source(name)) is not None]
