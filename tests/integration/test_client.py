"""The bundled client library (clients/) against a real in-process engine."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest

from clients.client import (
    CancelRejected,
    Client,
    ClientError,
    ConnectionClosed,
    RequestRejected,
    connect,
    to_decimal_string,
)
from clients.sync import SyncClient
from tests.integration.conftest_client import engine_addr, threaded_engine  # noqa: F401

BTC = "BTC-USDT"
T = 5.0  # seconds: generous bound on every wait


@pytest.fixture
async def alice(engine_addr: tuple[str, int]) -> AsyncIterator[Client]:  # noqa: F811
    client = await connect(*engine_addr)
    await client.logon("alice", "alice-key", timeout=T)
    yield client
    await client.close()


@pytest.fixture
async def bob(engine_addr: tuple[str, int]) -> AsyncIterator[Client]:  # noqa: F811
    client = await connect(*engine_addr, mode="json")
    await client.logon("bob", "bob-key", timeout=T)
    yield client
    await client.close()


def test_decimal_strings() -> None:
    assert "0.5" == to_decimal_string("0.5")
    assert "3" == to_decimal_string(3)
    assert "100" == to_decimal_string(Decimal("1E+2"))
    with pytest.raises(TypeError):
        to_decimal_string(0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        to_decimal_string(True)
    with pytest.raises(ValueError):
        to_decimal_string(Decimal("NaN"))


async def test_new_order_message_options() -> None:
    client = Client(asyncio.get_running_loop())
    assert {
        "type": "new_order",
        "client_order_id": "c1",
        "symbol": BTC,
        "side": "sell",
        "order_type": "stop_limit",
        "quantity": "0.5",
        "price": "100",
        "stop_price": "101",
        "post_only": True,
        "self_trade_prevention": "cancel_newest",
    } == client.new_order_message(
        BTC,
        "sell",
        "stop_limit",
        "0.5",
        Decimal("1E+2"),
        stop_price=101,
        client_order_id="c1",
        post_only=True,
        self_trade_prevention="cancel_newest",
    )
    plain = client.new_order_message(BTC, "buy", "market", "1", post_only=False)
    assert {"price", "stop_price", "post_only", "self_trade_prevention"}.isdisjoint(plain)
    assert plain["client_order_id"]  # generated
    with pytest.raises(TypeError, match="stop_prise"):
        client.new_order_message(BTC, "buy", "limit", "1", "2", stop_prise="3")  # type: ignore[call-arg]


async def test_logon_and_bad_key(engine_addr: tuple[str, int]) -> None:  # noqa: F811
    client = await connect(*engine_addr)
    with pytest.raises(RequestRejected) as info:
        await client.logon("alice", "wrong", timeout=T)
    assert "auth_failed" == info.value.reason
    assert "reject" == info.value.message["type"]
    reply = await client.logon("alice", "alice-key", timeout=T)
    assert "logon" == reply["type"]
    assert "alice" == client.account
    heartbeat = await client.test_request("t-1", timeout=T)
    assert "t-1" == heartbeat["test_request_id"]
    assert 0 < await client.ping(timeout=T) < T
    assert "logout" == (await client.logout(timeout=T) or {}).get("type")
    assert client.is_closed


async def test_place_and_cancel(alice: Client) -> None:
    order = await alice.submit_order(BTC, "buy", "limit", Decimal("0.5"), 29000, timeout=T)
    first = order.reports[0]
    assert ("new", "new") == (first["exec_type"], first["order_status"])
    assert first["client_order_id"] == order.client_order_id
    assert isinstance(order.order_id, int)
    assert not order.is_done
    canceled = await alice.cancel(BTC, order_id=order.order_id, timeout=T)
    assert ("canceled", "canceled_by_user") == (canceled["exec_type"], canceled["reason"])
    assert "canceled" == (await order.done(T))["order_status"]
    assert ["new", "canceled"] == [r["exec_type"] for r in order.reports]
    assert ["new", "canceled"] == [r["exec_type"] async for r in order]
    assert ["new", "canceled"] == [(await order.next_report(T))["exec_type"] for _ in range(2)]
    with pytest.raises(ClientError, match="no more reports"):
        await order.next_report(T)
    with pytest.raises(CancelRejected) as info:
        await alice.cancel(BTC, order_id=order.order_id, timeout=T)
    assert "order_not_open" == info.value.reason
    assert "cancel_reject" == info.value.message["type"]
    # by client order id, through the handle
    second = await alice.submit_order(
        BTC, "sell", "limit", "0.1", "31000", client_order_id="mine-1", timeout=T
    )
    assert "mine-1" == second.client_order_id
    assert "canceled" == (await second.cancel(timeout=T))["exec_type"]


async def test_trade_between_two_clients(alice: Client, bob: Client) -> None:
    resting = await alice.submit_order(BTC, "sell", "limit", "0.3", "30000", timeout=T)
    taker = await bob.submit_order(BTC, "buy", "limit", "0.2", "30000", wait="done", timeout=T)
    assert "filled" == taker.status
    assert [Decimal("0.2")] == [Decimal(f["last_qty"]) for f in taker.fills]
    assert "taker" == taker.fills[0]["liquidity"]
    assert "new" == (await resting.next_report(T))["exec_type"]
    report = await resting.next_report(T)
    assert ("trade", "partially_filled") == (report["exec_type"], report["order_status"])
    assert Decimal("0.2") == resting.filled_quantity


async def test_replace(alice: Client) -> None:
    order = await alice.submit_order(BTC, "buy", "limit", "1", "29000", timeout=T)
    assert order.order_id is not None
    replaced = await alice.replace(BTC, order.order_id, quantity="0.4", price="29100", timeout=T)
    assert ("replaced", "0.40000", "29100.00") == (
        replaced["exec_type"],
        replaced["quantity"],
        replaced["price"],
    )
    assert "replaced" == order.reports[-1]["exec_type"]
    with pytest.raises(CancelRejected) as info:
        await alice.replace(BTC, 987654321, quantity="1", timeout=T)
    assert "unknown_order" == info.value.reason
    assert "replaced" == (await order.replace(price="29200", timeout=T))["exec_type"]


async def test_status_open_orders_balances(alice: Client) -> None:
    before = await alice.balances(timeout=T)
    order = await alice.submit_order(BTC, "buy", "limit", "0.5", "20000", timeout=T)
    status = await alice.order_status(BTC, order_id=order.order_id, timeout=T)
    assert ("order_status", "new") == (status["exec_type"], status["order_status"])
    by_cid = await alice.order_status(BTC, client_order_id=order.client_order_id, timeout=T)
    assert order.order_id == by_cid["order_id"]
    assert [order.order_id] == [o["order_id"] for o in await alice.open_orders(timeout=T)]
    assert [] == await alice.open_orders("ETH-USDT", timeout=T)
    after = await alice.balances(timeout=T)
    assert after["USDT"]["reserved"] > before["USDT"]["reserved"] >= 0
    assert after["USDT"]["total"] == after["USDT"]["available"] + after["USDT"]["reserved"]
    assert order.reports == order.reports[:1]  # a status query is not an event of the order


async def test_cancel_all(alice: Client) -> None:
    handles = [
        await alice.submit_order(BTC, "buy", "limit", "0.1", str(28000 + i), timeout=T) for i in range(3)
    ]
    result = await alice.cancel_all(BTC, timeout=T)
    assert 3 == result.orders
    assert sorted(h.order_id for h in handles) == sorted(result.order_ids)  # type: ignore[type-var]
    for handle in handles:
        assert "canceled" == (await handle.done(T))["order_status"]
    assert 0 == (await alice.cancel_all(timeout=T)).orders


async def test_rejects(alice: Client) -> None:
    bad = await alice.submit_order(BTC, "buy", "limit", "0.000001", "30000", timeout=T)  # below the lot
    assert bad.rejected and bad.is_done
    assert "quantity_off_lot" == bad.reports[0]["reject_reason"]
    assert bad.order_id is None
    unknown = await alice.submit_order("NOPE-USDT", "buy", "limit", "1", "1", timeout=T)
    assert "unknown_symbol" == unknown.reports[0]["reject_reason"]
    with pytest.raises(RequestRejected) as info:  # schema-level: a field new_order does not have
        await alice.request({"type": "new_order", "bogus": 1}, timeout=T)
    assert "reject" == info.value.message["type"]
    with pytest.raises(TypeError):
        await alice.submit_order(BTC, "buy", "limit", 0.5, "30000")  # type: ignore[arg-type]


async def test_subscribe_snapshot_then_updates(
    alice: Client,
    bob: Client,
    engine_addr: tuple[str, int],  # noqa: F811
) -> None:
    await alice.submit_order(BTC, "sell", "limit", "1", "30500", timeout=T)
    watcher = await connect(*engine_addr)  # market data needs no logon
    feed = await watcher.subscribe(BTC, depth=5, timeout=T)
    assert ("subscribed", 5) == (feed.reply["type"], feed.reply["depth"])
    snapshots = [await feed.get(T), await feed.get(T)]
    by_type = {m["type"]: m for m in snapshots}  # type: ignore[index]
    assert {"bbo", "depth"} == set(by_type)
    assert "30500.00" == by_type["bbo"]["ask_price"]
    assert [["30500.00", "1.00000"]] == by_type["depth"]["asks"]
    await bob.submit_order(BTC, "buy", "limit", "0.25", "30500", timeout=T)  # trades
    seen: dict[str, dict[str, Any]] = {}
    while len(seen) < 3:
        msg = await feed.get(T)
        assert msg is not None and BTC == msg["symbol"]
        seen.setdefault(msg["type"], msg)
    assert ("30500.00", "0.25000") == (seen["trade"]["price"], seen["trade"]["quantity"])
    assert "0.75000" == seen["bbo"]["ask_quantity"]
    # the updates continue the snapshots' seqs, which the subscription checked
    assert by_type["bbo"]["seq"] + 1 == seen["bbo"]["seq"]
    assert by_type["depth"]["seq"] + 1 == seen["depth"]["seq"]
    assert (0, 0) == (feed.seq.lost, feed.seq.conflated)
    await feed.unsubscribe(timeout=T)
    leftover = [m async for m in feed]  # the buffered messages, then the iteration ends
    assert feed.closed and all(BTC == m["symbol"] for m in leftover)
    with pytest.raises(RequestRejected) as info:
        await watcher.subscribe("NOPE-USDT", timeout=T)
    assert "unknown_symbol" == info.value.reason
    await watcher.close()


async def test_closed_connection(engine_addr: tuple[str, int]) -> None:  # noqa: F811
    client = await connect(*engine_addr)
    await client.logon("carol", "carol-key", timeout=T)
    order = await client.submit_order(BTC, "buy", "limit", "0.1", "25000", wait=None)
    await order.ack(T)
    await client.close()
    with pytest.raises(ConnectionClosed):
        await order.done(T)
    seen = []
    with pytest.raises(ConnectionClosed):
        async for report in order:  # the reports so far, then the error
            seen.append(report["exec_type"])
    assert ["new"] == seen
    with pytest.raises(ConnectionClosed):
        await client.balances(timeout=T)


async def test_unreachable() -> None:
    with pytest.raises(OSError):
        await connect("127.0.0.1", 1, timeout=T)


def test_sync_client(threaded_engine: tuple[str, int]) -> None:  # noqa: F811
    host, port = threaded_engine
    with SyncClient(host, port) as client:
        assert "logon" == client.logon("alice", "alice-key", timeout=T)["type"]
        order = client.submit_order(BTC, "buy", "limit", "0.5", "29000", timeout=T)
        assert "new" == order.status and order.order_id is not None
        feed = client.subscribe(BTC, channels=["bbo"], timeout=T)
        snapshot = feed.get(T)
        assert snapshot is not None and ("bbo", "29000.00") == (snapshot["type"], snapshot["bid_price"])
        assert "new" == client.order_status(BTC, order_id=order.order_id, timeout=T)["order_status"]
        assert 1 == len(client.open_orders(timeout=T))
        assert client.balances(timeout=T)["USDT"]["reserved"] > 0
        assert "replaced" == client.replace(BTC, order.order_id, price="29001", timeout=T)["exec_type"]
        update = next(iter(feed))
        assert "29001.00" == update["bid_price"]
        assert "canceled" == order.cancel(timeout=T)["exec_type"]
        assert "canceled" == order.done(T)["order_status"]
        feed.unsubscribe(timeout=T)
        with pytest.raises(CancelRejected):
            client.cancel(BTC, order_id=order.order_id, timeout=T)
        assert 0 == client.cancel_all(timeout=T).orders
        assert client.ping(timeout=T) < T
    assert client.is_closed


async def test_two_sessions_of_one_account(engine_addr: tuple[str, int]) -> None:  # noqa: F811
    first, second = await connect(*engine_addr), await connect(*engine_addr)
    for client in (first, second):
        await client.logon("carol", "carol-key", timeout=T)
    order = await first.submit_order(BTC, "buy", "limit", "0.1", "29000", timeout=T)
    # the venue copies the order's reports to the other session; they must not answer its requests
    balances = await second.balances(timeout=T)
    assert balances["USDT"]["reserved"] > 0
    await order.cancel(timeout=T)
    assert [] == await second.open_orders(timeout=T)
    assert {m.get("order_id") for m in second.unrouted} <= {order.order_id}
    for client in (first, second):
        await client.close()


@pytest.mark.parametrize("mode", ["binary", "json"])
async def test_orders_in_flight_with_one_client_order_id(
    engine_addr: tuple[str, int],  # noqa: F811
    mode: Literal["binary", "json"],
) -> None:
    """The venue refuses the second order's duplicate client_order_id; each handle gets its own
    first report (matched by the request id the venue echoes), whichever arrives first."""
    client = await connect(*engine_addr, mode=mode)
    await client.logon("carol", "carol-key", timeout=T)
    first, second = await asyncio.gather(
        client.submit_order(BTC, "buy", "limit", "0.1", "29000", client_order_id="twin", timeout=T),
        client.submit_order(BTC, "buy", "limit", "0.1", "29001", client_order_id="twin", timeout=T),
    )
    assert ("new", "29000.00") == (first.status, first.reports[0]["price"])
    assert ("rejected", "29001.00") == (second.status, second.reports[0]["price"])
    assert "duplicate_client_order_id" == second.reports[0]["reject_reason"]
    assert "canceled" == (await first.cancel(timeout=T))["exec_type"]
    assert ["new", "canceled"] == [r["exec_type"] for r in first.reports]
    await client.close()


def test_packages_ship_their_typing_marker(tmp_path: Path) -> None:
    """Installed from a wheel, both packages say they are typed (PEP 561), so mypy checks a
    user's script against the client's annotations instead of skipping the import."""
    root = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(root)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("tradingapp-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"tradingapp/py.typed", "clients/py.typed"} <= names


def test_sync_client_after_close(threaded_engine: tuple[str, int]) -> None:  # noqa: F811
    """As with the asyncio client: a call after close() raises ConnectionClosed (not the
    background loop's RuntimeError), and a feed ends after its buffered messages."""
    client = SyncClient(*threaded_engine)
    feed = client.subscribe(BTC, channels=["bbo", "depth"], timeout=T)
    assert feed.get(T) is not None  # the bbo snapshot read, the depth snapshot still buffered
    client.close()
    with pytest.raises(ConnectionClosed):
        client.balances(timeout=T)
    with pytest.raises(ConnectionClosed):
        client.submit_order(BTC, "buy", "limit", "0.1", "29000", timeout=T)
    assert ["depth"] == [msg["type"] for msg in feed]
    feed.unsubscribe(timeout=T)
    client.close()  # idempotent
