"""The message writer alone: CPU and wall time per message, SQLite, batches of 1 and of 50.

Seeds one app, one visitor and 50 active conversations in a fresh SQLite file, then writes 2,000
messages through `MessageWriter.write` in batches of the given sizes, round-robin over the
conversations, each with its own `client_msg_id`. CPU time counts every thread of the process
(the writer's thread runs the statements); wall time includes the fsync of every commit.

    .venv/bin/python bench/writer.py
    PYTHONPATH=/path/to/other/checkout/src .venv/bin/python bench/writer.py   # another build, same machine
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

from kefu.storage import Database
from kefu.storage.migrate import migrate
from kefu.storage.tables import apps, conversations, visitors
from kefu.storage.writer import Expected, MessageWriter, NewMessage

T0 = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
CONVERSATIONS = 50


async def seed(db: Database) -> None:
    async with db.transaction() as tx:
        await tx.execute(apps.insert().values(app_id="a", name="bench", secret="s", settings={}, created_at=T0))  # noqa: S106 (a bench app)
        await tx.execute(
            visitors.insert().values(visitor_id="v", app_id="a", user_id="U", tags={}, client_tags={}, created_at=T0)
        )
        for i in range(CONVERSATIONS):
            await tx.execute(
                conversations.insert().values(
                    session_id=f"s{i}",
                    app_id="a",
                    visitor_id="v",
                    status="active",
                    agent_id="g",
                    group_name="default",
                    channel="web",
                    created_at=T0,
                )
            )


async def run(batch: int, messages: int) -> tuple[float, float]:
    """Wall and CPU microseconds per message."""
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{Path(folder) / 'bench.db'}")
        await migrate(db)
        await seed(db)
        writer = MessageWriter(db)
        expected = Expected(app_id="a", visitor_id="v", statuses=frozenset({"active"}))
        written = 0
        cpu0, wall0 = time.process_time(), time.perf_counter()
        while written < messages:
            items = [
                NewMessage(
                    session_id=f"s{(written + i) % CONVERSATIONS}",
                    sender="user",
                    sender_id="v",
                    msg_type="text",
                    content="你好，我的订单还没发货 hello",
                    created_at=T0,
                    expected=expected,
                    client_msg_id=uuid.uuid4().hex,
                )
                for i in range(batch)
            ]
            await writer.write(items)
            written += batch
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        await writer.close()
        await db.dispose()
    return wall / written * 1e6, cpu / written * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batches", default="1,50", help="comma-separated batch sizes")
    ap.add_argument("--messages", type=int, default=2000)
    args = ap.parse_args()
    print("| batch | µs/message wall | µs/message CPU |\n|---|---|---|")
    for batch in (int(b) for b in args.batches.split(",")):
        wall, cpu = asyncio.run(run(batch, args.messages))
        print(f"| {batch} | {wall:.0f} | {cpu:.0f} |")


if __name__ == "__main__":
    main()
