"""R9: restart idempotency on a real server, and the clean stop itself.

Recover, stop cleanly, recover again, three times with nothing happening in between: the state
digest is stable, and neither the journal nor the snapshots change by a byte. Then trade again:
new order ids and trade ids continue after the largest ones used, the journal seq continues
without a gap, and the next restart recovers what a replay gives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.persistence.conftest import CleanRun
from tests.persistence.harness import (
    PYTHON,
    Server,
    WireClient,
    check_consistency,
    check_seen_against_state,
    check_trade_ids,
    copy_data_dir,
    dir_bytes,
    flow_then_stop,
    full_history,
    recovered_state,
    seed_for,
    snapshot_venue,
)
from tradingapp.storage import recover_journal


def durable_files(data_dir: Path) -> dict[str, bytes]:
    return {k: v for k, v in dir_bytes(data_dir).items() if k.startswith(("journal", "snapshots"))}


def test_restart_three_times_then_trade_again(tmp_path: Path, clean_run: CleanRun) -> None:
    config = clean_run.config
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    before = durable_files(data_dir)
    history = full_history(config, copy_data_dir(data_dir, tmp_path / "offline"))
    digest = history.venue.state_digest()

    for i in range(3):
        server = Server(data_dir, clean_run.config_path).start()
        recovered = server.recovered()
        assert recovered["digest"] == digest, f"restart {i + 1}"
        assert recovered["finished_in_flight"] == 0 and recovered["next_seq"] == history.records + 1
        assert server.stop() == 0, server.stderr_text()[-2000:]
        assert not server.errors(), server.errors()
        assert durable_files(data_dir) == before, (
            f"an idle restart ({i + 1}) changed the journal or snapshots"
        )

    # recovery with nothing to cut writes nothing, however often it runs
    for _ in range(2):
        report = recover_journal(data_dir / "journal")
        assert report.clean and report.next_seq == history.records + 1
        venue, next_seq, _, finished = recovered_state(config, data_dir)
        assert (venue.state_digest(), next_seq, finished) == (digest, history.records + 1, 0)
    assert durable_files(data_dir) == before

    # trade again: ids continue after the largest ever used
    max_order = max(history.orders)
    max_trade = max(history.trades)
    seed = seed_for(41)
    print(f"seed={seed}")
    server = Server(data_dir, clean_run.config_path).start()
    flow, rc = asyncio.run(flow_then_stop(server, config, seed, "again", 150))
    assert rc == 0 and not server.errors()
    new_orders = {
        sent.reply["order_id"]
        for trader in flow.traders
        for sent in trader.sent
        if sent.message["type"] == "new_order" and sent.reply and sent.reply.get("order_id") is not None
    }
    assert new_orders and min(new_orders) > max_order, f"order ids reused: {min(new_orders)} <= {max_order}"
    after = full_history(config, copy_data_dir(data_dir, tmp_path / "offline2"))
    new_trades = [t for t in after.trades if t > max_trade]
    assert new_trades, "the second run did not trade"
    for tid, (symbol, trade) in history.trades.items():
        again = after.trades[tid]
        assert again[0] == symbol and again[1][:3] == trade[:3], f"trade {tid} changed"
    check_trade_ids(after)
    check_consistency(config, after.venue)
    check_seen_against_state(config, flow, after, {})
    snap = snapshot_venue(config, data_dir)
    assert snap is not None and snap[1].state_digest() == after.venue.state_digest()

    server = Server(data_dir, clean_run.config_path).start()
    assert server.recovered()["digest"] == after.venue.state_digest()
    assert server.stop() == 0


def test_sigterm_right_after_the_listening_line_stops_cleanly(tmp_path: Path, clean_run: CleanRun) -> None:
    """``listening on`` tells a supervisor the engine is up; a SIGTERM from then on must be a clean
    stop (exit 0), not the default action of the signal. Two CPU-bound processes keep the
    machine busy, as CI machines are, so that the engine may be descheduled right after it
    prints the line."""
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    burners = [subprocess.Popen([PYTHON, "-c", "while True: pass"]) for _ in range(2)]
    codes = []
    try:
        for _ in range(12):
            server = Server(data_dir, clean_run.config_path).start()
            codes.append(server.stop(confirm=False))
            if codes[-1] != 0:
                break
    finally:
        for burner in burners:
            os.kill(burner.pid, signal.SIGKILL)
            burner.wait()
    assert all(code == 0 for code in codes), f"exit codes after SIGTERM right after 'listening on': {codes}"


async def _until(
    client: WireClient, pred: Callable[[dict[str, Any]], bool], timeout: float = 10
) -> dict[str, Any]:
    """The first message ``client`` received that matches ``pred`` (waits up to ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = next((m for m in client.received if pred(m)), None)
        if found is not None:
            return found
        assert not client.closed.is_set(), "the server closed the connection"
        await asyncio.sleep(0.01)
    raise AssertionError(f"no matching message within {timeout}s; last: {client.received[-5:]!r}")


def _picture(message: dict[str, Any]) -> dict[str, Any]:
    # A bbo or depth message without its seq and time: what the book looked like.
    return {k: v for k, v in message.items() if k not in ("seq", "timestamp", "conflated")}


async def _feed_round(server: Server, orders: list[tuple[str, str, str]]) -> dict[str, list[dict[str, Any]]]:
    """Subscribe, place ``orders`` (account, side, price; 0.01 BTC each) one at a time, and return
    the bbo, depth and trade messages received, snapshots first."""
    sub = await WireClient.connect(server.host, server.port, "alice")
    traders = {name: await WireClient.connect(server.host, server.port, name) for name in ("mm", "bob")}
    sub.send({"type": "subscribe", "symbol": "BTC-USDT", "channels": ["bbo", "depth", "trades"], "depth": 5})
    await _until(sub, lambda m: m["type"] == "depth")
    for i, (account, side, price) in enumerate(orders):
        cid = f"feedseq-{time.monotonic_ns()}-{i}"
        trader = traders[account]
        trader.send(
            {
                "type": "new_order",
                "client_order_id": cid,
                "symbol": "BTC-USDT",
                "side": side,
                "order_type": "limit",
                "quantity": "0.01",
                "price": price,
            }
        )
        await _until(
            trader, lambda m, cid=cid: m.get("client_order_id") == cid and m["type"] == "execution_report"
        )
    # a round trip through the feed: everything the orders published has arrived
    sub.send({"type": "book", "symbol": "BTC-USDT", "depth": 1, "request_id": "done"})
    await _until(sub, lambda m: m.get("request_id") == "done")
    for client in (sub, *traders.values()):
        await client.close()
    return {
        kind: [m for m in sub.received if m["type"] == kind and "request_id" not in m]
        for kind in ("bbo", "depth", "trade")
    }


def test_feed_seqs_continue_across_restarts(tmp_path: Path, venue_config_path: Path) -> None:
    """docs/protocol.md: bbo and depth seqs continue across a restart and never repeat or go back;
    after a clean stop exactly (the snapshot is the last message seen, with the same seq), after a
    kill -9 possibly with a jump."""
    data_dir = tmp_path / "data"
    server = Server(data_dir, venue_config_path).start()
    first = asyncio.run(
        _feed_round(server, [("mm", "sell", "30100"), ("mm", "buy", "29900"), ("mm", "buy", "29950")])
    )
    assert server.stop() == 0 and not server.errors()
    for kind in ("bbo", "depth"):
        seqs = [m["seq"] for m in first[kind]]
        assert seqs == list(range(1, len(seqs) + 1)), (kind, seqs)  # a new book starts at 1

    # clean restart: each snapshot is the last message seen, same seq; updates continue at +1
    server = Server(data_dir, venue_config_path).start()
    second = asyncio.run(_feed_round(server, [("mm", "buy", "29960"), ("bob", "sell", "29960")]))  # a trade
    for kind in ("bbo", "depth"):
        snapshot, *updates = second[kind]
        assert (snapshot["seq"], _picture(snapshot)) == (first[kind][-1]["seq"], _picture(first[kind][-1]))
        assert [m["seq"] for m in updates] == list(
            range(snapshot["seq"] + 1, snapshot["seq"] + 1 + len(updates))
        )
    assert [m["seq"] for m in second["trade"]] == [1]

    # kill -9: seqs never repeat or go back (a seq seen again must show the same picture)
    assert server.kill() != 0
    server = Server(data_dir, venue_config_path).start()
    third = asyncio.run(_feed_round(server, [("mm", "buy", "29970")]))
    assert server.stop() == 0 and not server.errors()
    for kind in ("bbo", "depth"):
        last_seen, snapshot = second[kind][-1], third[kind][0]
        assert snapshot["seq"] >= last_seen["seq"], kind
        if snapshot["seq"] == last_seen["seq"]:
            assert _picture(snapshot) == _picture(last_seen), kind
        assert third[kind][1]["seq"] == snapshot["seq"] + 1, kind
