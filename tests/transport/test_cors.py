"""The widget on another site: CORS on its endpoints, and the app's origin allowlist."""

from __future__ import annotations

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from kefu.storage import apps as app_store
from tests.helpers import Node

SHOP = "https://shop.example.com"


async def test_preflight_and_responses_carry_cors_headers_for_widget_endpoints_only(node: Node) -> None:
    app = await node.create_app()
    pre = await node.http.options(
        "/api/v1/visitor/session",
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == SHOP
    assert "Authorization" in pre.headers["access-control-allow-headers"]
    r = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id}, headers={"Origin": SHOP})
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == SHOP
    r = await node.http.get("/api/v1/status", params={"app_id": app.app_id}, headers={"Origin": SHOP})
    assert r.headers["access-control-allow-origin"] == SHOP
    r = await node.http.get("/api/v1/conversations", headers={"Origin": SHOP, "Authorization": f"Bearer {app.api_key}"})
    assert "access-control-allow-origin" not in r.headers  # the console's API is not for other sites


async def test_an_app_with_an_allowlist_refuses_other_sites(node: Node) -> None:
    app = await node.create_app()
    async with node.services.db.transaction() as tx:
        current = await app_store.get_app(tx, app.app_id)
        assert current is not None
        await app_store.update_app_settings(
            tx, app.app_id, {"bot_threshold": 0.7, "require_identity": True, "allowed_origins": [SHOP]}
        )
    ok = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id}, headers={"Origin": SHOP})
    assert ok.status_code == 200
    bad = await node.http.post(
        "/api/v1/visitor/session", json={"app_id": app.app_id}, headers={"Origin": "https://evil.example.net"}
    )
    assert bad.status_code == 403 and bad.json()["error"]["code"] == "forbidden"
    token = ok.json()["token"]
    url = f"{node.ws_base}/ws/visitor?token={token}"
    async with websockets.connect(url, origin=SHOP) as ws:  # type: ignore[arg-type]
        assert '"ready"' in str(await ws.recv())
    async with websockets.connect(url, origin="https://evil.example.net") as ws:  # type: ignore[arg-type]
        assert '"forbidden"' in str(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_a_wildcard_allowlist_lets_any_site_in_and_a_subdomain_wildcard_only_subdomains(node: Node) -> None:
    """Issue 20: `allowed_origins: ["*"]` was accepted but compared literally, which blocked every browser."""
    app = await node.create_app()
    api = {"Authorization": f"Bearer {app.api_key}"}

    async def session(origin: str) -> int:
        r = await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id}, headers={"Origin": origin})
        return r.status_code

    r = await node.http.put(f"/api/v1/apps/{app.app_id}", json={"allowed_origins": ["*"]}, headers=api)
    assert r.status_code == 200 and r.json()["allowed_origins"] == ["*"], r.text
    assert await session("https://anywhere.example.org") == 200
    token = (await node.http.post("/api/v1/visitor/session", json={"app_id": app.app_id})).json()["token"]
    async with websockets.connect(
        f"{node.ws_base}/ws/visitor?token={token}",
        origin="https://anywhere.example.org",  # type: ignore[arg-type]
    ) as ws:
        assert '"ready"' in str(await ws.recv())

    r = await node.http.put(f"/api/v1/apps/{app.app_id}", json={"allowed_origins": ["https://*.shop.com"]}, headers=api)
    assert r.status_code == 200, r.text
    assert await session("https://m.shop.com") == 200
    assert await session("https://a.b.shop.com") == 200
    for other in ("https://shop.com", "http://m.shop.com", "https://evilshop.com", "https://shop.com.evil.net"):
        assert await session(other) == 403, other

    for bad in ("https://shop*.com", "https://*", "*.shop.com"):
        r = await node.http.put(f"/api/v1/apps/{app.app_id}", json={"allowed_origins": [bad]}, headers=api)
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request", (bad, r.text)
