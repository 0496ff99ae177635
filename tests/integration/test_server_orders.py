"""Order entry over real sockets, in both wire modes: every order type and its execution-report
sequence, cancel / replace / cancel_all / order_status / open_orders, fills reaching both owners,
several sessions of one account, and other accounts' orders looking unknown."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.integration.conftest import Client, EngineHarness, check_shape, eventually

SYM = "BTC-USDT"


def seq_of(reports: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(r["exec_type"], r["order_status"]) for r in reports]


async def final(
    c: Client, order_id: int, statuses: tuple[str, ...] = ("filled", "canceled", "expired", "rejected")
) -> dict[str, Any]:
    """Wait for the report that ends order ``order_id``."""
    return await c.recv(
        "execution_report",
        order_id=order_id,
        pred=lambda m: m["order_status"] in statuses and m["exec_type"] != "order_status",
    )


async def test_limit_rests_then_fills_new_trade_filled(venue: EngineHarness, mode: str) -> None:
    maker = await venue.logged_on("alice", mode)
    taker = await venue.logged_on("bob", mode)
    new = await maker.order(SYM, "sell", "limit", "0.5", "30000", request_id="q1")
    assert new["exec_type"] == "new" and new["order_status"] == "new"
    assert new["request_id"] == "q1"
    assert (new["quantity"], new["cum_qty"], new["leaves_qty"]) == ("0.50000", "0.00000", "0.50000")
    mid = new["order_id"]
    t1 = await taker.order(SYM, "buy", "limit", "0.2", "30000")
    tid1 = t1["order_id"]
    tr = await taker.recv("execution_report", order_id=tid1, exec_type="trade")
    assert tr["order_status"] == "filled"
    assert (tr["last_price"], tr["last_qty"], tr["liquidity"]) == ("30000.00", "0.20000", "taker")
    assert tr["leaves_qty"] == "0.00000" and tr["cum_qty"] == "0.20000"
    assert "request_id" not in tr  # fills are later events, they carry no request_id
    mtr = await maker.recv("execution_report", order_id=mid, exec_type="trade")
    assert mtr["order_status"] == "partially_filled"
    assert (mtr["last_price"], mtr["last_qty"], mtr["liquidity"]) == ("30000.00", "0.20000", "maker")
    assert (mtr["cum_qty"], mtr["leaves_qty"], mtr["avg_price"]) == ("0.20000", "0.30000", "30000.00")
    assert mtr["trade_id"] == tr["trade_id"]
    # second taker fills the rest at two prices' worth of orders
    t2 = await taker.order(SYM, "buy", "limit", "0.4", "30000")
    await taker.recv("execution_report", order_id=t2["order_id"], exec_type="trade")
    done = await maker.recv("execution_report", order_id=mid, exec_type="trade")
    assert done["order_status"] == "filled" and done["leaves_qty"] == "0.00000"
    # the taker's remaining 0.1 rests
    await taker.sync()
    assert seq_of(taker.reports(t2["order_id"])) == [("new", "new"), ("trade", "partially_filled")]
    assert seq_of(maker.reports(mid)) == [("new", "new"), ("trade", "partially_filled"), ("trade", "filled")]
    assert seq_of(taker.reports(tid1)) == [("new", "new"), ("trade", "filled")]


async def test_market_into_empty_book_expires(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    for side in ("buy", "sell"):
        new = await c.order(SYM, side, "market", "0.1")
        assert new["exec_type"] == "new"
        assert new["price"] is None
        end = await final(c, new["order_id"])
        assert end["exec_type"] == "expired" and end["order_status"] == "expired"
        assert end["reason"] == "no_liquidity"
        assert end["cum_qty"] == "0.00000" and end["leaves_qty"] == "0.00000"
        assert [r["exec_type"] for r in c.reports(new["order_id"])] == ["new", "expired"]
    # nothing is left reserved
    bal = await c.balances()
    assert all(row["reserved"] == 0 for row in bal.values())


async def test_market_buy_sweeps_levels(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    a1 = await mm.order(SYM, "sell", "limit", "0.1", "30000")
    a2 = await mm.order(SYM, "sell", "limit", "0.1", "30001")
    new = await c.order(SYM, "buy", "market", "0.15")
    fills = [await c.recv("execution_report", order_id=new["order_id"], exec_type="trade") for _ in range(2)]
    assert [(f["last_price"], f["last_qty"]) for f in fills] == [
        ("30000.00", "0.10000"),
        ("30001.00", "0.05000"),
    ]
    assert fills[-1]["order_status"] == "filled"
    # avg price = (3000 + 1500.05) / 0.15 = 30000.3333...
    assert Decimal(fills[-1]["avg_price"]).quantize(Decimal("0.01")) == Decimal("30000.33")
    await mm.recv("execution_report", order_id=a1["order_id"], exec_type="trade", order_status="filled")
    await mm.recv(
        "execution_report", order_id=a2["order_id"], exec_type="trade", order_status="partially_filled"
    )


async def test_ioc_with_price_remainder_expires(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "sell", "limit", "0.3", "30000")
    await mm.order(SYM, "sell", "limit", "0.3", "30010")  # above the IOC's price: not reached
    new = await c.order(SYM, "buy", "ioc", "0.4", "30000")
    oid = new["order_id"]
    tr = await c.recv("execution_report", order_id=oid, exec_type="trade")
    assert (tr["last_qty"], tr["order_status"]) == ("0.30000", "partially_filled")
    end = await final(c, oid)
    assert (end["exec_type"], end["reason"]) == ("expired", "ioc_remainder")
    assert (end["cum_qty"], end["leaves_qty"]) == ("0.30000", "0.00000")
    assert [r["exec_type"] for r in c.reports(oid)] == ["new", "trade", "expired"]
    # the 30010 ask is untouched
    await c.send({"type": "book", "symbol": SYM, "depth": 5, "request_id": "bk"})
    book = await c.recv("depth", request_id="bk")
    assert book["asks"] == [["30010.00", "0.30000"]]


async def test_ioc_without_price_takes_any_price_then_expires(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "buy", "limit", "0.2", "29990")
    await mm.order(SYM, "buy", "limit", "0.2", "29980")
    new = await c.order(SYM, "sell", "ioc", "0.5")
    assert new["price"] is None
    oid = new["order_id"]
    end = await final(c, oid)
    assert end["exec_type"] == "expired"
    assert end["reason"] in ("ioc_remainder", "no_liquidity")
    trades = [r for r in c.reports(oid) if r["exec_type"] == "trade"]
    assert [(t["last_price"], t["last_qty"]) for t in trades] == [
        ("29990.00", "0.20000"),
        ("29980.00", "0.20000"),
    ]
    assert end["cum_qty"] == "0.40000"


async def test_fok_not_fillable_expires_without_trades(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    rest = await mm.order(SYM, "sell", "limit", "0.3", "30000")
    for price in ("30000", None):
        new = await c.order(SYM, "buy", "fok", "0.4", price)
        end = await final(c, new["order_id"])
        assert (end["exec_type"], end["reason"]) == ("expired", "fok_not_fillable")
        assert end["cum_qty"] == "0.00000"
        assert [r["exec_type"] for r in c.reports(new["order_id"])] == ["new", "expired"]
    # the maker saw nothing
    await mm.sync()
    assert seq_of(mm.reports(rest["order_id"])) == [("new", "new")]
    st = await mm.request(
        {"type": "order_status", "symbol": SYM, "order_id": rest["order_id"]}, "execution_report"
    )
    assert st["leaves_qty"] == "0.30000"


async def test_fok_fillable_fills_completely(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "sell", "limit", "0.2", "30000")
    await mm.order(SYM, "sell", "limit", "0.2", "30005")
    new = await c.order(SYM, "buy", "fok", "0.3", "30005")
    end = await final(c, new["order_id"])
    assert end["exec_type"] == "trade" and end["order_status"] == "filled"
    assert [r["exec_type"] for r in c.reports(new["order_id"])] == ["new", "trade", "trade"]


async def test_post_only_rests_or_is_rejected(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "sell", "limit", "0.3", "30000")
    ok = await c.order(SYM, "buy", "limit", "0.1", "29999", post_only=True)
    assert ok["exec_type"] == "new"
    bad = await c.order(SYM, "buy", "limit", "0.1", "30000", post_only=True)
    assert bad["exec_type"] == "rejected" and bad["order_status"] == "rejected"
    assert bad["reject_reason"] == "post_only_would_take"
    assert bad["text"]
    # no funds stay reserved for the rejected order: only the resting 0.1 @ 29999 (+ fee at 2 bps)
    bal = await c.balances()
    assert bal["USDT"]["reserved"] == Decimal("2999.9") + Decimal("2999.9") * 2 / 10000


async def test_stop_orders_trigger_on_last_trade(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    t = await venue.logged_on("bob", mode)
    # establish a last trade price of 30000
    await mm.order(SYM, "sell", "limit", "0.1", "30000")
    first = await t.order(SYM, "buy", "limit", "0.1", "30000")
    await final(t, first["order_id"])
    # liquidity for the triggered orders
    await mm.order(SYM, "sell", "limit", "1", "30100")
    await mm.order(SYM, "buy", "limit", "1", "29900")
    stops = {
        "sl_buy": await c.order(SYM, "buy", "stop_loss", "0.1", stop_price="30050"),
        "sl_buy_limit": await c.order(SYM, "buy", "stop_limit", "0.1", "30100", stop_price="30050"),
        "tp_sell": await c.order(SYM, "sell", "take_profit", "0.1", stop_price="30050"),
        "tp_sell_limit": await c.order(SYM, "sell", "take_profit_limit", "0.1", "29900", stop_price="30050"),
        # far below: not reached by the trades of the triggered orders (at 29900 and 30100)
        "sl_sell": await c.order(SYM, "sell", "stop_loss", "0.1", stop_price="29000"),
        "tp_buy": await c.order(SYM, "buy", "take_profit", "0.1", stop_price="29000"),
    }
    for name, rep in stops.items():
        assert rep["exec_type"] == "new", (name, rep)
        assert rep["stop_price"] in ("30050.00", "29000.00")
    # already reached: refused
    bad = await c.order(SYM, "sell", "stop_loss", "0.1", stop_price="30010")
    assert bad["exec_type"] == "rejected" and bad["reject_reason"] == "would_trigger_immediately"
    # untriggered stops are open orders but not in the visible book
    await c.send({"type": "book", "symbol": SYM, "request_id": "b1"})
    book = await c.recv("depth", request_id="b1")
    assert book["bids"] == [["29900.00", "1.00000"]] and book["asks"] == [["30100.00", "1.00000"]]
    # a trade at 30060 triggers the four "rise" orders
    await mm.order(SYM, "sell", "limit", "0.01", "30060")
    lift = await t.order(SYM, "buy", "limit", "0.01", "30060")
    await final(t, lift["order_id"])
    for name in ("sl_buy", "sl_buy_limit", "tp_sell", "tp_sell_limit"):
        oid = stops[name]["order_id"]
        trig = await c.recv("execution_report", order_id=oid, exec_type="triggered", timeout=5)
        end = await final(c, oid)
        assert end["order_status"] == "filled", (name, end)
        assert trig["order_status"] in ("new",)
    # the "fall" orders are still waiting
    for name in ("sl_sell", "tp_buy"):
        st = await c.request(
            {"type": "order_status", "symbol": SYM, "order_id": stops[name]["order_id"]}, "execution_report"
        )
        assert st["order_status"] == "new" and st["leaves_qty"] == "0.10000"


async def test_rejects_carry_reason_and_text(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    cases = [
        ({"quantity": "0.000001", "price": "30000"}, "quantity_off_lot"),
        ({"quantity": "0.1", "price": "30000.001"}, "price_off_tick"),
        ({"quantity": "0", "price": "30000"}, "invalid_quantity"),
        ({"quantity": "-1", "price": "30000"}, "invalid_quantity"),
        ({"quantity": "0.1", "price": "0"}, "invalid_price"),
        ({"quantity": "0.1", "price": "-5"}, "invalid_price"),
        ({"quantity": "1000000", "price": "30000"}, "insufficient_funds"),
        ({"symbol": "NOPE-USDT", "quantity": "0.1", "price": "30000"}, "unknown_symbol"),
    ]
    for i, (fields, reason) in enumerate(cases):
        cid = f"bad{i}"
        msg = {
            "type": "new_order",
            "client_order_id": cid,
            "symbol": SYM,
            "side": "buy",
            "order_type": "limit",
            **fields,
            "request_id": cid,
        }
        await c.send(msg)
        rep = await c.recv("execution_report", client_order_id=cid)
        assert rep["exec_type"] == "rejected" and rep["order_status"] == "rejected", rep
        assert rep["reject_reason"] == reason, rep
        assert rep["text"], rep
        assert rep["request_id"] == cid
    # none of them left anything open or reserved
    assert await c.open_orders() == []
    assert all(row["reserved"] == 0 for row in (await c.balances()).values())


async def test_duplicate_client_order_id(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    first = await c.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="dup")
    assert first["exec_type"] == "new"
    second = await c.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="dup")
    assert second["exec_type"] == "rejected" and second["reject_reason"] == "duplicate_client_order_id"
    # another account may use the same client id
    b = await venue.logged_on("bob", mode)
    assert (await b.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="dup"))["exec_type"] == "new"


# -- cancel, replace, cancel_all, status, open orders -------------------------------------------


async def test_cancel_by_order_id_and_by_client_order_id(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    a = await c.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="ca")
    b = await c.order(SYM, "buy", "limit", "0.2", "29000", client_order_id="cb")
    # by order id, no symbol
    await c.send({"type": "cancel", "order_id": a["order_id"], "request_id": "x1"})
    can = await c.recv("execution_report", order_id=a["order_id"], exec_type="canceled")
    assert can["order_status"] == "canceled" and can["reason"] == "canceled_by_user"
    assert can["request_id"] == "x1"
    assert can["leaves_qty"] == "0.00000"
    # by client order id, with symbol
    await c.send({"type": "cancel", "symbol": SYM, "orig_client_order_id": "cb", "request_id": "x2"})
    can = await c.recv("execution_report", order_id=b["order_id"], exec_type="canceled")
    assert can["client_order_id"] == "cb" and can["request_id"] == "x2"
    assert await c.open_orders() == []
    # cancel of a done order: order_not_open (or unknown once forgotten)
    await c.send({"type": "cancel", "symbol": SYM, "order_id": a["order_id"], "request_id": "x3"})
    rej = await c.recv("cancel_reject", request_id="x3")
    assert rej["response_to"] == "cancel"
    assert rej["reason"] in ("order_not_open", "unknown_order")
    assert rej["text"]
    # unknown ids
    for ref in ({"order_id": 987654}, {"orig_client_order_id": "nope"}):
        await c.send({"type": "cancel", "symbol": SYM, **ref, "request_id": "x4"})
        rej = await c.recv("cancel_reject", request_id="x4")
        assert rej["reason"] == "unknown_order"
    assert all(row["reserved"] == 0 for row in (await c.balances()).values())


async def test_replace_quantity_down_keeps_priority(venue: EngineHarness, mode: str) -> None:
    alice = await venue.logged_on("alice", mode)
    bob = await venue.logged_on("bob", mode)
    carol = await venue.logged_on("carol", mode)
    a = await alice.order(SYM, "sell", "limit", "0.2", "30000")
    b = await bob.order(SYM, "sell", "limit", "0.2", "30000")
    await alice.send(
        {"type": "replace", "symbol": SYM, "order_id": a["order_id"], "quantity": "0.1", "request_id": "rp"}
    )
    rep = await alice.recv("execution_report", order_id=a["order_id"], exec_type="replaced")
    assert rep["request_id"] == "rp"
    assert (rep["quantity"], rep["leaves_qty"], rep["order_status"]) == ("0.10000", "0.10000", "new")
    buy = await carol.order(SYM, "buy", "limit", "0.1", "30000")
    tr = await carol.recv("execution_report", order_id=buy["order_id"], exec_type="trade")
    assert tr["order_status"] == "filled"
    # alice (first in time, quantity decreased) was the maker
    await alice.recv("execution_report", order_id=a["order_id"], exec_type="trade", order_status="filled")
    await bob.sync()
    assert [r["exec_type"] for r in bob.reports(b["order_id"])] == ["new"]


async def test_replace_quantity_up_or_price_loses_priority(venue: EngineHarness, mode: str) -> None:
    alice = await venue.logged_on("alice", mode)
    bob = await venue.logged_on("bob", mode)
    carol = await venue.logged_on("carol", mode)
    a = await alice.order(SYM, "sell", "limit", "0.1", "30000", client_order_id="a-1")
    b = await bob.order(SYM, "sell", "limit", "0.1", "30000")
    # quantity up, new client id
    await alice.send(
        {
            "type": "replace",
            "symbol": SYM,
            "orig_client_order_id": "a-1",
            "client_order_id": "a-2",
            "quantity": "0.2",
        }
    )
    rep = await alice.recv("execution_report", order_id=a["order_id"], exec_type="replaced")
    assert rep["client_order_id"] == "a-2" and rep["quantity"] == "0.20000"
    buy = await carol.order(SYM, "buy", "limit", "0.1", "30000")
    await carol.recv("execution_report", order_id=buy["order_id"], exec_type="trade", order_status="filled")
    # bob is now first
    await bob.recv("execution_report", order_id=b["order_id"], exec_type="trade", order_status="filled")
    # price change: alice's order moves; status by the new client id
    await alice.send({"type": "replace", "symbol": SYM, "order_id": a["order_id"], "price": "30001"})
    rep = await alice.recv("execution_report", order_id=a["order_id"], exec_type="replaced", price="30001.00")
    st = await alice.request(
        {"type": "order_status", "symbol": SYM, "client_order_id": "a-2"}, "execution_report"
    )
    assert (st["order_id"], st["price"], st["leaves_qty"]) == (a["order_id"], "30001.00", "0.20000")
    await alice.sync()
    events = [r["exec_type"] for r in alice.reports(a["order_id"]) if r["exec_type"] != "order_status"]
    assert events == ["new", "replaced", "replaced"]


async def test_replace_rejects(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    mm = await venue.logged_on("mm", mode)
    a = await c.order(SYM, "sell", "limit", "0.2", "30000")
    fill = await mm.order(SYM, "buy", "limit", "0.1", "30000")
    await final(mm, fill["order_id"])
    await c.recv("execution_report", order_id=a["order_id"], exec_type="trade")
    # new quantity not above the filled 0.1
    await c.send(
        {"type": "replace", "symbol": SYM, "order_id": a["order_id"], "quantity": "0.1", "request_id": "r1"}
    )
    rej = await c.recv("cancel_reject", request_id="r1")
    assert rej["response_to"] == "replace" and rej["reason"] == "quantity_not_above_filled"
    # unknown order
    await c.send({"type": "replace", "symbol": SYM, "order_id": 424242, "price": "30000", "request_id": "r2"})
    assert (await c.recv("cancel_reject", request_id="r2"))["reason"] == "unknown_order"
    # nothing to change: schema reject
    await c.send({"type": "replace", "symbol": SYM, "order_id": a["order_id"], "request_id": "r3"})
    assert (await c.recv("reject", request_id="r3"))["reason"] == "missing_field"
    # the order is unchanged
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "order_id": a["order_id"]}, "execution_report"
    )
    assert (st["quantity"], st["cum_qty"], st["leaves_qty"]) == ("0.20000", "0.10000", "0.10000")


async def test_cancel_all_everywhere_and_per_symbol(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    ids = []
    for symbol, price in (
        ("BTC-USDT", "30000"),
        ("BTC-USDT", "29000"),
        ("ETH-USDT", "2000"),
        ("SOL-USDT", "100"),
    ):
        ids.append((symbol, (await c.order(symbol, "buy", "limit", "1", price))["order_id"]))
    await c.send({"type": "cancel_all", "symbol": "ETH-USDT", "request_id": "ca1"})
    eth = next(oid for s, oid in ids if s == "ETH-USDT")
    can = await c.recv("execution_report", order_id=eth, exec_type="canceled")
    assert can["reason"] == "canceled_by_user"
    assert sorted(o["order_id"] for o in await c.open_orders()) == sorted(
        oid for s, oid in ids if s != "ETH-USDT"
    )
    await c.send({"type": "cancel_all", "request_id": "ca2"})
    for s, oid in ids:
        if s != "ETH-USDT":
            await c.recv("execution_report", order_id=oid, exec_type="canceled")
    assert await c.open_orders() == []
    # each order got exactly one canceled report
    await c.sync()
    for _, oid in ids:
        assert [r["exec_type"] for r in c.reports(oid)] == ["new", "canceled"]
    # cancel_all with nothing open is harmless
    await c.send({"type": "cancel_all", "request_id": "ca3"})
    await c.sync()
    assert all(row["reserved"] == 0 for row in (await c.balances()).values())


async def test_cancel_all_reply_is_a_protocol_message(venue: EngineHarness, mode: str) -> None:
    """Everything the server sends in answer to cancel_all is a documented server message."""
    c = await venue.logged_on("alice", mode)
    await c.order(SYM, "buy", "limit", "0.1", "30000")
    await c.send({"type": "cancel_all", "request_id": "ca"})
    await c.recv("execution_report", exec_type="canceled")
    await c.sync()
    for m in c.received:
        check_shape(m)


async def test_order_status_open_and_done(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    mm = await venue.logged_on("mm", mode)
    a = await c.order(SYM, "buy", "limit", "0.3", "30000", client_order_id="st-1")
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "order_id": a["order_id"]}, "execution_report"
    )
    assert st["exec_type"] == "order_status"
    assert (st["order_status"], st["quantity"], st["leaves_qty"], st["client_order_id"]) == (
        "new",
        "0.30000",
        "0.30000",
        "st-1",
    )
    # partially filled
    s = await mm.order(SYM, "sell", "limit", "0.1", "30000")
    await final(mm, s["order_id"])
    await c.recv("execution_report", order_id=a["order_id"], exec_type="trade")
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "client_order_id": "st-1"}, "execution_report"
    )
    assert (st["order_status"], st["cum_qty"], st["leaves_qty"], st["avg_price"]) == (
        "partially_filled",
        "0.10000",
        "0.20000",
        "30000.00",
    )
    # done (canceled): still answerable
    await c.send({"type": "cancel", "order_id": a["order_id"]})
    await c.recv("execution_report", order_id=a["order_id"], exec_type="canceled")
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "order_id": a["order_id"]}, "execution_report"
    )
    assert (st["order_status"], st["cum_qty"], st["leaves_qty"]) == ("canceled", "0.10000", "0.00000")
    # filled
    b = await c.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="st-2")
    s2 = await mm.order(SYM, "sell", "limit", "0.1", "30000")
    await final(mm, s2["order_id"])
    await final(c, b["order_id"])
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "client_order_id": "st-2"}, "execution_report"
    )
    assert (st["order_status"], st["cum_qty"], st["leaves_qty"]) == ("filled", "0.10000", "0.00000")


async def test_order_status_unknown(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "order_status", "symbol": SYM, "order_id": 31337, "request_id": "u1"})
    rej = await c.recv(request_id="u1")
    assert rej["type"] in ("reject", "cancel_reject", "execution_report")
    assert rej.get("reason", rej.get("reject_reason")) == "unknown_order"


async def test_open_orders_lists_oldest_first_with_state(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    assert await c.open_orders() == []
    a = await c.order("ETH-USDT", "sell", "limit", "1", "2000")
    b = await c.order(SYM, "buy", "limit", "0.1", "30000")
    s = await c.order(SYM, "sell", "stop_loss", "0.1", stop_price="29000")
    orders = await c.open_orders()
    assert [o["order_id"] for o in orders] == [a["order_id"], b["order_id"], s["order_id"]]
    by_id = {o["order_id"]: o for o in orders}
    assert by_id[a["order_id"]]["symbol"] == "ETH-USDT"
    assert by_id[a["order_id"]]["quantity"] == "1.0000"
    assert by_id[s["order_id"]]["stop_price"] == "29000.00"
    assert by_id[s["order_id"]]["price"] is None
    only = await c.open_orders(SYM)
    assert [o["order_id"] for o in only] == [b["order_id"], s["order_id"]]


# -- who receives what ---------------------------------------------------------------------------


async def test_every_fill_reaches_maker_and_taker_with_fill_fields(venue: EngineHarness, mode: str) -> None:
    maker = await venue.logged_on("alice", mode)
    taker = await venue.logged_on("bob", "json" if mode == "binary" else "binary")
    m1 = await maker.order(SYM, "sell", "limit", "0.1", "30000")
    m2 = await maker.order(SYM, "sell", "limit", "0.2", "30001")
    t = await taker.order(SYM, "buy", "limit", "0.3", "30001")
    tfills = [
        await taker.recv("execution_report", order_id=t["order_id"], exec_type="trade") for _ in range(2)
    ]
    mfills = [
        await maker.recv("execution_report", order_id=m1["order_id"], exec_type="trade"),
        await maker.recv("execution_report", order_id=m2["order_id"], exec_type="trade"),
    ]
    for tf, mf in zip(tfills, mfills, strict=True):
        assert tf["trade_id"] == mf["trade_id"]
        assert tf["last_price"] == mf["last_price"] and tf["last_qty"] == mf["last_qty"]
        assert (tf["liquidity"], mf["liquidity"]) == ("taker", "maker")
        assert tf["fee_asset"] == mf["fee_asset"] == "USDT"
        notional = Decimal(tf["last_price"]) * Decimal(tf["last_qty"])
        assert Decimal(tf["fee"]) == notional * 2 / 10000
        assert Decimal(mf["fee"]) == notional * 1 / 10000
    assert tfills[0]["trade_id"] < tfills[1]["trade_id"]
    assert tfills[1]["order_status"] == "filled"


async def test_all_sessions_of_an_account_receive_its_reports(venue: EngineHarness, mode: str) -> None:
    s1 = await venue.logged_on("alice", mode)
    s2 = await venue.logged_on("alice", "json")
    s3 = await venue.logged_on("alice", "binary")
    other = await venue.logged_on("bob", mode)
    a = await s1.order(SYM, "sell", "limit", "0.2", "30000")
    oid = a["order_id"]
    t = await other.order(SYM, "buy", "limit", "0.2", "30000")
    await final(other, t["order_id"])
    for s in (s1, s2, s3):
        await s.recv("execution_report", order_id=oid, exec_type="trade", order_status="filled")
        assert [r["exec_type"] for r in s.reports(oid)] == ["new", "trade"]
    # a cancel from another session of the account reaches all of them too
    b = await s2.order(SYM, "buy", "limit", "0.1", "29000")
    await s3.send({"type": "cancel", "order_id": b["order_id"]})
    for s in (s1, s2, s3):
        await s.recv("execution_report", order_id=b["order_id"], exec_type="canceled")
    # bob never sees alice's reports
    await other.sync()
    assert all(r["order_id"] != oid or r["exec_type"] != "new" for r in other.reports())
    assert not [r for r in other.reports() if r["order_id"] == b["order_id"]]


async def test_cancel_of_a_done_order_without_symbol_is_order_not_open(
    venue: EngineHarness, mode: str
) -> None:
    """The symbol is optional on a cancel (the venue finds the order by its id), so leaving it
    out must not change the answer: a recently done order is ``order_not_open``, not unknown."""
    c = await venue.logged_on("alice", mode)
    taker = await venue.logged_on("bob", mode)
    rested = await c.order(SYM, "buy", "limit", "0.1", "29000", client_order_id="gone-1")
    await c.send({"type": "cancel", "order_id": rested["order_id"]})
    await final(c, rested["order_id"])
    filled = await c.order(SYM, "sell", "limit", "0.1", "30000", client_order_id="gone-2")
    await taker.order(SYM, "buy", "limit", "0.1", "30000")
    await final(c, filled["order_id"])
    cases = [
        ({"order_id": rested["order_id"]}, rested["order_id"], "canceled"),
        ({"orig_client_order_id": "gone-1"}, rested["order_id"], "canceled"),
        ({"order_id": filled["order_id"]}, filled["order_id"], "filled"),
    ]
    for n, (ref, order_id, status) in enumerate(cases):
        for with_symbol in (True, False):
            rid = f"done-{n}-{with_symbol}"
            msg = {"type": "cancel", **ref, "request_id": rid}
            if with_symbol:
                msg["symbol"] = SYM
            await c.send(msg)
            rej = await c.recv("cancel_reject", request_id=rid)
            assert (rej["reason"], rej["order_id"], rej["order_status"]) == (
                "order_not_open",
                order_id,
                status,
            ), msg


async def test_cancel_reject_names_the_order_as_known(venue: EngineHarness, mode: str) -> None:
    """Issue 3: a cancel_reject carries ``order_id``/``client_order_id`` as known. A request
    without a client_order_id of its own gets the order's, like an execution report."""
    c = await venue.logged_on("alice", mode)
    a = await c.order(SYM, "buy", "limit", "0.1", "29000", client_order_id="known-1")
    await c.send({"type": "cancel", "order_id": a["order_id"]})
    await final(c, a["order_id"])
    await c.send({"type": "cancel", "symbol": SYM, "order_id": a["order_id"], "request_id": "again"})
    rej = await c.recv("cancel_reject", request_id="again")
    assert (rej["reason"], rej["order_id"], rej["order_status"]) == (
        "order_not_open",
        a["order_id"],
        "canceled",
    )
    assert (rej["client_order_id"], rej["orig_client_order_id"]) == ("known-1", "known-1")
    # the request's own client_order_id wins (FIX ClOrdID of the cancel request)
    await c.send(
        {
            "type": "replace",
            "symbol": SYM,
            "orig_client_order_id": "known-1",
            "client_order_id": "mine",
            "price": "29001",
            "request_id": "own",
        }
    )
    rej = await c.recv("cancel_reject", request_id="own")
    assert (rej["client_order_id"], rej["orig_client_order_id"]) == ("mine", "known-1")


