"""A size limit on every request body, enforced while the body streams in.

Without it a body is read whole before any endpoint can judge its size: a 40 MB `tags` object was
parsed, and an upload without `Content-Length` was written out in full (400 MB to a temporary
file) before its 413. Here each chunk is counted as it arrives, and the request is refused with
`413 too_large` as soon as it passes the limit (at once when a declared `Content-Length` does).

The limit is `KEFU_MAX_BODY_BYTES` (2 MiB, room for the largest knowledge-base article); an
endpoint that takes files raises it for its own request with `allow_body` before it reads the body
(uploads: the app's size limit; imports: 10 MiB).
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SCOPE_KEY = "kefu.max_body_bytes"


def allow_body(request: Request, max_bytes: int) -> None:
    """Let this request's body grow to `max_bytes`; call it before the body is read."""
    request.scope[SCOPE_KEY] = max_bytes


def too_large(max_bytes: int) -> HTTPException:
    # An HTTPException, not a KefuError: FastAPI turns any other exception raised while it reads a body into a 400.
    return HTTPException(413, f"The request body is larger than {max_bytes} bytes.")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "")
        declared = int(length) if length.isdigit() else None
        received = 0

        async def counted() -> Message:
            nonlocal received
            limit: int = scope.get(SCOPE_KEY, self.max_bytes)
            if declared is not None and declared > limit:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, counted, send)
