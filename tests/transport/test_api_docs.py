"""`/docs` and `/redoc` (issue 20): off by default; with KEFU_API_DOCS=on served from local files under a CSP that
forbids framing and allows only this origin's scripts and the page's own inline one."""

from __future__ import annotations

import base64
import hashlib
import re

from tests.helpers import running_node


async def test_the_api_docs_are_off_by_default_and_the_openapi_document_stays(sqlite_url: str) -> None:
    async with running_node(sqlite_url) as node:
        for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
            r = await node.http.get(path)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", path
        assert (await node.http.get("/openapi.json")).status_code == 200


async def test_with_api_docs_on_they_load_nothing_from_elsewhere_and_cannot_be_framed(sqlite_url: str) -> None:
    async with running_node(sqlite_url, api_docs="on") as node:
        for path in ("/docs", "/redoc"):
            r = await node.http.get(path)
            assert r.status_code == 200, path
            page, policy = r.text, r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in policy and r.headers["x-frame-options"] == "DENY"
            assert "default-src 'none'" in policy
            assert not re.search(r"(src|href)=\"(https?:)?//", page), f"{path} loads something from elsewhere"
            assets = re.findall(r"(?:src|href)=['\"](/api-docs-assets/[^'\"]+)", page)
            assert assets, page
            for asset in assets:
                assert (await node.http.get(asset)).status_code == 200, asset
            for inline in re.findall(r"<script>(.*?)</script>", page, re.DOTALL):
                digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
                assert f"'sha256-{digest}'" in policy
        assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
