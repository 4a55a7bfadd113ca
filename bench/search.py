"""Archive search benchmark: fill N messages (default 1,000,000), index them, time keyword searches.

Fills a temporary SQLite file and/or a fresh PostgreSQL database straight through SQLAlchemy Core in
large batches (not through the chat path), runs the search indexer until it has caught up, then times
`GET /api/v1/conversations?q=…` as the service answers it (ArchiveService.search, snippets included, limit 50)
for Chinese and English keywords of different frequencies, and prints p50/p95 per backend.

    .venv/bin/python bench/search.py --messages 1000000 --backends sqlite,postgresql \\
        --pg postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from kefu.domain.models import Actor
from kefu.services.archive import ArchiveService, make_filter
from kefu.services.indexer import SearchIndexer
from kefu.storage import Database
from kefu.storage.migrate import migrate
from kefu.storage.tables import apps, conversations, messages, visitors

PHRASES = [
    "请问我的订单什么时候发货",
    "申请退款需要多久到账",
    "理财产品风险等级如何划分",
    "物流信息一直没有更新",
    "发票可以开公司抬头吗",
    "优惠券为什么用不了",
    "退货运费谁出",
    "会员积分怎么兑换",
    "密码忘记了怎么找回",
    "根据监管要求我行产品分为R1-R5五个等级",
    "已经为您加急处理请耐心等待",
    "您好很高兴为您服务",
    "Error: Component 'Chart' loading failed",
    "Payment timeout after 30 seconds",
    "How do I reset my password",
    "The invoice address is wrong",
    "Where is my parcel, tracking shows nothing",
    "Thanks, that solved it",
]
FILLER = ["的", "了", "是", "我", "你", "好", "吗", "呢", "嗯", "okay", "sure", "please", "thanks", "hello"]
KEYWORDS = ["退款", "风险等级", "物流", "发票", "优惠券", "积分兑换", "加急", "Chart", "timeout", "password", "parcel"]
SENDERS = ("user", "agent", "bot")


def message_text(rng: random.Random) -> str:
    phrase = rng.choice(PHRASES)
    return f"{phrase} {' '.join(rng.choices(FILLER, k=rng.randint(0, 6)))} #{rng.randint(1, 99999)}"


async def fill(db: Database, total: int, per_chat: int, seed: int = 7) -> str:
    """One app with total/per_chat closed conversations of per_chat messages each; its app_id."""
    rng = random.Random(seed)
    app_id = f"app_{uuid.uuid4().hex[:8]}"
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    chats = total // per_chat
    async with db.transaction() as tx:
        row = {"app_id": app_id, "name": "bench", "settings": {}, "created_at": start}
        await tx.execute(apps.insert().values(secret=uuid.uuid4().hex, **row))
    batch_chats = max(1, 20_000 // per_chat)
    for first in range(0, chats, batch_chats):
        visitor_rows: list[dict[str, Any]] = []
        conversation_rows: list[dict[str, Any]] = []
        message_rows: list[dict[str, Any]] = []
        for n in range(first, min(chats, first + batch_chats)):
            created = start + dt.timedelta(seconds=n * 30)
            vid, sid = f"v_{n:08d}", f"{created:%Y%m%d}-{n:07d}"
            visitor_rows.append(
                {
                    "visitor_id": vid,
                    "app_id": app_id,
                    "user_id": f"U{n}",
                    "tags": {},
                    "client_tags": {},
                    "created_at": created,
                }
            )
            conversation_rows.append(
                {
                    "session_id": sid,
                    "app_id": app_id,
                    "visitor_id": vid,
                    "status": "closed",
                    "group_name": "default",
                    "agent_id": f"ag_{n % 40}",
                    "context": rng.choice(PHRASES) if n % 10 == 0 else None,
                    "channel": "web",
                    "last_seq": per_chat,
                    "created_at": created,
                    "closed_at": created + dt.timedelta(minutes=10),
                }
            )
            for seq in range(1, per_chat + 1):
                message_rows.append(
                    {
                        "message_id": f"m_{n:08d}_{seq:04d}",
                        "session_id": sid,
                        "seq": seq,
                        "sender": SENDERS[seq % 3],
                        "sender_id": vid,
                        "msg_type": "text",
                        "content": message_text(rng),
                        "created_at": created + dt.timedelta(seconds=seq),
                    }
                )
        async with db.transaction() as tx:
            await tx.execute(visitors.insert(), visitor_rows)
            await tx.execute(conversations.insert(), conversation_rows)
            await tx.execute(messages.insert(), message_rows)
    return app_id


async def time_searches(db: Database, app_id: str, rounds: int) -> dict[str, Any]:
    archive = ArchiveService(db)
    actor = Actor("api_key", app_id, "bench", "admin")
    timings: list[float] = []
    per_keyword: dict[str, float] = {}
    for keyword in KEYWORDS:  # warm the cache and jieba once
        await archive.search(make_filter(actor, q=keyword), 50, None)
    for _ in range(rounds):
        for keyword in KEYWORDS:
            t0 = time.perf_counter()
            page = await archive.search(make_filter(actor, q=keyword), 50, None)
            elapsed = (time.perf_counter() - t0) * 1000
            timings.append(elapsed)
            per_keyword[keyword] = max(per_keyword.get(keyword, 0.0), elapsed)
            assert page["items"], f"no hit for {keyword}"
    timings.sort()
    return {
        "p50_ms": statistics.median(timings),
        "p95_ms": timings[int(len(timings) * 0.95) - 1],
        "max_ms": timings[-1],
        "worst_keyword": max(per_keyword, key=lambda k: per_keyword[k]),
        "searches": len(timings),
    }


async def bench(url: str, total: int, per_chat: int, rounds: int) -> dict[str, Any]:
    db = Database(url)
    try:
        await migrate(db)
        t0 = time.perf_counter()
        app_id = await fill(db, total, per_chat)
        filled = time.perf_counter() - t0
        t0 = time.perf_counter()
        await SearchIndexer(db, batch=5000).wait_idle()
        indexed = time.perf_counter() - t0
        if not db.is_sqlite:
            async with db.transaction() as tx:
                await tx.exec_driver_sql("ANALYZE")
        return {"fill_s": filled, "index_s": indexed} | await time_searches(db, app_id, rounds)
    finally:
        await db.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--per-chat", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for backend in args.backends.split(","):
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "bench.db"
                results["sqlite"] = await bench(f"sqlite:///{path}", args.messages, args.per_chat, args.rounds)
        else:
            admin = make_url(args.pg)
            name = f"kefu_bench_{uuid.uuid4().hex[:8]}"
            dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
            conn = await asyncpg.connect(dsn)
            await conn.execute(f'CREATE DATABASE "{name}"')
            try:
                url = admin.set(database=name).render_as_string(hide_password=False)
                results["postgresql"] = await bench(url, args.messages, args.per_chat, args.rounds)
            finally:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.close()
        print(backend, results[backend], flush=True)
    print("\n| backend | messages | fill s | index s | p50 ms | p95 ms | max ms | worst keyword |")
    print("|---|---|---|---|---|---|---|---|")
    for backend, r in results.items():
        print(
            f"| {backend} | {args.messages:,} | {r['fill_s']:.0f} | {r['index_s']:.0f} | {r['p50_ms']:.1f} |"
            f" {r['p95_ms']:.1f} | {r['max_ms']:.1f} | {r['worst_keyword']} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
