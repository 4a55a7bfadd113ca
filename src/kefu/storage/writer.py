"""Group commit for messages: every send that arrives while a batch is being written goes into the next one.

One transaction (one fsync) per batch instead of per message. A send is acknowledged only when its
batch has committed.

The interface is plain data both ways: `write(batch)` takes `NewMessage` requests — the row to
write, what the conversation must be (`Expected`, values a service derived from its rules) and
the webhooks to tell — and gives back one `Appended` or `Refused` each. No service code runs
inside the transaction. A refused request writes nothing and does not disturb the others; if the
database itself refuses a batch, each of its requests is retried in a transaction of its own.

This is the one hot path in kefu, so it talks to the database drivers directly (sqlite3 on a thread
of its own, asyncpg on the event loop) with set-based statements, a fixed number per batch whatever
its size: building SQLAlchemy statements cost about six times what running them does (issue 15).
A batch, in one transaction:

1. reads all its conversations in one statement (PostgreSQL: `FOR UPDATE`, in `session_id` order,
   so batches of different nodes wait for each other instead of deadlocking; SQLite: the
   transaction began `IMMEDIATE`, which already holds the one write lock);
2. looks up every `client_msg_id` of the batch in one statement (a retry gets its stored message);
3. decides each request in Python (`_plan`): refusals, repeats within the batch, and the seqs,
   numbered on from each conversation's locked `last_seq` — gapless, since no other writer can
   take a seq of that conversation before this transaction ends;
4. writes one `UPDATE` of the conversations, one multi-row `INSERT` of the messages, and the
   webhook outbox rows, then commits.

Everything off this path (reads, admin, routing) stays on SQLAlchemy.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

import asyncpg

from kefu import errors
from kefu.domain.ids import new_id
from kefu.domain.models import Conversation, Message
from kefu.domain.records import message_frame
from kefu.storage.attachments import Attachment
from kefu.storage.engine import UNSTORABLE_TEXT, Database, sqlite_sync_engine
from kefu.storage.rows import utc, utc_required
from kefu.storage.webhooks import delivery_rows

MAX_BATCH = 256
DEADLOCK_RETRIES = 3
RETRYABLE = frozenset({"40P01", "40001"})  # PostgreSQL: deadlock victim, serialization failure


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
    """The conversation as the batch read it (its participants and status then; its `last_seq` before the batch)."""
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
ClientKey = tuple[str, str, str]  # session_id, sender_id, client_msg_id: unique among messages

# --- the batch, decided in Python ---------------------------------------------------------------------------

CONVERSATION_COLUMNS = (
    "session_id, app_id, visitor_id, status, group_name, agent_id, min_level, queue_priority, context, channel,"
    " last_seq, created_at, queued_at, assigned_at, closed_at, resolution, handoff_reason, transfer_note,"
    " transferred_from"
)
MESSAGE_COLUMNS = (
    "message_id, session_id, seq, client_msg_id, sender, sender_id, msg_type, content, attachment_id, confidence,"
    " article_id, created_at"
)
ATTACHMENT_COLUMNS = (
    "attachment_id, app_id, uploader_kind, uploader_id, name, size, content_type, storage_key, thumbnail_key,"
    " created_at"
)
DELIVERY_COLUMNS = (
    "delivery_id",
    "webhook_id",
    "app_id",
    "event",
    "ordering_key",
    "body",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
)

Timestamp = Callable[[Any], dt.datetime | None]


def _conversation(r: Sequence[Any], ts: Timestamp) -> Conversation:
    return Conversation(
        session_id=r[0],
        app_id=r[1],
        visitor_id=r[2],
        status=r[3],
        group=r[4],
        agent_id=r[5],
        min_level=r[6],
        queue_priority=r[7],
        context=r[8],
        channel=r[9],
        last_seq=r[10],
        created_at=utc_required(ts(r[11]) or dt.datetime.min),
        queued_at=utc(ts(r[12])),
        assigned_at=utc(ts(r[13])),
        closed_at=utc(ts(r[14])),
        resolution=r[15],
        handoff_reason=r[16],
        transfer_note=r[17],
        transferred_from=r[18],
    )


def _message(r: Sequence[Any], ts: Timestamp) -> Message:
    return Message(
        message_id=r[0],
        session_id=r[1],
        seq=r[2],
        client_msg_id=r[3],
        sender=r[4],
        sender_id=r[5],
        msg_type=r[6],
        content=r[7],
        attachment_id=r[8],
        confidence=r[9],
        article_id=r[10],
        created_at=utc_required(ts(r[11]) or dt.datetime.min),
    )


def _attachment(r: Sequence[Any], ts: Timestamp) -> Attachment:
    return Attachment(
        attachment_id=r[0],
        app_id=r[1],
        uploader_kind=r[2],
        uploader_id=r[3],
        name=r[4],
        size=int(r[5]),
        content_type=r[6],
        storage_key=r[7],
        thumbnail_key=r[8],
        created_at=utc_required(ts(r[9]) or dt.datetime.min),
    )


def client_key(item: NewMessage) -> ClientKey | None:
    """What makes a request a retry of a stored message (as SQL compares it: a NULL sender matches nothing)."""
    if item.client_msg_id is None or item.sender_id is None:
        return None
    return (item.session_id, item.sender_id, item.client_msg_id)


@dataclass(slots=True)
class _Bump:
    """What a batch changes of one conversation's row."""

    last_seq: int
    first_response_at: dt.datetime | None = None
    bot_answered: bool = False


