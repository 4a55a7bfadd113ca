"""The admin HTTP API over a real socket: routing rules, agents, groups, app settings, trusted visitor tags;
every query scoped to the caller's app, and bad input answered in the contract's error shape."""

from __future__ import annotations

from typing import Any

import httpx

from kefu.services.limits import effective_limits
from tests.helpers import App, Node

VIP = {"all": [{"field": "tags.vip_level", "op": ">=", "value": 3}]}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_of(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]  # type: ignore[no-any-return]


async def rule(node: Node, app: App, name: str, **extra: Any) -> dict[str, Any]:
    body = {"name": name, "match": VIP, "group": "default", **extra}
    r = await node.http.post("/api/v1/routing/rules", json=body, headers=auth(app.api_key))
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def names_in_order(node: Node, app: App) -> list[tuple[str, int]]:
    r = await node.http.get("/api/v1/routing/rules", headers=auth(app.api_key))
    assert r.status_code == 200, r.text
    return [(item["name"], item["position"]) for item in r.json()["items"]]


async def test_rules_form_one_ordered_list(node: Node) -> None:
    app = await node.create_app()
    first = await rule(node, app, "first", min_level=2, queue_priority=5)
    assert first == {
        "id": first["id"],
        "name": "first",
        "match": VIP,
        "group": "default",
        "min_level": 2,
        "queue_priority": 5,
        "position": 1,
    }
    await rule(node, app, "second")
    await rule(node, app, "top", position=1)
    await rule(node, app, "middle", position=3)
    await rule(node, app, "far", position=99)  # past the end: last
    assert await names_in_order(node, app) == [("top", 1), ("first", 2), ("middle", 3), ("second", 4), ("far", 5)]

    moved = await node.http.put(
        f"/api/v1/routing/rules/{first['id']}", json={"position": 5, "queue_priority": 7}, headers=auth(app.api_key)
    )
    assert moved.status_code == 200, moved.text
    assert (moved.json()["position"], moved.json()["queue_priority"], moved.json()["min_level"]) == (5, 7, 2)
    assert await names_in_order(node, app) == [("top", 1), ("middle", 2), ("second", 3), ("far", 4), ("first", 5)]

    new_match = {
        "any": [
            {"field": "channel", "op": "in", "value": ["mobile", "miniprogram"]},
            {"field": "tags.note", "op": "==", "value": None},
        ]
    }
    changed = await node.http.put(
        f"/api/v1/routing/rules/{first['id']}", json={"match": new_match}, headers=auth(app.api_key)
    )
    assert changed.json()["match"] == new_match

    r = await node.http.delete(f"/api/v1/routing/rules/{first['id']}", headers=auth(app.api_key))
    assert r.status_code == 204
    r = await node.http.delete(f"/api/v1/routing/rules/{first['id']}", headers=auth(app.api_key))
    error_of(r, 404, "not_found")
    top = (await node.http.get("/api/v1/routing/rules", headers=auth(app.api_key))).json()["items"][0]
    r = await node.http.delete(f"/api/v1/routing/rules/{top['id']}", headers=auth(app.api_key))
    assert r.status_code == 204
    assert await names_in_order(node, app) == [("middle", 1), ("second", 2), ("far", 3)]


async def test_the_first_matching_rule_routes_and_a_later_order_changes_that(node: Node) -> None:
    app = await node.create_app()
    for group in ("mobile", "vip"):
        await node.http.post("/api/v1/groups", json={"name": group}, headers=auth(app.api_key))
    mobile = {"all": [{"field": "channel", "op": "==", "value": "mobile"}]}
    await node.http.post(
        "/api/v1/routing/rules", json={"name": "m", "match": mobile, "group": "mobile"}, headers=auth(app.api_key)
    )
    vip = await node.http.post(
        "/api/v1/routing/rules", json={"name": "v", "match": VIP, "group": "vip"}, headers=auth(app.api_key)
    )
    r = await node.http.put("/api/v1/visitors/U7/tags", json={"tags": {"vip_level": 5}}, headers=auth(app.api_key))
    error_of(r, 404, "not_found")  # no such visitor yet
    visitor = await node.visitor(app, "U7")
    r = await node.http.put("/api/v1/visitors/U7/tags", json={"tags": {"vip_level": 5}}, headers=auth(app.api_key))
    assert r.status_code == 200 and r.json()["tags"] == {"vip_level": 5}
    assert (await visitor.open_chat(channel="mobile"))["group"] == "mobile"
    await node.http.put(f"/api/v1/routing/rules/{vip.json()['id']}", json={"position": 1}, headers=auth(app.api_key))
    assert (await visitor.open_chat(channel="mobile"))["group"] == "vip"
    # Replaced, not merged: without the tag the VIP rule no longer matches.
    await node.http.put("/api/v1/visitors/U7/tags", json={"tags": {"plan": "free"}}, headers=auth(app.api_key))
    assert (await visitor.open_chat(channel="web"))["group"] == "default"


