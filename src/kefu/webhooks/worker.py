"""The delivery worker: takes due deliveries from the outbox and POSTs them, signed, with retries.

At least once: a delivery is marked delivered only after a 2xx; a node that dies mid-delivery
leaves a lease that expires, and another node (or this one, restarted) sends it again under the
same `delivery_id`. In order per conversation: only the oldest pending delivery of a
(webhook, conversation) is ever due. Failed attempts back off exponentially (1 s, 2 s, 4 s, …
up to KEFU_WEBHOOK_MAX_BACKOFF) for 24 hours, then the delivery is marked failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
from typing import Any

import httpx

from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.errors import KefuError, Unavailable
from kefu.storage import Database
from kefu.storage import webhooks as webhook_store
from kefu.storage.rows import utc_required
from kefu.webhooks.addresses import PinnedTransport, Resolver, resolve
from kefu.webhooks.service import WebhookService, check_scheme

log = logging.getLogger(__name__)
GIVE_UP_AFTER = dt.timedelta(hours=24)
LEASE = dt.timedelta(seconds=60)
TICK_S = 0.5
BATCH = 50


def signature(secret: str, body: bytes) -> str:
    """`X-Kefu-Signature`: sha256=<hex HMAC-SHA256 of the raw body under the webhook's secret>."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def backoff_s(attempts: int, max_backoff: float) -> float:
    """Wait before the next try after `attempts` failed ones: 1, 2, 4, … seconds, at most `max_backoff`."""
    return float(min(2 ** max(attempts - 1, 0), max_backoff))


def delivery_client(settings: Settings, resolver: Resolver = resolve) -> httpx.AsyncClient:
    """The client deliveries are POSTed with: to checked addresses only (PinnedTransport), no proxy from the
    environment, and redirects never followed (a 3xx is a failed attempt): a receiver cannot send kefu on."""
    return httpx.AsyncClient(
        transport=PinnedTransport(settings.webhook_allow_private, resolver),
        timeout=settings.webhook_timeout_s,
        follow_redirects=False,
        trust_env=False,
    )


class WebhookWorker:
    def __init__(self, db: Database, clock: Clock, settings: Settings, service: WebhookService) -> None:
        self.db, self.clock, self.settings, self.service = db, clock, settings, service
        self._task: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        self._client = delivery_client(self.settings)
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._client is not None:
            await self._client.aclose()

    async def _run(self) -> None:
        while True:
            try:
                await self.service.refresh_if_stale()
                while await self.deliver_due():
                    pass
            except asyncio.CancelledError:
                raise
            except Unavailable:  # logged once as an outage by the database: try again on the next tick
                pass
            except Exception:  # the database went away for a moment: try again on the next tick
                log.exception("webhook delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.service.wake.wait(), TICK_S)
            self.service.wake.clear()

    async def deliver_due(self) -> int:
        """One pass: lease what is due, send it (different conversations in parallel), record the outcomes."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            claimed = await webhook_store.claim_due(tx, now, LEASE, BATCH)
        if claimed:
            await asyncio.gather(*(self._deliver(row) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: Any) -> None:
        assert self._client is not None
        body = row.body.encode()
        status: int | None = None
        error: str | None = None
        try:
            check_scheme(row.url)  # the address is checked on connecting, by the transport
            response = await self._client.post(
                row.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Kefu-Event": row.event,
                    "X-Kefu-Delivery": row.delivery_id,
                    "X-Kefu-Signature": signature(row.secret, body),
                    "User-Agent": "kefu-webhooks/1",
                },
            )
            status = response.status_code
        except (httpx.HTTPError, KefuError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        now = self.clock.now()
        attempts = row.attempts + 1
        values: dict[str, Any] = {"attempts": attempts, "last_status_code": status, "last_error": error}
        if status is not None and 200 <= status < 300:
            values |= {"status": "delivered", "delivered_at": now}
        elif now - utc_required(row.created_at) >= GIVE_UP_AFTER:
            values |= {"status": "failed"}
        else:
            values |= {
                "next_attempt_at": now + dt.timedelta(seconds=backoff_s(attempts, self.settings.webhook_max_backoff))
            }
        async with self.db.transaction() as tx:
            await webhook_store.record_attempt(tx, row.id, values)
