"""Abuse limits on a node that has them on (the other tests run with KEFU_RATE_LIMITS=off).

The limits count in fixed windows (a minute, a quarter of an hour, an hour). Each node here runs on a FakeClock
standing at the start of an hour, so no window ends in the middle of a test however slow the machine, every
Retry-After is exact, and moving the clock past a window shows the limit lifting.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx

from kefu.domain.clock import FakeClock
from tests.helpers import PASSWORD, running_node
from tests.security.reporting import report

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # the start of every window (minute, quarter hour, hour)


async def test_a_login_burst_from_one_address_is_throttled_and_the_owner_still_signs_in_elsewhere(
    sqlite_url: str,
) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock, rate_limits="on") as node:
        app = await node.create_app()
        body = {"app_id": app.app_id, "email": app.admin_email, "password": "not-the-password"}
        statuses = []
        for _ in range(10):  # 1,000 attempts, 100 at a time
            burst = [node.http.post("/api/v1/auth/login", json=body) for _ in range(100)]
            statuses += [r.status_code for r in await asyncio.gather(*burst)]
        # 20 a minute from one address; of those, the first 5 failures lock the account there (a burst may check a
        # few more before their failures count, never more than the 20).
        assert 5 <= statuses.count(401) <= 20 and statuses.count(429) == 1000 - statuses.count(401)
        throttled = await node.http.post("/api/v1/auth/login", json=body)
        assert throttled.json()["error"]["code"] == "rate_limited"
        assert throttled.headers["Retry-After"] == "60"  # the minute's window ends in 60 s
        right = {**body, "password": PASSWORD}
        assert (await node.http.post("/api/v1/auth/login", json=right)).status_code == 429  # this address waits
        elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{node.port}", transport=elsewhere) as other:
            r = await other.post("/api/v1/auth/login", json=right)
            assert r.status_code == 200, r.text
    report(
        f"login burst: 1,000 attempts from one address, {statuses.count(401)} checked, {statuses.count(429)} throttled"
        " (429); the right password then worked from another address"
    )


async def test_repeated_failures_lock_the_account_from_that_address_only(sqlite_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock, rate_limits="on") as node:
        app = await node.create_app()
        wrong = {"app_id": app.app_id, "email": app.admin_email, "password": "nope-nope"}
        codes = [(await node.http.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(6)]
        assert codes == [401] * 5 + [429]
        right = {**wrong, "password": PASSWORD}
        locked = await node.http.post("/api/v1/auth/login", json=right)
        assert locked.status_code == 429 and locked.headers["Retry-After"] == "900"
        clock.advance(899)
        assert (await node.http.post("/api/v1/auth/login", json=right)).status_code == 429
        clock.advance(1)  # the quarter hour is over: the lock with it
        assert (await node.http.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_a_thousand_wrong_passwords_from_many_addresses_do_not_lock_the_owner_out(sqlite_url: str) -> None:
    """Issue 20: 50 failures from anywhere locked the account everywhere for the rest of the hour. Now they start
    growing delays for addresses the account never signed in from; the owner's own address is not held up."""
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        right = {"app_id": app.app_id, "email": app.admin_email, "password": PASSWORD}
        wrong = {**right, "password": "not-the-password"}
        base = f"http://127.0.0.1:{node.port}"
        allowance = {"rate_limits": {"failed_logins_per_account_per_hour": 10}}  # fewer slow password checks
        headers = {"Authorization": f"Bearer {app.api_key}"}
        assert (await node.http.put(f"/api/v1/apps/{app.app_id}", json=allowance, headers=headers)).status_code == 200

        def client(address: str) -> httpx.AsyncClient:
            transport = httpx.AsyncHTTPTransport(local_address=address)
            return httpx.AsyncClient(base_url=base, transport=transport, timeout=60)

        async with client("127.0.0.200") as owner:
            assert (await owner.post("/api/v1/auth/login", json=right)).status_code == 200  # the owner's usual place

            async def attacker(n: int) -> list[int]:
                async with client(f"127.0.1.{n}") as c:
                    return [(await c.post("/api/v1/auth/login", json=wrong)).status_code for _ in range(20)]

            statuses = []
            for wave in range(10):  # 50 addresses, 5 at a time, 20 attempts each
                for codes in await asyncio.gather(*(attacker(n) for n in range(wave * 5 + 1, wave * 5 + 6))):
                    statuses += codes
            assert len(statuses) == 1000 and set(statuses) == {401, 429}
            # The allowance of 10, the attempts already past the check when it ran out, then a guess per delay.
            assert statuses.count(401) <= 25

            r = await owner.post("/api/v1/auth/login", json=right)
            assert r.status_code == 200, r.text
        async with client("127.0.0.201") as new_place:  # a new address waits out the delay, minutes not the hour
            r = await new_place.post("/api/v1/auth/login", json=right)
            assert r.status_code == 429 and 1 <= int(r.headers["Retry-After"]) <= 300, r.text
    report(
        f"spread-out guessing: 1,000 wrong passwords from 50 addresses, {statuses.count(401)} checked; the owner"
        " still signed in from a known address at once, a new address was asked to wait at most 5 minutes"
    )


