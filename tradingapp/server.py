"""The engine process: recovery, actors, the TCP listener, and an orderly shutdown.

Start-up recovers the state (newest snapshot plus the journal after it), finishes any work the
journal shows in flight, then starts the actors (risk, one book per symbol, the feed publisher)
and listens. Shutdown stops accepting, lets every mailbox drain, flushes the journal and the
sockets, writes a snapshot and closes. SIGTERM and SIGINT both shut down cleanly (exit 0).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import signal
import sys
import time
from pathlib import Path
from typing import Any

import structlog

from tradingapp.actors.book import BookActor
from tradingapp.actors.feed import FeedPublisher
from tradingapp.actors.risk import RiskActor
from tradingapp.actors.session import Session
from tradingapp.config import VenueConfig
from tradingapp.latency import BookTracer, LatencyStats
from tradingapp.outbox import Outbox
from tradingapp.persistence.store import EngineStore
from tradingapp.storage import StorageError

log = structlog.get_logger("tradingapp.server")

#: Seconds a thread waiting for the GIL waits before it asks the running thread to hand it over.
GIL_SWITCH_INTERVAL = 0.001


class ListenError(OSError):
    """The engine recovered but could not open its listening socket (e.g. the port is taken)."""


class Engine:
    """Owns the actors, the journal and the listener of one engine process."""

    def __init__(
        self,
        config: VenueConfig,
        *,
        data_dir: Path | None = None,
        fsync: str | None = None,
        repair: bool = False,
        latency_stats: bool = False,
    ) -> None:
        self.config = config
        #: latency instrumentation, on with ``--latency-stats`` (see :mod:`tradingapp.latency`)
        self.latency = LatencyStats() if latency_stats else None
        persistence = config.persistence
        self.data_dir = Path(data_dir if data_dir is not None else persistence.data_dir)
        self.fsync = fsync or persistence.fsync
        self.sessions: set[Session] = set()
        self._session_ids = itertools.count(1)
        self.store = EngineStore(config, self.data_dir, self.fsync, on_fatal=self._fatal, repair=repair)
        self.server: asyncio.AbstractServer | None = None
        self.stopped = asyncio.Event()
        self.exit_code = 0
        self._stopping = False

    def next_session_id(self) -> int:
        """Return a fresh session id (unique within this process)."""
        return next(self._session_ids)

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Recover, start the actors and listen; return the bound address."""
        venue = self.store.recover()
        _tune_gc()
        journal = self.store.journal
        server_cfg = self.config.server
        self.outbox = Outbox(journal)
        self.risk = RiskActor(
            venue.risk, capacity=server_cfg.mailbox_size, journal=journal, outbox=self.outbox
        )
        self.feed = FeedPublisher(list(self.config.symbols), capacity=server_cfg.mailbox_size)
        self.books = {
            symbol: BookActor(
                book,
                capacity=server_cfg.mailbox_size,
                journal=journal,
                outbox=self.outbox,
                risk=self.risk,
                feed=self.feed,
                seqs=venue.feed_seqs[symbol],
            )
            for symbol, book in venue.books.items()
        }
        if self.latency is not None:
            for book_actor in self.books.values():
                book_actor.tracer = BookTracer(self.latency)
        self.risk.books = dict(self.books)
        self.feed.books = dict(self.books)
        for actor in (self.feed, self.risk, *self.books.values()):
            actor.start()
        loop = asyncio.get_running_loop()
        self._snapshotter = loop.create_task(self._snapshot_loop(), name="snapshotter")
        try:
            self.server = await loop.create_server(lambda: Session(self), host, port, reuse_address=True)
        except OSError as e:  # e.g. the port is taken: undo the start (no snapshot, lock freed)
            self.exit_code = 1
            await self.stop()
            raise ListenError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e
        sockname = self.server.sockets[0].getsockname()
        log.info(
            "engine_started",
            host=sockname[0],
            port=sockname[1],
            data_dir=str(self.data_dir),
            fsync=self.fsync,
            symbols=[s.symbol for s in self.config.symbols],
        )
        return sockname[0], sockname[1]

    async def stop(self) -> None:
        """Stop accepting, drain every mailbox, flush, snapshot and close (idempotent)."""
        if self._stopping:
            await self.stopped.wait()
            return
        self._stopping = True
        log.info("engine_stopping")
        self._snapshotter.cancel()
        if self.server is not None:
            self.server.close()
        for session in list(self.sessions):
            if session.transport is not None:
                session.transport.pause_reading()
        # order entry first: risk feeds the books, books feed risk (settlement) and the feed
        await self._drain()
        await self.risk.stop()
        for book in self.books.values():
            await book.stop()
        await self.feed.stop()
        self.store.close(snapshot=self.exit_code == 0)
        if self.latency is not None:
            log.info("latency_stats", **self.latency.summary())
        for session in list(self.sessions):
            session._flush()
            if session.transport is not None:
                session.transport.close()
        if self.server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)
        log.info("engine_stopped")
        self.stopped.set()

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` has begun: sessions no longer resume reading their sockets."""
        return self._stopping

    async def _drain(self) -> None:
        # Wait until no actor has work queued and no session holds requests it has read but not
        # yet handed on for lack of room (they are forwarded as room appears, and answered like
        # any other), bounded: inbound reading is paused.
        deadline = time.monotonic() + 30
        actors = [self.risk, *self.books.values(), self.feed]

        def idle() -> bool:
            return all(len(actor.mailbox) == 0 for actor in actors) and not any(
                session.forwarding for session in self.sessions
            )

        while time.monotonic() < deadline:
            if idle():
                await asyncio.sleep(0)
                if idle():
                    return
            await asyncio.sleep(0.001)

    def _quiescent(self) -> bool:
        # No order-entry work in flight: every command admitted has been booked and settled.
        return len(self.risk.mailbox) == 0 and all(len(book.mailbox) == 0 for book in self.books.values())

    async def _snapshot_loop(self) -> None:
        # Periodic snapshots, taken at a moment when no work is in flight so that the snapshot
        # is a complete state by itself (recovery = snapshot + the journal after it). A forked
        # child writes it (EngineStore.start_snapshot): the loop pauses only for the fork.
        store = self.store
        while True:
            await asyncio.sleep(0.25)
            store.poll_snapshot()
            if store.snapshot_running or not store.snapshot_due(time.monotonic()):
                continue
            # Under continuous load there may never be such a moment by itself: hold new order
            # entry (sessions see a full mailbox and stop reading) while in-flight work drains.
            intake = self.risk.mailbox
            intake.hold()
            try:
                give_up = time.monotonic() + 5
                while not self._quiescent() and time.monotonic() < give_up:
                    await asyncio.sleep(0.001)
                if self._quiescent() and not store.journal.failed:
                    store.start_snapshot(time.monotonic())
            finally:
                intake.release()

    def _fatal(self, exc: BaseException) -> None:
        # A journal write or fsync failed: stop at once (fail-stop), never carry on.
        log.critical("journal_failed_engine_stopping", error=repr(exc))
        self.exit_code = 2
        asyncio.get_running_loop().create_task(self.stop())


def _tune_gc() -> None:
    # The recovered state is long-lived: move it out of the collector's sight, and collect the
    # young generation less often (allocation-heavy matching otherwise triggers it constantly;
    # the benchmark notes measured 18-23% of core throughput spent in the collector).
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    # The journal's fsync thread needs the GIL twice per group commit (to start the fsync and to
    # report it done). With the default 5 ms switch interval a busy event loop keeps it waiting
    # up to 5 ms each time, which adds straight to every acknowledgement's latency. Shorter is
    # not free: every forced hand-over costs the loop a context switch (0.2 ms measured worse
    # in server CPU per request than 1 ms; see docs/benchmarks.md, "End-to-end optimisation").
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)


async def serve(
    config: VenueConfig,
    host: str,
    port: int,
    data_dir: Path | None,
    fsync: str | None,
    repair: bool = False,
    latency_stats: bool = False,
) -> int:
    """Run an engine until SIGTERM/SIGINT; return the process exit status.

    A start-up refusal (the data dir in use, a damaged journal, the port taken) is one line on
    stderr and exit status 1, not a traceback: it is the operator's to fix, not a bug.
    """
    engine = Engine(config, data_dir=data_dir, fsync=fsync, repair=repair, latency_stats=latency_stats)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: loop.create_task(engine.stop()))
    try:
        bound_host, bound_port = await engine.start(host, port)
    except (StorageError, OSError) as e:
        log.error("engine_refused_to_start", error=str(e))
        print(f"tradingapp serve: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"listening on {bound_host}:{bound_port}", flush=True)
    await engine.stopped.wait()
    return engine.exit_code


def run(coro: Any) -> Any:
    """Run ``coro`` on uvloop when it is installed, else on the default asyncio loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
