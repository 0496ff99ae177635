"""Exact message shapes (docs/protocol.md): every server message validates against the schema,
decimals are strings with the symbol's or asset's places, timestamps are ISO-8601 with
microseconds and Z. One test per message kind, so that each problem is one failing test."""

from __future__ import annotations

import re
from typing import Any

from tests.integration.conftest import TIMESTAMP_RE, Client, EngineHarness, check_shape, shape_problem

SYM = "BTC-USDT"
PLACES = {  # symbol: (price places, quantity places); USDT fees 7 places
    "BTC-USDT": (2, 5),
    "ETH-USDT": (2, 4),
    "SOL-USDT": (3, 2),
}


def places_of(text: str) -> int:
    assert isinstance(text, str), f"decimal sent as {type(text).__name__}: {text!r}"
    assert re.fullmatch(r"-?\d+(\.\d+)?", text), f"not a plain decimal string: {text!r}"
    return len(text.split(".")[1]) if "." in text else 0


def check_report_decimals(m: dict[str, Any]) -> None:
    price_places, qty_places = PLACES[m["symbol"]]
    for key in ("price", "stop_price", "last_price"):
        if m.get(key) is not None:
            assert places_of(m[key]) == price_places, (key, m)
    if m.get("avg_price") is not None:
        assert places_of(m["avg_price"]) >= price_places, m
    for key in ("quantity", "cum_qty", "leaves_qty", "last_qty"):
        if m.get(key) is not None:
            assert places_of(m[key]) == qty_places, (key, m)
    if m.get("fee") is not None:
        assert places_of(m["fee"]) == 7, m


def all_well_formed(*clients: Client) -> None:
    problems = [p for c in clients for m in c.received if (p := shape_problem(m)) is not None]
    assert not problems, "\n".join(problems)


async def test_execution_reports_over_order_lifecycles(venue: EngineHarness, mode: str) -> None:
    """new, trade (maker and taker), canceled, expired and book-rejected reports."""
    a = await venue.logged_on("alice", mode)
    b = await venue.logged_on("bob", mode)
    for symbol, price, qty, lower in (
        ("BTC-USDT", "30000", "0.5", "29700.01"),
        ("ETH-USDT", "2000.5", "1.5", "1990.01"),
        ("SOL-USDT", "100.125", "3", "99.001"),
    ):
        rest = await a.order(symbol, "sell", "limit", qty, price)
        await b.order(symbol, "buy", "ioc", qty, price)  # fills fully
        await a.recv("execution_report", order_id=rest["order_id"], exec_type="trade")
        await b.order(symbol, "buy", "market", "1")  # empty book: expired
        c = await a.order(symbol, "buy", "limit", qty, lower)
        assert c["exec_type"] == "new", c
        await a.send({"type": "cancel", "order_id": c["order_id"]})
        await a.recv("execution_report", order_id=c["order_id"], exec_type="canceled")
    post = await a.order(SYM, "buy", "limit", "0.1", "29000")
    await b.order(SYM, "sell", "limit", "0.1", "29000", post_only=True)  # rejected by the book
    await a.sync()
    await b.sync()
    all_well_formed(a, b)
    reports = a.reports() + b.reports()
    kinds = {r["exec_type"] for r in reports}
    assert {"new", "trade", "canceled", "expired", "rejected"} <= kinds, kinds
    for r in reports:
        check_report_decimals(r)
        assert TIMESTAMP_RE.fullmatch(r["timestamp"])
    assert post["exec_type"] == "new"


async def test_session_rejected_report_decimals_use_symbol_places(venue: EngineHarness, mode: str) -> None:
    """A new_order refused before it reached the book (off lot) still reports decimals with the
    symbol's places ("0.00000", not "0")."""
    c = await venue.logged_on("alice", mode)
    rep = await c.order(SYM, "buy", "limit", "0.000001", "30000")
    assert rep["reject_reason"] == "quantity_off_lot"
    assert rep["order_id"] is None
    for key in ("cum_qty", "leaves_qty"):
        assert places_of(rep[key]) == 5, (key, rep)


async def test_avg_price_null_before_first_fill(venue: EngineHarness, mode: str) -> None:
    """docs: avg_price is 'Average fill price (null before the first fill)'."""
    c = await venue.logged_on("alice", mode)
    new = await c.order(SYM, "buy", "limit", "0.1", "30000")
    assert new["avg_price"] is None, new
    orders = await c.open_orders()
    assert orders[0]["avg_price"] is None, orders