async def test_a_visitor_flooding_messages_is_told_to_wait_and_nothing_extra_is_stored(sqlite_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock, rate_limits="on") as node:
        app = await node.create_app()
        visitor = await node.visitor(app)
        sid = (await visitor.open_chat())["session_id"]
        for i in range(60):
            await visitor.send("send", ref=f"r{i}", session_id=sid, client_msg_id=f"c{i}", msg_type="text", content="x")
        await visitor.send("send", ref="over", session_id=sid, client_msg_id="over", msg_type="text", content="x")
        err = await visitor.expect("error", ref="over")
        assert err["code"] == "rate_limited" and err["retry_after"] == 60
        acks = [await visitor.expect("ack", ref=f"r{i}") for i in range(60)]
        assert sorted(a["seq"] for a in acks) == list(range(1, 61))
        await visitor.ping()  # the socket stays open
        clock.advance(60)  # the next minute: the visitor may send again
        assert (await visitor.text(sid, "again", cmid="again"))["seq"] == 61


async def test_visitor_sessions_per_address_are_limited(sqlite_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock, rate_limits="on") as node:
        app = await node.create_app()
        results = await asyncio.gather(
            *(node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id}) for _ in range(65))
        )
        codes = sorted(r.status_code for r in results)
        assert codes == [200] * 60 + [429] * 5
        assert {r.headers["Retry-After"] for r in results if r.status_code == 429} == {"60"}
        clock.advance(60)
        assert (await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id})).status_code == 200


async def test_uploads_per_uploader_are_limited_and_a_refused_one_keeps_nothing(
    sqlite_url: str, tmp_path: Path
) -> None:
    upload_dir = tmp_path / "uploads"
    clock = FakeClock(T0)
    async with running_node(sqlite_url, clock=clock, rate_limits="on", upload_dir=str(upload_dir)) as node:
        app = await node.create_app()

        async def upload(token: str, i: int) -> httpx.Response:
            files = {"file": (f"note-{i}.txt", f"note {i}".encode(), "text/plain")}
            return await node.http.post("/api/v1/uploads", files=files, headers={"Authorization": f"Bearer {token}"})

        visitor = await node.visitor_token(app)
        codes = []
        for start in range(0, 100, 20):  # the hour's 100, 20 at a time
            codes += [
                r.status_code for r in await asyncio.gather(*(upload(visitor, i) for i in range(start, start + 20)))
            ]
        assert codes == [201] * 100
        kept = stored_files(upload_dir)
        over = await upload(visitor, 100)
        assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limited", over.text
        assert over.headers["Retry-After"] == "3600"
        assert stored_files(upload_dir) == kept  # the refused file was not written
        assert (await upload(await node.visitor_token(app), 101)).status_code == 201  # another uploader is not held up
        clock.advance(3600)  # the next hour: this uploader may upload again
        assert (await upload(visitor, 102)).status_code == 201


def stored_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


async def test_typing_and_read_floods_reach_the_other_side_once_and_chats_per_visitor_are_limited(
    sqlite_url: str,
) -> None:
    """Issue 20: one visitor opened 200 chats and sent 3,000 typing frames, each passed to the agents."""
    async with running_node(sqlite_url, rate_limits="on") as node:
        app = await node.create_app()
        headers = {"Authorization": f"Bearer {app.api_key}"}
        limits = {"rate_limits": {"chats_per_visitor_per_hour": 3}}
        assert (await node.http.put(f"/api/v1/apps/{app.app_id}", json=limits, headers=headers)).status_code == 200
        agent = await node.agent(app, app.admin_email)
        visitor = await node.visitor(app)
        sid = (await visitor.open_chat())["session_id"]
        await agent.expect("assigned", session_id=sid)
        ack = await visitor.text(sid, "hello")
        for _ in range(300):
            await visitor.send("typing", session_id=sid)
            await visitor.send("read", session_id=sid, seq=ack["seq"])
        await visitor.ping()  # every frame above was handled
        await agent.ping()  # and whatever they published reached the agent's socket before this pong
        got = [f["type"] for f in agent.seen if f.get("type") in ("typing", "read")]
        assert sorted(got) == ["read", "typing"], got
        await visitor.text(sid, "one more")
        await visitor.send("typing", session_id=sid)  # a message ends the typing: the next one goes out at once
        assert (await agent.expect("typing", session_id=sid))["sender"] == "user"

        await visitor.open_chat()
        await visitor.open_chat()
        await visitor.send("open_chat", ref="4th")
        refused = await visitor.expect("error", ref="4th")
        assert refused["code"] == "rate_limited" and refused["retry_after"] >= 1
        await visitor.ping()
