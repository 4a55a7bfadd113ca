"""Knowledge-base articles and each app's KB version counter. Every query is scoped to one app."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from kefu.storage.engine import Tx
from kefu.storage.rows import utc_required
from kefu.storage.tables import kb_articles, kb_vectors, kb_versions


@dataclass(frozen=True, slots=True)
class StoredArticle:
    app_id: str
    article_id: str
    question: str
    similar: tuple[str, ...]
    answer: str
    category: str
    created_at: dt.datetime
    updated_at: dt.datetime


def _article(row: Any) -> StoredArticle:
    return StoredArticle(
        row.app_id,
        row.article_id,
        row.question,
        tuple(str(s) for s in row.similar or ()),
        row.answer,
        row.category,
        utc_required(row.created_at),
        utc_required(row.updated_at),
    )


async def list_articles(tx: Tx, app_id: str, after: str | None, limit: int) -> list[StoredArticle]:
    """One page of an app's articles in id order, after the id `after`."""
    query = sa.select(kb_articles).where(kb_articles.c.app_id == app_id)
    if after is not None:
        query = query.where(kb_articles.c.article_id > after)
    rows = (await tx.execute(query.order_by(kb_articles.c.article_id).limit(limit))).all()
    return [_article(r) for r in rows]


async def all_articles(tx: Tx, app_id: str) -> list[StoredArticle]:
    query = sa.select(kb_articles).where(kb_articles.c.app_id == app_id).order_by(kb_articles.c.article_id)
    return [_article(r) for r in (await tx.execute(query)).all()]


async def get_article(tx: Tx, app_id: str, article_id: str, lock: bool = False) -> StoredArticle | None:
    """One article; with `lock`, its row is held until commit (PostgreSQL; SQLite serialises writers itself)."""
    query = sa.select(kb_articles).where(kb_articles.c.app_id == app_id, kb_articles.c.article_id == article_id)
    if lock and tx.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await tx.execute(query)).first()
    return _article(row) if row else None


async def article_ids(tx: Tx, app_id: str) -> set[str]:
    query = sa.select(kb_articles.c.article_id).where(kb_articles.c.app_id == app_id)
    return {str(r) for r in (await tx.execute(query)).scalars()}


async def insert_articles(tx: Tx, rows: list[dict[str, Any]]) -> None:
    """Insert articles (dicts with every column) in one statement."""
    if rows:
        await tx.execute(kb_articles.insert(), rows)


async def update_articles(tx: Tx, app_id: str, rows: list[dict[str, Any]], now: dt.datetime) -> None:
    """Replace the content of existing articles (dicts with article_id, question, similar, answer, category)."""
    if not rows:
        return
    statement = (
        kb_articles.update()
        .where(kb_articles.c.app_id == sa.bindparam("b_app_id"), kb_articles.c.article_id == sa.bindparam("b_id"))
        .values(
            question=sa.bindparam("question"),
            similar=sa.bindparam("similar"),
            answer=sa.bindparam("answer"),
            category=sa.bindparam("category"),
            updated_at=sa.bindparam("updated_at"),
        )
    )
    await tx.execute(
        statement,
        [
            {
                "b_app_id": app_id,
                "b_id": r["article_id"],
                "question": r["question"],
                "similar": r["similar"],
                "answer": r["answer"],
                "category": r["category"],
                "updated_at": now,
            }
            for r in rows
        ],
    )


async def delete_article(tx: Tx, app_id: str, article_id: str) -> bool:
    query = kb_articles.delete().where(kb_articles.c.app_id == app_id, kb_articles.c.article_id == article_id)
    return bool((await tx.execute(query)).rowcount)


async def bump_version(tx: Tx, app_id: str) -> None:
    """Move the app's KB version on (inside the transaction that changed its articles)."""
    insert = sqlite.insert if tx.dialect.name == "sqlite" else postgresql.insert
    statement = insert(kb_versions).values(app_id=app_id, version=1)
    statement = statement.on_conflict_do_update(
        index_elements=[kb_versions.c.app_id], set_={"version": kb_versions.c.version + 1}
    )
    await tx.execute(statement)


async def get_version(tx: Tx, app_id: str) -> int:
    """The app's KB version; 0 before its first article."""
    query = sa.select(kb_versions.c.version).where(kb_versions.c.app_id == app_id)
    return int((await tx.execute(query)).scalar_one_or_none() or 0)


async def has_articles(tx: Tx, app_id: str) -> bool:
    query = sa.select(kb_articles.c.article_id).where(kb_articles.c.app_id == app_id).limit(1)
    return (await tx.execute(query)).first() is not None


async def get_vectors(tx: Tx, app_id: str, model: str, kind: str, keys: list[str]) -> dict[str, bytes]:
    """Stored vectors of the app's texts under one model and kind, by text key (those not stored are absent)."""
    found: dict[str, bytes] = {}
    for start in range(0, len(keys), 500):
        query = sa.select(kb_vectors.c.text_key, kb_vectors.c.vector).where(
            kb_vectors.c.app_id == app_id,
            kb_vectors.c.model == model,
            kb_vectors.c.kind == kind,
            kb_vectors.c.text_key.in_(keys[start : start + 500]),
        )
        found.update({str(r.text_key): bytes(r.vector) for r in (await tx.execute(query)).all()})
    return found


async def put_vectors(tx: Tx, app_id: str, model: str, kind: str, vectors: dict[str, bytes]) -> None:
    """Store vectors by text key; one another node stored meanwhile stays (both are the same text's vector)."""
    if not vectors:
        return
    insert = sqlite.insert if tx.dialect.name == "sqlite" else postgresql.insert
    rows = [{"app_id": app_id, "model": model, "kind": kind, "text_key": k, "vector": v} for k, v in vectors.items()]
    for start in range(0, len(rows), 500):
        await tx.execute(insert(kb_vectors).on_conflict_do_nothing(), rows[start : start + 500])


async def recently_changed_apps(tx: Tx, limit: int) -> list[str]:
    """Apps with articles, the most recently changed first."""
    changed = sa.func.max(kb_articles.c.updated_at)
    query = sa.select(kb_articles.c.app_id).group_by(kb_articles.c.app_id).order_by(changed.desc()).limit(limit)
    return [str(r) for r in (await tx.execute(query)).scalars()]
