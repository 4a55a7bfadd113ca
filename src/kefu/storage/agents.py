"""Agents, their groups, and the load figures routing needs."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import sqlalchemy as sa

from kefu.domain.models import Agent
from kefu.domain.routing import AgentLoad
from kefu.storage.engine import Database, Tx
from kefu.storage.rows import agent_from, utc_required
from kefu.storage.tables import agent_groups, agents, apps, conversations, groups

ROUTING_LOCK_CLASS = 4242002  # advisory lock space of the per-app routing lock (migrations use 4242001)


async def ensure_group(tx: Tx, app_id: str, name: str, now: dt.datetime) -> None:
    exists = await tx.execute(sa.select(groups.c.name).where(groups.c.app_id == app_id, groups.c.name == name))
    if exists.first() is None:
        await tx.execute(groups.insert().values(app_id=app_id, name=name, description="", created_at=now))


async def list_groups(tx: Tx, app_id: str) -> list[str]:
    rows = await tx.execute(sa.select(groups.c.name).where(groups.c.app_id == app_id).order_by(groups.c.name))
    return [r.name for r in rows]


async def group_rows(tx: Tx, app_id: str) -> list[Any]:
    """The app's groups by name, each with `name`, `description`, `created_at` and `agent_count`."""
    members = (
        sa.select(agent_groups.c.group_name, sa.func.count().label("n"))
        .where(agent_groups.c.app_id == app_id)
        .group_by(agent_groups.c.group_name)
        .subquery()
    )
    query = (
        sa.select(groups.c.name, groups.c.description, groups.c.created_at, members.c.n)
        .select_from(groups.outerjoin(members, members.c.group_name == groups.c.name))
        .where(groups.c.app_id == app_id)
        .order_by(groups.c.name)
    )
    return list(await tx.execute(query))


async def insert_group(tx: Tx, app_id: str, name: str, description: str, now: dt.datetime) -> None:
    await tx.execute(groups.insert().values(app_id=app_id, name=name, description=description, created_at=now))


async def app_settings_document(tx: Tx, app_id: str) -> dict[str, Any] | None:
    """The app's settings as stored, including keys `AppSettings` does not know (None: no such app)."""
    row = (await tx.execute(sa.select(apps.c.settings).where(apps.c.app_id == app_id))).first()
    return dict(row.settings or {}) if row else None


@contextlib.asynccontextmanager
async def routing_guard(db: Database, app_id: str) -> AsyncIterator[None]:
    """Hold the app's routing lock across a transaction *and* what is published after its commit.

    A session-level PostgreSQL advisory lock on its own connection, the same lock `lock_routing`
    takes for one transaction, so the frames two nodes push about one app's queue go out in the
    order of the commits they describe. SQLite (a single node) needs none.
    """
    if db.is_sqlite:
        yield
        return
    with db.reporting_outages():
        async with db.engine.connect() as conn:
            key = (ROUTING_LOCK_CLASS, sa.func.hashtext(app_id))
            await conn.execute(sa.select(sa.func.pg_advisory_lock(*key)))
            await conn.commit()  # the lock is the session's: it outlives this statement's transaction
            try:
                yield
            finally:
                try:
                    await conn.execute(sa.select(sa.func.pg_advisory_unlock(*key)))
                    await conn.commit()
                except BaseException:
                    await conn.invalidate()  # closing the session is what surely frees its lock
                    raise


async def lock_routing(tx: Tx, app_id: str) -> None:
    """Serialise routing decisions of one app across nodes until commit (PostgreSQL advisory lock).

    Each statement after it sees every commit made before it was granted, so a node that assigns,
    transfers or requeues works from the agents' real loads. SQLite serialises writers by itself.
    """
    if tx.dialect.name == "postgresql":
        await tx.execute(sa.select(sa.func.pg_advisory_xact_lock(ROUTING_LOCK_CLASS, sa.func.hashtext(app_id))))


async def insert_agent(tx: Tx, values: dict[str, Any], group_names: Iterable[str]) -> None:
    await tx.execute(agents.insert().values(**values))
    await set_agent_groups(tx, values["agent_id"], values["app_id"], group_names)


async def set_agent_groups(tx: Tx, agent_id: str, app_id: str, group_names: Iterable[str]) -> None:
    await tx.execute(agent_groups.delete().where(agent_groups.c.agent_id == agent_id))
    rows = [{"agent_id": agent_id, "group_name": g, "app_id": app_id} for g in dict.fromkeys(group_names)]
    if rows:
        await tx.execute(agent_groups.insert(), rows)


