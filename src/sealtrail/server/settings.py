"""Server settings: defaults, overridden by sealtrail.toml, overridden by command-line flags."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..alerts.rules import AlertsConfig, parse_alerts_table
from ..archive import ArchiveSettings, archive_settings
from ..event import SOURCE_TYPES
from ..exporters.config import ForwardConfig, parse_forward_tables
from ..note import is_valid_name
from ..retention import RetentionConfig, retention_config
from ..timestamping import TimestampingSettings, parse_timestamping
from ..watchers import MonitorConfig, parse_monitor_tables
from ..witnessing import WitnessingSettings, parse_witnessing

__all__ = ["MAX_INDEX", "OidcSettings", "Settings", "load_settings"]

MAX_INDEX = 2**62
"""Largest index or tree size a request may name (SQLite integers are 64-bit)."""


# --- GitHub Actions OIDC ([server.oidc]) ----------------------------------------------------------

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
OIDC_SCOPES = frozenset({"ingest", "read"})
_REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9_.-]+/(\*|[A-Za-z0-9_.-]+)")


@dataclass(frozen=True)
class OidcSettings:
    """`[server.oidc]`: accept GitHub Actions OIDC tokens as bearer tokens (enabled by setting `audience`).

    Example::

        [server.oidc]
        audience = "sealtrail"                        # required: the `audience` the workflow asks for
        allowed_repositories = ["acme/payments-api", "acme-platform/*"]   # required: "owner/repo" or "owner/*"
        allowed_job_workflow_refs = ["acme/*/.github/workflows/deploy.yml@refs/heads/main"]  # optional globs
        # issuer = "https://token.actions.githubusercontent.com"
        # jwks_url = "<issuer>/.well-known/jwks"
        # scopes = ["ingest"]             # "ingest" and/or "read"
        # source = "github-actions"       # events are written as source {type = source_type, id = source}
        # source_type = "github"
        # leeway = 60                     # seconds of clock skew allowed on exp, nbf, iat
        # jwks_ttl = 3600                 # seconds the fetched key set is used before it is fetched again
        # jwks_min_refresh = 10           # fewest seconds between fetches (unknown kid, retry after failure)
        # jwks_timeout = 5                # seconds for one key-set fetch
    """

    audience: str | None = None
    issuer: str = GITHUB_ISSUER
    jwks_url: str | None = None
    allowed_repositories: tuple[str, ...] = ()
    allowed_job_workflow_refs: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("ingest",)
    source: str = "github-actions"
    source_type: str = "github"
    leeway: float = 60.0
    jwks_ttl: float = 3600.0
    jwks_min_refresh: float = 10.0
    jwks_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name in ("allowed_repositories", "allowed_job_workflow_refs", "scopes"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(item, str) for item in value):
                raise ValueError(f"server.oidc.{name} must be a list of strings")
            object.__setattr__(self, name, tuple(value))
        if self.audience is not None and (not isinstance(self.audience, str) or not self.audience):
            raise ValueError("server.oidc.audience must be a non-empty string")
        for pattern in self.allowed_repositories:
            if not _REPOSITORY_PATTERN.fullmatch(pattern):
                raise ValueError(f"server.oidc.allowed_repositories: {pattern!r} is not 'owner/repo' or 'owner/*'")
        if not self.scopes or not set(self.scopes) <= OIDC_SCOPES:
            raise ValueError(f"server.oidc.scopes must be among {', '.join(sorted(OIDC_SCOPES))}")
        if not is_valid_name(self.source) or "/" in self.source:
            raise ValueError(f"server.oidc.source {self.source!r} must be non-empty with no spaces, '+' or '/'")
        if self.source_type not in SOURCE_TYPES:
            raise ValueError(f"server.oidc.source_type must be one of {', '.join(sorted(SOURCE_TYPES))}")
        if min(self.leeway, self.jwks_ttl, self.jwks_min_refresh) < 0 or self.jwks_timeout <= 0:
            raise ValueError("server.oidc: leeway, jwks_ttl and jwks_min_refresh must be >= 0, jwks_timeout > 0")
        if self.enabled:
            if not self.allowed_repositories:
                raise ValueError(
                    "server.oidc.allowed_repositories is required: any GitHub repository can mint a token "
                    "for any audience"
                )
            _check_jwks_url(self.jwks())

    @property
    def enabled(self) -> bool:
        return self.audience is not None

    def jwks(self) -> str:
        """The key set's URL: jwks_url, else the issuer's /.well-known/jwks."""
        return self.jwks_url or self.issuer.rstrip("/") + "/.well-known/jwks"


def _check_jwks_url(url: str) -> None:
    """https, or http only to a loopback address (for tests and local proxies)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http":
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return
    raise ValueError(f"server.oidc.jwks_url must be an https:// URL (http:// only to loopback), not {url!r}")


