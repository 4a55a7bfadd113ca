"""The bot one node runs: models loaded at start, per-app indexes rebuilt in the background when a KB changes.

An answer never waits for a rebuild: while an app's new index is built (one build at a time per node, in small
batches that let questions go first), the previous one keeps answering. A small change is usually indexed within
a fraction of a second and answered from at once; only an app the node has never indexed waits for its first build.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from kefu.bot.encoders import Kind, MultilingualE5, UniversalSentenceEncoder
from kefu.bot.handoff import is_repeated_question, wants_human
from kefu.bot.index import BuildStopped, IndexTexts, KbArticle, KbIndex, VectorStore
from kefu.bot.matcher import Matcher
from kefu.bot.model import BotModel
from kefu.bot.text import Analyzer, normalise

LOW_CONFIDENCE = "low_confidence"
NO_ANSWER = "no_answer"
FRESH_WAIT_S = 0.3  # how long an answer waits for a running rebuild before it answers from the previous index

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BotAnswer:
    """The bot's reply to one question: an article, or a handoff with its reason (`low_confidence`, `no_answer`)."""

    article_id: str | None
    answer: str | None
    confidence: float
    handoff: bool
    reason: str | None


VectorsByTable = dict[tuple[str, Kind], dict[str, NDArray[np.float32]]]


class ArticleSource(Protocol):
    """Where the bot reads an app's knowledge base (the KB service, over the database).

    Vectors are kept beside the articles, so a node that starts, or another node, does not encode them again.
    """

    async def kb_version(self, app_id: str) -> int: ...

    async def kb_articles(self, app_id: str) -> tuple[int, list[KbArticle]]: ...

    async def kb_vectors(self, app_id: str, wanted: dict[tuple[str, Kind], list[str]]) -> VectorsByTable: ...

    async def save_kb_vectors(self, app_id: str, fresh: VectorsByTable) -> None: ...


@functools.cache
def shared_matcher() -> Matcher:
    """The process's one matcher: the models are read-only, slow to load and large, so every Bot shares it."""
    analyzer = Analyzer()
    analyzer.warm_up()
    return Matcher(UniversalSentenceEncoder(), MultilingualE5(), analyzer, BotModel.shipped())


@dataclass(slots=True)
class _AppState:
    index: KbIndex | None = None
    building: asyncio.Task[KbIndex] | None = None


