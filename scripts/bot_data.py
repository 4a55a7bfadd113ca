"""The bot's labelled data (tests/data) and how the fitting script and the figures test read it.

Tenants, by role (tests/data/tenants/README.md says how they were written and drawn):
- development: `shop`, `bank`, `saas` (tests/data: a KB with ~20 similar questions an article, train and eval
  questions) and nine sparse tenants (tests/data/tenants/<name>: kb.json with 0–3 similar questions, eval.jsonl);
- held out: `courier`, `ev`, `game`, `insurance` — scored only to report, never fitted on or read while changing
  the bot;
- reserve: `airline`, `clinic`, `delivery` — not scored yet: the next round's held-out set.
"""

from __future__ import annotations

import hashlib
import sqlite3
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from kefu.bot.articles import parse_articles  # noqa: E402
from kefu.bot.encoders import Kind, SentenceEncoder, Vectors  # noqa: E402
from kefu.bot.evaluation import LabelledQuestion, parse_labelled  # noqa: E402
from kefu.bot.index import KbArticle, KbIndex  # noqa: E402
from kefu.bot.matcher import Matcher, Question  # noqa: E402
from kefu.bot.text import normalise  # noqa: E402

DATA = ROOT / "tests" / "data"
TENANTS = DATA / "tenants"
DENSE_DEV = {"shop": "kb_shop.json", "bank": "kb_bank.csv", "saas": "kb_saas.json"}
SPARSE_DEV = (
    "education",
    "hotel",
    "telecom",
    "ridehail",
    "property",
    "utility",
    "smarthome",
    "ticketing",
    "secondhand",
)
HELD_OUT = ("courier", "ev", "game", "insurance")
RESERVE = ("airline", "clinic", "delivery")
CHITCHAT = DATA / "chitchat.jsonl"


@dataclass(frozen=True, slots=True)
class Variant:
    """One tenant's knowledge base at one density, and its labelled questions."""

    tenant: str
    density: str  # "0" (questions only), "3" (at most 3 similar questions), "~20"
    articles: list[KbArticle]
    questions: list[LabelledQuestion]


def _articles(path: Path) -> list[KbArticle]:
    return [
        KbArticle(a.article_id, a.question, a.similar, a.answer, a.category)
        for a in parse_articles(path.read_bytes(), path.name)
    ]


def _trimmed(articles: list[KbArticle], keep: int) -> list[KbArticle]:
    return [KbArticle(a.article_id, a.question, a.similar[:keep], a.answer, a.category) for a in articles]


def _labelled(*paths: Path) -> list[LabelledQuestion]:
    return [q for p in paths for q in parse_labelled(p.read_bytes())]


def variants(tenant: str) -> list[Variant]:
    """Every density a tenant has: a dense development tenant trimmed to 0 and 3 similar questions too."""
    if tenant in DENSE_DEV:
        kb = _articles(DATA / DENSE_DEV[tenant])
        questions = _labelled(DATA / f"train_{tenant}.jsonl", DATA / f"eval_{tenant}.jsonl")
        return [Variant(tenant, d, _trimmed(kb, k), questions) for d, k in (("0", 0), ("3", 3), ("~20", 200))]
    folder = TENANTS / tenant
    kb = _articles(folder / "kb.json")
    questions = _labelled(folder / "eval.jsonl")
    found = [Variant(tenant, "0", _trimmed(kb, 0), questions), Variant(tenant, "3", kb, questions)]
    if (folder / "kb_dense.json").exists():
        found.append(Variant(tenant, "~20", _articles(folder / "kb_dense.json"), questions))
    return found


def chitchat() -> list[LabelledQuestion]:
    return _labelled(CHITCHAT)


def copied_questions(variant: Variant) -> list[str]:
    """Labelled questions that repeat (normalised) a phrasing of the knowledge base: there must be none."""
    phrasings = {normalise(p) for a in variant.articles for p in a.phrasings()}
    return [q.question for q in variant.questions if normalise(q.question) in phrasings]


class CachedEncoder:
    """An encoder whose vectors are kept in a local SQLite file, so refitting does not encode everything again."""

    def __init__(self, inner: SentenceEncoder, path: Path) -> None:
        self.inner, self.name, self.dim = inner, inner.name, inner.dim
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS v (k TEXT PRIMARY KEY, b BLOB)")
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], kind: Kind = "query", urgent: bool = True) -> Vectors:
        keys = [hashlib.sha1(f"{self.name}\0{kind}\0{t}".encode()).hexdigest() for t in texts]  # noqa: S324
        found: dict[str, NDArray[np.float32]] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for key, blob in self._db.execute(f"SELECT k, b FROM v WHERE k IN ({marks})", chunk):  # noqa: S608
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        missing = list(dict.fromkeys(t for k, t in zip(keys, texts, strict=True) if k not in found))
        if missing:
            vectors = self.inner.encode(missing, kind)
            with self._lock:
                for text, vector in zip(missing, vectors, strict=True):
                    key = hashlib.sha1(f"{self.name}\0{kind}\0{text}".encode()).hexdigest()  # noqa: S324
                    found[key] = vector
                    self._db.execute("INSERT OR REPLACE INTO v VALUES (?, ?)", (key, vector.tobytes()))
                self._db.commit()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)


@dataclass
class Scored:
    """One labelled question as the matcher sees it against one variant's index (before the fitted models)."""

    label: LabelledQuestion
    asked: Question
    scores: dict[str, NDArray[np.float64]]
    candidates: NDArray[np.int64]
    rows: NDArray[np.float64]
    target: int  # the right article's position among the candidates, -1 if absent or not covered


@dataclass
class Collected:
    variant: Variant
    index: KbIndex
    items: list[Scored]


def collect(matcher: Matcher, variant: Variant) -> Collected:
    """Index one variant and score each of its questions up to the ranker's input."""
    index = matcher.build(variant.articles, 1)
    positions = {a.article_id: i for i, a in enumerate(index.articles)}
    items: list[Scored] = []
    for label in variant.questions:
        asked = matcher.question(label.question)
        assert asked is not None, label.question
        scores = matcher.scores(index, asked)
        candidates, rows = matcher.candidates(index, asked, scores)
        right = positions.get(label.article) if label.article is not None else None
        hits = np.flatnonzero(candidates == right) if right is not None else np.array([], dtype=np.int64)
        items.append(Scored(label, asked, scores, candidates, rows, int(hits[0]) if len(hits) else -1))
    return Collected(variant, index, items)
