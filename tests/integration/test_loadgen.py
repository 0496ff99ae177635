"""The load generator (clients/loadgen.py, ``tradingapp loadgen``): short bounded runs, sane reports.

No speed assertions: only that the run is bounded, every request is answered and the report
holds what it promises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from clients import loadgen
from tests.integration.conftest_client import engine_addr, threaded_engine  # noqa: F401
from tradingapp import cli


def _check_report(report: dict[str, Any]) -> None:
    assert 0 == report["exit_code"], report
    assert [] == report["errors"]
    sent, acked = report["sent"], report["acked"]
    assert sent["total"] > 0
    assert sent["total"] == sum(sent[k] for k in ("limit", "ioc", "market", "cancel"))
    assert sent == acked  # every request answered
    assert 0 == report["unanswered"]
    assert sent["limit"] > sent["ioc"] > 0
    order_latency = report["latency_us"]["order_to_ack"]
    assert sent["total"] - sent["cancel"] == order_latency["count"]
    assert 0 < order_latency["p50"] <= order_latency["p90"] <= order_latency["p99"]
    assert order_latency["p99"] <= order_latency["p99.9"] <= order_latency["max"]
    assert report["throughput"]["acks_per_s"] > 0
    assert report["outcomes"].get("fill", 0) > 0  # some orders cross
    assert "cleanup" in report


async def test_closed_loop_run(engine_addr: tuple[str, int]) -> None:  # noqa: F811
    host, port = engine_addr
    argv = ["--host", host, "--port", str(port), "--connections", "2", "--in-flight", "16"]
    args = loadgen.parse([*argv, "--duration", "1.5", "--subscribers", "1", "--seed", "7", "--quiet"])
    report = await loadgen.run_loadgen(loadgen.Options.from_args(args))
    _check_report(report)
    assert "closed" == report["settings"]["mode"]
    s = report["settings"]
    assert (10_000, 5.0, False) == (s["max_backlog"], s["drain_timeout"], s["keep_orders"])
    assert report["send_phase_s"] < 3
    feed = report["feed"]
    assert feed["messages"] > 0
    assert (0, 0) == (feed["trade_gaps"], feed["book_gaps"])  # conflation is not a gap
    text = loadgen.format_report(report)
    for word in ("throughput", "order->ack", "p99.9", "rejects", "feed", "errors      none"):
        assert word in text


async def test_count_bound(engine_addr: tuple[str, int]) -> None:  # noqa: F811
    host, port = engine_addr
    argv = ["--port", str(port), "--host", host, "--count", "300", "--duration", "30", "--quiet"]
    # three connections on two accounts: each sees the other's reports on the shared account
    args = loadgen.parse([*argv, "--connections", "3", "--accounts", "load1", "load2:load2-key"])
    report = await loadgen.run_loadgen(loadgen.Options.from_args(args))
    assert 300 == report["sent"]["total"] == report["acked"]["total"]
    assert [] == report["errors"]
    assert ["load1", "load2"] == report["cleanup"]["accounts"]
    assert report["send_phase_s"] < 10


def test_cli_open_loop(
    threaded_engine: tuple[str, int],  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    host, port = threaded_engine
    out = tmp_path / "report.json"
    # 2.5 s: the progress line comes once a second, so the run must outlast its first one
    argv = ["loadgen", "--host", host, "--port", str(port), "--rate", "2000", "--duration", "2.5"]
    assert 0 == cli.main([*argv, "--connections", "3", "--json", str(out)])
    report = json.loads(out.read_text())
    _check_report(report)
    assert ("open", 2000) == (report["settings"]["mode"], report["settings"]["rate"])
    assert report["sent"]["total"] <= 2000 * 2.5 + 10
    captured = capsys.readouterr()
    assert "open loop at 2000 req/s" in captured.out
    assert "order->ack" in captured.out
    assert "acks/s" in captured.err  # the progress line


def test_unreachable_and_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert 1 == loadgen.main(loadgen.parse(["--port", "1", "--duration", "1", "--quiet"]))
    assert "FATAL: cannot start" in capsys.readouterr().out
    assert 2 == loadgen.main(loadgen.parse(["--host", "192.0.2.1"]))
    assert 2 == loadgen.main(loadgen.parse(["--symbols", "FOO-BAR"]))
    assert 2 == loadgen.main(loadgen.parse(["--duration", "0"]))


@pytest.mark.parametrize(
    "argv",
    [
        ["--symbols", "BTC-USDT:abc"],
        ["--symbols", "BTC-USDT:NaN"],
        ["--symbols", "FOO-BAR:100:x:0.01"],
        ["--port", "70000"],
        ["--port", "0"],
    ],
)
def test_bad_option_values_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert 2 == loadgen.main(loadgen.parse(["--quiet", *argv]))
    err = capsys.readouterr().err
    assert err.startswith("loadgen: --") and err.count("\n") == 1


def test_unwritable_json_file_is_refused_before_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not a traceback after a whole run whose figures are then lost."""
    path = tmp_path / "missing-dir" / "report.json"
    assert 2 == loadgen.main(loadgen.parse(["--port", "1", "--quiet", "--json", str(path)]))
    captured = capsys.readouterr()
    assert "FATAL" not in captured.out  # it did not try to connect
    assert captured.err.startswith(f"loadgen: --json: cannot write {path}: ")
