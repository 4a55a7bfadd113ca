"""The console's admin pages, internal notes, paged history, logout and keep-alive, in Debian's Chromium.

A real kefu node (its own, so webhooks may call a receiver on loopback) and real browser contexts; visitors
are WebSocket clients (tests.helpers). Waits are on page conditions, socket frames and receiver events, never
sleeps. With KEFU_UPDATE_SCREENSHOT=1 the last test also rewrites docs/images/console.png and admin.png.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import pytest_asyncio
from playwright.async_api import BrowserContext, FilePayload, Page, WebSocket, expect

from tests.e2e.conftest import PROBLEMS, auth, watch
from tests.helpers import PASSWORD, App, Client, Node, running_node

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
CONSOLE_SHOT = ROOT / "docs" / "images" / "console.png"
ADMIN_SHOT = ROOT / "docs" / "images" / "admin.png"
UPDATE_SCREENSHOTS = bool(os.environ.get("KEFU_UPDATE_SCREENSHOT"))

KB_FILE = [
    {
        "id": "refund-policy",
        "question": "怎么退货？",
        "similar": ["退货政策是什么", "七天无理由退货吗", "如何申请退货"],
        "answer": "自签收之日起 7 天内，商品未使用可申请无理由退货。",
        "category": "售后",
    },
    {
        "id": "shipping-time",
        "question": "多久发货？",
        "similar": ["什么时候发货", "下单后几天能到"],
        "answer": "工作日 16:00 前下单当天发货，一般 2-3 天送达。",
        "category": "物流",
    },
    {
        "id": "invoice",
        "question": "怎么开发票？",
        "similar": ["可以开增值税发票吗", "发票抬头写错了"],
        "answer": "在「我的订单」中点击「申请发票」，电子发票 1 个工作日内发送到邮箱。",
        "category": "发票",
    },
]


# --- fixtures and helpers ----------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Node]:
    """This module's node: webhooks may target a receiver on 127.0.0.1 (KEFU_WEBHOOK_ALLOW_PRIVATE)."""
    root = tmp_path_factory.mktemp("console-admin")
    async with running_node(
        f"sqlite:///{root / 'kefu.db'}", upload_dir=str(root / "uploads"), webhook_allow_private=True
    ) as running:
        yield running


async def open_console(context: BrowserContext, node: Node, app: App, email: str, online: bool = True) -> Page:
    page = await context.new_page()
    watch(page)
    await page.goto(f"http://127.0.0.1:{node.port}/console")
    await sign_in(page, app, email)
    if online:
        await page.click(".status-switch button[data-status=online]")
        await expect(page.locator(".me-status")).to_have_text("在线")
    return page


async def sign_in(page: Page, app: App, email: str) -> None:
    await page.fill("#login input[name=app_id]", app.app_id)
    await page.fill("#login input[name=email]", email)
    await page.fill("#login input[name=password]", PASSWORD)
    await page.click("#login button[type=submit]")
    await expect(page.locator(".conn-dot")).to_have_attribute("data-state", "live")


async def admin_page(page: Page, name: str) -> None:
    await page.click(".nav a[data-view=admin]")
    await page.click(f".admin-nav a[data-page={name}]")
    await expect(page.locator(f".admin-body[data-page={name}]")).to_be_visible()


async def get_json(node: Node, path: str, token: str) -> Any:
    r = await node.http.get(path, headers=auth(token))
    assert r.status_code == 200, r.text
    return r.json()


def bubbles(page: Page) -> Any:
    return page.locator(".messages .msg[data-seq] .bubble")


async def reply(page: Page, text: str) -> None:
    box = page.locator(".composer textarea")
    await box.fill(text)
    await box.press("Enter")


def payload(name: str, mime_type: str, data: bytes) -> FilePayload:
    return {"name": name, "mimeType": mime_type, "buffer": data}


