"""`/docs` (Swagger UI) and `/redoc`: off unless `KEFU_API_DOCS=on`, then served from this node's own files.

FastAPI's defaults load Swagger UI and ReDoc from a CDN, without integrity checks, under no
Content-Security-Policy and framable by any site: a page on the node that runs whatever the CDN
serves. Here the pages are off by default; when on, their scripts and styles come from the
`fastapi-offline` package's copies (served under ASSETS), and the pages carry a CSP that allows
only those files and the page's own inline script (by its hash), and forbid framing.
`/openapi.json`, which the contract promises, is served either way.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/api-docs-assets"
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def docs_security_headers(page: str) -> dict[str, str]:
    """Scripts only from this origin or by the hash of the page's own inline ones; no framing at all."""
    hashes = "".join(
        " 'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
        for body in INLINE_SCRIPT.findall(page)
    )
    policy = (
        f"default-src 'none'; script-src 'self'{hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; worker-src 'self' blob:; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _page(response: HTMLResponse) -> HTMLResponse:
    page = bytes(response.body).decode()
    return HTMLResponse(page, headers=docs_security_headers(page))


def install(app: FastAPI) -> None:
    """Serve `/docs` and `/redoc` (call only when the node's settings turn them on)."""
    static = resources.files("fastapi_offline") / "static"
    app.mount(ASSETS, StaticFiles(directory=str(static)), name="api-docs-assets")
    title = f"{app.title} API"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return _page(
            get_swagger_ui_html(
                openapi_url="/openapi.json",
                title=title,
                swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                swagger_css_url=f"{ASSETS}/swagger-ui.css",
                swagger_favicon_url=f"{ASSETS}/favicon.png",
            )
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return _page(
            get_redoc_html(
                openapi_url="/openapi.json",
                title=title,
                redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                redoc_favicon_url=f"{ASSETS}/favicon.png",
                with_google_fonts=False,
            )
        )