@dataclass(slots=True)
class _Plan:
    outcomes: list[Outcome] = field(default_factory=list)
    bumps: dict[str, _Bump] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    deliveries: list[dict[str, Any]] = field(default_factory=list)


def _plan(
    items: Sequence[NewMessage],
    conversations: dict[str, Conversation],
    stored: dict[ClientKey, Message],
    files: dict[str, Attachment],
) -> _Plan:
    """Each request's outcome and the rows the batch writes, from what the batch read (no I/O).

    Checks first, writes last: a refused request adds nothing. Seqs run on from each conversation's
    `last_seq` in request order; a request repeating an earlier one of the same batch gets its message.
    """
    plan = _Plan()
    written: dict[ClientKey, Appended] = {}
    for item in items:
        conv = conversations.get(item.session_id)
        if conv is None:
            plan.outcomes.append(Refused("missing", None))
            continue
        if not item.expected.sender_fits(conv):
            plan.outcomes.append(Refused("sender", conv))
            continue
        attachment = _own_upload(item, conv, files)
        key = client_key(item)
        if key is not None:
            earlier = written.get(key)
            found = earlier.message if earlier is not None else stored.get(key)
            if found is not None:
                plan.outcomes.append(Appended(found, conv, duplicate=True, attachment=attachment))
                continue
        if not item.expected.status_fits(conv):
            plan.outcomes.append(Refused("status", conv))
            continue
        if item.attachment_id is not None and attachment is None:
            plan.outcomes.append(Refused("attachment", conv))
            continue
        bump = plan.bumps.get(item.session_id)
        if bump is None:
            bump = plan.bumps[item.session_id] = _Bump(conv.last_seq)
        bump.last_seq += 1
        # The reporting figures a message sets (protocol §5): the first agent reply, and whether the bot answered.
        if item.sender == "agent" and bump.first_response_at is None:
            bump.first_response_at = item.created_at
        if item.sender == "bot" and item.article_id is not None:
            bump.bot_answered = True
        message = Message(
            message_id=new_id("m"),
            session_id=item.session_id,
            seq=bump.last_seq,
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
        plan.messages.append(message)
        if item.notify:  # the outbox: committed with the message or not at all
            data = {k: v for k, v in message_frame(message).items() if k != "type"}
            plan.deliveries += delivery_rows(
                item.notify, conv.app_id, "message.created", conv.session_id, data, message.created_at
            )
        appended = Appended(message, conv, duplicate=False, attachment=attachment)
        if key is not None:
            written[key] = appended
        plan.outcomes.append(appended)
    return plan


def _own_upload(item: NewMessage, conv: Conversation, files: dict[str, Attachment]) -> Attachment | None:
    """The sender's own upload in the conversation's app, or None."""
    if item.attachment_id is None:
        return None
    found = files.get(item.attachment_id)
    if found is None or found.app_id != conv.app_id:
        return None
    if found.uploader_kind != item.uploader_kind or found.uploader_id != item.sender_id:
        return None
    return found


def _message_row(m: Message, created_at: Any) -> tuple[Any, ...]:
    return (
        m.message_id,
        m.session_id,
        m.seq,
        m.client_msg_id,
        m.sender,
        m.sender_id,
        m.msg_type,
        m.content,
        m.attachment_id,
        m.confidence,
        m.article_id,
        created_at,
    )


# --- SQLite: the sqlite3 driver, on the writer's own thread ---------------------------------------------------


def sqlite_time(value: dt.datetime | None) -> str | None:
    """A timestamp as SQLAlchemy stores it in SQLite (naive UTC text), so both read each other's rows."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%d %H:%M:%S.%f}"


def _from_sqlite_time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def _marks(n: int, width: int = 1) -> str:
    one = "(" + ",".join("?" * width) + ")" if width > 1 else "?"
    return ",".join([one] * n)


class _SqliteBatches:
    """The batch on a raw sqlite3 connection (the writer thread's only one): BEGIN IMMEDIATE … COMMIT."""

    ROWS_PER_INSERT = 256  # 12 values a row: far below SQLite's 32,766 bound variables

    def __init__(self, url: str) -> None:
        # The pool's connection gets the same pragmas (WAL, synchronous=FULL, busy_timeout) as every other.
        self._engine = sqlite_sync_engine(url)
        self._pooled = self._engine.raw_connection()
        conn = self._pooled.driver_connection
        assert isinstance(conn, sqlite3.Connection)
        self.conn = conn

    def write(self, items: Sequence[NewMessage]) -> list[Outcome]:
        try:
            return self._in_transaction(items)
        except sqlite3.IntegrityError:
            return [self._in_transaction([item])[0] for item in items]

    def _in_transaction(self, items: Sequence[NewMessage]) -> list[Outcome]:
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = self._append_all(conn, items)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return outcomes

    def _append_all(self, conn: sqlite3.Connection, items: Sequence[NewMessage]) -> list[Outcome]:
        sids = list(dict.fromkeys(item.session_id for item in items))
        rows = conn.execute(
            f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE session_id IN ({_marks(len(sids))})",  # noqa: S608
            sids,
        )
        conversations = {r[0]: _conversation(r, _from_sqlite_time) for r in rows}
        keys = list(dict.fromkeys(k for k in map(client_key, items) if k is not None))
        stored: dict[ClientKey, Message] = {}
        if keys:
            # The batch's keys as a table, each looked up in the unique index (session_id, sender_id, client_msg_id).
            found = conn.execute(
                f"WITH k(sid, snd, cmid) AS (VALUES {_marks(len(keys), 3)})"  # noqa: S608
                f" SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))} FROM k"
                " JOIN messages m ON m.session_id = k.sid AND m.sender_id = k.snd AND m.client_msg_id = k.cmid",
                [v for key in keys for v in key],
            )
            for r in found:
                message = _message(r, _from_sqlite_time)
                assert message.sender_id is not None and message.client_msg_id is not None
                stored[(message.session_id, message.sender_id, message.client_msg_id)] = message
        files = self._attachments(conn, items)
        plan = _plan(items, conversations, stored, files)
        if plan.bumps:
            conn.executemany(
                "UPDATE conversations SET last_seq = ?, first_response_at = COALESCE(first_response_at, ?),"
                " bot_answered = (bot_answered OR ?) WHERE session_id = ?",
                [(b.last_seq, sqlite_time(b.first_response_at), b.bot_answered, sid) for sid, b in plan.bumps.items()],
            )
        step = self.ROWS_PER_INSERT
        for start in range(0, len(plan.messages), step):
            chunk = plan.messages[start : start + step]
            conn.execute(
                f"INSERT INTO messages ({MESSAGE_COLUMNS}) VALUES {_marks(len(chunk), 12)}",  # noqa: S608
                [v for m in chunk for v in _message_row(m, sqlite_time(m.created_at))],
            )
        if plan.deliveries:
            conn.executemany(
                f"INSERT INTO webhook_deliveries ({', '.join(DELIVERY_COLUMNS)})"  # noqa: S608
                f" VALUES ({_marks(len(DELIVERY_COLUMNS))})",
                [_delivery_row(d, sqlite_time) for d in plan.deliveries],
            )
        return plan.outcomes

    @staticmethod
    def _attachments(conn: sqlite3.Connection, items: Sequence[NewMessage]) -> dict[str, Attachment]:
        ids = list(dict.fromkeys(item.attachment_id for item in items if item.attachment_id is not None))
        if not ids:
            return {}
        rows = conn.execute(
            f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE attachment_id IN ({_marks(len(ids))})",  # noqa: S608
            ids,
        )
        return {r[0]: _attachment(r, _from_sqlite_time) for r in rows}

    def close(self) -> None:
        self._pooled.close()
        self._engine.dispose()


def _delivery_row(d: dict[str, Any], time: Callable[[dt.datetime], Any]) -> tuple[Any, ...]:
    return tuple(time(d[c]) if c in ("next_attempt_at", "created_at") else d[c] for c in DELIVERY_COLUMNS)


# --- PostgreSQL: asyncpg, on a connection of the engine's pool -------------------------------------------------

PG_CONVERSATIONS = (
    f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE session_id = ANY($1::varchar[])"  # noqa: S608
    " ORDER BY session_id FOR UPDATE"
)
PG_STORED = (
    f"SELECT {', '.join('m.' + c.strip() for c in MESSAGE_COLUMNS.split(','))}"  # noqa: S608
    " FROM unnest($1::varchar[], $2::varchar[], $3::varchar[]) AS k(sid, snd, cmid)"
    " JOIN messages m ON m.session_id = k.sid AND m.sender_id = k.snd AND m.client_msg_id = k.cmid"
)
PG_ATTACHMENTS = f"SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE attachment_id = ANY($1::varchar[])"  # noqa: S608
PG_BUMP = (
    "UPDATE conversations AS c SET last_seq = u.last_seq,"
    " first_response_at = COALESCE(c.first_response_at, u.first_response_at),"
    " bot_answered = c.bot_answered OR u.bot_answered"
    " FROM unnest($1::varchar[], $2::int[], $3::timestamptz[], $4::bool[])"
    " AS u(session_id, last_seq, first_response_at, bot_answered)"
    " WHERE c.session_id = u.session_id"
)
PG_INSERT = (
    f"INSERT INTO messages ({MESSAGE_COLUMNS}) SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::int[],"  # noqa: S608
    " $4::varchar[], $5::varchar[], $6::varchar[], $7::varchar[], $8::text[], $9::varchar[], $10::float8[],"
    " $11::varchar[], $12::timestamptz[])"
)
PG_DELIVERIES = (
    f"INSERT INTO webhook_deliveries ({', '.join(DELIVERY_COLUMNS)})"  # noqa: S608
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(DELIVERY_COLUMNS) + 1))})"
)


