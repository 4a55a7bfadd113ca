"""The archive: a conversation's record, search with cursors, and streaming export (protocol §4)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

from kefu import errors
from kefu.domain.clock import iso, parse_iso
from kefu.domain.models import Actor
from kefu.services.records import archive_record, conversation_record
from kefu.storage import Database
from kefu.storage import archive as archive_store
from kefu.storage import conversations as conversation_store
from kefu.storage import visitors as visitor_store
from kefu.storage.archive import ArchiveFilter

STATUSES = ("bot", "queued", "active", "closed")


def encode_cursor(created_at: dt.datetime, session_id: str) -> str:
    return base64.urlsafe_b64encode(f"{iso(created_at)}|{session_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, session_id = text.split("|", 1)
        return parse_iso(when), session_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest("cursor is not one this API gave out.") from exc


def make_filter(
    actor: Actor,
    start: str | None = None,
    end: str | None = None,
    q: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
) -> ArchiveFilter:
    """The caller's filters, checked; always scoped to the caller's own app."""
    try:
        start_at = parse_iso(start) if start else None
        end_at = parse_iso(end) if end else None
    except ValueError as exc:
        raise errors.BadRequest("from and to are ISO-8601 times, e.g. 2023-08-01T14:30:00.000Z.") from exc
    if status is not None and status not in STATUSES:
        raise errors.BadRequest(f"status is one of {', '.join(STATUSES)}.")
    if q is not None and len(q) > 200:
        raise errors.BadRequest("q holds at most 200 characters.")
    return ArchiveFilter(actor.app_id, start_at, end_at, (q or "").strip() or None, user_id, agent_id, status)


class ArchiveService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor: Actor, session_id: str) -> dict[str, Any]:
        async with self.db.read() as tx:
            conv = await conversation_store.get_conversation(tx, session_id)
            if conv is None or conv.app_id != actor.app_id:
                raise errors.ConversationNotFound(f"No conversation '{session_id}'.")
            visitor = await visitor_store.get_visitor(tx, conv.visitor_id)
            messages = await conversation_store.messages_after(tx, session_id, 0)
        return archive_record(conv, visitor, messages)

    async def search(self, flt: ArchiveFilter, limit: int, cursor: str | None) -> dict[str, Any]:
        if not 1 <= limit <= 200:
            raise errors.BadRequest("limit is between 1 and 200.")
        after = decode_cursor(cursor) if cursor else None
        async with self.db.read() as tx:
            page = await archive_store.search(tx, flt, limit + 1, after)
            people = await archive_store.visitors_of(tx, [c.visitor_id for c in page])
        more = len(page) > limit
        page = page[:limit]
        items = []
        for conv in page:
            visitor = people.get(conv.visitor_id)
            item = conversation_record(conv)
            item["user_id"] = (visitor.user_id if visitor else None) or conv.visitor_id
            item["agent_id"] = conv.agent_id
            items.append(item)
        next_cursor = encode_cursor(page[-1].created_at, page[-1].session_id) if more and page else None
        return {"items": items, "next_cursor": next_cursor}

    async def export(self, flt: ArchiveFilter) -> AsyncIterator[dict[str, Any]]:
        async for conv, visitor, messages in archive_store.stream(self.db, flt):
            yield archive_record(conv, visitor, messages)
