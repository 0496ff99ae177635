"""The wire protocol, sans-I/O: schema and validation, framing, JSON-lines and the human form.

The server's connection code feeds received bytes to a :class:`ServerCodec` and gets back
validated client messages (plain dicts keyed by the schema's field names) and
:class:`ProtocolError` values to answer with a ``reject``; it encodes its replies with the same
codec. Nothing here does I/O, reads a clock or logs. The message definitions live once, in
:mod:`tradingapp.protocol.schema`; ``docs/protocol.md`` is generated from them in part
(``python -m tradingapp.protocol --markdown``).
"""

from tradingapp.protocol.errors import ProtocolError
from tradingapp.protocol.framing import (
    Decoded,
    FrameDecoder,
    JsonLinesDecoder,
    Mode,
    ServerCodec,
    detect_mode,
    encode_frame,
    encode_json_line,
)
from tradingapp.protocol.human import HELP_TEXT, parse_human
from tradingapp.protocol.schema import (
    CLIENT_MESSAGES,
    CLIENT_TYPES,
    DEFAULT_MAX_FRAME,
    MAX_FRAME_LIMIT,
    MESSAGES,
    SERVER_MESSAGES,
    SERVER_TYPES,
    ClientMessage,
    Direction,
    Field,
    Kind,
    MessageSpec,
    format_timestamp,
    validate_client_message,
    validate_server_message,
)

__all__ = [
    "CLIENT_MESSAGES",
    "CLIENT_TYPES",
    "DEFAULT_MAX_FRAME",
    "HELP_TEXT",
    "MAX_FRAME_LIMIT",
    "MESSAGES",
    "SERVER_MESSAGES",
    "SERVER_TYPES",
    "ClientMessage",
    "Decoded",
    "Direction",
    "Field",
    "FrameDecoder",
    "JsonLinesDecoder",
    "Kind",
    "MessageSpec",
    "Mode",
    "ProtocolError",
    "ServerCodec",
    "detect_mode",
    "encode_frame",
    "encode_json_line",
    "format_timestamp",
    "parse_human",
    "validate_client_message",
    "validate_server_message",
]
