"""Several nodes sharing one PostgreSQL database and Redis: a conversation spread over three nodes."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.conftest import REDIS_URL, fresh_pg_database
from tests.helpers import running_node
from tests.transport.test_routing import capacity_scenario

pytestmark = pytest.mark.redis


async def test_every_device_on_every_node_gets_every_message_in_order() -> None:
    assert REDIS_URL is not None
    async with fresh_pg_database() as url, contextlib.AsyncExitStack() as stack:
        a, b, c = [await stack.enter_async_context(running_node(url, redis=REDIS_URL)) for _ in range(3)]
        app = await a.create_app()
        info = await a.add_agent(app)
        agent = await b.agent(app, info["email"])
        visitor = await a.visitor(app, "U-3nodes")
        sid = (await visitor.open_chat())["session_id"]
        assigned = await agent.expect("assigned", session_id=sid)  # routed on node A, told on node B
        assert assigned["session_id"] == sid
        await visitor.expect("conversation", session_id=sid, status="active")
        phone = await c.visitor(app, "U-3nodes")
        assert [conv["session_id"] for conv in phone.ready["conversations"]] == [sid]

        sent = []
        for i in range(30):
            sender = (visitor, agent, phone)[i % 3]
            sent.append(await sender.text(sid, f"第{i}条 from {sender.label}"))
        assert [ack["seq"] for ack in sent] == list(range(1, 31))
        for n, client in enumerate((visitor, agent, phone)):
            own = [ack["seq"] for ack in sent[n::3]]  # a sending socket gets the ack, not a copy (protocol §3)
            others = [seq for seq in range(1, 31) if seq not in own]
            await client.expect("message", session_id=sid, seq=others[-1])
            await client.ping()
            got = [f["seq"] for f in client.seen if f.get("type") == "message" and f["session_id"] == sid]
            assert got == others, client.label

        await agent.send("typing", session_id=sid)
        assert (await phone.expect("typing", session_id=sid))["sender"] == "agent"
        await phone.send("close", session_id=sid)
        await agent.expect("conversation", session_id=sid, status="closed")
        await visitor.expect("conversation", session_id=sid, status="closed")


async def test_100_chats_over_three_nodes_on_redis_never_push_an_agent_over_capacity() -> None:
    """The capacity scenario of test_routing with its agents and visitors spread over three Redis nodes."""
    assert REDIS_URL is not None
    async with fresh_pg_database() as url, contextlib.AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(running_node(url, redis=REDIS_URL)) for _ in range(3)]
        await capacity_scenario(nodes, await nodes[0].create_app())


async def test_a_demotion_on_one_node_closes_the_agents_socket_on_another() -> None:
    assert REDIS_URL is not None
    async with fresh_pg_database() as url, contextlib.AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(running_node(url, redis=REDIS_URL)) for _ in range(2)]
        app = await a.create_app()
        boss = await a.add_agent(app, role="admin")
        console = await b.agent(app, boss["email"])
        r = await a.http.put(
            f"/api/v1/agents/{boss['agent_id']}",
            json={"role": "agent"},
            headers={"Authorization": f"Bearer {app.api_key}"},
        )
        assert r.status_code == 200, r.text
        assert (await console.expect("error"))["code"] == "rights_changed"
        await asyncio.wait_for(console.conn.wait_closed(), 5)
        assert console.conn.close_code == 4409
