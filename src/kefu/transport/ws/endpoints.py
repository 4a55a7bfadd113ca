"""Accepting a socket: authenticate its token, then hand it to a Connection."""

from __future__ import annotations

import contextlib

import orjson
from fastapi import APIRouter, WebSocket

from kefu import errors
from kefu.services.container import Services
from kefu.transport.http.cors import origin_allowed
from kefu.transport.ws.connection import (
    CLOSE_FORBIDDEN,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNAUTHORIZED,
    Connection,
    error_frame,
)

router = APIRouter()


async def _serve(ws: WebSocket, kind: str) -> None:
    await ws.accept()
    try:
        await _open(ws, kind)
    except errors.Unavailable as exc:  # the database is down: says nothing about the token, so not 4401
        with contextlib.suppress(Exception):
            await ws.send_text(orjson.dumps(error_frame(exc)).decode())
            await ws.close(CLOSE_TRY_AGAIN_LATER, exc.code)


async def _open(ws: WebSocket, kind: str) -> None:
    services: Services = ws.app.state.services
    try:
        actor = await services.auth.actor_from_token(ws.query_params.get("token", ""), kind)
    except errors.Unavailable:
        raise
    except errors.KefuError as exc:
        with contextlib.suppress(Exception):
            await ws.send_text(orjson.dumps(error_frame(exc)).decode())
            await ws.close(CLOSE_UNAUTHORIZED, exc.code)
        return
    if kind == "visitor":
        app = await services.admin.get_app(actor.app_id)
        if not origin_allowed(app.settings.allowed_origins, ws.headers.get("origin")):
            with contextlib.suppress(Exception):
                refused = errors.Forbidden("This site is not among the app's allowed origins.")
                await ws.send_text(orjson.dumps(error_frame(refused)).decode())
                await ws.close(CLOSE_FORBIDDEN, refused.code)
            return
    await Connection(ws, actor, services).run()


@router.websocket("/ws/visitor")
async def visitor_socket(ws: WebSocket) -> None:
    await _serve(ws, "visitor")


@router.websocket("/ws/agent")
async def agent_socket(ws: WebSocket) -> None:
    await _serve(ws, "agent")