async def test_other_accounts_order_looks_unknown(venue: EngineHarness, mode: str) -> None:
    alice = await venue.logged_on("alice", mode)
    bob = await venue.logged_on("bob", mode)
    a = await alice.order(SYM, "buy", "limit", "0.1", "30000", client_order_id="secret")
    oid = a["order_id"]
    # cancel with and without symbol, by id and by client id
    for i, ref in enumerate(
        (
            {"order_id": oid},
            {"symbol": SYM, "order_id": oid},
            {"symbol": SYM, "orig_client_order_id": "secret"},
        )
    ):
        await bob.send({"type": "cancel", **ref, "request_id": f"c{i}"})
        rej = await bob.recv("cancel_reject", request_id=f"c{i}")
        assert rej["reason"] == "unknown_order", rej
        assert rej.get("order_status") is None  # nothing about alice's order leaks
        assert rej.get("client_order_id") is None
    await bob.send(
        {"type": "replace", "symbol": SYM, "order_id": oid, "quantity": "0.05", "request_id": "rp"}
    )
    rej = await bob.recv("cancel_reject", request_id="rp")
    assert rej["reason"] == "unknown_order"
    await bob.send({"type": "cancel_all", "request_id": "all"})
    await bob.send({"type": "order_status", "symbol": SYM, "order_id": oid, "request_id": "st"})
    st = await bob.recv(request_id="st", pred=lambda m: m["type"] != "cancel_all")
    assert st.get("reason", st.get("reject_reason")) == "unknown_order", st
    assert (await bob.open_orders()) == []
    # alice's order is untouched
    st = await alice.request({"type": "order_status", "symbol": SYM, "order_id": oid}, "execution_report")
    assert (st["order_status"], st["quantity"], st["leaves_qty"]) == ("new", "0.10000", "0.10000")
    await alice.sync()
    assert [r["exec_type"] for r in alice.reports(oid)] == ["new", "order_status"]


