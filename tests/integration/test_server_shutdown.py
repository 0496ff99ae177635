"""Shutdown and restart: engine.stop() with open sessions completes; a restarted engine on the same
data dir (fsync="batch") still has the resting orders and the balances."""

from __future__ import annotations

import asyncio
import errno
import time
from decimal import ROUND_DOWN, Decimal
from typing import Any

from tests.integration.conftest import Client, EngineHarness, with_server
from tradingapp.config import load_config
from tradingapp.storage import FileOps

SYM = "BTC-USDT"


async def snapshot_state(c: Client, order_ids: list[tuple[str, int]]) -> dict[str, Any]:
    statuses = {}
    for symbol, oid in order_ids:
        st = await c.request(
            {"type": "order_status", "symbol": symbol, "order_id": oid}, "execution_report", check=False
        )
        statuses[oid] = {
            k: st[k]
            for k in ("order_status", "quantity", "cum_qty", "leaves_qty", "price", "client_order_id")
        }
    return {"balances": await c.balances(), "orders": await c.open_orders(), "statuses": statuses}


async def test_stop_with_open_sessions_then_restart_keeps_orders_and_balances(harness: EngineHarness) -> None:
    await harness.start(fsync="batch")
    alice = await harness.logged_on("alice")
    bob = await harness.logged_on("bob", "json")
    ids: list[tuple[str, int]] = []
    for symbol, side, qty, price in (
        ("BTC-USDT", "sell", "0.5", "30000"),
        ("BTC-USDT", "buy", "0.25", "29000"),
        ("ETH-USDT", "sell", "2", "2000"),
        ("SOL-USDT", "buy", "10", "100.5"),
    ):
        ids.append((symbol, (await alice.order(symbol, side, "limit", qty, price))["order_id"]))
    stop = await alice.order(SYM, "sell", "stop_loss", "0.1", stop_price="28000")
    ids.append((SYM, stop["order_id"]))
    done = await alice.order(SYM, "buy", "limit", "0.1", "28500")
    await alice.send({"type": "cancel", "order_id": done["order_id"]})
    await alice.recv("execution_report", order_id=done["order_id"], exec_type="canceled")
    # a partial fill
    t = await bob.order(SYM, "buy", "limit", "0.2", "30000")
    last = await bob.recv("execution_report", order_id=t["order_id"], exec_type="trade")
    await alice.recv("execution_report", order_id=ids[0][1], exec_type="trade")
    before_alice = await snapshot_state(alice, ids)
    before_bob = await bob.balances()
    assert before_alice["statuses"][ids[0][1]]["order_status"] == "partially_filled"
    # more open sessions of every kind: a subscriber, a half-sent frame, an idle connection
    sub = await harness.client()
    await sub.send(
        {"type": "subscribe", "symbol": SYM, "channels": ["bbo", "depth", "trades"], "request_id": "s"}
    )
    await sub.recv("subscribed", request_id="s", check=False)
    half = await harness.client()
    await half.send_raw(b"\x00\x00\x00\x40\x81")
    idle = await harness.client("json")
    t0 = time.monotonic()
    await harness.stop()
    assert time.monotonic() - t0 < 10
    for c in (alice, bob, sub, half, idle):
        await c.wait_closed(timeout=5)
    await harness.close_all()

    await harness.start(fsync="batch")
    alice2 = await harness.logged_on("alice", "json")
    bob2 = await harness.logged_on("bob")
    after_alice = await snapshot_state(alice2, ids)
    assert after_alice == before_alice
    assert await bob2.balances() == before_bob
    # done orders are still answerable, and new work continues the id sequences
    st = await alice2.request(
        {"type": "order_status", "symbol": SYM, "order_id": done["order_id"]}, "execution_report", check=False
    )
    assert st["order_status"] == "canceled"
    t2 = await bob2.order(SYM, "buy", "limit", "0.3", "30000")
    assert t2["order_id"] > max(oid for _, oid in ids)
    fill = await bob2.recv("execution_report", order_id=t2["order_id"], exec_type="trade")
    assert fill["trade_id"] > last["trade_id"]
    assert fill["order_status"] == "filled"
    end = await alice2.recv("execution_report", order_id=ids[0][1], exec_type="trade")
    assert end["order_status"] == "filled" and end["cum_qty"] == "0.50000"


