"""Abuse limits set per app (`rate_limits` in its settings), and limits that hold across nodes sharing Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from kefu.services.limits import APP_LIMITS
from tests.conftest import PG_URL, REDIS_URL, fresh_pg_database
from tests.helpers import App, Node, running_node


def api(app: App) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.api_key}"}


async def test_an_app_sets_its_own_limits_and_others_keep_the_defaults(sqlite_url: str) -> None:
    async with running_node(sqlite_url, rate_limits="on") as node:
        strict, relaxed = await node.create_app("strict"), await node.create_app("relaxed")
        shown = (await node.http.get(f"/api/v1/apps/{strict.app_id}", headers=api(strict))).json()["rate_limits"]
        assert set(shown) == set(APP_LIMITS) and shown["messages_per_sender_per_minute"] == 60

        r = await node.http.put(
            f"/api/v1/apps/{strict.app_id}",
            json={"rate_limits": {"messages_per_sender_per_minute": 3}},
            headers=api(strict),
        )
        assert r.status_code == 200, r.text
        assert r.json()["rate_limits"]["messages_per_sender_per_minute"] == 3
        assert r.json()["rate_limits"]["uploads_per_uploader_per_hour"] == 100, "the others stay"

        for app, allowed in ((strict, 3), (relaxed, 10)):
            visitor = await node.visitor(app)
            sid = (await visitor.open_chat())["session_id"]
            for i in range(allowed):
                await visitor.text(sid, f"消息 {i}")
            await visitor.send("send", ref="over", session_id=sid, client_msg_id="over", msg_type="text", content="x")
            if app is strict:
                err = await visitor.expect("error", ref="over")
                assert err["code"] == "rate_limited" and err["retry_after"] >= 1
            else:
                await visitor.expect("ack", ref="over")


@pytest.mark.parametrize(
    "limits",
    [
        {"no_such_limit": 3},
        {"messages_per_sender_per_minute": 0},
        {"messages_per_sender_per_minute": "lots"},
        {"messages_per_sender_per_minute": 10**9},
        ["messages_per_sender_per_minute"],
    ],
)
async def test_bad_limit_settings_are_refused_and_change_nothing(sqlite_url: str, limits: object) -> None:
    async with running_node(sqlite_url) as node:
        app = await node.create_app()
        before = (await node.http.get(f"/api/v1/apps/{app.app_id}", headers=api(app))).json()
        r = await node.http.put(f"/api/v1/apps/{app.app_id}", json={"rate_limits": limits}, headers=api(app))
        assert r.status_code in (400, 422) and r.json()["error"]["code"], r.text
        after = (await node.http.get(f"/api/v1/apps/{app.app_id}", headers=api(app))).json()
        assert after == before


@pytest.mark.redis
async def test_limits_hold_across_nodes_sharing_redis() -> None:
    """A login burst spread over two nodes is counted once: the per-address limit (20 a minute) holds in total."""
    assert PG_URL and REDIS_URL
    async with fresh_pg_database() as url, contextlib.AsyncExitStack() as stack:
        nodes: list[Node] = [
            await stack.enter_async_context(running_node(url, rate_limits="on", redis=REDIS_URL)) for _ in range(2)
        ]
        app = await nodes[0].create_app()  # a new app: counters are per app, so earlier runs do not count here
        body = {"app_id": app.app_id, "email": "nobody@example.com", "password": "x"}
        burst = [nodes[i % 2].http.post("/api/v1/auth/login", json=body) for i in range(60)]
        codes = [r.status_code for r in await asyncio.gather(*burst)]
        assert codes.count(401) == 20 and codes.count(429) == 40, codes
