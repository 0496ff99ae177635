"""The whole engine state in one pure object: risk, one book per symbol, the id sequences.

The live engine spreads these over actors (risk actor, one book actor per symbol); recovery,
replay and tests hold them here together. Both use the very same objects, so what the journal
replays is exactly what the actors ran.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tradingapp.config import VenueConfig
from tradingapp.engine.book import DEFAULT_DONE_HISTORY, OrderBook
from tradingapp.engine.risk import Risk
from tradingapp.engine.sequence import FeedSequences, IdSequence


class Venue:
    """Risk plus every book, sharing one trade id sequence; each book's market-data sequences."""

    def __init__(self, config: VenueConfig, *, done_history: int = DEFAULT_DONE_HISTORY) -> None:
        self.config = config
        self.trade_ids = IdSequence()
        self.risk = Risk(config)
        self.books = {
            spec.symbol: OrderBook(spec, self.trade_ids, done_history=done_history) for spec in config.symbols
        }
        self.feed_seqs = {spec.symbol: FeedSequences() for spec in config.symbols}
        self.done_history = done_history

    def state_digest(self) -> str:
        """Return a digest of all state: books, balances, holds and counters."""
        h = hashlib.blake2b(digest_size=16)
        h.update(repr(("trade_ids", self.trade_ids.last)).encode())
        for symbol in sorted(self.books):
            h.update(self.books[symbol].state_digest().encode())
        h.update(repr(self.risk.snapshot()).encode())
        return h.hexdigest()

    def snapshot(self) -> dict[str, Any]:
        """Return the whole state as plain data."""
        return {
            "trade_ids": self.trade_ids.last,
            "risk": self.risk.snapshot(),
            "books": [self.books[symbol].snapshot() for symbol in sorted(self.books)],
            "feed_seqs": self.feed_seqs_data(),
        }

    def feed_seqs_data(self) -> dict[str, list[int]]:
        """Each book's market-data sequences as plain data (part of every snapshot)."""
        return {symbol: self._caught_up(symbol).to_data() for symbol in sorted(self.books)}

    def restore_feed_seqs(self, data: dict[str, list[int]]) -> None:
        """Load :meth:`feed_seqs_data` (after the books: a missing entry starts from the book)."""
        for symbol, book in self.books.items():
            self.feed_seqs[symbol] = FeedSequences.from_data(data.get(symbol), book.update_seq)

    def _caught_up(self, symbol: str) -> FeedSequences:
        # Exact when the book actor published everything (a snapshot is taken with no work in
        # flight); an upper bound after a replay that no actor has published yet.
        seqs = self.feed_seqs[symbol]
        seqs.catch_up(self.books[symbol].update_seq)
        return seqs

    def restore(self, data: dict[str, Any]) -> None:
        """Replace this venue's state with :meth:`snapshot` data (same configuration)."""
        self.trade_ids.last = data["trade_ids"]
        self.risk.restore(data["risk"])
        for row in data["books"]:
            spec = self.config.symbol(row["symbol"])
            if spec is None:
                raise ValueError(f"snapshot has a book for unknown symbol {row['symbol']!r}")
            self.books[spec.symbol] = OrderBook.restore(
                spec, row, self.trade_ids, done_history=self.done_history, fee_lookup=self.risk.fee_rates
            )
        self.restore_feed_seqs(data.get("feed_seqs", {}))
