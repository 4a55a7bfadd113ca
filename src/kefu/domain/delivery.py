"""The order in which one connection delivers each conversation's messages, with no I/O (Sans-I/O).

Pubsub may drop, repeat or reorder `message` events (Redis delivers at most once), so a
connection cannot simply forward them. `DeliveryOrder` keeps, per conversation, the last seq the
connection delivered and decides what each event calls for: deliver the frame, drop a repeat,
hold an early arrival, or read the missing seqs from the database — which already has them: a
seq is taken under the conversation's row lock, held until commit, so when seq n is committed
every seq below it is. A `sync` holds live messages the same way until its replay is out, so on
one connection each seq goes out once, and the live stream goes out in seq order without gaps.

The connection that sent a message tells the order with `own` once the message is acked: the
ack already gave the client its seq (protocol §3 lets the sender get only its `ack`), so that seq
counts as delivered when its turn comes, and nothing is written for it — not the pubsub copy, and
no gap fill for it either.

Like python-websockets' protocol object, it only takes events in (`live`, `own`, `sync_started`,
`sync_finished`, `filled`, …) and gives decisions out (`Deliver` a frame; `FillGap`: read these
seqs and report them with `filled`). `transport/ws/connection.py` is the I/O shell around it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

F = TypeVar("F")
"""What a frame is to the connection (kefu's: the frame's JSON text, ready for the socket; tests: anything)."""


@dataclass(frozen=True, slots=True)
class Deliver(Generic[F]):
    """Write this frame to the client."""

    frame: F


@dataclass(frozen=True, slots=True)
class FillGap:
    """Read the conversation's messages with after_seq < seq < before_seq, then report them with `filled`."""

    session_id: str
    after_seq: int
    before_seq: int


Decision = Deliver[F] | FillGap


@dataclass(slots=True)
class _Cursor(Generic[F]):
    """What the connection has delivered of one conversation."""

    seq: int | None = None  # the last seq delivered; None until a live message or a sync says where to start
    live_from: int | None = None  # every seq in (live_from, seq] went out already: a sync does not replay them
    # Early arrivals, by seq, waiting for the ones before; None: the connection's own message, acked already.
    pending: dict[int, F | None] = field(default_factory=dict)
    holds: int = 0  # syncs and the gap fill in flight: live messages wait in `pending` until none is left
    filling: int | None = None  # the before_seq of the gap fill in flight (one at a time)


