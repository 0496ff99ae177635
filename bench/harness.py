"""Timing rounds for side-by-side replays, and the small statistics the reports use.

An :class:`Engine` turns the workload into its own input once, before any timing (``prepare``),
and then replays it on a fresh book as often as asked (``replay``), timing only the replay loop.
:func:`run_rounds` interleaves the engines (A, B, C, A, B, C, ...) so that the machine's slow and
fast phases fall on all of them alike, runs every engine once untimed first (warm-up), collects
the heap before every run, and times each run with the cyclic garbage collector enabled and
again with it disabled.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.workload import REPO_ROOT, Op, Outcome

#: The clocks a run can be timed with: wall time (the default) or this process's CPU time, which
#: other processes competing for the cores disturb less (it still counts cache and gc effects).
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = ["wall"]


def set_clock(name: str) -> None:
    """Choose the clock every timed loop uses from now on (``wall`` or ``cpu``)."""
    if name not in CLOCKS:
        raise ValueError(f"unknown clock {name!r}; choose from {sorted(CLOCKS)}")
    _clock[0] = name


def clock_name() -> str:
    """Return the name of the clock timed loops use."""
    return _clock[0]


def timer() -> Callable[[], float]:
    """Return the clock timed loops use (seconds as a float)."""
    return CLOCKS[_clock[0]]


@dataclass
class Engine:
    """One engine under test.

    ``prepare(ops)`` converts the workload to the engine's own inputs (untimed);
    ``replay(prepared)`` builds a fresh book, runs the inputs through it and returns the seconds
    the loop took together with the outcome (the final state is read after the clock stops).
    """

    name: str
    prepare: Callable[[list[Op]], Any]
    replay: Callable[[Any], tuple[float, Outcome]]
    note: str = ""
    verified: bool = True  # False: the variant does not collect fills, so its outcome is not checked
    role: str = "pypi"  # "ours", "floor" (the minimal book) or "pypi" (a published engine)


@dataclass
class Timings:
    """Seconds per run for one engine and one gc mode."""

    seconds: list[float] = field(default_factory=list)

    def ops_per_second(self, n_ops: int) -> list[float]:
        """Return the throughput of every run."""
        return [n_ops / s for s in self.seconds]

    def summary(self, n_ops: int) -> dict[str, float]:
        """Return median, min and max ops/s and the spread ``(max - min) / median``."""
        rates = self.ops_per_second(n_ops)
        median = statistics.median(rates)
        return {
            "median": median,
            "min": min(rates),
            "max": max(rates),
            "spread": (max(rates) - min(rates)) / median,
            "us_per_op": 1e6 / median,
            "runs": len(rates),
        }


@dataclass
class EngineResult:
    """Everything measured for one engine in one side-by-side run."""

    engine: Engine
    outcome: Outcome | None = None
    gc_on: Timings = field(default_factory=Timings)
    gc_off: Timings = field(default_factory=Timings)
    error: str = ""


def timed_run(engine: Engine, prepared: Any, gc_enabled: bool) -> tuple[float, Outcome]:
    """Run one replay on a clean heap with the cyclic gc on or off; return ``(seconds, outcome)``."""
    gc.collect()
    was_enabled = gc.isenabled()
    if not gc_enabled:
        gc.disable()
    try:
        return engine.replay(prepared)
    finally:
        if was_enabled:
            gc.enable()


def run_rounds(
    engines: Sequence[Engine],
    ops: list[Op],
    repeats: int,
    gc_modes: Sequence[bool] = (True, False),
    progress: Callable[[str], None] | None = None,
) -> list[EngineResult]:
    """Prepare every engine, warm each up once, then time ``repeats`` interleaved rounds.

    The first outcome of each engine is kept; a later run that disagrees with it is recorded as
    an error (an engine must be deterministic to be measured).
    """
    results: list[EngineResult] = []
    prepared: list[Any] = []
    for engine in engines:
        result = EngineResult(engine)
        try:
            prepared.append(engine.prepare(ops))
            _, result.outcome = timed_run(engine, prepared[-1], True)  # warm-up, untimed
        except Exception as e:  # an engine that cannot run is reported, not fatal for the others
            prepared.append(None)
            result.error = f"{type(e).__name__}: {e}"
        results.append(result)
    for round_no in range(repeats):
        for gc_enabled in gc_modes:
            for result, data in zip(results, prepared, strict=True):
                if result.error:
                    continue
                seconds, outcome = timed_run(result.engine, data, gc_enabled)
                if outcome != result.outcome:
                    result.error = f"non-deterministic: run {round_no + 1} produced {outcome}"
                    continue
                (result.gc_on if gc_enabled else result.gc_off).seconds.append(seconds)
                if progress is not None:
                    progress(
                        f"  round {round_no + 1}/{repeats} gc {'on ' if gc_enabled else 'off'} "
                        f"{result.engine.name:<28} {len(ops) / seconds:>10,.0f} ops/s"
                    )
    return results


def paired_ratios(ours: Timings, theirs: Timings) -> list[float]:
    """Return per-round throughput ratios ours/theirs (runs of the same round are neighbours)."""
    return [t / o for o, t in zip(ours.seconds, theirs.seconds, strict=False)]


def percentile(sorted_values: Sequence[int | float], q: float) -> float:
    """Return the ``q``-th percentile (0..100) of already sorted values, nearest-rank method."""
    if not sorted_values:
        return math.nan
    rank = math.ceil(q / 100 * len(sorted_values))
    return float(sorted_values[min(max(rank, 1), len(sorted_values)) - 1])


def timer_overhead_ns(samples: int = 100_000) -> float:
    """Return the median cost of one ``perf_counter_ns()`` pair, in nanoseconds."""
    pc = time.perf_counter_ns
    costs = []
    for _ in range(samples):
        t0 = pc()
        costs.append(pc() - t0)
    return statistics.median(costs)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a GitHub-flavoured markdown table (right-aligned but for the first column)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        return "| " + " | ".join(parts) + " |"

    rule = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]]) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


def machine_info() -> dict[str, str]:
    """Return what a result needs to be read later: CPU, cores, RAM, Python, OS, git revision."""
    info = {
        "cpus": str(os.cpu_count()),
        "cpu_model": platform.processor() or platform.machine(),
        "ram": "?",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": platform.platform(),
        "git": "?",
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            info["ram"] = f"{kib / 2**20:.1f} GiB"
    except OSError:
        pass
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
        info["git"] = rev or "?"
    except (OSError, subprocess.SubprocessError):
        pass
    info["executable"] = sys.executable
    return info
