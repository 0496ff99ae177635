"""Differential test of the whole server against the naive reference book (tests/reference_book.py).

Seeded random order flow from three accounts goes over real sockets to a running engine: limit
(some post-only), market, IOC and FOK with and without a price, the four stop types, cancels
(some of unknown ids) and replaces, with every self-trade prevention mode. Each command is also
applied to the reference, which knows nothing of actors, risk, journal or wire formats. Then
every trade on the public tape, every order's final state and the final depth must be identical.

Each command waits for its direct reply before the next is sent, so both sides see the same
sequence of commands; balances are generous and prices stay well inside the price band, so risk
refuses nothing and the comparison is about matching alone.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.integration.conftest import Client, EngineHarness, eventually
from tests.reference_book import CONDITIONAL_TYPES, ReferenceBook, RefOrder
from tradingapp.engine.commands import Cancel, NewOrder, Replace
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

SYM = "BTC-USDT"
TRADERS = ("alice", "bob", "carol")
MID = 3_000_000  # 30000.00 in ticks of 0.01
STEP = 100  # prices move in whole USDT
LOT = 1_000  # quantities are multiples of 0.01 BTC (lots of 0.00001)
STP_MODES = list(SelfTradePrevention)


class Flow:
    """Drives one seeded random flow through the server and the reference side by side."""

    def __init__(self, spec: SymbolSpec, clients: dict[str, Client], fees: Any, seed: int) -> None:
        self.spec = spec
        self.clients = clients
        self.fees = fees
        self.rng = random.Random(seed)
        self.reference = ReferenceBook(spec)
        self.unknown_id = 10**9  # ids for orders the server refused before assigning one
        self.trades: list[tuple[object, ...]] = []  # the reference's trade events, in order

    def apply(self, command: NewOrder | Cancel | Replace) -> list[tuple[object, ...]]:
        """Apply a command to the reference and keep its trades."""
        events = self.reference.apply(command)
        self.trades.extend(e for e in events if e[0] == "trade")
        return events

    # -- random choices -------------------------------------------------------------------------

    def price(self, spread: int = 15) -> int:
        return MID + self.rng.randint(-spread, spread) * STEP

    def quantity(self) -> int:
        return self.rng.randint(1, 20) * LOT

    def near_last(self) -> int:
        last = self.reference.last_price or MID
        return last + self.rng.randint(-6, 6) * STEP

    # -- commands ---------------------------------------------------------------------------------

    async def step(self) -> None:
        account = self.rng.choice(TRADERS)
        roll = self.rng.random()
        if roll < 0.15 and self.reference.open_orders(account):
            await self.cancel(account)
        elif roll < 0.27 and self.reference.open_orders(account):
            await self.replace(account)
        elif roll < 0.02 + 0.27:
            await self.cancel_unknown(account)
        else:
            await self.new_order(account)

    async def new_order(self, account: str) -> None:
        rng = self.rng
        side = rng.choice((Side.BUY, Side.SELL))
        kind = rng.choices(
            [OrderType.LIMIT, OrderType.MARKET, OrderType.IOC, OrderType.FOK, *CONDITIONAL_TYPES],
            weights=[50, 8, 8, 6, 3, 3, 3, 3],
        )[0]
        price: int | None = None
        stop: int | None = None
        post_only = False
        if kind is OrderType.LIMIT:
            price = self.price()
            post_only = rng.random() < 0.1
        elif kind in (OrderType.IOC, OrderType.FOK):
            price = self.price() if rng.random() < 0.6 else None
        elif kind in CONDITIONAL_TYPES:
            stop = self.near_last()
            if kind in (OrderType.STOP_LIMIT, OrderType.TAKE_PROFIT_LIMIT):
                price = stop + rng.randint(-3, 3) * STEP
        stp = rng.choice(STP_MODES)
        qty = self.quantity()
        msg: dict[str, Any] = {
            "symbol": SYM,
            "side": side.value,
            "order_type": kind.value,
            "quantity": self.spec.format_quantity(qty),
            "self_trade_prevention": stp.value,
        }
        if price is not None:
            msg["price"] = self.spec.format_price(price)
        if stop is not None:
            msg["stop_price"] = self.spec.format_price(stop)
        if post_only:
            msg["post_only"] = True
        c = self.clients[account]
        rep = await c.order(**msg)
        order_id = rep.get("order_id") or 0
        if not order_id:
            order_id = self.unknown_id
            self.unknown_id += 1
        expected = self.apply(
            NewOrder(order_id, account, side, kind, qty, price, stop, post_only, stp, fees=self.fees)
        )
        first = expected[0]
        if first[0] == "rejected":
            assert rep["exec_type"] == "rejected", (msg, rep, expected)
            assert rep["reject_reason"] in first[7], (msg, rep, first)
        else:
            assert rep["exec_type"] == "new", (msg, rep, expected)

    async def cancel(self, account: str) -> None:
        order = self.rng.choice(self.reference.open_orders(account))
        await self._cancel(account, order.order_id)

    async def cancel_unknown(self, account: str) -> None:
        """Cancel an id that is unknown, done, or (as far as this account may know) someone else's."""
        ids = list(self.reference.orders) or [1]
        await self._cancel(account, self.rng.choice([*ids, 999_999]))

    async def _cancel(self, account: str, order_id: int) -> None:
        c = self.clients[account]
        rid = c.next_cid("x")
        await c.send({"type": "cancel", "symbol": SYM, "order_id": order_id, "request_id": rid})
        reply = await c.recv(pred=lambda m: m.get("request_id") == rid, check=False)
        expected = self.apply(Cancel(order_id, account))
        if expected and expected[0][0] == "cancel_rejected":
            assert reply["type"] == "cancel_reject", (order_id, reply, expected)
            assert reply["reason"] == expected[0][2], (order_id, reply, expected)
        else:
            assert (reply["type"], reply.get("exec_type")) == ("execution_report", "canceled"), reply

    async def replace(self, account: str) -> None:
        order: RefOrder = self.rng.choice(self.reference.open_orders(account))
        rng = self.rng
        quantity = price = stop = None
        roll = rng.random()
        if roll < 0.5:
            quantity = order.filled + rng.randint(-2, 4) * LOT
            quantity = max(quantity, 0) or LOT
        if order.price is not None and (roll >= 0.4 or quantity is None):
            price = order.price + rng.randint(-3, 3) * STEP
        if order.stop_price is not None and rng.random() < 0.5:
            stop = self.near_last()
        if quantity is None and price is None and stop is None:
            quantity = order.quantity + LOT
        msg: dict[str, Any] = {"type": "replace", "symbol": SYM, "order_id": order.order_id}
        if quantity is not None:
            msg["quantity"] = self.spec.format_quantity(quantity)
        if price is not None:
            msg["price"] = self.spec.format_price(price)
        if stop is not None:
            msg["stop_price"] = self.spec.format_price(stop)
        c = self.clients[account]
        rid = msg["request_id"] = c.next_cid("r")
        await c.send(msg)
        reply = await c.recv(pred=lambda m: m.get("request_id") == rid, check=False)
        expected = self.apply(Replace(order.order_id, account, quantity, price, stop))
        if expected[0][0] == "cancel_rejected":
            assert reply["type"] == "cancel_reject", (msg, reply, expected)
            assert reply["reason"] in expected[0][2] or reply["reason"] == expected[0][2], (reply, expected)
        else:
            assert (reply["type"], reply.get("exec_type")) == ("execution_report", "replaced"), (msg, reply)

    # -- views ----------------------------------------------------------------------------------------

    def expected_tape(self, trades: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        spec = self.spec
        out = []
        for t in trades:
            _, trade_id, price, qty, maker, taker, maker_fee, taker_fee = t[:8]
            side = self.reference.orders[taker].side.value
            out.append(
                (
                    trade_id,
                    spec.format_price(price),
                    spec.format_quantity(qty),
                    maker,
                    taker,
                    side,
                    maker_fee,
                    taker_fee,
                )
            )
        return out

    def fee_units(self, text: str) -> int:
        whole, _, frac = text.lstrip("-").partition(".")
        units = int(whole + frac.ljust(self.spec.quote_places, "0"))
        return -units if text.startswith("-") else units


@pytest.mark.parametrize("seed", [7, 2026])
async def test_server_matches_the_reference_book(venue: EngineHarness, seed: int) -> None:
    assert venue.engine is not None
    config = venue.engine.config
    spec = config.symbol(SYM)
    assert spec is not None
    clients = {account: await venue.logged_on(account) for account in TRADERS}
    tape = await venue.logged_on("mm")
    await tape.send({"type": "subscribe", "symbol": SYM, "channels": ["trades"], "request_id": "t"})
    await tape.recv("subscribed", request_id="t", check=False)

    flow = Flow(spec, clients, config.fees, seed)
    for _ in range(500):
        await flow.step()
    assert len(flow.trades) > 50, "the flow should trade a lot"

    # the public tape: every trade, in order, with the same ids, prices, sizes, sides and fees
    expected = flow.expected_tape(flow.trades)
    got: list[tuple[object, ...]] = []

    def tape_complete() -> bool:
        for m in tape.take_all("trade"):
            got.append(
                (
                    m["trade_id"],
                    m["price"],
                    m["quantity"],
                    m["maker_order_id"],
                    m["taker_order_id"],
                    m["aggressor_side"],
                    flow.fee_units(m["maker_fee"]),
                    flow.fee_units(m["taker_fee"]),
                )
            )
        return len(got) >= len(expected)

    await eventually(tape_complete, timeout=20, what="for the whole tape")
    assert got == expected

    # every order's final state, asked of the server by its owner
    for order_id, order in flow.reference.orders.items():
        c = clients[str(order.account)]
        query = {"type": "order_status", "symbol": SYM, "order_id": order_id}
        st = await c.request(query, "execution_report")
        assert (
            st["order_status"],
            st["quantity"],
            st["cum_qty"],
            st["leaves_qty"],
            st["price"],
            st["stop_price"],
        ) == (
            order.status.value,
            spec.format_quantity(order.quantity),
            spec.format_quantity(order.filled),
            spec.format_quantity(order.leaves),
            spec.format_price(order.price),
            spec.format_price(order.stop_price),
        ), (order_id, st, order)

    # the final depth (the top 10 levels the book query shows)
    await tape.send({"type": "book", "symbol": SYM, "request_id": "final"})
    depth = await tape.recv("depth", request_id="final")
    bids, asks = flow.reference.depth()

    def as_text(levels: list[tuple[int, int]]) -> list[list[str | None]]:
        return [[spec.format_price(p), spec.format_quantity(q)] for p, q in levels[:10]]

    assert (depth["bids"], depth["asks"]) == (as_text(bids), as_text(asks))
