"""One app's knowledge base made searchable: sentence vectors, BM25 over character pairs, and word statistics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kefu.bot.encoders import SentenceEncoder, Vectors
from kefu.bot.text import Analyzer, char_pairs, idf, normalise, unique

BM25_K1 = 1.2
BM25_B = 0.75


@dataclass(frozen=True, slots=True)
class KbArticle:
    """What the bot needs of an article."""

    article_id: str
    question: str
    similar: tuple[str, ...]
    answer: str
    category: str = ""

    def phrasings(self) -> list[str]:
        return unique(p for p in (self.question, *self.similar) if p.strip())


@dataclass(slots=True)
class EmbeddingCache:
    """Vectors of texts already encoded, so a rebuild after one article changes encodes only what is new."""

    encoder_name: str
    vectors: dict[str, NDArray[np.float32]] = field(default_factory=dict)

    def encode(self, encoder: SentenceEncoder, texts: list[str]) -> Vectors:
        missing = unique(t for t in texts if t not in self.vectors)
        if missing:
            for text, vector in zip(missing, encoder.encode(missing), strict=True):
                self.vectors[text] = vector
        if not texts:
            return np.zeros((0, encoder.dim), dtype=np.float32)
        return np.stack([self.vectors[t] for t in texts])

    def keep_only(self, texts: set[str]) -> None:
        for gone in set(self.vectors) - texts:
            del self.vectors[gone]


@dataclass(frozen=True, slots=True)
class Bm25:
    """BM25 over the phrasings' character pairs; each phrasing's score is divided by its score against itself."""

    postings: dict[str, tuple[NDArray[np.int64], NDArray[np.float32]]]
    self_scores: NDArray[np.float32]

    @classmethod
    def build(cls, documents: list[list[str]]) -> Bm25:
        n = len(documents)
        lengths = np.array([len(d) for d in documents], dtype=np.float32)
        average = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        frequency: Counter[str] = Counter(term for doc in documents for term in set(doc))
        rows: dict[str, tuple[list[int], list[float]]] = {}
        self_scores = np.zeros(n, dtype=np.float32)
        for i, doc in enumerate(documents):
            norm = BM25_K1 * (1 - BM25_B + BM25_B * len(doc) / average)
            for term, tf in Counter(doc).items():
                weight = idf(frequency[term], n) * tf * (BM25_K1 + 1) / (tf + norm)
                ids, weights = rows.setdefault(term, ([], []))
                ids.append(i)
                weights.append(weight)
                self_scores[i] += weight
        postings = {
            term: (np.array(ids, dtype=np.int64), np.array(weights, dtype=np.float32))
            for term, (ids, weights) in rows.items()
        }
        return cls(postings, np.maximum(self_scores, 1e-6))

    def scores(self, terms: list[str]) -> NDArray[np.float32]:
        total = np.zeros(len(self.self_scores), dtype=np.float32)
        for term in set(terms):
            found = self.postings.get(term)
            if found is not None:
                np.add.at(total, found[0], found[1])
        return np.asarray(total / self.self_scores, dtype=np.float32)


@dataclass(frozen=True, slots=True)
class KbIndex:
    """Everything the matcher reads for one app; immutable, so answers never see a half-built index."""

    version: int
    articles: tuple[KbArticle, ...]
    phrase_article: NDArray[np.int64]  # the article (position in `articles`) of each phrasing
    phrase_vectors: Vectors
    answer_vectors: Vectors
    bm25: Bm25
    word_idf: dict[str, float]
    pair_idf: dict[str, float]
    article_words: tuple[frozenset[str], ...]
    article_pairs: tuple[frozenset[str], ...]
    unseen_idf: float

    @property
    def empty(self) -> bool:
        return not self.articles


def build_index(
    articles: list[KbArticle], version: int, encoder: SentenceEncoder, analyzer: Analyzer, cache: EmbeddingCache
) -> KbIndex:
    """Index `articles`; texts already in `cache` are not encoded again, and texts gone from the KB leave it."""
    phrase_texts: list[str] = []
    phrase_article: list[int] = []
    for position, article in enumerate(articles):
        for phrasing in article.phrasings():
            phrase_texts.append(normalise(phrasing))
            phrase_article.append(position)
    answer_texts = [normalise(a.answer)[:300] for a in articles]
    cache.keep_only(set(phrase_texts) | set(answer_texts))
    phrase_vectors = cache.encode(encoder, phrase_texts)
    answer_vectors = cache.encode(encoder, answer_texts)
    bm25 = Bm25.build([char_pairs(t) for t in phrase_texts])

    article_words: list[frozenset[str]] = []
    article_pairs: list[frozenset[str]] = []
    for article in articles:
        text = normalise(" ".join([*article.phrasings(), article.answer, article.category]))
        article_words.append(frozenset(analyzer.words(text)))
        article_pairs.append(frozenset(char_pairs(text)))
    n = len(articles)
    word_df: Counter[str] = Counter(w for words in article_words for w in words)
    pair_df: Counter[str] = Counter(p for pairs in article_pairs for p in pairs)
    return KbIndex(
        version=version,
        articles=tuple(articles),
        phrase_article=np.array(phrase_article, dtype=np.int64),
        phrase_vectors=phrase_vectors,
        answer_vectors=answer_vectors,
        bm25=bm25,
        word_idf={w: idf(df, n) for w, df in word_df.items()},
        pair_idf={p: idf(df, n) for p, df in pair_df.items()},
        article_words=tuple(article_words),
        article_pairs=tuple(article_pairs),
        unseen_idf=idf(0, n),
    )