class DeliveryOrder(Generic[F]):
    """Per conversation, which message frames one connection sends, and when."""

    def __init__(self) -> None:
        self._cursors: dict[str, _Cursor[F]] = {}

    def __repr__(self) -> str:
        return f"DeliveryOrder({self._cursors!r})"

    def follow(self, session_id: str, last_seq: int | None) -> None:
        """Deliver a conversation's messages after `last_seq` (told in `ready`, `conversation`, `assigned`).

        A conversation already followed stays where it is: its cursor knows more than an event that may be late.
        """
        if session_id not in self._cursors:
            self._cursors[session_id] = _Cursor(seq=last_seq, live_from=last_seq)

    def live(self, session_id: str, seq: int, frame: F) -> list[Decision[F]]:
        """A `message` event from pubsub: deliver it, or what it completes; drop a repeat; hold an early one."""
        return self._arrived(session_id, seq, frame)

    def own(self, session_id: str, seq: int) -> list[Decision[F]]:
        """This connection sent message `seq` and its `ack` went out: it is delivered, in its turn, with no frame.

        Only in a conversation whose stream has started (followed, or heard of): where it has not, the `message`
        frame will come as it would to any device (the client keeps one copy per seq).
        """
        cursor = self._cursors.get(session_id)
        if cursor is None or cursor.seq is None:
            return []
        return self._arrived(session_id, seq, None)

    def _arrived(self, session_id: str, seq: int, frame: F | None) -> list[Decision[F]]:
        cursor = self._cursors.setdefault(session_id, _Cursor())
        if (cursor.seq is not None and seq <= cursor.seq) or seq in cursor.pending:
            return []  # a repeat (or the pubsub copy of the connection's own message)
        cursor.pending[seq] = frame
        if cursor.holds:
            return []
        return self._flush(session_id, cursor)

    def sync_started(self, session_id: str) -> None:
        """The client asked to `sync`: hold live messages until `sync_finished` (or `sync_failed`)."""
        self._cursors.setdefault(session_id, _Cursor()).holds += 1

    def sync_finished(
        self, session_id: str, replay: Sequence[tuple[int, F]], last_seq: int, synced: F
    ) -> list[Decision[F]]:
        """The sync read `replay` (seq and frame, in seq order) up to `last_seq`: what to send, `synced` included.

        What this connection delivered already is not sent again: one connection, each seq once.
        """
        cursor = self._cursors[session_id]
        sent = range(0)
        if cursor.live_from is not None and cursor.seq is not None:
            sent = range(cursor.live_from + 1, cursor.seq + 1)
        acked = {seq for seq, frame in cursor.pending.items() if frame is None}  # the client has them from its acks
        out: list[Decision[F]] = [Deliver(frame) for seq, frame in replay if seq not in sent and seq not in acked]
        if cursor.live_from is None:
            cursor.live_from = last_seq
        cursor.seq = max(cursor.seq or 0, last_seq)
        out.append(Deliver(synced))
        return out + self._release(session_id, cursor)

    def sync_failed(self, session_id: str) -> list[Decision[F]]:
        """The sync's read failed: nothing was replayed; the live messages it held go out."""
        return self._release(session_id, self._cursors[session_id])

    def filled(self, session_id: str, found: Sequence[tuple[int, F]]) -> list[Decision[F]]:
        """What the database holds of the gap (seq and frame, in seq order): deliver it, then what it unblocks."""
        cursor = self._cursors[session_id]
        assert cursor.seq is not None and cursor.filling is not None, "filled() without a FillGap in flight"
        out: list[Decision[F]] = []
        for seq, frame in found:
            if seq == cursor.seq + 1:  # a sync meanwhile may have sent it, and moved the cursor past it
                if cursor.pending.get(seq, frame) is not None:  # not acked to this connection meanwhile
                    out.append(Deliver(frame))
                cursor.seq = seq
        if cursor.seq + 1 < cursor.filling:  # the database has no such seq: never wait on it again
            cursor.seq = cursor.filling - 1
        out += self._drain(cursor)
        if cursor.pending:
            cursor.filling = min(cursor.pending)
            return [*out, FillGap(session_id, cursor.seq, cursor.filling)]
        cursor.filling = None
        return out + self._release(session_id, cursor)

    def fill_failed(self, session_id: str) -> None:
        """The gap's read failed: the held messages wait for the next live message (or a sync) to try again."""
        cursor = self._cursors[session_id]
        cursor.filling = None
        cursor.holds -= 1

    def _release(self, session_id: str, cursor: _Cursor[F]) -> list[Decision[F]]:
        cursor.holds -= 1
        return [] if cursor.holds else self._flush(session_id, cursor)

    def _flush(self, session_id: str, cursor: _Cursor[F]) -> list[Decision[F]]:
        """Nothing holds the conversation: deliver what is in order, and fill the gap before the rest."""
        if not cursor.pending:
            return []
        if cursor.seq is None:  # first word of this conversation: start just before the earliest message seen
            cursor.seq = cursor.live_from = min(cursor.pending) - 1
        out = self._drain(cursor)
        if cursor.pending:
            cursor.holds += 1
            cursor.filling = min(cursor.pending)
            out.append(FillGap(session_id, cursor.seq, cursor.filling))
        return out

    @staticmethod
    def _drain(cursor: _Cursor[F]) -> list[Decision[F]]:
        assert cursor.seq is not None
        for seq in [s for s in cursor.pending if s <= cursor.seq]:
            del cursor.pending[seq]
        out: list[Decision[F]] = []
        while cursor.seq + 1 in cursor.pending:
            frame = cursor.pending.pop(cursor.seq + 1)
            if frame is not None:  # None: the client has it from its own ack
                out.append(Deliver(frame))
            cursor.seq += 1
        return out
