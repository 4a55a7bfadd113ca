"""The demo shop page serves the widget for the app `kefu demo` made, found through the admin service."""

from __future__ import annotations

from kefu.domain.clock import SystemClock
from kefu.services.demo import ensure_demo_app
from tests.helpers import Node


async def test_the_demo_page_embeds_the_demo_app_once_there_is_one(node: Node) -> None:
    r = await node.http.get("/demo")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    made = await ensure_demo_app(node.services.db, SystemClock())
    r = await node.http.get("/demo")
    assert r.status_code == 200, r.text
    assert f'"{made.app_id}"' in r.text and "YOUR_APP_ID" not in r.text
    assert "script-src 'self' 'sha256-" in r.headers["content-security-policy"]
    assert (await ensure_demo_app(node.services.db, SystemClock())).app_id == made.app_id  # made once, then reused
