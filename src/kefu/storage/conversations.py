"""Conversations, their messages and the per-day session numbering."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.domain.ids import day_key, new_id, session_id
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


async def bump_seq(tx: Tx, session_id_: str) -> int:
    """Take the conversation's next seq; the row lock this takes orders concurrent senders without gaps."""
    statement = (
        conversations.update()
        .where(conversations.c.session_id == session_id_)
        .values(last_seq=conversations.c.last_seq + 1)
        .returning(conversations.c.last_seq)
    )
    return int((await tx.execute(statement)).scalar_one())


async def message_by_client_id(tx: Tx, session_id_: str, sender_id: str, client_msg_id: str) -> Message | None:
    query = sa.select(messages).where(
        messages.c.session_id == session_id_,
        messages.c.sender_id == sender_id,
        messages.c.client_msg_id == client_msg_id,
    )
    row = (await tx.execute(query)).first()
    return message_from(row) if row else None


async def insert_message(
    tx: Tx,
    session_id_: str,
    seq: int,
    sender: str,
    sender_id: str | None,
    msg_type: str,
    content: str,
    now: dt.datetime,
    client_msg_id: str | None = None,
    attachment_id: str | None = None,
    confidence: float | None = None,
    article_id: str | None = None,
) -> Message:
    message = Message(
        message_id=new_id("m"),
        session_id=session_id_,
        seq=seq,
        client_msg_id=client_msg_id,
        sender=sender,
        sender_id=sender_id,
        msg_type=msg_type,
        content=content,
        created_at=now,
        attachment_id=attachment_id,
        confidence=confidence,
        article_id=article_id,
    )
    await tx.execute(
        messages.insert().values(
            message_id=message.message_id,
            session_id=session_id_,
            seq=seq,
            client_msg_id=client_msg_id,
            sender=sender,
            sender_id=sender_id,
            msg_type=msg_type,
            content=content,
            attachment_id=attachment_id,
            confidence=confidence,
            article_id=article_id,
            created_at=now,
        )
    )
    return message


async def messages_after(tx: Tx, session_id_: str, after_seq: int, up_to: int | None = None) -> list[Message]:
    """The messages with after_seq < seq (<= up_to), in seq order."""
    query = sa.select(messages).where(messages.c.session_id == session_id_, messages.c.seq > after_seq)
    if up_to is not None:
        query = query.where(messages.c.seq <= up_to)
    return [message_from(r) for r in await tx.execute(query.order_by(messages.c.seq))]


async def last_seqs(tx: Tx, session_ids: Sequence[str]) -> dict[str, int]:
    if not session_ids:
        return {}
    query = sa.select(conversations.c.session_id, conversations.c.last_seq).where(
        conversations.c.session_id.in_(list(session_ids))
    )
    return {sid: seq for sid, seq in await tx.execute(query)}


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
