"""Helpers for the persistence tests: a real server subprocess, raw binary clients that drive a
mixed order flow and record every message, and the offline oracles (a full replay of the journal
from seq 1, the consistency checks, the comparison of what clients saw with the recovered state).

Everything random is drawn from ``random.Random(seed)``; the seed is printed by each test (and
can be forced with ``TRADINGAPP_TEST_SEED``). The kill instants and the interleaving of the
clients are real-time and so differ between runs; the checks hold for every interleaving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any

import msgpack

from tradingapp.config import VenueConfig, load_config
from tradingapp.engine.events import Trade
from tradingapp.engine.orders import Order
from tradingapp.engine.types import OrderStatus
from tradingapp.engine.venue import Venue
from tradingapp.persistence import records as rec
from tradingapp.persistence.replay import Replayer
from tradingapp.persistence.store import decode_snapshot, replay_journal
from tradingapp.storage import load_latest_snapshot, recover_journal, scan_journal

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable

DEFAULT_CONFIG_TEXT = (ROOT / "tradingapp" / "default_config.toml").read_text(encoding="utf-8")

TERMINAL = {"filled", "canceled", "rejected", "expired"}
OPEN = {"new", "partially_filled"}

# The server, started the way `tradingapp serve --quiet` starts it (tradingapp.cli._serve), without
# going through the argument parser. TA_TEST_KILL_AT_SNAPSHOT="<step>:<n>" SIGKILLs the server right
# after <step> (one of storage.SNAPSHOT_STEPS) of its n-th snapshot: a kill -9 aimed inside the
# snapshot writer. The writer is a forked child of the server (periodic snapshots) or the server
# itself (at shutdown); the hook kills the server, then the writer (as its death signal would).
SERVER_SCRIPT = r"""
import os, signal, sys
from pathlib import Path
from tradingapp import logs
from tradingapp.config import load_config
from tradingapp.server import run, serve

aim = os.environ.get("TA_TEST_KILL_AT_SNAPSHOT")
if aim:
    import tradingapp.persistence.store as store
    step, nth = aim.split(":")
    real_write = store.write_snapshot
    calls = [0]
    server_pid = os.getpid()
    def fault(name):
        if name == step:
            os.kill(server_pid, signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)
    def write_snapshot(*args, **kwargs):
        calls[0] += 1
        if calls[0] == int(nth):
            kwargs["fault"] = fault
        return real_write(*args, **kwargs)
    store.write_snapshot = write_snapshot

