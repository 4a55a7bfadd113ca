"""Which `typing` and `read` frames of one socket are passed on to the other participants.

Each one costs a database read and a frame to every device of the other side, and only `send`
was limited: one visitor sent 3,000 typing frames in a burst. Clients repeat `typing` every few
seconds while the user types, and a `read` covers every message up to its `seq`, so what is
dropped here tells nobody anything new: typing at most once per chat per `TYPING_INTERVAL_S`,
a read only when its `seq` moves forward.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TYPING_INTERVAL_S = 2.0
MAX_TRACKED_CHATS = 1_000  # a socket naming more chats than this (made-up ids) starts afresh


@dataclass(slots=True)
class SignalThrottle:
    typing_interval_s: float = TYPING_INTERVAL_S
    _typing_at: dict[str, float] = field(default_factory=dict)
    _read_seq: dict[str, int] = field(default_factory=dict)

    def pass_typing(self, session_id: str, now: float) -> bool:
        """Whether this `typing` goes out; if so it is counted as the chat's latest."""
        last = self._typing_at.get(session_id)
        if last is not None and now - last < self.typing_interval_s:
            return False
        if len(self._typing_at) >= MAX_TRACKED_CHATS:
            self._typing_at.clear()
        self._typing_at[session_id] = now
        return True

    def message_sent(self, session_id: str) -> None:
        """A message ends the typing it followed (the receivers clear their indicator): the next typing goes out."""
        self._typing_at.pop(session_id, None)

    def pass_read(self, session_id: str, seq: int) -> bool:
        """Whether a `read` up to `seq` says something new (call `read_sent` once it went out)."""
        return seq > self._read_seq.get(session_id, -1)

    def read_sent(self, session_id: str, seq: int) -> None:
        if len(self._read_seq) >= MAX_TRACKED_CHATS:
            self._read_seq.clear()
        self._read_seq[session_id] = max(seq, self._read_seq.get(session_id, -1))
