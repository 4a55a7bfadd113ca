"""BotFlow's per-conversation locks: one conversation's questions are answered in turn, and no lock outlives its
users (a lock per conversation kept forever was a leak under load)."""

from __future__ import annotations

import asyncio

from kefu.services.bot_flow import KeyedLocks


async def test_one_key_is_held_by_one_task_at_a_time_and_other_keys_do_not_wait() -> None:
    locks, order = KeyedLocks(), []
    first_in, release = asyncio.Event(), asyncio.Event()

    async def first() -> None:
        async with locks.hold("a"):
            first_in.set()
            await release.wait()
            order.append("first")

    async def second() -> None:
        async with locks.hold("a"):
            order.append("second")

    task = asyncio.create_task(first())
    await first_in.wait()
    waiting = asyncio.create_task(second())
    async with locks.hold("b"):  # another conversation is not held up
        order.append("other")
    release.set()
    await asyncio.wait_for(asyncio.gather(task, waiting), 5)
    assert order == ["other", "first", "second"]


async def test_locks_are_forgotten_when_nobody_holds_or_waits_for_them() -> None:
    locks = KeyedLocks()
    for i in range(1000):
        async with locks.hold(f"conversation-{i}"):
            assert len(locks) == 1
    assert len(locks) == 0

    entered = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("x"):
            entered.set()
            await asyncio.sleep(0)

    await asyncio.gather(holder(), holder(), holder())
    assert entered.is_set() and len(locks) == 0


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    locks, inside, release = KeyedLocks(), asyncio.Event(), asyncio.Event()

    async def hold_until_released() -> None:
        async with locks.hold("k"):
            inside.set()
            await release.wait()

    holder = asyncio.create_task(hold_until_released())
    await inside.wait()

    async def wait_for_lock() -> None:
        async with locks.hold("k"):
            pass

    waiter = asyncio.create_task(wait_for_lock())
    await asyncio.sleep(0)  # let the waiter queue on the lock
    waiter.cancel()
    release.set()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert len(locks) == 0
