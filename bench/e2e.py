"""End-to-end benchmark: a real server subprocess, the load generator, and the engine's own latencies.

Every run starts a fresh engine (``tradingapp serve --latency-stats --port 0`` on a new data
directory), drives it with :mod:`clients.loadgen` from this process over loopback, reads the
engine's latency figures with a ``stats`` request (``--server-stats``) and stops it. The matrix:

* loads: the closed loop (``--in-flight`` 64 on each of 4 connections: the maximum) and open loops
  at fixed offered rates (default 5,000, 20,000 and 50,000 requests/s);
* every fsync setting (``always``, ``batch``, ``off``; ``always`` in the closed loop only: it
  cannot reach the lowest offered rate);
* 0 and ``--e2e-subscribers`` (default 4) feed subscribers reading every symbol's BBO, depth and
  trades;
* one more closed loop (``batch``, no subscribers) on an engine *without* ``--latency-stats``,
  which shows what the instrumentation costs.

The runs are interleaved: each repeat runs the whole matrix once, so a slow phase of the machine
falls on every configuration alike. Reported per configuration: medians over the repeats, with
the spread ``(max - min) / median`` of throughput and of each p99.

Throughput counts order-entry requests (new orders and cancels) answered per second, over the
span from the first request sent to the last reply; new orders per second are given too. An
open loop whose engine cannot keep up skips sends (the load generator bounds the backlog at
``--e2e-backlog`` per connection) and is marked ``saturated``. Latencies come from the engine
(see :mod:`tradingapp.latency`): from the socket read that carried the order to the write that
carried its acknowledgement, its BBO update or its trade message.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import table
from bench.workload import REPO_ROOT
from clients import loadgen

FSYNC_MODES = ("always", "batch", "off")
LATENCIES = ("order", "bbo", "trade")
STAGES = ("receive_to_risk", "risk_to_matched", "matched_to_durable", "durable_to_written")
PERCENTILES = ("p50", "p90", "p99", "p99.9", "max")
#: An open loop that answered less than this share of its offered rate could not keep up.
SATURATED_SHARE = 0.95


@dataclass(frozen=True)
class Config:
    """One cell of the matrix."""

    fsync: str
    subscribers: int
    rate: int  # 0: closed loop
    stats: bool = True  # engine started with --latency-stats

    @property
    def label(self) -> str:
        load = "closed" if not self.rate else f"{self.rate // 1000}k/s"
        extra = "" if self.stats else ", no stats"
        return f"{self.fsync}, {self.subscribers} subs, {load}{extra}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The e2e suite's options (``--quick`` and ``--repeat`` are shared with the other suites)."""
    group = parser.add_argument_group("e2e suite")
    group.add_argument("--e2e-seconds", type=float, default=None, help="send phase of each run (default 3)")
    group.add_argument(
        "--e2e-rates",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="offered rates in requests/s (default 5000 20000 50000)",
    )
    group.add_argument(
        "--e2e-fsync", nargs="+", choices=FSYNC_MODES, default=None, help="fsync settings (default all)"
    )
    group.add_argument(
        "--e2e-subscribers", type=int, default=4, help="feed subscribers in the subscribed runs (default 4)"
    )
    group.add_argument(
        "--e2e-backlog", type=int, default=2000, help="open loop: unanswered requests per connection (2000)"
    )
    group.add_argument(
        "--plots",
        metavar="DIR",
        default=str(REPO_ROOT / "docs" / "img"),
        help="write the PNG plots here (default docs/img; needs matplotlib)",
    )
    group.add_argument("--no-plots", action="store_true", help="do not draw the plots")


