"""The human form of JSON-lines mode: each command, its errors, and that results validate."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from tradingapp.engine.reasons import Reason
from tradingapp.protocol import HELP_TEXT, ProtocolError, parse_human, validate_client_message
from tradingapp.protocol.human import USAGE


def parse(line: str) -> dict[str, Any]:
    ids = count(1)
    result = parse_human(line, lambda: f"h{next(ids)}")
    assert isinstance(result, dict), result
    assert isinstance(validate_client_message(dict(result)), dict), result
    return result


def refuse(line: str) -> ProtocolError:
    result = parse_human(line, lambda: "h1")
    assert isinstance(result, ProtocolError), result
    assert result.reason == Reason.MALFORMED_MESSAGE
    assert not result.fatal
    return result


def new_order(**fields: Any) -> dict[str, Any]:
    return {"type": "new_order", "client_order_id": "h1", "symbol": "BTC-USDT", **fields}


# -- orders -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "buy BTC-USDT 0.5 limit 30000",
            new_order(side="buy", order_type="limit", quantity="0.5", price="30000"),
        ),
        ("sell BTC-USDT 1 market", new_order(side="sell", order_type="market", quantity="1")),
        ("buy BTC-USDT 1 ioc 30000", new_order(side="buy", order_type="ioc", quantity="1", price="30000")),
        ("buy BTC-USDT 1 ioc", new_order(side="buy", order_type="ioc", quantity="1")),
        (
            "sell BTC-USDT 2 fok 29000.5",
            new_order(side="sell", order_type="fok", quantity="2", price="29000.5"),
        ),
        (
            "sell BTC-USDT 1 stop_loss 29000",
            new_order(side="sell", order_type="stop_loss", quantity="1", stop_price="29000"),
        ),
        (
            "buy BTC-USDT 1 take_profit 25000",
            new_order(side="buy", order_type="take_profit", quantity="1", stop_price="25000"),
        ),
        (
            "sell BTC-USDT 1 stop_limit 29000 28900",
            new_order(side="sell", order_type="stop_limit", quantity="1", stop_price="29000", price="28900"),
        ),
        (
            "buy BTC-USDT 1 take_profit_limit 25000 25100",
            new_order(
                side="buy", order_type="take_profit_limit", quantity="1", stop_price="25000", price="25100"
            ),
        ),
        ("buy BTC-USDT 0.5 30000", new_order(side="buy", order_type="limit", quantity="0.5", price="30000")),
        (
            "BUY btc-usdt 0.5 LIMIT 30000",
            new_order(side="buy", order_type="limit", quantity="0.5", price="30000"),
        ),
    ],
)
def test_order_commands(line: str, expected: dict[str, Any]) -> None:
    assert expected == parse(line)


def test_order_options() -> None:
    msg = parse("buy BTC-USDT 0.5 limit 30000 post_only stp cancel_both id my-order-7")

    assert True is msg["post_only"]
    assert msg["self_trade_prevention"] == "cancel_both"
    assert msg["client_order_id"] == "my-order-7"


def test_generated_client_order_ids_come_from_the_factory_in_order() -> None:
    ids = iter(["a1", "a2"])

    first = parse_human("buy X 1 market", lambda: next(ids))
    second = parse_human("sell X 1 market", lambda: next(ids))

    assert [first["client_order_id"], second["client_order_id"]] == ["a1", "a2"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("buy", "missing SYMBOL"),
        ("buy BTC-USDT", "missing QTY"),
        ("buy BTC-USDT 0.5", "missing TYPE"),
        ("buy BTC-USDT 0.5 limit", "missing PRICE"),
        ("buy BTC-USDT half limit 30000", "QTY 'half' is not a number"),
        ("buy BTC-USDT 0.5 limit 3e4", "PRICE '3e4' is not a number"),
        ("buy BTC-USDT 0.5 gtc 30000", "unknown order type 'gtc'"),
        ("sell BTC-USDT 1 stop_limit 29000", "missing PRICE"),
        ("sell BTC-USDT 1 stop_loss", "missing STOP"),
        ("buy BTC-USDT 1 market 30000", "unexpected '30000'"),
        ("buy BTC-USDT 1 limit 1 stp", "missing MODE"),
        ("buy BTC-USDT 1 limit 1 stp maybe", "unknown stp mode 'maybe'"),
        ("buy BTC-USDT 1 limit 1 id", "missing CLIENT_ORDER_ID"),
    ],
)
def test_bad_order_lines_show_the_usage(line: str, problem: str) -> None:
    error = refuse(line)

    assert problem in error.text
    assert USAGE[line.split()[0]] in error.text


def test_human_order_with_a_bad_client_id_is_caught_by_validation() -> None:
    msg = parse_human("buy X 1 market id " + "x" * 65, lambda: "h1")

    error = validate_client_message(msg)

    assert isinstance(error, ProtocolError)
    assert error.reason == Reason.INVALID_CLIENT_ORDER_ID


# -- other commands -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("cancel 42", {"type": "cancel", "order_id": 42}),
        ("cancel BTC-USDT 42", {"type": "cancel", "symbol": "BTC-USDT", "order_id": 42}),
        ("cancel btc-usdt my-1", {"type": "cancel", "symbol": "BTC-USDT", "orig_client_order_id": "my-1"}),
        ("cancel my-1", {"type": "cancel", "orig_client_order_id": "my-1"}),
        (
            "replace BTC-USDT 42 qty 0.4 price 30100",
            {"type": "replace", "symbol": "BTC-USDT", "order_id": 42, "quantity": "0.4", "price": "30100"},
        ),
        (
            "replace BTC-USDT my-1 stop 29500 id my-2",
            {
                "type": "replace",
                "symbol": "BTC-USDT",
                "orig_client_order_id": "my-1",
                "stop_price": "29500",
                "client_order_id": "my-2",
            },
        ),
        ("cancel_all", {"type": "cancel_all"}),
        ("cancel_all BTC-USDT", {"type": "cancel_all", "symbol": "BTC-USDT"}),
        ("cancelall eth-usdt", {"type": "cancel_all", "symbol": "ETH-USDT"}),
        ("status BTC-USDT 42", {"type": "order_status", "symbol": "BTC-USDT", "order_id": 42}),
        ("status BTC-USDT my-1", {"type": "order_status", "symbol": "BTC-USDT", "client_order_id": "my-1"}),
        ("orders", {"type": "open_orders"}),
        ("orders BTC-USDT", {"type": "open_orders", "symbol": "BTC-USDT"}),
        ("balances", {"type": "balances"}),
        ("bal", {"type": "balances"}),
        ("book BTC-USDT", {"type": "book", "symbol": "BTC-USDT"}),
        ("book BTC-USDT 5", {"type": "book", "symbol": "BTC-USDT", "depth": 5}),
        ("sub BTC-USDT", {"type": "subscribe", "symbol": "BTC-USDT", "channels": ["bbo", "depth", "trades"]}),
        ("sub BTC-USDT trades", {"type": "subscribe", "symbol": "BTC-USDT", "channels": ["trades"]}),
        (
            "sub BTC-USDT trades bbo depth 20",
            {"type": "subscribe", "symbol": "BTC-USDT", "channels": ["trades", "bbo", "depth"], "depth": 20},
        ),
        ("unsub BTC-USDT", {"type": "unsubscribe", "symbol": "BTC-USDT"}),
        (
            "unsub BTC-USDT bbo depth",
            {"type": "unsubscribe", "symbol": "BTC-USDT", "channels": ["bbo", "depth"]},
        ),
        ("logon alice alice-key", {"type": "logon", "account": "alice", "api_key": "alice-key"}),
        ("login alice alice-key", {"type": "logon", "account": "alice", "api_key": "alice-key"}),
        ("ping", {"type": "test_request"}),
        ("ping 7", {"type": "test_request", "test_request_id": "7"}),
        ("help", {"type": "help"}),
        ("?", {"type": "help"}),
        ("quit", {"type": "logout"}),
        ("logout", {"type": "logout"}),
        ("exit", {"type": "logout"}),
        ("  balances  ", {"type": "balances"}),
    ],
)
def test_commands(line: str, expected: dict[str, Any]) -> None:
    assert expected == parse(line)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("cancel", "missing ORDER"),
        ("cancel BTC-USDT 42 43", "unexpected '43'"),
        ("replace BTC-USDT", "missing ORDER"),
        ("replace BTC-USDT 42", "nothing to change"),
        ("replace BTC-USDT 42 qty", "missing a value after qty"),
        ("replace BTC-USDT 42 size 3", "expected qty, price, stop or id"),
        ("replace BTC-USDT 42 price cheap", "price 'cheap' is not a number"),
        ("status BTC-USDT", "missing ORDER"),
        ("book", "missing SYMBOL"),
        ("book BTC-USDT many", "LEVELS 'many' is not a whole number"),
        ("sub", "missing SYMBOL"),
        ("sub BTC-USDT l3", "unknown channel 'l3'"),
        ("logon alice", "missing API_KEY"),
        ("balances now", "unexpected 'now'"),
        ("quit please", "unexpected 'please'"),
        ("orders A B", "unexpected 'B'"),
    ],
)
def test_bad_command_lines_show_the_usage(line: str, problem: str) -> None:
    error = refuse(line)

    assert problem in error.text
    assert "usage: " in error.text


def test_unknown_command_lists_the_commands() -> None:
    error = refuse("frobnicate BTC-USDT")

    assert "unknown command 'frobnicate'" in error.text
    assert "help" in error.text


def test_empty_line_is_refused_by_the_parser() -> None:
    assert "empty" in refuse("   ").text


def test_book_depth_out_of_range_is_caught_by_validation() -> None:
    msg = parse_human("book BTC-USDT 500", lambda: "h1")

    error = validate_client_message(msg)

    assert isinstance(error, ProtocolError)
    assert error.field == "depth"


def test_help_text_mentions_every_command() -> None:
    for command in USAGE:
        assert command in HELP_TEXT


def test_usage_lines_agree_with_the_help_text() -> None:
    for command, usage in USAGE.items():
        words = usage.split()
        assert words[0] == command
        if command in ("buy", "sell", "quit"):
            continue
        assert usage in HELP_TEXT, usage


def test_only_ascii_digits_are_numbers_or_order_ids() -> None:
    arabic_42 = "\u0664\u0662"

    assert "QTY" in refuse(f"buy BTC-USDT {arabic_42} market").text
    assert parse_human(f"cancel {arabic_42}", str) == {"type": "cancel", "orig_client_order_id": arabic_42}
