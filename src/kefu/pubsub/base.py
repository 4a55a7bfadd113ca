"""The pubsub interface: topics carry opaque bytes; delivery is at most once and in publish order per topic.

At most once is all Redis pub/sub promises, so nothing above relies on more: messages carry a
`seq`, receivers notice gaps and fetch what is missing from the database, the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

Handler = Callable[[bytes], None]
"""Called for each event on a subscribed topic; must not block (it queues work, it does not do it)."""


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop delivering to this subscription's handler."""
        ...


class PubSub(Protocol):
    async def publish(self, topic: str, event: bytes) -> None:
        """Deliver `event` to every subscriber of `topic`, on every node."""
        ...

    async def subscribe(self, topic: str, handler: Handler) -> Subscription:
        """Deliver every later event on `topic` to `handler` until the subscription is cancelled."""
        ...

    async def start(self) -> None:
        """Connect (a node that cannot reach its bus fails at start-up, not at the first message)."""
        ...

    async def close(self) -> None: ...
