"""The message writer on real SQLite and PostgreSQL: a batch of plain requests in, one outcome each out.

No service code runs in its transaction: what the conversation must be comes in as values (`Expected`), the
webhooks to tell as ids, and a refusal comes back as data (`Refused`) for the service to explain.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from kefu.storage import Database
from kefu.storage.tables import apps, attachments, conversations, messages, visitors, webhook_deliveries, webhooks
from kefu.storage.writer import Appended, Expected, MessageWriter, NewMessage, Refused

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)
OPEN = frozenset({"bot", "queued", "active"})


@pytest.fixture
async def writer(db: Database) -> AsyncIterator[MessageWriter]:
    made = MessageWriter(db)
    try:
        yield made
    finally:
        await made.close()


async def seed(db: Database, status: str = "active", agent_id: str | None = "ag_1") -> dict[str, str]:
    """An app, a visitor, a conversation with an agent, the visitor's upload and a webhook."""
    ids = {name: f"{name}_{uuid.uuid4().hex[:8]}" for name in ("app", "visitor", "upload", "webhook")}
    ids["session"] = f"20260301-{uuid.uuid4().hex[:6]}"
    async with db.transaction() as tx:
        await tx.execute(apps.insert().values(app_id=ids["app"], name="t", secret="s", settings={}, created_at=T0))
        await tx.execute(
            visitors.insert().values(
                visitor_id=ids["visitor"], app_id=ids["app"], user_id="U1", tags={}, client_tags={}, created_at=T0
            )
        )
        await tx.execute(
            conversations.insert().values(
                session_id=ids["session"],
                app_id=ids["app"],
                visitor_id=ids["visitor"],
                status=status,
                agent_id=agent_id,
                group_name="default",
                channel="web",
                created_at=T0,
            )
        )
        await tx.execute(
            attachments.insert().values(
                attachment_id=ids["upload"],
                app_id=ids["app"],
                uploader_kind="visitor",
                uploader_id=ids["visitor"],
                name="a.png",
                size=1,
                content_type="image/png",
                storage_key="k",
                created_at=T0,
            )
        )
        await tx.execute(
            webhooks.insert().values(
                webhook_id=ids["webhook"],
                app_id=ids["app"],
                url="https://example.com/",
                events=[],
                secret="x",
                created_at=T0,
            )
        )
    return ids


def from_visitor(ids: dict[str, str], text: str, **fields: Any) -> NewMessage:
    values: dict[str, Any] = {
        "session_id": ids["session"],
        "sender": "user",
        "sender_id": ids["visitor"],
        "msg_type": "text",
        "content": text,
        "created_at": T0,
        "expected": Expected(app_id=ids["app"], visitor_id=ids["visitor"], statuses=OPEN),
        "client_msg_id": f"c-{text}",
        "uploader_kind": "visitor",
    }
    return NewMessage(**(values | fields))


async def stored(db: Database, session_id: str) -> list[tuple[int, str]]:
    async with db.read() as tx:
        query = sa.select(messages.c.seq, messages.c.content).where(messages.c.session_id == session_id)
        return sorted((row.seq, row.content) for row in await tx.execute(query))


async def test_a_batch_writes_gapless_seqs_and_a_refusal_in_it_writes_nothing(
    db: Database, writer: MessageWriter
) -> None:
    ids = await seed(db)
    stranger = Expected(app_id=ids["app"], visitor_id="v_someone_else", statuses=OPEN)
    outcomes = await writer.write(
        [from_visitor(ids, "one"), from_visitor(ids, "nope", expected=stranger), from_visitor(ids, "two")]
    )
    first, refused, second = outcomes
    assert isinstance(first, Appended) and isinstance(second, Appended)
    assert (first.message.seq, second.message.seq) == (1, 2)
    assert isinstance(refused, Refused) and refused.reason == "sender"
    assert refused.conversation is not None and refused.conversation.visitor_id == ids["visitor"]
    assert await stored(db, ids["session"]) == [(1, "one"), (2, "two")]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"session_id": "20260301-missing"}, "missing"),
        ({"expected": Expected(app_id="app_other")}, "sender"),
        ({"expected": Expected(agent_id="ag_other")}, "sender"),
        ({"expected": Expected(statuses=frozenset({"bot"}))}, "status"),
        ({"attachment_id": "up_not_mine", "msg_type": "image"}, "attachment"),
    ],
)
async def test_each_refusal_says_why_and_writes_nothing(
    db: Database, writer: MessageWriter, change: dict[str, Any], reason: str
) -> None:
    ids = await seed(db)
    (outcome,) = await writer.write([from_visitor(ids, "x", notify=(ids["webhook"],), **change)])
    assert isinstance(outcome, Refused) and outcome.reason == reason
    assert (outcome.conversation is None) == (reason == "missing")
    assert await stored(db, ids["session"]) == []
    async with db.read() as tx:
        assert (await tx.execute(sa.select(sa.func.count()).select_from(webhook_deliveries))).scalar_one() == 0


async def test_a_retry_gets_the_stored_message_back_even_once_the_status_no_longer_fits(
    db: Database, writer: MessageWriter
) -> None:
    ids = await seed(db)
    original = await writer.append(from_visitor(ids, "hello", attachment_id=ids["upload"], msg_type="image"))
    assert isinstance(original, Appended) and original.attachment is not None
    closed = Expected(app_id=ids["app"], visitor_id=ids["visitor"], statuses=frozenset({"closed"}))
    retry = await writer.append(from_visitor(ids, "hello", expected=closed))
    assert isinstance(retry, Appended) and retry.duplicate and retry.message == original.message
    new = await writer.append(from_visitor(ids, "another", expected=closed))
    assert isinstance(new, Refused) and new.reason == "status"


