"""Open-loop chat load generator (asyncio + websockets) for kefu and the relay baseline.

Opens `--pairs` visitor/agent socket pairs, then sends `--rate` messages/s in total for
`--duration` s, round-robin over the pairs and alternating direction, on a fixed schedule that
does not wait for replies (a slow server cannot lower the offered load). Each message carries
its *scheduled* send time (`t=<perf_counter_ns>`), so latency includes any queueing behind a
late send. Prints one JSON object with the results. Usually started by `bench/run.py`.

Several nodes: `--base` takes comma-separated URLs (kefu only). Visitor i connects to node i % N
and agent i to node (i + 1) % N. Routing picks the agent, so after assignment a visitor that
shares a node with its assigned agent is reconnected to the next node: every pair then spans two
nodes and every message crosses Redis. `--server-pid` then takes one pid per node; CPU and RSS are
summed over the nodes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvloop
from websockets.asyncio.client import ClientConnection, connect

TEXT = "你好,请问我的订单什么时候发货?谢谢 hello"


@dataclass
class Sock:
    ws: ClientConnection
    role: str
    node: int = 0
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)


@dataclass
class Pair:
    visitor: Sock
    agent: Sock
    sid: str


@dataclass
class Stats:
    sched: dict[int, int] = field(default_factory=dict)  # k -> scheduled ns, until delivered
    acks_due: dict[int, int] = field(default_factory=dict)  # k -> scheduled ns, until acked
    lat: list[int] = field(default_factory=list)
    ack_lat: list[int] = field(default_factory=list)
    lag: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    assigned: dict[str, Sock] = field(default_factory=dict)
    echoes: int = 0
    moved: int = 0
    dups: int = 0
    closed: int = 0
    sending_done: bool = False
    closing: bool = False  # errors after the run (our own close) are not counted
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    new_assignment: asyncio.Event = field(default_factory=asyncio.Event)
    last_rx: int = 0


ST = Stats()


def _sid_of(f: dict[str, Any]) -> str | None:
    if "session_id" in f:
        return str(f["session_id"])
    conv = f.get("conversation")
    return str(conv["session_id"]) if isinstance(conv, dict) and "session_id" in conv else None


async def reader(s: Sock) -> None:
    """Hot-path frames are handled here; anything else goes to the socket's inbox."""
    try:
        async for raw in s.ws:
            now = time.perf_counter_ns()
            f = orjson.loads(raw)
            typ = f.get("type")
            content = f.get("content") if typ == "message" else None
            if isinstance(content, str) and content.startswith("t="):
                t, k, d = content.split(" ", 3)[:3]
                if d[2:] == s.role[0]:
                    ST.echoes += 1  # our own message echoed to the sending device
                elif ST.sched.pop(int(k[2:]), None) is None:
                    ST.dups += 1
                else:
                    ST.lat.append(now - int(t[2:]))
                    ST.last_rx = now
            elif typ == "ack" and str(f.get("ref", "")).isdigit() and int(f["ref"]) in ST.acks_due:
                ST.ack_lat.append(now - ST.acks_due.pop(int(f["ref"])))
            if ST.sending_done and not ST.sched and not ST.acks_due:
                ST.drained.set()
            elif typ == "error":
                ST.errors["error:" + str(f.get("code"))] += 1
                s.inbox.put_nowait(f)
            else:
                if typ == "assigned" and (sid := _sid_of(f)):
                    ST.assigned[sid] = s
                    ST.new_assignment.set()
                s.inbox.put_nowait(f)
    except Exception as e:  # connection dropped
        if not ST.closing:
            ST.errors["reader:" + type(e).__name__] += 1
    ST.closed += 1
    s.inbox.put_nowait({"type": "_closed"})


async def expect(s: Sock, pred: Any, secs: float) -> dict[str, Any]:
    async with asyncio.timeout(secs):
        while True:
            f = await s.inbox.get()
            if f.get("type") in ("error", "_closed"):
                raise RuntimeError(f"{s.role}: {f}")
            if pred(f):
                return f


async def open_sock(
    base: str, role: str, query: str, tasks: set[asyncio.Task[None]], deflate: bool, node: int = 0
) -> Sock:
    ws = await connect(
        f"ws{base[4:]}/ws/{role}?{query}",
        compression="deflate" if deflate else None,
        proxy=None,
        ping_interval=None,
        max_queue=None,
        open_timeout=20,
    )
    s = Sock(ws, role, node=node)
    tasks.add(asyncio.create_task(reader(s)))
    await expect(s, lambda f: f.get("type") == "ready", 20)
    return s


async def setup_relay(a: argparse.Namespace, tasks: set[asyncio.Task[None]]) -> list[Pair]:
    sem = asyncio.Semaphore(20)

    async def one(i: int) -> Pair:
        async with sem:
            v = await open_sock(a.base, "visitor", f"pair={i}", tasks, a.deflate)
            g = await open_sock(a.base, "agent", f"pair={i}", tasks, a.deflate)
            return Pair(v, g, f"pair-{i}")

    return list(await asyncio.gather(*(one(i) for i in range(a.pairs))))


