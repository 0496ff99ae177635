"""The session actor: one per connection, driven by asyncio's ``Protocol`` callbacks.

Inbound: bytes go through the sans-I/O :class:`ServerCodec` (binary frames or JSON lines, chosen
by the first byte), each message is checked against the schema, and requests are converted to
ticks and lots with the symbol's rules and sent to the risk actor (order entry) or the feed
publisher (market data). When the next actor's mailbox is full the session stops reading its
socket until there is room: nothing is dropped, nothing grows without bound.

Outbound: replies and reports are encoded in the connection's mode and written once per event
loop iteration. While the client is not reading (the transport asked us to pause writing), BBO
and depth messages are conflated (only the latest per symbol is kept, marked with how many it
replaced) and everything else is queued up to ``subscriber_queue`` messages; past that, or when
writing stays paused longer than the write deadline, the client is disconnected: a final
``logout`` with reason ``slow_consumer`` goes after what was already written, and the connection
is reset if the client has not read up to it within ``SLOW_CONSUMER_LINGER``.

Timers: each session has one timer at a time. First the logon timeout: a connection that has
neither logged on nor subscribed to market data by then is closed. Then the keep-alive, with
FIX HeartBtInt semantics (``heartbeat_interval``): a ``heartbeat`` when nothing was sent for an
interval; for a logged-on session also a ``test_request`` when nothing was received for an
interval and a fifth, and a ``logout`` (``heartbeat_timeout``) and close when nothing arrives
within one more interval. JSON-lines sessions (the netcat debug mode, often a person reading
between commands) only get heartbeats: silence never ends them. The timer reads two timestamps
the socket callbacks keep (last write, last read), so the message path itself pays no timer work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import socket
import time
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from tradingapp.actors.base import Mailbox
from tradingapp.actors.feed import Conflated, Encoded, Subscribe, Unsubscribe
from tradingapp.actors.messages import (
    Barrier,
    CancelAllRequest,
    CancelRequest,
    NewOrderRequest,
    QueryRequest,
    ReplaceRequest,
)
from tradingapp.engine.numbers import Grid, NumberError
from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side
from tradingapp.latency import Mark, Trace, stats_reply
from tradingapp.protocol.errors import ProtocolError
from tradingapp.protocol.framing import Mode, ServerCodec
from tradingapp.protocol.human import HELP_TEXT
from tradingapp.reports import cancel_reject_message, refused_order_fields, reject, rejected_order

if TYPE_CHECKING:
    from tradingapp.server import Engine

log = structlog.get_logger("tradingapp.session")

#: Seconds a client may stay unread (writing paused) before it is cut off.
WRITE_DEADLINE = 5.0
#: Seconds a slow consumer's connection lingers after its final ``logout`` (``slow_consumer``):
#: a client that is reading, only too slowly, gets what was already written and then the reason;
#: one that reads nothing is reset when the time is up.
SLOW_CONSUMER_LINGER = 2.0
#: Bytes the transport may buffer before it asks us to pause writing.
WRITE_HIGH_WATER = 1 << 20
#: Inbound silence, in heartbeat intervals, after which a logged-on client gets a test_request
#: (FIX engines commonly allow the interval plus 20% for transmission time).
TEST_REQUEST_AFTER = 1.2

_ORDER_ENTRY = frozenset({"new_order", "cancel", "replace", "cancel_all"})
_NEEDS_LOGON = _ORDER_ENTRY | {"order_status", "open_orders", "balances", "stats"}
# Wire values to enum members by dict lookup (calling the enum class costs several times more);
# validation has already refused any value not in these.
_SIDE = {member.value: member for member in Side}
_ORDER_TYPE = {member.value: member for member in OrderType}
_STP = {member.value: member for member in SelfTradePrevention}


def _plain_decimal(seconds: float) -> str:
    """A config float as the wire's plain decimal string: ``30.0`` -> ``"30"``, never ``"1e-05"``."""
    return format(Decimal(repr(seconds)).normalize(), "f")


