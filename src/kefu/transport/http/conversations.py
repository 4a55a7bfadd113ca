"""The archive over HTTP: search, one record, export as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from kefu import errors
from kefu.domain.models import Actor
from kefu.services.archive import ArchiveFilter, make_filter
from kefu.transport.http.deps import ApiKey, Caller, ServicesDep
from kefu.transport.http.errors import error_responses
from kefu.transport.http.uploads import AttachmentOut

router = APIRouter(tags=["archive"], responses=error_responses(400, 401, 422))

Status = Literal["bot", "queued", "active", "closed"]
Sender = Literal["user", "agent", "bot", "system"]
MessageType = Literal["text", "image", "file", "link", "event"]
From = Annotated[str | None, Query(alias="from", description="ISO-8601 time, inclusive", max_length=64)]
To = Annotated[str | None, Query(description="ISO-8601 time, exclusive", max_length=64)]


class AgentRef(BaseModel):
    agent_id: str
    name: str | None


class ConversationItem(BaseModel):
    """A search hit: the `conversation` frame's fields (protocol §3), the site's `user_id` and the `agent_id`."""

    session_id: str
    status: Status
    group: str
    agent: AgentRef | None
    visitor_id: str
    channel: str | None
    context: str | None
    last_seq: int
    created_at: str
    closed_at: str | None
    handoff_reason: str | None
    user_id: str = Field(description="the site's user id, or the anonymous visitor id")
    agent_id: str | None
    snippet: str | None = Field(
        default=None, description="with `q` only: HTML around the first match, matches in <mark>, the rest escaped"
    )


class ConversationPage(BaseModel):
    items: list[ConversationItem]
    next_cursor: str | None


class ArchiveMessage(BaseModel):
    sender: Sender
    content: str
    timestamp: str
    seq: int
    msg_type: MessageType
    sender_id: str | None
    confidence: float | None = Field(default=None, description="bot answers only")
    attachment: AttachmentOut | None = Field(default=None, description="image and file messages, in the export")


class ArchiveRecord(BaseModel):
    """Protocol §4: `session_id`, `user_id`, `messages`, and the allowed extra keys."""

    session_id: str
    user_id: str
    messages: list[ArchiveMessage]
    app_id: str
    status: Status
    group: str
    agent_id: str | None
    channel: str | None
    context: str | None
    tags: dict[str, Any]
    created_at: str
    closed_at: str | None
    resolution: str | None = Field(description="`bot_resolved`, `agent_resolved`, `abandoned`; null while open")
    handoff_reason: str | None


@dataclass(frozen=True, slots=True)
class ArchiveQuery:
    """The filters search and export share (query parameters `from`, `to`, `q`, `user_id`, `agent_id`, `status`)."""

    start: str | None
    to: str | None
    q: str | None
    user_id: str | None
    agent_id: str | None
    status: str | None

    def for_caller(self, actor: Actor) -> ArchiveFilter:
        return make_filter(actor, self.start, self.to, self.q, self.user_id, self.agent_id, self.status)


def archive_query(
    start: From = None,
    to: To = None,
    q: Annotated[str | None, Query(max_length=200, description="keywords, Chinese or English")] = None,
    user_id: Annotated[str | None, Query(max_length=200)] = None,
    agent_id: Annotated[str | None, Query(max_length=64)] = None,
    status: Status | None = None,
) -> ArchiveQuery:
    # PostgreSQL refuses NUL in text (storage/engine.py says so as this same error); said here, before an export's
    # answer starts streaming, after which a refusal could only cut the stream short.
    if any("\x00" in text for text in (q, user_id, agent_id) if text):
        raise errors.BadRequest("Text may not contain NUL characters (\\u0000).")
    return ArchiveQuery(start, to, q, user_id, agent_id, status)


Filters = Annotated[ArchiveQuery, Depends(archive_query)]


@router.get("/conversations", response_model=ConversationPage, response_model_exclude_unset=True)
async def search_conversations(
    actor: Caller,
    svc: ServicesDep,
    filters: Filters,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> dict[str, Any]:
    """Conversations of the caller's app, newest first: `{items, next_cursor}`."""
    return await svc.archive.search(filters.for_caller(actor), limit, cursor)


@router.get(
    "/conversations/{session_id}",
    response_model=ArchiveRecord,
    response_model_exclude_unset=True,
    responses=error_responses(404),
)
async def get_conversation(session_id: str, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """The archive record (protocol §4)."""
    return await svc.archive.record(actor, session_id)


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "NDJSON: one archive record (protocol §4, the schema here) a line",
            "content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/ArchiveRecord"}}},
        }
    },
)
async def export(actor: ApiKey, svc: ServicesDep, filters: Filters) -> StreamingResponse:
    """Every matching archive record, one JSON object a line, streamed."""
    flt = filters.for_caller(actor)

    async def lines() -> AsyncIterator[bytes]:
        async for record in svc.archive.export(flt):
            yield orjson.dumps(record) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
