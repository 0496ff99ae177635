"""Reports the session and risk build without the book: rejected new orders and cancel rejects."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.protocol.schema import validate_server_message
from tradingapp.reports import cancel_reject_message, refused_order_fields, rejected_order

ORDER = {
    "type": "new_order",
    "client_order_id": "o-1",
    "symbol": "BTC-USDT",
    "side": "buy",
    "order_type": "stop_limit",
    "quantity": "0.5",
    "price": "30000",
    "stop_price": "29000.5",
}


def refused(spec: SymbolSpec | None, **fields: Any) -> dict[str, Any]:
    msg = {**ORDER, **fields}
    report = rejected_order(spec, refused_order_fields(spec, msg), Reason.INVALID_QUANTITY, "bad", 0, "r")
    assert validate_server_message(report) is None, report
    return report


def test_valid_values_are_shown_with_the_symbols_places(spec: SymbolSpec) -> None:
    report = refused(spec, quantity=Decimal("0.5"))
    assert ("0.50000", "30000.00", "29000.50") == (report["quantity"], report["price"], report["stop_price"])
    assert ("0.00000", "0.00000") == (report["cum_qty"], report["leaves_qty"])
    assert ("o-1", "r", None) == (report["client_order_id"], report["request_id"], report["order_id"])


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "1e5", "0x10", " 1", "0.000001", "0", "-1", "1" * 40])
def test_a_quantity_that_does_not_convert_is_shown_as_zero(spec: SymbolSpec, bad: str) -> None:
    report = refused(spec, quantity=bad)
    assert "0.00000" == report["quantity"]
    assert "30000.00" == report["price"]


@pytest.mark.parametrize("bad", ["NaN", "-Infinity", "30000.001", "0"])
def test_a_price_that_does_not_convert_is_null(spec: SymbolSpec, bad: str) -> None:
    report = refused(spec, price=bad, stop_price=bad)
    assert (None, None) == (report["price"], report["stop_price"])
    assert "0.50000" == report["quantity"]


def test_unknown_symbol_shows_no_decimal_it_cannot_place() -> None:
    report = refused(None, symbol="NOPE-USDT")
    assert ("0", None, None) == (report["quantity"], report["price"], report["stop_price"])
    assert ("0", "0") == (report["cum_qty"], report["leaves_qty"])


def test_cancel_reject_keeps_a_null_order_id_and_leaves_out_what_is_unknown() -> None:
    message = cancel_reject_message(
        "cancel", Reason.UNKNOWN_ORDER, "unknown order ghost", "c1", orig_client_order_id="ghost"
    )
    assert {
        "type": "cancel_reject",
        "order_id": None,
        "orig_client_order_id": "ghost",
        "reason": "unknown_order",
        "text": "unknown order ghost",
        "response_to": "cancel",
        "request_id": "c1",
    } == message
    assert validate_server_message(message) is None
