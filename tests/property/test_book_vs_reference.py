"""Differential test: the real OrderBook against the naive ReferenceBook on random command streams.

After every command both books must have emitted the same events (trades with ids, prices,
quantities, counterparties and fees; per-order outcomes with reasons and quantities; BBO and depth
updates with their sequence numbers), and must agree on BBO, full depth, every order's state and
each account's open orders. The real book's own invariants are checked after every step too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from tests.reference_book import ReferenceBook, settle_reasons, view_events, view_order
from tests.strategies import (
    ACCOUNTS,
    Plan,
    Script,
    cancel_all_plans,
    cancel_plans,
    limit_order_plans,
    new_order_plans,
    property_spec,
    replace_plans,
    stop_order_plans,
)
from tradingapp.engine.book import OrderBook
from tradingapp.engine.sequence import IdSequence

LABELLED = {"rejected": 7, "expired": 7, "cancel_rejected": 2, "replaced": 7}


class BookAgainstReference(RuleBasedStateMachine):
    """Feed the same commands to both books and compare everything observable."""

    def __init__(self) -> None:
        super().__init__()
        spec = property_spec()
        self.book = OrderBook(spec, IdSequence())
        self.reference = ReferenceBook(spec)
        self.script = Script()

    def _run(self, plan: Plan) -> None:
        command = self.script.command(plan)
        expected = self.reference.apply(command)
        actual = view_events(self.book.apply(command))
        self.book.check_invariants()
        assert settle_reasons(expected, actual) == actual, f"events differ for {command!r}"
        for view in actual:  # label what happened, for --hypothesis-show-statistics
            event(str(view[0]) if view[0] not in LABELLED else f"{view[0]}: {view[LABELLED[view[0]]]}")

    @rule(plan=new_order_plans())
    def new_order(self, plan: Plan) -> None:
        self._run(plan)

    @rule(plan=limit_order_plans())
    def new_limit_order(self, plan: Plan) -> None:
        self._run(plan)

    @rule(plan=stop_order_plans())
    def new_stop_order(self, plan: Plan) -> None:
        self._run(plan)

    @rule(plan=replace_plans)
    def replace(self, plan: Plan) -> None:
        self._run(plan)

    @rule(plan=cancel_plans)
    def cancel(self, plan: Plan) -> None:
        self._run(plan)

    @rule(plan=cancel_all_plans)
    def cancel_all(self, plan: Plan) -> None:
        self._run(plan)

    @invariant()
    def same_market_data(self) -> None:
        assert self.reference.bbo() == self.book.bbo()
        bids, asks = self.reference.depth()
        assert (bids, asks) == self.book.depth(len(bids) + len(asks) + 1)

    @invariant()
    def same_orders(self) -> None:
        for order_id in self.script.used:
            expected = view_order(self.reference.order(order_id))
            assert expected == view_order(self.book.order(order_id)), f"order {order_id} differs"
        for account in ACCOUNTS:
            expected_ids = [o.order_id for o in self.reference.open_orders(account)]
            assert expected_ids == [o.order_id for o in self.book.open_orders(account)]
        assert self.reference.open_count() == len(self.book)


BookAgainstReference.TestCase.settings = settings(
    max_examples=int(os.environ.get("BOOK_PROPERTY_EXAMPLES", "150")),  # raise it for a long hunt
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_book_matches_reference = BookAgainstReference.TestCase