async def test_request_ids_echoed_on_direct_replies(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send(
        {
            "type": "new_order",
            "client_order_id": "e1",
            "symbol": SYM,
            "side": "buy",
            "order_type": "limit",
            "quantity": "0.1",
            "price": "30000",
            "request_id": -5,
        }
    )
    new = await c.recv("execution_report", client_order_id="e1")
    assert new["request_id"] == -5
    for msg, rtype in (
        ({"type": "open_orders"}, "open_orders"),
        ({"type": "balances"}, "balances"),
        ({"type": "book", "symbol": SYM}, "depth"),
        ({"type": "order_status", "symbol": SYM, "order_id": new["order_id"]}, "execution_report"),
        ({"type": "test_request"}, "heartbeat"),
        ({"type": "help"}, "help"),
    ):
        rid = "id-" + msg["type"]
        await c.send({**msg, "request_id": rid})
        reply = await c.recv(request_id=rid, check=False)
        assert reply["type"] == rtype


async def test_self_trade_prevention_default_cancel_newest(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    rest = await c.order(SYM, "sell", "limit", "0.1", "30000")
    new = await c.order(SYM, "buy", "limit", "0.1", "30000")
    end = await final(c, new["order_id"])
    assert end["exec_type"] == "expired" and end["reason"] == "self_trade_prevention"
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "order_id": rest["order_id"]}, "execution_report"
    )
    assert st["order_status"] == "new"
    await c.sync()
    assert not [r for r in c.reports() if r["exec_type"] == "trade"]


