"""Commands into a book. Each is immutable by convention and carries the engine timestamp.

The book never reads a clock: ``timestamp`` (nanoseconds since the epoch, stamped by the engine
when the command was received and written to the journal) is only carried through, so a replay
of the same commands yields the same events. ``order_id`` values are assigned outside the book by
the engine's id sequence for the same reason. ``symbol`` names the book a command is for (the book
itself ignores it); the risk actor routes by it and the journal records it.
"""

from __future__ import annotations

from collections.abc import Hashable

import attrs

from tradingapp.engine.fees import FeeRates
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side


@attrs.define(slots=True)
class NewOrder:
    """Enter an order (FIX NewOrderSingle)."""

    order_id: int
    account: Hashable
    side: Side
    order_type: OrderType
    quantity: int
    price: int | None = None
    stop_price: int | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    client_order_id: str | None = None
    fees: FeeRates | None = None
    budget: int | None = None
    timestamp: int = 0
    symbol: str = ""


@attrs.define(slots=True)
class Cancel:
    """Cancel one order of ``account`` (FIX OrderCancelRequest)."""

    order_id: int
    account: Hashable
    client_order_id: str | None = None
    timestamp: int = 0
    symbol: str = ""


@attrs.define(slots=True)
class Replace:
    """Amend an order (FIX OrderCancelReplaceRequest); None keeps the current value.

    ``quantity`` is the new *total* quantity, so the new open quantity is ``quantity - filled``.
    ``budget`` is the new spending cap for a stop-market buy (set by risk when the stop moves).
    ``expected`` is the order's ``(quantity, price, stop_price)`` that risk checked the funds
    against; the book refuses the replace (``order_changed``) when the order no longer has them,
    and checks nothing when it is None.
    """

    order_id: int
    account: Hashable
    quantity: int | None = None
    price: int | None = None
    stop_price: int | None = None
    client_order_id: str | None = None
    budget: int | None = None
    timestamp: int = 0
    symbol: str = ""
    expected: tuple[int, int | None, int | None] | None = None


@attrs.define(slots=True)
class CancelAll:
    """Cancel every open order of ``account`` in this book (FIX OrderMassCancelRequest)."""

    account: Hashable
    timestamp: int = 0
    symbol: str = ""


Command = NewOrder | Cancel | Replace | CancelAll
