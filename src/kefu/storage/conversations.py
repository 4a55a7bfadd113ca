"""Conversations, their messages and the per-day session numbering."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.domain.ids import day_key, session_id
from kefu.domain.models import Conversation, Message
from kefu.storage.engine import Tx
from kefu.storage.rows import conversation_from, message_from, utc
from kefu.storage.tables import conversations, day_counters, messages

OPEN = ("bot", "queued", "active")


async def next_session_id(tx: Tx, now: dt.datetime) -> str:
    """Allocate the next `YYYYMMDD-NNNNNN` of the UTC day, atomically across nodes."""
    day = day_key(now.date())
    insert = sqlite.insert if tx.dialect.name == "sqlite" else postgresql.insert
    statement = (
        insert(day_counters)
        .values(day=day, last=1)
        .on_conflict_do_update(index_elements=["day"], set_={"last": day_counters.c.last + 1})
        .returning(day_counters.c.last)
    )
    number = int((await tx.execute(statement)).scalar_one())
    return session_id(now.date(), number)


async def insert_conversation(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(conversations.insert().values(**values))


async def get_conversation(tx: Tx, session_id_: str, lock: bool = False) -> Conversation | None:
    query = sa.select(conversations).where(conversations.c.session_id == session_id_)
    if lock and tx.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    return conversation_from(row) if row else None


async def update_conversation(tx: Tx, session_id_: str, values: dict[str, Any]) -> None:
    await tx.execute(conversations.update().where(conversations.c.session_id == session_id_).values(**values))


async def open_conversations_of_visitor(tx: Tx, visitor_id: str) -> list[Conversation]:
    query = (
        sa.select(conversations)
        .where(conversations.c.visitor_id == visitor_id, conversations.c.status.in_(OPEN))
        .order_by(conversations.c.created_at)
    )
    return [conversation_from(r) for r in await tx.execute(query)]


async def open_conversations_of_agent(tx: Tx, agent_id: str) -> list[Conversation]:
    query = (
        sa.select(conversations)
        .where(conversations.c.agent_id == agent_id, conversations.c.status == "active")
        .order_by(conversations.c.assigned_at)
    )
    return [conversation_from(r) for r in await tx.execute(query)]


async def queued(tx: Tx, app_id: str, group: str | None = None, lock: bool = False) -> list[Conversation]:
    """The app's waiting chats (of one group, when given) in serving order: priority, then arrival."""
    query = sa.select(conversations).where(conversations.c.app_id == app_id, conversations.c.status == "queued")
    if group is not None:
        query = query.where(conversations.c.group_name == group)
    query = query.order_by(conversations.c.queue_priority.desc(), conversations.c.queued_at, conversations.c.session_id)
    if lock and tx.dialect.name == "postgresql":
        query = query.with_for_update()
    return [conversation_from(r) for r in await tx.execute(query)]


async def messages_after(tx: Tx, session_id_: str, after_seq: int, up_to: int | None = None) -> list[Message]:
    """The messages with after_seq < seq (<= up_to), in seq order."""
    query = sa.select(messages).where(messages.c.session_id == session_id_, messages.c.seq > after_seq)
    if up_to is not None:
        query = query.where(messages.c.seq <= up_to)
    return [message_from(r) for r in await tx.execute(query.order_by(messages.c.seq))]


async def average_handle_seconds(tx: Tx, app_id: str, group: str, recent: int = 50) -> float | None:
    """Mean assigned → closed time of the group's last `recent` chats handled by a person; None without history."""
    query = (
        sa.select(conversations.c.assigned_at, conversations.c.closed_at)
        .where(
            conversations.c.app_id == app_id,
            conversations.c.group_name == group,
            conversations.c.status == "closed",
            conversations.c.assigned_at.is_not(None),
        )
        .order_by(conversations.c.closed_at.desc())
        .limit(recent)
    )
    spans = [(utc(c) - utc(a)).total_seconds() for a, c in await tx.execute(query) if a and c]  # type: ignore[operator]
    return sum(spans) / len(spans) if spans else None


async def record_first(tx: Tx, session_id_: str, column: str, when: dt.datetime) -> None:
    """Set a reporting time (`first_queued_at`, `first_assigned_at`) unless it is already set: first one wins."""
    assert column in ("first_queued_at", "first_assigned_at")
    target = conversations.c[column]
    await tx.execute(
        conversations.update()
        .where(conversations.c.session_id == session_id_)
        .values({target: sa.func.coalesce(target, when)})
    )


async def messages_before(tx: Tx, session_id_: str, before_seq: int | None, limit: int) -> tuple[list[Message], bool]:
    """Up to `limit` messages just below `before_seq` (the newest when None), in seq order, and whether more remain."""
    query = sa.select(messages).where(messages.c.session_id == session_id_)
    if before_seq is not None:
        query = query.where(messages.c.seq < before_seq)
    rows = list(await tx.execute(query.order_by(messages.c.seq.desc()).limit(limit + 1)))
    page = [message_from(r) for r in reversed(rows[:limit])]
    return page, len(rows) > limit
