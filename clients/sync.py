"""A blocking wrapper around the asyncio client, for scripts and notebooks.

The asyncio :class:`~clients.client.Client` runs on an event loop in a background thread; every
method here submits the coroutine of the same name to that loop and waits for its result. Method
names, arguments and docstrings are the asyncio client's: the methods are made from them by
:func:`_blocking`, so the two cannot drift apart.

>>> with SyncClient("127.0.0.1", 7001) as client:          # doctest: +SKIP
...     client.logon("alice", "alice-key")
...     order = client.submit_order("BTC-USDT", "buy", "limit", "0.5", "30000")
...     client.cancel("BTC-USDT", order_id=order.order_id)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from clients.client import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    Client,
    ConnectionClosed,
    Mode,
    OrderHandle,
    Subscription,
    connect,
)

__all__ = ["SyncClient", "SyncOrderHandle", "SyncSubscription"]

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

#: Extra seconds the calling thread waits beyond a call's own timeout.
_GRACE = 5.0


class _LoopThread:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="tradingapp-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a SyncClient method cannot be called from its own event loop thread")
        if self.loop.is_closed():  # after SyncClient.close(): what the asyncio client raises then
            coro.close()
            raise ConnectionClosed("the connection is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(None if timeout is None else timeout + _GRACE)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self.loop.close()


class _Blocking:
    """Base of the blocking views: the asyncio object wrapped and the loop thread that runs it."""

    def __init__(self, target: Any, runner: _LoopThread) -> None:
        self._target = target
        self._runner = runner


@overload
def _blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[_Blocking, P], T]: ...


@overload
def _blocking(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
    wrap: Callable[[T, _LoopThread], R],
) -> Callable[Concatenate[_Blocking, P], R]: ...


def _blocking(
    method: Callable[..., Coroutine[Any, Any, Any]],
    wrap: Callable[[Any, _LoopThread], Any] | None = None,
) -> Callable[..., Any]:
    """Return a blocking method that runs the coroutine method ``method`` of the wrapped object.

    The caller waits as long as the call's own ``timeout`` argument (plus a grace period, so the
    asyncio side raises the ``TimeoutError``); ``wrap(result, runner)`` turns an asyncio result
    (an order handle, a subscription) into its blocking view.
    """
    name = method.__name__
    signature = inspect.signature(method)
    if "timeout" not in signature.parameters:
        raise TypeError(f"{name} takes no timeout: a blocking call could wait forever")

    @functools.wraps(method)
    def call(self: _Blocking, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self._target, *args, **kwargs)
        bound.apply_defaults()
        result = self._runner.run(getattr(self._target, name)(*args, **kwargs), bound.arguments["timeout"])
        return result if wrap is None else wrap(result, self._runner)

    return call


class _Forward(Generic[T]):
    """A read-only attribute that reads the attribute of the same name of the wrapped object."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    @overload
    def __get__(self, obj: None, owner: type) -> _Forward[T]: ...

    @overload
    def __get__(self, obj: _Blocking, owner: type) -> T: ...

    def __get__(self, obj: _Blocking | None, owner: type) -> _Forward[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj._target, self._name)
        return value


class SyncOrderHandle(_Blocking):
    """Blocking view of an :class:`~clients.client.OrderHandle` (same attributes)."""

    def __init__(self, handle: OrderHandle, runner: _LoopThread) -> None:
        super().__init__(handle, runner)
        self.handle = handle

    def __repr__(self) -> str:
        return repr(self.handle).replace("<OrderHandle", "<SyncOrderHandle", 1)

    client_order_id = _Forward[str]()
    symbol = _Forward[str]()
    order_id = _Forward[int | None]()
    status = _Forward[str | None]()
    is_done = _Forward[bool]()
    rejected = _Forward[bool]()

    @property
    def reports(self) -> list[dict[str, Any]]:
        """A copy of the execution reports received so far."""
        return list(self.handle.reports)

    ack = _blocking(OrderHandle.ack)
    done = _blocking(OrderHandle.done)
    cancel = _blocking(OrderHandle.cancel)
    replace = _blocking(OrderHandle.replace)


class SyncSubscription(_Blocking):
    """Blocking iterator over a :class:`~clients.client.Subscription`."""

    def __init__(self, sub: Subscription, runner: _LoopThread) -> None:
        super().__init__(sub, runner)
        self.subscription = sub

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._runner.loop.is_closed():  # the client is closed: what is buffered, then the end
            msg = self.subscription.get_nowait()
        else:
            msg = self._runner.run(self.subscription.get(timeout=None), None)
        if msg is None:
            raise StopIteration
        return msg

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    reply = _Forward[dict[str, Any]]()
    get = _blocking(Subscription.get)
    _unsubscribe = _blocking(Subscription.unsubscribe)

    def unsubscribe(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Stop the subscription (nothing to do once the client is closed)."""
        if not self._runner.loop.is_closed():
            self._unsubscribe(timeout)


class SyncClient(_Blocking):
    """A blocking TradingApp client: connects on construction, same methods as the asyncio one.

    Use it as a context manager, or call :meth:`close` (which also stops the loop thread).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        mode: Mode = "binary",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> None:
        runner = _LoopThread()
        try:
            client = runner.run(connect(host, port, mode=mode, timeout=timeout), timeout)
        except BaseException:
            runner.stop()
            raise
        super().__init__(client, runner)
        self.client: Client = client

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.client).replace("<Client", "<SyncClient", 1)

    account = _Forward[str | None]()
    is_closed = _Forward[bool]()

    logon = _blocking(Client.logon)
    logout = _blocking(Client.logout)
    test_request = _blocking(Client.test_request)
    ping = _blocking(Client.ping)
    submit_order = _blocking(Client.submit_order, SyncOrderHandle)
    cancel = _blocking(Client.cancel)
    replace = _blocking(Client.replace)
    cancel_all = _blocking(Client.cancel_all)
    order_status = _blocking(Client.order_status)
    open_orders = _blocking(Client.open_orders)
    balances = _blocking(Client.balances)
    book = _blocking(Client.book)
    subscribe = _blocking(Client.subscribe, SyncSubscription)

    def close(self) -> None:
        """Close the connection and stop the background loop (idempotent)."""
        if self._runner.loop.is_closed():
            return
        try:
            self._runner.run(self.client.close(), 5)
        finally:
            self._runner.stop()
