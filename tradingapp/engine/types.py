"""The small vocabularies of the engine: side, order type, order status, self-trade prevention.

Each enum is a ``StrEnum`` whose members *are* their wire names: ``Side("buy") is Side.BUY``
and ``Side.BUY == "buy"``, so a member goes onto the wire as it is (msgpack and JSON see a
``str``) without the Python-level ``.value`` property on the hot path, and hashes at C speed.
Members are singletons; the matching code compares them with ``is``.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The side this side trades against."""
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    """What an order does on arrival and whether it may rest.

    Stop and take-profit types wait outside the book until the last trade price reaches their
    ``stop_price``; then they behave as ``market`` (``stop_loss``, ``take_profit``) or ``limit``
    (``stop_limit``, ``take_profit_limit``).
    """

    MARKET = "market"
    LIMIT = "limit"
    IOC = "ioc"
    FOK = "fok"
    STOP_LOSS = "stop_loss"
    STOP_LIMIT = "stop_limit"
    TAKE_PROFIT = "take_profit"
    TAKE_PROFIT_LIMIT = "take_profit_limit"

    @property
    def is_conditional(self) -> bool:
        """True for the four stop and take-profit types (they need a ``stop_price``)."""
        return self in _CONDITIONAL

    @property
    def needs_price(self) -> bool:
        """True when a limit ``price`` is required."""
        return self in _NEEDS_PRICE

    @property
    def rests(self) -> bool:
        """True when an unfilled remainder rests in the book (good till cancelled)."""
        return self in _RESTING


_CONDITIONAL = frozenset(
    {OrderType.STOP_LOSS, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
_NEEDS_PRICE = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
_RESTING = _NEEDS_PRICE


class OrderStatus(StrEnum):
    """An order's current state (FIX OrdStatus); the last four are terminal."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_open(self) -> bool:
        """True while the order can still trade or be cancelled."""
        return self is OrderStatus.NEW or self is OrderStatus.PARTIALLY_FILLED


class SelfTradePrevention(StrEnum):
    """What happens when an incoming order would trade with a resting order of its own account.

    The incoming (taker) order's mode decides, as at Coinbase and Binance:

    - ``none``: they trade.
    - ``cancel_newest``: the incoming order's remainder expires; the resting order stays.
    - ``cancel_oldest``: the resting order expires; matching goes on with the next one.
    - ``cancel_both``: both expire.
    - ``decrement``: both are reduced by the smaller remaining quantity without trading; an order
      reduced to zero expires (both, when equal).
    """

    NONE = "none"
    CANCEL_NEWEST = "cancel_newest"
    CANCEL_OLDEST = "cancel_oldest"
    CANCEL_BOTH = "cancel_both"
    DECREMENT = "decrement"
