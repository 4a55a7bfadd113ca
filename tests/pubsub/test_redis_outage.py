"""RedisPubSub while its own Redis (a child process of the test) is killed: a failed subscribe leaves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import pytest

from kefu import errors
from kefu.pubsub import Event, RedisPubSub
from tests.chaos.servers import OwnRedis, missing_programs

pytestmark = pytest.mark.skipif(missing_programs() is not None, reason=str(missing_programs()))


class LostSeen(logging.Handler):
    """Sets `seen` when the bus logs that its subscription connection is lost (it noticed the outage)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "subscription lost" in record.getMessage():
            self.seen.set()


@pytest.fixture
def redis_server() -> Iterator[OwnRedis]:
    with OwnRedis() as server:
        yield server


async def test_a_subscribe_that_fails_leaves_no_handler_and_a_later_one_works(redis_server: OwnRedis) -> None:
    bus, other = RedisPubSub(redis_server.url), RedisPubSub(redis_server.url)
    await bus.start()
    await other.start()
    try:
        dead: list[Event] = []
        lost = LostSeen()
        logging.getLogger("kefu.pubsub.redis").addHandler(lost)
        try:
            redis_server.kill()
            # Until the bus notices, a SUBSCRIBE may still be written into the dead socket and "succeed".
            await asyncio.wait_for(lost.seen.wait(), 10)
        finally:
            logging.getLogger("kefu.pubsub.redis").removeHandler(lost)
        with pytest.raises(errors.Unavailable):
            await bus.subscribe("visitor:v1", dead.append)
        assert "visitor:v1" not in bus.handlers, "the failed caller's handler stayed registered"
        await bus.publish("visitor:v1", b"local")  # a local event: the dead handler must not get it
        assert dead == []

        redis_server.start()
        live: list[bytes] = []
        arrived = asyncio.Event()

        def on_event(event: Event) -> None:
            live.append(event.payload)
            arrived.set()

        async with asyncio.timeout(10):
            while True:  # the bus reconnects on its own: retry as a client would, until Redis answers
                try:
                    subscription = await bus.subscribe("visitor:v1", on_event)
                    break
                except errors.Unavailable:
                    await asyncio.sleep(0.1)  # waiting for Redis to listen again: there is no event to wait on
        async with asyncio.timeout(10):  # events published while the bus resubscribes are lost (clients sync)
            while not arrived.is_set():
                await other.publish("visitor:v1", b"from another node")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), 0.2)
        assert set(live) == {b"from another node"}
        assert dead == []
        await subscription.cancel()
        assert "visitor:v1" not in bus.handlers
    finally:
        await bus.close()
        await other.close()
