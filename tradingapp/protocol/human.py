"""The short human form of JSON-lines mode: ``buy BTC-USDT 0.5 limit 30000`` and friends.

A person typing into ``nc`` should not have to write JSON. Each command line becomes exactly the
dict a JSON line would have produced, and goes through the same validation. Words are separated
by whitespace; command and keyword words are case-insensitive, symbols are upper-cased, ids are
kept as typed. A line that does not parse becomes a non-fatal ``malformed_message`` error whose
text shows the command's usage.

Ids: a token of digits names a venue ``order_id``; anything else names a client order id. Orders
entered in the human form get a generated ``client_order_id`` (the decoder's ``id_prefix`` plus a
counter) unless the line gives one with ``id NAME``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tradingapp.engine.reasons import Reason
from tradingapp.protocol.errors import ProtocolError, quote
from tradingapp.protocol.schema import CHANNELS, ORDER_TYPES, STP_MODES

HumanMessage = dict[str, Any]
IdFactory = Callable[[], str]

_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)\Z", re.ASCII)
_DIGITS_RE = re.compile(r"\d{1,19}\Z", re.ASCII)

#: One usage line per command (the key is the canonical command word).
USAGE: dict[str, str] = {
    "buy": "buy SYMBOL QTY TYPE [PRICES] [post_only] [stp MODE] [id CLIENT_ORDER_ID]",
    "sell": "sell SYMBOL QTY TYPE [PRICES] [post_only] [stp MODE] [id CLIENT_ORDER_ID]",
    "cancel": "cancel [SYMBOL] ORDER",
    "replace": "replace SYMBOL ORDER [qty QTY] [price PRICE] [stop STOP_PRICE] [id NEW_CLIENT_ORDER_ID]",
    "cancel_all": "cancel_all [SYMBOL]",
    "status": "status SYMBOL ORDER",
    "orders": "orders [SYMBOL]",
    "balances": "balances",
    "book": "book SYMBOL [LEVELS]",
    "sub": "sub SYMBOL [bbo] [depth [LEVELS]] [trades]",
    "unsub": "unsub SYMBOL [bbo] [depth] [trades]",
    "logon": "logon ACCOUNT API_KEY",
    "ping": "ping [ID]",
    "help": "help",
    "quit": "quit",
}

HELP_TEXT = """\
Commands (one per line; a line starting with { is a JSON message instead):
  logon ACCOUNT API_KEY                 log on (first)
  buy|sell SYMBOL QTY TYPE [PRICES] [post_only] [stp MODE] [id CLIENT_ORDER_ID]
      TYPE and PRICES:  market | limit PRICE | PRICE (same as limit PRICE) | ioc [PRICE] | fok [PRICE]
                        stop_loss STOP | take_profit STOP
                        stop_limit STOP PRICE | take_profit_limit STOP PRICE
      MODE: none, cancel_newest, cancel_oldest, cancel_both, decrement
  cancel [SYMBOL] ORDER                 ORDER: digits = order id, else your client order id
  replace SYMBOL ORDER [qty QTY] [price PRICE] [stop STOP_PRICE] [id NEW_CLIENT_ORDER_ID]
  cancel_all [SYMBOL]
  status SYMBOL ORDER                   one order's state
  orders [SYMBOL]                       open orders
  balances
  book SYMBOL [LEVELS]                  order book snapshot (default 10 levels)
  sub SYMBOL [bbo] [depth [LEVELS]] [trades]    market data (no channel: all three)
  unsub SYMBOL [bbo] [depth] [trades]           (no channel: all)
  ping [ID]                             the server answers with a heartbeat
  help
  quit                                  log out and close
Examples:
  buy BTC-USDT 0.5 limit 30000
  sell BTC-USDT 1 stop_limit 29000 28900
  replace BTC-USDT 42 qty 0.4 price 30100
"""

_ALIASES = {
    "login": "logon",
    "bal": "balances",
    "cancelall": "cancel_all",
    "subscribe": "sub",
    "unsubscribe": "unsub",
    "open_orders": "orders",
    "order_status": "status",
    "?": "help",
    "logout": "quit",
    "exit": "quit",
}

_STOP_TYPES = frozenset({"stop_loss", "take_profit", "stop_limit", "take_profit_limit"})
_STOP_AND_PRICE = frozenset({"stop_limit", "take_profit_limit"})
_OPTIONAL_PRICE = frozenset({"ioc", "fok"})
_CHANNEL_SET = frozenset(CHANNELS)
_STP_SET = frozenset(STP_MODES)
_TYPE_SET = frozenset(ORDER_TYPES)
_REPLACE_KEYS = {
    "qty": "quantity",
    "quantity": "quantity",
    "price": "price",
    "stop": "stop_price",
    "stop_price": "stop_price",
}


class _Usage(Exception):
    # A parse problem in the current command; becomes a ProtocolError with the usage appended
    pass


def _number(token: str, what: str) -> str:
    if not _NUMBER_RE.match(token):
        raise _Usage(f"{what} {quote(token)} is not a number")
    return token


def _symbol(token: str) -> str:
    return token.upper()


def _order_ref(token: str, id_field: str, client_id_field: str) -> dict[str, Any]:
    if _DIGITS_RE.match(token):
        return {id_field: int(token)}
    return {client_id_field: token}


def _need(args: list[str], count: int, what: str) -> None:
    if len(args) < count:
        raise _Usage(f"missing {what}")


def _no_more(args: list[str], used: int) -> None:
    if len(args) > used:
        raise _Usage(f"unexpected {quote(args[used])}")


def _order(side: str, args: list[str], next_id: IdFactory) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    _need(args, 2, "QTY")
    _need(args, 3, "TYPE (market, limit PRICE, ...)")
    msg: HumanMessage = {
        "type": "new_order",
        "client_order_id": "",
        "symbol": _symbol(args[0]),
        "side": side,
        "order_type": "",
        "quantity": _number(args[1], "QTY"),
    }
    word = args[2].lower()
    i = 3
    if _NUMBER_RE.match(word):
        order_type = "limit"
        msg["price"] = word
    elif word not in _TYPE_SET:
        raise _Usage(f"unknown order type {quote(args[2])}; one of {', '.join(ORDER_TYPES)}")
    else:
        order_type = word
        if order_type in _STOP_TYPES:
            _need(args, i + 1, "STOP price")
            msg["stop_price"] = _number(args[i], "STOP")
            i += 1
        if order_type == "limit" or order_type in _STOP_AND_PRICE:
            _need(args, i + 1, "PRICE")
            msg["price"] = _number(args[i], "PRICE")
            i += 1
        elif order_type in _OPTIONAL_PRICE and i < len(args) and _NUMBER_RE.match(args[i]):
            msg["price"] = args[i]
            i += 1
    msg["order_type"] = order_type
    client_order_id = None
    while i < len(args):
        option = args[i].lower()
        if option == "post_only":
            msg["post_only"] = True
            i += 1
        elif option == "stp":
            _need(args, i + 2, "MODE after stp")
            mode = args[i + 1].lower()
            if mode not in _STP_SET:
                raise _Usage(f"unknown stp mode {quote(args[i + 1])}; one of {', '.join(STP_MODES)}")
            msg["self_trade_prevention"] = mode
            i += 2
        elif option == "id":
            _need(args, i + 2, "CLIENT_ORDER_ID after id")
            client_order_id = args[i + 1]
            i += 2
        else:
            raise _Usage(f"unexpected {quote(args[i])}")
    msg["client_order_id"] = client_order_id if client_order_id is not None else next_id()
    return msg


def _cancel(args: list[str]) -> HumanMessage:
    _need(args, 1, "ORDER")
    msg: HumanMessage = {"type": "cancel"}
    if len(args) >= 2:
        msg["symbol"] = _symbol(args[0])
        _no_more(args, 2)
    msg.update(_order_ref(args[-1], "order_id", "orig_client_order_id"))
    return msg


def _replace(args: list[str]) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    _need(args, 2, "ORDER")
    msg: HumanMessage = {"type": "replace", "symbol": _symbol(args[0])}
    msg.update(_order_ref(args[1], "order_id", "orig_client_order_id"))
    i = 2
    while i < len(args):
        word = args[i].lower()
        _need(args, i + 2, f"a value after {args[i]}")
        if word == "id":
            msg["client_order_id"] = args[i + 1]
        elif word in _REPLACE_KEYS:
            msg[_REPLACE_KEYS[word]] = _number(args[i + 1], word)
        else:
            raise _Usage(f"unexpected {quote(args[i])}; expected qty, price, stop or id")
        i += 2
    if not any(k in msg for k in ("quantity", "price", "stop_price")):
        raise _Usage("nothing to change; give qty, price or stop")
    return msg


def _optional_symbol(kind: str, args: list[str]) -> HumanMessage:
    msg: HumanMessage = {"type": kind}
    if args:
        msg["symbol"] = _symbol(args[0])
        _no_more(args, 1)
    return msg


def _status(args: list[str]) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    _need(args, 2, "ORDER")
    _no_more(args, 2)
    msg: HumanMessage = {"type": "order_status", "symbol": _symbol(args[0])}
    msg.update(_order_ref(args[1], "order_id", "client_order_id"))
    return msg


def _levels(token: str) -> int:
    if not _DIGITS_RE.match(token):
        raise _Usage(f"LEVELS {quote(token)} is not a whole number")
    return int(token)


def _book(args: list[str]) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    msg: HumanMessage = {"type": "book", "symbol": _symbol(args[0])}
    if len(args) > 1:
        msg["depth"] = _levels(args[1])
        _no_more(args, 2)
    return msg


def _channels(args: list[str], *, allow_levels: bool) -> tuple[list[str], int | None]:
    channels: list[str] = []
    levels = None
    i = 0
    while i < len(args):
        word = args[i].lower()
        if word not in _CHANNEL_SET:
            raise _Usage(f"unknown channel {quote(args[i])}; one of {', '.join(CHANNELS)}")
        if word not in channels:
            channels.append(word)
        i += 1
        if word == "depth" and allow_levels and i < len(args) and _DIGITS_RE.match(args[i]):
            levels = _levels(args[i])
            i += 1
    return channels, levels


def _subscribe(args: list[str]) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    channels, levels = _channels(args[1:], allow_levels=True)
    msg: HumanMessage = {
        "type": "subscribe",
        "symbol": _symbol(args[0]),
        "channels": channels or list(CHANNELS),
    }
    if levels is not None:
        msg["depth"] = levels
    return msg


def _unsubscribe(args: list[str]) -> HumanMessage:
    _need(args, 1, "SYMBOL")
    channels, _ = _channels(args[1:], allow_levels=False)
    msg: HumanMessage = {"type": "unsubscribe", "symbol": _symbol(args[0])}
    if channels:
        msg["channels"] = channels
    return msg


def _logon(args: list[str]) -> HumanMessage:
    _need(args, 1, "ACCOUNT")
    _need(args, 2, "API_KEY")
    _no_more(args, 2)
    return {"type": "logon", "account": args[0], "api_key": args[1]}


def _ping(args: list[str]) -> HumanMessage:
    msg: HumanMessage = {"type": "test_request"}
    if args:
        msg["test_request_id"] = args[0]
        _no_more(args, 1)
    return msg


def _bare(kind: str) -> Callable[[list[str]], HumanMessage]:
    def parse(args: list[str]) -> HumanMessage:
        _no_more(args, 0)
        return {"type": kind}

    return parse


_PARSERS: dict[str, Callable[[list[str]], HumanMessage]] = {
    "cancel": _cancel,
    "replace": _replace,
    "cancel_all": lambda args: _optional_symbol("cancel_all", args),
    "status": _status,
    "orders": lambda args: _optional_symbol("open_orders", args),
    "balances": _bare("balances"),
    "book": _book,
    "sub": _subscribe,
    "unsub": _unsubscribe,
    "logon": _logon,
    "ping": _ping,
    "help": _bare("help"),
    "quit": _bare("logout"),
}


def parse_human(line: str, next_client_order_id: IdFactory) -> HumanMessage | ProtocolError:
    """Parse one human-form command line into a message dict, or a non-fatal ProtocolError.

    ``next_client_order_id`` is called once per parsed ``buy``/``sell`` without ``id``.
    The result still has to go through ``validate_client_message`` like any JSON message.
    """
    tokens = line.split()
    if not tokens:
        return ProtocolError(Reason.MALFORMED_MESSAGE, "empty command; type help")
    word = tokens[0].lower()
    command = _ALIASES.get(word, word)
    args = tokens[1:]
    try:
        if command == "buy" or command == "sell":
            return _order(command, args, next_client_order_id)
        parser = _PARSERS.get(command)
        if parser is None:
            return ProtocolError(
                Reason.MALFORMED_MESSAGE,
                f"unknown command {quote(tokens[0])}; commands: {', '.join(USAGE)} (type help)",
            )
        return parser(args)
    except _Usage as e:
        return ProtocolError(Reason.MALFORMED_MESSAGE, f"{e}; usage: {USAGE[command]}")
