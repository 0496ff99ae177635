"""The journal writer: cheap synchronous appends, group commit, and a gate that holds
acknowledgements until their records are durable.

``JournalWriter`` is used from one asyncio event loop (the engine's). ``append(ts_ns, payload)``
assigns the next seq, encodes the record into an in-memory buffer and returns the seq; no I/O
happens there except under ``fsync="always"``. What happens next depends on the mode:

``always``
    Each append writes its record and fsyncs it before returning, so the ack can follow at once.
``batch`` (group commit, the default)
    The first append in a loop iteration schedules a flush with ``loop.call_soon``. The flush does
    one ``write()`` of everything buffered, then hands the fsync to one long-lived thread (one lock
    release to wake it, one ``call_soon_threadsafe`` back per group) while the loop keeps
    running. Records appended meanwhile form the next group, which is written as soon as the
    fsync in flight completes. At most one fsync is in flight.
``off``
    The buffer is written at the end of the loop iteration and never fsynced (the OS decides).

The gate, ``hold(seq, fn, *args)``, calls ``fn(*args)`` once ``seq`` is durable (under ``off``:
written), in FIFO order, which is seq order when holds are made in seq order. The server sends an
acknowledgement through the gate so that it never precedes the record's durability.

A failed write or fsync is fatal (PostgreSQL's "fsyncgate" lesson: a retried fsync may succeed
with the data gone). The writer enters the failed state, never retries, releases nothing more,
and calls ``on_fatal(exc)`` once; later appends raise :class:`JournalFailedError`.

Segments roll at record boundaries once a segment has reached ``segment_bytes``. A roll fsyncs
the finished segment before the new one gets any record, and fsyncs the new file's header and
the directory, in every mode, so that a crash can never leave records in a segment whose
predecessor lacks some (that would be mid-log damage, which recovery refuses).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import zlib
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import structlog

from tradingapp.storage.errors import JournalFailedError
from tradingapp.storage.fileops import (
    APPEND_FLAGS,
    CREATE_FLAGS,
    DEFAULT_FILEOPS,
    FileOps,
    ensure_dir,
    write_all,
)
from tradingapp.storage.records import (
    MAX_RECORD_BYTES,
    MIN_RECORD_LENGTH,
    RECORD_HEADER,
    RECORD_OVERHEAD,
    RECORD_SEQ_TS,
    SEGMENT_HEADER_SIZE,
    encode_segment_header,
)
from tradingapp.storage.segments import list_segments, segment_name

log = structlog.get_logger("tradingapp.storage")

FSYNC_ALWAYS: Final = "always"
FSYNC_BATCH: Final = "batch"
FSYNC_OFF: Final = "off"
FSYNC_MODES: Final = (FSYNC_ALWAYS, FSYNC_BATCH, FSYNC_OFF)
DEFAULT_SEGMENT_BYTES: Final = 64 * 1024 * 1024
DEFAULT_MAX_BACKLOG_BYTES: Final = 8 * 1024 * 1024

_pack_header = RECORD_HEADER.pack  # length, crc, seq, time stamp
_pack_seq_ts = RECORD_SEQ_TS.pack  # what the crc covers ahead of the payload
_crc32 = zlib.crc32


class JournalWriter:
    """Appends records to ``journal_dir``; see the module docstring for the modes and the gate.

    ``next_seq`` must be ``recover_journal(journal_dir).next_seq`` (or, with no segment at all,
    the snapshot's seq + 1): the writer appends to the last segment as recovery left it.
    """

    def __init__(
        self,
        journal_dir: Path,
        next_seq: int,
        *,
        fsync: str = FSYNC_BATCH,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        max_backlog_bytes: int = DEFAULT_MAX_BACKLOG_BYTES,
        max_record_bytes: int = MAX_RECORD_BYTES,
        on_fatal: Callable[[BaseException], None] | None = None,
        fs: FileOps = DEFAULT_FILEOPS,
    ) -> None:
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_MODES)}, got {fsync!r}")
        if next_seq < 1:
            raise ValueError(f"next_seq must be at least 1, got {next_seq}")
        if segment_bytes < 1:
            raise ValueError("segment_bytes must be positive")
        if not MIN_RECORD_LENGTH <= max_record_bytes <= MAX_RECORD_BYTES:
            raise ValueError(f"max_record_bytes must be within {MIN_RECORD_LENGTH}..{MAX_RECORD_BYTES}")
        self._dir = Path(journal_dir)
        self._mode = fsync
        self._always = fsync == FSYNC_ALWAYS
        self._segment_bytes = segment_bytes
        self._max_backlog = max_backlog_bytes
        self._max_payload = max_record_bytes - MIN_RECORD_LENGTH
        self._on_fatal = on_fatal
        self._fs = fs

        self._next_seq = next_seq
        self._written_seq = next_seq - 1
        self._durable_seq = next_seq - 1
        self._released_seq = next_seq - 1
        self._fd: int | None = None
        self._backlog = 0
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._syncer: _FsyncThread | None = None
        self._inflight: int | None = None  # the generation of the fsync in flight
        self._generation = 0
        self._inflight_target = 0
        self._gate: deque[tuple[int, Callable[..., Any], tuple[Any, ...]]] = deque()
        self._room_waiters: list[asyncio.Future[None]] = []
        self._release_waiters: set[asyncio.Future[None]] = set()
        self._failed: BaseException | None = None
        self._closed = False
        self._accepting = True  # neither failed nor closed (one test on the append path)
        #: Counters for tests and measurements.
        self.fsyncs = 0
        self.writes = 0
        self.segments_created = 0

        ensure_dir(fs, self._dir)
        segments = list_segments(self._dir)
        first_run: int | None
        if segments:
            first_seq, path = segments[-1]
            size = path.stat().st_size
            if first_seq > next_seq or (size <= SEGMENT_HEADER_SIZE and first_seq != next_seq):
                raise ValueError(
                    f"{path}: the last segment starts at seq {first_seq}, which cannot precede "
                    f"next_seq {next_seq} (pass recover_journal().next_seq)"
                )
            if size < SEGMENT_HEADER_SIZE:
                raise ValueError(f"{path}: torn segment header; run recover_journal() first")
            self._fd = fs.open(path, APPEND_FLAGS)
            self._seg_size = size  # over SEGMENT_HEADER_SIZE: the segment holds records
            first_run = None
        else:
            self._seg_size = SEGMENT_HEADER_SIZE
            first_run = next_seq  # the segment is created by the first write
        self._tail = bytearray()
        # Buffered bytes per segment: (first_seq of a segment to create first, or None, bytes).
        self._runs: list[tuple[int | None, bytearray]] = [(first_run, self._tail)]

    # -- state -----------------------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self._mode

    @property
    def next_seq(self) -> int:
        """The seq the next append gets."""
        return self._next_seq

    @property
    def last_seq(self) -> int:
        """The seq of the last append (next_seq - 1)."""
        return self._next_seq - 1

    @property
    def written_seq(self) -> int:
        """Highest seq handed to the OS by ``write()``."""
        return self._written_seq

    @property
    def durable_seq(self) -> int:
        """Highest seq known to be on disk (fsynced)."""
        return self._durable_seq

    @property
    def released_seq(self) -> int:
        """Highest seq the gate has released: durable_seq, or written_seq under ``off``."""
        return self._released_seq

    @property
    def backlog_bytes(self) -> int:
        """Bytes appended but not yet written."""
        return self._backlog

    @property
    def has_room(self) -> bool:
        """False while the backlog is at or over ``max_backlog_bytes``: stop taking new work."""
        return self._backlog < self._max_backlog

    @property
    def failed(self) -> BaseException | None:
        """The error that stopped the writer, or None."""
        return self._failed

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending_holds(self) -> int:
        """Callbacks waiting in the gate."""
        return len(self._gate)

    # -- appending -------------------------------------------------------------------------------

    def append(self, ts_ns: int, payload: bytes | bytearray | memoryview) -> int:
        """Buffer one record and return its seq. Never blocks, except under ``always``.

        Raises ValueError for a payload over the size limit or a time stamp outside int64 (nothing
        is appended then), and :class:`JournalFailedError` once the writer has failed or closed.
        """
        if not self._accepting:
            raise self._unusable()
        size = len(payload)
        if size > self._max_payload:
            raise ValueError(f"journal payload of {size} bytes exceeds {self._max_payload}")
        seq = self._next_seq
        try:
            body = _pack_seq_ts(seq, ts_ns)
        except struct.error as exc:
            raise ValueError(f"journal time stamp {ts_ns!r} is not an int64") from exc
        seg_size = self._seg_size
        if seg_size >= self._segment_bytes and seg_size > SEGMENT_HEADER_SIZE:  # a full segment
            tail = bytearray()
            self._runs.append((seq, tail))
            self._tail = tail
            seg_size = SEGMENT_HEADER_SIZE
        else:
            tail = self._tail
        tail += _pack_header(size + MIN_RECORD_LENGTH, _crc32(payload, _crc32(body)), seq, ts_ns)
        tail += payload
        size += RECORD_OVERHEAD
        self._seg_size = seg_size + size
        self._backlog += size
        self._next_seq = seq + 1
        if self._always:
            self._flush_sync()
        elif not self._flush_scheduled:
            self._schedule_flush()
        return seq

    # -- the gate --------------------------------------------------------------------------------

    def hold(self, seq: int, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` once ``seq`` is released (durable; written under ``off``).

        Calls run in FIFO order; a hold whose seq is already released runs at once when nothing
        is waiting ahead of it. After a failure nothing is ever called. An exception from ``fn`` is
        logged and does not stop the gate.
        """
        if self._failed is not None:
            return
        if not self._gate and seq <= self._released_seq:
            self._call(fn, args)
            return
        self._gate.append((seq, fn, args))

    async def wait_released(self, seq: int) -> None:
        """Return once ``seq`` is released; raises :class:`JournalFailedError` if the writer fails."""
        if self._failed is not None:
            raise self._unusable()
        if not self._gate and seq <= self._released_seq:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._release_waiters.add(fut)
        self._gate.append((seq, _resolve, (fut,)))
        try:
            await fut
        finally:
            self._release_waiters.discard(fut)

    async def wait_for_room(self) -> None:
        """Return once the backlog is below ``max_backlog_bytes`` (at once if it is)."""
        while True:
            if self._failed is not None:
                raise self._unusable()
            if self._backlog < self._max_backlog:
                return
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room_waiters.append(fut)
            await fut

    # -- flushing --------------------------------------------------------------------------------

    def flush_now(self) -> None:
        """Synchronously write and fsync everything appended, in every mode, then release it.

        For a clean shutdown and before a snapshot (a snapshot must never cover records that are
        not durable). Blocks the loop for one fsync (and waits for the one in flight, if any).
        Raises :class:`JournalFailedError` if the writer has failed or fails now.
        """
        if self._failed is not None:
            raise self._unusable()
        if self._closed:
            return
        try:
            if self._inflight is not None:
                self._inflight = None
                assert self._syncer is not None
                error = self._syncer.wait()
                if error is not None:
                    raise error
                self._durable_seq = max(self._durable_seq, self._inflight_target)
            if self._backlog:
                self._write_pending()
            if self._written_seq > self._durable_seq and self._fd is not None:
                self._fs.fsync(self._fd)
                self.fsyncs += 1
                self._durable_seq = self._written_seq
        except Exception as exc:
            self._fail(exc)
            raise JournalFailedError(f"journal flush failed: {exc!r}") from exc
        self._release(self._durable_seq)

    def close(self) -> None:
        """Flush and fsync what is buffered (unless failed), stop the fsync thread, close the file."""
        if self._closed:
            return
        try:
            if self._failed is None:
                self.flush_now()
        finally:
            self._closed = True
            self._accepting = False
            if self._syncer is not None:
                self._syncer.stop()
                self._syncer = None
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    self._fs.close(fd)
                except OSError:
                    log.warning("journal_close_failed", journal_dir=str(self._dir))

    def _schedule_flush(self) -> None:
        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no event loop: the caller flushes with flush_now()
            self._loop = loop
        self._flush_scheduled = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        # End of a loop iteration: write the group; under "batch" start its fsync.
        self._flush_scheduled = False
        if self._failed is not None or self._closed or self._inflight is not None or not self._backlog:
            return
        try:
            self._write_pending()
        except Exception as exc:
            self._fail(exc)
            return
        if self._mode == FSYNC_OFF:
            self._release(self._written_seq)
            return
        self._start_fsync()

    def _start_fsync(self) -> None:
        fd = self._fd
        assert fd is not None
        syncer = self._syncer
        if syncer is None:
            assert self._loop is not None
            try:
                syncer = _FsyncThread(self._fs.fsync, self._loop, self._fsync_done)
            except Exception as exc:
                self._fail(exc)
                return
            self._syncer = syncer
        self._generation += 1
        self._inflight = self._generation
        self._inflight_target = self._written_seq
        self.fsyncs += 1
        syncer.start(fd, self._generation)

    def _fsync_done(self, generation: int, exc: BaseException | None) -> None:
        if generation != self._inflight:
            return  # already consumed by flush_now()/close()
        self._inflight = None
        if exc is not None:
            self._fail(exc)
            return
        self._durable_seq = max(self._durable_seq, self._inflight_target)
        self._release(self._durable_seq)
        if self._backlog and not self._closed:
            self._flush()  # the next group, at once

    def _flush_sync(self) -> None:
        # "always": write and fsync this record now.
        try:
            self._write_pending()
            assert self._fd is not None
            self._fs.fsync(self._fd)
            self.fsyncs += 1
            self._durable_seq = self._written_seq
        except Exception as exc:
            self._fail(exc)
            raise JournalFailedError(f"journal write failed: {exc!r}") from exc
        self._release(self._durable_seq)

    def _write_pending(self) -> None:
        runs = self._runs
        self._tail = bytearray()
        self._runs = [(None, self._tail)]
        self._backlog = 0
        for first_seq, data in runs:
            if first_seq is not None:
                self._open_segment(first_seq)
            if data:
                assert self._fd is not None
                write_all(self._fs, self._fd, data)
                self.writes += 1
        self._written_seq = self._next_seq - 1
        if self._room_waiters:
            waiters, self._room_waiters = self._room_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _open_segment(self, first_seq: int) -> None:
        fs = self._fs
        old = self._fd
        if old is not None:
            # The finished segment is made durable before the next one holds any record.
            fs.fsync(old)
            self.fsyncs += 1
            self._durable_seq = max(self._durable_seq, first_seq - 1)
            self._fd = None
            fs.close(old)
        path = self._dir / segment_name(first_seq)
        self._fd = fs.open(path, CREATE_FLAGS)
        write_all(fs, self._fd, encode_segment_header(first_seq))
        fs.fsync(self._fd)
        fs.fsync_dir(self._dir)
        self.segments_created += 1

    # -- release and failure ---------------------------------------------------------------------

    def _release(self, upto: int) -> None:
        if upto > self._released_seq:
            self._released_seq = upto
        gate = self._gate
        while gate and gate[0][0] <= upto and self._failed is None:
            _, fn, args = gate.popleft()
            self._call(fn, args)

    def _call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("journal_gate_callback_failed", callback=getattr(fn, "__qualname__", repr(fn)))

    def _fail(self, exc: BaseException) -> None:
        if self._failed is not None:
            return
        self._failed = exc
        self._accepting = False
        self._gate.clear()
        log.critical(
            "journal_failed",
            journal_dir=str(self._dir),
            error=repr(exc),
            durable_seq=self._durable_seq,
            last_seq=self._next_seq - 1,
        )
        error = self._unusable()
        for fut in [*self._room_waiters, *self._release_waiters]:
            if not fut.done():
                fut.set_exception(error)
        self._room_waiters = []
        if self._on_fatal is not None:
            try:
                self._on_fatal(exc)
            except Exception:
                log.exception("journal_on_fatal_failed")

    def _unusable(self) -> JournalFailedError:
        if self._failed is not None:
            error = JournalFailedError(
                f"the journal writer failed and accepts nothing more: {self._failed!r} "
                f"(durable through seq {self._durable_seq})"
            )
            error.__cause__ = self._failed
            return error
        return JournalFailedError("the journal writer is closed")


class _FsyncThread:
    """One long-lived thread that runs the group commits' fsyncs, one at a time.

    Cheaper per group than an executor (no future, work item or condition variables): the loop
    releases a lock to wake the thread, and the thread reports back with one
    ``call_soon_threadsafe(on_done, generation, error_or_None)``. ``wait()`` lets the loop block
    for the fsync in flight instead (``flush_now``); the loop then ignores the late report by its
    generation.
    """

    def __init__(
        self,
        fsync: Callable[[int], None],
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[int, BaseException | None], None],
    ) -> None:
        self._fsync = fsync
        self._loop = loop
        self._on_done = on_done
        self._wake = threading.Lock()  # released by the loop to start one fsync
        self._wake.acquire()
        self._idle = threading.Lock()  # held from start() until that fsync has finished
        self._fd = -1
        self._generation = 0
        self._error: BaseException | None = None
        self._stopping = False
        # A daemon: a writer that is never closed must not keep the process alive at exit.
        self._thread = threading.Thread(target=self._run, name="journal-fsync", daemon=True)
        self._thread.start()

    def start(self, fd: int, generation: int) -> None:
        """Start an fsync of ``fd``; only while none is in flight (the writer ensures it)."""
        self._idle.acquire()
        self._fd = fd
        self._generation = generation
        self._wake.release()

    def wait(self) -> BaseException | None:
        """Block until the fsync in flight (if any) has finished; return its error, if any."""
        with self._idle:
            return self._error

    def stop(self) -> None:
        """Wait for the fsync in flight, then end the thread."""
        self._idle.acquire()  # the thread is back waiting: _wake is held
        self._stopping = True
        self._wake.release()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._wake.acquire()
            if self._stopping:
                return
            error: BaseException | None = None
            try:
                self._fsync(self._fd)
            except BaseException as exc:
                error = exc
            self._error = error
            generation = self._generation
            self._idle.release()
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                self._loop.call_soon_threadsafe(self._on_done, generation, error)


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
