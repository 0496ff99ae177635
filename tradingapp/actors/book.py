"""The book actor: owns one symbol's :class:`OrderBook` and turns its events into messages.

For each command: apply it to the book, journal that the book took its next command (``B``),
hand the events to risk for settlement, and queue the execution reports for the owners and the
market-data update for the feed publisher. After each batch the queued messages go to the outbox
in one piece, released when the journal has made them durable.

Market data is published once per batch: every trade, and at most one ``bbo`` and one ``depth``
message, each numbered with the next seq of its channel (:class:`FeedSequences`), so a
subscriber that loses nothing sees every channel's seq grow by exactly one. A channel publishes
only when its picture at the end of the batch differs from the last one it published: a batch
that changes the book and changes it back (an order and its cancel) sends nothing.
"""

from __future__ import annotations

import time
from typing import Any

from tradingapp.actors.base import Actor
from tradingapp.actors.messages import (
    Barrier,
    BookCommand,
    BookOutput,
    BookQuery,
    DepthInterest,
    MarketUpdate,
)
from tradingapp.engine.book import OrderBook
from tradingapp.engine.commands import CancelAll
from tradingapp.engine.events import (
    BboChanged,
    CancelRejected,
    DepthChanged,
    Event,
    Trade,
)
from tradingapp.engine.reasons import Reason
from tradingapp.engine.sequence import FeedSequences
from tradingapp.latency import BookTracer
from tradingapp.outbox import Delivery, Outbox
from tradingapp.persistence import records as rec
from tradingapp.protocol.schema import format_timestamp
from tradingapp.reports import (
    cancel_reject,
    execution_report,
    fill_reports,
    order_state,
    reject,
    trade_message,
)

_QUIET = frozenset({BboChanged, DepthChanged})


