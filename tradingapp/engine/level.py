"""One price level: a FIFO of orders as an intrusive doubly linked list.

The links live on the orders themselves (``Order.prev``/``Order.next``; a side table would cost a
dict entry per order), which gives O(1) append, O(1) pop from the front and
O(1) removal of any order without tombstones. ``quantity`` and ``count`` are kept incrementally
so the book reads a level's aggregate in O(1).
"""

from __future__ import annotations

from collections.abc import Iterator

from tradingapp.engine.orders import Order


class PriceLevel:
    """All resting orders at one price on one side, oldest first."""

    __slots__ = ("count", "head", "price", "quantity", "tail")

    def __init__(self, price: int) -> None:
        self.price = price
        self.head: Order | None = None
        self.tail: Order | None = None
        self.quantity = 0
        self.count = 0

    def append(self, order: Order) -> None:
        """Queue ``order`` at the back (it gets the worst time priority). O(1)."""
        tail = self.tail
        order.prev = tail
        order.next = None
        if tail is None:
            self.head = order
        else:
            tail.next = order
        self.tail = order
        self.quantity += order.leaves
        self.count += 1

    def remove(self, order: Order) -> None:
        """Unlink ``order`` wherever it is, subtracting its current leaves. O(1)."""
        prev, nxt = order.prev, order.next
        if prev is None:
            self.head = nxt
        else:
            prev.next = nxt
        if nxt is None:
            self.tail = prev
        else:
            nxt.prev = prev
        order.prev = order.next = None
        self.quantity -= order.leaves
        self.count -= 1

    def __iter__(self) -> Iterator[Order]:
        order = self.head
        while order is not None:
            yield order
            order = order.next
