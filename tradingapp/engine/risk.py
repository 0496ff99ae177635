"""Accounts, balances and pre-trade risk: pure and synchronous, like the books.

Two phases, as in exchange-core. **Before** a book sees an order, :meth:`Risk.admit` checks the
order-entry limits and the funds and reserves what the order could spend at worst. **After** the
book has run it, :meth:`Risk.settle` folds the book's events into the balances: each fill moves
base and quote between the two accounts at the trade price and pays both fees to the fee account;
whatever an order no longer needs (price improvement, an unfilled remainder, a cancel) goes back
to ``available``.

What one open order keeps reserved (its *hold*):

- a **sell** holds its open quantity in the base asset;
- a **buy with a limit price** holds ``notional(price, leaves) + fee`` in the quote asset, the fee
  at the worse of the account's maker and taker rates;
- a **buy without a price** (market, or IOC/FOK without price) holds the account's whole
  available quote balance as its *budget* for the one command that runs it; the book stops
  filling when the budget is spent and the rest comes back at once (the risk actor holds the
  account's next commands until then, so nothing is refused for an instant's hold);
- a **stop-market buy** (``stop_loss``/``take_profit``) holds a budget of
  ``notional(stop_price, quantity) * (1 + stops.market_buffer_pct) + taker fee``; once
  triggered it fills until that budget is spent.

A replace first reserves the most the amended order could need whatever fills arrive before the
book applies it (``extra``); the book's answer then sets the exact hold and releases the rest.
Risk checks a replace against the order as the book will have it when the replace arrives (its
terms after every replace still in flight) and passes those terms on with it; the book refuses the
replace (``order_changed``) if the order no longer has them, because only fills were allowed for.

Every amount is an integer in the asset's smallest unit, so the arithmetic is exact and the sum of
``total`` of each asset over all accounts (the fee account included) never changes while trading.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol

from tradingapp.config import VenueConfig
from tradingapp.engine.commands import NewOrder, Replace
from tradingapp.engine.events import (
    Canceled,
    CancelRejected,
    Event,
    Expired,
    Rejected,
    Replaced,
    Restated,
    Trade,
)
from tradingapp.engine.fees import RATE_SCALE, FeeRates, fee_amount
from tradingapp.engine.reasons import Reason
from tradingapp.engine.sequence import IdSequence
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

BUY = Side.BUY
_STOP_MARKET = frozenset({OrderType.STOP_LOSS, OrderType.TAKE_PROFIT})
_NO_PRICE_BUY = frozenset({OrderType.MARKET, OrderType.IOC, OrderType.FOK})
#: Types that take no limit price: one given anyway is refused by the book as ``invalid_price``,
#: so the price band (which judges limit prices) does not look at it.
_PRICELESS = _STOP_MARKET | {OrderType.MARKET}

#: Done orders remembered per account (client id -> order id, order id -> symbol), so that status
#: queries by client id and cancels or replaces without a symbol still find a recent done order
#: (and answer ``order_not_open``, as the book does when the symbol is given).
DONE_CLIENT_IDS = 1_000


class OrderRequest(Protocol):
    """What :meth:`Risk.admit` reads from a validated new-order request (ticks and lots)."""

    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    price: int | None
    stop_price: int | None
    post_only: bool
    stp: SelfTradePrevention
    client_order_id: str | None


class Holding:
    """One asset of one account: ``total`` owned and the part ``reserved`` for open orders."""

    __slots__ = ("reserved", "total")

    def __init__(self, total: int = 0, reserved: int = 0) -> None:
        self.total = total
        self.reserved = reserved

    @property
    def available(self) -> int:
        """What new orders may use."""
        return self.total - self.reserved


class Terms(NamedTuple):
    """What decides an order's hold: total quantity, limit and stop prices, budget (budget buys)."""

    quantity: int
    price: int | None
    stop_price: int | None
    budget: int | None


class Amendment(NamedTuple):
    """A replace risk passed to the book that the book has not answered yet.

    ``extra`` is what risk reserved ahead of it; ``terms`` are the order's terms once the book
    applies it, which the next replace of the same order is checked against; ``client_order_id``
    is the replace's new client order id (None keeps the current one).
    """

    extra: int
    terms: Terms
    client_order_id: str | None


