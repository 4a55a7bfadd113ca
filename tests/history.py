"""Real histories for the metrics: conversations played through a running node on a FakeClock, as visitors, the bot
and agents make them (sockets, the shop's knowledge base, queue, assignment, replies, closes). Nothing is written
to the database behind the node's back, so `GET /stats` and the console's dashboard report what really happened.

- `hand_worked_day`: four conversations on the morning of T0 whose every figure tests/transport/test_stats.py
  works out by hand.
- `week`: that day and six more of bot answers, each kind of handoff, two agents and abandoned waits, for the
  dashboard (tests/e2e/test_console.py, and the README's screenshot of it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kefu.domain.clock import FakeClock
from tests.helpers import App, Client, Node

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
KB = orjson.loads((Path(__file__).parent / "data" / "kb_shop.json").read_bytes())
BOT_S = 120.0  # the first answer waits for the app's new index, slow on a busy machine; later ones are quick
UNCOVERED = "你们公司今年的年会在哪个城市办?"  # nothing in the shop's knowledge base: a low-confidence handoff


@dataclass
class Played:
    """What a history made: the app, its agents by name, and every conversation's session id."""

    node: Node
    clock: FakeClock
    app: App
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"agent_id", "email", "client"}
    sessions: list[str] = field(default_factory=list)

    async def chat(self, user: str) -> tuple[Client, str]:
        visitor = await self.node.visitor(self.app, user)
        sid = (await visitor.open_chat())["session_id"]
        self.sessions.append(sid)
        return visitor, sid

    async def agent(self, name: str) -> Client:
        """The agent's socket, signed in and offline (it comes online to take a chat), made on first use."""
        if name not in self.agents:
            info = await self.node.add_agent(self.app, name=name, max_concurrent=1)
            info["client"] = await self.node.agent(self.app, info["email"], online=False)
            self.agents[name] = info
        client: Client = self.agents[name]["client"]
        return client


async def start(node: Node, clock: FakeClock) -> Played:
    """A new app with the shop's knowledge base, so that chats start with the bot."""
    app = await node.create_app()
    r = await node.http.post("/api/v1/kb/import", json=KB, headers={"Authorization": f"Bearer {app.api_key}"})
    assert r.status_code == 200, r.text
    return Played(node, clock, app)


async def hand_worked_day(node: Node, clock: FakeClock) -> Played:
    """The history of test_stats (t in seconds after T0; agent A, 张伟, with max_concurrent 1):

    - V1 (t=0): asks a FAQ question, the bot answers with an article; V1 closes at t=5.       bot-resolved
    - V2 (t=10): says 转人工 while nobody is online -> queued at 10 (user_request);
      A goes online at t=40 -> assigned (wait 30); A replies at 50 (first response 40); A closes at 100 (handle 60).
    - V3 (t=55): request_human -> queued at 55 (user_request); A is full; V3 closes at 75.     abandoned
    - V4 (t=110): asks something the KB does not cover -> low_confidence, queued and assigned at once (wait 0);
      A replies at 130 (first response 20); still open.
    Messages: V1 question + answer = 2; V2 转人工 + handoff notice + reply = 3; V3 notice = 1; V4 question + notice +
    reply = 3; total 9.
    """
    clock.set(T0)
    played = await start(node, clock)
    agent = await played.agent("张伟")

    v1, s1 = await played.chat("V1")
    await v1.text(s1, "下单后多久能发货呀?")
    await v1.expect("message", session_id=s1, sender="bot", timeout=BOT_S)
    clock.advance(5)
    await v1.send("close", session_id=s1)
    await v1.expect("conversation", session_id=s1, status="closed")

    clock.advance(5)  # t=10
    v2, s2 = await played.chat("V2")
    await v2.text(s2, "转人工")
    await v2.expect("conversation", session_id=s2, status="queued", timeout=30)
    await v2.expect("message", session_id=s2, sender="bot")  # the handoff notice
    clock.advance(30)  # t=40
    await agent.send("set_status", status="online")
    await agent.expect("assigned", session_id=s2)
    clock.advance(10)  # t=50
    await agent.text(s2, "您好，我来帮您处理。")

    clock.advance(5)  # t=55
    v3, s3 = await played.chat("V3")
    await v3.send("request_human", session_id=s3)
    await v3.expect("queue", session_id=s3)
    clock.advance(20)  # t=75
    await v3.send("close", session_id=s3)
    await v3.expect("conversation", session_id=s3, status="closed")

    clock.advance(25)  # t=100
    await agent.send("close", session_id=s2)
    await v2.expect("conversation", session_id=s2, status="closed")

    clock.advance(10)  # t=110
    v4, s4 = await played.chat("V4")
    await v4.text(s4, UNCOVERED)
    await agent.expect("assigned", session_id=s4, timeout=30)
    clock.advance(20)  # t=130
    await agent.text(s4, "这个问题我来回答您。")
    return played