async def test_bad_rules_get_4xx_in_the_contract_shape(node: Node) -> None:
    app = await node.create_app()
    key = auth(app.api_key)
    base = {"name": "r", "match": VIP, "group": "default"}

    async def post(body: Any) -> httpx.Response:
        return await node.http.post("/api/v1/routing/rules", json=body, headers=key)

    error_of(await post(base | {"match": {"all": [{"field": "tags.x", "op": "~=", "value": 1}]}}), 400, "bad_request")
    error_of(await post(base | {"match": {"all": [{"field": "client_tags.x", "op": "==", "value": 1}]}}), 400)
    error_of(await post(base | {"match": {"all": [{"field": "tags.x", "op": "in", "value": 3}]}}), 400)
    error_of(await post(base | {"match": {"all": [], "any": []}}), 400)
    error_of(await post(base | {"match": {"all": []}}), 400)
    error_of(await post(base | {"match": {"every": []}}), 422, "invalid_request")
    error_of(await post(base | {"match": {"all": [{"field": "tags.x", "op": "=="}]}}), 422)
    error_of(await post(base | {"group": "ghosts"}), 404, "group_not_found")
    error_of(await post(base | {"position": 0}), 422)
    error_of(await post(base | {"min_level": "high"}), 422)
    error_of(await post(base | {"min_level": -1}), 422)
    error_of(await post(base | {"surprise": True}), 422)
    error_of(await post({"name": "r"}), 422)
    error_of(await post([1, 2]), 422)
    r = await node.http.post(
        "/api/v1/routing/rules", content=b"{not json", headers=key | {"content-type": "application/json"}
    )
    error_of(r, 422)
    error_of(await node.http.put("/api/v1/routing/rules/rule_nope", json={"name": "x"}, headers=key), 404)
    assert (await node.http.get("/api/v1/routing/rules", headers=key)).json() == {"items": []}


async def test_who_may_administer(node: Node) -> None:
    app = await node.create_app()
    agent = await node.add_agent(app)
    agent_token = await node.login(app, agent["email"])
    admin_token = await node.login(app, app.admin_email)
    error_of(await node.http.get("/api/v1/routing/rules"), 401, "unauthorized")
    error_of(await node.http.get("/api/v1/agents", headers=auth(agent_token)), 403, "forbidden")
    error_of(await node.http.post("/api/v1/groups", json={"name": "x"}, headers=auth(agent_token)), 403)
    assert (await node.http.get("/api/v1/agents", headers=auth(admin_token))).status_code == 200
    # Trusted tags come from the site's server only: an API key, not even an admin's token.
    visitor_token = await node.visitor_token(app, "U1")
    for token in (admin_token, visitor_token):
        r = await node.http.put("/api/v1/visitors/U1/tags", json={"tags": {"vip_level": 9}}, headers=auth(token))
        error_of(r, 401)


