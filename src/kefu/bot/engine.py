"""The bot one node runs: per-app indexes built lazily from the database and rebuilt when an app's KB changes."""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from kefu.bot.calibration import Calibration
from kefu.bot.encoders import UniversalSentenceEncoder
from kefu.bot.handoff import is_repeated_question, wants_human
from kefu.bot.index import EmbeddingCache, KbArticle, KbIndex
from kefu.bot.matcher import Matcher
from kefu.bot.text import Analyzer, normalise

LOW_CONFIDENCE = "low_confidence"
NO_ANSWER = "no_answer"


@dataclass(frozen=True, slots=True)
class BotAnswer:
    """The bot's reply to one question: an article, or a handoff with its reason (`low_confidence`, `no_answer`)."""

    article_id: str | None
    answer: str | None
    confidence: float
    handoff: bool
    reason: str | None


class ArticleSource(Protocol):
    """Where the bot reads an app's knowledge base (the KB service, over the database)."""

    async def kb_version(self, app_id: str) -> int: ...

    async def kb_articles(self, app_id: str) -> tuple[int, list[KbArticle]]: ...


@functools.cache
def shared_matcher() -> Matcher:
    """The process's one matcher: the models are read-only, slow to load and large, so every Bot shares it."""
    return Matcher(UniversalSentenceEncoder(), Analyzer(), Calibration.shipped())


@dataclass(slots=True)
class _AppState:
    index: KbIndex | None
    cache: EmbeddingCache
    lock: asyncio.Lock


class Bot:
    """Answers questions from an app's knowledge base with a calibrated confidence, off the event loop.

    Each answer reads the app's KB version (one indexed row) and rebuilds the app's index when it moved, so an
    article changed on any node is seen by the next answer on every node, without a restart.
    """

    def __init__(
        self, source: ArticleSource, matcher: Callable[[], Matcher] = shared_matcher, max_apps: int = 500
    ) -> None:
        self._source = source
        self._load_matcher = matcher
        self._matcher: Matcher | None = None
        self._matcher_lock = asyncio.Lock()
        self._apps: OrderedDict[str, _AppState] = OrderedDict()
        self._max_apps = max_apps

    @staticmethod
    def wants_human(text: str) -> bool:
        """True when the visitor asks for a person ("转人工", "人工客服", "human", "agent", …)."""
        return wants_human(text)

    @staticmethod
    def is_repeated_question(text: str, previous_unanswered: list[str] | tuple[str, ...]) -> bool:
        """True when `text` repeats (normalised) a question the bot already could not answer."""
        return is_repeated_question(text, previous_unanswered)

    async def matcher(self) -> Matcher:
        if self._matcher is None:
            async with self._matcher_lock:
                if self._matcher is None:
                    self._matcher = await asyncio.to_thread(self._load_matcher)
        return self._matcher

    async def answer(self, app_id: str, question: str, threshold: float) -> BotAnswer:
        """The best article when its confidence reaches `threshold`, else a handoff saying why."""
        index = await self.index(app_id)
        if index.empty:
            return BotAnswer(None, None, 0.0, True, NO_ANSWER)
        matcher = await self.matcher()
        match = await asyncio.to_thread(matcher.match, index, question)
        confidence = round(match.confidence, 4)
        if match.article is None or confidence < threshold:
            return BotAnswer(None, None, confidence, True, LOW_CONFIDENCE)
        return BotAnswer(match.article.article_id, match.article.answer, confidence, False, None)

    async def best_match(self, app_id: str, question: str) -> tuple[str | None, float]:
        """The best article and its confidence whatever the threshold (for evaluation)."""
        index = await self.index(app_id)
        if index.empty:
            return None, 0.0
        match = await asyncio.to_thread((await self.matcher()).match, index, question)
        return (match.article.article_id if match.article else None), match.confidence

    async def index(self, app_id: str) -> KbIndex:
        """The app's index at the KB's current version, (re)built when stale."""
        version = await self._source.kb_version(app_id)
        state = self._state(app_id)
        if state.index is not None and state.index.version == version:
            return state.index
        async with state.lock:  # one rebuild per app at a time; others wait for it rather than repeat it
            if state.index is not None and state.index.version == await self._source.kb_version(app_id):
                return state.index
            matcher = await self.matcher()
            version, articles = await self._source.kb_articles(app_id)
            state.index = await asyncio.to_thread(matcher.build, articles, version, state.cache)
            return state.index

    def _state(self, app_id: str) -> _AppState:
        state = self._apps.get(app_id)
        if state is None:
            state = _AppState(None, EmbeddingCache(UniversalSentenceEncoder.name), asyncio.Lock())
            self._apps[app_id] = state
            while len(self._apps) > self._max_apps:  # least recently used apps give their memory back
                self._apps.popitem(last=False)
        else:
            self._apps.move_to_end(app_id)
        return state

    async def question_vectors(self, texts: list[str]) -> NDArray[np.float32]:
        """Sentence vectors (L2-normalised rows) of visitors' questions, as the bot reads them (for grouping)."""
        encoder = (await self.matcher()).encoder
        return await asyncio.to_thread(encoder.encode, [normalise(t)[:500] for t in texts])
