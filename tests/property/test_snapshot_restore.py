"""Snapshot and restore on random books: same digest, same invariants, same future."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reference_book import view_events
from tests.strategies import ACCOUNTS, Script, plans, property_spec
from tradingapp.engine.book import OrderBook
from tradingapp.engine.sequence import IdSequence


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(before=st.lists(plans(), min_size=10, max_size=50), after=st.lists(plans(), min_size=5, max_size=30))
def test_restored_book_has_same_digest_and_same_future(before, after) -> None:
    """A book rebuilt from its snapshot answers every further command exactly as the original."""
    spec = property_spec()
    original = OrderBook(spec, IdSequence())
    script = Script()
    for plan in before:
        original.apply(script.command(plan))

    data = json.loads(json.dumps(original.snapshot()))  # plain data survives a text round trip
    restored = OrderBook.restore(spec, data, IdSequence(original.trade_ids.last))

    restored.check_invariants()
    assert original.state_digest() == restored.state_digest()
    assert original.bbo() == restored.bbo()
    assert original.depth(100) == restored.depth(100)
    for plan in after:
        command = script.command(plan)
        expected = view_events(original.apply(command))
        actual = view_events(restored.apply(command))
        restored.check_invariants()
        assert expected == actual, f"events differ for {command!r}"
        assert original.state_digest() == restored.state_digest()
    for account in ACCOUNTS:
        expected_ids = [o.order_id for o in original.open_orders(account)]
        assert expected_ids == [o.order_id for o in restored.open_orders(account)]
