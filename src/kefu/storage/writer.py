"""Group commit for messages: every send that arrives while a batch is being written goes into the next one.

One transaction (one fsync) per batch instead of per message, and on SQLite one hop to a
dedicated writer thread per batch instead of one per statement (aiosqlite's cost). A send is
acknowledged only when its batch has committed.

The interface is plain data both ways: `write(batch)` takes `NewMessage` requests — the row to
write, what the conversation must be (`Expected`, values a service derived from its rules) and
the webhooks to tell — and gives back one `Appended` or `Refused` each. No service code runs
inside the transaction. A refused request writes nothing and does not disturb the others; if the
database itself refuses a batch, each of its requests is retried in a transaction of its own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError

from kefu.domain.ids import new_id
from kefu.domain.models import Conversation, Message
from kefu.domain.records import message_frame
from kefu.storage.attachments import Attachment, attachment_from
from kefu.storage.engine import Database, sqlite_sync_engine
from kefu.storage.rows import conversation_from, message_from
from kefu.storage.tables import attachments, conversations, messages
from kefu.storage.webhooks import INSERT_DELIVERIES, delivery_rows

MAX_BATCH = 256
DEADLOCK_RETRIES = 3


def is_retryable(exc: DBAPIError) -> bool:
    """PostgreSQL gave up on the transaction to break a deadlock (40P01) or a serialization conflict (40001)."""
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return code in ("40P01", "40001") or "deadlock detected" in str(exc.orig)


@dataclass(frozen=True, slots=True)
class Expected:
    """What a conversation must be, when the writer reads it, for a message to go in (None: anything)."""

    app_id: str | None = None
    visitor_id: str | None = None
    agent_id: str | None = None
    statuses: frozenset[str] | None = None
    """Checked after the `client_msg_id` lookup: a retry of a stored message gets it back whatever the status."""

    def sender_fits(self, conv: Conversation) -> bool:
        wanted = ((self.app_id, conv.app_id), (self.visitor_id, conv.visitor_id), (self.agent_id, conv.agent_id))
        return all(want is None or want == got for want, got in wanted)

    def status_fits(self, conv: Conversation) -> bool:
        return self.statuses is None or conv.status in self.statuses


@dataclass(frozen=True, slots=True)
class NewMessage:
    session_id: str
    sender: str
    sender_id: str | None
    msg_type: str
    content: str
    created_at: dt.datetime
    expected: Expected
    client_msg_id: str | None = None
    attachment_id: str | None = None
    uploader_kind: str | None = None
    """Whose upload `attachment_id` must be: the sender's own (kind "visitor" or "agent", id `sender_id`)."""
    confidence: float | None = None
    article_id: str | None = None
    notify: tuple[str, ...] = ()
    """Webhooks listening to `message.created`: each gets a delivery of the stored message, in its transaction."""


@dataclass(frozen=True, slots=True)
class Appended:
    message: Message
    conversation: Conversation
    """The conversation as it was when the message was written (its participants then)."""
    duplicate: bool
    attachment: Attachment | None = None


@dataclass(frozen=True, slots=True)
class Refused:
    """Nothing was written, because of `reason`: `missing` (no such conversation), `sender` or `status` (the
    conversation is not as `expected`), or `attachment` (no such upload of the sender's in its app)."""

    reason: Literal["missing", "sender", "status", "attachment"]
    conversation: Conversation | None
    """The conversation as the writer read it (None when missing): the service tells the sender why from it."""


Outcome = Appended | Refused


class _Statements:
    """Built once: constructing SQLAlchemy statements per message costs more than running them."""

    def __init__(self, lock_rows: bool) -> None:
        select_conv = sa.select(conversations).where(conversations.c.session_id == sa.bindparam("sid"))
        self.conversation = select_conv.with_for_update() if lock_rows else select_conv
        # A batch locks all its conversations first, in one order every node shares: batches of different
        # nodes touching the same conversations then wait for each other instead of deadlocking.
        self.lock_all = (
            sa.select(conversations.c.session_id)
            .where(conversations.c.session_id.in_(sa.bindparam("sids", expanding=True)))
            .order_by(conversations.c.session_id)
            .with_for_update()
        )
        self.lock_rows = lock_rows
        self.by_client_id = sa.select(messages).where(
            messages.c.session_id == sa.bindparam("sid"),
            messages.c.sender_id == sa.bindparam("sender_id"),
            messages.c.client_msg_id == sa.bindparam("cmid"),
        )
        bump = conversations.update().where(conversations.c.session_id == sa.bindparam("sid"))
        self.bump = bump.values(last_seq=conversations.c.last_seq + 1).returning(conversations.c.last_seq)
        # The reporting figures a message sets (protocol §5), in the same statement: the first agent reply,
        # and whether the bot answered (a bot message with an article).
        self.bump_agent = bump.values(
            last_seq=conversations.c.last_seq + 1,
            first_response_at=sa.func.coalesce(conversations.c.first_response_at, sa.bindparam("at")),
        ).returning(conversations.c.last_seq)
        self.bump_answer = bump.values(last_seq=conversations.c.last_seq + 1, bot_answered=True).returning(
            conversations.c.last_seq
        )
        self.insert = messages.insert()
        self.attachment = sa.select(attachments).where(
            attachments.c.attachment_id == sa.bindparam("aid"),
            attachments.c.app_id == sa.bindparam("app_id"),
            attachments.c.uploader_kind == sa.bindparam("kind"),
            attachments.c.uploader_id == sa.bindparam("uploader_id"),
        )


