"""Delivery of everything the engine says, once the journal has made it true.

Actors never write to sockets. They hand the outbox a batch of ``(deliver, message)`` pairs and
the journal position the batch depends on; the outbox passes the batch to the journal's
durability gate, which runs it once every record up to that position is durable (at once with
``fsync off``). So no client ever sees an acknowledgement, a fill or a market-data update that a
crash could take back, and everything is delivered in the order it happened.

Execution reports are addressed to an *account*: they reach every session logged on to it at
delivery time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

Delivery = tuple[Callable[[Any], None], Any]


class Gate(Protocol):
    """The part of the journal writer the outbox needs."""

    @property
    def last_seq(self) -> int:
        """The last record appended (durable or not)."""
        ...

    def hold(self, seq: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` once records up to ``seq`` are durable, in ``seq`` order."""
        ...


class Recipient(Protocol):
    """A session as the outbox sees it."""

    def send(self, message: dict[str, Any]) -> None:
        """Queue one message to this client."""
        ...


class Outbox:
    """Routes delivery batches through the durability gate; knows which sessions are whose."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.sessions_by_account: dict[str, list[Recipient]] = {}

    def logged_on(self, account: str, session: Recipient) -> None:
        """Route ``account``'s reports to ``session`` too."""
        self.sessions_by_account.setdefault(account, []).append(session)

    def logged_off(self, account: str, session: Recipient) -> None:
        """Stop routing ``account``'s reports to ``session``."""
        sessions = self.sessions_by_account.get(account)
        if sessions and session in sessions:
            sessions.remove(session)
            if not sessions:
                del self.sessions_by_account[account]

    def for_account(self, account: str, message: dict[str, Any]) -> Delivery:
        """Return a delivery of ``message`` to every session of ``account`` (resolved at delivery)."""
        return (self._deliver_to_account, (account, message))

    def _deliver_to_account(self, item: tuple[str, dict[str, Any]]) -> None:
        account, message = item
        for session in self.sessions_by_account.get(account, ()):
            session.send(message)

    def publish(self, batch: list[Delivery]) -> None:
        """Deliver ``batch`` once everything journaled so far is durable."""
        if batch:
            self.gate.hold(self.gate.last_seq, _deliver, batch)


def _deliver(batch: list[Delivery]) -> None:
    for deliver, message in batch:
        deliver(message)