async def _groups_of(tx: Tx, agent_ids: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = defaultdict(list)
    if agent_ids:
        query = (
            sa.select(agent_groups).where(agent_groups.c.agent_id.in_(agent_ids)).order_by(agent_groups.c.group_name)
        )
        for row in await tx.execute(query):
            found[row.agent_id].append(row.group_name)
    return {a: tuple(found[a]) for a in agent_ids}


async def get_agent(tx: Tx, agent_id: str) -> Agent | None:
    row = (await tx.execute(sa.select(agents).where(agents.c.agent_id == agent_id))).first()
    return agent_from(row, (await _groups_of(tx, [agent_id]))[agent_id]) if row else None


async def agent_by_email(tx: Tx, app_id: str, email: str) -> Agent | None:
    query = sa.select(agents).where(agents.c.app_id == app_id, sa.func.lower(agents.c.email) == email.lower())
    row = (await tx.execute(query)).first()
    return agent_from(row, (await _groups_of(tx, [row.agent_id]))[row.agent_id]) if row else None


async def list_agents(tx: Tx, app_id: str) -> list[Agent]:
    rows = list(await tx.execute(sa.select(agents).where(agents.c.app_id == app_id).order_by(agents.c.created_at)))
    by_id = await _groups_of(tx, [r.agent_id for r in rows])
    return [agent_from(r, by_id[r.agent_id]) for r in rows]


async def update_agent(tx: Tx, agent_id: str, values: dict[str, Any]) -> None:
    if values:
        await tx.execute(agents.update().where(agents.c.agent_id == agent_id).values(**values))


async def set_status(tx: Tx, agent_id: str, status: str) -> None:
    await tx.execute(agents.update().where(agents.c.agent_id == agent_id).values(status=status))


async def online_loads(tx: Tx, app_id: str, group: str | None, lock: bool) -> list[AgentLoad]:
    """Every agent of the app whose status is `online` (in `group`, when given) with its current load.

    With `lock`, their rows stay locked until commit (PostgreSQL), so two nodes assigning at once
    cannot both give an agent its last free slot.
    """
    query = sa.select(agents.c.agent_id, agents.c.level, agents.c.max_concurrent, agents.c.idle_since).where(
        agents.c.app_id == app_id, agents.c.status == "online"
    )
    if group is not None:
        query = query.where(
            agents.c.agent_id.in_(
                sa.select(agent_groups.c.agent_id).where(
                    agent_groups.c.app_id == app_id, agent_groups.c.group_name == group
                )
            )
        )
    if lock and tx.dialect.name == "postgresql":
        query = query.order_by(agents.c.agent_id).with_for_update(of=agents)
    rows = list(await tx.execute(query))
    ids = [r.agent_id for r in rows]
    loads: dict[str, int] = {}
    groups_by_id = await _groups_of(tx, ids)
    if ids:
        count_query = (
            sa.select(conversations.c.agent_id, sa.func.count())
            .where(conversations.c.agent_id.in_(ids), conversations.c.status == "active")
            .group_by(conversations.c.agent_id)
        )
        loads = {agent_id: n for agent_id, n in await tx.execute(count_query)}
    return [
        AgentLoad(
            r.agent_id,
            r.level,
            loads.get(r.agent_id, 0),
            r.max_concurrent,
            utc_required(r.idle_since),
            frozenset(groups_by_id[r.agent_id]),
        )
        for r in rows
    ]


async def loads_of_app(tx: Tx, app_id: str) -> dict[str, int]:
    """Active conversations per agent of the app (agents without any are absent)."""
    query = (
        sa.select(conversations.c.agent_id, sa.func.count())
        .where(conversations.c.app_id == app_id, conversations.c.status == "active")
        .group_by(conversations.c.agent_id)
    )
    return {agent_id: int(n) for agent_id, n in await tx.execute(query) if agent_id}


async def count_admins(tx: Tx, app_id: str) -> int:
    query = sa.select(sa.func.count()).where(agents.c.app_id == app_id, agents.c.role == "admin")
    return int((await tx.execute(query)).scalar_one())


async def load_of(tx: Tx, agent_id: str) -> int:
    query = sa.select(sa.func.count()).where(conversations.c.agent_id == agent_id, conversations.c.status == "active")
    return int((await tx.execute(query)).scalar_one())


async def present_agents(tx: Tx, app_id: str, group: str | None = None) -> list[Agent]:
    """Agents whose chosen status is online or busy (in `group`, when given)."""
    query = sa.select(agents).where(agents.c.app_id == app_id, agents.c.status.in_(("online", "busy")))
    if group is not None:
        query = query.where(
            agents.c.agent_id.in_(
                sa.select(agent_groups.c.agent_id).where(
                    agent_groups.c.app_id == app_id, agent_groups.c.group_name == group
                )
            )
        )
    rows = list(await tx.execute(query))
    return [agent_from(r, ()) for r in rows]


async def agents_with_status(tx: Tx, statuses: tuple[str, ...]) -> list[tuple[str, str]]:
    """(agent_id, app_id) of every agent, in any app, whose chosen status is one of `statuses`."""
    query = sa.select(agents.c.agent_id, agents.c.app_id).where(agents.c.status.in_(statuses))
    return [(r.agent_id, r.app_id) for r in await tx.execute(query)]
