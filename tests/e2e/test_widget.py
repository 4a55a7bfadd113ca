"""The JS SDK and chat widget in a real browser (Debian's Chromium) against a real kefu node.

The visitor is the browser; agents are WebSocket clients (tests.helpers). Waits are on page conditions and
socket frames, never sleeps.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from playwright.async_api import BrowserContext, Dialog, FilePayload, Page, Route, expect

from kefu.storage import apps as app_store
from tests.e2e.conftest import PERMISSIONS
from tests.helpers import App, Client, Node, running_node

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
KEFU_JS = ROOT / "src" / "kefu" / "web" / "sdk" / "v1" / "kefu.js"
SCREENSHOT = ROOT / "docs" / "images" / "widget.png"

# The integration example of the issue, exactly as integrators will paste it.
SNIPPET = """<script src="https://kefu.example.com/sdk/v1/kefu.js"></script>
<script>
  Kefu.init({
    appId: 'YOUR_APP_ID',
    onEvent: (event) => {
      if (event.type === 'error') Kefu.openChat({ context: `Error: ${event.message}` });
    },
    onSessionChange: (status) => { /* 'online' | 'busy' | 'offline' */ },
  });
</script>"""

# A host page whose CSS is hostile to anything it can reach: the widget lives in a shadow root.
HOSTILE_CSS = "* { color: red !important; font-size: 40px !important; } div, button { display: none !important; }"

ARTICLES = [
    {
        "id": "refund-policy",
        "question": "怎么退货？",
        "similar": ["退货政策是什么", "七天无理由退货吗", "买的东西不想要了能退吗", "如何申请退货"],
        "answer": "自签收之日起 7 天内，商品未使用可申请无理由退货：在“我的订单”中点击“申请售后”即可。",
        "category": "售后",
    },
    {
        "id": "shipping-time",
        "question": "多久发货？",
        "similar": ["什么时候发货", "下单后几天能到", "发货时间"],
        "answer": "现货商品 24 小时内发货，顺丰包邮，一般 1-3 天送达。",
        "category": "物流",
    },
    {
        "id": "invoice",
        "question": "可以开发票吗？",
        "similar": ["怎么开发票", "发票怎么申请"],
        "answer": "可以。订单完成后在“我的订单 - 申请发票”中填写抬头，电子发票 1 个工作日内发到邮箱。",
        "category": "发票",
    },
]


# --- helpers ---------------------------------------------------------------------------------------


def base_url(node: Node) -> str:
    return f"http://127.0.0.1:{node.port}"


def shop_html(node: Node, app: App) -> str:
    snippet = SNIPPET.replace("https://kefu.example.com", base_url(node)).replace("YOUR_APP_ID", app.app_id)
    return f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>小店</title>
<style>{HOSTILE_CSS}</style></head><body><h1>小店</h1>
<p id="boom" onclick="window.cart.items[3].price">结算</p>
{snippet}</body></html>"""


async def open_shop(context: BrowserContext, node: Node, app: App) -> Page:
    """A page on the node's origin (served by the browser itself) that embeds the snippet."""
    url = f"{base_url(node)}/e2e/shop"

    async def serve(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=shop_html(node, app))

    await context.route(url, serve)
    page = await context.new_page()
    await page.goto(url)
    await expect(page.locator(".launcher")).to_be_visible()
    await page.evaluate("window.kefuErrors = []; Kefu.on('kefu_error', (e) => kefuErrors.push(e))")
    return page


async def with_agent(node: Node, app: App, online: bool = True) -> tuple[dict[str, Any], Client]:
    info = await node.add_agent(app, name="王芳")
    return info, await node.agent(app, info["email"], online=online)


async def type_message(page: Page, text: str) -> None:
    box = page.locator(".composer textarea")
    await box.fill(text)
    await box.press("Enter")


def bubbles(page: Page, sender: str | None = None) -> Any:
    where = f"[data-sender={sender}]" if sender else ""
    return page.locator(f".list .msg{where} .bubble")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def archive(node: Node, app: App, session_id: str) -> dict[str, Any]:
    r = await node.http.get(f"/api/v1/conversations/{session_id}", headers=auth(app.api_key))
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


async def import_articles(node: Node, app: App) -> httpx.Response:
    return await node.http.post("/api/v1/kb/import", json=ARTICLES, headers=auth(app.api_key))


