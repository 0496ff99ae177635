"""state_digest(), snapshot() and OrderBook.restore(): equal state, equal future."""



from __future__ import annotations

import json
import random

import pytest

from tests.reference_book import view_events, view_order
from tradingapp.engine.book import OrderBook
from tradingapp.engine.commands import Cancel, CancelAll, NewOrder, Replace
from tradingapp.engine.fees import FeeRates
from tradingapp.engine.sequence import IdSequence
from tradingapp.engine.types import OrderType, SelfTradePrevention, Side

BUY, SELL = Side.BUY, Side.SELL
ACCOUNTS = ("ann", "bob", "cyd")


class RandomCommands:
    """A seeded stream of commands of every kind over a narrow market (prices 95..105)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.ids: list[int] = []
        self.owner: dict[int, str] = {}

    def next(self):
        rng = self.rng
        roll = rng.random()
        if roll < 0.6 or not self.ids:
            return self._new_order()
        order_id = rng.choice(self.ids)
        account = self.owner[order_id] if rng.random() < 0.9 else rng.choice(ACCOUNTS)
        if roll < 0.75:
            return Cancel(order_id, account)
        if roll < 0.95:
            return Replace(
                order_id,
                account,
                quantity=rng.choice([None, rng.randint(1, 8)]),
                price=rng.choice([None, rng.randint(95, 105)]),
                stop_price=rng.choice([None, None, rng.randint(95, 105)]),
            )
        return CancelAll(rng.choice(ACCOUNTS))

    def _new_order(self):
        rng = self.rng
        order_type = rng.choice(list(OrderType) + [OrderType.LIMIT] * 6)
        side = rng.choice([BUY, SELL])
        price = rng.randint(95, 105) if order_type.needs_price else None
        if order_type in (OrderType.IOC, OrderType.FOK) and rng.random() < 0.5:
            price = rng.randint(95, 105)
        order_id = len(self.ids) + 1
        account = rng.choice(ACCOUNTS)
        self.ids.append(order_id)
        self.owner[order_id] = account
        return NewOrder(
            order_id,
            account,
            side,
            order_type,
            rng.randint(1, 8),
            price=price,
            stop_price=rng.randint(95, 105) if order_type.is_conditional else None,
            post_only=order_type is OrderType.LIMIT and rng.random() < 0.2,
            stp=rng.choice(list(SelfTradePrevention)),
            client_order_id=rng.choice([None, f"c{order_id}"]),
            fees=rng.choice([None, FeeRates(-100, 250), FeeRates(100, 3333)]),
            budget=rng.choice([None, rng.randint(0, 2000)]) if side is BUY and price is None else None,
        )


def run(book, commands, count):
    for _ in range(count):
        book.apply(commands.next())
        book.check_invariants()


def restored_copy(book):
    data = json.loads(json.dumps(book.snapshot()))
    restored = OrderBook.restore(book.spec, data, IdSequence(book.trade_ids.last))
    restored.check_invariants()
    return restored


def assert_same_visible_state(expected, actual, order_ids):
    assert expected.state_digest() == actual.state_digest()
    assert expected.bbo() == actual.bbo()
    assert expected.depth(1000) == actual.depth(1000)
    assert expected.last_trade_price == actual.last_trade_price
    assert expected.update_seq == actual.update_seq
    assert len(expected) == len(actual)
    for account in ACCOUNTS:
        assert [o.order_id for o in expected.open_orders(account)] == [
            o.order_id for o in actual.open_orders(account)
        ]
    for order_id in order_ids:
        assert view_order(expected.order(order_id)) == view_order(actual.order(order_id))


# -- digest ----------------------------------------------------------------------------------------


def test_books_built_by_the_same_commands_have_the_same_digest(spec):
    first, second = OrderBook(spec, IdSequence()), OrderBook(spec, IdSequence())
    for book in (first, second):
        run(book, RandomCommands(7), 150)

    assert first.state_digest() == second.state_digest()


def test_digest_changes_with_the_book(driver):
    driver.limit(1, BUY, 3, 99)
    before = driver.book.state_digest()

    driver.replace(1, quantity=2)

    assert before != driver.book.state_digest()


def test_digest_sees_queue_order_within_a_level(make_driver, spec):
    one, two = make_driver(spec), make_driver(spec)
    one.limit(1, BUY, 1, 99)
    one.limit(2, BUY, 1, 99)
    two.limit(2, BUY, 1, 99)
    two.limit(1, BUY, 1, 99)

    assert one.book.depth() == two.book.depth()
    assert one.book.state_digest() != two.book.state_digest()


def test_digest_of_an_empty_book_is_stable(spec):
    assert OrderBook(spec).state_digest() == OrderBook(spec, IdSequence(5)).state_digest()


# -- snapshot and restore ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_restored_book_has_the_same_digest_and_the_same_future(spec, seed):
    original = OrderBook(spec, IdSequence())
    commands = RandomCommands(seed)
    run(original, commands, 150)

    restored = restored_copy(original)

    assert_same_visible_state(original, restored, commands.ids)
    for _ in range(150):
        command = commands.next()
        expected = view_events(original.apply(command))
        actual = view_events(restored.apply(command))
        restored.check_invariants()
        assert expected == actual, f"events differ for {command!r}"
    assert_same_visible_state(original, restored, commands.ids)
    assert original.trade_ids.last == restored.trade_ids.last


def test_restore_keeps_time_priority_within_a_level(driver, make_driver):
    driver.limit(1, SELL, 2, 100)
    driver.limit(2, SELL, 2, 100)
    driver.limit(3, SELL, 2, 100)
    driver.replace(1, quantity=3)  # 1 goes behind 3

    restored = make_driver(driver.spec, restored_copy(driver.book))  # checks invariants per command
    events = restored.apply(NewOrder(4, "taker", BUY, OrderType.MARKET, 7))

    assert [2, 3, 1] == [e[4] for e in view_events(events) if e[0] == "trade"]


def test_restore_keeps_waiting_stops_and_their_trigger_order(driver, make_driver):
    driver.limit(1, SELL, 1, 100)
    driver.market(2, BUY, 1)
    driver.new(3, SELL, OrderType.STOP_LOSS, 1, stop_price=98)
    driver.new(4, SELL, OrderType.STOP_LOSS, 1, stop_price=99)
    driver.new(5, SELL, OrderType.STOP_LOSS, 1, stop_price=98)
    driver.limit(6, BUY, 1, 98)

    restored = make_driver(driver.spec, restored_copy(driver.book))  # checks invariants per command
    events = restored.apply(NewOrder(7, "taker", SELL, OrderType.MARKET, 1))

    assert [4, 3, 5] == [e[1] for e in view_events(events) if e[0] == "triggered"]


def test_restore_remembers_done_orders(driver, make_driver):
    driver.limit(1, SELL, 1, 100)
    driver.market(2, BUY, 1)

    restored = make_driver(driver.spec, restored_copy(driver.book))  # checks invariants per command
    cancel = view_events(restored.apply(Cancel(1, "acct-1")))
    duplicate = view_events(restored.apply(NewOrder(2, "acct-2", BUY, OrderType.LIMIT, 1, price=90)))

    assert [("cancel_rejected", 1, "order_not_open", "cancel", 1)] == cancel
    assert "duplicate_order_id" == duplicate[0][7]


def test_restored_book_continues_the_trade_id_sequence(driver, make_driver):
    driver.limit(1, SELL, 5, 100)
    driver.market(2, BUY, 1)
    driver.market(3, BUY, 1)

    restored = make_driver(driver.spec, restored_copy(driver.book))  # checks invariants per command
    events = restored.apply(NewOrder(4, "taker", BUY, OrderType.MARKET, 1))

    assert [3] == [e[1] for e in view_events(events) if e[0] == "trade"]


def test_snapshot_is_plain_data(driver):
    driver.limit(1, SELL, 5, 100, fees=FeeRates(-1, 2), client_order_id="x")
    driver.new(2, BUY, OrderType.STOP_LIMIT, 1, 105, stop_price=104)
    driver.market(3, BUY, 1)

    data = driver.book.snapshot()

    def leaves(value):
        if isinstance(value, dict):
            assert all(isinstance(key, str) for key in value)
            for item in value.values():
                yield from leaves(item)
        elif isinstance(value, list | tuple):
            for item in value:
                yield from leaves(item)
        else:
            yield value

    assert all(value is None or type(value) in (str, int, bool) for value in leaves(data))
    assert OrderBook.restore(driver.spec, data).state_digest() == driver.book.state_digest()
