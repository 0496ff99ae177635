"""Cancel and cancel-all."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Canceled, CancelRejected
from tradingapp.engine.types import OrderStatus, OrderType, Side

BUY, SELL = Side.BUY, Side.SELL


def test_cancel_of_a_resting_order_removes_it(driver):
    driver.limit(1, BUY, 3, 100)
    driver.limit(2, BUY, 4, 100)

    events = driver.cancel(1, client_order_id="c-1")

    assert [("canceled", 1, "canceled_by_user"), ("bbo", 100, 4, None, 0), ("depth",)] == driver.summary(
        events
    )
    canceled = events[0]
    assert isinstance(canceled, Canceled)
    assert (3, 0, 0, OrderStatus.CANCELED) == (
        canceled.quantity,
        canceled.leaves,
        canceled.filled,
        canceled.status,
    )
    assert ["4 | 100 | -"] == driver.diagram()
    assert OrderStatus.CANCELED is driver.book.order(1).status
    assert [] == driver.book.open_orders("acct-1")


def test_cancel_of_a_partially_filled_order_reports_what_was_filled(driver):
    driver.limit(1, SELL, 5, 100)
    driver.market(2, BUY, 2)

    events = driver.cancel(1)

    canceled = events[0]
    assert (5, 0, 2, 200) == (canceled.quantity, canceled.leaves, canceled.filled, canceled.notional)
    assert [] == driver.diagram()


def test_cancel_of_the_last_order_at_a_level_removes_the_level(driver):
    driver.limit(1, SELL, 1, 101)
    driver.limit(2, SELL, 1, 102)

    driver.cancel(1)

    assert ["- | 102 | 1"] == driver.diagram()
    assert (None, 0, 102, 1) == driver.book.bbo()


def test_cancel_with_unknown_id_returns_reject(driver):
    events = driver.cancel(77, "ann", client_order_id="c-9")

    assert 1 == len(events)
    reject = events[0]
    assert isinstance(reject, CancelRejected)
    assert (77, "ann", None, "unknown_order", "cancel", "c-9") == (
        reject.order_id,
        reject.account,
        reject.order,
        reject.reason.value,
        reject.response_to,
        reject.client_order_id,
    )
    assert reject.text


def test_cancel_of_another_accounts_order_looks_exactly_like_unknown(driver):
    driver.limit(5, BUY, 1, 100, account="ann")

    foreign = driver.cancel(5, "bob")[0]
    unknown = driver.cancel(6, "bob")[0]

    assert (None, "unknown_order", "cancel") == (foreign.order, foreign.reason.value, foreign.response_to)
    assert unknown.text.replace("6", "#") == foreign.text.replace("5", "#")
    assert (unknown.order, unknown.reason, unknown.response_to) == (
        foreign.order,
        foreign.reason,
        foreign.response_to,
    )
    assert OrderStatus.NEW is driver.book.order(5).status


def test_cancel_of_another_accounts_done_order_looks_like_unknown(driver):
    driver.limit(1, BUY, 1, 100, account="ann")
    driver.cancel(1, "ann")

    events = driver.cancel(1, "bob")

    assert [("cancel_rejected", 1, "unknown_order")] == driver.summary(events)
    assert events[0].order is None


@pytest.mark.parametrize("ending", ["filled", "canceled", "expired"])
def test_cancel_of_an_order_that_is_no_longer_open_returns_order_not_open(driver, ending):
    if ending == "filled":
        driver.limit(1, SELL, 1, 100)
        driver.market(2, BUY, 1)
    elif ending == "canceled":
        driver.limit(1, SELL, 1, 100)
        driver.cancel(1)
    else:
        driver.market(1, SELL, 1)
    digest = driver.book.state_digest()

    events = driver.cancel(1)

    assert [("cancel_rejected", 1, "order_not_open")] == driver.summary(events)
    assert events[0].order is driver.book.order(1)
    assert ending == events[0].order.status.value
    assert digest == driver.book.state_digest()


def test_cancel_of_an_untriggered_stop_removes_it_without_touching_the_visible_book(driver):
    driver.new(1, SELL, OrderType.STOP_LOSS, 2, stop_price=90)

    events = driver.cancel(1)

    assert [("canceled", 1, "canceled_by_user")] == driver.summary(events)
    assert 0 == len(driver.book)
    assert 0 == driver.book.update_seq


def test_cancel_all_cancels_only_that_accounts_open_orders_oldest_first(driver):
    driver.limit(1, BUY, 1, 99, account="ann")
    driver.limit(2, BUY, 1, 99, account="bob")
    driver.limit(3, SELL, 2, 101, account="ann")
    driver.new(4, BUY, OrderType.STOP_LIMIT, 1, 110, account="ann", stop_price=108)
    driver.limit(5, SELL, 3, 102, account="bob")

    events = driver.cancel_all("ann")

    assert [
        ("canceled", 1, "canceled_by_user"),
        ("canceled", 3, "canceled_by_user"),
        ("canceled", 4, "canceled_by_user"),
        ("bbo", 99, 1, 102, 3),
        ("depth",),
    ] == driver.summary(events)
    assert [] == driver.book.open_orders("ann")
    assert [2, 5] == [o.order_id for o in driver.book.open_orders("bob")]
    assert ["- | 102 | 3", "1 | 99 | -"] == driver.diagram()


def test_cancel_all_with_no_open_orders_returns_no_events(driver):
    driver.limit(1, BUY, 1, 99, account="bob")

    assert [] == driver.cancel_all("ann")
    assert ["1 | 99 | -"] == driver.diagram()
