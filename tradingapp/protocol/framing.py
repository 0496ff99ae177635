"""Byte streams to messages and back, with no I/O (sans-I/O, like h11).

Two encodings share one port; the first byte a client sends decides (:func:`detect_mode`):

* **binary**: a 4-byte big-endian length, then that many bytes holding one msgpack map. The
  length is checked as soon as its 4 bytes arrive, before any of the body is kept: 0 or more
  than ``max_frame`` is fatal. Because ``max_frame`` is at most 16 MiB the first byte of a binary
  stream is always 0x00.
* **JSON-lines**: one JSON object per line (numbers parsed as ``Decimal``), or a line of the
  human form (:mod:`tradingapp.protocol.human`). Lines longer than ``max_line`` are fatal; a
  line that does not parse is rejected and the connection goes on, since the line framing is
  intact. A line that cannot be UTF-8 is rejected as soon as its first bad byte arrives (a
  binary header such as 0xFFFFFFFF sent as the first bytes would otherwise wait for a newline
  that never comes); the rest of it is skipped.

Decoders return a list whose items are decoded message dicts or :class:`ProtocolError` values,
in stream order, and never raise whatever bytes arrive. A fatal error is always the last item;
after it the decoder is ``closed`` and ignores further input, and the caller sends the reject and
closes the connection. Buffering is bounded by ``max_frame`` plus the size of one ``feed``.
"""

from __future__ import annotations

import codecs
import json
import struct
from collections.abc import Mapping
from decimal import Decimal
from enum import Enum, StrEnum
from itertools import count
from typing import Any

import msgpack

from tradingapp.engine.numbers import MAX_DECIMAL_CHARS
from tradingapp.engine.reasons import Reason
from tradingapp.protocol.errors import ProtocolError
from tradingapp.protocol.human import parse_human
from tradingapp.protocol.schema import (
    DEFAULT_MAX_FRAME,
    MAX_FRAME_LIMIT,
    MAX_KEYS,
    ClientMessage,
    type_name,
    validate_client_message,
)

Decoded = dict[str, Any] | ProtocolError

#: Default bound on msgpack array lengths when decoding client input (``channels`` has 3 items).
DEFAULT_MAX_ARRAY = 64
_HEADER = 4
_unpack_header = struct.Struct(">I").unpack_from


class Mode(StrEnum):
    """The encoding a connection speaks."""

    BINARY = "binary"
    JSON_LINES = "json_lines"


def detect_mode(first_byte: int) -> Mode:
    """Return the mode of a connection from the first byte the client sent."""
    return Mode.BINARY if first_byte == 0 else Mode.JSON_LINES


def _check_max(max_size: int) -> int:
    if type(max_size) is not int or not 1 <= max_size <= MAX_FRAME_LIMIT:
        raise ValueError(f"max frame must be an integer from 1 to {MAX_FRAME_LIMIT}, got {max_size!r}")
    return max_size


def _refuse_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


# -- binary -------------------------------------------------------------------------------------


