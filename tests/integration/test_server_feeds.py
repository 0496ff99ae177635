"""Market data over real sockets: subscribe → snapshot of each channel → updates; trade seq +1 per
symbol; bbo/depth seq increasing; depth best first and at most the subscribed levels; book
queries; unsubscribe."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from itertools import pairwise
from typing import Any

import pytest

from tests.integration.conftest import Client, EngineHarness, check_shape, eventually

SYM = "BTC-USDT"


async def subscribe(
    c: Client, symbol: str = SYM, channels: list[str] | None = None, depth: int | None = None
) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "type": "subscribe",
        "symbol": symbol,
        "channels": channels or ["bbo", "depth", "trades"],
    }
    if depth is not None:
        msg["depth"] = depth
    rid = c.next_cid("sub")
    await c.send({**msg, "request_id": rid})
    # the ack's shape is checked by test_subscribed_ack_shape; here we need its content
    return await c.recv("subscribed", request_id=rid, check=False)


def check_levels(depth: dict[str, Any], levels: int) -> None:
    bids = [Decimal(p) for p, _ in depth["bids"]]
    asks = [Decimal(p) for p, _ in depth["asks"]]
    assert bids == sorted(bids, reverse=True), depth
    assert asks == sorted(asks), depth
    assert len(bids) == len(set(bids)) and len(asks) == len(set(asks))
    assert len(bids) <= levels and len(asks) <= levels, depth
    assert all(Decimal(q) > 0 for _, q in depth["bids"] + depth["asks"])
    if bids and asks:
        assert bids[0] < asks[0], depth


async def test_subscribe_snapshot_then_updates(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    for i in range(8):
        await mm.order(SYM, "buy", "limit", "0.1", str(29990 - i))
        await mm.order(SYM, "sell", "limit", "0.2", str(30010 + i))
    sub = await venue.client(mode)
    ack = await subscribe(sub, depth=5)
    assert ack["channels"] == ["bbo", "depth", "trades"] and ack["depth"] == 5
    bbo = await sub.recv("bbo")
    assert (bbo["bid_price"], bbo["bid_quantity"], bbo["ask_price"], bbo["ask_quantity"]) == (
        "29990.00",
        "0.10000",
        "30010.00",
        "0.20000",
    )
    depth = await sub.recv("depth")
    check_levels(depth, 5)
    assert depth["bids"] == [[f"{29990 - i}.00", "0.10000"] for i in range(5)]
    assert depth["asks"] == [[f"{30010 + i}.00", "0.20000"] for i in range(5)]
    assert "request_id" not in depth
    # updates follow, with seq greater than the snapshot's
    await mm.order(SYM, "buy", "limit", "0.3", "29995")
    bbo2 = await sub.recv("bbo")
    assert bbo2["seq"] > bbo["seq"]
    assert (bbo2["bid_price"], bbo2["bid_quantity"]) == ("29995.00", "0.30000")
    depth2 = await sub.recv("depth")
    assert depth2["seq"] > depth["seq"]
    check_levels(depth2, 5)
    assert depth2["bids"][0] == ["29995.00", "0.30000"]
    assert depth2["bids"][1:] == depth["bids"][:4]


async def test_trade_feed_seq_contiguous_and_fields(venue: EngineHarness, mode: str) -> None:
    sub = await venue.client(mode)
    await subscribe(sub, channels=["trades"])
    other = await venue.client(mode)
    await subscribe(other, symbol="ETH-USDT", channels=["trades"])
    mm = await venue.logged_on("mm", mode)
    taker = await venue.logged_on("alice", mode)
    rng = random.Random(7)
    expected = 0
    maker_ids = {}
    for _ in range(30):
        n = rng.randint(1, 3)
        for j in range(n):
            r = await mm.order(SYM, "sell", "limit", "0.01", str(30000 + j))
            maker_ids[r["order_id"]] = 30000 + j
        t = await taker.order(SYM, "buy", "limit", f"{0.01 * n:.2f}", str(30000 + n))
        expected += n
        await taker.recv("execution_report", order_id=t["order_id"], exec_type="trade", order_status="filled")
    trades = [await sub.recv("trade", timeout=10) for _ in range(expected)]
    assert [t["seq"] for t in trades] == list(range(1, expected + 1))
    ids = [t["trade_id"] for t in trades]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    for t in trades:
        assert t["symbol"] == SYM and t["aggressor_side"] == "buy"
        assert t["maker_order_id"] in maker_ids
        assert t["fee_asset"] == "USDT"
        notional = Decimal(t["price"]) * Decimal(t["quantity"])
        assert Decimal(t["maker_fee"]) == notional * Decimal("-0.5") / 10000  # mm's rebate
        assert Decimal(t["taker_fee"]) == notional * 2 / 10000
        assert Decimal(t["price"]) == maker_ids[t["maker_order_id"]]
    # nothing for another symbol's subscriber
    await other.sync()
    assert not [m for m in other.received if m["type"] == "trade"]


async def test_trade_seq_is_per_symbol(venue: EngineHarness) -> None:
    sub = await venue.client()
    await subscribe(sub, SYM, ["trades"])
    await subscribe(sub, "ETH-USDT", ["trades"])
    mm = await venue.logged_on("mm")
    t = await venue.logged_on("bob")
    for symbol, price, qty in (
        ("BTC-USDT", "30000", "0.01"),
        ("ETH-USDT", "2000", "0.1"),
        ("ETH-USDT", "2000", "0.1"),
        ("BTC-USDT", "30000", "0.01"),
    ):
        await mm.order(symbol, "sell", "limit", qty, price)
        o = await t.order(symbol, "buy", "limit", qty, price)
        await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    got = [await sub.recv("trade") for _ in range(4)]
    by_symbol: dict[str, list[int]] = {}
    for m in got:
        by_symbol.setdefault(m["symbol"], []).append(m["seq"])
    assert by_symbol == {"BTC-USDT": [1, 2], "ETH-USDT": [1, 2]}
    assert [m["trade_id"] for m in got] == [1, 2, 3, 4]  # venue-wide ids


async def test_bbo_and_depth_seq_increase_and_depth_respects_levels(venue: EngineHarness, mode: str) -> None:
    sub1 = await venue.client(mode)
    sub3 = await venue.client(mode)
    mm = await venue.logged_on("mm", mode)
    await mm.order(SYM, "buy", "limit", "0.01", "29000")  # (fresh-engine snapshots: separate test)
    # the deeper subscription first (see test_new_deeper_subscriber_does_not_repeat_depth_seq)
    await subscribe(sub3, channels=["bbo", "depth"], depth=3)
    await sub3.recv("depth")
    await subscribe(sub1, channels=["depth"], depth=1)
    await sub1.recv("depth")
    taker = await venue.logged_on("alice", mode)
    rng = random.Random(11)
    for _ in range(40):
        side = rng.choice(["buy", "sell"])
        price = 30000 + (rng.randint(-20, -1) if side == "buy" else rng.randint(1, 20))
        await mm.order(SYM, side, "limit", "0.01", str(price))
    for _ in range(5):
        t = await taker.order(SYM, "buy", "limit", "0.02", "30020")
        await taker.recv("execution_report", order_id=t["order_id"], exec_type="trade")
    await mm.send({"type": "cancel_all", "symbol": SYM})
    await eventually(
        lambda: any(m["type"] == "depth" and not m["bids"] and not m["asks"] for m in sub3.received[2:]), 10
    )
    await eventually(
        lambda: any(m["type"] == "depth" and not m["bids"] and not m["asks"] for m in sub1.received[2:]), 10
    )
    for sub, levels in ((sub1, 1), (sub3, 3)):
        for kind in ["depth"] if levels == 1 else ["bbo", "depth"]:
            msgs = [m for m in sub.received if m["type"] == kind]
            assert len(msgs) > 5
            for m in msgs:
                check_shape(m)
                if kind == "depth":
                    check_levels(m, levels)
            seqs = [m["seq"] for m in msgs]
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), (kind, seqs)
    # the last bbo says the book is empty
    last_bbo = [m for m in sub3.received if m["type"] == "bbo"][-1]
    assert last_bbo["bid_price"] is None and last_bbo["ask_price"] is None
    assert last_bbo["bid_quantity"] is None and last_bbo["ask_quantity"] is None


async def test_bbo_seq_grows_by_one_per_message(venue: EngineHarness, mode: str) -> None:
    """docs/protocol.md: bbo/depth/trade carry a seq 'per symbol and channel, +1 per message; a gap
    means data was lost'. A bbo subscriber that lost nothing must see no gap."""
    mm = await venue.logged_on("mm", mode)
    await mm.order(SYM, "sell", "limit", "0.1", "30100")
    sub = await venue.client(mode)
    await subscribe(sub, channels=["bbo"])
    first = await sub.recv("bbo")
    await mm.order(SYM, "buy", "limit", "0.1", "29990")  # bbo changes
    await mm.order(SYM, "buy", "limit", "0.1", "29980")  # deeper level: bbo unchanged
    await mm.order(SYM, "buy", "limit", "0.1", "29970")  # deeper level: bbo unchanged
    await mm.order(SYM, "buy", "limit", "0.1", "29995")  # bbo changes
    await eventually(lambda: any(m["type"] == "bbo" and m["bid_price"] == "29995.00" for m in sub.received))
    bbos = [first, *sub.take_all("bbo")]
    seqs = [m["seq"] for m in bbos]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def order_and_cancel_in_one_write(c: Client, price: str) -> None:
    """A buy and its cancel in one write, so the book usually handles them in one batch."""
    cid = c.next_cid("in-out")
    order = {"type": "new_order", "client_order_id": cid, "symbol": SYM, "side": "buy"}
    order |= {"order_type": "limit", "quantity": "0.1", "price": price}
    cancel = {"type": "cancel", "symbol": SYM, "orig_client_order_id": cid}
    await c.send_raw(c.encode(order) + c.encode(cancel))
    await c.recv("execution_report", client_order_id=cid, exec_type="canceled")


