"""Persistence benchmarks: the journal under each fsync setting, recovery time, snapshot cost.

``python -m bench.persistence`` runs every part; ``--part NAME`` (repeatable) picks some.

``fsync``
    A server subprocess per fsync setting (``always``, ``batch``, ``off``) on a fresh data
    directory, driven by a closed-loop client: each connection sends a passive limit order,
    waits for its ``new`` report, cancels it, waits for the ``canceled`` report, and so on (so
    the book stays small and every request is journaled: ``O``/``C``, ``B``, ``S``). Each load
    is ``CONNECTIONSxWINDOW``: ``1x1`` is one request in flight (pure latency), ``8x16`` keeps
    128 in flight (throughput). Latency is request sent -> its report received, on the client.
    Journal throughput is records (and bytes) the engine journaled per second of the timed
    window, counted from the journal itself after a clean stop.
``snapload``
    Periodic snapshots under sustained load: ``batch``, snapshot every 5,000 records, the
    ``8x16`` closed loop for ``--seconds``; counts the snapshots the engine managed to write.
``recovery``
    A journal of ``--orders`` (1,000,000) new orders plus the cancels of a mixed flow, written
    offline exactly as the actors write it (risk admits -> ``O``; the book applies -> ``B``; risk
    settles -> ``S``; cancels -> ``C``, ``B``, ``S``) with :class:`tradingapp.storage.JournalWriter`,
    then timed: the storage scan (``recover_journal``), reading and decoding every record, and
    the engine's whole recovery (``replay_journal``, no snapshot); then again with a snapshot
    taken at 90% of the orders (snapshot + the last 10%); then a real server's start on it.
    The built journal is kept under ``--dir`` and reused when its parameters match.
``restart``
    The engine as shipped: a server subprocess on the demo config (``batch``, periodic snapshots
    at their defaults) under ``tradingapp loadgen`` (8 connections, closed loop) until it has
    taken ``--orders`` new orders (plus the load generator's cancels), then ``SIGKILL``, then a
    restart on the same data directory: the time to its ``listening`` line and what its
    ``recovered`` log line says (seconds, records replayed after the snapshot).
``snapshot``
    A venue holding ``--resting`` (1,000,000) resting limit orders (entered through risk and the
    book, so holds exist too), then ``encode_snapshot``, ``write_snapshot`` (with its fsyncs),
    and loading it back (``read_snapshot`` + ``decode_snapshot`` into a fresh venue), whose state
    digest must equal the original's.

Results are printed as markdown tables; ``--json PATH`` writes them with the machine description.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from bench.harness import machine_info, percentile, table
from tradingapp.actors.messages import NewOrderRequest
from tradingapp.config import VenueConfig, parse_config
from tradingapp.engine.commands import Cancel
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side
from tradingapp.engine.venue import Venue
from tradingapp.persistence import records as rec
from tradingapp.persistence.store import decode_snapshot, encode_snapshot, replay_journal
from tradingapp.storage import (
    JournalWriter,
    read_snapshot,
    recover_journal,
    scan_journal,
    write_snapshot,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG_TEXT = (REPO_ROOT / "tradingapp" / "default_config.toml").read_text(encoding="utf-8")
PARTS = ("fsync", "snapload", "recovery", "restart", "snapshot")
FSYNC_MODES = ("always", "batch", "off")
RECOVERY_TARGET_SECONDS = 10.0

SERVER_SCRIPT = r"""
import sys
from pathlib import Path
from tradingapp import logs
from tradingapp.config import load_config
from tradingapp.server import run, serve
data_dir = Path(sys.argv[1])
logs.configure(data_dir, console=False)
sys.exit(run(serve(load_config(sys.argv[2] or None), "127.0.0.1", 0, data_dir, sys.argv[3])))
"""


def config_text(**replace: object) -> str:
    """The demo venue's TOML with some keys (by name, anywhere) replaced."""
    lines = DEFAULT_CONFIG_TEXT.splitlines()
    for key, value in replace.items():
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            raise KeyError(key)
    return "\n".join(lines) + "\n"


# -- a server subprocess and a closed-loop client ---------------------------------------------------


