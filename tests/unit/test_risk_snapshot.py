"""Risk and Venue snapshots: a restored copy has the same state and behaves the same from then on."""

from __future__ import annotations

import json

import pytest

from tests.reference_book import view_events
from tests.unit.test_risk_support import (
    BTC,
    BUY,
    ETH,
    IOC,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_LOSS,
    TAKE_PROFIT,
    Harness,
    Request,
    custom_config,
)
from tradingapp.engine.commands import NewOrder, Replace
from tradingapp.engine.risk import Rejection, Risk
from tradingapp.engine.types import SelfTradePrevention


def busy() -> tuple[Harness, dict[str, int]]:
    """A venue with fills, fees, rebates, stops, replaced and restated orders, live and done client ids."""
    h = Harness(custom_config(band="20"))
    ids: dict[str, int] = {}
    h.limit("bob", BTC, SELL, "0.002", "30000", client_order_id="b-done")
    ids["alice_bid"] = h.limit(
        "alice", BTC, BUY, "0.003", "30000.01", client_order_id="a1"
    ).order_id  # partly
    h.limit("mm", BTC, SELL, "0.004", "30100.07")
    h.new("odd", BTC, BUY, IOC, h.qty(BTC, "0.001"), h.px(BTC, "30100.07"))  # odd takes from mm (rebate)
    h.limit("odd", BTC, SELL, "0.002", "30300")
    ids["stop"] = h.new(
        "carol", BTC, BUY, STOP_LOSS, h.qty(BTC, "0.002"), stop_price=h.px(BTC, "30200"), client_order_id="c1"
    ).order_id
    h.new(
        "alice", BTC, SELL, STOP_LIMIT, h.qty(BTC, "0.001"), h.px(BTC, "29000"), stop_price=h.px(BTC, "29500")
    )
    h.limit("carol", BTC, BUY, "0.002", "29450")
    eth = h.limit("poor", ETH, BUY, "0.01", "2000.03", client_order_id="p1").order_id
    h.limit("alice", ETH, SELL, "0.5", "2100")
    h.replace("poor", eth, ETH, quantity=h.qty(ETH, "0.02"), client_order_id="p2")
    h.replace("carol", ids["stop"], BTC, stop_price=h.px(BTC, "30250"), quantity=h.qty(BTC, "0.003"))
    done = h.limit("alice", BTC, BUY, "0.001", "29900", client_order_id="a-done")
    h.cancel("alice", done.order_id, BTC)
    h.limit("alice", BTC, SELL, "0.0005", "29900", stp=SelfTradePrevention.DECREMENT)  # restates a1
    h.cancel_all("alice", ETH)
    refused = h.limit("carol", BTC, BUY, "0.001", "30100.07", post_only=True)  # would take from mm
    ids["refused"] = refused.order_id
    return h, ids


def steps(h: Harness, ids: dict[str, int]) -> list:
    """The same further flow, for the original and the restored venue (each a call on ``h``)."""
    return [
        lambda: h.limit("alice", BTC, BUY, "0.001", "30000.01", client_order_id="a1"),  # duplicate
        lambda: h.limit("alice", BTC, BUY, "0.001", "29990", client_order_id="a-done"),  # reusable
        lambda: h.replace("alice", ids["alice_bid"], BTC, price=h.px(BTC, "30150")),  # crosses mm
        lambda: h.new("bob", BTC, BUY, MARKET, h.qty(BTC, "0.003")),  # a budget; triggers the stop
        lambda: h.limit("poor", BTC, BUY, "0.01", "30000"),  # insufficient funds
        lambda: h.new("poor", ETH, BUY, MARKET, h.qty(ETH, "1")),
        lambda: h.limit("bob", BTC, SELL, "0.01", "29400"),  # triggers the stop-limit sell
        lambda: h.new("odd", BTC, BUY, TAKE_PROFIT, h.qty(BTC, "0.001"), stop_price=h.px(BTC, "20000")),
        lambda: h.limit("alice", BTC, BUY, "0.001", "50000"),  # out of band
        lambda: h.cancel("carol", ids["stop"], BTC),
        lambda: h.cancel_all("alice", BTC),
    ]


def future(h: Harness, ids: dict[str, int], start: int = 0, stop: int | None = None) -> list[object]:
    """Run ``steps[start:stop]`` on ``h``; return what each did (refusal, or hold and events)."""
    out: list[object] = []
    for call in steps(h, ids)[start:stop]:
        try:
            result = call()
        except Rejection as refused:
            out.append(("refused", refused.reason.value, refused.text))
        else:
            out.append((result.held, view_events(result.events)))
    return out


