"""A blocking wrapper around the asyncio client, for scripts and notebooks.

The asyncio :class:`~clients.client.Client` runs on an event loop in a background thread; every
method here submits the coroutine of the same name to that loop and waits for its result. Method
names and arguments are the asyncio client's.

>>> with SyncClient("127.0.0.1", 7001) as client:          # doctest: +SKIP
...     client.logon("alice", "alice-key")
...     order = client.submit_order("BTC-USDT", "buy", "limit", "0.5", "30000")
...     client.cancel("BTC-USDT", order_id=order.order_id)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator
from decimal import Decimal
from typing import Any, TypeVar

from clients.client import (
    DEFAULT_PORT,
    DEFAULT_TIMEOUT,
    CancelAllResult,
    Client,
    Mode,
    Number,
    OrderHandle,
    Subscription,
    Wait,
    connect,
)

__all__ = ["SyncClient", "SyncOrderHandle", "SyncSubscription"]

T = TypeVar("T")

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


class SyncOrderHandle:
    """Blocking view of an :class:`~clients.client.OrderHandle` (same attributes)."""

    def __init__(self, handle: OrderHandle, runner: _LoopThread) -> None:
        self.handle = handle
        self._runner = runner

    def __repr__(self) -> str:
        return repr(self.handle).replace("<OrderHandle", "<SyncOrderHandle", 1)

    @property
    def client_order_id(self) -> str:
        """The client's id of the order."""
        return self.handle.client_order_id

    @property
    def symbol(self) -> str:
        """The order's symbol."""
        return self.handle.symbol

    @property
    def order_id(self) -> int | None:
        """The venue's id (None before the first report, or if rejected)."""
        return self.handle.order_id

    @property
    def reports(self) -> list[dict[str, Any]]:
        """A copy of the execution reports received so far."""
        return list(self.handle.reports)

    @property
    def status(self) -> str | None:
        """The status after the latest report."""
        return self.handle.status

    @property
    def is_done(self) -> bool:
        """True once the order is terminal."""
        return self.handle.is_done

    @property
    def rejected(self) -> bool:
        """True if the venue refused the order."""
        return self.handle.rejected

    def ack(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Block until the first report; return it."""
        return self._runner.run(self.handle.ack(timeout), timeout)

    def done(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Block until the order is terminal; return the final report."""
        return self._runner.run(self.handle.done(timeout), timeout)

    def cancel(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Cancel this order; return the ``canceled`` report."""
        return self._runner.run(self.handle.cancel(timeout), timeout)

    def replace(
        self,
        quantity: Number | None = None,
        price: Number | None = None,
        stop_price: Number | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Amend this order; return the ``replaced`` report."""
        return self._runner.run(self.handle.replace(quantity, price, stop_price, timeout=timeout), timeout)


class SyncSubscription:
    """Blocking iterator over a :class:`~clients.client.Subscription`."""

    def __init__(self, sub: Subscription, runner: _LoopThread) -> None:
        self.subscription = sub
        self._runner = runner

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self

    def __next__(self) -> dict[str, Any]:
        msg = self._runner.run(self.subscription.get(timeout=None), None)
        if msg is None:
            raise StopIteration
        return msg

    def __enter__(self) -> SyncSubscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unsubscribe()

    @property
    def reply(self) -> dict[str, Any]:
        """The server's ``subscribed`` reply."""
        return self.subscription.reply

    def get(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any] | None:
        """Block for the next message (None once closed); ``TimeoutError`` after ``timeout``."""
        return self._runner.run(self.subscription.get(timeout), timeout)

    def unsubscribe(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Stop the subscription."""
        if self._runner.loop.is_closed():
            return
        self._runner.run(self.subscription.unsubscribe(timeout), timeout)


class SyncClient:
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
        self._runner = _LoopThread()
        try:
            self.client: Client = self._runner.run(connect(host, port, mode=mode, timeout=timeout), timeout)
        except BaseException:
            self._runner.stop()
            raise

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self.client).replace("<Client", "<SyncClient", 1)

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None) -> T:
        return self._runner.run(coro, timeout)

    @property
    def account(self) -> str | None:
        """The account after a successful logon."""
        return self.client.account

    @property
    def is_closed(self) -> bool:
        """True once the connection is closed."""
        return self.client.is_closed

    def logon(self, account: str, api_key: str, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Log on; return the ``logon`` reply (raises ``RequestRejected`` on a bad key)."""
        return self._run(self.client.logon(account, api_key, timeout=timeout), timeout)

    def logout(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any] | None:
        """Log out; return the ``logout`` reply."""
        return self._run(self.client.logout(timeout=timeout), timeout)

    def test_request(
        self, test_request_id: str | int | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Ask for a heartbeat; return it."""
        return self._run(self.client.test_request(test_request_id, timeout=timeout), timeout)

    def ping(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> float:
        """Return the round-trip time of a ``test_request`` in seconds."""
        return self._run(self.client.ping(timeout=timeout), timeout)

    def submit_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Number,
        price: Number | None = None,
        *,
        stop_price: Number | None = None,
        client_order_id: str | None = None,
        post_only: bool = False,
        self_trade_prevention: str | None = None,
        wait: Wait = "ack",
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> SyncOrderHandle:
        """Send a new order; return its handle (see :meth:`clients.client.Client.submit_order`)."""
        handle = self._run(
            self.client.submit_order(
                symbol,
                side,
                order_type,
                quantity,
                price,
                stop_price=stop_price,
                client_order_id=client_order_id,
                post_only=post_only,
                self_trade_prevention=self_trade_prevention,
                wait=wait,
                timeout=timeout,
            ),
            timeout,
        )
        return SyncOrderHandle(handle, self._runner)

    def cancel(
        self,
        symbol: str | None = None,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Cancel one order; return the ``canceled`` report (``CancelRejected`` if refused)."""
        return self._run(self.client.cancel(symbol, order_id, orig_client_order_id, timeout=timeout), timeout)

    def replace(
        self,
        symbol: str,
        order_id: int,
        quantity: Number | None = None,
        price: Number | None = None,
        stop_price: Number | None = None,
        *,
        client_order_id: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Amend an order; return the ``replaced`` report (``CancelRejected`` if refused)."""
        return self._run(
            self.client.replace(
                symbol,
                order_id,
                quantity,
                price,
                stop_price,
                client_order_id=client_order_id,
                timeout=timeout,
            ),
            timeout,
        )

    def cancel_all(
        self, symbol: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> CancelAllResult:
        """Cancel every open order (of ``symbol``, or all)."""
        return self._run(self.client.cancel_all(symbol, timeout=timeout), timeout)

    def order_status(
        self,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Return one order's state (exec_type ``order_status``)."""
        return self._run(
            self.client.order_status(symbol, order_id, client_order_id, timeout=timeout), timeout
        )

    def open_orders(
        self, symbol: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Return the account's open orders."""
        return self._run(self.client.open_orders(symbol, timeout=timeout), timeout)

    def balances(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, dict[str, Decimal]]:
        """Return the account's balances as Decimals."""
        return self._run(self.client.balances(timeout=timeout), timeout)

    def book(
        self, symbol: str, depth: int = 10, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Return a snapshot of the book (a ``depth`` message)."""
        return self._run(self.client.book(symbol, depth, timeout=timeout), timeout)

    def subscribe(
        self,
        symbol: str,
        channels: Iterable[str] = ("bbo", "depth", "trades"),
        depth: int = 10,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> SyncSubscription:
        """Subscribe to market data; return a blocking iterator of feed messages."""
        sub = self._run(self.client.subscribe(symbol, tuple(channels), depth, timeout=timeout), timeout)
        return SyncSubscription(sub, self._runner)

    def close(self) -> None:
        """Close the connection and stop the background loop (idempotent)."""
        if self._runner.loop.is_closed():
            return
        try:
            self._run(self.client.close(), 5)
        finally:
            self._runner.stop()
