"""The real models on the shipped knowledge bases: what the bot must get right whatever the calibration."""

from __future__ import annotations

import json

import pytest

from kefu.bot.matcher import Matcher
from kefu.bot.text import normalise
from tests.bot.conftest import DATA, load_kb

TENANTS = {"shop": "kb_shop.json", "bank": "kb_bank.csv", "saas": "kb_saas.json"}


@pytest.mark.parametrize("split", ["eval", "train"])
@pytest.mark.parametrize("tenant", TENANTS)
def test_the_labelled_sets_never_copy_the_knowledge_base(tenant: str, split: str) -> None:
    kb = load_kb(TENANTS[tenant])
    phrasings = {normalise(p) for a in kb for p in a.phrasings()}
    ids = {a.article_id for a in kb}
    lines = (DATA / f"{split}_{tenant}.jsonl").read_text(encoding="utf-8").splitlines()
    labelled = [json.loads(line) for line in lines if line.strip()]
    assert not [q["question"] for q in labelled if normalise(q["question"]) in phrasings]
    assert {q["article"] for q in labelled} - {None} <= ids


@pytest.mark.parametrize(
    ("question", "article"),
    [
        ("买的衣服不合适，能退不", "refund-policy"),
        ("包裹到哪了 查一下", "track-order"),
        ("where is my parcel", "track-order"),
        ("優惠券用不了", "coupon"),
    ],
)
def test_paraphrases_find_their_article(matcher: Matcher, question: str, article: str) -> None:
    index = matcher.build(load_kb("kb_shop.json"), 1, matcher.new_cache())
    found = matcher.match(index, question)
    assert found.article is not None and found.article.article_id == article
    assert 0.0 <= found.confidence <= 1.0


@pytest.mark.parametrize("question", ["哈哈哈 你好呀", "明天北京天气如何", "你们老板叫什么名字"])
def test_small_talk_and_uncovered_questions_get_low_confidence(matcher: Matcher, question: str) -> None:
    index = matcher.build(load_kb("kb_shop.json"), 1, matcher.new_cache())
    assert matcher.match(index, question).confidence < 0.7


def test_an_empty_knowledge_base_matches_nothing(matcher: Matcher) -> None:
    index = matcher.build([], 0, matcher.new_cache())
    assert index.empty and matcher.match(index, "退货").article is None


def test_a_rebuild_encodes_only_new_texts(matcher: Matcher) -> None:
    kb = load_kb("kb_shop.json")
    cache = matcher.new_cache()
    matcher.build(kb, 1, cache)
    vectors = dict(cache.vectors)
    matcher.build(kb[1:], 2, cache)
    assert set(cache.vectors) < set(vectors)  # texts of the removed article left the cache
    assert all(cache.vectors[t] is vectors[t] for t in cache.vectors)  # the rest were not encoded again
