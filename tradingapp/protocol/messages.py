"""Every message of the wire protocol, declared once.

Each :class:`~tradingapp.protocol.fields.MessageSpec` gives the type name, the direction, the
FIX counterpart, a one-line description, the fields, the conditional rules and an example. The
validators, ``docs/protocol.md`` and the client are all derived from these tables; to change the
protocol, change it here (then run ``python -m tradingapp.protocol --update-docs``).

Enum vocabularies come from the engine's own enums so the wire names cannot drift from them.
"""

from __future__ import annotations

from tradingapp.engine.reasons import Reason
from tradingapp.engine.types import OrderStatus, OrderType, SelfTradePrevention, Side
from tradingapp.protocol.fields import (
    DEFAULT_DEPTH,
    MAX_DEPTH,
    MAX_FRAME_LIMIT,
    MAX_TEXT_CHARS,
    MIN_DEPTH,
    AtLeastOne,
    Direction,
    Field,
    Kind,
    MessageSpec,
    RequiredWhen,
    opt,
    req,
)

# -- vocabularies (taken from the engine so the two cannot drift) --------------------------------

SIDES = tuple(s.value for s in Side)
ORDER_TYPES = tuple(t.value for t in OrderType)
STP_MODES = tuple(m.value for m in SelfTradePrevention)
ORDER_STATUSES = tuple(s.value for s in OrderStatus)
REASONS = tuple(r.value for r in Reason)
PRICED_TYPES = tuple(t.value for t in OrderType if t.needs_price)
STOP_TYPES = tuple(t.value for t in OrderType if t.is_conditional)
EXEC_TYPES = ("new", "trade", "canceled", "replaced", "rejected", "expired", "triggered", "order_status")
CHANNELS = ("bbo", "depth", "trades")
LIQUIDITY = ("maker", "taker")
RESPONSE_TO = ("cancel", "replace")


# -- shared fields ----------------------------------------------------------------------------

REQUEST_ID = opt("request_id", Kind.ANY_ID, "Any id of the client's choosing; echoed on the direct reply.")
REPLY_REQUEST_ID = opt(
    "request_id", Kind.ANY_ID, "The `request_id` of the request this answers, if it had one."
)
SYMBOL = req("symbol", Kind.STRING, "Trading pair, e.g. `BTC-USDT`.")
OPT_SYMBOL = opt("symbol", Kind.STRING, "Limit to one symbol; omitted means all symbols.")
DEPTH = opt(
    "depth",
    Kind.INTEGER,
    f"Price levels per side ({MIN_DEPTH}-{MAX_DEPTH}).",
    min_value=MIN_DEPTH,
    max_value=MAX_DEPTH,
    default=DEFAULT_DEPTH,
)
TIMESTAMP = req("timestamp", Kind.TIMESTAMP, "Engine time of the event.")
SEQ = req(
    "seq",
    Kind.INTEGER,
    "Per symbol and channel, +1 per message; a snapshot carries the channel's latest seq. "
    "A jump that `conflated` does not account for means data was lost.",
    min_value=1,
)
CONFLATED = opt(
    "conflated",
    Kind.INTEGER,
    "Messages of this channel left out just before this one because the client read too slowly "
    "(absent: none); `seq` then grows by `conflated` + 1. Nothing is lost: each message is a "
    "full picture.",
    min_value=1,
)


def _dec(name: str, description: str, *, required: bool = False, nullable: bool = False) -> Field:
    return Field(name, Kind.DECIMAL, description, required=required, nullable=nullable)


#: Places beyond the tick's that an average price off the tick grid is rounded to.
AVG_PRICE_EXTRA_PLACES = 8

#: How reports state the average fill price (tradingapp/reports.py avg_price computes it).
AVG_PRICE = _dec(
    "avg_price",
    "Average fill price, null before the first fill; exact on the tick grid, otherwise rounded"
    f" half-even to {AVG_PRICE_EXTRA_PLACES} more places than the tick.",
    required=True,
    nullable=True,
)

