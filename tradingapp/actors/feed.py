"""The feed publisher: fans BBO, L2 depth and trades out to subscribers.

It keeps, per symbol, the latest BBO, the latest depth (as many levels as any subscriber wants)
and the last trades, all from the book actors' :class:`MarketUpdate` messages, which reach it in
book order once durable. A subscription is answered from that state (a snapshot whose ``seq``
the next update continues), so no subscriber ever sees a gap between snapshot and updates.

Each message is built and encoded once per update and handed to every subscriber's session as
bytes. A slow subscriber never slows anyone else: its session conflates BBO and depth (latest
wins) and disconnects it if its trade backlog overflows (see :mod:`tradingapp.actors.session`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from tradingapp.actors.base import Actor
from tradingapp.actors.messages import Barrier, DepthInterest, MarketUpdate
from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.protocol.framing import encode_frame, encode_json_line
from tradingapp.reports import bbo_message, depth_message, reject

#: Trades kept per symbol to replay to a new trades subscriber as its snapshot.
RECENT_TRADES = 20
#: Most depth levels a subscriber may ask for.
MAX_DEPTH_LEVELS = 50
CHANNELS = ("bbo", "depth", "trades")


class Encoded:
    """One message, encoded lazily once per wire mode for all subscribers."""

    __slots__ = ("_binary", "_json", "key", "message")

    def __init__(self, message: dict[str, Any], key: str | None = None) -> None:
        self.message = message
        self.key = key  # set for conflatable messages: (type, symbol); latest wins
        self._binary: bytes | None = None
        self._json: bytes | None = None

    def binary(self) -> bytes:
        """The length-prefixed msgpack frame."""
        if self._binary is None:
            self._binary = encode_frame(self.message)
        return self._binary

    def json(self) -> bytes:
        """The JSON line."""
        if self._json is None:
            self._json = encode_json_line(self.message)
        return self._json


@attrs.define(slots=True)
class Subscribe:
    """Session to feed: subscribe ``session`` to ``channels`` of ``symbol`` (snapshot first)."""

    session: Any
    request_id: Any
    symbol: str
    channels: list[str]
    levels: int
    once: bool = False  # a one-shot book query: snapshot only, no subscription


@attrs.define(slots=True)
class Unsubscribe:
    """Session to feed: stop ``channels`` of ``symbol`` (all channels of all symbols if None)."""

    session: Any
    request_id: Any
    symbol: str | None
    channels: list[str] | None
    silent: bool = False  # the session is gone: no acknowledgement


class SymbolFeed:
    """Latest market state of one symbol and who listens to it."""

    def __init__(self, spec: SymbolSpec) -> None:
        self.spec = spec
        self.update_seq = 0
        self.timestamp = 0
        self.bbo: tuple[int | None, int, int | None, int] | None = None
        self.depth: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
        self.depth_levels = 0  # levels the book actor publishes
        self.recent: deque[tuple[int, Encoded]] = deque(maxlen=RECENT_TRADES)
        self.trade_seq = 0
        self.subscribers: dict[str, dict[Any, int]] = {channel: {} for channel in CHANNELS}
        self.pending: list[Subscribe] = []  # waiting for more depth levels from the book


class FeedPublisher(Actor):
    """Market-data fan-out actor."""

    def __init__(self, specs: list[SymbolSpec], *, capacity: int) -> None:
        super().__init__("feed", capacity)
        self.feeds = {spec.symbol: SymbolFeed(spec) for spec in specs}
        self.books: dict[str, Actor] = {}

    def handle(self, message: Any) -> None:
        kind = type(message)
        if kind is MarketUpdate:
            self._update(message)
        elif kind is Subscribe:
            self._subscribe(message)
        elif kind is Unsubscribe:
            self._unsubscribe(message)
        elif kind is Barrier:
            message.passed(None)  # replies went straight to the sessions
        else:
            raise TypeError(f"feed publisher got {kind.__name__}")

    def on_failure(self, message: Any, exc: Exception) -> None:
        session = getattr(message, "session", None)
        if session is not None:
            session.send(
                reject(Reason.INTERNAL_ERROR, "internal error in the feed", None, message.request_id)
            )

    # -- updates ---------------------------------------------------------------------------------

    def _update(self, update: MarketUpdate) -> None:
        feed = self.feeds[update.symbol]
        feed.update_seq = update.update_seq
        feed.timestamp = update.timestamp
        for seq, message in update.trades:
            encoded = Encoded(message)
            feed.trade_seq = seq
            feed.recent.append((seq, encoded))
            for session in feed.subscribers["trades"]:
                session.send_feed(encoded)
        if update.bbo is not None:
            feed.bbo = update.bbo
            subscribers = feed.subscribers["bbo"]
            if subscribers:
                encoded = Encoded(
                    bbo_message(feed.spec, update.update_seq, update.timestamp, update.bbo), "bbo"
                )
                for session in subscribers:
                    session.send_feed(encoded)
        if update.depth is not None:
            feed.depth = update.depth
            self._send_depth(feed, feed.subscribers["depth"])
        if feed.pending and feed.depth is not None:
            pending, feed.pending = feed.pending, []
            for request in pending:
                self._subscribe(request)

    def _send_depth(self, feed: SymbolFeed, subscribers: dict[Any, int]) -> None:
        # One message per distinct level count, each encoded once.
        if not subscribers or feed.depth is None:
            return
        by_levels: dict[int, Encoded] = {}
        bids, asks = feed.depth
        for session, levels in subscribers.items():
            encoded = by_levels.get(levels)
            if encoded is None:
                message = depth_message(
                    feed.spec, feed.update_seq, feed.timestamp, bids[:levels], asks[:levels]
                )
                encoded = by_levels[levels] = Encoded(message, "depth")
            session.send_feed(encoded)

    # -- subscriptions ---------------------------------------------------------------------------

    def _subscribe(self, request: Subscribe) -> None:
        feed = self.feeds.get(request.symbol)
        if feed is None:
            request.session.send(
                reject(
                    Reason.UNKNOWN_SYMBOL,
                    f"unknown symbol {request.symbol!r}",
                    "subscribe",
                    request.request_id,
                )
            )
            return
        if "depth" in request.channels and request.levels > feed.depth_levels:
            # The book publishes fewer levels than asked: ask it for more and answer when the
            # full picture arrives (in order with every update, so the snapshot stays exact).
            feed.depth_levels = request.levels
            feed.pending.append(request)
            self.books[request.symbol].mailbox.put_always(DepthInterest(request.levels))
            return
        if not request.once:
            for channel in request.channels:
                feed.subscribers[channel][request.session] = request.levels
            ack: dict[str, Any] = {
                "type": "subscribed",
                "symbol": request.symbol,
                "channels": request.channels,
                "depth": request.levels,
            }
            if request.request_id is not None:
                ack["request_id"] = request.request_id
            request.session.send(ack)
        spec = feed.spec
        if "bbo" in request.channels and feed.bbo is not None:
            request.session.send_feed(
                Encoded(bbo_message(spec, feed.update_seq, feed.timestamp, feed.bbo), "bbo")
            )
        if "depth" in request.channels and feed.depth is not None:
            bids, asks = feed.depth
            levels = request.levels
            message = depth_message(spec, feed.update_seq, feed.timestamp, bids[:levels], asks[:levels])
            if request.once and request.request_id is not None:
                message["request_id"] = request.request_id
            request.session.send_feed(Encoded(message, "depth"))
        if "trades" in request.channels:
            for _, encoded in feed.recent:
                request.session.send_feed(encoded)

    def _unsubscribe(self, request: Unsubscribe) -> None:
        symbols = [request.symbol] if request.symbol is not None else list(self.feeds)
        for symbol in symbols:
            feed = self.feeds.get(symbol)
            if feed is None:
                continue
            for channel in request.channels or CHANNELS:
                feed.subscribers[channel].pop(request.session, None)
        if not request.silent:
            ack: dict[str, Any] = {
                "type": "unsubscribed",
                "symbol": request.symbol,
                "channels": list(request.channels or CHANNELS),
            }
            if request.request_id is not None:
                ack["request_id"] = request.request_id
            request.session.send(ack)
