"""Self-trade prevention: the incoming order's mode decides what happens when it meets its own account."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Restated
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

BUY, SELL = Side.BUY, Side.SELL
NONE = SelfTradePrevention.NONE
CANCEL_NEWEST = SelfTradePrevention.CANCEL_NEWEST
CANCEL_OLDEST = SelfTradePrevention.CANCEL_OLDEST
CANCEL_BOTH = SelfTradePrevention.CANCEL_BOTH
DECREMENT = SelfTradePrevention.DECREMENT


@pytest.fixture
def own_ask(driver):
    """Ann's ask of 3 at 100, behind nothing; Bob's ask of 4 at 101."""
    driver.limit(1, SELL, 3, 100, account="ann")
    driver.limit(2, SELL, 4, 101, account="bob")
    return driver


def test_stp_none_lets_an_account_trade_with_itself(own_ask):
    events = own_ask.limit(3, BUY, 3, 100, account="ann", stp=NONE)

    assert [(100, 3, 1, 3)] == own_ask.trades(events)


def test_stp_cancel_newest_is_the_default_and_expires_the_incoming_order(own_ask):
    digest_before = own_ask.book.state_digest()

    events = own_ask.market(3, BUY, 5, account="ann")

    assert [("accepted", 3), ("expired", 3, "self_trade_prevention")] == own_ask.summary(events)
    assert (5, 0, 0) == (events[1].quantity, events[1].leaves, events[1].filled)
    assert digest_before == own_ask.book.state_digest()
    assert OrderStatus.NEW is own_ask.book.order(1).status


def test_stp_cancel_newest_after_trading_with_others_keeps_those_fills(driver):
    driver.limit(1, SELL, 2, 100, account="bob")
    driver.limit(2, SELL, 3, 100, account="ann")
    driver.limit(3, SELL, 3, 100, account="cyd")

    events = driver.limit(4, BUY, 6, 100, account="ann", stp=CANCEL_NEWEST)

    assert [
        ("accepted", 4),
        ("trade", 100, 2, 1, 4),
        ("expired", 4, "self_trade_prevention"),
        ("bbo", None, 0, 100, 6),
        ("depth",),
    ] == driver.summary(events)
    assert (6, 0, 2) == (events[2].quantity, events[2].leaves, events[2].filled)
    assert ["- | 100 | 6"] == driver.diagram()


def test_stp_cancel_oldest_expires_the_resting_order_and_matching_goes_on(own_ask):
    events = own_ask.limit(3, BUY, 5, 101, account="ann", stp=CANCEL_OLDEST)

    assert [
        ("accepted", 3),
        ("expired", 1, "self_trade_prevention"),
        ("trade", 101, 4, 2, 3),
        ("bbo", 101, 1, None, 0),
        ("depth",),
    ] == own_ask.summary(events)
    assert (3, 0, 0, OrderStatus.EXPIRED) == (
        events[1].quantity,
        events[1].leaves,
        events[1].filled,
        events[1].status,
    )
    assert ["1 | 101 | -"] == own_ask.diagram()


def test_stp_cancel_both_expires_both_orders(own_ask):
    events = own_ask.limit(3, BUY, 5, 101, account="ann", stp=CANCEL_BOTH)

    assert [
        ("accepted", 3),
        ("expired", 1, "self_trade_prevention"),
        ("expired", 3, "self_trade_prevention"),
        ("bbo", None, 0, 101, 4),
        ("depth",),
    ] == own_ask.summary(events)
    assert ["- | 101 | 4"] == own_ask.diagram()
    assert 1 == len(own_ask.book)


def test_stp_decrement_with_a_smaller_incoming_order_reduces_the_resting_one(own_ask):
    events = own_ask.limit(3, BUY, 2, 101, account="ann", stp=DECREMENT)

    assert [
        ("accepted", 3),
        ("restated", 1, "self_trade_prevention"),
        ("expired", 3, "self_trade_prevention"),
        ("bbo", None, 0, 100, 1),
        ("depth",),
    ] == own_ask.summary(events)
    restated = events[1]
    assert isinstance(restated, Restated)
    assert (1, 1, 0, OrderStatus.NEW) == (
        restated.quantity,
        restated.leaves,
        restated.filled,
        restated.status,
    )
    assert (0, 0, 0) == (events[2].quantity, events[2].leaves, events[2].filled)
    assert not own_ask.trades(events)


def test_stp_decrement_with_a_larger_incoming_order_expires_the_resting_one_and_goes_on(own_ask):
    events = own_ask.limit(3, BUY, 5, 101, account="ann", stp=DECREMENT)

    assert [
        ("accepted", 3),
        ("expired", 1, "self_trade_prevention"),
        ("restated", 3, "self_trade_prevention"),
        ("trade", 101, 2, 2, 3),
        ("bbo", None, 0, 101, 2),
        ("depth",),
    ] == own_ask.summary(events)
    assert (2, 2, 0) == (events[2].quantity, events[2].leaves, events[2].filled)
    order = own_ask.book.order(3)
    assert (2, 2, 0, OrderStatus.FILLED) == (order.quantity, order.filled, order.leaves, order.status)


def test_stp_decrement_with_equal_quantities_expires_both(own_ask):
    events = own_ask.limit(3, BUY, 3, 100, account="ann", stp=DECREMENT)

    assert [
        ("accepted", 3),
        ("expired", 1, "self_trade_prevention"),
        ("expired", 3, "self_trade_prevention"),
        ("bbo", None, 0, 101, 4),
        ("depth",),
    ] == own_ask.summary(events)


def test_stp_decrement_of_a_partially_filled_resting_order_keeps_its_fills(driver):
    driver.limit(1, SELL, 5, 100, account="ann")
    driver.market(2, BUY, 2, account="bob")

    events = driver.limit(3, BUY, 1, 100, account="ann", stp=DECREMENT)

    restated = events[1]
    assert ("restated", 1, "self_trade_prevention") == driver.summary(events)[1]
    assert (4, 2, 2) == (restated.quantity, restated.leaves, restated.filled)
    assert ["- | 100 | 2"] == driver.diagram()


@pytest.mark.parametrize("resting_mode", [NONE, CANCEL_OLDEST, CANCEL_BOTH, DECREMENT])
def test_the_incoming_orders_mode_decides_not_the_resting_ones(driver, resting_mode):
    driver.limit(1, SELL, 3, 100, account="ann", stp=resting_mode)

    events = driver.limit(2, BUY, 3, 100, account="ann", stp=CANCEL_NEWEST)

    assert [("accepted", 2), ("expired", 2, "self_trade_prevention")] == driver.summary(events)
    assert ["- | 100 | 3"] == driver.diagram()


def test_incoming_mode_none_trades_even_when_the_resting_order_has_a_mode(driver):
    driver.limit(1, SELL, 3, 100, account="ann", stp=CANCEL_BOTH)

    events = driver.limit(2, BUY, 3, 100, account="ann", stp=NONE)

    assert [(100, 3, 1, 2)] == driver.trades(events)


@pytest.mark.parametrize("mode", list(SelfTradePrevention))
def test_stp_never_applies_between_different_accounts(driver, mode):
    driver.limit(1, SELL, 3, 100, account="ann")

    events = driver.limit(2, BUY, 3, 100, account="bob", stp=mode)

    assert [(100, 3, 1, 2)] == driver.trades(events)


def test_stp_on_a_market_order_with_cancel_oldest_clears_own_orders_across_levels(driver):
    driver.limit(1, BUY, 1, 100, account="ann")
    driver.limit(2, BUY, 1, 99, account="ann")
    driver.limit(3, BUY, 2, 98, account="bob")

    events = driver.new(4, SELL, OrderType.MARKET, 2, account="ann", stp=CANCEL_OLDEST)

    assert [
        ("accepted", 4),
        ("expired", 1, "self_trade_prevention"),
        ("expired", 2, "self_trade_prevention"),
        ("trade", 98, 2, 3, 4),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == driver.summary(events)
