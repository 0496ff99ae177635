"""JournalWriter: group commit, the durability gate, modes, segment rolls, backpressure, fail-stop."""

from __future__ import annotations

import asyncio
import errno
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from tradingapp.storage import (
    JournalFailedError,
    JournalRecord,
    JournalWriter,
    recover_journal,
    scan_journal,
)
from tradingapp.storage.crashsim import FaultyFS, NoSyncFS
from tradingapp.storage.fileops import FileOps


class TracingFS(NoSyncFS):
    """Logs writes and fsyncs; an fsync can be made to wait until the test lets it finish."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.blocking = False
        self._gates: list[threading.Event] = []
        self.started = threading.Semaphore(0)
        self._lock = threading.Lock()

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        with self._lock:
            self.log.append(f"write {len(data)}")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        gate = threading.Event()
        with self._lock:
            self.log.append("fsync start")
            if self.blocking:
                self._gates.append(gate)
            else:
                gate.set()
        self.started.release()
        assert gate.wait(10)
        with self._lock:
            self.log.append("fsync end")

    def finish_one(self) -> None:
        with self._lock:
            self._gates.pop(0).set()

    def entries(self, prefix: str) -> int:
        return sum(1 for e in self.log if e.startswith(prefix))


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


async def wait_fsync_started(fs: TracingFS) -> None:
    await until(lambda: fs.started.acquire(blocking=False))


def new_writer(path: Path, fs: FileOps, **kw: object) -> JournalWriter:
    report = recover_journal(path)
    return JournalWriter(path, report.next_seq, fs=fs, **kw)  # type: ignore[arg-type]


# -- batch: group commit and the gate --------------------------------------------------------------


async def test_batch_gate_waits_for_fsync_and_releases_in_seq_order(tmp_path: Path) -> None:
    fs = TracingFS()
    journal = tmp_path / "journal"
    writer = new_writer(journal, fs, fsync="batch")
    writer.append(0, b"warm-up")  # creates the segment (header fsync) before we start blocking
    await writer.wait_released(1)
    fs.log.clear()
    while fs.started.acquire(blocking=False):
        pass
    fs.blocking = True

    released: list[int] = []
    for i in range(3):
        seq = writer.append(i, b"group one")
        writer.hold(seq, released.append, seq)
    assert writer.backlog_bytes == 3 * (24 + 9)
    await wait_fsync_started(fs)
    assert fs.log == [f"write {3 * 33}", "fsync start"]
    assert writer.written_seq == 4 and writer.durable_seq == 1 and writer.backlog_bytes == 0
    await asyncio.sleep(0.01)
    assert released == []  # written, not yet durable: nothing released

    for i in range(2):  # appended while the fsync is in flight: the next group
        seq = writer.append(i, b"group two")
        writer.hold(seq, released.append, seq)
    await asyncio.sleep(0.01)
    assert fs.entries("write") == 1  # the second group waits for the fsync in flight

    fs.finish_one()
    await wait_fsync_started(fs)
    assert released == [2, 3, 4]
    assert fs.log == [f"write {3 * 33}", "fsync start", "fsync end", f"write {2 * 33}", "fsync start"]
    assert writer.durable_seq == 4 and writer.written_seq == 6

    fs.finish_one()
    await until(lambda: len(released) == 5)
    assert released == [2, 3, 4, 5, 6]
    assert writer.durable_seq == writer.released_seq == 6
    fs.blocking = False
    writer.close()
    assert [r.seq for r in scan_journal(journal)] == [1, 2, 3, 4, 5, 6]


async def test_batch_one_write_and_one_fsync_per_loop_iteration(tmp_path: Path) -> None:
    fs = TracingFS()
    writer = new_writer(tmp_path / "journal", fs, fsync="batch")
    for i in range(1000):
        writer.append(i, b"x" * 100)
    await writer.wait_released(1000)
    assert fs.entries("write") == 2  # header of the new segment + one group
    assert writer.fsyncs == 1
    writer.close()


async def test_hold_of_a_durable_seq_runs_at_once(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "journal", NoSyncFS(), fsync="batch")
    seq = writer.append(0, b"a")
    await writer.wait_released(seq)
    ran: list[str] = []
    writer.hold(seq, ran.append, "now")
    assert ran == ["now"]
    writer.close()


async def test_gate_callback_errors_do_not_stop_the_gate(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "journal", NoSyncFS(), fsync="batch")
    ran: list[int] = []

    def boom() -> None:
        raise RuntimeError("callback bug")

    writer.hold(writer.append(0, b"a"), boom)
    seq = writer.append(0, b"b")
    writer.hold(seq, ran.append, seq)
    await writer.wait_released(seq)
    assert ran == [2]
    writer.close()


# -- always and off -------------------------------------------------------------------------------


async def test_always_writes_and_fsyncs_each_record_before_returning(tmp_path: Path) -> None:
    fs = TracingFS()
    writer = new_writer(tmp_path / "journal", fs, fsync="always")
    writer.append(0, b"first")  # creates the segment
    fs.log.clear()
    released: list[int] = []
    for i in range(5):
        seq = writer.append(i, b"0123456789")
        assert fs.log[-3:] == ["write 34", "fsync start", "fsync end"]
        assert writer.durable_seq == seq
        writer.hold(seq, released.append, seq)
        assert released[-1] == seq  # the ack can follow at once
    assert fs.entries("fsync start") == 5
    writer.close()


async def test_off_releases_after_write_without_fsync(tmp_path: Path) -> None:
    fs = TracingFS()
    writer = new_writer(tmp_path / "journal", fs, fsync="off")
    released: list[int] = []
    for i in range(3):
        seq = writer.append(i, b"abc")
        writer.hold(seq, released.append, seq)
    assert released == [] and fs.entries("write") == 0
    await asyncio.sleep(0)
    assert released == [1, 2, 3]
    assert fs.log == ["write 18", "fsync start", "fsync end", f"write {3 * 27}"]  # only the new header
    assert writer.durable_seq == 0 and writer.written_seq == 3
    writer.close()  # a clean close fsyncs, in every mode
    assert writer.durable_seq == 3 and fs.log[-1] == "fsync end"


def test_manual_mode_without_an_event_loop(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "journal", NoSyncFS(), fsync="batch")
    writer.append(1, b"a")
    writer.append(2, b"b")
    assert writer.written_seq == 0
    writer.flush_now()
    assert writer.durable_seq == 2
    writer.close()
    assert list(scan_journal(tmp_path / "journal")) == [JournalRecord(1, 1, b"a"), JournalRecord(2, 2, b"b")]


# -- rolls, flush_now, close ----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["always", "batch", "off"])
async def test_segments_roll_at_record_boundaries(tmp_path: Path, mode: str) -> None:
    journal = tmp_path / "journal"
    writer = new_writer(journal, NoSyncFS(), fsync=mode, segment_bytes=1000)
    expected = []
    for i in range(400):
        payload = bytes([i % 256]) * (i % 90)
        expected.append(JournalRecord(writer.append(i, payload), i, payload))
        if i % 7 == 0:
            await asyncio.sleep(0)
    await writer.wait_released(400)
    writer.close()
    report = recover_journal(journal)
    assert report.clean and len(report.segments) == writer.segments_created > 10
    for summary in report.segments[:-1]:
        assert 1000 <= summary.size < 1000 + 24 + 90
    assert list(scan_journal(journal)) == expected


async def test_flush_now_waits_for_the_fsync_in_flight(tmp_path: Path) -> None:
    fs = TracingFS()
    writer = new_writer(tmp_path / "journal", fs, fsync="batch")
    writer.append(0, b"a")
    await writer.wait_released(1)
    fs.blocking = True
    while fs.started.acquire(blocking=False):
        pass
    writer.append(0, b"b")
    await wait_fsync_started(fs)
    writer.append(0, b"c")
    threading.Timer(0.05, fs.finish_one).start()
    fs.blocking = False
    writer.flush_now()  # blocks until the fsync in flight ends, then writes and fsyncs "c"
    assert writer.durable_seq == writer.released_seq == 3
    writer.close()
    assert [r.payload for r in scan_journal(tmp_path / "journal")] == [b"a", b"b", b"c"]


async def test_close_flushes_and_releases(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "journal", NoSyncFS(), fsync="batch")
    released: list[int] = []
    for i in range(10):
        writer.hold(writer.append(i, b"x"), released.append, i)
    writer.close()
    assert released == list(range(10))
    assert writer.closed
    with pytest.raises(JournalFailedError, match="closed"):
        writer.append(0, b"late")
    writer.close()  # idempotent


def test_append_validation_consumes_no_seq(tmp_path: Path) -> None:
    writer = new_writer(tmp_path / "journal", NoSyncFS(), fsync="off", max_record_bytes=1000)
    with pytest.raises(ValueError, match="exceeds"):
        writer.append(0, bytes(981))
    with pytest.raises(ValueError, match="int64"):
        writer.append(2**63, b"")
    with pytest.raises(ValueError, match="int64"):
        writer.append(1.5, b"")  # type: ignore[arg-type]
    assert writer.append(0, bytes(980)) == 1
    writer.close()
    with pytest.raises(ValueError, match="fsync must be one of"):
        JournalWriter(tmp_path / "journal", 2, fsync="sometimes")


# -- backpressure ---------------------------------------------------------------------------------


async def test_backlog_limit_and_wait_for_room(tmp_path: Path) -> None:
    fs = TracingFS()
    writer = new_writer(tmp_path / "journal", fs, fsync="batch", max_backlog_bytes=1000)
    writer.append(0, b"a")
    await writer.wait_released(1)
    fs.blocking = True
    while fs.started.acquire(blocking=False):
        pass
    writer.append(0, b"in flight")
    await wait_fsync_started(fs)
    while writer.has_room:
        writer.append(0, bytes(100))
    assert writer.backlog_bytes >= 1000
    waiter = asyncio.ensure_future(writer.wait_for_room())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    fs.blocking = False
    fs.finish_one()
    await asyncio.wait_for(waiter, 5)
    assert writer.has_room
    writer.close()


# -- fail-stop -------------------------------------------------------------------------------------


class FailingSyncFS(NoSyncFS):
    def __init__(self, fail_on: int) -> None:
        self.calls = 0
        self.fail_on = fail_on

    def fsync(self, fd: int) -> None:
        self.calls += 1
        if self.calls >= self.fail_on:
            raise OSError(errno.EIO, "injected fsync failure")


async def test_fsync_failure_is_fatal_and_releases_nothing(tmp_path: Path) -> None:
    fatal: list[BaseException] = []
    fs = FailingSyncFS(fail_on=3)  # 1: new segment header, 2: first group, 3: second group
    writer = new_writer(tmp_path / "journal", fs, fsync="batch", on_fatal=fatal.append)
    released: list[int] = []
    writer.hold(writer.append(0, b"one"), released.append, 1)
    await writer.wait_released(1)
    for i in range(3):
        writer.hold(writer.append(i, b"two"), released.append, i + 2)
    waiter = asyncio.ensure_future(writer.wait_released(4))
    await until(lambda: writer.failed is not None)
    assert released == [1]
    assert len(fatal) == 1 and isinstance(fatal[0], OSError)
    with pytest.raises(JournalFailedError, match="injected fsync failure"):
        await waiter
    with pytest.raises(JournalFailedError):
        writer.append(0, b"after")
    with pytest.raises(JournalFailedError):
        await writer.wait_for_room()
    with pytest.raises(JournalFailedError):
        writer.flush_now()
    writer.hold(1, released.append, 99)  # nothing is released after a failure, not even old seqs
    await asyncio.sleep(0.01)
    assert released == [1] and fs.calls == 3  # never retried
    writer.close()  # no flush after a failure; does not raise
    assert len(fatal) == 1


async def test_write_failure_is_fatal(tmp_path: Path) -> None:
    fatal: list[BaseException] = []
    fs = FaultyFS(fail_at=None, err=errno.ENOSPC)
    writer = new_writer(tmp_path / "journal", fs, fsync="batch", on_fatal=fatal.append)
    writer.append(0, b"one")
    await writer.wait_released(1)
    fs.fail_at = len(fs.calls) + 1  # the next call: the group's write
    released: list[int] = []
    writer.hold(writer.append(0, b"two"), released.append, 2)
    await until(lambda: bool(fatal))
    assert fs.calls[-1] == "write" and "No space" in str(fatal[0])
    await asyncio.sleep(0.01)
    assert released == [] and len(fatal) == 1
    writer.close()


def test_always_failure_raises_from_append(tmp_path: Path) -> None:
    fatal: list[BaseException] = []
    writer = new_writer(tmp_path / "journal", FailingSyncFS(fail_on=3), fsync="always", on_fatal=fatal.append)
    writer.append(0, b"one")  # header fsync + record fsync
    with pytest.raises(JournalFailedError):
        writer.append(0, b"two")
    assert len(fatal) == 1 and writer.durable_seq == 1
    with pytest.raises(JournalFailedError):
        writer.append(0, b"three")
    assert len(fatal) == 1
    writer.close()


async def test_on_fatal_errors_are_contained(tmp_path: Path) -> None:
    def bad_handler(exc: BaseException) -> None:
        raise RuntimeError("handler bug")

    writer = new_writer(tmp_path / "journal", FailingSyncFS(fail_on=2), fsync="batch", on_fatal=bad_handler)
    writer.append(0, b"x")
    await until(lambda: writer.failed is not None)
    writer.close()
