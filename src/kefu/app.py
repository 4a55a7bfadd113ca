"""`create_app(settings)`: the one place where kefu's objects are wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI

from kefu import __version__
from kefu.config import Settings
from kefu.domain.clock import Clock, SystemClock
from kefu.pubsub import MemoryPubSub, PubSub
from kefu.services.admin import AdminService
from kefu.services.archive import ArchiveService
from kefu.services.auth import AuthService
from kefu.services.chat import ChatService
from kefu.services.container import Services
from kefu.services.events import Publisher
from kefu.services.presence import PresenceService
from kefu.services.routing import RoutingService
from kefu.storage import Database
from kefu.storage.migrate import migrate
from kefu.transport.http import conversations, identity, service
from kefu.transport.http import errors as http_errors
from kefu.transport.ws import endpoints as ws_endpoints

log = logging.getLogger(__name__)


def build_services(settings: Settings, clock: Clock | None = None, pubsub: PubSub | None = None) -> Services:
    clock = clock or SystemClock()
    db = Database(settings.db)
    bus = pubsub or MemoryPubSub()
    publisher = Publisher(bus)
    routing = RoutingService(db, publisher, clock)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        pubsub=bus,
        auth=AuthService(db, settings, clock),
        admin=AdminService(db, clock),
        archive=ArchiveService(db),
        chat=ChatService(db, publisher, routing, clock, settings),
        routing=routing,
        presence=PresenceService(db, publisher, routing, clock, settings.presence_grace_s),
    )


def create_app(settings: Settings, clock: Clock | None = None, pubsub: PubSub | None = None) -> FastAPI:
    services = build_services(settings, clock, pubsub)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(services.db)
        await services.auth.signing_key()
        await services.presence.start()
        try:
            yield
        finally:
            await services.presence.stop()
            await services.pubsub.close()
            await services.db.dispose()

    app = FastAPI(
        title="kefu",
        version=__version__,
        description="Self-hosted online customer service: the public HTTP API (protocol v1).",
        lifespan=lifespan,
    )
    app.state.services = services
    http_errors.install(app)
    for router in (identity.router, conversations.router, service.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(ws_endpoints.router)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