class Hold:
    """Risk's record of one open order and what it reserves.

    ``base`` is exact for the order as the book last reported it; ``extra`` is reserved ahead for
    replaces the book has not answered yet, one :class:`Amendment` per replace in ``pending``.
    """

    __slots__ = (
        "account",
        "asset",
        "base",
        "budgeted",
        "client_order_id",
        "extra",
        "filled",
        "order_id",
        "pending",
        "price",
        "quantity",
        "rate",
        "side",
        "stop_price",
        "symbol",
    )

    def __init__(self, command: NewOrder, asset: str, base: int, rate: int) -> None:
        self.order_id = command.order_id
        self.account = str(command.account)
        self.symbol = command.symbol
        self.side = command.side
        self.asset = asset
        self.price = command.price
        self.stop_price = command.stop_price
        self.quantity = command.quantity
        self.filled = 0
        self.budgeted = command.side is BUY and command.price is None
        self.rate = rate
        self.base = base
        self.extra = 0
        self.pending: deque[Amendment] = deque()
        self.client_order_id = command.client_order_id

    @property
    def held(self) -> int:
        """Everything this order keeps reserved."""
        return self.base + self.extra

    def terms(self) -> Terms:
        """The order's terms as the book will have them once every replace in flight is applied."""
        if self.pending:
            return self.pending[-1].terms
        return Terms(self.quantity, self.price, self.stop_price, self.base if self.budgeted else None)


class Account:
    """An account's balances, fee rates, open orders and client order ids."""

    __slots__ = ("client_ids", "done_client_ids", "done_symbols", "fees", "holdings", "name", "orders")

    def __init__(self, name: str, fees: FeeRates) -> None:
        self.name = name
        self.fees = fees
        self.holdings: dict[str, Holding] = {}
        self.orders: dict[int, Hold] = {}
        self.client_ids: dict[str, int] = {}  # live orders only: a client id is reusable after
        self.done_client_ids: dict[str, int] = {}  # bounded memory of recent done orders
        self.done_symbols: dict[int, str] = {}  # the same orders' symbols, by order id

    def holding(self, asset: str) -> Holding:
        """Return the holding of ``asset``, creating an empty one."""
        holding = self.holdings.get(asset)
        if holding is None:
            holding = self.holdings[asset] = Holding()
        return holding

    def claim_client_ids(self, hold: Hold) -> None:
        """Map every client id ``hold``'s order answers to: its own and the new one of each replace
        in flight. A replace's new id is taken when the replace is admitted, not when the book
        applies it, so no other order can be given it meanwhile."""
        if hold.client_order_id is not None:
            self.client_ids[hold.client_order_id] = hold.order_id
        for amendment in hold.pending:
            if amendment.client_order_id is not None:
                self.client_ids[amendment.client_order_id] = hold.order_id

    def release_client_id(self, cid: str | None, hold: Hold) -> None:
        """Free ``cid`` unless ``hold``'s order still answers to it (as its own id or the new id
        of a replace still in flight)."""
        if cid is None or cid == hold.client_order_id:
            return
        if any(amendment.client_order_id == cid for amendment in hold.pending):
            return
        if self.client_ids.get(cid) == hold.order_id:
            del self.client_ids[cid]


class Rejection(Exception):
    """Raised by the admission checks to refuse a request; carries the reason and a text."""

    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


def limit_hold(spec: SymbolSpec, price: int, leaves: int, rate: int) -> int:
    """Quote units a buy of ``leaves`` lots at ``price`` ticks reserves, fee included."""
    notional = price * leaves * spec.quote_per_tick_lot
    return notional + (fee_amount(notional, rate) if rate > 0 else 0)


def _available(account: Account, asset: str) -> int:
    # Read without creating an empty holding: a refused order must change no state at all.
    holding = account.holdings.get(asset)
    return 0 if holding is None else holding.available


def _worst_rate(fees: FeeRates) -> int:
    return max(fees.maker, fees.taker, 0)


