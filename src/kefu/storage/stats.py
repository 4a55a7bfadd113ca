"""The per-conversation facts the metrics are computed from (one narrow row each, no message scan)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from kefu.domain.metrics import ConversationFacts
from kefu.storage.engine import Tx
from kefu.storage.rows import utc, utc_required
from kefu.storage.tables import agents, conversations


async def conversation_facts(
    tx: Tx,
    app_id: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    group: str | None,
    agent_id: str | None,
) -> list[ConversationFacts]:
    """Facts of the app's conversations created in [start, end), of one group or agent when given."""
    c = conversations.c
    query = sa.select(
        c.session_id,
        c.group_name,
        c.agent_id,
        c.status,
        c.created_at,
        c.first_queued_at,
        c.first_assigned_at,
        c.first_response_at,
        c.closed_at,
        c.resolution,
        c.handoff_reason,
        c.bot_answered,
        c.last_seq,
    ).where(c.app_id == app_id)
    if start is not None:
        query = query.where(c.created_at >= start)
    if end is not None:
        query = query.where(c.created_at < end)
    if group is not None:
        query = query.where(c.group_name == group)
    if agent_id is not None:
        query = query.where(c.agent_id == agent_id)
    return [
        ConversationFacts(
            session_id=r.session_id,
            group=r.group_name,
            agent_id=r.agent_id,
            status=r.status,
            created_at=utc_required(r.created_at),
            first_queued_at=utc(r.first_queued_at),
            first_assigned_at=utc(r.first_assigned_at),
            first_response_at=utc(r.first_response_at),
            closed_at=utc(r.closed_at),
            resolution=r.resolution,
            handoff_reason=r.handoff_reason,
            bot_answered=bool(r.bot_answered),
            messages=int(r.last_seq),  # seq has no gaps: the last one is the count
        )
        for r in await tx.execute(query.order_by(c.created_at))
    ]


async def queue_lengths(tx: Tx) -> dict[tuple[str, str], int]:
    """(app_id, group) -> conversations waiting, across every app."""
    c = conversations.c
    query = (
        sa.select(c.app_id, c.group_name, sa.func.count()).where(c.status == "queued").group_by(c.app_id, c.group_name)
    )
    return {(app_id, group): int(n) for app_id, group, n in await tx.execute(query)}


async def agents_by_status(tx: Tx) -> dict[tuple[str, str], int]:
    query = sa.select(agents.c.app_id, agents.c.status, sa.func.count()).group_by(agents.c.app_id, agents.c.status)
    return {(app_id, status): int(n) for app_id, status, n in await tx.execute(query)}
