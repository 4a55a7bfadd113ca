"""Knowledge-base gaps (protocol §11): the visitor questions the bot could not serve, grouped by meaning.

The questions themselves are recorded as they happen (services/bot_flow.py, storage/gaps.py); this reads them,
groups them and asks the bot, now, how it would answer each group.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from kefu import errors
from kefu.bot import Bot, question_key
from kefu.domain.models import Actor
from kefu.domain.question_groups import group_by_meaning
from kefu.services.kb import check_curator
from kefu.storage import Database
from kefu.storage import apps as app_store
from kefu.storage import gaps as gap_store
from kefu.storage import kb as kb_store
from kefu.storage.gaps import NEGATIVE_FEEDBACK, Gap

MAX_GROUPS = 200
# The newest questions of the window that are grouped, which bounds the time a listing takes (docs/bot.md);
# narrow `from`/`to` to look further back.
MAX_QUESTIONS = 2000
# Encoded a few at a time, so that a visitor's answer waiting for the encoder waits for one chunk, not for all.
ENCODE_CHUNK = 32
# Wordings' vectors (any app: a text's vector is the same everywhere), and the bot's best match for a group's
# question at one version of an app's knowledge base: a listing asked again is grouping and little else.
CACHED_VECTORS = 4096
CACHED_MATCHES = 4096


@dataclass(frozen=True, slots=True)
class Wording:
    """One way a group's question was put, as the visitor first typed it, and how many conversations put it so."""

    question: str
    count: int


@dataclass(frozen=True, slots=True)
class GapGroup:
    """One item of `GET /kb/gaps`."""

    question: str
    session_ids: list[str]
    article_id: str | None
    confidence: float | None
    # Every wording of the group, most frequent first: what an admin adds to an article or makes a new one from.
    wordings: list[Wording]


class GapService:
    def __init__(self, db: Database, bot: Bot) -> None:
        self.db, self.bot = db, bot
        self._vectors: OrderedDict[str, NDArray[np.float32]] = OrderedDict()
        self._matches: OrderedDict[tuple[str, int, str], tuple[str | None, float]] = OrderedDict()

    async def list_gaps(
        self, actor: Actor, start: dt.datetime | None, end: dt.datetime | None, limit: int = 50
    ) -> list[GapGroup]:
        """The app's unserved questions asked in [start, end), grouped by meaning, largest group first.

        A group the bot now answers (its confidence at the app's threshold) is left out unless one of its
        questions got a 👎: a wrong answer given with confidence is exactly what the admin must see.
        """
        check_curator(actor)
        if not 1 <= limit <= MAX_GROUPS:
            raise errors.BadRequest(f"limit must be between 1 and {MAX_GROUPS}.")
        async with self.db.read() as tx:
            app = await app_store.get_app(tx, actor.app_id)
            version = await kb_store.get_version(tx, actor.app_id)
            gaps = await gap_store.gaps_between(tx, actor.app_id, start, end, MAX_QUESTIONS)
        if app is None:
            raise errors.AppNotFound(f"No app '{actor.app_id}'.")
        by_wording: dict[str, list[Gap]] = {}
        for gap in gaps:  # oldest first: each wording's first question is its earliest
            by_wording.setdefault(question_key(gap.question) or gap.question, []).append(gap)
        wordings = sorted(by_wording, key=lambda k: (-len(by_wording[k]), by_wording[k][0].asked_at, k))
        vectors = await self._vectors_of(wordings, [by_wording[k][0].question for k in wordings])
        groups = await asyncio.to_thread(group_by_meaning, vectors, [len(by_wording[k]) for k in wordings])
        members = [sorted((g for i in group for g in by_wording[wordings[i]]), key=_asked) for group in groups]
        # A group's rows keep the order of `wordings` (most frequent first, ties: the earliest): its seed comes first.
        phrasings = [[_wording(by_wording[wordings[i]]) for i in group] for group in groups]
        # The group's seed is its most frequent wording (ties: the earliest): the question it is listed under.
        listed = sorted(
            zip(members, (by_wording[wordings[group[0]]][0].question for group in groups), phrasings, strict=True),
            key=lambda item: (-len(item[0]), -item[0][-1].asked_at.timestamp(), item[1]),
        )
        found: list[GapGroup] = []
        for questions, question, group_wordings in listed:
            if len(found) == limit:
                break
            article_id, score = await self._best_match(actor.app_id, version, question)
            confidence = round(score, 4) if article_id is not None else None
            disliked = any(g.reason == NEGATIVE_FEEDBACK for g in questions)
            if confidence is not None and confidence >= app.settings.bot_threshold and not disliked:
                continue  # handed off then, answered now
            found.append(GapGroup(question, [g.session_id for g in questions], article_id, confidence, group_wordings))
        return found

    async def _best_match(self, app_id: str, version: int, question: str) -> tuple[str | None, float]:
        """The bot's best article and confidence for `question`, the same while the app's KB stays at `version`.

        Should the KB change between reading `version` and the bot's answer, that newer answer sits under the
        older key, which no later listing asks for.
        """
        key = (app_id, version, question)
        found = self._matches.get(key)
        if found is None:
            found = self._matches[key] = await self.bot.best_match(app_id, question)
            while len(self._matches) > CACHED_MATCHES:
                self._matches.popitem(last=False)
        self._matches.move_to_end(key)
        return found

    async def _vectors_of(self, keys: list[str], texts: list[str]) -> NDArray[np.float32]:
        """The sentence vector of each text, from the cache (by its normalised key) or encoded now."""
        missing = [i for i, key in enumerate(keys) if key not in self._vectors]
        for start in range(0, len(missing), ENCODE_CHUNK):
            chunk = missing[start : start + ENCODE_CHUNK]
            for i, vector in zip(chunk, await self.bot.question_vectors([texts[i] for i in chunk]), strict=True):
                self._vectors[keys[i]] = vector
        rows = [self._vectors[key] for key in keys]
        for key in keys:
            self._vectors.move_to_end(key)
        while len(self._vectors) > max(CACHED_VECTORS, len(keys)):
            self._vectors.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, 1), dtype=np.float32)


def _wording(asked: list[Gap]) -> Wording:
    """One wording's questions (oldest first) as listed: as the visitor first typed it, and how often."""
    return Wording(asked[0].question, len(asked))


def _asked(gap: Gap) -> tuple[dt.datetime, str]:
    return gap.asked_at, gap.session_id
