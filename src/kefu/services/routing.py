"""Routing: assigning waiting chats to agents, the live queue with its wait estimates, and service status.

Every change that can free or fill a slot (a new chat, a close, an agent going online, a
transfer, presence expiry, an admin changing an agent) calls `assign_waiting`; nothing polls.
The database decides: on PostgreSQL an assignment transaction holds the app's routing lock (an
advisory lock) and the online agents' rows, so two nodes assigning at once cannot both take an
agent's last slot; on SQLite every writer is serialised by the database anyway.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kefu.domain.clock import Clock
from kefu.domain.models import Conversation
from kefu.domain.records import conversation_frame, conversation_record, message_frame, visitor_panel
from kefu.domain.routing import (
    AgentLoad,
    estimate_new_chat_wait,
    estimate_wait,
    group_status,
    handle_time,
    pick_agent,
)
from kefu.pubsub import Event, Subscription
from kefu.services.events import Publisher, agent_topic, agents_topic, app_topic, visitor_topic
from kefu.storage import Database, Tx
from kefu.storage import agents as agent_store
from kefu.storage import conversations as conversation_store
from kefu.storage import visitors as visitor_store

TRANSCRIPT_LIMIT = 200
GUARDED_AT_ONCE = 4


LEFT = (-1, -1)  # the remembered place of a chat that left the queue: never equal to a real place


def routing_topic(app_id: str) -> str:
    """Between nodes only: what one node pushed about an app's queue and status."""
    return f"routing:{app_id}"


@dataclass(frozen=True, slots=True)
class GroupStatus:
    status: str  # online | busy | offline
    free_slots: int
    serving_slots: int
    queue_length: int
    avg_handle_s: float


def group_capacity(group: str, agents: Iterable[AgentLoad], present: set[str]) -> tuple[str, int, int]:
    """(status, free slots, slots of online agents) of a group, from its online agents' loads."""
    members = [a for a in agents if group in a.groups]
    free = sum(max(a.max_concurrent - a.load, 0) for a in members)
    serving = sum(a.max_concurrent for a in members)
    return group_status(free, bool(members), bool(present)), free, serving


