"""Signed webhooks: registration, SSRF refusal, and at-least-once delivery in order across a receiver outage
and a kefu restart, checked by a real HTTP receiver on this machine."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from typing import Any

import orjson
import uvicorn

from tests.helpers import Node, running_node

EVENTS = ["conversation.created", "message.created", "conversation.closed"]


class Receiver:
    """An HTTP server that records every delivery; it can be down (nothing listening) and come back."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.received: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        self.received.append(
            {
                "headers": headers,
                "body": orjson.loads(body),
                "signed": hmac.compare_digest(expected, headers.get("x-kefu-signature", "")),
            }
        )
        self.changed.set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    @contextlib.asynccontextmanager
    async def up(self) -> AsyncIterator[None]:
        server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", interface="asgi3")
        )
        task = asyncio.get_running_loop().create_task(server.serve())
        try:
            yield
        finally:
            server.should_exit = True
            await task

    async def wait_for(self, count: int, timeout: float = 20) -> None:
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self.changed.clear()
                await self.changed.wait()


async def register(node: Node, token: str, url: str, secret: str | None = None) -> Any:
    body: dict[str, Any] = {"url": url, "events": EVENTS}
    if secret:
        body["secret"] = secret
    return await node.http.post("/api/v1/webhooks", json=body, headers={"Authorization": f"Bearer {token}"})


async def test_webhook_urls_on_private_addresses_are_refused_by_default(db_url: str) -> None:
    async with running_node(db_url) as node:
        app = await node.create_app()
        for url in ("http://127.0.0.1:9/hook", "http://10.1.2.3/x", "http://[::1]/x", "ftp://example.com/x"):
            r = await register(node, app.api_key, url)
            assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", (url, r.text)
        r = await node.http.post(
            "/api/v1/webhooks",
            json={"url": "https://example.com/x", "events": ["nope"]},
            headers={"Authorization": f"Bearer {app.api_key}"},
        )
        assert r.status_code == 400
        assert (await node.http.get("/api/v1/webhooks", headers={"Authorization": f"Bearer {app.api_key}"})).json() == {
            "items": []
        }


async def test_deliveries_survive_an_outage_and_a_restart_exactly_once_in_order(sqlite_url: str) -> None:
    secret = "whsec_test_secret_0123456789"
    receiver = Receiver(secret)
    settings = {"webhook_allow_private": True, "webhook_max_backoff": 1.0}
    async with running_node(sqlite_url, **settings) as node:
        app = await node.create_app()
        r = await register(node, app.api_key, receiver.url, secret)
        assert r.status_code == 201, r.text
        hook = r.json()
        assert hook["secret"] == secret and hook["events"] == sorted(EVENTS)
        visitor = await node.visitor(app, "U-hook")
        sid = (await visitor.open_chat())["session_id"]
        for i in range(5):
            await visitor.text(sid, f"第{i}条 message {i}")
        await visitor.send("close", session_id=sid)
        await visitor.expect("conversation", session_id=sid, status="closed")
        log = await node.http.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers={"Authorization": f"Bearer {app.api_key}"}
        )
        assert {d["status"] for d in log.json()["items"]} == {"pending"}  # the receiver is down
    # kefu restarts while the receiver is still down: nothing committed may be lost.
    async with running_node(sqlite_url, **settings) as node, receiver.up():
        await receiver.wait_for(7)
        more = await node.http.get(
            f"/api/v1/webhooks/{hook['id']}/deliveries", headers={"Authorization": f"Bearer {app.api_key}"}
        )
        async with asyncio.timeout(10):
            while {d["status"] for d in more.json()["items"]} != {"delivered"}:
                await asyncio.sleep(0.1)  # polling the public delivery log, as an integrator would
                more = await node.http.get(
                    f"/api/v1/webhooks/{hook['id']}/deliveries", headers={"Authorization": f"Bearer {app.api_key}"}
                )
    bodies = [d["body"] for d in receiver.received]
    ids = [b["delivery_id"] for b in bodies]
    assert len(ids) == len(set(ids)) == 7, ids  # exactly once per delivery id
    assert [b["event"] for b in bodies] == ["conversation.created"] + ["message.created"] * 5 + ["conversation.closed"]
    assert [b["data"]["seq"] for b in bodies if b["event"] == "message.created"] == [1, 2, 3, 4, 5]
    assert all(d["signed"] for d in receiver.received)
    first = receiver.received[0]
    assert first["headers"]["x-kefu-event"] == "conversation.created"
    assert first["headers"]["x-kefu-delivery"] == bodies[0]["delivery_id"]
    assert {"delivery_id", "event", "created_at", "app_id", "data"} == bodies[0].keys()
    assert bodies[0]["data"]["session_id"] == sid and bodies[0]["app_id"] == app.app_id
    assert all(d["attempts"] >= 1 and d["delivered_at"] for d in more.json()["items"])
