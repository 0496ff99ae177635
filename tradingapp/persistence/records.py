"""What the journal records mean: one record per state-changing step, in the order applied.

The engine's state lives in two kinds of actors that feed each other (risk and one book per
symbol), so the order in which the *commands* arrived does not by itself fix the outcome: whether
risk settled a fill before or after checking the next order changes that order's funds. The
journal therefore records each actor's steps in the order they were applied (outcomes, not
just inputs), and replay folds them in that order:

========  ================================================================================
``O``     risk admitted a new order: the book command and the amount it holds
``R``     risk passed on a replace and reserved ``extra`` ahead of it
``C``     risk passed on a cancel
``A``     risk passed on a cancel-all for one symbol
``B``     the book of a symbol applied its next pending command (its events follow from it)
``S``     risk settled the next pending book output of a symbol
``X``     a request refused before it reached a book (audit only; changes nothing)
========  ================================================================================

``B`` and ``S`` carry only the symbol: a book's output is a pure function of its state and the
command, so replay recomputes it. Every payload is a msgpack array; enums are stored by their
wire names, so the journal reads the same to any version that knows those names.
"""

from __future__ import annotations

from typing import Any

import msgpack

from tradingapp.engine.commands import Cancel, CancelAll, NewOrder, Replace
from tradingapp.engine.fees import FeeRates
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

ADMIT = "O"
REPLACE = "R"
CANCEL = "C"
CANCEL_ALL = "A"
BOOK_STEP = "B"
SETTLE = "S"
REFUSED = "X"

_packer = msgpack.Packer(use_bin_type=True)

# Wire name -> enum member: a dict lookup, where ``Side(value)`` goes through EnumMeta.__call__
# (replay rebuilds a command per record, so this is on recovery's hot path).
_SIDES = {member.value: member for member in Side}
_ORDER_TYPES = {member.value: member for member in OrderType}
_STPS = {member.value: member for member in SelfTradePrevention}


def pack(record: list[Any]) -> bytes:
    """Encode one record payload."""
    return _packer.pack(record)


def unpack(payload: bytes) -> list[Any]:
    """Decode one record payload."""
    record: list[Any] = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=True)
    return record


def admit_record(command: NewOrder, held: int) -> bytes:
    """``O``: an admitted order (the fee rates ride along so replay needs no account lookup)."""
    fees = command.fees
    return _packer.pack(
        [
            ADMIT,
            command.symbol,
            command.order_id,
            command.account,
            command.side.value,
            command.order_type.value,
            command.quantity,
            command.price,
            command.stop_price,
            command.post_only,
            command.stp.value,
            command.client_order_id,
            None if fees is None else [fees.maker, fees.taker],
            command.budget,
            held,
        ]
    )


def replace_record(command: Replace, extra: int) -> bytes:
    """``R``: a replace passed to the book, with what risk reserved ahead of it."""
    return _packer.pack(
        [
            REPLACE,
            command.symbol,
            command.order_id,
            command.account,
            command.quantity,
            command.price,
            command.stop_price,
            command.client_order_id,
            command.budget,
            command.expected,
            extra,
        ]
    )


def cancel_record(command: Cancel) -> bytes:
    """``C``: a cancel passed to the book."""
    return _packer.pack([CANCEL, command.symbol, command.order_id, command.account, command.client_order_id])


def cancel_all_record(command: CancelAll) -> bytes:
    """``A``: a cancel-all passed to one book."""
    return _packer.pack([CANCEL_ALL, command.symbol, command.account])


def step_record(kind: str, symbol: str) -> bytes:
    """``B`` or ``S`` for ``symbol``."""
    return _packer.pack([kind, symbol])


def refused_record(account: str | None, what: str, reason: str, text: str) -> bytes:
    """``X``: an audit line for a request refused before any book saw it."""
    return _packer.pack([REFUSED, account, what, reason, text])


def command_from_record(
    record: list[Any], timestamp: int, fee_rates: Any
) -> NewOrder | Replace | Cancel | CancelAll:
    """Rebuild the book command an ``O``/``R``/``C``/``A`` record stands for.

    ``fee_rates`` maps a ``(maker, taker)`` pair to the shared FeeRates object.
    """
    kind = record[0]
    if kind == ADMIT:
        (_, symbol, oid, account, side, otype, qty, price, stop, post_only, stp, cid, fees, budget, _held) = (
            record
        )
        rates: FeeRates | None = None if fees is None else fee_rates(tuple(fees))
        try:
            return NewOrder(
                oid,
                account,
                _SIDES[side],
                _ORDER_TYPES[otype],
                qty,
                price,
                stop,
                post_only,
                _STPS[stp],
                cid,
                rates,
                budget,
                timestamp,
                symbol,
            )
        except KeyError as exc:
            raise ValueError(f"record {kind!r} has an unknown enum value {exc}") from None
    if kind == REPLACE:
        _, symbol, oid, account, qty, price, stop, cid, budget, expected, _extra = record
        checked = None if expected is None else (expected[0], expected[1], expected[2])
        return Replace(oid, account, qty, price, stop, cid, budget, timestamp, symbol, checked)
    if kind == CANCEL:
        _, symbol, oid, account, cid = record
        return Cancel(oid, account, cid, timestamp, symbol)
    if kind == CANCEL_ALL:
        _, symbol, account = record
        return CancelAll(account, timestamp, symbol)
    raise ValueError(f"record {kind!r} is not a command")


def describe(record: list[Any]) -> dict[str, Any]:
    """Return a record as a self-describing dict (for ``tradingapp journal``)."""
    kind = record[0]
    if kind == ADMIT:
        names: tuple[str, ...] = (
            "symbol",
            "order_id",
            "account",
            "side",
            "order_type",
            "quantity",
            "price",
            "stop_price",
            "post_only",
            "self_trade_prevention",
            "client_order_id",
            "fee_rates",
            "budget",
            "held",
        )
        return {"record": "admit", **dict(zip(names, record[1:], strict=True))}
    if kind == REPLACE:
        names = (
            "symbol",
            "order_id",
            "account",
            "quantity",
            "price",
            "stop_price",
            "client_order_id",
            "budget",
            "expected",
            "extra_held",
        )
        return {"record": "replace", **dict(zip(names, record[1:], strict=True))}
    if kind == CANCEL:
        return {
            "record": "cancel",
            **dict(zip(("symbol", "order_id", "account", "client_order_id"), record[1:], strict=True)),
        }
    if kind == CANCEL_ALL:
        return {"record": "cancel_all", "symbol": record[1], "account": record[2]}
    if kind == BOOK_STEP:
        return {"record": "book_step", "symbol": record[1]}
    if kind == SETTLE:
        return {"record": "settle", "symbol": record[1]}
    if kind == REFUSED:
        return {
            "record": "refused",
            **dict(zip(("account", "request", "reason", "text"), record[1:], strict=True)),
        }
    return {"record": "unknown", "raw": record}
