"""The engine's persistent state: recovery at start, the journal while running, a snapshot at stop.

Recovery: load the newest valid snapshot, let the storage layer cut a torn journal tail (or
refuse mid-log damage), replay every record after the snapshot into a :class:`Venue`, then finish
the work the journal shows in flight (commands risk admitted that no book applied yet, book
outputs risk did not settle yet) and journal that it did. The live engine then continues from a
state in which nothing is half-applied.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import structlog

from tradingapp.config import VenueConfig
from tradingapp.engine.venue import Venue
from tradingapp.persistence import forked
from tradingapp.persistence import records as rec
from tradingapp.persistence.gcpause import collector_paused
from tradingapp.persistence.replay import Replayer
from tradingapp.persistence.scales import check_scales
from tradingapp.persistence.snapshot import decode_snapshot, encode_snapshot
from tradingapp.storage import (
    DEFAULT_FILEOPS,
    DataDirLock,
    FileOps,
    JournalReading,
    JournalWriter,
    load_latest_snapshot,
    prune,
    write_snapshot,
)
from tradingapp.storage.snapshots import snapshot_name

log = structlog.get_logger("tradingapp.persistence")

#: After a background snapshot failed, the next one is not started for this long.
SNAPSHOT_RETRY_SECONDS = 5.0


class _Child(NamedTuple):
    """A snapshot being written by a forked child."""

    pid: int
    seq: int  # the journal position it covers
    time: float  # monotonic time it was taken at
    started: float  # perf_counter at the fork


def replay_journal(
    config: VenueConfig, data_dir: Path, *, repair: bool = False, fs: FileOps = DEFAULT_FILEOPS
) -> tuple[Venue, Replayer, int, int]:
    """Rebuild the state from ``data_dir``: ``(venue, replayer, next journal seq, snapshot seq)``.

    ``fs=READ_ONLY_FILEOPS`` rebuilds it without changing any file (for tools that only look).
    Raises ConfigError when ``config`` gives the stored integers another meaning (see scales.py).
    """
    check_scales(config, data_dir, fs)
    venue = Venue(config)
    snap_dir = Path(data_dir) / "snapshots"
    journal_dir = Path(data_dir) / "journal"
    snapshot = load_latest_snapshot(
        snap_dir, fs=fs, on_problem=lambda text: log.warning("snapshot_skipped", why=text)
    )
    after = 0
    if snapshot is not None:
        decode_snapshot(snapshot.payload, venue)
        after = snapshot.seq
    replayer = Replayer(venue)
    reading = JournalReading(journal_dir, after, repair=repair, fs=fs)
    with collector_paused():
        replayer.replay(reading)
    report = reading.report
    assert report is not None
    for truncation in () if fs.read_only else report.truncations:  # read-only: nothing was cut
        log.warning(
            "journal_tail_truncated",
            file=str(truncation.path),
            offset=truncation.offset,
            bytes_dropped=truncation.bytes_dropped,
            reason=truncation.reason,
        )
    return venue, replayer, max(report.next_seq, after + 1), after


class EngineStore:
    """Journal writer plus snapshots for one engine process."""

    def __init__(
        self,
        config: VenueConfig,
        data_dir: Path,
        fsync: str,
        *,
        on_fatal: Callable[[BaseException], None],
        repair: bool = False,
    ) -> None:
        self.config = config
        self.data_dir = Path(data_dir)
        self.fsync = fsync
        self.repair = repair
        self._on_fatal = on_fatal
        self.venue: Venue | None = None
        self.journal: JournalWriter
        self.recovered_records = 0
        self._snapshot_seq = 0  # journal position the newest snapshot covers
        self._snapshot_time = 0.0
        self._child: _Child | None = None  # a snapshot being written by a forked child
        self._retry_after = 0.0  # no new background snapshot before (after a failed one)
        self._lock = DataDirLock(self.data_dir)  # one engine per data dir

    def recover(self) -> Venue:
        """Rebuild the state, open the journal for appending and finish in-flight work."""
        started = time.perf_counter()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()  # before reading anything: another engine may be writing
        try:
            (self.data_dir / "journal").mkdir(exist_ok=True)
            (self.data_dir / "snapshots").mkdir(exist_ok=True)
            venue, replayer, next_seq, snapshot_seq = replay_journal(
                self.config, self.data_dir, repair=self.repair
            )
            self.recovered_records = replayer.applied
            self.journal = JournalWriter(
                self.data_dir / "journal",
                next_seq,
                fsync=self.fsync,
                segment_bytes=self.config.persistence.segment_bytes,
                on_fatal=self._on_fatal,
            )
        except BaseException:
            self._lock.release()
            raise
        owed = replayer.pending_steps()
        now = time.time_ns()
        for kind, symbol in owed:
            replayer.apply(now, [kind, symbol])
            self.journal.append(now, rec.step_record(kind, symbol))
        if owed:
            self.journal.flush_now()
        self.venue = venue
        self._snapshot_seq = snapshot_seq
        self._snapshot_time = time.monotonic()
        log.info(
            "recovered",
            records=self.recovered_records,
            finished_in_flight=len(owed),
            next_seq=self.journal.next_seq,
            seconds=round(time.perf_counter() - started, 3),
            digest=venue.state_digest(),
        )
        return venue

    def snapshot_due(self, now: float) -> bool:
        """True when the configured record count or interval since the last snapshot is reached."""
        cfg = self.config.persistence
        records = self.journal.last_seq - self._snapshot_seq
        if records <= 0:
            return False
        if cfg.snapshot_every_records and records >= cfg.snapshot_every_records:
            return True
        return bool(cfg.snapshot_every_seconds) and now - self._snapshot_time >= cfg.snapshot_every_seconds

    def take_snapshot(self, now: float) -> None:
        """Write a snapshot of the venue as of the last journal record, here and now (blocking);
        the caller guarantees no work is in flight (every mailbox empty), so the state is
        complete by itself. The running engine uses :meth:`start_snapshot` instead."""
        assert self.venue is not None
        self.journal.flush_now()
        started = time.perf_counter()
        seq = self.journal.last_seq
        path = self._write_and_prune(seq)
        self._snapshot_seq = seq
        self._snapshot_time = now
        log.info(
            "snapshot_written",
            path=str(path),
            seq=seq,
            bytes=path.stat().st_size,
            seconds=round(time.perf_counter() - started, 3),
        )

    def _write_and_prune(self, seq: int) -> Path:
        assert self.venue is not None
        path = write_snapshot(self.data_dir / "snapshots", seq, encode_snapshot(self.venue))
        prune(self.data_dir / "snapshots", self.data_dir / "journal", keep=2)
        return path

    @property
    def snapshot_running(self) -> bool:
        """True while a forked child is writing a snapshot."""
        return self._child is not None

    def start_snapshot(self, now: float) -> bool:
        """Start writing a snapshot as of the last journal record in a forked child and return
        at once (True); False when one is still running, a failed one is too recent, or the
        fork itself fails (which counts as a failed snapshot: retried after the same delay).

        Same precondition as :meth:`take_snapshot`. The journal is made durable through the
        snapshot's seq first (the one blocking step, one fsync), then the child encodes, writes
        (temporary file, fsync, rename, directory fsync) and prunes, while this process goes on
        serving. :meth:`poll_snapshot` learns the outcome. Where ``fork`` is missing, this
        falls back to :meth:`take_snapshot`.
        """
        if self._child is not None or now < self._retry_after:
            return False
        if not forked.fork_available():
            self.take_snapshot(now)
            return True
        self.journal.flush_now()
        seq = self.journal.last_seq
        started = time.perf_counter()
        try:
            pid = forked.start(functools.partial(self._write_and_prune, seq))
        except OSError as exc:  # ENOMEM, EAGAIN: a failed snapshot, retried later like one
            self._retry_after = time.monotonic() + SNAPSHOT_RETRY_SECONDS
            log.error("snapshot_fork_failed", seq=seq, error=repr(exc))
            return False
        pause = time.perf_counter() - started
        self._child = _Child(pid, seq, now, started)
        log.info("snapshot_started", seq=seq, pid=pid, pause_ms=round(pause * 1000, 2))
        return True

    def poll_snapshot(self, *, block: bool = False) -> None:
        """Reap the snapshot child if it has ended (waiting for it when ``block``): on success
        the snapshot counts from now on; on failure the previous one stays the newest, and the
        next attempt waits ``SNAPSHOT_RETRY_SECONDS``."""
        child = self._child
        if child is None:
            return
        code = forked.wait(child.pid) if block else forked.poll(child.pid)
        if code is None:
            return
        self._child = None
        seconds = round(time.perf_counter() - child.started, 3)
        if code == 0:
            self._snapshot_seq = child.seq
            self._snapshot_time = child.time
            path = self.data_dir / "snapshots" / snapshot_name(child.seq)
            log.info("snapshot_written", path=str(path), seq=child.seq, seconds=seconds, forked=True)
        else:
            self._retry_after = time.monotonic() + SNAPSHOT_RETRY_SECONDS
            log.error("snapshot_failed", seq=child.seq, pid=child.pid, exit_code=code, seconds=seconds)

    def close(self, *, snapshot: bool) -> None:
        """Flush the journal and, when the engine stopped cleanly, write a snapshot and prune;
        then free the data dir for the next engine."""
        try:
            self.poll_snapshot(block=True)
            journal = self.journal
            if journal.failed:
                journal.close()
                return
            journal.flush_now()
            if snapshot and self.venue is not None and journal.last_seq > self._snapshot_seq:
                self.take_snapshot(time.monotonic())
            journal.close()
        finally:
            self._lock.release()
