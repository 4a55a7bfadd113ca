"""The bot in a conversation: answer each visitor message while the chat is in `bot` status, or hand it off.

Handoff reasons: `user_request` (the visitor asks for a person, in words or with `request_human`),
`low_confidence` (the best answer is below the app's threshold), `no_answer` (nothing to answer
from), `repeated_question` (the same question again: the answer did not help) and
`negative_feedback` (👎 on a bot answer). On handoff the bot says so once and then stays quiet;
routing takes over and the agent's `assigned` frame carries the transcript and the reason.

What the bot could not serve is recorded as it happens, for `GET /kb/gaps` (protocol §11): with a handoff, in
its transaction, the visitor's last question before it (for `user_request`, when there was one); with a 👎, in
the feedback's transaction, the question the disliked answer replied to. Every 👍/👎 is stored too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from kefu import errors
from kefu.bot import Bot, BotAnswer, is_repeated_question, wants_human
from kefu.domain.conversation import Sender, Status
from kefu.domain.models import Actor, Conversation, Message
from kefu.services.chat import ChatService
from kefu.storage import Database
from kefu.storage import apps as app_store
from kefu.storage import conversations as conversation_store
from kefu.storage import gaps as gap_store
from kefu.storage import kb as kb_store
from kefu.storage.gaps import NEGATIVE_FEEDBACK, Feedback, Gap

log = logging.getLogger(__name__)
HANDOFF_NOTICE = "正在为您转接人工客服，请稍候。Connecting you with a person, one moment please."


class BotEngine(Protocol):
    """What the conversation needs of a bot (kefu.bot.Bot over the app's knowledge base)."""

    async def answer(self, app_id: str, question: str, threshold: float) -> BotAnswer: ...

    async def has_articles(self, app_id: str) -> bool: ...

    def wants_human(self, text: str) -> bool: ...

    def is_repeated_question(self, text: str, previous: list[str]) -> bool: ...


class KnowledgeBaseBot:
    """The bot of kefu.bot answering from the app's knowledge base; a chat starts with it when the KB has articles."""

    def __init__(self, bot: Bot, db: Database) -> None:
        self.bot, self.db = bot, db

    async def answer(self, app_id: str, question: str, threshold: float) -> BotAnswer:
        return await self.bot.answer(app_id, question, threshold)

    async def has_articles(self, app_id: str) -> bool:
        async with self.db.read() as tx:
            return await kb_store.has_articles(tx, app_id)

    def wants_human(self, text: str) -> bool:
        return wants_human(text)

    def is_repeated_question(self, text: str, previous: list[str]) -> bool:
        return is_repeated_question(text, previous)


class KeyedLocks:
    """One asyncio lock per key, forgotten as soon as nobody holds or waits for it (no growth with traffic)."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass(frozen=True, slots=True)
class BotReply:
    message: Message | None
    handed_off: str | None


class BotFlow:
    def __init__(self, chat: ChatService, engine: BotEngine) -> None:
        self.chat, self.engine = chat, engine
        self._locks = KeyedLocks()
        self._tasks: set[asyncio.Task[None]] = set()

    async def starts_with_bot(self, app_id: str) -> bool:
        return await self.engine.has_articles(app_id)

    def on_visitor_message(self, conv: Conversation, message: Message) -> None:
        """Answer in the background, so the visitor's ack never waits for the bot."""
        task = asyncio.get_running_loop().create_task(self._answer_logged(conv, message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer_logged(self, conv: Conversation, message: Message) -> None:
        try:
            await self.answer(conv, message)
        except errors.Unavailable:  # logged once as an outage by the database
            pass
        except Exception:
            log.exception("the bot failed to answer in %s", conv.session_id)

    async def answer(self, conv: Conversation, message: Message) -> BotReply:
        """Reply to one visitor message (replies of one conversation one at a time, in order)."""
        async with self._locks.hold(conv.session_id):
            async with self.chat.db.read() as tx:
                current = await conversation_store.get_conversation(tx, conv.session_id)
                app = await app_store.get_app(tx, conv.app_id)
                earlier = await conversation_store.messages_after(tx, conv.session_id, 0, message.seq - 1)
            if current is None or app is None or current.status != Status.BOT:
                return BotReply(None, None)  # handed off or closed meanwhile: the bot says nothing more
            asked_so_far = [*earlier, message]
            if message.msg_type != "text":
                return BotReply(None, await self.hand_off(current, "no_answer", asked_so_far))
            if self.engine.wants_human(message.content):
                return BotReply(None, await self.hand_off(current, "user_request", asked_so_far))
            asked = [m.content for m in earlier if m.sender == Sender.USER and m.msg_type == "text"]
            if self.engine.is_repeated_question(message.content, asked):
                return BotReply(None, await self.hand_off(current, "repeated_question", asked_so_far))
            found = await self.engine.answer(conv.app_id, message.content, app.settings.bot_threshold)
            if found.handoff or not found.answer:
                return BotReply(None, await self.hand_off(current, found.reason or "low_confidence", asked_so_far))
            reply = await self.chat.post(
                current, Sender.BOT, found.answer, confidence=round(found.confidence, 4), article_id=found.article_id
            )
            return BotReply(reply, None)

    async def hand_off(self, conv: Conversation, reason: str, transcript: list[Message] | None = None) -> str | None:
        """Move a bot conversation to the human queue, once; the bot's last words say so.

        `transcript`: the messages up to the one that led to the handoff (read here when not given), whose last
        visitor question is recorded as the conversation's gap in the handoff's transaction.
        """
        gap = None
        if reason != NEGATIVE_FEEDBACK:  # a 👎's question was recorded with the feedback itself
            if transcript is None:
                async with self.chat.db.read() as tx:
                    transcript = await conversation_store.messages_after(tx, conv.session_id, 0)
            gap = self._last_question(conv, reason, transcript)
        moved = await self.chat.hand_off(conv.session_id, reason, gap)
        if moved is None:
            return None
        await self.chat.post(moved, Sender.BOT, HANDOFF_NOTICE, allow_status=(Status.QUEUED, Status.ACTIVE))
        return reason

    async def feedback(self, actor: Actor, session_id: str, seq: int, helpful: bool) -> None:
        """👍/👎 on a bot answer, stored with the question it answered; 👎 while the bot still has the chat hands it
        to a person, and makes that question the conversation's gap."""
        async with self.chat.db.read() as tx:
            conv = await self.chat.access_conversation(tx, actor, session_id)
            transcript = await conversation_store.messages_after(tx, session_id, 0, seq)
        rated = transcript[-1] if transcript and transcript[-1].seq == seq else None
        if rated is None or rated.sender != Sender.BOT or rated.article_id is None:
            raise errors.InvalidFrame(f"Message {seq} is not a bot answer.")
        question = answered_question(transcript)
        now = self.chat.clock.now()
        asked = question.content if question is not None else None
        mark = Feedback(conv.app_id, session_id, seq, rated.article_id, asked, helpful, now)
        async with self.chat.db.transaction() as tx:
            await gap_store.record_feedback(tx, mark)
            if not helpful and question is not None:
                await gap_store.record_gap(tx, _gap(conv, question, NEGATIVE_FEEDBACK))
        if not helpful and conv.status == Status.BOT:
            async with self._locks.hold(session_id):
                await self.hand_off(conv, "negative_feedback")

    def _last_question(self, conv: Conversation, reason: str, transcript: list[Message]) -> Gap | None:
        """The visitor's last question in `transcript` (a text that is not a request for a person), as a gap."""
        for message in reversed(transcript):
            if (
                message.sender == Sender.USER
                and message.msg_type == "text"
                and not self.engine.wants_human(message.content)
            ):
                return _gap(conv, message, reason)
        return None

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def answered_question(transcript: list[Message]) -> Message | None:
    """The visitor question that the bot answer ending `transcript` replied to.

    While the bot has a chat it replies to the visitor's messages one by one, in order (an answer, or a handoff
    after which it answers nothing more), so the n-th answer replies to the n-th visitor message — not to the
    last one before it, which may be a later question sent before the answer came. Should that not hold (a
    reply that failed), the last visitor text before the answer stands in.
    """
    visitor = [m for m in transcript[:-1] if m.sender == Sender.USER]
    answers = [m for m in transcript[:-1] if m.sender == Sender.BOT and m.article_id is not None]
    if len(answers) < len(visitor) and visitor[len(answers)].msg_type == "text":
        return visitor[len(answers)]
    texts = [m for m in visitor if m.msg_type == "text"]
    return texts[-1] if texts else None


def _gap(conv: Conversation, question: Message, reason: str) -> Gap:
    return Gap(conv.app_id, conv.session_id, question.seq, question.content, reason, question.created_at)
