"""The pubsub interface: topics carry JSON frames as bytes; delivery is at most once and in publish order per topic.

At most once is all Redis pub/sub promises, so nothing above relies on more: messages carry a
`seq`, receivers notice gaps and fetch what is missing from the database, the source of truth.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson


class Event:
    """One published event as this node received it, handed to every local subscriber of its topic.

    What subscribers need from it is worked out once per node, not once per subscriber (issue 15): `frame`
    parses the JSON once; `text` is the frame as a client gets it — the payload as text, without private
    routing keys (those starting with `_`, e.g. `_origin`) — ready to be written to every socket as is.
    Subscribers share `frame`: they read it, never change it.
    """

    __slots__ = ("_frame", "_text", "payload")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self._frame: dict[str, Any] | None = None
        self._text: str | None = None

    @property
    def frame(self) -> dict[str, Any]:
        if self._frame is None:
            self._frame = orjson.loads(self.payload)
        return self._frame

    @property
    def text(self) -> str:
        if self._text is None:
            frame = self.frame
            if any(key.startswith("_") for key in frame):
                self._text = orjson.dumps({k: v for k, v in frame.items() if not k.startswith("_")}).decode()
            else:
                self._text = self.payload.decode()
        return self._text


Handler = Callable[[Event], None]
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
