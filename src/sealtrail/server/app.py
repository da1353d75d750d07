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

from fastapi import FastAPI

from .. import __version__
from ..credentials import Credentials
from ..datadir import DataDir
from ..metrics import Metrics
from ..view import LogView
from .background import Background
from .errors import install_handlers
from .oidc import OidcVerifier
from .services import Services
from .settings import Settings
from .syslog_listener import start_listeners

__all__ = ["create_app"]


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
        log = directory.open_log(checkpoint_interval=settings.checkpoint_interval)
        store = directory.store()
        oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
        services = Services(
            directory,
            settings,
            Credentials(directory.credentials),
            store,
            log,
            LogView(store),
            oidc,
            _preparers(settings),
            metrics=metrics,
        )
        app.state.services = services
        metrics.watch_log(log.stats, log.origin, __version__)
        background = Background.assemble(services)
        listeners = []
        try:
            background.start()
            listeners = await start_listeners(settings.syslog, log, settings.tls_cert, settings.tls_key, metrics)
            yield
        finally:
            background.stop()  # before log.close(): they append through the log or read its store
            for listener in listeners:
                listener.close()
                await listener.wait_closed()
            log.close()
            background.stop_after_log()  # the archiver publishes the final checkpoint
            store.close()
            if oidc is not None:
                oidc.close()
            if services.preparers is not None:
                services.preparers.shutdown(cancel_futures=True)

    app = FastAPI(
        title="sealtrail",
        version=__version__,
        summary="Immutable, verifiable audit log: ingest events, read them back with proofs.",
        lifespan=lifespan,
    )
    install_handlers(app)
    from . import (
        routes_events,
        routes_hooks,
        routes_metrics,
        routes_read,
        routes_search,
        routes_timestamps,
        routes_witnessing,
    )

    app.add_middleware(routes_metrics.IngestMetricsMiddleware, metrics=metrics)

    app.include_router(routes_events.router)
    app.include_router(routes_read.router)
    app.include_router(routes_hooks.router)
    app.include_router(routes_metrics.router)
    app.include_router(routes_witnessing.router)
    app.include_router(routes_search.router)
    app.include_router(routes_timestamps.router)
    return app
