"""Chaos: three `kefu serve` processes on one PostgreSQL and Redis, 50 conversations exchanging messages,
one node killed with SIGKILL mid-run. Its clients reconnect to the other nodes and `sync`; nothing acked is
lost or stored twice, and every client sees every message of its conversations once, in seq order."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import REDIS_URL, fresh_pg_database
from tests.helpers import PASSWORD, user_hash

pytestmark = pytest.mark.redis
KEFU = [sys.executable, "-m", "kefu"]
CONVERSATIONS = 50
AGENTS = 5
VISITOR_MESSAGES = 8
AGENT_MESSAGES = 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """Real `kefu serve` processes sharing one database and Redis."""

    def __init__(self, db: str, redis: str, workdir: Path, **settings: str) -> None:
        self.env = {
            **os.environ,
            "KEFU_DB": db,
            "KEFU_REDIS": redis,
            "KEFU_RATE_LIMITS": "off",
            "KEFU_LOG_LEVEL": "warning",
            **{f"KEFU_{name.upper()}": value for name, value in settings.items()},
        }
        self.workdir = workdir
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def cli(self, *args: str) -> dict[str, Any]:
        out = subprocess.run(
            [*KEFU, *args], env=self.env, cwd=self.workdir, capture_output=True, check=True, timeout=120
        )
        return dict(json.loads(out.stdout))

    async def start(self, count: int, ports: list[int] | None = None) -> list[int]:
        """Start `count` nodes on free ports (or on `ports`: a killed node coming back), once they answer /healthz."""
        ports = ports or [free_port() for _ in range(count)]
        for port in ports:
            log = open(self.workdir / f"node-{port}.log", "ab")  # noqa: SIM115 - closed with the process
            self.procs[port] = subprocess.Popen(
                [*KEFU, "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        async with httpx.AsyncClient(trust_env=False) as http:
            for port in ports:
                async with asyncio.timeout(60):
                    while True:
                        with contextlib.suppress(httpx.HTTPError):
                            if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                                break
                        assert self.procs[port].poll() is None, (self.workdir / f"node-{port}.log").read_text()
                        await asyncio.sleep(0.1)  # waiting for a process to listen: there is no event to wait on
        return ports

    def kill(self, port: int) -> None:
        os.killpg(self.procs[port].pid, signal.SIGKILL)
        self.procs[port].wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(15)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


class Peer:
    """A client that survives its node: it reconnects to another one and syncs from the last seq it saw."""

    def __init__(self, kind: str, token: str, ports: list[int], first: int, dead: set[int]) -> None:
        self.kind, self.token, self.ports, self.index, self.dead = kind, token, ports, first, dead
        self.ws: Any = None
        self.seen: dict[str, list[int]] = {}  # session_id -> seqs delivered, in arrival order, after de-duplication
        self.repeats = 0  # frames of a seq already seen (a server sending something twice)
        # After a reconnect, live messages may come before the replay of the client's `sync`: like the SDK, hold a
        # conversation's messages from the sync request until its `synced`, then take them in seq order.
        self.resyncing: dict[str, list[int]] = {}
        self.acks: dict[str, asyncio.Future[dict[str, Any]]] = {}  # ref -> its ack, or the error refusing it
        self.refused: Counter[str] = Counter()  # sends refused, by error code (each was sent again)
        # The client's own messages, known from their acks: the sending socket gets no copy (protocol §3).
        self.own: dict[str, set[int]] = {}
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reconnects = 0
        self._reader: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.changed = asyncio.Event()  # set whenever a message is recorded

    async def connect(self) -> dict[str, Any]:
        while True:
            port = self.ports[self.index % len(self.ports)]
            if port in self.dead:
                self.index += 1
                continue
            try:
                self.ws = await websockets.connect(
                    f"ws://127.0.0.1:{port}/ws/{self.kind}?token={self.token}", open_timeout=5, close_timeout=1
                )
                ready = orjson.loads(await asyncio.wait_for(self.ws.recv(), 10))
                assert ready["type"] == "ready"
                break
            except (OSError, ConnectionClosed, TimeoutError):
                self.index += 1
                await asyncio.sleep(0.05)  # backing off before the next node
        for sid in self.seen:  # everything missed while away, from the database
            self.resyncing[sid] = []
            await self.ws.send(orjson.dumps({"type": "sync", "session_id": sid, "after_seq": self.last(sid)}).decode())
        self._reader = asyncio.get_running_loop().create_task(self._read())
        self.connected.set()
        return dict(ready)

    async def until(self, condition: Any) -> None:
        """Wait until condition() holds, re-checking each time a message is recorded."""
        while not condition():
            self.changed.clear()
            await self.changed.wait()

    def record(self, sid: str, seq: int) -> None:
        if seq <= self.last(sid):
            self.repeats += 1
        else:
            self.seen.setdefault(sid, []).append(seq)
            self.changed.set()

    def has(self, sid: str) -> list[int]:
        """Every seq of the conversation the client holds: delivered, or its own from the ack."""
        return sorted(set(self.seen.get(sid, [])) | self.own.get(sid, set()))

    def last(self, sid: str) -> int:
        return self.seen[sid][-1] if self.seen.get(sid) else 0

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = orjson.loads(raw)
                if frame["type"] == "message":
                    if (held := self.resyncing.get(frame["session_id"])) is not None:
                        held.append(frame["seq"])
                    else:
                        self.record(frame["session_id"], frame["seq"])
                elif frame["type"] == "synced" and (held := self.resyncing.pop(frame["session_id"], None)) is not None:
                    for seq in sorted(held):
                        self.record(frame["session_id"], seq)
                elif frame["type"] in ("ack", "error") and (fut := self.acks.pop(frame.get("ref"), None)):
                    if frame["type"] == "ack":
                        self.own.setdefault(frame["session_id"], set()).add(frame["seq"])
                        self.changed.set()
                    if not fut.done():
                        fut.set_result(frame)
                elif frame["type"] in ("assigned", "conversation"):
                    self.seen.setdefault(frame["session_id"], [])
                    await self.frames.put(frame)
        except ConnectionClosed:
            pass
        self.connected.clear()
        self.reconnects += 1
        await self.connect()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.connected.wait()
        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(orjson.dumps(frame).decode())

    async def text(self, sid: str, content: str) -> dict[str, Any]:
        """Send until acked, always under the same client_msg_id (a retry after a crash is not a new message)."""
        cmid = uuid.uuid4().hex
        while True:
            ref = uuid.uuid4().hex
            fut = self.acks[ref] = asyncio.get_running_loop().create_future()
            await self.send(
                {
                    "type": "send",
                    "ref": ref,
                    "session_id": sid,
                    "client_msg_id": cmid,
                    "msg_type": "text",
                    "content": content,
                }
            )
            with contextlib.suppress(TimeoutError):
                answer = await asyncio.wait_for(fut, 3)
                if answer["type"] == "ack":
                    return dict(answer)
                self.refused[answer["code"]] += 1
                await asyncio.sleep(min(answer.get("retry_after", 1), 2))  # a client's pause before trying again

    async def close(self) -> None:
        if self._reader:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()


async def open_human_chats(agents: list[Peer], visitors: list[Peer], timeout: float = 10) -> list[str]:
    """Agents connect and go online; each visitor connects, opens a chat and asks for a person: the chats' ids."""
    for agent in agents:
        await agent.connect()
        await agent.send({"type": "set_status", "status": "online"})
    sessions: list[str] = []
    for visitor in visitors:
        await visitor.connect()
        await visitor.send({"type": "open_chat"})
        while (frame := await asyncio.wait_for(visitor.frames.get(), timeout))["type"] != "conversation":
            pass
        sessions.append(frame["session_id"])
        if frame["status"] == "bot":
            await visitor.send({"type": "request_human", "session_id": frame["session_id"]})
    return sessions


