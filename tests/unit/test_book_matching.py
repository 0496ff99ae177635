"""Price-time matching of limit orders, order state, validation and the symbol's filters."""



from __future__ import annotations

import pytest

from tradingapp.engine.commands import NewOrder
from tradingapp.engine.events import Accepted, Rejected, Trade
from tradingapp.engine.numbers import MAX_UNITS
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

BUY, SELL = Side.BUY, Side.SELL


# -- empty book, resting, exact fills -------------------------------------------------------------


def test_empty_book_has_no_bbo_no_depth_and_no_orders(driver):
    book = driver.book

    assert (None, 0, None, 0) == book.bbo()
    assert ([], []) == book.depth()
    assert 0 == len(book)
    assert [] == book.open_orders("anyone")
    assert book.order(1) is None
    assert book.last_trade_price is None


def test_limit_order_into_empty_book_rests(driver):
    events = driver.limit(1, BUY, 5, 100)

    assert [("accepted", 1), ("bbo", 100, 5, None, 0), ("depth",)] == driver.summary(events)
    accepted = events[0]
    assert (5, 5, 0, 0, OrderStatus.NEW) == (
        accepted.quantity,
        accepted.leaves,
        accepted.filled,
        accepted.notional,
        accepted.status,
    )
    assert ["5 | 100 | -"] == driver.diagram()
    assert [1] == [o.order_id for o in driver.book.open_orders("acct-1")]


def test_exact_fill_empties_the_book(driver):
    driver.limit(1, SELL, 5, 100)

    events = driver.limit(2, BUY, 5, 100)

    assert [
        ("accepted", 2),
        ("trade", 100, 5, 1, 2),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == driver.summary(events)
    trade = events[1]
    assert (0, 5, 500, 0, 5, 500) == (
        trade.maker_leaves,
        trade.maker_filled,
        trade.maker_notional,
        trade.taker_leaves,
        trade.taker_filled,
        trade.taker_notional,
    )
    assert (OrderStatus.FILLED, OrderStatus.FILLED, BUY) == (
        trade.maker_status,
        trade.taker_status,
        trade.aggressor_side,
    )
    assert [] == driver.diagram()
    assert 0 == len(driver.book)
    assert 100 == driver.book.last_trade_price
    assert OrderStatus.FILLED is driver.book.order(1).status
    assert OrderStatus.FILLED is driver.book.order(2).status


def test_trades_get_ids_from_the_shared_sequence(driver):
    driver.trade_ids.last = 41
    driver.limit(1, SELL, 1, 100)
    driver.limit(2, SELL, 1, 101)

    events = driver.limit(3, BUY, 2, 101)

    assert [42, 43] == [e.trade_id for e in events if isinstance(e, Trade)]
    assert 43 == driver.trade_ids.last


# -- partial fills across levels -------------------------------------------------------------------


def test_taker_sweeps_levels_best_price_first_at_maker_prices(driver):
    driver.limit(1, SELL, 2, 103)
    driver.limit(2, SELL, 2, 101)
    driver.limit(3, SELL, 2, 102)

    events = driver.limit(4, BUY, 5, 105)

    assert [(101, 2, 2, 4), (102, 2, 3, 4), (103, 1, 1, 4)] == driver.trades(events)
    assert ["- | 103 | 1"] == driver.diagram()
    taker = driver.book.order(4)
    assert (5, 0, 5, 101 * 2 + 102 * 2 + 103) == (taker.quantity, taker.leaves, taker.filled, taker.notional)


def test_sell_taker_sweeps_bids_highest_first(driver):
    driver.limit(1, BUY, 1, 98)
    driver.limit(2, BUY, 1, 100)
    driver.limit(3, BUY, 1, 99)

    events = driver.market(4, SELL, 3)

    assert [(100, 1, 2, 4), (99, 1, 3, 4), (98, 1, 1, 4)] == driver.trades(events)


def test_orders_at_one_level_fill_first_in_first_out(driver):
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 2, 100)
    driver.limit(3, SELL, 2, 100)

    events = driver.limit(4, BUY, 3, 100)

    assert [(100, 2, 1, 4), (100, 1, 2, 4)] == driver.trades(events)
    assert (1, 2) == (driver.book.order(2).leaves, driver.book.order(3).leaves)
    assert ["- | 100 | 3"] == driver.diagram()


def test_partially_filled_maker_keeps_its_place_at_the_front(driver):
    driver.limit(1, SELL, 5, 100)
    driver.limit(2, SELL, 5, 100)
    driver.limit(3, BUY, 2, 100)

    events = driver.limit(4, BUY, 4, 100)

    assert [(100, 3, 1, 4), (100, 1, 2, 4)] == driver.trades(events)


def test_limit_taker_never_trades_through_its_price_and_rests_the_rest(driver):
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 2, 101)
    driver.limit(3, SELL, 2, 102)

    events = driver.limit(4, BUY, 6, 101)

    assert [(100, 2, 1, 4), (101, 2, 2, 4)] == driver.trades(events)
    assert ["- | 102 | 2", "2 | 101 | -"] == driver.diagram()
    order = driver.book.order(4)
    assert (6, 2, 4, OrderStatus.PARTIALLY_FILLED) == (
        order.quantity,
        order.leaves,
        order.filled,
        order.status,
    )