class FrameDecoder:
    """Split a binary stream into length-prefixed msgpack maps.

    ``max_map_len`` and ``max_array_len`` bound every map and array in a frame (defaults fit
    client messages; a client decoding server messages passes larger ones). Cost: one msgpack
    unpack per frame through a reusable ``Unpacker``; a partial frame is copied once, when it
    completes.
    """

    def __init__(
        self,
        max_frame: int = DEFAULT_MAX_FRAME,
        *,
        max_map_len: int = MAX_KEYS,
        max_array_len: int = DEFAULT_MAX_ARRAY,
    ) -> None:
        self.max_frame = _check_max(max_frame)
        # One Unpacker for the whole stream: its limits are parsed once, not per frame. Each
        # frame body is fed whole and must decode to exactly one object (checked with tell()).
        self._unpacker = msgpack.Unpacker(
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            max_buffer_size=max_frame,
            max_str_len=max_frame,
            max_bin_len=max_frame,
            max_ext_len=max_frame,
            max_array_len=max_array_len,
            max_map_len=max_map_len,
        )
        self._consumed = 0  # body bytes fed to the unpacker so far
        self._pending = bytearray()  # start of an incomplete frame
        self._need = _HEADER  # bytes _pending must reach before it is worth parsing
        self.closed = False

    @property
    def buffered(self) -> int:
        """Number of bytes held for an incomplete frame."""
        return len(self._pending)

    def feed(self, data: bytes) -> list[Decoded]:
        """Consume ``data``; return the complete messages and errors, in order."""
        if self.closed:
            return []
        if self._pending:
            self._pending += data
            if len(self._pending) < self._need:
                return []
            data = bytes(self._pending)
            self._pending.clear()
        out: list[Decoded] = []
        size = len(data)
        pos = 0
        max_frame = self.max_frame
        unpacker = self._unpacker
        while size - pos >= _HEADER:
            (length,) = _unpack_header(data, pos)
            if length == 0 or length > max_frame:
                out.append(self._fail_header(length))
                return out
            end = pos + _HEADER + length
            if end > size:
                self._pending += data[pos:]
                self._need = _HEADER + length
                return out
            self._consumed += length
            try:
                unpacker.feed(data[pos + _HEADER : end])
                obj = unpacker.unpack()
                if unpacker.tell() != self._consumed:
                    raise ValueError("frame holds more than one msgpack object")
            except Exception as e:  # any malformed input: msgpack raises several types
                detail = str(e)[:80] or "not a valid msgpack object"  # FormatError has no text
                out.append(self._fail_body(f"invalid msgpack: {type(e).__name__}: {detail}"))
                return out
            if type(obj) is not dict:
                out.append(self._fail_body(f"a frame must hold a map, not {type_name(obj)}"))
                return out
            out.append(obj)
            pos = end
        if pos < size:
            self._pending += data[pos:]
        self._need = _HEADER
        return out

    def _fail_header(self, length: int) -> ProtocolError:
        self.closed = True
        self._pending = bytearray()
        if length == 0:
            return ProtocolError(Reason.MALFORMED_MESSAGE, "frame length 0 is not allowed", fatal=True)
        return ProtocolError(
            Reason.FRAME_TOO_LARGE,
            f"frame of {length} bytes exceeds the maximum of {self.max_frame}",
            fatal=True,
        )

    def _fail_body(self, text: str) -> ProtocolError:
        self.closed = True
        self._pending = bytearray()
        return ProtocolError(Reason.MALFORMED_MESSAGE, text, fatal=True)


def _pack_default(value: Any) -> Any:
    # Convenience for server code: enum members go out as their wire value, Decimals as strings
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


_packer = msgpack.Packer(use_bin_type=True, default=_pack_default, autoreset=True)


def encode_frame(msg: Mapping[str, Any]) -> bytes:
    """Return ``msg`` as one binary frame (length prefix + msgpack map).

    Raises TypeError for a value msgpack cannot carry and ValueError for a frame above 16 MiB;
    both mean a bug in the caller, never bad client input. Uses one module-level msgpack Packer:
    call it from the event loop's thread only.
    """
    body = _packer.pack(msg)
    if len(body) > MAX_FRAME_LIMIT:
        raise ValueError(f"message of {len(body)} bytes exceeds the protocol's frame limit")
    return len(body).to_bytes(_HEADER, "big") + body


# -- JSON-lines ---------------------------------------------------------------------------------


def _parse_json_number(text: str) -> Decimal:
    if len(text) > MAX_DECIMAL_CHARS:
        raise ValueError(f"number longer than {MAX_DECIMAL_CHARS} characters")
    return Decimal(text)


def _parse_json_int(text: str) -> int:
    if len(text) > MAX_DECIMAL_CHARS:
        raise ValueError(f"number longer than {MAX_DECIMAL_CHARS} characters")
    return int(text)