class BookActor(Actor):
    """One symbol's book, behind a bounded mailbox."""

    def __init__(
        self,
        book: OrderBook,
        *,
        capacity: int,
        journal: Any,
        outbox: Outbox,
        risk: Actor,
        feed: Actor,
        seqs: FeedSequences,
    ) -> None:
        super().__init__(f"book:{book.spec.symbol}", capacity)
        self.book = book
        self.spec = book.spec
        self.journal = journal
        self.outbox = outbox
        self.risk = risk
        self.feed = feed
        self.seqs = seqs
        self.depth_levels = 0
        self._out: list[Delivery] = []
        self._step = rec.step_record(rec.BOOK_STEP, book.spec.symbol)
        self._trades: list[tuple[int, dict[str, Any]]] = []
        self._bbo: tuple[int | None, int, int | None, int] | None = None
        self._depth_changed = False
        # the pictures last published, to send a channel only when its picture differs
        self._published_bbo: tuple[int | None, int, int | None, int] | None = None
        self._published_depth: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None = None
        self._timestamp = time.time_ns()  # stamps the first snapshot; commands carry their own
        self.tracer: BookTracer | None = None  # set with ``--latency-stats``

    def on_start(self) -> None:
        # Give the feed publisher the book as it is, at once (a subscriber to a quiet book must
        # not wait for its first command), numbered above anything sent before a restart.
        self.seqs.catch_up(self.book.update_seq)
        self._publish_market(force=True)
        self.outbox.publish(self._out)
        self._out = []

    def handle(self, message: Any) -> None:
        kind = type(message)
        if kind is BookCommand:
            self._command(message)
        elif kind is BookQuery:
            self._query(message)
        elif kind is DepthInterest:
            self.depth_levels = message.levels
            self._publish_market(force=True)
        elif kind is Barrier:
            message.passed(self._out)
        else:
            raise TypeError(f"book actor got {kind.__name__}")

    def _command(self, message: BookCommand) -> None:
        command = message.command
        events = self.book.apply(command)
        if self.tracer is not None:
            self.tracer.command(message.trace, message.reply, events, self._out)
        self.journal.append(command.timestamp, self._step)
        self.risk.mailbox.put_always(BookOutput(self.spec.symbol, events, command))
        self._timestamp = command.timestamp
        self._report(events, message)

    def _report(self, events: list[Event], message: BookCommand) -> None:
        # Build every outbound message the events call for.
        out = self._out
        spec = self.spec
        command = message.command
        ts = command.timestamp
        for_account = self.outbox.for_account
        # request_id goes on the reports about the request's own order(s): the one it names, or
        # for a cancel_all every order it cancels (FIX links those to the mass cancel too)
        request_id = message.request_id
        own_id = getattr(command, "order_id", None)
        mass_cancel = type(command) is CancelAll
        trade_seq = -1  # the feed seq of the last trade so far; found at the first trade
        for event in events:
            kind = type(event)
            if kind is BboChanged:
                self._bbo = event[1:]  # type: ignore[assignment]
            elif kind is DepthChanged:
                self._depth_changed = True
            elif kind is Trade:
                maker_report, taker_report = fill_reports(spec, event, ts)  # type: ignore[arg-type]
                out.append(for_account(str(event.maker.account), maker_report))  # type: ignore[union-attr]
                out.append(for_account(str(event.taker.account), taker_report))  # type: ignore[union-attr]
                if trade_seq < 0:
                    trade_seq = self.book.trade_count - sum(1 for e in events if type(e) is Trade)
                trade_seq += 1
                self._trades.append((trade_seq, trade_message(spec, event, trade_seq, ts)))  # type: ignore[arg-type]
            elif kind is CancelRejected:
                out.append((message.reply.send, cancel_reject(spec, event, request_id)))  # type: ignore[arg-type]
            else:
                report = execution_report(spec, event, ts)
                order: Any = event.order  # type: ignore[union-attr]
                if request_id is not None and (order.order_id == own_id or mass_cancel):
                    report["request_id"] = request_id
                out.append(for_account(str(order.account), report))

    def _query(self, query: BookQuery) -> None:
        # Read order states for one account; orders of other accounts look unknown.
        states = []
        for order_id in query.order_ids:
            order = self.book.order(order_id)
            if order is not None and order.account == query.account:
                states.append(order_state(self.spec, order))
        if query.gather is not None:
            query.gather.add(self.spec.symbol, states, self._out)
            return
        if not states:
            text = f"unknown order {query.order_ids[0] if query.order_ids else ''}"
            self._out.append(
                (query.reply.send, reject(Reason.UNKNOWN_ORDER, text, "order_status", query.request_id))
            )
            return
        report = {
            "type": "execution_report",
            **states[0],
            "exec_type": "order_status",
            "timestamp": format_timestamp(time.time_ns()),
        }
        if query.request_id is not None:
            report["request_id"] = query.request_id
        self._out.append((query.reply.send, report))

    def after_batch(self) -> None:
        self._publish_market(force=False)
        if self._out:
            self.outbox.publish(self._out)
            self._out = []

    def _publish_market(self, *, force: bool) -> None:
        # One market-data update per batch: all trades, the BBO if it moved, the depth if the
        # visible book (the deepest levels anyone asked for) changed; ``force`` adds the current
        # pictures (same seq when unchanged). Changes undone within the batch send nothing.
        book = self.book
        seqs = self.seqs
        bbo_moved = self._bbo is not None and self._bbo != self._published_bbo
        depth_changed = self._depth_changed
        depth = None
        if self.depth_levels and (force or depth_changed):
            depth = book.depth(self.depth_levels)
            depth_changed = depth_changed and depth != self._published_depth
            if not (force or depth_changed):
                depth = None
        if not (force or self._trades or bbo_moved or depth_changed):
            # nothing to send, and the seqs are exact at this point of the book
            seqs.base = book.update_seq
            self._bbo = None
            self._depth_changed = False
            return
        if bbo_moved:
            seqs.bbo += 1
        if depth_changed:
            seqs.depth += 1
        seqs.base = book.update_seq
        bbo = book.bbo() if force else self._bbo if bbo_moved else None
        if bbo is not None:
            self._published_bbo = bbo
        if depth is not None:
            self._published_depth = depth
        update = MarketUpdate(
            self.spec.symbol,
            self._timestamp,
            bbo,
            seqs.bbo,
            depth,
            seqs.depth,
            self.depth_levels,
            self._trades,
        )
        if self.tracer is not None:
            update.traces = self.tracer.take()
        self._out.append((self.feed.mailbox.put_always, update))
        self._trades = []
        self._bbo = None
        self._depth_changed = False
