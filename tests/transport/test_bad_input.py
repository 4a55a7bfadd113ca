"""Bad input of every kind gets the contract's error, changes nothing, and leaves a socket open when it can."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.helpers import Client, Node, user_hash


def is_error(body: Any, code: str | None = None) -> bool:
    err = body.get("error") if isinstance(body, dict) else None
    return isinstance(err, dict) and isinstance(err.get("message"), str) and (code is None or err["code"] == code)


async def chat(node: Node) -> tuple[Any, Client, Client, str]:
    app = await node.create_app()
    info = await node.add_agent(app)
    agent = await node.agent(app, info["email"])
    visitor = await node.visitor(app, "U1")
    sid = (await visitor.open_chat())["session_id"]
    await agent.expect("assigned", session_id=sid)
    return app, visitor, agent, sid


async def message_count(node: Node, app: Any, sid: str) -> int:
    r = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {app.api_key}"})
    return len(r.json()["messages"])


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "invalid_frame"),
        ("[1, 2, 3]", "invalid_frame"),
        ('"just a string"', "invalid_frame"),
        ('{"no_type": 1}', "unknown_type"),
        ('{"type": "teleport", "ref": "u1"}', "unknown_type"),
        ('{"type": "send", "ref": "s1"}', "invalid_frame"),
        ('{"type": "send", "session_id": 5, "client_msg_id": "x", "content": "hi"}', "invalid_frame"),
        ('{"type": "sync", "session_id": "x", "after_seq": -1}', "invalid_frame"),
        ('{"type": "set_status", "status": "online"}', "forbidden"),
        ('{"type": "read", "session_id": "20000101-000001", "seq": 1}', "conversation_not_found"),
    ],
)
async def test_bad_frames_get_an_error_and_the_socket_stays_open(node: Node, raw: str, code: str) -> None:
    app, visitor, _agent, sid = await chat(node)
    await visitor.send_raw(raw)
    err = await visitor.expect("error")
    assert err["code"] == code, err
    assert isinstance(err["message"], str) and err["message"]
    if '"ref"' in raw:
        assert err["ref"] in ("u1", "s1")
    await visitor.ping()
    ack = await visitor.text(sid, "still here")
    assert ack["seq"] == 1
    assert await message_count(node, app, sid) == 1


async def test_oversize_frame_and_binary_frame_are_refused(node: Node) -> None:
    app, visitor, _agent, sid = await chat(node)
    big = {"type": "send", "session_id": sid, "client_msg_id": "big", "msg_type": "text", "content": "字" * 40000}
    await visitor.send("send", **{k: v for k, v in big.items() if k != "type"})
    assert (await visitor.expect("error"))["code"] == "frame_too_large"
    await visitor.send("send", session_id=sid, client_msg_id="long", msg_type="text", content="a" * 6000, ref="l")
    assert (await visitor.expect("error", ref="l"))["code"] == "message_too_long"
    await visitor.send_raw(b"\x00\x01binary")
    assert (await visitor.expect("error"))["code"] == "invalid_frame"
    await visitor.send(
        "send", session_id=sid, client_msg_id="lnk", msg_type="link", content="javascript:alert(1)", ref="k"
    )
    assert (await visitor.expect("error", ref="k"))["code"] == "invalid_frame"
    await visitor.ping()
    assert await message_count(node, app, sid) == 0


async def test_a_send_into_someone_elses_conversation_is_refused_and_not_delivered(node: Node) -> None:
    app, visitor, agent, sid = await chat(node)
    intruder = await node.visitor(app, "U2")
    await intruder.send(
        "send", ref="x", session_id=sid, client_msg_id=uuid.uuid4().hex, msg_type="text", content="入侵"
    )
    err = await intruder.expect("error", ref="x")
    assert err["code"] == "conversation_not_found"
    other_app = await node.create_app("other")
    stranger = await node.visitor(other_app, "U1")
    await stranger.send("sync", ref="y", session_id=sid, after_seq=0)
    assert (await stranger.expect("error", ref="y"))["code"] == "conversation_not_found"
    await intruder.ping()
    seen = await visitor.drain(0.3) + await agent.drain(0.1)
    assert not [f for f in seen if f.get("type") == "message"]
    assert await message_count(node, app, sid) == 0


async def test_an_agent_not_assigned_cannot_write_into_a_chat(node: Node) -> None:
    app, _visitor, _agent, sid = await chat(node)
    other = await node.add_agent(app)
    outsider = await node.agent(app, other["email"], online=False)
    await outsider.send("send", ref="o", session_id=sid, client_msg_id="c", msg_type="text", content="hi")
    assert (await outsider.expect("error", ref="o"))["code"] == "forbidden"
    assert await message_count(node, app, sid) == 0


async def test_a_closed_conversation_takes_no_more_messages(node: Node) -> None:
    _app, visitor, _agent, sid = await chat(node)
    await visitor.send("close", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="closed")
    await visitor.send("send", ref="c", session_id=sid, client_msg_id="late", msg_type="text", content="late")
    assert (await visitor.expect("error", ref="c"))["code"] == "conversation_closed"


@pytest.mark.parametrize("token", ["", "garbage", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"])
async def test_a_wrong_token_is_refused_with_an_error_frame(node: Node, token: str) -> None:
    async with websockets.connect(f"{node.ws_base}/ws/visitor?token={token}") as ws:
        frame = await ws.recv()
        assert '"unauthorized"' in str(frame)
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_visitor_token_does_not_open_the_agent_socket(node: Node) -> None:
    app = await node.create_app()
    token = await node.visitor_token(app)
    async with websockets.connect(f"{node.ws_base}/ws/agent?token={token}") as ws:
        assert '"unauthorized"' in str(await ws.recv())


async def test_bad_http_input_gets_the_error_shape(node: Node) -> None:
    app = await node.create_app()
    cases = [
        ("/api/v1/visitor/session", {"app_id": "no-such-app"}, 404, "app_not_found"),
        (
            "/api/v1/visitor/session",
            {"app_id": app.app_id, "user_id": "U1", "user_hash": "0" * 64},
            401,
            "identity_unverified",
        ),
        ("/api/v1/visitor/session", {"app_id": app.app_id, "user_id": "U1"}, 401, "identity_unverified"),
        (
            "/api/v1/visitor/session",
            {"app_id": app.app_id, "user_id": "U1", "user_hash": "非十六进制"},
            401,
            "identity_unverified",
        ),
        (
            "/api/v1/visitor/session",
            {
                "app_id": app.app_id,
                "user_id": "U1",
                "user_hash": user_hash(app.secret, "U1"),
                "tags": {"vip_level": 9},
                "tags_hash": "00",
            },
            401,
            "tags_unverified",
        ),
        ("/api/v1/visitor/session", {"app_id": 12}, 422, "invalid_request"),
        (
            "/api/v1/auth/login",
            {"app_id": app.app_id, "email": app.admin_email, "password": "wrong-password"},
            401,
            "invalid_credentials",
        ),
        (
            "/api/v1/auth/login",
            {"app_id": app.app_id, "email": "nobody@example.com", "password": "x"},
            401,
            "invalid_credentials",
        ),
        ("/api/v1/auth/login", {"email": "x"}, 422, "invalid_request"),
    ]
    for path, body, status, code in cases:
        r = await node.http.post(path, json=body)
        assert (r.status_code, is_error(r.json(), code)) == (status, True), (path, body, r.text)
    r = await node.http.post(
        "/api/v1/visitor/session", content=b"{broken", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and is_error(r.json())
    for path in ("/api/v1/conversations/20000101-000001", "/api/v1/conversations"):
        r = await node.http.get(path)
        assert r.status_code == 401 and is_error(r.json(), "unauthorized")
        r = await node.http.get(path, headers={"Authorization": "Bearer kefu_not-a-key"})
        assert r.status_code == 401 and is_error(r.json(), "unauthorized")
    r = await node.http.get("/api/v1/conversations/20000101-000001", headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 404 and is_error(r.json(), "conversation_not_found")
    r = await node.http.get("/api/v1/no/such/path")
    assert r.status_code == 404 and is_error(r.json(), "not_found")


async def test_another_apps_conversation_is_not_found(node: Node) -> None:
    app, _visitor, _agent, sid = await chat(node)
    other = await node.create_app("other")
    r = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {other.api_key}"})
    assert r.status_code == 404 and is_error(r.json(), "conversation_not_found")
    r = await node.http.get(f"/api/v1/conversations/{sid}", headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 200


async def test_health_and_openapi(node: Node) -> None:
    assert (await node.http.get("/healthz")).json() == {"status": "ok"}
    spec = (await node.http.get("/openapi.json")).json()
    assert "/api/v1/visitor/session" in spec["paths"] and "/api/v1/auth/login" in spec["paths"]
