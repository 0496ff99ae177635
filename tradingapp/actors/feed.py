"""The feed publisher: fans BBO, L2 depth and trades out to subscribers.

It keeps, per symbol, the latest BBO, the latest depth (as many levels as any subscriber wants)
and the last trades, all from the book actors' :class:`MarketUpdate` messages, which reach it in
book order once durable. Every channel of a symbol has its own ``seq``, +1 per message (trades:
the book's trade count; bbo and depth: :class:`tradingapp.engine.sequence.FeedSequences`), and
every subscriber of a channel gets every message of it (depth cut to its levels), so a reader
that keeps up sees each seq grow by exactly one. A subscription is answered from the kept state:
a snapshot carrying the seq of the channel's latest message, which the next update continues.

A session's requests are answered in order: while one waits (the book has not published yet,
or must first publish more depth levels), the session's later requests for that symbol wait
behind it, so an unsubscribe sent right after a subscribe also ends it.

Each message is built and encoded once per update and handed to every subscriber's session as
bytes. A slow subscriber never slows anyone else: its session conflates BBO and depth (latest
wins, marked with how many messages it replaced: see :class:`Conflated`) and disconnects it if
its trade backlog overflows (see :mod:`tradingapp.actors.session`).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import attrs

from tradingapp.actors.base import Actor
from tradingapp.actors.messages import Barrier, DepthInterest, MarketUpdate
from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.latency import mark_feed
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
        self.key = key  # set for conflatable messages (the channel); latest per symbol wins
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


class Conflated:
    """The latest conflatable message held for a slow reader, and how many it replaced.

    What the reader gets in the end carries ``conflated``: the number of messages of its
    channel left out just before it. Since every subscriber of a channel is sent every message,
    the reader can tell conflation (``seq == last + 1 + conflated``) from loss (any other jump).
    """

    __slots__ = ("dropped", "latest")

    def __init__(self, latest: Encoded) -> None:
        self.latest = latest
        self.dropped = 0

    def replace(self, newer: Encoded) -> None:
        """Keep ``newer`` instead of the message held so far."""
        self.latest = newer
        self.dropped += 1

    def result(self) -> Encoded:
        """The message to send: the latest, marked when it replaced any (encoded for this reader)."""
        if not self.dropped:
            return self.latest
        return Encoded({**self.latest.message, "conflated": self.dropped}, self.latest.key)


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
        self.bbo: tuple[int | None, int, int | None, int] | None = None  # None: no picture yet
        self.bbo_seq = 0
        self.bbo_time = 0
        self.bbo_message: Encoded | None = None  # the latest bbo message, once built
        self.depth: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
        self.depth_seq = 0
        self.depth_time = 0
        self.depth_levels = 0  # levels in ``depth``
        self.wanted_levels = 0  # levels asked of the book
        self.recent: deque[tuple[int, Encoded]] = deque(maxlen=RECENT_TRADES)
        self.subscribers: dict[str, dict[Any, int]] = {channel: {} for channel in CHANNELS}
        self.waiting: list[Subscribe | Unsubscribe] = []  # in arrival order

    def must_wait(self, request: Subscribe | Unsubscribe) -> bool:
        """True when ``request`` cannot be answered yet from the state kept."""
        if any(waiting.session is request.session for waiting in self.waiting):
            return True  # answer a session's requests in order
        if type(request) is not Subscribe:
            return False
        if self.bbo is None:
            return True  # the book's first picture is on its way
        return "depth" in request.channels and request.levels > self.depth_levels


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
        for seq, message in update.trades:
            encoded = Encoded(message)
            feed.recent.append((seq, encoded))
            for session in feed.subscribers["trades"]:
                session.send_feed(encoded)
        if update.bbo is not None:
            self._bbo(feed, update)
        if update.depth is not None:
            self._depth(feed, update)
        if update.traces is not None:
            mark_feed(feed.subscribers, update.traces)
        if feed.waiting:
            waiting, feed.waiting = feed.waiting, []
            for request in waiting:
                self.handle(request)

    def _bbo(self, feed: SymbolFeed, update: MarketUpdate) -> None:
        if update.bbo_seq == feed.bbo_seq:
            return  # a refresh of the picture the feed has
        feed.bbo, feed.bbo_seq, feed.bbo_time = update.bbo, update.bbo_seq, update.timestamp
        feed.bbo_message = None
        subscribers = feed.subscribers["bbo"]
        if subscribers:
            encoded = self._bbo_message(feed)
            for session in subscribers:
                session.send_feed(encoded)

    def _bbo_message(self, feed: SymbolFeed) -> Encoded:
        # The latest bbo message (also every bbo snapshot until the next one), built once.
        if feed.bbo_message is None:
            assert feed.bbo is not None
            message = bbo_message(feed.spec, feed.bbo_seq, feed.bbo_time, feed.bbo)
            feed.bbo_message = Encoded(message, "bbo")
        return feed.bbo_message

    def _depth(self, feed: SymbolFeed, update: MarketUpdate) -> None:
        feed.depth, feed.depth_levels = update.depth, update.depth_levels
        if update.depth_seq == feed.depth_seq:
            return  # the same state with more levels: nothing new for current subscribers
        feed.depth_seq, feed.depth_time = update.depth_seq, update.timestamp
        # One message per distinct level count, each encoded once.
        by_levels: dict[int, Encoded] = {}
        for session, levels in feed.subscribers["depth"].items():
            encoded = by_levels.get(levels)
            if encoded is None:
                encoded = by_levels[levels] = Encoded(self._depth_message(feed, levels), "depth")
            session.send_feed(encoded)

    @staticmethod
    def _depth_message(feed: SymbolFeed, levels: int) -> dict[str, Any]:
        assert feed.depth is not None
        bids, asks = feed.depth
        return depth_message(feed.spec, feed.depth_seq, feed.depth_time, bids[:levels], asks[:levels])

    # -- subscriptions ---------------------------------------------------------------------------

    def _subscribe(self, request: Subscribe) -> None:
        feed = self.feeds.get(request.symbol)
        if feed is None:
            request.session.send(
                reject(
                    Reason.UNKNOWN_SYMBOL,
                    f"unknown symbol {request.symbol!r}",
                    "book" if request.once else "subscribe",
                    request.request_id,
                )
            )
            return
        if feed.must_wait(request):
            if "depth" in request.channels and request.levels > feed.wanted_levels:
                # The book publishes fewer levels than asked: ask it for more and answer when the
                # full picture arrives (in order with every update, so the snapshot stays exact).
                feed.wanted_levels = request.levels
                self.books[request.symbol].mailbox.put_always(DepthInterest(request.levels))
            feed.waiting.append(request)
            return
        session = request.session
        if not request.once:
            for channel in request.channels:
                feed.subscribers[channel][session] = request.levels
            ack: dict[str, Any] = {
                "type": "subscribed",
                "symbol": request.symbol,
                "channels": request.channels,
                "depth": request.levels,
            }
            if request.request_id is not None:
                ack["request_id"] = request.request_id
            session.send(ack)
        if "bbo" in request.channels:
            session.send_feed(self._bbo_message(feed))
        if "depth" in request.channels:
            message = self._depth_message(feed, request.levels)
            if request.once:  # the answer to a book query: never conflated with the updates
                if request.request_id is not None:
                    message["request_id"] = request.request_id
                session.send_feed(Encoded(message))
            else:
                session.send_feed(Encoded(message, "depth"))
        if "trades" in request.channels:
            for _, encoded in feed.recent:
                session.send_feed(encoded)

    def _unsubscribe(self, request: Unsubscribe) -> None:
        if request.symbol is None:  # every symbol: the session is gone, forget it everywhere
            for feed in self.feeds.values():
                feed.waiting = [waiting for waiting in feed.waiting if waiting.session is not request.session]
                for subscribers in feed.subscribers.values():
                    subscribers.pop(request.session, None)
        elif (symbol_feed := self.feeds.get(request.symbol)) is not None:
            if symbol_feed.must_wait(request):
                symbol_feed.waiting.append(request)
                return
            for channel in request.channels or CHANNELS:
                symbol_feed.subscribers[channel].pop(request.session, None)
        if not request.silent:
            ack: dict[str, Any] = {
                "type": "unsubscribed",
                "symbol": request.symbol,
                "channels": list(request.channels or CHANNELS),
            }
            if request.request_id is not None:
                ack["request_id"] = request.request_id
            request.session.send(ack)
