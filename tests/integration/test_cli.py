"""The read-only commands over a real data dir: ``tradingapp journal`` and ``tradingapp accounts``
as README.md shows them, including output cut short by ``| head`` and a mistyped data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import EngineHarness
from tradingapp import cli


async def _one_resting_order(harness: EngineHarness) -> Path:
    """Start an engine, rest one alice bid, stop it cleanly; return its data dir."""
    await harness.start()
    c = await harness.logged_on("alice")
    report = await c.order("BTC-USDT", "buy", "limit", "0.1", "29000", client_order_id="cli-1")
    assert report["exec_type"] == "new"
    await harness.close_all()
    await harness.stop()
    return harness.data_dir


async def test_journal_and_accounts_read_a_stopped_engine(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = await _one_resting_order(harness)
    capsys.readouterr()  # the engine's console log

    assert cli.main(["journal", "--data-dir", str(data_dir)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    admits = [r for r in rows if r["record"] == "admit"]
    assert [(r["account"], r["client_order_id"], r["price"], r["quantity"]) for r in admits] == [
        ("alice", "cli-1", "29000.00", "0.10000")
    ]
    assert [r["seq"] for r in rows] == list(range(1, len(rows) + 1))

    assert cli.main(["accounts", "--data-dir", str(data_dir)]) == 0
    accounts = {r["account"]: r["balances"] for r in map(json.loads, capsys.readouterr().out.splitlines())}
    usdt = accounts["alice"]["USDT"]
    # 0.1 x 29000 plus the worst-case taker fee (2 bps) is held for the bid
    assert usdt["reserved"] == "2900.5800000"
    assert usdt["available"] == "9997099.4200000"


@pytest.mark.parametrize("command", ["journal", "accounts"])
def test_missing_data_dir_is_an_error_not_an_empty_venue(
    tmp_path: Path, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main([command, "--data-dir", str(tmp_path / "typo")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "typo" in captured.err


@pytest.mark.parametrize("command", ["journal", "accounts"])
async def test_closed_stdout_ends_quietly(harness: EngineHarness, command: str) -> None:
    """``tradingapp journal | head -1``: the reader goes away; no traceback on the terminal."""
    data_dir = await _one_resting_order(harness)
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write now fails with EPIPE, as once head has exited
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tradingapp.cli", command, "--data-dir", str(data_dir)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.stderr.decode() == ""
    assert proc.returncode == 1


async def test_journal_records_cancels_and_replaces_refused_by_risk(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """A cancel or replace that risk refuses (no such order, funds for a larger replace) gets a
    cancel_reject; the journal, the audit trail, has an ``X`` record for each, as for orders."""
    await harness.start()
    c = await harness.logged_on("alice")
    bid = await c.order("BTC-USDT", "buy", "limit", "0.1", "29000", client_order_id="r-1")
    await c.request({"type": "cancel", "symbol": "BTC-USDT", "orig_client_order_id": "nope"}, "cancel_reject")
    # a cancel naming an order id goes to the book (a C record), which finds no such order
    await c.request({"type": "cancel", "symbol": "BTC-USDT", "order_id": 999}, "cancel_reject")
    await c.request(
        {"type": "replace", "symbol": "BTC-USDT", "orig_client_order_id": "nope", "quantity": "1"},
        "cancel_reject",
    )
    funds = await c.request(
        {"type": "replace", "symbol": "BTC-USDT", "order_id": bid["order_id"], "quantity": "100000"},
        "cancel_reject",
    )
    assert funds["reason"] == "insufficient_funds"
    await harness.close_all()
    await harness.stop()
    capsys.readouterr()

    assert cli.main(["journal", "--data-dir", str(harness.data_dir)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    refused = [(r["account"], r["request"], r["reason"]) for r in rows if r["record"] == "refused"]
    assert [r["order_id"] for r in rows if r["record"] == "cancel"] == [999]
    assert refused == [
        ("alice", "cancel", "unknown_order"),
        ("alice", "replace", "unknown_order"),
        ("alice", "replace", "insufficient_funds"),
    ]
