"""The services one node runs, built once by `kefu.app.create_app` and handed to the transports."""

from __future__ import annotations

from dataclasses import dataclass

from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.pubsub import PubSub
from kefu.services.admin import AdminService
from kefu.services.archive import ArchiveService
from kefu.services.auth import AuthService
from kefu.services.chat import ChatService
from kefu.services.presence import PresenceService
from kefu.services.routing import RoutingService
from kefu.storage import Database


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
