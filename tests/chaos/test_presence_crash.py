"""A crashed node's agents disappear: the other nodes stop hearing it, wait out the grace period, and
requeue its agents' chats, which the agents still connected elsewhere take."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.chaos.test_node_crash import Peer, cluster
from tests.helpers import PASSWORD

pytestmark = pytest.mark.redis


async def test_a_crashed_nodes_agent_goes_offline_and_its_chat_moves_to_an_agent_elsewhere(tmp_path: Path) -> None:
    async with cluster(tmp_path, presence_grace_s="2") as (nodes, _url):
        nodes.cli("migrate")
        app = nodes.cli("app", "create", "crash", "--admin-email", "boss@example.com", "--admin-password", PASSWORD)
        for email in ("doomed@example.com", "survivor@example.com"):
            nodes.cli("agent", "add", "--app", app["app_id"], "--email", email, "--password", PASSWORD)
        a, b = await nodes.start(2)
        dead: set[int] = set()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{a}/api/v1", trust_env=False) as http:
            tokens = {}
            for email in ("doomed@example.com", "survivor@example.com"):
                body = {"app_id": app["app_id"], "email": email, "password": PASSWORD}
                tokens[email] = (await http.post("/auth/login", json=body)).json()["token"]
            visitor_token = (await http.post("/visitor/session", json={"app_id": app["app_id"]})).json()["token"]

        doomed = Peer("agent", tokens["doomed@example.com"], [b], 0, dead)  # on node B only
        await doomed.connect()
        await doomed.send({"type": "set_status", "status": "online"})
        visitor = Peer("visitor", visitor_token, [a], 0, dead)
        await visitor.connect()
        await visitor.send({"type": "open_chat"})
        while (frame := await asyncio.wait_for(visitor.frames.get(), 10))["status"] != "active":
            pass
        sid = frame["session_id"]
        while (frame := await asyncio.wait_for(doomed.frames.get(), 10))["type"] != "assigned":
            pass
        assert frame["session_id"] == sid

        survivor = Peer("agent", tokens["survivor@example.com"], [a], 0, dead)  # on node A
        await survivor.connect()
        await survivor.send({"type": "set_status", "status": "online"})

        dead.add(b)
        nodes.kill(b)  # no goodbye: node A learns it only from the silence
        await doomed.close()

        async def assigned_to_survivor() -> dict[str, object]:
            while (got := await survivor.frames.get())["type"] != "assigned":
                pass
            return got

        moved = await asyncio.wait_for(assigned_to_survivor(), 60)  # 15 s of silence + 2 s of grace, with room
        assert moved["session_id"] == sid
        while (frame := await asyncio.wait_for(visitor.frames.get(), 10))["status"] != "active":
            pass
        assert frame["agent"]["name"] == "survivor"
        async with httpx.AsyncClient(trust_env=False) as http:
            status = (await http.get(f"http://127.0.0.1:{a}/api/v1/status", params={"app_id": app["app_id"]})).json()
        assert status["status"] == "online"
        for peer in (visitor, survivor):
            await peer.close()
