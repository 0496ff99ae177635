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
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from tests.reference_book import view_events
from tests.unit.test_risk_support import Harness, Result
from tradingapp.config import VenueConfig, parse_config
from tradingapp.engine.commands import Replace
from tradingapp.engine.events import Restated
from tradingapp.engine.risk import Rejection
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

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


@dataclass(frozen=True)
class NewStep:
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
        restated = False
        if ahead is not None:
            h.run(ahead, exact=False)
            if any(t.maker.order_id == order_id for t in ahead.trades()):
                note("the order ahead filled the replaced order")
            # a stop the order ahead triggers may restate the replaced order (self-trade
            # "decrement"), which the replace's extra does not cover: a known gap, shown by
            # test_a_restatement_ahead_of_a_replace_does_not_let_the_reservation_grow_unchecked
            restated = any(isinstance(e, Restated) and e.order.order_id == order_id for e in ahead.events)
        return h.run(Result(command, extra), releases_only=not restated)


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
