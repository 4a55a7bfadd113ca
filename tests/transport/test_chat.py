"""Conversation core over real sockets, on SQLite and PostgreSQL: delivery, ordering, idempotency, sync."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

from tests.helpers import Client, Node

CONTEXT = "TypeError: Cannot read properties of undefined (reading 'price')"
WORDS = ["你好，我的订单还没发货", "Hello, where is my parcel?", "已经为您加急处理 👍", "Thanks — 谢谢!"]


async def human_chat(node: Node, user_id: str = "U1") -> tuple[Any, Client, Client, str, dict[str, str]]:
    """An app with one online agent and a visitor whose chat the agent has taken."""
    app = await node.create_app()
    agent_info = await node.add_agent(app)
    agent = await node.agent(app, agent_info["email"])
    visitor = await node.visitor(app, user_id)
    conv = await visitor.open_chat(context=CONTEXT)
    sid = conv["session_id"]
    assigned = await agent.expect("assigned", session_id=sid)
    assert assigned["context"] == CONTEXT
    await visitor.expect("conversation", session_id=sid, status="active")
    return app, visitor, agent, sid, agent_info


def contents(client: Client, sid: str) -> list[tuple[int, str]]:
    return [(f["seq"], f["content"]) for f in client.seen if f.get("type") == "message" and f["session_id"] == sid]


async def test_chinese_and_english_reach_every_device_of_both_sides(node: Node) -> None:
    app, visitor, agent, sid, agent_info = await human_chat(node)
    visitor2 = await node.visitor(app, "U1")
    agent2 = await node.agent(app, agent_info["email"], online=False)
    assert [c["session_id"] for c in visitor2.ready["conversations"]] == [sid]
    assert [c["session_id"] for c in agent2.ready["conversations"]] == [sid]

    acks = []
    for i, text in enumerate(WORDS):
        sender = visitor if i % 2 == 0 else agent
        acks.append(await sender.text(sid, text))
    assert [a["seq"] for a in acks] == [1, 2, 3, 4]

    want = list(enumerate(WORDS, start=1))
    for client in (visitor2, agent2):  # devices that sent nothing get every message
        for seq, _ in want:
            await client.expect("message", session_id=sid, seq=seq)
        assert contents(client, sid) == want, client.label
    senders = [f["sender"] for f in agent2.seen if f.get("type") == "message"]
    assert senders == ["user", "agent", "user", "agent"]
    # The sending connections get the other side's messages, and only the ack of their own (protocol §3).
    for client, theirs in ((visitor, (2, 4)), (agent, (1, 3))):
        for seq in theirs:
            await client.expect("message", session_id=sid, seq=seq)
        await client.ping()  # everything sent before the pong has arrived
        assert contents(client, sid) == [(seq, WORDS[seq - 1]) for seq in theirs], client.label


async def test_concurrent_senders_get_gapless_seqs_and_idempotent_resends(node: Node) -> None:
    app, visitor, agent, sid, agent_info = await human_chat(node)
    senders = [await node.visitor(app, "U1") for _ in range(10)]
    senders += [await node.agent(app, agent_info["email"], online=False) for _ in range(10)]
    per_sender = 100

    async def burst(client: Client, n: int) -> list[dict[str, Any]]:
        ids = [f"{n}-{i}-{uuid.uuid4().hex[:6]}" for i in range(per_sender)]
        for i, cmid in enumerate(ids):
            await client.send("send", ref=cmid, session_id=sid, client_msg_id=cmid, msg_type="text", content=f"{n}:{i}")
        return [await client.expect("ack", ref=cmid, timeout=60) for cmid in ids]

    acks = [a for batch in await asyncio.gather(*(burst(c, n) for n, c in enumerate(senders))) for a in batch]
    total = len(senders) * per_sender
    assert sorted(a["seq"] for a in acks) == list(range(1, total + 1))

    # Every device received every message exactly once, in seq order, with no gap; a sending connection got the
    # ack of its own messages instead of the message (protocol §3), so its messages and acks together are all.
    everything = list(range(1, total + 1))
    for client, own in ((visitor, 0), (agent, 0), (senders[0], 1), (senders[-1], 1)):
        acked = {a["seq"] for a in client.seen if a.get("type") == "ack"}
        assert len(acked) == own * per_sender, client.label
        await client.expect("message", session_id=sid, seq=max(set(everything) - acked), timeout=60)
        await client.ping()
        assert [s for s, _ in contents(client, sid)] == [s for s in everything if s not in acked], client.label

    # A resend of a client_msg_id by its sender, from another of the sender's devices, returns the original ack
    # under its own ref and stores nothing. senders[12] is the agent (0-9 are the visitor's devices, 10-19 the
    # agent's); the retry comes from the agent's last device.
    original = next(a for a in acks if a["client_msg_id"].startswith("12-"))
    again = await senders[-1].text(sid, "ignored", ref="retry", cmid=original["client_msg_id"])
    assert again["ref"] == "retry"
    assert {k: again[k] for k in ("seq", "message_id", "timestamp")} == {
        k: original[k] for k in ("seq", "message_id", "timestamp")
    }
    # client_msg_id is unique per sender (protocol §3): the visitor sending the same id sends a new message.
    other = await senders[0].text(sid, "a new message", ref="other", cmid=original["client_msg_id"])
    assert other["seq"] == total + 1 and other["message_id"] != original["message_id"]
    record = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {app.api_key}"})
    assert [m["seq"] for m in record.json()["messages"]] == list(range(1, total + 2))


async def test_resend_of_the_same_client_msg_id_returns_the_original_ack(node: Node) -> None:
    _app, visitor, agent, sid, _ = await human_chat(node)
    first = await visitor.text(sid, "只发一次", ref="r1", cmid="cmid-1")
    second = await visitor.text(sid, "只发一次", ref="r2", cmid="cmid-1")
    assert second["ref"] == "r2"
    assert [second[k] for k in ("seq", "message_id", "timestamp")] == [
        first[k] for k in ("seq", "message_id", "timestamp")
    ]
    await agent.expect("message", seq=first["seq"])
    nxt = await visitor.text(sid, "第二条")
    assert nxt["seq"] == first["seq"] + 1
    assert [f for f in await agent.drain() if f.get("type") == "message" and f["seq"] == first["seq"]] == []


async def test_reconnect_and_sync_replays_exactly_what_was_missed(node: Node) -> None:
    app, visitor, agent, sid, _ = await human_chat(node)
    token = await node.visitor_token(app, "U1")
    for text in ("one", "two"):
        await visitor.text(sid, text)
    await visitor.close()
    missed = [await agent.text(sid, f"while you were away {i}") for i in range(3)]

    back = await node.connect("visitor", token, "visitor again")
    assert [(c["session_id"], c["last_seq"]) for c in back.ready["conversations"]] == [(sid, 5)]
    await back.send("sync", ref="s1", session_id=sid, after_seq=2)
    synced = await back.expect("synced", ref="s1")
    replayed = [(f["seq"], f["content"]) for f in back.seen if f.get("type") == "message"]
    assert replayed == [(a["seq"], f"while you were away {i}") for i, a in enumerate(missed)]
    assert synced == {"type": "synced", "ref": "s1", "session_id": sid, "last_seq": 5}

    await back.send("sync", ref="s2", session_id=sid, after_seq=5)
    await back.expect("synced", ref="s2", last_seq=5)
    assert len([f for f in back.seen if f.get("type") == "message"]) == 3

    live = await agent.text(sid, "live again")
    got = await back.expect("message", seq=live["seq"])
    assert got["content"] == "live again"


async def test_archive_record_matches_protocol_section_4(node: Node) -> None:
    app, visitor, agent, sid, _ = await human_chat(node, user_id="U1001")
    await visitor.text(sid, "理财产品风险等级如何划分?")
    await agent.text(sid, "根据监管要求,我行产品分为R1-R5五个等级...")
    await visitor.send("close", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="closed")

    r = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 200
    record = r.json()
    allowed_top = {
        "session_id",
        "user_id",
        "messages",
        "app_id",
        "status",
        "group",
        "agent_id",
        "channel",
        "context",
        "tags",
        "created_at",
        "closed_at",
        "resolution",
        "handoff_reason",
    }
    assert {"session_id", "user_id", "messages"} <= record.keys() <= allowed_top
    assert record["session_id"] == sid and re.fullmatch(r"\d{8}-\d{6,}", sid)
    assert record["user_id"] == "U1001" and record["status"] == "closed" and record["context"] == CONTEXT
    stamp = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
    assert stamp.match(record["created_at"]) and stamp.match(record["closed_at"])
    allowed_msg = {"sender", "content", "timestamp", "seq", "msg_type", "sender_id", "attachment", "confidence"}
    for m in record["messages"]:
        assert {"sender", "content", "timestamp"} <= m.keys() <= allowed_msg
        assert stamp.match(m["timestamp"])
    assert [(m["sender"], m["content"]) for m in record["messages"]] == [
        ("user", "理财产品风险等级如何划分?"),
        ("agent", "根据监管要求,我行产品分为R1-R5五个等级..."),
    ]
    token = await node.login(app, app.admin_email)
    same = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {token}"})
    assert same.json() == record


async def test_session_ids_count_up_within_the_day(node: Node) -> None:
    app = await node.create_app()
    visitor = await node.visitor(app)
    first = (await visitor.open_chat())["session_id"]
    second = (await visitor.open_chat())["session_id"]
    assert first[:8] == second[:8] and int(second[9:]) == int(first[9:]) + 1
