"""A venue driven in-process exactly as the server drives it, for the risk tests; and its own checks.

``Harness`` runs each request through the two phases: ``Risk.admit`` (or ``admit_replace``), the
symbol's book, then ``Risk.settle`` of the book's events. After every command it checks the risk
and book invariants, that the per-asset totals never moved, and that what risk holds for each open
order is exactly what the book says the order can still spend, computed here with Decimal.

Expected amounts in the tests are computed independently of the engine with :class:`Decimal`
(:func:`units`, :func:`fee`), never with the engine's own helpers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal

from tradingapp.config import VenueConfig, load_config, parse_config
from tradingapp.engine.commands import Cancel, CancelAll, NewOrder, Replace
from tradingapp.engine.events import Canceled, Event, Expired, Rejected, Trade
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side
from tradingapp.engine.venue import Venue

D = Decimal
BUY, SELL = Side.BUY, Side.SELL
LIMIT, MARKET, IOC, FOK = OrderType.LIMIT, OrderType.MARKET, OrderType.IOC, OrderType.FOK
STOP_LOSS, STOP_LIMIT = OrderType.STOP_LOSS, OrderType.STOP_LIMIT
TAKE_PROFIT, TAKE_PROFIT_LIMIT = OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT
BTC = "BTC-USDT"
ETH = "ETH-USDT"


@dataclass(frozen=True)
class Request:
    """A validated new-order request as a session hands it to risk (ticks and lots)."""

    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    price: int | None = None
    stop_price: int | None = None
    post_only: bool = False
    stp: SelfTradePrevention = SelfTradePrevention.CANCEL_NEWEST
    client_order_id: str | None = None


@dataclass
class Result:
    """What one command did: the book command, what risk held or added, and the book's events."""

    command: object
    held: int
    events: list[Event] = field(default_factory=list)

    @property
    def order_id(self) -> int:
        return self.command.order_id  # type: ignore[attr-defined, no-any-return]

    def trades(self) -> list[Trade]:
        return [e for e in self.events if isinstance(e, Trade)]

    def ended(self) -> list[tuple[str, int, str]]:
        """``(kind, order id, reason)`` of every Rejected, Canceled and Expired event."""
        return [
            (type(e).__name__.lower(), e.order.order_id, e.reason.value)
            for e in self.events
            if isinstance(e, Rejected | Canceled | Expired)
        ]

    def expired_reason(self) -> str | None:
        reasons = [e.reason.value for e in self.events if isinstance(e, Expired | Rejected)]
        return reasons[-1] if reasons else None


# -- exact amounts, computed independently of the engine -------------------------------------------


def units(config: VenueConfig, asset: str, amount: object) -> int:
    """Return a decimal amount of ``asset`` as integer units (exact or AssertionError)."""
    scaled = D(str(amount)).scaleb(config.asset_places[asset])
    assert scaled == scaled.to_integral_value(), f"{amount} {asset} is not exact"
    return int(scaled)


def fee(notional_units: int, bps: object) -> int:
    """The fee on a notional in quote units at ``bps`` basis points, rounded toward zero."""
    exact = D(notional_units) * D(str(bps)) / D(10_000)
    return int(exact.to_integral_value(rounding=ROUND_DOWN))


def buffered(notional_units: int, pct: object) -> int:
    """``notional * (1 + pct %)`` rounded up to a whole unit (the stop-market buy buffer)."""
    exact = D(notional_units) * (1 + D(str(pct)) / 100)
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


# -- configurations --------------------------------------------------------------------------------


def demo() -> VenueConfig:
    """The embedded demo venue (alice/bob/carol 1 bps maker, 2 bps taker; mm -0.5/2)."""
    return load_config(None)


def custom_config(
    *, band: str = "0", max_open: int = 100, buffer: str = "10", eth_max: str = "10", extra: str = ""
) -> VenueConfig:
    """A small venue: BTC-USDT and ETH-USDT (USDT 7 places) and accounts with varied balances.

    alice, bob, carol: default fees (1 bps maker, 2 bps taker) and ample balances; ``poor``: 100.02
    USDT and 0.001 BTC; ``odd``: maker 3.33 bps (worse than its 0.77 bps taker); ``mm``: maker
    rebate -0.5 bps, taker 2 bps.
    """
    text = f"""
[[symbols]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
price_band_pct = "{band}"

[[symbols]]
symbol = "ETH-USDT"
base = "ETH"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.0001"
max_quantity = "{eth_max}"
price_band_pct = "{band}"

[fees]
maker_bps = "1"
taker_bps = "2"

[limits]
max_open_orders_per_account = {max_open}

[stops]
market_buffer_pct = "{buffer}"
{extra}
"""
    for name, balances, rates in (
        ("alice", ("1000000", "10", "100"), ""),
        ("bob", ("1000000", "10", "100"), ""),
        ("carol", ("1000000", "10", "100"), ""),
        ("poor", ("100.02", "0.001", "0"), ""),
        ("odd", ("1000000", "10", "100"), 'maker_bps = "3.33"\ntaker_bps = "0.77"\n'),
        ("mm", ("1000000", "10", "100"), 'maker_bps = "-0.5"\ntaker_bps = "2"\n'),
    ):
        usdt, btc, eth = balances
        text += (
            f'\n[[accounts]]\naccount = "{name}"\napi_key = "{name}-key"\n{rates}'
            f'[accounts.balances]\nUSDT = "{usdt}"\nBTC = "{btc}"\nETH = "{eth}"\n'
        )
    return parse_config(text, "risk-test.toml")


