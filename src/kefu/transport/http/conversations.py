"""The archive over HTTP: search, one record, export as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from kefu.domain.models import Actor
from kefu.services.archive import ArchiveFilter, make_filter
from kefu.transport.http.deps import ApiKey, Caller, ServicesDep

router = APIRouter(tags=["archive"])

From = Annotated[str | None, Query(alias="from", description="ISO-8601 time, inclusive")]
To = Annotated[str | None, Query(description="ISO-8601 time, exclusive")]


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
    q: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
) -> ArchiveQuery:
    return ArchiveQuery(start, to, q, user_id, agent_id, status)


Filters = Annotated[ArchiveQuery, Depends(archive_query)]


@router.get("/conversations")
async def search_conversations(
    actor: Caller, svc: ServicesDep, filters: Filters, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Conversations of the caller's app, newest first: `{items, next_cursor}`."""
    return await svc.archive.search(filters.for_caller(actor), limit, cursor)


@router.get("/conversations/{session_id}")
async def get_conversation(session_id: str, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """The archive record (protocol §4)."""
    return await svc.archive.record(actor, session_id)


@router.get("/export", response_class=StreamingResponse)
async def export(actor: ApiKey, svc: ServicesDep, filters: Filters) -> StreamingResponse:
    """Every matching archive record, one JSON object a line, streamed."""
    flt = filters.for_caller(actor)

    async def lines() -> AsyncIterator[bytes]:
        async for record in svc.archive.export(flt):
            yield orjson.dumps(record) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
