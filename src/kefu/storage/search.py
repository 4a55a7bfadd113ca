"""Full-text search over message contents and conversation contexts, Chinese and English.

Neither SQLite FTS5 nor PostgreSQL's text search splits Chinese into words, so kefu does it: a text's terms
are its jieba search-mode words plus the character bigrams of its runs of Chinese (a safety net for words
jieba cut differently in context, e.g. 退货 inside 退货运费 → 退 / 货运费), NFKC-normalised and case-folded.
The terms go, space-separated, into a SQLite FTS5 table (tokenizer `ascii`: every term is one token) or, as
lexemes taken verbatim, into a PostgreSQL `tsvector` with a GIN index. Both hold one document per message
and one per conversation context. A query is the AND of its (jieba precise-mode) words; a Chinese word of
three or more characters also matches as the AND of its bigrams.

Indexing runs after commit, in batches, from `services/indexer.py`, never on the send path; how far it got
is kept per source in `search_progress` (see "indexing" below for SQLite's rowid marks and PostgreSQL's
transaction-id marks, which also catch a transaction that commits after a later one).
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jieba  # type: ignore[import-untyped, unused-ignore]
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.storage.engine import Tx
from kefu.storage.tables import search_progress

jieba.setLogLevel(logging.WARNING)

SEQ_BITS = 24  # SQLite document rowid: conversation rowid << SEQ_BITS | seq (0 = the context)
MAX_SEQ = (1 << SEQ_BITS) - 1
PG_LOCK = 4242005  # advisory lock key: one writer of the index at a time across nodes

_WORD = re.compile(r"[^\W_]+")
_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN_RUN = re.compile(f"[{_HAN}]{{2,}}")
_HAN_ONLY = re.compile(f"[{_HAN}]+")

_search_docs = sa.table(
    "search_docs", sa.column("session_id", sa.String), sa.column("seq", sa.Integer), sa.column("terms")
)


def initialize() -> None:
    """Load jieba's dictionary now (about a second) rather than on the first search."""
    jieba.initialize()


def _normal(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _bigrams(run: str) -> list[str]:
    return [run[i : i + 2] for i in range(len(run) - 1)]


def terms_of(text: str) -> list[str]:
    """A text's index terms, each a run of letters/digits: jieba search-mode words plus Chinese bigrams."""
    text = _normal(text)
    found: dict[str, None] = {}
    for word in jieba.cut_for_search(text, HMM=False):
        for part in _WORD.findall(word):
            found[part] = None
    for run in _HAN_RUN.findall(text):
        for pair in _bigrams(run):
            found[pair] = None
    return list(found)


@dataclass(frozen=True, slots=True)
class SearchQuery:
    """AND over words; each word is OR over alternatives; each alternative is AND over terms."""

    words: tuple[tuple[tuple[str, ...], ...], ...]

    @property
    def terms(self) -> list[str]:
        """Every term the query may match, longest first (for highlighting)."""
        flat = {t for word in self.words for alt in word for t in alt}
        return sorted(flat, key=lambda t: (-len(t), t))

    def fts5(self) -> str:
        return " AND ".join(
            "(" + " OR ".join("(" + " AND ".join(f'"{t}"' for t in alt) + ")" for alt in word) + ")"
            for word in self.words
        )

    def tsquery(self) -> str:
        return " & ".join(
            "(" + " | ".join("(" + " & ".join(f"'{t}'" for t in alt) + ")" for alt in word) + ")" for word in self.words
        )


def parse_query(q: str) -> SearchQuery | None:
    """The search a keyword string asks for; None when it holds no word at all (e.g. only punctuation)."""
    words: dict[tuple[tuple[str, ...], ...], None] = {}
    for word in jieba.cut(_normal(q), HMM=False):
        for part in _WORD.findall(word):
            alternatives: list[tuple[str, ...]] = [(part,)]
            if len(part) > 2 and _HAN_ONLY.fullmatch(part):
                alternatives.append(tuple(_bigrams(part)))
            words[tuple(alternatives)] = None
    return SearchQuery(tuple(words)) if words else None


def match_clause(dialect: str, query: SearchQuery | None, conversation_table: sa.Table) -> sa.ColumnElement[bool]:
    """A condition on `conversations`: a message of it, or its context, matches `query`."""
    if query is None:
        return sa.false()
    if dialect == "sqlite":
        statement = "SELECT rowid >> 24 AS conversation_rowid FROM search_fts WHERE search_fts MATCH :fts"
        assert SEQ_BITS == 24
        hits = sa.text(statement).bindparams(fts=query.fts5()).columns(sa.column("conversation_rowid", sa.Integer))
        return sa.literal_column(f"{conversation_table.name}.rowid").in_(hits)
    tsquery = sa.cast(sa.literal(query.tsquery()), postgresql.TSQUERY)
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(_search_docs)
        .where(
            _search_docs.c.session_id == conversation_table.c.session_id,
            _search_docs.c.terms.op("@@")(tsquery),
        )
    )


