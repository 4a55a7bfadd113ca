"""The abuse limits through a Redis outage: they count on this node instead of failing every send (fail open)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kefu import errors
from kefu.services.limits import REDIS_RETRY_S, Limit, Limiter, LimitSettings, RedisCounter
from tests.chaos.servers import OwnRedis, missing_programs

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=str(missing_programs()))


@pytest.fixture
def redis_server() -> Iterator[OwnRedis]:
    with OwnRedis() as server:
        yield server


async def test_limits_count_on_the_node_while_redis_is_down_and_in_redis_again_after(redis_server: OwnRedis) -> None:
    clock = [0.0]
    counter = RedisCounter(redis_server.url, monotonic=lambda: clock[0])
    limiter = Limiter(counter, enabled=True, settings=LimitSettings(messages_per_sender=Limit(3, 60)))
    try:
        await limiter.message("app", "v1")  # one counted in Redis
        redis_server.kill()
        for _ in range(3):  # a fresh count on this node: the sends go on
            await limiter.message("app", "v1")
        with pytest.raises(errors.RateLimited):  # and the limit still holds, per node
            await limiter.message("app", "v1")
        assert await counter.local.peek("send:v1", 60) == (4, pytest.approx(60, abs=60))

        redis_server.start()
        clock[0] += REDIS_RETRY_S
        await limiter.message("app", "v2")  # Redis again: counted there, not locally
        assert (await counter.local.peek("send:v2", 60))[0] == 0
        assert (await counter.peek("send:v2", 60))[0] == 1
        assert not counter.outage.down
    finally:
        await limiter.close()


async def test_sign_in_delays_are_held_on_the_node_while_redis_is_down(redis_server: OwnRedis) -> None:
    clock = [0.0]
    counter = RedisCounter(redis_server.url, monotonic=lambda: clock[0])
    try:
        await counter.hold("login:a", 30)
        assert 0 < await counter.held("login:a") <= 30  # in Redis
        redis_server.kill()
        assert await counter.held("login:b") == 0  # no error: Redis is down, this node knows of no hold
        await counter.hold("login:b", 30)  # held on this node instead
        assert 0 < await counter.held("login:b") <= 30
        assert 0 < await counter.local.held("login:b") <= 30
    finally:
        await counter.close()