#: The fields of one order's state (an item of ``open_orders.orders``).
ORDER_STATE_FIELDS: tuple[Field, ...] = (
    req("order_id", Kind.ORDER_ID, "Venue order id."),
    req("client_order_id", Kind.CLIENT_ID, "The client's id of the order.", nullable=True),
    SYMBOL,
    req("side", Kind.ENUM, "Order side.", values=SIDES),
    req("order_type", Kind.ENUM, "Order type.", values=ORDER_TYPES),
    _dec("price", "Limit price (null for market-style orders).", required=True, nullable=True),
    _dec("stop_price", "Trigger price of a stop order (null otherwise).", required=True, nullable=True),
    _dec("quantity", "Total order quantity.", required=True),
    _dec("cum_qty", "Quantity filled so far.", required=True),
    _dec("leaves_qty", "Quantity still open.", required=True),
    AVG_PRICE,
    req("order_status", Kind.ENUM, "Current status.", values=ORDER_STATUSES),
)

_TS = "2024-05-01T12:00:00.123456Z"

# -- the messages -------------------------------------------------------------------------------

C, S = Direction.CLIENT, Direction.SERVER

CLIENT_MESSAGES: tuple[MessageSpec, ...] = (
    MessageSpec(
        "logon",
        C,
        "A",
        "Authenticate the connection; must be the first message. Answered by a `logon` reply.",
        (
            req("account", Kind.STRING, "Account name."),
            req("api_key", Kind.STRING, "The account's secret key.", max_len=MAX_TEXT_CHARS),
            REQUEST_ID,
        ),
        example={"type": "logon", "account": "alice", "api_key": "alice-key", "request_id": 1},
    ),
    MessageSpec(
        "new_order",
        C,
        "D",
        "Enter an order. Answered by `execution_report`s (`new`, then `trade`s, ...) or a reject.",
        (
            req(
                "client_order_id",
                Kind.CLIENT_ID,
                "The client's id for this order; unique among the account's orders.",
                reason=Reason.INVALID_CLIENT_ORDER_ID,
            ),
            SYMBOL,
            req("side", Kind.ENUM, "Buy or sell.", values=SIDES, reason=Reason.INVALID_SIDE),
            req(
                "order_type",
                Kind.ENUM,
                "How the order trades and whether it rests.",
                values=ORDER_TYPES,
                reason=Reason.INVALID_ORDER_TYPE,
            ),
            _dec("quantity", "Order quantity in the base asset.", required=True),
            _dec("price", "Limit price; optional for `ioc`/`fok` (none: any price)."),
            _dec("stop_price", "Trigger price of the four stop and take-profit types."),
            opt(
                "post_only", Kind.BOOLEAN, "Reject instead of taking liquidity (limit orders).", default=False
            ),
            opt(
                "self_trade_prevention",
                Kind.ENUM,
                "What happens if the order would trade with the same account.",
                values=STP_MODES,
                default=SelfTradePrevention.CANCEL_NEWEST.value,
            ),
            REQUEST_ID,
        ),
        rules=(
            RequiredWhen("price", "order_type", PRICED_TYPES, Reason.MISSING_PRICE),
            RequiredWhen("stop_price", "order_type", STOP_TYPES, Reason.MISSING_STOP_PRICE),
        ),
        example={
            "type": "new_order",
            "client_order_id": "o-1",
            "symbol": "BTC-USDT",
            "side": "buy",
            "order_type": "limit",
            "quantity": "0.5",
            "price": "30000",
        },
    ),
    MessageSpec(
        "cancel",
        C,
        "F",
        "Cancel one open order. Answered by an `execution_report` (`canceled`) or a `cancel_reject`.",
        (
            opt(
                "symbol",
                Kind.STRING,
                "Symbol of the order; may be omitted, the venue finds the order by its id.",
            ),
            opt("order_id", Kind.ORDER_ID, "Venue id of the order."),
            opt("orig_client_order_id", Kind.CLIENT_ID, "Client id of the order (instead of `order_id`)."),
            opt("client_order_id", Kind.CLIENT_ID, "The client's id for this cancel request."),
            REQUEST_ID,
        ),
        rules=(AtLeastOne(("order_id", "orig_client_order_id")),),
        example={"type": "cancel", "symbol": "BTC-USDT", "order_id": 42},
    ),
    MessageSpec(
        "replace",
        C,
        "G",
        "Amend an open order's quantity, price or stop price. Answered by an `execution_report` "
        "(`replaced`) or a `cancel_reject`. Only a quantity decrease keeps time priority.",
        (
            SYMBOL,
            opt("order_id", Kind.ORDER_ID, "Venue id of the order."),
            opt("orig_client_order_id", Kind.CLIENT_ID, "Client id of the order (instead of `order_id`)."),
            opt("client_order_id", Kind.CLIENT_ID, "New client id for the order after the replace."),
            _dec("quantity", "New *total* quantity (open quantity becomes quantity - cum_qty)."),
            _dec("price", "New limit price."),
            _dec("stop_price", "New trigger price."),
            REQUEST_ID,
        ),
        rules=(
            AtLeastOne(("order_id", "orig_client_order_id")),
            AtLeastOne(("quantity", "price", "stop_price")),
        ),
        example={
            "type": "replace",
            "symbol": "BTC-USDT",
            "order_id": 42,
            "quantity": "0.4",
            "price": "30100",
        },
    ),
    MessageSpec(
        "cancel_all",
        C,
        "q",
        "Cancel every open order of the account (in one symbol, or everywhere). Answered by a "
        "`cancel_all` reply (how many), then one `execution_report` (`canceled`) per order.",
        (OPT_SYMBOL, REQUEST_ID),
        example={"type": "cancel_all", "symbol": "BTC-USDT"},
    ),
    MessageSpec(
        "order_status",
        C,
        "H",
        "Ask for one order's state. Answered by an `execution_report` with exec_type `order_status`.",
        (
            SYMBOL,
            opt("order_id", Kind.ORDER_ID, "Venue id of the order."),
            opt("client_order_id", Kind.CLIENT_ID, "Client id of the order (instead of `order_id`)."),
            REQUEST_ID,
        ),
        rules=(AtLeastOne(("order_id", "client_order_id")),),
        example={"type": "order_status", "symbol": "BTC-USDT", "order_id": 42},
    ),
    MessageSpec(
        "open_orders",
        C,
        "AF",
        "List the account's open orders. Answered by an `open_orders` reply.",
        (OPT_SYMBOL, REQUEST_ID),
        example={"type": "open_orders"},
    ),
    MessageSpec(
        "balances",
        C,
        "-",
        "Ask for the account's balances. Answered by a `balances` reply.",
        (REQUEST_ID,),
        example={"type": "balances", "request_id": "b1"},
    ),
    MessageSpec(
        "stats",
        C,
        "-",
        "Ask for the engine's latency figures (`tradingapp serve --latency-stats`). Answered by a "
        "`stats` reply.",
        (
            opt("reset", Kind.BOOLEAN, "Clear the figures after reading them.", default=False),
            REQUEST_ID,
        ),
        example={"type": "stats", "reset": True, "request_id": "s1"},
    ),
    MessageSpec(
        "subscribe",
        C,
        "V",
        "Subscribe to market data of one symbol. Answered by `subscribed`, then a snapshot of each "
        "book channel and the last trades (up to 20), then updates.",
        (
            SYMBOL,
            req("channels", Kind.ENUM_LIST, "Channels to receive.", values=CHANNELS),
            DEPTH,
            REQUEST_ID,
        ),
        example={"type": "subscribe", "symbol": "BTC-USDT", "channels": ["bbo", "trades"]},
    ),
    MessageSpec(
        "unsubscribe",
        C,
        "V",
        "Stop market data (FIX 263=2). Answered by `unsubscribed`.",
        (
            SYMBOL,
            opt("channels", Kind.ENUM_LIST, "Channels to stop; omitted means all.", values=CHANNELS),
            REQUEST_ID,
        ),
        example={"type": "unsubscribe", "symbol": "BTC-USDT", "channels": ["trades"]},
    ),
    MessageSpec(
        "book",
        C,
        "V",
        "One-shot order-book query (FIX 263=0, snapshot only). Answered by a `depth` message.",
        (SYMBOL, DEPTH, REQUEST_ID),
        example={"type": "book", "symbol": "BTC-USDT", "depth": 5},
    ),
    MessageSpec(
        "heartbeat",
        C,
        "0",
        "Keep-alive; with `test_request_id` it answers the server's `test_request`.",
        (opt("test_request_id", Kind.ANY_ID, "Echo of the server's test_request_id."), REQUEST_ID),
        example={"type": "heartbeat"},
    ),
    MessageSpec(
        "test_request",
        C,
        "1",
        "Ask the server for a `heartbeat` (a ping); the heartbeat carries `test_request_id`.",
        (opt("test_request_id", Kind.ANY_ID, "Echoed in the heartbeat."), REQUEST_ID),
        example={"type": "test_request", "test_request_id": "t1"},
    ),
    MessageSpec(
        "logout",
        C,
        "5",
        "End the session; the server replies `logout` and closes the connection.",
        (opt("text", Kind.TEXT, "Free text.", max_len=MAX_TEXT_CHARS), REQUEST_ID),
        example={"type": "logout"},
    ),
    MessageSpec(
        "help",
        C,
        "-",
        "Ask for the JSON-lines human grammar. Answered by a `help` reply.",
        (REQUEST_ID,),
        example={"type": "help"},
    ),
)

