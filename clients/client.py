"""An asyncio client for the TradingApp wire protocol (``docs/protocol.md``).

>>> client = await connect("127.0.0.1", 7001)           # doctest: +SKIP
>>> await client.logon("alice", "alice-key")
>>> order = await client.submit_order("BTC-USDT", "buy", "limit", "0.5", "30000")
>>> await client.cancel("BTC-USDT", order_id=order.order_id)
>>> await client.close()

Design:

* One connection is one :class:`asyncio.Protocol`. Incoming bytes go through the project's
  sans-I/O :class:`~tradingapp.protocol.framing.FrameDecoder` (binary mode) or a line splitter
  (JSON mode, for debugging), and every decoded message is routed by :class:`Client` from the
  event loop's callback: no reader task, no per-message queue hop.
* Every request carries a unique integer ``request_id``; the direct reply (or ``reject``) with
  that id resolves the request's future. Rejects of request/response calls raise
  :class:`RequestRejected`.
* Orders are tracked by :class:`OrderHandle`: the first execution report of an order is matched
  by the ``request_id`` of the ``new_order`` (else by its ``client_order_id``), later ones by the
  venue ``order_id``. ``handle.reports`` collects them all.
* Market data goes to :class:`Subscription` objects (async iterators), routed by symbol and
  channel.
* Decimals (quantities and prices) are accepted as ``str``, ``int`` or :class:`~decimal.Decimal`
  and always sent as decimal strings; floats are refused (they cannot carry an exact decimal).

For load generation there is a lower-level path that skips all of the above:
:meth:`Client.listen` hands every decoded batch of messages to one callback and
:meth:`Client.write_messages` encodes many messages into one ``write`` call.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, Literal, TypedDict, Unpack

import msgpack

from tradingapp.protocol.framing import FrameDecoder
from tradingapp.protocol.schema import MAX_FRAME_LIMIT

__all__ = [
    "DEFAULT_PORT",
    "DEFAULT_TIMEOUT",
    "TERMINAL_STATUSES",
    "CancelAllResult",
    "CancelRejected",
    "Client",
    "ClientError",
    "ConnectionClosed",
    "Number",
    "OrderHandle",
    "OrderOptions",
    "RequestRejected",
    "SeqCheck",
    "Subscription",
    "connect",
    "random_request_id_base",
    "to_decimal_string",
]

#: The engine's default port.
DEFAULT_PORT = 7001
#: Seconds a request/response call waits for its reply before raising ``TimeoutError``.
DEFAULT_TIMEOUT = 10.0
#: Order statuses after which an order gets no more reports.
TERMINAL_STATUSES = frozenset({"filled", "canceled", "rejected", "expired"})
#: Bound on the messages kept in :attr:`Client.unrouted` (messages no request or handle claimed).
UNROUTED_KEEP = 1000

Number = str | int | Decimal
"""A decimal quantity or price as a caller may pass it (never a float)."""

Mode = Literal["binary", "json"]
Wait = Literal["ack", "done"] | None


class OrderOptions(TypedDict, total=False):
    """The optional fields of a ``new_order`` (keyword arguments of :meth:`Client.submit_order`).

    ``stop_price`` (stop orders), ``client_order_id`` (generated when absent), ``post_only``
    (default false) and ``self_trade_prevention`` (the venue's default when absent).
    """

    stop_price: Number | None
    client_order_id: str | None
    post_only: bool
    self_trade_prevention: str | None


# Feed message type -> subscription channel
_CHANNEL_OF = {"bbo": "bbo", "depth": "depth", "trade": "trades"}
_ALL_CHANNELS = ("bbo", "depth", "trades")


# -- errors ---------------------------------------------------------------------------------------


class ClientError(Exception):
    """Base class of the client's errors."""


class ConnectionClosed(ClientError):
    """The connection closed (or was never open) while a call needed it."""


class RequestRejected(ClientError):
    """The server refused a request: a ``reject`` (or ``cancel_reject``) answered it.

    ``reason`` is the reason code (``docs/protocol.md``, *Reason codes*), ``text`` the server's
    explanation and ``message`` the whole reply.
    """

    def __init__(self, reason: str, text: str, message: Mapping[str, Any]) -> None:
        super().__init__(f"{reason}: {text}")
        self.reason = reason
        self.text = text
        self.message = dict(message)


class CancelRejected(RequestRejected):
    """A ``cancel`` or ``replace`` was answered by a ``cancel_reject``; the order is unchanged."""


# -- helpers --------------------------------------------------------------------------------------


def to_decimal_string(value: Number, name: str = "value") -> str:
    """Return ``value`` as a plain decimal string (``"0.5"``); refuse floats and booleans.

    >>> to_decimal_string(Decimal("1E+2"))
    '100'
    """
    t = type(value)
    if t is str:
        return value  # type: ignore[return-value]  # the server checks the syntax
    if t is int:
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{name} must be finite, not {value}")
        return format(value, "f")
    if isinstance(value, str | int) and not isinstance(value, bool):  # subclasses
        return str(value)
    raise TypeError(f"{name} must be a str, int or Decimal, not {type(value).__name__}")


def random_request_id_base() -> int:
    """Return a random first request id (a multiple of 2^32 below 2^62, so ids stay int64)."""
    return (secrets.randbits(30) or 1) << 32


def _silence(fut: asyncio.Future[Any]) -> None:
    # Mark an exception as retrieved so an unawaited future does not log "never retrieved".
    if fut.done() and not fut.cancelled():
        fut.exception()


def _fail(fut: asyncio.Future[Any], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)
        _silence(fut)


def _present(**fields: Any) -> dict[str, Any]:
    """The fields that are not None: the optional fields a message carries."""
    return {name: value for name, value in fields.items() if value is not None}


def _decimals(**fields: Number | None) -> dict[str, str]:
    """The fields that are not None, as decimal strings (an error names the field)."""
    return {name: to_decimal_string(value, name) for name, value in fields.items() if value is not None}


def _rejection(reply: dict[str, Any]) -> RequestRejected:
    # the error a ``reject`` or ``cancel_reject`` reply stands for
    error = CancelRejected if reply.get("type") == "cancel_reject" else RequestRejected
    return error(str(reply.get("reason")), str(reply.get("text", "")), reply)


def _raise_if_reject(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("type") in ("reject", "cancel_reject"):
        raise _rejection(reply)
    return reply


async def _wait(fut: asyncio.Future[Any], timeout: float | None) -> Any:
    # shield: a timeout or a cancelled caller must not cancel the shared future
    return await asyncio.wait_for(asyncio.shield(fut), timeout)


# -- orders ---------------------------------------------------------------------------------------


class OrderHandle:
    """One order sent by this client, and every execution report about it.

    ``reports`` grows as reports arrive (oldest first). ``await handle.ack()`` returns the first
    report (exec_type ``new`` or ``rejected``); ``await handle.done()`` returns the report that
    made the order terminal (``filled``, ``canceled``, ``rejected`` or ``expired``). A resting
    limit order is never done until it trades away or is canceled.
    """

    def __init__(self, client: Client, client_order_id: str, symbol: str, request_id: int) -> None:
        self.client = client
        self.client_order_id = client_order_id
        self.symbol = symbol
        self.request_id = request_id
        #: The venue's order id (None until the first report, and for a rejected order).
        self.order_id: int | None = None
        #: Every execution report about this order, oldest first.
        self.reports: list[dict[str, Any]] = []
        loop = client.loop
        self._ack: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._done: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._changed: asyncio.Event = asyncio.Event()
        self._cursor = 0

    def __repr__(self) -> str:
        return (
            f"<OrderHandle {self.symbol} cid={self.client_order_id} id={self.order_id} "
            f"status={self.status} reports={len(self.reports)}>"
        )

    @property
    def status(self) -> str | None:
        """The order's status after the latest report (None before the first)."""
        return self.reports[-1]["order_status"] if self.reports else None

    @property
    def is_done(self) -> bool:
        """True once the order is terminal (or the connection was lost)."""
        return self._done.done()

    @property
    def rejected(self) -> bool:
        """True if the venue refused the order."""
        return self.status == "rejected"

    @property
    def filled_quantity(self) -> Decimal:
        """``cum_qty`` of the latest report (0 before any)."""
        return Decimal(self.reports[-1]["cum_qty"]) if self.reports else Decimal(0)

    @property
    def fills(self) -> list[dict[str, Any]]:
        """The ``trade`` execution reports (one per fill)."""
        return [r for r in self.reports if r.get("exec_type") == "trade"]

    async def ack(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait for the first report (``new`` or ``rejected``) and return it.

        Raises :class:`RequestRejected` if the ``new_order`` itself was refused with a
        ``reject`` (malformed message), :class:`ConnectionClosed` if the connection is lost and
        ``TimeoutError`` after ``timeout`` seconds.
        """
        result: dict[str, Any] = await _wait(self._ack, timeout)
        return result

    async def done(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Wait until the order is terminal and return the report that made it so."""
        result: dict[str, Any] = await _wait(self._done, timeout)
        return result

    async def next_report(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Return the next report not yet returned by this method (the first call: the first report).

        Waits for it if it has not arrived; raises :class:`ClientError` when the order is done and
        every report has been returned, ``TimeoutError`` after ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            if not await self._has_report(self._cursor):
                raise ClientError("the order is done: no more reports will come")
        report = self.reports[self._cursor]
        self._cursor += 1
        return report

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        # every report from the first, ending after the terminal one (no timeout)
        index = 0
        while await self._has_report(index):
            yield self.reports[index]
            index += 1

    async def _has_report(self, index: int) -> bool:
        """Wait for report ``index``: True once it is there, False if the order ended without it.

        Raises the error that ended the order early (connection lost, ``new_order`` rejected).
        """
        while index >= len(self.reports):
            if self._done.done():
                error = self._done.exception()
                if error is not None:
                    raise error
                return False
            self._changed.clear()
            await self._changed.wait()
        return True

    async def cancel(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any]:
        """Cancel this order (see :meth:`Client.cancel`)."""
        order_id = await self._acknowledged_id("cancel", timeout)
        return await self.client.cancel(self.symbol, order_id=order_id, timeout=timeout)

    async def replace(
        self,
        quantity: Number | None = None,
        price: Number | None = None,
        stop_price: Number | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Amend this order (see :meth:`Client.replace`)."""
        order_id = await self._acknowledged_id("replace", timeout)
        return await self.client.replace(self.symbol, order_id, quantity, price, stop_price, timeout=timeout)

    async def _acknowledged_id(self, action: str, timeout: float | None) -> int:
        # the venue's id once the first report is in; a rejected order has none to act on
        await self.ack(timeout)
        if self.order_id is None:
            raise ClientError(f"the order was rejected; there is nothing to {action}")
        return self.order_id

    # -- fed by the client --------------------------------------------------------------------------

    def _feed(self, report: dict[str, Any]) -> bool:
        """Record a report; return True when the order became terminal."""
        self.reports.append(report)
        self._changed.set()
        if not self._ack.done():
            self._ack.set_result(report)
        if report.get("order_status") in TERMINAL_STATUSES and not self._done.done():
            self._done.set_result(report)
            return True
        return False

    def _fail(self, exc: BaseException) -> None:
        _fail(self._ack, exc)
        _fail(self._done, exc)
        self._changed.set()


class CancelAllResult:
    """The answer to ``cancel_all``: how many orders the venue is canceling, and their reports."""

    def __init__(self, reply: dict[str, Any], reports: list[dict[str, Any]]) -> None:
        #: The server's ``cancel_all`` reply (``{"type": "cancel_all", "orders": N, ...}``).
        self.reply = reply
        #: The ``canceled`` execution reports received for this request.
        self.reports = reports

    @property
    def orders(self) -> int:
        """Number of open orders the venue found to cancel."""
        return int(self.reply["orders"])

    @property
    def order_ids(self) -> list[int]:
        """Venue ids of the canceled orders."""
        return [r["order_id"] for r in self.reports]

    def __repr__(self) -> str:
        return f"<CancelAllResult orders={self.orders} reports={len(self.reports)}>"


class _CancelAllWaiter:
    # Collects the server's ``cancel_all`` reply (the number of orders) and the ``canceled``
    # reports that carry the request's request_id (they follow the reply).

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reply: dict[str, Any] | None = None
        self.reports: list[dict[str, Any]] = []
        self.future: asyncio.Future[None] = loop.create_future()

    def feed(self, msg: dict[str, Any]) -> bool:
        kind = msg.get("type")
        if kind == "execution_report":
            self.reports.append(msg)
        elif kind == "cancel_all":
            self.reply = msg
        elif kind == "reject":
            _fail(self.future, _rejection(msg))
            return True
        if self.reply is not None and len(self.reports) >= int(self.reply["orders"]):
            if not self.future.done():
                self.future.set_result(None)
            return True
        return False


# -- market data ----------------------------------------------------------------------------------


class SeqCheck:
    """Checks the ``seq`` of ``bbo``, ``depth`` and ``trade`` messages (docs/protocol.md, *Market
    data sequence numbers*), per channel and symbol.

    Each message must have ``seq == last + 1 + conflated`` (``conflated``: messages of a
    ``bbo``/``depth`` channel the server left out for a slow reader, absent when none). A larger
    jump is data lost (:attr:`lost` counts the messages); a seq not above the last one starts
    again from it (a new snapshot, after another ``subscribe`` of the symbol).
    """

    def __init__(self) -> None:
        self.last: dict[tuple[str, str], int] = {}
        #: Messages lost (seq jumps not explained by conflation); 0 on a healthy connection.
        self.lost = 0
        #: Messages the server conflated away (slow reading; nothing is lost).
        self.conflated = 0

    def check(self, msg: Mapping[str, Any]) -> int:
        """Account for one market-data message; return how many messages were lost just before it."""
        key = (msg["type"], msg["symbol"])
        seq = msg["seq"]
        last = self.last.get(key)
        self.last[key] = seq
        if last is None or seq <= last:
            return 0
        skipped = msg.get("conflated", 0)
        self.conflated += skipped
        lost = max(0, seq - last - 1 - skipped)
        self.lost += lost
        return lost


class Subscription:
    """Market data of one symbol: an async iterator of ``bbo``, ``depth`` and ``trade`` messages.

    The first messages after subscribing are the snapshots of the book channels (the current BBO
    and depth) and recent trades; updates follow. Messages are buffered without bound until
    read, so read them (or unsubscribe). Iteration ends after :meth:`unsubscribe` or when the
    connection closes (then :attr:`error` says why). :attr:`seq` checks every message's ``seq``
    as it arrives: ``seq.lost`` stays 0 unless data was lost.

    >>> async with await client.subscribe("BTC-USDT") as feed:  # doctest: +SKIP
    ...     async for msg in feed:
    ...         print(msg["type"], msg["seq"])
    """

    def __init__(self, client: Client, symbol: str, channels: tuple[str, ...], depth: int) -> None:
        self.client = client
        self.symbol = symbol
        self.channels = frozenset(channels)
        self.depth = depth
        #: The server's ``subscribed`` reply.
        self.reply: dict[str, Any] = {}
        #: Why iteration ended early (connection lost), else None.
        self.error: BaseException | None = None
        self.closed = False
        #: Sequence check of the messages received (lost and conflated counts).
        self.seq = SeqCheck()
        self._buffer: collections.deque[dict[str, Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"<Subscription {self.symbol} {sorted(self.channels)} buffered={len(self._buffer)}>"

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self

    async def __anext__(self) -> dict[str, Any]:
        msg = await self.get(timeout=None)
        if msg is None:
            raise StopAsyncIteration
        return msg

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.unsubscribe()

    @property
    def pending(self) -> int:
        """Number of messages received and not yet read."""
        return len(self._buffer)

    async def get(self, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any] | None:
        """Return the next message; None once the subscription is closed and drained.

        Raises ``TimeoutError`` if nothing arrives within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not self._buffer:
                if self.closed:
                    return None
                self._waiter = self.client.loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
        return self._buffer.popleft()

    def get_nowait(self) -> dict[str, Any] | None:
        """Return the next buffered message, or None if there is none."""
        return self._buffer.popleft() if self._buffer else None

    async def unsubscribe(self, timeout: float | None = DEFAULT_TIMEOUT) -> None:
        """Stop this subscription (idempotent); the iterator ends after the buffered messages."""
        if self.closed:
            return
        self._close(None)
        await self.client._unsubscribe(self, timeout)

    def _push(self, msg: dict[str, Any]) -> None:
        self.seq.check(msg)
        self._buffer.append(msg)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close(self, error: BaseException | None) -> None:
        self.closed = True
        if error is not None and self.error is None:
            self.error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


# -- the connection -------------------------------------------------------------------------------


class _Protocol(asyncio.Protocol):
    """Bytes in, decoded messages to the client; flow control for writes."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.transport: asyncio.Transport | None = None
        if client.mode == "binary":
            # Server messages can be large (open_orders, depth 50): generous limits.
            self.decoder: FrameDecoder | None = FrameDecoder(
                MAX_FRAME_LIMIT, max_map_len=1 << 20, max_array_len=1 << 24
            )
        else:
            self.decoder = None
        self._lines = bytearray()
        self._writable: asyncio.Future[None] | None = None
        self.paused = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport is not a subclass

    def data_received(self, data: bytes) -> None:
        client = self.client
        if self.decoder is not None:
            items: list[Any] = self.decoder.feed(data)
            if items and type(items[-1]) is not dict:
                error = items.pop()
                client._deliver(items)
                client._protocol_failure(f"undecodable data from the server: {error}")
                return
        else:
            items = self._json_lines(data)
        if items:
            client._deliver(items)

    def _json_lines(self, data: bytes) -> list[dict[str, Any]]:
        buf = self._lines
        buf += data
        end = buf.rfind(b"\n")
        if end < 0:
            return []
        chunk = bytes(buf[: end + 1])
        del buf[: end + 1]
        return [json.loads(line) for line in chunk.splitlines() if line.strip()]

    def eof_received(self) -> bool | None:
        return None  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._connection_lost(exc)
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    async def drain(self) -> None:
        while self.paused and self.transport is not None and not self.transport.is_closing():
            self._writable = asyncio.get_running_loop().create_future()
            await self._writable


class Client:
    """One connection to a TradingApp engine. Create it with :func:`connect`.

    Request/response methods take a ``timeout`` (seconds, default :data:`DEFAULT_TIMEOUT`; None
    waits forever) and raise :class:`RequestRejected` when the server refuses the request,
    :class:`ConnectionClosed` when the connection is lost and ``TimeoutError`` on timeout.

    Messages nothing claimed (reports of orders sent by another session of the same account,
    server-initiated ``logout``) are kept in :attr:`unrouted` (the latest
    :data:`UNROUTED_KEEP`) and passed to the callbacks registered with :meth:`add_listener`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, mode: Mode = "binary") -> None:
        if mode not in ("binary", "json"):
            raise ValueError(f"mode must be 'binary' or 'json', not {mode!r}")
        self.loop = loop
        self.mode: Mode = mode
        self.protocol = _Protocol(self)
        #: The account after a successful :meth:`logon`.
        self.account: str | None = None
        #: The server's ``logon`` reply.
        self.session: dict[str, Any] = {}
        #: Why the connection closed, as the error its pending calls got (None while open).
        self.close_reason: BaseException | None = None
        #: Recent messages that no request, order or subscription claimed.
        self.unrouted: collections.deque[dict[str, Any]] = collections.deque(maxlen=UNROUTED_KEEP)
        self.closed = asyncio.Event()
        # Request ids start at a random base: the venue copies an order's immediate reports
        # (with the request_id) to every session of the account, so ids must not collide with
        # those of another connection logged on as the same account.
        self._rids = itertools.count(random_request_id_base())
        self._cid_prefix = secrets.token_hex(5)
        self._cids = itertools.count(1)
        self._pending: dict[Any, asyncio.Future[dict[str, Any]] | _CancelAllWaiter] = {}
        self._orders_by_id: dict[int, OrderHandle] = {}
        self._orders_by_cid: dict[str, OrderHandle] = {}
        self._orders_by_rid: dict[Any, OrderHandle] = {}
        self._subs: dict[str, list[Subscription]] = {}
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._batch_handler: Callable[[list[dict[str, Any]]], None] | None = None
        self._packer = msgpack.Packer(use_bin_type=True, autoreset=True, default=_pack_default)

    def __repr__(self) -> str:
        state = "closed" if self.is_closed else "open"
        return f"<Client {self.mode} {state} account={self.account}>"

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_closed(self) -> bool:
        """True once the connection is closed."""
        return self.closed.is_set()

    @property
    def transport(self) -> asyncio.Transport:
        """The underlying transport (raises :class:`ConnectionClosed` when there is none)."""
        transport = self.protocol.transport
        if transport is None or self.is_closed:
            raise ConnectionClosed("the connection is closed")
        return transport

    # -- sending --------------------------------------------------------------------------------------

    def encode(self, msg: Mapping[str, Any]) -> bytes:
        """Return ``msg`` in this connection's encoding (a binary frame or a JSON line)."""
        if self.mode == "binary":
            body = self._packer.pack(msg)
            return len(body).to_bytes(4, "big") + body
        return (json.dumps(msg, separators=(",", ":"), default=_json_default) + "\n").encode()

    def send(self, msg: Mapping[str, Any]) -> None:
        """Send one message as is (no request id added, no reply awaited)."""
        self.transport.write(self.encode(msg))

    def write_messages(self, msgs: Iterable[Mapping[str, Any]]) -> int:
        """Encode ``msgs`` and send them with one ``write`` call; return the bytes written."""
        encode = self.encode
        data = b"".join([encode(m) for m in msgs])
        if data:
            self.transport.write(data)
        return len(data)

    def write_buffer_size(self) -> int:
        """Bytes written but not yet handed to the kernel."""
        return self.transport.get_write_buffer_size()

    async def drain(self) -> None:
        """Wait while the transport's write buffer is above its high-water mark."""
        await self.protocol.drain()

    def next_request_id(self) -> int:
        """Return a request id unique on this connection."""
        return next(self._rids)

    def next_client_order_id(self) -> str:
        """Return a fresh client order id (a random per-connection prefix and a counter)."""
        return f"{self._cid_prefix}-{next(self._cids)}"

    async def request(
        self, msg: dict[str, Any], *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send ``msg`` with a fresh ``request_id`` and return the direct reply.

        The low-level call behind every request/response method: the reply is the first message
        echoing the request id. A ``reject`` raises :class:`RequestRejected`, a
        ``cancel_reject`` :class:`CancelRejected`.
        """
        reply = await self._request_raw(msg, timeout)
        return _raise_if_reject(reply)

    async def _request_raw(self, msg: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        rid = self.next_request_id()
        msg["request_id"] = rid
        fut: asyncio.Future[dict[str, Any]] = self.loop.create_future()
        self._pending[rid] = fut
        try:
            self.send(msg)
            result: dict[str, Any] = await asyncio.wait_for(fut, timeout)
            return result
        finally:
            self._pending.pop(rid, None)

    # -- session --------------------------------------------------------------------------------------

    async def logon(
        self, account: str, api_key: str, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Log on; return the server's ``logon`` reply (``session_id``, ``heartbeat_interval``).

        Raises :class:`RequestRejected` (reason ``auth_failed``) for a wrong account or key.
        """
        reply = await self.request({"type": "logon", "account": account, "api_key": api_key}, timeout=timeout)
        self.account = reply.get("account", account)
        self.session = reply
        return reply

    async def logout(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, Any] | None:
        """Log out and wait for the server to close the connection; return its ``logout`` reply."""
        if self.is_closed:
            return None
        try:
            reply = await self.request({"type": "logout"}, timeout=timeout)
        except ConnectionClosed:
            return None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closed.wait(), timeout)
        self.account = None
        return reply

    async def test_request(
        self, test_request_id: str | int | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Ask the server for a heartbeat (a ping); return the ``heartbeat`` reply."""
        msg = {"type": "test_request", **_present(test_request_id=test_request_id)}
        return await self.request(msg, timeout=timeout)

    async def ping(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> float:
        """Return the round-trip time of a ``test_request``, in seconds."""
        start = self.loop.time()
        await self.test_request(timeout=timeout)
        return self.loop.time() - start

    async def close(self) -> None:
        """Close the connection (idempotent). Open orders stay on the book; see :meth:`logout`."""
        transport = self.protocol.transport
        if transport is not None and not transport.is_closing():
            transport.close()
        if transport is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closed.wait(), 5)

    # -- orders ---------------------------------------------------------------------------------------

    def new_order_message(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Number,
        price: Number | None = None,
        **options: Unpack[OrderOptions],
    ) -> dict[str, Any]:
        """Return the ``new_order`` message for these arguments (without a ``request_id``).

        ``options`` are the optional fields of :class:`OrderOptions`; any other keyword raises
        ``TypeError``, as an unknown parameter would.
        """
        unknown = options.keys() - OrderOptions.__optional_keys__
        if unknown:
            raise TypeError(f"unexpected order options: {', '.join(sorted(unknown))}")
        msg: dict[str, Any] = {
            "type": "new_order",
            "client_order_id": options.get("client_order_id") or self.next_client_order_id(),
            "symbol": symbol,
            "side": side,
            "order_type": order_type,
            "quantity": to_decimal_string(quantity, "quantity"),
            **_decimals(price=price, stop_price=options.get("stop_price")),
        }
        if options.get("post_only"):
            msg["post_only"] = True
        msg.update(_present(self_trade_prevention=options.get("self_trade_prevention")))
        return msg

    async def submit_order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Number,
        price: Number | None = None,
        *,
        wait: Wait = "ack",
        timeout: float | None = DEFAULT_TIMEOUT,
        **options: Unpack[OrderOptions],
    ) -> OrderHandle:
        """Send a new order and return its :class:`OrderHandle`.

        ``side`` is ``buy`` or ``sell``; ``order_type`` one of ``market``, ``limit``, ``ioc``,
        ``fok``, ``stop_loss``, ``stop_limit``, ``take_profit``, ``take_profit_limit``.
        ``options``: ``stop_price``, ``client_order_id`` (generated when omitted), ``post_only``,
        ``self_trade_prevention`` (:class:`OrderOptions`). ``wait``: ``"ack"`` (default) returns
        after the first report (``new`` or ``rejected``; check ``handle.rejected``), ``"done"``
        after the order is terminal, None at once.
        """
        msg = self.new_order_message(symbol, side, order_type, quantity, price, **options)
        rid = self.next_request_id()
        msg["request_id"] = rid
        handle = OrderHandle(self, msg["client_order_id"], symbol, rid)
        transport = self.transport
        self._orders_by_cid[handle.client_order_id] = handle
        self._orders_by_rid[rid] = handle
        transport.write(self.encode(msg))
        if wait == "ack":
            await handle.ack(timeout)
        elif wait == "done":
            await handle.done(timeout)
        elif wait is not None:
            raise ValueError(f"wait must be 'ack', 'done' or None, not {wait!r}")
        return handle

    def order(self, order_id: int) -> OrderHandle | None:
        """Return the handle of a live (not terminal) order sent by this client, if any."""
        return self._orders_by_id.get(order_id)

    async def cancel(
        self,
        symbol: str | None = None,
        order_id: int | None = None,
        orig_client_order_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Cancel one open order; return its ``canceled`` execution report.

        Name the order by ``order_id`` or ``orig_client_order_id``; ``symbol`` may be None.
        Raises :class:`CancelRejected` (e.g. ``unknown_order``, ``order_not_open``) if refused.
        """
        if order_id is None and orig_client_order_id is None:
            raise ValueError("give order_id or orig_client_order_id")
        msg = {
            "type": "cancel",
            **_present(symbol=symbol, order_id=order_id, orig_client_order_id=orig_client_order_id),
        }
        return await self.request(msg, timeout=timeout)

    async def replace(
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
        """Amend an open order's quantity (new *total*), price or stop price.

        Returns the ``replaced`` execution report; raises :class:`CancelRejected` if the venue
        refused (the order is then unchanged). ``client_order_id`` renames the order.
        """
        if quantity is None and price is None and stop_price is None:
            raise ValueError("give quantity, price or stop_price")
        msg = {
            "type": "replace",
            "symbol": symbol,
            "order_id": order_id,
            **_decimals(quantity=quantity, price=price, stop_price=stop_price),
            **_present(client_order_id=client_order_id),
        }
        return await self.request(msg, timeout=timeout)

    async def cancel_all(
        self, symbol: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> CancelAllResult:
        """Cancel every open order of the account (in ``symbol``, or everywhere).

        Waits for the server's acknowledgement and then for the ``canceled`` report of each
        order it counted; an order that traded away meanwhile sends none, so after ``timeout``
        seconds the reports received so far are returned.
        """
        msg = {"type": "cancel_all", **_present(symbol=symbol)}
        rid = self.next_request_id()
        msg["request_id"] = rid
        waiter = _CancelAllWaiter(self.loop)
        self._pending[rid] = waiter
        try:
            self.send(msg)
            try:
                await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
            except TimeoutError:
                if waiter.reply is None:
                    raise
        finally:
            self._pending.pop(rid, None)
        assert waiter.reply is not None
        return CancelAllResult(waiter.reply, waiter.reports)

    async def order_status(
        self,
        symbol: str,
        order_id: int | None = None,
        client_order_id: str | None = None,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> dict[str, Any]:
        """Return one order's state: an execution report with exec_type ``order_status``."""
        if order_id is None and client_order_id is None:
            raise ValueError("give order_id or client_order_id")
        msg = {
            "type": "order_status",
            "symbol": symbol,
            **_present(order_id=order_id, client_order_id=client_order_id),
        }
        return await self.request(msg, timeout=timeout)

    async def open_orders(
        self, symbol: str | None = None, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        """Return the account's open orders (order states, oldest first)."""
        reply = await self.request({"type": "open_orders", **_present(symbol=symbol)}, timeout=timeout)
        orders: list[dict[str, Any]] = reply["orders"]
        return orders

    async def balances(self, *, timeout: float | None = DEFAULT_TIMEOUT) -> dict[str, dict[str, Decimal]]:
        """Return the account's balances: asset -> {total, available, reserved} as Decimals."""
        reply = await self.request({"type": "balances"}, timeout=timeout)
        return {
            asset: {key: Decimal(value) for key, value in entry.items()}
            for asset, entry in reply["balances"].items()
        }

    # -- market data ----------------------------------------------------------------------------------

    async def book(
        self, symbol: str, depth: int = 10, *, timeout: float | None = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Return a one-shot snapshot of ``symbol``'s book (a ``depth`` message)."""
        return await self.request({"type": "book", "symbol": symbol, "depth": depth}, timeout=timeout)

    async def subscribe(
        self,
        symbol: str,
        channels: Iterable[str] = _ALL_CHANNELS,
        depth: int = 10,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
    ) -> Subscription:
        """Subscribe to ``symbol``'s market data; return a :class:`Subscription` (async iterator).

        ``channels``: any of ``bbo``, ``depth``, ``trades``; ``depth``: levels per side (1-50).
        Raises :class:`RequestRejected` (e.g. ``unknown_symbol``) if refused.
        """
        chans = tuple(dict.fromkeys(channels))
        sub = Subscription(self, symbol, chans, depth)
        # registered before sending: the snapshots follow the reply immediately
        self._subs.setdefault(symbol, []).append(sub)
        try:
            sub.reply = await self.request(
                {"type": "subscribe", "symbol": symbol, "channels": list(chans), "depth": depth},
                timeout=timeout,
            )
        except BaseException:
            self._detach(sub)
            sub._close(None)
            raise
        return sub

    def _detach(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.symbol)
        if subs is not None and sub in subs:
            subs.remove(sub)
            if not subs:
                del self._subs[sub.symbol]

    async def _unsubscribe(self, sub: Subscription, timeout: float | None) -> None:
        self._detach(sub)
        # stop only the channels no other subscription of this client still needs
        still = set().union(*(s.channels for s in self._subs.get(sub.symbol, ())))
        channels = sorted(sub.channels - still)
        if not channels or self.is_closed:
            return
        with contextlib.suppress(ConnectionClosed):
            await self.request(
                {"type": "unsubscribe", "symbol": sub.symbol, "channels": channels}, timeout=timeout
            )

    # -- receiving ------------------------------------------------------------------------------------

    def add_listener(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(msg)`` for every message received; return a function that removes it."""
        self._listeners.append(callback)

        def remove() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return remove

    def listen(self, handler: Callable[[list[dict[str, Any]]], None] | None) -> None:
        """Low level: hand every batch of decoded messages to ``handler`` and route nothing else.

        For load generators: requests, order handles and subscriptions are bypassed while a
        handler is set (pass None to restore normal routing), and so is the automatic answer to
        the server's ``test_request`` (a logged-on connection that stays quiet must answer it
        itself). The handler runs in the event loop's ``data_received`` callback, once per chunk
        of bytes read.
        """
        self._batch_handler = handler

    def _deliver(self, items: list[dict[str, Any]]) -> None:
        handler = self._batch_handler
        if handler is not None:
            handler(items)
            return
        for msg in items:
            try:
                self._route(msg)
            except Exception as e:  # a malformed server message must not kill the connection
                self.unrouted.append({"type": "client_error", "error": repr(e), "message": msg})

    def _route(self, msg: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(msg)
        kind = msg.get("type")
        claimed = False
        if kind == "execution_report":
            claimed = self._route_report(msg)
        rid = msg.get("request_id")
        if rid is not None:
            waiter = self._pending.get(rid)
            if waiter is not None:
                claimed = True
                if type(waiter) is _CancelAllWaiter:
                    if waiter.feed(msg):
                        self._pending.pop(rid, None)
                else:
                    self._pending.pop(rid, None)
                    if not waiter.done():  # type: ignore[union-attr]
                        waiter.set_result(msg)  # type: ignore[union-attr]
                return
            if kind == "reject":
                handle = self._orders_by_rid.pop(rid, None)
                if handle is not None:
                    self._forget_client_order_id(handle)
                    handle._fail(_rejection(msg))
                    return
        channel = _CHANNEL_OF.get(kind)  # type: ignore[arg-type]
        if channel is not None and rid is None:
            for sub in self._subs.get(msg.get("symbol"), ()):  # type: ignore[arg-type]
                if channel in sub.channels:
                    sub._push(msg)
                    claimed = True
        elif kind == "test_request":  # the server asks for a heartbeat
            with contextlib.suppress(ConnectionClosed):
                self.send({"type": "heartbeat", "test_request_id": msg.get("test_request_id")})
            claimed = True
        if not claimed:
            self.unrouted.append(msg)

    def _route_report(self, msg: dict[str, Any]) -> bool:
        if msg.get("exec_type") == "order_status":
            return False  # a query's answer, not an event of the order
        order_id = msg.get("order_id")
        handle = self._orders_by_id.get(order_id) if order_id is not None else None
        if handle is None:
            handle = self._claim_first_report(msg)
            if handle is None:
                return False
            if order_id is not None:
                handle.order_id = order_id
                self._orders_by_id[order_id] = handle
        if handle._feed(msg) and handle.order_id is not None:
            self._orders_by_id.pop(handle.order_id, None)
        return True

    def _claim_first_report(self, msg: dict[str, Any]) -> OrderHandle | None:
        """The handle awaiting its first report ``msg``, no longer awaiting it; None if none.

        Matched by the ``request_id`` the venue echoes, which is exact even when two orders in
        flight share a ``client_order_id`` (the venue refuses the second as a duplicate); by
        ``client_order_id`` only when the report carries no request id of this connection.
        """
        handle = self._orders_by_rid.pop(msg.get("request_id"), None)
        if handle is None:
            handle = self._orders_by_cid.get(msg.get("client_order_id"))  # type: ignore[arg-type]
            if handle is None:
                return None
            del self._orders_by_rid[handle.request_id]
        self._forget_client_order_id(handle)
        return handle

    def _forget_client_order_id(self, handle: OrderHandle) -> None:
        # another order sent since with the same client_order_id keeps its entry
        if self._orders_by_cid.get(handle.client_order_id) is handle:
            del self._orders_by_cid[handle.client_order_id]

    def _protocol_failure(self, text: str) -> None:
        self.close_reason = ConnectionClosed(text)
        transport = self.protocol.transport
        if transport is not None:
            transport.abort()

    def _connection_lost(self, exc: Exception | None) -> None:
        if self.close_reason is None:
            self.close_reason = ConnectionClosed(f"connection lost: {exc}" if exc else "connection closed")
        error = self.close_reason
        self.closed.set()
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if type(waiter) is _CancelAllWaiter:
                _fail(waiter.future, error)
            else:
                _fail(waiter, error)  # type: ignore[arg-type]
        handles = {*self._orders_by_id.values(), *self._orders_by_rid.values()}
        self._orders_by_id.clear()
        self._orders_by_cid.clear()
        self._orders_by_rid.clear()
        for handle in handles:
            handle._fail(error)
        subs = [s for group in self._subs.values() for s in group]
        self._subs.clear()
        for sub in subs:
            sub._close(error)


def _pack_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


def _json_default(value: Any) -> Any:
    return _pack_default(value)


async def connect(
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    mode: Mode = "binary",
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Client:
    """Open a connection to a TradingApp engine and return its :class:`Client`.

    ``mode="binary"`` (default) speaks length-prefixed msgpack; ``mode="json"`` speaks
    JSON-lines (easier to watch with tcpdump, slower). Raises ``OSError`` (e.g.
    ``ConnectionRefusedError``) if the engine is unreachable. Log on next (:meth:`Client.logon`).
    """
    loop = asyncio.get_running_loop()
    client = Client(loop, mode)
    await asyncio.wait_for(loop.create_connection(lambda: client.protocol, host, port), timeout)
    transport = client.protocol.transport
    assert transport is not None
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    transport.set_write_buffer_limits(high=1 << 20)
    return client
