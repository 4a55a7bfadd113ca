"""A node told to stop (SIGTERM) closes its sockets with 1012, so clients reconnect elsewhere, and loses nothing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import orjson
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.chaos.test_node_crash import free_port

KEFU = [sys.executable, "-m", "kefu"]


async def test_sigterm_closes_sockets_with_1012_and_keeps_every_acked_message(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")},
        "KEFU_DB": f"sqlite:///{tmp_path / 'kefu.db'}",
        "KEFU_RATE_LIMITS": "off",
    }
    run = {"env": env, "cwd": tmp_path, "capture_output": True, "check": True, "timeout": 120}
    app = json.loads(
        subprocess.run(
            [*KEFU, "app", "create", "s", "--admin-email", "a@example.com", "--admin-password", "pw-123456"], **run
        ).stdout
    )  # type: ignore[call-overload]
    port = free_port()
    proc = subprocess.Popen(
        [*KEFU, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as http:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)  # waiting for the process to listen
            token = (await http.post("/api/v1/visitor/session", json={"app_id": app["app_id"]})).json()["token"]
        ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/visitor?token={token}")
        assert orjson.loads(await ws.recv())["type"] == "ready"
        await ws.send(orjson.dumps({"type": "open_chat"}).decode())
        sid = None
        while sid is None:
            frame = orjson.loads(await ws.recv())
            sid = frame.get("session_id") if frame["type"] == "conversation" else None

        async def send(i: int) -> None:
            cmid = uuid.uuid4().hex
            frame = {"type": "send", "ref": cmid, "session_id": sid, "client_msg_id": cmid, "msg_type": "text"}
            await ws.send(orjson.dumps({**frame, "content": f"m{i}"}).decode())

        # Ten messages acked before the signal (so the check below has something to check), ten in flight at it.
        acked = []
        for i in range(10):
            await send(i)
        try:
            async with asyncio.timeout(15):
                while len(acked) < 10:
                    frame = orjson.loads(await ws.recv())
                    if frame["type"] == "ack":
                        acked.append(frame["message_id"])
        except TimeoutError:
            pytest.fail(f"{len(acked)} of 10 messages acked within 15 s, before any SIGTERM")
        for i in range(10, 20):
            await send(i)
        os.killpg(proc.pid, signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    frame = orjson.loads(await ws.recv())
                    if frame["type"] == "ack":
                        acked.append(frame["message_id"])
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after its graceful shutdown
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.closing(sqlite3.connect(tmp_path / "kefu.db")) as db:
        stored = {row[0] for row in db.execute("SELECT message_id FROM messages WHERE session_id = ?", (sid,))}
    assert len(set(acked)) == len(acked)
    assert set(acked) <= stored, f"acked but not stored: {set(acked) - stored}"
