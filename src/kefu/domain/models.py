"""The records services pass around: plain frozen dataclasses, free of any storage detail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class AppSettings:
    bot_threshold: float = 0.7
    require_identity: bool = True
    allowed_origins: tuple[str, ...] = ()
    rate_limits: dict[str, int] = field(default_factory=dict)  # the app's own counts (services/limits.APP_LIMITS)


@dataclass(frozen=True, slots=True)
class App:
    app_id: str
    name: str
    secret: str
    settings: AppSettings
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Agent:
    agent_id: str
    app_id: str
    email: str
    name: str
    role: str
    level: int
    max_concurrent: int
    status: str
    groups: tuple[str, ...]
    password_hash: str = field(repr=False, default="")
    token_epoch: int = 0  # raised on a password change: older tokens stop working


@dataclass(frozen=True, slots=True)
class Visitor:
    visitor_id: str
    app_id: str
    user_id: str | None
    name: str | None
    tags: dict[str, Any]
    client_tags: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Conversation:
    session_id: str
    app_id: str
    visitor_id: str
    status: str
    group: str
    agent_id: str | None
    min_level: int
    queue_priority: int
    context: str | None
    channel: str
    last_seq: int
    created_at: dt.datetime
    queued_at: dt.datetime | None
    assigned_at: dt.datetime | None
    closed_at: dt.datetime | None
    resolution: str | None
    handoff_reason: str | None
    transfer_note: str | None = None
    transferred_from: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    session_id: str
    seq: int
    client_msg_id: str | None
    sender: str
    sender_id: str | None
    msg_type: str
    content: str
    created_at: dt.datetime
    attachment_id: str | None = None
    confidence: float | None = None
    article_id: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling: a visitor, an agent (role `agent` or `admin`) or an app's API key."""

    kind: str  # "visitor" | "agent" | "api_key"
    app_id: str
    actor_id: str
    role: str = ""
    token_id: str = ""  # the token's `jti`: logging out revokes this one token
    token_epoch: int = 0

    @property
    def is_admin(self) -> bool:
        return self.kind == "api_key" or (self.kind == "agent" and self.role == "admin")