def test_better_priced_limit_taker_trades_at_the_maker_price(driver):
    driver.limit(1, BUY, 3, 99)

    events = driver.limit(2, SELL, 3, 90)

    assert [(99, 3, 1, 2)] == driver.trades(events)


def test_non_crossing_limit_orders_rest_on_both_sides(driver):
    driver.limit(1, BUY, 1, 99)
    driver.limit(2, SELL, 2, 101)
    driver.limit(3, BUY, 3, 100)

    assert ["- | 101 | 2", "3 | 100 | -", "1 | 99 | -"] == driver.diagram()
    assert (100, 3, 101, 2) == driver.book.bbo()


# -- order state and queries -------------------------------------------------------------------


def test_order_state_tracks_quantity_filled_leaves_and_average_price(driver):
    driver.limit(1, SELL, 3, 100)
    driver.limit(2, SELL, 3, 103)
    driver.limit(3, BUY, 10, 105)

    order = driver.book.order(3)

    assert (10, 6, 4) == (order.quantity, order.filled, order.leaves)
    assert 3 * 100 + 3 * 103 == order.notional
    assert 101.5 == order.notional / order.filled  # the average price in ticks
    assert OrderStatus.PARTIALLY_FILLED is order.status
    assert order.leaves == order.quantity - order.filled


def test_trade_reports_each_orders_state_right_after_the_fill(driver):
    driver.limit(1, SELL, 3, 100)
    driver.limit(2, SELL, 3, 101)

    first, second = [e for e in driver.limit(3, BUY, 4, 101) if isinstance(e, Trade)]

    assert (0, 3, 300, 1, 3, 300) == (
        first.maker_leaves,
        first.maker_filled,
        first.maker_notional,
        first.taker_leaves,
        first.taker_filled,
        first.taker_notional,
    )
    assert (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED) == (first.maker_status, first.taker_status)
    assert (2, 1, 101, 0, 4, 401) == (
        second.maker_leaves,
        second.maker_filled,
        second.maker_notional,
        second.taker_leaves,
        second.taker_filled,
        second.taker_notional,
    )
    assert (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED) == (second.maker_status, second.taker_status)


def test_accepted_event_keeps_the_state_of_its_moment(driver):
    driver.limit(1, SELL, 2, 100)

    accepted = driver.limit(2, BUY, 2, 100)[0]

    assert isinstance(accepted, Accepted)
    assert (2, 2, 0, OrderStatus.NEW) == (
        accepted.quantity,
        accepted.leaves,
        accepted.filled,
        accepted.status,
    )
    assert OrderStatus.FILLED is accepted.order.status


def test_open_orders_lists_only_that_accounts_open_orders_oldest_first(driver):
    driver.limit(1, BUY, 1, 90, account="ann")
    driver.limit(2, SELL, 1, 110, account="bob")
    driver.limit(3, SELL, 1, 111, account="ann")
    driver.new(4, SELL, OrderType.STOP_LOSS, 1, account="ann", stop_price=80)
    driver.limit(5, BUY, 1, 91, account="ann")
    driver.cancel(5, "ann")

    assert [1, 3, 4] == [o.order_id for o in driver.book.open_orders("ann")]
    assert [2] == [o.order_id for o in driver.book.open_orders("bob")]
    assert [] == driver.book.open_orders("cyd")
    assert 4 == len(driver.book)


def test_done_orders_stay_queryable(driver):
    driver.limit(1, SELL, 1, 100)
    driver.market(2, BUY, 1)
    driver.limit(3, BUY, 1, 90)
    driver.cancel(3)

    assert OrderStatus.FILLED is driver.book.order(1).status
    assert OrderStatus.FILLED is driver.book.order(2).status
    assert OrderStatus.CANCELED is driver.book.order(3).status
    assert 0 == driver.book.order(3).leaves


# -- duplicate ids ---------------------------------------------------------------------------------


def test_duplicate_id_of_an_open_order_is_rejected_and_changes_nothing(driver):
    driver.limit(1, SELL, 5, 100)
    digest = driver.book.state_digest()

    events = driver.limit(1, BUY, 5, 100, account="acct-2")

    assert [("rejected", 1, "duplicate_order_id")] == driver.summary(events)
    assert digest == driver.book.state_digest()
    assert ["- | 100 | 5"] == driver.diagram()
    assert SELL is driver.book.order(1).side


def test_duplicate_id_of_a_done_order_is_rejected(driver):
    driver.limit(1, SELL, 5, 100)
    driver.cancel(1)

    events = driver.limit(1, SELL, 5, 100)

    assert [("rejected", 1, "duplicate_order_id")] == driver.summary(events)
    assert OrderStatus.CANCELED is driver.book.order(1).status


