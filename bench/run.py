"""Benchmark driver: relay baseline vs kefu, same run, server and generator on different cores.

Starts each server pinned to `--server-core` (taskset), runs `bench/load.py` pinned to
`--client-core` against it at every rate, stops it, and prints a Markdown table with the
kefu/relay ratios. Everything listens and connects on 127.0.0.1 only; every child is killed
on exit.

    .venv/bin/python bench/run.py --rates 500,1000,2000 --duration 10 --pairs 100

Targets `kefu-pgN` (e.g. `kefu-pg1,kefu-pg3`) run N `kefu serve` nodes sharing a fresh PostgreSQL
database (`kefu_bench_<random>` on `--pg`, dropped at the end) and Redis (`--redis`), all pinned
to `--server-core`; the generator spreads its pairs over the nodes so that every visitor and its
agent sit on different nodes (see `bench/load.py`). On one machine this measures the cost of
coordinating through PostgreSQL and Redis, not scaling.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import resource
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
CHILDREN: list[subprocess.Popen[bytes]] = []
MULTI = re.compile(r"kefu-pg([1-9])")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(cmd: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=sys.stderr)
    CHILDREN.append(p)
    return p


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def wait_healthy(port: int, p: subprocess.Popen[bytes], secs: float) -> None:
    deadline = time.monotonic() + secs
    with httpx.Client(trust_env=False, timeout=2) as http:
        while time.monotonic() < deadline:
            if p.poll() is not None:
                raise SystemExit(f"server exited with {p.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if http.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return
            time.sleep(0.2)
    raise SystemExit(f"server on port {port} not healthy after {secs:.0f} s")


def cli_json(args: list[str], env: dict[str, str]) -> Any:
    out = subprocess.run(args, env=env, capture_output=True, timeout=120, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {out.stderr.decode()[-500:]}")
    text = out.stdout.decode()
    return orjson.loads(text[text.index("{") :])


def kefu_ws() -> str:
    """The uvicorn `ws` setting kefu serves with, read from its source so the relay matches it."""
    spec = importlib.util.find_spec("kefu.server")
    m = re.search(r'"ws": "([\w-]+)"', Path(spec.origin).read_text()) if spec and spec.origin else None
    return m.group(1) if m else "websockets-sansio"


def setup_kefu(a: argparse.Namespace, tmp: Path, env: dict[str, str]) -> Path:
    """Fresh SQLite database: one app and one agent per pair (max-concurrent 10, so slots left
    over from a previous rate never block routing)."""
    kefu = str(a.kefu)
    subprocess.run([kefu, "migrate"], env=env, check=True, timeout=120, capture_output=True)
    app = cli_json([kefu, "app", "create", "bench", "--admin-email", "admin@bench.test", "--admin-password",
                    "bench-admin-pw"], env)  # fmt: skip
    agents = [{"email": f"agent{i}@bench.test", "password": f"bench-pw-{i}"} for i in range(a.pairs)]
    t0 = time.monotonic()
    with ThreadPoolExecutor(2) as pool:  # one CLI process per agent (~1.4 s each), two at a time
        add = [kefu, "agent", "add", "--app", app["app_id"], "--max-concurrent", "10"]
        list(pool.map(lambda c: cli_json([*add, "--email", c["email"], "--password", c["password"]], env), agents))
    print(f"kefu: created {a.pairs} agents in {time.monotonic() - t0:.1f} s", file=sys.stderr)
    creds = tmp / "creds.json"
    creds.write_bytes(orjson.dumps({"app_id": app["app_id"], "agents": agents}))
    return creds


def psql(pg: str, sql: str) -> None:
    subprocess.run(["psql", pg, "-v", "ON_ERROR_STOP=1", "-qAtc", sql], check=True, timeout=60, capture_output=True)


@contextlib.contextmanager
def database(a: argparse.Namespace, target: str, tmpdir: str) -> Any:
    """SQLite in `tmpdir`, or for `kefu-pgN` a fresh PostgreSQL database, dropped on the way out."""
    if not MULTI.fullmatch(target):
        yield f"sqlite:///{tmpdir}/kefu.db"
        return
    name = f"kefu_bench_{secrets.token_hex(4)}"
    psql(a.pg, f"CREATE DATABASE {name}")
    try:
        yield a.pg.rsplit("/", 1)[0] + "/" + name
    finally:
        for p in CHILDREN:  # the nodes hold connections to it
            stop(p)
        psql(a.pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def run_target(a: argparse.Namespace, target: str) -> list[dict[str, Any]]:
    """Fresh server process(es) per rate (same database), so peak RSS and KiB/conn are per rate."""
    multi = MULTI.fullmatch(target)
    nodes = int(multi.group(1)) if multi else 1
    ports, pin = [free_port() for _ in range(nodes)], ["taskset", "-c", a.server_core]
    with tempfile.TemporaryDirectory(prefix="kefu-bench-") as tmpdir, database(a, target, tmpdir) as db:
        env = {
            **os.environ,
            "KEFU_RATE_LIMITS": "off",
            "KEFU_WS_IDLE_TIMEOUT_S": "3600",
            "KEFU_LOG_LEVEL": "warning",
            "KEFU_DB": db,
        }
        if multi:
            env["KEFU_REDIS"] = a.redis
        creds = setup_kefu(a, Path(tmpdir), env) if target != "relay" else None
        if target == "relay":
            srvs = [[*pin, sys.executable, str(BENCH / "relay.py"), "--port", str(ports[0]), "--ws", a.ws]]
            srvs[0] += ["--deflate"] if a.deflate else []
        else:
            serve = [*pin, str(a.kefu), "serve", "--host", "127.0.0.1", "--db", db]
            srvs = [[*serve, "--port", str(port), *(["--redis", a.redis] if multi else [])] for port in ports]
        rows = []
        for rate in a.rates:
            servers = [start(srv, env) for srv in srvs]
            try:
                for port, server in zip(ports, servers, strict=True):
                    wait_healthy(port, server, 60)
                opts = {"target": "relay" if target == "relay" else "kefu", "pairs": a.pairs, "rate": rate,
                        "base": ",".join(f"http://127.0.0.1:{port}" for port in ports),
                        "duration": a.duration, "drain": a.drain,
                        "server-pid": ",".join(str(s.pid) for s in servers)}  # fmt: skip
                cmd = ["taskset", "-c", str(a.client_core), sys.executable, str(BENCH / "load.py")]
                cmd += [x for k, v in opts.items() for x in (f"--{k}", str(v))]
                cmd += ["--creds", str(creds)] if creds else []
                cmd += ["--deflate"] if a.deflate else []
                print(f"{target}: {rate:g} msg/s for {a.duration:g} s, {a.pairs} pairs", file=sys.stderr)
                try:
                    out = subprocess.run(cmd, capture_output=True, timeout=a.duration + a.drain + 240, check=False)
                    sys.stderr.write(out.stderr.decode()[-2000:])
                    row = orjson.loads(out.stdout.decode().strip().splitlines()[-1])
                except (subprocess.TimeoutExpired, IndexError, orjson.JSONDecodeError) as e:
                    row = {"offered_rate": rate, "failed": type(e).__name__}
                row["target"] = target
                for server in servers:
                    if server.poll() is not None:
                        row["failed"] = f"server exited {server.returncode}"
                rows.append(row)
            finally:
                for server in servers:
                    stop(server)
        return rows


def _f(key: str, nd: int = 1, scale: float = 1.0) -> Any:
    return lambda r: "-" if r.get(key) is None else f"{r[key] / scale:.{nd}f}"


def _pct(key: str) -> Any:
    return lambda r: f"{r[key]:.0%}"


# (header, cell of one result, key whose kefu/relay ratio is shown or "")
COLUMNS: list[tuple[str, Any, str]] = [
    ("achieved/s", _f("achieved_rate", 0), "achieved_rate"),
    ("p50 ms", _f("p50_ms", 2), "p50_ms"),
    ("p99 ms", _f("p99_ms", 2), "p99_ms"),
    ("max ms", _f("max_ms"), "max_ms"),
    ("ack p99 ms", _f("ack_p99_ms", 2), "ack_p99_ms"),
    ("lost", lambda r: str(r["lost"]), ""),
    ("errors", lambda r: str(sum(r["errors"].values()) + r["acks_missing"]), ""),
    ("conns held", lambda r: f"{r['conns_held']}/{r['conns']}", ""),
    ("server CPU", _pct("server_cpu"), "server_cpu"),
    ("gen CPU", _pct("gen_cpu"), ""),
    ("RSS end MiB", _f("rss_end_kib", 1, 1024), "rss_end_kib"),
    ("peak RSS MiB", _f("peak_rss_kib", 1, 1024), "peak_rss_kib"),
    ("KiB/conn", _f("kib_per_conn"), "kib_per_conn"),
]


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| target | offered/s | " + " | ".join(c[0] for c in COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    by: dict[tuple[str, float], dict[str, Any]] = {(r["target"], r["offered_rate"]): r for r in rows}
    targets = sorted({r["target"] for r in rows}, key=lambda t: (t != "relay", t))  # relay, kefu, kefu-pg1, …
    compare = [("kefu", "relay")] + [(t, "kefu-pg1") for t in targets if MULTI.fullmatch(t) and t != "kefu-pg1"]
    for rate in sorted({r["offered_rate"] for r in rows}):
        for t in targets:
            r = by.get((t, rate), {})
            cells = [f"failed: {r['failed']}"] if "failed" in r else [c[1](r) for c in COLUMNS] if r else []
            if cells:
                lines.append(f"| {t} | {rate:g} | " + " | ".join(cells) + " |")
        for num, den in compare:
            k, b = by.get((num, rate), {}), by.get((den, rate), {})
            if k and b and "failed" not in k and "failed" not in b:
                ratios = [f"{k[key] / b[key]:.2f}×" if key and b.get(key) else "" for _, _, key in COLUMNS]
                lines.append(f"| **{num}/{den}** | {rate:g} | " + " | ".join(ratios) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="500,1000,2000", help="comma-separated msg/s")
    ap.add_argument("--duration", type=float, default=10, help="s of load per rate")
    ap.add_argument("--pairs", type=int, default=100, help="visitor/agent pairs (2 sockets each)")
    ap.add_argument("--drain", type=float, default=10, help="s to wait for late messages")
    ap.add_argument("--targets", default="relay,kefu", help="relay, kefu (SQLite), kefu-pgN (N nodes, N <= 9)")
    ap.add_argument("--server-core", default="0", help="taskset -c list for the server(s), e.g. 0")
    ap.add_argument("--client-core", type=int, default=1)
    ap.add_argument("--ws", default=kefu_ws(), help="relay: uvicorn ws implementation (default: kefu serve's)")
    ap.add_argument("--deflate", action="store_true", help="relay: permessage-deflate on (to compare)")
    ap.add_argument("--kefu", type=Path, default=VENV_BIN / "kefu")
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres", help="kefu-pgN: server")
    ap.add_argument("--redis", default="redis://127.0.0.1:6379/14", help="kefu-pgN: Redis")
    a = ap.parse_args()
    for t in a.targets.split(","):
        if t not in ("relay", "kefu") and not MULTI.fullmatch(t):
            raise SystemExit(f"unknown target {t!r}")
    if "@127.0.0.1:" not in a.pg or not a.redis.startswith("redis://127.0.0.1:"):
        raise SystemExit("only 127.0.0.1 PostgreSQL/Redis")
    a.rates = [float(x) for x in a.rates.split(",")]
    print(f"relay: uvicorn ws={a.ws}, permessage-deflate {'on' if a.deflate else 'off'}", file=sys.stderr)
    if a.duration > 120 or len(a.rates) > 10 or a.pairs > 2000:
        raise SystemExit("bounded by design: duration <= 120 s, <= 10 rates, <= 2000 pairs")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[dict[str, Any]] = []
    try:
        for target in a.targets.split(","):
            rows += run_target(a, target)
    finally:
        for p in CHILDREN:
            stop(p)
    if a.json:
        a.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2))
    print(table(rows))


if __name__ == "__main__":
    main()