async def test_self_trade_prevention_decrement_report_is_documented(venue: EngineHarness, mode: str) -> None:
    """STP 'decrement' restates the resting order; every report it produces is a documented message."""
    c = await venue.logged_on("alice", mode)
    rest = await c.order(SYM, "sell", "limit", "0.3", "30000")
    new = await c.order(SYM, "buy", "limit", "0.1", "30000", self_trade_prevention="decrement")
    await final(c, new["order_id"])
    await eventually(lambda: len(c.reports(rest["order_id"])) >= 2)
    await c.sync()
    for m in c.received:
        check_shape(m)
    st = await c.request(
        {"type": "order_status", "symbol": SYM, "order_id": rest["order_id"]}, "execution_report"
    )
    assert st["leaves_qty"] == "0.20000"


async def test_an_order_the_book_refuses_is_found_by_status_queries(venue: EngineHarness, mode: str) -> None:
    """A well-formed order that got an id and was then refused by a market rule (here post-only
    would take) is remembered as rejected: order_status finds it by id and by client id, and a
    cancel of it is order_not_open."""
    mm = await venue.logged_on("mm", mode)
    c = await venue.logged_on("alice", mode)
    await mm.order(SYM, "sell", "limit", "0.2", "30000")
    cid = c.next_cid("po")
    await c.send(
        {
            "type": "new_order",
            "client_order_id": cid,
            "symbol": SYM,
            "side": "buy",
            "order_type": "limit",
            "quantity": "0.1",
            "price": "30000",
            "post_only": True,
        }
    )
    rejected = await c.recv("execution_report", client_order_id=cid, exec_type="rejected")
    assert "post_only_would_take" == rejected["reject_reason"]

    for ref in ({"order_id": rejected["order_id"]}, {"client_order_id": cid}):
        st = await c.request({"type": "order_status", "symbol": SYM, **ref}, "execution_report")
        assert ("order_status", "rejected", rejected["order_id"], cid) == (
            st["exec_type"],
            st["order_status"],
            st["order_id"],
            st["client_order_id"],
        ), ref
        assert (st["cum_qty"], st["leaves_qty"], st["quantity"]) == ("0.00000", "0.00000", "0.10000")
    await c.send({"type": "cancel", "symbol": SYM, "order_id": rejected["order_id"], "request_id": "cx"})
    refused = await c.recv("cancel_reject", request_id="cx")
    assert ("order_not_open", "rejected") == (refused["reason"], refused["order_status"])
