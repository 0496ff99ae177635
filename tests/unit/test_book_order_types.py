"""Market, IOC, FOK and post-only orders."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Expired
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side

BUY, SELL = Side.BUY, Side.SELL


# -- market ------------------------------------------------------------------------------------------


def test_market_order_into_empty_book_is_accepted_then_expires_for_no_liquidity(driver):
    events = driver.market(1, BUY, 5)

    assert [("accepted", 1), ("expired", 1, "no_liquidity")] == driver.summary(events)
    expired = events[1]
    assert (5, 0, 0, OrderStatus.EXPIRED) == (
        expired.quantity,
        expired.leaves,
        expired.filled,
        expired.status,
    )
    assert 0 == len(driver.book)
    assert 0 == driver.book.update_seq


def test_market_order_partially_filled_then_expires(driver):
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 1, 104)

    events = driver.market(3, BUY, 5)

    assert [
        ("accepted", 3),
        ("trade", 100, 2, 1, 3),
        ("trade", 104, 1, 2, 3),
        ("expired", 3, "no_liquidity"),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == driver.summary(events)
    expired = events[3]
    assert (5, 0, 3, 304) == (expired.quantity, expired.leaves, expired.filled, expired.notional)
    assert OrderStatus.EXPIRED is driver.book.order(3).status


def test_market_order_filled_completely_reports_no_expiry(driver):
    driver.limit(1, BUY, 4, 100)

    events = driver.market(2, SELL, 4)

    assert [("accepted", 2), ("trade", 100, 4, 1, 2), ("bbo", None, 0, None, 0), ("depth",)] == (
        driver.summary(events)
    )
    assert OrderStatus.FILLED is driver.book.order(2).status


def test_market_order_sweeps_any_price(driver):
    driver.limit(1, BUY, 1, 100)
    driver.limit(2, BUY, 1, 1)

    events = driver.market(3, SELL, 2)

    assert [(100, 1, 1, 3), (1, 1, 2, 3)] == driver.trades(events)


# -- IOC ---------------------------------------------------------------------------------------------


def test_ioc_with_price_trades_up_to_its_price_then_the_remainder_expires(driver):
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 2, 102)

    events = driver.new(3, BUY, OrderType.IOC, 5, 101)

    assert [
        ("accepted", 3),
        ("trade", 100, 2, 1, 3),
        ("expired", 3, "ioc_remainder"),
        ("bbo", None, 0, 102, 2),
        ("depth",),
    ] == driver.summary(events)
    assert ["- | 102 | 2"] == driver.diagram()
    assert (5, 2, 0) == (events[2].quantity, events[2].filled, events[2].leaves)
    assert (2, OrderStatus.EXPIRED) == (driver.book.order(3).filled, driver.book.order(3).status)


def test_ioc_with_price_and_nothing_in_reach_expires_without_trading(driver):
    driver.limit(1, SELL, 2, 102)

    events = driver.new(2, BUY, OrderType.IOC, 1, 101)

    assert [("accepted", 2), ("expired", 2, "ioc_remainder")] == driver.summary(events)
    assert ["- | 102 | 2"] == driver.diagram()


def test_ioc_filled_completely_does_not_expire(driver):
    driver.limit(1, BUY, 3, 100)

    events = driver.new(2, SELL, OrderType.IOC, 3, 100)

    assert [("accepted", 2), ("trade", 100, 3, 1, 2), ("bbo", None, 0, None, 0), ("depth",)] == (
        driver.summary(events)
    )


def test_ioc_without_price_acts_as_market(driver):
    driver.limit(1, BUY, 1, 100)
    driver.limit(2, BUY, 1, 50)

    events = driver.new(3, SELL, OrderType.IOC, 3)

    assert [
        ("accepted", 3),
        ("trade", 100, 1, 1, 3),
        ("trade", 50, 1, 2, 3),
        ("expired", 3, "no_liquidity"),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == driver.summary(events)


# -- FOK ---------------------------------------------------------------------------------------------


@pytest.fixture
def asks(driver):
    """Asks of 2 at 100, 2 at 101 and 2 at 102."""
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 2, 101)
    driver.limit(3, SELL, 2, 102)
    return driver


@pytest.mark.parametrize("price", [None, 102])
def test_fok_just_short_trades_nothing_and_leaves_the_book_unchanged(asks, price):
    digest = asks.book.state_digest()

    events = asks.new(4, BUY, OrderType.FOK, 7, price)

    assert [("accepted", 4), ("expired", 4, "fok_not_fillable")] == asks.summary(events)
    assert (7, 0, 0) == (events[1].quantity, events[1].leaves, events[1].filled)
    assert digest == asks.book.state_digest()
    assert ["- | 102 | 2", "- | 101 | 2", "- | 100 | 2"] == asks.diagram()
    assert asks.book.last_trade_price is None


@pytest.mark.parametrize("price", [None, 102])
def test_fok_with_exactly_enough_fills_completely(asks, price):
    events = asks.new(4, BUY, OrderType.FOK, 6, price)

    assert [(100, 2, 1, 4), (101, 2, 2, 4), (102, 2, 3, 4)] == asks.trades(events)
    assert not [e for e in events if isinstance(e, Expired)]
    assert OrderStatus.FILLED is asks.book.order(4).status
    assert [] == asks.diagram()


def test_fok_with_price_counts_only_liquidity_within_its_price(asks):
    events = asks.new(4, BUY, OrderType.FOK, 5, 101)

    assert [("accepted", 4), ("expired", 4, "fok_not_fillable")] == asks.summary(events)
    assert 6 == sum(level[1] for level in asks.book.depth()[1])


def test_fok_with_price_filled_within_its_price(asks):
    events = asks.new(4, BUY, OrderType.FOK, 3, 101)

    assert [(100, 2, 1, 4), (101, 1, 2, 4)] == asks.trades(events)
    assert ["- | 102 | 2", "- | 101 | 1"] == asks.diagram()


def test_fok_sell_without_price(driver):
    driver.limit(1, BUY, 2, 100)
    driver.limit(2, BUY, 2, 99)

    short = driver.new(3, SELL, OrderType.FOK, 5)
    enough = driver.new(4, SELL, OrderType.FOK, 4)

    assert [("accepted", 3), ("expired", 3, "fok_not_fillable")] == driver.summary(short)
    assert [(100, 2, 1, 4), (99, 2, 2, 4)] == driver.trades(enough)


def test_fok_that_would_meet_its_own_order_is_not_fillable(driver):
    driver.limit(1, SELL, 2, 100, account="ann")
    driver.limit(2, SELL, 5, 101, account="bob")
    digest = driver.book.state_digest()

    events = driver.new(3, BUY, OrderType.FOK, 3, account="ann", stp=SelfTradePrevention.CANCEL_NEWEST)

    assert [("accepted", 3), ("expired", 3, "fok_not_fillable")] == driver.summary(events)
    assert digest == driver.book.state_digest()


def test_fok_with_cancel_oldest_passes_over_its_own_orders(driver):
    driver.limit(1, SELL, 2, 100, account="ann")
    driver.limit(2, SELL, 3, 101, account="bob")

    events = driver.new(3, BUY, OrderType.FOK, 3, account="ann", stp=SelfTradePrevention.CANCEL_OLDEST)

    assert [
        ("accepted", 3),
        ("expired", 1, "self_trade_prevention"),
        ("trade", 101, 3, 2, 3),
        ("bbo", None, 0, None, 0),
        ("depth",),
    ] == driver.summary(events)


# -- post-only ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("side", "price"), [(BUY, 101), (BUY, 105), (SELL, 99), (SELL, 90)])
def test_post_only_that_would_take_is_rejected_and_leaves_the_book_unchanged(driver, side, price):
    driver.limit(1, BUY, 1, 99)
    driver.limit(2, SELL, 1, 101)
    digest = driver.book.state_digest()

    events = driver.limit(3, side, 1, price, post_only=True)

    assert [("rejected", 3, "post_only_would_take")] == driver.summary(events)
    assert digest == driver.book.state_digest()
    assert driver.book.last_trade_price is None
    refused = driver.book.order(3)  # a well-formed order refused by a rule: remembered as done
    assert refused is not None
    assert (OrderStatus.REJECTED, 0, 0) == (refused.status, refused.leaves, refused.filled)
    assert 2 == len(driver.book)


def test_post_only_that_would_take_only_from_its_own_account_is_still_rejected(driver):
    driver.limit(1, SELL, 1, 101, account="ann")

    events = driver.limit(2, BUY, 1, 101, account="ann", post_only=True)

    assert [("rejected", 2, "post_only_would_take")] == driver.summary(events)


@pytest.mark.parametrize(("side", "price"), [(BUY, 100), (SELL, 100)])
def test_post_only_that_does_not_cross_rests(driver, side, price):
    driver.limit(1, BUY, 1, 99)
    driver.limit(2, SELL, 1, 101)

    events = driver.limit(3, side, 4, price, post_only=True)

    assert ("accepted", 3) == driver.summary(events)[0]
    assert not driver.trades(events)
    assert OrderStatus.NEW is driver.book.order(3).status
    assert 4 == driver.book.order(3).leaves


def test_post_only_into_empty_book_rests(driver):
    events = driver.limit(1, SELL, 2, 100, post_only=True)

    assert [("accepted", 1), ("bbo", None, 0, 100, 2), ("depth",)] == driver.summary(events)
