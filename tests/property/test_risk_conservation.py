"""Conservation under random order flow: nothing is created, destroyed, overdrawn or left reserved.

Random commands of every kind (all order types, post-only, every STP mode, replaces, cancels and
cancel-alls, some aimed at other accounts' orders) run through risk and two books that share the
quote asset, over accounts with modest balances so that ``insufficient_funds`` and the other
refusals happen often. After every step the harness checks ``Risk.check_invariants()``, every
book's ``check_invariants()``, that each asset's total is still the initial one, and that every
open order holds exactly what it can still spend, that settling a book's answer only ever
releases, and that every refusal changes nothing. Some replaces are admitted behind another
account's order that the book runs first, as the server's pipeline allows, so that fills arrive
between risk's admission of the replace and the book's answer.

A second test keeps requests in flight the way the server does: risk admits a burst of requests
(replaces of orders that already have a replace in flight, self-trading orders of an order's own
account ahead of its replace, cancels, new orders) before the books run them, and the books' runs
and risk's settlements then interleave in a drawn order. The same invariants hold after every
single step, and a replay of the journal records the flow wrote ends in the same state.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.reference_book import view_events
from tests.unit.test_risk_support import Harness, Request, Result
from tradingapp.config import VenueConfig, parse_config
from tradingapp.engine.commands import Cancel, Command, Replace
from tradingapp.engine.events import Restated
from tradingapp.engine.risk import Hold, Rejection
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side
from tradingapp.engine.venue import Venue
from tradingapp.persistence import records as rec
from tradingapp.persistence.replay import Replayer

ACCOUNTS = ("a1", "a2", "a3", "a4")
# symbol: (lowest price, highest price) in ticks, largest quantity drawn in lots
MARKETS = {"AAA-USD": (994, 1006, 600), "BBB-USD": (97, 103, 30)}
CLIENT_IDS = (None, None, None, "c1", "c2", "c3")

PROPERTY_TOML = """
[[symbols]]
symbol = "AAA-USD"
base = "AAA"
quote = "USD"
tick_size = "0.01"
lot_size = "0.001"
max_quantity = "0.5"
price_band_pct = "1"

[[symbols]]
symbol = "BBB-USD"
base = "BBB"
quote = "USD"
tick_size = "0.05"
lot_size = "0.1"
min_notional = "1"
price_band_pct = "0"

[fees]
maker_bps = "1"
taker_bps = "2.5"

[limits]
max_open_orders_per_account = 6

[stops]
market_buffer_pct = "5"

[[accounts]]
account = "a1"
api_key = "k1"
[accounts.balances]
USD = "40"
AAA = "1.5"
BBB = "12"

[[accounts]]
account = "a2"
api_key = "k2"
maker_bps = "-1"
taker_bps = "3"
[accounts.balances]
USD = "60.00001"
AAA = "2"
BBB = "6"

[[accounts]]
account = "a3"
api_key = "k3"
maker_bps = "3.33"
taker_bps = "1"
[accounts.balances]
USD = "25"
AAA = "0.7"
BBB = "20"