async def test_no_bbo_or_depth_message_when_a_batch_leaves_the_book_as_it_was(
    venue: EngineHarness, mode: str
) -> None:
    """docs/protocol.md: a `bbo` is sent only when the best bid or offer changed, a `depth` when
    the visible book changed. An order and its cancel sent in one write are usually handled in
    one batch, whose book ends as it began: no message may repeat the previous picture."""
    sub = await venue.client(mode)
    await subscribe(sub, channels=["bbo", "depth"], depth=5)
    alice = await venue.logged_on("alice", mode)
    await alice.order(SYM, "buy", "limit", "0.1", "29000")
    for _ in range(10):
        await order_and_cancel_in_one_write(alice, "29500")
    await alice.order(SYM, "sell", "limit", "0.1", "31000")  # a real change ends the stream
    await sub.recv("bbo", ask_price="31000.00")
    await sub.recv("depth", pred=lambda m: m["asks"] == [["31000.00", "0.10000"]])
    for kind, picture in (
        ("bbo", lambda m: (m["bid_price"], m["bid_quantity"], m["ask_price"], m["ask_quantity"])),
        ("depth", lambda m: (m["bids"], m["asks"])),
    ):
        msgs = [m for m in sub.received if m["type"] == kind]
        repeats = [(a["seq"], b["seq"]) for a, b in pairwise(msgs) if picture(a) == picture(b)]
        assert not repeats, f"{kind} messages repeating the previous picture: {repeats}"
        seqs = [m["seq"] for m in msgs]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs


async def test_seqs_continue_exactly_after_a_clean_restart_following_a_silent_batch(
    harness: EngineHarness,
) -> None:
    """docs/protocol.md, Restarts: after a clean stop the seqs continue exactly, also when the
    last batches changed the book and back (so they published nothing)."""
    await harness.start()
    sub = await harness.client()
    await subscribe(sub, channels=["bbo", "depth"], depth=5)
    alice = await harness.logged_on("alice")
    await alice.order(SYM, "buy", "limit", "0.1", "29000")
    for _ in range(5):
        await order_and_cancel_in_one_write(alice, "29500")
    before = await harness.client()  # its snapshots carry the latest seqs
    await subscribe(before, channels=["bbo", "depth"], depth=5)
    last_bbo, last_depth = await before.recv("bbo"), await before.recv("depth")
    await harness.close_all()
    await harness.stop()
    await harness.start()
    after = await harness.client()
    await subscribe(after, channels=["bbo", "depth"], depth=5)
    assert (await after.recv("bbo"))["seq"] == last_bbo["seq"]
    assert (await after.recv("depth"))["seq"] == last_depth["seq"]


async def test_snapshot_on_fresh_engine_is_well_formed(venue: EngineHarness, mode: str) -> None:
    """A subscription before any order: the empty-book snapshots are valid messages (seq >= 1)."""
    sub = await venue.client(mode)
    await subscribe(sub, channels=["bbo", "depth"])
    bbo = await sub.recv("bbo", check=False)
    depth = await sub.recv("depth", check=False)
    assert bbo["bid_price"] is None and bbo["ask_price"] is None
    assert depth["bids"] == [] and depth["asks"] == []
    check_shape(bbo)
    check_shape(depth)