class RoutingService:
    """Assignment, queue frames and service status of the apps this node serves.

    What was last pushed (each waiting chat's place, each app's status) is remembered so that
    only changes are pushed. Several nodes share that memory through the `routing:<app>` topic,
    and push one at a time per app (the routing guard), in the order of the commits they describe.
    """

    def __init__(self, db: Database, publisher: Publisher, clock: Clock) -> None:
        self.db, self.publisher, self.clock = db, publisher, clock
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._last_queue: dict[str, dict[str, tuple[int, int]]] = defaultdict(dict)  # app → session → place
        self._last_status: dict[str, dict[str, Any]] = {}
        self._followed: dict[str, Subscription] = {}
        # A guarded section holds two pooled connections (the lock's and the work's): bound how many run at once.
        self._guarded = asyncio.Semaphore(GUARDED_AT_ONCE)
        self.node_id = secrets.token_hex(8)

    async def assign_waiting(self, app_id: str) -> None:
        """Give waiting chats to free agents in queue order, then tell everyone what changed."""
        async with self._locks[app_id], self._guarded, agent_store.routing_guard(self.db, app_id):
            await self._follow(app_id)
            now = self.clock.now()
            assigned: list[tuple[Conversation, AgentLoad]] = []
            async with self.db.transaction() as tx:  # the guard already holds the app's routing lock
                online = {a.agent_id: a for a in await agent_store.online_loads(tx, app_id, None, lock=True)}
                for conv in await conversation_store.queued(tx, app_id, lock=True):
                    candidates = (a for a in online.values() if conv.group in a.groups)
                    agent = pick_agent(candidates, conv.min_level)
                    if agent is None:
                        continue
                    values = {"status": "active", "agent_id": agent.agent_id, "assigned_at": now}
                    await conversation_store.update_conversation(tx, conv.session_id, values)
                    await conversation_store.record_first(tx, conv.session_id, "first_assigned_at", now)
                    await agent_store.update_agent(tx, agent.agent_id, {"idle_since": now})
                    online[agent.agent_id] = dataclasses.replace(agent, load=agent.load + 1, idle_since=now)
                    assigned.append((dataclasses.replace(conv, **values), agent))  # type: ignore[arg-type]
                notices = [await self._assignment_notice(tx, conv) for conv, _ in assigned]
                snapshot = await self._snapshot(tx, app_id)
            for (conv, agent), (record, assigned_frame) in zip(assigned, notices, strict=True):
                await self.publisher.to_participants(conv.visitor_id, [agent.agent_id], conversation_frame(record))
                await self.publisher.publish([agent_topic(agent.agent_id)], assigned_frame)
            await self._publish_queue(snapshot)

    async def _assignment_notice(self, tx: Tx, conv: Conversation) -> tuple[dict[str, Any], dict[str, Any]]:
        """The conversation record and the `assigned` frame for the agent: visitor profile, context, transcript."""
        agent = await agent_store.get_agent(tx, conv.agent_id) if conv.agent_id else None
        visitor = await visitor_store.get_visitor(tx, conv.visitor_id)
        transcript = await conversation_store.messages_after(
            tx, conv.session_id, max(conv.last_seq - TRANSCRIPT_LIMIT, 0)
        )
        record = conversation_record(conv, agent.name if agent else None)
        frame: dict[str, Any] = {
            "type": "assigned",
            "session_id": conv.session_id,
            "conversation": record,
            **visitor_panel(conv, visitor),
            "group": conv.group,
            "handoff_reason": conv.handoff_reason,
            "last_seq": conv.last_seq,
            "transcript": [message_frame(m) for m in transcript],
        }
        if conv.transferred_from is not None:  # agents only: the visitor never sees a transfer note
            frame["from_agent_id"] = conv.transferred_from
            previous = await agent_store.get_agent(tx, conv.transferred_from)
            frame["from_agent"] = {"agent_id": conv.transferred_from, "name": previous.name if previous else None}
            frame["note"] = conv.transfer_note
        return record, frame

    async def assignment_notice(self, conv: Conversation) -> tuple[dict[str, Any], dict[str, Any]]:
        async with self.db.read() as tx:
            return await self._assignment_notice(tx, conv)

    async def _snapshot(self, tx: Tx, app_id: str) -> dict[str, Any]:
        """The queue with positions and estimates, and each group's status, as the database has them now."""
        online = await agent_store.online_loads(tx, app_id, None, lock=False)
        present = {a.agent_id for a in await agent_store.present_agents(tx, app_id)}
        waiting = await conversation_store.queued(tx, app_id)
        groups = set(await agent_store.list_groups(tx, app_id)) | {c.group for c in waiting}
        by_group: dict[str, list[Conversation]] = defaultdict(list)
        for conv in waiting:
            by_group[conv.group].append(conv)
        statuses: dict[str, GroupStatus] = {}
        for group in sorted(groups):
            present_here = {a.agent_id for a in await agent_store.present_agents(tx, app_id, group)}
            status, free, serving = group_capacity(group, online, present_here)
            avg = handle_time(await conversation_store.average_handle_seconds(tx, app_id, group))
            statuses[group] = GroupStatus(status, free, serving, len(by_group[group]), avg)
        if any(a.load < a.max_concurrent for a in online):
            overall = "online"
        else:
            overall = "busy" if online or present else "offline"
        return {"app_id": app_id, "overall": overall, "groups": statuses, "queue": dict(by_group)}

    async def _publish_queue(self, snapshot: dict[str, Any]) -> None:
        """Push `queue` frames whose place changed and `service_status` if it changed; tell the other nodes."""
        app_id: str = snapshot["app_id"]
        groups: dict[str, GroupStatus] = snapshot["groups"]
        last = self._last_queue[app_id]
        waiting: set[str] = set()
        pushed: dict[str, tuple[int, int]] = {}
        for group, convs in snapshot["queue"].items():
            info = groups[group]
            for position, conv in enumerate(convs, start=1):
                waiting.add(conv.session_id)
                eta = estimate_wait(position, info.free_slots, info.serving_slots, info.avg_handle_s)
                if last.get(conv.session_id) == (position, eta):
                    continue
                last[conv.session_id] = pushed[conv.session_id] = (position, eta)
                frame = {"type": "queue", "session_id": conv.session_id, "position": position, "eta_seconds": eta}
                await self.publisher.publish([visitor_topic(conv.visitor_id)], frame)
        # A chat that left the queue starts afresh if it ever comes back (a requeue, a transfer).
        gone = [sid for sid in last if sid not in waiting]
        for sid in gone:
            del last[sid]
        status = {
            "type": "service_status",
            "status": snapshot["overall"],
            "groups": {name: g.status for name, g in groups.items()},
        }
        changed = self._last_status.get(app_id) != status
        if changed:
            self._last_status[app_id] = status
            await self.publisher.publish([app_topic(app_id)], status)
        if pushed or gone:  # agents' consoles refresh their queue list
            lengths = {name: {"queue_length": g.queue_length} for name, g in groups.items()}
            queue_changed = {"type": "queue_changed", "app_id": app_id, "groups": lengths}
            await self.publisher.publish([agents_topic(app_id)], queue_changed)
        if pushed or gone or changed:
            note = {"node": self.node_id, "app_id": app_id, "queue": pushed, "gone": gone, "status": status}
            await self.publisher.publish([routing_topic(app_id)], note)

    async def _follow(self, app_id: str) -> None:
        """Learn what other nodes push about this app, so that this node pushes only real changes."""
        if app_id not in self._followed:
            self._followed[app_id] = await self.publisher.pubsub.subscribe(routing_topic(app_id), self._on_pushed)

    def _on_pushed(self, event: Event) -> None:
        note = event.frame
        if note.get("node") == self.node_id:
            return
        app_id = str(note["app_id"])
        last = self._last_queue[app_id]
        for sid, (position, eta) in note["queue"].items():
            last[sid] = (position, eta)
        for sid in note["gone"]:
            last.pop(sid, None)
        self._last_status[app_id] = note["status"]

    async def queue_place(self, conv: Conversation) -> tuple[int, int] | None:
        """(position, eta_seconds) of a waiting chat as the database has it now (another node may have moved it)."""
        if conv.status != "queued":
            return None
        async with self.db.read() as tx:
            snapshot = await self._snapshot(tx, conv.app_id)
        info = snapshot["groups"].get(conv.group)
        for position, other in enumerate(snapshot["queue"].get(conv.group, []), start=1):
            if other.session_id == conv.session_id and info is not None:
                return position, estimate_wait(position, info.free_slots, info.serving_slots, info.avg_handle_s)
        return None

    async def status(self, app_id: str) -> dict[str, Any]:
        """`GET /status`: the app's availability and, per group, status, queue length and a new chat's wait."""
        async with self.db.read() as tx:
            snapshot = await self._snapshot(tx, app_id)
        groups = {
            name: {
                "status": g.status,
                "queue_length": g.queue_length,
                "eta_seconds": estimate_new_chat_wait(g.queue_length, g.free_slots, g.serving_slots, g.avg_handle_s),
            }
            for name, g in snapshot["groups"].items()
        }
        return {"status": snapshot["overall"], "groups": groups}

    async def service_status(self, app_id: str) -> dict[str, Any]:
        """The last `service_status` frame of the app (computed if none was pushed yet)."""
        if app_id not in self._last_status:
            async with self.db.read() as tx:
                snapshot = await self._snapshot(tx, app_id)
            groups = {name: g.status for name, g in snapshot["groups"].items()}
            return {"type": "service_status", "status": snapshot["overall"], "groups": groups}
        return self._last_status[app_id]

    async def refresh(self, app_id: str) -> None:
        """Recompute and push queue places and service status without assigning (e.g. an agent went busy)."""
        async with self._locks[app_id], self._guarded, agent_store.routing_guard(self.db, app_id):
            await self._follow(app_id)
            async with self.db.read() as tx:
                snapshot = await self._snapshot(tx, app_id)
            await self._publish_queue(snapshot)

    def forget(self, session_id: str) -> None:
        """A chat left the queue outside an assignment (closed): its next place, if any, is news, and its leaving
        is too (the next push counts it as gone, and agents hear `queue_changed`)."""
        for last in self._last_queue.values():
            if session_id in last:
                last[session_id] = LEFT

    async def record_of(self, session_id: str) -> dict[str, Any]:
        """The `conversation` frame of a conversation as it is now."""
        async with self.db.read() as tx:
            conv = await conversation_store.get_conversation(tx, session_id)
            assert conv is not None
            agent = await agent_store.get_agent(tx, conv.agent_id) if conv.agent_id else None
        return conversation_frame(conversation_record(conv, agent.name if agent else None))
