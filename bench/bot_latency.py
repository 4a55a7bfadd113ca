"""Bot answer latency with a 1,000-article knowledge base, and what the models and index cost in memory.

    .venv/bin/python bench/bot_latency.py [--articles 1000] [--questions 2000]

Builds a fresh SQLite database with one app, imports `--articles` articles (the 60 of tests/data, then
variants of them with other ids and reworded phrasings, so the index has 1,000 distinct articles and about
5,000 phrasings), and times `Bot.answer` end to end — KB version check in the database, encoding, scoring,
confidence — over the evaluation questions, one at a time. Prints p50/p90/p99/max and resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kefu.bot import Bot  # noqa: E402
from kefu.bot.articles import ArticleInput, parse_articles  # noqa: E402
from kefu.domain.clock import SystemClock  # noqa: E402
from kefu.services.admin import AdminService  # noqa: E402
from kefu.services.kb import KbArticleSource, KbService  # noqa: E402
from kefu.storage import Database  # noqa: E402
from kefu.storage.migrate import migrate  # noqa: E402

DATA = ROOT / "tests" / "data"
PREFIXES = ("", "请问", "想问下", "你好,", "麻烦问一下", "hi,", "咨询一下", "我想知道")
SUFFIXES = ("", "?", "呢", "啊", "谢谢", "急", "(第二家店)", "-会员专区")


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def knowledge_base(n: int) -> list[ArticleInput]:
    base: list[ArticleInput] = []
    for name in ("kb_shop.json", "kb_bank.csv", "kb_saas.json"):
        base += parse_articles((DATA / name).read_bytes(), name)
    articles: list[ArticleInput] = []
    for i in range(n):
        a = base[i % len(base)]
        k = i // len(base)
        pre, suf = PREFIXES[k % len(PREFIXES)], SUFFIXES[(k // len(PREFIXES)) % len(SUFFIXES)] + (str(k) if k else "")
        articles.append(
            ArticleInput(
                f"{a.article_id}-{i}",
                pre + a.question + suf,
                tuple(pre + s + suf for s in a.similar),
                a.answer + suf,
                a.category,
            )
        )
    return articles


async def run(n_articles: int, n_questions: int) -> dict[str, float]:
    questions = [
        json.loads(line)["question"]
        for name in ("eval_shop.jsonl", "eval_bank.jsonl", "eval_saas.jsonl")
        for line in (DATA / name).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    before = rss_mib()
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite:///{folder}/bench.db")
        await migrate(db)
        clock = SystemClock()
        app = await AdminService(db, clock).create_app("bench", "bench@example.com", "bench-password")
        bot = Bot(KbArticleSource(db))
        await KbService(db, clock, bot).import_articles(app.app_id, knowledge_base(n_articles))
        started = time.perf_counter()
        await bot.matcher()
        loaded = time.perf_counter() - started
        after_models = rss_mib()
        started = time.perf_counter()
        index = await bot.index(app.app_id)
        built = time.perf_counter() - started
        after_index = rss_mib()
        for q in questions[:50]:  # warm-up
            await bot.answer(app.app_id, q, 0.7)
        timings = []
        for i in range(n_questions):
            t = time.perf_counter()
            await bot.answer(app.app_id, questions[i % len(questions)], 0.7)
            timings.append((time.perf_counter() - t) * 1000)
        matcher = await bot.matcher()
        alone = []
        for i in range(n_questions):  # the matcher alone, on this thread: no database, no thread hop
            t = time.perf_counter()
            matcher.match(index, questions[i % len(questions)])
            alone.append((time.perf_counter() - t) * 1000)
        await db.dispose()
    alone.sort()
    timings.sort()
    return {
        "articles": len(index.articles),
        "phrasings": len(index.phrase_article),
        "questions": n_questions,
        "models_load_s": round(loaded, 2),
        "index_build_s": round(built, 2),
        "p50_ms": round(statistics.median(timings), 2),
        "p90_ms": round(timings[int(0.9 * len(timings))], 2),
        "p99_ms": round(timings[int(0.99 * len(timings))], 2),
        "max_ms": round(timings[-1], 2),
        "matcher_only_p50_ms": round(statistics.median(alone), 2),
        "matcher_only_p99_ms": round(alone[int(0.99 * len(alone))], 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "rss_before_mib": round(before),
        "rss_models_mib": round(after_models - before),
        "rss_index_mib": round(after_index - after_models),
        "rss_peak_mib": round(rss_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=2000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.articles, args.questions)), indent=2))


if __name__ == "__main__":
    main()
