"""Redis pubsub for several nodes: local subscribers are served directly, other nodes through Redis.

Each node holds one Redis connection for publishing and one for its subscriptions; it subscribes
to a topic's channel only while a local connection needs it. An event carries the publishing
node's id, so a node ignores its own events coming back from Redis (it delivered them already).
Redis pub/sub delivers at most once and keeps nothing: if the subscription connection drops, the
node reconnects and resubscribes, and connections recover what they missed from the database
(gap fill on the next message, `sync` on reconnect) — Redis is the fast hint, not the record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import defaultdict
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from kefu import errors
from kefu.outages import OutageLog
from kefu.pubsub.base import Event, Handler

log = logging.getLogger(__name__)
PREFIX = "kefu:"
NODE_ID_BYTES = 16
RESUBSCRIBE_MAX_DELAY_S = 1.0  # live delivery across nodes resumes within about this long of Redis's return


class _RedisSubscription:
    def __init__(self, bus: RedisPubSub, topic: str, handler: Handler) -> None:
        self._bus, self._topic, self._handler = bus, topic, handler

    async def cancel(self) -> None:
        await self._bus.unsubscribe(self._topic, self._handler)


class RedisPubSub:
    def __init__(self, url: str) -> None:
        self.url = url
        self.node_id = secrets.token_hex(NODE_ID_BYTES // 2).encode()
        self.handlers: dict[str, set[Handler]] = defaultdict(set)
        self._client: aioredis.Redis = aioredis.Redis.from_url(url)
        self._pubsub: Any = self._client.pubsub(ignore_subscribe_messages=True)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.outage = OutageLog(log, "Redis (pubsub)")

    async def start(self) -> None:
        await self._client.ping()  # fail at start-up, not at the first message, when Redis is unreachable
        # A subscription on a node-private channel keeps the reader's connection open even with no topic yet.
        await self._pubsub.subscribe(PREFIX + "node:" + self.node_id.decode())
        self._reader = asyncio.get_running_loop().create_task(self._read())

    def _deliver(self, topic: str, event: bytes) -> None:
        received = Event(event)  # one per event and node, shared by every local subscriber: decoded once
        for handler in list(self.handlers.get(topic, ())):
            try:
                handler(received)
            except Exception:
                log.exception("pubsub handler failed on %s", topic)

    async def publish(self, topic: str, event: bytes) -> None:
        self._deliver(topic, event)
        try:
            await self._client.publish(PREFIX + topic, self.node_id + event)
        except (RedisError, OSError) as exc:  # other nodes' clients recover by seq and sync; this node's were served
            self.outage.failed(exc, f"publishing on {topic}")
        else:
            self.outage.succeeded()

    async def subscribe(self, topic: str, handler: Handler) -> _RedisSubscription:
        """Deliver `topic` to `handler`; raises `Unavailable`, leaving nothing registered, when Redis is down."""
        async with self._lock:
            if not self.handlers.get(topic):
                try:
                    await self._pubsub.subscribe(PREFIX + topic)
                except (RedisError, OSError) as exc:
                    # Registered only once subscribed: a failed caller (a socket closing) must leave no handler.
                    self.outage.failed(exc, f"subscribing to {topic}")
                    raise errors.Unavailable("kefu cannot reach Redis just now; try again shortly.") from exc
            self.handlers[topic].add(handler)
        return _RedisSubscription(self, topic, handler)

    async def unsubscribe(self, topic: str, handler: Handler) -> None:
        async with self._lock:
            handlers = self.handlers.get(topic)
            if handlers is None:
                return
            handlers.discard(handler)
            if not handlers:
                del self.handlers[topic]
                with contextlib.suppress(RedisError):
                    await self._pubsub.unsubscribe(PREFIX + topic)

    async def _read(self) -> None:
        while True:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError):
                log.warning("Redis subscription lost; reconnecting")
                await self._resubscribe()
                continue
            if message is None or message.get("type") != "message":
                continue
            data: bytes = message["data"]
            if data[:NODE_ID_BYTES] == self.node_id:
                continue
            channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
            self._deliver(channel.removeprefix(PREFIX), data[NODE_ID_BYTES:])

    async def _resubscribe(self) -> None:
        delay = 0.1
        while True:
            try:
                async with self._lock:
                    with contextlib.suppress(Exception):
                        await self._pubsub.aclose()
                    self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
                    channels = [PREFIX + "node:" + self.node_id.decode(), *(PREFIX + t for t in self.handlers)]
                    await self._pubsub.subscribe(*channels)
                return
            except (RedisError, OSError):
                await asyncio.sleep(delay)  # backing off while Redis is away
                delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY_S)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._client.aclose()