# --- indexing ----------------------------------------------------------------------------------------
#
# SQLite: one writer, so rowids grow in commit order and a source's mark is simply the last rowid indexed.
#
# PostgreSQL: rows carry `search_txid`, the id of the transaction that inserted them; a transaction that
# began earlier can commit after a later one, so txid order is not commit order. The stored mark M of a
# source means "every row with search_txid < M is indexed". A pass (1) reads forward from an in-memory
# cursor `seen` (search_txid, key) — the fast path; (2) sweeps the rows with M <= search_txid below both the
# oldest running transaction (`horizon`) and `seen` that have no document yet: the late commits; and (3)
# raises M to min(horizon, seen's txid) once the sweep is complete. Every row gets a document (an empty
# tsvector for an empty text), so the sweep's "no document yet" is exact. Writes are ON CONFLICT DO NOTHING.

Mark = tuple[int, str]  # SQLite: (rowid, ""); PostgreSQL cursor: (search_txid, message_id or session_id)
SOURCES = ("messages", "contexts")


@dataclass(frozen=True, slots=True)
class Document:
    source: str  # "messages" | "contexts"
    mark: Mark
    session_id: str
    seq: int  # 0 for a context
    conversation_rowid: int  # SQLite only (0 on PostgreSQL)
    text: str


@dataclass(frozen=True, slots=True)
class PendingBatch:
    documents: list[Document]
    marks: dict[str, Mark]  # the stored mark each source reaches once these documents are stored
    seen: dict[str, Mark]  # PostgreSQL: where the next forward read starts
    full: bool  # a read hit its limit: more is waiting

    @property
    def empty(self) -> bool:
        return not self.documents and not self.marks


async def _marks(tx: Tx) -> dict[str, Mark]:
    rows = await tx.execute(sa.select(search_progress))
    found = {r.source: (int(r.mark_major), str(r.mark_minor)) for r in rows}
    return {source: found.get(source, (0, "")) for source in SOURCES}


async def pending_documents(tx: Tx, limit: int, seen: dict[str, Mark] | None = None) -> PendingBatch:
    """The next documents committed but not yet indexed (up to `limit` a source and kind of read).

    `seen` is the cursor the previous batch returned (PostgreSQL; None after a start)."""
    if tx.dialect.name == "sqlite":
        return await _pending_sqlite(tx, limit)
    return await _pending_postgresql(tx, limit, seen or {})


async def _pending_sqlite(tx: Tx, limit: int) -> PendingBatch:
    marks = await _marks(tx)
    documents: list[Document] = []
    rows = await tx.execute(
        sa.text(
            "SELECT m.rowid AS r, c.rowid AS cr, m.session_id, m.seq, m.content FROM messages m"
            " JOIN conversations c ON c.session_id = m.session_id"
            " WHERE m.rowid > :mark ORDER BY m.rowid LIMIT :limit"
        ),
        {"mark": marks["messages"][0], "limit": limit},
    )
    for r in rows:
        documents.append(Document("messages", (int(r.r), ""), r.session_id, int(r.seq), int(r.cr), r.content))
    full = len(documents) >= limit
    rows = await tx.execute(
        sa.text(
            "SELECT rowid AS r, session_id, context FROM conversations WHERE rowid > :mark ORDER BY rowid LIMIT :limit"
        ),
        {"mark": marks["contexts"][0], "limit": limit},
    )
    contexts = [Document("contexts", (int(r.r), ""), r.session_id, 0, int(r.r), r.context or "") for r in rows]
    documents += contexts
    reached: dict[str, Mark] = {}
    for doc in documents:
        reached[doc.source] = max(reached.get(doc.source, doc.mark), doc.mark)
    return PendingBatch(documents, reached, {}, full or len(contexts) >= limit)


_PG_READS = {
    "messages": (
        "messages",
        "message_id",
        "content",
        "SELECT 1 FROM search_docs d WHERE d.session_id = t.session_id AND d.seq = t.seq",
        "t.seq",
    ),
    "contexts": (
        "conversations",
        "session_id",
        "context",
        "SELECT 1 FROM search_docs d WHERE d.session_id = t.session_id AND d.seq = 0",
        "0",
    ),
}


