"""Backpressure and slow consumers (reliability plan C4): a client flooding orders without reading
does not starve others; a subscriber that never reads is cut off (slow_consumer) while a normal
subscriber gets every trade; the engine's per-session queues stay bounded."""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import struct
import time
from itertools import pairwise
from typing import Any

import msgpack
import pytest

from tests.integration.conftest import Client, EngineHarness, eventually
from tradingapp.actors import session as session_module

SYM = "BTC-USDT"


def frame(msg: dict[str, Any]) -> bytes:
    body = msgpack.packb(msg, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class QueueWatch:
    """Samples the engine's per-session outbound queues and actor mailboxes while a test runs."""

    def __init__(self, harness: EngineHarness) -> None:
        assert harness.engine is not None
        self.engine = harness.engine
        self.max_held = 0
        self.max_write_buffer = 0
        self.max_pending = 0
        self.max_mailbox = 0
        self.samples = 0
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        engine = self.engine
        while not self._stop.is_set():
            for s in list(engine.sessions):
                self.max_held = max(self.max_held, len(s._held))
                self.max_pending = max(self.max_pending, len(s._pending))
                if s.transport is not None and not s.transport.is_closing():
                    self.max_write_buffer = max(self.max_write_buffer, s.transport.get_write_buffer_size())
            actors = [engine.risk, engine.feed, *engine.books.values()]
            self.max_mailbox = max(self.max_mailbox, *(len(a.mailbox) for a in actors))
            self.samples += 1
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self._stop.set()
        await self._task


async def test_flooder_that_never_reads_does_not_starve_others(venue: EngineHarness) -> None:
    assert venue.engine is not None
    engine = venue.engine
    cfg = engine.config.server
    watch = QueueWatch(venue)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # the flooder: logs on, then writes 20k orders and never reads a reply
    # (a small fixed receive buffer: otherwise loopback autotuning, up to net.ipv4.tcp_rmem max,
    # could absorb every reply in the kernel and the server would never see a slow reader)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (venue.host, venue.port))
    _, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(frame({"type": "logon", "account": "load1", "api_key": "load1-key"}))
    batch = b"".join(
        frame(
            {
                "type": "new_order",
                "client_order_id": f"f{i}",
                "symbol": SYM,
                "side": "buy",
                "order_type": "limit",
                "quantity": "0.001",
                "price": str(20000 + i % 9000),
            }
        )
        for i in range(20_000)
    )

    async def flood() -> None:
        with contextlib.suppress(ConnectionError):
            for i in range(0, len(batch), 65536):
                writer.write(batch[i : i + 65536])
                await writer.drain()

    flooding = asyncio.get_running_loop().create_task(flood())
    # meanwhile, another client keeps getting acks quickly
    other = await venue.logged_on("alice")
    latencies = []
    t_end = time.monotonic() + 3
    n = 0
    while time.monotonic() < t_end or n < 20:
        t0 = time.monotonic()
        new = await other.order("ETH-USDT", "buy", "limit", "0.01", "1000", timeout=10)
        assert new["exec_type"] == "new"
        latencies.append(time.monotonic() - t0)
        n += 1
        if flooding.done() and n >= 20:
            break
    await asyncio.wait_for(flooding, 30)  # the flood ends: all written, or the flooder was cut off
    await watch.stop()
    print(
        f"flood: {n} acks to the other client, max latency {max(latencies):.3f}s, "
        f"max held {watch.max_held}, max write buffer {watch.max_write_buffer}, "
        f"max pending {watch.max_pending}, max mailbox {watch.max_mailbox}"
    )
    assert max(latencies) < 2.0, f"ack latency up to {max(latencies):.3f}s while flooded"
    assert watch.max_held <= cfg.subscriber_queue + 1, watch.max_held
    assert watch.max_write_buffer <= 8 << 20, watch.max_write_buffer
    assert watch.max_pending <= 5_000, watch.max_pending
    assert watch.max_mailbox <= 4 * cfg.mailbox_size, watch.max_mailbox
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert rss_growth_kib < 300 * 1024, f"RSS peak grew by {rss_growth_kib} KiB"
    # every order of the flood reached the engine: 10,000 rest (the per-account maximum), the
    # rest were refused; none was lost while reading was paused for backpressure
    c = await venue.logged_on("load1")
    await eventually(lambda: _open_count(c, 10_000), 20)
    # the flooder, whose replies pile up unread, is cut off once writing to it stays paused past
    # the write deadline (5 s)
    flooder = next(s for s in engine.sessions if s.peer == writer.get_extra_info("sockname"))
    await eventually(lambda: flooder not in engine.sessions, 10, what="flooder not cut off")
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    # the engine is consistent afterwards: the flooder's account can be queried and canceled
    bal = await c.balances()
    assert bal["USDT"]["available"] >= 0
    await c.send({"type": "cancel_all"})
    await eventually(lambda: _no_orders(c), 20)


async def _open_count(c: Client, n: int) -> bool:
    orders = await c.open_orders()
    assert len(orders) <= n
    return len(orders) == n


async def _no_orders(c: Client) -> bool:
    return await c.open_orders() == []


async def _burst(mm: Client, taker: Client, makers: int) -> int:
    """``makers`` resting sells of one lot each, swept by one market buy; returns the trades."""
    cids = []
    for i in range(makers):
        cid = mm.next_cid("mk")
        cids.append(cid)
        await mm.send(
            {
                "type": "new_order",
                "client_order_id": cid,
                "symbol": SYM,
                "side": "sell",
                "order_type": "limit",
                "quantity": "0.00001",
                "price": str(30000 + i % 50),
            }
        )
    for cid in cids:
        await mm.recv("execution_report", client_order_id=cid, exec_type="new", timeout=10)
    t = await taker.order(SYM, "buy", "market", f"{makers * 0.00001:.5f}")
    await taker.recv(
        "execution_report", order_id=t["order_id"], order_status="filled", exec_type="trade", timeout=10
    )
    mm.inbox.clear()
    taker.inbox.clear()
    return makers


async def test_stalled_subscriber_is_cut_off_normal_subscriber_gets_everything(venue: EngineHarness) -> None:
    assert venue.engine is not None
    engine = venue.engine
    cfg = engine.config.server
    watch = QueueWatch(venue)
    normal = await venue.client()
    await normal.send({"type": "subscribe", "symbol": SYM, "channels": ["trades", "bbo"], "request_id": "n"})
    await normal.recv("subscribed", request_id="n", check=False)
    # the stalled subscriber: a plain socket with a tiny receive buffer that is never read
    stalled = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.setblocking(False)
    await asyncio.get_running_loop().sock_connect(stalled, (venue.host, venue.port))
    await asyncio.get_running_loop().sock_sendall(
        stalled,
        b'{"type": "subscribe", "symbol": "BTC-USDT", "channels": ["bbo", "depth", "trades"], "depth": 50}\n',
    )
    local = stalled.getsockname()
    session = await eventually(lambda: next((s for s in engine.sessions if s.peer == local), None))
    await eventually(lambda: session.received == 1)
    mm = await venue.logged_on("mm")
    taker = await venue.logged_on("load2")
    trades = 0
    t0 = time.monotonic()
    while session in engine.sessions and time.monotonic() - t0 < 20:
        trades += await _burst(mm, taker, 200)
    cut_after = time.monotonic() - t0
    print(f"stalled subscriber cut after {cut_after:.2f}s, {trades} trades")
    assert session not in engine.sessions, (
        f"stalled subscriber still connected after {cut_after:.1f}s and {trades} trades"
    )
    assert session.closed
    assert cut_after < 15, cut_after
    # a few more trades after the cut: everyone else goes on
    trades += await _burst(mm, taker, 50)
    await normal.recv("trade", seq=trades, timeout=20)
    got = [m["seq"] for m in normal.received if m["type"] == "trade"]
    assert got == list(range(1, trades + 1)), (len(got), trades)
    await watch.stop()
    assert watch.max_held <= cfg.subscriber_queue + 1, watch.max_held
    assert watch.max_write_buffer <= 8 << 20, watch.max_write_buffer
    # the stalled client finds its connection reset (or closed) once it reads
    stalled.setblocking(True)
    stalled.settimeout(10)
    with contextlib.suppress(ConnectionError):
        while stalled.recv(1 << 20):
            pass
    stalled.close()


async def test_slow_reader_gets_conflated_bbo_but_latest_value(venue: EngineHarness) -> None:
    """A reader that stalls for a moment then resumes: bbo/depth may be conflated, but the last
    bbo it sees is the current one and trades arrive without gaps."""
    slow = await Client.connect(venue.host, venue.port, "binary", rcvbuf=4096, read=False, limit=4096)
    venue.clients.append(slow)
    slow.writer.write(
        frame({"type": "subscribe", "symbol": SYM, "channels": ["bbo", "trades"], "request_id": "s"})
    )
    await slow.writer.drain()
    mm = await venue.logged_on("mm")
    taker = await venue.logged_on("load3")
    trades = 0
    for _ in range(3):
        trades += await _burst(mm, taker, 100)
    last = await mm.order(SYM, "buy", "limit", "0.5", "29000")
    assert last["exec_type"] == "new"
    slow.start_reading()  # resume reading well within the write deadline
    await slow.recv("trade", seq=trades, timeout=10)
    bbo = await slow.recv("bbo", bid_price="29000.00", bid_quantity="0.50000", timeout=10)
    assert bbo["ask_price"] is None
    seqs = [m["seq"] for m in slow.received if m["type"] == "trade"]
    assert seqs == list(range(1, trades + 1))
    # each bbo continues the last one seen, skipping exactly the messages it says it replaced
    bbos = [m for m in slow.received if m["type"] == "bbo"]
    for previous, m in pairwise(bbos):
        assert m["seq"] == previous["seq"] + 1 + m.get("conflated", 0), (previous, m)


async def test_a_slow_consumer_that_reads_again_gets_the_reason_then_the_close(
    venue: EngineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut off for not reading (queue overflow or write deadline), a client that then reads finds
    what was already written, then a ``logout`` with reason ``slow_consumer``, then the end."""
    # a loaded machine may take a while to notice the cut and start reading: a long linger
    monkeypatch.setattr(session_module, "SLOW_CONSUMER_LINGER", 30.0)
    assert venue.engine is not None
    engine = venue.engine
    slow = await Client.connect(venue.host, venue.port, "binary", rcvbuf=4096, read=False, limit=4096)
    venue.clients.append(slow)
    slow.writer.write(
        frame({"type": "subscribe", "symbol": SYM, "channels": ["trades"], "depth": 50, "request_id": "s"})
    )
    await slow.writer.drain()
    local = slow.writer.get_extra_info("sockname")
    session = await eventually(lambda: next((s for s in engine.sessions if s.peer == local), None))
    mm = await venue.logged_on("mm")
    taker = await venue.logged_on("load4")
    t0 = time.monotonic()
    while not session.closed and time.monotonic() - t0 < 20:
        await _burst(mm, taker, 100)
    assert session.closed, "the stalled client was not cut off"

    slow.start_reading()  # within the linger: the server is still flushing to it

    logout = await slow.recv("logout", timeout=10)
    assert "slow_consumer" == logout["reason"]
    assert logout["text"] in (
        "disconnected: outbound queue overflow",
        "disconnected: write deadline exceeded",
    )
    await slow.wait_closed(timeout=10)
    assert logout is slow.received[-1]
    await eventually(lambda: session not in engine.sessions, 10, what="session not dropped")


async def test_sessions_waiting_for_a_full_mailbox_take_turns(harness: EngineHarness) -> None:
    """When the risk mailbox is full, the sessions waiting for room are served in turn: no
    session's requests sit unforwarded while others keep getting through (with a tiny mailbox
    the first sessions used to win every wake-up and the last ones got nothing at all)."""
    from tests.integration.conftest import with_server
    from tradingapp.config import load_config

    await harness.start(with_server(load_config(), mailbox_size=2))
    accounts = ("alice", "bob", "carol", "mm")
    clients = [await harness.logged_on(account) for account in accounts]
    per_session = 300
    for c in clients:  # every session has all its orders read before any is answered
        c.writer.write(
            b"".join(
                frame(
                    {
                        "type": "new_order",
                        "client_order_id": f"{c.account}-{i}",
                        "symbol": SYM,
                        "side": "buy",
                        "order_type": "limit",
                        "quantity": "0.001",
                        "price": "29000",
                    }
                )
                for i in range(per_session)
            )
        )
    await asyncio.gather(*(c.writer.drain() for c in clients))

    def acks(c: Client) -> int:
        return sum(1 for m in c.received if m.get("type") == "execution_report")

    first = await eventually(lambda: next((c for c in clients if acks(c) >= per_session), None), 30)
    counts = {c.account: acks(c) for c in clients}
    assert all(n >= per_session // 4 for n in counts.values()), (first.account, counts)
    for c in clients:
        await eventually(lambda c=c: acks(c) == per_session, 30)
