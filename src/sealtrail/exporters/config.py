"""`[[forward]]` tables of sealtrail.toml: one SIEM forwarder each, validated before anything is sent.

    [[forward]]
    name = "es"                      # the cursor's name in forwarders.db: keep it stable
    type = "elasticsearch"           # elasticsearch | opensearch | splunk_hec | syslog | ocsf
    url = "https://es.example:9200"
    index = "sealtrail-audit"
    api_key_env = "SEALTRAIL_ES_API_KEY"

Secrets never appear in the file: each is named by `<secret>_env` (an
environment variable) or `<secret>_file` (a file readable by its owner only,
mode 0600). URLs must not carry credentials.
"""

from __future__ import annotations

import os
import re
import stat
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["SINK_TYPES", "ForwardConfig", "load_forward_configs", "parse_forward_tables", "read_secret"]

SINK_TYPES = ("elasticsearch", "opensearch", "splunk_hec", "syslog", "ocsf")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class ForwardConfig:
    """One `[[forward]]` table (see docs/forwarders.md for every key)."""

    name: str
    type: str
    url: str | None = None
    index: str | None = None
    path: str | None = None
    address: str | None = None
    # credentials: the names of where they are, never the values
    api_key_env: str | None = None
    api_key_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    token_env: str | None = None
    token_file: str | None = None
    # TLS
    verify: bool = True
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    server_name: str | None = None
    # Splunk HEC
    format: str = "ecs"
    sourcetype: str | None = None
    ack: bool = False
    ack_timeout: float = 60.0
    # syslog
    hostname: str | None = None
    app_name: str = "sealtrail"
    facility: int = 13
    sd_id: str = "sealtrail@32473"
    # delivery
    batch_size: int = 500
    poll_interval: float = 1.0
    timeout: float = 10.0
    backoff_initial: float = 0.5
    max_backoff: float = 60.0
    start: str = "beginning"

    def __post_init__(self) -> None:
        where = f"forward {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"forward name {self.name!r}: 1-64 letters, digits, '_', '.', '-'")
        if self.type not in SINK_TYPES:
            raise ValueError(f"{where}: type must be one of {', '.join(SINK_TYPES)}, not {self.type!r}")
        if self.url is not None:
            _check_url(where, self.url)
        if self.type in ("elasticsearch", "opensearch"):
            if not self.url or not self.index:
                raise ValueError(f"{where}: {self.type} needs url and index")
            if (self.api_key_env or self.api_key_file) and self.username:
                raise ValueError(f"{where}: use either an API key or username/password, not both")
        elif self.type == "splunk_hec":
            if not self.url:
                raise ValueError(f"{where}: splunk_hec needs url (https://splunk.example:8088)")
            if not (self.token_env or self.token_file):
                raise ValueError(f"{where}: splunk_hec needs token_env or token_file (the HEC token)")
            if self.format not in ("ecs", "ocsf"):
                raise ValueError(f"{where}: format must be ecs or ocsf")
        elif self.type == "syslog":
            self.syslog_address()
        elif self.type == "ocsf" and bool(self.url) == bool(self.path):
            raise ValueError(f"{where}: ocsf needs exactly one of url (HTTP POST) or path (NDJSON file)")
        for secret in ("api_key", "password", "token"):
            if getattr(self, f"{secret}_env") and getattr(self, f"{secret}_file"):
                raise ValueError(f"{where}: give {secret}_env or {secret}_file, not both")
        if self.username and not (self.password_env or self.password_file):
            raise ValueError(f"{where}: username needs password_env or password_file")
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError(f"{where}: batch_size must be 1..10000")
        if min(self.poll_interval, self.timeout, self.backoff_initial, self.max_backoff, self.ack_timeout) <= 0:
            raise ValueError(f"{where}: intervals and timeouts must be positive")
        if self.start not in ("beginning", "end"):
            raise ValueError(f"{where}: start must be 'beginning' or 'end'")

    def syslog_address(self) -> tuple[str, str, int]:
        """(scheme, host, port) of `address` = tcp://host:port or tls://host:port."""
        parts = urlsplit(self.address or "")
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None or parts.path not in ("", "/"):
            raise ValueError(f"forward {self.name!r}: syslog needs address = tcp://host:port or tls://host:port")
        return parts.scheme, parts.hostname, port


def _check_url(where: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where}: url must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{where}: put credentials in *_env or *_file settings, not in the url")


def parse_forward_tables(tables: Any, origin: str = "sealtrail.toml") -> tuple[ForwardConfig, ...]:
    """The `forward` array of tables (as tomllib reads it), with errors naming the file."""
    if tables is None:
        return ()
    if not isinstance(tables, list) or not all(isinstance(table, dict) for table in tables):
        raise ValueError(f"{origin}: forward must be an array of tables ([[forward]])")
    known = {f.name for f in fields(ForwardConfig)}
    configs = []
    for number, table in enumerate(tables):
        unknown = sorted(set(table) - known)
        if unknown:
            raise ValueError(f"{origin}: unknown setting forward.{unknown[0]} (in [[forward]] #{number + 1})")
        if "name" not in table or "type" not in table:
            raise ValueError(f"{origin}: [[forward]] #{number + 1} needs name and type")
        try:
            configs.append(ForwardConfig(**table))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{origin}: {exc}") from None
    names = [config.name for config in configs]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate:
        raise ValueError(f"{origin}: two [[forward]] tables are named {duplicate!r}")
    return tuple(configs)


def load_forward_configs(path: Path) -> tuple[ForwardConfig, ...]:
    """The [[forward]] tables of a sealtrail.toml file."""
    try:
        document = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: {exc}") from None
    return parse_forward_tables(document.get("forward"), str(path))


def read_secret(env: str | None, file: str | None, what: str) -> str | None:
    """A secret from the environment variable or the owner-only file named; None if neither is named."""
    if env:
        value = os.environ.get(env, "").strip()
        if not value:
            raise ValueError(f"{what}: environment variable {env} is not set")
        return value
    if file:
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"{what}: secret file {path} does not exist")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ValueError(f"{what}: {path} is readable by others (mode {mode:o}); run: chmod 600 {path}")
        value = path.read_text().strip()
        if not value:
            raise ValueError(f"{what}: secret file {path} is empty")
        return value
    return None
