"""What the request handlers share, created by the app's lifespan (sealtrail.server.app)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from ..alerts import AlertService
from ..archive import Archiver
from ..credentials import Credentials
from ..datadir import DataDir
from ..exporters.forwarder import ForwarderGroup
from ..integrity import IntegrityAlarm, IntegrityMonitor
from ..log import Log
from ..metrics import Metrics
from ..store.sqlite import SqliteStore
from ..timestamping import Timestamping
from ..view import LogView
from ..witnessing import Witnessing
from .oidc import OidcVerifier
from .settings import Settings

__all__ = ["Services"]


@dataclass
class Services:
    """What the handlers share; created by the lifespan."""

    directory: DataDir
    settings: Settings
    credentials: Credentials
    store: SqliteStore
    log: Log
    view: LogView
    oidc: OidcVerifier | None = None
    """GitHub Actions OIDC token verifier, when [server.oidc] is configured."""
    preparers: ProcessPoolExecutor | None = None
    """Processes that prepare big request bodies, so the event loop and the sequencer keep the other core."""
    metrics: Metrics = field(default_factory=Metrics)
    """This app's Prometheus metrics; components export their status with `metrics.provide`."""
    on_integrity_failure: list[IntegrityAlarm] = field(default_factory=list)
    """Integrity alarms: append a callable(origin, message); called after every failed periodic audit."""
    integrity: IntegrityMonitor | None = None
    """The periodic integrity audit (None when server.verify_interval is 0)."""
    archiver: Archiver | None = None
    """Publishes new checkpoints to the write-once archive ([archive] in sealtrail.toml); `status()` for health."""
    witnessing: Witnessing | None = None
    """Gets each new checkpoint cosigned by the [witnessing] witnesses; `status()` for GET /v1/witnesses."""
    timestamping: Timestamping | None = None
    """Gets checkpoints RFC 3161 time-stamped by the [timestamping] TSA; `status()` for GET /v1/timestamping."""
    forwarders: ForwarderGroup | None = None
    """The [[forward]] SIEM forwarders, one thread each; `statuses()` for cursor and lag."""
    alerts: AlertService | None = None
    """The [alerts] rules and sinks (alerts.db); `raise_integrity_alarm` reports integrity failures, `status()`."""
