"""Maker and taker fees on trades, and spending budgets of market buys."""



from __future__ import annotations

import pytest

from tradingapp.engine.events import Trade
from tradingapp.engine.fees import FeeRates, fee_amount
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderStatus, OrderType, Side

BUY, SELL = Side.BUY, Side.SELL


def trades_of(events):
    return [e for e in events if isinstance(e, Trade)]


# -- fees ------------------------------------------------------------------------------------------


def test_fees_are_the_rates_applied_to_the_quote_notional(driver):
    spec = driver.spec
    price, quantity = spec.price.to_units("30000.00"), spec.quantity.to_units("0.5")
    driver.limit(1, SELL, quantity, price, fees=FeeRates(maker=1000, taker=9999))  # 10 bps maker

    trade = trades_of(driver.market(2, BUY, quantity, fees=FeeRates(maker=1, taker=2500)))[0]  # 25 bps taker

    notional = spec.notional(price, quantity)
    assert 15000 * 10**spec.quote_places == notional  # 15,000 USDT in the quote asset's units
    assert notional * 10 // 10_000 == trade.maker_fee  # 15 USDT
    assert notional * 25 // 10_000 == trade.taker_fee  # 37.5 USDT
    assert (fee_amount(notional, 1000), fee_amount(notional, 2500)) == (trade.maker_fee, trade.taker_fee)


def test_fees_round_toward_zero_and_a_negative_maker_rate_is_a_rebate(driver):
    driver.limit(1, SELL, 1, 1_234_567, fees=FeeRates(maker=-150, taker=0))

    trade = trades_of(driver.market(2, BUY, 1, fees=FeeRates(maker=0, taker=333)))[0]

    assert 1_234_567 == driver.spec.notional(1_234_567, 1)
    assert -185 == trade.maker_fee  # -185.185..., not -186: a rebate never pays more
    assert 411 == trade.taker_fee  # 411.11..., not 412: a fee never charges more


def test_fees_use_the_makers_maker_rate_and_the_takers_taker_rate(make_driver):
    spec = SymbolSpec.create("ETH-USD", "ETH", "USD", "0.01", "0.001", quote_places=8)
    driver = make_driver(spec)
    driver.limit(1, BUY, 7, 300_001, fees=FeeRates(maker=-25, taker=700))
    driver.limit(2, BUY, 5, 300_000, fees=FeeRates(maker=40, taker=800))

    trades = trades_of(driver.market(3, SELL, 9, fees=FeeRates(maker=-999, taker=333)))

    assert 1000 == spec.quote_per_tick_lot
    expected = [
        (fee_amount(300_001 * 7 * 1000, -25), fee_amount(300_001 * 7 * 1000, 333)),
        (fee_amount(300_000 * 2 * 1000, 40), fee_amount(300_000 * 2 * 1000, 333)),
    ]
    assert expected == [(t.maker_fee, t.taker_fee) for t in trades]


def test_orders_without_fee_rates_pay_nothing(driver):
    driver.limit(1, SELL, 10, 5_000_000)

    trade = trades_of(driver.market(2, BUY, 10))[0]

    assert (0, 0) == (trade.maker_fee, trade.taker_fee)


# -- budgets ---------------------------------------------------------------------------------------


@pytest.fixture
def whole(make_driver):
    """A book with whole ticks and lots, one tick-lot worth 100 quote units (cents)."""
    return make_driver(SymbolSpec.create("ETH-USD", "ETH", "USD", "1", "1", quote_places=2))


def spent(events):
    """Return the quote units the taker paid, fees included."""
    return sum(t.price * t.quantity * 100 + t.taker_fee for t in trades_of(events))


def test_market_buy_stops_when_its_budget_is_spent_and_expires(whole):
    whole.limit(1, SELL, 5, 100)

    events = whole.market(2, BUY, 5, budget=25_000)  # each lot costs 10,000

    assert [
        ("accepted", 2),
        ("trade", 100, 2, 1, 2),
        ("expired", 2, "budget_exhausted"),
        ("bbo", None, 0, 100, 3),
        ("depth",),
    ] == whole.summary(events)
    assert 20_000 == spent(events)
    assert (5, 2, 0, OrderStatus.EXPIRED) == (
        events[2].quantity,
        events[2].filled,
        events[2].leaves,
        events[2].status,
    )


