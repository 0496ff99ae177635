"""BBO and depth queries, and the BboChanged / DepthChanged events with their update sequence."""



from __future__ import annotations

from tradingapp.engine.events import BboChanged, DepthChanged
from tradingapp.engine.types import OrderType, Side

BUY, SELL = Side.BUY, Side.SELL


def publications(events):
    """Return the market-data events among ``events``."""
    return [e for e in events if isinstance(e, BboChanged | DepthChanged)]


def build_book(driver):
    driver.limit(1, BUY, 1, 98)
    driver.limit(2, BUY, 2, 99)
    driver.limit(3, BUY, 3, 99)
    driver.limit(4, BUY, 4, 97)
    driver.limit(5, SELL, 5, 101)
    driver.limit(6, SELL, 6, 103)
    driver.limit(7, SELL, 7, 101)
    driver.limit(8, SELL, 8, 102)


def test_bbo_is_the_best_price_and_total_quantity_per_side(driver):
    build_book(driver)

    assert (99, 5, 101, 12) == driver.book.bbo()


def test_depth_aggregates_per_level_best_first(driver):
    build_book(driver)

    bids, asks = driver.book.depth()

    assert [(99, 5), (98, 1), (97, 4)] == bids
    assert [(101, 12), (102, 8), (103, 6)] == asks


def test_depth_returns_the_top_n_levels(driver):
    build_book(driver)

    assert ([(99, 5), (98, 1)], [(101, 12), (102, 8)]) == driver.book.depth(2)
    assert ([(99, 5)], [(101, 12)]) == driver.book.depth(1)


def test_depth_follows_fills_and_cancels(driver):
    build_book(driver)

    driver.market(9, SELL, 6)  # takes 99 x5 and 98 x1
    driver.cancel(6)

    assert ([(97, 4)], [(101, 12), (102, 8)]) == driver.book.depth()
    assert (97, 4, 101, 12) == driver.book.bbo()


def test_each_visible_change_publishes_depth_with_the_next_update_seq(driver):
    first = driver.limit(1, BUY, 1, 98)
    second = driver.limit(2, BUY, 1, 97)
    third = driver.cancel(2)

    assert [BboChanged(1, 98, 1, None, 0), DepthChanged(1)] == publications(first)
    assert [DepthChanged(2)] == publications(second)
    assert [DepthChanged(3)] == publications(third)
    assert 3 == driver.book.update_seq


def test_bbo_changed_only_when_the_top_of_book_moves(driver):
    driver.limit(1, SELL, 5, 101)

    deeper = driver.limit(2, SELL, 5, 102)
    same_price = driver.limit(3, SELL, 1, 101)
    fill = driver.market(4, BUY, 2)

    assert [DepthChanged(2)] == publications(deeper)
    assert [BboChanged(3, None, 0, 101, 6), DepthChanged(3)] == publications(same_price)
    assert [BboChanged(4, None, 0, 101, 4), DepthChanged(4)] == publications(fill)


def test_one_command_publishes_once_however_much_it_changed(driver):
    driver.limit(1, SELL, 1, 101)
    driver.limit(2, SELL, 1, 102)
    driver.limit(3, SELL, 1, 103)

    events = driver.limit(4, BUY, 5, 103)

    assert [BboChanged(4, 103, 2, None, 0), DepthChanged(4)] == publications(events)
    assert isinstance(events[-1], DepthChanged)


def test_commands_that_change_nothing_visible_publish_nothing(driver):
    driver.limit(1, SELL, 1, 101)
    seq = driver.book.update_seq

    quiet = [
        driver.new(2, BUY, OrderType.STOP_LOSS, 1, stop_price=110),  # waits outside the book
        driver.limit(3, BUY, 0, 100),  # rejected
        driver.cancel(99, "nobody"),  # cancel rejected
        driver.market(4, SELL, 1),  # nothing to sell to
        driver.new(5, BUY, OrderType.FOK, 2, 101),  # not fillable
        driver.limit(6, BUY, 1, 101, post_only=True),  # would take
        driver.cancel(2),  # an untriggered stop
        driver.cancel_all("nobody"),
    ]

    assert [[] for _ in quiet] == [publications(events) for events in quiet]
    assert seq == driver.book.update_seq


def test_update_seq_strictly_increases_across_commands(driver):
    seqs = []
    for order_id, (side, price) in enumerate(
        [(BUY, 99), (SELL, 101), (BUY, 100), (SELL, 100), (SELL, 99)], 1
    ):
        for event in driver.limit(order_id, side, 1, price):
            if isinstance(event, DepthChanged):
                seqs.append(event.update_seq)

    assert [1, 2, 3, 4, 5] == seqs
