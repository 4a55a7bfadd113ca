"""Export memory benchmark: peak RSS of the server during `GET /api/v1/export`, and of `kefu export`.

Fills a temporary SQLite database with N conversations (default 20,000, 10 messages each) through
SQLAlchemy Core, starts `kefu serve` on it, streams the whole archive over HTTP while sampling the server's
resident memory from /proc, then runs `kefu export -o FILE` and samples it the same way. Memory that
stays flat while the archive grows is the point: compare the peaks with the archive's size.

    .venv/bin/python bench/export_memory.py --conversations 20000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from kefu.domain.clock import SystemClock
from kefu.domain.ids import new_id
from kefu.services.auth import hash_api_key, new_api_key
from kefu.storage import Database
from kefu.storage import apps as app_store
from kefu.storage.migrate import migrate
from search import fill

KEFU = [sys.executable, "-m", "kefu"]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class PeakSampler:
    """The highest VmRSS of a process, sampled every 20 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_mib(self.pid))
            time.sleep(0.02)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


async def prepare(url: str, conversations: int, per_chat: int) -> tuple[str, str]:
    db = Database(url)
    try:
        await migrate(db)
        app_id = await fill(db, conversations * per_chat, per_chat)
        key = new_api_key()
        async with db.transaction() as tx:
            await app_store.insert_api_key(
                tx, new_id("key"), app_id, hash_api_key(key), key[:12], "bench", SystemClock().now()
            )
        return app_id, key
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--per-chat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'kefu.db'}"
        app_id, key = asyncio.run(prepare(url, args.conversations, args.per_chat))
        env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")} | {"KEFU_DB": url}
        env |= {"KEFU_RATE_LIMITS": "off", "KEFU_UPLOAD_DIR": str(Path(tmp) / "uploads")}
        port = free_port()
        server = subprocess.Popen([*KEFU, "serve", "--port", str(port)], env=env, cwd=tmp)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/healthz").status_code == 200:
                        break
                time.sleep(0.2)
            time.sleep(2)  # let the indexer's first passes settle
            idle = rss_mib(server.pid)
            size = records = 0
            t0 = time.perf_counter()
            with (
                PeakSampler(server.pid) as sampler,
                httpx.stream(
                    "GET", f"{base}/api/v1/export", headers={"Authorization": f"Bearer {key}"}, timeout=600
                ) as r,
            ):
                for line in r.iter_lines():
                    size += len(line.encode()) + 1
                    records += 1
            http_s = time.perf_counter() - t0
            print(
                f"server: {records} records, archive {size / 2**20:.1f} MiB in {http_s:.1f} s;"
                f" RSS idle {idle:.0f} MiB, peak during export {sampler.peak:.0f} MiB"
            )
        finally:
            server.terminate()
            server.wait(30)
        out = Path(tmp) / "archive.ndjson"
        t0 = time.perf_counter()
        cli = subprocess.Popen([*KEFU, "export", "--app", app_id, "-o", str(out), "--quiet"], env=env, cwd=tmp)
        with PeakSampler(cli.pid) as sampler:
            cli.wait(600)
        cli_s = time.perf_counter() - t0
        print(
            f"kefu export: archive {out.stat().st_size / 2**20:.1f} MiB in {cli_s:.1f} s;"
            f" peak RSS {sampler.peak:.0f} MiB (exit {cli.returncode})"
        )


if __name__ == "__main__":
    main()
