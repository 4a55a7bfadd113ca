"""Pick the best article for a question and say how likely it is to answer it.

Stage one chooses the article by a fixed blend of three scorers (sentence-vector cosine over the article's
phrasings, the same over its answer, BM25 over character pairs). Stage two turns features of that choice —
each scorer's value, margin and agreement, how much of the question's vocabulary the article and the whole
knowledge base cover, how close the question is to small talk — into a calibrated P(correct).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from kefu.bot.calibration import Calibration
from kefu.bot.encoders import SentenceEncoder, Vectors
from kefu.bot.index import EmbeddingCache, KbArticle, KbIndex, build_index
from kefu.bot.smalltalk import OUT_OF_SCOPE
from kefu.bot.text import Analyzer, char_pairs, latin_share, normalise, unique

# How stage one blends its scorers; fixed by design (not fitted), so the same rule holds for every tenant.
BLEND = {"phrase": 0.5, "bm25": 0.3, "answer": 0.2}
MAX_QUESTION_CHARS = 500

FEATURES = (
    "phrase_top",
    "phrase_margin",
    "phrase_agrees",
    "bm25_top",
    "bm25_margin",
    "bm25_agrees",
    "answer_top",
    "blend_margin",
    "word_cover_article",
    "word_cover_kb",
    "pair_cover_article",
    "pair_cover_kb",
    "unseen_words",
    "content_words",
    "latin_share",
    "small_talk_gap",
)


@dataclass(frozen=True, slots=True)
class Match:
    article: KbArticle | None
    confidence: float
    features: NDArray[np.float64]


def _top_and_margin(scores: NDArray[np.float32], chosen: int) -> tuple[float, float, bool]:
    top = float(scores[chosen])
    if len(scores) == 1:
        return top, top, True
    others = np.delete(scores, chosen)
    return top, top - float(others.max()), int(np.argmax(scores)) == chosen


def _per_article(phrase_scores: NDArray[np.float32], phrase_article: NDArray[np.int64], n: int) -> NDArray[np.float32]:
    best = np.full(n, -1.0, dtype=np.float32)
    np.maximum.at(best, phrase_article, phrase_scores)
    return best


def _coverage(terms: list[str], found: frozenset[str], weights: dict[str, float], unseen: float) -> float:
    total = sum(weights.get(t, unseen) for t in terms)
    return sum(weights.get(t, unseen) for t in terms if t in found) / total if total else 0.0


class Matcher:
    """Stateless over apps: one per process, shared by every app's index (the models are read-only)."""

    def __init__(self, encoder: SentenceEncoder, analyzer: Analyzer, calibration: Calibration | None) -> None:
        self.encoder, self.analyzer, self.calibration = encoder, analyzer, calibration
        if calibration is not None and calibration.features != FEATURES:
            raise ValueError("the shipped calibration was fitted on other features; run scripts/fit_bot.py again")
        # One BLAS thread for our own products too: on 2 busy cores a 2-thread OpenBLAS waits for a core and
        # turns a 5 ms answer into 20+ ms; the matrices here are far too small to gain from threads.
        self._blas = ThreadpoolController()
        self._small_talk = encoder.encode([normalise(t) for t in OUT_OF_SCOPE])

    def build(self, articles: Sequence[KbArticle], version: int, cache: EmbeddingCache) -> KbIndex:
        with self._blas.limit(limits=1, user_api="blas"):
            return build_index(list(articles), version, self.encoder, self.analyzer, cache)

    def new_cache(self) -> EmbeddingCache:
        return EmbeddingCache(self.encoder.name)

    def match(self, index: KbIndex, question: str) -> Match:
        with self._blas.limit(limits=1, user_api="blas"):
            chosen, features = self.features(index, question)
        if chosen is None:
            return Match(None, 0.0, features)
        if self.calibration is None:
            raise RuntimeError("this matcher computes features only (no calibration was given)")
        return Match(index.articles[chosen], self.calibration.confidence(features), features)

    def features(self, index: KbIndex, question: str) -> tuple[int | None, NDArray[np.float64]]:
        """The chosen article (position in the index) and the features of that choice."""
        text = normalise(question)[:MAX_QUESTION_CHARS]
        if index.empty or not text:
            return None, np.zeros(len(FEATURES))
        vector: Vectors = self.encoder.encode([text])[0]
        n = len(index.articles)
        phrase = _per_article(index.phrase_vectors @ vector, index.phrase_article, n)
        pairs = char_pairs(text)
        bm25 = _per_article(index.bm25.scores(pairs), index.phrase_article, n)
        answer = index.answer_vectors @ vector
        blend = BLEND["phrase"] * phrase + BLEND["bm25"] * np.minimum(bm25, 1.0) + BLEND["answer"] * answer
        chosen = int(np.argmax(blend))

        phrase_top, phrase_margin, phrase_agrees = _top_and_margin(phrase, chosen)
        bm25_top, bm25_margin, bm25_agrees = _top_and_margin(bm25, chosen)
        _, blend_margin, _ = _top_and_margin(blend, chosen)
        words = unique(self.analyzer.words(text))
        unique_pairs = unique(pairs)
        kb_words_seen = [w for w in words if w in index.word_idf]
        unseen = index.unseen_idf
        small_talk = float((self._small_talk @ vector).max())
        values = [
            phrase_top,
            phrase_margin,
            float(phrase_agrees),
            min(bm25_top, 1.5),
            min(bm25_margin, 1.5),
            float(bm25_agrees),
            float(answer[chosen]),
            blend_margin,
            _coverage(words, index.article_words[chosen], index.word_idf, unseen),
            _coverage(words, frozenset(kb_words_seen), index.word_idf, unseen),
            _coverage(unique_pairs, index.article_pairs[chosen], index.pair_idf, unseen),
            _coverage(unique_pairs, frozenset(p for p in unique_pairs if p in index.pair_idf), index.pair_idf, unseen),
            math.log1p(len(words) - len(kb_words_seen)),
            math.log1p(len(words)),
            latin_share(text),
            small_talk - phrase_top,
        ]
        return chosen, np.asarray(values, dtype=np.float64)