# --- the week after the hand-worked day --------------------------------------------------------------------

# An episode: ("bot", question) the bot answers and the visitor leaves; ("human", how, agent, wait_s, first_s,
# handle_s) a handoff (`how`: user_request, low_confidence, negative_feedback, repeated_question) that the agent
# takes after wait_s, answers first_s later and closes handle_s after taking it; ("abandon", wait_s) a visitor who
# asks for a person while nobody is online and leaves after wait_s.
FAQ = ["下单后多久发货?", "运费怎么算?", "优惠券怎么使用?", "怎么开发票?", "退款多久能到账?", "怎么查看物流信息?"]
WEEK: list[list[tuple[Any, ...]]] = [
    [("bot", 0), ("bot", 1), ("human", "user_request", "王芳", 25, 40, 300), ("bot", 2), ("abandon", 120)],
    [("bot", 3), ("human", "low_confidence", "李雷", 10, 30, 420), ("bot", 4), ("bot", 5)],
    [
        ("bot", 1),
        ("human", "negative_feedback", "王芳", 60, 75, 600),
        ("bot", 0),
        ("human", "user_request", "李雷", 5, 20, 180),
    ],
    [("bot", 2), ("bot", 3), ("bot", 4), ("human", "repeated_question", "王芳", 40, 55, 240), ("abandon", 300)],
    [("bot", 5), ("human", "low_confidence", "李雷", 90, 100, 900), ("bot", 1)],
    [("bot", 0), ("bot", 2), ("human", "user_request", "王芳", 15, 35, 360), ("bot", 3), ("bot", 4), ("bot", 5)],
]


async def week(node: Node, clock: FakeClock) -> Played:
    """The hand-worked day, then six more days of WEEK (each starting at 09:00), on the same app."""
    played = await hand_worked_day(node, clock)
    await played.agents["张伟"]["client"].send("set_status", status="offline")  # V4 stays open with A; A leaves
    await played.agents["张伟"]["client"].ping()
    for day, episodes in enumerate(WEEK, start=1):
        clock.set(T0 + dt.timedelta(days=day))
        for n, episode in enumerate(episodes):
            user = f"D{day}-{n}"
            if episode[0] == "bot":
                await bot_resolved(played, user, FAQ[episode[1]])
            elif episode[0] == "human":
                await handed_off(played, user, *episode[1:])
            else:
                await abandoned(played, user, episode[1])
            clock.advance(1800)  # half an hour to the next visitor
    return played


async def bot_answer(visitor: Client, sid: str) -> dict[str, Any]:
    answer = await visitor.expect("message", session_id=sid, sender="bot", timeout=BOT_S)
    assert answer.get("article_id"), f"the bot did not answer from an article: {answer}"
    return answer


async def bot_resolved(played: Played, user: str, question: str) -> None:
    visitor, sid = await played.chat(user)
    await visitor.text(sid, question)
    await bot_answer(visitor, sid)
    played.clock.advance(30)
    await visitor.send("close", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="closed")
    await visitor.close()


async def handed_off(played: Played, user: str, how: str, name: str, wait_s: int, first_s: int, handle_s: int) -> None:
    agent = await played.agent(name)
    visitor, sid = await played.chat(user)
    if how == "user_request":
        await visitor.text(sid, "转人工")
    elif how == "low_confidence":
        await visitor.text(sid, UNCOVERED)
    else:
        await visitor.text(sid, FAQ[0])
        answer = await bot_answer(visitor, sid)
        if how == "negative_feedback":
            await visitor.send("feedback", ref="fb", session_id=sid, seq=answer["seq"], helpful=False)
        else:
            assert how == "repeated_question", how
            await visitor.text(sid, FAQ[0])
    queued = await visitor.expect("conversation", session_id=sid, status="queued", timeout=30)
    assert queued["handoff_reason"] == how, queued
    played.clock.advance(wait_s)
    await agent.send("set_status", status="online")
    await agent.expect("assigned", session_id=sid)
    played.clock.advance(first_s - wait_s)
    await agent.text(sid, "您好，我来帮您处理。")
    played.clock.advance(handle_s - (first_s - wait_s))
    await agent.send("close", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="closed")
    await agent.send("set_status", status="offline")
    await agent.ping()
    await visitor.close()


async def abandoned(played: Played, user: str, wait_s: int) -> None:
    visitor, sid = await played.chat(user)
    await visitor.send("request_human", session_id=sid)
    await visitor.expect("queue", session_id=sid)
    played.clock.advance(wait_s)
    await visitor.send("close", session_id=sid)
    await visitor.expect("conversation", session_id=sid, status="closed")
    await visitor.close()
