"""A small actor base on asyncio: one task, one bounded mailbox, one message at a time.

Modelled on pykka's loop (setup, run, teardown; stop is an in-band message so queued work ahead
of it is still done) with bounded mailboxes, which pykka lacks. A mailbox never grows without
bound: producers that may wait ``await put()``; producers that must not wait (a socket callback)
check :meth:`Mailbox.has_room` first and stop reading until the callback they gave
:meth:`Mailbox.call_when_room` runs. Those callbacks run in the order they were registered, and
one that fills the mailbox again re-registers behind the others, so producers competing for a
full mailbox take turns. The actor wakes once for everything queued and handles it as a batch, so a
burst costs one task switch instead of one per message.

An exception while handling one message is logged and handed to :meth:`Actor.on_failure` (which
turns it into a reject for that message's sender); the actor goes on with the next message. It
never dies silently and never leaves a caller waiting.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Any

import structlog

log = structlog.get_logger("tradingapp.actors")


class ActorState(Enum):
    """The lifecycle of an actor; transitions only go forward."""

    CREATED = "created"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


class _Stop:
    # The in-band stop message: everything queued before it is handled first.
    __slots__ = ()


STOP = _Stop()


class Mailbox:
    """A bounded FIFO with one consumer task; ``capacity`` counts messages."""

    __slots__ = ("_held", "_items", "_loop", "_room_callbacks", "_room_waiters", "_waiter", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("mailbox capacity must be at least 1")
        self.capacity = capacity
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._room_waiters: list[asyncio.Future[None]] = []
        self._room_callbacks: deque[Callable[[], None]] = deque()
        self._held = False
        # The consumer's loop, found at the first wait: ``asyncio.get_running_loop`` costs a
        # ``getpid`` system call on every call (Python 3.11), and an idle actor waits every batch.
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._items)

    def has_room(self) -> bool:
        """True when one more message fits (never while the mailbox is held)."""
        return len(self._items) < self.capacity and not self._held

    def hold(self) -> None:
        """Refuse new work as if full (``put_always`` still queues) until :meth:`release`.

        Producers see the same backpressure as for a full mailbox (a session stops reading its
        socket), so the consumer can drain what is queued: the engine holds the risk actor's
        intake for a moment to reach a quiescent point for a snapshot under continuous load.
        """
        self._held = True

    def release(self) -> None:
        """End a :meth:`hold` and wake the producers waiting for room."""
        self._held = False
        self._wake_producers()

    def put_nowait(self, item: Any) -> None:
        """Queue ``item``; raises OverflowError when full (callers check ``has_room`` first)."""
        if not self.has_room():
            raise OverflowError("mailbox is full")
        self._push(item)

    def put_always(self, item: Any) -> None:
        """Queue ``item`` even past capacity.

        Only for messages whose number is already bounded elsewhere (a book's answers to commands
        that came through a bounded mailbox, the stop message), so that two actors that feed each
        other can never deadlock on each other's full mailbox.
        """
        self._push(item)

    async def put(self, item: Any) -> None:
        """Queue ``item``, waiting for room first."""
        while not self.has_room():
            await self.wait_for_room()
        self._push(item)

    def _push(self, item: Any) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait_for_room(self) -> None:
        """Return once the mailbox may have room (at once if it has); callers check again."""
        if self.has_room():
            return
        fut: asyncio.Future[None] = self._running_loop().create_future()
        self._room_waiters.append(fut)
        await fut

    def call_when_room(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the mailbox has room (the caller found it full).

        Callbacks run synchronously, first registered first, each only while there is room; a
        callback that fills the mailbox again registers anew, behind those still waiting. So
        room freed by the consumer goes to the producers in turn, not to whichever woke first
        (with one-shot futures every waiter woke at once, the same first one refilled the
        mailbox each time, and the rest could wait indefinitely).
        """
        self._room_callbacks.append(callback)

    async def take_all(self) -> list[Any]:
        """Wait for at least one message, then return everything queued (oldest first)."""
        if not self._items:
            fut: asyncio.Future[None] = self._running_loop().create_future()
            self._waiter = fut
            await fut
        items = list(self._items)
        self._items.clear()
        if (self._room_waiters or self._room_callbacks) and not self._held:
            self._wake_producers()
        return items

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.get_running_loop()
        return loop

    def _wake_producers(self) -> None:
        waiters, self._room_waiters = self._room_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)
        callbacks = self._room_callbacks
        # bounded by the callbacks waiting now: one that registers anew waits for the next wake
        for _ in range(len(callbacks)):
            if not callbacks or not self.has_room():
                break
            callback = callbacks.popleft()
            try:
                callback()
            except Exception:  # a producer's bug must not break the consumer taking its batch
                log.exception("mailbox_room_callback_failed")


class Actor:
    """Base class: subclasses implement :meth:`handle` (synchronous) and may override hooks."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.mailbox = Mailbox(capacity)
        self.state = ActorState.CREATED
        self._task: asyncio.Task[None] | None = None
        self.handled = 0
        self.failures = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        """Start the actor's task (idempotent)."""
        if self._task is None:
            self.state = ActorState.STARTING
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return self._task

    async def stop(self) -> None:
        """Ask the actor to stop after what is already queued, and wait until it has."""
        if self._task is None:
            self.state = ActorState.STOPPED
            return
        if self.state in (ActorState.STARTING, ActorState.RUNNING):
            self.mailbox.put_always(STOP)
        await asyncio.shield(self._task)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The running task (None before :meth:`start`)."""
        return self._task

    async def _run(self) -> None:
        self.on_start()
        self.state = ActorState.RUNNING
        try:
            while True:
                await self.before_batch()
                batch = await self.mailbox.take_all()
                if self._handle_batch(batch):
                    break
        finally:
            self.state = ActorState.STOPPING
            self.on_stop()
            self.state = ActorState.STOPPED

    def _handle_batch(self, batch: Iterable[Any]) -> bool:
        # Returns True when the stop message was reached (messages after it are dropped; none
        # can be there, since stop is only sent at shutdown after producers have stopped).
        for message in batch:
            if message is STOP:
                self.after_batch()
                return True
            try:
                self.handle(message)
            except Exception as exc:
                self.failures += 1
                log.exception("actor_message_failed", actor=self.name, message=type(message).__name__)
                self.on_failure(message, exc)
            self.handled += 1
        self.after_batch()
        return False

    # -- hooks ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        """Called in the actor's task before the first message."""

    def on_stop(self) -> None:
        """Called in the actor's task after the last message."""

    async def before_batch(self) -> None:
        """Awaited before taking the next batch: wait here for room downstream (backpressure)."""

    def after_batch(self) -> None:
        """Called after each batch: flush what was accumulated while handling it."""

    def handle(self, message: Any) -> None:
        """Handle one message (synchronously: the whole batch runs without interleaving)."""
        raise NotImplementedError

    def on_failure(self, message: Any, exc: Exception) -> None:
        """Turn a failure into a reply for ``message``'s sender (default: nothing more)."""