# -- the harness -----------------------------------------------------------------------------------


class Harness:
    """A Venue driven command by command, checked after each one."""

    def __init__(self, config: VenueConfig | None = None) -> None:
        self.config = demo() if config is None else config
        self.venue = Venue(self.config)
        self.risk = self.venue.risk
        self.books = self.venue.books
        self.initial_totals = self.risk.totals()
        self.clock = 1_700_000_000_000_000_000
        self.check()

    def restored(self) -> Harness:
        """A new harness whose venue is restored from this one's snapshot (through JSON text)."""
        twin = Harness(self.config)
        twin.venue.restore(json.loads(json.dumps(self.venue.snapshot())))
        twin.books = twin.venue.books
        twin.clock = self.clock
        twin.check()
        return twin

    # -- units ---------------------------------------------------------------------------------

    def px(self, symbol: str, price: str) -> int:
        """A price as ticks of ``symbol``."""
        return self.config.symbol(symbol).price.to_units(price)  # type: ignore[union-attr]

    def qty(self, symbol: str, quantity: str) -> int:
        """A quantity as lots of ``symbol``."""
        return self.config.symbol(symbol).quantity.to_units(quantity)  # type: ignore[union-attr]

    def units(self, asset: str, amount: object) -> int:
        return units(self.config, asset, amount)

    def notional(self, symbol: str, price: str, quantity: str) -> int:
        """``price * quantity`` in quote units, from the decimal strings."""
        spec = self.config.symbol(symbol)
        assert spec is not None
        return self.units(spec.quote, D(price) * D(quantity))

    # -- queries -------------------------------------------------------------------------------

    def balance(self, account: str, asset: str) -> tuple[int, int, int]:
        """``(total, available, reserved)`` of one asset of one account."""
        return self.risk.balances(account)[asset]

    def total(self, account: str, asset: str) -> int:
        return self.balance(account, asset)[0]

    def reserved(self, account: str, asset: str) -> int:
        return self.balance(account, asset)[2]

    def available(self, account: str, asset: str) -> int:
        return self.balance(account, asset)[1]

    # -- commands ------------------------------------------------------------------------------

    def _tick(self) -> int:
        self.clock += 1_000
        return self.clock

    def admit(
        self,
        account: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: int,
        price: int | None = None,
        **fields: object,
    ) -> Result:
        """Phase 1 only: admit and reserve (raises Rejection); run it with :meth:`run`."""
        request = Request(account, symbol, side, order_type, quantity, price, **fields)  # type: ignore[arg-type]
        command, held = self.risk.admit(request, self._tick())
        return Result(command, held)

    def run(self, result: Result, *, exact: bool = True, releases_only: bool = True) -> Result:
        """Phase 2: apply an admitted command to its book and settle the events.

        ``exact=False`` skips the per-order hold check, for a command run while a replace's extra
        is still reserved ahead (the book has not seen that replace yet). ``releases_only=False``
        skips the check that settling released and never reserved.
        """
        command = result.command
        result.events = self.books[command.symbol].apply(command)  # type: ignore[attr-defined, arg-type]
        reserved = self.reservations()
        self.risk.settle(result.events)
        # only admissions, which check what is available, may reserve more: settling what a book
        # did (fills, cancels, expiries, restatements, replaces) can only release
        for key, after in self.reservations().items():
            assert after <= reserved.get(key, 0) or not releases_only, (
                f"settlement raised the reservation of {key}"
            )
        self.check(exact=exact)
        return result

    def reservations(self) -> dict[tuple[str, str], int]:
        """``reserved`` of every account and asset."""
        return {
            (name, asset): holding.reserved
            for name, account in self.risk.accounts.items()
            for asset, holding in account.holdings.items()
        }

    def new(
        self,
        account: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: int,
        price: int | None = None,
        **fields: object,
    ) -> Result:
        """Admit, apply and settle one new order (Rejection propagates, nothing changed)."""
        return self.run(self.admit(account, symbol, side, order_type, quantity, price, **fields))

    def limit(
        self, account: str, symbol: str, side: Side, quantity: str, price: str, **fields: object
    ) -> Result:
        """A limit order from decimal strings."""
        return self.new(
            account, symbol, side, LIMIT, self.qty(symbol, quantity), self.px(symbol, price), **fields
        )

    def replace(self, account: str, order_id: int, symbol: str, **fields: object) -> Result:
        """Admit a replace (raises Rejection), apply and settle it; ``held`` is the extra reserved."""
        command, extra = self.risk.admit_replace(account, Replace(order_id, account, symbol=symbol, **fields))  # type: ignore[arg-type]
        return self.run(Result(command, extra))

    def cancel(self, account: str, order_id: int, symbol: str) -> Result:
        return self.run(Result(Cancel(order_id, account, timestamp=self._tick(), symbol=symbol), 0))

    def cancel_all(self, account: str, symbol: str) -> Result:
        return self.run(Result(CancelAll(account, timestamp=self._tick(), symbol=symbol), 0))

    # -- checks --------------------------------------------------------------------------------

    def check(self, *, exact: bool = True) -> None:
        """Every invariant the docs promise, after a command has been fully settled."""
        risk = self.risk
        risk.check_invariants()
        for book in self.books.values():
            book.check_invariants()
        assert self.initial_totals == risk.totals(), "an asset's total changed"
        for account in risk.accounts:
            for asset, (total, available, reserved) in risk.balances(account).items():
                assert total >= 0 and reserved >= 0 and available >= 0, (account, asset)
        if exact:
            check_holds_match_books(self.venue)


