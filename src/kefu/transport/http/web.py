"""The browser side: the JS SDK at `/sdk/v1/kefu.js`, the demo shop at `/demo`, the agent console at `/console`."""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from kefu import errors
from kefu.transport.http.deps import ServicesDep

router = APIRouter(tags=["web"], include_in_schema=False)

# v1 is patched in place (fixes only), so browsers revalidate hourly with the ETag: a cheap 304.
SDK_CACHE_CONTROL = "public, max-age=3600"
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


CONSOLE_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
# Assets are linked as `console.js?v=<release hash>`: a versioned URL never changes, so browsers keep it a year;
# the page itself is revalidated on every load (a cheap 304), so a new release is picked up at once.
ASSET_CACHE_CONTROL = "public, max-age=31536000, immutable"
PAGE_CACHE_CONTROL = "no-cache"
VERSION_SLOT = "__VERSION__"
# A relative import between console modules: `from './x.js'`, `import './x.js'` or `import('./x.js')`.
RELATIVE_IMPORT = re.compile(r"""(\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.\.?/[^'"?#\s]+\.js)\2""")
# A Host header is echoed into the CSP's ws(s) sources only when it looks like a host name (and port).
HOST_PATTERN = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


@functools.cache
def console_sources() -> dict[str, bytes]:
    """The console's modules and style sheet as shipped, by path under web/console/ (e.g. `chats/chat.js`)."""
    found: dict[str, bytes] = {}
    folders = [("", resources.files("kefu").joinpath("web/console"))]
    while folders:
        prefix, folder = folders.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                folders.append((f"{prefix}{entry.name}/", entry))
            elif PurePosixPath(entry.name).suffix in CONSOLE_TYPES:
                found[prefix + entry.name] = entry.read_bytes()
    return found


@functools.cache
def console_version() -> str:
    """A hash of all the console's assets and their paths: it changes with every release that changes any of them."""
    digest = hashlib.sha256()
    for name, body in sorted(console_sources().items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    return digest.hexdigest()[:16]


@functools.cache
def console_file(name: str) -> StaticFile:
    """A console asset as served: a module's relative imports carry the release's version, like the page's links.

    A module resolves `./x.js` against its own URL without the query, so the version is written into each import:
    every module a page loads is then named by the same version, and a server answers only for its own.
    """
    body = console_sources()[name]
    if name.endswith(".js"):
        version = console_version()
        text = RELATIVE_IMPORT.sub(lambda m: f"{m[1]}{m[2]}{m[3]}?v={version}{m[2]}", body.decode())
        body = text.encode()
    return StaticFile(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


@functools.cache
def console_page() -> StaticFile:
    """index.html with its assets' version filled in, so the page names exactly the bytes it was built with."""
    template = resources.files("kefu").joinpath("web/console/index.html").read_text(encoding="utf-8")
    body = template.replace(VERSION_SLOT, console_version()).encode()
    return StaticFile(body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')


def socket_sources(request: Request) -> str:
    """This host's ws:// and wss:// origins for `connect-src` (older browsers do not count them under 'self')."""
    host = request.headers.get("host", "")
    return f" ws://{host} wss://{host}" if HOST_PATTERN.match(host) else ""


def console_security_headers(request: Request) -> dict[str, str]:
    """Only this origin's scripts, styles and API (plus its WebSocket), and no framing by other sites."""
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        f"media-src 'self' blob:; font-src 'self'; connect-src 'self'{socket_sources(request)}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def demo_security_headers(request: Request, page: str) -> dict[str, str]:
    """The CSP a careful shop would send with the widget embedded: scripts only from here or by their hash.

    The widget needs `script-src` for /sdk/v1/kefu.js, `connect-src` for the API and its socket, `img-src` for
    images in chat (blob: and data: previews), and `style-src 'unsafe-inline'` for the `<style>` in its shadow
    root (docs/sdk.md lists them for sites that embed it).
    """
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(page)
    )
    policy = (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' blob: data:; connect-src 'self'{socket_sources(request)}; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'self'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "strict-origin-when-cross-origin",
    }


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
async def demo(request: Request, svc: ServicesDep) -> HTMLResponse:
    """A small shop page with the widget embedded by the documented snippet, for the app `kefu demo` made."""
    app = await svc.admin.demo_app()
    if app is None:
        raise errors.NotFound("There is no demo app on this server; run `kefu demo` to make one.")
    page = demo_template().replace(APP_ID_SLOT, js_string(app.app_id))
    headers = {"Cache-Control": "no-store"} | demo_security_headers(request, page)
    return HTMLResponse(page, headers=headers)


@router.get("/console/")
async def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=308)


@router.get("/console")
async def console(request: Request) -> Response:
    """The agent console: one static page that talks to the public API and WebSocket only."""
    page = console_page()
    headers = {"ETag": page.etag, "Cache-Control": PAGE_CACHE_CONTROL} | console_security_headers(request)
    if etag_matches(request.headers.get("if-none-match", ""), page.etag):
        return Response(status_code=304, headers=headers)
    return Response(page.body, media_type="text/html; charset=utf-8", headers=headers)


@router.get("/console/{name:path}")
async def console_asset(name: str, request: Request, v: str | None = None) -> Response:
    """The console's modules and style sheet; kept a year when asked for by the version the page names.

    A version other than this server's is a page from another release (loaded just before an upgrade, or from
    another node mid-rollout): it gets a 404 rather than this release's bytes, so one page never mixes two releases.
    """
    if name not in console_sources():
        raise errors.NotFound(f"No console file '{name}'.")
    if v is not None and v != console_version():
        raise errors.NotFound(f"Console file '{name}' of version '{v}' is from another release; reload the page.")
    found = console_file(name)
    cache = ASSET_CACHE_CONTROL if v is not None else PAGE_CACHE_CONTROL
    headers = {"ETag": found.etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if etag_matches(request.headers.get("if-none-match", ""), found.etag):
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=CONSOLE_TYPES[PurePosixPath(name).suffix], headers=headers)
