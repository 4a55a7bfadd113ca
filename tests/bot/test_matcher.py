"""The real models on real knowledge bases: what the bot must get right whatever the fit."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import kefu
from kefu.bot.articles import parse_articles
from kefu.bot.encoders import Kind, SentenceEncoder, Vectors
from kefu.bot.index import KbArticle, VectorStore
from kefu.bot.matcher import Matcher
from kefu.bot.text import normalise
from tests.bot.conftest import DATA, load_kb

DENSE = {"shop": "kb_shop.json", "bank": "kb_bank.csv", "saas": "kb_saas.json"}
SPARSE = sorted(p.name for p in (DATA / "tenants").iterdir() if (p / "kb.json").exists())


def labelled(path: str) -> list[dict[str, str | None]]:
    lines = (DATA / path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def check_not_copied(kb: list[KbArticle], questions: list[dict[str, str | None]]) -> None:
    phrasings = {normalise(p) for a in kb for p in a.phrasings()}
    assert not [q["question"] for q in questions if normalise(str(q["question"])) in phrasings]
    assert {q["article"] for q in questions} - {None} <= {a.article_id for a in kb}


@pytest.mark.parametrize("split", ["eval", "train"])
@pytest.mark.parametrize("tenant", DENSE)
def test_the_dense_tenants_labelled_sets_never_copy_their_knowledge_base(tenant: str, split: str) -> None:
    check_not_copied(load_kb(DENSE[tenant]), labelled(f"{split}_{tenant}.jsonl"))


@pytest.mark.parametrize("tenant", SPARSE)
def test_the_sparse_tenants_questions_never_copy_their_knowledge_base(tenant: str) -> None:
    assert len(SPARSE) >= 16
    for kb_file in ("kb.json", "kb_dense.json"):
        if (DATA / "tenants" / tenant / kb_file).exists():
            check_not_copied(load_kb(f"tenants/{tenant}/{kb_file}"), labelled(f"tenants/{tenant}/eval.jsonl"))


def test_chit_chat_names_no_article() -> None:
    lines = labelled("chitchat.jsonl")
    assert len(lines) >= 100 and all(line["article"] is None for line in lines)


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
    index = matcher.build(load_kb("kb_shop.json"), 1)
    found = matcher.match(index, question)
    assert found.article is not None and found.article.article_id == article
    assert 0.0 <= found.confidence <= 1.0


@pytest.mark.parametrize("question", ["哈哈哈 你好呀", "明天北京天气如何", "你们老板叫什么名字"])
def test_small_talk_and_uncovered_questions_get_low_confidence(matcher: Matcher, question: str) -> None:
    index = matcher.build(load_kb("kb_shop.json"), 1)
    assert matcher.match(index, question).confidence < 0.7


def test_an_empty_knowledge_base_or_question_matches_nothing(matcher: Matcher) -> None:
    index = matcher.build([], 0)
    assert index.empty and matcher.match(index, "退货").article is None
    assert matcher.match(matcher.build(load_kb("kb_shop.json"), 1), "   ").article is None


def test_an_articles_own_wording_is_answered_by_it_whatever_its_neighbours(matcher: Matcher) -> None:
    demo = Path(kefu.__file__).parent / "data" / "demo_kb.json"
    kb = [
        KbArticle(a.article_id, a.question, a.similar, a.answer, a.category) for a in parse_articles(demo.read_bytes())
    ]
    invoice = next(a for a in kb if a.article_id == "invoice")
    assert any(a.article_id == "invoice-title" for a in kb)  # a close neighbour: both speak of 发票
    index = matcher.build(kb, 1)
    for asked in (invoice.question, "怎么开发票", "  怎麼開發票?? ", invoice.similar[0] + "!"):
        found = matcher.match(index, asked)
        assert found.article is not None and found.article.article_id == "invoice", asked
        assert found.confidence >= 0.99, asked
    # the same wording in two articles says nothing about which one: the model decides
    twice = [*kb, KbArticle("invoice-copy", invoice.question, (), "另一个答案。", "")]
    assert matcher.match(matcher.build(twice, 2), invoice.question).confidence < 0.99


class CountingEncoder:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, inner: SentenceEncoder) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], kind: Kind = "query", urgent: bool = True) -> Vectors:
        self.encoded += list(texts)
        return self.inner.encode(texts, kind, urgent)


def counting(matcher: Matcher) -> tuple[Matcher, CountingEncoder, CountingEncoder]:
    use, e5 = CountingEncoder(matcher.use), CountingEncoder(matcher.e5)
    counted = Matcher(use, e5, matcher.analyzer, matcher.model)
    use.encoded.clear()  # the small-talk bank the matcher encodes once
    e5.encoded.clear()
    return counted, use, e5


def test_a_rebuild_encodes_only_changed_texts(matcher: Matcher) -> None:
    m, use, e5 = counting(matcher)
    kb = load_kb("tenants/hotel/kb.json")
    first = m.build(kb, 1)
    assert use.encoded and e5.encoded
    use.encoded.clear()
    e5.encoded.clear()
    changed = KbArticle(kb[0].article_id, "房间里能用电磁炉做饭吗?", (), kb[0].answer, kb[0].category)
    second = m.build([changed, *kb[1:]], 2, first.tables)
    new_words = set(m.analyzer.words("房间里能用电磁炉做饭吗?")) - set().union(*first.article_words)
    assert sorted(use.encoded) == sorted(["房间里能用电磁炉做饭吗?", *new_words])  # the phrasing and words never seen
    assert e5.encoded == ["房间里能用电磁炉做饭吗?"]
    assert second.articles[0].question == "房间里能用电磁炉做饭吗?"


def test_stored_vectors_are_reused_and_new_ones_are_handed_back_to_be_stored(matcher: Matcher) -> None:
    m, use, e5 = counting(matcher)
    kb = load_kb("tenants/telecom/kb.json")
    store = VectorStore()
    built = m.build(kb, 1, store=store)
    assert sum(len(v) for v in store.fresh.values()) == len(set(use.encoded)) + len(set(e5.encoded)) > 0
    use.encoded.clear()
    e5.encoded.clear()
    again = m.build(kb, 1, store=VectorStore(known=store.fresh))  # a node starting: the database has them all
    assert use.encoded == [] and e5.encoded == []
    question = "宽带怎么报修"
    assert m.match(again, question).article == m.match(built, question).article
    assert np.isclose(m.match(again, question).confidence, m.match(built, question).confidence)
