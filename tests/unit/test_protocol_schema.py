"""Validation of client and server messages against the schema."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import msgpack
import pytest

from tradingapp.engine.numbers import Grid, NumberError
from tradingapp.engine.reasons import Reason
from tradingapp.protocol import (
    CLIENT_MESSAGES,
    MESSAGES,
    SERVER_MESSAGES,
    Direction,
    FrameDecoder,
    ProtocolError,
    encode_frame,
    format_timestamp,
    validate_client_message,
    validate_server_message,
)
from tradingapp.protocol.schema import CLIENT_TYPES, SERVER_TYPES, Kind

NEW_ORDER: dict[str, Any] = {
    "type": "new_order",
    "client_order_id": "o-1",
    "symbol": "BTC-USDT",
    "side": "buy",
    "order_type": "limit",
    "quantity": "0.5",
    "price": "30000",
}


def order(**changes: Any) -> dict[str, Any]:
    msg = dict(NEW_ORDER)
    for key, value in changes.items():
        if value is _DROP:
            del msg[key]
        else:
            msg[key] = value
    return msg


_DROP = object()


def reject(obj: object) -> ProtocolError:
    result = validate_client_message(obj)
    assert isinstance(result, ProtocolError), result
    assert not result.fatal
    return result


# -- the schema itself --------------------------------------------------------------------------


def test_message_types_are_unique_per_direction() -> None:
    assert len(CLIENT_MESSAGES) == len(CLIENT_TYPES)
    assert len(SERVER_MESSAGES) == len(SERVER_TYPES)


@pytest.mark.parametrize("spec", MESSAGES, ids=lambda s: f"{s.direction.value}-{s.type}")
def test_every_example_is_valid(spec: Any) -> None:
    example = copy.deepcopy(dict(spec.example))

    if spec.direction is Direction.CLIENT:
        assert isinstance(validate_client_message(example), dict)
    else:
        assert validate_server_message(example) is None


@pytest.mark.parametrize("spec", MESSAGES, ids=lambda s: f"{s.direction.value}-{s.type}")
def test_every_message_is_documented_and_has_unique_fields(spec: Any) -> None:
    names = [f.name for f in spec.fields]

    assert spec.description and spec.fix
    assert len(names) == len(set(names))
    assert "type" not in names
    assert all(f.description for f in spec.fields)
    assert all(f.values for f in spec.fields if f.kind in (Kind.ENUM, Kind.ENUM_LIST))


def test_every_client_message_accepts_a_request_id() -> None:
    for spec in CLIENT_MESSAGES:
        assert "request_id" in [f.name for f in spec.fields], spec.type


def test_contract_fix_equivalents() -> None:
    expected = {"logon": "A", "new_order": "D", "cancel": "F", "replace": "G", "cancel_all": "q"}
    expected |= {"order_status": "H", "open_orders": "AF", "subscribe": "V", "heartbeat": "0"}
    expected |= {"test_request": "1", "logout": "5"}

    assert expected == {t: CLIENT_TYPES[t].fix for t in expected}
    assert SERVER_TYPES["execution_report"].fix == "8"
    assert SERVER_TYPES["cancel_reject"].fix == "9"


# -- client messages: the good path -------------------------------------------------------------


def test_valid_new_order_is_returned_as_the_same_dict_with_defaults() -> None:
    msg = order()

    result = validate_client_message(msg)

    assert result is msg
    assert False is msg["post_only"]
    assert msg["self_trade_prevention"] == "cancel_newest"


def test_explicit_options_are_kept() -> None:
    msg = validate_client_message(order(post_only=True, self_trade_prevention="decrement"))

    assert isinstance(msg, dict)
    assert (msg["post_only"], msg["self_trade_prevention"]) == (True, "decrement")


@pytest.mark.parametrize("value", ["0.5", "10", "abc", 10, 0, -1, 2**63, 2**64 - 1, -(2**63)])
def test_decimal_fields_accept_strings_and_ints_unchanged(value: object) -> None:
    msg = validate_client_message(order(quantity=value))

    assert isinstance(msg, dict)
    assert msg["quantity"] is value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.1"), "0.1"),
        (Decimal("1e2"), "100"),
        (Decimal("1.50"), "1.50"),
        (Decimal("-0"), "-0"),
        (Decimal("1e-5"), "0.00001"),
        (Decimal("1" * 40), "1" * 40),
    ],
)
def test_json_decimals_become_their_exact_plain_string(value: Decimal, text: str) -> None:
    msg = validate_client_message(order(price=value))

    assert isinstance(msg, dict)
    assert msg["price"] == text


@pytest.mark.parametrize("value", [Decimal(t) for t in ("1e41", "1e-41", "1e999999999", "1e40", "-0.1e-38")])
def test_json_decimals_too_long_as_plain_text_are_refused_cheaply(value: Decimal) -> None:
    error = reject(order(price=value))

    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "price")


def test_huge_but_accepted_ints_are_refused_by_the_exact_conversion_later() -> None:
    lots = Grid("0.001", "quantity", Reason.QUANTITY_OFF_LOT, Reason.INVALID_QUANTITY)
    for value in (2**63, 2**64 - 1):
        msg = validate_client_message(order(quantity=value))
        assert isinstance(msg, dict)
        with pytest.raises(NumberError):
            lots.to_units(msg["quantity"])


def test_null_optional_field_counts_as_absent_and_gets_its_default() -> None:
    msg = validate_client_message(order(post_only=None, stop_price=None))

    assert isinstance(msg, dict)
    assert False is msg["post_only"]
    assert msg["stop_price"] is None


def test_order_id_digit_string_is_normalised_to_int() -> None:
    msg = validate_client_message({"type": "cancel", "order_id": "42"})

    assert msg == {"type": "cancel", "order_id": 42}


@pytest.mark.parametrize("order_type", ["market", "ioc", "fok"])
def test_order_types_without_required_price(order_type: str) -> None:
    assert isinstance(validate_client_message(order(order_type=order_type, price=_DROP)), dict)


def test_stop_limit_with_both_prices_is_valid() -> None:
    msg = order(order_type="stop_limit", stop_price="29000")

    assert isinstance(validate_client_message(msg), dict)


def test_cancel_needs_no_symbol_but_an_order_reference() -> None:
    assert isinstance(validate_client_message({"type": "cancel", "orig_client_order_id": "o-1"}), dict)

    error = reject({"type": "cancel", "symbol": "BTC-USDT"})

    assert error.reason == Reason.MISSING_FIELD
    assert "order_id" in error.text


def test_replace_needs_something_to_change() -> None:
    error = reject({"type": "replace", "symbol": "BTC-USDT", "order_id": 1})

    assert error.reason == Reason.MISSING_FIELD
    assert "quantity" in error.text


def test_subscribe_gets_default_depth_and_checks_channels() -> None:
    msg = validate_client_message({"type": "subscribe", "symbol": "BTC-USDT", "channels": ["bbo"]})

    assert isinstance(msg, dict)
    assert msg["depth"] == 10
    for channels in ([], ["bbo", "bbo"], ["l3"], "bbo", [1], ["bbo", "depth", "trades", "bbo"]):
        error = reject({"type": "subscribe", "symbol": "BTC-USDT", "channels": channels})
        assert error.field == "channels"


@pytest.mark.parametrize("depth", [0, 51, -1, True, "10", 2.0])
def test_depth_out_of_range_or_wrong_type_is_refused(depth: object) -> None:
    error = reject({"type": "book", "symbol": "BTC-USDT", "depth": depth})

    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "depth")


# -- client messages: rejects (test plan C5 B5, B6, B7) -----------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1.5, id="float"),
        pytest.param(float("nan"), id="nan"),
        pytest.param(float("inf"), id="inf"),
        pytest.param(float("-inf"), id="-inf"),
        pytest.param(-0.0, id="-0.0"),
        pytest.param(1e308, id="1e308"),
        pytest.param(5e-324, id="5e-324"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param([1], id="list"),
        pytest.param({"v": 1}, id="map"),
        pytest.param(b"1", id="bytes"),
        pytest.param("", id="empty string"),
        pytest.param("1" * 41, id="41 characters"),
        pytest.param(10**22, id="10**22"),
        pytest.param(Decimal("NaN"), id="json NaN"),
        pytest.param(Decimal("Infinity"), id="json Infinity"),
        pytest.param(Decimal("-Infinity"), id="json -Infinity"),
    ],
)
@pytest.mark.parametrize("field", ["quantity", "price"])
def test_bad_decimal_is_invalid_field_naming_the_field(field: str, value: object) -> None:
    error = reject(order(**{field: value}))

    assert error.reason == Reason.INVALID_FIELD
    assert field == error.field
    assert error.text.startswith(field)
    assert error.ref_type == "new_order"


def test_float_reject_explains_why() -> None:
    assert "float" in reject(order(quantity=1.5)).text


def test_float_in_a_real_binary_frame_is_rejected() -> None:
    (item,) = FrameDecoder().feed(encode_frame(order(quantity=1.5)))

    error = reject(item)

    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "quantity")


@pytest.mark.parametrize("field", ["client_order_id", "symbol", "side", "order_type", "quantity"])
def test_missing_required_field_is_named(field: str) -> None:
    error = reject(order(**{field: _DROP}))

    assert (Reason.MISSING_FIELD, field) == (error.reason, error.field)
    assert field in error.text


@pytest.mark.parametrize("field", ["client_order_id", "symbol", "side", "quantity"])
def test_null_required_field_is_missing(field: str) -> None:
    error = reject(order(**{field: None}))

    assert (Reason.MISSING_FIELD, field) == (error.reason, error.field)


@pytest.mark.parametrize(
    ("order_type", "drop", "reason"),
    [
        ("limit", "price", Reason.MISSING_PRICE),
        ("stop_limit", "price", Reason.MISSING_PRICE),
        ("take_profit_limit", "price", Reason.MISSING_PRICE),
        ("stop_loss", "stop_price", Reason.MISSING_STOP_PRICE),
        ("take_profit", "stop_price", Reason.MISSING_STOP_PRICE),
    ],
)
def test_conditional_prices(order_type: str, drop: str, reason: Reason) -> None:
    msg = order(order_type=order_type, stop_price="29000")
    del msg[drop]

    error = reject(msg)

    assert (reason, drop) == (error.reason, error.field)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("side", "short", Reason.INVALID_SIDE),
        ("side", "BUY", Reason.INVALID_SIDE),
        ("side", 1, Reason.INVALID_SIDE),
        ("order_type", "gtd", Reason.INVALID_ORDER_TYPE),
        ("self_trade_prevention", "sometimes", Reason.INVALID_FIELD),
        ("post_only", 1, Reason.INVALID_FIELD),
        ("post_only", "true", Reason.INVALID_FIELD),
        ("client_order_id", "", Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", "x" * 65, Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", "x" * 10240, Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", "ordre-é", Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", "has space", Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", "tab\there", Reason.INVALID_CLIENT_ORDER_ID),
        ("client_order_id", 17, Reason.INVALID_CLIENT_ORDER_ID),
        ("symbol", "", Reason.INVALID_FIELD),
        ("symbol", "S" * 65, Reason.INVALID_FIELD),
        ("symbol", "BTC\nUSDT", Reason.INVALID_FIELD),
        ("symbol", ["BTC-USDT"], Reason.INVALID_FIELD),
    ],
)
def test_wrong_value_reports_the_fields_reason(field: str, value: object, reason: Reason) -> None:
    error = reject(order(**{field: value}))

    assert (reason, field) == (error.reason, error.field)


@pytest.mark.parametrize("value", [0, -5, 2**63, True, "abc", "", "1" * 20, 1.0, "-1"])
def test_bad_order_id_is_invalid_field(value: object) -> None:
    error = reject({"type": "cancel", "order_id": value})

    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "order_id")


def test_unknown_field_is_rejected_and_named() -> None:
    error = reject(order(post_onyl=True))

    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "post_onyl")
    assert "post_onyl" in error.text


def test_non_string_key_is_rejected_as_unknown_field() -> None:
    message: dict[Any, Any] = dict(NEW_ORDER)
    message[b"price"] = "1"

    error = reject(message)

    assert error.reason == Reason.INVALID_FIELD
    assert error.field is None


def test_unknown_type() -> None:
    for mtype in ("nope", "execution_report", 7, None, ["new_order"], "x" * 10000):
        error = reject({"type": mtype})
        expected = Reason.MISSING_FIELD if mtype is None else Reason.UNKNOWN_MESSAGE_TYPE
        assert (expected, "type") == (error.reason, error.field)
        assert len(error.text) < 100


def test_missing_type() -> None:
    error = reject({"symbol": "BTC-USDT"})

    assert (error.reason, error.field) == (Reason.MISSING_FIELD, "type")


@pytest.mark.parametrize("obj", [None, 1, "new_order", [NEW_ORDER], b"x", 1.5])
def test_non_map_is_malformed(obj: object) -> None:
    assert reject(obj).reason == Reason.MALFORMED_MESSAGE


def test_too_many_keys_is_malformed() -> None:
    msg = {"type": "heartbeat", **{f"k{i}": i for i in range(32)}}

    assert reject(msg).reason == Reason.MALFORMED_MESSAGE


def test_valid_request_id_is_echoed_on_rejects() -> None:
    for rid in ("r-1", 7, -(2**63)):
        error = reject(order(quantity=1.5, request_id=rid))
        assert rid == error.request_id
        assert rid == error.to_message()["request_id"]


def test_invalid_request_id_is_refused_and_not_echoed() -> None:
    for rid in (1.5, True, "", "r" * 65, 2**63, [1], {"a": 1}):
        error = reject(order(request_id=rid))
        assert (error.reason, error.field) == (Reason.INVALID_FIELD, "request_id")
        assert error.request_id is None


def test_reject_message_carries_reason_text_ref_type_and_field() -> None:
    message = reject(order(side="up", request_id="q")).to_message()

    assert message == {
        "type": "reject",
        "reason": "invalid_side",
        "text": "side must be one of buy, sell, not 'up'",
        "ref_type": "new_order",
        "field": "side",
        "request_id": "q",
    }
    assert validate_server_message(message) is None


def test_validation_survives_odd_objects() -> None:
    class Weird(dict[str, str]):
        pass

    assert reject(Weird(type="heartbeat")).reason == Reason.MALFORMED_MESSAGE
    assert reject({frozenset(): 1}).reason == Reason.MISSING_FIELD
    assert reject({"type": "heartbeat", "test_request_id": object()}).reason == Reason.INVALID_FIELD


def test_validated_message_survives_a_binary_round_trip() -> None:
    msg = validate_client_message(order(request_id=3))

    (decoded,) = FrameDecoder().feed(encode_frame(msg))  # type: ignore[arg-type]

    assert msg == validate_client_message(decoded)


# -- server messages ----------------------------------------------------------------------------


def test_server_decimals_must_be_plain_strings() -> None:
    report = dict(SERVER_TYPES["execution_report"].example)
    for value in (30000, "3e4", "1.", ".5", 1.5, Decimal("1")):
        error = validate_server_message({**report, "price": value})
        assert isinstance(error, ProtocolError), value
        assert error.field == "price"


def test_server_null_only_where_nullable() -> None:
    bbo = dict(SERVER_TYPES["bbo"].example)

    assert validate_server_message({**bbo, "bid_price": None}) is None
    error = validate_server_message({**bbo, "seq": None})
    assert isinstance(error, ProtocolError)
    assert error.reason == Reason.MISSING_FIELD


def test_fill_report_requires_fill_fields() -> None:
    report = dict(SERVER_TYPES["execution_report"].example)
    del report["fee"]

    error = validate_server_message(report)

    assert isinstance(error, ProtocolError)
    assert error.field == "fee"


def test_rejected_report_requires_reject_reason() -> None:
    report = {**SERVER_TYPES["execution_report"].example, "exec_type": "rejected", "order_status": "rejected"}

    error = validate_server_message(report)

    assert isinstance(error, ProtocolError)
    assert error.field == "reject_reason"


def test_server_nested_structures_are_checked() -> None:
    depth = dict(SERVER_TYPES["depth"].example)
    orders = SERVER_TYPES["open_orders"].example
    balances = SERVER_TYPES["balances"].example

    assert validate_server_message({**depth, "bids": [["1.0"]]}) is not None
    assert validate_server_message({**depth, "asks": [[1, "2"]]}) is not None
    bad_order = {**orders["orders"][0], "extra": 1}
    assert validate_server_message({"type": "open_orders", "orders": [bad_order]}) is not None
    bad_balance = {"BTC": {"total": "1", "available": "1"}}
    assert validate_server_message({**balances, "balances": bad_balance}) is not None
    assert validate_server_message({"type": "open_orders", "orders": []}) is None


def test_server_validation_refuses_unknown_types_and_client_only_types() -> None:
    assert validate_server_message({"type": "new_order"}) is not None
    assert validate_server_message([]) is not None


def test_server_message_survives_msgpack_round_trip_and_validates() -> None:
    for spec in SERVER_MESSAGES:
        data = encode_frame(spec.example)
        (decoded,) = FrameDecoder(max_map_len=1000, max_array_len=1000).feed(data)
        assert validate_server_message(decoded) is None, spec.type
        assert msgpack.unpackb(data[4:]) == decoded


# -- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (1_714_564_800_123_456_789, "2024-05-01T12:00:00.123456Z"),
        (1_714_564_800_999_999_999, "2024-05-01T12:00:00.999999Z"),
        (1_714_564_801_000_000_000, "2024-05-01T12:00:01.000000Z"),
    ],
)
def test_format_timestamp(ns: int, text: str) -> None:
    assert text == format_timestamp(ns)
    assert validate_server_message({"type": "bbo", **_bbo(text)}) is None


def _bbo(timestamp: str) -> dict[str, Any]:
    return {
        "symbol": "X",
        "seq": 1,
        "timestamp": timestamp,
        "bid_price": None,
        "bid_quantity": None,
        "ask_price": None,
        "ask_quantity": None,
    }
