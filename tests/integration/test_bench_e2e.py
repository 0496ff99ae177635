"""Smoke run of the end-to-end benchmark (``python -m bench --suite e2e``): CI-sized, a few seconds.

A real server subprocess per configuration, the load generator for half a second, the engine's
latency figures read back, the tables and the plots drawn. Speed is never asserted; only that
every part runs and reports figures that make sense.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # ``bench`` is a top-level directory, not an installed package
    sys.path.insert(0, str(ROOT))

from bench import e2e, plots  # noqa: E402

PERCENTILES = ("min", "p50", "p90", "p99", "p99.9", "max")


def test_e2e_benchmark_runs_and_reports_sane_figures(tmp_path: Path) -> None:
    configs = [e2e.Config("off", 1, 0), e2e.Config("batch", 0, 2000), e2e.Config("off", 0, 0, stats=False)]

    data = e2e.run_e2e(configs, repeats=1, seconds=0.5, backlog=500)

    assert [] == data["failures"]
    closed, paced, unstated = data["configs"]
    assert [1, 1, 1] == [c["runs"] for c in data["configs"]]
    for c in data["configs"]:
        assert c["requests_per_s"] > 0 and c["orders_per_s"] > 0
        assert c["requests_per_s"] > c["orders_per_s"]  # cancels count as requests too
    assert paced["requests_per_s"] <= 2000 * 1.5
    assert "server_us" not in unstated
    for name in ("order", *e2e.STAGES):
        figures = paced["server_us"][name]
        assert figures["count"] > 0, name
        values = [figures[p] for p in PERCENTILES]
        assert values == sorted(values) and values[0] > 0, (name, figures)
    # with a subscriber, BBO updates and trades are sampled too
    assert closed["server_us"]["bbo"]["count"] > 0
    assert closed["server_us"]["trade"]["count"] > 0
    assert "bbo" not in paced["server_us"]  # nobody subscribed

    text = e2e.report(data)
    assert "closed loop" in text and "2,000" in text
    assert "order processing latency" in text and "durable -> written" in text

    written = plots.draw(data, tmp_path)
    assert {p.name for p in written} == {
        "e2e-latency-percentiles.png",
        "e2e-throughput.png",
        "e2e-p99.png",
        "e2e-stages.png",
    }
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
