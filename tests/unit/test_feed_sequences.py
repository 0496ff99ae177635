"""Market-data sequence numbers: the engine's per-channel counters across snapshot and restore,
the conflation mark a slow reader gets, and the client's check of both (docs/protocol.md,
*Market data sequence numbers*)."""

from __future__ import annotations

import json

from clients.client import SeqCheck
from tradingapp.actors.feed import Conflated, Encoded
from tradingapp.config import load_config
from tradingapp.engine.commands import NewOrder
from tradingapp.engine.sequence import FeedSequences
from tradingapp.engine.types import OrderType, Side
from tradingapp.engine.venue import Venue


def test_a_new_book_starts_every_channel_at_one() -> None:
    seqs = FeedSequences()
    assert (seqs.bbo, seqs.depth) == (1, 1)


def test_catch_up_moves_past_every_message_the_replayed_changes_could_have_sent() -> None:
    seqs = FeedSequences(bbo=7, depth=9, base=20)
    seqs.catch_up(20)
    assert (seqs.bbo, seqs.depth, seqs.base) == (7, 9, 20)  # exact: nothing replayed
    seqs.catch_up(23)  # three visible changes: at most three more messages per channel
    assert (seqs.bbo, seqs.depth, seqs.base) == (10, 12, 23)
    seqs.catch_up(23)
    assert (seqs.bbo, seqs.depth) == (10, 12)  # idempotent


def test_an_older_snapshot_continues_above_the_update_seq_it_used_as_seq() -> None:
    seqs = FeedSequences.from_data(None, 42)
    assert (seqs.bbo, seqs.depth, seqs.base) == (42, 42, 42)
    assert FeedSequences.from_data(None, 0).bbo == 1


def _order(order_id: int, price: int) -> NewOrder:
    return NewOrder(order_id, "mm", Side.BUY, OrderType.LIMIT, 1000, price, symbol="BTC-USDT")


def test_venue_snapshot_keeps_the_sequences_and_bounds_them_after_a_replay() -> None:
    config = load_config(None)
    venue = Venue(config)
    seqs = venue.feed_seqs["BTC-USDT"]
    seqs.bbo, seqs.depth = 5, 8  # as a book actor leaves them after publishing
    data = json.loads(json.dumps(venue.snapshot()))
    twin = Venue(config)
    twin.restore(data)
    restored = twin.feed_seqs["BTC-USDT"]
    assert (restored.bbo, restored.depth) == (5, 8)
    assert (twin.feed_seqs["ETH-USDT"].bbo, twin.feed_seqs["ETH-USDT"].depth) == (1, 1)
    # journal replay after the snapshot: two visible changes, no actor published them
    twin.books["BTC-USDT"].apply(_order(1, 2_900_000))
    twin.books["BTC-USDT"].apply(_order(2, 2_900_100))
    again = twin.snapshot()["feed_seqs"]["BTC-USDT"]
    assert again[:2] == [7, 10]


def _message(seq: int) -> Encoded:
    return Encoded({"type": "bbo", "symbol": "BTC-USDT", "seq": seq}, "bbo")


def test_a_conflated_message_says_how_many_it_replaced() -> None:
    held = Conflated(_message(4))
    assert held.result().message == {"type": "bbo", "symbol": "BTC-USDT", "seq": 4}
    held.replace(_message(5))
    held.replace(_message(6))
    assert held.result().message["conflated"] == 2
    assert "conflated" not in held.latest.message  # the shared message is not changed


def test_seq_check_tells_conflation_from_loss() -> None:
    check = SeqCheck()
    assert check.check({"type": "bbo", "symbol": "S", "seq": 10}) == 0  # snapshot
    assert check.check({"type": "bbo", "symbol": "S", "seq": 11}) == 0
    assert check.check({"type": "bbo", "symbol": "S", "seq": 14, "conflated": 2}) == 0
    assert (check.lost, check.conflated) == (0, 2)
    assert check.check({"type": "bbo", "symbol": "S", "seq": 17}) == 2  # two lost
    assert check.check({"type": "depth", "symbol": "S", "seq": 3}) == 0  # another channel
    assert check.check({"type": "bbo", "symbol": "S", "seq": 17}) == 0  # a new snapshot
    assert (check.lost, check.conflated) == (2, 2)