[[accounts]]
account = "a4"
api_key = "k4"
[accounts.balances]
USD = "80"
"""


def property_config() -> VenueConfig:
    """Two symbols sharing USD (5 places), a maker rebate, and balances that run out quickly."""
    return parse_config(PROPERTY_TOML, "risk-property.toml")


# -- steps ---------------------------------------------------------------------------------------


#: A new order step is a plain new-order request.
NewStep = Request


@dataclass(frozen=True)
class ReplaceStep:
    pick: int
    open_only: bool
    as_owner: bool
    account: str
    quantity: int | None
    price: int | None
    stop_price: int | None
    client_order_id: str | None
    ahead: NewStep | None  # an order the book runs between risk's admission of the replace and it


@dataclass(frozen=True)
class CancelStep:
    pick: int
    open_only: bool
    as_owner: bool
    account: str


@dataclass(frozen=True)
class CancelAllStep:
    account: str
    symbol: str


accounts = st.sampled_from(ACCOUNTS)
symbols = st.sampled_from(sorted(MARKETS))
as_owner = st.integers(0, 7).map(lambda n: n != 7)
open_only = st.integers(0, 4).map(lambda n: n != 4)  # mostly an open order; now and then any


@st.composite
def new_steps(draw: st.DrawFn, order_types: st.SearchStrategy[OrderType] | None = None) -> NewStep:
    symbol = draw(symbols)
    low, high, most = MARKETS[symbol]
    order_type = draw(order_types if order_types is not None else st.sampled_from(list(OrderType)))
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    middle = (low + high) // 2
    # limit prices lean towards the other side so that orders cross often
    prices = st.integers(middle - 2, high) if side is Side.BUY else st.integers(low, middle + 2)
    if order_type.needs_price:
        price = draw(prices)
    elif order_type in (OrderType.IOC, OrderType.FOK):
        price = draw(st.one_of(st.none(), prices))
    else:
        price = None
    return NewStep(
        account=draw(accounts),
        symbol=symbol,
        side=side,
        order_type=order_type,
        quantity=draw(st.one_of(st.integers(1, most // 4), st.integers(1, most))),
        price=price,
        stop_price=draw(st.integers(low, high)) if order_type.is_conditional else None,
        post_only=order_type is OrderType.LIMIT and draw(st.integers(0, 4)) == 0,
        stp=draw(st.sampled_from(list(SelfTradePrevention))),
        client_order_id=draw(st.sampled_from(CLIENT_IDS)),
    )


@st.composite
def replace_steps(draw: st.DrawFn) -> ReplaceStep:
    low, high, most = MARKETS[draw(symbols)]  # a price range; the book refuses what does not fit
    return ReplaceStep(
        pick=draw(st.integers(0, 100)),
        open_only=draw(open_only),
        as_owner=draw(as_owner),
        account=draw(accounts),
        quantity=draw(st.one_of(st.none(), st.integers(1, most))),
        price=draw(st.one_of(st.none(), st.integers(low, high))),
        stop_price=draw(st.one_of(st.none(), st.none(), st.integers(low, high))),
        client_order_id=draw(st.sampled_from(CLIENT_IDS)),
        ahead=draw(st.one_of(st.none(), new_steps())),
    )


def steps() -> st.SearchStrategy[object]:
    """Mostly new orders (limit ones above all, to build the books), then replaces and cancels."""
    any_order = new_steps()
    limit = new_steps(st.just(OrderType.LIMIT))
    return st.one_of(
        any_order,
        any_order,
        any_order,
        limit,
        limit,
        limit,
        limit,
        new_steps(st.sampled_from([OrderType.MARKET, OrderType.IOC, OrderType.FOK])),
        replace_steps(),
        replace_steps(),
        st.builds(
            CancelStep, pick=st.integers(0, 100), open_only=open_only, as_owner=as_owner, account=accounts
        ),
        st.builds(CancelAllStep, account=accounts, symbol=symbols),
    )


def note(label: str) -> None:
    """Count ``label`` in hypothesis' statistics (when running under hypothesis)."""
    if currently_in_test_context():
        event(label)


def essential(snapshot: dict) -> dict:
    """A risk snapshot without empty holdings: a refusal may create one (a known bug, shown by
    test_a_refused_order_changes_no_state_even_for_an_asset_the_account_never_held)."""
    accounts = [
        {**row, "holdings": {k: v for k, v in row["holdings"].items() if v != [0, 0]}}
        for row in snapshot["accounts"]
    ]
    return {**snapshot, "accounts": accounts}


