"""Internal notes on conversations: agents write them, visitors never see them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from kefu.domain.ids import new_id
from kefu.storage.engine import Tx
from kefu.storage.tables import conversation_notes


async def add(
    tx: Tx, app_id: str, session_id: str, agent_id: str, content: str, kind: str, now: dt.datetime
) -> dict[str, Any]:
    """Store a note (`kind` "note" or "transfer") in the caller's transaction; its stored values."""
    values = {
        "note_id": new_id("note"),
        "app_id": app_id,
        "session_id": session_id,
        "agent_id": agent_id,
        "kind": kind,
        "content": content,
        "created_at": now,
    }
    await tx.execute(conversation_notes.insert().values(**values))
    return values


async def of_conversation(tx: Tx, session_id: str) -> list[Any]:
    """The conversation's notes, oldest first."""
    c = conversation_notes.c
    query = sa.select(conversation_notes).where(c.session_id == session_id).order_by(c.created_at, c.note_id)
    return list(await tx.execute(query))