class TokenBucket:
    """``rate`` tokens per second up to ``burst``; one order-entry message costs one token."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: int, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


#: Refusal log lines (``protocol_reject``, ``request_refused``) per session per second at most.
REFUSAL_LOG_RATE = 20


class RefusalLog:
    """Logs a session's refusals, at most ``REFUSAL_LOG_RATE`` lines a second (a token bucket).

    A client flooding bad or rate-limited requests would otherwise cost a log line each (several
    microseconds and disk space per refusal, more than an accepted order costs); the lines left
    out are counted, and the next line logged carries ``suppressed``: how many were.
    """

    __slots__ = ("_bucket", "_suppressed")

    def __init__(self) -> None:
        self._bucket = TokenBucket(REFUSAL_LOG_RATE, REFUSAL_LOG_RATE)
        self._suppressed = 0

    def __call__(self, event: str, **fields: Any) -> None:
        """Log ``event`` with ``fields`` unless this second's lines are used up."""
        if not self._bucket.take():
            self._suppressed += 1
            return
        if self._suppressed:
            fields["suppressed"] = self._suppressed
            self._suppressed = 0
        log.info(event, **fields)


class Session(asyncio.Protocol):
    """One client connection (either wire mode)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.config = engine.config
        server = engine.config.server
        self.session_id = engine.next_session_id()
        # human-form client order ids are made unique per connection: "s<session>-h<n>"
        self.codec = ServerCodec(server.max_frame, id_prefix=f"s{self.session_id}-h")
        self.transport: asyncio.Transport | None = None
        self.peer: Any = None
        self.account: str | None = None
        self.auth_failures = 0
        self.received = 0  # complete messages decoded
        self.closed = False
        self.logging_out = False  # logout received: later input is ignored
        self.market_data = False  # subscribed to market data (kept open without a logon)
        limits = engine.config.limits
        rate = limits.max_orders_per_second
        self.bucket = TokenBucket(rate, limits.burst or rate) if rate else None
        self._log_refused = RefusalLog()
        # inbound work waiting for room in the next actor's mailbox: (mailbox, message)
        self._pending: deque[tuple[Mailbox, Any]] = deque()
        self._reading_paused = False
        # outbound
        self._wbuf: list[bytes] = []
        self._flush_scheduled = False
        self._writing_paused = False
        self._held: list[bytes] = []
        self._conflated: dict[tuple[str, str], Conflated] = {}
        self._queue_cap = server.subscriber_queue
        self._deadline: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()
        # keep-alive: the logon timer, then the heartbeat timer (one at a time)
        self._timer: asyncio.TimerHandle | None = None
        self._interval = server.heartbeat_interval
        self._last_sent = self._last_heard = self.loop.time()
        self._test_request_at: float | None = None  # when the unanswered test_request went out
        self._test_requests = 0
        # latency instrumentation (``--latency-stats``): receive stamp, messages awaiting a write
        self.latency = engine.latency
        self._received_ns = 0
        self._marks: list[Mark] = []
        self._held_marks: list[Mark] = []

    # -- connection lifecycle ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transport is not a subclass
        self.peer = transport.get_extra_info("peername")
        if self.engine.stopping:
            # accepted just before the listener closed: the engine no longer takes sessions
            self.closed = True
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        transport.set_write_buffer_limits(high=WRITE_HIGH_WATER)  # type: ignore[attr-defined]
        self.engine.sessions.add(self)
        self._timer = self.loop.call_later(self.config.server.logon_timeout, self._logon_check)
        log.info("session_connected", session_id=self.session_id, peer=str(self.peer))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.engine.sessions.discard(self)
        if self.account is not None:
            self.engine.outbox.logged_off(self.account, self)
        self.engine.feed.mailbox.put_always(Unsubscribe(self, None, None, None, silent=True))
        for timer in (self._deadline, self._timer):
            if timer is not None:
                timer.cancel()
        self._pending.clear()
        log.info(
            "session_disconnected", session_id=self.session_id, account=self.account, error=str(exc or "")
        )

    def _logon_check(self) -> None:
        # Talking is not logging on: only a logon (or a market-data subscription, which needs
        # none) keeps the connection past the logon timeout.
        self._timer = None
        if self.closed or self.account is not None:
            return
        if self.market_data:
            self._keep_alive()
        else:
            self.close_with(reject(Reason.NOT_LOGGED_IN, "not logged on within the logon timeout"))

    def _keep_alive(self) -> None:
        # The session's timer once it is established; see the module docstring.
        self._timer = None
        if self.closed or self.logging_out:
            return
        now = self.loop.time()
        interval = self._interval
        if self._test_request_at is not None and self._last_heard >= self._test_request_at:
            self._test_request_at = None
        if self._test_request_at is not None:
            if now - self._test_request_at >= interval:
                log.info("heartbeat_timeout", session_id=self.session_id, account=self.account)
                text = "no answer to the test_request"
                self.close_with({"type": "logout", "reason": Reason.HEARTBEAT_TIMEOUT.value, "text": text})
                return
            due = self._test_request_at + interval
        elif self.account is not None and self.codec.mode is not Mode.JSON_LINES:
            if now - self._last_heard >= interval * TEST_REQUEST_AFTER:
                self._test_requests += 1
                self.send({"type": "test_request", "test_request_id": self._test_requests})
                self._test_request_at = self._last_sent = now
                due = now + interval
            else:
                due = self._last_heard + interval * TEST_REQUEST_AFTER
        else:
            # market data without a logon, or a person typing JSON lines: heartbeats only
            due = now + interval
        if now - self._last_sent >= interval:
            self.send({"type": "heartbeat"})
            self._last_sent = now
        self._timer = self.loop.call_at(min(due, self._last_sent + interval), self._keep_alive)

    def close_with(self, message: dict[str, Any]) -> None:
        """Send a final message (best effort) and close the connection."""
        if self.closed or self.transport is None:
            return
        self._write_now(self.codec.encode(message))
        self.closed = True
        self.transport.close()

    # -- inbound -----------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.closed or self.logging_out:
            return
        self._last_heard = self.loop.time()
        now = time.time_ns()
        if self.latency is not None:
            self._received_ns = time.perf_counter_ns()
        try:
            items = self.codec.feed(data)
        except Exception:
            # A decoder bug: the byte stream is no longer trustworthy, so answer and close rather
            # than let the transport drop the connection without a word.
            log.exception("session_decode_failed", session_id=self.session_id)
            self.close_with(reject(Reason.INTERNAL_ERROR, "internal error while decoding; closing"))
            return
        for item in items:
            if type(item) is ProtocolError:
                self._log_refused(
                    "protocol_reject", session_id=self.session_id, reason=item.reason.value, text=item.text
                )
                self.send(item.to_message())
                if item.fatal:
                    self._flush()
                    self.closed = True
                    assert self.transport is not None
                    self.transport.close()
                    return
                continue
            self.received += 1
            try:
                self._dispatch(item, now)
            except Exception:
                log.exception("session_message_failed", session_id=self.session_id)
                self.reply(
                    reject(Reason.INTERNAL_ERROR, "internal error", item.get("type"), item.get("request_id"))
                )
            if self.logging_out:
                break  # nothing after a logout is acted on
        self._forward()

    def _forward(self) -> None:
        # Hand queued requests on while their mailboxes have room; otherwise stop reading.
        pending = self._pending
        while pending:
            mailbox, message = pending[0]
            if not mailbox.has_room():
                if not self._reading_paused and self.transport is not None:
                    self._reading_paused = True
                    self.transport.pause_reading()
                    mailbox.call_when_room(self._room_available)
                return
            pending.popleft()
            mailbox.put_nowait(message)

    def _room_available(self) -> None:
        # The mailbox this session waited for has room (its turn among the waiting sessions).
        self._reading_paused = False
        if self.closed:
            return
        self._forward()
        if not self._reading_paused and self.transport is not None and not self.engine.stopping:
            self.transport.resume_reading()

    @property
    def forwarding(self) -> bool:
        """True while requests read from the socket still wait for room in a mailbox."""
        return bool(self._pending)

    def _dispatch(self, msg: dict[str, Any], now: int) -> None:
        mtype = msg["type"]
        rid = msg.get("request_id")
        if mtype in _NEEDS_LOGON and self.account is None:
            text = f"log on before {mtype}"
            self._log_refusal(msg, Reason.NOT_LOGGED_IN, text)
            self.reply(reject(Reason.NOT_LOGGED_IN, text, mtype, rid))
            return
        if mtype in _ORDER_ENTRY and self.bucket is not None and not self.bucket.take():
            self._refuse(msg, Reason.RATE_LIMITED, "order rate limit exceeded", now)
            return
        handler = _HANDLERS.get(mtype)
        if handler is None:
            text = f"{mtype} is not accepted from clients"
            self._log_refusal(msg, Reason.UNKNOWN_MESSAGE_TYPE, text)
            self.reply(reject(Reason.UNKNOWN_MESSAGE_TYPE, text, mtype, rid))
            return
        handler(self, msg, rid, now)

    def _refuse(self, msg: dict[str, Any], reason: Reason, text: str, now: int) -> None:
        # An order-entry message refused by the session itself.
        self._log_refusal(msg, reason, text)
        rid = msg.get("request_id")
        mtype = msg["type"]
        if mtype == "new_order":
            spec = self.config.symbol(msg["symbol"])
            self.reply(rejected_order(spec, refused_order_fields(spec, msg), reason, text, now, rid))
        elif mtype in ("cancel", "replace"):
            self.reply(
                cancel_reject_message(
                    mtype,
                    reason,
                    text,
                    rid,
                    order_id=msg.get("order_id"),
                    client_order_id=msg.get("client_order_id"),
                    orig_client_order_id=msg.get("orig_client_order_id"),
                    symbol=msg.get("symbol"),
                )
            )
        else:
            self.reply(reject(reason, text, mtype, rid))

    def _log_refusal(self, msg: dict[str, Any], reason: Reason, text: str) -> None:
        # Refusals made here never reach risk, so the journal has no record of them (it has the
        # ones risk makes, as ``X`` records): the log is their audit trail. Rejects only, so the
        # accepted-order path pays nothing; a flood of them is counted rather than logged.
        self._log_refused(
            "request_refused",
            session_id=self.session_id,
            account=self.account,
            ref_type=msg.get("type"),
            reason=reason.value,
            text=text,
            client_order_id=msg.get("client_order_id"),
        )

    def _spec(self, msg: dict[str, Any], now: int) -> SymbolSpec | None:
        symbol = msg.get("symbol")
        spec = self.config.symbol(symbol) if symbol is not None else None
        if spec is None and symbol is not None:
            self._refuse(msg, Reason.UNKNOWN_SYMBOL, f"unknown symbol {symbol!r}", now)
        return spec

    # -- session messages --------------------------------------------------------------------------

    def _on_logon(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if self.account is not None:
            self.reply(reject(Reason.ALREADY_LOGGED_IN, f"already logged on as {self.account}", "logon", rid))
            return
        acfg = self.config.account(msg["account"])
        key = msg["api_key"]
        expected = acfg.api_key if acfg is not None and acfg.api_key is not None else ""
        # compare in constant time whether or not the account exists
        good = (
            hmac.compare_digest(expected.encode(), str(key).encode()) and acfg is not None and bool(expected)
        )
        if not good:
            self.auth_failures += 1
            log.warning(
                "logon_failed",
                session_id=self.session_id,
                account=str(msg["account"])[:64],
                failures=self.auth_failures,
            )
            self.reply(reject(Reason.AUTH_FAILED, "unknown account or wrong api key", "logon", rid))
            if self.auth_failures >= self.config.server.max_auth_failures:
                self.engine.outbox.publish([(self._close_after_auth_failures, None)])
            return
        assert acfg is not None
        self.account = acfg.account
        self.engine.outbox.logged_on(self.account, self)
        if self._timer is not None:  # the logon timer: heartbeats start now
            self._timer.cancel()
        self._timer = self.loop.call_later(self._interval, self._keep_alive)
        log.info("logon", session_id=self.session_id, account=self.account)
        reply: dict[str, Any] = {
            "type": "logon",
            "account": self.account,
            "session_id": self.session_id,
            "heartbeat_interval": _plain_decimal(self.config.server.heartbeat_interval),
        }
        if rid is not None:
            reply["request_id"] = rid
        self.reply(reply)

    def _close_after_auth_failures(self, _: Any) -> None:
        self.close_with(reject(Reason.AUTH_FAILED, "too many failed logons"))

    def _on_logout(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        # The goodbye goes behind the replies to every earlier request: a barrier follows them
        # through the feed (market data), risk (for a logged-on session: order entry, queries),
        # every book, and the feed again (a subscription that waited for a book's snapshot).
        self.logging_out = True
        reply: dict[str, Any] = {"type": "logout", "text": "goodbye"}
        if rid is not None:
            reply["request_id"] = rid
        engine = self.engine
        books = [book.mailbox for book in engine.books.values()]
        stages = [books, [engine.feed.mailbox]]
        if self.account is not None:
            stages.insert(0, [engine.risk.mailbox])
        deliveries = [(self.send, reply), (self._close_now, None)]
        self._pending.append((engine.feed.mailbox, Barrier(self.account, stages, deliveries, engine.outbox)))

    def _close_now(self, _: Any) -> None:
        self._flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _on_heartbeat(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        """A client heartbeat needs no answer (FIX 0)."""

    def _on_test_request(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        reply: dict[str, Any] = {"type": "heartbeat"}
        if msg.get("test_request_id") is not None:
            reply["test_request_id"] = msg["test_request_id"]
        if rid is not None:
            reply["request_id"] = rid
        self.reply(reply)

    def _on_help(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        reply: dict[str, Any] = {"type": "help", "text": HELP_TEXT}
        if rid is not None:
            reply["request_id"] = rid
        self.reply(reply)

    # -- order entry -------------------------------------------------------------------------------

    def _on_new_order(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        spec = self._spec(msg, now)
        if spec is None:
            return
        try:
            quantity = spec.quantity.to_units(msg["quantity"])
            price = _optional_units(spec.price, msg, "price")
            stop = _optional_units(spec.price, msg, "stop_price")
        except NumberError as bad:
            self._refuse(msg, bad.reason, bad.text, now)
            return
        assert self.account is not None
        request = NewOrderRequest(
            self,
            rid,
            now,
            self.account,
            spec.symbol,
            _SIDE[msg["side"]],
            _ORDER_TYPE[msg["order_type"]],
            quantity,
            price,
            stop,
            bool(msg.get("post_only")),
            _STP[msg.get("self_trade_prevention") or "cancel_newest"],
            msg["client_order_id"],
        )
        if self.latency is not None:
            request.trace = Trace(self._received_ns)
        self._pending.append((self.engine.risk.mailbox, request))

    def _on_cancel(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if msg.get("symbol") is not None and self._spec(msg, now) is None:
            return
        assert self.account is not None
        request = CancelRequest(
            self,
            rid,
            now,
            self.account,
            msg.get("symbol"),
            msg.get("order_id"),
            msg.get("orig_client_order_id"),
            msg.get("client_order_id"),
        )
        self._pending.append((self.engine.risk.mailbox, request))

    def _on_replace(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        spec = self._spec(msg, now)
        if spec is None:
            if msg.get("symbol") is None:
                self._refuse(msg, Reason.MISSING_FIELD, "symbol is required for replace", now)
            return
        try:
            quantity = _optional_units(spec.quantity, msg, "quantity")
            price = _optional_units(spec.price, msg, "price")
            stop = _optional_units(spec.price, msg, "stop_price")
        except NumberError as bad:
            self._refuse(msg, bad.reason, bad.text, now)
            return
        assert self.account is not None
        request = ReplaceRequest(
            self,
            rid,
            now,
            self.account,
            spec.symbol,
            msg.get("order_id"),
            msg.get("orig_client_order_id"),
            msg.get("client_order_id"),
            quantity,
            price,
            stop,
        )
        self._pending.append((self.engine.risk.mailbox, request))

    def _on_cancel_all(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if msg.get("symbol") is not None and self._spec(msg, now) is None:
            return
        assert self.account is not None
        request = CancelAllRequest(self, rid, now, self.account, msg.get("symbol"))
        self._pending.append((self.engine.risk.mailbox, request))

    def _query(self, kind: str, msg: dict[str, Any], rid: Any) -> None:
        assert self.account is not None
        request = QueryRequest(
            self, rid, kind, self.account, msg.get("symbol"), msg.get("order_id"), msg.get("client_order_id")
        )
        self._pending.append((self.engine.risk.mailbox, request))

    def _on_order_status(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if self._spec(msg, now) is not None:
            self._query("order_status", msg, rid)

    def _on_open_orders(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if msg.get("symbol") is None or self._spec(msg, now) is not None:
            self._query("open_orders", msg, rid)

    def _on_balances(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        self._query("balances", msg, rid)

    def _on_stats(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        self.reply(stats_reply(self.latency, rid, msg["reset"]))

    # -- market data -------------------------------------------------------------------------------

    def _on_subscribe(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        if self.config.symbol(msg["symbol"]) is not None:
            self.market_data = True
        request = Subscribe(self, rid, msg["symbol"], list(msg["channels"]), int(msg.get("depth") or 10))
        self._pending.append((self.engine.feed.mailbox, request))

    def _on_unsubscribe(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        channels = msg.get("channels")
        request = Unsubscribe(self, rid, msg.get("symbol"), None if channels is None else list(channels))
        self._pending.append((self.engine.feed.mailbox, request))

    def _on_book(self, msg: dict[str, Any], rid: Any, now: int) -> None:
        levels = int(msg.get("depth") or 10)
        request = Subscribe(self, rid, msg["symbol"], ["depth"], levels, once=True)
        self._pending.append((self.engine.feed.mailbox, request))

    # -- outbound ----------------------------------------------------------------------------------

    def reply(self, message: dict[str, Any]) -> None:
        """Send a direct reply after everything the engine said before it (durability order)."""
        self.engine.outbox.publish([(self.send, message)])

    def send(self, message: dict[str, Any]) -> None:
        """Encode and queue one message for this client."""
        if self.closed:
            return
        self._queue(self.codec.encode(message))

    def send_feed(self, encoded: Encoded) -> None:
        """Queue one market-data message (encoded once for all subscribers)."""
        if self.closed:
            return
        data = encoded.json() if self.codec.mode is Mode.JSON_LINES else encoded.binary()
        if self._writing_paused and encoded.key is not None:
            key = (encoded.key, encoded.message["symbol"])
            held = self._conflated.get(key)
            if held is None:
                self._conflated[key] = Conflated(encoded)
            else:
                held.replace(encoded)
            return
        self._queue(data)

    def _queue(self, data: bytes) -> None:
        if self._writing_paused:
            held = self._held
            held.append(data)
            if len(held) > self._queue_cap:
                self._slow_consumer("outbound queue overflow")
            return
        self._wbuf.append(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._wbuf and self.transport is not None and not self.transport.is_closing():
            data = b"".join(self._wbuf)
            self._wbuf = []
            self.transport.write(data)
            self._last_sent = self.loop.time()
            if self._marks:
                assert self.latency is not None
                self.latency.written(self._marks)
                self._marks = []
        else:
            self._wbuf = []

    def _write_now(self, data: bytes) -> None:
        self._flush()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def mark(self, kind: int, trace: Trace) -> None:
        """The message just queued is sampled for ``kind``'s latency: record it when written."""
        (self._held_marks if self._writing_paused else self._marks).append((kind, trace))

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._deadline = self.loop.call_later(WRITE_DEADLINE, self._slow_consumer, "write deadline exceeded")

    def resume_writing(self) -> None:
        if self.closed:
            return  # closing: nothing more is queued, and a slow consumer's linger timer stays
        self._writing_paused = False
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        held, self._held = self._held, []
        conflated, self._conflated = self._conflated, {}
        if self._held_marks:
            self._marks += self._held_marks
            self._held_marks = []
        for data in held:
            self._queue(data)
        mode_json = self.codec.mode is Mode.JSON_LINES
        for held_feed in conflated.values():
            encoded = held_feed.result()
            self._queue(encoded.json() if mode_json else encoded.binary())

    def _slow_consumer(self, why: str) -> None:
        if self.closed or self.transport is None:
            return
        log.warning("slow_consumer_disconnected", session_id=self.session_id, account=self.account, why=why)
        self._held = []
        self._held_marks = []
        self._conflated = {}
        text = f"disconnected: {why}"
        self.close_with({"type": "logout", "reason": Reason.SLOW_CONSUMER.value, "text": text})
        if self._deadline is not None:
            self._deadline.cancel()
        # the one write timer now is the linger's end (cancelled when the connection goes)
        self._deadline = self.loop.call_later(SLOW_CONSUMER_LINGER, self._reset_if_connected)

    def _reset_if_connected(self) -> None:
        # The end of a slow consumer's linger: a client that has not read up to its logout is reset.
        if self in self.engine.sessions and self.transport is not None:
            self.transport.abort()


def _optional_units(grid: Grid, msg: dict[str, Any], key: str) -> int | None:
    """``msg[key]`` as a count of ``grid`` steps (``key`` named in error texts), None if absent."""
    value = msg.get(key)
    return None if value is None else grid.to_units(value, field=key)


#: Client message type -> its handler (every ``_on_<type>`` method of :class:`Session`).
_HANDLERS = {
    name[4:]: handler
    for name, handler in vars(Session).items()
    if name.startswith("_on_") and callable(handler)
}