class JsonLinesDecoder:
    """Split a text stream into lines; each becomes a message from JSON or the human form.

    Blank lines are ignored; ``\\r\\n`` endings are accepted. ``id_prefix`` starts the
    ``client_order_id`` generated for human-form orders (``h1``, ``h2``, ...); pass something
    unique per connection. Cost: one ``find`` per feed (never rescanning old bytes) and one
    ``json.loads`` per line; an incomplete line is checked for UTF-8 as its bytes arrive.
    """

    def __init__(self, max_line: int = DEFAULT_MAX_FRAME, *, id_prefix: str = "h") -> None:
        self.max_line = _check_max(max_line)
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already known to hold no newline
        counter = count(1)
        self._next_id = lambda: f"{id_prefix}{next(counter)}"
        self.closed = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()  # checks the incomplete line
        self._bad_line = False  # the incomplete line was already refused as not UTF-8

    @property
    def buffered(self) -> int:
        """Number of bytes held for an incomplete line."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Decoded]:
        """Consume ``data``; return the complete messages and errors, in order."""
        if self.closed:
            return []
        buf = self._buf
        buf += data
        out: list[Decoded] = []
        start = 0
        search = self._scanned
        max_line = self.max_line
        while True:
            newline = buf.find(b"\n", search)
            if newline < 0:
                break
            if newline - start > max_line + 1:  # +1: a \r before the \n is not content
                out.append(self._fail_long())
                return out
            line = bytes(buf[start:newline])
            if line.endswith(b"\r"):
                line = line[:-1]
            if len(line) > max_line:
                out.append(self._fail_long())
                return out
            if self._bad_line:
                self._bad_line = False  # refused when its first bad byte arrived
            else:
                item = self.decode_line(line)
                if item is not None:
                    out.append(item)
            start = search = newline + 1
        checked = self._scanned
        if start:
            del buf[:start]
            checked = 0
            self._utf8.reset()
        if len(buf) > max_line + 1:
            out.append(self._fail_long())
            return out
        if len(buf) > checked and not self._bad_line:
            try:
                self._utf8.decode(bytes(buf[checked:]))
            except UnicodeDecodeError:
                self._bad_line = True
                out.append(ProtocolError(Reason.MALFORMED_MESSAGE, "line is not valid UTF-8"))
        self._scanned = len(buf)
        return out

    def _fail_long(self) -> ProtocolError:
        self.closed = True
        self._buf = bytearray()
        return ProtocolError(
            Reason.FRAME_TOO_LARGE, f"line longer than the maximum of {self.max_line} bytes", fatal=True
        )

    def decode_line(self, line: bytes) -> Decoded | None:
        """Return the message (or error) one line (without its newline) holds; None if blank."""
        try:
            text = line.decode("utf-8").strip()
        except UnicodeDecodeError:
            return ProtocolError(Reason.MALFORMED_MESSAGE, "line is not valid UTF-8")
        if not text:
            return None
        if text[0] != "{":
            return parse_human(text, self._next_id)
        try:
            obj = json.loads(
                text,
                parse_float=_parse_json_number,
                parse_int=_parse_json_int,
                parse_constant=Decimal,  # NaN, Infinity: refused by validation, naming the field
            )
        except (ValueError, RecursionError) as e:
            return ProtocolError(Reason.MALFORMED_MESSAGE, f"invalid JSON: {str(e)[:80]}")
        if type(obj) is not dict:
            return ProtocolError(Reason.MALFORMED_MESSAGE, "a JSON line must hold one object")
        return obj


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


_json_encoder = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_json_default
)


def encode_json_line(msg: Mapping[str, Any]) -> bytes:
    """Return ``msg`` as one JSON line (UTF-8, compact, ending in ``\\n``)."""
    return (_json_encoder.encode(msg) + "\n").encode("utf-8")


# -- one connection, either mode ----------------------------------------------------------------


class ServerCodec:
    """The server side of one connection: detect the mode, decode, validate, encode.

    ``feed`` returns validated client messages and :class:`ProtocolError` values in order
    (send ``error.to_message()``; close after a ``fatal`` one). ``encode`` turns a server message
    into bytes in the connection's mode (binary until the mode is known).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME, *, id_prefix: str = "h") -> None:
        self.max_frame = _check_max(max_frame)
        self.id_prefix = id_prefix
        self.mode: Mode | None = None
        self._decoder: FrameDecoder | JsonLinesDecoder | None = None

    @property
    def closed(self) -> bool:
        """True after a fatal error; further input is ignored."""
        return self._decoder is not None and self._decoder.closed

    @property
    def buffered(self) -> int:
        """Number of bytes held for an incomplete message."""
        return 0 if self._decoder is None else self._decoder.buffered

    def feed(self, data: bytes) -> list[ClientMessage | ProtocolError]:
        """Consume bytes from the client; return validated messages and errors, in order."""
        decoder = self._decoder
        if decoder is None:
            if not data:
                return []
            self.mode = detect_mode(data[0])
            if self.mode is Mode.BINARY:
                decoder = FrameDecoder(self.max_frame)
            else:
                decoder = JsonLinesDecoder(self.max_frame, id_prefix=self.id_prefix)
            self._decoder = decoder
        items = decoder.feed(data)
        for i, item in enumerate(items):
            if type(item) is dict:
                items[i] = validate_client_message(item)
        return items

    def encode(self, msg: Mapping[str, Any]) -> bytes:
        """Return a server message as bytes in this connection's mode."""
        if self.mode is Mode.JSON_LINES:
            return encode_json_line(msg)
        return encode_frame(msg)
