"""Reading the archive: conversations by filters with keyset pagination, and their messages."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from kefu.domain.models import Conversation, Message, Visitor
from kefu.storage import search as search_index
from kefu.storage.attachments import Attachment, attachments_by_id
from kefu.storage.engine import Database, Tx
from kefu.storage.rows import conversation_from, message_from, visitor_from
from kefu.storage.tables import conversations, messages, visitors


@dataclass(frozen=True, slots=True)
class ArchiveFilter:
    app_id: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    q: str | None = None
    user_id: str | None = None
    agent_id: str | None = None
    status: str | None = None


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _where(flt: ArchiveFilter, dialect: str) -> list[Any]:
    c = conversations.c
    clauses: list[Any] = [c.app_id == flt.app_id]
    if flt.start is not None:
        clauses.append(c.created_at >= flt.start)
    if flt.end is not None:
        clauses.append(c.created_at < flt.end)
    if flt.agent_id:
        clauses.append(c.agent_id == flt.agent_id)
    if flt.status:
        clauses.append(c.status == flt.status)
    if flt.user_id:
        clauses.append(
            c.visitor_id.in_(
                sa.select(visitors.c.visitor_id).where(
                    visitors.c.app_id == flt.app_id,
                    sa.or_(visitors.c.user_id == flt.user_id, visitors.c.visitor_id == flt.user_id),
                )
            )
        )
    if flt.q:
        # The full-text index (storage/search.py): it trails commits by the indexer's lag (about 1-2 s).
        clauses.append(search_index.match_clause(dialect, search_index.parse_query(flt.q), conversations))
    return clauses


async def search(tx: Tx, flt: ArchiveFilter, limit: int, after: tuple[dt.datetime, str] | None) -> list[Conversation]:
    """Conversations matching `flt`, newest first, the page after the keyset `after` (created_at, session_id)."""
    c = conversations.c
    query = sa.select(conversations).where(*_where(flt, tx.dialect.name))
    if after is not None:
        created, sid = after
        query = query.where(sa.or_(c.created_at < created, sa.and_(c.created_at == created, c.session_id < sid)))
    query = query.order_by(c.created_at.desc(), c.session_id.desc()).limit(limit)
    return [conversation_from(r) for r in await tx.execute(query)]


async def count(tx: Tx, flt: ArchiveFilter) -> int:
    """How many conversations match `flt` (for a progress bar)."""
    query = sa.select(sa.func.count()).select_from(conversations).where(*_where(flt, tx.dialect.name))
    return int((await tx.execute(query)).scalar_one())


async def matching_texts(tx: Tx, session_ids: list[str], terms: list[str]) -> dict[str, str]:
    """For each conversation, the first text holding one of `terms` (case-insensitive): the context, else the
    earliest such message. Only the few conversations of one page are read, to build their snippets."""
    if not session_ids or not terms:
        return {}
    found: dict[str, str] = {}

    def holds(column: Any) -> Any:
        return sa.or_(*(sa.func.lower(column).like(_like(t), escape="\\") for t in terms))

    contexts = sa.select(conversations.c.session_id, conversations.c.context).where(
        conversations.c.session_id.in_(session_ids), holds(conversations.c.context)
    )
    for sid, context in await tx.execute(contexts):
        found[sid] = context
    rest = [sid for sid in session_ids if sid not in found]
    if rest:
        ranked = (
            sa.select(
                messages.c.session_id,
                messages.c.content,
                sa.func.row_number().over(partition_by=messages.c.session_id, order_by=messages.c.seq).label("n"),
            )
            .where(messages.c.session_id.in_(rest), holds(messages.c.content))
            .subquery()
        )
        for sid, content in await tx.execute(sa.select(ranked.c.session_id, ranked.c.content).where(ranked.c.n == 1)):
            found[sid] = content
    return found


async def messages_of(tx: Tx, session_ids: list[str]) -> dict[str, list[Message]]:
    found: dict[str, list[Message]] = {sid: [] for sid in session_ids}
    if session_ids:
        query = (
            sa.select(messages)
            .where(messages.c.session_id.in_(session_ids))
            .order_by(messages.c.session_id, messages.c.seq)
        )
        for row in await tx.execute(query):
            found[row.session_id].append(message_from(row))
    return found


async def visitors_of(tx: Tx, visitor_ids: list[str]) -> dict[str, Visitor]:
    if not visitor_ids:
        return {}
    query = sa.select(visitors).where(visitors.c.visitor_id.in_(list(set(visitor_ids))))
    return {r.visitor_id: visitor_from(r) for r in await tx.execute(query)}


async def stream(
    db: Database, flt: ArchiveFilter, batch: int = 200
) -> AsyncIterator[tuple[Conversation, Visitor | None, list[Message], dict[str, Attachment]]]:
    """Every matching conversation with its visitor, messages and their attachments, a batch at a time
    (memory bounded by one batch, whatever the archive's size)."""
    after: tuple[dt.datetime, str] | None = None
    while True:
        async with db.read() as tx:
            page = await search(tx, flt, batch, after)
            if not page:
                return
            by_sid = await messages_of(tx, [conv.session_id for conv in page])
            people = await visitors_of(tx, [conv.visitor_id for conv in page])
            files = await attachments_by_id(
                tx, [m.attachment_id for ms in by_sid.values() for m in ms if m.attachment_id]
            )
        for conv in page:
            yield conv, people.get(conv.visitor_id), by_sid[conv.session_id], files
        last = page[-1]
        after = (last.created_at, last.session_id)
        if len(page) < batch:
            return
