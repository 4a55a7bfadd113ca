"""The knowledge base: article CRUD and imports (all-or-nothing), and the bot's view of it."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from kefu import errors
from kefu.bot import Bot, BotAnswer, KbArticle, question_key
from kefu.bot.articles import MAX_QUESTION_CHARS, MAX_SIMILAR, ArticleInput, InvalidArticle, check_article_id
from kefu.bot.encoders import Kind
from kefu.bot.engine import VectorsByTable
from kefu.domain.clock import Clock, iso
from kefu.domain.models import Actor
from kefu.storage import Database
from kefu.storage import apps as app_store
from kefu.storage import kb as kb_store
from kefu.storage.kb import StoredArticle

IMPORT_CHUNK = 200
EDIT_WAIT_S = 5.0  # by default an edit of one article waits for the node's new index (the contract's 5 s), not imports
MAX_PAGE = 200


class ArticleNotFound(errors.NotFound):
    code = "article_not_found"


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int


@dataclass(frozen=True, slots=True)
class ArticlePage:
    items: list[StoredArticle]
    next_cursor: str | None


def check_curator(actor: Actor) -> None:
    """Who may read the KB's gaps and add visitors' wordings to articles (protocol §11): an admin or an API key.

    §10's `supervisor` joins them here, and only here, once that role exists.
    """
    if not actor.is_admin:
        raise errors.Forbidden("Only an admin of the app (or its API key) may do this.")


def article_record(article: StoredArticle) -> dict[str, Any]:
    """An article as the API shows it (the §7 fields, plus timestamps)."""
    return {
        "id": article.article_id,
        "question": article.question,
        "similar": list(article.similar),
        "answer": article.answer,
        "category": article.category,
        "created_at": iso(article.created_at),
        "updated_at": iso(article.updated_at),
    }


def _encode_cursor(article_id: str) -> str:
    return base64.urlsafe_b64encode(article_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        return base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise errors.BadRequest("cursor is not one this API returned.") from None


def _columns(article: ArticleInput) -> dict[str, Any]:
    return {
        "article_id": article.article_id,
        "question": article.question,
        "similar": list(article.similar),
        "answer": article.answer,
        "category": article.category,
    }


class KbArticleSource:
    """The bot's read-only view of the knowledge base (see `kefu.bot.ArticleSource`)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def kb_version(self, app_id: str) -> int:
        async with self.db.read() as tx:
            return await kb_store.get_version(tx, app_id)

    async def kb_articles(self, app_id: str) -> tuple[int, list[KbArticle]]:
        async with self.db.read() as tx, tx.begin():  # the version and the articles from one snapshot
            version = await kb_store.get_version(tx, app_id)
            stored = await kb_store.all_articles(tx, app_id)
        articles = [KbArticle(a.article_id, a.question, a.similar, a.answer, a.category) for a in stored]
        return version, articles

    async def recent_apps(self, limit: int = 50) -> list[str]:
        """The apps whose knowledge base changed most recently: the ones a starting node indexes first."""
        async with self.db.read() as tx:
            return await kb_store.recently_changed_apps(tx, limit)

    async def kb_vectors(self, app_id: str, wanted: dict[tuple[str, Kind], list[str]]) -> VectorsByTable:
        found: VectorsByTable = {}
        async with self.db.read() as tx:
            for (model, kind), texts in wanted.items():
                keys = {_text_key(t): t for t in texts}
                stored = await kb_store.get_vectors(tx, app_id, model, kind, list(keys))
                found[(model, kind)] = {keys[k]: np.frombuffer(v, dtype=np.float32) for k, v in stored.items()}
        return found

    async def save_kb_vectors(self, app_id: str, fresh: VectorsByTable) -> None:
        async with self.db.transaction() as tx:
            for (model, kind), vectors in fresh.items():
                blobs = {_text_key(t): np.asarray(v, dtype=np.float32).tobytes() for t, v in vectors.items()}
                await kb_store.put_vectors(tx, app_id, model, kind, blobs)