async def setup_kefu(a: argparse.Namespace, tasks: set[asyncio.Task[None]], http: httpx.AsyncClient) -> list[Pair]:
    creds = a.creds_data
    app_id, agents = creds["app_id"], creds["agents"][: a.pairs]
    if len(agents) < a.pairs:
        raise SystemExit(f"need {a.pairs} agents in {a.creds}, have {len(agents)}")
    sem = asyncio.Semaphore(10)
    n = len(a.bases)
    tokens: dict[str, str] = {}

    async def agent(i: int, c: dict[str, str]) -> Sock:
        node = (i + 1) % n
        async with sem:
            r = await http.post(a.bases[node] + "/api/v1/auth/login", json={"app_id": app_id, **c})
            r.raise_for_status()
            s = await open_sock(a.bases[node], "agent", "token=" + r.json()["token"], tasks, a.deflate, node)
            await s.ws.send('{"type":"set_status","status":"online"}')
            await s.ws.send('{"type":"ping"}')  # barrier: pong comes after set_status is handled
            await expect(s, lambda f: f.get("type") == "pong", 20)
            return s

    async def visitor(i: int) -> tuple[Sock, str]:
        node = i % n
        async with sem:
            r = await http.post(a.bases[node] + "/api/v1/visitor/session", json={"app_id": app_id})
            r.raise_for_status()
            token = r.json()["token"]
            s = await open_sock(a.bases[node], "visitor", "token=" + token, tasks, a.deflate, node)
            await s.ws.send('{"type":"open_chat"}')
            conv = await expect(s, lambda f: f.get("type") == "conversation", 20)
            sid = str(conv["session_id"])
            tokens[sid] = token
            if conv.get("status") == "bot":
                await s.ws.send(orjson.dumps({"type": "request_human", "session_id": sid}).decode())
            if conv.get("status") != "active":
                await expect(s, lambda f: f.get("type") == "conversation" and f.get("status") == "active", 30)
            return s, sid

    await asyncio.gather(*(agent(i, c) for i, c in enumerate(agents)))
    visitors = await asyncio.gather(*(visitor(i) for i in range(a.pairs)))
    async with asyncio.timeout(20):
        while any(sid not in ST.assigned for _, sid in visitors):
            ST.new_assignment.clear()
            await ST.new_assignment.wait()
    pairs = [Pair(v, ST.assigned[sid], sid) for v, sid in visitors]
    if n > 1:  # routing chose the agent: move a visitor that shares its agent's node to the next node

        async def move(p: Pair) -> None:
            async with sem:
                node = (p.agent.node + 1) % n
                old = p.visitor
                p.visitor = await open_sock(a.bases[node], "visitor", "token=" + tokens[p.sid], tasks, a.deflate, node)
                ST.moved += 1
                ST.closing = True  # our own close of the old socket is not an error
                await old.ws.close()

        await asyncio.gather(*(move(p) for p in pairs if p.visitor.node == p.agent.node))
        ST.closing = False
        ST.closed = 0
    return pairs