async def test_the_webhooks_named_get_a_delivery_of_the_stored_message_in_its_transaction(
    db: Database, writer: MessageWriter
) -> None:
    ids = await seed(db)
    (outcome,) = await writer.write([from_visitor(ids, "hi", notify=(ids["webhook"],))])
    assert isinstance(outcome, Appended)
    async with db.read() as tx:
        (row,) = list(await tx.execute(sa.select(webhook_deliveries)))
    body = orjson.loads(row.body)
    assert (row.webhook_id, row.event, row.ordering_key, row.status) == (
        ids["webhook"],
        "message.created",
        ids["session"],
        "pending",
    )
    assert body["delivery_id"] == row.delivery_id and body["app_id"] == ids["app"]
    assert body["data"]["seq"] == 1 and body["data"]["message_id"] == outcome.message.message_id
    assert "type" not in body["data"] and body["data"]["content"] == "hi"


async def conversation_row(db: Database, session_id: str) -> Any:
    async with db.read() as tx:
        return (await tx.execute(sa.select(conversations).where(conversations.c.session_id == session_id))).one()


async def test_a_batch_over_several_conversations_numbers_each_on_from_its_own_last_seq(
    db: Database, writer: MessageWriter
) -> None:
    first, second = await seed(db), await seed(db)
    (warm,) = await writer.write([from_visitor(first, "warm-up")])
    assert isinstance(warm, Appended) and warm.message.seq == 1
    outcomes = await writer.write(
        [from_visitor(first, "a"), from_visitor(second, "b"), from_visitor(first, "c"), from_visitor(second, "d")]
    )
    seqs = [(o.message.session_id, o.message.seq) for o in outcomes if isinstance(o, Appended)]
    assert seqs == [(first["session"], 2), (second["session"], 1), (first["session"], 3), (second["session"], 2)]
    assert await stored(db, first["session"]) == [(1, "warm-up"), (2, "a"), (3, "c")]
    assert await stored(db, second["session"]) == [(1, "b"), (2, "d")]
    assert (await conversation_row(db, first["session"])).last_seq == 3
    assert (await conversation_row(db, second["session"])).last_seq == 2


async def test_a_repeat_within_one_batch_gets_the_message_its_first_copy_made(
    db: Database, writer: MessageWriter
) -> None:
    ids = await seed(db)
    first, again = await writer.write([from_visitor(ids, "once"), from_visitor(ids, "once")])
    assert isinstance(first, Appended) and isinstance(again, Appended)
    assert not first.duplicate and again.duplicate and again.message == first.message
    assert await stored(db, ids["session"]) == [(1, "once")]


async def test_rows_written_on_the_driver_read_back_through_sqlalchemy_as_written(
    db: Database, writer: MessageWriter
) -> None:
    """Timestamps, floats and the reporting figures: the raw driver and SQLAlchemy agree on how they are stored."""
    ids = await seed(db)
    later = T0 + dt.timedelta(minutes=5, microseconds=123456)
    agent = Expected(agent_id="ag_1", statuses=OPEN)
    common = {"client_msg_id": None, "uploader_kind": None}
    outcomes = await writer.write(
        [
            from_visitor(
                ids, "bot says", sender="bot", sender_id=None, confidence=0.8125, article_id="art_1", **common
            ),
            from_visitor(ids, "first reply", sender="agent", sender_id="ag_1", expected=agent, created_at=later),
            from_visitor(ids, "second reply", sender="agent", sender_id="ag_1", expected=agent, client_msg_id="c-2"),
        ]
    )
    assert all(isinstance(o, Appended) for o in outcomes)
    row = await conversation_row(db, ids["session"])
    assert row.bot_answered is True and row.last_seq == 3
    assert row.first_response_at.replace(tzinfo=dt.UTC) == later  # the first agent reply's, not the second's
    async with db.read() as tx:
        found = list(await tx.execute(sa.select(messages).order_by(messages.c.seq)))
    assert [(m.created_at.replace(tzinfo=dt.UTC), m.confidence, m.article_id) for m in found] == [
        (T0, 0.8125, "art_1"),
        (later, None, None),
        (T0, None, None),
    ]
    again = await writer.write([from_visitor(ids, "first reply", sender="agent", sender_id="ag_1", expected=agent)])
    assert isinstance(again[0], Appended) and again[0].duplicate
    assert again[0].message == outcomes[1].message  # read back from the database, equal to what was written


async def test_concurrent_senders_through_several_writers_get_gapless_seqs_and_one_message_per_client_id(
    db: Database,
) -> None:
    """Three writers (as three nodes would: SQLite on three connections, PostgreSQL three pooled transactions)
    write into the same conversations at once, and every message is also retried through another writer."""
    sessions = [await seed(db) for _ in range(3)]
    writers = [MessageWriter(db, max_batch=8) for _ in range(3)]
    per_session = 40
    try:

        async def send(n: int) -> tuple[Any, Any]:
            ids = sessions[n % len(sessions)]
            item = from_visitor(ids, f"m{n}")
            return await asyncio.gather(writers[n % 3].append(item), writers[(n + 1) % 3].append(item))

        pairs = await asyncio.wait_for(
            asyncio.gather(*(send(n) for n in range(per_session * len(sessions)))), timeout=120
        )
    finally:
        for made in writers:
            await made.close()
    for first, retry in pairs:
        assert isinstance(first, Appended) and isinstance(retry, Appended)
        assert first.message == retry.message and [first.duplicate, retry.duplicate].count(True) == 1
    for ids in sessions:
        seqs = [seq for seq, _ in await stored(db, ids["session"])]
        assert seqs == list(range(1, per_session + 1))
        assert (await conversation_row(db, ids["session"])).last_seq == per_session
