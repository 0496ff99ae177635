"""PNG plots of the end-to-end results (matplotlib, from the ``bench`` extra).

Drawn from the medians :func:`bench.e2e.run_e2e` returns:

* ``e2e-latency-percentiles.png``: the percentile curves of the three latencies (``batch``,
  with the most subscribers) at each offered rate and in the closed loop;
* ``e2e-throughput.png``: answered against offered requests/s for every fsync setting, with and
  without subscribers, the closed-loop maxima and the 100k target;
* ``e2e-p99.png``: p99 of the three latencies against the offered rate, with the 1 ms target;
* ``e2e-stages.png``: where the time of an order goes (mean of each stage) per configuration.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

#: Percentiles of the curves and where they sit on the "nines" axis; max is drawn past p99.99.
CURVE = (("p50", 50), ("p75", 75), ("p90", 90), ("p95", 95), ("p99", 99), ("p99.5", 99.5))
CURVE += (("p99.9", 99.9), ("p99.95", 99.95), ("p99.99", 99.99))
NAMES = {"order": "order processing", "bbo": "BBO update", "trade": "trade data"}
STAGES = ("receive_to_risk", "risk_to_matched", "matched_to_durable", "durable_to_written")
TARGET_RATE = 100_000
TARGET_P99_US = 1000
COLOURS = {"always": "tab:red", "batch": "tab:blue", "off": "tab:green"}


def _nines(p: float) -> float:
    return -math.log10(1 - p / 100)


def draw(data: dict[str, Any], out_dir: Path) -> list[Path]:
    """Draw every plot into ``out_dir``; return the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = [c for c in data["configs"] if c["runs"]]
    paths = [
        _percentile_curves(configs, out_dir / "e2e-latency-percentiles.png"),
        _throughput(configs, out_dir / "e2e-throughput.png"),
        _p99_vs_load(configs, out_dir / "e2e-p99.png"),
        _stages(configs, out_dir / "e2e-stages.png"),
    ]
    return [p for p in paths if p is not None]


def _percentile_curves(configs: list[dict[str, Any]], path: Path) -> Path | None:
    # fsync batch (the default setting) with the most subscribers, else whatever was measured
    measured = [c for c in configs if c.get("server_us")]
    if not measured:
        return None
    fsync = "batch" if any(c["fsync"] == "batch" for c in measured) else measured[0]["fsync"]
    subs = max(c["subscribers"] for c in measured if c["fsync"] == fsync)
    chosen = [c for c in measured if (c["fsync"], c["subscribers"]) == (fsync, subs)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), sharey=True)
    ticks = [_nines(p) for _, p in CURVE] + [_nines(99.99) + 0.5]
    labels = [key[1:] for key, _ in CURVE] + ["max"]
    for ax, name in zip(axes, NAMES, strict=True):
        for c in sorted(chosen, key=lambda c: c["rate"] or math.inf):
            figures = c["server_us"].get(name)
            if not figures:
                continue
            ys = [figures[key] for key, _ in CURVE] + [figures["max"]]
            label = f"{c['rate']:,} req/s offered" if c["rate"] else "closed loop (max)"
            ax.plot(ticks, ys, marker="o", markersize=3, label=label)
        ax.axhline(TARGET_P99_US, color="grey", linestyle="--", linewidth=1)
        ax.set_title(f"{NAMES[name]} latency")
        ax.set_xticks(ticks, labels, fontsize=7)
        ax.set_xlabel("percentile")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("µs, receive -> written (log)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Engine latency percentiles, fsync {fsync}, {subs} feed subscribers (dashed: 1 ms)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _throughput(configs: list[dict[str, Any]], path: Path) -> Path | None:
    fig, ax = plt.subplots(figsize=(8, 5.5))
    rates = sorted({c["rate"] for c in configs if c["rate"]})
    if rates:
        span = [rates[0] / 2, rates[-1] * 2]
        ax.plot(span, span, color="grey", linestyle=":", linewidth=1, label="answered = offered")
    for c in configs:
        if not c["stats"] or c["rate"]:
            continue
        points = [
            (o["rate"], o["requests_per_s"])
            for o in configs
            if o["rate"] and o["stats"] and (o["fsync"], o["subscribers"]) == (c["fsync"], c["subscribers"])
        ]
        style = "-" if c["subscribers"] else "--"
        colour = COLOURS.get(c["fsync"], "black")
        label = f"{c['fsync']}, {c['subscribers']} subs"
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, style, marker="o", color=colour, label=label)
        ax.axhline(c["requests_per_s"], color=colour, linestyle=style, linewidth=0.8, alpha=0.5)
    ax.axhline(TARGET_RATE, color="black", linewidth=1.5, label="target: 100k (batch, subscribed)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("offered requests/s (open loop)")
    ax.set_ylabel("answered requests/s (thin lines: closed-loop maximum)")
    ax.set_title("End-to-end throughput against offered load")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _p99_vs_load(configs: list[dict[str, Any]], path: Path) -> Path | None:
    open_loops = [c for c in configs if c["rate"] and c.get("server_us")]
    if not open_loops:
        return None
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), sharey=True)
    for ax, name in zip(axes, NAMES, strict=True):
        for fsync in COLOURS:
            for subs in sorted({c["subscribers"] for c in open_loops}):
                points = [
                    (c["rate"], c["server_us"][name]["p99"])
                    for c in open_loops
                    if (c["fsync"], c["subscribers"]) == (fsync, subs) and name in c["server_us"]
                ]
                if not points:
                    continue
                xs, ys = zip(*sorted(points), strict=True)
                style = "-" if subs else "--"
                ax.plot(xs, ys, style, marker="o", color=COLOURS[fsync], label=f"{fsync}, {subs} subs")
        ax.axhline(TARGET_P99_US, color="black", linewidth=1.2)
        ax.set_title(f"{NAMES[name]}: p99")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("offered requests/s")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("p99 µs (log; black: 1 ms target)")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _stages(configs: list[dict[str, Any]], path: Path) -> Path | None:
    rows = [c for c in configs if all(s in c.get("server_us", {}) for s in STAGES)]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.5))
    labels = [c["config"] for c in rows]
    left = [0.0] * len(rows)
    for stage in STAGES:
        widths = [c["server_us"][stage]["mean"] for c in rows]
        ax.barh(labels, widths, left=left, label=stage.replace("_to_", " -> ").replace("_", " "))
        left = [a + b for a, b in zip(left, widths, strict=True)]
    ax.invert_yaxis()
    ax.set_xlabel("mean µs per order, stacked by stage")
    ax.set_title("Where an order's time goes, receive -> acknowledgement written")
    ax.tick_params(axis="y", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
