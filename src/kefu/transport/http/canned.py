"""Canned responses for the console: `/shortcut` inserts the text. App-wide ones are an admin's to manage."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from kefu.transport.http.deps import Caller, ServicesDep
from kefu.transport.http.errors import error_responses

router = APIRouter(tags=["canned responses"], responses=error_responses(400, 401, 422))


class CannedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shortcut: str = Field(min_length=1, max_length=64, pattern=r"^[\w\-\u4e00-\u9fff]+$")
    text: str = Field(min_length=1, max_length=5000)
    scope: Literal["app", "agent"] = "agent"


class CannedOut(BaseModel):
    id: str
    shortcut: str
    text: str
    scope: Literal["app", "agent"]
    created_at: str


class CannedList(BaseModel):
    items: list[CannedOut]


@router.get("/canned-responses", response_model=CannedList)
async def list_canned(actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """The app's responses and, for an agent, their own."""
    return {"items": await svc.canned.list_for(actor)}


@router.post("/canned-responses", response_model=CannedOut, status_code=201, responses=error_responses(403))
async def create_canned(body: CannedIn, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    return await svc.canned.create(actor, body.shortcut, body.text, body.scope)


@router.delete(
    "/canned-responses/{response_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
async def delete_canned(response_id: str, actor: Caller, svc: ServicesDep) -> Response:
    await svc.canned.delete(actor, response_id)
    return Response(status_code=204)
