"""The ASGI application: ingest, read API, tiles, and the source webhooks.

Ownership: the app owns one Log (the sequencer) for its data directory, opened
in the lifespan and closed on shutdown after it has drained what was accepted.
Request handlers validate and prepare events, hand them to the Log and answer
only after the durable commit; concurrent requests share group commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
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


def create_app(directory: DataDir, settings: Settings | None = None) -> FastAPI:
    """The sealtrail API over the log in `directory` (which must exist)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        credentials = Credentials(directory.credentials)
        log = directory.open_log(checkpoint_interval=settings.checkpoint_interval)
        store = directory.store()
        oidc = OidcVerifier(settings.oidc) if settings.oidc.enabled else None
        app.state.services = Services(directory, settings, credentials, store, log, LogView(store), oidc)
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