@pytest.mark.parametrize("channels", [["bbo"], ["depth"], ["bbo", "depth", "trades"]])
async def test_snapshot_on_fresh_engine_for_each_channel(venue: EngineHarness, channels: list[str]) -> None:
    """subscribe → 'subscribed, then one snapshot per book channel (bbo, depth)', also before
    anything has happened on the symbol."""
    sub = await venue.client()
    await subscribe(sub, channels=channels)
    for channel in ("bbo", "depth"):
        if channel in channels:
            snap = await sub.recv(channel, check=False)
            assert snap["symbol"] == SYM


async def test_new_deeper_subscriber_does_not_repeat_depth_seq(venue: EngineHarness, mode: str) -> None:
    """A depth subscriber's seq keeps increasing when someone else subscribes with more levels."""
    mm = await venue.logged_on("mm", mode)
    for i in range(3):
        await mm.order(SYM, "buy", "limit", "0.1", str(29990 - i))
    first = await venue.client(mode)
    await subscribe(first, channels=["depth"], depth=1)
    snap = await first.recv("depth")
    assert snap["bids"] == [["29990.00", "0.10000"]]
    second = await venue.client(mode)
    await subscribe(second, channels=["depth"], depth=5)
    assert len((await second.recv("depth"))["bids"]) == 3
    await mm.order(SYM, "buy", "limit", "0.1", "29995")
    await first.recv("depth", pred=lambda m: m["bids"][0][0] == "29995.00")
    seqs = [m["seq"] for m in first.received if m["type"] == "depth"]
    assert seqs == sorted(set(seqs)), f"depth seqs not strictly increasing: {seqs}"


async def test_subscribed_ack_shape(venue: EngineHarness, mode: str) -> None:
    sub = await venue.client(mode)
    await sub.send({"type": "subscribe", "symbol": SYM, "channels": ["trades"], "request_id": "s"})
    ack = await sub.recv("subscribed", request_id="s", check=False)
    assert ack["channels"] == ["trades"]
    check_shape(ack)


async def test_unsubscribe_all_ack_shape(venue: EngineHarness, mode: str) -> None:
    sub = await venue.client(mode)
    await subscribe(sub, channels=["bbo", "trades"])
    await sub.send({"type": "unsubscribe", "symbol": SYM, "request_id": "u"})
    ack = await sub.recv("unsubscribed", request_id="u", check=False)
    assert ack["symbol"] == SYM
    check_shape(ack)


