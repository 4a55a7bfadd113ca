"""The bot in a conversation: answer each visitor message while the chat is in `bot` status, or hand it off.

Handoff reasons: `user_request` (the visitor asks for a person, in words or with `request_human`),
`low_confidence` (the best answer is below the app's threshold), `no_answer` (nothing to answer
from), `repeated_question` (the same question again: the answer did not help) and
`negative_feedback` (👎 on a bot answer). On handoff the bot says so once and then stays quiet;
routing takes over and the agent's `assigned` frame carries the transcript and the reason.
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
from kefu.storage import kb as kb_store

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
            if message.msg_type != "text":
                return BotReply(None, await self.hand_off(current, "no_answer"))
            if self.engine.wants_human(message.content):
                return BotReply(None, await self.hand_off(current, "user_request"))
            asked = [m.content for m in earlier if m.sender == Sender.USER and m.msg_type == "text"]
            if self.engine.is_repeated_question(message.content, asked):
                return BotReply(None, await self.hand_off(current, "repeated_question"))
            found = await self.engine.answer(conv.app_id, message.content, app.settings.bot_threshold)
            if found.handoff or not found.answer:
                return BotReply(None, await self.hand_off(current, found.reason or "low_confidence"))
            reply = await self.chat.post(
                current, Sender.BOT, found.answer, confidence=round(found.confidence, 4), article_id=found.article_id
            )
            return BotReply(reply, None)

    async def hand_off(self, conv: Conversation, reason: str) -> str | None:
        """Move a bot conversation to the human queue, once; the bot's last words say so."""
        moved = await self.chat.hand_off(conv.session_id, reason)
        if moved is None:
            return None
        await self.chat.post(moved, Sender.BOT, HANDOFF_NOTICE, allow_status=(Status.QUEUED, Status.ACTIVE))
        return reason

    async def feedback(self, actor: Actor, session_id: str, seq: int, helpful: bool) -> None:
        """👍/👎 on a bot answer; 👎 while the bot still has the chat hands it to a person."""
        async with self.chat.db.read() as tx:
            conv = await self.chat.access_conversation(tx, actor, session_id)
            rated = await conversation_store.messages_after(tx, session_id, seq - 1, seq)
        if not rated or rated[0].sender != Sender.BOT or rated[0].article_id is None:
            raise errors.InvalidFrame(f"Message {seq} is not a bot answer.")
        if not helpful and conv.status == Status.BOT:
            async with self._locks.hold(session_id):
                await self.hand_off(conv, "negative_feedback")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
