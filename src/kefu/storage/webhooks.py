"""Webhook registrations and their outbox of deliveries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import orjson
import sqlalchemy as sa

from kefu.domain.clock import iso
from kefu.domain.ids import new_id
from kefu.storage.engine import Tx
from kefu.storage.tables import webhook_deliveries, webhooks

INSERT_DELIVERIES = webhook_deliveries.insert()
"""Executed with a list of rows, inside the transaction of the change they report (the outbox)."""


def delivery_rows(
    webhook_ids: Iterable[str], app_id: str, event: str, ordering_key: str, data: dict[str, Any], now: dt.datetime
) -> list[dict[str, Any]]:
    """The outbox rows of one event: a pending delivery to each webhook, its body as the receiver will get it."""
    rows = []
    for webhook_id in webhook_ids:
        delivery_id = new_id("dlv")
        body = {"delivery_id": delivery_id, "event": event, "created_at": iso(now), "app_id": app_id, "data": data}
        rows.append(
            {
                "delivery_id": delivery_id,
                "webhook_id": webhook_id,
                "app_id": app_id,
                "event": event,
                "ordering_key": ordering_key,
                "body": orjson.dumps(body).decode(),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
        )
    return rows


async def insert_webhook(tx: Tx, values: dict[str, Any]) -> None:
    await tx.execute(webhooks.insert().values(**values))


async def get_webhook(tx: Tx, app_id: str, webhook_id: str) -> Any:
    query = sa.select(webhooks).where(
        webhooks.c.app_id == app_id, webhooks.c.webhook_id == webhook_id, webhooks.c.deleted_at.is_(None)
    )
    return (await tx.execute(query)).first()


async def list_webhooks(tx: Tx, app_id: str) -> list[Any]:
    query = (
        sa.select(webhooks)
        .where(webhooks.c.app_id == app_id, webhooks.c.deleted_at.is_(None))
        .order_by(webhooks.c.created_at)
    )
    return list(await tx.execute(query))


async def active_subscriptions(tx: Tx) -> list[tuple[str, str, list[str]]]:
    """(app_id, webhook_id, events) of every live webhook."""
    query = sa.select(webhooks.c.app_id, webhooks.c.webhook_id, webhooks.c.events).where(
        webhooks.c.deleted_at.is_(None)
    )
    return [(r.app_id, r.webhook_id, list(r.events or [])) for r in await tx.execute(query)]


async def delete_webhook(tx: Tx, app_id: str, webhook_id: str, now: dt.datetime) -> bool:
    result = await tx.execute(
        webhooks.update()
        .where(webhooks.c.app_id == app_id, webhooks.c.webhook_id == webhook_id, webhooks.c.deleted_at.is_(None))
        .values(deleted_at=now)
    )
    await tx.execute(
        webhook_deliveries.update()
        .where(webhook_deliveries.c.webhook_id == webhook_id, webhook_deliveries.c.status == "pending")
        .values(status="failed", last_error="webhook deleted")
    )
    return bool(result.rowcount)


async def list_deliveries(tx: Tx, webhook_id: str, limit: int, before_id: int | None) -> list[Any]:
    query = sa.select(webhook_deliveries).where(webhook_deliveries.c.webhook_id == webhook_id)
    if before_id is not None:
        query = query.where(webhook_deliveries.c.id < before_id)
    return list(await tx.execute(query.order_by(webhook_deliveries.c.id.desc()).limit(limit)))


async def claim_due(tx: Tx, now: dt.datetime, lease: dt.timedelta, limit: int) -> list[Any]:
    """Lease the deliveries that may go now: due, not leased, and the oldest pending one of their conversation.

    On PostgreSQL the rows are taken with SKIP LOCKED, so several nodes share the work without
    taking the same delivery; the lease makes a crashed node's deliveries due again.
    """
    d, e = webhook_deliveries, webhook_deliveries.alias("earlier")
    earlier_pending = (
        sa.select(e.c.id)
        .where(e.c.webhook_id == d.c.webhook_id, e.c.ordering_key == d.c.ordering_key)
        .where(e.c.status == "pending", e.c.id < d.c.id)
    )
    query = (
        sa.select(d.c.id)
        .where(d.c.status == "pending", d.c.next_attempt_at <= now)
        .where(sa.or_(d.c.locked_until.is_(None), d.c.locked_until < now))
        .where(~sa.exists(earlier_pending))
        .order_by(d.c.id)
        .limit(limit)
    )
    if tx.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=d)
    ids = [r.id for r in await tx.execute(query)]
    if not ids:
        return []
    await tx.execute(d.update().where(d.c.id.in_(ids)).values(locked_until=now + lease))
    rows = await tx.execute(
        sa.select(d, webhooks.c.url, webhooks.c.secret)
        .join(webhooks, webhooks.c.webhook_id == d.c.webhook_id)
        .where(d.c.id.in_(ids))
        .order_by(d.c.id)
    )
    return list(rows)


async def record_attempt(tx: Tx, delivery_pk: int, values: dict[str, Any]) -> None:
    await tx.execute(
        webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_pk).values(locked_until=None, **values)
    )


async def backlog(tx: Tx) -> int:
    query = sa.select(sa.func.count()).where(webhook_deliveries.c.status == "pending")
    return int((await tx.execute(query)).scalar_one())
