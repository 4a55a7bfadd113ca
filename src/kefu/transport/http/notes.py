"""A conversation's timeline for the console: message history a page at a time, and internal notes."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from kefu.transport.http.deps import Caller, ServicesDep
from kefu.transport.http.errors import error_responses
from kefu.transport.http.uploads import AttachmentOut

router = APIRouter(tags=["conversations"], responses=error_responses(400, 401, 403, 404, 422))

SessionId = Annotated[str, Path(min_length=1, max_length=32)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    content: str = Field(min_length=1, max_length=5000)


class NoteOut(BaseModel):
    note_id: str
    session_id: str
    agent_id: str
    agent_name: str | None
    content: str
    kind: str = Field(description='"note", or "transfer" for the note written with a transfer')
    created_at: str


class NoteList(BaseModel):
    items: list[NoteOut]


class MessageOut(BaseModel):
    """The fields of the WebSocket `message` frame (protocol §3)."""

    model_config = ConfigDict(extra="allow")
    session_id: str
    seq: int
    message_id: str
    client_msg_id: str | None
    sender: str
    sender_id: str | None
    msg_type: str
    content: str
    timestamp: str
    attachment: AttachmentOut | None = None
    confidence: float | None = None
    article_id: str | None = None


class MessagePage(BaseModel):
    items: list[MessageOut]
    has_more: bool


@router.get(
    "/conversations/{session_id}/messages",
    response_model=MessagePage,
    response_model_exclude_unset=True,
)
async def message_history(
    session_id: SessionId,
    actor: Caller,
    svc: ServicesDep,
    before_seq: Annotated[int | None, Query(ge=1, le=2**31 - 1, description="only messages below this seq")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """The messages just below `before_seq` (the newest when absent), oldest first: scrolling back through a chat."""
    frames, more = await svc.chat.history(actor, session_id, before_seq, limit)
    items = [{k: v for k, v in frame.items() if k != "type"} for frame in frames]
    return {"items": items, "has_more": more}


@router.get("/conversations/{session_id}/notes", response_model=NoteList)
async def list_notes(session_id: SessionId, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """Internal notes, oldest first; agents and API keys of the app only (a visitor never sees one)."""
    return {"items": await svc.notes.list(actor, session_id)}


@router.post(
    "/conversations/{session_id}/notes", response_model=NoteOut, status_code=201, responses=error_responses(413)
)
async def write_note(session_id: SessionId, body: NoteIn, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """An agent's internal note; the conversation's agent and the author's devices get a `note` frame."""
    return await svc.notes.write(actor, session_id, body.content)
