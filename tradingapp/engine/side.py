"""One side of a book: its price levels in priority order, with the best level cached.

Layout
    ``levels`` maps a price to its :class:`PriceLevel` (a plain dict: finding the level of an
    incoming or cancelled order is one hash lookup). ``ranks`` is a plain list of the prices in
    *rank* order, ascending, where a level's rank is ``price * sign`` (``sign`` is +1 for bids,
    -1 for asks), so the **best level is always the last item** for either side. Activity
    concentrates at the top of the book, so the common changes are at the end of the list:
    a new best level is an ``append``, an emptied best level a ``pop``, both O(1). A level
    created or emptied deeper in the book is a C ``bisect`` (O(log L)) plus a ``memmove`` of the
    levels better than it; that is O(L) in the worst case but runs at memory speed (about 1 ns per
    8 levels moved), far below the cost of one Python-level call of a balanced tree.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator

from tradingapp.engine.level import PriceLevel
from tradingapp.engine.types import Side


class BookSide:
    """The price levels of one side, best last in ``ranks``, with the best level cached."""

    __slots__ = ("best", "levels", "ranks", "side", "sign")

    def __init__(self, side: Side) -> None:
        self.side = side
        #: rank = price * sign: the higher the rank, the better the price for this side
        self.sign = 1 if side is Side.BUY else -1
        self.levels: dict[int, PriceLevel] = {}
        self.ranks: list[int] = []
        self.best: PriceLevel | None = None

    def add_level(self, price: int) -> PriceLevel:
        """Create the (missing) level at ``price`` and return it.

        O(1) when it becomes the best level; else O(log L) plus the move of the better ranks.
        """
        level = self.levels[price] = PriceLevel(price)
        rank = price * self.sign
        ranks = self.ranks
        if not ranks or rank > ranks[-1]:
            ranks.append(rank)
            self.best = level
        else:
            insort(ranks, rank)
        return level

    def drop(self, level: PriceLevel) -> None:
        """Remove an emptied level: O(1) for the best one, else as :meth:`add_level`."""
        del self.levels[level.price]
        ranks = self.ranks
        if level is self.best:
            ranks.pop()
            self.best = self.levels[ranks[-1] * self.sign] if ranks else None
        else:
            del ranks[bisect_left(ranks, level.price * self.sign)]

    def __iter__(self) -> Iterator[PriceLevel]:
        """Yield the levels best first."""
        levels = self.levels
        sign = self.sign
        for rank in reversed(self.ranks):
            yield levels[rank * sign]

    def __len__(self) -> int:
        return len(self.ranks)

    def top(self, n: int) -> list[tuple[int, int]]:
        """Return up to ``n`` levels as ``(price, quantity)``, best first. O(n)."""
        levels = self.levels
        sign = self.sign
        return [(rank * sign, levels[rank * sign].quantity) for rank in self.ranks[: -n - 1 : -1]]

    def check_invariants(self) -> None:
        """Assert that ``ranks``, ``levels`` and ``best`` agree. O(L); for tests."""
        ranks = self.ranks
        assert ranks == sorted(set(ranks)), "ranks not strictly ascending"
        assert sorted(rank * self.sign for rank in ranks) == sorted(self.levels), "ranks and levels disagree"
        assert self.best is (self.levels[ranks[-1] * self.sign] if ranks else None), "stale best level"
        for price, level in self.levels.items():
            assert level.price == price, "level key does not match its price"
