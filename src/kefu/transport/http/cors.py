"""CORS for what the widget calls from other sites: visitor sessions, service status, uploads.

The browser's preflight carries no app id, so it is answered for any origin; the per-app origin
allowlist (app setting `allowed_origins`) is enforced where the app is known — on
`POST /visitor/session` and on the visitor WebSocket's `Origin` header.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

WIDGET_PATHS = ("/api/v1/visitor/session", "/api/v1/status", "/api/v1/uploads")
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}


class WidgetCors:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(WIDGET_PATHS):
            await self.app(scope, receive, send)
            return
        origin = Headers(scope=scope).get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS":
            headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin", **PREFLIGHT_HEADERS}
            raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
            await send({"type": "http.response.start", "status": 204, "headers": raw})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Access-Control-Allow-Origin"] = origin
                headers.add_vary_header("Origin")
            await send(message)

        await self.app(scope, receive, with_cors)


def origin_allowed(allowed: tuple[str, ...], origin: str | None) -> bool:
    """No allowlist: any site may embed the widget. With one: only those origins (scheme://host[:port]); `*` is
    any origin, and `https://*.shop.com` any subdomain of shop.com over https (not shop.com itself)."""
    if not allowed or origin is None:
        return True
    given = origin.rstrip("/").lower()
    return any(origin_matches(pattern.rstrip("/").lower(), given) for pattern in allowed)


def origin_matches(pattern: str, origin: str) -> bool:
    if pattern in ("*", origin):
        return True
    scheme, sep, host = pattern.partition("://*.")
    if not sep:
        return False
    given_scheme, _, given_host = origin.partition("://")
    return given_scheme == scheme and given_host.endswith("." + host) and len(given_host) > len(host) + 1
