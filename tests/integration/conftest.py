"""Integration fixtures: an in-process engine on a real socket and a tiny raw-socket test client.

The client is deliberately independent of ``clients/`` (the client library): it speaks the wire
protocol from docs/protocol.md directly with asyncio streams, in either mode:

* binary: 4-byte big-endian length + one msgpack map;
* JSON-lines: one JSON object (or a human-form command) per line.

A background task reads and decodes everything the server sends into ``client.received`` (all
messages, in order) and an inbox of messages no ``recv`` has taken yet. ``recv`` waits for the
first inbox message that matches (never a bare sleep) and checks it against the server schema
(``validate_server_message``) before returning it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import socket
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import msgpack
import pytest

from tradingapp.config import VenueConfig, load_config
from tradingapp.protocol.schema import validate_server_message
from tradingapp.server import Engine

TIMESTAMP_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
DEFAULT_TIMEOUT = 5.0

DEMO_ACCOUNTS = ("alice", "bob", "carol", "mm", *(f"load{i}" for i in range(1, 9)))
ALL_ACCOUNTS = (*DEMO_ACCOUNTS, "fees")


class ServerClosed(AssertionError):
    """The server closed the connection while a ``recv`` was waiting."""


#: Set IT_SHAPES=warn to only print shape problems (for exploring; the tests assert by default).
_WARN_ONLY = os.environ.get("IT_SHAPES") == "warn"


def shape_problem(msg: dict[str, Any]) -> str | None:
    """What is wrong with a server message (schema, timestamp format), or None."""
    problem = validate_server_message(msg)
    if problem is not None:
        return f"malformed server message {msg!r}: {problem!r}"
    ts = msg.get("timestamp")
    if ts is not None and not (isinstance(ts, str) and TIMESTAMP_RE.fullmatch(ts)):
        return f"bad timestamp {ts!r} in {msg!r}"
    return None


def check_shape(msg: dict[str, Any]) -> None:
    """Assert ``msg`` is a well-formed server message (schema + timestamp format)."""
    problem = shape_problem(msg)
    if problem is not None and _WARN_ONLY:
        print("SHAPE:", problem)
        return
    assert problem is None, problem


def matches(
    msg: dict[str, Any], type: str | None, fields: dict[str, Any], pred: Callable[..., bool] | None
) -> bool:
    if type is not None and msg.get("type") != type:
        return False
    for key, value in fields.items():
        if msg.get(key, _MISSING) != value:
            return False
    return pred is None or bool(pred(msg))


_MISSING = object()
_IDS = itertools.count(1)


class Client:
    """One raw connection to the engine."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
        assert mode in ("binary", "json")
        self.reader = reader
        self.writer = writer
        self.mode = mode
        self.received: list[dict[str, Any]] = []  # every message, in order
        self.inbox: list[dict[str, Any]] = []  # not yet taken by recv
        self.raw_lines: list[bytes] = []  # JSON mode: every line as received
        self.eof = asyncio.Event()
        self.decode_error: BaseException | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.account: str | None = None

    # -- connection ------------------------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        mode: str = "binary",
        *,
        rcvbuf: int | None = None,
        read: bool = True,
        limit: int = 1 << 24,
    ) -> Client:
        """Connect; ``read=False`` defers reading until :meth:`start_reading` (the StreamReader
        still buffers up to 2 * ``limit`` bytes before it stops reading the socket)."""
        if rcvbuf is not None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=limit)
        else:
            reader, writer = await asyncio.open_connection(host, port, limit=limit)
        client = cls(reader, writer, mode)
        if read:
            client.start_reading()
        return client

    def start_reading(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                if self.mode == "binary":
                    header = await self.reader.readexactly(4)
                    (length,) = struct.unpack(">I", header)
                    body = await self.reader.readexactly(length)
                    msg = msgpack.unpackb(body, raw=False)
                else:
                    line = await self.reader.readline()
                    if not line:
                        break
                    if not line.endswith(b"\n"):
                        raise ValueError(f"partial line at EOF: {line[:200]!r}")
                    self.raw_lines.append(line)
                    msg = json.loads(line)
                self.received.append(msg)
                self.inbox.append(msg)
                self._changed.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # a decoding problem is a test failure, reported by recv
            self.decode_error = exc
        finally:
            self.eof.set()
            self._changed.set()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.writer.wait_closed(), 2)

    # -- sending ---------------------------------------------------------------------------------

    def encode(self, msg: dict[str, Any]) -> bytes:
        if self.mode == "binary":
            body = msgpack.packb(msg, use_bin_type=True)
            return struct.pack(">I", len(body)) + body
        return (json.dumps(msg) + "\n").encode()

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_raw(self.encode(msg))

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def send_line(self, line: str) -> None:
        """JSON mode: send one line as typed (human form or JSON text)."""
        assert self.mode == "json"
        await self.send_raw(line.encode() + b"\n")

    def next_cid(self, prefix: str = "c") -> str:
        """A fresh id, unique across every client of the test run (sessions share accounts)."""
        return f"{prefix}{next(_IDS)}"

    # -- receiving -------------------------------------------------------------------------------

    async def recv(
        self,
        type: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        pred: Callable[[dict[str, Any]], bool] | None = None,
        check: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """Take and return the first unread message matching ``type``, ``fields`` and ``pred``."""
        deadline = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if matches(msg, type, fields, pred):
                    del self.inbox[i]
                    if check:
                        check_shape(msg)
                    return msg
            if self.decode_error is not None:
                raise AssertionError(f"undecodable data from the server: {self.decode_error!r}")
            if self.eof.is_set():
                raise ServerClosed(
                    f"connection closed while waiting for type={type} {fields}; unread: {self.inbox[-10:]!r}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for type={type} {fields}; "
                    f"unread: {self.inbox[-10:]!r}"
                )
            self._changed.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def recv_n(
        self, n: int, type: str | None = None, *, timeout: float = DEFAULT_TIMEOUT, **fields: Any
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        return [
            await self.recv(type, timeout=max(0.01, deadline - time.monotonic()), **fields) for _ in range(n)
        ]

    def take_all(self, type: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Take every unread message matching (without waiting); each is shape-checked."""
        taken = [m for m in self.inbox if matches(m, type, fields, None)]
        self.inbox = [m for m in self.inbox if not matches(m, type, fields, None)]
        for msg in taken:
            check_shape(msg)
        return taken

    async def request(
        self, msg: dict[str, Any], reply_type: str, *, timeout: float = DEFAULT_TIMEOUT, check: bool = True
    ) -> dict[str, Any]:
        """Send ``msg`` with a fresh request_id and wait for the reply of ``reply_type`` carrying it."""
        rid = msg.get("request_id") or self.next_cid("r")
        await self.send({**msg, "request_id": rid})
        return await self.recv(reply_type, request_id=rid, timeout=timeout, check=check)

    async def sync(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Round-trip a test_request: everything the server queued before it has arrived."""
        tid = self.next_cid("sync")
        await self.send({"type": "test_request", "test_request_id": tid})
        await self.recv("heartbeat", test_request_id=tid, timeout=timeout)

    async def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Wait until the server has closed the connection (AssertionError if it does not)."""
        try:
            await asyncio.wait_for(self.eof.wait(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"the server did not close the connection within {timeout}s; received: {self.received[-5:]!r}"
            ) from None

    # -- conveniences ----------------------------------------------------------------------------

    async def logon(self, account: str, api_key: str | None = None) -> dict[str, Any]:
        reply = await self.request(
            {"type": "logon", "account": account, "api_key": api_key or f"{account}-key"}, "logon"
        )
        self.account = account
        return reply

    async def order(
        self,
        symbol: str,
        side: str,
        order_type: str,
        quantity: str,
        price: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        **extra: Any,
    ) -> dict[str, Any]:
        """Send a new_order and return its first execution report (new or rejected)."""
        cid = extra.pop("client_order_id", None) or self.next_cid("o")
        msg: dict[str, Any] = {
            "type": "new_order",
            "client_order_id": cid,
            "symbol": symbol,
            "side": side,
            "order_type": order_type,
            "quantity": quantity,
        }
        if price is not None:
            msg["price"] = price
        msg.update(extra)
        await self.send(msg)
        return await self.recv(
            "execution_report",
            client_order_id=cid,
            pred=lambda m: m["exec_type"] in ("new", "rejected"),
            timeout=timeout,
        )

    async def balances(self) -> dict[str, dict[str, Decimal]]:
        """The account's balances as Decimals.

        The reply's shape is asserted by test_server_shapes.py::test_balances_shape, not here, so
        that one shape problem does not hide what the risk and conservation tests check.
        """
        reply = await self.request({"type": "balances"}, "balances", check=False)
        return {asset: {k: Decimal(v) for k, v in row.items()} for asset, row in reply["balances"].items()}

    async def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        msg: dict[str, Any] = {"type": "open_orders"}
        if symbol is not None:
            msg["symbol"] = symbol
        return (await self.request(msg, "open_orders"))["orders"]

    def reports(
        self, order_id: int | None = None, client_order_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Every execution report received so far (optionally for one order), in order."""
        out = [m for m in self.received if m.get("type") == "execution_report"]
        if order_id is not None:
            out = [m for m in out if m.get("order_id") == order_id]
        if client_order_id is not None:
            out = [m for m in out if m.get("client_order_id") == client_order_id]
        return out


async def eventually(
    condition: Callable[[], Any] | Callable[[], Awaitable[Any]],
    timeout: float = 10.0,
    interval: float = 0.01,
    what: str = "",
) -> Any:
    """Poll ``condition`` (sync or async) until it returns a truthy value without raising."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = condition()
            if asyncio.iscoroutine(result):
                result = await result
            if result:
                return result
            last = None
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout}s {what}: {last!r}")
        await asyncio.sleep(interval)


def D(value: Any) -> Decimal:
    return Decimal(value)


# -- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
def config() -> VenueConfig:
    return load_config()


def with_server(config: VenueConfig, **changes: Any) -> VenueConfig:
    """Return ``config`` with some [server] settings changed."""
    return attrs.evolve(config, server=attrs.evolve(config.server, **changes))


class EngineHarness:
    """Starts engines on a free port and makes clients; cleans everything up."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.engine: Engine | None = None
        self.host = "127.0.0.1"
        self.port = 0
        self.clients: list[Client] = []

    async def start(
        self,
        config: VenueConfig | None = None,
        fsync: str = "off",
        data_dir: Path | None = None,
        latency_stats: bool = False,
    ) -> Engine:
        self.engine = Engine(
            config or load_config(),
            data_dir=data_dir or self.data_dir,
            fsync=fsync,
            latency_stats=latency_stats,
        )
        self.host, self.port = await self.engine.start("127.0.0.1", 0)
        return self.engine

    async def stop(self) -> None:
        if self.engine is not None:
            await asyncio.wait_for(self.engine.stop(), 30)
            self.engine = None

    async def client(self, mode: str = "binary", **kw: Any) -> Client:
        c = await Client.connect(self.host, self.port, mode, **kw)
        self.clients.append(c)
        return c

    async def logged_on(self, account: str, mode: str = "binary", **kw: Any) -> Client:
        c = await self.client(mode, **kw)
        await c.logon(account)
        return c

    async def close_all(self) -> None:
        for c in self.clients:
            await c.close()
        self.clients = []


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[EngineHarness]:
    h = EngineHarness(tmp_path / "data")
    yield h
    await h.close_all()
    await h.stop()


@pytest.fixture
async def venue(harness: EngineHarness) -> EngineHarness:
    """A started engine with the demo configuration (fsync off)."""
    await harness.start()
    return harness


@pytest.fixture(params=["binary", "json"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


async def all_totals(h: EngineHarness, accounts: Iterable[str] = DEMO_ACCOUNTS) -> dict[str, Decimal]:
    """Sum of each asset's total over the given accounts (queried over the wire)."""
    sums: dict[str, Decimal] = {}
    for account in accounts:
        c = await h.logged_on(account)
        for asset, row in (await c.balances()).items():
            sums[asset] = sums.get(asset, Decimal(0)) + row["total"]
        await c.close()
    return sums
