"""Registering webhooks and writing their deliveries into the outbox, in the transaction of the change."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any
from urllib.parse import urlsplit

from kefu import errors
from kefu.config import Settings
from kefu.domain.clock import Clock, iso
from kefu.domain.ids import new_id
from kefu.domain.models import Actor
from kefu.storage import Database, Tx
from kefu.storage import webhooks as webhook_store
from kefu.storage.rows import utc
from kefu.webhooks.addresses import refusal, resolve

EVENTS = (
    "conversation.created",
    "conversation.queued",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.handoff",
    "conversation.closed",
    "message.created",
)
SUBSCRIPTIONS_TTL_S = 2.0  # how soon a webhook registered on another node starts receiving this node's events


def check_scheme(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; anything else is refused."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as exc:
        raise errors.BadRequest("A webhook URL is an http:// or https:// URL with a host.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise errors.BadRequest("A webhook URL is an http:// or https:// URL with a host.")
    return parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def check_url(url: str, allow_private: bool) -> None:
    """http(s) only; a host that is or resolves to an address that is not globally routable is refused (SSRF).

    Checked again at every delivery, on the very addresses it connects to (kefu/webhooks/addresses.py)."""
    host, port = check_scheme(url)
    if allow_private:
        return
    try:
        found = await resolve(host, port)
    except OSError as exc:
        raise errors.BadRequest(f"The webhook host '{host}' does not resolve.") from exc
    for address in found:
        reason = refusal(address)
        if reason is not None:
            raise errors.BadRequest(
                f"Webhook URLs must reach the public internet; '{host}' resolves to {address}: {reason}"
                " (set KEFU_WEBHOOK_ALLOW_PRIVATE=true to allow private receivers)."
            )


def webhook_record(row: Any, with_secret: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": row.webhook_id,
        "url": row.url,
        "events": list(row.events),
        "created_at": iso(utc(row.created_at)),
    }
    if with_secret:
        record["secret"] = row.secret
    return record


def delivery_record(row: Any) -> dict[str, Any]:
    return {
        "delivery_id": row.delivery_id,
        "event": row.event,
        "status": row.status,
        "attempts": row.attempts,
        "last_status_code": row.last_status_code,
        "created_at": iso(utc(row.created_at)),
        "delivered_at": iso(utc(row.delivered_at)),
    }


class WebhookService:
    def __init__(self, db: Database, clock: Clock, settings: Settings) -> None:
        self.db, self.clock, self.settings = db, clock, settings
        self._subscriptions: dict[str, list[tuple[str, frozenset[str]]]] = {}
        self._loaded_at: float | None = None
        self.wake = asyncio.Event()

    # --- administration ------------------------------------------------------------------------

    async def create(self, actor: Actor, url: str, events: list[str], secret: str | None) -> dict[str, Any]:
        unknown = sorted(set(events) - set(EVENTS))
        if not events or unknown:
            raise errors.BadRequest(f"events are some of {', '.join(EVENTS)}" + (f"; not {unknown}" if unknown else ""))
        await check_url(url, self.settings.webhook_allow_private)
        values: dict[str, Any] = {
            "webhook_id": new_id("wh"),
            "app_id": actor.app_id,
            "url": url,
            "events": sorted(set(events)),
            "secret": secret or "whsec_" + secrets.token_urlsafe(32),
            "created_at": self.clock.now(),
        }
        async with self.db.transaction() as tx:
            await webhook_store.insert_webhook(tx, values)
            row = await webhook_store.get_webhook(tx, actor.app_id, values["webhook_id"])
        await self.refresh()
        return webhook_record(row, with_secret=True)

    async def list_for(self, actor: Actor) -> list[dict[str, Any]]:
        async with self.db.read() as tx:
            return [webhook_record(r) for r in await webhook_store.list_webhooks(tx, actor.app_id)]

    async def get(self, actor: Actor, webhook_id: str) -> dict[str, Any]:
        async with self.db.read() as tx:
            row = await webhook_store.get_webhook(tx, actor.app_id, webhook_id)
        if row is None:
            raise errors.NotFound(f"No webhook '{webhook_id}'.")
        return webhook_record(row)

    async def delete(self, actor: Actor, webhook_id: str) -> None:
        async with self.db.transaction() as tx:
            if not await webhook_store.delete_webhook(tx, actor.app_id, webhook_id, self.clock.now()):
                raise errors.NotFound(f"No webhook '{webhook_id}'.")
        await self.refresh()

    async def deliveries(self, actor: Actor, webhook_id: str, limit: int, cursor: str | None) -> dict[str, Any]:
        if not 1 <= limit <= 200:
            raise errors.BadRequest("limit is between 1 and 200.")
        try:
            before = int(cursor) if cursor else None
        except ValueError as exc:
            raise errors.BadRequest("cursor is not one this API gave out.") from exc
        async with self.db.read() as tx:
            if await webhook_store.get_webhook(tx, actor.app_id, webhook_id) is None:
                raise errors.NotFound(f"No webhook '{webhook_id}'.")
            rows = await webhook_store.list_deliveries(tx, webhook_id, limit + 1, before)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [delivery_record(r) for r in rows], "next_cursor": str(rows[-1].id) if more else None}

    # --- the outbox ------------------------------------------------------------------------------

    async def refresh(self) -> None:
        """Reload which webhooks listen to which events (every few seconds, and at once after a change here)."""
        async with self.db.read() as tx:
            subscriptions = await webhook_store.active_subscriptions(tx)
        fresh: dict[str, list[tuple[str, frozenset[str]]]] = {}
        for app_id, webhook_id, events in subscriptions:
            fresh.setdefault(app_id, []).append((webhook_id, frozenset(events)))
        self._subscriptions = fresh
        self._loaded_at = asyncio.get_running_loop().time()

    async def refresh_if_stale(self) -> None:
        if self._loaded_at is None or asyncio.get_running_loop().time() - self._loaded_at > SUBSCRIPTIONS_TTL_S:
            await self.refresh()

    def listeners(self, app_id: str, event: str) -> tuple[str, ...]:
        """The app's webhooks that listen to `event` (usually none), as last refreshed."""
        return tuple(webhook_id for webhook_id, events in self._subscriptions.get(app_id, ()) if event in events)

    async def enqueue(self, tx: Tx, app_id: str, event: str, ordering_key: str, data: dict[str, Any]) -> None:
        """Write the deliveries of an event in the caller's transaction: committed with the change, or not at all."""
        listeners = self.listeners(app_id, event)
        if listeners:
            rows = webhook_store.delivery_rows(listeners, app_id, event, ordering_key, data, self.clock.now())
            await tx.execute(webhook_store.INSERT_DELIVERIES, rows)
            self.wake.set()
