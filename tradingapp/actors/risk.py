"""The risk actor: the single sequencer of order entry, and the owner of every balance.

Every order-entry request of every session comes through here, in arrival order, so a session's
requests reach the books in the order it sent them. For each one the actor checks and reserves
(phase 1, :meth:`Risk.admit`), journals the outcome, and passes the command to the symbol's book
actor. Book answers come back as :class:`BookOutput` messages and are settled (phase 2) and
journaled in the order they are handled.

A buy without a price holds the account's whole available quote balance for the one command that
runs it. Until that command's output is settled, the account's later requests wait here (in
order) instead of being refused for funds that are only held for an instant.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter_ns
from typing import Any

from tradingapp.actors.base import Actor
from tradingapp.actors.messages import (
    Barrier,
    BookCommand,
    BookOutput,
    BookQuery,
    CancelAllRequest,
    CancelRequest,
    NewOrderRequest,
    QueryRequest,
    ReplaceRequest,
)
from tradingapp.engine.commands import Cancel, CancelAll, NewOrder, Replace
from tradingapp.engine.events import CancelRejected
from tradingapp.engine.reasons import Reason
from tradingapp.engine.risk import Rejection, Risk
from tradingapp.latency import Trace
from tradingapp.outbox import Delivery, Outbox
from tradingapp.persistence import records as rec
from tradingapp.reports import cancel_reject, cancel_reject_message, reject, rejected_order


class OpenOrdersGather:
    """Collects ``open_orders`` parts from several books and replies once all have answered."""

    def __init__(self, reply: Any, request_id: Any, parts: int) -> None:
        self.reply = reply
        self.request_id = request_id
        self.waiting = parts
        self.states: dict[str, list[dict[str, Any]]] = {}

    def add(self, symbol: str, states: list[dict[str, Any]], out: list[Delivery]) -> None:
        """Add one book's part; queue the reply on ``out`` when it was the last."""
        self.states[symbol] = states
        self.waiting -= 1
        if self.waiting == 0:
            orders = sorted((s for part in self.states.values() for s in part), key=_by_order_id)
            out.append((self.reply.send, _open_orders_reply(orders, self.request_id)))


def _by_order_id(state: dict[str, Any]) -> int:
    order_id: int = state["order_id"]
    return order_id


def _open_orders_reply(orders: list[dict[str, Any]], request_id: Any) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "open_orders", "orders": orders}
    if request_id is not None:
        message["request_id"] = request_id
    return message