async def test_an_admin_never_sees_or_changes_another_apps_things(node: Node) -> None:
    mine, theirs = await node.create_app("mine"), await node.create_app("theirs")
    mine_admin = await node.login(mine, mine.admin_email)
    their_rule = await rule(node, theirs, "secret routing")
    their_agent = await node.add_agent(theirs)
    await node.http.post("/api/v1/groups", json={"name": "their-team"}, headers=auth(theirs.api_key))
    await node.visitor(theirs, "shared-user-id")

    for token in (mine_admin, mine.api_key):
        h = auth(token)
        assert (await node.http.get("/api/v1/routing/rules", headers=h)).json() == {"items": []}
        error_of(
            await node.http.put(f"/api/v1/routing/rules/{their_rule['id']}", json={"name": "mine now"}, headers=h), 404
        )
        error_of(await node.http.delete(f"/api/v1/routing/rules/{their_rule['id']}", headers=h), 404)
        agents = (await node.http.get("/api/v1/agents", headers=h)).json()["items"]
        assert their_agent["agent_id"] not in {a["agent_id"] for a in agents}
        error_of(await node.http.get(f"/api/v1/agents/{their_agent['agent_id']}", headers=h), 404, "agent_not_found")
        error_of(await node.http.put(f"/api/v1/agents/{their_agent['agent_id']}", json={"level": 9}, headers=h), 404)
        groups = (await node.http.get("/api/v1/groups", headers=h)).json()["items"]
        assert [g["name"] for g in groups] == ["default"]
        error_of(await node.http.get(f"/api/v1/apps/{theirs.app_id}", headers=h), 404, "app_not_found")
        error_of(await node.http.put(f"/api/v1/apps/{theirs.app_id}", json={"bot_threshold": 0.1}, headers=h), 404)
        error_of(
            await node.http.post(
                "/api/v1/routing/rules", json={"name": "x", "match": VIP, "group": "their-team"}, headers=h
            ),
            404,
            "group_not_found",
        )
    r = await node.http.put("/api/v1/visitors/shared-user-id/tags", json={"tags": {}}, headers=auth(mine.api_key))
    error_of(r, 404)
    assert (await names_in_order(node, theirs)) == [("secret routing", 1)]


async def test_agents_and_groups(node: Node) -> None:
    app = await node.create_app()
    key = auth(app.api_key)
    r = await node.http.post("/api/v1/groups", json={"name": "vip", "description": "VIP 客户"}, headers=key)
    assert r.status_code == 201 and r.json()["name"] == "vip"
    error_of(await node.http.post("/api/v1/groups", json={"name": "vip"}, headers=key), 409, "already_exists")
    error_of(await node.http.post("/api/v1/groups", json={"name": ""}, headers=key), 422)

    body = {
        "email": "li@example.com",
        "password": "long-enough-1",
        "name": "小李",
        "groups": ["vip", "presales"],
        "level": 2,
        "max_concurrent": 4,
    }
    r = await node.http.post("/api/v1/agents", json=body, headers=key)
    assert r.status_code == 201, r.text
    li = r.json()
    assert {k: li[k] for k in ("email", "name", "groups", "level", "max_concurrent", "role", "status", "load")} == {
        "email": "li@example.com",
        "name": "小李",
        "groups": ["presales", "vip"],
        "level": 2,
        "max_concurrent": 4,
        "role": "agent",
        "status": "offline",
        "load": 0,
    }
    assert "password" not in r.text and "password_hash" not in r.text
    error_of(await node.http.post("/api/v1/agents", json=body, headers=key), 409, "already_exists")
    error_of(
        await node.http.post(
            "/api/v1/agents", json=body | {"email": "x@example.com", "max_concurrent": 0}, headers=key
        ),
        422,
    )
    error_of(await node.http.post("/api/v1/agents", json=body | {"email": "not-an-email"}, headers=key), 400)
    error_of(
        await node.http.post("/api/v1/agents", json=body | {"email": "y@example.com", "role": "root"}, headers=key), 422
    )

    r = await node.http.put(
        f"/api/v1/agents/{li['agent_id']}", json={"level": 3, "groups": ["vip"], "max_concurrent": 2}, headers=key
    )
    assert r.status_code == 200, r.text
    assert (r.json()["level"], r.json()["groups"], r.json()["max_concurrent"]) == (3, ["vip"], 2)
    groups = {g["name"]: g["agent_count"] for g in (await node.http.get("/api/v1/groups", headers=key)).json()["items"]}
    assert groups == {"default": 1, "presales": 0, "vip": 1}
    listed = (await node.http.get("/api/v1/agents", headers=key)).json()["items"]
    assert {a["email"] for a in listed} == {app.admin_email, "li@example.com"}

    # The new password works; the last admin cannot be demoted.
    r = await node.http.put(f"/api/v1/agents/{li['agent_id']}", json={"password": "another-pass-2"}, headers=key)
    assert r.status_code == 200
    login = await node.http.post(
        "/api/v1/auth/login", json={"app_id": app.app_id, "email": "li@example.com", "password": "another-pass-2"}
    )
    assert login.status_code == 200
    error_of(await node.http.put(f"/api/v1/agents/{app.admin_id}", json={"role": "agent"}, headers=key), 409)
    error_of(await node.http.put("/api/v1/agents/ag_nope", json={"level": 1}, headers=key), 404, "agent_not_found")


