"""Id sequences handed to the core, so ids come from the caller's state and replay identically."""

from __future__ import annotations


class IdSequence:
    """A counter of ids 1, 2, 3, ...; ``last`` is the last id given (0 before any).

    The user takes the next id with ``seq.last = new_id = seq.last + 1`` (inline: the matching
    loop takes one per fill, and a method call would cost more than the increment).
    One sequence may be shared by several books (trade ids are unique across the venue); the
    engine applies commands one at a time in journal order, so the ids are still deterministic.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last


class FeedSequences:
    """One symbol's market-data sequences: the ``seq`` of its latest ``bbo`` and ``depth`` message.

    The book actor publishes at most one message per channel per batch of commands and bumps
    these then, so they are not a function of the journal (which does not record batches). A
    snapshot stores them with ``base``, the book's ``update_seq`` they were exact at; every message
    published after that point needed at least one visible change of the book, which bumped
    ``update_seq``. So :meth:`catch_up` to the book's current ``update_seq`` gives values no
    message ever exceeded: after a clean stop (snapshot, nothing replayed) exactly the last ones,
    after a crash possibly more. A seq therefore never repeats or goes backwards across a
    restart; after a crash it may jump, which a client sees as a gap and answers by
    resubscribing, as after any reconnect.

    A new book starts at 1 for both channels: its empty picture is the first message of each.
    """

    __slots__ = ("base", "bbo", "depth")

    def __init__(self, bbo: int = 1, depth: int = 1, base: int = 0) -> None:
        self.bbo = bbo
        self.depth = depth
        self.base = base

    def catch_up(self, update_seq: int) -> None:
        """Move past every message that may have been sent up to the book's ``update_seq``."""
        behind = update_seq - self.base
        if behind > 0:
            self.bbo += behind
            self.depth += behind
            self.base = update_seq

    def to_data(self) -> list[int]:
        """Return ``[bbo, depth, base]`` for a snapshot."""
        return [self.bbo, self.depth, self.base]

    @classmethod
    def from_data(cls, data: list[int] | None, update_seq: int) -> FeedSequences:
        """Rebuild from :meth:`to_data`; without data (an older snapshot, whose feed used the
        book's ``update_seq`` as every channel's seq), continue above ``update_seq``."""
        if data is None:
            start = max(1, update_seq)
            return cls(start, start, update_seq)
        bbo, depth, base = data
        return cls(bbo, depth, base)
