"""Agent presence: devices per agent, the status they choose, and the grace period after the last device leaves.

An agent may be connected from several devices, on several nodes. When the last one goes,
nothing changes for `presence_grace_s` (a reconnect inside it changes nothing); after it the
agent is `offline` and their open chats go back to the head of the queue.

Each node counts the devices connected to it and tells the others on the `presence` topic
(a node that starts asks the others for their counts), so the grace period starts only when an
agent's last device on any node is gone. Every node repeats its counts each HEARTBEAT_S seconds;
a node not heard from for NODE_TIMEOUT_S has crashed, and its devices are gone with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import secrets
from collections import defaultdict
from typing import Any

import orjson

from kefu import errors
from kefu.domain.clock import Clock, Timer
from kefu.domain.models import Actor
from kefu.domain.routing import head_of_queue
from kefu.pubsub import Event, Subscription
from kefu.services.events import Publisher, agent_topic
from kefu.services.routing import RoutingService
from kefu.storage import Database
from kefu.storage import agents as agent_store
from kefu.storage import conversations as conversation_store

log = logging.getLogger(__name__)
STATUSES = ("online", "busy", "offline")
PRESENCE_TOPIC = "presence"
HEARTBEAT_S = 5.0
NODE_TIMEOUT_S = 15.0


class PresenceService:
    def __init__(
        self, db: Database, publisher: Publisher, routing: RoutingService, clock: Clock, grace_s: float
    ) -> None:
        self.db, self.publisher, self.routing, self.clock, self.grace_s = db, publisher, routing, clock, grace_s
        self.devices: dict[str, int] = defaultdict(int)  # agent → devices connected to this node
        self.elsewhere: dict[str, dict[str, int]] = defaultdict(dict)  # agent → other node → its devices
        self.node_id = secrets.token_hex(8)
        self.app_of: dict[str, str] = {}  # agent → app, for agents this node has heard of
        self.last_heard: dict[str, dt.datetime] = {}  # other node → when it last spoke
        self._heartbeat: Timer | None = None
        self._timers: dict[str, Timer] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._subscription: Subscription | None = None

    def device_count(self, agent_id: str) -> int:
        """The agent's devices on every node, as far as this node knows."""
        return self.devices.get(agent_id, 0) + sum(self.elsewhere.get(agent_id, {}).values())

    def connected(self, agent_id: str, app_id: str) -> None:
        self.app_of[agent_id] = app_id
        self.devices[agent_id] += 1
        self._cancel_grace(agent_id)
        self._announce(agent_id)

    def disconnected(self, agent_id: str, app_id: str) -> None:
        self.devices[agent_id] = max(self.devices[agent_id] - 1, 0)
        if self.devices[agent_id] == 0:
            self.devices.pop(agent_id, None)
            if not self.device_count(agent_id):
                self.start_grace(agent_id, app_id)
        self._announce(agent_id)

    def _cancel_grace(self, agent_id: str) -> None:
        timer = self._timers.pop(agent_id, None)
        if timer is not None:
            timer.cancel()

    def _announce(self, *agent_ids: str, hello: bool = False) -> None:
        counts = {a: self.devices.get(a, 0) for a in agent_ids}
        apps = {a: self.app_of[a] for a in agent_ids if a in self.app_of}
        note: dict[str, Any] = {"node": self.node_id, "devices": counts, "apps": apps, "hello": hello}
        self._spawn(self.publisher.pubsub.publish(PRESENCE_TOPIC, orjson.dumps(note)))

    def _on_presence(self, event: Event) -> None:
        """Another node's device counts: a device there cancels the grace period here."""
        note = event.frame
        node = str(note["node"])
        if node == self.node_id:
            return
        if note.get("bye"):  # a node stopping: its devices are gone with it
            self.last_heard.pop(node, None)
            self._forget_node(node)
            return
        self.last_heard[node] = self.clock.now()
        self.app_of.update(note.get("apps") or {})
        for agent_id, count in note["devices"].items():
            if count > 0:
                self.elsewhere[agent_id][node] = int(count)
                self._cancel_grace(agent_id)
            else:
                self.elsewhere[agent_id].pop(node, None)
        if note.get("hello") and self.devices:  # a node just started: tell it who is connected here
            self._announce(*self.devices)

    def _beat(self) -> None:
        """Repeat this node's counts, and forget the nodes that fell silent (crashed: no goodbye)."""
        self._announce(*self.devices)
        now = self.clock.now()
        for node, heard in list(self.last_heard.items()):
            if (now - heard).total_seconds() > NODE_TIMEOUT_S:
                del self.last_heard[node]
                log.warning("node %s fell silent; its agents' devices are gone", node)
                self._forget_node(node)
        self._heartbeat = self.clock.call_later(HEARTBEAT_S, self._beat)

    def _forget_node(self, node: str) -> None:
        """Drop another node's devices; agents left with none anywhere start their grace period."""
        for agent_id, nodes in self.elsewhere.items():
            if nodes.pop(node, None) and not self.device_count(agent_id) and agent_id in self.app_of:
                self.start_grace(agent_id, self.app_of[agent_id])

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
        if self.device_count(agent_id):
            return
        try:
            async with self.db.transaction() as tx:
                await agent_store.lock_routing(tx, app_id)
                await agent_store.set_status(tx, agent_id, "offline")
                convs = await conversation_store.open_conversations_of_agent(tx, agent_id)
                waiting = await conversation_store.queued(tx, app_id)
                earliest = [c.queued_at for c in waiting if c.queued_at is not None] + [c.created_at for c in convs]
                for conv, queued_at in zip(convs, head_of_queue(len(convs), min(earliest, default=None)), strict=True):
                    values = {"status": "queued", "agent_id": None, "queued_at": queued_at}
                    await conversation_store.update_conversation(tx, conv.session_id, values)
            await self.publisher.publish(
                [agent_topic(agent_id)], {"type": "agent_status", "agent_id": agent_id, "status": "offline"}
            )
            for conv in convs:
                requeued = await self.routing.record_of(conv.session_id)
                await self.publisher.to_participants(conv.visitor_id, [agent_id], requeued)
            await self.routing.assign_waiting(app_id)
        except errors.Unavailable:  # logged once as an outage by the database; the next event will retry routing
            pass
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
        """Learn the other nodes' devices; agents online without any get the grace period to come back."""
        self._subscription = await self.publisher.pubsub.subscribe(PRESENCE_TOPIC, self._on_presence)
        self._announce(hello=True)
        self._heartbeat = self.clock.call_later(HEARTBEAT_S, self._beat)
        async with self.db.read() as tx:
            rows = await agent_store.agents_with_status(tx, ("online", "busy"))
        for agent_id, app_id in rows:
            if not self.device_count(agent_id):
                self.start_grace(agent_id, app_id)

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._subscription is not None:
            await self._subscription.cancel()
            with contextlib.suppress(Exception):  # the bus may already be gone; the others then keep stale counts
                await self.publisher.pubsub.publish(PRESENCE_TOPIC, orjson.dumps({"node": self.node_id, "bye": True}))
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
