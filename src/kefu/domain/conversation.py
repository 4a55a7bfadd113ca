"""The conversation lifecycle: bot → queued → active → closed, with the transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    ACTIVE = "active"
    CLOSED = "closed"


class Sender(StrEnum):
    USER = "user"
    AGENT = "agent"
    BOT = "bot"
    SYSTEM = "system"


class MsgType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    FILE = "file"
    LINK = "link"
    EVENT = "event"


class Resolution(StrEnum):
    BOT_RESOLVED = "bot_resolved"
    AGENT_RESOLVED = "agent_resolved"
    ABANDONED = "abandoned"


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.BOT: frozenset({Status.QUEUED, Status.ACTIVE, Status.CLOSED}),
    Status.QUEUED: frozenset({Status.ACTIVE, Status.CLOSED}),
    Status.ACTIVE: frozenset({Status.QUEUED, Status.ACTIVE, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


def can_move(current: Status, target: Status) -> bool:
    """Whether a conversation in `current` may move to `target` (active → active is a transfer)."""
    return target in _ALLOWED[current]


def resolution_on_close(status: Status, had_agent: bool) -> Resolution:
    """How a conversation closing from `status` counts in the archive and the metrics."""
    if status is Status.QUEUED:
        return Resolution.ABANDONED
    if status is Status.BOT and not had_agent:
        return Resolution.BOT_RESOLVED
    return Resolution.AGENT_RESOLVED