async def test_every_acknowledged_order_survives_a_stop_during_a_burst(harness: EngineHarness) -> None:
    await harness.start(fsync="batch")
    c = await harness.logged_on("load4")
    for i in range(500):
        await c.send(
            {
                "type": "new_order",
                "client_order_id": f"b{i}",
                "symbol": "ETH-USDT",
                "side": "buy",
                "order_type": "limit",
                "quantity": "0.01",
                "price": str(1000 + i % 100),
            }
        )
    await c.recv("execution_report", client_order_id="b10", exec_type="new")  # some are in
    await harness.stop()
    await c.wait_closed(timeout=10)
    acked = {m["order_id"] for m in c.received if m.get("exec_type") == "new"}
    assert len(acked) >= 11
    await harness.close_all()
    await harness.start(fsync="batch")
    c2 = await harness.logged_on("load4")
    open_ids = {o["order_id"] for o in await c2.open_orders("ETH-USDT")}
    assert acked <= open_ids, sorted(acked - open_ids)[:10]
    # reservations match what is open: per order, notional + its fee at the worst rate (2 bps)
    bal = await c2.balances()
    need = Decimal(0)
    for o in await c2.open_orders():
        notional = Decimal(o["price"]) * Decimal(o["leaves_qty"])
        need += notional + (notional * 2 / 10000).quantize(Decimal("0.0000001"), rounding=ROUND_DOWN)
    assert bal["USDT"]["reserved"] == need


async def test_stop_is_idempotent_and_prompt_with_many_idle_connections(harness: EngineHarness) -> None:
    await harness.start()
    clients = [await harness.client("json" if i % 2 else "binary") for i in range(50)]
    for c in clients[:10]:
        await c.logon("alice")
    assert harness.engine is not None
    engine = harness.engine
    t0 = time.monotonic()
    await asyncio.gather(engine.stop(), engine.stop())
    assert time.monotonic() - t0 < 10
    for c in clients:
        await c.wait_closed(timeout=5)


async def test_stop_answers_every_request_a_backpressured_session_had_read(harness: EngineHarness) -> None:
    """With a tiny mailbox, one write of 300 orders leaves most of them read but waiting in the
    session for room when the stop begins. The stop must hand them on and answer each one (new or
    rejected) before it closes the connection: none is dropped silently."""
    config = with_server(load_config(), mailbox_size=2)
    await harness.start(config, fsync="batch")
    c = await harness.logged_on("load5")
    frames = b"".join(
        c.encode(
            {
                "type": "new_order",
                "client_order_id": f"p{i}",
                "symbol": "ETH-USDT",
                "side": "buy",
                "order_type": "limit",
                "quantity": "0.01",
                "price": str(1000 + i % 50),
            }
        )
        for i in range(300)
    )
    await c.send_raw(frames)
    await c.recv("execution_report", client_order_id="p0", exec_type="new")
    await harness.stop()
    await c.wait_closed(timeout=10)
    answered = {m["client_order_id"] for m in c.received if m.get("type") == "execution_report"}
    assert answered == {f"p{i}" for i in range(300)}


async def test_a_connection_accepted_once_stopping_began_is_closed_at_once(harness: EngineHarness) -> None:
    """Between the start of stop() and the listener closing, a connection can still be accepted;
    it is closed at once instead of becoming a session that stop() no longer sees."""
    engine = await harness.start()
    engine._stopping = True  # the window: stop() has begun, the listener still accepts
    try:
        late = await harness.client()
        await late.wait_closed(timeout=10)
        assert not engine.sessions
    finally:
        engine._stopping = False  # let the fixture's stop() run in full


class _FailingWrites(FileOps):
    """The disk turns bad: every journal write fails with EIO from now on."""

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        raise OSError(errno.EIO, "Input/output error")


async def test_a_failed_journal_write_stops_the_engine_and_acknowledges_nothing_more(
    harness: EngineHarness,
) -> None:
    """Fail-stop: once a journal write fails the engine stops (exit status 2) instead of carrying
    on; the order whose record could not be written is never acknowledged, and a restart on the
    same data dir has every acknowledged order and nothing else."""
    engine = await harness.start(fsync="batch")
    c = await harness.logged_on("alice")
    kept = await c.order(SYM, "buy", "limit", "0.1", "29000", client_order_id="kept")
    engine.store.journal._fs = _FailingWrites()

    await c.send(
        {
            "type": "new_order",
            "client_order_id": "lost",
            "symbol": SYM,
            "side": "buy",
            "order_type": "limit",
            "quantity": "0.1",
            "price": "29001",
        }
    )
    await asyncio.wait_for(engine.stopped.wait(), 30)
    await c.wait_closed(timeout=10)

    assert 2 == engine.exit_code
    assert not [m for m in c.received if m.get("client_order_id") == "lost"]
    await harness.close_all()
    harness.engine = None
    await harness.start(fsync="batch")
    again = await harness.logged_on("alice")
    assert [kept["order_id"]] == [o["order_id"] for o in await again.open_orders()]
