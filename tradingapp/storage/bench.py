"""Measure the journal on this machine: ``python -m tradingapp.storage.bench [--dir DIR]``.

Reports fsync latency, the cost of ``append`` alone, group-commit throughput for 100-byte
payloads under each fsync mode, and the append-to-release latency at a steady offered rate.
Use a directory on the disk that will hold the data (not tmpfs).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from tradingapp.storage.writer import JournalWriter

PAYLOAD = bytes(range(100))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fsync_latency(directory: Path, n: int, size: int, sync: str) -> list[float]:
    path = directory / f"fsync-{sync}-{size}.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    call = os.fdatasync if sync == "fdatasync" else os.fsync
    data = bytes(size)
    out = []
    try:
        for _ in range(n):
            os.write(fd, data)
            start = time.perf_counter()
            call(fd)
            out.append(time.perf_counter() - start)
    finally:
        os.close(fd)
        path.unlink()
    return out


def append_cost(directory: Path, n: int) -> float:
    writer = JournalWriter(directory / "append-only", 1, fsync="off")  # no loop: nothing is flushed
    ts = time.time_ns()
    start = time.perf_counter()
    for _ in range(n):
        writer.append(ts, PAYLOAD)
    elapsed = time.perf_counter() - start
    writer.close()
    return elapsed / n


async def throughput(directory: Path, mode: str, n: int, per_iteration: int) -> tuple[float, JournalWriter]:
    writer = JournalWriter(directory / f"tput-{mode}-{per_iteration}", 1, fsync=mode)
    ts = time.time_ns()
    start = time.perf_counter()
    for i in range(n):
        writer.append(ts, PAYLOAD)
        if i % per_iteration == per_iteration - 1:
            if not writer.has_room:
                await writer.wait_for_room()
            await asyncio.sleep(0)
    await writer.wait_released(n)
    elapsed = time.perf_counter() - start
    writer.close()
    return n / elapsed, writer


async def ack_latency(directory: Path, mode: str, rate: int, seconds: float) -> list[float]:
    writer = JournalWriter(directory / f"lat-{mode}-{rate}", 1, fsync=mode)
    latencies: list[float] = []
    clock = time.perf_counter
    tick = 0.001
    per_tick = max(1, rate // 1000)
    start = clock()
    next_tick = start
    while clock() - start < seconds:
        for _ in range(per_tick):
            seq = writer.append(0, PAYLOAD)
            writer.hold(seq, lambda t0: latencies.append(clock() - t0), clock())
        next_tick += tick
        delay = next_tick - clock()
        await asyncio.sleep(max(0.0, delay))
    await writer.wait_released(writer.last_seq)
    writer.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", default=None, help="directory on the target disk (default: ./)")
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="journal-bench-", dir=args.dir or "."))
    try:
        for sync in ("fdatasync", "fsync"):
            for size in (128, 4096):
                lat = fsync_latency(base, 300, size, sync)
                print(
                    f"{sync:9s} after {size:4d} B write: p50 {pct(lat, 0.5) * 1e3:.3f} ms  "
                    f"p99 {pct(lat, 0.99) * 1e3:.3f} ms  mean {statistics.mean(lat) * 1e3:.3f} ms"
                )
        print(f"append() alone, 100 B payload: {append_cost(base, args.records) * 1e6:.2f} us")
        for mode, per_iteration in (("batch", 1), ("batch", 64), ("batch", 1024), ("off", 1024)):
            rate, writer = asyncio.run(throughput(base, mode, args.records, per_iteration))
            print(
                f"{mode:5s} {per_iteration:5d} appends per loop iteration: {rate:>9,.0f} records/s  "
                f"({writer.fsyncs} fsyncs, {args.records / max(1, writer.fsyncs):.0f} records per fsync)"
            )
        rate, writer = asyncio.run(throughput(base, "always", 2_000, 1))
        print(f"always: {rate:,.0f} records/s ({writer.fsyncs} fsyncs)")
        for offered in (10_000, 50_000, 100_000, 200_000):
            lat = asyncio.run(ack_latency(base, "batch", offered, 2.0))
            print(
                f"batch at {offered:,} records/s offered: append-to-release p50 "
                f"{pct(lat, 0.5) * 1e3:.2f} ms  p99 {pct(lat, 0.99) * 1e3:.2f} ms  "
                f"max {max(lat) * 1e3:.2f} ms"
            )
    finally:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
