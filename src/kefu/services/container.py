"""The services one node runs, built once by `kefu.app.create_app` and handed to the transports."""

from __future__ import annotations

from dataclasses import dataclass

from kefu.bot import Bot
from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.pubsub import PubSub
from kefu.services.admin import AdminService
from kefu.services.api_keys import ApiKeyService
from kefu.services.archive import ArchiveService
from kefu.services.auth import AuthService
from kefu.services.canned import CannedService
from kefu.services.chat import ChatService
from kefu.services.gaps import GapService
from kefu.services.indexer import SearchIndexer
from kefu.services.kb import KbService
from kefu.services.limits import Limiter
from kefu.services.notes import NoteService
from kefu.services.presence import PresenceService
from kefu.services.routing import RoutingService
from kefu.services.stats import StatsService
from kefu.services.telemetry import Telemetry
from kefu.services.uploads import UploadService
from kefu.storage import Database
from kefu.webhooks.service import WebhookService
from kefu.webhooks.worker import WebhookWorker


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    clock: Clock
    db: Database
    pubsub: PubSub
    auth: AuthService
    admin: AdminService
    archive: ArchiveService
    chat: ChatService
    routing: RoutingService
    presence: PresenceService
    webhooks: WebhookService
    limits: Limiter
    telemetry: Telemetry
    webhook_worker: WebhookWorker
    indexer: SearchIndexer
    uploads: UploadService
    api_keys: ApiKeyService
    bot: Bot
    kb: KbService
    gaps: GapService
    notes: NoteService
    canned: CannedService
    stats: StatsService
