"""Internal notes: agents annotate a conversation for each other; the visitor never sees one.

Notes are not messages: they take no `seq`, so the visitor's stream has no gaps where they sit. They reach the
agents' devices as `note` frames (the conversation's agent and the author) and are read back with
`GET /conversations/{session_id}/notes`. A transfer's note is stored here too, with `kind: "transfer"`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kefu import errors
from kefu.domain.clock import Clock, iso
from kefu.domain.models import Actor
from kefu.services.chat import ChatService
from kefu.services.events import Publisher, agent_topic
from kefu.storage import Database
from kefu.storage import agents as agent_store
from kefu.storage import notes as note_store
from kefu.storage.rows import utc_required


def note_record(values: Mapping[str, Any], agent_name: str | None) -> dict[str, Any]:
    """A note as the API and the `note` frame show it (`values`: a stored row's mapping)."""
    return {
        "note_id": values["note_id"],
        "session_id": values["session_id"],
        "agent_id": values["agent_id"],
        "agent_name": agent_name,
        "content": values["content"],
        "kind": values["kind"],
        "created_at": iso(utc_required(values["created_at"])),
    }


class NoteService:
    def __init__(self, db: Database, chat: ChatService, publisher: Publisher, clock: Clock, max_chars: int) -> None:
        self.db, self.chat, self.publisher, self.clock, self.max_chars = db, chat, publisher, clock, max_chars

    async def write(self, actor: Actor, session_id: str, content: str) -> dict[str, Any]:
        """An agent of the app notes something on one of its conversations; its agents' devices are told."""
        if actor.kind != "agent":
            raise errors.Forbidden("Only an agent writes internal notes.")
        if not content.strip():
            raise errors.BadRequest("A note needs some text.")
        if len(content) > self.max_chars:
            raise errors.MessageTooLong(f"A note holds at most {self.max_chars} characters.")
        async with self.db.transaction() as tx:
            conv = await self.chat.access_conversation(tx, actor, session_id)
            values = await note_store.add(
                tx, actor.app_id, session_id, actor.actor_id, content, "note", self.clock.now()
            )
            author = await agent_store.get_agent(tx, actor.actor_id)
        record = note_record(values, author.name if author else None)
        topics = [agent_topic(a) for a in (conv.agent_id, actor.actor_id) if a]
        await self.publisher.publish(topics, {"type": "note", **record})
        return record

    async def list(self, actor: Actor, session_id: str) -> list[dict[str, Any]]:
        """The conversation's notes, oldest first, for its app's agents and API keys (never for a visitor)."""
        if actor.kind == "visitor":
            raise errors.Forbidden("Internal notes are for agents only.")
        async with self.db.read() as tx:
            await self.chat.access_conversation(tx, actor, session_id)
            rows = await note_store.of_conversation(tx, session_id)
            names = {a.agent_id: a.name for a in await agent_store.list_agents(tx, actor.app_id)}
        return [note_record(r._mapping, names.get(r.agent_id)) for r in rows]
