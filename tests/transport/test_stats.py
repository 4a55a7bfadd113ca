"""GET /stats on a fixed history built through the API with an injected clock; every number worked out by hand.

The history is tests/history.py's `hand_worked_day` (its docstring works out the figures); the console's dashboard
test plays it too, with a week after it.
"""

from __future__ import annotations

from kefu.domain.clock import FakeClock
from tests.helpers import Node, running_node
from tests.history import T0, hand_worked_day

METRICS_TOKEN = "scrape-token-for-tests"


async def test_stats_on_a_fixed_history_match_the_numbers_worked_out_by_hand(sqlite_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock) as node:
        played = await hand_worked_day(node, clock)
        app, info = played.app, played.agents["张伟"]

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
