"""Idle and unauthenticated sockets: closed with a documented code, at once or after the idle timeout.

The node runs with a short `ws_idle_timeout_s`; tests wait on the socket's close (with a timeout), never sleep.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from kefu.transport.ws import connection
from tests.helpers import Client, Node, running_node

IDLE_S = 1.5
DOCS = Path(__file__).parents[2] / "docs" / "api.md"
# Closed by the WebSocket layer (uvicorn), not by kefu's code: invalid UTF-8, over 1 MiB, shutdown.
LAYER_CODES = {1007, 1009, 1012}


def documented_close_codes() -> set[int]:
    """The codes in the close-code table of docs/api.md's WebSocket section."""
    section = DOCS.read_text().split("## WebSocket", 1)[1].split("\n## ", 1)[0]
    return {int(code) for code in re.findall(r"^\| (\d{4}) \|", section, re.MULTILINE)}


async def closed_with(conn: ClientConnection, within: float) -> int:
    """The code the server closed `conn` with, waiting at most `within` seconds for it."""
    async with asyncio.timeout(within):
        await conn.wait_closed()
    assert conn.close_code is not None
    return conn.close_code


def test_every_close_code_kefu_uses_is_documented() -> None:
    used = {value for name, value in vars(connection).items() if name.startswith("CLOSE_")} | LAYER_CODES
    assert used <= documented_close_codes(), used - documented_close_codes()


@pytest.mark.parametrize("kind", ["visitor", "agent"])
async def test_a_socket_whose_first_frame_never_comes_is_closed_4408(db_url: str, kind: str) -> None:
    async with running_node(db_url, ws_idle_timeout_s=IDLE_S) as node:
        client = await _client(node, kind)  # the upgrade is done and `ready` has come; the client says nothing
        started = time.monotonic()
        assert await closed_with(client.conn, IDLE_S * 20) == connection.CLOSE_IDLE
        assert time.monotonic() - started >= IDLE_S * 0.8
        assert client.conn.close_reason and "ping" in client.conn.close_reason


async def test_pings_keep_a_socket_open_and_server_frames_do_not(db_url: str) -> None:
    """The timer counts the client's frames only: a visitor that just listens is closed, one that pings is not."""
    async with running_node(db_url, ws_idle_timeout_s=IDLE_S) as node:
        app = await node.create_app()
        info = await node.add_agent(app)
        agent = await node.agent(app, info["email"])
        listener = await node.visitor(app, "U1")
        sid = (await listener.open_chat())["session_id"]
        await agent.expect("assigned", session_id=sid)
        pinger = await node.visitor(app, "U2")
        started = time.monotonic()
        while time.monotonic() - started < IDLE_S * 4:
            await agent.text(sid, "still there?")  # the listener gets a message frame each round, and sends nothing
            await pinger.ping()
            await agent.drain(IDLE_S / 4)  # paces the rounds: waits for frames, which do not come
        assert await closed_with(listener.conn, IDLE_S * 20) == connection.CLOSE_IDLE
        for client in (pinger, agent):  # four idle periods on pings (or sends) alone
            await client.ping()
            assert client.conn.close_code is None


@pytest.mark.parametrize(
    ("kind", "token"),
    [
        ("visitor", None),
        ("visitor", ""),
        ("visitor", "garbage"),
        ("visitor", "agent-token"),
        ("agent", "visitor-token"),
        ("agent", "eyJhbGciOiJIUzI1NiJ9.e30.AAAA"),
    ],
)
async def test_a_socket_without_a_valid_token_is_closed_4401_at_once(db_url: str, kind: str, token: str | None) -> None:
    async with running_node(db_url, ws_idle_timeout_s=60) as node:
        app = await node.create_app()
        if token == "agent-token":
            token = await node.login(app, app.admin_email)
        elif token == "visitor-token":
            token = await node.visitor_token(app)
        query = "" if token is None else f"?token={token}"
        async with websockets.connect(f"{node.ws_base}/ws/{kind}{query}", close_timeout=2) as ws:
            frame = orjson.loads(await ws.recv())
            assert frame["type"] == "error" and frame["code"] == "unauthorized" and frame["message"]
            # Well inside the idle timeout: the close comes from the refused token.
            assert await closed_with(ws, 5) == connection.CLOSE_UNAUTHORIZED


async def _client(node: Node, kind: str) -> Client:
    app = await node.create_app()
    if kind == "visitor":
        return await node.visitor(app, "U1")
    return await node.agent(app, app.admin_email, online=False)
