"""The one error type of the protocol layer.

A :class:`ProtocolError` describes input that breaks the wire protocol, together with the
``reject`` message to send back. The decoders and the validator *return* it as a value in their
output (so it keeps its place among the good messages around it); it is also an ``Exception`` so
that callers who prefer to ``raise`` it can. ``fatal`` tells the connection to close after sending
the reject: the byte stream can no longer be trusted (oversized or malformed frame).
"""

from __future__ import annotations

import reprlib
from typing import Any, final

from tradingapp.engine.reasons import Reason

#: Longest piece of client input quoted back in an error text.
QUOTE_CHARS = 40


#: Shows at most two levels of a list or map: a full ``repr`` of a value nested a thousand deep
#: (which msgpack and JSON both decode) would exceed the interpreter's recursion limit.
_CONTAINER_REPR = reprlib.Repr()
_CONTAINER_REPR.maxlevel = 2


def quote(value: object) -> str:
    """Return ``repr(value)`` cut to a readable length (client input is quoted back in texts)."""
    text = _CONTAINER_REPR.repr(value) if isinstance(value, (list, dict)) else repr(value)
    if len(text) > QUOTE_CHARS:
        text = text[: QUOTE_CHARS - 3] + "..."
    return text


@final
class ProtocolError(Exception):
    """Input that breaks the wire protocol: the reason code, a text, and what to echo.

    Final, so that ``type(item) is ProtocolError`` narrows decoder output for type checkers.

    ``ref_type`` is the type of the offending message when known, ``request_id`` its valid
    ``request_id`` (echoed so the client can match the reject), ``field`` the field at fault.
    """

    def __init__(
        self,
        reason: Reason,
        text: str,
        *,
        fatal: bool = False,
        ref_type: str | None = None,
        request_id: str | int | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.fatal = fatal
        self.ref_type = ref_type
        self.request_id = request_id
        self.field = field

    def __repr__(self) -> str:
        return f"ProtocolError({self.reason.value}, {self.text!r}, fatal={self.fatal})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProtocolError):
            return NotImplemented
        return self.to_message() == other.to_message() and self.fatal == other.fatal

    __hash__ = Exception.__hash__

    def to_message(self) -> dict[str, Any]:
        """Return the ``reject`` message (FIX 3/j) to send for this error."""
        msg: dict[str, Any] = {"type": "reject", "reason": self.reason.value, "text": self.text}
        if self.ref_type is not None:
            msg["ref_type"] = self.ref_type
        if self.field is not None:
            msg["field"] = self.field
        if self.request_id is not None:
            msg["request_id"] = self.request_id
        return msg
