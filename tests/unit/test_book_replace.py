"""Replace (cancel/replace) of resting orders: when priority is kept, when it is lost, and refusals."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Replaced
from tradingapp.engine.types import OrderStatus, OrderType, Side

BUY, SELL = Side.BUY, Side.SELL


@pytest.fixture
def queue(driver):
    """Three asks of 5 at 100 (ids 1, 2, 3, in that time order) and one of 5 at 101 (id 4)."""
    for order_id in (1, 2, 3):
        driver.limit(order_id, SELL, 5, 100)
    driver.limit(4, SELL, 5, 101)
    return driver


def fill_order(driver, taker_id, quantity):
    """Return the maker ids, in order, that a market buy of ``quantity`` trades with."""
    return [maker for _, _, maker, _ in driver.trades(driver.market(taker_id, BUY, quantity))]


def test_quantity_decrease_at_the_same_price_keeps_priority(queue):
    events = queue.replace(1, quantity=2)

    assert [("replaced", 1, "kept"), ("bbo", None, 0, 100, 12), ("depth",)] == queue.summary(events)
    replaced = events[0]
    assert isinstance(replaced, Replaced)
    assert (2, 2, 0, OrderStatus.NEW, True) == (
        replaced.quantity,
        replaced.leaves,
        replaced.filled,
        replaced.status,
        replaced.kept_priority,
    )
    assert [1, 2] == fill_order(queue, 9, 3)


def test_quantity_increase_loses_priority(queue):
    events = queue.replace(1, quantity=6)

    assert [("replaced", 1, "lost"), ("bbo", None, 0, 100, 16), ("depth",)] == queue.summary(events)
    assert [2, 3, 1] == fill_order(queue, 9, 15)


def test_price_change_loses_priority_and_moves_to_the_back_of_the_new_level(queue):
    events = queue.replace(1, price=101)

    assert [("replaced", 1, "lost"), ("bbo", None, 0, 100, 10), ("depth",)] == queue.summary(events)
    assert ["- | 101 | 10", "- | 100 | 10"] == queue.diagram()
    assert [2, 3, 4, 1] == fill_order(queue, 9, 20)


def test_price_change_away_and_back_goes_to_the_back_of_the_queue(queue):
    queue.replace(1, price=102)
    queue.replace(1, price=100)

    assert [2, 3, 1] == fill_order(queue, 9, 15)


def test_replace_with_the_same_values_keeps_priority_and_publishes_nothing(queue):
    seq = queue.book.update_seq

    events = queue.replace(1, quantity=5, price=100)

    assert [("replaced", 1, "kept")] == queue.summary(events)
    assert seq == queue.book.update_seq
    assert [1, 2] == fill_order(queue, 9, 6)


def test_crossing_price_replace_trades_as_aggressor_at_maker_prices(driver):
    driver.limit(1, SELL, 2, 101)
    driver.limit(2, SELL, 2, 102)
    driver.limit(3, BUY, 5, 99)

    events = driver.replace(3, price=102)

    assert [
        ("replaced", 3, "lost"),
        ("trade", 101, 2, 1, 3),
        ("trade", 102, 2, 2, 3),
        ("bbo", 102, 1, None, 0),
        ("depth",),
    ] == driver.summary(events)
    assert ["1 | 102 | -"] == driver.diagram()
    order = driver.book.order(3)
    assert (5, 4, 1, 102) == (order.quantity, order.filled, order.leaves, order.price)


def test_replace_of_a_partially_filled_order_sets_the_new_total(queue):
    queue.limit(9, BUY, 2, 100)  # fills 2 of order 1

    events = queue.replace(1, quantity=4)

    replaced = events[0]
    assert (4, 2, 2, OrderStatus.PARTIALLY_FILLED, True) == (
        replaced.quantity,
        replaced.leaves,
        replaced.filled,
        replaced.status,
        replaced.kept_priority,
    )
    order = queue.book.order(1)
    assert (4, 2, 2) == (order.quantity, order.leaves, order.filled)
    assert ["- | 101 | 5", "- | 100 | 12"] == queue.diagram()


@pytest.mark.parametrize("quantity", [2, 1])
def test_replace_to_a_total_at_or_below_filled_is_refused(queue, quantity):
    queue.limit(9, BUY, 2, 100)  # fills 2 of order 1
    digest = queue.book.state_digest()

    events = queue.replace(1, quantity=quantity, client_order_id="r-1")

    assert [("cancel_rejected", 1, "quantity_not_above_filled")] == queue.summary(events)
    reject = events[0]
    assert ("replace", "r-1") == (reject.response_to, reject.client_order_id)
    assert reject.order is queue.book.order(1)
    assert digest == queue.book.state_digest()
    assert (5, 3) == (queue.book.order(1).quantity, queue.book.order(1).leaves)


def test_replace_with_unknown_id_returns_reject(driver):
    events = driver.replace(5, "ann", quantity=1)

    assert [("cancel_rejected", 5, "unknown_order")] == driver.summary(events)
    assert ("replace", None) == (events[0].response_to, events[0].order)


def test_replace_of_another_accounts_order_looks_like_unknown(driver):
    driver.limit(1, SELL, 5, 100, account="ann")

    events = driver.replace(1, "bob", price=90)

    assert [("cancel_rejected", 1, "unknown_order")] == driver.summary(events)
    assert events[0].order is None
    assert 100 == driver.book.order(1).price


def test_replace_of_a_filled_order_returns_order_not_open(driver):
    driver.limit(1, SELL, 1, 100)
    driver.market(2, BUY, 1)

    events = driver.replace(1, quantity=3)

    assert [("cancel_rejected", 1, "order_not_open")] == driver.summary(events)


def test_replace_that_makes_a_post_only_order_cross_is_refused(driver):
    driver.limit(1, SELL, 1, 101)
    driver.limit(2, BUY, 1, 99, post_only=True)

    events = driver.replace(2, price=101)

    assert [("cancel_rejected", 2, "post_only_would_take")] == driver.summary(events)
    assert 99 == driver.book.order(2).price


def test_replace_of_a_post_only_order_to_a_passive_price_is_allowed(driver):
    driver.limit(1, SELL, 1, 101)
    driver.limit(2, BUY, 1, 99, post_only=True)

    events = driver.replace(2, price=100)

    assert [("replaced", 2, "lost"), ("bbo", 100, 1, 101, 1), ("depth",)] == driver.summary(events)


def test_replace_of_stop_price_on_a_resting_limit_order_is_not_allowed(driver):
    driver.limit(1, SELL, 1, 101)

    events = driver.replace(1, stop_price=90)

    assert [("cancel_rejected", 1, "replace_not_allowed")] == driver.summary(events)


def test_replace_of_price_on_a_stop_market_order_is_not_allowed(driver):
    driver.new(1, SELL, OrderType.STOP_LOSS, 1, stop_price=90)

    events = driver.replace(1, price=85)

    assert [("cancel_rejected", 1, "replace_not_allowed")] == driver.summary(events)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"quantity": 0}, "invalid_quantity"),
        ({"quantity": -2}, "invalid_quantity"),
        ({"price": 0}, "invalid_price"),
    ],
)
def test_replace_with_an_invalid_value_is_refused(queue, fields, reason):
    digest = queue.book.state_digest()

    events = queue.replace(2, **fields)

    assert [("cancel_rejected", 2, reason)] == queue.summary(events)
    assert digest == queue.book.state_digest()


def test_replace_updates_the_client_order_id_and_reports_the_previous_one(driver):
    driver.limit(1, BUY, 2, 99, client_order_id="first")

    replaced = driver.replace(1, quantity=1, client_order_id="second")[0]

    assert ("first", "second") == (replaced.previous_client_order_id, driver.book.order(1).client_order_id)
