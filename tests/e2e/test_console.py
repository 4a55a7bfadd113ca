"""The agent console at /console in a real browser (Debian's Chromium) against a real kefu node.

Agents are browser contexts; visitors are WebSocket clients (tests.helpers). Waits are on page conditions
and socket frames, never sleeps.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import os
import re
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.async_api import BrowserContext, Page, expect

from kefu.domain.clock import FakeClock
from tests.e2e.conftest import auth, watch
from tests.helpers import PASSWORD, App, Node, running_node
from tests.history import T0, WEEK, week

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD_SHOT = ROOT / "docs" / "images" / "dashboard.png"
UPDATE_SCREENSHOTS = bool(os.environ.get("KEFU_UPDATE_SCREENSHOT"))
ERROR_LOG = "TypeError: Cannot read properties of undefined (reading 'price')\n    at checkout.js:42:17"


# --- helpers ---------------------------------------------------------------------------------------------


async def login(context: BrowserContext, node: Node, app: App, email: str, online: bool = True) -> Page:
    page = await context.new_page()
    watch(page)
    await page.goto(f"http://127.0.0.1:{node.port}/console")
    await page.fill("#login input[name=app_id]", app.app_id)
    await page.fill("#login input[name=email]", email)
    await page.fill("#login input[name=password]", PASSWORD)
    await page.click("#login button[type=submit]")
    await expect(page.locator(".conn-dot")).to_have_attribute("data-state", "live")
    if online:
        await page.click(".status-switch button[data-status=online]")
        await expect(page.locator(".me-status")).to_have_text("在线")
    return page


def bubbles(page: Page) -> Any:
    return page.locator(".messages .msg[data-seq] .bubble")


async def reply(page: Page, text: str) -> None:
    box = page.locator(".composer textarea")
    await box.fill(text)
    await box.press("Enter")


def png(size: tuple[int, int], color: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "PNG")
    return out.getvalue()


REFUND_ARTICLE = {
    "id": "refund-policy",
    "question": "怎么退货？",
    "similar": ["退货政策是什么", "七天无理由退货吗", "如何申请退货"],
    "answer": "自签收之日起 7 天内，商品未使用可申请无理由退货。",
    "category": "售后",
}


async def bot_ready(node: Node, app: App) -> None:
    """Import one article and check that the FAQ bot answers from it; if it does not, the test fails (a broken bot
    is a regression to see, never a reason to skip)."""
    r = await node.http.post("/api/v1/kb/import", json=[REFUND_ARTICLE], headers=auth(app.api_key))
    assert r.status_code == 200, f"POST /api/v1/kb/import answered {r.status_code}: {r.text[:200]}"
    asked = await node.http.post("/api/v1/bot/ask", json={"question": "怎么退货"}, headers=auth(app.api_key))
    assert asked.status_code == 200 and asked.json().get("article_id") == "refund-policy", (
        f"POST /api/v1/bot/ask does not answer from the article: {asked.status_code} {asked.text[:200]}"
    )


def tags_hash(app: App, user_id: str, tags: dict[str, Any]) -> str:
    canonical = json.dumps(tags, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hmac.new(app.secret.encode(), f"{user_id}\n{canonical}".encode(), hashlib.sha256).hexdigest()


# --- serving ---------------------------------------------------------------------------------------------


async def test_console_is_served_with_caching_and_security_headers(web_node: Node) -> None:
    page = await web_node.http.get("/console")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'self'" in csp
    assert f"ws://127.0.0.1:{web_node.port}" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    again = await web_node.http.get("/console", headers={"If-None-Match": page.headers["etag"]})
    assert again.status_code == 304
    version = re.search(r"console\.js\?v=([0-9a-f]+)", page.text)
    assert version, page.text
    js = await web_node.http.get(f"/console/console.js?v={version.group(1)}")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert "immutable" in js.headers["cache-control"]
    unversioned = await web_node.http.get("/console/console.css")
    assert unversioned.status_code == 200 and "immutable" not in unversioned.headers["cache-control"]
    assert (await web_node.http.get("/console/secrets.py")).status_code == 404


# --- the main flow ---------------------------------------------------------------------------------------


async def test_agent_chats_transfers_with_a_note_and_the_colleague_closes(
    web_node: Node, context: BrowserContext, second_context: BrowserContext
) -> None:
    app = await web_node.create_app()
    colleague = await web_node.add_agent(app, name="李雷")
    admin_token = await web_node.login(app, app.admin_email)
    r = await web_node.http.post(
        "/api/v1/canned-responses",
        json={"shortcut": "hi", "text": "您好，这里是人工客服，请问有什么可以帮您？", "scope": "app"},
        headers=auth(admin_token),
    )
    assert r.status_code == 201, r.text

    page = await login(context, web_node, app, app.admin_email)
    visitor = await web_node.visitor(app, "U1001", name="张三", tags={"plan": "pro"}, channel="web")
    conv = await visitor.open_chat(context=ERROR_LOG)
    sid = conv["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    await visitor.text(sid, "你好，我下单时支付失败了")

    # The chat opens by itself with the visitor panel: name, user id, client tags and the error log.
    await expect(page.locator(f".conv-item[data-sid='{sid}']")).to_be_visible()
    await expect(page.locator(".chat-title")).to_have_text("张三")
    await expect(bubbles(page)).to_have_text(["你好，我下单时支付失败了"])
    await expect(page.locator(".profile .user-id dd")).to_have_text("U1001")
    await expect(page.locator(".profile .tag.client")).to_have_text(["plan: pro"])
    await expect(page.locator(".profile pre.context")).to_contain_text("checkout.js:42")

    box = page.locator(".composer textarea")
    await box.fill("/h")
    await expect(page.locator(".suggest li")).to_have_count(1)
    await box.press("Tab")
    first_reply = "您好，这里是人工客服，请问有什么可以帮您？"
    await expect(box).to_have_value(first_reply)
    await box.press("Enter")
    await visitor.expect("message", session_id=sid, sender="agent", content=first_reply)
    await expect(bubbles(page)).to_have_text(["你好，我下单时支付失败了", first_reply])
    await expect(page.locator(".msg.pending")).to_have_count(0)

    # The colleague comes online in another browser; the admin transfers with an internal note.
    page_b = await login(second_context, web_node, app, colleague["email"])
    await page.click(".chat-head button.transfer")
    await page.select_option("#transfer-dialog select[name=target]", f"agent:{colleague['agent_id']}")
    note = "订单 #8812 已核实扣款成功，请协助退款"
    await page.fill("#transfer-dialog textarea[name=note]", note)
    await page.click("#transfer-dialog button[type=submit]")

    await expect(page_b.locator(".internal-note")).to_contain_text(note)
    await expect(page_b.locator(".chat-title")).to_have_text("张三")
    await expect(bubbles(page_b)).to_have_text(["你好，我下单时支付失败了", first_reply])
    await expect(page.locator(".chat-head .pill")).to_have_text("已转出")
    to_colleague = lambda f: (f.get("agent") or {}).get("agent_id") == colleague["agent_id"]  # noqa: E731
    moved = await visitor.expect("conversation", session_id=sid, where=to_colleague)
    assert "note" not in moved

    # The colleague answers, then closes: the visitor's socket sees the chat closed.
    await reply(page_b, "您好，退款已为您提交")
    await visitor.expect("message", session_id=sid, content="您好，退款已为您提交")
    await page_b.click(".chat-head button.close-chat")
    await page_b.click(".chat-head button.close-chat")  # the second click confirms
    await visitor.expect("conversation", session_id=sid, status="closed")
    await expect(page_b.locator(".readonly")).to_contain_text("会话已结束")
    # docs/images/console.png comes from test_console_admin.py's screenshot scene (notes, note mode, Chinese).


async def set_status(page: Page, status: str, shown: str) -> None:
    await page.click(f".status-switch button[data-status={status}]")
    await expect(page.locator(".me-status")).to_have_text(shown)


async def test_same_agent_on_two_devices_sees_replies_and_status(
    web_node: Node, context: BrowserContext, second_context: BrowserContext
) -> None:
    app = await web_node.create_app()
    agent = await web_node.add_agent(app, name="王芳")
    first = await login(context, web_node, app, agent["email"])
    second = await login(second_context, web_node, app, agent["email"], online=False)
    await expect(second.locator(".me-status")).to_have_text("在线")

    token = await web_node.visitor_token(app, name="访客甲")
    visitor = await web_node.connect("visitor", token)
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    await visitor.text(sid, "在吗？")
    for page in (first, second):
        await expect(bubbles(page)).to_have_text(["在吗？"])

    await reply(first, "在的，您请说")
    await visitor.expect("message", session_id=sid, content="在的，您请说")
    for page in (first, second):
        await expect(bubbles(page)).to_have_text(["在吗？", "在的，您请说"])
        await expect(page.locator(".msg.pending")).to_have_count(0)

    # An agent's own canned response, added in the console, is inserted with /shortcut + Enter.
    await first.click(".topbar .canned-open")
    await first.fill("#canned-dialog input[name=shortcut]", "thanks")
    await first.fill("#canned-dialog input[name=text]", "感谢您的耐心等待！")
    await first.click("#canned-dialog form button[type=submit]")
    await expect(first.locator("#canned-dialog .canned-list li code")).to_have_text(["/thanks"])
    await first.click("#canned-dialog .buttons button")
    box = first.locator(".composer textarea")
    await box.fill("/tha")
    await box.press("Enter")  # the first Enter takes the suggestion, the second sends
    await expect(box).to_have_value("感谢您的耐心等待！")
    await box.press("Enter")
    await visitor.expect("message", session_id=sid, content="感谢您的耐心等待！")

    # Images both ways: the console fetches them with its token and shows them through object URLs.
    await first.locator(".composer input[type=file]").set_input_files(
        files=[{"name": "收据.png", "mimeType": "image/png", "buffer": png((300, 200), (37, 99, 235))}]
    )
    sent = await visitor.expect("message", session_id=sid, msg_type="image")
    assert sent["attachment"]["content_type"] == "image/png"
    r = await web_node.http.post(
        "/api/v1/uploads",
        files={"file": ("截图.png", png((320, 240), (220, 38, 38)), "image/png")},
        headers=auth(token),
    )
    assert r.status_code == 201, r.text
    await visitor.send(
        "send",
        session_id=sid,
        client_msg_id="img-1",
        msg_type="image",
        content="付款截图",
        attachment_id=r.json()["attachment_id"],
    )
    for page in (first, second):
        await expect(page.locator(".msg img.thumb")).to_have_count(2)
        await expect(page.locator(".msg.user img.thumb")).to_have_attribute("src", re.compile(r"^blob:"))
        await expect(page.locator(".msg.me img.thumb")).to_have_attribute("src", re.compile(r"^blob:"))
        await expect(page.locator(".msg.user .caption")).to_have_text("付款截图")

    await second.click(".status-switch button[data-status=offline]")
    for page in (first, second):
        await expect(page.locator(".me-status")).to_have_text("离线")
        await expect(page.locator(".status-switch button.on")).to_have_attribute("data-status", "offline")


async def test_a_handoff_shows_the_bot_answers_with_their_confidence(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    await bot_ready(web_node, app)
    agent = await web_node.add_agent(app, name="孙丽")
    page = await login(context, web_node, app, agent["email"])
    visitor = await web_node.visitor(app, name="访客丁")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.text(sid, "怎么退货")
    answer = await visitor.expect("message", session_id=sid, sender="bot", where=lambda f: "article_id" in f)
    await visitor.send("request_human", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="active")

    await expect(page.locator(".chat-title")).to_have_text("访客丁")
    await expect(page.locator(".msg.bot[data-seq] .bubble").first).to_contain_text("7 天内")
    bot_meta = page.locator(f".msg.bot[data-seq='{answer['seq']}'] .meta")
    await expect(bot_meta.locator(".pill.bot")).to_have_text("BOT")
    await expect(bot_meta.locator(".confidence")).to_have_text(f"置信度 {int(answer['confidence'] * 100 + 0.5)}%")
    await expect(page.locator(".profile .kv", has_text="转人工原因").locator("dd")).to_have_text("用户要求人工")


# --- a network drop ---------------------------------------------------------------------------------------


async def test_messages_sent_during_a_network_drop_show_once_in_order(web_node: Node, context: BrowserContext) -> None:
    app = await web_node.create_app()
    agent = await web_node.add_agent(app, name="赵敏")
    page = await login(context, web_node, app, agent["email"])
    visitor = await web_node.visitor(app, name="访客乙")
    sid = (await visitor.open_chat())["session_id"]
    await visitor.expect("conversation", status="active", session_id=sid)
    markup = "断网前的消息 <b>粗体</b><img src=x onerror=\"document.title='pwned'\">"
    await visitor.text(sid, markup)
    await expect(bubbles(page)).to_have_text([markup])  # shown as text: no element was made of it
    await expect(page.locator(".messages b, .messages img")).to_have_count(0)

    await context.set_offline(True)
    await expect(page.locator(".banner")).to_contain_text("网络已断开")
    await expect(page.locator(".conn-dot")).not_to_have_attribute("data-state", "live")
    for text in ("第一条", "第二条", "第三条"):
        await visitor.text(sid, text)
    await context.set_offline(False)

    await expect(page.locator(".conn-dot")).to_have_attribute("data-state", "live")
    await expect(bubbles(page)).to_have_text([markup, "第一条", "第二条", "第三条"])
    await expect(page.locator(".banner")).to_be_hidden()
    seqs = await page.locator(".messages .msg[data-seq]").evaluate_all("els => els.map(e => +e.dataset.seq)")
    assert seqs == [1, 2, 3, 4]

    # A reload keeps the login (sessionStorage) and reopens the chat with its whole history, once.
    await page.reload()
    await expect(bubbles(page)).to_have_text([markup, "第一条", "第二条", "第三条"])
    await expect(page.locator(".me-status")).to_have_text("在线")


# --- dashboard ----------------------------------------------------------------------------------------------

REASON_TEXT = {
    "low_confidence": "置信度低",
    "user_request": "用户要求人工",
    "no_answer": "无答案",
    "negative_feedback": "差评反馈",
    "repeated_question": "重复提问",
}


def num(x: float | None) -> str:
    """core/format.js `num` (zh-CN grouping)."""
    return f"{x or 0:,}"


def pct(x: float | None) -> str:
    return f"{(x or 0) * 100:.1f}%"


def duration(seconds: float | None) -> str:
    """core/format.js `duration`."""
    t = max(0, int(Decimal(seconds or 0).quantize(Decimal(1), ROUND_HALF_UP)))
    if t < 60:
        return f"{t}秒"
    if t < 3600:
        return f"{t // 60}分{t % 60:02d}秒"
    return f"{t // 3600}时{t % 3600 // 60:02d}分"


def cards(d: dict[str, Any]) -> list[str]:
    """The six cards' texts, as dashboard.js draws them from a /stats answer."""
    w, fr, hd = d["wait_seconds"], d["first_response_seconds"], d["handle_seconds"]
    return [
        f"会话数{num(d['sessions'])}消息 {num(d['messages'])} 条",
        f"机器人解决率{pct(d['bot_resolution_rate'])}{num(d['bot_resolved'])} / {num(d['bot_sessions'])} 个机器人会话",
        f"转人工{num(d['handoffs'])}放弃排队 {num(d['abandoned'])}",
        f"等待时长 P50 / P90{duration(w['p50'])} / {duration(w['p90'])}"
        f"平均 {duration(w['avg'])} · 最长 {duration(w['max'])}",
        f"首次响应 P50 / P90{duration(fr['p50'])} / {duration(fr['p90'])}平均 {duration(fr['avg'])}",
        f"处理时长 P50{duration(hd['p50'])}P90 {duration(hd['p90'])}",
    ]