def proc(pid: int) -> dict[str, float]:
    """Server memory (KiB) and CPU seconds from /proc."""
    out: dict[str, float] = {}
    if pid <= 0:
        return out
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = float(val.split()[0])
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    out["cpu_s"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def procs(pids: list[int]) -> dict[str, float]:
    """`proc` summed over the nodes."""
    out: dict[str, float] = {}
    for pid in pids:
        for key, val in proc(pid).items():
            out[key] = out.get(key, 0) + val
    return out


def pct(xs: list[int], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] / 1e6


async def send_one(ws: ClientConnection, frame: str) -> None:
    try:
        await ws.send(frame)
    except Exception as e:
        ST.errors["send:" + type(e).__name__] += 1


async def load(pairs: list[Pair], a: argparse.Namespace, nonce: str) -> tuple[int, int, int, float, float]:
    total, n, step = int(a.rate * a.duration), len(pairs), 1e9 / a.rate
    pending: set[asyncio.Task[None]] = set()
    t0, cpu0, srv0 = time.perf_counter_ns() + 50_000_000, time.process_time(), procs(a.server_pids).get("cpu_s", 0)
    for k in range(total):
        sched = t0 + int(k * step)
        delay = sched - time.perf_counter_ns()
        if delay > 0:
            await asyncio.sleep(delay / 1e9)
        p = pairs[k % n]
        s = p.visitor if (k // n) % 2 == 0 else p.agent
        content = f"t={sched} k={k} d={s.role[0]} {TEXT}"
        frame = orjson.dumps(
            {
                "type": "send",
                "ref": str(k),
                "session_id": p.sid,
                "client_msg_id": f"{nonce}-{k}",
                "msg_type": "text",
                "content": content,
            }
        ).decode()
        ST.sched[k] = ST.acks_due[k] = sched
        ST.lag.append(time.perf_counter_ns() - sched)
        task = asyncio.create_task(send_one(s.ws, frame))
        pending.add(task)
        task.add_done_callback(pending.discard)
    t_end, cpu = time.perf_counter_ns(), time.process_time() - cpu0
    srv = procs(a.server_pids).get("cpu_s", 0) - srv0
    ST.sending_done = True
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(a.drain):
            while ST.sched or ST.acks_due:
                ST.drained.clear()
                await ST.drained.wait()
    return total, t0, t_end, cpu, srv


async def run(a: argparse.Namespace) -> dict[str, Any]:
    tasks: set[asyncio.Task[None]] = set()
    nonce = secrets.token_hex(4)
    idle = procs(a.server_pids)
    async with httpx.AsyncClient(base_url=a.bases[0], trust_env=False, timeout=30) as http:
        t_setup = time.monotonic()
        async with asyncio.timeout(a.setup_timeout):
            pairs = await (setup_kefu(a, tasks, http) if a.target == "kefu" else setup_relay(a, tasks))
        setup_s = time.monotonic() - t_setup
        await asyncio.sleep(0.5)
        connected = procs(a.server_pids)
        total, t0, t_end, gen_cpu, srv_cpu = await load(pairs, a, nonce)
        after = procs(a.server_pids)
        held = sum(1 for p in pairs for s in (p.visitor, p.agent) if s.ws.state.name == "OPEN")
        ST.closing = True
        if a.target == "kefu":  # free the agents' slots for the next run
            for p in pairs:
                with contextlib.suppress(Exception):
                    await p.visitor.ws.send(orjson.dumps({"type": "close", "session_id": p.sid}).decode())
            await asyncio.sleep(1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.gather(
                    *(s.ws.close() for p in pairs for s in (p.visitor, p.agent)), return_exceptions=True
                )
        for t in tasks:
            t.cancel()
    delivered = len(ST.lat)
    span = max(ST.last_rx - t0, 1)
    conns = 2 * len(pairs)
    cpu = srv_cpu / max((t_end - t0) / 1e9, 1e-9)  # share of one core while sending
    return {
        "target": a.target,
        "pairs": len(pairs),
        "offered_rate": a.rate,
        "duration_s": a.duration,
        "sent": total,
        "delivered": delivered,
        "lost": len(ST.sched),
        "acks_missing": len(ST.acks_due),
        "achieved_rate": round(delivered / (span / 1e9), 1),
        "send_rate": round(total / max((t_end - t0) / 1e9, 1e-9), 1),
        "p50_ms": pct(ST.lat, 0.5),
        "p99_ms": pct(ST.lat, 0.99),
        "max_ms": max(ST.lat, default=0) / 1e6,
        "ack_p50_ms": pct(ST.ack_lat, 0.5),
        "ack_p99_ms": pct(ST.ack_lat, 0.99),
        "send_lag_p99_ms": pct(ST.lag, 0.99),
        "errors": dict(ST.errors),
        "echoes": ST.echoes,
        "dups": ST.dups,
        "conns": conns,
        "conns_held": held,
        "nodes": len(a.bases),
        "cross_node_pairs": sum(1 for p in pairs if p.visitor.node != p.agent.node),
        "visitors_moved": ST.moved,
        "setup_s": round(setup_s, 2),
        "server_cpu": round(cpu, 3),
        "gen_cpu": round(gen_cpu / max((t_end - t0) / 1e9, 1e-9), 3),
        "rss_idle_kib": idle.get("VmRSS"),
        "rss_connected_kib": connected.get("VmRSS"),
        "loadavg_1m": os.getloadavg()[0],  # > 2 on this 2-core machine: something else was running
        "rss_end_kib": after.get("VmRSS"),
        "peak_rss_kib": after.get("VmHWM"),
        "kib_per_conn": round((connected.get("VmRSS", 0) - idle.get("VmRSS", 0)) / conns, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", choices=["relay", "kefu"], required=True)
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT, or several comma-separated (kefu)")
    ap.add_argument("--pairs", type=int, default=100)
    ap.add_argument("--rate", type=float, default=1000, help="messages/s offered, in total")
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--drain", type=float, default=10, help="s to wait for late deliveries after the last send")
    ap.add_argument("--setup-timeout", type=float, default=180)
    ap.add_argument("--creds", help="kefu: JSON {app_id, agents: [{email, password}]}")
    ap.add_argument("--server-pid", default="0", help="read the server's RSS/CPU from /proc (comma-separated: summed)")
    ap.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    a = ap.parse_args()
    a.bases = a.base.split(",")
    if not all(b.startswith("http://127.0.0.1:") for b in a.bases):
        raise SystemExit("only http://127.0.0.1:PORT targets are allowed")
    if len(a.bases) > 1 and a.target != "kefu":
        raise SystemExit("several --base URLs: kefu only")
    a.base = a.bases[0]
    a.server_pids = [int(x) for x in a.server_pid.split(",")]
    a.creds_data = orjson.loads(Path(a.creds).read_bytes()) if a.creds else None
    try:
        res = uvloop.run(run(a))
    except Exception as e:  # one line for run.py instead of a traceback
        res = {"target": a.target, "offered_rate": a.rate, "failed": f"{type(e).__name__}: {e}"[:300]}
    sys.stdout.write(orjson.dumps(res).decode() + "\n")


if __name__ == "__main__":
    main()