class Server:
    def __init__(self, data_dir: Path, config_path: Path, fsync: str) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER_SCRIPT, str(data_dir), str(config_path), fsync],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None
        while True:
            ready, _, _ = select.select([self.proc.stdout], [], [], 600)
            line = self.proc.stdout.readline() if ready else b""
            if line.startswith(b"listening on "):
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
        self.start_seconds = time.perf_counter() - started
        host, port = line.decode().split()[-1].rsplit(":", 1)
        self.host, self.port = host, int(port)

    def stop(self) -> int:
        os.kill(self.proc.pid, signal.SIGTERM)
        rc = self.proc.wait(120)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return rc

    def log_events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in (self.data_dir / "engine.log").read_text().splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if event.get("event") == name:
                    out.append(event)
        return out


def _frame(message: dict[str, Any]) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> dict[str, Any]:
    (length,) = struct.unpack(">I", await reader.readexactly(4))
    message: dict[str, Any] = msgpack.unpackb(await reader.readexactly(length), raw=False)
    return message


@dataclass
class LoopResult:
    requests: int
    seconds: float
    latencies_ns: list[int]


async def _connection(
    host: str, port: int, account: str, window: int, warmup_end: float, end: float, seed: int
) -> LoopResult:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(_frame({"type": "logon", "account": account, "api_key": f"{account}-key"}))
    assert (await _read_frame(reader))["type"] == "logon"
    rng = random.Random(seed)
    sent: dict[int, tuple[int, str, Any]] = {}  # request id -> (send time, kind, key)
    resting: list[int] = []
    latencies: list[int] = []
    counter = 0
    timed = 0
    loop = asyncio.get_running_loop()
    t_start = 0.0

    def send_next() -> None:
        nonlocal counter
        counter += 1
        if resting and (len(resting) >= window or rng.random() < 0.5):
            oid = resting.pop(0)
            msg = {"type": "cancel", "symbol": "BTC-USDT", "order_id": oid, "request_id": counter}
            sent[counter] = (time.perf_counter_ns(), "cancel", oid)
        else:
            side = rng.choice(("buy", "sell"))
            ticks = rng.randint(100, 5000)  # 1.00 to 50.00 away from the mid: never crosses
            price = 3_000_000 - ticks if side == "buy" else 3_000_000 + ticks
            cid = f"{account}-{counter}"
            msg = {
                "type": "new_order",
                "client_order_id": cid,
                "symbol": "BTC-USDT",
                "side": side,
                "order_type": "limit",
                "quantity": "0.001",
                "price": f"{price // 100}.{price % 100:02d}",
                "request_id": counter,
            }
            sent[counter] = (time.perf_counter_ns(), "new", cid)
        writer.write(_frame(msg))

    for _ in range(window):
        send_next()
    while True:
        message = await _read_frame(reader)
        rid = message.get("request_id")
        if rid is None or rid not in sent:
            continue
        t0, kind, key = sent[rid]
        if kind == "new" and message.get("client_order_id") != key:
            continue
        if kind == "cancel" and message.get("order_id") != key:
            continue
        del sent[rid]
        now = loop.time()
        if kind == "new" and message.get("order_status") == "new":
            resting.append(message["order_id"])
        if now >= warmup_end:
            if not t_start:
                t_start = time.perf_counter()
            latencies.append(time.perf_counter_ns() - t0)
            timed += 1
        if now >= end:
            break
        send_next()
    seconds = time.perf_counter() - t_start
    # drain what is still in flight, then leave
    while sent:
        message = await _read_frame(reader)
        rid = message.get("request_id")
        if isinstance(rid, int):
            sent.pop(rid, None)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()
    return LoopResult(timed, seconds, latencies)


