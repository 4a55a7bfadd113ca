"""Soak under faults: two `kefu serve` nodes on their own Redis and PostgreSQL, steady chat traffic, and a random
fault every `--fault-every` seconds: a node killed (SIGKILL, back after 5 s), Redis killed (back after 5 s) or
PostgreSQL restarted (`pg_ctl stop -m fast` then `start`).

Each pair (a visitor and the agent routing gave it) sends in turn at `--rate / --pairs` messages a second; a send is
retried under its client_msg_id until acked, as the SDK does (after a timeout, or after `retry_after` when refused).
The abuse limits are on (the app allows 1,000 messages a sender a minute, above this traffic). At the end every
client syncs, and the archive is checked: sent, acked, lost (acked but not stored, or stored twice), repeated
(delivered twice to a client), and the longest stall (the longest a send waited for its ack, and the longest time
no ack arrived at all). Not a CI test: it runs for minutes. Prints JSON.

    .venv/bin/python bench/soak.py --minutes 10 --rate 150 --pairs 50 --json /tmp/soak.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the fault harness lives with the chaos tests

from tests.chaos.servers import OwnPostgres, OwnRedis, missing_programs
from tests.chaos.test_node_crash import Cluster, Peer
from tests.helpers import PASSWORD, user_hash

AGENTS = 10
BACK_AFTER_S = 5.0


class Soak:
    def __init__(self, args: argparse.Namespace, redis: OwnRedis, pg: OwnPostgres, workdir: Path) -> None:
        self.args, self.redis, self.pg = args, redis, pg
        self.nodes = Cluster(pg.url, redis.url, workdir, rate_limits="on")
        self.ports: list[int] = []
        self.dead: set[int] = set()
        self.peers: list[Peer] = []
        self.pairs: list[tuple[Peer, Peer, str]] = []
        self.sent = 0
        self.acked: list[dict[str, Any]] = []
        self.ack_times: list[float] = []
        self.longest_wait = 0.0
        self.faults: list[dict[str, Any]] = []
        self.stopping = asyncio.Event()
        self.rng = random.Random(args.seed)
        self.t0 = 0.0
        self.load_at_start = 0.0

    async def setup(self) -> None:
        email = "boss@example.com"
        app = self.nodes.cli("app", "create", "soak", "--admin-email", email, "--admin-password", PASSWORD)
        self.ports = await self.nodes.start(2)
        base = f"http://127.0.0.1:{self.ports[0]}/api/v1"
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=60) as http:

            async def login(who: str) -> str:
                body = {"app_id": app["app_id"], "email": who, "password": PASSWORD}
                return str((await http.post("/auth/login", json=body)).json()["token"])

            admin = {"Authorization": f"Bearer {await login(email)}"}
            limits = {"rate_limits": {"messages_per_sender_per_minute": 1000}}
            assert (await http.put(f"/apps/{app['app_id']}", json=limits, headers=admin)).status_code == 200
            emails = [f"agent{i}@example.com" for i in range(AGENTS)]
            per_agent = -(-self.args.pairs // AGENTS)
            for who in emails:
                body = {"email": who, "password": PASSWORD, "max_concurrent": per_agent}
                assert (await http.post("/agents", json=body, headers=admin)).status_code == 201
            agent_tokens = [await login(who) for who in emails]
            visitor_tokens = []
            for i in range(self.args.pairs):
                body = {"app_id": app["app_id"], "user_id": f"s{i}", "user_hash": user_hash(app["secret"], f"s{i}")}
                visitor_tokens.append((await http.post("/visitor/session", json=body)).json()["token"])

        agents = [Peer("agent", t, self.ports, i, self.dead) for i, t in enumerate(agent_tokens)]
        visitors = [Peer("visitor", t, self.ports, i + 1, self.dead) for i, t in enumerate(visitor_tokens)]
        self.peers = [*agents, *visitors]
        for agent in agents:
            await agent.connect()
            await agent.send({"type": "set_status", "status": "online"})
        sessions = []
        for visitor in visitors:
            await visitor.connect()
            await visitor.send({"type": "open_chat"})
            while (frame := await asyncio.wait_for(visitor.frames.get(), 30))["type"] != "conversation":
                pass
            sessions.append(frame["session_id"])
            if frame["status"] == "bot":
                await visitor.send({"type": "request_human", "session_id": frame["session_id"]})
        owner: dict[str, Peer] = {}
        async with asyncio.timeout(120):
            while len(owner) < len(sessions):
                for agent in agents:
                    with contextlib.suppress(asyncio.QueueEmpty):
                        if (frame := agent.frames.get_nowait())["type"] == "assigned":
                            owner[frame["session_id"]] = agent
                await asyncio.sleep(0.05)  # polling the agents' queues, each filled by its reader task
        self.pairs = [(v, owner[sid], sid) for v, sid in zip(visitors, sessions, strict=True)]

    async def send(self, peer: Peer, sid: str, text: str) -> None:
        self.sent += 1
        started = time.monotonic()
        ack = await peer.text(sid, text)
        now = time.monotonic()
        self.longest_wait = max(self.longest_wait, now - started)
        self.acked.append(ack)
        self.ack_times.append(now)

    async def talk(self, index: int, visitor: Peer, agent: Peer, sid: str) -> None:
        interval = self.args.pairs / self.args.rate
        await asyncio.sleep(self.rng.random() * interval)  # spread the pairs over the interval
        n = 0
        while not self.stopping.is_set():
            slot = time.monotonic() + interval
            peer = visitor if n % 2 == 0 else agent
            await self.send(peer, sid, f"{'visitor' if peer is visitor else 'agent'} {index} #{n} 你好 hello")
            n += 1
            with contextlib.suppress(TimeoutError):  # the next slot, or at once when a fault made this one late
                await asyncio.wait_for(self.stopping.wait(), max(0.0, slot - time.monotonic()))

    async def fault(self) -> None:
        kind = self.rng.choice(["node", "redis", "postgres"])
        started = time.monotonic()
        if kind == "node":
            port = self.rng.choice(self.ports)
            self.dead.add(port)
            self.nodes.kill(port)
            await asyncio.sleep(BACK_AFTER_S)  # the fault's length
            await self.nodes.start(1, [port])
            self.dead.discard(port)
        elif kind == "redis":
            self.redis.kill()
            await asyncio.sleep(BACK_AFTER_S)
            self.redis.start()
        else:
            await asyncio.to_thread(self.pg.stop)
            await asyncio.to_thread(self.pg.start)
        down_s = round(time.monotonic() - started, 1)
        self.faults.append({"kind": kind, "at_s": round(started - self.t0, 1), "down_s": down_s})
        print(f"fault {len(self.faults)}: {kind} at {started - self.t0:.0f} s, {self.sent} sent", file=sys.stderr)

    async def run(self) -> dict[str, Any]:
        await self.setup()
        self.t0 = time.monotonic()
        self.load_at_start = round(os.getloadavg()[0], 2)  # the machine is shared: say how busy it was
        talkers = [asyncio.create_task(self.talk(i, *pair)) for i, pair in enumerate(self.pairs)]
        end = self.t0 + self.args.minutes * 60
        for k in itertools.count(1):  # a fault at every multiple of --fault-every, none in the last 10 s
            at = self.t0 + k * self.args.fault_every
            if at > end - 10:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))  # the fault schedule
            await self.fault()
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*talkers), 120)
        return await self.check()

    async def check(self) -> dict[str, Any]:
        conn = await asyncpg.connect(self.pg.url)
        try:
            rows = await conn.fetch("SELECT session_id, seq, message_id, client_msg_id FROM messages")
        finally:
            await conn.close()
        stored = Counter(r["message_id"] for r in rows)
        per_cmid = Counter(r["client_msg_id"] for r in rows)
        per_session: dict[str, list[int]] = {}
        for r in rows:
            per_session.setdefault(r["session_id"], []).append(r["seq"])
        lost = sum(1 for a in self.acked if stored[a["message_id"]] != 1)
        stored_twice = sum(n - 1 for n in per_cmid.values() if n > 1)
        gaps = sum(1 for seqs in per_session.values() if sorted(seqs) != list(range(1, len(seqs) + 1)))

        for peer in self.peers:  # every client catches up; then each must hold every message once
            for sid in peer.seen:
                await peer.send({"type": "sync", "session_id": sid, "after_seq": peer.last(sid)})
        missing = 0
        for visitor, agent, sid in self.pairs:
            want = list(range(1, len(per_session.get(sid, [])) + 1))
            for peer in (visitor, agent):
                try:
                    await asyncio.wait_for(peer.until(lambda p=peer, s=sid, w=want: p.seen.get(s) == w), 30)
                except TimeoutError:
                    missing += 1
        times = sorted([self.t0, *self.ack_times])
        return {
            "minutes": self.args.minutes,
            "rate": self.args.rate,
            "pairs": self.args.pairs,
            "faults": self.faults,
            "sent": self.sent,
            "acked": len(self.acked),
            "lost": lost,
            "stored_twice": stored_twice,
            "repeated": sum(p.repeats for p in self.peers) + stored_twice,
            "conversations_with_gaps": gaps,
            "clients_missing_messages": missing,
            "refused": dict(sum((p.refused for p in self.peers), start=Counter[str]())),
            "reconnects": sum(p.reconnects for p in self.peers),
            "longest_send_wait_s": round(self.longest_wait, 2),
            "longest_no_ack_s": round(max(b - a for a, b in itertools.pairwise(times)), 2),
            "achieved_per_s": round(len(self.acked) / (self.args.minutes * 60), 1),
            "loadavg_1m_start_end": [self.load_at_start, round(os.getloadavg()[0], 2)],
        }

    async def close(self) -> None:
        for peer in self.peers:
            await peer.close()
        self.nodes.stop_all()


def read_logs(workdir: Path, keep: Path | None) -> str:
    """The nodes' logs, together (and copied to `keep` when given)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        for log in workdir.glob("node-*.log"):
            shutil.copy(log, keep / log.name)
    return "".join(log.read_text(errors="replace") for log in workdir.glob("node-*.log"))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=150.0, help="messages a second in all")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--fault-every", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--logs", type=Path, help="keep the nodes' logs in this directory")
    args = parser.parse_args()
    if (why := missing_programs()) is not None:
        sys.exit(f"soak: {why}")
    with OwnRedis() as redis, OwnPostgres() as pg, tempfile.TemporaryDirectory(prefix="kefu-soak-") as workdir:
        soak = Soak(args, redis, pg, Path(workdir))
        try:
            figures = await soak.run()
        finally:
            await soak.close()
        logs = await asyncio.to_thread(read_logs, Path(workdir), args.logs)
        figures["log_lines"] = logs.count("\n")
        figures["unhandled_exceptions"] = sum(
            logs.count(phrase) for phrase in ("Exception in ASGI application", "never retrieved", "unhandled error")
        )
    print(json.dumps(figures, ensure_ascii=False, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
