"""Routing over real sockets and real databases: rules, levels and priorities, capacity under concurrency
(one node, and two nodes sharing PostgreSQL), the live queue and its ETAs, transfer, close and abandonment."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections import Counter
from typing import Any

import pytest

from kefu.domain.clock import Clock, FakeClock
from kefu.domain.models import Actor
from kefu.pubsub import MemoryPubSub, PubSub
from kefu.storage import agents as agent_store
from kefu.storage import conversations as conversation_store
from tests.conftest import fresh_pg_database
from tests.helpers import App, Client, Node, running_node

AGENTS, CAPACITY, VISITORS = 5, 3, 100
VIP_MATCH = {"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}


def api(app: App) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.api_key}"}


def tags_hash(app: App, user_id: str, tags: dict[str, Any]) -> str:
    canonical = json.dumps(tags, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(app.secret.encode(), (user_id + "\n" + canonical).encode(), hashlib.sha256).hexdigest()


async def post_ok(node: Node, app: App, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await node.http.post(f"/api/v1{path}", json=body, headers=api(app))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def loads(node: Node, app: App) -> dict[str, int]:
    """Active conversations per agent, as the database has them."""
    async with node.services.db.read() as tx:
        return await agent_store.loads_of_app(tx, app.app_id)


async def queued_ids(node: Node, app: App) -> list[str]:
    async with node.services.db.read() as tx:
        return [c.session_id for c in await conversation_store.queued(tx, app.app_id)]


async def agent_socket(node: Node, app: App, info: dict[str, Any], online: bool = True) -> Client:
    """Like `Node.agent`, with a token issued by the node (each HTTP login is a slow argon2 check)."""
    token = await node.services.auth.issue_token("agent", info["agent_id"], app.app_id, 3600, "agent")
    client = await node.connect("agent", token, f"agent {info['email']}")
    if online:
        await client.send("set_status", status="online")
        await client.ping()
    return client


def last_queue_frame(client: Client, sid: str) -> dict[str, Any] | None:
    frames = [f for f in client.seen if f.get("type") == "queue" and f.get("session_id") == sid]
    return frames[-1] if frames else None


# --- rules, levels and priorities ------------------------------------------------------------------------


async def test_vip_is_served_first_by_a_senior_agent_and_refunds_go_to_aftersales(node: Node) -> None:
    app = await node.create_app()
    for group in ("vip", "aftersales"):
        await post_ok(node, app, "/groups", {"name": group})
    vip_rule = {"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}
    await post_ok(
        node,
        app,
        "/routing/rules",
        {"name": "VIP", "match": vip_rule, "group": "vip", "min_level": 2, "queue_priority": 10},
    )
    refund_rule = {"any": [{"field": "tags.inquiry_type", "op": "==", "value": "refund"}]}
    await post_ok(node, app, "/routing/rules", {"name": "Refunds", "match": refund_rule, "group": "aftersales"})
    junior = await node.add_agent(app, groups=("default", "vip"), level=1, max_concurrent=1)
    senior = await node.add_agent(app, groups=("default", "vip"), level=2, max_concurrent=1)
    after = await node.add_agent(app, groups=("aftersales",), level=1, max_concurrent=1)

    # Nobody online: five ordinary visitors queue (and may still write), then a VIP arrives.
    ordinary = [await node.visitor(app, f"O{i}") for i in range(5)]
    ordinary_sids = []
    for i, visitor in enumerate(ordinary, start=1):
        conv = await visitor.open_chat()
        assert (conv["status"], conv["group"]) == ("queued", "default")
        ordinary_sids.append(conv["session_id"])
        await visitor.expect("queue", session_id=conv["session_id"], position=i)
    await ordinary[0].text(ordinary_sids[0], "有人吗? anyone there?")
    vip_tags = {"vip_level": 3}
    vip = await node.visitor(app, "V1", tags=vip_tags, tags_hash=tags_hash(app, "V1", vip_tags))
    vip_conv = await vip.open_chat()
    vip_sid = vip_conv["session_id"]
    assert (vip_conv["status"], vip_conv["group"]) == ("queued", "vip")
    await vip.expect("queue", session_id=vip_sid, position=1)

    # Tags a browser sends without a valid tags_hash are shown to agents but never routed on.
    pretender = await node.visitor(app, "P1", tags={"vip_level": 9})
    assert (await pretender.open_chat())["group"] == "default"

    # A level-1 agent in group vip cannot take the VIP chat: it takes the first ordinary one.
    junior_ws = await agent_socket(node, app, junior)
    first = await junior_ws.expect("assigned")
    assert first["session_id"] == ordinary_sids[0]
    assert [m["content"] for m in first["transcript"]] == ["有人吗? anyone there?"]
    assert await junior_ws.find("assigned", timeout=0.3) is None

    # The senior agent takes the VIP before the four ordinary visitors who came earlier.
    senior_ws = await agent_socket(node, app, senior)
    taken = await senior_ws.expect("assigned")
    assert taken["session_id"] == vip_sid and taken["group"] == "vip"
    assert taken["tags"] == vip_tags
    active = await vip.expect("conversation", session_id=vip_sid, status="active")
    assert active["agent"]["agent_id"] == senior["agent_id"]
    assert await queued_ids(node, app) == [*ordinary_sids[1:], (await pretender.expect("queue"))["session_id"]]

    # A refund inquiry (tags set by the site's server with its API key) goes to aftersales.
    refund_user = await node.visitor(app, "R1")
    r = await node.http.put("/api/v1/visitors/R1/tags", json={"tags": {"inquiry_type": "refund"}}, headers=api(app))
    assert r.status_code == 200, r.text
    after_ws = await agent_socket(node, app, after)
    refund_conv = await refund_user.open_chat()
    assert refund_conv["group"] == "aftersales"
    got = await after_ws.expect("assigned", session_id=refund_conv["session_id"])
    assert got["tags"] == {"inquiry_type": "refund"}


async def test_a_visitor_may_name_a_group_and_an_unknown_one_is_refused(node: Node) -> None:
    app = await node.create_app()
    await post_ok(node, app, "/groups", {"name": "presales"})
    visitor = await node.visitor(app)
    conv = await visitor.open_chat(group="presales")
    assert conv["group"] == "presales"
    await visitor.send("open_chat", ref="g", group="nope")
    error = await visitor.expect("error", ref="g")
    assert error["code"] == "group_not_found"


# --- capacity under concurrency ------------------------------------------------------------------------------


async def capacity_scenario(nodes: list[Node], app: App) -> None:
    """100 concurrent open_chats against 5 agents of max_concurrent 3, spread over `nodes`."""
    db_node = nodes[0]
    infos = [await db_node.add_agent(app, max_concurrent=CAPACITY) for _ in range(AGENTS)]
    agents = [await agent_socket(nodes[i % len(nodes)], app, info) for i, info in enumerate(infos)]
    tokens = await asyncio.gather(*(nodes[i % len(nodes)].visitor_token(app, f"C{i}") for i in range(VISITORS)))
    visitors = list(
        await asyncio.gather(
            *(nodes[i % len(nodes)].connect("visitor", token, f"visitor C{i}") for i, token in enumerate(tokens))
        )
    )
    assigned: list[dict[str, Any]] = []
    worst: list[int] = []

    async def watch(client: Client) -> None:
        """After every assignment an agent sees, no agent may be over capacity in the database."""
        while len(assigned) < AGENTS * CAPACITY:
            frame = await client.find("assigned", timeout=0.5)
            if frame is not None:
                assigned.append(frame)
                worst.append(max((await loads(db_node, app)).values()))

    watchers = [asyncio.create_task(watch(a)) for a in agents]
    await asyncio.gather(*(v.send("open_chat", ref="open") for v in visitors))
    sids = [(await v.expect("conversation", timeout=60))["session_id"] for v in visitors]
    await asyncio.wait_for(asyncio.gather(*watchers), 60)
    for client in agents:  # and no more than that, however long one waits
        await client.drain(0.3)
        assigned.extend(
            client.backlog.pop(i)
            for i in reversed(range(len(client.backlog)))
            if client.backlog[i].get("type") == "assigned"
        )

    assert len(assigned) == AGENTS * CAPACITY
    assert worst and max(worst) <= CAPACITY
    assert sorted((await loads(db_node, app)).values()) == [CAPACITY] * AGENTS
    waiting = await queued_ids(db_node, app)
    assert len(waiting) == VISITORS - AGENTS * CAPACITY
    assert {f["session_id"] for f in assigned} | set(waiting) == set(sids)

    # Every queued visitor was told its place: positions 1..85 without a gap, in the database's order.
    by_sid = dict(zip(sids, visitors, strict=True))
    for sid in waiting:
        await by_sid[sid].find("queue", timeout=10, session_id=sid)
    await asyncio.gather(*(by_sid[sid].drain(0.2) for sid in waiting))
    places = {sid: last_queue_frame(by_sid[sid], sid) for sid in waiting}
    assert [places[sid]["position"] for sid in waiting] == list(range(1, len(waiting) + 1))  # type: ignore[index]
    etas = [places[sid]["eta_seconds"] for sid in waiting]  # type: ignore[index]
    assert all(e > 0 for e in etas) and etas == sorted(etas)
    for node in nodes:
        status = (await node.http.get("/api/v1/status", params={"app_id": app.app_id})).json()
        assert status["status"] == "busy" and status["groups"]["default"]["queue_length"] == len(waiting)

    # Closing one chat assigns the head of the queue before the close returns: no job, no second event.
    head, closing = waiting[0], assigned[0]
    agent_id = closing["conversation"]["agent"]["agent_id"]
    owner = agents[[info["agent_id"] for info in infos].index(agent_id)]
    closer = nodes[-1].services
    await closer.chat.close(Actor("agent", app.app_id, agent_id, "agent"), closing["session_id"])
    async with closer.db.read() as tx:
        head_conv = await conversation_store.get_conversation(tx, head)
    assert head_conv is not None and (head_conv.status, head_conv.agent_id) == ("active", agent_id)
    assert max((await loads(db_node, app)).values()) == CAPACITY
    await owner.expect("assigned", session_id=head)
    await by_sid[head].expect("conversation", session_id=head, status="active")
    # ... and everyone behind moves up one.
    second = waiting[1]
    await by_sid[second].expect("queue", session_id=second, position=1)
    assert (await queued_ids(db_node, app)) == waiting[1:]


async def test_100_concurrent_chats_never_push_an_agent_over_capacity(node: Node) -> None:
    await capacity_scenario([node], await node.create_app())


def node_on_bus(db_url: str, pubsub: PubSub, clock: Clock | None = None) -> Any:
    """A node on a given bus: two nodes on one in-process bus stand in for two nodes on Redis."""
    return running_node(db_url, clock=clock, pubsub=pubsub)


@pytest.mark.postgresql
async def test_two_nodes_on_one_postgresql_never_push_an_agent_over_capacity() -> None:
    async with fresh_pg_database() as url:
        bus = MemoryPubSub()
        async with node_on_bus(url, bus) as first, node_on_bus(url, bus) as second:
            await capacity_scenario([first, second], await first.create_app())


# --- the queue and its estimates --------------------------------------------------------------------------


async def test_etas_are_positive_and_fall_as_the_queue_moves(db_url: str) -> None:
    clock = FakeClock()
    async with running_node(db_url, clock=clock) as node:
        app = await node.create_app()
        info = await node.add_agent(app, max_concurrent=1)
        agent = await agent_socket(node, app, info)
        visitors = [await node.visitor(app, f"E{i}") for i in range(4)]
        sids = [(await v.open_chat())["session_id"] for v in visitors]
        await agent.expect("assigned", session_id=sids[0])
        etas = [
            (await v.expect("queue", session_id=sid))["eta_seconds"]
            for v, sid in zip(visitors[1:], sids[1:], strict=True)
        ]
        assert all(e > 0 for e in etas) and etas == sorted(etas) and len(set(etas)) == 3
        status = (await node.http.get("/api/v1/status", params={"app_id": app.app_id})).json()
        assert status["groups"]["default"]["eta_seconds"] > etas[-1]  # a new chat would wait behind all three

        for served in (1, 2):
            clock.advance(120)  # each chat takes two minutes
            await agent.send("close", session_id=sids[served - 1])
            await agent.expect("assigned", session_id=sids[served])
            for position, (visitor, sid) in enumerate(zip(visitors[served + 1 :], sids[served + 1 :], strict=True), 1):
                moved = await visitor.expect("queue", session_id=sid, position=position)
                before = etas[served + position - 1]
                assert 0 < moved["eta_seconds"] < before
                etas[served + position - 1] = moved["eta_seconds"]


async def test_a_visitor_leaving_the_queue_is_abandoned_and_the_others_move_up(node: Node) -> None:
    app = await node.create_app()
    info = await node.add_agent(app, max_concurrent=1)
    agent = await agent_socket(node, app, info)
    visitors = [await node.visitor(app, f"L{i}") for i in range(3)]
    sids = [(await v.open_chat())["session_id"] for v in visitors]
    await agent.expect("assigned", session_id=sids[0])
    await visitors[2].expect("queue", session_id=sids[2], position=2)

    await visitors[1].send("close", session_id=sids[1])
    await visitors[1].expect("conversation", session_id=sids[1], status="closed")
    await visitors[2].expect("queue", session_id=sids[2], position=1)
    record = (await node.http.get(f"/api/v1/conversations/{sids[1]}", headers=api(app))).json()
    assert record["resolution"] == "abandoned"
    assert await agent.find("assigned", timeout=0.3, session_id=sids[1]) is None

    # The agent closes theirs: the visitor sees it, and the last one waiting is served.
    await agent.send("close", session_id=sids[0])
    await visitors[0].expect("conversation", session_id=sids[0], status="closed")
    await agent.expect("assigned", session_id=sids[2])
    assert (await node.http.get(f"/api/v1/conversations/{sids[0]}", headers=api(app))).json()["resolution"] == (
        "agent_resolved"
    )


# --- transfer ------------------------------------------------------------------------------------------------


async def test_transfer_to_an_agent_and_to_a_group_with_notes_only_agents_see(node: Node) -> None:
    app = await node.create_app()
    await post_ok(node, app, "/groups", {"name": "vip"})
    await post_ok(node, app, "/groups", {"name": "aftersales"})
    rule = {"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}
    await post_ok(node, app, "/routing/rules", {"name": "VIP", "match": rule, "group": "vip", "min_level": 2})
    senior = await node.add_agent(app, groups=("vip",), level=3)
    colleague = await node.add_agent(app, groups=("vip",), level=2)
    trainee = await node.add_agent(app, groups=("aftersales",), level=0)
    senior_ws = await agent_socket(node, app, senior)
    tags = {"vip_level": 4}
    visitor = await node.visitor(app, "T1", tags=tags, tags_hash=tags_hash(app, "T1", tags))
    sid = (await visitor.open_chat())["session_id"]
    await senior_ws.expect("assigned", session_id=sid)
    colleague_ws = await agent_socket(node, app, colleague)

    await senior_ws.send("transfer", session_id=sid, to_agent_id=colleague["agent_id"], note="VIP, 退款已批准")
    handed = await colleague_ws.expect("assigned", session_id=sid)
    assert (handed["note"], handed["from_agent_id"]) == ("VIP, 退款已批准", senior["agent_id"])
    assert handed["from_agent"]["agent_id"] == senior["agent_id"] and handed["from_agent"]["name"]
    moved = await visitor.expect(
        "conversation", session_id=sid, where=lambda f: (f["agent"] or {}).get("agent_id") == colleague["agent_id"]
    )
    assert moved["status"] == "active"
    await senior_ws.expect("conversation", session_id=sid)

    # To a group: queued there with no minimum level, so a level-0 agent of that group takes it.
    await colleague_ws.send("transfer", session_id=sid, to_group="aftersales", note="please check the parcel")
    queued = await visitor.expect("conversation", session_id=sid, status="queued")
    assert queued["group"] == "aftersales" and queued["agent"] is None
    await visitor.expect("queue", session_id=sid, position=1)
    trainee_ws = await agent_socket(node, app, trainee)
    last = await trainee_ws.expect("assigned", session_id=sid)
    assert (last["note"], last["from_agent_id"]) == ("please check the parcel", colleague["agent_id"])
    await visitor.expect("conversation", session_id=sid, status="active")
    await visitor.drain(0.2)
    assert not any("note" in f or "from_agent_id" in f for f in visitor.seen), "a visitor never sees a transfer note"

    # Refused transfers: an agent that is not online, a group that does not exist, a chat that is not yours.
    await senior_ws.send("set_status", status="offline")
    await senior_ws.ping()
    await trainee_ws.send("transfer", ref="t1", session_id=sid, to_agent_id=senior["agent_id"])
    assert (await trainee_ws.expect("error", ref="t1"))["code"] == "conflict"
    await trainee_ws.send("transfer", ref="t2", session_id=sid, to_group="nope")
    assert (await trainee_ws.expect("error", ref="t2"))["code"] == "group_not_found"
    await senior_ws.send("transfer", ref="t3", session_id=sid, to_group="vip")
    assert (await senior_ws.expect("error", ref="t3"))["code"] == "forbidden"


async def test_raising_max_concurrent_serves_the_queue_at_once(node: Node) -> None:
    app = await node.create_app()
    info = await node.add_agent(app, max_concurrent=1)
    agent = await agent_socket(node, app, info)
    visitors = [await node.visitor(app) for _ in range(3)]
    sids = [(await v.open_chat())["session_id"] for v in visitors]
    await agent.expect("assigned", session_id=sids[0])
    r = await node.http.put(f"/api/v1/agents/{info['agent_id']}", json={"max_concurrent": 3}, headers=api(app))
    assert r.status_code == 200 and r.json()["max_concurrent"] == 3
    for sid in sids[1:]:
        await agent.expect("assigned", session_id=sid)
    assert Counter((await loads(node, app)).values()) == Counter({3: 1})


async def test_two_nodes_keep_queue_places_right_when_a_place_comes_back(db_url: str) -> None:
    """Each node pushes only changes, so each must know what the other pushed: here a place returns to 1."""
    bus = MemoryPubSub()
    async with node_on_bus(db_url, bus) as first, node_on_bus(db_url, bus) as second:
        app = await first.create_app()
        rule = {"name": "VIP", "match": VIP_MATCH, "group": "default", "queue_priority": 10}
        await post_ok(first, app, "/routing/rules", rule)
        info = await first.add_agent(app, max_concurrent=1)
        agent = await agent_socket(first, app, info)
        served = await first.visitor(app, "S")
        served_sid = (await served.open_chat())["session_id"]
        await agent.expect("assigned", session_id=served_sid)
        waiting = await first.visitor(app, "X")
        waiting_sid = (await waiting.open_chat())["session_id"]
        await waiting.expect("queue", session_id=waiting_sid, position=1)  # pushed by the first node

        vip_tags = {"vip_level": 5}
        vip = await second.visitor(app, "V", tags=vip_tags, tags_hash=tags_hash(app, "V", vip_tags))
        vip_sid = (await vip.open_chat())["session_id"]
        await vip.expect("queue", session_id=vip_sid, position=1)
        await waiting.expect("queue", session_id=waiting_sid, position=2)  # pushed by the second node

        # The VIP leaves from a device on the first node, which must tell X it is first again.
        vip_on_first = await first.visitor(app, "V")
        await vip_on_first.send("close", session_id=vip_sid)
        await vip.expect("conversation", session_id=vip_sid, status="closed")
        await waiting.expect("queue", session_id=waiting_sid, position=1)
