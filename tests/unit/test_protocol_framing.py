"""Binary framing, JSON-lines splitting and the per-connection codec (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from decimal import Decimal

import msgpack
import pytest

from tradingapp.engine.reasons import Reason
from tradingapp.engine.types import Side
from tradingapp.protocol import (
    DEFAULT_MAX_FRAME,
    MAX_FRAME_LIMIT,
    FrameDecoder,
    JsonLinesDecoder,
    Mode,
    ProtocolError,
    ServerCodec,
    detect_mode,
    encode_frame,
    encode_json_line,
)

NEW_ORDER = {
    "type": "new_order",
    "client_order_id": "o-1",
    "symbol": "BTC-USDT",
    "side": "buy",
    "order_type": "limit",
    "quantity": "0.5",
    "price": "30000",
}


def header(length: int) -> bytes:
    return length.to_bytes(4, "big")


def raw_frame(body: bytes) -> bytes:
    return header(len(body)) + body


def only_error(items: Sequence[object]) -> ProtocolError:
    assert len(items) == 1, items
    error = items[0]
    assert isinstance(error, ProtocolError)
    return error


# -- binary: good input -------------------------------------------------------------------------


def test_frame_round_trip_returns_the_same_map() -> None:
    decoder = FrameDecoder()

    items = decoder.feed(encode_frame(NEW_ORDER))

    assert items == [NEW_ORDER]
    assert decoder.buffered == 0


def test_several_frames_in_one_feed_come_out_in_order() -> None:
    messages = [{"type": "heartbeat", "request_id": i} for i in range(50)]
    data = b"".join(encode_frame(m) for m in messages)

    assert messages == FrameDecoder().feed(data)


def test_frames_fed_one_byte_at_a_time_decode_the_same() -> None:
    messages = [NEW_ORDER, {"type": "heartbeat"}, {"type": "balances", "request_id": "b" * 64}]
    data = b"".join(encode_frame(m) for m in messages)
    decoder = FrameDecoder()

    items = [item for i in range(len(data)) for item in decoder.feed(data[i : i + 1])]

    assert messages == items
    assert decoder.buffered == 0


@pytest.mark.parametrize("cut", [1, 3, 4, 5, 20])
def test_frame_split_at_any_point_decodes_once_complete(cut: int) -> None:
    data = encode_frame(NEW_ORDER) * 2
    decoder = FrameDecoder()

    first = decoder.feed(data[:cut])
    second = decoder.feed(data[cut:])

    assert first == []
    assert second == [NEW_ORDER, NEW_ORDER]


def test_frame_of_exactly_max_frame_is_accepted_repeatedly() -> None:
    body = msgpack.packb({"type": "logout", "text": ""})
    padding = 100 - len(body)
    body = msgpack.packb({"type": "logout", "text": "x" * (padding - 1)})
    assert len(body) == 100
    decoder = FrameDecoder(100)

    items = decoder.feed(raw_frame(body) * 5)

    assert len(items) == 5
    assert all(type(item) is dict for item in items)


def test_encode_frame_turns_enums_and_decimals_into_wire_values() -> None:
    data = encode_frame({"type": "x", "side": Side.BUY, "price": Decimal("1.50")})

    assert msgpack.unpackb(data[4:]) == {"type": "x", "side": "buy", "price": "1.50"}


def test_encode_frame_refuses_unknown_types() -> None:
    with pytest.raises(TypeError):
        encode_frame({"type": "x", "value": object()})


def test_decoder_refuses_a_max_frame_above_the_protocol_limit() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(MAX_FRAME_LIMIT + 1)
    with pytest.raises(ValueError):
        FrameDecoder(0)


# -- binary: hostile input (test plan C5 B1, B2, B4) --------------------------------------------


def test_length_zero_is_fatal_malformed() -> None:
    decoder = FrameDecoder()

    error = only_error(decoder.feed(header(0)))

    assert error.reason == Reason.MALFORMED_MESSAGE
    assert error.fatal
    assert decoder.closed


@pytest.mark.parametrize("length", [DEFAULT_MAX_FRAME + 1, 2**31, 2**32 - 1])
def test_oversized_length_is_fatal_before_any_body_arrives(length: int) -> None:
    decoder = FrameDecoder()

    error = only_error(decoder.feed(header(length)))

    assert error.reason == Reason.FRAME_TOO_LARGE
    assert error.fatal
    assert decoder.buffered == 0


def test_oversized_length_drops_the_body_that_came_with_it() -> None:
    decoder = FrameDecoder(1024)

    error = only_error(decoder.feed(header(2000) + b"\x00" * 2000))

    assert error.reason == Reason.FRAME_TOO_LARGE
    assert decoder.buffered == 0


def test_good_frames_before_a_bad_one_are_returned_first() -> None:
    decoder = FrameDecoder()

    items = decoder.feed(encode_frame(NEW_ORDER) + header(0) + encode_frame(NEW_ORDER))

    assert items[0] == NEW_ORDER
    assert isinstance(items[1], ProtocolError)
    assert len(items) == 2


def test_closed_decoder_ignores_further_input() -> None:
    decoder = FrameDecoder()
    decoder.feed(header(0))

    assert decoder.feed(encode_frame(NEW_ORDER)) == []


def test_length_one_with_a_non_map_body_is_fatal() -> None:
    error = only_error(FrameDecoder().feed(raw_frame(b"\xc0")))

    assert error.reason == Reason.MALFORMED_MESSAGE
    assert "map" in error.text
    assert error.fatal


@pytest.mark.parametrize("partial", [b"\x00", b"\x00\x00\x00", header(10), header(10) + b"\x81\xa4"])
def test_truncated_input_waits_without_output(partial: bytes) -> None:
    decoder = FrameDecoder()

    assert decoder.feed(partial) == []
    assert len(partial) == decoder.buffered
    assert not decoder.closed


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"\xc1", id="never-used byte"),
        pytest.param(b"\x81\xa4type", id="map truncated inside the frame"),
        pytest.param(b"\x80\x80", id="two objects in one frame"),
        pytest.param(b"\xa1\xff", id="invalid utf-8 str"),
        pytest.param(b"\x81\x01\x02", id="int key"),
        pytest.param(b"\x81\xc0\x02", id="nil key"),
        pytest.param(b"\x81\x91\x01\x02", id="list key"),
        pytest.param(b"\xd4\x01\x00", id="ext type"),
        pytest.param(b"\x81\xa4type\xd4\x05\x00", id="ext type as a value"),
        pytest.param(b"\xdd\x00\x0f\x42\x40", id="array of 10**6 items"),
        pytest.param(b"\xdf\x00\x0f\x42\x40", id="map of 10**6 items"),
        pytest.param(b"\xdb\xff\xff\xff\xff", id="str of 4 GiB"),
        pytest.param(b"\x91" * 5000 + b"\xc0", id="5000-deep nesting"),
        pytest.param(msgpack.packb(7), id="int"),
        pytest.param(msgpack.packb([1, 2]), id="list"),
        pytest.param(msgpack.packb(None), id="nil"),
        pytest.param(msgpack.packb("type"), id="str"),
        pytest.param(msgpack.packb({f"k{i}": i for i in range(33)}), id="33 keys"),
    ],
)
def test_malformed_body_is_fatal_malformed_message(body: bytes) -> None:
    decoder = FrameDecoder()

    error = only_error(decoder.feed(raw_frame(body)))

    assert error.reason == Reason.MALFORMED_MESSAGE
    assert error.fatal
    assert decoder.closed
    assert decoder.buffered == 0
    assert not error.text.rstrip().endswith(":"), error.text  # the text says something


def test_deep_nesting_inside_a_map_decodes_and_is_left_to_validation() -> None:
    body = b"\x81\xa4type" + b"\x91" * 100 + b"\xc0"

    items = FrameDecoder().feed(raw_frame(body))

    assert len(items) == 1
    assert type(items[0]) is dict


def test_msgpack_timestamp_value_decodes_but_no_field_accepts_it() -> None:
    from tradingapp.protocol import validate_client_message

    body = msgpack.packb({"type": "heartbeat", "test_request_id": msgpack.Timestamp(1, 0)})
    codec = ServerCodec()

    (error,) = codec.feed(raw_frame(body))

    assert isinstance(error, ProtocolError)
    assert (error.reason, error.field) == (Reason.INVALID_FIELD, "test_request_id")
    assert not error.fatal
    assert isinstance(validate_client_message({"type": "heartbeat"}), dict)


def test_bin_keys_decode_but_are_not_field_names() -> None:
    items = FrameDecoder().feed(raw_frame(msgpack.packb({b"type": "heartbeat"}, use_bin_type=True)))

    assert items == [{b"type": "heartbeat"}]


# -- JSON-lines ---------------------------------------------------------------------------------


def test_json_line_parses_numbers_as_decimal_and_int() -> None:
    decoder = JsonLinesDecoder()

    items = decoder.feed(b'{"type": "new_order", "quantity": 0.1, "price": 30000, "depth": 1e2}\n')

    assert [
        {"type": "new_order", "quantity": Decimal("0.1"), "price": 30000, "depth": Decimal("1e2")}
    ] == items
    assert type(items[0]["price"]) is int  # type: ignore[index]


def test_json_nan_and_infinity_become_non_finite_decimals() -> None:
    items = JsonLinesDecoder().feed(b'{"a": NaN, "b": Infinity, "c": -Infinity}\n')

    assert len(items) == 1
    values = items[0].values()  # type: ignore[union-attr]
    assert all(isinstance(v, Decimal) and not v.is_finite() for v in values)


def test_json_lines_fed_one_byte_at_a_time() -> None:
    data = b'{"type": "heartbeat"}\r\n\n   \n{"type": "balances"}\n'
    decoder = JsonLinesDecoder()

    items = [item for i in range(len(data)) for item in decoder.feed(data[i : i + 1])]

    assert items == [{"type": "heartbeat"}, {"type": "balances"}]


def test_multibyte_utf8_split_across_feeds_is_not_refused() -> None:
    data = '{"type": "test_request", "test_request_id": "\u20ac\u00e9"}\n'.encode()
    decoder = JsonLinesDecoder()

    items = [item for i in range(len(data)) for item in decoder.feed(data[i : i + 1])]

    assert items == [{"type": "test_request", "test_request_id": "\u20ac\u00e9"}]


def test_invalid_utf8_is_refused_at_its_first_bad_byte_and_the_line_skipped() -> None:
    decoder = JsonLinesDecoder()
    refused = ProtocolError(Reason.MALFORMED_MESSAGE, "line is not valid UTF-8")

    assert decoder.feed(b"ping 1\nping \xe2\x82") == [{"type": "test_request", "test_request_id": "1"}]
    assert decoder.feed(b"\xff") == [refused]  # before any newline
    assert decoder.feed(b"\xff more") == []  # the same line: refused once
    assert decoder.feed(b"\n\xff\xff\xff\xff") == [refused]  # a new line, refused at once
    assert decoder.feed(b"\nping 2\n") == [{"type": "test_request", "test_request_id": "2"}]


def test_blank_lines_are_ignored() -> None:
    assert JsonLinesDecoder().feed(b"\n\r\n  \t \n") == []


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"{not json}", id="bad json"),
        pytest.param(b'{"a": 1', id="truncated json"),
        pytest.param(b"{" + b'"a":' * 5000 + b"1" + b"}" * 5000, id="deep json"),
        pytest.param(b'{"a": ' + b"1" * 5000 + b"}", id="5000-digit int"),
        pytest.param(b'{"a": 0.' + b"1" * 50 + b"}", id="50-digit decimal"),
        pytest.param(b"{\xff\xfe}", id="invalid utf-8"),
        pytest.param(b'{"a": 1} {"b": 2}', id="two objects"),
        pytest.param(b"frobnicate now", id="unknown human command"),
    ],
)
def test_bad_line_is_a_non_fatal_malformed_message(line: bytes) -> None:
    decoder = JsonLinesDecoder()

    items = decoder.feed(line + b"\n" + b'{"type": "heartbeat"}\n')

    assert isinstance(items[0], ProtocolError)
    assert items[0].reason == Reason.MALFORMED_MESSAGE
    assert not items[0].fatal
    assert items[1:] == [{"type": "heartbeat"}]
    assert not decoder.closed


def test_json_array_line_is_parsed_as_a_human_command_and_refused() -> None:
    error = only_error(JsonLinesDecoder().feed(b"[1, 2]\n"))

    assert error.reason == Reason.MALFORMED_MESSAGE


def test_line_of_exactly_max_line_is_accepted() -> None:
    line = b'{"type": "logout", "text": "' + b"x" * 64 + b'"}'

    items = JsonLinesDecoder(len(line)).feed(line + b"\r\n")

    assert len(items) == 1
    assert type(items[0]) is dict


def test_complete_line_over_max_line_is_fatal() -> None:
    decoder = JsonLinesDecoder(100)

    error = only_error(decoder.feed(b"x" * 101 + b"\n"))

    assert error.reason == Reason.FRAME_TOO_LARGE
    assert error.fatal
    assert decoder.closed


def test_unterminated_line_over_max_line_is_fatal_without_waiting_for_newline() -> None:
    decoder = JsonLinesDecoder(100)

    assert decoder.feed(b"x" * 60) == []
    error = only_error(decoder.feed(b"x" * 60))

    assert error.reason == Reason.FRAME_TOO_LARGE
    assert decoder.buffered == 0


def test_slow_json_line_is_not_rescanned_per_byte() -> None:
    decoder = JsonLinesDecoder(DEFAULT_MAX_FRAME)
    line = b'{"type": "logout", "text": "' + b"y" * 60000 + b'"}\n'

    items = [item for i in range(len(line)) for item in decoder.feed(line[i : i + 1])]

    assert len(items) == 1


def test_encode_json_line_is_compact_utf8_with_decimal_strings() -> None:
    data = encode_json_line({"type": "x", "price": Decimal("2.50"), "side": Side.SELL, "text": "é"})

    assert data.endswith(b"\n")
    assert data.count(b"\n") == 1
    assert json.loads(data) == {"type": "x", "price": "2.50", "side": "sell", "text": "é"}


def test_encode_json_line_refuses_floats_nan() -> None:
    with pytest.raises(ValueError):
        encode_json_line({"type": "x", "value": float("nan")})


# -- mode detection and the connection codec ------------------------------------------------------


def test_detect_mode_by_first_byte() -> None:
    assert detect_mode(0) == Mode.BINARY
    assert detect_mode(ord("{")) == Mode.JSON_LINES
    assert detect_mode(ord("b")) == Mode.JSON_LINES


def test_codec_in_binary_mode_decodes_and_validates() -> None:
    codec = ServerCodec()

    items = codec.feed(encode_frame(NEW_ORDER) + encode_frame({"type": "nope"}))

    assert codec.mode == Mode.BINARY
    assert items[0]["self_trade_prevention"] == "cancel_newest"  # type: ignore[index]
    assert isinstance(items[1], ProtocolError)
    assert items[1].reason == Reason.UNKNOWN_MESSAGE_TYPE
    assert codec.encode({"type": "heartbeat"}) == encode_frame({"type": "heartbeat"})


def test_codec_in_json_mode_decodes_validates_and_answers_in_json() -> None:
    codec = ServerCodec(id_prefix="c7-")

    items = codec.feed(b"buy BTC-USDT 1 market\n" + json.dumps(NEW_ORDER).encode() + b"\n")

    assert codec.mode == Mode.JSON_LINES
    assert items[0]["client_order_id"] == "c7-1"  # type: ignore[index]
    assert items[1]["client_order_id"] == "o-1"  # type: ignore[index]
    assert codec.encode({"type": "heartbeat"}) == b'{"type":"heartbeat"}\n'


def test_codec_waits_for_the_first_byte() -> None:
    codec = ServerCodec()

    assert codec.feed(b"") == []
    assert codec.mode is None
    assert not codec.closed


def test_codec_validation_errors_are_not_fatal_but_framing_errors_are() -> None:
    codec = ServerCodec()

    items = codec.feed(encode_frame({"type": "new_order"}) + header(0))

    assert [item.fatal for item in items if isinstance(item, ProtocolError)] == [False, True]
    assert codec.closed


def test_reject_message_from_an_error_is_a_valid_server_message() -> None:
    from tradingapp.protocol import validate_server_message

    error = only_error(FrameDecoder().feed(header(0)))

    assert validate_server_message(error.to_message()) is None
