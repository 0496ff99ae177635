"""Phase 2: fills settle at the trade price, fees and rebates, budgets, self-trade restatements."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.test_risk_support import (
    BTC,
    BUY,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_LOSS,
    Harness,
    buffered,
    custom_config,
    fee,
)
from tradingapp.engine.events import Triggered
from tradingapp.engine.types import SelfTradePrevention

D = Decimal


# -- the worked examples of docs/risk.md --------------------------------------------------------------


def test_worked_example_1_a_limit_buy_fills_below_its_price_and_the_improvement_is_released():
    h = Harness()
    u = h.units
    bob_usdt = h.total("bob", "USDT")
    alice_usdt, alice_btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    h.limit("bob", BTC, SELL, "0.2", "29990")

    admitted = h.admit("alice", BTC, BUY, LIMIT, h.qty(BTC, "0.5"), h.px(BTC, "30000"))
    assert u("USDT", "15003") == admitted.held
    available_before = h.available("alice", "USDT")
    h.run(admitted)

    [trade] = admitted.trades()
    assert (h.px(BTC, "29990"), h.qty(BTC, "0.2")) == (trade.price, trade.quantity)  # the maker's price
    assert (u("USDT", "0.5998"), u("USDT", "1.1996")) == (trade.maker_fee, trade.taker_fee)
    spent = u("USDT", "5999.1996")
    hold = u("USDT", "9001.8")  # 0.3 * 30,000 * 1.0002
    assert (alice_usdt - spent, alice_usdt - spent - hold, hold) == h.balance("alice", "USDT")
    assert u("USDT", "2.0004") == h.available("alice", "USDT") - available_before
    assert alice_btc + u("BTC", "0.2") == h.total("alice", "BTC")
    assert (bob_usdt + u("USDT", "5997.4002"), 0) == (h.total("bob", "USDT"), h.reserved("bob", "USDT"))
    assert (u("BTC", "99.8"), 0) == (h.total("bob", "BTC"), h.reserved("bob", "BTC"))
    assert u("USDT", "1.7994") == h.total("fees", "USDT")


def test_worked_example_2_a_sell_filled_as_maker_receives_notional_minus_its_fee():
    h = Harness()
    u = h.units
    alice_usdt, bob_usdt = h.total("alice", "USDT"), h.total("bob", "USDT")
    sell = h.limit("alice", BTC, SELL, "1", "30000")
    assert u("BTC", "1") == sell.held == h.reserved("alice", "BTC")

    h.limit("bob", BTC, BUY, "1", "30000")

    assert (u("BTC", "99"), 0) == (h.total("alice", "BTC"), h.reserved("alice", "BTC"))
    assert alice_usdt + u("USDT", "29997") == h.total("alice", "USDT")
    assert (bob_usdt - u("USDT", "30006"), 0) == (h.total("bob", "USDT"), h.reserved("bob", "USDT"))
    assert u("USDT", "9") == h.total("fees", "USDT")


# -- fees: configured rates, overrides, rebates, rounding toward zero ---------------------------------

FILLS = [("30000.01", "0.00007"), ("12345.67", "0.00013"), ("0.01", "0.00001"), ("99999.99", "0.12345")]
PAIRS = [
    # maker account, its maker bps, taker account, its taker bps
    ("alice", "1", "bob", "2"),  # [fees] defaults
    ("odd", "3.33", "alice", "2"),  # per-account override, maker side
    ("alice", "1", "odd", "0.77"),  # per-account override, taker side
    ("mm", "-0.5", "alice", "2"),  # a maker rebate
    ("odd", "3.33", "mm", "2"),
]


@pytest.mark.parametrize("maker_side", [SELL, BUY])
@pytest.mark.parametrize(("maker", "maker_bps", "taker", "taker_bps"), PAIRS)
@pytest.mark.parametrize(("price", "quantity"), FILLS)
def test_each_fill_moves_notional_and_fees_exactly(
    maker, maker_bps, taker, taker_bps, price, quantity, maker_side
):
    h = Harness(custom_config())
    start = {a: (h.total(a, "USDT"), h.total(a, "BTC")) for a in (maker, taker)}
    notional = h.notional(BTC, price, quantity)
    maker_fee, taker_fee = fee(notional, maker_bps), fee(notional, taker_bps)
    base = h.units("BTC", quantity)

    h.limit(maker, BTC, maker_side, quantity, price)
    taker_side = BUY if maker_side is SELL else SELL
    result = h.new(taker, BTC, taker_side, MARKET, h.qty(BTC, quantity))

    [trade] = result.trades()
    assert (maker_fee, taker_fee) == (trade.maker_fee, trade.taker_fee)
    for account, account_fee, side in ((maker, maker_fee, maker_side), (taker, taker_fee, taker_side)):
        usdt, btc = start[account]
        if side is BUY:
            assert (usdt - notional - account_fee, btc + base) == (
                h.total(account, "USDT"),
                h.total(account, "BTC"),
            )
        else:
            assert (usdt + notional - account_fee, btc - base) == (
                h.total(account, "USDT"),
                h.total(account, "BTC"),
            )
        assert (0, 0) == (h.reserved(account, "USDT"), h.reserved(account, "BTC"))
    assert maker_fee + taker_fee == h.total("fees", "USDT")
    assert h.total("fees", "USDT") >= 0


def test_a_rebate_is_rounded_toward_zero_and_paid_out_of_the_fee_account():
    h = Harness(custom_config())
    mm_usdt = h.total("mm", "USDT")
    h.limit("mm", BTC, SELL, "0.00007", "30000.01")

    h.limit("alice", BTC, BUY, "0.00007", "30000.01")

    # 21,000,007 units: rebate 1,050.00035 -> 1,050 (never 1,051); the taker's fee 4,200.0014 -> 4,200
    assert mm_usdt + 21_000_007 + 1_050 == h.total("mm", "USDT")
    assert 4_200 - 1_050 == h.total("fees", "USDT")


def test_a_maker_buy_with_a_rebate_pays_less_than_the_notional_and_its_hold_is_released():
    h = Harness(custom_config())
    mm_usdt = h.total("mm", "USDT")
    bid = h.limit("mm", BTC, BUY, "0.00007", "30000.01")
    assert 21_000_007 + 4_200 == bid.held  # the worse of -0.5 and 2 bps

    h.limit("alice", BTC, SELL, "0.00007", "30000.01")

    assert (mm_usdt - 21_000_007 + 1_050, 0) == (h.total("mm", "USDT"), h.reserved("mm", "USDT"))


def test_a_self_trade_without_prevention_pays_both_fees():
    h = Harness()
    usdt, btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    h.limit("alice", BTC, SELL, "0.001", "30000")

    h.limit("alice", BTC, BUY, "0.001", "30000", stp=SelfTradePrevention.NONE)

    fees = h.units("USDT", "0.003") + h.units("USDT", "0.006")  # maker 1 bps + taker 2 bps of 30 USDT
    assert (usdt - fees, btc) == (h.total("alice", "USDT"), h.total("alice", "BTC"))
    assert fees == h.total("fees", "USDT")


# -- market buys: the budget never overdraws ----------------------------------------------------------


def spend(
    h: Harness, budget: int, asks: list[tuple[str, str]], taker_bps: str, want: str
) -> tuple[int, int, bool]:
    """Walk ``asks`` (price, quantity) in order buying what ``budget`` affords, lot by lot, in Decimal.

    Returns ``(lots bought, quote spent, stopped by the budget)``.
    """
    need = h.qty(BTC, want)
    bought = spent = 0

    def cost(price: str, lots: int) -> int:
        notional = h.notional(BTC, price, str(D(lots) * D("0.00001")))
        return notional + fee(notional, taker_bps)

    for price, quantity in asks:
        offered = min(h.qty(BTC, quantity), need - bought)
        take = offered
        while take and cost(price, take) > budget - spent:
            take -= 1
        if take:
            spent += cost(price, take)
            bought += take
        if bought == need:
            return bought, spent, False
        if take < offered:
            return bought, spent, True
    return bought, spent, False


def test_a_market_buy_into_a_deep_book_stops_when_its_budget_is_spent():
    h = Harness(custom_config())
    asks = [("30000", "0.001"), ("30000", "0.001"), ("30010.5", "0.002"), ("30020", "0.05")]
    for price, quantity in asks:
        h.limit("bob", BTC, SELL, quantity, price)
    budget = h.total("poor", "USDT")
    poor_btc = h.total("poor", "BTC")

    admitted = h.admit("poor", BTC, BUY, MARKET, h.qty(BTC, "1"))
    assert budget == admitted.held
    h.run(admitted)

    bought, spent, exhausted = spend(h, budget, asks, "2", "1")
    assert exhausted
    assert (h.qty(BTC, "0.00333"), h.units("USDT", "99.9339477")) == (bought, spent)  # by hand, too
    assert "budget_exhausted" == admitted.expired_reason()
    assert bought == sum(t.quantity for t in admitted.trades())
    assert (budget - spent, budget - spent, 0) == h.balance("poor", "USDT")
    assert budget - spent >= 0
    assert poor_btc + bought == h.total("poor", "BTC")
    # the partly taken ask keeps the rest, and the next level is untouched
    assert [
        (h.px(BTC, "30010.5"), h.qty(BTC, "0.00067")),
        (h.px(BTC, "30020"), h.qty(BTC, "0.05")),
    ] == h.books[BTC].depth(5)[1]


def test_a_market_buy_that_empties_the_book_expires_with_no_liquidity_and_returns_the_rest():
    h = Harness(custom_config())
    h.limit("bob", BTC, SELL, "0.002", "30000")
    h.limit("bob", BTC, SELL, "0.001", "30005")
    usdt = h.total("alice", "USDT")

    result = h.new("alice", BTC, BUY, MARKET, h.qty(BTC, "1"))

    assert "no_liquidity" == result.expired_reason()
    paid = h.units("USDT", "60.012") + h.units("USDT", "30.005") + fee(h.units("USDT", "30.005"), "2")
    assert (usdt - paid, usdt - paid, 0) == h.balance("alice", "USDT")


def test_a_triggered_stop_market_buy_spends_at_most_its_budget():
    h = Harness(custom_config(band="0"))
    h.limit("bob", BTC, SELL, "0.00001", "100")
    h.limit("carol", BTC, BUY, "0.00001", "100")  # last trade 100
    usdt, btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    stop = h.new("alice", BTC, BUY, STOP_LOSS, h.qty(BTC, "0.0001"), stop_price=h.px(BTC, "101"))
    budget = buffered(h.notional(BTC, "101", "0.0001"), "10")
    budget += fee(budget, "2")
    assert 111_122 == budget == stop.held
    h.limit("bob", BTC, SELL, "0.00001", "101")
    h.limit("bob", BTC, SELL, "0.001", "112")  # 12 % above the stop: more than the 10 % buffer

    trigger = h.limit("carol", BTC, BUY, "0.00001", "101")  # trades at 101: the stop triggers

    assert [stop.order_id] == [e.order.order_id for e in trigger.events if isinstance(e, Triggered)]
    bought, spent, exhausted = spend(h, budget, [("112", "0.001")], "2", "0.0001")
    assert exhausted and (9, 100_820) == (bought, spent)
    assert spent <= budget
    mine = [t for t in trigger.trades() if t.taker.order_id == stop.order_id]
    assert bought == sum(t.quantity for t in mine)
    assert ("expired", stop.order_id, "budget_exhausted") in trigger.ended()
    assert (usdt - spent, usdt - spent, 0) == h.balance("alice", "USDT")
    assert btc + bought == h.total("alice", "BTC")


def test_a_triggered_stop_limit_buy_releases_its_price_improvement():
    h = Harness(custom_config(band="0"))
    h.limit("bob", BTC, SELL, "0.00001", "100")
    h.limit("carol", BTC, BUY, "0.00001", "100")
    usdt = h.total("alice", "USDT")
    stop = h.new(
        "alice", BTC, BUY, STOP_LIMIT, h.qty(BTC, "0.0001"), h.px(BTC, "105"), stop_price=h.px(BTC, "101")
    )
    assert h.notional(BTC, "105", "0.0001") + fee(h.notional(BTC, "105", "0.0001"), "2") == stop.held
    h.limit("bob", BTC, SELL, "0.00001", "101")
    h.limit("bob", BTC, SELL, "0.0001", "102")

    h.limit("carol", BTC, BUY, "0.00001", "101")

    paid = h.notional(BTC, "102", "0.0001") + fee(h.notional(BTC, "102", "0.0001"), "2")
    assert (usdt - paid, usdt - paid, 0) == h.balance("alice", "USDT")


# -- self-trade prevention ---------------------------------------------------------------------------


def hold_of(h: Harness, price: str, quantity: str, bps: str = "2") -> int:
    notional = h.notional(BTC, price, quantity)
    return notional + fee(notional, bps)


def test_decrement_restates_a_resting_buy_and_its_hold_follows():
    h = Harness(custom_config())
    usdt, btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    bid = h.limit("alice", BTC, BUY, "0.001", "30000")
    assert hold_of(h, "30000", "0.001") == bid.held

    sell = h.limit("alice", BTC, SELL, "0.0004", "30000", stp=SelfTradePrevention.DECREMENT)

    assert [] == sell.trades()
    assert ("expired", sell.order_id, "self_trade_prevention") in sell.ended()
    assert (usdt, hold_of(h, "30000", "0.0006")) == (h.total("alice", "USDT"), h.reserved("alice", "USDT"))
    assert (btc, 0) == (h.total("alice", "BTC"), h.reserved("alice", "BTC"))

    h.limit("bob", BTC, SELL, "0.0006", "30000")  # fills the rest; alice is maker (1 bps)

    paid = h.units("USDT", "18") + h.units("USDT", "0.0018")
    assert (usdt - paid, usdt - paid, 0) == h.balance("alice", "USDT")


def test_decrement_restates_a_resting_sell_and_the_taker_buy_releases_its_quote():
    h = Harness(custom_config())
    usdt, btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    h.limit("alice", BTC, SELL, "0.001", "30000")

    buy = h.limit("alice", BTC, BUY, "0.0004", "30000", stp=SelfTradePrevention.DECREMENT)

    assert ("expired", buy.order_id, "self_trade_prevention") in buy.ended()
    assert (btc, h.units("BTC", "0.0006")) == (h.total("alice", "BTC"), h.reserved("alice", "BTC"))
    assert (usdt, usdt, 0) == h.balance("alice", "USDT")


def test_decrement_restates_the_taker_which_then_rests_with_the_smaller_hold():
    h = Harness(custom_config())
    h.limit("alice", BTC, SELL, "0.0004", "30000")

    buy = h.limit("alice", BTC, BUY, "0.001", "30000", stp=SelfTradePrevention.DECREMENT)

    assert hold_of(h, "30000", "0.0006") == h.reserved("alice", "USDT")
    assert 0 == h.reserved("alice", "BTC")
    assert h.qty(BTC, "0.0006") == h.books[BTC].order(buy.order_id).leaves


@pytest.mark.parametrize(
    ("mode", "maker_left", "taker_left"),
    [
        (SelfTradePrevention.CANCEL_NEWEST, True, False),
        (SelfTradePrevention.CANCEL_OLDEST, False, True),
        (SelfTradePrevention.CANCEL_BOTH, False, False),
    ],
)
def test_self_trade_prevention_expiry_releases_the_expired_orders_holds(mode, maker_left, taker_left):
    h = Harness(custom_config())
    bid = h.limit("alice", BTC, BUY, "0.001", "30000")

    ask = h.limit("alice", BTC, SELL, "0.002", "29000", stp=mode)

    assert [] == ask.trades()
    assert (bid.held if maker_left else 0) == h.reserved("alice", "USDT")
    assert (ask.held if taker_left else 0) == h.reserved("alice", "BTC")
