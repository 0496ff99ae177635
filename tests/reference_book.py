"""A deliberately naive reference order book, for differential tests against the real one.

Written from the behaviour the engine promises (price-time priority, trades at the maker's price,
the order types, self-trade prevention modes, stop triggers on the last trade price, budgets and
fees), not from ``tradingapp/engine/book.py``. Everything is brute force on plain lists: each side
is a list of resting orders kept sorted by ``(price priority, time priority)``, the untriggered
stops are one unsorted list, and "can this FOK fill?" is answered by running the match on a deep
copy of the whole book. Slow on purpose; it only has to be obviously right.

Outputs use one comparable form, shared with the real book through :func:`view_event`: every
event becomes a plain tuple of ids and numbers, so two books built from different objects can be
compared with ``==``.

Choices the spec text leaves open, made here the same way a reader of the spec would:

- A new order whose fields are invalid (or whose id is taken) leaves no trace: its id stays
  unknown and can be used again. A well-formed order refused by a market rule (post-only would
  take, stop already reached, a size filter) is remembered as ``rejected``: status queries find
  it, a cancel of it is ``order_not_open``, its id is taken.
- When a first trade triggers rising and falling stops at once (possible only for stops entered
  before any trade), the rising ones are queued first.
- Self-trade prevention events name the resting order first, then the incoming one.
- A FOK can fill when all of its quantity would trade now; a self-trade ``decrement`` shrinks an
  order without trading, so it makes a FOK unfillable, while own orders that ``cancel_oldest``
  would expire are simply passed over.
- A budgeted order keeps trading while what is left of its budget pays for one more lot (notional
  plus taker fee) at the next maker's price; when it cannot, it expires ``budget_exhausted``.
- ``Triggered.trigger_price`` is the last trade price that released the stop (a stop waiting in
  the cascade queue keeps the price that released it).
- ``open_orders`` and cancel-all go by ascending order id (the engine hands ids out in arrival
  order, so that is oldest first).
- A new order or a replace with several faults at once may be refused for any one of them: the
  reference lists them all (a frozenset in place of the reason) and :func:`settle_reasons` accepts
  whichever one the real book chose.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable
from dataclasses import dataclass
from fractions import Fraction

from tradingapp.engine.commands import Cancel, CancelAll, Command, NewOrder, Replace
from tradingapp.engine.events import (
    Accepted,
    BboChanged,
    Canceled,
    CancelRejected,
    DepthChanged,
    Expired,
    Rejected,
    Replaced,
    Restated,
    Trade,
    Triggered,
)
from tradingapp.engine.fees import FeeRates
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

BUY, SELL = Side.BUY, Side.SELL
NEW = OrderStatus.NEW
PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
FILLED = OrderStatus.FILLED
CANCELED = OrderStatus.CANCELED
EXPIRED = OrderStatus.EXPIRED
REJECTED = OrderStatus.REJECTED
#: Refusals for an order's own fields or id, after which the order is not remembered.
MALFORMED = frozenset(
    {
        "duplicate_order_id",
        "invalid_quantity",
        "invalid_price",
        "missing_price",
        "missing_stop_price",
        "invalid_order_type",
    }
)

MAX_UNITS = 10**15

STOP_TYPES = (OrderType.STOP_LOSS, OrderType.STOP_LIMIT)
TAKE_PROFIT_TYPES = (OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT)
CONDITIONAL_TYPES = STOP_TYPES + TAKE_PROFIT_TYPES
PRICED_TYPES = (OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT)
UNPRICED_TYPES = (OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT)


# -- the comparable form of events -------------------------------------------------------------


def view_event(event: object) -> tuple[object, ...]:
    """Return a real book's event as a plain tuple (the form :class:`ReferenceBook` emits)."""
    kind = type(event)
    if kind is Trade:
        t = event
        return (
            "trade",
            t.trade_id,
            t.price,
            t.quantity,
            t.maker.order_id,
            t.taker.order_id,
            t.maker_fee,
            t.taker_fee,
            t.maker_leaves,
            t.maker_filled,
            t.maker_notional,
            t.taker_leaves,
            t.taker_filled,
            t.taker_notional,
        )
    if kind is BboChanged:
        return (
            "bbo",
            event.update_seq,
            event.bid_price,
            event.bid_quantity,
            event.ask_price,
            event.ask_quantity,
        )
    if kind is DepthChanged:
        return ("depth", event.update_seq)
    if kind is CancelRejected:
        order_id = None if event.order is None else event.order.order_id
        return ("cancel_rejected", event.order_id, event.reason.value, event.response_to, order_id)
    names = {
        Accepted: "accepted",
        Rejected: "rejected",
        Canceled: "canceled",
        Expired: "expired",
        Replaced: "replaced",
        Restated: "restated",
        Triggered: "triggered",
    }
    if kind not in names:
        raise TypeError(f"unexpected event {event!r}")
    if kind is Replaced:
        extra: object = event.kept_priority
    elif kind in (Rejected, Canceled, Expired, Restated):
        extra = event.reason.value
    elif kind is Triggered:
        extra = event.trigger_price
    else:
        extra = None
    return (
        names[kind],
        event.order.order_id,
        event.quantity,
        event.leaves,
        event.filled,
        event.notional,
        event.status.value,
        extra,
    )


