"""The widget and the console through a database outage (the test's own PostgreSQL, stopped and started).

A send the server refuses as `unavailable` stays pending, goes again after a pause under the same
client_msg_id, and arrives once when the database is back; it is not shown as failed and not lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, Page, WebSocket, expect

from tests.chaos.servers import OwnPostgres, missing_programs
from tests.e2e import test_console as console
from tests.e2e import test_widget as widget
from tests.helpers import Node, running_node

pytestmark = [
    pytest.mark.asyncio(loop_scope="session"),
    pytest.mark.skipif(missing_programs() is not None, reason=str(missing_programs())),
]


class Refusals:
    """Set when a page's socket receives an `unavailable` error frame for a send (a ref is present)."""

    def __init__(self, context: BrowserContext) -> None:
        self.seen = asyncio.Event()
        context.on("page", lambda page: page.on("websocket", self._watch))

    def _watch(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._frame)

    def _frame(self, payload: Any) -> None:
        text = payload if isinstance(payload, str) else bytes(payload).decode()
        if '"code":"unavailable"' in text and '"ref"' in text:
            self.seen.set()


@pytest_asyncio.fixture(loop_scope="session")
async def pg_node() -> AsyncIterator[tuple[OwnPostgres, Node]]:
    with OwnPostgres() as pg:
        async with running_node(pg.url) as node:
            yield pg, node


async def test_the_widget_resends_after_unavailable_and_the_message_arrives_once(
    pg_node: tuple[OwnPostgres, Node], context: BrowserContext
) -> None:
    pg, node = pg_node
    refusals = Refusals(context)
    app = await node.create_app()
    _, agent = await widget.with_agent(node, app)
    page: Page = await widget.open_shop(context, node, app)
    await page.locator(".launcher").click()
    await widget.type_message(page, "你好")
    sid = (await agent.expect("assigned"))["session_id"]
    await agent.expect("message", content="你好")

    pg.stop()
    await widget.type_message(page, "数据库停了也要送到")
    await asyncio.wait_for(refusals.seen.wait(), 15)
    await expect(page.locator(".msg.pending .mark")).to_have_text("发送中…")  # waiting, not failed
    pg.start()

    await agent.expect("message", content="数据库停了也要送到", timeout=30)
    await expect(page.locator(".msg.pending")).to_have_count(0)
    record = await widget.archive(node, app, sid)
    assert [m["content"] for m in record["messages"]] == ["你好", "数据库停了也要送到"]
    await agent.close()


async def test_the_console_resends_after_unavailable_and_the_reply_arrives_once(
    pg_node: tuple[OwnPostgres, Node], context: BrowserContext
) -> None:
    pg, node = pg_node
    refusals = Refusals(context)
    app = await node.create_app()
    agent = await node.add_agent(app, name="赵敏")
    page = await console.login(context, node, app, agent["email"])
    visitor = await node.visitor(app, name="访客甲")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    await visitor.text(sid, "在吗")
    await expect(console.bubbles(page)).to_have_text(["在吗"])

    pg.stop()
    await console.reply(page, "在的，数据库刚才停了")
    await asyncio.wait_for(refusals.seen.wait(), 15)
    await expect(page.locator(".msg.pending.failed")).to_have_count(0)  # still pending, not marked failed
    pg.start()

    await visitor.expect("message", content="在的，数据库刚才停了", timeout=30)
    await expect(console.bubbles(page)).to_have_text(["在吗", "在的，数据库刚才停了"])
    record = await widget.archive(node, app, sid)
    assert [m["content"] for m in record["messages"]] == ["在吗", "在的，数据库刚才停了"]
