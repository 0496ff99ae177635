"""Validation of messages against the schema declared in :mod:`tradingapp.protocol.messages`.

This module is the schema's public face: it re-exports the message definitions and compiles
them, at import time, into per-type field tables (a checker per field name, the required names,
the defaults, the rules). :func:`validate_client_message` is then one tight loop over a message's
items. ``python -m tradingapp.protocol --markdown`` renders the same definitions as the field
tables of ``docs/protocol.md``.

Validation contract (client to server):

* a message is a map with string keys, at most :data:`MAX_KEYS` of them, and a known ``type``;
* every field must belong to that type: an unknown field is rejected (``invalid_field``), as a
  FIX engine rejects a tag not defined for the message (SessionRejectReason 2);
* a required field that is absent or null is ``missing_field``; an optional field that is null
  counts as absent;
* a value of the wrong type is ``invalid_field`` (or the field's own reason, e.g. ``invalid_side``)
  with the field named in the text and in the reject's ``field``;
* decimals (prices, quantities) are accepted as strings or integers and handed on *unchanged*
  (a JSON-lines number, parsed as ``Decimal``, becomes its exact plain string), so the server
  only ever sees ``str`` or ``int``: a float is refused, a bool is never a number. Their syntax
  and grid are checked later, with the symbol's spec, by :mod:`tradingapp.engine.numbers`;
* ``order_id`` is an integer (a string of digits is accepted and converted);
* optional fields with a default (``post_only``, ``self_trade_prevention``, ``depth``) are filled
  in, so the dispatcher can index them directly;
* conditional rules (a price for limit types, an order reference for cancel, ...) come last.

Cost: the generic loop takes about 1.8 us for a typical ``new_order`` on the development machine,
where msgpack takes 0.85 us to decode the same message (one dict lookup and one small checker call
per field, a subset test for the required names, one closure per rule); no allocation on success.
Client messages whose fields are all simple kinds (``new_order``, ``cancel``, ...) first go through
a function generated from the same definitions that only accepts (see "fast paths" below).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tradingapp.engine.numbers import MAX_DECIMAL_CHARS
from tradingapp.engine.reasons import Reason
from tradingapp.protocol.errors import ProtocolError, quote
from tradingapp.protocol.fields import (
    DEFAULT_DEPTH,
    DEFAULT_MAX_FRAME,
    INT64_MAX,
    INT64_MIN,
    KIND_DOCS,
    LATENCY_STATS,
    MAX_DECIMAL_INT,
    MAX_DEPTH,
    MAX_FRAME_LIMIT,
    MAX_ID_CHARS,
    MAX_KEYS,
    MAX_TEXT_CHARS,
    MIN_DEPTH,
    AtLeastOne,
    Direction,
    Field,
    Kind,
    MessageSpec,
    RequiredWhen,
    Rule,
)
from tradingapp.protocol.messages import (
    CHANNELS,
    CLIENT_MESSAGES,
    CLIENT_TYPES,
    EXEC_TYPES,
    LIQUIDITY,
    MESSAGES,
    ORDER_STATE_FIELDS,
    ORDER_STATUSES,
    ORDER_TYPES,
    REASONS,
    REQUEST_ID,
    RESPONSE_TO,
    SERVER_MESSAGES,
    SERVER_TYPES,
    SIDES,
    STP_MODES,
)

__all__ = [
    "CHANNELS",
    "CLIENT_MESSAGES",
    "CLIENT_TYPES",
    "DEFAULT_DEPTH",
    "DEFAULT_MAX_FRAME",
    "EXEC_TYPES",
    "KIND_DOCS",
    "LIQUIDITY",
    "MAX_DEPTH",
    "MAX_FRAME_LIMIT",
    "MAX_ID_CHARS",
    "MAX_KEYS",
    "MAX_TEXT_CHARS",
    "MESSAGES",
    "MIN_DEPTH",
    "ORDER_STATE_FIELDS",
    "ORDER_STATUSES",
    "ORDER_TYPES",
    "REASONS",
    "RESPONSE_TO",
    "SERVER_MESSAGES",
    "SERVER_TYPES",
    "SIDES",
    "STP_MODES",
    "AtLeastOne",
    "ClientMessage",
    "Direction",
    "Field",
    "Kind",
    "MessageSpec",
    "RequiredWhen",
    "format_timestamp",
    "type_name",
    "validate_client_message",
    "validate_server_message",
]

ClientMessage = dict[str, Any]


# -- value checkers -----------------------------------------------------------------------------
#
# A checker takes a non-null value and returns it (or its normalised form), or raises _Bad. The
# raise only happens on the error path; the success path is a couple of type tests.


class _Bad(Exception):
    def __init__(self, reason: Reason, text: str, field: str | None = None) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text
        self.field = field


Checker = Callable[[Any], Any]
RuleCheck = Callable[[Any], "str | None"]

_PLAIN_DECIMAL_RE = re.compile(r"-?\d+(\.\d+)?\Z", re.ASCII)
_TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z", re.ASCII)


def type_name(value: object) -> str:
    """Return a phrase naming the type of ``value`` (for error texts)."""
    if value is None:
        return "null"
    t = type(value)
    if t is bool:
        return "a boolean"
    if t is int:
        return "an integer"
    if t is float:
        return "a float"
    if t is str:
        return "a string"
    if t is list or t is tuple:
        return "a list"
    if t is dict:
        return "a map"
    if t is bytes:
        return "binary data"
    return f"a {t.__name__}"


def _identity(value: Any) -> Any:
    return value


def _string_checker(f: Field) -> Checker:
    name, max_len, reason = f.name, f.max_len, f.reason

    def check(v: Any) -> Any:
        if type(v) is str and 0 < len(v) <= max_len and v.isprintable():
            return v
        if type(v) is not str:
            raise _Bad(reason, f"{name} must be a string, not {type_name(v)}", name)
        raise _Bad(reason, f"{name} must be 1 to {max_len} printable characters", name)

    return check


def _text_checker(f: Field) -> Checker:
    name, max_len, reason = f.name, f.max_len, f.reason

    def check(v: Any) -> Any:
        if type(v) is str and len(v) <= max_len:
            return v
        if type(v) is not str:
            raise _Bad(reason, f"{name} must be a string, not {type_name(v)}", name)
        raise _Bad(reason, f"{name} is longer than {max_len} characters", name)

    return check


def _client_id_checker(f: Field) -> Checker:
    name, max_len, reason = f.name, f.max_len, f.reason

    def check(v: Any) -> Any:
        if type(v) is str and 0 < len(v) <= max_len and v.isascii() and v.isprintable() and " " not in v:
            return v
        if type(v) is not str:
            raise _Bad(reason, f"{name} must be a string, not {type_name(v)}", name)
        raise _Bad(reason, f"{name} must be 1 to {max_len} printable ASCII characters without spaces", name)

    return check


def _any_id_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        t = type(v)
        if (t is str and 0 < len(v) <= MAX_ID_CHARS) or (t is int and INT64_MIN <= v <= INT64_MAX):
            return v
        raise _Bad(
            reason, f"{name} must be a string of 1 to {MAX_ID_CHARS} characters or a 64-bit integer", name
        )

    return check


def _order_id_checker(f: Field, *, accept_digits: bool) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        t = type(v)
        if t is int:
            if 0 < v <= INT64_MAX:
                return v
        elif accept_digits and t is str and 0 < len(v) <= 19 and v.isascii() and v.isdigit():
            n = int(v)
            if 0 < n <= INT64_MAX:
                return n
        raise _Bad(reason, f"{name} must be a positive integer below 2^63, not {quote(v)}", name)

    return check


def _client_decimal_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        t = type(v)
        if t is str:
            if 0 < len(v) <= MAX_DECIMAL_CHARS:
                return v
            raise _Bad(
                reason, f"{name} must be a decimal string of 1 to {MAX_DECIMAL_CHARS} characters", name
            )
        if t is int:
            if -MAX_DECIMAL_INT <= v <= MAX_DECIMAL_INT:
                return v
            raise _Bad(reason, f"{name} is too large", name)
        if t is Decimal:  # JSON-lines numbers: hand on their exact plain string, as binary would
            if not v.is_finite():
                raise _Bad(reason, f"{name} must be a finite number, not {v}", name)
            if -MAX_DECIMAL_CHARS <= v.adjusted() <= MAX_DECIMAL_CHARS:  # bounds the text below
                text = format(v, "f")
                if len(text) <= MAX_DECIMAL_CHARS:
                    return text
            raise _Bad(reason, f"{name} has more than {MAX_DECIMAL_CHARS} digits", name)
        if t is float:
            raise _Bad(
                reason,
                f"{name} must be a decimal string or an integer, not a float "
                "(a float cannot carry an exact decimal)",
                name,
            )
        raise _Bad(reason, f"{name} must be a decimal string or an integer, not {type_name(v)}", name)

    return check


def _server_decimal_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        if type(v) is str and _PLAIN_DECIMAL_RE.match(v):
            return v
        raise _Bad(reason, f"{name} must be a plain decimal string, not {quote(v)}", name)

    return check


def _integer_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason
    low = INT64_MIN if f.min_value is None else f.min_value
    high = INT64_MAX if f.max_value is None else f.max_value

    def check(v: Any) -> Any:
        if type(v) is int and low <= v <= high:
            return v
        if type(v) is int:
            raise _Bad(reason, f"{name} must be between {low} and {high}", name)
        raise _Bad(reason, f"{name} must be an integer, not {type_name(v)}", name)

    return check


def _boolean_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        if type(v) is bool:
            return v
        raise _Bad(reason, f"{name} must be true or false, not {type_name(v)}", name)

    return check


def _enum_checker(f: Field) -> Checker:
    name, reason, allowed = f.name, f.reason, frozenset(f.values)
    listing = ", ".join(f.values) if len(f.values) <= 12 else "a reason code"

    def check(v: Any) -> Any:
        if type(v) is str and v in allowed:
            return v
        raise _Bad(reason, f"{name} must be one of {listing}, not {quote(v)}", name)

    return check


def _enum_list_checker(f: Field) -> Checker:
    name, reason, allowed = f.name, f.reason, frozenset(f.values)
    listing = ", ".join(f.values)

    def check(v: Any) -> Any:
        if (type(v) is list or type(v) is tuple) and 0 < len(v) <= len(allowed):
            seen = set()
            for item in v:
                if type(item) is not str or item not in allowed or item in seen:
                    break
                seen.add(item)
            else:
                return v
        raise _Bad(reason, f"{name} must be a non-empty list of distinct values from {listing}", name)

    return check


def _timestamp_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        if type(v) is str and _TIMESTAMP_RE.match(v):
            return v
        raise _Bad(
            reason, f"{name} must be an ISO-8601 UTC timestamp with microseconds, not {quote(v)}", name
        )

    return check


def _levels_checker(f: Field) -> Checker:
    name, reason = f.name, f.reason

    def check(v: Any) -> Any:
        if type(v) is list or type(v) is tuple:
            for level in v:
                if (
                    (type(level) is not list and type(level) is not tuple)
                    or len(level) != 2
                    or type(level[0]) is not str
                    or type(level[1]) is not str
                    or not _PLAIN_DECIMAL_RE.match(level[0])
                    or not _PLAIN_DECIMAL_RE.match(level[1])
                ):
                    break
            else:
                return v
        raise _Bad(reason, f"{name} must be a list of [price, quantity] decimal-string pairs", name)

    return check


_BALANCE_KEYS = ("total", "available", "reserved")


def _table_checker(f: Field, keys: tuple[str, ...], value_ok: Callable[[Any], bool], text: str) -> Checker:
    # A map of names to rows that each have exactly ``keys``, every value passing ``value_ok``.
    name, reason, wanted = f.name, f.reason, sorted(keys)

    def check(v: Any) -> Any:
        if type(v) is dict:
            for label, entry in v.items():
                if (
                    type(label) is not str
                    or type(entry) is not dict
                    or sorted(entry) != wanted
                    or not all(value_ok(x) for x in entry.values())
                ):
                    break
            else:
                return v
        raise _Bad(reason, f"{name} must map {text}", name)

    return check


def _balances_checker(f: Field) -> Checker:
    return _table_checker(
        f,
        _BALANCE_KEYS,
        lambda x: type(x) is str and _PLAIN_DECIMAL_RE.match(x) is not None,
        "each asset to {total, available, reserved} decimal strings",
    )


def _latencies_checker(f: Field) -> Checker:
    return _table_checker(
        f,
        tuple(LATENCY_STATS),
        lambda x: type(x) is int and x >= 0,
        f"each distribution to {{{', '.join(LATENCY_STATS)}}} integers",
    )


def _orders_checker(f: Field) -> Checker:
    name = f.name

    def check(v: Any) -> Any:
        if type(v) is not list and type(v) is not tuple:
            raise _Bad(f.reason, f"{name} must be a list of order states", name)
        for i, item in enumerate(v):
            problem = _check_fields(item, _ORDER_STATE_TABLE)
            if problem is not None:
                raise _Bad(problem.reason, f"{name}[{i}]: {problem.text}", name)
        return v

    return check


def _checker(f: Field, direction: Direction) -> Checker:
    """Return the value checker of ``f`` for messages sent in ``direction``."""
    client = direction is Direction.CLIENT
    kind = f.kind
    if kind is Kind.STRING:
        return _string_checker(f)
    if kind is Kind.TEXT:
        return _text_checker(f)
    if kind is Kind.CLIENT_ID:
        return _client_id_checker(f)
    if kind is Kind.ANY_ID:
        return _any_id_checker(f)
    if kind is Kind.ORDER_ID:
        return _order_id_checker(f, accept_digits=client)
    if kind is Kind.DECIMAL:
        return _client_decimal_checker(f) if client else _server_decimal_checker(f)
    if kind is Kind.INTEGER:
        return _integer_checker(f)
    if kind is Kind.BOOLEAN:
        return _boolean_checker(f)
    if kind is Kind.ENUM:
        return _enum_checker(f)
    if kind is Kind.ENUM_LIST:
        return _enum_list_checker(f)
    if kind is Kind.TIMESTAMP:
        return _timestamp_checker(f)
    if kind is Kind.LEVELS:
        return _levels_checker(f)
    if kind is Kind.BALANCES:
        return _balances_checker(f)
    if kind is Kind.ORDERS:
        return _orders_checker(f)
    if kind is Kind.LATENCIES:
        return _latencies_checker(f)
    raise AssertionError(f"no checker for {kind}")  # pragma: no cover


# -- compiled tables ----------------------------------------------------------------------------


class _Table:
    """A message spec compiled for validation: checkers by name, required names, defaults."""

    __slots__ = ("checkers", "defaults", "nullable", "required", "required_set", "rules", "type")

    def __init__(
        self, type_: str, fields: tuple[Field, ...], rules: tuple[Rule, ...], direction: Direction
    ) -> None:
        self.type = type_
        self.checkers: dict[Any, Checker] = {f.name: _checker(f, direction) for f in fields}
        self.required = tuple(f.name for f in fields if f.required)
        self.required_set = frozenset(self.required)
        self.nullable = frozenset(f.name for f in fields if f.nullable)
        self.defaults = tuple((f.name, f.default) for f in fields if f.default is not None)
        self.rules: tuple[tuple[RuleCheck, Rule], ...] = tuple((r.compile(), r) for r in rules)


def _compile(specs: tuple[MessageSpec, ...], direction: Direction) -> dict[str, _Table]:
    tables = {}
    for spec in specs:
        table = _Table(spec.type, spec.fields, spec.rules, direction)
        table.checkers["type"] = _identity
        if "request_id" in table.checkers:
            table.checkers["request_id"] = _identity  # checked up front, to echo it on errors
        tables[spec.type] = table
    return tables


_CLIENT_TABLES = _compile(CLIENT_MESSAGES, Direction.CLIENT)
_SERVER_TABLES = _compile(SERVER_MESSAGES, Direction.SERVER)
_ORDER_STATE_TABLE = _Table("order state", ORDER_STATE_FIELDS, (), Direction.SERVER)
_check_request_id = _any_id_checker(REQUEST_ID)


# -- fast paths ---------------------------------------------------------------------------------
#
# For the common client messages a function generated from the same Field definitions accepts a
# well-formed message in one pass of inlined tests (no per-field dict lookup or checker call).
# It only ever *accepts*: anything it is not sure of (a digit-string order_id, a JSON Decimal,
# any invalid value) returns False and the generic loop above runs and produces the reject, so
# every reject stays the generic path's. Each test below is the success branch of the matching
# checker; tests/unit/test_protocol_schema_fast.py holds the two to the same answers.


def _fast_test(f: Field) -> str | None:
    """Return an expression in ``v`` true when the checker of ``f`` accepts ``v`` unchanged, or None."""
    kind = f.kind
    if kind is Kind.STRING:
        return f"type(v) is str and 0 < len(v) <= {f.max_len} and v.isprintable()"
    if kind is Kind.CLIENT_ID:
        return (
            f"type(v) is str and 0 < len(v) <= {f.max_len} and v.isascii() and v.isprintable() "
            "and ' ' not in v"
        )
    if kind is Kind.ANY_ID:
        return (
            f"(type(v) is str and 0 < len(v) <= {MAX_ID_CHARS}) "
            f"or (type(v) is int and {INT64_MIN} <= v <= {INT64_MAX})"
        )
    if kind is Kind.ORDER_ID:
        return f"type(v) is int and 0 < v <= {INT64_MAX}"  # a digit string: the generic path
    if kind is Kind.DECIMAL:
        return (
            f"(type(v) is str and 0 < len(v) <= {MAX_DECIMAL_CHARS}) "
            f"or (type(v) is int and {-MAX_DECIMAL_INT} <= v <= {MAX_DECIMAL_INT})"
        )
    if kind is Kind.INTEGER:
        low = INT64_MIN if f.min_value is None else f.min_value
        high = INT64_MAX if f.max_value is None else f.max_value
        return f"type(v) is int and {low} <= v <= {high}"
    if kind is Kind.BOOLEAN:
        return "type(v) is bool"
    if kind is Kind.ENUM:
        return f"type(v) is str and v in values_{f.name}"  # bound to frozenset(f.values)
    return None


def _fast_path(spec: MessageSpec, table: _Table) -> Callable[[dict[Any, Any]], bool] | None:
    """Generate the accepting function of ``spec``, or None if a field kind has no fast test."""
    tests = [(f, _fast_test(f)) for f in spec.fields]
    known = frozenset(f.name for f in spec.fields) | {"type"}
    if any(test is None for _, test in tests) or len(known) > MAX_KEYS:
        return None
    lines = ["def fast(obj):", "    if not obj.keys() <= known:", "        return False"]
    for f, test in tests:
        lines.append(f"    v = obj.get({f.name!r})")
        absent = "v is None or not" if f.required else "v is not None and not"
        lines += [f"    if {absent} ({test}):", "        return False"]
    for name, default in table.defaults:
        lines += [f"    if obj.get({name!r}) is None:", f"        obj[{name!r}] = {default!r}"]
    for i in range(len(table.rules)):
        lines += [f"    if rule_{i}(obj) is not None:", "        return False"]
    lines.append("    return True")
    namespace: dict[str, Any] = {"known": known}
    namespace.update((f"values_{f.name}", frozenset(f.values)) for f in spec.fields if f.values)
    namespace.update((f"rule_{i}", check) for i, (check, _) in enumerate(table.rules))
    exec("\n".join(lines), namespace)  # the source is generated from the schema above
    fast: Callable[[dict[Any, Any]], bool] = namespace["fast"]
    return fast


_CLIENT_FAST_PATHS = {
    spec.type: fast
    for spec in CLIENT_MESSAGES
    if (fast := _fast_path(spec, _CLIENT_TABLES[spec.type])) is not None
}


def _missing(obj: dict[Any, Any], table: _Table) -> _Bad:
    for name in table.required:
        if obj.get(name) is None:
            return _Bad(Reason.MISSING_FIELD, f"{name} is required for {table.type}", name)
    raise AssertionError("no required field is missing")  # pragma: no cover


def _unknown(key: object, table: _Table) -> _Bad:
    name = key if type(key) is str and len(key) <= MAX_ID_CHARS else None
    return _Bad(Reason.INVALID_FIELD, f"unknown field {quote(key)} for {table.type}", name)


def _check_fields(obj: Any, table: _Table) -> _Bad | None:
    # The server-side check, shared by server messages and order states: null only where nullable
    if type(obj) is not dict:
        return _Bad(Reason.MALFORMED_MESSAGE, f"{table.type} must be a map, not {type_name(obj)}")
    checkers = table.checkers
    for key, value in obj.items():
        check = checkers.get(key) if type(key) is str else None
        if check is None:
            return _unknown(key, table)
        if value is None:
            if key in table.nullable:
                continue
            if key in table.required_set:
                return _Bad(Reason.MISSING_FIELD, f"{key} is required for {table.type}", key)
            return _Bad(Reason.INVALID_FIELD, f"{key} must not be null (omit it instead)", key)
        try:
            check(value)
        except _Bad as e:
            return e
    if not obj.keys() >= table.required_set:
        return _missing(obj, table)
    for rule_check, rule in table.rules:
        text = rule_check(obj)
        if text is not None:
            return _Bad(rule.reason, text, rule.blamed)
    return None


# -- validators ---------------------------------------------------------------------------------


def validate_client_message(obj: object) -> ClientMessage | ProtocolError:
    """Check a decoded client message against the schema; return it or a ProtocolError value.

    On success the *same* dict is returned, normalised in place (digit-string ``order_id``s become
    ints, defaults are filled in). Errors are never raised: the result is then a non-fatal
    :class:`ProtocolError` naming the field, with ``ref_type`` and a valid ``request_id`` set so
    that the client can match the reject. Never raises, whatever ``obj`` is.
    """
    if type(obj) is not dict:
        return ProtocolError(Reason.MALFORMED_MESSAGE, f"a message must be a map, not {type_name(obj)}")
    mtype = obj.get("type")
    if type(mtype) is str:
        fast = _CLIENT_FAST_PATHS.get(mtype)
        if fast is not None and fast(obj):
            return obj
    if len(obj) > MAX_KEYS:
        return ProtocolError(
            Reason.MALFORMED_MESSAGE, f"a message has at most {MAX_KEYS} fields, got {len(obj)}"
        )
    table = _CLIENT_TABLES.get(mtype) if type(mtype) is str else None
    rid = obj.get("request_id")
    if rid is not None:
        try:
            _check_request_id(rid)
        except _Bad as e:
            return ProtocolError(
                e.reason, e.text, ref_type=None if table is None else table.type, field="request_id"
            )
    if table is None:
        if mtype is None:
            return ProtocolError(Reason.MISSING_FIELD, "type is required", request_id=rid, field="type")
        # echo the offending type as ref_type when it is a name a reply may carry
        named = type(mtype) is str and 0 < len(mtype) <= MAX_ID_CHARS and mtype.isprintable()
        return ProtocolError(
            Reason.UNKNOWN_MESSAGE_TYPE,
            f"unknown message type {quote(mtype)}",
            ref_type=mtype if named else None,
            request_id=rid,
            field="type",
        )
    checkers = table.checkers
    try:
        for key, value in obj.items():
            check = checkers.get(key)
            if check is None:
                raise _unknown(key, table)
            if value is not None:
                new = check(value)
                if new is not value:
                    obj[key] = new
            elif key in table.required_set:
                raise _Bad(Reason.MISSING_FIELD, f"{key} is required for {table.type}", key)
        if not obj.keys() >= table.required_set:
            raise _missing(obj, table)
        for key, default in table.defaults:
            if obj.get(key) is None:
                obj[key] = default
        for rule_check, rule in table.rules:
            text = rule_check(obj)
            if text is not None:
                raise _Bad(rule.reason, text, rule.blamed)
    except _Bad as e:
        return ProtocolError(e.reason, e.text, ref_type=table.type, request_id=rid, field=e.field)
    except TypeError:  # an unhashable key cannot come from msgpack or JSON, but never raise
        return ProtocolError(Reason.MALFORMED_MESSAGE, "message keys must be strings", ref_type=table.type)
    return obj


def validate_server_message(obj: object) -> ProtocolError | None:
    """Return None if ``obj`` is a well-formed server message, else what is wrong with it.

    Stricter than the client side: decimals must be plain decimal strings, null is allowed only
    where the schema says so, and conditional fields (fills, reject reasons) must be present. Meant
    for tests and for clients checking what they receive; not for the hot path.
    """
    if type(obj) is not dict:
        return ProtocolError(Reason.MALFORMED_MESSAGE, f"a message must be a map, not {type_name(obj)}")
    mtype = obj.get("type")
    table = _SERVER_TABLES.get(mtype) if type(mtype) is str else None
    if table is None:
        return ProtocolError(Reason.UNKNOWN_MESSAGE_TYPE, f"unknown server message type {quote(mtype)}")
    rid = obj.get("request_id")
    if rid is not None:
        try:
            _check_request_id(rid)
        except _Bad as e:
            return ProtocolError(e.reason, e.text, ref_type=mtype, field="request_id")
    problem = _check_fields(obj, table)
    if problem is None:
        return None
    return ProtocolError(problem.reason, problem.text, ref_type=mtype, field=problem.field)


# -- timestamps ---------------------------------------------------------------------------------

_second_cache: tuple[int, str] = (-1, "")  # (second, its formatted text); replaced atomically
_last_stamp: tuple[int, str] = (-1, "")  # (ns, its text): every report of one command shares it


def format_timestamp(ns: int) -> str:
    """Return engine time (ns since the epoch) as UTC ISO-8601 with microseconds and ``Z``."""
    global _second_cache, _last_stamp
    last_ns, last_text = _last_stamp
    if last_ns == ns:
        return last_text
    seconds, rem = divmod(ns, 1_000_000_000)
    cached_second, text = _second_cache
    if cached_second != seconds:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second_cache = (seconds, text)
    text = f"{text}.{rem // 1000:06d}Z"
    _last_stamp = (ns, text)
    return text
