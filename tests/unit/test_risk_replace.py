"""Replaces: the extra reserved ahead, the exact hold after, refused replaces release the extra."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.test_risk_support import (
    BTC,
    BUY,
    ETH,
    LIMIT,
    SELL,
    STOP_LOSS,
    Harness,
    Result,
    buffered,
    custom_config,
    fee,
)
from tradingapp.engine.commands import Replace
from tradingapp.engine.events import CancelRejected, Replaced
from tradingapp.engine.reasons import Reason
from tradingapp.engine.risk import Rejection
from tradingapp.engine.types import SelfTradePrevention

D = Decimal
DECREMENT = SelfTradePrevention.DECREMENT


def hold(h: Harness, symbol: str, price: str, lots: int, bps: str = "2") -> int:
    """What a limit buy of ``lots`` at ``price`` holds: notional + fee (Decimal, toward zero)."""
    step = h.config.symbol(symbol).quantity.step
    notional = h.notional(symbol, price, str(D(lots) * step))
    return notional + fee(notional, bps)


def refused(result) -> list[str]:
    return [e.reason.value for e in result.events if isinstance(e, CancelRejected)]


def test_worked_example_3_a_replace_within_the_hold_needs_no_extra_and_releases_the_rest():
    h = Harness()
    u = h.units
    h.limit("bob", BTC, SELL, "0.2", "29990")
    buy = h.limit("alice", BTC, BUY, "0.5", "30000")  # worked example 1: 0.2 filled, 9,001.8 held
    assert u("USDT", "9001.8") == h.reserved("alice", "USDT")
    available = h.available("alice", "USDT")

    result = h.replace("alice", buy.order_id, BTC, quantity=h.qty(BTC, "0.4"), price=h.px(BTC, "30100"))

    assert 0 == result.held
    assert [Replaced] == [type(e) for e in result.events if isinstance(e, Replaced | CancelRejected)]
    assert u("USDT", "6021.204") == h.reserved("alice", "USDT")  # (0.4 - 0.2) * 30,100 * 1.0002
    assert u("USDT", "2980.596") == h.available("alice", "USDT") - available


def test_a_replace_reserves_the_most_the_amended_order_could_need_then_the_exact_hold():
    h = Harness(custom_config())
    buy = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"))
    h.new("bob", BTC, SELL, LIMIT, 3, h.px(BTC, "100"))  # 3 of 10 filled; 7 left
    assert hold(h, BTC, "100", 7) == h.reserved("alice", "USDT")

    # to 30 lots at half the price: the need grows with the filled quantity, which may still reach
    # 9 before the book sees the replace, so the extra is taken at that end of the range
    command, extra = h.risk.admit_replace(
        "alice", Replace(buy.order_id, "alice", quantity=30, price=h.px(BTC, "50"), symbol=BTC)
    )

    expected = max(hold(h, BTC, "50", 30 - f) - hold(h, BTC, "100", 10 - f) for f in (3, 9))
    assert hold(h, BTC, "50", 21) - hold(h, BTC, "100", 1) == expected  # the f = 9 end
    assert expected == extra
    assert hold(h, BTC, "100", 7) + extra == h.reserved("alice", "USDT")

    h.run(Result(command, extra))

    assert hold(h, BTC, "50", 27) == h.reserved("alice", "USDT")


def test_a_replace_to_a_crossing_price_reserves_the_higher_price_and_the_fill_releases_it():
    h = Harness(custom_config())
    usdt = h.total("alice", "USDT")
    buy = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"))
    h.new("bob", BTC, SELL, LIMIT, 10, h.px(BTC, "101"))

    result = h.replace("alice", buy.order_id, BTC, price=h.px(BTC, "102"))

    assert hold(h, BTC, "102", 10) - hold(h, BTC, "100", 10) == result.held
    assert [(h.px(BTC, "101"), 10)] == [(t.price, t.quantity) for t in result.trades()]
    paid = h.notional(BTC, "101", "0.0001") + fee(h.notional(BTC, "101", "0.0001"), "2")  # as taker now
    assert (usdt - paid, usdt - paid, 0) == h.balance("alice", "USDT")


def test_a_sell_replace_reserves_and_releases_base():
    h = Harness(custom_config())
    sell = h.new("alice", BTC, SELL, LIMIT, 10, h.px(BTC, "30000"))

    up = h.replace("alice", sell.order_id, BTC, quantity=25)
    assert (15, 25) == (up.held, h.reserved("alice", "BTC"))

    down = h.replace("alice", sell.order_id, BTC, quantity=4)
    assert (0, 4) == (down.held, h.reserved("alice", "BTC"))


def test_a_replace_the_book_refuses_for_quantity_not_above_filled_keeps_the_hold():
    h = Harness(custom_config())
    buy = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"))
    h.new("bob", BTC, SELL, LIMIT, 6, h.px(BTC, "100"))
    before = h.risk.balances("alice")

    for quantity in (6, 5):
        result = h.replace("alice", buy.order_id, BTC, quantity=quantity)
        assert 0 == result.held
        assert ["quantity_not_above_filled"] == refused(result)
        assert before == h.risk.balances("alice")
        assert hold(h, BTC, "100", 4) == h.reserved("alice", "USDT")


def test_a_replace_the_book_refuses_as_post_only_would_take_releases_its_extra():
    h = Harness(custom_config())
    buy = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"), post_only=True)
    h.new("bob", BTC, SELL, LIMIT, 10, h.px(BTC, "101"))
    before = h.risk.balances("alice")

    result = h.replace("alice", buy.order_id, BTC, price=h.px(BTC, "101"), quantity=12)

    assert hold(h, BTC, "101", 12) - hold(h, BTC, "100", 10) == result.held > 0
    assert ["post_only_would_take"] == refused(result)
    assert before == h.risk.balances("alice")


def test_a_replace_the_book_refuses_as_above_the_maximum_quantity_releases_its_extra():
    h = Harness(custom_config(eth_max="10"))
    buy = h.limit("alice", ETH, BUY, "5", "100")
    before = h.risk.balances("alice")

    result = h.replace("alice", buy.order_id, ETH, quantity=h.qty(ETH, "11"))

    assert hold(h, ETH, "100", h.qty(ETH, "11")) - hold(h, ETH, "100", h.qty(ETH, "5")) == result.held
    assert ["quantity_above_maximum"] == refused(result)
    assert before == h.risk.balances("alice")


def test_a_sell_replace_the_book_refuses_releases_its_extra_base():
    h = Harness(custom_config())
    sell = h.new("alice", BTC, SELL, LIMIT, 10, h.px(BTC, "30000"))

    result = h.replace("alice", sell.order_id, BTC, quantity=20, stop_price=h.px(BTC, "29000"))

    assert 10 == result.held
    assert ["replace_not_allowed"] == refused(result)
    assert 10 == h.reserved("alice", "BTC")


def test_insufficient_funds_for_a_replace_is_refused_and_changes_nothing():
    h = Harness(custom_config())
    buy = h.limit("poor", BTC, BUY, "0.003", "20000")  # holds 60.012 of 100.02
    before = h.risk.snapshot()
    digest = h.books[BTC].state_digest()

    with pytest.raises(Rejection) as refused_:
        h.replace("poor", buy.order_id, BTC, quantity=h.qty(BTC, "0.006"))

    assert Reason.INSUFFICIENT_FUNDS == refused_.value.reason
    assert "60.0120000 USDT more" in refused_.value.text
    assert "available 40.0080000 USDT" in refused_.value.text
    assert before == h.risk.snapshot()
    assert digest == h.books[BTC].state_digest()


def test_insufficient_base_for_a_sell_replace_is_refused():
    h = Harness(custom_config())
    sell = h.limit("poor", BTC, SELL, "0.001", "30000")

    with pytest.raises(Rejection) as refused_:
        h.replace("poor", sell.order_id, BTC, quantity=h.qty(BTC, "0.002"))

    assert Reason.INSUFFICIENT_FUNDS == refused_.value.reason
    assert "0.00100 BTC more, available 0.00000 BTC" in refused_.value.text
    assert (h.units("BTC", "0.001"), sell.held) == (h.total("poor", "BTC"), h.reserved("poor", "BTC"))


def stop_budget(h: Harness, stop: str, lots: int, pct: str = "10", taker_bps: str = "2") -> int:
    budget = buffered(h.notional(BTC, stop, str(D(lots) * D("0.00001"))), pct)
    return budget + fee(budget, taker_bps)


def test_a_stop_market_buy_replace_moves_its_budget_and_hold():
    h = Harness(custom_config(band="0"))
    h.new("bob", BTC, SELL, LIMIT, 1, h.px(BTC, "100"))
    h.new("carol", BTC, BUY, LIMIT, 1, h.px(BTC, "100"))  # last trade 100
    stop = h.new("alice", BTC, BUY, STOP_LOSS, 10, stop_price=h.px(BTC, "101.01"))
    assert stop_budget(h, "101.01", 10) == stop.held

    up = h.replace("alice", stop.order_id, BTC, quantity=12, stop_price=h.px(BTC, "103.03"))

    assert stop_budget(h, "103.03", 12) - stop_budget(h, "101.01", 10) == up.held
    assert stop_budget(h, "103.03", 12) == up.command.budget == h.books[BTC].order(stop.order_id).budget
    assert stop_budget(h, "103.03", 12) == h.reserved("alice", "USDT")

    down = h.replace("alice", stop.order_id, BTC, quantity=5)

    assert 0 == down.held
    assert stop_budget(h, "103.03", 5) == h.reserved("alice", "USDT")
    assert stop_budget(h, "103.03", 5) == h.books[BTC].order(stop.order_id).budget


def test_a_stop_replace_refused_as_would_trigger_releases_its_extra_and_keeps_the_budget():
    h = Harness(custom_config(band="0"))
    h.new("bob", BTC, SELL, LIMIT, 1, h.px(BTC, "100"))
    h.new("carol", BTC, BUY, LIMIT, 1, h.px(BTC, "100"))
    stop = h.new("alice", BTC, BUY, STOP_LOSS, 10, stop_price=h.px(BTC, "105"))

    result = h.replace("alice", stop.order_id, BTC, quantity=20, stop_price=h.px(BTC, "100"))

    assert stop_budget(h, "100", 20) - stop_budget(h, "105", 10) == result.held > 0
    assert ["would_trigger_immediately"] == refused(result)
    assert stop.held == h.reserved("alice", "USDT") == h.books[BTC].order(stop.order_id).budget


def test_a_replace_with_another_live_orders_client_id_is_refused_and_a_new_one_frees_the_old():
    h = Harness(custom_config())
    a = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"), client_order_id="a")
    b = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "99"), client_order_id="b")

    with pytest.raises(Rejection) as refused_:
        h.replace("alice", b.order_id, BTC, quantity=11, client_order_id="a")
    assert Reason.DUPLICATE_CLIENT_ORDER_ID == refused_.value.reason
    assert (10, 10) == (h.risk.hold("alice", b.order_id).quantity, h.books[BTC].order(b.order_id).quantity)

    h.replace("alice", b.order_id, BTC, quantity=11, client_order_id="c")

    assert (a.order_id, b.order_id) == (
        h.risk.order_id_for_client_id("alice", "a"),
        h.risk.order_id_for_client_id("alice", "c"),
    )
    again = h.new("alice", BTC, BUY, LIMIT, 1, h.px(BTC, "98"), client_order_id="b")  # "b" is free again
    assert again.order_id == h.risk.order_id_for_client_id("alice", "b")


@pytest.mark.parametrize("filled_ahead", [0, 1, 5, 9])
def test_the_extra_covers_fills_that_arrive_before_the_book_applies_the_replace(filled_ahead):
    # The server's risk actor admits a replace while the book may still run earlier commands that
    # fill the order; in-process that is: admit the replace, run a fill, then apply the replace.
    h = Harness(custom_config())
    usdt = h.total("alice", "USDT")
    buy = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"))
    command, extra = h.risk.admit_replace(
        "alice", Replace(buy.order_id, "alice", quantity=30, price=h.px(BTC, "50"), symbol=BTC)
    )
    assert max(hold(h, BTC, "50", 30 - f) - hold(h, BTC, "100", 10 - f) for f in (0, 9)) == extra

    if filled_ahead:
        h.run(h.admit("bob", BTC, SELL, LIMIT, filled_ahead, h.px(BTC, "100")), exact=False)
        assert h.reserved("alice", "USDT") <= h.total("alice", "USDT")
    h.run(Result(command, extra))

    paid = filled_ahead * (10_000 + fee(10_000, "1"))  # each lot 0.001 USDT as maker, 1 bps
    remaining = hold(h, BTC, "50", 30 - filled_ahead)
    assert (usdt - paid, usdt - paid - remaining, remaining) == h.balance("alice", "USDT")


# -- replaces the book has not answered yet -----------------------------------------------------------
#
# The server's risk actor admits each request as it comes and settles the book's answers when they
# come back, so a client that sends two replaces back to back, or a replace right behind an order
# of its own, has the second admitted against a hold the book has already changed. These tests run
# the commands in that order in-process.


def test_two_replaces_in_flight_never_reserve_more_than_the_account_owns():
    h = Harness(custom_config())
    total = h.total("poor", "USDT")  # 100.02
    buy = h.limit("poor", BTC, BUY, "0.001", "20000")  # holds 20.004
    first = Replace(buy.order_id, "poor", quantity=h.qty(BTC, "0.0025"), symbol=BTC)  # to 50.01
    command1, extra1 = h.risk.admit_replace("poor", first)
    assert hold(h, BTC, "20000", 250) - hold(h, BTC, "20000", 100) == extra1

    # the second keeps the quantity (None), which the book will read as the first's 0.0025:
    # 0.0025 at 50,000 needs 125.025 USDT, more than poor owns, so it must be refused
    second = Replace(buy.order_id, "poor", price=h.px(BTC, "50000"), symbol=BTC)
    try:
        command2, extra2 = h.risk.admit_replace("poor", second)
    except Rejection as refused:
        assert Reason.INSUFFICIENT_FUNDS == refused.reason
        h.run(Result(command1, extra1))
        return
    h.run(Result(command1, extra1), exact=False)
    h.run(Result(command2, extra2))  # fails: reserved 125.025 of a total of 100.02

    assert h.reserved("poor", "USDT") <= total


def test_a_restatement_ahead_of_a_replace_does_not_let_the_reservation_grow_unchecked():
    h = Harness(custom_config())
    buy = h.limit("poor", BTC, BUY, "0.005", "20000")  # holds all 100.02 USDT
    # poor's own sell, self-trade prevention "decrement": it will cut the bid from 0.005 to 0.0046
    sell = h.admit("poor", BTC, SELL, LIMIT, h.qty(BTC, "0.0004"), h.px(BTC, "20000"), stp=DECREMENT)
    # then a replace that restates the bid's quantity as 0.005: no extra needed as risk sees it
    command, extra = h.risk.admit_replace(
        "poor", Replace(buy.order_id, "poor", quantity=h.qty(BTC, "0.005"), symbol=BTC)
    )
    assert 0 == extra

    h.run(sell, exact=False)  # the book cuts the bid; settling it releases 8.0016 USDT
    released = h.available("poor", "USDT")
    assert hold(h, BTC, "20000", 40) == released
    spend = h.admit("poor", ETH, BUY, LIMIT, h.qty(ETH, "0.04"), h.px(ETH, "200"))  # uses the 8.0016
    assert released == spend.held
    h.run(Result(command, extra), exact=False)  # the book puts the bid back to 0.005

    assert h.reserved("poor", "USDT") <= h.total("poor", "USDT")  # fails: 108.0216 of 100.02
    h.run(spend)


def test_a_replace_naming_another_symbol_does_not_settle_against_the_order_in_its_own_book():
    # A replace carries the symbol the client named, and goes to that symbol's book; risk finds
    # the hold by account and order id alone. Naming the wrong symbol must not leave an
    # amendment on the order's hold that the other book's answer would settle out of turn.
    h = Harness()
    buy = h.limit("alice", BTC, BUY, "0.5", "30000")
    first = Replace(buy.order_id, "alice", price=h.px(BTC, "29000"), symbol=BTC)
    command1, extra1 = h.risk.admit_replace("alice", first)
    wrong = Replace(buy.order_id, "alice", price=h.px(BTC, "25000"), symbol=ETH)
    try:
        command2, extra2 = h.risk.admit_replace("alice", wrong)
    except Rejection as rejection:
        assert Reason.UNKNOWN_ORDER == rejection.reason
    else:
        # the ETH book (no such order) answers before the BTC book applies the first replace
        assert ["unknown_order"] == refused(h.run(Result(command2, extra2), exact=False))
    h.run(Result(command1, extra1))
    assert h.px(BTC, "29000") == h.risk.hold("alice", buy.order_id).price
    assert hold(h, BTC, "29000", h.qty(BTC, "0.5")) == h.reserved("alice", "USDT")


def test_a_replaces_new_client_id_is_taken_from_admission_until_the_book_answers():
    h = Harness(custom_config())
    a = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"), client_order_id="a")
    b = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "99"), client_order_id="b")
    command, extra = h.risk.admit_replace(
        "alice", Replace(a.order_id, "alice", quantity=11, client_order_id="x", symbol=BTC)
    )

    # in flight: "x" already names order a, and no other order may take it
    assert a.order_id == h.risk.order_id_for_client_id("alice", "x")
    with pytest.raises(Rejection) as new_refused:
        h.admit("alice", BTC, BUY, LIMIT, 1, h.px(BTC, "98"), client_order_id="x")
    assert Reason.DUPLICATE_CLIENT_ORDER_ID == new_refused.value.reason
    with pytest.raises(Rejection) as replace_refused:
        h.replace("alice", b.order_id, BTC, quantity=11, client_order_id="x")
    assert Reason.DUPLICATE_CLIENT_ORDER_ID == replace_refused.value.reason

    h.run(Result(command, extra))

    assert a.order_id == h.risk.order_id_for_client_id("alice", "x")
    assert "x" == h.risk.hold("alice", a.order_id).client_order_id
    assert "a" not in h.risk.accounts["alice"].client_ids  # the old id is free


def test_a_refused_replace_frees_its_new_client_id_and_keeps_the_old_one():
    h = Harness(custom_config())
    a = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"), client_order_id="a")
    h.new("bob", BTC, SELL, LIMIT, 4, h.px(BTC, "100"))  # 4 of 10 filled
    # to 3 lots, not above the 4 filled: the book refuses it
    command, extra = h.risk.admit_replace(
        "alice", Replace(a.order_id, "alice", quantity=3, client_order_id="x", symbol=BTC)
    )

    result = h.run(Result(command, extra))

    assert ["quantity_not_above_filled"] == refused(result)
    client_ids = h.risk.accounts["alice"].client_ids
    assert ({"a": a.order_id}, "a") == (client_ids, h.risk.hold("alice", a.order_id).client_order_id)
    again = h.new("alice", BTC, BUY, LIMIT, 1, h.px(BTC, "98"), client_order_id="x")
    assert again.order_id == h.risk.order_id_for_client_id("alice", "x")


def test_an_order_that_ends_with_a_replace_in_flight_frees_the_replaces_client_id():
    h = Harness(custom_config())
    a = h.new("alice", BTC, BUY, LIMIT, 10, h.px(BTC, "100"), client_order_id="a")
    command, extra = h.risk.admit_replace(
        "alice", Replace(a.order_id, "alice", quantity=11, client_order_id="x", symbol=BTC)
    )
    h.cancel("alice", a.order_id, BTC)  # reaches the book first

    result = h.run(Result(command, extra))

    assert ["order_not_open"] == refused(result)
    assert {} == h.risk.accounts["alice"].client_ids
    h.new("alice", BTC, BUY, LIMIT, 1, h.px(BTC, "98"), client_order_id="x")
