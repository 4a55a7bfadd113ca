"""Browser tests: Playwright drives Debian's Chromium against a real kefu node, all in one event loop.

One browser and one node serve the whole session (each test makes its own app, so tests stay apart);
each test gets a fresh browser context, so localStorage starts empty.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.helpers import Node, running_node

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
# We run as root on a machine without network: no sandbox, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Test pages are served by the browser itself (route.fulfill), so Chromium cannot tell they are on the
# node's loopback address and would block their sockets to it (Local Network Access); a real site and a real
# kefu server on public addresses need no such permission.
PERMISSIONS = ["local-network-access"]
expect.set_options(timeout=15_000)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip("browser tests need Debian's Chromium at /usr/bin/chromium (apt-get install chromium)")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def web_node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """A kefu node on SQLite for the whole session; uploads go to a temporary directory."""
    root = tmp_path_factory.mktemp("e2e")
    async with running_node(f"sqlite:///{root / 'kefu.db'}", upload_dir=str(root / "uploads")) as node:
        yield node


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (empty localStorage), desktop-sized, Chinese locale."""
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800}, permissions=PERMISSIONS)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest_asyncio.fixture(loop_scope="session")
async def second_context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """Another browser profile: a second agent, or the same agent on a second device."""
    ctx = await browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 800}, permissions=PERMISSIONS)
    try:
        yield ctx
    finally:
        await ctx.close()


# Uncaught exceptions and CSP violations on any page opened with `watch`; each test asserts there were none.
PROBLEMS: list[str] = []


def watch(page: Page) -> Page:
    page.on("pageerror", lambda exc: PROBLEMS.append(f"page error: {exc}"))
    page.on("console", lambda msg: PROBLEMS.append(msg.text) if "Content Security Policy" in msg.text else None)
    return page


@pytest.fixture(autouse=True)
def no_page_problems() -> Iterator[None]:
    PROBLEMS.clear()
    yield
    assert not PROBLEMS, PROBLEMS


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
