"""The archive: a conversation's record, search with cursors, and streaming export (protocol §4)."""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections.abc import AsyncIterator
from typing import Any

from kefu import errors
from kefu.domain.clock import iso, parse_iso, parse_window
from kefu.domain.models import Actor
from kefu.domain.records import archive_record, conversation_record
from kefu.services.uploads import attachment_record
from kefu.storage import Database
from kefu.storage import archive as archive_store
from kefu.storage import conversations as conversation_store
from kefu.storage import search as search_store
from kefu.storage import visitors as visitor_store
from kefu.storage.archive import ArchiveFilter as ArchiveFilter  # re-exported for transport

STATUSES = ("bot", "queued", "active", "closed")
SNIPPET_CONTEXT = 40  # characters shown on each side of the first match


def highlight(text: str, terms: list[str], around: int = SNIPPET_CONTEXT) -> str:
    """HTML for a search hit: the text around the first match, each match wrapped in <mark>…</mark> and
    everything else HTML-escaped; `…` where the text was cut."""
    folded = text.casefold()
    if len(folded) != len(text):  # a character that folds to several (ß → ss): match on lower() instead
        folded = text.lower() if len(text.lower()) == len(text) else text
    spans: list[tuple[int, int]] = []
    for term in terms:
        start = folded.find(term)
        while term and start != -1:
            spans.append((start, start + len(term)))
            start = folded.find(term, start + len(term))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    first = merged[0][0] if merged else 0
    lo, hi = max(0, first - around), min(len(text), (merged[0][1] if merged else 0) + around * 2)
    out, at = ["…" if lo > 0 else ""], lo
    for start, end in merged:
        if end <= lo or start >= hi:
            continue
        start, end = max(start, lo), min(end, hi)
        out += [html.escape(text[at:start]), "<mark>", html.escape(text[start:end]), "</mark>"]
        at = end
    out += [html.escape(text[at:hi]), "…" if hi < len(text) else ""]
    return "".join(out)


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
    start_at, end_at = parse_window(start, end)
    if status is not None and status not in STATUSES:
        raise errors.BadRequest(f"status is one of {', '.join(STATUSES)}.")
    if q is not None and len(q) > 200:
        raise errors.BadRequest("q holds at most 200 characters.")
    return ArchiveFilter(actor.app_id, start_at, end_at, (q or "").strip() or None, user_id, agent_id, status)


class ArchiveService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def count(self, flt: ArchiveFilter) -> int:
        """How many conversations match (for a progress bar)."""
        async with self.db.read() as tx:
            return await archive_store.count(tx, flt)

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
            more = len(page) > limit
            page = page[:limit]
            people = await archive_store.visitors_of(tx, [c.visitor_id for c in page])
            query = search_store.parse_query(flt.q) if flt.q else None
            terms = query.terms if query else []
            texts = await archive_store.matching_texts(tx, [c.session_id for c in page], terms)
        items = []
        for conv in page:
            visitor = people.get(conv.visitor_id)
            item = conversation_record(conv)
            item["user_id"] = (visitor.user_id if visitor else None) or conv.visitor_id
            item["agent_id"] = conv.agent_id
            if flt.q:
                item["snippet"] = highlight(texts.get(conv.session_id) or conv.context or "", terms)
            items.append(item)
        next_cursor = encode_cursor(page[-1].created_at, page[-1].session_id) if more and page else None
        return {"items": items, "next_cursor": next_cursor}

    async def export(self, flt: ArchiveFilter) -> AsyncIterator[dict[str, Any]]:
        async for conv, visitor, messages, files in archive_store.stream(self.db, flt):
            record = archive_record(conv, visitor, messages)
            for message, item in zip(messages, record["messages"], strict=True):
                if message.attachment_id and (att := files.get(message.attachment_id)):
                    item["attachment"] = attachment_record(att)
            yield record
