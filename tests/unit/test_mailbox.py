"""The bounded mailbox: capacity, put_always past it, and hold/release (the snapshot barrier)."""

from __future__ import annotations

import asyncio

import pytest

from tradingapp.actors.base import Mailbox


async def test_full_mailbox_refuses_put_nowait_but_takes_put_always() -> None:
    box = Mailbox(2)
    box.put_nowait(1)
    box.put_nowait(2)
    assert not box.has_room()
    with pytest.raises(OverflowError):
        box.put_nowait(3)
    box.put_always(3)
    assert await box.take_all() == [1, 2, 3]
    assert box.has_room()


async def test_producer_waits_for_room_until_the_consumer_takes() -> None:
    box = Mailbox(1)
    box.put_nowait("a")
    producer = asyncio.create_task(box.put("b"))
    await asyncio.sleep(0)
    assert not producer.done()
    assert await box.take_all() == ["a"]
    await asyncio.wait_for(producer, 5)
    assert await box.take_all() == ["b"]


async def test_held_mailbox_looks_full_until_released() -> None:
    box = Mailbox(10)
    box.put_nowait("queued")
    box.hold()
    assert not box.has_room()
    with pytest.raises(OverflowError):
        box.put_nowait("refused")
    box.put_always("answer")  # answers to work already admitted still get through
    producer = asyncio.create_task(box.put("new"))
    # the consumer drains what was queued; taking does not let the held producer in
    assert await box.take_all() == ["queued", "answer"]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not producer.done() and len(box) == 0
    box.release()
    await asyncio.wait_for(producer, 5)
    assert await box.take_all() == ["new"]


async def test_room_callbacks_take_turns() -> None:
    """Producers that found the mailbox full get the room in turn: one that fills it again waits
    behind the others, so no producer is passed over for ever."""
    box = Mailbox(1)
    box.put_nowait("x")
    order: list[str] = []
    backlog = {name: 3 for name in "abc"}

    def producer(name: str) -> None:
        while backlog[name] and box.has_room():
            box.put_nowait(name)
            backlog[name] -= 1
        if backlog[name]:
            box.call_when_room(lambda: producer(name))

    for name in "abc":
        box.call_when_room(lambda name=name: producer(name))
    for _ in range(9):
        order += await box.take_all()
    assert order == ["x", *"abcabcab"]
    assert await box.take_all() == ["c"]
    assert backlog == {"a": 0, "b": 0, "c": 0}


async def test_held_mailbox_calls_no_room_callback_until_released() -> None:
    box = Mailbox(1)
    box.put_nowait("x")
    called: list[str] = []
    box.call_when_room(lambda: called.append("room"))
    box.hold()
    assert await box.take_all() == ["x"]
    assert called == []
    box.release()
    assert called == ["room"]


async def test_a_failing_room_callback_does_not_stop_the_others() -> None:
    box = Mailbox(1)
    box.put_nowait("x")
    called: list[str] = []

    def broken() -> None:
        raise RuntimeError("producer bug")

    box.call_when_room(broken)
    box.call_when_room(lambda: called.append("next"))
    assert await box.take_all() == ["x"]
    assert called == ["next"]
