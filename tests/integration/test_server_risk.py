"""Risk and fees over the wire: insufficient funds, fees to the unit (exact Decimal arithmetic),
conservation of every asset under random trading, racing sessions that never overdraw, and
pipelined replaces, self-trades and stops on two symbols sharing a quote that keep every hold exact."""

from __future__ import annotations

import asyncio
import random
from decimal import ROUND_CEILING, ROUND_DOWN, Decimal
from typing import Any

import attrs

from tests.integration.conftest import (
    DEMO_ACCOUNTS,
    Client,
    EngineHarness,
    all_totals,
    eventually,
)
from tradingapp.config import VenueConfig, load_config

SYM = "BTC-USDT"
USDT_UNIT = Decimal("0.0000001")  # USDT has 7 places venue-wide
BPS = Decimal("0.0001")


def fee(notional: Decimal, bps: str) -> Decimal:
    """Fee rounded toward zero to the USDT unit."""
    exact = notional * Decimal(bps) * BPS
    return exact.quantize(USDT_UNIT, rounding=ROUND_DOWN)


async def test_insufficient_funds_text_names_available_amount(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    bal = await c.balances()
    rep = await c.order(SYM, "buy", "limit", "400", "30000")  # 12M USDT > 10M
    assert rep["exec_type"] == "rejected" and rep["reject_reason"] == "insufficient_funds"
    assert f"{bal['USDT']['available']:.7f}" in rep["text"], rep["text"]
    rep = await c.order(SYM, "sell", "limit", "100.00001", "30000")  # more BTC than owned
    assert rep["reject_reason"] == "insufficient_funds"
    assert "100.00000" in rep["text"], rep["text"]
    # after reserving part of the balance, the text shows what is left
    ok = await c.order(SYM, "sell", "limit", "60", "31000")
    assert ok["exec_type"] == "new"
    rep = await c.order(SYM, "sell", "limit", "41", "31000")
    assert rep["reject_reason"] == "insufficient_funds"
    assert "40.00000" in rep["text"], rep["text"]
    # a replace that needs more than available
    await c.send(
        {"type": "replace", "symbol": SYM, "order_id": ok["order_id"], "quantity": "101", "request_id": "rq"}
    )
    rej = await c.recv("cancel_reject", request_id="rq", check=False)
    assert rej["reason"] == "insufficient_funds" and "40.00000" in rej["text"]
    bal = await c.balances()
    assert bal["BTC"]["reserved"] == 60 and bal["BTC"]["available"] == 40


async def test_limit_buy_reserves_notional_plus_worst_fee(venue: EngineHarness, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    await c.order(SYM, "buy", "limit", "0.12345", "30000.01")
    notional = Decimal("0.12345") * Decimal("30000.01")
    bal = await c.balances()
    assert bal["USDT"]["reserved"] == notional + fee(notional, "2")
    assert bal["USDT"]["available"] + bal["USDT"]["reserved"] == bal["USDT"]["total"] == 10_000_000
    await c.order(SYM, "sell", "limit", "0.5", "31000")
    bal = await c.balances()
    assert bal["BTC"]["reserved"] == Decimal("0.5")


async def test_fees_on_trade_messages_and_balances_to_the_unit(venue: EngineHarness, mode: str) -> None:
    alice = await venue.logged_on("alice", mode)  # maker 1 bps
    bob = await venue.logged_on("bob", mode)  # taker 2 bps
    mm = await venue.logged_on("mm", mode)  # maker -0.5 bps (rebate)
    feed = await venue.client(mode)
    await feed.send({"type": "subscribe", "symbol": SYM, "channels": ["trades"], "request_id": "s"})
    await feed.recv("subscribed", request_id="s", check=False)
    before = {name: await c.balances() for name, c in (("alice", alice), ("bob", bob), ("mm", mm))}
    price, qty = Decimal("30000.01"), Decimal("0.00123")
    a = await alice.order(SYM, "sell", "limit", str(qty), str(price))
    m = await mm.order(SYM, "sell", "limit", "0.00077", "30000.03")
    b = await bob.order(SYM, "buy", "limit", "0.002", "30000.03")
    fills = [await bob.recv("execution_report", order_id=b["order_id"], exec_type="trade") for _ in range(2)]
    af = await alice.recv("execution_report", order_id=a["order_id"], exec_type="trade")
    mf = await mm.recv("execution_report", order_id=m["order_id"], exec_type="trade")
    n1 = price * qty  # 36.9000123
    n2 = Decimal("30000.03") * Decimal("0.00077")  # 23.1000231
    assert Decimal(af["fee"]) == fee(n1, "1") == Decimal("0.0036900")
    assert Decimal(fills[0]["fee"]) == fee(n1, "2") == Decimal("0.0073800")
    assert Decimal(mf["fee"]) == -fee(n2, "0.5") == Decimal("-0.0011550")
    assert Decimal(fills[1]["fee"]) == fee(n2, "2")
    for f in (af, mf, *fills):
        assert f["fee_asset"] == "USDT"
        assert len(f["fee"].split(".")[1]) == 7  # the asset's places
    trades = [await feed.recv("trade") for _ in range(2)]
    assert [(Decimal(t["maker_fee"]), Decimal(t["taker_fee"])) for t in trades] == [
        (fee(n1, "1"), fee(n1, "2")),
        (-fee(n2, "0.5"), fee(n2, "2")),
    ]
    after = {name: await c.balances() for name, c in (("alice", alice), ("bob", bob), ("mm", mm))}

    def delta(name: str, asset: str) -> Decimal:
        return after[name][asset]["total"] - before[name][asset]["total"]

    assert delta("alice", "BTC") == -qty
    assert delta("alice", "USDT") == n1 - fee(n1, "1")
    assert delta("mm", "BTC") == Decimal("-0.00077")
    assert delta("mm", "USDT") == n2 + fee(n2, "0.5")
    assert delta("bob", "BTC") == qty + Decimal("0.00077")
    assert delta("bob", "USDT") == -(n1 + fee(n1, "2") + n2 + fee(n2, "2"))
    # the filled buy keeps nothing reserved
    assert after["bob"]["USDT"]["reserved"] == 0
    assert after["bob"]["USDT"]["available"] == after["bob"]["USDT"]["total"]


async def _random_trading(h: EngineHarness, accounts: list[str], rounds: int, seed: int) -> Decimal:
    """Random orders among ``accounts`` on every symbol; returns the fees the trade feed reported."""
    rng = random.Random(seed)
    clients = {a: await h.logged_on(a, rng.choice(["binary", "json"])) for a in accounts}
    feed = await h.client()
    symbols = {
        "BTC-USDT": (30000, "0.01", "0.00001"),
        "ETH-USDT": (2000, "0.01", "0.0001"),
        "SOL-USDT": (100, "0.001", "0.01"),
    }
    for symbol in symbols:
        await feed.send({"type": "subscribe", "symbol": symbol, "channels": ["trades"]})
        await feed.recv("subscribed", symbol=symbol, check=False)
    sent: list[tuple[Client, str]] = []
    for _ in range(rounds):
        account = rng.choice(accounts)
        c = clients[account]
        symbol = rng.choice(list(symbols))
        mid, tick, lot = symbols[symbol]
        side = rng.choice(["buy", "sell"])
        kind = rng.choices(["limit", "market", "ioc", "fok", "cancel"], [6, 1, 1, 1, 1])[0]
        qty = Decimal(lot) * rng.randint(1, 500)
        price = Decimal(mid) + Decimal(tick) * rng.randint(-300, 300)
        cid = c.next_cid("rt")
        if kind == "cancel":
            await c.send({"type": "cancel_all", "symbol": symbol})
            continue
        msg: dict[str, Any] = {
            "type": "new_order",
            "client_order_id": cid,
            "symbol": symbol,
            "side": side,
            "order_type": kind,
            "quantity": str(qty),
        }
        if kind in ("limit", "ioc", "fok") and (kind == "limit" or rng.random() < 0.7):
            msg["price"] = str(price)
        await c.send(msg)
        sent.append((c, cid))
    # every order reached a final or resting state
    for c, cid in sent:
        await c.recv(
            "execution_report",
            client_order_id=cid,
            pred=lambda m: m["exec_type"] in ("new", "rejected"),
            timeout=30,
            check=False,
        )
    for c in clients.values():
        await c.send({"type": "cancel_all"})
    for c in clients.values():
        await eventually(lambda c=c: _no_open_orders(c), 10)
    # all trades printed: compare with the fill reports the takers received
    fills = sum(
        1
        for c in clients.values()
        for m in c.received
        if m.get("exec_type") == "trade" and m.get("liquidity") == "taker"
    )
    await eventually(lambda: len([m for m in feed.received if m["type"] == "trade"]) == fills, 10)
    trades = [m for m in feed.received if m["type"] == "trade"]
    assert fills > 10, "the random run should trade"
    for c in clients.values():
        await c.close()
    return sum((Decimal(t["maker_fee"]) + Decimal(t["taker_fee"]) for t in trades), Decimal(0))


async def _no_open_orders(c: Client) -> bool:
    return await c.open_orders() == []


async def test_conservation_under_random_trading(venue: EngineHarness) -> None:
    before = await all_totals(venue)
    fees = await _random_trading(venue, ["alice", "bob", "carol", "mm", "load1", "load2"], 400, seed=2024)
    after = await all_totals(venue)
    assert set(before) == set(after) == {"BTC", "ETH", "SOL", "USDT"}
    for asset in ("BTC", "ETH", "SOL"):
        assert after[asset] == before[asset], asset
    # every fee went to the fee account (which cannot log on): demo accounts lost exactly the fees
    assert before["USDT"] - after["USDT"] == fees
    # nothing stays reserved once every order is canceled
    for account in DEMO_ACCOUNTS:
        c = await venue.logged_on(account)
        for asset, row in (await c.balances()).items():
            assert row["reserved"] == 0, (account, asset, row)
            assert row["available"] == row["total"] >= 0, (account, asset, row)
        await c.close()


def small_config(**balances: dict[str, str]) -> VenueConfig:
    """The demo venue with some accounts' balances replaced (decimal strings per asset)."""
    config = load_config()
    places = config.asset_places
    accounts = []
    for acct in config.accounts:
        if acct.account in balances:
            units = {
                asset: int(Decimal(v).scaleb(places[asset])) for asset, v in balances[acct.account].items()
            }
            acct = attrs.evolve(acct, balances={**{a: 0 for a in acct.balances}, **units})
        accounts.append(acct)
    return attrs.evolve(config, accounts=tuple(accounts))


async def test_racing_sessions_never_overdraw(harness: EngineHarness) -> None:
    """alice and bob, each from four sessions in both modes, race for more than they own while
    trading with each other; nothing is ever overdrawn and the books balance."""
    await harness.start(
        small_config(
            alice={"USDT": "1000", "BTC": "0.05"},
            bob={"USDT": "1000", "BTC": "0.05"},
        )
    )
    sessions = {
        name: [await harness.logged_on(name, mode) for mode in ("binary", "json", "binary", "json")]
        for name in ("alice", "bob")
    }
    before = {name: await s[0].balances() for name, s in sessions.items()}
    rng = random.Random(5)

    async def storm(c: Client, n: int) -> list[str]:
        cids = []
        for _ in range(n):
            cid = c.next_cid("race")
            side = rng.choice(["buy", "sell"])
            kind = rng.choices(["limit", "market", "ioc"], [8, 1, 1])[0]
            msg: dict[str, Any] = {
                "type": "new_order",
                "client_order_id": cid,
                "symbol": SYM,
                "side": side,
                "order_type": kind,
                "quantity": "0.001",
            }
            if kind != "market":
                msg["price"] = str(30000 + rng.randint(-5, 5))
            await c.send(msg)
            cids.append(cid)
        return cids

    all_cids = await asyncio.gather(*(storm(c, 40) for s in sessions.values() for c in s))
    outcomes: dict[str, int] = {}
    clients = [c for s in sessions.values() for c in s]
    for c, cids in zip(clients, all_cids, strict=True):
        for cid in cids:
            rep = await c.recv(
                "execution_report",
                client_order_id=cid,
                pred=lambda m: m["exec_type"] in ("new", "rejected"),
                timeout=30,
                check=False,
            )
            key = rep["exec_type"] if rep["exec_type"] == "new" else rep["reject_reason"]
            outcomes[key] = outcomes.get(key, 0) + 1
    assert outcomes.get("insufficient_funds", 0) > 0, outcomes  # the race really ran out of funds
    assert set(outcomes) <= {"new", "insufficient_funds", "price_out_of_band"}, outcomes
    for name, s in sessions.items():
        bal = await s[1].balances()
        for asset, row in bal.items():
            assert row["total"] >= 0 and row["available"] >= 0 and row["reserved"] >= 0, (name, asset, row)
            assert row["available"] + row["reserved"] == row["total"], (name, asset, row)
        # the reservations match the open orders exactly
        orders = await s[2].open_orders()
        need_usdt = sum(
            (
                Decimal(o["price"]) * Decimal(o["leaves_qty"])
                + fee(Decimal(o["price"]) * Decimal(o["leaves_qty"]), "2")
                for o in orders
                if o["side"] == "buy"
            ),
            Decimal(0),
        )
        need_btc = sum((Decimal(o["leaves_qty"]) for o in orders if o["side"] == "sell"), Decimal(0))
        assert bal["USDT"]["reserved"] == need_usdt, (name, bal["USDT"], need_usdt)
        assert bal["BTC"]["reserved"] == need_btc, (name, bal["BTC"], need_btc)
    # conservation between the two (plus the fees taken)
    for s in sessions.values():
        await s[0].send({"type": "cancel_all"})
    for s in sessions.values():
        await eventually(lambda s=s: _no_open_orders(s[3]), 10)
    after = {name: await s[0].balances() for name, s in sessions.items()}
    fees_paid = sum(
        (
            Decimal(m["fee"])
            for s in sessions.values()
            for m in s[0].received
            if m.get("exec_type") == "trade"
        ),
        Decimal(0),
    )
    assert sum(after[n]["BTC"]["total"] for n in after) == sum(before[n]["BTC"]["total"] for n in before)
    assert sum(after[n]["USDT"]["total"] for n in after) + fees_paid == sum(
        before[n]["USDT"]["total"] for n in before
    )
    for name in after:
        for asset, row in after[name].items():
            assert row["reserved"] == 0 and row["available"] == row["total"] >= 0, (name, asset, row)


def _expected_holds(orders: list[dict[str, Any]]) -> dict[str, Decimal]:
    """What docs/risk.md says an account of the demo rates (maker 1, taker 2 bps) holds for these
    open orders: sells their open quantity; priced buys notional plus the worse fee; untriggered
    stop-market buys stop price x quantity x 1.1 (rounded up) plus the taker fee."""
    held = {"BTC": Decimal(0), "ETH": Decimal(0), "USDT": Decimal(0)}
    for o in orders:
        base = o["symbol"].split("-")[0]
        leaves = Decimal(o["leaves_qty"])
        if o["side"] == "sell":
            held[base] += leaves
        elif o["price"] is not None:
            notional = Decimal(o["price"]) * leaves
            held["USDT"] += notional + fee(notional, "2")
        else:
            assert o["order_type"] in ("stop_loss", "take_profit"), o
            buffered = (Decimal(o["stop_price"]) * Decimal(o["quantity"]) * Decimal("1.1")).quantize(
                USDT_UNIT, rounding=ROUND_CEILING
            )
            held["USDT"] += buffered + fee(buffered, "2")
    return held


async def test_pipelined_replaces_stops_and_self_trades_on_two_symbols_keep_holds_exact(
    harness: EngineHarness,
) -> None:
    """alice, from three sessions that never wait, replaces her orders back to back (quantity up
    and down, prices across the market, new client ids), crosses her own orders with decrement
    self-trade prevention, enters market and stop-market buys and cancels, on BTC-USDT and
    ETH-USDT at once, which both draw her few USDT. Once every request is answered, nothing is
    negative, the reservations are exactly what her open orders hold, the live client ids are
    distinct, and every asset is conserved."""
    await harness.start(small_config(alice={"USDT": "3000", "BTC": "0.05", "ETH": "1"}))
    rng = random.Random(11)
    mm = await harness.logged_on("mm")
    for i in range(4):
        await mm.order("BTC-USDT", "sell", "limit", "0.01", str(30000 + 5 * i))
        await mm.order("ETH-USDT", "buy", "limit", "0.1", str(2000 - i))
    sessions = [await harness.logged_on("alice", mode) for mode in ("binary", "json", "binary")]
    before = await all_totals(harness, ("alice", "mm"))
    orders = []
    for i in range(4):
        buy = await sessions[0].order(
            "BTC-USDT", "buy", "limit", "0.01", str(29900 + 10 * i), self_trade_prevention="decrement"
        )
        sell = await sessions[0].order(
            "ETH-USDT", "sell", "limit", "0.2", str(2005 + i), self_trade_prevention="decrement"
        )
        orders += [(buy["order_id"], "BTC-USDT"), (sell["order_id"], "ETH-USDT")]
    for step in range(150):
        c = sessions[step % 3]
        oid, sym = rng.choice(orders)
        btc = sym == "BTC-USDT"
        kind = rng.random()
        if kind < 0.55:
            for _ in range(rng.randint(1, 3)):
                msg: dict[str, Any] = {"type": "replace", "symbol": sym, "order_id": oid}
                if rng.random() < 0.6:
                    msg["quantity"] = str(Decimal(rng.randint(1, 4)) / (100 if btc else 5))
                if rng.random() < 0.6 or "quantity" not in msg:
                    msg["price"] = str(rng.randint(29880, 30010) if btc else rng.randint(1998, 2012))
                if rng.random() < 0.3:
                    msg["client_order_id"] = c.next_cid("rep")
                await c.send(msg)
        elif kind < 0.75:
            side, price = ("sell", "29950") if btc else ("buy", "2006")
            await c.send(
                {
                    "type": "new_order",
                    "client_order_id": c.next_cid("self"),
                    "symbol": sym,
                    "side": side,
                    "order_type": "limit",
                    "quantity": "0.01" if btc else "0.1",
                    "price": price,
                    "self_trade_prevention": "decrement",
                }
            )
        elif kind < 0.85:
            order_type = rng.choice(["market", "stop_loss"])
            await c.send(
                {
                    "type": "new_order",
                    "client_order_id": c.next_cid("mkt"),
                    "symbol": sym,
                    "side": "buy",
                    "order_type": order_type,
                    "quantity": "0.001" if btc else "0.01",
                    **({"stop_price": "30100" if btc else "2030"} if order_type == "stop_loss" else {}),
                }
            )
        elif kind < 0.95:
            await c.send({"type": "cancel", "order_id": oid})
        else:
            await c.send({"type": "cancel_all", "symbol": sym})
    # a logout is answered after every earlier request has been through risk and the books
    for c in sessions:
        await c.request({"type": "logout"}, "logout", timeout=30)
    outcomes = {m["exec_type"] for c in sessions for m in c.reports()}
    assert {"replaced", "trade", "canceled", "expired"} <= outcomes, outcomes
    check = await harness.logged_on("alice")
    balances = await check.balances()
    open_orders = await check.open_orders()
    expected = _expected_holds(open_orders)
    for asset, row in balances.items():
        assert row["total"] >= 0 and row["available"] >= 0 and row["reserved"] >= 0, (asset, row)
        assert row["available"] + row["reserved"] == row["total"], (asset, row)
        assert row["reserved"] == expected.get(asset, 0), (asset, row, open_orders)
    live_ids = [o["client_order_id"] for o in open_orders]
    assert len(live_ids) == len(set(live_ids)), live_ids
    after = await all_totals(harness, ("alice", "mm"))
    fees_paid = sum(
        # every session of an account gets the account's reports: count alice's from one of them
        (Decimal(m["fee"]) for c in (sessions[0], mm) for m in c.received if m.get("exec_type") == "trade"),
        Decimal(0),
    )
    assert after["BTC"] == before["BTC"] and after["ETH"] == before["ETH"]
    assert after["USDT"] + fees_paid == before["USDT"]