def check_holds_match_books(venue: Venue) -> None:
    """Assert risk's open orders are the books' open orders and each hold is exactly what it may spend."""
    risk = venue.risk
    in_books = {}
    for symbol, book in venue.books.items():
        for account in risk.accounts:
            for order in book.open_orders(account):
                in_books[order.order_id] = (symbol, order)
    in_risk = {h.order_id: h for a in risk.accounts.values() for h in a.orders.values()}
    assert sorted(in_books) == sorted(in_risk), "risk and the books disagree on which orders are open"
    for order_id, (symbol, order) in in_books.items():
        hold = in_risk[order_id]
        spec = venue.config.symbol(symbol)
        assert spec is not None
        assert (str(order.account), symbol) == (hold.account, hold.symbol)
        assert not hold.pending and hold.extra == 0, f"order {order_id}: replace extra left behind"
        places = venue.config.asset_places
        if order.side is SELL:
            expected = int((D(order.leaves) * spec.quantity.step).scaleb(places[spec.base]))
        elif order.price is None:
            expected = order.budget
        else:
            rates = order.fees
            worst = max(rates.maker, rates.taker, 0)
            notional = int(
                (D(order.price) * spec.price.step * D(order.leaves) * spec.quantity.step).scaleb(
                    places[spec.quote]
                )
            )
            expected = notional + fee(notional, D(worst) / 100)
        assert expected == hold.base, f"order {order_id}: hold {hold.base}, expected {expected}"


# -- the harness's own tests -----------------------------------------------------------------------


def test_demo_balances_are_the_configured_ones():
    h = Harness()
    assert (units(h.config, "USDT", "10000000"), units(h.config, "USDT", "10000000"), 0) == h.balance(
        "alice", "USDT"
    )
    assert (10_000_000, 10_000_000, 0) == h.balance("alice", "BTC")  # 100 BTC at 5 places
    assert (0, 0, 0) == h.balance("fees", "USDT")
    assert 10**7 == units(h.config, "USDT", 1)


def test_custom_config_has_the_documented_accounts():
    h = Harness(custom_config())
    assert 1_000_200_000 == h.total("poor", "USDT")
    assert (333, 77) == (h.risk.accounts["odd"].fees.maker, h.risk.accounts["odd"].fees.taker)
    assert (-50, 200) == (h.risk.accounts["mm"].fees.maker, h.risk.accounts["mm"].fees.taker)
    assert 1 == h.config.symbol(BTC).quote_per_tick_lot  # type: ignore[union-attr]


def test_a_new_command_gets_the_next_order_id():
    h = Harness()
    first = h.limit("alice", BTC, BUY, "0.001", "100")
    second = h.limit("alice", ETH, SELL, "0.001", "100")
    assert (1, 2) == (first.order_id, second.order_id)
    assert isinstance(first.command, NewOrder)