def test_rejected_event_reports_nothing_filled_and_status_rejected(driver):
    rejected = driver.limit(1, BUY, 0, 100)[0]

    assert isinstance(rejected, Rejected)
    assert (0, 0, 0, 0, OrderStatus.REJECTED) == (
        rejected.quantity,
        rejected.leaves,
        rejected.filled,
        rejected.notional,
        rejected.status,
    )
    assert rejected.text
    assert 0 == len(driver.book)


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("order_type", "quantity", "fields", "reason"),
    [
        (OrderType.LIMIT, 0, {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, -1, {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, 1.0, {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, True, {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, "1", {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, MAX_UNITS + 1, {"price": 100}, "invalid_quantity"),
        (OrderType.LIMIT, 1, {}, "missing_price"),
        (OrderType.LIMIT, 1, {"price": 0}, "invalid_price"),
        (OrderType.LIMIT, 1, {"price": -5}, "invalid_price"),
        (OrderType.LIMIT, 1, {"price": 100.0}, "invalid_price"),
        (OrderType.LIMIT, 1, {"price": MAX_UNITS + 1}, "invalid_price"),
        (OrderType.LIMIT, 1, {"price": 100, "stop_price": 90}, "invalid_price"),
        (OrderType.MARKET, 1, {"price": 100}, "invalid_price"),
        (OrderType.IOC, 1, {"price": 100, "post_only": True}, "invalid_order_type"),
        (OrderType.MARKET, 1, {"post_only": True}, "invalid_order_type"),
        (OrderType.STOP_LOSS, 1, {}, "missing_stop_price"),
        (OrderType.STOP_LOSS, 1, {"stop_price": 0}, "invalid_price"),
        (OrderType.STOP_LOSS, 1, {"stop_price": 90, "price": 95}, "invalid_price"),
        (OrderType.STOP_LIMIT, 1, {"stop_price": 90}, "missing_price"),
        (OrderType.TAKE_PROFIT_LIMIT, 1, {"price": 100}, "missing_stop_price"),
    ],
)
def test_new_order_with_an_invalid_field_is_rejected(driver, order_type, quantity, fields, reason):
    driver.limit(99, SELL, 1, 120)
    digest = driver.book.state_digest()

    events = driver.new(1, BUY, order_type, quantity, **fields)

    assert [("rejected", 1, reason)] == driver.summary(events)
    assert digest == driver.book.state_digest()
    assert driver.book.order(1) is None


def test_rejected_order_id_is_not_remembered(driver):
    driver.limit(1, BUY, 0, 100)

    events = driver.limit(1, BUY, 1, 100)

    assert [("accepted", 1), ("bbo", 100, 1, None, 0), ("depth",)] == driver.summary(events)


# -- symbol filters --------------------------------------------------------------------------------


@pytest.fixture
def filtered(make_driver):
    """A book whose symbol needs 0.001..1 BTC per order and at least 10 USDT of value."""
    spec = SymbolSpec.create(
        "BTC-USDT",
        "BTC",
        "USDT",
        "0.01",
        "0.00001",
        min_quantity="0.001",
        max_quantity="1",
        min_notional="10",
    )
    return make_driver(spec)


def test_spec_filters_are_held_in_ticks_and_lots(filtered):
    spec = filtered.spec

    assert (100, 100_000) == (spec.min_quantity, spec.max_quantity)
    assert 10 * 100 * 100_000 == spec.min_notional_tick_lots  # 10 USDT in tick-lots


def test_quantity_below_minimum_is_rejected(filtered):
    price = filtered.spec.price.to_units("20000")

    events = filtered.limit(1, BUY, 99, price)

    assert [("rejected", 1, "quantity_below_minimum")] == filtered.summary(events)


def test_quantity_at_minimum_and_at_maximum_is_accepted(filtered):
    price = filtered.spec.price.to_units("20000")

    low = filtered.limit(1, BUY, 100, price)
    high = filtered.limit(2, BUY, 100_000, price)

    assert ("accepted", 1) == filtered.summary(low)[0]
    assert ("accepted", 2) == filtered.summary(high)[0]


def test_quantity_above_maximum_is_rejected(filtered):
    price = filtered.spec.price.to_units("20000")

    events = filtered.limit(1, BUY, 100_001, price)

    assert [("rejected", 1, "quantity_above_maximum")] == filtered.summary(events)


def test_notional_below_minimum_is_rejected_and_at_minimum_accepted(filtered):
    spec = filtered.spec
    quantity = spec.quantity.to_units("0.001")

    too_small = filtered.limit(1, BUY, quantity, spec.price.to_units("9999.99"))  # 9.99999 USDT
    enough = filtered.limit(2, BUY, quantity, spec.price.to_units("10000"))  # 10 USDT

    assert [("rejected", 1, "notional_below_minimum")] == filtered.summary(too_small)
    assert ("accepted", 2) == filtered.summary(enough)[0]


def test_market_order_has_no_price_so_no_notional_check(filtered):
    events = filtered.market(1, BUY, 100)

    assert [("accepted", 1), ("expired", 1, "no_liquidity")] == filtered.summary(events)


def test_new_order_command_defaults(driver):
    command = NewOrder(1, "ann", BUY, OrderType.LIMIT, 1, price=100)

    assert SelfTradePrevention.CANCEL_NEWEST is command.stp
    assert (None, False, None, None) == (command.stop_price, command.post_only, command.fees, command.budget)
