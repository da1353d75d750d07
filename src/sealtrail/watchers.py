"""`[[monitor]]` in sealtrail.toml: `serve` watches tiles logs (its own published copies, or other logs)
with sealtrail.monitor and raises an integrity alarm when one forks, rolls back or serves a bad
signature or bad tiles.

Ownership: a Watchers owns one thread per configured log; each thread owns its Monitor and the
Monitor's state file (the last verified checkpoint) under the data directory, so a restart keeps
what was trusted. Alarms go to the hooks given at construction, from the watcher's thread.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .fetch import open_source
from .follow import Kind, Observation
from .integrity import RaiseAlarm
from .monitor import Monitor
from .note import NoteError, Verifier, parse_verifier

__all__ = ["MonitorConfig", "Watchers", "parse_monitor_tables"]

logger = logging.getLogger(__name__)


_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_KINDS = {
    Kind.FORK: "fork",
    Kind.ROLLBACK: "fork",
    Kind.BAD_SIGNATURE: "verify_failure",
    Kind.BAD_TILES: "verify_failure",
}
"""A rollback is a split view too (the log showed someone a longer history); a bad signature or bad tiles
fail verification."""


@dataclass(frozen=True)
class MonitorConfig:
    """One `[[monitor]]` table."""

    name: str
    url: str
    """A tiles log: http(s) URL prefix, s3://bucket/prefix, or a directory."""
    vkey: str | None = None
    """The log's key (default: this log's own key, for watching its own copies)."""
    origin: str | None = None
    interval: float = 60.0
    token_env: str | None = None
    """Environment variable holding a bearer token for a private sealtrail server."""
    endpoint_url: str | None = None


def parse_monitor_tables(tables: object) -> tuple[MonitorConfig, ...]:
    """The `[[monitor]]` array of tables; ValueError says what is wrong."""
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise ValueError("monitor is not an array of tables: write [[monitor]] name = ... url = ...")
    known = {"name", "url", "vkey", "origin", "interval", "token_env", "endpoint_url"}
    configs = []
    for number, table in enumerate(tables, start=1):
        where = f"monitor #{number}"
        unknown = set(table) - known
        if unknown:
            raise ValueError(f"{where}: unknown setting {sorted(unknown)[0]}")
        name, url = table.get("name"), table.get("url")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"{where}: name must be lowercase letters, digits, '.', '_' or '-'")
        if not isinstance(url, str) or not url:
            raise ValueError(f"{where}: url is required (http(s)://, s3:// or a directory)")
        interval = table.get("interval", 60.0)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
            raise ValueError(f"{where}: interval must be a positive number of seconds")
        for key in ("vkey", "origin", "token_env", "endpoint_url"):
            if key in table and not isinstance(table[key], str):
                raise ValueError(f"{where}: {key} must be a string")
        if "vkey" in table:
            try:
                parse_verifier(table["vkey"])
            except NoteError as exc:
                raise ValueError(f"{where}: vkey: {exc}") from None
        configs.append(
            MonitorConfig(
                name,
                url,
                table.get("vkey"),
                table.get("origin"),
                float(interval),
                table.get("token_env"),
                table.get("endpoint_url"),
            )
        )
    if len({c.name for c in configs}) != len(configs):
        raise ValueError("monitor: two monitors share a name")
    return tuple(configs)


class Watchers:
    """One polling thread per configured log (see the module docstring)."""

    def __init__(
        self, configs: Sequence[MonitorConfig], state_dir: Path, own_key: Verifier, alarms: Sequence[RaiseAlarm]
    ) -> None:
        self._configs = configs
        self._state_dir = state_dir
        self._own_key = own_key
        self._alarms = alarms
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.monitors: dict[str, Monitor] = {}

    def start(self) -> Watchers:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        for config in self._configs:
            verifier = parse_verifier(config.vkey) if config.vkey else self._own_key
            token = os.environ.get(config.token_env) if config.token_env else None
            source = open_source(config.url, token, config.endpoint_url)
            state = self._state_dir / f"{config.name}.json"
            monitor = Monitor(source, config.origin or verifier.name, verifier, state, source_name=config.name)
            self.monitors[config.name] = monitor
            thread = threading.Thread(target=self._run, args=(config, monitor), name=f"sealtrail-monitor-{config.name}")
            thread.daemon = True
            thread.start()
            self._threads.append(thread)
        return self

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
        for monitor in self.monitors.values():
            monitor.close()

    def _run(self, config: MonitorConfig, monitor: Monitor) -> None:
        alarmed = False
        while not self._stop.is_set():
            try:
                observation = monitor.poll()
            except Exception:  # a bug or an unexpected source error: keep watching
                logger.exception("monitor %s: poll failed", config.name)
                observation = None
            if observation is not None and observation.alarm:
                if not alarmed:  # a fork stays a fork: one alarm until the operator acts
                    self._raise(config, observation)
                alarmed = True
            elif observation is not None and observation.kind is Kind.OK:
                alarmed = False
            self._stop.wait(config.interval)

    def _raise(self, config: MonitorConfig, observation: Observation) -> None:
        kind = _KINDS.get(observation.kind, "verify_failure")
        evidence: dict[str, Any] = {"monitor": config.name, "url": config.url, "observed": observation.kind.value}
        if observation.evidence is not None:
            evidence["conflict"] = observation.evidence.to_json()
        message = f"monitor {config.name}: {observation.message}"
        logger.error("INTEGRITY ALARM from %s", message)
        for alarm in self._alarms:
            try:
                alarm(kind, message, evidence)
            except Exception:
                logger.exception("monitor %s: an alarm hook failed", config.name)
