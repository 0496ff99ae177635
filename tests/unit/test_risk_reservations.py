"""Phase 1 reservations for every order type, their release, and insufficient funds (docs/risk.md)."""

from __future__ import annotations

import pytest

from tests.unit.test_risk_support import (
    BTC,
    BUY,
    ETH,
    FOK,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_LOSS,
    TAKE_PROFIT,
    TAKE_PROFIT_LIMIT,
    Harness,
    buffered,
    custom_config,
    demo,
    fee,
)
from tradingapp.engine.reasons import Reason
from tradingapp.engine.risk import Rejection

# -- sells: the base quantity ----------------------------------------------------------------------

SELLS = [
    # order type, limit price, stop price, reason it ends at once on an empty book (None: it stays)
    (LIMIT, "30000", None, None),
    (IOC, "30000", None, "ioc_remainder"),
    (IOC, None, None, "no_liquidity"),
    (FOK, "30000", None, "fok_not_fillable"),
    (FOK, None, None, "fok_not_fillable"),
    (MARKET, None, None, "no_liquidity"),
    (STOP_LOSS, None, "29000", None),
    (STOP_LIMIT, "28900", "29000", None),
    (TAKE_PROFIT, None, "31000", None),
    (TAKE_PROFIT_LIMIT, "30900", "31000", None),
]


@pytest.mark.parametrize(
    ("order_type", "price", "stop", "ends"), SELLS, ids=[f"{c[0].value}-{c[1]}" for c in SELLS]
)
def test_a_sell_of_any_type_reserves_its_base_quantity(order_type, price, stop, ends):
    h = Harness()
    btc_total = h.total("alice", "BTC")
    usdt = h.balance("alice", "USDT")
    admitted = h.admit(
        "alice",
        BTC,
        SELL,
        order_type,
        h.qty(BTC, "0.12345"),
        None if price is None else h.px(BTC, price),
        stop_price=None if stop is None else h.px(BTC, stop),
    )

    expected = h.units("BTC", "0.12345")
    assert expected == admitted.held
    assert (btc_total, btc_total - expected, expected) == h.balance("alice", "BTC")
    assert usdt == h.balance("alice", "USDT")  # a sell reserves no quote

    h.run(admitted)

    assert ends == admitted.expired_reason()
    still = 0 if ends else expected
    assert (btc_total, btc_total - still, still) == h.balance("alice", "BTC")
    assert usdt == h.balance("alice", "USDT")


# -- buys with a limit price: notional + fee at the worse rate -------------------------------------

PRICED_BUYS = [
    # order type, stop price (never the amount reserved), stays open on an empty book
    (LIMIT, None, True),
    (IOC, None, False),
    (FOK, None, False),
    (STOP_LIMIT, "25000", True),  # a buy stop triggers on a rise; no trade yet
    (TAKE_PROFIT_LIMIT, "35000", True),
]
RATES = [("alice", "2"), ("odd", "3.33"), ("mm", "2")]  # the worse of maker and taker


@pytest.mark.parametrize(("account", "worse_bps"), RATES)
@pytest.mark.parametrize(("order_type", "stop", "stays"), PRICED_BUYS, ids=[c[0].value for c in PRICED_BUYS])
def test_a_buy_with_a_limit_price_reserves_notional_plus_fee_at_the_worse_rate(
    order_type, stop, stays, account, worse_bps
):
    h = Harness(custom_config())
    usdt_total = h.total(account, "USDT")
    notional = h.notional(BTC, "30000.01", "0.00007")
    assert 21_000_007 == notional  # 2.1000007 USDT: every fee below rounds

    admitted = h.admit(
        account,
        BTC,
        BUY,
        order_type,
        h.qty(BTC, "0.00007"),
        h.px(BTC, "30000.01"),
        stop_price=None if stop is None else h.px(BTC, stop),
    )

    expected = notional + fee(notional, worse_bps)
    assert expected == admitted.held
    assert (usdt_total, usdt_total - expected, expected) == h.balance(account, "USDT")
    assert 0 == h.reserved(account, "BTC")

    h.run(admitted)

    still = expected if stays else 0
    assert (usdt_total, usdt_total - still, still) == h.balance(account, "USDT")


