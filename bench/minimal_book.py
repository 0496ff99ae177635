"""A minimal pure-Python price-time book: the floor the core benchmark compares against.

Deliberately plain: a ``SortedDict`` per side from a signed price key to a ``deque`` of orders
(asks keyed by ``price``, bids by ``-price``, so the best level is always the first key), a dict
from order id to order, integer prices and quantities. An order is a list
``[order_id, leaves, key, is_buy]``. Cancel removes the order from its queue (and marks it with
zero leaves); a level is deleted as soon as it is empty. No validation, no events, no STP, no
fees: it produces only the fills ``(taker_id, maker_id, price, qty)``, which is all the standard
workload's digest needs. Anything an engine adds on top of this costs time; this file shows how
much the bare price-time bookkeeping costs in CPython.
"""

from __future__ import annotations

from collections import deque

from sortedcontainers import SortedDict


class MinimalBook:
    """One symbol's book; ``fills`` collects ``(taker_id, maker_id, price, qty)`` in order."""

    __slots__ = ("asks", "bids", "fills", "orders")

    def __init__(self) -> None:
        self.bids: SortedDict = SortedDict()  # -price -> deque of orders, best (highest) first
        self.asks: SortedDict = SortedDict()  # price -> deque of orders, best (lowest) first
        self.orders: dict[int, list] = {}  # resting orders by id
        self.fills: list[tuple[int, int, int, int]] = []

    def submit(self, oid: int, is_buy: bool, price: int | None, qty: int, rests: bool) -> int:
        """Match an order (``price`` None: market), rest the remainder if ``rests``; return it."""
        levels = self.asks if is_buy else self.bids
        limit = None if price is None else (price if is_buy else -price)
        fills = self.fills
        while qty and levels:
            key, queue = levels.peekitem(0)
            if limit is not None and key > limit:
                break
            trade_price = key if is_buy else -key
            while queue:
                maker = queue[0]
                n = maker[1] if maker[1] < qty else qty
                fills.append((oid, maker[0], trade_price, n))
                qty -= n
                maker[1] -= n
                if maker[1]:
                    break  # the taker is done; the maker keeps its place
                queue.popleft()
                del self.orders[maker[0]]
                if not qty:
                    break
            if not queue:
                del levels[key]
        if qty and rests and price is not None:
            own = self.bids if is_buy else self.asks
            key = -price if is_buy else price
            queue = own.get(key)
            if queue is None:
                queue = own[key] = deque()
            order = [oid, qty, key, is_buy]
            queue.append(order)
            self.orders[oid] = order
        return qty

    def fillable(self, is_buy: bool, price: int, qty: int) -> bool:
        """Return True when an order could fill ``qty`` completely now (the FOK test)."""
        limit = price if is_buy else -price
        for key, queue in (self.asks if is_buy else self.bids).items():
            if key > limit:
                return False
            for order in queue:
                qty -= order[1]
                if qty <= 0:
                    return True
        return False

    def cancel(self, oid: int) -> bool:
        """Remove a resting order; False when it is not resting."""
        order = self.orders.pop(oid, None)
        if order is None:
            return False
        levels = self.bids if order[3] else self.asks
        queue = levels[order[2]]
        queue.remove(order)
        order[1] = 0
        if not queue:
            del levels[order[2]]
        return True

    def best_bid(self) -> int | None:
        """Return the best bid price, None when there is no bid."""
        return -self.bids.peekitem(0)[0] if self.bids else None

    def best_ask(self) -> int | None:
        """Return the best ask price, None when there is no ask."""
        return self.asks.peekitem(0)[0] if self.asks else None

    def __len__(self) -> int:
        return len(self.orders)