def matrix(args: argparse.Namespace) -> list[Config]:
    """The configurations to run, in the order each repeat runs them."""
    quick = args.quick
    rates = args.e2e_rates or ([20_000] if quick else [5_000, 20_000, 50_000])
    modes = args.e2e_fsync or list(FSYNC_MODES)
    # ``always`` fsyncs every record: its closed-loop maximum is below the lowest offered rate
    # (1.8k requests/s on a quiet machine, docs/benchmarks.md), so its open loops would only
    # measure a full backlog; it runs the closed loop only
    configs = [
        Config(mode, subs, rate)
        for mode in modes
        for subs in (0, args.e2e_subscribers)
        for rate in (0, *rates)
        if mode != "always" or not rate
    ]
    if "batch" in modes:
        configs.append(Config("batch", 0, 0, stats=False))
    return configs


# -- one engine --------------------------------------------------------------------------------------


class Server:
    """A ``tradingapp serve`` subprocess on a free loopback port and a fresh data directory."""

    def __init__(self, data_dir: Path, fsync: str, stats: bool) -> None:
        argv = [sys.executable, "-m", "tradingapp.cli", "serve", "--port", "0", "--quiet"]
        argv += ["--data-dir", str(data_dir), "--fsync", fsync]
        if stats:
            argv.append("--latency-stats")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO_ROOT)
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 1)
            line = self.proc.stdout.readline() if ready else b""
            if line.startswith(b"listening on "):
                break
            if self.proc.poll() is not None:
                break
        if not line.startswith(b"listening on "):
            self.stop()
            raise RuntimeError(f"the engine did not start: {self.stderr()}")
        self.port = int(line.decode().split()[-1].rsplit(":", 1)[1])

    def cpu_seconds(self) -> float:
        """User + system CPU time the engine has used so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stderr(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        return self.proc.stderr.read().decode(errors="replace")[-2000:]

    def stop(self) -> int:
        """SIGTERM and wait for the clean exit; return its status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return rc


def run_one(config: Config, seconds: float, backlog: int, seed: int, work: Path) -> dict[str, Any]:
    """Start an engine, run the load generator against it, read its figures, stop it."""
    data_dir = Path(tempfile.mkdtemp(prefix="e2e-", dir=work))
    server = Server(data_dir, config.fsync, config.stats)
    try:
        argv = ["--port", str(server.port), "--duration", str(seconds), "--seed", str(seed), "--quiet"]
        # --keep-orders: the engine is thrown away after the run, so no cleanup (cancel_all) is needed
        argv += ["--subscribers", str(config.subscribers), "--drain-timeout", "15", "--keep-orders"]
        if config.rate:
            argv += ["--rate", str(config.rate), "--max-backlog", str(backlog)]
            argv += ["--count", str(int(config.rate * seconds) + 1)]
        else:
            argv += ["--count", "100000000"]
        if config.stats:
            argv.append("--server-stats")
        options = loadgen.Options.from_args(loadgen.parse(argv))
        cpu_before = server.cpu_seconds()
        client_cpu = time.process_time()
        report = _run_async(loadgen.run_loadgen(options))
        client_cpu = time.process_time() - client_cpu
        engine_cpu = server.cpu_seconds() - cpu_before
    finally:
        rc = server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    return summarise_run(config, report, rc, engine_cpu, client_cpu)


