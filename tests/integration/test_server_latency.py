"""Latency instrumentation (``--latency-stats``) over real sockets: every sampled message is counted
once, the figures are ordered and schema-exact, ``reset`` clears them, and without the flag the
``stats`` reply says it is off; the load generator reads them (``--server-stats``)."""

from __future__ import annotations

from typing import Any

from clients import loadgen
from tests.integration.conftest import EngineHarness
from tradingapp.protocol.fields import LATENCY_STATS

SYM = "BTC-USDT"
STAGES = ("receive_to_risk", "risk_to_matched", "matched_to_durable", "durable_to_written")


def check_distribution(name: str, figures: dict[str, int]) -> None:
    values = [figures[key] for key in LATENCY_STATS if key not in ("count", "mean")]
    assert values == sorted(values), (name, figures)
    assert figures["min"] <= figures["mean"] <= figures["max"], (name, figures)


async def test_stats_count_each_acknowledgement_bbo_update_and_trade_once(harness: EngineHarness) -> None:
    await harness.start(fsync="batch", latency_stats=True)
    sub = await harness.client()
    await sub.request({"type": "subscribe", "symbol": SYM, "channels": ["bbo", "trades"]}, "subscribed")
    mm = await harness.logged_on("mm")
    bob = await harness.logged_on("bob")

    await mm.order(SYM, "sell", "limit", "0.1", "30010")  # moves the ask: one bbo update
    await sub.recv("bbo", ask_price="30010.00", check=False)  # feed seqs are checked in test_server_feeds
    await bob.order(SYM, "buy", "limit", "0.1", "30010")  # takes it all: one trade, the ask goes
    await sub.recv("trade")
    await sub.recv("bbo", ask_price=None, check=False)
    await mm.recv("execution_report", exec_type="trade")

    stats = await bob.request({"type": "stats"}, "stats")

    assert stats["enabled"] is True
    latency: dict[str, Any] = stats["latency"]
    counts = {name: figures["count"] for name, figures in latency.items()}
    assert {"order": 2, "bbo": 2, "trade": 1, **dict.fromkeys(STAGES, 2)} == counts
    for name, figures in latency.items():
        check_distribution(name, figures)
        assert figures["min"] > 0, name
    # the stages add up to the whole (each figure is rounded to 3 significant digits)
    whole = latency["order"]["mean"]
    assert abs(sum(latency[stage]["mean"] for stage in STAGES) - whole) <= whole * 0.01


async def test_stats_reset_clears_the_figures(harness: EngineHarness) -> None:
    await harness.start(latency_stats=True)
    bob = await harness.logged_on("bob")
    await bob.order(SYM, "buy", "limit", "0.1", "29000")

    first = await bob.request({"type": "stats", "reset": True}, "stats")
    second = await bob.request({"type": "stats"}, "stats")

    assert 1 == first["latency"]["order"]["count"]
    assert all(figures == dict.fromkeys(LATENCY_STATS, 0) for figures in second["latency"].values())


async def test_stats_without_the_flag_say_so(venue: EngineHarness) -> None:
    bob = await venue.logged_on("bob")
    await bob.order(SYM, "buy", "limit", "0.1", "29000")

    stats = await bob.request({"type": "stats"}, "stats")

    assert {"type", "enabled", "latency", "request_id"} == set(stats)
    assert (False, {}) == (stats["enabled"], stats["latency"])


async def test_stats_need_a_logon(venue: EngineHarness) -> None:
    anonymous = await venue.client()

    reply = await anonymous.request({"type": "stats"}, "reject")

    assert "not_logged_in" == reply["reason"]


async def test_loadgen_reports_the_engine_figures_of_its_own_run(harness: EngineHarness) -> None:
    await harness.start(latency_stats=True)
    bob = await harness.logged_on("bob")
    await bob.order(SYM, "buy", "limit", "0.1", "29000")  # before the run: reset by the load generator
    argv = ["--port", str(harness.port), "--count", "400", "--connections", "2", "--subscribers", "1"]
    options = loadgen.Options.from_args(loadgen.parse([*argv, "--seed", "3", "--quiet", "--server-stats"]))

    report = await loadgen.run_loadgen(options)

    assert [] == report["errors"]
    server = report["server_latency_us"]
    new_orders = report["sent"]["total"] - report["sent"]["cancel"]
    assert 0 < server["order"]["count"] <= new_orders
    assert server["order"]["p50"] <= server["order"]["p99"] <= server["order"]["max"]
    assert server["bbo"]["count"] > 0
    text = loadgen.format_report(report)
    assert "server      order" in text and "stages      mean us: receive->risk" in text


async def test_loadgen_says_when_the_engine_has_no_figures(venue: EngineHarness) -> None:
    argv = ["--port", str(venue.port), "--count", "50", "--connections", "1", "--quiet", "--server-stats"]

    report = await loadgen.run_loadgen(loadgen.Options.from_args(loadgen.parse(argv)))

    assert 1 == report["exit_code"]
    assert "start it with --latency-stats" in report["fatal"]
