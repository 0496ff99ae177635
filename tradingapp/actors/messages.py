"""The messages actors send each other. Each is created once and not changed after it is sent.

Prices are ticks and quantities lots by the time a request leaves its session. ``reply`` is the
requesting session's delivery handle (see :class:`tradingapp.outbox.Recipient`); ``request_id`` is
echoed on direct replies.
"""

from __future__ import annotations

from typing import Any

import attrs

from tradingapp.actors.base import Mailbox
from tradingapp.engine.commands import Cancel, CancelAll, NewOrder, Replace
from tradingapp.engine.events import Event
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side
from tradingapp.latency import MarketTraces, Trace
from tradingapp.outbox import Delivery, Outbox


@attrs.define(slots=True)
class NewOrderRequest:
    """A validated new order from a session, on its way to risk."""

    reply: Any
    request_id: Any
    timestamp: int
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    price: int | None
    stop_price: int | None
    post_only: bool
    stp: SelfTradePrevention
    client_order_id: str | None
    trace: Trace | None = None  # latency stamps, with ``--latency-stats`` only


@attrs.define(slots=True)
class CancelRequest:
    """Cancel one order, by order id or by its client order id."""

    reply: Any
    request_id: Any
    timestamp: int
    account: str
    symbol: str | None
    order_id: int | None
    orig_client_order_id: str | None
    client_order_id: str | None


@attrs.define(slots=True)
class ReplaceRequest:
    """Amend one order (new total quantity, price and/or stop price; None keeps it)."""

    reply: Any
    request_id: Any
    timestamp: int
    account: str
    symbol: str
    order_id: int | None
    orig_client_order_id: str | None
    client_order_id: str | None
    quantity: int | None
    price: int | None
    stop_price: int | None


@attrs.define(slots=True)
class CancelAllRequest:
    """Cancel every open order of the account, optionally of one symbol."""

    reply: Any
    request_id: Any
    timestamp: int
    account: str
    symbol: str | None


@attrs.define(slots=True)
class QueryRequest:
    """A read: ``order_status``, ``open_orders`` or ``balances``; answered in arrival order."""

    reply: Any
    request_id: Any
    kind: str
    account: str
    symbol: str | None = None
    order_id: int | None = None
    client_order_id: str | None = None


EntryRequest = NewOrderRequest | CancelRequest | ReplaceRequest | CancelAllRequest | QueryRequest


@attrs.define(slots=True)
class BookCommand:
    """Risk to book: apply one command; ``reply``/``request_id`` address the direct answers."""

    command: NewOrder | Cancel | Replace | CancelAll
    reply: Any
    request_id: Any
    trace: Trace | None = None


@attrs.define(slots=True)
class BookQuery:
    """Risk to book: read order states for a session, in order with the commands before it."""

    kind: str  # "order_status" or "open_orders"
    reply: Any
    request_id: Any
    account: str
    order_ids: list[int]
    gather: Any = None  # an OpenOrdersGather collecting parts from several books


@attrs.define(slots=True)
class BookOutput:
    """Book to risk: the events of one command, to settle."""

    symbol: str
    events: list[Event]
    command: Any


@attrs.define(slots=True)
class MarketUpdate:
    """Book to feed publisher (after the journal made it durable): what changed in a batch.

    ``bbo`` is the best bid and offer and ``depth`` the top ``depth_levels`` of each side (None:
    not included). ``bbo_seq`` and ``depth_seq`` are the seqs of the channels' latest messages
    (see :class:`tradingapp.engine.sequence.FeedSequences`): a picture whose seq is the one the
    feed already has is a refresh of the same state (the first picture, or more depth levels),
    not a new message. ``trades`` carries ``(feed seq, message dict)`` pairs in print order.
    """

    symbol: str
    timestamp: int
    bbo: tuple[int | None, int, int | None, int] | None
    bbo_seq: int
    depth: tuple[list[tuple[int, int]], list[tuple[int, int]]] | None
    depth_seq: int
    depth_levels: int
    trades: list[tuple[int, dict[str, Any]]]
    traces: MarketTraces | None = None  # with ``--latency-stats`` only


@attrs.define(slots=True)
class DepthInterest:
    """Feed publisher to book: how many depth levels subscribers want; answer with a full
    :class:`MarketUpdate` (in order with the updates) so new subscribers get an exact snapshot."""

    levels: int


class Barrier:
    """Follows a session's earlier requests through the actors, then delivers what it carries.

    Sent for ``logout``: the session's last message must come after the replies to everything it
    sent before, and those are produced by other actors (risk, the books, the feed). Each actor
    on the route calls :meth:`passed` when the barrier reaches it, that is after every earlier
    message in its mailbox. When every actor of a stage has passed it, it moves on with that
    actor's outbound batch (so behind the replies and market updates already in it): into the
    next stage's mailboxes, or, after the last stage, the deliveries run. An actor without an
    outbound batch (the feed writes to sessions directly) passes ``None``; the deliveries then go
    through the outbox, behind everything published before. ``account`` lets risk keep the
    barrier in line behind the account's waiting requests.
    """

    __slots__ = ("account", "deliveries", "outbox", "stages", "waiting")

    def __init__(
        self, account: str | None, stages: list[list[Mailbox]], deliveries: list[Delivery], outbox: Outbox
    ) -> None:
        self.account = account
        self.stages = [stage for stage in stages if stage]
        self.deliveries = deliveries
        self.outbox = outbox
        self.waiting = 1  # the sender puts the barrier into the first mailbox itself

    def passed(self, out: list[Delivery] | None) -> None:
        """One actor has handled everything before the barrier; ``out`` is its outbound batch."""
        self.waiting -= 1
        if self.waiting:
            return
        if out is not None:
            out.append((self._move_on, None))
        elif self.stages:
            self._move_on(None)
        else:
            self.outbox.publish(self.deliveries)

    def _move_on(self, _: Any) -> None:
        if self.stages:
            stage = self.stages.pop(0)
            self.waiting = len(stage)
            for mailbox in stage:
                mailbox.put_always(self)
        else:
            for deliver, message in self.deliveries:
                deliver(message)
