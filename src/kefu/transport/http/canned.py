"""Canned responses for the console: `/shortcut` inserts the text. App-wide ones are an admin's to manage."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from kefu import errors
from kefu.domain.clock import iso
from kefu.domain.ids import new_id
from kefu.domain.models import Actor
from kefu.storage import canned as canned_store
from kefu.storage.rows import utc
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


def _record(row: Any) -> dict[str, Any]:
    return {
        "id": row.response_id,
        "shortcut": row.shortcut,
        "text": row.text,
        "scope": "app" if row.agent_id is None else "agent",
        "created_at": iso(utc(row.created_at)),
    }


def _owner(actor: Actor, scope: str) -> str | None:
    if scope == "app":
        if not actor.is_admin:
            raise errors.Forbidden("Only an admin manages the app's canned responses.")
        return None
    if actor.kind != "agent":
        raise errors.BadRequest("An API key manages only the app's responses (scope 'app').")
    return actor.actor_id


@router.get("/canned-responses", response_model=CannedList)
async def list_canned(actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    """The app's responses and, for an agent, their own."""
    agent_id = actor.actor_id if actor.kind == "agent" else None
    async with svc.db.read() as tx:
        return {"items": [_record(r) for r in await canned_store.visible_to(tx, actor.app_id, agent_id)]}


@router.post("/canned-responses", response_model=CannedOut, status_code=201, responses=error_responses(403))
async def create_canned(body: CannedIn, actor: Caller, svc: ServicesDep) -> dict[str, Any]:
    response_id = new_id("cr")
    values: dict[str, Any] = {
        "response_id": response_id,
        "app_id": actor.app_id,
        "agent_id": _owner(actor, body.scope),
        "shortcut": body.shortcut,
        "text": body.text,
        "created_at": svc.clock.now(),
    }
    async with svc.db.transaction() as tx:
        await canned_store.insert(tx, values)
        row = await canned_store.get(tx, actor.app_id, response_id)
    return _record(row)


@router.delete(
    "/canned-responses/{response_id}", status_code=204, response_class=Response, responses=error_responses(404)
)
async def delete_canned(response_id: str, actor: Caller, svc: ServicesDep) -> Response:
    async with svc.db.transaction() as tx:
        row = await canned_store.get(tx, actor.app_id, response_id)
        mine = row is not None and (row.agent_id == actor.actor_id or (row.agent_id is None and actor.is_admin))
        if not mine:
            raise errors.NotFound(f"No canned response '{response_id}' of yours.")
        await canned_store.delete(tx, response_id)
    return Response(status_code=204)
