"""Stop and take-profit orders over real sockets: every type and side at the trigger boundary
(one tick short does not trigger, equal does), cascades across several levels in the documented
order, cancel and replace of untriggered orders, reservations and their release, and untriggered
orders surviving a restart (docs/order-types.md)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Client, EngineHarness

SYM = "BTC-USDT"
LAST = "30000.00"  # every test first prints a trade here
ASK = "30050.00"  # resting liquidity a triggered buy takes
BID = "29950.00"  # resting liquidity a triggered sell takes

# (order_type, side) -> (stop price, limit price or None); rising triggers sit above LAST,
# falling ones below, and a limit price is marketable against ASK / BID once triggered.
CASES: dict[tuple[str, str], tuple[str, str | None]] = {
    ("stop_loss", "buy"): ("30010.00", None),
    ("stop_limit", "buy"): ("30010.00", "30060.00"),
    ("take_profit", "sell"): ("30010.00", None),
    ("take_profit_limit", "sell"): ("30010.00", "29940.00"),
    ("stop_loss", "sell"): ("29990.00", None),
    ("stop_limit", "sell"): ("29990.00", "29940.00"),
    ("take_profit", "buy"): ("29990.00", None),
    ("take_profit_limit", "buy"): ("29990.00", "30060.00"),
}
TICK = Decimal("0.01")


class Venue:
    """The three parties of every test: the stop owner, a market maker and a taker."""

    def __init__(self, owner: Client, mm: Client, taker: Client) -> None:
        self.owner, self.mm, self.taker = owner, mm, taker

    async def print_trade(self, price: str, qty: str = "0.01", maker_side: str = "sell") -> None:
        """Make the symbol's last trade price ``price``: mm rests on ``maker_side`` (the bid for
        falling prices), the taker takes it fully."""
        rest = await self.mm.order(SYM, maker_side, "limit", qty, price)
        assert rest["exec_type"] == "new", rest
        taker_side = "buy" if maker_side == "sell" else "sell"
        take = await self.taker.order(SYM, taker_side, "limit", qty, price)
        end = await self.taker.recv(
            "execution_report", order_id=take["order_id"], order_status="filled", exec_type="trade"
        )
        assert end["last_price"] == price

    async def print_trade_down(self, price: str) -> None:
        """:meth:`print_trade` with the maker on the bid."""
        await self.print_trade(price, maker_side="buy")

    async def book(self) -> dict[str, Any]:
        """The visible book, asked through the owner (ordered after its earlier commands)."""
        rid = self.owner.next_cid("book")
        await self.owner.send({"type": "book", "symbol": SYM, "request_id": rid})
        return await self.owner.recv("depth", request_id=rid)

    async def status(self, order_id: int) -> dict[str, Any]:
        return await self.owner.request(
            {"type": "order_status", "symbol": SYM, "order_id": order_id}, "execution_report"
        )


async def open_venue(h: EngineHarness, mode: str = "binary") -> Venue:
    v = Venue(await h.logged_on("alice", mode), await h.logged_on("mm", mode), await h.logged_on("bob", mode))
    await v.print_trade(LAST)
    return v


@pytest.mark.parametrize(("order_type", "side"), list(CASES), ids=[f"{t}-{s}" for t, s in CASES])
async def test_one_tick_short_waits_and_the_stop_price_itself_triggers(
    venue: EngineHarness, order_type: str, side: str
) -> None:
    v = await open_venue(venue)
    stop, price = CASES[(order_type, side)]
    rising = Decimal(stop) > Decimal(LAST)
    # liquidity a triggered order can take, on the side it needs
    await v.mm.order(SYM, "sell", "limit", "1", ASK)
    await v.mm.order(SYM, "buy", "limit", "1", BID)
    new = await v.owner.order(SYM, side, order_type, "0.1", price, stop_price=stop)
    assert new["exec_type"] == "new" and new["order_status"] == "new", new
    assert new["stop_price"] == stop and new["order_type"] == order_type
    oid = new["order_id"]
    before = await v.book()

    short = str(Decimal(stop) - TICK if rising else Decimal(stop) + TICK)
    await (v.print_trade(short) if rising else v.print_trade_down(short))
    # not triggered: still waiting with its whole quantity, the visible book untouched
    st = await v.status(oid)
    assert (st["order_status"], st["leaves_qty"], st["cum_qty"]) == ("new", "0.10000", "0.00000")
    now = await v.book()
    assert (now["bids"], now["asks"]) == (before["bids"], before["asks"])
    assert [r["exec_type"] for r in v.owner.reports(oid)] == ["new", "order_status"]

    await (v.print_trade(stop) if rising else v.print_trade_down(stop))
    trig = await v.owner.recv("execution_report", order_id=oid, exec_type="triggered")
    assert trig["trigger_price"] == stop
    fill = await v.owner.recv("execution_report", order_id=oid, exec_type="trade")
    assert fill["order_status"] == "filled" and fill["liquidity"] == "taker"
    assert fill["last_price"] == (ASK if side == "buy" else BID)
    # the book lost exactly the 0.1 the triggered order took from the opposite side
    after = await v.book()
    taken_side = "asks" if side == "buy" else "bids"
    assert after[taken_side][0] == [ASK if side == "buy" else BID, "0.90000"]


async def test_untriggered_orders_stay_out_of_the_visible_book(venue: EngineHarness, mode: str) -> None:
    v = await open_venue(venue, mode)
    empty = await v.book()
    for (order_type, side), (stop, price) in CASES.items():
        rep = await v.owner.order(SYM, side, order_type, "0.1", price, stop_price=stop)
        assert rep["exec_type"] == "new", rep
    book = await v.book()
    assert (book["bids"], book["asks"]) == (empty["bids"], empty["asks"]) == ([], [])
    assert len(await v.owner.open_orders(SYM)) == len(CASES)


async def test_cascade_across_several_levels_in_trigger_order(venue: EngineHarness, mode: str) -> None:
    v = await open_venue(venue, mode)
    feed = await venue.logged_on("carol", mode)
    await feed.send({"type": "subscribe", "symbol": SYM, "channels": ["trades"], "request_id": "s"})
    await feed.recv("subscribed", request_id="s", check=False)
    # bids the falling cascade walks through
    for price, qty in (("29995.00", "0.1"), ("29985.00", "0.1"), ("29975.00", "0.1"), ("29900.00", "1")):
        await v.mm.order(SYM, "buy", "limit", qty, price)
    s1 = await v.owner.order(SYM, "sell", "stop_loss", "0.1", stop_price="29995.00")
    s3 = await v.owner.order(SYM, "sell", "stop_loss", "0.1", stop_price="29975.00")
    s2 = await v.owner.order(SYM, "sell", "stop_limit", "0.1", "29900.00", stop_price="29985.00")
    far = await v.owner.order(SYM, "sell", "stop_loss", "0.1", stop_price="29800.00")
    rising = await v.owner.order(SYM, "buy", "stop_loss", "0.1", stop_price="30100.00")
    ids = [s1["order_id"], s2["order_id"], s3["order_id"]]

    # one taker sell at 29995 starts it: s1 takes 29985, which triggers s2 (29985), which takes
    # 29975, which triggers s3, which takes 29900
    take = await v.taker.order(SYM, "sell", "limit", "0.1", "29995.00")
    first = await v.taker.recv("execution_report", order_id=take["order_id"], order_status="filled")
    for oid in ids:
        await v.owner.recv("execution_report", order_id=oid, order_status="filled")
    triggered = [r["order_id"] for r in v.owner.reports() if r["exec_type"] == "triggered"]
    assert triggered == ids
    trig_prices = [r["trigger_price"] for r in v.owner.reports() if r["exec_type"] == "triggered"]
    assert trig_prices == ["29995.00", "29985.00", "29975.00"]
    fills = [r["last_price"] for oid in ids for r in v.owner.reports(oid) if r["exec_type"] == "trade"]
    assert fills == ["29985.00", "29975.00", "29900.00"]
    # the public tape shows the cascade in order, seq +1 each
    prints = [await feed.recv("trade", pred=lambda m: m["trade_id"] >= first["trade_id"]) for _ in range(4)]
    assert [p["price"] for p in prints] == ["29995.00", "29985.00", "29975.00", "29900.00"]
    assert [p["seq"] - prints[0]["seq"] for p in prints] == [0, 1, 2, 3]
    # orders whose condition was not met still wait
    for other in (far, rising):
        assert (await v.status(other["order_id"]))["order_status"] == "new"
    book = await v.book()
    assert book["bids"] == [["29900.00", "0.90000"]]


async def test_cancel_of_an_untriggered_order_releases_its_funds(venue: EngineHarness, mode: str) -> None:
    v = await open_venue(venue, mode)
    base = await v.owner.balances()
    sell = await v.owner.order(SYM, "sell", "stop_loss", "0.5", stop_price="29000.00")
    buy = await v.owner.order(SYM, "buy", "stop_limit", "0.2", "31000.00", stop_price="30500.00")
    held = await v.owner.balances()
    assert held["BTC"]["reserved"] - base["BTC"]["reserved"] == Decimal("0.5")
    # qty x limit price plus the worst-case taker fee (2 bps)
    assert held["USDT"]["reserved"] - base["USDT"]["reserved"] == Decimal("6200") * Decimal("1.0002")
    assert held["BTC"]["total"] == base["BTC"]["total"]
    for rep in (sell, buy):
        await v.owner.send({"type": "cancel", "symbol": SYM, "order_id": rep["order_id"]})
        can = await v.owner.recv("execution_report", order_id=rep["order_id"], exec_type="canceled")
        assert can["order_status"] == "canceled"
    assert await v.owner.balances() == base
    # the price now passes both stop prices: nothing fires
    await v.print_trade_down("29000.00")
    await v.print_trade("30500.00")
    await v.owner.sync()
    assert not [r for r in v.owner.reports() if r["exec_type"] == "triggered"]


async def test_replace_of_an_untriggered_order(venue: EngineHarness, mode: str) -> None:
    v = await open_venue(venue, mode)
    await v.mm.order(SYM, "buy", "limit", "1", BID)
    base = await v.owner.balances()
    rep = await v.owner.order(SYM, "sell", "stop_limit", "0.3", "29940.00", stop_price="29990.00")
    oid = rep["order_id"]
    # move the trigger further away and shrink it
    await v.owner.send(
        {"type": "replace", "symbol": SYM, "order_id": oid, "stop_price": "29970.00", "quantity": "0.2"}
    )
    done = await v.owner.recv("execution_report", order_id=oid, exec_type="replaced")
    assert (done["stop_price"], done["quantity"], done["order_status"]) == ("29970.00", "0.20000", "new")
    assert (await v.owner.balances())["BTC"]["reserved"] - base["BTC"]["reserved"] == Decimal("0.2")
    # a stop price the last price already meets is refused, the order unchanged
    await v.owner.send(
        {"type": "replace", "symbol": SYM, "order_id": oid, "stop_price": "30000.00", "request_id": "bad"}
    )
    rej = await v.owner.recv("cancel_reject", request_id="bad")
    assert rej["reason"] == "would_trigger_immediately"
    # the old stop price no longer triggers it; the new one does
    await v.print_trade_down("29990.00")
    st = await v.status(oid)
    assert (st["order_status"], st["stop_price"], st["leaves_qty"]) == ("new", "29970.00", "0.20000")
    await v.print_trade_down("29970.00")
    trig = await v.owner.recv("execution_report", order_id=oid, exec_type="triggered")
    assert trig["trigger_price"] == "29970.00"
    fill = await v.owner.recv("execution_report", order_id=oid, exec_type="trade")
    assert (fill["last_price"], fill["last_qty"], fill["order_status"]) == (BID, "0.20000", "filled")


async def test_triggered_fill_settles_the_reservation(venue: EngineHarness) -> None:
    v = await open_venue(venue)
    await v.mm.order(SYM, "sell", "limit", "1", ASK)
    base = await v.owner.balances()
    rep = await v.owner.order(SYM, "buy", "stop_limit", "0.1", "30060.00", stop_price="30010.00")
    await v.print_trade("30010.00")
    await v.owner.recv("execution_report", order_id=rep["order_id"], order_status="filled")
    after = await v.owner.balances()
    cost = Decimal("0.1") * Decimal(ASK)
    fee = cost * Decimal("0.0002")
    assert after["USDT"]["reserved"] == base["USDT"]["reserved"]
    assert after["USDT"]["total"] == base["USDT"]["total"] - cost - fee
    assert after["BTC"]["total"] == base["BTC"]["total"] + Decimal("0.1")


async def test_untriggered_orders_survive_a_restart(harness: EngineHarness, tmp_path: Path) -> None:
    data = tmp_path / "restart"
    await harness.start(fsync="batch", data_dir=data)
    v = await open_venue(harness)
    await v.mm.order(SYM, "buy", "limit", "1", BID)
    base_reserved = (await v.owner.balances())["BTC"]["reserved"]
    rep = await v.owner.order(SYM, "sell", "stop_loss", "0.1", stop_price="29990.00")
    oid = rep["order_id"]
    await harness.close_all()
    await harness.stop()

    await harness.start(fsync="batch", data_dir=data)
    v = Venue(await harness.logged_on("alice"), await harness.logged_on("mm"), await harness.logged_on("bob"))
    st = await v.status(oid)
    assert (st["order_status"], st["order_type"], st["stop_price"]) == ("new", "stop_loss", "29990.00")
    assert [o["order_id"] for o in await v.owner.open_orders(SYM)] == [oid]
    assert (await v.owner.balances())["BTC"]["reserved"] - base_reserved == Decimal("0.1")
    # the last trade price survived too: a stop already reached is refused, and the waiting one
    # fires exactly at its stop price
    bad = await v.owner.order(SYM, "sell", "stop_loss", "0.1", stop_price="30000.00")
    assert bad["reject_reason"] == "would_trigger_immediately"
    await v.print_trade_down("29990.00")
    await v.owner.recv("execution_report", order_id=oid, exec_type="triggered")
    fill = await v.owner.recv("execution_report", order_id=oid, exec_type="trade")
    assert fill["order_status"] == "filled" and fill["last_price"] == BID