SERVER_MESSAGES: tuple[MessageSpec, ...] = (
    MessageSpec(
        "logon",
        S,
        "A",
        "Logon accepted.",
        (
            req("account", Kind.STRING, "Account name."),
            req("session_id", Kind.ANY_ID, "Id of this session (for logs and support)."),
            _dec(
                "heartbeat_interval",
                "Seconds; the server sends a heartbeat when idle this long.",
                required=True,
            ),
            REPLY_REQUEST_ID,
        ),
        example={
            "type": "logon",
            "account": "alice",
            "session_id": 17,
            "heartbeat_interval": "30",
            "request_id": 1,
        },
    ),
    MessageSpec(
        "execution_report",
        S,
        "8",
        "Every change of an order, and the answer to `order_status`.",
        (
            req(
                "order_id",
                Kind.ORDER_ID,
                "Venue order id (null if rejected before one was assigned).",
                nullable=True,
            ),
            req("client_order_id", Kind.CLIENT_ID, "The client's id of the order.", nullable=True),
            SYMBOL,
            req("side", Kind.ENUM, "Order side.", values=SIDES),
            req("order_type", Kind.ENUM, "Order type.", values=ORDER_TYPES),
            req("exec_type", Kind.ENUM, "What happened (FIX 150).", values=EXEC_TYPES),
            req("order_status", Kind.ENUM, "Status after it (FIX 39).", values=ORDER_STATUSES),
            _dec("price", "Limit price (null if none).", required=True, nullable=True),
            _dec("stop_price", "Stop price (null if none).", required=True, nullable=True),
            _dec("quantity", "Total order quantity.", required=True),
            _dec("cum_qty", "Filled so far.", required=True),
            _dec("leaves_qty", "Still open (0 once the order is done).", required=True),
            AVG_PRICE,
            TIMESTAMP,
            opt("trade_id", Kind.INTEGER, "Trade id (fills).", min_value=1),
            _dec("last_price", "Price of this fill."),
            _dec("last_qty", "Quantity of this fill."),
            opt("liquidity", Kind.ENUM, "Whether this order made or took liquidity.", values=LIQUIDITY),
            _dec("fee", "Fee charged on this fill (negative: rebate)."),
            opt("fee_asset", Kind.STRING, "Asset the fee is charged in."),
            _dec("trigger_price", "Last trade price that released a stop (exec_type `triggered`)."),
            opt(
                "reject_reason",
                Kind.ENUM,
                "Why the order was rejected (exec_type `rejected`).",
                values=REASONS,
            ),
            opt("reason", Kind.ENUM, "Why the order ended (exec_type `canceled`/`expired`).", values=REASONS),
            opt("text", Kind.TEXT, "Human-readable detail.", max_len=MAX_TEXT_CHARS),
            REPLY_REQUEST_ID,
        ),
        rules=(
            *(
                RequiredWhen(name, "exec_type", ("trade",))
                for name in ("trade_id", "last_price", "last_qty", "liquidity", "fee", "fee_asset")
            ),
            RequiredWhen("reject_reason", "exec_type", ("rejected",)),
            RequiredWhen("text", "exec_type", ("rejected",)),
            RequiredWhen("reason", "exec_type", ("canceled", "expired")),
        ),
        example={
            "type": "execution_report",
            "order_id": 42,
            "client_order_id": "o-1",
            "symbol": "BTC-USDT",
            "side": "buy",
            "order_type": "limit",
            "exec_type": "trade",
            "order_status": "partially_filled",
            "price": "30000.00",
            "stop_price": None,
            "quantity": "0.50000",
            "cum_qty": "0.20000",
            "leaves_qty": "0.30000",
            "avg_price": "30000.00",
            "timestamp": _TS,
            "trade_id": 7,
            "last_price": "30000.00",
            "last_qty": "0.20000",
            "liquidity": "taker",
            "fee": "1.2000000",
            "fee_asset": "USDT",
        },
    ),
    MessageSpec(
        "cancel_reject",
        S,
        "9",
        "A `cancel` or `replace` was refused; the order is unchanged.",
        (
            req("order_id", Kind.ORDER_ID, "Venue id of the target order, if known.", nullable=True),
            opt(
                "client_order_id",
                Kind.CLIENT_ID,
                "The request's client_order_id; without one, the target order's client id, if known.",
            ),
            opt("orig_client_order_id", Kind.CLIENT_ID, "The target's client id, if known."),
            opt("symbol", Kind.STRING, "Symbol of the target order, if known."),
            opt(
                "order_status",
                Kind.ENUM,
                "Current status of the target order, if known.",
                values=ORDER_STATUSES,
            ),
            req("response_to", Kind.ENUM, "Which request this answers (FIX 434).", values=RESPONSE_TO),
            req("reason", Kind.ENUM, "Why.", values=REASONS),
            req("text", Kind.TEXT, "Human-readable detail.", max_len=MAX_TEXT_CHARS),
            REPLY_REQUEST_ID,
        ),
        example={
            "type": "cancel_reject",
            "order_id": 42,
            "client_order_id": "o-1",
            "orig_client_order_id": "o-1",
            "symbol": "BTC-USDT",
            "order_status": "filled",
            "response_to": "cancel",
            "reason": "order_not_open",
            "text": "order 42 is filled",
        },
    ),
    MessageSpec(
        "reject",
        S,
        "3/j",
        "A message was refused before reaching the engine (malformed, unknown type, bad field, "
        "not logged in, rate limited, ...). Sent before closing on a fatal framing error.",
        (
            req("reason", Kind.ENUM, "Why.", values=REASONS),
            req("text", Kind.TEXT, "Human-readable detail.", max_len=MAX_TEXT_CHARS * 8),
            opt("ref_type", Kind.STRING, "Type of the refused message, if known."),
            opt("field", Kind.STRING, "The field at fault, if one is (FIX 371 RefTagID)."),
            REPLY_REQUEST_ID,
        ),
        example={
            "type": "reject",
            "reason": "invalid_field",
            "text": (
                "quantity must be a decimal string or an integer, not a float"
                " (a float cannot carry an exact decimal)"
            ),
            "ref_type": "new_order",
            "field": "quantity",
        },
    ),
    MessageSpec(
        "cancel_all",
        S,
        "r",
        "The answer to `cancel_all` (FIX OrderMassCancelReport): how many open orders are being "
        "canceled. Each then gets its `canceled` report, carrying the request's `request_id` (one "
        "that trades away meanwhile gets its fill instead).",
        (
            opt("symbol", Kind.STRING, "The request's symbol; omitted: all symbols."),
            req(
                "orders",
                Kind.INTEGER,
                "Open orders of the account being canceled (FIX 533 TotalAffectedOrders).",
                min_value=0,
            ),
            REPLY_REQUEST_ID,
        ),
        example={"type": "cancel_all", "symbol": "BTC-USDT", "orders": 2, "request_id": "ca-1"},
    ),
    MessageSpec(
        "bbo",
        S,
        "X",
        "Best bid and offer of a symbol (conflatable for a slow reader: only the latest matters).",
        (
            SYMBOL,
            SEQ,
            TIMESTAMP,
            _dec("bid_price", "Best bid price (null: no bids).", required=True, nullable=True),
            _dec("bid_quantity", "Quantity at the best bid.", required=True, nullable=True),
            _dec("ask_price", "Best ask price (null: no asks).", required=True, nullable=True),
            _dec("ask_quantity", "Quantity at the best ask.", required=True, nullable=True),
            CONFLATED,
        ),
        example={
            "type": "bbo",
            "symbol": "BTC-USDT",
            "seq": 12,
            "timestamp": _TS,
            "bid_price": "29999.00",
            "bid_quantity": "1.20000",
            "ask_price": None,
            "ask_quantity": None,
        },
    ),
    MessageSpec(
        "depth",
        S,
        "W",
        "Top levels of a symbol's book (full refresh of the subscribed depth); also the answer to `book`.",
        (
            SYMBOL,
            SEQ,
            TIMESTAMP,
            req("bids", Kind.LEVELS, "Bid levels, highest price first."),
            req("asks", Kind.LEVELS, "Ask levels, lowest price first."),
            CONFLATED,
            REPLY_REQUEST_ID,
        ),
        example={
            "type": "depth",
            "symbol": "BTC-USDT",
            "seq": 13,
            "timestamp": _TS,
            "bids": [["29999.00", "1.20000"], ["29998.50", "0.10000"]],
            "asks": [["30001.00", "0.70000"]],
        },
    ),
    MessageSpec(
        "trade",
        S,
        "X",
        "A trade on a symbol (never conflated).",
        (
            SYMBOL,
            SEQ,
            TIMESTAMP,
            req("trade_id", Kind.INTEGER, "Venue-wide trade id.", min_value=1),
            _dec("price", "Trade price.", required=True),
            _dec("quantity", "Trade quantity.", required=True),
            req("aggressor_side", Kind.ENUM, "Side of the taker (FIX 2446).", values=SIDES),
            req("maker_order_id", Kind.ORDER_ID, "Resting order."),
            req("taker_order_id", Kind.ORDER_ID, "Incoming order."),
            _dec("maker_fee", "Fee paid by the maker (negative: rebate).", required=True),
            _dec("taker_fee", "Fee paid by the taker.", required=True),
            req("fee_asset", Kind.STRING, "Asset of both fees."),
        ),
        example={
            "type": "trade",
            "symbol": "BTC-USDT",
            "seq": 5,
            "timestamp": _TS,
            "trade_id": 7,
            "price": "30000.00",
            "quantity": "0.20000",
            "aggressor_side": "buy",
            "maker_order_id": 41,
            "taker_order_id": 42,
            "maker_fee": "0.6000000",
            "taker_fee": "1.2000000",
            "fee_asset": "USDT",
        },
    ),
    MessageSpec(
        "open_orders",
        S,
        "-",
        "The account's open orders (answer to `open_orders`).",
        (req("orders", Kind.ORDERS, "Open orders, oldest first."), REPLY_REQUEST_ID),
        example={
            "type": "open_orders",
            "orders": [
                {
                    "order_id": 42,
                    "client_order_id": "o-1",
                    "symbol": "BTC-USDT",
                    "side": "buy",
                    "order_type": "limit",
                    "price": "30000.00",
                    "stop_price": None,
                    "quantity": "0.50000",
                    "cum_qty": "0.20000",
                    "leaves_qty": "0.30000",
                    "avg_price": "30000.00",
                    "order_status": "partially_filled",
                }
            ],
        },
    ),
    MessageSpec(
        "balances",
        S,
        "-",
        "The account's balances (answer to `balances`); total = available + reserved.",
        (req("balances", Kind.BALANCES, "Per asset."), REPLY_REQUEST_ID),
        example={
            "type": "balances",
            "balances": {
                "BTC": {"total": "1.50000", "available": "1.00000", "reserved": "0.50000"},
                "USDT": {"total": "100000.0000000", "available": "100000.0000000", "reserved": "0.0000000"},
            },
            "request_id": "b1",
        },
    ),
    MessageSpec(
        "stats",
        S,
        "-",
        "The engine's latency distributions since start or the last reset (answer to `stats`); "
        "see docs/benchmarks.md for what each measures.",
        (
            req("enabled", Kind.BOOLEAN, "Whether the engine records latencies (`--latency-stats`)."),
            req("latency", Kind.LATENCIES, "Per distribution; empty when not enabled."),
            REPLY_REQUEST_ID,
        ),
        example={
            "type": "stats",
            "enabled": True,
            "latency": {
                "order": {
                    "count": 1000,
                    "min": 41000,
                    "mean": 88000,
                    "p50": 80000,
                    "p75": 95000,
                    "p90": 120000,
                    "p95": 150000,
                    "p99": 400000,
                    "p99.5": 600000,
                    "p99.9": 900000,
                    "p99.95": 950000,
                    "p99.99": 990000,
                    "max": 990000,
                }
            },
            "request_id": "s1",
        },
    ),
    MessageSpec(
        "subscribed",
        S,
        "-",
        "Subscription accepted (answer to `subscribe`); snapshots follow.",
        (
            SYMBOL,
            req(
                "channels",
                Kind.ENUM_LIST,
                "The channels this request subscribed (added to the session's other channels of the symbol).",
                values=CHANNELS,
            ),
            req(
                "depth",
                Kind.INTEGER,
                "The request's levels per side (they apply when it subscribed `depth`).",
                min_value=MIN_DEPTH,
                max_value=MAX_DEPTH,
            ),
            REPLY_REQUEST_ID,
        ),
        example={"type": "subscribed", "symbol": "BTC-USDT", "channels": ["bbo", "trades"], "depth": 10},
    ),
    MessageSpec(
        "unsubscribed",
        S,
        "-",
        "Unsubscription done (answer to `unsubscribe`).",
        (
            SYMBOL,
            req("channels", Kind.ENUM_LIST, "Channels stopped.", values=CHANNELS),
            REPLY_REQUEST_ID,
        ),
        example={"type": "unsubscribed", "symbol": "BTC-USDT", "channels": ["trades"]},
    ),
    MessageSpec(
        "heartbeat",
        S,
        "0",
        "Keep-alive, sent when idle; answers a `test_request` with its id.",
        (opt("test_request_id", Kind.ANY_ID, "The id of the test_request answered."), REPLY_REQUEST_ID),
        example={"type": "heartbeat", "test_request_id": "t1"},
    ),
    MessageSpec(
        "test_request",
        S,
        "1",
        "The server has heard nothing for a while; answer with a `heartbeat` carrying the id.",
        (req("test_request_id", Kind.ANY_ID, "Echo it in the heartbeat."),),
        example={"type": "test_request", "test_request_id": 3},
    ),
    MessageSpec(
        "logout",
        S,
        "5",
        "The session ends; the server closes the connection after sending it.",
        (
            opt(
                "reason",
                Kind.ENUM,
                "Why, when the server ends the session: `heartbeat_timeout`, or `slow_consumer` (sent"
                " after what the connection had already written, the messages still queued are"
                " dropped; a client that does not read up to it within 2 s is reset instead).",
                values=REASONS,
            ),
            opt("text", Kind.TEXT, "Human-readable detail.", max_len=MAX_TEXT_CHARS),
            REPLY_REQUEST_ID,
        ),
        example={"type": "logout", "text": "goodbye"},
    ),
    MessageSpec(
        "help",
        S,
        "-",
        "The human grammar of JSON-lines mode (answer to `help`).",
        (req("text", Kind.TEXT, "The grammar.", max_len=MAX_FRAME_LIMIT), REPLY_REQUEST_ID),
        example={"type": "help", "text": "buy SYMBOL QTY limit PRICE ..."},
    ),
)

MESSAGES: tuple[MessageSpec, ...] = CLIENT_MESSAGES + SERVER_MESSAGES
CLIENT_TYPES: dict[str, MessageSpec] = {m.type: m for m in CLIENT_MESSAGES}
SERVER_TYPES: dict[str, MessageSpec] = {m.type: m for m in SERVER_MESSAGES}
