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
from pathlib import Path

from tests.persistence.conftest import CleanRun
from tests.persistence.harness import (
    PYTHON,
    Server,
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
