"""Publishing frames to the participants of a conversation, after commit, through pubsub."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from kefu.pubsub import PubSub


def agent_topic(agent_id: str) -> str:
    return f"agent:{agent_id}"


def visitor_topic(visitor_id: str) -> str:
    return f"visitor:{visitor_id}"


def app_topic(app_id: str) -> str:
    """Everything an app's visitors hear (its service status)."""
    return f"app:{app_id}"


def agents_topic(app_id: str) -> str:
    """Everything an app's agents hear (its queue changed)."""
    return f"agents:{app_id}"


class Publisher:
    """Every frame goes to per-identity topics, so a connection subscribes once, for its whole life."""

    def __init__(self, pubsub: PubSub) -> None:
        self.pubsub = pubsub

    async def publish(self, topics: Iterable[str | None], frame: dict[str, Any]) -> None:
        payload = orjson.dumps(frame)
        for topic in dict.fromkeys(t for t in topics if t):
            await self.pubsub.publish(topic, payload)

    async def revoke(self, agent_id: str, token_id: str | None = None, epoch_below: int | None = None) -> None:
        """Close the agent's sockets opened with `token_id` (a logout), or with an epoch below `epoch_below` (a new
        password), on every node: each connection compares with its own token (transport/ws/connection.py)."""
        frame: dict[str, Any] = {"type": "revoked"}
        if token_id is not None:
            frame["token_id"] = token_id
        if epoch_below is not None:
            frame["epoch_below"] = epoch_below
        await self.publish([agent_topic(agent_id)], frame)

    async def rights_changed(self, agent_id: str) -> None:
        """Close the agent's sockets on every node after a role or group change: a socket acts with the rights its
        agent had when it opened, so it must reopen (close 4409) to act with the new ones."""
        await self.publish([agent_topic(agent_id)], {"type": "rights_changed"})

    async def to_participants(self, visitor_id: str, agent_ids: Iterable[str | None], frame: dict[str, Any]) -> None:
        await self.publish([visitor_topic(visitor_id), *(agent_topic(a) for a in agent_ids if a)], frame)
