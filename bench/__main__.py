"""``python -m bench``: run the benchmark suites and print their results as markdown tables.

Suites are registered in :data:`SUITES`; each contributes its own options and a ``run(args)``
that returns ``(exit code, results)``. Without ``--suite`` the default suites run, side by side in
one run: core, memory and e2e (a real server and the load generator; it also draws the plots).
``--json PATH`` also writes every suite's results, with the machine description.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench import core, e2e, harness, memory


@dataclass(frozen=True)
class Suite:
    """One benchmark suite: its options, its entry point, and whether it runs by default."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], tuple[int, dict[str, Any]]]
    default: bool = True


SUITES: dict[str, Suite] = {
    "core": Suite(
        "OrderBook.apply on the standard workload, side by side with the peers; per-op latency",
        core.add_arguments,
        core.run,
    ),
    "memory": Suite(
        "bytes per resting order and the time to add 1,000,000 of them",
        memory.add_arguments,
        memory.run,
    ),
    "e2e": Suite(
        "a server subprocess under the load generator: throughput, order/BBO/trade latency, plots",
        e2e.add_arguments,
        e2e.run,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser: the common options and every suite's own."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="TradingApp benchmarks. Suites: "
        + "; ".join(f"{name}: {suite.help}" for name, suite in SUITES.items()),
    )
    parser.add_argument(
        "--suite",
        action="append",
        choices=sorted(SUITES),
        help="suite to run (repeatable); default: " + ", ".join(n for n, s in SUITES.items() if s.default),
    )
    parser.add_argument("--quick", action="store_true", help="one timed run, smaller sizes: a smoke run")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs per engine and gc mode")
    parser.add_argument(
        "--clock",
        choices=sorted(harness.CLOCKS),
        default="wall",
        help="time runs by wall clock (default) or by this process's CPU time (for a shared machine)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every timed run")
    for suite in SUITES.values():
        suite.add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the chosen suites; return non-zero when any of them failed (a MISMATCH)."""
    args = build_parser().parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        raise SystemExit("--repeat must be at least 1")
    harness.set_clock(args.clock)
    names = args.suite or [name for name, suite in SUITES.items() if suite.default]
    machine = harness.machine_info()
    print(
        f"machine: {machine['cpus']} CPUs, {machine['cpu_model']}, {machine['ram']} RAM; "
        f"{machine['python']}; {machine['os']}; git {machine['git']}; clock {args.clock}"
    )
    status = 0
    results: dict[str, Any] = {"machine": machine, "clock": args.clock}
    for name in names:
        print(f"\n== {name} ==")
        code, data = SUITES[name].run(args)
        results[name] = data
        status = status or code
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return status


if __name__ == "__main__":
    sys.exit(main())
