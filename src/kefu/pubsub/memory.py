"""In-process pubsub for a single node: a dictionary of topics to handlers."""

from __future__ import annotations

import logging
from collections import defaultdict

from kefu.pubsub.base import Event, Handler

log = logging.getLogger(__name__)


class _MemorySubscription:
    def __init__(self, bus: MemoryPubSub, topic: str, handler: Handler) -> None:
        self._bus, self._topic, self._handler = bus, topic, handler

    async def cancel(self) -> None:
        handlers = self._bus.handlers.get(self._topic)
        if handlers is not None:
            handlers.discard(self._handler)
            if not handlers:
                del self._bus.handlers[self._topic]


class MemoryPubSub:
    def __init__(self) -> None:
        self.handlers: dict[str, set[Handler]] = defaultdict(set)

    async def publish(self, topic: str, event: bytes) -> None:
        received = Event(event)  # one per publish, shared by every subscriber: decoded once
        for handler in list(self.handlers.get(topic, ())):
            try:
                handler(received)
            except Exception:  # one broken subscriber must not stop the others
                log.exception("pubsub handler failed on %s", topic)

    async def subscribe(self, topic: str, handler: Handler) -> _MemorySubscription:
        self.handlers[topic].add(handler)
        return _MemorySubscription(self, topic, handler)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.handlers.clear()
