"""The in-process core benchmark: ``OrderBook.apply`` on the standard workload, side by side.

Method
    The workload is converted to engine commands before any timing (tick 1, lot 1, STP off; a
    cancel names the account from its target order's own line, since the file's cancel ``acct``
    is not the owner). Each run builds a fresh :class:`OrderBook` and times the loop that applies
    every command and collects the fills ``(taker_id, maker_id, price, qty)`` from its ``Trade``
    events; the outcome (fills, volume, resting orders, best bid and ask, fill digest) must equal
    the expected file's, or the run prints MISMATCH and the suite exits non-zero. The peers
    (:mod:`bench.peers`) replay the same workload interleaved with ours, so a ratio is only
    ever taken between runs of the same moment. Every engine is warmed up once, then timed
    ``repeats`` times with the cyclic gc enabled and as often with it disabled; medians are
    reported with the spread (max - min) / median.

    A separate pass times each ``apply`` alone with ``perf_counter_ns`` and reports latency
    percentiles per operation type (a limit order is "crossing" when it traded on arrival).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import time
from collections.abc import Sequence
from typing import Any

from bench import harness
from bench.harness import Engine, EngineResult, percentile, table
from bench.peers import peer_engines
from bench.workload import Fill, Op, Outcome, load_workload, op_counts
from tradingapp.engine.book import OrderBook
from tradingapp.engine.commands import Cancel, Command, NewOrder
from tradingapp.engine.events import Trade
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

#: Tick 1 and lot 1, so the workload's integers are the engine's ticks and lots unchanged.
SPEC = SymbolSpec.create("BENCH-USD", "BENCH", "USD", "1", "1")

_ORDER_TYPES = {
    "limit": OrderType.LIMIT,
    "ioc": OrderType.IOC,
    "market": OrderType.MARKET,
    "fok": OrderType.FOK,
}
_SIDES = {"buy": Side.BUY, "sell": Side.SELL}

DEFAULT_REPEATS = 5
QUICK_REPEATS = 1

# -- our engine ---------------------------------------------------------------------------------


def to_commands(ops: list[Op]) -> list[Command]:
    """Convert workload operations to book commands (untimed; STP off, owner's account on cancels)."""
    owner: dict[int, Any] = {}
    commands: list[Command] = []
    stp = SelfTradePrevention.NONE
    for op in ops:
        kind = op["op"]
        oid = op["id"]
        if kind == "cancel":
            commands.append(Cancel(oid, owner[oid]))
            continue
        order_type = _ORDER_TYPES[kind]
        price = None if order_type is OrderType.MARKET else op["price"]
        owner[oid] = op["acct"]
        commands.append(
            NewOrder(oid, op["acct"], _SIDES[op["side"]], order_type, op["qty"], price=price, stp=stp)
        )
    return commands


def _outcome(book: OrderBook, fills: list[Fill]) -> Outcome:
    bid, _, ask, _ = book.bbo()
    return Outcome.build(fills, len(book), bid, ask)


def replay_ours(commands: list[Command]) -> tuple[float, Outcome]:
    """Apply every command to a fresh book, collecting fills; return ``(seconds, outcome)``."""
    book = OrderBook(SPEC)
    apply = book.apply
    fills: list[Fill] = []
    append = fills.append
    clock = harness.timer()
    t0 = clock()
    for command in commands:
        for event in apply(command):
            if type(event) is Trade:
                append((event.taker.order_id, event.maker.order_id, event.price, event.quantity))
    seconds = clock() - t0
    return seconds, _outcome(book, fills)


def apply_all(commands: Sequence[Command]) -> tuple[OrderBook, float]:
    """Apply every command to a fresh book, dropping the events; return the book and the seconds."""
    book = OrderBook(SPEC)
    apply = book.apply
    clock = harness.timer()
    t0 = clock()
    for command in commands:
        apply(command)
    return book, clock() - t0


def replay_ours_apply_only(commands: list[Command]) -> tuple[float, Outcome]:
    """Apply every command to a fresh book and drop the events (no fill collection)."""
    book, seconds = apply_all(commands)
    return seconds, _outcome(book, [])


OURS = Engine(
    name="tradingapp OrderBook",
    prepare=to_commands,
    replay=replay_ours,
    note="apply() + fills collected from Trade events",
    role="ours",
)
OURS_APPLY_ONLY = Engine(
    name="tradingapp, events dropped",
    prepare=to_commands,
    replay=replay_ours_apply_only,
    note="apply() only; not digest-checked",
    verified=False,
    role="ours",
)

# -- latency ------------------------------------------------------------------------------------

LATENCY_KINDS = ("limit passive", "limit crossing", "ioc", "market", "fok", "cancel")


class GcPauses:
    """Record how long each cyclic-gc collection takes, per generation, while installed."""

    def __init__(self) -> None:
        self.ms: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.ms[info["generation"]].append((time.perf_counter() - self._started) * 1e3)

    def summary(self) -> dict[str, Any]:
        """Return count, total and longest pause (ms) per generation."""
        return {
            f"gen{g}": {"count": len(v), "total_ms": sum(v), "max_ms": max(v, default=0.0)}
            for g, v in self.ms.items()
        }


def latency_pass(
    ops: list[Op], commands: list[Command], gc_enabled: bool = True
) -> tuple[dict[str, list[int]], Outcome, GcPauses]:
    """Time every ``apply`` alone on a fresh book; return ns per kind, the outcome, the gc pauses."""
    book = OrderBook(SPEC)
    apply = book.apply
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {kind: [] for kind in LATENCY_KINDS}
    fills: list[Fill] = []
    pauses = GcPauses()
    gc.collect()
    gc.callbacks.append(pauses)
    if not gc_enabled:
        gc.disable()
    try:
        for op, command in zip(ops, commands, strict=True):
            t0 = clock()
            events = apply(command)
            elapsed = clock() - t0
            traded = False
            for event in events:
                if type(event) is Trade:
                    fills.append((event.taker.order_id, event.maker.order_id, event.price, event.quantity))
                    traded = True
            kind = op["op"]
            if kind == "limit":
                kind = "limit crossing" if traded else "limit passive"
            samples[kind].append(elapsed)
    finally:
        gc.enable()
        gc.callbacks.remove(pauses)
    return samples, _outcome(book, fills), pauses


def latency_rows(samples: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Return count, mean and p50/p90/p99/p99.9/max (microseconds) per kind, and for all ops."""
    rows = []
    everything: list[int] = []
    for kind in LATENCY_KINDS:
        if samples[kind]:
            everything.extend(samples[kind])
    for kind, values in [*samples.items(), ("all", everything)]:
        if not values:
            continue
        ordered = sorted(values)
        row: dict[str, Any] = {"kind": kind, "count": len(ordered), "mean": sum(ordered) / len(ordered) / 1e3}
        for label, q in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)):
            row[label] = percentile(ordered, q) / 1e3
        row["max"] = ordered[-1] / 1e3
        rows.append(row)
    return rows


# -- profile ------------------------------------------------------------------------------------


def profile_ours(commands: list[Command], top: int = 20) -> str:
    """Return cProfile's top functions by own time for one replay (deterministic profiling
    inflates call-heavy code, so read it for the ranking, not the absolute times)."""
    profiler = cProfile.Profile()
    profiler.enable()
    replay_ours(commands)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


# -- the suite ----------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the core suite's options."""
    group = parser.add_argument_group("core suite")
    group.add_argument("--workload", help="workload file (default: $TRADINGAPP_WORKLOAD or ../shared/bench/)")
    group.add_argument("--limit", type=int, default=None, help="use only the first N operations")
    group.add_argument("--no-peers", action="store_true", help="measure our engine only")
    group.add_argument("--no-latency", action="store_true", help="skip the per-operation latency pass")
    group.add_argument("--profile", action="store_true", help="also print a cProfile of one replay")


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _mismatch(name: str, problems: list[str]) -> None:
    bar = "!" * 78
    print(bar)
    print(f"MISMATCH: {name} does not produce the expected result")
    for problem in problems:
        print(f"  {problem}")
    print(bar)


def check_outcomes(results: list[EngineResult], expected: dict[str, Any] | None) -> list[str]:
    """Compare every verified engine with the expected values and with our engine; return failures."""
    failures = []
    reference = results[0].outcome
    for result in results:
        name = result.engine.name
        if result.error:
            if result.engine is OURS:
                failures.append(f"{name}: {result.error}")
            continue
        if not result.engine.verified or result.outcome is None:
            continue
        problems = result.outcome.differences(expected) if expected is not None else []
        if reference is not None and result is not results[0]:
            against = result.outcome.differences(reference.as_dict())
            problems += [f"vs {results[0].engine.name}: {p}" for p in against]
        if problems:
            _mismatch(name, problems)
            failures.append(name)
    return failures


def run_core(
    ops: list[Op],
    expected: dict[str, Any] | None,
    *,
    repeats: int = DEFAULT_REPEATS,
    peers: bool = True,
    latency: bool = True,
    apply_only: bool = True,
    gc_modes: tuple[bool, ...] = (True, False),
    progress: Any = None,
) -> dict[str, Any]:
    """Measure our engine (and the peers) on ``ops``; return the results as plain data.

    ``results["failures"]`` lists every engine whose outcome disagreed; empty means all is well.
    """
    engines = [OURS]
    notes: list[str] = []
    if apply_only:
        engines.append(OURS_APPLY_ONLY)
    if peers:
        others, notes = peer_engines()
        engines += others
    results = harness.run_rounds(engines, ops, repeats, gc_modes, progress)
    n = len(ops)
    ours = results[0]
    failures = check_outcomes(results, expected)
    rows = []
    for result in results:
        row: dict[str, Any] = {
            "engine": result.engine.name,
            "note": result.engine.note,
            "role": result.engine.role,
        }
        if result.error:
            row["error"] = result.error
        if result.gc_on.seconds:
            row["gc_on"] = result.gc_on.summary(n)
            if ours.gc_on.seconds and result.engine.verified and result is not ours:
                row["ours_ratio"] = ours.gc_on.summary(n)["median"] / row["gc_on"]["median"]
                row["ours_ratio_paired"] = harness.paired_ratios(ours.gc_on, result.gc_on)
        if result.gc_off.seconds:
            row["gc_off"] = result.gc_off.summary(n)
        if result.outcome is not None:
            row["outcome"] = result.outcome.as_dict()
        rows.append(row)
    data: dict[str, Any] = {
        "ops": n,
        "op_counts": op_counts(ops),
        "repeats": repeats,
        "clock": harness.clock_name(),
        "engines": rows,
    }
    data["notes"] = notes
    if latency and not failures:
        commands = to_commands(ops)
        samples, outcome, pauses = latency_pass(ops, commands, gc_enabled=True)
        samples_off, outcome_off, _ = latency_pass(ops, commands, gc_enabled=False)
        for label, got in (("latency pass", outcome), ("latency pass, gc off", outcome_off)):
            if ours.outcome is not None and got != ours.outcome:
                failures.append(label)
                _mismatch(f"the {label}", got.differences(ours.outcome.as_dict()))
        data["latency_us"] = latency_rows(samples)
        data["latency_us_gc_off"] = latency_rows(samples_off)
        data["gc_pauses"] = pauses.summary()
        data["timer_overhead_ns"] = harness.timer_overhead_ns()
    data["failures"] = failures
    return data


def report(data: dict[str, Any]) -> str:
    """Return the core results as markdown tables."""
    lines = []
    headers = [
        "engine",
        "ops/s median (gc on)",
        "spread",
        "µs/op",
        "ops/s median (gc off)",
        "gc off gain",
        "ours ÷ engine",
    ]
    rows = []
    for row in data["engines"]:
        if "gc_on" not in row:
            rows.append([row["engine"], row.get("error", "did not run"), "", "", "", "", ""])
            continue
        on = row["gc_on"]
        off = row.get("gc_off")
        ratio = row.get("ours_ratio")
        paired = row.get("ours_ratio_paired") or []
        ratio_text = "-" if ratio is None else f"{ratio:.2f}"
        if len(paired) > 1:
            ratio_text += f" ({min(paired):.2f}-{max(paired):.2f})"
        rows.append(
            [
                row["engine"],
                _fmt_rate(on["median"]),
                f"{on['spread']:.0%}",
                f"{on['us_per_op']:.2f}",
                _fmt_rate(off["median"]) if off else "-",
                f"{off['median'] / on['median'] - 1:+.0%}" if off else "-",
                ratio_text,
            ]
        )
    lines.append(table(headers, rows))
    lines.append("")
    lines.append(
        f"{data['ops']:,} ops, {data['repeats']} timed runs per engine and gc mode, interleaved, "
        f"{data['clock']} clock; ratios are of the gc-on medians (range: per round)."
    )
    for row in data["engines"]:
        if row.get("note"):
            lines.append(f"- {row['engine']}: {row['note']}")
    for note in data.get("notes", []):
        lines.append(f"- {note}")
    lines += ["", *targets(data)]
    if "latency_us" in data:
        lines.append("")
        lines.append(
            f"Latency of one `apply` in µs on a fresh book, gc on (the last two columns: the same pass "
            f"with gc off); timer pair overhead {data['timer_overhead_ns']:.0f} ns included:"
        )
        lines.append("")
        off = {r["kind"]: r for r in data.get("latency_us_gc_off", [])}
        lat_rows = []
        for r in data["latency_us"]:
            o = off.get(r["kind"])
            lat_rows.append(
                [
                    r["kind"],
                    f"{r['count']:,}",
                    f"{r['mean']:.2f}",
                    f"{r['p50']:.2f}",
                    f"{r['p90']:.2f}",
                    f"{r['p99']:.2f}",
                    f"{r['p99.9']:.1f}",
                    f"{r['max']:,.0f}",
                    f"{o['p99.9']:.1f}" if o else "-",
                    f"{o['max']:,.0f}" if o else "-",
                ]
            )
        headers = ["operation", "count", "mean", "p50", "p90", "p99", "p99.9", "max"]
        headers += ["p99.9 gc off", "max gc off"]
        lines.append(table(headers, lat_rows))
        pauses = data.get("gc_pauses")
        if pauses:
            lines.append("")
            lines.append(
                "Cyclic gc during the gc-on pass: "
                + "; ".join(
                    f"{g}: {p['count']} collections, {p['total_ms']:.0f} ms in all, "
                    f"longest {p['max_ms']:.1f} ms"
                    for g, p in pauses.items()
                )
            )
    return "\n".join(lines)


#: The issue's throughput targets: at least the minimal book, and 2.5x the fastest PyPI engine.
FLOOR_TARGET = 1.0
PYPI_TARGET = 2.5


def targets(data: dict[str, Any]) -> list[str]:
    """Return one line per throughput target: met or missed, and by how much."""
    lines = []
    for role, goal, what in (
        ("floor", FLOOR_TARGET, "the minimal book"),
        ("pypi", PYPI_TARGET, "the fastest pure-Python PyPI engine"),
    ):
        rows = [r for r in data["engines"] if r["role"] == role and "ours_ratio" in r]
        if not rows:
            continue
        best = min(rows, key=lambda r: r["ours_ratio"])  # the fastest peer gives the lowest ratio
        ratio = best["ours_ratio"]
        verdict = "met" if ratio >= goal else f"MISSED (needs {goal / ratio:.2f}x our current speed)"
        lines.append(
            f"Target: at least {goal:g}x {what} ({best['engine']}): ours is {ratio:.2f}x, {verdict}."
        )
    return lines


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Run the core suite from parsed command-line options; return ``(exit code, results)``."""
    ops, expected, label = load_workload(args.workload, args.limit)
    repeats = args.repeat if args.repeat is not None else (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    print(f"workload: {label}; {len(ops):,} ops {op_counts(ops)}")
    if expected is None:
        print("no expected results for this workload: engines are checked against each other only")
    data = run_core(
        ops,
        expected,
        repeats=repeats,
        peers=not args.no_peers,
        latency=not args.no_latency,
        progress=print if args.verbose else None,
    )
    data["workload"] = label
    data["expected"] = expected
    print()
    print(report(data))
    if args.profile:
        print()
        print(profile_ours(to_commands(ops)))
    if data["failures"]:
        print(f"\nMISMATCH in: {', '.join(data['failures'])}")
        return 1, data
    checked = "the expected results" if expected is not None else "each other"
    print(f"\nall digest-checked engines agree with {checked}: {data['engines'][0]['outcome']['digest']}")
    return 0, data
