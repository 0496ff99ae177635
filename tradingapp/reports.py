"""Wire messages built from engine events: execution reports, trades, BBO, depth.

This is the one place where integers become decimal strings on the way out. Each builder is a
plain function of an event and the symbol's spec, so reports are as deterministic as the events.
"""

from __future__ import annotations

from typing import Any

from tradingapp.engine.events import (
    Accepted,
    Canceled,
    CancelRejected,
    Expired,
    Rejected,
    Replaced,
    Restated,
    Trade,
    Triggered,
)
from tradingapp.engine.numbers import NumberError, format_scaled
from tradingapp.engine.orders import Order
from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderStatus
from tradingapp.protocol.messages import AVG_PRICE_EXTRA_PLACES
from tradingapp.protocol.schema import format_timestamp

_EXEC_TYPE = {
    Accepted: "new",
    Rejected: "rejected",
    Canceled: "canceled",
    Expired: "expired",
    Replaced: "replaced",
    Restated: "replaced",  # a self-trade "decrement" cut (FIX Restated); the wire enum has no such type
    Triggered: "triggered",
}


def avg_price(spec: SymbolSpec, notional: int, filled: int) -> str | None:
    """Return the average fill price ``notional / filled`` ticks as a decimal string.

    Exact when it falls on the tick grid (the common case); otherwise rounded half-even to
    ``AVG_PRICE_EXTRA_PLACES`` more places than the tick has.
    """
    if filled == 0:
        return None
    grid = spec.price
    if notional % filled == 0:
        return grid.format(notional // filled)
    scale = 10**AVG_PRICE_EXTRA_PLACES
    num = notional * grid.multiplier * scale
    quotient, remainder = divmod(num, filled)
    if remainder * 2 > filled or (remainder * 2 == filled and quotient % 2):
        quotient += 1
    return format_scaled(quotient, grid.places + AVG_PRICE_EXTRA_PLACES)


def order_fields(spec: SymbolSpec, order: Order) -> dict[str, Any]:
    """The fixed part of every report about ``order``."""
    return {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": spec.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": spec.format_price(order.price),
        "stop_price": spec.format_price(order.stop_price),
    }


def order_state(spec: SymbolSpec, order: Order) -> dict[str, Any]:
    """Return an order's current state (for ``open_orders`` and ``order_status``)."""
    state = order_fields(spec, order)
    state["quantity"] = spec.format_quantity(order.quantity)
    state["cum_qty"] = spec.format_quantity(order.filled)
    state["leaves_qty"] = spec.format_quantity(order.leaves)
    state["avg_price"] = avg_price(spec, order.notional, order.filled)
    state["order_status"] = order.status
    return state


def execution_report(spec: SymbolSpec, event: Any, timestamp: int) -> dict[str, Any]:
    """Return the execution report for one order event (not a trade; see :func:`fill_reports`)."""
    kind = type(event)
    filled = event.filled
    report = _report(
        spec,
        event.order,
        _EXEC_TYPE[kind],
        event.status,
        event.leaves,
        filled,
        avg_price(spec, event.notional, filled) if filled else None,
        format_timestamp(timestamp),
    )
    report["quantity"] = spec.quantity.format(event.quantity)
    if kind is Accepted:
        return report
    if kind is Rejected:
        report["reject_reason"] = event.reason.value
        report["text"] = event.text
    elif kind is Canceled or kind is Expired or kind is Restated:
        report["reason"] = event.reason.value
    elif kind is Triggered:
        report["trigger_price"] = spec.format_price(event.trigger_price)
    return report


def fill_reports(spec: SymbolSpec, trade: Trade, timestamp: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the maker's and the taker's execution reports for one trade."""
    price = spec.price.format(trade.price)
    qty = spec.quantity.format(trade.quantity)
    ts = format_timestamp(timestamp)
    out = []
    for order, leaves, filled, notional, fee, liquidity in (
        (trade.maker, trade.maker_leaves, trade.maker_filled, trade.maker_notional, trade.maker_fee, "maker"),
        (trade.taker, trade.taker_leaves, trade.taker_filled, trade.taker_notional, trade.taker_fee, "taker"),
    ):
        status = OrderStatus.PARTIALLY_FILLED if leaves else OrderStatus.FILLED
        report = _report(spec, order, "trade", status, leaves, filled, avg_price(spec, notional, filled), ts)
        report["trade_id"] = trade.trade_id
        report["last_price"] = price
        report["last_qty"] = qty
        report["liquidity"] = liquidity
        report["fee"] = format_scaled(fee, spec.quote_places)
        report["fee_asset"] = spec.quote
        out.append(report)
    return out[0], out[1]


def _report(
    spec: SymbolSpec,
    order: Order,
    exec_type: str,
    status: str,
    leaves: int,
    filled: int,
    avg: str | None,
    ts: str,
) -> dict[str, Any]:
    # The fields every execution report carries, built as one dict display (the hot path: one
    # report per order event), in :func:`order_state`'s key order. ``quantity`` defaults to
    # leaves + filled (a fill); other events overwrite it with the event's own total.
    fmt_price = spec.price.format
    fmt_qty = spec.quantity.format
    price = order.price
    stop = order.stop_price
    return {
        "type": "execution_report",
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "symbol": spec.symbol,
        "side": order.side,
        "order_type": order.order_type,
        "price": None if price is None else fmt_price(price),
        "stop_price": None if stop is None else fmt_price(stop),
        "exec_type": exec_type,
        "order_status": status,
        "quantity": fmt_qty(leaves + filled),
        "cum_qty": fmt_qty(filled),
        "leaves_qty": fmt_qty(leaves),
        "avg_price": avg,
        "timestamp": ts,
    }


def trade_message(spec: SymbolSpec, trade: Trade, seq: int, timestamp: int) -> dict[str, Any]:
    """Return the public trade-feed message for one trade."""
    return {
        "type": "trade",
        "symbol": spec.symbol,
        "seq": seq,
        "timestamp": format_timestamp(timestamp),
        "trade_id": trade.trade_id,
        "price": spec.format_price(trade.price),
        "quantity": spec.format_quantity(trade.quantity),
        "aggressor_side": trade.taker.side,
        "maker_order_id": trade.maker.order_id,
        "taker_order_id": trade.taker.order_id,
        "maker_fee": format_scaled(trade.maker_fee, spec.quote_places),
        "taker_fee": format_scaled(trade.taker_fee, spec.quote_places),
        "fee_asset": spec.quote,
    }


def bbo_message(
    spec: SymbolSpec, seq: int, timestamp: int, bbo: tuple[int | None, int, int | None, int]
) -> dict[str, Any]:
    """Return a BBO message; an empty side has null price and quantity."""
    bid, bid_qty, ask, ask_qty = bbo
    return {
        "type": "bbo",
        "symbol": spec.symbol,
        "seq": seq,
        "timestamp": format_timestamp(timestamp),
        "bid_price": spec.format_price(bid),
        "bid_quantity": None if bid is None else spec.format_quantity(bid_qty),
        "ask_price": spec.format_price(ask),
        "ask_quantity": None if ask is None else spec.format_quantity(ask_qty),
    }


def depth_message(
    spec: SymbolSpec,
    seq: int,
    timestamp: int,
    bids: list[tuple[int, int]],
    asks: list[tuple[int, int]],
) -> dict[str, Any]:
    """Return an L2 depth message: ``[price, quantity]`` decimal strings, best first."""
    fp = spec.price.format
    fq = spec.quantity.format
    return {
        "type": "depth",
        "symbol": spec.symbol,
        "seq": seq,
        "timestamp": format_timestamp(timestamp),
        "bids": [[fp(p), fq(q)] for p, q in bids],
        "asks": [[fp(p), fq(q)] for p, q in asks],
    }


def cancel_reject(spec: SymbolSpec | None, event: CancelRejected, request_id: Any = None) -> dict[str, Any]:
    """Return the cancel-reject message for a cancel or replace the book refused.

    ``client_order_id`` is the request's own (FIX ClOrdID); a request without one gets the
    order's, as known, like an execution report. ``order`` is only set for the account's own
    order, so nothing leaks about another account's.
    """
    order = event.order
    own_id = None if order is None else order.client_order_id
    return cancel_reject_message(
        event.response_to,
        event.reason,
        event.text,
        request_id,
        order_id=event.order_id,
        client_order_id=event.client_order_id if event.client_order_id is not None else own_id,
        orig_client_order_id=own_id,
        symbol=None if spec is None else spec.symbol,
        order_status=None if order is None else order.status,
    )


def cancel_reject_message(
    response_to: str,
    reason: Reason,
    text: str,
    request_id: Any = None,
    *,
    order_id: int | None = None,
    client_order_id: str | None = None,
    orig_client_order_id: str | None = None,
    symbol: str | None = None,
    order_status: OrderStatus | None = None,
) -> dict[str, Any]:
    """Return a ``cancel_reject``: ``order_id`` is always there (null when the request named the
    order by client id and no such order is known); the other details only when known.

    For an order the account does not have (unknown, or another account's) the details are only
    those the request itself gave, so the reply says nothing the client did not already know.
    """
    message: dict[str, Any] = {"type": "cancel_reject", "order_id": order_id}
    if client_order_id is not None:
        message["client_order_id"] = client_order_id
    if orig_client_order_id is not None:
        message["orig_client_order_id"] = orig_client_order_id
    if symbol is not None:
        message["symbol"] = symbol
    message["reason"] = reason.value
    message["text"] = text
    message["response_to"] = response_to
    if order_status is not None:
        message["order_status"] = order_status
    if request_id is not None:
        message["request_id"] = request_id
    return message


def refused_order_fields(spec: SymbolSpec | None, msg: dict[str, Any]) -> dict[str, Any]:
    """Return a new order's fields as the session shows them in its rejected report.

    Decimals are shown on the symbol's grid, with its places, like in every other report. A value
    that does not convert (not a number, off the grid, out of range, or any value of an unknown
    symbol) cannot be shown that way, and echoing the raw text would put a non-decimal where the
    schema promises a decimal: a price or stop price is then null and a quantity zero. The
    report's ``reject_reason`` and ``text`` say what was wrong with it.
    """
    shown = {key: msg.get(key) for key in ("client_order_id", "symbol", "side", "order_type")}
    shown["price"] = _on_grid(spec, "price", msg.get("price"))
    shown["stop_price"] = _on_grid(spec, "price", msg.get("stop_price"))
    quantity = _on_grid(spec, "quantity", msg.get("quantity"))
    shown["quantity"] = quantity if quantity is not None else _zero_quantity(spec)
    return shown


def _on_grid(spec: SymbolSpec | None, grid: str, value: Any) -> str | None:
    if spec is None or value is None:
        return None
    steps = spec.price if grid == "price" else spec.quantity
    try:
        return steps.format(steps.to_units(value))
    except NumberError:
        return None


def _zero_quantity(spec: SymbolSpec | None) -> str:
    return "0" if spec is None else spec.format_quantity(0)


def rejected_order(
    spec: SymbolSpec | None,
    request: dict[str, Any],
    reason: Reason,
    text: str,
    timestamp: int,
    request_id: Any = None,
) -> dict[str, Any]:
    """Return the execution report refusing a new order that never got an order id.

    ``request`` holds the order's fields as the client should see them again (decimal strings
    on the grid of ``spec``, the order's symbol; None when the symbol is unknown).
    """
    zero = _zero_quantity(spec)
    report: dict[str, Any] = {
        "type": "execution_report",
        "order_id": None,
        "client_order_id": request.get("client_order_id"),
        "symbol": request.get("symbol"),
        "side": request.get("side"),
        "order_type": request.get("order_type"),
        "exec_type": "rejected",
        "order_status": "rejected",
        "price": request.get("price"),
        "stop_price": request.get("stop_price"),
        "quantity": request.get("quantity"),
        "cum_qty": zero,
        "leaves_qty": zero,
        "avg_price": None,
        "timestamp": format_timestamp(timestamp),
        "reject_reason": reason.value,
        "text": text,
    }
    if request_id is not None:
        report["request_id"] = request_id
    return report


def reject(reason: Reason, text: str, ref_type: str | None = None, request_id: Any = None) -> dict[str, Any]:
    """Return a session-level reject for a message that is malformed or not allowed."""
    message: dict[str, Any] = {"type": "reject", "reason": reason.value, "text": text}
    if ref_type is not None:
        message["ref_type"] = ref_type
    if request_id is not None:
        message["request_id"] = request_id
    return message
