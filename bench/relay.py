"""Baseline for the benchmark: a bare WebSocket relay on kefu's server stack.

Same library, loop and settings as `kefu serve` (uvicorn, uvloop, httptools, the `websockets`
library, permessage-deflate off), but no database and no validation: a visitor socket
(`/ws/visitor?pair=ID`) and an agent socket (`/ws/agent?pair=ID`) are paired by `pair`; every
frame received is parsed (orjson), acked to its sender and forwarded to the peer as a `message`.

    python bench/relay.py --port 8765
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PAIRS: dict[str, dict[str, Send]] = {}


def _text(payload: dict[str, Any]) -> Message:
    return {"type": "websocket.send", "text": orjson.dumps(payload).decode()}


async def _websocket(scope: Scope, receive: Receive, send: Send) -> None:
    role = "agent" if scope["path"].endswith("/agent") else "visitor"
    peer_role = "visitor" if role == "agent" else "agent"
    pair = parse_qs(scope["query_string"].decode()).get("pair", [""])[0]
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    slot = PAIRS.setdefault(pair, {})
    slot[role] = send
    await send(_text({"type": "ready", "you": {"role": role, "pair": pair}}))
    seq = 0
    try:
        while True:
            msg = await receive()
            if msg["type"] != "websocket.receive":
                break
            frame = orjson.loads(msg.get("text") or msg.get("bytes") or b"{}")
            seq += 1
            sid, cmid = frame.get("session_id"), frame.get("client_msg_id")
            await send(
                _text({"type": "ack", "ref": frame.get("ref"), "client_msg_id": cmid, "session_id": sid, "seq": seq})
            )
            peer = slot.get(peer_role)
            if peer is not None:
                await peer(
                    _text(
                        {
                            "type": "message",
                            "session_id": sid,
                            "seq": seq,
                            "client_msg_id": cmid,
                            "sender": role,
                            "content": frame.get("content"),
                        }
                    )
                )
    finally:
        if slot.get(role) is send:
            del slot[role]
        if not slot:
            PAIRS.pop(pair, None)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "websocket":
        await _websocket(scope, receive, send)
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})
    elif scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--ws", default="websockets-sansio", help="uvicorn ws implementation (match kefu serve)")
    ap.add_argument("--deflate", action="store_true", help="enable permessage-deflate (off in kefu)")
    a = ap.parse_args()
    uvicorn.run(
        app,
        host=a.host,
        port=a.port,
        loop="uvloop",
        http="httptools",
        ws=a.ws,
        ws_per_message_deflate=a.deflate,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
