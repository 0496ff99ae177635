"""Untriggered stop and take-profit orders, held outside the visible book.

Triggers follow the symbol's last trade price, as Binance documents them:

============================  =====================================
rises to or above stop_price   buy ``stop_loss``/``stop_limit``,
                               sell ``take_profit``/``take_profit_limit``
falls to or below stop_price   sell ``stop_loss``/``stop_limit``,
                               buy ``take_profit``/``take_profit_limit``
============================  =====================================

Each direction is a ``SortedDict`` keyed so that the stop the price reaches first comes first
(``stop_price`` for rises, ``-stop_price`` for falls); orders with the same stop price keep arrival
order. Triggering pops from the front: O(log S) per triggered price.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from sortedcontainers import SortedDict

from tradingapp.engine.orders import Order
from tradingapp.engine.types import OrderType, Side

_STOP_TYPES = frozenset({OrderType.STOP_LOSS, OrderType.STOP_LIMIT})


def triggers_on_rise(order: Order) -> bool:
    """True when ``order`` triggers as the last price rises to its stop (else as it falls)."""
    is_stop = order.order_type in _STOP_TYPES
    return is_stop if order.side is Side.BUY else not is_stop


class StopBook:
    """Untriggered conditional orders of one symbol, in trigger order."""

    __slots__ = ("_falls", "_rises", "ids")

    def __init__(self) -> None:
        self._rises: SortedDict = SortedDict()
        self._falls: SortedDict = SortedDict()
        #: ids of the waiting orders; read-only for callers (a plain set so tests are C-fast)
        self.ids: set[int] = set()

    def __len__(self) -> int:
        return len(self.ids)

    def _slot(self, order: Order) -> tuple[SortedDict, int]:
        assert order.stop_price is not None
        if triggers_on_rise(order):
            return self._rises, order.stop_price
        return self._falls, -order.stop_price

    def add(self, order: Order) -> None:
        """Hold ``order`` behind every order already waiting at its stop price."""
        tree, key = self._slot(order)
        bucket = tree.get(key)
        if bucket is None:
            bucket = tree[key] = {}
        bucket[order.order_id] = order
        self.ids.add(order.order_id)

    def remove(self, order: Order) -> None:
        """Stop holding ``order`` (cancel, or before a change of its stop price)."""
        tree, key = self._slot(order)
        bucket = tree[key]
        del bucket[order.order_id]
        if not bucket:
            del tree[key]
        self.ids.discard(order.order_id)

    @staticmethod
    def would_trigger(order: Order, last_price: int | None, stop_price: int | None = None) -> bool:
        """True when ``order`` (with ``stop_price`` if given) would trigger at ``last_price``."""
        if last_price is None:
            return False
        stop = order.stop_price if stop_price is None else stop_price
        assert stop is not None
        return last_price >= stop if triggers_on_rise(order) else last_price <= stop

    def pop_triggered(self, last_price: int | None, queue: deque[tuple[Order, int]]) -> None:
        """Move every order whose condition ``last_price`` meets onto ``queue`` in trigger order,
        each with the price that triggered it."""
        if last_price is None or not self.ids:
            return
        for tree, limit in ((self._rises, last_price), (self._falls, -last_price)):
            while tree and tree.peekitem(0)[0] <= limit:
                _, bucket = tree.popitem(0)
                for order in bucket.values():
                    self.ids.discard(order.order_id)
                    queue.append((order, last_price))

    def orders(self) -> Iterator[Order]:
        """Yield the waiting orders: rising triggers then falling ones, each in trigger order."""
        for tree in (self._rises, self._falls):
            for bucket in tree.values():
                yield from bucket.values()

    def check_invariants(self) -> int:
        """Assert the stores agree with each other; return how many orders wait."""
        count = 0
        for tree, rises in ((self._rises, True), (self._falls, False)):
            for key, bucket in tree.items():
                assert bucket, "empty stop bucket"
                for order in bucket.values():
                    assert triggers_on_rise(order) is rises
                    assert key == (order.stop_price if rises else -order.stop_price)
                    assert order.order_id in self.ids
                    assert order.leaves == order.quantity - order.filled > 0
                    count += 1
        assert count == len(self.ids), "stop id set disagrees with the stop trees"
        return count
