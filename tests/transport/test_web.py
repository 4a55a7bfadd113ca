"""The demo shop page serves the widget for the app `kefu demo` made, found through the admin service."""

from __future__ import annotations

from kefu.bot.engine import shared_matcher
from kefu.bot.index import IndexTexts
from kefu.domain.clock import SystemClock
from kefu.services.demo import ensure_demo_app
from kefu.services.kb import KbArticleSource
from tests.helpers import Node


async def test_the_demo_page_embeds_the_demo_app_once_there_is_one(node: Node) -> None:
    r = await node.http.get("/demo")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"

    first_runs: list[bool] = []
    made = await ensure_demo_app(node.services.db, SystemClock(), lambda: first_runs.append(True))
    r = await node.http.get("/demo")
    assert r.status_code == 200, r.text
    assert f'"{made.app_id}"' in r.text and "YOUR_APP_ID" not in r.text
    assert "script-src 'self' 'sha256-" in r.headers["content-security-policy"]
    again = await ensure_demo_app(node.services.db, SystemClock(), lambda: first_runs.append(True))
    assert again.app_id == made.app_id and first_runs == [True]  # made once, then reused


async def test_the_demo_shop_is_indexed_before_its_node_starts(node: Node) -> None:
    """Every vector the demo's index needs is stored when `kefu demo` starts its node: the node's warm-up reads
    them instead of encoding, so the shop answers seconds after the start, not after a long first build."""
    made = await ensure_demo_app(node.services.db, SystemClock())
    matcher = shared_matcher()
    source = KbArticleSource(node.services.db)
    _, articles = await source.kb_articles(made.app_id)
    wanted = IndexTexts.of(articles, matcher.analyzer).by_table(matcher.use, matcher.e5)
    stored = await source.kb_vectors(made.app_id, wanted)
    assert articles and all(set(stored[key]) == set(texts) for key, texts in wanted.items())
