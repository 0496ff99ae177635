"""Session-level messages over real sockets, in both wire modes: logon, auth failures, messages
before logon, heartbeat / test_request, logout, help and the human form."""

from __future__ import annotations

import asyncio

import pytest

from tests.integration.conftest import EngineHarness, ServerClosed, check_shape, with_server
from tradingapp.config import load_config

ACCOUNT_MESSAGES = [
    {
        "type": "new_order",
        "client_order_id": "x1",
        "symbol": "BTC-USDT",
        "side": "buy",
        "order_type": "limit",
        "quantity": "0.1",
        "price": "30000",
    },
    {"type": "cancel", "order_id": 1},
    {"type": "cancel", "symbol": "BTC-USDT", "orig_client_order_id": "x1"},
    {"type": "replace", "symbol": "BTC-USDT", "order_id": 1, "quantity": "0.05"},
    {"type": "cancel_all"},
    {"type": "order_status", "symbol": "BTC-USDT", "order_id": 1},
    {"type": "open_orders"},
    {"type": "balances"},
]


async def test_logon_good(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.send({"type": "logon", "account": "alice", "api_key": "alice-key", "request_id": 7})
    reply = await c.recv("logon")
    assert reply["account"] == "alice"
    assert reply["request_id"] == 7
    assert reply["session_id"] is not None
    assert reply["heartbeat_interval"] == "30"  # a plain decimal string, like every decimal sent
    # logged on: an account query works
    assert "BTC" in await c.balances()


async def test_logon_twice_is_already_logged_in(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "logon", "account": "bob", "api_key": "bob-key", "request_id": "again"})
    rej = await c.recv("reject", request_id="again")
    assert rej["reason"] == "already_logged_in"
    # still alice
    await c.sync()
    orders = await c.open_orders()
    assert orders == []