async def test_unsubscribe_one_channel_stops_it(venue: EngineHarness, mode: str) -> None:
    sub = await venue.client(mode)
    await subscribe(sub, channels=["bbo", "trades"])
    await sub.send({"type": "unsubscribe", "symbol": SYM, "channels": ["trades"], "request_id": "u"})
    ack = await sub.recv("unsubscribed", request_id="u")
    assert ack["channels"] == ["trades"]
    mm = await venue.logged_on("mm", mode)
    t = await venue.logged_on("bob", mode)
    await mm.order(SYM, "sell", "limit", "0.2", "30000")
    o = await t.order(SYM, "buy", "limit", "0.1", "30000")
    await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    # the bbo after the trade shows 0.1 left; no trade message arrived
    await sub.recv("bbo", ask_quantity="0.10000")
    await sub.sync()
    assert not [m for m in sub.received if m["type"] == "trade"]


async def test_unsubscribe_right_after_subscribe_leaves_no_subscription(
    venue: EngineHarness, mode: str
) -> None:
    """subscribe immediately followed by unsubscribe (before the snapshot arrived): once
    'unsubscribed' is received, no market data of the symbol may follow."""
    sub = await venue.client(mode)
    await sub.send(
        {"type": "subscribe", "symbol": SYM, "channels": ["bbo", "depth", "trades"], "request_id": "s"}
    )
    await sub.send({"type": "unsubscribe", "symbol": SYM, "request_id": "u"})
    await sub.recv("unsubscribed", request_id="u", check=False)
    await sub.recv("subscribed", request_id="s", check=False, timeout=5)  # its ack may come late
    watcher = await venue.client(mode)
    await subscribe(watcher, channels=["trades"])
    mm = await venue.logged_on("mm", mode)
    t = await venue.logged_on("bob", mode)
    await mm.order(SYM, "sell", "limit", "0.1", "30000")
    o = await t.order(SYM, "buy", "limit", "0.1", "30000")
    await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    await watcher.recv("trade")
    await sub.sync()
    types = [m["type"] for m in sub.received]
    last_ack = max(i for i, kind in enumerate(types) if kind in ("subscribed", "unsubscribed"))
    assert types[last_ack] == "unsubscribed", types
    after = [
        m for m in sub.received[types.index("unsubscribed") + 1 :] if m["type"] in ("trade", "bbo", "depth")
    ]
    assert after == [], after


async def test_book_query_returns_depth_once(venue: EngineHarness, mode: str) -> None:
    mm = await venue.logged_on("mm", mode)
    for i in range(4):
        await mm.order(SYM, "buy", "limit", "0.1", str(29990 - i))
        await mm.order(SYM, "buy", "limit", "0.1", str(29990 - i))
    c = await venue.client(mode)
    await c.send({"type": "book", "symbol": SYM, "depth": 2, "request_id": "bk"})
    book = await c.recv("depth", request_id="bk")
    assert book["bids"] == [["29990.00", "0.20000"], ["29989.00", "0.20000"]]
    assert book["asks"] == []
    # default depth 10
    await c.send({"type": "book", "symbol": SYM, "request_id": "bk2"})
    book = await c.recv("depth", request_id="bk2")
    assert len(book["bids"]) == 4
    # a book query is not a subscription: later changes are not sent
    await mm.order(SYM, "buy", "limit", "0.1", "29999")
    await mm.sync()
    await c.sync()
    assert [m["type"] for m in c.received] == ["depth", "depth", "heartbeat"]


