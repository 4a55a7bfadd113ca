"""Conversation use cases: open, send, sync, typing, read, close, request a human, transfer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlparse

from kefu import errors
from kefu.config import Settings
from kefu.domain.clock import Clock
from kefu.domain.conversation import MsgType, Sender, Status, can_move, resolution_on_close
from kefu.domain.models import Actor, Conversation, Message
from kefu.domain.records import conversation_frame, conversation_record, message_frame, visitor_panel
from kefu.domain.routing import DEFAULT_GROUP, choose_target
from kefu.services.events import Publisher, agent_topic, visitor_topic
from kefu.services.routing import RoutingService
from kefu.services.uploads import attachment_record
from kefu.storage import Database, Tx
from kefu.storage import agents as agent_store
from kefu.storage import conversations as conversation_store
from kefu.storage import gaps as gap_store
from kefu.storage import notes as note_store
from kefu.storage import rules as rule_store
from kefu.storage import visitors as visitor_store
from kefu.storage.attachments import attachments_by_id
from kefu.storage.writer import Appended, Expected, MessageWriter, NewMessage, Outcome, Refused
from kefu.webhooks.service import WebhookService

CHANNELS = ("web", "mobile", "miniprogram")
OPEN = frozenset({Status.BOT, Status.QUEUED, Status.ACTIVE})


@dataclass(frozen=True, slots=True)
class SendResult:
    message: Message
    duplicate: bool


def check_content(msg_type: str, content: str, attachment_id: str | None, max_chars: int) -> None:
    if msg_type not in {t.value for t in MsgType} or msg_type == MsgType.EVENT:
        raise errors.InvalidFrame(f"msg_type must be text, image, file or link, not '{msg_type}'.")
    if len(content) > max_chars:
        raise errors.MessageTooLong(f"A message holds at most {max_chars} characters.")
    if msg_type == MsgType.TEXT and not content.strip():
        raise errors.InvalidFrame("A text message needs some content.")
    if msg_type == MsgType.LINK:
        parsed = urlparse(content.strip())
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise errors.InvalidFrame("A link message's content must be an http(s) URL.")
    if msg_type in (MsgType.IMAGE, MsgType.FILE) and not attachment_id:
        raise errors.InvalidFrame(f"A {msg_type} message needs an attachment_id from POST /api/v1/uploads.")


def check_visible(actor: Actor, conv: Conversation) -> None:
    """Another app's conversation, or another visitor's, does not exist as far as the caller can tell."""
    if conv.app_id != actor.app_id or (actor.kind == "visitor" and conv.visitor_id != actor.actor_id):
        raise errors.ConversationNotFound(f"No conversation '{conv.session_id}'.")


def check_participant(actor: Actor, conv: Conversation) -> None:
    """Only the visitor and the assigned agent (or an admin) write into a conversation."""
    if actor.kind == "agent" and conv.agent_id != actor.actor_id and not actor.is_admin:
        raise errors.Forbidden(f"Conversation '{conv.session_id}' is not assigned to you.")


def expected_of(actor: Actor) -> Expected:
    """`check_visible` and `check_participant` as values, for the message writer to compare inside its
    transaction; and the conversation must be open (a retry of a stored message still gets its ack)."""
    return Expected(
        app_id=actor.app_id,
        visitor_id=actor.actor_id if actor.kind == "visitor" else None,
        agent_id=actor.actor_id if actor.kind == "agent" and not actor.is_admin else None,
        statuses=OPEN,
    )


class ConversationBot(Protocol):
    """What a conversation needs of its bot (kefu.services.bot_flow.BotFlow)."""

    async def starts_with_bot(self, app_id: str) -> bool: ...

    def on_visitor_message(self, conv: Conversation, message: Message) -> None: ...

    async def hand_off(self, conv: Conversation, reason: str) -> str | None: ...

    async def feedback(self, actor: Actor, session_id: str, seq: int, helpful: bool) -> None: ...

    async def stop(self) -> None: ...


class ChatService:
    def __init__(
        self,
        db: Database,
        writer: MessageWriter,
        webhooks: WebhookService,
        publisher: Publisher,
        routing: RoutingService,
        clock: Clock,
        settings: Settings,
        bot_flow: Callable[[ChatService], ConversationBot],
    ) -> None:
        """`bot_flow` makes this service's bot, which posts and hands off through the service (a cycle made once)."""
        self.db, self.writer, self.webhooks, self.publisher, self.routing = db, writer, webhooks, publisher, routing
        self.clock, self.settings = clock, settings
        self.bot_flow = bot_flow(self)

    # --- access -------------------------------------------------------------------------------

    async def access_conversation(self, tx: Tx, actor: Actor, session_id: str, lock: bool = False) -> Conversation:
        """The conversation if `actor` may see it: its visitor, or an agent/API key of its app."""
        conv = await conversation_store.get_conversation(tx, session_id, lock=lock)
        if conv is None:
            raise errors.ConversationNotFound(f"No conversation '{session_id}'.")
        check_visible(actor, conv)
        return conv

    # --- open ---------------------------------------------------------------------------------

    async def open_chat(
        self, actor: Actor, context: str | None, group: str | None, channel: str | None
    ) -> Conversation:
        """A new conversation for a visitor, routed by the app's rules, then offered to a free agent."""
        if actor.kind != "visitor":
            raise errors.Forbidden("Only a visitor opens a chat.")
        channel = channel or "web"
        if channel not in CHANNELS:
            raise errors.InvalidFrame(f"channel must be one of {', '.join(CHANNELS)}.")
        if context is not None and len(context) > self.settings.max_context_chars:
            raise errors.MessageTooLong(f"context holds at most {self.settings.max_context_chars} characters.")
        now = self.clock.now()
        with_bot = await self.bot_flow.starts_with_bot(actor.app_id)
        async with self.db.transaction() as tx:
            visitor = await visitor_store.get_visitor(tx, actor.actor_id)
            if visitor is None:
                raise errors.Unauthorized("This visitor no longer exists.")
            if group is not None and group not in await agent_store.list_groups(tx, actor.app_id):
                raise errors.GroupNotFound(f"The app has no group '{group}'.")
            rules = await rule_store.list_rules(tx, actor.app_id)
            target = choose_target(rules, visitor.tags, {"channel": channel, "group": group or DEFAULT_GROUP})
            session_id = await conversation_store.next_session_id(tx, now)
            values: dict[str, Any] = {
                "session_id": session_id,
                "app_id": actor.app_id,
                "visitor_id": visitor.visitor_id,
                "status": (Status.BOT if with_bot else Status.QUEUED).value,
                "group_name": target.group,
                "agent_id": None,
                "min_level": target.min_level,
                "queue_priority": target.queue_priority,
                "context": context,
                "channel": channel,
                "last_seq": 0,
                "created_at": now,
                "queued_at": None if with_bot else now,
                "first_queued_at": None if with_bot else now,
            }
            await conversation_store.insert_conversation(tx, values)
            conv = await conversation_store.get_conversation(tx, session_id)
            assert conv is not None
            await self.announce(tx, conv, "conversation.created", *(() if with_bot else ("conversation.queued",)))
        await self.publisher.publish([visitor_topic(conv.visitor_id)], conversation_frame(conversation_record(conv)))
        if not with_bot:
            await self.routing.assign_waiting(conv.app_id)
        return conv

    # --- messages -----------------------------------------------------------------------------

    async def send(
        self,
        actor: Actor,
        session_id: str,
        client_msg_id: str,
        msg_type: str,
        content: str,
        attachment_id: str | None = None,
        on_stored: Callable[[SendResult], None] | None = None,
    ) -> SendResult:
        """Store a message (idempotent on client_msg_id) and fan it out; durable before this returns.

        `on_stored` runs once the message is durable and before the fan-out: the sending connection acks there,
        so its `ack` leaves before any copy of the message (protocol §3: the sender may get only its ack).
        """
        check_content(msg_type, content, attachment_id, self.settings.max_message_chars)
        sender = Sender.USER if actor.kind == "visitor" else Sender.AGENT
        outcome = await self.writer.append(
            NewMessage(
                session_id=session_id,
                sender=sender.value,
                sender_id=actor.actor_id,
                msg_type=msg_type,
                content=content,
                created_at=self.clock.now(),
                expected=expected_of(actor),
                client_msg_id=client_msg_id,
                attachment_id=attachment_id,
                uploader_kind=actor.kind,
                notify=self.webhooks.listeners(actor.app_id, "message.created"),
            )
        )
        appended = self.check_written(actor, session_id, attachment_id, outcome)
        result = SendResult(appended.message, appended.duplicate)
        if on_stored is not None:
            on_stored(result)
        if not appended.duplicate:
            conv = appended.conversation
            attachment = attachment_record(appended.attachment) if appended.attachment else None
            frame = message_frame(appended.message, attachment)
            await self.publisher.to_participants(conv.visitor_id, [conv.agent_id], frame)
            if conv.status == Status.BOT and sender is Sender.USER:
                self.bot_flow.on_visitor_message(conv, appended.message)
        return result

    def check_written(self, actor: Actor, session_id: str, attachment_id: str | None, outcome: Outcome) -> Appended:
        """The message the writer stored for `actor`, or the error that tells them why it refused it."""
        if isinstance(outcome, Appended):
            return outcome
        conv = outcome.conversation
        if conv is None:
            raise errors.ConversationNotFound(f"No conversation '{session_id}'.")
        if outcome.reason == "status":
            raise errors.ConversationClosed(f"Conversation '{session_id}' is closed.")
        if outcome.reason == "attachment":
            raise errors.AttachmentNotFound(f"No upload '{attachment_id}' of yours.")
        check_visible(actor, conv)
        check_participant(actor, conv)
        raise RuntimeError(f"the writer refused ({outcome.reason}) a message the checks allow")

    async def post(
        self,
        conv: Conversation,
        sender: Sender,
        content: str,
        confidence: float | None = None,
        article_id: str | None = None,
        allow_status: tuple[Status, ...] = (Status.BOT,),
    ) -> Message | None:
        """A message of kefu's own (the bot, a system notice), written only while the chat is in `allow_status`."""
        outcome = await self.writer.append(
            NewMessage(
                session_id=conv.session_id,
                sender=sender.value,
                sender_id=None,
                msg_type="text",
                content=content,
                created_at=self.clock.now(),
                expected=Expected(statuses=frozenset(allow_status)),
                confidence=confidence,
                article_id=article_id,
                notify=self.webhooks.listeners(conv.app_id, "message.created"),
            )
        )
        if isinstance(outcome, Refused):
            if outcome.reason == "status":
                return None  # the conversation moved on
            raise errors.ConversationNotFound(f"No conversation '{conv.session_id}'.")
        current = outcome.conversation
        await self.publisher.to_participants(current.visitor_id, [current.agent_id], message_frame(outcome.message))
        return outcome.message

    async def frames(self, messages: list[Message]) -> list[dict[str, Any]]:
        """`message` frames of stored messages, with their attachments (one query for all of them)."""
        ids = [m.attachment_id for m in messages if m.attachment_id]
        files: dict[str, Any] = {}
        if ids:
            async with self.db.read() as tx:
                files = await attachments_by_id(tx, ids)
        return [
            message_frame(m, attachment_record(files[m.attachment_id]) if m.attachment_id in files else None)
            for m in messages
        ]

    async def sync(self, actor: Actor, session_id: str, after_seq: int) -> tuple[list[Message], int]:
        """Every message after `after_seq`, and the last seq they reach."""
        async with self.db.read() as tx:
            conv = await self.access_conversation(tx, actor, session_id)
            messages = await conversation_store.messages_after(tx, session_id, max(after_seq, 0), conv.last_seq)
        return messages, conv.last_seq

    async def profiles(self, convs: list[Conversation]) -> dict[str, dict[str, Any]]:
        """For an agent's list: each conversation's visitor, tags, client tags, context and channel (as `assigned`)."""
        views: dict[str, dict[str, Any]] = {}
        async with self.db.read() as tx:
            for conv in convs:
                views[conv.session_id] = visitor_panel(conv, await visitor_store.get_visitor(tx, conv.visitor_id))
        return views

    async def history(
        self, actor: Actor, session_id: str, before_seq: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page of `message` frames just below `before_seq` (the newest page when None), and whether more remain."""
        async with self.db.read() as tx:
            await self.access_conversation(tx, actor, session_id)
            page, more = await conversation_store.messages_before(tx, session_id, before_seq, limit)
        return await self.frames(page), more

    async def missing(self, actor: Actor, session_id: str, after_seq: int, before_seq: int) -> list[Message]:
        """The messages strictly between two seqs (a connection filling a gap in what pubsub brought)."""
        async with self.db.read() as tx:
            await self.access_conversation(tx, actor, session_id)
            return await conversation_store.messages_after(tx, session_id, after_seq, before_seq - 1)

    async def signal(
        self, actor: Actor, session_id: str, kind: str, seq: int | None = None, origin: str | None = None
    ) -> None:
        """`typing` and `read`: passed to the other participants (and, for read, the reader's other devices).

        `origin` names the connection that sent it, which does not get its own signal back.
        """
        async with self.db.read() as tx:
            conv = await self.access_conversation(tx, actor, session_id)
        check_participant(actor, conv)
        sender = Sender.USER if actor.kind == "visitor" else Sender.AGENT
        frame: dict[str, Any] = {
            "type": kind,
            "session_id": session_id,
            "sender": sender.value,
            "sender_id": actor.actor_id,
            "_origin": origin,
        }
        if kind == "read":
            if seq is None or seq < 0 or seq > conv.last_seq:
                raise errors.InvalidFrame(f"read seq must be between 0 and {conv.last_seq}.")
            frame["seq"] = seq
            await self.publisher.to_participants(conv.visitor_id, [conv.agent_id], frame)
        elif actor.kind == "visitor":
            await self.publisher.publish([agent_topic(conv.agent_id)] if conv.agent_id else [], frame)
        else:
            await self.publisher.publish([visitor_topic(conv.visitor_id)], frame)

    # --- lifecycle ----------------------------------------------------------------------------

    async def close(self, actor: Actor, session_id: str) -> Conversation:
        """Close a conversation (visitor, assigned agent or admin); closing twice changes nothing."""
        now = self.clock.now()
        async with self.db.transaction() as tx:
            conv = await self.access_conversation(tx, actor, session_id, lock=True)
            check_participant(actor, conv)
            if conv.status == Status.CLOSED:
                return conv
            resolution = resolution_on_close(Status(conv.status), conv.agent_id is not None)
            values = {"status": Status.CLOSED.value, "closed_at": now, "resolution": resolution.value}
            await conversation_store.update_conversation(tx, session_id, values)
            closed = dataclasses.replace(conv, status=Status.CLOSED.value, closed_at=now, resolution=resolution.value)
            agent = await agent_store.get_agent(tx, conv.agent_id) if conv.agent_id else None
            await self.announce(tx, closed, "conversation.closed")
        self.routing.forget(session_id)
        record = conversation_record(closed, agent.name if agent else None)
        await self.publisher.to_participants(conv.visitor_id, [conv.agent_id], conversation_frame(record))
        await self.routing.assign_waiting(conv.app_id)
        return closed

    async def request_human(self, actor: Actor, session_id: str) -> None:
        """The visitor asks for a person: a bot conversation moves to the queue; one with people stays as it is."""
        async with self.db.read() as tx:
            conv = await self.access_conversation(tx, actor, session_id)
        if conv.status == Status.CLOSED:
            raise errors.ConversationClosed(f"Conversation '{session_id}' is closed.")
        if conv.status != Status.BOT:
            return
        await self.bot_flow.hand_off(conv, "user_request")

    async def hand_off(self, session_id: str, reason: str, gap: gap_store.Gap | None = None) -> Conversation | None:
        """Move a conversation from the bot to the queue, once, with the reason; None if it was not with the bot.

        `gap`: the question the bot could not serve, recorded (protocol §11) in the handoff's transaction.
        """
        now = self.clock.now()
        async with self.db.transaction() as tx:
            conv = await conversation_store.get_conversation(tx, session_id, lock=True)
            if conv is None or conv.status != Status.BOT:
                return None
            values = {"status": Status.QUEUED.value, "queued_at": now, "handoff_reason": reason}
            await conversation_store.update_conversation(tx, session_id, values)
            await conversation_store.record_first(tx, session_id, "first_queued_at", now)
            if gap is not None:
                await gap_store.record_gap(tx, gap)
            conv = dataclasses.replace(conv, status=Status.QUEUED.value, queued_at=now, handoff_reason=reason)
            await self.announce(tx, conv, "conversation.handoff", "conversation.queued")
        await self.publisher.to_participants(conv.visitor_id, [], conversation_frame(conversation_record(conv)))
        await self.routing.assign_waiting(conv.app_id)
        return conv

    async def transfer(
        self, actor: Actor, session_id: str, to_agent_id: str | None, to_group: str | None, note: str | None
    ) -> Conversation:
        """Hand an active chat to another agent (who must have a free slot) or back to a group's queue."""
        if actor.kind != "agent":
            raise errors.Forbidden("Only an agent transfers a chat.")
        if (to_agent_id is None) == (to_group is None):
            raise errors.InvalidFrame("transfer takes exactly one of to_agent_id and to_group.")
        if note is not None and len(note) > self.settings.max_message_chars:
            raise errors.MessageTooLong(f"A note holds at most {self.settings.max_message_chars} characters.")
        now = self.clock.now()
        async with self.db.transaction() as tx:
            # Before the conversation's row: the routing lock guards the target agent's capacity,
            # and presence expiry takes it before the rows of the chats it requeues.
            await agent_store.lock_routing(tx, actor.app_id)
            conv = await self.access_conversation(tx, actor, session_id, lock=True)
            check_participant(actor, conv)
            if not can_move(Status(conv.status), Status.ACTIVE) or conv.status != Status.ACTIVE:
                raise errors.Conflict(f"Only an active chat can be transferred; this one is {conv.status}.")
            if to_agent_id is not None:
                if to_agent_id == conv.agent_id:
                    raise errors.Conflict("The conversation is already assigned to that agent.")
                target = await agent_store.get_agent(tx, to_agent_id)
                if target is None or target.app_id != conv.app_id:
                    raise errors.AgentNotFound(f"No agent '{to_agent_id}'.")
                load = await agent_store.load_of(tx, to_agent_id)
                if target.status != "online" or load >= target.max_concurrent:
                    raise errors.Conflict(f"Agent '{target.name}' is not online with a free slot.")
                values: dict[str, Any] = {"agent_id": to_agent_id, "assigned_at": now}
                values |= {"transfer_note": note, "transferred_from": actor.actor_id}
            else:
                assert to_group is not None
                if to_group not in await agent_store.list_groups(tx, conv.app_id):
                    raise errors.GroupNotFound(f"The app has no group '{to_group}'.")
                values = {
                    "status": Status.QUEUED.value,
                    "agent_id": None,
                    "group_name": to_group,
                    "min_level": 0,
                    "queued_at": now,
                    "transfer_note": note,
                    "transferred_from": actor.actor_id,
                }
            await conversation_store.update_conversation(tx, session_id, values)
            if note:
                await note_store.add(tx, conv.app_id, session_id, actor.actor_id, note, "transfer", now)
            moved = await conversation_store.get_conversation(tx, session_id)
            assert moved is not None
            queued = ("conversation.queued",) if moved.agent_id is None else ()
            await self.announce(tx, moved, "conversation.transferred", *queued)
        previous = conv.agent_id
        if moved.agent_id is not None:
            record, assigned = await self.routing.assignment_notice(moved)
            await self.publisher.to_participants(
                moved.visitor_id, [previous, moved.agent_id], conversation_frame(record)
            )
            await self.publisher.publish([agent_topic(moved.agent_id)], assigned)
        else:
            record = conversation_record(moved)
            await self.publisher.to_participants(moved.visitor_id, [previous], conversation_frame(record))
        await self.routing.assign_waiting(conv.app_id)
        return moved

    async def announce(self, tx: Tx, conv: Conversation, *events: str) -> None:
        """Webhook deliveries of conversation events, written in the transaction of the change."""
        record = conversation_record(conv)
        for event in events:
            await self.webhooks.enqueue(tx, conv.app_id, event, conv.session_id, record)

    # --- what a connection starts with -----------------------------------------------------------

    async def open_for(self, actor: Actor) -> list[Conversation]:
        """The open conversations a visitor is in, or an agent is assigned."""
        async with self.db.read() as tx:
            if actor.kind == "visitor":
                return await conversation_store.open_conversations_of_visitor(tx, actor.actor_id)
            return await conversation_store.open_conversations_of_agent(tx, actor.actor_id)