async def test_wrong_key_auth_failed_then_closed_after_three(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    for i in range(2):
        await c.send({"type": "logon", "account": "alice", "api_key": "wrong", "request_id": i})
        rej = await c.recv("reject", request_id=i)
        assert rej["reason"] == "auth_failed"
        assert rej["ref_type"] == "logon"
    # a failure does not log on
    await c.send({"type": "balances", "request_id": "b"})
    assert (await c.recv("reject", request_id="b"))["reason"] == "not_logged_in"
    # the third failure closes the connection
    await c.send({"type": "logon", "account": "nobody", "api_key": "nobody-key", "request_id": 3})
    assert (await c.recv("reject", request_id=3))["reason"] == "auth_failed"
    await c.wait_closed()
    # every message before the close was a reject with auth_failed / not_logged_in; the final
    # one (if any) is auth_failed too
    for m in c.received:
        check_shape(m)
        assert m["type"] == "reject"
        assert m["reason"] in ("auth_failed", "not_logged_in")


async def test_unknown_account_and_fee_account_cannot_log_on(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.send({"type": "logon", "account": "mallory", "api_key": "mallory-key", "request_id": 1})
    assert (await c.recv("reject", request_id=1))["reason"] == "auth_failed"
    await c.send({"type": "logon", "account": "fees", "api_key": "", "request_id": 2})
    rej = await c.recv("reject", request_id=2)
    assert rej["reason"] in ("auth_failed", "invalid_field")
    # a good logon after failures still works
    assert (await c.logon("bob"))["account"] == "bob"


@pytest.mark.parametrize("msg", ACCOUNT_MESSAGES, ids=lambda m: m["type"])
async def test_account_messages_before_logon_not_logged_in(
    venue: EngineHarness, mode: str, msg: dict
) -> None:
    c = await venue.client(mode)
    await c.send({**msg, "request_id": "pre"})
    rej = await c.recv("reject", request_id="pre")
    assert rej["reason"] == "not_logged_in"
    assert rej["ref_type"] == msg["type"]
    # the connection stays usable: logging on afterwards works, and nothing was entered
    await c.logon("alice")
    assert await c.open_orders() == []


async def test_heartbeat_needs_no_answer_and_test_request_echoes_id(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    # both work before logon
    await c.send({"type": "heartbeat"})
    await c.send({"type": "test_request", "test_request_id": "t-1", "request_id": 5})
    hb = await c.recv("heartbeat")
    assert hb["test_request_id"] == "t-1"
    assert hb["request_id"] == 5
    await c.logon("alice")
    await c.send({"type": "heartbeat", "test_request_id": "t-1"})
    await c.send({"type": "test_request", "test_request_id": 99})
    hb = await c.recv("heartbeat")
    assert hb["test_request_id"] == 99
    # the heartbeats sent by the client got no reply of their own
    assert [m["type"] for m in c.received] == ["heartbeat", "logon", "heartbeat"]


async def test_test_request_without_id(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "test_request", "request_id": "p"})
    hb = await c.recv("heartbeat", request_id="p")
    assert hb.get("test_request_id") is None


async def test_logout_replies_then_closes(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "logout", "text": "bye", "request_id": "lo"})
    reply = await c.recv("logout", request_id="lo")
    assert reply["type"] == "logout"
    await c.wait_closed()
    # the account's session is gone from the engine
    assert venue.engine is not None
    await _eventually_no_session(venue, "alice")


async def _eventually_no_session(venue: EngineHarness, account: str) -> None:
    from tests.integration.conftest import eventually

    assert venue.engine is not None
    engine = venue.engine
    await eventually(lambda: all(s.account != account for s in engine.sessions))


async def test_help_in_both_modes(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.send({"type": "help", "request_id": "h"})
    reply = await c.recv("help", request_id="h")
    assert "logon ACCOUNT API_KEY" in reply["text"]
    assert "buy|sell SYMBOL QTY TYPE" in reply["text"]


async def test_unknown_type_and_missing_type(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "frobnicate", "request_id": "u"})
    rej = await c.recv("reject", request_id="u")
    assert rej["reason"] == "unknown_message_type"
    assert rej["ref_type"] == "frobnicate"  # the offending type, as issue and docs promise
    # a type that is no valid name is not echoed (the reject stays a well-formed message)
    await c.send({"type": "x" * 65, "request_id": "long"})
    rej = await c.recv("reject", request_id="long")
    assert rej["reason"] == "unknown_message_type"
    assert "ref_type" not in rej
    await c.send({"request_id": "m", "symbol": "BTC-USDT"})
    rej = await c.recv("reject", request_id="m")
    assert rej["reason"] == "missing_field"
    assert rej["field"] == "type"
    # a server-only type sent by a client is not accepted
    await c.send({"type": "execution_report", "request_id": "s"})
    rej = await c.recv("reject", request_id="s")
    assert rej["reason"] in ("unknown_message_type", "invalid_field", "missing_field")
    await c.sync()


# -- JSON-lines: the human form ------------------------------------------------------------------


async def test_human_form_session(venue: EngineHarness) -> None:
    """A whole session typed as in docs/protocol.md, every reply a compact JSON line."""
    c = await venue.client("json")
    await c.send_line("help")
    assert "Commands" in (await c.recv("help"))["text"]
    await c.send_line("logon alice alice-key")
    assert (await c.recv("logon"))["account"] == "alice"
    await c.send_line("buy btc-usdt 0.5 limit 30000")
    new = await c.recv("execution_report", exec_type="new")
    assert new["symbol"] == "BTC-USDT"
    assert new["side"] == "buy"
    assert new["price"] == "30000.00"
    assert new["quantity"] == "0.50000"
    generated = new["client_order_id"]
    assert generated and " " not in generated
    oid = new["order_id"]
    await c.send_line("sell BTC-USDT 0.1 31000 post_only id my-1")
    new2 = await c.recv("execution_report", client_order_id="my-1", exec_type="new")
    await c.send_line("book BTC-USDT 1")
    depth = await c.recv("depth")
    assert depth["bids"] == [["30000.00", "0.50000"]]
    assert depth["asks"] == [["31000.00", "0.10000"]]
    await c.send_line(f"status BTC-USDT {oid}")
    st = await c.recv("execution_report", exec_type="order_status")
    assert st["order_id"] == oid
    await c.send_line("orders BTC-USDT")
    orders = (await c.recv("open_orders"))["orders"]
    assert sorted(o["order_id"] for o in orders) == sorted([oid, new2["order_id"]])
    await c.send_line("balances")
    bal = await c.recv("balances")
    assert bal["balances"]["USDT"]["reserved"] != "0.0000000"
    await c.send_line(f"replace BTC-USDT {oid} qty 0.4")
    rep = await c.recv("execution_report", exec_type="replaced")
    assert rep["quantity"] == "0.40000"
    await c.send_line("cancel BTC-USDT my-1")
    canceled = await c.recv("execution_report", exec_type="canceled", client_order_id="my-1")
    assert canceled["reason"] == "canceled_by_user"
    await c.send_line(f"cancel {oid}")
    await c.recv("execution_report", exec_type="canceled", order_id=oid)
    await c.send_line("ping 7")
    assert (await c.recv("heartbeat"))["test_request_id"] == "7"
    await c.send_line("sub BTC-USDT trades")
    sub = await c.recv("subscribed")
    assert sub["channels"] == ["trades"]
    await c.send_line("unsub BTC-USDT trades")
    await c.recv("unsubscribed")
    await c.send_line("cancel_all")
    await c.sync()
    await c.send_line("quit")
    await c.recv("logout")
    await c.wait_closed()
    # every line was one compact JSON object
    for raw in c.raw_lines:
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        assert b'": ' not in raw and b'", "' not in raw


async def test_human_form_bad_command_keeps_connection_open(venue: EngineHarness) -> None:
    c = await venue.logged_on("alice", "json")
    await c.send_line("buy BTC-USDT 0.5 limit")
    rej = await c.recv("reject")
    assert rej["reason"] == "malformed_message"
    assert "usage: buy SYMBOL QTY TYPE" in rej["text"]
    await c.send_line("dance wildly")
    assert (await c.recv("reject"))["reason"] == "malformed_message"
    await c.send_line("")  # blank lines are ignored
    await c.send_line("   ")
    await c.send_line("ping after")
    assert (await c.recv("heartbeat"))["test_request_id"] == "after"
    # only the two rejects and the heartbeat arrived (the blank lines got nothing)
    assert [m["type"] for m in c.received[1:]] == ["reject", "reject", "heartbeat"]


async def test_json_mode_accepts_crlf_and_json_numbers(venue: EngineHarness) -> None:
    c = await venue.logged_on("alice", "json")
    await c.send_raw(
        b'{"type": "new_order", "client_order_id": "n1", "symbol": "BTC-USDT", "side": "buy",'
        b' "order_type": "limit", "quantity": 0.5, "price": 30000}\r\n'
    )
    new = await c.recv("execution_report", client_order_id="n1")
    assert new["exec_type"] == "new"
    assert new["quantity"] == "0.50000"
    assert new["price"] == "30000.00"


async def test_closed_connection_without_logon_is_fine(venue: EngineHarness, mode: str) -> None:
    c = await venue.client(mode)
    await c.close()
    d = await venue.logged_on("alice", mode)
    await d.sync()


async def test_recv_reports_server_close(venue: EngineHarness) -> None:
    """The helper itself: a recv on a connection the server closed fails fast (not a timeout)."""
    c = await venue.logged_on("alice")
    await c.send({"type": "logout"})
    await c.recv("logout")
    with pytest.raises(ServerClosed):
        await c.recv("heartbeat", timeout=5)


# -- timers (short settings so the tests stay fast) ------------------------------------------------


async def test_silent_connection_closed_after_logon_timeout(harness: EngineHarness, mode: str) -> None:
    await harness.start(with_server(load_config(), logon_timeout=0.3))
    c = await harness.client(mode)
    await c.wait_closed(timeout=3)


async def test_connection_that_never_logs_on_is_closed_after_logon_timeout(
    harness: EngineHarness, mode: str
) -> None:
    """docs/configuration.md: logon_timeout is the 'time allowed to log on after connecting'.
    Talking without logging on (help, test_request) must not keep the connection open forever."""
    await harness.start(with_server(load_config(), logon_timeout=0.3))
    c = await harness.client(mode)
    await c.send({"type": "help"})
    await c.recv("help")
    await c.wait_closed(timeout=2)


async def test_logged_on_connection_outlives_logon_timeout(harness: EngineHarness, mode: str) -> None:
    await harness.start(with_server(load_config(), logon_timeout=0.3))
    c = await harness.logged_on("alice", mode)
    # well past the logon timeout the session still answers
    with pytest.raises(AssertionError, match="did not close"):
        await c.wait_closed(timeout=0.8)
    await c.sync()


async def test_server_sends_heartbeat_when_idle(harness: EngineHarness, mode: str) -> None:
    """docs/protocol.md: heartbeat_interval is 'Seconds; the server sends a heartbeat when idle
    this long' (heartbeat: 'Keep-alive, sent when idle')."""
    await harness.start(with_server(load_config(), heartbeat_interval=0.3))
    c = await harness.client(mode)
    reply = await c.logon("alice")
    assert reply["heartbeat_interval"] == "0.3"
    hb = await c.recv("heartbeat", timeout=2)
    assert hb.get("test_request_id") is None


async def test_unanswered_test_request_ends_the_session(harness: EngineHarness) -> None:
    """FIX HeartBtInt: after an interval (and a fifth) of silence the server sends a test_request;
    unanswered for another interval, it logs the session out (heartbeat_timeout) and closes."""
    await harness.start(with_server(load_config(), heartbeat_interval=0.3))
    c = await harness.logged_on("alice", "binary")
    probe = await c.recv("test_request", timeout=3)
    assert probe["test_request_id"] is not None
    bye = await c.recv("logout", timeout=3)
    assert bye["reason"] == "heartbeat_timeout"
    await c.wait_closed(timeout=3)


async def test_answered_test_requests_keep_the_session(harness: EngineHarness) -> None:
    await harness.start(with_server(load_config(), heartbeat_interval=0.3))
    c = await harness.logged_on("alice", "binary")
    for _ in range(3):  # each round is more than the 0.66 s an unanswered probe would last
        probe = await c.recv("test_request", timeout=3)
        await c.send({"type": "heartbeat", "test_request_id": probe["test_request_id"]})
    await c.sync()
    assert not [m for m in c.received if m["type"] == "logout"]


async def test_silent_json_session_gets_heartbeats_but_is_never_cut(harness: EngineHarness) -> None:
    """The JSON-lines mode is the netcat debug mode: a person reading between two commands is not
    a dead peer, so silence brings heartbeats only, never a test_request or a logout."""
    await harness.start(with_server(load_config(), heartbeat_interval=0.3))
    c = await harness.logged_on("alice", "json")
    with pytest.raises(AssertionError, match="did not close"):
        await c.wait_closed(timeout=1.5)  # more than twice what an unanswered probe would last
    assert any(m["type"] == "heartbeat" for m in c.received)
    assert not [m for m in c.received if m["type"] in ("test_request", "logout")]
    await c.sync()


async def test_market_data_connection_outlives_logon_timeout(harness: EngineHarness, mode: str) -> None:
    """Market data needs no logon, so a subscriber is not cut off by the logon timeout; it gets
    idle heartbeats, and (having no FIX session) no test_requests."""
    await harness.start(with_server(load_config(), logon_timeout=0.3, heartbeat_interval=0.3))
    c = await harness.client(mode)
    await c.request({"type": "subscribe", "symbol": "BTC-USDT", "channels": ["trades"]}, "subscribed")
    with pytest.raises(AssertionError, match="did not close"):
        await c.wait_closed(timeout=1.2)
    assert any(m["type"] == "heartbeat" and "test_request_id" not in m for m in c.received)
    assert not [m for m in c.received if m["type"] == "test_request"]
    await c.sync()


async def test_logout_comes_after_market_data_replies(venue: EngineHarness, mode: str) -> None:
    """The logout also waits for a subscription that needs a deeper snapshot from the book."""
    mm = await venue.logged_on("mm", mode)
    await mm.order("BTC-USDT", "sell", "limit", "0.1", "31000")
    c = await venue.client(mode)
    await c.send({"type": "subscribe", "symbol": "BTC-USDT", "channels": ["depth"], "depth": 30})
    await c.send({"type": "logout"})
    await c.wait_closed()
    assert [m["type"] for m in c.received] == ["subscribed", "depth", "logout"]


async def test_nothing_after_logout_is_acted_on(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.send({"type": "logout"})
    await c.send({"type": "balances", "request_id": "late"})
    await c.wait_closed()
    assert [m["type"] for m in c.received][-1] == "logout"
    assert not [m for m in c.received if m.get("request_id") == "late"]


async def test_logout_comes_after_the_replies_to_earlier_requests(venue: EngineHarness, mode: str) -> None:
    """A client that sends requests then logout gets every reply before the logout (the server
    must not close the session with the acknowledgement of an order it entered still unsent)."""
    c = await venue.logged_on("alice", mode)
    await c.send(
        {
            "type": "new_order",
            "client_order_id": "before-logout",
            "symbol": "BTC-USDT",
            "side": "buy",
            "order_type": "limit",
            "quantity": "0.1",
            "price": "30000",
        }
    )
    await c.send({"type": "balances", "request_id": "bal"})
    await c.send({"type": "logout"})
    await c.wait_closed()
    types = [(m["type"], m.get("exec_type")) for m in c.received]
    assert types[-1] == ("logout", None), types
    assert ("execution_report", "new") in types, types
    assert ("balances", None) in types, types
    # the order was entered either way
    d = await venue.logged_on("alice", mode)
    assert [o["client_order_id"] for o in await d.open_orders()] == ["before-logout"]


async def test_requests_refused_by_the_session_are_logged(venue: EngineHarness) -> None:
    """A refusal made by the session itself (before logon, a field off the symbol's grid, an
    unknown symbol) never reaches the journal, so the log is its audit record:
    one ``request_refused`` event each, naming the session, account, message type and reason."""
    from structlog.testing import capture_logs

    order = {
        "type": "new_order",
        "symbol": "BTC-USDT",
        "side": "buy",
        "order_type": "limit",
        "quantity": "0.1",
    }
    with capture_logs() as logs:
        c = await venue.client()
        await c.request({**order, "client_order_id": "early", "price": "30000"}, "reject")
        await c.logon("alice")
        await c.request({**order, "client_order_id": "offtick", "price": "30000.001"}, "execution_report")
        await c.request(
            {**order, "client_order_id": "nosym", "symbol": "NOPE-USDT", "price": "1"}, "execution_report"
        )
    refused = [(e["ref_type"], e["reason"], e["account"]) for e in logs if e["event"] == "request_refused"]
    assert refused == [
        ("new_order", "not_logged_in", None),
        ("new_order", "price_off_tick", "alice"),
        ("new_order", "unknown_symbol", "alice"),
    ]


async def test_a_flood_of_refusals_is_counted_not_logged_line_by_line(venue: EngineHarness) -> None:
    """A client sending refused requests as fast as it can costs at most REFUSAL_LOG_RATE log
    lines a second; the lines left out are counted on the next line logged."""
    from structlog.testing import capture_logs

    from tradingapp.actors.session import REFUSAL_LOG_RATE

    c = await venue.client()
    flood = 50 * REFUSAL_LOG_RATE
    with capture_logs() as logs:
        for i in range(flood):  # every one refused: not logged on yet
            await c.send({"type": "balances", "request_id": f"f{i}"})
        await c.recv("reject", request_id=f"f{flood - 1}", timeout=20)
        await asyncio.sleep(1.1)  # a new second's budget
        await c.request({"type": "balances", "request_id": "last"}, "reject")
    refused = [e for e in logs if e["event"] == "request_refused"]
    assert len(refused) < flood / 4  # far fewer lines than refusals
    # every refusal is a line or counted in the next line's ``suppressed``
    assert len(refused) + sum(e.get("suppressed", 0) for e in refused) == flood + 1
    assert refused[-1].get("suppressed", 0) > 0
