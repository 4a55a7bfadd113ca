"""`create_app(settings)`: the one place where kefu's objects are wired together."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from kefu import __version__
from kefu.bot import Bot
from kefu.config import Settings
from kefu.domain.clock import Clock, SystemClock
from kefu.pubsub import MemoryPubSub, PubSub, RedisPubSub
from kefu.services.admin import AdminService
from kefu.services.api_keys import ApiKeyService
from kefu.services.archive import ArchiveService
from kefu.services.auth import AuthService
from kefu.services.bot_flow import BotFlow, KnowledgeBaseBot
from kefu.services.canned import CannedService
from kefu.services.chat import ChatService
from kefu.services.container import Services
from kefu.services.events import Publisher
from kefu.services.gaps import GapService
from kefu.services.indexer import SearchIndexer
from kefu.services.kb import KbArticleSource, KbService
from kefu.services.limits import Limiter, MemoryCounter, RedisCounter
from kefu.services.notes import NoteService
from kefu.services.presence import PresenceService
from kefu.services.routing import RoutingService
from kefu.services.stats import StatsService
from kefu.services.telemetry import Telemetry
from kefu.services.uploads import UploadService
from kefu.storage import Database
from kefu.storage.migrate import migrate
from kefu.storage.writer import MessageWriter
from kefu.transport.http import account as account_routes
from kefu.transport.http import admin, api_docs, conversations, identity, service, web
from kefu.transport.http import api_keys as api_key_routes
from kefu.transport.http import canned as canned_routes
from kefu.transport.http import errors as http_errors
from kefu.transport.http import kb as kb_routes
from kefu.transport.http import notes as note_routes
from kefu.transport.http import stats as stats_routes
from kefu.transport.http import uploads as upload_routes
from kefu.transport.http import webhooks as webhook_routes
from kefu.transport.http.body_limit import BodyLimit
from kefu.transport.http.cors import WidgetCors
from kefu.transport.http.ops import require_metrics_token
from kefu.transport.ws import endpoints as ws_endpoints
from kefu.uploads import LocalFileStore
from kefu.webhooks.service import WebhookService
from kefu.webhooks.worker import WebhookWorker

log = logging.getLogger(__name__)
METRICS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}},
    **http_errors.error_responses(401, 404),
}


def build_services(settings: Settings, clock: Clock | None = None, pubsub: PubSub | None = None) -> Services:
    clock = clock or SystemClock()
    db = Database(settings.db, settings.db_pool_size)
    bus = pubsub or (RedisPubSub(settings.redis) if settings.redis else MemoryPubSub())
    publisher = Publisher(bus)
    routing = RoutingService(db, publisher, clock)
    webhooks = WebhookService(db, clock, settings)
    indexer = SearchIndexer(
        db, settings.search_index_interval_s, min_interval_s=settings.search_index_min_interval_s, clock=clock
    )
    writer = MessageWriter(db, on_commit=indexer.notify)
    articles = KbArticleSource(db)
    bot = Bot(articles, warm=articles.recent_apps, first_wait_s=settings.bot_first_answer_wait_s)
    engine = KnowledgeBaseBot(bot, db)
    chat = ChatService(db, writer, webhooks, publisher, routing, clock, settings, lambda chat: BotFlow(chat, engine))
    admin_service = AdminService(db, clock)
    return Services(
        settings=settings,
        clock=clock,
        db=db,
        pubsub=bus,
        auth=AuthService(db, settings, clock),
        admin=admin_service,
        archive=ArchiveService(db),
        chat=chat,
        routing=routing,
        presence=PresenceService(db, publisher, routing, clock, settings.presence_grace_s),
        webhooks=webhooks,
        telemetry=Telemetry(db),
        limits=Limiter(
            # One node's windows follow the injected clock, like every other timer (tests move it by hand).
            RedisCounter(settings.redis) if settings.redis else MemoryCounter(lambda: clock.now().timestamp()),
            settings.rate_limits_enabled,
            app_limits=admin_service.rate_limits_of,
        ),
        webhook_worker=WebhookWorker(db, clock, settings, webhooks),
        indexer=indexer,
        uploads=UploadService(db, LocalFileStore(settings.upload_dir), clock),
        api_keys=ApiKeyService(db, clock),
        bot=bot,
        kb=KbService(db, clock, bot, settings.bot_edit_wait_s),
        gaps=GapService(db, bot),
        notes=NoteService(db, chat, publisher, clock, settings.max_message_chars),
        canned=CannedService(db, clock),
        stats=StatsService(db),
    )


def create_app(settings: Settings, clock: Clock | None = None, pubsub: PubSub | None = None) -> FastAPI:
    services = build_services(settings, clock, pubsub)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await migrate(services.db)
        await services.pubsub.start()
        await services.auth.signing_key()
        await services.presence.start()
        await services.webhooks.refresh()
        services.webhook_worker.start()
        await services.indexer.start()
        services.bot.start()  # the models load and recent apps are indexed in the background: see /readyz
        try:
            yield
        finally:
            await services.indexer.stop()
            await services.bot.stop()
            await services.presence.stop()
            await services.chat.bot_flow.stop()
            await services.webhook_worker.stop()
            await services.chat.writer.close()
            await services.limits.close()
            await services.pubsub.close()
            await services.db.dispose()

    app = FastAPI(
        title="kefu",
        version=__version__,
        description="Self-hosted online customer service: the public HTTP API (protocol v1).",
        lifespan=lifespan,
        docs_url=None,  # off unless KEFU_API_DOCS=on, and then from local files (transport/http/api_docs.py)
        redoc_url=None,
        responses=http_errors.error_responses(503),  # any route that needs the database, while it is unreachable
    )
    app.state.services = services
    http_errors.install(app)
    app.add_middleware(WidgetCors)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for router in (identity.router, conversations.router, service.router, admin.router):
        app.include_router(router, prefix="/api/v1")
    for router in (
        api_key_routes.router,
        upload_routes.router,
        kb_routes.router,
        webhook_routes.router,
        stats_routes.router,
        canned_routes.router,
        note_routes.router,
        account_routes.router,
    ):
        app.include_router(router, prefix="/api/v1")
    app.include_router(ws_endpoints.router)
    app.include_router(web.router)
    if settings.api_docs_enabled:
        api_docs.install(app)

    @app.get("/metrics", tags=["ops"], response_class=Response, responses=METRICS_RESPONSES)
    async def metrics(request: Request) -> PlainTextResponse:
        """Prometheus text format: sockets, messages, queues, agents, send latency, webhook backlog, search lag.

        Takes `Authorization: Bearer <KEFU_METRICS_TOKEN>`; off (404) when no token is set."""
        require_metrics_token(settings.metrics_token, request)
        indexer = services.indexer
        text = await services.telemetry.render(services.chat.writer.written, indexer.lag_s(), indexer.documents)
        return PlainTextResponse(text)

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], responses={503: {"description": "still loading the bot's models"}})
    async def readyz() -> JSONResponse:
        """Readiness: 200 once the bot's models are loaded and recently used apps are indexed, else 503."""
        ready = services.bot.ready
        return JSONResponse({"status": "ready" if ready else "starting"}, status_code=200 if ready else 503)

    return app
