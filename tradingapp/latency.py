"""Latency instrumentation of the live engine (``tradingapp serve --latency-stats``).

A new order is stamped with ``time.perf_counter_ns()`` once per stage: when its bytes came off
the socket (:attr:`Trace.received`), after risk admitted and journaled it (``risked``), after the
book matched it (``matched``), when the journal made its records durable and the outbox released
its acknowledgement (``durable``), and when the session handed the bytes of its acknowledgement,
of the BBO update it caused and of its trade messages to the transport (``written``). The stamps
live on one small :class:`Trace` that rides along in the messages the actors already pass
(``NewOrderRequest.trace``, ``BookCommand.trace``, ``MarketUpdate.traces``); when the feature is
off every trace is None and each actor pays one ``is None`` test per message.

Three latencies come out of it, plus the per-stage breakdown of the first:

* ``order``: received -> acknowledgement written (the first execution report of the order);
* ``bbo``: received -> BBO update written, per subscriber, for the order that last moved the BBO
  in the book's batch (BBO moves caused by cancels and replaces are not sampled);
* ``trade``: received (of the aggressor) -> trade message written, per trade and subscriber;
* ``receive_to_risk``, ``risk_to_matched``, ``matched_to_durable``, ``durable_to_written``.

Only orders admitted by risk are sampled (a risk reject never reaches a book).

Recording: HdrHistogram's Python ``record_value`` costs about 1.1 µs a call on this project's
machine, which would be a noticeable share of an order's budget when each order records up to a
dozen values. So the hot path only rounds each value to HdrHistogram's own resolution (3
significant digits: the top 11 bits) and counts it in a dict (~0.2 µs); :meth:`LatencyStats.summary`
folds those counts into HdrHistogram (``hdrhistogram`` package, the ``bench`` extra) when read.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any

from tradingapp.engine.events import BboChanged, Trade
from tradingapp.protocol.fields import LATENCY_STATS

#: The distributions reported, in this order.
DISTRIBUTIONS = (
    "order",
    "bbo",
    "trade",
    "receive_to_risk",
    "risk_to_matched",
    "matched_to_durable",
    "durable_to_written",
)
#: What a mark (a message waiting to be written) measures.
ORDER, BBO, TRADE = 0, 1, 2
#: Bits of a value kept when counting: HdrHistogram with 3 significant digits keeps 11.
_KEPT_BITS = 11
#: Largest value a histogram takes (1 minute in ns); larger values are clipped to it.
_HIGHEST_NS = 60_000_000_000
_PERCENTILES = tuple((key, float(key[1:])) for key in LATENCY_STATS if key.startswith("p"))

Mark = tuple[int, "Trace"]


def require_hdrhistogram() -> None:
    """Raise ImportError with the fix when the ``hdrhistogram`` package is missing."""
    try:
        import hdrh.histogram  # noqa: F401
    except ImportError as e:
        raise ImportError("--latency-stats needs the hdrhistogram package: pip install -e '.[bench]'") from e


class Trace:
    """The stage stamps of one order (``perf_counter_ns`` values; 0 until reached)."""

    __slots__ = ("durable", "matched", "received", "risked")

    def __init__(self, received: int) -> None:
        self.received = received
        self.risked = 0
        self.matched = 0
        self.durable = 0


class MarketTraces:
    """The traces behind one :class:`~tradingapp.actors.messages.MarketUpdate`.

    ``bbo`` is the trace of the order whose command last moved the BBO (None if that was an
    untraced command); ``trades`` holds the aggressor's trace once per traced trade.
    """

    __slots__ = ("bbo", "trades")

    def __init__(self, bbo: Trace | None, trades: list[Trace]) -> None:
        self.bbo = bbo
        self.trades = trades


class BookTracer:
    """A book actor's side of the tracing: stamps ``matched``, collects the market traces."""

    def __init__(self, stats: LatencyStats) -> None:
        self.stats = stats
        self._bbo: Trace | None = None
        self._bbo_moved = False
        self._trades: list[Trace] = []

    def command(self, trace: Trace | None, reply: Any, events: list[Any], out: list[Any]) -> None:
        """After the book applied a command: stamp it and queue the acknowledgement's mark.

        The mark is a delivery in the same batch as the acknowledgement, so it runs when the
        acknowledgement is released (the journal made it durable) and before it is written.
        """
        if trace is not None:
            trace.matched = perf_counter_ns()
            out.append((self.stats.acknowledged, (reply, trace)))
        for event in events:
            kind = type(event)
            if kind is Trade:
                if trace is not None:
                    self._trades.append(trace)
            elif kind is BboChanged:
                self._bbo = trace
                self._bbo_moved = True

    def take(self) -> MarketTraces | None:
        """Return the traces of the market update being published, and start afresh."""
        if not self._trades and self._bbo is None:
            self._bbo_moved = False
            return None
        traces = MarketTraces(self._bbo if self._bbo_moved else None, self._trades)
        self._bbo = None
        self._bbo_moved = False
        self._trades = []
        return traces


