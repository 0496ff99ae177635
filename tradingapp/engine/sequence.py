"""Id sequences handed to the core, so ids come from the caller's state and replay identically."""

from __future__ import annotations


class IdSequence:
    """A counter that hands out 1, 2, 3, ...; ``last`` is the last id given (0 before any).

    One sequence may be shared by several books (trade ids are unique across the venue); the
    engine applies commands one at a time in journal order, so the ids are still deterministic.
    """

    __slots__ = ("last",)

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def next_id(self) -> int:
        """Return the next id."""
        self.last += 1
        return self.last