def view_events(events: list[object]) -> list[tuple[object, ...]]:
    """Return :func:`view_event` of each event."""
    return [view_event(e) for e in events]


def view_order(order: object) -> tuple[object, ...] | None:
    """Return the changing state of an order (real or reference) as a tuple; None stays None."""
    if order is None:
        return None
    return (
        order.order_id,
        order.account,
        order.side.value,
        order.order_type.value,
        order.price,
        order.stop_price,
        order.quantity,
        order.leaves,
        order.filled,
        order.notional,
        order.status.value,
    )


def settle_reasons(
    expected: list[tuple[object, ...]], actual: list[tuple[object, ...]]
) -> list[tuple[object, ...]]:
    """Return ``expected`` with each set of admissible reasons replaced by the one ``actual`` chose.

    A reason set stays as it is (and so compares unequal) when the real book's event is of another
    kind or its reason is not in the set.
    """
    settled = []
    for index, event in enumerate(expected):
        slot = {"rejected": 7, "cancel_rejected": 2}.get(str(event[0]))
        if slot is not None and isinstance(event[slot], frozenset) and index < len(actual):
            other = actual[index]
            if other[0] == event[0] and len(other) == len(event) and other[slot] in event[slot]:
                event = (*event[:slot], other[slot], *event[slot + 1 :])
        settled.append(event)
    return settled


# -- the reference book --------------------------------------------------------------------------


def fee(notional: int, rate: int) -> int:
    """Return ``notional * rate / 1e6`` truncated toward zero (a negative rate is a rebate)."""
    return int(Fraction(notional * rate, 1_000_000))


@dataclass(eq=False)
class RefOrder:
    """One order in the reference book (compared by identity)."""

    order_id: int
    account: Hashable
    side: Side
    order_type: OrderType
    price: int | None
    stop_price: int | None
    quantity: int
    stp: SelfTradePrevention
    post_only: bool
    fees: FeeRates | None
    budget: int | None
    leaves: int = 0
    filled: int = 0
    notional: int = 0
    status: OrderStatus = NEW
    time: int = 0  # time priority in its level, renewed when the order loses priority
    stop_time: int = 0  # time priority among stops with the same stop price
    trigger_price: int | None = None  # the last trade price that released the stop


def is_rising(order: RefOrder) -> bool:
    """True when the order triggers as the last price rises to its stop price."""
    if order.order_type in STOP_TYPES:
        return order.side is BUY
    return order.side is SELL


def reached(order: RefOrder, stop: int, last: int | None) -> bool:
    """True when a last trade price ``last`` meets the order's trigger condition at ``stop``."""
    if last is None:
        return False
    return last >= stop if is_rising(order) else last <= stop


def is_whole_positive(value: object) -> bool:
    return type(value) is int and 0 < value <= MAX_UNITS


