"""A node whose PostgreSQL (the test's own server, stopped and started at will) goes away and comes back.

Clients learn it as `unavailable` with `retry_after` (HTTP 503 + Retry-After; an `error` frame; a new
socket closes with 1013) instead of `internal_error` or a dropped socket; the node logs the outage in a
few lines instead of a traceback per request; once the database is back a retried send is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.chaos.servers import OwnPostgres, missing_programs
from tests.helpers import Client, Node, running_node

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=str(missing_programs()))
SENDS_DURING_OUTAGE = 100


@pytest.fixture
async def pg_node() -> AsyncIterator[tuple[OwnPostgres, Node]]:
    with OwnPostgres() as pg:
        async with running_node(pg.url) as node:
            yield pg, node


async def test_a_database_outage_is_unavailable_to_clients_and_a_few_lines_in_the_log(
    pg_node: tuple[OwnPostgres, Node], caplog: pytest.LogCaptureFixture
) -> None:
    pg, node = pg_node
    app = await node.create_app()
    visitor = await node.visitor(app, "v1")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.text(sid, "before")
    later_token = await node.visitor_token(app, "v2")

    caplog.clear()
    with caplog.at_level(logging.INFO):
        pg.stop()
        # An open socket: each send is refused as `unavailable`, with its ref and a pause; the socket stays.
        for i in range(SENDS_DURING_OUTAGE):
            await visitor.send(
                "send", ref=f"r{i}", session_id=sid, client_msg_id=f"c{i}", msg_type="text", content=f"m{i}"
            )
            err = await visitor.expect("error", ref=f"r{i}")
            assert (err["code"], err["retry_after"]) == ("unavailable", 2), err
        await visitor.ping()

        # HTTP: 503, the contract's error shape, Retry-After.
        r = await node.http.get("/api/v1/status", params={"app_id": app.app_id})
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "unavailable"
        assert r.headers["Retry-After"] == "2"

        # A socket opened now: an `unavailable` frame, then "try again later" (1013), not a dropped connection.
        async with websockets.connect(f"{node.ws_base}/ws/visitor?token={later_token}", close_timeout=2) as ws:
            frame = await ws.recv()
            assert '"code":"unavailable"' in str(frame)
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013

        pg.start()
        ack = await _send_until_acked(visitor, sid, "c0")  # the same client_msg_id: stored once
        await visitor.text(sid, "after")

    assert ack["seq"] == 2
    conn = await asyncpg.connect(pg.url)
    try:
        stored = await conn.fetch("SELECT content FROM messages WHERE session_id = $1 ORDER BY seq", sid)
    finally:
        await conn.close()
    assert [row["content"] for row in stored] == ["before", "m0", "after"]

    unhandled = [r for r in caplog.records if "Exception in ASGI application" in r.getMessage()]
    assert not unhandled, "a socket or request failed with an unhandled exception"
    kefu_lines = [r for r in caplog.records if r.name.startswith("kefu") and r.levelno >= logging.WARNING]
    assert len(kefu_lines) <= 5, [r.getMessage() for r in kefu_lines]  # not a traceback per failed send
    assert sum(r.exc_info is not None for r in kefu_lines) == 1, "one traceback: the outage's first failure"
    assert any("is reachable again" in r.getMessage() for r in kefu_lines)


async def _send_until_acked(client: Client, sid: str, cmid: str) -> dict[str, Any]:
    """Resend under one client_msg_id while the node still answers `unavailable` (its pool reconnecting)."""
    for attempt in range(20):
        ref = f"retry{attempt}"
        await client.send("send", ref=ref, session_id=sid, client_msg_id=cmid, msg_type="text", content="m0")
        ack = await client.find("ack", ref=ref, timeout=1)
        if ack is not None:
            return ack
        err = await client.expect("error", ref=ref)
        assert err["code"] == "unavailable", err
    raise AssertionError("no ack once the database was back")