@contextlib.asynccontextmanager
async def cluster(tmp_path: Path, **settings: str) -> AsyncIterator[tuple[Cluster, str]]:
    assert REDIS_URL is not None
    async with fresh_pg_database() as url:
        nodes = Cluster(url, REDIS_URL, tmp_path, **settings)
        try:
            yield nodes, url
        finally:
            nodes.stop_all()


async def test_a_node_killed_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    async with cluster(tmp_path) as (nodes, url):
        nodes.cli("migrate")
        app = nodes.cli("app", "create", "chaos", "--admin-email", "boss@example.com", "--admin-password", PASSWORD)
        emails = [f"agent{i}@example.com" for i in range(AGENTS)]
        for email in emails:
            nodes.cli(
                "agent",
                "add",
                "--app",
                app["app_id"],
                "--email",
                email,
                "--password",
                PASSWORD,
                "--max-concurrent",
                str(CONVERSATIONS // AGENTS),
            )
        ports = await nodes.start(3)
        dead: set[int] = set()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}/api/v1", trust_env=False) as http:
            agent_tokens = []
            for email in emails:
                r = await http.post("/auth/login", json={"app_id": app["app_id"], "email": email, "password": PASSWORD})
                agent_tokens.append(r.json()["token"])
            visitor_tokens = []
            for i in range(CONVERSATIONS):
                uid = f"C{i}"
                body = {"app_id": app["app_id"], "user_id": uid, "user_hash": user_hash(app["secret"], uid)}
                visitor_tokens.append((await http.post("/visitor/session", json=body)).json()["token"])

        agents = [Peer("agent", t, ports, i, dead) for i, t in enumerate(agent_tokens)]
        visitors = [Peer("visitor", t, ports, i, dead) for i, t in enumerate(visitor_tokens)]
        try:
            sessions = await open_human_chats(agents, visitors)
            owner: dict[str, Peer] = {}
            all_assigned = asyncio.Event()

            async def collect(agent: Peer) -> None:
                while True:
                    frame = await agent.frames.get()
                    if frame["type"] == "assigned":
                        owner[frame["session_id"]] = agent
                        if len(owner) == CONVERSATIONS:
                            all_assigned.set()

            collectors = [asyncio.get_running_loop().create_task(collect(agent)) for agent in agents]
            await asyncio.wait_for(all_assigned.wait(), 90)
            for collector in collectors:
                collector.cancel()

            acked: list[dict[str, Any]] = []
            halfway = asyncio.Event()
            total = (VISITOR_MESSAGES + AGENT_MESSAGES) * CONVERSATIONS

            def record(ack: dict[str, Any]) -> None:
                acked.append(ack)
                if len(acked) >= total // 2:
                    halfway.set()

            async def talk(visitor: Peer, sid: str) -> None:
                agent = owner[sid]
                for i in range(VISITOR_MESSAGES):
                    record(await visitor.text(sid, f"visitor {sid} #{i} 你好"))
                    if i % 2 == 1:
                        record(await agent.text(sid, f"agent {sid} #{i // 2} 收到"))

            async def crash_midway() -> None:
                await asyncio.wait_for(halfway.wait(), 180)
                dead.add(ports[1])
                nodes.kill(ports[1])

            await asyncio.wait_for(
                asyncio.gather(crash_midway(), *(talk(v, sid) for v, sid in zip(visitors, sessions, strict=True))), 300
            )
            assert len(acked) == total

            # The database: every acked message exactly once, every conversation 1..n without a gap.
            conn = await asyncpg.connect(url)
            try:
                rows = await conn.fetch("SELECT session_id, seq, message_id FROM messages ORDER BY session_id, seq")
            finally:
                await conn.close()
            stored = {r["message_id"] for r in rows}
            assert {a["message_id"] for a in acked} <= stored
            assert len(rows) == len(stored) == total
            per_session: dict[str, list[int]] = {}
            for r in rows:
                per_session.setdefault(r["session_id"], []).append(r["seq"])
            assert all(seqs == list(range(1, len(seqs) + 1)) for seqs in per_session.values())

            # Every client: every message of its conversations, once, in seq order (after a final sync).
            for peer in [*visitors, *agents]:
                for sid in peer.seen:
                    await peer.send({"type": "sync", "session_id": sid, "after_seq": peer.last(sid)})
            async with asyncio.timeout(90):
                for peer, sid in [*zip(visitors, sessions, strict=True), *((a, s) for s, a in owner.items())]:
                    want = list(range(1, len(per_session[sid]) + 1))
                    await peer.until(lambda peer=peer, sid=sid, want=want: peer.has(sid) == want)
            moved = sum(p.reconnects for p in [*visitors, *agents])
            assert moved > 0, "the killed node held no client"
            assert sum(p.repeats for p in [*visitors, *agents]) == 0
            print(f"chaos: {total} messages acked and stored once; {moved} clients moved nodes; 0 lost, 0 repeated")
        finally:
            for peer in [*visitors, *agents]:
                await peer.close()
