"""Server settings: defaults, overridden by sealtrail.toml, overridden by command-line flags."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["MAX_INDEX", "Settings", "load_settings"]

MAX_INDEX = 2**62
"""Largest index or tree size a request may name (SQLite integers are 64-bit)."""


@dataclass(frozen=True)
class Settings:
    """`[server]` in sealtrail.toml."""

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
    tls_cert: str | None = None
    tls_key: str | None = None
    """Certificate and key for tls:// syslog listeners."""


def load_settings(path: Path | None, **overrides: Any) -> Settings:
    """Settings from the TOML file's [server] table (if any), then the non-None overrides."""
    settings = Settings()
    if path is not None:
        try:
            table = tomllib.loads(path.read_text()).get("server", {})
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}") from None
        known = {f.name for f in fields(Settings)}
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"{path}: unknown setting server.{sorted(unknown)[0]}")
        if "syslog" in table:
            table["syslog"] = tuple(table["syslog"])
        settings = replace(settings, **table)
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})
