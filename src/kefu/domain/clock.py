"""Time as an injected dependency, so timers and timestamps are testable without sleeping."""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from typing import Protocol

from kefu import errors


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current time, timezone-aware UTC."""
        ...

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        """Run `callback` (which must not block) once `delay_s` seconds have passed on this clock."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(delay_s, callback)


class _FakeTimer:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock tests move by hand; its timers fire inside `advance`."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        self._timers: list[tuple[dt.datetime, int, _FakeTimer, Callable[[], None]]] = []
        self._order = itertools.count()

    def now(self) -> dt.datetime:
        return self._now

    def call_later(self, delay_s: float, callback: Callable[[], None]) -> Timer:
        timer = _FakeTimer()
        heapq.heappush(self._timers, (self._now + dt.timedelta(seconds=delay_s), next(self._order), timer, callback))
        return timer

    def advance(self, seconds: float) -> None:
        target = self._now + dt.timedelta(seconds=seconds)
        while self._timers and self._timers[0][0] <= target:
            due, _, timer, callback = heapq.heappop(self._timers)
            self._now = max(self._now, due)
            if not timer.cancelled:
                callback()
        self._now = target

    def set(self, when: dt.datetime) -> None:
        self._now = when


def iso(when: dt.datetime | None) -> str | None:
    """The contract's timestamp form: ISO-8601, UTC, milliseconds, `Z` (2023-08-01T14:30:00.000Z)."""
    if when is None:
        return None
    when = when.astimezone(dt.UTC) if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> dt.datetime:
    """Read an ISO-8601 time; a time without zone is taken as UTC. Raises ValueError."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace(" ", "+"))
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def parse_window(start: str | None, end: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The `from` and `to` of a query (either may be absent); a time that does not parse is 400 `bad_request`."""
    try:
        return (parse_iso(start) if start else None), (parse_iso(end) if end else None)
    except ValueError as exc:
        raise errors.BadRequest("from and to are ISO-8601 times, e.g. 2023-08-01T14:30:00.000Z.") from exc