# --- [server] ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """`[server]` in sealtrail.toml (GitHub Actions OIDC: the `[server.oidc]` table, see OidcSettings)."""

    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 10 * 1024 * 1024
    """Largest request body accepted; bigger ones get 413 and nothing is written."""
    checkpoint_interval: float = 1.0
    """Seconds between signed checkpoints while events arrive (a checkpoint follows each batch)."""
    public_read: bool = False
    """Serve the read API and the tiles without a token (for a public log)."""
    wait_timeout: float = 30.0
    """Longest a request with ?wait=checkpoint waits for its checkpoint."""
    syslog: tuple[str, ...] = field(default_factory=tuple)
    """Syslog listeners, e.g. tcp://127.0.0.1:6514 or tls://0.0.0.0:6514."""
    prepare_workers: int | None = None
    """Processes that validate and encode big request bodies (default: one fewer than the cores; 0: none)."""
    access_log: bool = False
    """Log every request (method, path, status) — never headers or bodies."""
    verify_interval: float = 3600.0
    """Seconds between full integrity audits of the store inside `serve` (the first at start); 0 turns them off."""
    public_metrics: bool = False
    """Serve /metrics without a token (otherwise it needs a token with the read scope)."""
    tls_cert: str | None = None
    tls_key: str | None = None
    """Certificate and key for tls:// syslog listeners."""
    oidc: OidcSettings = field(default_factory=OidcSettings)
    """`[server.oidc]`: GitHub Actions OIDC tokens as bearer tokens (off unless `audience` is set)."""
    archive: ArchiveSettings | None = None
    """The top-level `[archive]` table: publish to a write-once S3 archive while serving (see ArchiveSettings)."""
    witnessing: WitnessingSettings = field(default_factory=WitnessingSettings)
    """The top-level `[witnessing]` table: witnesses that cosign each checkpoint (see sealtrail.witnessing)."""
    forward: tuple[ForwardConfig, ...] = ()
    """The top-level `[[forward]]` tables: SIEM forwarders run inside `serve` (see docs/forwarders.md)."""
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    """The top-level `[retention]` table: policies `serve` enforces every `interval` (see docs/retention.md)."""
    alerts: AlertsConfig | None = None
    """The top-level `[alerts]` table: alert rules and sinks run inside `serve` (see docs/alerts.md); None: off."""
    monitor: tuple[MonitorConfig, ...] = ()
    """The top-level `[[monitor]]` tables: tiles logs `serve` watches for forks (see sealtrail.watchers)."""
    timestamping: TimestampingSettings | None = None
    """The top-level `[timestamping]` table: RFC 3161 time-stamps on checkpoints (sealtrail.timestamping); None: off."""


_TOP_LEVEL: dict[str, Callable[[Any, Path], Any]] = {
    "archive": lambda table, path: archive_settings(path, table),
    "witnessing": lambda table, path: parse_witnessing(table),
    "forward": lambda table, path: parse_forward_tables(table, str(path)),
    "retention": lambda table, path: retention_config(table),
    "alerts": lambda table, path: parse_alerts_table(table, path.parent),
    "monitor": lambda table, path: parse_monitor_tables(table),
    "timestamping": lambda table, path: parse_timestamping(table, path.parent),
}
"""The top-level tables of sealtrail.toml beside [server]: each parses into the Settings field of its name."""


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Settings from the TOML file's tables (if any), then the non-None overrides.

    An `[alerts]` table (even an empty one) runs the alert engine with every built-in rule on.
    Without one the engine does not run: evaluating every event in the server process costs
    ingest about half its throughput on two cores (bench/http_ingest.py).
    """
    settings = Settings()
    if path is not None:
        try:
            document = tomllib.loads(path.read_text())
            table = document.get("server", {})
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        unknown = set(table) - ({f.name for f in fields(Settings)} - set(_TOP_LEVEL))
        if unknown:
            raise ValueError(f"{path}: unknown setting server.{sorted(unknown)[0]}")
        for name, parse in _TOP_LEVEL.items():
            if name in document:
                try:
                    table[name] = parse(document[name], path)
                except ValueError as exc:
                    message = str(exc)
                    raise ValueError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
        if "syslog" in table:
            table["syslog"] = tuple(table["syslog"])
        if "oidc" in table:
            table["oidc"] = _oidc_settings(path, table["oidc"])
        settings = replace(settings, **table)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _oidc_settings(path: Path, table: Any) -> OidcSettings:
    """The [server.oidc] table, with unknown keys and invalid values reported against the file."""
    if not isinstance(table, dict):
        raise ValueError(f"{path}: server.oidc must be a table")
    known = {f.name for f in fields(OidcSettings)}
    unknown = set(table) - known
    if unknown:
        raise ValueError(f"{path}: unknown setting server.oidc.{sorted(unknown)[0]}")
    try:
        return OidcSettings(**table)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: {exc}") from None
