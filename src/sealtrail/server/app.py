"""The ASGI application: ingest, read API, tiles, and the source webhooks.

Ownership: the app owns one Log (the sequencer) for its data directory, opened
in the lifespan and closed on shutdown after it has drained what was accepted.
Request handlers validate and prepare events, hand them to the Log and answer
only after the durable commit; concurrent requests share group commits.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from fastapi import FastAPI

from .. import __version__
from ..alerts import AlertService
from ..archive import Archiver, open_archiver
from ..credentials import Credentials
from ..datadir import DataDir
from ..exporters.forwarder import ForwarderGroup
from ..integrity import IntegrityAlarm, IntegrityMonitor, RaiseAlarm
from ..log import Log
from ..metrics import Metrics
from ..retention import RetentionScheduler
from ..store.sqlite import SqliteStore
from ..timestamping import Timestamping
from ..view import LogView
from ..watchers import Watchers
from ..witnessing import Witnessing
from .errors import install_handlers
from .oidc import OidcVerifier
from .settings import Settings
from .syslog_listener import start_listeners

__all__ = ["Services", "create_app"]


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


def _preparers(settings: Settings) -> ProcessPoolExecutor | None:
    cores = os.cpu_count() or 1
    workers = settings.prepare_workers if settings.prepare_workers is not None else min(cores - 1, 4)
    if workers <= 0:
        return None
    # forkserver: workers start from a clean process, not from this one with its threads
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("forkserver"))


def create_app(directory: DataDir, settings: Settings | None = None) -> FastAPI:
    """The sealtrail API over the log in `directory` (which must exist)."""
    settings = settings or Settings()
    if settings.verify_interval < 0:
        raise ValueError("server.verify_interval must be >= 0 seconds (0 turns the periodic audit off)")
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        credentials = Credentials(directory.credentials)
        log = directory.open_log(checkpoint_interval=settings.checkpoint_interval)
        store = directory.store()
        oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
        preparers = _preparers(settings)
        alarms: list[IntegrityAlarm] = []  # (origin, message): the periodic audit's failures
        raised: list[RaiseAlarm] = []  # (kind, message, evidence): witness refusals, forks seen by monitors
        integrity = None
        if settings.verify_interval > 0:
            mldsa = directory.mldsa_verifier()  # a log made with `init --pq`: its ML-DSA-44 signatures are audited too
            integrity = IntegrityMonitor(
                directory.db,
                directory.verifier(),
                settings.verify_interval,
                log,
                alarms,
                required=() if mldsa is None else (mldsa,),
            )
            metrics.watch_integrity(integrity.status)
        metrics.watch_log(log.stats, log.origin, __version__)
        app.state.services = Services(
            directory,
            settings,
            credentials,
            store,
            log,
            LogView(store),
            oidc,
            preparers,
            metrics=metrics,
            on_integrity_failure=alarms,
            integrity=integrity,
        )
        archiver = open_archiver(settings.archive, store) if settings.archive else None
        if archiver is not None:
            archiver.provide_metrics(metrics.provide)
            app.state.services.archiver = archiver
        witnessing = None
        if settings.witnessing.enabled:
            witnessing = Witnessing(settings.witnessing, log, app.state.services.view, raised)
            witnessing.provide_metrics(metrics.provide)
            app.state.services.witnessing = witnessing
        timestamping = Timestamping(settings.timestamping, log, store) if settings.timestamping else None
        if timestamping is not None:
            timestamping.provide_metrics(metrics.provide)
            app.state.services.timestamping = timestamping
        forwarders = ForwarderGroup(directory.path, settings.forward) if settings.forward else None
        if forwarders is not None:
            forwarders.provide_metrics(metrics.provide)
            app.state.services.forwarders = forwarders
        alerts = None
        if settings.alerts is not None and settings.alerts.enabled:
            alerts = AlertService(settings.alerts, log, store, directory.path / "alerts.db")
            alerts.provide_metrics(metrics.provide)
            alarms.append(alerts.integrity_alarm)
            raised.append(alerts.raise_integrity_alarm)
            app.state.services.alerts = alerts
        watchers = None
        if settings.monitor:  # [[monitor]]: forks of watched tiles logs become integrity alarms
            watchers = Watchers(settings.monitor, directory.path / "monitors", directory.verifier(), raised)
        listeners = []
        retention: RetentionScheduler | None = None
        try:
            if settings.retention.interval is not None:  # [retention] interval: enforce while serving
                retention = RetentionScheduler(log, store, settings.retention, settings.retention.interval).start()
            if forwarders is not None:
                forwarders.start()
            if witnessing is not None:
                witnessing.start()
            if timestamping is not None:
                timestamping.start()
            listeners = await start_listeners(settings.syslog, log, settings.tls_cert, settings.tls_key, metrics)
            if alerts is not None:
                alerts.start()
            if watchers is not None:
                watchers.start()
            if integrity is not None:
                integrity.start()  # last: every integrity alarm is registered by now
            if archiver is not None:
                archiver.start()
            yield
        finally:
            if retention is not None:
                retention.stop()  # before log.close(): a run in progress redacts through the log
            if forwarders is not None:
                forwarders.stop()
            if witnessing is not None:
                witnessing.close()  # before the store closes under its threads
            if timestamping is not None:
                timestamping.close()
            if integrity is not None:
                integrity.close()
            if watchers is not None:
                watchers.close()
            if alerts is not None:
                alerts.close()  # before log.close(): it appends alert events
            for listener in listeners:
                listener.close()
                await listener.wait_closed()
            log.close()
            if archiver is not None:
                archiver.close()  # after log.close(): the final checkpoint is archived too
            store.close()
            if oidc is not None:
                oidc.close()
            if preparers is not None:
                preparers.shutdown(cancel_futures=True)

    app = FastAPI(
        title="sealtrail",
        version=__version__,
        summary="Immutable, verifiable audit log: ingest events, read them back with proofs.",
        lifespan=lifespan,
    )
    install_handlers(app)
    from . import routes_events, routes_hooks, routes_metrics, routes_read, routes_search, routes_witnessing

    app.add_middleware(routes_metrics.IngestMetricsMiddleware, metrics=metrics)

    app.include_router(routes_events.router)
    app.include_router(routes_read.router)
    app.include_router(routes_hooks.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_witnessing.router)
    app.include_router(routes_search.router)
    from . import routes_timestamps

    app.include_router(routes_timestamps.router)
    return app
