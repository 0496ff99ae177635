"""The latency counts: values are kept to HdrHistogram's 3-significant-digit resolution and the
summary reads them back through HdrHistogram."""

from __future__ import annotations

from tradingapp.latency import BBO, ORDER, TRADE, LatencyStats, Trace
from tradingapp.protocol.fields import LATENCY_STATS


class FakeSession:
    def __init__(self) -> None:
        self.marks: list[tuple[int, Trace]] = []

    def mark(self, kind: int, trace: Trace) -> None:
        self.marks.append((kind, trace))


def traced(received: int, risked: int, matched: int, durable: int) -> Trace:
    trace = Trace(received)
    trace.risked, trace.matched, trace.durable = risked, matched, durable
    return trace


def test_percentiles_of_a_known_distribution_within_a_tenth_of_a_percent(monkeypatch):
    stats = LatencyStats()
    # 1..1000 µs, one of each: written 1..1000 µs after receipt
    now = 10**12
    monkeypatch.setattr("tradingapp.latency.perf_counter_ns", lambda: now)
    stats.written([(BBO, Trace(now - us * 1000)) for us in range(1, 1001)])

    bbo = stats.summary()["bbo"]

    assert 1000 == bbo["count"]
    for key, expected_ns in (("p50", 500_000), ("p90", 900_000), ("p99", 990_000), ("max", 1_000_000)):
        assert abs(bbo[key] - expected_ns) <= expected_ns * 0.001, (key, bbo[key])
    assert abs(bbo["mean"] - 500_500) <= 500


def test_an_acknowledgement_records_the_whole_and_its_four_stages(monkeypatch):
    stats = LatencyStats()
    session = FakeSession()
    trace = traced(1_000, 21_000, 51_000, 0)
    monkeypatch.setattr("tradingapp.latency.perf_counter_ns", lambda: 251_000)
    stats.acknowledged((session, trace))  # stamps durable = 251,000
    monkeypatch.setattr("tradingapp.latency.perf_counter_ns", lambda: 301_000)

    stats.written(session.marks)

    summary = stats.summary()
    assert [(ORDER, trace)] == session.marks
    expected = {
        "order": 300_000,
        "receive_to_risk": 20_000,
        "risk_to_matched": 30_000,
        "matched_to_durable": 200_000,
        "durable_to_written": 50_000,
    }
    for name, ns in expected.items():
        assert 1 == summary[name]["count"], name
        assert abs(summary[name]["p50"] - ns) <= ns * 0.001, (name, summary[name])
    assert 0 == summary["trade"]["count"] == summary["bbo"]["count"]


def test_reset_and_empty_distributions_report_zeros(monkeypatch):
    stats = LatencyStats()
    monkeypatch.setattr("tradingapp.latency.perf_counter_ns", lambda: 5_000)
    stats.written([(TRADE, Trace(0))])

    stats.reset()

    assert all(figures == dict.fromkeys(LATENCY_STATS, 0) for figures in stats.summary().values())