async def bot_ready(node: Node, app: App) -> None:
    """Import the articles and check that the FAQ bot answers from them; if it does not, the test fails (a broken
    bot is a regression to see, never a reason to skip)."""
    r = await import_articles(node, app)
    assert r.status_code == 200, f"POST /api/v1/kb/import answered {r.status_code}: {r.text[:200]}"
    admin_token = await node.login(app, app.admin_email)
    asked = await node.http.post("/api/v1/bot/ask", json={"question": "怎么退货"}, headers=auth(admin_token))
    assert asked.status_code == 200 and asked.json().get("article_id") == "refund-policy", (
        f"POST /api/v1/bot/ask does not answer from the articles: {asked.status_code} {asked.text[:200]}"
    )


def loaded(locator: Any) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        await expect(locator).to_have_attribute("src", re.compile(r"^blob:"))
        await locator.evaluate("img => img.decode()")  # rejects unless the image really loaded
        assert await locator.evaluate("img => img.naturalWidth") > 0

    return check


# --- the script itself ------------------------------------------------------------------------------


async def test_kefu_js_is_small_and_cached(web_node: Node) -> None:
    size, packed = KEFU_JS.stat().st_size, len(gzip.compress(KEFU_JS.read_bytes(), 9))
    assert size < 80_000, f"kefu.js is {size} bytes; it must stay under 80 KB unminified"
    assert packed < 20_000, f"kefu.js is {packed} bytes gzipped; it must stay under 20 KB"
    r = await web_node.http.get("/sdk/v1/kefu.js")
    assert r.status_code == 200
    assert r.content == KEFU_JS.read_bytes()
    assert r.headers["content-type"].startswith("text/javascript")
    assert "max-age" in r.headers["cache-control"]
    etag = r.headers["etag"]
    again = await web_node.http.get("/sdk/v1/kefu.js", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert not again.content
    other = await web_node.http.get("/sdk/v1/kefu.js", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


async def test_demo_page_is_404_without_a_demo_app(tmp_path: Path) -> None:
    async with running_node(f"sqlite:///{tmp_path / 'kefu.db'}", upload_dir=str(tmp_path / "up")) as node:
        r = await node.http.get("/demo")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_found"


# --- the snippet: a page error opens a chat carrying it --------------------------------------------------


async def test_snippet_opens_a_chat_with_the_page_error_as_context(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    _, agent = await with_agent(web_node, app)
    page = await open_shop(context, web_node, app)

    # The host page's hostile CSS does not reach into the widget.
    launcher = page.locator(".launcher")
    box = await launcher.bounding_box()
    assert box is not None
    assert box["width"] == 60

    await page.locator("#boom").click()  # throws: window.cart is undefined

    assigned = await agent.expect("assigned")
    assert assigned["context"] == "Error: Cannot read properties of undefined (reading 'items')"
    await expect(page.locator(".panel")).to_be_visible()
    await agent.text(assigned["session_id"], "您好，我看到您结算时页面出错了，我来帮您处理。")
    await expect(bubbles(page, "agent")).to_have_text(["您好，我看到您结算时页面出错了，我来帮您处理。"])
    await expect(page.locator("header .sub")).to_contain_text("王芳 为您服务")
    assert await page.evaluate("Kefu.state.status") == "online"
    await agent.close()


# --- bot, handoff, queue, agent ----------------------------------------------------------------------------


async def test_bot_answers_then_queue_then_agent(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    await bot_ready(web_node, app)
    info = await web_node.add_agent(app, name="王芳")
    page = await open_shop(context, web_node, app)
    await page.locator(".launcher").click()
    # Nobody is online: the widget is in leave-a-message mode.
    await expect(page.locator(".banner")).to_contain_text("当前没有客服在线")
    await expect(page.locator(".composer textarea")).to_have_attribute("placeholder", "客服暂时不在线，请留言…")

    await type_message(page, "怎么退货")
    answer = bubbles(page, "bot").first
    await expect(answer).to_contain_text("7 天内")
    await page.locator(".msg[data-sender=bot] .fb .up").first.click()
    await expect(page.locator(".msg[data-sender=bot] .fb").first).to_have_text("感谢您的反馈")

    await type_message(page, "转人工")
    await expect(page.locator(".banner")).to_contain_text("正在为您排队，您前面还有 0 位")

    agent = await web_node.agent(app, info["email"])
    assigned = await agent.expect("assigned")
    assert assigned["handoff_reason"] == "user_request"
    await agent.text(assigned["session_id"], "您好，我是王芳，退货哪里遇到问题了？")
    await expect(bubbles(page, "agent")).to_have_text(["您好，我是王芳，退货哪里遇到问题了？"])
    await expect(page.locator(".banner")).to_be_hidden()
    record = await archive(web_node, app, assigned["session_id"])
    assert await page.evaluate("kefuErrors") == []  # the feedback frame was taken
    assert [m["sender"] for m in record["messages"]][:2] == ["user", "bot"]
    await agent.close()


# --- reload, offline, retries ------------------------------------------------------------------------------


async def test_reload_restores_history_and_offline_gaps_are_filled_once(
    web_node: Node, context: BrowserContext
) -> None:
    app = await web_node.create_app()
    _, agent = await with_agent(web_node, app)
    page = await open_shop(context, web_node, app)
    await page.locator(".launcher").click()
    await type_message(page, "你好，在吗？")
    assigned = await agent.expect("assigned")
    sid = assigned["session_id"]
    await agent.expect("message", content="你好，在吗？")
    await agent.text(sid, "在的，请问有什么可以帮您？")
    await expect(bubbles(page)).to_have_text(["你好，在吗？", "在的，请问有什么可以帮您？"])

    await page.reload()
    await expect(page.locator(".launcher")).to_be_visible()
    await page.locator(".launcher").click()
    await expect(bubbles(page)).to_have_text(["你好，在吗？", "在的，请问有什么可以帮您？"])
    assert await page.evaluate("Kefu.state.sessionId") == sid

    await context.set_offline(True)
    await expect(page.locator(".banner")).to_contain_text("网络连接已断开")
    await agent.text(sid, "第一条：断网时发的")
    await agent.text(sid, "第二条：也是断网时发的")
    await type_message(page, "我刚才断网了")
    await expect(page.locator(".msg.pending .mark")).to_have_text("发送中…")
    await context.set_offline(False)

    expected = [
        "你好，在吗？",
        "在的，请问有什么可以帮您？",
        "第一条：断网时发的",
        "第二条：也是断网时发的",
        "我刚才断网了",
    ]
    await expect(bubbles(page)).to_have_text(expected)
    await expect(page.locator(".msg.pending")).to_have_count(0)
    await agent.expect("message", content="我刚才断网了")
    record = await archive(web_node, app, sid)
    assert [m["content"] for m in record["messages"]].count("我刚才断网了") == 1
    assert [m["content"] for m in record["messages"]] == expected
    # The agent reads it: the visitor's message is marked read.
    await agent.send("read", session_id=sid, seq=record["messages"][-1]["seq"])
    await expect(page.locator(".msg.me .mark").last).to_have_text("已读")
    await agent.close()


# --- images ---------------------------------------------------------------------------------------------------


async def test_image_upload_shows_thumbnails_on_both_sides(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    _, agent = await with_agent(web_node, app)
    page = await open_shop(context, web_node, app)
    await page.locator(".launcher").click()
    await type_message(page, "我收到的商品是这样的")
    assigned = await agent.expect("assigned")
    sid = assigned["session_id"]
    await agent.expect("message", content="我收到的商品是这样的")

    photo = FilePayload(name="damaged.png", mimeType="image/png", buffer=png((640, 480), (230, 80, 40)))
    await page.locator(".composer input[type=file]").set_input_files(files=[photo])
    # Delivered (a thumbnail in a message with a seq) or refused by the server (marked failed with its reason).
    await page.wait_for_selector(".msg.me[data-seq] img.thumb, .msg.failed")
    if await page.locator(".msg.failed").count():
        reason = await page.locator(".msg.failed .mark").inner_text()
        pytest.fail(f"the server refused the image message (`send` with attachment_id): {reason}")
    got = await agent.expect("message", where=lambda f: f.get("msg_type") == "image")
    attachment = got["attachment"]
    assert attachment["content_type"] == "image/png"
    assert attachment["name"] == "damaged.png"
    mine = page.locator(".msg[data-sender=user][data-seq] img.thumb")
    await loaded(mine)()
    # The agent side: the thumbnail the frame names is there for the agent's token.
    agent_token = await web_node.login(app, agent.label.removeprefix("agent "))
    thumb_url = attachment.get("thumbnail_url") or attachment["url"]
    r = await web_node.http.get(thumb_url, headers=auth(agent_token))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("image/")

    # And the other way: the agent sends a picture, the visitor sees its thumbnail and can enlarge it.
    up = await web_node.http.post(
        "/api/v1/uploads",
        files={"file": ("label.png", png((300, 200), (40, 120, 220)), "image/png")},
        headers=auth(agent_token),
    )
    assert up.status_code in (200, 201), up.text
    await agent.send(
        "send",
        ref="img",
        session_id=sid,
        client_msg_id="agent-img-1",
        msg_type="image",
        content="请按图中位置贴上退货标签",
        attachment_id=up.json()["attachment_id"],
    )
    await agent.expect("ack", ref="img")
    theirs = page.locator(".msg[data-sender=agent] img.thumb")
    await loaded(theirs)()
    await expect(page.locator(".msg[data-sender=agent] .cap")).to_have_text("请按图中位置贴上退货标签")
    await theirs.click()
    await loaded(page.locator(".lightbox img"))()
    await page.locator(".lightbox").click()
    await expect(page.locator(".lightbox")).to_have_count(0)
    await agent.close()


# --- text is text -----------------------------------------------------------------------------------------------


async def test_html_in_messages_is_shown_as_text_and_runs_nothing(web_node: Node, context: BrowserContext) -> None:
    payload = "<img src=x onerror=alert(1)>"
    app = await web_node.create_app()
    _, agent = await with_agent(web_node, app)
    page = await open_shop(context, web_node, app)
    dialogs: list[str] = []

    async def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", dismiss)
    await page.locator(".launcher").click()
    await type_message(page, payload)
    assigned = await agent.expect("assigned")
    sid = assigned["session_id"]
    await agent.expect("message", content=payload)
    await agent.text(sid, payload)
    await agent.text(sid, "看 https://example.com/a?b=<b>1</b> 这个链接")
    await expect(bubbles(page)).to_have_text([payload, payload, "看 https://example.com/a?b=<b>1</b> 这个链接"])
    images = await page.evaluate("document.getElementById('kefu-widget').shadowRoot.querySelectorAll('img').length")
    assert images == 0
    link = page.locator(".list .msg[data-sender=agent] a")
    await expect(link).to_have_attribute("href", "https://example.com/a?b=")
    await expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    # A round trip after the payloads rendered: had any of them become HTML, its onerror would have run by now.
    await agent.text(sid, "收到")
    await expect(bubbles(page, "agent").last).to_have_text("收到")
    assert await page.evaluate("1 + 1") == 2
    assert dialogs == []
    await agent.close()


# --- a phone --------------------------------------------------------------------------------------------------


async def test_on_a_phone_the_panel_fills_the_screen(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    phone = await context.browser.new_context(  # type: ignore[union-attr]
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="en-US", permissions=PERMISSIONS
    )
    try:
        page = await open_shop(phone, web_node, app)
        await page.locator(".launcher").tap()
        panel = page.locator(".panel")
        await expect(panel).to_be_visible()
        box = await panel.bounding_box()
        assert box == {"x": 0, "y": 0, "width": 390, "height": 844}
        await expect(page.locator(".launcher")).to_be_hidden()
        # The host page says lang="zh-CN": the widget speaks Chinese unless `locale` says otherwise.
        await expect(page.locator("header .title")).to_have_text("在线客服")
        await page.locator("header .x").tap()
        await expect(panel).to_be_hidden()
    finally:
        await phone.close()


# --- the demo page ------------------------------------------------------------------------------------------------


async def test_demo_page_embeds_the_widget(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app("Demo shop 演示商城")
    async with web_node.services.db.transaction() as tx:
        await app_store.set_marker(tx, "demo_app_id", app.app_id)
    served = await web_node.http.get("/demo")
    html = served.text
    policy = served.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in policy and "'unsafe-inline'" not in policy.split("style-src")[0]
    assert "frame-ancestors 'self'" in policy and served.headers["x-content-type-options"] == "nosniff"
    assert f'appId: "{app.app_id}"' in html
    assert "YOUR_APP_ID" not in html
    await bot_ready(web_node, app)
    _, agent = await with_agent(web_node, app)

    page = await context.new_page()
    refused: list[str] = []  # the widget works under the page's CSP: nothing it does is blocked
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    await page.goto(f"{base_url(web_node)}/demo")
    await expect(page.locator("#svc")).to_have_text("在线")
    await page.locator("#checkout").click()  # the demo's deliberate bug
    await expect(page.locator(".panel")).to_be_visible()
    await type_message(page, "退货政策是什么？")
    await expect(bubbles(page, "bot").first).to_contain_text("7 天内")
    await type_message(page, "转人工")
    assigned = await agent.expect("assigned")
    assert assigned["context"] == "Error: Cannot read properties of undefined (reading 'price')"
    sid = assigned["session_id"]
    await agent.send("typing", session_id=sid)
    await agent.text(sid, "您好，我是王芳。看到您结算时页面报错了，已经帮您记录，我这边为您手动下单可以吗？")
    await expect(bubbles(page, "agent")).to_have_count(1)
    await agent.send("typing", session_id=sid)
    await expect(page.locator(".typing")).to_have_text("对方正在输入…")
    fonts = await page.evaluate("document.fonts.check('14px \"Noto Sans CJK SC\"')")
    assert fonts, "Chinese needs fonts-noto-cjk"
    shot = await page.screenshot()
    assert len(shot) > 10_000
    assert not refused, refused
    if os.environ.get("KEFU_UPDATE_SCREENSHOT"):
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)
    await agent.close()