class Bot:
    """Answers questions from an app's knowledge base with a calibrated confidence, off the event loop.

    Each answer reads the app's KB version (one indexed row); when it moved, a rebuild starts in the background,
    so an article changed on any node is answered from on every node within moments, without a restart.
    """

    def __init__(
        self,
        source: ArticleSource,
        matcher: Callable[[], Matcher] = shared_matcher,
        max_apps: int = 500,
        warm: Callable[[], Awaitable[list[str]]] | None = None,
        first_wait_s: float = 0.8,
    ) -> None:
        self._first_wait_s = first_wait_s  # how long a question waits for an app's first index, then hands off
        self._source = source
        self._warm_apps = warm
        self._load_matcher = matcher
        self._loading: asyncio.Task[Matcher] | None = None
        self._warming: asyncio.Task[None] | None = None
        self._apps: OrderedDict[str, _AppState] = OrderedDict()
        self._max_apps = max_apps
        self._stopping = threading.Event()
        self._build_slot = asyncio.Semaphore(1)  # one index build at a time per node: imports queue, answers don't

    @staticmethod
    def wants_human(text: str) -> bool:
        """True when the visitor asks for a person ("转人工", "人工客服", "human", "agent", …)."""
        return wants_human(text)

    @staticmethod
    def is_repeated_question(text: str, previous_unanswered: list[str] | tuple[str, ...]) -> bool:
        """True when `text` repeats (normalised) a question the bot already could not answer."""
        return is_repeated_question(text, previous_unanswered)

    def start(self) -> None:
        """Begin loading the models in the background, then index the apps `warm` names (a node calls this when
        it starts, so the first question after a start is answered at once)."""
        loop = asyncio.get_running_loop()
        if self._loading is None:
            self._loading = loop.create_task(asyncio.to_thread(self._load_matcher))
        if self._warm_apps is not None and self._warming is None:
            self._warming = loop.create_task(self._warm(self._warm_apps))

    async def _warm(self, apps: Callable[[], Awaitable[list[str]]]) -> None:
        await self.matcher()
        for app_id in await apps():
            try:
                await self.index(app_id, fresh=True)
            except Exception:  # one app's broken knowledge base must not keep the others cold
                log.exception("indexing app %s at start failed", app_id)

    @property
    def ready(self) -> bool:
        """True once the models are loaded and the apps named at start are indexed: the node may take traffic."""
        loaded = self._loading is not None and self._loading.done() and self._loading.exception() is None
        return loaded and (self._warming is None or self._warming.done())

    async def matcher(self) -> Matcher:
        self.start()
        assert self._loading is not None
        return await asyncio.shield(self._loading)

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
        """The best article and its confidence whatever the threshold (for evaluation and knowledge-base gaps)."""
        index = await self.index(app_id)
        if index.empty:
            return None, 0.0
        match = await asyncio.to_thread((await self.matcher()).match, index, question)
        return (match.article.article_id if match.article else None), match.confidence

    async def question_vectors(self, texts: list[str]) -> NDArray[np.float32]:
        """Sentence vectors (L2-normalised rows) of visitor questions, for grouping them by meaning (USE's: the
        grouping threshold in services/kb.py was measured on them; e5's cosines crowd near 0.9)."""
        matcher = await self.matcher()
        return await asyncio.to_thread(matcher.use.encode, [normalise(t)[:500] for t in texts])

    async def index(self, app_id: str, fresh: bool = False) -> KbIndex:
        """The app's index: the current one, or the previous one while a rebuild runs. An app this node never
        indexed (or indexed while it had no articles) waits a moment for its first build, then gets an empty
        index (the bot hands off) until it is done; `fresh` waits for the build whatever it takes."""
        version = await self._source.kb_version(app_id)
        state = self._state(app_id)
        if state.index is not None and state.index.version == version:
            return state.index
        building = self.refresh(app_id)
        if fresh:
            return await asyncio.shield(building)
        answers_something = state.index is not None and not state.index.empty
        done, _ = await asyncio.wait({building}, timeout=FRESH_WAIT_S if answers_something else self._first_wait_s)
        if done and building.exception() is None:
            return building.result()
        return state.index if state.index is not None else _empty_index(await self.matcher())

    async def changed(self, app_id: str, wait_s: float = 0.0) -> None:
        """The app's knowledge base changed on this node: on a running node, index it now rather than on the
        next question, waiting up to `wait_s` for it (an edit of one article is then answered from at once;
        an import is not waited for). A command-line import leaves it to the nodes."""
        if self._loading is None:
            return
        building = self.refresh(app_id)
        if wait_s > 0:
            await asyncio.wait({building}, timeout=wait_s)

    def building(self, app_id: str) -> bool:
        """True while this node builds a new index of the app (its previous index, if any, answers meanwhile)."""
        state = self._apps.get(app_id)
        return state is not None and state.building is not None and not state.building.done()

    def refresh(self, app_id: str) -> asyncio.Task[KbIndex]:
        """Start indexing the app's knowledge base in the background, unless a build is already running."""
        state = self._state(app_id)
        if state.building is None:
            state.building = asyncio.get_running_loop().create_task(self._build(app_id, state))
        return state.building

    async def _build(self, app_id: str, state: _AppState) -> KbIndex:
        try:
            matcher = await self.matcher()
            async with self._build_slot:
                version, articles = await self._source.kb_articles(app_id)
                previous = state.index.tables if state.index is not None else None
                # segmenting thousands of texts takes seconds: off the event loop, like the encoding
                texts = await asyncio.to_thread(IndexTexts.of, articles, matcher.analyzer)
                wanted = texts.by_table(matcher.use, matcher.e5)
                if previous is not None:
                    have = previous.texts()
                    wanted = {key: [t for t in found if t not in have.get(key, ())] for key, found in wanted.items()}
                store = VectorStore(await self._source.kb_vectors(app_id, wanted), stopping=self._stopping.is_set)
                index = await asyncio.to_thread(matcher.build, articles, version, previous, store, texts)
                if any(store.fresh.values()):
                    await self._source.save_kb_vectors(app_id, store.fresh)
            state.index = index
            return index
        except BuildStopped:
            raise asyncio.CancelledError from None
        except Exception:
            log.exception("building the bot's index of app %s failed", app_id)
            raise
        finally:
            state.building = None

    async def stop(self) -> None:
        """Cancel index builds in flight (a node calls this when it stops); a build's worker thread gives up after
        its current small batch, so the process does not wait for the build to end."""
        self._stopping.set()
        tasks: list[asyncio.Task[Any]] = [s.building for s in self._apps.values() if s.building is not None]
        if self._warming is not None:
            tasks.append(self._warming)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _state(self, app_id: str) -> _AppState:
        state = self._apps.get(app_id)
        if state is None:
            state = _AppState()
            self._apps[app_id] = state
            while len(self._apps) > self._max_apps:  # least recently used apps give their memory back
                self._apps.popitem(last=False)
        else:
            self._apps.move_to_end(app_id)
        return state


@functools.cache
def _empty_index(matcher: Matcher) -> KbIndex:
    """An index with no articles, standing in while an app's first index is built."""
    return matcher.build([], -1)
