"""Hypothesis fuzzing of the decoders and the validator (test plan C6 F1, CI size).

Whatever bytes arrive, the decoders return only message dicts and ProtocolError values (never
raise), a fatal error is always last, buffering stays bounded, and feeding the same bytes in any
chunks gives the same result as feeding them at once.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingapp.engine.reasons import Reason
from tradingapp.protocol import (
    CLIENT_MESSAGES,
    FrameDecoder,
    JsonLinesDecoder,
    ProtocolError,
    ServerCodec,
    encode_frame,
    validate_client_message,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = 1024

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.binary(max_size=30)
)
msgpack_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=6)
        | st.dictionaries(st.text(max_size=12) | st.integers(0, 9), children, max_size=6)
    ),
    max_leaves=25,
)
field_names = st.sampled_from(
    ["type", "symbol", "side", "quantity", "price", "order_id", "channels", "request_id", "depth", "x"]
)
type_names = st.sampled_from([m.type for m in CLIENT_MESSAGES] + ["execution_report", "nope", ""])
message_like = st.dictionaries(field_names, msgpack_values, max_size=8).flatmap(
    lambda d: type_names.map(lambda t: {**d, "type": t}) | st.just(d)
)


def frame_pieces() -> st.SearchStrategy[bytes]:
    """Valid frames of arbitrary msgpack, message-like frames, bad headers and raw noise."""
    packed = msgpack_values.map(lambda v: msgpack.packb(v, use_bin_type=True))
    valid = (packed | message_like.map(msgpack.packb)).filter(lambda b: 0 < len(b) <= MAX)
    return st.one_of(
        valid.map(lambda body: len(body).to_bytes(4, "big") + body),
        st.integers(min_value=0, max_value=2**32 - 1).map(lambda n: n.to_bytes(4, "big")),
        st.binary(max_size=40).map(lambda body: len(body).to_bytes(4, "big") + body),
        st.binary(max_size=40),
    )


def canonical(items: list[Any]) -> list[Any]:
    """Comparable form of decoder output (NaN != NaN, so compare reprs)."""
    return [
        (item.to_message(), item.fatal) if isinstance(item, ProtocolError) else repr(item) for item in items
    ]


def check_items(items: list[Any]) -> None:
    for i, item in enumerate(items):
        assert type(item) is dict or isinstance(item, ProtocolError), item
        if isinstance(item, ProtocolError):
            assert isinstance(item.reason, Reason)
            assert isinstance(item.text, str)
            if item.fatal:
                assert i == len(items) - 1


def feed_in_chunks(decoder: Any, data: bytes, cuts: list[int], bound: int) -> list[Any]:
    items: list[Any] = []
    start = 0
    for cut in [*sorted(cuts), len(data)]:
        items += decoder.feed(data[start:cut])
        start = cut
        assert decoder.buffered <= bound
    return items


# -- binary -------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000))
def test_frame_decoder_never_raises_on_random_bytes(data: bytes) -> None:
    decoder = FrameDecoder(MAX)

    items = decoder.feed(data)

    check_items(items)
    assert decoder.buffered <= MAX + 4
    assert decoder.closed == any(isinstance(i, ProtocolError) and i.fatal for i in items)


@FUZZ
@given(st.lists(frame_pieces(), max_size=12), st.data())
def test_frame_decoder_result_does_not_depend_on_chunking(pieces: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(pieces)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))

    whole = FrameDecoder(MAX).feed(stream)
    chunked = feed_in_chunks(FrameDecoder(MAX), stream, cuts, MAX + 4)

    check_items(whole)
    assert canonical(whole) == canonical(chunked)


@FUZZ
@given(msgpack_values)
def test_every_decoded_frame_is_a_map_or_a_fatal_error(value: Any) -> None:
    body = msgpack.packb(value, use_bin_type=True)

    items = FrameDecoder(max(len(body), 1)).feed(len(body).to_bytes(4, "big") + body)

    assert len(items) == 1
    if type(value) is dict and len(value) <= 32 and all(type(k) in (str, bytes) for k in value):
        assert type(items[0]) is dict or (isinstance(items[0], ProtocolError) and items[0].fatal)
    else:
        assert isinstance(items[0], ProtocolError) and items[0].fatal


@FUZZ
@given(st.integers(min_value=MAX + 1, max_value=2**32 - 1), st.binary(max_size=100))
def test_oversized_header_is_refused_whatever_follows(length: int, tail: bytes) -> None:
    decoder = FrameDecoder(MAX)

    items = decoder.feed(length.to_bytes(4, "big") + tail)

    assert len(items) == 1
    assert isinstance(items[0], ProtocolError)
    assert items[0].reason == Reason.FRAME_TOO_LARGE
    assert decoder.buffered == 0


# -- JSON-lines ---------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
lines = st.one_of(
    json_values.map(json.dumps),
    message_like.map(lambda d: json.dumps(d, default=repr)),
    st.text(max_size=80),
    st.lists(st.sampled_from(["buy", "sell", "BTC-USDT", "1", "0.5", "limit", "stop_limit", "id", "x"])).map(
        " ".join
    ),
)


@FUZZ
@given(st.binary(max_size=3000))
def test_json_lines_decoder_never_raises_on_random_bytes(data: bytes) -> None:
    decoder = JsonLinesDecoder(MAX)

    items = decoder.feed(data)

    check_items(items)
    assert decoder.buffered <= MAX + 1


@settings(FUZZ, max_examples=150)
@given(st.lists(lines, max_size=8), st.data())
def test_json_lines_result_does_not_depend_on_chunking(text_lines: list[str], data: st.DataObject) -> None:
    stream = "\n".join(text_lines).encode("utf-8", "surrogatepass") + b"\n"
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))

    whole = JsonLinesDecoder(MAX).feed(stream)
    chunked = feed_in_chunks(JsonLinesDecoder(MAX), stream, cuts, MAX + 1)

    check_items(whole)
    assert canonical(whole) == canonical(chunked)


# -- validation and the whole codec -------------------------------------------------------------


@FUZZ
@given(message_like)
def test_validator_never_raises(message: dict[Any, Any]) -> None:
    result = validate_client_message(message)

    assert type(result) is dict or (isinstance(result, ProtocolError) and not result.fatal)


@st.composite
def mutated_examples(draw: st.DrawFn) -> tuple[dict[str, Any], bool]:
    spec = draw(st.sampled_from(CLIENT_MESSAGES))
    message = json.loads(json.dumps(dict(spec.example)))
    action = draw(st.sampled_from(["keep", "drop", "replace", "add"]))
    keys = [k for k in message if k != "type"]
    if action == "drop" and keys:
        del message[draw(st.sampled_from(keys))]
    elif action == "replace" and keys:
        message[draw(st.sampled_from(keys))] = draw(msgpack_values)
    elif action == "add":
        message[draw(st.text(min_size=1, max_size=10))] = draw(msgpack_values)
    return message, action == "keep"


@FUZZ
@given(mutated_examples())
def test_schema_driven_mutations_are_validated_without_raising(case: tuple[dict[str, Any], bool]) -> None:
    message, untouched = case

    result = validate_client_message(message)

    assert type(result) is dict or isinstance(result, ProtocolError)
    if untouched:
        assert type(result) is dict
    if isinstance(result, ProtocolError):
        assert validate_client_message(result.to_message()) is not None  # a reject is no request


@FUZZ
@given(mutated_examples(), st.data())
def test_codec_end_to_end_in_both_modes(case: tuple[dict[str, Any], bool], data: st.DataObject) -> None:
    message, _ = case
    noise = data.draw(st.binary(max_size=50))
    for stream in (encode_frame(message) + noise, json.dumps(message, default=repr).encode() + b"\n" + noise):
        codec = ServerCodec(MAX)
        items = codec.feed(stream)
        check_items(items)
