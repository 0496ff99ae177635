"""The limit order book of one symbol and its matching: pure, synchronous, deterministic.

Layout
    Each side is a :class:`BookSide`: a dict from price to :class:`PriceLevel` plus the prices in
    rank order (best last), with the best level cached, so one matching loop serves both sides.
    A level is a FIFO linked through the orders. ``_orders``
    indexes every open order by id (resting and untriggered stops). There is no per-account index:
    the engine's risk actor keeps one, and a second here would cost every add and fill.
    Untriggered stop and take-profit orders wait in a :class:`StopBook`, outside the visible book.

Ordering invariant
    Strict price-time priority. An incoming order trades with the best opposite price first and
    exhausts a level, oldest order first, before it moves to the next; it never trades through a
    better price. Every trade prints at the resting (maker) order's price.

Modify semantics
    A replace that lowers the quantity at the same price keeps the order's place. A price change
    or a quantity increase takes it out and enters it again, as an aggressor that may trade, at
    the back of its (new) level. The order id never changes.

Duplicate ids
    Order ids are assigned by the caller and must be unique; a new order whose id is open or in
    the recent-history window is rejected with ``duplicate_order_id`` and changes nothing.

Complexity (n orders at a level, L levels on a side, k levels or fills touched)
    add that rests: O(1) at an existing or a new best level, else O(log L) plus a C memmove of
    the better levels' ranks (see :mod:`tradingapp.engine.side`); cancel: O(1), plus the same
    when a level behind the best empties; match: O(k); BBO: O(1); top-N depth: O(N); order
    lookup: O(1).

Determinism
    No clock, no randomness, no I/O, and no iteration over hashed containers where order matters
    (dicts iterate in insertion order, which is itself determined by the commands). Time stamps
    and ids come in with the commands, trade ids from an :class:`IdSequence` the caller owns.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Hashable, Iterable, Iterator
from typing import Any

from tradingapp.engine.commands import Cancel, CancelAll, Command, NewOrder, Replace
from tradingapp.engine.events import (
    Accepted,
    BboChanged,
    Canceled,
    CancelRejected,
    DepthChanged,
    Event,
    Expired,
    Rejected,
    Replaced,
    Restated,
    Trade,
    Triggered,
)
from tradingapp.engine.fees import RATE_SCALE, FeeRates, fee_amount
from tradingapp.engine.level import PriceLevel
from tradingapp.engine.numbers import MAX_UNITS
from tradingapp.engine.orders import ORDER_ENUMS, ORDER_FIELDS, Order, orders_from_rows
from tradingapp.engine.reasons import Reason
from tradingapp.engine.sequence import IdSequence
from tradingapp.engine.side import BookSide
from tradingapp.engine.stops import StopBook
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

BUY = Side.BUY
SELL = Side.SELL
NEW = OrderStatus.NEW
PARTIALLY_FILLED = OrderStatus.PARTIALLY_FILLED
FILLED = OrderStatus.FILLED
CANCELED = OrderStatus.CANCELED
EXPIRED = OrderStatus.EXPIRED
REJECTED = OrderStatus.REJECTED
STP_NONE = SelfTradePrevention.NONE
STP_CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
STP_CANCEL_OLDEST = SelfTradePrevention.CANCEL_OLDEST
STP_CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
STP_DECREMENT = SelfTradePrevention.DECREMENT

# Order types whose unfilled remainder rests, and types that take no limit price once live.
_RESTING_TYPES = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT})
_MARKET_TYPES = frozenset({OrderType.MARKET, OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
_CONDITIONAL_TYPES = frozenset(
    {OrderType.STOP_LOSS, OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT}
)
LIMIT = OrderType.LIMIT
FOK = OrderType.FOK
# Enum members read on every command are module constants: ``Reason.X`` goes through the enum
# metaclass's attribute hook and costs about 13 times a global read (80 ns against 6).
CANCELED_BY_USER = Reason.CANCELED_BY_USER
IOC_REMAINDER = Reason.IOC_REMAINDER
NO_LIQUIDITY = Reason.NO_LIQUIDITY
#: Refusals of a command that is not a valid order at all (a field out of its domain, or an id
#: already taken): it leaves no trace. A well-formed order refused by a market rule (post-only
#: would take, stop already reached, a size filter) is kept among the done orders, as
#: ``rejected``, so that status queries by its id find it.
_MALFORMED = frozenset(
    {
        Reason.DUPLICATE_ORDER_ID,
        Reason.INVALID_QUANTITY,
        Reason.INVALID_PRICE,
        Reason.MISSING_PRICE,
        Reason.MISSING_STOP_PRICE,
        Reason.INVALID_ORDER_TYPE,
    }
)

#: Builds a NamedTuple event from a tuple of its fields without the Python-level ``__new__``.
new_event = tuple.__new__

#: Done orders remembered for status queries and duplicate-id checks, per book.
DEFAULT_DONE_HISTORY = 10_000


class OrderBook:
    """A price-time priority book for one symbol: commands in, events out."""

    def __init__(
        self,
        spec: SymbolSpec,
        trade_ids: IdSequence | None = None,
        *,
        done_history: int = DEFAULT_DONE_HISTORY,
    ) -> None:
        self.spec = spec
        self.trade_ids = trade_ids if trade_ids is not None else IdSequence()
        self.bids = BookSide(BUY)
        self.asks = BookSide(SELL)
        self.stops = StopBook()
        self._orders: dict[int, Order] = {}
        self._done: dict[int, Order] = {}
        self._done_ids: deque[int] = deque()
        self._done_history = done_history
        self.last_trade_price: int | None = None
        self.update_seq = 0
        self.trade_count = 0  # trades printed in this book: the trade feed's sequence
        self._bbo: tuple[int | None, int, int | None, int] = (None, 0, None, 0)
        self._changed = False
        self._filtered = bool(
            spec.min_quantity > 1 or spec.max_quantity is not None or spec.min_notional_tick_lots
        )

    # -- QUERIES -------------------------------------------------------------------------------

    def bbo(self) -> tuple[int | None, int, int | None, int]:
        """Return ``(bid_price, bid_qty, ask_price, ask_qty)``; an empty side is ``(None, 0)``. O(1)."""
        bid = self.bids.best
        ask = self.asks.best
        return (
            None if bid is None else bid.price,
            0 if bid is None else bid.quantity,
            None if ask is None else ask.price,
            0 if ask is None else ask.quantity,
        )

    def depth(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return the top ``n`` levels ``(bids, asks)`` as ``(price, quantity)``, best first. O(n)."""
        return self.bids.top(n), self.asks.top(n)

    def order(self, order_id: int) -> Order | None:
        """Return an open order, or a recently done one, by id (None when unknown). O(1)."""
        order = self._orders.get(order_id)
        return order if order is not None else self._done.get(order_id)

    def open_orders(self, account: Hashable) -> list[Order]:
        """Return ``account``'s open orders (resting and untriggered stops) by ascending id.

        O(n) over the book's open orders: queries and cancel-all are rare next to adds and fills,
        which pay nothing for them this way.
        """
        return sorted((o for o in self._orders.values() if o.account == account), key=_order_id)

    def __len__(self) -> int:
        """Return the number of open orders (resting plus untriggered)."""
        return len(self._orders)

    # -- COMMANDS ------------------------------------------------------------------------------

    def apply(self, command: Command) -> list[Event]:
        """Apply one command and return its events; the single entry point.

        It closes every command the same way: when the visible book changed, the update sequence
        goes up by one and the events end with ``BboChanged`` (if the best prices or sizes moved)
        and ``DepthChanged``.
        """
        kind = type(command)
        if kind is NewOrder:
            events = self._submit(command)  # type: ignore[arg-type]
        elif kind is Cancel:
            events = self._cancel(command)  # type: ignore[arg-type]
        elif kind is Replace:
            events = self._replace(command)  # type: ignore[arg-type]
        elif kind is CancelAll:
            events = self._cancel_all(command)  # type: ignore[arg-type]
        else:
            raise TypeError(f"not a book command: {command!r}")
        if self._changed:
            self._changed = False
            seq = self.update_seq = self.update_seq + 1
            bid = self.bids.best
            ask = self.asks.best
            bbo = (
                None if bid is None else bid.price,
                0 if bid is None else bid.quantity,
                None if ask is None else ask.price,
                0 if ask is None else ask.quantity,
            )
            if bbo != self._bbo:
                self._bbo = bbo
                events.append(new_event(BboChanged, (seq, *bbo)))
            events.append(new_event(DepthChanged, (seq,)))
        return events

    def _submit(self, cmd: NewOrder) -> list[Event]:
        """Enter a new order: validate, then trade, rest, wait for a trigger, or expire."""
        order = Order(
            cmd.order_id,
            cmd.account,
            cmd.side,
            cmd.order_type,
            cmd.price,
            cmd.quantity,
            cmd.stop_price,
            cmd.stp,
            cmd.post_only,
            cmd.client_order_id,
            cmd.fees,
            cmd.budget,
        )
        problem = self._check_new(order)
        if problem is not None:
            order.status = REJECTED
            order.leaves = 0
            if problem[0] not in _MALFORMED:
                self._retire(order)
            return [new_event(Rejected, (order, order.quantity, 0, 0, 0, REJECTED, *problem))]
        events: list[Event] = [new_event(Accepted, (order, order.quantity, order.leaves, 0, 0, NEW))]
        if order.order_type in _CONDITIONAL_TYPES:
            self._orders[order.order_id] = order
            self.stops.add(order)
            return events
        self._execute(order, events)
        if self.stops.ids:
            self._run_triggers(events)
        return events

    def _cancel(self, cmd: Cancel) -> list[Event]:
        # Cancel one open order of ``cmd.account``.
        order = self._orders.get(cmd.order_id)
        if order is None or order.account != cmd.account:
            return [self._not_open(cmd.order_id, cmd.account, "cancel", cmd.client_order_id)]
        events: list[Event] = []
        self._end(order, CANCELED, events, CANCELED_BY_USER)
        return events

    def _cancel_all(self, cmd: CancelAll) -> list[Event]:
        # Cancel every open order of ``cmd.account`` in this book, oldest first.
        events: list[Event] = []
        for order in self.open_orders(cmd.account):
            self._end(order, CANCELED, events, CANCELED_BY_USER)
        return events

    def _replace(self, cmd: Replace) -> list[Event]:
        # Amend an open order (see the module docstring for when priority is kept).
        order = self._orders.get(cmd.order_id)
        if order is None or order.account != cmd.account:
            return [self._not_open(cmd.order_id, cmd.account, "replace", cmd.client_order_id)]
        problem = self._check_replace(order, cmd)
        if problem is not None:
            return [self._replace_reject(cmd, order, problem[0], problem[1])]
        events: list[Event] = []
        previous_cid = order.client_order_id
        if cmd.client_order_id is not None:
            order.client_order_id = cmd.client_order_id
        new_qty = order.quantity if cmd.quantity is None else cmd.quantity
        new_price = order.price if cmd.price is None else cmd.price
        if cmd.budget is not None:
            order.budget = cmd.budget
        if order.order_id in self.stops.ids:
            new_stop = order.stop_price if cmd.stop_price is None else cmd.stop_price
            keep = new_stop == order.stop_price and new_qty <= order.quantity
            if not keep:
                self.stops.remove(order)
            self._set_quantity(order, new_qty, None)
            order.price = new_price
            order.stop_price = new_stop
            if not keep:
                self.stops.add(order)
            events.append(self._replaced(order, keep, previous_cid))
            return events
        if new_price == order.price and new_qty <= order.quantity:
            self._set_quantity(order, new_qty, self._level_of(order))
            events.append(self._replaced(order, True, previous_cid))
        else:
            self._unrest(order)
            self._set_quantity(order, new_qty, None)
            order.price = new_price
            events.append(self._replaced(order, False, previous_cid))
            self._execute(order, events)
            if self.stops.ids:
                self._run_triggers(events)
        return events

    # -- VALIDATION ----------------------------------------------------------------------------

    def _check_new(self, order: Order) -> tuple[Reason, str] | None:
        # Returns why a new order is refused, or None; the checks are the ones the book owns,
        # ordered so that a plain limit order passes with a dozen cheap tests.
        oid = order.order_id
        if oid in self._orders or oid in self._done:
            return Reason.DUPLICATE_ORDER_ID, f"order id {oid} is already in use"
        qty = order.quantity
        if type(qty) is not int or qty <= 0 or qty > MAX_UNITS:
            return Reason.INVALID_QUANTITY, "quantity must be a positive whole number of lots"
        otype = order.order_type
        price = order.price
        if price is not None:
            if type(price) is not int or price <= 0 or price > MAX_UNITS:
                return Reason.INVALID_PRICE, "price must be a positive whole number of ticks"
            if otype in _MARKET_TYPES:
                return Reason.INVALID_PRICE, f"{otype.value} orders take no limit price"
        elif otype in _RESTING_TYPES:
            return Reason.MISSING_PRICE, f"{otype.value} orders need a price"
        if order.post_only and otype is not LIMIT:
            return Reason.INVALID_ORDER_TYPE, "post_only applies to limit orders only"
        # every check of the fields (``_MALFORMED``) comes before the market rules
        if otype in _CONDITIONAL_TYPES or order.stop_price is not None:
            problem = self._check_stop(order)
            if problem is not None:
                return problem
        if self._filtered:
            problem = self._check_size(qty, price)
            if problem is not None:
                return problem
        if order.post_only and self._crosses(order.side, price):
            return Reason.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity"
        return None

    def _check_size(self, qty: int, price: int | None) -> tuple[Reason, str] | None:
        # The symbol's quantity and notional filters (skipped when none is configured).
        spec = self.spec
        if qty < spec.min_quantity:
            return (
                Reason.QUANTITY_BELOW_MINIMUM,
                f"quantity is below the minimum {spec.format_quantity(spec.min_quantity)}",
            )
        if spec.max_quantity is not None and qty > spec.max_quantity:
            return (
                Reason.QUANTITY_ABOVE_MAXIMUM,
                f"quantity is above the maximum {spec.format_quantity(spec.max_quantity)}",
            )
        if price is not None and price * qty < spec.min_notional_tick_lots:
            return Reason.NOTIONAL_BELOW_MINIMUM, "order value is below the symbol's minimum notional"
        return None

    def _check_stop(self, order: Order) -> tuple[Reason, str] | None:
        # A stop price exactly where one belongs and valid (its fields), then not already reached.
        otype = order.order_type
        stop = order.stop_price
        if otype not in _CONDITIONAL_TYPES:
            return Reason.INVALID_PRICE, f"{otype.value} orders take no stop_price"
        if stop is None:
            return Reason.MISSING_STOP_PRICE, f"{otype.value} orders need a stop_price"
        if type(stop) is not int or stop <= 0 or stop > MAX_UNITS:
            return Reason.INVALID_PRICE, "stop_price must be a positive whole number of ticks"
        if self.stops.would_trigger(order, self.last_trade_price):
            spec = self.spec
            return Reason.WOULD_TRIGGER_IMMEDIATELY, (
                f"stop_price {spec.format_price(stop)} is already reached "
                f"(last trade {spec.format_price(self.last_trade_price)})"
            )
        return None

    def _check_replace(self, order: Order, cmd: Replace) -> tuple[Reason, str] | None:
        # Returns why a replace is refused, or None; the order stays as it was when refused.
        if cmd.expected is not None and cmd.expected != (order.quantity, order.price, order.stop_price):
            return Reason.ORDER_CHANGED, (
                f"order {order.order_id} changed after the replace was sent (self-trade prevention "
                "or a refused earlier replace); send the replace again"
            )
        spec = self.spec
        new_qty = order.quantity if cmd.quantity is None else cmd.quantity
        if cmd.quantity is not None and (type(new_qty) is not int or new_qty <= 0 or new_qty > MAX_UNITS):
            return Reason.INVALID_QUANTITY, "quantity must be a positive whole number of lots"
        if new_qty <= order.filled:
            return Reason.QUANTITY_NOT_ABOVE_FILLED, (
                f"new quantity must exceed the filled quantity {spec.format_quantity(order.filled)}"
            )
        if cmd.price is not None:
            if order.price is None:
                return Reason.REPLACE_NOT_ALLOWED, f"{order.order_type.value} orders have no price to change"
            if type(cmd.price) is not int or cmd.price <= 0 or cmd.price > MAX_UNITS:
                return Reason.INVALID_PRICE, "price must be a positive whole number of ticks"
        new_price = order.price if cmd.price is None else cmd.price
        if self._filtered:
            problem = self._check_size(new_qty, new_price)
            if problem is not None:
                return problem
        in_stops = order.order_id in self.stops.ids
        if cmd.stop_price is not None:
            if not in_stops:
                return Reason.REPLACE_NOT_ALLOWED, "only an untriggered stop order has a stop_price to change"
            if type(cmd.stop_price) is not int or cmd.stop_price <= 0 or cmd.stop_price > MAX_UNITS:
                return Reason.INVALID_PRICE, "stop_price must be a positive whole number of ticks"
            if self.stops.would_trigger(order, self.last_trade_price, cmd.stop_price):
                return Reason.WOULD_TRIGGER_IMMEDIATELY, "the new stop_price is already reached"
        moved = new_price != order.price
        if not in_stops and order.post_only and moved and self._crosses(order.side, new_price):
            return Reason.POST_ONLY_WOULD_TAKE, "post-only order would take liquidity at the new price"
        return None

    def _crosses(self, side: Side, price: int | None) -> bool:
        # Would an order on ``side`` at ``price`` (None: any price) trade with the book now?
        best = (self.asks if side is BUY else self.bids).best
        if best is None:
            return False
        if price is None:
            return True
        return best.price <= price if side is BUY else best.price >= price

    def _not_open(
        self, order_id: int, account: Hashable, response_to: str, client_order_id: str | None
    ) -> CancelRejected:
        # Why a cancel or replace names no open order of ``account``: the order is done, or
        # unknown. Another account's order looks exactly like an unknown one, so ids leak nothing.
        done = self._done.get(order_id)
        if order_id not in self._orders and done is not None and done.account == account:
            text = f"order {order_id} is {done.status.value}"
            return CancelRejected(
                order_id, account, done, Reason.ORDER_NOT_OPEN, text, response_to, client_order_id
            )
        text = f"unknown order {order_id}"
        return CancelRejected(
            order_id, account, None, Reason.UNKNOWN_ORDER, text, response_to, client_order_id
        )

    def _replace_reject(self, cmd: Replace, order: Order, reason: Reason, text: str) -> CancelRejected:
        return CancelRejected(cmd.order_id, cmd.account, order, reason, text, "replace", cmd.client_order_id)

    # -- MATCHING ------------------------------------------------------------------------------

    def _execute(self, order: Order, events: list[Event]) -> None:
        # Run ``order`` as the aggressor, then rest, finish or expire what is left of it.
        otype = order.order_type
        if otype is FOK and not self._fok_fillable(order):
            self._finish(order, EXPIRED, events, Reason.FOK_NOT_FILLABLE)
            return
        opposite = self.asks if order.side is BUY else self.bids
        best = opposite.best
        limit = order.price
        # match only when the best opposite price is within the limit (a passive limit order,
        # the commonest command, skips the call)
        if best is not None and (limit is None or best.price * opposite.sign >= limit * opposite.sign):
            self._match(order, opposite, events)
            if order.status is EXPIRED:  # ended inside matching (self-trade prevention or budget)
                return
            if order.leaves == 0:
                self._retire(order)  # the last trade said it all
                return
        if otype in _RESTING_TYPES:
            self._rest(order)
        else:
            reason = IOC_REMAINDER if order.price is not None else NO_LIQUIDITY
            self._finish(order, EXPIRED, events, reason)

    def _match(self, taker: Order, opposite: BookSide, events: list[Event]) -> None:
        # Trade ``taker`` against ``opposite`` in price-time order until it is filled, reaches
        # its limit, meets a self-trade stop, or runs out of budget or liquidity.
        sign = opposite.sign
        limit = taker.price
        limit_rank = None if limit is None else limit * sign
        stp = taker.stp
        check_stp = stp is not STP_NONE
        account = taker.account
        scale = self.spec.quote_per_tick_lot
        taker_rate = taker.fees.taker if taker.fees is not None else 0
        trade_ids = self.trade_ids
        trades = 0
        last_price = None
        while True:
            level = opposite.best
            if level is None:
                break
            price = level.price
            if limit_rank is not None and price * sign < limit_rank:
                break
            maker = level.head
            while maker is not None:
                if check_stp and maker.account == account:
                    maker = self._prevent_self_trade(taker, maker, level, events)
                    if taker.leaves == 0 or taker.status is EXPIRED:
                        break
                    continue
                qty = taker.leaves if taker.leaves < maker.leaves else maker.leaves
                notional = price * qty * scale
                taker_fee = fee_amount(notional, taker_rate) if taker_rate else 0
                if taker.budget is not None:
                    if notional + taker_fee > taker.budget:
                        qty = self._affordable(taker.budget, price * scale, taker_rate)
                        if qty == 0:
                            break
                        notional = price * qty * scale
                        taker_fee = fee_amount(notional, taker_rate) if taker_rate else 0
                    taker.budget -= notional + taker_fee
                maker_fees = maker.fees
                maker_fee = (
                    fee_amount(notional, maker_fees.maker)
                    if maker_fees is not None and maker_fees.maker
                    else 0
                )
                tick_notional = price * qty
                maker.leaves -= qty
                maker.filled += qty
                maker.notional += tick_notional
                taker.leaves -= qty
                taker.filled += qty
                taker.notional += tick_notional
                level.quantity -= qty
                maker.status = PARTIALLY_FILLED if maker.leaves else FILLED
                taker.status = PARTIALLY_FILLED if taker.leaves else FILLED
                trade_ids.last = trade_id = trade_ids.last + 1
                events.append(
                    new_event(
                        Trade,
                        (
                            trade_id,
                            price,
                            qty,
                            maker,
                            taker,
                            maker_fee,
                            taker_fee,
                            maker.leaves,
                            maker.filled,
                            maker.notional,
                            taker.leaves,
                            taker.filled,
                            taker.notional,
                        ),
                    )
                )
                last_price = price
                trades += 1
                if maker.leaves:
                    if not taker.leaves:
                        break  # the taker is filled; the maker keeps its place
                    continue  # a budget cut this fill short: see whether one more lot is affordable
                # the maker is filled: unlink it from the front of its level and retire it
                nxt = maker.next
                level.head = nxt
                if nxt is None:
                    level.tail = None
                else:
                    nxt.prev = None
                maker.next = None
                level.count -= 1
                self._retire(maker)
                maker = nxt
                if not taker.leaves:
                    break
            if not level.count:
                opposite.drop(level)
            if not taker.leaves or taker.status is EXPIRED or maker is not None:
                break
        if last_price is not None:
            self.last_trade_price = last_price
            self.trade_count += trades
            self._changed = True
        if (
            taker.leaves
            and taker.budget is not None
            and taker.status is not EXPIRED
            and self._blocked_by_budget(taker)
        ):
            self._finish(taker, EXPIRED, events, Reason.BUDGET_EXHAUSTED)

    def _blocked_by_budget(self, taker: Order) -> bool:
        # True when a budgeted taker stopped because it cannot pay for one more lot at the best price.
        best = (self.asks if taker.side is BUY else self.bids).best
        if best is None or taker.budget is None:
            return False
        rate = taker.fees.taker if taker.fees is not None else 0
        return self._affordable(taker.budget, best.price * self.spec.quote_per_tick_lot, rate) == 0

    @staticmethod
    def _affordable(budget: int, unit_notional: int, rate: int) -> int:
        # Largest quantity whose notional plus taker fee fits in ``budget``.
        qty = budget * RATE_SCALE // (unit_notional * (RATE_SCALE + max(rate, 0)))
        while True:
            notional = unit_notional * (qty + 1)
            if notional + (fee_amount(notional, rate) if rate else 0) > budget:
                return qty
            qty += 1

    def _prevent_self_trade(
        self, taker: Order, maker: Order, level: PriceLevel, events: list[Event]
    ) -> Order | None:
        # Apply the taker's STP mode to one self-match; returns the next maker to look at.
        mode = taker.stp
        nxt = maker.next
        if mode is STP_CANCEL_NEWEST:
            self._finish(taker, EXPIRED, events, Reason.SELF_TRADE_PREVENTION)
            return maker
        if mode is STP_CANCEL_OLDEST or mode is STP_CANCEL_BOTH:
            level.remove(maker)
            self._finish(maker, EXPIRED, events, Reason.SELF_TRADE_PREVENTION)
            self._changed = True
            if mode is STP_CANCEL_BOTH:
                self._finish(taker, EXPIRED, events, Reason.SELF_TRADE_PREVENTION)
            return nxt
        # decrement: both lose the smaller remaining quantity; an order left with none expires
        cut = taker.leaves if taker.leaves < maker.leaves else maker.leaves
        self._changed = True
        level.quantity -= cut
        maker.quantity -= cut
        maker.leaves -= cut
        taker.quantity -= cut
        taker.leaves -= cut
        if maker.leaves == 0:
            level.remove(maker)
            self._finish(maker, EXPIRED, events, Reason.SELF_TRADE_PREVENTION)
        else:
            events.append(_restated(maker))
            nxt = maker
        if taker.leaves == 0:
            self._finish(taker, EXPIRED, events, Reason.SELF_TRADE_PREVENTION)
        else:
            events.append(_restated(taker))
        return nxt

    def _fok_fillable(self, order: Order) -> bool:
        # Decide before any fill whether ``order`` can fill completely now: walk the levels it
        # may trade with in priority order, counting what it would really get. Own orders under
        # ``cancel_oldest`` are passed over; under any other STP mode but ``none`` they stop it.
        opposite = self.asks if order.side is BUY else self.bids
        limit = order.price
        need = order.leaves
        budget = order.budget
        scale = self.spec.quote_per_tick_lot
        rate = order.fees.taker if order.fees is not None else 0
        check_stp = order.stp is not STP_NONE
        for level in opposite:
            price = level.price
            if limit is not None and (price > limit if order.side is BUY else price < limit):
                return False
            for maker in level:
                if check_stp and maker.account == order.account:
                    if order.stp is STP_CANCEL_OLDEST:
                        continue
                    return False
                qty = need if need < maker.leaves else maker.leaves
                if budget is not None:
                    notional = price * qty * scale
                    cost = notional + (fee_amount(notional, rate) if rate else 0)
                    if cost > budget:
                        return False
                    budget -= cost
                need -= qty
                if need == 0:
                    return True
        return False

    # -- BOOK MAINTENANCE ----------------------------------------------------------------------

    def _rest(self, order: Order) -> None:
        # Put a live limit remainder at the back of its level.
        price = order.price
        assert price is not None
        side = self.bids if order.side is BUY else self.asks
        level = side.levels.get(price)
        if level is None:
            level = side.add_level(price)
        order.price = level.price  # share the level's int object
        level.append(order)
        self._orders[order.order_id] = order
        self._changed = True

    def _level_of(self, order: Order) -> PriceLevel:
        assert order.price is not None
        return (self.bids if order.side is BUY else self.asks).levels[order.price]

    def _unrest(self, order: Order) -> None:
        # Take a resting order out of its level (dropping the level when it empties).
        side = self.bids if order.side is BUY else self.asks
        level = side.levels[order.price]  # type: ignore[index]
        level.remove(order)
        if not level.count:
            side.drop(level)
        self._changed = True

    def _set_quantity(self, order: Order, new_qty: int, level: PriceLevel | None) -> None:
        # Set a new total quantity; leaves follow (new total minus filled), and so does the level.
        new_leaves = new_qty - order.filled
        if level is not None:
            level.quantity += new_leaves - order.leaves
            if new_leaves != order.leaves:
                self._changed = True
        order.quantity = new_qty
        order.leaves = new_leaves

    def _end(self, order: Order, status: OrderStatus, events: list[Event], reason: Reason) -> None:
        # End an open order that is resting or waiting for its trigger.
        if order.order_id in self.stops.ids:
            self.stops.remove(order)
        else:
            self._unrest(order)
        self._finish(order, status, events, reason)

    def _finish(
        self, order: Order, status: OrderStatus, events: list[Event] | None, reason: Reason | None
    ) -> None:
        # Record that ``order`` is done; emit its closing event unless the trade said it all.
        order.status = status
        if status is not FILLED:
            order.leaves = 0
        if events is not None:
            assert reason is not None, "a closing event needs a reason"
            fields = (order, order.quantity, 0, order.filled, order.notional, status, reason)
            events.append(new_event(Canceled, fields) if status is CANCELED else new_event(Expired, fields))
        self._retire(order)

    def _retire(self, order: Order) -> None:
        # Drop a done order from the open indexes and remember it in the bounded history.
        oid = order.order_id
        self._orders.pop(oid, None)
        if self._done_history:
            self._done[oid] = order
            done_ids = self._done_ids
            done_ids.append(oid)
            if len(done_ids) > self._done_history:
                del self._done[done_ids.popleft()]

    def _replaced(self, order: Order, kept: bool, previous_cid: str | None) -> Replaced:
        return Replaced(
            order,
            order.quantity,
            order.leaves,
            order.filled,
            order.notional,
            order.status,
            kept,
            previous_cid,
        )

    # -- STOP TRIGGERS -------------------------------------------------------------------------

    def _run_triggers(self, events: list[Event]) -> None:
        # Release stops whose condition the last trade price now meets, in trigger order, and
        # run each as an aggressor; trades they make may trigger more (a cascade), which join
        # the back of the queue. Ends when no stop's condition holds.
        queue: deque[tuple[Order, int]] = deque()
        self.stops.pop_triggered(self.last_trade_price, queue)
        while queue:
            order, trigger_price = queue.popleft()
            events.append(
                Triggered(
                    order,
                    order.quantity,
                    order.leaves,
                    order.filled,
                    order.notional,
                    order.status,
                    trigger_price,
                )
            )
            self._orders.pop(order.order_id)
            self._execute(order, events)
            self.stops.pop_triggered(self.last_trade_price, queue)

    # -- INTEGRITY, DIGEST, SNAPSHOT -----------------------------------------------------------

    def resting_orders(self) -> Iterator[Order]:
        """Yield resting orders in priority order: bids best first, then asks best first."""
        for side in (self.bids, self.asks):
            for level in side:
                yield from level

    def check_invariants(self) -> None:
        """Raise AssertionError if any structural invariant is broken. O(n); for tests."""
        bid, ask = self.bids.best, self.asks.best
        for side in (self.bids, self.asks):
            side.check_invariants()
        if bid is not None and ask is not None:
            assert bid.price < ask.price, f"crossed book {bid.price}/{ask.price}"
        seen = 0
        for side in (self.bids, self.asks):
            for level in side:
                total = count = 0
                prev: Order | None = None
                for resting in level:
                    link = resting.prev
                    assert link is prev, "broken queue link"
                    assert resting.side is side.side and resting.price == level.price
                    assert resting.leaves > 0, f"order {resting.order_id} rests with no quantity"
                    assert resting.leaves == resting.quantity - resting.filled
                    assert resting.status is NEW or resting.status is PARTIALLY_FILLED
                    indexed = self._orders.get(resting.order_id)
                    assert indexed is not None and indexed is resting, "resting order not indexed"
                    total += resting.leaves
                    count += 1
                    prev = resting
                assert level.tail is prev
                assert count > 0, "empty level left in the book"
                assert level.count == count and level.quantity == total, "level aggregate is wrong"
                seen += count
        stops = self.stops.check_invariants()
        assert seen + stops == len(self._orders), "order index has entries not in the book"

    def state_digest(self) -> str:
        """Return a digest of the book's state that two equal books share, however built.

        Covers every resting order in priority order with its remaining and filled quantities,
        the untriggered stops in trigger order, the last trade price and the update sequence.
        """
        h = hashlib.blake2b(digest_size=16)
        for row in self._canonical_rows():
            h.update(repr(row).encode())
        return h.hexdigest()

    def _canonical_rows(self) -> Iterator[tuple[object, ...]]:
        yield ("book", self.spec.symbol, self.last_trade_price, self.update_seq, self.trade_count)
        for order in self.resting_orders():
            yield _order_row(order)
        for order in self.stops.orders():
            yield _order_row(order)

    def snapshot(self) -> dict[str, Any]:
        """Return the book as plain data (lists, ints, strs) that :meth:`restore` rebuilds exactly."""
        return {
            "symbol": self.spec.symbol,
            "last_trade_price": self.last_trade_price,
            "update_seq": self.update_seq,
            "trade_count": self.trade_count,
            "resting": [_order_to_data(o) for o in self.resting_orders()],
            "stops": [_order_to_data(o) for o in self.stops.orders()],
            "done": [_order_to_data(self._done[oid]) for oid in self._done_ids],
        }

    @classmethod
    def restore(
        cls,
        spec: SymbolSpec,
        data: dict[str, Any],
        trade_ids: IdSequence | None = None,
        *,
        done_history: int = DEFAULT_DONE_HISTORY,
        fee_lookup: Any = None,
    ) -> OrderBook:
        """Rebuild a book from :meth:`snapshot` data, with identical priority and counters.

        ``fee_lookup`` maps a ``(maker, taker)`` rate pair back to a shared FeeRates object.
        """
        return cls.from_orders(
            spec,
            trade_ids,
            resting=_orders_from_data(data["resting"], fee_lookup),
            stops=_orders_from_data(data["stops"], fee_lookup),
            done=_orders_from_data(data["done"], fee_lookup),
            counters=(data["last_trade_price"], data["update_seq"], data["trade_count"]),
            done_history=done_history,
        )

    def done_orders(self) -> Iterator[Order]:
        """Yield the remembered done orders, oldest first (what :meth:`snapshot` keeps as "done")."""
        done = self._done
        for oid in self._done_ids:
            yield done[oid]

    @classmethod
    def from_orders(
        cls,
        spec: SymbolSpec,
        trade_ids: IdSequence | None,
        *,
        resting: Iterable[Order],
        stops: Iterable[Order],
        done: Iterable[Order],
        counters: tuple[int | None, int, int],
        done_history: int = DEFAULT_DONE_HISTORY,
    ) -> OrderBook:
        """Build a book from its orders: ``resting`` in priority order (as :meth:`resting_orders`
        yields them), ``stops`` in trigger order, ``done`` oldest first, and ``counters`` =
        ``(last_trade_price, update_seq, trade_count)``. Shared by :meth:`restore` and the
        snapshot codec, which build the orders from their own encodings."""
        book = cls(spec, trade_ids, done_history=done_history)
        rest = book._rest
        for order in resting:
            rest(order)
        for order in stops:
            book._orders[order.order_id] = order
            book.stops.add(order)
        for order in done:
            book._done[order.order_id] = order
            book._done_ids.append(order.order_id)
        book.last_trade_price, book.update_seq, book.trade_count = counters
        book._changed = False
        book._bbo = book.bbo()
        return book