def _text_key(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()  # noqa: S324 (a content address, not security)


class KbService:
    def __init__(self, db: Database, clock: Clock, bot: Bot, edit_wait_s: float = EDIT_WAIT_S) -> None:
        self.db, self.clock, self.bot = db, clock, bot
        self._edit_wait_s = edit_wait_s

    async def list_articles(self, app_id: str, limit: int = 50, cursor: str | None = None) -> ArticlePage:
        if not 1 <= limit <= MAX_PAGE:
            raise errors.BadRequest(f"limit must be between 1 and {MAX_PAGE}.")
        after = _decode_cursor(cursor) if cursor else None
        async with self.db.read() as tx:
            items = await kb_store.list_articles(tx, app_id, after, limit + 1)
        more = len(items) > limit
        items = items[:limit]
        return ArticlePage(items, _encode_cursor(items[-1].article_id) if more else None)

    async def get_article(self, app_id: str, article_id: str) -> StoredArticle:
        async with self.db.read() as tx:
            found = await kb_store.get_article(tx, app_id, article_id)
        if found is None:
            raise ArticleNotFound(f"No article '{article_id}' in this app's knowledge base.")
        return found

    async def create_article(self, app_id: str, article: ArticleInput) -> StoredArticle:
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if await kb_store.get_article(tx, app_id, article.article_id) is not None:
                raise errors.AlreadyExists(f"Article '{article.article_id}' exists; PUT it to change it.")
            row = _columns(article) | {"app_id": app_id, "created_at": now, "updated_at": now}
            await kb_store.insert_articles(tx, [row])
            await kb_store.bump_version(tx, app_id)
            created = await kb_store.get_article(tx, app_id, article.article_id)
        assert created is not None
        await self.bot.changed(app_id, self._edit_wait_s)
        return created

    async def replace_article(self, app_id: str, article: ArticleInput) -> StoredArticle:
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if await kb_store.get_article(tx, app_id, article.article_id) is None:
                raise ArticleNotFound(f"No article '{article.article_id}' in this app's knowledge base.")
            await kb_store.update_articles(tx, app_id, [_columns(article)], now)
            await kb_store.bump_version(tx, app_id)
            replaced = await kb_store.get_article(tx, app_id, article.article_id)
        assert replaced is not None
        await self.bot.changed(app_id, self._edit_wait_s)
        return replaced

    async def add_similar(self, actor: Actor, article_id: str, question: str) -> StoredArticle:
        """Add a visitor's wording to an article's similar questions; the bot uses it from its next answer.

        Refused: an empty wording, one longer than an imported question may be, and one that is already a
        phrasing of this or another article once normalised (script, width, case, spaces, punctuation).
        """
        check_curator(actor)
        wording = question.strip()
        key = question_key(wording)
        if not key:
            raise InvalidArticle("'question' has no words.")
        if len(wording) > MAX_QUESTION_CHARS:
            raise InvalidArticle(f"'question' is longer than {MAX_QUESTION_CHARS} characters.")
        async with self.db.transaction() as tx:
            article = await kb_store.get_article(tx, actor.app_id, article_id, lock=True)
            if article is None:
                raise ArticleNotFound(f"No article '{article_id}' in this app's knowledge base.")
            for other in await kb_store.all_articles(tx, actor.app_id):
                if any(question_key(p) == key for p in (other.question, *other.similar)):
                    where = "this article" if other.article_id == article_id else f"article '{other.article_id}'"
                    raise errors.AlreadyExists(f"'{wording}' is already a phrasing of {where}.")
            if len(article.similar) >= MAX_SIMILAR:
                raise InvalidArticle(f"The article has {MAX_SIMILAR} similar questions already; remove some first.")
            changed = {
                "article_id": article.article_id,
                "question": article.question,
                "similar": [*article.similar, wording],
                "answer": article.answer,
                "category": article.category,
            }
            await kb_store.update_articles(tx, actor.app_id, [changed], self.clock.now())
            await kb_store.bump_version(tx, actor.app_id)
            updated = await kb_store.get_article(tx, actor.app_id, article_id)
        assert updated is not None
        await self.bot.changed(actor.app_id, self._edit_wait_s)
        return updated

    async def delete_article(self, app_id: str, article_id: str) -> None:
        try:
            check_article_id(article_id)
        except ValueError as exc:
            raise InvalidArticle(str(exc)) from None
        async with self.db.transaction() as tx:
            if not await kb_store.delete_article(tx, app_id, article_id):
                raise ArticleNotFound(f"No article '{article_id}' in this app's knowledge base.")
            await kb_store.bump_version(tx, app_id)
        await self.bot.changed(app_id, self._edit_wait_s)

    async def import_articles(
        self, app_id: str, articles: list[ArticleInput], progress: Callable[[int], None] | None = None
    ) -> ImportResult:
        """Create or update (by id) every article in one transaction: all of them, or none on any error."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            if await app_store.get_app(tx, app_id) is None:
                raise errors.AppNotFound(f"No app '{app_id}'.")
            existing = await kb_store.article_ids(tx, app_id)
            created = updated = 0
            for start in range(0, len(articles), IMPORT_CHUNK):
                chunk = articles[start : start + IMPORT_CHUNK]
                new = [
                    _columns(a) | {"app_id": app_id, "created_at": now, "updated_at": now}
                    for a in chunk
                    if a.article_id not in existing
                ]
                changed = [_columns(a) for a in chunk if a.article_id in existing]
                await kb_store.insert_articles(tx, new)
                await kb_store.update_articles(tx, app_id, changed, now)
                created += len(new)
                updated += len(changed)
                if progress is not None:
                    progress(len(chunk))
            if articles:
                await kb_store.bump_version(tx, app_id)
        if articles:
            await self.bot.changed(app_id)
        return ImportResult(created, updated)

    async def ask(self, app_id: str, question: str) -> BotAnswer:
        """The bot's answer at the app's own threshold (app setting `bot_threshold`, default 0.7)."""
        async with self.db.read() as tx:
            app = await app_store.get_app(tx, app_id)
        if app is None:
            raise errors.AppNotFound(f"No app '{app_id}'.")
        return await self.bot.answer(app_id, question, app.settings.bot_threshold)