def test_a_risk_snapshot_restores_into_a_fresh_risk_with_identical_state():
    h, _ = busy()
    data = json.loads(json.dumps(h.risk.snapshot()))

    fresh = Risk(h.config)
    fresh.restore(data)

    fresh.check_invariants()
    assert h.risk.snapshot() == fresh.snapshot()
    assert h.risk.totals() == fresh.totals()
    for name in h.risk.accounts:
        assert h.risk.balances(name) == fresh.balances(name)
        assert [x.order_id for x in h.risk.open_holds(name)] == [x.order_id for x in fresh.open_holds(name)]
    for name, cid in (("alice", "a1"), ("alice", "a-done"), ("poor", "p2"), ("poor", "p1"), ("carol", "c1")):
        assert h.risk.order_id_for_client_id(name, cid) == fresh.order_id_for_client_id(name, cid)
    assert fresh.order_id_for_client_id("poor", "p1") is None  # replaced away while live
    done_id = fresh.order_id_for_client_id("alice", "a-done")
    assert done_id is not None and fresh.symbol_of("alice", done_id) == BTC  # a symbol-less cancel finds it


def test_a_restored_risk_admits_and_settles_exactly_like_the_original():
    h, _ = busy()
    fresh = Risk(h.config)
    fresh.restore(json.loads(json.dumps(h.risk.snapshot())))
    requests = [
        Request("alice", BTC, BUY, MARKET, h.qty(BTC, "0.002")),
        Request("alice", BTC, BUY, IOC, h.qty(BTC, "0.001"), h.px(BTC, "30000.01"), client_order_id="a1"),
        Request("poor", ETH, BUY, MARKET, h.qty(ETH, "0.01")),
        Request("bob", BTC, SELL, STOP_LOSS, h.qty(BTC, "0.001"), stop_price=h.px(BTC, "25000")),
        Request("bob", BTC, SELL, MARKET, h.qty(BTC, "0.5")),
        Request("poor", BTC, BUY, STOP_LOSS, h.qty(BTC, "1"), stop_price=h.px(BTC, "31000")),
    ]
    for request in requests:
        outcomes = []
        for risk in (h.risk, fresh):
            try:
                outcomes.append(risk.admit(request, 7))
            except Rejection as refused:
                outcomes.append((refused.reason, refused.text))
        assert outcomes[0] == outcomes[1]
        command, _held = outcomes[0]
        if not isinstance(command, NewOrder):
            continue
        events = h.books[command.symbol].apply(command)
        h.risk.settle(events)
        fresh.settle(events)  # the same book events fold into both identically
        fresh.check_invariants()
        assert h.risk.snapshot() == fresh.snapshot()
    assert 2 <= sum(1 for a in h.risk.accounts.values() for _ in a.orders)


def test_a_restored_venue_has_the_same_digest_and_the_same_future():
    h, ids = busy()
    twin = h.restored()

    assert h.venue.state_digest() == twin.venue.state_digest()
    assert h.venue.snapshot() == twin.venue.snapshot()
    mine, theirs = future(h, ids), future(twin, ids)
    assert mine == theirs
    assert h.venue.state_digest() == twin.venue.state_digest()
    assert any(isinstance(o, tuple) and o[0] == "refused" for o in mine)
    assert len(mine) > sum(1 for o in mine if o[0] == "refused") > 1


@pytest.mark.parametrize("cut", [1, 3, 4, 7, 9])
def test_a_snapshot_taken_mid_flow_continues_identically(cut):
    h, ids = busy()
    reference = future(h.restored(), ids)
    assert reference[:cut] == future(h, ids, 0, cut)

    twin = h.restored()

    assert h.venue.state_digest() == twin.venue.state_digest()
    assert reference[cut:] == future(h, ids, cut) == future(twin, ids, cut)
    assert h.venue.state_digest() == twin.venue.state_digest()


def test_a_replace_in_flight_survives_a_risk_snapshot():
    h, _ = busy()
    buy = h.limit("alice", BTC, BUY, "0.001", "29000")
    command, extra = h.risk.admit_replace(
        "alice", Replace(buy.order_id, "alice", quantity=h.qty(BTC, "0.004"), symbol=BTC)
    )
    assert extra > 0
    fresh = Risk(h.config)
    fresh.restore(json.loads(json.dumps(h.risk.snapshot())))
    assert [extra] == [a.extra for a in fresh.hold("alice", buy.order_id).pending]
    fresh.check_invariants()

    events = h.books[BTC].apply(command)
    h.risk.settle(events)
    fresh.settle(events)

    assert h.risk.snapshot() == fresh.snapshot()
    assert [] == list(fresh.hold("alice", buy.order_id).pending)
    fresh.check_invariants()
    h.check()
