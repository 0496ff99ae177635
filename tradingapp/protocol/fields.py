"""The building blocks of the schema: limits, field kinds, fields, rules and message specs.

The messages themselves are declared in :mod:`tradingapp.protocol.messages`; validation is in
:mod:`tradingapp.protocol.schema`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from enum import StrEnum
from typing import Any

from tradingapp.engine.numbers import MAX_UNITS
from tradingapp.engine.reasons import Reason

# -- limits -------------------------------------------------------------------------------------

#: Default largest frame (binary) or line (JSON-lines), in bytes.
DEFAULT_MAX_FRAME = 64 * 1024
#: The largest frame the protocol allows; keeps a binary stream's first byte 0x00.
MAX_FRAME_LIMIT = 16 * 1024 * 1024
#: Most keys a message map may have.
MAX_KEYS = 32
#: Longest id or symbol string.
MAX_ID_CHARS = 64
#: Longest free text (logout text, reject text).
MAX_TEXT_CHARS = 256
#: Largest integer accepted where a decimal is expected (same bound as engine.numbers).
MAX_DECIMAL_INT = MAX_UNITS * 10**6
INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
#: Market-depth levels a client may ask for.
MIN_DEPTH, MAX_DEPTH, DEFAULT_DEPTH = 1, 50, 10
#: The figures of one latency distribution in a ``stats`` reply (integer nanoseconds but count).
LATENCY_STATS = (
    "count",
    "min",
    "mean",
    "p50",
    "p75",
    "p90",
    "p95",
    "p99",
    "p99.5",
    "p99.9",
    "p99.95",
    "p99.99",
    "max",
)


class Direction(StrEnum):
    """Who sends a message."""

    CLIENT = "client"
    SERVER = "server"


class Kind(StrEnum):
    """The value kinds a field can have (the value is the name used in the docs)."""

    STRING = "string"
    TEXT = "text"
    CLIENT_ID = "client_id"
    ANY_ID = "any_id"
    ORDER_ID = "order_id"
    DECIMAL = "decimal"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    ENUM = "enum"
    ENUM_LIST = "enum_list"
    TIMESTAMP = "timestamp"
    LEVELS = "levels"
    BALANCES = "balances"
    ORDERS = "orders"
    LATENCIES = "latencies"


#: What each kind means on the wire (rendered into the docs).
KIND_DOCS: dict[Kind, str] = {
    Kind.STRING: f"string, 1-{MAX_ID_CHARS} printable characters (longer where the table says)",
    Kind.TEXT: f"string, 0-{MAX_TEXT_CHARS} characters (free text)",
    Kind.CLIENT_ID: f"string, 1-{MAX_ID_CHARS} printable ASCII characters, no spaces",
    Kind.ANY_ID: f"string (1-{MAX_ID_CHARS} characters) or integer (signed 64-bit), echoed unchanged",
    Kind.ORDER_ID: "positive integer below 2^63 assigned by the venue; a string of digits is accepted",
    Kind.DECIMAL: (
        'client: decimal string (`"0.5"`) or integer; never a float or a boolean. '
        "server: always a plain decimal string"
    ),
    Kind.INTEGER: "integer (never a boolean), within the range the table gives",
    Kind.BOOLEAN: "`true` / `false` only",
    Kind.ENUM: "one of the listed strings",
    Kind.ENUM_LIST: "non-empty list of distinct listed strings",
    Kind.TIMESTAMP: "UTC ISO-8601 with microseconds and `Z`: `2024-05-01T12:00:00.123456Z`",
    Kind.LEVELS: "list of `[price, quantity]` decimal-string pairs, best price first",
    Kind.BALANCES: "map asset -> `{total, available, reserved}` decimal strings",
    Kind.ORDERS: "list of order states (see *Order state* below)",
    Kind.LATENCIES: (
        "map distribution name -> `{" + ", ".join(LATENCY_STATS) + "}` integers (nanoseconds, but `count`)"
    ),
}


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a message: name, kind, whether required, and the value constraints."""

    name: str
    kind: Kind
    description: str
    required: bool = False
    values: tuple[str, ...] = ()
    max_len: int = MAX_ID_CHARS
    min_value: int | None = None
    max_value: int | None = None
    default: Any = None
    nullable: bool = False  # server messages: null is a legal value (e.g. an empty book side)
    reason: Reason = Reason.INVALID_FIELD  # reason for a wrong value


@dataclass(frozen=True, slots=True)
class RequiredWhen:
    """``field`` is required when field ``when`` has one of ``values``."""

    field: str
    when: str
    values: tuple[str, ...]
    reason: Reason = Reason.MISSING_FIELD

    def describe(self) -> str:
        """Return the rule in words (for the docs)."""
        values = ", ".join(f"`{v}`" for v in self.values)
        return f"`{self.field}` is required when `{self.when}` is {values} (else `{self.reason.value}`)."

    def compile(self) -> Callable[[Mapping[Any, Any]], str | None]:
        """Return a fast check: msg -> error text, or None when the rule holds."""
        name, when, values = self.field, self.when, frozenset(self.values)

        def check(msg: Mapping[Any, Any]) -> str | None:
            if msg.get(name) is None and msg.get(when) in values:
                return f"{name} is required for {when} {msg.get(when)}"
            return None

        return check

    @property
    def blamed(self) -> str | None:
        """The field a violation is reported against."""
        return self.field


@dataclass(frozen=True, slots=True)
class AtLeastOne:
    """At least one of ``fields`` must be present (not null)."""

    fields: tuple[str, ...]
    reason: Reason = Reason.MISSING_FIELD

    def describe(self) -> str:
        """Return the rule in words (for the docs)."""
        names = " or ".join(f"`{f}`" for f in self.fields)
        return f"At least one of {names} is required (else `{self.reason.value}`)."

    def compile(self) -> Callable[[Mapping[Any, Any]], str | None]:
        """Return a fast check: msg -> error text, or None when the rule holds."""
        names = self.fields
        text = f"one of {', '.join(names)} is required"

        def check(msg: Mapping[Any, Any]) -> str | None:
            for name in names:
                if msg.get(name) is not None:
                    return None
            return text

        return check

    @property
    def blamed(self) -> str | None:
        """The field a violation is reported against (none: several could fix it)."""
        return None


Rule = RequiredWhen | AtLeastOne


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """One message type: who sends it, its FIX counterpart, its fields, rules and an example."""

    type: str
    direction: Direction
    fix: str
    description: str
    fields: tuple[Field, ...]
    rules: tuple[Rule, ...] = ()
    example: Mapping[str, Any] = dataclass_field(default_factory=dict)


# -- field constructors -------------------------------------------------------------------------


def req(name: str, kind: Kind, description: str, **kw: Any) -> Field:
    """Return a required field."""
    return Field(name, kind, description, required=True, **kw)


def opt(name: str, kind: Kind, description: str, **kw: Any) -> Field:
    """Return an optional field."""
    return Field(name, kind, description, required=False, **kw)
