"""Stop and take-profit orders: triggers on the last trade price, amendments, and cascades."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Triggered
from tradingapp.engine.types import OrderStatus, OrderType, Side

BUY, SELL = Side.BUY, Side.SELL
STOP_LOSS, STOP_LIMIT = OrderType.STOP_LOSS, OrderType.STOP_LIMIT
TAKE_PROFIT, TAKE_PROFIT_LIMIT = OrderType.TAKE_PROFIT, OrderType.TAKE_PROFIT_LIMIT


def trade_at(driver, order_id, price):
    """Print one lot at ``price`` between two market makers (ids ``order_id`` and ``order_id + 1``)."""
    driver.limit(order_id, SELL, 1, price, account="mm-sell")
    return driver.market(order_id + 1, BUY, 1, account="mm-buy")


def triggered_ids(events):
    return [e.order.order_id for e in events if isinstance(e, Triggered)]


@pytest.fixture
def last_100(driver):
    """A book whose last trade printed at 100, and nothing resting."""
    trade_at(driver, 900, 100)
    assert 100 == driver.book.last_trade_price
    return driver


# (side, type, stop price, the last price one tick early, limit price for the *_limit types)
TRIGGERS = [
    (SELL, STOP_LOSS, 98, 99),
    (SELL, STOP_LIMIT, 98, 99),
    (BUY, STOP_LOSS, 102, 101),
    (BUY, STOP_LIMIT, 102, 101),
    (SELL, TAKE_PROFIT, 102, 101),
    (SELL, TAKE_PROFIT_LIMIT, 102, 101),
    (BUY, TAKE_PROFIT, 98, 99),
    (BUY, TAKE_PROFIT_LIMIT, 98, 99),
]


def place_stop(driver, order_id, side, order_type, stop, quantity=1, **fields):
    price = fields.pop("price", stop) if order_type.needs_price else None
    return driver.new(order_id, side, order_type, quantity, price, stop_price=stop, **fields)


@pytest.mark.parametrize(("side", "order_type", "stop", "early"), TRIGGERS)
def test_stop_triggers_when_the_last_price_reaches_its_stop_and_not_a_tick_early(
    last_100, side, order_type, stop, early
):
    accepted = place_stop(last_100, 1, side, order_type, stop)

    not_yet = trade_at(last_100, 10, early)
    reached = trade_at(last_100, 20, stop)

    assert [("accepted", 1)] == last_100.summary(accepted)
    assert [] == triggered_ids(not_yet)
    assert [1] == triggered_ids(reached)
    triggered = next(e for e in reached if isinstance(e, Triggered))
    assert (1, 1, 0, OrderStatus.NEW, stop) == (
        triggered.quantity,
        triggered.leaves,
        triggered.filled,
        triggered.status,
        triggered.trigger_price,
    )


@pytest.mark.parametrize(("side", "order_type", "stop", "early"), TRIGGERS)
def test_stop_triggers_when_the_last_price_passes_its_stop(last_100, side, order_type, stop, early):
    place_stop(last_100, 1, side, order_type, stop)
    beyond = stop + (stop - early)

    events = trade_at(last_100, 10, beyond)

    assert [1] == triggered_ids(events)


@pytest.mark.parametrize(("side", "order_type", "stop", "early"), TRIGGERS)
def test_stop_whose_condition_already_holds_is_rejected(last_100, side, order_type, stop, early):
    at_last = place_stop(last_100, 1, side, order_type, 100)
    beyond = place_stop(last_100, 2, side, order_type, 100 - (stop - 100))

    assert [("rejected", 1, "would_trigger_immediately")] == last_100.summary(at_last)
    assert [("rejected", 2, "would_trigger_immediately")] == last_100.summary(beyond)
    assert 0 == len(last_100.book)


@pytest.mark.parametrize(("side", "order_type", "stop", "early"), TRIGGERS)
def test_stop_before_any_trade_is_accepted_whatever_its_stop(driver, side, order_type, stop, early):
    events = place_stop(driver, 1, side, order_type, 100 - (stop - 100))

    assert [("accepted", 1)] == driver.summary(events)
    assert 1 == len(driver.book)


def test_untriggered_stops_are_not_in_bbo_or_depth(last_100):
    last_100.limit(1, BUY, 2, 99)
    seq = last_100.book.update_seq

    events = place_stop(last_100, 2, SELL, STOP_LIMIT, 95, quantity=5, price=101)
    place_stop(last_100, 3, BUY, TAKE_PROFIT, 97, quantity=5)

    assert [("accepted", 2)] == last_100.summary(events)
    assert (99, 2, None, 0) == last_100.book.bbo()
    assert ([(99, 2)], []) == last_100.book.depth()
    assert seq == last_100.book.update_seq
    assert [2] == [o.order_id for o in last_100.book.open_orders("acct-2")]


def test_quotes_alone_never_trigger_a_stop(last_100):
    place_stop(last_100, 1, BUY, STOP_LOSS, 102)

    events = last_100.limit(2, BUY, 1, 105)

    assert [] == triggered_ids(events)
    assert OrderStatus.NEW is last_100.book.order(1).status


# -- what a triggered order does -----------------------------------------------------------------


def test_triggered_stop_loss_trades_as_market_and_its_remainder_expires(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 99, quantity=5)
    last_100.limit(2, BUY, 2, 97)
    last_100.limit(3, BUY, 1, 95)

    events = trade_at(last_100, 10, 99)

    assert [
        ("accepted", 11),
        ("trade", 99, 1, 10, 11),
        ("triggered", 1),
        ("trade", 97, 2, 2, 1),
        ("trade", 95, 1, 3, 1),
        ("expired", 1, "no_liquidity"),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == last_100.summary(events)
    assert 95 == last_100.book.last_trade_price


def test_triggered_stop_limit_trades_up_to_its_price_and_rests_the_rest(last_100):
    place_stop(last_100, 1, SELL, STOP_LIMIT, 99, quantity=5, price=97)
    last_100.limit(2, BUY, 2, 98)
    last_100.limit(3, BUY, 1, 96)

    events = trade_at(last_100, 10, 99)

    assert [
        ("accepted", 11),
        ("trade", 99, 1, 10, 11),
        ("triggered", 1),
        ("trade", 98, 2, 2, 1),
        ("bbo", 96, 1, 97, 3),
        ("depth",),
    ] == last_100.summary(events)
    order = last_100.book.order(1)
    assert (5, 2, 3, 97, OrderStatus.PARTIALLY_FILLED) == (
        order.quantity,
        order.filled,
        order.leaves,
        order.price,
        order.status,
    )
    assert ["- | 97 | 3", "1 | 96 | -"] == last_100.diagram()
    assert [1] == [o.order_id for o in last_100.book.open_orders("acct-1")]


def test_triggered_take_profit_limit_rests_at_its_price(last_100):
    place_stop(last_100, 1, SELL, TAKE_PROFIT_LIMIT, 101, quantity=2, price=104)

    events = trade_at(last_100, 10, 101)

    assert [1] == triggered_ids(events)
    assert ["- | 104 | 2"] == last_100.diagram()


def test_triggered_stop_can_be_cancelled_once_resting(last_100):
    place_stop(last_100, 1, BUY, STOP_LIMIT, 101, quantity=2, price=99)
    trade_at(last_100, 10, 101)

    events = last_100.cancel(1)

    assert ("canceled", 1, "canceled_by_user") == last_100.summary(events)[0]
    assert [] == last_100.diagram()


# -- cancel and replace while waiting ------------------------------------------------------------


def test_cancelled_stop_never_triggers(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 99)
    last_100.cancel(1)

    events = trade_at(last_100, 10, 95)

    assert [] == triggered_ids(events)
    assert OrderStatus.CANCELED is last_100.book.order(1).status


def test_replace_of_stop_price_moves_the_trigger(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 99)

    events = last_100.replace(1, stop_price=97)
    old_stop = trade_at(last_100, 10, 99)
    new_stop = trade_at(last_100, 20, 97)

    assert [("replaced", 1, "lost")] == last_100.summary(events)
    assert 97 == last_100.book.order(1).stop_price
    assert [] == triggered_ids(old_stop)
    assert [1] == triggered_ids(new_stop)


def test_replace_of_stop_price_to_one_already_reached_is_refused(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 99)

    events = last_100.replace(1, stop_price=100)

    assert [("cancel_rejected", 1, "would_trigger_immediately")] == last_100.summary(events)
    assert 99 == last_100.book.order(1).stop_price


def test_replace_of_price_and_quantity_of_a_waiting_stop_limit(last_100):
    place_stop(last_100, 1, BUY, STOP_LIMIT, 101, quantity=2, price=101)

    events = last_100.replace(1, price=103, quantity=4)
    trade_at(last_100, 10, 101)

    assert [("replaced", 1, "lost")] == last_100.summary(events)
    assert (4, 4) == (events[0].quantity, events[0].leaves)
    assert ["4 | 103 | -"] == last_100.diagram()


def test_waiting_stops_with_one_stop_price_trigger_in_arrival_order(last_100):
    for order_id in (1, 2, 3):
        place_stop(last_100, order_id, SELL, STOP_LOSS, 99)

    events = trade_at(last_100, 10, 99)

    assert [1, 2, 3] == triggered_ids(events)


@pytest.mark.parametrize(
    ("change", "kept", "order"),
    [
        ({"quantity": 2}, "kept", [1, 2]),  # a quantity decrease keeps the place
        # among waiting stops only the stop price and the quantity compete; the limit price
        # matters from the trigger on, so changing it alone keeps the place too
        ({"price": 98}, "kept", [1, 2]),
        ({"quantity": 4}, "lost", [2, 1]),  # a quantity increase goes to the back
    ],
)
def test_a_waiting_stops_place_among_its_peers_after_a_replace(last_100, change, kept, order):
    place_stop(last_100, 1, SELL, STOP_LIMIT, 99, quantity=3, price=99)
    place_stop(last_100, 2, SELL, STOP_LIMIT, 99, quantity=3, price=99)

    events = last_100.replace(1, **change)
    triggered = trade_at(last_100, 10, 99)

    assert [("replaced", 1, kept)] == last_100.summary(events)
    assert order == triggered_ids(triggered)


def test_new_stop_price_of_a_waiting_stop_loses_its_place_even_when_it_comes_back(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 99)
    place_stop(last_100, 2, SELL, STOP_LOSS, 99)

    last_100.replace(1, stop_price=98)
    events = last_100.replace(1, stop_price=99)
    triggered = trade_at(last_100, 10, 99)

    assert [("replaced", 1, "lost")] == last_100.summary(events)
    assert [2, 1] == triggered_ids(triggered)


# -- several stops at once, and cascades -----------------------------------------------------------


def test_rising_stops_released_together_trigger_by_ascending_stop_price_then_arrival(last_100):
    place_stop(last_100, 1, BUY, STOP_LOSS, 103)
    place_stop(last_100, 2, BUY, STOP_LOSS, 102)
    place_stop(last_100, 3, SELL, TAKE_PROFIT, 102)
    place_stop(last_100, 4, BUY, STOP_LOSS, 101)
    last_100.limit(5, SELL, 1, 101)
    last_100.limit(6, SELL, 1, 103)

    events = last_100.market(7, BUY, 2)

    assert [4, 2, 3, 1] == triggered_ids(events)


def test_falling_stops_released_together_trigger_by_descending_stop_price_then_arrival(last_100):
    place_stop(last_100, 1, SELL, STOP_LOSS, 97)
    place_stop(last_100, 2, SELL, STOP_LOSS, 98)
    place_stop(last_100, 3, BUY, TAKE_PROFIT, 98)
    place_stop(last_100, 4, SELL, STOP_LOSS, 99)
    last_100.limit(5, BUY, 1, 99)
    last_100.limit(6, BUY, 1, 97)

    events = last_100.market(7, SELL, 2)

    assert [4, 2, 3, 1] == triggered_ids(events)


@pytest.fixture
def cascade(last_100):
    """Bids of 1 at 99, 98 and 97 and 10 at 96; sell stops A=1 (98), B=2 (99), C=3 (97), D=4 (96)."""
    last_100.limit(11, BUY, 1, 99)
    last_100.limit(12, BUY, 1, 98)
    last_100.limit(13, BUY, 1, 97)
    last_100.limit(14, BUY, 10, 96)
    place_stop(last_100, 1, SELL, STOP_LOSS, 98)
    place_stop(last_100, 2, SELL, STOP_LOSS, 99)
    place_stop(last_100, 3, SELL, STOP_LOSS, 97)
    place_stop(last_100, 4, SELL, STOP_LOSS, 96)
    return last_100


def test_cascade_runs_triggered_stops_first_in_first_out_across_levels(cascade):
    events = cascade.market(20, SELL, 2)

    # the market order prints 99 and 98: B (99) and A (98) trigger, B first; B prints 97, which
    # triggers C behind A; A prints 96, which triggers D behind C
    assert [
        ("accepted", 20),
        ("trade", 99, 1, 11, 20),
        ("trade", 98, 1, 12, 20),
        ("triggered", 2),
        ("trade", 97, 1, 13, 2),
        ("triggered", 1),
        ("trade", 96, 1, 14, 1),
        ("triggered", 3),
        ("trade", 96, 1, 14, 3),
        ("triggered", 4),
        ("trade", 96, 1, 14, 4),
        ("bbo", 96, 7, None, 0),
        ("depth",),
    ] == cascade.summary(events)
    assert 96 == cascade.book.last_trade_price
    assert 0 == len([o for o in (1, 2, 3, 4) if cascade.book.order(o).status.is_open])
    assert ["7 | 96 | -"] == cascade.diagram()


def test_triggered_event_reports_the_last_price_that_triggered_the_stop(cascade):
    events = cascade.market(20, SELL, 2)

    prices = {e.order.order_id: e.trigger_price for e in events if isinstance(e, Triggered)}
    assert {2: 98, 1: 98, 3: 97, 4: 96} == prices


def test_triggered_event_reports_a_price_that_meets_the_stops_condition(driver):
    # Stops entered before any trade: the first print (100) releases a rising and a falling one.
    place_stop(driver, 1, BUY, STOP_LOSS, 100)
    place_stop(driver, 2, SELL, STOP_LOSS, 105)
    driver.limit(3, SELL, 1, 100)
    driver.limit(4, SELL, 5, 110)

    events = driver.market(5, BUY, 1)

    triggered = [e for e in events if isinstance(e, Triggered)]
    assert [1, 2] == sorted(e.order.order_id for e in triggered)
    for event in triggered:
        rising = (event.order.order_type is STOP_LOSS) == (event.order.side is BUY)
        stop = event.order.stop_price
        assert event.trigger_price >= stop if rising else event.trigger_price <= stop, event
