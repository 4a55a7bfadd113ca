"""Agent presence over real sockets with an injected clock: several devices, the grace period, requeueing,
and the service status visitors and `GET /status` see as agents fill up and leave."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from kefu.domain.clock import FakeClock
from kefu.pubsub import MemoryPubSub
from kefu.storage import conversations as conversation_store
from tests.helpers import App, Client, Node, running_node
from tests.transport.test_routing import agent_socket, node_on_bus

GRACE_S = 30.0  # the default, which these tests rely on


@pytest.fixture
async def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def timed_node(db_url: str, clock: FakeClock) -> AsyncIterator[Node]:
    async with running_node(db_url, clock=clock) as node:
        assert node.settings.presence_grace_s == GRACE_S
        yield node


async def conversation_status(node: Node, sid: str) -> tuple[str, str | None]:
    async with node.services.db.read() as tx:
        conv = await conversation_store.get_conversation(tx, sid)
    assert conv is not None
    return conv.status, conv.agent_id


async def status(node: Node, app: App) -> dict[str, Any]:
    r = await node.http.get("/api/v1/status", params={"app_id": app.app_id})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def last_device_gone(node: Node, client: Client, agent_id: str, grace: bool = True) -> None:
    """Close an agent's device and wait until the node has counted it gone (and started the grace period).

    The server learns of a closed socket on its own schedule; the clock must not be moved before.
    This waits on that state (bounded), never for a fixed time.
    """
    await client.close()
    presence = node.services.presence
    for _ in range(500):
        if agent_id not in presence.devices and (agent_id in presence._timers) == grace:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the node never noticed that {client.label} left")


async def nothing_for(client: Client, *types: str) -> None:
    """No frame of these types arrives (each test first waits for what must arrive, so this is not a guess)."""
    late = [f for f in await client.drain(0.3) if f.get("type") in types]
    assert late == [], f"{client.label} got {late}"


async def test_two_devices_grace_period_and_reconnect(timed_node: Node, clock: FakeClock) -> None:
    node = timed_node
    app = await node.create_app()
    info = await node.add_agent(app, max_concurrent=1)
    phone = await agent_socket(node, app, info)
    laptop = await agent_socket(node, app, info, online=False)
    visitor = await node.visitor(app, "U1")
    sid = (await visitor.open_chat())["session_id"]
    await phone.expect("assigned", session_id=sid)
    await laptop.expect("assigned", session_id=sid)  # every device of the agent is told

    # Closing one device changes nothing, however long the other stays.
    await phone.close()
    await laptop.ping()
    clock.advance(GRACE_S * 3)
    await laptop.text(sid, "still here")
    await visitor.expect("message", session_id=sid)
    await nothing_for(visitor, "conversation", "queue")
    assert await conversation_status(node, sid) == ("active", info["agent_id"])

    # The last device goes: nothing happens inside the grace period, and a reconnect inside it keeps everything.
    await last_device_gone(node, laptop, info["agent_id"])
    clock.advance(GRACE_S - 1)
    await nothing_for(visitor, "conversation", "queue")
    back = await agent_socket(node, app, info, online=False)
    assert [c["session_id"] for c in back.ready["conversations"]] == [sid]
    assert back.ready["you"]["status"] == "busy"  # online, at capacity
    clock.advance(GRACE_S * 3)
    await back.text(sid, "sorry, lost my connection")
    await visitor.expect("message", session_id=sid)
    await nothing_for(visitor, "conversation", "queue")
    assert await conversation_status(node, sid) == ("active", info["agent_id"])

    # Gone for good: offline only once the grace period is over; the chat goes back to the queue.
    await last_device_gone(node, back, info["agent_id"])
    clock.advance(GRACE_S - 1)
    await nothing_for(visitor, "conversation")
    assert await conversation_status(node, sid) == ("active", info["agent_id"])
    clock.advance(1)
    requeued = await visitor.expect("conversation", session_id=sid, status="queued")
    assert requeued["agent"] is None
    await visitor.expect("queue", session_id=sid, position=1)
    assert (await status(node, app))["status"] == "offline"
    agents = (await node.http.get("/api/v1/agents", headers={"Authorization": f"Bearer {app.api_key}"})).json()
    assert {a["agent_id"]: a["status"] for a in agents["items"]}[info["agent_id"]] == "offline"


async def test_chats_of_an_agent_who_stays_away_go_to_the_head_of_the_queue(timed_node: Node, clock: FakeClock) -> None:
    node = timed_node
    app = await node.create_app()
    leaver_info = await node.add_agent(app, max_concurrent=1)
    leaver = await agent_socket(node, app, leaver_info)
    first = await node.visitor(app, "F")
    first_sid = (await first.open_chat())["session_id"]
    await leaver.expect("assigned", session_id=first_sid)
    clock.advance(60)
    waiting = await node.visitor(app, "W")  # arrived later, waits for a slot
    waiting_sid = (await waiting.open_chat())["session_id"]
    await waiting.expect("queue", session_id=waiting_sid, position=1)

    await last_device_gone(node, leaver, leaver_info["agent_id"])
    clock.advance(GRACE_S)
    await first.expect("conversation", session_id=first_sid, status="queued")
    await first.expect("queue", session_id=first_sid, position=1)
    await waiting.expect("queue", session_id=waiting_sid, position=2)

    other_info = await node.add_agent(app, max_concurrent=1)
    other = await agent_socket(node, app, other_info)
    got = await other.expect("assigned")
    assert got["session_id"] == first_sid
    await first.expect("conversation", session_id=first_sid, status="active")
    await waiting.expect("queue", session_id=waiting_sid, position=1)


async def test_service_status_goes_online_busy_offline(timed_node: Node, clock: FakeClock) -> None:
    node = timed_node
    app = await node.create_app()
    info = await node.add_agent(app, max_concurrent=1)
    watcher = await node.visitor(app, "watcher")
    assert watcher.ready["service_status"] == "offline"
    assert (await status(node, app))["status"] == "offline"

    # Nobody online: a chat still opens and waits (offline messages).
    early = await node.visitor(app, "early")
    early_sid = (await early.open_chat())["session_id"]
    await early.text(early_sid, "留言: please call me back")
    assert (await status(node, app))["groups"]["default"] == {
        "status": "offline",
        "queue_length": 1,
        "eta_seconds": 360,
    }

    # The agent comes online and takes it at once: they are full, so the service is busy.
    agent = await agent_socket(node, app, info)
    await agent.expect("assigned", session_id=early_sid)
    await watcher.expect("service_status", status="busy")
    assert (await status(node, app))["status"] == "busy"
    await agent.send("close", session_id=early_sid)
    await watcher.expect("service_status", status="online")
    body = await status(node, app)
    assert body["status"] == "online"
    assert body["groups"]["default"] == {"status": "online", "queue_length": 0, "eta_seconds": 0}

    # Full again, and then the agent leaves: busy, then offline only after the grace period.
    late = await node.visitor(app, "late")
    late_sid = (await late.open_chat())["session_id"]
    await agent.expect("assigned", session_id=late_sid)
    await watcher.expect("service_status", status="busy")
    await late.expect("conversation", session_id=late_sid, status="active")
    await last_device_gone(node, agent, info["agent_id"])
    clock.advance(GRACE_S - 1)
    await nothing_for(watcher, "service_status")
    clock.advance(1)
    await watcher.expect("service_status", status="offline")
    await late.expect("conversation", session_id=late_sid, status="queued")
    assert (await status(node, app))["status"] == "offline"


async def test_set_status_busy_takes_no_new_chats(timed_node: Node) -> None:
    node = timed_node
    app = await node.create_app()
    info = await node.add_agent(app, max_concurrent=2)
    agent = await agent_socket(node, app, info)
    await agent.send("set_status", status="busy")
    await agent.expect("agent_status", status="busy")
    visitor = await node.visitor(app)
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("queue", session_id=sid, position=1)
    assert (await status(node, app))["status"] == "busy"  # someone is there, but takes nothing new
    await nothing_for(agent, "assigned")
    await agent.send("set_status", status="online")
    await agent.expect("assigned", session_id=sid)
    await agent.send("set_status", ref="bad", status="away")
    assert (await agent.expect("error", ref="bad"))["code"] == "invalid_frame"


async def test_devices_on_two_nodes_count_together(db_url: str) -> None:
    clock, bus = FakeClock(), MemoryPubSub()
    async with node_on_bus(db_url, bus, clock) as first, node_on_bus(db_url, bus, clock) as second:
        app = await first.create_app()
        info = await first.add_agent(app, max_concurrent=1)
        here = await agent_socket(first, app, info)
        there = await agent_socket(second, app, info, online=False)
        visitor = await first.visitor(app, "U1")
        sid = (await visitor.open_chat())["session_id"]
        await there.expect("assigned", session_id=sid)

        # The device on the first node goes; the one on the second node keeps the agent present.
        await last_device_gone(first, here, info["agent_id"], grace=False)
        clock.advance(GRACE_S * 3)
        await there.text(sid, "我还在 (still here)")
        await visitor.expect("message", session_id=sid)
        await nothing_for(visitor, "conversation", "queue")
        assert await conversation_status(first, sid) == ("active", info["agent_id"])

        # The last device, on the second node, goes: offline after the grace period.
        await last_device_gone(second, there, info["agent_id"])
        clock.advance(GRACE_S)
        await visitor.expect("conversation", session_id=sid, status="queued")
