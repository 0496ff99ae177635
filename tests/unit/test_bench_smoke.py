"""Smoke test of the benchmark harness: it runs, checks digests and reports sane numbers.

CI-sized (a few seconds): the first 5,000 operations of the standard workload, or a synthetic
workload when the shared file is absent. Speed is never asserted; only that the harness works.
"""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``bench`` is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import __main__ as bench_main  # noqa: E402
from bench import core, workload  # noqa: E402
from tradingapp.engine.commands import Cancel, NewOrder  # noqa: E402
from tradingapp.engine.types import OrderType, SelfTradePrevention  # noqa: E402

SMOKE_OPS = 5_000


@pytest.fixture(scope="module")
def small_workload() -> tuple[list[workload.Op], dict | None]:
    ops, expected, _ = workload.load_workload(limit=SMOKE_OPS)
    return ops, expected


def test_core_benchmark_on_a_small_workload_reports_sane_numbers(small_workload):
    """Our engine and the peers run, agree with each other, and report positive throughput."""
    ops, expected = small_workload

    data = core.run_core(ops, expected, repeats=1, gc_modes=(True,))

    assert data["failures"] == []
    ours = data["engines"][0]
    assert ours["gc_on"]["median"] > 0
    assert re.fullmatch(r"[0-9a-f]{32}", ours["outcome"]["digest"])
    assert ours["outcome"]["fills"] > 0
    assert ours["outcome"]["volume"] > 0
    minimal = next(row for row in data["engines"] if row["engine"].startswith("minimal"))
    assert ours["outcome"] == minimal["outcome"]
    kinds = {row["kind"] for row in data["latency_us"]}
    assert {"limit passive", "cancel", "all"} <= kinds
    assert all(row["p50"] > 0 and row["max"] >= row["p99"] for row in data["latency_us"])
    assert "| tradingapp OrderBook" in core.report(data)


def test_core_benchmark_with_a_wrong_expected_digest_reports_a_mismatch(small_workload, capsys):
    """A digest that differs from the expected one is a failure, printed loudly."""
    ops, _ = small_workload

    data = core.run_core(ops, {"digest": "0" * 32}, repeats=1, peers=False, latency=False, gc_modes=(True,))

    assert "tradingapp OrderBook" in data["failures"]
    assert "MISMATCH" in capsys.readouterr().out


def test_synthetic_workload_is_used_when_the_shared_file_is_absent(monkeypatch, tmp_path):
    """Without the shared file the harness falls back to a synthetic workload that still trades."""
    monkeypatch.delenv(workload.WORKLOAD_ENV, raising=False)
    monkeypatch.setattr(workload, "DEFAULT_WORKLOAD", tmp_path / "absent.jsonl.gz")

    ops, expected, label = workload.load_workload(limit=2_000)
    data = core.run_core(ops, expected, repeats=1, latency=False, gc_modes=(True,))

    assert expected is None
    assert label.startswith("synthetic")
    assert len(ops) == 2_000
    assert data["failures"] == []
    assert data["engines"][0]["outcome"]["fills"] > 0


def test_cancel_uses_the_account_of_the_order_it_targets():
    """The workload's cancel ``acct`` is not the owner: the command carries the order's own account."""
    ops = [
        {"op": "limit", "id": 1, "side": "buy", "price": 10, "qty": 2, "acct": 7},
        {"op": "market", "id": 2, "side": "sell", "price": 0, "qty": 1, "acct": 8},
        {"op": "cancel", "id": 1, "side": "buy", "price": 0, "qty": 0, "acct": 99},
    ]

    limit, market, cancel = core.to_commands(ops)

    assert isinstance(limit, NewOrder) and limit.stp is SelfTradePrevention.NONE
    assert OrderType.MARKET is market.order_type and market.price is None
    assert Cancel(1, 7) == cancel


def test_fill_digest_follows_the_workload_readme():
    """The digest is blake2b-128 over little-endian int64 quadruples, in fill order."""
    fills = [(5, 3, 100_010, 7), (6, 3, 100_010, 1)]
    h = hashlib.blake2b(digest_size=16)
    for fill in fills:
        h.update(b"".join(v.to_bytes(8, "little", signed=True) for v in fill))

    assert h.hexdigest() == workload.fill_digest(fills)


def test_command_line_quick_core_run_exits_zero(capsys):
    """``python -m bench --suite core --quick`` works end to end on a small slice."""
    code = bench_main.main(["--suite", "core", "--quick", "--limit", "1000", "--no-latency"])

    assert code == 0
    assert "ops/s" in capsys.readouterr().out
