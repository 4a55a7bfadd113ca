"""Visitors (end users) and their tags."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from kefu.domain.ids import new_id
from kefu.domain.models import Visitor
from kefu.storage.engine import Tx
from kefu.storage.rows import visitor_from
from kefu.storage.tables import visitors


async def get_visitor(tx: Tx, visitor_id: str) -> Visitor | None:
    row = (await tx.execute(sa.select(visitors).where(visitors.c.visitor_id == visitor_id))).first()
    return visitor_from(row) if row else None


async def visitor_by_user(tx: Tx, app_id: str, user_id: str) -> Visitor | None:
    query = sa.select(visitors).where(visitors.c.app_id == app_id, visitors.c.user_id == user_id)
    row = (await tx.execute(query)).first()
    return visitor_from(row) if row else None


async def upsert_visitor(
    tx: Tx,
    app_id: str,
    user_id: str | None,
    name: str | None,
    tags: dict[str, Any] | None,
    client_tags: dict[str, Any] | None,
    now: dt.datetime,
) -> Visitor:
    """The visitor for `user_id` (made on first sight), with any given name and tags stored; anonymous ones are new.

    `tags` (trusted) and `client_tags` replace what was stored only when given.
    """
    if user_id is not None:
        existing = await visitor_by_user(tx, app_id, user_id)
        if existing is None:
            try:
                async with tx.begin_nested():
                    await tx.execute(
                        visitors.insert().values(
                            visitor_id=new_id("v"),
                            app_id=app_id,
                            user_id=user_id,
                            name=name,
                            tags=tags or {},
                            client_tags=client_tags or {},
                            created_at=now,
                        )
                    )
            except IntegrityError:  # another device of the same user registered at the same moment
                pass
            existing = await visitor_by_user(tx, app_id, user_id)
            assert existing is not None
            return existing
        changes: dict[str, Any] = {}
        if name is not None and name != existing.name:
            changes["name"] = name
        if tags is not None and tags != existing.tags:
            changes["tags"] = tags
        if client_tags is not None and client_tags != existing.client_tags:
            changes["client_tags"] = client_tags
        if changes:
            await tx.execute(visitors.update().where(visitors.c.visitor_id == existing.visitor_id).values(**changes))
            existing = await get_visitor(tx, existing.visitor_id)
            assert existing is not None
        return existing
    visitor_id = new_id("v")
    await tx.execute(
        visitors.insert().values(
            visitor_id=visitor_id,
            app_id=app_id,
            user_id=None,
            name=name,
            tags={},
            client_tags=client_tags or {},
            created_at=now,
        )
    )
    visitor = await get_visitor(tx, visitor_id)
    assert visitor is not None
    return visitor


async def set_trusted_tags(tx: Tx, visitor_id: str, tags: dict[str, Any]) -> None:
    await tx.execute(visitors.update().where(visitors.c.visitor_id == visitor_id).values(tags=tags))
