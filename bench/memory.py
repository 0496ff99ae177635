"""Memory per resting order, and the time to add them: a million non-crossing limit orders.

Method
    Bids rest on ``levels`` prices below the mid and asks on as many above it, so nothing
    trades; accounts are drawn from 1..1000 and quantities from 1..100 with a fixed seed. The
    account objects are built once and shared (as a session's account object would be), while
    every order id is a new int, as it is in the server.

    Bytes: ``tracemalloc`` traces from before the commands are built until the book holds every
    order; then the commands and the returned events are dropped and the heap collected, and
    what is still allocated is the book's: orders, their ids, the id index, levels and the
    sorted containers. Divided by the number of orders, that is the cost of one resting order.
    Time: separate, untraced runs time the ``apply`` loop alone (the commands are built
    beforehand), once with the cyclic gc enabled (the default) and once with it disabled.

    The minimal book of :mod:`bench.minimal_book` is measured the same way, for scale.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from bench import harness
from bench.core import apply_all
from bench.harness import table
from bench.minimal_book import MinimalBook
from tradingapp.engine.commands import NewOrder
from tradingapp.engine.orders import Order
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

DEFAULT_ORDERS = 1_000_000
QUICK_ORDERS = 100_000
DEFAULT_LEVELS = 10_000  # per side
TARGET_BYTES = 300
MID = 1_000_000
ACCOUNTS = list(range(1, 1001))


def resting_flow(n: int, levels: int, seed: int = 7) -> Iterator[tuple[int, bool, int, int, int]]:
    """Yield ``(order_id, is_buy, price, qty, account)`` for ``n`` orders that never cross."""
    rng = random.Random(seed)
    rand = rng.random
    randint = rng.randint
    for oid in range(1, n + 1):
        is_buy = rand() < 0.5
        offset = randint(1, levels)
        price = MID - offset if is_buy else MID + offset
        yield oid, is_buy, price, randint(1, 100), ACCOUNTS[randint(0, 999)]


def _ours_commands(n: int, levels: int) -> list[NewOrder]:
    limit, stp, buy, sell = OrderType.LIMIT, SelfTradePrevention.NONE, Side.BUY, Side.SELL
    return [
        NewOrder(oid, acct, buy if is_buy else sell, limit, qty, price=price, stp=stp)
        for oid, is_buy, price, qty, acct in resting_flow(n, levels)
    ]


def _minimal_commands(n: int, levels: int) -> list[tuple[int, bool, int, int]]:
    return [(oid, is_buy, price, qty) for oid, is_buy, price, qty, _ in resting_flow(n, levels)]


def _minimal_fill(commands: list[tuple[int, bool, int, int]]) -> tuple[MinimalBook, float]:
    book = MinimalBook()
    submit = book.submit
    clock = harness.timer()
    t0 = clock()
    for oid, is_buy, price, qty in commands:
        submit(oid, is_buy, price, qty, True)
    return book, clock() - t0


def measure(
    build: Callable[[int, int], list[Any]],
    fill: Callable[[list[Any]], tuple[Any, float]],
    n: int,
    levels: int,
) -> dict[str, Any]:
    """Return bytes per resting order (traced) and the time to add them (untraced) for one book."""
    gc.collect()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    commands = build(n, levels)
    book, _ = fill(commands)
    del commands
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    if len(book) != n:
        raise AssertionError(f"expected {n} resting orders, the book holds {len(book)}")
    book_bytes = current - base
    del book
    gc.collect()

    seconds = {}
    for gc_enabled in (True, False):
        commands = build(n, levels)
        gc.collect()
        if not gc_enabled:
            gc.disable()
        try:
            book, seconds[gc_enabled] = fill(commands)
        finally:
            gc.enable()
        del book, commands
        gc.collect()
    return {
        "orders": n,
        "levels": 2 * levels,
        "book_bytes": book_bytes,
        "bytes_per_order": book_bytes / n,
        "peak_bytes_with_commands": peak - base,
        "add_seconds": seconds[True],
        "adds_per_second": n / seconds[True],
        "add_seconds_gc_off": seconds[False],
    }


def order_breakdown() -> dict[str, int]:
    """Return the fixed per-order parts of our book, in bytes, for reading the total."""
    order = Order(10**6, ACCOUNTS[500], Side.BUY, OrderType.LIMIT, MID - 1, 5)
    return {
        "Order object (18 slots, gc header included)": sys.getsizeof(order),
        "order id int": sys.getsizeof(10**6),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the memory suite's options."""
    group = parser.add_argument_group("memory suite")
    group.add_argument(
        "--orders", type=int, default=None, help=f"resting orders (default {DEFAULT_ORDERS:,})"
    )
    group.add_argument("--levels", type=int, default=DEFAULT_LEVELS, help="price levels per side")
    group.add_argument("--no-minimal", action="store_true", help="skip the minimal book's measurement")


def report(data: dict[str, Any]) -> str:
    """Return the memory results as a markdown table."""
    rows = []
    for name, r in data["books"].items():
        rows.append(
            [
                name,
                f"{r['orders']:,}",
                f"{r['levels']:,}",
                f"{r['bytes_per_order']:.0f}",
                f"{r['book_bytes'] / 2**20:,.0f} MiB",
                f"{r['add_seconds']:.2f} s",
                f"{r['adds_per_second']:,.0f}",
                f"{r['add_seconds_gc_off']:.2f} s",
            ]
        )
    lines = [
        table(
            [
                "book",
                "resting orders",
                "levels",
                "B/order",
                "book total",
                "time to add",
                "adds/s",
                "time to add, gc off",
            ],
            rows,
        ),
        "",
        "Fixed parts of one of our resting orders: "
        + "; ".join(f"{k}: {v} B" for k, v in data["breakdown"].items()),
    ]
    ours = data["books"]["tradingapp OrderBook"]["bytes_per_order"]
    verdict = "met" if ours <= TARGET_BYTES else "MISSED"
    lines.append(f"Target <= {TARGET_BYTES} B per resting order: {verdict} ({ours:.0f} B).")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Run the memory suite from parsed command-line options; return ``(exit code, results)``."""
    n = args.orders if args.orders is not None else (QUICK_ORDERS if args.quick else DEFAULT_ORDERS)
    print(f"memory: {n:,} resting limit orders on {2 * args.levels:,} price levels")
    books = {"tradingapp OrderBook": measure(_ours_commands, apply_all, n, args.levels)}
    if not args.no_minimal:
        books["minimal book (bench/)"] = measure(_minimal_commands, _minimal_fill, n, args.levels)
    data = {"books": books, "breakdown": order_breakdown(), "target_bytes": TARGET_BYTES}
    print()
    print(report(data))
    return 0, data