def tags_hash(app: App, user_id: str, tags: dict[str, Any]) -> str:
    canonical = json.dumps(tags, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(app.secret.encode(), f"{user_id}\n{canonical}".encode(), hashlib.sha256).hexdigest()


class Receiver:
    """A webhook receiver on loopback: answers 200 to every POST and keeps the bodies."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hooks/kefu"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        body = await reader.readexactly(int(length.group(1))) if length else b""
        self.bodies.append(orjson.loads(body))
        self.arrived.set()
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def __aenter__(self) -> Receiver:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()


# --- agents, groups and routing rules ----------------------------------------------------------------------


async def test_admin_adds_an_agent_and_routing_rules(node: Node, context: BrowserContext) -> None:
    app = await node.create_app()
    token = await node.login(app, app.admin_email)
    page = await open_console(context, node, app, app.admin_email, online=False)
    await admin_page(page, "agents")
    await expect(page.locator(f".agents-table tr[data-email='{app.admin_email}']")).to_be_visible()

    # Add an agent with a level, a capacity and a new group.
    await page.click(".add-agent")
    dialog = page.locator("#agent-dialog")
    await dialog.locator("input[name=email]").fill("wangfang@example.com")
    await dialog.locator("input[name=password]").fill("Secret-pass-1")
    await dialog.locator("input[name=name]").fill("王芳")
    await dialog.locator("input[name=level]").fill("3")
    await dialog.locator("input[name=max_concurrent]").fill("8")
    await dialog.locator("input[name=new_groups]").fill("vip")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog).to_have_count(0)
    row = page.locator(".agents-table tr[data-email='wangfang@example.com']")
    await expect(row.locator(".name")).to_have_text("王芳")
    agents = (await get_json(node, "/api/v1/agents", token))["items"]
    added = next(a for a in agents if a["email"] == "wangfang@example.com")
    assert (added["name"], added["level"], added["max_concurrent"], added["role"]) == ("王芳", 3, 8, "agent")
    assert sorted(added["groups"]) == ["default", "vip"]

    # Edit it: a higher level, only the vip group.
    await row.locator("button.edit").click()
    await dialog.locator("input[name=level]").fill("5")
    await dialog.locator("input[name=groups][value=default]").uncheck()
    await dialog.locator("button[type=submit]").click()
    await expect(row.locator(".level")).to_have_text("5")
    edited = await get_json(node, f"/api/v1/agents/{added['agent_id']}", token)
    assert (edited["level"], edited["groups"]) == (5, ["vip"])

    # The API's error is shown as it was worded, with its code.
    await page.click(".add-agent")
    await dialog.locator("input[name=email]").fill("wangfang@example.com")
    await dialog.locator("input[name=password]").fill("Secret-pass-1")
    await dialog.locator("button[type=submit]").click()
    await expect(dialog.locator(".error")).to_contain_text("already has an agent")
    await expect(dialog.locator(".error .err-code")).to_have_text("already_exists")
    await dialog.locator("button.ghost", has_text="取消").click()

    # Groups.
    await page.click(".admin-nav a[data-page=groups]")
    await page.fill(".group-form input[name=name]", "售后")
    await page.fill(".group-form input[name=description]", "退换货与退款")
    await page.click(".group-form button[type=submit]")
    await expect(page.locator(".groups-table tr[data-group='售后']")).to_be_visible()
    groups = {g["name"] for g in (await get_json(node, "/api/v1/groups", token))["items"]}
    assert {"default", "vip", "售后"} <= groups

    # Routing rules: two conditions (a number and an `in` list), then a second rule moved above it.
    await page.click(".admin-nav a[data-page=routing]")
    await page.click(".add-rule")
    rule = page.locator("#rule-dialog")
    await rule.locator("input[name=name]").fill("VIP 客户")
    first = rule.locator(".cond").nth(0)
    await first.locator(".c-field").fill("tags.vip_level")
    await first.locator(".c-op").select_option(">=")
    await first.locator(".c-value").fill("3")
    await rule.locator(".add-cond").click()
    second = rule.locator(".cond").nth(1)
    await second.locator(".c-field").fill("channel")
    await second.locator(".c-op").select_option("in")
    await second.locator(".c-value").fill("web, mobile")
    await rule.locator("select[name=group]").select_option("vip")
    await rule.locator("input[name=min_level]").fill("2")
    await rule.locator("input[name=queue_priority]").fill("5")
    await rule.locator("button[type=submit]").click()
    await expect(page.locator(".rules-table tr[data-name='VIP 客户']")).to_be_visible()
    rules = (await get_json(node, "/api/v1/routing/rules", token))["items"]
    assert len(rules) == 1
    vip = rules[0]
    assert vip["match"] == {
        "all": [
            {"field": "tags.vip_level", "op": ">=", "value": 3},
            {"field": "channel", "op": "in", "value": ["web", "mobile"]},
        ]
    }
    assert (vip["group"], vip["min_level"], vip["queue_priority"], vip["position"]) == ("vip", 2, 5, 1)

    await page.click(".add-rule")
    await rule.locator("input[name=name]").fill("退款")
    await rule.locator("select[name=combine]").select_option("any")
    await rule.locator(".cond .c-field").fill("tags.inquiry_type")
    await rule.locator(".cond .c-value").fill("refund")
    await rule.locator("select[name=group]").select_option("售后")
    await rule.locator("button[type=submit]").click()
    refund_row = page.locator(".rules-table tr[data-name='退款']")
    await expect(refund_row.locator(".position")).to_have_text("2")
    await refund_row.locator("button.up").click()
    await expect(refund_row.locator(".position")).to_have_text("1")
    await expect(page.locator(".rules-table tbody tr").first).to_have_attribute("data-name", "退款")
    names = await page.locator(".rules-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["退款", "VIP 客户"]
    rules = (await get_json(node, "/api/v1/routing/rules", token))["items"]
    assert [(r["name"], r["position"]) for r in rules] == [("退款", 1), ("VIP 客户", 2)]
    assert rules[0]["match"] == {"any": [{"field": "tags.inquiry_type", "op": "==", "value": "refund"}]}

    # Edit one, refuse a bad field (the server's message shows), delete the other.
    await refund_row.locator("button.edit").click()
    await rule.locator("input[name=queue_priority]").fill("1")
    await rule.locator("button[type=submit]").click()
    await expect(rule).to_have_count(0)
    await page.locator(".rules-table tr[data-name='VIP 客户'] button.edit").click()
    await rule.locator(".cond").nth(0).locator(".c-field").fill("vip")
    await rule.locator("button[type=submit]").click()
    await expect(rule.locator(".error")).to_contain_text("Field 'vip' is not one of")
    await rule.locator("button.ghost", has_text="取消").click()
    delete = page.locator(".rules-table tr[data-name='VIP 客户'] button.delete")
    await delete.click()
    await expect(delete).to_have_text("确认？")
    await delete.click()
    await expect(page.locator(".rules-table tbody tr")).to_have_count(1)
    rules = (await get_json(node, "/api/v1/routing/rules", token))["items"]
    assert [(r["name"], r["queue_priority"], r["position"]) for r in rules] == [("退款", 1, 1)]


# --- knowledge base -------------------------------------------------------------------------------------------


async def test_admin_imports_the_knowledge_base_and_tries_a_question(node: Node, context: BrowserContext) -> None:
    app = await node.create_app()
    token = await node.login(app, app.admin_email)
    page = await open_console(context, node, app, app.admin_email, online=False)
    await admin_page(page, "kb")
    await expect(page.locator(".kb-list")).to_contain_text("知识库是空的")

    data = json.dumps(KB_FILE, ensure_ascii=False).encode()
    upload = page.locator(".kb-import input[type=file]")
    await upload.set_input_files(files=[payload("kb.json", "application/json", data)])
    await page.click(".kb-import button[type=submit]")
    await expect(page.locator(".import-result")).to_have_text("导入完成：新增 3 条，更新 0 条")
    await expect(page.locator(".kb-table tbody tr")).to_have_count(3)

    # Importing the same ids again updates them.
    await upload.set_input_files(files=[payload("kb.json", "application/json", data)])
    await page.click(".kb-import button[type=submit]")
    await expect(page.locator(".import-result")).to_have_text("导入完成：新增 0 条，更新 3 条")

    # A bad file: the server's message is shown, nothing changes.
    bad = "id,question\nx,没有答案的问题\n".encode()
    expected = await node.http.post(
        "/api/v1/kb/import", files={"file": ("bad.csv", bad, "text/csv")}, headers=auth(token)
    )
    assert expected.status_code >= 400
    message = expected.json()["error"]["message"]
    await upload.set_input_files(files=[payload("bad.csv", "text/csv", bad)])
    await page.click(".kb-import button[type=submit]")
    await expect(page.locator(".import-result .error")).to_contain_text(message)

    # The try box: answer, article, confidence, and whether the bot would hand off.
    await page.fill(".kb-try input[name=question]", "怎么退货")
    await page.click(".kb-try button[type=submit]")
    result = page.locator(".try-result")
    await expect(result.locator(".article-id")).to_have_text("refund-policy")
    await expect(result.locator(".confidence")).to_have_text(re.compile(r"^置信度 \d{1,3}\.\d%$"))
    await expect(result.locator(".answer")).to_contain_text("7 天内")
    await expect(result.locator(".answered")).to_be_visible()
    await page.fill(".kb-try input[name=question]", "你们老板叫什么名字")
    await page.click(".kb-try button[type=submit]")
    await expect(result.locator(".handoff")).to_have_text("将转人工 (handoff)")
    await expect(result.locator(".confidence")).to_be_visible()

    # Create, edit and delete an article through the dialog.
    await page.click(".add-article")
    article = page.locator("#article-dialog")
    await article.locator("input[name=id]").fill("membership")
    await article.locator("input[name=question]").fill("会员有什么权益？")
    await article.locator("textarea[name=similar]").fill("会员权益\n怎么成为会员")
    await article.locator("textarea[name=answer]").fill("会员享受包邮和生日礼券。")
    await article.locator("input[name=category]").fill("会员")
    await article.locator("button[type=submit]").click()
    row = page.locator(".kb-table tr[data-article-id=membership]")
    await expect(row).to_be_visible()
    stored = await get_json(node, "/api/v1/kb/articles/membership", token)
    assert stored["similar"] == ["会员权益", "怎么成为会员"] and stored["category"] == "会员"
    await row.locator("button.edit").click()
    await article.locator("textarea[name=answer]").fill("会员享受全场包邮、生日礼券和专属客服。")
    await article.locator("button[type=submit]").click()
    await expect(article).to_have_count(0)
    stored = await get_json(node, "/api/v1/kb/articles/membership", token)
    assert stored["answer"] == "会员享受全场包邮、生日礼券和专属客服。"
    await row.locator("button.delete").click()
    await row.locator("button.delete").click()
    await expect(row).to_have_count(0)
    gone = await node.http.get("/api/v1/kb/articles/membership", headers=auth(token))
    assert gone.status_code == 404


# --- API keys and webhooks ----------------------------------------------------------------------------------


async def test_admin_creates_an_api_key_and_a_webhook_with_its_delivery_log(
    node: Node, context: BrowserContext
) -> None:
    app = await node.create_app()
    token = await node.login(app, app.admin_email)
    page = await open_console(context, node, app, app.admin_email, online=False)
    await admin_page(page, "api-keys")

    await page.fill(".key-form input[name=name]", "CRM 同步")
    await page.click(".key-form button[type=submit]")
    shown = page.locator(".new-key .secret-value")
    await expect(shown).to_be_visible()
    key = await shown.text_content()
    assert key
    assert (await node.http.get("/api/v1/conversations", headers=auth(key))).status_code == 200
    row = page.locator(".keys-table tr[data-name='CRM 同步']")
    await expect(row.locator(".state")).to_have_text("有效")
    listed = (await get_json(node, "/api/v1/api-keys", token))["items"]
    assert any(k["name"] == "CRM 同步" and "key" not in k for k in listed)
    # Shown once: coming back to the page lists the key without its secret.
    await page.click(".admin-nav a[data-page=groups]")
    await page.click(".admin-nav a[data-page=api-keys]")
    await expect(row).to_be_visible()
    await expect(page.locator(".new-key")).to_have_count(0)
    await row.locator("button.revoke").click()
    await row.locator("button.revoke").click()
    await expect(row.locator(".state")).to_contain_text("已吊销")
    assert (await node.http.get("/api/v1/conversations", headers=auth(key))).status_code == 401

    await page.click(".admin-nav a[data-page=webhooks]")
    # A refused URL: the server's reason is shown.
    await page.fill(".webhook-form input[name=url]", "ftp://example.com/hook")
    await page.click(".webhook-form button[type=submit]")
    await expect(page.locator(".admin-body .page-error")).to_contain_text("http:// or https://")

    async with Receiver() as receiver:
        await page.fill(".webhook-form input[name=url]", receiver.url)
        await page.click(".webhook-form button[type=submit]")
        await expect(page.locator(".new-webhook .secret-value")).to_contain_text("whsec_")
        hook_row = page.locator(".webhooks-table tbody tr")
        await expect(hook_row).to_have_count(1)
        await expect(hook_row.locator(".url")).to_have_text(receiver.url)
        await expect(page.locator(".deliveries")).to_contain_text("还没有投递")
        hooks = (await get_json(node, "/api/v1/webhooks", token))["items"]
        assert [(h["url"], h["events"]) for h in hooks] == [(receiver.url, ["conversation.created", "message.created"])]

        visitor = await node.visitor(app, name="访客戊")
        await visitor.open_chat()
        await asyncio.wait_for(receiver.arrived.wait(), 15)
        assert receiver.bodies[0]["event"] == "conversation.created"

        # The log shows the delivery once the worker has recorded the receiver's answer.
        delivered = page.locator(".deliveries-table tr[data-status=delivered]")
        for _ in range(30):
            await page.click(".refresh-log")
            with contextlib.suppress(AssertionError):
                await expect(delivered).not_to_have_count(0, timeout=500)
                break
        await expect(delivered.first.locator(".event")).to_have_text("conversation.created")
        await expect(delivered.first.locator(".attempts")).to_have_text("1")
        await expect(delivered.first.locator(".code")).to_have_text("200")
        await expect(delivered.first.locator(".status")).to_have_text("已送达")

    delete = hook_row.locator("button.delete")
    await delete.click()
    await delete.click()
    await expect(page.locator(".webhooks-table")).to_have_count(0)
    assert (await get_json(node, "/api/v1/webhooks", token))["items"] == []


# --- internal notes ----------------------------------------------------------------------------------------


async def test_a_note_follows_the_chat_to_the_next_agent_and_never_reaches_the_visitor(
    node: Node, context: BrowserContext, second_context: BrowserContext
) -> None:
    app = await node.create_app()
    colleague = await node.add_agent(app, name="李雷")
    page = await open_console(context, node, app, app.admin_email)
    visitor = await node.visitor(app, "U3001", name="周杰")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    await visitor.text(sid, "你好，我要退款")
    await expect(bubbles(page)).to_have_text(["你好，我要退款"])

    # A note in note mode: shown as internal, sent over HTTP, never as a message.
    note_one = "客户第三次来问退款，情绪比较激动，先安抚"
    await page.click(".composer-modes button[data-mode=note]")
    await expect(page.locator(".composer")).to_have_class(re.compile(r"\bnote-mode\b"))
    await reply(page, note_one)
    note = page.locator(".messages .note-item")
    await expect(note.locator(".note-text")).to_have_text([note_one])
    await expect(note).to_contain_text("仅客服可见")
    await expect(page.locator(".composer textarea")).to_have_value("")
    await page.click(".composer-modes button[data-mode=reply]")
    await reply(page, "您好，请提供一下订单号")
    await visitor.expect("message", session_id=sid, sender="agent", content="您好，请提供一下订单号")

    # Transfer with a note to the colleague, who sees both notes in the timeline, in order.
    page_b = await open_console(second_context, node, app, colleague["email"])
    await expect(page_b.locator(".nav a[data-view=admin]")).to_be_hidden()  # not an admin
    await page.click(".chat-head button.transfer")
    await page.select_option("#transfer-dialog select[name=target]", f"agent:{colleague['agent_id']}")
    note_two = "订单 #9921 已核实，请直接走退款流程"
    await page.fill("#transfer-dialog textarea[name=note]", note_two)
    await page.click("#transfer-dialog button[type=submit]")
    await expect(page_b.locator(".chat-title")).to_have_text("周杰")
    notes_b = page_b.locator(".messages .note-item")
    await expect(notes_b.locator(".note-text")).to_have_text([note_one, note_two])
    await expect(notes_b.nth(1)).to_have_attribute("data-kind", "transfer")
    order = await page_b.locator(".messages > .msg[data-seq], .messages > .note-item").evaluate_all(
        "els => els.map(e => e.dataset.seq ? 'm' + e.dataset.seq : 'note')"
    )
    assert order[:4] == ["m1", "note", "m2", "note"], order

    # The colleague adds one; the API lists all three, oldest first.
    note_three = "已提交退款申请，预计 1-3 个工作日到账"
    await page_b.click(".composer-modes button[data-mode=note]")
    await reply(page_b, note_three)
    await expect(notes_b.locator(".note-text")).to_have_text([note_one, note_two, note_three])
    token = await node.login(app, colleague["email"])
    listed = (await get_json(node, f"/api/v1/conversations/{sid}/notes", token))["items"]
    assert [(n["content"], n["kind"]) for n in listed] == [
        (note_one, "note"),
        (note_two, "transfer"),
        (note_three, "note"),
    ]
    await page_b.click(".composer-modes button[data-mode=reply]")
    await reply(page_b, "您好，退款已为您提交")
    await visitor.expect("message", session_id=sid, content="您好，退款已为您提交")

    # Nothing the visitor's socket ever received carries a note.
    await visitor.drain(0.5)
    for frame in visitor.seen:
        text = json.dumps(frame, ensure_ascii=False)
        assert frame.get("type") != "note", frame
        assert not any(n in text for n in (note_one, note_two, note_three)), frame
    contents = [f["content"] for f in visitor.seen if f.get("type") == "message"]
    assert "您好，请提供一下订单号" in contents and "您好，退款已为您提交" in contents
    record = await get_json(node, f"/api/v1/conversations/{sid}", app.api_key)
    assert not any(m["content"] in (note_one, note_two, note_three) for m in record["messages"])


# --- history on scroll ------------------------------------------------------------------------------------


async def test_a_long_chat_shows_its_last_page_and_loads_older_ones_on_scroll(
    node: Node, context: BrowserContext
) -> None:
    app = await node.create_app()
    agent = await node.add_agent(app, name="赵敏")
    agent_socket = await node.agent(app, agent["email"])
    visitor = await node.visitor(app, name="访客庚")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    await agent_socket.expect("assigned", session_id=sid)
    expected = []
    for i in range(1, 61):
        await visitor.text(sid, f"访客消息 {i}")
        await agent_socket.text(sid, f"客服回复 {i}")
        expected += [f"访客消息 {i}", f"客服回复 {i}"]

    # The same agent opens the console on another device: the chat starts from its last 50 messages.
    page = await open_console(context, node, app, agent["email"], online=False)
    await page.click(f".conv-item[data-sid='{sid}']")
    # The visitor panel comes from the ready frame (this device never saw the assignment).
    await expect(page.locator(".profile .visitor-name")).to_have_text("访客庚")
    box = page.locator(".messages")
    seqs = box.locator(".msg[data-seq]")
    await expect(seqs).to_have_count(50)
    shown = await seqs.evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert shown == list(range(71, 121))
    await expect(page.locator(".messages .load-older")).to_be_visible()

    # Scrolling to the top loads the page before it; the message that was on top stays in view.
    await box.evaluate("b => { b.scrollTop = 0; }")
    await expect(seqs).to_have_count(100)
    await expect(box.locator(".msg[data-seq='71']")).to_be_in_viewport()
    assert await box.evaluate("b => b.scrollTop") > 0
    await box.evaluate("b => { b.scrollTop = 0; }")
    await expect(seqs).to_have_count(120)
    await expect(box.locator(".history-top.start")).to_be_visible()
    shown = await seqs.evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert shown == list(range(1, 121))
    await expect(bubbles(page)).to_have_text(expected)

    # Live messages still come once, in order, after the history.
    await visitor.text(sid, "还在吗？")
    await expect(seqs).to_have_count(121)
    await expect(bubbles(page).last).to_have_text("还在吗？")
    shown = await seqs.evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert shown == list(range(1, 122))


# --- queue -------------------------------------------------------------------------------------------------


async def test_the_queue_list_follows_queue_changed_frames(node: Node, context: BrowserContext) -> None:
    app = await node.create_app()
    page = await open_console(context, node, app, app.admin_email, online=False)
    await page.click(".tabs button[data-tab=queue]")
    await expect(page.locator(".conv-list .empty")).to_have_text("队列为空")
    visitor = await node.visitor(app, name="访客辛")
    sid = (await visitor.open_chat())["session_id"]  # nobody online: it waits in the queue
    # Well before the slow fallback poll (60 s), the queue_changed frame brings it in, and takes it out again.
    await expect(page.locator(f".conv-list .conv-item[data-sid='{sid}']")).to_be_visible()
    await expect(page.locator(".tabs button[data-tab=queue] .count")).to_have_text("1")
    agent = await node.add_agent(app, name="钱七")
    await node.agent(app, agent["email"])  # online: the chat leaves the queue for this agent
    await expect(page.locator(f".conv-list .conv-item[data-sid='{sid}']")).to_have_count(0)
    await expect(page.locator(".tabs button[data-tab=queue] .count")).to_have_text("0")


# --- logout, expiry and keep-alive -----------------------------------------------------------------------


async def test_logout_revokes_the_token_a_401_signs_out_and_the_socket_pings(
    node: Node, context: BrowserContext
) -> None:
    app = await node.create_app()
    agent = await node.add_agent(app, name="孙丽")
    page = await context.new_page()
    page.on("pageerror", lambda exc: PROBLEMS.append(f"page error: {exc}"))
    pinged = asyncio.Event()

    def watch_socket(ws: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            if isinstance(payload, str) and json.loads(payload).get("type") == "ping":
                pinged.set()

        ws.on("framesent", sent)

    page.on("websocket", watch_socket)
    await page.clock.install()
    await page.goto(f"http://127.0.0.1:{node.port}/console")
    await sign_in(page, app, agent["email"])

    # Keep-alive: a quiet console pings within ~25 s (the server closes sockets silent for 120 s).
    await page.clock.run_for(26_000)
    await asyncio.wait_for(pinged.wait(), 10)
    await expect(page.locator(".conn-dot")).to_have_attribute("data-state", "live")

    # 退出 revokes the token on the server and forgets it here.
    token = await page.evaluate("sessionStorage.getItem('kefu.console.token')")
    assert token
    await page.click(".topbar .logout")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#login .error")).to_have_text("")
    assert await page.evaluate("sessionStorage.getItem('kefu.console.token')") is None
    assert (await node.http.get("/api/v1/conversations", headers=auth(token))).status_code == 401

    # A token revoked elsewhere: the server closes its socket (4401) and the console shows the login.
    await sign_in(page, app, agent["email"])
    token = await page.evaluate("sessionStorage.getItem('kefu.console.token')")
    r = await node.http.post("/api/v1/auth/logout", headers=auth(token))
    assert r.status_code == 204, r.text
    await expect(page.locator("#login .error")).to_contain_text("登录已过期")

    # Any HTTP call answering 401 does the same.
    await sign_in(page, app, agent["email"])
    expired = {"error": {"code": "unauthorized", "message": "The token has expired."}}
    await page.route(re.compile(r".*/api/v1/stats\?.*"), lambda route: route.fulfill(status=401, json=expired))
    await page.click(".nav a[data-view=dashboard]")
    await expect(page.locator("#login .error")).to_contain_text("登录已过期")
    assert await page.evaluate("sessionStorage.getItem('kefu.console.token')") is None


# --- screenshots for the docs ------------------------------------------------------------------------------


async def test_screenshots_for_the_docs(node: Node, context: BrowserContext, second_context: BrowserContext) -> None:
    app = await node.create_app()
    colleague = await node.add_agent(app, name="李雷", groups=("default", "vip"), level=3)
    token = await node.login(app, app.admin_email)
    renamed = await node.http.put(f"/api/v1/agents/{app.admin_id}", json={"name": "王芳"}, headers=auth(token))
    assert renamed.status_code == 200, renamed.text
    admin = await open_console(context, node, app, app.admin_email)
    # Two chats for the colleague: one handed over with notes, one new.
    people: list[tuple[str, str, dict[str, Any]]] = [
        ("U2001", "陈静", {"vip_level": 3, "inquiry_type": "logistics"}),
        ("U2002", "刘洋", {"vip_level": 1}),
    ]
    visitors: list[Client] = []
    for user_id, name, tags in people:
        v = await node.visitor(app, user_id, name=name, tags=tags, tags_hash=tags_hash(app, user_id, tags))
        visitors.append(v)
    v = visitors[0]
    sid = (
        await v.open_chat(context="页面：/orders/8812 · App 5.2.1 (iOS 18)\n物流查询接口超时 504", channel="mobile")
    )["session_id"]
    await v.expect("conversation", status="active", session_id=sid)
    await v.text(sid, "我的快递三天没更新了，单号 SF1234567890")
    await expect(bubbles(admin)).to_have_count(1)
    await reply(admin, "您好陈女士，我帮您查一下物流，请稍等。")
    await v.expect("message", session_id=sid, sender="agent")
    await admin.click(".composer-modes button[data-mode=note]")
    await reply(admin, "已查询：顺丰中转站滞留，已向快递报备")
    await expect(admin.locator(".note-item")).to_have_count(1)
    page = await open_console(second_context, node, app, colleague["email"])
    await admin.click(".chat-head button.transfer")
    await admin.select_option("#transfer-dialog select[name=target]", f"agent:{colleague['agent_id']}")
    await admin.fill("#transfer-dialog textarea[name=note]", "VIP3 客户，请跟进并补发 20 元优惠券")
    await admin.click("#transfer-dialog button[type=submit]")
    await expect(page.locator(".messages .note-item")).to_have_count(2)
    await reply(page, "陈女士您好，我是李雷，已为您联系快递加急处理，预计明天上午送达。")
    await v.expect("message", session_id=sid, sender="agent", where=lambda f: "李雷" in f["content"])
    await v.text(sid, "好的，谢谢！麻烦快一点，明天要用")
    await v.send("typing", session_id=sid)
    await page.click(".composer-modes button[data-mode=note]")
    await page.locator(".composer textarea").fill("明早 10 点前未送达则补发")
    v2 = visitors[1]
    await admin.click(".status-switch button[data-status=offline]")
    sid2 = (await v2.open_chat(channel="web"))["session_id"]
    await v2.expect("conversation", status="active", session_id=sid2)
    await v2.text(sid2, "发票抬头写错了，可以重开吗？")
    await expect(page.locator(f".conv-item[data-sid='{sid2}'] .unread")).to_have_text("1")
    await page.locator(f".conv-item[data-sid='{sid}']").click()
    await expect(bubbles(page)).to_have_count(4)
    await expect(page.locator(".typing")).to_be_visible()
    await page.evaluate("document.querySelector('.toasts').replaceChildren()")
    await page.set_viewport_size({"width": 1280, "height": 880})  # the whole chat, from its first message
    await page.locator(".messages").evaluate("b => { b.scrollTop = b.scrollHeight; }")
    shot = await page.screenshot()
    assert len(shot) > 10_000
    if UPDATE_SCREENSHOTS:  # KEFU_UPDATE_SCREENSHOT=1 rewrites docs/images; the scene runs on every test run
        CONSOLE_SHOT.parent.mkdir(parents=True, exist_ok=True)
        CONSOLE_SHOT.write_bytes(shot)

    # The knowledge-base page with an import done and a question tried.
    r = await node.http.post("/api/v1/kb/import", json=KB_FILE, headers=auth(token))
    assert r.status_code == 200, r.text
    await admin_page(admin, "kb")
    await admin.locator(".kb-import input[type=file]").set_input_files(
        files=[payload("知识库.json", "application/json", json.dumps(KB_FILE).encode())]
    )
    await admin.click(".kb-import button[type=submit]")
    await expect(admin.locator(".import-result")).to_contain_text("更新 3 条")
    await admin.fill(".kb-try input[name=question]", "七天无理由退货怎么申请")
    await admin.click(".kb-try button[type=submit]")
    await expect(admin.locator(".try-result .article-id")).to_have_text("refund-policy")
    await admin.evaluate("document.querySelector('.toasts').replaceChildren()")
    shot = await admin.screenshot()
    if UPDATE_SCREENSHOTS:
        ADMIN_SHOT.write_bytes(shot)
