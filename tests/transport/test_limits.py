"""Abuse limits on a node that has them on (the other tests run with KEFU_RATE_LIMITS=off)."""

from __future__ import annotations

import asyncio

import httpx

from tests.helpers import PASSWORD, running_node


async def test_a_login_burst_from_one_address_is_throttled_and_the_owner_still_signs_in_elsewhere(
    sqlite_url: str,
) -> None:
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        body = {"app_id": app.app_id, "email": app.admin_email, "password": "not-the-password"}
        statuses = []
        for _ in range(10):  # 1,000 attempts, 100 at a time
            burst = [node.http.post("/api/v1/auth/login", json=body) for _ in range(100)]
            statuses += [r.status_code for r in await asyncio.gather(*burst)]
        assert statuses.count(401) <= 20 and statuses.count(429) >= 980
        assert set(statuses) == {401, 429}
        throttled = await node.http.post("/api/v1/auth/login", json=body)
        assert throttled.json()["error"]["code"] == "rate_limited"
        assert int(throttled.headers["Retry-After"]) >= 1
        right = {**body, "password": PASSWORD}
        assert (await node.http.post("/api/v1/auth/login", json=right)).status_code == 429  # this address waits
        elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.port}", transport=elsewhere) as other:
            r = await other.post("/api/v1/auth/login", json=right)
            assert r.status_code == 200, r.text


async def test_repeated_failures_lock_the_account_from_that_address_only(sqlite_url: str) -> None:
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        wrong = {"app_id": app.app_id, "email": app.admin_email, "password": "nope-nope"}
        codes = [(await node.http.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        right = {**wrong, "password": PASSWORD}
        assert (await node.http.post("/api/v1/auth/login", json=right)).status_code == 429


async def test_a_visitor_flooding_messages_is_told_to_wait_and_nothing_extra_is_stored(sqlite_url: str) -> None:
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        visitor = await node.visitor(app)
        sid = (await visitor.open_chat())["session_id"]
        for i in range(60):
            await visitor.send("send", ref=f"r{i}", session_id=sid, client_msg_id=f"c{i}", msg_type="text", content="x")
        await visitor.send("send", ref="over", session_id=sid, client_msg_id="over", msg_type="text", content="x")
        err = await visitor.expect("error", ref="over")
        assert err["code"] == "rate_limited" and err["retry_after"] >= 1
        acks = [await visitor.expect("ack", ref=f"r{i}") for i in range(60)]
        assert sorted(a["seq"] for a in acks) == list(range(1, 61))
        await visitor.ping()  # the socket stays open


async def test_visitor_sessions_per_address_are_limited(sqlite_url: str) -> None:
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        results = await asyncio.gather(
            *(node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id}) for _ in range(65))
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [200] * 60 + [429] * 5