def mark_feed(subscribers: dict[str, dict[Any, int]], traces: MarketTraces) -> None:
    """After the feed queued an update to its subscribers: mark the sampled messages."""
    if traces.bbo is not None:
        for session in subscribers["bbo"]:
            session.mark(BBO, traces.bbo)
    trade_sessions = subscribers["trades"]
    if trade_sessions:
        for trace in traces.trades:
            for session in trade_sessions:
                session.mark(TRADE, trace)


class LatencyStats:
    """The engine's latency counts, one per distribution; read with :meth:`summary`."""

    def __init__(self) -> None:
        require_hdrhistogram()
        self._counts: dict[str, dict[int, int]] = {name: {} for name in DISTRIBUTIONS}

    def acknowledged(self, item: tuple[Any, Trace]) -> None:
        """A delivery: the order's acknowledgement was just released by the journal's gate."""
        session, trace = item
        trace.durable = perf_counter_ns()
        session.mark(ORDER, trace)

    def written(self, marks: list[Mark]) -> None:
        """The messages behind ``marks`` were just handed to the transport: record them."""
        now = perf_counter_ns()
        counts = self._counts
        order, bbo, trade = counts["order"], counts["bbo"], counts["trade"]
        for kind, trace in marks:
            if kind == ORDER:
                _add(order, now - trace.received)
                _add(counts["receive_to_risk"], trace.risked - trace.received)
                _add(counts["risk_to_matched"], trace.matched - trace.risked)
                _add(counts["matched_to_durable"], trace.durable - trace.matched)
                _add(counts["durable_to_written"], now - trace.durable)
            else:
                _add(bbo if kind == BBO else trade, now - trace.received)

    def reset(self) -> None:
        """Forget everything recorded so far."""
        for counts in self._counts.values():
            counts.clear()

    def summary(self) -> dict[str, dict[str, int]]:
        """Return every distribution as ``{count, min, mean, p50, ..., max}`` in nanoseconds."""
        return {name: _summarise(counts) for name, counts in self._counts.items()}


def _add(counts: dict[int, int], ns: int) -> None:
    # Round down to the top 11 bits (HdrHistogram's 3-digit resolution), then count.
    shift = ns.bit_length() - _KEPT_BITS
    if shift > 0:
        ns = ns >> shift << shift
    counts[ns] = counts.get(ns, 0) + 1


def _summarise(counts: dict[int, int]) -> dict[str, int]:
    # One pass over the histogram for every percentile (``get_value_at_percentile`` and
    # ``get_mean_value`` walk all its buckets in Python each time: ~1 s for a summary, with the
    # engine stopped meanwhile); count and mean come straight from the counts.
    from hdrh.histogram import HdrHistogram

    if not counts:
        return dict.fromkeys(LATENCY_STATS, 0)
    hist = HdrHistogram(1, _HIGHEST_NS, 3)
    total = 0
    weighted = 0
    for value, n in counts.items():
        hist.record_value(min(max(value, 1), _HIGHEST_NS), n)
        total += n
        weighted += value * n
    at = hist.get_percentile_to_value_dict([p for _, p in _PERCENTILES])
    out = {"count": total, "min": hist.get_min_value(), "mean": round(weighted / total)}
    out["max"] = hist.get_max_value()
    out.update((key, at[p]) for key, p in _PERCENTILES)
    return {key: int(out[key]) for key in LATENCY_STATS}


def stats_reply(stats: LatencyStats | None, request_id: Any, reset: bool) -> dict[str, Any]:
    """The ``stats`` reply: the distributions (empty when the engine runs without the flag)."""
    message: dict[str, Any] = {
        "type": "stats",
        "enabled": stats is not None,
        "latency": stats.summary() if stats is not None else {},
    }
    if stats is not None and reset:
        stats.reset()
    if request_id is not None:
        message["request_id"] = request_id
    return message