async def test_app_settings_never_show_the_secret(node: Node) -> None:
    app = await node.create_app("商城")
    key = auth(app.api_key)
    r = await node.http.get(f"/api/v1/apps/{app.app_id}", headers=key)
    assert r.status_code == 200
    assert r.json() == {
        "app_id": app.app_id,
        "name": "商城",
        "created_at": r.json()["created_at"],
        "bot_threshold": 0.7,
        "require_identity": True,
        "allowed_origins": [],
        "rate_limits": effective_limits({}),
    }
    assert app.secret not in r.text and "secret" not in r.json()

    change = {"bot_threshold": 0.8, "require_identity": False, "allowed_origins": ["https://shop.example.com/"]}
    r = await node.http.put(f"/api/v1/apps/{app.app_id}", json=change, headers=key)
    assert r.status_code == 200, r.text
    assert (r.json()["bot_threshold"], r.json()["require_identity"], r.json()["allowed_origins"]) == (
        0.8,
        False,
        ["https://shop.example.com"],
    )
    r = await node.http.put(f"/api/v1/apps/{app.app_id}", json={"bot_threshold": 0.75}, headers=key)
    assert (r.json()["bot_threshold"], r.json()["require_identity"]) == (0.75, False)  # the rest stays
    # require_identity off: a user_id without user_hash is accepted.
    ok = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id, "user_id": "U9"})
    assert ok.status_code == 200, ok.text

    error_of(await node.http.put(f"/api/v1/apps/{app.app_id}", json={"bot_threshold": 2}, headers=key), 422)
    error_of(
        await node.http.put(
            f"/api/v1/apps/{app.app_id}", json={"allowed_origins": ["javascript:alert(1)"]}, headers=key
        ),
        400,
    )
    error_of(await node.http.put(f"/api/v1/apps/{app.app_id}", json={"secret": "mine"}, headers=key), 422)
    error_of(await node.http.get("/api/v1/apps/app_nope", headers=key), 404)


async def test_visitor_tags_endpoint_validates_its_body(node: Node) -> None:
    app = await node.create_app()
    await node.visitor(app, "U1")
    key = auth(app.api_key)
    error_of(await node.http.put("/api/v1/visitors/U1/tags", json={"tags": [1]}, headers=key), 422)
    error_of(await node.http.put("/api/v1/visitors/U1/tags", json={}, headers=key), 422)
    error_of(await node.http.put("/api/v1/visitors/U1/tags", json={"tags": {"x": "y" * 20000}}, headers=key), 400)


async def test_openapi_documents_the_admin_endpoints(node: Node) -> None:
    spec = (await node.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for path, methods in {
        "/api/v1/routing/rules": {"get", "post"},
        "/api/v1/routing/rules/{rule_id}": {"put", "delete"},
        "/api/v1/agents": {"get", "post"},
        "/api/v1/agents/{agent_id}": {"get", "put"},
        "/api/v1/groups": {"get", "post"},
        "/api/v1/apps/{app_id}": {"get", "put"},
        "/api/v1/visitors/{user_id}/tags": {"put"},
    }.items():
        assert methods <= set(paths[path]), path
    assert "RuleCreateIn" in spec["components"]["schemas"] and "RuleOut" in spec["components"]["schemas"]
