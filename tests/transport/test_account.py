"""Revocable agent tokens: logout ends one device's session, a password change ends every one — HTTP calls and
open sockets alike (closed 4401) — and the new credentials work at once."""

from __future__ import annotations

import asyncio

import websockets

from tests.helpers import PASSWORD, Node


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def closed_with(node: Node, client_conn: websockets.ClientConnection) -> int | None:
    await asyncio.wait_for(client_conn.wait_closed(), 5)
    return client_conn.close_code


async def test_logout_revokes_only_that_token_and_closes_its_sockets(node: Node) -> None:
    app = await node.create_app()
    info = await node.add_agent(app)
    phone, laptop = await node.login(app, info["email"]), await node.login(app, info["email"])
    phone_ws = await node.connect("agent", phone, "phone")
    laptop_ws = await node.connect("agent", laptop, "laptop")

    r = await node.http.post("/api/v1/auth/logout", headers=bearer(phone))
    assert r.status_code == 204, r.text
    assert await closed_with(node, phone_ws.conn) == 4401
    r = await node.http.get("/api/v1/canned-responses", headers=bearer(phone))
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    refused = await websockets.connect(f"{node.ws_base}/ws/agent?token={phone}")
    assert await closed_with(node, refused) == 4401

    # The laptop's session is untouched.
    assert (await node.http.get("/api/v1/canned-responses", headers=bearer(laptop))).status_code == 200
    await laptop_ws.ping()
    # Logging out twice, or with no token / an API key, is refused without harm.
    assert (await node.http.post("/api/v1/auth/logout", headers=bearer(phone))).status_code == 401
    assert (await node.http.post("/api/v1/auth/logout")).status_code == 401
    assert (await node.http.post("/api/v1/auth/logout", headers=bearer(app.api_key))).status_code == 401


async def test_password_change_revokes_every_token_and_the_new_password_works(node: Node) -> None:
    app = await node.create_app()
    info = await node.add_agent(app)
    first, second = await node.login(app, info["email"]), await node.login(app, info["email"])
    second_ws = await node.connect("agent", second, "second device")
    url = "/api/v1/auth/password"

    wrong = await node.http.post(
        url, json={"current_password": "nope-nope", "new_password": "n3w-secret"}, headers=bearer(first)
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    short = await node.http.post(
        url, json={"current_password": PASSWORD, "new_password": "short"}, headers=bearer(first)
    )
    assert short.status_code == 422
    assert (await node.http.get("/api/v1/canned-responses", headers=bearer(first))).status_code == 200

    r = await node.http.post(
        url, json={"current_password": PASSWORD, "new_password": "n3w-secret"}, headers=bearer(first)
    )
    assert r.status_code == 200, r.text
    fresh = r.json()["token"]
    assert await closed_with(node, second_ws.conn) == 4401
    for old in (first, second):
        assert (await node.http.get("/api/v1/canned-responses", headers=bearer(old))).status_code == 401
    assert (await node.http.get("/api/v1/canned-responses", headers=bearer(fresh))).status_code == 200
    await (await node.connect("agent", fresh, "after the change")).ping()

    login = {"app_id": app.app_id, "email": info["email"]}
    assert (await node.http.post("/api/v1/auth/login", json=login | {"password": PASSWORD})).status_code == 401
    assert (await node.http.post("/api/v1/auth/login", json=login | {"password": "n3w-secret"})).status_code == 200


async def test_an_admin_resetting_a_password_revokes_the_agents_tokens(node: Node) -> None:
    app = await node.create_app()
    info = await node.add_agent(app)
    token = await node.login(app, info["email"])
    open_socket = await node.connect("agent", token, "agent's open console")
    r = await node.http.put(
        f"/api/v1/agents/{info['agent_id']}", json={"password": "reset-by-admin"}, headers=bearer(app.api_key)
    )
    assert r.status_code == 200, r.text
    assert await closed_with(node, open_socket.conn) == 4401
    assert (await node.http.get("/api/v1/canned-responses", headers=bearer(token))).status_code == 401
    login = {"app_id": app.app_id, "email": info["email"], "password": "reset-by-admin"}
    assert (await node.http.post("/api/v1/auth/login", json=login)).status_code == 200


async def test_a_role_or_group_change_closes_the_agents_sockets_which_reopen_with_the_new_rights(node: Node) -> None:
    """A demoted admin's open socket must not keep acting as an admin (issue 20): it closes 4409 `rights_changed`
    and the same token reconnects with the new role; a change that touches no rights leaves sockets open."""
    app = await node.create_app()
    boss = await node.add_agent(app, role="admin")
    token = await node.login(app, boss["email"])
    console = await node.connect("agent", token, "admin's console")
    assert console.ready["you"]["role"] == "admin"
    url, key = f"/api/v1/agents/{boss['agent_id']}", bearer(app.api_key)

    assert (await node.http.put(url, json={"level": 7}, headers=key)).status_code == 200
    await console.ping()  # the level is no right: the socket stays open

    r = await node.http.put(url, json={"role": "agent"}, headers=key)
    assert r.status_code == 200, r.text
    assert (await console.expect("error"))["code"] == "rights_changed"
    assert await closed_with(node, console.conn) == 4409
    reopened = await node.connect("agent", token, "reconnected")
    assert reopened.ready["you"]["role"] == "agent"  # the token still holds; the socket now acts as an agent

    r = await node.http.put(url, json={"groups": ["vip"]}, headers=key)
    assert r.status_code == 200, r.text
    assert await closed_with(node, reopened.conn) == 4409
    assert (await node.connect("agent", token, "again")).ready["you"]["groups"] == ["vip"]
