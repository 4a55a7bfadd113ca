"""GET /stats on a fixed history built through the API with an injected clock; every number worked out by hand.

The history (t in seconds after T0; one agent A with max_concurrent 1, the shop knowledge base):
- V1 (t=0): asks a FAQ question, the bot answers with an article; V1 closes at t=5.       bot-resolved
- V2 (t=10): says 转人工 while nobody is online -> queued at 10 (user_request);
  A goes online at t=40 -> assigned (wait 30); A replies at 50 (first response 40); A closes at 100 (handle 60).
- V3 (t=55): request_human -> queued at 55 (user_request); A is full; V3 closes at 75.     abandoned
- V4 (t=110): asks something the KB does not cover -> low_confidence, queued and assigned at once (wait 0);
  A replies at 130 (first response 20); still open.
Messages: V1 question + answer = 2; V2 转人工 + handoff notice + reply = 3; V3 notice = 1; V4 question + notice +
reply = 3; total 9.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import orjson

from kefu.domain.clock import FakeClock
from tests.helpers import Client, Node, running_node

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
METRICS_TOKEN = "scrape-token-for-tests"
KB = orjson.loads((Path(__file__).parent.parent / "data" / "kb_shop.json").read_bytes())


async def chat(node: Node, app: Any, user: str) -> tuple[Client, str]:
    visitor = await node.visitor(app, user)
    return visitor, (await visitor.open_chat())["session_id"]


async def test_stats_on_a_fixed_history_match_the_numbers_worked_out_by_hand(sqlite_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock) as node:
        app = await node.create_app()
        r = await node.http.post("/api/v1/kb/import", json=KB, headers={"Authorization": f"Bearer {app.api_key}"})
        assert r.status_code == 200
        info = await node.add_agent(app, max_concurrent=1)
        agent = await node.agent(app, info["email"], online=False)

        v1, s1 = await chat(node, app, "V1")
        await v1.text(s1, "下单后多久能发货呀?")
        await v1.expect("message", session_id=s1, sender="bot", timeout=30)
        clock.advance(5)
        await v1.send("close", session_id=s1)
        await v1.expect("conversation", session_id=s1, status="closed")

        clock.advance(5)  # t=10
        v2, s2 = await chat(node, app, "V2")
        await v2.text(s2, "转人工")
        await v2.expect("conversation", session_id=s2, status="queued", timeout=30)
        await v2.expect("message", session_id=s2, sender="bot")  # the handoff notice
        clock.advance(30)  # t=40
        await agent.send("set_status", status="online")
        await agent.expect("assigned", session_id=s2)
        clock.advance(10)  # t=50
        await agent.text(s2, "您好，我来帮您处理。")

        clock.advance(5)  # t=55
        v3, s3 = await chat(node, app, "V3")
        await v3.send("request_human", session_id=s3)
        await v3.expect("queue", session_id=s3)
        clock.advance(20)  # t=75
        await v3.send("close", session_id=s3)
        await v3.expect("conversation", session_id=s3, status="closed")

        clock.advance(25)  # t=100
        await agent.send("close", session_id=s2)
        await v2.expect("conversation", session_id=s2, status="closed")

        clock.advance(10)  # t=110
        v4, s4 = await chat(node, app, "V4")
        await v4.text(s4, "你们公司今年的年会在哪个城市办?")
        await agent.expect("assigned", session_id=s4, timeout=30)
        clock.advance(20)  # t=130
        await agent.text(s4, "这个问题我来回答您。")

        params = {"from": "2026-03-02T08:00:00.000Z", "to": "2026-03-02T10:00:00.000Z", "bucket": "hour"}
        r = await node.http.get("/api/v1/stats", params=params, headers={"Authorization": f"Bearer {app.api_key}"})
        assert r.status_code == 200, r.text
        stats = r.json()
        expected = {
            "sessions": 4,
            "messages": 9,
            "bot_sessions": 1,
            "bot_resolved": 1,
            "bot_resolution_rate": 1.0,
            "handoffs": 3,
            "handoff_reasons": {
                "low_confidence": 1,
                "user_request": 2,
                "no_answer": 0,
                "negative_feedback": 0,
                "repeated_question": 0,
            },
            "wait_seconds": {"avg": 15.0, "p50": 0.0, "p90": 30.0, "max": 30.0},
            "first_response_seconds": {"avg": 30.0, "p50": 20.0, "p90": 40.0, "max": 40.0},
            "handle_seconds": {"avg": 60.0, "p50": 60.0, "p90": 60.0, "max": 60.0},
            "abandoned": 1,
        }
        assert {k: stats[k] for k in expected} == expected
        assert {k: stats["by_group"]["default"][k] for k in expected} == expected
        by_agent = stats["by_agent"][info["agent_id"]]
        assert (by_agent["sessions"], by_agent["handoffs"], by_agent["wait_seconds"]["max"]) == (2, 2, 30.0)
        assert [(p["start"], p["sessions"]) for p in stats["series"]] == [("2026-03-02T09:00:00.000Z", 4)]

        later = {"from": "2026-03-02T09:02:00.000Z"}  # only V4 (t=110 s is 09:01:50: not in) -> nothing
        r = await node.http.get("/api/v1/stats", params=later, headers={"Authorization": f"Bearer {app.api_key}"})
        assert r.json()["sessions"] == 0 and r.json()["bot_resolution_rate"] == 0.0
        other = await node.create_app("other")
        r = await node.http.get("/api/v1/stats", headers={"Authorization": f"Bearer {other.api_key}"})
        assert r.json()["sessions"] == 0  # another app's numbers never mix in
        r = await node.http.get(
            "/api/v1/stats", params={"from": "yesterday"}, headers={"Authorization": f"Bearer {app.api_key}"}
        )
        assert r.status_code == 400


async def test_canned_responses_for_the_app_and_for_one_agent(node: Node) -> None:
    app = await node.create_app()
    admin = {"Authorization": f"Bearer {await node.login(app, app.admin_email)}"}
    info = await node.add_agent(app)
    agent = {"Authorization": f"Bearer {await node.login(app, info['email'])}"}
    r = await node.http.post(
        "/api/v1/canned-responses",
        json={"shortcut": "hi", "text": "您好，请问有什么可以帮您?", "scope": "app"},
        headers=admin,
    )
    assert r.status_code == 201 and r.json()["scope"] == "app"
    r = await node.http.post(
        "/api/v1/canned-responses", json={"shortcut": "hi", "text": "x", "scope": "app"}, headers=agent
    )
    assert r.status_code == 403  # only admins write the app's
    r = await node.http.post(
        "/api/v1/canned-responses", json={"shortcut": "退款", "text": "退款1-3个工作日到账"}, headers=agent
    )
    mine = r.json()
    assert r.status_code == 201 and mine["scope"] == "agent"
    listed = (await node.http.get("/api/v1/canned-responses", headers=agent)).json()["items"]
    assert sorted((i["shortcut"], i["scope"]) for i in listed) == [("hi", "app"), ("退款", "agent")]
    assert [
        i["shortcut"] for i in (await node.http.get("/api/v1/canned-responses", headers=admin)).json()["items"]
    ] == ["hi"]  # another agent's own stay theirs
    assert (await node.http.delete(f"/api/v1/canned-responses/{mine['id']}", headers=admin)).status_code == 404
    assert (await node.http.delete(f"/api/v1/canned-responses/{mine['id']}", headers=agent)).status_code == 204
    bad = await node.http.post("/api/v1/canned-responses", json={"shortcut": "a b", "text": "x"}, headers=agent)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_request"


async def test_the_metrics_need_their_token_and_are_off_without_one(sqlite_url: str) -> None:
    """Issue 20: /metrics was public and listed every tenant's app id."""
    async with running_node(sqlite_url) as node:
        r = await node.http.get("/metrics")
        assert r.status_code == 404 and "KEFU_METRICS_TOKEN" in r.json()["error"]["message"]
    async with running_node(sqlite_url, metrics_token="scrape-Secret-1") as node:
        app = await node.create_app()
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {app.api_key}"}):
            r = await node.http.get("/metrics", headers=headers)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized", headers
            assert app.app_id not in r.text
        r = await node.http.get("/metrics", headers={"Authorization": "Bearer scrape-Secret-1"})
        assert r.status_code == 200 and app.app_id in r.text


async def test_prometheus_metrics_count_sockets_messages_queues_and_latency(db_url: str) -> None:
    async with running_node(db_url, metrics_token=METRICS_TOKEN) as node:
        await check_metrics(node)


async def check_metrics(node: Node) -> None:
    app = await node.create_app()
    visitor = await node.visitor(app, "M1")
    sid = (await visitor.open_chat())["session_id"]  # nobody online: it waits in the queue
    for i in range(3):
        await visitor.text(sid, f"m{i}")
    text = (await node.http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})).text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines['kefu_open_sockets{kind="visitor"}'] == "1"
    assert int(lines["kefu_messages_total"]) >= 3
    assert lines[f'kefu_queue_length{{app_id="{app.app_id}",group="default"}}'] == "1"
    assert lines[f'kefu_agents{{app_id="{app.app_id}",status="offline"}}'] == "1"  # the admin
    assert lines["kefu_send_latency_seconds_count"] == "3"
    assert lines['kefu_send_latency_seconds_bucket{le="+Inf"}'] == "3"
    assert lines["kefu_webhook_backlog"] == "0"