async def closed_loop(
    server: Server, connections: int, window: int, seconds: float, warmup: float
) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(
        *(
            _connection(
                server.host, server.port, f"load{i + 1}", window, start + warmup, start + warmup + seconds, i
            )
            for i in range(connections)
        )
    )
    latencies = sorted(x for r in results for x in r.latencies_ns)
    requests = sum(r.requests for r in results)
    span = max(r.seconds for r in results)
    return {
        "requests": requests,
        "seconds": span,
        "requests_per_second": requests / span,
        "latency_us": {
            q: percentile(latencies, p) / 1000
            for q, p in (("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9), ("max", 100))
        },
    }


def journal_totals(data_dir: Path) -> tuple[int, int]:
    report = recover_journal(data_dir / "journal")
    return report.records, sum(s.size for s in report.segments)


def part_fsync(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    config_path = work / "fsync.toml"
    config_path.write_text(config_text())
    out: dict[str, Any] = {}
    for load in args.loads:
        connections, window = (int(x) for x in load.split("x"))
        for mode in args.modes:
            data_dir = work / f"fsync-{mode}-{load}"
            shutil.rmtree(data_dir, ignore_errors=True)
            server = Server(data_dir, config_path, mode)
            flow = asyncio.run(closed_loop(server, connections, window, args.seconds, args.warmup))
            rc = server.stop()
            records, size = journal_totals(data_dir)
            # the timed window's share of the journal: requests in it / all requests, x records
            total_requests = max(records // 3, 1)
            share = min(1.0, flow["requests"] / total_requests)
            flow["records"] = records
            flow["records_per_second"] = records * share / flow["seconds"]
            flow["journal_mib_per_second"] = size * share / flow["seconds"] / 2**20
            flow["exit_code"] = rc
            out[f"{mode} {load}"] = flow
            lat = flow["latency_us"]
            print(
                f"fsync {mode:6} load {load:5}: {flow['requests_per_second']:9,.0f} req/s, "
                f"{flow['records_per_second']:9,.0f} records/s, latency p50 {lat['p50']:7.0f} us "
                f"p99 {lat['p99']:7.0f} us p99.9 {lat['p99.9']:7.0f} us",
                flush=True,
            )
    return out


def part_snapload(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    config_path = work / "snapload.toml"
    config_path.write_text(config_text(snapshot_every_records=5000, snapshot_every_seconds=0))
    data_dir = work / "snapload"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = Server(data_dir, config_path, "batch")
    flow = asyncio.run(closed_loop(server, 8, 16, args.seconds, args.warmup))
    written_during_load = len(server.log_events("snapshot_written"))
    pauses = [e["pause_ms"] for e in server.log_events("snapshot_started")]
    rc = server.stop()
    records, _ = journal_totals(data_dir)
    result = {
        "records": records,
        "seconds": flow["seconds"] + args.warmup,
        "snapshots_due": records // 5000,
        "snapshots_written_under_load": written_during_load,
        "fork_pause_ms_max": max(pauses, default=None),
        "requests_per_second": flow["requests_per_second"],
        "exit_code": rc,
    }
    print(
        f"snapload: {records:,} records in {result['seconds']:.1f} s, snapshot every 5,000 records: "
        f"{written_during_load} written under load (about {records // 5000} due), "
        f"longest fork pause {max(pauses, default=0):.1f} ms",
        flush=True,
    )
    return result


# -- offline: a journal of N orders, and a venue of N resting orders --------------------------------


class JournalBuilder:
    """Applies a flow to a Venue and journals it exactly as the risk and book actors do."""

    def __init__(self, config: VenueConfig, journal_dir: Path) -> None:
        self.venue = Venue(config)
        self.writer = JournalWriter(journal_dir, 1, fsync="off")
        self.ts = 1_700_000_000_000_000_000
        self.steps = {
            s: (rec.step_record(rec.BOOK_STEP, s), rec.step_record(rec.SETTLE, s)) for s in self.venue.books
        }
        self.orders = 0

    def _run(self, command: Any) -> list[Any]:
        book_step, settle_step = self.steps[command.symbol]
        events = self.venue.books[command.symbol].apply(command)
        self.writer.append(command.timestamp, book_step)
        self.venue.risk.settle(events)
        self.writer.append(command.timestamp, settle_step)
        return events

    def new_order(self, request: NewOrderRequest) -> Any:
        self.ts += 1000
        command, held = self.venue.risk.admit(request, self.ts)
        self.writer.append(self.ts, rec.admit_record(command, held))
        self.orders += 1
        self._run(command)
        if self.writer.backlog_bytes > 8 << 20:
            self.writer.flush_now()
        return command

    def cancel(self, account: str, symbol: str, order_id: int) -> None:
        self.ts += 1000
        command = Cancel(order_id, account, None, self.ts, symbol)
        self.writer.append(self.ts, rec.cancel_record(command))
        self._run(command)


def mixed_flow(builder: JournalBuilder, orders: int, seed: int, on_progress: Any = None) -> int:
    """``orders`` new orders on BTC-USDT and ETH-USDT from load1..load8: 70% passive limits, 10%
    crossing limits, 10% IOC, 10% market; a resting order is cancelled with probability 0.3 per
    new order (oldest of a random account first) and whenever an account holds 4,000."""
    rng = random.Random(seed)
    accounts = [f"load{i}" for i in range(1, 9)]
    mids = {"BTC-USDT": 3_000_000, "ETH-USDT": 200_000}
    open_by_account: dict[str, list[tuple[str, int]]] = {a: [] for a in accounts}
    cancels = 0
    for n in range(orders):
        account = rng.choice(accounts)
        symbol = "BTC-USDT" if rng.random() < 0.6 else "ETH-USDT"
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = -1 if side is Side.BUY else 1
        r = rng.random()
        price: int | None
        if r < 0.7:
            otype, price = OrderType.LIMIT, mids[symbol] + sign * rng.randint(1, 60)
        elif r < 0.8:
            otype, price = OrderType.LIMIT, mids[symbol] - sign * rng.randint(0, 5)
        elif r < 0.9:
            otype, price = OrderType.IOC, mids[symbol] - sign * rng.randint(0, 10)
        else:
            otype, price = OrderType.MARKET, None
        request = NewOrderRequest(
            None,  # no session: nothing to reply to
            None,
            0,
            account,
            symbol,
            side,
            otype,
            rng.randint(1, 300),
            price,
            None,
            False,
            SelfTradePrevention.CANCEL_NEWEST,
            f"c{n}",
        )
        command = builder.new_order(request)
        if builder.venue.books[symbol].order(command.order_id) is not None and otype is OrderType.LIMIT:
            order = builder.venue.books[symbol].order(command.order_id)
            if order is not None and order.status.value in ("new", "partially_filled"):
                open_by_account[account].append((symbol, command.order_id))
        victim_account = rng.choice(accounts)
        queue = open_by_account[victim_account]
        while queue and (rng.random() < 0.3 or len(queue) > 4000):
            symbol_c, oid = queue.pop(0)
            order = builder.venue.books[symbol_c].order(oid)
            if order is not None and order.status.value in ("new", "partially_filled"):
                builder.cancel(victim_account, symbol_c, oid)
                cancels += 1
                break
        if on_progress is not None and (n + 1) % 100_000 == 0:
            on_progress(n + 1)
    return cancels


def timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    gc.collect()
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def part_recovery(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    config = parse_config(config_text(), "bench")
    base = work / f"recovery-{args.orders}-s{args.seed}"
    full_dir, snap_dir = base / "full", base / "with-snapshot"
    marker = base / "built.json"
    if not marker.exists():
        shutil.rmtree(base, ignore_errors=True)
        print(f"recovery: building a journal of {args.orders:,} orders in {base} ...", flush=True)
        builder = JournalBuilder(config, full_dir / "journal")
        snapshot_at = args.orders * 9 // 10
        started = time.perf_counter()
        cancels = mixed_flow(builder, snapshot_at, args.seed, lambda n: print(f"  {n:,} orders", flush=True))
        builder.writer.flush_now()
        seq = builder.writer.last_seq
        payload = encode_snapshot(builder.venue)
        write_snapshot(full_dir / "snapshots-later", seq, payload)  # for the second directory
        cancels += mixed_flow(builder, args.orders - snapshot_at, args.seed + 1)
        builder.writer.close()
        built = {
            "orders": builder.orders,
            "cancels": cancels,
            "records": builder.writer.last_seq,
            "snapshot_seq": seq,
            "digest": builder.venue.state_digest(),
            "build_seconds": time.perf_counter() - started,
            "resting_at_end": sum(len(b) for b in builder.venue.books.values()),
        }
        (full_dir / "snapshots").mkdir()
        snap_dir.mkdir(parents=True)
        shutil.copytree(full_dir / "journal", snap_dir / "journal")
        (full_dir / "snapshots-later").rename(snap_dir / "snapshots")
        (base / "venue.toml").write_text(config_text())
        marker.write_text(json.dumps(built))
    built = json.loads(marker.read_text())
    journal_bytes = sum(p.stat().st_size for p in (full_dir / "journal").iterdir())
    print(
        f"recovery: {built['orders']:,} orders + {built['cancels']:,} cancels = "
        f"{built['records']:,} records, {journal_bytes / 2**20:,.0f} MiB",
        flush=True,
    )
    report, t_scan = timed(recover_journal, full_dir / "journal")
    assert report.records == built["records"]

    def read_all() -> int:
        count = 0
        for record in scan_journal(full_dir / "journal", 0):
            rec.unpack(record.payload)
            count += 1
        return count

    count, t_read = timed(read_all)
    assert count == built["records"]
    (venue, replayer, _, _), t_full = timed(replay_journal, config, full_dir)
    assert not replayer.pending_steps() and venue.state_digest() == built["digest"], "replay differs"
    del venue, replayer
    (venue, replayer, _, snap_seq), t_snap = timed(replay_journal, config, snap_dir)
    assert snap_seq == built["snapshot_seq"] and venue.state_digest() == built["digest"]
    del venue, replayer
    server = Server(snap_dir, base / "venue.toml", "batch")
    recovered = server.log_events("recovered")[-1]
    server.stop()
    server_full = Server(full_dir, base / "venue.toml", "batch")
    recovered_full = server_full.log_events("recovered")[-1]
    server_full.stop()
    # the clean stops above wrote snapshots of the final state; remove them so that a rerun
    # measures the same thing (the idle starts journaled nothing)
    for d in (full_dir, snap_dir):
        for p in (d / "snapshots").iterdir():
            if p.suffix == ".snap" and int(p.stem.split("-")[1]) > built["snapshot_seq"]:
                p.unlink()
    result = {
        **built,
        "journal_mib": journal_bytes / 2**20,
        "scan_seconds": t_scan,
        "read_decode_seconds": t_read,
        "replay_seconds": t_full,
        "replay_records_per_second": built["records"] / t_full,
        "snapshot_plus_tail_seconds": t_snap,
        "server_start_seconds_full": server_full.start_seconds,
        "server_recovered_seconds_full": recovered_full["seconds"],
        "server_start_seconds_snapshot": server.start_seconds,
        "server_recovered_seconds_snapshot": recovered["seconds"],
        "target_seconds": RECOVERY_TARGET_SECONDS,
    }
    print(
        f"recovery: scan {t_scan:.2f} s, read+decode {t_read:.2f} s, full replay {t_full:.2f} s "
        f"({result['replay_records_per_second']:,.0f} records/s), snapshot + 10% tail {t_snap:.2f} s; "
        f"server start: full {server_full.start_seconds:.2f} s, with snapshot {server.start_seconds:.2f} s",
        flush=True,
    )
    return result


def part_restart(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    base = work / f"restart-{args.orders}-s{args.seed}"
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    config_path = base / "venue.toml"
    config_path.write_text(config_text())
    data_dir = base / "data"
    server = Server(data_dir, config_path, "batch")
    # the flow is ~57% new orders, so this many requests journal at least --orders of them
    count = args.orders * 2
    loadgen_json = base / "loadgen.json"
    print(f"restart: {count:,} requests through the load generator ...", flush=True)
    started = time.perf_counter()
    try:
        subprocess.run(
            [
                sys.executable, "-m", "tradingapp.cli", "loadgen", "--port", str(server.port),
                "--connections", "8", "--count", str(count), "--duration", "900", "--seed", str(args.seed),
                "--keep-orders", "--quiet", "--json", str(loadgen_json),
            ],
            check=True,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
        )
    except BaseException:
        server.stop()  # no server left behind when the load generator fails
        raise
    load_seconds = time.perf_counter() - started
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait(60)
    assert server.proc.stdout is not None
    server.proc.stdout.close()
    sent = json.loads(loadgen_json.read_text())["sent"]
    orders = sent["total"] - sent["cancel"]
    assert orders >= args.orders, f"only {orders:,} orders sent"
    restarted = Server(data_dir, config_path, "batch")
    recovered = restarted.log_events("recovered")[-1]
    restarted.stop()
    result = {
        "orders": orders,
        "cancels": sent["cancel"],
        "load_seconds": load_seconds,
        "start_seconds": restarted.start_seconds,
        "recovered_seconds": recovered["seconds"],
        "records_after_snapshot": recovered["records"],
        "next_seq": recovered["next_seq"],
        "target_seconds": RECOVERY_TARGET_SECONDS,
    }
    print(
        f"restart: {orders:,} orders + {sent['cancel']:,} cancels in {load_seconds:.0f} s, killed; "
        f"restart to listening {restarted.start_seconds:.2f} s (recovery {recovered['seconds']:.2f} s, "
        f"{recovered['records']:,} records replayed after the snapshot)",
        flush=True,
    )
    return result


def part_snapshot(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    n = args.resting
    per_account = n // 8 + 1
    config = parse_config(config_text(max_open_orders_per_account=per_account + 10), "bench")
    venue = Venue(config)
    rng = random.Random(args.seed)
    risk = venue.risk
    book = venue.books["BTC-USDT"]
    print(f"snapshot: entering {n:,} resting orders ...", flush=True)
    started = time.perf_counter()
    for i in range(n):
        side = Side.BUY if i % 2 else Side.SELL
        ticks = rng.randint(1, 10_000)
        price = 3_000_000 - ticks if side is Side.BUY else 3_000_000 + ticks
        request = NewOrderRequest(
            None,  # no session: nothing to reply to
            None,
            0,
            f"load{i % 8 + 1}",
            "BTC-USDT",
            side,
            OrderType.LIMIT,
            rng.randint(1, 100),
            price,
            None,
            False,
            SelfTradePrevention.NONE,
            f"r{i}",
        )
        command, _ = risk.admit(request, i)
        risk.settle(book.apply(command))
    build_seconds = time.perf_counter() - started
    assert len(book) == n
    digest = venue.state_digest()
    payload, t_encode = timed(encode_snapshot, venue)
    snap_dir = work / "snapshot-bench"
    shutil.rmtree(snap_dir, ignore_errors=True)
    path, t_write = timed(write_snapshot, snap_dir, n, payload)
    del venue, book, risk
    gc.collect()
    loaded, t_read = timed(read_snapshot, path, n)
    assert not isinstance(loaded, str), loaded
    fresh = Venue(config)
    _, t_decode = timed(decode_snapshot, loaded.payload, fresh)
    assert fresh.state_digest() == digest, "the loaded snapshot differs"
    size = path.stat().st_size
    shutil.rmtree(snap_dir, ignore_errors=True)
    result = {
        "resting": n,
        "bytes": size,
        "bytes_per_order": size / n,
        "build_seconds": build_seconds,
        "encode_seconds": t_encode,
        "write_seconds": t_write,
        "read_seconds": t_read,
        "decode_seconds": t_decode,
    }
    print(
        f"snapshot: {n:,} resting orders -> {size / 2**20:,.1f} MiB ({size / n:.0f} B/order); "
        f"encode {t_encode:.2f} s, write+fsync {t_write:.2f} s; "
        f"load: read+verify {t_read:.2f} s, decode {t_decode:.2f} s",
        flush=True,
    )
    return result


# -- report ------------------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if "fsync" in results:
        rows = []
        for name, r in results["fsync"].items():
            lat = r["latency_us"]
            mode, load = name.split()
            rows.append(
                [
                    mode,
                    load,
                    f"{r['requests_per_second']:,.0f}",
                    f"{r['records_per_second']:,.0f}",
                    f"{r['journal_mib_per_second']:.2f}",
                    *(f"{lat[q]:,.0f}" for q in ("p50", "p90", "p99", "p99.9", "max")),
                ]
            )
        lines += [
            table(
                [
                    "fsync",
                    "load",
                    "req/s",
                    "records/s",
                    "MiB/s",
                    "p50 µs",
                    "p90 µs",
                    "p99 µs",
                    "p99.9 µs",
                    "max µs",
                ],
                rows,
            ),
            "",
        ]
    if "snapload" in results:
        r = results["snapload"]
        lines += [
            f"Snapshots under sustained load (batch, 8x16, every 5,000 records): {r['records']:,} records in "
            f"{r['seconds']:.1f} s, {r['snapshots_written_under_load']} snapshots written while loaded "
            f"(about {r['snapshots_due']} due).",
            "",
        ]
    if "recovery" in results:
        r = results["recovery"]
        if r["orders"] < 1_000_000:
            verdict = "not judged (fewer than 1,000,000 orders)"
        elif r["replay_seconds"] < r["target_seconds"]:
            verdict = "met"
        else:
            verdict = f"MISSED by {r['replay_seconds'] / r['target_seconds']:.1f}x"
        lines += [
            table(
                ["recovery of", "orders", "records", "journal", "time"],
                [
                    [
                        "storage scan (recover_journal)",
                        f"{r['orders']:,}",
                        f"{r['records']:,}",
                        f"{r['journal_mib']:,.0f} MiB",
                        f"{r['scan_seconds']:.2f} s",
                    ],
                    ["read + decode every record", "", "", "", f"{r['read_decode_seconds']:.2f} s"],
                    ["replay_journal, no snapshot", "", "", "", f"{r['replay_seconds']:.2f} s"],
                    [
                        "replay_journal, snapshot at 90% + tail",
                        "",
                        "",
                        "",
                        f"{r['snapshot_plus_tail_seconds']:.2f} s",
                    ],
                    [
                        "server start to listening, no snapshot",
                        "",
                        "",
                        "",
                        f"{r['server_start_seconds_full']:.2f} s",
                    ],
                    [
                        "server start to listening, with snapshot",
                        "",
                        "",
                        "",
                        f"{r['server_start_seconds_snapshot']:.2f} s",
                    ],
                ],
            ),
            "",
            f"Target: recovery of 1,000,000 journaled orders < {r['target_seconds']:.0f} s: {verdict} "
            f"({r['replay_seconds']:.2f} s without a snapshot, "
            f"{r['replay_records_per_second']:,.0f} records/s; journal built in {r['build_seconds']:.0f} s).",
            "",
        ]
    if "restart" in results:
        r = results["restart"]
        verdict = "met" if r["start_seconds"] < r["target_seconds"] else "MISSED"
        lines += [
            f"Engine as shipped, killed after {r['orders']:,} orders + {r['cancels']:,} cancels "
            f"(journal seq {r['next_seq'] - 1:,}): restart to listening {r['start_seconds']:.2f} s, "
            f"recovery {r['recovered_seconds']:.2f} s ({r['records_after_snapshot']:,} records replayed "
            f"after the newest snapshot); target < {r['target_seconds']:.0f} s: {verdict}.",
            "",
        ]
    if "snapshot" in results:
        r = results["snapshot"]
        lines += [
            table(
                [
                    "resting orders",
                    "snapshot size",
                    "B/order",
                    "encode",
                    "write + fsync",
                    "read + verify",
                    "decode",
                ],
                [
                    [
                        f"{r['resting']:,}",
                        f"{r['bytes'] / 2**20:,.1f} MiB",
                        f"{r['bytes_per_order']:.0f}",
                        f"{r['encode_seconds']:.2f} s",
                        f"{r['write_seconds']:.2f} s",
                        f"{r['read_seconds']:.2f} s",
                        f"{r['decode_seconds']:.2f} s",
                    ]
                ],
            ),
            "",
        ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.persistence", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--part", action="append", choices=PARTS, help="part to run (repeatable; default all)"
    )
    parser.add_argument("--dir", type=Path, default=None, help="work directory (default: a temporary one)")
    parser.add_argument("--quick", action="store_true", help="small sizes: 100,000 orders, 1 s loads")
    parser.add_argument("--seconds", type=float, default=None, help="timed seconds per load (default 5)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds before each load")
    parser.add_argument("--modes", nargs="+", default=list(FSYNC_MODES), choices=FSYNC_MODES)
    parser.add_argument(
        "--loads",
        nargs="+",
        default=["1x1", "8x16"],
        help="CONNECTIONSxWINDOW closed loops (default 1x1 8x16)",
    )
    parser.add_argument("--orders", type=int, default=None, help="orders journaled for recovery (1,000,000)")
    parser.add_argument(
        "--resting", type=int, default=None, help="resting orders in the snapshot (1,000,000)"
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (1.0 if args.quick else 5.0)
    args.orders = args.orders if args.orders is not None else (100_000 if args.quick else 1_000_000)
    args.resting = args.resting if args.resting is not None else (100_000 if args.quick else 1_000_000)
    parts = args.part or list(PARTS)
    info = machine_info()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    with contextlib.ExitStack() as stack:
        work = args.dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-persistence-")))
        work.mkdir(parents=True, exist_ok=True)
        results: dict[str, Any] = {}
        runners = {
            "fsync": part_fsync,
            "snapload": part_snapload,
            "recovery": part_recovery,
            "restart": part_restart,
            "snapshot": part_snapshot,
        }
        for part in PARTS:
            if part in parts:
                results[part] = runners[part](args, work)
        print()
        print(report(results))
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "results": results}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
