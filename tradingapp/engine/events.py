"""Events out of a book: every command returns a list of these, in the order they happened.

Order events carry a reference to the order (for its fixed fields: id, account, side, type,
client order id) plus a copy of the fields that change (quantity, leaves, filled, notional,
status) as they were at that moment, so a report built later from an event says exactly what was
true when it happened.

Events are ``NamedTuple`` classes: immutable, read by name, and cheap to build. The matching loop
builds them with ``tuple.__new__(Trade, (...))``, which skips the Python-level ``__new__`` and
costs about 110 ns for a thirteen-field trade against 240 ns for a ``__slots__`` class and 300 ns
for the ordinary NamedTuple call (measured on the development machine, Python 3.11).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import NamedTuple

from tradingapp.engine.orders import Order
from tradingapp.engine.reasons import Reason
from tradingapp.engine.types import OrderStatus, Side

# module constants: reading ``OrderStatus.X`` goes through the enum metaclass (80 ns, not 6)
_PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
_FILLED = OrderStatus.FILLED


class Accepted(NamedTuple):
    """The order was accepted (it may trade next, rest, or wait for its trigger)."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus


class Rejected(NamedTuple):
    """The new order was refused by the book; nothing changed."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    reason: Reason
    text: str


class Canceled(NamedTuple):
    """The order was cancelled on request (one cancel, or cancel-all)."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    reason: Reason


class Expired(NamedTuple):
    """The order ended by rule: IOC/FOK/market remainder, self-trade prevention, budget."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    reason: Reason


class Replaced(NamedTuple):
    """The order was amended; ``kept_priority`` says whether it kept its queue place."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    kept_priority: bool
    previous_client_order_id: str | None


class Restated(NamedTuple):
    """Self-trade prevention ``decrement`` reduced the order's quantity (it stays open)."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    reason: Reason


class Triggered(NamedTuple):
    """A stop or take-profit order's condition was met; it now acts as market or limit."""

    order: Order
    quantity: int
    leaves: int
    filled: int
    notional: int
    status: OrderStatus
    trigger_price: int


class CancelRejected(NamedTuple):
    """A cancel or replace was refused; ``order`` is None when the id is unknown to the account."""

    order_id: int
    account: Hashable
    order: Order | None
    reason: Reason
    text: str
    response_to: str  # "cancel" or "replace"
    client_order_id: str | None = None


class Trade(NamedTuple):
    """One fill between a resting maker and an incoming taker, at the maker's price.

    ``*_leaves``, ``*_filled`` and ``*_notional`` are each order's state right after this fill
    (``notional`` in tick-lots, for the average price); fees are in quote units.
    """

    trade_id: int
    price: int
    quantity: int
    maker: Order
    taker: Order
    maker_fee: int
    taker_fee: int
    maker_leaves: int
    maker_filled: int
    maker_notional: int
    taker_leaves: int
    taker_filled: int
    taker_notional: int

    @property
    def aggressor_side(self) -> Side:
        """The taker's side."""
        return self.taker.side

    @property
    def maker_status(self) -> OrderStatus:
        """The maker's status right after this fill."""
        return _PARTIALLY_FILLED if self.maker_leaves else _FILLED

    @property
    def taker_status(self) -> OrderStatus:
        """The taker's status right after this fill."""
        return _PARTIALLY_FILLED if self.taker_leaves else _FILLED


class BboChanged(NamedTuple):
    """Best bid and offer after a command that changed them (None for an empty side)."""

    update_seq: int
    bid_price: int | None
    bid_quantity: int
    ask_price: int | None
    ask_quantity: int


class DepthChanged(NamedTuple):
    """The visible book changed; ``update_seq`` is the book's new update sequence."""

    update_seq: int


#: The events about one order's lifecycle (all start with ``order`` and its snapshot fields).
OrderEvent = Accepted | Rejected | Canceled | Expired | Replaced | Restated | Triggered

Event = OrderEvent | CancelRejected | Trade | BboChanged | DepthChanged
