"""No secret reaches the logs, even at debug level: a real `kefu serve` process is driven through logins, visitor
sessions with HMAC proofs, sockets (whose URLs carry tokens), webhooks and a password change, and its whole log
is searched for every secret it was shown."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from pathlib import Path

import httpx
import orjson
import websockets

from tests.chaos.test_node_crash import Cluster
from tests.security.reporting import report


async def test_no_password_token_secret_or_key_is_logged(tmp_path: Path) -> None:
    cluster = Cluster(
        f"sqlite:///{tmp_path / 'kefu.db'}", "", tmp_path, log_level="debug", webhook_allow_private="true"
    )
    password, new_password = "first-Secret-9", "second-Secret-9"
    created = cluster.cli("app", "create", "shop", "--admin-email", "boss@example.com", "--admin-password", password)
    [port] = await cluster.start(1)
    base = f"http://127.0.0.1:{port}"
    shown: dict[str, str] = {"password": password, "new password": new_password}
    shown |= {"app secret": created["secret"], "api key": created["api_key"]}
    try:
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as http:
            login = {"app_id": created["app_id"], "email": "boss@example.com", "password": password}
            token = (await http.post("/api/v1/auth/login", json=login)).json()["token"]
            user_hash = hmac.new(created["secret"].encode(), b"U1", hashlib.sha256).hexdigest()
            session = {"app_id": created["app_id"], "user_id": "U1", "user_hash": user_hash}
            visitor = (await http.post("/api/v1/visitor/session", json=session)).json()["token"]
            shown |= {"agent token": token, "visitor token": visitor, "user_hash": user_hash}

            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/visitor?token={visitor}") as ws:
                await ws.recv()  # ready
                await ws.send(orjson.dumps({"type": "open_chat"}).decode())
                while orjson.loads(await ws.recv())["type"] != "conversation":
                    pass
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/agent?token={token}") as ws:
                await ws.recv()
            auth = {"Authorization": f"Bearer {token}"}
            hook_secret = f"whsec-{uuid.uuid4().hex}"
            hook = {"url": "http://127.0.0.1:9/hook", "events": ["message.created"], "secret": hook_secret}
            assert (await http.post("/api/v1/webhooks", json=hook, headers=auth)).status_code == 201
            shown["webhook secret"] = hook_secret
            bogus = "eyJhbGciOiJIUzI1NiJ9.bogus-token-" + uuid.uuid4().hex
            assert (await http.get("/api/v1/agents", headers={"Authorization": f"Bearer {bogus}"})).status_code == 401
            shown["rejected token"] = bogus
            change = {"current_password": password, "new_password": new_password}
            fresh = (await http.post("/api/v1/auth/password", json=change, headers=auth)).json()["token"]
            shown["new token"] = fresh
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws/agent?token={fresh}") as ws:
                await ws.recv()
            await asyncio.to_thread(cluster.stop_all)
    finally:
        cluster.stop_all()

    log = (tmp_path / f"node-{port}.log").read_text()
    assert "DEBUG" in log and "[redacted]" in log, "the node logged at debug level, socket URLs included"
    leaked = [name for name, value in shown.items() if value in log]
    assert not leaked, f"secrets in the log: {leaked}"
    report(f"secrets in logs: {len(shown)} secrets checked in a {len(log.splitlines())}-line debug log, 0 found")
