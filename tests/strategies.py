"""Shared hypothesis strategies for the book tests: a small symbol, and command plans.

Commands are drawn as *plans*: the fields of a command without its order id. A :class:`Script`
turns each plan into a real command when it runs, giving a new order a fresh id (or, now and
then, an id already used, to test duplicate ids) and pointing a cancel or replace at an id seen
so far, as its owner or as some other account. That keeps every drawn command meaningful however
hypothesis shrinks the sequence.

The market is deliberately cramped (three accounts, prices 95..105, small quantities) so orders
meet often: trades, self-trades, crossing replaces and stop cascades all happen within a few
steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from tradingapp.engine.commands import Cancel, CancelAll, Command, NewOrder, Replace
from tradingapp.engine.fees import FeeRates
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

ACCOUNTS = ("ann", "bob", "cyd")
LOW_PRICE, HIGH_PRICE = 95, 105
MAX_QUANTITY = 40  # lots; the property spec's max_quantity

accounts = st.sampled_from(ACCOUNTS)
sides = st.sampled_from([Side.BUY, Side.SELL])
prices = st.integers(LOW_PRICE, HIGH_PRICE)
quantities = st.one_of(st.integers(1, 6), st.integers(1, 12))
stp_modes = st.sampled_from(list(SelfTradePrevention))
fee_rates = st.one_of(
    st.none(),
    st.builds(
        FeeRates,
        maker=st.sampled_from([0, -150, -1, 100, 777]),
        taker=st.sampled_from([0, 1, 250, 3333, 5000]),
    ),
)
budgets = st.one_of(st.none(), st.integers(0, 60_000))


def property_spec() -> SymbolSpec:
    """Return the symbol the property tests trade: whole ticks and lots, 100 quote units a tick-lot.

    ``min_notional`` 96 tick-lots refuses one lot at 95; ``max_quantity`` refuses 41 lots.
    """
    return SymbolSpec.create(
        "ETH-USD", "ETH", "USD", "1", "1", max_quantity=str(MAX_QUANTITY), min_notional="96", quote_places=2
    )


# -- plans -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewPlan:
    """A new order; ``reuse`` picks an id already used (a duplicate), None takes a fresh one."""

    account: str
    side: Side
    order_type: OrderType
    quantity: object
    price: int | None
    stop_price: int | None
    post_only: bool
    stp: SelfTradePrevention
    fees: FeeRates | None
    budget: int | None
    reuse: int | None = None


@dataclass(frozen=True)
class CancelPlan:
    """Cancel the ``pick``-th id used so far, as its owner or as ``account``."""

    pick: int
    as_owner: bool
    account: str


@dataclass(frozen=True)
class ReplacePlan:
    """Replace the ``pick``-th id used so far; None fields keep their value."""

    pick: int
    as_owner: bool
    account: str
    quantity: int | None
    price: int | None
    stop_price: int | None


@dataclass(frozen=True)
class CancelAllPlan:
    """Cancel every open order of ``account``."""

    account: str


Plan = NewPlan | CancelPlan | ReplacePlan | CancelAllPlan


class Script:
    """Turn plans into commands, remembering which ids were used and by whom."""

    def __init__(self, first_id: int = 1) -> None:
        self.used: list[int] = []
        self.owner: dict[int, str] = {}
        self.next_id = first_id

    def command(self, plan: Plan) -> Command:
        """Return the command ``plan`` stands for now."""
        if isinstance(plan, NewPlan):
            if plan.reuse is not None and self.used:
                order_id = self.used[plan.reuse % len(self.used)]
            else:
                order_id = self.next_id
                self.next_id += 1
                self.used.append(order_id)
                self.owner[order_id] = plan.account
            return NewOrder(
                order_id,
                plan.account,
                plan.side,
                plan.order_type,
                plan.quantity,  # type: ignore[arg-type]
                price=plan.price,
                stop_price=plan.stop_price,
                post_only=plan.post_only,
                stp=plan.stp,
                fees=plan.fees,
                budget=plan.budget,
            )
        if isinstance(plan, CancelAllPlan):
            return CancelAll(plan.account)
        order_id = self.used[plan.pick % len(self.used)] if self.used else 10**9
        account = self.owner.get(order_id, plan.account) if plan.as_owner else plan.account
        if isinstance(plan, CancelPlan):
            return Cancel(order_id, account)
        return Replace(
            order_id, account, quantity=plan.quantity, price=plan.price, stop_price=plan.stop_price
        )


@st.composite
def new_order_plans(draw: st.DrawFn, order_types: st.SearchStrategy[OrderType] | None = None) -> NewPlan:
    """Draw a new order of any type, well formed except now and then."""
    order_type = draw(order_types if order_types is not None else st.sampled_from(list(OrderType)))
    side = draw(sides)
    quantity: object = draw(quantities)
    if order_type.needs_price:
        price = draw(prices)
    elif order_type in (OrderType.IOC, OrderType.FOK):
        price = draw(st.one_of(st.none(), prices))
    else:
        price = None
    stop_price = draw(prices) if order_type.is_conditional else None
    post_only = order_type is OrderType.LIMIT and draw(st.integers(0, 3)) == 3
    budget = draw(budgets) if side is Side.BUY and price is None else None
    reuse = draw(st.one_of(st.none(), st.integers(0, 50))) if draw(st.integers(0, 9)) == 9 else None
    # now and then one malformed field (the mutation shrinks away towards "none")
    mutation = draw(st.integers(0, 15))
    if mutation == 15:
        fault = draw(st.sampled_from(["price", "no_price", "stop", "no_stop", "post_only", "quantity"]))
        if fault == "price":
            price = HIGH_PRICE if price is None else draw(st.sampled_from([0, -1]))
        elif fault == "no_price":
            price = None
        elif fault == "stop":
            stop_price = draw(st.sampled_from([0, HIGH_PRICE]))
        elif fault == "no_stop":
            stop_price = None
        elif fault == "post_only":
            post_only = True
        elif fault == "quantity":
            quantity = draw(st.sampled_from([0, -3, True, 2.0, MAX_QUANTITY, MAX_QUANTITY + 1]))
    return NewPlan(
        account=draw(accounts),
        side=side,
        order_type=order_type,
        quantity=quantity,
        price=price,
        stop_price=stop_price,
        post_only=post_only,
        stp=draw(stp_modes),
        fees=draw(fee_rates),
        budget=budget,
        reuse=reuse,
    )


def limit_order_plans() -> st.SearchStrategy[NewPlan]:
    """Draw limit orders only (they build up the book for the other commands)."""
    return new_order_plans(st.just(OrderType.LIMIT))


def stop_order_plans() -> st.SearchStrategy[NewPlan]:
    """Draw the four conditional order types only."""
    return new_order_plans(st.sampled_from([t for t in OrderType if t.is_conditional]))


picks = st.integers(0, 200)
as_owner = st.integers(0, 5).map(lambda n: n != 5)  # mostly the owner; shrinks to the owner

cancel_plans = st.builds(CancelPlan, pick=picks, as_owner=as_owner, account=accounts)
replace_plans = st.builds(
    ReplacePlan,
    pick=picks,
    as_owner=as_owner,
    account=accounts,
    quantity=st.one_of(st.none(), st.integers(1, 10)),
    price=st.one_of(st.none(), prices),
    stop_price=st.one_of(st.none(), st.none(), prices),
)
cancel_all_plans = st.builds(CancelAllPlan, account=accounts)


def plans() -> st.SearchStrategy[Plan]:
    """Draw any plan: mostly new orders, then replaces, cancels and cancel-alls."""
    return st.one_of(
        new_order_plans(),
        limit_order_plans(),
        limit_order_plans(),
        stop_order_plans(),
        replace_plans,
        replace_plans,
        cancel_plans,
        cancel_all_plans,
    )


# -- numbers -----------------------------------------------------------------------------------

grid_steps = st.sampled_from(["0.01", "0.00001", "0.5", "0.25", "1", "5", "10", "0.00000001", "2.5"])
