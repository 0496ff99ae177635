"""Order-entry limits risk enforces: client order ids, open orders per account, the price band."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.unit.test_risk_support import (
    BTC,
    BUY,
    ETH,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    STOP_LIMIT,
    STOP_LOSS,
    Harness,
    Request,
    custom_config,
)
from tradingapp.engine.events import CancelRejected, Rejected
from tradingapp.engine.reasons import Reason
from tradingapp.engine.risk import Rejection

D = Decimal


def refusal(call) -> Rejection:
    with pytest.raises(Rejection) as refused:
        call()
    return refused.value


# -- client order ids ------------------------------------------------------------------------------


def test_a_live_client_order_id_cannot_be_used_again_and_nothing_changes():
    h = Harness()
    first = h.limit("alice", BTC, BUY, "0.1", "30000", client_order_id="x")
    before = h.risk.snapshot()

    refused = refusal(lambda: h.limit("alice", ETH, SELL, "1", "2000", client_order_id="x"))

    assert Reason.DUPLICATE_CLIENT_ORDER_ID == refused.reason
    assert "'x'" in refused.text
    assert before == h.risk.snapshot()
    assert first.order_id == h.risk.order_id_for_client_id("alice", "x")
    other = h.limit("bob", BTC, BUY, "0.1", "30000", client_order_id="x")  # ids are per account
    assert other.order_id == h.risk.order_id_for_client_id("bob", "x")


@pytest.mark.parametrize("ending", ["cancel", "fill", "cancel_all"])
def test_a_client_order_id_is_free_again_once_its_order_is_done(ending):
    h = Harness()
    first = h.limit("alice", BTC, BUY, "0.1", "30000", client_order_id="x")
    if ending == "cancel":
        h.cancel("alice", first.order_id, BTC)
    elif ending == "cancel_all":
        h.cancel_all("alice", BTC)
    else:
        h.limit("bob", BTC, SELL, "0.1", "30000")
    assert h.risk.hold("alice", first.order_id) is None
    assert first.order_id == h.risk.order_id_for_client_id("alice", "x")  # remembered as done

    again = h.limit("alice", BTC, BUY, "0.1", "29000", client_order_id="x")

    assert again.order_id == h.risk.order_id_for_client_id("alice", "x")


def test_an_order_done_on_arrival_frees_its_client_order_id_at_once():
    h = Harness()
    h.new("alice", BTC, BUY, IOC, h.qty(BTC, "0.1"), h.px(BTC, "30000"), client_order_id="x")
    h.new("alice", BTC, BUY, MARKET, h.qty(BTC, "0.1"), client_order_id="x")
    h.limit("alice", BTC, BUY, "0.1", "29000", client_order_id="x")
    assert 1 == len(h.risk.open_holds("alice"))


# -- open orders per account ----------------------------------------------------------------------


def test_too_many_open_orders_is_refused_until_one_is_done():
    h = Harness(custom_config(max_open=3))
    first = h.limit("alice", BTC, BUY, "0.1", "30000")
    h.new("alice", BTC, BUY, STOP_LOSS, h.qty(BTC, "0.1"), stop_price=h.px(BTC, "31000"))  # stops count
    h.limit("alice", ETH, SELL, "1", "2000")  # across symbols
    before = h.risk.snapshot()

    refused = refusal(lambda: h.limit("alice", BTC, BUY, "0.1", "29000"))

    assert Reason.TOO_MANY_OPEN_ORDERS == refused.reason
    assert "3 open orders" in refused.text
    assert before == h.risk.snapshot()
    h.limit("bob", BTC, BUY, "0.1", "20000")  # another account has its own count

    h.cancel("alice", first.order_id, BTC)
    again = h.limit("alice", BTC, BUY, "0.1", "29000")
    assert 3 == len(h.risk.open_holds("alice"))

    refusal(lambda: h.limit("alice", BTC, BUY, "0.1", "28000"))
    h.limit("carol", BTC, SELL, "0.1", "29000")  # fills alice's order: a slot frees up
    assert h.risk.hold("alice", again.order_id) is None
    h.limit("alice", BTC, BUY, "0.1", "28000")


# -- the price band ------------------------------------------------------------------------------


def trade_at(h: Harness, price: str) -> None:
    h.limit("bob", BTC, SELL, "0.001", price)
    h.limit("carol", BTC, BUY, "0.001", price)
    assert h.px(BTC, price) == h.risk.last_prices[BTC]


def test_before_the_first_trade_any_price_is_allowed():
    h = Harness(custom_config(band="5"))
    h.limit("alice", BTC, BUY, "0.001", "1")
    h.limit("alice", BTC, SELL, "0.001", "900000")


@pytest.mark.parametrize("last", ["100", "100.01", "30000.07"])
def test_the_band_allows_exactly_its_percentage_from_the_last_trade(last):
    h = Harness(custom_config(band="5"))
    trade_at(h, last)
    reference = D(last)
    tick = D("0.01")
    high = reference + (reference * D("0.05") / tick).to_integral_value(rounding="ROUND_FLOOR") * tick
    low = reference - (reference * D("0.05") / tick).to_integral_value(rounding="ROUND_FLOOR") * tick

    for price in (high, low):  # the edges are in
        assert abs(price - reference) <= reference * D("0.05")
    h.limit("alice", BTC, BUY, "0.00001", str(low))
    h.limit("alice", BTC, SELL, "0.00001", str(high))
    before = h.risk.snapshot()
    for side, price in ((SELL, high + tick), (BUY, low - tick)):  # one tick beyond is out
        assert abs(price - reference) > reference * D("0.05")
        refused = refusal(lambda side=side, price=price: h.limit("alice", BTC, side, "0.00001", str(price)))
        assert Reason.PRICE_OUT_OF_BAND == refused.reason
        assert f"allowed {low} to {high}" in refused.text
        assert f"last trade {reference:.2f}" in refused.text
    assert before == h.risk.snapshot()


def test_the_band_text_names_the_price_the_band_and_the_last_trade():
    h = Harness(custom_config(band="5"))
    trade_at(h, "100")

    refused = refusal(lambda: h.limit("alice", BTC, BUY, "0.001", "105.01"))

    assert "price 105.01 is more than 5% from the last trade 100.00 (allowed 95.00 to 105.00)" == refused.text


def test_the_band_applies_to_stop_limit_prices_and_replaces_but_not_to_market_orders():
    h = Harness(custom_config(band="5"))
    trade_at(h, "100")
    refused = refusal(
        lambda: h.new(
            "alice", BTC, BUY, STOP_LIMIT, h.qty(BTC, "0.001"), h.px(BTC, "110"), stop_price=h.px(BTC, "101")
        )
    )
    assert Reason.PRICE_OUT_OF_BAND == refused.reason
    buy = h.limit("alice", BTC, BUY, "0.001", "99")
    before = h.risk.snapshot()

    refused = refusal(lambda: h.replace("alice", buy.order_id, BTC, price=h.px(BTC, "94.99")))

    assert Reason.PRICE_OUT_OF_BAND == refused.reason
    assert before == h.risk.snapshot()
    h.replace("alice", buy.order_id, BTC, price=h.px(BTC, "95"))
    h.limit("bob", BTC, SELL, "0.01", "104")
    h.new("alice", BTC, BUY, MARKET, h.qty(BTC, "0.01"))  # no price, no band
    assert h.px(BTC, "104") == h.risk.last_prices[BTC]


def test_the_band_follows_the_last_trade_of_each_symbol():
    h = Harness(custom_config(band="5"))
    trade_at(h, "100")
    h.limit("alice", ETH, BUY, "1", "2000")  # no trade on ETH-USDT yet
    trade_at(h, "104")
    h.limit("alice", BTC, BUY, "0.001", "109.2")  # 5 % above 104
    refusal(lambda: h.limit("alice", BTC, BUY, "0.001", "98.79"))


def test_a_zero_band_is_off():
    h = Harness(custom_config(band="0"))
    trade_at(h, "100")
    h.limit("alice", BTC, BUY, "0.001", "1")
    h.limit("alice", BTC, SELL, "0.001", "1000")


# -- unknown names -----------------------------------------------------------------------------------


def test_unknown_account_and_symbol_are_refused():
    h = Harness()
    with pytest.raises(Rejection) as refused:
        h.risk.admit(Request("mallory", BTC, BUY, LIMIT, 1, 1), 0)
    assert Reason.UNKNOWN_ACCOUNT == refused.value.reason
    with pytest.raises(Rejection) as refused:
        h.risk.admit(Request("alice", "DOGE-USDT", BUY, LIMIT, 1, 1), 0)
    assert Reason.UNKNOWN_SYMBOL == refused.value.reason
    assert 0 == h.risk.order_ids.last


def test_a_market_order_with_a_price_is_invalid_price_even_outside_the_band():
    h = Harness(custom_config(band="5"))
    trade_at(h, "100")
    h.limit("bob", BTC, SELL, "0.01", "104")

    for otype in (MARKET, STOP_LOSS):
        result = h.new("alice", BTC, BUY, otype, h.qty(BTC, "0.01"), h.px(BTC, "200"))  # 100% away
        assert [Reason.INVALID_PRICE] == [e.reason for e in result.events if isinstance(e, Rejected)]


def test_a_price_for_a_stop_market_order_in_a_replace_is_not_allowed_even_outside_the_band():
    h = Harness(custom_config(band="5"))
    trade_at(h, "100")
    stop = h.new("alice", BTC, SELL, STOP_LOSS, h.qty(BTC, "0.01"), stop_price=h.px(BTC, "90"))

    result = h.replace("alice", stop.order_id, BTC, price=h.px(BTC, "200"))

    assert [Reason.REPLACE_NOT_ALLOWED] == [e.reason for e in result.events if isinstance(e, CancelRejected)]
