"""The bot in live conversations over real sockets: answers, and each kind of handoff to a person."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from kefu.services.bot_flow import BotFlow
from tests.helpers import App, Client, Node

KB = orjson.loads((Path(__file__).parent.parent / "data" / "kb_shop.json").read_bytes())


async def bot_chat(node: Node) -> tuple[App, Client, Client, str]:
    """An app with the shop knowledge base, one online agent, and a visitor whose chat the bot has."""
    app = await node.create_app()
    r = await node.http.post("/api/v1/kb/import", json=KB, headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 200, r.text
    info = await node.add_agent(app)
    agent = await node.agent(app, info["email"])
    visitor = await node.visitor(app, "U-bot")
    conv = await visitor.open_chat()
    assert conv["status"] == "bot"
    return app, visitor, agent, conv["session_id"]


async def bot_reply(visitor: Client, sid: str) -> dict[str, Any]:
    return await visitor.expect("message", session_id=sid, sender="bot", timeout=30)


async def bot_done(node: Node, *clients: Client) -> None:
    """The barrier for "the bot said nothing (more)": wait for every answer the node's bot has under way, then a ping
    round trip on each socket. The bot answers in the background; what it published before finishing is queued
    for the sockets ahead of the pongs, so after this whatever it sent is in the clients' backlogs."""
    flow = node.services.chat.bot_flow
    assert isinstance(flow, BotFlow)
    await asyncio.gather(*flow._tasks)
    for client in clients:
        await client.ping()


async def handed_off(visitor: Client, agent: Client, sid: str, reason: str) -> dict[str, Any]:
    queued = await visitor.expect("conversation", session_id=sid, status="queued", timeout=30)
    assert queued["handoff_reason"] == reason
    assigned = await agent.expect("assigned", session_id=sid, timeout=30)
    assert assigned["handoff_reason"] == reason
    return assigned


async def test_a_faq_question_is_answered_by_the_bot(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.text(sid, "下单后多久能发货呀?")
    answer = await bot_reply(visitor, sid)
    assert answer["article_id"] == "shipping-time"
    assert answer["confidence"] >= 0.7 and "发出" in answer["content"]
    await bot_done(node, visitor, agent)
    assert await agent.find("assigned", timeout=0) is None  # no person needed
    assert await visitor.find("conversation", timeout=0, status="queued") is None


async def test_zhuan_rengong_hands_off_and_the_bot_says_nothing_more(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.text(sid, "运费怎么算")
    await bot_reply(visitor, sid)
    await visitor.text(sid, "转人工")
    assigned = await handed_off(visitor, agent, sid, "user_request")
    transcript = [(m["sender"], m["content"]) for m in assigned["transcript"]]
    assert transcript[:3] == [("user", "运费怎么算"), ("bot", transcript[1][1]), ("user", "转人工")]
    notice = await bot_reply(visitor, sid)  # the one handoff notice, without an article
    assert "article_id" not in notice
    await visitor.text(sid, "退货政策是什么?")  # a FAQ question now goes to the person, not the bot
    await agent.expect("message", session_id=sid, content="退货政策是什么?")
    await bot_done(node, visitor)
    assert await visitor.find("message", timeout=0, sender="bot") is None


async def test_a_question_the_kb_does_not_cover_hands_off_with_low_confidence(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.text(sid, "你们公司今年的年会在哪个城市办?")
    await handed_off(visitor, agent, sid, "low_confidence")


async def test_an_unhelpful_mark_hands_off_with_negative_feedback(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.text(sid, "优惠券怎么用")
    answer = await bot_reply(visitor, sid)
    await visitor.send("feedback", ref="f", session_id=sid, seq=answer["seq"], helpful=False)
    assigned = await handed_off(visitor, agent, sid, "negative_feedback")
    assert any(m["sender"] == "bot" and m.get("article_id") for m in assigned["transcript"])


async def test_feedback_on_a_message_that_is_not_a_bot_answer_is_refused(node: Node) -> None:
    _app, visitor, _agent, sid = await bot_chat(node)
    ack = await visitor.text(sid, "优惠券怎么用")
    await visitor.send("feedback", ref="f", session_id=sid, seq=ack["seq"], helpful=False)
    assert (await visitor.expect("error", ref="f"))["code"] == "invalid_frame"


async def test_asking_the_same_question_twice_hands_off(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.text(sid, "怎么开发票?")
    await bot_reply(visitor, sid)
    await visitor.text(sid, "怎么开发票")
    await handed_off(visitor, agent, sid, "repeated_question")


async def test_request_human_frame_hands_off(node: Node) -> None:
    _app, visitor, agent, sid = await bot_chat(node)
    await visitor.send("request_human", session_id=sid)
    await handed_off(visitor, agent, sid, "user_request")
