"""One WebSocket connection: the I/O shell around `DeliveryOrder`, frames in, frames out.

The order in which messages go out (repeats dropped, early arrivals held, gaps filled from the
database, live messages held during a `sync`) is decided by `kefu.domain.delivery.DeliveryOrder`,
which does no I/O; this module reads and writes the socket, subscribes to pubsub, runs the
database reads the order asks for, and closes the socket when its token is revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from kefu import errors
from kefu.domain.delivery import Decision, Deliver, DeliveryOrder, FillGap
from kefu.domain.models import Actor
from kefu.domain.records import ack_frame, conversation_record
from kefu.domain.signals import SignalThrottle
from kefu.pubsub import Event, Subscription
from kefu.services.chat import SendResult
from kefu.services.container import Services
from kefu.services.events import agent_topic, agents_topic, app_topic, visitor_topic
from kefu.transport.ws import frames as f

log = logging.getLogger(__name__)

# Close codes (docs/api.md lists them with what a client does about each).
CLOSE_INTERNAL_ERROR = 1011  # the server failed: reconnect and sync
CLOSE_SLOW_CONSUMER = 1013  # "try again later": the client reconnects and syncs
CLOSE_TRY_AGAIN_LATER = 1013  # the database is unreachable: the client reconnects after a pause and syncs
CLOSE_UNAUTHORIZED = 4401  # no valid token, or the actor is gone: sign in (visitors: a new session) again
CLOSE_FORBIDDEN = 4403  # a visitor socket from an origin the app does not allow
CLOSE_IDLE = 4408  # no frame from the client, not even a ping, for `ws_idle_timeout_s`
CLOSE_RIGHTS_CHANGED = 4409  # the agent's role or groups changed: reconnect (same token) to act with the new ones


def error_frame(error: errors.KefuError, ref: str | None = None) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
    if ref is not None:
        frame["ref"] = ref
    if isinstance(error, errors.RateLimited | errors.Unavailable):
        frame["retry_after"] = error.retry_after_s
    return frame


class Connection:
    def __init__(self, ws: WebSocket, actor: Actor, services: Services) -> None:
        self.ws, self.actor, self.services = ws, actor, services
        # Frames as text, ready for the socket: a pubsub event's text is one object shared by every local connection.
        self.out: asyncio.Queue[str | None] = asyncio.Queue()
        self.order: DeliveryOrder[str] = DeliveryOrder()
        self.groups: dict[str, str | None] = {}  # each conversation's group: a visitor's service status follows it
        self.started = False
        self.early: list[Event] = []
        self.app_status: dict[str, Any] | None = None
        self.shown_status: str | None = None
        self.closing: tuple[int, str] | None = None  # the close code and reason, once the socket is to be closed
        self._tasks: set[asyncio.Task[None]] = set()
        self.connection_id = secrets.token_hex(8)
        self.signals = SignalThrottle()  # typing and read frames that say nothing new are dropped

    # --- out --------------------------------------------------------------------------------------

    def emit(self, frame: dict[str, Any]) -> None:
        self.emit_text(orjson.dumps(frame).decode())

    def emit_text(self, payload: str) -> None:
        if self.closing is not None:
            return
        if self.out.qsize() >= self.services.settings.outbox_max_frames:
            # A client this far behind gets closed; it reconnects and syncs.
            self.close_after_queued(CLOSE_SLOW_CONSUMER, "too far behind; reconnect and sync")
            return
        self.out.put_nowait(payload)

    def close_after_queued(self, code: int, reason: str) -> None:
        """Close the socket with `code` once the frames already queued are written; nothing more is queued."""
        if self.closing is None:
            self.closing = (code, reason)
            self.out.put_nowait(None)

    async def write_loop(self) -> None:
        while (item := await self.out.get()) is not None:
            await self.ws.send_text(item)
        if self.closing is not None:
            with contextlib.suppress(Exception):
                await self.ws.close(*self.closing)

    # --- events from pubsub -------------------------------------------------------------------------

    def on_event(self, event: Event) -> None:
        """A pubsub event: read from `event.frame` (decoded once for the node), written as `event.text` (encoded
        once for the node); only what differs per connection is made here."""
        if not self.started:
            self.early.append(event)
            return
        frame = event.frame
        kind = frame.get("type")
        if kind == "message":
            self.carry_out(self.order.live(frame["session_id"], frame["seq"], event.text))
        elif kind == "conversation":
            self.order.follow(frame["session_id"], frame.get("last_seq"))
            self.groups[frame["session_id"]] = frame.get("group")
            self.emit_text(event.text)
            self.emit_service_status()
        elif kind == "assigned":
            self.order.follow(frame["session_id"], frame.get("last_seq"))
            self.emit_text(event.text)
        elif kind == "service_status":
            self.app_status = frame
            self.emit_service_status()
        elif kind == "revoked":  # a logout or password change: this socket's token no longer holds
            mine = self.actor.token_id and frame.get("token_id") == self.actor.token_id
            if mine or self.actor.token_epoch < frame.get("epoch_below", -1):
                self.emit(error_frame(errors.Unauthorized("This token was revoked; sign in again.")))
                self.close_after_queued(CLOSE_UNAUTHORIZED, "token revoked")
        elif kind == "rights_changed":
            self.close_for_new_rights()
        elif kind in ("typing", "read"):
            if frame.get("_origin") != self.connection_id:
                self.emit_text(event.text)  # without `_origin`
        else:
            self.emit_text(event.text)

    def close_for_new_rights(self) -> None:
        self.emit(error_frame(errors.RightsChanged("Your role or groups changed; reconnect to continue.")))
        self.close_after_queued(CLOSE_RIGHTS_CHANGED, errors.RightsChanged.code)

    def carry_out(self, decisions: list[Decision[str]]) -> None:
        """Send the frames the delivery order decided on; start the database reads it asked for."""
        for decision in decisions:
            if isinstance(decision, Deliver):
                self.emit_text(decision.frame)
            else:
                self.spawn(self.fill_gap(decision))

    async def fill_gap(self, gap: FillGap) -> None:
        try:
            chat = self.services.chat
            missing = await chat.missing(self.actor, gap.session_id, gap.after_seq, gap.before_seq)
            frames = await chat.frames(missing)
            found = [(m.seq, orjson.dumps(frame).decode()) for m, frame in zip(missing, frames, strict=True)]
        except BaseException:
            self.order.fill_failed(gap.session_id)
            raise
        self.carry_out(self.order.filled(gap.session_id, found))

    def derived_status(self) -> str | None:
        """A visitor's service status: that of the group of their open chat, else of the whole app."""
        if self.app_status is None:
            return None
        status = self.app_status.get("status")
        groups = self.app_status.get("groups") or {}
        for group in self.groups.values():
            if group in groups:
                status = groups[group]
        return None if status is None else str(status)

    def emit_service_status(self) -> None:
        """Push a visitor's service status when it changes."""
        if self.actor.kind != "visitor":
            return
        status = self.derived_status()
        if status is not None and status != self.shown_status:
            self.shown_status = status
            self.emit({"type": "service_status", "status": status})

    def spawn(self, work: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(self.guarded(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def guarded(self, work: Any) -> None:
        try:
            await work
        except errors.KefuError as exc:
            self.emit(error_frame(exc))
        except Exception:
            log.exception("background work of a connection failed")

    # --- lifecycle -----------------------------------------------------------------------------------

    def topics(self) -> list[str]:
        if self.actor.kind == "visitor":
            return [visitor_topic(self.actor.actor_id), app_topic(self.actor.app_id)]
        return [agent_topic(self.actor.actor_id), agents_topic(self.actor.app_id)]

    async def ready_frame(self) -> dict[str, Any]:
        services = self.services
        convs = await services.chat.open_for(self.actor)
        profiles = await services.chat.profiles(convs) if self.actor.kind == "agent" else {}
        listed = []
        for conv in convs:
            place = await services.routing.queue_place(conv)
            listed.append(conversation_record(conv, None, *(place or (None, None))) | profiles.get(conv.session_id, {}))
            self.order.follow(conv.session_id, conv.last_seq)
            self.groups[conv.session_id] = conv.group
        frame: dict[str, Any] = {"type": "ready", "conversations": listed}
        if self.actor.kind == "visitor":
            visitor = await services.auth.visitor_profile(self.actor)
            frame["you"] = visitor
            self.app_status = await services.routing.service_status(self.actor.app_id)
            self.shown_status = frame["service_status"] = self.derived_status()
        else:
            agent = await services.auth.agent_profile(self.actor)
            agent["status"] = await services.presence.shown_status(self.actor.actor_id)
            frame["you"] = agent
            if agent["role"] != self.actor.role:  # changed between the handshake and the subscription
                self.close_for_new_rights()
        return frame

    async def run(self) -> None:
        subscriptions: list[Subscription] = []
        writer = asyncio.get_running_loop().create_task(self.write_loop())
        try:
            for topic in self.topics():
                subscriptions.append(await self.services.pubsub.subscribe(topic, self.on_event))
            if self.actor.kind == "agent":
                self.services.presence.connected(self.actor.actor_id, self.actor.app_id)
            self.emit(await self.ready_frame())
            self.started = True
            self.services.telemetry.socket_opened(self.actor.kind)
            for event in self.early:
                self.on_event(event)
            self.early.clear()
            await self.read_loop()
        except WebSocketDisconnect:
            pass
        except errors.Unavailable as exc:  # logged as an outage where it was found
            self.emit(error_frame(exc))
            self.close_after_queued(CLOSE_TRY_AGAIN_LATER, "try again later")
        except Exception:
            log.exception("a %s connection failed", self.actor.kind)
            self.close_after_queued(CLOSE_INTERNAL_ERROR, "server error; reconnect and sync")
        finally:
            if self.started:
                self.services.telemetry.socket_closed(self.actor.kind)
            for subscription in subscriptions:
                await subscription.cancel()
            if self.actor.kind == "agent":
                self.services.presence.disconnected(self.actor.actor_id, self.actor.app_id)
            for task in list(self._tasks):
                task.cancel()
            self.out.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer, timeout=2)
            if not writer.done():
                writer.cancel()

    async def read_loop(self) -> None:
        max_bytes, idle_s = self.services.settings.max_frame_bytes, self.services.settings.ws_idle_timeout_s
        while True:
            try:
                # Any frame resets the timer: clients keep a quiet socket open with `ping`.
                async with asyncio.timeout(idle_s):  # no task per frame, unlike wait_for on Python 3.11
                    message = await self.ws.receive()
            except TimeoutError:
                self.close_after_queued(CLOSE_IDLE, f"no frame for {idle_s:g} s; send ping to stay connected")
                return
            if message["type"] == "websocket.disconnect":
                return
            raw = message.get("text")
            if raw is None:
                self.emit(error_frame(errors.InvalidFrame("Frames are JSON text, not binary.")))
                continue
            try:
                frame = f.parse_frame(raw, max_bytes)
            except f.FrameError as exc:
                self.emit(error_frame(exc.error, exc.ref))
                continue
            try:
                await self.dispatch(frame)
            except errors.KefuError as exc:
                self.emit(error_frame(exc, frame.ref))
                if not exc.recoverable:  # Unauthorized, the only kind: the actor is gone
                    self.close_after_queued(CLOSE_UNAUTHORIZED, exc.code)
                    return
            except Exception:
                log.exception("frame %s failed", type(frame).__name__)
                self.emit(error_frame(errors.InternalError(), frame.ref))

    # --- frames from the client -----------------------------------------------------------------------

    async def dispatch(self, frame: f.Frame) -> None:
        actor, chat = self.actor, self.services.chat
        kind = getattr(frame, "type", "")
        if kind in f.VISITOR_ONLY and actor.kind != "visitor":
            raise errors.Forbidden(f"'{kind}' is a visitor's frame.")
        if kind in f.AGENT_ONLY and actor.kind != "agent":
            raise errors.Forbidden(f"'{kind}' is an agent's frame.")
        match frame:
            case f.Ping():
                self.emit({"type": "pong"})
            case f.Send():
                started = time.perf_counter()
                await self.services.limits.message(actor.app_id, actor.actor_id)

                def acked(result: SendResult) -> None:
                    # Durable, not yet fanned out. This connection gets the ack and no copy of its own message: the
                    # ack carries seq, message_id and timestamp, and the client shows the message from it (§3).
                    self.emit(ack_frame(result.message, frame.ref))
                    if not result.duplicate:
                        self.carry_out(self.order.own(result.message.session_id, result.message.seq))
                    self.signals.message_sent(frame.session_id)
                    self.services.telemetry.observe_send(time.perf_counter() - started)

                await chat.send(
                    actor,
                    frame.session_id,
                    frame.client_msg_id,
                    frame.msg_type,
                    frame.content,
                    frame.attachment_id,
                    on_stored=acked,
                )
            case f.Sync():
                await self.sync(frame)
            case f.OpenChat():
                await self.services.limits.chat_opened(actor.app_id, actor.actor_id)
                await chat.open_chat(actor, frame.context, frame.group, frame.channel)
            case f.Typing():
                if self.signals.pass_typing(frame.session_id, self.services.clock.now().timestamp()):
                    await chat.signal(actor, frame.session_id, "typing", origin=self.connection_id)
            case f.Read():
                if self.signals.pass_read(frame.session_id, frame.seq):
                    await chat.signal(actor, frame.session_id, "read", frame.seq, self.connection_id)
                    self.signals.read_sent(frame.session_id, frame.seq)
            case f.RequestHuman():
                await chat.request_human(actor, frame.session_id)
            case f.Close():
                await chat.close(actor, frame.session_id)
            case f.SetStatus():
                await self.services.presence.set_status(actor, frame.status)
            case f.Transfer():
                await chat.transfer(actor, frame.session_id, frame.to_agent_id, frame.to_group, frame.note)
            case f.Feedback():
                await chat.bot_flow.feedback(actor, frame.session_id, frame.seq, frame.helpful)
            case _:
                raise errors.UnknownFrameType(f"Unknown frame type '{kind}'.")

    async def sync(self, frame: f.Sync) -> None:
        chat, session_id = self.services.chat, frame.session_id
        self.order.sync_started(session_id)
        try:
            messages, last_seq = await chat.sync(self.actor, session_id, frame.after_seq)
            replay = [
                (m.seq, orjson.dumps(replayed).decode())
                for m, replayed in zip(messages, await chat.frames(messages), strict=True)
            ]
        except BaseException:
            self.carry_out(self.order.sync_failed(session_id))
            raise
        synced = {"type": "synced", "ref": frame.ref, "session_id": session_id, "last_seq": last_seq}
        self.carry_out(self.order.sync_finished(session_id, replay, last_seq, orjson.dumps(synced).decode()))