async def test_order_status_report_shape(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    new = await c.order(SYM, "buy", "limit", "0.1", "30000")
    await c.send({"type": "order_status", "symbol": SYM, "order_id": new["order_id"], "request_id": "st"})
    st = await c.recv("execution_report", request_id="st", check=False)
    assert st["exec_type"] == "order_status"
    check_shape(st)  # e.g. the required timestamp


async def test_triggered_report_shape(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "sell", "limit", "0.1", "30000")
    first = await c.order(SYM, "buy", "limit", "0.1", "30000")
    await c.recv("execution_report", order_id=first["order_id"], exec_type="trade")
    stop = await c.order(SYM, "sell", "stop_loss", "0.1", stop_price="29990")
    await mm.order(SYM, "buy", "limit", "0.2", "29980")
    bob = await venue.logged_on("bob", mode)
    await bob.order(SYM, "sell", "limit", "0.1", "29980")  # trades at 29980: triggers the stop
    trig = await c.recv("execution_report", order_id=stop["order_id"], exec_type="triggered", check=False)
    check_shape(trig)


async def test_replaced_with_new_client_order_id_shape(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    new = await c.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="shape-1")
    await c.send(
        {
            "type": "replace",
            "symbol": SYM,
            "order_id": new["order_id"],
            "client_order_id": "shape-2",
            "price": "30001",
        }
    )
    rep = await c.recv("execution_report", order_id=new["order_id"], exec_type="replaced", check=False)
    assert rep["client_order_id"] == "shape-2"
    check_shape(rep)


async def test_cancel_reject_shape(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "cancel", "symbol": SYM, "order_id": 777, "request_id": "by-id"})
    await c.send({"type": "cancel", "orig_client_order_id": "ghost", "request_id": "by-cid"})
    await c.send({"type": "replace", "symbol": SYM, "order_id": 778, "price": "1", "request_id": "rp"})
    replies = [
        await c.recv("cancel_reject", request_id=rid, check=False) for rid in ("by-id", "by-cid", "rp")
    ]
    for r in replies:
        assert r["reason"] == "unknown_order"
    problems = [p for r in replies if (p := shape_problem(r)) is not None]
    assert not problems, "\n".join(problems)


async def test_balances_shape(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "balances", "request_id": "b1"})
    reply = await c.recv("balances", request_id="b1", check=False)
    assert set(reply["balances"]) == {"BTC", "ETH", "SOL", "USDT"}
    places = {"BTC": 5, "ETH": 4, "SOL": 2, "USDT": 7}
    for asset, row in reply["balances"].items():
        assert set(row) == {"total", "available", "reserved"}
        for v in row.values():
            assert places_of(v) == places[asset], (asset, row)
    check_shape(reply)


async def test_open_orders_shape(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.order("SOL-USDT", "buy", "limit", "2", "100.001")
    await c.order(SYM, "sell", "stop_limit", "0.1", "29000", stop_price="29100")
    await c.send({"type": "open_orders", "request_id": "oo"})
    reply = await c.recv("open_orders", request_id="oo")
    assert len(reply["orders"]) == 2
    for o in reply["orders"]:
        price_places, qty_places = PLACES[o["symbol"]]
        assert places_of(o["price"]) == price_places
        assert places_of(o["quantity"]) == qty_places


async def test_market_data_shapes(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    await mm.order(SYM, "buy", "limit", "0.1", "29990")
    sub = await venue.client(mode)
    await sub.send({"type": "subscribe", "symbol": SYM, "channels": ["bbo", "depth", "trades"], "depth": 5})
    await sub.recv("depth")
    await mm.order(SYM, "sell", "limit", "0.2", "30010")
    t = await venue.logged_on("bob", mode)
    o = await t.order(SYM, "sell", "limit", "0.05", "29990")
    await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    trade = await sub.recv("trade")
    assert set(trade) == {
        "type",
        "symbol",
        "seq",
        "timestamp",
        "trade_id",
        "price",
        "quantity",
        "aggressor_side",
        "maker_order_id",
        "taker_order_id",
        "maker_fee",
        "taker_fee",
        "fee_asset",
    }
    assert (trade["price"], trade["quantity"], trade["aggressor_side"]) == ("29990.00", "0.05000", "sell")
    assert places_of(trade["maker_fee"]) == places_of(trade["taker_fee"]) == 7
    bbo = await sub.recv("bbo", bid_quantity="0.05000")
    assert set(bbo) == {
        "type",
        "symbol",
        "seq",
        "timestamp",
        "bid_price",
        "bid_quantity",
        "ask_price",
        "ask_quantity",
    }
    assert (bbo["bid_price"], bbo["ask_price"], bbo["ask_quantity"]) == ("29990.00", "30010.00", "0.20000")
    depth = await sub.recv("depth", pred=lambda m: m["bids"] == [["29990.00", "0.05000"]])
    assert set(depth) == {"type", "symbol", "seq", "timestamp", "bids", "asks"}
    assert depth["asks"] == [["30010.00", "0.20000"]]


async def test_session_message_shapes(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.send({"type": "help"})
    await c.recv("help")
    await c.send({"type": "balances"})
    await c.recv("reject")
    await c.logon("alice")
    await c.send({"type": "test_request", "test_request_id": "x"})
    await c.recv("heartbeat")
    await c.send({"type": "new_order", "symbol": SYM})
    rej = await c.recv("reject")
    assert rej["ref_type"] == "new_order" and rej["reason"] == "missing_field" and rej["field"]
    await c.send({"type": "logout"})
    await c.recv("logout")
    await c.wait_closed()
    all_well_formed(c)