class Risk:
    """Every account of the venue and the rules that guard them."""

    def __init__(self, config: VenueConfig, order_ids: IdSequence | None = None) -> None:
        self.config = config
        self.order_ids = order_ids if order_ids is not None else IdSequence()
        self.fee_account = config.fee_account
        self.specs = {spec.symbol: spec for spec in config.symbols}
        self.accounts: dict[str, Account] = {}
        for acfg in config.accounts:
            account = self.accounts[acfg.account] = Account(acfg.account, acfg.fees)
            for asset, amount in acfg.balances.items():
                account.holding(asset).total = amount
        self.last_prices: dict[str, int] = {}
        self._fee_rates = {(a.fees.maker, a.fees.taker): a.fees for a in self.accounts.values()}

    # -- QUERIES -------------------------------------------------------------------------------

    def balances(self, account: str) -> dict[str, tuple[int, int, int]]:
        """Return ``{asset: (total, available, reserved)}`` for every asset of the venue."""
        acct = self.accounts[account]
        out = {}
        for asset in self.config.asset_places:
            holding = acct.holdings.get(asset) or Holding()
            out[asset] = (holding.total, holding.available, holding.reserved)
        return out

    def totals(self) -> dict[str, int]:
        """Return the sum of ``total`` per asset over every account (constant while trading)."""
        sums: dict[str, int] = dict.fromkeys(self.config.asset_places, 0)
        for account in self.accounts.values():
            for asset, holding in account.holdings.items():
                sums[asset] = sums.get(asset, 0) + holding.total
        return sums

    def fee_rates(self, pair: tuple[int, int]) -> FeeRates:
        """Return the shared FeeRates object for a ``(maker, taker)`` pair (replay, restore)."""
        rates = self._fee_rates.get(pair)
        if rates is None:
            rates = self._fee_rates[pair] = FeeRates(*pair)
        return rates

    def order_id_for_client_id(self, account: str, client_order_id: str) -> int | None:
        """Return the id of ``account``'s order with this client order id (live, else recent)."""
        acct = self.accounts[account]
        order_id = acct.client_ids.get(client_order_id)
        return order_id if order_id is not None else acct.done_client_ids.get(client_order_id)

    def open_holds(self, account: str, symbol: str | None = None) -> list[Hold]:
        """Return ``account``'s open orders (optionally of one symbol) by ascending id."""
        holds = self.accounts[account].orders.values()
        return sorted((h for h in holds if symbol is None or h.symbol == symbol), key=_hold_id)

    def symbol_of(self, account: str, order_id: int) -> str | None:
        """Return the symbol of ``account``'s order ``order_id``: open, else recently done."""
        acct = self.accounts.get(account)
        if acct is None:
            return None
        hold = acct.orders.get(order_id)
        return hold.symbol if hold is not None else acct.done_symbols.get(order_id)

    def hold(self, account: str, order_id: int) -> Hold | None:
        """Return ``account``'s open order ``order_id`` as risk sees it (None if not open)."""
        acct = self.accounts.get(account)
        return None if acct is None else acct.orders.get(order_id)

    @staticmethod
    def holds_whole_balance(order_type: OrderType, side: Side, price: int | None) -> bool:
        """True for a buy without a price: it holds all available quote for its one command."""
        return side is BUY and price is None and order_type in _NO_PRICE_BUY

    # -- PHASE 1: ADMISSION --------------------------------------------------------------------

    def admit(self, request: OrderRequest, timestamp: int) -> tuple[NewOrder, int]:
        """Check a new order, reserve its funds and return ``(book command, amount held)``.

        Raises :class:`Rejection` and changes nothing when the order is refused.
        """
        account = self.accounts.get(request.account)
        if account is None:
            raise Rejection(Reason.UNKNOWN_ACCOUNT, f"unknown account {request.account!r}")
        spec = self.specs.get(request.symbol)
        if spec is None:
            raise Rejection(Reason.UNKNOWN_SYMBOL, f"unknown symbol {request.symbol!r}")
        cid = request.client_order_id
        if cid is not None and cid in account.client_ids:
            raise Rejection(Reason.DUPLICATE_CLIENT_ORDER_ID, f"client_order_id {cid!r} is already in use")
        maximum = self.config.limits.max_open_orders_per_account
        if len(account.orders) >= maximum:
            raise Rejection(Reason.TOO_MANY_OPEN_ORDERS, f"the account already has {maximum} open orders")
        if request.price is not None and request.order_type not in _PRICELESS:
            self._check_band(spec, request.price)
        amount, budget = self._new_hold(account, spec, request)
        command = NewOrder(
            self.order_ids.last + 1,
            account.name,
            request.side,
            request.order_type,
            request.quantity,
            request.price,
            request.stop_price,
            request.post_only,
            request.stp,
            cid,
            account.fees,
            budget,
            timestamp,
            spec.symbol,
        )
        self.apply_admitted(command, amount)
        return command, amount

    def _check_band(self, spec: SymbolSpec, price: int) -> None:
        # A limit price too far from the last trade is refused (fat-finger protection).
        band = self.config.price_bands.get(spec.symbol)
        last = self.last_prices.get(spec.symbol)
        if band is None or last is None or band.allows(price, last):
            return
        low, high = band.bounds(last)
        raise Rejection(
            Reason.PRICE_OUT_OF_BAND,
            f"price {spec.format_price(price)} is more than {band.pct}% from the last trade "
            f"{spec.format_price(last)} (allowed {spec.format_price(low)} to {spec.format_price(high)})",
        )

    def _new_hold(self, account: Account, spec: SymbolSpec, request: OrderRequest) -> tuple[int, int | None]:
        # Decide what a new order reserves (and its budget, for a buy without a price).
        budget = None
        if request.side is not BUY:
            asset = spec.base
            amount = request.quantity * spec.base_per_lot
        else:
            asset = spec.quote
            if request.price is not None:
                amount = limit_hold(spec, request.price, request.quantity, _worst_rate(account.fees))
            elif request.order_type in _STOP_MARKET:
                assert request.stop_price is not None
                amount = budget = self.stop_budget(account.fees, spec, request.stop_price, request.quantity)
            else:
                amount = budget = _available(account, asset)
                if amount <= 0:
                    raise Rejection(Reason.INSUFFICIENT_FUNDS, f"insufficient funds: no {asset} available")
        available = _available(account, asset)
        if amount > available:
            fmt = self.config.format_asset
            raise Rejection(
                Reason.INSUFFICIENT_FUNDS,
                f"insufficient funds: the order needs {fmt(asset, amount)} {asset}, "
                f"available {fmt(asset, available)} {asset}",
            )
        return amount, budget

    def stop_budget(self, fees: FeeRates, spec: SymbolSpec, stop_price: int, quantity: int) -> int:
        """What a stop-market buy may spend once triggered: buffered notional plus taker fee."""
        notional = self.config.stops.buffered_notional(stop_price * quantity * spec.quote_per_tick_lot)
        return notional + (fee_amount(notional, fees.taker) if fees.taker > 0 else 0)

    def apply_admitted(self, command: NewOrder, amount: int) -> None:
        """Record an admitted order and its hold (also how the journal replays an admission)."""
        account = self.accounts[str(command.account)]
        spec = self.specs[command.symbol]
        is_buy = command.side is BUY
        hold = Hold(command, spec.quote if is_buy else spec.base, amount, _worst_rate(account.fees))
        account.orders[command.order_id] = hold
        if command.client_order_id is not None:
            account.client_ids[command.client_order_id] = command.order_id
        account.holding(hold.asset).reserved += amount
        self.order_ids.last = max(self.order_ids.last, command.order_id)

    def admit_replace(self, account_name: str, replace: Replace) -> tuple[Replace, int]:
        """Check a replace and reserve the most it could need; return ``(command, extra)``.

        The replace is checked against the order's terms once the replaces of it still in flight
        are applied, and the command carries those terms (``expected``): the book refuses it when
        the order no longer has them (a self-trade decrement or a refused earlier replace came
        first), so fills are the only change the extra has to cover. A replace of an order risk
        does not see open passes unreserved and unchecked (the book refuses it with the precise
        reason); one naming another symbol than its order's is refused as an unknown order. For
        a stop-market buy the returned command carries the new budget.
        """
        account = self.accounts[account_name]
        hold = account.orders.get(replace.order_id)
        if hold is None:
            return replace, 0
        if hold.symbol != replace.symbol:
            # The named book has no such order. Refused here, not passed on: that book's refusal
            # would settle against this hold and release the amendment of a replace still in
            # flight in the order's own book (replaces of one order settle in FIFO order).
            raise Rejection(Reason.UNKNOWN_ORDER, f"unknown order {replace.order_id}")
        spec = self.specs[hold.symbol]
        cid = replace.client_order_id
        if cid is not None and account.client_ids.get(cid, replace.order_id) != replace.order_id:
            raise Rejection(Reason.DUPLICATE_CLIENT_ORDER_ID, f"client_order_id {cid!r} is already in use")
        if replace.price is not None and hold.price is not None:  # else the book: replace_not_allowed
            self._check_band(spec, replace.price)
        before = hold.terms()
        new_qty = before.quantity if replace.quantity is None else replace.quantity
        budget = replace.budget
        if hold.budgeted and before.stop_price is not None and (replace.stop_price or replace.quantity):
            new_stop = before.stop_price if replace.stop_price is None else replace.stop_price
            budget = self.stop_budget(account.fees, spec, new_stop, new_qty)
        extra = self._replace_extra(spec, hold, before, new_qty, replace.price, budget)
        available = account.holding(hold.asset).available
        if extra > available:
            fmt = self.config.format_asset
            raise Rejection(
                Reason.INSUFFICIENT_FUNDS,
                f"insufficient funds for the replace: it needs {fmt(hold.asset, extra)} {hold.asset} more, "
                f"available {fmt(hold.asset, available)} {hold.asset}",
            )
        replace.budget = budget
        replace.expected = (before.quantity, before.price, before.stop_price)
        self.apply_replace_hold(replace, extra)
        return replace, extra

    @staticmethod
    def _replace_extra(
        spec: SymbolSpec, hold: Hold, before: Terms, new_qty: int, new_price: int | None, budget: int | None
    ) -> int:
        # The most the amended order could need beyond what it will hold when the book applies
        # the replace, whatever fills arrive first: the filled quantity can only grow meanwhile
        # (anything else makes the book refuse the replace), and the need is linear in it.
        if new_qty <= hold.filled:
            return 0  # the book will refuse it
        if hold.side is not BUY:
            return max(0, (new_qty - before.quantity) * spec.base_per_lot)
        if hold.budgeted:
            return 0 if budget is None or before.budget is None else max(0, budget - before.budget)
        assert before.price is not None
        price = before.price if new_price is None else new_price
        if price == before.price:
            # The two holds differ by the added lots' notional whatever is filled, but their fees
            # round separately (each toward zero), so take that notional's own fee rounded up.
            added = price * (new_qty - before.quantity) * spec.quote_per_tick_lot
            return 0 if added <= 0 else added - (-added * hold.rate // RATE_SCALE)
        # Different prices: the difference changes by at least one unit per lot filled, so its
        # largest value is at one end of the possible range of fills.
        worst = 0
        for filled in {hold.filled, max(hold.filled, min(before.quantity, new_qty) - 1)}:
            need = limit_hold(spec, price, new_qty - filled, hold.rate)
            have = limit_hold(spec, before.price, before.quantity - filled, hold.rate)
            worst = max(worst, need - have)
        return worst

    def apply_replace_hold(self, replace: Replace, extra: int) -> None:
        """Reserve ``extra`` ahead of a replace and note the terms it gives the order (also how the
        journal replays it)."""
        account = self.accounts[str(replace.account)]
        hold = account.orders.get(replace.order_id)
        if hold is None:
            return
        quantity, price, stop_price, budget = hold.terms()
        after = Terms(
            quantity if replace.quantity is None else replace.quantity,
            price if replace.price is None or price is None else replace.price,
            stop_price if replace.stop_price is None else replace.stop_price,
            budget if replace.budget is None else replace.budget,
        )
        hold.extra += extra
        hold.pending.append(Amendment(extra, after, replace.client_order_id))
        account.holding(hold.asset).reserved += extra
        if replace.client_order_id is not None:
            account.client_ids[replace.client_order_id] = hold.order_id

    # -- PHASE 2: SETTLEMENT -------------------------------------------------------------------

    def settle(self, events: list[Event]) -> None:
        """Fold one book command's events into balances and holds."""
        for event in events:
            kind = type(event)
            if kind is Trade:
                self._settle_trade(event)  # type: ignore[arg-type]
            elif kind is Canceled or kind is Expired or kind is Rejected:
                self._close(str(event.order.account), event.order.order_id)  # type: ignore[union-attr]
            elif kind is Replaced:
                self._replaced(event)  # type: ignore[arg-type]
            elif kind is Restated:
                self._restated(event)  # type: ignore[arg-type]
            elif kind is CancelRejected and event.response_to == "replace":  # type: ignore[union-attr]
                self._replace_refused(str(event.account), event.order_id)  # type: ignore[union-attr]

    def _settle_trade(self, trade: Trade) -> None:
        maker, taker = trade.maker, trade.taker
        maker_hold = self.accounts[str(maker.account)].orders[maker.order_id]
        spec = self.specs[maker_hold.symbol]
        taker_hold = self.accounts[str(taker.account)].orders[taker.order_id]
        qty = trade.quantity
        notional = trade.price * qty * spec.quote_per_tick_lot
        base_amount = qty * spec.base_per_lot
        for hold, fee, leaves in (
            (maker_hold, trade.maker_fee, trade.maker_leaves),
            (taker_hold, trade.taker_fee, trade.taker_leaves),
        ):
            account = self.accounts[hold.account]
            quote = account.holding(spec.quote)
            base = account.holding(spec.base)
            hold.filled += qty
            if hold.side is BUY:
                cost = notional + fee
                quote.total -= cost
                if hold.budgeted:
                    new_base = hold.base - cost
                else:
                    assert hold.price is not None
                    new_base = limit_hold(spec, hold.price, leaves, hold.rate)
                quote.reserved -= hold.base - new_base
                hold.base = new_base
                base.total += base_amount
            else:
                base.total -= base_amount
                base.reserved -= base_amount
                hold.base -= base_amount
                quote.total += notional - fee
            if leaves == 0:
                self._close(hold.account, hold.order_id)
        self.accounts[self.fee_account].holding(spec.quote).total += trade.maker_fee + trade.taker_fee
        self.last_prices[spec.symbol] = trade.price

    def _close(self, account_name: str, order_id: int) -> None:
        # The order is done: release all it still holds and forget it (its client id is free).
        account = self.accounts[account_name]
        hold = account.orders.pop(order_id, None)
        if hold is None:
            return
        account.holding(hold.asset).reserved -= hold.held
        if hold.pending:  # replaces in flight, which the book will refuse: their new ids are free
            pending, hold.pending = hold.pending, deque()
            for amendment in pending:
                account.release_client_id(amendment.client_order_id, hold)
        symbols = account.done_symbols
        symbols[order_id] = hold.symbol
        if len(symbols) > DONE_CLIENT_IDS:
            del symbols[next(iter(symbols))]
        cid = hold.client_order_id
        if cid is not None:
            account.client_ids.pop(cid, None)
            done = account.done_client_ids
            done.pop(cid, None)
            done[cid] = order_id
            if len(done) > DONE_CLIENT_IDS:
                del done[next(iter(done))]

    def _exact_base(self, hold: Hold, leaves: int, budget: int | None) -> int:
        # The exact hold of an order with ``leaves`` open, as the book now has it.
        spec = self.specs[hold.symbol]
        if hold.side is not BUY:
            return leaves * spec.base_per_lot
        if hold.budgeted:
            return hold.base if budget is None else budget
        assert hold.price is not None
        return limit_hold(spec, hold.price, leaves, hold.rate)

    def _replaced(self, event: Replaced) -> None:
        order = event.order
        hold = self.hold(str(order.account), order.order_id)
        if hold is None:
            return
        # The book may have changed ``order`` again by the time this is settled (the event holds
        # the live object), so the new terms come from the replace risk passed on, which the book
        # applied exactly as noted (it refuses a replace whose expected terms do not match).
        if hold.pending:
            ahead, terms, cid = hold.pending.popleft()
        else:  # a replace risk did not reserve for
            ahead, terms = 0, Terms(event.quantity, order.price, order.stop_price, order.budget)
            cid = order.client_order_id
        hold.extra -= ahead
        hold.quantity = event.quantity
        hold.price = terms.price if hold.price is not None else None
        hold.stop_price = terms.stop_price
        if cid is not None and cid != hold.client_order_id:
            account = self.accounts[hold.account]
            previous = hold.client_order_id
            hold.client_order_id = cid
            account.client_ids[cid] = order.order_id
            account.release_client_id(previous, hold)
        new_base = self._exact_base(hold, event.leaves, terms.budget)
        self.accounts[hold.account].holding(hold.asset).reserved -= hold.base + ahead - new_base
        hold.base = new_base

    def _restated(self, event: Restated) -> None:
        # Self-trade prevention "decrement" cut the order without a trade.
        order = event.order
        hold = self.hold(str(order.account), order.order_id)
        if hold is None:
            return
        hold.quantity = event.quantity
        new_base = self._exact_base(hold, event.leaves, None)
        self.accounts[hold.account].holding(hold.asset).reserved -= hold.base - new_base
        hold.base = new_base

    def _replace_refused(self, account_name: str, order_id: int) -> None:
        hold = self.hold(account_name, order_id)
        if hold is None or not hold.pending:
            return
        amendment = hold.pending.popleft()
        hold.extra -= amendment.extra
        account = self.accounts[account_name]
        account.holding(hold.asset).reserved -= amendment.extra
        account.release_client_id(amendment.client_order_id, hold)

    # -- INTEGRITY -----------------------------------------------------------------------------

    def check_invariants(self) -> None:
        """Assert no balance is negative and every reservation is accounted for by a hold."""
        for account in self.accounts.values():
            held: dict[str, int] = {}
            for hold in account.orders.values():
                held[hold.asset] = held.get(hold.asset, 0) + hold.held
                assert hold.base >= 0 and hold.extra >= 0, f"negative hold on order {hold.order_id}"
            for asset, holding in account.holdings.items():
                assert holding.total >= 0, f"{account.name} {asset} total is negative"
                assert 0 <= holding.reserved <= holding.total or account.name == self.fee_account, (
                    f"{account.name} {asset}: reserved {holding.reserved} of total {holding.total}"
                )
                assert holding.reserved == held.get(asset, 0), f"{account.name} {asset}: reservation drift"

    def snapshot(self) -> dict[str, object]:
        """Return balances, holds, client ids and counters as plain data."""
        return {
            "order_ids": self.order_ids.last,
            "last_prices": dict(sorted(self.last_prices.items())),
            "accounts": [
                {
                    "name": a.name,
                    "holdings": {k: [h.total, h.reserved] for k, h in sorted(a.holdings.items())},
                    "orders": [_hold_to_data(h) for h in sorted(a.orders.values(), key=_hold_id)],
                    "done_client_ids": list(a.done_client_ids.items()),
                    "done_symbols": list(a.done_symbols.items()),
                }
                for a in self.accounts.values()
            ],
        }

    def restore(self, data: dict[str, object]) -> None:
        """Load :meth:`snapshot` data into this (freshly configured) risk engine."""
        self.order_ids.last = int(data["order_ids"])  # type: ignore[call-overload]
        self.last_prices = dict(data["last_prices"])  # type: ignore[call-overload]
        for row in data["accounts"]:  # type: ignore[attr-defined]
            account = self.accounts[row["name"]]
            account.holdings = {k: Holding(t, r) for k, (t, r) in row["holdings"].items()}
            account.orders = {}
            account.client_ids = {}
            for hrow in row["orders"]:
                hold = _hold_from_data(hrow)
                account.orders[hold.order_id] = hold
                account.claim_client_ids(hold)
            account.done_client_ids = dict(row["done_client_ids"])
            account.done_symbols = dict(row.get("done_symbols", ()))


def _hold_id(hold: Hold) -> int:
    return hold.order_id


#: The fields of a hold's state, in the order of the columns snapshots store.
HOLD_FIELDS = (
    "order_id",
    "account",
    "symbol",
    "side",
    "asset",
    "price",
    "stop_price",
    "quantity",
    "filled",
    "budgeted",
    "rate",
    "base",
    "extra",
    "client_order_id",
    "pending",
)
# :meth:`Risk.snapshot` rows are ``[side, *_PLAIN_HOLD_FIELDS, pending]`` (side and pending encoded)
_PLAIN_HOLD_FIELDS = tuple(name for name in HOLD_FIELDS if name not in ("side", "pending"))


def _hold_to_data(hold: Hold) -> list[object]:
    return [hold.side.value, *(getattr(hold, name) for name in _PLAIN_HOLD_FIELDS), list(hold.pending)]


def _hold_from_data(row: list[object]) -> Hold:
    hold = Hold.__new__(Hold)
    hold.side = Side(str(row[0]))
    for name, value in zip(_PLAIN_HOLD_FIELDS, row[1:-1], strict=True):
        setattr(hold, name, value)
    hold.pending = pending_from_data(row[-1])  # type: ignore[arg-type]
    return hold


def pending_from_data(rows: Iterable[Sequence[Any]]) -> deque[Amendment]:
    """Rebuild :attr:`Hold.pending` from its plain form (``[extra, terms, client_order_id]`` each)."""
    return deque(Amendment(extra, Terms(*terms), cid) for extra, terms, cid in rows)