async def _pending_postgresql(tx: Tx, limit: int, seen: dict[str, Mark]) -> PendingBatch:
    marks = await _marks(tx)
    horizon = int((await tx.execute(sa.text("SELECT txid_snapshot_xmin(txid_current_snapshot())"))).scalar_one())
    documents: dict[tuple[str, int], Document] = {}
    new_marks: dict[str, Mark] = {}
    new_seen: dict[str, Mark] = {}
    full = False
    for source, (table, key, text, has_doc, seq) in _PG_READS.items():
        stored = marks[source][0]
        cursor = seen.get(source) or (stored, "")
        columns = f"t.search_txid, t.{key} AS k, t.session_id, {seq} AS seq, t.{text} AS body"
        forward = await tx.execute(
            sa.text(
                f"SELECT {columns} FROM {table} t"  # noqa: S608 (table and column names are constants above)
                f' WHERE (t.search_txid, t.{key} COLLATE "C") > (:txid, :key)'
                f' ORDER BY t.search_txid, t.{key} COLLATE "C" LIMIT :limit'
            ),
            {"txid": cursor[0], "key": cursor[1], "limit": limit},
        )
        rows = list(forward)
        upper = min(horizon, cursor[0])
        late = await tx.execute(
            sa.text(
                f"SELECT {columns} FROM {table} t"  # noqa: S608
                f" WHERE t.search_txid >= :stored AND t.search_txid < :upper AND NOT EXISTS ({has_doc})"
                f' ORDER BY t.search_txid, t.{key} COLLATE "C" LIMIT :limit'
            ),
            {"stored": stored, "upper": upper, "limit": limit},
        )
        swept = list(late)
        for r in [*swept, *rows]:
            documents[(r.session_id, int(r.seq))] = Document(
                source, (int(r.search_txid), str(r.k)), r.session_id, int(r.seq), 0, r.body or ""
            )
        last = (int(rows[-1].search_txid), str(rows[-1].k)) if rows else cursor
        new_seen[source] = last
        if len(swept) < limit and min(horizon, last[0]) > stored:
            new_marks[source] = (min(horizon, last[0]), "")
        full = full or len(rows) >= limit or len(swept) >= limit
    return PendingBatch(list(documents.values()), new_marks, new_seen, full)


async def lock_index(tx: Tx) -> None:
    """Serialise index writers: PostgreSQL nodes take an advisory lock; SQLite already has one writer."""
    if tx.dialect.name == "postgresql":
        await tx.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": PG_LOCK})


async def store_documents(tx: Tx, batch: PendingBatch, terms: Sequence[Sequence[str]]) -> int:
    """Index `batch` (terms[i] belongs to batch.documents[i]) and advance the stored marks; call after
    `lock_index` in the same transaction. Idempotent: what another node or process already stored is
    skipped (SQLite: documents at or below the stored mark; PostgreSQL: ON CONFLICT DO NOTHING).
    Returns the documents offered to the index (PostgreSQL counts those another node had stored too)."""
    marks = await _marks(tx)
    sqlite_dialect = tx.dialect.name == "sqlite"
    rows: list[dict[str, Any]] = []
    for doc, doc_terms in zip(batch.documents, terms, strict=True):
        if sqlite_dialect:
            if doc.mark <= marks[doc.source] or not doc_terms or doc.seq > MAX_SEQ:
                continue  # done already; nothing to find; beyond what a rowid can number (never in practice)
            rows.append({"rowid": doc.conversation_rowid << SEQ_BITS | doc.seq, "terms": " ".join(doc_terms)})
        else:  # an empty document too: it records that the row was seen
            rows.append({"session_id": doc.session_id, "seq": doc.seq, "terms": list(doc_terms)})
    written = 0
    if rows and sqlite_dialect:
        await tx.execute(sa.text("INSERT INTO search_fts (rowid, terms) VALUES (:rowid, :terms)"), rows)
        written = len(rows)
    elif rows:
        await tx.execute(
            sa.text(
                "INSERT INTO search_docs (session_id, seq, terms)"
                " VALUES (:session_id, :seq, array_to_tsvector(CAST(:terms AS text[])))"
                " ON CONFLICT (session_id, seq) DO NOTHING"
            ),
            rows,
        )
        written = len(rows)
    insert = sqlite.insert if sqlite_dialect else postgresql.insert
    for source, mark in batch.marks.items():
        if mark <= marks[source]:
            continue
        statement = insert(search_progress).values(source=source, mark_major=mark[0], mark_minor=mark[1])
        await tx.execute(
            statement.on_conflict_do_update(
                index_elements=["source"], set_={"mark_major": mark[0], "mark_minor": mark[1]}
            )
        )
    return written
