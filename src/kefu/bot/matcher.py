"""Pick the best article for a question and say how likely it is to answer it.

1. Six scorers rate every article: cosine of the question with the article's phrasings (best phrasing) and with
   its answer, under two sentence encoders (multilingual-e5-small and the multilingual USE), and BM25 over
   character pairs of the phrasings and of the answer.
2. A fixed blend of their per-question z-scores keeps the ten most likely articles; a fitted linear ranker
   orders those from each scorer's z-score, value, lead over the best other article, and how much of the
   question's vocabulary the article holds.
3. A fitted tree ensemble turns features of the chosen article — the ranker's lead, coverage of the question's
   words by the article and by the whole knowledge base, closeness to small talk, whether the answer holds the
   kind of fact asked for (a time, a price, a rate, a count) and any number the question names, the best
   answer sentence — into P(the article answers the question).

A question that is word for word (once normalised) one article's own question or similar question is answered by
that article: the tenant put the wording there.

No feature counts an article's phrasings: a knowledge base with one question per article and one with twenty
are read the same way (the fitted models saw both).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from kefu.bot.encoders import SentenceEncoder, Vectors
from kefu.bot.handoff import question_key
from kefu.bot.index import IndexTexts, KbArticle, KbIndex, Tables, VectorStore, build_index
from kefu.bot.model import BotModel
from kefu.bot.smalltalk import OUT_OF_SCOPE
from kefu.bot.text import Analyzer, char_pairs, latin_share, normalise, unique

MAX_QUESTION_CHARS = 500
# A question that is, once normalised, one article's own question or similar question is answered by it whatever
# the neighbouring articles: the tenant wrote that wording there (or added it from a gap, protocol §11).
OWN_WORDING_CONFIDENCE = 0.99
CANDIDATES = 10
SCORERS = ("phrase_e5", "phrase_use", "answer_e5", "answer_use", "bm25_phrase", "bm25_answer")
# Stage one's blend of z-scores (fixed, not fitted): it only has to keep the right article among ten.
BLEND = {
    "phrase_e5": 1.0,
    "phrase_use": 1.0,
    "answer_e5": 0.5,
    "answer_use": 0.5,
    "bm25_phrase": 1.0,
    "bm25_answer": 0.3,
}
CANDIDATE_FEATURES = (
    *(f"{s}_{part}" for s in SCORERS for part in ("z", "value", "lead", "latin_z")),
    "word_cover",
    "pair_cover",
    "word_share",
)
DECISION_FEATURES = (
    "rank_score",
    "rank_lead",
    "rank_probability",
    "word_cover_article",
    "word_cover_kb",
    "pair_cover_article",
    "pair_cover_kb",
    "unseen_words",
    "content_words",
    "latin_share",
    "small_talk_e5",
    "small_talk_use",
    "asked_fact_missing",
    "asks_fact",
    "number_missing",
    "best_sentence_e5",
    "unmatched_word_least_close",
    "unmatched_word_mean_close",
    *CANDIDATE_FEATURES[:-3],
)

# What kind of fact a question asks for, and how an answer that holds one reads.
ASKS = {
    "time": re.compile(
        r"多久|几天|多长时间|多少天|几个工作日|什么时候|何时|几点|多长|how long|when|what time|how many days"
    ),
    "money": re.compile(r"多少钱|费用|收费|手续费|价格|多少元|几块|贵不贵|how much|fee|cost|price|charge"),
    "rate": re.compile(r"利率|利息|年化|比例|折扣|几折|rate|interest|percent"),
    "count": re.compile(r"几次|几张|几个|多少个|多少次|上限|最多|how many|limit|max"),
}
HOLDS = {
    "time": re.compile(
        r"\d+\s*(个)?(工作日|天|日|小时|分钟|周|个月|月|年)|当天|次日|即时|实时|立即|马上"
        r"|[一二三四五六七八九十两]+(个)?(工作日|天|小时|分钟|周|个月)|\d{1,2}[:：]\d{2}"
    ),
    "money": re.compile(r"\d+(\.\d+)?\s*(元|块)|免费|不收|收取|费用|¥|\d+%"),
    "rate": re.compile(r"\d+(\.\d+)?\s*%|折|利率"),
    "count": re.compile(r"\d+\s*(次|张|个|笔|人|件)|[一二三四五六七八九十两]+(次|张|个|笔)|上限|最多|不限"),
}
NUMBER = re.compile(r"\d+(?:\.\d+)?|[一二三四五六七八九十百千万两]+(?=[年月天日次张个元块期])")

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Match:
    article: KbArticle | None
    confidence: float
    features: FloatArray


@dataclass(frozen=True, slots=True)
class Question:
    """A question as the scorers read it."""

    text: str
    use: Vectors
    e5: Vectors
    words: list[str]
    pairs: list[str]
    latin: float


def _lead(scores: FloatArray, chosen: int) -> float:
    if len(scores) < 2:
        return 1.5
    best_other = float(np.max(np.delete(scores, chosen)))
    return max(-1.5, min(1.5, float(scores[chosen]) - best_other))


def _per_article(phrase_scores: FloatArray, phrase_article: NDArray[np.int64], n: int) -> FloatArray:
    best = np.full(n, -1.0)
    np.maximum.at(best, phrase_article, phrase_scores)
    return best


def _cover(terms: list[str], found: frozenset[str] | set[str], weights: list[float]) -> float:
    total = sum(weights)
    return sum(w for t, w in zip(terms, weights, strict=True) if t in found) / total if total else 0.0


class Matcher:
    """Stateless over apps: one per process, shared by every app's index (the models are read-only)."""

    def __init__(self, use: SentenceEncoder, e5: SentenceEncoder, analyzer: Analyzer, model: BotModel | None) -> None:
        self.use, self.e5, self.analyzer, self.model = use, e5, analyzer, model
        if model is not None and (
            model.ranker.features != CANDIDATE_FEATURES or model.decider.features != DECISION_FEATURES
        ):
            raise ValueError("the shipped model was fitted on other features; run scripts/fit_bot.py again")
        # One BLAS thread for our own products too: on 2 busy cores a 2-thread OpenBLAS waits for a core and
        # turns a 5 ms answer into 20+ ms; the matrices here are far too small to gain from threads.
        self._blas = ThreadpoolController()
        small_talk = [normalise(t) for t in OUT_OF_SCOPE]
        self._small_talk_use = use.encode(small_talk)
        self._small_talk_e5 = e5.encode(small_talk)

    def build(
        self,
        articles: list[KbArticle],
        version: int,
        previous: Tables | None = None,
        store: VectorStore | None = None,
        texts: IndexTexts | None = None,
    ) -> KbIndex:
        with self._blas.limit(limits=1, user_api="blas"):
            return build_index(articles, version, self.use, self.e5, self.analyzer, previous, store, texts)

    def question(self, question: str) -> Question | None:
        text = normalise(question)[:MAX_QUESTION_CHARS]
        if not text:
            return None
        with self._blas.limit(limits=1, user_api="blas"):
            use = self.use.encode([text])[0]
            e5 = self.e5.encode([text])[0]
        return Question(text, use, e5, unique(self.analyzer.words(text)), unique(char_pairs(text)), latin_share(text))

    def match(self, index: KbIndex, question: str) -> Match:
        """The best article and P(it answers the question); no article for an empty index or question."""
        if self.model is None:
            raise RuntimeError("this matcher computes features only (no model was given)")
        asked = None if index.empty else self.question(question)
        if asked is None:
            return Match(None, 0.0, np.zeros(len(DECISION_FEATURES)))
        with self._blas.limit(limits=1, user_api="blas"):
            scores = self.scores(index, asked)
            candidates, rows = self.candidates(index, asked, scores)
            ranked = self.model.ranker.scores(rows)
            chosen, features = self.decision(index, asked, scores, candidates, rows, ranked)
        own = index.own_wordings.get(question_key(question))
        if own is not None:  # the tenant wrote this very wording into one article: that is its answer
            return Match(index.articles[own], OWN_WORDING_CONFIDENCE, features)
        return Match(index.articles[chosen], self.model.decider.probability(features), features)

    # --- the steps, public so scripts/fit_bot.py computes exactly what the bot does ------------------------

    def scores(self, index: KbIndex, asked: Question) -> dict[str, FloatArray]:
        """Each scorer's score of every article."""
        n = len(index.articles)
        tables = index.tables
        phrase_use = (tables.phrase_use.vectors @ asked.use).astype(np.float64)[index.phrase_rows]
        phrase_e5 = (tables.phrase_e5.vectors @ asked.e5).astype(np.float64)[index.phrase_rows]
        return {
            "phrase_e5": _per_article(phrase_e5, index.phrase_article, n),
            "phrase_use": _per_article(phrase_use, index.phrase_article, n),
            "answer_e5": (tables.answer_e5.vectors @ asked.e5).astype(np.float64)[index.answer_rows],
            "answer_use": (tables.answer_use.vectors @ asked.use).astype(np.float64)[index.answer_rows],
            "bm25_phrase": _per_article(
                index.bm25_phrase.scores(asked.pairs).astype(np.float64), index.phrase_article, n
            ),
            "bm25_answer": index.bm25_answer.scores(asked.pairs).astype(np.float64),
        }

    def candidates(
        self, index: KbIndex, asked: Question, scores: dict[str, FloatArray]
    ) -> tuple[NDArray[np.int64], FloatArray]:
        """Up to ten likely articles (positions in the index) and each one's ranker features."""
        z = {name: (s - s.mean()) / (s.std() + 1e-6) for name, s in scores.items()}
        blend = sum(BLEND[name] * z[name] for name in SCORERS)
        order = np.argsort(-np.asarray(blend), kind="stable")[:CANDIDATES].astype(np.int64)
        rows = np.empty((len(order), len(CANDIDATE_FEATURES)))
        for i, article in enumerate(order):
            values: list[float] = []
            for name in SCORERS:
                values += [
                    float(z[name][article]),
                    min(float(scores[name][article]), 1.5),
                    _lead(scores[name], int(article)),
                    asked.latin * float(z[name][article]),
                ]
            words = index.article_words[article]
            values += [
                self._word_cover(index, asked.words, words),
                self._pair_cover(index, asked.pairs, index.article_pairs[article]),
                sum(1 for w in asked.words if w in words) / len(asked.words) if asked.words else 0.0,
            ]
            rows[i] = values
        return order, rows

    def decision(
        self,
        index: KbIndex,
        asked: Question,
        scores: dict[str, FloatArray],
        candidates: NDArray[np.int64],
        rows: FloatArray,
        ranked: FloatArray,
    ) -> tuple[int, FloatArray]:
        """The ranker's choice (a position in the index) and the features the confidence is computed from."""
        order = np.argsort(-ranked, kind="stable")
        top = int(order[0])
        chosen = int(candidates[top])
        article = index.articles[chosen]
        exp = np.exp(ranked - ranked.max())
        seen_words = {w for w in asked.words if w in index.word_idf}
        seen_pairs = {p for p in asked.pairs if p in index.pair_idf}
        in_sentences = index.sentence_article == chosen
        sentence_scores = index.tables.sentence_e5.vectors[index.sentence_rows[in_sentences]] @ asked.e5
        fact_missing, asks_fact, number_missing = self._facts(asked.text, article)
        values = [
            float(ranked[top]),
            float(ranked[top] - ranked[order[1]]) if len(order) > 1 else 5.0,
            float(exp[top] / exp.sum()),
            self._word_cover(index, asked.words, index.article_words[chosen]),
            self._word_cover(index, asked.words, seen_words),
            self._pair_cover(index, asked.pairs, index.article_pairs[chosen]),
            self._pair_cover(index, asked.pairs, seen_pairs),
            math.log1p(len(asked.words) - len(seen_words)),
            math.log1p(len(asked.words)),
            asked.latin,
            float((self._small_talk_e5 @ asked.e5).max()) - float(scores["phrase_e5"][chosen]),
            float((self._small_talk_use @ asked.use).max()) - float(scores["phrase_use"][chosen]),
            fact_missing,
            asks_fact,
            number_missing,
            float(sentence_scores.max()) if len(sentence_scores) else 0.0,
            *self._unmatched_closeness(index, asked, chosen),
            *rows[top][: len(CANDIDATE_FEATURES) - 3],
        ]
        return chosen, np.asarray(values, dtype=np.float64)

    def _unmatched_closeness(self, index: KbIndex, asked: Question, chosen: int) -> tuple[float, float]:
        """How close the question's words the article lacks come to some word it has (least and mean): a
        synonym (吃卡 ~ 吞卡) comes close; a thing the article never speaks of (短信, LDAP) does not."""
        lacking = [w for w in asked.words if w not in index.article_words[chosen]]
        rows = index.article_word_rows[chosen]
        if not lacking:
            return 1.0, 1.0
        if not len(rows):
            return 0.0, 0.0
        closeness = (self.use.encode(lacking) @ index.tables.word_use.vectors[rows].T).max(axis=1)
        return float(closeness.min()), float(closeness.mean())

    def _word_cover(self, index: KbIndex, words: list[str], found: frozenset[str] | set[str]) -> float:
        return _cover(words, found, [index.word_idf.get(w, index.unseen_idf) for w in words])

    def _pair_cover(self, index: KbIndex, pairs: list[str], found: frozenset[str] | set[str]) -> float:
        return _cover(pairs, found, [index.pair_idf.get(p, index.unseen_idf) for p in pairs])

    @staticmethod
    def _facts(text: str, article: KbArticle) -> tuple[float, float, float]:
        """Whether the question asks for a kind of fact the answer lacks, asks for one at all, names a number
        the article never mentions."""
        answer = normalise(article.answer)
        kinds = [kind for kind, pattern in ASKS.items() if pattern.search(text)]
        missing = float(any(not HOLDS[kind].search(answer) for kind in kinds)) if kinds else 0.0
        numbers = NUMBER.findall(text)
        evidence = normalise(" ".join([*article.phrasings(), article.answer]))
        number_missing = float(any(n not in evidence for n in numbers)) if numbers else 0.0
        return missing, float(bool(kinds)), number_missing
