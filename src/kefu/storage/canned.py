"""Canned responses: the app's, and each agent's own."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kefu.storage.engine import Tx
from kefu.storage.tables import canned_responses


async def visible_to(tx: Tx, app_id: str, agent_id: str | None) -> list[Any]:
    """The app's responses, and the agent's own (when an agent asks), by shortcut."""
    c = canned_responses.c
    mine = c.agent_id.is_(None) if agent_id is None else sa.or_(c.agent_id.is_(None), c.agent_id == agent_id)
    query = sa.select(canned_responses).where(c.app_id == app_id, mine).order_by(c.shortcut, c.agent_id)
    return list(await tx.execute(query))


async def insert(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(canned_responses.insert().values(**values))


async def get(tx: Tx, app_id: str, response_id: str) -> Any:
    c = canned_responses.c
    return (
        await tx.execute(sa.select(canned_responses).where(c.app_id == app_id, c.response_id == response_id))
    ).first()


async def delete(tx: Tx, response_id: str) -> None:
    await tx.execute(canned_responses.delete().where(canned_responses.c.response_id == response_id))
