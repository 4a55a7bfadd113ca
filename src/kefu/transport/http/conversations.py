"""The archive over HTTP: search, one record, export as NDJSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from kefu.services.archive import make_filter
from kefu.transport.http.deps import ApiKey, Caller, ServicesDep

router = APIRouter(tags=["archive"])

From = Annotated[str | None, Query(alias="from", description="ISO-8601 time, inclusive")]
To = Annotated[str | None, Query(description="ISO-8601 time, exclusive")]


@router.get("/conversations")
async def search_conversations(
    actor: Caller,
    svc: ServicesDep,
    start: From = None,
    to: To = None,
    q: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Conversations of the caller's app, newest first: `{items, next_cursor}`."""
    flt = make_filter(actor, start, to, q, user_id, agent_id, status)
    return await svc.archive.search(flt, limit, cursor)


@router.get("/conversations/{session_id}")
async def get_conversation(session_id: str, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """The archive record (protocol §4)."""
    return await svc.archive.record(actor, session_id)


@router.get("/export", response_class=StreamingResponse)
async def export(
    actor: ApiKey,
    svc: ServicesDep,
    start: From = None,
    to: To = None,
    q: str | None = None,
    user_id: str | None = None,
    agent_id: str | None = None,
    status: str | None = None,
) -> StreamingResponse:
    """Every matching archive record, one JSON object a line, streamed."""
    flt = make_filter(actor, start, to, q, user_id, agent_id, status)

    async def lines() -> AsyncIterator[bytes]:
        async for record in svc.archive.export(flt):
            yield orjson.dumps(record) + b"\n"

    return StreamingResponse(lines(), media_type="application/x-ndjson")
