"""Pubsub hands every local subscriber of a topic the same `Event`: one decode and one encode per event and node."""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest
import redis.asyncio as aioredis

from kefu.pubsub import Event, MemoryPubSub, PubSub, RedisPubSub
from kefu.pubsub.redis import PREFIX
from tests.conftest import REDIS_URL

FRAME = {"type": "typing", "session_id": "20260301-000001", "sender": "user", "_origin": "c0ffee"}


async def three_subscribers(bus: PubSub, topic: str) -> tuple[list[Event], asyncio.Event]:
    got: list[Event] = []
    all_three = asyncio.Event()

    def handler(event: Event) -> None:
        got.append(event)
        if len(got) == 3:
            all_three.set()

    for _ in range(3):
        await bus.subscribe(topic, lambda event: handler(event))  # three distinct handlers
    return got, all_three


def check_shared(got: list[Event]) -> None:
    first = got[0]
    assert all(event is first for event in got)  # one object for every local subscriber
    assert first.frame == FRAME and all(event.frame is first.frame for event in got)  # parsed once
    assert orjson.loads(first.text) == {k: v for k, v in FRAME.items() if k != "_origin"}  # no private key
    assert all(event.text is first.text for event in got)  # encoded once, the same text for every socket


async def test_memory_bus_gives_every_subscriber_the_same_event() -> None:
    bus = MemoryPubSub()
    got, all_three = await three_subscribers(bus, "visitor:v1")
    other: list[Event] = []
    await bus.subscribe("visitor:v2", other.append)
    await bus.publish("visitor:v1", orjson.dumps(FRAME))
    await asyncio.wait_for(all_three.wait(), 5)
    check_shared(got)
    assert other == []


def test_a_frame_without_private_keys_is_sent_as_published() -> None:
    payload = orjson.dumps({"type": "message", "seq": 3, "content": "你好"})
    assert Event(payload).text == payload.decode()


@pytest.mark.redis
async def test_another_node_decodes_an_event_once_for_all_its_subscribers() -> None:
    assert REDIS_URL is not None
    topic = f"visitor:{uuid.uuid4().hex}"
    sender, receiver = RedisPubSub(REDIS_URL), RedisPubSub(REDIS_URL)
    await sender.start()
    await receiver.start()
    try:
        got, all_three = await three_subscribers(receiver, topic)
        async with aioredis.Redis.from_url(REDIS_URL) as admin:  # Redis has the subscription before the publish
            deadline = asyncio.get_running_loop().time() + 10
            while not (await admin.pubsub_numsub(PREFIX + topic))[0][1]:
                assert asyncio.get_running_loop().time() < deadline, "the subscription never reached Redis"
                await asyncio.sleep(0.01)
        await sender.publish(topic, orjson.dumps(FRAME))
        await asyncio.wait_for(all_three.wait(), 10)
        check_shared(got)
    finally:
        await sender.close()
        await receiver.close()