class MessageWriter:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH, on_commit: Callable[[], None] | None = None) -> None:
        self.db, self.max_batch, self.on_commit = db, max_batch, on_commit
        self.statements = _Statements(lock_rows=not db.is_sqlite)
        self._pending: list[tuple[NewMessage, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._sync_engine: sa.Engine | None = None
        if db.is_sqlite:
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-writer")
            self._sync_engine = sqlite_sync_engine(db.url)
        self.batches = 0
        self.written = 0

    async def append(self, item: NewMessage) -> Outcome:
        """Write one message (or find the one its client_msg_id already made) in the next batch."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
            items = [item for item, _ in batch]
            try:
                outcomes = await self.write(items)
            except Exception as exc:  # the database is gone: every sender of the batch learns it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self.batches += 1
            self.written += len(items)
            if self.on_commit is not None:
                self.on_commit()  # e.g. wake the search indexer
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def write(self, items: Sequence[NewMessage]) -> list[Outcome]:
        """One batch, committed together: an outcome per request, in order. Raises if the database fails."""
        if self._thread is not None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._thread, self._write_sqlite, items)
        try:
            return await self._write_batch_async(items)
        except IntegrityError:  # another node wrote the same client_msg_id meanwhile: one by one
            return [await self._write_one_async(item) for item in items]

    async def _write_batch_async(self, items: Sequence[NewMessage]) -> list[Outcome]:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                async with self.db.transaction() as tx:
                    return await tx.run_sync(self._append_all, items)
            except IntegrityError:
                raise
            except DBAPIError as exc:  # a deadlock victim (with another kind of transaction): nothing was kept, again
                if attempt == DEADLOCK_RETRIES or not is_retryable(exc):
                    raise
        raise AssertionError("unreachable")

    async def _write_one_async(self, item: NewMessage) -> Outcome:
        for attempt in range(2):
            try:
                async with self.db.transaction() as tx:
                    return (await tx.run_sync(self._append_all, [item]))[0]
            except IntegrityError:
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _write_sqlite(self, items: Sequence[NewMessage]) -> list[Outcome]:
        assert self._sync_engine is not None
        try:
            return self._in_transaction(items)
        except IntegrityError:
            return [self._in_transaction([item])[0] for item in items]

    def _in_transaction(self, items: Sequence[NewMessage]) -> list[Outcome]:
        assert self._sync_engine is not None
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(kefu_write=True)
            with conn.begin():
                return self._append_all(conn, items)

    def _append_all(self, conn: sa.Connection, items: Sequence[NewMessage]) -> list[Outcome]:
        if self.statements.lock_rows and len(items) > 1:
            conn.execute(self.statements.lock_all, {"sids": sorted({item.session_id for item in items})})
        return [self._append_one(conn, item) for item in items]

    def _append_one(self, conn: sa.Connection, item: NewMessage) -> Outcome:
        """Checks first, writes last: a refused item leaves nothing behind in the shared transaction."""
        s = self.statements
        row = conn.execute(s.conversation, {"sid": item.session_id}).first()
        if row is None:
            return Refused("missing", None)
        conv = conversation_from(row)
        if not item.expected.sender_fits(conv):
            return Refused("sender", conv)
        if item.client_msg_id is not None:
            params = {"sid": item.session_id, "sender_id": item.sender_id, "cmid": item.client_msg_id}
            existing = conn.execute(s.by_client_id, params).first()
            if existing is not None:
                found = message_from(existing)
                return Appended(found, conv, duplicate=True, attachment=self._attachment(conn, conv, item))
        if not item.expected.status_fits(conv):
            return Refused("status", conv)
        attachment = self._attachment(conn, conv, item)
        if item.attachment_id is not None and attachment is None:
            return Refused("attachment", conv)
        if item.sender == "agent":
            seq = int(conn.execute(s.bump_agent, {"sid": item.session_id, "at": item.created_at}).scalar_one())
        elif item.sender == "bot" and item.article_id is not None:
            seq = int(conn.execute(s.bump_answer, {"sid": item.session_id}).scalar_one())
        else:
            seq = int(conn.execute(s.bump, {"sid": item.session_id}).scalar_one())
        message = Message(
            message_id=new_id("m"),
            session_id=item.session_id,
            seq=seq,
            client_msg_id=item.client_msg_id,
            sender=item.sender,
            sender_id=item.sender_id,
            msg_type=item.msg_type,
            content=item.content,
            created_at=item.created_at,
            attachment_id=item.attachment_id,
            confidence=item.confidence,
            article_id=item.article_id,
        )
        conn.execute(
            s.insert,
            {
                "message_id": message.message_id,
                "session_id": message.session_id,
                "seq": seq,
                "client_msg_id": message.client_msg_id,
                "sender": message.sender,
                "sender_id": message.sender_id,
                "msg_type": message.msg_type,
                "content": message.content,
                "attachment_id": message.attachment_id,
                "confidence": message.confidence,
                "article_id": message.article_id,
                "created_at": message.created_at,
            },
        )
        if item.notify:  # the outbox: committed with the message or not at all
            data = {k: v for k, v in message_frame(message).items() if k != "type"}
            rows = delivery_rows(item.notify, conv.app_id, "message.created", conv.session_id, data, message.created_at)
            conn.execute(INSERT_DELIVERIES, rows)
        return Appended(message, conv, duplicate=False, attachment=attachment)

    def _attachment(self, conn: sa.Connection, conv: Conversation, item: NewMessage) -> Attachment | None:
        """The sender's own upload in the conversation's app, or None."""
        if item.attachment_id is None:
            return None
        params = {
            "aid": item.attachment_id,
            "app_id": conv.app_id,
            "kind": item.uploader_kind,
            "uploader_id": item.sender_id,
        }
        row = conn.execute(self.statements.attachment, params).first()
        return attachment_from(row) if row is not None else None

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._sync_engine is not None:
            self._sync_engine.dispose()
