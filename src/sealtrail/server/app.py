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
from dataclasses import dataclass

from fastapi import FastAPI

from .. import __version__
from ..credentials import Credentials
from ..datadir import DataDir
from ..log import Log
from ..store.sqlite import SqliteStore
from ..view import LogView
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        credentials = Credentials(directory.credentials)
        log = directory.open_log(checkpoint_interval=settings.checkpoint_interval)
        store = directory.store()
        oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
        preparers = _preparers(settings)
        app.state.services = Services(directory, settings, credentials, store, log, LogView(store), oidc, preparers)
        listeners = []
        try:
            listeners = await start_listeners(settings.syslog, log, settings.tls_cert, settings.tls_key)
            yield
        finally:
            for listener in listeners:
                listener.close()
                await listener.wait_closed()
            log.close()
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
    from . import routes_events, routes_hooks, routes_read

    app.include_router(routes_events.router)
    app.include_router(routes_read.router)
    app.include_router(routes_hooks.router)
    return app