class RiskActor(Actor):
    """Owns :class:`Risk`; sequences order entry; settles book outputs."""

    def __init__(self, risk: Risk, *, capacity: int, journal: Any, outbox: Outbox) -> None:
        super().__init__("risk", capacity)
        self.risk = risk
        self.journal = journal
        self.outbox = outbox
        self.books: dict[str, Actor] = {}
        self._out: list[Delivery] = []
        self._waiting: dict[str, deque[Any]] = {}  # account -> requests held behind a budget buy
        self._blocking: dict[str, int] = {}  # account -> order id of its running budget buy
        self._settle_steps = {symbol: rec.step_record(rec.SETTLE, symbol) for symbol in risk.specs}

    async def before_batch(self) -> None:
        # Backpressure: do not pass on more work while a book is already over its bound.
        for book in self.books.values():
            while not book.mailbox.has_room():
                await book.mailbox.wait_for_room()

    def handle(self, message: Any) -> None:
        if type(message) is BookOutput:
            self._settle(message)
            return
        account = message.account
        waiting = self._waiting.get(account)
        if waiting is not None:
            waiting.append(message)
            return
        self._entry(message)

    def _entry(self, message: Any) -> None:
        kind = type(message)
        if kind is NewOrderRequest:
            self._new_order(message)
        elif kind is CancelRequest:
            self._cancel(message)
        elif kind is ReplaceRequest:
            self._replace(message)
        elif kind is CancelAllRequest:
            self._cancel_all(message)
        elif kind is QueryRequest:
            self._query(message)
        elif kind is Barrier:
            message.passed(self._out)
        else:
            raise TypeError(f"risk actor got {kind.__name__}")

    def on_failure(self, message: Any, exc: Exception) -> None:
        reply = getattr(message, "reply", None)
        if reply is not None:
            text = f"internal error while handling {type(message).__name__}"
            self._out.append((reply.send, reject(Reason.INTERNAL_ERROR, text, None, message.request_id)))

    def after_batch(self) -> None:
        if self._out:
            self.outbox.publish(self._out)
            self._out = []

    # -- order entry ---------------------------------------------------------------------------

    def _new_order(self, request: NewOrderRequest) -> None:
        try:
            command, held = self.risk.admit(request, request.timestamp)
        except Rejection as refused:
            self._refuse_order(request, refused)
            return
        self.journal.append(request.timestamp, rec.admit_record(command, held))
        if self.risk.holds_whole_balance(command.order_type, command.side, command.price):
            self._blocking[request.account] = command.order_id
            self._waiting[request.account] = deque()
        trace = request.trace
        if trace is not None:
            trace.risked = perf_counter_ns()
        self._forward(command, request, trace)

    def _refuse_order(self, request: NewOrderRequest, refused: Rejection) -> None:
        self.journal.append(
            request.timestamp,
            rec.refused_record(request.account, "new_order", refused.reason.value, refused.text),
        )
        spec = self.risk.specs[request.symbol]
        shown = {
            "client_order_id": request.client_order_id,
            "symbol": request.symbol,
            "side": request.side,
            "order_type": request.order_type,
            "price": spec.format_price(request.price),
            "stop_price": spec.format_price(request.stop_price),
            "quantity": spec.format_quantity(request.quantity),
        }
        report = rejected_order(
            spec, shown, refused.reason, refused.text, request.timestamp, request.request_id
        )
        self._out.append((request.reply.send, report))

    def _journal_refusal(self, request: Any, what: str, reason: Reason, text: str) -> None:
        # The audit record (``X``) of a cancel or replace refused before any book saw it, as for
        # a refused new order: replay ignores it, ``tradingapp journal`` shows it.
        self.journal.append(request.timestamp, rec.refused_record(request.account, what, reason.value, text))

    def _resolve(self, request: Any, response_to: str) -> tuple[int, str] | None:
        # Find the order a cancel or replace names (by id or by client id) and its symbol; journal
        # and answer the refusal when there is none.
        risk = self.risk
        order_id = request.order_id
        if order_id is None and request.orig_client_order_id is not None:
            order_id = risk.order_id_for_client_id(request.account, request.orig_client_order_id)
        symbol = request.symbol
        if order_id is not None and symbol is None:
            symbol = risk.symbol_of(request.account, order_id)
        if order_id is None or symbol is None or symbol not in self.books:
            text = f"unknown order {request.order_id or request.orig_client_order_id}"
            self._journal_refusal(request, response_to, Reason.UNKNOWN_ORDER, text)
            message = cancel_reject_message(
                response_to,
                Reason.UNKNOWN_ORDER,
                text,
                request.request_id,
                order_id=order_id,
                client_order_id=request.client_order_id,
                orig_client_order_id=request.orig_client_order_id,
                symbol=symbol,
            )
            self._out.append((request.reply.send, message))
            return None
        return order_id, symbol

    def _cancel(self, request: CancelRequest) -> None:
        found = self._resolve(request, "cancel")
        if found is None:
            return
        order_id, symbol = found
        command = Cancel(order_id, request.account, request.client_order_id, request.timestamp, symbol)
        self.journal.append(request.timestamp, rec.cancel_record(command))
        self._forward(command, request)

    def _replace(self, request: ReplaceRequest) -> None:
        found = self._resolve(request, "replace")
        if found is None:
            return
        order_id, symbol = found
        command = Replace(
            order_id,
            request.account,
            request.quantity,
            request.price,
            request.stop_price,
            request.client_order_id,
            None,
            request.timestamp,
            symbol,
        )
        try:
            command, extra = self.risk.admit_replace(request.account, command)
        except Rejection as refused:
            self._journal_refusal(request, "replace", refused.reason, refused.text)
            event = CancelRejected(
                order_id,
                request.account,
                None,
                refused.reason,
                refused.text,
                "replace",
                request.client_order_id,
            )
            self._out.append(
                (request.reply.send, cancel_reject(self.risk.specs[symbol], event, request.request_id))
            )
            return
        self.journal.append(request.timestamp, rec.replace_record(command, extra))
        self._forward(command, request)

    def _cancel_all(self, request: CancelAllRequest) -> None:
        holds = self.risk.open_holds(request.account, request.symbol)
        symbols = sorted({h.symbol for h in holds})
        for symbol in symbols:
            command = CancelAll(request.account, request.timestamp, symbol)
            self.journal.append(request.timestamp, rec.cancel_all_record(command))
            self._forward(command, request)
        reply: dict[str, Any] = {"type": "cancel_all", "orders": len(holds)}
        if request.symbol is not None:
            reply["symbol"] = request.symbol
        if request.request_id is not None:
            reply["request_id"] = request.request_id
        self._out.append((request.reply.send, reply))

    def _forward(
        self, command: NewOrder | Cancel | Replace | CancelAll, request: Any, trace: Trace | None = None
    ) -> None:
        message = BookCommand(command, request.reply, request.request_id, trace)
        self.books[command.symbol].mailbox.put_always(message)

    # -- queries ---------------------------------------------------------------------------------

    def _query(self, request: QueryRequest) -> None:
        if request.kind == "balances":
            self._out.append((request.reply.send, self._balances(request)))
        elif request.kind == "open_orders":
            holds = self.risk.open_holds(request.account, request.symbol)
            by_symbol: dict[str, list[int]] = {}
            for hold in holds:
                by_symbol.setdefault(hold.symbol, []).append(hold.order_id)
            if not by_symbol:
                self._out.append((request.reply.send, _open_orders_reply([], request.request_id)))
                return
            gather = OpenOrdersGather(request.reply, request.request_id, len(by_symbol))
            for symbol, ids in by_symbol.items():
                query = BookQuery(
                    "open_orders", request.reply, request.request_id, request.account, ids, gather
                )
                self.books[symbol].mailbox.put_always(query)
        else:
            order_id = request.order_id
            if order_id is None and request.client_order_id is not None:
                order_id = self.risk.order_id_for_client_id(request.account, request.client_order_id)
            book = self.books.get(request.symbol or "")
            if order_id is None or book is None:
                ref = request.order_id if request.order_id is not None else request.client_order_id
                text = f"unknown order {ref}" if book is not None else f"unknown symbol {request.symbol!r}"
                reason = Reason.UNKNOWN_ORDER if book is not None else Reason.UNKNOWN_SYMBOL
                self._out.append(
                    (request.reply.send, reject(reason, text, "order_status", request.request_id))
                )
                return
            query = BookQuery("order_status", request.reply, request.request_id, request.account, [order_id])
            book.mailbox.put_always(query)

    def _balances(self, request: QueryRequest) -> dict[str, Any]:
        fmt = self.risk.config.format_asset
        balances = {
            asset: {
                "total": fmt(asset, total),
                "available": fmt(asset, available),
                "reserved": fmt(asset, reserved),
            }
            for asset, (total, available, reserved) in self.risk.balances(request.account).items()
        }
        message: dict[str, Any] = {"type": "balances", "balances": balances}
        if request.request_id is not None:
            message["request_id"] = request.request_id
        return message

    # -- settlement ------------------------------------------------------------------------------

    def _settle(self, output: BookOutput) -> None:
        self.risk.settle(output.events)
        self.journal.append(output.command.timestamp, self._settle_steps[output.symbol])
        command = output.command
        if type(command) is NewOrder and self._blocking.get(str(command.account)) == command.order_id:
            self._release(str(command.account))

    def _release(self, account: str) -> None:
        # The account's budget buy is settled: handle what waited behind it, in order, until
        # the next budget buy (if any) blocks the account again.
        del self._blocking[account]
        waiting = self._waiting.pop(account)
        while waiting:
            self._entry(waiting.popleft())
            if account in self._waiting:
                self._waiting[account].extend(waiting)
                return
