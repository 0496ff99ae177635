"""Test doubles for the file operations: I/O-error injection and simulated power loss.

:class:`FaultyFS` fails the Nth mutating call (SQLite's I/O-error loop, test plan R5).

:class:`CrashFS` models a power loss in the spirit of SQLite's ``test6.c``: files are real, but
an fsync only *records* how much of the file is durable (no real fsync, so it is fast). At
:meth:`CrashFS.crash` each file keeps its durable prefix plus a random part of what was written
after it, optionally with its last 1..512 un-synced bytes garbled; a file created, or a rename
made, since the last fsync of its directory may be undone. After the crash every call fails, as
if the process had died. Journal files are append-only, which is what this model assumes
(``O_TRUNC`` or ``ftruncate`` on a file loses the notion of its old durable content).

Both live in the package (not in ``tests/``) so engine-level crash tests can use them too.
"""

from __future__ import annotations

import errno
import os
import random
import threading
from dataclasses import dataclass, field
from pathlib import Path

from tradingapp.storage.fileops import FileOps

MUTATING_OPS = ("open", "write", "fsync", "ftruncate", "rename", "remove", "fsync_dir", "mkdir")


class SimulatedCrash(OSError):
    """Raised by every operation after :meth:`CrashFS.crash`."""


class FaultyFS(FileOps):
    """Counts mutating calls and raises ``OSError(err)`` at call number ``fail_at`` (1-based).

    With ``sticky`` every later call fails too (a dead disk). ``calls`` lists the operation names
    in order, for tests that count K and then loop N = 1..K.
    """

    def __init__(
        self, fail_at: int | None = None, err: int = errno.EIO, *, sticky: bool = False, sync: bool = True
    ) -> None:
        self.fail_at = fail_at
        self.err = err
        self.sticky = sticky
        self.sync = sync  # False: count fsyncs but skip the real ones (fast tests)
        self.calls: list[str] = []
        self.failed = False
        self._lock = threading.Lock()

    def _tick(self, name: str) -> None:
        with self._lock:
            self.calls.append(name)
            n = len(self.calls)
            if self.fail_at is not None and (n == self.fail_at or (self.sticky and n > self.fail_at)):
                self.failed = True
                raise OSError(self.err, f"injected {os.strerror(self.err)} at I/O call {n} ({name})")

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        self._tick("open")
        return super().open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        self._tick("write")
        return super().write(fd, data)

    def fsync(self, fd: int) -> None:
        self._tick("fsync")
        if self.sync:
            super().fsync(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        self._tick("ftruncate")
        super().ftruncate(fd, length)

    def rename(self, src: Path, dst: Path) -> None:
        self._tick("rename")
        super().rename(src, dst)

    def remove(self, path: Path) -> None:
        self._tick("remove")
        super().remove(path)

    def fsync_dir(self, path: Path) -> None:
        self._tick("fsync_dir")
        if self.sync:
            super().fsync_dir(path)

    def mkdir(self, path: Path) -> None:
        self._tick("mkdir")
        super().mkdir(path)


@dataclass
class _FileState:
    synced: int  # bytes known durable (a prefix of the file)
    entry_durable: bool  # the directory entry survives a crash


@dataclass
class CrashReport:
    kept: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # path: (synced, size, kept)
    garbled: dict[str, int] = field(default_factory=dict)  # path: bytes garbled
    vanished: list[str] = field(default_factory=list)
    renames_undone: list[tuple[str, str]] = field(default_factory=list)


class CrashFS(FileOps):
    """Real files, simulated durability; call :meth:`crash` to lose what was not fsynced.

    With ``crash_at=N`` the process "dies" at the Nth mutating call: that call raises
    :class:`SimulatedCrash` without taking effect, except a write, which first writes a random
    prefix of its data (a torn write). Every later call raises too; :meth:`crash` must still be
    called to apply the power loss.
    """

    def __init__(
        self, *, garble: bool = True, crash_at: int | None = None, rng: random.Random | None = None
    ) -> None:
        self.garble = garble
        self.crash_at = crash_at
        self.rng = rng or random.Random(0)
        self.ops = 0
        self.crashed = False
        self.fsync_calls = 0
        self._files: dict[str, _FileState] = {}
        self._fds: dict[int, str] = {}
        self._renames: list[tuple[str, str]] = []  # not yet followed by an fsync of the directory
        self._lock = threading.RLock()

    def _check(self) -> None:
        # Called (under the lock) at the start of every mutating call.
        if self.crashed:
            raise SimulatedCrash(errno.EIO, "simulated power loss: the process is gone")
        self.ops += 1
        if self.crash_at is not None and self.ops >= self.crash_at:
            self.crashed = True
            raise SimulatedCrash(errno.EIO, f"simulated power loss at I/O call {self.ops}")

    def _state(self, key: str) -> _FileState:
        state = self._files.get(key)
        if state is None:  # a file from before this simulation started: durable as it is
            size = os.path.getsize(key) if os.path.exists(key) else 0
            state = self._files[key] = _FileState(size, True)
        return state

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        with self._lock:
            self._check()
            key = os.path.abspath(path)
            existed = os.path.exists(key)
            fd = os.open(key, flags, mode)
            if not existed:
                self._files[key] = _FileState(0, False)
            else:
                state = self._state(key)
                if flags & os.O_TRUNC:
                    state.synced = 0
            self._fds[fd] = key
            return fd

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        with self._lock:
            try:
                self._check()
            except SimulatedCrash:
                if self.crash_at is not None and self.ops == self.crash_at:
                    os.write(fd, memoryview(data)[: self.rng.randint(0, len(data))])  # torn
                raise
            return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        with self._lock:
            self._check()
            self.fsync_calls += 1
            key = self._fds[fd]
            self._state(key).synced = os.fstat(fd).st_size

    def close(self, fd: int) -> None:
        with self._lock:
            self._fds.pop(fd, None)
            os.close(fd)  # closing changes nothing on disk: allowed even after the crash

    def ftruncate(self, fd: int, length: int) -> None:
        with self._lock:
            self._check()
            os.ftruncate(fd, length)
            state = self._state(self._fds[fd])
            state.synced = min(state.synced, length)

    def rename(self, src: Path, dst: Path) -> None:
        with self._lock:
            self._check()
            skey, dkey = os.path.abspath(src), os.path.abspath(dst)
            state = self._state(skey)
            os.replace(skey, dkey)
            self._files.pop(skey, None)
            self._files[dkey] = state
            self._renames.append((skey, dkey))

    def remove(self, path: Path) -> None:
        with self._lock:
            self._check()
            key = os.path.abspath(path)
            os.remove(key)
            self._files.pop(key, None)

    def fsync_dir(self, path: Path) -> None:
        with self._lock:
            self._check()
            directory = os.path.abspath(path)
            for key, state in self._files.items():
                if os.path.dirname(key) == directory:
                    state.entry_durable = True
            self._renames = [r for r in self._renames if os.path.dirname(r[1]) != directory]

    def mkdir(self, path: Path) -> None:
        with self._lock:
            self._check()
            os.mkdir(path)

    def crash(self, rng: random.Random) -> CrashReport:
        """Lose un-synced data at random (see the module docstring); later calls all fail."""
        report = CrashReport()
        with self._lock:
            self.crashed = True
            for skey, dkey in reversed(self._renames):
                if rng.random() < 0.5 and os.path.exists(dkey):
                    os.replace(dkey, skey)
                    self._files[skey] = self._files.pop(dkey)
                    report.renames_undone.append((skey, dkey))
            self._renames = []
            for key, state in list(self._files.items()):
                if not os.path.exists(key):
                    continue
                if not state.entry_durable and rng.random() < 0.5:
                    os.remove(key)
                    report.vanished.append(key)
                    continue
                size = os.path.getsize(key)
                synced = min(state.synced, size)
                keep = synced + rng.randint(0, size - synced)
                with open(key, "r+b") as f:
                    f.truncate(keep)
                    unsynced = keep - synced
                    if self.garble and unsynced and rng.random() < 0.5:
                        count = rng.randint(1, min(512, unsynced))
                        f.seek(keep - count)
                        f.write(rng.randbytes(count))
                        report.garbled[key] = count
                report.kept[key] = (synced, size, keep)
                state.synced = keep
        return report


class NoSyncFS(FileOps):
    """Real writes, no fsync at all: for tests that build journals quickly."""

    def fsync(self, fd: int) -> None:
        pass

    def fsync_dir(self, path: Path) -> None:
        pass