def test_the_worse_rate_examples_hold_exact_amounts():
    # computed by hand: 21,000,007 units at 2 bps is 4,200.0014 and at 3.33 bps 6,993.002331
    assert 4_200 == fee(21_000_007, "2")
    assert 6_993 == fee(21_000_007, "3.33")
    assert -1_050 == fee(21_000_007, "-0.5")  # toward zero, not -1,051


# -- buys without a price: the whole available quote as a budget -----------------------------------


@pytest.mark.parametrize(
    ("order_type", "ends"), [(MARKET, "no_liquidity"), (IOC, "no_liquidity"), (FOK, "fok_not_fillable")]
)
def test_a_buy_without_a_price_holds_the_whole_available_quote_as_its_budget(order_type, ends):
    h = Harness(custom_config())
    resting = h.limit("alice", ETH, BUY, "1", "2000")  # something already reserved
    total, available, reserved = h.balance("alice", "USDT")
    assert reserved == resting.held > 0

    admitted = h.admit("alice", BTC, BUY, order_type, h.qty(BTC, "1"))

    assert available == admitted.held
    assert available == admitted.command.budget
    assert (total, 0, total) == h.balance("alice", "USDT")

    h.run(admitted)  # an empty book: nothing to buy

    assert ends == admitted.expired_reason()
    assert (total, available, reserved) == h.balance("alice", "USDT")


# -- stop-market buys: buffered stop notional + taker fee -------------------------------------------


@pytest.mark.parametrize("order_type", [STOP_LOSS, TAKE_PROFIT])
@pytest.mark.parametrize(
    ("config", "account", "buffer_pct", "taker_bps"),
    [
        (demo, "alice", "10", "2"),
        (lambda: custom_config(buffer="2.5"), "odd", "2.5", "0.77"),
        (lambda: custom_config(buffer="0"), "mm", "0", "2"),
    ],
    ids=["demo-10pct", "custom-2.5pct", "custom-0pct"],
)
def test_a_stop_market_buy_reserves_its_buffered_stop_notional_plus_taker_fee(
    config, account, buffer_pct, taker_bps, order_type
):
    h = Harness(config())
    usdt_total = h.total(account, "USDT")
    stop_notional = h.notional(BTC, "30000.01", "0.00007")

    result = h.new(account, BTC, BUY, order_type, h.qty(BTC, "0.00007"), stop_price=h.px(BTC, "30000.01"))

    budget = buffered(stop_notional, buffer_pct)
    expected = budget + fee(budget, taker_bps)
    assert expected == result.held
    assert expected == result.command.budget
    assert expected == h.books[BTC].order(result.order_id).budget
    assert (usdt_total, usdt_total - expected, expected) == h.balance(account, "USDT")  # while it waits


def test_the_stop_buffer_examples_hold_exact_amounts():
    # 21,000,007 * 1.10 = 23,100,007.7 -> 23,100,008; its 2 bps fee 4,620.0016 -> 4,620
    assert 23_100_008 + 4_620 == buffered(21_000_007, "10") + fee(buffered(21_000_007, "10"), "2")
    # 21,000,007 * 1.025 = 21,525,007.175 -> 21,525,008; at 0.77 bps 1,657.425616 -> 1,657
    assert 21_525_008 + 1_657 == buffered(21_000_007, "2.5") + fee(21_525_008, "0.77")


# -- release: cancel, cancel-all, expiry, book rejection --------------------------------------------


def test_a_cancel_releases_the_whole_hold():
    h = Harness()
    before = h.risk.balances("alice")
    buy = h.limit("alice", BTC, BUY, "0.5", "30000", client_order_id="b1")
    stop = h.new(
        "alice", BTC, SELL, STOP_LIMIT, h.qty(BTC, "0.25"), h.px(BTC, "28000"), stop_price=h.px(BTC, "28500")
    )
    assert (buy.held, stop.held) == (h.reserved("alice", "USDT"), h.reserved("alice", "BTC"))

    canceled = h.cancel("alice", buy.order_id, BTC)
    assert [("canceled", buy.order_id, "canceled_by_user")] == canceled.ended()
    assert (0, stop.held) == (h.reserved("alice", "USDT"), h.reserved("alice", "BTC"))
    h.cancel("alice", stop.order_id, BTC)

    assert before == h.risk.balances("alice")
    assert [] == h.risk.open_holds("alice")