def _run_async(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def summarise_run(
    config: Config, report: dict[str, Any], rc: int, engine_cpu: float, client_cpu: float
) -> dict[str, Any]:
    """The figures of one run that the tables and plots use."""
    elapsed = report.get("elapsed_s") or 0.0
    acked = report.get("acked", {})
    problems = list(report.get("errors", []))
    if "fatal" in report:
        problems.append(report["fatal"])
    if rc != 0:
        problems.append(f"engine exited with {rc}")
    if report.get("unanswered"):
        problems.append(f"{report['unanswered']} requests unanswered")
    requests_per_s = acked.get("total", 0) / elapsed if elapsed else 0.0
    run: dict[str, Any] = {
        "config": config.label,
        "fsync": config.fsync,
        "subscribers": config.subscribers,
        "rate": config.rate,
        "stats": config.stats,
        "requests": acked.get("total", 0),
        "seconds": elapsed,
        "requests_per_s": requests_per_s,
        "orders_per_s": (acked.get("total", 0) - acked.get("cancel", 0)) / elapsed if elapsed else 0.0,
        "skipped": report.get("skipped_backlog", 0),
        "saturated": bool(config.rate) and requests_per_s < SATURATED_SHARE * config.rate,
        "engine_cpu": engine_cpu / elapsed if elapsed else 0.0,
        # CPU per request: far less disturbed than wall-clock figures by other processes
        "engine_cpu_us_per_request": engine_cpu / acked["total"] * 1e6 if acked.get("total") else 0.0,
        "client_cpu": client_cpu / elapsed if elapsed else 0.0,
        "client_order_to_ack_us": report.get("latency_us", {}).get("order_to_ack", {}),
        "feed_messages": report.get("feed", {}).get("messages", 0),
        "problems": problems,
    }
    if config.stats:
        run["server_us"] = report.get("server_latency_us", {})
    return run


# -- the suite ---------------------------------------------------------------------------------------


def run_e2e(
    configs: list[Config],
    repeats: int,
    seconds: float,
    backlog: int,
    verbose: bool = False,
) -> dict[str, Any]:
    """Run every configuration ``repeats`` times, interleaved; return the runs and their medians."""
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tradingapp-e2e-") as tmp:
        for repeat in range(repeats):
            for config in configs:
                try:
                    run = run_one(config, seconds, backlog, seed=repeat + 1, work=Path(tmp))
                except (RuntimeError, OSError) as e:
                    run = {"config": config.label, "problems": [f"{type(e).__name__}: {e}"]}
                run["repeat"] = repeat + 1
                runs.append(run)
                if verbose or run["problems"]:
                    print(f"  {describe_run(run)}", flush=True)
            print(f"  repeat {repeat + 1}/{repeats} done ({time.monotonic() - started:.0f} s)", flush=True)
    summary = [summarise_config(c, [r for r in runs if r["config"] == c.label]) for c in configs]
    return {
        "seconds_per_run": seconds,
        "repeats": repeats,
        "backlog_per_connection": backlog,
        "connections": 4,
        "in_flight": 64,
        "wall_seconds": time.monotonic() - started,
        "runs": runs,
        "configs": summary,
        "failures": [f"{r['config']} (repeat {r['repeat']}): {p}" for r in runs for p in r["problems"]],
    }


def describe_run(run: dict[str, Any]) -> str:
    if "requests_per_s" not in run:
        return f"{run['config']}: FAILED {run['problems']}"
    text = f"{run['config']:<32} {run['requests_per_s']:>9,.0f} req/s, engine cpu {run['engine_cpu']:.0%}"
    order = run.get("server_us", {}).get("order")
    if order:
        text += f", order p50 {order['p50']:,.0f} us p99 {order['p99']:,.0f} us"
    return text + (f"  PROBLEMS {run['problems']}" if run["problems"] else "")


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


def _spread(values: list[float]) -> float:
    median = _median(values)
    return (max(values) - min(values)) / median if len(values) > 1 and median else 0.0


def summarise_config(config: Config, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repeats of one configuration, with the spread of the main figures."""
    good = [r for r in runs if "requests_per_s" in r]
    throughput = [r["requests_per_s"] for r in good]
    out: dict[str, Any] = {
        "config": config.label,
        "fsync": config.fsync,
        "subscribers": config.subscribers,
        "rate": config.rate,
        "stats": config.stats,
        "runs": len(good),
        "requests_per_s": _median(throughput),
        "requests_per_s_spread": _spread(throughput),
        "orders_per_s": _median([r["orders_per_s"] for r in good]),
        "saturated": sum(r["saturated"] for r in good) > len(good) / 2,
        "engine_cpu": _median([r["engine_cpu"] for r in good]),
        "engine_cpu_us_per_request": _median([r["engine_cpu_us_per_request"] for r in good]),
        "client_cpu": _median([r["client_cpu"] for r in good]),
        "client_order_to_ack_us": {
            p: _median([r["client_order_to_ack_us"].get(p, 0.0) for r in good]) for p in PERCENTILES
        },
    }
    if config.stats:
        server: dict[str, dict[str, float]] = {}
        for name in (*LATENCIES, *STAGES):
            figures = [
                r["server_us"][name] for r in good if r.get("server_us", {}).get(name, {}).get("count")
            ]

            if not figures:
                continue
            keys = [k for k in figures[0] if k != "count"]
            server[name] = {k: _median([f[k] for f in figures]) for k in keys}
            server[name]["count"] = _median([f["count"] for f in figures])
            server[name]["p99_spread"] = _spread([f["p99"] for f in figures])
        out["server_us"] = server
    return out


def report(data: dict[str, Any]) -> str:
    """The markdown tables: throughput, the three latencies, the stage breakdown."""
    configs = data["configs"]
    rows = []
    for c in configs:
        offered = f"{c['rate']:,}" if c["rate"] else "closed loop"
        rows.append(
            [
                c["fsync"],
                c["subscribers"],
                offered + ("" if c["stats"] else " (no stats)"),
                f"{c['requests_per_s']:,.0f}",
                f"{c['requests_per_s_spread']:.0%}",
                f"{c['orders_per_s']:,.0f}",
                "yes" if c["saturated"] else "",
                f"{c['engine_cpu']:.0%}",
                f"{c['engine_cpu_us_per_request']:.0f}",
                f"{c['client_cpu']:.0%}",
            ]
        )
    headers = ["fsync", "subs", "offered req/s", "answered req/s", "spread", "new orders/s"]
    parts = [table([*headers, "saturated", "engine CPU", "engine CPU µs/req", "loadgen CPU"], rows)]
    names = {"order": "order processing", "bbo": "BBO update", "trade": "trade data generation"}
    for name in LATENCIES:
        rows = []
        for c in configs:
            figures = c.get("server_us", {}).get(name)
            if not figures:
                continue
            rows.append(
                [c["config"], f"{figures['count']:,.0f}"]
                + [_us(figures[p]) for p in PERCENTILES]
                + [f"{figures['p99_spread']:.0%}"]
            )
        parts.append(f"{names[name]} latency (µs, engine: receive -> written; medians of runs)")
        parts.append(table(["config", "samples", *PERCENTILES, "p99 spread"], rows))
    rows = []
    for c in configs:
        server = c.get("server_us", {})
        if not all(stage in server for stage in STAGES):
            continue
        rows.append(
            [c["config"]]
            + [f"{_us(server[s]['mean'])} / {_us(server[s]['p99'])}" for s in STAGES]
            + [_us(server["order"]["mean"])]
        )
    parts.append("stages of order processing (µs, mean / p99)")
    stage_headers = [s.replace("_to_", " -> ").replace("_", " ") for s in STAGES]
    parts.append(table(["config", *stage_headers, "order mean"], rows))
    return "\n\n".join(parts)


def _us(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """The suite's entry point for ``python -m bench``."""
    repeats = args.repeat or (1 if args.quick else 3)
    seconds = args.e2e_seconds or (1.5 if args.quick else 3.0)
    configs = matrix(args)
    print(
        f"e2e: {len(configs)} configurations x {repeats} repeats, {seconds:g} s each "
        f"(about {len(configs) * repeats * (seconds + 2.5) / 60:.0f} min)",
        flush=True,
    )
    data = run_e2e(configs, repeats, seconds, args.e2e_backlog, verbose=args.verbose)
    print(report(data))
    if not args.no_plots:
        try:
            from bench import plots
        except ImportError as e:
            print(f"no plots: {e} (pip install -e '.[bench]')")
        else:
            for path in plots.draw(data, Path(args.plots)):
                print(f"plot: {path}")
    for failure in data["failures"]:
        print(f"FAILED {failure}")
    return (1 if data["failures"] else 0), data