data_dir = Path(sys.argv[1])
config = sys.argv[2] or None
logs.configure(data_dir, console=False)
sys.exit(run(serve(load_config(config), "127.0.0.1", 0, data_dir, sys.argv[3], sys.argv[4] == "1")))
"""


def seed_for(default: int) -> int:
    """The seed of a randomised test: ``TRADINGAPP_TEST_SEED`` when set, else ``default``."""
    value = os.environ.get("TRADINGAPP_TEST_SEED")
    return int(value) if value else default


def seeded_random(default: int, label: str = "seed") -> tuple[int, random.Random]:
    """The seed of a randomised test (:func:`seed_for`), printed as ``label=SEED`` so that a failure
    can be rerun, and a generator seeded with it."""
    seed = seed_for(default)
    print(f"{label}={seed}")
    return seed, random.Random(seed)


def write_config(path: Path, **persistence: object) -> Path:
    """Write the demo venue configuration with some ``[persistence]`` keys replaced."""
    text = DEFAULT_CONFIG_TEXT
    for key, value in persistence.items():
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
        else:
            raise KeyError(key)
        text = "\n".join(lines) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


# -- the server process ----------------------------------------------------------------------------


class Server:
    """One engine subprocess on ``data_dir``; started with :meth:`start`."""

    def __init__(
        self,
        data_dir: Path,
        config_path: Path | None = None,
        *,
        fsync: str = "batch",
        repair: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.config_path = config_path
        self.fsync = fsync
        self.repair = repair
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self._log_offset = 0
        self.stderr_path = self.data_dir.parent / f"{self.data_dir.name}.stderr"

    def start(self, timeout: float = 30.0) -> Server:
        """Start the process and wait for ``listening on HOST:PORT``; raise if it exits first."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.data_dir / "engine.log"
        self._log_offset = log.stat().st_size if log.exists() else 0
        env = {**os.environ, **self.env}
        self._stderr = open(self.stderr_path, "ab")  # noqa: SIM115 - closed in wait()
        self.proc = subprocess.Popen(
            [
                PYTHON,
                "-c",
                SERVER_SCRIPT,
                str(self.data_dir),
                str(self.config_path or ""),
                self.fsync,
                "1" if self.repair else "0",
            ],
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=ROOT,
            env=env,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.1)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith(b"listening on "):
                    self.host, port = line.decode().split()[-1].rsplit(":", 1)
                    self.port = int(port)
                    return self
                if not line and self.proc.poll() is not None:
                    break
            elif self.proc.poll() is not None:
                break
        rc = self.proc.poll()
        if rc is None:
            self.kill()
        raise ServerFailed(rc, self.stderr_text(), line.decode(errors="replace"))

    def start_expecting_failure(self, timeout: float = 30.0) -> tuple[int, str]:
        """Start a process that must exit before listening; return (exit code, stderr)."""
        try:
            self.start(timeout)
        except ServerFailed as failed:
            return failed.code if failed.code is not None else -1, failed.stderr
        self.stop()
        raise AssertionError("the server started although it should have refused")

    def stderr_text(self) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")
        return ""

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> int:
        """SIGKILL the process and reap it."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGKILL)
        return self.wait()

    def terminate(self) -> None:
        """Send SIGTERM (a clean stop) without waiting."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)

    def wait(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.stdout is not None:
                self.proc.stdout.close()
            self._stderr.close()
        return rc

    def confirm_serving(self, timeout: float = 10.0) -> None:
        """One request/reply round trip: the engine's loop is running past its start-up (its
        SIGTERM handler is installed once a connection is served; see
        test_restart.py::test_sigterm_right_after_the_listening_line_stops_cleanly)."""
        import socket

        with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
            sock.sendall(frame({"type": "test_request", "test_request_id": "ready"}))
            buf = b""
            while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
                chunk = sock.recv(65536)
                assert chunk, "the server closed the connection"
                buf += chunk
            reply = msgpack.unpackb(buf[4 : 4 + struct.unpack(">I", buf[:4])[0]], raw=False)
            assert reply.get("type") == "heartbeat", reply

    def stop(self, timeout: float = 60.0, *, confirm: bool = True) -> int:
        """SIGTERM and wait: the exit code. ``confirm`` first makes one round trip, so that the
        signal never lands in the instant between the listening line and the handler."""
        if confirm and self.proc is not None and self.proc.poll() is None:
            self.confirm_serving()
        self.terminate()
        return self.wait(timeout)

    def log_events(self) -> list[dict[str, Any]]:
        """The structured log lines this start wrote to ``engine.log``."""
        path = self.data_dir / "engine.log"
        if not path.exists():
            return []
        with path.open("rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        events = []
        for line in data.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def recovered(self) -> dict[str, Any]:
        """The ``recovered`` log event of this start (records, finished_in_flight, digest, ...)."""
        found = [e for e in self.log_events() if e.get("event") == "recovered"]
        assert len(found) == 1, f"expected one 'recovered' log event, got {found}"
        return found[0]

    def errors(self) -> list[dict[str, Any]]:
        """Log events at error level or above (an internal failure of an actor, a session, ...)."""
        return [e for e in self.log_events() if e.get("level") in ("error", "critical", "exception")]


class ServerFailed(RuntimeError):
    def __init__(self, code: int | None, stderr: str, line: str) -> None:
        super().__init__(f"server did not start (exit {code}); stdout {line!r}; stderr:\n{stderr[-3000:]}")
        self.code = code
        self.stderr = stderr


# -- a raw binary client ---------------------------------------------------------------------------


def frame(message: dict[str, Any]) -> bytes:
    body = msgpack.packb(message, use_bin_type=True)
    return struct.pack(">I", len(body)) + body


class WireClient:
    """One binary-mode connection; records every message it receives, in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, account: str) -> None:
        self.reader = reader
        self.writer = writer
        self.account = account
        self.received: list[dict[str, Any]] = []
        self.closed = asyncio.Event()
        self.on_message: Any = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, host: str, port: int, account: str) -> WireClient:
        reader, writer = await asyncio.open_connection(host, port)
        client = cls(reader, writer, account)
        client._task = asyncio.create_task(client._read())
        logged_on = asyncio.get_running_loop().create_future()

        def first(message: dict[str, Any]) -> None:
            if not logged_on.done():
                logged_on.set_result(message)

        client.on_message = first
        client.send({"type": "logon", "account": account, "api_key": f"{account}-key"})
        reply = await asyncio.wait_for(logged_on, 10)
        assert reply.get("type") == "logon", reply
        client.on_message = None
        return client

    def send(self, message: dict[str, Any]) -> bool:
        if self.closed.is_set() or self.writer.is_closing():
            return False
        try:
            self.writer.write(frame(message))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _read(self) -> None:
        try:
            while True:
                head = await self.reader.readexactly(4)
                (length,) = struct.unpack(">I", head)
                body = await self.reader.readexactly(length)
                message = msgpack.unpackb(body, raw=False)
                self.received.append(message)
                if self.on_message is not None:
                    self.on_message(message)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            self.closed.set()
            if self.on_message is not None:
                self.on_message(None)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)


# -- the order flow -------------------------------------------------------------------------------

MIDS = {"BTC-USDT": Decimal("30000.00"), "ETH-USDT": Decimal("2000.00"), "SOL-USDT": Decimal("100.000")}


@dataclass
class Sent:
    """One request a client sent, with the request id that its direct reply echoes."""

    request_id: int
    message: dict[str, Any]
    reply: dict[str, Any] | None = None


def answers(request: dict[str, Any], message: dict[str, Any]) -> bool:
    """True when ``message`` is the direct reply to ``request`` (not merely one carrying its
    request id: the engine also puts a command's request id on reports about other orders the
    command touched, see test_determinism.py::test_request_ids_only_on_direct_replies)."""
    kind = request["type"]
    mtype = message.get("type")
    if mtype == "reject":
        return True
    if kind == "new_order":
        return mtype == "execution_report" and message.get("client_order_id") == request["client_order_id"]
    if kind in ("cancel", "replace"):
        return (
            mtype in ("execution_report", "cancel_reject") and message.get("order_id") == request["order_id"]
        )
    if kind == "cancel_all":
        return mtype == "cancel_all"
    return True


class Trader:
    """Drives one connection: a mixed flow of limits on both sides around a mid (some crossing),
    market/IOC/FOK, post-only, stops, cancels, replaces and an occasional cancel-all, on the
    given symbols, with at most ``window`` requests awaiting their direct reply."""

    def __init__(
        self,
        client: WireClient,
        config: VenueConfig,
        rng: random.Random,
        symbols: list[str],
        tag: str,
        *,
        window: int = 8,
    ) -> None:
        self.client = client
        self.config = config
        self.rng = rng
        self.symbols = symbols
        self.tag = tag
        self.window = window
        self.sent: list[Sent] = []
        self.inflight: dict[int, Sent] = {}
        self.open: dict[int, dict[str, Any]] = {}  # order id -> last report of an open order
        self._room = asyncio.Event()
        self._room.set()
        self._drained = asyncio.Event()
        self._next_id = 0
        self.gate: asyncio.Event | None = None  # when set by the flow: send only while it is set
        client.on_message = self._on_message

    def _on_message(self, message: dict[str, Any] | None) -> None:
        if message is None:  # connection closed
            self._room.set()
            self._drained.set()
            return
        rid = message.get("request_id")
        if rid is not None and rid in self.inflight and answers(self.inflight[rid].message, message):
            sent = self.inflight.pop(rid)
            sent.reply = message
            self._room.set()
            if not self.inflight:
                self._drained.set()
        if message.get("type") == "execution_report" and message.get("order_id") is not None:
            oid = message["order_id"]
            if message["order_status"] in OPEN:
                self.open[oid] = message
            else:
                self.open.pop(oid, None)

    async def run(self, count: int | None = None) -> None:
        """Send ``count`` requests (None: until the connection closes), then wait for the replies."""
        n = 0
        while count is None or n < count:
            while len(self.inflight) >= self.window and not self.client.closed.is_set():
                self._room.clear()
                await self._room.wait()
            if self.gate is not None and not self.gate.is_set():
                await asyncio.wait(
                    [
                        asyncio.ensure_future(self.gate.wait()),
                        asyncio.ensure_future(self.client.closed.wait()),
                    ],
                    return_when=asyncio.FIRST_COMPLETED,
                )
            if self.client.closed.is_set():
                return
            message = self._next_request(self._next_id)
            self._next_id += 1
            message["request_id"] = self._next_id
            sent = Sent(self._next_id, message)
            if not self.client.send(message):
                return
            self.sent.append(sent)
            self.inflight[self._next_id] = sent
            self._drained.clear()
            n += 1
            if n % 4 == 0:
                await asyncio.sleep(0)  # let the writes go out and the replies in
                try:
                    await self.client.writer.drain()
                except (ConnectionError, OSError):
                    return  # the server is gone (killed)
        while self.inflight and not self.client.closed.is_set():
            await self._drained.wait()

    # the requests

    def _price(self, symbol: str, ticks: int) -> str:
        spec = self.config.symbol(symbol)
        assert spec is not None
        units = spec.price.to_units(str(MIDS[symbol])) + ticks
        return spec.price.format(units)

    def _qty(self, symbol: str, lots: int) -> str:
        spec = self.config.symbol(symbol)
        assert spec is not None
        return spec.quantity.format(lots)

    def _next_request(self, n: int) -> dict[str, Any]:
        rng = self.rng
        r = rng.random()
        mine = [oid for oid, rep in self.open.items() if rep["order_type"] in ("limit", "stop_limit")]
        if r < 0.12 and mine:
            oid = rng.choice(mine)
            return {"type": "cancel", "symbol": self.open[oid]["symbol"], "order_id": oid}
        if r < 0.21 and mine:
            oid = rng.choice(mine)
            report = self.open[oid]
            symbol = report["symbol"]
            spec = self.config.symbol(symbol)
            assert spec is not None
            qty = spec.quantity.to_units(report["quantity"])
            msg: dict[str, Any] = {"type": "replace", "symbol": symbol, "order_id": oid}
            what = rng.random()
            if what < 0.4:
                msg["quantity"] = self._qty(symbol, max(1, qty // 2))  # keeps priority
            elif what < 0.7:
                msg["quantity"] = self._qty(symbol, qty + rng.randint(1, 500))
            elif report.get("price") is not None:
                price = spec.price.to_units(report["price"]) + rng.randint(-5, 5)
                msg["price"] = spec.price.format(price)
            else:
                msg["quantity"] = self._qty(symbol, qty + 1)
            if rng.random() < 0.2:
                msg["client_order_id"] = f"{self.tag}-{n}r"
            return msg
        if r < 0.215:
            return {"type": "cancel_all", "symbol": rng.choice(self.symbols)}
        symbol = rng.choice(self.symbols)
        side = rng.choice(("buy", "sell"))
        sign = -1 if side == "buy" else 1
        lots = rng.randint(1, 600)
        msg = {
            "type": "new_order",
            "client_order_id": f"{self.tag}-{n}",
            "symbol": symbol,
            "side": side,
            "quantity": self._qty(symbol, lots),
        }
        kind = rng.random()
        if kind < 0.62:
            msg["order_type"] = "limit"
            # mostly passive, some crossing by up to 6 ticks
            msg["price"] = self._price(symbol, sign * rng.randint(-6, 40))
            if rng.random() < 0.12:
                msg["post_only"] = True
        elif kind < 0.72:
            msg["order_type"] = "market"
        elif kind < 0.84:
            msg["order_type"] = "ioc"
            msg["price"] = self._price(symbol, -sign * rng.randint(0, 20))
        elif kind < 0.90:
            msg["order_type"] = "fok"
            msg["price"] = self._price(symbol, -sign * rng.randint(0, 20))
        elif kind < 0.96:
            msg["order_type"] = "stop_limit"
            stop = sign * -rng.randint(5, 30)  # a buy stop above the mid, a sell stop below
            msg["stop_price"] = self._price(symbol, stop)
            msg["price"] = self._price(symbol, stop - sign * 3)
        else:
            msg["order_type"] = "stop_loss"
            msg["stop_price"] = self._price(symbol, sign * -rng.randint(5, 30))
        if rng.random() < 0.05:
            msg["self_trade_prevention"] = rng.choice(("cancel_oldest", "cancel_both", "none"))
        return msg


@dataclass
class FlowResult:
    """What every client sent and received during one server run."""

    traders: list[Trader]

    @property
    def messages(self) -> int:
        return sum(len(t.client.received) for t in self.traders)

    @property
    def requests(self) -> int:
        return sum(len(t.sent) for t in self.traders)


ACCOUNTS = ["load1", "load2", "load3", "load4", "alice", "bob"]


async def connect_traders(
    server: Server,
    config: VenueConfig,
    seed: int,
    tag: str,
    *,
    accounts: list[str] | None = None,
    symbols: list[str] | None = None,
    window: int = 8,
) -> list[Trader]:
    traders = []
    for i, account in enumerate(accounts or ACCOUNTS):
        client = await WireClient.connect(server.host, server.port, account)
        rng = random.Random(f"{seed}:{tag}:{i}")
        traders.append(
            Trader(client, config, rng, symbols or ["BTC-USDT", "ETH-USDT"], f"{tag}c{i}", window=window)
        )
    return traders


async def _bursts(gate: asyncio.Event, on: float, off: float) -> None:
    # All clients send for ``on`` seconds, then all pause for ``off`` (the engine goes idle).
    while True:
        gate.set()
        await asyncio.sleep(on)
        gate.clear()
        await asyncio.sleep(off)


async def flow_until_killed(
    server: Server,
    config: VenueConfig,
    seed: int,
    tag: str,
    kill_after: float,
    bursts: tuple[float, float] | None = None,
) -> FlowResult:
    """Run the flow on every connection and SIGKILL the server ``kill_after`` seconds in (unless
    it died before). ``bursts=(on, off)``: every client pauses together for ``off`` seconds after
    each ``on`` seconds of sending."""
    traders = await connect_traders(server, config, seed, tag)
    pacer = None
    if bursts is not None:
        gate = asyncio.Event()
        for t in traders:
            t.gate = gate
        pacer = asyncio.create_task(_bursts(gate, *bursts))
    tasks = [asyncio.create_task(t.run(None)) for t in traders]
    done, _ = await asyncio.wait(tasks, timeout=kill_after)
    if not done:  # otherwise the server died by itself (an aimed kill)
        os.kill(server.pid, signal.SIGKILL)
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    if pacer is not None:
        pacer.cancel()
    for t in traders:
        await t.client.close()
    return FlowResult(traders)


async def flow_then_stop(
    server: Server,
    config: VenueConfig,
    seed: int,
    tag: str,
    requests_per_client: int,
    *,
    accounts: list[str] | None = None,
    phases: int = 1,
    pause: float = 0.6,
) -> tuple[FlowResult, int]:
    """Send ``requests_per_client`` on every connection (``phases`` times, pausing between),
    wait for the replies, then stop the
    server cleanly while the clients keep reading until it closes them (so they get everything).
    Returns the flow and the exit code."""
    traders = await connect_traders(server, config, seed, tag, accounts=accounts)
    for phase in range(phases):
        if phase:
            await asyncio.sleep(pause)  # lets the periodic snapshot run between phases
        await asyncio.wait_for(asyncio.gather(*(t.run(requests_per_client) for t in traders)), 120)
    server.terminate()
    for t in traders:
        await asyncio.wait_for(t.client.closed.wait(), 60)
        await t.client.close()
    rc = await asyncio.get_running_loop().run_in_executor(None, server.wait)
    return FlowResult(traders), rc


# -- offline oracles --------------------------------------------------------------------------------


def canonical_event(event: Any) -> tuple[Any, ...]:
    """An event as plain values (orders by id, enums by value), for hashing and comparing."""
    out: list[Any] = [type(event).__name__]
    for value in event:
        if isinstance(value, Order):
            out.append(("order", value.order_id))
        elif isinstance(value, Enum):
            out.append(value.value)
        else:
            out.append(value)
    return tuple(out)


@dataclass
class History:
    """A replay of the whole journal from seq 1 (snapshots ignored), in-flight work finished."""

    venue: Venue
    records: int
    pending: list[tuple[str, str]]
    trades: dict[int, tuple[str, Trade]] = field(default_factory=dict)  # trade id -> (symbol, trade)
    orders: dict[int, tuple[str, Order]] = field(default_factory=dict)  # order id -> (symbol, order)
    admitted: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (account, cid) -> ids
    events: list[tuple[int, str, list[Any]]] = field(default_factory=list)  # (seq, symbol, events)
    event_hash: str = ""


def full_history(config: VenueConfig, data_dir: Path, *, keep_events: bool = False) -> History:
    """Replay ``data_dir``'s journal from seq 1 into a fresh venue, ignoring the snapshots.

    The journal is recovered first (a torn tail is cut, as the engine does at start). Collects
    every trade and every order object the books produced; finishes the in-flight steps like
    recovery does.
    """
    journal_dir = Path(data_dir) / "journal"
    recover_journal(journal_dir)
    venue = Venue(config)
    replayer = Replayer(venue)
    history = History(venue, 0, [])
    digest = hashlib.blake2b(digest_size=16)
    last_seq = 0

    def collect(seq: int, symbol: str, events: list[Any] | None) -> None:
        if not events:
            return
        for event in events:
            if type(event) is Trade:
                assert event.trade_id not in history.trades, f"trade id {event.trade_id} produced twice"
                history.trades[event.trade_id] = (symbol, event)
                for order in (event.maker, event.taker):
                    history.orders.setdefault(order.order_id, (symbol, order))
            else:
                owner = getattr(event, "order", None)
                if isinstance(owner, Order):
                    history.orders.setdefault(owner.order_id, (symbol, owner))
            digest.update(repr(canonical_event(event)).encode())
        if keep_events:
            history.events.append((seq, symbol, [canonical_event(e) for e in events]))

    for record in scan_journal(journal_dir, 0):
        assert record.seq == last_seq + 1
        last_seq = record.seq
        payload = rec.unpack(record.payload)
        if payload[0] == rec.ADMIT:
            fields = rec.describe(payload)
            key = (fields["account"], fields["client_order_id"])
            history.admitted.setdefault(key, []).append(fields["order_id"])
        collect(
            record.seq,
            payload[1] if payload[0] == rec.BOOK_STEP else "",
            replayer.apply(record.ts_ns, payload),
        )
        history.records += 1
    history.pending = replayer.pending_steps()
    for kind, symbol in history.pending:
        collect(0, symbol, replayer.apply(0, [kind, symbol]))
    assert replayer.idle
    history.event_hash = digest.hexdigest()
    return history


def recovered_state(
    config: VenueConfig, data_dir: Path, *, repair: bool = False
) -> tuple[Venue, int, int, int]:
    """The engine's recovery done offline: (venue, next seq, snapshot seq, steps finished)."""
    venue, replayer, next_seq, snap_seq = replay_journal(config, Path(data_dir), repair=repair)
    pending = replayer.pending_steps()
    for kind, symbol in pending:
        replayer.apply(0, [kind, symbol])
    assert replayer.idle
    return venue, next_seq, snap_seq, len(pending)


def snapshot_venue(config: VenueConfig, data_dir: Path) -> tuple[int, Venue] | None:
    """The newest valid snapshot decoded into a venue, or None."""
    snap = load_latest_snapshot(Path(data_dir) / "snapshots")
    if snap is None:
        return None
    venue = Venue(config)
    decode_snapshot(snap.payload, venue)
    return snap.seq, venue


def initial_totals(config: VenueConfig) -> dict[str, int]:
    return Venue(config).risk.totals()


def check_consistency(config: VenueConfig, venue: Venue) -> None:
    """Invariants of a state with nothing in flight: book and risk invariants, every open order
    held by risk with the same quantity and fills (and every hold an open order), conservation."""
    for book in venue.books.values():
        book.check_invariants()
    venue.risk.check_invariants()
    assert venue.risk.totals() == initial_totals(config), "balances are not conserved"
    for acfg in config.accounts:
        account = acfg.account
        in_books = {o.order_id: o for book in venue.books.values() for o in book.open_orders(account)}
        holds = {h.order_id: h for h in venue.risk.open_holds(account)}
        assert set(in_books) == set(holds), (
            f"{account}: open in books but not held {sorted(set(in_books) - set(holds))}, "
            f"held but not open {sorted(set(holds) - set(in_books))}"
        )
        for oid, order in in_books.items():
            hold = holds[oid]
            assert (hold.quantity, hold.filled) == (order.quantity, order.filled), (
                f"order {oid}: risk has qty/filled {hold.quantity}/{hold.filled}, "
                f"book {order.quantity}/{order.filled}"
            )
            assert not hold.pending and hold.extra == 0, f"order {oid}: replace reserve left in flight"
            assert order.leaves == order.quantity - order.filled
    last_trade = venue.trade_ids.last
    assert sum(b.trade_count for b in venue.books.values()) == last_trade, "trade ids and trade counts differ"


# -- what clients saw vs the state ----------------------------------------------------------------


@dataclass
class SeenOrder:
    order_id: int
    account: str
    symbol: str
    side: str
    reports: list[dict[str, Any]] = field(default_factory=list)
    fills: dict[int, dict[str, Any]] = field(default_factory=dict)  # trade id -> report


def seen_orders(flow: FlowResult) -> dict[int, SeenOrder]:
    """Every order some client got an execution report with an order id for (an ack)."""
    out: dict[int, SeenOrder] = {}
    for trader in flow.traders:
        for message in trader.client.received:
            if message.get("type") != "execution_report" or message.get("order_id") is None:
                continue
            if message["exec_type"] == "order_status":
                continue
            oid = message["order_id"]
            seen = out.get(oid)
            if seen is None:
                seen = out[oid] = SeenOrder(oid, trader.client.account, message["symbol"], message["side"])
            assert seen.account == trader.client.account, f"order {oid} reported to two accounts"
            seen.reports.append(message)
            if message["exec_type"] == "trade":
                tid = message["trade_id"]
                assert tid not in seen.fills, f"fill {tid} of order {oid} reported twice"
                seen.fills[tid] = message
    return out


def check_seen_against_state(
    config: VenueConfig,
    flow: FlowResult,
    history: History,
    seen_trades: dict[int, tuple[Any, ...]],
) -> dict[str, int]:
    """Check the clients' view of one run against the recovered history; update ``seen_trades``
    (trade id -> what was seen, across every run so far). Returns counts for the test's log."""
    stats = {
        "acked": 0,
        "open": 0,
        "fills_seen": 0,
        "fills_lost": 0,
        "unacked_applied": 0,
        "unacked_absent": 0,
    }
    seen = seen_orders(flow)
    trades_of: dict[int, int] = {}
    for _, t in history.trades.values():
        for side_order in (t.maker, t.taker):
            trades_of[side_order.order_id] = trades_of.get(side_order.order_id, 0) + 1
    unreplied_replaces: dict[int, list[dict[str, Any]]] = {}
    for trader in flow.traders:
        for sent in trader.sent:
            if sent.message["type"] == "replace" and sent.reply is None:
                unreplied_replaces.setdefault(sent.message["order_id"], []).append(sent.message)
    for oid, so in seen.items():
        stats["acked"] += 1
        assert oid in history.orders, f"acknowledged order {oid} ({so.account}) is not in the journal"
        symbol, order = history.orders[oid]
        spec = config.symbol(symbol)
        assert spec is not None
        assert (symbol, str(order.account), order.side.value) == (so.symbol, so.account, so.side), oid
        # every fill seen exists with the same price and quantity, on this order
        for tid, report in so.fills.items():
            stats["fills_seen"] += 1
            assert tid in history.trades, f"fill {tid} of order {oid} seen by the client is not in the state"
            tsym, trade = history.trades[tid]
            assert tsym == symbol
            assert trade.price == spec.price.to_units(report["last_price"]), f"trade {tid} price differs"
            assert trade.quantity == spec.quantity.to_units(report["last_qty"]), f"trade {tid} qty differs"
            assert oid in (trade.maker.order_id, trade.taker.order_id), f"trade {tid} is not order {oid}'s"
            content = (symbol, trade.price, trade.quantity, trade.maker.order_id, trade.taker.order_id)
            earlier = seen_trades.setdefault(tid, content)
            assert earlier == content, f"trade id {tid} reused: seen before as {earlier}, now {content}"
        seen_qty = sum(spec.quantity.to_units(r["last_qty"]) for r in so.fills.values())
        seen_cum = max(spec.quantity.to_units(r["cum_qty"], allow_zero=True) for r in so.reports)
        assert seen_qty <= order.filled and seen_cum <= order.filled, (
            f"order {oid}: the client saw {seen_qty} filled (cum {seen_cum}), the state has {order.filled}"
        )
        stats["fills_lost"] += trades_of.get(oid, 0) - len(so.fills)
        terminal = [r["order_status"] for r in so.reports if r["order_status"] in TERMINAL]
        status = order.status.value
        if terminal:
            assert len(set(terminal)) == 1, f"order {oid} reported terminal twice: {terminal}"
            assert status == terminal[0], f"order {oid}: the client saw {terminal[0]}, the state has {status}"
        if status in OPEN:
            stats["open"] += 1
            assert order.leaves == order.quantity - order.filled
            book_order = history.venue.books[symbol].order(oid)
            assert book_order is order, f"open order {oid} is not in its book"
        if status == OrderStatus.FILLED.value:
            assert order.filled == order.quantity
        # quantity and price: as last reported, or as a replace the client got no answer to
        last = so.reports[-1]
        pending = unreplied_replaces.get(oid, [])
        quantities = {spec.quantity.to_units(last["quantity"])}
        quantities |= {spec.quantity.to_units(m["quantity"]) for m in pending if "quantity" in m}
        assert order.quantity in quantities or order.status.value in ("rejected",), (
            f"order {oid}: quantity {order.quantity}, client expects one of {quantities}"
        )
        if last.get("price") is not None and order.price is not None:
            prices = {spec.price.to_units(last["price"])}
            prices |= {spec.price.to_units(m["price"]) for m in pending if "price" in m}
            assert order.price in prices, f"order {oid}: price {order.price}, client expects one of {prices}"
    # new orders whose ack never arrived: applied whole (in a book and consistent) or absent
    for trader in flow.traders:
        for sent in trader.sent:
            m = sent.message
            if m["type"] != "new_order":
                continue
            ids = history.admitted.get((trader.client.account, m["client_order_id"]), [])
            assert len(ids) <= 1, f"{m['client_order_id']} admitted twice: {ids}"
            acked = any(i in seen for i in ids) or sent.reply is not None
            if acked:
                continue
            if ids:
                stats["unacked_applied"] += 1
                assert ids[0] in history.orders, f"unacknowledged order {ids[0]} admitted but never booked"
            else:
                stats["unacked_absent"] += 1
    return stats


def check_trade_ids(history: History) -> None:
    """Trade ids are 1..N, each once, and agree with the shared sequence."""
    ids = sorted(history.trades)
    assert ids == list(range(1, len(ids) + 1)), "trade ids are not contiguous from 1"
    assert history.venue.trade_ids.last == len(ids)


def copy_data_dir(src: Path, dst: Path) -> Path:
    """Copy journal and snapshots (not logs) to ``dst``."""
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    for name in ("journal", "snapshots"):
        if (Path(src) / name).exists():
            shutil.copytree(Path(src) / name, dst / name)
    return dst


def dir_bytes(path: Path) -> dict[str, bytes]:
    """Every file under ``path`` (relative name -> content)."""
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


def journal_records(data_dir: Path) -> list[tuple[int, int, list[Any]]]:
    """Every journal record as (seq, ts, decoded payload)."""
    return [(r.seq, r.ts_ns, rec.unpack(r.payload)) for r in scan_journal(Path(data_dir) / "journal", 0)]


def replay_records(config: VenueConfig, records: Iterable[tuple[int, int, list[Any]]]) -> Venue:
    """Apply ``records`` to a fresh venue and finish the in-flight steps."""
    venue = Venue(config)
    replayer = Replayer(venue)
    for _, ts, payload in records:
        replayer.apply(ts, payload)
    for kind, symbol in replayer.pending_steps():
        replayer.apply(0, [kind, symbol])
    return venue


def replay_main() -> None:
    """Entry point of the determinism subprocess: prints a JSON line with the state digest of
    the engine's recovery path and the digest of every book event of a full replay."""
    data_dir = Path(sys.argv[1])
    config = load_config(sys.argv[2] or None)
    venue, _, snap_seq, _ = recovered_state(config, data_dir)
    history = full_history(config, data_dir)
    print(
        json.dumps(
            {
                "digest": venue.state_digest(),
                "snapshot_seq": snap_seq,
                "full_digest": history.venue.state_digest(),
                "events": history.event_hash,
                "records": history.records,
                "hashseed": os.environ.get("PYTHONHASHSEED"),
            }
        )
    )


# -- kill -9 campaigns (R1, R2) ---------------------------------------------------------------------


@dataclass
class KillCampaign:
    """Rounds of "start the server on the same data dir, run the flow, SIGKILL it", each followed
    by an offline check of a copy of the data dir; the next start must recover the same state."""

    data_dir: Path
    work_dir: Path
    config_path: Path
    config: VenueConfig
    seed: int
    seen_trades: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    expected: dict[str, Any] | None = None  # what the next start must report as recovered
    rounds: int = 0
    log: list[str] = field(default_factory=list)

    def start(self, fsync: str, env: dict[str, str] | None = None) -> Server:
        server = Server(self.data_dir, self.config_path, fsync=fsync, env=env).start()
        recovered = server.recovered()
        if self.expected is not None:
            assert recovered["digest"] == self.expected["digest"], (
                f"seed {self.seed}: the restarted engine recovered digest {recovered['digest']}, "
                f"an offline replay of the same journal gives {self.expected['digest']}"
            )
            assert recovered["finished_in_flight"] == self.expected["finished"], (recovered, self.expected)
            assert recovered["next_seq"] == self.expected["next_seq"], (recovered, self.expected)
        return server

    def round(
        self,
        fsync: str,
        kill_after: float,
        env: dict[str, str] | None = None,
        bursts: tuple[float, float] | None = None,
    ) -> tuple[Server, FlowResult]:
        self.rounds += 1
        tag = f"k{self.rounds}"
        t0 = time.perf_counter()
        server = self.start(fsync, env)
        t1 = time.perf_counter()
        flow = asyncio.run(flow_until_killed(server, self.config, self.seed, tag, kill_after, bursts))
        rc = server.wait()
        t2 = time.perf_counter()
        assert rc == -signal.SIGKILL, f"server exit {rc}: {server.stderr_text()[-2000:]}"
        assert not server.errors(), server.errors()
        self.check(flow, tag)
        checked = time.perf_counter() - t2
        print(f"{tag} timings: start {t1 - t0:.2f} s, flow {t2 - t1:.2f} s, check {checked:.2f} s")
        return server, flow

    def check(self, flow: FlowResult, tag: str) -> dict[str, Any]:
        """Offline checks on a copy of the data dir as the kill left it."""
        snaps = sorted(p.name for p in (self.data_dir / "snapshots").iterdir())
        copy = copy_data_dir(self.data_dir, self.work_dir / f"check-{tag}")
        venue, next_seq, snap_seq, finished = recovered_state(self.config, copy)
        history = full_history(self.config, copy)
        digest = venue.state_digest()
        assert digest == history.venue.state_digest(), (
            f"seed {self.seed} {tag}: snapshot {snap_seq} + journal gives {digest}, "
            f"a replay from seq 1 gives {history.venue.state_digest()}"
        )
        again, *_ = recovered_state(self.config, copy)
        assert again.state_digest() == digest, "two offline recoveries of one data dir differ"
        check_consistency(self.config, venue)
        check_consistency(self.config, history.venue)
        check_trade_ids(history)
        stats = check_seen_against_state(self.config, flow, history, self.seen_trades)
        self.expected = {"digest": digest, "finished": finished, "next_seq": next_seq + finished}
        line = (
            f"{tag}: {flow.requests} requests, {history.records} records, snapshot {snap_seq}, "
            f"in flight {finished}, snapshots at kill {snaps}, {stats}"
        )
        self.log.append(line)
        print(line)
        return stats

    def final_clean_stop(self) -> str:
        """Start, check the recovery, stop with SIGTERM; the snapshot written at the stop and a
        fresh replay must give the recovered digest. Returns it."""
        server = self.start("batch")
        digest = server.recovered()["digest"]
        assert server.stop() == 0, server.stderr_text()[-2000:]
        assert not server.errors(), server.errors()
        snap = snapshot_venue(self.config, self.data_dir)
        assert snap is not None
        assert snap[1].state_digest() == digest, "the snapshot written at the clean stop differs"
        venue, *_ = recovered_state(self.config, self.data_dir)
        assert venue.state_digest() == digest
        assert full_history(self.config, self.data_dir).venue.state_digest() == digest
        return digest