def test_cancel_all_releases_the_orders_of_its_symbol_only():
    h = Harness()
    h.limit("alice", BTC, BUY, "0.5", "30000")
    h.limit("alice", BTC, SELL, "0.5", "31000")
    h.new("alice", BTC, BUY, STOP_LOSS, h.qty(BTC, "0.1"), stop_price=h.px(BTC, "32000"))
    eth = h.limit("alice", ETH, BUY, "2", "2000.01")

    result = h.cancel_all("alice", BTC)

    assert 3 == len(result.ended())
    assert [eth.order_id] == [hold.order_id for hold in h.risk.open_holds("alice")]
    assert eth.held == h.reserved("alice", "USDT")
    assert eth.held == h.notional(ETH, "2000.01", "2") + fee(h.notional(ETH, "2000.01", "2"), "2")
    assert 0 == h.reserved("alice", "BTC")


def test_an_ioc_remainder_releases_its_hold_and_pays_only_for_the_fill():
    h = Harness()
    alice_usdt, alice_btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    h.limit("bob", BTC, SELL, "0.1", "30000")

    result = h.new("alice", BTC, BUY, IOC, h.qty(BTC, "0.3"), h.px(BTC, "30100"))

    assert "ioc_remainder" == result.expired_reason()
    paid = h.units("USDT", "3000.6")  # 0.1 * 30,000 + 2 bps
    assert (alice_usdt - paid, alice_usdt - paid, 0) == h.balance("alice", "USDT")
    assert alice_btc + h.units("BTC", "0.1") == h.total("alice", "BTC")


def test_an_unfillable_fok_changes_nothing():
    h = Harness()
    h.limit("bob", BTC, SELL, "0.1", "30000")
    before = h.risk.balances("alice")

    result = h.new("alice", BTC, BUY, FOK, h.qty(BTC, "0.3"), h.px(BTC, "30100"))

    assert "fok_not_fillable" == result.expired_reason()
    assert [] == result.trades()
    assert before == h.risk.balances("alice")


def test_a_market_sell_remainder_releases_the_base():
    h = Harness()
    alice_usdt, alice_btc = h.total("alice", "USDT"), h.total("alice", "BTC")
    h.limit("bob", BTC, BUY, "0.1", "29000")

    result = h.new("alice", BTC, SELL, MARKET, h.qty(BTC, "0.3"))

    assert "no_liquidity" == result.expired_reason()
    sold = h.units("BTC", "0.1")
    assert (alice_btc - sold, alice_btc - sold, 0) == h.balance("alice", "BTC")
    assert alice_usdt + h.units("USDT", "2899.42") == h.total("alice", "USDT")  # 2,900 - 2 bps


def test_a_post_only_order_the_book_rejects_releases_its_hold_and_its_client_id():
    h = Harness()
    h.limit("bob", BTC, SELL, "0.1", "30000")
    before = h.risk.balances("alice")

    result = h.limit("alice", BTC, BUY, "0.1", "30000", post_only=True, client_order_id="p1")

    assert [("rejected", result.order_id, "post_only_would_take")] == result.ended()
    assert result.held > 0
    assert before == h.risk.balances("alice")
    assert h.risk.hold("alice", result.order_id) is None
    again = h.limit("alice", BTC, BUY, "0.1", "29999.99", post_only=True, client_order_id="p1")
    assert again.order_id == h.risk.order_id_for_client_id("alice", "p1")


@pytest.mark.parametrize(
    ("side", "order_type", "price", "stop", "asset"),
    [
        (BUY, STOP_LOSS, None, "29999.99", "USDT"),  # a buy stop at or below the last price
        (BUY, STOP_LIMIT, "30100", "30000", "USDT"),
        (SELL, STOP_LIMIT, "29900", "30000.01", "BTC"),  # a sell stop at or above it
        (SELL, TAKE_PROFIT, None, "29999.99", "BTC"),  # a sell take-profit at or below it
    ],
)
def test_a_stop_that_would_trigger_immediately_is_rejected_and_releases_its_hold(
    side, order_type, price, stop, asset
):
    h = Harness()
    h.limit("bob", BTC, SELL, "0.1", "30000")
    h.limit("carol", BTC, BUY, "0.1", "30000")  # last trade 30,000
    before = h.risk.balances("alice")

    result = h.new(
        "alice",
        BTC,
        side,
        order_type,
        h.qty(BTC, "0.1"),
        None if price is None else h.px(BTC, price),
        stop_price=h.px(BTC, stop),
    )

    assert [("rejected", result.order_id, "would_trigger_immediately")] == result.ended()
    assert result.held > 0
    assert before == h.risk.balances("alice")
    assert 0 == h.reserved("alice", asset)