class Flow:
    """Runs steps on a harness; remembers every admitted order as (id, account, symbol)."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.orders: list[tuple[int, str, str]] = []

    def run(self, step: object) -> tuple[object, ...]:
        """Run one step fully (admit, book, settle; then every check); return what it did."""
        h = self.h
        before = essential(h.risk.snapshot())
        try:
            if isinstance(step, NewStep):
                result = h.run(self.admit(step, step.symbol, step.side))
            elif isinstance(step, CancelAllStep):
                result = h.cancel_all(step.account, step.symbol)
            else:
                assert isinstance(step, CancelStep | ReplaceStep)
                choices = self.orders
                if step.open_only:
                    holds = [x for a in ACCOUNTS for x in h.risk.open_holds(a)]
                    choices = [(x.order_id, x.account, x.symbol) for x in holds] or choices
                if not choices:
                    return ("nothing",)
                order_id, owner, symbol = choices[step.pick % len(choices)]
                account = owner if step.as_owner else step.account
                if isinstance(step, CancelStep):
                    result = h.cancel(account, order_id, symbol)
                else:
                    result = self.replace(step, account, owner, order_id, symbol, before)
        except Rejection as refused:
            note(f"refused: {refused.reason.value}")
            assert before == essential(h.risk.snapshot()), "a refusal changed risk state"
            h.check()
            return ("refused", refused.reason.value, refused.text)
        for view in view_events(result.events):
            if view[0] == "cancel_rejected":
                note(f"cancel_rejected: {view[2]}")
            elif view[0] in ("rejected", "expired", "restated"):
                note(f"{view[0]}: {view[-1]}")
            elif view[0] in ("trade", "triggered", "replaced"):
                note(view[0])
        return (result.held, tuple(view_events(result.events)))

    def admit(self, step: NewStep, symbol: str, side: Side, price: int | None = None) -> Result:
        fields = dict(vars(step))
        for name in ("account", "symbol", "side", "order_type", "quantity", "price"):
            del fields[name]
        if price is None:
            price = step.price
        admitted = self.h.admit(step.account, symbol, side, step.order_type, step.quantity, price, **fields)
        self.orders.append((admitted.order_id, step.account, symbol))
        return admitted

    def replace(
        self, step: ReplaceStep, account: str, owner: str, order_id: int, symbol: str, before: dict
    ) -> Result:
        # With ``step.ahead``, risk admits an order of another account first (on the other side,
        # at the replaced order's price when it has one, so that it tends to fill it), then the
        # replace; the book runs that order before the replace, so the replace's extra must cover
        # whatever it filled (docs/risk.md).
        h = self.h
        hold = h.risk.hold(owner, order_id)
        ahead = None
        order = step.ahead
        if order is not None and hold is not None:
            side = Side.SELL if hold.side is Side.BUY else Side.BUY
            price = hold.price if order.order_type.needs_price or order.price is not None else None
            other = order.account if order.account != owner else ACCOUNTS[ACCOUNTS.index(owner) - 1]
            try:
                ahead = self.admit(replace_account(order, other), symbol, side, price)
            except Rejection:
                ahead = None
        command = Replace(
            order_id,
            account,
            quantity=step.quantity,
            price=step.price,
            stop_price=step.stop_price,
            client_order_id=step.client_order_id,
            symbol=symbol,
        )
        admitted = essential(h.risk.snapshot())
        try:
            command, extra = h.risk.admit_replace(account, command)
        except Rejection:
            assert admitted == essential(h.risk.snapshot()), "a refused replace changed risk state"
            if ahead is not None:
                h.run(ahead)
                before.clear()  # what the caller compares: the state now, the refusal being checked
                before.update(essential(h.risk.snapshot()))
            raise
        if ahead is not None:
            h.run(ahead, exact=False)
            if any(t.maker.order_id == order_id for t in ahead.trades()):
                note("the order ahead filled the replaced order")
            if any(isinstance(e, Restated) and e.order.order_id == order_id for e in ahead.events):
                note("the order ahead restated the replaced order")
        return h.run(Result(command, extra))


def replace_account(step: NewStep, account: str) -> NewStep:
    """``step`` as an order of ``account``."""
    return NewStep(**{**vars(step), "account": account})


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(steps(), min_size=25, max_size=70))
def test_random_flow_conserves_every_asset_and_keeps_every_reservation_exact(flow_steps):
    harness = Harness(property_config())  # checks everything after each command
    initial = harness.risk.totals()
    assert {"USD", "AAA", "BBB"} == set(initial)
    flow = Flow(harness)
    for step in flow_steps:
        flow.run(step)
        assert initial == harness.risk.totals()
    harness.check()
    for symbol in MARKETS:  # ending every account's orders returns every hold
        for account in ACCOUNTS:
            harness.cancel_all(account, symbol)
    for account in ACCOUNTS:
        for asset, (total, available, reserved) in harness.risk.balances(account).items():
            assert (total, 0) == (available, reserved), f"{account} {asset} still reserved"
    assert initial == harness.risk.totals()
    assert harness.risk.balances("fees")["USD"][0] >= 0


# -- requests in flight ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaceStep:
    """Requests aimed at one open order that risk admits before its book runs any of them: maybe an
    order of the same account on the other side at its price (a self-trade, often ``decrement``),
    then one or more replaces of it. A replace quantity of 0 stands for the order's quantity as
    risk sees it, which a decrement ahead would restore."""

    pick: int
    cross: tuple[int, SelfTradePrevention] | None
    replaces: tuple[ReplaceStep, ...]


@dataclass(frozen=True)
class Burst:
    """Requests risk admits one after another, and the drawn order of every step that follows."""

    requests: tuple[object, ...]
    schedule: tuple[int, ...]


@st.composite
def flight_replaces(draw: st.DrawFn) -> ReplaceStep:
    low, high, most = MARKETS[draw(symbols)]
    return ReplaceStep(
        pick=draw(st.integers(0, 100)),
        open_only=True,
        as_owner=draw(as_owner),
        account=draw(accounts),
        quantity=draw(st.one_of(st.none(), st.just(0), st.integers(1, most))),
        price=draw(st.one_of(st.none(), st.integers(low, high))),
        stop_price=draw(st.one_of(st.none(), st.none(), st.integers(low, high))),
        client_order_id=draw(st.sampled_from(CLIENT_IDS)),
        ahead=None,
    )


def bursts() -> st.SearchStrategy[Burst]:
    limit = new_steps(st.just(OrderType.LIMIT))
    stp = st.sampled_from([SelfTradePrevention.DECREMENT, *SelfTradePrevention])
    race = st.builds(
        RaceStep,
        pick=st.integers(0, 100),
        cross=st.one_of(st.none(), st.tuples(st.integers(1, 60), stp)),
        replaces=st.lists(flight_replaces(), min_size=1, max_size=3).map(tuple),
    )
    cancel = st.builds(
        CancelStep, pick=st.integers(0, 100), open_only=st.just(True), as_owner=as_owner, account=accounts
    )
    request = st.one_of(limit, limit, new_steps(), flight_replaces(), race, race, cancel)
    return st.builds(
        Burst,
        requests=st.lists(request, min_size=1, max_size=6).map(tuple),
        schedule=st.lists(st.integers(0, 255), max_size=40).map(tuple),
    )


class Pipeline:
    """Risk admits; each symbol's book runs admitted commands in order; risk settles the books'
    answers in order, per symbol. Every step is journaled as the server journals it."""

    def __init__(self, harness: Harness) -> None:
        self.h = harness
        self.to_book: dict[str, deque[Command]] = {symbol: deque() for symbol in MARKETS}
        self.to_settle: dict[str, deque[list]] = {symbol: deque() for symbol in MARKETS}
        self.journal: list[tuple[int, bytes]] = []

    def run(self, burst: Burst) -> None:
        """Admit the burst's requests and drain the queues, interleaved as the schedule says."""
        todo = deque(burst.requests)
        schedule = iter(burst.schedule)
        while True:
            actions = [("admit", "")] if todo else []
            actions += [("book", symbol) for symbol, queue in self.to_book.items() if queue]
            actions += [("settle", symbol) for symbol, queue in self.to_settle.items() if queue]
            if not actions:
                break
            kind, symbol = actions[next(schedule, 0) % len(actions)]
            if kind == "admit":
                self.request(todo.popleft())
            elif kind == "book":
                self.book(symbol)
            else:
                self.settle(symbol)
        self.h.check()  # nothing in flight: every hold exact again, no replace extra left

    def request(self, request: object) -> None:
        h = self.h
        if isinstance(request, NewStep):
            self.admit(lambda: self.new(request.account, request.symbol, request))
            return
        holds = [x for a in ACCOUNTS for x in h.risk.open_holds(a)]
        if not holds:
            return
        assert isinstance(request, CancelStep | ReplaceStep | RaceStep)
        hold = holds[request.pick % len(holds)]
        if isinstance(request, CancelStep):
            account = hold.account if request.as_owner else request.account
            self.admit(lambda: self.cancel(account, hold))
        elif isinstance(request, ReplaceStep):
            self.admit(lambda: self.replace(request, hold))
        else:
            if request.cross is not None and hold.price is not None:
                quantity, stp = request.cross
                other = Side.SELL if hold.side is Side.BUY else Side.BUY
                cross = NewStep(
                    hold.account,
                    hold.symbol,
                    other,
                    OrderType.LIMIT,
                    quantity,
                    hold.price,
                    None,
                    False,
                    stp,
                    None,
                )
                self.admit(lambda: self.new(hold.account, hold.symbol, cross))
            for replace in request.replaces:
                self.admit(partial(self.replace, replace, hold))

    def admit(self, admission: Callable[[], tuple[Command, bytes]]) -> None:
        risk = self.h.risk
        before = essential(risk.snapshot())
        try:
            command, record = admission()
        except Rejection as refused:
            note(f"in flight, refused: {refused.reason.value}")
            assert before == essential(risk.snapshot()), "a refusal changed risk state"
            return
        self.journal.append((command.timestamp, record))
        self.to_book[command.symbol].append(command)
        self.check()

    def new(self, account: str, symbol: str, step: NewStep) -> tuple[Command, bytes]:
        fields = {
            k: v for k, v in vars(step).items() if k in ("stop_price", "post_only", "stp", "client_order_id")
        }
        new = self.h.admit(account, symbol, step.side, step.order_type, step.quantity, step.price, **fields)
        return new.command, rec.admit_record(new.command, new.held)  # type: ignore[arg-type]

    def cancel(self, account: str, hold: Hold) -> tuple[Command, bytes]:
        cancel = Cancel(hold.order_id, account, timestamp=self.h._tick(), symbol=hold.symbol)
        return cancel, rec.cancel_record(cancel)

    def replace(self, step: ReplaceStep, hold: Hold) -> tuple[Command, bytes]:
        account = hold.account if step.as_owner else step.account
        if hold.pending:
            note("in flight: a replace behind another replace")
        command, extra = self.h.risk.admit_replace(
            account,
            Replace(
                hold.order_id,
                account,
                quantity=hold.terms().quantity if step.quantity == 0 else step.quantity,
                price=step.price,
                stop_price=step.stop_price,
                client_order_id=step.client_order_id,
                timestamp=self.h._tick(),
                symbol=hold.symbol,
            ),
        )
        return command, rec.replace_record(command, extra)

    def book(self, symbol: str) -> None:
        events = self.h.books[symbol].apply(self.to_book[symbol].popleft())
        for view in view_events(events):
            if view[0] == "cancel_rejected" and view[2] == "order_changed":
                note("in flight: a replace refused as order_changed")
            elif view[0] == "restated":
                note("in flight: restated")
        self.to_settle[symbol].append(events)
        self.journal.append((0, rec.step_record(rec.BOOK_STEP, symbol)))
        self.check()

    def settle(self, symbol: str) -> None:
        h = self.h
        reserved = h.reservations()
        h.risk.settle(self.to_settle[symbol].popleft())
        for key, after in h.reservations().items():
            assert after <= reserved.get(key, 0), f"settlement raised the reservation of {key}"
        self.journal.append((0, rec.step_record(rec.SETTLE, symbol)))
        self.check()

    def check(self) -> None:
        """What holds at every step, with work in flight: no balance negative, reserved within
        total and equal to the open orders' holds, and every asset's total unchanged."""
        h = self.h
        h.risk.check_invariants()
        for book in h.books.values():
            book.check_invariants()
        assert h.initial_totals == h.risk.totals(), "an asset's total changed"

    def replayed(self) -> Venue:
        """A fresh venue that replayed this flow's journal records."""
        replayer = Replayer(Venue(self.h.config))
        for timestamp, payload in self.journal:
            replayer.apply(timestamp, rec.unpack(payload))
        assert replayer.idle
        return replayer.venue


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(bursts(), min_size=4, max_size=20))
def test_requests_in_flight_never_overdraw_and_replay_to_the_same_state(flow_bursts):
    harness = Harness(property_config())
    pipeline = Pipeline(harness)
    for burst in flow_bursts:
        pipeline.run(burst)
    assert harness.venue.state_digest() == pipeline.replayed().state_digest()
    for symbol in MARKETS:
        for account in ACCOUNTS:
            harness.cancel_all(account, symbol)
    for account in ACCOUNTS:
        for asset, (total, available, reserved) in harness.risk.balances(account).items():
            assert (total, 0) == (available, reserved), f"{account} {asset} still reserved"
