"""Service availability and liveness."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from kefu.transport.http.deps import ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["service"], responses=error_responses(400, 422))

Availability = Literal["online", "busy", "offline"]


class GroupStatusOut(BaseModel):
    status: Availability
    queue_length: int = Field(description="chats waiting in the group now")
    eta_seconds: int = Field(description="what a chat opened now would wait; 0 when a slot is free")


class StatusOut(BaseModel):
    status: Availability = Field(
        description="`online`: an online agent has a free slot; `busy`: agents are online but full, new chats queue; "
        "`offline`: no agent online (chats still open and wait `queued`)"
    )
    groups: dict[str, GroupStatusOut] = Field(description="by group name")


@router.get("/status", response_model=StatusOut, responses=error_responses(404))
async def status(svc: ServicesDep, app_id: Annotated[str, Query(min_length=1, max_length=64)]) -> dict[str, Any]:
    """`online` = an online agent has a free slot; `busy` = agents are there but full; `offline` = nobody online."""
    await svc.admin.get_app(app_id)
    return await svc.routing.status(app_id)