def table_rows(by: dict[str, dict[str, Any]], names: dict[str, str] | None = None) -> list[str]:
    """A breakdown table's rows (cells joined by tabs), most sessions first."""
    rows = sorted(by.items(), key=lambda kv: -kv[1]["sessions"])
    return [
        "\t".join(
            [
                names.get(key, key) if names else key,
                num(v["sessions"]),
                num(v["messages"]),
                num(v["handoffs"]),
                pct(v["bot_resolution_rate"]),
                duration(v["wait_seconds"]["p50"]),
                duration(v["wait_seconds"]["p90"]),
                duration(v["first_response_seconds"]["p50"]),
                duration(v["handle_seconds"]["p50"]),
                num(v["abandoned"]),
            ]
        )
        for key, v in rows
    ]


async def test_dashboard_shows_the_stats_of_a_real_week_roi_and_csv(context: BrowserContext, tmp_path: Path) -> None:
    """A week of real conversations (tests/history.py) on a node of its own with a FakeClock; the dashboard shows
    exactly what GET /stats answers for it. With KEFU_UPDATE_SCREENSHOT=1 this is docs/images/dashboard.png."""
    clock = FakeClock(T0)
    async with running_node(f"sqlite:///{tmp_path / 'kefu.db'}", clock=clock) as node:
        played = await week(node, clock)
        app = played.app
        first_day, last_day = T0.date(), (T0 + timedelta(days=len(WEEK))).date()
        params = {
            "from": f"{first_day}T00:00:00.000Z",
            "to": f"{last_day + timedelta(days=1)}T00:00:00.000Z",
            "bucket": "day",
        }
        r = await node.http.get("/api/v1/stats", params=params, headers=auth(app.api_key))
        assert r.status_code == 200, r.text
        stats = r.json()
        # The history is what it says: every day there, every kind of handoff, some waits.
        assert stats["sessions"] == len(played.sessions) == 4 + sum(len(day) for day in WEEK)
        assert [p["start"][:10] for p in stats["series"]] == [
            str(first_day + timedelta(days=i)) for i in range(len(WEEK) + 1)
        ]
        assert all(stats["handoff_reasons"][k] for k in REASON_TEXT if k != "no_answer")
        assert stats["abandoned"] == 3 and stats["wait_seconds"]["max"] == 90

        page = await login(context, node, app, app.admin_email, online=False)
        await page.click(".nav a[data-view=dashboard]")
        await page.fill(".range input[name=from]", str(first_day))
        await page.fill(".range input[name=to]", str(last_day))
        await page.click(".range button[type=submit]")

        await expect(page.locator(".cards .stat")).to_have_text(cards(stats))
        bars = page.locator(".chart rect.bar:not(.bot) title")
        await expect(bars).to_have_text(
            [
                f"{p['start'][5:10]}：会话 {p['sessions']}，机器人解决 {min(p['sessions'], p['bot_resolved'])}"
                for p in stats["series"]
            ]
        )
        reasons = sorted(stats["handoff_reasons"].items(), key=lambda kv: -kv[1])  # zeros too, as dashboard.js
        total = sum(stats["handoff_reasons"].values())
        await expect(page.locator(".hbar .label")).to_have_text([REASON_TEXT[k] for k, _ in reasons])
        await expect(page.locator(".hbar .value")).to_have_text(
            [f"{v} · {round(v / total * 100)}%" for _, v in reasons]
        )
        tables = page.locator(".card table")
        cells = "els => els.map(tr => [...tr.cells].map(td => td.textContent).join('\\t'))"
        names = {info["agent_id"]: name for name, info in played.agents.items()}
        await expect(tables.last.locator("tbody td").first).to_have_text(
            names[max(stats["by_agent"], key=lambda k: stats["by_agent"][k]["sessions"])]
        )  # the agents' names have loaded
        assert await tables.first.locator("tbody tr").evaluate_all(cells) == table_rows(stats["by_group"])
        assert await tables.last.locator("tbody tr").evaluate_all(cells) == table_rows(stats["by_agent"], names)
        # ROI compares months: (bot-resolved × cost per chat, scaled from the range's days to 30, + monthly new
        # revenue) / monthly cost
        days = len(WEEK) + 1
        await page.fill(".roi input[name=perChat]", "15")
        await page.fill(".roi input[name=monthly]", "8000")
        await page.fill(".roi input[name=revenue]", "3000")
        await expect(page.locator(".roi-value")).to_have_text(
            f"{(stats['bot_resolved'] * 15 * 30 / days + 3000) / 8000 * 100:.1f}%"
        )

        async with page.expect_download() as download_info:
            await page.click(".dash-head button.csv")
        download = await download_info.value
        csv = await asyncio.to_thread(Path(await download.path()).read_text, encoding="utf-8-sig")
        lines = csv.splitlines()
        assert lines[0].startswith("scope,key,sessions,messages")
        total_row = lines[1].split(",")
        assert total_row[0] == "total" and total_row[2:4] == [str(stats["sessions"]), str(stats["messages"])]

        await page.set_viewport_size({"width": 1280, "height": 1330})  # the whole board, not just its first screen
        await expect(tables.last).to_be_in_viewport()
        shot = await page.screenshot()
        assert len(shot) > 10_000
        if UPDATE_SCREENSHOTS:
            DASHBOARD_SHOT.parent.mkdir(parents=True, exist_ok=True)
            DASHBOARD_SHOT.write_bytes(shot)
