"""Canned responses: the console's `/shortcut` texts. An app's own are its admins' to manage; an agent's, theirs."""

from __future__ import annotations

from typing import Any

from kefu import errors
from kefu.domain.clock import Clock, iso
from kefu.domain.ids import new_id
from kefu.domain.models import Actor
from kefu.storage import Database, Tx
from kefu.storage import canned as canned_store
from kefu.storage.rows import utc

SCOPES = ("app", "agent")


def canned_record(row: Any) -> dict[str, Any]:
    return {
        "id": row.response_id,
        "shortcut": row.shortcut,
        "text": row.text,
        "scope": "app" if row.agent_id is None else "agent",
        "created_at": iso(utc(row.created_at)),
    }


def access_scope(actor: Actor, scope: str) -> str | None:
    """The owner a new response of `scope` gets (None: the app) when `actor` may manage that scope; else raises."""
    if scope == "app":
        if not actor.is_admin:
            raise errors.Forbidden("Only an admin manages the app's canned responses.")
        return None
    if actor.kind != "agent":
        raise errors.BadRequest("An API key manages only the app's responses (scope 'app').")
    return actor.actor_id


async def access_response(tx: Tx, actor: Actor, response_id: str) -> Any:
    """A response `actor` may change: their own, or (for an admin) the app's; anything else is not found."""
    row = await canned_store.get(tx, actor.app_id, response_id)
    if row is None or not (row.agent_id == actor.actor_id or (row.agent_id is None and actor.is_admin)):
        raise errors.NotFound(f"No canned response '{response_id}' of yours.")
    return row


class CannedService:
    def __init__(self, db: Database, clock: Clock) -> None:
        self.db, self.clock = db, clock

    async def list_for(self, actor: Actor) -> list[dict[str, Any]]:
        """The app's responses and, for an agent, their own, by shortcut."""
        agent_id = actor.actor_id if actor.kind == "agent" else None
        async with self.db.read() as tx:
            return [canned_record(row) for row in await canned_store.visible_to(tx, actor.app_id, agent_id)]

    async def create(self, actor: Actor, shortcut: str, text: str, scope: str) -> dict[str, Any]:
        """A new response of the app (`scope` "app", admins only) or of the agent themselves ("agent")."""
        if scope not in SCOPES:
            raise errors.BadRequest(f"scope is one of {', '.join(SCOPES)}.")
        response_id = new_id("cr")
        values: dict[str, Any] = {
            "response_id": response_id,
            "app_id": actor.app_id,
            "agent_id": access_scope(actor, scope),
            "shortcut": shortcut,
            "text": text,
            "created_at": self.clock.now(),
        }
        async with self.db.transaction() as tx:
            await canned_store.insert(tx, values)
            row = await canned_store.get(tx, actor.app_id, response_id)
        return canned_record(row)

    async def delete(self, actor: Actor, response_id: str) -> None:
        async with self.db.transaction() as tx:
            await access_response(tx, actor, response_id)
            await canned_store.delete(tx, response_id)