# -- insufficient funds ---------------------------------------------------------------------------


def test_an_order_needing_exactly_the_available_quote_is_accepted():
    h = Harness(custom_config())
    total = h.total("poor", "USDT")
    assert h.units("USDT", "100.02") == total

    result = h.limit("poor", BTC, BUY, "0.005", "20000")  # 100 + 2 bps = 100.02

    assert total == result.held
    assert (total, 0, total) == h.balance("poor", "USDT")


def test_insufficient_funds_states_need_and_available_and_changes_nothing():
    h = Harness(custom_config())
    before = h.risk.snapshot()
    books = {s: b.state_digest() for s, b in h.books.items()}

    with pytest.raises(Rejection) as refused:
        h.limit("poor", BTC, BUY, "0.00501", "20000")  # 100.2 + 0.02004 > 100.02

    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "100.2200400 USDT" in refused.value.text
    assert "available 100.0200000 USDT" in refused.value.text
    assert before == h.risk.snapshot()
    assert books == {s: b.state_digest() for s, b in h.books.items()}
    h.check()


def test_the_available_amount_stated_is_what_other_orders_left():
    h = Harness(custom_config())
    h.limit("poor", BTC, BUY, "0.003", "20000")  # holds 60.012

    with pytest.raises(Rejection) as refused:
        h.limit("poor", BTC, BUY, "0.002", "20010")  # needs 40.02 + 0.008004

    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "40.0280040 USDT" in refused.value.text
    assert "available 40.0080000 USDT" in refused.value.text
    assert 1 == len(h.risk.open_holds("poor"))


def test_a_sell_beyond_the_available_base_is_refused():
    h = Harness(custom_config())
    with pytest.raises(Rejection) as refused:
        h.limit("poor", BTC, SELL, "0.00101", "30000")
    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "available 0.00100 BTC" in refused.value.text
    assert (h.units("BTC", "0.001"), 0) == (h.available("poor", "BTC"), h.reserved("poor", "BTC"))


def test_a_market_buy_with_no_quote_available_is_refused():
    h = Harness(custom_config())
    h.limit("poor", BTC, BUY, "0.005", "20000")  # holds everything
    before = h.risk.snapshot()

    with pytest.raises(Rejection) as refused:
        h.new("poor", BTC, BUY, MARKET, h.qty(BTC, "0.001"))

    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "no USDT available" in refused.value.text
    assert before == h.risk.snapshot()


def test_a_stop_market_buy_whose_budget_is_not_available_is_refused():
    h = Harness(custom_config())
    with pytest.raises(Rejection) as refused:
        # 0.01 * 10,000 * 1.10 = 110 USDT + fee: more than poor's 100.02
        h.new("poor", BTC, BUY, STOP_LOSS, h.qty(BTC, "0.01"), stop_price=h.px(BTC, "10000"))
    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "110.0220000 USDT" in refused.value.text
    assert [] == h.risk.open_holds("poor")


CASH_ACCOUNT = '[[accounts]]\naccount = "cash"\napi_key = "cash-key"\n[accounts.balances]\nUSDT = "10"\n'


@pytest.mark.parametrize(
    ("side", "order_type", "price"),
    [(SELL, LIMIT, "30000"), (SELL, MARKET, None)],
    ids=["limit-sell", "market-sell"],
)
def test_a_refused_order_changes_no_state_even_for_an_asset_the_account_never_held(side, order_type, price):
    # "cash" was configured with USDT only; an asset not listed starts at zero
    h = Harness(custom_config(extra=CASH_ACCOUNT))
    before = h.risk.snapshot()
    digest = h.venue.state_digest()

    with pytest.raises(Rejection) as refused:
        h.new("cash", BTC, side, order_type, h.qty(BTC, "0.001"), None if price is None else h.px(BTC, price))

    assert Reason.INSUFFICIENT_FUNDS == refused.value.reason
    assert "available 0.00000 BTC" in refused.value.text
    assert (0, 0, 0) == h.balance("cash", "BTC")
    # a refusal is journalled as an audit line only and never replayed, so it must leave the state
    # (and the digest recovery is compared with) exactly as it was
    assert before == h.risk.snapshot()
    assert digest == h.venue.state_digest()
