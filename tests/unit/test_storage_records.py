"""Journal record and segment-header formats: byte layout, round trips, limits, foreign formats."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from tradingapp.storage import JournalFormatError
from tradingapp.storage.records import (
    MAX_PAYLOAD_BYTES,
    RECORD_OVERHEAD,
    SEGMENT_HEADER_SIZE,
    encode_record,
    encode_segment_header,
    parse_segment_header,
    read_record,
)

P = Path("journal-00000000000000000001.seg")


def test_record_layout_byte_by_byte() -> None:
    raw = encode_record(7, -5, b"abc")
    assert len(raw) == RECORD_OVERHEAD + 3 == 27
    length, crc, seq, ts = struct.unpack_from("<IIQq", raw)
    assert length == 23  # everything after the length field
    assert (seq, ts) == (7, -5)
    assert crc == zlib.crc32(raw[8:])
    assert raw[24:] == b"abc"


def test_read_record_round_trip_and_reasons() -> None:
    raw = encode_record(1, 10, b"payload") + encode_record(2, 11, b"")
    first = read_record(raw, 0)
    assert not isinstance(first, str)
    seq, ts, end = first
    assert (seq, ts) == (1, 10)
    assert read_record(raw, end)[:2] == (2, 11)
    assert read_record(raw[:3], 0) == "truncated length field"
    assert read_record(raw[:20], 0).startswith("truncated record")  # type: ignore[union-attr]
    bad = bytearray(raw)
    bad[30] ^= 1
    assert read_record(bytes(bad), 0) == "bad crc"
    assert read_record(struct.pack("<I", 3) + bytes(40), 0) == "bad length 3"
    assert read_record(struct.pack("<I", 2**31) + bytes(40), 0) == f"bad length {2**31}"
    assert read_record(raw, 0, max_record_bytes=20) == "bad length 27"


def test_encode_record_limits() -> None:
    with pytest.raises(ValueError):
        encode_record(0, 0, b"")
    with pytest.raises(ValueError):
        encode_record(1, 2**63, b"")
    with pytest.raises(ValueError):
        encode_record(1, 0, bytes(MAX_PAYLOAD_BYTES + 1))


def test_segment_header_layout() -> None:
    header = encode_segment_header(42)
    assert len(header) == SEGMENT_HEADER_SIZE == 18
    assert header[:4] == b"TAJ1"
    assert struct.unpack_from("<HQ", header, 4) == (1, 42)
    assert struct.unpack_from("<I", header, 14)[0] == zlib.crc32(header[:14])
    assert parse_segment_header(header, P) == 42
    assert parse_segment_header(header + b"more", P) == 42


def _header(magic: bytes, version: int, first_seq: int, *, good_crc: bool = True) -> bytes:
    body = struct.pack("<4sHQ", magic, version, first_seq)
    crc = zlib.crc32(body) if good_crc else zlib.crc32(body) ^ 1
    return body + struct.pack("<I", crc)


def test_damaged_headers_are_reported_not_raised() -> None:
    header = encode_segment_header(1)
    for cut in range(SEGMENT_HEADER_SIZE):
        assert "torn" in parse_segment_header(header[:cut], P)  # type: ignore[operator]
    assert "bad crc" in parse_segment_header(_header(b"TAJ1", 1, 1, good_crc=False), P)  # type: ignore[operator]
    assert "bad crc" in parse_segment_header(bytes(18), P)  # type: ignore[operator]
    # A bit flip in the version field of a TAJ1 header is damage, not a foreign format.
    assert "bad crc" in parse_segment_header(_header(b"TAJ1", 3, 1, good_crc=False), P)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("header", "words"),
    [
        (_header(b"TAJ2", 1, 1), "TAJ2"),  # a newer format: downgrade refused
        (_header(b"TAJ2", 1, 1, good_crc=False), "TAJ2"),  # refused even if the crc moved
        (_header(b"TAJ1", 2, 1), "version 2"),
        (_header(b"XXXX", 1, 1), "not a TradingApp journal"),
        (_header(b"TAS1", 1, 1), "not a TradingApp journal"),
    ],
)
def test_foreign_formats_are_refused(header: bytes, words: str) -> None:
    with pytest.raises(JournalFormatError, match=words):
        parse_segment_header(header, P)
