"""Pure rules: ids, the conversation state machine, time formatting and the fake clock. No I/O."""

from __future__ import annotations

import datetime as dt

import pytest

from kefu.domain.clock import FakeClock, iso, parse_iso
from kefu.domain.conversation import Resolution, Status, can_move, resolution_on_close
from kefu.domain.ids import SESSION_ID, new_id, session_id


def test_session_id_is_the_utc_day_and_a_zero_padded_number() -> None:
    assert session_id(dt.date(2023, 8, 1), 123456) == "20230801-123456"
    assert session_id(dt.date(2023, 8, 1), 7) == "20230801-000007"
    assert session_id(dt.date(2023, 8, 1), 1234567) == "20230801-1234567"
    assert SESSION_ID.match("20230801-000007") and not SESSION_ID.match("20230801-07")


def test_new_ids_are_prefixed_and_unique() -> None:
    ids = {new_id("m") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("m_") for i in ids)


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    when = dt.datetime(2023, 8, 1, 22, 30, 0, 123999, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert iso(when) == "2023-08-01T14:30:00.123Z"
    assert iso(dt.datetime(2023, 8, 1, 14, 30)) == "2023-08-01T14:30:00.000Z"
    assert parse_iso("2023-08-01T14:30:00.000Z") == dt.datetime(2023, 8, 1, 14, 30, tzinfo=dt.UTC)
    assert parse_iso("2023-08-01T22:30:00+08:00") == dt.datetime(2023, 8, 1, 14, 30, tzinfo=dt.UTC)
    with pytest.raises(ValueError):
        parse_iso("yesterday")


@pytest.mark.parametrize(
    ("current", "target", "allowed"),
    [
        (Status.BOT, Status.QUEUED, True),
        (Status.BOT, Status.CLOSED, True),
        (Status.QUEUED, Status.ACTIVE, True),
        (Status.QUEUED, Status.BOT, False),
        (Status.ACTIVE, Status.QUEUED, True),
        (Status.ACTIVE, Status.BOT, False),
        (Status.CLOSED, Status.ACTIVE, False),
        (Status.CLOSED, Status.QUEUED, False),
    ],
)
def test_conversation_transitions(current: Status, target: Status, allowed: bool) -> None:
    assert can_move(current, target) is allowed


def test_how_a_close_counts() -> None:
    assert resolution_on_close(Status.QUEUED, False) is Resolution.ABANDONED
    assert resolution_on_close(Status.BOT, False) is Resolution.BOT_RESOLVED
    assert resolution_on_close(Status.ACTIVE, True) is Resolution.AGENT_RESOLVED


def test_fake_clock_fires_due_timers_in_order_and_skips_cancelled_ones() -> None:
    clock = FakeClock()
    fired: list[str] = []
    clock.call_later(5, lambda: fired.append("five"))
    clock.call_later(1, lambda: fired.append("one"))
    cancelled = clock.call_later(2, lambda: fired.append("two"))
    cancelled.cancel()
    clock.advance(1.5)
    assert fired == ["one"]
    clock.advance(10)
    assert fired == ["one", "five"]
    assert clock.now() == dt.datetime(2026, 1, 1, 0, 0, 11, 500000, tzinfo=dt.UTC)
