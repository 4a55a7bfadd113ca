"""Chaos: two `kefu serve` nodes on the test's own Redis and PostgreSQL, with abuse limits on. Mid-traffic Redis
is killed, then PostgreSQL is stopped, and each comes back.

Through the Redis outage every send is still acked (the limits count on each node); through the database
outage sends are refused as `unavailable` and sent again; live delivery across the nodes is back within
5 s of each return; no acked message is lost or stored twice; the logs hold no unhandled exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.chaos.servers import OwnPostgres, OwnRedis, missing_programs
from tests.chaos.test_node_crash import Cluster, Peer, open_human_chats
from tests.helpers import PASSWORD, user_hash

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=str(missing_programs()))
VISITORS = 8
SEND_EVERY_S = 1.1  # each visitor: under the default 60 messages a minute a sender
LIVE_AGAIN_WITHIN_S = 5.0
OUTAGE_S = 4.0


class Traffic:
    """Visitors (on both nodes) and their agents (one a node) talking until stopped; every ack is kept."""

    def __init__(self, pairs: list[tuple[Peer, Peer, str]]) -> None:
        self.pairs = pairs
        self.acked: list[tuple[float, dict[str, Any]]] = []  # (when, ack)
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._talk(i, v, a, sid)) for i, (v, a, sid) in enumerate(self.pairs)]

    async def _talk(self, i: int, visitor: Peer, agent: Peer, sid: str) -> None:
        n = 0
        while not self.stopping.is_set():
            self.acked.append((time.monotonic(), await visitor.text(sid, f"visitor {i} #{n} 你好")))
            if n % 3 == i % 3:
                self.acked.append((time.monotonic(), await agent.text(sid, f"agent {i} #{n} 收到")))
            n += 1
            with contextlib.suppress(TimeoutError):  # pacing: a sender stays under its abuse limit
                await asyncio.wait_for(self.stopping.wait(), SEND_EVERY_S)

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks), 30)

    def acked_between(self, start: float, end: float) -> int:
        return sum(start <= when <= end for when, _ in self.acked)


async def live_again(visitor: Peer, agent: Peer, sid: str) -> None:
    """Until a message sent now reaches the agent on the other node within a second."""
    while True:
        seq = (await visitor.text(sid, "probe"))["seq"]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(agent.until(lambda seq=seq: seq in agent.seen.get(sid, [])), 1.0)
            return


async def outage(down: Callable[[], None], up: Callable[[], None], probe: Callable[[], Awaitable[None]]) -> float:
    """Take a server down for OUTAGE_S of traffic, bring it back; seconds until live delivery works again."""
    await asyncio.to_thread(down)  # pg_ctl waits for the server: off the loop, so the clients go on meanwhile
    await asyncio.sleep(OUTAGE_S)  # the outage's length: traffic goes on meanwhile
    await asyncio.to_thread(up)
    back = time.monotonic()
    await asyncio.wait_for(probe(), 30)
    return time.monotonic() - back


async def test_redis_killed_and_postgres_stopped_mid_traffic_lose_nothing(tmp_path: Path) -> None:
    with OwnRedis() as redis, OwnPostgres() as pg:
        nodes = Cluster(pg.url, redis.url, tmp_path, rate_limits="on")
        peers: list[Peer] = []
        try:
            admin_email = "boss@example.com"
            app = nodes.cli("app", "create", "faults", "--admin-email", admin_email, "--admin-password", PASSWORD)
            emails = ["a0@example.com", "a1@example.com"]
            ports = await nodes.start(2)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}/api/v1", trust_env=False) as http:

                async def login(email: str) -> str:
                    body = {"app_id": app["app_id"], "email": email, "password": PASSWORD}
                    return str((await http.post("/auth/login", json=body)).json()["token"])

                admin = {"Authorization": f"Bearer {await login(admin_email)}"}
                for email in emails:
                    body = {"email": email, "password": PASSWORD, "max_concurrent": VISITORS}
                    assert (await http.post("/agents", json=body, headers=admin)).status_code == 201
                agent_tokens = [await login(email) for email in emails]
                visitor_tokens = []
                for i in range(VISITORS):
                    body = {"app_id": app["app_id"], "user_id": f"u{i}", "user_hash": user_hash(app["secret"], f"u{i}")}
                    visitor_tokens.append((await http.post("/visitor/session", json=body)).json()["token"])

            # One agent a node; the first half of the visitors on node 0, the rest on node 1.
            agents = [Peer("agent", token, [port], 0, set()) for token, port in zip(agent_tokens, ports, strict=True)]
            visitors = [Peer("visitor", t, [ports[i * 2 // VISITORS]], 0, set()) for i, t in enumerate(visitor_tokens)]
            peers = [*agents, *visitors]
            owner: dict[str, Peer] = {}
            sessions = await open_human_chats(agents, visitors)
            async with asyncio.timeout(30):
                while len(owner) < VISITORS:
                    for agent in agents:
                        with contextlib.suppress(asyncio.QueueEmpty):
                            if (frame := agent.frames.get_nowait())["type"] == "assigned":
                                owner[frame["session_id"]] = agent
                    await asyncio.sleep(0.05)  # polling two queues; each frame is put there by a reader task
            pairs = [(v, owner[sid], sid) for v, sid in zip(visitors, sessions, strict=True)]
            across = next((v, a, sid) for v, a, sid in pairs if v.ports != a.ports)

            traffic = Traffic(pairs)
            traffic.start()
            await asyncio.sleep(2)  # traffic before the first fault

            redis_killed = time.monotonic()
            redis_back_in = await outage(redis.kill, redis.start, lambda: live_again(*across))
            redis_back = time.monotonic() - redis_back_in
            await asyncio.sleep(2)
            pg_back_in = await outage(pg.stop, pg.start, lambda: live_again(*across))
            await asyncio.sleep(2)
            await traffic.stop()

            # Through the Redis outage, with limits on: sends were acked, none refused.
            assert traffic.acked_between(redis_killed + 1, redis_back - 1) >= VISITORS, "sends stopped without Redis"
            refused = sum((p.refused for p in peers), start=Counter[str]())
            assert set(refused) <= {"unavailable"}, refused  # only the database outage refused sends
            assert refused["unavailable"] > 0, "the database outage refused nothing: was it down?"
            assert redis_back_in <= LIVE_AGAIN_WITHIN_S, f"live delivery back {redis_back_in:.1f} s after Redis"
            assert pg_back_in <= LIVE_AGAIN_WITHIN_S, f"live delivery back {pg_back_in:.1f} s after PostgreSQL"

            # The archive: every acked message exactly once, every conversation 1..n without a gap.
            acked = [ack for _, ack in traffic.acked]
            conn = await asyncpg.connect(pg.url)
            try:
                rows = await conn.fetch("SELECT session_id, seq, message_id, client_msg_id FROM messages")
            finally:
                await conn.close()
            stored = {r["message_id"] for r in rows}
            assert {a["message_id"] for a in acked} <= stored, "an acked message is missing"
            assert len({r["client_msg_id"] for r in rows}) == len(rows), "a message was stored twice"
            per_session: dict[str, list[int]] = {}
            for r in rows:
                per_session.setdefault(r["session_id"], []).append(r["seq"])
            assert all(sorted(seqs) == list(range(1, len(seqs) + 1)) for seqs in per_session.values())

            # Every client: each message of its conversations once, in seq order (after a final sync).
            for peer in peers:
                for sid in peer.seen:
                    await peer.send({"type": "sync", "session_id": sid, "after_seq": peer.last(sid)})
            async with asyncio.timeout(30):
                for visitor, agent, sid in pairs:
                    want = list(range(1, len(per_session[sid]) + 1))
                    for peer in (visitor, agent):
                        await peer.until(lambda peer=peer, sid=sid, want=want: peer.has(sid) == want)
            assert sum(p.repeats for p in peers) == 0
        finally:
            for peer in peers:
                await peer.close()
            nodes.stop_all()

        # The logs: outages in a few lines each, no unhandled exception.
        logs = "".join((tmp_path / f"node-{port}.log").read_text() for port in ports)
        for phrase in ("Exception in ASGI application", "never retrieved", "unhandled error", "connection failed"):
            assert phrase not in logs, logs[-5000:]
        errors = [line for line in logs.splitlines() if " ERROR " in line]
        assert all("is unreachable" in line for line in errors), errors
        record = ""
        for line in logs.splitlines():
            if re.match(r"\d{4}-\d\d-\d\d ", line):
                record = line
            elif line.startswith("Traceback"):
                assert "is unreachable" in record, f"a traceback that is not an outage's first failure: {record}"
        print(
            f"faults: {len(acked)} acked, 0 lost, 0 repeated; {refused['unavailable']} sends refused as unavailable;"
            f" live again {redis_back_in:.1f} s after Redis, {pg_back_in:.1f} s after PostgreSQL"
        )
