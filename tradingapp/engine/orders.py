"""The order record the book keeps: one small ``__slots__`` object per live order.

Memory matters (a venue holds millions of resting orders), so an order has no ``__dict__`` and
shares what it can: ``price`` is the same int object as its level's key, enums are singletons, and
a fresh order's ``leaves`` is its ``quantity`` object.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Iterator, Sequence
from typing import Any

from tradingapp.engine.fees import FeeRates
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

#: a module constant: reading ``OrderStatus.NEW`` goes through the enum metaclass (80 ns, not 6)
_NEW = OrderStatus.NEW


class Order:
    """An order as the book tracks it.

    ``quantity`` is the total ordered (FIX OrderQty), ``filled`` the cumulative executed quantity
    (CumQty) and ``leaves`` what is still open (LeavesQty); while the order is open
    ``leaves == quantity - filled``. ``notional`` is the sum of ``price * qty`` over its fills in
    tick-lots, so the average price is ``notional / filled`` ticks. ``budget`` caps what a buy
    without a limit price may spend, in quote units including the taker fee (None: no cap).
    ``prev``/``next`` link the order into its price level's queue.
    """

    __slots__ = (
        "account",
        "budget",
        "client_order_id",
        "fees",
        "filled",
        "leaves",
        "next",
        "notional",
        "order_id",
        "order_type",
        "post_only",
        "prev",
        "price",
        "quantity",
        "side",
        "status",
        "stop_price",
        "stp",
    )

    def __init__(
        self,
        order_id: int,
        account: Hashable,
        side: Side,
        order_type: OrderType,
        price: int | None,
        quantity: int,
        stop_price: int | None = None,
        stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST,
        post_only: bool = False,
        client_order_id: str | None = None,
        fees: FeeRates | None = None,
        budget: int | None = None,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.side = side
        self.order_type = order_type
        self.price = price
        self.stop_price = stop_price
        self.quantity = quantity
        self.leaves = quantity
        self.filled = 0
        self.notional = 0
        self.status = _NEW
        self.stp = stp
        self.post_only = post_only
        self.client_order_id = client_order_id
        self.fees = fees
        self.budget = budget
        # queue links, owned by the PriceLevel the order rests in (None when not resting)
        self.prev: Order | None = None
        self.next: Order | None = None

    def __repr__(self) -> str:
        return (
            f"Order(id={self.order_id}, {self.side.value} {self.order_type.value} "
            f"{self.leaves}/{self.quantity} @ {self.price}, {self.status.value})"
        )


#: The fields that make up an order's state, in the order of the rows and columns snapshots store
#: (``prev``/``next`` are not state: they follow from the order's place in its level).
ORDER_FIELDS = (
    "order_id",
    "account",
    "side",
    "order_type",
    "price",
    "stop_price",
    "quantity",
    "leaves",
    "filled",
    "notional",
    "status",
    "stp",
    "post_only",
    "client_order_id",
    "fees",
    "budget",
)
#: The enum type of each enum field of an order (stored by its wire value).
ORDER_ENUMS: dict[str, type[Side] | type[OrderType] | type[OrderStatus] | type[SelfTradePrevention]] = {
    "side": Side,
    "order_type": OrderType,
    "status": OrderStatus,
    "stp": SelfTradePrevention,
}


def orders_from_rows(rows: Iterable[Sequence[Any]]) -> Iterator[Order]:
    """Rebuild orders from rows of their :data:`ORDER_FIELDS` values (enums and fee rates decoded).

    Sets each slot directly rather than through ``__init__``: a snapshot restores millions of
    orders, whose ``leaves``, ``filled``, ``notional`` and ``status`` the constructor would only
    set to a new order's values first.
    """
    new = Order.__new__
    for row in rows:
        order = new(Order)
        # fmt: off
        (order.order_id, order.account, order.side, order.order_type, order.price, order.stop_price,
         order.quantity, order.leaves, order.filled, order.notional, order.status, order.stp,
         order.post_only, order.client_order_id, order.fees, order.budget) = row  # ORDER_FIELDS
        # fmt: on
        order.prev = None
        order.next = None
        yield order