class ReferenceBook:
    """A brute-force book with the same commands and the same (viewed) outputs as OrderBook."""

    def __init__(self, spec: SymbolSpec, last_trade_id: int = 0) -> None:
        self.spec = spec
        self.bids: list[RefOrder] = []
        self.asks: list[RefOrder] = []
        self.stops: list[RefOrder] = []
        self.orders: dict[int, RefOrder] = {}  # every accepted order, open or done
        self.last_trade_id = last_trade_id
        self.last_price: int | None = None
        self.update_seq = 0
        self.published_bbo: tuple[int | None, int, int | None, int] = (None, 0, None, 0)
        self.clock = 0
        self.changed = False

    # -- queries -------------------------------------------------------------------------------

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        """Return ``(bid, bid_qty, ask, ask_qty)`` summed over all orders at the best prices."""
        bid = max((o.price for o in self.bids), default=None)
        ask = min((o.price for o in self.asks), default=None)
        bid_qty = sum(o.leaves for o in self.bids if o.price == bid)
        ask_qty = sum(o.leaves for o in self.asks if o.price == ask)
        return bid, bid_qty, ask, ask_qty

    def depth(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return every level ``(price, quantity)`` of each side, best first."""
        result = []
        for orders, best_first in ((self.bids, True), (self.asks, False)):
            prices = sorted({o.price for o in orders}, reverse=best_first)
            result.append([(p, sum(o.leaves for o in orders if o.price == p)) for p in prices])
        return result[0], result[1]

    def order(self, order_id: int) -> RefOrder | None:
        """Return an accepted order, open or done, by id."""
        return self.orders.get(order_id)

    def open_orders(self, account: Hashable) -> list[RefOrder]:
        """Return the account's open orders by ascending id (ids are handed out in arrival order)."""
        return sorted(
            (o for o in self.orders.values() if o.account == account and self._is_open(o)),
            key=lambda o: o.order_id,
        )

    def open_count(self) -> int:
        """Return the number of open orders, resting or waiting for their trigger."""
        return sum(1 for o in self.orders.values() if self._is_open(o))

    @staticmethod
    def _is_open(order: RefOrder) -> bool:
        return order.status is NEW or order.status is PARTIALLY_FILLED

    # -- commands ------------------------------------------------------------------------------

    def apply(self, command: Command) -> list[tuple[object, ...]]:
        """Apply one command; return its events in the :func:`view_event` form."""
        events: list[tuple[object, ...]] = []
        self.changed = False
        if isinstance(command, NewOrder):
            self._submit(command, events)
        elif isinstance(command, Cancel):
            self._cancel(command, events)
        elif isinstance(command, Replace):
            self._replace(command, events)
        elif isinstance(command, CancelAll):
            for order in self.open_orders(command.account):
                self._take_out(order)
                self._close(order, CANCELED, "canceled_by_user", events)
        else:
            raise TypeError(command)
        if self.changed:
            self.update_seq += 1
            bbo = self.bbo()
            if bbo != self.published_bbo:
                self.published_bbo = bbo
                events.append(("bbo", self.update_seq, *bbo))
            events.append(("depth", self.update_seq))
        return events

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def _submit(self, cmd: NewOrder, events: list[tuple[object, ...]]) -> None:
        order = RefOrder(
            cmd.order_id,
            cmd.account,
            cmd.side,
            cmd.order_type,
            cmd.price,
            cmd.stop_price,
            cmd.quantity,
            cmd.stp,
            cmd.post_only,
            cmd.fees,
            cmd.budget,
        )
        reasons = self._refusals_new(order)
        if reasons:
            events.append(("rejected", order.order_id, order.quantity, 0, 0, 0, "rejected", reasons))
            if not reasons & MALFORMED:
                order.status = REJECTED
                self.orders[order.order_id] = order
            return
        order.leaves = order.quantity
        self.orders[order.order_id] = order
        events.append(self._state("accepted", order))
        if order.order_type in CONDITIONAL_TYPES:
            order.stop_time = self._tick()
            self.stops.append(order)
            return
        self._aggress(order, events)
        self._run_stops(events)

    def _refusals_new(self, order: RefOrder) -> frozenset[str]:
        # Every reason that applies; the book may report any one of them.
        spec = self.spec
        kind = order.order_type
        found = set()
        if order.order_id in self.orders:
            found.add("duplicate_order_id")
        quantity_ok = is_whole_positive(order.quantity)
        if not quantity_ok:
            found.add("invalid_quantity")
        elif order.quantity < spec.min_quantity:
            found.add("quantity_below_minimum")
        elif spec.max_quantity is not None and order.quantity > spec.max_quantity:
            found.add("quantity_above_maximum")
        price_ok = order.price is None or is_whole_positive(order.price)
        if not price_ok or (kind in UNPRICED_TYPES and order.price is not None):
            found.add("invalid_price")
        if kind in PRICED_TYPES and order.price is None:
            found.add("missing_price")
        priced = quantity_ok and price_ok and order.price is not None
        if priced and order.price * order.quantity < spec.min_notional_tick_lots:
            found.add("notional_below_minimum")
        if order.post_only and kind is not OrderType.LIMIT:
            found.add("invalid_order_type")
        if kind in CONDITIONAL_TYPES:
            if order.stop_price is None:
                found.add("missing_stop_price")
            elif not is_whole_positive(order.stop_price):
                found.add("invalid_price")
            elif reached(order, order.stop_price, self.last_price):
                found.add("would_trigger_immediately")
        elif order.stop_price is not None:
            found.add("invalid_price")
        if order.post_only and price_ok and self._would_take(order.side, order.price):
            found.add("post_only_would_take")
        return frozenset(found)

    def _would_take(self, side: Side, price: int | None) -> bool:
        if side is BUY:
            return any(price is None or o.price <= price for o in self.asks)
        return any(price is None or o.price >= price for o in self.bids)

    def _find_own(self, order_id: int, account: Hashable) -> RefOrder | str:
        order = self.orders.get(order_id)
        if order is None or order.account != account:
            return "unknown_order"
        if not self._is_open(order):
            return "order_not_open"
        return order

    def _cancel(self, cmd: Cancel, events: list[tuple[object, ...]]) -> None:
        found = self._find_own(cmd.order_id, cmd.account)
        if isinstance(found, str):
            shown = cmd.order_id if found == "order_not_open" else None
            events.append(("cancel_rejected", cmd.order_id, found, "cancel", shown))
            return
        self._take_out(found)
        self._close(found, CANCELED, "canceled_by_user", events)

    def _replace(self, cmd: Replace, events: list[tuple[object, ...]]) -> None:
        found = self._find_own(cmd.order_id, cmd.account)
        if isinstance(found, str):
            shown = cmd.order_id if found == "order_not_open" else None
            events.append(("cancel_rejected", cmd.order_id, found, "replace", shown))
            return
        order = found
        reasons = self._refusals_replace(order, cmd)
        if reasons:
            events.append(("cancel_rejected", cmd.order_id, reasons, "replace", cmd.order_id))
            return
        new_quantity = order.quantity if cmd.quantity is None else cmd.quantity
        new_price = order.price if cmd.price is None else cmd.price
        if cmd.budget is not None:
            order.budget = cmd.budget
        if order in self.stops:
            new_stop = order.stop_price if cmd.stop_price is None else cmd.stop_price
            keep = new_stop == order.stop_price and new_quantity <= order.quantity
            order.quantity, order.leaves = new_quantity, new_quantity - order.filled
            order.price, order.stop_price = new_price, new_stop
            if not keep:
                order.stop_time = self._tick()
            events.append(self._state("replaced", order, keep))
            return
        if new_price == order.price and new_quantity <= order.quantity:
            if new_quantity != order.quantity:
                self.changed = True
            order.quantity, order.leaves = new_quantity, new_quantity - order.filled
            events.append(self._state("replaced", order, True))
            return
        self._take_out(order)
        order.quantity, order.leaves = new_quantity, new_quantity - order.filled
        order.price = new_price
        events.append(self._state("replaced", order, False))
        self._aggress(order, events)
        self._run_stops(events)

    def _refusals_replace(self, order: RefOrder, cmd: Replace) -> frozenset[str]:
        # Every reason that applies; the book may report any one of them.
        spec = self.spec
        found = set()
        quantity = order.quantity if cmd.quantity is None else cmd.quantity
        quantity_ok = cmd.quantity is None or is_whole_positive(cmd.quantity)
        if not quantity_ok:
            found.add("invalid_quantity")
        else:
            if quantity <= order.filled:
                found.add("quantity_not_above_filled")
            if spec.max_quantity is not None and quantity > spec.max_quantity:
                found.add("quantity_above_maximum")
            if quantity < spec.min_quantity:
                found.add("quantity_below_minimum")
        price_ok = cmd.price is None or (order.price is not None and is_whole_positive(cmd.price))
        if cmd.price is not None and order.price is None:
            found.add("replace_not_allowed")
        elif not price_ok:
            found.add("invalid_price")
        price = order.price if cmd.price is None else cmd.price
        if quantity_ok and price_ok and price is not None and price * quantity < spec.min_notional_tick_lots:
            found.add("notional_below_minimum")
        waiting = order in self.stops
        if cmd.stop_price is not None:
            if not waiting:
                found.add("replace_not_allowed")
            elif not is_whole_positive(cmd.stop_price):
                found.add("invalid_price")
            elif reached(order, cmd.stop_price, self.last_price):
                found.add("would_trigger_immediately")
        moved = not waiting and order.post_only and price_ok and price != order.price
        if moved and self._would_take(order.side, price):
            found.add("post_only_would_take")
        return frozenset(found)

    # -- matching ------------------------------------------------------------------------------

    def _aggress(self, order: RefOrder, events: list[tuple[object, ...]]) -> None:
        """Trade ``order`` as the incoming order, then rest or end what is left."""
        if order.order_type is OrderType.FOK and not self._fills_completely(order):
            self._close(order, EXPIRED, "fok_not_fillable", events)
            return
        self._match(order, events)
        if order.status is EXPIRED or order.leaves == 0:
            return
        if order.order_type in PRICED_TYPES:
            self._rest(order)
        elif order.price is not None:
            self._close(order, EXPIRED, "ioc_remainder", events)
        else:
            self._close(order, EXPIRED, "no_liquidity", events)

    def _fills_completely(self, order: RefOrder) -> bool:
        # Run the whole match on a throwaway copy of the book: does all of the quantity trade?
        # (A self-trade decrement shrinks the order without trading, so that is a no.)
        trial = copy.deepcopy(self)
        taker = copy.deepcopy(order)
        trial._match(taker, [])
        return taker.filled == order.quantity

    def _match(self, taker: RefOrder, events: list[tuple[object, ...]]) -> None:
        book = self.asks if taker.side is BUY else self.bids
        while taker.leaves > 0 and book:
            maker = book[0]
            if taker.price is not None:
                too_far = maker.price > taker.price if taker.side is BUY else maker.price < taker.price
                if too_far:
                    return
            if taker.stp is not SelfTradePrevention.NONE and maker.account == taker.account:
                self._prevent_self_trade(taker, maker, book, events)
                if taker.status is EXPIRED:
                    return
                continue
            quantity = min(taker.leaves, maker.leaves)
            if taker.budget is not None:
                quantity = self._affordable(taker, maker.price, quantity)
                if quantity == 0:
                    self._close(taker, EXPIRED, "budget_exhausted", events)
                    return
            self._trade(maker, taker, quantity, events)
            if maker.leaves == 0:
                book.remove(maker)

    def _cost(self, taker: RefOrder, price: int, quantity: int) -> int:
        notional = price * quantity * self.spec.quote_per_tick_lot
        rate = taker.fees.taker if taker.fees is not None else 0
        return notional + fee(notional, rate)

    def _affordable(self, taker: RefOrder, price: int, most: int) -> int:
        assert taker.budget is not None
        quantity = 0
        while quantity < most and self._cost(taker, price, quantity + 1) <= taker.budget:
            quantity += 1
        return quantity

    def _trade(
        self, maker: RefOrder, taker: RefOrder, quantity: int, events: list[tuple[object, ...]]
    ) -> None:
        price = maker.price
        assert price is not None
        notional = price * quantity * self.spec.quote_per_tick_lot
        maker_fee = fee(notional, maker.fees.maker) if maker.fees is not None else 0
        taker_fee = fee(notional, taker.fees.taker) if taker.fees is not None else 0
        if taker.budget is not None:
            taker.budget -= notional + taker_fee
            assert taker.budget >= 0
        for order in (maker, taker):
            order.leaves -= quantity
            order.filled += quantity
            order.notional += price * quantity
            order.status = FILLED if order.leaves == 0 else PARTIALLY_FILLED
        self.last_trade_id += 1
        self.last_price = price
        self.changed = True
        events.append(
            (
                "trade",
                self.last_trade_id,
                price,
                quantity,
                maker.order_id,
                taker.order_id,
                maker_fee,
                taker_fee,
                maker.leaves,
                maker.filled,
                maker.notional,
                taker.leaves,
                taker.filled,
                taker.notional,
            )
        )

    def _prevent_self_trade(
        self, taker: RefOrder, maker: RefOrder, book: list[RefOrder], events: list[tuple[object, ...]]
    ) -> None:
        mode = taker.stp
        if mode is SelfTradePrevention.CANCEL_NEWEST:
            self._close(taker, EXPIRED, "self_trade_prevention", events)
        elif mode is SelfTradePrevention.CANCEL_OLDEST:
            book.remove(maker)
            self.changed = True
            self._close(maker, EXPIRED, "self_trade_prevention", events)
        elif mode is SelfTradePrevention.CANCEL_BOTH:
            book.remove(maker)
            self.changed = True
            self._close(maker, EXPIRED, "self_trade_prevention", events)
            self._close(taker, EXPIRED, "self_trade_prevention", events)
        else:
            assert mode is SelfTradePrevention.DECREMENT
            cut = min(taker.leaves, maker.leaves)
            self.changed = True
            for order in (maker, taker):
                order.quantity -= cut
                order.leaves -= cut
                if order.leaves == 0:
                    if order is maker:
                        book.remove(maker)
                    self._close(order, EXPIRED, "self_trade_prevention", events)
                else:
                    events.append(self._state("restated", order, "self_trade_prevention"))

    def _rest(self, order: RefOrder) -> None:
        order.time = self._tick()
        if order.side is BUY:
            self.bids.append(order)
            self.bids.sort(key=lambda o: (-o.price, o.time))
        else:
            self.asks.append(order)
            self.asks.sort(key=lambda o: (o.price, o.time))
        self.changed = True

    def _take_out(self, order: RefOrder) -> None:
        # Remove an open order from wherever it waits (its side of the book, or the stops).
        if order in self.stops:
            self.stops.remove(order)
            return
        (self.bids if order.side is BUY else self.asks).remove(order)
        self.changed = True

    def _close(
        self, order: RefOrder, status: OrderStatus, reason: str, events: list[tuple[object, ...]]
    ) -> None:
        order.status = status
        order.leaves = 0
        name = "canceled" if status is CANCELED else "expired"
        events.append(
            (name, order.order_id, order.quantity, 0, order.filled, order.notional, status.value, reason)
        )

    # -- stops ---------------------------------------------------------------------------------

    def _run_stops(self, events: list[tuple[object, ...]]) -> None:
        queue = self._release()
        while queue:
            order = queue.pop(0)
            events.append(self._state("triggered", order, order.trigger_price))
            self._aggress(order, events)
            queue.extend(self._release())

    def _release(self) -> list[RefOrder]:
        # Take every stop whose condition the last price meets out of the stops, in trigger order.
        last = self.last_price
        rising = [o for o in self.stops if is_rising(o) and reached(o, o.stop_price, last)]
        falling = [o for o in self.stops if not is_rising(o) and reached(o, o.stop_price, last)]
        rising.sort(key=lambda o: (o.stop_price, o.stop_time))
        falling.sort(key=lambda o: (-o.stop_price, o.stop_time))
        released = rising + falling
        for order in released:
            self.stops.remove(order)
            order.trigger_price = last
        return released

    @staticmethod
    def _state(name: str, order: RefOrder, extra: object = None) -> tuple[object, ...]:
        return (
            name,
            order.order_id,
            order.quantity,
            order.leaves,
            order.filled,
            order.notional,
            order.status.value,
            extra,
        )
