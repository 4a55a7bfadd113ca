"""How long `GET /kb/gaps` takes on a tenant with thousands of unserved questions.

    .venv/bin/python bench/kb_gaps.py [--questions 5000]

Builds a fresh SQLite database with one app and the shop's knowledge base, records `--questions` gap questions
(the labelled customer questions of the development sets, shop/bank/saas, reworded with prefixes and suffixes
so that most wordings are distinct, the first ones repeated more often, as real traffic repeats a few questions
a lot), then times `GapService.list_gaps` — reading, encoding the new wordings, grouping, the bot's best match
for each listed group — cold (nothing encoded yet) and warm (the wordings' vectors cached), at limit 50 and 200.
Prints wall time and the process's CPU time (on a busy machine the wall time is mostly waiting for a core).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kefu.bot import Bot  # noqa: E402
from kefu.bot.articles import parse_articles  # noqa: E402
from kefu.domain.clock import SystemClock  # noqa: E402
from kefu.domain.models import Actor  # noqa: E402
from kefu.services.admin import AdminService  # noqa: E402
from kefu.services.gaps import GapService  # noqa: E402
from kefu.services.kb import KbArticleSource, KbService  # noqa: E402
from kefu.storage import Database  # noqa: E402
from kefu.storage import gaps as gap_store  # noqa: E402
from kefu.storage.migrate import migrate  # noqa: E402

DATA = ROOT / "tests" / "data"
PREFIXES = ("", "请问", "想问下", "你好,", "麻烦问一下", "hi,", "咨询一下", "我想知道")
SUFFIXES = ("", "?", "呢", "啊", "谢谢", "急")


def questions(n: int) -> list[str]:
    """`n` questions: the labelled ones reworded; question i repeats about n / (i + 10) times (a long tail)."""
    labelled = [
        json.loads(line)["question"]
        for name in ("shop", "bank", "saas")
        for kind in ("eval", "train")
        for line in (DATA / f"{kind}_{name}.jsonl").read_text().splitlines()
        if line.strip()
    ]
    variants = [p + q + s for s in SUFFIXES for p in PREFIXES for q in labelled]
    asked: list[str] = []
    rank = 0
    while len(asked) < n:
        asked += [variants[rank % len(variants)]] * max(1, round(n / 20 / (rank + 10)))
        rank += 1
    return asked[:n]


async def main(count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/bench.db")
        await migrate(db)
        created = await AdminService(db, SystemClock()).create_app("bench", "a@example.com", "bench-Passw0rd!")
        bot = Bot(KbArticleSource(db))
        kb = KbService(db, SystemClock(), bot)
        await kb.import_articles(created.app_id, parse_articles((DATA / "kb_shop.json").read_bytes(), "kb_shop.json"))
        start = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
        async with db.transaction() as tx:
            for i, question in enumerate(questions(count)):
                at = start + dt.timedelta(seconds=i)
                gap = gap_store.Gap(created.app_id, f"20261201-{i:06d}", 1, question, "low_confidence", at)
                await gap_store.record_gap(tx, gap)
        await bot.best_match(created.app_id, "预热")  # models and index loaded, as on a running node
        service = GapService(db, bot)
        admin = Actor("api_key", created.app_id, "bench")
        for label, limit in (("cold", 50), ("warm", 50), ("warm", 200)):
            began, cpu = time.perf_counter(), time.process_time()
            groups = await service.list_gaps(admin, None, None, limit)
            took, used = time.perf_counter() - began, time.process_time() - cpu
            print(f"{count} questions, {label}, limit {limit}: {took:.2f} s ({used:.2f} s CPU), {len(groups)} listed")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        await db.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=5000)
    asyncio.run(main(parser.parse_args().questions))