async def test_subscribe_errors(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.send({"type": "subscribe", "symbol": "DOGE-USDT", "channels": ["bbo"], "request_id": 1})
    rej = await c.recv("reject", request_id=1)
    assert (rej["reason"], rej["ref_type"]) == ("unknown_symbol", "subscribe")
    await c.send({"type": "subscribe", "symbol": SYM, "channels": ["bbo"], "depth": 51, "request_id": 2})
    rej = await c.recv("reject", request_id=2)
    assert rej["reason"] == "invalid_field" and rej["field"] == "depth"
    await c.send({"type": "subscribe", "symbol": SYM, "channels": ["candles"], "request_id": 3})
    rej = await c.recv("reject", request_id=3)
    assert rej["reason"] == "invalid_field" and rej["field"] == "channels"
    await c.send({"type": "subscribe", "symbol": SYM, "channels": [], "request_id": 4})
    assert (await c.recv("reject", request_id=4))["reason"] in ("invalid_field", "missing_field")
    await c.send({"type": "book", "symbol": "NOPE", "request_id": 5})
    rej = await c.recv("reject", request_id=5)
    assert (rej["reason"], rej["ref_type"]) == ("unknown_symbol", "book")  # the request it answers


async def test_trades_replayed_on_subscribe_and_updates_continue(venue: EngineHarness) -> None:
    mm = await venue.logged_on("mm")
    t = await venue.logged_on("bob")
    for _ in range(3):
        await mm.order(SYM, "sell", "limit", "0.01", "30000")
        o = await t.order(SYM, "buy", "limit", "0.01", "30000")
        await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    sub = await venue.client()
    ack = await subscribe(sub, channels=["trades"])
    assert ack  # (its extra fields are checked by test_subscribed_ack_shape)
    await mm.order(SYM, "sell", "limit", "0.01", "30000")
    o = await t.order(SYM, "buy", "limit", "0.01", "30000")
    await t.recv("execution_report", order_id=o["order_id"], exec_type="trade")
    await sub.recv("trade", seq=4)
    seqs = [m["seq"] for m in sub.received if m["type"] == "trade"]
    # whatever part of the history was replayed, the seqs seen are contiguous up to 4
    assert seqs == list(range(seqs[0], 5)), seqs


async def test_conflated_messages_say_how_many_they_replaced(venue: EngineHarness) -> None:
    """docs/protocol.md: a slow reader gets the latest bbo/depth marked with `conflated`, so that
    `seq == last + 1 + conflated` holds for every message it receives (gap vs conflation)."""
    assert venue.engine is not None
    engine = venue.engine
    slow = await Client.connect(venue.host, venue.port, "binary", rcvbuf=4096, read=False, limit=4096)
    venue.clients.append(slow)
    await slow.send({"type": "subscribe", "symbol": SYM, "channels": ["bbo", "depth"], "depth": 50})
    local = slow.writer.get_extra_info("sockname")
    session = await eventually(lambda: next((s for s in engine.sessions if s.peer == local), None))
    mm = await venue.logged_on("mm")

    async def order(i: int) -> None:
        # one at a time (each its own depth message), spread over 50 levels a side (big messages)
        level = i // 2 % 50
        side, price = ("buy", 29900 + level) if i % 2 else ("sell", 30001 + level)
        assert (await mm.order(SYM, side, "limit", "0.00001", str(price)))["exec_type"] == "new"

    sent = 0
    deadline = time.monotonic() + 30
    while not session._writing_paused and sent < 5000 and time.monotonic() < deadline:
        await order(sent)
        sent += 1
    assert session._writing_paused, f"the server never paused writing to the slow reader ({sent} orders)"
    for i in range(20):  # conflated: the reader is still not reading
        await order(sent + i)
    await mm.order(SYM, "buy", "limit", "0.00001", "29999")
    slow.start_reading()  # well within the write deadline
    await slow.recv("bbo", bid_price="29999.00", check=False, timeout=20)
    await slow.recv(
        "depth", pred=lambda m: m["bids"][:1] == [["29999.00", "0.00001"]], check=False, timeout=20
    )
    for kind in ("bbo", "depth"):
        msgs = [m for m in slow.received if m["type"] == kind]
        for m in msgs:
            check_shape(m)
        for previous, m in pairwise(msgs):
            assert m["seq"] == previous["seq"] + 1 + m.get("conflated", 0), (kind, previous["seq"], m["seq"])
    assert any("conflated" in m for m in slow.received if m["type"] == "depth")
