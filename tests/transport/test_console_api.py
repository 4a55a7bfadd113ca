"""What the console reads besides chat frames: internal notes, history by page, the agent's `ready` with the
visitor panel, and `queue_changed` when the app's queue moves — over real sockets on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.helpers import App, Client, Node


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def agent_with_token(node: Node, app: App, **kw: Any) -> tuple[dict[str, Any], str]:
    info = await node.add_agent(app, **kw)
    token = await node.services.auth.issue_token("agent", info["agent_id"], app.app_id, 3600, kw.get("role", "agent"))
    return info, token


async def online(node: Node, token: str, label: str) -> Client:
    client = await node.connect("agent", token, label)
    await client.send("set_status", status="online")
    await client.ping()
    return client


async def test_notes_reach_agents_only_and_follow_a_transfer(node: Node) -> None:
    app = await node.create_app()
    first, first_token = await agent_with_token(node, app, name="Ann")
    second, second_token = await agent_with_token(node, app, name="Bo")
    first_ws = await online(node, first_token, "first")
    visitor = await node.visitor(app, "N1", name="访客")
    sid = (await visitor.open_chat(context="订单 A1001 报错"))["session_id"]
    await first_ws.expect("assigned", session_id=sid)
    await visitor.text(sid, "我的订单还没发货")

    r = await node.http.post(
        f"/api/v1/conversations/{sid}/notes", json={"content": "老客户,语气要温和"}, headers=bearer(first_token)
    )
    assert r.status_code == 201, r.text
    note = r.json()
    assert (note["kind"], note["agent_id"], note["agent_name"]) == ("note", first["agent_id"], "Ann")
    framed = await first_ws.expect("note", session_id=sid)
    assert framed["note_id"] == note["note_id"] and framed["content"] == "老客户,语气要温和"

    second_ws = await online(node, second_token, "second")
    await first_ws.send("transfer", session_id=sid, to_agent_id=second["agent_id"], note="请跟进退款")
    await second_ws.expect("assigned", session_id=sid)
    r = await node.http.get(f"/api/v1/conversations/{sid}/notes", headers=bearer(second_token))
    assert r.status_code == 200, r.text
    assert [(n["kind"], n["content"], n["agent_name"]) for n in r.json()["items"]] == [
        ("note", "老客户,语气要温和", "Ann"),
        ("transfer", "请跟进退款", "Ann"),
    ]
    r = await node.http.post(
        f"/api/v1/conversations/{sid}/notes", json={"content": "已处理"}, headers=bearer(second_token)
    )
    assert r.status_code == 201
    await second_ws.expect("note", session_id=sid, content="已处理")

    # The visitor: no note frame, no note in the archive record, and the notes endpoint refuses its token.
    await visitor.drain(0.3)
    assert not [f for f in visitor.seen if f.get("type") == "note"]
    record = (await node.http.get(f"/api/v1/conversations/{sid}", headers=bearer(app.api_key))).json()
    assert "老客户" not in str(record) and "请跟进退款" not in str(record)
    visitor_token = await node.visitor_token(app)
    r = await node.http.get(f"/api/v1/conversations/{sid}/notes", headers=bearer(visitor_token))
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_bad_notes_are_refused_and_change_nothing(node: Node) -> None:
    app = await node.create_app()
    other = await node.create_app("other")
    _, token = await agent_with_token(node, app)
    _, other_token = await agent_with_token(node, other)
    visitor = await node.visitor(app, "N2")
    sid = (await visitor.open_chat())["session_id"]
    url = f"/api/v1/conversations/{sid}/notes"
    for body in ({}, {"content": ""}, {"content": 3}, {"content": "x" * 5001}, {"content": "a", "extra": 1}):
        r = await node.http.post(url, json=body, headers=bearer(token))
        assert r.status_code == 422 and "error" in r.json(), (body, r.text)
    r = await node.http.post(url, json={"content": "   "}, headers=bearer(token))
    assert r.status_code == 400
    r = await node.http.post(url, json={"content": "hi"}, headers=bearer(other_token))
    assert r.status_code == 404 and sid in r.json()["error"]["message"]
    r = await node.http.post(url, json={"content": "hi"}, headers=bearer(app.api_key))
    assert r.status_code == 403, "an API key reads notes but has no name to write them under"
    r = await node.http.post(
        "/api/v1/conversations/20990101-000001/notes", json={"content": "x"}, headers=bearer(token)
    )
    assert r.status_code == 404
    assert (await node.http.get(url, headers=bearer(token))).json() == {"items": []}


async def test_history_pages_back_from_the_newest(node: Node) -> None:
    app = await node.create_app()
    _, token = await agent_with_token(node, app)
    visitor = await node.visitor(app, "H1")
    sid = (await visitor.open_chat())["session_id"]
    for i in range(1, 121):
        await visitor.text(sid, f"第{i}条 message {i}")
    url = f"/api/v1/conversations/{sid}/messages"

    newest = (await node.http.get(url, headers=bearer(token))).json()
    assert [m["seq"] for m in newest["items"]] == list(range(71, 121)) and newest["has_more"]
    assert newest["items"][-1]["content"] == "第120条 message 120" and newest["items"][-1]["sender"] == "user"
    assert "type" not in newest["items"][0]
    seen = [m["seq"] for m in newest["items"]]
    before = seen[0]
    while True:
        page = (await node.http.get(url, params={"before_seq": before, "limit": 50}, headers=bearer(token))).json()
        seen = [m["seq"] for m in page["items"]] + seen
        if not page["has_more"]:
            break
        before = page["items"][0]["seq"]
    assert seen == list(range(1, 121)), "every message once, in order"
    r = await node.http.get(url, params={"before_seq": 0}, headers=bearer(token))
    assert r.status_code == 422
    r = await node.http.get(url, params={"limit": 1000}, headers=bearer(token))
    assert r.status_code == 422
    r = await node.http.get(url, headers=bearer(await node.visitor_token(app)))
    assert r.status_code == 401


async def test_agent_ready_carries_the_visitor_panel_and_queue_changes_are_pushed(node: Node) -> None:
    app = await node.create_app()
    agent, token = await agent_with_token(node, app, max_concurrent=1)
    watcher_info, watcher_token = await agent_with_token(node, app)
    watcher = await node.connect("agent", watcher_token, "watcher")  # offline: sees the queue, takes nothing
    agent_ws = await online(node, token, "agent")
    first = await node.visitor(app, "Q1", name="张三", tags={"plan": "pro"})
    sid = (await first.open_chat(context="error: 500 at checkout", channel="mobile"))["session_id"]
    await agent_ws.expect("assigned", session_id=sid)
    second = await node.visitor(app, "Q2")
    queued = (await second.open_chat())["session_id"]
    await second.expect("queue", session_id=queued, position=1)
    changed = await watcher.expect("queue_changed")
    assert changed["groups"]["default"]["queue_length"] == 1 and changed["app_id"] == app.app_id
    await agent_ws.expect("queue_changed")

    again = await node.connect("agent", token, "agent, second device")
    [listed] = [c for c in again.ready["conversations"] if c["session_id"] == sid]
    assert listed["visitor"]["name"] == "张三" and listed["visitor"]["user_id"] == "Q1"
    assert (listed["client_tags"], listed["context"], listed["channel"]) == (
        {"plan": "pro"},
        "error: 500 at checkout",
        "mobile",
    )

    await agent_ws.send("close", session_id=sid)
    await agent_ws.expect("assigned", session_id=queued)
    emptied = await watcher.expect("queue_changed", where=lambda f: f["groups"]["default"]["queue_length"] == 0)
    assert emptied["app_id"] == app.app_id
    assert watcher_info["agent_id"] != agent["agent_id"]

    # A visitor giving up while queued (the only one waiting) empties the queue too: agents hear it.
    third = await node.visitor(app, "Q3")
    waiting = (await third.open_chat())["session_id"]
    await watcher.expect("queue_changed", where=lambda f: f["groups"]["default"]["queue_length"] == 1)
    await third.send("close", session_id=waiting)
    await third.expect("conversation", session_id=waiting, status="closed")
    await watcher.expect("queue_changed", where=lambda f: f["groups"]["default"]["queue_length"] == 0)