def test_budget_includes_the_taker_fee(whole):
    whole.limit(1, SELL, 5, 100)
    fees = FeeRates(maker=0, taker=5000)  # 0.5%: 50 per lot

    short = whole.market(2, BUY, 5, fees=fees, budget=20_099)
    exact = whole.market(3, BUY, 5, fees=fees, budget=20_100)

    assert [(100, 1, 1, 2)] == whole.trades(short)
    assert 10_050 == spent(short)
    assert [(100, 2, 1, 3)] == whole.trades(exact)
    assert 20_100 == spent(exact)
    assert "budget_exhausted" == whole.summary(exact)[-3][2]


def test_budget_across_levels_is_never_overspent(whole):
    whole.limit(1, SELL, 1, 100)
    whole.limit(2, SELL, 1, 101)
    whole.limit(3, SELL, 5, 102)

    events = whole.market(4, BUY, 7, budget=30_000)

    assert [(100, 1, 1, 4), (101, 1, 2, 4)] == whole.trades(events)
    assert ("expired", 4, "budget_exhausted") in whole.summary(events)
    assert 20_100 == spent(events)


def test_budget_too_small_for_one_lot_expires_without_trading(whole):
    whole.limit(1, SELL, 5, 100)
    digest = whole.book.state_digest()

    events = whole.market(2, BUY, 5, budget=9_999)

    assert [("accepted", 2), ("expired", 2, "budget_exhausted")] == whole.summary(events)
    assert digest == whole.book.state_digest()


def test_budget_large_enough_fills_the_order(whole):
    whole.limit(1, SELL, 5, 100)

    events = whole.market(2, BUY, 3, budget=10**9)

    assert [("accepted", 2), ("trade", 100, 3, 1, 2), ("bbo", None, 0, 100, 2), ("depth",)] == (
        whole.summary(events)
    )
    assert OrderStatus.FILLED is whole.book.order(2).status


def test_budget_with_no_liquidity_expires_for_no_liquidity(whole):
    events = whole.market(1, BUY, 3, budget=50_000)

    assert [("accepted", 1), ("expired", 1, "no_liquidity")] == whole.summary(events)


def test_budgeted_fok_that_cannot_pay_for_everything_is_not_fillable(whole):
    whole.limit(1, SELL, 5, 100)

    events = whole.new(2, BUY, OrderType.FOK, 3, budget=29_999)

    assert [("accepted", 2), ("expired", 2, "fok_not_fillable")] == whole.summary(events)


# Fee rounding makes one lot at a time cheaper than several in one fill: at 0.5% a lot costing 100
# pays no fee (0.5 rounds to 0), two lots in one fill pay 1. A budget of 200 buys one lot in one
# fill and still has 100, enough for another lot.


@pytest.fixture
def penny(make_driver):
    """One tick-lot worth 100 quote units, and 5 lots offered at 1 tick."""
    driver = make_driver(SymbolSpec.create("ETH-USD", "ETH", "USD", "1", "1", quote_places=2))
    driver.limit(1, SELL, 5, 1)
    return driver


def test_budget_stop_with_liquidity_left_is_reported_as_budget_exhausted(penny):
    events = penny.market(2, BUY, 5, fees=FeeRates(0, 5000), budget=200)

    assert 200 >= spent(events)
    assert ("expired", 2, "budget_exhausted") in penny.summary(events)
    assert ("expired", 2, "no_liquidity") not in penny.summary(events)


def test_budget_keeps_buying_while_what_is_left_pays_for_another_lot(penny):
    events = penny.market(2, BUY, 5, fees=FeeRates(0, 5000), budget=200)

    assert 200 == spent(events)
    assert 2 == penny.book.order(2).filled
