"""Turning rows into domain records; SQLite hands back naive datetimes, which are UTC here."""

from __future__ import annotations

import datetime as dt
from typing import Any

from kefu.domain.models import Agent, App, AppSettings, Conversation, Message, Visitor


def utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utc_required(value: dt.datetime) -> dt.datetime:
    result = utc(value)
    assert result is not None
    return result


def app_settings(raw: dict[str, Any] | None) -> AppSettings:
    raw = raw or {}
    return AppSettings(
        bot_threshold=float(raw.get("bot_threshold", 0.7)),
        require_identity=bool(raw.get("require_identity", True)),
        allowed_origins=tuple(raw.get("allowed_origins", ())),
        rate_limits={str(k): int(v) for k, v in (raw.get("rate_limits") or {}).items()},
    )


def app_from(row: Any) -> App:
    return App(row.app_id, row.name, row.secret, app_settings(row.settings), utc_required(row.created_at))


def agent_from(row: Any, groups: tuple[str, ...]) -> Agent:
    return Agent(
        agent_id=row.agent_id,
        app_id=row.app_id,
        email=row.email,
        name=row.name,
        role=row.role,
        level=row.level,
        max_concurrent=row.max_concurrent,
        status=row.status,
        groups=groups,
        password_hash=row.password_hash,
        token_epoch=row.token_epoch,
    )


def visitor_from(row: Any) -> Visitor:
    return Visitor(row.visitor_id, row.app_id, row.user_id, row.name, dict(row.tags or {}), dict(row.client_tags or {}))


def conversation_from(row: Any) -> Conversation:
    return Conversation(
        session_id=row.session_id,
        app_id=row.app_id,
        visitor_id=row.visitor_id,
        status=row.status,
        group=row.group_name,
        agent_id=row.agent_id,
        min_level=row.min_level,
        queue_priority=row.queue_priority,
        context=row.context,
        channel=row.channel,
        last_seq=row.last_seq,
        created_at=utc_required(row.created_at),
        queued_at=utc(row.queued_at),
        assigned_at=utc(row.assigned_at),
        closed_at=utc(row.closed_at),
        resolution=row.resolution,
        handoff_reason=row.handoff_reason,
        transfer_note=row.transfer_note,
        transferred_from=row.transferred_from,
    )


def message_from(row: Any) -> Message:
    return Message(
        message_id=row.message_id,
        session_id=row.session_id,
        seq=row.seq,
        client_msg_id=row.client_msg_id,
        sender=row.sender,
        sender_id=row.sender_id,
        msg_type=row.msg_type,
        content=row.content,
        created_at=utc_required(row.created_at),
        attachment_id=row.attachment_id,
        confidence=row.confidence,
        article_id=row.article_id,
    )
