"""One app's knowledge base made searchable: sentence vectors of two models, BM25 over character pairs, word statistics.

An index is immutable: a change to the knowledge base builds a new one beside it (reusing the vectors of every
text that did not change) while the old one keeps answering.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from kefu.bot.encoders import Kind, SentenceEncoder, Vectors
from kefu.bot.handoff import question_key
from kefu.bot.text import Analyzer, char_pairs, idf, normalise, unique

BM25_K1 = 1.2
BM25_B = 0.75
STOP_CHECK_TEXTS = 32  # a build checks whether its node is stopping after encoding this many texts
ANSWER_CHARS = 300  # an answer's vector and BM25 read its first 300 characters (the part a visitor reads first)
_SENTENCE = re.compile(r"[^。；;！!？?\n]+[。；;！!？?]?")


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


def answer_sentences(answer: str) -> list[str]:
    """The sentences of an answer long enough to say something on their own (at least 6 characters)."""
    found = [s.strip(" ，,。") for s in _SENTENCE.findall(answer)]
    return [s for s in found if len(s) >= 6]


class BuildStopped(Exception):
    """An index build given up because its node is stopping (checked between small batches of encoding)."""


@dataclass(slots=True)
class VectorStore:
    """Vectors a build may reuse (read from the database before it) and those it had to encode (saved after).

    `stopping` is asked between batches of encoding: a node that stops does not wait for a long build to end.
    """

    known: dict[tuple[str, Kind], dict[str, NDArray[np.float32]]] = field(default_factory=dict)
    fresh: dict[tuple[str, Kind], dict[str, NDArray[np.float32]]] = field(default_factory=dict)
    stopping: Callable[[], bool] = field(default=lambda: False)

    def encode(self, encoder: SentenceEncoder, texts: list[str], kind: Kind) -> Vectors:
        parts = [np.zeros((0, encoder.dim), dtype=np.float32)]
        for start in range(0, len(texts), STOP_CHECK_TEXTS):
            if self.stopping():
                raise BuildStopped
            parts.append(encoder.encode(texts[start : start + STOP_CHECK_TEXTS], kind, urgent=False))
        return np.concatenate(parts)


@dataclass(frozen=True, slots=True)
class IndexTexts:
    """The texts an index encodes, normalised, with the article each belongs to."""

    phrases: list[str]
    phrase_article: list[int]
    answers: list[str]
    sentences: list[str]
    sentence_article: list[int]
    article_words: list[frozenset[str]]  # each article's content words (its phrasings, answer and category)
    article_pairs: list[frozenset[str]]

    @classmethod
    def of(cls, articles: Sequence[KbArticle], analyzer: Analyzer) -> IndexTexts:
        texts = cls([], [], [normalise(a.answer)[:ANSWER_CHARS] for a in articles], [], [], [], [])
        for position, article in enumerate(articles):
            for phrasing in article.phrasings():
                texts.phrases.append(normalise(phrasing))
                texts.phrase_article.append(position)
            for sentence in answer_sentences(article.answer) or [article.answer]:
                texts.sentences.append(normalise(sentence))
                texts.sentence_article.append(position)
            own = [normalise(p) for p in article.phrasings()] + [normalise(f"{article.answer} {article.category}")]
            texts.article_words.append(frozenset(w for t in own for w in analyzer.words(t)))
            texts.article_pairs.append(frozenset(p for t in own for p in char_pairs(t)))
        return texts

    @property
    def vocabulary(self) -> list[str]:
        """Every content word of the knowledge base, sorted."""
        return sorted(set().union(*self.article_words)) if self.article_words else []

    def by_table(self, use: SentenceEncoder, e5: SentenceEncoder) -> dict[tuple[str, Kind], list[str]]:
        """Which texts each (model, kind) needs: what a build looks up in the database first."""
        return {
            (use.name, "query"): unique([*self.phrases, *self.answers, *self.vocabulary]),
            (e5.name, "query"): unique(self.phrases),
            (e5.name, "passage"): unique([*self.answers, *self.sentences]),
        }


@dataclass(frozen=True, slots=True)
class VectorTable:
    """Texts and their vectors under one model and kind; a rebuild takes the rows of texts it already has."""

    model: str
    kind: Kind
    rows: dict[str, int]
    vectors: Vectors

    @classmethod
    def empty(cls, encoder: SentenceEncoder, kind: Kind) -> VectorTable:
        return cls(encoder.name, kind, {}, np.zeros((0, encoder.dim), dtype=np.float32))

    @property
    def key(self) -> tuple[str, Kind]:
        return self.model, self.kind

    def encoded(self, encoder: SentenceEncoder, texts: Sequence[str], store: VectorStore) -> VectorTable:
        """A table of exactly `texts` (deduplicated): rows this table has, vectors the store knows, and only the
        rest encoded (and put in the store's `fresh`, to be saved)."""
        wanted = unique(texts)
        known = store.known.get(self.key, {})
        missing = [t for t in wanted if t not in self.rows and t not in known]
        fresh = store.encode(encoder, missing, self.kind)
        saved = store.fresh.setdefault(self.key, {})
        vectors = np.empty((len(wanted), encoder.dim), dtype=np.float32)
        fresh_rows = {t: i for i, t in enumerate(missing)}
        for i, text in enumerate(wanted):
            old = self.rows.get(text)
            if old is not None:
                vectors[i] = self.vectors[old]
            elif text in known:
                vectors[i] = known[text]
            else:
                vectors[i] = saved[text] = fresh[fresh_rows[text]]
        return VectorTable(self.model, self.kind, {t: i for i, t in enumerate(wanted)}, vectors)

    def positions(self, texts: Iterable[str]) -> NDArray[np.int64]:
        """The row of each text (texts repeat where the knowledge base repeats them)."""
        return np.array([self.rows[t] for t in texts], dtype=np.int64)


@dataclass(frozen=True, slots=True)
class Bm25:
    """BM25 over documents' character pairs; each document's score is divided by its score against itself."""

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
class Tables:
    """The vector tables an index was built from, kept so the next build encodes only what changed."""

    phrase_use: VectorTable
    phrase_e5: VectorTable
    answer_use: VectorTable
    answer_e5: VectorTable
    sentence_e5: VectorTable
    word_use: VectorTable

    def texts(self) -> dict[tuple[str, Kind], set[str]]:
        """Every text these tables hold a vector of, by (model, kind)."""
        found: dict[tuple[str, Kind], set[str]] = {}
        tables = (self.phrase_use, self.phrase_e5, self.answer_use, self.answer_e5, self.sentence_e5, self.word_use)
        for table in tables:
            found.setdefault(table.key, set()).update(table.rows)
        return found

    @classmethod
    def empty(cls, use: SentenceEncoder, e5: SentenceEncoder) -> Tables:
        return cls(
            VectorTable.empty(use, "query"),
            VectorTable.empty(e5, "query"),
            VectorTable.empty(use, "query"),
            VectorTable.empty(e5, "passage"),
            VectorTable.empty(e5, "passage"),
            VectorTable.empty(use, "query"),
        )


@dataclass(frozen=True, slots=True)
class KbIndex:
    """Everything the matcher reads for one app; immutable, so answers never see a half-built index."""

    version: int
    articles: tuple[KbArticle, ...]
    phrase_article: NDArray[np.int64]  # the article (position in `articles`) of each phrasing
    phrase_rows: NDArray[np.int64]  # each phrasing's row in tables.phrase_use and tables.phrase_e5
    answer_rows: NDArray[np.int64]  # each article's row in tables.answer_use and tables.answer_e5
    sentence_rows: NDArray[np.int64]  # each answer sentence's row in tables.sentence_e5
    sentence_article: NDArray[np.int64]
    bm25_phrase: Bm25
    bm25_answer: Bm25
    article_words: tuple[frozenset[str], ...]
    article_word_rows: tuple[NDArray[np.int64], ...]  # each article's words' rows in tables.word_use
    article_pairs: tuple[frozenset[str], ...]
    word_idf: dict[str, float]
    pair_idf: dict[str, float]
    unseen_idf: float
    tables: Tables
    # Each wording of exactly one article (its question_key: script, width, case, spaces and punctuation folded)
    # → that article's position. A wording two articles share is left out: it says nothing about which one.
    own_wordings: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.articles

    @property
    def phrasing_count(self) -> int:
        return len(self.phrase_article)


def build_index(
    articles: Sequence[KbArticle],
    version: int,
    use: SentenceEncoder,
    e5: SentenceEncoder,
    analyzer: Analyzer,
    previous: Tables | None = None,
    store: VectorStore | None = None,
    texts: IndexTexts | None = None,
) -> KbIndex:
    """Index `articles` (`texts`: their IndexTexts when already made); texts already in `previous` or known to
    `store` are not encoded again."""
    tables = previous or Tables.empty(use, e5)
    store = store if store is not None else VectorStore()
    texts = texts if texts is not None else IndexTexts.of(articles, analyzer)
    phrase_texts, answer_texts, sentence_texts = texts.phrases, texts.answers, texts.sentences
    tables = Tables(
        tables.phrase_use.encoded(use, phrase_texts, store),
        tables.phrase_e5.encoded(e5, phrase_texts, store),
        tables.answer_use.encoded(use, answer_texts, store),
        tables.answer_e5.encoded(e5, answer_texts, store),
        tables.sentence_e5.encoded(e5, sentence_texts, store),
        tables.word_use.encoded(use, texts.vocabulary, store),
    )
    article_words, article_pairs = texts.article_words, texts.article_pairs
    n = len(articles)
    word_df: Counter[str] = Counter(w for words in article_words for w in words)
    pair_df: Counter[str] = Counter(p for pairs in article_pairs for p in pairs)
    return KbIndex(
        version=version,
        articles=tuple(articles),
        phrase_article=np.array(texts.phrase_article, dtype=np.int64),
        phrase_rows=tables.phrase_use.positions(phrase_texts),
        answer_rows=tables.answer_use.positions(answer_texts),
        sentence_rows=tables.sentence_e5.positions(sentence_texts),
        sentence_article=np.array(texts.sentence_article, dtype=np.int64),
        bm25_phrase=Bm25.build([char_pairs(t) for t in phrase_texts]),
        bm25_answer=Bm25.build([char_pairs(t) for t in answer_texts]),
        article_words=tuple(article_words),
        article_word_rows=tuple(tables.word_use.positions(sorted(words)) for words in article_words),
        article_pairs=tuple(article_pairs),
        word_idf={w: idf(df, n) for w, df in word_df.items()},
        pair_idf={p: idf(df, n) for p, df in pair_df.items()},
        unseen_idf=idf(0, n),
        tables=tables,
        own_wordings=own_wordings(articles),
    )


def own_wordings(articles: Sequence[KbArticle]) -> dict[str, int]:
    """Each article's question and similar questions, reduced by `question_key`, where only one article has it."""
    owners: dict[str, set[int]] = {}
    for position, article in enumerate(articles):
        for phrasing in article.phrasings():
            key = question_key(phrasing)
            if key:
                owners.setdefault(key, set()).add(position)
    return {key: next(iter(found)) for key, found in owners.items() if len(found) == 1}
