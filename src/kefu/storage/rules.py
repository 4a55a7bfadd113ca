"""Routing rules: one ordered list per app."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from kefu.domain.routing import Condition, Rule
from kefu.storage.engine import Tx
from kefu.storage.tables import routing_rules


def rule_from(row: Any) -> Rule:
    match = row.match or {}
    combine = "any" if "any" in match else "all"
    conditions = tuple(Condition(c["field"], c["op"], c.get("value")) for c in match.get(combine, []))
    return Rule(row.rule_id, conditions, combine, row.group_name, row.min_level, row.queue_priority)


def rule_record(row: Any) -> dict[str, Any]:
    """A rule as the API shows it (protocol §2)."""
    return {
        "id": row.rule_id,
        "name": row.name,
        "match": row.match,
        "group": row.group_name,
        "min_level": row.min_level,
        "queue_priority": row.queue_priority,
        "position": row.position,
    }


async def list_rule_rows(tx: Tx, app_id: str) -> list[Any]:
    query = (
        sa.select(routing_rules)
        .where(routing_rules.c.app_id == app_id)
        .order_by(routing_rules.c.position, routing_rules.c.rule_id)
    )
    return list(await tx.execute(query))


async def list_rules(tx: Tx, app_id: str) -> list[Rule]:
    return [rule_from(r) for r in await list_rule_rows(tx, app_id)]


async def get_rule_row(tx: Tx, app_id: str, rule_id: str) -> Any:
    query = sa.select(routing_rules).where(routing_rules.c.app_id == app_id, routing_rules.c.rule_id == rule_id)
    return (await tx.execute(query)).first()


async def renumber(tx: Tx, app_id: str, ordered_ids: list[str]) -> None:
    """Store the list's order as positions 1..n."""
    for position, rule_id in enumerate(ordered_ids, start=1):
        await tx.execute(
            routing_rules.update()
            .where(routing_rules.c.app_id == app_id, routing_rules.c.rule_id == rule_id)
            .values(position=position)
        )


async def insert_rule(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(routing_rules.insert().values(**values))


async def update_rule(tx: Tx, app_id: str, rule_id: str, values: dict[str, Any]) -> None:
    await tx.execute(
        routing_rules.update()
        .where(routing_rules.c.app_id == app_id, routing_rules.c.rule_id == rule_id)
        .values(**values)
    )


async def delete_rule(tx: Tx, app_id: str, rule_id: str) -> None:
    await tx.execute(routing_rules.delete().where(routing_rules.c.app_id == app_id, routing_rules.c.rule_id == rule_id))
