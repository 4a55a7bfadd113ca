"""Full-text search: terms and queries (no I/O), then the index on real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from kefu.domain.clock import FakeClock
from kefu.services.indexer import SearchIndexer
from kefu.storage import Database
from kefu.storage import archive as archive_store
from kefu.storage import search as search_store
from kefu.storage.archive import ArchiveFilter
from kefu.storage.tables import apps, conversations, messages, visitors

T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)

# --- terms and queries ----------------------------------------------------------------------------------


def test_chinese_words_and_bigrams_are_terms() -> None:
    terms = search_store.terms_of("理财产品风险等级如何划分?")
    assert {"风险", "等级", "理财产品", "理财", "产品"} <= set(terms)
    assert "?" not in terms
    # jieba cuts 退货运费 as 退 / 货运费; the bigram 退货 still makes the word findable
    assert "退货" in search_store.terms_of("退货运费谁出?")


def test_english_terms_are_case_folded_and_width_normalised() -> None:
    assert {"error", "component", "chart", "loading", "failed"} == set(
        search_store.terms_of("Error: Component 'Chart' loading failed")
    )
    assert search_store.terms_of("ＣＨＡＲＴ") == ["chart"]


def test_a_query_is_the_and_of_its_words() -> None:
    query = search_store.parse_query("风险等级")
    assert query is not None
    assert query.fts5() == '(("风险")) AND (("等级"))'
    assert query.tsquery() == "(('风险')) & (('等级'))"
    long_word = search_store.parse_query("理财产品")
    assert long_word is not None and long_word.words == ((("理财产品",), ("理财", "财产", "产品")),)
    assert search_store.parse_query("?!  ") is None
    assert search_store.parse_query("'; DROP TABLE messages; --\"") is not None  # only word characters survive


# --- the index on a real database ------------------------------------------------------------------------


class Seeder:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.number = 0

    async def app(self) -> str:
        app_id = f"app_{uuid.uuid4().hex[:8]}"
        async with self.db.transaction() as tx:
            await tx.execute(apps.insert().values(app_id=app_id, name="t", secret="s", settings={}, created_at=T0))
        return app_id

    async def chat(
        self,
        app_id: str,
        texts: list[str],
        user_id: str | None = None,
        context: str | None = None,
        status: str = "closed",
        agent_id: str | None = None,
        minutes: int = 0,
    ) -> str:
        self.number += 1
        sid = f"20260301-{self.number:06d}-{uuid.uuid4().hex[:4]}"
        visitor_id = f"v_{uuid.uuid4().hex[:8]}"
        created = T0 + dt.timedelta(minutes=minutes)
        async with self.db.transaction() as tx:
            await tx.execute(
                visitors.insert().values(
                    visitor_id=visitor_id,
                    app_id=app_id,
                    user_id=user_id or f"U-{self.number}",
                    tags={},
                    client_tags={},
                    created_at=T0,
                )
            )
            await tx.execute(conversations.insert().values(**conversation_values(sid, app_id, visitor_id, created)))
            await tx.execute(
                conversations.update()
                .where(conversations.c.session_id == sid)
                .values(status=status, agent_id=agent_id, context=context, last_seq=len(texts))
            )
            for seq, text in enumerate(texts, 1):
                await tx.execute(messages.insert().values(**message_values(sid, seq, text, created)))
        return sid


def conversation_values(sid: str, app_id: str, visitor_id: str, created: dt.datetime) -> dict[str, Any]:
    return {
        "session_id": sid,
        "app_id": app_id,
        "visitor_id": visitor_id,
        "status": "closed",
        "group_name": "default",
        "channel": "web",
        "created_at": created,
    }


def message_values(sid: str, seq: int, text: str, created: dt.datetime) -> dict[str, Any]:
    return {
        "message_id": f"m_{uuid.uuid4().hex}",
        "session_id": sid,
        "seq": seq,
        "sender": "user",
        "sender_id": "x",
        "msg_type": "text",
        "content": text,
        "created_at": created,
    }


async def found(db: Database, app_id: str, q: str | None = None, **filters: Any) -> set[str]:
    async with db.read() as tx:
        page = await archive_store.search(tx, ArchiveFilter(app_id, q=q, **filters), 100, None)
    return {c.session_id for c in page}


async def test_search_finds_words_in_messages_and_contexts(db: Database) -> None:
    seed = Seeder(db)
    app = await seed.app()
    risk = await seed.chat(app, ["你好", "理财产品风险等级如何划分?"])
    refund = await seed.chat(app, ["退货运费谁出?"])
    chart = await seed.chat(app, ["hi"], context="Error: Component 'Chart' loading failed")
    await SearchIndexer(db).wait_idle()
    assert await found(db, app, "风险等级") == {risk}
    assert await found(db, app, "退货") == {refund}
    assert await found(db, app, "退货运费") == {refund}
    assert await found(db, app, "chart") == await found(db, app, "CHART") == {chart}
    assert await found(db, app, "保险理赔") == set()
    assert await found(db, app, "?") == set()
    assert await found(db, app, "\"' OR 1=1 --") == set()


async def test_search_keeps_every_filter_and_the_app_boundary(db: Database) -> None:
    seed = Seeder(db)
    app, other = await seed.app(), await seed.app()
    early = await seed.chat(app, ["退款进度"], user_id="U1", agent_id="ag_1", minutes=0)
    late = await seed.chat(app, ["退款进度"], user_id="U2", agent_id="ag_2", status="active", minutes=30)
    await seed.chat(other, ["退款进度"], user_id="U1")
    await SearchIndexer(db).wait_idle()
    assert await found(db, app, "退款") == {early, late}
    assert await found(db, app, "退款", user_id="U2") == {late}
    assert await found(db, app, "退款", agent_id="ag_1") == {early}
    assert await found(db, app, "退款", status="active") == {late}
    assert await found(db, app, "退款", start=T0 + dt.timedelta(minutes=10)) == {late}
    assert await found(db, app, "退款", end=T0 + dt.timedelta(minutes=10)) == {early}


async def test_indexing_twice_writes_nothing_more(db: Database) -> None:
    seed = Seeder(db)
    app = await seed.app()
    sid = await seed.chat(app, ["同一批消息"])
    async with db.read() as tx:
        batch = await search_store.pending_documents(tx, 100)
    terms = [search_store.terms_of(d.text) for d in batch.documents]
    for _ in range(2):  # the same batch stored twice, as two nodes would: no error, no second document
        async with db.transaction() as tx:
            await search_store.lock_index(tx)
            await search_store.store_documents(tx, batch, terms)
    assert await found(db, app, "消息") == {sid}
    table = "search_fts" if db.is_sqlite else "search_docs"
    async with db.read() as tx:
        documents = (await tx.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608
    assert documents == (1 if db.is_sqlite else 2)  # PostgreSQL keeps an empty document for the empty context
    assert await SearchIndexer(db).run_once() is False


@pytest.mark.parametrize("db_url", [pytest.param("postgresql", marks=pytest.mark.postgresql)], indirect=True)
async def test_a_transaction_that_commits_late_is_still_indexed(db: Database) -> None:
    seed = Seeder(db)
    app = await seed.app()
    first = await seed.chat(app, ["开头"])
    async with db.engine.connect() as slow:
        await slow.begin()
        await slow.execute(messages.insert().values(**message_values(first, 2, "迟到的消息", T0)))
        second = await seed.chat(app, ["后来的消息"])  # commits while `slow`, which began first, is open
        indexer = SearchIndexer(db)
        await indexer.wait_idle()
        await slow.commit()
    await indexer.wait_idle()
    assert await found(db, app, "迟到") == {first}
    assert await found(db, app, "后来") == {second}


async def test_snippet_texts_come_from_the_first_matching_message(db: Database) -> None:
    seed = Seeder(db)
    app = await seed.app()
    sid = await seed.chat(app, ["你好", "Chart 加载失败", "chart again"])
    async with db.read() as tx:
        texts = await archive_store.matching_texts(tx, [sid], ["chart"])
    assert texts == {sid: "Chart 加载失败"}


async def until_found(db: Database, app_id: str, q: str, expected: set[str], timeout_s: float = 10.0) -> None:
    """Wait (polling, with a deadline) until the search for `q` answers `expected`."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (got := await found(db, app_id, q)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"search for {q!r} still answers {got}"
        await asyncio.sleep(0.05)


async def test_notified_passes_wait_out_the_minimum_interval_and_the_lag_shows_the_wait(db: Database) -> None:
    seed = Seeder(db)
    app = await seed.app()
    clock = FakeClock()
    indexer = SearchIndexer(db, interval_s=3600, min_interval_s=5, clock=clock)
    await indexer.start()
    try:
        first = await seed.chat(app, ["第一条消息"])
        indexer.notify()
        await until_found(db, app, "第一条", {first})
        second = await seed.chat(app, ["第二条消息"])
        indexer.notify()
        await asyncio.wait_for(indexer.held.wait(), 10)  # notified, and held back: the interval has not passed
        clock.advance(2)
        assert indexer.lag_s() == 2.0
        assert await found(db, app, "第二条") == set() and indexer.passes == 1
        clock.advance(3)  # five seconds since the first pass began
        await until_found(db, app, "第二条", {second})
        deadline = asyncio.get_running_loop().time() + 10
        while indexer.passes < 2:  # the pass marks itself done just after its write committed
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        assert indexer.lag_s() == 0.0
    finally:
        await indexer.stop()