def _same(value: Any) -> Any:
    return value


def _columns(rows: Iterable[tuple[Any, ...]], width: int) -> list[list[Any]]:
    """Rows as one list per column: the arrays `unnest` turns back into rows."""
    columns: list[list[Any]] = [[] for _ in range(width)]
    for row in rows:
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


class _PostgresBatches:
    """The batch on the asyncpg connection under one of the engine's pooled connections (so the pool's sizing
    in docs/deployment.md still counts every connection a node holds)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def write(self, items: Sequence[NewMessage]) -> list[Outcome]:
        try:
            return await self._retrying(items)
        except asyncpg.UniqueViolationError:  # another node wrote the same client_msg_id meanwhile: one by one
            return [(await self._retrying([item]))[0] for item in items]

    async def _retrying(self, items: Sequence[NewMessage]) -> list[Outcome]:
        for attempt in range(DEADLOCK_RETRIES + 1):
            try:
                return await self._in_transaction(items)
            except asyncpg.PostgresError as exc:
                code = getattr(exc, "sqlstate", None)
                if code in UNSTORABLE_TEXT:
                    raise errors.BadRequest("Text may not contain NUL characters (\\u0000).") from exc
                # A deadlock victim (with another kind of transaction): nothing was kept, again.
                if code not in RETRYABLE or attempt == DEADLOCK_RETRIES:
                    raise
        raise AssertionError("unreachable")

    async def _in_transaction(self, items: Sequence[NewMessage]) -> list[Outcome]:
        # Losing the database is `Unavailable` (a 503 / `unavailable` frame: retry), logged once as an outage.
        with self.db.reporting_outages():
            async with self.db.engine.connect() as pooled:
                raw = await pooled.get_raw_connection()
                conn = raw.driver_connection
                assert isinstance(conn, asyncpg.Connection)
                try:
                    async with conn.transaction():
                        return await self._append_all(conn, items)
                except (asyncpg.InterfaceError, asyncpg.PostgresConnectionError, OSError):
                    with contextlib.suppress(Exception):  # the connection broke: the pool must not hand it out again
                        await pooled.invalidate()
                    raise

    async def _append_all(self, conn: asyncpg.Connection, items: Sequence[NewMessage]) -> list[Outcome]:
        sids = sorted({item.session_id for item in items})
        conversations = {r[0]: _conversation(r, _same) for r in await conn.fetch(PG_CONVERSATIONS, sids)}
        keys = list(dict.fromkeys(k for k in map(client_key, items) if k is not None))
        stored: dict[ClientKey, Message] = {}
        if keys:
            for r in await conn.fetch(PG_STORED, *_columns(keys, 3)):
                message = _message(r, _same)
                assert message.sender_id is not None and message.client_msg_id is not None
                stored[(message.session_id, message.sender_id, message.client_msg_id)] = message
        files: dict[str, Attachment] = {}
        ids = list(dict.fromkeys(item.attachment_id for item in items if item.attachment_id is not None))
        if ids:
            files = {r[0]: _attachment(r, _same) for r in await conn.fetch(PG_ATTACHMENTS, ids)}
        plan = _plan(items, conversations, stored, files)
        if plan.bumps:
            bumps = [(sid, b.last_seq, b.first_response_at, b.bot_answered) for sid, b in plan.bumps.items()]
            await conn.execute(PG_BUMP, *_columns(bumps, 4))
        if plan.messages:
            await conn.execute(PG_INSERT, *_columns((_message_row(m, m.created_at) for m in plan.messages), 12))
        if plan.deliveries:
            await conn.executemany(PG_DELIVERIES, [_delivery_row(d, _same) for d in plan.deliveries])
        return plan.outcomes


# --- the group commit ---------------------------------------------------------------------------------------


class MessageWriter:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH, on_commit: Callable[[], None] | None = None) -> None:
        self.db, self.max_batch, self.on_commit = db, max_batch, on_commit
        self._pending: list[tuple[NewMessage, asyncio.Future[Outcome]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._sqlite: _SqliteBatches | None = None
        self._postgres: _PostgresBatches | None = None
        if db.is_sqlite:
            # One thread, one connection (opened by the first write): sqlite3 calls block, and SQLite has one
            # writer anyway.
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kefu-writer")
        else:
            self._postgres = _PostgresBatches(db)
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
                self.on_commit()  # e.g. tell the search indexer there is more to index
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def write(self, items: Sequence[NewMessage]) -> list[Outcome]:
        """One batch, committed together: an outcome per request, in order. Raises if the database fails."""
        if not items:
            return []
        if self._thread is not None:
            return await asyncio.get_running_loop().run_in_executor(self._thread, self._write_sqlite, items)
        assert self._postgres is not None
        return await self._postgres.write(items)

    def _write_sqlite(self, items: Sequence[NewMessage]) -> list[Outcome]:
        """On the writer's one thread, so the connection is opened once, by the first write."""
        if self._sqlite is None:
            self._sqlite = _SqliteBatches(self.db.url)
        return self._sqlite.write(items)

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        if self._thread is not None:
            if self._sqlite is not None:
                await asyncio.get_running_loop().run_in_executor(self._thread, self._sqlite.close)
            self._thread.shutdown(wait=True)
