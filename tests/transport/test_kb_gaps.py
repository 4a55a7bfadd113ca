"""The bot's learning loop over real sockets and HTTP (protocol §11): what it could not serve, 👍/👎, and
`POST /kb/articles/{id}/similar` answered by the bot at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from kefu.domain.clock import FakeClock, iso
from kefu.storage import gaps as gap_store
from tests.conftest import REDIS_URL, fresh_pg_database
from tests.helpers import App, Client, Node, running_node

KB = orjson.loads((Path(__file__).parent.parent / "data" / "kb_shop.json").read_bytes())
# The shop's membership programme by the name its ads use: nothing in the knowledge base says so, so no bot can
# know that these ask about the `membership` article (the added wording is then an exact match).
CLUB = "星星俱乐部有什么好处"
CLUB_AGAIN = "加入星星俱乐部有哪些好处"  # a paraphrase of CLUB
STORE = "你们门店几点关门"  # the shop sells online only: nothing in the knowledge base
INVOICE = "怎么开发票?"  # an article's own question: answered
# The first question of an app waits for its index: tens of seconds on a busy machine.
FIRST_ANSWER = 300
T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def auth(app: App) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.api_key}"}


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code, r.text


async def shop(node: Node) -> App:
    app = await node.create_app()
    r = await node.http.post("/api/v1/kb/import", json=KB, headers=auth(app))
    assert r.status_code == 200, r.text
    return app


async def bot_chat(node: Node, app: App, user: str) -> tuple[Client, str]:
    visitor = await node.visitor(app, user)
    conv = await visitor.open_chat()
    assert conv["status"] == "bot"
    return visitor, conv["session_id"]


async def handed_off(visitor: Client, sid: str, reason: str) -> None:
    queued = await visitor.expect("conversation", session_id=sid, status="queued", timeout=FIRST_ANSWER)
    assert queued["handoff_reason"] == reason


async def answered(visitor: Client, sid: str) -> dict[str, Any]:
    reply = await visitor.expect("message", session_id=sid, sender="bot", timeout=FIRST_ANSWER)
    assert reply.get("article_id"), reply
    return reply


async def unserved(node: Node, app: App, user: str, question: str) -> str:
    """A new chat whose one question the bot hands off for low confidence; its session id."""
    visitor, sid = await bot_chat(node, app, user)
    await visitor.text(sid, question)
    await handed_off(visitor, sid, "low_confidence")
    return sid


async def visitor_feedback(visitor: Client, sid: str, seq: int, helpful: bool) -> None:
    """Send a 👍/👎 and wait until the server has handled it (frames of one socket are handled in order)."""
    await visitor.send("feedback", ref="fb", session_id=sid, seq=seq, helpful=helpful)
    await visitor.ping()
    assert await visitor.find("error", timeout=0.1, ref="fb") is None


async def gaps(node: Node, app: App, **params: Any) -> list[dict[str, Any]]:
    r = await node.http.get("/api/v1/kb/gaps", params=params, headers=auth(app))
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    for item in items:
        assert item["count"] == len(item["session_ids"]) == len(set(item["session_ids"]))
    return items


async def stored_gap(node: Node, app: App, sid: str) -> gap_store.Gap | None:
    async with node.services.db.read() as tx:
        found = [g for g in await gap_store.gaps_between(tx, app.app_id, None, None, 1000) if g.session_id == sid]
    assert len(found) <= 1
    return found[0] if found else None


async def test_handed_off_questions_grouped_by_meaning_largest_first(node: Node) -> None:
    app = await shop(node)
    assert await gaps(node, app) == []
    club = [await unserved(node, app, "U1", CLUB), await unserved(node, app, "U2", CLUB_AGAIN)]
    store = await unserved(node, app, "U3", STORE)
    for question in (STORE, "你们仓库在哪个城市"):  # POST /bot/ask never counts
        r = await node.http.post("/api/v1/bot/ask", json={"question": question}, headers=auth(app))
        assert r.json()["handoff"] is True

    items = await gaps(node, app)
    assert [(i["count"], i["session_ids"]) for i in items] == [(2, club), (1, [store])]
    assert items[0]["question"] in (CLUB, CLUB_AGAIN) and items[1]["question"] == STORE
    # Every wording of a group with its count, the listed one first: what the console adds to an article.
    assert items[0]["wordings"][0]["question"] == items[0]["question"]
    assert sorted((w["question"], w["count"]) for w in items[0]["wordings"]) == [(CLUB_AGAIN, 1), (CLUB, 1)]
    assert items[1]["wordings"] == [{"question": STORE, "count": 1}]
    for item in items:  # the closest article and the bot's confidence in it now, below the threshold
        assert isinstance(item["article_id"], str) and 0 <= item["confidence"] < 0.7


async def test_which_question_each_handoff_records_one_per_conversation(node: Node) -> None:
    app = await shop(node)
    # low_confidence: the question handed off, not the answered one before it.
    low_visitor, low = await bot_chat(node, app, "U-low")
    await low_visitor.text(low, INVOICE)
    invoice_answer = await answered(low_visitor, low)
    await low_visitor.text(low, CLUB)
    await handed_off(low_visitor, low, "low_confidence")
    await low_visitor.text(low, STORE)  # to the person now: the conversation gave its one question
    gap = await stored_gap(node, app, low)
    assert gap is not None and (gap.question, gap.reason, gap.seq) == (CLUB, "low_confidence", 3)

    # user_request: the visitor's last question before asking for a person (not the request itself).
    visitor, asked = await bot_chat(node, app, "U-request")
    await visitor.text(asked, INVOICE)
    await answered(visitor, asked)
    await visitor.text(asked, "转人工")
    await handed_off(visitor, asked, "user_request")
    gap = await stored_gap(node, app, asked)
    assert gap is not None and (gap.question, gap.reason) == (INVOICE, "user_request")
    # ... and none when there was no question before it, in words or with request_human.
    visitor, bare = await bot_chat(node, app, "U-bare")
    await visitor.text(bare, "转人工")
    await handed_off(visitor, bare, "user_request")
    visitor, frame = await bot_chat(node, app, "U-frame")
    await visitor.send("request_human", session_id=frame)
    await handed_off(visitor, frame, "user_request")
    assert await stored_gap(node, app, bare) is None and await stored_gap(node, app, frame) is None
    # request_human after a question: that question.
    visitor, later = await bot_chat(node, app, "U-frame-later")
    await visitor.text(later, INVOICE)
    await answered(visitor, later)
    await visitor.send("request_human", session_id=later)
    await handed_off(visitor, later, "user_request")
    gap = await stored_gap(node, app, later)
    assert gap is not None and (gap.question, gap.reason) == (INVOICE, "user_request")

    # repeated_question: the question asked again.
    visitor, again = await bot_chat(node, app, "U-again")
    await visitor.text(again, "怎么开发票?")
    await answered(visitor, again)
    await visitor.text(again, "怎么开发票")
    await handed_off(visitor, again, "repeated_question")
    gap = await stored_gap(node, app, again)
    assert gap is not None and (gap.question, gap.reason, gap.seq) == ("怎么开发票", "repeated_question", 3)

    # Answered now, so the handed-off questions of `asked`, `later` and `again` are not listed; `low`'s is.
    assert [i["session_ids"] for i in await gaps(node, app)] == [[low]]

    # A 👎 afterwards on the answer before the handoff: the conversation's one question becomes that one.
    await visitor_feedback(low_visitor, low, invoice_answer["seq"], helpful=False)
    gap = await stored_gap(node, app, low)
    assert gap is not None and (gap.question, gap.reason) == (INVOICE, "negative_feedback")
    # Its group — the invoice questions of `asked`, `later` and `again` too — is now listed, though answered.
    items = await gaps(node, app)
    assert [(i["question"], i["session_ids"]) for i in items] == [(INVOICE, [low, asked, later, again])]
    # One wording, as first typed: "怎么开发票" of `again` folds into it (punctuation), so it counts 4.
    assert items[0]["wordings"] == [{"question": INVOICE, "count": 4}]


async def test_no_answer_from_an_empty_knowledge_base_has_no_closest_article(node: Node) -> None:
    app = await node.create_app()
    article = {"id": "invoice", "question": INVOICE, "answer": "确认收货后在订单里申请开票。"}
    assert (await node.http.post("/api/v1/kb/articles", json=article, headers=auth(app))).status_code == 201
    visitor, sid = await bot_chat(node, app, "U-empty")
    assert (await node.http.delete("/api/v1/kb/articles/invoice", headers=auth(app))).status_code == 204
    await visitor.text(sid, STORE)
    await handed_off(visitor, sid, "no_answer")
    items = await gaps(node, app)
    assert items == [
        {
            "question": STORE,
            "count": 1,
            "session_ids": [sid],
            "article_id": None,
            "confidence": None,
            "wordings": [{"question": STORE, "count": 1}],
        }
    ]


async def test_thumbs_down_is_listed_even_when_answered_and_thumbs_up_is_stored(node: Node) -> None:
    app = await shop(node)
    visitor, liked = await bot_chat(node, app, "U-up")
    await visitor.text(liked, INVOICE)
    reply = await answered(visitor, liked)
    await visitor_feedback(visitor, liked, reply["seq"], helpful=True)
    async with node.services.db.read() as tx:
        marks = await gap_store.feedback_of(tx, app.app_id, liked)
    assert [(m.seq, m.article_id, m.question, m.helpful) for m in marks] == [
        (reply["seq"], reply["article_id"], INVOICE, True)
    ]
    assert await stored_gap(node, app, liked) is None and await gaps(node, app) == []

    visitor, disliked = await bot_chat(node, app, "U-down")
    await visitor.text(disliked, INVOICE)
    reply = await answered(visitor, disliked)
    await visitor_feedback(visitor, disliked, reply["seq"], helpful=False)
    await handed_off(visitor, disliked, "negative_feedback")
    items = await gaps(node, app)
    # The bot answers it with confidence, and it stays: a 👎 says that answer did not serve.
    assert [(i["question"], i["session_ids"], i["article_id"]) for i in items] == [(INVOICE, [disliked], "invoice")]
    assert items[0]["confidence"] >= 0.7

    async with node.services.db.read() as tx:
        marks = await gap_store.feedback_of(tx, app.app_id)
    assert [(m.session_id, m.helpful) for m in marks] == [(liked, True), (disliked, False)]


async def test_a_thumbs_down_names_the_question_its_answer_replied_to(node: Node) -> None:
    """Two questions sent before the first answer: the first answer replied to the first question."""
    app = await shop(node)
    visitor, sid = await bot_chat(node, app, "U-fast")
    for question in (INVOICE, "运费怎么算"):
        await visitor.send(
            "send", session_id=sid, client_msg_id=question, msg_type="text", content=question, ref=question
        )
    await visitor.expect("ack", ref="运费怎么算")
    first = await answered(visitor, sid)
    await answered(visitor, sid)
    await visitor_feedback(visitor, sid, first["seq"], helpful=False)
    gap = await stored_gap(node, app, sid)
    assert gap is not None and (gap.question, gap.seq) == (INVOICE, 1)


async def test_from_to_and_limit(db_url: str) -> None:
    clock = FakeClock(T0)
    async with running_node(db_url, clock=clock) as node:
        app = await shop(node)
        sids = []
        for i, question in enumerate((CLUB, STORE, "你们仓库在哪个城市")):
            clock.set(T0 + dt.timedelta(hours=i))
            sids.append(await unserved(node, app, f"U{i}", question))
        one_hour = iso(T0 + dt.timedelta(hours=1))
        assert [i["session_ids"] for i in await gaps(node, app, **{"from": one_hour})] == [[sids[2]], [sids[1]]]
        assert [i["session_ids"] for i in await gaps(node, app, to=one_hour)] == [[sids[0]]]
        two_hours = iso(T0 + dt.timedelta(hours=2))
        assert [i["session_ids"] for i in await gaps(node, app, **{"from": one_hour, "to": two_hours})] == [[sids[1]]]
        assert len(await gaps(node, app)) == 3
        assert [i["session_ids"] for i in await gaps(node, app, limit=2)] == [[sids[2]], [sids[1]]]  # newest first
        for bad in ({"limit": 0}, {"limit": 201}, {"limit": "x"}):
            assert_error(await node.http.get("/api/v1/kb/gaps", params=bad, headers=auth(app)), 422, "invalid_request")
        r = await node.http.get("/api/v1/kb/gaps", params={"from": "yesterday"}, headers=auth(app))
        assert_error(r, 400, "bad_request")


async def test_who_may_see_gaps_and_add_wordings(node: Node) -> None:
    app, other = await shop(node), await shop(node)
    sid = await unserved(node, other, "U-other", CLUB)
    assert [i["session_ids"] for i in await gaps(node, other)] == [[sid]]
    assert await gaps(node, app) == []  # another app's gaps are never visible

    # Another app's article is as absent as one that never existed, and stays as it was.
    article = {"id": "other-only", "question": "其他店的问题?", "answer": "其他店的回答。"}
    assert (await node.http.post("/api/v1/kb/articles", json=article, headers=auth(other))).status_code == 201
    for article_id in ("other-only", "no-such-article"):
        url = f"/api/v1/kb/articles/{article_id}/similar"
        r = await node.http.post(url, json={"question": CLUB}, headers=auth(app))
        assert_error(r, 404, "article_not_found")
        assert r.json()["error"]["message"] == f"No article '{article_id}' in this app's knowledge base."
    r = await node.http.get("/api/v1/kb/articles/other-only", headers=auth(other))
    assert r.json()["similar"] == []

    agent = await node.add_agent(app)
    token = {"Authorization": f"Bearer {await node.login(app, agent['email'])}"}
    assert_error(await node.http.get("/api/v1/kb/gaps", headers=token), 403, "forbidden")
    r = await node.http.post("/api/v1/kb/articles/membership/similar", json={"question": CLUB}, headers=token)
    assert_error(r, 403, "forbidden")
    visitor = {"Authorization": f"Bearer {await node.visitor_token(app)}"}
    assert_error(await node.http.get("/api/v1/kb/gaps", headers=visitor), 401, "unauthorized")
    admin = {"Authorization": f"Bearer {await node.login(app, app.admin_email)}"}
    assert (await node.http.get("/api/v1/kb/gaps", headers=admin)).status_code == 200


async def test_adding_a_wording_checks_it(node: Node) -> None:
    app = await shop(node)
    before = (await node.http.get("/api/v1/kb/articles/membership", headers=auth(app))).json()

    async def add(question: Any, article_id: str = "membership") -> httpx.Response:
        url = f"/api/v1/kb/articles/{article_id}/similar"
        return await node.http.post(url, json={"question": question}, headers=auth(app))

    assert_error(await add(""), 422, "invalid_request")
    assert_error(await add("x" * 1001), 422, "invalid_request")
    assert_error(await add("  "), 400, "invalid_article")
    assert_error(await add("?!"), 400, "invalid_article")
    assert_error(await add(" 会員等級有什麼區別？ "), 409, "already_exists")  # its own question, once normalised
    assert_error(await add("怎么开发票"), 409, "already_exists")  # another article's
    assert (await node.http.get("/api/v1/kb/articles/membership", headers=auth(app))).json() == before

    r = await add(f"  {CLUB}  ")
    assert r.status_code == 200, r.text
    added = r.json()
    assert added["similar"] == [*before["similar"], CLUB] and added["updated_at"] >= before["updated_at"]
    assert (await node.http.get("/api/v1/kb/articles/membership", headers=auth(app))).json() == added
    assert_error(await add(CLUB), 409, "already_exists")


async def test_the_learning_loop_a_handed_off_wording_added_is_answered_at_once(node: Node) -> None:
    """A visitor's question is handed off; the admin adds that wording to an article; the same question in a new
    chat is answered by the bot with that article — on the same running node, without a restart."""
    app = await shop(node)
    sid = await unserved(node, app, "U-first", CLUB)
    [gap] = await gaps(node, app)
    assert (gap["question"], gap["session_ids"]) == (CLUB, [sid])

    r = await node.http.post("/api/v1/kb/articles/membership/similar", json={"question": CLUB}, headers=auth(app))
    assert r.status_code == 200 and CLUB in r.json()["similar"]

    visitor, again = await bot_chat(node, app, "U-next")
    await visitor.text(again, CLUB)
    reply = await answered(visitor, again)
    assert reply["article_id"] == "membership" and reply["confidence"] >= 0.7
    assert await gaps(node, app) == []  # handed off then, answered now: no longer a gap


@pytest.mark.redis
async def test_a_wording_added_on_one_node_is_answered_on_another() -> None:
    assert REDIS_URL is not None
    async with (
        fresh_pg_database() as url,
        running_node(url, redis=REDIS_URL) as a,
        running_node(url, redis=REDIS_URL) as b,
    ):
        app = await shop(a)
        await unserved(b, app, "U-b", CLUB)  # node B's bot builds its index and hands off
        r = await a.http.post("/api/v1/kb/articles/membership/similar", json={"question": CLUB}, headers=auth(app))
        assert r.status_code == 200
        visitor, sid = await bot_chat(b, app, "U-b2")
        await visitor.text(sid, CLUB)
        assert (await answered(visitor, sid))["article_id"] == "membership"
