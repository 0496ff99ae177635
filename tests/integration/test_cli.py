"""The read-only commands over a real data dir: ``tradingapp journal`` and ``tradingapp accounts``
as README.md shows them, including output cut short by ``| head`` and a mistyped data dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.integration.conftest import EngineHarness
from tradingapp import cli
from tradingapp.config import load_config


async def _one_resting_order(harness: EngineHarness) -> Path:
    """Start an engine, rest one alice bid, stop it cleanly; return its data dir."""
    await harness.start()
    c = await harness.logged_on("alice")
    report = await c.order("BTC-USDT", "buy", "limit", "0.1", "29000", client_order_id="cli-1")
    assert report["exec_type"] == "new"
    await harness.close_all()
    await harness.stop()
    return harness.data_dir


def _journal(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> tuple[list[dict], str]:
    """Run ``tradingapp journal`` (exit status 0 expected); return its rows and standard error.
    Output captured before the call (the engine's console log) is discarded."""
    capsys.readouterr()
    assert cli.main(["journal", "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    return [json.loads(line) for line in captured.out.splitlines()], captured.err


async def test_journal_and_accounts_read_a_stopped_engine(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = await _one_resting_order(harness)

    rows, _ = _journal(data_dir, capsys)
    admits = [r for r in rows if r["record"] == "admit"]
    assert [(r["account"], r["client_order_id"], r["price"], r["quantity"]) for r in admits] == [
        ("alice", "cli-1", "29000.00", "0.10000")
    ]
    # amounts and rates as decimal strings, as everywhere the engine speaks
    assert ("2900.5800000", "USDT") == (admits[0]["held"], admits[0]["held_asset"])
    assert {"maker_bps": "1", "taker_bps": "2"} == admits[0]["fee_rates"]
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

    rows, _ = _journal(harness.data_dir, capsys)
    refused = [(r["account"], r["request"], r["reason"]) for r in rows if r["record"] == "refused"]
    assert [r["order_id"] for r in rows if r["record"] == "cancel"] == [999]
    assert refused == [
        ("alice", "cancel", "unknown_order"),
        ("alice", "replace", "unknown_order"),
        ("alice", "replace", "insufficient_funds"),
    ]


def _book_reports(rows: list[dict]) -> dict[str, list[dict]]:
    """The execution reports the journal's book steps carry, per account, in journal order."""
    out: dict[str, list[dict]] = {}
    for row in rows:
        for report in row.get("reports", ()):
            account = report.pop("account")
            if report["type"] == "execution_report":
                out.setdefault(account, []).append(report)
    return out


async def test_the_journal_reproduces_every_execution_report_the_clients_got(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """The audit trail: each book step of ``tradingapp journal`` carries the execution reports it
    produced, with their accounts; they are exactly the ones the clients received (fills and
    fees, cancels, replaces, expiries, a book rejection), timestamps included."""
    await harness.start()
    alice = await harness.logged_on("alice")
    bob = await harness.logged_on("bob", "json")
    sym = "BTC-USDT"
    ask = await alice.order(sym, "sell", "limit", "0.3", "30000", client_order_id="a-ask")
    await alice.order(sym, "sell", "limit", "0.2", "30010", client_order_id="a-ask2")
    await bob.order(sym, "buy", "limit", "0.1", "30000", client_order_id="b-take")  # a fill
    await alice.request(
        {"type": "replace", "symbol": sym, "order_id": ask["order_id"], "quantity": "0.5"}, "execution_report"
    )
    await bob.order(sym, "buy", "ioc", "0.6", "30000", client_order_id="b-ioc")  # fills 0.4, expires
    await bob.recv("execution_report", client_order_id="b-ioc", exec_type="expired")
    await bob.order(sym, "buy", "limit", "0.1", "30010", client_order_id="b-po", post_only=True)  # rejected
    await alice.send({"type": "cancel_all", "symbol": sym})
    await alice.recv("execution_report", client_order_id="a-ask2", exec_type="canceled")
    await bob.sync()
    await alice.sync()
    received = {
        name: [
            {k: v for k, v in m.items() if k != "request_id"}
            for m in client.reports()
            if m["exec_type"] != "order_status" and m["order_id"] is not None
        ]
        for name, client in (("alice", alice), ("bob", bob))
    }
    await harness.close_all()
    await harness.stop()

    rows, _ = _journal(harness.data_dir, capsys)

    journaled = _book_reports(rows)
    assert received == journaled
    (replace,) = [r for r in rows if r["record"] == "replace"]
    assert {"quantity": "0.30000", "price": "30000.00", "stop_price": None} == replace["expected"]
    assert ("0.2", "BTC") == (replace["extra_held"].rstrip("0"), replace["held_asset"])
    exec_types = {r["exec_type"] for reports in journaled.values() for r in reports}
    assert {"new", "trade", "replaced", "expired", "rejected", "canceled"} <= exec_types
    assert any(r.get("fee") not in (None, "0") for r in journaled["bob"])


async def test_the_journal_of_a_pruned_data_dir_has_reports_from_its_oldest_snapshot(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three runs with small segments: each clean stop snapshots and prunes, so the journal no
    longer starts at seq 1. The audit trail prints what is left and the reports from the oldest
    snapshot the journal continues from."""
    base = load_config()
    config = attrs.evolve(base, persistence=attrs.evolve(base.persistence, segment_bytes=1024))
    for run in range(3):
        await harness.start(config)
        c = await harness.logged_on("alice")
        for i in range(8):
            await c.order("BTC-USDT", "buy", "limit", "0.01", str(29000 + i), client_order_id=f"p{run}-{i}")
        await harness.close_all()
        await harness.stop()

    rows, err = _journal(harness.data_dir, capsys)
    first = rows[0]["seq"]
    assert first > 1  # pruned
    assert [r["seq"] for r in rows] == list(range(first, first + len(rows)))
    (after,) = [int(w) for w in err.split() if w.isdigit()]
    reported = [r for r in rows if "reports" in r]
    assert reported and all(r["seq"] >= after for r in reported)
    news = [rep["client_order_id"] for r in reported for rep in r["reports"] if rep["exec_type"] == "new"]
    assert [f"p2-{i}" for i in range(8)] == news[-8:]


async def test_the_journal_with_a_torn_tail_prints_what_is_whole_then_says_where_it_ends(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = await _one_resting_order(harness)
    whole, _ = _journal(data_dir, capsys)
    (segment,) = (data_dir / "journal").iterdir()
    segment.write_bytes(segment.read_bytes()[:-3])  # the last record torn, as by a crash

    assert cli.main(["journal", "--data-dir", str(data_dir)]) == 1
    captured = capsys.readouterr()
    assert whole[:-1] == [json.loads(line) for line in captured.out.splitlines()]
    assert "corrupt journal" in captured.err and "dropped when the engine next starts" in captured.err


@pytest.mark.parametrize("command", ["journal", "accounts"])
async def test_the_read_only_commands_change_no_file(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """They may run next to a live engine: a torn journal tail or a ``.tmp`` snapshot that engine
    is writing that moment stays exactly as it is (the engine deals with both itself)."""
    data_dir = await _one_resting_order(harness)
    (segment,) = (data_dir / "journal").iterdir()
    segment.write_bytes(segment.read_bytes()[:-3])
    for snapshot in (data_dir / "snapshots").iterdir():  # the torn record is the journal's tail
        snapshot.unlink()
    (data_dir / "snapshots" / "snap-00000000000000000099.tmp").write_bytes(b"being written")
    before = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.name != "engine.log"}
    capsys.readouterr()

    assert cli.main([command, "--data-dir", str(data_dir)]) == (1 if command == "journal" else 0)

    after = {p: p.read_bytes() for p in data_dir.rglob("*") if p.is_file() and p.name != "engine.log"}
    assert before == after


async def _torn_tail_and_tmp_snapshot(harness: EngineHarness) -> Path:
    """A data dir as a live engine can leave it at any instant: the journal's last record half
    written, a snapshot being written (``.tmp``) and no finished one."""
    data_dir = await _one_resting_order(harness)
    (segment,) = (data_dir / "journal").iterdir()
    segment.write_bytes(segment.read_bytes()[:-3])
    for snapshot in (data_dir / "snapshots").iterdir():
        snapshot.unlink()
    (data_dir / "snapshots" / "snap-00000000000000000099.tmp").write_bytes(b"being written")
    return data_dir


async def test_accounts_prints_json_lines_only_and_notes_on_stderr(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tradingapp accounts | jq``: what recovery has to say (the torn tail, the ``.tmp``
    snapshot) goes to standard error, and says that the files were left as they are."""
    data_dir = await _torn_tail_and_tmp_snapshot(harness)
    capsys.readouterr()

    assert cli.main(["accounts", "--data-dir", str(data_dir)]) == 0

    captured = capsys.readouterr()
    rows = [json.loads(line) for line in captured.out.splitlines()]
    assert "alice" in {r["account"] for r in rows}
    assert "snap-00000000000000000099.tmp: kept an unfinished snapshot" in captured.err, captured.err
    assert "left_in_file=True" in captured.err, captured.err
    assert "removed" not in captured.err and "journal_tail_truncated" not in captured.err, captured.err


async def test_accounts_opens_no_file_for_writing(
    harness: EngineHarness, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read access to the data dir is enough (an auditor's account may have no more): nothing is
    opened for writing, not even the torn segment that the engine itself would truncate."""
    data_dir = await _torn_tail_and_tmp_snapshot(harness)
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def recording_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        opened.append((str(path), flags))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", recording_open)
    assert cli.main(["accounts", "--data-dir", str(data_dir)]) == 0
    monkeypatch.undo()

    write_access = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    assert [(path, flags) for path, flags in opened if flags & write_access] == []
