"""The abuse-limit counters themselves, on an injected clock: windows of different lengths, holds, unknown apps."""

from __future__ import annotations

import uuid

import pytest

from kefu import errors
from kefu.services.limits import Limiter, LimitSettings, MemoryCounter, RedisCounter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0 * 900  # the start of a 15-minute (and a 1-minute) window

    def __call__(self) -> float:
        return self.now


async def test_forgetting_finished_one_minute_windows_keeps_the_fifteen_minute_and_hour_counts() -> None:
    """Issue 20: the clean-up judged every count by the window of the key being added, so a flood of unrelated
    1-minute counts wiped a locked account's 15-minute failures and it unlocked early."""
    clock = Clock()
    counter = MemoryCounter(now=clock)
    counter.MAX_KEYS = 1_000
    for _ in range(5):
        await counter.add("login-fail:app:owner@example.com:10.0.0.1", 900)
    await counter.add("login-fail:app:owner@example.com", 3600)
    for minute in (1, 2):  # still inside the 15-minute and the 1-hour window
        clock.now += 60
        for i in range(600):  # unrelated visitors, each a 1-minute count: the clean-up runs in the second minute
            await counter.add(f"visitor-ip:app:10.{minute}.{i // 250}.{i % 250}", 60)
    assert (await counter.peek("login-fail:app:owner@example.com:10.0.0.1", 900))[0] == 5
    assert (await counter.peek("login-fail:app:owner@example.com", 3600))[0] == 1
    assert len(counter._counts) < 1_000  # the finished windows were dropped
    clock.now += 900
    await counter.add("one-more", 60)
    assert (await counter.peek("login-fail:app:owner@example.com:10.0.0.1", 900))[0] == 0


async def test_a_made_up_app_id_creates_no_counters_of_its_own() -> None:
    """Counters were created for any app id before it was checked: one per made-up id and account."""
    counter = MemoryCounter()

    async def app_limits(app_id: str) -> dict[str, int] | None:
        return {} if app_id == "app_real" else None

    limiter = Limiter(counter, True, app_limits=app_limits)
    for i in range(10):
        await limiter.before_login("10.0.0.1", f"app_fake{i}", f"user{i}@example.com")
        await limiter.login_failed("10.0.0.1", f"app_fake{i}", f"user{i}@example.com")
        await limiter.visitor_session(f"app_fake{i}", "10.0.0.1")
    assert set(counter._counts) == {"login-ip:?:10.0.0.1", "visitor-ip:?:10.0.0.1"}
    for _ in range(10):  # made-up ids still count against the address, together
        await limiter.before_login("10.0.0.1", "app_fake", "x@example.com")
    with pytest.raises(errors.RateLimited):
        await limiter.before_login("10.0.0.1", "app_fake", "x@example.com")


async def test_failures_past_the_allowance_delay_unknown_addresses_ever_longer_never_the_known_one() -> None:
    clock = Clock()
    limiter = Limiter(MemoryCounter(now=clock), True, LimitSettings())
    app, owner = "app_1", "owner@example.com"
    await limiter.before_login("10.9.9.9", app, owner)
    await limiter.login_succeeded("10.9.9.9", app, owner)  # the owner's usual address
    waits = []
    for i in range(60):  # 60 wrong passwords from 60 addresses: the 50 allowed, then 10 more
        address = f"10.0.{i}.1"
        await limiter.before_login(address, app, owner)
        await limiter.login_failed(address, app, owner)
        clock.now += 0.001
        try:
            await limiter.before_login(f"10.5.{i}.5", app, owner)  # a new address right after
        except errors.RateLimited as refused:
            waits.append(refused.retry_after_s)
        clock.now += 2 ** max(0, i - 50)  # the attacker waits out each delay
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    await limiter.before_login("10.9.9.9", app, owner)  # the known address is never held up
    clock.now += 300
    await limiter.before_login("10.5.5.5", app, owner)  # a new address after the longest delay


@pytest.mark.redis
async def test_holds_in_redis_last_their_time_and_are_seen_by_every_node() -> None:
    from tests.conftest import REDIS_URL

    assert REDIS_URL is not None
    first, second = RedisCounter(REDIS_URL), RedisCounter(REDIS_URL)
    key = f"test-hold:{uuid.uuid4().hex}"
    try:
        assert await first.held(key) == 0
        await first.hold(key, 30)
        assert 29 < await second.held(key) <= 30
        await first.hold(key, 0.05)  # a new hold replaces the old one
        assert 0 < await second.held(key) <= 0.05
    finally:
        await first.close()
        await second.close()
