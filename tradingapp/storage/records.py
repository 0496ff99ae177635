"""Journal byte formats: records and segment headers (see ``docs/persistence.md``, "Formats").

All integers are little-endian. A record is::

    u32 length     bytes after this field: 20 + len(payload)
    u32 crc        zlib.crc32 of everything after this field (seq, ts, payload)
    u64 seq        1, 2, 3, ... with no gap, across segments
    i64 ts_ns      the engine's time stamp, ns since the epoch
    payload        opaque bytes (the engine's msgpack)

A segment file starts with an 18-byte header::

    4s  magic      b"TAJ1"
    u16 version    1
    u64 first_seq  seq of the segment's first record (also in the file name)
    u32 crc        zlib.crc32 of the 14 bytes before it

The payload is never interpreted here. ``MAX_RECORD_BYTES`` bounds the length field on read, so a
damaged length can never make a reader allocate or wait for gigabytes.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Final, NamedTuple

from tradingapp.storage.errors import JournalFormatError

# -- records -----------------------------------------------------------------------------------

RECORD_PREFIX: Final = struct.Struct("<II")  # length, crc
RECORD_SEQ_TS: Final = struct.Struct("<Qq")  # seq, ts_ns
RECORD_HEADER: Final = struct.Struct("<IIQq")  # the whole fixed part
RECORD_OVERHEAD: Final = RECORD_HEADER.size  # 24 bytes before the payload
MIN_RECORD_LENGTH: Final = RECORD_OVERHEAD - 4  # value of the length field for an empty payload
MAX_RECORD_BYTES: Final = 16 * 1024 * 1024  # largest accepted value of the length field
MAX_PAYLOAD_BYTES: Final = MAX_RECORD_BYTES - MIN_RECORD_LENGTH

U64_MAX: Final = 2**64 - 1
I64_MIN: Final = -(2**63)
I64_MAX: Final = 2**63 - 1

_crc32 = zlib.crc32


class JournalRecord(NamedTuple):
    """One record as read back: its seq, the engine time stamp and the opaque payload."""

    seq: int
    ts_ns: int
    payload: bytes


def encode_record(seq: int, ts_ns: int, payload: bytes) -> bytes:
    """Return the bytes of one record; ValueError when a field is out of range."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"journal payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    if not 1 <= seq <= U64_MAX:
        raise ValueError(f"journal seq {seq} out of range")
    if not I64_MIN <= ts_ns <= I64_MAX:
        raise ValueError(f"journal time stamp {ts_ns} out of range")
    body = RECORD_SEQ_TS.pack(seq, ts_ns)
    crc = _crc32(payload, _crc32(body))
    return RECORD_PREFIX.pack(MIN_RECORD_LENGTH + len(payload), crc) + body + payload


def read_record(
    data: bytes | bytearray | memoryview, offset: int, max_record_bytes: int = MAX_RECORD_BYTES
) -> tuple[int, int, int] | str:
    """Check the record at ``offset`` of ``data``.

    Returns ``(seq, ts_ns, end_offset)`` when the record is whole and its CRC matches; otherwise a
    short reason ("truncated length field", "bad length 7", "truncated record", "bad crc"). The seq
    is not checked against anything here. The payload is ``data[offset + 24:end_offset]``.
    """
    size = len(data)
    if offset + 4 > size:
        return "truncated length field"
    (length,) = struct.unpack_from("<I", data, offset)
    if length < MIN_RECORD_LENGTH or length > max_record_bytes:
        return f"bad length {length}"
    end = offset + 4 + length
    if end > size:
        return f"truncated record (length {length}, {size - offset - 4} bytes present)"
    _, crc, seq, ts_ns = RECORD_HEADER.unpack_from(data, offset)
    if _crc32(memoryview(data)[offset + 8 : end]) != crc:
        return "bad crc"
    return seq, ts_ns, end


# -- segment header ----------------------------------------------------------------------------

SEGMENT_MAGIC: Final = b"TAJ1"  # every journal format version keeps the prefix "TAJ"
SEGMENT_VERSION: Final = 1
_SEGMENT_HEADER_BODY: Final = struct.Struct("<4sHQ")
SEGMENT_HEADER: Final = struct.Struct("<4sHQI")
SEGMENT_HEADER_SIZE: Final = SEGMENT_HEADER.size  # 18


def encode_segment_header(first_seq: int) -> bytes:
    """Return the 18-byte header of a segment whose first record will have ``first_seq``."""
    body = _SEGMENT_HEADER_BODY.pack(SEGMENT_MAGIC, SEGMENT_VERSION, first_seq)
    return body + struct.pack("<I", _crc32(body))


def parse_segment_header(data: bytes | bytearray | memoryview, path: Path) -> int | str:
    """Return the header's ``first_seq``, or a reason string when it is torn or corrupt.

    Raises :class:`JournalFormatError` for a header of another format: an intact header (its CRC
    matches) whose magic or version is not ours, or any magic ``TAJ<n>`` with ``n`` other than 1
    (a newer journal: downgrade is refused). A damaged header is only reported, so that recovery
    can drop a torn, still empty last segment.
    """
    if len(data) < SEGMENT_HEADER_SIZE:
        return f"torn segment header ({len(data)} of {SEGMENT_HEADER_SIZE} bytes)"
    magic, version, first_seq, crc = SEGMENT_HEADER.unpack_from(data, 0)
    intact = _crc32(memoryview(data)[: SEGMENT_HEADER_SIZE - 4]) == crc
    JournalFormatError.refuse_other_format(
        path, (magic, version), (SEGMENT_MAGIC, SEGMENT_VERSION), intact=intact
    )
    if not intact:
        return "corrupt segment header (bad crc)"
    if first_seq < 1:
        return f"corrupt segment header (first_seq {first_seq})"
    return int(first_seq)
