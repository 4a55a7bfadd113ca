"""Test helpers: a kefu node on a real socket, and WebSocket/HTTP clients that wait on frames, never sleep."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import uvicorn
import websockets
from websockets.asyncio.client import ClientConnection

from kefu.app import create_app
from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.pubsub import PubSub
from kefu.services.container import Services
from kefu.storage.migrate import migrate

FRAME_TIMEOUT = 10.0
PASSWORD = "test-Passw0rd!"


def user_hash(secret: str, user_id: str) -> str:
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


class Client:
    """A WebSocket client that keeps every frame; `expect` takes the first match and leaves the rest."""

    def __init__(self, conn: ClientConnection, label: str) -> None:
        self.conn, self.label = conn, label
        self.backlog: list[dict[str, Any]] = []
        self.seen: list[dict[str, Any]] = []
        self.ready: dict[str, Any] = {}

    async def send(self, type_: str, **fields: Any) -> dict[str, Any]:
        frame = {"type": type_, **fields}
        await self.conn.send(orjson.dumps(frame).decode())
        return frame

    async def send_raw(self, data: str | bytes) -> None:
        await self.conn.send(data)

    async def _next(self, deadline: float) -> dict[str, Any] | None:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            raw = await asyncio.wait_for(self.conn.recv(), remaining)
        except TimeoutError:
            return None
        frame = orjson.loads(raw)
        self.seen.append(frame)
        return frame  # type: ignore[no-any-return]

    async def find(
        self,
        type_: str,
        timeout: float = FRAME_TIMEOUT,
        where: Callable[[dict[str, Any]], bool] | None = None,
        **eq: Any,
    ) -> dict[str, Any] | None:
        def match(f: dict[str, Any]) -> bool:
            return f.get("type") == type_ and eq.items() <= f.items() and (where is None or where(f))

        for i, frame in enumerate(self.backlog):
            if match(frame):
                return self.backlog.pop(i)
        deadline = time.monotonic() + timeout
        while (frame := await self._next(deadline)) is not None:
            if match(frame):
                return frame
            self.backlog.append(frame)
        return None

    async def expect(
        self,
        type_: str,
        timeout: float = FRAME_TIMEOUT,
        where: Callable[[dict[str, Any]], bool] | None = None,
        **eq: Any,
    ) -> dict[str, Any]:
        frame = await self.find(type_, timeout, where, **eq)
        if frame is None:
            pending = [f.get("type") for f in self.backlog[-10:]]
            raise AssertionError(f"{self.label}: no {type_} {eq} within {timeout}s; pending {pending}")
        return frame

    async def drain(self, within: float = 0.3) -> list[dict[str, Any]]:
        """Everything that arrives in the next `within` seconds (to assert that nothing more comes)."""
        deadline = time.monotonic() + within
        got = []
        while (frame := await self._next(deadline)) is not None:
            self.backlog.append(frame)
            got.append(frame)
        return got

    async def ping(self) -> None:
        await self.send("ping")
        await self.expect("pong")

    async def text(
        self, session_id: str, content: str, ref: str | None = None, cmid: str | None = None
    ) -> dict[str, Any]:
        """Send a text message; its ack."""
        ref = ref or uuid.uuid4().hex
        await self.send(
            "send",
            ref=ref,
            session_id=session_id,
            client_msg_id=cmid or uuid.uuid4().hex,
            msg_type="text",
            content=content,
        )
        return await self.expect("ack", ref=ref)

    async def open_chat(self, **fields: Any) -> dict[str, Any]:
        await self.send("open_chat", **fields)
        return await self.expect("conversation")

    async def close(self) -> None:
        await self.conn.close()


@dataclass
class App:
    app_id: str
    secret: str
    api_key: str
    admin_id: str
    admin_email: str


@dataclass
class Node:
    """One running kefu node and shortcuts to drive it as a client would."""

    settings: Settings
    services: Services
    port: int
    http: httpx.AsyncClient
    clients: list[Client] = field(default_factory=list)

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def create_app(self, name: str = "shop") -> App:
        email = f"admin-{uuid.uuid4().hex[:6]}@example.com"
        created = await self.services.admin.create_app(name, email, PASSWORD)
        return App(created.app_id, created.secret, created.api_key, created.admin_id, email)

    async def add_agent(self, app: App, email: str | None = None, **kw: Any) -> dict[str, Any]:
        email = email or f"agent-{uuid.uuid4().hex[:6]}@example.com"
        agent = await self.services.admin.add_agent(app.app_id, email, PASSWORD, **kw)
        return {"agent_id": agent.agent_id, "email": email}

    async def login(self, app: App, email: str) -> str:
        r = await self.http.post(
            "/api/v1/auth/login", json={"app_id": app.app_id, "email": email, "password": PASSWORD}
        )
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    async def visitor_token(self, app: App, user_id: str | None = None, **fields: Any) -> str:
        body: dict[str, Any] = {"app_id": app.app_id, **fields}
        if user_id is not None:
            body |= {"user_id": user_id, "user_hash": user_hash(app.secret, user_id)}
        r = await self.http.post("/api/v1/visitor/session", json=body)
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    async def connect(self, kind: str, token: str, label: str | None = None) -> Client:
        # No keepalive pings: tests wait on frames with their own timeouts, and on a busy machine a ping answered
        # late would close the socket (1011) in the middle of a test that is only slow.
        conn = await websockets.connect(
            f"{self.ws_base}/ws/{kind}?token={token}",
            max_size=None,
            compression=None,
            close_timeout=2,
            ping_interval=None,
        )
        client = Client(conn, label or kind)
        client.ready = await client.expect("ready")
        self.clients.append(client)
        return client

    async def visitor(self, app: App, user_id: str | None = None, **fields: Any) -> Client:
        return await self.connect("visitor", await self.visitor_token(app, user_id, **fields), f"visitor {user_id}")

    async def agent(self, app: App, email: str, online: bool = True) -> Client:
        client = await self.connect("agent", await self.login(app, email), f"agent {email}")
        if online:
            await client.send("set_status", status="online")
            await client.ping()
        return client


@contextlib.asynccontextmanager
async def running_node(
    db_url: str, clock: Clock | None = None, pubsub: PubSub | None = None, **overrides: Any
) -> AsyncIterator[Node]:
    """A kefu node served by uvicorn on a free local port, stopped (and its sockets closed) on exit.

    Nodes given the same `pubsub` share it, as nodes on one Redis would; `overrides` are Settings fields.
    """
    # A test's questions wait for the app's first index however busy the machine (a node's default hands off).
    settings = Settings(**{"db": db_url, "rate_limits": "off", "bot_first_answer_wait_s": 300, **overrides})
    app = create_app(settings, clock=clock, pubsub=pubsub)
    await migrate(app.state.services.db)  # before any test shortcut writes; the node migrates again, idempotently
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)  # clients may connect at once: the kernel queues them until uvicorn is up
    port = int(listener.getsockname()[1])
    config = uvicorn.Config(
        app,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=1024 * 1024,
        ws_ping_interval=None,  # as the clients: no keepalive pings in tests (kefu's own idle timeout still holds)
        lifespan="on",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[listener]))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
        node = Node(settings, app.state.services, port, http)
        try:
            yield node
        finally:
            await asyncio.gather(*(client.close() for client in node.clients), return_exceptions=True)
            server.should_exit = True
            await asyncio.wait_for(task, 30)
            listener.close()
