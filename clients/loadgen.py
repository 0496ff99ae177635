"""``tradingapp loadgen``: pipelined order flow against a running engine, with latency figures.

Each of ``--connections`` connections logs on as one of ``--accounts`` (cycling) and sends a
mixed flow around each symbol's mid price: mostly limit orders near the mid on both sides (some
crossing, so there are trades), cancels of the connection's own resting orders (always of the
oldest first, and always once it has ``--max-resting`` of them, so the book stays bounded), a few
IOC and market orders. Every request carries a ``request_id``; its latency runs from just before
the ``write`` that carried it to the first reply with that id (for an order: its first execution
report, ``new`` or ``rejected``).

* **Closed loop** (``--rate`` 0 or omitted): each connection keeps ``--in-flight`` requests
  outstanding; whenever replies arrive, the freed slots are refilled with one ``write``.
* **Open loop** (``--rate R``): a pacer sends ``R`` requests per second in total, spread over the
  connections, every millisecond or so (one ``write`` per connection per tick). If a connection
  has ``--max-backlog`` requests unanswered it skips its share, and the report counts them.

The run stops at ``--count`` requests or after ``--duration`` seconds, whichever comes first;
then it waits up to ``--drain-timeout`` seconds for the outstanding replies, cancels the accounts'
open orders (unless ``--keep-orders``) and prints the report (``--json FILE`` also writes it).
Feed subscribers (``--subscribers``) read every symbol's BBO, depth and trades meanwhile.
With ``--server-stats`` the engine's own latency figures (``tradingapp serve --latency-stats``:
receive -> acknowledgement, BBO update and trade message written, and the stages in between) are
reset before the run and read after it, and reported next to the client's.

Exit status: 0 after a clean run; 1 if the engine is unreachable, a logon fails or a connection
is lost; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextlib
import json
import math
import random
import secrets
import sys
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from clients.client import Client, ClientError, SeqCheck, connect, random_request_id_base

__all__ = ["DEMO_SYMBOLS", "SymbolFlow", "add_arguments", "main", "run_loadgen"]

#: Demo symbols: mid price, tick size, lot size (``tradingapp/default_config.toml``).
DEMO_SYMBOLS: dict[str, tuple[str, str, str]] = {
    "BTC-USDT": ("30000", "0.01", "0.00001"),
    "ETH-USDT": ("2000", "0.01", "0.0001"),
    "SOL-USDT": ("100", "0.001", "0.01"),
}
DEFAULT_ACCOUNTS = tuple(f"load{i}" for i in range(1, 9))

# The flow's mix: fractions of the requests (cancels need resting orders; IOC and market
# shares are of the new orders).
CANCEL_SHARE = 0.22
IOC_SHARE = 0.05
MARKET_SHARE = 0.03
#: Limit prices spread this far from the mid on the passive side, as a fraction of the mid.
PASSIVE_SPREAD = 0.004
#: ... and this far through the mid on the aggressive side (so some limit orders cross).
CROSS_SPREAD = 0.0005
#: IOC orders are priced this far through the mid.
IOC_THROUGH = 0.002
#: Order notional range, in quote units (USDT).
NOTIONAL_RANGE = (20.0, 2000.0)

_LIMIT, _IOC, _MARKET, _CANCEL = 0, 1, 2, 3
_KIND_NAMES = ("limit", "ioc", "market", "cancel")


# -- command line -------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the load generator's options on ``parser``."""
    parser.description = "Send a pipelined mixed order flow to a running engine and report latency."
    parser.add_argument(
        "--host", default="127.0.0.1", help="engine address, loopback only (default 127.0.0.1)"
    )
    parser.add_argument("--port", type=int, default=7001, help="engine port (default 7001)")
    parser.add_argument("--connections", type=int, default=4, help="order-entry connections (default 4)")
    parser.add_argument(
        "--accounts",
        nargs="+",
        default=list(DEFAULT_ACCOUNTS),
        metavar="ACCOUNT[:KEY]",
        help="accounts used in turn by the connections; the api key defaults to ACCOUNT-key "
        "(default load1 .. load8)",
    )
    parser.add_argument(
        "--symbols",
        nargs="+",
        default=list(DEMO_SYMBOLS),
        metavar="SYMBOL[:MID[:TICK:LOT]]",
        help="symbols and their mid prices; the demo symbols know their mid, tick and lot "
        "(default BTC-USDT:30000 ETH-USDT:2000 SOL-USDT:100)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="open loop: target requests per second over all connections (0 or omitted: closed loop)",
    )
    parser.add_argument(
        "--count", type=int, default=100_000, help="stop after this many requests (default 100000)"
    )
    parser.add_argument(
        "--duration", type=float, default=10.0, help="stop after this many seconds (default 10)"
    )
    parser.add_argument(
        "--in-flight",
        type=int,
        default=64,
        help="closed loop: requests outstanding per connection (default 64)",
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=10_000,
        help="open loop: a connection with this many unanswered requests skips its sends (default 10000)",
    )
    parser.add_argument(
        "--max-resting",
        type=int,
        default=200,
        help="resting orders per connection before the oldest is always canceled (default 200)",
    )
    parser.add_argument(
        "--subscribers", type=int, default=0, help="feed subscribers reading everything (default 0)"
    )
    parser.add_argument("--seed", type=int, default=None, help="random seed of the flow (default: random)")
    parser.add_argument("--json", metavar="FILE", help="also write the report as JSON to FILE")
    parser.add_argument(
        "--drain-timeout", type=float, default=5.0, help="seconds to wait for replies at the end (default 5)"
    )
    parser.add_argument(
        "--keep-orders", action="store_true", help="leave the resting orders on the book at the end"
    )
    parser.add_argument(
        "--server-stats",
        action="store_true",
        help="reset the engine's latency figures before the run and report them after it "
        "(the engine must run with --latency-stats)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def main(args: argparse.Namespace) -> int:
    """Run the load generator from parsed arguments; returns the process exit status."""
    try:
        options = Options.from_args(args)
        if options.json_path:
            _writable(options.json_path)
    except ValueError as e:
        print(f"loadgen: {e}", file=sys.stderr)
        return 2
    report = _run(run_loadgen(options))
    print(format_report(report))
    if options.json_path:
        try:
            with open(options.json_path, "w", encoding="utf-8") as f:
                json.dump(report, f, indent=2, sort_keys=True)
                f.write("\n")
        except OSError as e:
            print(f"loadgen: --json: cannot write {options.json_path}: {e.strerror or e}", file=sys.stderr)
            return 1
    return int(report["exit_code"])


def _writable(path: str) -> None:
    """Raise ValueError unless ``path`` can be written: checked before the run, not after it."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as e:
        raise ValueError(f"--json: cannot write {path}: {e.strerror or e}") from None


def _run(coro: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


# -- configuration ------------------------------------------------------------------------------


class SymbolFlow:
    """One symbol's price and quantity grid, with the strings the flow sends (cached)."""

    def __init__(self, symbol: str, mid: str, tick: str, lot: str) -> None:
        self.symbol = symbol
        self.mid = Decimal(mid)
        self.tick = Decimal(tick)
        self.lot = Decimal(lot)
        if self.mid <= 0 or self.tick <= 0 or self.lot <= 0:
            raise ValueError(f"--symbols: {symbol}: mid, tick and lot must be positive")
        self.mid_ticks = int(self.mid / self.tick)
        self.passive_ticks = max(2, int(self.mid_ticks * PASSIVE_SPREAD))
        self.cross_ticks = max(1, int(self.mid_ticks * CROSS_SPREAD))
        self.ioc_ticks = max(1, int(self.mid_ticks * IOC_THROUGH))
        self._prices: dict[int, str] = {}
        low, high = NOTIONAL_RANGE
        quantities = []
        for i in range(16):  # geometric spread of notionals, rounded down to the lot
            notional = low * (high / low) ** (i / 15)
            lots = max(1, int(Decimal(str(notional)) / self.mid / self.lot))
            quantities.append(format(self.lot * lots, "f"))
        self.quantities = quantities

    def price(self, ticks: int) -> str:
        """Return the price ``ticks`` ticks as a decimal string."""
        text = self._prices.get(ticks)
        if text is None:
            text = self._prices[ticks] = format(self.tick * ticks, "f")
        return text


class Options:
    """Validated load generator settings."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.host: str = args.host
        self.port: int = args.port
        self.connections: int = args.connections
        self.rate: float = args.rate or 0.0
        self.count: int = args.count
        self.duration: float = args.duration
        self.in_flight: int = args.in_flight
        self.max_backlog: int = args.max_backlog
        self.max_resting: int = args.max_resting
        self.subscribers: int = args.subscribers
        self.seed: int = args.seed if args.seed is not None else random.randrange(1 << 31)
        self.json_path: str | None = args.json
        self.drain_timeout: float = args.drain_timeout
        self.keep_orders: bool = args.keep_orders
        self.quiet: bool = args.quiet
        self.server_stats: bool = args.server_stats
        self.accounts: list[tuple[str, str]] = []
        for item in args.accounts:
            name, _, key = item.partition(":")
            self.accounts.append((name, key or f"{name}-key"))
        self.symbols: list[SymbolFlow] = [_parse_symbol(s) for s in args.symbols]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        """Return the options, or raise ValueError naming what is wrong."""
        options = cls(args)
        if options.host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"--host must be a loopback address, not {options.host!r}")
        if not 1 <= options.port <= 65535:
            raise ValueError(f"--port must be from 1 to 65535, not {options.port}")
        if not 1 <= options.connections <= 256:
            raise ValueError("--connections must be from 1 to 256")
        if options.rate < 0 or not math.isfinite(options.rate):
            raise ValueError("--rate must be 0 (closed loop) or a positive number")
        if options.count < 1:
            raise ValueError("--count must be at least 1")
        if not 0 < options.duration <= 3600:
            raise ValueError("--duration must be more than 0 and at most 3600 seconds")
        if not 1 <= options.in_flight <= 100_000:
            raise ValueError("--in-flight must be from 1 to 100000")
        if options.max_backlog < 1 or options.max_resting < 1:
            raise ValueError("--max-backlog and --max-resting must be at least 1")
        if not 0 <= options.subscribers <= 64:
            raise ValueError("--subscribers must be from 0 to 64")
        if not options.accounts or not options.symbols:
            raise ValueError("give at least one account and one symbol")
        if not 0 <= options.drain_timeout <= 600:
            raise ValueError("--drain-timeout must be from 0 to 600 seconds")
        return options

    def describe(self) -> dict[str, Any]:
        """The settings, for the report."""
        return {
            "mode": "open" if self.rate else "closed",
            "rate": self.rate,
            "connections": self.connections,
            "accounts": [a for a, _ in self.accounts[: self.connections]],
            "symbols": {s.symbol: format(s.mid, "f") for s in self.symbols},
            "count": self.count,
            "duration": self.duration,
            "in_flight": self.in_flight,
            "max_backlog": self.max_backlog,
            "max_resting": self.max_resting,
            "drain_timeout": self.drain_timeout,
            "keep_orders": self.keep_orders,
            "subscribers": self.subscribers,
            "seed": self.seed,
            "server_stats": self.server_stats,
        }


def _parse_symbol(text: str) -> SymbolFlow:
    parts = text.split(":")
    symbol = parts[0].upper()
    demo = DEMO_SYMBOLS.get(symbol)
    if len(parts) == 4:
        numbers = parts[1:]
    elif len(parts) in (1, 2):
        if demo is None:
            raise ValueError(f"--symbols: {symbol} is not a demo symbol; give SYMBOL:MID:TICK:LOT")
        numbers = [*parts[1:], *demo[len(parts) - 1 :]]
    else:
        raise ValueError(f"--symbols: {text!r} is not SYMBOL[:MID[:TICK:LOT]]")
    try:
        return SymbolFlow(symbol, *numbers)
    except ArithmeticError as e:  # decimal.InvalidOperation: not a number, NaN; Infinity
        raise ValueError(f"--symbols: bad number in {text!r}") from e


# -- statistics ---------------------------------------------------------------------------------


class Stats:
    """Counters shared by every connection (one event loop thread: no locking)."""

    def __init__(self) -> None:
        self.sent = [0, 0, 0, 0]  # by kind
        self.acked = [0, 0, 0, 0]
        self.order_latency = array.array("q")  # ns, new orders
        self.cancel_latency = array.array("q")  # ns, cancels
        self.rejects: collections.Counter[str] = collections.Counter()
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.errors: list[str] = []
        self.skipped = 0  # open loop: sends skipped because of the backlog bound
        self.first_send_ns = 0
        self.last_ack_ns = 0
        self.feed_messages = 0
        self.feed_bytes = 0
        self.feed_trade_gaps = 0
        self.feed_book_gaps = 0
        self.feed_conflated = 0

    @property
    def sent_total(self) -> int:
        return sum(self.sent)

    @property
    def acked_total(self) -> int:
        return sum(self.acked)

    @property
    def reject_total(self) -> int:
        return sum(self.rejects.values())

    def error(self, text: str) -> None:
        if len(self.errors) < 100:
            self.errors.append(text)


def latency_summary(samples_ns: array.array[int]) -> dict[str, Any]:
    """Percentiles of a latency sample, in microseconds (hdrhistogram when installed)."""
    if not samples_ns:
        return {"count": 0}
    percentiles = (50.0, 90.0, 99.0, 99.9)
    try:
        from hdrh.histogram import HdrHistogram
    except ImportError:
        ordered = sorted(samples_ns)
        n = len(ordered)

        def at(p: float) -> float:
            return ordered[min(n - 1, max(0, math.ceil(p / 100 * n) - 1))] / 1000

        out: dict[str, Any] = {f"p{p:g}": round(at(p), 1) for p in percentiles}
        out.update(count=n, max=round(ordered[-1] / 1000, 1), mean=round(sum(ordered) / n / 1000, 1))
        out["method"] = "sorted list"
        return out
    hist = HdrHistogram(1, 3_600_000_000, 3)  # 1 us .. 1 h, 3 significant digits
    record = hist.record_value
    for ns in samples_ns:
        record(max(1, ns // 1000))
    out = {f"p{p:g}": hist.get_value_at_percentile(p) for p in percentiles}
    out.update(count=hist.get_total_count(), max=hist.get_max_value(), mean=round(hist.get_mean_value(), 1))
    out["method"] = "hdrhistogram"
    return out


# -- one order-entry connection -----------------------------------------------------------------


class Worker:
    """One order-entry connection: generates the flow and matches the replies."""

    def __init__(
        self, index: int, client: Client, account: str, options: Options, stats: Stats, run: Run, seed: int
    ) -> None:
        self.index = index
        self.client = client
        self.account = account
        self.options = options
        self.stats = stats
        self.run = run
        self.rng = random.Random(seed)
        self.symbols = options.symbols
        self.inflight: dict[int, tuple[int, int]] = {}  # request_id -> (sent ns, kind)
        # this connection's limit orders that may rest, oldest first, sent or acknowledged:
        # client order id -> (symbol, venue order id once known)
        self.resting: collections.OrderedDict[str, tuple[str, int | None]] = collections.OrderedDict()
        self.next_rid = random_request_id_base()  # unique even on a shared account
        self.cid_prefix = f"lg{run.run_id}{index}-"
        self.lost = False
        #: another connection logs on as the same account (and so receives our reports too)
        self.shared = options.connections > len(options.accounts)

    # -- sending ----------------------------------------------------------------------------------

    def _message(self) -> tuple[dict[str, Any], int]:
        rng = self.rng
        rid = self.next_rid
        self.next_rid = rid + 1
        r = rng.random()
        resting = self.resting
        if resting and (r < CANCEL_SHARE or len(resting) >= self.options.max_resting):
            # the oldest: by venue id once acknowledged, else by client order id (still in flight;
            # the venue handles a session's requests in order, so the cancel follows the order)
            cid, (symbol, order_id) = resting.popitem(last=False)
            cancel: dict[str, Any] = {"type": "cancel", "symbol": symbol, "request_id": rid}
            if order_id is None:
                cancel["orig_client_order_id"] = cid
            else:
                cancel["order_id"] = order_id
            return cancel, _CANCEL
        flow = self.symbols[rng.randrange(len(self.symbols))] if len(self.symbols) > 1 else self.symbols[0]
        buy = rng.random() < 0.5
        msg: dict[str, Any] = {
            "type": "new_order",
            "client_order_id": f"{self.cid_prefix}{rid}",
            "symbol": flow.symbol,
            "side": "buy" if buy else "sell",
            "quantity": flow.quantities[rng.randrange(16)],
            "request_id": rid,
        }
        r = rng.random()
        if r < IOC_SHARE:
            msg["order_type"] = "ioc"
            through = flow.ioc_ticks
            msg["price"] = flow.price(flow.mid_ticks + through if buy else flow.mid_ticks - through)
            return msg, _IOC
        if r < IOC_SHARE + MARKET_SHARE:
            msg["order_type"] = "market"
            msg["quantity"] = flow.quantities[rng.randrange(4)]  # small ones
            return msg, _MARKET
        msg["order_type"] = "limit"
        offset = rng.randint(-flow.cross_ticks, flow.passive_ticks)
        msg["price"] = flow.price(flow.mid_ticks - offset if buy else flow.mid_ticks + offset)
        resting[msg["client_order_id"]] = (flow.symbol, None)
        return msg, _LIMIT

    def send(self, n: int) -> int:
        """Send up to ``n`` requests in one write (fewer if the run's budget ends); return the number."""
        n = self.run.take(n)
        if n <= 0 or self.lost:
            return 0
        make = self._message
        msgs = []
        kinds = []
        for _ in range(n):
            msg, kind = make()
            msgs.append(msg)
            kinds.append(kind)
        encode = self.client.encode
        data = b"".join([encode(m) for m in msgs])
        now = time.perf_counter_ns()  # just before the write
        inflight = self.inflight
        sent = self.stats.sent
        for msg, kind in zip(msgs, kinds, strict=True):
            inflight[msg["request_id"]] = (now, kind)
            sent[kind] += 1
        if not self.stats.first_send_ns:
            self.stats.first_send_ns = now
        try:
            self.client.transport.write(data)
        except ClientError as e:
            self._lost(str(e))
        return n

    def refill(self) -> None:
        """Closed loop: top the window up to ``--in-flight`` outstanding requests."""
        free = self.options.in_flight - len(self.inflight)
        if free > 0 and self.run.sending:
            self.send(free)

    # -- receiving --------------------------------------------------------------------------------

    def on_batch(self, msgs: list[dict[str, Any]]) -> None:
        """Handle one batch of replies (called from the protocol's ``data_received``)."""
        now = time.perf_counter_ns()
        stats = self.stats
        inflight = self.inflight
        resting = self.resting
        order_lat = stats.order_latency
        cancel_lat = stats.cancel_latency
        acked = stats.acked
        replies = 0
        shared = self.shared
        prefix = self.cid_prefix
        for m in msgs:
            mtype = m.get("type")
            rid = m.get("request_id")
            kind = -1
            if rid is not None:
                entry = inflight.pop(rid, None)
                if entry is not None:
                    replies += 1
                    kind = entry[1]
                    acked[kind] += 1
                    (cancel_lat if kind == _CANCEL else order_lat).append(now - entry[0])
            if mtype == "execution_report":
                if shared and not str(m.get("client_order_id")).startswith(prefix):
                    continue  # another connection's order on the same account
                exec_type = m["exec_type"]
                if exec_type == "new":
                    cid = m["client_order_id"]
                    if kind == _LIMIT and cid in resting:
                        resting[cid] = (m["symbol"], m["order_id"])  # keeps its place
                elif exec_type == "trade":
                    stats.outcomes["fill"] += 1
                    if m["order_status"] == "filled":
                        resting.pop(m["client_order_id"], None)
                elif exec_type == "rejected":
                    stats.rejects[str(m.get("reject_reason"))] += 1
                    resting.pop(m["client_order_id"], None)
                elif exec_type in ("canceled", "expired"):
                    resting.pop(m["client_order_id"], None)
                    reason = m.get("reason")
                    if reason != "canceled_by_user":
                        stats.outcomes[f"{exec_type}:{reason}"] += 1
            elif mtype == "cancel_reject":
                stats.rejects[f"cancel:{m.get('reason')}"] += 1
            elif mtype == "reject":
                stats.rejects[f"reject:{m.get('reason')}"] += 1
                if rid is None:
                    stats.error(f"connection {self.index}: reject {m.get('reason')}: {m.get('text')}")
            elif mtype == "logout":
                stats.error(f"connection {self.index}: server logged out: {m.get('text')}")
            elif mtype == "test_request":  # the server probes a connection quiet for a while
                with contextlib.suppress(ClientError):
                    self.client.send({"type": "heartbeat", "test_request_id": m.get("test_request_id")})
        if replies:
            stats.last_ack_ns = now
        if self.run.closed_loop and self.run.sending:
            self.refill()
        if not inflight:
            self.run.maybe_drained()

    def _lost(self, why: str) -> None:
        if not self.lost:
            self.lost = True
            if not self.run.finished:
                self.stats.error(f"connection {self.index} ({self.account}) lost: {why}")
            self.run.maybe_drained()


# -- feed subscribers ---------------------------------------------------------------------------


class Subscriber:
    """Reads every symbol's feed and counts messages, sequence gaps and conflation."""

    def __init__(self, client: Client, stats: Stats) -> None:
        self.client = client
        self.stats = stats
        self.seq = SeqCheck()

    def on_batch(self, msgs: list[dict[str, Any]]) -> None:
        stats = self.stats
        check = self.seq.check
        for m in msgs:
            mtype = m.get("type")
            if mtype not in ("bbo", "depth", "trade"):
                continue
            stats.feed_messages += 1
            if check(m):
                if mtype == "trade":
                    stats.feed_trade_gaps += 1
                else:
                    stats.feed_book_gaps += 1
            stats.feed_conflated += m.get("conflated", 0)


# -- the run ------------------------------------------------------------------------------------


class Run:
    """The run's shared state: the request budget, the stop flag and the drain signal."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.run_id = secrets.token_hex(4)
        self.closed_loop = not options.rate
        self.budget = options.count
        self.sending = True
        self.finished = False
        self.workers: list[Worker] = []
        self.drained = asyncio.Event()

    def take(self, n: int) -> int:
        """Reserve up to ``n`` requests of the budget; stop sending when it is spent."""
        if not self.sending:
            return 0
        n = min(n, self.budget)
        self.budget -= n
        if self.budget <= 0:
            self.sending = False
        return n

    def maybe_drained(self) -> None:
        if not self.sending and all(w.lost or not w.inflight for w in self.workers):
            self.drained.set()


async def run_loadgen(options: Options) -> dict[str, Any]:
    """Run the load generator and return its report (a JSON-able dict with ``exit_code``)."""
    stats = Stats()
    run = Run(options)
    report: dict[str, Any] = {"settings": options.describe(), "exit_code": 0}
    clients: list[Client] = []
    try:
        try:
            for index in range(options.connections):
                account, key = options.accounts[index % len(options.accounts)]
                client = await connect(options.host, options.port, timeout=5)
                clients.append(client)
                await client.logon(account, key, timeout=5)
                worker = Worker(index, client, account, options, stats, run, options.seed * 1000 + index)
                run.workers.append(worker)
            subscribers = []
            for _ in range(options.subscribers):
                client = await connect(options.host, options.port, timeout=5)
                clients.append(client)
                for flow in options.symbols:
                    await client.subscribe(flow.symbol, timeout=5)
                subscribers.append(Subscriber(client, stats))
            if options.server_stats:
                await _server_stats(run.workers[0].client, reset=True)
        except (OSError, TimeoutError, ClientError) as e:
            report["exit_code"] = 1
            report["fatal"] = f"cannot start: {type(e).__name__}: {e} ({options.host}:{options.port})"
            return _finish(report, stats, 0.0)

        for sub in subscribers:
            sub.client.listen(sub.on_batch)
        for worker in run.workers:
            worker.client.listen(worker.on_batch)
        watchers = [asyncio.ensure_future(_watch(w)) for w in run.workers]

        loop = asyncio.get_running_loop()
        started = loop.time()
        progress = None if options.quiet else asyncio.ensure_future(_progress(run, stats, started))
        if run.closed_loop:
            for worker in run.workers:
                worker.refill()
            await _until(run, started + options.duration)
        else:
            await _pace(run, stats, started, options)
        run.sending = False
        send_seconds = loop.time() - started
        run.maybe_drained()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.drained.wait(), options.drain_timeout)
        run.finished = True
        if progress is not None:
            progress.cancel()
        for task in watchers:
            task.cancel()
        unanswered = sum(len(w.inflight) for w in run.workers if not w.lost)
        report["unanswered"] = unanswered
        if unanswered:
            stats.error(f"{unanswered} requests unanswered after {options.drain_timeout:g} s")
        if any(w.lost for w in run.workers):
            report["exit_code"] = 1
        if not options.keep_orders:
            report["cleanup"] = await _cleanup(run)
        if options.server_stats:
            stats_client = run.workers[0].client
            stats_client.listen(None)
            try:
                report["server_latency_us"] = await _server_stats(stats_client, reset=False)
            except (ClientError, TimeoutError) as e:
                stats.error(f"stats request failed: {e!r}")
        return _finish(report, stats, send_seconds)
    finally:
        for client in clients:
            client.listen(None)
            await client.close()


async def _server_stats(client: Client, *, reset: bool) -> dict[str, dict[str, float]]:
    # The engine's latency figures in microseconds (counts unchanged); ClientError if it has none.
    reply = await client.request({"type": "stats", "reset": reset}, timeout=10)
    if not reply["enabled"]:
        raise ClientError("the engine does not record latencies: start it with --latency-stats")
    return {
        name: {key: value if key == "count" else round(value / 1000, 1) for key, value in figures.items()}
        for name, figures in reply["latency"].items()
    }


async def _watch(worker: Worker) -> None:
    await worker.client.closed.wait()
    worker._lost(str(worker.client.close_reason or "connection closed"))


async def _until(run: Run, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    while run.sending and not all(w.lost for w in run.workers):
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        await asyncio.sleep(min(0.05, remaining))


async def _pace(run: Run, stats: Stats, started: float, options: Options) -> None:
    # Open loop: every tick, send what the target rate says is due by now, split over the
    # connections; a connection at its backlog bound skips its share (counted, not sent later).
    loop = asyncio.get_running_loop()
    deadline = started + options.duration
    # At least 1 ms: libuv (uvloop) timers have millisecond resolution, so a shorter sleep
    # returns at once and the pacer would spin a whole core, taking it from the engine.
    tick = max(0.001, min(0.01, 1.0 / options.rate))
    due_total = 0
    workers = run.workers
    turn = 0
    while run.sending and not all(w.lost for w in workers):
        now = loop.time()
        if now >= deadline:
            return
        target = int((now - started) * options.rate)
        due = target - due_total
        if due > 0:
            due_total = target
            alive = [w for w in workers if not w.lost]
            share, extra = divmod(due, len(alive))
            for i, worker in enumerate(alive):
                n = share + (1 if (i + turn) % len(alive) < extra else 0)
                if n <= 0:
                    continue
                room = options.max_backlog - len(worker.inflight)
                if room < n or worker.client.protocol.paused:
                    skip = n if worker.client.protocol.paused else n - max(0, room)
                    stats.skipped += skip
                    n -= skip
                if n > 0:
                    worker.send(n)
            turn += 1
        await asyncio.sleep(tick)


async def _progress(run: Run, stats: Stats, started: float) -> None:
    loop = asyncio.get_running_loop()
    last_acked = 0
    last_time = started
    while True:
        await asyncio.sleep(1.0)
        now = loop.time()
        acked = stats.acked_total
        rate = (acked - last_acked) / max(1e-9, now - last_time)
        last_acked, last_time = acked, now
        inflight = sum(len(w.inflight) for w in run.workers)
        line = (
            f"[{now - started:5.1f}s] sent {stats.sent_total} acked {acked} rejects {stats.reject_total} "
            f"| {rate:,.0f} acks/s | in flight {inflight}"
        )
        if stats.skipped:
            line += f" | skipped {stats.skipped}"
        if stats.feed_messages:
            line += f" | feed {stats.feed_messages}"
        print(line, file=sys.stderr, flush=True)


async def _cleanup(run: Run) -> dict[str, Any]:
    # Cancel every account's open orders (once per account), so runs do not pile up orders.
    canceled = 0
    done: set[str] = set()
    for worker in run.workers:
        if worker.lost or worker.account in done:
            continue
        done.add(worker.account)
        worker.client.listen(None)
        try:
            result = await worker.client.cancel_all(timeout=5)
            canceled += result.orders
        except (ClientError, TimeoutError) as e:
            run.workers[0].stats.error(f"cleanup of {worker.account} failed: {e!r}")
    return {"accounts": sorted(done), "orders_canceled": canceled}


def _finish(report: dict[str, Any], stats: Stats, send_seconds: float) -> dict[str, Any]:
    elapsed = (
        (stats.last_ack_ns - stats.first_send_ns) / 1e9 if stats.first_send_ns and stats.last_ack_ns else 0.0
    )
    acked = stats.acked_total
    report["elapsed_s"] = round(elapsed, 3)
    report["send_phase_s"] = round(send_seconds, 3)
    report["sent"] = {name: stats.sent[k] for k, name in enumerate(_KIND_NAMES)} | {"total": stats.sent_total}
    report["acked"] = {name: stats.acked[k] for k, name in enumerate(_KIND_NAMES)} | {"total": acked}
    orders_acked = acked - stats.acked[_CANCEL]
    report["throughput"] = {
        "acks_per_s": round(acked / elapsed, 1) if elapsed > 0 else 0.0,
        "order_acks_per_s": round(orders_acked / elapsed, 1) if elapsed > 0 else 0.0,
    }
    report["latency_us"] = {
        "order_to_ack": latency_summary(stats.order_latency),
        "cancel_to_ack": latency_summary(stats.cancel_latency),
    }
    report["rejects"] = dict(stats.rejects.most_common())
    report["outcomes"] = dict(stats.outcomes.most_common())
    report["skipped_backlog"] = stats.skipped
    report["feed"] = {
        "messages": stats.feed_messages,
        "trade_gaps": stats.feed_trade_gaps,
        "book_gaps": stats.feed_book_gaps,
        "conflated": stats.feed_conflated,
    }
    report["errors"] = list(stats.errors)
    return report


def format_report(report: dict[str, Any]) -> str:
    """Return the report as the text ``tradingapp loadgen`` prints."""
    s = report["settings"]
    mode = (
        f"open loop at {s['rate']:g} req/s"
        if s["mode"] == "open"
        else f"closed loop, window {s['in_flight']}"
    )
    lines = [
        f"loadgen: {mode}; {s['connections']} connections; symbols {' '.join(s['symbols'])}; "
        f"count {s['count']}, duration {s['duration']:g} s; seed {s['seed']}"
    ]
    if "fatal" in report:
        lines.append(f"FATAL: {report['fatal']}")
        return "\n".join(lines)
    sent, acked = report["sent"], report["acked"]
    lines.append(
        f"sent        {sent['total']} requests (limit {sent['limit']}, ioc {sent['ioc']}, "
        f"market {sent['market']}, cancel {sent['cancel']}) in {report['send_phase_s']:.2f} s"
    )
    lines.append(
        f"acked       {acked['total']} (unanswered {report.get('unanswered', 0)}) "
        f"over {report['elapsed_s']:.2f} s (first send to last reply)"
    )
    tp = report["throughput"]
    lines.append(f"throughput  {tp['acks_per_s']:,.0f} acks/s ({tp['order_acks_per_s']:,.0f} order acks/s)")
    for name, label in (("order_to_ack", "order->ack"), ("cancel_to_ack", "cancel->ack")):
        lat = report["latency_us"][name]
        if lat.get("count"):
            figures = "  ".join(f"{p} {lat[p]:.0f}" for p in ("p50", "p90", "p99", "p99.9", "max"))
            lines.append(f"latency     {label:<11} us: {figures}  (n={lat['count']}, {lat['method']})")
    outcomes = ", ".join(f"{k} {v}" for k, v in report["outcomes"].items()) or "none"
    lines.append(f"outcomes    {outcomes}")
    rejects = ", ".join(f"{k} {v}" for k, v in report["rejects"].items()) or "none"
    lines.append(f"rejects     {rejects}")
    if report["skipped_backlog"]:
        lines.append(f"skipped     {report['skipped_backlog']} sends (backlog bound reached)")
    if s["subscribers"]:
        feed = report["feed"]
        lines.append(
            f"feed        {s['subscribers']} subscribers, {feed['messages']} messages, "
            f"trade gaps {feed['trade_gaps']}, bbo/depth gaps {feed['book_gaps']}, "
            f"conflated {feed['conflated']}"
        )
    server = report.get("server_latency_us")
    if server:
        for name, label in (("order", "order"), ("bbo", "bbo update"), ("trade", "trade")):
            lat = server[name]
            figures = "  ".join(f"{p} {lat[p]:.0f}" for p in ("p50", "p90", "p99", "p99.9", "max"))
            lines.append(f"server      {label:<11} us: {figures}  (n={lat['count']}, receive -> written)")
        stages = ", ".join(
            f"{name.replace('_to_', '->')} {server[name]['mean']:.0f}"
            for name in ("receive_to_risk", "risk_to_matched", "matched_to_durable", "durable_to_written")
        )
        lines.append(f"stages      mean us: {stages}")
    if "cleanup" in report:
        c = report["cleanup"]
        lines.append(f"cleanup     canceled {c['orders_canceled']} open orders of {', '.join(c['accounts'])}")
    errors = report["errors"]
    lines.append("errors      " + ("none" if not errors else f"{len(errors)}:"))
    lines.extend(f"  - {e}" for e in errors[:20])
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """A standalone parser (``python -m clients.loadgen``)."""
    parser = argparse.ArgumentParser(prog="loadgen")
    add_arguments(parser)
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """Parse ``argv`` with the load generator's options (for tests and scripts)."""
    return build_parser().parse_args(list(argv))


if __name__ == "__main__":
    sys.exit(main(build_parser().parse_args()))
