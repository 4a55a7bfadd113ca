"""Agent presence: devices per agent, the status they choose, and the grace period after the last device leaves.

An agent may be connected from several devices. When the last one goes, nothing changes for
`presence_grace_s` (a reconnect inside it changes nothing); after it the agent is `offline`
and their open chats go back to the head of the queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict

from kefu import errors
from kefu.domain.clock import Clock, Timer
from kefu.domain.models import Actor
from kefu.services.events import Publisher, agent_topic
from kefu.services.routing import RoutingService
from kefu.storage import Database
from kefu.storage import agents as agent_store
from kefu.storage import conversations as conversation_store

log = logging.getLogger(__name__)
STATUSES = ("online", "busy", "offline")


class PresenceService:
    def __init__(
        self, db: Database, publisher: Publisher, routing: RoutingService, clock: Clock, grace_s: float
    ) -> None:
        self.db, self.publisher, self.routing, self.clock, self.grace_s = db, publisher, routing, clock, grace_s
        self.devices: dict[str, int] = defaultdict(int)
        self._timers: dict[str, Timer] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def connected(self, agent_id: str) -> None:
        self.devices[agent_id] += 1
        timer = self._timers.pop(agent_id, None)
        if timer is not None:
            timer.cancel()

    def disconnected(self, agent_id: str, app_id: str) -> None:
        self.devices[agent_id] = max(self.devices[agent_id] - 1, 0)
        if self.devices[agent_id] == 0:
            self.devices.pop(agent_id, None)
            self.start_grace(agent_id, app_id)

    def start_grace(self, agent_id: str, app_id: str) -> None:
        if agent_id in self._timers:
            return
        self._timers[agent_id] = self.clock.call_later(self.grace_s, lambda: self._spawn(self.expire(agent_id, app_id)))

    def _spawn(self, work: object) -> None:
        assert asyncio.iscoroutine(work)
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def expire(self, agent_id: str, app_id: str) -> None:
        """The grace period is over: an agent still without a device goes offline; their chats are requeued."""
        self._timers.pop(agent_id, None)
        if self.devices.get(agent_id):
            return
        try:
            async with self.db.transaction() as tx:
                await agent_store.set_status(tx, agent_id, "offline")
                convs = await conversation_store.open_conversations_of_agent(tx, agent_id)
                for conv in convs:  # back to the head of the queue: they keep their original arrival time
                    values = {"status": "queued", "agent_id": None, "queued_at": conv.created_at}
                    await conversation_store.update_conversation(tx, conv.session_id, values)
            await self.publisher.publish([agent_topic(agent_id)], {"type": "agent_status", "agent_id": agent_id,
                                                                   "status": "offline"})
            for conv in convs:
                requeued = await self.routing.record_of(conv.session_id)
                await self.publisher.to_participants(conv.visitor_id, [agent_id], requeued)
            await self.routing.assign_waiting(app_id)
        except Exception:  # a timer has nobody to report to: log it, the next event will retry routing
            log.exception("presence expiry failed for agent %s", agent_id)

    async def set_status(self, actor: Actor, status: str) -> str:
        """The status an agent chooses; `online` offers them waiting chats at once."""
        if actor.kind != "agent":
            raise errors.Forbidden("Only an agent sets a status.")
        if status not in STATUSES:
            raise errors.InvalidFrame(f"status must be one of {', '.join(STATUSES)}.")
        async with self.db.transaction() as tx:
            await agent_store.set_status(tx, actor.actor_id, status)
        await self.publisher.publish(
            [agent_topic(actor.actor_id)], {"type": "agent_status", "agent_id": actor.actor_id, "status": status}
        )
        await self.routing.assign_waiting(actor.app_id)
        return status

    async def shown_status(self, agent_id: str) -> str:
        """What others see: `busy` when at capacity, else the chosen status."""
        async with self.db.read() as tx:
            agent = await agent_store.get_agent(tx, agent_id)
            load = await agent_store.load_of(tx, agent_id)
        if agent is None:
            return "offline"
        if agent.status == "online" and load >= agent.max_concurrent:
            return "busy"
        return agent.status

    async def start(self) -> None:
        """At start-up nobody is connected yet: agents left online get the grace period to come back."""
        async with self.db.read() as tx:
            rows = await agent_store.agents_with_status(tx, ("online", "busy"))
        for agent_id, app_id in rows:
            if not self.devices.get(agent_id):
                self.start_grace(agent_id, app_id)

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