def _restated(order: Order) -> Restated:
    # Self-trade prevention "decrement" reduced ``order``; it stays open.
    return Restated(
        order,
        order.quantity,
        order.leaves,
        order.filled,
        order.notional,
        order.status,
        Reason.SELF_TRADE_PREVENTION,
    )


def _order_id(order: Order) -> int:
    return order.order_id


def _order_row(order: Order) -> tuple[object, ...]:
    # ORDER_FIELDS, enums by wire value and fee rates as a pair (written out: the digest's hot loop)
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
        order.stp.value,
        order.post_only,
        order.client_order_id,
        None if order.fees is None else (order.fees.maker, order.fees.taker),
        order.budget,
    )


def _order_to_data(order: Order) -> list[object]:
    return list(_order_row(order))


def _orders_from_data(rows: Iterable[list[Any]], fee_lookup: Any) -> Iterator[Order]:
    """Orders from :meth:`OrderBook.snapshot` rows: enums by wire value, fee rates as a pair."""

    def rates(pair: list[int] | None) -> FeeRates | None:
        if pair is None:
            return None
        return fee_lookup(tuple(pair)) if fee_lookup is not None else FeeRates(*pair)

    decoders = [rates if name == "fees" else ORDER_ENUMS.get(name) for name in ORDER_FIELDS]
    return orders_from_rows(
        [value if decode is None else decode(value) for decode, value in zip(decoders, row, strict=True)]
        for row in rows
    )
