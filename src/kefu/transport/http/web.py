"""The browser side: the JS SDK at `/sdk/v1/kefu.js` and the demo shop page at `/demo` that embeds it."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from kefu import errors
from kefu.storage import apps as app_store
from kefu.transport.http.deps import ServicesDep

router = APIRouter(tags=["web"], include_in_schema=False)

# v1 is patched in place (fixes only), so browsers revalidate hourly with the ETag: a cheap 304.
SDK_CACHE_CONTROL = "public, max-age=3600"
DEMO_APP_MARKER = "demo_app_id"
APP_ID_SLOT = "'YOUR_APP_ID'"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    etag: str


@functools.cache
def sdk_file() -> StaticFile:
    """kefu.js as shipped in the package, with a strong ETag of its bytes."""
    body = resources.files("kefu").joinpath("web/sdk/v1/kefu.js").read_bytes()
    return StaticFile(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@functools.cache
def demo_template() -> str:
    return resources.files("kefu").joinpath("web/demo.html").read_text(encoding="utf-8")


def etag_matches(if_none_match: str, etag: str) -> bool:
    """`If-None-Match` (a list of tags, weak or strong, or `*`) names this tag."""
    tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in tags or etag in tags


def js_string(value: str) -> str:
    """A JavaScript string literal that is also safe inside an HTML <script> element."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@router.get("/sdk/v1/kefu.js")
async def sdk(request: Request) -> Response:
    """The JS SDK and chat widget: one file, cached by browsers and revalidated with its ETag."""
    found = sdk_file()
    headers = {"ETag": found.etag, "Cache-Control": SDK_CACHE_CONTROL, "Access-Control-Allow-Origin": "*"}
    if etag_matches(request.headers.get("if-none-match", ""), found.etag):
        return Response(status_code=304, headers=headers)
    headers["X-Content-Type-Options"] = "nosniff"
    return Response(found.body, media_type="text/javascript; charset=utf-8", headers=headers)


@router.get("/demo", response_class=HTMLResponse)
async def demo(svc: ServicesDep) -> HTMLResponse:
    """A small shop page with the widget embedded by the documented snippet, for the app `kefu demo` made."""
    async with svc.db.read() as tx:
        app_id = await app_store.get_marker(tx, DEMO_APP_MARKER)
        app = await app_store.get_app(tx, app_id) if app_id else None
    if app is None:
        raise errors.NotFound("There is no demo app on this server; run `kefu demo` to make one.")
    page = demo_template().replace(APP_ID_SLOT, js_string(app.app_id))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})
