"""Venue and risk snapshots after random flow: same digest, same risk state, same future."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.property.test_risk_conservation import Flow, property_config, steps
from tests.unit.test_risk_support import Harness
from tradingapp.engine.risk import Risk


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(before=st.lists(steps(), min_size=10, max_size=50), after=st.lists(steps(), min_size=5, max_size=30))
def test_a_restored_venue_continues_exactly_like_the_original(before, after):
    original = Flow(Harness(property_config()))
    for step in before:
        original.run(step)

    data = json.loads(json.dumps(original.h.risk.snapshot()))
    fresh = Risk(original.h.config)
    fresh.restore(data)
    fresh.check_invariants()
    assert original.h.risk.snapshot() == fresh.snapshot()
    assert original.h.risk.totals() == fresh.totals()

    twin = Flow(original.h.restored())
    twin.orders = list(original.orders)
    assert original.h.venue.state_digest() == twin.h.venue.state_digest()
    for step in after:
        assert original.run(step) == twin.run(step), f"the restored venue answered {step} differently"
        assert original.h.venue.state_digest() == twin.h.venue.state_digest()
    assert original.h.risk.snapshot() == twin.h.risk.snapshot()
